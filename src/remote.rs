//! `plan|refresh --remote URL`: drives a deployed app instead of calling Azure.
//!
//! The run is the app's own, with the app's identity and configured scope: `POST URL/api/refresh` with the
//! `Refresh` function key; a `202` is followed by polling its `Location` with the `RefreshStatus` key (a
//! function key opens only its own function), honouring `Retry-After`, until the report or the budget's end.
//! Nothing here calls Azure, and no key ever reaches a message: keys travel in the `x-functions-key` header only.

use crate::azure::auth::redact_query;
use crate::azure::retry::parse_retry_after;
use crate::config::SecretString;
use crate::report::{self, Report};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// The header the Functions front end reads a function key from.
const KEY_HEADER: &str = "x-functions-key";
/// How long to wait between polls when a `202` names no `Retry-After`.
const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// The longest a single request may take: the Functions front end gives up on a request after 230 s.
const REQUEST_LIMIT: Duration = Duration::from_secs(240);

/// Where the deployed app is, and the keys and patience to drive it with.
pub struct RemoteOptions {
    /// The app's base URL, e.g. `https://<app>.azurewebsites.net`.
    pub url: String,
    /// The `Refresh` function's key.
    pub function_key: SecretString,
    /// The `RefreshStatus` function's key (the same key when none other is given).
    pub status_key: SecretString,
    /// How long to wait for the report, all polls included.
    pub budget: Duration,
    /// Print a progress line on stderr while polling (only on a terminal).
    pub progress: bool,
}

/// What to ask the app: the body of `POST /api/refresh`.
#[derive(Debug, Clone)]
pub struct RemoteRequest {
    pub vault: String,
    pub secret: String,
    pub version: Option<String>,
    pub dry_run: bool,
    /// Scopes to narrow the run to; empty means the app's configured scope.
    pub scopes: Vec<String>,
}

impl RemoteRequest {
    /// The JSON body the `Refresh` function reads.
    pub fn body(&self) -> Value {
        let mut body =
            json!({ "vault": self.vault, "secret": self.secret, "dryRun": self.dry_run });
        if let Some(version) = &self.version {
            body["version"] = json!(version);
        }
        if !self.scopes.is_empty() {
            body["scope"] = json!(self.scopes);
        }
        body
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("--remote: {0}")]
    Setup(String),
    #[error("{method} {url} answered {status}: {message}")]
    Http {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{method} {url} failed: {reason}")]
    Unreachable {
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error("{method} {url} answered {status} with something other than a report: {detail}")]
    NotAReport {
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    #[error(
        "the run had not finished within {seconds} s (--budget-seconds); it goes on in the app: its report will be at {url}"
    )]
    Budget { seconds: u64, url: String },
}

/// The keys from the environment or a file: `ADF_REFRESH_FUNCTION_KEY` (or the first line of `key_file`) opens
/// `Refresh`; `ADF_REFRESH_STATUS_KEY` opens `RefreshStatus`, and falls back to the same key.
pub fn keys(key_file: Option<&Path>) -> Result<(SecretString, SecretString), RemoteError> {
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let function_key = match key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| RemoteError::Setup(format!("cannot read --function-key-file {}: {e}", path.display())))?
            .lines()
            .next()
            .map(|line| line.trim().to_string())
            .filter(|key| !key.is_empty())
            .ok_or_else(|| RemoteError::Setup(format!("--function-key-file {} is empty", path.display())))?,
        None => env("ADF_REFRESH_FUNCTION_KEY").ok_or_else(|| {
            RemoteError::Setup(
                "no function key: set ADF_REFRESH_FUNCTION_KEY (or pass --function-key-file) to the Refresh \
                 function's key (az functionapp function keys list --function-name Refresh ...)"
                    .into(),
            )
        })?,
    };
    let status_key = env("ADF_REFRESH_STATUS_KEY").unwrap_or_else(|| function_key.clone());
    Ok((
        SecretString::new(function_key),
        SecretString::new(status_key),
    ))
}

/// The command line's way in: keys from the environment (or `key_file`), the one HTTP client (with `ca_file`),
/// and a progress line when stderr is a terminal.
pub async fn drive(
    url: &str,
    key_file: Option<&Path>,
    ca_file: Option<&Path>,
    budget: Duration,
    request: &RemoteRequest,
) -> Result<Report, RemoteError> {
    use std::io::IsTerminal;
    let (function_key, status_key) = keys(key_file)?;
    let http =
        crate::azure::auth::http_client(ca_file).map_err(|e| RemoteError::Setup(e.to_string()))?;
    let options = RemoteOptions {
        url: url.to_string(),
        function_key,
        status_key,
        budget,
        progress: std::io::stderr().is_terminal(),
    };
    run(&http, &options, request).await
}

/// Runs `request` on the deployed app and returns its report.
pub async fn run(
    http: &reqwest::Client,
    options: &RemoteOptions,
    request: &RemoteRequest,
) -> Result<Report, RemoteError> {
    let started = Instant::now();
    let deadline = started + options.budget;
    let base = base_url(&options.url)?;
    let post_url = format!("{base}/api/refresh");
    let answer = send(
        http.post(&post_url).json(&request.body()),
        "POST",
        &post_url,
        &options.function_key,
        deadline,
    )
    .await?;
    let (mut status, mut headers, mut body) = answer;
    let mut url = post_url;
    let mut method = "POST";
    let mut progress = Progress::new(options.progress);
    while status == 202 {
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RemoteError::NotAReport {
                method,
                url: redact_query(&url),
                status,
                detail: "a 202 without a Location to poll".into(),
            })?;
        let next = poll_url(&base, location)?;
        let wait = parse_retry_after(
            headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        )
        .unwrap_or(DEFAULT_POLL);
        if Instant::now() + wait >= deadline {
            progress.done();
            return Err(RemoteError::Budget {
                seconds: options.budget.as_secs(),
                url: redact_query(&next),
            });
        }
        progress.show(&body, started.elapsed(), wait);
        tokio::time::sleep(wait).await;
        url = next;
        method = "GET";
        let answer = send(
            http.get(&url)
                .header(reqwest::header::ACCEPT, "application/json"),
            "GET",
            &url,
            &options.status_key,
            deadline,
        )
        .await;
        if answer.is_err() {
            progress.done();
        }
        (status, headers, body) = answer?;
    }
    progress.done();
    // A run Azure refused answers its (incomplete) report with a 5xx: that report is what to print.
    if status != 200 && !incomplete_report(&body) {
        return Err(RemoteError::NotAReport {
            method,
            url: redact_query(&url),
            status,
            detail: excerpt(&body),
        });
    }
    let document: Value = serde_json::from_slice(&body).map_err(|e| RemoteError::NotAReport {
        method,
        url: redact_query(&url),
        status,
        detail: format!("not JSON ({e}): {}", excerpt(&body)),
    })?;
    if document.get("schema").and_then(Value::as_str) != Some(report::SCHEMA) {
        return Err(RemoteError::NotAReport {
            method,
            url: redact_query(&url),
            status,
            detail: format!("its schema is not {}: {}", report::SCHEMA, excerpt(&body)),
        });
    }
    serde_json::from_value(document).map_err(|e| RemoteError::NotAReport {
        method,
        url: redact_query(&url),
        status,
        detail: e.to_string(),
    })
}

/// Sends one request with `key` in the header; a 2xx comes back as (status, headers, body), anything else
/// is an error with the status and the body's message.
async fn send(
    builder: reqwest::RequestBuilder,
    method: &'static str,
    url: &str,
    key: &SecretString,
    deadline: Instant,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), RemoteError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let response = builder
        .header(KEY_HEADER, key.expose())
        .timeout(left.clamp(Duration::from_secs(1), REQUEST_LIMIT))
        .send()
        .await
        .map_err(|e| RemoteError::Unreachable {
            method,
            url: redact_query(url),
            // reqwest's text names the URL, which we already redact above; keep only the cause.
            reason: cause(&e),
        })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| RemoteError::Unreachable {
            method,
            url: redact_query(url),
            reason: cause(&e),
        })?
        .to_vec();
    if !(200..300).contains(&status) && !incomplete_report(&body) {
        return Err(RemoteError::Http {
            method,
            url: redact_query(url),
            status,
            message: body_message(status, &body),
        });
    }
    Ok((status, headers, body))
}

/// Whether a body is a report of a run that could not complete (its exit code is then 1, whatever the status).
fn incomplete_report(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v.get("schema").and_then(Value::as_str) == Some(report::SCHEMA)
            && v.get("complete") == Some(&Value::Bool(false))
    })
}

/// The innermost cause of a transport error, without the URL reqwest puts in its own text.
fn cause(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut text = if e.is_timeout() {
        "no answer in time".to_string()
    } else {
        "the request could not be sent".to_string()
    };
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// The base URL without a trailing slash; only http(s), and never with a query (where keys would hide).
fn base_url(url: &str) -> Result<String, RemoteError> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| RemoteError::Setup(format!("not a URL: {} ({e})", redact_query(url))))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(RemoteError::Setup(format!(
            "not an http(s) URL: {}",
            redact_query(url)
        )));
    }
    if parsed.query().is_some() {
        return Err(RemoteError::Setup(
            "the URL must not carry a query: give the app's base URL, and the key in ADF_REFRESH_FUNCTION_KEY".into(),
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Where a `Location` points, relative to the base URL. An absolute one must stay on the app's origin: the
/// status key is never sent anywhere else.
fn poll_url(base: &str, location: &str) -> Result<String, RemoteError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        if origin(location).is_some() && origin(location) == origin(base) {
            return Ok(location.to_string());
        }
        return Err(RemoteError::Setup(format!(
            "the app answered 202 with a Location on another origin ({}); refusing to send the key there",
            redact_query(location)
        )));
    }
    Ok(format!("{base}/{}", location.trim_start_matches('/')))
}

/// The message of an error answer: `error` (a string, or an object's `message`), `message`, or the text.
fn body_message(status: u16, body: &[u8]) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let text = |v: &Value| v.as_str().map(str::to_string);
        v.get("error")
            .and_then(|e| text(e).or_else(|| e.get("message").and_then(text)))
            .or_else(|| v.get("message").and_then(text))
    });
    let message = from_json.unwrap_or_else(|| excerpt(body));
    let hint = match status {
        401 => {
            " (the function key is missing or not this function's: Refresh and RefreshStatus each have their own; set ADF_REFRESH_FUNCTION_KEY and ADF_REFRESH_STATUS_KEY)"
        }
        403 => " (the app refuses the caller: check its access restrictions)",
        404 => " (no such function or run: is this the app's URL, and is the code deployed?)",
        _ => "",
    };
    if message.is_empty() {
        format!("{reason}{hint}")
    } else {
        format!("{reason}: {message}{hint}")
    }
}

/// The start of a body, as text, for an error message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        text.chars().take(300).chain("…".chars()).collect()
    } else {
        text.to_string()
    }
}

/// A progress line on stderr, rewritten in place; only on a terminal.
struct Progress {
    on: bool,
    shown: bool,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress { on, shown: false }
    }

    fn show(&mut self, body: &[u8], elapsed: Duration, wait: Duration) {
        if !self.on {
            return;
        }
        let state: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let id = state.get("id").and_then(Value::as_str).unwrap_or("?");
        let status = state
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("running");
        eprint!(
            "\r\x1b[2Krun {id}: {status} in the app, {} s so far; next look in {} s",
            elapsed.as_secs(),
            wait.as_secs()
        );
        self.shown = true;
    }

    fn done(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_only_what_was_given() {
        let request = RemoteRequest {
            vault: "kv".into(),
            secret: "s".into(),
            version: None,
            dry_run: true,
            scopes: vec![],
        };
        assert_eq!(
            request.body(),
            json!({"vault": "kv", "secret": "s", "dryRun": true})
        );
        let narrowed = RemoteRequest {
            version: Some("v2".into()),
            dry_run: false,
            scopes: vec!["/subscriptions/x".into()],
            ..request
        };
        assert_eq!(
            narrowed.body(),
            json!({"vault": "kv", "secret": "s", "dryRun": false, "version": "v2", "scope": ["/subscriptions/x"]})
        );
    }

    #[test]
    fn a_location_is_read_relative_to_the_app_and_never_leaves_its_origin() {
        let base = base_url("https://app.azurewebsites.net/").expect("base");
        assert_eq!(base, "https://app.azurewebsites.net");
        assert_eq!(
            poll_url(&base, "/api/refresh/1").expect("relative"),
            "https://app.azurewebsites.net/api/refresh/1"
        );
        assert_eq!(
            poll_url("https://proxy.example/app", "/api/refresh/1").expect("under a path"),
            "https://proxy.example/app/api/refresh/1"
        );
        assert!(poll_url(&base, "https://app.azurewebsites.net/api/refresh/1").is_ok());
        assert!(poll_url(&base, "https://elsewhere.example/api/refresh/1").is_err());
        assert!(base_url("https://app.azurewebsites.net/?code=secret").is_err());
        assert!(base_url("ftp://app").is_err());
    }

    #[test]
    fn only_an_incomplete_report_counts_as_a_report_in_an_error_answer() {
        assert!(incomplete_report(
            br#"{"schema":"adf-secret-refresh/report/v1","complete":false}"#
        ));
        assert!(!incomplete_report(
            br#"{"schema":"adf-secret-refresh/report/v1","complete":true}"#
        ));
        assert!(!incomplete_report(br#"{"error":"boom"}"#));
    }

    #[test]
    fn an_error_answer_gives_its_reason_and_message() {
        assert_eq!(
            body_message(400, br#"{"error":"`vault` is required"}"#),
            "Bad Request: `vault` is required"
        );
        assert!(body_message(401, b"").starts_with("Unauthorized (the function key"));
        assert_eq!(
            body_message(500, br#"{"error":{"code":"X","message":"boom"}}"#),
            "Internal Server Error: boom"
        );
        assert_eq!(
            body_message(502, b"Bad gateway"),
            "Bad Gateway: Bad gateway"
        );
    }
}
