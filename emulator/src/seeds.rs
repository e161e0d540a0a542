//! Seed data: the hand-written demo estate (`seeds/demo.json`, described in `seeds/README.md`) and a
//! deterministic generator of large estates for fault and benchmark runs.

use serde_json::{Value, json};

use crate::store::version_id;

/// The demo estate shipped in `emulator/seeds/demo.json`.
pub fn demo_seed() -> Value {
    serde_json::from_str(include_str!("../seeds/demo.json"))
        .expect("the embedded seeds/demo.json is valid JSON (checked by a unit test)")
}

/// The ARM scope of every subscription in a seed (`/subscriptions/{id}`), for `ADF_REFRESH_SCOPE`.
pub fn subscription_scopes(seed: &Value) -> Vec<String> {
    seed["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["subscriptionId"].as_str())
        .map(|id| format!("/subscriptions/{id}"))
        .collect()
}

/// The tenant every generated estate uses.
pub const LARGE_ESTATE_TENANT: &str = "4b1f8d6e-2c3a-4e5f-9a7b-0c1d2e3f4a5b";

const FACTORIES_PER_GROUP: usize = 5;
const GROUPS_PER_SUBSCRIPTION: usize = 4;

fn kv_reference(store: &str, secret: Value, version: Option<&str>) -> Value {
    let mut reference = json!({
        "type": "AzureKeyVaultSecret",
        "store": {"referenceName": store, "type": "LinkedServiceReference"},
        "secretName": secret,
    });
    if let (Some(version), Some(map)) = (version, reference.as_object_mut()) {
        map.insert("secretVersion".into(), json!(version));
    }
    reference
}

fn sql(server: &str, password: Value) -> Value {
    json!({
        "type": "AzureSqlDatabase",
        "typeProperties": {
            "connectionString": format!("Data Source=tcp:{server}.database.windows.net,1433;Initial Catalog=warehouse;User ID=etl;Encrypt=True;Connection Timeout=30"),
            "password": password,
        },
    })
}

/// A large estate, generated deterministically: `factories` factories (5 per resource group, 4 resource
/// groups per subscription), each with the two Key Vault linked services `ls_kv_contoso` and
/// `ls_kv_other` plus `linked_services_per_factory` data linked services.
///
/// The data linked services cycle through a fixed mix, by their global index `k`, out of every 20:
/// 14 plain references to `contoso-kv/sql-password` (every third of them `failUntilResaved`), 1 pinned to
/// the old version, 1 with an inline `SecureString` next to the reference, 1 to `other-kv`, 1 ambiguous
/// (secret name from a parameter default), 1 inline-only blob storage, and 1 plain reference through the
/// factory's self-hosted integration runtime `shir` (Online).
pub fn large_estate(factories: usize, linked_services_per_factory: usize) -> Value {
    let old_version = version_id(&["contoso-kv", "sql-password", "v1"]);
    // groups[g] holds the factories of resource group g; subscription = g / GROUPS_PER_SUBSCRIPTION.
    let mut groups: Vec<Vec<Value>> = Vec::new();
    for index in 0..factories {
        let group = index / FACTORIES_PER_GROUP;
        let name = format!("adf-bench-{index:05}");
        let mut linked_services = vec![
            json!({"name": "ls_kv_contoso", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}}),
            json!({"name": "ls_kv_other", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://other-kv.vault.azure.net/"}}}),
        ];
        for j in 0..linked_services_per_factory {
            let k = index * linked_services_per_factory + j;
            let server = format!("sql-{index:05}-{j:03}");
            let plain = || kv_reference("ls_kv_contoso", json!("sql-password"), None);
            let (ls_name, properties, test) = match k % 20 {
                14 => (
                    format!("ls_sql_pinned_{j:03}"),
                    sql(
                        &server,
                        kv_reference("ls_kv_contoso", json!("sql-password"), Some(&old_version)),
                    ),
                    json!({"outcome": "failure", "message": "Login failed for user 'etl'.", "code": "SqlFailedToConnect"}),
                ),
                15 => {
                    let mut properties = sql(&server, plain());
                    properties["typeProperties"]["connectionString"] = json!({
                        "type": "SecureString",
                        "value": format!("Data Source=tcp:{server}.database.windows.net,1433;Initial Catalog=warehouse;User ID=etl;Application Name=bench-{k}"),
                    });
                    (
                        format!("ls_sql_inline_{j:03}"),
                        properties,
                        json!({"outcome": "success"}),
                    )
                }
                16 => (
                    format!("ls_sql_otherkv_{j:03}"),
                    sql(
                        &server,
                        kv_reference("ls_kv_other", json!("sql-password"), None),
                    ),
                    json!({"outcome": "success"}),
                ),
                17 => {
                    let mut properties = sql(
                        &server,
                        kv_reference(
                            "ls_kv_contoso",
                            json!("@{linkedService().secretName}"),
                            None,
                        ),
                    );
                    properties["parameters"] =
                        json!({"secretName": {"type": "String", "defaultValue": "sql-password"}});
                    (
                        format!("ls_sql_param_{j:03}"),
                        properties,
                        json!({"outcome": "success"}),
                    )
                }
                18 => (
                    format!("ls_blob_{j:03}"),
                    json!({"type": "AzureBlobStorage", "typeProperties": {"connectionString": {
                        "type": "SecureString",
                        "value": format!("DefaultEndpointsProtocol=https;AccountName=benchstore{index:05};AccountKey=bench{k:08}key==;EndpointSuffix=core.windows.net"),
                    }}}),
                    json!({"outcome": "success"}),
                ),
                19 => {
                    let mut properties = sql(&server, plain());
                    properties["type"] = json!("SqlServer");
                    properties["connectVia"] =
                        json!({"referenceName": "shir", "type": "IntegrationRuntimeReference"});
                    (
                        format!("ls_sqlserver_{j:03}"),
                        properties,
                        json!({"outcome": "failUntilResaved", "message": "Login failed for user 'etl'.", "code": "SqlFailedToConnect"}),
                    )
                }
                _ => {
                    let test = if k.is_multiple_of(3) {
                        json!({"outcome": "failUntilResaved", "message": "Login failed for user 'etl'.", "code": "SqlFailedToConnect"})
                    } else {
                        json!({"outcome": "success"})
                    };
                    (format!("ls_sql_{j:03}"), sql(&server, plain()), test)
                }
            };
            linked_services.push(json!({"name": ls_name, "properties": properties, "test": test}));
        }
        let factory = json!({
            "name": name,
            "location": "westeurope",
            "linkedServices": linked_services,
            "integrationRuntimes": [{"name": "shir", "properties": {"type": "SelfHosted"}, "state": "Online"}],
        });
        if groups.len() <= group {
            groups.push(Vec::new());
        }
        groups[group].push(factory);
    }
    let subscriptions: Vec<Value> = groups
        .chunks(GROUPS_PER_SUBSCRIPTION)
        .enumerate()
        .map(|(sub, chunk)| {
            json!({
                "subscriptionId": format!("5eed{sub:04x}-0000-4000-8000-{sub:012x}"),
                "resourceGroups": chunk.iter().enumerate().map(|(i, factories)| json!({
                    "name": format!("rg-bench-{:04}", sub * GROUPS_PER_SUBSCRIPTION + i),
                    "factories": factories,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let versions = |vault: &str| {
        json!([
            {"version": version_id(&[vault, "sql-password", "v1"]), "value": format!("{vault}-sql-password-old-7Hq2"), "enabled": true, "created": 1_700_000_000},
            {"version": version_id(&[vault, "sql-password", "v2"]), "value": format!("{vault}-sql-password-new-Zp4x"), "enabled": true, "created": 1_710_000_000},
        ])
    };
    json!({
        "tenantId": LARGE_ESTATE_TENANT,
        "subscriptions": subscriptions,
        "vaults": [
            {"name": "contoso-kv", "secrets": [{"name": "sql-password", "versions": versions("contoso-kv")}]},
            {"name": "other-kv", "secrets": [{"name": "sql-password", "versions": versions("other-kv")}]},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn demo_seed_parses() {
        let store = Store::from_seed(&demo_seed()).expect("demo seed is valid");
        assert_eq!(store.factories.len(), 6);
        assert_eq!(store.subscriptions.len(), 2);
    }

    #[test]
    fn large_estate_is_deterministic_and_sized() {
        let a = large_estate(23, 10);
        assert_eq!(a, large_estate(23, 10));
        let store = Store::from_seed(&a).expect("generated seed is valid");
        assert_eq!(store.factories.len(), 23);
        assert_eq!(store.subscriptions.len(), 2);
        assert!(
            store
                .factories
                .iter()
                .all(|f| f.linked_services.len() == 12)
        );
    }
}
