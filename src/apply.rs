//! Runs one rotation: observe (discover), decide ([`crate::plan`]), act (re-save, test), report.
//!
//! Factories are read with bounded concurrency; writes are serialised per factory. Each PUT is atomic and
//! conditional on the etag just read, so a failure halfway leaves nothing half-written, and the report says
//! exactly which targets were re-saved and which were not reached.

use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::keyvault::{self, KeyVaultError, VaultEndpoints};
use crate::azure::operations::{self, ArmOperation};
use crate::config::Scope;
use crate::diagnose;
use crate::event::EventKind;
use crate::plan::{self, FactorySnapshot, SecretRef};
use crate::report::{
    Command, Finding, Report, Resave, ResaveStatus, RunError, RuntimeStatus, SecretInfo, Target,
    TargetKind, Test, TestStatus, Trigger, Verdict,
};
use azure_core::credentials::TokenCredential;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument;

/// The Azure side of a run: ARM, Key Vault, and the identity both use.
#[derive(Clone)]
pub struct Azure {
    pub arm: ArmClient,
    pub http: reqwest::Client,
    pub credential: Arc<dyn TokenCredential>,
    pub vaults: VaultEndpoints,
    pub concurrency: usize,
}

/// What to do in one run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub secret: SecretRef,
    pub secret_url: Option<String>,
    pub event_kind: EventKind,
    pub dry_run: bool,
    pub scopes: Vec<Scope>,
    pub trigger: Trigger,
    pub deadline: Option<Instant>,
    /// The report's id; a queued job passes its own so that the blob name and the logs agree.
    pub report_id: Option<String>,
}

/// The longest the product waits for Key Vault metadata, which only informs the report.
const KEY_VAULT_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// How many times a 412 is answered by reading again and re-applying.
const MAX_PRECONDITION_RETRIES: u32 = 3;

/// Runs a plan (dry run) or a refresh and returns its report. It never panics on Azure's answers and
/// always returns a report, which says in `errors` what stopped it, if anything did.
pub async fn run(azure: &Azure, request: RunRequest) -> Report {
    let report_id = request
        .report_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Every log line of the run carries these, so one rotation can be followed end to end.
    let span = tracing::info_span!(
        "run",
        report_id = %report_id,
        vault = %request.secret.vault,
        secret = %request.secret.name,
        trigger = ?request.trigger.kind,
        event_id = request.trigger.event_id.as_deref().unwrap_or(""),
        invocation_id = request.trigger.invocation_id.as_deref().unwrap_or(""),
    );
    run_in_span(azure, request, report_id)
        .instrument(span)
        .await
}

async fn run_in_span(azure: &Azure, request: RunRequest, report_id: String) -> Report {
    let arm = azure.arm.clone().with_deadline(request.deadline);
    // Near-expiry and expired events report the consumers at risk; a re-save cannot help them.
    let dry_run = request.dry_run || request.event_kind != EventKind::NewVersion;
    let mut report = Report::start(
        report_id,
        if dry_run {
            Command::Plan
        } else {
            Command::Refresh
        },
        dry_run,
        request.trigger.clone(),
        &request.scopes,
    );
    tracing::info!(report_id = %report.id, vault = %request.secret.vault, secret = %request.secret.name, dry_run, "run started");

    let secret_usable = secret_metadata(azure, &request, &mut report).await;
    let mut secret = request.secret.clone();
    if secret.version.is_none() {
        secret.version = report.secret.as_ref().and_then(|s| s.version.clone());
    }

    let snapshots = discover(&arm, &request.scopes, azure.concurrency, &mut report).await;
    report.summary.factories_scanned = snapshots.len();
    report.summary.linked_services_scanned =
        snapshots.iter().map(|f| f.linked_services.len()).sum();
    report.summary.credentials_scanned = snapshots.iter().map(|f| f.credentials.len()).sum();

    let per_factory: Vec<(FactorySnapshot, Vec<Target>)> = snapshots
        .into_iter()
        .map(|f| {
            let targets = plan::plan_factory(&f, &secret);
            (f, targets)
        })
        .filter(|(_, t)| !t.is_empty())
        .collect();
    let per_factory = interleave_by_subscription(per_factory, |(f, _)| f.id.as_str());

    let mode = Mode {
        dry_run,
        secret_usable: secret_usable.clone(),
        event_kind: request.event_kind,
    };
    let results: Vec<(Vec<Target>, Vec<RunError>)> = futures::stream::iter(per_factory)
        .map(|(factory, targets)| {
            let arm = arm.clone();
            let secret = secret.clone();
            let mode = mode.clone();
            async move { apply_factory(&arm, &factory, targets, &secret, &mode).await }
        })
        .buffer_unordered(azure.concurrency.max(1))
        .collect()
        .await;
    for (targets, errors) in results {
        report.targets.extend(targets);
        report.errors.extend(errors);
    }
    report.targets.sort_by(|a, b| {
        (a.factory.to_ascii_lowercase(), &a.name).cmp(&(b.factory.to_ascii_lowercase(), &b.name))
    });
    report.finish();
    tracing::info!(
        report_id = %report.id,
        affected = report.summary.affected,
        resaved = report.summary.resaved,
        tests_failed = report.summary.tests_failed,
        complete = report.complete,
        "run finished"
    );
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn work_alternates_between_subscriptions() {
        let ids = [
            "/subscriptions/a/x/1",
            "/subscriptions/a/x/2",
            "/subscriptions/a/x/3",
            "/subscriptions/b/x/1",
            "/subscriptions/c/x/1",
        ];
        let ordered = super::interleave_by_subscription(ids.to_vec(), |s| s);
        assert_eq!(
            ordered,
            [
                "/subscriptions/a/x/1",
                "/subscriptions/b/x/1",
                "/subscriptions/c/x/1",
                "/subscriptions/a/x/2",
                "/subscriptions/a/x/3"
            ]
        );
    }
}

#[derive(Debug, Clone)]
struct Mode {
    dry_run: bool,
    /// `Err(reason)` when the new version cannot serve, so a re-save cannot help.
    secret_usable: Result<(), String>,
    event_kind: EventKind,
}

/// Reads the secret's version metadata (never its value) into the report; says whether the version can serve.
async fn secret_metadata(
    azure: &Azure,
    request: &RunRequest,
    report: &mut Report,
) -> Result<(), String> {
    let secret = &request.secret;
    let mut info = SecretInfo {
        vault: secret.vault.clone(),
        name: secret.name.clone(),
        version: secret.version.clone(),
        metadata: "ok".into(),
        ..SecretInfo::default()
    };
    let budget = request.deadline.map_or(KEY_VAULT_BUDGET, |d| {
        d.saturating_duration_since(Instant::now())
            .min(KEY_VAULT_BUDGET)
    });
    let listed = tokio::time::timeout(
        budget,
        keyvault::list_versions(
            &azure.http,
            azure.credential.clone(),
            &azure.vaults,
            &secret.vault,
            &secret.name,
            request.secret_url.as_deref(),
        ),
    )
    .await
    .unwrap_or_else(|_| {
        Err(KeyVaultError::Unavailable {
            vault: secret.vault.clone(),
            message: "no answer within the time budget".into(),
        })
    });
    let mut usable = Ok(());
    match listed {
        Ok(versions) => {
            info.version_count = Some(versions.len());
            match keyvault::pick_version(&versions, secret.version.as_deref()) {
                Some(v) => {
                    info.version = Some(v.version.clone());
                    info.enabled = v.enabled;
                    info.created = v.created.and_then(crate::report::rfc3339);
                    info.not_before = v.not_before.and_then(crate::report::rfc3339);
                    info.expires = v.expires.and_then(crate::report::rfc3339);
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    if let Some(why) = keyvault::unusable_because(v, now) {
                        usable = Err(format!(
                            "the secret version {} is {why}; a re-save cannot help",
                            v.version
                        ));
                        report.findings.push(Finding {
                            code: format!("secretVersion{}", crate::report::capitalise(why)),
                            severity: "error".into(),
                            message: format!("Secret {}/{} version {} is {why}.", secret.vault, secret.name, v.version),
                            subject: Some(format!("{}/{}", secret.vault, secret.name)),
                            fix: vec!["Create a new, enabled, currently valid version of the secret in Key Vault.".into()],
                        });
                    }
                }
                None => report.findings.push(Finding {
                    code: "secretVersionNotFound".into(),
                    severity: "warning".into(),
                    message: format!(
                        "Key Vault lists no version {} of {}/{}.",
                        secret.version.as_deref().unwrap_or("(any)"),
                        secret.vault,
                        secret.name
                    ),
                    subject: Some(format!("{}/{}", secret.vault, secret.name)),
                    fix: vec![],
                }),
            }
        }
        Err(e) => {
            info.metadata = match &e {
                KeyVaultError::Forbidden { .. } => "forbidden",
                KeyVaultError::NotFound { .. } | KeyVaultError::VaultNotFound { .. } => "notFound",
                KeyVaultError::Unavailable { .. } => "unavailable",
            }
            .into();
            // Without access to the vault, carry on: the ADF side does not depend on it.
            report.findings.push(Finding {
                code: format!("keyVault{}", crate::report::capitalise(&info.metadata)),
                severity: if matches!(e, KeyVaultError::NotFound { .. }) { "warning" } else { "info" }.into(),
                message: format!("Could not read the secret's metadata: {e}. Carried on without it."),
                subject: Some(format!("{}/{}", secret.vault, secret.name)),
                fix: match e {
                    KeyVaultError::Forbidden { .. } => {
                        vec!["Assign the product's identity the 'Key Vault Reader' role on the vault (metadata only).".into()]
                    }
                    _ => vec![],
                },
            });
        }
    }
    match request.event_kind {
        EventKind::NearExpiry => report.findings.push(Finding {
            code: "secretNearExpiry".into(),
            severity: "warning".into(),
            message: format!("Secret {}/{} expires soon; the linked services below will fail once it does.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            fix: vec!["Rotate the secret (create a new version) before it expires; this product then refreshes its consumers.".into()],
        }),
        EventKind::Expired => report.findings.push(Finding {
            code: "secretExpired".into(),
            severity: "error".into(),
            message: format!("Secret {}/{} has expired; the linked services below cannot resolve it.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            fix: vec!["Create a new version of the secret in Key Vault; this product then refreshes its consumers.".into()],
        }),
        EventKind::NewVersion => {}
    }
    report.secret = Some(info);
    usable
}

/// Lists every factory in scope, then each factory's linked services and credentials (one LIST each, no GETs).
pub async fn discover(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    let mut factories: BTreeMap<String, Value> = BTreeMap::new();
    for scope in scopes {
        match arm.list_factories(scope.id()).await {
            Ok(list) => {
                for factory in list {
                    let Some(id) = factory
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    // Never act outside the configured scopes, whatever ARM returns.
                    if scopes.iter().any(|s| s.contains(&id)) {
                        factories.entry(id.to_ascii_lowercase()).or_insert(factory);
                    }
                }
            }
            Err(e) => report
                .errors
                .push(run_error("discovery", &e, Some(scope.id().to_string()))),
        }
    }
    let results: Vec<Result<FactorySnapshot, RunError>> = futures::stream::iter(
        interleave_by_subscription(factories.into_values().collect(), |f: &Value| {
            f.get("id").and_then(Value::as_str).unwrap_or_default()
        }),
    )
    .map(|resource| async move {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let linked_services = arm
            .list_linked_services(&id)
            .await
            .map_err(|e| run_error("discovery", &e, Some(id.clone())))?;
        let credentials = match arm.list_credentials(&id).await {
            Ok(c) => c,
            // A factory without the credentials feature answers 404; it simply has none.
            Err(ArmError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(run_error("discovery", &e, Some(id.clone()))),
        };
        Ok(FactorySnapshot {
            id,
            resource,
            linked_services,
            credentials,
        })
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    let mut snapshots = Vec::new();
    for r in results {
        match r {
            Ok(s) => snapshots.push(s),
            Err(e) => report.errors.push(e),
        }
    }
    snapshots.sort_by_key(|s| s.id.to_ascii_lowercase());
    snapshots
}

/// Orders work round-robin across subscriptions. ARM's limits are per subscription, so factories of one
/// subscription side by side would queue behind one bucket while the others' stay full.
pub fn interleave_by_subscription<T>(items: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut groups: BTreeMap<String, std::collections::VecDeque<T>> = BTreeMap::new();
    for item in items {
        let subscription = crate::azure::arm::segment_after(id(&item), "subscriptions")
            .unwrap_or_default()
            .to_ascii_lowercase();
        groups.entry(subscription).or_default().push_back(item);
    }
    let mut out = Vec::new();
    while !groups.is_empty() {
        groups.retain(|_, queue| {
            if let Some(item) = queue.pop_front() {
                out.push(item);
            }
            !queue.is_empty()
        });
    }
    out
}

pub(crate) fn run_error(stage: &str, e: &ArmError, subject: Option<String>) -> RunError {
    RunError {
        stage: stage.into(),
        message: e.to_string(),
        transient: e.is_transient(),
        subject,
    }
}

/// Applies one factory's targets in order: credentials first, then linked services. Writes are sequential.
async fn apply_factory(
    arm: &ArmClient,
    factory: &FactorySnapshot,
    mut targets: Vec<Target>,
    secret: &SecretRef,
    mode: &Mode,
) -> (Vec<Target>, Vec<RunError>) {
    let mut errors = Vec::new();
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
                    runtime_status(arm, &factory.id, &runtime, &mut target.request_ids).await;
                runtimes.insert(runtime.clone(), status);
            }
            if let Some(status) = runtimes.get(&runtime) {
                note_runtime(target, status);
            }
        }
        let span = tracing::info_span!("target", factory = %factory.id, name = %target.name, kind = ?target.kind);
        if let Err(e) = apply_target(arm, factory, target, secret, mode)
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

async fn runtime_status(
    arm: &ArmClient,
    factory_id: &str,
    runtime: &str,
    request_ids: &mut Vec<String>,
) -> RuntimeStatus {
    match arm.integration_runtime_status(factory_id, runtime).await {
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
async fn apply_target(
    arm: &ArmClient,
    factory: &FactorySnapshot,
    target: &mut Target,
    secret: &SecretRef,
    mode: &Mode,
) -> Result<(), ArmError> {
    let (get_op, put_op) = match target.kind {
        TargetKind::LinkedService => (
            operations::GET_LINKED_SERVICE,
            operations::PUT_LINKED_SERVICE,
        ),
        TargetKind::Credential => (operations::GET_CREDENTIAL, operations::PUT_CREDENTIAL),
    };
    let collection = match target.kind {
        TargetKind::LinkedService => "linkedservices",
        TargetKind::Credential => "credentials",
    };
    let id = format!("{}/{collection}/{}", factory.id, target.name);
    let mut tested_resource: Option<Value> = None;

    if target.verdict == Verdict::Resave {
        if mode.dry_run {
            target.resave = Resave::with_status(ResaveStatus::DryRun, None);
        } else if let Err(why) = &mode.secret_usable {
            target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why.clone()));
        } else {
            match resave(arm, factory, target, &id, get_op, put_op, secret).await {
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
        test.diagnosis = Some(diagnose::for_message("The integration runtime is offline."));
        test
    } else {
        let resource = match tested_resource {
            Some(r) => r,
            None => match listed_resource(factory, target) {
                Some(r) => r.clone(),
                None => return Ok(()),
            },
        };
        test_connection(arm, &factory.id, target, &resource).await?
    };
    Ok(())
}

/// GET fresh, check it is still safe, PUT exactly its properties with `If-Match`; on 412, again.
async fn resave(
    arm: &ArmClient,
    factory: &FactorySnapshot,
    target: &mut Target,
    id: &str,
    get_op: ArmOperation,
    put_op: ArmOperation,
    secret: &SecretRef,
) -> Result<Value, ArmError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        target.resave.attempts = attempts;
        let (fresh, etag) = arm.get(get_op, id).await?;
        target.request_ids.extend(fresh.request_id.clone());
        let Some(etag) = etag else {
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
                target.resave.etag_after = saved
                    .body
                    .get("etag")
                    .and_then(Value::as_str)
                    .map(str::to_string);
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
async fn test_connection(
    arm: &ArmClient,
    factory_id: &str,
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
    let response = match arm.test_connectivity(factory_id, &body).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            return Ok(Test {
                status: TestStatus::Error,
                message: Some(e.to_string()),
                raw: None,
                diagnosis: Some(diagnose::for_message(&e.to_string())),
            });
        }
    };
    target.request_ids.extend(response.request_id.clone());
    let errors: Vec<String> = response
        .body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let cloud_message = response
        .body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = (!errors.is_empty())
        .then(|| errors.join(" | "))
        .or(cloud_message);
    let test = if response.status == 400 {
        let text = message.clone().unwrap_or_else(|| "HTTP 400".into());
        let diagnosis = diagnose::for_message(&text);
        if diagnosis.code == "interactiveAuthoringDisabled"
            || target
                .notes
                .iter()
                .any(|n| n == "managedIntegrationRuntime")
        {
            target.notes.push("interactiveAuthoringDisabled".into());
            let d = diagnose::for_message("interactive authoring");
            Test {
                status: TestStatus::NotTested,
                message: Some(text),
                raw: Some(response.body),
                diagnosis: Some(d),
            }
        } else {
            Test {
                status: TestStatus::Failed,
                message: Some(text),
                raw: Some(response.body),
                diagnosis: Some(diagnosis),
            }
        }
    } else {
        match response.body.get("succeeded").and_then(Value::as_bool) {
            Some(true) => Test {
                status: TestStatus::Passed,
                message: None,
                raw: Some(response.body),
                diagnosis: None,
            },
            Some(false) => {
                let text =
                    message.unwrap_or_else(|| "ADF reported a failure without a message".into());
                let diagnosis = diagnose::for_message(&text);
                Test {
                    status: TestStatus::Failed,
                    message: Some(text),
                    raw: Some(response.body),
                    diagnosis: Some(diagnosis),
                }
            }
            None => Test {
                status: TestStatus::Error,
                message: Some(
                    "ADF's answer to the test connection had no `succeeded` field".into(),
                ),
                raw: Some(response.body),
                diagnosis: None,
            },
        }
    };
    tracing::info!(factory = %factory_id, name = %target.name, status = ?test.status, "tested");
    Ok(test)
}
