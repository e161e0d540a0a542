//! The readable rendering of a report for a terminal, in the manner of `terraform plan`: one line per target
//! with its verdict and outcome, then the details of those that need attention (why, ADF's message, the likely
//! cause, numbered fix steps and who must act), then findings, run errors and the totals.
//!
//! Colour is added only when the caller asks for it (a terminal without `NO_COLOR`). The helpers marked
//! `pub(crate)` are shared with the Markdown rendering and the notifications, so that every rendering uses the
//! same words and the same idea of "needs attention".

use super::{Diagnosis, Report, ResaveStatus, Target, TargetKind, TestStatus, Verdict};
use std::fmt::Write;

/// The narrowest and widest the name column gets; longer names push their own line out.
const NAME_COLUMN: (usize, usize) = (24, 60);

/// Wraps text in an ANSI style (`"1"` bold, `"31"` red, …) when `colour` is on, else leaves it plain.
pub(crate) fn painter(colour: bool) -> impl Fn(&str, &str) -> String {
    move |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// Renders the report; `colour` adds ANSI colours (only on a terminal).
pub fn render(report: &Report, colour: bool) -> String {
    let paint = painter(colour);
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", title(report), report.id);
    if let Some(secret) = &report.secret {
        let _ = writeln!(
            out,
            "Secret  {}/{}  version {}  ({})",
            secret.vault,
            secret.name,
            secret.version.as_deref().unwrap_or("latest"),
            describe_secret(secret)
        );
    }
    if let Some(first) = &report.duplicate_of {
        let _ = writeln!(out, "Repeat of run {first}: nothing was done again.");
    }
    let s = &report.summary;
    // Synapse workspaces are named only when there were some, so a Data Factory-only estate reads as before.
    // So do App Service sites and API Management services.
    let some = |n: usize, one: &str, many: &str| match n {
        0 => String::new(),
        1 => format!("1 {one}, "),
        n => format!("{n} {many}, "),
    };
    let workspaces = some(
        s.workspaces_scanned,
        "Synapse workspace",
        "Synapse workspaces",
    ) + &some(s.sites_scanned, "site or slot", "sites and slots")
        + &some(
            s.api_management_services_scanned,
            "API Management service",
            "API Management services",
        );
    let _ = writeln!(
        out,
        "Scanned {} factories, {workspaces}{} linked services, {} credentials; {} affected.\n",
        s.factories_scanned, s.linked_services_scanned, s.credentials_scanned, s.affected
    );
    let width = report
        .targets
        .iter()
        .map(|t| display_name(t).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(NAME_COLUMN.0, NAME_COLUMN.1);
    for target in &report.targets {
        let (symbol, code) = symbol(target);
        let _ = writeln!(
            out,
            "  {} {:<width$} {:<13} {:<11} {}",
            paint(code, symbol),
            display_name(target),
            verdict_word(target.verdict),
            resave_word(target.resave.status),
            test_word(target.test.status),
        );
    }
    let needing: Vec<&Target> = report
        .targets
        .iter()
        .filter(|t| needs_attention(t))
        .collect();
    if !needing.is_empty() {
        let _ = writeln!(out, "\n{}", paint("1", "Needs attention:"));
        let now = super::reference_time(report);
        for target in needing {
            details(&mut out, target, now);
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &report.findings {
            let subject = f
                .subject
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  [{}] {}{subject}: {} (owner: {})",
                f.severity, f.code, f.message, f.owner
            );
            for (i, step) in f.fix.iter().enumerate() {
                let _ = writeln!(out, "      {}. {step}", i + 1);
            }
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\n{}", paint("31", "The run did not complete:"));
        for e in &report.errors {
            let subject = e
                .subject
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} ({}){subject}: {}",
                e.stage,
                if e.transient {
                    "transient"
                } else {
                    "permanent"
                },
                indent_rest(&e.message, "    ")
            );
        }
    }
    if !report.notifications.is_empty() {
        let _ = writeln!(out, "\nNotifications:");
        for n in &report.notifications {
            match (&n.error, n.delivered) {
                (_, true) => {
                    let _ = writeln!(out, "  {}: delivered", n.channel);
                }
                (Some(error), false) => {
                    let _ = writeln!(out, "  {}: not delivered: {error}", n.channel);
                }
                (None, false) => {
                    let _ = writeln!(out, "  {}: not delivered", n.channel);
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} re-saved, {} tests passed, {} failed, {} skipped. {}",
        s.resaved,
        s.tests_passed,
        s.tests_failed,
        s.skipped,
        if !report.complete {
            paint("31", "Incomplete: attention needed.")
        } else if s.attention {
            paint("33", "Attention needed.")
        } else {
            paint("32", "All fine.")
        }
    );
    out
}

/// The details block of one target that needs attention.
fn details(out: &mut String, target: &Target, now: Option<jiff::Timestamp>) {
    let kind = match target.kind {
        TargetKind::LinkedService => "",
        TargetKind::Credential => "credential, ",
        TargetKind::AppSetting => "app setting, ",
        TargetKind::ConnectionString => "connection string, ",
        TargetKind::NamedValue => "named value, ",
    };
    let _ = writeln!(
        out,
        "\n  {} ({kind}{})",
        display_name(target),
        target.adf_type
    );
    if let Some(impact) = &target.impact {
        let _ = writeln!(out, "    impact: {}", super::impact_headline(impact, now));
        if !impact.pipelines.is_empty() {
            let _ = writeln!(out, "    pipelines: {}", impact.pipelines.join(", "));
        }
        for t in &impact.triggers {
            let when = match (&t.next_run, &t.note) {
                (Some(next), _) => format!("next {next}"),
                (None, Some(note)) => note.clone(),
                (None, None) => "no next run".into(),
            };
            let _ = writeln!(
                out,
                "    trigger: {} ({}, {}): {when}",
                t.name, t.trigger_type, t.state
            );
        }
    }
    let _ = writeln!(out, "    why: {}", target.reason);
    if !target.notes.is_empty() {
        let notes: Vec<&str> = target.notes.iter().map(|n| n.as_str()).collect();
        let _ = writeln!(out, "    notes: {}", notes.join(", "));
    }
    if let Some(credential) = &target.via_credential {
        let _ = writeln!(out, "    via credential: {credential}");
    }
    if !target.used_by.is_empty() {
        let _ = writeln!(out, "    used by: {}", target.used_by.join(", "));
    }
    if let Some(ir) = &target.integration_runtime {
        let _ = writeln!(
            out,
            "    integration runtime: {} ({}, {})",
            ir.name,
            ir.kind.as_deref().unwrap_or("unknown kind"),
            ir.state.as_deref().unwrap_or("state unknown")
        );
    }
    for r in &target.references {
        let pin = r
            .secret_version
            .as_deref()
            .map(|v| format!(" @ {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    reference: {} → {}/{}{pin} ({})",
            r.path,
            r.vault.as_deref().unwrap_or("?"),
            r.secret_name.as_deref().unwrap_or("?"),
            r.certainty
        );
    }
    if let Some(error) = &target.resave.error {
        let _ = writeln!(out, "    re-save: {}", indent_rest(error, "      "));
    }
    if let Some(message) = &target.test.message
        && target.test.status != TestStatus::Passed
    {
        let _ = writeln!(out, "    test: {}", indent_rest(message, "      "));
    }
    for diagnosis in diagnoses(target) {
        let _ = writeln!(
            out,
            "    cause: {} (owner: {})",
            diagnosis.cause, diagnosis.owner
        );
        for (i, step) in diagnosis.fix.iter().enumerate() {
            let _ = writeln!(out, "      {}. {step}", i + 1);
        }
    }
    if !target.request_ids.is_empty() {
        let _ = writeln!(out, "    request ids: {}", target.request_ids.join(", "));
    }
}

/// "Plan (dry run, nothing written)", "Refresh" or "Audit".
pub(crate) fn title(report: &Report) -> &'static str {
    match (report.command, report.dry_run) {
        (super::Command::Audit, _) => "Audit",
        (_, true) => "Plan (dry run, nothing written)",
        (_, false) => "Refresh",
    }
}

/// `enabled, expires …`, or why the metadata is missing.
pub(crate) fn describe_secret(secret: &super::SecretInfo) -> String {
    match secret.metadata.as_str() {
        "ok" => {
            let mut parts = vec![
                if secret.enabled == Some(false) {
                    "disabled"
                } else {
                    "enabled"
                }
                .to_string(),
            ];
            if let Some(exp) = &secret.expires {
                parts.push(format!("expires {exp}"));
            }
            parts.join(", ")
        }
        other => format!("metadata {other}"),
    }
}

/// Whether a person should look at this target: [`Target::needs_attention`], the one definition.
pub(crate) fn needs_attention(t: &Target) -> bool {
    t.needs_attention()
}

/// The target's diagnoses, the verdict's first, then the test's.
pub(crate) fn diagnoses(t: &Target) -> impl Iterator<Item = &Diagnosis> {
    [&t.diagnosis, &t.test.diagnosis].into_iter().flatten()
}

/// The diagnosis a person should act on first: a failed test's, else the verdict's, else the test's.
pub(crate) fn primary_diagnosis(t: &Target) -> Option<&Diagnosis> {
    let test_failed = matches!(t.test.status, TestStatus::Failed | TestStatus::Error);
    match (&t.diagnosis, &t.test.diagnosis) {
        (_, Some(test)) if test_failed => Some(test),
        (Some(verdict), _) => Some(verdict),
        (None, test) => test.as_ref(),
    }
}

fn symbol(t: &Target) -> (&'static str, &'static str) {
    if matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
        || t.resave.status == ResaveStatus::Failed
    {
        ("✗", "31")
    } else if needs_attention(t) {
        ("!", "33")
    } else {
        ("✓", "32")
    }
}

/// `factory/name`, as every rendering names a target.
pub(crate) fn display_name(t: &Target) -> String {
    format!("{}/{}", holder_name(t.holder()), t.name)
}

/// What a person calls the holder of a target: the factory, workspace, site or service name, and for a
/// deployment slot `site/slot`.
pub(crate) fn holder_name(id: &str) -> String {
    let segments: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [.., site, slots, slot] if slots.eq_ignore_ascii_case("slots") => format!("{site}/{slot}"),
        [.., last] => last.to_string(),
        [] => String::new(),
    }
}

/// Indents every line after the first, so that multi-line messages stay inside their block.
fn indent_rest(text: &str, indent: &str) -> String {
    text.trim_end()
        .lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

pub(crate) fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Resave => "resave",
        Verdict::Pinned => "pinned",
        Verdict::InlineSecret => "inlineSecret",
        Verdict::Ambiguous => "ambiguous",
    }
}

pub(crate) fn resave_word(s: ResaveStatus) -> &'static str {
    match s {
        ResaveStatus::Ok => "re-saved",
        ResaveStatus::Failed => "failed",
        ResaveStatus::Skipped => "skipped",
        ResaveStatus::DryRun => "would-save",
        ResaveStatus::NotReached => "not-reached",
    }
}

pub(crate) fn test_word(s: TestStatus) -> &'static str {
    match s {
        TestStatus::Passed => "test passed",
        TestStatus::Failed => "test FAILED",
        TestStatus::NotTested => "not tested",
        TestStatus::Error => "test error",
    }
}
