//! The ARM client for the Data Factory management API.
//!
//! Every request is one of [`super::operations`], paced by the [`Pacer`] and retried by the one
//! [`RetryPolicy`]. Statuses map to meanings ([`ArmError`]) so that callers match on what happened, not on
//! numbers. Request and response bodies are never logged; only operation names, statuses and request ids.

use super::auth::CredentialKind;
pub use super::error::AzureError;
use super::lro;
use super::operations::{self, ADF_API_VERSION, ArmOperation};
use super::pacer::Pacer;
use super::pager;
pub use super::pager::{Listed, MAX_PAGES};
use super::request::{self, Answer, Exchange, Expect, REQUEST_LIMIT};
use super::resource_id::ResourceId;
use super::retry::{self, Attempt, RetryPolicy, parse_retry_after};
use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// A response from ARM, with what a report and a long-running operation need from its headers.
#[derive(Debug, Clone, Default)]
pub struct ArmResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
    /// The `ETag` header, when ARM sent one.
    pub etag: Option<String>,
    /// The `Location` header (a 202's operation, or where its result will be).
    pub location: Option<String>,
    /// The `Azure-AsyncOperation` header (a 202's status monitor).
    pub azure_async_operation: Option<String>,
    /// The `Retry-After` header.
    pub retry_after: Option<Duration>,
}

impl From<Answer> for ArmResponse {
    fn from(answer: Answer) -> Self {
        let header = |name: &str| answer.header(name).map(str::to_string);
        ArmResponse {
            status: answer.status,
            etag: header("etag"),
            location: header("location"),
            azure_async_operation: header("azure-asyncoperation"),
            retry_after: parse_retry_after(answer.header("retry-after")),
            request_id: answer.request_id,
            body: answer.body,
        }
    }
}

/// The one error of every Azure client, under the name ARM's callers know.
pub type ArmError = AzureError;

/// What a refusal by ARM calls for.
pub const REMEDY: &str = "Grant the product's identity the custom role from infra/ at this scope";

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

    /// The same client, bounded to at most `limit` from now (or its own deadline, if sooner): for one
    /// long-running operation that must not spend the whole run's budget.
    pub fn within(mut self, limit: Duration) -> Self {
        let cap = Instant::now() + limit;
        self.deadline = Some(self.deadline.map_or(cap, |d| d.min(cap)));
        self
    }

    /// The Key Vault DNS suffix of this deployment's cloud, decided by the ARM endpoint.
    pub fn home_vault_suffix(&self) -> &'static str {
        crate::config::vault_suffix_for_arm(self.endpoint.as_ref().map_or("", |u| u.as_str()))
    }

    /// Lists the factories in a scope: a subscription, a resource group, or one factory.
    pub async fn list_factories(&self, scope: &str) -> Result<Vec<Value>, ArmError> {
        let scope = parse_id(scope)?;
        if scope.is_factory() {
            let response = self
                .send(operations::GET_FACTORY, &scope, None, None)
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
        Ok(self
            .list_linked_services_kept(factory_id, &|_| true)
            .await?
            .kept)
    }

    pub async fn list_credentials(&self, factory_id: &str) -> Result<Vec<Value>, ArmError> {
        Ok(self
            .list_credentials_kept(factory_id, &|_| true)
            .await?
            .kept)
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
        self.list_in_factory(
            factory_id,
            operations::LIST_LINKED_SERVICES,
            "linkedservices",
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
        self.list_in_factory(
            factory_id,
            operations::LIST_CREDENTIALS,
            "credentials",
            keep,
        )
        .await
    }

    /// `GET {factory}/{collection}`, page by page, holding only what `keep` accepts.
    async fn list_in_factory(
        &self,
        factory_id: &str,
        operation: ArmOperation,
        collection: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        let factory = parse_id(factory_id)?;
        self.list_kept_at(
            operation,
            &factory.join(&[collection]),
            ADF_API_VERSION,
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

    /// Lists `GET {id}?api-version=…` through the one pager: every page is checked, a `nextLink` is followed only
    /// on the ARM endpoint's origin, and only the items `keep` accepts are held (all are counted).
    pub async fn list_kept_at(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        api_version: &str,
        keep: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<Listed, ArmError> {
        let first = self.url_at(id, api_version)?;
        pager::list(
            operation.name,
            first,
            self.max_pages,
            keep,
            |url| async move {
                let origin = url.clone();
                self.send_url(
                    operation,
                    url,
                    id,
                    None,
                    None,
                    Expect::Page { origin: &origin },
                )
                .await
                .map(|page| page.body)
            },
        )
        .await
    }

    /// GETs a resource at its provider's api-version.
    pub async fn get_at(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        api_version: &str,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url_at(id, api_version)?;
        self.send_url(operation, url, id, None, None, Expect::Object)
            .await
            .map(ArmResponse::from)
    }

    /// POSTs an action at its provider's api-version. A 202 is polled to the operation's end within the run's
    /// deadline (on the ARM endpoint only); the answer is the final one: the result at `Location` when the status
    /// was followed at `Azure-AsyncOperation`, else the last poll's.
    pub async fn post_at(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        api_version: &str,
        body: &Value,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url_at(id, api_version)?;
        let first = self
            .send_url(operation, url, id, Some(body), None, Expect::Object)
            .await?;
        if first.status != 202 {
            return Ok(first.into());
        }
        let endpoint = self.endpoint()?;
        let stop = self.operation_stop();
        // A poll is a read, whatever the operation it watches.
        let poll = ArmOperation {
            method: "GET",
            ..operation
        };
        let get = |url: Url| async move {
            self.send_url(poll, url, id, None, None, Expect::Object)
                .await
        };
        let ended = lro::poll(operation.name, &first, endpoint, None, stop, get).await?;
        let mut answer: ArmResponse = match ended.location {
            Some(result) => get(result).await?.into(),
            None => ended.answer.into(),
        };
        if answer.request_id.is_none() {
            answer.request_id = first.request_id;
        }
        Ok(answer)
    }

    /// When polling a long-running operation stops: the run's deadline, or five minutes without one.
    fn operation_stop(&self) -> Instant {
        let limit = Instant::now() + Duration::from_secs(300);
        self.deadline.map_or(limit, |d| d.min(limit))
    }

    fn endpoint(&self) -> Result<&Url, ArmError> {
        self.endpoint.as_ref().ok_or(ArmError::InvalidId(
            "the configured ARM endpoint is not a URL".into(),
        ))
    }

    fn url_at(&self, id: &ResourceId, api_version: &str) -> Result<Url, ArmError> {
        id.url(self.endpoint()?, api_version)
            .map_err(|e| ArmError::InvalidId(e.to_string()))
    }

    async fn send(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url_at(id, ADF_API_VERSION)?;
        self.send_url(operation, url, id, body, if_match, Expect::Object)
            .await
            .map(ArmResponse::from)
    }

    /// One operation through the one retry loop: paced, bounded by the deadline, its answer checked.
    async fn send_url(
        &self,
        operation: ArmOperation,
        url: Url,
        id: &ResourceId,
        body: Option<&Value>,
        if_match: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Answer, ArmError> {
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
                expect,
                attempt,
            )
            .await
        })
        .await
    }

    /// One attempt: a place in the subscription's lane, a token from the pacer, the request, and what ARM's
    /// headers say about the bucket; the answer is classified by the one shared classifier.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        operation: ArmOperation,
        url: &Url,
        subscription: &str,
        factory: Option<&str>,
        body: Option<&Value>,
        if_match: Option<&str>,
        expect: Expect<'_>,
        attempt: u32,
    ) -> Attempt<Answer, ArmError> {
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
        let request =
            request::bearer_request(&self.http, method, url, &token, timeout, if_match, body);
        let started = std::time::Instant::now();
        let raw = match request::fetch(request, operation.name, attempt).await {
            Ok(raw) => raw,
            Err(retry) => return retry,
        };
        let is_write = operation.counts_as_write();
        let remaining_header = if is_write {
            "x-ms-ratelimit-remaining-subscription-writes"
        } else {
            "x-ms-ratelimit-remaining-subscription-reads"
        };
        self.pacer.observe_remaining(
            subscription,
            is_write,
            raw.header(remaining_header).and_then(|v| v.parse().ok()),
        );
        if raw.status == 429 {
            // Back-pressure: the lane pauses for every caller (DESIGN.md, "Throttling").
            self.pacer.observe_throttled_for(
                subscription,
                is_write,
                parse_retry_after(raw.header("retry-after")),
            );
        }
        tracing::debug!(
            operation = operation.name,
            status = raw.status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ARM call"
        );
        request::classify(
            &Exchange {
                operation: operation.name,
                expect,
                remedy: REMEDY,
                target: "",
                attempt,
            },
            raw,
        )
    }

    /// A token for ARM, through the one retry loop inside the deadline.
    async fn token(&self) -> Result<String, ArmError> {
        let scope = format!("{}/.default", self.audience);
        request::bearer_token(
            self.credential.as_ref(),
            Some(self.credential_kind),
            &scope,
            &self.retry,
            self.deadline,
        )
        .await
    }
}

#[async_trait::async_trait]
impl Arm for ArmClient {
    async fn get(&self, operation: ArmOperation, id: &ResourceId) -> Result<ArmResponse, ArmError> {
        self.send(operation, id, None, None).await
    }

    async fn put(
        &self,
        operation: ArmOperation,
        id: &ResourceId,
        properties: &Value,
        etag: &str,
    ) -> Result<ArmResponse, ArmError> {
        let body = json!({ "properties": properties });
        self.send(operation, id, Some(&body), Some(etag)).await
    }

    async fn test_connectivity(
        &self,
        factory: &ResourceId,
        body: &Value,
    ) -> Result<ArmResponse, ArmError> {
        let id = factory.join(&["testConnectivity"]);
        match self
            .send(operations::TEST_CONNECTIVITY, &id, Some(body), None)
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
                ..ArmResponse::default()
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
            etag: Some("\"h\"".into()),
            ..ArmResponse::default()
        };
        assert_eq!(resource_etag(&from_header).as_deref(), Some("\"h\""));
        let from_body = ArmResponse {
            body: json!({"etag": "b"}),
            ..from_header
        };
        assert_eq!(resource_etag(&from_body).as_deref(), Some("b"));
    }
}
