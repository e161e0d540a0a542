//! The audit against the emulator: the inventory by secret, every finding kind, the cost in Key Vault calls,
//! the exports (JSON against its schema, CSV parsed back, Markdown with a Mermaid diagram), expiry events,
//! and a progress bar that never reaches a pipe.

mod common;

use adf_emulator::host::HostSimulator;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

const DAY: i64 = 86_400;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn scope() -> String {
    format!("/subscriptions/{SUB}")
}

fn inventory_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/inventory.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("schema"))
            .expect("the schema is JSON");
        jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
    })
}

/// Panics with every violation if `inventory` does not match `docs/inventory.schema.json`.
fn assert_valid_inventory(inventory: &Value) {
    let errors: Vec<String> = inventory_validator()
        .iter_errors(inventory)
        .map(|e| format!("  at `{}`: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the inventory does not match the schema:\n{}",
        errors.join("\n")
    );
}

fn version(id: &str, created: i64) -> Value {
    json!({"version": id, "value": format!("FAKE-TEST-ONLY-value-{id}"), "enabled": true, "created": created})
}

/// The shared estate, plus one secret per finding kind in `contoso-kv`, a vault that does not exist, a
/// vault the identity may not list, and definitions that no rotation can reach.
fn audit_estate() -> Value {
    let mut seed = estate();
    let t = now();
    let kv = |name: &str, store: &str| sql(name, kv_ref(store, json!(name)));
    let sales = seed["subscriptions"][0]["resourceGroups"][0]["factories"][0]["linkedServices"]
        .as_array_mut()
        .expect("linked services");
    sales.push(kv_ls("LockedVault", "https://locked-kv.vault.azure.net/"));
    sales.push(kv_ls("GoneVault", "https://gone-kv.vault.azure.net/"));
    for name in [
        "expired",
        "in-seven-days",
        "in-thirty-days",
        "in-thirty-one-days",
        "disabled-latest",
        "future",
        "missing",
    ] {
        sales.push(kv(name, "KeyVault"));
    }
    sales.push(sql("Locked", kv_ref("LockedVault", json!("s"))));
    sales.push(sql("Gone", kv_ref("GoneVault", json!("s"))));
    sales.push(sql("NoStore", kv_ref("NoSuchStore", json!("sql-password"))));
    sales.push(json!({"name": "Unresolved", "properties": {"type": "AzureSqlDatabase",
        "parameters": {"secretName": {"type": "String"}},
        "typeProperties": {"password": kv_ref("KeyVault", json!("@{linkedService().secretName}"))}}}));
    sales.push(json!({"name": "OnPremFiles", "properties": {"type": "FileServer",
        "connectVia": {"referenceName": "shir-onprem", "type": "IntegrationRuntimeReference"},
        "typeProperties": {"host": "\\\\files\\share", "userId": "etl", "encryptedCredential": "ew0KICAiVmVyc2lvbiI6ICIyMDE3LTExLTMwIg0KfQ=="}}}));

    let with_exp = |id: &str, exp: i64| {
        let mut v = version(id, t - DAY);
        v["exp"] = json!(exp);
        v
    };
    // The shared secret's newest version expires in ten days.
    seed["vaults"][0]["secrets"][0]["versions"][1]["exp"] = json!(t + 10 * DAY);
    let mut disabled = version("d2", t - DAY);
    disabled["enabled"] = json!(false);
    let mut future = version("f1", t - DAY);
    future["nbf"] = json!(t + 3 * DAY);
    let secrets = seed["vaults"][0]["secrets"]
        .as_array_mut()
        .expect("secrets");
    for (name, versions) in [
        ("expired", vec![with_exp("e1", t - DAY)]),
        ("in-seven-days", vec![with_exp("s1", t + 7 * DAY)]),
        ("in-thirty-days", vec![with_exp("t1", t + 30 * DAY)]),
        ("in-thirty-one-days", vec![with_exp("o1", t + 31 * DAY)]),
        (
            "disabled-latest",
            vec![version("d1", t - 9 * DAY), disabled],
        ),
        ("future", vec![future]),
    ] {
        secrets.push(json!({"name": name, "versions": versions}));
    }
    seed["vaults"]
        .as_array_mut()
        .expect("vaults")
        .push(json!({"name": "locked-kv", "forbidden": true, "secrets": [{"name": "s", "versions": [version("l1", t - DAY)]}]}));
    seed
}

async fn audit(emu: &adf_emulator::Emulator, args: &[&str]) -> Run {
    let mut cmd = command(emu, &scope());
    cmd.arg("audit").args(args);
    exec(cmd).await
}

fn inventory_of(run: &Run) -> Value {
    let inventory: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON inventory ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    assert_valid_inventory(&inventory);
    inventory
}

fn findings(inventory: &Value) -> Vec<(String, String, String)> {
    inventory["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String, String)], code: &str, severity: &str, subject: &str) -> bool {
    found
        .iter()
        .any(|(c, s, x)| c == code && s == severity && x.ends_with(subject))
}

fn secret<'a>(inventory: &'a Value, url: &str, name: &str) -> &'a Value {
    inventory["secrets"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["vaultUrl"] == url && s["secret"].as_str() == Some(name))
        })
        .unwrap_or_else(|| panic!("no secret {url} {name} in {}", inventory["secrets"]))
}

/// The versions path of every request to Key Vault (first pages only), lower-cased.
fn versions_requests(emu: &adf_emulator::Emulator) -> Vec<(String, bool)> {
    emu.requests()
        .into_iter()
        .filter(|r| r.host_kind == "keyvault" && r.path.ends_with("/versions"))
        .filter(|r| !r.query.contains("skiptoken"))
        .map(|r| (r.path.to_ascii_lowercase(), r.had_bearer))
        .collect()
}

#[tokio::test]
async fn the_inventory_lists_secrets_by_urgency_with_every_finding_kind() {
    let emu = emulator(audit_estate(), 50).await;
    let mut cmd = command(&emu, &scope());
    cmd.env("ADF_REFRESH_VAULTS", "contoso-kv,locked-kv,gone-kv")
        .args(["audit", "--output", "json"]);
    let run = exec(cmd).await;
    let inventory = inventory_of(&run);
    assert_eq!(run.code, 2, "findings need a person: {}", run.stderr);
    assert_eq!(inventory["schema"], "adf-secret-refresh/inventory/v1");
    assert_eq!(inventory["complete"], true, "{}", inventory["errors"]);
    let found = findings(&inventory);
    let sales = factory_id(RG, "adf-sales");
    for (code, severity, subject) in [
        (
            "secretExpired",
            "critical",
            "contoso-kv/expired".to_string(),
        ),
        (
            "secretExpiring",
            "critical",
            "contoso-kv/in-seven-days".into(),
        ),
        (
            "secretExpiring",
            "warning",
            "contoso-kv/in-thirty-days".into(),
        ),
        (
            "secretExpiring",
            "warning",
            "contoso-kv/sql-password".into(),
        ),
        (
            "latestVersionDisabled",
            "critical",
            "contoso-kv/disabled-latest".into(),
        ),
        ("secretNotYetValid", "warning", "contoso-kv/future".into()),
        ("danglingSecret", "critical", "contoso-kv/missing".into()),
        (
            "pinnedToOldVersion",
            "warning",
            "contoso-kv/sql-password".into(),
        ),
        (
            "danglingVault",
            "critical",
            "https://gone-kv.vault.azure.net/".into(),
        ),
        (
            "vaultAccessDenied",
            "warning",
            "https://locked-kv.vault.azure.net/".into(),
        ),
        (
            "danglingStore",
            "critical",
            format!("{sales}/linkedservices/NoStore"),
        ),
        (
            "unresolvedReference",
            "warning",
            format!("{sales}/linkedservices/Unresolved"),
        ),
        (
            "unresolvedReference",
            "info",
            format!("{sales}/linkedservices/SalesSqlParam"),
        ),
        (
            "inlineSecret",
            "warning",
            format!("{sales}/linkedservices/SalesBlobInline"),
        ),
        (
            "selfHostedCredential",
            "warning",
            format!("{sales}/linkedservices/OnPremFiles"),
        ),
        ("gitMode", "info", factory_id(RG, "adf-finance-git")),
        (
            "vaultNotCovered",
            "warning",
            "https://other-kv.vault.azure.net/".into(),
        ),
        (
            "vaultNotCovered",
            "warning",
            "https://contoso-kv.vault.azure.cn/".into(),
        ),
    ] {
        assert!(
            has(&found, code, severity, &subject),
            "no {severity} {code} on {subject} in {found:#?}"
        );
    }
    // Just past the warning threshold, and a covered vault: nothing.
    assert!(
        !found
            .iter()
            .any(|(_, _, s)| s.ends_with("in-thirty-one-days"))
    );
    assert!(!has(
        &found,
        "vaultNotCovered",
        "warning",
        "https://contoso-kv.vault.azure.net/"
    ));
    // Every reference of the access-denied vault is still listed, its metadata unknown.
    let locked = secret(&inventory, "https://locked-kv.vault.azure.net/", "s");
    assert_eq!(locked["status"], "accessDenied");
    assert_eq!(locked["consumers"][0]["name"], "Locked");
    let denied = inventory["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "vaultAccessDenied"))
        .expect("denied");
    assert!(denied["fix"].to_string().contains("Key Vault Reader"));
    assert_eq!(denied["owner"], "platformOwner");

    // The China factory's vault is its own entry, under its own URL, and was never read.
    let china = secret(
        &inventory,
        "https://contoso-kv.vault.azure.cn/",
        "sql-password",
    );
    assert_eq!(china["status"], "otherCloud");
    assert_eq!(china["latestVersion"], Value::Null);
    let public = secret(
        &inventory,
        "https://contoso-kv.vault.azure.net/",
        "sql-password",
    );
    assert_eq!(public["latestVersion"], "00000000000000000000000000000002");
    let consumers: BTreeSet<&str> = public["consumers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "SalesSql",
        "SalesSqlPinned",
        "SalesBlobInline",
        "SalesRestApi",
        "SpCredential",
        "LakeViaCredential",
        "OnPremSql",
        "FinanceSql",
    ] {
        assert!(consumers.contains(name), "{name} in {consumers:?}");
    }
    let pinned = public["consumers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "SalesSqlPinned"))
        .expect("pinned");
    assert_eq!(pinned["verdict"], "pinned");
    assert_eq!(pinned["pinnedVersion"], "00000000000000000000000000000001");
    let onprem = public["consumers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "OnPremSql"))
        .expect("on-prem");
    assert_eq!(onprem["integrationRuntime"], "shir-onprem");

    // Urgency: the broken ones first, then by expiry, soonest first.
    let order: Vec<&str> = inventory["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["secret"].as_str())
        .collect();
    let at = |name: &str| order.iter().position(|s| *s == name).expect(name);
    assert!(at("expired") < at("in-seven-days"));
    assert!(at("in-seven-days") < at("sql-password"));
    assert!(at("sql-password") < at("in-thirty-days"));
    assert!(at("in-thirty-days") < at("in-thirty-one-days"));

    // Nothing was written, tested, or read that holds a value.
    assert!(
        emu.requests()
            .iter()
            .all(|r| r.method == "GET" || r.host_kind != "arm")
    );
    assert_eq!(emu.counters().secret_value_reads, 0);
    assert!(
        emu.requests()
            .iter()
            .filter(|r| r.host_kind == "keyvault")
            .all(|r| r.path.ends_with("/versions")),
        "only versions are listed"
    );
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn a_secret_referenced_from_several_factories_costs_one_key_vault_call() {
    let emu = emulator(audit_estate(), 50).await;
    let run = audit(&emu, &["--output", "json"]).await;
    let inventory = inventory_of(&run);
    // One call is the SDK's challenge round trip (no token, 401) and the authorised request; a vault that
    // does not exist answers the first.
    let requests = versions_requests(&emu);
    let paths: BTreeSet<&String> = requests.iter().map(|(p, _)| p).collect();
    for path in &paths {
        let authorised = requests.iter().filter(|(p, b)| p == *path && *b).count();
        let anonymous = requests.iter().filter(|(p, b)| p == *path && !*b).count();
        assert!(authorised <= 1 && anonymous == 1, "{path}: {requests:#?}");
    }
    // sql-password is named by many linked services in two factories, with two spellings.
    let public = secret(
        &inventory,
        "https://contoso-kv.vault.azure.net/",
        "sql-password",
    );
    let factories: BTreeSet<&str> = public["consumers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["factory"].as_str())
        .collect();
    assert_eq!(factories.len(), 2);
    assert_eq!(
        requests
            .iter()
            .filter(|(p, b)| *b && p.ends_with("/kv/contoso-kv/secrets/sql-password/versions"))
            .count(),
        1
    );
    // One call per (vault, secret) the deployment reads: never the China vault.
    let read = inventory["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"] != "otherCloud")
        .count();
    assert_eq!(paths.len(), read);
    assert_eq!(emu.counters().secret_value_reads, 0);
}

#[tokio::test]
async fn thresholds_come_from_the_option_or_the_setting_and_bad_ones_are_refused() {
    let emu = emulator(audit_estate(), 50).await;
    // With 40,10: the secret 31 days out becomes a warning, the one 7 days out stays critical.
    let run = audit(
        &emu,
        &["--output", "json", "--expiring-within-days", "40,10"],
    )
    .await;
    let found = findings(&inventory_of(&run));
    assert!(has(
        &found,
        "secretExpiring",
        "warning",
        "in-thirty-one-days"
    ));
    assert!(has(&found, "secretExpiring", "critical", "in-seven-days"));

    let mut cmd = command(&emu, &scope());
    cmd.env("ADF_REFRESH_EXPIRY_WARNING_DAYS", "5,1")
        .args(["audit", "--output", "json"]);
    let found = findings(&inventory_of(&exec(cmd).await));
    assert!(!found.iter().any(|(_, _, s)| s.ends_with("in-seven-days")));

    let run = audit(&emu, &["--expiring-within-days", "7,30"]).await;
    assert_eq!(run.code, 2, "clap refuses the value: {}", run.stderr);
    assert!(run.stderr.contains("critical threshold"), "{}", run.stderr);
    let mut cmd = command(&emu, &scope());
    cmd.env("ADF_REFRESH_EXPIRY_WARNING_DAYS", "soon")
        .arg("audit");
    let run = exec(cmd).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("ADF_REFRESH_EXPIRY_WARNING_DAYS"),
        "{}",
        run.stderr
    );
}

/// A strict RFC 4180 reader: quoted fields, doubled quotes, CRLF records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "records end in CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => {
                assert!(
                    c != '"' && c != '\n',
                    "a bare quote or LF in an unquoted field"
                );
                field.push(c);
            }
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the last record ends in CRLF"
    );
    rows
}

#[tokio::test]
async fn the_exports_are_well_formed_csv_json_and_markdown_with_mermaid() {
    let emu = emulator(audit_estate(), 50).await;
    let json_run = audit(&emu, &["--output", "json"]).await;
    let inventory = inventory_of(&json_run);
    let references: usize = inventory["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["consumers"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(inventory["summary"]["references"], references);

    let csv = audit(&emu, &["--output", "csv"]).await;
    assert_eq!(csv.code, 2);
    let rows = parse_csv(&csv.stdout);
    assert_eq!(rows[0][0], "vault");
    assert_eq!(rows.len(), references + 1, "one row per reference");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    let column = |name: &str| rows[0].iter().position(|c| c == name).expect(name);
    let pinned = rows
        .iter()
        .find(|r| r[column("name")] == "SalesSqlPinned")
        .expect("the pinned reference has a row");
    assert_eq!(pinned[column("verdict")], "pinned");
    assert!(pinned[column("findings")].contains("pinnedToOldVersion"));
    assert_eq!(
        pinned[column("vaultUrl")],
        "https://contoso-kv.vault.azure.net/"
    );

    let md = audit(&emu, &["--output", "markdown"]).await;
    let text = &md.stdout;
    assert!(text.starts_with("# Key Vault inventory"));
    assert_mermaid_well_formed(text);
    assert!(text.contains("| critical | `secretExpired` |"), "{text}");
    for run in [&json_run, &csv, &md] {
        assert_no_secrets(&emu, &run.stdout);
    }
}

/// Exactly one ```mermaid block; a `graph`; every edge and `class` names a declared node; labels quoted.
fn assert_mermaid_well_formed(markdown: &str) {
    assert_eq!(markdown.matches("```mermaid\n").count(), 1);
    let start = markdown.find("```mermaid\n").expect("block") + "```mermaid\n".len();
    let end = start + markdown[start..].find("\n```").expect("closing fence");
    let lines: Vec<&str> = markdown[start..end].lines().map(str::trim).collect();
    assert_eq!(lines[0], "graph LR");
    let mut nodes = BTreeSet::new();
    let mut classes = BTreeSet::new();
    let mut edges = 0;
    for line in &lines[1..] {
        if let Some((id, label)) = line.split_once("[\"") {
            assert!(label.ends_with("\"]"), "{line}");
            assert!(!label[..label.len() - 2].contains('"'), "{line}");
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            nodes.insert(id.to_string());
        } else if let Some((from, to)) = line.split_once(" --> ") {
            assert!(nodes.contains(from) && nodes.contains(to), "{line}");
            edges += 1;
        } else if let Some(rest) = line.strip_prefix("classDef ") {
            classes.insert(rest.split(' ').next().unwrap_or_default().to_string());
        } else if let Some(rest) = line.strip_prefix("class ") {
            let (node, class) = rest.split_once(' ').expect("class NODE NAME");
            assert!(nodes.contains(node), "{line}");
            assert!(classes.contains(class), "{line}");
        } else {
            panic!("unexpected line in the diagram: {line}");
        }
    }
    assert!(edges > 0);
    assert!(classes.contains("critical") && classes.contains("warning"));
}

#[tokio::test]
async fn no_progress_reaches_stderr_when_it_is_not_a_terminal() {
    let emu = emulator(audit_estate(), 50).await;
    let run = audit(&emu, &["--output", "json"]).await;
    inventory_of(&run);
    // Log lines may be coloured; a progress bar would redraw its line (CR, clear-line) and name its units.
    for drawn in [
        "factories scanned",
        "secrets read",
        "\r",
        "\x1b[2K",
        "\x1b[1A",
    ] {
        assert!(
            !run.stderr.contains(drawn),
            "{drawn:?} in stderr:\n{}",
            run.stderr
        );
    }
}

async fn host(emu: &adf_emulator::Emulator) -> HostSimulator {
    host_with(emu, &[]).await
}

async fn host_with(emu: &adf_emulator::Emulator, extra: &[(&str, &str)]) -> HostSimulator {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), scope()));
    env.push(("ADF_REFRESH_VAULTS".into(), "contoso-kv".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
        .await
        .expect("handler starts")
}

fn expiry_event(kind: &str, secret: &str) -> Value {
    json!([{
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": format!("/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"),
        "subject": secret,
        "eventType": format!("Microsoft.KeyVault.{kind}"),
        "data": {"Id": format!("https://contoso-kv.vault.azure.net/secrets/{secret}/e1"), "VaultName": "contoso-kv",
                 "ObjectType": "Secret", "ObjectName": secret, "Version": "e1", "EXP": now() + DAY},
        "dataVersion": "1", "metadataVersion": "1", "eventTime": "2026-11-26T01:00:00Z"
    }])
}

/// A loopback webhook receiver that keeps every body it receives.
async fn recording_webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    kept.lock().expect("lock").push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

#[tokio::test]
async fn expiry_events_give_the_inventory_of_the_consumers_at_risk() {
    let emu = emulator(audit_estate(), 50).await;
    let (hook, received) = recording_webhook().await;
    let host = host_with(
        &emu,
        &[
            ("ADF_REFRESH_WEBHOOK_URL", &hook),
            ("ADF_REFRESH_WEBHOOK_SECRET", "FAKE-TEST-ONLY-hmac-key-0123"),
        ],
    )
    .await;

    let (_, answers) = host
        .rotate(expiry_event("SecretExpired", "expired"), 1)
        .await;
    let answer = &answers[0];
    let inventory = answer.output("report").expect("the blob output").clone();
    assert_valid_inventory(&inventory);
    let secrets = inventory["secrets"].as_array().expect("secrets");
    assert_eq!(secrets.len(), 1, "only the event's secret");
    assert_eq!(secrets[0]["secret"], "expired");
    assert_eq!(secrets[0]["consumers"][0]["name"], "expired");
    assert!(secrets[0]["expires"].is_string(), "the deadline");
    let found = findings(&inventory);
    assert!(has(
        &found,
        "secretExpired",
        "critical",
        "contoso-kv/expired"
    ));
    assert!(
        found
            .iter()
            .all(|(_, _, s)| s.starts_with("contoso-kv/expired")
                || s.starts_with("https://contoso-kv")),
        "nothing about other secrets: {found:?}"
    );
    assert!(answer.output("attention").is_some());

    let (_, answers) = host
        .rotate(expiry_event("SecretNearExpiry", "sql-password"), 1)
        .await;
    let inventory = answers[0].output("report").expect("blob").clone();
    assert_valid_inventory(&inventory);
    assert_eq!(
        inventory["trigger"]["eventType"],
        "Microsoft.KeyVault.SecretNearExpiry"
    );
    let found = findings(&inventory);
    assert!(has(
        &found,
        "secretExpiring",
        "warning",
        "contoso-kv/sql-password"
    ));
    assert!(
        inventory["secrets"][0]["consumers"]
            .as_array()
            .is_some_and(|c| c.len() > 5)
    );

    assert!(
        emu.requests()
            .iter()
            .all(|r| r.method == "GET" || r.host_kind != "arm")
    );
    assert_eq!(emu.counters().secret_value_reads, 0);

    // One message per event, as loud as the event: critical for expired, a warning for near-expiry.
    let bodies = received.lock().expect("lock").clone();
    let severities: Vec<&str> = bodies
        .iter()
        .filter_map(|b| b["severity"].as_str())
        .collect();
    assert_eq!(severities, vec!["critical", "warning"], "{bodies:#?}");
    assert_eq!(
        bodies[0]["schema"],
        "adf-secret-refresh/inventory-notification/v1"
    );
    assert_eq!(bodies[0]["secrets"][0]["secret"], "expired");
    assert!(bodies[0]["secrets"][0]["expires"].is_string());
    assert_eq!(bodies[0]["secrets"][0]["consumers"][0]["name"], "expired");
    for body in &bodies {
        assert!(!body.to_string().contains("\"message\""), "metadata only");
        assert_no_secrets(&emu, &body.to_string());
    }
    host.stop().await;
}

#[tokio::test]
async fn the_daily_audit_function_writes_the_inventory() {
    let emu = emulator(audit_estate(), 50).await;
    let host = host(&emu).await;
    let answer = host
        .invoke(
            "Audit",
            json!({"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}}),
            json!({"sys": {"MethodName": "Audit", "UtcNow": "2026-11-26T06:00:00Z", "RandGuid": uuid::Uuid::new_v4().to_string()}}),
        )
        .await;
    assert_eq!(answer.status, 200);
    let inventory = answer.output("report").expect("the blob output").clone();
    assert_valid_inventory(&inventory);
    assert_eq!(inventory["trigger"]["kind"], "timer");
    assert!(answer.output("attention").is_some());
    let found = findings(&inventory);
    // ADF_REFRESH_VAULTS is contoso-kv: the others are not heard.
    assert!(has(
        &found,
        "vaultNotCovered",
        "warning",
        "https://locked-kv.vault.azure.net/"
    ));
    host.stop().await;
}

/// A fixed inventory from the pure builder: fixed clock, fixed ids, every status a table shows.
fn fixed_inventory() -> adf_secret_refresh::inventory::Inventory {
    use adf_secret_refresh::azure::keyvault::VersionMetadata;
    use adf_secret_refresh::inventory::{self, Assessment, Metadata, SecretKey};
    use adf_secret_refresh::model::{Platform, Snapshot};
    use adf_secret_refresh::plan::FactorySnapshot;
    const NOW: i64 = 1_795_000_000;
    let id = factory_id(RG, "adf-sales");
    let sales = FactorySnapshot {
        id: id.clone(),
        resource: json!({"id": id, "properties": {"repoConfiguration": {"type": "FactoryVSTSConfiguration"}}}),
        linked_services: vec![
            kv_ls("KeyVault", "https://contoso-kv.vault.azure.net/"),
            kv_ls("ChinaVault", "https://contoso-kv.vault.azure.cn/"),
            sql("SalesSql", kv_ref("KeyVault", json!("sql-password"))),
            with(
                sql("SalesSqlPinned", kv_ref("KeyVault", json!("sql-password"))),
                "/properties/typeProperties/password/secretVersion",
                json!("v1"),
            ),
            sql("Warehouse", kv_ref("KeyVault", json!("dwh-password"))),
            sql("ChinaSql", kv_ref("ChinaVault", json!("sql-password"))),
            json!({"name": "Blob", "properties": {"type": "AzureBlobStorage", "typeProperties": {
                "connectionString": {"type": "SecureString", "value": "**********"}}}}),
        ],
        credentials: vec![],
        ..FactorySnapshot::default()
    };
    // A web app's staging slot pinned to the old version, and an API Management named value that follows it.
    let mut slot = Snapshot::new(
        Platform::AppService,
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/app-sales/slots/staging"
        ),
        json!({"kind": "app"}),
    );
    slot.app_settings = vec![json!({"name": "SqlPassword", "properties": {
        "reference": "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/sql-password/v1)"}})];
    let mut apim = Snapshot::new(
        Platform::ApiManagement,
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ApiManagement/service/apim-sales"
        ),
        json!({}),
    );
    apim.named_values = vec![
        json!({"name": "sql-password", "properties": {"displayName": "sql-password",
        "secret": true, "keyVault": {"secretIdentifier": "https://contoso-kv.vault.azure.net/secrets/sql-password"}}}),
    ];
    let v = |id: &str, created: i64, expires: Option<i64>| VersionMetadata {
        version: id.into(),
        enabled: Some(true),
        created: Some(created),
        not_before: None,
        expires,
    };
    let metadata = std::collections::HashMap::from([
        (
            SecretKey::new("contoso-kv", "vault.azure.net", "sql-password"),
            Metadata::Versions(vec![
                v("v1", NOW - 90 * DAY, None),
                v("v2", NOW - DAY, Some(NOW + 5 * DAY)),
            ]),
        ),
        (
            SecretKey::new("contoso-kv", "vault.azure.net", "dwh-password"),
            Metadata::Versions(vec![v("w1", NOW - 10 * DAY, Some(NOW + 200 * DAY))]),
        ),
    ]);
    let assessment = Assessment {
        now: NOW,
        thresholds: Default::default(),
        home_suffix: "vault.azure.net".into(),
        covered_vaults: Some(vec!["contoso-kv".into()]),
    };
    let scans = [sales, slot, apim]
        .iter()
        .map(|holder| inventory::scan_snapshot(holder, "vault.azure.net"))
        .collect();
    let (secrets, findings) = inventory::assemble(scans, &metadata, &assessment);
    let scopes = [adf_secret_refresh::config::Scope::parse(&scope()).expect("scope")];
    let mut inv = inventory::Inventory::start("inv-0001".into(), None, &scopes, Default::default());
    inv.secrets = secrets;
    inv.findings = findings;
    inv.summary.factories_scanned = 1;
    inv.summary.linked_services_scanned = 7;
    inv.summary.sites_scanned = 1;
    inv.summary.api_management_services_scanned = 1;
    inv.finish();
    inv.started_at = "2026-11-18T06:00:00Z".into();
    inv.finished_at = Some("2026-11-18T06:00:04Z".into());
    inv
}

#[test]
fn the_inventory_renders_as_text_markdown_and_csv() {
    use adf_secret_refresh::inventory;
    let inv = fixed_inventory();
    let json = serde_json::to_value(&inv).expect("serialises");
    assert_valid_inventory(&json);
    let text = inventory::text::render(&inv, false);
    assert!(!text.contains("matches the rotated secret") && !text.contains("not tested"));
    insta::assert_snapshot!("inventory_text", text);
    let markdown = inventory::markdown::render(&inv);
    assert_mermaid_well_formed(&markdown);
    insta::assert_snapshot!("inventory_markdown", markdown);
    let csv = inventory::csv::render(&inv);
    assert_eq!(parse_csv(&csv).len(), 7, "a header and six references");
    insta::assert_snapshot!("inventory_csv", csv.replace("\r\n", "\n"));
}

#[tokio::test]
async fn a_saved_inventory_can_be_shown_again_in_every_rendering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("inventory.json");
    std::fs::write(
        &path,
        serde_json::to_string(&fixed_inventory()).expect("serialises"),
    )
    .expect("write");
    for (output, expected) in [
        ("text", "Key Vault inventory: 3 secrets"),
        ("markdown", "```mermaid"),
        ("csv", "vault,vaultUrl,secret"),
        ("json", "adf-secret-refresh/inventory/v1"),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
        cmd.arg("show").arg(&path).args(["--output", output]);
        let run = exec(cmd).await;
        assert_eq!(run.code, 2, "{output}: {}", run.stderr);
        assert!(run.stdout.contains(expected), "{output}: {}", run.stdout);
    }
}

#[test]
fn every_channel_message_of_an_inventory_is_pinned() {
    use adf_secret_refresh::inventory::Severity;
    use adf_secret_refresh::notify;
    let inv = fixed_inventory();
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("serialises");
    insta::assert_snapshot!(
        "inventory_webhook",
        pretty(notify::webhook_body(&notify::Notice::of_inventory(
            &inv,
            Severity::Critical
        )))
    );
    insta::assert_snapshot!(
        "inventory_teams",
        pretty(notify::teams_message(&notify::Notice::of_inventory(
            &inv,
            Severity::Critical
        )))
    );
    insta::assert_snapshot!(
        "inventory_slack",
        pretty(notify::slack_message(&notify::Notice::of_inventory(
            &inv,
            Severity::Critical
        )))
    );
}

#[test]
fn an_incomplete_audit_says_so_in_teams_and_slack_as_a_report_does() {
    use adf_secret_refresh::inventory::Severity;
    use adf_secret_refresh::notify;
    let mut inv = fixed_inventory();
    inv.complete = false;
    let notice = notify::Notice::of_inventory(&inv, Severity::Warning);
    let said = "The audit did not complete; the inventory says why.";
    assert_eq!(notice.incomplete.as_deref(), Some(said));
    let teams = notify::teams_message(&notice);
    let body = teams["attachments"][0]["content"]["body"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(body.last().map(|b| b["text"].clone()), Some(json!(said)));
    let slack = notify::slack_message(&notice);
    let blocks = slack["blocks"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        blocks.last().map(|b| b["elements"][0]["text"].clone()),
        Some(json!(said))
    );
    // Each secret at risk names its most severe finding's owner, as a report's targets do.
    assert!(
        notice
            .items
            .iter()
            .all(|i| i.lines.iter().any(|l| l.contains("owner: ")))
    );
}

#[test]
fn inventory_notifications_carry_names_dates_and_codes_only() {
    use adf_secret_refresh::inventory::Severity;
    use adf_secret_refresh::notify;
    let inv = fixed_inventory();
    let messages: Vec<String> = inv.findings.iter().map(|f| f.message.clone()).collect();
    let teams = notify::teams_message(&notify::Notice::of_inventory(&inv, Severity::Critical));
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = teams["attachments"][0]["content"]["body"].to_string();
    assert!(card.contains("Critical: Key Vault audit"), "{card}");
    assert!(card.contains("contoso-kv/sql-password"), "{card}");
    let slack = notify::slack_message(&notify::Notice::of_inventory(&inv, Severity::Warning));
    assert!(slack["blocks"].as_array().is_some_and(|b| b.len() <= 50));
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Warning"))
    );
    let webhook = notify::webhook_body(&notify::Notice::of_inventory(&inv, Severity::Critical));
    for payload in [&teams, &slack, &webhook] {
        let text = payload.to_string();
        for message in &messages {
            assert!(!text.contains(message.as_str()), "a message text in {text}");
        }
    }
    // Only the secrets that need a person are listed: dwh-password is fine.
    assert!(!webhook["secrets"].to_string().contains("dwh-password"));
}

const DEMO_SUB: &str = "1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f";

fn demo_apps(path: &str) -> String {
    format!("/subscriptions/{DEMO_SUB}/resourceGroups/rg-apps-prod/providers/{path}")
}

/// The consumers of one secret as (platform, resource, kind, name, verdict).
fn consumers_of(secret: &Value) -> BTreeSet<(String, String, String, String, String)> {
    secret["consumers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (
                text("platform"),
                text("resource"),
                text("kind"),
                text("name"),
                text("verdict"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_inventory_lists_app_service_and_api_management_consumers_under_their_secret() {
    let emu = emulator(adf_emulator::demo_seed(), 50).await;
    let mut cmd = command(&emu, &format!("/subscriptions/{DEMO_SUB}"));
    cmd.args(["audit", "--output", "json"]);
    let run = exec(cmd).await;
    let inventory = inventory_of(&run);
    assert!(inventory["complete"] == true, "{}", run.stderr);

    let summary = &inventory["summary"];
    assert_eq!(summary["sitesScanned"], 5, "four sites and one slot");
    assert_eq!(summary["apiManagementServicesScanned"], 1);
    assert!(summary["factoriesScanned"].as_u64() > Some(0));

    let sql = secret(
        &inventory,
        "https://contoso-kv.vault.azure.net/",
        "sql-password",
    );
    let consumers = consumers_of(sql);
    let web = demo_apps("Microsoft.Web/sites/app-contoso-web");
    let app = |resource: &str, kind: &str, name: &str, verdict: &str| {
        (
            "appService".to_string(),
            resource.to_string(),
            kind.to_string(),
            name.to_string(),
            verdict.to_string(),
        )
    };
    for expected in [
        app(&web, "appSetting", "SqlPassword", "resave"),
        app(&web, "connectionString", "Sales", "resave"),
        app(
            &format!("{web}/slots/staging"),
            "appSetting",
            "SqlPassword",
            "resave",
        ),
        app(
            &demo_apps("Microsoft.Web/sites/func-contoso-ingest"),
            "appSetting",
            "SqlPassword",
            "resave",
        ),
        app(
            &demo_apps("Microsoft.Web/sites/app-contoso-reports"),
            "appSetting",
            "SqlPassword",
            "pinned",
        ),
        (
            "apiManagement".into(),
            demo_apps("Microsoft.ApiManagement/service/apim-contoso"),
            "namedValue".into(),
            "sql-password".into(),
            "resave".into(),
        ),
        (
            "apiManagement".into(),
            demo_apps("Microsoft.ApiManagement/service/apim-contoso"),
            "namedValue".into(),
            "sql-password-pinned".into(),
            "pinned".into(),
        ),
    ] {
        assert!(
            consumers.contains(&expected),
            "{expected:?} is not among the consumers of contoso-kv/sql-password: {consumers:#?}"
        );
    }
    assert!(
        consumers.iter().any(|c| c.0 == "dataFactory"),
        "the linked services are listed under the same secret"
    );
    assert!(
        !consumers.iter().any(|c| c.3 == "environment"),
        "a plain named value is not a consumer"
    );
    let slot = sql["consumers"]
        .as_array()
        .and_then(|c| {
            c.iter().find(|c| {
                c["resource"]
                    .as_str()
                    .is_some_and(|r| r.ends_with("/slots/staging"))
            })
        })
        .expect("the slot's consumer");
    assert_eq!(slot["path"], "appSettings/SqlPassword");
    assert!(slot.get("factory").is_none(), "{slot}");

    let found = findings(&inventory);
    let pinned: Vec<&Value> = inventory["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["code"] == "pinnedToOldVersion" && f["subject"] == "contoso-kv/sql-password")
        .collect();
    for holder in [
        "app-contoso-reports/SqlPassword",
        "apim-contoso/sql-password-pinned",
    ] {
        let finding = pinned
            .iter()
            .find(|f| f["message"].as_str().is_some_and(|m| m.starts_with(holder)))
            .unwrap_or_else(|| panic!("no pinnedToOldVersion for {holder}: {pinned:#?}"));
        assert_eq!(finding["owner"], "appOwner");
    }
    assert!(
        has(
            &found,
            "unresolvedReference",
            "warning",
            "/sites/logic-contoso-orders/config/configreferences/appsettings/OrdersDbPassword"
        ),
        "the Logic App's unparsable reference is a finding: {found:#?}"
    );

    assert_eq!(
        emu.counters().secret_read_attempts,
        0,
        "an audit never asks for a setting's or a named value's value"
    );
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn every_rendering_of_the_inventory_names_the_platform_of_a_site_or_named_value() {
    let emu = emulator(adf_emulator::demo_seed(), 50).await;
    let scope = format!("/subscriptions/{DEMO_SUB}/resourceGroups/rg-apps-prod");
    let rendering = |output: &str| {
        let mut cmd = command(&emu, &scope);
        cmd.args(["audit", "--output", output]);
        exec(cmd)
    };
    let text = rendering("text").await.stdout;
    assert!(
        text.contains("4 App Service sites and slots")
            || text.contains("5 App Service sites and slots"),
        "{text}"
    );
    assert!(text.contains("1 API Management service"), "{text}");
    assert!(
        text.contains("app-contoso-web/staging (App Service)"),
        "{text}"
    );
    assert!(text.contains("apim-contoso (API Management)"), "{text}");
    assert!(text.contains("Sales (connection string)"), "{text}");

    let markdown = rendering("markdown").await.stdout;
    assert_mermaid_well_formed(&markdown);
    assert!(
        markdown.contains("| app-contoso-web/staging (App Service) | SqlPassword |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| apim-contoso (API Management) | sql-password-pinned |"),
        "{markdown}"
    );

    let rows = parse_csv(&rendering("csv").await.stdout);
    let column = |name: &str| rows[0].iter().position(|c| c == name).expect(name);
    let named_value = rows
        .iter()
        .find(|r| r[column("name")] == "sql-password-pinned")
        .expect("the pinned named value has a row");
    assert_eq!(named_value[column("platform")], "apiManagement");
    assert_eq!(named_value[column("kind")], "namedValue");
    assert_eq!(
        named_value[column("resource")],
        demo_apps("Microsoft.ApiManagement/service/apim-contoso")
    );
    assert_eq!(named_value[column("factory")], "");
    assert!(named_value[column("findings")].contains("pinnedToOldVersion"));
    assert_eq!(emu.counters().secret_read_attempts, 0);
}
