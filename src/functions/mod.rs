//! The Azure Functions custom handler: one handler per function, behind an axum router.
//!
//! The host starts `adf-secret-refresh serve` with `FUNCTIONS_CUSTOMHANDLER_PORT`, probes `GET /` until it
//! answers, and then posts each invocation to `POST /{FunctionName}` as `{"Data":…,"Metadata":…}`. We answer
//! `{"Outputs":…,"Logs":…,"ReturnValue":…}`. A non-2xx answer makes the host drop the outputs and retry, so it
//! is used only when a retry is wanted: a transient failure such as an ARM or token-endpoint outage.

mod dedupe;
mod envelope;
mod handlers;

pub use dedupe::Dedupe;
pub use envelope::{Invocation, InvocationResponse};
pub use handlers::{ManualRequest, RefreshJob, job_from_event};

use crate::app::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The functions this app defines. Each has a folder of the same name under `function/`.
pub const FUNCTION_NAMES: &[&str] = &["KeyVaultSecretEvent", "RefreshJob", "Refresh", "Audit"];

/// The storage queue that carries refresh jobs from `KeyVaultSecretEvent` to `RefreshJob`.
pub const REFRESH_JOB_QUEUE: &str = "refresh-jobs";
/// The storage queue that receives a message when a run needs a person's attention.
pub const ATTENTION_QUEUE: &str = "refresh-attention";
/// The blob container that receives every report.
pub const REPORT_CONTAINER: &str = "reports";

/// The largest invocation envelope accepted; anything bigger is not a Key Vault event or a manual request.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct Handler {
    pub app: App,
    pub dedupe: Arc<Dedupe>,
}

/// The router, separate from serving so that tests can drive it without a socket.
pub fn router(app: App) -> Router {
    let state = Handler {
        app,
        dedupe: Arc::new(Dedupe::new(std::time::Duration::from_secs(15 * 60))),
    };
    Router::new()
        .route("/", get(|| async { "adf-secret-refresh" }))
        .route(
            "/KeyVaultSecretEvent",
            post(handlers::key_vault_secret_event),
        )
        .route("/RefreshJob", post(handlers::refresh_job))
        .route("/Refresh", post(handlers::refresh))
        .route("/Audit", post(handlers::audit))
        .layer(DefaultBodyLimit::max(MAX_ENVELOPE_BYTES))
        .with_state(state)
}

/// Serves on `127.0.0.1:port` until Ctrl-C or SIGTERM.
pub async fn serve(app: App, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        port = listener.local_addr()?.port(),
        "custom handler listening"
    );
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
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
