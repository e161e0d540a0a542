//! The real binary against the emulator: `plan` and `refresh` on an estate with every case.

mod common;

use common::*;
use serde_json::Value;

fn scope() -> String {
    format!("/subscriptions/{SUB}")
}

fn cli(emu: &adf_emulator::Emulator, args: &[&str]) -> std::process::Command {
    let mut cmd = command(emu, &scope());
    cmd.args(args).args(["--output", "json"]);
    cmd
}

/// Runs `plan` or `refresh` of `contoso-kv/sql-password` over the whole subscription.
async fn run_command(emu: &adf_emulator::Emulator, command: &str) -> Run {
    exec(cli(
        emu,
        &[command, "--vault", "contoso-kv", "--secret", "sql-password"],
    ))
    .await
}

/// No PUT, no test connection, and no secret value read.
fn assert_wrote_nothing(emu: &adf_emulator::Emulator) {
    assert!(puts(emu).is_empty());
    assert!(
        !emu.requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().ends_with("/testconnectivity"))
    );
    assert_eq!(emu.counters().secret_value_reads, 0);
}

fn puts(emu: &adf_emulator::Emulator) -> Vec<adf_emulator::RecordedRequest> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect()
}

#[tokio::test]
async fn plan_classifies_every_case_and_writes_nothing() {
    let emu = emulator(estate(), 2).await;
    let run = run_command(&emu, "plan").await;
    let report = run.report();
    assert_eq!(
        run.code, 2,
        "pinned, inline and ambiguous targets need a person\n{}",
        run.stderr
    );
    assert_eq!(report["dryRun"], true);

    let verdict = |name: &str| {
        target(&report, name)["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(verdict("SalesSql"), "resave");
    assert_eq!(verdict("SalesSqlPinned"), "pinned");
    assert_eq!(verdict("SalesBlobInline"), "inlineSecret");
    assert_eq!(verdict("SalesSqlParam"), "ambiguous");
    assert_eq!(
        verdict("FinanceSql"),
        "resave",
        "vault URL differing in case and trailing slash still matches"
    );
    assert!(
        report["targets"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["name"] != "ChinaSql")),
        "a same-named vault in Azure China is another vault: not affected"
    );
    assert_eq!(verdict("SpCredential"), "resave");
    assert_eq!(verdict("LakeViaCredential"), "resave");
    let names: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"SalesSqlOtherVault"),
        "the same secret name in another vault is not matched"
    );
    assert!(
        !names.contains(&"OutsideSql"),
        "a factory outside the scope is not a target"
    );
    assert!(!names.contains(&"Unrelated1"));

    // Every factory and linked service was found across pages (page size 2).
    assert_eq!(report["summary"]["factoriesScanned"], 5);
    // adf-sales 13, adf-finance-git 2, adf-empty-2 1, adf-china 2 (adf-empty-1 has none).
    assert_eq!(report["summary"]["linkedServicesScanned"], 18);
    assert!(
        target(&report, "FinanceSql")["notes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("gitMode"))
    );
    assert_eq!(target(&report, "SpCredential")["kind"], "credential");
    assert_eq!(
        target(&report, "SpCredential")["usedBy"],
        serde_json::json!(["LakeViaCredential"])
    );

    // Nothing written: no PUT, no test connection, and no secret value read.
    assert_wrote_nothing(&emu);
    // Discovery used LISTs only: no GET of a single linked service.
    assert!(
        !emu.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.to_ascii_lowercase().contains("/linkedservices/"))
    );
    // Nothing outside the scope was even read.
    assert!(!emu.requests().iter().any(|r| r.path.contains(SUB_OUTSIDE)));
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn refresh_resaves_exactly_what_it_read_and_tests_it() {
    let seed = estate();
    let emu = emulator(seed.clone(), 2).await;
    let run = run_command(&emu, "refresh").await;
    let report = run.report();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(report["dryRun"], false);
    assert_eq!(report["complete"], true);
    assert_eq!(
        report["secret"]["version"], "00000000000000000000000000000002",
        "the newest version, from the versions pager"
    );
    assert_eq!(report["secret"]["metadata"], "ok");

    let t = target(&report, "SalesSql");
    assert_eq!(t["resave"]["status"], "ok");
    assert_ne!(t["resave"]["etagBefore"], t["resave"]["etagAfter"]);
    assert_eq!(
        t["test"]["status"], "passed",
        "ADF held a stale secret until the re-save"
    );

    // Every PUT sends back exactly the properties that were read, conditionally.
    let put_names: Vec<String> = puts(&emu)
        .iter()
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    for put in puts(&emu) {
        assert!(put.if_match.is_some(), "PUT {} without If-Match", put.path);
        let name = put.path.rsplit('/').next().unwrap_or_default();
        let seeded = find_seeded(&seed, name);
        assert_eq!(
            put.body.as_ref().map(|b| b["properties"].clone()),
            Some(seeded),
            "PUT {name} changed properties"
        );
        assert_eq!(
            put.body
                .as_ref()
                .and_then(|b| b.as_object())
                .map(|o| o.len()),
            Some(1),
            "PUT body is {{properties}} only"
        );
    }
    let mut sorted = put_names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "FinanceSql",
            "LakeViaCredential",
            "OnPremSql",
            "SalesRestApi",
            "SalesSql",
            "SpCredential",
            "VnetSql"
        ]
    );
    for never in ["SalesSqlPinned", "SalesBlobInline", "SalesSqlParam"] {
        assert!(
            !put_names.iter().any(|n| n == never),
            "{never} must never be PUT"
        );
        assert_eq!(target(&report, never)["resave"]["status"], "skipped");
    }
    assert_eq!(emu.counters().masked_writes, 0);
    assert_eq!(emu.counters().secret_value_reads, 0);
    assert_eq!(emu.counters().factory_writes, 0);

    // A failed test carries ADF's message and a diagnosis.
    let rest = target(&report, "SalesRestApi");
    assert_eq!(rest["test"]["status"], "failed");
    assert!(
        rest["test"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("AADSTS7000222")
    );
    assert_eq!(rest["test"]["diagnosis"]["code"], "AADSTS7000222");
    assert_eq!(rest["test"]["diagnosis"]["owner"], "entraAdmin");
    let pinned = target(&report, "SalesSqlPinned");
    assert_eq!(
        pinned["test"]["status"], "failed",
        "pinned targets are still tested"
    );
    assert_eq!(pinned["diagnosis"]["code"], "pinnedVersion");

    // An offline self-hosted IR is a finding; the test is not attempted through it.
    let onprem = target(&report, "OnPremSql");
    assert!(
        onprem["notes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("selfHostedIntegrationRuntimeOffline"))
    );
    assert_eq!(onprem["test"]["status"], "notTested");
    // Interactive authoring off: not tested, and not a failure of the linked service.
    let vnet = target(&report, "VnetSql");
    assert_eq!(vnet["test"]["status"], "notTested");
    assert!(
        vnet["notes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("interactiveAuthoringDisabled"))
    );

    // The parameterised linked service is tested with its parameter defaults supplied.
    let param_test = emu
        .requests()
        .into_iter()
        .find(|r| {
            r.path.to_ascii_lowercase().ends_with("/testconnectivity")
                && r.body
                    .as_ref()
                    .is_some_and(|b| b["linkedService"]["name"] == "SalesSqlParam")
        })
        .expect("SalesSqlParam was tested");
    assert_eq!(
        param_test.body.unwrap()["parameters"]["secretName"],
        "sql-password"
    );
    assert_eq!(target(&report, "SalesSqlParam")["test"]["status"], "passed");

    assert_eq!(report["summary"]["resaved"], 7);
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);
}

#[tokio::test]
async fn a_second_refresh_is_harmless() {
    let emu = emulator(estate(), 50).await;
    let first = run_command(&emu, "refresh").await.report();
    let second = run_command(&emu, "refresh").await.report();
    assert_eq!(first["summary"]["resaved"], second["summary"]["resaved"]);
    assert_eq!(target(&second, "SalesSql")["test"]["status"], "passed");
    assert_eq!(emu.counters().masked_writes, 0);
}

#[tokio::test]
async fn a_factory_scope_reads_only_that_factory() {
    let emu = emulator(estate(), 50).await;
    let scope = factory_id("rg-cn", "adf-china");
    let mut cmd = command(&emu, &scope);
    cmd.args([
        "refresh",
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    let run = exec(cmd).await;
    let report = run.report();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["summary"]["factoriesScanned"], 1);
    // Its Key Vault reference names `contoso-kv` in Azure China: another vault than the public one rotated.
    assert_eq!(report["targets"].as_array().map(Vec::len), Some(0));
    for r in emu.requests().iter().filter(|r| r.host_kind == "arm") {
        assert!(
            r.path
                .to_ascii_lowercase()
                .starts_with(&scope.to_ascii_lowercase()),
            "read outside the scope: {}",
            r.path
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_error_with_exit_code_1() {
    let emu = emulator(estate(), 50).await;
    let mut cmd = command(&emu, "/subscriptions/../etc");
    cmd.args(["plan", "--vault", "contoso-kv", "--secret", "sql-password"]);
    let run = exec(cmd).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is not a scope"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let mut cmd = command(&emu, "");
    cmd.args(["plan", "--vault", "contoso-kv", "--secret", "sql-password"]);
    let run = exec(cmd).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no scope is configured"),
        "{}",
        run.stderr
    );
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn an_arm_outage_is_reported_as_incomplete_not_as_success() {
    let emu = emulator(estate(), 50).await;
    emu.set_faults(adf_emulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let mut cmd = cli(
        &emu,
        &[
            "refresh",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
        ],
    );
    cmd.args(["--budget-seconds", "5"]);
    let run = exec(cmd).await;
    let report = run.report();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(report["complete"], false);
    assert_eq!(report["errors"][0]["transient"], true);
    assert!(puts(&emu).is_empty());
}

#[tokio::test]
async fn text_output_reads_like_a_plan() {
    let emu = emulator(estate(), 50).await;
    let mut cmd = command(&emu, &scope());
    cmd.args([
        "plan",
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "text",
    ]);
    let run = exec(cmd).await;
    assert!(
        run.stdout.contains("adf-sales/SalesSqlPinned"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("pinned"));
    assert!(run.stdout.contains("Needs attention"));
    assert!(!run.stdout.contains("\x1b["), "no colour when piped");
}

fn find_seeded(seed: &Value, name: &str) -> Value {
    for sub in seed["subscriptions"].as_array().into_iter().flatten() {
        for rg in sub["resourceGroups"].as_array().into_iter().flatten() {
            for f in rg["factories"].as_array().into_iter().flatten() {
                for r in f["linkedServices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(f["credentials"].as_array().into_iter().flatten())
                {
                    if r["name"] == name {
                        return r["properties"].clone();
                    }
                }
            }
        }
    }
    panic!("{name} is not in the seed")
}

#[tokio::test]
async fn a_disabled_new_version_is_a_finding_and_nothing_is_resaved() {
    let mut seed = estate();
    seed["vaults"][0]["secrets"][0]["versions"][1]["enabled"] = serde_json::json!(false);
    let emu = emulator(seed, 50).await;
    let run = run_command(&emu, "refresh").await;
    let report = run.report();
    assert_eq!(run.code, 2);
    assert_eq!(report["secret"]["enabled"], false);
    assert_eq!(report["findings"][0]["code"], "secretVersionDisabled");
    let t = target(&report, "SalesSql");
    assert_eq!(t["resave"]["status"], "skipped");
    assert!(
        t["resave"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("disabled")
    );
    assert!(
        puts(&emu).is_empty(),
        "a re-save cannot help a disabled version"
    );
}

#[tokio::test]
async fn without_access_to_the_vault_the_refresh_carries_on() {
    let mut seed = estate();
    seed["vaults"][0]["forbidden"] = serde_json::json!(true);
    let emu = emulator(seed, 50).await;
    let run = run_command(&emu, "refresh").await;
    let report = run.report();
    assert_eq!(report["complete"], true);
    assert_eq!(report["secret"]["metadata"], "forbidden");
    assert!(report["findings"].to_string().contains("Key Vault Reader"));
    assert_eq!(report["summary"]["resaved"], 7);
}

/// Runs the command as the emulator's app registration, with the given client secret.
fn as_app_registration(
    cmd: &mut std::process::Command,
    emu: &adf_emulator::Emulator,
    secret: &str,
) {
    cmd.env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .env("ADF_REFRESH_CREDENTIAL", "client-secret")
        .env("AZURE_TENANT_ID", emu.tenant_id())
        .env("AZURE_CLIENT_ID", emu.client_id())
        .env("AZURE_CLIENT_SECRET", secret)
        .env("AZURE_AUTHORITY_HOST", emu.authority_host());
}

#[tokio::test]
async fn a_client_secret_identity_works_and_its_secret_never_prints() {
    let emu = emulator(estate(), 50).await;
    let mut cmd = cli(
        &emu,
        &["plan", "--vault", "contoso-kv", "--secret", "sql-password"],
    );
    as_app_registration(&mut cmd, &emu, &emu.client_secret());
    let run = exec(cmd).await;
    let report = run.report();
    assert_eq!(report["complete"], true, "{}", run.stderr);
    assert_eq!(report["summary"]["factoriesScanned"], 5);
    assert!(
        emu.requests().iter().any(|r| r.host_kind == "entra"),
        "tokens came from the Entra endpoint"
    );
    assert!(!emu.requests().iter().any(|r| r.host_kind == "msi"));
    assert_no_secrets(&emu, &run.stdout);
    assert_no_secrets(&emu, &run.stderr);

    // A wrong client secret: the error names the credential and its endpoint, never the secret.
    let mut cmd = cli(
        &emu,
        &[
            "plan",
            "--vault",
            "contoso-kv",
            "--secret",
            "sql-password",
            "--budget-seconds",
            "3",
        ],
    );
    as_app_registration(&mut cmd, &emu, "FAKE-TEST-ONLY-wrong-client-secret");
    let run = exec(cmd).await;
    assert_eq!(run.code, 1);
    let error = run.report()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("client-secret") && error.contains("/oauth2/v2.0/token"),
        "{error}"
    );
    assert!(
        !run.stdout.contains("FAKE-TEST-ONLY-wrong-client-secret")
            && !run.stderr.contains("FAKE-TEST-ONLY-wrong-client-secret")
    );
}
