//! The Markdown rendering of a report, for `--output markdown` (pull-request comments, wiki pages, tickets).
//!
//! It carries the same content as the text rendering: a title, the secret, a summary table, one table row per
//! target, then for each target that needs attention why, its notes, ADF's test message, the likely cause,
//! numbered fix steps and who must act. ADF's messages are quoted in code blocks, so that nothing in them
//! can break the document. The notifications do not send this rendering: they carry metadata only, and this
//! holds ADF's raw messages.

use super::text::{
    describe_secret, diagnoses, display_name, needs_attention, resave_word, test_word, title,
    verdict_word,
};
use super::{Report, Target, TargetKind, TestStatus};
use std::fmt::Write;

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let status = if !report.complete {
        "❌ incomplete"
    } else if s.attention {
        "⚠️ attention needed"
    } else {
        "✅ all fine"
    };
    let _ = writeln!(out, "# {}: {status}\n", title(report));
    let _ = writeln!(out, "Report `{}`\n", code(&report.id));
    if let Some(secret) = &report.secret {
        let _ = writeln!(
            out,
            "**Secret** `{}/{}` version `{}` ({})\n",
            code(&secret.vault),
            code(&secret.name),
            code(secret.version.as_deref().unwrap_or("latest")),
            text(&describe_secret(secret))
        );
    }
    if let Some(first) = &report.duplicate_of {
        let _ = writeln!(
            out,
            "This delivery repeats run `{}`: nothing was done again.\n",
            code(first)
        );
    }

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| | |\n|---|---:|");
    let mut rows = vec![("Factories scanned", s.factories_scanned)];
    // Synapse workspaces are named only when there were some, so a Data Factory-only estate reads as before.
    if s.workspaces_scanned > 0 {
        rows.push(("Synapse workspaces scanned", s.workspaces_scanned));
    }
    if s.sites_scanned > 0 {
        rows.push(("App Service sites and slots scanned", s.sites_scanned));
    }
    if s.api_management_services_scanned > 0 {
        rows.push((
            "API Management services scanned",
            s.api_management_services_scanned,
        ));
    }
    rows.extend([
        ("Linked services scanned", s.linked_services_scanned),
        ("Credentials scanned", s.credentials_scanned),
        ("Affected", s.affected),
        ("Re-saved", s.resaved),
        ("Tests passed", s.tests_passed),
        ("Tests failed", s.tests_failed),
        ("Skipped", s.skipped),
    ]);
    for (label, value) in rows {
        let _ = writeln!(out, "| {label} | {value} |");
    }
    let _ = writeln!(
        out,
        "| Attention | {} |\n",
        if s.attention { "yes" } else { "no" }
    );

    if !report.targets.is_empty() {
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| | Factory | Name | Verdict | Re-save | Test |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for t in &report.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {}{} | {} | {} | {} |",
                symbol(t),
                cell(&super::text::holder_name(t.holder())),
                cell(&t.name),
                match t.kind {
                    TargetKind::LinkedService => "",
                    TargetKind::Credential => " (credential)",
                    TargetKind::AppSetting => " (app setting)",
                    TargetKind::ConnectionString => " (connection string)",
                    TargetKind::NamedValue => " (named value)",
                },
                verdict_word(t.verdict),
                resave_word(t.resave.status),
                test_word(t.test.status),
            );
        }
        let _ = writeln!(out);
    }

    let needing: Vec<&Target> = report
        .targets
        .iter()
        .filter(|t| needs_attention(t))
        .collect();
    if !needing.is_empty() {
        let _ = writeln!(out, "## Needs attention\n");
        let now = super::reference_time(report);
        for t in needing {
            details(&mut out, t, now);
        }
    }

    if !report.findings.is_empty() {
        let _ = writeln!(out, "## Findings\n");
        for f in &report.findings {
            let subject = f
                .subject
                .as_deref()
                .map(|s| format!(" (`{}`)", code(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- **{}** `{}`{subject}: {} Who must act: {}.",
                f.severity,
                f.code,
                text(&f.message),
                owner_words(f.owner)
            );
            for (i, step) in f.fix.iter().enumerate() {
                let _ = writeln!(out, "   {}. {}", i + 1, text(step));
            }
        }
        let _ = writeln!(out);
    }

    if !report.errors.is_empty() {
        let _ = writeln!(out, "## The run did not complete\n");
        for e in &report.errors {
            let subject = e
                .subject
                .as_deref()
                .map(|s| format!(" (`{}`)", code(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- **{}**, {}{subject}:",
                text(&e.stage),
                if e.transient {
                    "transient (a later retry may succeed)"
                } else {
                    "permanent"
                }
            );
            quote(&mut out, &e.message, "  ");
        }
    }

    if !report.notifications.is_empty() {
        let _ = writeln!(out, "## Notifications\n");
        for n in &report.notifications {
            let outcome = match (&n.error, n.delivered) {
                (_, true) => "delivered".to_string(),
                (Some(error), false) => format!("not delivered: {}", text(error)),
                (None, false) => "not delivered".to_string(),
            };
            let _ = writeln!(out, "- {}: {outcome}", text(&n.channel));
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(
        out,
        "{} re-saved, {} tests passed, {} failed, {} skipped. Exit code {}.",
        s.resaved,
        s.tests_passed,
        s.tests_failed,
        s.skipped,
        report.exit_code()
    );
    out
}

/// The "Needs attention" section of one target.
fn details(out: &mut String, t: &Target, now: Option<jiff::Timestamp>) {
    let _ = writeln!(
        out,
        "### {} `{}`\n",
        text(&display_name(t)),
        code(&t.adf_type)
    );
    if let Some(impact) = &t.impact {
        let _ = writeln!(
            out,
            "- **Impact:** {}",
            super::impact_headline_with(impact, now, &text, &|name| format!("`{}`", code(name)))
        );
        if !impact.pipelines.is_empty() {
            let pipelines: Vec<String> = impact
                .pipelines
                .iter()
                .map(|p| format!("`{}`", code(p)))
                .collect();
            let _ = writeln!(out, "- **Pipelines:** {}", pipelines.join(", "));
        }
        for trigger in &impact.triggers {
            let when = match (&trigger.next_run, &trigger.note) {
                (Some(next), _) => format!("next run {}", text(next)),
                (None, Some(note)) => text(note),
                (None, None) => "no next run".into(),
            };
            let _ = writeln!(
                out,
                "- **Trigger** `{}` ({}, {}): {when}",
                code(&trigger.name),
                text(&trigger.trigger_type),
                text(&trigger.state)
            );
        }
    }
    let _ = writeln!(out, "- **Why:** {}", text(&t.reason));
    if !t.notes.is_empty() {
        let notes: Vec<String> = t
            .notes
            .iter()
            .map(|n| format!("`{}`", code(n.as_str())))
            .collect();
        let _ = writeln!(out, "- **Notes:** {}", notes.join(", "));
    }
    if let Some(credential) = &t.via_credential {
        let _ = writeln!(out, "- **Via credential:** `{}`", code(credential));
    }
    if !t.used_by.is_empty() {
        let used: Vec<String> = t.used_by.iter().map(|n| format!("`{}`", code(n))).collect();
        let _ = writeln!(out, "- **Used by:** {}", used.join(", "));
    }
    if let Some(ir) = &t.integration_runtime {
        let _ = writeln!(
            out,
            "- **Integration runtime:** `{}` ({}, {})",
            code(&ir.name),
            text(ir.kind.as_deref().unwrap_or("unknown kind")),
            text(ir.state.as_deref().unwrap_or("state unknown"))
        );
    }
    for r in &t.references {
        let pin = r
            .secret_version
            .as_deref()
            .map(|v| format!(" @ `{}`", code(v)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- **Reference:** `{}` → `{}/{}`{pin} ({})",
            code(&r.path),
            code(r.vault.as_deref().unwrap_or("?")),
            code(r.secret_name.as_deref().unwrap_or("?")),
            text(&r.certainty)
        );
    }
    let _ = writeln!(out, "- **Re-save:** {}", resave_word(t.resave.status));
    if let Some(error) = &t.resave.error {
        quote(out, error, "  ");
    }
    let _ = write!(out, "- **Test:** {}", test_word(t.test.status));
    if let Some(message) = &t.test.message
        && t.test.status != TestStatus::Passed
    {
        message_block(out, message);
    } else {
        out.push('\n');
    }
    for d in diagnoses(t) {
        let _ = writeln!(out, "- **Cause** (`{}`): {}", code(&d.code), text(&d.cause));
        let _ = writeln!(out, "- **Fix:**");
        for (i, step) in d.fix.iter().enumerate() {
            let _ = writeln!(out, "   {}. {}", i + 1, text(step));
        }
        let _ = writeln!(out, "- **Who must act:** {}", owner_words(d.owner));
    }
    if !t.request_ids.is_empty() {
        let ids: Vec<String> = t
            .request_ids
            .iter()
            .map(|n| format!("`{}`", code(n)))
            .collect();
        let _ = writeln!(out, "- **ARM request ids:** {}", ids.join(", "));
    }
    let _ = writeln!(out);
}

/// The owner code with the words a reader expects.
pub(crate) fn owner_words(owner: crate::report::Owner) -> String {
    use crate::report::Owner;
    let words = match owner {
        Owner::SecretOwner => "the secret's owner in Key Vault",
        Owner::PipelineOwner => "the pipeline owner",
        Owner::EntraAdmin => "an Entra ID administrator",
        Owner::PlatformOwner => "the platform owner",
        Owner::RuntimeOwner => "the integration runtime owner",
        Owner::AppOwner => "the app's owner",
    };
    format!("{words} (`{owner}`)")
}

fn symbol(t: &Target) -> &'static str {
    if matches!(t.test.status, TestStatus::Failed | TestStatus::Error)
        || t.resave.status == super::ResaveStatus::Failed
    {
        "❌"
    } else if needs_attention(t) {
        "⚠️"
    } else {
        "✅"
    }
}

/// Ends a list item with a message from elsewhere: inline after a dash when it is short and on one line,
/// else quoted in a block below.
fn message_block(out: &mut String, message: &str) {
    let message = message.trim();
    if message.chars().count() <= 100 && !message.contains(['\n', '\r']) {
        let _ = writeln!(out, " — {}", text(message));
    } else {
        out.push('\n');
        quote(out, message, "  ");
    }
}

/// Quotes a message from elsewhere (ADF, ARM) in a fenced block longer than any backtick run inside it.
fn quote(out: &mut String, message: &str, indent: &str) {
    let longest = message.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "\n{indent}{fence}text");
    for line in message.trim_end().lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent}{fence}\n");
}

/// Text inside an inline code span: backticks cannot be escaped there, so they become quotes.
fn code(s: &str) -> String {
    s.replace('`', "'").replace(['\n', '\r'], " ")
}

/// Plain text from elsewhere: escapes what would start a Markdown or HTML construct inside a line (emphasis,
/// links, code, table cells, tags). Underscores inside words are left alone, as GitHub does not read them.
fn text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            '_' if word(i.checked_sub(1)) && word(Some(i + 1)) => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// A table cell: plain text.
fn cell(s: &str) -> String {
    text(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_specials_are_escaped_and_fences_outgrow_the_message() {
        assert_eq!(text("a|b *c* <d>"), "a\\|b \\*c\\* \\<d>");
        assert_eq!(text("ls_sql_dw _x_"), "ls_sql_dw \\_x\\_");
        assert_eq!(code("a`b\nc"), "a'b c");
        let mut out = String::new();
        quote(&mut out, "has ``` inside", "");
        assert!(out.contains("````text\n"));
    }
}
