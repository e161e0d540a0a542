//! Act: executes one holder's plan, whatever its platform. One target loop ([`apply`]) serves every platform;
//! what differs (how a target is re-saved or refreshed, and how it is proven) is one [`Actor`] per platform,
//! chosen once from the snapshot's [`Platform`]:
//!
//! - [`data_factory`]: re-save through ARM (fresh GET, exactly its properties, `If-Match`), then ADF's test
//!   connection;
//! - [`synapse`]: the same re-save through the workspace's development endpoint; no test call exists;
//! - [`app_service`]: one `configreferences/appsettings/refresh` per site or slot, then each reference's status;
//! - [`api_management`]: `refreshSecret` per named value, then its `keyVault.lastStatus`.
//!
//! Writes are sequential per holder; a transient failure stops the holder so that a retry does the rest, and
//! the report says who was not reached. The re-save rules for definitions are written once, in [`resave`].

pub mod api_management;
pub mod app_service;
pub mod data_factory;
pub mod resave;
pub mod synapse;

use crate::azure::error::AzureError;
use crate::event::EventKind;
use crate::model::{Platform, Snapshot};
pub use crate::observe::Clients;
use crate::plan::SecretRef;
use crate::report::{Resave, ResaveStatus, RunError, Target, Test, Verdict};
use tracing::Instrument;

pub use resave::{Store, Stored, Written, resave_if_safe};

/// What a run may do.
#[derive(Debug, Clone)]
pub struct Mode {
    pub dry_run: bool,
    /// `Err(reason)` when the new version cannot serve, so a re-save cannot help.
    pub secret_usable: Result<(), String>,
    pub event_kind: EventKind,
    /// The rotation's progress across deliveries (function app only): targets an earlier delivery re-saved
    /// and tested are carried over, not written again.
    pub progress: Option<std::sync::Arc<dyn crate::coordination::Progress>>,
}

impl Mode {
    /// The test of a target in a run that writes nothing: a dry run, or an expiry event (reported only).
    pub fn untested(&self) -> Option<Test> {
        self.dry_run.then(|| {
            Test::not_tested(match self.event_kind {
                EventKind::NewVersion => "dry run: nothing was written or tested",
                _ => "expiry event: reported only",
            })
        })
    }
}

/// Why acting on a target stopped short: the error as the report shows it, and whether a retry may help (a
/// transient failure stops the holder, so that the next delivery does the rest).
#[derive(Debug, Clone)]
pub struct Halt {
    pub message: String,
    pub transient: bool,
}

impl From<&AzureError> for Halt {
    fn from(e: &AzureError) -> Halt {
        Halt {
            message: e.to_string(),
            transient: e.is_transient(),
        }
    }
}

/// How one platform acts on one target of a holder. Made once per holder, so it may remember what it did for
/// an earlier target (an integration runtime's status, a site's refresh).
#[async_trait::async_trait]
pub trait Actor: Send {
    /// Re-saves or refreshes the target where its verdict and the mode allow, then proves it with the
    /// platform's own check, recording both on the target. `Err` only when the holder cannot go on.
    async fn act(&mut self, target: &mut Target) -> Result<(), Halt>;
}

/// The actor of a snapshot's platform: the one place that dispatches on it.
fn actor_for<'a>(
    clients: &'a Clients,
    snapshot: &'a Snapshot,
    secret: &'a SecretRef,
    mode: &'a Mode,
) -> Result<Box<dyn Actor + 'a>, Halt> {
    Ok(match snapshot.platform {
        Platform::DataFactory => Box::new(data_factory::FactoryActor::new(
            &clients.arm,
            snapshot,
            secret,
            mode,
        )?),
        Platform::Synapse => Box::new(synapse::WorkspaceActor::new(
            &clients.synapse,
            snapshot,
            secret,
            mode,
        )?),
        Platform::AppService => Box::new(app_service::SiteActor::new(
            &clients.arm,
            snapshot,
            secret,
            mode,
        )?),
        Platform::ApiManagement => Box::new(api_management::NamedValueActor::new(
            &clients.arm,
            snapshot,
            mode,
        )?),
    })
}

/// Applies one holder's targets in order (credentials before the linked services that use them, as planned).
/// Writes are sequential. Returns the targets with their outcomes, and what stopped the holder, if anything.
pub async fn apply(
    clients: &Clients,
    snapshot: &Snapshot,
    mut targets: Vec<Target>,
    secret: &SecretRef,
    mode: &Mode,
) -> (Vec<Target>, Vec<RunError>) {
    let mut errors = Vec::new();
    let mut actor = match actor_for(clients, snapshot, secret, mode) {
        Ok(actor) => actor,
        Err(halt) => {
            let why = format!("not reached: {}", halt.message);
            for target in targets.iter_mut() {
                not_reached(target, &why);
            }
            errors.push(run_error(&halt, snapshot.id.clone()));
            return (targets, errors);
        }
    };
    drive(actor.as_mut(), snapshot, &mut targets, mode, &mut errors).await;
    (targets, errors)
}

/// Whether the target may be re-saved or refreshed now: its verdict allows it, the run writes, and the new
/// version can serve. When not, the reason is recorded on the target.
pub fn may_refresh(target: &mut Target, mode: &Mode) -> bool {
    if target.verdict != Verdict::Resave {
        return false;
    }
    if mode.dry_run {
        target.resave = Resave::with_status(ResaveStatus::DryRun, None);
        return false;
    }
    if let Err(why) = &mode.secret_usable {
        target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why.clone()));
        return false;
    }
    true
}

/// The one target loop: each target in order, carried over when an earlier delivery finished it, not reached
/// once a transient failure has stopped the holder.
pub async fn drive(
    actor: &mut (dyn Actor + '_),
    snapshot: &Snapshot,
    targets: &mut [Target],
    mode: &Mode,
    errors: &mut Vec<RunError>,
) {
    let mut stopped: Option<String> = None;
    for target in targets.iter_mut() {
        if let Some(why) = &stopped {
            not_reached(target, why);
            continue;
        }
        if let Some(earlier) = mode.progress.as_ref().and_then(|p| p.already_done(target)) {
            earlier.carry_into(target);
            continue;
        }
        let span = tracing::info_span!("target", platform = %snapshot.platform, holder = %snapshot.id, name = %target.name, kind = ?target.kind);
        match actor.act(target).instrument(span).await {
            Ok(()) => {
                if let Some(progress) = &mode.progress {
                    progress.record(target);
                }
            }
            Err(halt) => {
                errors.push(run_error(&halt, format!("{}/{}", snapshot.id, target.name)));
                if halt.transient {
                    // The service is down or the budget is spent: stop here, so the retry does the rest.
                    stopped = Some(format!("not reached: {}", halt.message));
                }
            }
        }
    }
}

fn not_reached(target: &mut Target, why: &str) {
    target.resave = Resave::with_status(ResaveStatus::NotReached, Some(why.to_string()));
    target.test = Test::not_tested(why.to_string());
}

fn run_error(halt: &Halt, subject: String) -> RunError {
    RunError {
        stage: "apply".into(),
        message: halt.message.clone(),
        transient: halt.transient,
        subject: Some(subject),
    }
}
