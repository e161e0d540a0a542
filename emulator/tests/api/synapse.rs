//! Synapse: the ARM workspace listing (2021-06-01) and a workspace's development endpoint (2020-12-01):
//! audiences, Synapse RBAC, paging, masking, If-Match and the long-running PUT.

use adf_emulator::{Options, demo_seed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, Reply, SUB, TENANT, kv_ref};

const DEV: &str = "https://dev.azuresynapse.net";
const API: &str = "api-version=2020-12-01";

fn workspace(name: &str, extra: Value) -> Value {
    let mut ws = json!({
        "name": name,
        "retryAfterSecs": 0,
        "linkedServices": [
            {"name": "ls_kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://kv1.vault.azure.net/"}}},
            {"name": "ls_sql", "etag": "0a0064d4-0000-0000-0000-5b245bd00000", "properties": {"type": "AzureSqlDW", "typeProperties": {
                "connectionString": "Data Source=x.sql.azuresynapse.net;Initial Catalog=p;User ID=etl",
                "password": kv_ref("ls_kv", "sql-password")}}},
            {"name": "ls_inline", "properties": {"type": "AzureStorage", "typeProperties": {
                "connectionString": {"type": "SecureString", "value": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=TEST-ONLY-synapse-key"}}}},
            {"name": "ls_sync", "put": {"response": "ok"}, "properties": {"type": "AzureSqlDW", "typeProperties": {
                "password": kv_ref("ls_kv", "sql-password")}}},
            {"name": "ls_failing", "put": {"response": "accepted", "polls": 1, "failWith": "The linked service could not be saved: the workspace is being upgraded."},
             "properties": {"type": "AzureSqlDW", "typeProperties": {"password": kv_ref("ls_kv", "sql-password")}}}
        ],
        "credentials": [
            {"name": "cred_sp", "properties": {"type": "ServicePrincipal", "typeProperties": {
                "servicePrincipalId": "00000000-0000-0000-0000-00000000abcd",
                "tenant": TENANT,
                "servicePrincipalKey": kv_ref("ls_kv", "sql-password")}}}
        ]
    });
    if let (Some(map), Some(extra)) = (ws.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    ws
}

/// `rg1`: workspaces `syn-one` (live) and `syn-git` (Git mode); `rg2`: `syn-reader` (Synapse User only).
fn seed() -> Value {
    json!({
        "tenantId": TENANT,
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": "rg1", "factories": [{"name": "f1"}], "workspaces": [
                workspace("syn-one", json!({})),
                workspace("syn-git", json!({"workspaceRepositoryConfiguration": {
                    "type": "WorkspaceVSTSConfiguration", "accountName": "contoso", "projectName": "data",
                    "repositoryName": "synapse", "collaborationBranch": "main", "rootFolder": "/"}}))
            ]},
            {"name": "rg2", "workspaces": [workspace("syn-reader", json!({"callerRole": "synapseUser"}))]},
            {"name": "rg3", "workspaces": [workspace("syn-none", json!({"callerRole": "none"}))]}
        ]}]
    })
}

impl Harness {
    /// A request to a workspace's development endpoint; `path` is below the workspace and gets the
    /// api-version appended unless it is an absolute URL.
    async fn dev(
        &self,
        method: Method,
        workspace: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("https://") {
            path.to_owned()
        } else {
            let base = self
                .emu
                .synapse_endpoint_template()
                .replace("{workspace}", workspace);
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{base}{path}{sep}{API}")
        };
        self.send(method, &url, token, body, headers).await
    }
}

async fn harness() -> (Harness, String) {
    let h = Harness::start(seed()).await;
    let token = h.token(DEV).await;
    (h, token)
}

#[tokio::test]
async fn arm_lists_workspaces_by_subscription_and_group_with_paging() {
    let h = Harness::start_with(
        seed(),
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let token = h.token(ARM).await;
    let mut names = Vec::new();
    let mut pages = 0;
    let mut next = Some(format!(
        "/subscriptions/{SUB}/providers/Microsoft.Synapse/workspaces?api-version=2021-06-01"
    ));
    while let Some(link) = next {
        let reply = h.send(Method::GET, &link, Some(&token), None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages += 1;
        for ws in reply.body["value"].as_array().expect("value") {
            assert_eq!(ws["type"], "Microsoft.Synapse/workspaces");
            names.push(ws["name"].as_str().expect("name").to_owned());
        }
        next = reply.body["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(
                link.starts_with(&h.emu.https_url()) && link.contains("api-version=2021-06-01")
            );
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["syn-one", "syn-git", "syn-reader", "syn-none"]);

    let reply = h
        .send(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Synapse/workspaces?api-version=2021-06-01"),
            Some(&token),
            None,
            &[],
        )
        .await;
    let workspaces = reply.body["value"].as_array().expect("value");
    assert_eq!(workspaces.len(), 2);
    let one = &workspaces[0];
    assert_eq!(
        one["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Synapse/workspaces/syn-one"
        )
    );
    assert_eq!(
        one["properties"]["connectivityEndpoints"]["dev"],
        format!("{}/synapse/syn-one", h.emu.https_url())
    );
    assert!(
        one["properties"]
            .get("workspaceRepositoryConfiguration")
            .is_none()
    );
    assert_eq!(
        workspaces[1]["properties"]["workspaceRepositoryConfiguration"]["type"],
        "WorkspaceVSTSConfiguration"
    );
    // The factories of the same group are still listed by ADF's ARM.
    let (factories, _) = h
        .arm_list(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!(factories.len(), 1);
}

#[tokio::test]
async fn arm_workspace_listing_checks_api_version_token_and_scope() {
    let h = Harness::start(seed()).await;
    let arm = h.token(ARM).await;
    let dev = h.token(DEV).await;
    let list = format!("/subscriptions/{SUB}/providers/Microsoft.Synapse/workspaces");
    let reply = h
        .send(
            Method::GET,
            &format!("{list}?api-version=2018-06-01"),
            Some(&arm),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "InvalidApiVersionParameter");
    let reply = h
        .send(
            Method::GET,
            &format!("{list}?api-version=2021-06-01"),
            Some(&dev),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"]["code"], "InvalidAuthenticationToken");
    let reply = h
        .send(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.Synapse/workspaces?api-version=2021-06-01"),
            Some(&arm),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error"]["code"], "ResourceGroupNotFound");
    let reply = h
        .send(
            Method::GET,
            &format!("/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Synapse/workspaces/syn-reader?api-version=2021-06-01"),
            Some(&arm),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "syn-reader");
    assert!(
        reply
            .header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
}

#[tokio::test]
async fn development_endpoint_refuses_an_arm_token_and_a_missing_one() {
    let h = Harness::start(seed()).await;
    let arm = h.token(ARM).await;
    let reply = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices",
            Some(&arm),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["code"], "InvalidTokenAuthenticationAudience");
    let reply = h
        .dev(Method::GET, "syn-one", "linkedservices", None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["code"], "AuthenticationFailed");
    let recorded = h.emu.requests();
    assert!(
        recorded
            .iter()
            .any(|r| r.host_kind == "synapse" && r.status == 401)
    );
}

#[tokio::test]
async fn linked_services_are_paged_and_masked_like_adf() {
    let h = Harness::start_with(
        seed(),
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let token = h.token(DEV).await;
    let mut items = Vec::new();
    let mut next = Some("linkedservices".to_owned());
    let mut pages = 0;
    while let Some(link) = next {
        let reply = h
            .dev(Method::GET, "syn-one", &link, Some(&token), None, &[])
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages += 1;
        items.extend(reply.body["value"].as_array().cloned().unwrap_or_default());
        next = reply.body["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.starts_with(&format!(
                "{}/synapse/syn-one/linkedservices?",
                h.emu.https_url()
            )));
        }
    }
    assert_eq!((items.len(), pages), (5, 3));
    let inline = items
        .iter()
        .find(|i| i["name"] == "ls_inline")
        .expect("ls_inline");
    assert_eq!(
        inline["type"],
        "Microsoft.Synapse/workspaces/linkedservices"
    );
    assert_eq!(
        inline["properties"]["typeProperties"]["connectionString"],
        json!({"type": "SecureString", "value": "**********"})
    );
    assert!(inline["properties"]["typeProperties"]["encryptedCredential"].is_string());
    let sql = items
        .iter()
        .find(|i| i["name"] == "ls_sql")
        .expect("ls_sql");
    assert_eq!(
        sql["properties"]["typeProperties"]["password"],
        kv_ref("ls_kv", "sql-password")
    );
    assert_eq!(sql["etag"], "0a0064d4-0000-0000-0000-5b245bd00000");
    let body = serde_json::to_string(&items).expect("json");
    assert!(!body.contains("TEST-ONLY-synapse-key"));
    assert!(
        h.emu
            .known_secrets()
            .iter()
            .any(|s| s.contains("TEST-ONLY-synapse-key"))
    );

    let credentials = h
        .dev(
            Method::GET,
            "syn-one",
            "credentials",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        credentials.body["value"][0]["type"],
        "Microsoft.Synapse/workspaces/credentials"
    );
    assert_eq!(
        credentials.body["value"][0]["properties"]["typeProperties"]["servicePrincipalKey"],
        kv_ref("ls_kv", "sql-password")
    );
}

#[tokio::test]
async fn get_honours_if_none_match() {
    let (h, token) = harness().await;
    let reply = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_sql",
            Some(&token),
            None,
            &[("If-None-Match", "\"0a0064d4-0000-0000-0000-5b245bd00000\"")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    let reply = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/LS_SQL",
            Some(&token),
            None,
            &[("If-None-Match", "other")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "ls_sql");
    let reply = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/missing",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn long_running_put_answers_202_and_writes_only_when_the_operation_succeeds() {
    let (h, token) = harness().await;
    let read = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_sql",
            Some(&token),
            None,
            &[],
        )
        .await;
    let etag = read.body["etag"].as_str().expect("etag").to_owned();
    let body = json!({"properties": read.body["properties"]});
    let put = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_sql",
            Some(&token),
            Some(&body),
            &[("If-Match", etag.as_str())],
        )
        .await;
    assert_eq!(put.status, StatusCode::ACCEPTED, "{}", put.body);
    assert_eq!(put.header("retry-after"), Some("0"));
    let location = put.header("location").expect("Location").to_owned();
    assert!(location.starts_with(&format!(
        "{}/synapse/syn-one/operationResults/",
        h.emu.https_url()
    )));
    assert!(location.ends_with("?api-version=2020-12-01"));
    assert!(put.body["operationId"].is_string());

    // Nothing is written while the operation runs.
    let during = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_sql",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(during.body["etag"], etag.as_str());
    let first = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.body["status"], "InProgress");
    assert!(first.header("location").is_some());
    let done = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    let new_etag = done.body["etag"].as_str().expect("etag").to_owned();
    assert_ne!(new_etag, etag);
    let again = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    assert_eq!(
        again.body["etag"],
        new_etag.as_str(),
        "a finished operation keeps its answer"
    );
    let after = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_sql",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(after.body["etag"], new_etag.as_str());
    assert_eq!(after.body["properties"], read.body["properties"]);
    assert_eq!(h.emu.counters().puts, 1);
    let state = h.emu.state();
    assert_eq!(state["workspaces"][0]["linkedServices"][1]["resaved"], true);
    let recorded = h.emu.requests();
    let put_record = recorded
        .iter()
        .find(|r| r.method == "PUT")
        .expect("PUT recorded");
    assert_eq!(put_record.host_kind, "synapse");
    assert_eq!(put_record.if_match.as_deref(), Some(etag.as_str()));
    assert_eq!(put_record.body, Some(body));
}

#[tokio::test]
async fn a_failed_operation_writes_nothing_and_says_why() {
    let (h, token) = harness().await;
    let read = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_failing",
            Some(&token),
            None,
            &[],
        )
        .await;
    let etag = read.body["etag"].as_str().expect("etag").to_owned();
    let body = json!({"properties": read.body["properties"]});
    let quoted = format!("\"{etag}\"");
    let put = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_failing",
            Some(&token),
            Some(&body),
            &[("If-Match", quoted.as_str())],
        )
        .await;
    assert_eq!(
        put.status,
        StatusCode::ACCEPTED,
        "a quoted If-Match is accepted too"
    );
    let location = put.header("location").expect("Location").to_owned();
    let _ = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    let end = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    assert_eq!(end.status, StatusCode::OK);
    assert_eq!(end.body["status"], "Failed");
    assert!(
        end.body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("being upgraded")
    );
    let after = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_failing",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(after.body["etag"], etag.as_str());
    assert_eq!(h.emu.counters().puts, 0);
}

#[tokio::test]
async fn a_plain_200_put_and_a_stale_etag() {
    let (h, token) = harness().await;
    let read = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_sync",
            Some(&token),
            None,
            &[],
        )
        .await;
    let etag = read.body["etag"].as_str().expect("etag").to_owned();
    let body = json!({"properties": read.body["properties"]});
    let put = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_sync",
            Some(&token),
            Some(&body),
            &[("If-Match", etag.as_str())],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_ne!(put.body["etag"], etag.as_str());
    let stale = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_sync",
            Some(&token),
            Some(&body),
            &[("If-Match", etag.as_str())],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["code"], "PreconditionFailed");
    let extra = json!({"properties": read.body["properties"], "etag": etag});
    let rejected = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_sync",
            Some(&token),
            Some(&extra),
            &[],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.emu.counters().puts, 1);
}

#[tokio::test]
async fn putting_the_mask_back_is_counted_as_data_loss() {
    let (h, token) = harness().await;
    let read = h
        .dev(
            Method::GET,
            "syn-one",
            "linkedservices/ls_inline",
            Some(&token),
            None,
            &[],
        )
        .await;
    let body = json!({"properties": read.body["properties"]});
    let put = h
        .dev(
            Method::PUT,
            "syn-one",
            "linkedservices/ls_inline",
            Some(&token),
            Some(&body),
            &[],
        )
        .await;
    let location = put.header("location").expect("Location").to_owned();
    let _ = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    let done = h
        .dev(Method::GET, "syn-one", &location, Some(&token), None, &[])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(h.emu.counters().masked_writes, 1);
}

#[tokio::test]
async fn synapse_rbac_decides_who_may_read_and_write() {
    let (h, token) = harness().await;
    let list = h
        .dev(
            Method::GET,
            "syn-reader",
            "linkedservices",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let body = json!({"properties": list.body["value"][1]["properties"]});
    let put = h
        .dev(
            Method::PUT,
            "syn-reader",
            "linkedservices/ls_sql",
            Some(&token),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    assert_eq!(put.body["code"], "Unauthorized");
    assert!(
        put.body["message"]
            .as_str()
            .expect("message")
            .contains("Microsoft.Synapse/workspaces/linkedServices/write")
    );
    let none = h
        .dev(
            Method::GET,
            "syn-none",
            "credentials",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let missing = h
        .dev(
            Method::GET,
            "syn-nowhere",
            "linkedservices",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let version = h
        .send(
            Method::GET,
            &format!(
                "{}/synapse/syn-one/linkedservices?api-version=2018-06-01",
                h.emu.https_url()
            ),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(version.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.emu.counters().puts, 0);
}

#[tokio::test]
async fn the_demo_estate_has_a_synapse_workspace_beside_its_factories() {
    let h = Harness::start(demo_seed()).await;
    let token = h.token(ARM).await;
    let reply = h
        .send(
            Method::GET,
            "/subscriptions/1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f/providers/Microsoft.Synapse/workspaces?api-version=2021-06-01",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["value"][0]["name"], "syn-contoso-analytics");
    let dev = h.token(DEV).await;
    let services = h
        .dev(
            Method::GET,
            "syn-contoso-analytics",
            "linkedservices",
            Some(&dev),
            None,
            &[],
        )
        .await;
    let names: Vec<&str> = services.body["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ls_kv_contoso",
            "ls_sqlpool_sales",
            "ls_sqlpool_pinned",
            "ls_sqlpool_inline"
        ]
    );
    assert!(
        h.emu
            .synapse_linked_service("syn-contoso-analytics", "ls_sqlpool_inline")
            .expect("stored")["properties"]["typeProperties"]["connectionString"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("synapse-demo"))
    );
}

#[tokio::test]
async fn the_control_api_shows_a_stored_synapse_linked_service_unmasked() {
    let h = Harness::start(seed()).await;
    let url = format!(
        "{}/_emulator/synapse-linked-service?workspace=syn-one&name=ls_inline",
        h.emu.http_url()
    );
    let reply = h.client.get(&url).send().await.expect("answers");
    assert_eq!(reply.status(), StatusCode::OK);
    let body: Value = reply.json().await.expect("JSON");
    assert!(
        body["properties"]["typeProperties"]["connectionString"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("TEST-ONLY-synapse-key"))
    );
    let missing = h
        .client
        .get(format!(
            "{}/_emulator/synapse-linked-service?workspace=syn-one&name=nope",
            h.emu.http_url()
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        h.emu.requests().is_empty(),
        "the control API is not recorded"
    );
}
