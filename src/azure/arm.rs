//! The ARM client for the Data Factory management API.
//!
//! Every request is one of [`super::operations`], paced by the [`Pacer`] and retried by the one
//! [`RetryPolicy`]. Statuses map to meanings ([`ArmError`]) so that callers match on what happened, not on
//! numbers. Request and response bodies are never logged; only operation names, statuses and request ids.

use super::auth::CredentialKind;
use super::operations::{self, ADF_API_VERSION, ArmOperation};
use super::retry::{Pacer, RetryPolicy, is_retryable_status, parse_retry_after};
use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::time::Instant;

/// A response from ARM, with what a report needs from its headers.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    #[error(
        "{operation} was refused ({status} {code}): {message}. Grant the product's identity the custom role from infra/ at this scope"
    )]
    Forbidden {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("{operation}: not found ({message})")]
    NotFound {
        operation: &'static str,
        message: String,
        request_id: Option<String>,
    },
    #[error("{operation}: the resource changed since it was read (412 precondition failed)")]
    PreconditionFailed {
        operation: &'static str,
        request_id: Option<String>,
    },
    #[error("{operation} was rejected ({status} {code}): {message}")]
    Rejected {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        body: Value,
        request_id: Option<String>,
    },
    #[error("{operation} kept failing ({status} {code}) after {attempts} attempts: {message}")]
    Unavailable {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        attempts: u32,
        request_id: Option<String>,
    },
    #[error("{operation} could not reach ARM after {attempts} attempts: {message}")]
    Network {
        operation: &'static str,
        message: String,
        attempts: u32,
    },
    #[error(
        "could not get a token from the {kind} credential ({endpoint}) after {attempts} attempts: {message}"
    )]
    Token {
        kind: &'static str,
        endpoint: String,
        message: String,
        attempts: u32,
    },
    #[error("{operation} was not attempted: the run's time budget is spent")]
    Deadline { operation: &'static str },
    #[error("refusing to follow a nextLink outside the ARM endpoint: {0}")]
    ForeignLink(String),
}

impl ArmError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ArmError::Unavailable { .. }
                | ArmError::Network { .. }
                | ArmError::Token { .. }
                | ArmError::Deadline { .. }
        )
    }
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ArmError::Forbidden { request_id, .. }
            | ArmError::NotFound { request_id, .. }
            | ArmError::PreconditionFailed { request_id, .. }
            | ArmError::Rejected { request_id, .. }
            | ArmError::Unavailable { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Talks to ARM for one run.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    endpoint: String,
    audience: String,
    credential: Arc<dyn TokenCredential>,
    credential_kind: CredentialKind,
    pacer: Arc<Pacer>,
    retry: RetryPolicy,
    deadline: Option<Instant>,
}

impl ArmClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        credential_kind: CredentialKind,
        pacer: Arc<Pacer>,
        retry: RetryPolicy,
    ) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        ArmClient {
            audience: arm_audience(&endpoint),
            http,
            endpoint,
            credential,
            credential_kind,
            pacer,
            retry,
            deadline: None,
        }
    }

    /// The same client, bounded by a deadline: no attempt starts, and no retry waits, past it.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Lists the factories in a scope: a subscription, a resource group, or one factory.
    pub async fn list_factories(&self, scope: &str) -> Result<Vec<Value>, ArmError> {
        if is_factory_id(scope) {
            let response = self
                .send(operations::GET_FACTORY, scope, None, None)
                .await?;
            return Ok(vec![response.body]);
        }
        self.list(
            operations::LIST_FACTORIES,
            &format!("{scope}/providers/Microsoft.DataFactory/factories"),
        )
        .await
    }

    pub async fn list_linked_services(&self, factory_id: &str) -> Result<Vec<Value>, ArmError> {
        self.list(
            operations::LIST_LINKED_SERVICES,
            &format!("{factory_id}/linkedservices"),
        )
        .await
    }

    pub async fn list_credentials(&self, factory_id: &str) -> Result<Vec<Value>, ArmError> {
        self.list(
            operations::LIST_CREDENTIALS,
            &format!("{factory_id}/credentials"),
        )
        .await
    }

    /// GETs a linked service or credential; returns the resource and its etag exactly as ARM gave it.
    pub async fn get(
        &self,
        operation: ArmOperation,
        id: &str,
    ) -> Result<(ArmResponse, Option<String>), ArmError> {
        let response = self.send(operation, id, None, None).await?;
        let etag = response
            .body
            .get("etag")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((response, etag))
    }

    /// PUTs `{"properties": …}` conditionally on `etag`.
    pub async fn put(
        &self,
        operation: ArmOperation,
        id: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<ArmResponse, ArmError> {
        let body = json!({ "properties": properties });
        self.send(operation, id, Some(&body), Some(etag)).await
    }

    /// ADF's test connection. A 4xx comes back as a response, because its body is the test's answer.
    pub async fn test_connectivity(
        &self,
        factory_id: &str,
        body: &Value,
    ) -> Result<ArmResponse, ArmError> {
        let path = format!("{factory_id}/testConnectivity");
        match self
            .send(operations::TEST_CONNECTIVITY, &path, Some(body), None)
            .await
        {
            Err(ArmError::Rejected {
                status,
                body,
                request_id,
                ..
            }) => Ok(ArmResponse {
                status,
                body,
                request_id,
            }),
            other => other,
        }
    }

    pub async fn integration_runtime_status(
        &self,
        factory_id: &str,
        runtime: &str,
    ) -> Result<ArmResponse, ArmError> {
        let path = format!("{factory_id}/integrationruntimes/{runtime}/getStatus");
        self.send(
            operations::GET_INTEGRATION_RUNTIME_STATUS,
            &path,
            Some(&json!({})),
            None,
        )
        .await
    }

    /// Follows `nextLink` to the end; each page is one paced, retried request.
    async fn list(&self, operation: ArmOperation, path: &str) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(path));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                break;
            }
            let page = self.send_url(operation, &url, None, None).await?;
            if let Some(values) = page.body.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            next = match page
                .body
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
            {
                Some(link) if self.is_ours(link) => Some(link.to_string()),
                Some(link) => {
                    return Err(ArmError::ForeignLink(crate::azure::auth::redact_query(
                        link,
                    )));
                }
                None => None,
            };
        }
        Ok(items)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}?api-version={ADF_API_VERSION}", self.endpoint)
    }

    /// A nextLink must point at the ARM endpoint we were given: the bearer token goes with it.
    fn is_ours(&self, link: &str) -> bool {
        link.len() > self.endpoint.len()
            && link[..self.endpoint.len()].eq_ignore_ascii_case(&self.endpoint)
            && link[self.endpoint.len()..].starts_with('/')
    }

    async fn send(
        &self,
        operation: ArmOperation,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        self.send_url(operation, &self.url(path), body, if_match)
            .await
    }

    async fn send_url(
        &self,
        operation: ArmOperation,
        url: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        let path = &url[self.endpoint.len().min(url.len())..];
        let subscription = segment_after(path, "subscriptions")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let factory = factory_id_of(path);
        let mut attempt = 0u32;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ArmError::Deadline {
                    operation: operation.name,
                });
            }
            self.pacer
                .acquire(
                    &subscription,
                    factory.as_deref(),
                    operation.counts_as_write(),
                )
                .await;
            let token = self.token().await?;
            let method = reqwest::Method::from_bytes(operation.method.as_bytes())
                .unwrap_or(reqwest::Method::GET);
            let mut request = self.http.request(method, url).bearer_auth(token).header(
                "x-ms-correlation-request-id",
                uuid::Uuid::new_v4().to_string(),
            );
            if let Some(etag) = if_match {
                request = request.header("If-Match", etag);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let started = std::time::Instant::now();
            let result = request.send().await;
            let (wait, failure) = match result {
                Err(e) => {
                    tracing::warn!(operation = operation.name, attempt, error = %without_url(&e), "ARM request failed to complete");
                    let failure = ArmError::Network {
                        operation: operation.name,
                        message: without_url(&e),
                        attempts: attempt + 1,
                    };
                    (self.retry.delay(attempt, None), failure)
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let request_id = header("x-ms-request-id");
                    let retry_after = parse_retry_after(header("retry-after").as_deref());
                    let remaining_header = if operation.counts_as_write() {
                        "x-ms-ratelimit-remaining-subscription-writes"
                    } else {
                        "x-ms-ratelimit-remaining-subscription-reads"
                    };
                    self.pacer.observe_remaining(
                        &subscription,
                        operation.counts_as_write(),
                        header(remaining_header).and_then(|v| v.parse().ok()),
                    );
                    let bytes = response.bytes().await.unwrap_or_default();
                    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    tracing::debug!(
                        operation = operation.name,
                        status,
                        request_id = request_id.as_deref().unwrap_or(""),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "ARM call"
                    );
                    if (200..300).contains(&status) {
                        return Ok(ArmResponse {
                            status,
                            body,
                            request_id,
                        });
                    }
                    let (code, message) = cloud_error(&body, status);
                    if status == 429 {
                        self.pacer
                            .observe_throttled(&subscription, operation.counts_as_write());
                    }
                    if !is_retryable_status(status) {
                        return Err(match status {
                            401 | 403 => ArmError::Forbidden {
                                operation: operation.name,
                                status,
                                code,
                                message,
                                request_id,
                            },
                            404 => ArmError::NotFound {
                                operation: operation.name,
                                message,
                                request_id,
                            },
                            412 => ArmError::PreconditionFailed {
                                operation: operation.name,
                                request_id,
                            },
                            _ if mentions_precondition(&code, &message) => {
                                ArmError::PreconditionFailed {
                                    operation: operation.name,
                                    request_id,
                                }
                            }
                            _ => ArmError::Rejected {
                                operation: operation.name,
                                status,
                                code,
                                message,
                                body,
                                request_id,
                            },
                        });
                    }
                    tracing::warn!(
                        operation = operation.name,
                        status,
                        attempt,
                        request_id = request_id.as_deref().unwrap_or(""),
                        "ARM answered with a transient error"
                    );
                    let failure = ArmError::Unavailable {
                        operation: operation.name,
                        status,
                        code,
                        message,
                        attempts: attempt + 1,
                        request_id,
                    };
                    (self.retry.delay(attempt, retry_after), failure)
                }
            };
            if !self.retry.should_retry(attempt, wait, self.deadline) {
                return Err(failure);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// A token for ARM, retried inside the deadline; the error names the credential and its endpoint.
    async fn token(&self) -> Result<String, ArmError> {
        let scope = format!("{}/.default", self.audience);
        let mut attempt = 0u32;
        loop {
            match self.credential.get_token(&[scope.as_str()], None).await {
                Ok(token) => return Ok(token.token.secret().to_string()),
                Err(e) => {
                    let wait = self.retry.delay(attempt, None);
                    tracing::warn!(
                        credential = self.credential_kind.name(),
                        attempt,
                        "token request failed"
                    );
                    if !self.retry.should_retry(attempt, wait, self.deadline) {
                        return Err(ArmError::Token {
                            kind: self.credential_kind.name(),
                            endpoint: self.credential_kind.token_endpoint(),
                            message: first_line(&e.to_string()),
                            attempts: attempt + 1,
                        });
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// The token audience for an ARM endpoint: the sovereign clouds have their own.
pub fn arm_audience(endpoint: &str) -> String {
    let lower = endpoint.to_ascii_lowercase();
    for sovereign in [
        "management.chinacloudapi.cn",
        "management.usgovcloudapi.net",
        "management.microsoftazure.de",
    ] {
        if lower.contains(sovereign) {
            return format!("https://{sovereign}");
        }
    }
    "https://management.azure.com".into()
}

/// A factory's authoring collections: read only to tell what a broken linked service stops.
impl ArmClient {
    /// Lists a factory's datasets, pipelines, data flows or triggers, following `nextLink` to the end.
    pub async fn list_factory_collection(
        &self,
        factory_id: &str,
        collection: operations::FactoryCollection,
    ) -> Result<Vec<Value>, ArmError> {
        self.list(
            collection.operation(),
            &format!("{factory_id}/{}", collection.segment()),
        )
        .await
    }
}

/// `(code, message)` from an ARM CloudError body.
fn cloud_error(body: &Value, status: u16) -> (String, String) {
    let error = body.get("error").unwrap_or(body);
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    (code, message)
}

fn mentions_precondition(code: &str, message: &str) -> bool {
    let text = format!("{code} {message}").to_ascii_lowercase();
    text.contains("precondition") || text.contains("etag")
}

/// reqwest errors print the URL; ours hold no keys, but keep error text to the cause alone.
fn without_url(e: &reqwest::Error) -> String {
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

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).chars().take(400).collect()
}

/// The value after a named path segment (case-insensitive), e.g. the subscription id.
pub fn segment_after<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let mut segments = path.split('?').next().unwrap_or(path).split('/');
    while let Some(s) = segments.next() {
        if s.eq_ignore_ascii_case(name) {
            return segments.next().filter(|v| !v.is_empty());
        }
    }
    None
}

/// Whether a scope is one factory's resource id.
pub fn is_factory_id(scope: &str) -> bool {
    let segments: Vec<&str> = scope.trim_end_matches('/').split('/').collect();
    segments.len() == 9
        && segments[6].eq_ignore_ascii_case("Microsoft.DataFactory")
        && segments[7].eq_ignore_ascii_case("factories")
}

/// The factory id a path lies under, lower-cased, for per-factory pacing.
fn factory_id_of(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    (segments.len() >= 9 && segments[7].eq_ignore_ascii_case("factories"))
        .then(|| segments[..9].join("/").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_segments() {
        let f = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1";
        assert!(is_factory_id(f));
        assert!(!is_factory_id("/subscriptions/s1/resourceGroups/rg"));
        assert_eq!(segment_after(f, "subscriptions"), Some("s1"));
        assert_eq!(
            segment_after(
                &format!("{f}/linkedservices/x?api-version=1"),
                "linkedservices"
            ),
            Some("x")
        );
        assert_eq!(
            factory_id_of(&format!("{f}/linkedservices/x")),
            Some(f.to_ascii_lowercase())
        );
    }

    #[test]
    fn sovereign_audiences() {
        assert_eq!(
            arm_audience("https://management.chinacloudapi.cn/"),
            "https://management.chinacloudapi.cn"
        );
        assert_eq!(
            arm_audience("https://127.0.0.1:8443"),
            "https://management.azure.com"
        );
    }

    #[test]
    fn cloud_errors_and_preconditions() {
        let body =
            json!({"error": {"code": "PreconditionFailed", "message": "The etag does not match"}});
        let (code, message) = cloud_error(&body, 400);
        assert!(mentions_precondition(&code, &message));
        assert_eq!(cloud_error(&Value::Null, 503).1, "HTTP 503");
    }
}
