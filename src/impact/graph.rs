//! Pure: which datasets, data flows and pipelines of a factory depend on some linked services, and which
//! triggers start those pipelines.
//!
//! References are found by walking the definitions for ADF's typed reference objects
//! (`{"referenceName": …, "type": "LinkedServiceReference" | "DatasetReference" | "DataFlowReference" |
//! "PipelineReference"}`, 2018-06-01 spec, `datafactory.json`), so every activity that names a linked
//! service counts: `linkedServiceName` of an execution activity (Script, Stored procedure, Databricks,
//! Azure Function, …), the datasets of Copy and Lookup, the `linkedServices`/`datasets` of Web, the data
//! flow of Execute Data Flow (whose sources and sinks name datasets or linked services, and flowlets name
//! data flows), nested activities of ForEach/If/Switch/Until, and Execute Pipeline. A reference whose
//! `referenceName` is an expression cannot be resolved and is not counted. Names compare without case,
//! as ADF's do.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// ADF entity names, compared without case.
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn name_of(resource: &Value) -> Option<&str> {
    resource.get("name").and_then(Value::as_str)
}

/// Every `referenceName` of a reference object of `kind` anywhere in `value`.
pub fn references(value: &Value, kind: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            let is_kind = map
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(kind));
            if is_kind && let Some(name) = map.get("referenceName").and_then(Value::as_str) {
                out.insert(key(name));
            }
            for v in map.values() {
                references(v, kind, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, kind, out)),
        _ => {}
    }
}

fn refs(value: &Value, kind: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    references(value, kind, &mut out);
    out
}

/// What in one factory depends on a set of linked services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependents {
    pub datasets: Vec<String>,
    pub data_flows: Vec<String>,
    /// Pipelines that use them directly or through a dataset or data flow, and the pipelines that call
    /// those (Execute Pipeline), to any depth.
    pub pipelines: Vec<String>,
}

/// The datasets, data flows and pipelines that depend on `linked_services`.
pub fn dependents(
    linked_services: &[&str],
    datasets: &[Value],
    pipelines: &[Value],
    data_flows: &[Value],
) -> Dependents {
    let targets: BTreeSet<String> = linked_services.iter().map(|n| key(n)).collect();
    let uses_target = |v: &Value| !refs(v, "LinkedServiceReference").is_disjoint(&targets);

    let mut dataset_names = BTreeMap::new();
    for ds in datasets {
        if let Some(name) = name_of(ds)
            && ds.get("properties").is_some_and(uses_target)
        {
            dataset_names.insert(key(name), name.to_string());
        }
    }
    let used_datasets: BTreeSet<String> = dataset_names.keys().cloned().collect();

    // Data flows: a fixed point, because a flowlet is a data flow used by another data flow.
    let mut flow_names: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let before = flow_names.len();
        for flow in data_flows {
            let Some(name) = name_of(flow) else { continue };
            if flow_names.contains_key(&key(name)) {
                continue;
            }
            let properties = flow.get("properties").unwrap_or(&Value::Null);
            let flows: BTreeSet<String> = flow_names.keys().cloned().collect();
            if uses_target(properties)
                || !refs(properties, "DatasetReference").is_disjoint(&used_datasets)
                || !refs(properties, "DataFlowReference").is_disjoint(&flows)
            {
                flow_names.insert(key(name), name.to_string());
            }
        }
        if flow_names.len() == before {
            break;
        }
    }
    let used_flows: BTreeSet<String> = flow_names.keys().cloned().collect();

    let mut pipeline_names: BTreeMap<String, String> = BTreeMap::new();
    // callee → callers, for the Execute Pipeline closure.
    let mut callers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for pipeline in pipelines {
        let Some(name) = name_of(pipeline) else {
            continue;
        };
        pipeline_names.insert(key(name), name.to_string());
        let activities = pipeline
            .pointer("/properties/activities")
            .unwrap_or(&Value::Null);
        for callee in refs(activities, "PipelineReference") {
            callers.entry(callee).or_default().push(key(name));
        }
        if uses_target(activities)
            || !refs(activities, "DatasetReference").is_disjoint(&used_datasets)
            || !refs(activities, "DataFlowReference").is_disjoint(&used_flows)
        {
            queue.push_back(key(name));
        }
    }
    // Breadth-first over callers; `seen` stops a cycle of Execute Pipeline activities.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(pipeline) = queue.pop_front() {
        if !seen.insert(pipeline.clone()) {
            continue;
        }
        for caller in callers.get(&pipeline).into_iter().flatten() {
            if !seen.contains(caller) {
                queue.push_back(caller.clone());
            }
        }
    }
    let display = |names: &BTreeMap<String, String>, keys: &BTreeSet<String>| -> Vec<String> {
        let mut out: Vec<String> = keys.iter().filter_map(|k| names.get(k).cloned()).collect();
        out.sort_by_key(|n| key(n));
        out
    };
    Dependents {
        datasets: display(&dataset_names, &used_datasets),
        data_flows: display(&flow_names, &used_flows),
        pipelines: display(&pipeline_names, &seen),
    }
}

/// The pipelines a trigger starts (`pipelines[]` of most triggers, `pipeline` of a tumbling window).
pub fn trigger_pipelines(trigger: &Value) -> BTreeSet<String> {
    let properties = trigger.get("properties").unwrap_or(&Value::Null);
    let mut out = BTreeSet::new();
    for field in ["pipelines", "pipeline"] {
        if let Some(v) = properties.get(field) {
            references(v, "PipelineReference", &mut out);
        }
    }
    out
}
