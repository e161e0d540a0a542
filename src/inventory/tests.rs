//! The inventory builder, with a fixed clock: every finding kind, the threshold boundaries, the ordering.

use super::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const FACTORY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/adf-sales";

fn kv_ls(name: &str, url: &str) -> Value {
    json!({"name": name, "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": url}}})
}

fn kv_ref(store: &str, secret: &str) -> Value {
    json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
}

fn sql(name: &str, password: Value) -> Value {
    json!({"name": name, "properties": {"type": "AzureSqlDatabase", "typeProperties": {
        "connectionString": "Server=tcp:s.database.windows.net;Database=d;User ID=etl;", "password": password}}})
}

fn factory(linked_services: Vec<Value>) -> FactorySnapshot {
    FactorySnapshot {
        platform: crate::model::Platform::DataFactory,
        app_settings: vec![],
        connection_strings: vec![],
        named_values: vec![],
        id: FACTORY.into(),
        resource: json!({"id": FACTORY, "properties": {}}),
        linked_services,
        credentials: vec![],
    }
}

fn version(id: &str, created: i64) -> VersionMetadata {
    VersionMetadata {
        version: id.into(),
        enabled: Some(true),
        created: Some(created),
        not_before: None,
        expires: None,
    }
}

fn assessment() -> Assessment {
    Assessment {
        now: NOW,
        thresholds: ExpiryThresholds::default(),
        home_suffix: "vault.azure.net".into(),
        covered_vaults: None,
    }
}

fn key(vault: &str, secret: &str) -> SecretKey {
    SecretKey::new(vault, "vault.azure.net", secret)
}

/// One factory with one plain reference to kv/s, and the given versions.
fn one_secret(versions: Vec<VersionMetadata>) -> (Vec<SecretEntry>, Vec<Finding>) {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        sql("Sql", kv_ref("KV", "s")),
    ]);
    let scan = scan_factory(&f, "vault.azure.net");
    let metadata = HashMap::from([(key("kv", "s"), Metadata::Versions(versions))]);
    assemble(vec![scan], &metadata, &assessment())
}

fn codes(findings: &[Finding]) -> Vec<(FindingCode, Severity)> {
    findings.iter().map(|f| (f.code, f.severity)).collect()
}

fn expiring_in(seconds: i64) -> Vec<(FindingCode, Severity)> {
    let mut v = version("v1", NOW - 100);
    v.expires = Some(NOW + seconds);
    codes(&one_secret(vec![v]).1)
}

#[test]
fn expiry_thresholds_are_inclusive_at_exactly_seven_and_thirty_days() {
    let warning = vec![(FindingCode::SecretExpiring, Severity::Warning)];
    let critical = vec![(FindingCode::SecretExpiring, Severity::Critical)];
    assert_eq!(expiring_in(30 * DAY + 1), vec![]);
    assert_eq!(expiring_in(30 * DAY), warning);
    assert_eq!(expiring_in(7 * DAY + 1), warning);
    assert_eq!(expiring_in(7 * DAY), critical);
    assert_eq!(expiring_in(1), critical);
    assert_eq!(
        expiring_in(0),
        vec![(FindingCode::SecretExpired, Severity::Critical)]
    );
}

#[test]
fn a_secret_entry_carries_the_newest_version_its_dates_and_its_consumers() {
    let mut newest = version("v2", NOW - 10);
    newest.expires = Some(NOW + 100 * DAY);
    let (secrets, findings) = one_secret(vec![version("v1", NOW - 1000), newest]);
    assert!(findings.is_empty(), "{findings:?}");
    let entry = &secrets[0];
    assert_eq!(entry.vault_url, "https://kv.vault.azure.net/");
    assert_eq!(entry.latest_version.as_deref(), Some("v2"));
    assert_eq!(entry.enabled, Some(true));
    assert_eq!(entry.status, SecretStatus::Ok);
    assert!(
        entry
            .expires
            .as_deref()
            .is_some_and(|e| e.starts_with("2027"))
    );
    assert_eq!(entry.consumers.len(), 1);
    let consumer = &entry.consumers[0];
    assert_eq!(
        (consumer.name.as_str(), consumer.path.as_str()),
        ("Sql", "typeProperties.password")
    );
    assert_eq!(consumer.verdict, Verdict::Resave);
}

#[test]
fn a_disabled_newest_version_is_critical_and_a_future_one_a_warning() {
    let mut disabled = version("v2", NOW - 10);
    disabled.enabled = Some(false);
    let (secrets, findings) = one_secret(vec![version("v1", NOW - 1000), disabled]);
    assert_eq!(
        codes(&findings),
        vec![(FindingCode::LatestVersionDisabled, Severity::Critical)]
    );
    assert_eq!(secrets[0].latest_enabled_version.as_deref(), Some("v1"));
    assert_eq!(secrets[0].enabled, Some(false));

    let mut future = version("v2", NOW - 10);
    future.not_before = Some(NOW + DAY);
    assert_eq!(
        codes(&one_secret(vec![future]).1),
        vec![(FindingCode::SecretNotYetValid, Severity::Warning)]
    );
}

#[test]
fn pins_to_anything_but_the_newest_enabled_version_are_findings() {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        sql("Current", {
            let mut r = kv_ref("KV", "s");
            r["secretVersion"] = json!("v2");
            r
        }),
        sql("Old", {
            let mut r = kv_ref("KV", "s");
            r["secretVersion"] = json!("v1");
            r
        }),
        sql("Gone", {
            let mut r = kv_ref("KV", "s");
            r["secretVersion"] = json!("v0");
            r
        }),
    ]);
    let metadata = HashMap::from([(
        key("kv", "s"),
        Metadata::Versions(vec![version("v1", NOW - 1000), version("v2", NOW - 10)]),
    )]);
    let (secrets, findings) = assemble(
        vec![scan_factory(&f, "vault.azure.net")],
        &metadata,
        &assessment(),
    );
    let pins: Vec<(Severity, bool)> = findings
        .iter()
        .filter(|f| f.code == FindingCode::PinnedToOldVersion)
        .map(|f| (f.severity, f.message.contains("/Old ")))
        .collect();
    assert_eq!(
        pins,
        vec![(Severity::Critical, false), (Severity::Warning, true)]
    );
    assert!(findings.iter().all(|f| f.is_about("kv/s")));
    let verdicts: Vec<Verdict> = secrets[0].consumers.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, vec![Verdict::Pinned; 3]);
    assert_eq!(
        secrets[0].consumers[1].pinned_version.as_deref(),
        Some("v0")
    );
}

#[test]
fn dangling_secrets_vaults_and_stores_and_denied_vaults_are_findings() {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        kv_ls("Gone", "https://gone-kv.vault.azure.net/"),
        kv_ls("Locked", "https://locked-kv.vault.azure.net/"),
        sql("Missing", kv_ref("KV", "missing")),
        sql("NoVault", kv_ref("Gone", "s")),
        sql("Denied", kv_ref("Locked", "s")),
        sql("NoStore", kv_ref("NotThere", "s")),
    ]);
    let metadata = HashMap::from([
        (key("kv", "missing"), Metadata::SecretNotFound),
        (key("gone-kv", "s"), Metadata::VaultNotFound),
        (
            key("locked-kv", "s"),
            Metadata::AccessDenied("does not have secrets list permission".into()),
        ),
    ]);
    let (secrets, findings) = assemble(
        vec![scan_factory(&f, "vault.azure.net")],
        &metadata,
        &assessment(),
    );
    let found: Vec<(FindingCode, &str)> = findings
        .iter()
        .map(|f| (f.code, f.subject.as_deref().unwrap_or("")))
        .collect();
    assert!(found.contains(&(FindingCode::DanglingSecret, "kv/missing")));
    assert!(found.contains(&(
        FindingCode::DanglingVault,
        "https://gone-kv.vault.azure.net/"
    )));
    assert!(found.contains(&(
        FindingCode::VaultAccessDenied,
        "https://locked-kv.vault.azure.net/"
    )));
    assert!(found.contains(&(
        FindingCode::DanglingStore,
        &*format!("{FACTORY}/linkedservices/NoStore")
    )));
    let denied = findings
        .iter()
        .find(|f| f.code == FindingCode::VaultAccessDenied)
        .map(|f| f.fix.join(" "))
        .unwrap_or_default();
    assert!(denied.contains("Key Vault Reader"), "{denied}");
    // The broken ones come first; the denied one is unknown, not broken.
    let statuses: Vec<SecretStatus> = secrets.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            SecretStatus::VaultNotFound,
            SecretStatus::NotFound,
            SecretStatus::AccessDenied
        ]
    );
}

#[test]
fn inline_secrets_runtime_credentials_parameters_and_git_mode_are_findings() {
    let mut f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        json!({"name": "Blob", "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "connectionString": {"type": "SecureString", "value": "**********"}}}}),
        json!({"name": "OnPrem", "properties": {"type": "SqlServer",
            "connectVia": {"referenceName": "shir", "type": "IntegrationRuntimeReference"},
            "typeProperties": {"connectionString": "Server=db;", "encryptedCredential": "ew0KICAiVmVyc2lvbiI6ICIyMDE3LTExLTMwIg0KfQ=="}}}),
        json!({"name": "Param", "properties": {"type": "AzureSqlDatabase",
            "parameters": {"secretName": {"type": "String"}},
            "typeProperties": {"password": kv_ref("KV", "@{linkedService().secretName}")}}}),
        json!({"name": "Guess", "properties": {"type": "AzureSqlDatabase",
            "parameters": {"secretName": {"type": "String", "defaultValue": "s"}},
            "typeProperties": {"password": kv_ref("KV", "@{linkedService().secretName}")}}}),
    ]);
    f.resource =
        json!({"properties": {"repoConfiguration": {"type": "FactoryGitHubConfiguration"}}});
    let scan = scan_factory(&f, "vault.azure.net");
    let found: Vec<(FindingCode, Severity, &str)> = scan
        .findings
        .iter()
        .map(|f| {
            (
                f.code,
                f.severity,
                short(f.subject.as_deref().unwrap_or("")),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (FindingCode::GitMode, Severity::Info, "adf-sales"),
            (FindingCode::InlineSecret, Severity::Warning, "Blob"),
            (
                FindingCode::SelfHostedCredential,
                Severity::Warning,
                "OnPrem"
            ),
            (FindingCode::UnresolvedReference, Severity::Warning, "Param"),
            (FindingCode::UnresolvedReference, Severity::Info, "Guess"),
        ]
    );
    // The guessed reference is inventoried under its default, as a rotation would treat it.
    assert_eq!(scan.uses.len(), 1);
    assert_eq!(scan.uses[0].consumer.verdict, Verdict::Ambiguous);
    assert!(scan.uses[0].consumer.git_mode);
}

#[test]
fn a_vault_in_another_cloud_is_its_own_entry_and_never_read() {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        kv_ls("KVCN", "https://kv.vault.azure.cn/"),
        sql("Public", kv_ref("KV", "s")),
        sql("China", kv_ref("KVCN", "s")),
    ]);
    let a = assessment();
    let scan = scan_factory(&f, "vault.azure.net");
    let keys: BTreeSet<&SecretKey> = scan.uses.iter().map(|u| &u.key).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| a.reads(k)).count(), 1);
    let metadata = HashMap::from([(
        key("kv", "s"),
        Metadata::Versions(vec![version("v1", NOW - 10)]),
    )]);
    let (secrets, findings) = assemble(vec![scan], &metadata, &a);
    let urls: Vec<(&str, SecretStatus)> = secrets
        .iter()
        .map(|s| (s.vault_url.as_str(), s.status))
        .collect();
    assert_eq!(
        urls,
        vec![
            ("https://kv.vault.azure.cn/", SecretStatus::OtherCloud),
            ("https://kv.vault.azure.net/", SecretStatus::Ok),
        ]
    );
    assert_eq!(
        codes(&findings),
        vec![(FindingCode::VaultNotCovered, Severity::Warning)]
    );
    assert_eq!(
        findings[0].subject.as_deref(),
        Some("https://kv.vault.azure.cn/")
    );
}

#[test]
fn vaults_outside_the_heard_list_are_not_covered() {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        kv_ls("Other", "https://other-kv.vault.azure.net/"),
        sql("A", kv_ref("KV", "s")),
        sql("B", kv_ref("Other", "s")),
    ]);
    let metadata = HashMap::from([
        (key("kv", "s"), Metadata::Versions(vec![version("v1", 1)])),
        (
            key("other-kv", "s"),
            Metadata::Versions(vec![version("v1", 1)]),
        ),
    ]);
    let a = Assessment {
        covered_vaults: Some(vec!["KV".into()]),
        ..assessment()
    };
    let (_, findings) = assemble(vec![scan_factory(&f, "vault.azure.net")], &metadata, &a);
    let found: Vec<(FindingCode, &str)> = findings
        .iter()
        .map(|f| (f.code, f.subject.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        found,
        vec![(
            FindingCode::VaultNotCovered,
            "https://other-kv.vault.azure.net/"
        )]
    );
}

#[test]
fn secrets_are_ordered_expired_then_soonest_expiry_then_stale_pins_then_the_rest() {
    let f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        sql("A", kv_ref("KV", "a-fine")),
        sql("B", kv_ref("KV", "b-expiring-later")),
        sql("C", kv_ref("KV", "c-expired")),
        sql("D", {
            let mut r = kv_ref("KV", "d-pinned");
            r["secretVersion"] = json!("old");
            r
        }),
        sql("E", kv_ref("KV", "e-expiring-soon")),
    ]);
    let expiring = |id: &str, at: i64| {
        let mut v = version(id, NOW - 10);
        v.expires = Some(at);
        v
    };
    let metadata = HashMap::from([
        (
            key("kv", "a-fine"),
            Metadata::Versions(vec![version("v", 1)]),
        ),
        (
            key("kv", "b-expiring-later"),
            Metadata::Versions(vec![expiring("v", NOW + 20 * DAY)]),
        ),
        (
            key("kv", "c-expired"),
            Metadata::Versions(vec![expiring("v", NOW - DAY)]),
        ),
        (
            key("kv", "d-pinned"),
            Metadata::Versions(vec![version("old", 1), version("new", 2)]),
        ),
        (
            key("kv", "e-expiring-soon"),
            Metadata::Versions(vec![expiring("v", NOW + 2 * DAY)]),
        ),
    ]);
    let (secrets, findings) = assemble(
        vec![scan_factory(&f, "vault.azure.net")],
        &metadata,
        &assessment(),
    );
    let order: Vec<&str> = secrets.iter().map(|s| s.secret.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "c-expired",
            "e-expiring-soon",
            "b-expiring-later",
            "d-pinned",
            "a-fine"
        ]
    );
    let severities: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "most severe first");
}

#[test]
fn a_linked_service_using_a_credential_is_a_consumer_of_its_secret() {
    let mut f = factory(vec![
        kv_ls("KV", "https://kv.vault.azure.net/"),
        json!({"name": "Lake", "properties": {"type": "AzureBlobFS", "typeProperties": {
            "url": "https://d.dfs.core.windows.net/", "credential": {"referenceName": "Sp", "type": "CredentialReference"}}}}),
    ]);
    f.credentials = vec![
        json!({"name": "Sp", "properties": {"type": "ServicePrincipal", "typeProperties": {"servicePrincipalKey": kv_ref("KV", "sp-secret")}}}),
    ];
    let scan = scan_factory(&f, "vault.azure.net");
    let consumers: Vec<(TargetKind, &str, &str)> = scan
        .uses
        .iter()
        .map(|u| {
            (
                u.consumer.kind,
                u.consumer.name.as_str(),
                u.consumer.path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        consumers,
        vec![
            (
                TargetKind::Credential,
                "Sp",
                "typeProperties.servicePrincipalKey"
            ),
            (
                TargetKind::LinkedService,
                "Lake",
                "credential:Sp/typeProperties.servicePrincipalKey"
            ),
        ]
    );
}

#[test]
fn a_parameterised_store_url_keeps_its_cloud() {
    let f = factory(vec![
        json!({"name": "KV", "properties": {"type": "AzureKeyVault",
            "parameters": {"vault": {"type": "String", "defaultValue": "kv"}},
            "typeProperties": {"baseUrl": "https://@{linkedService().vault}.vault.azure.cn/"}}}),
        json!({"name": "Sql", "properties": {"type": "AzureSqlDatabase", "typeProperties": {"password":
            {"type": "AzureKeyVaultSecret", "store": {"referenceName": "KV", "type": "LinkedServiceReference", "parameters": {"vault": "kv"}}, "secretName": "s"}}}}),
    ]);
    let scan = scan_factory(&f, "vault.azure.net");
    assert_eq!(scan.uses.len(), 1, "{:?}", scan.findings);
    assert_eq!(scan.uses[0].key.vault_url(), "https://kv.vault.azure.cn/");
}

const SLOT: &str =
    "/subscriptions/s1/resourceGroups/rg-apps/providers/Microsoft.Web/sites/app-web/slots/staging";
const APIM: &str = "/subscriptions/s1/resourceGroups/rg-apps/providers/Microsoft.ApiManagement/service/apim-contoso";

/// A `configreferences` item: the setting's name and its reference, never its value.
fn reference(name: &str, reference: &str) -> Value {
    json!({"name": name, "properties": {"reference": reference, "status": "Resolved"}})
}

fn named_value(name: &str, identifier: Option<&str>) -> Value {
    match identifier {
        Some(id) => {
            json!({"name": name, "properties": {"displayName": name, "secret": true, "keyVault": {"secretIdentifier": id}}})
        }
        None => json!({"name": name, "properties": {"displayName": name, "secret": false}}),
    }
}

#[test]
fn a_slot_lists_its_key_vault_references_with_the_verdicts_a_rotation_gives() {
    let mut slot = Snapshot::new(Platform::AppService, SLOT, json!({"kind": "app"}));
    slot.app_settings = vec![
        reference(
            "SqlPassword",
            "@Microsoft.KeyVault(SecretUri=https://kv-apps.vault.azure.net/secrets/s/)",
        ),
        reference(
            "app-web/SqlPinned",
            "@Microsoft.KeyVault(SecretUri=https://kv-apps.vault.azure.net/secrets/s/v1)",
        ),
        reference("Broken", "@Microsoft.KeyVault(VaultName=kv-apps;Secret=s)"),
    ];
    slot.connection_strings = vec![reference(
        "Sales",
        "@Microsoft.KeyVault(VaultName=kv-apps;SecretName=s)",
    )];
    let scan = scan_snapshot(&slot, "vault.azure.net");

    let mut seen: Vec<_> = scan
        .uses
        .iter()
        .map(|u| {
            let c = &u.consumer;
            assert_eq!(u.key, key("kv-apps", "s"), "{}", c.name);
            assert_eq!(
                (c.platform, c.resource.as_str()),
                (Platform::AppService, SLOT)
            );
            assert!(
                c.factory.is_empty(),
                "an App Service consumer names no factory"
            );
            (
                c.kind,
                c.name.clone(),
                c.path.clone(),
                c.pinned_version.clone(),
                c.verdict,
            )
        })
        .collect();
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        seen,
        vec![
            (
                TargetKind::ConnectionString,
                "Sales".into(),
                "connectionStrings/Sales".into(),
                None,
                Verdict::Resave
            ),
            (
                TargetKind::AppSetting,
                "SqlPassword".into(),
                "appSettings/SqlPassword".into(),
                None,
                Verdict::Resave
            ),
            (
                TargetKind::AppSetting,
                "SqlPinned".into(),
                "appSettings/SqlPinned".into(),
                Some("v1".into()),
                Verdict::Pinned
            ),
        ]
    );
    let unresolved = codes(&scan.findings);
    assert_eq!(
        unresolved,
        vec![(FindingCode::UnresolvedReference, Severity::Warning)]
    );
    assert_eq!(
        scan.findings[0].subject.as_deref(),
        Some(format!("{SLOT}/config/configreferences/appsettings/Broken").as_str())
    );
    assert!(
        scan.findings[0].message.contains("app-web/staging/Broken"),
        "{}",
        scan.findings[0].message
    );
    assert_eq!(scan.findings[0].owner, Owner::AppOwner);

    let metadata = HashMap::from([(
        key("kv-apps", "s"),
        Metadata::Versions(vec![
            version("v1", NOW - 20 * DAY),
            version("v2", NOW - DAY),
        ]),
    )]);
    let (secrets, findings) = assemble(vec![scan], &metadata, &assessment());
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].consumers.len(), 3);
    let pinned: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == FindingCode::PinnedToOldVersion)
        .collect();
    assert_eq!(pinned.len(), 1, "{findings:?}");
    assert_eq!(pinned[0].severity, Severity::Warning);
    assert_eq!(pinned[0].owner, Owner::AppOwner);
    assert!(
        pinned[0].message.starts_with(
            "app-web/staging/SqlPinned at appSettings/SqlPinned pins kv-apps/s to version v1"
        ),
        "{}",
        pinned[0].message
    );
    assert!(
        pinned[0].fix[0].contains("SecretVersion"),
        "{:?}",
        pinned[0].fix
    );
}

#[test]
fn an_api_management_service_lists_its_key_vault_backed_named_values_only() {
    let mut apim = Snapshot::new(Platform::ApiManagement, APIM, json!({}));
    apim.named_values = vec![
        named_value(
            "sql-password",
            Some("https://kv-apps.vault.azure.net/secrets/s"),
        ),
        named_value(
            "sql-password-pinned",
            Some("https://kv-apps.vault.azure.net/secrets/s/v1"),
        ),
        named_value("china", Some("https://kv-apps.vault.azure.cn/secrets/s")),
        named_value("gone", Some("https://kv-apps.vault.azure.net/secrets/gone")),
        named_value("environment", None),
        named_value("broken", Some("https://kv-apps.vault.azure.net/keys/s")),
    ];
    let scan = scan_snapshot(&apim, "vault.azure.net");
    let mut seen: Vec<_> = scan
        .uses
        .iter()
        .map(|u| {
            let c = &u.consumer;
            assert_eq!(
                (c.platform, c.resource.as_str(), c.kind),
                (Platform::ApiManagement, APIM, TargetKind::NamedValue)
            );
            assert_eq!(c.path, "properties.keyVault.secretIdentifier");
            (u.key.vault_url(), c.name.clone(), c.verdict)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "https://kv-apps.vault.azure.cn/".into(),
                "china".into(),
                Verdict::Resave
            ),
            (
                "https://kv-apps.vault.azure.net/".into(),
                "gone".into(),
                Verdict::Resave
            ),
            (
                "https://kv-apps.vault.azure.net/".into(),
                "sql-password".into(),
                Verdict::Resave
            ),
            (
                "https://kv-apps.vault.azure.net/".into(),
                "sql-password-pinned".into(),
                Verdict::Pinned
            ),
        ],
        "a plain named value is no consumer"
    );
    assert_eq!(
        codes(&scan.findings),
        vec![(FindingCode::UnresolvedReference, Severity::Warning)]
    );
    assert_eq!(
        scan.findings[0].subject.as_deref(),
        Some(format!("{APIM}/namedValues/broken").as_str())
    );

    let metadata = HashMap::from([
        (
            key("kv-apps", "s"),
            Metadata::Versions(vec![
                version("v1", NOW - 20 * DAY),
                version("v2", NOW - DAY),
            ]),
        ),
        (key("kv-apps", "gone"), Metadata::SecretNotFound),
    ]);
    let (_, findings) = assemble(vec![scan], &metadata, &assessment());
    let found = codes(&findings);
    for expected in [
        (FindingCode::DanglingSecret, Severity::Critical),
        (FindingCode::PinnedToOldVersion, Severity::Warning),
        (FindingCode::VaultNotCovered, Severity::Warning),
        (FindingCode::UnresolvedReference, Severity::Warning),
    ] {
        assert!(
            found.contains(&expected),
            "{expected:?} missing from {found:?}"
        );
    }
    let dangling = findings
        .iter()
        .find(|f| f.code == FindingCode::DanglingSecret)
        .expect("dangling");
    assert!(
        dangling.message.contains("apim-contoso/gone"),
        "{}",
        dangling.message
    );
    let pinned = findings
        .iter()
        .find(|f| f.code == FindingCode::PinnedToOldVersion)
        .expect("pinned");
    assert!(
        pinned.fix[0].contains("secretIdentifier"),
        "{:?}",
        pinned.fix
    );
}

#[test]
fn a_vault_that_does_not_exist_is_fixed_where_each_platform_names_it() {
    let mut site = Snapshot::new(
        Platform::AppService,
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/app-web",
        json!({"kind": "app"}),
    );
    site.app_settings = vec![reference(
        "Gone",
        "@Microsoft.KeyVault(VaultName=gone-kv;SecretName=s)",
    )];
    let metadata = HashMap::from([(key("gone-kv", "s"), Metadata::VaultNotFound)]);
    let (secrets, findings) = assemble(
        vec![scan_snapshot(&site, "vault.azure.net")],
        &metadata,
        &assessment(),
    );
    assert_eq!(secrets[0].status, SecretStatus::VaultNotFound);
    let dangling = findings
        .iter()
        .find(|f| f.code == FindingCode::DanglingVault)
        .expect("danglingVault");
    assert_eq!(
        dangling.subject.as_deref(),
        Some("https://gone-kv.vault.azure.net/")
    );
    assert!(
        dangling.fix[0].contains("SecretUri or VaultName"),
        "{:?}",
        dangling.fix
    );
    assert!(!dangling.fix[0].contains("baseUrl"), "{:?}", dangling.fix);
}
