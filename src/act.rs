//! Act: executes one factory's plan. Re-saves what is safe (GET fresh, PUT exactly its properties with
//! `If-Match`, again on 412), then tests with ADF's own test connection. Writes are sequential per factory;
//! a transient failure stops the factory so that a retry does the rest, and the report says who was not reached.
//! The re-save rules are written once, over [`Store`]; [`crate::act_synapse`] applies them to Synapse workspaces.

use crate::azure::arm::{Arm, ArmError, ArmResponse, resource_etag};
use crate::azure::operations;
use crate::azure::resource_id::ResourceId;
use crate::diagnose;
use crate::event::EventKind;
use crate::observe::run_error;
use crate::plan::{self, FactorySnapshot, SecretRef};
use crate::report::{
    Note, Resave, ResaveStatus, RunError, RuntimeStatus, Target, TargetKind, Test, Verdict,
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
    /// The rotation's progress across deliveries (function app only): targets an earlier delivery re-saved
    /// and tested are carried over, not written again.
    pub progress: Option<std::sync::Arc<dyn crate::coordination::Progress>>,
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
        if let Some(earlier) = mode.progress.as_ref().and_then(|p| p.already_done(target)) {
            earlier.carry_into(target);
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
        let applied = apply_target(arm, factory, &factory_id, target, secret, mode)
            .instrument(span)
            .await;
        if let (Ok(()), Some(progress)) = (&applied, &mode.progress) {
            progress.record(target);
        }
        if let Err(e) = applied {
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
            target.notes.push(if online {
                Note::SelfHostedIntegrationRuntime
            } else {
                Note::SelfHostedIntegrationRuntimeOffline
            });
        }
        Some(k) if k.eq_ignore_ascii_case("Managed") => {
            target.notes.push(Note::ManagedIntegrationRuntime)
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
    let store = ArmStore {
        arm,
        factory: factory_id,
    };
    let tested_resource = match resave_if_safe(&store, factory, target, secret, mode).await? {
        Written::Resource(resource) => Some(resource),
        Written::NotAttempted => None,
        Written::Failed => return Ok(()),
    };

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
        .contains(&Note::SelfHostedIntegrationRuntimeOffline)
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

/// One read or write of a target's definition, as a re-save needs it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The resource as the service returned it.
    pub body: Value,
    pub etag: Option<String>,
    /// The request ids of every call that made this answer (a long-running write has several).
    pub request_ids: Vec<String>,
}

/// What a re-save needs to know about a failure, whichever service it came from.
pub trait StoreError: std::fmt::Display + Send {
    /// Whether trying again later may succeed; a transient failure stops the factory or workspace.
    fn is_transient(&self) -> bool;
    /// A 412: someone changed the definition between the read and the write.
    fn is_precondition_failed(&self) -> bool;
    fn request_id(&self) -> Option<&str>;
}

impl StoreError for ArmError {
    fn is_transient(&self) -> bool {
        ArmError::is_transient(self)
    }
    fn is_precondition_failed(&self) -> bool {
        matches!(self, ArmError::PreconditionFailed { .. })
    }
    fn request_id(&self) -> Option<&str> {
        ArmError::request_id(self)
    }
}

/// Where a target's definition is read and written: ARM for a factory, the development endpoint for a
/// Synapse workspace. The re-save rules (fresh read, re-plan, exact properties, `If-Match`, 412 loop) are
/// written once, over this.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    type Error: StoreError;
    /// GETs the linked service or credential.
    async fn read(&self, kind: TargetKind, name: &str) -> Result<Stored, Self::Error>;
    /// PUTs `{"properties": …}` conditionally on `etag`; the answer is the resource as saved.
    async fn write(
        &self,
        kind: TargetKind,
        name: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<Stored, Self::Error>;
}

/// A factory's linked services and credentials through ARM.
struct ArmStore<'a, A: Arm + ?Sized> {
    arm: &'a A,
    factory: &'a ResourceId,
}

impl<A: Arm + ?Sized> ArmStore<'_, A> {
    fn id(&self, kind: TargetKind, name: &str) -> Result<ResourceId, ArmError> {
        let collection = match kind {
            TargetKind::LinkedService => "linkedservices",
            TargetKind::Credential => "credentials",
        };
        self.factory
            .child(collection, name)
            .map_err(|e| ArmError::InvalidId(e.to_string()))
    }
}

fn stored(response: ArmResponse) -> Stored {
    Stored {
        etag: resource_etag(&response),
        request_ids: response.request_id.into_iter().collect(),
        body: response.body,
    }
}

#[async_trait::async_trait]
impl<A: Arm + ?Sized> Store for ArmStore<'_, A> {
    type Error = ArmError;

    async fn read(&self, kind: TargetKind, name: &str) -> Result<Stored, ArmError> {
        let operation = match kind {
            TargetKind::LinkedService => operations::GET_LINKED_SERVICE,
            TargetKind::Credential => operations::GET_CREDENTIAL,
        };
        Ok(stored(
            self.arm.get(operation, &self.id(kind, name)?).await?,
        ))
    }

    async fn write(
        &self,
        kind: TargetKind,
        name: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<Stored, ArmError> {
        let operation = match kind {
            TargetKind::LinkedService => operations::PUT_LINKED_SERVICE,
            TargetKind::Credential => operations::PUT_CREDENTIAL,
        };
        let id = self.id(kind, name)?;
        Ok(stored(
            self.arm.put(operation, &id, properties, etag).await?,
        ))
    }
}

/// What the re-save step left for the test.
pub enum Written {
    /// The resource to test: as saved, or as freshly read when the re-save was skipped.
    Resource(Value),
    /// No re-save was due (another verdict, a dry run, an unusable secret version).
    NotAttempted,
    /// The re-save failed for good; the target says why and is not tested.
    Failed,
}

/// Re-saves the target when its verdict and the mode allow, and records the outcome on it. A transient
/// failure is recorded and returned, so the caller stops the factory or workspace there.
pub async fn resave_if_safe<S: Store + ?Sized>(
    store: &S,
    factory: &FactorySnapshot,
    target: &mut Target,
    secret: &SecretRef,
    mode: &Mode,
) -> Result<Written, S::Error> {
    if target.verdict != Verdict::Resave {
        return Ok(Written::NotAttempted);
    }
    if mode.dry_run {
        target.resave = Resave::with_status(ResaveStatus::DryRun, None);
        return Ok(Written::NotAttempted);
    }
    if let Err(why) = &mode.secret_usable {
        target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why.clone()));
        return Ok(Written::NotAttempted);
    }
    match resave(store, factory, target, secret).await {
        Ok(resource) => Ok(Written::Resource(resource)),
        Err(e) => {
            target.resave.status = ResaveStatus::Failed;
            target.resave.error = Some(e.to_string());
            target
                .request_ids
                .extend(e.request_id().map(str::to_string));
            target.test = Test::not_tested("not tested: the re-save failed");
            if e.is_transient() {
                Err(e)
            } else {
                Ok(Written::Failed)
            }
        }
    }
}

/// GET fresh, check it is still safe, PUT exactly its properties with `If-Match`; on 412, again.
async fn resave<S: Store + ?Sized>(
    store: &S,
    factory: &FactorySnapshot,
    target: &mut Target,
    secret: &SecretRef,
) -> Result<Value, S::Error> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        target.resave.attempts = attempts;
        let fresh = store.read(target.kind, &target.name).await?;
        target.request_ids.extend(fresh.request_ids.iter().cloned());
        let Some(etag) = fresh.etag.clone() else {
            target.resave = Resave::with_status(
                ResaveStatus::Skipped,
                Some("the service returned no etag, so a conditional write is impossible".into()),
            );
            return Ok(fresh.body);
        };
        if let Err(why) = still_safe(factory, target, &fresh.body, secret) {
            target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why));
            target.notes.push(Note::ChangedSinceDiscovery);
            return Ok(fresh.body);
        }
        let properties = fresh.body.get("properties").cloned().unwrap_or(Value::Null);
        target.resave.etag_before = Some(etag.clone());
        match store
            .write(target.kind, &target.name, &properties, &etag)
            .await
        {
            Ok(saved) => {
                target.request_ids.extend(saved.request_ids.iter().cloned());
                target.resave.status = ResaveStatus::Ok;
                target.resave.etag_after = saved.etag;
                target.resave.error = None;
                tracing::info!(factory = %factory.id, name = %target.name, kind = ?target.kind, "re-saved");
                return Ok(saved.body);
            }
            Err(e) if e.is_precondition_failed() && attempts <= MAX_PRECONDITION_RETRIES => {
                // Someone changed it between our GET and PUT: read again and write their version.
                target
                    .request_ids
                    .extend(e.request_id().map(str::to_string));
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
            target.notes.extend(note);
            test
        }
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => diagnose::test_not_run(&e.to_string()),
    };
    tracing::info!(factory = %factory_id, name = %target.name, status = ?test.status, "tested");
    Ok(test)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::arm::ArmResponse;
    use crate::azure::operations::ArmOperation;
    use crate::report::TestStatus;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    const FACTORY: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f";

    /// ARM as a script of answers, recording what was asked; no network.
    #[derive(Default)]
    struct ScriptedArm {
        gets: Mutex<VecDeque<Result<ArmResponse, ArmError>>>,
        puts: Mutex<VecDeque<Result<ArmResponse, ArmError>>>,
        tests: Mutex<VecDeque<Result<ArmResponse, ArmError>>>,
        calls: Mutex<Vec<String>>,
    }

    fn ok(body: Value) -> Result<ArmResponse, ArmError> {
        Ok(ArmResponse {
            status: 200,
            body,
            ..ArmResponse::default()
        })
    }

    fn next(
        queue: &Mutex<VecDeque<Result<ArmResponse, ArmError>>>,
    ) -> Result<ArmResponse, ArmError> {
        queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(ArmError::InvalidId("no scripted answer".into())))
    }

    #[async_trait::async_trait]
    impl Arm for ScriptedArm {
        async fn get(&self, _: ArmOperation, id: &ResourceId) -> Result<ArmResponse, ArmError> {
            self.calls.lock().unwrap().push(format!("GET {id}"));
            next(&self.gets)
        }
        async fn put(
            &self,
            _: ArmOperation,
            id: &ResourceId,
            _: &Value,
            etag: &str,
        ) -> Result<ArmResponse, ArmError> {
            self.calls.lock().unwrap().push(format!("PUT {id} {etag}"));
            next(&self.puts)
        }
        async fn test_connectivity(
            &self,
            _: &ResourceId,
            _: &Value,
        ) -> Result<ArmResponse, ArmError> {
            self.calls.lock().unwrap().push("TEST".into());
            next(&self.tests)
        }
        async fn integration_runtime_status(
            &self,
            _: &ResourceId,
            _: &str,
        ) -> Result<ArmResponse, ArmError> {
            Err(ArmError::InvalidId("no runtime".into()))
        }
    }

    fn sql(name: &str) -> Value {
        json!({"name": name, "properties": {"type": "AzureSqlDatabase", "typeProperties": {
            "connectionString": "Server=tcp:x.database.windows.net;Database=d;User ID=etl",
            "password": {"type": "AzureKeyVaultSecret", "store": {"referenceName": "KV", "type": "LinkedServiceReference"}, "secretName": "sql-password"}}}})
    }

    fn fresh(name: &str, etag: &str) -> Value {
        let mut resource = sql(name);
        resource["etag"] = json!(etag);
        resource
    }

    fn setup(names: &[&str]) -> (FactorySnapshot, Vec<Target>, SecretRef) {
        let mut linked_services =
            vec![json!({"name": "KV", "properties": {"type": "AzureKeyVault",
            "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}})];
        linked_services.extend(names.iter().map(|n| sql(n)));
        let factory = FactorySnapshot {
            id: FACTORY.into(),
            resource: json!({"properties": {}}),
            linked_services,
            credentials: vec![],
        };
        let secret = SecretRef {
            vault: "contoso-kv".into(),
            name: "sql-password".into(),
            version: None,
            vault_suffix: "vault.azure.net".into(),
        };
        let targets = plan::plan_factory(&factory, &secret);
        assert_eq!(targets.len(), names.len());
        (factory, targets, secret)
    }

    fn refresh() -> Mode {
        Mode {
            dry_run: false,
            secret_usable: Ok(()),
            event_kind: EventKind::NewVersion,
            progress: None,
        }
    }

    fn precondition_failed() -> Result<ArmResponse, ArmError> {
        Err(ArmError::PreconditionFailed {
            operation: "putLinkedService",
            request_id: None,
        })
    }

    #[tokio::test]
    async fn a_412_reads_again_and_writes_the_version_just_read() {
        let (factory, targets, secret) = setup(&["Sql"]);
        let arm = ScriptedArm::default();
        arm.gets
            .lock()
            .unwrap()
            .extend([ok(fresh("Sql", "e1")), ok(fresh("Sql", "e2"))]);
        arm.puts
            .lock()
            .unwrap()
            .extend([precondition_failed(), ok(fresh("Sql", "e3"))]);
        arm.tests
            .lock()
            .unwrap()
            .push_back(ok(json!({"succeeded": true})));
        let (targets, errors) = apply_factory(&arm, &factory, targets, &secret, &refresh()).await;
        assert!(errors.is_empty());
        let t = &targets[0];
        assert_eq!(t.resave.status, ResaveStatus::Ok);
        assert_eq!(t.resave.attempts, 2);
        assert_eq!(t.resave.etag_before.as_deref(), Some("e2"));
        assert_eq!(t.resave.etag_after.as_deref(), Some("e3"));
        assert_eq!(t.test.status, TestStatus::Passed);
        let puts: Vec<String> = arm
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("PUT"))
            .cloned()
            .collect();
        assert_eq!(
            puts,
            [
                format!("PUT {FACTORY}/linkedservices/Sql e1"),
                format!("PUT {FACTORY}/linkedservices/Sql e2")
            ]
        );
    }

    #[tokio::test]
    async fn a_412_that_keeps_coming_fails_the_target_but_not_the_factory() {
        let (factory, targets, secret) = setup(&["A", "B"]);
        let arm = ScriptedArm::default();
        let rounds = MAX_PRECONDITION_RETRIES as usize + 1;
        arm.gets
            .lock()
            .unwrap()
            .extend((0..rounds).map(|i| ok(fresh("A", &format!("a{i}")))));
        arm.puts
            .lock()
            .unwrap()
            .extend((0..rounds).map(|_| precondition_failed()));
        arm.gets.lock().unwrap().push_back(ok(fresh("B", "b")));
        arm.puts.lock().unwrap().push_back(ok(fresh("B", "b2")));
        arm.tests
            .lock()
            .unwrap()
            .push_back(ok(json!({"succeeded": true})));
        let (targets, errors) = apply_factory(&arm, &factory, targets, &secret, &refresh()).await;
        // The failure is the target's, in its re-save; the factory goes on.
        assert!(errors.is_empty());
        assert_eq!(targets[0].resave.status, ResaveStatus::Failed);
        assert_eq!(targets[0].resave.attempts as usize, rounds);
        assert_eq!(targets[1].resave.status, ResaveStatus::Ok);
    }

    #[tokio::test]
    async fn a_transient_failure_stops_the_factory_and_says_who_was_not_reached() {
        let (factory, targets, secret) = setup(&["A", "B"]);
        let arm = ScriptedArm::default();
        arm.gets
            .lock()
            .unwrap()
            .push_back(Err(ArmError::Unavailable {
                operation: "getLinkedService",
                status: 503,
                code: String::new(),
                message: "busy".into(),
                attempts: 8,
                request_id: None,
            }));
        let (targets, errors) = apply_factory(&arm, &factory, targets, &secret, &refresh()).await;
        assert_eq!(errors.len(), 1);
        assert!(errors[0].transient);
        assert_eq!(targets[0].resave.status, ResaveStatus::Failed);
        assert_eq!(targets[1].resave.status, ResaveStatus::NotReached);
        assert_eq!(arm.calls.lock().unwrap().len(), 1, "B was never touched");
    }

    #[tokio::test]
    async fn a_400_from_the_test_is_a_failed_test_unless_adf_says_authoring_is_off() {
        let (factory, targets, secret) = setup(&["Sql"]);
        let arm = ScriptedArm::default();
        arm.gets.lock().unwrap().push_back(ok(fresh("Sql", "e1")));
        arm.puts.lock().unwrap().push_back(ok(fresh("Sql", "e2")));
        arm.tests.lock().unwrap().push_back(Ok(ArmResponse {
            status: 400,
            body: json!({"error": {"code": "BadRequest", "message": "The linked service's server name is not valid."}}),
            ..ArmResponse::default()
        }));
        let (targets, _) = apply_factory(&arm, &factory, targets, &secret, &refresh()).await;
        let t = &targets[0];
        assert_eq!(t.test.status, TestStatus::Failed);
        assert_eq!(
            t.test.message.as_deref(),
            Some("The linked service's server name is not valid.")
        );
        assert!(!t.notes.contains(&Note::InteractiveAuthoringDisabled));
        assert!(t.needs_attention());
    }
}
