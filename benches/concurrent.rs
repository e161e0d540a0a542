//! Benchmark: several runs at once on one subscription, sharing ARM's throttling buckets.
//!
//! ARM's buckets belong to the subscription and the principal, not to a process: function-app instances and a
//! person's CLI run spend the same one. This starts the emulator with ARM's buckets enforced (reads 250
//! refilling 25/s, writes 200 refilling 10/s per subscription) and a list page size of 5, puts every factory
//! of a generated estate in one subscription, and starts 1, 2 and 3 copies of the real binary at the same time.
//! For each round it prints the wall time, the throttle floor (what the buckets allow for all the ARM calls
//! the runs made together: (reads − 250) / 25 and (writes − 200) / 10, whichever is longer), their ratio, and
//! the share of ARM requests answered 429; and whether every run completed with the same targets handled.
//!
//! Targets: every run complete, 429s under 2 % of ARM requests, wall time within 1.25× the floor (checked when
//! the floor is 10 s or more; below that the ratio measures process start-up).
//!
//! ```sh
//! cargo bench --bench concurrent                                  # plan, 300 factories, 1/2/3 runs
//! cargo bench --bench concurrent -- --command refresh --factories 60 --linked-services 4 --runs 2
//! ```

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Instant;

const MAX_THROTTLED_SHARE: f64 = 0.02;
const MAX_FLOOR_RATIO: f64 = 1.25;
const MIN_FLOOR_FOR_RATIO: f64 = 10.0;
const READS: (f64, f64) = (250.0, 25.0);
const WRITES: (f64, f64) = (200.0, 10.0);

struct Args {
    command: String,
    factories: usize,
    linked_services: usize,
    page_size: usize,
    runs: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        command: "plan".into(),
        factories: 300,
        linked_services: 4,
        page_size: 5,
        runs: vec![1, 2, 3],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--command" => a.command = value(),
            "--factories" => a.factories = value().parse().unwrap_or(a.factories),
            "--linked-services" => a.linked_services = value().parse().unwrap_or(a.linked_services),
            "--page-size" => a.page_size = value().parse().unwrap_or(a.page_size),
            "--runs" => {
                a.runs = value()
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            }
            // cargo bench passes --bench; other flags are ignored.
            _ => {}
        }
    }
    a
}

/// The generated estate with every resource group moved into its first subscription.
fn one_subscription(factories: usize, linked_services: usize) -> (Value, String) {
    let mut estate = adf_emulator::large_estate(factories, linked_services);
    let mut groups = Vec::new();
    if let Some(subs) = estate["subscriptions"].as_array_mut() {
        for sub in subs.iter_mut() {
            if let Some(rgs) = sub["resourceGroups"].as_array_mut() {
                groups.append(rgs);
            }
        }
        subs.truncate(1);
        if let Some(first) = subs.first_mut() {
            first["resourceGroups"] = Value::Array(groups);
        }
    }
    let scope = adf_emulator::subscription_scopes(&estate)
        .into_iter()
        .next()
        .expect("the estate has a subscription");
    (estate, scope)
}

struct Round {
    complete: bool,
    same_targets: bool,
    wall: f64,
    floor: f64,
    arm_requests: usize,
    throttled: usize,
}

async fn round(a: &Args, runs: usize) -> Round {
    let (estate, scope) = one_subscription(a.factories, a.linked_services);
    let options = adf_emulator::Options {
        page_size: a.page_size,
        faults: adf_emulator::Faults {
            token_buckets: true,
            ..adf_emulator::Faults::default()
        },
        ..adf_emulator::Options::default()
    };
    let emulator = adf_emulator::start(estate, options)
        .await
        .expect("emulator");
    let start = Instant::now();
    let mut children = Vec::new();
    for _ in 0..runs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
        cmd.envs(emulator.env())
            .env("ADF_REFRESH_SCOPE", &scope)
            .env("RUST_LOG", "error")
            .args([
                &a.command,
                "--vault",
                "contoso-kv",
                "--secret",
                "sql-password",
                "--output",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("binary runs");
        children.push(tokio::task::spawn_blocking(move || {
            child.wait_with_output()
        }));
    }
    let mut reports = Vec::new();
    for child in children {
        let output = child.await.expect("join").expect("wait");
        reports.push(serde_json::from_slice::<Value>(&output.stdout).unwrap_or(Value::Null));
    }
    let wall = start.elapsed().as_secs_f64();
    let arm: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.host_kind == "arm")
        .collect();
    let throttled = arm.iter().filter(|r| r.status == 429).count();
    let served = |write: bool| {
        arm.iter()
            .filter(|r| r.status != 429 && r.status != 0)
            .filter(|r| (r.method != "GET" && r.method != "HEAD") == write)
            .count() as f64
    };
    let floor_of = |n: f64, (capacity, refill): (f64, f64)| ((n - capacity) / refill).max(0.0);
    let floor = floor_of(served(false), READS).max(floor_of(served(true), WRITES));
    let complete = reports.iter().all(|r| r["complete"] == true);
    let summaries: Vec<String> = reports
        .iter()
        .map(|r| {
            let s = &r["summary"];
            format!(
                "{}/{}/{}",
                s["factoriesScanned"], s["linkedServicesScanned"], s["affected"]
            )
        })
        .collect();
    let same_targets = summaries.windows(2).all(|w| w[0] == w[1]);
    emulator.shutdown().await;
    Round {
        complete,
        same_targets,
        wall,
        floor,
        arm_requests: arm.len(),
        throttled,
    }
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "concurrent {}: {} factories × {} linked services in one subscription, ARM page size {}, ARM buckets enforced",
        a.command, a.factories, a.linked_services, a.page_size
    );
    let mut missed = false;
    for &runs in &a.runs {
        let r = runtime.block_on(round(&a, runs));
        let share = r.throttled as f64 / r.arm_requests.max(1) as f64;
        let ratio = if r.floor > 0.0 { r.wall / r.floor } else { 0.0 };
        // Below a floor of a few seconds the ratio measures process start-up, not pacing.
        let ok = r.complete
            && r.same_targets
            && share < MAX_THROTTLED_SHARE
            && (r.floor < MIN_FLOOR_FOR_RATIO || ratio <= MAX_FLOOR_RATIO);
        missed |= !ok;
        println!(
            "  {runs} at once: {:.1} s, throttle floor {:.1} s, ratio {ratio:.2}; {} of {} ARM requests 429 ({:.1} %); {}{} — {}",
            r.wall,
            r.floor,
            r.throttled,
            r.arm_requests,
            share * 100.0,
            if r.complete {
                "all complete"
            } else {
                "INCOMPLETE"
            },
            if r.same_targets {
                ""
            } else {
                ", runs disagree on targets"
            },
            if ok { "ok" } else { "MISSED" },
        );
    }
    println!(
        "  targets: every run complete, 429s < {:.0} %, wall ≤ {MAX_FLOOR_RATIO}× floor",
        MAX_THROTTLED_SHARE * 100.0
    );
    if missed {
        eprintln!("a benchmark missed its target");
        std::process::exit(1);
    }
}
