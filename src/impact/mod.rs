//! Blast radius: for each target that needs attention, the pipelines a broken linked service stops and
//! when the next of them is due to run.
//!
//! [`impact`] is pure: from a factory's datasets, pipelines, data flows and triggers (as ARM lists them)
//! and a `now` passed in, it finds the dependent pipelines ([`graph`]) and each trigger's next run
//! ([`recurrence`], with Windows zone names mapped by [`windows_zones`]). [`attach`] is the edge: it reads
//! those four collections (one paged LIST each) only for factories with a target that needs attention, so
//! a run where all is well costs no extra request.

pub mod graph;
pub mod recurrence;
pub mod windows_zones;

use crate::azure::arm::ArmClient;
use crate::azure::operations::FactoryCollection;
use crate::report::{
    Finding, FindingCode, Impact, Owner, Report, Severity, Target, TargetKind, TriggerImpact,
};
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;

/// How many factories have their authoring collections read at once.
const CONCURRENCY: usize = 4;

/// The authoring side of one factory, as ARM lists it.
#[derive(Debug, Clone, Default)]
pub struct Authoring {
    pub datasets: Vec<Value>,
    pub pipelines: Vec<Value>,
    pub data_flows: Vec<Value>,
    pub triggers: Vec<Value>,
}

/// The linked services whose breakage a target stands for: itself, or for a credential the linked
/// services that use it.
fn linked_services_of(target: &Target) -> Vec<&str> {
    match target.kind {
        TargetKind::Credential => target.used_by.iter().map(String::as_str).collect(),
        _ => vec![target.name.as_str()],
    }
}

/// What breaks in one factory when `linked_services` break, and when it next runs.
pub fn impact(authoring: &Authoring, linked_services: &[&str], now: Timestamp) -> Impact {
    let dependents = graph::dependents(
        linked_services,
        &authoring.datasets,
        &authoring.pipelines,
        &authoring.data_flows,
    );
    let mut triggers: Vec<(Option<Timestamp>, TriggerImpact)> = Vec::new();
    for trigger in &authoring.triggers {
        let started = graph::trigger_pipelines(trigger);
        let mut pipelines: Vec<String> = dependents
            .pipelines
            .iter()
            .filter(|p| started.contains(&p.to_ascii_lowercase()))
            .cloned()
            .collect();
        if pipelines.is_empty() {
            continue;
        }
        pipelines.sort_by_key(|p| p.to_ascii_lowercase());
        let properties = trigger.get("properties").unwrap_or(&Value::Null);
        let trigger_type = properties
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();
        let state = properties
            .get("runtimeState")
            .and_then(Value::as_str)
            .unwrap_or("Stopped")
            .to_string();
        let (next, note) = next_run(&trigger_type, &state, properties, now);
        triggers.push((
            next,
            TriggerImpact {
                name: trigger
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                trigger_type,
                state,
                next_run: next.map(|t| t.to_string()),
                pipelines,
                note,
            },
        ));
    }
    // Soonest first; triggers without a next run after them, by name.
    triggers.sort_by(|(a, ta), (b, tb)| {
        (a.is_none(), a, ta.name.to_ascii_lowercase()).cmp(&(
            b.is_none(),
            b,
            tb.name.to_ascii_lowercase(),
        ))
    });
    let next = triggers.iter().filter_map(|(t, _)| *t).min();
    Impact {
        pipelines: dependents.pipelines,
        triggers: triggers.into_iter().map(|(_, t)| t).collect(),
        next_run: next.map(|t| t.to_string()),
        datasets: dependents.datasets,
        data_flows: dependents.data_flows,
    }
}

/// A trigger's next run, or why it has none.
fn next_run(
    trigger_type: &str,
    state: &str,
    properties: &Value,
    now: Timestamp,
) -> (Option<Timestamp>, Option<String>) {
    if !state.eq_ignore_ascii_case("Started") {
        return (
            None,
            Some(format!("{state}: it starts nothing until it is started")),
        );
    }
    let type_properties = properties.get("typeProperties").unwrap_or(&Value::Null);
    let evaluated = match trigger_type {
        "ScheduleTrigger" => recurrence::schedule_next_run(
            type_properties.get("recurrence").unwrap_or(&Value::Null),
            now,
        ),
        "TumblingWindowTrigger" => recurrence::tumbling_next_run(type_properties, now),
        "BlobEventsTrigger" | "CustomEventsTrigger" => {
            return (
                None,
                Some("event trigger: runs when an event arrives, not on a clock".into()),
            );
        }
        other => Err(format!("a {other} has no clock this product can evaluate")),
    };
    match evaluated {
        Ok(Some(next)) => (Some(next), None),
        Ok(None) => (None, Some("its end time has passed".into())),
        Err(why) => (None, Some(format!("next run unknown: {why}"))),
    }
}

/// Reads the authoring collections of every factory with a target that needs attention and sets those
/// targets' `impact`. A factory whose collections cannot be read gets a warning finding and its targets a
/// note `impactNotRead`: the rotation itself is complete, so this is not a run error.
pub async fn attach(arm: &ArmClient, report: &mut Report, now: Timestamp) {
    let factories = factories_to_read(report);
    if factories.is_empty() {
        return;
    }
    let read: BTreeMap<String, (String, AuthoringRead)> = futures::stream::iter(factories)
        .map(|(key, id)| async move {
            let result = read_authoring(arm, &id).await;
            (key, (id, result))
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    set_impacts(report, read, now);
}

/// The factories (lower-cased id → id) whose authoring collections the blast radius needs: those holding
/// a target that [`Target::needs_attention`], and no other.
fn factories_to_read(report: &Report) -> BTreeMap<String, String> {
    let mut factories = BTreeMap::new();
    for target in report.targets.iter().filter(|t| t.needs_attention()) {
        // Only a Data Factory has pipelines and triggers to read; the platform was set at discovery.
        if target.platform == crate::model::Platform::DataFactory {
            factories
                .entry(target.factory.to_ascii_lowercase())
                .or_insert_with(|| target.factory.clone());
        }
    }
    factories
}

/// Sets the impact of exactly the targets that need attention, from what was read of their factories.
fn set_impacts(
    report: &mut Report,
    read: BTreeMap<String, (String, AuthoringRead)>,
    now: Timestamp,
) {
    for target in report.targets.iter_mut().filter(|t| t.needs_attention()) {
        match read.get(&target.factory.to_ascii_lowercase()) {
            Some((_, Ok(authoring))) => {
                target.impact = Some(impact(authoring, &linked_services_of(target), now));
            }
            Some((_, Err(_))) => target.notes.push(crate::report::Note::ImpactNotRead),
            None => {}
        }
    }
    for (id, result) in read.into_values() {
        if let Err(message) = result {
            report.findings.push(Finding {
                code: FindingCode::ImpactNotRead,
                severity: Severity::Warning,
                message: format!(
                    "Could not read the factory's pipelines and triggers, so the report cannot say what the broken linked services stop: {message}"
                ),
                subject: Some(id),
                vault_url: None,
                fix: vec![
                    "Grant the product's identity read access to the factory's datasets, pipelines, data flows and triggers (the custom role in infra/).".into(),
                ],
                owner: Owner::PlatformOwner,
            });
        }
    }
}

/// A factory's authoring collections, or why they could not be read.
type AuthoringRead = Result<Authoring, String>;

async fn read_authoring(arm: &ArmClient, factory_id: &str) -> Result<Authoring, String> {
    let list = |collection| async move {
        arm.list_factory_collection(factory_id, collection)
            .await
            .map_err(|e| e.to_string())
    };
    Ok(Authoring {
        datasets: list(FactoryCollection::Datasets).await?,
        pipelines: list(FactoryCollection::Pipelines).await?,
        data_flows: list(FactoryCollection::DataFlows).await?,
        triggers: list(FactoryCollection::Triggers).await?,
    })
}

#[cfg(test)]
mod tests;
