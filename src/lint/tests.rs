//! The rules over definitions built in memory; the file layouts are covered by `tests/lint.rs`.

use super::*;
use serde_json::json;

fn definition(kind: Kind, name: &str, properties: Value) -> Definition {
    let text = serde_json::to_string_pretty(&json!({"name": name, "properties": properties}))
        .unwrap_or_default();
    Definition::new(
        kind,
        name.to_string(),
        properties,
        Source {
            file: format!("{}/{name}.json", kind.folder()),
            lines: Arc::new(Lines::of(&text)),
            prefix: String::new(),
        },
    )
}

fn vault(name: &str, url: &str) -> Definition {
    definition(
        Kind::LinkedService,
        name,
        json!({"type": "AzureKeyVault", "typeProperties": {"baseUrl": url}}),
    )
}

fn sql(name: &str, password: Value) -> Definition {
    definition(
        Kind::LinkedService,
        name,
        json!({"type": "AzureSqlDatabase", "typeProperties": {"connectionString": "Server=x", "password": password}}),
    )
}

fn reference(store: &str, secret: &str) -> Value {
    json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
}

fn factory(definitions: Vec<Definition>) -> Factory {
    Factory {
        root: "adf".into(),
        root_is_file: false,
        layouts: vec![Layout::GitFolder],
        definitions,
        unreadable: Vec::new(),
    }
}

fn rules(findings: &[Finding]) -> Vec<(Rule, &str)> {
    findings.iter().map(|f| (f.rule, f.name.as_str())).collect()
}

#[test]
fn a_clean_reference_fires_nothing() {
    let f = factory(vec![
        vault("KV", "https://contoso-kv.vault.azure.net/"),
        sql("Sales", reference("kv", "sql-password")),
    ]);
    let options = Options {
        vault_allow: vec!["CONTOSO-KV".into()],
    };
    assert_eq!(lint(&f, &options), []);
}

#[test]
fn a_store_that_is_not_a_key_vault_is_dangling_and_not_also_unresolved() {
    let f = factory(vec![
        sql("NotAVault", reference("KV", "x")),
        sql("Sales", reference("NotAVault", "sql-password")),
    ]);
    let found = lint(&f, &Options::default());
    assert_eq!(
        rules(&found),
        [
            (Rule::DanglingStore, "NotAVault"),
            (Rule::DanglingStore, "Sales")
        ]
    );
    assert_eq!(
        found[1].property,
        "typeProperties.password.store.referenceName"
    );
    assert!(found[1].message.contains("`NotAVault`"));
}

#[test]
fn encrypted_credentials_are_self_hosted_unless_the_runtime_is_known_otherwise() {
    let with_runtime = |name: &str, runtime: Option<&str>| {
        let mut props = json!({"type": "SqlServer", "typeProperties": {"connectionString": "Server=x", "encryptedCredential": "ew0K"}});
        if let Some(r) = runtime {
            props["connectVia"] =
                json!({"referenceName": r, "type": "IntegrationRuntimeReference"});
        }
        definition(Kind::LinkedService, name, props)
    };
    let f = factory(vec![
        with_runtime("OnUnknownRuntime", Some("shir-elsewhere")),
        with_runtime("OnManaged", Some("ManagedIR")),
        with_runtime("OnAzure", None),
        definition(
            Kind::IntegrationRuntime,
            "ManagedIR",
            json!({"type": "Managed"}),
        ),
    ]);
    let found = lint(&f, &Options::default());
    let mut got = rules(&found);
    got.sort();
    assert_eq!(
        got,
        [
            (Rule::InlineSecret, "OnAzure"),
            (Rule::InlineSecret, "OnManaged"),
            (Rule::SelfHostedCredential, "OnUnknownRuntime"),
        ]
    );
}

#[test]
fn a_vault_known_only_from_a_parameter_default_is_still_checked_against_the_watched_list() {
    let store = definition(
        Kind::LinkedService,
        "KVP",
        json!({"type": "AzureKeyVault", "parameters": {"url": {"type": "String", "defaultValue": "https://legacy-kv.vault.azure.net/"}},
               "typeProperties": {"baseUrl": "@{linkedService().url}"}}),
    );
    let f = factory(vec![store, sql("Sales", reference("KVP", "sql-password"))]);
    let options = Options {
        vault_allow: vec!["contoso-kv".into()],
    };
    let found = lint(&f, &options);
    assert_eq!(rules(&found), [(Rule::UnwatchedVault, "Sales")]);
    assert!(found[0].message.contains("legacy-kv"));
    assert_eq!(lint(&f, &Options::default()), []);
}

#[test]
fn a_store_with_no_base_url_value_is_an_unresolved_reference() {
    let store = definition(
        Kind::LinkedService,
        "KVP",
        json!({"type": "AzureKeyVault", "parameters": {"url": {"type": "String"}},
               "typeProperties": {"baseUrl": "@{linkedService().url}"}}),
    );
    let f = factory(vec![store, sql("Sales", reference("KVP", "sql-password"))]);
    let found = lint(&f, &Options::default());
    assert_eq!(rules(&found), [(Rule::UnresolvedReference, "Sales")]);
    assert_eq!(found[0].property, "typeProperties.password.store");
}

#[test]
fn findings_carry_the_line_of_the_offending_value() {
    let mut pinned = reference("KV", "sql-password");
    pinned["secretVersion"] = json!("abc");
    let f = factory(vec![
        vault("KV", "https://contoso-kv.vault.azure.net/"),
        sql("Sales", pinned),
    ]);
    let found = lint(&f, &Options::default());
    assert_eq!(rules(&found), [(Rule::PinnedSecretVersion, "Sales")]);
    let text = serde_json::to_string_pretty(&f.definitions[1].document).unwrap_or_default();
    let line = text
        .lines()
        .position(|l| l.contains("\"secretVersion\""))
        .map(|i| i as u32 + 1);
    assert_eq!(Some(found[0].line), line);
    assert!(!found[0].message.is_empty());
}

#[test]
fn every_rule_has_an_id_a_title_and_a_fix_with_an_owner() {
    let mut ids = std::collections::BTreeSet::new();
    for rule in Rule::ALL {
        assert!(ids.insert(rule.id()));
        assert!(!rule.title().is_empty());
        let d = rule.diagnosis();
        assert!(!d.cause.is_empty() && !d.fix.is_empty(), "{rule:?}");
        assert_eq!(
            serde_json::to_value(rule).ok(),
            Some(Value::String(rule.id().into()))
        );
    }
    assert_eq!(Rule::PinnedSecretVersion.name(), "PinnedSecretVersion");
}

#[test]
fn arm_types_of_data_factory_and_synapse_are_recognised() {
    assert_eq!(
        Kind::from_arm_type("Microsoft.DataFactory/factories/linkedServices"),
        Some(Kind::LinkedService)
    );
    assert_eq!(
        Kind::from_arm_type("Microsoft.Synapse/workspaces/credentials"),
        Some(Kind::Credential)
    );
    assert_eq!(
        Kind::from_arm_type("Microsoft.DataFactory/factories"),
        Some(Kind::Factory)
    );
    assert_eq!(
        Kind::from_arm_type("Microsoft.DataFactory/factories/pipelines"),
        None
    );
    assert_eq!(
        Kind::from_arm_type("Microsoft.Storage/storageAccounts"),
        None
    );
}

#[test]
fn a_store_named_by_an_unresolved_template_expression_is_unresolved_not_dangling() {
    let mut sales = sql("Sales", reference("[parameters('store')]", "sql-password"));
    sales.unresolved = vec![(
        "properties.typeProperties.password.store.referenceName".into(),
        "parameter `store` has no value in the parameters file and no default".into(),
    )];
    let f = factory(vec![
        vault("KV", "https://contoso-kv.vault.azure.net/"),
        sales,
    ]);
    let found = lint(&f, &Options::default());
    assert_eq!(rules(&found), [(Rule::UnresolvedReference, "Sales")]);
    assert!(found[0].message.contains("parameter `store`"));
}

mod hostile {
    use super::super::{arm_template::Template, load, position::Lines};
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn no_text_makes_the_readers_panic(text in "\\PC{0,200}") {
            let _ = Lines::of(&text);
            let _ = load::git_definition(super::Kind::LinkedService, "linkedService/x.json", "x.json", &text);
            let _ = load::arm_definitions("t.json", "t.json", &text, Some(("p.json", &text)));
        }

        #[test]
        fn no_expression_makes_the_template_evaluator_panic(body in "[\\[\\]()',a-zA-Z0-9 .é]{0,80}") {
            let template = json!({"parameters": {"a": {"type": "string", "defaultValue": "[parameters('a')]"}}});
            let _ = Template::new(&template, None).evaluate(&format!("[{body}]"));
        }

        #[test]
        fn lines_agree_with_serde_on_every_valid_document(keys in proptest::collection::vec("[a-z\"\\\\.\\[]{1,6}", 1..6)) {
            let mut doc = json!("leaf");
            for key in keys.iter().rev() {
                doc = json!({ key.clone(): [doc] });
            }
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            let lines = Lines::of(&text);
            // The innermost leaf is the last value of the text; its line is the last but some closing brackets.
            let mut path = String::new();
            for key in &keys {
                if !path.is_empty() { path.push('.'); }
                path.push_str(key);
                path.push_str("[0]");
            }
            let leaf_line = text.lines().position(|l| l.trim() == "\"leaf\"").map(|i| i as u32 + 1);
            prop_assert_eq!(Some(lines.line(&path)), leaf_line);
        }
    }
}
