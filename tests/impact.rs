//! The real binary against the emulator: what a broken linked service stops, and when it next runs.

mod common;
#[path = "support/report_fixture.rs"]
mod fixture;

use common::*;
use serde_json::{Value, json};

fn reference(kind: &str, name: &str) -> Value {
    json!({"referenceName": name, "type": kind})
}

fn schedule(name: &str, state: &str, pipeline: &str, recurrence: Value) -> Value {
    json!({"name": name, "properties": {"type": "ScheduleTrigger", "runtimeState": state,
        "pipelines": [{"pipelineReference": reference("PipelineReference", pipeline), "parameters": {}}],
        "typeProperties": {"recurrence": recurrence}}})
}

/// `adf-orders`: `OrdersSql` fails its test after the re-save (a wrong password in the vault), and is used
/// directly, through a dataset, through a data flow source and through Execute Pipeline (with a cycle).
/// `adf-hr`: `HrSql` is fixed by the re-save; it has pipelines and triggers too.
fn seed() -> Value {
    let mut seed = estate();
    let password = || kv_ref("KeyVault", json!("sql-password"));
    let orders_sql = json!({"name": "OrdersSql", "properties": sql("x", password())["properties"],
        "test": {"outcome": "failure", "message": "Cannot connect to SQL Database. Login failed for user 'etl'."}});
    let hr_sql = json!({"name": "HrSql", "properties": sql("x", password())["properties"],
        "test": {"outcome": "failUntilResaved", "message": "Login failed for user 'etl'."}});
    let orders = json!({
        "name": "adf-orders", "location": "westeurope",
        "linkedServices": [kv_ls("KeyVault", "https://contoso-kv.vault.azure.net/"), orders_sql,
            json!({"name": "Lake", "properties": {"type": "AzureBlobFS", "typeProperties": {"url": "https://lake.dfs.core.windows.net/"}}})],
        "datasets": [
            {"name": "OrdersTable", "properties": {"type": "AzureSqlTable", "linkedServiceName": reference("LinkedServiceReference", "OrdersSql")}},
            {"name": "LakeFiles", "properties": {"type": "Parquet", "linkedServiceName": reference("LinkedServiceReference", "Lake")}}
        ],
        "dataflows": [
            {"name": "EnrichOrders", "properties": {"type": "MappingDataFlow", "typeProperties": {
                "sources": [{"name": "orders", "dataset": reference("DatasetReference", "OrdersTable")}],
                "sinks": [{"name": "lake", "dataset": reference("DatasetReference", "LakeFiles")}]}}}
        ],
        "pipelines": [
            {"name": "PurgeOrders", "properties": {"activities": [
                {"name": "Purge", "type": "Script", "linkedServiceName": reference("LinkedServiceReference", "OrdersSql"),
                 "typeProperties": {"scripts": [{"type": "NonQuery", "text": "DELETE FROM staging.orders"}]}}]}},
            {"name": "CopyOrders", "properties": {"activities": [
                {"name": "Copy", "type": "Copy", "inputs": [reference("DatasetReference", "OrdersTable")],
                 "outputs": [reference("DatasetReference", "LakeFiles")],
                 "typeProperties": {"source": {"type": "AzureSqlSource"}, "sink": {"type": "ParquetSink"}}}]}},
            {"name": "Enrich", "properties": {"activities": [
                {"name": "Flow", "type": "ExecuteDataFlow", "typeProperties": {"dataFlow": reference("DataFlowReference", "EnrichOrders")}}]}},
            {"name": "Nightly", "properties": {"activities": [
                {"name": "Copy", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "CopyOrders"), "waitOnCompletion": true}},
                {"name": "Retry", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "RetryLoop")}}]}},
            {"name": "RetryLoop", "properties": {"activities": [
                {"name": "Again", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "Nightly")}}]}},
            {"name": "LakeOnly", "properties": {"activities": [
                {"name": "Look", "type": "Lookup", "typeProperties": {"dataset": reference("DatasetReference", "LakeFiles")}}]}}
        ],
        "triggers": [
            // Every minute from the past: the soonest run, whenever the test runs.
            schedule("every_minute", "Started", "PurgeOrders",
                json!({"frequency": "Minute", "interval": 1, "startTime": "2024-01-01T00:00:00Z", "timeZone": "UTC"})),
            schedule("paused", "Stopped", "PurgeOrders",
                json!({"frequency": "Minute", "interval": 1, "startTime": "2024-01-01T00:00:00Z", "timeZone": "UTC"})),
            // Started in winter time on 1 March 2099; the 31st is after the change to summer time in Berlin.
            schedule("month_end_berlin", "Started", "Nightly",
                json!({"frequency": "Month", "interval": 1, "startTime": "2099-03-01T06:00:00", "timeZone": "W. Europe Standard Time",
                       "schedule": {"monthDays": [31], "hours": [6], "minutes": [0]}})),
            schedule("last_day", "Started", "CopyOrders",
                json!({"frequency": "Month", "interval": 1, "startTime": "2099-02-01T00:00:00Z", "timeZone": "UTC",
                       "schedule": {"monthDays": [-1], "hours": [23], "minutes": [0]}})),
            // Started in summer time on Thursday 29 October 2099; the first Monday is after the change back.
            schedule("monday_pacific", "Started", "Enrich",
                json!({"frequency": "Week", "interval": 1, "startTime": "2099-10-29T00:00:00", "timeZone": "Pacific Standard Time",
                       "schedule": {"weekDays": ["Monday"], "hours": [9], "minutes": [0]}})),
            {"name": "hourly_window", "properties": {"type": "TumblingWindowTrigger", "runtimeState": "Started",
                "pipeline": {"pipelineReference": reference("PipelineReference", "CopyOrders"), "parameters": {}},
                "typeProperties": {"frequency": "Hour", "interval": 1, "startTime": "2099-01-01T00:00:00Z", "delay": "00:15:00", "maxConcurrency": 1}}},
            {"name": "on_drop", "properties": {"type": "BlobEventsTrigger", "runtimeState": "Started",
                "pipelines": [{"pipelineReference": reference("PipelineReference", "Enrich"), "parameters": {}}],
                "typeProperties": {"blobPathBeginsWith": "/landing/blobs/", "events": ["Microsoft.Storage.BlobCreated"],
                    "scope": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/landing"}}},
            schedule("lake_only", "Started", "LakeOnly",
                json!({"frequency": "Hour", "interval": 1, "startTime": "2024-01-01T00:00:00Z"}))
        ]
    });
    let hr = json!({
        "name": "adf-hr", "location": "westeurope",
        "linkedServices": [kv_ls("KeyVault", "https://contoso-kv.vault.azure.net/"), hr_sql],
        "pipelines": [{"name": "SyncHr", "properties": {"activities": [
            {"name": "Sync", "type": "Script", "linkedServiceName": reference("LinkedServiceReference", "HrSql")}]}}],
        "triggers": [schedule("hr_daily", "Started", "SyncHr",
            json!({"frequency": "Day", "interval": 1, "startTime": "2024-01-01T05:00:00Z"}))]
    });
    let factories = seed["subscriptions"][0]["resourceGroups"][0]["factories"]
        .as_array_mut()
        .expect("the estate has factories");
    factories.push(orders);
    factories.push(hr);
    seed
}

const AUTHORING: [&str; 4] = ["/datasets", "/pipelines", "/dataflows", "/triggers"];

/// The authoring-collection requests (every page) made for one factory.
fn authoring_reads(emu: &adf_emulator::Emulator, factory: &str) -> Vec<String> {
    let prefix = format!("{}/", factory_id(RG, factory)).to_ascii_lowercase();
    emu.requests()
        .into_iter()
        .filter(|r| {
            let path = r.path.to_ascii_lowercase();
            path.starts_with(&prefix) && AUTHORING.iter().any(|c| path.ends_with(c))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn refresh_in(emu: &adf_emulator::Emulator, scope: &str) -> Run {
    let mut cmd = command(emu, scope);
    cmd.args([
        "refresh",
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    exec(cmd).await
}

fn names(values: &Value) -> Vec<&str> {
    values
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_failed_target_reports_the_pipelines_it_stops_and_their_next_runs() {
    let emu = emulator(seed(), 2).await;
    let before = jiff::Timestamp::now();
    let run = refresh_in(&emu, &factory_id(RG, "adf-orders")).await;
    let after = jiff::Timestamp::now();
    let report = run.report();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(report["complete"], true);

    let impact = &target(&report, "OrdersSql")["impact"];
    assert_eq!(
        names(&impact["pipelines"]),
        [
            "CopyOrders",
            "Enrich",
            "Nightly",
            "PurgeOrders",
            "RetryLoop"
        ],
        "direct, through a dataset, through a data flow source, and through Execute Pipeline despite the cycle"
    );
    assert_eq!(names(&impact["datasets"]), ["OrdersTable"]);
    assert_eq!(names(&impact["dataFlows"]), ["EnrichOrders"]);

    let trigger = |name: &str| -> &Value {
        impact["triggers"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no trigger {name} in {}", impact["triggers"]))
    };
    let next_run = |name: &str| trigger(name)["nextRun"].as_str().map(str::to_string);
    assert_eq!(
        next_run("month_end_berlin").as_deref(),
        Some("2099-03-31T04:00:00Z"),
        "06:00 CEST after the change"
    );
    assert_eq!(
        next_run("last_day").as_deref(),
        Some("2099-02-28T23:00:00Z")
    );
    assert_eq!(
        next_run("monday_pacific").as_deref(),
        Some("2099-11-02T17:00:00Z"),
        "09:00 PST after the change"
    );
    assert_eq!(
        next_run("hourly_window").as_deref(),
        Some("2099-01-01T01:15:00Z")
    );
    assert_eq!(trigger("hourly_window")["type"], "TumblingWindowTrigger");
    assert_eq!(next_run("on_drop"), None);
    assert!(
        trigger("on_drop")["note"]
            .as_str()
            .is_some_and(|n| n.contains("event"))
    );
    assert_eq!(
        (trigger("paused")["state"].as_str(), next_run("paused")),
        (Some("Stopped"), None)
    );
    assert!(
        impact["triggers"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["name"] != "lake_only")),
        "a trigger of an unaffected pipeline is not listed"
    );

    // The soonest started trigger is the every-minute one.
    let soonest: jiff::Timestamp = impact["nextRun"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a next run");
    assert_eq!(
        next_run("every_minute"),
        impact["nextRun"].as_str().map(str::to_string)
    );
    assert_eq!(
        impact["triggers"][0]["name"], "every_minute",
        "soonest first"
    );
    assert!(
        soonest
            >= before
                .checked_sub(jiff::SignedDuration::from_secs(60))
                .expect("in range")
    );
    assert!(
        soonest
            <= after
                .checked_add(jiff::SignedDuration::from_secs(60))
                .expect("in range")
    );

    // One paged LIST of each collection (page size 2: 6 pipelines in 3 pages, 8 triggers in 4), nothing else.
    let reads = authoring_reads(&emu, "adf-orders");
    assert!(reads.iter().all(|r| r.starts_with("GET ")));
    for (collection, pages) in [
        ("/datasets", 1),
        ("/pipelines", 3),
        ("/dataflows", 1),
        ("/triggers", 4),
    ] {
        assert_eq!(
            reads
                .iter()
                .filter(|r| r.to_ascii_lowercase().ends_with(collection))
                .count(),
            pages,
            "{collection}: {reads:?}"
        );
    }
    assert!(
        emu.requests().iter().all(|r| r.host_kind != "arm"
            || r.path
                .to_ascii_lowercase()
                .starts_with(&factory_id(RG, "adf-orders").to_ascii_lowercase())),
        "nothing outside the scope is read"
    );
    assert_no_secrets(&emu, &run.stdout);
}

#[tokio::test]
async fn a_factory_where_all_is_well_costs_no_extra_request() {
    let emu = emulator(seed(), 2).await;
    let run = refresh_in(&emu, &factory_id(RG, "adf-hr")).await;
    let report = run.report();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(target(&report, "HrSql")["test"]["status"], "passed");
    assert!(target(&report, "HrSql").get("impact").is_none());
    assert!(
        authoring_reads(&emu, "adf-hr").is_empty(),
        "{:?}",
        authoring_reads(&emu, "adf-hr")
    );
}

#[tokio::test]
async fn only_factories_with_a_target_needing_attention_are_read() {
    let emu = emulator(seed(), 50).await;
    let run = refresh_in(&emu, &format!("/subscriptions/{SUB}")).await;
    let report = run.report();
    assert_eq!(report["complete"], true, "{}", run.stderr);
    assert!(authoring_reads(&emu, "adf-hr").is_empty());
    // The Git-mode factory's re-save passed its test, but the next publish from Git overwrites the live
    // factory: it needs attention, so it gets a blast radius like every other target that does.
    assert_eq!(authoring_reads(&emu, "adf-finance-git").len(), 4);
    let finance = target(&report, "FinanceSql");
    assert_eq!(finance["test"]["status"], "passed");
    assert!(finance["impact"].is_object(), "{finance}");
    assert_eq!(authoring_reads(&emu, "adf-orders").len(), 4);
    // adf-sales has targets that need attention (pinned, inline, ambiguous, failing): read once, though empty.
    assert_eq!(authoring_reads(&emu, "adf-sales").len(), 4);
    let pinned = &target(&report, "SalesSqlPinned")["impact"];
    assert_eq!(pinned["pipelines"], json!([]));
    assert_eq!(pinned["nextRun"], Value::Null);
    assert!(
        !emu.requests().iter().any(|r| r.path.contains(SUB_OUTSIDE)),
        "nothing outside the scope is read"
    );
}

#[tokio::test]
async fn a_plan_reads_impact_only_for_targets_that_would_need_attention() {
    let emu = emulator(seed(), 50).await;
    let mut cmd = command(&emu, &factory_id(RG, "adf-hr"));
    cmd.args([
        "plan",
        "--vault",
        "contoso-kv",
        "--secret",
        "sql-password",
        "--output",
        "json",
    ]);
    let run = exec(cmd).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(authoring_reads(&emu, "adf-hr").is_empty());
}

#[test]
fn notifications_lead_with_the_impact_and_order_targets_by_the_soonest_next_run() {
    let report = fixture::realistic_report();
    let order = |texts: Vec<String>| -> Vec<&'static str> {
        let all = [
            "ls_fileshare_landing",
            "ls_rest_partner_api",
            "ls_oracle_erp",
            "ls_sftp_vendor",
        ];
        let mut found: Vec<(usize, &'static str)> = all
            .iter()
            .filter_map(|name| {
                texts
                    .iter()
                    .position(|t| t.contains(name))
                    .map(|i| (i, *name))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    };
    let expected = [
        "ls_fileshare_landing",
        "ls_rest_partner_api",
        "ls_oracle_erp",
        "ls_sftp_vendor",
    ];

    let slack = adf_secret_refresh::notify::slack_message(
        &adf_secret_refresh::notify::Notice::of_report(&report),
    );
    let sections: Vec<String> = slack["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(order(sections.clone()), expected, "soonest next run first");
    assert!(sections.iter().any(|s| s.contains(
        "breaks 1 pipeline; next run 06:30 UTC (in 27 min, trigger `landing_half_hourly`)"
    )));

    let teams = adf_secret_refresh::notify::teams_message(
        &adf_secret_refresh::notify::Notice::of_report(&report),
    );
    let containers: Vec<String> = teams["attachments"][0]["content"]["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "Container")
        .map(|b| b.to_string())
        .collect();
    assert_eq!(order(containers.clone()), expected);
    assert!(containers[1].contains(
        "breaks 4 pipelines; next run 09:15 UTC (in 3 h 12 min, trigger `nightly_load`)"
    ));

    let webhook = adf_secret_refresh::notify::webhook_body(
        &adf_secret_refresh::notify::Notice::of_report(&report),
    );
    let names: Vec<String> = webhook["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].to_string())
        .collect();
    assert_eq!(order(names)[..2], expected[..2]);
    assert_eq!(
        webhook["targets"][0]["impact"]["nextRun"],
        "2024-05-14T06:30:00Z"
    );
}

#[tokio::test]
async fn unreadable_triggers_leave_impact_out_and_say_why_without_failing_the_rotation() {
    let mut seed = seed();
    let factories = seed["subscriptions"][0]["resourceGroups"][0]["factories"]
        .as_array_mut()
        .expect("factories");
    let orders = factories
        .iter_mut()
        .find(|f| f["name"] == "adf-orders")
        .expect("adf-orders");
    orders["forbiddenCollections"] = json!(["triggers"]);
    let emu = emulator(seed, 50).await;
    let run = refresh_in(&emu, &factory_id(RG, "adf-orders")).await;
    let report = run.report();
    assert_eq!(
        run.code, 2,
        "the rotation completed; the failed test needs a person\n{}",
        run.stderr
    );
    assert_eq!(report["complete"], true);
    assert_eq!(report["errors"], json!([]));
    let orders_sql = target(&report, "OrdersSql");
    assert!(orders_sql.get("impact").is_none());
    assert!(names(&orders_sql["notes"]).contains(&"impactNotRead"));
    let finding = report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "impactNotRead"))
        .expect("an impactNotRead finding");
    assert_eq!(finding["severity"], "warning");
    assert_eq!(finding["subject"], factory_id(RG, "adf-orders").as_str());
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("triggers/read"))
    );
}
