//! Observe: one discovery stream for every platform. Lists the holders of Key Vault consumers in the configured
//! scopes (factories, Synapse workspaces, web apps and their slots, API Management services), then each one's
//! collections, every collection read to its end or reported.
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
pub mod synapse;

use crate::azure::arm::{ArmClient, ArmError, Listed};
use crate::azure::operations::{self, ArmOperation};
use crate::azure::resource_id::ResourceId;
use crate::config::Scope;
use crate::model::{Platform, Platforms, Snapshot};
use crate::report::{Report, RunError};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
pub use synapse::SynapseAccess;

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
    /// Whether discovery holds an App Service reference or a named value, whose Key Vault reference is the text
    /// at `pointer`: every one for an inventory; for a rotation, those that name the secret and those whose
    /// reference cannot be read (planning reports them as ambiguous).
    pub fn keeps_consumer(&self, item: &Value, pointer: &str) -> bool {
        let Some(reference) = item.pointer(pointer).and_then(Value::as_str) else {
            return false;
        };
        match self {
            Keep::KeyVault => true,
            Keep::Secret(name) => {
                reference
                    .to_ascii_lowercase()
                    .contains(&name.to_ascii_lowercase())
                    || crate::scan::parse_secret_identifier(reference).is_err()
                        && crate::scan::parse_app_service_reference(reference, "")
                            .is_none_or(|parsed| parsed.is_err())
            }
        }
    }

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

/// The clients discovery and acting need: ARM for every holder, and the Synapse development endpoints.
#[derive(Clone)]
pub struct Clients {
    pub arm: ArmClient,
    pub synapse: SynapseAccess,
}

impl Clients {
    /// The same clients, bounded by a run's deadline.
    pub fn with_deadline(&self, deadline: Option<tokio::time::Instant>) -> Clients {
        Clients {
            arm: self.arm.clone().with_deadline(deadline),
            synapse: self.synapse.with_deadline(deadline),
        }
    }
}

/// How much discovery listed, whether it held on to it or not: the run's `summary` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Scanned {
    pub factories: usize,
    pub workspaces: usize,
    /// Sites and deployment slots, each slot counting as one.
    pub sites: usize,
    pub api_management_services: usize,
    pub linked_services: usize,
    pub credentials: usize,
}

impl Scanned {
    /// Adds these counts to a report's summary.
    pub fn add_to(&self, summary: &mut crate::report::Summary) {
        summary.factories_scanned += self.factories;
        summary.workspaces_scanned += self.workspaces;
        summary.sites_scanned += self.sites;
        summary.api_management_services_scanned += self.api_management_services;
        summary.linked_services_scanned += self.linked_services;
        summary.credentials_scanned += self.credentials;
    }

    fn add(&mut self, other: Scanned) {
        self.factories += other.factories;
        self.workspaces += other.workspaces;
        self.sites += other.sites;
        self.api_management_services += other.api_management_services;
        self.linked_services += other.linked_services;
        self.credentials += other.credentials;
    }
}

/// Lists every holder in scope on every chosen platform, then reads each one's collections (one LIST each, no
/// GETs), holding what an inventory needs ([`Keep::KeyVault`]). `concurrency` is the number of requests in
/// flight per subscription. The counts of everything listed go into `report.summary`.
pub async fn discover(
    clients: &Clients,
    scopes: &[Scope],
    platforms: &Platforms,
    concurrency: usize,
    report: &mut Report,
) -> Vec<Snapshot> {
    discover_kept(
        clients,
        scopes,
        platforms,
        concurrency,
        &Keep::KeyVault,
        report,
    )
    .await
}

/// [`discover`], holding only what `keep` accepts, sorted by id.
pub async fn discover_kept(
    clients: &Clients,
    scopes: &[Scope],
    platforms: &Platforms,
    concurrency: usize,
    keep: &Keep,
    report: &mut Report,
) -> Vec<Snapshot> {
    let mut snapshots = Vec::new();
    let scanned = discover_each(
        clients,
        scopes,
        platforms,
        concurrency,
        keep,
        report,
        &mut |_| {},
        &mut |s| snapshots.push(s),
    )
    .await;
    scanned.add_to(&mut report.summary);
    snapshots.sort_by_key(|s| s.id.to_lowercase());
    snapshots
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

/// The one discovery stream: every holder of every chosen platform in scope, each handed to `each` as soon as
/// it is read (in no particular order; a site comes with each of its slots), so that a caller can plan and act
/// on it while the rest are still being listed. `listed` is told how many holders are in scope once they are
/// listed (for progress). What could not be read goes into `report.errors`; the counts are returned.
#[allow(clippy::too_many_arguments)]
pub async fn discover_each(
    clients: &Clients,
    scopes: &[Scope],
    platforms: &Platforms,
    concurrency: usize,
    keep: &Keep,
    report: &mut Report,
    listed: &mut (dyn FnMut(usize) + Send),
    each: &mut (dyn FnMut(Snapshot) + Send),
) -> Scanned {
    let holders = list_holders(clients, scopes, platforms, report).await;
    listed(holders.len());
    let subscriptions = subscription_count(holders.iter().map(|h| h.id.as_str()));
    // Each holder has at most two listings in flight; enough holders at once to fill every subscription's
    // limit on requests in flight.
    let holders_at_once = (concurrency.max(1) * subscriptions).div_ceil(2).max(1);
    let mut results = futures::stream::iter(interleave_by_subscription(holders, |h| &h.id))
        .map(|holder| read_holder(clients, holder, keep))
        .buffer_unordered(holders_at_once);
    let mut scanned = Scanned::default();
    while let Some(result) = results.next().await {
        match result {
            Ok((snapshots, counts)) => {
                scanned.add(counts);
                snapshots.into_iter().for_each(&mut *each);
            }
            Err(e) => report.errors.push(e),
        }
    }
    scanned
}

/// One holder as its platform's listing gave it.
struct Holder {
    platform: Platform,
    id: String,
    resource: Value,
}

/// Where a platform's holders are listed below a subscription or resource group, and at which api-version.
fn holder_listing(platform: Platform) -> (ArmOperation, [&'static str; 3], &'static str) {
    match platform {
        Platform::DataFactory => (
            operations::LIST_FACTORIES,
            ["providers", "Microsoft.DataFactory", "factories"],
            operations::ADF_API_VERSION,
        ),
        Platform::Synapse => (
            operations::LIST_SYNAPSE_WORKSPACES,
            ["providers", "Microsoft.Synapse", "workspaces"],
            operations::SYNAPSE_WORKSPACES_API_VERSION,
        ),
        Platform::AppService => (
            operations::LIST_SITES,
            ["providers", "Microsoft.Web", "sites"],
            operations::WEB_API_VERSION,
        ),
        Platform::ApiManagement => (
            operations::LIST_API_MANAGEMENT_SERVICES,
            ["providers", "Microsoft.ApiManagement", "service"],
            operations::APIM_API_VERSION,
        ),
    }
}

/// The holders in scope on every chosen platform, each once, in no particular order. Only those inside a scope
/// are kept, whatever ARM returns; only what a run reads of each resource is kept.
async fn list_holders(
    clients: &Clients,
    scopes: &[Scope],
    platforms: &Platforms,
    report: &mut Report,
) -> Vec<Holder> {
    let arm = &clients.arm;
    let listings = futures::future::join_all(
        platforms
            .iter()
            .flat_map(|p| scopes.iter().map(move |s| (p, s)))
            .map(|(platform, scope)| async move {
                (platform, scope, list_in_scope(arm, platform, scope).await)
            }),
    )
    .await;
    let mut holders: BTreeMap<String, Holder> = BTreeMap::new();
    for (platform, scope, listing) in listings {
        let list = match listing {
            Ok(list) => list,
            Err(e) if holds_none(&e) => {
                tracing::debug!(scope = scope.id(), %platform, "the resource provider is not registered here: nothing to list");
                continue;
            }
            Err(e) => {
                let mut error = run_error("discovery", &e, Some(scope.id().to_string()));
                // Someone who may not read a whole platform can still run the others.
                if matches!(e, ArmError::Forbidden { .. }) {
                    error.message.push_str(&format!(
                        ". To leave {} out of the run, pass --platforms (ADF_REFRESH_PLATFORMS) without {}",
                        platform.label(),
                        platform.as_str()
                    ));
                }
                report.errors.push(error);
                continue;
            }
        };
        for resource in list {
            let Some(id) = resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                // A holder we cannot name is one we cannot read: say so, never skip it quietly.
                report.errors.push(RunError {
                    stage: "discovery".into(),
                    message: format!("ARM listed a {} resource without an id", platform.label()),
                    transient: true,
                    subject: Some(scope.id().to_string()),
                });
                continue;
            };
            // Never act outside the configured scopes, whatever ARM returns.
            if scopes.iter().any(|s| s.contains(&id)) {
                holders
                    .entry(ResourceId::parse(&id).map_or(id.clone(), |r| r.key()))
                    .or_insert_with(|| Holder {
                        platform,
                        resource: kept_resource(platform, &resource),
                        id,
                    });
            }
        }
    }
    holders.into_values().collect()
}

/// One platform's holders in one scope. A factory scope holds one factory and nothing else.
async fn list_in_scope(
    arm: &ArmClient,
    platform: Platform,
    scope: &Scope,
) -> Result<Vec<Value>, ArmError> {
    let scope_id = ResourceId::parse(scope.id()).map_err(|e| ArmError::InvalidId(e.to_string()))?;
    if scope_id.is_factory() {
        return match platform {
            Platform::DataFactory => arm.list_factories(scope.id()).await,
            _ => Ok(Vec::new()),
        };
    }
    let (operation, path, api_version) = holder_listing(platform);
    Ok(arm
        .list_kept_at(operation, &scope_id.join(&path), api_version, &|_| true)
        .await?
        .kept)
}

/// Whether a failed listing means the scope holds nothing of that kind: ARM answers
/// `MissingSubscriptionRegistration` when the resource provider is not registered in the subscription (Microsoft
/// Learn, "Resolve errors for resource provider registration"; the error body as in
/// Azure/azure-sdk-for-node#2305). A provider with resources cannot be unregistered, so such a subscription holds
/// none, and an estate without Synapse, App Service or API Management must not become an incomplete run.
fn holds_none(e: &ArmError) -> bool {
    matches!(e, ArmError::Rejected { code, .. } if code.eq_ignore_ascii_case("MissingSubscriptionRegistration"))
}

/// The parts of a holder's resource a run reads: for a factory its Git mode; for a workspace its endpoint and
/// Git mode; for a site its kind and identity; for a service its identity.
fn kept_resource(platform: Platform, resource: &Value) -> Value {
    let mut kept = Map::new();
    for key in ["id", "name", "location", "type", "kind", "identity"] {
        if let Some(value) = resource.get(key) {
            kept.insert(key.into(), value.clone());
        }
    }
    let properties = match platform {
        Platform::DataFactory => resource
            .pointer("/properties/repoConfiguration")
            .map(|repo| serde_json::json!({ "repoConfiguration": repo })),
        Platform::Synapse => resource.get("properties").cloned(),
        Platform::AppService | Platform::ApiManagement => None,
    };
    if let Some(properties) = properties {
        kept.insert("properties".into(), properties);
    }
    Value::Object(kept)
}

/// Reads one holder's collections: a factory's or workspace's linked services and credentials, a site's Key Vault
/// references and those of each of its slots, a service's named values. A holder whose collections could not
/// all be read to their end is an error, never an empty or shortened snapshot.
async fn read_holder(
    clients: &Clients,
    holder: Holder,
    keep: &Keep,
) -> Result<(Vec<Snapshot>, Scanned), RunError> {
    let id = holder.id.clone();
    let failed = |e: &ArmError| run_error("discovery", e, Some(id.clone()));
    let mut snapshot = Snapshot::new(holder.platform, holder.id.clone(), holder.resource);
    let arm = &clients.arm;
    match holder.platform {
        Platform::DataFactory => {
            let keeps = |resource: &Value| keep.keeps(resource);
            let (linked_services, credentials) = futures::join!(
                arm.list_linked_services_kept(&id, &keeps),
                arm.list_credentials_kept(&id, &keeps)
            );
            let linked_services = linked_services.map_err(|e| failed(&e))?;
            let credentials = match credentials {
                Ok(c) => c,
                // A factory without the credentials feature answers 404; it simply has none.
                Err(ArmError::NotFound { .. }) => Listed::default(),
                Err(e) => return Err(failed(&e)),
            };
            let scanned = Scanned {
                factories: 1,
                linked_services: linked_services.count,
                credentials: credentials.count,
                ..Scanned::default()
            };
            snapshot.linked_services = linked_services.kept;
            snapshot.credentials = credentials.kept;
            Ok((vec![snapshot], scanned))
        }
        Platform::Synapse => {
            let read = synapse::read(&clients.synapse, &snapshot.resource, &id).await?;
            let scanned = Scanned {
                workspaces: 1,
                linked_services: read.linked_services.len(),
                credentials: read.credentials.len(),
                ..Scanned::default()
            };
            snapshot.linked_services = read.linked_services;
            snapshot.credentials = read.credentials;
            Ok((vec![snapshot], scanned))
        }
        Platform::AppService => {
            let site =
                ResourceId::parse(&id).map_err(|e| failed(&ArmError::InvalidId(e.to_string())))?;
            let slots = arm
                .list_kept_at(
                    operations::LIST_SLOTS,
                    &site.join(&["slots"]),
                    operations::WEB_API_VERSION,
                    &|_| true,
                )
                .await
                .map_err(|e| failed(&e))?
                .kept;
            let mut snapshots = vec![snapshot];
            for slot in slots {
                let Some(slot_id) = slot.get("id").and_then(Value::as_str) else {
                    return Err(RunError {
                        stage: "discovery".into(),
                        message: "ARM listed a deployment slot without an id".into(),
                        transient: true,
                        subject: Some(id.clone()),
                    });
                };
                snapshots.push(Snapshot::new(
                    Platform::AppService,
                    slot_id,
                    kept_resource(Platform::AppService, &slot),
                ));
            }
            for snapshot in snapshots.iter_mut() {
                let holder = ResourceId::parse(&snapshot.id).map_err(|e| RunError {
                    stage: "discovery".into(),
                    message: e.to_string(),
                    transient: false,
                    subject: Some(snapshot.id.clone()),
                })?;
                let keeps = |item: &Value| keep.keeps_consumer(item, "/properties/reference");
                let list = |collection: &'static str| {
                    let id = holder.join(&["config", "configreferences", collection]);
                    let keeps = &keeps;
                    async move {
                        arm.list_kept_at(
                            operations::LIST_KEY_VAULT_REFERENCES,
                            &id,
                            operations::WEB_API_VERSION,
                            keeps,
                        )
                        .await
                    }
                };
                let (settings, strings) =
                    futures::join!(list("appsettings"), list("connectionstrings"));
                let subject = Some(snapshot.id.clone());
                snapshot.app_settings = settings
                    .map_err(|e| run_error("discovery", &e, subject.clone()))?
                    .kept;
                snapshot.connection_strings = strings
                    .map_err(|e| run_error("discovery", &e, subject))?
                    .kept;
            }
            let scanned = Scanned {
                sites: snapshots.len(),
                ..Scanned::default()
            };
            Ok((snapshots, scanned))
        }
        Platform::ApiManagement => {
            let service =
                ResourceId::parse(&id).map_err(|e| failed(&ArmError::InvalidId(e.to_string())))?;
            let keeps =
                |item: &Value| keep.keeps_consumer(item, "/properties/keyVault/secretIdentifier");
            snapshot.named_values = arm
                .list_kept_at(
                    operations::LIST_NAMED_VALUES,
                    &service.join(&["namedValues"]),
                    operations::APIM_API_VERSION,
                    &keeps,
                )
                .await
                .map_err(|e| failed(&e))?
                .kept;
            let scanned = Scanned {
                api_management_services: 1,
                ..Scanned::default()
            };
            Ok((vec![snapshot], scanned))
        }
    }
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

    fn rejected(status: u16, code: &str) -> super::ArmError {
        super::ArmError::Rejected {
            operation: "listSynapseWorkspaces",
            status,
            code: code.into(),
            message: "m".into(),
            body: Box::new(json!({})),
            request_id: None,
        }
    }

    #[test]
    fn an_unregistered_resource_provider_means_nothing_to_list_and_nothing_else_does() {
        assert!(super::holds_none(&rejected(
            409,
            "MissingSubscriptionRegistration"
        )));
        assert!(!super::holds_none(&rejected(
            400,
            "InvalidApiVersionParameter"
        )));
        assert!(!super::holds_none(&super::ArmError::NotFound {
            operation: "listSites",
            message: "m".into(),
            request_id: None,
        }));
    }

    #[test]
    fn a_rotation_keeps_the_app_references_that_may_name_its_secret() {
        let keep = Keep::Secret("sql-password".into());
        let item = |reference: &str| json!({"name": "S", "properties": {"reference": reference}});
        let pointer = "/properties/reference";
        assert!(keep.keeps_consumer(
            &item("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=SQL-Password)"),
            pointer
        ));
        assert!(!keep.keeps_consumer(
            &item("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=other)"),
            pointer
        ));
        assert!(keep.keeps_consumer(&item("@Microsoft.KeyVault(broken"), pointer));
        assert!(Keep::KeyVault.keeps_consumer(
            &item("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=other)"),
            pointer
        ));
        assert!(!keep.keeps_consumer(&json!({"name": "plain", "properties": {}}), pointer));
    }

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
