//! The HTML page of a report or an inventory, for `--output html` and for a browser that opens
//! `GET /api/refresh/{id}`: one self-contained document that a person can open offline, from a file or a blob.
//!
//! Styles, a small script (filters and sorting) and the expiry timeline (SVG) are inline, and a Content
//! Security Policy in the page itself forbids loading anything else. Without JavaScript every word is there;
//! only filtering and sorting need it. The page is built from the report or inventory document alone, which
//! hold no secret value, token or key, and the templates (`templates/`, checked when the crate compiles)
//! escape every string.

use super::text::{self, diagnoses, primary_diagnosis};
use super::{Impact, Report, ResaveStatus, Target, TargetKind, TestStatus, Verdict};
use crate::inventory::{self, Consumer, Inventory, SecretEntry, SecretStatus, Severity};
use askama::Template;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// The `Content-Type` of a page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

const STYLE: &str = include_str!("../../templates/page.css");
const SCRIPT: &str = include_str!("../../templates/page.js");

/// Renders a report's page.
pub fn report(report: &Report) -> String {
    finish(ReportPage::new(report).render())
}

/// Renders an inventory's page.
pub fn inventory(inventory: &Inventory) -> String {
    finish(InventoryPage::new(inventory).render())
}

/// Whether a request's `Accept` header prefers a page to JSON: `text/html` is listed with a weight above zero
/// and at least that of `application/json`. A bare `*/*` (curl, scripts) keeps JSON.
pub fn wants_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut html = 0.0_f32;
    let mut json = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(weight),
            "application/json" => json = json.max(weight),
            _ => {}
        }
    }
    html > 0.0 && html >= json
}

/// The policy every page carries: nothing but its own inline style and script (by hash) may load.
pub fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; style-src '{}'; script-src '{}'; base-uri 'none'; form-action 'none'",
            sha256(STYLE),
            sha256(SCRIPT)
        )
    })
}

fn sha256(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A template fails only when writing to a `String` fails, which it does not; the page says so if it ever does.
fn finish(rendered: askama::Result<String>) -> String {
    rendered.unwrap_or_else(|e| {
        format!(
            "<!DOCTYPE html><title>Page not rendered</title><p>The page could not be rendered: {}</p>",
            escape(&e.to_string())
        )
    })
}

/// HTML-escapes text placed outside a template (the impact headline, built by the shared wording), as the
/// templates escape theirs.
fn escape(text: &str) -> String {
    match askama::filters::escape(text, askama::filters::Html) {
        Ok(escaped) => escaped.to_string(),
        Err(never) => match never {},
    }
}

// ---- What the page says about a target or a consumer: one small function each, so that a change of the
// ---- report model is a one-line change here.

/// A platform: the key filters use, and the word a person reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub key: &'static str,
    pub label: &'static str,
}

impl From<crate::model::Platform> for Platform {
    fn from(p: crate::model::Platform) -> Self {
        Platform {
            key: p.as_str(),
            label: p.label(),
        }
    }
}

/// Every platform, in the order the filters list them.
fn all_platforms() -> impl Iterator<Item = Platform> {
    crate::model::Platform::ALL.into_iter().map(Platform::from)
}

/// The platform of a report target, as discovery set it.
pub fn target_platform(t: &Target) -> Platform {
    t.platform.into()
}

/// The platform of an inventory consumer, as discovery set it.
fn consumer_platform(c: &Consumer) -> Platform {
    c.platform.into()
}

/// The resource id of what holds a target (factory, workspace, site, service).
fn holder_id(t: &Target) -> &str {
    t.holder()
}

fn kind_text(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::LinkedService => "linked service",
        TargetKind::Credential => "credential",
        TargetKind::AppSetting => "app setting",
        TargetKind::ConnectionString => "connection string",
        TargetKind::NamedValue => "named value",
    }
}

/// The owner code of a diagnosis or finding with the words a reader expects, whichever model it comes from.
fn owner_text(code: &str) -> String {
    let words = match code {
        "pipelineOwner" => "the pipeline owner",
        "entraAdmin" => "an Entra ID administrator",
        "platformOwner" => "the platform owner",
        "runtimeOwner" => "the integration runtime owner",
        "secretOwner" => "the secret's owner",
        "appOwner" => "the app's owner",
        other => other,
    };
    format!("{words} ({code})")
}

/// A severity's tone on the page, whichever vocabulary it is written in.
fn severity_tone(severity: &str) -> &'static str {
    match severity {
        "critical" | "error" => "bad",
        "warning" => "warn",
        _ => "info",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Label {
    key: &'static str,
    text: &'static str,
}

fn verdict_label(v: Verdict) -> Label {
    let text = match v {
        Verdict::Resave => "re-save",
        Verdict::Pinned => "pinned",
        Verdict::InlineSecret => "inline secret",
        Verdict::Ambiguous => "ambiguous",
    };
    Label {
        key: text::verdict_word(v),
        text,
    }
}

/// What happened to a target, as one word to filter on.
fn status_label(t: &Target) -> Label {
    let (key, text) = match (t.resave.status, t.test.status) {
        (ResaveStatus::Failed, _) => ("resaveFailed", "re-save failed"),
        (_, TestStatus::Failed | TestStatus::Error) => ("testFailed", "test failed"),
        (ResaveStatus::NotReached, _) => ("notReached", "not reached"),
        (ResaveStatus::Skipped, _) => ("notResaved", "not re-saved"),
        (ResaveStatus::DryRun, _) => ("wouldResave", "would re-save"),
        (ResaveStatus::Ok, TestStatus::Passed) => ("passed", "re-saved, test passed"),
        (ResaveStatus::Ok, TestStatus::NotTested) => ("notTested", "re-saved, not tested"),
    };
    Label { key, text }
}

fn tone(t: &Target) -> &'static str {
    if t.resave.status == ResaveStatus::Failed
        || matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
    {
        "bad"
    } else if t.needs_attention() {
        "warn"
    } else {
        "good"
    }
}

// ---- The layout every page shares (templates/base.html).

struct Layout {
    title: String,
    heading: String,
    tone: &'static str,
    meta: Vec<String>,
    footer: String,
    policy: &'static str,
    style: &'static str,
    script: &'static str,
}

impl Layout {
    fn new(heading: String, tone: &'static str, meta: Vec<String>, footer: String) -> Layout {
        Layout {
            title: heading.clone(),
            heading,
            tone,
            meta,
            footer,
            policy: content_security_policy(),
            style: STYLE,
            script: SCRIPT,
        }
    }
}

struct Count {
    key: &'static str,
    label: &'static str,
    value: usize,
    tone: &'static str,
}

fn count(key: &'static str, label: &'static str, value: usize, tone: &'static str) -> Count {
    Count {
        key,
        label,
        value,
        tone: if value > 0 { tone } else { "" },
    }
}

struct Filter {
    key: &'static str,
    label: &'static str,
    options: Vec<FilterOption>,
}

struct FilterOption {
    key: String,
    text: String,
}

struct FilterBar {
    group: &'static str,
    noun: &'static str,
    total: usize,
    filters: Vec<Filter>,
}

/// A filter whose options are the values present, in first-seen order.
fn filter<'a>(
    key: &'static str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Filter {
    let mut options: Vec<FilterOption> = Vec::new();
    for (key, text) in values {
        if !options.iter().any(|o| o.key == key) {
            options.push(FilterOption {
                key: key.to_string(),
                text: text.to_string(),
            });
        }
    }
    Filter {
        key,
        label,
        options,
    }
}

struct FindingView {
    severity: String,
    tone: &'static str,
    code: String,
    subject: Option<String>,
    anchor: Option<String>,
    message: String,
    fix: Vec<String>,
    owner: Option<String>,
}

struct ErrorView {
    stage: String,
    kind: &'static str,
    subject: Option<String>,
    message: String,
}

fn error_view(e: &super::RunError) -> ErrorView {
    ErrorView {
        stage: e.stage.clone(),
        kind: if e.transient {
            "transient: a later retry may succeed"
        } else {
            "permanent"
        },
        subject: e.subject.clone(),
        message: e.message.clone(),
    }
}

fn footer(document: &str, id: &str) -> String {
    format!(
        "Made by adf-secret-refresh from {document} {id}. The page is built from that document alone, which holds no secret value, token or key."
    )
}

// ---- The report page (templates/report.html).

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    layout: Layout,
    counts: Vec<Count>,
    scanned: String,
    notices: Vec<String>,
    filters: FilterBar,
    total: usize,
    attention: Vec<TargetView>,
    rest: Vec<TargetView>,
    findings: Vec<FindingView>,
    errors: Vec<ErrorView>,
    notifications: Vec<(String, String)>,
    closing: String,
}

struct TargetView {
    anchor: String,
    name: String,
    holder_id: String,
    kind: &'static str,
    target_type: String,
    platform: Platform,
    verdict: Label,
    status: Label,
    tone: &'static str,
    reason: String,
    impact: Option<ImpactView>,
    diagnoses: Vec<DiagnosisView>,
    references: Vec<String>,
    notes: Vec<&'static str>,
    runtime: Option<String>,
    via_credential: Option<String>,
    used_by: Vec<String>,
    resave: &'static str,
    resave_error: Option<String>,
    test: &'static str,
    test_message: Option<String>,
    request_ids: Vec<String>,
}

struct ImpactView {
    /// Already escaped: the shared wording with names in `<code>`.
    headline: String,
    pipelines: Vec<String>,
    triggers: Vec<TriggerView>,
}

struct TriggerView {
    name: String,
    kind: String,
    state: String,
    when: String,
}

struct DiagnosisView {
    code: String,
    cause: String,
    fix: Vec<String>,
    owner: String,
}

impl ReportPage {
    fn new(report: &Report) -> ReportPage {
        let s = &report.summary;
        let now = super::reference_time(report);
        let (state, page_tone) = if !report.complete {
            ("incomplete", "bad")
        } else if s.attention {
            ("attention needed", "warn")
        } else {
            ("all fine", "good")
        };
        let mut meta = vec![format!(
            "Report {} · started by {} · {} to {}",
            report.id,
            trigger_word(report.trigger.kind),
            report.started_at,
            report.finished_at
        )];
        if let Some(secret) = &report.secret {
            meta.push(format!(
                "Secret {}/{} version {} ({})",
                secret.vault,
                secret.name,
                secret.version.as_deref().unwrap_or("latest"),
                text::describe_secret(secret)
            ));
        }
        if !report.scope.is_empty() {
            meta.push(format!("Scope: {}", report.scope.join(", ")));
        }
        let mut notices = Vec::new();
        if let Some(first) = &report.duplicate_of {
            notices.push(format!(
                "This delivery repeats run {first}: nothing was done again."
            ));
        }
        if !report.complete {
            notices.push(
                "The run did not complete: targets it did not reach are not listed (see below)."
                    .into(),
            );
        }

        // A target's anchor is its place in the report, whichever section shows it.
        let index_of = |t: &Target| {
            report
                .targets
                .iter()
                .position(|x| std::ptr::eq(x, t))
                .unwrap_or_default()
        };
        let attention: Vec<TargetView> =
            super::by_soonest_next_run(report.targets.iter().filter(|t| t.needs_attention()))
                .into_iter()
                .map(|t| target_view(index_of(t), t, now))
                .collect();
        let rest: Vec<TargetView> = report
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.needs_attention())
            .map(|(i, t)| target_view(i, t, now))
            .collect();

        let all = || attention.iter().chain(rest.iter());
        let filters = FilterBar {
            group: "targets",
            noun: "targets",
            total: report.targets.len(),
            filters: vec![
                filter(
                    "platform",
                    "Platform",
                    all().map(|t| (t.platform.key, t.platform.label)),
                ),
                filter(
                    "verdict",
                    "Verdict",
                    all().map(|t| (t.verdict.key, t.verdict.text)),
                ),
                filter(
                    "status",
                    "Status",
                    all().map(|t| (t.status.key, t.status.text)),
                ),
            ],
        };
        let workspaces = match s.workspaces_scanned {
            0 => String::new(),
            n => format!("{n} Synapse workspace{}, ", plural(n)),
        };
        ReportPage {
            layout: Layout::new(
                format!("{}: {state}", text::title(report)),
                page_tone,
                meta,
                footer("report", &report.id),
            ),
            counts: vec![
                count("affected", "Affected", s.affected, ""),
                count("attention", "Need attention", attention.len(), "warn"),
                count("resaved", "Re-saved", s.resaved, "good"),
                count("testsPassed", "Tests passed", s.tests_passed, "good"),
                count("testsFailed", "Tests failed", s.tests_failed, "bad"),
                count("skipped", "Skipped", s.skipped, "warn"),
            ],
            scanned: format!(
                "Scanned {} factor{}, {workspaces}{} linked services, {} credentials.",
                s.factories_scanned,
                if s.factories_scanned == 1 { "y" } else { "ies" },
                s.linked_services_scanned,
                s.credentials_scanned
            ),
            notices,
            filters,
            total: report.targets.len(),
            attention,
            rest,
            findings: report.findings.iter().map(report_finding).collect(),
            errors: report.errors.iter().map(error_view).collect(),
            notifications: report
                .notifications
                .iter()
                .map(|n| {
                    let outcome = match (&n.error, n.delivered) {
                        (_, true) => "delivered".to_string(),
                        (Some(error), false) => format!("not delivered: {error}"),
                        (None, false) => "not delivered".to_string(),
                    };
                    (n.channel.clone(), outcome)
                })
                .collect(),
            closing: format!(
                "{} re-saved, {} tests passed, {} failed, {} skipped. Exit code {}.",
                s.resaved,
                s.tests_passed,
                s.tests_failed,
                s.skipped,
                report.exit_code()
            ),
        }
    }
}

fn trigger_word(kind: super::TriggerKind) -> &'static str {
    use super::TriggerKind::*;
    match kind {
        Cli => "the command line",
        Http => "an HTTP request",
        Eventgrid => "a Key Vault event",
        Queue => "a queued job",
        Timer => "the timer",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A report finding as the page shows it.
fn report_finding(f: &super::Finding) -> FindingView {
    FindingView {
        severity: f.severity.as_str().to_string(),
        tone: severity_tone(f.severity.as_str()),
        code: f.code.as_str().to_string(),
        subject: f.subject.clone(),
        anchor: None,
        message: f.message.clone(),
        fix: f.fix.clone(),
        owner: Some(owner_text(f.owner.as_str())),
    }
}

fn target_view(index: usize, t: &Target, now: Option<jiff::Timestamp>) -> TargetView {
    let holder = holder_id(t);
    // The diagnosis to act on first leads; the other follows.
    let primary = primary_diagnosis(t);
    let ordered = primary
        .into_iter()
        .chain(diagnoses(t).filter(|d| Some(*d) != primary));
    TargetView {
        anchor: format!("t-{index}"),
        name: format!("{}/{}", inventory::short(holder), t.name),
        holder_id: holder.to_string(),
        kind: kind_text(t.kind),
        target_type: t.adf_type.clone(),
        platform: target_platform(t),
        verdict: verdict_label(t.verdict),
        status: status_label(t),
        tone: tone(t),
        reason: t.reason.clone(),
        impact: t.impact.as_ref().map(|i| impact_view(i, now)),
        diagnoses: ordered
            .into_iter()
            .map(|d| DiagnosisView {
                code: d.code.clone(),
                cause: d.cause.clone(),
                fix: d.fix.clone(),
                owner: owner_text(d.owner.as_str()),
            })
            .collect(),
        references: t
            .references
            .iter()
            .map(|r| {
                let pin = r
                    .secret_version
                    .as_deref()
                    .map(|v| format!(" @ {v}"))
                    .unwrap_or_default();
                format!(
                    "{} → {}/{}{pin} ({})",
                    r.path,
                    r.vault.as_deref().unwrap_or("?"),
                    r.secret_name.as_deref().unwrap_or("?"),
                    r.certainty
                )
            })
            .collect(),
        notes: t.notes.iter().map(|n| n.as_str()).collect(),
        runtime: t.integration_runtime.as_ref().map(|ir| {
            format!(
                "{} ({}, {})",
                ir.name,
                ir.kind.as_deref().unwrap_or("unknown kind"),
                ir.state.as_deref().unwrap_or("state unknown")
            )
        }),
        via_credential: t.via_credential.clone(),
        used_by: t.used_by.clone(),
        resave: text::resave_word(t.resave.status),
        resave_error: t.resave.error.clone(),
        test: text::test_word(t.test.status),
        test_message: t
            .test
            .message
            .clone()
            .filter(|_| t.test.status != TestStatus::Passed),
        request_ids: t.request_ids.clone(),
    }
}

fn impact_view(impact: &Impact, now: Option<jiff::Timestamp>) -> ImpactView {
    ImpactView {
        headline: super::impact_headline_with(impact, now, &escape, &|name| {
            format!("<code>{}</code>", escape(name))
        }),
        pipelines: impact.pipelines.clone(),
        triggers: impact
            .triggers
            .iter()
            .map(|t| TriggerView {
                name: t.name.clone(),
                kind: t.trigger_type.clone(),
                state: t.state.clone(),
                when: match (&t.next_run, &t.note) {
                    (Some(next), _) => format!("next run {next}"),
                    (None, Some(note)) => note.clone(),
                    (None, None) => "no next run".into(),
                },
            })
            .collect(),
    }
}

// ---- The inventory page (templates/inventory.html).

#[derive(Template)]
#[template(path = "inventory.html")]
struct InventoryPage {
    layout: Layout,
    counts: Vec<Count>,
    scanned: String,
    thresholds: inventory::Thresholds,
    timeline: Timeline,
    severities: Vec<SeverityGroup>,
    filters: FilterBar,
    total: usize,
    vaults: Vec<VaultView>,
    errors: Vec<ErrorView>,
}

struct SeverityGroup {
    key: &'static str,
    label: &'static str,
    /// Info findings start folded: a person looks at critical and warning first.
    open: bool,
    findings: Vec<FindingView>,
}

struct VaultView {
    name: String,
    url: String,
    secrets: Vec<SecretView>,
}

struct SecretView {
    anchor: String,
    name: String,
    vault_key: String,
    status: Label,
    tone: &'static str,
    platforms: String,
    expires: String,
    latest_version: String,
    created: String,
    not_before: Option<String>,
    /// The codes of the findings about this secret or its vault, with their tone.
    findings: Vec<(&'static str, &'static str)>,
    consumers: Vec<ConsumerView>,
}

struct ConsumerView {
    platform: Platform,
    holder: String,
    git: bool,
    name: String,
    kind: &'static str,
    path: String,
    pinned: String,
    runtime: String,
    verdict: &'static str,
}

/// A secret's status: its filter key, its words, and how urgent it is (lower first).
fn secret_status(status: SecretStatus) -> (Label, &'static str, u8) {
    let (key, tone, rank) = match status {
        SecretStatus::Expired => ("expired", "bad", 0),
        SecretStatus::Disabled => ("disabled", "bad", 1),
        SecretStatus::NotFound => ("notFound", "bad", 2),
        SecretStatus::VaultNotFound => ("vaultNotFound", "bad", 3),
        SecretStatus::Expiring => ("expiring", "warn", 4),
        SecretStatus::NotYetValid => ("notYetValid", "warn", 5),
        SecretStatus::AccessDenied => ("accessDenied", "warn", 6),
        SecretStatus::Unreadable => ("unreadable", "warn", 7),
        SecretStatus::OtherCloud => ("otherCloud", "warn", 8),
        SecretStatus::Ok => ("ok", "good", 9),
    };
    let text = crate::inventory::text::status_word(status).1;
    (Label { key, text }, tone, rank)
}

/// The vault's host, `kv.vault.azure.net`: a filter key that tells apart same-named vaults of two clouds.
fn vault_host(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

/// "2026-12-01T00:00:00Z (in 13 days)", "… (expired 4 days ago)", or "never".
fn expiry_text(expires: Option<&str>, today: jiff::Timestamp) -> String {
    let Some(expires) = expires else {
        return "never".into();
    };
    match parse_time(expires) {
        Some(at) => {
            let left = at.as_second() - today.as_second();
            if left > 0 {
                format!("{expires} (in {})", inventory::describe_duration(left))
            } else if left < 0 {
                format!(
                    "{expires} (expired {} ago)",
                    inventory::describe_duration(-left)
                )
            } else {
                format!("{expires} (expires now)")
            }
        }
        None => expires.to_string(),
    }
}

/// An inventory finding as the page shows it, linked to its secret's section when it names one.
fn inventory_finding(
    f: &inventory::Finding,
    anchors: &HashMap<(String, String), String>,
) -> FindingView {
    let anchor = f
        .vault_url
        .as_ref()
        .and_then(|url| anchors.get(&(url.clone(), f.subject.clone().unwrap_or_default())))
        .cloned();
    FindingView {
        severity: f.severity.as_str().to_string(),
        tone: severity_tone(f.severity.as_str()),
        code: f.code.as_str().to_string(),
        subject: f.subject.clone(),
        anchor,
        message: f.message.clone(),
        fix: f.fix.clone(),
        owner: Some(owner_text(f.owner.as_str())),
    }
}

fn consumer_view(c: &Consumer) -> ConsumerView {
    ConsumerView {
        platform: consumer_platform(c),
        holder: c.holder(),
        git: c.git_mode,
        name: c.name.clone(),
        kind: kind_text(c.kind),
        path: c.path.clone(),
        pinned: c.pinned_version.clone().unwrap_or_else(|| "-".into()),
        runtime: c.integration_runtime.clone().unwrap_or_else(|| "-".into()),
        verdict: crate::inventory::text::verdict_words(c.verdict),
    }
}

impl InventoryPage {
    fn new(inv: &Inventory) -> InventoryPage {
        let s = &inv.summary;
        let today = inv
            .finished_at
            .as_deref()
            .and_then(parse_time)
            .or_else(|| parse_time(&inv.started_at))
            .unwrap_or_else(jiff::Timestamp::now);
        let (state, page_tone) = if !inv.complete {
            ("incomplete", "bad")
        } else if s.critical > 0 {
            ("attention needed", "bad")
        } else if s.attention {
            ("attention needed", "warn")
        } else {
            ("all fine", "good")
        };
        let mut meta = vec![format!(
            "Inventory {} · {} to {}",
            inv.id,
            inv.started_at,
            inv.finished_at.as_deref().unwrap_or("not finished")
        )];
        if !inv.scope.is_empty() {
            meta.push(format!("Scope: {}", inv.scope.join(", ")));
        }
        meta.push(format!(
            "Expiry thresholds: warning {} days, critical {} days",
            inv.thresholds.warning_days, inv.thresholds.critical_days
        ));

        // Secrets by vault, the most urgent first within each vault.
        let mut by_vault: BTreeMap<String, Vec<(usize, &SecretEntry)>> = BTreeMap::new();
        for (i, secret) in inv.secrets.iter().enumerate() {
            by_vault
                .entry(secret.vault_url.clone())
                .or_default()
                .push((i, secret));
        }
        let mut anchors: HashMap<(String, String), String> = HashMap::new();
        let mut vaults = Vec::new();
        for (url, mut secrets) in by_vault {
            secrets.sort_by_key(|(_, e)| {
                (
                    secret_status(e.status).2,
                    e.expires.as_deref().and_then(parse_time),
                    e.secret.to_ascii_lowercase(),
                )
            });
            let name = secrets
                .first()
                .map(|(_, e)| e.vault.clone())
                .unwrap_or_default();
            let views = secrets
                .into_iter()
                .map(|(i, e)| {
                    let anchor = format!("s-{i}");
                    anchors.insert((e.vault_url.clone(), e.subject()), anchor.clone());
                    let (status, tone, _) = secret_status(e.status);
                    let mut platforms: Vec<&str> = Vec::new();
                    for c in &e.consumers {
                        let key = consumer_platform(c).key;
                        if !platforms.contains(&key) {
                            platforms.push(key);
                        }
                    }
                    SecretView {
                        anchor,
                        name: e.secret.clone(),
                        vault_key: vault_host(&e.vault_url),
                        status,
                        tone,
                        platforms: platforms.join(" "),
                        expires: expiry_text(e.expires.as_deref(), today),
                        latest_version: e
                            .latest_version
                            .clone()
                            .unwrap_or_else(|| "unknown".into()),
                        created: e.created.clone().unwrap_or_else(|| "unknown".into()),
                        not_before: e.not_before.clone(),
                        findings: inv
                            .findings_for(e)
                            .map(|f| (f.code.as_str(), severity_tone(f.severity.as_str())))
                            .collect(),
                        consumers: e.consumers.iter().map(consumer_view).collect(),
                    }
                })
                .collect();
            vaults.push(VaultView {
                name,
                url,
                secrets: views,
            });
        }

        let severities = [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .map(|severity| SeverityGroup {
                key: severity.as_str(),
                open: severity != Severity::Info,
                label: match severity {
                    Severity::Critical => "Critical",
                    Severity::Warning => "Warning",
                    Severity::Info => "Info",
                },
                findings: inv
                    .findings
                    .iter()
                    .filter(|f| f.severity == severity)
                    .map(|f| inventory_finding(f, &anchors))
                    .collect(),
            })
            .filter(|g| !g.findings.is_empty())
            .collect();

        let all = || vaults.iter().flat_map(|v| v.secrets.iter());
        let filters = FilterBar {
            group: "secrets",
            noun: "secrets",
            total: inv.secrets.len(),
            filters: vec![
                filter(
                    "vault",
                    "Vault",
                    all().map(|s| (s.vault_key.as_str(), s.vault_key.as_str())),
                ),
                filter(
                    "status",
                    "Status",
                    all().map(|s| (s.status.key, s.status.text)),
                ),
                filter(
                    "platform",
                    "Consumed by",
                    all_platforms()
                        .filter(|p| all().any(|s| s.platforms.split(' ').any(|k| k == p.key)))
                        .map(|p| (p.key, p.label)),
                ),
            ],
        };
        let workspaces = match s.workspaces_scanned {
            0 => String::new(),
            n => format!(", {n} Synapse workspace{}", plural(n)),
        };
        InventoryPage {
            layout: Layout::new(
                format!("Key Vault inventory: {state}"),
                page_tone,
                meta,
                footer("inventory", &inv.id),
            ),
            counts: vec![
                count("secrets", "Secrets", s.secrets, ""),
                count("consumers", "Consumers", s.references, ""),
                count("critical", "Critical", s.critical, "bad"),
                count("warning", "Warning", s.warning, "warn"),
                count("info", "Info", s.info, ""),
            ],
            scanned: format!(
                "Scanned {} factor{}{workspaces}, {} linked services, {} credentials.",
                s.factories_scanned,
                if s.factories_scanned == 1 { "y" } else { "ies" },
                s.linked_services_scanned,
                s.credentials_scanned
            ),
            thresholds: inv.thresholds,
            timeline: Timeline::new(inv, today, &anchors),
            severities,
            filters,
            total: inv.secrets.len(),
            vaults,
            errors: inv.errors.iter().map(error_view).collect(),
        }
    }
}

// ---- The expiry timeline: each secret a mark on a time axis from today, the thresholds shaded.

/// The drawing's width in SVG units; the page scales it to the window.
const WIDTH: f64 = 1000.0;
/// Expired secrets of the last this many days are drawn at their date; older ones gather at the left edge.
const PAST_DAYS: f64 = 30.0;
/// The plotted days lie between these x; the gutters outside them hold what is earlier and later.
const PLOT: (f64, f64) = (70.0, 920.0);
const EARLIER_X: f64 = 35.0;
const LATER_X: f64 = 960.0;
/// Marks stack upwards where they crowd, at most this many deep (beyond that they overlap).
const MAX_LANES: usize = 14;
const LANE: f64 = 9.0;

struct Timeline {
    width: f64,
    height: String,
    today: String,
    summary: String,
    top: String,
    band: String,
    label_y: String,
    axis_y: String,
    left: String,
    right: String,
    tick_bottom: String,
    tick_label_y: String,
    zones: Vec<Zone>,
    ticks: Vec<Tick>,
    marks: Vec<Mark>,
}

struct Zone {
    class: &'static str,
    x: String,
    width: String,
    label_x: String,
    label: String,
    title: String,
    from_days: String,
    to_days: String,
}

struct Tick {
    x: String,
    days: i64,
    label: String,
}

struct Mark {
    anchor: String,
    class: &'static str,
    x: String,
    y: String,
    secret: String,
    expires: String,
    days: String,
    title: String,
}

fn svg_number(n: f64) -> String {
    format!("{n:.2}")
}

impl Timeline {
    fn new(
        inv: &Inventory,
        today: jiff::Timestamp,
        anchors: &HashMap<(String, String), String>,
    ) -> Timeline {
        let warning = f64::from(inv.thresholds.warning_days);
        let critical = f64::from(inv.thresholds.critical_days);
        let horizon = (warning * 4.0).max(90.0);
        let x_of =
            |days: f64| PLOT.0 + (days + PAST_DAYS) / (PAST_DAYS + horizon) * (PLOT.1 - PLOT.0);

        // Marks, soonest first, each stacked above the marks already placed where it lands.
        let mut dated: Vec<(f64, &SecretEntry, &str)> = inv
            .secrets
            .iter()
            .filter_map(|e| {
                let expires = e.expires.as_deref()?;
                let at = parse_time(expires)?;
                let days = (at.as_second() - today.as_second()) as f64 / 86_400.0;
                Some((days, e, expires))
            })
            .collect();
        dated.sort_by(|a, b| a.0.total_cmp(&b.0));
        let undated = inv.secrets.len() - dated.len();
        let mut crowd: HashMap<i64, usize> = HashMap::new();
        let mut placed = Vec::with_capacity(dated.len());
        let (mut expired, mut in_critical, mut in_warning, mut later) = (0, 0, 0, 0);
        let (mut earlier, mut beyond) = (0, 0);
        for (days, entry, expires) in dated {
            let x = if days < -PAST_DAYS {
                earlier += 1;
                EARLIER_X
            } else if days > horizon {
                beyond += 1;
                LATER_X
            } else {
                x_of(days)
            };
            let bucket = (x / (LANE - 1.0)).round() as i64;
            let lane = crowd.entry(bucket).or_default();
            let this_lane = *lane % MAX_LANES;
            *lane += 1;
            let class = if days < 0.0 {
                expired += 1;
                "expired"
            } else if days <= critical {
                in_critical += 1;
                "critical"
            } else if days <= warning {
                in_warning += 1;
                "warning"
            } else {
                later += 1;
                "ok"
            };
            let subject = format!("{}/{}", entry.vault, entry.secret);
            let when = if days < 0.0 {
                format!(
                    "expired {} ago",
                    inventory::describe_duration((-days * 86_400.0) as i64)
                )
            } else {
                format!(
                    "expires in {}",
                    inventory::describe_duration((days * 86_400.0) as i64)
                )
            };
            placed.push((
                this_lane,
                Mark {
                    anchor: anchors
                        .get(&(entry.vault_url.clone(), entry.subject()))
                        .cloned()
                        .unwrap_or_default(),
                    class,
                    x: svg_number(x),
                    y: String::new(),
                    title: format!("{subject}: {when} ({expires})"),
                    secret: subject,
                    expires: expires.to_string(),
                    days: format!("{days:.3}"),
                },
            ));
        }
        let lanes = placed
            .iter()
            .map(|(lane, _)| lane + 1)
            .max()
            .unwrap_or(1)
            .max(3);
        let top = 24.0;
        let axis_y = top + 12.0 + lanes as f64 * LANE;
        let marks = placed
            .into_iter()
            .map(|(lane, mut mark)| {
                mark.y = svg_number(axis_y - 7.0 - lane as f64 * LANE);
                mark
            })
            .collect();

        let zone = |class: &'static str,
                    from: f64,
                    to: f64,
                    x0: f64,
                    x1: f64,
                    label: String,
                    title: String| Zone {
            class,
            x: svg_number(x0),
            width: svg_number((x1 - x0).max(0.0)),
            label_x: svg_number((x0 + x1) / 2.0),
            label,
            title,
            from_days: if from.is_finite() {
                format!("{from}")
            } else {
                String::new()
            },
            to_days: if to.is_finite() {
                format!("{to}")
            } else {
                String::new()
            },
        };
        // The gutters stack their marks past counting, so their labels count them.
        let gutter = |word: &str, n: usize| match n {
            0 => word.to_string(),
            n => format!("{word} ({n})"),
        };
        let mut zones = vec![
            zone(
                "zone-expired",
                f64::NEG_INFINITY,
                -PAST_DAYS,
                EARLIER_X - 25.0,
                EARLIER_X + 25.0,
                gutter("earlier", earlier),
                format!("expired more than {PAST_DAYS} days ago"),
            ),
            zone(
                "zone-expired",
                -PAST_DAYS,
                0.0,
                x_of(-PAST_DAYS),
                x_of(0.0),
                "expired".into(),
                format!("expired in the last {PAST_DAYS} days"),
            ),
        ];
        if critical > 0.0 {
            zones.push(zone(
                "zone-critical",
                0.0,
                critical,
                x_of(0.0),
                x_of(critical),
                "critical".into(),
                format!("critical: expires within {critical} days"),
            ));
        }
        if warning > critical {
            zones.push(zone(
                "zone-warning",
                critical,
                warning,
                x_of(critical),
                x_of(warning),
                "warning".into(),
                format!("warning: expires within {warning} days"),
            ));
        }
        zones.push(zone(
            "zone-later",
            horizon,
            f64::INFINITY,
            LATER_X - 25.0,
            LATER_X + 25.0,
            gutter("later", beyond),
            format!("expires more than {horizon} days from today"),
        ));

        // Ticks: today, the past edge, the thresholds, then every 30 days where there is room for a label.
        let mut tick_days: Vec<i64> = vec![-(PAST_DAYS as i64), 0];
        for d in [critical as i64, warning as i64] {
            if d > 0 && !tick_days.contains(&d) {
                tick_days.push(d);
            }
        }
        let mut d = 30;
        while d as f64 <= horizon {
            let x = x_of(d as f64);
            if tick_days.iter().all(|&t| (x_of(t as f64) - x).abs() > 40.0) {
                tick_days.push(d);
            }
            d += 30;
        }
        tick_days.sort_unstable();
        let ticks = tick_days
            .into_iter()
            .map(|days| Tick {
                x: svg_number(x_of(days as f64)),
                days,
                label: match days {
                    0 => "today".into(),
                    d if d > 0 => format!("+{d} d"),
                    d => format!("−{} d", -d),
                },
            })
            .collect();

        let summary = format!(
            "Of {} secret{} with an expiry date: {expired} expired, {in_critical} within {} days (critical), {in_warning} within {} days (warning), {later} later. {undated} secret{} with no expiry date {} not drawn. Today is {}.",
            expired + in_critical + in_warning + later,
            plural(expired + in_critical + in_warning + later),
            inv.thresholds.critical_days,
            inv.thresholds.warning_days,
            plural(undated),
            if undated == 1 { "is" } else { "are" },
            today.strftime("%Y-%m-%d")
        );
        Timeline {
            width: WIDTH,
            height: svg_number(axis_y + 32.0),
            today: today.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            summary,
            top: svg_number(top),
            band: svg_number(axis_y - top),
            label_y: svg_number(top - 8.0),
            axis_y: svg_number(axis_y),
            left: svg_number(EARLIER_X - 25.0),
            right: svg_number(LATER_X + 25.0),
            tick_bottom: svg_number(axis_y + 6.0),
            tick_label_y: svg_number(axis_y + 20.0),
            zones,
            ticks,
            marks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gets_the_page_and_a_script_gets_json() {
        let chrome =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(wants_html(Some(chrome)));
        assert!(wants_html(Some("text/html")));
        assert!(!wants_html(None));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some("application/json, text/html;q=0.5")));
        assert!(!wants_html(Some("text/html;q=0")));
    }

    #[test]
    fn text_outside_the_templates_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&#60;script&#62;&#34;a&#34; &#38; &#39;b&#39;&#60;/script&#62;"
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let policy = content_security_policy();
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains(&sha256(STYLE)));
        assert!(policy.contains(&sha256(SCRIPT)));
        assert!(!policy.contains("http"));
    }
}
