//! The audit: which secret feeds which linked service, and what is wrong or about to go wrong.
//!
//! Reads everything in scope (never writes), maps every Key Vault reference to its secret, reads each
//! secret's version metadata (never a value), and reports expired, expiring, disabled, dangling and pinned
//! references, inline secrets, and Git-mode factories.

use crate::app::App;
use crate::apply;
use crate::azure::keyvault::{self, KeyVaultError, VersionMetadata};
use crate::plan::{self, FactorySnapshot, SecretRef};
use crate::report::{Command, Finding, Report, Target, TargetKind, Trigger, Verdict};
use crate::scan::{self, FactoryIndex};
use futures::StreamExt;
use serde_json::Value;

type SecretKey = (String, String);
/// A definition to classify: its kind, its name, and its references.
type Member = (TargetKind, String, Vec<scan::KeyVaultReference>);
type VersionsResult = Result<Vec<VersionMetadata>, KeyVaultError>;
use std::collections::BTreeMap;

/// Runs the audit over the configured scopes.
pub async fn run(app: &App, trigger: Trigger, expiring_within_days: i64) -> Report {
    let mut report = Report::start(
        uuid::Uuid::new_v4().to_string(),
        Command::Audit,
        true,
        trigger,
        &app.settings.scopes,
    );
    let arm = app
        .azure
        .arm
        .clone()
        .with_deadline(Some(tokio::time::Instant::now() + app.settings.run_budget));
    let snapshots = apply::discover(
        &arm,
        &app.settings.scopes,
        app.azure.concurrency,
        &mut report,
    )
    .await;
    report.summary.factories_scanned = snapshots.len();
    report.summary.linked_services_scanned =
        snapshots.iter().map(|f| f.linked_services.len()).sum();
    report.summary.credentials_scanned = snapshots.iter().map(|f| f.credentials.len()).sum();

    // Every certain (vault, secret) pair, with the targets that use it.
    let mut secrets: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for factory in &snapshots {
        if factory.git_mode() {
            report.findings.push(finding(
                "gitMode",
                "info",
                format!(
                    "Factory {} is Git-integrated: a re-save updates the live factory only.",
                    short(&factory.id)
                ),
                &factory.id,
            ));
        }
        for target in inventory(factory) {
            for r in &target.references {
                if let (Some(vault), Some(secret), "certain") =
                    (&r.vault, &r.secret_name, r.certainty.as_str())
                {
                    secrets
                        .entry((vault.to_ascii_lowercase(), secret.to_ascii_lowercase()))
                        .or_default()
                        .push(format!("{}/{}", short(&target.factory), target.name));
                }
                if r.certainty == "unresolved" {
                    let why = r.unresolved_because.clone().unwrap_or_default();
                    report.findings.push(finding(
                        "unresolvedReference",
                        "warning",
                        format!(
                            "{}/{} at {}: the reference cannot be resolved ({why}).",
                            short(&target.factory),
                            target.name,
                            r.path
                        ),
                        &target.factory,
                    ));
                }
            }
            report.targets.push(target);
        }
    }

    let metadata: Vec<(SecretKey, VersionsResult)> = futures::stream::iter(secrets.keys().cloned())
        .map(|(vault, secret)| async move {
            let r = keyvault::list_versions(
                &app.azure.http,
                app.azure.credential.clone(),
                &app.azure.vaults,
                &vault,
                &secret,
                None,
            )
            .await;
            ((vault, secret), r)
        })
        .buffer_unordered(app.azure.concurrency.max(1))
        .collect()
        .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let horizon = now + expiring_within_days * 86_400;
    let mut latest: BTreeMap<(String, String), String> = BTreeMap::new();
    for ((vault, secret), result) in metadata {
        let consumers = secrets
            .get(&(vault.clone(), secret.clone()))
            .map(|c| c.join(", "))
            .unwrap_or_default();
        let subject = format!("{vault}/{secret}");
        match result {
            Ok(versions) => match keyvault::pick_version(&versions, None) {
                Some(v) => {
                    latest.insert((vault.clone(), secret.clone()), v.version.clone());
                    if let Some(why) = keyvault::unusable_because(v, now) {
                        report.findings.push(finding(&format!("secret{}", crate::report::capitalise(why)), "error",
                            format!("Secret {subject} (latest version {}) is {why}; used by {consumers}.", v.version), &subject));
                    } else if let Some(exp) = v.expires.filter(|e| *e <= horizon) {
                        let days = (exp - now) / 86_400;
                        report.findings.push(Finding {
                            fix: vec![format!("Rotate {subject} before {}; its consumers are refreshed automatically.", crate::report::rfc3339(exp).unwrap_or_default())],
                            ..finding("secretExpiring", "warning", format!("Secret {subject} expires in {days} days; used by {consumers}."), &subject)
                        });
                    }
                }
                None => report.findings.push(finding(
                    "secretNoVersions",
                    "error",
                    format!("Secret {subject} has no versions; used by {consumers}."),
                    &subject,
                )),
            },
            Err(KeyVaultError::NotFound { .. }) => report.findings.push(Finding {
                fix: vec!["Create the secret, or correct the references that name it.".into()],
                ..finding(
                    "danglingReference",
                    "error",
                    format!("Secret {subject} does not exist; referenced by {consumers}."),
                    &subject,
                )
            }),
            Err(e) => report.findings.push(finding(
                "keyVaultUnreadable",
                "info",
                format!("Could not read {subject}'s metadata: {e}"),
                &subject,
            )),
        }
    }
    // A pin to anything but the latest version is stale already.
    for target in &report.targets {
        for r in &target.references {
            if let (Some(vault), Some(secret), Some(pinned)) =
                (&r.vault, &r.secret_name, &r.secret_version)
                && let Some(current) =
                    latest.get(&(vault.to_ascii_lowercase(), secret.to_ascii_lowercase()))
                && !current.eq_ignore_ascii_case(pinned)
            {
                report.findings.push(finding("pinnedToOldVersion", "warning",
                    format!("{}/{} pins {vault}/{secret} to version {pinned}, but the latest is {current}.", short(&target.factory), target.name),
                    &target.factory));
            }
        }
    }
    report.finish();
    report
}

/// Every linked service and credential of a factory that holds a Key Vault reference, as audit targets.
pub fn inventory(factory: &FactorySnapshot) -> Vec<Target> {
    let index = FactoryIndex::new(&factory.linked_services);
    // Each definition is classified against the secret of its first reference, exactly as a rotation of
    // that secret would classify it; one plan per distinct secret serves every definition that names it.
    let mut by_secret: BTreeMap<SecretKey, Vec<Member>> = BTreeMap::new();
    let kinds = factory
        .credentials
        .iter()
        .map(|r| (TargetKind::Credential, r))
        .chain(
            factory
                .linked_services
                .iter()
                .map(|r| (TargetKind::LinkedService, r)),
        );
    for (kind, resource) in kinds {
        let properties = resource.get("properties").unwrap_or(&Value::Null);
        let references = scan::find_references(properties, &index);
        let Some(first) = references.first() else {
            continue;
        };
        let key = (
            first.vault.value().unwrap_or("?").to_string(),
            first.secret_name.value().unwrap_or("?").to_string(),
        );
        let name = resource
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        by_secret
            .entry(key)
            .or_default()
            .push((kind, name, references));
    }
    let mut targets = Vec::new();
    for ((vault, name), members) in by_secret {
        let secret = SecretRef {
            vault,
            name,
            version: None,
            // The inventory groups by vault name; every cloud's references are listed.
            vault_suffix: String::new(),
        };
        let planned = plan::plan_factory(factory, &secret);
        for (kind, member, references) in members {
            let Some(mut target) = planned
                .iter()
                .find(|t| t.kind == kind && t.name == member)
                .cloned()
            else {
                continue;
            };
            // The inventory lists every reference, not only those of one secret.
            target.references = references.iter().map(plan::to_report_reference).collect();
            target.test = crate::report::Test::not_tested("audit: nothing is tested");
            if target.verdict == Verdict::Resave {
                target.diagnosis = None;
            }
            targets.push(target);
        }
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    targets
}

fn finding(code: &str, severity: &str, message: String, subject: &str) -> Finding {
    Finding {
        code: code.into(),
        severity: severity.into(),
        message,
        subject: Some(subject.into()),
        fix: Vec::new(),
    }
}

fn short(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}
