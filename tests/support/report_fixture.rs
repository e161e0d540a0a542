//! A realistic report value built from the report's constructors, for the rendering and notification tests.
//!
//! It holds every verdict, a re-save that worked and one that failed, a test that failed with AADSTS7000222,
//! a self-hosted integration runtime that is offline, a Git-mode factory, a credential, a finding and a run
//! error; and, planted where the report may legitimately keep them, strings that must never leave it in a
//! notification ([`FAKE_TOKEN`] in ADF's raw test body, [`FAKE_FUNCTION_KEY`] in messages).
#![allow(dead_code)]

use adf_secret_refresh::diagnose;
use adf_secret_refresh::report::{
    Command, Finding, FindingCode, Impact, Note, Owner, Reference, Report, Resave, ResaveStatus,
    RunError, RuntimeStatus, SCHEMA, SecretInfo, Severity, Summary, Target, TargetKind, Test,
    TestStatus, Trigger, TriggerImpact, TriggerKind, Verdict,
};
use serde_json::json;

pub const SUB: &str = "6f1c1f4e-3d2a-4b8e-9a51-0c7d2e8b4a10";
pub const FAKE_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.FAKE-ACCESS-TOKEN-c2VjcmV0";
pub const FAKE_FUNCTION_KEY: &str = "fnkey-FAKE-Zk9vQmFyQmF6UXV4LW5vdC1hLXJlYWwta2V5";

pub fn factory(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-data-platform/providers/Microsoft.DataFactory/factories/{name}"
    )
}

fn reference(path: &str, version: Option<&str>, certainty: &str) -> Reference {
    Reference {
        path: path.into(),
        store: "ls_keyvault".into(),
        vault: Some("kv-data-prod".into()),
        secret_name: Some("sql-etl-password".into()),
        secret_version: version.map(str::to_string),
        certainty: certainty.into(),
        unresolved_because: None,
    }
}

fn resaved(before: &str, after: &str) -> Resave {
    Resave {
        status: ResaveStatus::Ok,
        etag_before: Some(before.into()),
        etag_after: Some(after.into()),
        error: None,
        attempts: 1,
    }
}

fn passed() -> Test {
    Test {
        status: TestStatus::Passed,
        message: None,
        raw: Some(json!({"succeeded": true})),
        diagnosis: None,
    }
}

/// One target, with the fields every target needs; tests adjust the rest.
pub fn target(factory_name: &str, name: &str, adf_type: &str, verdict: Verdict) -> Target {
    Target {
        platform: adf_secret_refresh::model::Platform::DataFactory,
        resource: factory(factory_name),
        display_name: None,
        kind: TargetKind::LinkedService,
        factory: factory(factory_name),
        name: name.into(),
        adf_type: adf_type.into(),
        references: vec![reference("typeProperties.password", None, "certain")],
        verdict,
        reason: "Every reference to the secret is literal and unpinned.".into(),
        notes: vec![],
        via_credential: None,
        used_by: vec![],
        integration_runtime: None,
        resave: resaved(
            "\"0a00c1d2-0000-0d00-0000-65a1b2c30000\"",
            "\"0a00c1d2-0000-0d00-0000-65a1b2c40000\"",
        ),
        test: passed(),
        diagnosis: diagnose::for_verdict(verdict, &[]),
        request_ids: vec![],
        impact: None,
    }
}

const EVENT_NOTE: &str = "event trigger: runs when an event arrives, not on a clock";

fn trigger(
    name: &str,
    trigger_type: &str,
    state: &str,
    next_run: Option<&str>,
    note: Option<&str>,
) -> TriggerImpact {
    TriggerImpact {
        name: name.into(),
        trigger_type: trigger_type.into(),
        state: state.into(),
        next_run: next_run.map(str::to_string),
        pipelines: vec!["pl_partner_orders".into()],
        note: note.map(str::to_string),
    }
}

/// A report with no targets, for the tests that add their own.
pub fn empty_report() -> Report {
    Report {
        schema: SCHEMA.into(),
        id: "run-2024-05-14T06-02-11Z-7c1e".into(),
        command: Command::Refresh,
        dry_run: false,
        trigger: Trigger {
            kind: TriggerKind::Eventgrid,
            event_id: Some("1f3e0b52-8f5d-4c62-9a0e-6f1b2c3d4e5f".into()),
            event_type: Some("Microsoft.KeyVault.SecretNewVersionCreated".into()),
            invocation_id: Some("b5b2a9a0-2f6e-4d8c-8f43-0d2c6a1e9b77".into()),
        },
        started_at: "2024-05-14T06:02:11Z".into(),
        finished_at: "2024-05-14T06:02:49Z".into(),
        scope: vec![format!("/subscriptions/{SUB}")],
        secret: Some(SecretInfo {
            vault: "kv-data-prod".into(),
            name: "sql-etl-password".into(),
            version: Some("4d2f9c0b7e5a4f61a3b8c2d1e0f9a8b7".into()),
            metadata: "ok".into(),
            enabled: Some(true),
            created: Some("2024-05-14T06:01:58Z".into()),
            not_before: None,
            expires: Some("2024-06-01T00:00:00Z".into()),
            version_count: Some(7),
        }),
        summary: Summary::default(),
        targets: vec![],
        findings: vec![],
        errors: vec![],
        complete: true,
        duplicate_of: None,
        notifications: vec![],
    }
}

/// The full fixture: every verdict and outcome the renderers must show.
pub fn realistic_report() -> Report {
    let mut report = empty_report();

    // A plain re-save that worked.
    let mut synapse = target("adf-sales", "ls_synapse_dw", "AzureSqlDW", Verdict::Resave);
    synapse.request_ids = vec!["8c5e2f1a-0b7d-4e33-9a61-2f4d5c6b7a80".into()];

    // Git mode: re-saved and tested, but the next publish overwrites the live factory.
    let mut warehouse = target(
        "adf-prod-weu",
        "ls_sql_warehouse",
        "AzureSqlDatabase",
        Verdict::Resave,
    );
    warehouse.notes = vec![Note::GitMode];
    warehouse.diagnosis = diagnose::for_verdict(Verdict::Resave, &warehouse.notes);

    // Re-saved, but the test failed: the app's client secret has expired.
    let mut partner = target(
        "adf-prod-weu",
        "ls_rest_partner_api",
        "RestService",
        Verdict::Resave,
    );
    partner.references = vec![reference(
        "typeProperties.servicePrincipalKey",
        None,
        "certain",
    )];
    let message = "ErrorCode=FailedToGetOAuth2AccessToken,'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,Message=Failed to get access token by using service principal. Error: invalid_client, Error Message: AADSTS7000222: The provided client secret keys for app '3c9b1f0e-5a2d-4c8e-b7f1-9d0e2a4c6b18' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret";
    partner.test = Test {
        status: TestStatus::Failed,
        message: Some(message.into()),
        raw: Some(json!({
            "succeeded": false,
            "errors": [{"code": "20151", "message": message}],
            "debugToken": FAKE_TOKEN,
        })),
        diagnosis: Some(diagnose::for_message(message)),
    };
    partner.request_ids = vec![
        "2b7d9e41-6c3f-4a05-8e12-7f9a0b1c2d3e".into(),
        "5e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b".into(),
    ];

    // Re-saved; not tested because the self-hosted integration runtime is offline.
    let mut landing = target(
        "adf-sales",
        "ls_fileshare_landing",
        "FileServer",
        Verdict::Resave,
    );
    landing.notes = vec![Note::SelfHostedIntegrationRuntimeOffline];
    landing.integration_runtime = Some(RuntimeStatus {
        name: "shir-onprem-01".into(),
        kind: Some("SelfHosted".into()),
        state: Some("Offline".into()),
    });
    landing.test =
        Test::not_tested("the self-hosted integration runtime shir-onprem-01 is offline");
    landing.test.diagnosis = Some(diagnose::for_message("The integration runtime is offline."));

    // Pinned to an older version: never re-saved.
    let mut oracle = target("adf-sales", "ls_oracle_erp", "Oracle", Verdict::Pinned);
    oracle.references = vec![reference(
        "typeProperties.password",
        Some("9a8b7c6d5e4f30211203f4e5d6c7b8a9"),
        "certain",
    )];
    oracle.reason =
        "typeProperties.password pins secretVersion 9a8b7c6d…, not the new version.".into();
    oracle.resave = Resave::with_status(ResaveStatus::Skipped, None);
    oracle.test = Test::not_tested("not re-saved, so not tested");

    // An inline secret next to the reference: never re-saved.
    let mut sftp = target("adf-sales", "ls_sftp_vendor", "Sftp", Verdict::InlineSecret);
    sftp.reason =
        "typeProperties.privateKeyContent is an inline SecureString; ARM returns it masked.".into();
    sftp.resave = Resave::with_status(ResaveStatus::Skipped, None);
    sftp.test = Test::not_tested("not re-saved, so not tested");

    // Matches only through a parameter default: never re-saved.
    let mut generic = target(
        "adf-sales",
        "ls_sql_generic",
        "AzureSqlDatabase",
        Verdict::Ambiguous,
    );
    generic.references = vec![Reference {
        unresolved_because: None,
        ..reference("typeProperties.password", None, "parameterDefault")
    }];
    generic.notes = vec![Note::Parameterised];
    generic.diagnosis = diagnose::for_verdict(Verdict::Ambiguous, &generic.notes);
    generic.reason =
        "The secret name comes from the parameter secretName, whose default is sql-etl-password."
            .into();
    generic.resave = Resave::with_status(ResaveStatus::Skipped, None);
    generic.test = Test::not_tested("not re-saved, so not tested");

    // A credential: re-saved, tested through the linked services that use it.
    let mut credential = target(
        "adf-prod-weu",
        "cred_sp_partner",
        "ServicePrincipal",
        Verdict::Resave,
    );
    credential.kind = TargetKind::Credential;
    credential.references = vec![reference(
        "typeProperties.servicePrincipalKey",
        None,
        "certain",
    )];
    credential.used_by = vec!["ls_rest_partner_api".into()];
    credential.test = Test::not_tested(
        "a credential is tested through the linked services that use it: ls_rest_partner_api",
    );

    // What each broken target stops: the partner feed runs tonight, the landing share within the hour.
    partner.impact = Some(Impact {
        pipelines: vec![
            "pl_partner_orders".into(),
            "pl_partner_returns".into(),
            "pl_nightly_master".into(),
            "pl_finance_close".into(),
        ],
        triggers: vec![
            trigger(
                "nightly_load",
                "ScheduleTrigger",
                "Started",
                Some("2024-05-14T09:15:00Z"),
                None,
            ),
            trigger(
                "partner_dropped",
                "BlobEventsTrigger",
                "Started",
                None,
                Some(EVENT_NOTE),
            ),
        ],
        next_run: Some("2024-05-14T09:15:00Z".into()),
        datasets: vec!["ds_partner_api".into()],
        data_flows: vec![],
    });
    landing.impact = Some(Impact {
        pipelines: vec!["pl_landing_ingest".into()],
        triggers: vec![trigger(
            "landing_half_hourly",
            "TumblingWindowTrigger",
            "Started",
            Some("2024-05-14T06:30:00Z"),
            None,
        )],
        next_run: Some("2024-05-14T06:30:00Z".into()),
        datasets: vec!["ds_landing_files".into()],
        data_flows: vec!["df_landing_clean".into()],
    });
    oracle.impact = Some(Impact {
        pipelines: vec!["pl_erp_extract".into()],
        triggers: vec![trigger(
            "erp_weekly",
            "ScheduleTrigger",
            "Stopped",
            None,
            Some("Stopped: it starts nothing until it is started"),
        )],
        next_run: None,
        datasets: vec![],
        data_flows: vec![],
    });
    sftp.impact = Some(Impact {
        pipelines: vec![],
        triggers: vec![],
        next_run: None,
        datasets: vec![],
        data_flows: vec![],
    });

    report.targets = vec![
        synapse, warehouse, partner, landing, oracle, sftp, generic, credential,
    ];
    report.findings = vec![Finding {
        code: FindingCode::SecretNearExpiry,
        severity: Severity::Warning,
        message: "The new version expires on 2024-06-01, in 17 days.".into(),
        subject: Some("kv-data-prod/sql-etl-password".into()),
        vault_url: None,
        fix: vec!["Rotate the secret again before it expires, or extend its expiry date.".into()],
        owner: Owner::SecretOwner,
    }];
    report.errors = vec![RunError {
        stage: "discovery".into(),
        message: "ARM answered 503 ServiceUnavailable for listLinkedServices after 8 attempts"
            .into(),
        transient: true,
        subject: Some(factory("adf-finance")),
    }];
    report.complete = false;
    report.summary = Summary {
        factories_scanned: 3,
        linked_services_scanned: 41,
        credentials_scanned: 2,
        ..Summary::default()
    };
    report.summarise();
    report
}
