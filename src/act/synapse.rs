//! Acting on a Synapse workspace: the same re-save as for a factory ([`resave_if_safe`]: fresh GET,
//! re-plan, exactly the read properties, `If-Match`, again on 412), through the workspace's development
//! endpoint, where a PUT may be long-running and is polled to its end.
//!
//! Synapse publishes no test-connection call for linked services (reference/synapse-spec, DESIGN.md
//! "Synapse"), so none is invented: every Synapse target is reported `notTested` with
//! [`diagnose::SYNAPSE_NOT_TESTED`], and its diagnosis tells the owner how to test it in Synapse Studio.
//! Nobody has verified such a target, so it needs attention even after a successful re-save.

use super::resave::{Store, Stored, Written, resave_if_safe};
use super::{Actor, Halt, Mode};
use crate::azure::synapse::{ArtifactKind, SynapseClient, SynapseError, Workspace};
use crate::diagnose;
use crate::model::Snapshot;
use crate::observe::synapse::SynapseAccess;
use crate::plan::SecretRef;
use crate::report::{ResaveStatus, Target, TargetKind, Test};
use serde_json::Value;
use url::Url;

/// A workspace's linked services and credentials through its development endpoint.
struct WorkspaceStore<'a> {
    client: &'a SynapseClient,
    base: Url,
}

fn artifact(kind: TargetKind) -> ArtifactKind {
    match kind {
        TargetKind::Credential => ArtifactKind::Credential,
        _ => ArtifactKind::LinkedService,
    }
}

#[async_trait::async_trait]
impl Store for WorkspaceStore<'_> {
    async fn read(&self, kind: TargetKind, name: &str) -> Result<Stored, SynapseError> {
        let (response, etag) = self.client.get(&self.base, artifact(kind), name).await?;
        Ok(Stored {
            body: response.body,
            etag,
            request_ids: response.request_id.into_iter().collect(),
        })
    }

    async fn write(
        &self,
        kind: TargetKind,
        name: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<Stored, SynapseError> {
        let saved = self
            .client
            .put_if_match(&self.base, artifact(kind), name, properties, etag)
            .await?;
        Ok(Stored {
            body: saved.resource,
            etag: saved.etag,
            request_ids: saved.request_ids,
        })
    }
}

/// Acts on the targets of one workspace through its development endpoint.
pub struct WorkspaceActor<'a> {
    store: WorkspaceStore<'a>,
    workspace: &'a Snapshot,
    name: String,
    secret: &'a SecretRef,
    mode: &'a Mode,
}

impl<'a> WorkspaceActor<'a> {
    /// Finds the workspace's development endpoint; without one no target can be reached.
    pub fn new(
        synapse: &'a SynapseAccess,
        workspace: &'a Snapshot,
        secret: &'a SecretRef,
        mode: &'a Mode,
    ) -> Result<Self, Halt> {
        let (name, base) = Workspace::from_arm(&workspace.resource)
            .ok_or_else(|| SynapseError::Endpoint {
                workspace: workspace.id.clone(),
                reason: "ARM listed it without an id or a name".into(),
            })
            .and_then(|w| {
                w.endpoint(synapse.endpoint_template.as_deref())
                    .map(|b| (w.name, b))
            })
            .map_err(|e| Halt::from(&e))?;
        Ok(WorkspaceActor {
            store: WorkspaceStore {
                client: &synapse.client,
                base,
            },
            workspace,
            name,
            secret,
            mode,
        })
    }
}

#[async_trait::async_trait]
impl Actor for WorkspaceActor<'_> {
    async fn act(&mut self, target: &mut Target) -> Result<(), Halt> {
        match resave_if_safe(&self.store, self.workspace, target, self.secret, self.mode).await {
            Ok(Written::Failed) => Ok(()),
            Ok(Written::Resource(_) | Written::NotAttempted) => {
                target.test = not_tested(&self.name, target, self.mode);
                Ok(())
            }
            Err(e) => Err(Halt::from(&e)),
        }
    }
}

/// The test of a Synapse target: none can run. A dry run says so as for a factory; otherwise the owner is
/// told it was (or was not) re-saved and how to test it by hand.
fn not_tested(workspace: &str, target: &Target, mode: &Mode) -> Test {
    if let Some(untested) = mode.untested() {
        return untested;
    }
    let resaved = target.resave.status == ResaveStatus::Ok;
    let message = if resaved {
        format!(
            "Re-saved, but not verified: test it by hand in Synapse Studio. {}",
            diagnose::SYNAPSE_NOT_TESTED
        )
    } else {
        diagnose::SYNAPSE_NOT_TESTED.to_string()
    };
    // A credential is tested through the linked services that use it.
    let subject = match target.kind {
        TargetKind::Credential if !target.used_by.is_empty() => target.used_by.join(", "),
        _ => target.name.clone(),
    };
    let mut test = Test::not_tested(message);
    test.diagnosis = Some(diagnose::for_synapse_not_tested(workspace, &subject));
    test
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::model::Platform;
    use crate::report::{Resave, TestStatus, Verdict};

    fn target(kind: TargetKind, status: ResaveStatus) -> Target {
        Target {
            platform: Platform::Synapse,
            resource: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w"
                .into(),
            display_name: None,
            kind,
            factory: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/w"
                .into(),
            name: "cred_sp".into(),
            adf_type: "ServicePrincipal".into(),
            references: vec![],
            verdict: Verdict::Resave,
            reason: String::new(),
            notes: vec![],
            via_credential: None,
            used_by: vec!["ls_a".into(), "ls_b".into()],
            integration_runtime: None,
            resave: Resave::with_status(status, None),
            test: Test::not_tested("not yet"),
            diagnosis: None,
            request_ids: vec![],
            impact: None,
        }
    }

    fn mode(dry_run: bool) -> Mode {
        Mode {
            dry_run,
            secret_usable: Ok(()),
            event_kind: EventKind::NewVersion,
            progress: None,
        }
    }

    #[test]
    fn a_resaved_synapse_target_says_it_needs_a_manual_test_and_needs_attention() {
        let mut t = target(TargetKind::LinkedService, ResaveStatus::Ok);
        t.name = "ls_sql".into();
        t.test = not_tested("w", &t, &mode(false));
        assert_eq!(t.test.status, TestStatus::NotTested);
        let message = t.test.message.clone().unwrap_or_default();
        assert!(
            message.starts_with("Re-saved, but not verified"),
            "{message}"
        );
        assert!(message.contains(diagnose::SYNAPSE_NOT_TESTED));
        let diagnosis = t.test.diagnosis.clone().expect("diagnosis");
        assert_eq!(diagnosis.code, "synapseNotTested");
        assert!(diagnosis.fix[0].contains("ls_sql"));
        assert!(t.needs_attention(), "nobody verified it");
    }

    #[test]
    fn a_credential_points_at_the_linked_services_that_use_it() {
        let t = target(TargetKind::Credential, ResaveStatus::Failed);
        let test = not_tested("w", &t, &mode(false));
        assert_eq!(test.message.as_deref(), Some(diagnose::SYNAPSE_NOT_TESTED));
        assert!(
            test.diagnosis
                .is_some_and(|d| d.fix[0].contains("ls_a, ls_b"))
        );
    }

    #[test]
    fn a_dry_run_is_not_tested_without_a_diagnosis() {
        let t = target(TargetKind::LinkedService, ResaveStatus::DryRun);
        let test = not_tested("w", &t, &mode(true));
        assert!(test.diagnosis.is_none());
        assert_eq!(
            test.message.as_deref(),
            Some("dry run: nothing was written or tested")
        );
    }
}
