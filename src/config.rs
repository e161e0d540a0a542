//! Typed settings from the environment and the command line, and the ARM scopes the product may touch.

use crate::azure::auth::CredentialKind;
use crate::azure::resource_id::ResourceId;
use std::path::PathBuf;
use std::time::Duration;

/// Every application setting the product reads. `infra/` sets them and a test keeps the two in step.
pub const APP_SETTINGS: &[&str] = &[
    "ADF_REFRESH_SCOPE",
    "ADF_REFRESH_VAULTS",
    "ADF_REFRESH_NOTIFY",
    "ADF_REFRESH_WEBHOOK_URL",
    "ADF_REFRESH_WEBHOOK_SECRET",
    "ADF_REFRESH_TEAMS_WEBHOOK_URL",
    "ADF_REFRESH_SLACK_WEBHOOK_URL",
    "ADF_REFRESH_ARM_ENDPOINT",
    "ADF_REFRESH_KEYVAULT_ENDPOINT",
    "ADF_REFRESH_SYNAPSE_ENDPOINT",
    "ADF_REFRESH_CA_FILE",
    "ADF_REFRESH_CREDENTIAL",
    "ADF_REFRESH_AUDIT_SCHEDULE",
    "ADF_REFRESH_RUN_BUDGET_SECONDS",
    "AZURE_CLIENT_ID",
];

/// When to send notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NotifyPolicy {
    #[default]
    Attention,
    Always,
    Never,
}

/// Everything a run needs to know, whichever way it was started. Its `Debug` hides the webhook URLs and
/// key, which are credentials.
#[derive(Clone)]
pub struct Settings {
    pub scopes: Vec<Scope>,
    pub arm_endpoint: String,
    pub keyvault_endpoint: Option<String>,
    /// A URL template with `{workspace}`, used instead of a Synapse workspace's `connectivityEndpoints.dev`
    /// (emulators, proxies).
    pub synapse_endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub credential: CredentialKind,
    /// Vault names whose events are acted on; empty means any.
    pub vault_allow: Vec<String>,
    pub notify: NotifyPolicy,
    pub webhook_url: Option<String>,
    /// HMAC key for the generic webhook. Never printed: see [`Settings`]'s Debug.
    pub webhook_secret: Option<SecretString>,
    pub teams_webhook_url: Option<String>,
    pub slack_webhook_url: Option<String>,
    /// How many ARM calls run at once.
    pub concurrency: usize,
    /// The time budget of one run; it must stay below the Functions timeout.
    pub run_budget: Duration,
    /// Days before expiry that the audit warns.
    pub expiry_warning_days: i64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "***" } else { "unset" };
        f.debug_struct("Settings")
            .field("scopes", &self.scopes)
            .field("arm_endpoint", &self.arm_endpoint)
            .field("keyvault_endpoint", &self.keyvault_endpoint)
            .field("synapse_endpoint", &self.synapse_endpoint)
            .field("ca_file", &self.ca_file)
            .field("credential", &self.credential)
            .field("vault_allow", &self.vault_allow)
            .field("notify", &self.notify)
            .field("webhook_url", &set(&self.webhook_url))
            .field("webhook_secret", &self.webhook_secret)
            .field("teams_webhook_url", &set(&self.teams_webhook_url))
            .field("slack_webhook_url", &set(&self.slack_webhook_url))
            .field("concurrency", &self.concurrency)
            .field("run_budget", &self.run_budget)
            .field("expiry_warning_days", &self.expiry_warning_days)
            .finish()
    }
}

impl Settings {
    /// The Key Vault DNS suffix of this deployment's cloud, decided by its ARM endpoint.
    pub fn vault_suffix(&self) -> &'static str {
        vault_suffix_for_arm(&self.arm_endpoint)
    }

    /// The vault's cloud for a run: the host of the event's secret URL when it is this vault under a known
    /// Key Vault suffix, else
    /// this deployment's cloud.
    pub fn vault_suffix_of(&self, vault: &str, secret_url: Option<&str>) -> String {
        secret_url
            .and_then(crate::scan::parse_vault_url)
            .filter(|h| h.name.eq_ignore_ascii_case(vault))
            .map_or_else(|| self.vault_suffix().to_string(), |h| h.suffix)
    }

    /// Whether events from this vault are acted on.
    pub fn vault_allowed(&self, vault: &str) -> bool {
        self.vault_allow.is_empty()
            || self
                .vault_allow
                .iter()
                .any(|v| v.eq_ignore_ascii_case(vault))
    }

    /// Whether a resource id lies inside the configured scopes.
    pub fn in_scope(&self, resource_id: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(resource_id))
    }
}

/// A string that never prints.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// An ARM scope: a subscription, a resource group, or a factory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    id: String,
    parsed: ResourceId,
}

impl Scope {
    /// Parses `/subscriptions/{s}`, `/subscriptions/{s}/resourceGroups/{rg}` or a factory resource id.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let trimmed = text.trim().trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').collect();
        // Azure allows Unicode letters and digits in resource-group and factory names.
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars().count() <= 90
                && !s.chars().all(|c| c == '.')
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        };
        let valid = segments.first() == Some(&"")
            && segments
                .get(1)
                .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
            && segments.iter().skip(2).all(|s| ok_name(s))
            && match segments.len() {
                3 => true,
                5 => segments[3].eq_ignore_ascii_case("resourceGroups"),
                9 => {
                    segments[3].eq_ignore_ascii_case("resourceGroups")
                        && segments[5].eq_ignore_ascii_case("providers")
                        && segments[6].eq_ignore_ascii_case("Microsoft.DataFactory")
                        && segments[7].eq_ignore_ascii_case("factories")
                }
                _ => false,
            };
        let parsed = ResourceId::parse(trimmed).ok().filter(|_| valid);
        let Some(parsed) = parsed else {
            return Err(format!(
                "`{}` is not a scope: use /subscriptions/{{id}}, /subscriptions/{{id}}/resourceGroups/{{rg}}, or a factory resource id",
                text.chars().take(200).collect::<String>()
            ));
        };
        Ok(Scope {
            id: trimmed.to_string(),
            parsed,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `resource_id` is this scope or lies below it (ARM ids compare without case).
    /// Segments compare without case, in any script; an id that does not parse is in no scope.
    pub fn contains(&self, resource_id: &str) -> bool {
        ResourceId::parse(resource_id).is_ok_and(|id| self.parsed.contains(&id))
    }

    /// Whether every resource in `inner` lies inside this scope.
    pub fn covers(&self, inner: &Scope) -> bool {
        self.parsed.contains(&inner.parsed)
    }
}

/// The default time budget of one run. With the notifications after it, it stays inside the Functions timeout.
pub const DEFAULT_RUN_BUDGET_SECONDS: u64 = 480;

/// The Key Vault DNS suffix of the cloud an ARM endpoint belongs to; any other endpoint (public Azure, an
/// emulator) is the public cloud. Source: the sovereign cloud endpoints in DESIGN.md's "Names and clouds".
pub fn vault_suffix_for_arm(arm_endpoint: &str) -> &'static str {
    let host = url::Url::parse(arm_endpoint.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    match host.as_str() {
        "management.chinacloudapi.cn" => "vault.azure.cn",
        "management.usgovcloudapi.net" => "vault.usgovcloudapi.net",
        "management.microsoftazure.de" => "vault.microsoftazure.de",
        _ => "vault.azure.net",
    }
}

/// Splits a comma-separated setting into trimmed, non-empty parts.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_contain_without_case() {
        let rg = Scope::parse("/subscriptions/S1/resourceGroups/rg-data/").unwrap();
        assert!(rg.contains(
            "/subscriptions/s1/resourcegroups/RG-DATA/providers/Microsoft.DataFactory/factories/f"
        ));
        assert!(!rg.contains(
            "/subscriptions/s1/resourceGroups/rg-data2/providers/Microsoft.DataFactory/factories/f"
        ));
        let sub = Scope::parse("/subscriptions/s1").unwrap();
        assert!(sub.covers(&rg));
        assert!(!rg.covers(&sub));
        let f = Scope::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1",
        )
        .unwrap();
        assert!(f.contains(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1"
        ));
        for bad in [
            "subscriptions/s1",
            "/subscriptions",
            "/subscriptions/s1/resourceGroups",
            "/subscriptions/s1/foo/bar",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
            "/subscriptions/../x",
            "/subscriptions/..",
            "",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_unicode_resource_group_beside_its_ascii_prefix_is_parsed_and_kept_apart() {
        let ascii = Scope::parse("/subscriptions/s1/resourceGroups/rg").unwrap();
        let unicode = Scope::parse("/subscriptions/s1/resourceGroups/rgé-daten").unwrap();
        let inside = "/subscriptions/s1/resourceGroups/rgé-daten/providers/Microsoft.DataFactory/factories/fäbrik";
        assert!(!ascii.contains(inside));
        assert!(unicode.contains(inside));
        assert!(unicode.contains(&inside.to_uppercase()));
        assert!(!ascii.contains("/subscriptions/s1/resourceGroups/rgé"));
        assert!(Scope::parse("/subscriptions/s1/resourceGroups/Données").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn scope_parsing_and_matching_never_panic(a in "\\PC{0,60}", b in "\\PC{0,60}") {
            if let Ok(scope) = Scope::parse(&format!("/subscriptions/s/resourceGroups/{a}")) {
                let _ = scope.contains(&format!("/subscriptions/s/resourceGroups/{b}"));
                let _ = scope.contains(&b);
            }
            let _ = Scope::parse(&a);
        }
    }

    #[test]
    fn the_vault_cloud_follows_the_arm_endpoint() {
        assert_eq!(
            vault_suffix_for_arm("https://management.azure.com"),
            "vault.azure.net"
        );
        assert_eq!(
            vault_suffix_for_arm("https://Management.ChinaCloudAPI.cn/"),
            "vault.azure.cn"
        );
        assert_eq!(
            vault_suffix_for_arm("https://management.usgovcloudapi.net"),
            "vault.usgovcloudapi.net"
        );
        assert_eq!(
            vault_suffix_for_arm("https://127.0.0.1:8443"),
            "vault.azure.net"
        );
        assert_eq!(vault_suffix_for_arm("not a url"), "vault.azure.net");
    }

    #[test]
    fn settings_debug_hides_webhook_urls() {
        let settings = Settings {
            scopes: vec![],
            arm_endpoint: "https://management.azure.com".into(),
            keyvault_endpoint: None,
            synapse_endpoint: None,
            ca_file: None,
            credential: CredentialKind::DeveloperTools,
            vault_allow: vec![],
            notify: NotifyPolicy::Attention,
            webhook_url: Some("https://hooks.example/secret-path".into()),
            webhook_secret: Some(SecretString::new("hmac-key".into())),
            teams_webhook_url: Some("https://teams.example/sig=abc".into()),
            slack_webhook_url: Some("https://hooks.slack.com/services/T/B/X".into()),
            concurrency: 1,
            run_budget: Duration::from_secs(1),
            expiry_warning_days: 30,
        };
        let printed = format!("{settings:?}");
        for secret in ["secret-path", "hmac-key", "sig=abc", "services/T/B/X"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", SecretString::new("hunter2".into())), "***");
    }
}
