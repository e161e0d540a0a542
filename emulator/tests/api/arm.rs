//! ARM for Data Factory: paging, masking, authentication, PUT rules, test connection and IR status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, SUB, VAULT, estate, factory_path, kv_ref};
use adf_emulator::Options;

fn with_page_size(page_size: usize) -> Options {
    Options {
        page_size,
        ..Options::default()
    }
}

fn many_factories() -> Value {
    let factories: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("f{i}"), "location": "westeurope"}))
        .collect();
    json!({"tenantId": crate::TENANT, "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
        {"name": "rg1", "factories": factories},
        {"name": "rg2", "factories": [{"name": "g0"}]},
        {"name": "rg-empty"}
    ]}]})
}

#[tokio::test]
async fn factory_lists_page_through_next_link_exactly_once() {
    let h = Harness::start_with(many_factories(), with_page_size(2)).await;
    let (items, pages) = h
        .arm_list(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!(pages, 3);
    let mut names: Vec<&str> = items.iter().filter_map(|f| f["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4", "g0"]);

    let (items, pages) = h
        .arm_list(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!((items.len(), pages), (5, 3));
    let (items, pages) = h
        .arm_list(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg-empty/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!((items.len(), pages), (0, 1));

    let missing_rg = h
        .arm_get(&format!(
            "/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!(missing_rg.status, StatusCode::NOT_FOUND);
    assert_eq!(missing_rg.body["error"]["code"], "ResourceGroupNotFound");
    let missing_sub = h.arm_get("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.DataFactory/factories").await;
    assert_eq!(missing_sub.body["error"]["code"], "SubscriptionNotFound");
    let missing_factory = h.arm_get(&factory_path("rg1", "nope")).await;
    assert_eq!(missing_factory.status, StatusCode::NOT_FOUND);
    assert_eq!(missing_factory.body["error"]["code"], "ResourceNotFound");
}

#[tokio::test]
async fn linked_services_are_masked_paged_and_case_insensitive() {
    let extra = vec![
        json!({"name": "kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://kv1.vault.azure.net/"}}}),
        json!({"name": "sql", "properties": {"type": "AzureSqlDatabase", "typeProperties": {"connectionString": "Server=x", "password": kv_ref("kv", "sql-password")}}}),
    ];
    let h = Harness::start_with(estate(3, extra, vec![], vec![]), with_page_size(2)).await;
    let (items, pages) = h
        .arm_list(&format!("{}/linkedservices", factory_path("rg1", "f1")))
        .await;
    assert_eq!((items.len(), pages), (5, 3));
    let mut names: Vec<&str> = items.iter().filter_map(|ls| ls["name"].as_str()).collect();
    names.dedup();
    assert_eq!(names, ["ls0", "ls1", "ls2", "kv", "sql"]);
    for ls in &items[..3] {
        let tp = &ls["properties"]["typeProperties"];
        assert_eq!(
            tp["connectionString"],
            json!({"type": "SecureString", "value": "**********"})
        );
        assert!(
            tp["encryptedCredential"]
                .as_str()
                .is_some_and(|b| !b.is_empty())
        );
        assert_eq!(ls["type"], "Microsoft.DataFactory/factories/linkedservices");
        assert!(
            ls["etag"]
                .as_str()
                .is_some_and(|e| e.len() == 36 && !e.contains('"'))
        );
    }
    // Key Vault references come back as they are, with no encryptedCredential added.
    assert_eq!(
        items[4]["properties"]["typeProperties"]["password"],
        kv_ref("kv", "sql-password")
    );
    assert!(
        items[4]["properties"]["typeProperties"]
            .get("encryptedCredential")
            .is_none()
    );
    assert!(
        !serde_json::to_string(&items)
            .unwrap_or_default()
            .contains("TEST-ONLY")
    );

    let odd_case = format!(
        "/SUBSCRIPTIONS/{SUB}/resourcegroups/RG1/providers/microsoft.datafactory/factories/F1/LINKEDSERVICES/LS0"
    );
    let reply = h.arm_get(&odd_case).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body["properties"]["typeProperties"]["connectionString"]["value"],
        "**********"
    );

    let stored = h
        .emu
        .linked_service(&factory_path("rg1", "f1"), "ls0")
        .expect("stored");
    assert_eq!(
        stored["properties"]["typeProperties"]["connectionString"]["value"],
        "DefaultEndpointsProtocol=https;AccountName=a0;AccountKey=TEST-ONLY-key-0"
    );
    assert!(
        h.emu
            .known_secrets()
            .iter()
            .any(|s| s.ends_with("TEST-ONLY-key-2"))
    );
    let missing = h
        .arm_get(&format!(
            "{}/linkedservices/nope",
            factory_path("rg1", "f1")
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "ResourceNotFound");
}

#[tokio::test]
async fn arm_requires_a_management_token_and_the_api_version() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let path = format!("{}?api-version=2018-06-01", factory_path("rg1", "f1"));

    let reply = h.send(Method::GET, &path, None, None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer authorization_uri=")
            && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(reply.body["error"]["code"].as_str().is_some());

    let vault_token = h.token(VAULT).await;
    let reply = h
        .send(Method::GET, &path, Some(&vault_token), None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"]["code"], "InvalidAuthenticationToken");
    let reply = h
        .send(Method::GET, &path, Some("forged-token"), None, &[])
        .await;
    assert_eq!(reply.body["error"]["code"], "InvalidAuthenticationToken");

    // Both spellings of the management audience work.
    for resource in [
        ARM,
        "https://management.azure.com/",
        "https://management.core.windows.net/",
    ] {
        let token = h.token(resource).await;
        assert_eq!(
            h.send(Method::GET, &path, Some(&token), None, &[])
                .await
                .status,
            StatusCode::OK
        );
    }

    let missing = h
        .arm_get(&format!("{}?api-version=", factory_path("rg1", "f1")))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"]["code"], "InvalidApiVersionParameter");
    let token = h.token(ARM).await;
    let reply = h
        .send(
            Method::GET,
            &factory_path("rg1", "f1"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "MissingApiVersionParameter");
    let unknown = h
        .arm_get(&format!("{}/notebooks", factory_path("rg1", "f1")))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let log = h.emu.requests();
    assert!(
        log.iter()
            .all(|r| r.host_kind == "arm" || r.host_kind == "msi")
    );
    assert!(
        log.iter()
            .any(|r| r.host_kind == "arm" && !r.had_bearer && r.status == 401)
    );
    let text = serde_json::to_string(&log).unwrap_or_default();
    assert!(!text.contains(&token), "bearer tokens are never recorded");
}

#[tokio::test]
async fn put_honours_if_match_body_rules_and_counts_masked_writes() {
    let h = Harness::start(estate(2, vec![], vec![], vec![])).await;
    let path = format!("{}/linkedservices/ls0", factory_path("rg1", "f1"));
    let read = h.arm_get(&path).await.body;
    let etag = read["etag"].as_str().expect("etag").to_owned();

    // Only {"properties": …} is accepted.
    let reply = h
        .arm(Method::PUT, &path, Some(&read), &[("If-Match", &etag)])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'id'") || message.contains("'name'"),
        "{message}"
    );
    let no_props = h.arm(Method::PUT, &path, Some(&json!({})), &[]).await;
    assert_eq!(no_props.status, StatusCode::BAD_REQUEST);

    // A stale etag is refused.
    let body = json!({"properties": read["properties"]});
    let reply = h
        .arm(
            Method::PUT,
            &path,
            Some(&body),
            &[("If-Match", "00000000-0000-0200-0000-000000000000")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(reply.body["error"]["code"], "PreconditionFailed");
    assert_eq!(h.emu.counters().puts, 0);

    // Writing back the masked form is data loss: counted, and stored as written.
    let reply = h
        .arm(Method::PUT, &path, Some(&body), &[("If-Match", &etag)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_ne!(
        reply.body["etag"],
        json!(etag),
        "every PUT changes the etag"
    );
    assert_eq!(
        reply.body["properties"]["typeProperties"]["connectionString"]["value"],
        "**********"
    );
    let counters = h.emu.counters();
    assert_eq!((counters.masked_writes, counters.puts), (1, 1));
    let stored = h
        .emu
        .linked_service(&factory_path("rg1", "f1"), "ls0")
        .expect("stored");
    assert_eq!(
        stored["properties"]["typeProperties"]["connectionString"]["value"],
        "**********"
    );

    // A PUT with a true value, `If-Match: *`, is fine; so is one without If-Match (recorded as such).
    let other = format!("{}/linkedservices/ls1", factory_path("rg1", "f1"));
    let fresh = json!({"properties": {"type": "AzureBlobStorage", "typeProperties": {"connectionString": {"type": "SecureString", "value": "TEST-ONLY-rotated"}}}});
    assert_eq!(
        h.arm(Method::PUT, &other, Some(&fresh), &[("If-Match", "*")])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.arm(Method::PUT, &other, Some(&fresh), &[]).await.status,
        StatusCode::OK
    );
    let counters = h.emu.counters();
    assert_eq!((counters.masked_writes, counters.puts), (1, 3));
    assert!(
        h.emu
            .known_secrets()
            .contains(&"TEST-ONLY-rotated".to_owned())
    );
    assert!(
        h.emu.known_secrets().contains(
            &"DefaultEndpointsProtocol=https;AccountName=a0;AccountKey=TEST-ONLY-key-0".to_owned()
        ),
        "replaced values are still known"
    );
    let puts: Vec<_> = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.status == 200)
        .collect();
    assert_eq!(puts.len(), 3);
    assert_eq!(puts[0].if_match.as_deref(), Some(etag.as_str()));
    assert_eq!(puts[2].if_match, None);
    assert_eq!(puts[1].body, Some(fresh.clone()));
    assert_eq!(
        h.emu.state()["factories"][0]["linkedServices"][1]["resaved"],
        true
    );

    // The factory itself is never writable.
    let reply = h
        .arm(
            Method::PUT,
            &factory_path("rg1", "f1"),
            Some(&json!({"location": "westeurope"})),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["error"]["code"], "AuthorizationFailed");
    let reply = h
        .arm(
            Method::PATCH,
            &factory_path("rg1", "f1"),
            Some(&json!({"tags": {}})),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(h.emu.counters().factory_writes, 2);
}

#[tokio::test]
async fn credentials_follow_the_same_rules() {
    let credential = json!({"name": "cred1", "properties": {"type": "ServicePrincipal", "typeProperties": {
        "servicePrincipalId": "app", "tenant": "t", "servicePrincipalKey": kv_ref("kv", "sql-password")}}});
    let h = Harness::start(estate(0, vec![], vec![], vec![credential.clone()])).await;
    let (items, _) = h
        .arm_list(&format!("{}/credentials", factory_path("rg1", "f1")))
        .await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["type"],
        "Microsoft.DataFactory/factories/credentials"
    );
    assert_eq!(items[0]["properties"], credential["properties"]);
    let path = format!("{}/credentials/cred1", factory_path("rg1", "f1"));
    let etag = items[0]["etag"].as_str().expect("etag").to_owned();
    let body = json!({"properties": items[0]["properties"]});
    assert_eq!(
        h.arm(Method::PUT, &path, Some(&body), &[("If-Match", "nope")])
            .await
            .status,
        StatusCode::PRECONDITION_FAILED
    );
    let reply = h
        .arm(Method::PUT, &path, Some(&body), &[("If-Match", &etag)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["properties"], credential["properties"]);
}

fn connectivity_estate() -> Value {
    let sql = |name: &str, password: Value, test: Value| json!({"name": name, "properties": {"type": "AzureSqlDatabase", "typeProperties": {"connectionString": format!("Server={name}"), "password": password}}, "test": test});
    let via = |mut ls: Value, ir: &str| {
        ls["properties"]["connectVia"] =
            json!({"referenceName": ir, "type": "IntegrationRuntimeReference"});
        ls
    };
    let mut pinned = kv_ref("kv", "sql-password");
    pinned["secretVersion"] = json!("ffffffffffffffffffffffffffffffff");
    let ok = json!({"outcome": "success"});
    let extra = vec![
        json!({"name": "kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "HTTPS://KV1.vault.azure.net"}}}),
        sql("sql_ok", kv_ref("kv", "sql-password"), ok.clone()),
        sql(
            "sql_fail",
            kv_ref("kv", "sql-password"),
            json!({"outcome": "failure", "message": "Login failed for user 'etl'.", "code": "SqlFailedToConnect"}),
        ),
        sql(
            "sql_stale",
            kv_ref("kv", "sql-password"),
            json!({"outcome": "failUntilResaved", "message": "Login failed for user 'etl'."}),
        ),
        sql(
            "sql_400",
            kv_ref("kv", "sql-password"),
            json!({"outcome": "http400", "message": "The linked service type is not supported."}),
        ),
        via(
            sql("sql_mvnet", kv_ref("kv", "sql-password"), ok.clone()),
            "mvnet-ir",
        ),
        via(
            sql("sql_offline", kv_ref("kv", "sql-password"), ok.clone()),
            "shir-off",
        ),
        via(
            sql("sql_online", kv_ref("kv", "sql-password"), ok.clone()),
            "shir-on",
        ),
        sql("sql_pinned_missing", pinned, ok.clone()),
        sql("sql_disabled", kv_ref("kv", "disabled-secret"), ok.clone()),
        sql("sql_expired", kv_ref("kv", "expired-secret"), ok.clone()),
        sql("sql_missing", kv_ref("kv", "no-such-secret"), ok.clone()),
        json!({"name": "adls", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://x.dfs.core.windows.net/",
            "credential": {"referenceName": "cred1", "type": "CredentialReference"}}},
            "test": {"outcome": "failUntilResaved", "message": "AADSTS7000215: Invalid client secret provided."}}),
    ];
    let irs = vec![
        json!({"name": "shir-off", "properties": {"type": "SelfHosted"}, "state": "Offline"}),
        json!({"name": "shir-on", "properties": {"type": "SelfHosted"}, "state": "Online"}),
        json!({"name": "shir-limited", "properties": {"type": "SelfHosted"}, "state": "Limited"}),
        json!({"name": "mvnet-ir", "properties": {"type": "Managed", "managedVirtualNetwork": {"referenceName": "default", "type": "ManagedVirtualNetworkReference"}}, "interactiveAuthoring": false}),
    ];
    let credentials = vec![
        json!({"name": "cred1", "properties": {"type": "ServicePrincipal", "typeProperties": {
        "servicePrincipalId": "app", "tenant": "t", "servicePrincipalKey": kv_ref("kv", "sql-password")}}}),
    ];
    let mut seed = estate(1, extra, irs, credentials);
    if let Some(secrets) = seed["vaults"][0]["secrets"].as_array_mut() {
        secrets.push(json!({"name": "disabled-secret", "versions": [{"value": "TEST-ONLY-d", "enabled": false}]}));
        secrets.push(json!({"name": "expired-secret", "versions": [{"value": "TEST-ONLY-e", "exp": 1600000000}]}));
    }
    seed
}

async fn test_connection(h: &Harness, name: &str, by_name: bool) -> crate::Reply {
    let path = format!("{}/linkedservices/{name}", factory_path("rg1", "f1"));
    let resource = h.arm_get(&path).await.body;
    let mut linked_service = json!({"properties": resource["properties"]});
    if by_name {
        linked_service["name"] = resource["name"].clone();
    }
    let body = json!({"linkedService": linked_service});
    h.arm(
        Method::POST,
        &format!("{}/testConnectivity", factory_path("rg1", "f1")),
        Some(&body),
        &[],
    )
    .await
}

fn first_error(reply: &crate::Reply) -> String {
    reply.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn test_connectivity_follows_scripts_runtimes_and_key_vault() {
    let h = Harness::start(connectivity_estate()).await;
    let ok = test_connection(&h, "sql_ok", false).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, json!({"succeeded": true, "errors": []}));

    // Matched by deep equality (no name): the scripted failure comes back.
    let fail = test_connection(&h, "sql_fail", false).await;
    assert_eq!(fail.body["succeeded"], false);
    assert_eq!(fail.body["errors"][0]["code"], "SqlFailedToConnect");
    assert_eq!(first_error(&fail), "Login failed for user 'etl'.");

    // failUntilResaved: fails, then passes once the linked service has been PUT.
    assert_eq!(
        test_connection(&h, "sql_stale", true).await.body["succeeded"],
        false
    );
    let path = format!("{}/linkedservices/sql_stale", factory_path("rg1", "f1"));
    let read = h.arm_get(&path).await.body;
    let etag = read["etag"].as_str().unwrap_or_default().to_owned();
    let put = h
        .arm(
            Method::PUT,
            &path,
            Some(&json!({"properties": read["properties"]})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        test_connection(&h, "sql_stale", true).await.body["succeeded"],
        true
    );

    // ...and for a linked service using a credential, re-saving the credential counts.
    assert_eq!(
        test_connection(&h, "adls", true).await.body["succeeded"],
        false
    );
    let cred_path = format!("{}/credentials/cred1", factory_path("rg1", "f1"));
    let cred = h.arm_get(&cred_path).await.body;
    let put = h
        .arm(
            Method::PUT,
            &cred_path,
            Some(&json!({"properties": cred["properties"]})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        test_connection(&h, "adls", true).await.body["succeeded"],
        true
    );

    let rejected = test_connection(&h, "sql_400", true).await;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        rejected.body["error"]["message"],
        "The linked service type is not supported."
    );

    let mvnet = test_connection(&h, "sql_mvnet", true).await;
    assert_eq!(mvnet.status, StatusCode::BAD_REQUEST);
    assert!(
        mvnet.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("interactive authoring is disabled")
    );

    let offline = test_connection(&h, "sql_offline", true).await;
    assert_eq!(offline.body["succeeded"], false);
    assert!(
        first_error(&offline).contains("offline"),
        "{}",
        offline.body
    );
    assert_eq!(
        test_connection(&h, "sql_online", true).await.body["succeeded"],
        true
    );

    for (name, expected) in [
        ("sql_pinned_missing", "was not found"),
        ("sql_disabled", "disabled secret"),
        ("sql_expired", "expired"),
        ("sql_missing", "was not found"),
    ] {
        let reply = test_connection(&h, name, true).await;
        assert_eq!(reply.body["succeeded"], false, "{name}");
        assert!(
            first_error(&reply).contains(expected),
            "{name}: {}",
            reply.body
        );
    }

    let bad = h
        .arm(
            Method::POST,
            &format!("{}/testConnectivity", factory_path("rg1", "f1")),
            Some(&json!({"linkedService": {}})),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // An unknown linked service runs the default script.
    let unknown = json!({"linkedService": {"properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://new.dfs.core.windows.net/"}}}});
    let reply = h
        .arm(
            Method::POST,
            &format!("{}/testconnectivity", factory_path("rg1", "f1")),
            Some(&unknown),
            &[],
        )
        .await;
    assert_eq!(reply.body["succeeded"], true);
    assert_eq!(h.emu.counters().secret_value_reads, 0);
}

#[tokio::test]
async fn integration_runtime_status_has_the_spec_shape() {
    let h = Harness::start(connectivity_estate()).await;
    let status = |ir: &'static str| {
        let h = &h;
        async move {
            h.arm(
                Method::POST,
                &format!(
                    "{}/integrationRuntimes/{ir}/getStatus",
                    factory_path("rg1", "f1")
                ),
                None,
                &[],
            )
            .await
        }
    };
    let offline = status("shir-off").await;
    assert_eq!(offline.status, StatusCode::OK);
    assert_eq!(offline.body["name"], "shir-off");
    let props = &offline.body["properties"];
    assert_eq!(
        (props["type"].as_str(), props["state"].as_str()),
        (Some("SelfHosted"), Some("Offline"))
    );
    assert_eq!(props["typeProperties"]["nodes"][0]["status"], "Offline");
    assert!(props["typeProperties"]["nodes"][0]["nodeName"].is_string());

    let limited = status("shir-limited").await;
    let nodes: Vec<&str> = limited.body["properties"]["typeProperties"]["nodes"]
        .as_array()
        .map(|n| n.iter().filter_map(|n| n["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(nodes, ["Online", "Offline"]);

    let managed = status("mvnet-ir").await;
    assert_eq!(managed.body["properties"]["type"], "Managed");
    assert!(managed.body["properties"]["state"].is_string());

    let missing = status("nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let get = h
        .arm_get(&format!(
            "{}/integrationruntimes/shir-on",
            factory_path("rg1", "f1")
        ))
        .await;
    assert_eq!(
        get.body["type"],
        "Microsoft.DataFactory/factories/integrationruntimes"
    );
    assert!(
        status("shir-on")
            .await
            .header("x-ms-ratelimit-remaining-subscription-writes")
            .is_some(),
        "a POST is a write for ARM"
    );
}

#[tokio::test]
async fn if_match_takes_the_etag_quoted_or_bare_and_refuses_weak_tags() {
    let h = Harness::start(estate(0, vec![kv_ls("kv")], vec![], vec![])).await;
    let path = format!("{}/linkedservices/kv", factory_path("rg1", "f1"));
    let read = h.arm_get(&path).await.body;
    let body = json!({"properties": read["properties"]});
    let etag = read["etag"].as_str().expect("etag").to_owned();

    // The RFC 9110 form, as azure-mgmt-datafactory 10.0 sends it.
    let quoted = h
        .arm(
            Method::PUT,
            &path,
            Some(&body),
            &[("If-Match", &format!("\"{etag}\""))],
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    let etag = quoted.body["etag"].as_str().expect("etag").to_owned();

    // A weak tag never matches (strong comparison), even with the current value.
    let weak = h
        .arm(
            Method::PUT,
            &path,
            Some(&body),
            &[("If-Match", &format!("W/\"{etag}\""))],
        )
        .await;
    assert_eq!(weak.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(weak.body["error"]["code"], "PreconditionFailed");

    // The bare value from the body, as older SDKs and the product send it.
    let bare = h
        .arm(Method::PUT, &path, Some(&body), &[("If-Match", &etag)])
        .await;
    assert_eq!(bare.status, StatusCode::OK, "{}", bare.body);
    let stale_quoted = h
        .arm(
            Method::PUT,
            &path,
            Some(&body),
            &[("If-Match", &format!("\"{etag}\""))],
        )
        .await;
    assert_eq!(stale_quoted.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(h.emu.counters().puts, 2);
}

fn kv_ls(name: &str) -> Value {
    json!({"name": name, "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://kv1.vault.azure.net/"}}})
}

#[tokio::test]
async fn integration_runtimes_list_pages_like_the_spec_example() {
    let h = Harness::start_with(
        connectivity_estate(),
        Options {
            page_size: 3,
            ..Options::default()
        },
    )
    .await;
    let (items, pages) = h
        .arm_list(&format!(
            "{}/integrationRuntimes",
            factory_path("rg1", "f1")
        ))
        .await;
    assert_eq!(pages, 2);
    let names: Vec<&str> = items.iter().filter_map(|ir| ir["name"].as_str()).collect();
    assert_eq!(names, ["shir-off", "shir-on", "shir-limited", "mvnet-ir"]);
    // IntegrationRuntimes_ListByFactory.json: id, name, type, properties, etag.
    let first = &items[0];
    assert_eq!(
        first["type"],
        "Microsoft.DataFactory/factories/integrationruntimes"
    );
    assert!(
        first["id"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/factories/f1/integrationruntimes/shir-off")
    );
    assert_eq!(first["properties"]["type"], "SelfHosted");
    assert!(first["etag"].is_string());
    let missing = h
        .arm_get(&format!(
            "{}/integrationRuntimes",
            factory_path("rg1", "nope")
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
