//! The readable rendering of a report for a terminal, in the manner of `terraform plan`: one line per target
//! with its verdict and outcome, then the details of those that need attention.

use super::{Report, ResaveStatus, Target, TestStatus, Verdict};
use std::fmt::Write;

/// Renders the report; `colour` adds ANSI colours (only on a terminal).
pub fn render(report: &Report, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let what = match (report.command, report.dry_run) {
        (super::Command::Audit, _) => "Audit".to_string(),
        (_, true) => "Plan (dry run, nothing written)".to_string(),
        (_, false) => "Refresh".to_string(),
    };
    let _ = writeln!(out, "{what} {}", report.id);
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
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Scanned {} factories, {} linked services, {} credentials; {} affected.\n",
        s.factories_scanned, s.linked_services_scanned, s.credentials_scanned, s.affected
    );
    for target in &report.targets {
        let (symbol, code) = symbol(target);
        let _ = writeln!(
            out,
            "  {} {:<40} {:<13} {:<9} {}",
            paint(code, symbol),
            format!("{}/{}", factory_name(&target.factory), target.name),
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
        for target in needing {
            let _ = writeln!(
                out,
                "\n  {}/{} ({})",
                factory_name(&target.factory),
                target.name,
                target.adf_type
            );
            let _ = writeln!(out, "    why: {}", target.reason);
            if !target.notes.is_empty() {
                let _ = writeln!(out, "    notes: {}", target.notes.join(", "));
            }
            if let Some(error) = &target.resave.error {
                let _ = writeln!(out, "    re-save: {error}");
            }
            if let Some(message) = &target.test.message
                && target.test.status != TestStatus::Passed
            {
                let _ = writeln!(out, "    test: {message}");
            }
            for diagnosis in [&target.diagnosis, &target.test.diagnosis]
                .into_iter()
                .flatten()
            {
                let _ = writeln!(
                    out,
                    "    cause: {} (owner: {})",
                    diagnosis.cause, diagnosis.owner
                );
                for (i, step) in diagnosis.fix.iter().enumerate() {
                    let _ = writeln!(out, "      {}. {step}", i + 1);
                }
            }
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &report.findings {
            let _ = writeln!(out, "  [{}] {}", f.severity, f.message);
            for (i, step) in f.fix.iter().enumerate() {
                let _ = writeln!(out, "      {}. {step}", i + 1);
            }
        }
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\n{}", paint("31", "The run did not complete:"));
        for e in &report.errors {
            let _ = writeln!(
                out,
                "  {} ({}): {}",
                e.stage,
                if e.transient {
                    "transient"
                } else {
                    "permanent"
                },
                e.message
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} re-saved, {} tests passed, {} failed, {} skipped. {}",
        s.resaved,
        s.tests_passed,
        s.tests_failed,
        s.skipped,
        if s.attention {
            paint("33", "Attention needed.")
        } else {
            paint("32", "All fine.")
        }
    );
    out
}

fn describe_secret(secret: &super::SecretInfo) -> String {
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

fn needs_attention(t: &Target) -> bool {
    t.verdict != Verdict::Resave
        || matches!(
            t.resave.status,
            ResaveStatus::Failed | ResaveStatus::Skipped | ResaveStatus::NotReached
        )
        || matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
        || t.diagnosis.is_some()
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

pub(crate) fn factory_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
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
