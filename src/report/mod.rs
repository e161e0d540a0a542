//! The report: one JSON document per run, with a versioned schema published in `docs/report.schema.json`.
//!
//! Every command and every function produces a [`Report`]. It says what was found, what was done, what was
//! refused and why, and what a person must do. It never holds a secret value, a token or a function key:
//! it is built only from names, paths, etags, statuses and ADF's own error messages.

pub mod finding;
pub mod html;
pub mod markdown;
pub mod text;

pub use finding::{Finding, FindingCode, Owner, Severity};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::model::Platform;

pub const SCHEMA: &str = "adf-secret-refresh/report/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema: String,
    pub id: String,
    /// `plan`, `refresh` or `audit`.
    pub command: Command,
    pub dry_run: bool,
    pub trigger: Trigger,
    pub started_at: String,
    pub finished_at: String,
    pub scope: Vec<String>,
    pub secret: Option<SecretInfo>,
    pub summary: Summary,
    pub targets: Vec<Target>,
    /// Findings about the run as a whole: the secret's state, vault access, traps found by the audit.
    pub findings: Vec<Finding>,
    /// Why the run could not complete, if it could not. Targets not reached are not in `targets`.
    pub errors: Vec<RunError>,
    /// False when an error stopped discovery or apply before every target was handled.
    pub complete: bool,
    /// Set when this delivery repeats a run already done for the same secret version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(default)]
    pub notifications: Vec<NotificationOutcome>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    Plan,
    Refresh,
    Audit,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub kind: TriggerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TriggerKind {
    #[default]
    Cli,
    Http,
    Eventgrid,
    Queue,
    Timer,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub vault: String,
    pub name: String,
    /// The version the event named, or the newest version Key Vault holds.
    pub version: Option<String>,
    /// `ok`, `forbidden`, `notFound` or `unavailable`: whether its metadata could be read.
    pub metadata: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_count: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub factories_scanned: usize,
    /// Synapse workspaces read (their linked services and credentials are counted with the factories').
    #[serde(default)]
    pub workspaces_scanned: usize,
    /// App Service sites and deployment slots read (each slot counts as one).
    #[serde(default)]
    pub sites_scanned: usize,
    /// API Management services read.
    #[serde(default)]
    pub api_management_services_scanned: usize,
    pub linked_services_scanned: usize,
    pub credentials_scanned: usize,
    pub affected: usize,
    pub resaved: usize,
    pub tests_passed: usize,
    pub tests_failed: usize,
    pub skipped: usize,
    pub attention: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum TargetKind {
    LinkedService,
    Credential,
    /// An App Service app setting whose value is a Key Vault reference.
    AppSetting,
    /// An App Service connection string whose value is a Key Vault reference.
    ConnectionString,
    /// An API Management named value backed by Key Vault.
    NamedValue,
}

impl TargetKind {
    /// The report's spelling, e.g. `linkedService`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::LinkedService => "linkedService",
            TargetKind::Credential => "credential",
            TargetKind::AppSetting => "appSetting",
            TargetKind::ConnectionString => "connectionString",
            TargetKind::NamedValue => "namedValue",
        }
    }
}

/// What the product decided for one target, before acting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Safe to re-save: every matched reference is certain, unpinned, and nothing inline.
    Resave,
    /// A matched reference names a `secretVersion`; a re-save keeps the old value.
    Pinned,
    /// The definition holds an inline secret; a re-save could overwrite it with the mask. Never PUT.
    InlineSecret,
    /// The reference matches only through a guess (a parameter default or an unresolvable expression). Never PUT.
    Ambiguous,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Where the consumer lives; set at discovery and carried from the snapshot.
    #[serde(default)]
    pub platform: Platform,
    /// The resource id of what holds it: factory, workspace, site or slot, API Management service.
    #[serde(default)]
    pub resource: String,
    pub kind: TargetKind,
    /// The factory's (or Synapse workspace's) resource id; empty, and absent from the JSON, on other platforms.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub factory: String,
    /// The linked service's, credential's or setting's name, or the named value's resource name.
    pub name: String,
    /// A named value's `displayName`, when it differs from its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The ADF type (e.g. `AzureSqlDatabase`, `ServicePrincipal`), or for App Service the site's kind (e.g.
    /// `functionapp,linux`), or `NamedValue`.
    #[serde(rename = "type")]
    pub adf_type: String,
    pub references: Vec<Reference>,
    pub verdict: Verdict,
    /// Why the verdict, in one sentence.
    pub reason: String,
    pub notes: Vec<Note>,
    /// For a linked service that gets the secret through an ADF credential: that credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_credential: Option<String>,
    /// For a credential: the linked services that use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_runtime: Option<RuntimeStatus>,
    pub resave: Resave,
    pub test: Test,
    /// What a person must do about the verdict, when it is not a plain re-save.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// ARM request ids of the calls made for this target, for support cases.
    #[serde(default)]
    pub request_ids: Vec<String>,
    /// For a target that needs attention: the pipelines it stops and when the next of them runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
}

/// What a broken linked service stops in its factory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    /// Pipelines that use it directly, through a dataset or data flow, or by calling such a pipeline.
    pub pipelines: Vec<String>,
    /// The triggers that start those pipelines, soonest next run first.
    pub triggers: Vec<TriggerImpact>,
    /// The soonest next run of a started trigger (RFC 3339, UTC), or null when none has a clock.
    pub next_run: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_flows: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TriggerImpact {
    pub name: String,
    /// ADF's trigger type, e.g. `ScheduleTrigger`, `TumblingWindowTrigger`, `BlobEventsTrigger`.
    #[serde(rename = "type")]
    pub trigger_type: String,
    /// ADF's `runtimeState`: `Started`, `Stopped` or `Disabled`.
    pub state: String,
    /// RFC 3339, UTC; null when stopped, event-driven, ended, or not evaluable (`note` says which).
    pub next_run: Option<String>,
    /// The affected pipelines this trigger starts.
    pub pipelines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Target {
    /// The id of what holds it: `resource`, or for a report written before `resource` existed, `factory`.
    pub fn holder(&self) -> &str {
        if self.resource.is_empty() {
            &self.factory
        } else {
            &self.resource
        }
    }

    /// The one definition of "a person must look at this", used by the summary, the exit code, the
    /// notification policy, every rendering and the blast radius ([`crate::impact`]). A target needs
    /// attention when:
    /// - it was not re-saved: a refusing verdict, or a skipped, failed or unreached re-save;
    /// - its test failed or could not run: failed, errored, or not tested after a real re-save (a plan's
    ///   targets are not tested by design, and a credential is tested through the linked services that
    ///   use it);
    /// - or a diagnosis names an owner who must act, e.g. a Git-mode re-save whose test passed: the next
    ///   publish from Git overwrites the live factory.
    pub fn needs_attention(&self) -> bool {
        let not_resaved = self.verdict != Verdict::Resave
            || matches!(
                self.resave.status,
                ResaveStatus::Failed | ResaveStatus::Skipped | ResaveStatus::NotReached
            );
        let test_did_not_pass = match self.test.status {
            TestStatus::Passed => false,
            TestStatus::Failed | TestStatus::Error => true,
            TestStatus::NotTested => {
                self.resave.status == ResaveStatus::Ok && self.kind != TargetKind::Credential
            }
        };
        not_resaved
            || test_did_not_pass
            || self.diagnosis.is_some()
            || self.test.diagnosis.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub path: String,
    pub store: String,
    pub vault: Option<String>,
    pub secret_name: Option<String>,
    pub secret_version: Option<String>,
    /// `certain`, `parameterDefault` or `unresolved`.
    pub certainty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved_because: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ResaveStatus {
    Ok,
    Failed,
    Skipped,
    DryRun,
    /// Apply did not reach this target before the run stopped.
    NotReached,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resave {
    pub status: ResaveStatus,
    pub etag_before: Option<String>,
    pub etag_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: u32,
}

impl Resave {
    pub fn with_status(status: ResaveStatus, error: Option<String>) -> Self {
        Resave {
            status,
            etag_before: None,
            etag_after: None,
            error,
            attempts: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum TestStatus {
    Passed,
    Failed,
    NotTested,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    pub status: TestStatus,
    pub message: Option<String>,
    /// ADF's response body, kept as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

impl Test {
    pub fn not_tested(message: impl Into<String>) -> Self {
        Test {
            status: TestStatus::NotTested,
            message: Some(message.into()),
            raw: None,
            diagnosis: None,
        }
    }
}

/// The likely cause of a problem, the steps that fix it, and who must take them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// A stable identifier, e.g. `AADSTS7000222` or `pinnedVersion`.
    pub code: String,
    pub cause: String,
    pub fix: Vec<String>,
    pub owner: Owner,
}

/// A fact about a target that a reader (and the product) acts on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Note {
    /// The reference pins `secretVersion` to the version just created.
    PinnedToCurrentVersion,
    /// The credentials are held encrypted on a self-hosted integration runtime (`encryptedCredential`).
    SelfHostedIntegrationRuntimeCredential,
    /// The linked service has parameters.
    Parameterised,
    /// It gets the secret through an ADF credential.
    ViaCredential,
    /// The factory is Git-integrated: the next publish overwrites the live copy.
    GitMode,
    SelfHostedIntegrationRuntime,
    SelfHostedIntegrationRuntimeOffline,
    ManagedIntegrationRuntime,
    /// ADF said interactive authoring is off on the managed IR, so it could not test.
    InteractiveAuthoringDisabled,
    /// The definition changed between discovery and the re-save's fresh read.
    ChangedSinceDiscovery,
    /// The factory's datasets, pipelines, data flows or triggers could not be read, so `impact` is absent.
    ImpactNotRead,
    /// An earlier delivery of the same rotation (vault, secret, version) already re-saved and tested it:
    /// `resave` and `test` are what that delivery recorded, and nothing was sent to ARM for it this time.
    CarriedOver,
}

impl Note {
    pub fn as_str(self) -> &'static str {
        match self {
            Note::PinnedToCurrentVersion => "pinnedToCurrentVersion",
            Note::SelfHostedIntegrationRuntimeCredential => {
                "selfHostedIntegrationRuntimeCredential"
            }
            Note::Parameterised => "parameterised",
            Note::ViaCredential => "viaCredential",
            Note::GitMode => "gitMode",
            Note::SelfHostedIntegrationRuntime => "selfHostedIntegrationRuntime",
            Note::SelfHostedIntegrationRuntimeOffline => "selfHostedIntegrationRuntimeOffline",
            Note::ManagedIntegrationRuntime => "managedIntegrationRuntime",
            Note::InteractiveAuthoringDisabled => "interactiveAuthoringDisabled",
            Note::ChangedSinceDiscovery => "changedSinceDiscovery",
            Note::ImpactNotRead => "impactNotRead",
            Note::CarriedOver => "carriedOver",
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Notes compare with their report spelling, so tests and renderings read naturally.
impl PartialEq<&str> for Note {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Note {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// What was being done: `discovery`, `apply`, `keyVault`, `input`.
    pub stage: String,
    pub message: String,
    /// Whether trying again later may succeed (an outage or throttling, not a refusal).
    pub transient: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationOutcome {
    pub channel: String,
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// An empty report for a run that starts now; the run fills in the rest.
    pub fn start(
        id: String,
        command: Command,
        dry_run: bool,
        trigger: Trigger,
        scopes: &[crate::config::Scope],
    ) -> Report {
        Report {
            schema: SCHEMA.into(),
            id,
            command,
            dry_run,
            trigger,
            started_at: now_rfc3339(),
            finished_at: String::new(),
            scope: scopes.iter().map(|s| s.id().to_string()).collect(),
            secret: None,
            summary: Summary::default(),
            targets: Vec::new(),
            findings: Vec::new(),
            errors: Vec::new(),
            complete: true,
            duplicate_of: None,
            notifications: Vec::new(),
        }
    }

    /// Closes the run: the finish time, completeness and the summary.
    pub fn finish(&mut self) {
        self.finished_at = now_rfc3339();
        if !self.errors.is_empty() {
            self.complete = false;
        }
        self.summarise();
    }

    /// Recomputes the summary counts from the targets and findings.
    pub fn summarise(&mut self) {
        let s = &mut self.summary;
        s.affected = self.targets.len();
        s.resaved = count(&self.targets, |t| t.resave.status == ResaveStatus::Ok);
        s.tests_passed = count(&self.targets, |t| t.test.status == TestStatus::Passed);
        s.tests_failed = count(&self.targets, |t| {
            matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
        });
        s.skipped = count(&self.targets, |t| {
            matches!(
                t.resave.status,
                ResaveStatus::Skipped | ResaveStatus::NotReached
            )
        });
        s.attention = !self.complete
            || self.targets.iter().any(Target::needs_attention)
            || self.findings.iter().any(Finding::needs_attention);
    }

    /// The process exit code: 0 all fine, 2 something needs a person, 1 the run could not complete.
    pub fn exit_code(&self) -> i32 {
        if !self.complete {
            1
        } else if self.summary.attention {
            2
        } else {
            0
        }
    }

    /// Whether the only reason the run failed may go away on retry (an outage, throttling, a deadline).
    pub fn retry_may_help(&self) -> bool {
        !self.complete && !self.errors.is_empty() && self.errors.iter().all(|e| e.transient)
    }
}

fn count(targets: &[Target], f: impl Fn(&Target) -> bool) -> usize {
    targets.iter().filter(|t| f(t)).count()
}

/// RFC 3339 for a unix timestamp, as the report writes times.
pub fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The current time in RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `expired` → `Expired`.
pub fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// The time a report's relative times ("in 3 h 12 min") count from: when the run finished (or started).
pub fn reference_time(report: &Report) -> Option<jiff::Timestamp> {
    [&report.finished_at, &report.started_at]
        .into_iter()
        .find_map(|t| t.parse().ok())
}

/// The line every rendering leads a target's details with, e.g.
/// "breaks 4 pipelines; next run 02:00 UTC (in 3 h 12 min, trigger `nightly_load`)".
pub fn impact_headline(impact: &Impact, now: Option<jiff::Timestamp>) -> String {
    impact_headline_with(impact, now, &|prose| prose.to_string(), &|name| {
        format!("`{name}`")
    })
}

/// [`impact_headline`] with the renderer's own escaping of prose and quoting of names (Markdown).
pub fn impact_headline_with(
    impact: &Impact,
    now: Option<jiff::Timestamp>,
    prose: &dyn Fn(&str) -> String,
    name: &dyn Fn(&str) -> String,
) -> String {
    let breaks = match impact.pipelines.len() {
        0 => return prose("breaks no pipeline"),
        1 => "breaks 1 pipeline".to_string(),
        n => format!("breaks {n} pipelines"),
    };
    let soonest = impact.next_run.as_deref().and_then(|next| {
        impact
            .triggers
            .iter()
            .find(|t| t.next_run.as_deref() == Some(next))
    });
    let next: Option<jiff::Timestamp> = impact.next_run.as_deref().and_then(|t| t.parse().ok());
    match (next, soonest) {
        (Some(next), Some(trigger)) => {
            let within_a_day = now.is_some_and(|now| next.as_second() - now.as_second() < 86_400);
            let when = if within_a_day {
                next.strftime("%H:%M UTC").to_string()
            } else {
                next.strftime("%Y-%m-%d %H:%M UTC").to_string()
            };
            let relative = now
                .map(|now| format!("{}, ", until(next.as_second() - now.as_second())))
                .unwrap_or_default();
            format!(
                "{}{})",
                prose(&format!("{breaks}; next run {when} ({relative}trigger ")),
                name(&trigger.name)
            )
        }
        _ if impact.triggers.is_empty() => prose(&format!("{breaks}; no trigger starts them")),
        _ => match impact
            .triggers
            .iter()
            .find(|t| t.state.eq_ignore_ascii_case("Started"))
        {
            Some(t) => format!(
                "{}{}{})",
                prose(&format!("{breaks}; no scheduled run (trigger ")),
                name(&t.name),
                prose(&format!(": {}", t.note.as_deref().unwrap_or("no clock")))
            ),
            None => prose(&format!("{breaks}; no started trigger")),
        },
    }
}

/// "in 3 h 12 min", "in 2 d 4 h", "in 5 min", or "due now".
fn until(seconds: i64) -> String {
    if seconds < 60 {
        return "due now".into();
    }
    let minutes = seconds / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("in {days} d {hours} h")
    } else if hours > 0 {
        format!("in {hours} h {minutes} min")
    } else {
        format!("in {minutes} min")
    }
}

/// The targets in the order a person should look at them: the soonest next run first, then those whose
/// impact has no clock, then the rest, each group in report order.
pub fn by_soonest_next_run<'a>(targets: impl IntoIterator<Item = &'a Target>) -> Vec<&'a Target> {
    let mut ordered: Vec<&Target> = targets.into_iter().collect();
    ordered.sort_by_key(|t| match &t.impact {
        Some(Impact {
            next_run: Some(next),
            ..
        }) => (0, next.parse::<jiff::Timestamp>().ok()),
        Some(_) => (1, None),
        None => (2, None),
    });
    ordered
}

#[cfg(test)]
mod impact_rendering_tests {
    use super::*;

    fn trigger(name: &str, state: &str, next: Option<&str>, note: Option<&str>) -> TriggerImpact {
        TriggerImpact {
            name: name.into(),
            trigger_type: "ScheduleTrigger".into(),
            state: state.into(),
            next_run: next.map(str::to_string),
            pipelines: vec!["p".into()],
            note: note.map(str::to_string),
        }
    }

    fn impact(pipelines: usize, triggers: Vec<TriggerImpact>) -> Impact {
        Impact {
            pipelines: (0..pipelines).map(|i| format!("p{i}")).collect(),
            next_run: triggers.iter().find_map(|t| t.next_run.clone()),
            triggers,
            datasets: vec![],
            data_flows: vec![],
        }
    }

    #[test]
    fn the_headline_says_what_breaks_and_when() {
        let now = "2026-11-27T22:48:00Z".parse().ok();
        let soon = impact(
            4,
            vec![trigger(
                "nightly_load",
                "Started",
                Some("2026-11-28T02:00:00Z"),
                None,
            )],
        );
        assert_eq!(
            impact_headline(&soon, now),
            "breaks 4 pipelines; next run 02:00 UTC (in 3 h 12 min, trigger `nightly_load`)"
        );
        let later = impact(
            1,
            vec![trigger(
                "monthly",
                "Started",
                Some("2026-12-01T02:00:00Z"),
                None,
            )],
        );
        assert_eq!(
            impact_headline(&later, now),
            "breaks 1 pipeline; next run 2026-12-01 02:00 UTC (in 3 d 3 h, trigger `monthly`)"
        );
        let event = impact(
            2,
            vec![
                trigger(
                    "paused",
                    "Stopped",
                    None,
                    Some("Stopped: it starts nothing until it is started"),
                ),
                trigger(
                    "on_drop",
                    "Started",
                    None,
                    Some("event trigger: runs when an event arrives, not on a clock"),
                ),
            ],
        );
        assert_eq!(
            impact_headline(&event, now),
            "breaks 2 pipelines; no scheduled run (trigger `on_drop`: event trigger: runs when an event arrives, not on a clock)"
        );
        let stopped = impact(2, vec![trigger("paused", "Stopped", None, None)]);
        assert_eq!(
            impact_headline(&stopped, now),
            "breaks 2 pipelines; no started trigger"
        );
        assert_eq!(
            impact_headline(&impact(3, vec![]), now),
            "breaks 3 pipelines; no trigger starts them"
        );
        assert_eq!(
            impact_headline(&impact(0, vec![]), now),
            "breaks no pipeline"
        );
    }
}

#[cfg(test)]
mod attention_tests {
    use super::*;
    use ResaveStatus as R;
    use TestStatus as T;

    fn target(
        kind: TargetKind,
        verdict: Verdict,
        resave: ResaveStatus,
        test: TestStatus,
    ) -> Target {
        Target {
            platform: Platform::DataFactory,
            resource:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
                    .into(),
            display_name: None,
            kind,
            factory:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
                    .into(),
            name: "ls".into(),
            adf_type: "AzureSqlDatabase".into(),
            references: vec![],
            verdict,
            reason: String::new(),
            notes: vec![],
            via_credential: None,
            used_by: vec![],
            integration_runtime: None,
            resave: Resave::with_status(resave, None),
            test: Test {
                status: test,
                message: None,
                raw: None,
                diagnosis: None,
            },
            diagnosis: None,
            request_ids: vec![],
            impact: None,
        }
    }

    fn linked(verdict: Verdict, resave: ResaveStatus, test: TestStatus) -> Target {
        target(TargetKind::LinkedService, verdict, resave, test)
    }

    fn with_notes(mut t: Target, notes: &[Note]) -> Target {
        t.notes = notes.to_vec();
        t.diagnosis = crate::diagnose::for_verdict(t.verdict, &t.notes);
        t
    }

    fn with_test_diagnosis(mut t: Target) -> Target {
        t.test.diagnosis = Some(crate::diagnose::runtime_offline());
        t
    }

    #[test]
    fn attention_follows_the_one_rule() {
        let credential =
            |resave, test| target(TargetKind::Credential, Verdict::Resave, resave, test);
        let rows: Vec<(&str, Target, bool)> = vec![
            (
                "a re-saved linked service whose test passed is fine",
                linked(Verdict::Resave, R::Ok, T::Passed),
                false,
            ),
            (
                "a re-saved linked service whose test failed needs attention",
                linked(Verdict::Resave, R::Ok, T::Failed),
                true,
            ),
            (
                "a re-saved linked service whose test errored needs attention",
                linked(Verdict::Resave, R::Ok, T::Error),
                true,
            ),
            (
                "a re-saved linked service whose test could not run (a parameter without a default) needs attention",
                with_notes(
                    linked(Verdict::Resave, R::Ok, T::NotTested),
                    &[Note::Parameterised],
                ),
                true,
            ),
            (
                "a re-save that failed needs attention",
                linked(Verdict::Resave, R::Failed, T::NotTested),
                true,
            ),
            (
                "a re-save that was skipped needs attention",
                linked(Verdict::Resave, R::Skipped, T::NotTested),
                true,
            ),
            (
                "a target the run did not reach needs attention",
                linked(Verdict::Resave, R::NotReached, T::NotTested),
                true,
            ),
            (
                "a pinned reference needs attention even when its test passed",
                linked(Verdict::Pinned, R::Skipped, T::Passed),
                true,
            ),
            (
                "an inline secret needs attention",
                linked(Verdict::InlineSecret, R::Skipped, T::NotTested),
                true,
            ),
            (
                "an ambiguous reference needs attention",
                linked(Verdict::Ambiguous, R::Skipped, T::NotTested),
                true,
            ),
            (
                "a plan's re-save, not tested by design, is fine",
                linked(Verdict::Resave, R::DryRun, T::NotTested),
                false,
            ),
            (
                "a plan's pinned reference needs attention",
                linked(Verdict::Pinned, R::DryRun, T::NotTested),
                true,
            ),
            (
                "a re-saved credential, tested through its linked services, is fine",
                credential(R::Ok, T::NotTested),
                false,
            ),
            (
                "a credential whose re-save failed needs attention",
                credential(R::Failed, T::NotTested),
                true,
            ),
            (
                "a Git-mode re-save whose test passed needs attention: the next publish from Git overwrites it",
                with_notes(linked(Verdict::Resave, R::Ok, T::Passed), &[Note::GitMode]),
                true,
            ),
            (
                "a Git-mode factory's planned re-save needs attention for the same reason",
                with_notes(
                    linked(Verdict::Resave, R::DryRun, T::NotTested),
                    &[Note::GitMode],
                ),
                true,
            ),
            (
                "a test diagnosis (an offline self-hosted runtime) names an owner, so it needs attention",
                with_test_diagnosis(linked(Verdict::Resave, R::Ok, T::NotTested)),
                true,
            ),
        ];
        for (sentence, t, expected) in rows {
            assert_eq!(t.needs_attention(), expected, "{sentence}");
        }
    }

    #[test]
    fn the_summary_counts_a_finding_only_above_info() {
        let mut report =
            Report::start("r".into(), Command::Refresh, false, Trigger::default(), &[]);
        let finding = |severity| Finding {
            code: FindingCode::KeyVaultUnavailable,
            severity,
            subject: None,
            vault_url: None,
            message: String::new(),
            fix: vec![],
            owner: Owner::PlatformOwner,
        };
        for (severity, attention, exit) in [
            (Severity::Info, false, 0),
            (Severity::Warning, true, 2),
            (Severity::Critical, true, 2),
        ] {
            report.findings = vec![finding(severity)];
            report.summarise();
            assert_eq!(report.summary.attention, attention, "{severity}");
            assert_eq!(report.exit_code(), exit, "{severity}");
        }
    }
}
