//! The HTTP plumbing shared by both listeners: the accept loop (TLS or plain), classifying each request
//! by surface, applying faults, recording it, and stamping the Azure request-id headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{HeaderName, HeaderValue, IF_MATCH, RETRY_AFTER};
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::http::{Ctx, Dropped, cloud_error, json_response, too_many_requests};
use crate::state::{RecordedRequest, Shared};
use crate::synapse_model::PATH_PREFIX;
use crate::util::lock;
use crate::{apim, appservice, arm, arm_common, control, keyvault, synapse, tokens};

const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-ms-correlation-request-id");

/// Which recorded surface a request is for (the control API is not one of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKind {
    Arm,
    KeyVault,
    /// A Synapse workspace's development endpoint under `/synapse/{workspace}/`.
    Synapse,
    Entra,
    Msi,
}

impl HostKind {
    fn as_str(self) -> &'static str {
        match self {
            HostKind::Arm => "arm",
            HostKind::KeyVault => "keyvault",
            HostKind::Synapse => "synapse",
            HostKind::Entra => "entra",
            HostKind::Msi => "msi",
        }
    }
}

/// Accepts connections until shutdown and serves each over TLS or plain HTTP.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    accept_until_shutdown(listener, shutdown, move |stream| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        async move {
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, shared, true).await,
                    Err(err) => tracing::debug!(%err, "TLS handshake failed"),
                },
                None => serve_connection(stream, shared, false).await,
            }
        }
    })
    .await;
}

/// Runs `on_connection` in a task for each accepted connection until shutdown; dropping the `JoinSet` at
/// the end closes every open connection.
pub(crate) async fn accept_until_shutdown<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    mut on_connection: F,
) where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(on_connection(stream));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection<S>(stream: S, shared: Arc<Shared>, tls: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&shared), tls, req));
    if let Err(err) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%err, "connection ended with an error");
    }
}

/// The surface of a request; `None` for the control API.
fn classify(tls: bool, segments: &[String]) -> Option<HostKind> {
    let first = segments.first().map(String::as_str).unwrap_or("");
    if !tls {
        return (first != "_emulator").then_some(HostKind::Msi);
    }
    let is_token_path = segments.len() == 4
        && segments[1].eq_ignore_ascii_case("oauth2")
        && segments[2].eq_ignore_ascii_case("v2.0")
        && segments[3].eq_ignore_ascii_case("token");
    Some(if first == "kv" {
        HostKind::KeyVault
    } else if first == PATH_PREFIX {
        HostKind::Synapse
    } else if is_token_path || tokens::is_discovery_path(segments) {
        HostKind::Entra
    } else {
        HostKind::Arm
    })
}

/// A request path's non-empty segments, percent-decoded.
pub(crate) fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

async fn handle(
    shared: Arc<Shared>,
    tls: bool,
    req: Request<Incoming>,
) -> Result<Response, Dropped> {
    let (parts, body) = req.into_parts();
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = parts
        .headers
        .get(&CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id.clone(), str::to_owned);
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let segments = decode_segments(&path);
    let kind = classify(tls, &segments);

    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let response = cloud_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                "The request body could not be read.",
            );
            return Ok(stamp(response, &request_id, &correlation_id));
        }
    };
    let json = serde_json::from_slice::<Value>(&body).ok();
    let ctx = Ctx {
        method: parts.method,
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        path,
        segments,
        headers: parts.headers,
        body,
        json,
    };

    let Some(kind) = kind else {
        return Ok(stamp(
            control::handle(&shared, &ctx),
            &request_id,
            &correlation_id,
        ));
    };

    let log_id = record(&shared, &ctx, kind, &raw_query);
    let result = match kind {
        HostKind::Arm => arm_pipeline(&shared, &ctx).await,
        HostKind::KeyVault => Ok(keyvault_pipeline(&shared, &ctx).await),
        HostKind::Synapse => synapse_pipeline(&shared, &ctx).await,
        HostKind::Entra | HostKind::Msi => Ok(token_pipeline(&shared, &ctx, kind)),
    };
    let status = result.as_ref().map_or(0, |r| r.status().as_u16());
    {
        let mut log = lock(&shared.log);
        if let Some((_, entry)) = log.entries.iter_mut().rev().find(|(id, _)| *id == log_id) {
            entry.status = status;
        }
    }
    result.map(|response| stamp(response, &request_id, &correlation_id))
}

fn record(shared: &Shared, ctx: &Ctx, kind: HostKind, raw_query: &str) -> u64 {
    let keep_body = matches!(kind, HostKind::Arm | HostKind::KeyVault | HostKind::Synapse);
    let entry = RecordedRequest {
        method: ctx.method.to_string(),
        path: ctx.path.clone(),
        query: raw_query.to_owned(),
        host_kind: kind.as_str().to_owned(),
        if_match: ctx.header(IF_MATCH.as_str()).map(str::to_owned),
        had_bearer: ctx.bearer().is_some(),
        body: if keep_body { ctx.json.clone() } else { None },
        status: 0,
        at_ms: u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let mut log = lock(&shared.log);
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push((id, entry));
    id
}

fn stamp(mut response: Response, request_id: &str, correlation_id: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert(CORRELATION_ID, value);
    }
    response
}

async fn apply_latency(shared: &Shared) {
    if let Some(delay) = shared.faults.latency() {
        tokio::time::sleep(delay).await;
    }
}

/// An injected 500 or 503 (503 with `Retry-After: 1`).
fn injected_error(shared: &Shared, status: u16) -> Response {
    shared.count(|c| c.injected_errors += 1);
    if status == 503 {
        let mut response = cloud_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry the request later.",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        response
    } else {
        cloud_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An internal server error occurred. Please retry the request.",
        )
    }
}

async fn arm_pipeline(shared: &Shared, ctx: &Ctx) -> Result<Response, Dropped> {
    apply_latency(shared).await;
    roll_drop(shared)?;
    // A write outage that starts mid-run: faults.rs `writeOutageAfter`.
    let write_outage = ctx.method == Method::PUT && shared.faults.take_write_outage();
    let response = match shared.faults.roll_error() {
        Some(status) => injected_error(shared, status),
        None if write_outage => injected_error(shared, 503),
        None if synapse::is_arm_request(&ctx.segments) => synapse::handle_arm(shared, ctx),
        None if appservice::is_arm_request(&ctx.segments) => appservice::handle(shared, ctx),
        None if apim::is_arm_request(&ctx.segments) => apim::handle(shared, ctx),
        None => arm::handle(shared, ctx),
    };
    let mut response = break_listing_page(shared, ctx, response).await;
    arm_common::add_rate_limit_header(shared, ctx, &mut response);
    Ok(response)
}

/// Closes the connection without an answer when faults.rs `dropRate` rolls it.
fn roll_drop(shared: &Shared) -> Result<(), Dropped> {
    if shared.faults.roll_drop() {
        shared.count(|c| c.dropped += 1);
        return Err(Dropped);
    }
    Ok(())
}

/// Breaks a listing page when faults.rs `pageFaults` has one due for its collection (ARM and Synapse
/// listings alike).
async fn break_listing_page(shared: &Shared, ctx: &Ctx, response: Response) -> Response {
    if ctx.method == Method::GET
        && response.status().is_success()
        && let Some(kind) = ctx
            .segments
            .last()
            .and_then(|collection| shared.faults.take_page_fault(collection))
    {
        let first_page = first_page_url(shared, ctx);
        return crate::faults::break_page(kind, response, &first_page).await;
    }
    response
}

/// The absolute URL of a listing's first page: the same path with only its `api-version`.
fn first_page_url(shared: &Shared, ctx: &Ctx) -> String {
    format!(
        "{}{}?api-version={}",
        shared.config.https_url,
        ctx.path,
        ctx.query_param("api-version").unwrap_or_default()
    )
}

async fn keyvault_pipeline(shared: &Shared, ctx: &Ctx) -> Response {
    apply_latency(shared).await;
    let response = match shared.faults.roll_error() {
        Some(status) => injected_error(shared, status),
        None => keyvault::handle(shared, ctx),
    };
    // Broken versions pages: faults.rs `kvPageFaults`.
    match keyvault::versions_page_index(shared, ctx) {
        Some(page) if response.status().is_success() => {
            match shared.faults.take_kv_page_fault(page) {
                Some(kind) => keyvault::break_versions_page(shared, ctx, kind, response).await,
                None => response,
            }
        }
        _ => response,
    }
}

/// A Synapse development endpoint gets the same latency, drops and injected errors as ARM.
async fn synapse_pipeline(shared: &Shared, ctx: &Ctx) -> Result<Response, Dropped> {
    apply_latency(shared).await;
    roll_drop(shared)?;
    // Throttled PUTs: faults.rs `synapse429`.
    if ctx.method == Method::PUT
        && synapse::is_artifact_path(&ctx.segments)
        && let Some(retry_after) = shared.faults.take_synapse429()
    {
        shared.count(|c| c.throttled += 1);
        return Ok(too_many_requests(
            retry_after,
            json!({"code": "TooManyRequests", "message": format!("Too many requests. Please retry after {retry_after} seconds.")}),
        ));
    }
    let response = match shared.faults.roll_error() {
        Some(status) => injected_error(shared, status),
        None => synapse::handle_dev(shared, ctx),
    };
    Ok(break_listing_page(shared, ctx, response).await)
}

fn token_pipeline(shared: &Shared, ctx: &Ctx, kind: HostKind) -> Response {
    if shared.faults.token_outage() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "error": "temporarily_unavailable",
                "error_description": "The token service is temporarily unavailable.",
            }),
        );
    }
    if kind == HostKind::Msi {
        tokens::managed_identity(shared, ctx)
    } else {
        tokens::entra(shared, ctx)
    }
}
