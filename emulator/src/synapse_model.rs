//! The model of Azure Synapse Analytics workspaces: their linked services and credentials (true values
//! kept, ADF's masking applied when rendered), the long-running PUTs in flight, and the seed format.
//! `synapse.rs` serves them.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::store::{self, MASK};

/// The ARM api-version of `Microsoft.Synapse/workspaces` (workspace.json).
pub(crate) const ARM_API_VERSION: &str = "2021-06-01";
/// The data-plane api-version of linked services and credentials (linkedServices.json, credential.json).
pub(crate) const DATA_API_VERSION: &str = "2020-12-01";
/// The only audience the development endpoint accepts (token scope `https://dev.azuresynapse.net/.default`).
pub(crate) const SYNAPSE_AUDIENCE: &str = "https://dev.azuresynapse.net";
/// The path prefix of the data plane on the TLS listener.
pub(crate) const PATH_PREFIX: &str = "synapse";

/// The two workspace artifacts that follow the same GET/LIST/PUT rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    LinkedService,
    Credential,
}

impl Kind {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Kind::LinkedService => "linkedservices",
            Kind::Credential => "credentials",
        }
    }

    pub(crate) fn resource_type(self) -> &'static str {
        match self {
            Kind::LinkedService => "Microsoft.Synapse/workspaces/linkedservices",
            Kind::Credential => "Microsoft.Synapse/workspaces/credentials",
        }
    }

    /// The Synapse RBAC action a write needs (the 403 message names it).
    pub(crate) fn write_action(self) -> &'static str {
        match self {
            Kind::LinkedService => "Microsoft.Synapse/workspaces/linkedServices/write",
            Kind::Credential => "Microsoft.Synapse/workspaces/credentials/write",
        }
    }

    pub(crate) fn read_action(self) -> &'static str {
        match self {
            Kind::LinkedService => "Microsoft.Synapse/workspaces/linkedServices/read",
            Kind::Credential => "Microsoft.Synapse/workspaces/credentials/read",
        }
    }
}

/// The Synapse RBAC role the caller holds on a workspace. Reading artifacts needs Synapse User; writing
/// linked services and credentials needs Synapse Linked Data Manager (or Artifact Publisher, or
/// Administrator). Source: Microsoft Learn, "Synapse RBAC roles".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum CallerRole {
    None,
    SynapseUser,
    #[default]
    SynapseLinkedDataManager,
}

impl CallerRole {
    pub(crate) fn can_read(self) -> bool {
        self != CallerRole::None
    }

    pub(crate) fn can_write(self) -> bool {
        self == CallerRole::SynapseLinkedDataManager
    }
}

/// How a PUT of one artifact is answered. The spec marks the PUT `x-ms-long-running-operation` with the
/// responses 200 and 202.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "response", rename_all = "camelCase")]
pub(crate) enum PutScript {
    /// `200` with the saved resource: the write is done.
    Ok,
    /// `202` with `Location` and `Retry-After`. The operation answers "in progress" `polls` times, then
    /// ends: `Succeeded` (the write is applied then), or `Failed` with `failWith` as its message (nothing is
    /// written).
    #[serde(rename_all = "camelCase")]
    Accepted {
        #[serde(default = "store::one")]
        polls: u32,
        #[serde(default)]
        fail_with: Option<String>,
    },
}

impl Default for PutScript {
    fn default() -> Self {
        PutScript::Accepted {
            polls: 1,
            fail_with: None,
        }
    }
}

/// A linked service or credential of a workspace.
#[derive(Clone, Debug)]
pub(crate) struct Artifact {
    pub name: String,
    /// The true properties, inline secret values included.
    pub properties: Value,
    pub etag: String,
    pub encrypted_credential: String,
    pub put: Option<PutScript>,
    pub resaved: bool,
    pub puts: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub repo: Option<Value>,
    pub caller_role: CallerRole,
    pub retry_after_secs: u64,
    pub put: PutScript,
    pub linked_services: Vec<Artifact>,
    pub credentials: Vec<Artifact>,
}

impl Workspace {
    pub(crate) fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Synapse/workspaces/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    pub(crate) fn artifacts(&self, kind: Kind) -> &Vec<Artifact> {
        match kind {
            Kind::LinkedService => &self.linked_services,
            Kind::Credential => &self.credentials,
        }
    }

    pub(crate) fn artifacts_mut(&mut self, kind: Kind) -> &mut Vec<Artifact> {
        match kind {
            Kind::LinkedService => &mut self.linked_services,
            Kind::Credential => &mut self.credentials,
        }
    }

    pub(crate) fn position(&self, kind: Kind, name: &str) -> Option<usize> {
        self.artifacts(kind)
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The data-plane base of this workspace on the emulator (its `connectivityEndpoints.dev`).
    pub(crate) fn dev_endpoint(&self, https_url: &str) -> String {
        format!("{https_url}/{PATH_PREFIX}/{}", self.name)
    }

    /// The workspace resource, shaped like `ListWorkspacesInResourceGroup.json` (the SQL admin password is
    /// left out: it is a write-only property).
    pub(crate) fn to_json(&self, https_url: &str) -> Value {
        let mut properties = Map::new();
        properties.insert(
            "defaultDataLakeStorage".into(),
            json!({"accountUrl": format!("https://{}dl.dfs.core.windows.net", self.name.replace('-', "")), "filesystem": "default"}),
        );
        properties.insert(
            "connectivityEndpoints".into(),
            json!({
                "dev": self.dev_endpoint(https_url),
                "sql": format!("{}.sql.azuresynapse.net", self.name),
            }),
        );
        properties.insert("sqlAdministratorLogin".into(), json!("sqladminuser"));
        properties.insert(
            "managedResourceGroupName".into(),
            json!(format!("synapseworkspace-managedrg-{}", self.name)),
        );
        properties.insert("provisioningState".into(), json!("Succeeded"));
        if let Some(repo) = &self.repo {
            properties.insert("workspaceRepositoryConfiguration".into(), repo.clone());
        }
        json!({
            "id": self.id(),
            "name": self.name,
            "type": "Microsoft.Synapse/workspaces",
            "location": self.location,
            "properties": properties,
            "tags": {},
        })
    }

    pub(crate) fn artifact_json(&self, kind: Kind, artifact: &Artifact, masked: bool) -> Value {
        let properties = if masked {
            store::mask(&artifact.properties, &artifact.encrypted_credential)
        } else {
            artifact.properties.clone()
        };
        json!({
            "id": format!("{}/{}/{}", self.id(), kind.segment(), artifact.name),
            "name": artifact.name,
            "type": kind.resource_type(),
            "properties": properties,
            "etag": artifact.etag,
        })
    }
}

/// A long-running PUT in flight.
#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub(crate) workspace: String,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) properties: Value,
    pub(crate) polls_left: u32,
    pub(crate) fail_with: Option<String>,
    /// The final answer, once the operation has ended (later polls repeat it).
    pub(crate) outcome: Option<(StatusCode, Value)>,
}

/// Every workspace and the operations in flight.
#[derive(Debug, Default)]
pub(crate) struct Estate {
    pub workspaces: Vec<Workspace>,
    pub(crate) operations: HashMap<String, Operation>,
    /// Every inline secret value ever stored in a workspace.
    pub(crate) inline_secrets_seen: BTreeSet<String>,
}

impl Estate {
    /// Reads `workspaces` under `subscriptions[].resourceGroups[]` of a seed (other keys are the store's).
    pub(crate) fn from_seed(seed: &Value) -> Result<Self, String> {
        let mut estate = Estate::default();
        for (sub, rg, ws) in store::seeded::<SeedWorkspace>(seed)? {
            if estate.workspace(&ws.name).is_some() {
                return Err(format!("duplicate Synapse workspace {}", ws.name));
            }
            let workspace = build_workspace(&sub, &rg, ws)?;
            estate.workspaces.push(workspace);
        }
        for ws in &estate.workspaces {
            for artifact in ws.linked_services.iter().chain(&ws.credentials) {
                store::collect_secure_values(&artifact.properties, &mut estate.inline_secrets_seen);
            }
        }
        Ok(estate)
    }

    /// Workspace names are global (they are DNS names), so the name alone finds one.
    pub(crate) fn workspace(&self, name: &str) -> Option<usize> {
        self.workspaces
            .iter()
            .position(|w| w.name.eq_ignore_ascii_case(name))
    }

    /// The stored (unmasked) linked service, by workspace name and linked-service name.
    pub(crate) fn linked_service_resource(&self, workspace: &str, name: &str) -> Option<Value> {
        let ws = &self.workspaces[self.workspace(workspace)?];
        let artifact = &ws.linked_services[ws.position(Kind::LinkedService, name)?];
        Some(ws.artifact_json(Kind::LinkedService, artifact, false))
    }

    /// Every inline secret value, past and present.
    pub(crate) fn secret_values(&self) -> BTreeSet<String> {
        let mut out = self.inline_secrets_seen.clone();
        for ws in &self.workspaces {
            for artifact in ws.linked_services.iter().chain(&ws.credentials) {
                store::collect_secure_values(&artifact.properties, &mut out);
            }
        }
        out.retain(|v| !v.is_empty() && v != MASK);
        out
    }

    /// The workspaces for `GET /_emulator/state`, true values included.
    pub(crate) fn to_state_json(&self) -> Value {
        let artifact = |a: &Artifact| {
            json!({
                "name": a.name,
                "properties": a.properties,
                "etag": a.etag,
                "resaved": a.resaved,
                "puts": a.puts,
            })
        };
        Value::Array(
            self.workspaces
                .iter()
                .map(|w| {
                    json!({
                        "id": w.id(),
                        "name": w.name,
                        "workspaceRepositoryConfiguration": w.repo,
                        "callerRole": w.caller_role,
                        "linkedServices": w.linked_services.iter().map(artifact).collect::<Vec<_>>(),
                        "credentials": w.credentials.iter().map(artifact).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

// ---- seed ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedWorkspace {
    name: String,
    location: Option<String>,
    /// `workspaceRepositoryConfiguration` (Git mode).
    workspace_repository_configuration: Option<Value>,
    #[serde(default)]
    caller_role: CallerRole,
    retry_after_secs: Option<u64>,
    /// The default answer to a PUT in this workspace.
    #[serde(default)]
    put: PutScript,
    #[serde(default)]
    linked_services: Vec<SeedArtifact>,
    #[serde(default)]
    credentials: Vec<SeedArtifact>,
}

impl store::SeedResource for SeedWorkspace {
    const KEY: &'static str = "workspaces";
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedArtifact {
    name: String,
    properties: Value,
    etag: Option<String>,
    put: Option<PutScript>,
}

fn build_workspace(sub: &str, rg: &str, seed: SeedWorkspace) -> Result<Workspace, String> {
    let mut workspace = Workspace {
        subscription_id: sub.to_owned(),
        resource_group: rg.to_owned(),
        location: seed.location.unwrap_or_else(|| "westeurope".into()),
        repo: seed.workspace_repository_configuration,
        caller_role: seed.caller_role,
        retry_after_secs: seed.retry_after_secs.unwrap_or(1),
        put: seed.put,
        linked_services: Vec::new(),
        credentials: Vec::new(),
        name: seed.name,
    };
    for (kind, artifacts) in [
        (Kind::LinkedService, seed.linked_services),
        (Kind::Credential, seed.credentials),
    ] {
        for artifact in artifacts {
            store::check_seeded_child(
                kind.segment(),
                &workspace.name,
                &artifact.name,
                &artifact.properties,
                workspace.position(kind, &artifact.name).is_some(),
            )?;
            let encrypted_credential = store::new_encrypted_credential(&workspace.name);
            workspace.artifacts_mut(kind).push(Artifact {
                name: artifact.name,
                properties: artifact.properties,
                etag: artifact.etag.unwrap_or_else(store::new_etag),
                encrypted_credential,
                put: artifact.put,
                resaved: false,
                puts: 0,
            });
        }
    }
    Ok(workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_script_defaults_to_one_poll_then_success() {
        let parsed: PutScript = serde_json::from_value(json!({"response": "accepted"})).unwrap();
        assert_eq!(parsed, PutScript::default());
        let failing: PutScript =
            serde_json::from_value(json!({"response": "accepted", "polls": 3, "failWith": "boom"}))
                .unwrap();
        assert_eq!(
            failing,
            PutScript::Accepted {
                polls: 3,
                fail_with: Some("boom".into())
            }
        );
    }

    #[test]
    fn seeds_reject_duplicates_and_untyped_artifacts() {
        let ws = |name: &str, ls: Value| json!({"name": name, "linkedServices": [ls]});
        let seed = |workspaces: Vec<Value>| json!({"subscriptions": [{"subscriptionId": "s", "resourceGroups": [{"name": "rg", "workspaces": workspaces}]}]});
        let typed = json!({"name": "a", "properties": {"type": "AzureKeyVault"}});
        assert!(Estate::from_seed(&seed(vec![ws("w", typed.clone())])).is_ok());
        assert!(Estate::from_seed(&seed(vec![ws("w", typed.clone()), ws("W", typed)])).is_err());
        assert!(
            Estate::from_seed(&seed(vec![ws("w", json!({"name": "a", "properties": {}}))]))
                .is_err()
        );
    }
}
