//! Key Vault secret metadata, through `azure_security_keyvault_secrets`' versions pager.
//!
//! The product never reads a secret value: nothing it does needs one, and "Key Vault Reader" suffices for
//! listing versions. `get_secret` would return the value, so it is not used anywhere.

use azure_core::credentials::TokenCredential;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use std::sync::Arc;

/// What Key Vault says about one version of a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMetadata {
    pub version: String,
    pub enabled: Option<bool>,
    pub created: Option<i64>,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyVaultError {
    #[error("no permission to list the versions of {secret} in vault {vault}: {message}")]
    Forbidden {
        vault: String,
        secret: String,
        message: String,
    },
    #[error("secret {secret} was not found in vault {vault}")]
    NotFound { vault: String, secret: String },
    /// The vault itself does not exist: Key Vault's `VaultNotFound`, or a vault host name that does not
    /// resolve (how Azure answers for a vault that was never created).
    #[error("vault {vault} does not exist (or its name does not resolve): {message}")]
    VaultNotFound { vault: String, message: String },
    #[error("Key Vault {vault} could not be read: {message}")]
    Unavailable { vault: String, message: String },
}

/// Where a vault's data plane is.
#[derive(Debug, Clone)]
pub struct VaultEndpoints {
    /// A template with `{vault}`, for emulators and proxies; relaxes the challenge's resource check.
    pub template: Option<String>,
}

impl VaultEndpoints {
    /// The vault URL: the template if set, else the host the event's secret URL names, else the public cloud.
    pub fn url(&self, vault: &str, secret_url: Option<&str>) -> String {
        // The event's host counts only when it is this vault under a known Key Vault suffix.
        let event_host = secret_url
            .and_then(crate::scan::parse_vault_url)
            .filter(|h| h.name.eq_ignore_ascii_case(vault));
        let mut url = match (&self.template, event_host) {
            (Some(template), _) => template.replace("{vault}", vault),
            (None, Some(host)) => format!("https://{}.{}/", host.name, host.suffix),
            _ => format!("https://{vault}.vault.azure.net/"),
        };
        if !url.ends_with('/') {
            url.push('/');
        }
        url
    }
}

/// Lists every version's metadata of one secret.
pub async fn list_versions(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    endpoints: &VaultEndpoints,
    vault: &str,
    secret: &str,
    secret_url: Option<&str>,
) -> Result<Vec<VersionMetadata>, KeyVaultError> {
    let url = endpoints.url(vault, secret_url);
    let options = SecretClientOptions {
        client_options: super::auth::client_options(http),
        verify_challenge_resource: Some(endpoints.template.is_none()),
        ..SecretClientOptions::default()
    };
    let unavailable = |e: azure_core::Error| KeyVaultError::Unavailable {
        vault: vault.into(),
        message: first_line(&e),
    };
    let client = SecretClient::new(&url, credential, Some(options)).map_err(unavailable)?;
    let mut pager = client
        .list_secret_properties_versions(secret, None)
        .map_err(unavailable)?;
    let mut versions = Vec::new();
    loop {
        match pager.try_next().await {
            Ok(Some(properties)) => {
                let attributes = properties.attributes.unwrap_or_default();
                let version = properties
                    .id
                    .as_deref()
                    .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
                    .unwrap_or_default()
                    .to_string();
                versions.push(VersionMetadata {
                    version,
                    enabled: attributes.enabled,
                    created: attributes.created.map(|t| t.unix_timestamp()),
                    not_before: attributes.not_before.map(|t| t.unix_timestamp()),
                    expires: attributes.expires.map(|t| t.unix_timestamp()),
                });
            }
            Ok(None) => return Ok(versions),
            Err(e) => {
                return Err(match e.http_status().map(u16::from) {
                    Some(401 | 403) => KeyVaultError::Forbidden {
                        vault: vault.into(),
                        secret: secret.into(),
                        message: first_line(&e),
                    },
                    Some(404) if names_missing_vault(&e) => KeyVaultError::VaultNotFound {
                        vault: vault.into(),
                        message: first_line(&e),
                    },
                    Some(404) => KeyVaultError::NotFound {
                        vault: vault.into(),
                        secret: secret.into(),
                    },
                    None if names_missing_vault(&e) => KeyVaultError::VaultNotFound {
                        vault: vault.into(),
                        message: first_line(&e),
                    },
                    _ => unavailable(e),
                });
            }
        }
    }
}

/// The version an event names, or else the newest one by creation time.
pub fn pick_version<'a>(
    versions: &'a [VersionMetadata],
    wanted: Option<&str>,
) -> Option<&'a VersionMetadata> {
    match wanted {
        Some(w) => versions.iter().find(|v| v.version.eq_ignore_ascii_case(w)),
        None => versions
            .iter()
            .max_by_key(|v| v.created.unwrap_or(i64::MIN)),
    }
}

/// Why a version cannot serve: disabled, not yet valid, or expired, at `now` (unix seconds).
pub fn unusable_because(version: &VersionMetadata, now: i64) -> Option<&'static str> {
    if version.enabled == Some(false) {
        Some("disabled")
    } else if version.not_before.is_some_and(|nbf| nbf > now) {
        Some("notYetValid")
    } else if version.expires.is_some_and(|exp| exp <= now) {
        Some("expired")
    } else {
        None
    }
}

/// Whether an error says the vault itself is missing: the `VaultNotFound` code, or a host name that DNS does
/// not know (the whole error chain is searched, as the transport nests the resolver's error).
fn names_missing_vault(e: &azure_core::Error) -> bool {
    if let azure_core::error::ErrorKind::HttpResponse {
        error_code: Some(code),
        ..
    } = e.kind()
        && code.eq_ignore_ascii_case("VaultNotFound")
    {
        return true;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push(' ');
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    let text = text.to_ascii_lowercase();
    text.contains("vaultnotfound")
        || text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
        || text.contains("no such host")
}

fn first_line(e: &azure_core::Error) -> String {
    // A credential's error names each credential tried on a line of its own: its first line says nothing.
    if matches!(e.kind(), azure_core::error::ErrorKind::Credential) {
        return super::auth::full_message(e);
    }
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or(&text)
        .chars()
        .take(400)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, created: i64) -> VersionMetadata {
        VersionMetadata {
            version: version.into(),
            enabled: Some(true),
            created: Some(created),
            not_before: None,
            expires: None,
        }
    }

    #[test]
    fn urls_come_from_the_template_the_event_or_the_public_cloud() {
        let none = VaultEndpoints { template: None };
        assert_eq!(none.url("kv", None), "https://kv.vault.azure.net/");
        assert_eq!(
            none.url("kv", Some("https://kv.vault.azure.cn/secrets/s/1")),
            "https://kv.vault.azure.cn/"
        );
        for foreign in [
            "https://evil.example/secrets/s/1",
            "https://kv.evil.example/secrets/s/1",
            "https://kv.vault.azure.net.evil.example/secrets/s/1",
            "https://other.vault.azure.cn/secrets/s/1",
        ] {
            assert_eq!(
                none.url("kv", Some(foreign)),
                "https://kv.vault.azure.net/",
                "{foreign}"
            );
        }
        let t = VaultEndpoints {
            template: Some("https://127.0.0.1:8443/kv/{vault}".into()),
        };
        assert_eq!(t.url("kv", None), "https://127.0.0.1:8443/kv/kv/");
    }

    #[test]
    fn the_named_version_or_the_newest() {
        let versions = [v("a", 1), v("b", 3), v("c", 2)];
        assert_eq!(
            pick_version(&versions, Some("C")).map(|v| v.version.as_str()),
            Some("c")
        );
        assert_eq!(
            pick_version(&versions, None).map(|v| v.version.as_str()),
            Some("b")
        );
        assert_eq!(pick_version(&versions, Some("zz")), None);
    }

    #[test]
    fn unusable_versions() {
        let mut version = v("a", 1);
        assert_eq!(unusable_because(&version, 100), None);
        version.expires = Some(50);
        assert_eq!(unusable_because(&version, 100), Some("expired"));
        version.expires = None;
        version.not_before = Some(200);
        assert_eq!(unusable_because(&version, 100), Some("notYetValid"));
        version.enabled = Some(false);
        assert_eq!(unusable_because(&version, 100), Some("disabled"));
    }
}
