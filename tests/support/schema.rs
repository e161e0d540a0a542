//! Validates report documents against the published schema, `docs/report.schema.json` (JSON Schema draft
//! 2020-12), so that the schema and the `Report` type cannot drift apart unnoticed.
//!
//! Include it from a test file with `#[path = "support/schema.rs"] mod schema;` and call
//! [`assert_valid_report`] on any report JSON the test produced. Validation is offline: the draft 2020-12
//! meta-schemas are bundled in the `jsonschema` crate, and the schema has no remote references.
#![allow(dead_code)]

use serde_json::Value;
use std::sync::OnceLock;

/// The path of the published schema.
pub const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let text = std::fs::read_to_string(SCHEMA_PATH)
            .unwrap_or_else(|e| panic!("cannot read {SCHEMA_PATH}: {e}"));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{SCHEMA_PATH} is not JSON: {e}"));
        // Building checks the schema itself against the draft 2020-12 meta-schema.
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{SCHEMA_PATH} is not a valid draft 2020-12 schema: {e}"))
    })
}

/// Panics with every violation (instance path and message) if `report` does not match the schema.
pub fn assert_valid_report(report: &Value) {
    let errors: Vec<String> = validator()
        .iter_errors(report)
        .map(|e| format!("  at `{}`: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not match {SCHEMA_PATH}:\n{}",
        errors.join("\n")
    );
}

/// Whether `report` matches the schema, for tests that check that a broken document is refused.
pub fn is_valid_report(report: &Value) -> bool {
    validator().is_valid(report)
}
