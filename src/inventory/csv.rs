//! The inventory as CSV (RFC 4180), one row per reference (linked service, credential, app setting,
//! connection string or named value), for spreadsheets.
//!
//! Fields are quoted when they hold a comma, a quote or a line break. A field that a spreadsheet would take
//! for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, as
//! OWASP advises against CSV injection; names from ADF never start so, but nothing here trusts that.

use super::{Inventory, SecretEntry};

/// The header row.
pub const COLUMNS: &[&str] = &[
    "vault",
    "vaultUrl",
    "secret",
    "status",
    "latestVersion",
    "enabled",
    "expires",
    "notBefore",
    "platform",
    "resource",
    "factory",
    "kind",
    "name",
    "path",
    "pinnedVersion",
    "verdict",
    "integrationRuntime",
    "gitMode",
    "findings",
];

/// Renders the inventory: a header, then one row per (secret, consumer) in the inventory's order.
pub fn render(inventory: &Inventory) -> String {
    let mut out = String::new();
    line(&mut out, COLUMNS.iter().map(|c| c.to_string()));
    for secret in &inventory.secrets {
        let codes = finding_codes(inventory, secret);
        for c in &secret.consumers {
            line(
                &mut out,
                [
                    secret.vault.clone(),
                    secret.vault_url.clone(),
                    secret.secret.clone(),
                    json_word(&secret.status),
                    secret.latest_version.clone().unwrap_or_default(),
                    secret.enabled.map(|e| e.to_string()).unwrap_or_default(),
                    secret.expires.clone().unwrap_or_default(),
                    secret.not_before.clone().unwrap_or_default(),
                    c.platform.as_str().into(),
                    c.holder_id().to_string(),
                    c.factory.clone(),
                    c.kind.as_str().into(),
                    c.name.clone(),
                    c.path.clone(),
                    c.pinned_version.clone().unwrap_or_default(),
                    json_word(&c.verdict),
                    c.integration_runtime.clone().unwrap_or_default(),
                    c.git_mode.to_string(),
                    codes.clone(),
                ],
            );
        }
    }
    out
}

/// The codes of the findings about this secret or its vault, `;`-separated.
fn finding_codes(inventory: &Inventory, secret: &SecretEntry) -> String {
    let mut codes: Vec<&str> = inventory
        .findings_for(secret)
        .map(|f| f.code.as_str())
        .collect();
    codes.dedup();
    codes.join(";")
}

/// An enum as its JSON string.
fn json_word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    let fields: Vec<String> = fields.into_iter().map(|f| field(&f)).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
}

/// One field, neutralised and quoted as needed.
pub fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field(""), "");
    }
}
