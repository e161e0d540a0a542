//! The shared HTTP client, the choice of credential, and what a credential's failure means.
//!
//! One `reqwest` client serves our ARM calls, the Key Vault SDK pipeline and every credential, through
//! `azure_core`'s transport option, so an extra CA (`--ca-file`) and timeouts apply everywhere alike.
//! [`classify_token_error`] tells a failure worth retrying (an outage) from one that no retry can mend (a
//! missing `az`, no `az login`, the wrong tenant, a bad client secret), and says what fixes the latter.

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Which identity the product uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialKind {
    ManagedIdentity,
    DeveloperTools,
    ClientSecret,
    WorkloadIdentity,
}

impl CredentialKind {
    /// Managed identity when the Functions host provides one (`IDENTITY_ENDPOINT`), else the developer's `az login`.
    pub fn automatic(identity_endpoint_set: bool) -> Self {
        if identity_endpoint_set {
            CredentialKind::ManagedIdentity
        } else {
            CredentialKind::DeveloperTools
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::ManagedIdentity => "managed-identity",
            CredentialKind::DeveloperTools => "developer-tools",
            CredentialKind::ClientSecret => "client-secret",
            CredentialKind::WorkloadIdentity => "workload-identity",
        }
    }
    /// Where the credential gets its tokens, for error messages (never with a secret in it).
    pub fn token_endpoint(self) -> String {
        let env = |k: &str| std::env::var(k).ok();
        match self {
            CredentialKind::ManagedIdentity => env("IDENTITY_ENDPOINT")
                .map(|e| redact_query(&e))
                .unwrap_or_else(|| "the instance metadata service (169.254.169.254)".into()),
            CredentialKind::DeveloperTools => "the Azure CLI (az account get-access-token)".into(),
            CredentialKind::ClientSecret | CredentialKind::WorkloadIdentity => format!(
                "{}/{}/oauth2/v2.0/token",
                env("AZURE_AUTHORITY_HOST")
                    .unwrap_or_else(|| "https://login.microsoftonline.com".into())
                    .trim_end_matches('/'),
                env("AZURE_TENANT_ID").unwrap_or_else(|| "<AZURE_TENANT_ID unset>".into())
            ),
        }
    }
}

/// A URL without its query string, which may hold keys.
pub fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot set up the {kind} credential: {reason}")]
    Credential { kind: &'static str, reason: String },
}

/// Builds the one HTTP client, trusting the extra roots in `ca_file` if given.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, AuthError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("adf-secret-refresh/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| AuthError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| AuthError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if certs.is_empty() {
            return Err(AuthError::CaFile {
                path: path.display().to_string(),
                reason: "it holds no PEM certificate".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| AuthError::Client(e.to_string()))
}

/// `azure_core` client options that send through our client, with retries bounded so that a run's
/// deadline, not the SDK's default patience, decides when to give up.
pub fn client_options(http: &reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(200),
            max_retries: 3,
            max_total_elapsed: azure_core::time::Duration::seconds(10),
            max_delay: azure_core::time::Duration::seconds(3),
        }),
        ..ClientOptions::default()
    }
}

/// Builds the credential of the given kind from the standard environment variables.
pub fn credential(
    kind: CredentialKind,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let fail = |e: azure_core::Error| AuthError::Credential {
        kind: kind.name(),
        reason: e.to_string(),
    };
    let options = client_options(http);
    let client_id = std::env::var("AZURE_CLIENT_ID")
        .ok()
        .filter(|s| !s.is_empty());
    Ok(match kind {
        CredentialKind::ManagedIdentity => azure_identity::ManagedIdentityCredential::new(Some(
            azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.map(azure_identity::UserAssignedId::ClientId),
                client_options: options,
            },
        ))
        .map_err(fail)?,
        CredentialKind::DeveloperTools => {
            azure_identity::DeveloperToolsCredential::new(None).map_err(fail)?
        }
        CredentialKind::ClientSecret => {
            let need = |k: &str| {
                std::env::var(k).map_err(|_| AuthError::Credential {
                    kind: kind.name(),
                    reason: format!("{k} is not set"),
                })
            };
            let tenant = need("AZURE_TENANT_ID")?;
            let client = need("AZURE_CLIENT_ID")?;
            let secret = need("AZURE_CLIENT_SECRET")?;
            azure_identity::ClientSecretCredential::new(
                &tenant,
                client,
                secret.into(),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: options,
                }),
            )
            .map_err(fail)?
        }
        CredentialKind::WorkloadIdentity => azure_identity::WorkloadIdentityCredential::new(Some(
            azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions {
                    client_options: options,
                },
                ..Default::default()
            },
        ))
        .map_err(fail)?,
    })
}

/// What a failed token request means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// Possibly an outage: worth another try. The full message of the credential's error.
    Transient(String),
    /// No retry can mend it: `what` is missing or wrong, `fix` is the command or setting that mends it, and
    /// `detail` is the credential's own full message.
    Permanent {
        what: String,
        fix: String,
        detail: String,
    },
}

impl std::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenFailure::Transient(message) => f.write_str(message),
            TokenFailure::Permanent { what, fix, detail } => {
                write!(f, "{what}. Fix: {fix}. The credential said: {detail}")
            }
        }
    }
}

/// Classifies a credential's error; see [`classify_token_message`].
pub fn classify_token_error(e: &azure_core::Error) -> TokenFailure {
    classify_token_message(&full_message(e))
}

/// Classifies the full text of a credential's error (as [`full_message`] gives it). Pure, so that each known
/// failure is a unit test: the texts are those of `azure_identity` 1.0 and of the Azure CLI and Entra ID
/// (`AADSTS` codes) that it passes on.
pub fn classify_token_message(message: &str) -> TokenFailure {
    let text = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    // Which kind of credential spoke: the fixes differ for a developer's sign-in and an app registration.
    let app_registration = has(&[
        "clientsecretcredential",
        "workloadidentitycredential",
        "clientassertioncredential",
        "clientcertificatecredential",
    ]);
    let permanent = |what: &str, fix: &str| TokenFailure::Permanent {
        what: what.to_string(),
        fix: fix.to_string(),
        detail: message.to_string(),
    };
    if has(&[
        "az not found on path",
        "\"az\" wasn't found",
        "'az' is not recognized",
    ]) {
        return permanent(
            "the Azure CLI (`az`), which the developer-tools credential asks for tokens, is not installed or not on PATH",
            "install the Azure CLI (https://aka.ms/installazurecli), then sign in with `az login` \
             (`az login --tenant <tenant id>` for the tenant that holds the factories)",
        );
    }
    if has(&["please use azure cli 2.54.0 or newer"]) {
        return permanent(
            "the Azure CLI is older than 2.54.0, whose token answers this credential cannot read",
            "run `az upgrade`",
        );
    }
    if has(&["aadsts7000215", "aadsts7000222"]) {
        return permanent(
            "the client secret (AZURE_CLIENT_SECRET) is wrong or has expired",
            "create a new client secret for the app registration (AZURE_CLIENT_ID) and set AZURE_CLIENT_SECRET to it",
        );
    }
    if has(&[
        "aadsts90002",
        "aadsts50020",
        "aadsts700016",
        "aadsts90072",
        "aadsts50128",
        "aadsts50059",
        "aadsts900023",
    ]) {
        return if app_registration {
            permanent(
                "the tenant (AZURE_TENANT_ID) does not exist or does not hold the app registration (AZURE_CLIENT_ID)",
                "set AZURE_TENANT_ID to the tenant of the app registration, and AZURE_CLIENT_ID to its application (client) id",
            )
        } else {
            permanent(
                "the Azure CLI is signed in to a tenant that does not exist or that your account is not in",
                "run `az login --tenant <tenant id>` with the tenant that holds the factories",
            )
        };
    }
    if has(&["aadsts70021", "aadsts700211", "aadsts700213"]) {
        return permanent(
            "the app registration has no federated credential that matches this workload's token",
            "add a federated credential for this workload's issuer and subject to the app registration (AZURE_CLIENT_ID)",
        );
    }
    if !app_registration
        && has(&[
            "az login",
            "aadsts700082",
            "aadsts50173",
            "aadsts50076",
            "aadsts50078",
            "aadsts50079",
            "aadsts530003",
            "interaction_required",
            "interactive authentication is needed",
        ])
    {
        return permanent(
            "the Azure CLI is not signed in, or its sign-in has expired",
            "run `az login` (`az login --tenant <tenant id>` for the tenant that holds the factories)",
        );
    }
    if has(&["identity not found", "no managed identity endpoint found"]) {
        return permanent(
            "this host has no managed identity with the client id the app names",
            "set AZURE_CLIENT_ID to the client id of a user-assigned identity attached to the app, or remove it to use the system-assigned identity",
        );
    }
    TokenFailure::Transient(message.to_string())
}

/// The whole text of an error and of its sources, on one line, for a report or a terminal: every line of
/// every message (the SDK's aggregate of several credentials spans lines), each said once. A word that looks
/// like a bearer token (a JWT) is replaced by `***`, though no credential is known to put one in an error.
pub fn full_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = current {
        // The SDK's aggregate joins an error and its sources with " - ": each part is said once.
        for part in error.to_string().lines().flat_map(|line| line.split(" - ")) {
            let part = part.trim();
            if !part.is_empty() && !lines.iter().any(|seen| seen.contains(part)) {
                lines.push(part.to_string());
            }
        }
        current = error.source();
    }
    let mut joined = String::new();
    for line in &lines {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line);
    }
    let redacted: Vec<&str> = joined
        .split(' ')
        .map(|word| if looks_like_jwt(word) { "***" } else { word })
        .collect();
    let text = redacted.join(" ");
    if text.chars().count() > 2000 {
        text.chars().take(2000).chain("…".chars()).collect()
    } else {
        text
    }
}

/// Whether a word has the shape of a JWT: `eyJ…`, three base64url parts.
fn looks_like_jwt(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
    word.starts_with("eyJ")
        && word.split('.').count() == 3
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::error::{Error, ErrorKind};

    /// What `DeveloperToolsCredential` says when neither `az` nor `azd` is installed (azure_identity 1.0).
    const NO_AZ: &str = "Multiple errors were encountered while attempting to authenticate:\n\
        AzureCliCredential authentication failed. az not found on PATH\n\
        To troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#azure-cli - az not found on PATH\n\
        AzureDeveloperCliCredential authentication failed. azd not found on PATH\n\
        To troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#azd - azd not found on PATH";

    fn what(failure: &TokenFailure) -> &str {
        match failure {
            TokenFailure::Permanent { what, .. } => what,
            TokenFailure::Transient(_) => "transient",
        }
    }

    fn fix(failure: &TokenFailure) -> &str {
        match failure {
            TokenFailure::Permanent { fix, .. } => fix,
            TokenFailure::Transient(_) => "",
        }
    }

    #[test]
    fn a_missing_azure_cli_is_permanent_and_says_to_install_it_and_sign_in() {
        let failure = classify_token_error(&Error::with_message(ErrorKind::Credential, NO_AZ));
        assert!(what(&failure).contains("Azure CLI (`az`)"), "{failure:?}");
        assert!(fix(&failure).contains("install the Azure CLI"));
        assert!(fix(&failure).contains("az login"));
        let shown = failure.to_string();
        assert!(
            shown.contains("az not found on PATH") && shown.contains("azd not found on PATH"),
            "the whole message, not its first line: {shown}"
        );
        assert!(!shown.trim_end().ends_with(':'));
    }

    #[test]
    fn an_azure_cli_without_a_sign_in_is_permanent_and_says_az_login() {
        let text = "Multiple errors were encountered while attempting to authenticate:\n\
            AzureCliCredential authentication failed. ERROR: Please run 'az login' to setup account.\n\
            To troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#azure-cli\n\
            AzureDeveloperCliCredential authentication failed. azd not found on PATH";
        let failure = classify_token_message(text);
        assert_eq!(
            what(&failure),
            "the Azure CLI is not signed in, or its sign-in has expired"
        );
        assert!(fix(&failure).starts_with("run `az login`"));
        let expired = "AzureCliCredential authentication failed. ERROR: AADSTS700082: The refresh token has expired due to inactivity.";
        assert_eq!(what(&classify_token_message(expired)), what(&failure));
    }

    #[test]
    fn a_wrong_tenant_is_permanent_and_the_fix_depends_on_the_credential() {
        let cli = "AzureCliCredential authentication failed. ERROR: AADSTS90002: Tenant 'contoso.onmicrosoft.con' not found.";
        assert!(fix(&classify_token_message(cli)).contains("az login --tenant"));
        let app = "ClientSecretCredential authentication failed. AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.";
        assert!(fix(&classify_token_message(app)).contains("AZURE_TENANT_ID"));
    }

    #[test]
    fn an_invalid_or_expired_client_secret_is_permanent() {
        for code in [
            "AADSTS7000215: Invalid client secret.",
            "AADSTS7000222: The provided client secret keys are expired.",
        ] {
            let text = format!("ClientSecretCredential authentication failed. {code}");
            assert!(
                fix(&classify_token_message(&text)).contains("AZURE_CLIENT_SECRET"),
                "{code}"
            );
        }
    }

    #[test]
    fn outages_and_unknown_failures_are_transient() {
        for text in [
            "ManagedIdentityCredential authentication failed. error sending request: connection refused",
            "ClientSecretCredential authentication failed. AADSTS50196: The server terminated an operation because it encountered a client request loop.",
            "AzureCliCredential authentication failed. ERROR: HTTPSConnectionPool(host='login.microsoftonline.com', port=443): Read timed out.",
            "operation timed out",
        ] {
            assert_eq!(
                classify_token_message(text),
                TokenFailure::Transient(text.to_string())
            );
        }
    }

    #[test]
    fn the_full_message_keeps_every_line_and_source_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "az not found on PATH");
        let outer = Error::with_error(ErrorKind::Credential, inner, NO_AZ);
        let text = full_message(&outer);
        assert!(text.starts_with("Multiple errors were encountered while attempting to authenticate: AzureCliCredential"), "{text}");
        assert!(text.contains("azd not found on PATH"));
        assert_eq!(
            text.matches("AzureCliCredential authentication failed")
                .count(),
            1
        );
        assert_eq!(text.matches("az not found on PATH").count(), 1, "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn the_full_message_never_carries_a_bearer_token() {
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQifQ.c2lnbmF0dXJl";
        let e = Error::with_message(ErrorKind::Credential, format!("unexpected answer: {token}"));
        let text = full_message(&e);
        assert!(!text.contains(token), "{text}");
        assert!(text.contains("***"));
    }
}
