//! The listing faults the product's pager must survive: a `null` or non-object item, a `nextLink` that
//! loops to the first page, Key Vault versions pages that carry an error object or point at another port,
//! and Synapse PUTs throttled with `Retry-After`.

use adf_emulator::{
    Faults, KvPageFault, KvPageFaultKind, Options, PageFault, PageFaultKind, Synapse429,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, TENANT, VAULT, estate, factory_path, kv_ref};

const DEV: &str = "https://dev.azuresynapse.net";

fn page_fault(collection: &str, kind: PageFaultKind, times: u64) -> Faults {
    Faults {
        page_faults: vec![PageFault {
            collection: collection.into(),
            kind,
            times,
        }],
        ..Faults::default()
    }
}

fn credential(name: &str) -> Value {
    json!({"name": name, "properties": {"type": "ServicePrincipal", "typeProperties": {
        "servicePrincipalId": "00000000-0000-0000-0000-00000000abcd",
        "tenant": TENANT,
        "servicePrincipalKey": kv_ref("ls_kv", "sql-password")}}})
}

/// A factory `f1` (3 inline linked services, 2 credentials) and a Synapse workspace `syn-one` beside it.
fn seed() -> Value {
    let mut seed = estate(3, vec![], vec![], vec![credential("c1"), credential("c2")]);
    seed["subscriptions"][0]["resourceGroups"][1]["workspaces"] = json!([{
        "name": "syn-one",
        "retryAfterSecs": 0,
        "linkedServices": [
            {"name": "ls_kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://kv1.vault.azure.net/"}}},
            {"name": "ls_sql", "properties": {"type": "AzureSqlDW", "typeProperties": {"password": kv_ref("ls_kv", "sql-password")}}}
        ],
        "credentials": [credential("cred_sp")]
    }]);
    seed
}

/// Whether the answer broke off: the client sees an error before or while reading the body.
async fn cut_off(request: reqwest::RequestBuilder) -> bool {
    match request.send().await {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    }
}

fn dev_url(h: &Harness, path: &str) -> String {
    format!(
        "{}/synapse/syn-one/{path}?api-version=2020-12-01",
        h.emu.https_url()
    )
}

#[tokio::test]
async fn a_null_or_non_object_item_replaces_one_item_of_a_linked_service_or_credential_page_once() {
    let h = Harness::start(seed()).await;
    let token = h.token(ARM).await;
    let list = |collection: &str| {
        format!(
            "{}/{collection}?api-version=2018-06-01",
            factory_path("rg1", "f1")
        )
    };
    for (collection, kind, expected) in [
        ("linkedservices", PageFaultKind::NullItem, Value::Null),
        ("credentials", PageFaultKind::NullItem, Value::Null),
        ("linkedservices", PageFaultKind::NonObjectItem, json!(42)),
        ("credentials", PageFaultKind::NonObjectItem, json!(42)),
    ] {
        h.emu.set_faults(page_fault(collection, kind, 1));
        let broken = h
            .send(Method::GET, &list(collection), Some(&token), None, &[])
            .await;
        assert_eq!(broken.status, StatusCode::OK);
        let items = broken.body["value"].as_array().expect("value");
        assert_eq!(items[0], expected, "{collection} {kind:?}");
        assert!(items[1..].iter().all(Value::is_object));
        let healthy = h
            .send(Method::GET, &list(collection), Some(&token), None, &[])
            .await;
        assert!(
            healthy.body["value"]
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_object)),
            "the fault was for one answer only"
        );
    }
}

#[tokio::test]
async fn synapse_listings_take_every_page_fault() {
    let h = Harness::start(seed()).await;
    let token = h.token(DEV).await;
    let get = |path: &str| {
        let url = dev_url(&h, path);
        let token = token.clone();
        let h = &h;
        async move { h.send(Method::GET, &url, Some(&token), None, &[]).await }
    };

    h.emu
        .set_faults(page_fault("linkedservices", PageFaultKind::NullItem, 0));
    for _ in 0..2 {
        let reply = get("linkedservices").await;
        assert_eq!(reply.body["value"][0], Value::Null, "times 0: every answer");
    }
    h.emu
        .set_faults(page_fault("credentials", PageFaultKind::NonObjectItem, 1));
    assert_eq!(get("credentials").await.body["value"][0], json!(42));
    assert!(get("credentials").await.body["value"][0].is_object());

    h.emu
        .set_faults(page_fault("linkedservices", PageFaultKind::NotJson, 1));
    let reply = h
        .client
        .get(dev_url(&h, "linkedservices"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(reply.text().await.expect("body").starts_with("<html>"));

    h.emu.set_faults(page_fault(
        "linkedservices",
        PageFaultKind::NeitherValueNorNextLink,
        1,
    ));
    assert_eq!(get("linkedservices").await.body, json!({}));

    h.emu.set_faults(page_fault(
        "linkedservices",
        PageFaultKind::TruncatedBody,
        1,
    ));
    assert!(
        cut_off(
            h.client
                .get(dev_url(&h, "linkedservices"))
                .bearer_auth(&token)
        )
        .await
    );

    h.emu.set_faults(page_fault(
        "linkedservices",
        PageFaultKind::ForeignNextLink,
        1,
    ));
    let reply = get("linkedservices").await;
    assert!(
        reply.body["nextLink"]
            .as_str()
            .is_some_and(|link| !link.starts_with(&h.emu.https_url()))
    );
}

#[tokio::test]
async fn a_looping_next_link_points_back_at_the_first_page() {
    let h = Harness::start_with(
        seed(),
        Options {
            page_size: 1,
            ..Options::default()
        },
    )
    .await;
    h.emu.set_faults(page_fault(
        "linkedservices",
        PageFaultKind::LoopingNextLink,
        0,
    ));
    let first = format!("{}/linkedservices", factory_path("rg1", "f1"));
    let page1 = h.arm_get(&first).await.body;
    let link = page1["nextLink"].as_str().expect("nextLink").to_owned();
    assert_eq!(
        link,
        format!("{}{first}?api-version=2018-06-01", h.emu.https_url())
    );
    let again = h.arm_get(&link).await.body;
    assert_eq!(again["value"], page1["value"], "the link returns to page 1");
    assert_eq!(again["nextLink"], page1["nextLink"]);

    let token = h.token(DEV).await;
    h.emu
        .set_faults(page_fault("credentials", PageFaultKind::LoopingNextLink, 1));
    let reply = h
        .send(
            Method::GET,
            &dev_url(&h, "credentials"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.body["nextLink"], dev_url(&h, "credentials"));
}

fn kv_faults(kind: KvPageFaultKind, page: u64, times: u64) -> Faults {
    Faults {
        kv_page_faults: vec![KvPageFault { kind, page, times }],
        ..Faults::default()
    }
}

async fn kv_harness() -> (Harness, String, String) {
    let h = Harness::start_with(
        seed(),
        Options {
            kv_page_size: 1,
            ..Options::default()
        },
    )
    .await;
    let token = h.token(VAULT).await;
    let url = format!(
        "{}/kv/kv1/secrets/sql-password/versions?api-version=7.6",
        h.emu.https_url()
    );
    (h, token, url)
}

#[tokio::test]
async fn a_key_vault_versions_page_can_be_an_error_object_on_a_200_on_the_first_or_a_later_page() {
    let (h, token, url) = kv_harness().await;
    h.emu
        .set_faults(kv_faults(KvPageFaultKind::ErrorObject, 0, 1));
    let reply = h.send(Method::GET, &url, Some(&token), None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["error"]["code"], "Forbidden");
    assert!(reply.body.get("value").is_none());
    let healthy = h.send(Method::GET, &url, Some(&token), None, &[]).await;
    assert_eq!(healthy.body["value"].as_array().map(Vec::len), Some(1));

    h.emu
        .set_faults(kv_faults(KvPageFaultKind::ErrorObject, 1, 0));
    for _ in 0..2 {
        let first = h.send(Method::GET, &url, Some(&token), None, &[]).await;
        assert_eq!(first.body["value"].as_array().map(Vec::len), Some(1));
        let next = first.body["nextLink"].as_str().expect("a second page");
        let second = h.send(Method::GET, next, Some(&token), None, &[]).await;
        assert_eq!(second.status, StatusCode::OK);
        assert_eq!(
            second.body["error"]["code"], "Forbidden",
            "times 0: every time"
        );
    }
}

#[tokio::test]
async fn a_key_vault_next_link_to_another_port_reaches_only_the_trap() {
    let (h, token, url) = kv_harness().await;
    h.emu
        .set_faults(kv_faults(KvPageFaultKind::ForeignPortNextLink, 0, 1));
    let reply = h.send(Method::GET, &url, Some(&token), None, &[]).await;
    let trap = h.emu.trap();
    let link = reply.body["nextLink"].as_str().expect("nextLink");
    assert!(
        link.starts_with(&format!("https://127.0.0.1:{}/kv/kv1/", trap.port)),
        "{link}"
    );
    assert_ne!(
        format!("https://127.0.0.1:{}", trap.port),
        h.emu.https_url()
    );
    assert_eq!(h.emu.trap_connections(), 0, "nobody followed it yet");

    // A client that follows it with its token is seen by the trap, and gets no answer.
    let followed = h.client.get(link).bearer_auth(&token).send().await;
    assert!(followed.is_err(), "the trap answers nothing useful");
    let stats: Value = h
        .client
        .get(format!("{}/_emulator/trap", h.emu.http_url()))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["port"], trap.port);
    assert_eq!(stats["connections"], 1);
    assert_eq!(stats["authorizationSeen"], true);
    assert_eq!(h.emu.trap_connections(), 1);
}

#[tokio::test]
async fn a_key_vault_versions_page_can_be_cut_off_or_not_json() {
    let (h, token, url) = kv_harness().await;
    h.emu
        .set_faults(kv_faults(KvPageFaultKind::TruncatedBody, 0, 1));
    assert!(cut_off(h.client.get(&url).bearer_auth(&token)).await);
    h.emu.set_faults(kv_faults(KvPageFaultKind::NotJson, 0, 1));
    let html = h
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.expect("body").starts_with("<html>"));
    let healthy = h.send(Method::GET, &url, Some(&token), None, &[]).await;
    assert!(healthy.body["value"].is_array());
}

#[tokio::test]
async fn synapse_puts_are_throttled_with_retry_after_then_accepted() {
    let h = Harness::start(seed()).await;
    let token = h.token(DEV).await;
    let control = format!("{}/_emulator/faults", h.emu.http_url());
    let reply = h
        .client
        .put(&control)
        .json(&json!({"synapse429": {"times": 2, "retryAfterSecs": 3}}))
        .send()
        .await
        .expect("control");
    assert_eq!(reply.status(), StatusCode::OK);
    let read = h
        .send(
            Method::GET,
            &dev_url(&h, "linkedservices/ls_sql"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "reads are not throttled");
    let body = json!({"properties": read.body["properties"]});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = h
            .send(
                Method::PUT,
                &dev_url(&h, "linkedservices/ls_sql"),
                Some(&token),
                Some(&body),
                &[],
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.header("retry-after"), Some("3"));
            assert!(reply.body["code"].is_string());
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [429, 429, 202]);
    assert_eq!(h.emu.counters().throttled, 2);
    h.emu.set_faults(Faults {
        synapse429: Some(Synapse429 {
            times: 1,
            retry_after_secs: 1,
        }),
        ..Faults::default()
    });
    let credential = h
        .send(
            Method::PUT,
            &dev_url(&h, "credentials/cred_sp"),
            Some(&token),
            Some(&json!({"properties": credential("x")["properties"]})),
            &[],
        )
        .await;
    assert_eq!(credential.status, StatusCode::TOO_MANY_REQUESTS);
}
