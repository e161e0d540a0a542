//! Acting on a Data Factory: re-save a linked service or credential through ARM ([`super::resave`]), check
//! the self-hosted integration runtime it connects through, then run ADF's own test connection.

use super::resave::{Store, Stored, Written, resave_if_safe};
use super::{Actor, Halt, Mode};
use crate::azure::arm::{Arm, ArmError, ArmResponse, resource_etag};
use crate::azure::operations;
use crate::azure::resource_id::ResourceId;
use crate::diagnose;
use crate::model::Snapshot;
use crate::plan::SecretRef;
use crate::report::{Note, RuntimeStatus, Target, TargetKind, Test};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Acts on the targets of one factory, remembering each integration runtime's status once read.
pub struct FactoryActor<'a, A: Arm + ?Sized> {
    arm: &'a A,
    factory: &'a Snapshot,
    factory_id: ResourceId,
    secret: &'a SecretRef,
    mode: &'a Mode,
    runtimes: HashMap<String, RuntimeStatus>,
}

impl<'a, A: Arm + ?Sized> FactoryActor<'a, A> {
    pub fn new(
        arm: &'a A,
        factory: &'a Snapshot,
        secret: &'a SecretRef,
        mode: &'a Mode,
    ) -> Result<Self, Halt> {
        let factory_id = ResourceId::parse(&factory.id).map_err(|e| Halt {
            message: e.to_string(),
            transient: false,
        })?;
        Ok(FactoryActor {
            arm,
            factory,
            factory_id,
            secret,
            mode,
            runtimes: HashMap::new(),
        })
    }
}

#[async_trait::async_trait]
impl<A: Arm + ?Sized> Actor for FactoryActor<'_, A> {
    async fn act(&mut self, target: &mut Target) -> Result<(), Halt> {
        let properties = listed_resource(self.factory, target).and_then(|r| r.get("properties"));
        if let Some(runtime) = properties.and_then(crate::scan::connect_via) {
            if !self.runtimes.contains_key(&runtime) {
                let status = runtime_status(
                    self.arm,
                    &self.factory_id,
                    &runtime,
                    &mut target.request_ids,
                )
                .await;
                self.runtimes.insert(runtime.clone(), status);
            }
            if let Some(status) = self.runtimes.get(&runtime) {
                note_runtime(target, status);
            }
        }
        apply_target(
            self.arm,
            self.factory,
            &self.factory_id,
            target,
            self.secret,
            self.mode,
        )
        .await
        .map_err(|e| Halt::from(&e))
    }
}

/// The target's definition as discovery listed it.
pub fn listed_resource<'a>(factory: &'a Snapshot, target: &Target) -> Option<&'a Value> {
    let list = match target.kind {
        TargetKind::LinkedService => &factory.linked_services,
        TargetKind::Credential => &factory.credentials,
        _ => return None,
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
    factory: &Snapshot,
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

    target.test = if let Some(untested) = mode.untested() {
        untested
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

/// A factory's linked services and credentials through ARM.
struct ArmStore<'a, A: Arm + ?Sized> {
    arm: &'a A,
    factory: &'a ResourceId,
}

impl<A: Arm + ?Sized> ArmStore<'_, A> {
    fn id(&self, kind: TargetKind, name: &str) -> Result<ResourceId, ArmError> {
        let collection = match kind {
            TargetKind::Credential => "credentials",
            _ => "linkedservices",
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
    async fn read(&self, kind: TargetKind, name: &str) -> Result<Stored, ArmError> {
        let operation = match kind {
            TargetKind::Credential => operations::GET_CREDENTIAL,
            _ => operations::GET_LINKED_SERVICE,
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
            TargetKind::Credential => operations::PUT_CREDENTIAL,
            _ => operations::PUT_LINKED_SERVICE,
        };
        let id = self.id(kind, name)?;
        Ok(stored(
            self.arm.put(operation, &id, properties, etag).await?,
        ))
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
    use crate::act::resave::MAX_PRECONDITION_RETRIES;
    use crate::event::EventKind;
    use crate::plan;
    use crate::report::{ResaveStatus, RunError};

    /// The one target loop over a factory, with ARM scripted.
    async fn apply_factory(
        arm: &ScriptedArm,
        factory: &Snapshot,
        mut targets: Vec<Target>,
        secret: &SecretRef,
        mode: &Mode,
    ) -> (Vec<Target>, Vec<RunError>) {
        let mut errors = Vec::new();
        let mut actor = FactoryActor::new(arm, factory, secret, mode).expect("factory id");
        crate::act::drive(&mut actor, factory, &mut targets, mode, &mut errors).await;
        (targets, errors)
    }
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
            request_id: None,
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

    fn setup(names: &[&str]) -> (Snapshot, Vec<Target>, SecretRef) {
        let mut linked_services =
            vec![json!({"name": "KV", "properties": {"type": "AzureKeyVault",
            "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}})];
        linked_services.extend(names.iter().map(|n| sql(n)));
        let factory = Snapshot {
            linked_services,
            ..Snapshot::new(
                crate::model::Platform::DataFactory,
                FACTORY,
                json!({"properties": {}}),
            )
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
            request_id: None,
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
