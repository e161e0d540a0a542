//! The local demo: the whole product as Azure runs it, with the emulator serving as Azure.
//!
//! Starts the emulator with `seeds/demo.json`, starts `adf-secret-refresh serve` under the host simulator,
//! delivers a `SecretNewVersionCreated` event for `contoso-kv/sql-password` through `KeyVaultSecretEvent` and
//! the queue to `RefreshJob`, writes the report, and prints it with `adf-secret-refresh show`.

use adf_emulator::host::HostSimulator;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match demo().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn demo() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let product = sibling("adf-secret-refresh")?;
    let out_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/demo"));
    std::fs::create_dir_all(&out_dir)?;

    let seed = adf_emulator::demo_seed();
    let emulator = adf_emulator::start(
        seed.clone(),
        adf_emulator::Options {
            page_size: 2,
            ..Default::default()
        },
    )
    .await?;
    let subscriptions = adf_emulator::subscription_scopes(&seed);
    eprintln!(
        "==> emulator: ARM and Key Vault at {}, managed identity at {}",
        emulator.https_url(),
        emulator.identity_endpoint()
    );

    let mut env = emulator.env();
    env.push(("ADF_REFRESH_SCOPE".into(), subscriptions.join(",")));
    env.push(("ADF_REFRESH_VAULTS".into(), "contoso-kv".into()));
    env.push(("RUST_LOG".into(), "warn,adf_secret_refresh=info".into()));
    let host = HostSimulator::start(&product, &env).await?;
    eprintln!("==> custom handler started under the simulated Functions host");

    let event = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": "/subscriptions/1f6a2c8e-0000-4000-8000-000000000001/resourceGroups/rg-security/providers/Microsoft.KeyVault/vaults/contoso-kv",
        "subject": "sql-password",
        "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "eventTime": "2026-11-26T01:00:00.0000000Z",
        "data": {"Id": "https://contoso-kv.vault.azure.net/secrets/sql-password", "VaultName": "contoso-kv", "ObjectType": "Secret",
                 "ObjectName": "sql-password", "Version": "", "NBF": null, "EXP": null},
        "dataVersion": "1", "metadataVersion": "1"
    });
    eprintln!("==> Event Grid delivers SecretNewVersionCreated for contoso-kv/sql-password");
    let (queued, answers) = host.rotate(event, 5).await;
    eprintln!(
        "    KeyVaultSecretEvent answered {} and queued {} job(s)",
        queued.status,
        answers.len()
    );
    let Some(report) = answers.first().and_then(|a| a.output("report")).cloned() else {
        eprintln!("no report came back; handler log:\n{}", host.logs());
        return Ok(ExitCode::from(1));
    };
    let path = out_dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    let counters = emulator.counters();
    eprintln!(
        "==> RefreshJob wrote the report to {} ({} PUTs reached ARM, {} masked values written, {} secret values read)\n",
        path.display(),
        counters.puts,
        counters.masked_writes,
        counters.secret_value_reads
    );
    host.stop().await;
    emulator.shutdown().await;

    let status = std::process::Command::new(&product)
        .arg("show")
        .arg(&path)
        .arg("--output")
        .arg("text")
        .status()?;
    // The product exits 2 when a person is needed, as the demo estate is built to show; that is success here.
    Ok(match status.code() {
        Some(0 | 2) => {
            eprintln!(
                "\n(`adf-secret-refresh show` exited {}: 0 means all fine, 2 means a person is needed.)",
                status.code().unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        _ => ExitCode::from(1),
    })
}

/// A binary built next to this one.
fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built; run `cargo build --workspace --bins` first",
            path.display()
        ))
    }
}
