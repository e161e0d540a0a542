//! Shared test support: a realistic estate, the emulator, and a way to run the real binary against it.
#![allow(dead_code)]

#[path = "../support/schema.rs"]
pub mod schema;

use adf_emulator::{Emulator, Options};
use serde_json::{Value, json};
use std::process::Command;

pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const SUB_OUTSIDE: &str = "22222222-2222-2222-2222-222222222222";
pub const RG: &str = "rg-data";

pub fn factory_id(rg: &str, name: &str) -> String {
    factory_id_in(SUB, rg, name)
}

pub fn factory_id_in(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DataFactory/factories/{name}"
    )
}

pub fn kv_ls(name: &str, url: &str) -> Value {
    json!({"name": name, "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": url}}})
}

pub fn kv_ref(store: &str, secret: Value) -> Value {
    json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
}

pub fn sql(name: &str, password: Value) -> Value {
    json!({"name": name, "properties": {"type": "AzureSqlDatabase", "typeProperties": {
        "connectionString": "Server=tcp:sales.database.windows.net,1433;Database=sales;User ID=etl;",
        "password": password}}})
}

pub fn with(mut ls: Value, pointer: &str, value: Value) -> Value {
    let mut parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let last = parts.pop().unwrap_or_default();
    let mut node = &mut ls;
    for p in parts {
        node = node
            .as_object_mut()
            .expect("object")
            .entry(p)
            .or_insert(json!({}));
    }
    node[last] = value;
    ls
}

/// Fake inline secret values: tests search every output for them.
pub const INLINE_ACCOUNT_KEY: &str = "FAKE-TEST-ONLY-inline-account-key-0123456789";
pub const SQL_PASSWORD_V2: &str = "FAKE-TEST-ONLY-sql-password-v2-abcdef";

/// An estate with every case a rotation of `contoso-kv/sql-password` can meet.
pub fn estate() -> Value {
    let sales = vec![
        kv_ls("KeyVault", "https://contoso-kv.vault.azure.net/"),
        kv_ls("OtherVault", "https://other-kv.vault.azure.net/"),
        json!({"name": "SalesSql", "properties": sql("x", kv_ref("KeyVault", json!("sql-password")))["properties"],
               "test": {"outcome": "failUntilResaved", "message": "Cannot connect to SQL Database. Login failed for user 'etl'."}}),
        sql(
            "SalesSqlOtherVault",
            kv_ref("OtherVault", json!("sql-password")),
        ),
        json!({"name": "SalesSqlPinned",
               "properties": sql("x", with(kv_ref("KeyVault", json!("sql-password")), "/secretVersion", json!("00000000000000000000000000000001")))["properties"],
               "test": {"outcome": "failure", "message": "Cannot connect to SQL Database. Login failed for user 'etl'."}}),
        json!({"name": "SalesBlobInline", "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "connectionString": {"type": "SecureString", "value": format!("DefaultEndpointsProtocol=https;AccountName=salesblob;AccountKey={INLINE_ACCOUNT_KEY}")},
            "servicePrincipalId": "6f1c-app", "tenant": "contoso.onmicrosoft.com",
            "servicePrincipalKey": kv_ref("KeyVault", json!("sql-password"))}}}),
        json!({"name": "SalesSqlParam", "properties": {"type": "AzureSqlDatabase",
            "parameters": {"secretName": {"type": "String", "defaultValue": "sql-password"}},
            "typeProperties": {"connectionString": "Server=tcp:p.database.windows.net;Database=p;User ID=etl;",
                "password": kv_ref("KeyVault", json!("@{linkedService().secretName}"))}}}),
        json!({"name": "SalesRestApi", "properties": {"type": "RestService", "typeProperties": {
            "url": "https://api.contoso.com/", "authenticationType": "AadServicePrincipal", "servicePrincipalId": "6f1c-app",
            "tenant": "contoso.onmicrosoft.com", "aadResourceId": "api://contoso",
            "servicePrincipalKey": kv_ref("KeyVault", json!("sql-password"))}},
            "test": {"outcome": "failure", "message": "ErrorCode=FailedToGetOAuth2AccessToken … AADSTS7000222: The provided client secret keys for app '6f1c-app' are expired."}}),
        json!({"name": "LakeViaCredential", "properties": {"type": "AzureBlobFS", "typeProperties": {
            "url": "https://salesdl.dfs.core.windows.net/", "credential": {"referenceName": "SpCredential", "type": "CredentialReference"}}}}),
        json!({"name": "OnPremSql", "properties": sql("x", kv_ref("KeyVault", json!("sql-password")))["properties"]}),
        json!({"name": "VnetSql", "properties": sql("x", kv_ref("KeyVault", json!("sql-password")))["properties"]}),
        json!({"name": "Unrelated1", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://u1.dfs.core.windows.net/"}}}),
        json!({"name": "Unrelated2", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://u2.dfs.core.windows.net/"}}}),
    ];
    let mut sales = sales;
    sales[9]["properties"]["connectVia"] =
        json!({"referenceName": "shir-onprem", "type": "IntegrationRuntimeReference"});
    sales[10]["properties"]["connectVia"] =
        json!({"referenceName": "mvnet-ir", "type": "IntegrationRuntimeReference"});
    json!({
        "tenantId": "33333333-3333-3333-3333-333333333333",
        "subscriptions": [
            {"subscriptionId": SUB, "resourceGroups": [
                {"name": RG, "factories": [
                    {"name": "adf-sales", "location": "westeurope", "linkedServices": sales,
                     "credentials": [{"name": "SpCredential", "properties": {"type": "ServicePrincipal", "typeProperties": {
                        "servicePrincipalId": "6f1c-app", "tenant": "contoso.onmicrosoft.com",
                        "servicePrincipalKey": kv_ref("KeyVault", json!("sql-password"))}}}],
                     "integrationRuntimes": [
                        {"name": "shir-onprem", "properties": {"type": "SelfHosted"}, "state": "Offline"},
                        {"name": "mvnet-ir", "properties": {"type": "Managed", "managedVirtualNetwork": {"referenceName": "default", "type": "ManagedVirtualNetworkReference"}}, "interactiveAuthoring": false}
                     ]},
                    {"name": "adf-finance-git", "location": "westeurope",
                     "repoConfiguration": {"type": "FactoryGitHubConfiguration", "accountName": "contoso", "repositoryName": "adf-finance", "collaborationBranch": "main", "rootFolder": "/"},
                     "linkedServices": [kv_ls("KV", "HTTPS://Contoso-KV.vault.azure.net"), sql("FinanceSql", kv_ref("KV", json!("SQL-Password")))]},
                    {"name": "adf-empty-1", "location": "westeurope", "linkedServices": []},
                    {"name": "adf-empty-2", "location": "westeurope", "linkedServices": [
                        json!({"name": "Blob", "properties": {"type": "AzureBlobStorage", "typeProperties": {"serviceEndpoint": "https://b.blob.core.windows.net/"}}})]}
                ]},
                {"name": "rg-cn", "factories": [
                    {"name": "adf-china", "location": "chinaeast2", "linkedServices": [kv_ls("KV", "https://contoso-kv.vault.azure.cn/"), sql("ChinaSql", kv_ref("KV", json!("sql-password")))]}
                ]}
            ]},
            {"subscriptionId": SUB_OUTSIDE, "resourceGroups": [
                {"name": "rg-other", "factories": [
                    {"name": "adf-outside", "location": "westeurope", "linkedServices": [kv_ls("KV", "https://contoso-kv.vault.azure.net/"), sql("OutsideSql", kv_ref("KV", json!("sql-password")))]}
                ]}
            ]}
        ],
        "vaults": [
            {"name": "contoso-kv", "secrets": [{"name": "sql-password", "versions": [
                {"version": "00000000000000000000000000000001", "value": "FAKE-TEST-ONLY-sql-password-v1", "enabled": true, "created": 1700000000},
                {"version": "00000000000000000000000000000002", "value": SQL_PASSWORD_V2, "enabled": true, "created": 1760000000}
            ]}]},
            {"name": "other-kv", "secrets": [{"name": "sql-password", "versions": [
                {"version": "0000000000000000000000000000000a", "value": "FAKE-TEST-ONLY-other", "enabled": true, "created": 1700000000}
            ]}]}
        ]
    })
}

pub async fn emulator(seed: Value, page_size: usize) -> Emulator {
    emulator_with_faults(seed, page_size, adf_emulator::Faults::default()).await
}

/// The emulator with faults active from the start.
pub async fn emulator_with_faults(
    seed: Value,
    page_size: usize,
    faults: adf_emulator::Faults,
) -> Emulator {
    adf_emulator::start(
        seed,
        Options {
            page_size,
            faults,
            ..Options::default()
        },
    )
    .await
    .expect("emulator starts")
}

/// The output of one run of the real binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The one JSON report on stdout, checked against the published schema.
    pub fn report(&self) -> Value {
        let report: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is one JSON report ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        schema::assert_valid_report(&report);
        report
    }
}

/// A `Command` for the real binary, pointed at the emulator, with nothing inherited that could reach Azure.
pub fn command(emu: &Emulator, scope: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ADF_REFRESH_")
            || k.starts_with("AZURE_")
            || k.starts_with("IDENTITY_")
            || k == "FUNCTIONS_CUSTOMHANDLER_PORT"
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(emu.env())
        .env("ADF_REFRESH_SCOPE", scope)
        .env("RUST_LOG", "info,adf_secret_refresh=debug");
    cmd
}

/// Runs the binary to completion (off the async runtime's threads).
pub async fn exec(mut cmd: Command) -> Run {
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Fails if any secret the emulator knows (values, tokens, keys) appears in `text`.
pub fn assert_no_secrets(emu: &Emulator, text: &str) {
    for secret in emu.known_secrets() {
        if secret.len() >= 8 {
            assert!(
                !text.contains(&secret),
                "a secret the emulator knows leaked into the output: {}…",
                &secret[..4]
            );
        }
    }
    for fake in [INLINE_ACCOUNT_KEY, SQL_PASSWORD_V2] {
        assert!(!text.contains(fake), "a seeded secret value leaked");
    }
}

pub fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| {
            panic!(
                "no target {name} in {}",
                serde_json::to_string_pretty(&report["targets"]).unwrap_or_default()
            )
        })
}

const AZURITE_VAR: &str = "ADF_REFRESH_TEST_AZURITE";

/// The Azurite account URL, or `None` (with a notice) when it is not configured outside CI.
pub fn azurite() -> Option<String> {
    match std::env::var(AZURITE_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{AZURITE_VAR} is not set, but CI is: the coordination tests must run against Azurite. \
             Start it with `scripts/azurite.sh start` and export {AZURITE_VAR} to the URL it prints."
        ),
        _ => {
            // Written past the test harness's capture, so that the skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {AZURITE_VAR} is not set (start Azurite with `scripts/azurite.sh start` and export \
                 {AZURITE_VAR}=<the URL it prints> to run the coordination tests)"
            );
            None
        }
    }
}
