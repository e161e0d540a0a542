//! Notifications: one consolidated message per run and per channel, sent as the policy says, carrying
//! metadata only.
//!
//! The channels, each optional:
//! - a generic JSON webhook, signed with HMAC-SHA256 (`X-Adf-Refresh-Timestamp`, `X-Adf-Refresh-Signature`);
//! - Microsoft Teams through a Workflows webhook: a message with one Adaptive Card attachment;
//! - Slack through an incoming webhook, with Block Kit.
//!
//! What is sent: names, verdicts, statuses, counts, diagnosis codes and owners, and (for people) the first
//! fix step from the product's own table. Never ADF's test messages, raw bodies, etags or run error texts:
//! those can quote connection details, and they stay in the report.
//!
//! The webhook URLs are credentials (Slack and Teams URLs hold their key in the path or the query), so no
//! URL and no header is ever logged or written into an error; errors are scrubbed of every part of the URL
//! as a second line of defence. Delivery retries with the product's [`RetryPolicy`] (honouring `Retry-After`),
//! and a channel that fails never fails the run: each outcome is recorded in `report.notifications`.

use crate::app::App;
use crate::azure::retry::{self, Attempt, RetryPolicy, is_retryable_status, parse_retry_after};
use crate::config::{NotifyPolicy, SecretString, Settings};
use crate::inventory::{Inventory, SecretEntry, Severity};
use crate::report::text::{
    display_name, needs_attention, primary_diagnosis, resave_word, test_word, title, verdict_word,
};
use crate::report::{
    NotificationOutcome, Report, Target, by_soonest_next_run, impact_headline, reference_time,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use tokio::time::Instant;

/// The `schema` of the generic webhook's body.
pub const NOTIFICATION_SCHEMA: &str = "adf-secret-refresh/notification/v1";
/// Unix seconds at signing time.
pub const TIMESTAMP_HEADER: &str = "X-Adf-Refresh-Timestamp";
/// `sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body).
pub const SIGNATURE_HEADER: &str = "X-Adf-Refresh-Signature";

/// Channel names as recorded in `report.notifications`.
pub const WEBHOOK: &str = "webhook";
pub const TEAMS: &str = "teams";
pub const SLACK: &str = "slack";

/// Targets listed one by one in a Teams or Slack message; the rest are counted.
const MAX_LISTED: usize = 20;
/// One attempt's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// All attempts of one channel, waits included. Channels are sent at once, so this bounds them all: a run's
/// budget plus this stays inside the Functions timeout (a test holds `host.json` to it).
pub const CHANNEL_BUDGET: Duration = Duration::from_secs(60);

/// The retry policy for notifications: the product's policy, with fewer attempts than for ARM.
fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(400),
        max_delay: Duration::from_secs(10),
    }
}

/// Sends the run's notifications as the policy says and records each outcome in the report.
pub async fn send_all(app: &App, report: &mut Report) {
    send(&app.settings, &app.http, report).await;
}

/// Sends one message per configured channel if the policy says so, and appends each channel's outcome to
/// `report.notifications`. Never fails: an undeliverable channel is recorded with `delivered: false`.
pub async fn send(settings: &Settings, http: &reqwest::Client, report: &mut Report) {
    if !should_send(settings.notify, report) {
        return;
    }
    let deliveries = deliveries(settings, report);
    let outcomes = deliver_all(http, &deliveries).await;
    report.notifications.extend(outcomes);
}

/// Posts every message at once and logs each outcome.
async fn deliver_all(http: &reqwest::Client, deliveries: &[Delivery]) -> Vec<NotificationOutcome> {
    let outcomes = futures::future::join_all(deliveries.iter().map(|d| deliver(http, d))).await;
    for outcome in &outcomes {
        if outcome.delivered {
            tracing::info!(channel = outcome.channel.as_str(), "notification delivered");
        } else {
            tracing::warn!(
                channel = outcome.channel.as_str(),
                error = outcome.error.as_deref().unwrap_or(""),
                "notification not delivered"
            );
        }
    }
    outcomes
}

/// Whether the policy sends a message for this report.
pub fn should_send(policy: NotifyPolicy, report: &Report) -> bool {
    match policy {
        NotifyPolicy::Always => true,
        NotifyPolicy::Never => false,
        NotifyPolicy::Attention => report.summary.attention,
    }
}

/// A configured URL: set and not blank.
fn configured(url: &Option<String>) -> Option<&str> {
    url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

/// One message to one channel.
struct Delivery {
    channel: &'static str,
    url: String,
    body: Result<String, String>,
    /// The HMAC key, for the generic webhook.
    signing_key: Option<SecretString>,
}

/// The messages of a run's report for the configured channels.
fn deliveries(settings: &Settings, report: &Report) -> Vec<Delivery> {
    channel_messages(
        settings,
        || webhook_payload(report),
        || teams_payload(report),
        || slack_payload(report),
    )
}

/// One message per configured channel, in a fixed order: webhook, Teams, Slack. Each payload is built only
/// for a channel that is configured.
fn channel_messages(
    settings: &Settings,
    webhook: impl FnOnce() -> Value,
    teams: impl FnOnce() -> Value,
    slack: impl FnOnce() -> Value,
) -> Vec<Delivery> {
    let serialise = |value: Value| {
        serde_json::to_string(&value).map_err(|e| format!("could not serialise the message: {e}"))
    };
    let mut out = Vec::new();
    if let Some(url) = configured(&settings.webhook_url) {
        let key = settings
            .webhook_secret
            .clone()
            .filter(|k| !k.expose().is_empty());
        out.push(Delivery {
            channel: WEBHOOK,
            url: url.to_string(),
            body: match key {
                Some(_) => serialise(webhook()),
                None => Err(
                    "ADF_REFRESH_WEBHOOK_SECRET is not set: the webhook is never sent unsigned"
                        .to_string(),
                ),
            },
            signing_key: key,
        });
    }
    if let Some(url) = configured(&settings.teams_webhook_url) {
        out.push(Delivery {
            channel: TEAMS,
            url: url.to_string(),
            body: serialise(teams()),
            signing_key: None,
        });
    }
    if let Some(url) = configured(&settings.slack_webhook_url) {
        out.push(Delivery {
            channel: SLACK,
            url: url.to_string(),
            body: serialise(slack()),
            signing_key: None,
        });
    }
    out
}

/// Posts one message, retrying transient failures; the outcome never holds the URL.
async fn deliver(http: &reqwest::Client, d: &Delivery) -> NotificationOutcome {
    let failed = |error: String| NotificationOutcome {
        channel: d.channel.to_string(),
        delivered: false,
        error: Some(scrub(&error, &d.url)),
    };
    let body = match &d.body {
        Ok(body) => body,
        Err(e) => return failed(e.clone()),
    };
    let url = match checked_url(&d.url) {
        Ok(url) => url,
        Err(e) => return failed(e),
    };
    let deadline = Instant::now() + CHANNEL_BUDGET;
    let url = &url;
    let outcome = retry::run(&retry_policy(), Some(deadline), |attempt| async move {
        let mut request = http
            .post(url.clone())
            .timeout(retry::request_timeout(REQUEST_TIMEOUT, Some(deadline)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(key) = &d.signing_key {
            let timestamp = unix_now();
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(
                    SIGNATURE_HEADER,
                    sign(key.expose().as_bytes(), timestamp, body.as_bytes()),
                );
        }
        let attempts = attempt + 1;
        let after = |failure: String| {
            let plural = if attempts == 1 { "" } else { "s" };
            format!("{failure} (after {attempts} attempt{plural})")
        };
        match request.send().await {
            Err(e) => {
                let retryable = !e.is_builder() && !e.is_redirect();
                let error = after(describe_error(e));
                if retryable {
                    tracing::debug!(
                        channel = d.channel,
                        attempt,
                        "notification failed; retrying"
                    );
                    Attempt::Retry {
                        error,
                        retry_after: None,
                    }
                } else {
                    Attempt::Fail(error)
                }
            }
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Attempt::Done(());
                }
                let retry_after = parse_retry_after(
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                );
                let said = response
                    .text()
                    .await
                    .map(|t| one_line(&t, 200))
                    .unwrap_or_default();
                let mut failure = format!("HTTP {}", status.as_u16());
                if !said.is_empty() {
                    failure = format!("{failure}: {said}");
                }
                let error = after(failure);
                if is_retryable_status(status.as_u16()) {
                    tracing::debug!(
                        channel = d.channel,
                        attempt,
                        "notification failed; retrying"
                    );
                    Attempt::Retry { error, retry_after }
                } else {
                    Attempt::Fail(error)
                }
            }
        }
    })
    .await;
    match outcome {
        Ok(()) => NotificationOutcome {
            channel: d.channel.to_string(),
            delivered: true,
            error: None,
        },
        Err(error) => failed(error),
    }
}

/// The URL, if it is one that may carry a credential: https, or http to a loopback address (tests, sidecars).
fn checked_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("the URL is not valid ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(
            "the URL must be https (it carries a credential); http is allowed only to loopback"
                .to_string(),
        ),
    }
}

/// `sha256=<hex>` of HMAC-SHA256(key, timestamp + "." + body), as the contract defines the signature.
pub fn sign(key: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A transport error without its URL: what failed and the causes below it.
fn describe_error(e: reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let e = e.without_url();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

/// Removes every part of `url` that could be a credential from `text`: the URL itself, its path and query,
/// and every longer path segment and query value (Slack keeps its key in the path, Teams in `sig=`).
fn scrub(text: &str, url: &str) -> String {
    let mut secrets: Vec<String> = vec![url.to_string()];
    if let Ok(parsed) = reqwest::Url::parse(url) {
        secrets.push(parsed.as_str().to_string());
        if parsed.path().len() > 1 {
            secrets.push(parsed.path().to_string());
        }
        if let Some(query) = parsed.query() {
            secrets.push(query.to_string());
        }
        secrets.extend(
            parsed
                .path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 6)
                .map(str::to_string),
        );
        secrets.extend(
            parsed
                .query_pairs()
                .map(|(_, v)| v.into_owned())
                .filter(|v| v.len() >= 6),
        );
        if let Some(host) = parsed.host_str() {
            secrets.push(host.to_string());
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "<redacted>");
    }
    out
}

/// The first `max` characters of a response body, on one line.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// The generic webhook's body: the report's metadata, never its messages.
pub fn webhook_payload(report: &Report) -> Value {
    json!({
        "schema": NOTIFICATION_SCHEMA,
        "reportId": report.id,
        "command": report.command,
        "dryRun": report.dry_run,
        "trigger": report.trigger,
        "startedAt": report.started_at,
        "finishedAt": report.finished_at,
        "secret": report.secret.as_ref().map(|s| json!({
            "vault": s.vault,
            "name": s.name,
            "version": s.version,
        })),
        "summary": report.summary,
        "complete": report.complete,
        "exitCode": report.exit_code(),
        "duplicateOf": report.duplicate_of,
        "targets": by_soonest_next_run(&report.targets).into_iter().map(|t| json!({
            "kind": t.kind,
            "factory": t.factory,
            "name": t.name,
            "type": t.adf_type,
            "verdict": t.verdict,
            "notes": t.notes,
            "attention": needs_attention(t),
            "impact": t.impact.as_ref().map(|i| json!({
                "pipelines": i.pipelines,
                "nextRun": i.next_run,
                "triggers": i.triggers.iter().map(|tr| json!({
                    "name": tr.name, "type": tr.trigger_type, "state": tr.state, "nextRun": tr.next_run,
                })).collect::<Vec<_>>(),
            })),
            "diagnosis": t.diagnosis.as_ref().map(|d| json!({"code": d.code, "owner": d.owner})),
            "resave": {"status": t.resave.status},
            "test": {
                "status": t.test.status,
                "diagnosis": t.test.diagnosis.as_ref().map(|d| json!({"code": d.code, "owner": d.owner})),
            },
        })).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(|f| json!({
            "code": f.code,
            "severity": f.severity,
        })).collect::<Vec<_>>(),
        "errors": report.errors.iter().map(|e| json!({
            "stage": e.stage,
            "transient": e.transient,
        })).collect::<Vec<_>>(),
    })
}

/// The one-line headline of a message: what ran and how it went.
fn headline(report: &Report) -> String {
    let outcome = if !report.complete {
        "did not complete"
    } else if report.summary.attention {
        "attention needed"
    } else {
        "all fine"
    };
    match &report.secret {
        Some(s) => format!("{}: {}/{} — {outcome}", title(report), s.vault, s.name),
        None => format!("{} — {outcome}", title(report)),
    }
}

/// Counts as (label, value), for the Teams facts and the Slack fields.
fn counts(report: &Report) -> Vec<(&'static str, String)> {
    let s = &report.summary;
    vec![
        ("Factories scanned", s.factories_scanned.to_string()),
        (
            "Linked services scanned",
            s.linked_services_scanned.to_string(),
        ),
        ("Affected", s.affected.to_string()),
        ("Re-saved", s.resaved.to_string()),
        ("Tests passed", s.tests_passed.to_string()),
        ("Tests failed", s.tests_failed.to_string()),
        ("Skipped", s.skipped.to_string()),
        ("Findings", report.findings.len().to_string()),
        ("Run errors", report.errors.len().to_string()),
    ]
}

/// `verdict · re-save · test · owner`, for one target.
fn outcome_line(t: &Target) -> String {
    let mut parts = vec![
        verdict_word(t.verdict).to_string(),
        resave_word(t.resave.status).to_string(),
        test_word(t.test.status).to_string(),
    ];
    if let Some(d) = primary_diagnosis(t) {
        parts.push(format!("{} · owner: {}", d.code, d.owner));
    }
    parts.join(" · ")
}

fn first_fix(t: &Target) -> Option<&str> {
    primary_diagnosis(t)
        .and_then(|d| d.fix.first())
        .map(String::as_str)
}

/// The secret line: `vault/name`, version, command, report id.
fn secret_line(report: &Report) -> String {
    let secret = report
        .secret
        .as_ref()
        .map(|s| {
            format!(
                "Secret {}/{} version {}",
                s.vault,
                s.name,
                s.version.as_deref().unwrap_or("latest")
            )
        })
        .unwrap_or_else(|| "No single secret (inventory)".to_string());
    format!("{secret} · report {}", report.id)
}

/// The Teams Workflows message: one Adaptive Card 1.4 attachment.
pub fn teams_payload(report: &Report) -> Value {
    let now = reference_time(report);
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": headline(report),
            "size": "Large",
            "weight": "Bolder",
            "wrap": true,
            "color": if !report.complete { "Attention" } else if report.summary.attention { "Warning" } else { "Good" },
        }),
        json!({"type": "TextBlock", "text": secret_line(report), "isSubtle": true, "wrap": true, "spacing": "None"}),
        json!({
            "type": "FactSet",
            "facts": counts(report).into_iter().map(|(title, value)| json!({"title": title, "value": value})).collect::<Vec<_>>(),
        }),
    ];
    let needing: Vec<&Target> =
        by_soonest_next_run(report.targets.iter().filter(|t| needs_attention(t)));
    if !needing.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Needs attention", "weight": "Bolder", "wrap": true, "separator": true}));
        for t in needing.iter().take(MAX_LISTED) {
            let mut items = vec![
                json!({"type": "TextBlock", "text": display_name(t), "weight": "Bolder", "wrap": true}),
            ];
            if let Some(impact) = &t.impact {
                items.push(json!({"type": "TextBlock", "text": impact_headline(impact, now), "wrap": true, "spacing": "None"}));
            }
            items.extend([
                json!({"type": "TextBlock", "text": outcome_line(t), "wrap": true, "spacing": "None"}),
            ]);
            if let Some(step) = first_fix(t) {
                items.push(json!({"type": "TextBlock", "text": format!("Fix: {step}"), "isSubtle": true, "wrap": true, "spacing": "None"}));
            }
            body.push(json!({"type": "Container", "items": items, "spacing": "Medium"}));
        }
        if needing.len() > MAX_LISTED {
            body.push(json!({"type": "TextBlock", "text": format!("…and {} more", needing.len() - MAX_LISTED), "isSubtle": true, "wrap": true}));
        }
    }
    if !report.complete {
        body.push(json!({"type": "TextBlock", "text": "The run did not complete; the report says why.", "color": "Attention", "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// Escapes the three characters Slack's mrkdwn reserves.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts a Block Kit text to its limit.
fn cap(s: String, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s
    }
}

/// The Slack incoming-webhook message: a fallback `text` and Block Kit blocks (at most 50, as Slack allows).
pub fn slack_payload(report: &Report) -> Value {
    let now = reference_time(report);
    let s = &report.summary;
    let fallback = format!(
        "{}: {} affected, {} re-saved, {} tests failed, {} skipped",
        headline(report),
        s.affected,
        s.resaved,
        s.tests_failed,
        s.skipped
    );
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cap(headline(report), 150), "emoji": true}}),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": cap(slack_escape(&secret_line(report)), 3000)},
            "fields": counts(report).into_iter().take(10).map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})).collect::<Vec<_>>(),
        }),
    ];
    let needing: Vec<&Target> =
        by_soonest_next_run(report.targets.iter().filter(|t| needs_attention(t)));
    if !needing.is_empty() {
        blocks.push(json!({"type": "divider"}));
        for t in needing.iter().take(MAX_LISTED) {
            let mut text = format!(
                "*{}* ({})\n",
                slack_escape(&display_name(t)),
                slack_escape(&t.adf_type),
            );
            if let Some(impact) = &t.impact {
                text.push_str(&slack_escape(&impact_headline(impact, now)));
                text.push('\n');
            }
            text.push_str(&slack_escape(&outcome_line(t)));
            if let Some(step) = first_fix(t) {
                text.push_str(&format!("\n_Fix:_ {}", slack_escape(step)));
            }
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": cap(text, 3000)}}),
            );
        }
        if needing.len() > MAX_LISTED {
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("…and {} more", needing.len() - MAX_LISTED)}]}));
        }
    }
    if !report.complete {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "The run did not complete; the report says why."}]}));
    }
    json!({"text": fallback, "blocks": blocks})
}

// ---------------------------------------------------------------------------------------------------------
// The inventory (audit, and the consumers at risk on an expiry event), through the same channels.

/// The `schema` of the generic webhook's body for an inventory.
pub const INVENTORY_NOTIFICATION_SCHEMA: &str = "adf-secret-refresh/inventory-notification/v1";

/// Sends an inventory's summary as the policy says (under `attention`: when a finding needs a person) and
/// records each outcome in `inventory.notifications`. `severity` is how loud the message is: a near-expiry
/// event is a warning, an expired secret critical; the audit passes its worst finding.
pub async fn send_inventory(
    settings: &Settings,
    http: &reqwest::Client,
    inventory: &mut Inventory,
    severity: Severity,
) {
    let send = match settings.notify {
        NotifyPolicy::Always => true,
        NotifyPolicy::Never => false,
        NotifyPolicy::Attention => inventory.summary.attention,
    };
    if !send {
        return;
    }
    let deliveries = channel_messages(
        settings,
        || inventory_webhook_payload(inventory, severity),
        || inventory_teams_payload(inventory, severity),
        || inventory_slack_payload(inventory, severity),
    );
    let outcomes = deliver_all(http, &deliveries).await;
    inventory.notifications.extend(outcomes);
}

/// The secrets that need a person, most urgent first, with their consumers.
fn at_risk(inventory: &Inventory) -> Vec<&SecretEntry> {
    inventory
        .secrets
        .iter()
        .filter(|s| {
            inventory
                .findings_for(s)
                .any(|f| f.severity != Severity::Info)
        })
        .collect()
}

fn inventory_headline(inventory: &Inventory, severity: Severity) -> String {
    let level = match severity {
        Severity::Critical => "Critical",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    };
    match (inventory.secrets.as_slice(), &inventory.trigger) {
        ([one], Some(t)) if t.event_type.is_some() => format!(
            "{level}: secret {}/{} {} — {} consumer{} at risk",
            one.vault,
            one.secret,
            one.expires
                .as_deref()
                .map_or("has no expiry date".to_string(), |e| format!("expires {e}")),
            one.consumers.len(),
            if one.consumers.len() == 1 { "" } else { "s" }
        ),
        _ => format!(
            "{level}: Key Vault audit — {} critical, {} warning",
            inventory.summary.critical, inventory.summary.warning
        ),
    }
}

/// The generic webhook's body for an inventory: names, dates, verdicts, codes; never a message text.
pub fn inventory_webhook_payload(inventory: &Inventory, severity: Severity) -> Value {
    json!({
        "schema": INVENTORY_NOTIFICATION_SCHEMA,
        "inventoryId": inventory.id,
        "severity": severity,
        "trigger": inventory.trigger,
        "startedAt": inventory.started_at,
        "finishedAt": inventory.finished_at,
        "complete": inventory.complete,
        "summary": inventory.summary,
        "secrets": at_risk(inventory).iter().take(MAX_LISTED).map(|s| json!({
            "vault": s.vault,
            "vaultUrl": s.vault_url,
            "secret": s.secret,
            "status": s.status,
            "expires": s.expires,
            "consumers": s.consumers.iter().map(|c| json!({
                "kind": c.kind, "factory": c.factory, "name": c.name, "verdict": c.verdict,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "findings": inventory.findings.iter().filter(|f| f.severity != Severity::Info).take(MAX_LISTED * 5).map(|f| json!({
            "code": f.code, "severity": f.severity, "subject": f.subject, "owner": f.owner,
        })).collect::<Vec<_>>(),
    })
}

fn consumers_line(s: &SecretEntry) -> String {
    let names: Vec<String> = s
        .consumers
        .iter()
        .take(10)
        .map(|c| format!("{}/{}", crate::inventory::short(&c.factory), c.name))
        .collect();
    let more = s.consumers.len().saturating_sub(names.len());
    let mut line = if names.is_empty() {
        "no consumer in scope".to_string()
    } else {
        names.join(", ")
    };
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

/// The Teams message for an inventory: one Adaptive Card.
pub fn inventory_teams_payload(inventory: &Inventory, severity: Severity) -> Value {
    let colour = match severity {
        Severity::Critical => "Attention",
        Severity::Warning => "Warning",
        Severity::Info => "Good",
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": inventory_headline(inventory, severity),
        "size": "Large", "weight": "Bolder", "wrap": true, "color": colour,
    })];
    for s in at_risk(inventory).iter().take(MAX_LISTED) {
        body.push(json!({"type": "Container", "spacing": "Medium", "items": [
            {"type": "TextBlock", "text": format!("{}/{} · {}", s.vault, s.secret, s.expires.as_deref().map_or("no expiry".to_string(), |e| format!("expires {e}"))), "weight": "Bolder", "wrap": true},
            {"type": "TextBlock", "text": format!("Used by {}", consumers_line(s)), "wrap": true, "spacing": "None"},
        ]}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// The Slack message for an inventory.
pub fn inventory_slack_payload(inventory: &Inventory, severity: Severity) -> Value {
    let headline = inventory_headline(inventory, severity);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cap(headline.clone(), 150), "emoji": true}}),
    ];
    for s in at_risk(inventory).iter().take(MAX_LISTED) {
        let text = format!(
            "*{}/{}* · {}\nUsed by {}",
            slack_escape(&s.vault),
            slack_escape(&s.secret),
            s.expires
                .as_deref()
                .map_or("no expiry".to_string(), |e| format!("expires {e}")),
            slack_escape(&consumers_line(s))
        );
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cap(text, 3000)}}));
    }
    json!({"text": headline, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_and_its_notifications_fit_inside_the_functions_timeout() {
        let host: Value = serde_json::from_str(include_str!("../host.json")).unwrap();
        let timeout = host["functionTimeout"].as_str().unwrap_or_default();
        let parts: Vec<u64> = timeout.split(':').filter_map(|p| p.parse().ok()).collect();
        let seconds = parts.iter().fold(0, |acc, p| acc * 60 + p);
        assert_eq!(parts.len(), 3, "{timeout}");
        // Every ARM and Key Vault request ends by the run's deadline; the notifications follow it.
        let used = crate::config::DEFAULT_RUN_BUDGET_SECONDS + CHANNEL_BUDGET.as_secs();
        assert!(used + 30 <= seconds, "{used}s of {seconds}s");
    }
    use crate::report::{Command, Summary, Trigger};

    fn report(attention: bool) -> Report {
        Report {
            schema: crate::report::SCHEMA.into(),
            id: "r1".into(),
            command: Command::Refresh,
            dry_run: false,
            trigger: Trigger::default(),
            started_at: String::new(),
            finished_at: String::new(),
            scope: vec![],
            secret: None,
            summary: Summary {
                attention,
                ..Summary::default()
            },
            targets: vec![],
            findings: vec![],
            errors: vec![],
            complete: true,
            duplicate_of: None,
            notifications: vec![],
        }
    }

    #[test]
    fn the_policy_decides_whether_to_send() {
        for (policy, attention, expected) in [
            (NotifyPolicy::Attention, true, true),
            (NotifyPolicy::Attention, false, false),
            (NotifyPolicy::Always, true, true),
            (NotifyPolicy::Always, false, true),
            (NotifyPolicy::Never, true, false),
            (NotifyPolicy::Never, false, false),
        ] {
            assert_eq!(
                should_send(policy, &report(attention)),
                expected,
                "{policy:?} {attention}"
            );
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independently computed value.
        let sig = sign(b"key", 1_700_000_000, b"{}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").expect("any key length");
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_eq!(sig.len(), "sha256=".len() + 64);
    }

    #[test]
    fn errors_lose_every_part_of_the_url() {
        let url = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX";
        let text = format!(
            "failed for {url} and again for /services/T0001/B0002/XXXXsecretXXXX and XXXXsecretXXXX"
        );
        let scrubbed = scrub(&text, url);
        assert!(!scrubbed.contains("XXXXsecretXXXX"), "{scrubbed}");
        assert!(!scrubbed.contains("hooks.slack.com"), "{scrubbed}");
        let teams = "https://prod.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGSIGSIGSIG";
        assert!(!scrub("sig=SIGSIGSIGSIG", teams).contains("SIGSIGSIGSIG"));
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_used() {
        assert!(checked_url("https://example.com/hook").is_ok());
        assert!(checked_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(checked_url("http://localhost/hook").is_ok());
        assert!(checked_url("http://[::1]/hook").is_ok());
        let err = checked_url("http://example.com/hook?sig=abc").unwrap_err();
        assert!(!err.contains("example.com") && !err.contains("sig"));
        let err = checked_url("not a url sig=abc").unwrap_err();
        assert!(!err.contains("sig=abc"));
    }

    #[test]
    fn slack_text_is_escaped_and_capped() {
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(cap("x".repeat(200), 150).chars().count(), 150);
    }

    #[test]
    fn a_webhook_without_a_secret_is_not_sent_unsigned() {
        let settings = Settings {
            scopes: vec![],
            arm_endpoint: String::new(),
            keyvault_endpoint: None,
            synapse_endpoint: None,
            ca_file: None,
            credential: crate::azure::auth::CredentialKind::DeveloperTools,
            vault_allow: vec![],
            notify: NotifyPolicy::Always,
            webhook_url: Some("https://example.com/hook".into()),
            webhook_secret: None,
            teams_webhook_url: Some("  ".into()),
            slack_webhook_url: None,
            concurrency: 1,
            run_budget: Duration::from_secs(1),
            expiry_warning_days: Default::default(),
            platforms: Default::default(),
        };
        let d = deliveries(&settings, &report(true));
        assert_eq!(d.len(), 1, "a blank Teams URL is not a channel");
        assert!(d[0].body.is_err());
    }
}
