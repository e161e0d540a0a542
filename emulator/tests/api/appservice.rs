//! App Service: sites and slots over ARM (`Microsoft.Web`), their Key Vault references with cached
//! versions, the refresh POST, the 24-hour refetch, and the secret-reading calls that are always refused.

use adf_emulator::{Faults, Options, PageFault, PageFaultKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, SUB, TENANT};

const OLD: &str = "00000000000000000000000000000001";
const NEW: &str = "00000000000000000000000000000002";
const URI_REF: &str =
    "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/sql-password/)";
const NAMED_REF: &str = "@Microsoft.KeyVault(VaultName=kv1;SecretName=sql-password)";

fn seed() -> Value {
    let pinned = format!(
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/sql-password/{OLD})"
    );
    json!({
        "tenantId": TENANT,
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": "rg1", "sites": [
                {"name": "web1", "kind": "app",
                 "appSettings": {"Sql": URI_REF, "WEBSITE_RUN_FROM_PACKAGE": "1"},
                 "connectionStrings": {"Db": NAMED_REF},
                 "slots": [{"name": "staging", "appSettings": {"Sql": URI_REF}}]},
                {"name": "func1", "kind": "functionapp,linux", "keyVaultAccess": false,
                 "appSettings": {"Sql": URI_REF}},
                {"name": "logic1", "kind": "functionapp,workflowapp", "activeVersionFilled": true,
                 "appSettings": {"Sql": NAMED_REF, "Pinned": pinned}}
            ]},
            {"name": "rg2", "sites": [
                {"name": "cases", "kind": "app", "appSettings": {
                    "Bad": "@Microsoft.KeyVault(sql-password)",
                    "NoSecret": "@Microsoft.KeyVault(VaultName=kv1;SecretName=nope)",
                    "NoVault": "@Microsoft.KeyVault(VaultName=kv-gone;SecretName=sql-password)",
                    "China": "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.cn/secrets/sql-password/)",
                    "NoVersion": "@Microsoft.KeyVault(VaultName=kv1;SecretName=sql-password;SecretVersion=ffff)"
                 }},
                {"name": "noid", "identity": null, "appSettings": {"Sql": URI_REF}}
            ]}
        ]}],
        "vaults": [{"name": "kv1", "secrets": [{"name": "sql-password", "versions": [
            {"version": OLD, "value": "TEST-ONLY-old-value", "created": 1700000000},
            {"version": NEW, "value": "TEST-ONLY-new-value", "created": 1710000000}
        ]}]}]
    })
}

fn site(rg: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}")
}

impl Harness {
    async fn web(&self, method: Method, path: &str) -> crate::Reply {
        let token = self.token(ARM).await;
        let url = if path.contains("api-version=") || path.starts_with("https://") {
            path.to_owned()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}api-version=2024-11-01")
        };
        self.send(method, &url, Some(&token), None, &[]).await
    }

    async fn reference(&self, id: &str, kind: &str, name: &str) -> Value {
        self.client
            .get(format!("{}/_emulator/site-reference", self.emu.http_url()))
            .query(&[("id", id), ("kind", kind), ("name", name)])
            .send()
            .await
            .expect("control")
            .json()
            .await
            .expect("JSON")
    }
}

#[tokio::test]
async fn sites_and_slots_are_listed_and_read_in_the_spec_shapes() {
    let h = Harness::start_with(
        seed(),
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let mut names = Vec::new();
    let mut next = Some(format!(
        "/subscriptions/{SUB}/providers/Microsoft.Web/sites?api-version=2022-03-01"
    ));
    let mut pages = 0;
    while let Some(link) = next {
        let reply = h.web(Method::GET, &link).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages += 1;
        for s in reply.body["value"].as_array().expect("value") {
            assert_eq!(s["type"], "Microsoft.Web/sites");
            names.push(s["name"].as_str().expect("name").to_owned());
        }
        next = reply.body["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.starts_with(&h.emu.https_url()));
            assert!(link.contains("api-version=2022-03-01"), "{link}");
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["web1", "func1", "logic1", "cases", "noid"]);

    let rg2 = h
        .web(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Web/sites"),
        )
        .await;
    assert_eq!(rg2.body["value"].as_array().map(Vec::len), Some(2));

    let web1 = h.web(Method::GET, &site("rg1", "web1")).await.body;
    assert_eq!(web1["id"], site("rg1", "web1"));
    assert_eq!(web1["kind"], "app");
    assert_eq!(web1["identity"]["type"], "SystemAssigned");
    assert_eq!(
        web1["properties"]["defaultHostName"],
        "web1.azurewebsites.net"
    );
    assert_eq!(web1["properties"]["state"], "Running");
    let logic = h.web(Method::GET, &site("rg1", "logic1")).await.body;
    assert_eq!(logic["kind"], "functionapp,workflowapp");
    let noid = h.web(Method::GET, &site("rg2", "noid")).await.body;
    assert!(noid.get("identity").is_none());

    let slots = h
        .web(Method::GET, &format!("{}/slots", site("rg1", "web1")))
        .await
        .body;
    let slot = &slots["value"][0];
    assert_eq!(slot["id"], format!("{}/slots/staging", site("rg1", "web1")));
    assert_eq!(slot["name"], "web1/staging");
    assert_eq!(slot["type"], "Microsoft.Web/sites/slots");
    let got = h
        .web(
            Method::GET,
            &format!("{}/slots/staging", site("rg1", "web1")),
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "web1/staging");
    assert_eq!(
        h.web(Method::GET, &format!("{}/slots/nope", site("rg1", "web1")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.web(Method::GET, &site("rg1", "nope")).await.status,
        StatusCode::NOT_FOUND
    );

    let missing = h
        .web(
            Method::GET,
            &format!("{}?api-version=2018-06-01", site("rg1", "web1")),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"]["code"], "InvalidApiVersionParameter");
    let token = h.token(ARM).await;
    let none = h
        .send(Method::GET, &site("rg1", "web1"), Some(&token), None, &[])
        .await;
    assert_eq!(none.body["error"]["code"], "MissingApiVersionParameter");
    let anonymous = h
        .send(
            Method::GET,
            &format!("{}?api-version=2023-12-01", site("rg1", "web1")),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        none.header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
}

#[tokio::test]
async fn only_key_vault_references_are_listed_each_with_its_status() {
    let h = Harness::start(seed()).await;
    let list = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings",
                site("rg1", "web1")
            ),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body["value"].as_array().expect("value");
    assert_eq!(items.len(), 1, "the plain setting is never listed");
    let sql = &items[0];
    assert_eq!(
        sql["id"],
        format!(
            "{}/config/configreferences/appsettings/Sql",
            site("rg1", "web1")
        )
    );
    assert_eq!(sql["name"], "Sql");
    assert_eq!(sql["type"], "Microsoft.Web/sites/config/configreferences");
    let p = &sql["properties"];
    assert_eq!(p["reference"], URI_REF);
    assert_eq!(p["status"], "Resolved");
    assert_eq!(p["vaultName"], "kv1");
    assert_eq!(p["secretName"], "sql-password");
    assert!(p.get("secretVersion").is_none());
    assert_eq!(p["identityType"], "SystemAssigned");
    assert_eq!(p["source"], "KeyVault");
    assert_eq!(p["activeVersion"], Value::Null);
    assert!(p["details"].is_string());

    let db = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/connectionstrings/Db",
                site("rg1", "web1")
            ),
        )
        .await;
    assert_eq!(db.body["properties"]["reference"], NAMED_REF);
    assert_eq!(db.body["properties"]["status"], "Resolved");
    let slot_setting = h
        .web(
            Method::GET,
            &format!(
                "{}/slots/staging/config/configreferences/appsettings/Sql",
                site("rg1", "web1")
            ),
        )
        .await;
    assert_eq!(
        slot_setting.body["id"],
        format!(
            "{}/slots/staging/config/configreferences/appsettings/Sql",
            site("rg1", "web1")
        )
    );
    assert_eq!(
        h.web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings/WEBSITE_RUN_FROM_PACKAGE",
                site("rg1", "web1")
            ),
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let logic = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings",
                site("rg1", "logic1")
            ),
        )
        .await
        .body;
    let by_name = |body: &Value, name: &str| {
        body["value"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["name"] == name).cloned())
            .expect(name)
    };
    assert_eq!(
        by_name(&logic, "Sql")["properties"]["activeVersion"],
        NEW,
        "seed flag"
    );
    assert_eq!(
        by_name(&logic, "Pinned")["properties"]["secretVersion"],
        OLD
    );
    assert_eq!(
        by_name(&logic, "Pinned")["properties"]["activeVersion"],
        OLD
    );

    let cases = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings",
                site("rg2", "cases")
            ),
        )
        .await
        .body;
    for (name, status) in [
        ("Bad", "InvalidSyntax"),
        ("NoSecret", "SecretNotFound"),
        ("NoVault", "VaultNotFound"),
        ("China", "VaultNotFound"),
        ("NoVersion", "SecretVersionNotFound"),
    ] {
        assert_eq!(
            by_name(&cases, name)["properties"]["status"],
            status,
            "{name}"
        );
    }
    let noid = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings/Sql",
                site("rg2", "noid")
            ),
        )
        .await
        .body;
    assert_eq!(noid["properties"]["status"], "MSINotEnabled");
    assert!(noid["properties"].get("identityType").is_none());
    let func = h
        .web(
            Method::GET,
            &format!(
                "{}/config/configreferences/appsettings/Sql",
                site("rg1", "func1")
            ),
        )
        .await
        .body;
    assert_eq!(func["properties"]["status"], "AccessToKeyVaultDenied");
}

#[tokio::test]
async fn a_rotation_keeps_the_old_version_until_the_refresh_post_or_24_hours() {
    let h = Harness::start(seed()).await;
    let web1 = site("rg1", "web1");
    let staging = format!("{web1}/slots/staging");
    assert_eq!(
        h.reference(&web1, "appsettings", "Sql").await["version"],
        NEW
    );

    let rotated: Value = h
        .client
        .post(format!("{}/_emulator/rotate", h.emu.http_url()))
        .json(&json!({"vault": "kv1", "secret": "sql-password"}))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    let newest = rotated["version"].as_str().expect("version").to_owned();
    assert_eq!(
        h.reference(&web1, "appsettings", "Sql").await["version"],
        NEW,
        "cached"
    );

    let refresh = h
        .web(
            Method::POST,
            &format!("{web1}/config/configreferences/appsettings/refresh"),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::OK);
    assert_eq!(refresh.body["id"], Value::Null);
    assert_eq!(refresh.body["nextLink"], Value::Null);
    assert_eq!(refresh.body["value"][0]["properties"]["status"], "Resolved");
    assert_eq!(refresh.body["value"][0]["name"], "Sql");
    let after = h.reference(&web1, "appsettings", "Sql").await;
    assert_eq!(after["version"], newest.as_str());
    assert_eq!(after["refreshes"], 1);
    assert_eq!(
        h.reference(&web1, "connectionstrings", "Db").await["version"],
        newest.as_str(),
        "connection strings are re-resolved by default"
    );
    assert_eq!(
        h.reference(&staging, "appsettings", "Sql").await["version"],
        NEW,
        "the slot has its own cache"
    );
    assert_eq!(h.emu.site_refreshes(&staging), Some(0));

    // The other possibility: the refresh leaves connection strings alone.
    h.emu.rotate("kv1", "sql-password").expect("rotates");
    h.emu.set_faults(Faults {
        refresh_skips_connection_strings: true,
        ..Faults::default()
    });
    h.web(
        Method::POST,
        &format!("{web1}/config/configreferences/appsettings/refresh"),
    )
    .await;
    assert_ne!(
        h.reference(&web1, "appsettings", "Sql").await["version"],
        newest.as_str()
    );
    assert_eq!(
        h.reference(&web1, "connectionstrings", "Db").await["version"],
        newest.as_str()
    );

    // 24 hours of emulator time later, every cache has refetched.
    let advanced = h
        .client
        .post(format!("{}/_emulator/advance", h.emu.http_url()))
        .json(&json!({"hours": 24}))
        .send()
        .await
        .expect("control");
    assert_eq!(advanced.status(), StatusCode::OK);
    let slot_now = h.reference(&staging, "appsettings", "Sql").await;
    assert_ne!(slot_now["version"], NEW);
    assert_ne!(slot_now["version"], newest.as_str());
    assert_eq!(slot_now["refreshes"], 0);
    assert_eq!(h.emu.counters().app_service_refreshes, 2);
}

#[tokio::test]
async fn a_refresh_with_a_denied_identity_ends_access_denied_and_slots_refresh_on_their_own_id() {
    let h = Harness::start(seed()).await;
    let func = site("rg1", "func1");
    let reply = h
        .web(
            Method::POST,
            &format!("{func}/config/configreferences/appsettings/refresh"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body["value"][0]["properties"]["status"],
        "AccessToKeyVaultDenied"
    );
    assert_eq!(
        h.reference(&func, "appsettings", "Sql").await["status"],
        "AccessToKeyVaultDenied"
    );
    let staging = format!("{}/slots/staging", site("rg1", "web1"));
    h.emu.rotate("kv1", "sql-password").expect("rotates");
    let reply = h
        .web(
            Method::POST,
            &format!("{staging}/config/configreferences/appsettings/refresh"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(h.emu.site_refreshes(&staging), Some(1));
    assert_eq!(h.emu.site_refreshes(&site("rg1", "web1")), Some(0));
    assert_ne!(
        h.reference(&staging, "appsettings", "Sql").await["version"],
        NEW
    );
}

#[tokio::test]
async fn calls_that_return_setting_values_are_refused_and_counted() {
    let h = Harness::start(seed()).await;
    for path in [
        format!("{}/config/appsettings/list", site("rg1", "web1")),
        format!("{}/config/connectionstrings/list", site("rg1", "web1")),
        format!(
            "{}/slots/staging/config/appsettings/list",
            site("rg1", "web1")
        ),
    ] {
        let reply = h.web(Method::POST, &path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.body["error"]["code"], "AuthorizationFailed");
        assert!(!reply.body.to_string().contains("TEST-ONLY"));
    }
    assert_eq!(h.emu.counters().secret_read_attempts, 3);
}

#[tokio::test]
async fn page_faults_apply_to_app_service_collections_by_their_last_segment() {
    let h = Harness::start(seed()).await;
    for (collection, path) in [
        (
            "sites",
            format!("/subscriptions/{SUB}/providers/Microsoft.Web/sites"),
        ),
        ("slots", format!("{}/slots", site("rg1", "web1"))),
        (
            "appsettings",
            format!(
                "{}/config/configreferences/appsettings",
                site("rg1", "web1")
            ),
        ),
        (
            "connectionstrings",
            format!(
                "{}/config/configreferences/connectionstrings",
                site("rg1", "web1")
            ),
        ),
    ] {
        h.emu.set_faults(Faults {
            page_faults: vec![PageFault {
                collection: collection.into(),
                kind: PageFaultKind::NullItem,
                times: 1,
            }],
            ..Faults::default()
        });
        let broken = h.web(Method::GET, &path).await;
        assert_eq!(broken.body["value"][0], Value::Null, "{collection}");
        let healthy = h.web(Method::GET, &path).await;
        assert!(healthy.body["value"][0].is_object(), "{collection}");
    }
}
