//! Runs one rotation: observe (discover), decide ([`crate::plan`]), act (re-save, test), report.
//!
//! Factories are read with bounded concurrency; writes are serialised per factory. Each PUT is atomic and
//! conditional on the etag just read, so a failure halfway leaves nothing half-written, and the report says
//! exactly which targets were re-saved and which were not reached.

use crate::act::{self, Mode};
use crate::azure::arm::ArmClient;
use crate::azure::keyvault::{self, KeyVaultError, VaultEndpoints};
use crate::config::Scope;
use crate::event::EventKind;
use crate::model::{Platforms, Snapshot};
use crate::observe::{Clients, SynapseAccess};
use crate::plan::{self, SecretRef};
use crate::report::{
    Command, Finding, FindingCode, Owner, Report, RunError, SecretInfo, Severity, Target, Trigger,
};
use azure_core::credentials::TokenCredential;
use futures::StreamExt;
use std::sync::Arc;
use tokio::time::Instant;
use tracing::Instrument;

pub use crate::observe::{
    Keep, discover, discover_each, discover_kept, interleave_by_subscription,
};

/// The Azure side of a run: ARM, Key Vault, and the identity both use.
#[derive(Clone)]
pub struct Azure {
    pub arm: ArmClient,
    pub http: reqwest::Client,
    pub credential: Arc<dyn TokenCredential>,
    pub vaults: VaultEndpoints,
    pub concurrency: usize,
    /// The development endpoints of Synapse workspaces, read and written like factories.
    pub synapse: SynapseAccess,
    /// The platforms a run scans (`--platforms`); all four unless narrowed.
    pub platforms: Platforms,
    /// Shares one discovery between the rotations of a burst (the Functions host); `None` discovers per run,
    /// holding only what the run's secret needs.
    pub discovery: Option<Arc<crate::observe::cache::DiscoveryCache>>,
}

/// What to do in one run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub secret: SecretRef,
    pub secret_url: Option<String>,
    pub event_kind: EventKind,
    pub dry_run: bool,
    pub scopes: Vec<Scope>,
    pub trigger: Trigger,
    pub deadline: Option<Instant>,
    /// The report's id; a queued job passes its own so that the blob name and the logs agree.
    pub report_id: Option<String>,
    /// The rotation's progress across deliveries, where the function app keeps it (see
    /// [`crate::coordination::Progress`]); `None` runs every target (the CLI).
    pub progress: Option<Arc<dyn crate::coordination::Progress>>,
}

impl RunRequest {
    /// A refresh of a new version of `secret` for `trigger`: not a dry run, over the app's configured scopes and
    /// run budget, every target (no progress from earlier deliveries), under a fresh report id. The `with_*`
    /// methods set what differs.
    pub fn new(secret: SecretRef, trigger: Trigger) -> Self {
        RunRequest {
            secret,
            secret_url: None,
            event_kind: EventKind::NewVersion,
            dry_run: false,
            scopes: Vec::new(),
            trigger,
            deadline: None,
            report_id: None,
            progress: None,
        }
    }

    /// What the Key Vault event said: its kind, and the secret's URL where it gave one.
    pub fn with_event(mut self, kind: EventKind, secret_url: Option<String>) -> Self {
        self.event_kind = kind;
        self.secret_url = secret_url;
        self
    }

    /// A plan (nothing written) rather than a refresh.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Scopes inside the configured ones; none means all of them.
    pub fn with_scopes(mut self, scopes: Vec<Scope>) -> Self {
        self.scopes = scopes;
        self
    }

    /// When the run must stop; `None` gives it the configured run budget from its start.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The report's id; `None` makes a fresh one.
    pub fn with_report_id(mut self, report_id: Option<String>) -> Self {
        self.report_id = report_id;
        self
    }

    /// The rotation's progress across deliveries, to resume from.
    pub fn with_progress(
        mut self,
        progress: Option<Arc<dyn crate::coordination::Progress>>,
    ) -> Self {
        self.progress = progress;
        self
    }
}

/// The longest the product waits for Key Vault metadata, which only informs the report.
const KEY_VAULT_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs a plan (dry run) or a refresh and returns its report. It never panics on Azure's answers and
/// always returns a report, which says in `errors` what stopped it, if anything did.
pub async fn run(azure: &Azure, request: RunRequest) -> Report {
    let report_id = request
        .report_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Every log line of the run carries these, so one rotation can be followed end to end.
    let span = tracing::info_span!(
        "run",
        report_id = %report_id,
        vault = %request.secret.vault,
        secret = %request.secret.name,
        trigger = ?request.trigger.kind,
        event_id = request.trigger.event_id.as_deref().unwrap_or(""),
        invocation_id = request.trigger.invocation_id.as_deref().unwrap_or(""),
    );
    run_in_span(azure, request, report_id)
        .instrument(span)
        .await
}

async fn run_in_span(azure: &Azure, request: RunRequest, report_id: String) -> Report {
    let arm = azure.arm.clone().with_deadline(request.deadline);
    // Near-expiry and expired events report the consumers at risk; a re-save cannot help them.
    let dry_run = request.dry_run || request.event_kind != EventKind::NewVersion;
    let mut report = Report::start(
        report_id,
        if dry_run {
            Command::Plan
        } else {
            Command::Refresh
        },
        dry_run,
        request.trigger.clone(),
        &request.scopes,
    );
    tracing::info!(report_id = %report.id, vault = %request.secret.vault, secret = %request.secret.name, dry_run, "run started");

    let secret_usable = secret_metadata(azure, &request, &mut report).await;
    let mut secret = request.secret.clone();
    if secret.version.is_none() {
        secret.version = report.secret.as_ref().and_then(|s| s.version.clone());
    }

    let mode = Mode {
        dry_run,
        secret_usable: secret_usable.clone(),
        event_kind: request.event_kind,
        progress: request.progress.clone(),
    };
    let clients = Clients {
        arm: arm.clone(),
        synapse: azure.synapse.with_deadline(request.deadline),
    };
    let home_suffix = arm.home_vault_suffix();
    // Writes are sequential within a holder; enough holders at once to use every subscription's requests in
    // flight (the ARM client caps them per subscription and its pacer keeps them under ARM's buckets).
    let subscriptions = crate::observe::subscription_count(request.scopes.iter().map(|s| s.id()));
    let holders_at_once = azure.concurrency.max(1) * subscriptions;
    let act_on = |(snapshot, targets): (Snapshot, Vec<Target>)| {
        let clients = clients.clone();
        let secret = secret.clone();
        let mode = mode.clone();
        async move { act::apply(&clients, &snapshot, targets, &secret, &mode).await }
    };
    let plan_one = |snapshot: &Snapshot| plan::plan_snapshot(snapshot, &secret, home_suffix);
    let results: Vec<(Vec<Target>, Vec<RunError>)> = match &azure.discovery {
        // A burst shares one discovery of every platform (every consumer with a Key Vault reference); plan on it.
        Some(cache) => {
            let discovery = cache
                .discover(
                    &clients,
                    &request.scopes,
                    &azure.platforms,
                    azure.concurrency,
                )
                .await;
            discovery.report_into(&mut report);
            let planned: Vec<(Snapshot, Vec<Target>)> = discovery
                .snapshots
                .iter()
                .filter_map(|s| {
                    let targets = plan_one(s);
                    (!targets.is_empty()).then(|| (s.clone(), targets))
                })
                .collect();
            futures::stream::iter(interleave_by_subscription(planned, |(s, _)| s.id.as_str()))
                .map(act_on)
                .buffer_unordered(holders_at_once)
                .collect()
                .await
        }
        // Alone: each holder is planned as soon as it is read and acted on while the rest are listed, so
        // writes use the write bucket while reads use the read bucket. Only what may reference this secret is
        // held.
        None => {
            let (found, mut planned) = tokio::sync::mpsc::unbounded_channel();
            let keep = Keep::Secret(secret.name.clone());
            let discovery = async {
                let found = found;
                let scanned = discover_each(
                    &clients,
                    &request.scopes,
                    &azure.platforms,
                    azure.concurrency,
                    &keep,
                    &mut report,
                    &mut |_| {},
                    &mut |s| {
                        let targets = plan_one(&s);
                        if !targets.is_empty() {
                            // The receiver lives until discovery ends; a send cannot fail before then.
                            let _ = found.send((s, targets));
                        }
                    },
                )
                .await;
                scanned.add_to(&mut report.summary);
            };
            let acting = futures::stream::poll_fn(|cx| planned.poll_recv(cx))
                .map(act_on)
                .buffer_unordered(holders_at_once)
                .collect::<Vec<_>>();
            let ((), results) = futures::join!(discovery, acting);
            results
        }
    };
    for (targets, errors) in results {
        report.targets.extend(targets);
        report.errors.extend(errors);
    }
    report.targets.sort_by(|a, b| {
        (a.resource.to_ascii_lowercase(), &a.name).cmp(&(b.resource.to_ascii_lowercase(), &b.name))
    });
    // What the targets that need attention stop, and when: read only for their factories.
    crate::impact::attach(&arm, &mut report, jiff::Timestamp::now()).await;
    report.finish();
    tracing::info!(
        report_id = %report.id,
        affected = report.summary.affected,
        resaved = report.summary.resaved,
        tests_failed = report.summary.tests_failed,
        complete = report.complete,
        "run finished"
    );
    report
}

/// Reads the secret's version metadata (never its value) into the report; says whether the version can serve.
async fn secret_metadata(
    azure: &Azure,
    request: &RunRequest,
    report: &mut Report,
) -> Result<(), String> {
    let secret = &request.secret;
    let mut info = SecretInfo {
        vault: secret.vault.clone(),
        name: secret.name.clone(),
        version: secret.version.clone(),
        metadata: "ok".into(),
        ..SecretInfo::default()
    };
    let budget = request.deadline.map_or(KEY_VAULT_BUDGET, |d| {
        d.saturating_duration_since(Instant::now())
            .min(KEY_VAULT_BUDGET)
    });
    let listed = tokio::time::timeout(
        budget,
        keyvault::list_versions(
            &azure.http,
            azure.credential.clone(),
            &azure.vaults,
            &secret.vault,
            &secret.name,
            request.secret_url.as_deref(),
        ),
    )
    .await
    .unwrap_or_else(|_| {
        Err(KeyVaultError::Deadline {
            operation: "listSecretVersions",
        })
    });
    let mut usable = Ok(());
    match listed {
        Ok(versions) => {
            info.version_count = Some(versions.len());
            match keyvault::pick_version(&versions, secret.version.as_deref()) {
                Some(v) => {
                    info.version = Some(v.version.clone());
                    info.enabled = v.enabled;
                    info.created = v.created.and_then(crate::report::rfc3339);
                    info.not_before = v.not_before.and_then(crate::report::rfc3339);
                    info.expires = v.expires.and_then(crate::report::rfc3339);
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    if let Some(why) = keyvault::unusable_because(v, now) {
                        usable = Err(format!(
                            "the secret version {} is {why}; a re-save cannot help",
                            v.version
                        ));
                        report.findings.push(Finding {
                            code: match why {
                                "disabled" => FindingCode::SecretVersionDisabled,
                                "notYetValid" => FindingCode::SecretVersionNotYetValid,
                                _ => FindingCode::SecretVersionExpired,
                            },
                            severity: Severity::Critical,
                            message: format!("Secret {}/{} version {} is {why}.", secret.vault, secret.name, v.version),
                            subject: Some(format!("{}/{}", secret.vault, secret.name)),
                            vault_url: None,
                            fix: vec!["Create a new, enabled, currently valid version of the secret in Key Vault.".into()],
                            owner: Owner::SecretOwner,
                        });
                    }
                }
                None => report.findings.push(Finding {
                    code: FindingCode::SecretVersionNotFound,
                    severity: Severity::Warning,
                    message: format!(
                        "Key Vault lists no version {} of {}/{}.",
                        secret.version.as_deref().unwrap_or("(any)"),
                        secret.vault,
                        secret.name
                    ),
                    subject: Some(format!("{}/{}", secret.vault, secret.name)),
                    vault_url: None,
                    fix: vec![],
                    owner: Owner::SecretOwner,
                }),
            }
        }
        Err(e) => {
            // A versions listing whose pages stayed broken was not read to its end: like any such listing, it
            // makes the run incomplete (exit 1), so nothing about the secret rests on half a listing.
            if matches!(
                e,
                KeyVaultError::Malformed { .. }
                    | KeyVaultError::ForeignLink(_)
                    | KeyVaultError::LoopingListing { .. }
                    | KeyVaultError::TooManyPages { .. }
            ) {
                report.errors.push(RunError {
                    stage: "keyVault".into(),
                    message: format!(
                        "the versions of {}/{} could not be read to their end: {e}",
                        secret.vault, secret.name
                    ),
                    transient: e.is_transient(),
                    subject: Some(format!("{}/{}", secret.vault, secret.name)),
                });
            }
            info.metadata = match &e {
                KeyVaultError::Forbidden { .. } => "forbidden",
                KeyVaultError::NotFound { .. } | KeyVaultError::VaultNotFound { .. } => "notFound",
                _ => "unavailable",
            }
            .into();
            let code = match &e {
                KeyVaultError::Forbidden { .. } => FindingCode::KeyVaultForbidden,
                KeyVaultError::NotFound { .. } | KeyVaultError::VaultNotFound { .. } => {
                    FindingCode::KeyVaultNotFound
                }
                _ => FindingCode::KeyVaultUnavailable,
            };
            // Without access to the vault, carry on: the ADF side does not depend on it.
            report.findings.push(Finding {
                code,
                severity: if matches!(e, KeyVaultError::NotFound { .. }) { Severity::Warning } else { Severity::Info },
                message: format!("Could not read the secret's metadata: {e}. Carried on without it."),
                subject: Some(format!("{}/{}", secret.vault, secret.name)),
                vault_url: None,
                // Whoever the code names: an unreadable listing (an outage, a broken page) is the platform's to chase.
                owner: code.owner(),
                fix: match e {
                    KeyVaultError::Forbidden { .. } => {
                        vec!["Assign the product's identity the 'Key Vault Reader' role on the vault (metadata only).".into()]
                    }
                    _ => vec![],
                },
            });
        }
    }
    match request.event_kind {
        EventKind::NearExpiry => report.findings.push(Finding {
            code: FindingCode::SecretNearExpiry,
            severity: Severity::Warning,
            message: format!("Secret {}/{} expires soon; the linked services below will fail once it does.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            vault_url: None,
            fix: vec!["Rotate the secret (create a new version) before it expires; this product then refreshes its consumers.".into()],
            owner: Owner::SecretOwner,
        }),
        EventKind::Expired => report.findings.push(Finding {
            code: FindingCode::SecretExpired,
            severity: Severity::Critical,
            message: format!("Secret {}/{} has expired; the linked services below cannot resolve it.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            vault_url: None,
            fix: vec!["Create a new version of the secret in Key Vault; this product then refreshes its consumers.".into()],
            owner: Owner::SecretOwner,
        }),
        EventKind::NewVersion => {}
    }
    report.secret = Some(info);
    usable
}
