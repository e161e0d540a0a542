//! The shared HTTP client and the choice of credential.
//!
//! One `reqwest` client serves our ARM calls, the Key Vault SDK pipeline and every credential, through
//! `azure_core`'s transport option, so an extra CA (`--ca-file`) and timeouts apply everywhere alike.

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
