//! Act, for a Synapse workspace: the same re-save as for a factory ([`act::resave_if_safe`]: fresh GET,
//! re-plan, exactly the read properties, `If-Match`, again on 412), through the workspace's development
//! endpoint, where a PUT may be long-running and is polled to its end.
//!
//! Synapse publishes no test-connection call for linked services (reference/synapse-spec, DESIGN.md
//! "Synapse"), so none is invented: every Synapse target is reported `notTested` with
//! [`diagnose::SYNAPSE_NOT_TESTED`], and its diagnosis tells the owner how to test it in Synapse Studio.
//! Nobody has verified such a target, so it needs attention even after a successful re-save.

use crate::act::{self, Mode, Store, Stored, Written};
use crate::azure::synapse::{ArtifactKind, SynapseClient, SynapseError, Workspace};
use crate::diagnose;
use crate::event::EventKind;
use crate::observe_synapse::{SynapseAccess, synapse_error};
use crate::plan::{FactorySnapshot, SecretRef};
use crate::report::{Resave, ResaveStatus, RunError, Target, TargetKind, Test};
use serde_json::Value;
use tracing::Instrument;
use url::Url;

// `StoreError` for `SynapseError` is the one in act.rs: every Azure client has the same error type.

/// A workspace's linked services and credentials through its development endpoint.
struct WorkspaceStore<'a> {
    client: &'a SynapseClient,
    base: Url,
}

fn artifact(kind: TargetKind) -> ArtifactKind {
    match kind {
        TargetKind::LinkedService => ArtifactKind::LinkedService,
        TargetKind::Credential => ArtifactKind::Credential,
    }
}

#[async_trait::async_trait]
impl Store for WorkspaceStore<'_> {
    type Error = SynapseError;

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

/// Applies one workspace's targets in order. Writes are sequential; a transient failure stops the
/// workspace so that a retry does the rest, and the report says who was not reached.
pub async fn apply_workspace(
    synapse: &SynapseAccess,
    workspace: &FactorySnapshot,
    mut targets: Vec<Target>,
    secret: &SecretRef,
    mode: &Mode,
) -> (Vec<Target>, Vec<RunError>) {
    let mut errors = Vec::new();
    let base = Workspace::from_arm(&workspace.resource)
        .ok_or_else(|| SynapseError::Endpoint {
            workspace: workspace.id.clone(),
            reason: "ARM listed it without an id or a name".into(),
        })
        .and_then(|w| {
            w.endpoint(synapse.endpoint_template.as_deref())
                .map(|b| (w, b))
        });
    let (name, base) = match base {
        Ok((w, base)) => (w.name, base),
        Err(e) => {
            let why = format!("not reached: {e}");
            for target in targets.iter_mut() {
                target.resave = Resave::with_status(ResaveStatus::NotReached, Some(why.clone()));
                target.test = Test::not_tested(why.clone());
            }
            errors.push(synapse_error("apply", &e, Some(workspace.id.clone())));
            return (targets, errors);
        }
    };
    let store = WorkspaceStore {
        client: &synapse.client,
        base,
    };
    let mut stopped: Option<String> = None;
    for target in targets.iter_mut() {
        if let Some(why) = &stopped {
            target.resave = Resave::with_status(ResaveStatus::NotReached, Some(why.clone()));
            target.test = Test::not_tested(why.clone());
            continue;
        }
        if let Some(earlier) = mode.progress.as_ref().and_then(|p| p.already_done(target)) {
            earlier.carry_into(target);
            continue;
        }
        let span = tracing::info_span!("target", workspace = %workspace.id, name = %target.name, kind = ?target.kind);
        let written = act::resave_if_safe(&store, workspace, target, secret, mode)
            .instrument(span)
            .await;
        match written {
            Ok(Written::Failed) => {}
            Ok(Written::Resource(_) | Written::NotAttempted) => {
                target.test = not_tested(&name, target, mode);
                if let Some(progress) = &mode.progress {
                    progress.record(target);
                }
            }
            Err(e) => {
                errors.push(synapse_error(
                    "apply",
                    &e,
                    Some(format!("{}/{}", workspace.id, target.name)),
                ));
                // The development endpoint is down or the budget is spent: stop here, so the retry does the rest.
                stopped = Some(format!("not reached: {e}"));
            }
        }
    }
    (targets, errors)
}

/// The test of a Synapse target: none can run. A dry run says so as for a factory; otherwise the owner is
/// told it was (or was not) re-saved and how to test it by hand.
fn not_tested(workspace: &str, target: &Target, mode: &Mode) -> Test {
    if mode.dry_run {
        return Test::not_tested(match mode.event_kind {
            EventKind::NewVersion => "dry run: nothing was written or tested",
            _ => "expiry event: reported only",
        });
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
        TargetKind::LinkedService => target.name.clone(),
        TargetKind::Credential if !target.used_by.is_empty() => target.used_by.join(", "),
        TargetKind::Credential => target.name.clone(),
    };
    let mut test = Test::not_tested(message);
    test.diagnosis = Some(diagnose::for_synapse_not_tested(workspace, &subject));
    test
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{TestStatus, Verdict};

    fn target(kind: TargetKind, status: ResaveStatus) -> Target {
        Target {
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
