//! Benchmarks: how fast the product plans and refreshes a large estate, and how much memory it needs.
//!
//! Run with `cargo bench --bench estate` (optimised build). Results and the targets they are checked
//! against are recorded in `docs/benchmarks.md`. The end-to-end runs drive the real binary against the
//! emulator on loopback; the emulator's own work is included in the wall time.

use adf_secret_refresh::plan::{self, FactorySnapshot, SecretRef};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The targets: a plan of 10,000 linked services within 20 s and 150 MiB; scanning above 50,000/s.
const PLAN_SECONDS_MAX: f64 = 20.0;
const PLAN_RSS_MIB_MAX: f64 = 150.0;
const SCAN_PER_SECOND_MIN: f64 = 50_000.0;

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut failed = false;
    if wanted("scan") {
        failed |= !scan();
    }
    if wanted("plan") {
        failed |= !runtime.block_on(end_to_end(
            "plan",
            500,
            20,
            Some((PLAN_SECONDS_MAX, PLAN_RSS_MIB_MAX)),
        ));
    }
    // The audit reads what a plan reads, plus one Key Vault call per secret: the same bounds.
    if wanted("audit") {
        failed |= !runtime.block_on(end_to_end(
            "audit",
            500,
            20,
            Some((PLAN_SECONDS_MAX, PLAN_RSS_MIB_MAX)),
        ));
    }
    if wanted("refresh") {
        failed |= !runtime.block_on(end_to_end("refresh", 100, 20, None));
    }
    if failed {
        eprintln!("a benchmark missed its target");
        std::process::exit(1);
    }
}

/// Pure planning over snapshots already in memory.
fn scan() -> bool {
    let estate = adf_emulator::large_estate(500, 20);
    let snapshots = snapshots(&estate);
    let linked_services: usize = snapshots.iter().map(|s| s.linked_services.len()).sum();
    let secret = SecretRef {
        vault: "contoso-kv".into(),
        name: "sql-password".into(),
        version: None,
        vault_suffix: "vault.azure.net".into(),
    };
    let mut best = Duration::MAX;
    let mut targets = 0;
    for _ in 0..5 {
        let start = Instant::now();
        targets = snapshots
            .iter()
            .map(|f| plan::plan_factory(f, &secret).len())
            .sum();
        best = best.min(start.elapsed());
    }
    let rate = linked_services as f64 / best.as_secs_f64();
    println!(
        "scan: {linked_services} linked services in {:.1} ms (best of 5) = {rate:.0}/s, {targets} targets; target ≥ {SCAN_PER_SECOND_MIN:.0}/s",
        best.as_secs_f64() * 1000.0
    );
    rate >= SCAN_PER_SECOND_MIN
}

fn snapshots(estate: &Value) -> Vec<FactorySnapshot> {
    let mut out = Vec::new();
    for sub in estate["subscriptions"].as_array().into_iter().flatten() {
        for rg in sub["resourceGroups"].as_array().into_iter().flatten() {
            for f in rg["factories"].as_array().into_iter().flatten() {
                out.push(FactorySnapshot {
                    id: format!(
                        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.DataFactory/factories/{}",
                        sub["subscriptionId"].as_str().unwrap_or_default(),
                        rg["name"].as_str().unwrap_or_default(),
                        f["name"].as_str().unwrap_or_default()
                    ),
                    resource: Value::Null,
                    linked_services: f["linkedServices"].as_array().cloned().unwrap_or_default(),
                    credentials: f["credentials"].as_array().cloned().unwrap_or_default(),
                    ..FactorySnapshot::default()
                });
            }
        }
    }
    out
}

/// The real binary against the emulator; wall time and peak resident memory of the product process.
async fn end_to_end(
    command: &str,
    factories: usize,
    per_factory: usize,
    target: Option<(f64, f64)>,
) -> bool {
    let estate = adf_emulator::large_estate(factories, per_factory);
    let scopes = adf_emulator::subscription_scopes(&estate);
    let emulator = adf_emulator::start(estate, adf_emulator::Options::default())
        .await
        .expect("emulator");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    cmd.envs(emulator.env())
        .env("ADF_REFRESH_SCOPE", scopes.join(","))
        .env("RUST_LOG", "warn")
        .arg(command)
        .args(if command == "audit" {
            &[][..]
        } else {
            &["--vault", "contoso-kv", "--secret", "sql-password"][..]
        })
        .args(["--output", "json", "--concurrency", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn().expect("binary runs");
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak_kib = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak_kib
    });
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let elapsed = start.elapsed().as_secs_f64();
    let peak_mib = sampler.join().unwrap_or(0) as f64 / 1024.0;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let s = &report["summary"];
    if command == "audit" {
        println!(
            "{command}: {} factories, {} linked services, {} secrets, {} references in {elapsed:.2} s; peak RSS {peak_mib:.1} MiB; {} ARM+KV requests",
            s["factoriesScanned"],
            s["linkedServicesScanned"],
            s["secrets"],
            s["references"],
            emulator.requests().len()
        );
    } else {
        println!(
            "{command}: {} factories, {} linked services, {} affected, {} re-saved in {elapsed:.2} s; peak RSS {peak_mib:.1} MiB; {} ARM+KV requests",
            s["factoriesScanned"],
            s["linkedServicesScanned"],
            s["affected"],
            s["resaved"],
            emulator.requests().len()
        );
    }
    let complete = report["complete"] == true;
    match target {
        Some((seconds, mib)) => {
            println!("  target: ≤ {seconds} s and ≤ {mib} MiB");
            complete && elapsed <= seconds && peak_mib <= mib
        }
        None => complete,
    }
}
