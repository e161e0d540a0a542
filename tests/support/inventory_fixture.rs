//! Inventory values built from the inventory's own types, for the page tests and the browser check: a small
//! realistic one (every secret status the timeline draws, two vaults, Data Factory and Synapse consumers, a
//! hostile consumer name) and a large one (500 secrets, 5,000 consumers).
#![allow(dead_code)]

use adf_secret_refresh::inventory::{
    Consumer, Finding, FindingCode, Inventory, Owner, SCHEMA, SecretEntry, SecretStatus, Severity,
    Summary, Thresholds,
};
use adf_secret_refresh::report::{RunError, TargetKind, Verdict};

pub const SUB: &str = "6f1c1f4e-3d2a-4b8e-9a51-0c7d2e8b4a10";
/// When the audit ran: "today" on the page.
pub const TODAY: &str = "2024-05-14T06:00:00Z";
/// A consumer name that would run as script if the page did not escape it.
pub const HOSTILE_NAME: &str = "ls_<script>alert('pwned')</script><img src=x onerror=alert(1)>";

const DAY: i64 = 86_400;

pub fn factory(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-data-platform/providers/Microsoft.DataFactory/factories/{name}"
    )
}

pub fn workspace(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-analytics/providers/Microsoft.Synapse/workspaces/{name}"
    )
}

/// RFC 3339 for `days` (may be fractional) after [`TODAY`].
pub fn days_from_today(days: f64) -> String {
    let today: jiff::Timestamp = TODAY.parse().expect("TODAY is RFC 3339");
    let at = jiff::Timestamp::from_second(today.as_second() + (days * DAY as f64) as i64)
        .expect("in range");
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn consumer(holder: String, name: &str, verdict: Verdict) -> Consumer {
    // The fixture's holders are its own `factory()` and `workspace()` ids: it knows which is which.
    let platform = if holder.contains("/Microsoft.Synapse/") {
        adf_secret_refresh::model::Platform::Synapse
    } else {
        adf_secret_refresh::model::Platform::DataFactory
    };
    Consumer {
        platform,
        resource: holder.clone(),
        kind: TargetKind::LinkedService,
        factory: holder,
        name: name.into(),
        path: "typeProperties.password".into(),
        pinned_version: None,
        verdict,
        integration_runtime: None,
        git_mode: false,
    }
}

pub fn secret(
    vault: &str,
    name: &str,
    expires_in_days: Option<f64>,
    consumers: Vec<Consumer>,
) -> SecretEntry {
    let status = match expires_in_days {
        Some(d) if d < 0.0 => SecretStatus::Expired,
        Some(d) if d <= 30.0 => SecretStatus::Expiring,
        _ => SecretStatus::Ok,
    };
    SecretEntry {
        vault: vault.into(),
        vault_url: format!("https://{vault}.vault.azure.net/"),
        secret: name.into(),
        latest_version: Some(format!("{:032x}", name.len() * 7919 + vault.len())),
        enabled: Some(true),
        created: Some(days_from_today(-100.0)),
        expires: expires_in_days.map(days_from_today),
        not_before: None,
        latest_enabled_version: None,
        status,
        consumers,
    }
}

fn finding(
    code: FindingCode,
    severity: Severity,
    entry: &SecretEntry,
    message: &str,
    fix: &[&str],
    owner: Owner,
) -> Finding {
    Finding {
        code,
        severity,
        subject: Some(entry.subject()),
        vault_url: Some(entry.vault_url.clone()),
        message: message.into(),
        fix: fix.iter().map(|s| s.to_string()).collect(),
        owner,
    }
}

/// The expiry findings the audit would give each secret, with the default thresholds (30 and 7 days).
fn expiry_findings(secrets: &[SecretEntry]) -> Vec<Finding> {
    let today: jiff::Timestamp = TODAY.parse().expect("TODAY is RFC 3339");
    let mut findings = Vec::new();
    for e in secrets {
        let Some(expires) = e.expires.as_deref() else {
            continue;
        };
        let at: jiff::Timestamp = expires.parse().expect("fixture dates are RFC 3339");
        let left = at.as_second() - today.as_second();
        let rotate = &[
            "Create a new version of the secret in Key Vault (or extend its expiry date).",
            "Run `adf-secret-refresh plan` for the secret to see what a rotation will touch.",
        ];
        if left < 0 {
            findings.push(finding(
                FindingCode::SecretExpired,
                Severity::Critical,
                e,
                &format!("{} expired on {expires}.", e.subject()),
                rotate,
                Owner::SecretOwner,
            ));
        } else if left <= 7 * DAY {
            findings.push(finding(
                FindingCode::SecretExpiring,
                Severity::Critical,
                e,
                &format!("{} expires on {expires}.", e.subject()),
                rotate,
                Owner::SecretOwner,
            ));
        } else if left <= 30 * DAY {
            findings.push(finding(
                FindingCode::SecretExpiring,
                Severity::Warning,
                e,
                &format!("{} expires on {expires}.", e.subject()),
                rotate,
                Owner::SecretOwner,
            ));
        }
    }
    findings
}

fn assemble(id: &str, secrets: Vec<SecretEntry>, mut findings: Vec<Finding>) -> Inventory {
    findings.extend(expiry_findings(&secrets));
    findings.sort_by_key(|f| f.severity);
    let mut inventory = Inventory {
        schema: SCHEMA.into(),
        id: id.into(),
        started_at: TODAY.into(),
        finished_at: None,
        scope: vec![format!("/subscriptions/{SUB}")],
        complete: true,
        errors: vec![],
        trigger: None,
        thresholds: Thresholds {
            warning_days: 30,
            critical_days: 7,
        },
        summary: Summary::default(),
        secrets,
        findings,
        notifications: vec![],
    };
    inventory.finish();
    inventory.finished_at = Some(TODAY.into());
    inventory
}

/// Two vaults, every place on the timeline (expired long ago, expired lately, critical, warning, later, past
/// the horizon, no date), Data Factory and Synapse consumers, a pin, and a hostile consumer name.
pub fn realistic_inventory() -> Inventory {
    let mut pinned = consumer(factory("adf-sales"), "ls_oracle_erp", Verdict::Pinned);
    pinned.pinned_version = Some("9a8b7c6d5e4f30211203f4e5d6c7b8a9".into());
    let mut git = consumer(factory("adf-prod-weu"), "ls_sql_warehouse", Verdict::Resave);
    git.git_mode = true;
    let mut credential = consumer(factory("adf-prod-weu"), "cred_sp_partner", Verdict::Resave);
    credential.kind = TargetKind::Credential;
    credential.path = "typeProperties.servicePrincipalKey".into();
    let mut landing = consumer(
        factory("adf-sales"),
        "ls_fileshare_landing",
        Verdict::Resave,
    );
    landing.integration_runtime = Some("shir-onprem-01".into());

    let secrets = vec![
        secret(
            "kv-data-prod",
            "sql-etl-password",
            Some(17.0),
            vec![
                git,
                consumer(factory("adf-sales"), "ls_synapse_dw", Verdict::Resave),
                landing,
                consumer(factory("adf-sales"), HOSTILE_NAME, Verdict::Resave),
                consumer(workspace("syn-analytics"), "ls_sql_pool", Verdict::Resave),
            ],
        ),
        secret(
            "kv-data-prod",
            "partner-api-secret",
            Some(-3.0),
            vec![
                credential,
                consumer(
                    factory("adf-prod-weu"),
                    "ls_rest_partner_api",
                    Verdict::Resave,
                ),
            ],
        ),
        secret(
            "kv-data-prod",
            "storage-account-key",
            Some(5.0),
            vec![consumer(
                factory("adf-sales"),
                "ls_blob_landing",
                Verdict::Resave,
            )],
        ),
        secret("kv-data-prod", "oracle-erp", Some(200.0), vec![pinned]),
        secret(
            "kv-data-prod",
            "old-sftp-key",
            Some(-90.0),
            vec![consumer(
                factory("adf-sales"),
                "ls_sftp_vendor",
                Verdict::InlineSecret,
            )],
        ),
        secret(
            "kv-synapse-prod",
            "dw-loader-password",
            Some(60.0),
            vec![consumer(
                workspace("syn-analytics"),
                "ls_dw_loader",
                Verdict::Resave,
            )],
        ),
        secret(
            "kv-synapse-prod",
            "legacy-ftp",
            None,
            vec![consumer(
                workspace("syn-analytics"),
                "ls_legacy_ftp",
                Verdict::Ambiguous,
            )],
        ),
    ];
    let pin = finding(
        FindingCode::PinnedToOldVersion,
        Severity::Warning,
        &secrets[3],
        "adf-sales/ls_oracle_erp pins version 9a8b7c6d…, which is not the newest: a rotation leaves it behind.",
        &["Remove secretVersion from the reference, so that it follows the newest version."],
        Owner::PipelineOwner,
    );
    let git_mode = Finding {
        code: FindingCode::GitMode,
        severity: Severity::Info,
        subject: Some(factory("adf-prod-weu")),
        vault_url: None,
        message: "Factory adf-prod-weu is Git-integrated: the next publish puts back what the collaboration branch holds.".into(),
        fix: vec!["Keep Key Vault references unpinned in the collaboration branch.".into()],
        owner: Owner::PipelineOwner,
    };
    let mut inventory = assemble("inv-2024-05-14-0600", secrets, vec![pin, git_mode]);
    inventory.summary.factories_scanned = 2;
    inventory.summary.workspaces_scanned = 1;
    inventory.summary.linked_services_scanned = 24;
    inventory.summary.credentials_scanned = 1;
    inventory
}

/// 500 secrets in 5 vaults, 10 consumers each (5,000), expiries spread from 90 days ago to a year ahead and
/// every tenth secret without one.
pub fn large_inventory() -> Inventory {
    let mut secrets = Vec::with_capacity(500);
    for i in 0..500usize {
        let vault = format!("kv-estate-{:02}", i % 5);
        let expires = (i % 10 != 9).then(|| ((i * 37) % 455) as f64 - 90.0 + 0.25);
        let consumers = (0..10usize)
            .map(|j| {
                let n = i * 10 + j;
                let holder = if n % 7 == 0 {
                    workspace(&format!("syn-ws-{:02}", n % 6))
                } else {
                    factory(&format!("adf-estate-{:02}", n % 50))
                };
                let verdict = match n % 23 {
                    0 => Verdict::Pinned,
                    1 => Verdict::Ambiguous,
                    _ => Verdict::Resave,
                };
                consumer(holder, &format!("ls_app_{i:03}_{j}"), verdict)
            })
            .collect();
        secrets.push(secret(
            &vault,
            &format!("app-{i:03}-secret"),
            expires,
            consumers,
        ));
    }
    let mut inventory = assemble("inv-large-500", secrets, vec![]);
    inventory.summary.factories_scanned = 50;
    inventory.summary.workspaces_scanned = 6;
    inventory.summary.linked_services_scanned = 5_000;
    inventory
}

/// An inventory whose read stopped at a vault: incomplete, with the error.
pub fn incomplete_inventory() -> Inventory {
    let mut inventory = realistic_inventory();
    inventory.errors.push(RunError {
        stage: "keyVault".into(),
        message: "Key Vault answered 503 for kv-synapse-prod after 8 attempts".into(),
        transient: true,
        subject: Some("https://kv-synapse-prod.vault.azure.net/".into()),
    });
    inventory.finish();
    inventory.finished_at = Some(TODAY.into());
    inventory
}
