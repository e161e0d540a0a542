//! The deployment and the code agree.
//!
//! `infra/`, `host.json` and `function/` are read as text and compared with the constants the handler
//! uses, so that a renamed queue, a new ARM call or a new setting cannot reach Azure half-done:
//! - the custom role grants exactly the ARM actions of `azure::operations`;
//! - the function folders, binding names, queues and the report container match `functions`;
//! - the app settings infra sets are the ones `config::APP_SETTINGS` reads;
//! - `host.json` starts this binary as a custom handler.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use adf_secret_refresh::azure::operations::required_actions;
use adf_secret_refresh::config::APP_SETTINGS;
use adf_secret_refresh::functions::{
    ATTENTION_QUEUE, FUNCTION_NAMES, MAX_DEQUEUE_COUNT, POISON_QUEUE, REFRESH_JOB_QUEUE,
    REPORT_CONTAINER, RUN_STATUS_FOLDER,
};
use serde_json::Value;

/// Settings only the emulator and local runs use; a deployment in Azure must not set them.
const LOCAL_ONLY_SETTINGS: &[&str] = &[
    "ADF_REFRESH_ARM_ENDPOINT",
    "ADF_REFRESH_KEYVAULT_ENDPOINT",
    "ADF_REFRESH_SYNAPSE_ENDPOINT",
    "ADF_REFRESH_CA_FILE",
];

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_json(relative: &str) -> Value {
    serde_json::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid JSON: {e}"))
}

/// `infra/main.bicep` and every module, as (relative path, text).
fn bicep_sources() -> Vec<(String, String)> {
    let mut sources = vec![("infra/main.bicep".to_string(), read("infra/main.bicep"))];
    let modules = repo_path("infra/modules");
    let mut names: Vec<String> = fs::read_dir(&modules)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", modules.display()))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".bicep"))
        .collect();
    names.sort();
    for name in names {
        let relative = format!("infra/modules/{name}");
        let text = read(&relative);
        sources.push((relative, text));
    }
    sources
}

/// A Bicep line without its `//` comment (a `//` inside a quoted string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'\'' => in_string = false,
                _ => {}
            }
        } else if b == b'\'' {
            in_string = true;
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            return &line[..i];
        }
    }
    line
}

/// The text of a single-quoted Bicep string that is the whole of `s` (after trimming).
fn quoted(s: &str) -> Option<&str> {
    let s = s.trim();
    (s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'')).then(|| &s[1..s.len() - 1])
}

/// The string items of the array that opens on the line `<key>: [` in `text`, one item per line.
/// Panics unless there is exactly one such array.
fn string_array(text: &str, key: &str) -> Vec<String> {
    let opener = format!("{key}: [");
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for raw in text.lines() {
        let line = strip_comment(raw).trim();
        match current.as_mut() {
            None if line == opener => current = Some(Vec::new()),
            None => {}
            Some(items) if line == "]" => {
                found.push(std::mem::take(items));
                current = None;
            }
            Some(items) => {
                let item = quoted(line).unwrap_or_else(|| {
                    panic!("`{key}` holds something other than a string: {line}")
                });
                items.push(item.to_string());
            }
        }
    }
    assert!(current.is_none(), "`{opener}` is never closed");
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{opener}` array, found {}",
        found.len()
    );
    found.remove(0)
}

/// The value of `var <name> = '<value>'` in `text`.
fn string_var(text: &str, name: &str) -> String {
    let prefix = format!("var {name} = ");
    let values: Vec<&str> = text
        .lines()
        .map(|line| strip_comment(line).trim())
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(quoted)
        .collect();
    assert_eq!(
        values.len(),
        1,
        "expected one string `var {name}`, found {values:?}"
    );
    values[0].to_string()
}

/// Every `name: '<setting>'` in infra whose setting is one of the product's (an `ADF_REFRESH_`
/// prefix, or `AZURE_CLIENT_ID`).
fn product_settings_in_infra() -> BTreeSet<String> {
    let mut settings = BTreeSet::new();
    for (_, text) in bicep_sources() {
        for line in text.lines() {
            let line = strip_comment(line).trim();
            if let Some(name) = line.strip_prefix("name: ").and_then(quoted)
                && (name.starts_with("ADF_REFRESH_") || name == "AZURE_CLIENT_ID")
            {
                settings.insert(name.to_string());
            }
        }
    }
    settings
}

/// Every `name: '<setting>'` in infra, product or host.
fn all_settings_in_infra() -> BTreeSet<String> {
    let mut settings = BTreeSet::new();
    for (path, text) in bicep_sources() {
        if !path.ends_with("function-app.bicep") && !path.ends_with("main.bicep") {
            continue;
        }
        for line in text.lines() {
            if let Some(name) = strip_comment(line)
                .trim()
                .strip_prefix("name: ")
                .and_then(quoted)
            {
                settings.insert(name.to_string());
            }
        }
    }
    settings
}

fn bindings(function: &str) -> Vec<Value> {
    let document = read_json(&format!("function/{function}/function.json"));
    document["bindings"]
        .as_array()
        .unwrap_or_else(|| panic!("function/{function}/function.json has no `bindings` array"))
        .clone()
}

fn field<'a>(binding: &'a Value, key: &str) -> &'a str {
    binding[key]
        .as_str()
        .unwrap_or_else(|| panic!("binding without string `{key}`: {binding}"))
}

#[test]
fn custom_role_grants_exactly_the_actions_the_code_performs() {
    let role = read("infra/modules/custom-role.bicep");
    let mut granted = string_array(&role, "actions");
    let listed = granted.len();
    granted.sort();
    granted.dedup();
    assert_eq!(granted.len(), listed, "the role lists an action twice");

    let required: Vec<String> = required_actions().iter().map(|a| a.to_string()).collect();
    let missing: Vec<&String> = required.iter().filter(|a| !granted.contains(a)).collect();
    let extra: Vec<&String> = granted.iter().filter(|a| !required.contains(a)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "infra/modules/custom-role.bicep differs from azure::operations::required_actions():\n  \
         missing from the role: {missing:?}\n  granted but never used: {extra:?}"
    );

    for key in ["notActions", "dataActions", "notDataActions"] {
        assert!(
            role.lines()
                .any(|l| strip_comment(l).trim() == format!("{key}: []")),
            "the custom role must have an empty `{key}`"
        );
    }
    assert!(
        !granted.iter().any(|a| a.contains('*')),
        "the custom role must not use wildcards"
    );
}

#[test]
fn every_function_has_a_folder_and_every_folder_is_a_function() {
    let mut folders = BTreeSet::new();
    for entry in fs::read_dir(repo_path("function")).expect("function/ exists") {
        let entry = entry.expect("directory entry");
        if entry.file_type().expect("file type").is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                entry.path().join("function.json").is_file(),
                "function/{name} has no function.json"
            );
            folders.insert(name);
        }
    }
    let expected: BTreeSet<String> = FUNCTION_NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        folders, expected,
        "function/ folders differ from functions::FUNCTION_NAMES"
    );
}

#[test]
fn bindings_use_the_names_the_handler_reads() {
    // (function, [(binding type, direction, binding name)]), as the handler expects them.
    type Binding = (&'static str, &'static str, &'static str);
    let expected: &[(&str, &[Binding])] = &[
        (
            "KeyVaultSecretEvent",
            &[("eventGridTrigger", "in", "event"), ("queue", "out", "job")],
        ),
        (
            "RefreshJob",
            &[
                ("queueTrigger", "in", "job"),
                ("blob", "out", "report"),
                ("queue", "out", "attention"),
                ("blob", "out", "run"),
                ("queue", "out", "poison"),
            ],
        ),
        (
            "Refresh",
            &[
                ("httpTrigger", "in", "req"),
                ("http", "out", "res"),
                ("queue", "out", "job"),
                ("blob", "out", "run"),
            ],
        ),
        (
            "RefreshStatus",
            &[
                ("httpTrigger", "in", "req"),
                ("blob", "in", "run"),
                ("http", "out", "res"),
            ],
        ),
        (
            "Audit",
            &[
                ("timerTrigger", "in", "timer"),
                ("blob", "out", "report"),
                ("queue", "out", "attention"),
            ],
        ),
    ];
    assert_eq!(
        expected.len(),
        FUNCTION_NAMES.len(),
        "this table misses a function"
    );
    for (function, wanted) in expected {
        let actual: Vec<(String, String, String)> = bindings(function)
            .iter()
            .map(|b| {
                (
                    field(b, "type").to_string(),
                    field(b, "direction").to_string(),
                    field(b, "name").to_string(),
                )
            })
            .collect();
        let wanted: Vec<(String, String, String)> = wanted
            .iter()
            .map(|(t, d, n)| (t.to_string(), d.to_string(), n.to_string()))
            .collect();
        assert_eq!(actual, wanted, "bindings of {function}");
    }

    let refresh = bindings("Refresh");
    assert_eq!(
        field(&refresh[0], "authLevel"),
        "function",
        "Refresh must need a function key"
    );
    assert_eq!(refresh[0]["methods"], serde_json::json!(["post"]));
    assert_eq!(field(&refresh[0], "route"), "refresh");

    // The manual run's status: one blob per run id, written by Refresh and RefreshJob, read by RefreshStatus.
    let status = bindings("RefreshStatus");
    assert_eq!(field(&status[0], "authLevel"), "function");
    assert_eq!(status[0]["methods"], serde_json::json!(["get"]));
    assert_eq!(field(&status[0], "route"), "refresh/{id:guid}");
    let run_path = |id: &str| format!("{REPORT_CONTAINER}/{RUN_STATUS_FOLDER}/{id}.json");
    assert_eq!(field(&status[1], "path"), run_path("{id}"));
    assert_eq!(
        field(&status[1], "dataType"),
        "string",
        "read as text, so the host passes JSON and not base64"
    );
    // Refresh's run id is the invocation's sys.RandGuid, the same value the handler reads from Metadata.
    assert_eq!(field(&refresh[3], "path"), run_path("{sys.randguid}"));
    assert_eq!(field(&refresh[2], "queueName"), REFRESH_JOB_QUEUE);
    let job = bindings("RefreshJob");
    assert_eq!(field(&job[3], "path"), run_path("{id}"));
    assert_eq!(field(&job[4], "queueName"), POISON_QUEUE);
}

#[test]
fn queues_and_report_container_match_the_code_and_the_infrastructure() {
    let mut queues = BTreeSet::new();
    let mut blob_containers = BTreeSet::new();
    for function in FUNCTION_NAMES {
        for binding in bindings(function) {
            let kind = field(&binding, "type");
            if kind == "queue" || kind == "queueTrigger" || kind == "blob" {
                assert_eq!(
                    field(&binding, "connection"),
                    "AzureWebJobsStorage",
                    "{function}: storage bindings use the identity-based AzureWebJobsStorage"
                );
            }
            match kind {
                "queue" | "queueTrigger" => {
                    queues.insert(field(&binding, "queueName").to_string());
                }
                "blob" => {
                    let path = field(&binding, "path");
                    let container = path.split('/').next().unwrap_or_default();
                    blob_containers.insert(container.to_string());
                }
                _ => {}
            }
        }
    }
    let expected_queues: BTreeSet<String> = [REFRESH_JOB_QUEUE, ATTENTION_QUEUE, POISON_QUEUE]
        .iter()
        .map(|q| q.to_string())
        .collect();
    assert_eq!(
        queues, expected_queues,
        "queues named in function/*/function.json"
    );
    assert_eq!(
        blob_containers,
        BTreeSet::from([REPORT_CONTAINER.to_string()]),
        "blob outputs write to the report container"
    );

    // The event function feeds the queue the job function drains.
    let event_output = bindings("KeyVaultSecretEvent")
        .into_iter()
        .find(|b| field(b, "type") == "queue")
        .expect("KeyVaultSecretEvent has a queue output");
    assert_eq!(field(&event_output, "queueName"), REFRESH_JOB_QUEUE);
    let job_trigger = &bindings("RefreshJob")[0];
    assert_eq!(field(job_trigger, "queueName"), REFRESH_JOB_QUEUE);

    let main = read("infra/main.bicep");
    assert_eq!(string_var(&main, "refreshJobQueueName"), REFRESH_JOB_QUEUE);
    assert_eq!(string_var(&main, "attentionQueueName"), ATTENTION_QUEUE);
    assert_eq!(string_var(&main, "reportContainerName"), REPORT_CONTAINER);
    let queue_list = string_array_of_identifiers(&main, "queueNames");
    let container_list = string_array_of_identifiers(&main, "containerNames");
    assert!(
        queue_list.contains(&"refreshJobQueueName".to_string()),
        "infra creates the job queue"
    );
    assert!(
        queue_list.contains(&"attentionQueueName".to_string()),
        "infra creates the attention queue"
    );
    assert!(
        container_list.contains(&"reportContainerName".to_string()),
        "infra creates the report container"
    );

    let event_function = string_var(&main, "eventFunctionName");
    assert!(
        FUNCTION_NAMES.contains(&event_function.as_str()),
        "Event Grid subscribes {event_function}, which is not one of FUNCTION_NAMES"
    );
}

/// The items of the `<key>: [` array in `text`, as written (identifiers or quoted strings).
fn string_array_of_identifiers(text: &str, key: &str) -> Vec<String> {
    let opener = format!("{key}: [");
    let mut lines = text.lines().map(|l| strip_comment(l).trim());
    lines
        .by_ref()
        .find(|l| *l == opener)
        .unwrap_or_else(|| panic!("no `{opener}` in infra/main.bicep"));
    lines
        .take_while(|l| *l != "]")
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn infra_sets_exactly_the_settings_the_product_reads() {
    let in_infra = product_settings_in_infra();
    let read_by_code: BTreeSet<String> = APP_SETTINGS.iter().map(|s| s.to_string()).collect();

    let unknown: Vec<&String> = in_infra.difference(&read_by_code).collect();
    assert!(
        unknown.is_empty(),
        "infra sets settings that config::APP_SETTINGS does not list: {unknown:?}"
    );

    let missing: Vec<&String> = read_by_code
        .difference(&in_infra)
        .filter(|s| !LOCAL_ONLY_SETTINGS.contains(&s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "config::APP_SETTINGS lists settings infra never sets: {missing:?}"
    );

    let local: Vec<&String> = in_infra
        .iter()
        .filter(|s| LOCAL_ONLY_SETTINGS.contains(&s.as_str()))
        .collect();
    assert!(
        local.is_empty(),
        "infra sets emulator-only settings: {local:?}"
    );

    // The audit's schedule is a setting too: the timer binding reads it by name.
    assert!(in_infra.contains("ADF_REFRESH_AUDIT_SCHEDULE"));
}

#[test]
fn every_setting_a_binding_names_is_set_by_infra() {
    let in_infra = all_settings_in_infra();
    for function in FUNCTION_NAMES {
        for binding in bindings(function) {
            let Some(object) = binding.as_object() else {
                continue;
            };
            for value in object.values().filter_map(Value::as_str) {
                // `%NAME%` in a binding is resolved from the app settings.
                let mut parts = value.split('%');
                parts.next();
                while let (Some(name), Some(_)) = (parts.next(), parts.next()) {
                    assert!(
                        in_infra.contains(name),
                        "{function} reads %{name}%, which infra does not set"
                    );
                }
            }
            if let Some(connection) = binding.get("connection").and_then(Value::as_str) {
                assert!(
                    in_infra.contains(&format!("{connection}__accountName")),
                    "{function} uses connection {connection}, which infra does not configure"
                );
            }
        }
    }
}

#[test]
fn secrets_are_never_plain_app_settings() {
    let main = read("infra/main.bicep");
    let lines: Vec<&str> = main.lines().map(|l| strip_comment(l).trim()).collect();
    let at = lines
        .iter()
        .position(|l| *l == "name: 'ADF_REFRESH_WEBHOOK_SECRET'")
        .expect("infra sets ADF_REFRESH_WEBHOOK_SECRET");
    let value = lines[at + 1];
    assert!(
        value.starts_with("value:") && value.contains("@Microsoft.KeyVault(SecretUri="),
        "ADF_REFRESH_WEBHOOK_SECRET must be a Key Vault reference, found: {value}"
    );
    for (path, text) in bicep_sources() {
        for line in text.lines().map(|l| strip_comment(l).trim()) {
            assert!(
                !line.contains("listKeys(") && !line.contains("AccountKey="),
                "{path} puts a storage key somewhere: {line}"
            );
        }
    }
    let settings = all_settings_in_infra();
    assert!(
        !settings.contains("AzureWebJobsStorage"),
        "AzureWebJobsStorage must be identity-based"
    );
    assert!(settings.contains("AzureWebJobsStorage__credential"));
    assert!(settings.contains("AzureWebJobsStorage__clientId"));
}

#[test]
fn host_json_starts_this_binary_as_a_custom_handler() {
    let host = read_json("host.json");
    assert_eq!(host["version"], "2.0");

    let handler = &host["customHandler"];
    assert_eq!(handler["enableForwardingHttpRequest"], Value::Bool(false));
    let executable = handler["description"]["defaultExecutablePath"]
        .as_str()
        .expect("customHandler.description.defaultExecutablePath");
    assert_eq!(executable, "adf-secret-refresh");
    assert_eq!(
        handler["description"]["arguments"],
        serde_json::json!(["serve"])
    );
    // The name the host starts is the file cargo builds.
    let built = Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh"));
    assert_eq!(built.file_name().and_then(|n| n.to_str()), Some(executable));

    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");

    let timeout = host["functionTimeout"]
        .as_str()
        .expect("functionTimeout is set");
    let parts: Vec<u32> = timeout
        .split(':')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("functionTimeout is not hh:mm:ss: {timeout}"))
        })
        .collect();
    assert_eq!(parts.len(), 3, "functionTimeout is not hh:mm:ss: {timeout}");
    let seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
    assert!(
        seconds > 0 && seconds <= 600,
        "functionTimeout {timeout} should be at most 10 minutes"
    );

    // A run must end (and report) before the host kills it.
    let main = read("infra/main.bicep");
    let budget: u32 = main
        .lines()
        .map(|l| strip_comment(l).trim())
        .find_map(|l| l.strip_prefix("param runBudgetSeconds int = "))
        .expect("infra/main.bicep has `param runBudgetSeconds int = <seconds>`")
        .parse()
        .expect("runBudgetSeconds default is a number");
    assert!(
        budget < seconds,
        "the run budget ({budget} s) must stay below functionTimeout ({timeout})"
    );
    let max_budget: u32 = main
        .lines()
        .map(|l| strip_comment(l).trim())
        .skip_while(|l| !l.starts_with("@description('Time budget"))
        .find_map(|l| {
            l.strip_prefix("@maxValue(")
                .and_then(|v| v.strip_suffix(')'))
        })
        .expect("runBudgetSeconds has a @maxValue")
        .parse()
        .expect("@maxValue is a number");
    assert!(
        max_budget < seconds,
        "runBudgetSeconds may be set to {max_budget} s, past functionTimeout"
    );

    let queues = &host["extensions"]["queues"];
    assert_eq!(
        queues["maxDequeueCount"], MAX_DEQUEUE_COUNT,
        "the handler's last delivery is the host's maxDequeueCount-th"
    );
    assert_eq!(queues["visibilityTimeout"], "00:00:30");
    assert_eq!(queues["batchSize"], 4);
    assert_eq!(host["extensions"]["http"]["routePrefix"], "api");
}

/// The text of one Bicep file without comments, so that a commented-out resource does not count.
fn code_of(relative: &str) -> String {
    read(relative)
        .lines()
        .map(strip_comment)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn alert_rules_cover_what_an_operator_must_hear_about() {
    let main = code_of("infra/main.bicep");
    assert!(
        main.contains("param alertActionGroupId string"),
        "the action group is a parameter"
    );
    assert!(
        main.contains("module alerts 'modules/alerts.bicep'"),
        "main.bicep deploys the alerts"
    );
    assert!(main.contains("actionGroupId: alertActionGroupId"));

    let alerts = code_of("infra/modules/alerts.bicep");
    assert!(alerts.contains("resource rules 'Microsoft.Insights/scheduledQueryRules@"));
    for (rule, must_contain) in [
        ("function-failures", "AppRequests | where Success == false"),
        ("attention-messages", "/${attentionQueueName}/messages"),
        ("poison-messages", "/${poisonQueueName}/messages"),
        (
            "audit-missing",
            "OperationName == \"Audit\" and Success == true",
        ),
    ] {
        let at = alerts
            .find(&format!("name: '{rule}'"))
            .unwrap_or_else(|| panic!("no alert rule {rule}"));
        let block = &alerts[at..alerts[at..].find("\n  }").map_or(alerts.len(), |e| at + e)];
        assert!(
            block.contains(must_contain),
            "alert {rule} should query {must_contain}: {block}"
        );
        // The rules count rows; a `summarize` would always return one row and fire (or never fire).
        assert!(
            !block.contains("summarize"),
            "alert {rule}: a Count rule must not summarize"
        );
    }
    assert!(
        alerts.contains("ago(${auditMissingHours}h)")
            && alerts.contains("param auditMissingHours int = 26"),
        "no successful audit in 26 h"
    );
    assert!(alerts.contains("actionGroups: ["));
    // The queues the alerts watch are the queues the handler writes.
    assert!(main.contains("attentionQueueName: attentionQueueName"));
    assert_eq!(
        format!(
            "{}-poison",
            string_var(&read("infra/main.bicep"), "refreshJobQueueName")
        ),
        POISON_QUEUE
    );
    assert!(main.contains("poisonQueueName: '${refreshJobQueueName}-poison'"));

    // Event Grid: dead-letters, drops and failed deliveries, on every system topic.
    let vault = code_of("infra/modules/vault.bicep");
    assert!(vault.contains("resource topicAlert 'Microsoft.Insights/metricAlerts@"));
    for metric in [
        "DeadLetteredCount",
        "DroppedEventCount",
        "DeliveryAttemptFailCount",
    ] {
        assert!(
            vault.contains(&format!("metric: '{metric}'")),
            "no Event Grid alert on {metric}"
        );
    }
    assert!(vault.contains("metricNamespace: 'Microsoft.EventGrid/systemTopics'"));
    assert!(main.contains("actionGroupId: alertActionGroupId\n  }\n}]"));
}

#[test]
fn reports_expire_by_a_lifecycle_rule_and_queue_read_logging_is_a_choice() {
    let main = code_of("infra/main.bicep");
    assert!(
        main.contains("param reportRetentionDays int = 90"),
        "reports are kept 90 days by default"
    );
    assert!(main.contains("reportRetentionDays: reportRetentionDays"));
    assert!(
        main.contains("'${reportContainerName}/'"),
        "the rule covers the reports"
    );
    let storage = code_of("infra/modules/storage.bicep");
    assert!(
        storage
            .contains("resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@")
    );
    assert!(storage.contains("daysAfterModificationGreaterThan: reportRetentionDays"));
    assert!(storage.contains("prefixMatch: expiringPrefixes"));

    assert!(main.contains("param logQueueReads bool"));
    assert!(main.contains("logQueueReads: logQueueReads"));
    let read_logs = storage
        .find("category: 'StorageRead'")
        .map(|at| &storage[at..at + 80])
        .expect("queue reads are a diagnostic category");
    assert!(
        read_logs.contains("enabled: logQueueReads"),
        "queue read logging follows the parameter: {read_logs}"
    );
    assert!(
        read("docs/deploy.md").contains("logQueueReads"),
        "the cost of queue read logging is documented"
    );
}

#[test]
fn handler_logs_reach_application_insights() {
    let host = read_json("host.json");
    let levels = &host["logging"]["logLevel"];
    // The handler's stderr lines are filed by the host under Host.Function.Console.
    for category in ["Host.Function.Console", "Function"] {
        assert_eq!(
            levels[category], "Information",
            "host.json must keep {category} at Information, or the handler's info lines are dropped"
        );
    }
    let operations = read("docs/operations.md");
    assert!(
        operations.contains("Host.Function.Console"),
        "the log queries include the handler's category"
    );
}

#[test]
fn no_source_reads_outside_the_repository() {
    // A clone must pass its own tests: nothing may read a folder beside the repository.
    let mut offenders = Vec::new();
    let mut stack = vec![
        repo_path("src"),
        repo_path("tests"),
        repo_path("emulator/src"),
        repo_path("emulator/tests"),
        repo_path("benches"),
        repo_path("scripts"),
    ];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("fixtures") {
                    stack.push(path);
                }
                continue;
            }
            if path.file_name().is_some_and(|n| n == "infra.rs") {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            if text.contains("../shared") || text.contains("shared/reference") {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these files read outside the repository: {offenders:?}"
    );
}

#[test]
fn package_sh_refuses_a_binary_for_another_machine() {
    // A small ELF header for each machine; package.sh --verify-binary checks what Azure's x86-64 Linux
    // Functions workers can run.
    let dir = std::env::temp_dir().join(format!("adf-package-check-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let elf = |machine: u16, class: u8| {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = class; // 2 = 64-bit
        header[5] = 1; // little endian
        header[6] = 1;
        header[16] = 2; // ET_EXEC
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header
    };
    let cases: [(&str, Vec<u8>, bool); 4] = [
        ("x86-64", elf(0x3e, 2), true),
        ("aarch64", elf(0xb7, 2), false),
        ("i386", elf(0x03, 1), false),
        ("mach-o", vec![0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], false),
    ];
    for (name, bytes, accepted) in cases {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write");
        let out = std::process::Command::new("bash")
            .arg(repo_path("scripts/package.sh"))
            .arg("--verify-binary")
            .arg(&path)
            .output()
            .expect("bash runs");
        assert_eq!(
            out.status.success(),
            accepted,
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !accepted {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("x86-64"),
                "{name}: the refusal names what is expected"
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn log_alert_rules_skip_query_validation_and_wait_for_the_diagnostic_settings() {
    // A table exists in the workspace only once rows have arrived, and Azure validates a rule's query at
    // creation: on a fresh workspace a rule on StorageQueueLogs or AppRequests would fail without this.
    let alerts = code_of("infra/modules/alerts.bicep");
    assert!(alerts.contains("resource rules 'Microsoft.Insights/scheduledQueryRules@2022-06-15'"));
    assert!(alerts.contains("skipQueryValidation: true"));
    let main = code_of("infra/main.bicep");
    let at = main
        .find("module alerts 'modules/alerts.bicep'")
        .expect("the alerts module");
    let block = &main[at..at + main[at..].find("\n}").expect("module end")];
    assert!(
        block.contains("dependsOn: [\n    storage\n  ]"),
        "the alerts wait for the storage module, whose diagnostic settings feed StorageQueueLogs: {block}"
    );
    assert!(code_of("infra/modules/storage.bicep").contains("resource queueDiagnostics"));
}

#[test]
fn the_app_identity_may_write_the_hosts_table_storage() {
    // With an identity-based AzureWebJobsStorage the host writes diagnostic events to Table storage.
    let storage = code_of("infra/modules/storage.bicep");
    assert!(
        storage.contains("var tableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'")
    );
    assert!(
        storage.contains("resource tableDataContributor 'Microsoft.Authorization/roleAssignments@")
    );
    assert!(storage.contains("guid(account.id, appPrincipalId, tableDataContributorRoleId)"));
}

#[test]
fn the_deployment_says_which_event_subscriptions_it_created() {
    // scripts/deploy.sh step 3 fails unless every vault has one (tests/scripts.rs).
    let main = code_of("infra/main.bicep");
    assert!(main.contains(
        "output eventSubscriptionIds array = [for (v, i) in vaultIds: deployEventSubscriptions ? eventSubscriptions[i].outputs.id : '']"
    ));
    assert!(
        code_of("infra/modules/event-subscription.bicep")
            .contains("output id string = eventSubscription.id")
    );
    assert!(read("scripts/deploy.sh").contains("eventSubscriptionIds"));
}
