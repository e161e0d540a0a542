//! Pure: the findings as text for people, as the `adf-secret-refresh/lint/v1` JSON document
//! (`docs/lint.schema.json`), or as SARIF 2.1.0 for GitHub code scanning and Azure DevOps.

use super::load::InputError;
use super::{Checked, Finding, Level, Rule, SCHEMA};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// The SARIF schema the log names (the OASIS 2.1.0 schema as SchemaStore publishes it).
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The id of the notification that says a file could not be read (SARIF `toolExecutionNotifications`).
pub const UNREADABLE_INPUT: &str = "unreadable-input";

/// 1 when any input could not be read (whatever fired elsewhere), else 2 when any rule fired, else 0.
pub fn exit_code(checked: &Checked) -> u8 {
    if !checked.errors.is_empty() {
        1
    } else if !checked.findings.is_empty() {
        2
    } else {
        0
    }
}

/// Where a person finds the file: the PATH and the file within it.
pub fn display_file(root: &str, file: &str) -> String {
    let root = root.trim_end_matches(['/', '\\']);
    if root.is_empty() {
        return file.to_string();
    }
    if root == file || root.ends_with(&format!("/{file}")) || root.ends_with(&format!("\\{file}")) {
        return root.to_string();
    }
    format!("{root}/{file}")
}

/// The findings for people, one block each, then a count, and the files that could not be read.
pub fn text(checked: &Checked) -> String {
    let (factories, findings) = (&checked.factories, &checked.findings);
    let mut out = String::new();
    for f in findings {
        let d = f.rule.diagnosis();
        let _ = writeln!(
            out,
            "{}:{}: {}[{}] {}",
            display_file(&f.root, &f.file),
            f.line,
            f.rule.level().as_str(),
            f.rule.id(),
            f.message
        );
        let _ = writeln!(out, "    cause: {}", d.cause);
        for (i, step) in d.fix.iter().enumerate() {
            let _ = writeln!(out, "    fix {}: {step}", i + 1);
        }
        let _ = writeln!(out, "    owner: {}", d.owner);
        out.push('\n');
    }
    let definitions: usize = factories.iter().map(|f| f.definitions.len()).sum();
    let (errors, warnings) = counts(findings);
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "No findings in {definitions} definitions from {} path(s).",
            factories.len()
        );
    } else {
        let _ = writeln!(
            out,
            "{} finding(s) ({errors} error(s), {warnings} warning(s)) in {definitions} definitions from {} path(s).",
            findings.len(),
            factories.len()
        );
    }
    if !checked.errors.is_empty() {
        let _ = writeln!(
            out,
            "{} input(s) could not be read, so they were not linted and the result is incomplete:",
            checked.errors.len()
        );
        for e in &checked.errors {
            let _ = writeln!(out, "    {}", e.location());
        }
    }
    out
}

fn counts(findings: &[Finding]) -> (usize, usize) {
    let errors = findings
        .iter()
        .filter(|f| f.rule.level() == Level::Error)
        .count();
    (errors, findings.len() - errors)
}

/// The `adf-secret-refresh/lint/v1` document.
pub fn json(checked: &Checked) -> Value {
    let (factories, findings) = (&checked.factories, &checked.findings);
    let (errors, warnings) = counts(findings);
    json!({
        "schema": SCHEMA,
        "tool": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
        "inputs": factories.iter().map(|f| json!({
            "path": f.root,
            "layouts": f.layouts,
            "definitions": f.definitions.len(),
        })).collect::<Vec<_>>(),
        "summary": {
            "definitions": factories.iter().map(|f| f.definitions.len()).sum::<usize>(),
            "findings": findings.len(),
            "errors": errors,
            "warnings": warnings,
            "unreadable": checked.errors.len(),
        },
        "findings": findings.iter().map(|f| json!({
            "ruleId": f.rule.id(),
            "level": f.rule.level(),
            "path": f.root,
            "file": f.file,
            "line": f.line,
            "kind": f.kind,
            "name": f.name,
            "property": f.property,
            "message": f.message,
            "diagnosis": f.rule.diagnosis(),
        })).collect::<Vec<_>>(),
        "errors": checked.errors.iter().map(|e| json!({
            "file": e.file,
            "line": e.line,
            "column": e.column,
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

/// A SARIF 2.1.0 log with one run. Each result's `artifactLocation.uri` is relative to its PATH, whose
/// location `run.originalUriBaseIds` gives (relative to the working directory, `%SRCROOT%`).
///
/// A file that could not be read is a `toolExecutionNotifications` entry of level `error` in the run's one
/// invocation (SARIF 2.1.0 §3.20.21, and Appendix I: such a notification says the tool could not analyse every
/// target, so the results are incomplete). `executionSuccessful` stays true: the tool ran to the end over
/// everything it could read, and a consumer such as GitHub code scanning may treat an unsuccessful execution as
/// a failed analysis and set its results aside.
pub fn sarif(checked: &Checked) -> Value {
    let (factories, findings) = (&checked.factories, &checked.findings);
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            let d = rule.diagnosis();
            let steps: String = d
                .fix
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{}. {s}\n", i + 1))
                .collect();
            json!({
                "id": rule.id(),
                "name": rule.name(),
                "shortDescription": {"text": rule.title()},
                "fullDescription": {"text": d.cause},
                "help": {
                    "text": format!("{}\n\nFix:\n{steps}\nOwner: {}", d.cause, d.owner),
                    "markdown": format!("{}\n\n**Fix**\n\n{steps}\n**Owner:** `{}`", d.cause, d.owner),
                },
                "defaultConfiguration": {"level": rule.level().as_str()},
                "properties": {"tags": ["azure-data-factory", "key-vault", "secret-rotation"]},
            })
        })
        .collect();
    let base_id = |root: &str| {
        factories
            .iter()
            .position(|f| f.root == root)
            .map_or_else(|| "PATH".to_string(), |i| format!("PATH{}", i + 1))
    };
    let mut bases = serde_json::Map::new();
    for (i, factory) in factories.iter().enumerate() {
        bases.insert(
            format!("PATH{}", i + 1),
            base_location(&factory.root, factory.root_is_file),
        );
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": f.rule.level().as_str(),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": encode_uri(&f.file), "uriBaseId": base_id(&f.root)},
                        "region": {"startLine": f.line},
                    },
                    "logicalLocations": [{
                        "name": f.name,
                        "fullyQualifiedName": format!("{}/{}", f.kind.folder(), f.name),
                        "kind": "resource",
                    }],
                }],
                "properties": {"property": f.property, "owner": f.rule.diagnosis().owner},
            })
        })
        .collect();
    let notifications: Vec<Value> = checked.errors.iter().map(notification).collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
                "notifications": [{
                    "id": UNREADABLE_INPUT,
                    "name": "UnreadableInput",
                    "shortDescription": {"text": "A file could not be read or is not valid JSON, so it was not linted"},
                    "defaultConfiguration": {"level": "error"},
                }],
            }},
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": bases,
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// A file that could not be read, as a SARIF notification: where (relative to the working directory, as given),
/// at which line when there is one, and why.
fn notification(error: &InputError) -> Value {
    let path = error.file.replace('\\', "/");
    let mut physical = if path.starts_with('/') {
        json!({"artifactLocation": {"uri": format!("file://{}", encode_uri(&path))}})
    } else {
        let relative = path.trim_start_matches("./");
        json!({"artifactLocation": {"uri": encode_uri(relative), "uriBaseId": "%SRCROOT%"}})
    };
    if let Some(line) = error.line {
        physical["region"] = json!({"startLine": line});
    }
    json!({
        "level": "error",
        "message": {"text": error.message},
        "descriptor": {"id": UNREADABLE_INPUT, "index": 0},
        "locations": [{"physicalLocation": physical}],
    })
}

/// Where a PATH is: relative to `%SRCROOT%` (the working directory), or a `file:` URI when absolute.
fn base_location(root: &str, is_file: bool) -> Value {
    let mut folder = root.replace('\\', "/");
    if is_file {
        folder = match folder.rfind('/') {
            Some(i) => folder[..=i].to_string(),
            None => String::new(),
        };
    }
    let folder = folder.trim_start_matches("./").to_string();
    let folder = if folder.is_empty() || folder == "." {
        String::new()
    } else if folder.ends_with('/') {
        folder
    } else {
        format!("{folder}/")
    };
    if folder.starts_with('/') {
        json!({"uri": format!("file://{}", encode_uri(&folder))})
    } else if folder.is_empty() {
        json!({"uriBaseId": "%SRCROOT%"})
    } else {
        json!({"uri": encode_uri(&folder), "uriBaseId": "%SRCROOT%"})
    }
}

/// Percent-encodes a path for a URI, keeping `/`.
fn encode_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded_and_relative_bases_keep_slashes() {
        assert_eq!(
            encode_uri("linkedService/Sales Sql.json"),
            "linkedService/Sales%20Sql.json"
        );
        assert_eq!(
            base_location("factory\\adf", false),
            json!({"uri": "factory/adf/", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(base_location(".", false), json!({"uriBaseId": "%SRCROOT%"}));
        assert_eq!(
            base_location("publish/ARMTemplateForFactory.json", true),
            json!({"uri": "publish/", "uriBaseId": "%SRCROOT%"})
        );
        assert_eq!(
            base_location("/srv/my adf", false),
            json!({"uri": "file:///srv/my%20adf/"})
        );
    }

    #[test]
    fn display_file_joins_a_folder_and_keeps_a_file() {
        assert_eq!(
            display_file("adf/", "linkedService/a.json"),
            "adf/linkedService/a.json"
        );
        assert_eq!(
            display_file(
                "out/ARMTemplateForFactory.json",
                "ARMTemplateForFactory.json"
            ),
            "out/ARMTemplateForFactory.json"
        );
    }
}
