//! The managed-identity and Entra client-credentials token endpoints.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{ARM, Harness, estate, factory_path};

#[tokio::test]
async fn managed_identity_endpoint_checks_the_header_and_answers_like_app_service() {
    let h = Harness::start(estate(0, vec![], vec![], vec![])).await;
    let get = |header: Option<String>, query: Vec<(&'static str, &'static str)>| {
        let mut request = h.client.get(h.emu.identity_endpoint()).query(&query);
        if let Some(header) = header {
            request = request.header("X-IDENTITY-HEADER", header);
        }
        async move { request.send().await.expect("MSI answers") }
    };
    let good_query = vec![
        ("api-version", "2019-08-01"),
        ("resource", "https://management.azure.com"),
    ];
    assert_eq!(
        get(None, good_query.clone()).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(Some("wrong".into()), good_query.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let header = Some(h.emu.identity_header());
    assert_eq!(
        get(
            header.clone(),
            vec![("api-version", "2017-09-01"), ("resource", ARM)]
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(header.clone(), vec![("api-version", "2019-08-01")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let reply = get(header.clone(), good_query).await;
    assert_eq!(reply.status(), StatusCode::OK);
    let body: Value = reply.json().await.expect("JSON");
    let expires_on = body["expires_on"].as_str().expect("expires_on is a string");
    assert!(expires_on.parse::<u64>().is_ok_and(|t| t > 1_700_000_000));
    assert_eq!(body["resource"], "https://management.azure.com");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["client_id"].is_string());
    let token = body["access_token"].as_str().expect("token");
    assert!(h.emu.known_secrets().contains(&token.to_owned()));
    assert!(h.emu.known_secrets().contains(&h.emu.identity_header()));

    let user_assigned = get(
        header,
        vec![
            ("api-version", "2019-08-01"),
            ("resource", ARM),
            ("client_id", "11111111-2222-3333-4444-555555555555"),
        ],
    )
    .await;
    let body: Value = user_assigned.json().await.expect("JSON");
    assert_eq!(body["client_id"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(h.emu.counters().tokens_issued, 2);
    assert!(
        h.emu
            .requests()
            .iter()
            .all(|r| r.host_kind == "msi" && r.body.is_none())
    );
}

#[tokio::test]
async fn entra_client_credentials_flow() {
    let h = Harness::start(estate(0, vec![], vec![], vec![])).await;
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        h.emu.authority_host(),
        h.emu.tenant_id()
    );
    let post = |secret: String, scope: &'static str, tenant_url: String| {
        let client_id = h.emu.client_id();
        let request = h
            .client
            .post(tenant_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::form(&[
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("grant_type", "client_credentials"),
                ("scope", scope),
            ]));
        async move {
            let reply = request.send().await.expect("Entra answers");
            let status = reply.status();
            (status, reply.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = post(
        h.emu.client_secret(),
        "https://management.azure.com/.default",
        url.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["token_type"].as_str(),
            body["expires_in"].as_u64(),
            body["ext_expires_in"].as_u64()
        ),
        (Some("Bearer"), Some(3599), Some(3599))
    );
    let token = body["access_token"].as_str().expect("token").to_owned();
    let reply = h
        .send(
            Method::GET,
            &format!("{}?api-version=2018-06-01", factory_path("rg1", "f1")),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "an Entra token for ARM works on ARM"
    );

    let (status, body) = post(
        "wrong".into(),
        "https://management.azure.com/.default",
        url.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .starts_with("AADSTS7000215: Invalid client secret provided.")
    );
    assert_eq!(body["error_codes"][0], 7000215);
    let (status, body) = post(
        h.emu.client_secret(),
        "https://management.azure.com",
        url.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let other_tenant = format!(
        "{}/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
        h.emu.authority_host()
    );
    let (status, _) = post(
        h.emu.client_secret(),
        "https://management.azure.com/.default",
        other_tenant,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let entra: Vec<_> = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.host_kind == "entra")
        .collect();
    assert_eq!(entra.len(), 4);
    assert!(
        entra.iter().all(|r| r.body.is_none()),
        "form bodies hold secrets and are never recorded"
    );
    assert!(
        !serde_json::to_string(&h.emu.requests())
            .unwrap_or_default()
            .contains(&h.emu.client_secret())
    );
}

#[tokio::test]
async fn entra_serves_the_openid_discovery_document_msal_reads() {
    let h = Harness::start(estate(0, vec![], vec![], vec![])).await;
    let url = |tenant: &str| {
        format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            h.emu.authority_host()
        )
    };
    let reply = h
        .send(Method::GET, &url(&h.emu.tenant_id()), None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["token_endpoint"],
        format!(
            "{}/{}/oauth2/v2.0/token",
            h.emu.authority_host(),
            h.emu.tenant_id()
        )
    );
    assert!(reply.body["authorization_endpoint"].is_string());
    assert!(reply.body["issuer"].is_string());
    let unknown = h
        .send(Method::GET, &url("other-tenant"), None, None, &[])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"], "invalid_tenant");
    assert!(
        h.emu.requests().iter().all(|r| r.host_kind == "entra"),
        "the discovery document is the Entra surface"
    );
}
