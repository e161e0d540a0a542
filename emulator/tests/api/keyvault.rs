//! Key Vault: the challenge, audience checks, the versions pager, value reads, errors.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, TENANT, VAULT, estate};
use adf_emulator::Options;

fn vault_estate() -> Value {
    let mut seed = estate(0, vec![], vec![], vec![]);
    if let Some(vaults) = seed["vaults"].as_array_mut() {
        vaults.push(json!({"name": "locked-kv", "forbidden": true, "secrets": [{"name": "s", "versions": [{"value": "TEST-ONLY-locked"}]}]}));
        if let Some(secrets) = vaults[0]["secrets"].as_array_mut() {
            secrets.push(json!({"name": "pinned-dates", "versions": [
                {"version": "0000000000000000000000000000000d", "value": "TEST-ONLY-dates", "enabled": false, "nbf": 1700000100, "exp": 1900000000}
            ]}));
        }
    }
    seed
}

#[tokio::test]
async fn challenge_then_versions_pager_without_values() {
    let h = Harness::start_with(
        vault_estate(),
        Options {
            kv_page_size: 1,
            ..Options::default()
        },
    )
    .await;
    let base = format!("{}/kv/kv1", h.emu.https_url());
    assert_eq!(
        h.emu.keyvault_endpoint_template().replace("{vault}", "kv1"),
        format!("{base}/")
    );
    let first = format!("{base}/secrets/sql-password/versions?api-version=7.6");

    let reply = h.send(Method::GET, &first, None, None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\"").as_str())
    );
    let arm_token = h.token(ARM).await;
    let reply = h
        .send(Method::GET, &first, Some(&arm_token), None, &[])
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "a management token is not a Key Vault token"
    );

    let token = h.token(VAULT).await;
    let mut next = Some(first);
    let mut ids = Vec::new();
    while let Some(url) = next {
        let reply = h.send(Method::GET, &url, Some(&token), None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        for item in reply.body["value"].as_array().cloned().unwrap_or_default() {
            assert!(
                item.get("value").is_none(),
                "the versions pager never carries values"
            );
            let attributes = &item["attributes"];
            assert_eq!(attributes["enabled"], true);
            assert!(attributes["created"].is_i64() && attributes["updated"].is_i64());
            assert_eq!(attributes["recoveryLevel"], "Recoverable+Purgeable");
            assert!(attributes.get("nbf").is_none() && attributes.get("exp").is_none());
            assert_eq!(item["tags"], json!({}));
            ids.push(item["id"].as_str().unwrap_or_default().to_owned());
        }
        next = reply.body["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(
                link.starts_with(&format!("{base}/secrets/sql-password/versions?")),
                "nextLink points back at the emulator: {link}"
            );
        }
    }
    // Ids are the vault's own, whatever URL the client used (the SDKs refuse any other form).
    assert_eq!(
        ids,
        [
            "https://kv1.vault.azure.net/secrets/sql-password/00000000000000000000000000000001",
            "https://kv1.vault.azure.net/secrets/sql-password/00000000000000000000000000000002",
        ]
    );
    let secrets = h
        .send(
            Method::GET,
            &format!("{base}/secrets?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        secrets.body["value"][0]["id"],
        "https://kv1.vault.azure.net/secrets/sql-password"
    );

    let dates = h
        .send(
            Method::GET,
            &format!("{base}/secrets/pinned-dates/versions?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    let attributes = &dates.body["value"][0]["attributes"];
    assert_eq!(
        (
            attributes["enabled"].as_bool(),
            attributes["nbf"].as_i64(),
            attributes["exp"].as_i64()
        ),
        (Some(false), Some(1700000100), Some(1900000000))
    );
    assert_eq!(h.emu.counters().secret_value_reads, 0);
}

#[tokio::test]
async fn errors_and_value_reads_are_realistic_and_counted() {
    let h = Harness::start(vault_estate()).await;
    let token = h.token("https://vault.azure.net/").await;
    let url = |path: &str| format!("{}/kv/{path}", h.emu.https_url());

    let missing = h
        .send(
            Method::GET,
            &url("kv1/secrets/nope/versions?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "SecretNotFound");
    let no_vault = h
        .send(
            Method::GET,
            &url("nope/secrets/s/versions?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(no_vault.status, StatusCode::NOT_FOUND);
    assert_eq!(no_vault.body["error"]["code"], "VaultNotFound");
    let locked = h
        .send(
            Method::GET,
            &url("locked-kv/secrets/s/versions?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert_eq!(locked.body["error"]["code"], "Forbidden");
    assert_eq!(locked.body["error"]["innererror"]["code"], "AccessDenied");
    assert!(
        locked.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("secrets list permission")
    );
    let no_version = h
        .send(
            Method::GET,
            &url("kv1/secrets/sql-password/versions"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(no_version.status, StatusCode::BAD_REQUEST);

    let latest = h
        .send(
            Method::GET,
            &url("kv1/secrets/sql-password?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(latest.body["value"], "TEST-ONLY-new-value");
    assert_eq!(
        latest.body["id"],
        "https://kv1.vault.azure.net/secrets/sql-password/00000000000000000000000000000002"
    );
    let old = h
        .send(
            Method::GET,
            &url("kv1/secrets/sql-password/00000000000000000000000000000001?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(old.body["value"], "TEST-ONLY-old-value");
    let disabled = h
        .send(
            Method::GET,
            &url("kv1/secrets/pinned-dates?api-version=7.6"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::FORBIDDEN);
    assert_eq!(h.emu.counters().secret_value_reads, 3);
    let secrets = h.emu.known_secrets();
    for value in [
        "TEST-ONLY-new-value",
        "TEST-ONLY-old-value",
        "TEST-ONLY-locked",
        &token,
    ] {
        assert!(secrets.iter().any(|s| s == value), "{value} is known");
    }
    assert!(
        h.emu
            .requests()
            .iter()
            .all(|r| r.host_kind != "keyvault" || r.had_bearer)
    );
}
