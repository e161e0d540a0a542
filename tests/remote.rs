//! `plan|refresh --remote`: the CLI drives a deployed app through the Functions host's front end (simulated,
//! with per-function keys), with the real handler under it and the emulator as Azure. The CLI itself has no
//! Azure settings, no credential and no scope.

mod common;

use adf_emulator::host::HostSimulator;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const REFRESH_KEY: &str = "FAKE-TEST-ONLY-refresh-key-Qw81";
const STATUS_KEY: &str = "FAKE-TEST-ONLY-refreshstatus-key-Zp27";

/// The handler under the simulated host, with its front end; returns the host and the app's URL.
async fn app(emu: &adf_emulator::Emulator, extra: &[(&str, &str)]) -> (Arc<HostSimulator>, String) {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), format!("/subscriptions/{SUB}")));
    env.push(("ADF_REFRESH_VAULTS".into(), "contoso-kv".into()));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    let host = Arc::new(
        HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
            .await
            .expect("handler starts"),
    );
    let url = host
        .front_end(&[("Refresh", REFRESH_KEY), ("RefreshStatus", STATUS_KEY)])
        .await
        .expect("front end starts");
    (host, url)
}

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the CLI as a user without Azure access would: no Azure settings, no `az`, no scope.
async fn cli(args: &[&str], env: &[(&str, &str)]) -> Cli {
    let empty = tempfile::tempdir().expect("temp dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    command
        .args(args)
        .env("PATH", empty.path())
        .stdin(std::process::Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("ADF_REFRESH_")
            || key.starts_with("AZURE_")
            || key == "IDENTITY_ENDPOINT"
        {
            command.env_remove(key);
        }
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().await.expect("the binary runs");
    let run = Cli {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for key in [REFRESH_KEY, STATUS_KEY, "WRONG-KEY-Kx11"] {
        assert!(
            !run.stdout.contains(key) && !run.stderr.contains(key),
            "a function key was printed"
        );
    }
    run
}

/// What `GET /api/refresh/{id}` answers with the status key: the app's own copy of the report.
async fn reports_app_kept(url: &str, id: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/refresh/{id}"))
        .header("x-functions-key", STATUS_KEY)
        .send()
        .await
        .expect("front end answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// What `show` prints for a saved report: the rendering a local run's report gets.
async fn shown(report: &str, output: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.json");
    std::fs::write(&path, report).expect("write report");
    cli(
        &["show", path.to_str().expect("utf-8"), "--output", output],
        &[],
    )
    .await
    .stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_fits_the_window_prints_the_apps_report_as_a_local_run_would() {
    let emu = emulator(estate(), 50).await;
    let (_host, url) = app(&emu, &[]).await;
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = keys.path().join("refresh.key");
    std::fs::write(&key_file, format!("{REFRESH_KEY}\n")).expect("write key");

    let run = cli(
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            &url,
            "--function-key-file",
            key_file.to_str().expect("utf-8"),
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("one JSON report ({e}): {}\n{}", run.stdout, run.stderr));
    schema::assert_valid_report(&report);
    assert_eq!(report["dryRun"], true, "plan is a dry run");
    assert_eq!(report["trigger"]["kind"], "http", "the app ran it");
    assert_eq!(report["complete"], true);
    let expected_code = if report["summary"]["attention"] == true {
        2
    } else {
        0
    };
    assert_eq!(run.code, expected_code, "{}", run.stderr);
    assert!(
        emu.requests().iter().all(|r| r.method != "PUT"),
        "a dry run writes nothing"
    );

    let id = report["id"].as_str().expect("id");
    let (status, kept) = reports_app_kept(&url, id).await;
    assert_eq!(status, 200);
    assert_eq!(
        run.stdout,
        shown(&kept, "json").await,
        "stdout is the document a local run prints"
    );

    let text = cli(
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--output",
            "text",
        ],
        &[
            ("ADF_REFRESH_REMOTE", url.as_str()),
            ("ADF_REFRESH_FUNCTION_KEY", REFRESH_KEY),
        ],
    )
    .await;
    // The text names its report's id; the app kept that report.
    let second_id = text
        .stdout
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|word| uuid::Uuid::parse_str(word).is_ok())
        .unwrap_or_else(|| panic!("the text names the report id: {}", text.stdout));
    let (status, second) = reports_app_kept(&url, second_id).await;
    assert_eq!(status, 200);
    assert_eq!(
        text.stdout,
        shown(&second, "text").await,
        "the text rendering too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_answers_202_and_the_cli_polls_with_the_status_key_until_the_report() {
    let emu = emulator(estate(), 2).await;
    let (_host, url) = app(&emu, &[("ADF_REFRESH_HTTP_SYNC_SECONDS", "1")]).await;
    // Slow ARM: the run cannot finish within the one-second window.
    emu.set_faults(adf_emulator::Faults {
        latency_ms: 300,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let run = cli(
        &[
            "refresh",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            &url,
            "--output",
            "json",
            "--budget-seconds",
            "120",
        ],
        &[
            ("ADF_REFRESH_FUNCTION_KEY", REFRESH_KEY),
            ("ADF_REFRESH_STATUS_KEY", STATUS_KEY),
        ],
    )
    .await;
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("one JSON report ({e}): {}\n{}", run.stdout, run.stderr));
    schema::assert_valid_report(&report);
    assert_eq!(report["dryRun"], false);
    assert_eq!(report["complete"], true);
    assert!(
        report["summary"]["resaved"].as_u64().unwrap_or_default() > 0,
        "the queued job re-saved: {}",
        report["summary"]
    );
    let expected_code = if report["summary"]["attention"] == true {
        2
    } else {
        0
    };
    assert_eq!(run.code, expected_code);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(9),
        "the CLI waited the 202's Retry-After (10 s) before polling"
    );
    assert!(
        !run.stderr.contains("next look in"),
        "no progress line when stderr is not a terminal: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_key_that_is_not_the_status_functions_is_refused_with_401() {
    let emu = emulator(estate(), 2).await;
    let (_host, url) = app(&emu, &[("ADF_REFRESH_HTTP_SYNC_SECONDS", "1")]).await;
    emu.set_faults(adf_emulator::Faults {
        latency_ms: 300,
        ..Default::default()
    });
    // Without ADF_REFRESH_STATUS_KEY the Refresh key is used for the poll, and it opens only Refresh.
    let run = cli(
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            &url,
        ],
        &[("ADF_REFRESH_FUNCTION_KEY", REFRESH_KEY)],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no report: {}", run.stdout);
    assert!(
        run.stderr.contains("GET ") && run.stderr.contains("answered 401: Unauthorized"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ADF_REFRESH_STATUS_KEY"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_function_key_is_exit_1_with_401_and_nothing_runs() {
    let emu = emulator(estate(), 50).await;
    let (_host, url) = app(&emu, &[]).await;
    let run = cli(
        &[
            "refresh",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            &url,
        ],
        &[("ADF_REFRESH_FUNCTION_KEY", "WRONG-KEY-Kx11")],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(&format!(
            "POST {url}/api/refresh answered 401: Unauthorized"
        )),
        "{}",
        run.stderr
    );
    assert!(emu.requests().is_empty(), "the handler never ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_path_or_an_unknown_run_is_404() {
    let emu = emulator(estate(), 50).await;
    let (_host, url) = app(&emu, &[]).await;
    let run = cli(
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            &format!("{url}/not-the-app"),
        ],
        &[("ADF_REFRESH_FUNCTION_KEY", REFRESH_KEY)],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("answered 404: Not Found"),
        "{}",
        run.stderr
    );

    // The status function: a run it never heard of, and an id that is not a GUID (the route's constraint).
    let unknown = "0b6f2f7e-5d4c-4b3a-9a8b-7c6d5e4f3a2b";
    assert_eq!(reports_app_kept(&url, unknown).await.0, 404);
    assert_eq!(reports_app_kept(&url, "not-a-run").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_needs_a_function_key() {
    let run = cli(
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--remote",
            "https://app.example.invalid",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("set ADF_REFRESH_FUNCTION_KEY"),
        "{}",
        run.stderr
    );
}
