//! The client for a Synapse workspace's development endpoint (data plane, api-version 2020-12-01).
//!
//! Synapse pipelines use ADF's linked-service model: the same `properties`, the same Key Vault references and
//! the same masking of inline secrets. What differs is where and how they are written:
//! - each workspace has its own endpoint, `properties.connectivityEndpoints.dev` from ARM
//!   (`https://{workspace}.dev.azuresynapse.net`), or the `--synapse-endpoint` template for emulators and proxies;
//! - tokens are for `https://dev.azuresynapse.net/.default`, and Synapse RBAC, not Azure RBAC, decides access;
//! - a PUT is long-running: 200, or 202 with `Location` (`…/operationResults/{id}`) and `Retry-After`, which is
//!   polled to its end. A 202 is never a success; only an operation that ended `Succeeded` is.
//!
//! Sources: `reference/synapse-spec/` (linkedServices.json, credential.json, workspace.json), DESIGN.md
//! ("Synapse"). Request and response bodies are never logged; URLs are logged without their query.

use super::auth::{CredentialKind, redact_query};
use super::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The data-plane api-version of linked services and credentials.
pub const SYNAPSE_API_VERSION: &str = "2020-12-01";
/// The ARM api-version of `Microsoft.Synapse/workspaces`.
pub const SYNAPSE_ARM_API_VERSION: &str = "2021-06-01";
/// The token scope of every development endpoint.
pub const SYNAPSE_SCOPE: &str = "https://dev.azuresynapse.net/.default";
/// The placeholder of `--synapse-endpoint`.
pub const WORKSPACE_PLACEHOLDER: &str = "{workspace}";

/// The Synapse RBAC role that lets the product read linked services and credentials.
pub const READ_ROLE: &str = "Synapse User";
/// The Synapse RBAC role that lets the product re-save them.
pub const WRITE_ROLE: &str = "Synapse Linked Data Manager";

/// How long a long-running PUT may take when the run has no deadline of its own.
const DEFAULT_OPERATION_LIMIT: Duration = Duration::from_secs(300);
/// The wait between polls when the service gives no `Retry-After`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between polls, whatever `Retry-After` says.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(30);
const MAX_PAGES: usize = 10_000;
const MAX_POLLS: u32 = 1_000;

/// A Synapse workspace as ARM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Synapse/workspaces/{w}`: a Synapse
    /// target's `factory` in the report.
    pub id: String,
    pub name: String,
    /// `properties.connectivityEndpoints.dev`, as ARM gave it.
    pub dev_endpoint: Option<String>,
    /// `properties.workspaceRepositoryConfiguration` is set: the workspace is in Git mode, and the next
    /// publish from Git overwrites what the product writes to the live workspace.
    pub git_mode: bool,
}

impl Workspace {
    /// Reads one item of `GET …/providers/Microsoft.Synapse/workspaces` (`None` without an id and name).
    pub fn from_arm(resource: &Value) -> Option<Workspace> {
        let id = resource.get("id")?.as_str()?.to_string();
        let name = resource.get("name")?.as_str()?.to_string();
        let properties = resource.get("properties");
        let dev_endpoint = properties
            .and_then(|p| p.pointer("/connectivityEndpoints/dev"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string);
        let git_mode = properties
            .and_then(|p| p.get("workspaceRepositoryConfiguration"))
            .is_some_and(|repo| repo.as_object().is_some_and(|m| !m.is_empty()));
        Some(Workspace {
            id,
            name,
            dev_endpoint,
            git_mode,
        })
    }

    /// The base URL of this workspace's development endpoint: the template when one is configured
    /// (`{workspace}` replaced by the name), else `connectivityEndpoints.dev` (`https://` is assumed when it
    /// has no scheme, as in the spec's example). Only `https` is accepted: a bearer token goes with it.
    pub fn endpoint(&self, template: Option<&str>) -> Result<Url, SynapseError> {
        let bad = |reason: &str| SynapseError::Endpoint {
            workspace: self.name.clone(),
            reason: reason.to_string(),
        };
        let raw = match template.filter(|t| !t.trim().is_empty()) {
            Some(template) => {
                if !template.contains(WORKSPACE_PLACEHOLDER) {
                    return Err(bad("the Synapse endpoint template has no {workspace}"));
                }
                // Workspace names are DNS labels; anything else must not be spliced into a URL.
                if self.name.is_empty()
                    || !self
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(bad("the workspace name is not a valid DNS label"));
                }
                template.trim().replace(WORKSPACE_PLACEHOLDER, &self.name)
            }
            None => {
                let dev = self.dev_endpoint.as_deref().map(str::trim).ok_or_else(|| {
                    bad("ARM gave no properties.connectivityEndpoints.dev for the workspace")
                })?;
                if dev.contains("://") {
                    dev.to_string()
                } else {
                    format!("https://{dev}")
                }
            }
        };
        let url = Url::parse(&raw).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(bad("the development endpoint must use https"));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(bad("the development endpoint has no host"));
        }
        Ok(url)
    }
}

/// The ARM path that lists the Synapse workspaces of a scope, without the api-version
/// ([`SYNAPSE_ARM_API_VERSION`]): `{scope}/providers/Microsoft.Synapse/workspaces` for a subscription or a
/// resource group. `None` for any other scope (a factory holds no workspace).
pub fn workspaces_list_path(scope: &str) -> Option<String> {
    let trimmed = scope.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let is = |i: usize, name: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    let shaped = match segments.len() {
        2 => is(0, "subscriptions"),
        4 => is(0, "subscriptions") && is(2, "resourceGroups"),
        _ => false,
    };
    (shaped && segments.iter().all(|s| !s.is_empty()))
        .then(|| format!("{trimmed}/providers/Microsoft.Synapse/workspaces"))
}

/// Whether a resource id is a Synapse workspace's
/// (`/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Synapse/workspaces/{w}`), compared by
/// segments and case-insensitively: a target whose `factory` is one is re-saved through this client.
pub fn is_workspace_id(id: &str) -> bool {
    let segments: Vec<&str> = id.trim_matches('/').split('/').collect();
    let is = |i: usize, name: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    segments.len() == 8
        && is(0, "subscriptions")
        && is(2, "resourceGroups")
        && is(4, "providers")
        && is(5, "Microsoft.Synapse")
        && is(6, "workspaces")
        && segments.iter().all(|s| !s.is_empty())
}

/// The two workspace artifacts that hold Key Vault references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    LinkedService,
    Credential,
}

impl ArtifactKind {
    fn segment(self) -> &'static str {
        match self {
            ArtifactKind::LinkedService => "linkedservices",
            ArtifactKind::Credential => "credentials",
        }
    }

    fn list_operation(self) -> &'static str {
        match self {
            ArtifactKind::LinkedService => "listSynapseLinkedServices",
            ArtifactKind::Credential => "listSynapseCredentials",
        }
    }

    fn get_operation(self) -> &'static str {
        match self {
            ArtifactKind::LinkedService => "getSynapseLinkedService",
            ArtifactKind::Credential => "getSynapseCredential",
        }
    }

    fn put_operation(self) -> &'static str {
        match self {
            ArtifactKind::LinkedService => "putSynapseLinkedService",
            ArtifactKind::Credential => "putSynapseCredential",
        }
    }
}

/// What discovery reads of one workspace: the same shape a factory gives the planner.
#[derive(Debug, Clone)]
pub struct WorkspaceSnapshot {
    pub workspace: Workspace,
    /// Linked-service resources as listed, with full (masked) properties.
    pub linked_services: Vec<Value>,
    /// Credential resources as listed.
    pub credentials: Vec<Value>,
}

/// One answer of the development endpoint.
#[derive(Debug, Clone)]
pub struct SynapseResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

/// What a re-save left behind: the saved resource as the workspace now shows it.
#[derive(Debug, Clone)]
pub struct Saved {
    pub resource: Value,
    pub etag: Option<String>,
    /// Whether the PUT was long-running (202, then polled).
    pub long_running: bool,
    /// The request ids of the PUT, each poll, and the final read.
    pub request_ids: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SynapseError {
    #[error(
        "{operation} was refused ({status} {code}): {message}. Give the product's identity the Synapse RBAC role \"{role}\" on the workspace (az synapse role assignment create)"
    )]
    Permission {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        /// The Synapse RBAC role that fixes it.
        role: &'static str,
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
        request_id: Option<String>,
    },
    #[error("{operation} ended as {status}: {code}: {message}")]
    OperationFailed {
        operation: &'static str,
        /// The operation's final status, e.g. `Failed`.
        status: String,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error(
        "{operation} was accepted but had not ended after {polls} polls; whether it was saved is unknown"
    )]
    OperationUnfinished { operation: &'static str, polls: u32 },
    #[error("{operation} kept failing ({status} {code}) after {attempts} attempts: {message}")]
    Unavailable {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        attempts: u32,
        request_id: Option<String>,
    },
    #[error("{operation} could not reach the workspace after {attempts} attempts: {message}")]
    Network {
        operation: &'static str,
        message: String,
        attempts: u32,
    },
    #[error(
        "could not get a Synapse token from the {kind} credential ({endpoint}) after {attempts} attempts: {message}"
    )]
    Token {
        kind: &'static str,
        endpoint: String,
        message: String,
        attempts: u32,
    },
    #[error("{operation} was not attempted: the run's time budget is spent")]
    Deadline { operation: &'static str },
    #[error("refusing to follow a link outside the workspace's endpoint: {0}")]
    ForeignLink(String),
    #[error("cannot use the development endpoint of workspace {workspace}: {reason}")]
    Endpoint { workspace: String, reason: String },
}

impl SynapseError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SynapseError::Unavailable { .. }
                | SynapseError::Network { .. }
                | SynapseError::Token { .. }
                | SynapseError::Deadline { .. }
                | SynapseError::OperationUnfinished { .. }
        )
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            SynapseError::Permission { request_id, .. }
            | SynapseError::NotFound { request_id, .. }
            | SynapseError::PreconditionFailed { request_id, .. }
            | SynapseError::Rejected { request_id, .. }
            | SynapseError::OperationFailed { request_id, .. }
            | SynapseError::Unavailable { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Talks to the development endpoints of Synapse workspaces for one run.
#[derive(Clone)]
pub struct SynapseClient {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    credential_kind: CredentialKind,
    retry: RetryPolicy,
    deadline: Option<Instant>,
    operation_limit: Duration,
}

impl SynapseClient {
    pub fn new(
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        credential_kind: CredentialKind,
        retry: RetryPolicy,
    ) -> Self {
        SynapseClient {
            http,
            credential,
            credential_kind,
            retry,
            deadline: None,
            operation_limit: DEFAULT_OPERATION_LIMIT,
        }
    }

    /// The same client, bounded by a deadline: no attempt starts, and no wait (retry or poll) ends, past it.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The longest a long-running PUT may be polled (within the deadline). Default five minutes.
    pub fn with_operation_limit(mut self, limit: Duration) -> Self {
        self.operation_limit = limit;
        self
    }

    /// Lists a workspace's linked services and credentials, both to their end. Any error means the
    /// workspace was not read completely, and the caller must report it so.
    pub async fn read_workspace(
        &self,
        workspace: &Workspace,
        template: Option<&str>,
    ) -> Result<WorkspaceSnapshot, SynapseError> {
        let base = workspace.endpoint(template)?;
        let linked_services = self.list_linked_services(&base).await?;
        let credentials = self.list_credentials(&base).await?;
        Ok(WorkspaceSnapshot {
            workspace: workspace.clone(),
            linked_services,
            credentials,
        })
    }

    /// Every linked service of the workspace at `base`, following `nextLink` to the end.
    pub async fn list_linked_services(&self, base: &Url) -> Result<Vec<Value>, SynapseError> {
        self.list(base, ArtifactKind::LinkedService).await
    }

    /// Every credential of the workspace at `base`, following `nextLink` to the end.
    pub async fn list_credentials(&self, base: &Url) -> Result<Vec<Value>, SynapseError> {
        self.list(base, ArtifactKind::Credential).await
    }

    /// GETs one linked service or credential; returns it exactly as the workspace gave it, and its etag.
    pub async fn get(
        &self,
        base: &Url,
        kind: ArtifactKind,
        name: &str,
    ) -> Result<(SynapseResponse, Option<String>), SynapseError> {
        let url = artifact_url(base, kind, name)?;
        let response: SynapseResponse = self
            .send(kind.get_operation(), Access::Read, &url, None, None)
            .await?
            .into();
        let etag = etag_of(&response.body);
        Ok((response, etag))
    }

    /// PUTs `{"properties": …}` conditionally on `etag` and waits for the operation to end.
    ///
    /// 200 is done. 202 is polled at its `Location`, honouring `Retry-After`, until it ends or the time
    /// limit passes. An operation that ends `Succeeded` is followed by a GET of the resource, so the etag
    /// returned is the one the workspace now holds. Anything else is an error that says what happened.
    pub async fn put_if_match(
        &self,
        base: &Url,
        kind: ArtifactKind,
        name: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<Saved, SynapseError> {
        let operation = kind.put_operation();
        let url = artifact_url(base, kind, name)?;
        let body = json!({ "properties": properties });
        let first = self
            .send(operation, Access::Write, &url, Some(&body), Some(etag))
            .await?;
        let mut request_ids: Vec<String> = first.request_id.iter().cloned().collect();
        if first.status != 202 {
            // 200 (or 201): the resource as saved.
            return match etag_of(&first.body) {
                Some(saved_etag) => Ok(Saved {
                    resource: first.body,
                    etag: Some(saved_etag),
                    long_running: false,
                    request_ids,
                }),
                None => self.read_back(base, kind, name, false, request_ids).await,
            };
        }

        let limit = Instant::now() + self.operation_limit;
        let stop = self.deadline.map_or(limit, |d| d.min(limit));
        let mut location = poll_location(base, &first)?;
        let mut wait = first.retry_after.unwrap_or(DEFAULT_POLL_INTERVAL);
        for polls in 0..MAX_POLLS {
            let wait_now = wait.min(MAX_POLL_INTERVAL);
            if Instant::now() + wait_now >= stop {
                return Err(SynapseError::OperationUnfinished { operation, polls });
            }
            tokio::time::sleep(wait_now).await;
            let poll = self
                .send(operation, Access::Read, &location, None, None)
                .await?;
            request_ids.extend(poll.request_id.iter().cloned());
            match operation_state(&poll) {
                OperationState::Running => {
                    if poll.location.is_some() {
                        location = poll_location(base, &poll)?;
                    }
                    wait = poll.retry_after.unwrap_or(DEFAULT_POLL_INTERVAL);
                }
                OperationState::Failed(status) => {
                    let (code, message) = error_of(&poll.body, poll.status);
                    return Err(SynapseError::OperationFailed {
                        operation,
                        status,
                        code,
                        message,
                        request_id: poll.request_id,
                    });
                }
                OperationState::Succeeded => {
                    return self.read_back(base, kind, name, true, request_ids).await;
                }
            }
        }
        Err(SynapseError::OperationUnfinished {
            operation,
            polls: MAX_POLLS,
        })
    }

    /// The resource as the workspace holds it after a successful write.
    async fn read_back(
        &self,
        base: &Url,
        kind: ArtifactKind,
        name: &str,
        long_running: bool,
        mut request_ids: Vec<String>,
    ) -> Result<Saved, SynapseError> {
        let (response, etag) = self.get(base, kind, name).await?;
        request_ids.extend(response.request_id.iter().cloned());
        Ok(Saved {
            resource: response.body,
            etag,
            long_running,
            request_ids,
        })
    }

    async fn list(&self, base: &Url, kind: ArtifactKind) -> Result<Vec<Value>, SynapseError> {
        let operation = kind.list_operation();
        let mut url = collection_url(base, kind)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.send(operation, Access::Read, &url, None, None).await?;
            // A page that is not a page must not pass for the end of the listing.
            if let Err(why) = crate::azure::arm::Shape::Page.check(&page.body) {
                return Err(SynapseError::Unavailable {
                    operation,
                    status: page.status,
                    code: String::new(),
                    message: why.into(),
                    attempts: 1,
                    request_id: page.request_id,
                });
            }
            if let Some(values) = page.body.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            let next = page
                .body
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty());
            match next {
                None => return Ok(items),
                Some(link) => url = same_origin_link(base, link)?,
            }
        }
        // The page cap: a listing longer than it is reported, never cut short.
        Err(SynapseError::Unavailable {
            operation,
            status: 200,
            code: String::new(),
            message: format!("the listing has more than {MAX_PAGES} pages"),
            attempts: 1,
            request_id: None,
        })
    }

    /// One request, retried on 429, 5xx and network errors inside the deadline. 2xx answers (202 included)
    /// come back as they are; everything else is an error with a meaning.
    async fn send(
        &self,
        operation: &'static str,
        access: Access,
        url: &Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Answer, SynapseError> {
        // Reads are GETs; the only write is the PUT of a body.
        let method = match access {
            Access::Read => reqwest::Method::GET,
            Access::Write => reqwest::Method::PUT,
        };
        let mut attempt = 0u32;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SynapseError::Deadline { operation });
            }
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
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
            let (wait, failure) = match request.send().await {
                Err(e) => {
                    let message = e.without_url().to_string();
                    tracing::warn!(operation, attempt, error = %message, "Synapse request failed to complete");
                    (
                        self.retry.delay(attempt, None),
                        SynapseError::Network {
                            operation,
                            message,
                            attempts: attempt + 1,
                        },
                    )
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
                    let location = header("location");
                    // A body cut off after the headers, or a 2xx that is not JSON (a proxy's page), is a failed
                    // attempt like a 5xx, never an empty answer.
                    let body: Option<Value> = match response.bytes().await {
                        Ok(bytes) if bytes.is_empty() => Some(Value::Null),
                        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
                        Err(_) => None,
                    };
                    let Some(body) =
                        body.or((!(200..300).contains(&status)).then_some(Value::Null))
                    else {
                        tracing::warn!(
                            operation,
                            status,
                            attempt,
                            "Synapse answer was cut off or is not JSON"
                        );
                        let failure = SynapseError::Unavailable {
                            operation,
                            status,
                            code: String::new(),
                            message: "the answer was cut off or is not JSON".into(),
                            attempts: attempt + 1,
                            request_id,
                        };
                        let wait = self.retry.delay(attempt, None);
                        if !self.retry.should_retry(attempt, wait, self.deadline) {
                            return Err(failure);
                        }
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    };
                    tracing::debug!(
                        operation,
                        status,
                        request_id = request_id.as_deref().unwrap_or(""),
                        "Synapse call"
                    );
                    if (200..300).contains(&status) {
                        return Ok(Answer {
                            status,
                            body,
                            request_id,
                            retry_after,
                            location,
                        });
                    }
                    let (code, message) = error_of(&body, status);
                    if !is_retryable_status(status) {
                        return Err(match status {
                            401 | 403 => SynapseError::Permission {
                                operation,
                                status,
                                code,
                                message,
                                role: match access {
                                    Access::Read => READ_ROLE,
                                    Access::Write => WRITE_ROLE,
                                },
                                request_id,
                            },
                            404 => SynapseError::NotFound {
                                operation,
                                message,
                                request_id,
                            },
                            412 => SynapseError::PreconditionFailed {
                                operation,
                                request_id,
                            },
                            _ => SynapseError::Rejected {
                                operation,
                                status,
                                code,
                                message,
                                request_id,
                            },
                        });
                    }
                    tracing::warn!(
                        operation,
                        status,
                        attempt,
                        request_id = request_id.as_deref().unwrap_or(""),
                        "Synapse answered with a transient error"
                    );
                    (
                        self.retry.delay(attempt, retry_after),
                        SynapseError::Unavailable {
                            operation,
                            status,
                            code,
                            message,
                            attempts: attempt + 1,
                            request_id,
                        },
                    )
                }
            };
            if !self.retry.should_retry(attempt, wait, self.deadline) {
                return Err(failure);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// A token for `https://dev.azuresynapse.net`, retried inside the deadline.
    async fn token(&self) -> Result<String, SynapseError> {
        let mut attempt = 0u32;
        loop {
            match self.credential.get_token(&[SYNAPSE_SCOPE], None).await {
                Ok(token) => return Ok(token.token.secret().to_string()),
                Err(e) => {
                    let wait = self.retry.delay(attempt, None);
                    tracing::warn!(
                        credential = self.credential_kind.name(),
                        attempt,
                        "Synapse token request failed"
                    );
                    // A missing tool, no sign-in, a wrong tenant or secret: no retry mends them.
                    let failure = super::auth::classify_token_error(&e);
                    let permanent = matches!(failure, super::auth::TokenFailure::Permanent { .. });
                    if permanent || !self.retry.should_retry(attempt, wait, self.deadline) {
                        return Err(SynapseError::Token {
                            kind: self.credential_kind.name(),
                            endpoint: self.credential_kind.token_endpoint(),
                            message: failure.to_string(),
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

/// Whether a request reads or writes, for naming the Synapse RBAC role that a refusal calls for.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// A 2xx answer with the headers the long-running protocol needs.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    location: Option<String>,
}

impl From<Answer> for SynapseResponse {
    fn from(answer: Answer) -> Self {
        SynapseResponse {
            status: answer.status,
            body: answer.body,
            request_id: answer.request_id,
        }
    }
}

/// Where a long-running operation stands after one poll.
#[derive(Debug, PartialEq, Eq)]
enum OperationState {
    Running,
    Succeeded,
    /// Ended without success; the final status as the service named it.
    Failed(String),
}

/// 202 means running. A 2xx body with a `status` names the state (`Failed`, `Canceled` end it badly; any
/// status other than `Succeeded` is still running). A 2xx body without one is the saved resource.
fn operation_state(poll: &Answer) -> OperationState {
    if poll.status == 202 {
        return OperationState::Running;
    }
    let status = poll
        .body
        .get("status")
        .or_else(|| poll.body.get("state"))
        .and_then(Value::as_str);
    match status {
        None => OperationState::Succeeded,
        Some(s) if s.eq_ignore_ascii_case("succeeded") => OperationState::Succeeded,
        Some(s)
            if ["failed", "canceled", "cancelled"]
                .iter()
                .any(|f| s.eq_ignore_ascii_case(f)) =>
        {
            OperationState::Failed(s.to_string())
        }
        Some(_) => OperationState::Running,
    }
}

/// `{base}/{linkedservices|credentials}?api-version=…`, each segment percent-encoded.
fn collection_url(base: &Url, kind: ArtifactKind) -> Result<Url, SynapseError> {
    build(base, &[kind.segment()])
}

/// `{base}/{linkedservices|credentials}/{name}?api-version=…`, each segment percent-encoded.
fn artifact_url(base: &Url, kind: ArtifactKind, name: &str) -> Result<Url, SynapseError> {
    build(base, &[kind.segment(), name])
}

fn build(base: &Url, segments: &[&str]) -> Result<Url, SynapseError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| SynapseError::Endpoint {
            workspace: base.host_str().unwrap_or("").to_string(),
            reason: "the development endpoint cannot take a path".into(),
        })?
        .pop_if_empty()
        .extend(segments);
    url.query_pairs_mut()
        .append_pair("api-version", SYNAPSE_API_VERSION);
    Ok(url)
}

/// Whether two URLs share scheme, host (case-insensitively) and port (an explicit default port counts as
/// the default).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str()
            .zip(b.host_str())
            .is_some_and(|(x, y)| x.eq_ignore_ascii_case(y))
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A `nextLink` or `Location` to follow: only to the workspace endpoint's origin, since the token goes along.
fn same_origin_link(base: &Url, link: &str) -> Result<Url, SynapseError> {
    match base.join(link) {
        Ok(url) if same_origin(base, &url) => Ok(url),
        _ => Err(SynapseError::ForeignLink(redact_query(link))),
    }
}

/// The URL to poll after a 202: its `Location`, or else `{base}/operationResults/{operationId}`.
fn poll_location(base: &Url, answer: &Answer) -> Result<Url, SynapseError> {
    if let Some(location) = answer.location.as_deref() {
        return same_origin_link(base, location);
    }
    match answer.body.get("operationId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => build(base, &["operationResults", id]),
        _ => Err(SynapseError::Rejected {
            operation: "pollSynapseOperation",
            status: answer.status,
            code: "NoLocation".into(),
            message: "the service accepted the write but gave no Location or operationId to follow"
                .into(),
            request_id: answer.request_id.clone(),
        }),
    }
}

fn etag_of(body: &Value) -> Option<String> {
    body.get("etag")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
}

/// The code and message of an error body: `{"error":{"code","message"}}` (the spec's CloudError) or
/// `{"code","message"}` (what the development endpoint sends for authentication errors).
fn error_of(body: &Value, status: u16) -> (String, String) {
    let inner = body.get("error").filter(|e| e.is_object()).unwrap_or(body);
    let text = |key: &str| inner.get(key).and_then(Value::as_str).map(str::to_string);
    (
        text("code").unwrap_or_else(|| status.to_string()),
        text("message").unwrap_or_else(|| format!("HTTP {status}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body,
            request_id: None,
            retry_after: None,
            location: None,
        }
    }

    #[test]
    fn workspace_is_read_from_arm_with_its_git_mode() {
        let live = json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w1",
            "name": "w1", "properties": {"connectivityEndpoints": {"dev": "https://w1.dev.azuresynapse.net"}}});
        let ws = Workspace::from_arm(&live).expect("workspace");
        assert!(!ws.git_mode);
        assert_eq!(
            ws.endpoint(None).expect("url").as_str(),
            "https://w1.dev.azuresynapse.net/"
        );
        let git = json!({"id": "/x", "name": "w2", "properties": {
            "connectivityEndpoints": {"dev": "w2.dev.azuresynapse.net"},
            "workspaceRepositoryConfiguration": {"type": "WorkspaceGitHubConfiguration", "accountName": "contoso"}}});
        let ws = Workspace::from_arm(&git).expect("workspace");
        assert!(ws.git_mode);
        assert_eq!(
            ws.endpoint(None).expect("bare host gets https").as_str(),
            "https://w2.dev.azuresynapse.net/"
        );
        assert!(Workspace::from_arm(&json!({"name": "no-id"})).is_none());
    }

    #[test]
    fn the_template_wins_and_must_be_https_with_a_placeholder() {
        let ws = Workspace {
            id: "/x".into(),
            name: "syn-a".into(),
            dev_endpoint: Some("https://syn-a.dev.azuresynapse.net".into()),
            git_mode: false,
        };
        let url = ws
            .endpoint(Some("https://127.0.0.1:8443/synapse/{workspace}/"))
            .expect("url");
        assert_eq!(url.as_str(), "https://127.0.0.1:8443/synapse/syn-a/");
        assert!(ws.endpoint(Some("https://proxy/synapse/")).is_err());
        assert!(ws.endpoint(Some("http://proxy/{workspace}")).is_err());
        let odd = Workspace {
            name: "a/b".into(),
            ..ws.clone()
        };
        assert!(odd.endpoint(Some("https://proxy/{workspace}")).is_err());
        let none = Workspace {
            dev_endpoint: None,
            ..ws
        };
        assert!(matches!(
            none.endpoint(None),
            Err(SynapseError::Endpoint { .. })
        ));
    }

    #[test]
    fn workspaces_are_listed_for_subscriptions_and_groups_only() {
        assert_eq!(
            workspaces_list_path("/subscriptions/s").as_deref(),
            Some("/subscriptions/s/providers/Microsoft.Synapse/workspaces")
        );
        assert_eq!(
            workspaces_list_path("/subscriptions/s/resourceGroups/rg/").as_deref(),
            Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces")
        );
        assert!(
            workspaces_list_path(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
            )
            .is_none()
        );
        assert!(workspaces_list_path("/subscriptions//resourceGroups/rg").is_none());
    }

    #[test]
    fn workspace_ids_are_told_apart_from_factory_ids() {
        assert!(is_workspace_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w"
        ));
        assert!(is_workspace_id(
            "/SUBSCRIPTIONS/s/resourcegroups/rg/providers/microsoft.synapse/WORKSPACES/w/"
        ));
        assert!(!is_workspace_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
        ));
        assert!(!is_workspace_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w/linkedservices/x"
        ));
        assert!(!is_workspace_id(
            "/subscriptions/s/resourceGroups//providers/Microsoft.Synapse/workspaces/w"
        ));
    }

    #[test]
    fn urls_encode_every_segment_from_data() {
        let base = Url::parse("https://127.0.0.1:8443/synapse/syn-a").expect("url");
        let url = artifact_url(&base, ArtifactKind::LinkedService, "ls a/b?c#d").expect("url");
        assert_eq!(
            url.as_str(),
            "https://127.0.0.1:8443/synapse/syn-a/linkedservices/ls%20a%2Fb%3Fc%23d?api-version=2020-12-01"
        );
        let slashed = Url::parse("https://w.dev.azuresynapse.net/").expect("url");
        assert_eq!(
            collection_url(&slashed, ArtifactKind::Credential)
                .expect("url")
                .as_str(),
            "https://w.dev.azuresynapse.net/credentials?api-version=2020-12-01"
        );
    }

    #[test]
    fn links_are_followed_only_to_the_same_origin() {
        let base = Url::parse("https://w.dev.azuresynapse.net/").expect("url");
        assert!(
            same_origin_link(
                &base,
                "https://W.DEV.azuresynapse.net:443/linkedservices?x=1"
            )
            .is_ok()
        );
        assert!(same_origin_link(&base, "/operationResults/1?api-version=2020-12-01").is_ok());
        assert!(matches!(
            same_origin_link(&base, "https://evil.example/linkedservices?sig=secret"),
            Err(SynapseError::ForeignLink(shown)) if !shown.contains("secret")
        ));
        assert!(same_origin_link(&base, "http://w.dev.azuresynapse.net/x").is_err());
        assert!(same_origin_link(&base, "https://w.dev.azuresynapse.net:8443/x").is_err());
    }

    #[test]
    fn operation_states_follow_status_codes_and_bodies() {
        assert_eq!(
            operation_state(&answer(202, json!({"status": "Succeeded"}))),
            OperationState::Running,
            "a 202 is never an end"
        );
        assert_eq!(
            operation_state(&answer(200, json!({"name": "ls", "etag": "e"}))),
            OperationState::Succeeded
        );
        assert_eq!(
            operation_state(&answer(
                200,
                json!({"status": "Failed", "error": {"message": "m"}})
            )),
            OperationState::Failed("Failed".into())
        );
        assert_eq!(
            operation_state(&answer(200, json!({"status": "InProgress"}))),
            OperationState::Running
        );
        assert_eq!(
            operation_state(&answer(204, Value::Null)),
            OperationState::Succeeded
        );
    }

    #[test]
    fn error_bodies_of_both_shapes_are_read() {
        assert_eq!(
            error_of(&json!({"error": {"code": "C", "message": "M"}}), 400),
            ("C".to_string(), "M".to_string())
        );
        assert_eq!(
            error_of(&json!({"code": "Unauthorized", "message": "no"}), 403),
            ("Unauthorized".to_string(), "no".to_string())
        );
        assert_eq!(
            error_of(&Value::Null, 500),
            ("500".to_string(), "HTTP 500".to_string())
        );
    }
}
