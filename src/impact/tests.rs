use super::recurrence::{schedule_next_run, tumbling_next_run};
use super::*;
use serde_json::json;

fn at(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

fn next(recurrence: Value, now: &str) -> Option<String> {
    schedule_next_run(&recurrence, at(now))
        .expect("evaluable")
        .map(|t| t.to_string())
}

// ---- schedule recurrences ----

#[test]
fn daily_run_keeps_its_wall_clock_time_across_spring_forward_in_berlin() {
    let daily = json!({"frequency": "Day", "interval": 1, "startTime": "2026-01-01T06:00:00",
                       "timeZone": "W. Europe Standard Time"});
    // 06:00 CET is 05:00 UTC before the change on 29 March 2026 ...
    assert_eq!(
        next(daily.clone(), "2026-03-28T01:00:00Z").as_deref(),
        Some("2026-03-28T05:00:00Z")
    );
    // ... and 06:00 CEST is 04:00 UTC after it.
    assert_eq!(
        next(daily, "2026-03-28T06:00:00Z").as_deref(),
        Some("2026-03-29T04:00:00Z")
    );
}

#[test]
fn daily_run_keeps_its_wall_clock_time_across_fall_back_in_berlin() {
    let daily = json!({"frequency": "Day", "interval": 1, "startTime": "2026-01-01T06:00:00",
                       "timeZone": "W. Europe Standard Time"});
    assert_eq!(
        next(daily, "2026-10-24T23:00:00Z").as_deref(),
        Some("2026-10-25T05:00:00Z")
    );
}

#[test]
fn a_time_skipped_by_spring_forward_runs_after_the_change() {
    let daily = json!({"frequency": "Day", "interval": 1, "startTime": "2026-01-01T02:30:00",
                       "timeZone": "W. Europe Standard Time"});
    // 02:30 does not exist on 29 March 2026 in Berlin; it runs at 03:30 CEST, 01:30 UTC.
    assert_eq!(
        next(daily, "2026-03-28T12:00:00Z").as_deref(),
        Some("2026-03-29T01:30:00Z")
    );
}

#[test]
fn pacific_schedule_hours_follow_daylight_saving() {
    let daily = json!({"frequency": "Day", "interval": 1, "startTime": "2026-01-01T00:00:00",
                       "timeZone": "Pacific Standard Time", "schedule": {"hours": [9], "minutes": [30]}});
    // 09:30 PST on 7 March 2026 is 17:30 UTC; after 8 March it is PDT, so 16:30 UTC.
    assert_eq!(
        next(daily.clone(), "2026-03-07T12:00:00Z").as_deref(),
        Some("2026-03-07T17:30:00Z")
    );
    assert_eq!(
        next(daily.clone(), "2026-03-07T18:00:00Z").as_deref(),
        Some("2026-03-08T16:30:00Z")
    );
    // And back on 1 November 2026.
    assert_eq!(
        next(daily, "2026-10-31T17:00:00Z").as_deref(),
        Some("2026-11-01T17:30:00Z")
    );
}

#[test]
fn hourly_recurrence_steps_exact_hours_through_a_change() {
    let hourly = json!({"frequency": "Hour", "interval": 1, "startTime": "2026-03-29T00:00:00",
                        "timeZone": "W. Europe Standard Time"});
    // Starts at 23:00 UTC on the 28th; steps by 60 minutes whatever the clock does.
    assert_eq!(
        next(hourly, "2026-03-29T01:30:00Z").as_deref(),
        Some("2026-03-29T02:00:00Z")
    );
}

#[test]
fn minute_recurrence_counts_from_its_start() {
    let every_15 = json!({"frequency": "Minute", "interval": 15, "startTime": "2026-11-28T00:05:00Z", "timeZone": "UTC"});
    assert_eq!(
        next(every_15.clone(), "2026-11-28T08:00:00Z").as_deref(),
        Some("2026-11-28T08:05:00Z")
    );
    assert_eq!(
        next(every_15.clone(), "2026-11-28T08:05:00Z").as_deref(),
        Some("2026-11-28T08:05:00Z")
    );
    // Before the start, the first run is the start.
    assert_eq!(
        next(every_15, "2026-11-27T00:00:00Z").as_deref(),
        Some("2026-11-28T00:05:00Z")
    );
}

#[test]
fn hourly_schedule_minutes_run_within_each_hour() {
    let hourly = json!({"frequency": "Hour", "interval": 2, "startTime": "2026-11-28T00:00:00Z",
                        "schedule": {"minutes": [15, 45]}});
    assert_eq!(
        next(hourly.clone(), "2026-11-28T00:20:00Z").as_deref(),
        Some("2026-11-28T00:45:00Z")
    );
    assert_eq!(
        next(hourly, "2026-11-28T00:50:00Z").as_deref(),
        Some("2026-11-28T02:15:00Z")
    );
}

#[test]
fn several_hours_and_minutes_in_a_day() {
    let twice = json!({"frequency": "Day", "interval": 1, "startTime": "2026-11-01T00:00:00Z",
                       "schedule": {"hours": [18, 6], "minutes": [30, 0]}});
    assert_eq!(
        next(twice.clone(), "2026-11-28T06:10:00Z").as_deref(),
        Some("2026-11-28T06:30:00Z")
    );
    assert_eq!(
        next(twice, "2026-11-28T19:00:00Z").as_deref(),
        Some("2026-11-29T06:00:00Z")
    );
}

#[test]
fn every_third_day_counts_from_the_start_date() {
    let every_3 = json!({"frequency": "Day", "interval": 3, "startTime": "2026-11-01T02:00:00Z"});
    // Runs on the 1st, 4th, 7th: not on the 5th or 6th.
    assert_eq!(
        next(every_3, "2026-11-05T00:00:00Z").as_deref(),
        Some("2026-11-07T02:00:00Z")
    );
}

#[test]
fn weekly_on_named_days() {
    let weekdays = json!({"frequency": "Week", "interval": 1, "startTime": "2026-01-01T00:00:00Z",
                          "schedule": {"weekDays": ["Monday", "Friday"], "hours": [7], "minutes": [15]}});
    // Saturday 28 November 2026 → Monday 30 November.
    assert_eq!(
        next(weekdays.clone(), "2026-11-28T10:00:00Z").as_deref(),
        Some("2026-11-30T07:15:00Z")
    );
    // Friday morning → that Friday.
    assert_eq!(
        next(weekdays, "2026-11-27T07:00:00Z").as_deref(),
        Some("2026-11-27T07:15:00Z")
    );
}

#[test]
fn every_other_week_skips_the_week_between() {
    // Sunday 1 November 2026 starts week 0; Mondays of weeks 0, 2, 4 run.
    let fortnightly = json!({"frequency": "Week", "interval": 2, "startTime": "2026-11-01T00:00:00Z",
                             "schedule": {"weekDays": ["Monday"], "hours": [1], "minutes": [0]}});
    assert_eq!(
        next(fortnightly.clone(), "2026-11-01T12:00:00Z").as_deref(),
        Some("2026-11-02T01:00:00Z")
    );
    assert_eq!(
        next(fortnightly, "2026-11-03T00:00:00Z").as_deref(),
        Some("2026-11-16T01:00:00Z")
    );
}

#[test]
fn weekly_without_schedule_runs_on_the_start_weekday() {
    let weekly = json!({"frequency": "Week", "startTime": "2026-11-03T04:00:00Z"});
    assert_eq!(
        next(weekly, "2026-11-28T00:00:00Z").as_deref(),
        Some("2026-12-01T04:00:00Z")
    );
}

#[test]
fn month_day_31_skips_months_without_one() {
    let on_31 = json!({"frequency": "Month", "interval": 1, "startTime": "2026-01-01T00:00:00Z",
                       "schedule": {"monthDays": [31], "hours": [5], "minutes": [0]}});
    // April has no 31st: the next run after 31 March is 31 May.
    assert_eq!(
        next(on_31, "2026-03-31T06:00:00Z").as_deref(),
        Some("2026-05-31T05:00:00Z")
    );
}

#[test]
fn month_day_minus_one_is_the_last_day() {
    let last = json!({"frequency": "Month", "interval": 1, "startTime": "2026-01-01T00:00:00Z",
                      "schedule": {"monthDays": [-1], "hours": [5], "minutes": [0]}});
    assert_eq!(
        next(last.clone(), "2026-02-10T00:00:00Z").as_deref(),
        Some("2026-02-28T05:00:00Z")
    );
    assert_eq!(
        next(last.clone(), "2028-02-10T00:00:00Z").as_deref(),
        Some("2028-02-29T05:00:00Z")
    );
    assert_eq!(
        next(last, "2026-04-30T06:00:00Z").as_deref(),
        Some("2026-05-31T05:00:00Z")
    );
}

#[test]
fn quarterly_counts_months_from_the_start() {
    let quarterly =
        json!({"frequency": "Month", "interval": 3, "startTime": "2026-01-15T08:00:00Z"});
    assert_eq!(
        next(quarterly, "2026-02-01T00:00:00Z").as_deref(),
        Some("2026-04-15T08:00:00Z")
    );
}

#[test]
fn last_friday_of_the_month() {
    let last_friday = json!({"frequency": "Month", "interval": 1, "startTime": "2026-01-01T00:00:00Z",
                             "schedule": {"monthlyOccurrences": [{"day": "Friday", "occurrence": -1}], "hours": [22], "minutes": [0]}});
    assert_eq!(
        next(last_friday, "2026-11-28T00:00:00Z").as_deref(),
        Some("2026-12-25T22:00:00Z")
    );
}

#[test]
fn a_recurrence_past_its_end_has_no_next_run() {
    let ended = json!({"frequency": "Day", "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-06-01T00:00:00Z"});
    assert_eq!(next(ended, "2026-11-28T00:00:00Z"), None);
    let ends_before_next = json!({"frequency": "Day", "startTime": "2026-01-01T03:00:00Z", "endTime": "2026-11-28T01:00:00Z"});
    assert_eq!(next(ends_before_next, "2026-11-28T00:00:00Z"), None);
}

#[test]
fn a_start_in_the_future_is_the_first_run() {
    let later = json!({"frequency": "Day", "startTime": "2027-02-01T10:00:00", "timeZone": "Tokyo Standard Time"});
    assert_eq!(
        next(later, "2026-11-28T00:00:00Z").as_deref(),
        Some("2027-02-01T01:00:00Z")
    );
}

#[test]
fn what_cannot_be_evaluated_is_an_error_not_a_guess() {
    let now = at("2026-11-28T00:00:00Z");
    for (recurrence, why) in [
        (
            json!({"frequency": "Day", "startTime": "2026-01-01T00:00:00", "timeZone": "Mars Standard Time"}),
            "Mars",
        ),
        (
            json!({"frequency": "Year", "startTime": "2026-01-01T00:00:00Z"}),
            "Year",
        ),
        (json!({"frequency": "Day"}), "startTime"),
        (
            json!({"frequency": "Day", "startTime": "yesterday"}),
            "yesterday",
        ),
        (
            json!({"frequency": "Day", "interval": 0, "startTime": "2026-01-01T00:00:00Z"}),
            "interval",
        ),
        (
            json!({"frequency": "Day", "startTime": "2026-01-01T00:00:00Z", "schedule": {"hours": [25]}}),
            "hours",
        ),
        (
            json!({"frequency": "Day", "startTime": "2026-01-01T00:00:00Z", "schedule": {"weekDays": ["Monday"]}}),
            "daily",
        ),
        (
            json!({"frequency": "Month", "startTime": "2026-01-01T00:00:00Z", "schedule": {"monthDays": [30]}, "interval": 12, "endTime": null}),
            "",
        ),
    ] {
        match schedule_next_run(&recurrence, now) {
            Err(message) => assert!(message.contains(why), "{message} should mention {why}"),
            // Only the last one evaluates: the 30th of every January exists.
            Ok(next) => assert_eq!(
                next.map(|t| t.to_string()).as_deref(),
                Some("2027-01-30T00:00:00Z")
            ),
        }
    }
    let never = json!({"frequency": "Month", "interval": 12, "startTime": "2026-02-01T00:00:00Z", "schedule": {"monthDays": [30]}});
    assert!(schedule_next_run(&never, now).is_err_and(|e| e.contains("years")));
}

// ---- tumbling windows ----

#[test]
fn tumbling_window_runs_when_the_window_ends() {
    let hourly = json!({"frequency": "Hour", "interval": 1, "startTime": "2026-11-28T00:00:00Z"});
    let now = at("2026-11-28T08:20:00Z");
    assert_eq!(
        tumbling_next_run(&hourly, now)
            .unwrap()
            .unwrap()
            .to_string(),
        "2026-11-28T09:00:00Z"
    );
    let delayed = json!({"frequency": "Hour", "interval": 1, "startTime": "2026-11-28T00:00:00Z", "delay": "00:10:00"});
    assert_eq!(
        tumbling_next_run(&delayed, now)
            .unwrap()
            .unwrap()
            .to_string(),
        "2026-11-28T09:10:00Z"
    );
    let delayed_ahead = json!({"frequency": "Minute", "interval": 15, "startTime": "2026-11-28T00:00:00Z", "delay": "00:10:00"});
    // The window 08:00–08:15 runs at 08:25.
    assert_eq!(
        tumbling_next_run(&delayed_ahead, now)
            .unwrap()
            .unwrap()
            .to_string(),
        "2026-11-28T08:25:00Z"
    );
}

#[test]
fn monthly_tumbling_window_and_end() {
    let monthly = json!({"frequency": "Month", "interval": 1, "startTime": "2026-01-31T00:00:00Z"});
    let now = at("2026-11-28T00:00:00Z");
    assert_eq!(
        tumbling_next_run(&monthly, now)
            .unwrap()
            .unwrap()
            .to_string(),
        "2026-11-30T00:00:00Z"
    );
    let old_monthly =
        json!({"frequency": "Month", "interval": 1, "startTime": "2012-05-01T00:00:00Z"});
    assert_eq!(
        tumbling_next_run(&old_monthly, now)
            .unwrap()
            .unwrap()
            .to_string(),
        "2026-12-01T00:00:00Z"
    );
    let ended = json!({"frequency": "Hour", "interval": 1, "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-02-01T00:00:00Z"});
    assert_eq!(tumbling_next_run(&ended, now).unwrap(), None);
    let bad_delay =
        json!({"frequency": "Hour", "startTime": "2026-01-01T00:00:00Z", "delay": "soon"});
    assert!(tumbling_next_run(&bad_delay, now).is_err());
}

// ---- dependents and the impact ----

fn reference(kind: &str, name: &str) -> Value {
    json!({"referenceName": name, "type": kind})
}

fn factory() -> Authoring {
    Authoring {
        datasets: vec![
            json!({"name": "ds_sql", "properties": {"type": "AzureSqlTable", "linkedServiceName": reference("LinkedServiceReference", "ls_sql")}}),
            json!({"name": "ds_blob", "properties": {"type": "DelimitedText", "linkedServiceName": reference("LinkedServiceReference", "ls_blob")}}),
        ],
        data_flows: vec![
            json!({"name": "df_currency", "properties": {"type": "MappingDataFlow", "typeProperties": {
                "sources": [{"name": "src", "dataset": reference("DatasetReference", "DS_SQL")}],
                "sinks": [{"name": "out", "dataset": reference("DatasetReference", "ds_blob")}]}}}),
            json!({"name": "df_uses_flowlet", "properties": {"type": "MappingDataFlow", "typeProperties": {
                "transformations": [{"name": "f", "flowlet": reference("DataFlowReference", "df_currency")}]}}}),
        ],
        pipelines: vec![
            json!({"name": "p_script", "properties": {"activities": [
                {"name": "run", "type": "Script", "linkedServiceName": reference("LinkedServiceReference", "ls_sql")}]}}),
            json!({"name": "p_copy", "properties": {"activities": [
                {"name": "each", "type": "ForEach", "typeProperties": {"activities": [
                    {"name": "copy", "type": "Copy", "inputs": [reference("DatasetReference", "ds_sql")], "outputs": [reference("DatasetReference", "ds_blob")]}]}}]}}),
            json!({"name": "p_flow", "properties": {"activities": [
                {"name": "flow", "type": "ExecuteDataFlow", "typeProperties": {"dataFlow": reference("DataFlowReference", "df_uses_flowlet")}}]}}),
            json!({"name": "p_parent", "properties": {"activities": [
                {"name": "call", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "p_copy")}}]}}),
            json!({"name": "p_loop_a", "properties": {"activities": [
                {"name": "call", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "p_parent")}},
                {"name": "again", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "p_loop_b")}}]}}),
            json!({"name": "p_loop_b", "properties": {"activities": [
                {"name": "call", "type": "ExecutePipeline", "typeProperties": {"pipeline": reference("PipelineReference", "p_loop_a")}}]}}),
            json!({"name": "p_blob_only", "properties": {"activities": [
                {"name": "web", "type": "WebActivity", "typeProperties": {"datasets": [reference("DatasetReference", "ds_blob")]}}]}}),
        ],
        triggers: vec![
            json!({"name": "nightly_load", "properties": {"type": "ScheduleTrigger", "runtimeState": "Started",
                "pipelines": [{"pipelineReference": reference("PipelineReference", "p_loop_a")}],
                "typeProperties": {"recurrence": {"frequency": "Day", "interval": 1, "startTime": "2026-01-01T02:00:00Z", "timeZone": "UTC"}}}}),
            json!({"name": "hourly_script", "properties": {"type": "ScheduleTrigger", "runtimeState": "Stopped",
                "pipelines": [{"pipelineReference": reference("PipelineReference", "p_script")}],
                "typeProperties": {"recurrence": {"frequency": "Hour", "interval": 1, "startTime": "2026-01-01T00:00:00Z"}}}}),
            json!({"name": "on_upload", "properties": {"type": "BlobEventsTrigger", "runtimeState": "Started",
                "pipelines": [{"pipelineReference": reference("PipelineReference", "p_flow")}],
                "typeProperties": {"events": ["Microsoft.Storage.BlobCreated"], "scope": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"}}}),
            json!({"name": "windows", "properties": {"type": "TumblingWindowTrigger", "runtimeState": "Started",
                "pipeline": {"pipelineReference": reference("PipelineReference", "p_script")},
                "typeProperties": {"frequency": "Hour", "interval": 1, "startTime": "2026-01-01T00:00:00Z", "maxConcurrency": 1}}}),
            json!({"name": "blob_only", "properties": {"type": "ScheduleTrigger", "runtimeState": "Started",
                "pipelines": [{"pipelineReference": reference("PipelineReference", "p_blob_only")}],
                "typeProperties": {"recurrence": {"frequency": "Minute", "interval": 1, "startTime": "2026-01-01T00:00:00Z"}}}}),
        ],
    }
}

#[test]
fn direct_dataset_data_flow_and_execute_pipeline_uses_are_found_despite_a_cycle() {
    let found = graph::dependents(
        &["LS_SQL"],
        &factory().datasets,
        &factory().pipelines,
        &factory().data_flows,
    );
    assert_eq!(found.datasets, ["ds_sql"]);
    assert_eq!(found.data_flows, ["df_currency", "df_uses_flowlet"]);
    assert_eq!(
        found.pipelines,
        [
            "p_copy", "p_flow", "p_loop_a", "p_loop_b", "p_parent", "p_script"
        ]
    );
}

#[test]
fn a_linked_service_nothing_uses_breaks_nothing() {
    let found = graph::dependents(
        &["ls_unused"],
        &factory().datasets,
        &factory().pipelines,
        &factory().data_flows,
    );
    assert_eq!(found, graph::Dependents::default());
}

#[test]
fn impact_lists_triggers_soonest_first_and_ignores_stopped_ones_for_the_next_run() {
    let impact = impact(&factory(), &["ls_sql"], at("2026-11-28T02:30:00Z"));
    let names: Vec<&str> = impact.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["windows", "nightly_load", "hourly_script", "on_upload"]
    );
    assert_eq!(impact.next_run.as_deref(), Some("2026-11-28T03:00:00Z"));
    assert_eq!(
        impact.triggers[1].next_run.as_deref(),
        Some("2026-11-29T02:00:00Z")
    );
    let stopped = &impact.triggers[2];
    assert_eq!(
        (stopped.state.as_str(), stopped.next_run.as_deref()),
        ("Stopped", None)
    );
    let event = &impact.triggers[3];
    assert_eq!(event.next_run, None);
    assert!(event.note.as_deref().is_some_and(|n| n.contains("event")));
    assert_eq!(impact.triggers[1].pipelines, ["p_loop_a"]);
    assert!(!names.contains(&"blob_only"));
}

#[test]
fn only_stopped_and_event_triggers_leave_no_next_run() {
    let mut authoring = factory();
    authoring
        .triggers
        .retain(|t| t["name"] == "hourly_script" || t["name"] == "on_upload");
    let impact = impact(&authoring, &["ls_sql"], at("2026-11-28T01:30:00Z"));
    assert_eq!(impact.triggers.len(), 2);
    assert_eq!(impact.next_run, None);
}

const FACTORY: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f";

fn target(
    kind: TargetKind,
    verdict: crate::report::Verdict,
    resave: crate::report::ResaveStatus,
    test: crate::report::TestStatus,
) -> Target {
    Target {
        platform: crate::model::Platform::DataFactory,
        resource: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
            .into(),
        display_name: None,
        kind,
        factory: FACTORY.into(),
        name: "ls_sql".into(),
        adf_type: "AzureSqlDatabase".into(),
        references: vec![],
        verdict,
        reason: String::new(),
        notes: vec![],
        via_credential: None,
        used_by: vec!["ls_sql".into()],
        integration_runtime: None,
        resave: crate::report::Resave::with_status(resave, None),
        test: crate::report::Test {
            status: test,
            message: None,
            raw: None,
            diagnosis: None,
        },
        diagnosis: None,
        request_ids: vec![],
        impact: None,
    }
}

/// Every combination of kind, verdict, re-save, test and diagnosis a report can hold.
fn every_target() -> Vec<Target> {
    use crate::report::{ResaveStatus as R, TestStatus as T, Verdict as V};
    let mut targets = Vec::new();
    for kind in [TargetKind::LinkedService, TargetKind::Credential] {
        for verdict in [V::Resave, V::Pinned, V::InlineSecret, V::Ambiguous] {
            for resave in [R::Ok, R::Failed, R::Skipped, R::DryRun, R::NotReached] {
                for test in [T::Passed, T::Failed, T::NotTested, T::Error] {
                    for diagnosed in [false, true] {
                        let mut t = target(kind, verdict, resave, test);
                        if diagnosed {
                            t.notes = vec![crate::report::Note::GitMode];
                            t.diagnosis = crate::diagnose::for_verdict(verdict, &t.notes);
                        }
                        targets.push(t);
                    }
                }
            }
        }
    }
    targets
}

#[test]
fn the_blast_radius_is_attached_exactly_to_the_targets_that_need_attention() {
    let mut report = crate::report::Report::start(
        "r".into(),
        crate::report::Command::Refresh,
        false,
        crate::report::Trigger::default(),
        &[],
    );
    report.targets = every_target();
    assert_eq!(
        factories_to_read(&report).into_values().collect::<Vec<_>>(),
        [FACTORY]
    );
    let read = BTreeMap::from([(
        FACTORY.to_ascii_lowercase(),
        (FACTORY.to_string(), Ok(factory())),
    )]);
    set_impacts(&mut report, read, at("2026-11-28T02:30:00Z"));
    let (mut with, mut without) = (0, 0);
    for t in &report.targets {
        assert_eq!(
            t.impact.is_some(),
            t.needs_attention(),
            "{:?} {:?} {:?} {:?} diagnosis {}",
            t.kind,
            t.verdict,
            t.resave.status,
            t.test.status,
            t.diagnosis.is_some()
        );
        if t.impact.is_some() {
            with += 1
        } else {
            without += 1
        }
    }
    assert!(
        with > 0 && without > 0,
        "both kinds occur: {with} with, {without} without"
    );
}

#[test]
fn a_git_mode_resave_whose_test_passed_gets_a_blast_radius() {
    use crate::report::{ResaveStatus, TestStatus, Verdict};
    let mut git = target(
        TargetKind::LinkedService,
        Verdict::Resave,
        ResaveStatus::Ok,
        TestStatus::Passed,
    );
    git.notes = vec![crate::report::Note::GitMode];
    git.diagnosis = crate::diagnose::for_verdict(Verdict::Resave, &git.notes);
    let mut untested = target(
        TargetKind::LinkedService,
        Verdict::Resave,
        ResaveStatus::Ok,
        TestStatus::NotTested,
    );
    untested.notes = vec![crate::report::Note::Parameterised];
    let fine = target(
        TargetKind::LinkedService,
        Verdict::Resave,
        ResaveStatus::Ok,
        TestStatus::Passed,
    );
    let mut report = crate::report::Report::start(
        "r".into(),
        crate::report::Command::Refresh,
        false,
        crate::report::Trigger::default(),
        &[],
    );
    report.targets = vec![git, untested, fine];
    let read = BTreeMap::from([(
        FACTORY.to_ascii_lowercase(),
        (FACTORY.to_string(), Ok(factory())),
    )]);
    set_impacts(&mut report, read, at("2026-11-28T02:30:00Z"));
    let impacts: Vec<bool> = report.targets.iter().map(|t| t.impact.is_some()).collect();
    assert_eq!(
        impacts,
        [true, true, false],
        "Git mode, untested parameterised, fine"
    );
}

#[test]
fn a_run_where_all_is_well_reads_no_factory() {
    use crate::report::{ResaveStatus, TestStatus, Verdict};
    let mut report = crate::report::Report::start(
        "r".into(),
        crate::report::Command::Refresh,
        false,
        crate::report::Trigger::default(),
        &[],
    );
    report.targets = vec![
        target(
            TargetKind::LinkedService,
            Verdict::Resave,
            ResaveStatus::Ok,
            TestStatus::Passed,
        ),
        target(
            TargetKind::Credential,
            Verdict::Resave,
            ResaveStatus::Ok,
            TestStatus::NotTested,
        ),
        target(
            TargetKind::LinkedService,
            Verdict::Resave,
            ResaveStatus::DryRun,
            TestStatus::NotTested,
        ),
    ];
    assert!(factories_to_read(&report).is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A daily schedule in a zone with daylight saving runs at or after `now`, within a day and an hour,
        /// at its wall-clock time (or an hour later on the day that time does not exist).
        #[test]
        fn daily_runs_are_soon_and_at_their_wall_clock_time(
            seconds in 1_577_836_800i64..2_051_222_400,
            hour in 0i64..24,
            minute in 0i64..60,
            zone in prop::sample::select(vec!["W. Europe Standard Time", "Pacific Standard Time", "AUS Eastern Standard Time", "UTC"]),
        ) {
            let now = Timestamp::from_second(seconds).expect("in range");
            let recurrence = json!({"frequency": "Day", "interval": 1, "startTime": "2019-06-01T00:00:00",
                "timeZone": zone, "schedule": {"hours": [hour], "minutes": [minute]}});
            let next = schedule_next_run(&recurrence, now).expect("evaluable").expect("no end");
            prop_assert!(next >= now);
            prop_assert!(next.as_second() - now.as_second() <= 25 * 3600);
            let tz = windows_zones::time_zone(zone).expect("known zone");
            let local = tz.to_datetime(next);
            let wall = i64::from(local.hour()) * 60 + i64::from(local.minute());
            let wanted = hour * 60 + minute;
            prop_assert!(wall == wanted || wall == wanted + 60, "{next} is {local} locally, not {hour}:{minute}");
        }

        /// A monthly schedule on the last day runs on a month's last day.
        #[test]
        fn last_day_runs_on_the_last_day(seconds in 1_577_836_800i64..2_051_222_400) {
            let now = Timestamp::from_second(seconds).expect("in range");
            let recurrence = json!({"frequency": "Month", "startTime": "2019-01-01T00:00:00Z",
                "schedule": {"monthDays": [-1], "hours": [12], "minutes": [0]}});
            let next = schedule_next_run(&recurrence, now).expect("evaluable").expect("no end");
            let date = jiff::tz::TimeZone::UTC.to_datetime(next).date();
            prop_assert_eq!(date, date.last_of_month());
            prop_assert!(next >= now && next.as_second() - now.as_second() <= 32 * 86_400);
        }
    }
}
