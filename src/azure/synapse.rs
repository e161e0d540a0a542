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

use super::auth::CredentialKind;
pub use super::error::AzureError;
use super::lro;
use super::pager;
use super::request::{self, Answer, Exchange, Expect, REQUEST_LIMIT};
use super::retry::{self, Attempt, RetryPolicy};
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

/// What a refusal of a read calls for.
pub const READ_REMEDY: &str = "Give the product's identity the Synapse RBAC role \"Synapse User\" on the workspace (az synapse role assignment create)";
/// What a refusal of a write calls for.
pub const WRITE_REMEDY: &str = "Give the product's identity the Synapse RBAC role \"Synapse Linked Data Manager\" on the workspace (az synapse role assignment create)";

/// How long a long-running PUT may take when the run has no deadline of its own.
const DEFAULT_OPERATION_LIMIT: Duration = Duration::from_secs(300);

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

/// The one error of every Azure client, under the name Synapse's callers know.
pub type SynapseError = AzureError;

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
            .send(
                kind.get_operation(),
                Access::Read,
                &url,
                None,
                None,
                Expect::Object,
            )
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
            .send(
                operation,
                Access::Write,
                &url,
                Some(&body),
                Some(etag),
                Expect::Object,
            )
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
        // Without a `Location`, the spec's `operationResults/{operationId}` on the same endpoint.
        let fallback = match first.body.get("operationId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Some(build(base, &["operationResults", id])?),
            _ => None,
        };
        let ended = lro::poll(operation, &first, base, fallback, stop, |url| async move {
            self.send(operation, Access::Read, &url, None, None, Expect::Object)
                .await
        })
        .await?;
        request_ids.extend(ended.request_ids);
        self.read_back(base, kind, name, true, request_ids).await
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

    /// A collection through the one pager: each page checked, `nextLink` followed on the endpoint's origin only.
    async fn list(&self, base: &Url, kind: ArtifactKind) -> Result<Vec<Value>, SynapseError> {
        let operation = kind.list_operation();
        let first = collection_url(base, kind)?;
        let listed = pager::list(
            operation,
            first,
            pager::MAX_PAGES,
            &|_| true,
            |url| async move {
                self.send(
                    operation,
                    Access::Read,
                    &url,
                    None,
                    None,
                    Expect::Page { origin: &url },
                )
                .await
                .map(|page| page.body)
            },
        )
        .await?;
        Ok(listed.kept)
    }

    /// One request through the one retry loop, inside the deadline: 2xx answers (202 included) that pass their
    /// check come back as they are; everything else is an error with a meaning.
    async fn send(
        &self,
        operation: &'static str,
        access: Access,
        url: &Url,
        body: Option<&Value>,
        if_match: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Answer, SynapseError> {
        // Reads are GETs; the only write is the PUT of a body.
        let (method, remedy) = match access {
            Access::Read => (reqwest::Method::GET, READ_REMEDY),
            Access::Write => (reqwest::Method::PUT, WRITE_REMEDY),
        };
        let method = &method;
        retry::run(&self.retry, self.deadline, |attempt| async move {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Attempt::Fail(SynapseError::Deadline { operation });
            }
            let token = match self.token().await {
                Ok(token) => token,
                Err(e) => return Attempt::Fail(e),
            };
            let request = request::bearer_request(
                &self.http,
                method.clone(),
                url,
                &token,
                retry::request_timeout(REQUEST_LIMIT, self.deadline),
                if_match,
                body,
            );
            let exchange = Exchange {
                operation,
                expect,
                remedy,
                target: url.host_str().unwrap_or(""),
                attempt,
            };
            request::exchange(request, &exchange).await
        })
        .await
    }

    /// A token for `https://dev.azuresynapse.net`, through the one retry loop inside the deadline.
    async fn token(&self) -> Result<String, SynapseError> {
        request::bearer_token(
            self.credential.as_ref(),
            Some(self.credential_kind),
            SYNAPSE_SCOPE,
            &self.retry,
            self.deadline,
        )
        .await
    }
}

/// Whether a request reads or writes, for naming the Synapse RBAC role that a refusal calls for.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
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

fn etag_of(body: &Value) -> Option<String> {
    body.get("etag")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
