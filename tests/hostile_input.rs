//! Hostile input against the real router and the parsers: oversized, deeply nested, invalid UTF-8, the wrong
//! content type, absurd values, and random documents. Each gets a clear answer, never a panic, and nothing
//! reaches Azure (the ARM endpoint here is a closed port).

use adf_secret_refresh::app::App;
use adf_secret_refresh::azure::auth::CredentialKind;
use adf_secret_refresh::config::{NotifyPolicy, Scope, Settings};
use adf_secret_refresh::event;
use adf_secret_refresh::functions::{self, Invocation};
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

fn app() -> App {
    App::new(Settings {
        scopes: vec![Scope::parse("/subscriptions/11111111-1111-1111-1111-111111111111").unwrap()],
        arm_endpoint: "https://127.0.0.1:9".into(),
        keyvault_endpoint: Some("https://127.0.0.1:9/kv/{vault}/".into()),
        synapse_endpoint: None,
        ca_file: None,
        credential: CredentialKind::DeveloperTools,
        vault_allow: vec!["contoso-kv".into()],
        notify: NotifyPolicy::Never,
        webhook_url: None,
        webhook_secret: None,
        teams_webhook_url: None,
        slack_webhook_url: None,
        concurrency: 2,
        run_budget: Duration::from_secs(2),
        expiry_warning_days: Default::default(),
        platforms: Default::default(),
    })
    .expect("app")
}

async fn post(function: &str, body: impl Into<Body>, content_type: &str) -> (u16, Value) {
    let response = functions::router(app())
        .oneshot(
            Request::post(format!("/{function}"))
                .header("content-type", content_type)
                .body(body.into())
                .unwrap(),
        )
        .await
        .expect("router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn logs(body: &Value) -> String {
    body["Logs"].to_string()
}

#[tokio::test]
async fn the_host_probe_is_answered_at_once() {
    let response = functions::router(app())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_oversized_envelope_is_413() {
    let (status, _) = post(
        "KeyVaultSecretEvent",
        vec![b'{'; functions::MAX_ENVELOPE_BYTES + 1],
        "application/json",
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn invalid_utf8_and_non_json_are_refused_without_a_retry() {
    let (status, body) = post(
        "KeyVaultSecretEvent",
        vec![0xff, 0xfe, 0x00],
        "application/json",
    )
    .await;
    assert_eq!(status, 200, "garbage is not retried");
    assert!(logs(&body).contains("not UTF-8"), "{body}");
    let (status, body) = post("RefreshJob", "<xml/>", "application/xml").await;
    assert_eq!(status, 200);
    assert!(logs(&body).contains("not JSON"), "{body}");
    let (_, body) = post("KeyVaultSecretEvent", "[1,2]", "application/json").await;
    assert!(logs(&body).contains("not an object"), "{body}");
}

#[tokio::test]
async fn deep_nesting_is_refused_clearly() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let envelope = format!(r#"{{"Data":{{"event":{deep}}},"Metadata":{{}}}}"#);
    let (status, body) = post("KeyVaultSecretEvent", envelope, "application/json").await;
    assert_eq!(status, 200);
    assert!(logs(&body).contains("recursion limit"), "{body}");
}

#[tokio::test]
async fn a_manual_request_with_the_wrong_content_type_is_415() {
    let envelope = json!({"Data": {"req": {"Method": "POST", "Headers": {"Content-Type": ["text/plain"]}, "Body": "vault=contoso-kv"}}, "Metadata": {}});
    let (status, body) = post("Refresh", envelope.to_string(), "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(body["Outputs"]["res"]["statusCode"], 415);
}

#[tokio::test]
async fn absurd_event_values_are_rejected_not_queued() {
    for data in [
        json!({"VaultName": "contoso-kv", "ObjectName": "x".repeat(5000)}),
        json!({"VaultName": "contoso-kv", "ObjectName": "a b"}),
        json!({"VaultName": "contoso-kv", "ObjectName": "s", "NBF": [1]}),
        json!({"VaultName": "contoso-kv", "ObjectName": "s", "Version": "v/../../x"}),
        json!({"VaultName": {"nested": true}, "ObjectName": "s"}),
    ] {
        let event = json!({"id": "1", "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "data": data});
        let envelope = json!({"Data": {"event": event}, "Metadata": {}});
        let (status, body) = post(
            "KeyVaultSecretEvent",
            envelope.to_string(),
            "application/json",
        )
        .await;
        assert_eq!(status, 200);
        assert!(body["Outputs"]["job"].is_null(), "queued a job for {data}");
        assert!(logs(&body).contains("rejected the event"), "{body}");
    }
}

#[tokio::test]
async fn a_refresh_job_that_is_not_a_job_is_refused_without_a_retry() {
    for job in [
        json!("not json at all"),
        json!({"vault": "contoso-kv"}),
        json!(12),
        json!({"id": 1}),
    ] {
        let envelope = json!({"Data": {"job": job}, "Metadata": {"DequeueCount": 1}});
        let (status, body) = post("RefreshJob", envelope.to_string(), "application/json").await;
        assert_eq!(status, 200, "{job}");
        assert!(logs(&body).contains("not a refresh job"), "{job}: {body}");
    }
}

/// Arbitrary JSON documents, nested a few levels, with keys that events use.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("Microsoft.KeyVault.SecretNewVersionCreated"),
            Just("Microsoft.EventGrid.SubscriptionValidationEvent"),
            Just("contoso-kv"),
            Just("{\"data\":{}}")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("id".to_string()),
            Just("eventType".to_string()),
            Just("type".to_string()),
            Just("data".to_string()),
            Just("VaultName".to_string()),
            Just("ObjectName".to_string()),
            Just("Version".to_string()),
            Just("NBF".to_string()),
            Just("EXP".to_string()),
            Just("subject".to_string()),
            Just("topic".to_string()),
            Just("validationCode".to_string()),
            "[a-zA-Z ]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn event_parsing_never_panics(value in arbitrary_json()) {
        let _ = event::parse_delivery(&value);
        let _ = event::parse_delivery(&Value::String(value.to_string()));
    }

    #[test]
    fn envelope_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), value in arbitrary_json()) {
        let _ = Invocation::parse(&bytes);
        let envelope = json!({"Data": {"event": value.clone(), "job": value.clone(), "req": value}, "Metadata": {}});
        if let Ok(invocation) = Invocation::parse(envelope.to_string().as_bytes()) {
            let _ = invocation.trigger("event").map(|v| event::parse_delivery(&v));
            let _ = invocation.dequeue_count();
        }
    }

    #[test]
    fn manual_request_parsing_never_panics(text in "\\PC{0,200}", value in arbitrary_json()) {
        let _ = functions::ManualRequest::parse(&text);
        let _ = functions::ManualRequest::parse(&value.to_string());
    }
}
