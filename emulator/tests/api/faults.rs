//! Every fault kind, its counters and headers, determinism, and the control API that sets them.

use std::time::{Duration, Instant};

use adf_emulator::{Burst429, ConcurrentEdit, Faults};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ARM, Harness, VAULT, estate, factory_path};

fn path() -> String {
    format!("{}/linkedservices/ls0", factory_path("rg1", "f1"))
}

#[tokio::test]
async fn latency_and_injected_errors() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let token = h.token(ARM).await;
    let url = format!("{}?api-version=2018-06-01", path());
    h.emu.set_faults(Faults {
        latency_ms: 150,
        jitter_ms: 50,
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(
        h.send(Method::GET, &url, Some(&token), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(150));

    h.emu.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let mut seen = Vec::new();
    for _ in 0..12 {
        let reply = h
            .send(
                Method::GET,
                &url,
                Some(&token),
                None,
                &[("x-ms-correlation-request-id", "corr-123")],
            )
            .await;
        assert!(reply.header("x-ms-request-id").is_some());
        assert_eq!(
            reply.header("x-ms-correlation-request-id"),
            Some("corr-123"),
            "the correlation id is echoed"
        );
        assert!(
            reply
                .header("x-ms-ratelimit-remaining-subscription-reads")
                .is_some()
        );
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.header("retry-after"), Some("1"));
        }
        assert!(reply.body["error"]["code"].is_string());
        seen.push(reply.status.as_u16());
    }
    assert!(
        seen.iter().all(|s| *s == 500 || *s == 503) && seen.contains(&500) && seen.contains(&503),
        "{seen:?}"
    );
    let kv_token = h.token(VAULT).await;
    let kv = h
        .send(
            Method::GET,
            &format!(
                "{}/kv/kv1/secrets/sql-password/versions?api-version=7.6",
                h.emu.https_url()
            ),
            Some(&kv_token),
            None,
            &[],
        )
        .await;
    assert!(kv.status.is_server_error(), "Key Vault is faulted too");
    assert_eq!(h.emu.counters().injected_errors, 13);
    // The control API is never faulted.
    let counters: Value = h
        .client
        .get(format!("{}/_emulator/counters", h.emu.http_url()))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    assert_eq!(counters["injected_errors"], 13);
}

#[tokio::test]
async fn dropped_connections_get_no_response() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let token = h.token(ARM).await;
    h.emu.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let result = h
        .client
        .get(format!(
            "{}{}?api-version=2018-06-01",
            h.emu.https_url(),
            path()
        ))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(
        result.is_err(),
        "the connection is closed without a response"
    );
    assert_eq!(h.emu.counters().dropped, 1);
    let last = h.emu.requests().pop().expect("recorded");
    assert_eq!((last.host_kind.as_str(), last.status), ("arm", 0));
}

#[tokio::test]
async fn bursts_of_429_with_retry_after() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let token = h.token(ARM).await;
    h.emu.set_faults(Faults {
        burst429: Some(Burst429 {
            every: 2,
            length: 1,
            retry_after_secs: 3,
        }),
        ..Faults::default()
    });
    let url = format!("{}?api-version=2018-06-01", path());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = h.send(Method::GET, &url, Some(&token), None, &[]).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.header("retry-after"), Some("3"));
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
    assert_eq!(h.emu.counters().throttled, 2);
}

#[tokio::test]
async fn token_buckets_report_remaining_and_throttle_when_enforced() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let token = h.token(ARM).await;
    let url = format!("{}?api-version=2018-06-01", path());
    let remaining = |reply: &crate::Reply| {
        reply
            .header("x-ms-ratelimit-remaining-subscription-reads")
            .and_then(|v| v.parse::<u64>().ok())
            .expect("reads header")
    };
    let a = remaining(&h.send(Method::GET, &url, Some(&token), None, &[]).await);
    let b = remaining(&h.send(Method::GET, &url, Some(&token), None, &[]).await);
    assert!(
        a <= 249 && b < a,
        "the model counts down even when not enforced: {a}, {b}"
    );

    h.emu.set_faults(Faults {
        token_buckets: true,
        ..Faults::default()
    });
    let mut throttled = None;
    for _ in 0..20 {
        let batch = (0..40).map(|_| h.send(Method::GET, &url, Some(&token), None, &[]));
        let replies = futures::future::join_all(batch).await;
        if let Some(reply) = replies
            .into_iter()
            .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        {
            throttled = Some(reply);
            break;
        }
    }
    let reply = throttled.expect("the read bucket (250, +25/s) runs dry");
    assert!(
        reply
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    assert_eq!(remaining(&reply), 0);
    assert_eq!(reply.body["error"]["code"], "SubscriptionRequestsThrottled");
    assert!(h.emu.counters().throttled >= 1);
    // Writes have their own bucket.
    let write = h
        .arm(
            Method::POST,
            &format!(
                "{}/integrationRuntimes/x/getStatus",
                factory_path("rg1", "f1")
            ),
            None,
            &[],
        )
        .await;
    assert_ne!(write.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        write
            .header("x-ms-ratelimit-remaining-subscription-writes")
            .is_some()
    );
}

#[tokio::test]
async fn token_outage_makes_both_token_endpoints_answer_503() {
    let h = Harness::start(estate(0, vec![], vec![], vec![])).await;
    h.emu.set_faults(Faults {
        token_outage_ms: 400,
        ..Faults::default()
    });
    let msi = h
        .client
        .get(h.emu.identity_endpoint())
        .query(&[("api-version", "2019-08-01"), ("resource", ARM)])
        .header("X-IDENTITY-HEADER", h.emu.identity_header())
        .send()
        .await
        .expect("answers");
    assert_eq!(msi.status(), StatusCode::SERVICE_UNAVAILABLE);
    let entra = h
        .client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            h.emu.authority_host(),
            h.emu.tenant_id()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::form(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .expect("answers");
    assert_eq!(entra.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(!h.token(ARM).await.is_empty(), "the outage ends");
}

#[tokio::test]
async fn concurrent_edit_turns_the_next_put_into_412() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    h.emu.set_faults(Faults {
        concurrent_edits: vec![ConcurrentEdit {
            factory_id: factory_path("rg1", "f1"),
            name: "LS0".into(),
            description: "edited by someone else".into(),
        }],
        ..Faults::default()
    });
    let read = h.arm_get(&path()).await.body;
    let etag = read["etag"].as_str().expect("etag").to_owned();
    assert!(
        read["properties"].get("description").is_none(),
        "the GET answer predates the edit"
    );
    let body = json!({"properties": read["properties"]});
    let reply = h
        .arm(Method::PUT, &path(), Some(&body), &[("If-Match", &etag)])
        .await;
    assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED);
    let stored = h
        .emu
        .linked_service(&factory_path("rg1", "f1"), "ls0")
        .expect("stored");
    assert_eq!(
        stored["properties"]["description"],
        "edited by someone else"
    );

    // The edit happens once: a fresh GET and PUT succeed.
    let read = h.arm_get(&path()).await.body;
    let etag = read["etag"].as_str().expect("etag").to_owned();
    let body = json!({"properties": read["properties"]});
    assert_eq!(
        h.arm(Method::PUT, &path(), Some(&body), &[("If-Match", &etag)])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn same_seed_same_faults() {
    async fn run() -> Vec<u16> {
        let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
        let token = h.token(ARM).await;
        h.emu.set_faults(Faults {
            error_rate: 0.5,
            seed: 7,
            ..Faults::default()
        });
        let url = format!("{}?api-version=2018-06-01", path());
        let mut statuses = Vec::new();
        for _ in 0..16 {
            statuses.push(
                h.send(Method::GET, &url, Some(&token), None, &[])
                    .await
                    .status
                    .as_u16(),
            );
        }
        statuses
    }
    let first = run().await;
    assert!(
        first.contains(&200) && first.iter().any(|s| *s >= 500),
        "{first:?}"
    );
    assert_eq!(first, run().await);
}

#[tokio::test]
async fn control_api_mirrors_the_rust_api() {
    let h = Harness::start(estate(1, vec![], vec![], vec![])).await;
    let control = |p: &str| format!("{}/_emulator/{p}", h.emu.http_url());
    let reply = h
        .client
        .put(control("faults"))
        .json(&json!({"burst429": {"every": 0, "length": 1, "retryAfterSecs": 2}}))
        .send()
        .await
        .expect("control");
    assert_eq!(reply.status(), StatusCode::OK);
    let throttled = h.arm_get(&path()).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after"), Some("2"));
    let bad = h
        .client
        .put(control("faults"))
        .body("{\"errorRate\": \"lots\"}")
        .send()
        .await
        .expect("control");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    h.client
        .put(control("faults"))
        .json(&json!({}))
        .send()
        .await
        .expect("control");

    let get = |p: &'static str| {
        let request = h.client.get(control(p));
        async move {
            request
                .send()
                .await
                .expect("control")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let requests = get("requests").await;
    assert!(requests.as_array().is_some_and(|r| {
        r.iter()
            .any(|r| r["host_kind"] == "arm" && r["status"] == 429)
    }));
    assert_eq!(get("counters").await["throttled"], 1);
    let state = get("state").await;
    assert_eq!(
        state["factories"][0]["linkedServices"][0]["properties"]["typeProperties"]["connectionString"]
            ["value"],
        "DefaultEndpointsProtocol=https;AccountName=a0;AccountKey=TEST-ONLY-key-0"
    );
    assert_eq!(state["counters"]["throttled"], 1);
    let secrets = get("secrets").await;
    assert!(
        secrets
            .as_array()
            .is_some_and(|s| s.contains(&json!(h.emu.identity_header())))
    );
    let ls = h
        .client
        .get(control("linked-service"))
        .query(&[
            ("factoryId", factory_path("rg1", "f1").as_str()),
            ("name", "ls0"),
        ])
        .send()
        .await
        .expect("control")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(ls["name"], "ls0");
    let deleted = h
        .client
        .delete(control("requests"))
        .send()
        .await
        .expect("control");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(
        h.emu.requests().is_empty(),
        "control calls are not recorded"
    );
}
