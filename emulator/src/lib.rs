//! A local Azure emulator for `adf-secret-refresh`: ARM for Data Factory (and the listing of Synapse
//! workspaces), the Synapse workspace development endpoint, Key Vault, the Entra
//! client-credentials endpoint (all over TLS with a self-signed CA), and the App Service managed-identity
//! endpoint plus a control API (plain HTTP).
//!
//! It answers with the shapes of the real services (checked against the ADF REST spec examples by the
//! tests), records every request, and injects faults on demand: latency, 5xx, dropped connections, 429
//! bursts, ARM's per-subscription token buckets, token-endpoint outages and concurrent edits (412).
//!
//! ```no_run
//! # async fn demo() -> Result<(), adf_emulator::Error> {
//! let emulator = adf_emulator::start(adf_emulator::demo_seed(), adf_emulator::Options::default()).await?;
//! for (name, value) in emulator.env() {
//!     println!("{name}={value}");
//! }
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

// Layers, each using only those above it: util, http, error, trap, tls, faults (leaves); the models
// (token_store, authoring, store, synapse_model, appservice_model, apim_model); state; the handlers
// (arm_common and write, then arm, connectivity, pipelines, keyvault, synapse, appservice, apim, tokens,
// control);
// server; this file.
mod apim;
mod apim_model;
mod appservice;
mod appservice_model;
mod arm;
mod arm_common;
mod authoring;
mod connectivity;
mod control;
mod error;
mod faults;
pub mod host;
mod http;
mod keyvault;
mod pipelines;
mod seeds;
mod server;
mod state;
mod store;
mod synapse;
mod synapse_model;
mod tls;
mod token_store;
mod tokens;
mod trap;
mod util;
mod write;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::Error;
pub use faults::{
    Burst429, ConcurrentEdit, Faults, KvPageFault, KvPageFaultKind, PageFault, PageFaultKind,
    Synapse429,
};
pub use seeds::{LargeEstate, demo_seed, large_estate, large_estate_with, subscription_scopes};
pub use serde_json::Value;
pub use state::{Counters, RecordedRequest};
pub use trap::TrapStats;

use state::{Config, Shared};
use util::lock;

/// How to start the emulator.
#[derive(Clone, Debug)]
pub struct Options {
    /// ARM list page size (factories, linked services, credentials). Default 50.
    pub page_size: usize,
    /// Key Vault list page size (secret versions). Default 25.
    pub kv_page_size: usize,
    /// Faults active from the start.
    pub faults: Faults,
    /// Where to write the CA certificate (PEM). Default: a temporary file removed at shutdown.
    pub ca_out: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            page_size: 50,
            kv_page_size: 25,
            faults: Faults::default(),
            ca_out: None,
        }
    }
}

/// A running emulator. Cheap to clone; it shuts down when the last clone is dropped or on
/// [`Emulator::shutdown`].
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    https_url: String,
    http_url: String,
    ca_file: PathBuf,
    remove_ca_file: bool,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if self.remove_ca_file {
            let _ = std::fs::remove_file(&self.ca_file);
        }
    }
}

/// Starts the emulator on two ephemeral ports of 127.0.0.1 (one TLS, one plain HTTP).
pub async fn start(seed: Value, options: Options) -> Result<Emulator, Error> {
    let https = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let trap_listener = TcpListener::bind("127.0.0.1:0").await?;
    let trap = Arc::new(trap::Trap::new(trap_listener.local_addr()?.port()));
    let https_url = format!("https://127.0.0.1:{}", https.local_addr()?.port());
    let http_url = format!("http://127.0.0.1:{}", http.local_addr()?.port());

    let parsed = store::Store::from_seed(&seed).map_err(Error::Seed)?;
    let workspaces = synapse_model::Estate::from_seed(&seed).map_err(Error::Seed)?;
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let sites =
        appservice_model::Estate::from_seed(&seed, &parsed, started_unix).map_err(Error::Seed)?;
    let services =
        apim_model::Estate::from_seed(&seed, &parsed, started_unix).map_err(Error::Seed)?;
    let (ca_file, remove_ca_file) = match &options.ca_out {
        Some(path) => (path.clone(), false),
        None => (
            std::env::temp_dir().join(format!("adf-emulator-ca-{}.pem", uuid::Uuid::new_v4())),
            true,
        ),
    };
    let acceptor = tls::acceptor(&ca_file)?;

    let config = Config {
        https_url: https_url.clone(),
        page_size: options.page_size.max(1),
        kv_page_size: options.kv_page_size.max(1),
        tenant_id: parsed.tenant_id.clone(),
        client_id: parsed.client_id.clone(),
        client_secret: parsed.client_secret.clone(),
        identity_header: util::random_secret("idh-"),
        managed_identity_client_id: parsed.managed_identity_client_id.clone(),
    };
    let shared = Arc::new(Shared {
        config,
        store: Mutex::new(parsed),
        synapse: Mutex::new(workspaces),
        appservice: Mutex::new(sites),
        apim: Mutex::new(services),
        tokens: token_store::Registry::default(),
        faults: faults::FaultState::new(options.faults),
        log: Mutex::new(state::RequestLog::default()),
        counters: Mutex::new(Counters::default()),
        started: Instant::now(),
        trap: Arc::clone(&trap),
        clock_offset_secs: Mutex::new(0),
    });

    let (shutdown, shutdown_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(trap::serve(
            trap_listener,
            acceptor.clone(),
            trap,
            shutdown_rx.clone(),
        )),
        tokio::spawn(server::serve(
            https,
            Some(acceptor),
            Arc::clone(&shared),
            shutdown_rx.clone(),
        )),
        tokio::spawn(server::serve(http, None, Arc::clone(&shared), shutdown_rx)),
    ];
    tracing::info!(%https_url, %http_url, ca_file = %ca_file.display(), "adf-emulator started");
    Ok(Emulator {
        inner: Arc::new(Handle {
            shared,
            https_url,
            http_url,
            ca_file,
            remove_ca_file,
            shutdown,
            tasks: Mutex::new(tasks),
        }),
    })
}

impl Emulator {
    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// `https://127.0.0.1:PORT`: ARM (root), Key Vault (`/kv/{vault}/`) and the Entra token endpoint.
    pub fn https_url(&self) -> String {
        self.inner.https_url.clone()
    }

    /// `http://127.0.0.1:PORT`: the managed-identity endpoint and the control API (`/_emulator/`).
    pub fn http_url(&self) -> String {
        self.inner.http_url.clone()
    }

    /// The ARM endpoint (same as [`Emulator::https_url`]).
    pub fn arm_endpoint(&self) -> String {
        self.https_url()
    }

    /// `https://127.0.0.1:PORT/kv/{vault}/`: substitute `{vault}` with the vault name.
    pub fn keyvault_endpoint_template(&self) -> String {
        format!("{}/kv/{{vault}}/", self.inner.https_url)
    }

    /// `https://127.0.0.1:PORT/synapse/{workspace}/`: a Synapse workspace's development endpoint, the
    /// same base the ARM listing gives as `connectivityEndpoints.dev`.
    pub fn synapse_endpoint_template(&self) -> String {
        format!("{}/synapse/{{workspace}}/", self.inner.https_url)
    }

    /// The stored Synapse linked service (unmasked), by workspace name and linked-service name.
    pub fn synapse_linked_service(&self, workspace: &str, name: &str) -> Option<Value> {
        lock(&self.shared().synapse).linked_service_resource(workspace, name)
    }

    /// The PEM file of the CA that signed the TLS listener's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.inner.ca_file.clone()
    }

    /// `http://127.0.0.1:PORT/msi/token` (App Service style `IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.inner.http_url)
    }

    /// The `X-IDENTITY-HEADER` value the managed-identity endpoint requires.
    pub fn identity_header(&self) -> String {
        self.shared().config.identity_header.clone()
    }

    /// The Entra authority host (for `AZURE_AUTHORITY_HOST`).
    pub fn authority_host(&self) -> String {
        self.https_url()
    }

    pub fn tenant_id(&self) -> String {
        self.shared().config.tenant_id.clone()
    }

    /// The client id of the app registration the client-credentials endpoint accepts.
    pub fn client_id(&self) -> String {
        self.shared().config.client_id.clone()
    }

    /// The client secret of that app registration.
    pub fn client_secret(&self) -> String {
        self.shared().config.client_secret.clone()
    }

    /// The environment that points the product at this emulator (managed-identity credential).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("ADF_REFRESH_ARM_ENDPOINT", self.arm_endpoint()),
            (
                "ADF_REFRESH_KEYVAULT_ENDPOINT",
                self.keyvault_endpoint_template(),
            ),
            (
                "ADF_REFRESH_CA_FILE",
                self.ca_file().to_string_lossy().into_owned(),
            ),
            (
                "ADF_REFRESH_SYNAPSE_ENDPOINT",
                self.synapse_endpoint_template(),
            ),
            ("IDENTITY_ENDPOINT", self.identity_endpoint()),
            ("IDENTITY_HEADER", self.identity_header()),
            ("ADF_REFRESH_CREDENTIAL", "managed-identity".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Every request received (control API excluded), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared().log)
            .entries
            .iter()
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared().log).entries.clear();
    }

    /// The full stored estate, with true inline secret values, etags, re-save flags and counters.
    pub fn state(&self) -> Value {
        control::state(self.shared())
    }

    /// The stored linked service (unmasked), by factory resource id (case-insensitive) and name.
    pub fn linked_service(&self, factory_id: &str, name: &str) -> Option<Value> {
        lock(&self.shared().store).linked_service_resource(factory_id, name)
    }

    /// Replaces the active faults (the token outage window starts now, the RNG is reseeded).
    pub fn set_faults(&self, faults: Faults) {
        self.shared().faults.set(faults);
    }

    /// Every secret string the emulator knows: Key Vault values, inline values, issued tokens, the
    /// identity header and the client secret.
    pub fn known_secrets(&self) -> Vec<String> {
        control::known_secrets(self.shared())
    }

    /// What reached the trap listener (the target of the `foreignPortNextLink` Key Vault fault).
    pub fn trap(&self) -> TrapStats {
        self.shared().trap.stats()
    }

    /// Creates a new current version of a Key Vault secret (a rotation), with a random value; returns the
    /// new version id, or `None` when the vault or secret does not exist.
    pub fn rotate(&self, vault: &str, secret: &str) -> Option<String> {
        control::rotate(self.shared(), vault, secret)
    }

    /// Moves the emulator's clock forward (caches expire by it: App Service 24 h, API Management 4 h).
    pub fn advance_hours(&self, hours: u64) {
        control::advance(self.shared(), hours);
    }

    /// What an app would read through one App Service Key Vault reference: `{"status", "version",
    /// "details", "resolvedAt", "refreshes", …}`. `id` is the site's or slot's resource id; `kind` is
    /// `appsettings` or `connectionstrings`.
    pub fn site_reference(&self, id: &str, kind: &str, name: &str) -> Option<Value> {
        control::site_reference(self.shared(), id, kind, name)
    }

    /// The refresh POSTs a site or slot received.
    pub fn site_refreshes(&self, id: &str) -> Option<u64> {
        lock(&self.shared().appservice).refreshes(id)
    }

    /// An API Management named value's cached state by its resource id (`…/service/{s}/namedValues/{id}`):
    /// `{"id", "secretIdentifier", "version", "lastStatus", "refreshes"}`.
    pub fn named_value(&self, id: &str) -> Option<Value> {
        control::named_value(self.shared(), id)
    }

    /// TCP connections the trap listener accepted.
    pub fn trap_connections(&self) -> u64 {
        self.trap().connections
    }

    pub fn counters(&self) -> Counters {
        lock(&self.shared().counters).clone()
    }

    /// Stops both listeners and closes every open connection.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            let _ = task.await;
        }
    }
}
