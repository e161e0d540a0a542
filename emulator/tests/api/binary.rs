//! The `adf-emulator` binary: starts from a seed file, announces itself, serves, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[tokio::test]
async fn binary_prints_its_endpoints_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("adf-emulator-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ready_file = dir.join("ready.json");
    let ca = dir.join("ca.pem");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/demo.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_adf-emulator"))
        .args([
            "--seed",
            seed,
            "--page-size",
            "2",
            "--faults",
            "{\"seed\": 3}",
        ])
        .arg("--ca-out")
        .arg(&ca)
        .arg("--ready-file")
        .arg(&ready_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("one line");
    let ready: Value = serde_json::from_str(&line).expect("the first line is JSON");
    let from_file: Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_file).expect("ready file"))
            .expect("JSON");
    assert_eq!(ready, from_file);
    assert_eq!(ready["caFile"], ca.to_string_lossy().as_ref());
    for key in [
        "ADF_REFRESH_ARM_ENDPOINT",
        "ADF_REFRESH_KEYVAULT_ENDPOINT",
        "ADF_REFRESH_CA_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "ADF_REFRESH_CREDENTIAL",
    ] {
        assert!(ready["env"][key].is_string(), "env has {key}");
    }
    assert_eq!(ready["env"]["ADF_REFRESH_CREDENTIAL"], "managed-identity");

    let http = ready["httpUrl"].as_str().expect("httpUrl");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let state: Value = client
        .get(format!("{http}/_emulator/state"))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    assert_eq!(state["factories"].as_array().map(Vec::len), Some(6));
    assert_eq!(state["faults"]["seed"], 3);

    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("exit status");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
