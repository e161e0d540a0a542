//! `adf-secret-refresh lint`, driven through the real binary over fixtures in the layouts ADF writes: a factory's
//! Git folder (`tests/fixtures/lint/git-layout`) and an exported ARM template (`tests/fixtures/lint/arm-template`).
//! Each rule's case sits beside clean cases that must not fire; the expected lines are those of the fixture
//! files. SARIF is validated against the vendored SARIF 2.1.0 schema, JSON against `docs/lint.schema.json`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GIT: &str = "tests/fixtures/lint/git-layout";
const ARM: &str = "tests/fixtures/lint/arm-template";
const CLEAN: &str = "tests/fixtures/lint/clean";

/// Values in the fixtures that no output may quote.
const SECRETS: &[&str] = &[
    "FAKE-TEST-ONLY-inline-account-key-0123456789",
    "FAKE-TEST-ONLY-template-account-key-9876543210",
    "ew0KICAiVmVyc2lvbiI6",
];

fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"))
        .current_dir(ROOT)
        .arg("lint")
        .args(args)
        // No Azure settings at all: linting needs none.
        .env_remove("ADF_REFRESH_SCOPE")
        .env_remove("ADF_REFRESH_VAULTS")
        .env("ADF_REFRESH_ARM_ENDPOINT", "https://127.0.0.1:9")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn document(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", stdout(output)))
}

/// (ruleId, file, line) of every finding of a lint/v1 document.
fn fired(doc: &Value) -> BTreeSet<(String, String, u64)> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["ruleId"].as_str().unwrap_or_default().to_string(),
                f["file"].as_str().unwrap_or_default().to_string(),
                f["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn set(expected: &[(&str, &str, u64)]) -> BTreeSet<(String, String, u64)> {
    expected
        .iter()
        .map(|(r, f, l)| (r.to_string(), f.to_string(), *l))
        .collect()
}

const GIT_EXPECTED: &[(&str, &str, u64)] = &[
    (
        "pinned-secret-version",
        "credential/LegacyServicePrincipal.json",
        15,
    ),
    ("inline-secret", "linkedService/CosmosManagedVnet.json", 9),
    ("dangling-store", "linkedService/LegacyApi.json", 15),
    ("self-hosted-credential", "linkedService/OnPremSql.json", 9),
    ("unwatched-vault", "linkedService/ReportsSql.json", 12),
    ("inline-secret", "linkedService/SalesBlobInline.json", 8),
    (
        "pinned-secret-version",
        "linkedService/SalesSqlPinned.json",
        16,
    ),
    ("unresolved-reference", "linkedService/TenantSql.json", 20),
];

const TEMPLATE: &str = "ARMTemplateForFactory.json";
const ARM_EXPECTED: &[(&str, &str, u64)] = &[
    ("pinned-secret-version", TEMPLATE, 117),
    ("inline-secret", TEMPLATE, 133),
    ("self-hosted-credential", TEMPLATE, 159),
    ("self-hosted-credential", TEMPLATE, 160),
    ("dangling-store", TEMPLATE, 186),
    ("unresolved-reference", TEMPLATE, 206),
    ("unresolved-reference", TEMPLATE, 233),
    ("unwatched-vault", TEMPLATE, 253),
];

#[test]
fn a_git_folder_fires_each_rule_at_the_offending_line_and_nothing_else() {
    let out = lint(&[GIT, "--vault-allow", "contoso-kv", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let doc = document(&out);
    assert_eq!(fired(&doc), set(GIT_EXPECTED));
    assert_eq!(
        doc["inputs"][0]["layouts"],
        serde_json::json!(["gitFolder"])
    );
    // Seven linked services and credentials are clean, and the pipeline folder is not read as definitions.
    assert_eq!(doc["summary"]["definitions"], 17);
    let pinned = doc["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "SalesSqlPinned"))
        .expect("the pinned linked service");
    assert_eq!(pinned["property"], "typeProperties.password.secretVersion");
    assert_eq!(pinned["diagnosis"]["owner"], "pipelineOwner");
}

#[test]
fn an_arm_template_resolves_parameters_and_reports_what_it_cannot() {
    let out = lint(&[ARM, "--vault-allow", "contoso-kv", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let doc = document(&out);
    assert_eq!(fired(&doc), set(ARM_EXPECTED));
    let messages: Vec<&str> = doc["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["message"].as_str()).collect())
        .unwrap_or_default();
    // The vault parameter missing from the parameters file is named, as is the unresolved secret name.
    assert!(
        messages.iter().any(
            |m| m.contains("RegionalVault_properties_typeProperties_baseUrl")
                && m.contains("no value in the parameters file")
        ),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("AnalyticsSql_properties_typeProperties_password_secretName")),
        "{messages:#?}"
    );
    // The name `[concat(parameters('factoryName'), '/SalesSql')]` resolves to SalesSql, whose secret name comes
    // from the parameters file: clean.
    assert!(
        doc["findings"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["name"] != "SalesSql"))
    );
}

#[test]
fn the_template_file_itself_may_be_given_and_its_uri_is_the_file_name() {
    let path = format!("{ARM}/{TEMPLATE}");
    let out = lint(&[&path, "--vault-allow", "contoso-kv", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(fired(&document(&out)), set(ARM_EXPECTED));
}

#[test]
fn a_synapse_workspace_template_is_read_like_a_factory_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let to_synapse = |name: &str, target: &str| {
        let text = std::fs::read_to_string(Path::new(ROOT).join(ARM).join(name)).expect("read");
        let text = text.replace(
            "Microsoft.DataFactory/factories/",
            "Microsoft.Synapse/workspaces/",
        );
        std::fs::write(dir.path().join(target), text).expect("write");
    };
    to_synapse(TEMPLATE, "TemplateForWorkspace.json");
    to_synapse(
        "ARMTemplateParametersForFactory.json",
        "TemplateParametersForWorkspace.json",
    );
    let out = lint(&[
        dir.path().to_str().expect("utf-8 path"),
        "--vault-allow",
        "contoso-kv",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let expected: Vec<(&str, &str, u64)> = ARM_EXPECTED
        .iter()
        .map(|(r, _, l)| (*r, "TemplateForWorkspace.json", *l))
        .collect();
    assert_eq!(fired(&document(&out)), set(&expected));
}

#[test]
fn without_a_watched_list_no_vault_is_unwatched_and_the_environment_sets_one() {
    let out = lint(&[GIT, "--format", "json"]);
    let none = fired(&document(&out));
    assert!(
        none.iter().all(|(rule, _, _)| rule != "unwatched-vault"),
        "{none:?}"
    );
    assert_eq!(none.len(), GIT_EXPECTED.len() - 1);

    let out = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"))
        .current_dir(ROOT)
        .args(["lint", GIT, "--format", "json"])
        .env("ADF_REFRESH_VAULTS", "contoso-kv, analytics-kv")
        .output()
        .expect("run the binary");
    assert_eq!(fired(&document(&out)), set(GIT_EXPECTED));
}

#[test]
fn a_clean_folder_exits_zero_in_every_format() {
    let out = lint(&[CLEAN, "--vault-allow", "contoso-kv"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("No findings in 5 definitions"),
        "{}",
        stdout(&out)
    );
    let out = lint(&[CLEAN, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = document(&out);
    assert_eq!(doc["summary"]["findings"], 0);
    assert_valid_lint(&doc);
    let out = lint(&[CLEAN, "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(0));
    let log = document(&out);
    assert_valid_sarif(&log);
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn the_json_document_matches_its_published_schema() {
    let out = lint(&[GIT, ARM, "--vault-allow", "contoso-kv", "--format", "json"]);
    let doc = document(&out);
    assert_eq!(doc["schema"], "adf-secret-refresh/lint/v1");
    assert_valid_lint(&doc);
    assert_eq!(doc["inputs"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        doc["summary"]["findings"].as_u64(),
        Some((GIT_EXPECTED.len() + ARM_EXPECTED.len()) as u64)
    );
    let mut broken = doc.clone();
    broken["findings"][0]["ruleId"] = "made-up".into();
    assert!(
        !lint_validator().is_valid(&broken),
        "the schema must refuse an unknown rule"
    );
}

#[test]
fn sarif_is_valid_sarif_2_1_0_with_rules_and_locations_relative_to_each_path() {
    let out = lint(&[GIT, ARM, "--vault-allow", "contoso-kv", "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let log = document(&out);
    assert_valid_sarif(&log);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "pinned-secret-version",
            "inline-secret",
            "self-hosted-credential",
            "dangling-store",
            "unresolved-reference",
            "unwatched-vault"
        ]
    );
    for rule in rules {
        assert!(
            rule["shortDescription"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert!(
            rule["help"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Owner"))
        );
        assert!(matches!(
            rule["defaultConfiguration"]["level"].as_str(),
            Some("error" | "warning")
        ));
    }
    let mut located = BTreeSet::new();
    for result in run["results"].as_array().expect("results") {
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().expect("uri");
        assert!(
            !uri.contains('\\') && !uri.starts_with('/') && !uri.contains("fixtures"),
            "{uri}"
        );
        let base = location["artifactLocation"]["uriBaseId"]
            .as_str()
            .expect("uriBaseId");
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        located.insert((
            base.to_string(),
            result["ruleId"].as_str().unwrap_or_default().to_string(),
            uri.to_string(),
            location["region"]["startLine"].as_u64().unwrap_or_default(),
        ));
    }
    let expected: BTreeSet<_> = GIT_EXPECTED
        .iter()
        .map(|(r, f, l)| ("PATH1".to_string(), r.to_string(), f.to_string(), *l))
        .chain(
            ARM_EXPECTED
                .iter()
                .map(|(r, f, l)| ("PATH2".to_string(), r.to_string(), f.to_string(), *l)),
        )
        .collect();
    assert_eq!(located, expected);
    assert_eq!(
        run["originalUriBaseIds"]["PATH1"],
        serde_json::json!({"uri": format!("{GIT}/"), "uriBaseId": "%SRCROOT%"})
    );
    assert_eq!(
        run["originalUriBaseIds"]["PATH2"],
        serde_json::json!({"uri": format!("{ARM}/"), "uriBaseId": "%SRCROOT%"})
    );
}

#[test]
fn the_global_output_json_option_also_gives_the_lint_document() {
    let out = lint(&[CLEAN, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(document(&out)["schema"], "adf-secret-refresh/lint/v1");
}

#[test]
fn the_sarif_schema_refuses_a_broken_log() {
    let out = lint(&[GIT, "--format", "sarif"]);
    let mut log = document(&out);
    log["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!sarif_validator().is_valid(&log));
}

#[test]
fn text_names_the_file_and_line_with_cause_fix_and_owner() {
    let out = lint(&[GIT, "--vault-allow", "contoso-kv"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{GIT}/linkedService/SalesSqlPinned.json:16: error[pinned-secret-version]"
        )),
        "{text}"
    );
    assert!(text.contains("cause: "));
    assert!(text.contains("fix 1: Remove secretVersion"));
    assert!(text.contains("owner: runtimeOwner"));
    assert!(
        text.contains("8 finding(s) (3 error(s), 5 warning(s))"),
        "{text}"
    );
}

#[test]
fn no_output_quotes_a_secret_value() {
    for format in ["text", "json", "sarif"] {
        let out = lint(&[GIT, ARM, "--vault-allow", "contoso-kv", "--format", format]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("inline-secret"), "{format}");
        for secret in SECRETS {
            assert!(!all.contains(secret), "{format} output quotes {secret}");
        }
    }
}

#[test]
fn malformed_json_exits_1_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("linkedService");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(
        folder.join("Good.json"),
        r#"{"name": "Good", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}}"#,
    )
    .expect("write");
    std::fs::write(
        folder.join("Broken.json"),
        "{\n    \"name\": \"Broken\",\n    \"properties\": {\n        \"type\": \"AzureSqlDatabase\",\n        \"typeProperties\": {\"password\": \"FAKE-TEST-ONLY-broken-password\",}\n    }\n}\n",
    )
    .expect("write");
    let out = lint(&[
        dir.path().to_str().expect("utf-8 path"),
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let file = folder.join("Broken.json").display().to_string();
    assert!(err.contains(&format!("{file}:5:")), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    let log = document(&out);
    assert_valid_sarif(&log);
    let all = format!("{}{err}", stdout(&out));
    assert!(!all.contains("FAKE-TEST-ONLY-broken-password"), "{all}");
}

/// A Git folder with one file that is not valid JSON and one linked service that pins its secret version.
fn folder_with_a_broken_file_and_a_pinned_version() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("linkedService");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(
        folder.join("ContosoKv.json"),
        r#"{"name": "ContosoKv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}}"#,
    )
    .expect("write");
    std::fs::write(
        folder.join("Broken.json"),
        "{\n    \"name\": \"Broken\",\n    \"properties\": {\n        \"type\": \"AzureSqlDatabase\"\n        \"typeProperties\": {}\n    }\n}\n",
    )
    .expect("write");
    std::fs::write(
        folder.join("Pinned.json"),
        concat!(
            "{\n",
            "    \"name\": \"Pinned\",\n",
            "    \"properties\": {\n",
            "        \"type\": \"AzureSqlDatabase\",\n",
            "        \"typeProperties\": {\n",
            "            \"connectionString\": \"Server=sales\",\n",
            "            \"password\": {\n",
            "                \"type\": \"AzureKeyVaultSecret\",\n",
            "                \"store\": {\"referenceName\": \"ContosoKv\", \"type\": \"LinkedServiceReference\"},\n",
            "                \"secretName\": \"sql-password\",\n",
            "                \"secretVersion\": \"0a1b2c3d4e5f60718293a4b5c6d7e8f9\"\n",
            "            }\n",
            "        }\n",
            "    }\n",
            "}\n"
        ),
    )
    .expect("write");
    let root = dir.path().to_str().expect("utf-8 path").to_string();
    let broken = folder.join("Broken.json").display().to_string();
    (dir, root, broken)
}

#[test]
fn a_broken_file_exits_1_and_every_other_file_is_still_linted_in_every_format() {
    let (_dir, root, broken) = folder_with_a_broken_file_and_a_pinned_version();

    let out = lint(&[&root]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unreadable input wins over findings"
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(err.contains(&format!("error: {broken}:5:")), "{err}");
    assert!(
        text.contains("linkedService/Pinned.json:11: error[pinned-secret-version]"),
        "{text}"
    );
    assert!(text.contains("1 input(s) could not be read"), "{text}");
    assert!(text.contains(&format!("{broken}:5:")), "{text}");

    let out = lint(&[&root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = document(&out);
    assert_valid_lint(&doc);
    assert_eq!(
        fired(&doc),
        set(&[("pinned-secret-version", "linkedService/Pinned.json", 11)])
    );
    assert_eq!(doc["summary"]["unreadable"], 1);
    assert_eq!(doc["errors"][0]["file"], broken.as_str());
    assert_eq!(doc["errors"][0]["line"], 5);
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON"))
    );

    let out = lint(&[&root, "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let log = document(&out);
    assert_valid_sarif(&log);
    let run = &log["runs"][0];
    assert_eq!(run["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(run["results"][0]["ruleId"], "pinned-secret-version");
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true);
    let notification = &invocation["toolExecutionNotifications"][0];
    assert_eq!(notification["level"], "error");
    assert_eq!(notification["descriptor"]["id"], "unreadable-input");
    let location = &notification["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("linkedService/Broken.json")),
        "{location}"
    );
    assert_eq!(location["region"]["startLine"], 5);
}

#[test]
fn a_reference_to_a_key_vault_whose_file_is_broken_is_not_called_dangling() {
    let (dir, root, _) = folder_with_a_broken_file_and_a_pinned_version();
    let folder = dir.path().join("linkedService");
    std::fs::write(folder.join("ContosoKv.json"), "{\"name\": \"ContosoKv\",").expect("write");
    let out = lint(&[&root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = document(&out);
    assert_eq!(
        fired(&doc),
        set(&[("pinned-secret-version", "linkedService/Pinned.json", 11)]),
        "the store may well exist: its file is reported as unreadable instead"
    );
    assert_eq!(doc["summary"]["unreadable"], 2);
}

#[test]
fn a_clean_run_says_its_execution_succeeded_with_no_notification() {
    let out = lint(&[CLEAN, "--format", "sarif"]);
    let log = document(&out);
    assert_eq!(
        log["runs"][0]["invocations"],
        serde_json::json!([{"executionSuccessful": true, "toolExecutionNotifications": []}])
    );
    let out = lint(&[CLEAN, "--format", "json"]);
    let doc = document(&out);
    assert_eq!(doc["errors"], serde_json::json!([]));
    assert_eq!(doc["summary"]["unreadable"], 0);
}

#[test]
fn a_malformed_parameters_file_is_unreadable_input_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        Path::new(ROOT).join(ARM).join(TEMPLATE),
        dir.path().join(TEMPLATE),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("ARMTemplateParametersForFactory.json"),
        "{\n  \"parameters\": {\n    \"factoryName\": {\"value\": }\n  }\n}\n",
    )
    .expect("write");
    let out = lint(&[dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ARMTemplateParametersForFactory.json:3:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_path_that_is_neither_layout_or_missing_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = lint(&[dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("neither a factory's Git folder"),
        "{}",
        stderr(&out)
    );
    let out = lint(&["tests/fixtures/lint/does-not-exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does-not-exist"), "{}", stderr(&out));
}

fn load_schema(path: &str) -> Value {
    let full = Path::new(ROOT).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn sarif_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = load_schema("tests/fixtures/sarif/sarif-schema-2.1.0.json");
        jsonschema::draft4::new(&schema).unwrap_or_else(|e| panic!("the SARIF schema: {e}"))
    })
}

fn lint_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = load_schema("docs/lint.schema.json");
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("docs/lint.schema.json: {e}"))
    })
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("  at `{}`: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid {what}:\n{}",
        errors.join("\n")
    );
}

fn assert_valid_sarif(log: &Value) {
    assert_valid(sarif_validator(), log, "SARIF 2.1.0");
}

fn assert_valid_lint(doc: &Value) {
    assert_valid(lint_validator(), doc, "adf-secret-refresh/lint/v1");
}
