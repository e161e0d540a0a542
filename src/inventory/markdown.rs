//! The inventory as Markdown for a wiki page or a pull request: the counts, a Mermaid diagram (vault →
//! secret → consumer, coloured by the worst finding), the findings, and a table per secret.
//!
//! The diagram uses only syntax that the Mermaid versions of GitHub and Azure DevOps both render (`graph
//! LR`, quoted labels, `classDef` and `class`), inside a fenced ```` ```mermaid ```` block. An Azure DevOps
//! *wiki* page wants `::: mermaid` … `:::` instead of the fence; `docs/audit.md` says how to switch.

use super::text::{status_word, verdict_words};
use super::{Finding, Inventory, Severity};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Past this many consumer nodes the diagram shows the most urgent secrets only; Mermaid renderers refuse
/// very large graphs, and nobody reads them.
pub const MAX_DIAGRAM_CONSUMERS: usize = 200;

pub fn render(inventory: &Inventory) -> String {
    let mut out = String::new();
    let s = &inventory.summary;
    let _ = writeln!(out, "# Key Vault inventory\n");
    let _ = writeln!(
        out,
        "{} secret{}, {} reference{}, {} factor{}{} scanned{}. Findings: **{} critical**, {} warning, {} info. \
         Expiry thresholds: warning {} days, critical {} days.\n",
        s.secrets,
        if s.secrets == 1 { "" } else { "s" },
        s.references,
        if s.references == 1 { "" } else { "s" },
        s.factories_scanned,
        if s.factories_scanned == 1 { "y" } else { "ies" },
        super::text::other_holders(s),
        if inventory.complete {
            ""
        } else {
            " — **incomplete**, see below"
        },
        s.critical,
        s.warning,
        s.info,
        inventory.thresholds.warning_days,
        inventory.thresholds.critical_days
    );
    if !inventory.secrets.is_empty() {
        out.push_str(&mermaid(inventory));
        out.push('\n');
    }
    if !inventory.findings.is_empty() {
        let _ = writeln!(out, "## Findings\n");
        let _ = writeln!(out, "| severity | finding | subject | what | fix | owner |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for f in &inventory.findings {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} |",
                f.severity.as_str(),
                f.code.as_str(),
                cell(f.subject.as_deref().unwrap_or("")),
                cell(&f.message),
                cell(&f.fix.join(" ")),
                f.owner.as_str()
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Secrets\n");
    for secret in &inventory.secrets {
        let _ = writeln!(
            out,
            "### {}/{} — {}\n",
            cell(&secret.vault),
            cell(&secret.secret),
            status_word(secret.status).1
        );
        let _ = writeln!(
            out,
            "`{}` · newest version `{}` · created {} · expires {}{}\n",
            secret.vault_url,
            secret.latest_version.as_deref().unwrap_or("unknown"),
            secret.created.as_deref().unwrap_or("unknown"),
            secret.expires.as_deref().unwrap_or("never"),
            secret
                .not_before
                .as_deref()
                .map(|n| format!(" · valid from {n}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "| held by | consumer | path | pinned | runtime | if rotated |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for c in &secret.consumers {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | {} |",
                cell(&super::text::holder_cell(c)),
                cell(&c.name),
                c.path.replace('`', "'").replace('|', "\\|"),
                cell(c.pinned_version.as_deref().unwrap_or("-")),
                cell(c.integration_runtime.as_deref().unwrap_or("-")),
                verdict_words(c.verdict)
            );
        }
        out.push('\n');
    }
    if !inventory.errors.is_empty() {
        let _ = writeln!(out, "## Not read\n");
        for e in &inventory.errors {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                e.stage,
                cell(e.subject.as_deref().unwrap_or("")),
                cell(&e.message)
            );
        }
    }
    out
}

/// A table cell: one line, pipes escaped, no HTML.
fn cell(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The diagram: one node per vault, secret and consumer; each node coloured by its worst finding.
pub fn mermaid(inventory: &Inventory) -> String {
    let worst = worst_by_subject(&inventory.findings);
    let mut out = String::from("```mermaid\ngraph LR\n");
    let mut vaults: BTreeMap<&str, String> = BTreeMap::new();
    let mut classes: Vec<(String, Severity)> = Vec::new();
    let mut consumers = 0usize;
    let mut omitted = 0usize;
    for (i, secret) in inventory.secrets.iter().enumerate() {
        // Secrets come most urgent first, so the cut keeps what matters.
        if consumers + secret.consumers.len() > MAX_DIAGRAM_CONSUMERS && consumers > 0 {
            omitted += 1;
            continue;
        }
        let next = vaults.len();
        let vault_node = vaults
            .entry(secret.vault_url.as_str())
            .or_insert_with(|| {
                let id = format!("v{next}");
                let host = secret
                    .vault_url
                    .trim_start_matches("https://")
                    .trim_end_matches('/');
                let _ = writeln!(out, "  {id}[\"{}\"]", label(host));
                if let Some(s) = worst.get(secret.vault_url.as_str()) {
                    classes.push((id.clone(), *s));
                }
                id
            })
            .clone();
        let secret_node = format!("s{i}");
        let _ = writeln!(out, "  {secret_node}[\"{}\"]", label(&secret.secret));
        let _ = writeln!(out, "  {vault_node} --> {secret_node}");
        if let Some(s) = inventory
            .findings_for(secret)
            .filter(|f| !f.is_about(&secret.vault_url))
            .map(|f| f.severity)
            .max()
        {
            classes.push((secret_node.clone(), s));
        }
        for (j, c) in secret.consumers.iter().enumerate() {
            consumers += 1;
            let node = format!("c{i}_{j}");
            let _ = writeln!(
                out,
                "  {node}[\"{} / {}\"]",
                label(&c.holder()),
                label(&c.name)
            );
            let _ = writeln!(out, "  {secret_node} --> {node}");
            let definition = definition_subject(c);
            if let Some(s) = worst.get(definition.as_str()) {
                classes.push((node.clone(), *s));
            }
        }
    }
    out.push_str("  classDef critical fill:#f8d7da,stroke:#b02a37,color:#000\n");
    out.push_str("  classDef warning fill:#fff3cd,stroke:#997404,color:#000\n");
    out.push_str("  classDef info fill:#cfe2ff,stroke:#0a58ca,color:#000\n");
    for (node, severity) in classes {
        let _ = writeln!(out, "  class {node} {}", severity.as_str());
    }
    out.push_str("```\n");
    if omitted > 0 {
        let _ = writeln!(
            out,
            "\nThe diagram shows the most urgent secrets; {omitted} more are in the tables below."
        );
    }
    out
}

fn definition_subject(c: &super::Consumer) -> String {
    super::definition_id(c.holder_id(), c.kind, &c.name)
}

fn worst_by_subject(findings: &[Finding]) -> BTreeMap<&str, Severity> {
    let mut worst: BTreeMap<&str, Severity> = BTreeMap::new();
    for f in findings {
        let Some(subject) = f.subject.as_deref() else {
            continue;
        };
        worst
            .entry(subject)
            .and_modify(|s| *s = (*s).max(f.severity))
            .or_insert(f.severity);
    }
    worst
}

/// Text inside a quoted Mermaid label: quotes and angle brackets as entity codes, one line.
fn label(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '`' => out.push_str("#96;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(label("a\"b<c>#d\ne"), "a#quot;b#lt;c#gt;#35;d e");
    }

    #[test]
    fn cells_stay_one_cell_and_hold_no_html() {
        assert_eq!(cell("a|<b>\nc"), "a\\|&lt;b&gt; c");
    }
}
