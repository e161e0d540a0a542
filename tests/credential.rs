//! A first run on a machine that cannot get a token: it fails at once, and says what is missing and what
//! fixes it, in full.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn plan_without_the_azure_cli_fails_at_once_and_says_to_install_it_and_sign_in() {
    let empty = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    command
        .args([
            "plan",
            "--credential",
            "developer-tools",
            "--scope",
            "/subscriptions/00000000-0000-0000-0000-000000000001",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--output",
            "json",
            // Nothing listens there: no request may leave the machine.
            "--arm-endpoint",
            "https://127.0.0.1:9",
            "--keyvault-endpoint",
            "https://127.0.0.1:9/kv/{vault}/",
        ])
        // A PATH without `az` (or `azd`): what a machine that never installed the Azure CLI has.
        .env("PATH", empty.path())
        .stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("ADF_REFRESH_")
            || key.starts_with("AZURE_")
            || key == "IDENTITY_ENDPOINT"
        {
            command.env_remove(key);
        }
    }
    let started = Instant::now();
    let output = command.output().expect("the binary runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "a missing tool is not retried as if it were an outage: took {took:?}"
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON report on stdout");
    assert_eq!(report["complete"], false);
    let errors = report["errors"].as_array().expect("errors[]");
    assert!(!errors.is_empty());
    for error in errors {
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("did not ask again"),
            "tried once: {message}"
        );
        assert!(
            message.contains("the Azure CLI (`az`)")
                && message.contains("is not installed or not on PATH"),
            "says what is missing: {message}"
        );
        assert!(
            message.contains("install the Azure CLI") && message.contains("`az login`"),
            "says what fixes it: {message}"
        );
        assert!(
            message.contains("az not found on PATH"),
            "the credential's own words, not cut after its first line: {message}"
        );
        assert!(!message.trim_end().ends_with(':'), "{message}");
    }
}
