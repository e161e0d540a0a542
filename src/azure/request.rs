//! One attempt of one request, shared by every Azure client: send it, then classify the answer for the one retry
//! loop ([`super::retry::run`]) as done, worth another try, throttled, or failed, with the one status → meaning
//! map ([`super::error::from_status`]) and the one check of what a 2xx must carry.
//!
//! Clients keep only what is theirs: ARM its pacer and in-flight lanes, Key Vault its challenge, Storage its
//! Shared Key, each its remedy for a refusal. Bodies are never logged, and errors never carry a URL's query.

use super::auth::CredentialKind;
use super::error::{AzureError, Refusal, from_status};
use super::retry::{self, Attempt, RetryPolicy, parse_retry_after};
use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The longest one request may take, deadline permitting.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// What a 2xx must carry for the request to have been answered.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// A JSON object (a resource, a result, an operation's status); a 202 or 204 may come without a body.
    Object,
    /// A page of a listing whose `nextLink` may be followed only to `origin`.
    Page { origin: &'a Url },
    /// Any bytes (a blob).
    Raw,
}

/// One attempt, as the client describes it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub operation: &'static str,
    pub expect: Expect<'a>,
    /// The client's sentence for a refusal: which role fixes it.
    pub remedy: &'a str,
    /// What a Storage error or a missing vault names (container and blob, the vault).
    pub target: &'a str,
    /// Attempts before this one.
    pub attempt: u32,
}

/// An answer before it means anything.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A 2xx answer that passed its check.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`Null` when there was none, or for [`Expect::Raw`]).
    pub body: Value,
    pub bytes: Vec<u8>,
    pub headers: HeaderMap,
    pub request_id: Option<String>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(self.header("retry-after"))
    }
}

/// A request with the bearer token, a correlation id, and the `If-Match` and JSON body when given: what ARM and
/// the Synapse development endpoints both take.
pub fn bearer_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &Url,
    token: &str,
    timeout: Duration,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .request(method, url.clone())
        .timeout(timeout)
        .bearer_auth(token)
        .header(
            "x-ms-correlation-request-id",
            uuid::Uuid::new_v4().to_string(),
        );
    if let Some(etag) = if_match {
        request = request.header("If-Match", etag);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request
}

/// Sends one request; a connection that fails, times out or cuts the body off is worth another try.
pub async fn fetch(
    request: reqwest::RequestBuilder,
    operation: &'static str,
    attempt: u32,
) -> Result<Raw, Attempt<Answer, AzureError>> {
    let network = |message: String| Attempt::Retry {
        error: AzureError::Network {
            operation,
            message,
            attempts: attempt + 1,
        },
        retry_after: None,
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(operation, attempt, error = %without_url(&e), "request failed to complete");
            return Err(network(without_url(&e)));
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    // A body cut off after the headers is a failed attempt, never an empty answer.
    match response.bytes().await {
        Ok(bytes) => Ok(Raw {
            bytes: bytes.to_vec(),
            status,
            headers,
        }),
        Err(e) => {
            tracing::warn!(operation, status, attempt, error = %without_url(&e), "answer was cut off");
            Err(network(format!(
                "the answer was cut off: {}",
                without_url(&e)
            )))
        }
    }
}

/// What one answer comes to: a 2xx that passes its check is done; an unusable 2xx, a 408 or a 5xx is worth
/// another try; a 429 is throttled; anything else fails with its meaning.
pub fn classify(x: &Exchange<'_>, raw: Raw) -> Attempt<Answer, AzureError> {
    let status = raw.status;
    let request_id = raw.header("x-ms-request-id").map(str::to_string);
    if (200..300).contains(&status) {
        let checked = match x.expect {
            Expect::Raw => Ok(Value::Null),
            Expect::Object if raw.bytes.is_empty() && matches!(status, 202 | 204) => {
                Ok(Value::Null)
            }
            Expect::Object => parse(&raw.bytes).and_then(|body| {
                body.is_object()
                    .then_some(body)
                    .ok_or_else(|| "the body is not a JSON object".to_string())
            }),
            Expect::Page { origin } => {
                parse(&raw.bytes).and_then(|body| check_page(&body, origin).map(|()| body))
            }
        };
        tracing::debug!(
            operation = x.operation,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            "Azure call"
        );
        return match checked {
            Ok(body) => Attempt::Done(Answer {
                status,
                body,
                bytes: raw.bytes,
                headers: raw.headers,
                request_id,
            }),
            Err(why) => {
                tracing::warn!(
                    operation = x.operation,
                    status,
                    attempt = x.attempt,
                    why,
                    "a 2xx with an unusable body"
                );
                Attempt::Retry {
                    error: AzureError::Malformed {
                        operation: x.operation,
                        status,
                        message: why,
                        attempts: x.attempt + 1,
                        request_id,
                    },
                    retry_after: None,
                }
            }
        };
    }
    let retry_after = parse_retry_after(raw.header("retry-after"));
    let error = from_status(Refusal {
        operation: x.operation,
        status,
        body: serde_json::from_slice(&raw.bytes).unwrap_or(Value::Null),
        header_code: raw.header("x-ms-error-code"),
        request_id,
        target: x.target,
        remedy: x.remedy,
        attempts: x.attempt + 1,
    });
    if status == 429 {
        tracing::info!(
            operation = x.operation,
            attempt = x.attempt,
            "throttled (429); waiting for Retry-After"
        );
        return Attempt::Throttled { error, retry_after };
    }
    if retry::is_retryable_status(status) {
        tracing::warn!(
            operation = x.operation,
            status,
            attempt = x.attempt,
            request_id = error.request_id().unwrap_or(""),
            "a transient error"
        );
        return Attempt::Retry { error, retry_after };
    }
    Attempt::Fail(error)
}

/// [`fetch`] then [`classify`].
pub async fn exchange(
    request: reqwest::RequestBuilder,
    x: &Exchange<'_>,
) -> Attempt<Answer, AzureError> {
    match fetch(request, x.operation, x.attempt).await {
        Ok(raw) => classify(x, raw),
        Err(attempt) => attempt,
    }
}

fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|_| "the body is not JSON (or was cut off)".to_string())
}

/// A page of a listing: an object with `value` (an array of objects) or a `nextLink` on `origin`, and no error
/// in place of the page. Anything else is retried like a 5xx, and an error if it persists: a page that is no
/// page must never pass for the end of a listing, and an item that is no object must never be dropped unseen.
pub fn check_page(body: &Value, origin: &Url) -> Result<(), String> {
    let Some(object) = body.as_object() else {
        return Err("the page is not a JSON object".into());
    };
    if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
        let code = error.get("code").and_then(Value::as_str).unwrap_or("");
        return Err(format!("the page is an error answer ({code})"));
    }
    let value = object.get("value").filter(|v| !v.is_null());
    let next = object
        .get("nextLink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty());
    match value {
        Some(Value::Array(items)) => {
            if let Some(i) = items.iter().position(|item| !item.is_object()) {
                return Err(format!("item {i} of the page is not an object"));
            }
        }
        Some(_) => return Err("the page's `value` is not an array".into()),
        None if next.is_none() => return Err("the page has neither `value` nor `nextLink`".into()),
        None => {}
    }
    if let Some(link) = next
        && follow(origin, link).is_none()
    {
        return Err("the page's nextLink leaves the origin it came from".into());
    }
    Ok(())
}

/// A link to follow (a `nextLink`, a `Location`): resolved against `origin`, and only when it stays on its origin
/// (scheme, host in any case, effective port) with no user info, since the token goes with it.
pub fn follow(origin: &Url, link: &str) -> Option<Url> {
    let url = origin.join(link.trim()).ok()?;
    (super::resource_id::same_origin(origin, &url)
        && url.username().is_empty()
        && url.password().is_none())
    .then_some(url)
}

/// A bearer token for `scope`, through the one retry loop and inside the deadline; the error names the credential
/// and its endpoint, never the token.
pub async fn bearer_token(
    credential: &dyn TokenCredential,
    kind: Option<CredentialKind>,
    scope: &str,
    policy: &RetryPolicy,
    deadline: Option<Instant>,
) -> Result<String, AzureError> {
    retry::run(policy, deadline, |attempt| async move {
        let timeout = retry::request_timeout(REQUEST_LIMIT, deadline);
        let outcome = tokio::time::timeout(timeout, credential.get_token(&[scope], None)).await;
        let name = kind.map_or("configured", CredentialKind::name);
        let message = match outcome {
            Ok(Ok(token)) => return Attempt::Done(token.token.secret().to_string()),
            // A missing tool, no sign-in, a wrong tenant or secret: no retry mends them, so say so at once.
            Ok(Err(e)) => match super::auth::classify_token_error(&e) {
                failure @ super::auth::TokenFailure::Permanent { .. } => {
                    tracing::warn!(
                        credential = name,
                        attempt,
                        "the credential refused: not retried"
                    );
                    return Attempt::Fail(AzureError::CredentialRefused {
                        kind: name,
                        endpoint: kind.map_or_else(
                            || "its token endpoint".to_string(),
                            CredentialKind::token_endpoint,
                        ),
                        message: failure.to_string(),
                    });
                }
                super::auth::TokenFailure::Transient(message) => message,
            },
            Err(_) => "no answer within the run's time budget".to_string(),
        };
        tracing::warn!(credential = name, attempt, "token request failed");
        let error = AzureError::Token {
            kind: name,
            endpoint: kind.map_or_else(
                || "its token endpoint".to_string(),
                CredentialKind::token_endpoint,
            ),
            message,
            attempts: attempt + 1,
        };
        Attempt::Retry {
            error,
            retry_after: None,
        }
    })
    .await
}

/// reqwest errors print the URL, which may carry a query; keep error text to the cause alone.
pub fn without_url(e: &reqwest::Error) -> String {
    let mut cause = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the connection failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    cause
}

pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).chars().take(400).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Url {
        Url::parse("https://vault.example:8443/kv/a/").expect("url")
    }

    #[test]
    fn a_page_needs_objects_in_value_or_a_next_link_on_its_origin() {
        let o = origin();
        assert!(check_page(&json!({"value": []}), &o).is_ok());
        assert!(check_page(&json!({"value": [{"id": "x"}], "nextLink": null}), &o).is_ok());
        assert!(
            check_page(
                &json!({"nextLink": "https://VAULT.example:8443/kv/a/p2"}),
                &o
            )
            .is_ok()
        );
        for (bad, why) in [
            (json!({}), "neither"),
            (json!({"value": {}}), "not an array"),
            (json!({"value": [{"id": "x"}, null]}), "item 1"),
            (json!({"value": [3]}), "item 0"),
            (json!({"value": ["s"]}), "item 0"),
            (
                json!({"error": {"code": "Throttled", "message": "m"}}),
                "error answer",
            ),
            (
                json!({"value": [], "nextLink": "https://vault.example:9443/kv/a/p2"}),
                "leaves",
            ),
            (
                json!({"value": [], "nextLink": "http://vault.example:8443/kv/a/p2"}),
                "leaves",
            ),
            (
                json!({"value": [], "nextLink": "https://user@vault.example:8443/p2"}),
                "leaves",
            ),
            (json!("<html>"), "not a JSON object"),
        ] {
            let e = check_page(&bad, &o).expect_err("refused");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn links_stay_on_their_origin_whatever_its_spelling() {
        let base = Url::parse("https://w.dev.azuresynapse.net/").expect("url");
        assert!(
            follow(
                &base,
                "https://W.DEV.azuresynapse.net:443/linkedservices?x=1"
            )
            .is_some()
        );
        assert!(follow(&base, "/operationResults/1?api-version=2020-12-01").is_some());
        assert!(follow(&base, "https://evil.example/x").is_none());
        assert!(follow(&base, "https://w.dev.azuresynapse.net:8443/x").is_none());
        assert!(follow(&base, "http://w.dev.azuresynapse.net/x").is_none());
    }

    fn raw(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Raw {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().expect("header"));
        }
        Raw {
            status,
            headers: map,
            bytes: body.as_bytes().to_vec(),
        }
    }

    fn x(expect: Expect<'_>) -> Exchange<'_> {
        Exchange {
            operation: "op",
            expect,
            remedy: "Grant it.",
            target: "t",
            attempt: 0,
        }
    }

    #[test]
    fn answers_are_classified_once_for_every_client() {
        let o = origin();
        assert!(matches!(
            classify(&x(Expect::Object), raw(200, r#"{"id":"x"}"#, &[])),
            Attempt::Done(_)
        ));
        assert!(matches!(
            classify(&x(Expect::Object), raw(202, "", &[])),
            Attempt::Done(_)
        ));
        assert!(matches!(
            classify(&x(Expect::Object), raw(200, "<html>", &[])),
            Attempt::Retry {
                error: AzureError::Malformed { .. },
                ..
            }
        ));
        assert!(matches!(
            classify(
                &x(Expect::Page { origin: &o }),
                raw(200, r#"{"value":[null]}"#, &[])
            ),
            Attempt::Retry {
                error: AzureError::Malformed { .. },
                ..
            }
        ));
        assert!(matches!(
            classify(&x(Expect::Raw), raw(201, "", &[])),
            Attempt::Done(_)
        ));
        match classify(&x(Expect::Object), raw(429, "", &[("retry-after", "7")])) {
            Attempt::Throttled { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            _ => panic!("a 429 is throttled"),
        }
        assert!(matches!(
            classify(
                &x(Expect::Raw),
                raw(503, "", &[("x-ms-error-code", "ServerBusy")])
            ),
            Attempt::Retry {
                error: AzureError::Unavailable { .. },
                ..
            }
        ));
        assert!(matches!(
            classify(
                &x(Expect::Object),
                raw(403, r#"{"error":{"code":"F","message":"m"}}"#, &[])
            ),
            Attempt::Fail(AzureError::Forbidden { .. })
        ));
    }
}
