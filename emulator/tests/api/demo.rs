//! The demo estate behaves as `seeds/README.md` says: each case's test-connection outcome before and
//! after a re-save, and paging with page size 2.

use adf_emulator::{Options, demo_seed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Harness;

const SUB_A: &str = "1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f";
const SUB_B: &str = "9d4e6f8a-0b1c-4d2e-8f3a-5b6c7d8e9f01";

/// What a test connection answers.
#[derive(Debug, PartialEq)]
enum Outcome {
    Pass,
    /// `succeeded: false` with this message (expected: containing this).
    Fail(String),
    /// HTTP 400 with this message (expected: containing this).
    Rejected(String),
}
use Outcome::Pass;

fn fail(text: &str) -> Outcome {
    Outcome::Fail(text.to_owned())
}

fn rejected(text: &str) -> Outcome {
    Outcome::Rejected(text.to_owned())
}

fn factory(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DataFactory/factories/{name}"
    )
}

async fn test_connection(h: &Harness, factory: &str, name: &str) -> Outcome {
    let resource = h
        .arm_get(&format!("{factory}/linkedservices/{name}"))
        .await
        .body;
    let body = json!({"linkedService": {"name": name, "properties": resource["properties"]}});
    let reply = h
        .arm(
            Method::POST,
            &format!("{factory}/testConnectivity"),
            Some(&body),
            &[],
        )
        .await;
    match reply.status {
        StatusCode::BAD_REQUEST => {
            rejected(reply.body["error"]["message"].as_str().unwrap_or_default())
        }
        StatusCode::OK if reply.body["succeeded"] == true => Pass,
        StatusCode::OK => fail(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default(),
        ),
        other => panic!("unexpected {other}: {}", reply.body),
    }
}

fn matches(actual: &Outcome, expected: &Outcome) -> bool {
    match (actual, expected) {
        (Pass, Pass) => true,
        (Outcome::Fail(a), Outcome::Fail(e)) | (Outcome::Rejected(a), Outcome::Rejected(e)) => {
            a.contains(e.as_str())
        }
        _ => false,
    }
}

async fn resave(h: &Harness, path: &str) {
    let read = h.arm_get(path).await.body;
    let etag = read["etag"].as_str().unwrap_or_default().to_owned();
    let reply = h
        .arm(
            Method::PUT,
            path,
            Some(&json!({"properties": read["properties"]})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
}

#[tokio::test]
async fn every_case_behaves_as_documented() {
    let h = Harness::start_with(
        demo_seed(),
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let sales = factory(SUB_A, "rg-data-prod", "adf-sales-prod");
    let finance = factory(SUB_A, "rg-data-prod", "adf-finance-prod");
    let hr = factory(SUB_A, "rg-data-prod", "adf-hr-prod");
    let marketing = factory(SUB_A, "rg-data-git", "adf-marketing-git");
    let platform = factory(SUB_B, "rg-platform-shared", "adf-platform-shared");
    let china = factory(SUB_B, "rg-analytics-cn", "adf-china-reporting");
    let login = "Login failed for user 'etl'.";
    // (factory, linked service, before, what to re-save (None: leave alone), after)
    let cases: Vec<(&str, &str, Outcome, Option<String>, Outcome)> = vec![
        (
            &sales,
            "ls_sql_sales",
            fail(login),
            Some(format!("{sales}/linkedservices/ls_sql_sales")),
            Pass,
        ),
        (
            &sales,
            "ls_sqlserver_legacy",
            fail(login),
            Some(format!("{sales}/linkedservices/ls_sqlserver_legacy")),
            Pass,
        ),
        (
            &sales,
            "ls_sql_pinned",
            fail(login),
            Some(format!("{sales}/linkedservices/ls_sql_pinned")),
            fail(login),
        ),
        (&sales, "ls_sql_inline", Pass, None, Pass),
        (&sales, "ls_sql_other_kv", Pass, None, Pass),
        (
            &sales,
            "ls_snowflake_expr",
            fail("Incorrect username or password"),
            Some(format!("{sales}/linkedservices/ls_snowflake_expr")),
            Pass,
        ),
        (&sales, "ls_blob_archive", Pass, None, Pass),
        (&finance, "ls_sql_ledger_param", Pass, None, Pass),
        (&finance, "ls_sql_budget_kvparam", Pass, None, Pass),
        (
            &finance,
            "ls_adls_finance",
            fail("AADSTS7000215"),
            Some(format!("{finance}/credentials/cred_sp_finance")),
            Pass,
        ),
        (
            &finance,
            "ls_rest_partner",
            fail("AADSTS7000222"),
            Some(format!("{finance}/linkedservices/ls_rest_partner")),
            fail("AADSTS7000222"),
        ),
        (
            &hr,
            "ls_sql_hr",
            Pass,
            Some(format!("{hr}/linkedservices/ls_sql_hr")),
            Pass,
        ),
        (
            &marketing,
            "ls_sql_marketing",
            fail(login),
            Some(format!("{marketing}/linkedservices/ls_sql_marketing")),
            Pass,
        ),
        (
            &platform,
            "ls_sqlserver_onprem",
            fail("offline"),
            Some(format!("{platform}/linkedservices/ls_sqlserver_onprem")),
            fail("offline"),
        ),
        (
            &platform,
            "ls_sqlserver_dmz",
            fail(login),
            Some(format!("{platform}/linkedservices/ls_sqlserver_dmz")),
            Pass,
        ),
        (
            &platform,
            "ls_sql_mvnet",
            rejected("nteractive authoring is disabled"),
            None,
            rejected("nteractive authoring is disabled"),
        ),
        (&platform, "ls_databricks", Pass, None, Pass),
        // Azure China's own contoso-kv: not the rotated vault, so nothing to re-save.
        (&china, "ls_sql_cn", Pass, None, Pass),
    ];
    for (factory, name, before, resave_path, after) in &cases {
        let actual = test_connection(&h, factory, name).await;
        assert!(
            matches(&actual, before),
            "{name} before: {actual:?}, expected {before:?}"
        );
        if let Some(path) = resave_path {
            resave(&h, path).await;
        }
        let actual = test_connection(&h, factory, name).await;
        assert!(
            matches(&actual, after),
            "{name} after: {actual:?}, expected {after:?}"
        );
    }
    let counters = h.emu.counters();
    assert_eq!(
        (counters.masked_writes, counters.secret_value_reads),
        (0, 0)
    );
}

#[tokio::test]
async fn demo_paging_spans_several_pages() {
    let h = Harness::start_with(
        demo_seed(),
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let (factories, pages) = h
        .arm_list(&format!(
            "/subscriptions/{SUB_A}/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!((factories.len(), pages), (4, 2));
    let (factories, pages) = h.arm_list(&format!("/subscriptions/{SUB_A}/resourceGroups/rg-data-prod/providers/Microsoft.DataFactory/factories")).await;
    assert_eq!((factories.len(), pages), (3, 2));
    let (linked_services, pages) = h
        .arm_list(&format!(
            "{}/linkedservices",
            factory(SUB_A, "rg-data-prod", "adf-sales-prod")
        ))
        .await;
    assert_eq!((linked_services.len(), pages), (10, 5));
    let git = h
        .arm_get(&factory(SUB_A, "rg-data-git", "adf-marketing-git"))
        .await
        .body;
    assert_eq!(
        git["properties"]["repoConfiguration"]["type"],
        "FactoryVSTSConfiguration"
    );
    let status = h
        .arm(
            Method::POST,
            &format!(
                "{}/integrationRuntimes/shir-onprem/getStatus",
                factory(SUB_B, "rg-platform-shared", "adf-platform-shared")
            ),
            None,
            &[],
        )
        .await;
    assert_eq!(status.body["properties"]["state"], "Offline");
    let secrets: Vec<Value> = h.emu.state()["vaults"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(secrets.len(), 2);
}

const OLD_SQL: &str = "2f1d6c0b8e4a4f3c9a7b5d1e0c8f6a42";
const NEW_SQL: &str = "7c9e3a5f1b2d4e6a8c0f2b4d6e8a0c13";

fn apps(resource: &str) -> String {
    format!("/subscriptions/{SUB_A}/resourceGroups/rg-apps-prod/providers/{resource}")
}

/// Follows an API Management `refreshSecret` to its end; the final answer.
async fn refresh_named_value(h: &Harness, id: &str) -> crate::Reply {
    let token = h.token(crate::ARM).await;
    let started = h
        .send(
            Method::POST,
            &format!("{id}/refreshSecret?api-version=2024-05-01"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let location = started.header("location").expect("location").to_owned();
    loop {
        let reply = h
            .send(Method::GET, &location, Some(&token), None, &[])
            .await;
        if reply.status != StatusCode::ACCEPTED {
            return reply;
        }
    }
}

#[tokio::test]
async fn the_demo_app_service_and_api_management_consumers_behave_as_documented() {
    let h = Harness::start(demo_seed()).await;
    let token = h.token(crate::ARM).await;
    let get = |path: String| {
        let token = token.clone();
        let h = &h;
        async move {
            let url = if path.contains("api-version=") {
                path
            } else {
                format!("{path}?api-version=2024-11-01")
            };
            h.send(Method::GET, &url, Some(&token), None, &[]).await
        }
    };
    let sites = get(apps("Microsoft.Web/sites")).await.body;
    let kinds: Vec<(&str, &str)> = sites["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("app-contoso-web", "app"),
            ("func-contoso-ingest", "functionapp,linux"),
            ("app-contoso-reports", "app"),
            ("logic-contoso-orders", "functionapp,workflowapp"),
        ]
    );
    let web = apps("Microsoft.Web/sites/app-contoso-web");
    let staging = format!("{web}/slots/staging");
    let func = apps("Microsoft.Web/sites/func-contoso-ingest");
    let reports = apps("Microsoft.Web/sites/app-contoso-reports");
    let logic = apps("Microsoft.Web/sites/logic-contoso-orders");
    let state = |id: &str, kind: &str, name: &str| {
        h.emu
            .site_reference(id, kind, name)
            .unwrap_or_else(|| panic!("{id} {name}"))
    };
    assert_eq!(
        state(&web, "appsettings", "SqlPassword")["version"],
        NEW_SQL
    );
    assert_eq!(
        state(&func, "appsettings", "SqlPassword")["status"],
        "AccessToKeyVaultDenied"
    );
    assert_eq!(
        state(&reports, "appsettings", "SqlPassword")["version"],
        OLD_SQL
    );
    assert_eq!(
        state(&logic, "appsettings", "OrdersDbPassword")["status"],
        "InvalidSyntax"
    );
    let listed = get(format!("{web}/config/configreferences/appsettings"))
        .await
        .body;
    assert_eq!(
        listed["value"].as_array().map(Vec::len),
        Some(1),
        "plain settings are not listed"
    );

    let rotated = h.emu.rotate("contoso-kv", "sql-password").expect("rotates");
    for id in [&web, &staging, &func] {
        let refreshed = h
            .send(
                Method::POST,
                &format!("{id}/config/configreferences/appsettings/refresh?api-version=2022-03-01"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(refreshed.status, StatusCode::OK);
    }
    assert_eq!(
        state(&web, "appsettings", "SqlPassword")["version"],
        rotated.as_str()
    );
    assert_eq!(
        state(&web, "connectionstrings", "Sales")["version"],
        rotated.as_str()
    );
    assert_eq!(
        state(&staging, "appsettings", "SqlPassword")["version"],
        rotated.as_str()
    );
    assert_eq!(
        state(&func, "appsettings", "SqlPassword")["status"],
        "AccessToKeyVaultDenied"
    );
    assert_eq!(
        state(&reports, "appsettings", "SqlPassword")["version"],
        OLD_SQL,
        "pinned"
    );

    let apim = apps("Microsoft.ApiManagement/service/apim-contoso");
    let named = get(format!("{apim}/namedValues?api-version=2024-05-01"))
        .await
        .body;
    assert_eq!(named["count"], 3);
    let done = refresh_named_value(&h, &format!("{apim}/namedValues/sql-password")).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(
        done.body["properties"]["keyVault"]["lastStatus"]["code"],
        "Success"
    );
    let cached = h
        .emu
        .named_value(&format!("{apim}/namedValues/sql-password"))
        .expect("named value");
    assert_eq!(cached["version"], rotated.as_str());
    let pinned = h
        .emu
        .named_value(&format!("{apim}/namedValues/sql-password-pinned"))
        .expect("named value");
    assert_eq!(pinned["version"], OLD_SQL);
    assert_eq!(h.emu.counters().secret_read_attempts, 0);
}
