//! The report: one JSON document per run, with a versioned schema published in `docs/report.schema.json`.
//!
//! Every command and every function produces a [`Report`]. It says what was found, what was done, what was
//! refused and why, and what a person must do. It never holds a secret value, a token or a function key:
//! it is built only from names, paths, etags, statuses and ADF's own error messages.

pub mod markdown;
pub mod text;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub kind: TargetKind,
    /// The factory's resource id.
    pub factory: String,
    pub name: String,
    /// The ADF type, e.g. `AzureSqlDatabase` or `ServicePrincipal`.
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
}

impl Target {
    /// The one definition of "a person must look at this", used by the summary, the exit code, the
    /// notification policy and every rendering: it was not re-saved (a refusing verdict, a skipped, failed or
    /// unreached re-save), its test failed or could not run, or a diagnosis names an owner who must act.
    pub fn needs_attention(&self) -> bool {
        self.verdict != Verdict::Resave
            || matches!(
                self.resave.status,
                ResaveStatus::Failed | ResaveStatus::Skipped | ResaveStatus::NotReached
            )
            || matches!(self.test.status, TestStatus::Failed | TestStatus::Error)
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

/// Who must act on a diagnosis.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Owner {
    PipelineOwner,
    EntraAdmin,
    PlatformOwner,
    RuntimeOwner,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::PipelineOwner => "pipelineOwner",
            Owner::EntraAdmin => "entraAdmin",
            Owner::PlatformOwner => "platformOwner",
            Owner::RuntimeOwner => "runtimeOwner",
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
pub struct Finding {
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<String>,
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
            || self.findings.iter().any(|f| f.severity != "info");
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

/// `expired` → `Expired`, for finding codes.
pub fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}
