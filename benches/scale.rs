//! Benchmark: a rotation at scale, against the emulator with 50 ms per ARM call and ARM's per-subscription
//! token buckets enforced (reads 250 refilling 25/s, writes 200 refilling 10/s).
//!
//! Rows (`docs/benchmarks.md`, "Scale"):
//!
//! - `latency`: 500 factories × 40 linked services in 5 subscriptions, 1 % of the linked services reference the
//!   rotated secret (the rest reference other secrets of the vault). Compared with a sequential runbook: one
//!   call at a time over the same emulator (list factories, list each factory's linked services, then GET, PUT
//!   and test each affected one). Target: ≥ 20× the sequential runbook, peak RSS ≤ 64 MiB.
//! - `throttle`: 1,000 factories × 40 in 2 subscriptions, ARM page size 10, so the reads exceed the bucket.
//!   Target: ≤ 1.10× the throttle floor, no 429, peak RSS ≤ 64 MiB.
//! - `apps`: the throttle row's shape with 500 factories × 40, plus 1,000 App Service sites (every fourth with a
//!   `staging` slot) and 100 API Management services in the same 2 subscriptions, ARM page size 10. One site
//!   in 10 and one service in 5 reference the rotated secret (the sites in the generator's mix: unpinned,
//!   `VaultName` form with a connection string, pinned, other vault); the others reference other secrets.
//!   Target: ≤ 1.10× the throttle floor, no 429, peak RSS ≤ 64 MiB.
//!
//! The throttle floor of a run is the least time ARM's buckets allow for the requests the run made: per
//! subscription, (reads − 250) / 25 and (writes − 200) / 10, the longest of them.
//!
//! ```sh
//! cargo bench --bench scale                                   # every row once, and the sequential runbook
//! cargo bench --bench scale -- latency --repeat 5             # one row, median of 5
//! cargo bench --bench scale -- throttle --repeat 5 --no-sequential
//! cargo bench --bench scale -- apps --repeat 3
//! cargo bench --bench scale -- apps --factories 1000        # another factory count for the chosen rows
//! ```

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const READS: (f64, f64) = (250.0, 25.0);
const WRITES: (f64, f64) = (200.0, 10.0);
const SPEEDUP_MIN: f64 = 20.0;
const FLOOR_RATIO_MAX: f64 = 1.10;
const RSS_MIB_MAX: f64 = 64.0;
const LATENCY_MS: u64 = 50;

#[derive(Clone, Copy)]
struct Row {
    name: &'static str,
    factories: usize,
    linked_services: usize,
    subscriptions: usize,
    /// One linked service in this many references the rotated secret.
    affected_one_in: usize,
    page_size: usize,
    /// App Service sites beside the factories (every fourth with a slot).
    sites: usize,
    /// One block of ten sites in this many keeps the generator's references to the rotated secret.
    sites_affected_one_in: usize,
    api_management_services: usize,
    /// One API Management service in this many has named values of the rotated secret.
    services_affected_one_in: usize,
}

/// Whether the row's target is the throttle floor (rather than the sequential runbook).
fn throttle_bound(row: &Row) -> bool {
    row.name != "latency"
}

const NO_APPS: Row = Row {
    name: "",
    factories: 0,
    linked_services: 0,
    subscriptions: 1,
    affected_one_in: 1,
    page_size: 0,
    sites: 0,
    sites_affected_one_in: 1,
    api_management_services: 0,
    services_affected_one_in: 1,
};

const ROWS: [Row; 3] = [
    Row {
        name: "latency",
        factories: 500,
        linked_services: 40,
        subscriptions: 5,
        affected_one_in: 100,
        page_size: 50,
        ..NO_APPS
    },
    Row {
        name: "throttle",
        factories: 1000,
        linked_services: 40,
        subscriptions: 2,
        affected_one_in: 100,
        page_size: 10,
        ..NO_APPS
    },
    Row {
        name: "apps",
        factories: 500,
        linked_services: 40,
        subscriptions: 2,
        affected_one_in: 100,
        page_size: 10,
        sites: 1000,
        sites_affected_one_in: 10,
        api_management_services: 100,
        services_affected_one_in: 5,
    },
];

/// The index a generated name ends with (`app-bench-00042` → 42).
fn index_of(name: &Value) -> usize {
    name.as_str()
        .and_then(|n| n.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A Key Vault reference to another secret of the same vault, as App Service writes it.
fn other_secret(index: usize) -> Value {
    json!(format!(
        "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/app-secret-{:02}/)",
        index % 37
    ))
}

/// Points the sites and services that are not affected at other secrets of the vault, so that only
/// `sites_affected_one_in` and `services_affected_one_in` of them use the rotated one.
fn thin_out_apps(row: &Row, group: &mut Value) {
    // `get_mut`, not indexing: indexing a missing key would insert a null the emulator refuses.
    let sites = group.get_mut("sites").and_then(Value::as_array_mut);
    for site in sites.into_iter().flatten() {
        let index = index_of(&site["name"]);
        if (index / 10).is_multiple_of(row.sites_affected_one_in) {
            continue;
        }
        site["appSettings"]["SqlPassword"] = other_secret(index);
        site["connectionStrings"] = json!({});
        let slots = site.get_mut("slots").and_then(Value::as_array_mut);
        for slot in slots.into_iter().flatten() {
            slot["appSettings"]["SqlPassword"] = other_secret(index + 1);
        }
    }
    let services = group.get_mut("apiManagement").and_then(Value::as_array_mut);
    for service in services.into_iter().flatten() {
        let index = index_of(&service["name"]);
        if index.is_multiple_of(row.services_affected_one_in) {
            continue;
        }
        let other = format!(
            "https://contoso-kv.vault.azure.net/secrets/app-secret-{:02}",
            index % 37
        );
        service["namedValues"] = json!([
            {"name": "backend-key", "keyVault": {"secretIdentifier": other}},
            {"name": "environment", "value": "bench"},
        ]);
    }
}

/// The estate of a row: `large_estate`'s factories (vaults, runtimes, the two Key Vault linked services), with
/// `linked_services` SQL linked services each, and the row's sites and API Management services, spread over
/// `subscriptions`.
fn estate(row: &Row) -> Value {
    let mut estate = adf_emulator::large_estate_with(&adf_emulator::LargeEstate {
        factories: row.factories,
        linked_services_per_factory: 0,
        sites: row.sites,
        api_management_services: row.api_management_services,
    });
    let mut groups = Vec::new();
    let mut ids = Vec::new();
    if let Some(subs) = estate["subscriptions"].as_array_mut() {
        for sub in subs.iter_mut() {
            ids.push(sub["subscriptionId"].clone());
            if let Some(rgs) = sub["resourceGroups"].as_array_mut() {
                groups.append(rgs);
            }
        }
    }
    let mut k = 0usize;
    for group in groups.iter_mut() {
        thin_out_apps(row, group);
        let factories = group.get_mut("factories").and_then(Value::as_array_mut);
        for factory in factories.into_iter().flatten() {
            let name = factory["name"].as_str().unwrap_or_default().to_string();
            let list = factory["linkedServices"]
                .as_array_mut()
                .expect("linked services");
            for j in 0..row.linked_services {
                let affected = k.is_multiple_of(row.affected_one_in);
                let secret = if affected {
                    "sql-password".to_string()
                } else {
                    format!("app-secret-{:02}", k % 37)
                };
                list.push(json!({
                    "name": format!("ls_sql_{j:03}"),
                    "properties": {
                        "type": "AzureSqlDatabase",
                        "description": format!("Warehouse connection {j} of {name}"),
                        "typeProperties": {
                            "connectionString": format!("Data Source=tcp:sql-{name}-{j:03}.database.windows.net,1433;Initial Catalog=warehouse;User ID=etl;Encrypt=True;Connection Timeout=30"),
                            "password": {"type": "AzureKeyVaultSecret", "store": {"referenceName": "ls_kv_contoso", "type": "LinkedServiceReference"}, "secretName": secret},
                        },
                        "annotations": ["bench", "warehouse"],
                    },
                    "test": {"outcome": "success"},
                }));
                k += 1;
            }
        }
    }
    let mut subscriptions: Vec<Value> = (0..row.subscriptions)
        .map(|i| {
            json!({
                "subscriptionId": ids.get(i).cloned().unwrap_or_else(|| json!(format!("5eed{i:04x}-0000-4000-8000-{i:012x}"))),
                "resourceGroups": [],
            })
        })
        .collect();
    for (i, group) in groups.into_iter().enumerate() {
        if let Some(rgs) = subscriptions[i % row.subscriptions]["resourceGroups"].as_array_mut() {
            rgs.push(group);
        }
    }
    estate["subscriptions"] = Value::Array(subscriptions);
    estate
}

#[derive(Default, Clone)]
struct Measure {
    wall: f64,
    floor: f64,
    throttled: usize,
    arm: usize,
    kinds: BTreeMap<&'static str, usize>,
    /// Reads and writes per subscription, the floor's inputs.
    per_subscription: BTreeMap<String, (usize, usize)>,
    rss_mib: f64,
    complete: bool,
    affected: u64,
    resaved: u64,
    /// Per platform: targets, refreshed or re-saved, tests passed.
    platforms: BTreeMap<String, (usize, usize, usize)>,
    sites_scanned: u64,
    services_scanned: u64,
}

fn kind(method: &str, path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    let last = lower.rsplit('/').next().unwrap_or_default();
    match (method, last) {
        ("GET", "factories") => "list factories",
        ("GET", "linkedservices") => "list linked services",
        ("GET", "credentials") => "list credentials",
        ("POST", "testconnectivity") => "test connectivity",
        ("POST", "getstatus") => "runtime status",
        ("GET", "workspaces") => "list workspaces",
        ("GET", "sites") => "list sites",
        ("GET", "slots") => "list slots",
        ("GET", "appsettings" | "connectionstrings") if lower.contains("/configreferences/") => {
            "list references"
        }
        ("POST", "refresh") => "refresh references",
        ("GET", "service") => "list API Management services",
        ("GET", "namedvalues") => "list named values",
        ("POST", "refreshsecret") => "refreshSecret",
        ("GET", "refreshsecret") => "poll refreshSecret",
        ("GET", _) if lower.contains("/operationresults/") => "poll refreshSecret",
        ("GET", _) if lower.contains("/namedvalues/") => "GET named value",
        ("PUT", _) => "PUT",
        ("GET", _) if lower.contains("/linkedservices/") => "GET linked service",
        ("GET", _) if lower.contains("/credentials/") => "GET credential",
        ("GET", _) => "GET other",
        _ => "other",
    }
}

fn subscription(path: &str) -> String {
    path.split('/')
        .skip_while(|s| !s.eq_ignore_ascii_case("subscriptions"))
        .nth(1)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn measure_requests(emulator: &adf_emulator::Emulator, m: &mut Measure) {
    let arm: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.host_kind == "arm")
        .collect();
    m.arm = arm.len();
    m.throttled = arm.iter().filter(|r| r.status == 429).count();
    let mut per_sub: BTreeMap<(String, bool), f64> = BTreeMap::new();
    for r in arm.iter().filter(|r| r.status != 429 && r.status != 0) {
        *m.kinds.entry(kind(&r.method, &r.path)).or_default() += 1;
        *per_sub
            .entry((subscription(&r.path), r.method != "GET"))
            .or_default() += 1.0;
        let counts = m.per_subscription.entry(subscription(&r.path)).or_default();
        if r.method == "GET" {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    m.floor = per_sub
        .iter()
        .map(|((_, write), &n)| {
            let (capacity, refill) = if *write { WRITES } else { READS };
            ((n - capacity) / refill).max(0.0)
        })
        .fold(0.0, f64::max);
}

async fn start(row: &Row) -> (adf_emulator::Emulator, Vec<String>) {
    let estate = estate(row);
    let scopes = adf_emulator::subscription_scopes(&estate);
    let options = adf_emulator::Options {
        page_size: row.page_size,
        faults: adf_emulator::Faults {
            latency_ms: LATENCY_MS,
            token_buckets: true,
            ..adf_emulator::Faults::default()
        },
        ..adf_emulator::Options::default()
    };
    let emulator = adf_emulator::start(estate, options)
        .await
        .expect("emulator");
    (emulator, scopes)
}

/// The product: `refresh` of `contoso-kv/sql-password` over every subscription.
async fn product(row: &Row) -> Measure {
    let (emulator, scopes) = start(row).await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    cmd.envs(emulator.env())
        .env("ADF_REFRESH_SCOPE", scopes.join(","))
        .env("RUST_LOG", "error")
        .args([
            "refresh",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--output",
            "json",
        ])
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
    let mut m = Measure {
        wall: start.elapsed().as_secs_f64(),
        rss_mib: sampler.join().unwrap_or(0) as f64 / 1024.0,
        ..Measure::default()
    };
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    m.complete = report["complete"] == true;
    m.affected = report["summary"]["affected"].as_u64().unwrap_or(0);
    m.resaved = report["summary"]["resaved"].as_u64().unwrap_or(0);
    m.sites_scanned = report["summary"]["sitesScanned"].as_u64().unwrap_or(0);
    m.services_scanned = report["summary"]["apiManagementServicesScanned"]
        .as_u64()
        .unwrap_or(0);
    for target in report["targets"].as_array().into_iter().flatten() {
        let platform = target["platform"]
            .as_str()
            .unwrap_or("dataFactory")
            .to_string();
        let counts = m.platforms.entry(platform).or_default();
        counts.0 += 1;
        counts.1 += usize::from(target["resave"]["status"] == "ok");
        counts.2 += usize::from(target["test"]["status"] == "passed");
    }
    measure_requests(&emulator, &mut m);
    emulator.shutdown().await;
    m
}

/// A runbook as a person would write it on an SDK: one call at a time, waiting out any 429.
async fn sequential(row: &Row) -> Measure {
    let (emulator, scopes) = start(row).await;
    let http = adf_secret_refresh::azure::auth::http_client(Some(&emulator.ca_file()))
        .expect("http client");
    let start = Instant::now();
    let token: Value = http
        .get(emulator.identity_endpoint())
        .query(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://management.azure.com"),
        ])
        .header("X-IDENTITY-HEADER", emulator.identity_header())
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = emulator.arm_endpoint();
    let call = |method: reqwest::Method, url: String, body: Option<Value>, etag: Option<String>| {
        let http = http.clone();
        let token = token.clone();
        async move {
            loop {
                let mut request = http.request(method.clone(), &url).bearer_auth(&token);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                if let Some(etag) = &etag {
                    request = request.header("If-Match", etag);
                }
                let response = request.send().await.expect("request");
                if response.status().as_u16() == 429 {
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                return response.json::<Value>().await.unwrap_or(Value::Null);
            }
        }
    };
    let list = |url: String| {
        let call = &call;
        async move {
            let mut items = Vec::new();
            let mut next = Some(url);
            while let Some(url) = next.take() {
                let page = call(reqwest::Method::GET, url, None, None).await;
                items.extend(page["value"].as_array().cloned().unwrap_or_default());
                next = page["nextLink"].as_str().map(str::to_string);
            }
            items
        }
    };
    let version = "api-version=2018-06-01";
    let mut resaved = 0u64;
    for scope in &scopes {
        let factories = list(format!(
            "{base}{scope}/providers/Microsoft.DataFactory/factories?{version}"
        ))
        .await;
        for factory in factories {
            let id = factory["id"].as_str().unwrap_or_default().to_string();
            let linked = list(format!("{base}{id}/linkedservices?{version}")).await;
            for ls in linked {
                let reference = &ls["properties"]["typeProperties"]["password"];
                if reference["secretName"] != "sql-password"
                    || reference["store"]["referenceName"] != "ls_kv_contoso"
                {
                    continue;
                }
                let name = ls["name"].as_str().unwrap_or_default();
                let url = format!("{base}{id}/linkedservices/{name}?{version}");
                let fresh = call(reqwest::Method::GET, url.clone(), None, None).await;
                let etag = fresh["etag"].as_str().map(str::to_string);
                let body = json!({"properties": fresh["properties"]});
                call(reqwest::Method::PUT, url, Some(body), etag).await;
                call(
                    reqwest::Method::POST,
                    format!("{base}{id}/testConnectivity?{version}"),
                    Some(json!({"linkedService": {"properties": fresh["properties"]}})),
                    None,
                )
                .await;
                resaved += 1;
            }
        }
    }
    let mut m = Measure {
        wall: start.elapsed().as_secs_f64(),
        complete: true,
        resaved,
        affected: resaved,
        ..Measure::default()
    };
    measure_requests(&emulator, &mut m);
    emulator.shutdown().await;
    m
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn print(label: &str, m: &Measure) {
    let kinds: Vec<String> = m.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  {label}: {:.2} s, throttle floor {:.1} s (ratio {:.2}), {} of {} ARM requests 429, peak RSS {:.1} MiB, {} affected, {} re-saved, {}",
        m.wall,
        m.floor,
        if m.floor > 0.0 { m.wall / m.floor } else { 0.0 },
        m.throttled,
        m.arm,
        m.rss_mib,
        m.affected,
        m.resaved,
        if m.complete { "complete" } else { "INCOMPLETE" }
    );
    println!("    requests: {}", kinds.join(", "));
    let per_subscription: Vec<String> = m
        .per_subscription
        .iter()
        .map(|(sub, (reads, writes))| format!("{sub} {reads} reads, {writes} writes"))
        .collect();
    println!("    per subscription: {}", per_subscription.join("; "));
    if m.sites_scanned + m.services_scanned > 0 {
        let platforms: Vec<String> = m
            .platforms
            .iter()
            .map(|(p, (targets, refreshed, passed))| {
                format!("{p} {targets} targets, {refreshed} refreshed, {passed} passed")
            })
            .collect();
        println!(
            "    {} sites and slots, {} API Management services scanned; {}",
            m.sites_scanned,
            m.services_scanned,
            platforms.join("; ")
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let repeat = value("--repeat").unwrap_or(1).max(1);
    let factories = value("--factories");
    let with_sequential = !args.iter().any(|a| a == "--no-sequential");
    let filter: Vec<&String> = args
        .iter()
        .filter(|a| ROWS.iter().any(|r| r.name == a.as_str()))
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut missed = false;
    for row in ROWS
        .iter()
        .filter(|r| filter.is_empty() || filter.iter().any(|f| f.as_str() == r.name))
        .map(|r| Row {
            factories: factories.unwrap_or(r.factories),
            ..*r
        })
    {
        let row = &row;
        println!(
            "{}: {} factories × {} linked services, {} subscriptions, 1 in {} affected, ARM page size {}, {LATENCY_MS} ms per ARM call, buckets enforced",
            row.name,
            row.factories,
            row.linked_services,
            row.subscriptions,
            row.affected_one_in,
            row.page_size
        );
        if row.sites + row.api_management_services > 0 {
            println!(
                "  and {} sites (every fourth with a slot, 1 in {} affected), {} API Management services (1 in {} affected)",
                row.sites,
                row.sites_affected_one_in,
                row.api_management_services,
                row.services_affected_one_in
            );
        }
        let mut runs = Vec::new();
        for i in 0..repeat {
            let m = runtime.block_on(product(row));
            print(&format!("run {}", i + 1), &m);
            runs.push(m);
        }
        let wall = median(runs.iter().map(|m| m.wall).collect());
        let floor = median(runs.iter().map(|m| m.floor).collect());
        let ratio = median(
            runs.iter()
                .map(|m| if m.floor > 0.0 { m.wall / m.floor } else { 0.0 })
                .collect(),
        );
        let rss = median(runs.iter().map(|m| m.rss_mib).collect());
        let throttled: usize = runs.iter().map(|m| m.throttled).sum();
        let complete = runs.iter().all(|m| m.complete);
        println!(
            "  median of {repeat}: {wall:.2} s, floor {floor:.1} s, ratio {ratio:.2}, peak RSS {rss:.1} MiB, {throttled} 429s in all runs"
        );
        let mut ok = complete && throttled == 0 && rss <= RSS_MIB_MAX;
        if throttle_bound(row) {
            ok &= ratio <= FLOOR_RATIO_MAX;
            println!("  target: ≤ {FLOOR_RATIO_MAX}× the floor, 0 429s, ≤ {RSS_MIB_MAX} MiB");
        }
        if row.name == "latency" && with_sequential {
            let s = runtime.block_on(sequential(row));
            print("sequential runbook", &s);
            let speedup = s.wall / wall;
            println!(
                "  speed-up over the sequential runbook: {speedup:.1}× (target ≥ {SPEEDUP_MIN}×)"
            );
            ok &= speedup >= SPEEDUP_MIN;
        }
        println!("  {}", if ok { "ok" } else { "MISSED" });
        missed |= !ok;
    }
    if missed {
        eprintln!("a benchmark missed its target");
        std::process::exit(1);
    }
}
