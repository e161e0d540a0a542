//! Observe, for Synapse: lists the Synapse workspaces in the configured scopes and reads each one's linked
//! services and credentials from its development endpoint, to their end or reported.
//!
//! A workspace becomes a [`FactorySnapshot`] whose `id` is the workspace's resource id and whose `resource`
//! is the workspace as ARM listed it, so the planner, the audit and the report treat it like a factory.
//! Synapse pipelines use ADF's linked-service model (reference/synapse-spec, linkedServices.json).
//!
//! Workspaces are listed per subscription or resource-group scope (`GET {scope}/providers/Microsoft.Synapse/
//! workspaces?api-version=2021-06-01`, reference/synapse-spec/workspace.json); a factory scope holds none.
//! Only workspaces inside a scope are kept, whatever ARM returns. A listing or a workspace that could not be
//! read completely is an error of the run, which makes the report incomplete; never an empty snapshot.

use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::resource_id::ResourceId;
use crate::azure::synapse::{SynapseClient, SynapseError, Workspace, workspaces_list_path};
use crate::config::Scope;
use crate::observe::{interleave_by_subscription, run_error};
use crate::plan::FactorySnapshot;
use crate::report::{Report, RunError};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where workspaces are read: the Synapse client for their development endpoints, and the
/// `--synapse-endpoint` template that replaces `connectivityEndpoints.dev` when set.
#[derive(Clone)]
pub struct SynapseAccess {
    pub client: SynapseClient,
    pub endpoint_template: Option<String>,
}

/// Lists every Synapse workspace in scope, then reads each one's linked services and credentials.
/// Errors go into `report.errors` (so the report is incomplete); the snapshots are sorted by id.
pub async fn discover_workspaces(
    arm: &ArmClient,
    synapse: &SynapseAccess,
    scopes: &[Scope],
    concurrency: usize,
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    let mut workspaces: BTreeMap<String, (Workspace, Value)> = BTreeMap::new();
    for scope in scopes {
        // A factory scope holds no workspace.
        if workspaces_list_path(scope.id()).is_none() {
            continue;
        }
        match arm.list_synapse_workspaces(scope.id()).await {
            Ok(list) => {
                for resource in list {
                    let Some(workspace) = Workspace::from_arm(&resource) else {
                        // A workspace we cannot name is one we cannot read: say so, never skip it quietly.
                        report.errors.push(RunError {
                            stage: "discovery".into(),
                            message: "ARM listed a Synapse workspace without an id or a name"
                                .into(),
                            transient: true,
                            subject: Some(scope.id().to_string()),
                        });
                        continue;
                    };
                    // Never act outside the configured scopes, whatever ARM returns.
                    if scopes.iter().any(|s| s.contains(&workspace.id)) {
                        let key = ResourceId::parse(&workspace.id)
                            .map_or_else(|_| workspace.id.clone(), |r| r.key());
                        workspaces.entry(key).or_insert((workspace, resource));
                    }
                }
            }
            Err(e) if holds_no_workspaces(&e) => {
                tracing::debug!(
                    scope = scope.id(),
                    "Microsoft.Synapse is not registered here: no workspaces"
                );
            }
            Err(e) => report
                .errors
                .push(run_error("discovery", &e, Some(scope.id().to_string()))),
        }
    }
    let template = synapse.endpoint_template.as_deref();
    let results: Vec<Result<FactorySnapshot, RunError>> = futures::stream::iter(
        interleave_by_subscription(workspaces.into_values().collect(), |(w, _)| w.id.as_str()),
    )
    .map(|(workspace, resource)| async move {
        let read = synapse
            .client
            .read_workspace(&workspace, template)
            .await
            .map_err(|e| synapse_error("discovery", &e, Some(workspace.id.clone())))?;
        Ok(FactorySnapshot {
            id: workspace.id,
            resource,
            linked_services: read.linked_services,
            credentials: read.credentials,
        })
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    let mut snapshots = Vec::new();
    for r in results {
        match r {
            Ok(s) => {
                report.summary.workspaces_scanned += 1;
                report.summary.linked_services_scanned += s.linked_services.len();
                report.summary.credentials_scanned += s.credentials.len();
                snapshots.push(s)
            }
            Err(e) => report.errors.push(e),
        }
    }
    snapshots.sort_by_key(|s| s.id.to_lowercase());
    snapshots
}

/// Whether a failed workspace listing means the subscription has no workspaces at all: ARM answers
/// `MissingSubscriptionRegistration` when the `Microsoft.Synapse` resource provider is not registered in the
/// subscription (Microsoft Learn, "Resolve errors for resource provider registration"; the error body as in
/// Azure/azure-sdk-for-node#2305). A provider with resources cannot be unregistered, so such a subscription
/// holds no workspace, and a Data Factory-only estate must not become an incomplete run because of it.
fn holds_no_workspaces(e: &ArmError) -> bool {
    matches!(e, ArmError::Rejected { code, .. } if code.eq_ignore_ascii_case("MissingSubscriptionRegistration"))
}

/// A run error from a Synapse failure. A refusal's message names the Synapse RBAC role that fixes it.
pub fn synapse_error(stage: &str, e: &SynapseError, subject: Option<String>) -> RunError {
    RunError {
        stage: stage.into(),
        message: e.to_string(),
        transient: e.is_transient(),
        subject,
    }
}

impl SynapseAccess {
    /// The same access, bounded by the run's deadline.
    pub fn with_deadline(&self, deadline: Option<tokio::time::Instant>) -> SynapseAccess {
        SynapseAccess {
            client: self.client.clone().with_deadline(deadline),
            endpoint_template: self.endpoint_template.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejected(status: u16, code: &str) -> ArmError {
        ArmError::Rejected {
            operation: "listSynapseWorkspaces",
            status,
            code: code.into(),
            message: "m".into(),
            body: Box::new(json!({})),
            request_id: None,
        }
    }

    #[test]
    fn an_unregistered_synapse_provider_means_no_workspaces_and_nothing_else_does() {
        assert!(holds_no_workspaces(&rejected(
            409,
            "MissingSubscriptionRegistration"
        )));
        assert!(!holds_no_workspaces(&rejected(
            400,
            "InvalidApiVersionParameter"
        )));
        assert!(!holds_no_workspaces(&ArmError::Forbidden {
            operation: "listSynapseWorkspaces",
            status: 403,
            code: "AuthorizationFailed".into(),
            message: "m".into(),
            remedy: String::new(),
            request_id: None,
        }));
        assert!(!holds_no_workspaces(&ArmError::NotFound {
            operation: "listSynapseWorkspaces",
            message: "m".into(),
            request_id: None,
        }));
    }
}
