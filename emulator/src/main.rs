//! `adf-emulator --seed PATH [--page-size N] [--kv-page-size N] [--faults JSON] [--ca-out PATH]
//! [--ready-file PATH]`: starts the emulator, prints one JSON line describing it (and writes it to the
//! ready file), then serves until SIGINT or SIGTERM. Logs go to stderr.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use adf_emulator::{Faults, Options, Value};

const USAGE: &str = "usage: adf-emulator --seed PATH [--page-size N] [--kv-page-size N] [--faults JSON] [--ca-out PATH] [--ready-file PATH]
  --seed PATH       the estate (JSON); 'demo' uses the built-in seeds/demo.json
  --page-size N     ARM list page size (default 50)
  --kv-page-size N  Key Vault list page size (default 25)
  --faults JSON     initial faults, e.g. '{\"latencyMs\":20,\"errorRate\":0.05}'
  --ca-out PATH     where to write the CA certificate (PEM)
  --ready-file PATH also write the startup JSON line here";

struct Args {
    seed: String,
    options: Options,
    ready_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut seed = None;
    let mut options = Options::default();
    let mut ready_file = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => seed = Some(value()?),
            "--page-size" => {
                options.page_size = value()?.parse().map_err(|e| format!("--page-size: {e}"))?;
            }
            "--kv-page-size" => {
                options.kv_page_size = value()?
                    .parse()
                    .map_err(|e| format!("--kv-page-size: {e}"))?;
            }
            "--faults" => {
                options.faults = serde_json::from_str::<Faults>(&value()?)
                    .map_err(|e| format!("--faults: {e}"))?;
            }
            "--ca-out" => options.ca_out = Some(PathBuf::from(value()?)),
            "--ready-file" => ready_file = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        seed: seed.ok_or("--seed is required")?,
        options,
        ready_file,
    })
}

fn load_seed(path: &str) -> Result<Value, String> {
    if path == "demo" {
        return Ok(adf_emulator::demo_seed());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {path}: {e}"))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("adf-emulator: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let seed = match load_seed(&args.seed) {
        Ok(seed) => seed,
        Err(message) => {
            eprintln!("adf-emulator: {message}");
            return ExitCode::from(2);
        }
    };
    let emulator = match adf_emulator::start(seed, args.options).await {
        Ok(emulator) => emulator,
        Err(err) => {
            eprintln!("adf-emulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    let env: serde_json::Map<String, Value> = emulator
        .env()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let ready = serde_json::json!({
        "httpsUrl": emulator.https_url(),
        "httpUrl": emulator.http_url(),
        "caFile": emulator.ca_file(),
        "env": env,
    })
    .to_string();
    if let Some(path) = &args.ready_file
        && let Err(err) = std::fs::write(path, format!("{ready}\n"))
    {
        eprintln!("adf-emulator: writing {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{ready}");

    wait_for_signal().await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}
