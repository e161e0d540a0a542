//! The HTML page of a report and of an inventory, read as text without a browser: what needs a person comes
//! first, hostile names are shown and never run, nothing is loaded from elsewhere, and the page comes out of
//! `show --output html` and out of the deployed app's status function for a browser.
//!
//! `write_the_pages_for_the_browser_check` (ignored; `.ci/run` runs it) writes the fixture pages, their
//! documents and what a person should see on them to `target/pages/`, where `tests/browser/check.mjs` opens
//! them in headless Chromium.

#[path = "support/report_fixture.rs"]
mod fixture;
#[path = "support/inventory_fixture.rs"]
mod inventory_fixture;

use adf_emulator::host::{HostSimulator, blob_input};
use adf_secret_refresh::inventory::{self, Inventory};
use adf_secret_refresh::report::{
    self, Report, Resave, ResaveStatus, Target, Test, TestStatus, Verdict, html,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A linked-service name that would run as script if the page did not escape it.
const HOSTILE: &str = "ls_<script>alert(\"pwned\")</script>";

/// The fixture report, with a Synapse target beside the factories' and a target with a hostile name.
fn page_report() -> Report {
    let mut report = fixture::realistic_report();
    let mut synapse = fixture::target("ignored", "ls_sql_pool", "AzureSqlDW", Verdict::Resave);
    synapse.platform = adf_secret_refresh::model::Platform::Synapse;
    synapse.factory = inventory_fixture::workspace("syn-analytics");
    synapse.resource = synapse.factory.clone();
    let mut hostile = fixture::target("adf-sales", HOSTILE, "AzureSqlDatabase", Verdict::Ambiguous);
    hostile.reason =
        "The name comes from a parameter </pre><img src=x onerror=alert(1)> whose default matches."
            .into();
    hostile.resave = Resave::with_status(ResaveStatus::Skipped, None);
    hostile.test = Test::not_tested("not re-saved, so not tested");
    report.targets.insert(1, synapse);
    report.targets.push(hostile);
    report.summarise();
    report
}

/// A dry run where every target is fine.
fn fine_report() -> Report {
    let mut report = fixture::empty_report();
    report.command = report::Command::Plan;
    report.dry_run = true;
    for name in ["ls_sql_sales", "ls_sql_finance", "ls_blob_archive"] {
        let mut t = fixture::target("adf-sales", name, "AzureSqlDatabase", Verdict::Resave);
        t.resave = Resave::with_status(ResaveStatus::DryRun, None);
        t.test = Test::not_tested("a dry run does not test");
        report.targets.push(t);
    }
    report.summary.factories_scanned = 1;
    report.summary.linked_services_scanned = 12;
    report.summarise();
    report
}

/// `adf-sales/ls_x`, as the page names a target.
fn shown_name(t: &Target) -> String {
    format!("{}/{}", inventory::short(&t.factory), t.name)
}

/// Text as the page's templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn position(page: &str, needle: &str) -> usize {
    page.find(needle)
        .unwrap_or_else(|| panic!("the page does not show {needle:?}"))
}

/// Nothing in the page's markup names a resource elsewhere: no `src`, no stylesheet or import, no `url(...)`,
/// no link that is not to a place on the page, and no `http(s)://` inside any tag.
fn assert_self_contained(page: &str) {
    for forbidden in ["@import", "url("] {
        assert!(!page.contains(forbidden), "the page holds {forbidden:?}");
    }
    for (i, _) in page.match_indices("href=\"") {
        assert!(
            page[i + 6..].starts_with('#'),
            "a link leaves the page: {}",
            &page[i..(i + 60).min(page.len())]
        );
    }
    // Text is escaped, so every `<` opens a tag of the page's own.
    for tag in page.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let name = tag.split_whitespace().next().unwrap_or_default();
        assert!(
            ![
                "link", "img", "iframe", "object", "embed", "frame", "audio", "video", "source"
            ]
            .contains(&name),
            "the page has a <{name}> element"
        );
        for loads in ["src=", "http:", "https:", "xmlns", "url("] {
            assert!(!tag.contains(loads), "a tag names a resource: <{tag}>");
        }
    }
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;;"
    ));
}

#[test]
fn targets_needing_attention_come_first_with_cause_fix_steps_owner_and_blast_radius() {
    let r = page_report();
    let page = html::report(&r);
    let rest = position(&page, "id=\"rest\"");
    let needing: Vec<&Target> =
        report::by_soonest_next_run(r.targets.iter().filter(|t| t.needs_attention()));
    assert!(
        needing.len() > 5,
        "the fixture has targets of every kind needing attention"
    );
    let mut last = 0;
    for t in &needing {
        let at = position(&page, &format!("<h3>{} <span", escaped(&shown_name(t))));
        assert!(
            at > last && at < rest,
            "{} is not in attention order",
            t.name
        );
        last = at;
    }
    for t in r.targets.iter().filter(|t| !t.needs_attention()) {
        assert!(position(&page, &escaped(&shown_name(t))) > rest);
    }
    // The soonest next run leads: the landing share runs at 06:30, the partner feed at 09:15.
    assert_eq!(needing[0].name, "ls_fileshare_landing");
    assert_eq!(needing[1].name, "ls_rest_partner_api");
    assert!(page.contains(
        "<span class=\"label\">Blast radius</span>breaks 4 pipelines; next run 09:15 UTC (in 3 h 12 min, trigger <code>nightly_load</code>)"
    ));
    assert!(page.contains("<code>pl_finance_close</code>"));
    let partner = &needing[1];
    let diagnosis = partner.test.diagnosis.as_ref().expect("a diagnosis");
    let cause = position(&page, &escaped(&diagnosis.cause));
    let mut steps = String::from("<ol class=\"fix\">");
    for step in &diagnosis.fix {
        steps.push_str(&format!("\n<li>{}</li>", escaped(step)));
    }
    assert!(
        position(&page, &steps) > cause,
        "numbered fix steps follow the cause"
    );
    assert!(page.contains("Who must act</span>an Entra ID administrator (entraAdmin)"));
    // The counts a person reads first.
    assert!(page.contains(&format!(
        "data-count=\"attention\"><dt>Need attention</dt><dd>{}</dd>",
        needing.len()
    )));
    assert!(page.contains(&format!(
        "data-count=\"affected\"><dt>Affected</dt><dd>{}</dd>",
        r.targets.len()
    )));
    assert!(page.contains("<h1>Refresh: incomplete</h1>"));
}

#[test]
fn a_hostile_linked_service_name_is_shown_as_text_and_never_runs() {
    let page = html::report(&page_report());
    assert!(page.contains(&escaped(HOSTILE)));
    assert!(page.contains("&#60;/pre&#62;&#60;img src=x onerror=alert(1)&#62;"));
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!page.contains("<img"));
    let inventory = html::inventory(&inventory_fixture::realistic_inventory());
    assert!(inventory.contains(&escaped(inventory_fixture::HOSTILE_NAME)));
    assert_eq!(inventory.matches("<script").count(), 1);
}

#[test]
fn the_pages_load_nothing_from_elsewhere() {
    assert_self_contained(&html::report(&page_report()));
    assert_self_contained(&html::report(&fine_report()));
    assert_self_contained(&html::report(&fixture::empty_report()));
    assert_self_contained(&html::inventory(&inventory_fixture::realistic_inventory()));
    assert_self_contained(&html::inventory(&inventory_fixture::incomplete_inventory()));
    let mut empty = inventory_fixture::realistic_inventory();
    empty.secrets.clear();
    empty.findings.clear();
    empty.finish();
    let page = html::inventory(&empty);
    assert_self_contained(&page);
    assert!(page.contains("<h1>Key Vault inventory: all fine</h1>"));
    assert!(page.contains("Of 0 secrets with an expiry date"));
}

#[test]
fn the_page_holds_no_token_from_the_report() {
    // The fixture keeps a token in ADF's raw test answer, where only the JSON may hold it.
    let page = html::report(&fixture::realistic_report());
    assert!(!page.contains(fixture::FAKE_TOKEN));
}

#[test]
fn a_report_with_nothing_to_do_says_all_fine() {
    let page = html::report(&fine_report());
    assert!(page.contains("<h1>Plan (dry run, nothing written): all fine</h1>"));
    assert!(!page.contains("id=\"attention\""));
    assert!(page.contains("data-count=\"attention\"><dt>Need attention</dt><dd>0</dd>"));
    assert_eq!(page.matches("data-status=\"wouldResave\"").count(), 3);
}

#[test]
fn the_inventory_page_lists_secrets_by_vault_findings_by_severity_and_a_timeline() {
    let inv = inventory_fixture::realistic_inventory();
    let page = html::inventory(&inv);
    // Vaults in order, each secret once with every consumer in its table.
    let data = position(&page, "<h3>kv-data-prod <span");
    let synapse = position(&page, "<h3>kv-synapse-prod <span");
    assert!(data < synapse);
    for secret in &inv.secrets {
        let at = position(&page, &format!("<h3>{} <span class=\"badge", secret.secret));
        assert_eq!(at < synapse, secret.vault == "kv-data-prod");
    }
    let consumers = inv.secrets.iter().map(|s| s.consumers.len()).sum::<usize>();
    let rows = page
        .split("<table class=\"consumers sortable\">")
        .skip(1)
        .map(|t| {
            t.split("</table>")
                .next()
                .unwrap_or_default()
                .matches("<tr><td>")
                .count()
        })
        .sum::<usize>();
    assert_eq!(rows, consumers);
    assert!(page.contains("<td>Synapse</td><td>syn-analytics</td><td>ls_sql_pool"));
    // Findings: critical, then warning, then info.
    let critical = position(&page, "id=\"severity-critical\"");
    let warning = position(&page, "id=\"severity-warning\"");
    let info = position(&page, "id=\"severity-info\"");
    assert!(critical < warning && warning < info);
    assert!(page.contains("Who must act</span>the secret&#39;s owner (secretOwner)"));
    // Each secret's card names its findings.
    let partner = position(&page, "<h3>partner-api-secret <span");
    let card = page[partner..]
        .split("</article>")
        .next()
        .unwrap_or_default();
    assert!(card.contains("<span class=\"badge bad\">secretExpired</span>"));
    // One mark per dated secret, coloured by where its date falls; the thresholds shaded.
    let marks: Vec<&str> = page
        .match_indices("<circle class=\"mark ")
        .map(|(i, _)| page[i + 20..].split('"').next().unwrap_or_default())
        .collect();
    let mut sorted = marks.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["critical", "expired", "expired", "ok", "ok", "warning"]
    );
    assert!(page.contains("class=\"zone zone-critical\""));
    assert!(page.contains("class=\"zone zone-warning\""));
    assert!(page.contains("1 secret with no expiry date is not drawn"));
    assert!(page.contains("data-count=\"critical\"><dt>Critical</dt><dd>3</dd>"));
}

#[test]
fn the_large_inventory_renders_every_secret_and_consumer() {
    let inv = inventory_fixture::large_inventory();
    assert_eq!(inv.secrets.len(), 500);
    assert_eq!(inv.summary.references, 5_000);
    let page = html::inventory(&inv);
    assert_eq!(page.matches("data-group=\"secrets\"").count(), 500);
    assert_eq!(page.matches("<tr><td>").count(), 5_000);
    assert_eq!(page.matches("<circle class=\"mark ").count(), 450);
    assert_self_contained(&page);
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh"))
}

/// `adf-secret-refresh show FILE --output html`: the page on stdout and the document's exit code.
fn show_html(document: &Value) -> (String, i32) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("document.json");
    std::fs::write(&path, document.to_string()).expect("writes the document");
    let out = std::process::Command::new(binary())
        .args(["show", "--output", "html"])
        .arg(&path)
        .output()
        .expect("runs");
    (
        String::from_utf8(out.stdout).expect("UTF-8"),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn show_output_html_prints_one_page_for_a_report_and_for_an_inventory() {
    let report = page_report();
    let (page, code) = show_html(&serde_json::to_value(&report).expect("serialises"));
    assert_eq!(code, report.exit_code());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("</html>").count(), 1);
    assert!(page.contains("<h1>Refresh: incomplete</h1>"));
    let inv: Inventory = inventory_fixture::realistic_inventory();
    let (page, code) = show_html(&serde_json::to_value(&inv).expect("serialises"));
    assert_eq!(code, inv.exit_code());
    assert!(page.contains("<h1>Key Vault inventory: attention needed</h1>"));
}

#[test]
fn lint_refuses_output_html() {
    let out = std::process::Command::new(binary())
        .args(["lint", ".", "--output", "html"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output html is for"));
}

const FUNCTION_KEY: &str = "fnkey-test-html-page";

/// `GET /api/refresh/{id}` through the simulated host, with the run's blob and the given `Accept`.
async fn status(host: &HostSimulator, id: &str, blob: &Value, accept: Option<&str>) -> Value {
    let mut headers = json!({ "x-functions-key": [FUNCTION_KEY] });
    if let Some(accept) = accept {
        headers["Accept"] = json!([accept]);
    }
    let req = json!({
        "Url": format!("https://app.azurewebsites.net/api/refresh/{id}"),
        "Method": "GET",
        "Query": "{}",
        "Headers": headers,
        "Params": { "id": id },
        "Body": null,
    });
    let data = json!({ "req": req, "run": blob_input(Some(&blob.to_string())) });
    let answer = host
        .invoke(
            "RefreshStatus",
            data,
            json!({ "sys": { "MethodName": "RefreshStatus" } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.output("res").cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_status_function_answers_a_browser_with_the_page_and_a_script_with_json() {
    let env = vec![
        (
            "ADF_REFRESH_SCOPE".to_string(),
            format!("/subscriptions/{}", fixture::SUB),
        ),
        (
            "ADF_REFRESH_ARM_ENDPOINT".to_string(),
            "https://127.0.0.1:9".to_string(),
        ),
    ];
    let host = HostSimulator::start(binary(), &env)
        .await
        .expect("the handler starts");
    let id = "7c1e2f4a-0b3d-4e5f-8a6b-7c8d9e0f1a2b";
    let mut report = page_report();
    report.id = id.into();
    let blob = serde_json::to_value(&report).expect("serialises");

    let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let res = status(&host, id, &blob, Some(chrome)).await;
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["headers"]["Content-Type"], "text/html; charset=utf-8");
    assert!(
        res["headers"]["Content-Security-Policy"]
            .as_str()
            .is_some_and(|p| p.starts_with("default-src 'none'"))
    );
    let page = res["body"].as_str().expect("the page as text");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(&format!("Report {id}")));
    assert_eq!(page, html::report(&report));

    for accept in [None, Some("application/json"), Some("*/*")] {
        let res = status(&host, id, &blob, accept).await;
        assert_eq!(res["headers"]["Content-Type"], "application/json");
        assert_eq!(res["body"]["id"], id, "{accept:?} gets the report as JSON");
    }
    assert!(!host.logs().contains(FUNCTION_KEY));
    host.stop().await;
}

/// Where the browser check reads the pages: `target/pages/` of this build.
fn pages_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("pages")
}

/// Days from the inventory's "today" to each dated secret's expiry, and where the page should draw it.
fn expected_marks(inv: &Inventory) -> Vec<Value> {
    let today: jiff::Timestamp = inventory_fixture::TODAY.parse().expect("RFC 3339");
    inv.secrets
        .iter()
        .filter_map(|s| {
            let at: jiff::Timestamp = s.expires.as_deref()?.parse().ok()?;
            let days = (at.as_second() - today.as_second()) as f64 / 86_400.0;
            let zone = if days < 0.0 {
                "expired"
            } else if days <= f64::from(inv.thresholds.critical_days) {
                "critical"
            } else if days <= f64::from(inv.thresholds.warning_days) {
                "warning"
            } else {
                "ok"
            };
            Some(json!({ "secret": format!("{}/{}", s.vault, s.secret), "days": days, "zone": zone }))
        })
        .collect()
}

/// A verdict as the report spells it.
fn report_verdict(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn report_expectations(name: &str, r: &Report) -> Value {
    let attention: Vec<String> =
        report::by_soonest_next_run(r.targets.iter().filter(|t| t.needs_attention()))
            .into_iter()
            .map(shown_name)
            .collect();
    // For the verdict and the platform: the rarest value present, and how many targets have it.
    let rarest = |key: &dyn Fn(&Target) -> String| {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for t in &r.targets {
            *counts.entry(key(t)).or_default() += 1;
        }
        counts.into_iter().min_by_key(|(_, n)| *n)
    };
    let mut filters = Vec::new();
    if let Some((value, visible)) = rarest(&|t| report_verdict(t.verdict)) {
        filters.push(json!({ "select": "verdict", "value": value, "visible": visible }));
    }
    if let Some((value, visible)) = rarest(&|t| html::target_platform(t).key.to_string()) {
        filters.push(json!({ "select": "platform", "value": value, "visible": visible }));
    }
    // A failed test is its own status unless the re-save failed before it.
    let failed_tests = r
        .targets
        .iter()
        .filter(|t| {
            t.resave.status != ResaveStatus::Failed
                && matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
        })
        .count();
    if failed_tests > 0 {
        filters.push(json!({ "select": "status", "value": "testFailed", "visible": failed_tests }));
    }
    json!({
        "name": name, "kind": "report",
        "targets": r.targets.len(),
        "attention": attention,
        "counts": { "affected": r.summary.affected, "attention": attention.len(),
                    "testsFailed": r.summary.tests_failed },
        "filters": filters,
    })
}

fn inventory_expectations(name: &str, inv: &Inventory) -> Value {
    let in_vault = |vault: &str| inv.secrets.iter().filter(|s| s.vault == vault).count();
    let vault = &inv.secrets[0].vault;
    json!({
        "name": name, "kind": "inventory",
        "today": inventory_fixture::TODAY,
        "secrets": inv.secrets.len(),
        "consumers": inv.summary.references,
        "counts": { "secrets": inv.summary.secrets, "consumers": inv.summary.references,
                    "critical": inv.summary.critical, "warning": inv.summary.warning },
        "marks": expected_marks(inv),
        "filters": [{ "select": "vault", "value": format!("{vault}.vault.azure.net"),
                      "visible": in_vault(vault) }],
    })
}

#[test]
#[ignore = "writes target/pages/ for the browser check in .ci/run"]
fn write_the_pages_for_the_browser_check() {
    let dir = pages_dir();
    std::fs::create_dir_all(&dir).expect("creates target/pages");
    let mut expectations = Vec::new();
    let reports = [("report", page_report()), ("report-fine", fine_report())];
    let inventories = [
        ("inventory", inventory_fixture::realistic_inventory()),
        ("inventory-large", inventory_fixture::large_inventory()),
    ];
    let documents = reports
        .iter()
        .map(|(name, r)| (*name, serde_json::to_value(r).expect("serialises")))
        .chain(
            inventories
                .iter()
                .map(|(name, i)| (*name, serde_json::to_value(i).expect("serialises"))),
        );
    // The pages come out of the command a person runs.
    for (name, document) in documents {
        let (page, _) = show_html(&document);
        assert!(page.starts_with("<!DOCTYPE html>"), "{name}");
        std::fs::write(dir.join(format!("{name}.html")), page).expect("writes the page");
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&document).expect("serialises"),
        )
        .expect("writes the document");
    }
    for (name, r) in &reports {
        expectations.push(report_expectations(name, r));
    }
    for (name, inv) in &inventories {
        expectations.push(inventory_expectations(name, inv));
    }
    std::fs::write(
        dir.join("expect.json"),
        serde_json::to_string_pretty(&json!({ "pages": expectations })).expect("serialises"),
    )
    .expect("writes the expectations");
    println!("pages written to {}", dir.display());
}
