//! Reliability under the faults a rotation meets: throttling, 5xx, dropped connections, a token outage,
//! people editing the same linked services, and hostile input. The real binary against the emulator.

mod common;

use adf_emulator::{Burst429, ConcurrentEdit, Faults};
use common::*;
use serde_json::Value;
use std::collections::HashMap;

const FACTORIES: usize = 40;
const PER_FACTORY: usize = 10;

fn large_scopes(seed: &Value) -> String {
    adf_emulator::subscription_scopes(seed).join(",")
}

/// (factory id, name) → seeded properties, for every linked service of the estate.
fn seeded(seed: &Value) -> HashMap<(String, String), Value> {
    let mut out = HashMap::new();
    for sub in seed["subscriptions"].as_array().into_iter().flatten() {
        let sid = sub["subscriptionId"].as_str().unwrap_or_default();
        for rg in sub["resourceGroups"].as_array().into_iter().flatten() {
            let rname = rg["name"].as_str().unwrap_or_default();
            for f in rg["factories"].as_array().into_iter().flatten() {
                let fid = factory_id_in(sid, rname, f["name"].as_str().unwrap_or_default());
                for ls in f["linkedServices"].as_array().into_iter().flatten() {
                    out.insert(
                        (
                            fid.clone(),
                            ls["name"].as_str().unwrap_or_default().to_string(),
                        ),
                        ls["properties"].clone(),
                    );
                }
            }
        }
    }
    out
}

fn refresh(emu: &adf_emulator::Emulator, scope: &str) -> std::process::Command {
    let mut cmd = command(emu, scope);
    cmd.args([
        "refresh",
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    cmd
}

#[tokio::test]
async fn a_fault_storm_loses_nothing_and_reports_the_truth() {
    let seed = adf_emulator::large_estate(FACTORIES, PER_FACTORY);
    let before = seeded(&seed);
    let first_factory = before
        .keys()
        .map(|(f, _)| f.clone())
        .min()
        .expect("factories");
    let edited: Vec<(String, String)> = before
        .iter()
        .filter(|((f, _), p)| {
            *f == first_factory
                && p["type"] == "AzureSqlDatabase"
                && p.pointer("/typeProperties/password/secretVersion")
                    .is_none()
                && p.pointer("/typeProperties/password/secretName")
                    == Some(&Value::from("sql-password"))
                && p.pointer("/typeProperties/connectionString/type").is_none()
        })
        .map(|(k, _)| k.clone())
        .take(2)
        .collect();
    assert_eq!(edited.len(), 2, "the estate has plain references to edit");
    let faults = Faults {
        error_rate: 0.10,
        drop_rate: 0.03,
        burst429: Some(Burst429 {
            every: 120,
            length: 4,
            retry_after_secs: 1,
        }),
        token_outage_ms: 5_000,
        concurrent_edits: edited
            .iter()
            .map(|(f, n)| ConcurrentEdit {
                factory_id: f.clone(),
                name: n.clone(),
                description: format!("edited by a person: {n}"),
            })
            .collect(),
        seed: 7,
        ..Faults::default()
    };
    let emu = emulator_with_faults(seed.clone(), 5, faults).await;
    let run = exec(refresh(&emu, &large_scopes(&seed))).await;
    let report = run.report();
    assert_eq!(
        report["complete"], true,
        "every fault is recoverable: {}",
        report["errors"]
    );
    assert_eq!(
        run.code, 2,
        "pinned, inline and ambiguous targets need a person"
    );
    assert_eq!(report["summary"]["factoriesScanned"], FACTORIES);

    let targets = report["targets"].as_array().expect("targets");
    let mut unsafe_names = Vec::new();
    for t in targets {
        if t["verdict"] == "resave" {
            let resaved = t["resave"]["status"] == "ok"
                && ["passed", "failed", "notTested"]
                    .contains(&t["test"]["status"].as_str().unwrap_or(""));
            let failed_with_cause =
                t["resave"]["status"] == "failed" && t["resave"]["error"].is_string();
            assert!(
                resaved || failed_with_cause,
                "{} was neither re-saved and tested nor reported failed: {t}",
                t["name"]
            );
            if t["test"]["status"] == "failed" {
                assert!(
                    t["test"]["message"].is_string() && t["test"]["diagnosis"]["cause"].is_string()
                );
            }
        } else {
            unsafe_names.push((
                t["factory"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                t["name"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    // The human's edits were kept: read again, written with their change.
    for (f, n) in &edited {
        let t = targets
            .iter()
            .find(|t| t["name"] == n.as_str() && t["factory"] == f.as_str())
            .expect("edited target");
        assert_eq!(t["resave"]["status"], "ok");
        assert!(
            t["resave"]["attempts"].as_u64() >= Some(2),
            "412 → read again: {t}"
        );
    }
    let puts: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && (200..300).contains(&r.status))
        .collect();
    for put in &puts {
        let name = put.path.rsplit('/').next().unwrap_or_default();
        let factory = put
            .path
            .split("/linkedservices/")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            !unsafe_names.contains(&(factory, name.to_string())),
            "PUT on an unsafe target {name}"
        );
        assert!(put.if_match.is_some());
    }
    assert_eq!(emu.counters().masked_writes, 0);
    assert_eq!(emu.counters().secret_value_reads, 0);
    // No property changed, except by the simulated person.
    for ((f, n), properties) in &before {
        let stored = emu.linked_service(f, n).expect("still there");
        let mut expected = properties.clone();
        if edited.contains(&(f.clone(), n.clone())) {
            expected["description"] = Value::from(format!("edited by a person: {n}"));
        }
        assert_eq!(stored["properties"], expected, "{f}/{n} changed");
    }
    assert!(
        emu.counters().injected_errors > 0
            && emu.counters().dropped > 0
            && emu.counters().throttled > 0,
        "the faults fired: {:?}",
        emu.counters()
    );
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn with_arm_limits_enforced_the_pacer_meets_no_429() {
    let seed = adf_emulator::large_estate(FACTORIES, PER_FACTORY);
    let faults = Faults {
        token_buckets: true,
        ..Faults::default()
    };
    let emu = emulator_with_faults(seed.clone(), 5, faults).await;
    let run = exec(refresh(&emu, &large_scopes(&seed))).await;
    let report = run.report();
    assert_eq!(report["complete"], true, "{}", report["errors"]);
    assert!(
        report["summary"]["resaved"].as_u64() > Some(200),
        "{}",
        report["summary"]
    );
    assert_eq!(
        emu.counters().throttled,
        0,
        "the product bounced off ARM's limits"
    );
}

#[tokio::test]
async fn a_token_endpoint_that_stays_down_is_named_in_the_error() {
    let emu = emulator(estate(), 50).await;
    emu.set_faults(Faults {
        token_outage_ms: 600_000,
        ..Faults::default()
    });
    let mut cmd = refresh(&emu, &format!("/subscriptions/{SUB}"));
    cmd.args(["--budget-seconds", "4"]);
    let run = exec(cmd).await;
    let report = run.report();
    assert_eq!(run.code, 1);
    let error = report["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("managed-identity"), "{error}");
    assert!(
        error.contains(&emu.identity_endpoint()),
        "the endpoint it tried: {error}"
    );
    assert_eq!(report["errors"][0]["transient"], true);
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn a_spent_deadline_says_exactly_what_was_done_and_what_was_not() {
    let emu = emulator(estate(), 50).await;
    // Slow ARM down so that the budget runs out partway through.
    emu.set_faults(Faults {
        latency_ms: 200,
        ..Faults::default()
    });
    let mut cmd = refresh(&emu, &format!("/subscriptions/{SUB}"));
    cmd.args(["--budget-seconds", "6", "--concurrency", "1"]);
    let report = exec(cmd).await.report();
    assert_eq!(report["complete"], false);
    let targets = report["targets"].as_array().expect("targets");
    let done = targets
        .iter()
        .filter(|t| t["resave"]["status"] == "ok")
        .count();
    let not_reached = targets
        .iter()
        .filter(|t| t["resave"]["status"] == "notReached")
        .count();
    assert!(
        not_reached > 0,
        "some targets were not reached: {}",
        report["summary"]
    );
    // What the report calls re-saved is exactly what ARM received.
    let puts = emu
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 200)
        .count();
    assert_eq!(done, puts);
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["transient"] == true)
    );
}
