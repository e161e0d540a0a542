//! The real binary against the emulator's App Service sites and API Management services: what a user sees when
//! a rotation of `contoso-kv/sql-password` reaches the consumers whose cache Microsoft documents.

mod common;

use adf_emulator::{Emulator, Faults, PageFault, PageFaultKind};
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Subscription A of the demo estate, which holds `rg-apps-prod`.
const DEMO_SUB: &str = "1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f";
const VAULT: &str = "contoso-kv";
const SECRET: &str = "sql-password";
/// The version the pinned references name (the older of the seed's two).
const OLD_VERSION: &str = "2f1d6c0b8e4a4f3c9a7b5d1e0c8f6a42";

fn apps(resource: &str) -> String {
    format!("/subscriptions/{DEMO_SUB}/resourceGroups/rg-apps-prod/providers/{resource}")
}

fn site(name: &str) -> String {
    apps(&format!("Microsoft.Web/sites/{name}"))
}

fn slot(site_name: &str, slot_name: &str) -> String {
    format!("{}/slots/{slot_name}", site(site_name))
}

fn apim() -> String {
    apps("Microsoft.ApiManagement/service/apim-contoso")
}

fn named_value_id(name: &str) -> String {
    format!("{}/namedValues/{name}", apim())
}

/// The demo estate's cases A1–A6 and M1–M3 alone: subscription A with only `rg-apps-prod`, and the vaults.
fn apps_seed() -> Value {
    let mut seed = adf_emulator::demo_seed();
    let mut subscription = seed["subscriptions"]
        .as_array()
        .and_then(|subs| subs.iter().find(|s| s["subscriptionId"] == DEMO_SUB))
        .cloned()
        .expect("subscription A in the demo seed");
    let groups = subscription["resourceGroups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter(|g| g["name"] == "rg-apps-prod")
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(groups.len(), 1, "rg-apps-prod is in the demo seed");
    subscription["resourceGroups"] = Value::from(groups);
    seed["subscriptions"] = json!([subscription]);
    seed
}

/// The apps estate with one factory beside it, so that a narrowed run has something to leave alone.
fn apps_and_factory_seed() -> Value {
    let mut seed = apps_seed();
    seed["subscriptions"][0]["resourceGroups"]
        .as_array_mut()
        .expect("resource groups")
        .push(
            json!({"name": "rg-data", "factories": [{"name": "adf-side", "location": "westeurope",
            "linkedServices": [kv_ls("KeyVault", "https://contoso-kv.vault.azure.net/"),
                               sql("SideSql", kv_ref("KeyVault", json!("sql-password")))]}]}),
        );
    seed
}

fn cli(emu: &Emulator, args: &[&str]) -> std::process::Command {
    let mut cmd = command(emu, &format!("/subscriptions/{DEMO_SUB}"));
    cmd.args(args).args(["--output", "json"]);
    cmd
}

/// `refresh` of the secret at `version`, with extra global options.
async fn refresh(emu: &Emulator, version: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "refresh",
        "--vault",
        VAULT,
        "--secret",
        SECRET,
        "--version",
        version,
    ];
    args.extend_from_slice(extra);
    exec(cli(emu, &args)).await
}

async fn plan(emu: &Emulator, extra: &[&str]) -> Run {
    let mut args = vec!["plan", "--vault", VAULT, "--secret", SECRET];
    args.extend_from_slice(extra);
    exec(cli(emu, &args)).await
}

/// A rotation in the emulator: the new version, which every cache is still behind.
fn rotate(emu: &Emulator) -> String {
    emu.rotate(VAULT, SECRET).expect("the secret exists")
}

/// What holds in every run: no secret-reading route called, no secret in any output, the report valid.
fn assert_trusted(emu: &Emulator, run: &Run) -> Value {
    let report = run.report();
    assert_eq!(
        emu.counters().secret_read_attempts,
        0,
        "a route that returns setting or named-value values was called"
    );
    assert_eq!(emu.counters().secret_value_reads, 0);
    assert_no_secrets(emu, &run.stdout);
    assert_no_secrets(emu, &run.stderr);
    report
}

fn targets(report: &Value) -> Vec<Value> {
    report["targets"].as_array().cloned().unwrap_or_default()
}

/// The target `name` held by `resource` (ids compared as Azure does, without regard to case).
fn target_at<'a>(report: &'a Value, resource: &str, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|all| {
            all.iter().find(|t| {
                t["name"] == name
                    && t["resource"]
                        .as_str()
                        .is_some_and(|r| r.eq_ignore_ascii_case(resource))
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "no target {name} of {resource} in {}",
                serde_json::to_string_pretty(&report["targets"]).unwrap_or_default()
            )
        })
}

fn has_target(report: &Value, resource: &str) -> bool {
    targets(report).iter().any(|t| {
        t["resource"]
            .as_str()
            .is_some_and(|r| r.eq_ignore_ascii_case(resource))
    })
}

fn posts(emu: &Emulator) -> Vec<adf_emulator::RecordedRequest> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.host_kind == "arm")
        .collect()
}

/// App Service refresh POSTs received, by the site or slot they were for.
fn refresh_posts_for(emu: &Emulator, resource: &str) -> usize {
    let path =
        format!("{resource}/config/configreferences/appsettings/refresh").to_ascii_lowercase();
    posts(emu)
        .iter()
        .filter(|r| r.path.to_ascii_lowercase() == path)
        .count()
}

fn refresh_secret_posts_for(emu: &Emulator, name: &str) -> usize {
    let path = format!("{}/refreshSecret", named_value_id(name)).to_ascii_lowercase();
    posts(emu)
        .iter()
        .filter(|r| r.path.to_ascii_lowercase() == path)
        .count()
}

fn cached_version(emu: &Emulator, resource: &str, kind: &str, name: &str) -> Value {
    emu.site_reference(resource, kind, name)
        .unwrap_or_else(|| panic!("the emulator knows {resource} {kind} {name}"))["version"]
        .clone()
}

fn errors_text(report: &Value) -> String {
    serde_json::to_string(&report["errors"]).unwrap_or_default()
}

/// Whether `errors[]` has a discovery error whose subject is `resource`.
fn error_about(report: &Value, resource: &str) -> bool {
    report["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["stage"] == "discovery"
                && e["subject"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(resource))
        })
    })
}

fn page_fault(collection: &str, times: u64) -> Faults {
    Faults {
        page_faults: vec![PageFault {
            collection: collection.into(),
            kind: PageFaultKind::TruncatedBody,
            times,
        }],
        ..Faults::default()
    }
}

#[tokio::test]
async fn a_rotation_refreshes_every_unpinned_app_service_reference_once_per_site_or_slot() {
    let emu = emulator(apps_seed(), 2).await;
    let new = rotate(&emu);
    let web = site("app-contoso-web");
    let staging = slot("app-contoso-web", "staging");
    assert_ne!(
        cached_version(&emu, &web, "appsettings", "SqlPassword"),
        Value::from(new.clone()),
        "before the refresh the web app still holds the old version"
    );

    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(
        run.code, 2,
        "the denied function app needs a person\n{}",
        run.stderr
    );
    assert_eq!(report["complete"], true, "{}", errors_text(&report));

    // One refresh per site or slot with a `resave` reference, though the web app has two (A1 and A2).
    assert_eq!(refresh_posts_for(&emu, &web), 1);
    assert_eq!(refresh_posts_for(&emu, &staging), 1);
    assert_eq!(
        refresh_posts_for(&emu, &site("func-contoso-ingest")),
        1,
        "the denied app is refreshed too: only its test can tell"
    );
    assert_eq!(emu.site_refreshes(&web), Some(1));
    assert_eq!(emu.site_refreshes(&staging), Some(1));
    assert_eq!(
        emu.counters().app_service_refreshes,
        3,
        "web app, its slot, function app"
    );

    // What the apps now read.
    for (resource, kind, name) in [
        (&web, "appsettings", "SqlPassword"),
        (&web, "connectionstrings", "Sales"),
        (&staging, "appsettings", "SqlPassword"),
    ] {
        assert_eq!(
            cached_version(&emu, resource, kind, name),
            Value::from(new.clone()),
            "{resource} {kind} {name} holds the new version"
        );
    }

    for (resource, name, kind) in [
        (&web, "SqlPassword", "appSetting"),
        (&web, "Sales", "connectionString"),
        (&staging, "SqlPassword", "appSetting"),
    ] {
        let t = target_at(&report, resource, name);
        assert_eq!(t["platform"], "appService");
        assert_eq!(t["kind"], kind, "{name} of {resource}");
        assert_eq!(t["verdict"], "resave");
        assert_eq!(t["resave"]["status"], "ok");
        assert_eq!(
            t["test"]["status"], "passed",
            "{name} of {resource}: {}",
            t["test"]
        );
        assert_eq!(
            t["test"]["raw"]["status"], "Resolved",
            "the test carries what App Service read back: {}",
            t["test"]
        );
        assert!(
            t["test"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("does not say which version")),
            "activeVersion is empty, and the report says so: {}",
            t["test"]
        );
    }
    // A1–A6: the web app, its slot and the three other sites.
    assert_eq!(report["summary"]["sitesScanned"], 5);
    assert_eq!(report["summary"]["apiManagementServicesScanned"], 1);
}

#[tokio::test]
async fn a_function_app_whose_identity_is_denied_fails_its_test_with_azures_status_and_an_owner() {
    let emu = emulator(apps_seed(), 2).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(run.code, 2, "{}", run.stderr);

    let t = target_at(&report, &site("func-contoso-ingest"), "SqlPassword");
    assert_eq!(t["platform"], "appService");
    assert_eq!(t["kind"], "appSetting");
    assert_eq!(t["resave"]["status"], "ok");
    assert_eq!(t["test"]["status"], "failed");
    assert!(
        t["test"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AccessToKeyVaultDenied")),
        "{}",
        t["test"]
    );
    let diagnosis = &t["test"]["diagnosis"];
    assert_eq!(diagnosis["code"], "AccessToKeyVaultDenied", "{diagnosis}");
    assert!(
        diagnosis["owner"].as_str().is_some_and(|o| !o.is_empty()),
        "someone owns the fix: {diagnosis}"
    );
    assert!(
        diagnosis["fix"].as_array().is_some_and(|f| !f.is_empty()),
        "{diagnosis}"
    );
}

#[tokio::test]
async fn pinned_and_unparsable_references_are_reported_and_never_refreshed() {
    let emu = emulator(apps_seed(), 2).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);

    let reports = site("app-contoso-reports");
    let pinned = target_at(&report, &reports, "SqlPassword");
    assert_eq!(pinned["verdict"], "pinned");
    assert_eq!(pinned["diagnosis"]["code"], "pinnedVersion", "{pinned}");
    assert!(
        pinned["test"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("names its version")),
        "the read-back of a pinned reference does not claim the new version: {pinned}"
    );
    assert_eq!(pinned["resave"]["status"], "skipped");
    assert_eq!(refresh_posts_for(&emu, &reports), 0);
    assert_eq!(
        cached_version(&emu, &reports, "appsettings", "SqlPassword"),
        Value::from(OLD_VERSION),
        "a pinned reference stays on its version"
    );

    let logic = site("logic-contoso-orders");
    let ambiguous = target_at(&report, &logic, "OrdersDbPassword");
    assert_eq!(ambiguous["verdict"], "ambiguous");
    assert_eq!(ambiguous["platform"], "appService");
    assert_eq!(ambiguous["resave"]["status"], "skipped");
    assert_eq!(refresh_posts_for(&emu, &logic), 0);
}

#[tokio::test]
async fn the_versionless_named_value_is_refreshed_once_and_proven_and_the_pinned_one_is_left_alone()
{
    let emu = emulator(apps_seed(), 2).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(report["summary"]["apiManagementServicesScanned"], 1);

    let t = target_at(&report, &apim(), "sql-password");
    assert_eq!(t["platform"], "apiManagement");
    assert_eq!(t["kind"], "namedValue");
    assert_eq!(t["verdict"], "resave");
    assert_eq!(t["resave"]["status"], "ok");
    assert_eq!(t["test"]["status"], "passed", "{}", t["test"]);
    assert_eq!(t["test"]["raw"]["code"], "Success", "{}", t["test"]);
    assert_eq!(refresh_secret_posts_for(&emu, "sql-password"), 1);
    // The 202 was polled to its end: the emulator fetched the secret only then.
    let cache = emu
        .named_value(&named_value_id("sql-password"))
        .expect("named value");
    assert_eq!(cache["version"], Value::from(new.clone()), "{cache}");
    assert_eq!(cache["lastStatus"]["code"], "Success");
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/operationResults/")),
        "the long-running operation was polled"
    );

    let pinned = target_at(&report, &apim(), "sql-password-pinned");
    assert_eq!(pinned["verdict"], "pinned");
    assert_eq!(pinned["resave"]["status"], "skipped");
    assert_eq!(refresh_secret_posts_for(&emu, "sql-password-pinned"), 0);
    assert_eq!(
        emu.named_value(&named_value_id("sql-password-pinned"))
            .expect("named value")["version"],
        OLD_VERSION
    );

    assert!(
        !targets(&report).iter().any(|t| t["name"] == "environment"),
        "a plain named value is not a consumer"
    );
    assert_eq!(
        emu.counters().named_value_refreshes,
        1,
        "one refreshSecret in all"
    );
}

#[tokio::test]
async fn plan_finds_every_consumer_and_posts_nothing() {
    let emu = emulator(apps_seed(), 2).await;
    rotate(&emu);
    let run = plan(&emu, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["complete"], true, "{}", errors_text(&report));
    let sent: Vec<String> = emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.host_kind != "entra")
        .map(|r| format!("{} {}", r.host_kind, r.path))
        .collect();
    assert_eq!(
        sent,
        Vec::<String>::new(),
        "plan sent a POST (only a token request may be one)"
    );
    assert_eq!(emu.counters().app_service_refreshes, 0);
    assert_eq!(emu.counters().named_value_refreshes, 0);

    let verdicts: Vec<(String, String, String)> = targets(&report)
        .iter()
        .map(|t| {
            let resource = t["resource"].as_str().unwrap_or_default();
            let holder = resource.rsplit("/providers/").next().unwrap_or_default();
            (
                holder.to_string(),
                t["name"].as_str().unwrap_or_default().to_string(),
                t["verdict"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut verdicts = verdicts;
    verdicts.sort();
    let expected = [
        (
            "Microsoft.ApiManagement/service/apim-contoso",
            "sql-password",
            "resave",
        ),
        (
            "Microsoft.ApiManagement/service/apim-contoso",
            "sql-password-pinned",
            "pinned",
        ),
        (
            "Microsoft.Web/sites/app-contoso-reports",
            "SqlPassword",
            "pinned",
        ),
        ("Microsoft.Web/sites/app-contoso-web", "Sales", "resave"),
        (
            "Microsoft.Web/sites/app-contoso-web",
            "SqlPassword",
            "resave",
        ),
        (
            "Microsoft.Web/sites/app-contoso-web/slots/staging",
            "SqlPassword",
            "resave",
        ),
        (
            "Microsoft.Web/sites/func-contoso-ingest",
            "SqlPassword",
            "resave",
        ),
        (
            "Microsoft.Web/sites/logic-contoso-orders",
            "OrdersDbPassword",
            "ambiguous",
        ),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(verdicts, expected);
}

#[tokio::test]
async fn a_refresh_that_never_ends_fails_that_named_value_and_the_run_goes_on() {
    let emu = emulator_with_faults(
        apps_seed(),
        2,
        Faults {
            apim_refresh_never_ends: true,
            ..Faults::default()
        },
    )
    .await;
    let new = rotate(&emu);
    // One refresh is capped at 60 s; a shorter run budget ends it sooner, so the test takes ~20 s, not ~60 s.
    let started = Instant::now();
    let run = refresh(&emu, &new, &["--budget-seconds", "20"]).await;
    let took = started.elapsed();
    let report = assert_trusted(&emu, &run);
    assert_eq!(
        run.code, 2,
        "a failed target, not a failed run\n{}",
        run.stderr
    );
    assert_eq!(report["complete"], true, "{}", errors_text(&report));
    let t = target_at(&report, &apim(), "sql-password");
    assert_eq!(t["resave"]["status"], "failed", "{t}");
    assert!(
        t["resave"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the failure is reported: {t}"
    );
    assert!(
        t["resave"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("had not ended")),
        "the user learns the refresh never ended: {t}"
    );
    assert_eq!(t["test"]["status"], "notTested");
    // The sites were refreshed and proven all the same.
    let web = target_at(&report, &site("app-contoso-web"), "SqlPassword");
    assert_eq!(web["test"]["status"], "passed", "{web}");
    let staging = target_at(&report, &slot("app-contoso-web", "staging"), "SqlPassword");
    assert_eq!(staging["test"]["status"], "passed");
    assert!(
        took < Duration::from_secs(45),
        "a stuck refresh held the run for {took:?}"
    );
}

#[tokio::test]
async fn a_refresh_that_ends_failed_fails_that_named_value_only() {
    let emu = emulator_with_faults(
        apps_seed(),
        2,
        Faults {
            apim_refresh_fails: true,
            ..Faults::default()
        },
    )
    .await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(report["complete"], true, "{}", errors_text(&report));
    let t = target_at(&report, &apim(), "sql-password");
    assert_eq!(t["resave"]["status"], "failed", "{t}");
    assert!(
        t["resave"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("OperationFailed")),
        "API Management's error code reaches the user: {t}"
    );
    assert_ne!(
        emu.named_value(&named_value_id("sql-password"))
            .expect("named value")["version"],
        Value::from(new),
        "nothing was fetched"
    );
    let web = target_at(&report, &site("app-contoso-web"), "SqlPassword");
    assert_eq!(web["test"]["status"], "passed");
}

#[tokio::test]
async fn an_app_settings_listing_that_never_reads_to_its_end_makes_the_run_incomplete() {
    let emu = emulator_with_faults(apps_seed(), 2, page_fault("appsettings", 0)).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["complete"], false);
    for name in [
        "app-contoso-web",
        "func-contoso-ingest",
        "app-contoso-reports",
        "logic-contoso-orders",
    ] {
        assert!(
            error_about(&report, &site(name)),
            "the site that could not be read is named: {}",
            errors_text(&report)
        );
        assert!(
            !has_target(&report, &site(name)),
            "no target is claimed for a site whose references were not all read"
        );
    }
    assert!(!has_target(&report, &slot("app-contoso-web", "staging")));
    assert_eq!(
        emu.counters().app_service_refreshes,
        0,
        "a site not read to its end is not refreshed"
    );
    // API Management was read to its end and goes on.
    let t = target_at(&report, &apim(), "sql-password");
    assert_eq!(t["test"]["status"], "passed", "{t}");
}

#[tokio::test]
async fn a_named_value_listing_that_never_reads_to_its_end_makes_the_run_incomplete() {
    let emu = emulator_with_faults(apps_seed(), 2, page_fault("namedValues", 0)).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["complete"], false);
    assert!(
        error_about(&report, &apim()),
        "the service that could not be read is named: {}",
        errors_text(&report)
    );
    assert!(!has_target(&report, &apim()));
    assert_eq!(emu.counters().named_value_refreshes, 0);
    // The sites were read to their end and go on.
    let t = target_at(&report, &site("app-contoso-web"), "SqlPassword");
    assert_eq!(t["test"]["status"], "passed", "{t}");
}

#[tokio::test]
async fn a_listing_broken_once_is_read_again_and_nothing_is_missed() {
    for collection in ["appsettings", "namedValues", "sites", "slots"] {
        let emu = emulator_with_faults(apps_seed(), 2, page_fault(collection, 1)).await;
        let run = plan(&emu, &[]).await;
        let report = assert_trusted(&emu, &run);
        assert_eq!(
            report["complete"],
            true,
            "{collection}: {}",
            errors_text(&report)
        );
        assert_eq!(
            targets(&report).len(),
            8,
            "{collection}: every consumer found"
        );
        assert_eq!(report["summary"]["sitesScanned"], 5, "{collection}");
    }
}

/// Whether the refresh re-resolves connection strings is not documented. When it does not, App Service keeps
/// serving the old version of `Sales`, and its configreferences listing still says `Resolved` with an empty
/// `activeVersion`: the user sees a passed test whose message says the version cannot be known. Only where App
/// Service fills `activeVersion` does the stale version show, as a failed test.
#[tokio::test]
async fn a_connection_string_the_refresh_skips_is_reported_as_app_service_shows_it() {
    let skip = Faults {
        refresh_skips_connection_strings: true,
        ..Faults::default()
    };
    let web = site("app-contoso-web");

    // activeVersion null (the default, as real answers show): Resolved is all that can be known.
    let emu = emulator_with_faults(apps_seed(), 2, skip.clone()).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_ne!(
        cached_version(&emu, &web, "connectionstrings", "Sales"),
        Value::from(new.clone()),
        "the app still reads the old version"
    );
    let sales = target_at(&report, &web, "Sales");
    assert_eq!(sales["test"]["status"], "passed", "{sales}");
    assert!(
        sales["test"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not say which version")),
        "the report says the version could not be checked: {sales}"
    );

    // activeVersion filled: the stale version is a failed test.
    let mut seed = apps_seed();
    seed["subscriptions"][0]["resourceGroups"][0]["sites"][0]["activeVersionFilled"] = json!(true);
    let emu = emulator_with_faults(seed, 2, skip).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    let sales = target_at(&report, &web, "Sales");
    assert_eq!(sales["test"]["status"], "failed", "{sales}");
    assert_eq!(sales["test"]["diagnosis"]["code"], "staleVersion");
    let setting = target_at(&report, &web, "SqlPassword");
    assert_eq!(
        setting["test"]["status"], "passed",
        "the app setting did move: {setting}"
    );
    assert!(
        setting["test"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&new)),
        "the message names the version App Service holds: {setting}"
    );
}

/// The factory and workspace listings of a subscription, whatever their answer.
fn listed_data_platforms(emu: &Emulator) -> Vec<String> {
    emu.requests()
        .iter()
        .filter(|r| {
            let p = r.path.to_ascii_lowercase();
            p.contains("microsoft.datafactory") || p.contains("microsoft.synapse")
        })
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test]
async fn platforms_app_service_scans_only_sites() {
    let emu = emulator(apps_and_factory_seed(), 2).await;
    let run = plan(&emu, &["--platforms", "appService"]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(report["complete"], true, "{}", errors_text(&report));
    assert_eq!(listed_data_platforms(&emu), Vec::<String>::new());
    assert!(
        !emu.requests().iter().any(|r| r
            .path
            .to_ascii_lowercase()
            .contains("microsoft.apimanagement")),
        "API Management was not asked"
    );
    assert!(
        targets(&report)
            .iter()
            .all(|t| t["platform"] == "appService"),
        "{}",
        report["targets"]
    );
    assert_eq!(report["summary"]["sitesScanned"], 5);
    assert_eq!(report["summary"]["factoriesScanned"], 0);
    assert_eq!(report["summary"]["apiManagementServicesScanned"], 0);
}

#[tokio::test]
async fn adf_refresh_platforms_api_management_scans_only_api_management() {
    let emu = emulator(apps_and_factory_seed(), 2).await;
    let mut cmd = cli(&emu, &["plan", "--vault", VAULT, "--secret", SECRET]);
    cmd.env("ADF_REFRESH_PLATFORMS", "apiManagement");
    let run = exec(cmd).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(report["complete"], true, "{}", errors_text(&report));
    assert_eq!(listed_data_platforms(&emu), Vec::<String>::new());
    assert!(
        !emu.requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().contains("microsoft.web")),
        "no site was listed"
    );
    assert!(
        targets(&report)
            .iter()
            .all(|t| t["platform"] == "apiManagement"),
        "{}",
        report["targets"]
    );
    assert_eq!(targets(&report).len(), 2);
    assert_eq!(report["summary"]["sitesScanned"], 0);
    assert_eq!(report["summary"]["apiManagementServicesScanned"], 1);
}

#[tokio::test]
async fn every_platform_by_default_includes_the_factory_beside_the_apps() {
    let emu = emulator(apps_and_factory_seed(), 2).await;
    let run = plan(&emu, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(report["summary"]["factoriesScanned"], 1);
    assert_eq!(report["summary"]["sitesScanned"], 5);
    assert_eq!(report["summary"]["apiManagementServicesScanned"], 1);
    assert_eq!(target(&report, "SideSql")["platform"], "dataFactory");
}

/// Each App Service and API Management listing, broken for good (a `nextLink` that loops, which is refused at
/// once): what is held by the listing's owner is not claimed, the owner is named in `errors[]`, and the other
/// platform is still reported.
#[tokio::test]
async fn every_consumer_listing_not_read_to_its_end_makes_the_run_incomplete_and_names_its_owner() {
    let sites = [
        "app-contoso-web",
        "func-contoso-ingest",
        "app-contoso-reports",
        "logic-contoso-orders",
    ]
    .map(site);
    let subscription = format!("/subscriptions/{DEMO_SUB}");
    let cases: [(&str, Vec<String>, bool); 6] = [
        ("sites", vec![subscription.clone()], true),
        ("slots", sites.to_vec(), true),
        ("appsettings", sites.to_vec(), true),
        ("connectionstrings", sites.to_vec(), true),
        ("service", vec![subscription.clone()], false),
        ("namedValues", vec![apim()], false),
    ];
    for (collection, owners, app_service) in cases {
        let faults = Faults {
            page_faults: vec![PageFault {
                collection: collection.into(),
                kind: PageFaultKind::LoopingNextLink,
                times: 0,
            }],
            ..Faults::default()
        };
        let emu = emulator_with_faults(apps_seed(), 2, faults).await;
        let run = plan(&emu, &[]).await;
        let report = assert_trusted(&emu, &run);
        assert_eq!(run.code, 1, "{collection}: {}", run.stderr);
        assert_eq!(report["complete"], false, "{collection}");
        for owner in &owners {
            assert!(
                error_about(&report, owner),
                "{collection}: {owner} is named in {}",
                errors_text(&report)
            );
        }
        let platforms: Vec<Value> = targets(&report)
            .iter()
            .map(|t| t["platform"].clone())
            .collect();
        let (gone, kept) = if app_service {
            ("appService", "apiManagement")
        } else {
            ("apiManagement", "appService")
        };
        assert!(
            !platforms.contains(&Value::from(gone)),
            "{collection}: nothing claimed for what was not read: {platforms:?}"
        );
        assert!(
            platforms.contains(&Value::from(kept)),
            "{collection}: the other platform is still reported: {platforms:?}"
        );
    }
}

/// Panics with every violation if `inventory` does not match `docs/inventory.schema.json`.
fn assert_valid_inventory(inventory: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/inventory.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(inventory)
        .map(|e| format!("  at `{}`: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the inventory does not match the schema:\n{}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn the_audit_lists_app_service_and_api_management_consumers_under_their_secret() {
    let emu = emulator(apps_seed(), 2).await;
    let run = exec(cli(&emu, &["audit"])).await;
    let inventory: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("one JSON inventory ({e}):\n{}\n{}", run.stdout, run.stderr));
    assert_valid_inventory(&inventory);
    assert_eq!(emu.counters().secret_read_attempts, 0);
    assert_eq!(emu.counters().secret_value_reads, 0);
    assert_no_secrets(&emu, &run.stdout);
    assert_eq!(inventory["complete"], true, "{}", inventory["errors"]);

    let entry = inventory["secrets"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|e| e["vault"] == VAULT && e["secret"] == SECRET)
        })
        .unwrap_or_else(|| {
            panic!(
                "contoso-kv/sql-password is listed: {}",
                inventory["secrets"]
            )
        });
    let mut consumers: Vec<(String, String, String, String, String)> = entry["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            let resource = text("resource");
            let holder = resource
                .rsplit("/providers/")
                .next()
                .unwrap_or_default()
                .to_string();
            (
                text("platform"),
                holder,
                text("kind"),
                text("name"),
                text("verdict"),
            )
        })
        .collect();
    consumers.sort();
    let expected = [
        (
            "apiManagement",
            "Microsoft.ApiManagement/service/apim-contoso",
            "namedValue",
            "sql-password",
            "resave",
        ),
        (
            "apiManagement",
            "Microsoft.ApiManagement/service/apim-contoso",
            "namedValue",
            "sql-password-pinned",
            "pinned",
        ),
        (
            "appService",
            "Microsoft.Web/sites/app-contoso-reports",
            "appSetting",
            "SqlPassword",
            "pinned",
        ),
        (
            "appService",
            "Microsoft.Web/sites/app-contoso-web",
            "appSetting",
            "SqlPassword",
            "resave",
        ),
        (
            "appService",
            "Microsoft.Web/sites/app-contoso-web",
            "connectionString",
            "Sales",
            "resave",
        ),
        (
            "appService",
            "Microsoft.Web/sites/app-contoso-web/slots/staging",
            "appSetting",
            "SqlPassword",
            "resave",
        ),
        (
            "appService",
            "Microsoft.Web/sites/func-contoso-ingest",
            "appSetting",
            "SqlPassword",
            "resave",
        ),
    ]
    .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()));
    assert_eq!(consumers, expected);

    let findings = inventory["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for holder in ["app-contoso-reports", "apim-contoso"] {
        assert!(
            findings.iter().any(|f| f["code"] == "pinnedToOldVersion"
                && f["owner"] == "appOwner"
                && f["message"].as_str().is_some_and(|m| m.contains(holder))),
            "the pin of {holder} to the old version is a finding: {findings:?}"
        );
    }
    assert!(
        findings.iter().any(|f| f["code"] == "unresolvedReference"
            && f["subject"]
                .as_str()
                .is_some_and(|s| s.contains("logic-contoso-orders"))),
        "the unparsable reference is a finding: {findings:?}"
    );
}

#[tokio::test]
async fn a_slot_without_a_managed_identity_fails_with_msi_not_enabled_and_the_app_owner_fixes_it() {
    let mut seed = apps_seed();
    seed["subscriptions"][0]["resourceGroups"][0]["sites"][0]["slots"][0]["identity"] = Value::Null;
    let emu = emulator(seed, 2).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let staging = target_at(&report, &slot("app-contoso-web", "staging"), "SqlPassword");
    assert_eq!(staging["resave"]["status"], "ok", "the slot was refreshed");
    assert_eq!(staging["test"]["status"], "failed", "{staging}");
    assert_eq!(staging["test"]["raw"]["status"], "MSINotEnabled");
    assert_eq!(staging["test"]["diagnosis"]["owner"], "appOwner");
    let web = target_at(&report, &site("app-contoso-web"), "SqlPassword");
    assert_eq!(
        web["test"]["status"], "passed",
        "the site's own identity is unaffected"
    );
}

#[tokio::test]
async fn every_spelling_of_a_reference_gets_its_verdict_and_the_site_is_still_refreshed_once() {
    let mut seed = apps_seed();
    let settings = &mut seed["subscriptions"][0]["resourceGroups"][0]["sites"][0]["appSettings"];
    settings["ByNamePinned"] = json!(format!(
        "@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=sql-password;SecretVersion={OLD_VERSION})"
    ));
    settings["NoTrailingSlash"] = json!(
        "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/sql-password)"
    );
    settings["OtherCase"] = json!(
        "@Microsoft.KeyVault(SecretUri=https://CONTOSO-KV.vault.azure.net/secrets/SQL-PASSWORD/)"
    );
    settings["ChinaCloud"] = json!(
        "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.cn/secrets/sql-password/)"
    );
    settings["OtherVault"] =
        json!("@Microsoft.KeyVault(VaultName=other-kv;SecretName=sql-password)");
    let emu = emulator(seed, 2).await;
    let new = rotate(&emu);
    let run = refresh(&emu, &new, &[]).await;
    let report = assert_trusted(&emu, &run);
    let web = site("app-contoso-web");

    let pinned = target_at(&report, &web, "ByNamePinned");
    assert_eq!(pinned["verdict"], "pinned", "SecretVersion= pins: {pinned}");
    for name in ["NoTrailingSlash", "OtherCase", "SqlPassword", "Sales"] {
        let t = target_at(&report, &web, name);
        assert_eq!(t["verdict"], "resave", "{name}");
        assert_eq!(t["test"]["status"], "passed", "{name}: {t}");
    }
    for name in ["ChinaCloud", "OtherVault"] {
        assert!(
            !targets(&report)
                .iter()
                .any(|t| t["name"] == name && t["resource"] == web.as_str()),
            "{name} names another vault: not a consumer of this secret"
        );
    }
    assert_eq!(
        refresh_posts_for(&emu, &web),
        1,
        "one refresh for the site, however many settings match"
    );
}
