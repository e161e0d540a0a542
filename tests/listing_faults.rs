//! Listings that Azure answers badly, against the real binary and the emulator: a `null` or non-object item in a
//! linked-service or credential page, an error object in place of a Key Vault versions page, a Key Vault
//! `nextLink` to another port, a listing that loops to itself, and a Synapse PUT throttled again and again. Each
//! once (the run recovers and misses nothing) and for good (the run says what it could not read and claims
//! nothing about it).

mod common;

use adf_emulator::{
    Emulator, Faults, KvPageFault, KvPageFaultKind, Options, PageFault, PageFaultKind, Synapse429,
};
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "contoso-kv/sql-password";
const LATEST: &str = "00000000000000000000000000000002";
const ITEM_KINDS: [PageFaultKind; 2] = [PageFaultKind::NullItem, PageFaultKind::NonObjectItem];
const COLLECTIONS: [&str; 2] = ["linkedservices", "credentials"];

fn subscription() -> String {
    format!("/subscriptions/{SUB}")
}

async fn start(seed: Value, page_size: usize, kv_page_size: usize, faults: Faults) -> Emulator {
    adf_emulator::start(
        seed,
        Options {
            page_size,
            kv_page_size,
            faults,
            ..Options::default()
        },
    )
    .await
    .expect("emulator starts")
}

/// `command` of the binary for `contoso-kv/sql-password` over the subscription, with extra settings.
async fn run(emu: &Emulator, command: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = common::command(emu, &subscription());
    cmd.envs(env.iter().copied()).args([
        command,
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    let run = exec(cmd).await;
    for text in [&run.stdout, &run.stderr] {
        assert_no_secrets(emu, text);
    }
    run
}

fn page_faults(collection: &str, kind: PageFaultKind, times: u64) -> Faults {
    Faults {
        page_faults: vec![PageFault {
            collection: collection.into(),
            kind,
            times,
        }],
        ..Faults::default()
    }
}

fn kv_faults(kind: KvPageFaultKind, page: u64, times: u64) -> Faults {
    Faults {
        kv_page_faults: vec![KvPageFault { kind, page, times }],
        ..Faults::default()
    }
}

/// Every target as `factory/name`, sorted.
fn target_names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}/{}",
                t["factory"].as_str().unwrap_or_default(),
                t["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    names.sort();
    names
}

fn errors(report: &Value) -> Vec<Value> {
    report["errors"].as_array().cloned().unwrap_or_default()
}

/// Whether `errors[]` names `subject` (any case).
fn names(errors: &[Value], subject: &str) -> bool {
    errors.iter().any(|e| {
        e["subject"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(subject))
    })
}

fn codes_about(findings: &Value, subject: &str) -> Vec<String> {
    findings
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["subject"].as_str().is_some_and(|s| s.ends_with(subject)))
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

/// What a clean plan finds: its targets, and how many linked services and credentials it read.
async fn baseline() -> (Vec<String>, Value, Value) {
    let emu = start(estate(), 2, 25, Faults::default()).await;
    let report = run(&emu, "plan", &[]).await.report();
    assert_eq!(report["complete"], true);
    (
        target_names(&report),
        report["summary"]["linkedServicesScanned"].clone(),
        report["summary"]["credentialsScanned"].clone(),
    )
}

#[tokio::test]
async fn a_null_or_non_object_item_once_in_a_linked_service_or_credential_page_is_read_again_and_nothing_is_missed()
 {
    let (expected, linked_services, credentials) = baseline().await;
    assert!(expected.iter().any(|t| t.ends_with("/SpCredential")));
    let cases = COLLECTIONS.into_iter().flat_map(|collection| {
        ITEM_KINDS.map(|kind| async move {
            let emu = start(estate(), 2, 25, page_faults(collection, kind, 1)).await;
            let run = run(&emu, "plan", &[]).await;
            (collection, kind, emu, run)
        })
    });
    for (collection, kind, emu, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let case = format!("{kind:?} in {collection}");
        assert_eq!(report["complete"], true, "{case}: {}", run.stderr);
        assert_eq!(report["errors"], json!([]), "{case}");
        assert_eq!(target_names(&report), expected, "{case}");
        assert_eq!(
            report["summary"]["linkedServicesScanned"], linked_services,
            "{case}"
        );
        assert_eq!(
            report["summary"]["credentialsScanned"], credentials,
            "{case}"
        );
        assert!(
            emu.state()["faults"]["pageFaults"] == json!([]),
            "{case}: the broken page was served"
        );
    }
}

#[tokio::test]
async fn a_null_or_non_object_item_that_stays_in_a_linked_service_or_credential_page_makes_the_run_incomplete_and_claims_nothing()
 {
    let cases = COLLECTIONS.into_iter().flat_map(|collection| {
        ITEM_KINDS.map(|kind| async move {
            let emu = start(estate(), 2, 25, page_faults(collection, kind, 0)).await;
            // A short budget bounds the retries; the outcome is the same with the default one, only later.
            let run = run(&emu, "refresh", &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "6")]).await;
            (collection, kind, emu, run)
        })
    });
    for (collection, kind, emu, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let case = format!("{kind:?} in {collection}");
        assert_eq!(run.code, 1, "{case}: exit 1 when incomplete");
        assert_eq!(report["complete"], false, "{case}");
        let errors = errors(&report);
        let sales = factory_id(RG, "adf-sales");
        assert!(
            names(&errors, &sales),
            "{case}: the factory is named as not read: {errors:#?}"
        );
        // Every factory's listing is broken, so no consumer was read whole: none is claimed, none written.
        assert_eq!(report["targets"], json!([]), "{case}");
        assert!(emu.requests().iter().all(|r| r.method != "PUT"), "{case}");
    }
}

#[tokio::test]
async fn a_key_vault_error_object_once_on_the_first_or_a_later_versions_page_is_read_again_and_the_metadata_is_right()
 {
    let cases = [0, 1].map(|page| async move {
        // One version a page, so the secret's two versions span two pages.
        let emu = start(
            estate(),
            50,
            1,
            kv_faults(KvPageFaultKind::ErrorObject, page, 1),
        )
        .await;
        let run = run(&emu, "plan", &[]).await;
        (page, emu, run)
    });
    for (page, emu, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let secret = &report["secret"];
        assert_eq!(secret["metadata"], "ok", "page {page}: {}", run.stderr);
        assert_eq!(secret["versionCount"], 2, "page {page}: {secret}");
        assert_eq!(secret["version"], LATEST, "page {page}: {secret}");
        assert_eq!(secret["enabled"], true, "page {page}: {secret}");
        let codes = codes_about(&report["findings"], SECRET);
        assert!(codes.is_empty(), "page {page}: {codes:?}");
        assert!(
            emu.state()["faults"]["kvPageFaults"] == json!([]),
            "page {page}: the error object was served"
        );
        assert_eq!(report["complete"], true, "page {page}");
    }
}

#[tokio::test]
async fn a_key_vault_versions_page_that_stays_an_error_object_reports_the_metadata_unreadable_not_as_no_versions()
 {
    let cases = [0, 1].map(|page| async move {
        let emu = start(
            estate(),
            50,
            1,
            kv_faults(KvPageFaultKind::ErrorObject, page, 0),
        )
        .await;
        let run = run(&emu, "plan", &[]).await;
        (page, run)
    });
    for (page, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let secret = &report["secret"];
        assert_eq!(secret["metadata"], "unavailable", "page {page}: {secret}");
        assert!(
            secret["versionCount"].is_null() && secret["version"].is_null(),
            "page {page}: no version is claimed: {secret}"
        );
        let codes = codes_about(&report["findings"], SECRET);
        assert!(
            codes.contains(&"keyVaultUnavailable".to_string()),
            "page {page}: {codes:?}"
        );
        assert!(
            !codes.iter().any(|c| c.starts_with("secretVersion")),
            "page {page}: nothing is claimed about a version it could not read: {codes:?}"
        );
        // An unreadable listing is the platform's to chase, not the secret owner's.
        let unavailable = report["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["code"] == "keyVaultUnavailable"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            unavailable["owner"], "platformOwner",
            "page {page}: {unavailable}"
        );
        // A listing not read to its end makes the run incomplete (exit 1), but its targets are still planned.
        assert_eq!(report["complete"], false, "page {page}");
        assert_eq!(run.code, 1, "page {page}");
        assert!(
            report["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["stage"] == "keyVault")),
            "page {page}: {}",
            report["errors"]
        );
        assert!(
            report["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "page {page}"
        );
    }
}

#[tokio::test]
async fn an_audit_whose_versions_page_stays_an_error_object_claims_nothing_about_that_secret() {
    let cases = [0, 1].map(|page| async move {
        let emu = start(
            estate(),
            50,
            1,
            kv_faults(KvPageFaultKind::ErrorObject, page, 0),
        )
        .await;
        let mut cmd = common::command(&emu, &subscription());
        cmd.args(["audit", "--output", "json"]);
        let run = exec(cmd).await;
        (page, run)
    });
    for (page, run) in futures::future::join_all(cases).await {
        let inventory: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("one JSON inventory ({e}): {}", run.stderr));
        let codes = codes_about(&inventory["findings"], SECRET);
        for claim in [
            "danglingSecret",
            "secretExpired",
            "secretExpiring",
            "secretNotYetValid",
            "latestVersionDisabled",
        ] {
            assert!(
                !codes.iter().any(|c| c == claim),
                "page {page}: no {claim} for a secret it could not read: {codes:?}"
            );
        }
        // The inventory says it could not read the secret: an entry marked unreadable, and an error naming it.
        let entry = inventory["secrets"]
            .as_array()
            .and_then(|s| {
                s.iter().find(|s| {
                    s["vaultUrl"] == "https://contoso-kv.vault.azure.net/"
                        && s["secret"] == "sql-password"
                })
            })
            .unwrap_or_else(|| panic!("page {page}: sql-password is listed"));
        assert_eq!(entry["status"], "unreadable", "page {page}: {entry}");
        assert!(
            entry["consumers"].as_array().is_some_and(|c| !c.is_empty()),
            "page {page}: its consumers are still listed"
        );
        assert_eq!(inventory["complete"], false, "page {page}");
        assert_eq!(run.code, 1, "page {page}: exit 1 when incomplete");
        let errors = errors(&inventory);
        assert!(
            errors.iter().any(|e| e["stage"] == "keyVault"
                && e["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("sql-password"))),
            "page {page}: {errors:#?}"
        );
    }
}

#[tokio::test]
async fn a_key_vault_next_link_to_another_port_is_never_connected_to_and_if_it_stays_the_metadata_is_unreadable()
 {
    let cases = [1, 0].map(|times| async move {
        let emu = start(
            estate(),
            50,
            1,
            kv_faults(KvPageFaultKind::ForeignPortNextLink, 0, times),
        )
        .await;
        let run = run(&emu, "plan", &[]).await;
        (times, emu, run)
    });
    for (times, emu, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let trap = emu.trap();
        assert_eq!(emu.trap_connections(), 0, "{times} time(s): {trap:?}");
        assert!(
            !trap.authorization_seen,
            "{times} time(s): no token went to the other port"
        );
        let secret = &report["secret"];
        let codes = codes_about(&report["findings"], SECRET);
        if times == 1 {
            // The page is read again from the vault itself, and the listing goes on to its end.
            assert_eq!(secret["metadata"], "ok", "{secret}");
            assert_eq!(secret["versionCount"], 2, "{secret}");
            assert_eq!(secret["version"], LATEST, "{secret}");
            assert!(codes.is_empty(), "{codes:?}");
            assert!(
                emu.state()["faults"]["kvPageFaults"] == json!([]),
                "the foreign nextLink was served"
            );
        } else {
            assert_eq!(secret["metadata"], "unavailable", "{secret}");
            assert!(
                secret["versionCount"].is_null() && secret["version"].is_null(),
                "not read as no versions: {secret}"
            );
            assert_eq!(report["complete"], false, "a listing not read to its end");
            assert_eq!(run.code, 1);
            assert!(
                codes.contains(&"keyVaultUnavailable".to_string()),
                "{codes:?}"
            );
            assert!(
                !codes.iter().any(|c| c.starts_with("secretVersion")),
                "{codes:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_linked_service_listing_that_loops_to_itself_fails_that_factory_within_seconds() {
    let emu = start(
        estate(),
        2,
        25,
        page_faults("linkedservices", PageFaultKind::LoopingNextLink, 0),
    )
    .await;
    let began = Instant::now();
    let run = run(&emu, "plan", &[]).await;
    let took = began.elapsed();
    let report = run.report();
    assert!(
        took < Duration::from_secs(30),
        "a loop is broken at once, not followed: {took:?}"
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["complete"], false);
    let errors = errors(&report);
    let sales = factory_id(RG, "adf-sales");
    assert!(
        errors.iter().any(|e| e["subject"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(&sales))
            && e["message"].as_str().is_some_and(|m| m.contains("loops"))),
        "the factory is named, and the loop is what broke it: {errors:#?}"
    );
    assert_eq!(report["targets"], json!([]));
    let sales_pages = emu
        .requests()
        .iter()
        .filter(|r| r.path.contains("/factories/adf-sales/linkedservices"))
        .count();
    assert!(
        sales_pages < 20,
        "no page is read over and over: {sales_pages} requests"
    );
}

// ---- Synapse ----

const WS: &str = "syn-faults";

fn workspace_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Synapse/workspaces/{WS}")
}

/// One workspace (no factory) with two linked services that use `kv1/sql-password`, both re-saved at once.
fn synapse_estate() -> Value {
    let kv_ref = json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": "ls_kv", "type": "LinkedServiceReference"}, "secretName": "sql-password"});
    let pool = |name: &str| {
        json!({"name": name, "put": {"response": "ok"}, "properties": {"type": "AzureSqlDW", "typeProperties": {
            "connectionString": format!("Data Source=syn.sql.azuresynapse.net;Initial Catalog={name};User ID=etl"),
            "password": kv_ref.clone()}}})
    };
    json!({
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [{"name": RG, "workspaces": [
            {"name": WS, "retryAfterSecs": 0, "linkedServices": [
                {"name": "ls_kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://kv1.vault.azure.net/"}}},
                pool("ls_sales"),
                pool("ls_finance")]}]}]}],
        "vaults": [{"name": "kv1", "secrets": [{"name": "sql-password", "versions": [
            {"version": LATEST, "value": "FAKE-TEST-ONLY-synapse", "enabled": true, "created": 1760000000}]}]}]
    })
}

async fn run_synapse(emu: &Emulator, command: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = common::command(emu, &format!("/subscriptions/{SUB}/resourceGroups/{RG}"));
    cmd.envs(env.iter().copied()).args([
        command,
        "--vault",
        "kv1",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    let run = exec(cmd).await;
    for text in [&run.stdout, &run.stderr] {
        assert_no_secrets(emu, text);
    }
    run
}

#[tokio::test]
async fn a_synapse_put_throttled_more_times_than_the_retry_attempts_is_waited_out_and_saved() {
    // Ten 429s, more than the eight attempts a failure is allowed: a 429 is back-pressure, not a failure.
    let emu = start(
        synapse_estate(),
        50,
        25,
        Faults {
            synapse429: Some(Synapse429 {
                times: 10,
                retry_after_secs: 1,
            }),
            ..Faults::default()
        },
    )
    .await;
    let run = run_synapse(&emu, "refresh", &[]).await;
    let report = run.report();
    assert_eq!(report["errors"], json!([]), "{}", run.stderr);
    assert_eq!(report["complete"], true);
    let ws = workspace_id();
    for name in ["ls_sales", "ls_finance"] {
        let t = report["targets"]
            .as_array()
            .and_then(|t| {
                t.iter().find(|t| {
                    t["name"] == name
                        && t["factory"]
                            .as_str()
                            .is_some_and(|f| f.eq_ignore_ascii_case(&ws))
                })
            })
            .unwrap_or_else(|| panic!("no target {name}: {}", report["targets"]));
        assert_eq!(t["resave"]["status"], "ok", "{t}");
    }
    let puts: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.host_kind == "synapse" && r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        puts.iter().filter(|s| **s == 429).count(),
        10,
        "every 429 was waited out: {puts:?}"
    );
    assert_eq!(puts.iter().filter(|s| **s == 200).count(), 2, "{puts:?}");
    assert_eq!(emu.counters().throttled, 10);
}

#[tokio::test]
async fn a_synapse_put_throttled_past_the_run_budget_is_not_claimed_as_saved() {
    let emu = start(
        synapse_estate(),
        50,
        25,
        Faults {
            synapse429: Some(Synapse429 {
                times: 1000,
                retry_after_secs: 1,
            }),
            ..Faults::default()
        },
    )
    .await;
    let began = Instant::now();
    let run = run_synapse(&emu, "refresh", &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "5")]).await;
    let took = began.elapsed();
    let report = run.report();
    assert!(
        took < Duration::from_secs(30),
        "the budget bounds the wait: {took:?}"
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["complete"], false);
    let errors = errors(&report);
    assert!(
        errors
            .iter()
            .any(|e| e["transient"] == true
                && e["message"].as_str().is_some_and(|m| m.contains("429"))),
        "the throttling is named, and a retry may help: {errors:#?}"
    );
    // Nothing was accepted, so no consumer is claimed as re-saved.
    let targets = report["targets"].as_array().cloned().unwrap_or_default();
    assert_eq!(targets.len(), 2, "{targets:#?}");
    for t in &targets {
        assert!(
            t["resave"]["status"] == "failed" || t["resave"]["status"] == "notReached",
            "{t}"
        );
    }
    let accepted = emu
        .requests()
        .iter()
        .filter(|r| r.host_kind == "synapse" && r.method == "PUT" && r.status != 429)
        .count();
    assert_eq!(accepted, 0, "nothing was accepted");
}

#[tokio::test]
async fn a_broken_synapse_linked_service_or_credential_page_once_is_read_again_and_for_good_makes_the_run_incomplete()
 {
    let cases = COLLECTIONS.into_iter().flat_map(|collection| {
        ITEM_KINDS.into_iter().flat_map(move |kind| {
            [1, 0].map(|times| async move {
                let emu = start(
                    synapse_estate(),
                    1,
                    25,
                    page_faults(collection, kind, times),
                )
                .await;
                let run =
                    run_synapse(&emu, "plan", &[("ADF_REFRESH_RUN_BUDGET_SECONDS", "6")]).await;
                (collection, kind, times, emu, run)
            })
        })
    });
    let ws = workspace_id();
    for (collection, kind, times, emu, run) in futures::future::join_all(cases).await {
        let report = run.report();
        let case = format!("{kind:?} in {collection}, {times} time(s)");
        let mut names_found = target_names(&report);
        names_found
            .iter_mut()
            .for_each(|n| *n = n.to_ascii_lowercase());
        if times == 1 {
            assert_eq!(report["complete"], true, "{case}: {}", run.stderr);
            assert_eq!(report["errors"], json!([]), "{case}");
            assert_eq!(report["summary"]["linkedServicesScanned"], 3, "{case}");
            let expected: Vec<String> = ["ls_finance", "ls_sales"]
                .iter()
                .map(|n| format!("{ws}/{n}").to_ascii_lowercase())
                .collect();
            assert_eq!(names_found, expected, "{case}");
            assert!(
                emu.state()["faults"]["pageFaults"] == json!([]),
                "{case}: the broken page was served"
            );
        } else {
            assert_eq!(run.code, 1, "{case}: exit 1 when incomplete");
            assert_eq!(report["complete"], false, "{case}");
            let errors = errors(&report);
            assert!(
                names(&errors, &ws),
                "{case}: the workspace is named: {errors:#?}"
            );
            assert_eq!(
                report["targets"],
                json!([]),
                "{case}: no consumer is claimed"
            );
        }
    }
}
