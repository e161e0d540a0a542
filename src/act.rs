//! Act: executes one factory's plan. Re-saves what is safe (GET fresh, PUT exactly its properties with
//! `If-Match`, again on 412), then tests with ADF's own test connection. Writes are sequential per factory;
//! a transient failure stops the factory so that a retry does the rest, and the report says who was not reached.

use crate::azure::arm::{Arm, ArmError, resource_etag};
use crate::azure::operations::{self, ArmOperation};
use crate::azure::resource_id::ResourceId;
use crate::diagnose;
use crate::event::EventKind;
use crate::observe::run_error;
use crate::plan::{self, FactorySnapshot, SecretRef};
use crate::report::{
    Resave, ResaveStatus, RunError, RuntimeStatus, Target, TargetKind, Test, Verdict,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tracing::Instrument;

/// How many times a 412 is answered by reading again and re-applying.
const MAX_PRECONDITION_RETRIES: u32 = 3;

/// What a run may do.
#[derive(Debug, Clone)]
pub struct Mode {
    pub dry_run: bool,
    /// `Err(reason)` when the new version cannot serve, so a re-save cannot help.
    pub secret_usable: Result<(), String>,
    pub event_kind: EventKind,
}

/// Applies one factory's targets in order: credentials first, then linked services. Writes are sequential.
pub async fn apply_factory<A: Arm + ?Sized>(
    arm: &A,
    factory: &FactorySnapshot,
    mut targets: Vec<Target>,
    secret: &SecretRef,
    mode: &Mode,
) -> (Vec<Target>, Vec<RunError>) {
    let mut errors = Vec::new();
    let factory_id = match ResourceId::parse(&factory.id) {
        Ok(id) => id,
        Err(e) => {
            let why = format!("not reached: {e}");
            for target in targets.iter_mut() {
                target.resave = Resave::with_status(ResaveStatus::NotReached, Some(why.clone()));
                target.test = Test::not_tested(why.clone());
            }
            errors.push(RunError {
                stage: "apply".into(),
                message: e.to_string(),
                transient: false,
                subject: Some(factory.id.clone()),
            });
            return (targets, errors);
        }
    };
    let mut runtimes: HashMap<String, RuntimeStatus> = HashMap::new();
    let mut stopped: Option<String> = None;
    for target in targets.iter_mut() {
        if let Some(why) = &stopped {
            target.resave = Resave::with_status(ResaveStatus::NotReached, Some(why.clone()));
            target.test = Test::not_tested(why.clone());
            continue;
        }
        let properties = listed_resource(factory, target).and_then(|r| r.get("properties"));
        if let Some(runtime) = properties.and_then(crate::scan::connect_via) {
            if !runtimes.contains_key(&runtime) {
                let status =
                    runtime_status(arm, &factory_id, &runtime, &mut target.request_ids).await;
                runtimes.insert(runtime.clone(), status);
            }
            if let Some(status) = runtimes.get(&runtime) {
                note_runtime(target, status);
            }
        }
        let span = tracing::info_span!("target", factory = %factory.id, name = %target.name, kind = ?target.kind);
        if let Err(e) = apply_target(arm, factory, &factory_id, target, secret, mode)
            .instrument(span)
            .await
        {
            let transient = e.is_transient();
            errors.push(run_error(
                "apply",
                &e,
                Some(format!("{}/{}", factory.id, target.name)),
            ));
            if transient {
                // ARM is down or the budget is spent: stop here, so the retry does the rest.
                stopped = Some(format!("not reached: {e}"));
            }
        }
    }
    (targets, errors)
}

/// The target's definition as discovery listed it.
fn listed_resource<'a>(factory: &'a FactorySnapshot, target: &Target) -> Option<&'a Value> {
    let list = match target.kind {
        TargetKind::LinkedService => &factory.linked_services,
        TargetKind::Credential => &factory.credentials,
    };
    list.iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(target.name.as_str()))
}

async fn runtime_status<A: Arm + ?Sized>(
    arm: &A,
    factory: &ResourceId,
    runtime: &str,
    request_ids: &mut Vec<String>,
) -> RuntimeStatus {
    match arm.integration_runtime_status(factory, runtime).await {
        Ok(response) => {
            request_ids.extend(response.request_id.clone());
            let props = response
                .body
                .get("properties")
                .cloned()
                .unwrap_or(Value::Null);
            RuntimeStatus {
                name: runtime.into(),
                kind: props
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                state: props
                    .get("state")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }
        }
        Err(e) => {
            tracing::warn!(runtime, error = %e, "could not read the integration runtime's status");
            RuntimeStatus {
                name: runtime.into(),
                kind: None,
                state: None,
            }
        }
    }
}

fn note_runtime(target: &mut Target, status: &RuntimeStatus) {
    match status.kind.as_deref() {
        Some(k) if k.eq_ignore_ascii_case("SelfHosted") => {
            let online = status
                .state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("Online"));
            target.notes.push(
                if online {
                    "selfHostedIntegrationRuntime"
                } else {
                    "selfHostedIntegrationRuntimeOffline"
                }
                .into(),
            );
        }
        Some(k) if k.eq_ignore_ascii_case("Managed") => {
            target.notes.push("managedIntegrationRuntime".into())
        }
        _ => {}
    }
    target.integration_runtime = Some(status.clone());
}

/// Re-saves (if the verdict and the mode allow) and tests one target. Returns the error that stopped it.
async fn apply_target<A: Arm + ?Sized>(
    arm: &A,
    factory: &FactorySnapshot,
    factory_id: &ResourceId,
    target: &mut Target,
    secret: &SecretRef,
    mode: &Mode,
) -> Result<(), ArmError> {
    let (get_op, put_op, collection) = match target.kind {
        TargetKind::LinkedService => (
            operations::GET_LINKED_SERVICE,
            operations::PUT_LINKED_SERVICE,
            "linkedservices",
        ),
        TargetKind::Credential => (
            operations::GET_CREDENTIAL,
            operations::PUT_CREDENTIAL,
            "credentials",
        ),
    };
    let mut tested_resource: Option<Value> = None;

    if target.verdict == Verdict::Resave {
        if mode.dry_run {
            target.resave = Resave::with_status(ResaveStatus::DryRun, None);
        } else if let Err(why) = &mode.secret_usable {
            target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why.clone()));
        } else {
            let resaved = match factory_id.child(collection, &target.name) {
                Ok(id) => resave(arm, factory, target, &id, get_op, put_op, secret).await,
                Err(e) => Err(ArmError::InvalidId(e.to_string())),
            };
            match resaved {
                Ok(resource) => tested_resource = Some(resource),
                Err(e) => {
                    target.resave.status = ResaveStatus::Failed;
                    target.resave.error = Some(e.to_string());
                    target
                        .request_ids
                        .extend(e.request_id().map(str::to_string));
                    target.test = Test::not_tested("not tested: the re-save failed");
                    return if e.is_transient() { Err(e) } else { Ok(()) };
                }
            }
        }
    }

    target.test = if mode.dry_run {
        Test::not_tested(match mode.event_kind {
            EventKind::NewVersion => "dry run: nothing was written or tested",
            _ => "expiry event: reported only",
        })
    } else if target.kind == TargetKind::Credential {
        Test::not_tested(format!(
            "a credential is tested through the linked services that use it: {}",
            target.used_by.join(", ")
        ))
    } else if target
        .notes
        .iter()
        .any(|n| n == "selfHostedIntegrationRuntimeOffline")
    {
        let runtime = target
            .integration_runtime
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let mut test = Test::not_tested(format!(
            "the self-hosted integration runtime {runtime} is offline"
        ));
        test.diagnosis = Some(diagnose::runtime_offline());
        test
    } else {
        let resource = match tested_resource {
            Some(r) => r,
            None => match listed_resource(factory, target) {
                Some(r) => r.clone(),
                None => return Ok(()),
            },
        };
        test_connection(arm, factory_id, target, &resource).await?
    };
    Ok(())
}

/// GET fresh, check it is still safe, PUT exactly its properties with `If-Match`; on 412, again.
async fn resave<A: Arm + ?Sized>(
    arm: &A,
    factory: &FactorySnapshot,
    target: &mut Target,
    id: &ResourceId,
    get_op: ArmOperation,
    put_op: ArmOperation,
    secret: &SecretRef,
) -> Result<Value, ArmError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        target.resave.attempts = attempts;
        let fresh = arm.get(get_op, id).await?;
        target.request_ids.extend(fresh.request_id.clone());
        let Some(etag) = resource_etag(&fresh) else {
            target.resave = Resave::with_status(
                ResaveStatus::Skipped,
                Some("ARM returned no etag, so a conditional write is impossible".into()),
            );
            return Ok(fresh.body);
        };
        if let Err(why) = still_safe(factory, target, &fresh.body, secret) {
            target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why));
            target.notes.push("changedSinceDiscovery".into());
            return Ok(fresh.body);
        }
        let properties = fresh.body.get("properties").cloned().unwrap_or(Value::Null);
        target.resave.etag_before = Some(etag.clone());
        match arm.put(put_op, id, &properties, &etag).await {
            Ok(saved) => {
                target.request_ids.extend(saved.request_id.clone());
                target.resave.status = ResaveStatus::Ok;
                target.resave.etag_after = resource_etag(&saved);
                target.resave.error = None;
                tracing::info!(factory = %factory.id, name = %target.name, kind = ?target.kind, "re-saved");
                return Ok(saved.body);
            }
            Err(ArmError::PreconditionFailed { request_id, .. })
                if attempts <= MAX_PRECONDITION_RETRIES =>
            {
                // Someone changed it between our GET and PUT: read again and write their version.
                target.request_ids.extend(request_id);
                tracing::info!(factory = %factory.id, name = %target.name, attempts, "etag changed; reading again");
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Re-plans the target on the fresh definition: it must still be a plain, certain, inline-free reference.
fn still_safe(
    factory: &FactorySnapshot,
    target: &Target,
    fresh: &Value,
    secret: &SecretRef,
) -> Result<(), String> {
    match plan::plan_one(factory, target.kind, fresh, secret) {
        Some(t) if t.verdict == Verdict::Resave => Ok(()),
        Some(t) => Err(format!(
            "it changed since discovery and is now {:?}: {}",
            t.verdict, t.reason
        )),
        None => Err("it changed since discovery and no longer references the secret".into()),
    }
}

/// ADF's test connection, with parameter defaults supplied for a parameterised linked service.
async fn test_connection<A: Arm + ?Sized>(
    arm: &A,
    factory_id: &ResourceId,
    target: &mut Target,
    resource: &Value,
) -> Result<Test, ArmError> {
    let mut body = json!({ "linkedService": resource });
    if let Some(params) = resource
        .pointer("/properties/parameters")
        .and_then(Value::as_object)
    {
        let mut values = Map::new();
        for (name, definition) in params {
            match definition.get("defaultValue") {
                Some(v) if !v.is_null() => {
                    values.insert(name.clone(), v.clone());
                }
                _ => {
                    return Ok(Test::not_tested(format!(
                        "parameter `{name}` has no default value, so ADF cannot test the linked service on its own"
                    )));
                }
            }
        }
        body["parameters"] = Value::Object(values);
    }
    let test = match arm.test_connectivity(factory_id, &body).await {
        Ok(response) => {
            target.request_ids.extend(response.request_id.clone());
            let (test, note) = diagnose::test_outcome(response.status, response.body);
            target.notes.extend(note.map(str::to_string));
            test
        }
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => diagnose::test_not_run(&e.to_string()),
    };
    tracing::info!(factory = %factory_id, name = %target.name, status = ?test.status, "tested");
    Ok(test)
}
