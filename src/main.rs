//! The `adf-secret-refresh` binary: command-line parsing, telemetry, dispatch. The work is in the library.
#![forbid(unsafe_code)]

use adf_secret_refresh::app::App;
use adf_secret_refresh::apply::RunRequest;
use adf_secret_refresh::azure::auth::CredentialKind;
use adf_secret_refresh::config::{
    ExpiryThresholds, NotifyPolicy, Scope, SecretString, Settings, split_list,
};
use adf_secret_refresh::inventory::{self, Inventory};
use adf_secret_refresh::report::{self, Report, Trigger, TriggerKind};
use adf_secret_refresh::{audit, functions, notify, remote, telemetry};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Keeps Azure Data Factory linked services working when a Key Vault secret rotates.
#[derive(Parser, Debug)]
#[command(name = "adf-secret-refresh", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
    #[command(flatten)]
    global: Global,
}

#[derive(Args, Debug)]
struct Global {
    /// ARM scope searched (repeatable): /subscriptions/{s}, /subscriptions/{s}/resourceGroups/{rg}, or a factory id.
    #[arg(
        long = "scope",
        global = true,
        env = "ADF_REFRESH_SCOPE",
        value_delimiter = ','
    )]
    scopes: Vec<String>,
    /// `text` (default on a terminal), `json` (exactly one document on stdout), `markdown`, `html` (one
    /// self-contained page), or `csv` (audit).
    #[arg(long, global = true, value_enum)]
    output: Option<Output>,
    #[arg(
        long,
        global = true,
        env = "ADF_REFRESH_ARM_ENDPOINT",
        default_value = "https://management.azure.com"
    )]
    arm_endpoint: String,
    /// URL template with {vault}, used instead of the vault's own host (emulators, proxies).
    #[arg(long, global = true, env = "ADF_REFRESH_KEYVAULT_ENDPOINT")]
    keyvault_endpoint: Option<String>,
    /// URL template with {workspace}, used instead of a Synapse workspace's development endpoint (emulators,
    /// proxies).
    #[arg(long, global = true, env = "ADF_REFRESH_SYNAPSE_ENDPOINT")]
    synapse_endpoint: Option<String>,
    /// Extra trusted root certificate(s), PEM.
    #[arg(long, global = true, env = "ADF_REFRESH_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// managed-identity, developer-tools, client-secret or workload-identity.
    #[arg(long, global = true, env = "ADF_REFRESH_CREDENTIAL", value_enum)]
    credential: Option<CredentialKind>,
    /// When to notify: attention (default), always, never.
    #[arg(
        long,
        global = true,
        env = "ADF_REFRESH_NOTIFY",
        value_enum,
        default_value = "attention"
    )]
    notify: NotifyPolicy,
    /// Vault names whose events are acted on (comma-separated); empty means any.
    #[arg(
        long = "vault-allow",
        global = true,
        env = "ADF_REFRESH_VAULTS",
        value_delimiter = ','
    )]
    vault_allow: Vec<String>,
    /// How many ARM requests may be in flight at once per subscription, for reads and for writes each (the
    /// pacer, not this number, keeps them under ARM's limits); also how many Key Vault calls an audit makes at once.
    #[arg(long, global = true, default_value_t = adf_secret_refresh::azure::arm::DEFAULT_IN_FLIGHT)]
    concurrency: usize,
    /// The time budget of one run, in seconds; keep it below the Functions timeout.
    #[arg(
        long,
        global = true,
        env = "ADF_REFRESH_RUN_BUDGET_SECONDS",
        default_value_t = adf_secret_refresh::config::DEFAULT_RUN_BUDGET_SECONDS
    )]
    budget_seconds: u64,
    /// The platforms scanned, comma-separated: dataFactory, synapse, appService, apiManagement (default all).
    #[arg(long, global = true, env = "ADF_REFRESH_PLATFORMS", default_value = "")]
    platforms: String,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Dry run: discover and classify everything that references the secret. Writes nothing.
    Plan(SecretArgs),
    /// Re-save the safe targets, test them, and report.
    Refresh(SecretArgs),
    /// Inventory every Key Vault reference in scope, by secret, with findings (expiry, pins, traps, coverage).
    Audit {
        /// Expiry thresholds in days, warning and critical, e.g. `30,7` (default: ADF_REFRESH_EXPIRY_WARNING_DAYS, else 30,7).
        #[arg(long, value_name = "W[,C]")]
        expiring_within_days: Option<ExpiryThresholds>,
    },
    /// Print a saved report (e.g. a blob from the `reports` container) as text, JSON or Markdown.
    Show {
        /// The report file; `-` reads standard input.
        path: PathBuf,
    },
    /// Offline: check a factory's Git folder or exported ARM template for rotation hazards. No Azure access.
    Lint(LintArgs),
    /// Run the Azure Functions custom handler.
    Serve {
        #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
        port: Option<u16>,
        /// Rotations of a burst within this many seconds share one discovery of the estate (0: each run
        /// discovers). Every re-save still reads the definition afresh right before its PUT.
        #[arg(
            long,
            env = "ADF_REFRESH_DISCOVERY_CACHE_SECONDS",
            default_value_t = 30
        )]
        discovery_cache_seconds: u64,
    },
}

#[derive(Args, Debug)]
struct SecretArgs {
    #[arg(long)]
    vault: String,
    #[arg(long)]
    secret: String,
    #[arg(long)]
    version: Option<String>,
    /// Run on a deployed app instead of calling Azure: its base URL (https://<app>.azurewebsites.net). The key is
    /// ADF_REFRESH_FUNCTION_KEY (or --function-key-file); polls use ADF_REFRESH_STATUS_KEY, else the same key.
    #[arg(long, env = "ADF_REFRESH_REMOTE", value_name = "URL")]
    remote: Option<String>,
    /// With --remote: a file whose first line is the Refresh function's key.
    #[arg(long, value_name = "F")]
    function_key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct LintArgs {
    /// A factory's (or Synapse workspace's) Git folder, or an exported ARM template (file or folder).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// `text` (the default), `json` (adf-secret-refresh/lint/v1) or `sarif` (SARIF 2.1.0, for code scanning).
    #[arg(long, value_enum)]
    format: Option<LintFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    Markdown,
    /// One row per reference (audit only).
    Csv,
    /// One self-contained HTML page (plan, refresh, show, audit).
    Html,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Commands::Serve { .. });
    telemetry::init(serving && std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    match run_command(cli.command, &cli.global).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Runs one command; `Err` is a problem that stopped it before a report could be made.
async fn run_command(command: Commands, global: &Global) -> Result<u8, String> {
    if global.output == Some(Output::Csv)
        && !matches!(command, Commands::Audit { .. } | Commands::Show { .. })
    {
        return Err("--output csv is only for `audit`".into());
    }
    if global.output == Some(Output::Html) && matches!(command, Commands::Lint(_)) {
        return Err("--output html is for `plan`, `refresh`, `show` and `audit`".into());
    }
    // Showing a saved report needs no Azure settings.
    if let Commands::Show { path } = &command {
        return match read_document(path)? {
            Document::Inventory(inventory) => {
                print_inventory(&inventory, global.output);
                Ok(inventory.exit_code() as u8)
            }
            Document::Report(_) if global.output == Some(Output::Csv) => {
                Err("--output csv is only for an inventory (from `audit`)".into())
            }
            Document::Report(report) => {
                print(&report, global.output);
                Ok(report.exit_code() as u8)
            }
        };
    }
    // Linting reads files only: no Azure settings, no credentials.
    let command = match command {
        Commands::Lint(args) => return Ok(lint(&args, global)),
        other => other,
    };
    // A deployed app runs it: no Azure settings or credentials here.
    if let Commands::Plan(args) | Commands::Refresh(args) = &command
        && let Some(url) = args.remote.as_deref().filter(|u| !u.trim().is_empty())
    {
        let request = remote::RemoteRequest {
            vault: args.vault.clone(),
            secret: args.secret.clone(),
            version: args.version.clone(),
            dry_run: matches!(command, Commands::Plan(_)),
            scopes: global.scopes.iter().flat_map(|s| split_list(s)).collect(),
        };
        let budget = Duration::from_secs(global.budget_seconds.max(1));
        let key_file = args.function_key_file.as_deref();
        let report = remote::drive(url, key_file, global.ca_file.as_deref(), budget, &request)
            .await
            .map_err(|e| e.to_string())?;
        print(&report, global.output);
        return Ok(report.exit_code() as u8);
    }
    let app = App::new(settings(global)?).map_err(|e| e.to_string())?;
    let trigger = Trigger {
        kind: TriggerKind::Cli,
        ..Trigger::default()
    };
    let mut report = match command {
        Commands::Serve {
            port,
            discovery_cache_seconds,
        } => {
            let app = app.with_shared_discovery(Duration::from_secs(discovery_cache_seconds));
            functions::serve(app, port.unwrap_or(0))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(0);
        }
        Commands::Plan(args) => secret_run(&app, args, true).await,
        Commands::Refresh(args) => secret_run(&app, args, false).await,
        Commands::Audit {
            expiring_within_days,
        } => {
            let mut inventory = audit::run(
                &app,
                audit::AuditRequest {
                    trigger: Some(trigger),
                    thresholds: expiring_within_days.unwrap_or(app.settings.expiry_warning_days),
                    progress: true,
                    ..Default::default()
                },
            )
            .await;
            let severity = inventory.worst().unwrap_or(inventory::Severity::Info);
            notify::send_inventory(&app.settings, &app.http, &mut inventory, severity).await;
            print_inventory(&inventory, global.output);
            return Ok(inventory.exit_code() as u8);
        }
        Commands::Show { .. } => unreachable!("handled above"),
        Commands::Lint(_) => unreachable!("handled above"),
    };
    notify::send_all(&app, &mut report).await;
    print(&report, global.output);
    Ok(report.exit_code() as u8)
}

fn lint(args: &LintArgs, global: &Global) -> u8 {
    use adf_secret_refresh::lint;
    let options = lint::Options {
        vault_allow: global
            .vault_allow
            .iter()
            .flat_map(|v| split_list(v))
            .collect(),
    };
    let checked = lint::check(&args.paths, &options);
    // Every other file is still linted and printed; the exit code says the result is incomplete.
    for e in &checked.errors {
        eprintln!("error: {e}");
    }
    let format = args.format.unwrap_or(match global.output {
        Some(Output::Json) => LintFormat::Json,
        _ => LintFormat::Text,
    });
    let document = match format {
        LintFormat::Text => {
            print!("{}", lint::output::text(&checked));
            None
        }
        LintFormat::Json => Some(lint::output::json(&checked)),
        LintFormat::Sarif => Some(lint::output::sarif(&checked)),
    };
    if let Some(document) = document {
        match serde_json::to_string_pretty(&document) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: cannot serialise the lint output: {e}");
                return 1;
            }
        }
    }
    lint::output::exit_code(&checked)
}

/// A saved document: a run's report, or an audit's inventory.
enum Document {
    Report(Box<Report>),
    Inventory(Box<Inventory>),
}

fn read_document(path: &std::path::Path) -> Result<Document, String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<String>,
    }
    if serde_json::from_str::<Schema>(&text)
        .ok()
        .and_then(|s| s.schema)
        .as_deref()
        == Some(inventory::SCHEMA)
    {
        let inventory: Inventory = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not an inventory: {e}", path.display()))?;
        return Ok(Document::Inventory(Box::new(inventory)));
    }
    read_report(path, &text).map(|r| Document::Report(Box::new(r)))
}

fn read_report(path: &std::path::Path, text: &str) -> Result<Report, String> {
    let report: Report = serde_json::from_str(text)
        .map_err(|e| format!("{} is not a report: {e}", path.display()))?;
    if report.schema != report::SCHEMA {
        return Err(format!(
            "{} is a `{}` document; this version reads `{}` and `{}`",
            path.display(),
            report.schema,
            report::SCHEMA,
            inventory::SCHEMA
        ));
    }
    Ok(report)
}

async fn secret_run(app: &App, args: SecretArgs, dry_run: bool) -> Report {
    let secret = app.secret(&args.vault, &args.secret, args.version, None);
    let trigger = Trigger {
        kind: TriggerKind::Cli,
        ..Trigger::default()
    };
    app.run(RunRequest::new(secret, trigger).with_dry_run(dry_run))
        .await
}

fn print(report: &Report, output: Option<Output>) {
    let terminal = std::io::stdout().is_terminal();
    match output.unwrap_or(if terminal { Output::Text } else { Output::Json }) {
        Output::Json => match serde_json::to_string_pretty(report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot serialise the report: {e}"),
        },
        Output::Text => print!(
            "{}",
            report::text::render(report, terminal && std::env::var_os("NO_COLOR").is_none())
        ),
        Output::Markdown => print!("{}", report::markdown::render(report)),
        Output::Html => print!("{}", report::html::report(report)),
        // Refused before any run: a report has no CSV form.
        Output::Csv => eprintln!("error: --output csv is only for `audit`"),
    }
}

fn print_inventory(inventory: &Inventory, output: Option<Output>) {
    let terminal = std::io::stdout().is_terminal();
    match output.unwrap_or(if terminal { Output::Text } else { Output::Json }) {
        Output::Json => match serde_json::to_string_pretty(inventory) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot serialise the inventory: {e}"),
        },
        Output::Text => print!(
            "{}",
            inventory::text::render(
                inventory,
                terminal && std::env::var_os("NO_COLOR").is_none()
            )
        ),
        Output::Markdown => print!("{}", inventory::markdown::render(inventory)),
        Output::Csv => print!("{}", inventory::csv::render(inventory)),
        Output::Html => print!("{}", report::html::inventory(inventory)),
    }
}

fn settings(g: &Global) -> Result<Settings, String> {
    let scopes = g
        .scopes
        .iter()
        .flat_map(|s| split_list(s))
        .map(|s| Scope::parse(&s))
        .collect::<Result<Vec<_>, _>>()?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    Ok(Settings {
        scopes,
        arm_endpoint: g.arm_endpoint.clone(),
        keyvault_endpoint: g.keyvault_endpoint.clone().filter(|s| !s.is_empty()),
        synapse_endpoint: g.synapse_endpoint.clone().filter(|s| !s.trim().is_empty()),
        ca_file: g.ca_file.clone(),
        credential: g.credential.unwrap_or_else(|| {
            CredentialKind::automatic(std::env::var_os("IDENTITY_ENDPOINT").is_some())
        }),
        vault_allow: g.vault_allow.iter().flat_map(|v| split_list(v)).collect(),
        notify: g.notify,
        webhook_url: env("ADF_REFRESH_WEBHOOK_URL"),
        webhook_secret: env("ADF_REFRESH_WEBHOOK_SECRET").map(SecretString::new),
        teams_webhook_url: env("ADF_REFRESH_TEAMS_WEBHOOK_URL"),
        slack_webhook_url: env("ADF_REFRESH_SLACK_WEBHOOK_URL"),
        concurrency: g.concurrency.clamp(1, 64),
        run_budget: Duration::from_secs(g.budget_seconds.max(1)),
        expiry_warning_days: match env("ADF_REFRESH_EXPIRY_WARNING_DAYS") {
            Some(text) => ExpiryThresholds::parse(&text)
                .map_err(|e| format!("ADF_REFRESH_EXPIRY_WARNING_DAYS: {e}"))?,
            None => ExpiryThresholds::default(),
        },
        platforms: adf_secret_refresh::model::Platforms::parse(&g.platforms)
            .map_err(|e| format!("--platforms / ADF_REFRESH_PLATFORMS: {e}"))?,
    })
}
