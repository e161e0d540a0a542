//! The Azure Functions custom handler: one handler per function, behind an axum router.
//!
//! The host starts `adf-secret-refresh serve` with `FUNCTIONS_CUSTOMHANDLER_PORT`, probes `GET /` until it
//! answers, and then posts each invocation to `POST /{FunctionName}` as `{"Data":…,"Metadata":…}`. We answer
//! `{"Outputs":…,"Logs":…,"ReturnValue":…}`. A non-2xx answer makes the host drop the outputs and retry, so it
//! is used only when a retry is wanted: a transient failure such as an ARM or token-endpoint outage. Whether
//! it is wanted is decided in one place, [`outcome::next`]; the handlers perform what it decides.

mod dedupe;
mod envelope;
mod handlers;
pub mod outcome;

pub use dedupe::Dedupe;
pub use envelope::{Invocation, InvocationResponse};
pub use handlers::{ManualRequest, RefreshJob, job_from_event};

use crate::app::App;
use crate::coordination::Coordinator;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The functions this app defines. Each has a folder of the same name under `function/`.
pub const FUNCTION_NAMES: &[&str] = &[
    "KeyVaultSecretEvent",
    "RefreshJob",
    "Refresh",
    "RefreshStatus",
    "Audit",
];

/// The storage queue that carries refresh jobs from `KeyVaultSecretEvent` to `RefreshJob`.
pub const REFRESH_JOB_QUEUE: &str = "refresh-jobs";
/// The storage queue that receives a message when a run needs a person's attention.
pub const ATTENTION_QUEUE: &str = "refresh-attention";
/// The blob container that receives every report.
pub const REPORT_CONTAINER: &str = "reports";
/// Where the host moves a `refresh-jobs` message after `MAX_DEQUEUE_COUNT` failed deliveries, and where the
/// final delivery of a job that never completed puts it (see `RefreshJob`).
pub const POISON_QUEUE: &str = "refresh-jobs-poison";
/// The deliveries of one queue message before the host gives up: host.json `extensions.queues.maxDequeueCount`.
pub const MAX_DEQUEUE_COUNT: u64 = 5;
/// A manual run's status document, `reports/runs/{id}.json`: progress while it runs, then its report.
pub const RUN_STATUS_FOLDER: &str = "runs";

/// How long `POST /api/refresh` may work before it hands the run to the queue and answers `202 Accepted`.
/// The front end cuts any HTTP-triggered response at 230 s, whatever `functionTimeout` says.
pub const HTTP_SYNC_SECONDS_SETTING: &str = "ADF_REFRESH_HTTP_SYNC_SECONDS";
/// The default of `ADF_REFRESH_HTTP_SYNC_SECONDS`: well inside the front end's 230 s.
pub const DEFAULT_HTTP_SYNC_SECONDS: u64 = 200;
/// The most `ADF_REFRESH_HTTP_SYNC_SECONDS` may be: a little below the front end's 230 s.
pub const MAX_HTTP_SYNC_SECONDS: u64 = 220;

/// The largest invocation envelope accepted; anything bigger is not a Key Vault event or a manual request.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct Handler {
    pub app: App,
    pub dedupe: Arc<Dedupe>,
    /// How long a manual run works before it answers 202 and continues as a queued job.
    pub http_sync: std::time::Duration,
    /// Cooperation with the app's other instances through its storage account; `None` runs uncoordinated
    /// (duplicates are then recognised within this instance only).
    pub coordinator: Option<Coordinator>,
}

/// `ADF_REFRESH_HTTP_SYNC_SECONDS` from its raw value: whole seconds from 1 to `MAX_HTTP_SYNC_SECONDS`.
pub fn http_sync_seconds(raw: Option<&str>) -> Result<u64, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_HTTP_SYNC_SECONDS);
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=MAX_HTTP_SYNC_SECONDS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{HTTP_SYNC_SECONDS_SETTING} must be a whole number of seconds from 1 to {MAX_HTTP_SYNC_SECONDS} (the front end cuts HTTP responses at 230 s), not `{}`",
            raw.chars().take(32).collect::<String>()
        )),
    }
}

/// The router, separate from serving so that tests can drive it without a socket. Uncoordinated.
pub fn router(app: App) -> Router {
    router_with(app, None)
}

/// The router with this instance's coordinator, if any.
pub fn router_with(app: App, coordinator: Option<Coordinator>) -> Router {
    let http_sync =
        match http_sync_seconds(std::env::var(HTTP_SYNC_SECONDS_SETTING).ok().as_deref()) {
            Ok(seconds) => seconds,
            Err(e) => {
                tracing::error!(
                    default = DEFAULT_HTTP_SYNC_SECONDS,
                    "{e}; using the default"
                );
                DEFAULT_HTTP_SYNC_SECONDS
            }
        };
    let state = Handler {
        app,
        dedupe: Arc::new(Dedupe::new(std::time::Duration::from_secs(15 * 60))),
        http_sync: std::time::Duration::from_secs(http_sync),
        coordinator,
    };
    Router::new()
        .route("/", get(|| async { "adf-secret-refresh" }))
        .route(
            "/KeyVaultSecretEvent",
            post(handlers::key_vault_secret_event),
        )
        .route("/RefreshJob", post(handlers::refresh_job))
        .route("/Refresh", post(handlers::refresh))
        .route("/RefreshStatus", post(handlers::refresh_status))
        .route("/Audit", post(handlers::audit))
        .layer(DefaultBodyLimit::max(MAX_ENVELOPE_BYTES))
        .with_state(state)
}

/// How long an instance waits for another instance's discovery of the same scopes before it lists them itself.
const SHARED_DISCOVERY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves on `127.0.0.1:port` until Ctrl-C or SIGTERM.
pub async fn serve(mut app: App, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        port = listener.local_addr()?.port(),
        "custom handler listening"
    );
    let coordinator = coordinator_from_environment(&app).await;
    if let (Some(coordinator), Some(cache)) = (&coordinator, &app.azure.discovery) {
        // A burst's discovery is shared across the app's instances, not only within this one.
        app.azure.discovery = Some(std::sync::Arc::new(
            crate::observe::cache::DiscoveryCache::with_backend(
                cache.window(),
                std::sync::Arc::new(crate::coordination::SharedDiscoveries::new(
                    coordinator.clone(),
                    SHARED_DISCOVERY_PATIENCE,
                )),
            ),
        ));
    }
    axum::serve(listener, router_with(app, coordinator))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// The coordinator of this instance, from the host's storage settings (`AzureWebJobsStorage`, or its
/// identity-based `__blobServiceUri` / `__accountName`), with its container made ready. Without them, or when
/// the storage account cannot be reached, a warning says so and the app runs uncoordinated: every delivery
/// then runs (re-saves are idempotent), and duplicates are recognised within one instance only.
pub async fn coordinator_from_environment(app: &App) -> Option<Coordinator> {
    const UNCOORDINATED: &str = "duplicate deliveries are recognised within this instance only, and a redelivered job re-saves every target";
    match Coordinator::from_functions_environment(app.http.clone(), app.azure.credential.clone()) {
        None => {
            tracing::warn!("no AzureWebJobsStorage setting: {UNCOORDINATED}");
            None
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the AzureWebJobsStorage setting is unusable for coordination: {UNCOORDINATED}");
            None
        }
        Some(Ok(coordinator)) => match coordinator.prepare().await {
            Ok(()) => {
                tracing::info!(
                    container = crate::coordination::CONTAINER,
                    "coordinating with the app's other instances through its storage account"
                );
                Some(coordinator)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not prepare the coordination container in the app's storage account: {UNCOORDINATED}");
                None
            }
        },
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_window_defaults_to_200_seconds_and_stays_below_the_front_end_limit() {
        assert_eq!(http_sync_seconds(None), Ok(200));
        assert_eq!(http_sync_seconds(Some("  ")), Ok(200));
        assert_eq!(http_sync_seconds(Some("30")), Ok(30));
        for bad in ["0", "221", "230", "-5", "1.5", "soon"] {
            let err = http_sync_seconds(Some(bad)).unwrap_err();
            assert!(
                err.contains("ADF_REFRESH_HTTP_SYNC_SECONDS"),
                "{bad}: {err}"
            );
        }
    }
}
