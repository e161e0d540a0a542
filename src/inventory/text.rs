//! The inventory as text for a terminal: a compact table per secret, most urgent first, then the findings.

use super::{Consumer, Finding, Inventory, SecretEntry, SecretStatus, Severity, Summary};
use crate::model::Platform;
use crate::report::{TargetKind, Verdict};
use std::fmt::Write;

/// Renders the inventory; `colour` adds ANSI colours (only on a terminal).
pub fn render(inventory: &Inventory, colour: bool) -> String {
    let paint = crate::report::text::painter(colour);
    let mut out = String::new();
    let s = &inventory.summary;
    let _ = writeln!(
        out,
        "{}",
        paint(
            "1",
            &format!(
                "Key Vault inventory: {} secret{}, {} reference{}, {} factor{}{} scanned{}",
                s.secrets,
                plural(s.secrets),
                s.references,
                plural(s.references),
                s.factories_scanned,
                if s.factories_scanned == 1 { "y" } else { "ies" },
                other_holders(s),
                if inventory.complete {
                    ""
                } else {
                    " (INCOMPLETE)"
                }
            )
        )
    );
    let _ = writeln!(
        out,
        "Findings: {} critical, {} warning, {} info. Expiry thresholds: warning {} days, critical {} days.",
        s.critical,
        s.warning,
        s.info,
        inventory.thresholds.warning_days,
        inventory.thresholds.critical_days
    );
    for secret in &inventory.secrets {
        out.push('\n');
        render_secret(&mut out, secret, &paint);
    }
    if !inventory.findings.is_empty() {
        let _ = writeln!(out, "\n{}", paint("1", "Findings"));
        for finding in &inventory.findings {
            render_finding(&mut out, finding, &paint);
        }
    }
    if !inventory.errors.is_empty() {
        let _ = writeln!(out, "\n{}", paint("1;31", "Not read"));
        for e in &inventory.errors {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                clean(&e.stage),
                clean(e.subject.as_deref().unwrap_or("")),
                clean(&e.message)
            );
        }
    }
    out
}

/// Names and messages come from ADF and Key Vault: no control character (an escape sequence could repaint
/// the terminal) gets through.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn render_secret(out: &mut String, secret: &SecretEntry, paint: &impl Fn(&str, &str) -> String) {
    let (code, word) = status_word(secret.status);
    let _ = writeln!(
        out,
        "{}  {}  [{}]",
        paint("1", &clean(&format!("{}/{}", secret.vault, secret.secret))),
        clean(&secret.vault_url),
        paint(code, word)
    );
    let mut facts = Vec::new();
    if let Some(v) = &secret.latest_version {
        facts.push(format!("newest {v}"));
    }
    if let Some(c) = &secret.created {
        facts.push(format!("created {c}"));
    }
    facts.push(format!(
        "expires {}",
        secret.expires.as_deref().unwrap_or("never")
    ));
    if let Some(n) = &secret.not_before {
        facts.push(format!("valid from {n}"));
    }
    if let Some(v) = &secret.latest_enabled_version {
        facts.push(format!("newest enabled {v}"));
    }
    let _ = writeln!(out, "  {}", clean(&facts.join(" · ")));
    let rows: Vec<[String; 6]> = secret.consumers.iter().map(row).collect();
    let header = [
        "held by",
        "consumer",
        "path",
        "pinned",
        "runtime",
        "if rotated",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
}

fn row(c: &Consumer) -> [String; 6] {
    let kind = match c.kind {
        TargetKind::LinkedService => "",
        TargetKind::Credential => " (credential)",
        TargetKind::AppSetting => " (app setting)",
        TargetKind::ConnectionString => " (connection string)",
        TargetKind::NamedValue => " (named value)",
    };
    [
        clean(&holder_cell(c)),
        clean(&format!("{}{kind}", c.name)),
        clean(&c.path),
        clean(c.pinned_version.as_deref().unwrap_or("-")),
        clean(c.integration_runtime.as_deref().unwrap_or("-")),
        verdict_words(c.verdict).into(),
    ]
}

/// What a rotation of the secret would do with a consumer, in words.
pub fn verdict_words(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Resave => "refreshed automatically",
        Verdict::Pinned => "stays on its pinned version",
        Verdict::InlineSecret => "manual: holds an inline secret",
        Verdict::Ambiguous => "manual: name is a guess",
    }
}

/// The ANSI colour and the word for a secret's status.
pub fn status_word(status: SecretStatus) -> (&'static str, &'static str) {
    match status {
        SecretStatus::Ok => ("32", "ok"),
        SecretStatus::Expiring => ("33", "expiring"),
        SecretStatus::Expired => ("31", "expired"),
        SecretStatus::NotYetValid => ("33", "not yet valid"),
        SecretStatus::Disabled => ("31", "disabled"),
        SecretStatus::NotFound => ("31", "does not exist"),
        SecretStatus::VaultNotFound => ("31", "vault does not exist"),
        SecretStatus::AccessDenied => ("33", "access denied"),
        SecretStatus::Unreadable => ("33", "not read"),
        SecretStatus::OtherCloud => ("33", "other cloud, not read"),
    }
}

fn render_finding(out: &mut String, f: &Finding, paint: &impl Fn(&str, &str) -> String) {
    let code = match f.severity {
        Severity::Critical => "1;31",
        Severity::Warning => "33",
        Severity::Info => "36",
    };
    let _ = writeln!(
        out,
        "  {} {} {}",
        paint(code, &f.severity.as_str().to_ascii_uppercase()),
        f.code.as_str(),
        clean(f.subject.as_deref().unwrap_or(""))
    );
    let _ = writeln!(out, "      {}", clean(&f.message));
    for fix in &f.fix {
        let _ = writeln!(out, "      fix ({}): {}", f.owner.as_str(), clean(fix));
    }
}

/// `, N Synapse workspace(s), N App Service site(s) and slot(s), N API Management service(s)` for what was
/// read besides factories; nothing for a Data Factory-only estate.
pub(crate) fn other_holders(s: &Summary) -> String {
    let count = |n: usize, one: &str, many: &str| match n {
        0 => String::new(),
        1 => format!(", 1 {one}"),
        n => format!(", {n} {many}"),
    };
    [
        count(
            s.workspaces_scanned,
            "Synapse workspace",
            "Synapse workspaces",
        ),
        count(
            s.sites_scanned,
            "App Service site or slot",
            "App Service sites and slots",
        ),
        count(
            s.api_management_services_scanned,
            "API Management service",
            "API Management services",
        ),
    ]
    .concat()
}

/// What holds a consumer, for a table cell: `adf-sales (git)`, `app-web/staging (App Service)`,
/// `apim-contoso (API Management)`.
pub(crate) fn holder_cell(c: &Consumer) -> String {
    let mut cell = c.holder();
    if c.git_mode {
        cell.push_str(" (git)");
    }
    if matches!(c.platform, Platform::AppService | Platform::ApiManagement) {
        cell.push_str(&format!(" ({})", c.platform.label()));
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\r\nc"), "a?[2Jb??c");
    }
}
