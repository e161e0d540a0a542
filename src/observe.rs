//! Observe: lists what ADF holds in the configured scopes, every collection read to its end or reported.
//!
//! Factories are listed per scope and kept only when they lie inside a scope, whatever ARM returns; each
//! factory's linked services and credentials are one listing each (no GETs). A listing that could not be read
//! completely is an error for that factory, never an empty or shortened snapshot.

use crate::azure::arm::{ArmClient, ArmError};
use crate::azure::resource_id::ResourceId;
use crate::config::Scope;
use crate::plan::FactorySnapshot;
use crate::report::{Report, RunError};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;

/// Lists every factory in scope, then each factory's linked services and credentials (one LIST each, no GETs).
pub async fn discover(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    let mut factories: BTreeMap<String, Value> = BTreeMap::new();
    for scope in scopes {
        match arm.list_factories(scope.id()).await {
            Ok(list) => {
                for factory in list {
                    let Some(id) = factory
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    else {
                        // A factory we cannot name is one we cannot read: say so, never skip it quietly.
                        report.errors.push(RunError {
                            stage: "discovery".into(),
                            message: "ARM listed a factory without an id".into(),
                            transient: true,
                            subject: Some(scope.id().to_string()),
                        });
                        continue;
                    };
                    // Never act outside the configured scopes, whatever ARM returns.
                    if scopes.iter().any(|s| s.contains(&id)) {
                        factories
                            .entry(ResourceId::parse(&id).map_or(id, |r| r.key()))
                            .or_insert(factory);
                    }
                }
            }
            Err(e) => report
                .errors
                .push(run_error("discovery", &e, Some(scope.id().to_string()))),
        }
    }
    let results: Vec<Result<FactorySnapshot, RunError>> = futures::stream::iter(
        interleave_by_subscription(factories.into_values().collect(), |f: &Value| {
            f.get("id").and_then(Value::as_str).unwrap_or_default()
        }),
    )
    .map(|resource| async move {
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let linked_services = arm
            .list_linked_services(&id)
            .await
            .map_err(|e| run_error("discovery", &e, Some(id.clone())))?;
        let credentials = match arm.list_credentials(&id).await {
            Ok(c) => c,
            // A factory without the credentials feature answers 404; it simply has none.
            Err(ArmError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(run_error("discovery", &e, Some(id.clone()))),
        };
        Ok(FactorySnapshot {
            id,
            resource,
            linked_services,
            credentials,
        })
    })
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    let mut snapshots = Vec::new();
    for r in results {
        match r {
            Ok(s) => snapshots.push(s),
            Err(e) => report.errors.push(e),
        }
    }
    snapshots.sort_by_key(|s| s.id.to_lowercase());
    snapshots
}

/// Orders work round-robin across subscriptions. ARM's limits are per subscription, so factories of one
/// subscription side by side would queue behind one bucket while the others' stay full.
pub fn interleave_by_subscription<T>(items: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut groups: BTreeMap<String, std::collections::VecDeque<T>> = BTreeMap::new();
    for item in items {
        let subscription = ResourceId::parse(id(&item))
            .ok()
            .and_then(|r| r.subscription().map(str::to_lowercase))
            .unwrap_or_default();
        groups.entry(subscription).or_default().push_back(item);
    }
    let mut out = Vec::new();
    while !groups.is_empty() {
        groups.retain(|_, queue| {
            if let Some(item) = queue.pop_front() {
                out.push(item);
            }
            !queue.is_empty()
        });
    }
    out
}

pub fn run_error(stage: &str, e: &ArmError, subject: Option<String>) -> RunError {
    RunError {
        stage: stage.into(),
        message: e.to_string(),
        transient: e.is_transient(),
        subject,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn work_alternates_between_subscriptions() {
        let ids = [
            "/subscriptions/a/x/1",
            "/subscriptions/a/x/2",
            "/subscriptions/a/x/3",
            "/subscriptions/b/x/1",
            "/subscriptions/c/x/1",
        ];
        let ordered = super::interleave_by_subscription(ids.to_vec(), |s| s);
        assert_eq!(
            ordered,
            [
                "/subscriptions/a/x/1",
                "/subscriptions/b/x/1",
                "/subscriptions/c/x/1",
                "/subscriptions/a/x/2",
                "/subscriptions/a/x/3"
            ]
        );
    }
}
