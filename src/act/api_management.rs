//! Acting on an API Management service: `refreshSecret` for each Key Vault-backed named value that uses the
//! secret, followed to its end, then the named value read back for `keyVault.lastStatus`.
//!
//! Sources (reference/apim-spec/PROVENANCE.md): API Management refetches a Key Vault-backed named value within
//! four hours; `POST …/namedValues/{id}/refreshSecret` does it now and is long-running (200, or 202 with
//! `location`, `final-state-via: location`); `keyVault.lastStatus {code, message, timeStampUtc}` says how the
//! last fetch went, and only the code `Success` is documented. A refresh that never ends is a failed refresh of
//! that named value; the others go on.

use super::{Actor, Halt, Mode, may_refresh};
use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::operations::{self, APIM_API_VERSION};
use crate::azure::resource_id::ResourceId;
use crate::diagnose;
use crate::model::Snapshot;
use crate::report::{ResaveStatus, Target, Test, TestStatus};
use serde_json::{Value, json};
use std::time::Duration;

/// How long one refresh may run before it counts as failed: it fetches one secret, so a minute is ample, and a
/// stuck one must not spend the whole run's budget.
const REFRESH_LIMIT: Duration = Duration::from_secs(60);

/// Acts on the named values of one API Management service.
pub struct NamedValueActor<'a> {
    arm: &'a ArmClient,
    service: &'a Snapshot,
    id: ResourceId,
    mode: &'a Mode,
}

impl<'a> NamedValueActor<'a> {
    pub fn new(arm: &'a ArmClient, service: &'a Snapshot, mode: &'a Mode) -> Result<Self, Halt> {
        let id = ResourceId::parse(&service.id).map_err(|e| Halt {
            message: e.to_string(),
            transient: false,
        })?;
        Ok(NamedValueActor {
            arm,
            service,
            id,
            mode,
        })
    }

    /// `lastStatus.timeStampUtc` of the named value as discovery listed it, before any refresh.
    fn listed_fetch_time(&self, name: &str) -> Option<jiff::Timestamp> {
        self.service
            .named_values
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .and_then(fetch_time)
    }
}

fn fetch_time(named_value: &Value) -> Option<jiff::Timestamp> {
    named_value
        .pointer("/properties/keyVault/lastStatus/timeStampUtc")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

#[async_trait::async_trait]
impl Actor for NamedValueActor<'_> {
    async fn act(&mut self, target: &mut Target) -> Result<(), Halt> {
        let id = self
            .id
            .child("namedValues", &target.name)
            .map_err(|e| Halt {
                message: e.to_string(),
                transient: false,
            })?;
        let before = self.listed_fetch_time(&target.name);
        let mut refreshed = false;
        if may_refresh(target, self.mode) {
            // Polled to its end, but for no longer than one refresh may take.
            let answer = self
                .arm
                .clone()
                .within(REFRESH_LIMIT)
                .post_at(
                    operations::REFRESH_NAMED_VALUE,
                    &id.join(&["refreshSecret"]),
                    APIM_API_VERSION,
                    &json!({}),
                )
                .await;
            match answer {
                Ok(answer) => {
                    target.request_ids.extend(answer.request_id);
                    target.resave.status = ResaveStatus::Ok;
                    target.resave.attempts = 1;
                    target.resave.error = None;
                    refreshed = true;
                }
                // A refresh that never ends fails this named value; the others go on.
                Err(e)
                    if e.is_transient() && !matches!(e, ArmError::OperationUnfinished { .. }) =>
                {
                    return Err(Halt::from(&e));
                }
                Err(e) => {
                    target.resave.status = ResaveStatus::Failed;
                    target.resave.error = Some(e.to_string());
                    target.test = Test::not_tested("not tested: the refresh failed");
                    return Ok(());
                }
            }
        }
        if let Some(untested) = self.mode.untested() {
            target.test = untested;
            return Ok(());
        }
        target.test = match self
            .arm
            .get_at(operations::GET_NAMED_VALUE, &id, APIM_API_VERSION)
            .await
        {
            Ok(response) => {
                target.request_ids.extend(response.request_id.clone());
                last_status_test(
                    &response.body,
                    refreshed.then_some(before).flatten(),
                    refreshed,
                )
            }
            Err(e) if e.is_transient() => return Err(Halt::from(&e)),
            Err(e) => Test {
                status: TestStatus::Error,
                message: Some(format!("the named value could not be read back: {e}")),
                raw: None,
                diagnosis: None,
            },
        };
        tracing::info!(service = %self.id, name = %target.name, status = ?target.test.status, "tested");
        Ok(())
    }
}

/// The test of a named value from `keyVault.lastStatus`: `Success`, and after a refresh a fetch newer than the
/// one discovery saw (`before`), else a failure carrying API Management's code and message.
pub fn last_status_test(
    named_value: &Value,
    before: Option<jiff::Timestamp>,
    refreshed: bool,
) -> Test {
    let status = named_value
        .pointer("/properties/keyVault/lastStatus")
        .cloned()
        .unwrap_or(Value::Null);
    let text = |key: &str| status.get(key).and_then(Value::as_str).unwrap_or("");
    let (code, message, at) = (text("code"), text("message"), text("timeStampUtc"));
    let raw = Some(json!({"code": code, "message": message, "timeStampUtc": at}));
    if !code.eq_ignore_ascii_case("Success") {
        let shown = if code.is_empty() { "no status" } else { code };
        return Test {
            status: TestStatus::Failed,
            message: Some(if message.is_empty() {
                shown.to_string()
            } else {
                format!("{shown}: {message}")
            }),
            raw,
            diagnosis: Some(diagnose::for_named_value_status(code, message)),
        };
    }
    let fetched: Option<jiff::Timestamp> = at.parse().ok();
    let fresh = match (fetched, before) {
        (Some(fetched), Some(before)) => fetched > before,
        (Some(_), None) => true,
        (None, _) => !refreshed,
    };
    if refreshed && !fresh {
        return Test {
            status: TestStatus::Failed,
            message: Some(format!(
                "API Management reports no fetch since the refresh (last success at {})",
                if at.is_empty() { "an unknown time" } else { at }
            )),
            raw,
            diagnosis: Some(diagnose::for_named_value_status(
                "refreshNotObserved",
                "the last successful fetch predates the refresh",
            )),
        };
    }
    Test {
        status: TestStatus::Passed,
        message: Some(format!(
            "Success: API Management fetched the secret at {at}"
        )),
        raw,
        diagnosis: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named_value(code: &str, message: &str, at: &str) -> Value {
        json!({"name": "sql-password", "properties": {"displayName": "sql-password", "secret": true,
            "keyVault": {"secretIdentifier": "https://contoso-kv.vault.azure.net/secrets/sql-password",
                "identityClientId": null, "lastStatus": {"code": code, "message": message, "timeStampUtc": at}}}})
    }

    #[test]
    fn a_success_after_the_refresh_passes() {
        let before = "2026-12-07T10:00:00Z".parse().ok();
        let test = last_status_test(
            &named_value("Success", "", "2026-12-07T10:05:00Z"),
            before,
            true,
        );
        assert_eq!(test.status, TestStatus::Passed);
    }

    #[test]
    fn a_success_older_than_the_refresh_is_not_proof() {
        let before = "2026-12-07T10:00:00Z".parse().ok();
        let test = last_status_test(
            &named_value("Success", "", "2026-12-07T10:00:00Z"),
            before,
            true,
        );
        assert_eq!(test.status, TestStatus::Failed);
    }

    #[test]
    fn any_other_code_fails_with_api_managements_message_and_an_owner() {
        let test = last_status_test(
            &named_value(
                "Forbidden",
                "Access denied to the vault",
                "2026-12-07T10:05:00Z",
            ),
            None,
            true,
        );
        assert_eq!(test.status, TestStatus::Failed);
        assert_eq!(
            test.message.as_deref(),
            Some("Forbidden: Access denied to the vault")
        );
        assert_eq!(
            test.diagnosis.map(|d| d.owner),
            Some(crate::report::Owner::PlatformOwner)
        );
    }
}
