//! Acting on an App Service site or slot (web app, function app, Logic Apps Standard): one refresh of its Key
//! Vault references, however many of its settings use the secret, then each reference's status read back.
//!
//! Sources (reference/appservice-spec/PROVENANCE.md): App Service caches a reference's value and refetches it
//! every 24 hours; `POST {site or slot}/config/configreferences/appsettings/refresh` forces resolution (docs,
//! "Understand rotation"; in no REST spec; for a slot the slot's id by substitution). The references are read
//! through `config/configreferences/{appsettings,connectionstrings}` (metadata only: never `config/*/list`,
//! which returns values). A reference passes when its `status` is `Resolved` and, where App Service fills
//! `activeVersion` (often `null`), it is the new version. Whether the refresh also re-resolves connection
//! strings is not documented, so their status is read back like the app settings' and reported as seen.

use super::{Actor, Halt, Mode, may_refresh};
use crate::azure::arm::ArmClient;
use crate::azure::operations::{self, WEB_API_VERSION, WEB_REFRESH_API_VERSION};
use crate::azure::resource_id::ResourceId;
use crate::diagnose;
use crate::model::Snapshot;
use crate::plan::SecretRef;
use crate::report::{Diagnosis, ResaveStatus, Target, TargetKind, Test, TestStatus, Verdict};
use serde_json::{Value, json};

/// Acts on the references of one site or slot: refreshes once, reads back once.
pub struct SiteActor<'a> {
    arm: &'a ArmClient,
    id: ResourceId,
    secret: &'a SecretRef,
    mode: &'a Mode,
    /// The refresh's outcome once it was made: its request id, or why it failed.
    refreshed: Option<Result<Option<String>, String>>,
    /// The references as App Service shows them after the refresh, read once for every target.
    read_back: Option<Result<ReadBack, String>>,
}

#[derive(Debug, Clone)]
struct ReadBack {
    app_settings: Vec<Value>,
    connection_strings: Vec<Value>,
}

impl<'a> SiteActor<'a> {
    pub fn new(
        arm: &'a ArmClient,
        site: &'a Snapshot,
        secret: &'a SecretRef,
        mode: &'a Mode,
    ) -> Result<Self, Halt> {
        let id = ResourceId::parse(&site.id).map_err(|e| Halt {
            message: e.to_string(),
            transient: false,
        })?;
        Ok(SiteActor {
            arm,
            id,
            secret,
            mode,
            refreshed: None,
            read_back: None,
        })
    }

    /// The one refresh of this site or slot. A transient failure stops the holder; a refusal fails every
    /// target of it that was due a refresh.
    async fn refresh(&mut self) -> Result<&Result<Option<String>, String>, Halt> {
        if self.refreshed.is_none() {
            let id = self
                .id
                .join(&["config", "configreferences", "appsettings", "refresh"]);
            let outcome = match self
                .arm
                .post_at(
                    operations::REFRESH_KEY_VAULT_REFERENCES,
                    &id,
                    WEB_REFRESH_API_VERSION,
                    &json!({}),
                )
                .await
            {
                Ok(response) => Ok(response.request_id),
                Err(e) if e.is_transient() => return Err(Halt::from(&e)),
                Err(e) => Err(e.to_string()),
            };
            tracing::info!(site = %self.id, refreshed = outcome.is_ok(), "refreshed the Key Vault references");
            self.refreshed = Some(outcome);
        }
        Ok(self.refreshed.get_or_insert(Ok(None)))
    }

    /// Both reference listings as App Service shows them now, read once.
    async fn read_back(&mut self) -> Result<&Result<ReadBack, String>, Halt> {
        if self.read_back.is_none() {
            let (arm, site) = (self.arm, &self.id);
            let list = |collection: &'static str| {
                let id = site.join(&["config", "configreferences", collection]);
                async move {
                    arm.list_kept_at(
                        operations::LIST_KEY_VAULT_REFERENCES,
                        &id,
                        WEB_API_VERSION,
                        &|_| true,
                    )
                    .await
                    .map(|listed| listed.kept)
                }
            };
            let (settings, strings) =
                futures::join!(list("appsettings"), list("connectionstrings"));
            let read = match (settings, strings) {
                (Ok(app_settings), Ok(connection_strings)) => Ok(ReadBack {
                    app_settings,
                    connection_strings,
                }),
                (Err(e), _) | (_, Err(e)) if e.is_transient() => return Err(Halt::from(&e)),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            };
            self.read_back = Some(read);
        }
        Ok(self.read_back.get_or_insert_with(|| Err("not read".into())))
    }
}

#[async_trait::async_trait]
impl Actor for SiteActor<'_> {
    async fn act(&mut self, target: &mut Target) -> Result<(), Halt> {
        if may_refresh(target, self.mode) {
            match self.refresh().await? {
                Ok(request_id) => {
                    target.request_ids.extend(request_id.clone());
                    target.resave.status = ResaveStatus::Ok;
                    target.resave.attempts = 1;
                    target.resave.error = None;
                }
                Err(why) => {
                    target.resave.status = ResaveStatus::Failed;
                    target.resave.error = Some(why.clone());
                    target.test = Test::not_tested("not tested: the refresh failed");
                    return Ok(());
                }
            }
        }
        if let Some(untested) = self.mode.untested() {
            target.test = untested;
            return Ok(());
        }
        let new_version = self.secret.version.clone();
        target.test = match self.read_back().await? {
            Err(why) => Test {
                status: TestStatus::Error,
                message: Some(format!(
                    "the references could not be read back after the refresh: {why}"
                )),
                raw: None,
                diagnosis: None,
            },
            Ok(read) => {
                let listed = match target.kind {
                    TargetKind::ConnectionString => &read.connection_strings,
                    _ => &read.app_settings,
                };
                match listed.iter().find(|item| same_setting(item, &target.name)) {
                    Some(item) => reference_test(item, new_version.as_deref(), target),
                    None => Test {
                        status: TestStatus::Error,
                        message: Some(
                            "App Service no longer lists this Key Vault reference".into(),
                        ),
                        raw: None,
                        diagnosis: None,
                    },
                }
            }
        };
        tracing::info!(site = %self.id, name = %target.name, status = ?target.test.status, "tested");
        Ok(())
    }
}

/// Whether a listed reference is the named setting (`name` may come as `{site}/{setting}`).
fn same_setting(item: &Value, name: &str) -> bool {
    item.get("name")
        .and_then(Value::as_str)
        .map(|n| n.rsplit('/').next().unwrap_or(n))
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// The test of one reference from App Service's own status (reference/appservice-spec, `ApiKVReference`).
pub fn reference_test(item: &Value, new_version: Option<&str>, target: &Target) -> Test {
    let properties = item.get("properties").cloned().unwrap_or(Value::Null);
    let text = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let status = text("status").unwrap_or("(none)");
    let active = text("activeVersion");
    let details = text("details");
    let raw = Some(json!({"status": status, "activeVersion": active, "details": details}));
    if status != "Resolved" {
        return Test {
            status: TestStatus::Failed,
            message: Some(match details {
                Some(d) => format!("{status}: {d}"),
                None => status.to_string(),
            }),
            raw,
            diagnosis: Some(diagnose::for_app_service_status(status, details)),
        };
    }
    let pinned = target.verdict == Verdict::Pinned;
    match (active, new_version) {
        (Some(active), Some(new)) if !pinned && !active.eq_ignore_ascii_case(new) => Test {
            status: TestStatus::Failed,
            message: Some(format!(
                "Resolved, but App Service still holds version {active}, not the new version {new}"
            )),
            raw,
            diagnosis: Some(Diagnosis {
                code: "staleVersion".into(),
                cause: "App Service still serves the previous version of the secret from its cache.".into(),
                fix: vec![
                    "Run the refresh again; if the version does not change, save any app setting (a configuration change makes App Service fetch every reference at once).".into(),
                ],
                owner: diagnose::APP_OWNER,
            }),
        },
        (Some(active), _) => Test {
            status: TestStatus::Passed,
            message: Some(format!("Resolved: App Service holds version {active}")),
            raw,
            diagnosis: None,
        },
        (None, _) if pinned => Test {
            status: TestStatus::Passed,
            message: Some(
                "Resolved. The reference names its version, so App Service holds that version, not the new one."
                    .into(),
            ),
            raw,
            diagnosis: None,
        },
        (None, _) => Test {
            status: TestStatus::Passed,
            message: Some(
                "Resolved. App Service does not say which version it holds (activeVersion is empty), so that it uses the new version rests on the refresh having run."
                    .into(),
            ),
            raw,
            diagnosis: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Platform;
    use crate::report::Resave;

    fn target(verdict: Verdict) -> Target {
        Target {
            platform: Platform::AppService,
            resource: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app".into(),
            kind: TargetKind::AppSetting,
            factory: String::new(),
            name: "SqlPassword".into(),
            display_name: None,
            adf_type: "app".into(),
            references: vec![],
            verdict,
            reason: String::new(),
            notes: vec![],
            via_credential: None,
            used_by: vec![],
            integration_runtime: None,
            resave: Resave::with_status(ResaveStatus::Ok, None),
            test: Test::not_tested("not yet"),
            diagnosis: None,
            request_ids: vec![],
            impact: None,
        }
    }

    fn item(status: &str, active: Value) -> Value {
        json!({"name": "SqlPassword", "properties": {"status": status, "activeVersion": active,
            "details": "Reference has been successfully resolved.", "identityType": "SystemAssigned"}})
    }

    #[test]
    fn a_resolved_reference_passes_and_says_when_the_version_cannot_be_known() {
        let test = reference_test(
            &item("Resolved", Value::Null),
            Some("v2"),
            &target(Verdict::Resave),
        );
        assert_eq!(test.status, TestStatus::Passed);
        assert!(
            test.message
                .unwrap_or_default()
                .contains("does not say which version")
        );
        let test = reference_test(
            &item("Resolved", json!("V2")),
            Some("v2"),
            &target(Verdict::Resave),
        );
        assert_eq!(test.status, TestStatus::Passed);
    }

    #[test]
    fn a_resolved_pinned_reference_says_it_holds_its_own_version_not_the_new_one() {
        let test = reference_test(
            &item("Resolved", Value::Null),
            Some("v2"),
            &target(Verdict::Pinned),
        );
        assert_eq!(test.status, TestStatus::Passed);
        let message = test.message.unwrap_or_default();
        assert!(message.contains("names its version"), "{message}");
        assert!(!message.contains("rests on the refresh"), "{message}");
    }

    #[test]
    fn a_reference_still_on_the_old_version_fails() {
        let test = reference_test(
            &item("Resolved", json!("v1")),
            Some("v2"),
            &target(Verdict::Resave),
        );
        assert_eq!(test.status, TestStatus::Failed);
        assert_eq!(
            test.diagnosis.map(|d| d.code).as_deref(),
            Some("staleVersion")
        );
    }

    #[test]
    fn any_other_status_fails_with_app_services_own_word_and_an_owner() {
        let test = reference_test(
            &item("AccessToKeyVaultDenied", Value::Null),
            Some("v2"),
            &target(Verdict::Resave),
        );
        assert_eq!(test.status, TestStatus::Failed);
        assert!(
            test.message
                .unwrap_or_default()
                .starts_with("AccessToKeyVaultDenied")
        );
        let diagnosis = test.diagnosis.expect("diagnosis");
        assert_eq!(diagnosis.code, "AccessToKeyVaultDenied");
        assert_eq!(diagnosis.owner, crate::report::Owner::PlatformOwner);
        let test = reference_test(
            &item("MSINotEnabled", Value::Null),
            None,
            &target(Verdict::Resave),
        );
        assert_eq!(
            test.diagnosis.map(|d| d.owner),
            Some(crate::report::Owner::AppOwner)
        );
    }

    #[test]
    fn setting_names_match_with_or_without_the_site_prefix() {
        assert!(same_setting(
            &json!({"name": "app/SqlPassword"}),
            "sqlpassword"
        ));
        assert!(same_setting(&json!({"name": "SqlPassword"}), "SqlPassword"));
        assert!(!same_setting(&json!({"name": "Other"}), "SqlPassword"));
    }
}
