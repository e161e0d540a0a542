//! Builds a runnable [`Azure`] from [`Settings`], and the entry points that the CLI and the functions share.

use crate::apply::{self, Azure, RunRequest};
use crate::azure::arm::ArmClient;
use crate::azure::auth;
use crate::azure::keyvault::VaultEndpoints;
use crate::azure::pacer::{Limits, Pacer};
use crate::azure::retry::RetryPolicy;
use crate::azure::synapse::SynapseClient;
use crate::config::{Scope, Settings};
use crate::observe::SynapseAccess;
use crate::plan::SecretRef;
use crate::report::Report;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(
        "no scope is configured: pass --scope or set ADF_REFRESH_SCOPE (nothing outside it is ever read or written)"
    )]
    NoScope,
    #[error("the ARM endpoint `{0}` must be an https URL")]
    ArmEndpoint(String),
}

/// Everything a process needs to run: the Azure clients, made once and shared by every run.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub azure: Azure,
    pub http: reqwest::Client,
}

impl App {
    pub fn new(settings: Settings) -> Result<App, SetupError> {
        if settings.scopes.is_empty() {
            return Err(SetupError::NoScope);
        }
        if !settings
            .arm_endpoint
            .to_ascii_lowercase()
            .starts_with("https://")
        {
            return Err(SetupError::ArmEndpoint(settings.arm_endpoint.clone()));
        }
        let http = auth::http_client(settings.ca_file.as_deref())?;
        let credential = auth::credential(settings.credential, &http)?;
        let pacer = Arc::new(Pacer::new(Limits::default()));
        let arm = ArmClient::new(
            http.clone(),
            &settings.arm_endpoint,
            credential.clone(),
            settings.credential,
            pacer,
            RetryPolicy::default(),
        )
        .with_in_flight(settings.concurrency);
        let synapse = SynapseAccess {
            client: SynapseClient::new(
                http.clone(),
                credential.clone(),
                settings.credential,
                RetryPolicy::default(),
            ),
            endpoint_template: settings.synapse_endpoint.clone(),
        };
        let azure = Azure {
            arm,
            http: http.clone(),
            credential,
            vaults: VaultEndpoints {
                template: settings.keyvault_endpoint.clone(),
            },
            concurrency: settings.concurrency,
            synapse,
            platforms: settings.platforms.clone(),
            discovery: None,
        };
        Ok(App {
            settings: Arc::new(settings),
            azure,
            http,
        })
    }

    /// The same app, sharing one discovery per scope between the runs of a burst for `window` (zero: every
    /// run discovers on its own). For a long-lived process that serves many rotations, such as the Functions host.
    pub fn with_shared_discovery(mut self, window: std::time::Duration) -> App {
        self.azure.discovery = (!window.is_zero())
            .then(|| Arc::new(crate::observe::cache::DiscoveryCache::new(window)));
        self
    }

    /// Runs a plan or refresh within the configured scopes (or a narrower set inside them).
    pub async fn run(&self, mut request: RunRequest) -> Report {
        if request.scopes.is_empty() {
            request.scopes = self.settings.scopes.clone();
        }
        if request.deadline.is_none() {
            request.deadline = Some(tokio::time::Instant::now() + self.settings.run_budget);
        }
        apply::run(&self.azure, request).await
    }

    /// The secret a run is about, with its vault's DNS suffix: from the secret's URL when the event gave one,
    /// else the configured cloud's.
    pub fn secret(
        &self,
        vault: &str,
        name: &str,
        version: Option<String>,
        secret_url: Option<&str>,
    ) -> SecretRef {
        SecretRef {
            vault_suffix: self.settings.vault_suffix_of(vault, secret_url),
            vault: vault.to_string(),
            name: name.to_string(),
            version,
        }
    }

    /// Whether every scope in `requested` lies inside the configured scopes.
    pub fn scopes_allowed(&self, requested: &[Scope]) -> bool {
        requested
            .iter()
            .all(|r| self.settings.scopes.iter().any(|s| s.covers(r)))
    }
}
