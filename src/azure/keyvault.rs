//! Key Vault secret metadata: the versions of a secret, listed page by page through the product's one HTTP client,
//! the one retry loop and the one pager.
//!
//! The product never reads a secret value: nothing it does needs one, and "Key Vault Reader" suffices for listing
//! versions (`GET {vault}/secrets/{name}/versions`, which holds no values). Key Vault's challenge is answered here:
//! the first request goes without a token, and the 401's `WWW-Authenticate` names the token's resource, which must
//! be a parent domain of the vault's host (unless `--keyvault-endpoint` is configured), as the SDK's
//! `verify_challenge_resource` requires. Every page is checked: an error object or a non-object item is retried
//! and, if it persists, the listing fails; it never reads as "no versions". A `nextLink` is followed only on the
//! vault's origin, so the token goes nowhere else.

use super::auth::redact_query;
use super::error::AzureError;
use super::pager;
use super::request::{self, Exchange, Expect, REQUEST_LIMIT};
use super::retry::{self, Attempt, RetryPolicy};
use azure_core::credentials::TokenCredential;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The Key Vault data-plane api-version of the versions listing.
pub const KEYVAULT_API_VERSION: &str = "7.5";
/// What a refusal calls for.
pub const REMEDY: &str =
    "Assign the product's identity the 'Key Vault Reader' role on the vault (metadata only)";
/// The name of the listing in errors and logs.
const OPERATION: &str = "listSecretVersions";
/// How long one listing may take, 429s included, when the caller sets no tighter bound: the metadata only
/// informs the report, so it must not spend the run's budget.
const LISTING_LIMIT: Duration = Duration::from_secs(20);

/// The retries of a listing: as the Key Vault SDK's pipeline was configured (`auth::client_options`: 3 retries
/// from 200 ms, at most 3 s apart); 429s wait for `Retry-After` within [`LISTING_LIMIT`] without counting.
fn listing_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(3),
    }
}

/// One token request: the credential retries on its own (`auth::client_options`), and a metadata read must not
/// outlast the discovery that follows it when the token endpoint is down.
fn token_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..listing_policy()
    }
}

/// What Key Vault says about one version of a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMetadata {
    pub version: String,
    pub enabled: Option<bool>,
    pub created: Option<i64>,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
}

/// The one error of every Azure client, under the name Key Vault's callers know. `list_versions` answers
/// `Forbidden`, `NotFound` (the secret), `VaultNotFound` (incl. a host that does not resolve), or another meaning
/// that callers read as "unavailable".
pub type KeyVaultError = AzureError;

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
    let base = endpoints.url(vault, secret_url);
    let first = versions_url(&base, secret)?;
    let policy = listing_policy();
    let deadline = Some(Instant::now() + LISTING_LIMIT);
    let scope = challenge(
        http,
        &first,
        vault,
        endpoints.template.is_none(),
        &policy,
        deadline,
    )
    .await?;
    let token =
        request::bearer_token(credential.as_ref(), None, &scope, &token_policy(), deadline).await?;
    let token = token.as_str();
    let listed = pager::list(OPERATION, first, pager::MAX_PAGES, &|_| true, |url| {
        let policy = &policy;
        async move {
            retry::run(policy, deadline, |attempt| {
                let url = &url;
                async move {
                    let request = http
                        .get(url.clone())
                        .timeout(retry::request_timeout(REQUEST_LIMIT, deadline))
                        .bearer_auth(token);
                    let x = page_exchange(url, vault, attempt);
                    unresolved_is_missing(request::exchange(request, &x).await, vault)
                }
            })
            .await
            .map(|page| page.body)
        }
    })
    .await?;
    Ok(listed.kept.iter().map(version_of).collect())
}

/// `{vault}/secrets/{name}/versions?api-version=…`, the name one percent-encoded segment. Only `https`, since a
/// bearer token goes with it (the Key Vault SDK requires TLS as well); plain http only on loopback, for emulators.
fn versions_url(base: &str, secret: &str) -> Result<Url, KeyVaultError> {
    let bad =
        |why: &str| AzureError::Config(format!("the vault URL {}: {why}", redact_query(base)));
    let mut url = Url::parse(base).map_err(|_| bad("not a URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || url.scheme() == "http" && loopback) || url.host_str().is_none()
    {
        return Err(bad("Key Vault is reached over https only"));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| bad("cannot take a path"))?
        .pop_if_empty()
        .extend(["secrets", secret, "versions"]);
    url.query_pairs_mut()
        .append_pair("api-version", KEYVAULT_API_VERSION);
    Ok(url)
}

/// The challenge: the listing's first request, without a token. Its 401 `WWW-Authenticate` names the token's
/// scope; any other answer means what it means for every client (a missing vault, a 5xx retried, …).
async fn challenge(
    http: &reqwest::Client,
    url: &Url,
    vault: &str,
    verify_resource: bool,
    policy: &RetryPolicy,
    deadline: Option<Instant>,
) -> Result<String, KeyVaultError> {
    retry::run(policy, deadline, |attempt| async move {
        let request = http
            .get(url.clone())
            .timeout(retry::request_timeout(REQUEST_LIMIT, deadline));
        let raw = match request::fetch(request, OPERATION, attempt).await {
            Ok(raw) => raw,
            Err(retry) => return unresolved_is_missing(retry.map(|_| String::new()), vault),
        };
        if raw.status == 401 {
            let header = raw.header("www-authenticate").unwrap_or("");
            let refused = |message: String| {
                Attempt::Fail(AzureError::Rejected {
                    operation: OPERATION,
                    status: 401,
                    code: "UnusableChallenge".into(),
                    message,
                    body: Box::new(Value::Null),
                    request_id: raw.header("x-ms-request-id").map(str::to_string),
                })
            };
            let Some(scope) = scope_of_challenge(header) else {
                return refused("the vault's 401 names no token resource".into());
            };
            if verify_resource && !resource_fits(&scope, url) {
                return refused(format!(
                    "the vault's challenge names the resource {scope}, which is not a parent domain of the vault's host; no token was sent"
                ));
            }
            return Attempt::Done(scope);
        }
        match request::classify(&page_exchange(url, vault, attempt), raw).map(|_| String::new()) {
            // A vault that lists without asking for a token is not one to trust with one.
            Attempt::Done(_) => Attempt::Fail(AzureError::Rejected {
                operation: OPERATION,
                status: 200,
                code: "NoChallenge".into(),
                message: "the vault answered without asking for a token".into(),
                body: Box::new(Value::Null),
                request_id: None,
            }),
            other => other,
        }
    })
    .await
}

/// One attempt at a page of the listing, as the shared classifier needs it.
fn page_exchange<'a>(url: &'a Url, vault: &'a str, attempt: u32) -> Exchange<'a> {
    Exchange {
        operation: OPERATION,
        expect: Expect::Page { origin: url },
        remedy: REMEDY,
        target: vault,
        attempt,
    }
}

/// The scope a challenge asks for: `scope="…"` as it is, or `resource="…"` + `/.default`.
fn scope_of_challenge(header: &str) -> Option<String> {
    let value = |name: &str| {
        let start = header.find(&format!("{name}=\""))? + name.len() + 2;
        let end = header[start..].find('"')?;
        Some(header[start..start + end].trim().to_string()).filter(|v| !v.is_empty())
    };
    value("scope")
        .or_else(|| value("resource").map(|r| format!("{}/.default", r.trim_end_matches('/'))))
}

/// Whether the challenge's resource is a parent domain of the vault's host (`vault.azure.net` for
/// `kv.vault.azure.net`), so that a token is only ever asked for the vault's own audience.
fn resource_fits(scope: &str, vault: &Url) -> bool {
    let resource_host = Url::parse(scope)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let vault_host = vault
        .host_str()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    match (resource_host, vault_host) {
        (Some(resource), Some(host)) => host.ends_with(&format!(".{resource}")),
        _ => false,
    }
}

/// A vault host that does not resolve is how Azure answers for a vault that was never created: that is a
/// missing vault at once, not an outage to retry.
fn unresolved_is_missing<T>(
    attempt: Attempt<T, AzureError>,
    vault: &str,
) -> Attempt<T, AzureError> {
    match attempt {
        Attempt::Retry {
            error: AzureError::Network { message, .. },
            ..
        } if names_unresolved_host(&message) => Attempt::Fail(AzureError::VaultNotFound {
            vault: vault.to_string(),
            message,
        }),
        other => other,
    }
}

fn names_unresolved_host(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
        || text.contains("no such host")
}

/// One item of a versions page (an object, as the page check made sure).
fn version_of(item: &Value) -> VersionMetadata {
    let attributes = item.get("attributes");
    let number = |key: &str| attributes.and_then(|a| a.get(key)).and_then(Value::as_i64);
    VersionMetadata {
        version: item
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
            .unwrap_or_default()
            .to_string(),
        enabled: attributes
            .and_then(|a| a.get("enabled"))
            .and_then(Value::as_bool),
        created: number("created"),
        not_before: number("nbf"),
        expires: number("exp"),
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
    fn a_challenge_gives_its_scope_and_its_resource_must_be_a_parent_domain_of_the_vault() {
        let resource = r#"Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net""#;
        assert_eq!(
            scope_of_challenge(resource).as_deref(),
            Some("https://vault.azure.net/.default")
        );
        let scope = r#"Bearer authorization="https://login.microsoftonline.com/t", scope="https://vault.azure.net/.default""#;
        assert_eq!(
            scope_of_challenge(scope).as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(scope_of_challenge("Bearer realm=\"x\""), None);
        let vault = Url::parse("https://kv.vault.azure.net/secrets/s/versions").expect("url");
        assert!(resource_fits("https://vault.azure.net/.default", &vault));
        assert!(resource_fits("https://VAULT.azure.net/.default", &vault));
        assert!(!resource_fits("https://evil.example/.default", &vault));
        assert!(!resource_fits(
            "https://kv.vault.azure.net/.default",
            &vault
        ));
        assert!(!resource_fits("https://azure.net.evil/.default", &vault));
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
