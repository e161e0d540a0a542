//! Notifications: one consolidated message per run and per channel, sent as the policy says, carrying
//! metadata only.
//!
//! The channels, each optional:
//! - a generic JSON webhook, signed with HMAC-SHA256 (`X-Adf-Refresh-Timestamp`, `X-Adf-Refresh-Signature`);
//! - Microsoft Teams through a Workflows webhook: a message with one Adaptive Card attachment;
//! - Slack through an incoming webhook, with Block Kit.
//!
//! A report and an inventory each become one [`Notice`] (title, facts, the items needing attention with their
//! owner and first fix step, the webhook's metadata); each channel has one builder that renders any notice.
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
use crate::inventory::{Inventory, SecretEntry};
use crate::report::text::{
    display_name, primary_diagnosis, resave_word, test_word, title, verdict_word,
};
use crate::report::{
    NotificationOutcome, Report, Severity, Target, by_soonest_next_run, impact_headline,
    reference_time,
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
    let deliveries = deliveries(settings, &Notice::of_report(report));
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

/// One message per configured channel, in a fixed order: webhook, Teams, Slack, each built from the notice
/// by that channel's one builder.
fn deliveries(settings: &Settings, notice: &Notice) -> Vec<Delivery> {
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
                Some(_) => serialise(webhook_body(notice)),
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
            body: serialise(teams_message(notice)),
            signing_key: None,
        });
    }
    if let Some(url) = configured(&settings.slack_webhook_url) {
        out.push(Delivery {
            channel: SLACK,
            url: url.to_string(),
            body: serialise(slack_message(notice)),
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

// ---------------------------------------------------------------------------------------------------------
// What a message says, whichever document it comes from.

/// The common view of a report or an inventory that every channel renders: built once per document, then
/// each channel has one builder ([`webhook_body`], [`teams_message`], [`slack_message`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The headline: what ran and how it went.
    pub title: String,
    pub tone: Tone,
    /// A quieter line under the title (the secret and the report id), if any.
    pub context: Option<String>,
    /// Headline facts as (label, value), e.g. the counts.
    pub facts: Vec<(String, String)>,
    /// The one-line text a channel shows where it cannot show blocks (Slack's fallback).
    pub summary: String,
    /// Everything that needs a person, most urgent first; the channels list the first [`MAX_LISTED`].
    pub items: Vec<NoticeItem>,
    /// Said last when the document is incomplete.
    pub incomplete: Option<String>,
    /// The generic webhook's body: the document's metadata in its own schema, never its messages.
    pub metadata: Value,
}

/// One thing that needs a person.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeItem {
    /// What it is: `factory/linked service`, or `vault/secret` with its deadline.
    pub name: String,
    /// A qualifier shown beside the name where there is room, e.g. the ADF type.
    pub aside: Option<String>,
    /// The blast radius, the outcome with its owner, the consumers.
    pub lines: Vec<String>,
    /// The first fix step, from the product's own table.
    pub fix: Option<String>,
}

/// How loud a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warning,
    Attention,
}

impl Tone {
    fn of(severity: Severity) -> Tone {
        match severity {
            Severity::Critical => Tone::Attention,
            Severity::Warning => Tone::Warning,
            Severity::Info => Tone::Good,
        }
    }

    /// The Adaptive Card colour.
    fn colour(self) -> &'static str {
        match self {
            Tone::Good => "Good",
            Tone::Warning => "Warning",
            Tone::Attention => "Attention",
        }
    }
}

impl Notice {
    /// A run's report: the targets that [`Target::needs_attention`], the soonest next run first.
    pub fn of_report(report: &Report) -> Notice {
        let now = reference_time(report);
        let s = &report.summary;
        let title = headline(report);
        let items = by_soonest_next_run(report.targets.iter().filter(|t| t.needs_attention()))
            .into_iter()
            .map(|t| NoticeItem {
                name: display_name(t),
                aside: Some(t.adf_type.clone()),
                lines: t
                    .impact
                    .as_ref()
                    .map(|impact| impact_headline(impact, now))
                    .into_iter()
                    .chain([outcome_line(t)])
                    .collect(),
                fix: first_fix(t).map(str::to_string),
            })
            .collect();
        Notice {
            summary: format!(
                "{title}: {} affected, {} re-saved, {} tests failed, {} skipped",
                s.affected, s.resaved, s.tests_failed, s.skipped
            ),
            title,
            tone: if !report.complete {
                Tone::Attention
            } else if s.attention {
                Tone::Warning
            } else {
                Tone::Good
            },
            context: Some(secret_line(report)),
            facts: counts(report),
            items,
            incomplete: (!report.complete)
                .then(|| "The run did not complete; the report says why.".to_string()),
            metadata: report_metadata(report),
        }
    }

    /// An inventory: the secrets with a finding that needs a person, most urgent first. `severity` is how
    /// loud the message is: a near-expiry event is a warning, an expired secret critical; the audit passes
    /// its worst finding.
    pub fn of_inventory(inventory: &Inventory, severity: Severity) -> Notice {
        let title = inventory_headline(inventory, severity);
        let items =
            at_risk(inventory)
                .into_iter()
                .map(|s| {
                    let worst = inventory
                        .findings_for(s)
                        .filter(|f| f.needs_attention())
                        .max_by_key(|f| f.severity);
                    NoticeItem {
                        name: format!(
                            "{}/{} · {}",
                            s.vault,
                            s.secret,
                            s.expires
                                .as_deref()
                                .map_or("no expiry".to_string(), |e| format!("expires {e}"))
                        ),
                        aside: None,
                        lines: [format!("Used by {}", consumers_line(s))]
                            .into_iter()
                            .chain(worst.map(|f| {
                                format!("{} · {} · owner: {}", f.code, f.severity, f.owner)
                            }))
                            .collect(),
                        fix: worst.and_then(|f| f.fix.first()).cloned(),
                    }
                })
                .collect();
        Notice {
            summary: title.clone(),
            title,
            tone: Tone::of(severity),
            context: None,
            facts: vec![],
            items,
            incomplete: (!inventory.complete)
                .then(|| "The audit did not complete; the inventory says why.".to_string()),
            metadata: inventory_metadata(inventory, severity),
        }
    }
}

/// The generic webhook's body.
pub fn webhook_body(notice: &Notice) -> Value {
    notice.metadata.clone()
}

/// The Teams Workflows message: one Adaptive Card 1.4 attachment.
pub fn teams_message(notice: &Notice) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": notice.title,
        "size": "Large",
        "weight": "Bolder",
        "wrap": true,
        "color": notice.tone.colour(),
    })];
    if let Some(context) = &notice.context {
        body.push(json!({"type": "TextBlock", "text": context, "isSubtle": true, "wrap": true, "spacing": "None"}));
    }
    if !notice.facts.is_empty() {
        body.push(json!({
            "type": "FactSet",
            "facts": notice.facts.iter().map(|(title, value)| json!({"title": title, "value": value})).collect::<Vec<_>>(),
        }));
    }
    if !notice.items.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Needs attention", "weight": "Bolder", "wrap": true, "separator": true}));
        for item in notice.items.iter().take(MAX_LISTED) {
            let mut items = vec![
                json!({"type": "TextBlock", "text": item.name, "weight": "Bolder", "wrap": true}),
            ];
            items.extend(item.lines.iter().map(
                |line| json!({"type": "TextBlock", "text": line, "wrap": true, "spacing": "None"}),
            ));
            if let Some(step) = &item.fix {
                items.push(json!({"type": "TextBlock", "text": format!("Fix: {step}"), "isSubtle": true, "wrap": true, "spacing": "None"}));
            }
            body.push(json!({"type": "Container", "items": items, "spacing": "Medium"}));
        }
        if notice.items.len() > MAX_LISTED {
            body.push(json!({"type": "TextBlock", "text": format!("…and {} more", notice.items.len() - MAX_LISTED), "isSubtle": true, "wrap": true}));
        }
    }
    if let Some(incomplete) = &notice.incomplete {
        body.push(
            json!({"type": "TextBlock", "text": incomplete, "color": "Attention", "wrap": true}),
        );
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

/// The Slack incoming-webhook message: a fallback `text` and Block Kit blocks (at most 50, as Slack allows).
pub fn slack_message(notice: &Notice) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cap(notice.title.clone(), 150), "emoji": true}}),
    ];
    if notice.context.is_some() || !notice.facts.is_empty() {
        let mut section = json!({"type": "section"});
        if let Some(context) = &notice.context {
            section["text"] = json!({"type": "mrkdwn", "text": cap(slack_escape(context), 3000)});
        }
        if !notice.facts.is_empty() {
            section["fields"] = notice
                .facts
                .iter()
                .take(10)
                .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")}))
                .collect();
        }
        blocks.push(section);
    }
    if !notice.items.is_empty() {
        blocks.push(json!({"type": "divider"}));
        for item in notice.items.iter().take(MAX_LISTED) {
            let mut text = format!("*{}*", slack_escape(&item.name));
            if let Some(aside) = &item.aside {
                text.push_str(&format!(" ({})", slack_escape(aside)));
            }
            for line in &item.lines {
                text.push('\n');
                text.push_str(&slack_escape(line));
            }
            if let Some(step) = &item.fix {
                text.push_str(&format!("\n_Fix:_ {}", slack_escape(step)));
            }
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": cap(text, 3000)}}),
            );
        }
        if notice.items.len() > MAX_LISTED {
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("…and {} more", notice.items.len() - MAX_LISTED)}]}));
        }
    }
    if let Some(incomplete) = &notice.incomplete {
        blocks
            .push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": incomplete}]}));
    }
    json!({"text": notice.summary, "blocks": blocks})
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

// ---------------------------------------------------------------------------------------------------------
// A run's report.

/// The generic webhook's body for a report: its metadata, never its messages.
fn report_metadata(report: &Report) -> Value {
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
            "attention": t.needs_attention(),
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
            "owner": f.owner,
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
fn counts(report: &Report) -> Vec<(String, String)> {
    let s = &report.summary;
    [
        ("Factories scanned", s.factories_scanned),
        ("Linked services scanned", s.linked_services_scanned),
        ("Affected", s.affected),
        ("Re-saved", s.resaved),
        ("Tests passed", s.tests_passed),
        ("Tests failed", s.tests_failed),
        ("Skipped", s.skipped),
        ("Findings", report.findings.len()),
        ("Run errors", report.errors.len()),
    ]
    .into_iter()
    .map(|(label, n)| (label.to_string(), n.to_string()))
    .collect()
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

// ---------------------------------------------------------------------------------------------------------
// The inventory (audit, and the consumers at risk on an expiry event), through the same channels.

/// The `schema` of the generic webhook's body for an inventory.
pub const INVENTORY_NOTIFICATION_SCHEMA: &str = "adf-secret-refresh/inventory-notification/v1";

/// Sends an inventory's notice as the policy says (under `attention`: when a finding needs a person) and
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
    let deliveries = deliveries(settings, &Notice::of_inventory(inventory, severity));
    let outcomes = deliver_all(http, &deliveries).await;
    inventory.notifications.extend(outcomes);
}

/// The secrets that need a person, most urgent first, with their consumers.
fn at_risk(inventory: &Inventory) -> Vec<&SecretEntry> {
    inventory
        .secrets
        .iter()
        .filter(|s| inventory.findings_for(s).any(|f| f.needs_attention()))
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
fn inventory_metadata(inventory: &Inventory, severity: Severity) -> Value {
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
            "consumers": s.consumers.iter().map(|c| {
                let mut consumer = json!({
                    "platform": c.platform, "resource": c.holder_id(), "kind": c.kind, "name": c.name, "verdict": c.verdict,
                });
                // `factory` only where there is one, as in the inventory itself.
                if !c.factory.is_empty() {
                    consumer["factory"] = json!(c.factory);
                }
                consumer
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "findings": inventory.findings.iter().filter(|f| f.needs_attention()).take(MAX_LISTED * 5).map(|f| json!({
            "code": f.code, "severity": f.severity, "subject": f.subject, "owner": f.owner,
        })).collect::<Vec<_>>(),
    })
}

fn consumers_line(s: &SecretEntry) -> String {
    let names: Vec<String> = s
        .consumers
        .iter()
        .take(10)
        .map(|c| format!("{}/{}", c.holder(), c.name))
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
        let d = deliveries(&settings, &Notice::of_report(&report(true)));
        assert_eq!(d.len(), 1, "a blank Teams URL is not a channel");
        assert!(d[0].body.is_err());
    }
}
