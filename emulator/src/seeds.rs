//! Seed data: the hand-written demo estate (`seeds/demo.json`, described in `seeds/README.md`) and a
//! deterministic generator of large estates for fault and benchmark runs.

use serde_json::{Value, json};

use crate::util::version_id;

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
    large_estate_with(&LargeEstate {
        factories,
        linked_services_per_factory,
        ..LargeEstate::default()
    })
}

/// The shape of a generated estate: factories as in [`large_estate`], plus App Service sites and API
/// Management services beside them.
#[derive(Clone, Debug, Default)]
pub struct LargeEstate {
    pub factories: usize,
    pub linked_services_per_factory: usize,
    /// Sites (web apps, function apps and Logic Apps Standard in turn), 50 to a resource group
    /// `rg-bench-apps-NNNN`. Every fourth site has a `staging` slot.
    pub sites: usize,
    /// API Management services, 25 to a resource group `rg-bench-apim-NNNN`, each with three named values:
    /// `sql-password` (Key Vault, versionless), `sql-password-pinned` (the old version) and `environment`
    /// (plain).
    pub api_management_services: usize,
}

const SITES_PER_GROUP: usize = 50;
const SERVICES_PER_GROUP: usize = 25;

/// Site `index` of a generated estate. Out of every 10: 7 reference `contoso-kv/sql-password` unpinned
/// (`SecretUri`), 1 in the `VaultName` form with a connection string too, 1 pinned to the old version, 1
/// references `other-kv`. Each also has a plain setting, which is never listed.
fn bench_site(index: usize, old_version: &str) -> Value {
    let uri = |vault: &str, version: &str| {
        format!(
            "@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/sql-password/{version})"
        )
    };
    let kind = ["app", "functionapp,linux", "functionapp,workflowapp"][index % 3];
    let mut app_settings = serde_json::Map::new();
    let mut connection_strings = serde_json::Map::new();
    app_settings.insert("WEBSITE_RUN_FROM_PACKAGE".into(), json!("1"));
    match index % 10 {
        7 => {
            let named = "@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=sql-password)";
            app_settings.insert("SqlPassword".into(), json!(named));
            connection_strings.insert("Sales".into(), json!(named));
        }
        8 => {
            app_settings.insert("SqlPassword".into(), json!(uri("contoso-kv", old_version)));
        }
        9 => {
            app_settings.insert("SqlPassword".into(), json!(uri("other-kv", "")));
        }
        _ => {
            app_settings.insert("SqlPassword".into(), json!(uri("contoso-kv", "")));
        }
    }
    let mut site = json!({
        "name": format!("app-bench-{index:05}"),
        "kind": kind,
        "appSettings": app_settings,
        "connectionStrings": connection_strings,
    });
    if index % 4 == 3 {
        site["slots"] =
            json!([{"name": "staging", "appSettings": {"SqlPassword": uri("contoso-kv", "")}}]);
    }
    site
}

fn bench_service(index: usize, old_version: &str) -> Value {
    json!({
        "name": format!("apim-bench-{index:04}"),
        "namedValues": [
            {"name": "sql-password", "keyVault": {"secretIdentifier": "https://contoso-kv.vault.azure.net/secrets/sql-password"}},
            {"name": "sql-password-pinned", "keyVault": {"secretIdentifier": format!("https://contoso-kv.vault.azure.net/secrets/sql-password/{old_version}")}},
            {"name": "environment", "value": "bench"},
        ],
    })
}

/// A large estate of the given shape, generated deterministically (see [`LargeEstate`]).
pub fn large_estate_with(shape: &LargeEstate) -> Value {
    let LargeEstate {
        factories,
        linked_services_per_factory,
        sites,
        api_management_services,
    } = *shape;
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
    let mut subscriptions: Vec<Value> = groups
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
    // Sites and API Management services get resource groups of their own, spread over the subscriptions.
    let mut extra_groups: Vec<Value> = (0..sites.div_ceil(SITES_PER_GROUP))
        .map(|g| {
            let range = g * SITES_PER_GROUP..((g + 1) * SITES_PER_GROUP).min(sites);
            json!({
                "name": format!("rg-bench-apps-{g:04}"),
                "sites": range.map(|i| bench_site(i, &old_version)).collect::<Vec<_>>(),
            })
        })
        .collect();
    extra_groups.extend(
        (0..api_management_services.div_ceil(SERVICES_PER_GROUP)).map(|g| {
            let range =
                g * SERVICES_PER_GROUP..((g + 1) * SERVICES_PER_GROUP).min(api_management_services);
            json!({
                "name": format!("rg-bench-apim-{g:04}"),
                "apiManagement": range.map(|i| bench_service(i, &old_version)).collect::<Vec<_>>(),
            })
        }),
    );
    if subscriptions.is_empty() && !extra_groups.is_empty() {
        subscriptions.push(json!({
            "subscriptionId": format!("5eed{:04x}-0000-4000-8000-{:012x}", 0, 0),
            "resourceGroups": [],
        }));
    }
    let count = subscriptions.len().max(1);
    for (g, group) in extra_groups.into_iter().enumerate() {
        if let Some(groups) = subscriptions[g % count]["resourceGroups"].as_array_mut() {
            groups.push(group);
        }
    }
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
    fn large_estates_grow_sites_slots_and_api_management_services() {
        let shape = LargeEstate {
            factories: 23,
            linked_services_per_factory: 2,
            sites: 120,
            api_management_services: 30,
        };
        let seed = large_estate_with(&shape);
        assert_eq!(seed, large_estate_with(&shape));
        let store = Store::from_seed(&seed).expect("generated seed is valid");
        let sites = crate::appservice_model::Estate::from_seed(&seed, &store, 0).expect("sites");
        assert_eq!(sites.sites.len(), 120);
        let slots: usize = sites.sites.iter().map(|s| s.targets.len() - 1).sum();
        assert_eq!(slots, 30);
        let apim = crate::apim_model::Estate::from_seed(&seed, &store, 0).expect("services");
        assert_eq!(apim.services.len(), 30);
        assert_eq!(store.factories.len(), 23);
        let only_apps = large_estate_with(&LargeEstate {
            sites: 3,
            ..LargeEstate::default()
        });
        assert!(Store::from_seed(&only_apps).is_ok());
        assert_eq!(
            large_estate(5, 3),
            large_estate_with(&LargeEstate {
                factories: 5,
                linked_services_per_factory: 3,
                ..LargeEstate::default()
            })
        );
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
