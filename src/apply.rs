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
use crate::observe_synapse::{SynapseAccess, discover_workspaces};
use crate::plan::{self, FactorySnapshot, SecretRef};
use crate::report::{Command, Finding, Report, RunError, SecretInfo, Target, Trigger};
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

    // Synapse workspaces are few and read whole; each is planned like a factory and acted on with them.
    let synapse = azure.synapse.with_deadline(request.deadline);
    let workspaces: Vec<(FactorySnapshot, Vec<Target>)> = discover_workspaces(
        &arm,
        &synapse,
        &request.scopes,
        azure.concurrency,
        &mut report,
    )
    .await
    .into_iter()
    .filter_map(|w| {
        let targets = plan::plan_factory(&w, &secret);
        (!targets.is_empty()).then_some((w, targets))
    })
    .collect();

    let mode = Mode {
        dry_run,
        secret_usable: secret_usable.clone(),
        event_kind: request.event_kind,
        progress: request.progress.clone(),
    };
    // Writes are sequential within a factory; enough factories at once to use every subscription's requests in
    // flight (the ARM client caps them per subscription and its pacer keeps them under ARM's buckets).
    let subscriptions = crate::observe::subscription_count(request.scopes.iter().map(|s| s.id()));
    let factories_at_once = azure.concurrency.max(1) * subscriptions;
    let act_on = |(factory, targets): (FactorySnapshot, Vec<Target>)| {
        let arm = arm.clone();
        let secret = secret.clone();
        let mode = mode.clone();
        let synapse = synapse.clone();
        async move {
            if crate::azure::synapse::is_workspace_id(&factory.id) {
                crate::act_synapse::apply_workspace(&synapse, &factory, targets, &secret, &mode)
                    .await
            } else {
                act::apply_factory(&arm, &factory, targets, &secret, &mode).await
            }
        }
    };
    let results: Vec<(Vec<Target>, Vec<RunError>)> = match &azure.discovery {
        // A burst shares one discovery (every definition with a Key Vault reference); plan on it.
        Some(cache) => {
            let discovery = cache
                .discover(&arm, &request.scopes, azure.concurrency)
                .await;
            discovery.report_into(&mut report);
            let mut per_factory: Vec<(FactorySnapshot, Vec<Target>)> = discovery
                .snapshots
                .iter()
                .filter_map(|f| {
                    let targets = plan::plan_factory(f, &secret);
                    (!targets.is_empty()).then(|| (f.clone(), targets))
                })
                .collect();
            per_factory.extend(workspaces);
            futures::stream::iter(interleave_by_subscription(per_factory, |(f, _)| {
                f.id.as_str()
            }))
            .map(act_on)
            .buffer_unordered(factories_at_once)
            .collect()
            .await
        }
        // Alone: each factory is planned as soon as it is listed and acted on while the rest are listed, so
        // writes use the write bucket while reads use the read bucket. Only the definitions that may reference
        // this secret are held.
        None => {
            let (found, mut planned) = tokio::sync::mpsc::unbounded_channel();
            for work in workspaces {
                // The receiver is alive: nothing can fail here.
                let _ = found.send(work);
            }
            let keep = Keep::Secret(secret.name.clone());
            let discovery = async {
                let found = found;
                discover_each(
                    &arm,
                    &request.scopes,
                    azure.concurrency,
                    &keep,
                    &mut report,
                    &mut |f| {
                        let targets = plan::plan_factory(&f, &secret);
                        if !targets.is_empty() {
                            // The receiver lives until discovery ends; a send cannot fail before then.
                            let _ = found.send((f, targets));
                        }
                    },
                )
                .await;
            };
            let acting = futures::stream::poll_fn(|cx| planned.poll_recv(cx))
                .map(act_on)
                .buffer_unordered(factories_at_once)
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
        (a.factory.to_ascii_lowercase(), &a.name).cmp(&(b.factory.to_ascii_lowercase(), &b.name))
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
                            code: format!("secretVersion{}", crate::report::capitalise(why)),
                            severity: "error".into(),
                            message: format!("Secret {}/{} version {} is {why}.", secret.vault, secret.name, v.version),
                            subject: Some(format!("{}/{}", secret.vault, secret.name)),
                            fix: vec!["Create a new, enabled, currently valid version of the secret in Key Vault.".into()],
                        });
                    }
                }
                None => report.findings.push(Finding {
                    code: "secretVersionNotFound".into(),
                    severity: "warning".into(),
                    message: format!(
                        "Key Vault lists no version {} of {}/{}.",
                        secret.version.as_deref().unwrap_or("(any)"),
                        secret.vault,
                        secret.name
                    ),
                    subject: Some(format!("{}/{}", secret.vault, secret.name)),
                    fix: vec![],
                }),
            }
        }
        Err(e) => {
            info.metadata = match &e {
                KeyVaultError::Forbidden { .. } => "forbidden",
                KeyVaultError::NotFound { .. } | KeyVaultError::VaultNotFound { .. } => "notFound",
                _ => "unavailable",
            }
            .into();
            // Without access to the vault, carry on: the ADF side does not depend on it.
            report.findings.push(Finding {
                code: format!("keyVault{}", crate::report::capitalise(&info.metadata)),
                severity: if matches!(e, KeyVaultError::NotFound { .. }) { "warning" } else { "info" }.into(),
                message: format!("Could not read the secret's metadata: {e}. Carried on without it."),
                subject: Some(format!("{}/{}", secret.vault, secret.name)),
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
            code: "secretNearExpiry".into(),
            severity: "warning".into(),
            message: format!("Secret {}/{} expires soon; the linked services below will fail once it does.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            fix: vec!["Rotate the secret (create a new version) before it expires; this product then refreshes its consumers.".into()],
        }),
        EventKind::Expired => report.findings.push(Finding {
            code: "secretExpired".into(),
            severity: "error".into(),
            message: format!("Secret {}/{} has expired; the linked services below cannot resolve it.", secret.vault, secret.name),
            subject: Some(format!("{}/{}", secret.vault, secret.name)),
            fix: vec!["Create a new version of the secret in Key Vault; this product then refreshes its consumers.".into()],
        }),
        EventKind::NewVersion => {}
    }
    report.secret = Some(info);
    usable
}
