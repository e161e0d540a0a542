//! The renderings of a report (text, with and without colour, and Markdown) as snapshots, and the published
//! schema (`docs/report.schema.json`) against the `Report` type.
//!
//! The fixture is built from the report's constructors (`support/report_fixture.rs`); review a changed
//! snapshot by eye before accepting it (`INSTA_UPDATE=always cargo test --test report_rendering`).

#[path = "support/report_fixture.rs"]
mod fixture;
#[path = "support/schema.rs"]
mod schema;

use adf_secret_refresh::report::{self, NotificationOutcome, Report};
use serde_json::{Value, json};

fn as_json(report: &Report) -> Value {
    serde_json::to_value(report).expect("a report serialises")
}

#[test]
fn the_fixture_has_everything_the_renderings_must_show() {
    let r = fixture::realistic_report();
    let verdicts: std::collections::BTreeSet<_> = r.targets.iter().map(|t| t.verdict).collect();
    assert_eq!(verdicts.len(), 4, "every verdict");
    assert!(r.targets.iter().any(|t| {
        t.test
            .diagnosis
            .as_ref()
            .is_some_and(|d| d.code == "AADSTS7000222")
    }));
    assert!(
        r.targets
            .iter()
            .any(|t| t.notes.iter().any(|n| n == "gitMode"))
    );
    assert!(r.targets.iter().any(|t| {
        t.notes
            .iter()
            .any(|n| n == "selfHostedIntegrationRuntimeOffline")
    }));
    assert!(!r.findings.is_empty() && !r.errors.is_empty());
    assert!(r.summary.attention);
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn the_fixture_matches_the_published_schema() {
    let mut r = fixture::realistic_report();
    schema::assert_valid_report(&as_json(&r));
    // With the optional parts present too.
    r.duplicate_of = Some("run-earlier".into());
    r.notifications = vec![
        NotificationOutcome {
            channel: "webhook".into(),
            delivered: true,
            error: None,
        },
        NotificationOutcome {
            channel: "slack".into(),
            delivered: false,
            error: Some("HTTP 500 (after 3 attempts)".into()),
        },
    ];
    r.targets[0].via_credential = Some("cred_sp_partner".into());
    r.targets[0].resave.error = Some("conflict".into());
    r.targets[0].references[0].unresolved_because = Some("an expression".into());
    schema::assert_valid_report(&as_json(&r));
}

#[test]
fn an_audit_without_a_secret_and_a_clean_run_match_the_schema() {
    let mut audit = fixture::empty_report();
    audit.command = report::Command::Audit;
    audit.secret = None;
    audit.trigger = report::Trigger {
        kind: report::TriggerKind::Timer,
        ..report::Trigger::default()
    };
    audit.summarise();
    schema::assert_valid_report(&as_json(&audit));

    let mut clean = fixture::empty_report();
    clean.dry_run = true;
    clean.command = report::Command::Plan;
    clean.targets = vec![fixture::target(
        "adf-sales",
        "ls_synapse_dw",
        "AzureSqlDW",
        report::Verdict::Resave,
    )];
    clean.targets[0].resave = report::Resave::with_status(report::ResaveStatus::DryRun, None);
    clean.targets[0].test = report::Test::not_tested("dry run: nothing was written or tested");
    clean.summarise();
    assert!(!clean.summary.attention);
    schema::assert_valid_report(&as_json(&clean));
}

/// A change that makes a report document invalid.
type Breaker = Box<dyn Fn(&mut Value)>;

#[test]
fn the_schema_refuses_drift() {
    let good = as_json(&fixture::realistic_report());
    assert!(schema::is_valid_report(&good));
    let broken: Vec<(&str, Breaker)> = vec![
        (
            "an unknown top-level field",
            Box::new(|v| v["extra"] = json!(1)),
        ),
        (
            "an unknown target field",
            Box::new(|v| v["targets"][0]["etag"] = json!("x")),
        ),
        (
            "an unknown verdict",
            Box::new(|v| v["targets"][0]["verdict"] = json!("notAffected")),
        ),
        (
            "an unknown re-save status",
            Box::new(|v| v["targets"][0]["resave"]["status"] = json!("done")),
        ),
        (
            "an unknown test status",
            Box::new(|v| v["targets"][0]["test"]["status"] = json!("ok")),
        ),
        (
            "an unknown trigger",
            Box::new(|v| v["trigger"]["kind"] = json!("manual")),
        ),
        (
            "an unknown command",
            Box::new(|v| v["command"] = json!("apply")),
        ),
        (
            "another schema",
            Box::new(|v| v["schema"] = json!("adf-secret-refresh/report/v2")),
        ),
        (
            "a missing summary count",
            Box::new(|v| {
                if let Some(s) = v["summary"].as_object_mut() {
                    s.remove("testsFailed");
                }
            }),
        ),
        (
            "a snake_case field",
            Box::new(|v| v["dry_run"] = json!(false)),
        ),
    ];
    for (what, break_it) in broken {
        let mut doc = good.clone();
        break_it(&mut doc);
        assert!(!schema::is_valid_report(&doc), "the schema accepted {what}");
    }
}

#[test]
fn text_without_colour() {
    let text = report::text::render(&fixture::realistic_report(), false);
    assert!(!text.contains('\x1b'), "no colour unless asked");
    insta::assert_snapshot!("text_plain", text);
}

#[test]
fn text_with_colour() {
    let text = report::text::render(&fixture::realistic_report(), true);
    assert!(text.contains("\x1b[31m"));
    // The escape character is shown as `\e` so that the snapshot reads as text.
    insta::assert_snapshot!("text_colour", text.replace('\x1b', "\\e"));
}

#[test]
fn markdown() {
    let mut r = fixture::realistic_report();
    r.notifications = vec![NotificationOutcome {
        channel: "teams".into(),
        delivered: false,
        error: Some("HTTP 400: Bad Request (after 1 attempt)".into()),
    }];
    insta::assert_snapshot!("markdown", report::markdown::render(&r));
}

#[test]
fn a_clean_run_renders_as_all_fine() {
    let mut r = fixture::empty_report();
    r.targets = vec![fixture::target(
        "adf-sales",
        "ls_synapse_dw",
        "AzureSqlDW",
        report::Verdict::Resave,
    )];
    r.summarise();
    let text = report::text::render(&r, false);
    assert!(text.contains("All fine."), "{text}");
    assert!(!text.contains("Needs attention"), "{text}");
    let md = report::markdown::render(&r);
    assert!(
        md.contains("✅ all fine") && md.contains("Exit code 0."),
        "{md}"
    );
    assert!(!md.contains("## Needs attention"), "{md}");
}

#[test]
fn markdown_keeps_adf_messages_from_breaking_the_document() {
    let mut r = fixture::realistic_report();
    r.targets[2].test.message =
        Some("line one | with ``` fences\n# not a heading\n<script>".into());
    let md = report::markdown::render(&r);
    assert!(
        md.contains(
            "````text\n  line one | with ``` fences\n  # not a heading\n  <script>\n  ````"
        ),
        "{md}"
    );
}

#[test]
fn the_example_in_the_docs_matches_the_schema() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reports.md"))
        .expect("docs/reports.md");
    let after = docs
        .split_once("### A complete example")
        .map(|(_, rest)| rest)
        .expect("the example section");
    let json = after
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(json, _)| json)
        .expect("a JSON block");
    let example: Value = serde_json::from_str(json).expect("the example is JSON");
    schema::assert_valid_report(&example);
    let report: Report = serde_json::from_value(example).expect("the example is a Report");
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn a_saved_report_whose_findings_say_error_is_shown_with_critical_findings() {
    // A report as written before one findings vocabulary: severity `error`, and no owner.
    let mut old = as_json(&fixture::realistic_report());
    old["findings"] = json!([{"code": "secretExpired", "severity": "error",
        "message": "Secret kv-data-prod/sql-etl-password has expired.", "subject": "kv-data-prod/sql-etl-password"}]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.json");
    std::fs::write(&path, old.to_string()).expect("write");

    let run = |output: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"))
            .arg("show")
            .arg(&path)
            .args(["--output", output])
            .output()
            .expect("the binary runs")
    };
    let json_run = run("json");
    assert_eq!(
        json_run.status.code(),
        Some(fixture::realistic_report().exit_code()),
        "{}",
        String::from_utf8_lossy(&json_run.stderr)
    );
    let shown: Value = serde_json::from_slice(&json_run.stdout).expect("one JSON document");
    assert_eq!(shown["findings"][0]["severity"], "critical");
    assert_eq!(shown["findings"][0]["owner"], "secretOwner");
    schema::assert_valid_report(&shown);
    let text = String::from_utf8_lossy(&run("text").stdout).into_owned();
    assert!(
        text.contains("[critical] secretExpired (kv-data-prod/sql-etl-password)"),
        "{text}"
    );
}
