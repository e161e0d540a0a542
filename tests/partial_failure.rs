//! A report is complete only when it is: broken pages, unusual names and look-alike vaults against the real
//! binary and the emulator. Each network fault once (the run recovers and misses nothing) and for good (the
//! report is incomplete, exit 1, and claims nothing about what it could not read).

mod common;

use adf_emulator::{Faults, PageFault, PageFaultKind};
use common::*;
use serde_json::{Value, json};

fn subscription() -> String {
    format!("/subscriptions/{SUB}")
}

async fn run(emu: &adf_emulator::Emulator, scope: &str, command: &str) -> Run {
    run_with(emu, scope, command, &[]).await
}

async fn run_with(
    emu: &adf_emulator::Emulator,
    scope: &str,
    command: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = common::command(emu, scope);
    cmd.envs(env.iter().copied());
    cmd.args([
        command,
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    exec(cmd).await
}

fn target_names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["targets"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| format!("{}/{}", t["factory"], t["name"]))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn page_fault(kind: PageFaultKind, times: u64) -> Faults {
    Faults {
        page_faults: vec![PageFault {
            collection: "linkedservices".into(),
            kind,
            times,
        }],
        ..Faults::default()
    }
}

const KINDS: [PageFaultKind; 4] = [
    PageFaultKind::TruncatedBody,
    PageFaultKind::NotJson,
    PageFaultKind::NeitherValueNorNextLink,
    PageFaultKind::ForeignNextLink,
];

/// The targets a clean plan finds, to compare a faulty run with.
async fn baseline() -> Vec<String> {
    let emu = emulator(estate(), 2).await;
    let report = run(&emu, &subscription(), "plan").await.report();
    assert_eq!(report["complete"], true);
    target_names(&report)
}

#[tokio::test]
async fn a_broken_page_once_is_retried_and_nothing_is_missed() {
    let expected = baseline().await;
    assert!(!expected.is_empty());
    for kind in KINDS {
        let emu = emulator_with_faults(estate(), 2, page_fault(kind, 1)).await;
        let run = run(&emu, &subscription(), "plan").await;
        let report = run.report();
        assert_eq!(report["complete"], true, "{kind:?}: {}", run.stderr);
        assert_eq!(report["errors"], json!([]), "{kind:?}");
        assert_eq!(target_names(&report), expected, "{kind:?}");
        assert_eq!(
            report["summary"]["linkedServicesScanned"], 18,
            "{kind:?}: every linked service was read"
        );
        assert!(
            emu.requests().iter().all(|r| !r.path.contains("attacker")),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_page_that_stays_broken_makes_the_report_incomplete_and_claims_nothing() {
    let runs = KINDS.map(|kind| async move {
        let emu = emulator_with_faults(estate(), 2, page_fault(kind, 0)).await;
        // A short budget bounds the retries; the outcome is the same with the default one, only later.
        let run = run_with(
            &emu,
            &subscription(),
            "refresh",
            &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "6")],
        )
        .await;
        (kind, emu, run)
    });
    for (kind, emu, run) in futures::future::join_all(runs).await {
        let report = run.report();
        assert_eq!(run.code, 1, "{kind:?}: exit 1 when incomplete");
        assert_eq!(report["complete"], false, "{kind:?}");
        assert_eq!(report["summary"]["attention"], true, "{kind:?}");
        let errors = report["errors"].as_array().cloned().unwrap_or_default();
        let sales = factory_id(RG, "adf-sales");
        assert!(
            errors.iter().any(|e| e["subject"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&sales))
                && e["transient"] == true),
            "{kind:?}: the factory is named as not read, and a retry may help: {errors:#?}"
        );
        // Nothing was read completely, so nothing is claimed and nothing is written.
        assert_eq!(report["targets"], json!([]), "{kind:?}");
        assert!(emu.requests().iter().all(|r| r.method != "PUT"), "{kind:?}");
    }
}

/// An estate whose names use letters Azure allows beyond ASCII, beside a group whose name is an ASCII prefix.
fn unicode_estate() -> Value {
    json!({
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": "rgé-daten", "factories": [
                {"name": "fäbrik-ü", "location": "westeurope", "linkedServices": [
                    kv_ls("KV", "https://contoso-kv.vault.azure.net/"),
                    sql("Verknüpfung Süd", kv_ref("KV", json!("sql-password")))]}
            ]},
            {"name": "rgab", "factories": [
                {"name": "adf-ab", "location": "westeurope", "linkedServices": [
                    kv_ls("KV", "https://contoso-kv.vault.azure.net/"),
                    sql("AbSql", kv_ref("KV", json!("sql-password")))]}
            ]}
        ]}],
        "vaults": [{"name": "contoso-kv", "secrets": [{"name": "sql-password", "versions": [
            {"version": "00000000000000000000000000000002", "value": SQL_PASSWORD_V2, "enabled": true, "created": 1760000000}
        ]}]}]
    })
}

#[tokio::test]
async fn unicode_resource_groups_and_names_work_end_to_end() {
    let emu = emulator(unicode_estate(), 2).await;
    let scopes = format!(
        "/subscriptions/{SUB}/resourceGroups/rgab,/subscriptions/{SUB}/resourceGroups/rgé-daten"
    );
    let run = run(&emu, &scopes, "refresh").await;
    let report = run.report();
    assert_eq!(report["complete"], true, "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<&str> = report["targets"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["AbSql", "Verknüpfung Süd"]);
    let unicode = target(&report, "Verknüpfung Süd");
    assert_eq!(unicode["resave"]["status"], "ok");
    assert_eq!(unicode["test"]["status"], "passed");
    let put = emu
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.contains("Verkn"))
        .expect("the Unicode linked service was re-saved");
    assert!(
        put.path
            .ends_with("/linkedservices/Verkn%C3%BCpfung%20S%C3%BCd"),
        "{}",
        put.path
    );
}

#[tokio::test]
async fn a_hostile_integration_runtime_name_cannot_steer_a_request() {
    let hostile = "x/../../../../pipelines/p1/createRun?api-version=2018-06-01#";
    let mut seed = estate();
    let sales =
        &mut seed["subscriptions"][0]["resourceGroups"][0]["factories"][0]["linkedServices"];
    let Some(list) = sales.as_array_mut() else {
        panic!("the estate's first factory has linked services");
    };
    list.push(with(
        sql("HostileSql", kv_ref("KeyVault", json!("sql-password"))),
        "/properties/connectVia",
        json!({"referenceName": hostile, "type": "IntegrationRuntimeReference"}),
    ));
    let emu = emulator(seed, 50).await;
    let run = run(&emu, &subscription(), "refresh").await;
    let report = run.report();
    assert!(target(&report, "HostileSql").is_object());
    for r in emu.requests().iter().filter(|r| r.host_kind == "arm") {
        assert!(
            !r.path.to_ascii_lowercase().contains("/pipelines/"),
            "a name from a definition chose the path: {} {}",
            r.method,
            r.path
        );
        if r.method == "POST" {
            let path = r.path.to_ascii_lowercase();
            assert!(
                path.ends_with("/getstatus") || path.ends_with("/testconnectivity"),
                "unexpected POST {}",
                r.path
            );
        }
    }
    let status_calls: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("x%2F..%2F"))
        .map(|r| r.path)
        .collect();
    assert_eq!(status_calls.len(), 1, "{status_calls:?}");
    assert!(
        status_calls[0].ends_with("%23/getStatus"),
        "{status_calls:?}"
    );
}

#[tokio::test]
async fn a_resaved_target_whose_test_could_not_run_needs_attention() {
    let seed = json!({
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": RG, "factories": [
                {"name": "adf-onprem", "location": "westeurope",
                 "integrationRuntimes": [
                    {"name": "shir-onprem", "properties": {"type": "SelfHosted"}, "state": "Offline"}],
                 "linkedServices": [
                    kv_ls("KV", "https://contoso-kv.vault.azure.net/"),
                    with(
                        sql("OnPremSql", kv_ref("KV", json!("sql-password"))),
                        "/properties/connectVia",
                        json!({"referenceName": "shir-onprem", "type": "IntegrationRuntimeReference"}),
                    )]}
            ]}
        ]}],
        "vaults": [{"name": "contoso-kv", "secrets": [{"name": "sql-password", "versions": [
            {"version": "00000000000000000000000000000002", "value": SQL_PASSWORD_V2, "enabled": true, "created": 1760000000}
        ]}]}]
    });
    let emu = emulator(seed, 50).await;
    let run = run(&emu, &subscription(), "refresh").await;
    let report = run.report();
    let t = target(&report, "OnPremSql");
    assert_eq!(t["resave"]["status"], "ok");
    assert_eq!(t["test"]["status"], "notTested");
    assert_eq!(report["complete"], true);
    assert_eq!(
        report["summary"]["attention"], true,
        "listed under 'Needs attention', so the summary says so too"
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// A token the emulator issued, handed out as is: the page-cap test drives the ARM client directly.
#[derive(Debug)]
struct IssuedToken(String);

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for IssuedToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Ok(azure_core::credentials::AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[tokio::test]
async fn a_listing_longer_than_the_page_cap_is_an_error_not_a_shorter_list() {
    use adf_secret_refresh::azure::{arm, auth, pacer, retry};
    let emu = emulator(estate(), 2).await;
    let http = auth::http_client(Some(&emu.ca_file())).expect("client");
    let token: Value = http
        .get(format!(
            "{}?resource=https://management.azure.com&api-version=2019-08-01",
            emu.identity_endpoint()
        ))
        .header("X-IDENTITY-HEADER", emu.identity_header())
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token JSON");
    let credential = std::sync::Arc::new(IssuedToken(
        token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));
    let client = arm::ArmClient::new(
        http,
        &emu.arm_endpoint(),
        credential,
        auth::CredentialKind::ManagedIdentity,
        std::sync::Arc::new(pacer::Pacer::new(pacer::Limits::default())),
        retry::RetryPolicy::default(),
    );
    let sales = factory_id(RG, "adf-sales");
    let all = client
        .clone()
        .list_linked_services(&sales)
        .await
        .expect("the whole listing");
    assert!(all.len() > 4, "the listing spans several pages of 2");
    let capped = client.with_max_pages(2).list_linked_services(&sales).await;
    match capped {
        Err(e @ arm::ArmError::TooManyPages { .. }) => assert!(e.is_transient()),
        other => panic!("expected the page cap to be an error, got {other:?}"),
    }
}

/// A `SecretNewVersionCreated` event for `contoso-kv/sql-password`, its secret URL under `suffix`.
fn rotation_event(suffix: &str) -> Value {
    json!({
        "id": "6b2e6a2b-6a55-4d5e-9a4f-1f0b3f6c1d2e",
        "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "topic": format!("/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"),
        "subject": "sql-password",
        "eventTime": "2026-01-01T00:00:00Z",
        "dataVersion": "1",
        "data": {
            "Id": format!("https://contoso-kv.{suffix}/secrets/sql-password/00000000000000000000000000000002"),
            "VaultName": "contoso-kv", "ObjectType": "Secret", "ObjectName": "sql-password",
            "Version": "00000000000000000000000000000002"
        }
    })
}

async fn host(emu: &adf_emulator::Emulator) -> adf_emulator::host::HostSimulator {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), subscription()));
    env.push(("ADF_REFRESH_RUN_BUDGET_SECONDS".into(), "6".into()));
    adf_emulator::host::HostSimulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")),
        &env,
    )
    .await
    .expect("handler starts")
}

fn job_of(answer: &adf_emulator::host::Answer) -> Value {
    match answer.output("job") {
        Some(Value::Array(items)) => items.first().cloned().unwrap_or_default(),
        Some(one) => one.clone(),
        None => panic!("no job queued: {:#}", answer.body),
    }
}

#[tokio::test]
async fn the_events_vault_cloud_decides_which_references_match() {
    let emu = emulator(estate(), 50).await;
    let host = host(&emu).await;
    let china = job_of(&host.event_grid(rotation_event("vault.azure.cn")).await);
    let answer = host.queue("RefreshJob", &china, 1).await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let report = answer.output("report").cloned().unwrap_or_default();
    let names: Vec<&str> = report["targets"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["ChinaSql"], "only Azure China's contoso-kv rotated");
    assert_eq!(target(&report, "ChinaSql")["resave"]["status"], "ok");
    host.stop().await;
}

#[tokio::test]
async fn a_refresh_job_whose_listing_stays_broken_asks_the_host_to_redeliver() {
    let emu = emulator(estate(), 2).await;
    let host = host(&emu).await;
    let job = job_of(&host.event_grid(rotation_event("vault.azure.net")).await);
    emu.set_faults(page_fault(PageFaultKind::TruncatedBody, 0));
    let first = host.queue("RefreshJob", &job, 1).await;
    assert_eq!(first.status, 503, "{:#}", first.body);
    assert!(first.body["Logs"].to_string().contains("retry wanted"));
    assert!(emu.requests().iter().all(|r| r.method != "PUT"));
    emu.set_faults(Faults::default());
    let second = host.queue("RefreshJob", &job, 2).await;
    assert_eq!(second.status, 200, "{:#}", second.body);
    let report = second.output("report").cloned().unwrap_or_default();
    assert_eq!(report["complete"], true);
    assert_eq!(report["summary"]["linkedServicesScanned"], 18);
    host.stop().await;
}
