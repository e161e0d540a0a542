//! One handler per function. Each parses its envelope, does its work through the shared core, and answers.

use super::envelope::{Invocation, InvocationResponse, decode_string};
use super::outcome::{self, Delivery, Outcome, RunEnd};
use super::{ATTENTION_QUEUE, Handler, MAX_DEQUEUE_COUNT, POISON_QUEUE, REFRESH_JOB_QUEUE};
use crate::apply::RunRequest;
use crate::config::Scope;
use crate::event::{self, EventKind, Parsed, SecretEvent};
use crate::report::{Report, Trigger, TriggerKind};
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest manual-refresh body accepted.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// What a `202 Accepted` manual run asks the caller to wait before polling again.
const POLL_AFTER_SECONDS: u64 = 10;
/// The schema of a manual run's progress document (`reports/runs/{id}.json` while the run goes on).
pub const RUN_STATUS_SCHEMA: &str = "adf-secret-refresh/run-status/v1";

/// The queue message from `KeyVaultSecretEvent` to `RefreshJob`. `id` and `date` feed the blob path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefreshJob {
    pub id: String,
    pub date: String,
    pub vault: String,
    pub secret: String,
    pub version: Option<String>,
    #[serde(default)]
    pub secret_url: Option<String>,
    pub event_kind: EventKind,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    /// A manual run handed over to the queue (`POST /api/refresh` answered 202): it is not deduplicated
    /// against rotations, keeps its `dryRun` and `scope`, and writes its report to `reports/runs/{id}.json`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}

impl RefreshJob {
    /// One job per (vault, secret, version): duplicates of it are recognised by this key.
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}/{}/{}/{:?}",
            self.vault.to_ascii_lowercase(),
            self.secret.to_ascii_lowercase(),
            self.version
                .as_deref()
                .unwrap_or("latest")
                .to_ascii_lowercase(),
            self.event_kind
        )
    }
}

/// Today's date (UTC) as the report blob path writes it.
fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        now.month() as u8,
        now.day()
    )
}

/// The job for a secret event.
pub fn job_from_event(e: &SecretEvent) -> RefreshJob {
    RefreshJob {
        id: uuid::Uuid::new_v4().to_string(),
        date: today(),
        vault: e.vault.clone(),
        secret: e.secret.clone(),
        version: e.version.clone(),
        secret_url: e.secret_url.clone(),
        event_kind: e.kind,
        event_id: e.event_id.clone(),
        event_type: Some(e.event_type.clone()),
        manual: false,
        dry_run: false,
        scope: Vec::new(),
    }
}

/// `KeyVaultSecretEvent`: validate, filter, and queue one job per (vault, secret, version). Returns at once.
pub async fn key_vault_secret_event(State(h): State<Handler>, body: Bytes) -> InvocationResponse {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return rejected(&e),
    };
    let Some(trigger) = invocation
        .trigger("event")
        .or_else(|| invocation.trigger("eventGridEvent"))
    else {
        return rejected("the invocation has no `event` trigger value");
    };
    let parsed = match event::parse_delivery(&trigger) {
        Ok(p) => p,
        // A malformed event never becomes valid: answer 2xx so the host does not retry it, and say why.
        Err(e) => return rejected(&format!("rejected the event: {e}")),
    };
    let mut response = InvocationResponse::ok();
    let mut jobs: Vec<Value> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for item in parsed {
        match item {
            Parsed::SubscriptionValidation { validation_code } => {
                response.return_value = json!({ "validationResponse": validation_code });
                response = response.log("answered an Event Grid subscription validation");
            }
            Parsed::Ignored {
                event_type,
                event_id,
            } => {
                tracing::info!(
                    event_type,
                    event_id = event_id.as_deref().unwrap_or(""),
                    "ignored an event type the product does not act on"
                );
                response = response.log(format!("ignored event type {event_type}"));
            }
            Parsed::Secret(e) if !h.app.settings.vault_allowed(&e.vault) => {
                tracing::warn!(vault = %e.vault, secret = %e.secret, event_id = e.event_id.as_deref().unwrap_or(""), "dropped an event from a vault outside ADF_REFRESH_VAULTS");
                response = response.log(format!(
                    "dropped: vault {} is not in ADF_REFRESH_VAULTS",
                    e.vault
                ));
            }
            Parsed::Secret(e) => {
                let job = job_from_event(&e);
                if keys.insert(job.dedupe_key()) {
                    tracing::info!(vault = %e.vault, secret = %e.secret, version = e.version.as_deref().unwrap_or(""), job_id = %job.id, event_id = e.event_id.as_deref().unwrap_or(""), "queued a refresh job");
                    response = response.log(format!(
                        "queued job {} for {}/{}",
                        job.id, e.vault, e.secret
                    ));
                    jobs.push(serde_json::to_value(&job).unwrap_or(Value::Null));
                }
            }
        }
    }
    if !jobs.is_empty() {
        response = response.output("job", Value::Array(jobs));
    }
    response
}

/// `RefreshJob`: run the refresh; write the report to the blob output, and to the attention queue if needed.
///
/// How the delivery is answered is [`outcome::next`]'s decision: a transient failure asks the host to deliver
/// the job again (non-2xx), up to `MAX_DEQUEUE_COUNT` deliveries; the last delivery parks it, answering 2xx so
/// that what it did is kept: the incomplete report with a `retriesExhausted` finding, a message on
/// `refresh-attention`, and the job itself on `refresh-jobs-poison`, from where an operator re-queues it once
/// the cause is gone.
///
/// With the app's storage account, a new-version job first claims its (vault, secret, version) there: a
/// duplicate of a completed run answers a `duplicateDelivery` report, one still held by another instance after
/// `CLAIM_PATIENCE` asks for a redelivery like a transient failure, and the holder resumes from the targets an
/// earlier delivery recorded as done.
pub async fn refresh_job(State(h): State<Handler>, body: Bytes) -> InvocationResponse {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return rejected(&e),
    };
    let job: RefreshJob = match invocation.trigger("job").map(serde_json::from_value) {
        Some(Ok(job)) => job,
        Some(Err(e)) => return rejected(&format!("the queue message is not a refresh job: {e}")),
        None => return rejected("the invocation has no `job` trigger value"),
    };
    if !h.app.settings.vault_allowed(&job.vault) {
        return rejected(&format!("vault {} is not in ADF_REFRESH_VAULTS", job.vault));
    }
    let scopes = match job
        .scope
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(scopes) if h.app.scopes_allowed(&scopes) => scopes,
        Ok(_) => return rejected("the job's scope lies outside the configured scope"),
        Err(e) => return rejected(&format!("the job's scope: {e}")),
    };
    let key = job.dedupe_key();
    // A manual run is an explicit request to run again: it is never a duplicate of a rotation.
    let (_running, previous) = if job.manual {
        (None, None)
    } else {
        let (running, previous) = h.dedupe.begin(&key).await;
        (Some(running), previous)
    };
    let trigger = Trigger {
        kind: if job.manual {
            TriggerKind::Http
        } else {
            TriggerKind::Queue
        },
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone(),
        invocation_id: invocation.invocation_id(),
    };
    let count = invocation.dequeue_count();
    if previous.is_none() && job.event_kind != EventKind::NewVersion {
        return expiry_job(&h, &job, trigger, &key, count).await;
    }
    // The run budget counts from here, so that waiting for another instance's claim (up to `CLAIM_PATIENCE`)
    // cannot push the run past `functionTimeout`.
    let deadline = tokio::time::Instant::now() + h.app.settings.run_budget;
    let coordinated = coordinate(&h, &job, previous).await;
    let held_elsewhere = matches!(coordinated, Coordinated::HeldByOther);
    let report = match coordinated {
        Coordinated::AlreadyDone(previous_id) => {
            if !job.manual {
                h.dedupe.complete(&key, &previous_id);
            }
            duplicate_report(&h, &job, trigger, previous_id)
        }
        Coordinated::HeldByOther => held_by_other_report(&h, &job, trigger),
        coordinated => {
            let report = rotate(&h, &job, scopes, trigger, deadline, coordinated).await;
            if report.complete && !job.manual {
                h.dedupe.complete(&key, &report.id);
            }
            report
        }
    };
    // The same queue message delivered again: its report blob (named after the job id) already holds the run's
    // report, which a duplicate report must not replace.
    if report.duplicate_of.as_deref() == Some(report.id.as_str()) {
        tracing::info!(job_id = %job.id, "the same job delivered again after it completed: nothing done");
        return InvocationResponse::ok().log(format!(
            "job {} was delivered again after its run completed; report {} stands, nothing was done",
            job.id, report.id
        ));
    }
    let delivery = Delivery::Queued {
        count,
        max: MAX_DEQUEUE_COUNT,
        held_elsewhere,
    };
    match outcome::next(RunEnd::of_report(&report), delivery) {
        Outcome::Redeliver => redeliver(&job.id, count, &first_error(&report)),
        Outcome::Done => report_answer(&h, &job, report).await,
        Outcome::Park => {
            tracing::error!(job_id = %job.id, dequeue_count = count, poison_queue = POISON_QUEUE, "the last delivery still met a transient failure: the incomplete report is written, and the job goes to the poison queue");
            let mut report = report;
            report.findings.push(retries_exhausted_finding(count));
            report.summarise();
            let response = report_answer(&h, &job, report).await;
            park(response, &job, count)
        }
    }
}

/// Runs a rotation this delivery may act on (it holds the claim, or runs uncoordinated), resuming from the
/// progress an earlier delivery recorded, and settles the claim by the outcome: done when complete, else freed.
async fn rotate(
    h: &Handler,
    job: &RefreshJob,
    scopes: Vec<Scope>,
    trigger: Trigger,
    deadline: tokio::time::Instant,
    coordinated: Coordinated,
) -> Report {
    let (guard, progress) = match coordinated {
        Coordinated::Mine(guard, progress) => (Some(guard), progress),
        _ => (None, None),
    };
    if let Some(p) = &progress
        && p.earlier_count() > 0
    {
        tracing::info!(job_id = %job.id, carried_over = p.earlier_count(), "an earlier delivery of this rotation finished some targets: they are carried over");
    }
    let secret = h.app.secret(
        &job.vault,
        &job.secret,
        job.version.clone(),
        job.secret_url.as_deref(),
    );
    let request = RunRequest::new(secret, trigger)
        .with_event(job.event_kind, job.secret_url.clone())
        .with_dry_run(job.dry_run)
        .with_scopes(scopes)
        .with_deadline(Some(deadline))
        .with_report_id(Some(job.id.clone()))
        .with_progress(
            progress
                .clone()
                .map(|p| p as std::sync::Arc<dyn crate::coordination::Progress>),
        );
    let report = h.app.run(request).await;
    if let Some(progress) = &progress
        && let Err(e) = progress.finish(report.complete).await
    {
        tracing::warn!(job_id = %job.id, error = %e, "could not record the run's progress; a redelivery re-saves those targets again, which is harmless");
    }
    if let Some(guard) = guard {
        if report.complete {
            if let Err(e) = guard.complete(report.id.as_bytes()).await {
                tracing::warn!(job_id = %job.id, error = %e, "could not mark the rotation done in the app's storage account; a duplicate delivery on another instance may re-save again, which is harmless");
            }
        } else {
            guard.abandon().await;
        }
    }
    report
}

/// The final answer of a job's run: notifications sent, the report to its blob (and, for a manual run, to the
/// status blob), and to the attention queue when it needs a person.
async fn report_answer(h: &Handler, job: &RefreshJob, mut report: Report) -> InvocationResponse {
    // Only the final answer notifies: a delivery that asks for a retry is not the end of the story.
    crate::notify::send_all(&h.app, &mut report).await;
    let run = job
        .manual
        .then(|| serde_json::to_value(&report).unwrap_or(Value::Null));
    let mut response = report_outputs(report);
    if let Some(run) = run {
        response = response.output("run", run);
    }
    response
}

/// Asks the host to deliver the queue message again: a non-2xx answer. The host drops its outputs and logs.
fn redeliver(job_id: &str, count: u64, why: &str) -> InvocationResponse {
    // This line reaches Application Insights through the handler's stderr (category Host.Function.Console);
    // the invocation log below only the local host's console.
    tracing::warn!(
        job_id,
        dequeue_count = count,
        max_dequeue_count = MAX_DEQUEUE_COUNT,
        "the run hit a transient failure; asking the host to retry"
    );
    InvocationResponse {
        status: 503,
        ..InvocationResponse::ok()
    }
    .log(format!("transient failure, retry wanted: {why}"))
}

/// Parks a job whose last delivery still failed transiently: its answer (the incomplete document) is kept, a
/// message with `"reason": "retriesExhausted"` goes to `refresh-attention`, and the job, unchanged, to
/// `refresh-jobs-poison`, from where an operator re-queues it.
fn park(response: InvocationResponse, job: &RefreshJob, count: u64) -> InvocationResponse {
    // An incomplete document needs attention by the one rule (`summary.attention`), so its message is there.
    let mut attention = response
        .outputs
        .get("attention")
        .cloned()
        .unwrap_or_else(|| json!({}));
    attention["reason"] = json!("retriesExhausted");
    attention["jobId"] = json!(job.id);
    attention["poisonQueue"] = json!(POISON_QUEUE);
    response
        .output("attention", attention)
        .output(
            "poison",
            serde_json::to_value(job).unwrap_or(Value::Null),
        )
        .log(format!(
            "delivery {count} of {MAX_DEQUEUE_COUNT} still failed transiently: report written, job {} put on {POISON_QUEUE}, message on {ATTENTION_QUEUE}",
            job.id
        ))
}

/// How long a delivery waits for another instance that holds the same rotation before it asks for a retry
/// (at most half the run budget).
pub const CLAIM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// What this instance and the app's other instances say about a rotation.
enum Coordinated {
    /// No coordinator, or the storage account failed: run (re-saves are idempotent).
    Uncoordinated,
    /// This delivery runs it, recording its progress when the progress blob could be read.
    Mine(
        crate::coordination::RotationGuard,
        Option<std::sync::Arc<crate::coordination::RunProgress>>,
    ),
    /// Another delivery, on this instance or another, completed it: its report id.
    AlreadyDone(String),
    /// Another instance is still on it after `CLAIM_PATIENCE`.
    HeldByOther,
}

/// Duplicates are recognised at two levels: within this instance (`previous`, from [`super::Dedupe`]), then
/// across instances, by one claim per (vault, secret, version) in the app's storage account. A manual run and a
/// dry run are explicit requests and are never coordinated away.
async fn coordinate(h: &Handler, job: &RefreshJob, previous: Option<String>) -> Coordinated {
    if let Some(previous_id) = previous {
        return Coordinated::AlreadyDone(previous_id);
    }
    match &h.coordinator {
        Some(coordinator) if !job.manual && !job.dry_run => {
            // A short run budget (tests, small estates) leaves at least half of it for the run.
            let patience = CLAIM_PATIENCE.min(h.app.settings.run_budget / 2);
            claim(coordinator, job, patience).await
        }
        _ => Coordinated::Uncoordinated,
    }
}

async fn claim(
    coordinator: &crate::coordination::Coordinator,
    job: &RefreshJob,
    patience: std::time::Duration,
) -> Coordinated {
    use crate::coordination::Claim;
    let version = job.version.as_deref();
    match coordinator
        .claim_rotation_waiting(&job.vault, &job.secret, version, patience)
        .await
    {
        Ok(Claim::Mine(guard)) => {
            let progress = match coordinator.progress(&job.vault, &job.secret, version).await {
                Ok(p) => Some(std::sync::Arc::new(p)),
                Err(e) => {
                    tracing::warn!(job_id = %job.id, error = %e, "could not read the rotation's progress; every target is re-saved");
                    None
                }
            };
            Coordinated::Mine(guard, progress)
        }
        Ok(Claim::AlreadyDone(done)) => {
            Coordinated::AlreadyDone(String::from_utf8_lossy(&done.record).into_owned())
        }
        Ok(Claim::HeldByOther) => Coordinated::HeldByOther,
        Err(e) => {
            tracing::warn!(job_id = %job.id, error = %e, "could not coordinate with the app's other instances; running anyway (re-saves are idempotent)");
            Coordinated::Uncoordinated
        }
    }
}

/// The report of a delivery that found another instance still refreshing the same rotation: nothing done, and
/// a transient error so that the host delivers it again (the last delivery parks it, as for any transient error).
fn held_by_other_report(h: &Handler, job: &RefreshJob, trigger: Trigger) -> Report {
    tracing::info!(job_id = %job.id, "another instance is refreshing this rotation; asking for a later delivery");
    let mut report = Report::start(
        job.id.clone(),
        crate::report::Command::Refresh,
        false,
        trigger,
        &h.app.settings.scopes,
    );
    report.secret = Some(crate::report::SecretInfo {
        vault: job.vault.clone(),
        name: job.secret.clone(),
        version: job.version.clone(),
        metadata: "notRead".into(),
        ..Default::default()
    });
    report.errors.push(crate::report::RunError {
        stage: "coordination".into(),
        message: format!(
            "another instance of the app was refreshing this (vault, secret, version) and had not finished after {} s; this delivery did nothing",
            CLAIM_PATIENCE.min(h.app.settings.run_budget / 2).as_secs()
        ),
        transient: true,
        subject: Some(format!("{}/{}", job.vault, job.secret)),
    });
    report.finish();
    report
}

/// What the report of a job says when its last delivery still failed transiently.
fn retries_exhausted_finding(delivery: u64) -> crate::report::Finding {
    crate::report::Finding {
        code: crate::report::FindingCode::RetriesExhausted,
        severity: crate::report::Severity::Critical,
        message: format!(
            "Delivery {delivery} of this job still met a transient failure (see errors), and the host delivers a \
             message at most {MAX_DEQUEUE_COUNT} times. The targets marked notReached were not refreshed."
        ),
        subject: None,
        vault_url: None,
        owner: crate::report::Owner::PlatformOwner,
        fix: vec![
            "Find the cause in errors[] (an ARM or token-endpoint outage, throttling, or a run budget too short for the estate).".into(),
            format!(
                "Once it is gone, move the job from the queue {POISON_QUEUE} back to {REFRESH_JOB_QUEUE} (it is kept there unchanged), or run POST /api/refresh for this secret."
            ),
        ],
    }
}

/// `Refresh`: a manual run over HTTP (function key). The response is the report.
pub async fn refresh(State(h): State<Handler>, body: Bytes) -> InvocationResponse {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return http_error(400, &e),
    };
    let Some(req) = invocation.data.get("req").and_then(Value::as_object) else {
        return http_error(400, "the invocation has no `req` trigger value");
    };
    if let Some(ct) = header(req, "content-type")
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return http_error(415, "send the request as application/json");
    }
    let raw = match req.get("Body") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    if raw.len() > MAX_REQUEST_BODY {
        return http_error(
            413,
            &format!(
                "the body is {} bytes; at most {MAX_REQUEST_BODY} are accepted",
                raw.len()
            ),
        );
    }
    let manual = match ManualRequest::parse(&raw) {
        Ok(m) => m,
        Err(e) => return http_error(400, &e),
    };
    if !h.app.settings.vault_allowed(&manual.vault) {
        return http_error(
            403,
            &format!("vault `{}` is not in ADF_REFRESH_VAULTS", manual.vault),
        );
    }
    if !h.app.scopes_allowed(&manual.scopes) {
        return http_error(
            403,
            "`scope` must lie inside the configured scope (ADF_REFRESH_SCOPE)",
        );
    }
    // The run's id is the invocation's sys.RandGuid: the `run` blob output's path uses `{sys.randguid}`, so the
    // report id, the status blob and `GET /api/refresh/{id}` all agree.
    let run_id = invocation.invocation_id();
    tracing::info!(vault = %manual.vault, secret = %manual.secret, dry_run = manual.dry_run, run_id = run_id.as_deref().unwrap_or_default(), "manual refresh");
    // The front end cuts the HTTP response at 230 s: work at most `http_sync`, then hand over to the queue.
    let can_hand_over = run_id.is_some() && h.http_sync < h.app.settings.run_budget;
    let deadline = can_hand_over.then(|| tokio::time::Instant::now() + h.http_sync);
    let secret = h
        .app
        .secret(&manual.vault, &manual.secret, manual.version.clone(), None);
    let trigger = Trigger {
        kind: TriggerKind::Http,
        invocation_id: run_id.clone(),
        ..Trigger::default()
    };
    let request = RunRequest::new(secret, trigger)
        .with_dry_run(manual.dry_run)
        .with_scopes(manual.scopes.clone())
        .with_deadline(deadline)
        .with_report_id(run_id.clone());
    let mut report = h.app.run(request).await;
    let outcome = outcome::next(RunEnd::of_report(&report), Delivery::Http);
    if let (Outcome::Redeliver, true, Some(id)) = (outcome, can_hand_over, run_id.as_deref()) {
        return accepted(h.http_sync.as_secs(), id, &manual, &report);
    }
    crate::notify::send_all(&h.app, &mut report).await;
    // 503 when trying again later may help (an outage, throttling, the time budget); 502 when Azure refused.
    let status = match outcome {
        Outcome::Done if report.complete => 200,
        Outcome::Done => 502,
        Outcome::Redeliver | Outcome::Park => 503,
    };
    let body = serde_json::to_value(&report).unwrap_or(Value::Null);
    let mut response = InvocationResponse::ok()
        .log(format!(
            "manual run {}: answered {status} ({} affected, {} re-saved, {} tests failed)",
            report.id, report.summary.affected, report.summary.resaved, report.summary.tests_failed
        ))
        .output("res", http_response(status, body.clone()));
    if run_id.is_some() {
        response = response.output("run", body);
    }
    response
}

/// The answer of a manual run that did not finish inside the synchronous window: `202 Accepted` with
/// `Location`, the job that continues it, and its progress document.
fn accepted(
    sync_seconds: u64,
    id: &str,
    manual: &ManualRequest,
    partial: &Report,
) -> InvocationResponse {
    tracing::info!(
        run_id = id,
        sync_seconds,
        "the manual run did not finish in the synchronous window; it goes on as a queued job"
    );
    let job = RefreshJob {
        id: id.to_string(),
        date: today(),
        vault: manual.vault.clone(),
        secret: manual.secret.clone(),
        version: manual.version.clone(),
        secret_url: None,
        event_kind: EventKind::NewVersion,
        event_id: None,
        event_type: None,
        manual: true,
        dry_run: manual.dry_run,
        scope: manual.scopes.iter().map(|s| s.id().to_string()).collect(),
    };
    let location = status_location(id);
    let progress = json!({
        "schema": RUN_STATUS_SCHEMA,
        "id": id,
        "status": "running",
        "dryRun": manual.dry_run,
        "secret": {"vault": manual.vault, "name": manual.secret, "version": manual.version},
        "acceptedAt": crate::report::now_rfc3339(),
        "message": format!(
            "The run did not finish within {sync_seconds} s, so it goes on as a queued job. Poll {location} until it answers 200 with the report."
        ),
        "firstAttempt": {"affected": partial.summary.affected, "resaved": partial.summary.resaved, "errors": partial.errors.len()},
    });
    let headers = [
        ("Location", location.clone()),
        ("Retry-After", POLL_AFTER_SECONDS.to_string()),
    ];
    InvocationResponse::ok()
        .log(format!(
            "manual run {id}: answered 202, continues as queued job on {REFRESH_JOB_QUEUE}; poll {location}"
        ))
        .output("res", http_response_with(202, progress.clone(), &headers))
        .output("job", serde_json::to_value(&job).unwrap_or(Value::Null))
        .output("run", progress)
}

/// Where a manual run's status is read: the `RefreshStatus` route under the host's `api` prefix.
fn status_location(id: &str) -> String {
    format!("/api/refresh/{id}")
}

/// `RefreshStatus`: `GET /api/refresh/{id}` (function key). The `run` blob input is
/// `reports/runs/{id}.json`: the report (200), the progress document of a run still going (202 with
/// `Retry-After`), or nothing (404).
pub async fn refresh_status(State(_h): State<Handler>, body: Bytes) -> InvocationResponse {
    let invocation = match Invocation::parse(&body) {
        Ok(i) => i,
        Err(e) => return http_error(400, &e),
    };
    let id = invocation
        .data
        .get("req")
        .and_then(|r| r.get("Params"))
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return http_error(404, "no such run: the id is not a run id");
    }
    // The host passes a missing blob as the JSON text `null`, and a blob's text as a JSON string.
    let document = invocation
        .data
        .get("run")
        .map(decode_string)
        .unwrap_or(Value::Null);
    let location = status_location(&id);
    match document.get("schema").and_then(Value::as_str) {
        _ if document.is_null() => http_error(
            404,
            &format!(
                "no run {id} (runs are kept as long as the reports container's lifecycle rule allows)"
            ),
        ),
        Some(RUN_STATUS_SCHEMA) => InvocationResponse::ok()
            .log(format!("run {id}: still running"))
            .output(
                "res",
                http_response_with(
                    202,
                    document,
                    &[
                        ("Location", location),
                        ("Retry-After", POLL_AFTER_SECONDS.to_string()),
                    ],
                ),
            ),
        Some(s) if s.starts_with("adf-secret-refresh/report/") => {
            // A browser (`Accept: text/html`) gets the report's page; scripts and the blob keep the JSON.
            let accept = invocation
                .data
                .get("req")
                .and_then(Value::as_object)
                .and_then(|req| header(req, "accept"));
            let page = crate::report::html::wants_html(accept.as_deref())
                .then(|| serde_json::from_value::<Report>(document.clone()).ok())
                .flatten()
                .map(|report| crate::report::html::report(&report));
            let res = match page {
                Some(page) => json!({ "statusCode": 200, "body": page, "headers": {
                    "Content-Type": crate::report::html::CONTENT_TYPE,
                    "Content-Security-Policy": crate::report::html::content_security_policy(),
                    "X-Content-Type-Options": "nosniff",
                }}),
                None => http_response(200, document),
            };
            InvocationResponse::ok()
                .log(format!("run {id}: report"))
                .output("res", res)
        }
        _ => {
            tracing::error!(run_id = %id, "the run's status blob is not a report or a progress document");
            http_error(500, &format!("the status of run {id} is unreadable"))
        }
    }
}

/// `Audit`: the daily inventory and findings.
pub async fn audit(State(h): State<Handler>, body: Bytes) -> InvocationResponse {
    let invocation = Invocation::parse(&body).unwrap_or_default();
    let trigger = Trigger {
        kind: TriggerKind::Timer,
        invocation_id: invocation.invocation_id(),
        ..Trigger::default()
    };
    let mut inventory = crate::audit::run(
        &h.app,
        crate::audit::AuditRequest {
            trigger: Some(trigger),
            thresholds: h.app.settings.expiry_warning_days,
            ..Default::default()
        },
    )
    .await;
    let severity = inventory
        .worst()
        .unwrap_or(crate::inventory::Severity::Info);
    crate::notify::send_inventory(&h.app.settings, &h.app.http, &mut inventory, severity).await;
    inventory_outputs(inventory)
}

/// A near-expiry or expired event: the inventory of that one secret, its consumers at risk and the deadline.
/// Answered as [`outcome::next`] decides, like a rotation's job.
async fn expiry_job(
    h: &Handler,
    job: &RefreshJob,
    trigger: Trigger,
    key: &str,
    count: u64,
) -> InvocationResponse {
    let event = SecretEvent {
        kind: job.event_kind,
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone().unwrap_or_default(),
        vault: job.vault.clone(),
        secret: job.secret.clone(),
        version: job.version.clone(),
        secret_url: job.secret_url.clone(),
        not_before: None,
        expires: None,
    };
    let (mut inventory, severity) =
        crate::audit::for_expiry_event(&h.app, &event, trigger, Some(job.id.clone())).await;
    let delivery = Delivery::Queued {
        count,
        max: MAX_DEQUEUE_COUNT,
        held_elsewhere: false,
    };
    let outcome = outcome::next(RunEnd::of_inventory(&inventory), delivery);
    if outcome == Outcome::Redeliver {
        return redeliver(&job.id, count, &format!("inventory {}", inventory.id));
    }
    if inventory.complete {
        h.dedupe.complete(key, &inventory.id);
    }
    crate::notify::send_inventory(&h.app.settings, &h.app.http, &mut inventory, severity).await;
    let response = inventory_outputs(inventory);
    match outcome {
        Outcome::Park => park(response, job, count),
        _ => response,
    }
}

/// The inventory to the blob output, and a line to the attention queue when it needs a person.
fn inventory_outputs(inventory: crate::inventory::Inventory) -> InvocationResponse {
    let s = &inventory.summary;
    let mut response = InvocationResponse::ok().log(format!(
        "inventory {}: {} secrets, {} references, {} critical, {} warning",
        inventory.id, s.secrets, s.references, s.critical, s.warning
    ));
    if s.attention {
        response = response.output("attention", inventory_attention(&inventory));
    }
    let value = serde_json::to_value(&inventory).unwrap_or(Value::Null);
    response.output("report", value)
}

/// The message on `refresh-attention` for an inventory that needs a person.
fn inventory_attention(inventory: &crate::inventory::Inventory) -> Value {
    json!({"inventoryId": inventory.id, "summary": inventory.summary})
}

fn report_outputs(report: Report) -> InvocationResponse {
    let attention = report.summary.attention.then(|| report_attention(&report));
    let value = serde_json::to_value(&report).unwrap_or(Value::Null);
    let mut response = InvocationResponse::ok()
        .log(format!(
            "report {}: {} affected, {} re-saved, {} tests failed",
            report.id, report.summary.affected, report.summary.resaved, report.summary.tests_failed
        ))
        .output("report", value);
    if let Some(attention) = attention {
        response = response.output("attention", attention);
    }
    response
}

/// The message on `refresh-attention` for a report that needs a person.
fn report_attention(report: &Report) -> Value {
    json!({"reason": "attention", "reportId": report.id, "secret": report.secret.as_ref().map(|s| format!("{}/{}", s.vault, s.name)), "summary": report.summary})
}

fn duplicate_report(
    h: &Handler,
    job: &RefreshJob,
    trigger: Trigger,
    previous_id: String,
) -> Report {
    tracing::info!(job_id = %job.id, previous = %previous_id, "duplicate delivery: already refreshed");
    let mut report = Report::start(
        job.id.clone(),
        crate::report::Command::Refresh,
        false,
        trigger,
        &h.app.settings.scopes,
    );
    report.secret = Some(crate::report::SecretInfo {
        vault: job.vault.clone(),
        name: job.secret.clone(),
        version: job.version.clone(),
        metadata: "notRead".into(),
        ..Default::default()
    });
    report.findings.push(crate::report::Finding {
        code: crate::report::FindingCode::DuplicateDelivery,
        severity: crate::report::Severity::Info,
        message: format!(
            "This (vault, secret, version) was already refreshed by report {previous_id}; nothing was done again."
        ),
        subject: None,
        vault_url: None,
        fix: Vec::new(),
        owner: crate::report::Owner::PlatformOwner,
    });
    report.duplicate_of = Some(previous_id);
    report.finish();
    report
}

fn first_error(report: &Report) -> String {
    report
        .errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// A 2xx that tells the host not to retry, with the reason in the invocation logs. No outputs: the host
/// only knows the bindings in function.json.
fn rejected(message: &str) -> InvocationResponse {
    tracing::warn!(reason = message, "invocation rejected");
    InvocationResponse::ok().log(message.to_string())
}

fn http_error(status: u16, message: &str) -> InvocationResponse {
    tracing::warn!(status, reason = message, "manual refresh refused");
    InvocationResponse::ok()
        .log(format!("{status}: {message}"))
        .output("res", http_response(status, json!({ "error": message })))
}

fn http_response(status: u16, body: Value) -> Value {
    http_response_with(status, body, &[])
}

fn http_response_with(status: u16, body: Value, extra_headers: &[(&str, String)]) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert("Content-Type".into(), json!("application/json"));
    for (name, value) in extra_headers {
        headers.insert((*name).to_string(), json!(value));
    }
    json!({ "statusCode": status, "headers": headers, "body": body })
}

fn header(req: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    let headers = req.get("Headers")?.as_object()?;
    let (_, value) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    match value {
        Value::Array(items) => items.first()?.as_str().map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The manual request body: `{"vault","secret","version"?,"dryRun"?,"scope"?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRequest {
    pub vault: String,
    pub secret: String,
    pub version: Option<String>,
    pub dry_run: bool,
    pub scopes: Vec<Scope>,
}

impl ManualRequest {
    /// Parses and validates, naming the field at fault.
    pub fn parse(raw: &str) -> Result<ManualRequest, String> {
        if raw.trim().is_empty() {
            return Err("the body is empty; send {\"vault\":…,\"secret\":…}".into());
        }
        let value: Value =
            serde_json::from_str(raw).map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let Value::Object(o) = value else {
            return Err(format!(
                "the body is {}, not an object",
                event::json_kind(&value)
            ));
        };
        for key in o.keys() {
            if !["vault", "secret", "version", "dryRun", "scope"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown field `{}`; expected vault, secret, version, dryRun, scope",
                    key.chars().take(64).collect::<String>()
                ));
            }
        }
        let name = |field: &str, max: usize, required: bool| -> Result<Option<String>, String> {
            match o.get(field) {
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(format!("`{field}` is required")),
                Some(Value::String(s)) if s.is_empty() => Err(format!("`{field}` is empty")),
                Some(Value::String(s)) if s.len() > max => {
                    Err(format!("`{field}` is longer than {max} characters"))
                }
                Some(Value::String(s))
                    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    Err(format!(
                        "`{field}` may hold only letters, digits and dashes"
                    ))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "`{field}` must be a string, not {}",
                    event::json_kind(other)
                )),
            }
        };
        let vault = name("vault", 24, true)?.unwrap_or_default();
        let secret = name("secret", 127, true)?.unwrap_or_default();
        let version = name("version", 64, false)?;
        let dry_run = match o.get("dryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "`dryRun` must be true or false, not {}",
                    event::json_kind(other)
                ));
            }
        };
        let scopes = match o.get("scope") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![Scope::parse(s).map_err(|e| format!("`scope`: {e}"))?],
            Some(Value::Array(items)) if items.len() <= 100 => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| "`scope` must hold strings".to_string())
                        .and_then(|s| Scope::parse(s).map_err(|e| format!("`scope`: {e}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err("`scope` must be a scope string or an array of at most 100".into());
            }
        };
        Ok(ManualRequest {
            vault,
            secret,
            version,
            dry_run,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_requests_name_the_field_at_fault() {
        let cases = [
            ("", "empty"),
            ("[1]", "not an object"),
            ("{", "not valid JSON"),
            (r#"{"secret":"s"}"#, "`vault` is required"),
            (r#"{"vault":"v"}"#, "`secret` is required"),
            (r#"{"vault":7,"secret":"s"}"#, "`vault` must be a string"),
            (
                r#"{"vault":"v","secret":"s/../x"}"#,
                "`secret` may hold only",
            ),
            (
                r#"{"vault":"v","secret":"s","dryRun":"yes"}"#,
                "`dryRun` must be true or false",
            ),
            (r#"{"vault":"v","secret":"s","scope":"/nope"}"#, "`scope`"),
            (
                r#"{"vault":"v","secret":"s","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"vault":"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv","secret":"s"}"#,
                "`vault` is longer",
            ),
        ];
        for (body, expected) in cases {
            let err = ManualRequest::parse(body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let ok = ManualRequest::parse(
            r#"{"vault":"kv","secret":"s","dryRun":true,"scope":"/subscriptions/x"}"#,
        )
        .unwrap();
        assert!(ok.dry_run);
        assert_eq!(ok.scopes.len(), 1);
    }

    #[test]
    fn jobs_of_one_version_share_a_key() {
        let e = SecretEvent {
            kind: EventKind::NewVersion,
            event_id: None,
            event_type: "Microsoft.KeyVault.SecretNewVersionCreated".into(),
            vault: "KV".into(),
            secret: "S".into(),
            version: Some("V".into()),
            secret_url: None,
            not_before: None,
            expires: None,
        };
        let (a, b) = (job_from_event(&e), job_from_event(&e));
        assert_ne!(a.id, b.id);
        assert_eq!(a.dedupe_key(), b.dedupe_key());
        assert_eq!(a.date.len(), 10);
    }
}
