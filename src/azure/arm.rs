//! The ARM client for the Data Factory management API.
//!
//! Every request is one of [`super::operations`], paced by the [`Pacer`] and retried by the one
//! [`RetryPolicy`]. Statuses map to meanings ([`ArmError`]) so that callers match on what happened, not on
//! numbers. Request and response bodies are never logged; only operation names, statuses and request ids.

use super::auth::CredentialKind;
use super::operations::{self, ADF_API_VERSION, ArmOperation};
use super::pacer::Pacer;
use super::resource_id::{self, ResourceId};
use super::retry::{self, Attempt, RetryPolicy, is_retryable_status, parse_retry_after};
use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// A response from ARM, with what a report needs from its headers.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
    /// The `ETag` header, when ARM sent one.
    pub etag: Option<String>,
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
        /// Boxed: ADF's answer can be large, and the error travels in every `Result`.
        body: Box<Value>,
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
    #[error(
        "{operation} answered {status} with an unusable body after {attempts} attempts: {message}"
    )]
    Malformed {
        operation: &'static str,
        status: u16,
        message: String,
        attempts: u32,
        request_id: Option<String>,
    },
    #[error("{operation} has more than {pages} pages; the listing was not read to its end")]
    TooManyPages { operation: &'static str, pages: u32 },
    #[error("not a usable ARM path: {0}")]
    InvalidId(String),
}

impl ArmError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ArmError::Unavailable { .. }
                | ArmError::Malformed { .. }
                | ArmError::TooManyPages { .. }
                | ArmError::ForeignLink(_)
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
            | ArmError::Unavailable { request_id, .. }
            | ArmError::Malformed { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// The longest one ARM request may take, deadline permitting.
const REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// The most pages one listing follows; a listing that goes on longer is reported, never cut short silently.
pub const MAX_PAGES: u32 = 10_000;

/// What a 2xx body must look like for an operation to have been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A JSON object (a resource, a test result, a status).
    Object,
    /// A page of a listing: `value` (an array) or `nextLink`.
    Page,
}

impl Shape {
    pub(crate) fn check(self, body: &Value) -> Result<(), &'static str> {
        let Some(object) = body.as_object() else {
            return Err("the body is not a JSON object");
        };
        if self == Shape::Page {
            let value = object.get("value");
            let next = object.get("nextLink").and_then(Value::as_str);
            if value.is_some_and(|v| !v.is_array()) {
                return Err("the page's `value` is not an array");
            }
            if value.is_none() && next.is_none_or(str::is_empty) {
                return Err("the page has neither `value` nor `nextLink`");
            }
        }
        Ok(())
    }
}

/// The ARM calls a run makes, behind a trait so the deciding around them is tested without a network.
#[async_trait::async_trait]
pub trait Arm: Send + Sync {
    /// GETs a linked service or credential.
    async fn get(&self, operation: ArmOperation, id: &ResourceId) -> Result<ArmResponse, ArmError>;
    /// PUTs `{"properties": …}` conditionally on `etag`.
    async fn put(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        properties: &Value,
        etag: &str,
    ) -> Result<ArmResponse, ArmError>;
    /// ADF's test connection. A 4xx comes back as a response, because its body is the test's answer.
    async fn test_connectivity(
        &self,
        factory: &ResourceId,
        body: &Value,
    ) -> Result<ArmResponse, ArmError>;
    async fn integration_runtime_status(
        &self,
        factory: &ResourceId,
        runtime: &str,
    ) -> Result<ArmResponse, ArmError>;
}

/// What a listing held on to, and how many items it listed in all.
#[derive(Debug, Default)]
pub struct Listed {
    pub kept: Vec<Value>,
    pub count: usize,
}

/// How many ARM requests may be in flight at once per subscription, for reads and for writes each, unless
/// configured otherwise (`--concurrency`).
pub const DEFAULT_IN_FLIGHT: usize = 32;

/// Per-subscription limits on requests in flight, reads and writes apart: ARM's buckets are per subscription,
/// so one busy subscription never holds back another. Shared by every clone of a client.
#[derive(Debug)]
struct InFlight {
    per_lane: usize,
    lanes: std::sync::Mutex<std::collections::HashMap<(String, bool), Arc<tokio::sync::Semaphore>>>,
}

impl InFlight {
    fn new(per_lane: usize) -> Self {
        InFlight {
            per_lane: per_lane.max(1),
            lanes: Default::default(),
        }
    }

    fn lane(&self, subscription: &str, write: bool) -> Arc<tokio::sync::Semaphore> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry((subscription.to_string(), write))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_lane)))
            .clone()
    }
}

/// Talks to ARM for one run.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    /// `None` when the configured endpoint is not a URL; every call then fails with that reason.
    endpoint: Option<Url>,
    audience: String,
    credential: Arc<dyn TokenCredential>,
    credential_kind: CredentialKind,
    pacer: Arc<Pacer>,
    in_flight: Arc<InFlight>,
    retry: RetryPolicy,
    deadline: Option<Instant>,
    max_pages: u32,
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
        let trimmed = endpoint.trim().trim_end_matches('/');
        ArmClient {
            audience: arm_audience(trimmed),
            http,
            endpoint: Url::parse(trimmed)
                .ok()
                .filter(|u| u.has_host() && !u.cannot_be_a_base()),
            credential,
            credential_kind,
            pacer,
            in_flight: Arc::new(InFlight::new(DEFAULT_IN_FLIGHT)),
            retry,
            deadline: None,
            max_pages: MAX_PAGES,
        }
    }

    /// The same client, following at most `pages` pages per listing.
    pub fn with_max_pages(mut self, pages: u32) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// The same client, with at most `requests` ARM requests in flight per subscription, for reads and for writes
    /// each. Clones made after this share the limit.
    pub fn with_in_flight(mut self, requests: usize) -> Self {
        self.in_flight = Arc::new(InFlight::new(requests));
        self
    }

    /// The per-subscription limit on requests in flight (reads and writes each).
    pub fn in_flight(&self) -> usize {
        self.in_flight.per_lane
    }

    /// The same client, bounded by a deadline: no attempt starts, no retry waits, and no request runs past it.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Lists the factories in a scope: a subscription, a resource group, or one factory.
    pub async fn list_factories(&self, scope: &str) -> Result<Vec<Value>, ArmError> {
        let scope = parse_id(scope)?;
        if scope.is_factory() {
            let response = self
                .send(operations::GET_FACTORY, &scope, None, None, Shape::Object)
                .await?;
            return Ok(vec![response.body]);
        }
        self.list(
            operations::LIST_FACTORIES,
            &scope.join(&["providers", "Microsoft.DataFactory", "factories"]),
        )
        .await
    }

    pub async fn list_linked_services(&self, factory_id: &str) -> Result<Vec<Value>, ArmError> {
        let factory = parse_id(factory_id)?;
        self.list(
            operations::LIST_LINKED_SERVICES,
            &factory.join(&["linkedservices"]),
        )
        .await
    }

    pub async fn list_credentials(&self, factory_id: &str) -> Result<Vec<Value>, ArmError> {
        let factory = parse_id(factory_id)?;
        self.list(
            operations::LIST_CREDENTIALS,
            &factory.join(&["credentials"]),
        )
        .await
    }

    /// Lists the Synapse workspaces of a subscription or resource group (api-version
    /// [`operations::SYNAPSE_WORKSPACES_API_VERSION`]), followed to the end like every listing.
    pub async fn list_synapse_workspaces(&self, scope: &str) -> Result<Vec<Value>, ArmError> {
        let scope = parse_id(scope)?;
        self.list_at(
            operations::LIST_SYNAPSE_WORKSPACES,
            &scope.join(&["providers", "Microsoft.Synapse", "workspaces"]),
            operations::SYNAPSE_WORKSPACES_API_VERSION,
        )
        .await
    }

    /// A factory's linked services as they are listed, page by page: only those `keep` accepts are held, the
    /// rest are dropped as soon as their page is read. Returns what was kept and how many were listed.
    pub async fn list_linked_services_kept(
        &self,
        factory_id: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        let factory = parse_id(factory_id)?;
        self.list_kept(
            operations::LIST_LINKED_SERVICES,
            &factory.join(&["linkedservices"]),
            keep,
        )
        .await
    }

    /// A factory's credentials, page by page, holding only those `keep` accepts.
    pub async fn list_credentials_kept(
        &self,
        factory_id: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        let factory = parse_id(factory_id)?;
        self.list_kept(
            operations::LIST_CREDENTIALS,
            &factory.join(&["credentials"]),
            keep,
        )
        .await
    }

    /// Follows `nextLink` to the end; each page is one paced, retried request. A listing is all or an error.
    async fn list(&self, operation: ArmOperation, id: &ResourceId) -> Result<Vec<Value>, ArmError> {
        self.list_at(operation, id, ADF_API_VERSION).await
    }

    /// [`Self::list`] at another provider's api-version (the `nextLink`s carry their own).
    async fn list_at(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        api_version: &str,
    ) -> Result<Vec<Value>, ArmError> {
        Ok(self
            .list_kept_at(operation, id, api_version, &|_| true)
            .await?
            .kept)
    }

    /// [`Self::list`], holding only the items `keep` accepts: each page is scanned and dropped before the next
    /// is read, so a long listing never sits in memory whole.
    async fn list_kept(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        self.list_kept_at(operation, id, ADF_API_VERSION, keep)
            .await
    }

    async fn list_kept_at(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        api_version: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        let endpoint = self.endpoint()?;
        let mut listed = Listed::default();
        let mut next = Some(
            id.url(endpoint, api_version)
                .map_err(|e| ArmError::InvalidId(e.to_string()))?,
        );
        let mut pages = 0u32;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > self.max_pages {
                return Err(ArmError::TooManyPages {
                    operation: operation.name,
                    pages: self.max_pages,
                });
            }
            let mut page = self
                .send_url(operation, url, id, None, None, Shape::Page)
                .await?;
            if let Some(Value::Array(values)) = page.body.get_mut("value").map(Value::take) {
                listed.count += values.len();
                listed
                    .kept
                    .extend(values.into_iter().filter(|item| keep(item)));
            }
            next = match page
                .body
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
            {
                None => None,
                Some(link) => match resource_id::next_link(endpoint, link) {
                    Some(url) => Some(url),
                    None => {
                        return Err(ArmError::ForeignLink(crate::azure::auth::redact_query(
                            link,
                        )));
                    }
                },
            };
        }
        Ok(listed)
    }

    fn endpoint(&self) -> Result<&Url, ArmError> {
        self.endpoint.as_ref().ok_or(ArmError::InvalidId(
            "the configured ARM endpoint is not a URL".into(),
        ))
    }

    fn url(&self, id: &ResourceId) -> Result<Url, ArmError> {
        id.url(self.endpoint()?, ADF_API_VERSION)
            .map_err(|e| ArmError::InvalidId(e.to_string()))
    }

    async fn send(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        body: Option<&Value>,
        if_match: Option<&str>,
        shape: Shape,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url(id)?;
        self.send_url(operation, url, id, body, if_match, shape)
            .await
    }

    /// One operation through the one retry loop: paced, bounded by the deadline, its answer checked.
    async fn send_url(
        &self,
        operation: ArmOperation,
        url: Url,
        id: &ResourceId,
        body: Option<&Value>,
        if_match: Option<&str>,
        shape: Shape,
    ) -> Result<ArmResponse, ArmError> {
        let subscription = id.subscription().unwrap_or_default().to_lowercase();
        // ADF's per-factory limit is on entity writes.
        let factory = operation
            .is_entity_write()
            .then(|| id.factory().map(|f| f.key()))
            .flatten();
        let if_match = if_match.and_then(if_match_value);
        let url = &url;
        let subscription = &subscription;
        let factory = &factory;
        let if_match = &if_match;
        retry::run(&self.retry, self.deadline, |attempt| async move {
            self.attempt(
                operation,
                url,
                subscription,
                factory.as_deref(),
                body,
                if_match.as_deref(),
                shape,
                attempt,
            )
            .await
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        operation: ArmOperation,
        url: &Url,
        subscription: &str,
        factory: Option<&str>,
        body: Option<&Value>,
        if_match: Option<&str>,
        shape: Shape,
        attempt: u32,
    ) -> Attempt<ArmResponse, ArmError> {
        let deadline_passed = || ArmError::Deadline {
            operation: operation.name,
        };
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Attempt::Fail(deadline_passed());
        }
        // A place among the subscription's requests in flight, then a token from its bucket: a token is never
        // taken only to wait for a place.
        let lane = self
            .in_flight
            .lane(subscription, operation.counts_as_write());
        let Ok(_in_flight) = lane.acquire_owned().await else {
            return Attempt::Fail(deadline_passed());
        };
        self.pacer
            .acquire(subscription, factory, operation.counts_as_write())
            .await;
        let token = match self.token().await {
            Ok(token) => token,
            Err(e) => return Attempt::Fail(e),
        };
        let timeout = retry::request_timeout(REQUEST_LIMIT, self.deadline);
        if timeout.is_zero() {
            return Attempt::Fail(deadline_passed());
        }
        let method = reqwest::Method::from_bytes(operation.method.as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut request = self
            .http
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
        let started = std::time::Instant::now();
        let network = |message: String| Attempt::Retry {
            error: ArmError::Network {
                operation: operation.name,
                message,
                attempts: attempt + 1,
            },
            retry_after: None,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(operation = operation.name, attempt, error = %without_url(&e), "ARM request failed to complete");
                return network(without_url(&e));
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-ms-request-id");
        let etag = header("etag");
        let retry_after = parse_retry_after(header("retry-after").as_deref());
        let remaining_header = if operation.counts_as_write() {
            "x-ms-ratelimit-remaining-subscription-writes"
        } else {
            "x-ms-ratelimit-remaining-subscription-reads"
        };
        self.pacer.observe_remaining(
            subscription,
            operation.counts_as_write(),
            header(remaining_header).and_then(|v| v.parse().ok()),
        );
        // A body cut off after the headers is a failed attempt, never an empty answer.
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(operation = operation.name, status, attempt, error = %without_url(&e), "ARM answer was cut off");
                return network(format!("the answer was cut off: {}", without_url(&e)));
            }
        };
        tracing::debug!(
            operation = operation.name,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ARM call"
        );
        if (200..300).contains(&status) {
            let checked = serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| "the body is not JSON")
                .and_then(|body| shape.check(&body).map(|()| body));
            // A nextLink elsewhere is an answer we cannot use: the bearer token would go with it.
            let checked = checked.and_then(|body| match (shape, self.endpoint.as_ref()) {
                (Shape::Page, Some(endpoint)) => match body.get("nextLink").and_then(Value::as_str)
                {
                    Some(link)
                        if !link.is_empty() && resource_id::next_link(endpoint, link).is_none() =>
                    {
                        Err("the page's nextLink leaves the ARM endpoint")
                    }
                    _ => Ok(body),
                },
                _ => Ok(body),
            });
            return match checked {
                Ok(body) => Attempt::Done(ArmResponse {
                    status,
                    body,
                    request_id,
                    etag,
                }),
                Err(why) => {
                    tracing::warn!(
                        operation = operation.name,
                        status,
                        attempt,
                        why,
                        "ARM answered 2xx with an unusable body"
                    );
                    Attempt::Retry {
                        error: ArmError::Malformed {
                            operation: operation.name,
                            status,
                            message: why.into(),
                            attempts: attempt + 1,
                            request_id,
                        },
                        retry_after: None,
                    }
                }
            };
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (code, message) = cloud_error(&body, status);
        if status == 429 {
            // Back-pressure: the lane pauses for every caller, and this call waits and tries again without
            // spending an attempt (DESIGN.md, "Throttling").
            self.pacer.observe_throttled_for(
                subscription,
                operation.counts_as_write(),
                retry_after,
            );
            tracing::info!(
                operation = operation.name,
                attempt,
                request_id = request_id.as_deref().unwrap_or(""),
                "ARM throttled the call (429); waiting for Retry-After"
            );
            return Attempt::Throttled {
                error: ArmError::Unavailable {
                    operation: operation.name,
                    status,
                    code,
                    message,
                    attempts: attempt + 1,
                    request_id,
                },
                retry_after,
            };
        }
        if !is_retryable_status(status) {
            return Attempt::Fail(match status {
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
                _ if mentions_precondition(&code, &message) => ArmError::PreconditionFailed {
                    operation: operation.name,
                    request_id,
                },
                _ => ArmError::Rejected {
                    operation: operation.name,
                    status,
                    code,
                    message,
                    body: Box::new(body),
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
        Attempt::Retry {
            error: ArmError::Unavailable {
                operation: operation.name,
                status,
                code,
                message,
                attempts: attempt + 1,
                request_id,
            },
            retry_after,
        }
    }

    /// A token for ARM, retried inside the deadline; the error names the credential and its endpoint.
    async fn token(&self) -> Result<String, ArmError> {
        let scope = format!("{}/.default", self.audience);
        let scope = scope.as_str();
        retry::run(&self.retry, self.deadline, |attempt| async move {
            let timeout = retry::request_timeout(REQUEST_LIMIT, self.deadline);
            let outcome =
                tokio::time::timeout(timeout, self.credential.get_token(&[scope], None)).await;
            let message = match outcome {
                Ok(Ok(token)) => return Attempt::Done(token.token.secret().to_string()),
                // A missing tool, no sign-in, a wrong tenant or secret: no retry mends them, so say so at once.
                Ok(Err(e)) => match super::auth::classify_token_error(&e) {
                    failure @ super::auth::TokenFailure::Permanent { .. } => {
                        return Attempt::Fail(ArmError::Token {
                            kind: self.credential_kind.name(),
                            endpoint: self.credential_kind.token_endpoint(),
                            message: failure.to_string(),
                            attempts: attempt + 1,
                        });
                    }
                    super::auth::TokenFailure::Transient(message) => message,
                },
                Err(_) => "no answer within the run's time budget".to_string(),
            };
            tracing::warn!(
                credential = self.credential_kind.name(),
                attempt,
                "token request failed"
            );
            Attempt::Retry {
                error: ArmError::Token {
                    kind: self.credential_kind.name(),
                    endpoint: self.credential_kind.token_endpoint(),
                    message,
                    attempts: attempt + 1,
                },
                retry_after: None,
            }
        })
        .await
    }
}

#[async_trait::async_trait]
impl Arm for ArmClient {
    async fn get(&self, operation: ArmOperation, id: &ResourceId) -> Result<ArmResponse, ArmError> {
        self.send(operation, id, None, None, Shape::Object).await
    }

    async fn put(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        properties: &Value,
        etag: &str,
    ) -> Result<ArmResponse, ArmError> {
        let body = json!({ "properties": properties });
        self.send(operation, id, Some(&body), Some(etag), Shape::Object)
            .await
    }

    async fn test_connectivity(
        &self,
        factory: &ResourceId,
        body: &Value,
    ) -> Result<ArmResponse, ArmError> {
        let id = factory.join(&["testConnectivity"]);
        match self
            .send(
                operations::TEST_CONNECTIVITY,
                &id,
                Some(body),
                None,
                Shape::Object,
            )
            .await
        {
            Err(ArmError::Rejected {
                status,
                body,
                request_id,
                ..
            }) => Ok(ArmResponse {
                status,
                body: *body,
                request_id,
                etag: None,
            }),
            other => other,
        }
    }

    async fn integration_runtime_status(
        &self,
        factory: &ResourceId,
        runtime: &str,
    ) -> Result<ArmResponse, ArmError> {
        let id = factory
            .child("integrationruntimes", runtime)
            .map_err(|e| ArmError::InvalidId(e.to_string()))?
            .join(&["getStatus"]);
        self.send(
            operations::GET_INTEGRATION_RUNTIME_STATUS,
            &id,
            Some(&json!({})),
            None,
            Shape::Object,
        )
        .await
    }
}

fn parse_id(text: &str) -> Result<ResourceId, ArmError> {
    ResourceId::parse(text).map_err(|e| ArmError::InvalidId(e.to_string()))
}

/// The etag of a resource: from its body, else from the `ETag` header.
pub fn resource_etag(response: &ArmResponse) -> Option<String> {
    response
        .body
        .get("etag")
        .and_then(Value::as_str)
        .or(response.etag.as_deref())
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
}

/// The `If-Match` value for an etag: exactly as ARM returned it (quoted or bare), trimmed, never quoted again.
/// ADF compares `If-Match` with the etag it returned (DESIGN.md, "Writing").
pub fn if_match_value(etag: &str) -> Option<String> {
    let etag = etag.trim();
    (!etag.is_empty()).then(|| etag.to_string())
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
        let factory = parse_id(factory_id)?;
        self.list(
            collection.operation(),
            &factory.join(&[collection.segment()]),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn etags_are_sent_as_returned_and_never_quoted_twice() {
        let quoted = "\"0a00b1c2-0000-0000-0000-5f1e2d3c0000\"";
        assert_eq!(if_match_value(quoted).as_deref(), Some(quoted));
        let bare = "0a00b1c2-0000-0000-0000-5f1e2d3c0000";
        assert_eq!(if_match_value(&format!(" {bare} ")).as_deref(), Some(bare));
        assert_eq!(if_match_value(" W/\"abc\" ").as_deref(), Some("W/\"abc\""));
        assert_eq!(if_match_value("  "), None);
        let from_header = ArmResponse {
            status: 200,
            body: json!({"name": "x"}),
            request_id: None,
            etag: Some("\"h\"".into()),
        };
        assert_eq!(resource_etag(&from_header).as_deref(), Some("\"h\""));
        let from_body = ArmResponse {
            body: json!({"etag": "b"}),
            ..from_header
        };
        assert_eq!(resource_etag(&from_body).as_deref(), Some("b"));
    }

    #[test]
    fn a_page_needs_value_or_next_link_and_a_resource_an_object() {
        assert!(Shape::Page.check(&json!({"value": []})).is_ok());
        assert!(
            Shape::Page
                .check(&json!({"nextLink": "https://x/y"}))
                .is_ok()
        );
        assert!(Shape::Page.check(&json!({})).is_err());
        assert!(Shape::Page.check(&json!({"value": {}})).is_err());
        assert!(
            Shape::Page
                .check(&json!({"value": null, "nextLink": ""}))
                .is_err()
        );
        assert!(Shape::Object.check(&json!("<html>")).is_err());
        assert!(Shape::Object.check(&json!({"id": "x"})).is_ok());
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
