//! What the request handlers share: the settings fixed at start, the estate (one model per service), the
//! token registry, the faults, the request log, the counters and the emulator's clock.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::util::lock;
use crate::{apim_model, appservice_model, faults, store, synapse_model, token_store, trap};

/// One request the emulator received (control API excluded). Never holds an `Authorization` value or a
/// form body.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (may be empty).
    pub query: String,
    /// `"arm"`, `"keyvault"`, `"synapse"` (a workspace's development endpoint), `"entra"` or `"msi"`.
    pub host_kind: String,
    pub if_match: Option<String>,
    pub had_bearer: bool,
    /// The parsed JSON body, if the request had one (form bodies are never kept).
    pub body: Option<Value>,
    /// The status answered; `0` when the connection was dropped without a response.
    pub status: u16,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// What happened so far. Tests assert on these.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    /// PUTs that wrote `"**********"` over a stored `SecureString` value (data loss).
    pub masked_writes: u64,
    /// Requests that read a Key Vault secret value (`GET /secrets/{name}[/{version}]`).
    pub secret_value_reads: u64,
    /// 429 answers sent (bursts and token buckets).
    pub throttled: u64,
    /// Injected 500/503 answers.
    pub injected_errors: u64,
    /// Connections closed without a response.
    pub dropped: u64,
    /// Access tokens issued by the token endpoints.
    pub tokens_issued: u64,
    /// Accepted PUTs of linked services and credentials.
    pub puts: u64,
    /// Attempts to write the factory resource itself (PUT/PATCH/DELETE), all refused.
    pub factory_writes: u64,
    /// Calls that would read secret values and are always refused (403): App Service
    /// `config/appsettings/list` and `config/connectionstrings/list`, API Management `listValue`.
    pub secret_read_attempts: u64,
    /// App Service refresh POSTs (`…/config/configreferences/appsettings/refresh`), sites and slots.
    pub app_service_refreshes: u64,
    /// API Management `refreshSecret` POSTs accepted.
    pub named_value_refreshes: u64,
}

/// Settings fixed at start.
pub(crate) struct Config {
    pub https_url: String,
    pub page_size: usize,
    pub kv_page_size: usize,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub identity_header: String,
    pub managed_identity_client_id: String,
}

/// Everything the request handlers share.
pub(crate) struct Shared {
    pub config: Config,
    pub store: Mutex<store::Store>,
    /// Synapse workspaces and their long-running operations.
    pub synapse: Mutex<synapse_model::Estate>,
    /// App Service sites and slots with their Key Vault references. Lock before `store` when both are needed.
    pub appservice: Mutex<appservice_model::Estate>,
    /// API Management services and their named values. Lock before `store` when both are needed.
    pub apim: Mutex<apim_model::Estate>,
    pub tokens: token_store::Registry,
    pub faults: faults::FaultState,
    pub log: Mutex<RequestLog>,
    pub counters: Mutex<Counters>,
    pub started: Instant,
    /// The listener a broken Key Vault `nextLink` points at.
    pub trap: Arc<trap::Trap>,
    /// How far the emulator's clock runs ahead of the real one (`POST /_emulator/advance`), in seconds.
    pub clock_offset_secs: Mutex<i64>,
}

impl Shared {
    pub(crate) fn count(&self, update: impl FnOnce(&mut Counters)) {
        update(&mut lock(&self.counters));
    }

    /// The emulator's time in unix seconds: the real clock plus what `advance` added. Caches (App Service
    /// references, API Management named values) expire by this clock.
    pub(crate) fn now_unix(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        real.saturating_add(*lock(&self.clock_offset_secs))
    }
}

/// The request log, with ids so a response can find its entry after `clear_requests`.
#[derive(Default)]
pub(crate) struct RequestLog {
    pub next_id: u64,
    pub entries: Vec<(u64, RecordedRequest)>,
}
