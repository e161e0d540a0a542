//! The one poller of long-running operations, shared by Synapse's PUT and ARM's POSTs: a 202 with `Location`
//! and/or `Azure-AsyncOperation` (and `Retry-After`) is polled, on the origin it came from only and with the same
//! authorisation, until the operation ends or the run's time runs out.
//!
//! A 202 is never a success; only an operation that ended `Succeeded` is. One that does not end in time is
//! [`AzureError::OperationUnfinished`]: whether it took effect is unknown, and the caller says so and goes on.

use super::auth::redact_query;
use super::error::{AzureError, error_of};
use super::request::{Answer, follow};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The wait between polls when the service gives no `Retry-After`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between polls, whatever `Retry-After` says.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Polls of one operation at most, whatever the time left.
pub const MAX_POLLS: u32 = 1_000;

/// Where a long-running operation stands after one answer.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Succeeded,
    /// Ended without success; the final status as the service named it.
    Failed(String),
}

/// 202 means running. A 2xx body with a `status` names the state (`Failed`, `Canceled` end it badly; any status
/// other than `Succeeded` is still running). A 2xx body without one is the resource or the result.
pub fn state(answer: &Answer) -> State {
    if answer.status == 202 {
        return State::Running;
    }
    let status = answer
        .body
        .get("status")
        .or_else(|| answer.body.get("state"))
        .and_then(Value::as_str);
    match status {
        None => State::Succeeded,
        Some(s) if s.eq_ignore_ascii_case("succeeded") => State::Succeeded,
        Some(s)
            if ["failed", "canceled", "cancelled"]
                .iter()
                .any(|f| s.eq_ignore_ascii_case(f)) =>
        {
            State::Failed(s.to_string())
        }
        Some(_) => State::Running,
    }
}

/// How a polled operation ended.
#[derive(Debug)]
pub struct Ended {
    /// The last answer: the operation's status, or the result itself.
    pub answer: Answer,
    /// The `Location` the service gave, when the status was followed at `Azure-AsyncOperation`: where the result
    /// is (ARM's `final-state-via: location`).
    pub location: Option<Url>,
    pub polls: u32,
    /// The request ids of every poll.
    pub request_ids: Vec<String>,
}

/// Polls the operation `accepted` started until it ends. `fallback` is where to poll when the answer named no
/// link (Synapse's `operationResults/{operationId}`); `get` sends one GET through the client's retry loop, with
/// its authorisation; no poll starts, and no wait ends, past `stop`.
pub async fn poll<F, Fut>(
    operation: &'static str,
    accepted: &Answer,
    origin: &Url,
    fallback: Option<Url>,
    stop: Instant,
    mut get: F,
) -> Result<Ended, AzureError>
where
    F: FnMut(Url) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, AzureError>>,
{
    let link = |answer: &Answer, name: &str| -> Result<Option<Url>, AzureError> {
        match answer.header(name).map(str::trim).filter(|l| !l.is_empty()) {
            None => Ok(None),
            Some(l) => follow(origin, l)
                .map(Some)
                .ok_or_else(|| AzureError::ForeignLink(redact_query(l))),
        }
    };
    let asynchronous = link(accepted, "azure-asyncoperation")?;
    let mut location = link(accepted, "location")?;
    let by_status = asynchronous.is_some();
    let mut monitor = match asynchronous.or_else(|| location.clone()).or(fallback) {
        Some(url) => url,
        None => {
            return Err(AzureError::Rejected {
                operation,
                status: accepted.status,
                code: "NoLocation".into(),
                message: "the service accepted the request but gave no Location to follow".into(),
                body: Box::new(accepted.body.clone()),
                request_id: accepted.request_id.clone(),
            });
        }
    };
    let mut wait = accepted.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
    let mut request_ids = Vec::new();
    for polls in 0..MAX_POLLS {
        let wait_now = wait.min(MAX_POLL_INTERVAL);
        if Instant::now() + wait_now >= stop {
            return Err(AzureError::OperationUnfinished { operation, polls });
        }
        tokio::time::sleep(wait_now).await;
        let answer = get(monitor.clone()).await?;
        request_ids.extend(answer.request_id.iter().cloned());
        match state(&answer) {
            State::Running => {
                if let Some(moved) = link(&answer, "location")? {
                    if !by_status {
                        monitor = moved.clone();
                    }
                    location = Some(moved);
                }
                wait = answer.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
            }
            State::Failed(status) => {
                let (code, message) = error_of(&answer.body, answer.status);
                return Err(AzureError::OperationFailed {
                    operation,
                    status,
                    code,
                    message,
                    request_id: answer.request_id,
                });
            }
            State::Succeeded => {
                return Ok(Ended {
                    answer,
                    location: if by_status { location } else { None },
                    polls: polls + 1,
                    request_ids,
                });
            }
        }
    }
    Err(AzureError::OperationUnfinished {
        operation,
        polls: MAX_POLLS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn answer(status: u16, body: Value, headers: &[(&'static str, &str)]) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().expect("header"));
        }
        Answer {
            status,
            body,
            bytes: Vec::new(),
            headers: map,
            request_id: None,
        }
    }

    #[test]
    fn operation_states_follow_status_codes_and_bodies() {
        assert_eq!(
            state(&answer(202, json!({"status": "Succeeded"}), &[])),
            State::Running
        );
        assert_eq!(
            state(&answer(200, json!({"name": "ls"}), &[])),
            State::Succeeded
        );
        assert_eq!(
            state(&answer(200, json!({"status": "Failed"}), &[])),
            State::Failed("Failed".into())
        );
        assert_eq!(
            state(&answer(200, json!({"status": "InProgress"}), &[])),
            State::Running
        );
        assert_eq!(state(&answer(204, Value::Null, &[])), State::Succeeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_follows_the_status_link_and_reports_where_the_result_is() {
        let origin = Url::parse("https://arm.example/").expect("url");
        let accepted = answer(
            202,
            Value::Null,
            &[
                ("azure-asyncoperation", "https://arm.example/ops/1"),
                ("location", "https://ARM.example:443/results/1"),
                ("retry-after", "2"),
            ],
        );
        let mut polled = Vec::new();
        let ended = poll(
            "op",
            &accepted,
            &origin,
            None,
            Instant::now() + Duration::from_secs(60),
            |u| {
                polled.push(u.to_string());
                let n = polled.len();
                async move {
                    Ok(if n < 3 {
                        answer(200, json!({"status": "InProgress"}), &[])
                    } else {
                        answer(200, json!({"status": "Succeeded"}), &[])
                    })
                }
            },
        )
        .await
        .expect("ended");
        assert_eq!(ended.polls, 3);
        assert!(polled.iter().all(|u| u == "https://arm.example/ops/1"));
        assert_eq!(
            ended.location.map(|u| u.to_string()).as_deref(),
            Some("https://arm.example/results/1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_elsewhere_is_refused_and_an_endless_one_is_unfinished() {
        let origin = Url::parse("https://arm.example/").expect("url");
        let foreign = answer(
            202,
            Value::Null,
            &[("location", "https://evil.example/ops/1?sig=s")],
        );
        let mut calls = 0;
        let refused = poll(
            "op",
            &foreign,
            &origin,
            None,
            Instant::now() + Duration::from_secs(60),
            |_| {
                calls += 1;
                async { Ok(answer(200, Value::Null, &[])) }
            },
        )
        .await;
        assert!(
            matches!(refused, Err(AzureError::ForeignLink(ref l)) if !l.contains("sig")),
            "{refused:?}"
        );
        assert_eq!(calls, 0, "nothing is sent elsewhere");
        let accepted = answer(
            202,
            Value::Null,
            &[("location", "/ops/1"), ("retry-after", "1")],
        );
        let endless = poll(
            "op",
            &accepted,
            &origin,
            None,
            Instant::now() + Duration::from_millis(3500),
            |_| async { Ok(answer(202, Value::Null, &[("retry-after", "1")])) },
        )
        .await;
        assert!(
            matches!(
                endless,
                Err(AzureError::OperationUnfinished { polls: 3, .. })
            ),
            "{endless:?}"
        );
    }
}
