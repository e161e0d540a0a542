//! Notifications against a loopback receiver (axum on 127.0.0.1:0): the signed webhook (HMAC and timestamp
//! freshness checked the way a receiver should), one message per run and channel, the attention policy, no
//! secret material in any message, failing channels that never fail the run and never leak their URL, and
//! the Teams (Adaptive Card) and Slack (Block Kit) payload shapes.

#[path = "support/report_fixture.rs"]
mod fixture;
#[path = "support/schema.rs"]
mod schema;

use adf_secret_refresh::azure::auth::{CredentialKind, http_client};
use adf_secret_refresh::config::{NotifyPolicy, SecretString, Settings};
use adf_secret_refresh::notify;
use adf_secret_refresh::report::{Report, Verdict};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WEBHOOK_SECRET: &str = "whsec-test-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e";
/// A path segment that stands for the credential in a Slack or Teams URL.
const URL_KEY: &str = "URLKEY-b7e2c9d4f1a83e6c";
/// Receivers reject older timestamps, as the contract says.
const MAX_AGE_SECS: u64 = 300;

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Received {
    channel: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// For the webhook: whether the signature and the timestamp passed.
    verified: Option<Result<(), String>>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("every message is JSON")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the receiver answers: a script per channel, then the default.
#[derive(Default)]
struct Behaviour {
    scripted: HashMap<String, VecDeque<(u16, Option<&'static str>)>>,
    default_status: Option<u16>,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
    fn on(&self, channel: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.channel == channel)
            .collect()
    }
    fn always(&self, status: u16) {
        self.behaviour.lock().expect("lock").default_status = Some(status);
    }
    fn script(&self, channel: &str, answers: &[(u16, Option<&'static str>)]) {
        self.behaviour
            .lock()
            .expect("lock")
            .scripted
            .insert(channel.to_string(), answers.iter().copied().collect());
    }
}

/// Verifies the webhook's signature as a receiver should: fresh timestamp, then HMAC in constant time.
fn verify(headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name}"))
    };
    let timestamp = header("X-Adf-Refresh-Timestamp")?;
    let signature = header("X-Adf-Refresh-Signature")?;
    let ts: u64 = timestamp.parse().map_err(|_| "timestamp not a number")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    if now.abs_diff(ts) > MAX_AGE_SECS {
        return Err(format!("stale timestamp {ts} (now {now})"));
    }
    let hex_sig = signature
        .strip_prefix("sha256=")
        .ok_or("signature without sha256=")?;
    let expected = hex::decode(hex_sig).map_err(|_| "signature not hex")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(WEBHOOK_SECRET.as_bytes())
        .map_err(|e| e.to_string())?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| "bad signature".to_string())
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let channel = path.split('/').next().unwrap_or_default().to_string();
    let verified = (channel == "webhook").then(|| verify(&headers, &body));
    let rejected = matches!(verified, Some(Err(_)));
    receiver.received.lock().expect("lock").push(Received {
        channel: channel.clone(),
        headers,
        body: body.to_vec(),
        verified,
    });
    if rejected {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (status, retry_after) = {
        let mut behaviour = receiver.behaviour.lock().expect("lock");
        let scripted = behaviour
            .scripted
            .get_mut(&channel)
            .and_then(|q| q.pop_front());
        scripted.unwrap_or((behaviour.default_status.unwrap_or(202), None))
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(after) => (status, [("Retry-After", after)], "slow down").into_response(),
        None => (status, "answer").into_response(),
    }
}

/// Starts a receiver; returns it and its base URL.
async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/{*path}", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, format!("http://{addr}"))
}

fn settings(policy: NotifyPolicy) -> Settings {
    Settings {
        scopes: vec![],
        arm_endpoint: "https://management.azure.com".into(),
        keyvault_endpoint: None,
        synapse_endpoint: None,
        ca_file: None,
        credential: CredentialKind::DeveloperTools,
        vault_allow: vec![],
        notify: policy,
        webhook_url: None,
        webhook_secret: None,
        teams_webhook_url: None,
        slack_webhook_url: None,
        concurrency: 1,
        run_budget: Duration::from_secs(60),
        expiry_warning_days: Default::default(),
        platforms: Default::default(),
    }
}

/// Settings with all three channels pointed at the receiver.
fn all_channels(policy: NotifyPolicy, base: &str) -> Settings {
    Settings {
        webhook_url: Some(format!("{base}/webhook/{URL_KEY}")),
        webhook_secret: Some(SecretString::new(WEBHOOK_SECRET.into())),
        teams_webhook_url: Some(format!(
            "{base}/teams/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig={URL_KEY}"
        )),
        slack_webhook_url: Some(format!("{base}/slack/services/T0001/B0002/{URL_KEY}")),
        ..settings(policy)
    }
}

fn http() -> reqwest::Client {
    http_client(None).expect("the product's HTTP client")
}

/// The fixture with secret material planted where a report may keep it but a notification must not carry it.
fn report_with_planted_secrets() -> Report {
    let mut r = fixture::realistic_report();
    for t in &mut r.targets {
        if let Some(message) = &mut t.test.message {
            message.push_str(&format!(" (code={})", fixture::FAKE_FUNCTION_KEY));
        }
    }
    r.errors[0].message.push_str(&format!(
        " at https://func.example/api/refresh?code={}",
        fixture::FAKE_FUNCTION_KEY
    ));
    r
}

fn assert_no_secret_material(text: &str, what: &str) {
    for (name, secret) in [
        ("the webhook secret", WEBHOOK_SECRET),
        ("the planted token", fixture::FAKE_TOKEN),
        ("the planted function key", fixture::FAKE_FUNCTION_KEY),
        ("the URL's key", URL_KEY),
    ] {
        assert!(!text.contains(secret), "{what} contains {name}: {text}");
    }
}

#[tokio::test]
async fn each_channel_receives_exactly_one_verified_message_per_run() {
    let (receiver, base) = start_receiver().await;
    let mut report = report_with_planted_secrets();
    // Many targets still make one message.
    for i in 0..30 {
        report.targets.push(fixture::target(
            "adf-bulk",
            &format!("ls_bulk_{i:02}"),
            "AzureSqlDatabase",
            Verdict::Pinned,
        ));
    }
    report.summarise();
    let exit_code = report.exit_code();

    notify::send(
        &all_channels(NotifyPolicy::Attention, &base),
        &http(),
        &mut report,
    )
    .await;

    assert_eq!(receiver.on("webhook").len(), 1, "one webhook message");
    assert_eq!(receiver.on("teams").len(), 1, "one Teams message");
    assert_eq!(receiver.on("slack").len(), 1, "one Slack message");
    let webhook = &receiver.on("webhook")[0];
    assert_eq!(webhook.verified, Some(Ok(())), "signature and timestamp");
    assert_eq!(
        webhook
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let outcomes: Vec<(&str, bool)> = report
        .notifications
        .iter()
        .map(|n| (n.channel.as_str(), n.delivered))
        .collect();
    assert_eq!(
        outcomes,
        [("webhook", true), ("teams", true), ("slack", true)]
    );
    assert!(report.notifications.iter().all(|n| n.error.is_none()));
    assert_eq!(
        report.exit_code(),
        exit_code,
        "notifying changes no outcome"
    );
    schema::assert_valid_report(&serde_json::to_value(&report).expect("serialises"));

    // The webhook body: metadata of every target, in the documented shape.
    let body = webhook.json();
    assert_eq!(body["schema"], "adf-secret-refresh/notification/v1");
    assert_eq!(body["reportId"], report.id.as_str());
    assert_eq!(body["command"], "refresh");
    assert_eq!(body["dryRun"], false);
    assert_eq!(body["trigger"]["kind"], "eventgrid");
    assert_eq!(body["secret"]["vault"], "kv-data-prod");
    assert_eq!(body["secret"]["name"], "sql-etl-password");
    assert_eq!(body["summary"]["attention"], true);
    let targets = body["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), report.targets.len());
    let partner = targets
        .iter()
        .find(|t| t["name"] == "ls_rest_partner_api")
        .expect("the failed target");
    assert_eq!(partner["verdict"], "resave");
    assert_eq!(partner["resave"]["status"], "ok");
    assert_eq!(partner["test"]["status"], "failed");
    assert_eq!(partner["test"]["diagnosis"]["code"], "AADSTS7000222");
    assert_eq!(partner["test"]["diagnosis"]["owner"], "entraAdmin");
    assert!(partner["test"].get("message").is_none(), "no test message");
    assert!(partner["test"].get("raw").is_none(), "no raw body");
    assert!(partner["test"]["diagnosis"].get("cause").is_none());
    let warehouse = targets
        .iter()
        .find(|t| t["name"] == "ls_sql_warehouse")
        .expect("the Git-mode target");
    assert_eq!(warehouse["notes"][0], "gitMode");
    assert_eq!(body["findings"][0]["code"], "secretNearExpiry");
    assert_eq!(body["findings"][0]["severity"], "warning");
    assert!(body["findings"][0].get("message").is_none());
    assert_eq!(body["errors"][0]["stage"], "discovery");
    assert!(body["errors"][0].get("message").is_none());
    assert!(
        !webhook.text().contains("AADSTS7000222: The provided"),
        "no ADF message text"
    );
}

#[tokio::test]
async fn no_message_carries_secret_material() {
    let (receiver, base) = start_receiver().await;
    let mut report = report_with_planted_secrets();
    // The planted strings are in the report itself: the check below is meaningful.
    let report_json = serde_json::to_string(&report).expect("serialises");
    assert!(report_json.contains(fixture::FAKE_TOKEN));
    assert!(report_json.contains(fixture::FAKE_FUNCTION_KEY));

    notify::send(
        &all_channels(NotifyPolicy::Always, &base),
        &http(),
        &mut report,
    )
    .await;

    let all = receiver.all();
    assert_eq!(all.len(), 3);
    for r in &all {
        assert_no_secret_material(&r.text(), &format!("the {} body", r.channel));
        for (name, value) in &r.headers {
            let value = value.to_str().unwrap_or_default();
            assert!(
                !value.contains(WEBHOOK_SECRET),
                "header {name} carries the webhook secret"
            );
        }
    }
    let recorded = serde_json::to_string(&report.notifications).expect("serialises");
    assert_no_secret_material(&recorded, "report.notifications");
}

#[tokio::test]
async fn the_policy_decides_when_to_send() {
    for (policy, attention, expected) in [
        (NotifyPolicy::Attention, true, 1),
        (NotifyPolicy::Attention, false, 0),
        (NotifyPolicy::Always, true, 1),
        (NotifyPolicy::Always, false, 1),
        (NotifyPolicy::Never, true, 0),
        (NotifyPolicy::Never, false, 0),
    ] {
        let (receiver, base) = start_receiver().await;
        let mut report = if attention {
            fixture::realistic_report()
        } else {
            let mut r = fixture::empty_report();
            r.targets = vec![fixture::target(
                "adf-sales",
                "ls_synapse_dw",
                "AzureSqlDW",
                Verdict::Resave,
            )];
            r.summarise();
            r
        };
        assert_eq!(report.summary.attention, attention);
        notify::send(&all_channels(policy, &base), &http(), &mut report).await;
        for channel in ["webhook", "teams", "slack"] {
            assert_eq!(
                receiver.on(channel).len(),
                expected,
                "{policy:?}, attention {attention}, {channel}"
            );
        }
        assert_eq!(
            report.notifications.len(),
            expected * 3,
            "{policy:?}, attention {attention}: outcomes recorded only when sent"
        );
    }
}

#[tokio::test]
async fn a_channel_that_always_fails_is_recorded_and_does_not_fail_the_run() {
    let (receiver, base) = start_receiver().await;
    receiver.always(500);
    let mut report = fixture::realistic_report();
    let exit_code = report.exit_code();
    let started = std::time::Instant::now();

    notify::send(
        &all_channels(NotifyPolicy::Always, &base),
        &http(),
        &mut report,
    )
    .await;

    assert!(started.elapsed() < Duration::from_secs(30), "bounded");
    for channel in ["webhook", "teams", "slack"] {
        assert_eq!(receiver.on(channel).len(), 3, "{channel}: three attempts");
    }
    assert_eq!(report.notifications.len(), 3);
    let host = base.trim_start_matches("http://");
    for n in &report.notifications {
        assert!(!n.delivered, "{n:?}");
        let error = n.error.as_deref().expect("an error");
        assert!(error.contains("HTTP 500"), "{error}");
        assert!(error.contains("3 attempts"), "{error}");
        assert!(
            !error.contains(host) && !error.contains("http://"),
            "{error}"
        );
        assert_no_secret_material(error, "the error");
    }
    assert_eq!(report.exit_code(), exit_code);
    schema::assert_valid_report(&serde_json::to_value(&report).expect("serialises"));
}

#[tokio::test]
async fn a_refused_connection_is_recorded_without_the_url() {
    // A port that was free a moment ago and has nobody listening now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}");
    let mut report = fixture::realistic_report();

    notify::send(
        &all_channels(NotifyPolicy::Always, &base),
        &http(),
        &mut report,
    )
    .await;

    assert_eq!(report.notifications.len(), 3);
    for n in &report.notifications {
        assert!(!n.delivered);
        let error = n.error.as_deref().expect("an error");
        assert!(error.contains("could not connect"), "{error}");
        assert!(!error.contains(&format!("127.0.0.1:{port}")), "{error}");
        assert_no_secret_material(error, "the error");
    }
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let (receiver, base) = start_receiver().await;
    receiver.script("slack", &[(429, Some("1"))]);
    let settings = Settings {
        slack_webhook_url: Some(format!("{base}/slack/services/T0001/B0002/{URL_KEY}")),
        ..settings(NotifyPolicy::Always)
    };
    let mut report = fixture::realistic_report();
    let started = std::time::Instant::now();

    notify::send(&settings, &http(), &mut report).await;

    assert_eq!(receiver.on("slack").len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After"
    );
    assert_eq!(report.notifications.len(), 1);
    assert!(
        report.notifications[0].delivered,
        "{:?}",
        report.notifications
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (receiver, base) = start_receiver().await;
    receiver.script("teams", &[(400, None)]);
    let settings = Settings {
        teams_webhook_url: Some(format!("{base}/teams/invoke?sig={URL_KEY}")),
        ..settings(NotifyPolicy::Always)
    };
    let mut report = fixture::realistic_report();
    notify::send(&settings, &http(), &mut report).await;
    assert_eq!(receiver.on("teams").len(), 1);
    let error = report.notifications[0].error.as_deref().expect("an error");
    assert!(
        error.contains("HTTP 400") && error.contains("1 attempt"),
        "{error}"
    );
}

#[tokio::test]
async fn the_webhook_is_never_sent_unsigned() {
    let (receiver, base) = start_receiver().await;
    let settings = Settings {
        webhook_url: Some(format!("{base}/webhook/{URL_KEY}")),
        webhook_secret: None,
        ..settings(NotifyPolicy::Always)
    };
    let mut report = fixture::realistic_report();
    notify::send(&settings, &http(), &mut report).await;
    assert!(receiver.all().is_empty());
    assert_eq!(report.notifications.len(), 1);
    assert!(!report.notifications[0].delivered);
    let error = report.notifications[0].error.as_deref().expect("an error");
    assert!(error.contains("ADF_REFRESH_WEBHOOK_SECRET"), "{error}");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let settings = Settings {
        slack_webhook_url: Some(format!("http://hooks.example.invalid/services/{URL_KEY}")),
        ..settings(NotifyPolicy::Always)
    };
    let mut report = fixture::realistic_report();
    notify::send(&settings, &http(), &mut report).await;
    let n = &report.notifications[0];
    assert!(!n.delivered);
    let error = n.error.as_deref().expect("an error");
    assert!(error.contains("https"), "{error}");
    assert!(!error.contains("hooks.example.invalid"), "{error}");
    assert_no_secret_material(error, "the error");
}

#[tokio::test]
async fn the_teams_message_is_an_adaptive_card() {
    let (receiver, base) = start_receiver().await;
    let mut report = fixture::realistic_report();
    notify::send(
        &all_channels(NotifyPolicy::Always, &base),
        &http(),
        &mut report,
    )
    .await;
    let body = receiver.on("teams")[0].json();
    assert_eq!(
        body,
        notify::teams_message(&notify::Notice::of_report(&report)),
        "what was sent"
    );

    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(attachments[0]["contentUrl"].is_null());
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let blocks = card["body"].as_array().expect("body");
    assert!(
        blocks[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("kv-data-prod/sql-etl-password")),
        "title names the secret"
    );
    let facts = blocks
        .iter()
        .find(|b| b["type"] == "FactSet")
        .and_then(|b| b["facts"].as_array())
        .expect("a FactSet");
    assert!(
        facts
            .iter()
            .any(|f| f["title"] == "Tests failed" && f["value"] == "1")
    );
    let text = serde_json::to_string(card).expect("serialises");
    assert!(text.contains("adf-prod-weu/ls_rest_partner_api"));
    assert!(text.contains("AADSTS7000222 · owner: entraAdmin"));
    assert!(text.contains(
        "Fix: In Entra ID > App registrations > the app > Certificates & secrets, create a new client secret."
    ));
    assert!(
        !text.contains("adf-sales/ls_synapse_dw"),
        "fine targets are only counted"
    );
}

#[tokio::test]
async fn the_slack_message_is_block_kit() {
    let (receiver, base) = start_receiver().await;
    let mut report = fixture::realistic_report();
    for i in 0..25 {
        report.targets.push(fixture::target(
            "adf-bulk",
            &format!("ls_bulk_{i:02}"),
            "AzureSqlDatabase",
            Verdict::Ambiguous,
        ));
    }
    report.summarise();
    notify::send(
        &all_channels(NotifyPolicy::Always, &base),
        &http(),
        &mut report,
    )
    .await;
    let body = receiver.on("slack")[0].json();
    assert_eq!(
        body,
        notify::slack_message(&notify::Notice::of_report(&report)),
        "what was sent"
    );

    assert!(
        body["text"].as_str().is_some_and(|t| !t.is_empty()),
        "fallback text"
    );
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= 50, "Slack's limit");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.chars().count() <= 150)
    );
    assert_eq!(blocks[1]["type"], "section");
    let fields = blocks[1]["fields"].as_array().expect("fields");
    assert!(!fields.is_empty() && fields.len() <= 10);
    let target_sections = blocks
        .iter()
        .skip(2)
        .filter(|b| b["type"] == "section")
        .count();
    assert_eq!(target_sections, 20, "capped");
    let needing = 6 + 25;
    let more = format!("…and {} more", needing - 20);
    assert!(
        blocks
            .iter()
            .any(|b| b["type"] == "context" && b["elements"][0]["text"] == more.as_str()),
        "{more}"
    );
    for b in blocks {
        if let Some(text) = b["text"]["text"].as_str() {
            assert!(text.chars().count() <= 3000);
        }
    }
}

#[test]
fn every_channel_message_of_a_report_is_pinned() {
    let report = fixture::realistic_report();
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("serialises");
    insta::assert_snapshot!(
        "report_webhook",
        pretty(notify::webhook_body(&notify::Notice::of_report(&report)))
    );
    insta::assert_snapshot!(
        "report_teams",
        pretty(notify::teams_message(&notify::Notice::of_report(&report)))
    );
    insta::assert_snapshot!(
        "report_slack",
        pretty(notify::slack_message(&notify::Notice::of_report(&report)))
    );
}

#[test]
fn a_report_notice_lists_exactly_the_targets_that_need_attention_with_owner_and_fix() {
    let report = fixture::realistic_report();
    let notice = notify::Notice::of_report(&report);
    let needing: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.needs_attention())
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(notice.items.len(), needing.len());
    for name in &needing {
        assert!(
            notice
                .items
                .iter()
                .any(|i| i.name.ends_with(&format!("/{name}"))),
            "{name} is listed"
        );
    }
    let partner = notice
        .items
        .iter()
        .find(|i| i.name.ends_with("/ls_rest_partner_api"))
        .expect("the failed target");
    assert!(
        partner
            .lines
            .iter()
            .any(|l| l.contains("owner: entraAdmin"))
    );
    assert!(partner.fix.is_some());
    assert_eq!(notice.incomplete.is_some(), !report.complete);
}
