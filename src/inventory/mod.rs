//! Pure: the audit's inventory — every Key Vault reference in scope, by secret, for the people who own the
//! secrets and the estate.
//!
//! One entry per (vault URL, secret): the secret's newest version with its dates (from Key Vault metadata,
//! never a value), and every consumer with the verdict a rotation of that secret would get: linked services
//! and credentials of factories and Synapse workspaces, App Service app settings and connection strings
//! (sites and slots), and API Management named values backed by Key Vault. Findings say what
//! is wrong or about to go wrong — expired, expiring, disabled, pinned, dangling, unreachable by rotation,
//! unheard — each with its cause, the fix and who must act. Nothing here talks to Azure: [`crate::audit`]
//! lists the holders and the versions and hands them to [`scan_snapshot`] and [`assemble`].
//!
//! A vault is its name and its cloud's DNS suffix: `kv.vault.azure.net` and `kv.vault.azure.cn` are two
//! vaults. A reference to a vault in another cloud than the deployment's is listed under its own URL and is
//! never looked up in the deployment's cloud.

pub mod csv;
pub mod markdown;
pub mod text;

use crate::azure::keyvault::VersionMetadata;
use crate::config::ExpiryThresholds;
use crate::model::{Platform, Snapshot};
use crate::plan::{self, FactorySnapshot, SecretRef};
pub use crate::report::{Finding, FindingCode, Owner, Severity};
use crate::report::{RunError, TargetKind, Trigger, Verdict, rfc3339};
use crate::scan::{self, FactoryIndex, KEY_VAULT_SUFFIXES, Resolved};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The `schema` of an inventory document; `docs/inventory.schema.json` describes it.
pub const SCHEMA: &str = "adf-secret-refresh/inventory/v1";

const DAY: i64 = 86_400;

/// The inventory document the audit writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub schema: String,
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The ARM scopes read.
    pub scope: Vec<String>,
    /// Whether every collection in scope was read to its end and every secret's metadata was read or
    /// explained by a finding.
    pub complete: bool,
    pub errors: Vec<RunError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    pub thresholds: Thresholds,
    pub summary: Summary,
    pub secrets: Vec<SecretEntry>,
    pub findings: Vec<Finding>,
    /// What each notification channel did with this inventory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::report::NotificationOutcome>,
}

/// The expiry thresholds the findings were computed with, in days.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub warning_days: u32,
    pub critical_days: u32,
}

impl From<ExpiryThresholds> for Thresholds {
    fn from(t: ExpiryThresholds) -> Self {
        Thresholds {
            warning_days: t.warning,
            critical_days: t.critical,
        }
    }
}

/// Counts for a reader's first glance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub factories_scanned: usize,
    /// Synapse workspaces read (their linked services and credentials are counted with the factories').
    #[serde(default)]
    pub workspaces_scanned: usize,
    /// App Service sites and deployment slots read, each slot counting as one.
    #[serde(default)]
    pub sites_scanned: usize,
    /// API Management services read.
    #[serde(default)]
    pub api_management_services_scanned: usize,
    pub linked_services_scanned: usize,
    pub credentials_scanned: usize,
    pub secrets: usize,
    pub references: usize,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
    /// Whether a person should look: any warning or critical finding, or an incomplete read.
    pub attention: bool,
}

/// One secret and everything that consumes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretEntry {
    pub vault: String,
    pub vault_url: String,
    pub secret: String,
    /// The newest version, which every unpinned reference resolves to; `null` when unknown.
    pub latest_version: Option<String>,
    /// Whether that version is enabled; `null` when unknown.
    pub enabled: Option<bool>,
    pub created: Option<String>,
    pub expires: Option<String>,
    pub not_before: Option<String>,
    /// The newest enabled version, when it is not the newest version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_enabled_version: Option<String>,
    /// What Key Vault said about the secret.
    pub status: SecretStatus,
    pub consumers: Vec<Consumer>,
}

impl SecretEntry {
    /// `<vault>/<secret>`, lower-cased: the subject of the secret's findings.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.vault, self.secret.to_ascii_lowercase())
    }
}

/// The state of a secret's newest version, or why it is not known.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SecretStatus {
    Ok,
    Expiring,
    Expired,
    NotYetValid,
    Disabled,
    /// The vault answered that the secret does not exist.
    NotFound,
    /// The vault does not exist (or does not resolve).
    VaultNotFound,
    /// The product's identity may not list the vault's secret versions.
    AccessDenied,
    /// The vault could not be read (an outage); see `errors`.
    Unreadable,
    /// The vault is in another cloud than the deployment's, so it was not read.
    OtherCloud,
}

/// One reference to a secret: a linked service, a credential, an App Service app setting or connection
/// string, or an API Management named value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    /// Where it lives, as discovery set it.
    #[serde(default)]
    pub platform: crate::model::Platform,
    /// The id of what holds it: factory, workspace, site or slot, API Management service.
    #[serde(default)]
    pub resource: String,
    pub kind: TargetKind,
    /// The factory (or workspace) resource id; empty on other platforms.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub factory: String,
    pub name: String,
    /// Where the reference sits, e.g. `typeProperties.password`; `credential:<name>/<path>` for a linked
    /// service that gets the secret through a credential; `appSettings/<name>`, `connectionStrings/<name>`
    /// or `properties.keyVault.secretIdentifier` on the other platforms.
    pub path: String,
    pub pinned_version: Option<String>,
    /// What a rotation of this secret would do with this consumer.
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_runtime: Option<String>,
    #[serde(default)]
    pub git_mode: bool,
}

/// A secret, identified as Key Vault identifies it: vault name and cloud suffix, secret name, without case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretKey {
    /// The vault name, lower-cased.
    pub vault: String,
    /// The vault's DNS suffix, e.g. `vault.azure.net`.
    pub suffix: String,
    /// The secret name, lower-cased (Key Vault names do not distinguish case).
    pub secret: String,
}

impl SecretKey {
    pub fn new(vault: &str, suffix: &str, secret: &str) -> SecretKey {
        SecretKey {
            vault: vault.to_ascii_lowercase(),
            suffix: suffix.to_ascii_lowercase(),
            secret: secret.to_ascii_lowercase(),
        }
    }
    pub fn vault_url(&self) -> String {
        vault_url(&self.vault, &self.suffix)
    }
    /// `<vault>/<secret>`, the subject of a secret's findings.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.vault, self.secret)
    }
}

fn vault_url(vault: &str, suffix: &str) -> String {
    format!("https://{vault}.{suffix}/")
}

/// What one holder (factory, workspace, site, slot or API Management service) holds, reduced to what the
/// inventory needs; the holder itself can then be dropped.
#[derive(Debug, Clone, Default)]
pub struct FactoryScan {
    /// The holder's resource id.
    pub factory: String,
    pub linked_services: usize,
    pub credentials: usize,
    pub uses: Vec<SecretUse>,
    pub findings: Vec<Finding>,
}

/// One consumer of one secret.
#[derive(Debug, Clone)]
pub struct SecretUse {
    pub key: SecretKey,
    /// The vault and secret names as the definition spells them.
    pub vault: String,
    pub secret: String,
    pub consumer: Consumer,
}

/// Finds every Key Vault reference of a factory, with the verdict a rotation of its secret would get, and
/// the factory's own findings (dangling stores, unresolved references, inline secrets, Git mode).
/// `home_suffix` is the deployment's Key Vault suffix, assumed when a store's URL does not name one.
pub fn scan_factory(factory: &FactorySnapshot, home_suffix: &str) -> FactoryScan {
    let git_mode = factory.git_mode();
    let index = FactoryIndex::new(&factory.linked_services);
    let mut scan = FactoryScan {
        factory: factory.id.clone(),
        linked_services: factory.linked_services.len(),
        credentials: factory.credentials.len(),
        ..FactoryScan::default()
    };
    if git_mode {
        scan.findings.push(Finding {
            code: FindingCode::GitMode,
            severity: Severity::Info,
            subject: Some(factory.id.clone()),
            vault_url: None,
            message: format!(
                "Factory {} is Git-integrated: a re-save after a rotation changes the live factory only, and the next publish from Git puts back what the collaboration branch holds.",
                short(&factory.id)
            ),
            fix: vec!["Keep Key Vault references unpinned in the collaboration branch, so that what Git publishes also resolves to the newest version.".into()],
            owner: Owner::PipelineOwner,
        });
    }
    let runtime_of: HashMap<String, Option<String>> = factory
        .linked_services
        .iter()
        .filter_map(|ls| {
            let name = ls.get("name")?.as_str()?.to_ascii_lowercase();
            Some((name, scan::connect_via(properties_of(ls))))
        })
        .collect();

    // Direct references, grouped by secret so that one plan per secret gives every verdict.
    let mut by_secret: BTreeMap<SecretKey, (String, String)> = BTreeMap::new();
    let mut direct: Vec<(SecretKey, TargetKind, String, scan::KeyVaultReference)> = Vec::new();
    let definitions = factory
        .credentials
        .iter()
        .map(|r| (TargetKind::Credential, r))
        .chain(
            factory
                .linked_services
                .iter()
                .map(|r| (TargetKind::LinkedService, r)),
        );
    for (kind, resource) in definitions {
        let Some(name) = resource.get("name").and_then(Value::as_str) else {
            continue;
        };
        let properties = properties_of(resource);
        let subject = definition_id(&factory.id, kind, name);
        let label = format!("{}/{name}", short(&factory.id));
        inline_findings(&mut scan.findings, properties, &subject, &label);
        for reference in scan::find_references(properties, &index) {
            if !index
                .linked_services
                .contains_key(&reference.store.to_ascii_lowercase())
            {
                scan.findings.push(Finding {
                    code: FindingCode::DanglingStore,
                    severity: Severity::Critical,
                    subject: Some(subject.clone()),
                    vault_url: None,
                    message: format!(
                        "{label} at {} names the Key Vault linked service `{}`, which the factory does not have: the reference cannot resolve.",
                        reference.path, reference.store
                    ),
                    fix: vec![format!(
                        "Create the AzureKeyVault linked service `{}` in the factory, or point the reference's store at an existing one.",
                        reference.store
                    )],
                    owner: Owner::PipelineOwner,
                });
                continue;
            }
            let (Some(vault), Some(secret)) =
                (reference.vault.value(), reference.secret_name.value())
            else {
                let why = [&reference.vault, &reference.secret_name]
                    .into_iter()
                    .find_map(|r| match r {
                        Resolved::Unresolved(why) => Some(why.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                scan.findings.push(Finding {
                    code: FindingCode::UnresolvedReference,
                    severity: Severity::Warning,
                    subject: Some(subject.clone()),
                    vault_url: None,
                    message: format!(
                        "{label} at {}: the reference cannot be resolved ({why}), so no rotation can be matched to it.",
                        reference.path
                    ),
                    fix: vec!["Give the parameter a default value or write the vault and secret name literally, so that the secret it uses can be known.".into()],
                    owner: Owner::PipelineOwner,
                });
                continue;
            };
            if !reference.vault.is_certain() || !reference.secret_name.is_certain() {
                scan.findings.push(Finding {
                    code: FindingCode::UnresolvedReference,
                    severity: Severity::Info,
                    subject: Some(subject.clone()),
                    vault_url: None,
                    message: format!(
                        "{label} at {} names {vault}/{secret} only through a parameter's default value; a caller may pass another at run time, so a rotation reports it and never re-saves it.",
                        reference.path
                    ),
                    fix: vec!["If the linked service always uses this secret, write its name literally.".into()],
                    owner: Owner::PipelineOwner,
                });
            }
            let suffix = store_suffix(&index, &reference.store).unwrap_or(home_suffix);
            let key = SecretKey::new(vault, suffix, secret);
            by_secret
                .entry(key.clone())
                .or_insert_with(|| (vault.to_string(), secret.to_string()));
            direct.push((key, kind, name.to_string(), reference));
        }
    }

    for (key, (vault, secret)) in &by_secret {
        let targets = plan::plan_factory(
            factory,
            &SecretRef {
                vault: vault.clone(),
                name: secret.clone(),
                version: None,
                vault_suffix: key.suffix.clone(),
            },
        );
        let verdict_of = |kind: TargetKind, name: &str| {
            targets
                .iter()
                .find(|t| t.kind == kind && t.name == name)
                .map_or(Verdict::Ambiguous, |t| t.verdict)
        };
        let consumer = |kind: TargetKind, name: &str, path: String, pinned: Option<String>| {
            let runtime = match kind {
                TargetKind::LinkedService => runtime_of
                    .get(&name.to_ascii_lowercase())
                    .cloned()
                    .flatten(),
                _ => None,
            };
            SecretUse {
                key: key.clone(),
                vault: vault.clone(),
                secret: secret.clone(),
                consumer: Consumer {
                    platform: factory.platform,
                    resource: factory.id.clone(),
                    kind,
                    factory: factory.id.clone(),
                    name: name.to_string(),
                    path,
                    pinned_version: pinned,
                    verdict: verdict_of(kind, name),
                    integration_runtime: runtime,
                    git_mode,
                },
            }
        };
        for (_, kind, name, reference) in direct.iter().filter(|(k, ..)| k == key) {
            scan.uses.push(consumer(
                *kind,
                name,
                reference.path.clone(),
                reference.secret_version.clone(),
            ));
        }
        // Linked services that get the secret through one of the factory's credentials.
        for target in targets.iter().filter(|t| t.via_credential.is_some()) {
            for reference in &target.references {
                let same = reference
                    .vault
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(&key.vault))
                    && reference
                        .secret_name
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(&key.secret))
                    && store_suffix(&index, &reference.store).unwrap_or(home_suffix) == key.suffix;
                if same {
                    scan.uses.push(consumer(
                        target.kind,
                        &target.name,
                        reference.path.clone(),
                        reference.secret_version.clone(),
                    ));
                }
            }
        }
    }
    scan
}

/// Finds every Key Vault reference a holder of consumers has, whatever its platform: the linked services and
/// credentials of a factory or workspace ([`scan_factory`]), the app settings and connection strings of an
/// App Service site or slot, the Key Vault-backed named values of an API Management service. Each gets the
/// verdict [`plan::plan_snapshot`] gives it; a reference whose vault or secret cannot be read is a finding.
pub fn scan_snapshot(snapshot: &Snapshot, home_suffix: &str) -> FactoryScan {
    match snapshot.platform {
        Platform::DataFactory | Platform::Synapse => scan_factory(snapshot, home_suffix),
        Platform::AppService | Platform::ApiManagement => scan_consumers(snapshot, home_suffix),
    }
}

/// The scan of a site, slot or API Management service: one use per readable reference, with the verdict one
/// plan per secret gives it, and an `unresolvedReference` finding per reference that cannot be read.
fn scan_consumers(holder: &Snapshot, home_suffix: &str) -> FactoryScan {
    let mut scan = FactoryScan {
        factory: holder.id.clone(),
        ..FactoryScan::default()
    };
    let references = plan::consumer_references(holder, home_suffix);
    let mut by_secret: BTreeMap<SecretKey, (String, String)> = BTreeMap::new();
    for reference in &references {
        match &reference.located {
            Ok(l) => {
                by_secret
                    .entry(SecretKey::new(&l.vault, &l.suffix, &l.secret))
                    .or_insert_with(|| (l.vault.clone(), l.secret.clone()));
            }
            Err(why) => scan.findings.push(Finding {
                code: FindingCode::UnresolvedReference,
                severity: Severity::Warning,
                subject: Some(definition_id(&holder.id, reference.kind, &reference.name)),
                vault_url: None,
                message: format!(
                    "{} at {}: the Key Vault reference cannot be read ({why}), so no rotation can be matched to it.",
                    consumer_label(holder.platform, &holder.id, &reference.name),
                    reference.path
                ),
                fix: vec![match holder.platform {
                    Platform::ApiManagement => "Set keyVault.secretIdentifier to the secret's URL, https://{vault}.vault.azure.net/secrets/{name}, without a version.".into(),
                    _ => "Write the reference as @Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/{name}) or @Microsoft.KeyVault(VaultName={vault};SecretName={name}), without a version.".into(),
                }],
                owner: Owner::AppOwner,
            }),
        }
    }
    for (key, (vault, secret)) in &by_secret {
        let targets = plan::plan_snapshot(
            holder,
            &SecretRef {
                vault: vault.clone(),
                name: secret.clone(),
                version: None,
                vault_suffix: key.suffix.clone(),
            },
            home_suffix,
        );
        for reference in &references {
            let Ok(l) = &reference.located else { continue };
            if SecretKey::new(&l.vault, &l.suffix, &l.secret) != *key {
                continue;
            }
            let verdict = targets
                .iter()
                .find(|t| t.kind == reference.kind && t.name == reference.name)
                .map_or(Verdict::Ambiguous, |t| t.verdict);
            scan.uses.push(SecretUse {
                key: key.clone(),
                vault: vault.clone(),
                secret: l.secret.clone(),
                consumer: Consumer {
                    platform: holder.platform,
                    resource: holder.id.clone(),
                    kind: reference.kind,
                    factory: String::new(),
                    name: reference.name.clone(),
                    path: reference.path.clone(),
                    pinned_version: l.version.clone(),
                    verdict,
                    integration_runtime: None,
                    git_mode: false,
                },
            });
        }
    }
    scan
}

fn properties_of(resource: &Value) -> &Value {
    resource.get("properties").unwrap_or(&Value::Null)
}

/// An inline secret no rotation can reach: held on a self-hosted runtime, or masked in the definition.
fn inline_findings(findings: &mut Vec<Finding>, properties: &Value, subject: &str, label: &str) {
    let inline = scan::inline_secret_paths(properties);
    if inline.is_empty() {
        return;
    }
    let runtime = scan::connect_via(properties);
    let on_runtime = properties
        .pointer("/typeProperties/encryptedCredential")
        .is_some_and(|c| !c.is_null());
    match runtime.filter(|_| on_runtime) {
        Some(runtime) => findings.push(Finding {
            code: FindingCode::SelfHostedCredential,
            severity: Severity::Warning,
            subject: Some(subject.to_string()),
            vault_url: None,
            message: format!(
                "{label} keeps its credential encrypted on the integration runtime `{runtime}`: a Key Vault rotation cannot reach it."
            ),
            fix: vec![
                "Move the credential into Key Vault and reference it from the linked service, or rotate it by hand on the runtime's machines.".into(),
            ],
            owner: Owner::RuntimeOwner,
        }),
        None => findings.push(Finding {
            code: FindingCode::InlineSecret,
            severity: Severity::Warning,
            subject: Some(subject.to_string()),
            vault_url: None,
            message: format!(
                "{label} holds an inline secret at {}: a Key Vault rotation cannot reach it, and the product never re-saves a definition that holds one.",
                inline.join(", ")
            ),
            fix: vec!["Replace the inline value with a Key Vault reference.".into()],
            owner: Owner::PipelineOwner,
        }),
    }
}

/// The cloud suffix of a store's `baseUrl`, when it names one (a parameterised URL usually still does).
fn store_suffix<'a>(index: &FactoryIndex<'a>, store: &str) -> Option<&'static str> {
    let base_url = index
        .linked_services
        .get(&store.to_ascii_lowercase())?
        .pointer("/properties/typeProperties/baseUrl")?;
    if let Some(host) = base_url.as_str().and_then(scan::parse_vault_url) {
        return KEY_VAULT_SUFFIXES
            .iter()
            .copied()
            .find(|s| *s == host.suffix);
    }
    let text = base_url.to_string().to_ascii_lowercase();
    KEY_VAULT_SUFFIXES
        .iter()
        .copied()
        .find(|s| text.contains(s))
}

/// The id a finding about one definition or setting names as its subject.
pub(crate) fn definition_id(factory: &str, kind: TargetKind, name: &str) -> String {
    let collection = match kind {
        TargetKind::Credential => "credentials",
        TargetKind::AppSetting => "config/configreferences/appsettings",
        TargetKind::ConnectionString => "config/configreferences/connectionstrings",
        TargetKind::NamedValue => "namedValues",
        TargetKind::LinkedService => "linkedservices",
    };
    format!("{factory}/{collection}/{name}")
}

/// The last segment of a resource id.
pub fn short(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// What people call a holder: the factory, workspace or API Management service's name, or `site/slot` for a
/// deployment slot (a slot's own name says little without its site's).
pub fn holder_label(platform: Platform, id: &str) -> String {
    if platform == Platform::AppService
        && let Some((site, slot)) = id.split_once("/slots/")
    {
        return format!("{}/{}", short(site), short(slot));
    }
    short(id).to_string()
}

/// `holder/name`, for messages.
fn consumer_label(platform: Platform, holder: &str, name: &str) -> String {
    format!("{}/{name}", holder_label(platform, holder))
}

impl Consumer {
    /// The id of what holds it; an inventory written before consumers carried `resource` has the factory.
    pub fn holder_id(&self) -> &str {
        if self.resource.is_empty() {
            &self.factory
        } else {
            &self.resource
        }
    }

    /// The holder as people call it, e.g. `adf-sales` or `app-web/staging`.
    pub fn holder(&self) -> String {
        holder_label(self.platform, self.holder_id())
    }
}

/// What Key Vault answered for one secret's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    Versions(Vec<VersionMetadata>),
    SecretNotFound,
    VaultNotFound,
    /// The identity may not list the vault's secrets; Key Vault's message.
    AccessDenied(String),
    /// An outage or another error; its message.
    Unreadable(String),
}

/// What the findings are judged against.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Unix seconds.
    pub now: i64,
    pub thresholds: ExpiryThresholds,
    /// The deployment's Key Vault suffix: vaults under another are in another cloud.
    pub home_suffix: String,
    /// The vault names whose rotations the deployment hears, when known (`ADF_REFRESH_VAULTS`).
    pub covered_vaults: Option<Vec<String>>,
}

impl Assessment {
    /// Whether the deployment reads this vault at all: only vaults of its own cloud.
    pub fn reads(&self, key: &SecretKey) -> bool {
        key.suffix == self.home_suffix
    }
}

/// The secrets (ordered by urgency) and the findings (most severe first), from the factories' scans and
/// the metadata read for each secret the deployment [`Assessment::reads`].
pub fn assemble(
    scans: Vec<FactoryScan>,
    metadata: &HashMap<SecretKey, Metadata>,
    assessment: &Assessment,
) -> (Vec<SecretEntry>, Vec<Finding>) {
    let mut findings = Vec::new();
    // Per secret: how each spelling of its name is used (the most used one names it), and its consumers.
    type Spellings = BTreeMap<String, usize>;
    let mut grouped: BTreeMap<SecretKey, (Spellings, Vec<Consumer>)> = BTreeMap::new();
    for scan in scans {
        findings.extend(scan.findings);
        for secret_use in scan.uses {
            let (spellings, consumers) = grouped.entry(secret_use.key).or_default();
            *spellings.entry(secret_use.secret).or_default() += 1;
            consumers.push(secret_use.consumer);
        }
    }

    // Per vault: what Key Vault answered for its secrets, and the platforms whose consumers name it.
    type VaultUse<'m> = (Vec<&'m Metadata>, BTreeSet<Platform>);
    let mut vaults: BTreeMap<(String, String), VaultUse> = BTreeMap::new();
    let mut entries: Vec<(Urgency, SecretEntry)> = Vec::new();
    for (key, (spellings, mut consumers)) in grouped {
        let secret = spellings
            .iter()
            .max_by(|(a, x), (b, y)| x.cmp(y).then_with(|| b.cmp(a)))
            .map_or_else(|| key.secret.clone(), |(name, _)| name.clone());
        consumers.sort_by(|a, b| {
            (
                a.platform,
                a.holder_id().to_ascii_lowercase(),
                &a.name,
                &a.path,
            )
                .cmp(&(
                    b.platform,
                    b.holder_id().to_ascii_lowercase(),
                    &b.name,
                    &b.path,
                ))
        });
        let known = if assessment.reads(&key) {
            metadata.get(&key)
        } else {
            None
        };
        let (answers, platforms) = vaults
            .entry((key.vault.clone(), key.suffix.clone()))
            .or_default();
        answers.extend(known);
        platforms.extend(consumers.iter().map(|c| c.platform));
        let (entry, urgency) =
            judge_secret(&key, secret, consumers, known, assessment, &mut findings);
        entries.push((urgency, entry));
    }
    for ((vault, suffix), (answers, platforms)) in &vaults {
        judge_vault(vault, suffix, answers, platforms, assessment, &mut findings);
    }
    entries.sort_by(|(a, x), (b, y)| {
        a.cmp(b)
            .then_with(|| x.vault_url.cmp(&y.vault_url))
            .then_with(|| {
                x.secret
                    .to_ascii_lowercase()
                    .cmp(&y.secret.to_ascii_lowercase())
            })
    });
    findings.sort_by(|a, b| {
        (
            std::cmp::Reverse(a.severity),
            &a.subject,
            a.code,
            &a.message,
        )
            .cmp(&(
                std::cmp::Reverse(b.severity),
                &b.subject,
                b.code,
                &b.message,
            ))
    });
    findings.dedup();
    (entries.into_iter().map(|(_, e)| e).collect(), findings)
}

/// How soon a secret needs someone: broken now, then expiring soonest, then stale pins, then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Urgency {
    Broken,
    Expiring(i64),
    PinnedStale,
    Rest,
}

fn judge_secret(
    key: &SecretKey,
    secret: String,
    consumers: Vec<Consumer>,
    metadata: Option<&Metadata>,
    a: &Assessment,
    findings: &mut Vec<Finding>,
) -> (SecretEntry, Urgency) {
    let subject = key.subject();
    let used_by = consumer_list(&consumers);
    let mut entry = SecretEntry {
        vault: key.vault.clone(),
        vault_url: key.vault_url(),
        secret,
        latest_version: None,
        enabled: None,
        created: None,
        expires: None,
        not_before: None,
        latest_enabled_version: None,
        status: SecretStatus::Unreadable,
        consumers: Vec::new(),
    };
    let mut urgency = Urgency::Rest;
    let versions = match metadata {
        None if !a.reads(key) => {
            entry.status = SecretStatus::OtherCloud;
            None
        }
        None => None,
        Some(Metadata::Versions(v)) if v.is_empty() => {
            entry.status = SecretStatus::NotFound;
            None
        }
        Some(Metadata::Versions(v)) => Some(v),
        Some(Metadata::SecretNotFound) => {
            entry.status = SecretStatus::NotFound;
            None
        }
        Some(Metadata::VaultNotFound) => {
            entry.status = SecretStatus::VaultNotFound;
            urgency = Urgency::Broken;
            None
        }
        Some(Metadata::AccessDenied(_)) => {
            entry.status = SecretStatus::AccessDenied;
            None
        }
        Some(Metadata::Unreadable(_)) => None,
    };
    if entry.status == SecretStatus::NotFound {
        urgency = Urgency::Broken;
        findings.push(Finding {
            code: FindingCode::DanglingSecret,
            severity: Severity::Critical,
            subject: Some(subject.clone()),
            vault_url: Some(key.vault_url()),
            message: format!(
                "Secret {subject} does not exist in {}; {used_by} cannot resolve it.",
                key.vault_url()
            ),
            fix: vec![
                "Create the secret in the vault, or correct the secretName of the references that name it.".into(),
            ],
            owner: Owner::SecretOwner,
        });
    }
    if let Some(versions) = versions {
        let newest = versions
            .iter()
            .max_by_key(|v| v.created.unwrap_or(i64::MIN));
        let newest_enabled = versions
            .iter()
            .filter(|v| v.enabled != Some(false))
            .max_by_key(|v| v.created.unwrap_or(i64::MIN));
        if let Some(newest) = newest {
            entry.latest_version = Some(newest.version.clone());
            entry.enabled = newest.enabled;
            entry.created = newest.created.and_then(rfc3339);
            entry.expires = newest.expires.and_then(rfc3339);
            entry.not_before = newest.not_before.and_then(rfc3339);
            entry.status = SecretStatus::Ok;
            if newest_enabled.is_some_and(|e| e.version != newest.version) {
                entry.latest_enabled_version = newest_enabled.map(|e| e.version.clone());
            }
            urgency = judge_version(key, newest, &used_by, a, findings, &mut entry.status);
        }
        let stale = judge_pins(key, &consumers, versions, newest_enabled, a.now, findings);
        if stale && urgency == Urgency::Rest {
            urgency = Urgency::PinnedStale;
        }
    }
    entry.consumers = consumers;
    (entry, urgency)
}

/// Findings on the newest version, which every unpinned reference resolves to.
fn judge_version(
    key: &SecretKey,
    newest: &VersionMetadata,
    used_by: &str,
    a: &Assessment,
    findings: &mut Vec<Finding>,
    status: &mut SecretStatus,
) -> Urgency {
    let subject = key.subject();
    let now = a.now;
    if newest.enabled == Some(false) {
        *status = SecretStatus::Disabled;
        findings.push(Finding {
            code: FindingCode::LatestVersionDisabled,
            severity: Severity::Critical,
            subject: Some(subject.clone()),
            vault_url: Some(key.vault_url()),
            message: format!(
                "The newest version {} of {subject} is disabled: Key Vault refuses to return it, so {used_by} cannot resolve the secret.",
                newest.version
            ),
            fix: vec!["Enable that version, or create a new enabled version of the secret.".into()],
            owner: Owner::SecretOwner,
        });
        return Urgency::Broken;
    }
    let mut urgency = Urgency::Rest;
    if let Some(nbf) = newest.not_before.filter(|nbf| *nbf > now) {
        *status = SecretStatus::NotYetValid;
        findings.push(Finding {
            code: FindingCode::SecretNotYetValid,
            severity: Severity::Warning,
            subject: Some(subject.clone()),
            vault_url: Some(key.vault_url()),
            message: format!(
                "The newest version {} of {subject} is not valid before {}, yet {used_by} already resolve to it.",
                newest.version,
                rfc3339(nbf).unwrap_or_default()
            ),
            fix: vec!["If the new value is not in use yet, set its activation date to now, or keep the previous value current until then.".into()],
            owner: Owner::SecretOwner,
        });
    }
    if let Some(exp) = newest.expires {
        let when = rfc3339(exp).unwrap_or_default();
        if exp <= now {
            *status = SecretStatus::Expired;
            urgency = Urgency::Broken;
            findings.push(Finding {
                code: FindingCode::SecretExpired,
                severity: Severity::Critical,
                subject: Some(subject.clone()),
                vault_url: Some(key.vault_url()),
                message: format!(
                    "Secret {subject} expired at {when}; {used_by} rely on it."
                ),
                fix: vec![
                    "Renew the credential at its source, store the new value as a new version of the secret, and the product refreshes its consumers.".into(),
                ],
                owner: Owner::SecretOwner,
            });
        } else {
            let left = exp - now;
            let severity = if left <= i64::from(a.thresholds.critical) * DAY {
                Some(Severity::Critical)
            } else if left <= i64::from(a.thresholds.warning) * DAY {
                Some(Severity::Warning)
            } else {
                None
            };
            if let Some(severity) = severity {
                if *status == SecretStatus::Ok {
                    *status = SecretStatus::Expiring;
                }
                urgency = Urgency::Expiring(exp);
                findings.push(Finding {
                    code: FindingCode::SecretExpiring,
                    severity,
                    subject: Some(subject.clone()),
                    vault_url: Some(key.vault_url()),
                    message: format!(
                        "Secret {subject} expires at {when} (in {}); {used_by} rely on it.",
                        describe_duration(left)
                    ),
                    fix: vec![format!(
                        "Renew the credential at its source and store the new value as a new version of the secret before {when}; the product then refreshes its consumers."
                    )],
                    owner: Owner::SecretOwner,
                });
            }
        }
    }
    urgency
}

/// Findings on references pinned to a version other than the newest enabled one; whether any is stale.
fn judge_pins(
    key: &SecretKey,
    consumers: &[Consumer],
    versions: &[VersionMetadata],
    newest_enabled: Option<&VersionMetadata>,
    now: i64,
    findings: &mut Vec<Finding>,
) -> bool {
    let subject = key.subject();
    let mut stale = false;
    for consumer in consumers {
        let Some(pinned) = &consumer.pinned_version else {
            continue;
        };
        if newest_enabled.is_some_and(|v| v.version.eq_ignore_ascii_case(pinned)) {
            continue;
        }
        stale = true;
        let version = versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(pinned));
        let (severity, state) = match version {
            None => (Severity::Critical, "which does not exist"),
            Some(v) if v.enabled == Some(false) => (Severity::Critical, "which is disabled"),
            Some(v) if v.expires.is_some_and(|e| e <= now) => {
                (Severity::Critical, "which has expired")
            }
            Some(_) => (Severity::Warning, "an older one"),
        };
        let newest = newest_enabled.map_or("none is enabled".to_string(), |v| {
            format!("the newest enabled is {}", v.version)
        });
        findings.push(Finding {
            code: FindingCode::PinnedToOldVersion,
            severity,
            subject: Some(subject.clone()),
            vault_url: Some(key.vault_url()),
            message: format!(
                "{} at {} pins {subject} to version {pinned}, {state}; {newest}. A rotation never reaches a pinned reference.",
                consumer_label(consumer.platform, consumer.holder_id(), &consumer.name),
                consumer.path
            ),
            fix: vec![match consumer.platform {
                Platform::DataFactory | Platform::Synapse => "Remove secretVersion from the reference so that it follows the newest version (in the collaboration branch too, for a Git-integrated factory).".into(),
                Platform::AppService => "Remove the version from the Key Vault reference (SecretVersion, or the last segment of SecretUri) so that the app follows the newest version.".into(),
                Platform::ApiManagement => "Remove the version from the named value's keyVault.secretIdentifier so that API Management follows the newest version.".into(),
            }],
            owner: if consumer.platform.holds_definitions() {
                Owner::PipelineOwner
            } else {
                Owner::AppOwner
            },
        });
    }
    stale
}

/// Vault-level findings: dangling, access denied, not covered by the deployment.
fn judge_vault(
    vault: &str,
    suffix: &str,
    answers: &[&Metadata],
    platforms: &BTreeSet<Platform>,
    a: &Assessment,
    findings: &mut Vec<Finding>,
) {
    let url = vault_url(vault, suffix);
    // Where the vault is named, for the fix: each platform spells a reference its own way.
    let named_in: Vec<&str> = platforms
        .iter()
        .map(|p| match p {
            Platform::DataFactory | Platform::Synapse => {
                "the baseUrl of the AzureKeyVault linked services that name it"
            }
            Platform::AppService => {
                "the SecretUri or VaultName of the App Service references that name it"
            }
            Platform::ApiManagement => {
                "the keyVault.secretIdentifier of the named values that name it"
            }
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let named_in = if named_in.is_empty() {
        "the references that name it".to_string()
    } else {
        named_in.join(", and ")
    };
    let who = if platforms.iter().all(|p| p.holds_definitions()) {
        "ADF"
    } else {
        "A consumer in scope"
    };
    if answers.iter().any(|m| matches!(m, Metadata::VaultNotFound)) {
        findings.push(Finding {
            code: FindingCode::DanglingVault,
            severity: Severity::Critical,
            subject: Some(url.clone()),
            vault_url: Some(url.clone()),
            message: format!(
                "Vault {url} does not exist (or its name does not resolve): every reference to it fails."
            ),
            fix: vec![format!("Correct {named_in}, or recover the vault if it was deleted.")],
            owner: Owner::SecretOwner,
        });
    }
    if let Some(Metadata::AccessDenied(said)) = answers
        .iter()
        .find(|m| matches!(m, Metadata::AccessDenied(_)))
    {
        findings.push(Finding {
            code: FindingCode::VaultAccessDenied,
            severity: Severity::Warning,
            subject: Some(url.clone()),
            vault_url: Some(url.clone()),
            message: format!(
                "The product's identity may not list the secrets of {url}, so their expiry and versions are unknown ({}).",
                said.chars().take(200).collect::<String>()
            ),
            fix: vec![format!(
                "Assign the product's identity the 'Key Vault Reader' role on vault {vault} (metadata only, never values); with access policies, grant it List on secrets."
            )],
            owner: Owner::PlatformOwner,
        });
    }
    if suffix != a.home_suffix {
        findings.push(Finding {
            code: FindingCode::VaultNotCovered,
            severity: Severity::Warning,
            subject: Some(url.clone()),
            vault_url: Some(url.clone()),
            message: format!(
                "Vault {url} is in another cloud than this deployment ({}): its metadata was not read, and its rotations never reach this deployment.",
                a.home_suffix
            ),
            fix: vec![if platforms.iter().all(|p| p.holds_definitions()) {
                "Deploy the product in that vault's cloud as well, scoped to the factories that use it.".into()
            } else {
                "Deploy the product in that vault's cloud as well, scoped to the factories, sites and API Management services that use it.".into()
            }],
            owner: Owner::PlatformOwner,
        });
    } else if let Some(covered) = &a.covered_vaults
        && !covered.iter().any(|c| c.eq_ignore_ascii_case(vault))
    {
        findings.push(Finding {
            code: FindingCode::VaultNotCovered,
            severity: Severity::Warning,
            subject: Some(url.clone()),
            vault_url: Some(url.clone()),
            message: format!(
                "{who} references vault {url}, but this deployment does not hear its events (it is not in ADF_REFRESH_VAULTS): a rotation there would go unnoticed."
            ),
            fix: vec![format!(
                "Add the vault's resource id to the deployment's vaultIds (infra) so that an Event Grid subscription sends its events and {vault} joins ADF_REFRESH_VAULTS."
            )],
            owner: Owner::PlatformOwner,
        });
    }
}

/// `a/b, c/d and 3 more`, for messages.
fn consumer_list(consumers: &[Consumer]) -> String {
    let names: BTreeSet<String> = consumers
        .iter()
        .map(|c| consumer_label(c.platform, c.holder_id(), &c.name))
        .collect();
    let shown: Vec<&String> = names.iter().take(3).collect();
    let mut text = shown
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > shown.len() {
        text.push_str(&format!(" and {} more", names.len() - shown.len()));
    }
    if text.is_empty() {
        "its consumers".into()
    } else {
        text
    }
}

/// `3 days`, `5 hours`, for a positive number of seconds.
pub fn describe_duration(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds >= DAY {
        plural(seconds / DAY, "day")
    } else if seconds >= 3600 {
        plural(seconds / 3600, "hour")
    } else {
        plural((seconds / 60).max(1), "minute")
    }
}

impl Inventory {
    /// An empty inventory, started now.
    pub fn start(
        id: String,
        trigger: Option<Trigger>,
        scopes: &[crate::config::Scope],
        thresholds: ExpiryThresholds,
    ) -> Inventory {
        Inventory {
            schema: SCHEMA.into(),
            id,
            started_at: crate::report::now_rfc3339(),
            finished_at: None,
            scope: scopes.iter().map(|s| s.id().to_string()).collect(),
            complete: true,
            errors: Vec::new(),
            trigger,
            thresholds: thresholds.into(),
            summary: Summary::default(),
            secrets: Vec::new(),
            findings: Vec::new(),
            notifications: Vec::new(),
        }
    }

    /// Sets the counts and the finish time; `complete` is false if anything could not be read.
    pub fn finish(&mut self) {
        self.complete = self.errors.is_empty();
        let count = |s: Severity| self.findings.iter().filter(|f| f.severity == s).count();
        self.summary.secrets = self.secrets.len();
        self.summary.references = self.secrets.iter().map(|s| s.consumers.len()).sum();
        self.summary.critical = count(Severity::Critical);
        self.summary.warning = count(Severity::Warning);
        self.summary.info = count(Severity::Info);
        self.summary.attention =
            !self.complete || self.findings.iter().any(Finding::needs_attention);
        self.finished_at = Some(crate::report::now_rfc3339());
    }

    /// 1 when something could not be read, 2 when a finding needs a person, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.complete {
            1
        } else if self.summary.attention {
            2
        } else {
            0
        }
    }

    /// The findings about one secret or its vault.
    pub fn findings_for<'a>(
        &'a self,
        secret: &'a SecretEntry,
    ) -> impl Iterator<Item = &'a Finding> {
        let subject = secret.subject();
        self.findings.iter().filter(move |f| {
            f.vault_url.as_deref() == Some(secret.vault_url.as_str())
                && (f.is_about(&subject) || f.is_about(&secret.vault_url))
        })
    }

    /// The most severe finding's severity, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

#[cfg(test)]
mod tests;
