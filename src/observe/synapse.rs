//! Observe, for Synapse: reads a workspace's linked services and credentials from its development endpoint,
//! to their end or reported. The workspaces themselves are listed through ARM with every other holder
//! ([`super::discover_each`]); Synapse pipelines use ADF's linked-service model
//! (reference/synapse-spec, linkedServices.json), so a workspace's snapshot is planned like a factory's.

use crate::azure::synapse::{SynapseClient, SynapseError, Workspace, WorkspaceSnapshot};
use crate::report::RunError;
use serde_json::Value;

/// Where workspaces are read: the Synapse client for their development endpoints, and the
/// `--synapse-endpoint` template that replaces `connectivityEndpoints.dev` when set.
#[derive(Clone)]
pub struct SynapseAccess {
    pub client: SynapseClient,
    pub endpoint_template: Option<String>,
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

/// Reads the workspace ARM listed as `resource` (id `id`) through its development endpoint.
pub async fn read(
    access: &SynapseAccess,
    resource: &Value,
    id: &str,
) -> Result<WorkspaceSnapshot, RunError> {
    let workspace = Workspace::from_arm(resource).ok_or_else(|| RunError {
        stage: "discovery".into(),
        message: "ARM listed a Synapse workspace without an id or a name".into(),
        transient: true,
        subject: Some(id.to_string()),
    })?;
    access
        .client
        .read_workspace(&workspace, access.endpoint_template.as_deref())
        .await
        .map_err(|e| synapse_error("discovery", &e, Some(id.to_string())))
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
