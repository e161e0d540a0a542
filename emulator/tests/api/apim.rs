//! API Management: services and named values over ARM (`Microsoft.ApiManagement`, 2024-05-01), the
//! long-running `refreshSecret`, the 4-hour refetch, its faults, and `listValue` always refused.

use adf_emulator::{Faults, PageFault, PageFaultKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, Reply, SUB, TENANT};

const OLD: &str = "00000000000000000000000000000001";
const NEW: &str = "00000000000000000000000000000002";

fn seed() -> Value {
    json!({
        "tenantId": TENANT,
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": "rg1", "apiManagement": [
                {"name": "apim1", "retryAfterSecs": 0, "namedValues": [
                    {"name": "sql-password", "displayName": "sql-password",
                     "keyVault": {"secretIdentifier": "https://kv1.vault.azure.net/secrets/sql-password"}},
                    {"name": "sql-pinned", "keyVault": {"secretIdentifier": format!("https://kv1.vault.azure.net/secrets/sql-password/{OLD}"), "identityClientId": "2d2df842-44d8-4885-8dec-77cc1a984a31"}},
                    {"name": "plain", "value": "plain-value", "tags": ["foo"]},
                    {"name": "hidden", "secret": true, "value": "TEST-ONLY-apim-hidden"}
                ]},
                {"name": "apim-denied", "keyVaultAccess": false, "retryAfterSecs": 0, "namedValues": [
                    {"name": "sql-password", "keyVault": {"secretIdentifier": "https://kv1.vault.azure.net/secrets/sql-password"}}
                ]}
            ]},
            {"name": "rg2", "apiManagement": [
                {"name": "apim-slow", "refreshPolls": 3, "retryAfterSecs": 2, "namedValues": [
                    {"name": "sql-password", "keyVault": {"secretIdentifier": "https://kv1.vault.azure.net/secrets/sql-password"}}
                ]}
            ]}
        ]}],
        "vaults": [{"name": "kv1", "secrets": [{"name": "sql-password", "versions": [
            {"version": OLD, "value": "TEST-ONLY-old-value", "created": 1700000000},
            {"version": NEW, "value": "TEST-ONLY-new-value", "created": 1710000000}
        ]}]}]
    })
}

fn service(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}"
    )
}

impl Harness {
    async fn apim(&self, method: Method, path: &str) -> Reply {
        let token = self.token(ARM).await;
        let url = if path.contains("api-version=") || path.starts_with("https://") {
            path.to_owned()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}api-version=2024-05-01")
        };
        self.send(method, &url, Some(&token), None, &[]).await
    }

    async fn cached(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/_emulator/named-value", self.emu.http_url()))
            .query(&[("id", id)])
            .send()
            .await
            .expect("control")
            .json()
            .await
            .expect("JSON")
    }
}

#[tokio::test]
async fn services_and_named_values_are_listed_and_read_in_the_spec_shapes() {
    let h = Harness::start(seed()).await;
    let all = h
        .apim(
            Method::GET,
            &format!("/subscriptions/{SUB}/providers/Microsoft.ApiManagement/service"),
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let names: Vec<&str> = all.body["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["apim1", "apim-denied", "apim-slow"]);
    let rg1 = h
        .apim(
            Method::GET,
            &format!(
                "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service"
            ),
        )
        .await;
    assert_eq!(rg1.body["value"].as_array().map(Vec::len), Some(2));
    let apim1 = h.apim(Method::GET, &service("rg1", "apim1")).await.body;
    assert_eq!(apim1["id"], service("rg1", "apim1"));
    assert_eq!(apim1["type"], "Microsoft.ApiManagement/service");
    assert_eq!(apim1["identity"]["type"], "SystemAssigned");
    assert_eq!(
        apim1["properties"]["gatewayUrl"],
        "https://apim1.azure-api.net"
    );

    let list = h
        .apim(
            Method::GET,
            &format!("{}/namedValues", service("rg1", "apim1")),
        )
        .await
        .body;
    assert_eq!(list["count"], 4);
    let items = list["value"].as_array().expect("value");
    let kv = &items[0];
    assert_eq!(
        kv["id"],
        format!("{}/namedValues/sql-password", service("rg1", "apim1"))
    );
    assert_eq!(kv["type"], "Microsoft.ApiManagement/service/namedValues");
    let p = &kv["properties"];
    assert_eq!(p["displayName"], "sql-password");
    assert_eq!(p["secret"], true);
    assert!(p.get("value").is_none(), "never a value for a secret one");
    assert_eq!(
        p["keyVault"]["secretIdentifier"],
        "https://kv1.vault.azure.net/secrets/sql-password"
    );
    assert_eq!(p["keyVault"]["identityClientId"], Value::Null);
    assert_eq!(p["keyVault"]["lastStatus"]["code"], "Success");
    assert!(p["keyVault"]["lastStatus"]["timeStampUtc"].is_string());
    assert_eq!(items[2]["properties"]["value"], "plain-value");
    assert_eq!(items[2]["properties"]["secret"], false);
    assert!(items[3]["properties"].get("value").is_none());
    assert!(!list.to_string().contains("TEST-ONLY"));

    let one = h
        .apim(
            Method::GET,
            &format!("{}/namedValues/sql-pinned", service("rg1", "apim1")),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.header("etag").is_some_and(|e| e.starts_with('"')));
    assert_eq!(
        h.apim(
            Method::GET,
            &format!("{}/namedValues/nope", service("rg1", "apim1"))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let wrong = h
        .apim(
            Method::GET,
            &format!("{}?api-version=2018-06-01", service("rg1", "apim1")),
        )
        .await;
    assert_eq!(wrong.body["error"]["code"], "InvalidApiVersionParameter");
}

#[tokio::test]
async fn refresh_secret_is_long_running_and_brings_the_rotated_version() {
    let h = Harness::start(seed()).await;
    let nv = format!("{}/namedValues/sql-password", service("rg1", "apim1"));
    assert_eq!(h.cached(&nv).await["version"], NEW);
    let rotated = h.emu.rotate("kv1", "sql-password").expect("rotates");
    assert_eq!(
        h.cached(&nv).await["version"],
        NEW,
        "cached until refreshed"
    );

    let started = h.apim(Method::POST, &format!("{nv}/refreshSecret")).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let location = started.header("location").expect("location").to_owned();
    assert!(
        location.starts_with(&format!(
            "{}{nv}/refreshSecret?api-version=2024-05-01&asyncId=",
            h.emu.https_url()
        )),
        "{location}"
    );
    assert!(location.ends_with("&asyncCode=201"));
    let async_operation = started
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_owned();
    assert!(async_operation.contains(&format!(
        "{}/tenant/operationResults/",
        service("rg1", "apim1")
    )));
    assert_eq!(started.header("retry-after"), Some("0"));

    let status = h.apim(Method::GET, &async_operation).await;
    assert_eq!(status.status, StatusCode::ACCEPTED);
    assert_eq!(status.body["status"], "InProgress");
    let done = h.apim(Method::GET, &location).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["name"], "sql-password");
    assert_eq!(
        done.body["properties"]["keyVault"]["lastStatus"]["code"],
        "Success"
    );
    assert_eq!(
        done.body["properties"]["keyVault"]["lastStatus"]["message"],
        ""
    );
    assert!(done.header("etag").is_some());
    let again = h.apim(Method::GET, &location).await;
    assert_eq!(
        again.body, done.body,
        "a finished operation keeps its answer"
    );
    assert_eq!(
        h.apim(Method::GET, &async_operation).await.body["status"],
        "Succeeded"
    );
    let cached = h.cached(&nv).await;
    assert_eq!(cached["version"], rotated.as_str());
    assert_eq!(cached["refreshes"], 1);
    assert_eq!(h.emu.counters().named_value_refreshes, 1);

    // A pinned named value stays on its version.
    let pinned = format!("{}/namedValues/sql-pinned", service("rg1", "apim1"));
    let started = h
        .apim(Method::POST, &format!("{pinned}/refreshSecret"))
        .await;
    let location = started.header("location").expect("location").to_owned();
    h.apim(Method::GET, &location).await;
    assert_eq!(h.apim(Method::GET, &location).await.status, StatusCode::OK);
    assert_eq!(h.cached(&pinned).await["version"], OLD);

    // A plain named value has nothing to refresh.
    let plain = h
        .apim(
            Method::POST,
            &format!(
                "{}/namedValues/plain/refreshSecret",
                service("rg1", "apim1")
            ),
        )
        .await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_denied_identity_ends_the_refresh_with_a_failed_last_status_and_keeps_what_it_held() {
    let h = Harness::start(seed()).await;
    let nv = format!("{}/namedValues/sql-password", service("rg1", "apim-denied"));
    let before = h.cached(&nv).await;
    assert_eq!(before["lastStatus"]["code"], "Forbidden");
    h.emu.rotate("kv1", "sql-password").expect("rotates");
    let started = h.apim(Method::POST, &format!("{nv}/refreshSecret")).await;
    let location = started.header("location").expect("location").to_owned();
    h.apim(Method::GET, &location).await;
    let done = h.apim(Method::GET, &location).await;
    assert_eq!(done.status, StatusCode::OK);
    let status = &done.body["properties"]["keyVault"]["lastStatus"];
    assert_eq!(status["code"], "Forbidden");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("denied"))
    );
    assert_eq!(h.cached(&nv).await["version"], Value::Null, "never fetched");
}

#[tokio::test]
async fn polls_are_configurable_and_the_cache_refetches_after_4_hours() {
    let h = Harness::start(seed()).await;
    let nv = format!("{}/namedValues/sql-password", service("rg2", "apim-slow"));
    let rotated = h.emu.rotate("kv1", "sql-password").expect("rotates");
    let started = h.apim(Method::POST, &format!("{nv}/refreshSecret")).await;
    assert_eq!(started.header("retry-after"), Some("2"));
    let location = started.header("location").expect("location").to_owned();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(h.apim(Method::GET, &location).await.status.as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 200]);

    let other = format!("{}/namedValues/sql-password", service("rg1", "apim1"));
    assert_eq!(h.cached(&other).await["version"], NEW);
    h.emu.advance_hours(3);
    assert_eq!(h.cached(&other).await["version"], NEW, "not yet");
    h.emu.advance_hours(1);
    let refetched = h.cached(&other).await;
    assert_eq!(refetched["version"], rotated.as_str());
    assert_eq!(refetched["refreshes"], 0);
}

#[tokio::test]
async fn a_refresh_can_be_made_to_never_end_or_to_fail() {
    let h = Harness::start(seed()).await;
    let nv = format!("{}/namedValues/sql-password", service("rg1", "apim1"));
    h.emu.set_faults(Faults {
        apim_refresh_never_ends: true,
        ..Faults::default()
    });
    let started = h.apim(Method::POST, &format!("{nv}/refreshSecret")).await;
    let location = started.header("location").expect("location").to_owned();
    for _ in 0..5 {
        assert_eq!(
            h.apim(Method::GET, &location).await.status,
            StatusCode::ACCEPTED
        );
    }

    let control = format!("{}/_emulator/faults", h.emu.http_url());
    h.client
        .put(&control)
        .json(&json!({"apimRefreshFails": true}))
        .send()
        .await
        .expect("control");
    let rotated = h.emu.rotate("kv1", "sql-password").expect("rotates");
    let started = h.apim(Method::POST, &format!("{nv}/refreshSecret")).await;
    let location = started.header("location").expect("location").to_owned();
    let async_operation = started
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_owned();
    h.apim(Method::GET, &location).await;
    let failed = h.apim(Method::GET, &location).await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    assert_eq!(failed.body["error"]["code"], "OperationFailed");
    let status = h.apim(Method::GET, &async_operation).await.body;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "OperationFailed");
    assert_ne!(h.cached(&nv).await["version"], rotated.as_str());
}

#[tokio::test]
async fn list_value_is_refused_and_counted_and_page_faults_reach_named_values() {
    let h = Harness::start(seed()).await;
    let reply = h
        .apim(
            Method::POST,
            &format!("{}/namedValues/hidden/listValue", service("rg1", "apim1")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["error"]["code"], "AuthorizationFailed");
    assert!(!reply.body.to_string().contains("TEST-ONLY"));
    assert_eq!(h.emu.counters().secret_read_attempts, 1);

    h.emu.set_faults(Faults {
        page_faults: vec![PageFault {
            collection: "namedValues".into(),
            kind: PageFaultKind::NonObjectItem,
            times: 1,
        }],
        ..Faults::default()
    });
    let path = format!("{}/namedValues", service("rg1", "apim1"));
    assert_eq!(h.apim(Method::GET, &path).await.body["value"][0], json!(42));
    assert!(h.apim(Method::GET, &path).await.body["value"][0].is_object());
}
