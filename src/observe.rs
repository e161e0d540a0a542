//! Observe: lists what ADF holds in the configured scopes, every collection read to its end or reported.
//!
//! Factories are listed per scope and kept only when they lie inside a scope, whatever ARM returns; each
//! factory's linked services and credentials are one listing each (no GETs). A listing that could not be read
//! completely is an error for that factory, never an empty or shortened snapshot.
//!
//! Memory does not grow with the estate: each page of a listing is scanned as it arrives and only the
//! definitions a run can need are held ([`Keep`]); the rest are counted and dropped at once. Factories are read
//! many at a time, interleaved across subscriptions; the ARM client caps the requests in flight per subscription
//! and its pacer keeps them under ARM's buckets.

pub mod cache;

use crate::azure::arm::{ArmClient, ArmError, Listed};
use crate::azure::resource_id::ResourceId;
use crate::config::Scope;
use crate::plan::FactorySnapshot;
use crate::report::{Report, RunError};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Which definitions discovery holds on to. Everything else is counted and dropped as its page is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// What an inventory of every secret needs: Key Vault stores, definitions with a Key Vault reference or an
    /// inline secret, and linked services that use a credential.
    KeyVault,
    /// What a rotation of one secret needs: Key Vault stores, definitions whose Key Vault reference may name
    /// this secret (by name, any case, or through an expression or parameter), and linked services that use a
    /// credential.
    Secret(String),
}

/// What one definition shows, for [`Keep::keeps`].
#[derive(Debug, Default)]
struct Signals {
    key_vault_store: bool,
    inline_secret: bool,
    uses_credential: bool,
    /// The `secretName` of each Key Vault reference, `None` when it is not a plain string.
    secret_names: Vec<Option<String>>,
}

impl Keep {
    /// Whether discovery holds `resource` (a linked service or a credential as listed).
    pub fn keeps(&self, resource: &Value) -> bool {
        let properties = resource.get("properties").unwrap_or(&Value::Null);
        let mut signals = Signals {
            key_vault_store: type_is(properties.as_object(), "AzureKeyVault"),
            ..Signals::default()
        };
        collect(properties, &mut signals);
        if signals.key_vault_store || signals.uses_credential {
            return true;
        }
        match self {
            Keep::KeyVault => signals.inline_secret || !signals.secret_names.is_empty(),
            Keep::Secret(name) => signals.secret_names.iter().any(|n| match n {
                // A name built from an expression or a parameter may resolve to this secret.
                Some(n) => n.eq_ignore_ascii_case(name) || n.contains('@'),
                None => true,
            }),
        }
    }
}

fn type_is(object: Option<&Map<String, Value>>, name: &str) -> bool {
    object
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(name))
}

fn collect(node: &Value, signals: &mut Signals) {
    match node {
        Value::Object(o) => {
            if type_is(Some(o), "AzureKeyVaultSecret") {
                signals.secret_names.push(
                    o.get("secretName")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                );
            } else if type_is(Some(o), "CredentialReference") {
                signals.uses_credential = true;
            } else if type_is(Some(o), "SecureString") {
                signals.inline_secret = true;
            }
            if o.get("encryptedCredential").is_some_and(|c| !c.is_null()) {
                signals.inline_secret = true;
            }
            for value in o.values() {
                collect(value, signals);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, signals)),
        Value::String(s) if s == crate::scan::MASK => signals.inline_secret = true,
        _ => {}
    }
}

/// Lists every factory in scope, then each factory's linked services and credentials (one LIST each, no GETs),
/// holding what an inventory needs ([`Keep::KeyVault`]). `concurrency` is the number of requests in flight per
/// subscription. The counts of everything listed go into `report.summary`.
pub async fn discover(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    discover_kept(arm, scopes, concurrency, &Keep::KeyVault, report).await
}

/// [`discover`], holding only what `keep` accepts.
pub async fn discover_kept(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    keep: &Keep,
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    let mut snapshots = Vec::new();
    discover_each(arm, scopes, concurrency, keep, report, &mut |s| {
        snapshots.push(s)
    })
    .await;
    snapshots.sort_by_key(|s| s.id.to_lowercase());
    snapshots
}

/// [`discover_kept`], handing each factory to `each` as soon as it is read (in no particular order), so that a
/// caller can plan and act on it while the rest are still being listed.
pub async fn discover_each(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    keep: &Keep,
    report: &mut Report,
    each: &mut (dyn FnMut(FactorySnapshot) + Send),
) {
    discover_each_counted(arm, scopes, concurrency, keep, report, &mut |_| {}, each).await
}

/// How many distinct subscriptions the ids lie in (at least one): ARM's limits are per subscription, so
/// this sizes how much work may run at once.
pub fn subscription_count<'a>(ids: impl IntoIterator<Item = &'a str>) -> usize {
    ids.into_iter()
        .filter_map(|id| {
            ResourceId::parse(id)
                .ok()?
                .subscription()
                .map(str::to_lowercase)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        .max(1)
}

/// [`discover_each`], telling `listed` how many factories are in scope once they are listed (for progress).
pub async fn discover_each_counted(
    arm: &ArmClient,
    scopes: &[Scope],
    concurrency: usize,
    keep: &Keep,
    report: &mut Report,
    listed: &mut (dyn FnMut(usize) + Send),
    each: &mut (dyn FnMut(FactorySnapshot) + Send),
) {
    let factories = list_factories(arm, scopes, report).await;
    listed(factories.len());
    let subscriptions = subscription_count(factories.iter().map(|f| f.id.as_str()));
    // Each factory has at most two listings in flight; enough factories at once to fill every subscription's
    // limit on requests in flight.
    let factories_at_once = (concurrency.max(1) * subscriptions).div_ceil(2).max(1);
    let keeps = |resource: &Value| keep.keeps(resource);
    let keeps = &keeps;
    let mut results = futures::stream::iter(interleave_by_subscription(factories, |f| &f.id))
        .map(|factory| async move { read_factory(arm, factory, keeps).await })
        .buffer_unordered(factories_at_once);
    while let Some(result) = results.next().await {
        match result {
            Ok((snapshot, linked_services, credentials)) => {
                report.summary.factories_scanned += 1;
                report.summary.linked_services_scanned += linked_services;
                report.summary.credentials_scanned += credentials;
                each(snapshot);
            }
            Err(e) => report.errors.push(e),
        }
    }
}

/// The factories in scope, each once, in no particular order. Only what a run reads of a factory resource is
/// kept: its id, name, location and whether it is Git-integrated.
async fn list_factories(
    arm: &ArmClient,
    scopes: &[Scope],
    report: &mut Report,
) -> Vec<FactorySnapshot> {
    let listings =
        futures::future::join_all(scopes.iter().map(|scope| arm.list_factories(scope.id()))).await;
    let mut factories: BTreeMap<String, FactorySnapshot> = BTreeMap::new();
    for (scope, listing) in scopes.iter().zip(listings) {
        let list = match listing {
            Ok(list) => list,
            Err(e) => {
                report
                    .errors
                    .push(run_error("discovery", &e, Some(scope.id().to_string())));
                continue;
            }
        };
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
                    .entry(ResourceId::parse(&id).map_or(id.clone(), |r| r.key()))
                    .or_insert_with(|| FactorySnapshot {
                        id,
                        resource: factory_resource(&factory),
                        linked_services: Vec::new(),
                        credentials: Vec::new(),
                    });
            }
        }
    }
    factories.into_values().collect()
}

/// The parts of a factory resource a run reads.
fn factory_resource(factory: &Value) -> Value {
    let mut kept = Map::new();
    for key in ["id", "name", "location", "type"] {
        if let Some(value) = factory.get(key) {
            kept.insert(key.into(), value.clone());
        }
    }
    if let Some(repo) = factory.pointer("/properties/repoConfiguration") {
        kept.insert(
            "properties".into(),
            serde_json::json!({ "repoConfiguration": repo }),
        );
    }
    Value::Object(kept)
}

/// One factory's linked services and credentials, both listings at once. Returns the snapshot and how many
/// linked services and credentials were listed.
async fn read_factory(
    arm: &ArmClient,
    mut factory: FactorySnapshot,
    keep: &(dyn Fn(&Value) -> bool + Sync),
) -> Result<(FactorySnapshot, usize, usize), RunError> {
    let id = factory.id.clone();
    let (linked_services, credentials) = futures::join!(
        arm.list_linked_services_kept(&id, keep),
        arm.list_credentials_kept(&id, keep)
    );
    let linked_services =
        linked_services.map_err(|e| run_error("discovery", &e, Some(id.clone())))?;
    let credentials = match credentials {
        Ok(c) => c,
        // A factory without the credentials feature answers 404; it simply has none.
        Err(ArmError::NotFound { .. }) => Listed::default(),
        Err(e) => return Err(run_error("discovery", &e, Some(id))),
    };
    factory.linked_services = linked_services.kept;
    factory.credentials = credentials.kept;
    Ok((factory, linked_services.count, credentials.count))
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
    use super::Keep;
    use serde_json::json;

    fn reference(secret: serde_json::Value) -> serde_json::Value {
        json!({"name": "ls", "properties": {"type": "AzureSqlDatabase", "typeProperties": {"password": {
            "type": "AzureKeyVaultSecret", "store": {"referenceName": "kv", "type": "LinkedServiceReference"},
            "secretName": secret}}}})
    }

    #[test]
    fn a_rotation_keeps_what_may_reference_its_secret_and_what_resolves_it() {
        let keep = Keep::Secret("sql-password".into());
        let store = json!({"name": "kv", "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://contoso-kv.vault.azure.net/"}}});
        assert!(keep.keeps(&store));
        assert!(keep.keeps(&reference(json!("SQL-Password"))));
        assert!(keep.keeps(&reference(json!("@{linkedService().name}"))));
        assert!(keep.keeps(&reference(json!({"type": "Expression", "value": "@x"}))));
        assert!(!keep.keeps(&reference(json!("other-secret"))));
        let via_credential = json!({"name": "ls", "properties": {"type": "AzureBlobFS", "typeProperties": {
            "credential": {"referenceName": "sp", "type": "CredentialReference"}}}});
        assert!(keep.keeps(&via_credential));
        let inline = json!({"name": "ls", "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "connectionString": {"type": "SecureString", "value": "**********"}}}});
        assert!(!keep.keeps(&inline));
        assert!(!keep.keeps(&json!({"name": "x"})));
    }

    #[test]
    fn an_inventory_keeps_every_key_vault_reference_and_inline_secret() {
        let keep = Keep::KeyVault;
        assert!(keep.keeps(&reference(json!("other-secret"))));
        let inline = json!({"name": "ls", "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "connectionString": {"type": "SecureString", "value": "**********"}}}});
        assert!(keep.keeps(&inline));
        let on_runtime = json!({"name": "ls", "properties": {"type": "SqlServer", "typeProperties": {
            "encryptedCredential": "ew0K"}}});
        assert!(keep.keeps(&on_runtime));
        let plain = json!({"name": "ls", "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "serviceEndpoint": "https://a.blob.core.windows.net"}}});
        assert!(!keep.keeps(&plain));
    }

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
