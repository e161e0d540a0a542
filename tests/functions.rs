//! The custom handler under a simulated Functions host: the real binary, the envelopes the host posts, and
//! the emulator as Azure.

mod common;

use common::schema;

use adf_emulator::host::HostSimulator;
use common::*;
use serde_json::{Value, json};
use std::path::Path;

const FUNCTION_KEY: &str = "FAKE-TEST-ONLY-function-key-Zx81kq0w";

fn events_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).expect("sample exists");
    serde_json::from_str(&text).expect("sample is JSON")
}

async fn host(emu: &adf_emulator::Emulator, vaults: &str) -> HostSimulator {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), format!("/subscriptions/{SUB}")));
    env.push(("ADF_REFRESH_VAULTS".into(), vaults.into()));
    env.push(("RUST_LOG".into(), "debug".into()));
    HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
        .await
        .expect("handler starts")
}

/// Fails if the answer sets an output that the function's function.json does not declare: the host only
/// knows the declared bindings.
fn assert_outputs_declared(function: &str, answer: &adf_emulator::host::Answer) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("function")
        .join(function)
        .join("function.json");
    let definition: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("function.json"))
            .expect("JSON");
    let declared: Vec<&str> = definition["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["direction"] == "out")
        .filter_map(|b| b["name"].as_str())
        .collect();
    for name in answer.body["Outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        assert!(
            declared.contains(&name.as_str()),
            "{function} sets output `{name}`, which function.json does not declare"
        );
    }
}

/// The report in an answer's `report` output, checked against the published schema.
fn report_of(answer: &adf_emulator::host::Answer) -> Value {
    let report = answer
        .output("report")
        .expect("the report goes to the blob output")
        .clone();
    schema::assert_valid_report(&report);
    report
}

fn jobs(answer: &adf_emulator::host::Answer) -> Vec<Value> {
    match answer.output("job") {
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
        None => vec![],
    }
}

/// A real sample, retargeted at the estate's vault and secret.
fn rotation_event() -> Value {
    let mut event = sample("kv-secret-new-version-created.eventgrid.restspec.json");
    event["topic"] = json!(format!(
        "/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"
    ));
    event["subject"] = json!("sql-password");
    event["data"]["VaultName"] = json!("contoso-kv");
    event["data"]["ObjectName"] = json!("sql-password");
    event["data"]["Version"] = json!("00000000000000000000000000000002");
    event["data"]["Id"] = json!(
        "https://contoso-kv.vault.azure.net/secrets/sql-password/00000000000000000000000000000002"
    );
    event
}

#[tokio::test]
async fn every_sample_payload_gives_the_right_outcome() {
    let emu = emulator(estate(), 50).await;
    let host = host(&emu, "sample-kv,contoso-kv").await;

    for name in [
        "kv-secret-new-version-created.eventgrid.docs-2021.json",
        "kv-secret-new-version-created.eventgrid.docs-2020-lowercase.json",
        "kv-secret-new-version-created.eventgrid.restspec.json",
        "kv-secret-new-version-created.cloudevents.docs-2021.json",
        "kv-secret-new-version-created.cloudevents.restspec.json",
    ] {
        let answer = host.event_grid(sample(name)).await;
        assert_eq!(answer.status, 200, "{name}");
        let jobs = jobs(&answer);
        assert_eq!(jobs.len(), 1, "{name}: {:?}", answer.body);
        assert_eq!(
            (jobs[0]["vault"].as_str(), jobs[0]["secret"].as_str()),
            (Some("sample-kv"), Some("newsecret")),
            "{name}"
        );
        assert_eq!(jobs[0]["version"], "ee059b2bb5bc48398a53b168c6cdcb10");
        assert_eq!(jobs[0]["eventKind"], "newVersion");
        assert!(
            jobs[0]["id"].is_string() && jobs[0]["date"].is_string(),
            "the blob path needs id and date"
        );
    }
    for (name, kind) in [
        ("kv-secret-near-expiry.eventgrid.DERIVED.json", "nearExpiry"),
        (
            "kv-secret-near-expiry.cloudevents.DERIVED.json",
            "nearExpiry",
        ),
        ("kv-secret-expired.eventgrid.DERIVED.json", "expired"),
        ("kv-secret-expired.cloudevents.DERIVED.json", "expired"),
    ] {
        let answer = host.event_grid(sample(name)).await;
        assert_eq!(jobs(&answer)[0]["eventKind"], kind, "{name}");
    }

    // Whole envelopes as the host posts them: the trigger value as an object and as a JSON string.
    for name in [
        "customhandler-request.eventgrid.DERIVED.json",
        "customhandler-request.eventgrid.DERIVED-string-variant.json",
    ] {
        let answer = host
            .post("KeyVaultSecretEvent", sample(name).to_string().into_bytes())
            .await;
        assert_eq!(answer.status, 200, "{name}");
        assert_eq!(jobs(&answer).len(), 1, "{name}: {:?}", answer.body);
    }

    let validation = host
        .event_grid(sample("eventgrid-subscription-validation.docs.json"))
        .await;
    assert_eq!(
        validation.body["ReturnValue"],
        sample("eventgrid-subscription-validation-response.docs.json")
    );
    assert!(jobs(&validation).is_empty());

    // Envelopes of other triggers are refused with a 2xx (no retry) and a reason.
    let queue_doc = host
        .post(
            "RefreshJob",
            sample("customhandler-request.queue.docs.json")
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(queue_doc.status, 200);
    assert!(queue_doc.output("report").is_none());
    assert!(
        queue_doc.body["Logs"]
            .to_string()
            .contains("no `job` trigger value")
    );
    let http_doc = host
        .post(
            "Refresh",
            sample("customhandler-request.http-not-forwarded.docs.json")
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(
        http_doc.output("res").map(|r| r["statusCode"].clone()),
        Some(json!(400))
    );
    assert!(
        http_doc.output("res").unwrap()["body"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field `id`")
    );
    host.stop().await;
}

#[tokio::test]
async fn a_batch_an_unknown_type_and_a_foreign_vault() {
    let emu = emulator(estate(), 50).await;
    let host = host(&emu, "contoso-kv").await;
    let mut other_secret = rotation_event();
    other_secret["data"]["ObjectName"] = json!("sp-client-secret");
    let mut unknown = rotation_event();
    unknown["eventType"] = json!("Microsoft.KeyVault.KeyNewVersionCreated");
    let foreign = sample("kv-secret-new-version-created.eventgrid.restspec.json");

    let answer = host
        .event_grid(json!([
            rotation_event(),
            other_secret,
            unknown,
            foreign,
            rotation_event()
        ]))
        .await;
    assert_eq!(answer.status, 200);
    let jobs = jobs(&answer);
    let secrets: Vec<&str> = jobs.iter().filter_map(|j| j["secret"].as_str()).collect();
    assert_eq!(
        secrets,
        ["sql-password", "sp-client-secret"],
        "one job per (vault, secret, version); foreign and unknown dropped"
    );
    let logs = answer.body["Logs"].to_string();
    assert!(
        logs.contains("ignored event type Microsoft.KeyVault.KeyNewVersionCreated"),
        "{logs}"
    );
    assert!(
        logs.contains("vault sample-kv is not in ADF_REFRESH_VAULTS"),
        "{logs}"
    );
    // Queuing is all this function does: nothing reached ARM.
    assert!(emu.requests().iter().all(|r| r.host_kind != "arm"));

    let malformed = host.event_grid(json!({"eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": {"VaultName": "contoso-kv"}})).await;
    assert_eq!(malformed.status, 200, "a malformed event is not retried");
    assert!(
        malformed.body["Logs"]
            .to_string()
            .contains("names no secret")
    );
    host.stop().await;
}

#[tokio::test]
async fn an_event_grid_event_runs_all_the_way_to_a_report() {
    let emu = emulator(estate(), 2).await;
    let host = host(&emu, "contoso-kv").await;
    let (queued, answers) = host.rotate(rotation_event(), 5).await;
    assert_eq!(jobs(&queued).len(), 1);
    assert_eq!(answers.len(), 1);
    let answer = &answers[0];
    assert_eq!(answer.status, 200);
    assert_outputs_declared("KeyVaultSecretEvent", &queued);
    assert_outputs_declared("RefreshJob", answer);
    let report = report_of(answer);
    assert!(
        report.is_object(),
        "outputs are JSON documents, never bare strings"
    );
    assert_eq!(
        report["id"],
        jobs(&queued)[0]["id"],
        "the blob path {{id}} is the report id"
    );
    assert_eq!(report["trigger"]["kind"], "queue");
    assert_eq!(
        report["trigger"]["eventId"],
        "00eccf70-95a7-4e7c-8299-2eb17ee9ad64"
    );
    assert_eq!(report["summary"]["resaved"], 7, "{report:#}");
    assert_eq!(target(&report, "SalesSql")["test"]["status"], "passed");
    let attention = answer
        .output("attention")
        .expect("attention is needed: pinned, inline, failed tests");
    assert_eq!(attention["reportId"], report["id"]);

    // A duplicate delivery of the same version does no second round of PUTs.
    let puts_before = emu.counters().puts;
    let (_, again) = host.rotate(rotation_event(), 5).await;
    let duplicate = report_of(&again[0]);
    assert_eq!(duplicate["duplicateOf"], report["id"]);
    assert_eq!(emu.counters().puts, puts_before);

    let logs = host.logs();
    assert_no_secrets(&emu, &logs);
    assert_no_secrets(&emu, &report.to_string());
    host.stop().await;
}

#[tokio::test]
async fn a_transient_outage_asks_the_host_to_retry_and_the_retry_finishes() {
    let emu = emulator(estate(), 50).await;
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), format!("/subscriptions/{SUB}")));
    env.push(("ADF_REFRESH_RUN_BUDGET_SECONDS".into(), "4".into()));
    let (webhook_url, received) = counting_webhook().await;
    env.push(("ADF_REFRESH_WEBHOOK_URL".into(), webhook_url));
    env.push((
        "ADF_REFRESH_WEBHOOK_SECRET".into(),
        "FAKE-TEST-ONLY-hmac-key".into(),
    ));
    let host = HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
        .await
        .expect("starts");
    let queued = host.event_grid(rotation_event()).await;
    let job = jobs(&queued).remove(0);

    emu.set_faults(adf_emulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let first = host.queue("RefreshJob", &job, 1).await;
    assert_eq!(first.status, 503, "{:?}", first.body);
    assert!(first.body["Logs"].to_string().contains("retry wanted"));
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a delivery that asks for a retry does not notify"
    );
    emu.set_faults(adf_emulator::Faults::default());
    let second = host.queue("RefreshJob", &job, 2).await;
    assert_eq!(second.status, 200);
    let report = report_of(&second);
    assert_eq!(report["complete"], true);
    assert_eq!(report["summary"]["resaved"], 7, "{report:#}");
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the final answer notifies once"
    );
    assert_eq!(report["notifications"][0]["delivered"], true);
    host.stop().await;
}

/// A loopback webhook receiver that counts what it receives.
async fn counting_webhook() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn manual_refresh_validates_its_body_and_never_logs_the_key() {
    let emu = emulator(estate(), 50).await;
    let host = host(&emu, "contoso-kv").await;
    let status = |a: &adf_emulator::host::Answer| a.output("res").map(|r| r["statusCode"].clone());
    let error = |a: &adf_emulator::host::Answer| {
        a.output("res")
            .map(|r| r["body"]["error"].to_string())
            .unwrap_or_default()
    };

    for (body, code, needle) in [
        ("", 400, "empty"),
        ("{not json", 400, "not valid JSON"),
        (r#"{"secret":"sql-password"}"#, 400, "`vault` is required"),
        (
            r#"{"vault":"contoso-kv","secret":12}"#,
            400,
            "`secret` must be a string",
        ),
        (
            r#"{"vault":"contoso-kv","secret":"sql-password","dryRun":"yes"}"#,
            400,
            "`dryRun`",
        ),
        (
            r#"{"vault":"elsewhere-kv","secret":"sql-password"}"#,
            403,
            "not in ADF_REFRESH_VAULTS",
        ),
        (
            r#"{"vault":"contoso-kv","secret":"sql-password","scope":"/subscriptions/22222222-2222-2222-2222-222222222222"}"#,
            403,
            "inside the configured scope",
        ),
    ] {
        let answer = host.http("Refresh", body, FUNCTION_KEY).await;
        assert_eq!(answer.status, 200);
        assert_eq!(status(&answer), Some(json!(code)), "{body}");
        assert!(
            error(&answer).contains(needle),
            "{body}: {}",
            error(&answer)
        );
    }
    let huge = format!(
        r#"{{"vault":"contoso-kv","secret":"sql-password","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    assert_eq!(
        status(&host.http("Refresh", &huge, FUNCTION_KEY).await),
        Some(json!(413))
    );
    let envelope_too_big = host.post("Refresh", vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!(envelope_too_big.status, 413);
    assert!(
        emu.requests().iter().all(|r| r.host_kind != "arm"),
        "nothing reached ARM for a bad request"
    );

    let answer = host
        .http(
            "Refresh",
            &format!(
                r#"{{"vault":"contoso-kv","secret":"sql-password","dryRun":true,"scope":"{}"}}"#,
                factory_id("rg-cn", "adf-china")
            ),
            FUNCTION_KEY,
        )
        .await;
    assert_eq!(
        status(&answer),
        Some(json!(200)),
        "HTTP {}: {}",
        answer.status,
        answer.body
    );
    assert_outputs_declared("Refresh", &answer);
    let report = &answer.output("res").unwrap()["body"];
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["trigger"]["kind"], "http");
    // The factory's reference names `contoso-kv` in Azure China: another vault, so nothing is affected.
    assert_eq!(report["targets"].as_array().map(Vec::len), Some(0));
    assert!(emu.requests().iter().all(|r| r.method != "PUT"));

    let logs = host.logs();
    assert!(
        !logs.contains(FUNCTION_KEY),
        "the function key reached the logs"
    );
    assert!(!logs.contains("code="), "a raw URL reached the logs");
    assert_no_secrets(&emu, &logs);
    host.stop().await;
}

#[tokio::test]
async fn two_deliveries_of_one_job_at_once_do_one_round_of_puts() {
    let emu = emulator(estate(), 50).await;
    let host = host(&emu, "contoso-kv").await;
    let job = jobs(&host.event_grid(rotation_event()).await).remove(0);
    let (a, b) = tokio::join!(
        host.queue("RefreshJob", &job, 1),
        host.queue("RefreshJob", &job, 1)
    );
    assert_eq!((a.status, b.status), (200, 200));
    // Both answers would write `reports/{date}/{id}.json` of the same job: only the run writes it, so that the
    // duplicate does not replace the run's report.
    let reports: Vec<Value> = [&a, &b]
        .into_iter()
        .filter(|answer| answer.output("report").is_some())
        .map(report_of)
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one ran, the other waited and saw it done"
    );
    assert!(reports[0]["duplicateOf"].is_null());
    let quiet = if a.output("report").is_some() { &b } else { &a };
    assert!(
        quiet.body["Logs"].to_string().contains("nothing was done"),
        "{:?}",
        quiet.body
    );
    let puts = emu.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts, 7, "one round of PUTs");
    host.stop().await;
}

/// The handler under the simulated host with extra settings.
async fn host_with(emu: &adf_emulator::Emulator, extra: &[(&str, &str)]) -> HostSimulator {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), format!("/subscriptions/{SUB}")));
    env.push(("ADF_REFRESH_VAULTS".into(), "contoso-kv".into()));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
        .await
        .expect("handler starts")
}

/// `GET /api/refresh/{id}` with the `run` blob (`reports/runs/{id}.json`) as the host would read it.
async fn poll(host: &HostSimulator, id: &str, blob: Option<&Value>) -> (u16, Value, Value) {
    let text = blob.map(Value::to_string);
    let answer = host
        .http_get(
            "RefreshStatus",
            &format!("refresh/{id}"),
            json!({ "id": id }),
            json!({ "run": adf_emulator::host::blob_input(text.as_deref()) }),
            FUNCTION_KEY,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_outputs_declared("RefreshStatus", &answer);
    let res = answer.output("res").cloned().unwrap_or(Value::Null);
    let status = res["statusCode"].as_u64().unwrap_or_default() as u16;
    (status, res["headers"].clone(), res["body"].clone())
}

#[tokio::test]
async fn a_manual_run_longer_than_the_http_window_answers_202_and_finishes_as_a_queued_job() {
    let emu = emulator(estate(), 2).await;
    let host = host_with(&emu, &[("ADF_REFRESH_HTTP_SYNC_SECONDS", "1")]).await;
    // Slow ARM: the run cannot finish in one second.
    emu.set_faults(adf_emulator::Faults {
        latency_ms: 400,
        ..Default::default()
    });
    let answer = host
        .http(
            "Refresh",
            r#"{"vault":"contoso-kv","secret":"sql-password","dryRun":true}"#,
            FUNCTION_KEY,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_outputs_declared("Refresh", &answer);
    let res = answer.output("res").expect("an HTTP answer").clone();
    assert_eq!(res["statusCode"], 202, "{res}");
    let location = res["headers"]["Location"].as_str().unwrap_or_default();
    let id = location
        .strip_prefix("/api/refresh/")
        .expect("Location: /api/refresh/{id}");
    assert!(res["headers"]["Retry-After"].as_str().is_some());
    assert_eq!(res["body"]["status"], "running");
    let job = answer
        .output("job")
        .expect("the run goes on as a queued job")
        .clone();
    assert_eq!(job["id"], id);
    assert_eq!(job["manual"], true);
    assert_eq!(job["dryRun"], true, "a dry run stays a dry run");
    let progress = answer.output("run").expect("the progress document").clone();

    // While the job has not finished, the status answers 202 with Retry-After; an unknown run is 404.
    let (status, headers, body) = poll(&host, id, Some(&progress)).await;
    assert_eq!(status, 202);
    assert_eq!(headers["Location"], location);
    assert!(headers["Retry-After"].is_string());
    assert_eq!(body["id"], id);
    assert_eq!(poll(&host, id, None).await.0, 404);
    assert_eq!(poll(&host, "not-a-run-id!", None).await.0, 404);

    // The queued job runs with the whole run budget and writes the report where the status reads it.
    emu.set_faults(adf_emulator::Faults::default());
    let delivered = host.deliver("RefreshJob", &job, 5).await;
    assert_eq!(delivered.answers.len(), 1);
    let finished = &delivered.answers[0];
    assert_eq!(finished.status, 200);
    assert_outputs_declared("RefreshJob", finished);
    let report = report_of(finished);
    assert_eq!(report["id"], id, "the run id is the report id");
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["trigger"]["kind"], "http");
    assert_eq!(report["complete"], true);
    assert_eq!(finished.output("run"), Some(&report));
    assert!(
        report["duplicateOf"].is_null(),
        "a manual run is never a duplicate"
    );

    let (status, _, body) = poll(&host, id, finished.output("run")).await;
    assert_eq!(status, 200);
    assert_eq!(body, report);
    assert!(
        emu.requests().iter().all(|r| r.method != "PUT"),
        "a dry run writes nothing, synchronously or queued"
    );
    assert!(!host.logs().contains(FUNCTION_KEY));
    host.stop().await;
}

#[tokio::test]
async fn a_manual_run_that_fits_the_http_window_answers_200_and_records_its_report() {
    let emu = emulator(estate(), 50).await;
    let host = host_with(&emu, &[]).await;
    let answer = host
        .http(
            "Refresh",
            r#"{"vault":"contoso-kv","secret":"sql-password","dryRun":true}"#,
            FUNCTION_KEY,
        )
        .await;
    assert_outputs_declared("Refresh", &answer);
    let res = answer.output("res").expect("an HTTP answer");
    assert_eq!(res["statusCode"], 200);
    assert!(answer.output("job").is_none(), "nothing was queued");
    let recorded = answer.output("run").expect("the report is kept for GET");
    assert_eq!(recorded, &res["body"]);
    let id = recorded["id"].as_str().unwrap_or_default().to_string();
    let (status, _, body) = poll(&host, &id, Some(recorded)).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(id.as_str())));
    host.stop().await;
}

#[tokio::test]
async fn the_last_delivery_writes_the_incomplete_report_and_puts_the_job_on_the_poison_queue() {
    let emu = emulator(estate(), 50).await;
    let host = host_with(&emu, &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "2")]).await;
    let job = jobs(&host.event_grid(rotation_event()).await).remove(0);
    emu.set_faults(adf_emulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let delivered = host.deliver("RefreshJob", &job, 5).await;
    let statuses: Vec<u16> = delivered.answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [503, 503, 503, 503, 200],
        "deliveries 1-4 ask for a retry; the 5th (DequeueCount = maxDequeueCount) answers 2xx"
    );
    assert!(
        delivered.moved_to_poison.is_none(),
        "the host moves nothing: the handler answered 2xx"
    );
    let last = &delivered.answers[4];
    assert_outputs_declared("RefreshJob", last);
    let report = report_of(last);
    assert_eq!(report["complete"], false);
    assert!(
        report["findings"].to_string().contains("retriesExhausted"),
        "{}",
        report["findings"]
    );
    let attention = last.output("attention").expect("a person is told");
    assert_eq!(attention["reason"], "retriesExhausted");
    assert_eq!(attention["reportId"], report["id"]);
    let poisoned = last
        .output("poison")
        .expect("the job goes to refresh-jobs-poison");
    let original: Value = match &job {
        Value::String(s) => serde_json::from_str(s).expect("job JSON"),
        other => other.clone(),
    };
    assert_eq!(
        poisoned, &original,
        "kept unchanged, so it can be re-queued as is"
    );
    assert!(
        last.body["Logs"]
            .to_string()
            .contains("refresh-jobs-poison")
    );

    // Re-queued once the outage is over, it completes.
    emu.set_faults(adf_emulator::Faults::default());
    let again = host.deliver("RefreshJob", poisoned, 5).await;
    let report = report_of(&again.answers[0]);
    assert_eq!(report["complete"], true);
    assert_eq!(report["summary"]["resaved"], 7);
    host.stop().await;
}

/// A real near-expiry sample, retargeted at the estate's vault and secret.
fn near_expiry_event() -> Value {
    let mut event = sample("kv-secret-near-expiry.eventgrid.DERIVED.json");
    let event = &mut event[0];
    event["topic"] = json!(format!(
        "/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"
    ));
    event["subject"] = json!("sql-password");
    event["data"]["VaultName"] = json!("contoso-kv");
    event["data"]["ObjectName"] = json!("sql-password");
    event["data"]["Id"] = json!(
        "https://contoso-kv.vault.azure.net/secrets/sql-password/ee059b2bb5bc48398a53b168c6cdcb10"
    );
    event.clone()
}

#[tokio::test]
async fn the_last_delivery_of_an_expiry_job_parks_it_like_a_rotation() {
    let emu = emulator(estate(), 50).await;
    let host = host_with(&emu, &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "2")]).await;
    let job = jobs(&host.event_grid(near_expiry_event()).await).remove(0);
    emu.set_faults(adf_emulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let delivered = host.deliver("RefreshJob", &job, 5).await;
    let statuses: Vec<u16> = delivered.answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [503, 503, 503, 503, 200]);
    let last = &delivered.answers[4];
    assert_outputs_declared("RefreshJob", last);
    let inventory = last.output("report").expect("the inventory is written");
    assert_eq!(inventory["complete"], false);
    let attention = last.output("attention").expect("a person is told");
    assert_eq!(attention["reason"], "retriesExhausted");
    assert_eq!(attention["inventoryId"], inventory["id"]);
    let original: Value = match &job {
        Value::String(s) => serde_json::from_str(s).expect("job JSON"),
        other => other.clone(),
    };
    assert_eq!(last.output("poison"), Some(&original), "parked unchanged");
    host.stop().await;
}
