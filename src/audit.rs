//! The audit: reads everything in scope (never writes), and builds the [`Inventory`] — which secret feeds
//! which linked service, app setting, connection string or named value, and what is wrong or about to go
//! wrong.
//!
//! The I/O lives here; the deciding is in [`crate::inventory`]. Factories, workspaces, sites, slots and API
//! Management services come from the same discovery as a rotation (metadata only: never a setting's or a
//! named value's value). Key Vault is asked once per distinct (vault, secret) for its version metadata, never per
//! reference and never for a value, with bounded concurrency. Vaults in another cloud than the deployment's
//! are not asked at all.

use crate::app::App;
use crate::azure::keyvault::{self, KeyVaultError};
use crate::config::ExpiryThresholds;
use crate::inventory::{self, Assessment, FactoryScan, Inventory, Metadata, SecretKey};
use crate::report::{Command, Report, RunError, Trigger};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// What to audit and how to show progress.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub trigger: Option<Trigger>,
    pub thresholds: ExpiryThresholds,
    /// Only this secret (vault name, secret name), for an expiry event; `None` audits everything.
    pub only: Option<(String, String)>,
    /// Draw a progress bar on stderr (only ever drawn when stderr is a terminal).
    pub progress: bool,
    /// The inventory's id; a generated one when `None`.
    pub id: Option<String>,
}

/// Runs the audit over the configured scopes. It always returns an inventory, which says in `errors` what
/// it could not read.
pub async fn run(app: &App, request: AuditRequest) -> Inventory {
    let mut inventory = Inventory::start(
        request
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        request.trigger.clone(),
        &app.settings.scopes,
        request.thresholds,
    );
    let progress = Progress::new(request.progress);
    let home_suffix = app.settings.vault_suffix();

    progress.discovering();
    let clients = crate::observe::Clients {
        arm: app.azure.arm.clone(),
        synapse: app.azure.synapse.clone(),
    }
    .with_deadline(Some(tokio::time::Instant::now() + app.settings.run_budget));
    // Discovery reports what it could not read into a report; the inventory takes those errors over.
    let mut discovery = Report::start(
        inventory.id.clone(),
        Command::Audit,
        true,
        Trigger::default(),
        &app.settings.scopes,
    );
    // Each holder is reduced to its references as soon as it is read, and then dropped; the progress bar
    // counts holders read of those listed.
    let only = request.only.clone();
    let reduce = |snapshot: &crate::model::Snapshot| {
        let mut scan = inventory::scan_snapshot(snapshot, home_suffix);
        if let Some((vault, secret)) = &only {
            scan.uses.retain(|u| {
                u.key.vault.eq_ignore_ascii_case(vault)
                    && u.key.secret.eq_ignore_ascii_case(secret)
                    && u.key.suffix == home_suffix
            });
            scan.findings.clear();
        }
        scan
    };
    let mut scans: Vec<FactoryScan> = Vec::new();
    // One discovery stream for every platform: each holder is reduced as soon as it is read.
    let scanned = crate::observe::discover_each(
        &clients,
        &app.settings.scopes,
        &app.azure.platforms,
        app.azure.concurrency,
        &crate::observe::Keep::KeyVault,
        &mut discovery,
        &mut |listed| progress.scanning(listed),
        &mut |snapshot| {
            scans.push(reduce(&snapshot));
            progress.factory_done();
        },
    )
    .await;
    inventory.errors.append(&mut discovery.errors);
    // Discovery holds only what the inventory needs and counts everything it listed.
    inventory.summary.factories_scanned += scanned.factories;
    inventory.summary.workspaces_scanned += scanned.workspaces;
    inventory.summary.sites_scanned += scanned.sites;
    inventory.summary.api_management_services_scanned += scanned.api_management_services;
    inventory.summary.linked_services_scanned += scanned.linked_services;
    inventory.summary.credentials_scanned += scanned.credentials;
    scans.sort_by_key(|s| s.factory.to_lowercase());

    let assessment = Assessment {
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        thresholds: request.thresholds,
        home_suffix: home_suffix.to_string(),
        covered_vaults: (!app.settings.vault_allow.is_empty())
            .then(|| app.settings.vault_allow.clone()),
    };
    let mut keys: BTreeSet<SecretKey> = scans
        .iter()
        .flat_map(|s| s.uses.iter().map(|u| u.key.clone()))
        .filter(|k| assessment.reads(k))
        .collect();
    if let Some((vault, secret)) = &request.only {
        // An expiry event's secret is read even when nothing in scope uses it: the deadline is news too.
        keys.insert(SecretKey::new(vault, home_suffix, secret));
    }
    let metadata = read_metadata(app, keys, &progress).await;
    progress.finish();
    for (key, answer) in &metadata {
        if let Metadata::Unreadable(message) = answer {
            inventory.errors.push(RunError {
                stage: "keyVault".into(),
                message: message.clone(),
                transient: true,
                subject: Some(key.subject()),
            });
        }
    }

    let (secrets, findings) = inventory::assemble(scans, &metadata, &assessment);
    inventory.secrets = secrets;
    inventory.findings = findings;
    if request.only.is_some() {
        // For one secret: its own findings (and its vault's) only.
        let keep: Vec<inventory::Finding> = inventory
            .secrets
            .iter()
            .flat_map(|s| inventory.findings_for(s).cloned())
            .collect();
        inventory.findings = keep;
    }
    inventory.finish();
    tracing::info!(
        inventory_id = %inventory.id,
        secrets = inventory.summary.secrets,
        references = inventory.summary.references,
        critical = inventory.summary.critical,
        warning = inventory.summary.warning,
        complete = inventory.complete,
        "audit finished"
    );
    inventory
}

/// One versions call per distinct secret, a few at a time.
async fn read_metadata(
    app: &App,
    keys: BTreeSet<SecretKey>,
    progress: &Progress,
) -> HashMap<SecretKey, Metadata> {
    progress.reading(keys.len());
    futures::stream::iter(keys)
        .map(|key| async move {
            // The vault's own URL, so that a real deployment asks the right host; a configured endpoint
            // template (emulators, proxies) takes precedence inside `list_versions`.
            let secret_url = format!("{}secrets/{}", key.vault_url(), key.secret);
            let answer = match keyvault::list_versions(
                &app.azure.http,
                app.azure.credential.clone(),
                &app.azure.vaults,
                &key.vault,
                &key.secret,
                Some(&secret_url),
            )
            .await
            {
                Ok(versions) => Metadata::Versions(versions),
                Err(KeyVaultError::NotFound { .. }) => Metadata::SecretNotFound,
                Err(KeyVaultError::VaultNotFound { .. }) => Metadata::VaultNotFound,
                Err(KeyVaultError::Forbidden { message, .. }) => Metadata::AccessDenied(message),
                Err(e) => Metadata::Unreadable(e.to_string()),
            };
            (key, answer)
        })
        .buffer_unordered(app.azure.concurrency.max(1))
        .inspect(|_| progress.secret_done())
        .collect()
        .await
}

/// The progress bar on stderr: drawn only on a terminal, so piped output and logs stay clean.
struct Progress {
    bar: ProgressBar,
    visible: bool,
}

impl Progress {
    fn new(wanted: bool) -> Progress {
        use std::io::IsTerminal;
        let visible = wanted && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            bar: ProgressBar::with_draw_target(None, target),
            visible,
        }
    }

    fn discovering(&self) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar
            .set_message("listing factories, workspaces, sites and API Management services");
        // The ticker is a thread: only worth it when someone watches.
        if self.visible {
            self.bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    fn scanning(&self, factories: usize) {
        self.bar.disable_steady_tick();
        self.bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:30} {pos}/{len} resources scanned ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar.set_message("scanning");
        self.bar.set_length(factories as u64);
        self.bar.set_position(0);
    }

    fn factory_done(&self) {
        self.bar.inc(1);
    }

    fn reading(&self, secrets: usize) {
        self.bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} secrets read ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar.set_message("Key Vault metadata");
        self.bar.set_length(secrets as u64);
        self.bar.set_position(0);
    }

    fn secret_done(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The inventory for one secret that Key Vault says is about to expire or has expired: its consumers at
/// risk and the deadline. The event is news in itself, so the inventory always needs attention: if the
/// metadata could not say so (unreadable, or the expiry lies beyond the thresholds), the event's own date
/// makes the finding. Returns the inventory and how loud its notification is.
pub async fn for_expiry_event(
    app: &App,
    event: &crate::event::SecretEvent,
    trigger: Trigger,
    id: Option<String>,
) -> (Inventory, inventory::Severity) {
    let expired = event.kind == crate::event::EventKind::Expired;
    let mut inventory = run(
        app,
        AuditRequest {
            trigger: Some(trigger),
            thresholds: app.settings.expiry_warning_days,
            only: Some((event.vault.clone(), event.secret.clone())),
            progress: false,
            id,
        },
    )
    .await;
    let code = if expired {
        inventory::FindingCode::SecretExpired
    } else {
        inventory::FindingCode::SecretExpiring
    };
    let subject = format!(
        "{}/{}",
        event.vault.to_ascii_lowercase(),
        event.secret.to_ascii_lowercase()
    );
    let severity = if expired {
        inventory::Severity::Critical
    } else {
        inventory::Severity::Warning
    };
    if !inventory
        .findings
        .iter()
        .any(|f| f.code == code && f.is_about(&subject))
    {
        let when = event
            .expires
            .and_then(crate::report::rfc3339)
            .map_or_else(String::new, |w| format!(" at {w}"));
        let consumers = inventory
            .secrets
            .iter()
            .map(|s| s.consumers.len())
            .sum::<usize>();
        inventory.findings.insert(
            0,
            inventory::Finding {
                code,
                severity,
                subject: Some(subject.clone()),
                vault_url: Some(format!(
                    "https://{}.{}/",
                    event.vault.to_ascii_lowercase(),
                    app.settings.vault_suffix()
                )),
                message: format!(
                    "Key Vault reports that {subject} {}{when}; {consumers} reference{} in scope rely on it.",
                    if expired { "has expired" } else { "expires soon" },
                    if consumers == 1 { "" } else { "s" }
                ),
                fix: vec!["Renew the credential at its source and store the new value as a new version of the secret; the product then refreshes its consumers.".into()],
                owner: inventory::Owner::SecretOwner,
            },
        );
        inventory.finish();
    }
    (inventory, severity)
}
