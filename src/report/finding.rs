//! The one findings vocabulary, shared by the report and the inventory and read by every rendering and
//! notification: what is wrong or about to go wrong ([`FindingCode`]), how bad ([`Severity`]), what it is
//! about, the fix, and who must act ([`Owner`]).

use serde::{Deserialize, Serialize};

/// Something wrong or about to go wrong, with the fix and who must take it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", from = "FindingAsRead")]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    /// `<vault>/<secret>` for a secret, the vault URL for a vault, a definition's or factory's resource id;
    /// none for a finding about the run as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The vault the finding is about, for a secret or a vault: a same-named vault in another cloud is
    /// another vault, so the subject alone does not say which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_url: Option<String>,
    pub message: String,
    pub fix: Vec<String>,
    pub owner: Owner,
}

impl Finding {
    /// Whether a person must act on it: anything above [`Severity::Info`]. The summary's `attention`, the
    /// exit code and the notification policy all count findings by this.
    pub fn needs_attention(&self) -> bool {
        self.severity > Severity::Info
    }

    /// Whether it is about this subject.
    pub fn is_about(&self, subject: &str) -> bool {
        self.subject.as_deref() == Some(subject)
    }
}

/// A finding as a saved document holds it: reports written before findings had owners have none, so the
/// code's usual owner stands in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FindingAsRead {
    code: FindingCode,
    severity: Severity,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    vault_url: Option<String>,
    message: String,
    #[serde(default)]
    fix: Vec<String>,
    #[serde(default)]
    owner: Option<Owner>,
}

impl From<FindingAsRead> for Finding {
    fn from(f: FindingAsRead) -> Self {
        Finding {
            owner: f.owner.unwrap_or_else(|| f.code.owner()),
            code: f.code,
            severity: f.severity,
            subject: f.subject,
            vault_url: f.vault_url,
            message: f.message,
            fix: f.fix,
        }
    }
}

/// Every finding either document emits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum FindingCode {
    // The audit's (the order is the inventory's order among findings of one severity and subject).
    SecretExpired,
    SecretExpiring,
    SecretNotYetValid,
    LatestVersionDisabled,
    PinnedToOldVersion,
    DanglingSecret,
    DanglingVault,
    DanglingStore,
    VaultAccessDenied,
    InlineSecret,
    SelfHostedCredential,
    UnresolvedReference,
    GitMode,
    VaultNotCovered,
    // The version a rotation announced, and reading its metadata (a rotation).
    SecretVersionDisabled,
    SecretVersionNotYetValid,
    SecretVersionExpired,
    SecretVersionNotFound,
    KeyVaultForbidden,
    KeyVaultNotFound,
    KeyVaultUnavailable,
    /// A `SecretNearExpiry` event (an expired secret's event is [`FindingCode::SecretExpired`]).
    SecretNearExpiry,
    // The run itself.
    ImpactNotRead,
    RetriesExhausted,
    DuplicateDelivery,
}

impl FindingCode {
    /// The code as it is written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::SecretExpired => "secretExpired",
            FindingCode::SecretExpiring => "secretExpiring",
            FindingCode::SecretNotYetValid => "secretNotYetValid",
            FindingCode::LatestVersionDisabled => "latestVersionDisabled",
            FindingCode::PinnedToOldVersion => "pinnedToOldVersion",
            FindingCode::DanglingSecret => "danglingSecret",
            FindingCode::DanglingVault => "danglingVault",
            FindingCode::VaultAccessDenied => "vaultAccessDenied",
            FindingCode::VaultNotCovered => "vaultNotCovered",
            FindingCode::DanglingStore => "danglingStore",
            FindingCode::InlineSecret => "inlineSecret",
            FindingCode::SelfHostedCredential => "selfHostedCredential",
            FindingCode::UnresolvedReference => "unresolvedReference",
            FindingCode::GitMode => "gitMode",
            FindingCode::SecretVersionDisabled => "secretVersionDisabled",
            FindingCode::SecretVersionNotYetValid => "secretVersionNotYetValid",
            FindingCode::SecretVersionExpired => "secretVersionExpired",
            FindingCode::SecretVersionNotFound => "secretVersionNotFound",
            FindingCode::KeyVaultForbidden => "keyVaultForbidden",
            FindingCode::KeyVaultNotFound => "keyVaultNotFound",
            FindingCode::KeyVaultUnavailable => "keyVaultUnavailable",
            FindingCode::SecretNearExpiry => "secretNearExpiry",
            FindingCode::ImpactNotRead => "impactNotRead",
            FindingCode::RetriesExhausted => "retriesExhausted",
            FindingCode::DuplicateDelivery => "duplicateDelivery",
        }
    }

    /// Who usually acts on it; a document read back without owners gets these.
    pub fn owner(self) -> Owner {
        use FindingCode::*;
        match self {
            SecretExpired
            | SecretExpiring
            | SecretNotYetValid
            | LatestVersionDisabled
            | DanglingSecret
            | DanglingVault
            | SecretVersionDisabled
            | SecretVersionNotYetValid
            | SecretVersionExpired
            | SecretVersionNotFound
            | KeyVaultNotFound
            | SecretNearExpiry => Owner::SecretOwner,
            PinnedToOldVersion | DanglingStore | InlineSecret | UnresolvedReference | GitMode => {
                Owner::PipelineOwner
            }
            SelfHostedCredential => Owner::RuntimeOwner,
            VaultAccessDenied | VaultNotCovered | KeyVaultForbidden | KeyVaultUnavailable
            | ImpactNotRead | RetriesExhausted | DuplicateDelivery => Owner::PlatformOwner,
        }
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is, least first: `max()` is the worst.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Info,
    Warning,
    /// Reports written before one vocabulary called this `error`.
    #[serde(alias = "error")]
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who must act on a finding or a diagnosis.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Owner {
    /// Whoever manages the secret in Key Vault (and the credential behind it).
    SecretOwner,
    /// Whoever maintains the factory's (or workspace's) definitions.
    PipelineOwner,
    /// Whoever administers the Entra app registration behind a service principal.
    EntraAdmin,
    /// Whoever runs this product's deployment and its role assignments.
    PlatformOwner,
    /// Whoever runs the self-hosted integration runtime.
    RuntimeOwner,
    /// Whoever owns the web app, function app or API Management service: its settings and its identity.
    AppOwner,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::SecretOwner => "secretOwner",
            Owner::PipelineOwner => "pipelineOwner",
            Owner::EntraAdmin => "entraAdmin",
            Owner::PlatformOwner => "platformOwner",
            Owner::RuntimeOwner => "runtimeOwner",
            Owner::AppOwner => "appOwner",
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        let worst = [Severity::Warning, Severity::Critical, Severity::Info]
            .into_iter()
            .max();
        assert_eq!(worst, Some(Severity::Critical));
    }

    #[test]
    fn a_finding_above_info_needs_attention() {
        let finding = |severity| Finding {
            code: FindingCode::GitMode,
            severity,
            subject: None,
            vault_url: None,
            message: String::new(),
            fix: vec![],
            owner: Owner::PipelineOwner,
        };
        assert!(!finding(Severity::Info).needs_attention());
        assert!(finding(Severity::Warning).needs_attention());
        assert!(finding(Severity::Critical).needs_attention());
    }

    #[test]
    fn an_old_report_finding_with_severity_error_reads_as_critical_with_its_codes_owner() {
        let old = json!({"code": "secretExpired", "severity": "error", "message": "expired",
                         "subject": "kv/s"});
        let finding: Finding = serde_json::from_value(old).expect("an old finding reads");
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(finding.owner, Owner::SecretOwner);
        assert!(finding.fix.is_empty());
        let written = serde_json::to_value(&finding).expect("serialises");
        assert_eq!(written["severity"], "critical");
        assert_eq!(written["owner"], "secretOwner");
    }

    #[test]
    fn every_code_is_written_as_its_name() {
        for code in [
            FindingCode::SecretVersionNotYetValid,
            FindingCode::KeyVaultForbidden,
            FindingCode::VaultNotCovered,
            FindingCode::DuplicateDelivery,
        ] {
            assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
        }
    }
}
