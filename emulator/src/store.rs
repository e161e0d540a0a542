//! The emulated estate: subscriptions, resource groups, factories with their linked services,
//! credentials and integration runtimes, and Key Vault vaults with secret versions. Parsed from the seed,
//! rendered in the exact ARM/Key Vault shapes, with ADF's masking of inline `SecureString` values.
//! The seed's `subscriptions[].resourceGroups[]` tree and the Key Vault secret identifier are read here for
//! every service.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub(crate) use crate::util::{new_etag, version_id};

/// What ADF returns in place of an inline secret.
pub(crate) const MASK: &str = "**********";
/// The only ADF management API version.
pub(crate) const API_VERSION: &str = "2018-06-01";

/// The two kinds of factory children that follow the same GET/LIST/PUT rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildKind {
    LinkedService,
    Credential,
}

impl ChildKind {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            ChildKind::LinkedService => "linkedservices",
            ChildKind::Credential => "credentials",
        }
    }

    pub(crate) fn resource_type(self) -> &'static str {
        match self {
            ChildKind::LinkedService => "Microsoft.DataFactory/factories/linkedservices",
            ChildKind::Credential => "Microsoft.DataFactory/factories/credentials",
        }
    }
}

/// How ADF's test connection answers for a linked service.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub(crate) enum TestScript {
    #[default]
    Success,
    Failure {
        message: String,
        #[serde(default)]
        code: Option<String>,
    },
    /// Fails until this linked service (or the credential it uses) has been PUT: a stale cached secret.
    FailUntilResaved {
        message: String,
        #[serde(default)]
        code: Option<String>,
    },
    /// The call itself is rejected with HTTP 400.
    Http400 { message: String },
}

/// A linked service or a credential.
#[derive(Clone, Debug)]
pub(crate) struct Child {
    pub name: String,
    /// The true properties, inline secret values included.
    pub properties: Value,
    pub etag: String,
    pub test: TestScript,
    pub resaved: bool,
    pub puts: u64,
    /// Shown next to masked values when the stored properties carry none of their own.
    pub encrypted_credential: String,
}

#[derive(Clone, Debug)]
pub(crate) struct IntegrationRuntime {
    pub name: String,
    pub properties: Value,
    pub state: Option<String>,
    pub interactive_authoring: Option<bool>,
    pub nodes: Option<Vec<Value>>,
    pub etag: String,
}

impl IntegrationRuntime {
    pub(crate) fn ir_type(&self) -> &str {
        self.properties
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("SelfHosted")
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Factory {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub create_time: String,
    pub etag: String,
    pub identity: Option<Value>,
    pub tags: Value,
    pub extra_properties: Map<String, Value>,
    pub repo_configuration: Option<Value>,
    pub linked_services: Vec<Child>,
    pub credentials: Vec<Child>,
    pub integration_runtimes: Vec<IntegrationRuntime>,
    /// Datasets, pipelines, data flows and triggers.
    pub authoring: crate::authoring::Authoring,
}

impl Factory {
    pub(crate) fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.DataFactory/factories/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    pub(crate) fn children(&self, kind: ChildKind) -> &Vec<Child> {
        match kind {
            ChildKind::LinkedService => &self.linked_services,
            ChildKind::Credential => &self.credentials,
        }
    }

    pub(crate) fn children_mut(&mut self, kind: ChildKind) -> &mut Vec<Child> {
        match kind {
            ChildKind::LinkedService => &mut self.linked_services,
            ChildKind::Credential => &mut self.credentials,
        }
    }

    pub(crate) fn child(&self, kind: ChildKind, name: &str) -> Option<&Child> {
        self.children(kind)
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn integration_runtime(&self, name: &str) -> Option<&IntegrationRuntime> {
        self.integration_runtimes
            .iter()
            .find(|ir| ir.name.eq_ignore_ascii_case(name))
    }

    /// The factory resource, shaped like `Factories_Get.json`.
    pub(crate) fn to_json(&self) -> Value {
        let mut properties = Map::new();
        properties.insert("provisioningState".into(), json!("Succeeded"));
        properties.insert("createTime".into(), json!(self.create_time));
        properties.insert("version".into(), json!(API_VERSION));
        for (key, value) in &self.extra_properties {
            properties.insert(key.clone(), value.clone());
        }
        if let Some(repo) = &self.repo_configuration {
            properties.insert("repoConfiguration".into(), repo.clone());
        }
        let mut factory = Map::new();
        factory.insert("name".into(), json!(self.name));
        if let Some(identity) = &self.identity {
            factory.insert("identity".into(), identity.clone());
        }
        factory.insert("id".into(), json!(self.id()));
        factory.insert("type".into(), json!("Microsoft.DataFactory/factories"));
        factory.insert("properties".into(), Value::Object(properties));
        factory.insert("eTag".into(), json!(format!("\"{}\"", self.etag)));
        factory.insert("location".into(), json!(self.location));
        factory.insert("tags".into(), self.tags.clone());
        Value::Object(factory)
    }

    /// A linked service or credential resource; `masked` applies ADF's masking of inline secrets.
    pub(crate) fn child_json(&self, kind: ChildKind, child: &Child, masked: bool) -> Value {
        let properties = if masked {
            mask(&child.properties, &child.encrypted_credential)
        } else {
            child.properties.clone()
        };
        json!({
            "id": format!("{}/{}/{}", self.id(), kind.segment(), child.name),
            "name": child.name,
            "type": kind.resource_type(),
            "properties": properties,
            "etag": child.etag,
        })
    }

    pub(crate) fn integration_runtime_json(&self, ir: &IntegrationRuntime) -> Value {
        json!({
            "id": format!("{}/integrationruntimes/{}", self.id(), ir.name),
            "name": ir.name,
            "type": "Microsoft.DataFactory/factories/integrationruntimes",
            "properties": ir.properties,
            "etag": ir.etag,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct SecretVersion {
    pub version: String,
    pub value: String,
    pub enabled: bool,
    pub created: i64,
    pub updated: i64,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl SecretVersion {
    /// Key Vault's `attributes` object (unix seconds; absent `nbf`/`exp` are left out).
    pub(crate) fn attributes(&self) -> Value {
        let mut attributes = Map::new();
        attributes.insert("enabled".into(), json!(self.enabled));
        if let Some(nbf) = self.nbf {
            attributes.insert("nbf".into(), json!(nbf));
        }
        if let Some(exp) = self.exp {
            attributes.insert("exp".into(), json!(exp));
        }
        attributes.insert("created".into(), json!(self.created));
        attributes.insert("updated".into(), json!(self.updated));
        attributes.insert("recoveryLevel".into(), json!("Recoverable+Purgeable"));
        attributes.insert("recoverableDays".into(), json!(90));
        Value::Object(attributes)
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Secret {
    pub name: String,
    pub versions: Vec<SecretVersion>,
}

impl Secret {
    pub(crate) fn version(&self, version: &str) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(version))
    }

    /// The current version: the most recently created (the last listed wins a tie).
    pub(crate) fn current(&self) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .enumerate()
            .max_by_key(|(i, v)| (v.created, *i))
            .map(|(_, v)| v)
    }

    /// The most recently created enabled version.
    pub(crate) fn latest_enabled(&self) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .enumerate()
            .filter(|(_, v)| v.enabled)
            .max_by_key(|(i, v)| (v.created, *i))
            .map(|(_, v)| v)
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Vault {
    pub name: String,
    pub forbidden: bool,
    pub secrets: Vec<Secret>,
}

impl Vault {
    pub(crate) fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// The public cloud's Key Vault DNS suffix: the only cloud this emulator's vaults live in.
const VAULT_SUFFIX: &str = "vault.azure.net";

/// A secret's vault, name and optional version, as an App Service reference or an API Management named
/// value names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SecretRef {
    pub vault: String,
    /// Whether the vault is in this emulator's cloud (`*.vault.azure.net`, or the `VaultName` form).
    pub this_cloud: bool,
    pub secret: String,
    pub version: Option<String>,
}

/// Reads a secret identifier, `{scheme}://{vault}.{suffix}/secrets/{name}[/{version}][/]`.
pub(crate) fn parse_secret_url(url: &url::Url) -> Option<SecretRef> {
    let host = url.host_str()?.to_ascii_lowercase();
    let (vault, suffix) = host.split_once('.')?;
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let (secret, version) = match segments.as_slice() {
        [secrets, name] if secrets.eq_ignore_ascii_case("secrets") => (*name, None),
        [secrets, name, version] if secrets.eq_ignore_ascii_case("secrets") => {
            (*name, Some((*version).to_owned()))
        }
        _ => return None,
    };
    Some(SecretRef {
        vault: vault.to_owned(),
        this_cloud: suffix == VAULT_SUFFIX,
        secret: secret.to_owned(),
        version,
    })
}

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub id: String,
    pub resource_groups: Vec<String>,
}

/// Why a factory could not be found.
pub(crate) enum Missing {
    Subscription,
    ResourceGroup,
    Factory,
}

/// The whole estate.
#[derive(Debug)]
pub(crate) struct Store {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub managed_identity_client_id: String,
    pub subscriptions: Vec<Subscription>,
    pub factories: Vec<Factory>,
    pub vaults: Vec<Vault>,
    /// Every inline secret value ever stored (a PUT may replace one; tests still grep for it).
    pub inline_secrets_seen: BTreeSet<String>,
    /// `sub/rg/name` (lowercase) → index in `factories`, for large estates.
    factory_index: HashMap<String, usize>,
}

fn factory_key(sub: &str, rg: &str, name: &str) -> String {
    format!("{sub}/{rg}/{name}").to_ascii_lowercase()
}

impl Store {
    pub(crate) fn from_seed(seed: &Value) -> Result<Self, String> {
        let doc: SeedDoc = serde_json::from_value(seed.clone()).map_err(|e| e.to_string())?;
        let mut store = Store {
            tenant_id: doc
                .tenant_id
                .unwrap_or_else(|| "00000000-0000-0000-0000-0000000000e1".into()),
            client_id: doc
                .client_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            client_secret: doc
                .client_secret
                .unwrap_or_else(|| crate::util::random_secret("emu~")),
            managed_identity_client_id: doc
                .managed_identity_client_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            subscriptions: Vec::new(),
            factories: Vec::new(),
            vaults: Vec::new(),
            inline_secrets_seen: BTreeSet::new(),
            factory_index: HashMap::new(),
        };
        for sub in doc.subscriptions {
            let mut resource_groups = Vec::new();
            for rg in sub.resource_groups {
                for factory in rg.resources {
                    let factory = build_factory(&sub.subscription_id, &rg.name, factory)?;
                    let key = factory_key(&sub.subscription_id, &rg.name, &factory.name);
                    if store.factory_index.contains_key(&key) {
                        return Err(format!("duplicate factory {}", factory.id()));
                    }
                    store.factory_index.insert(key, store.factories.len());
                    store.factories.push(factory);
                }
                resource_groups.push(rg.name);
            }
            store.subscriptions.push(Subscription {
                id: sub.subscription_id,
                resource_groups,
            });
        }
        for vault in doc.vaults {
            store.vaults.push(build_vault(vault)?);
        }
        let mut seen = BTreeSet::new();
        for factory in &store.factories {
            for child in factory.linked_services.iter().chain(&factory.credentials) {
                collect_secure_values(&child.properties, &mut seen);
            }
        }
        store.inline_secrets_seen = seen;
        Ok(store)
    }

    /// Finds a factory by subscription, resource group and name (all case-insensitive).
    pub(crate) fn find_factory(&self, sub: &str, rg: &str, name: &str) -> Result<usize, Missing> {
        let subscription = self.subscription(sub).ok_or(Missing::Subscription)?;
        if !subscription
            .resource_groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(rg))
        {
            return Err(Missing::ResourceGroup);
        }
        self.factory_index
            .get(&factory_key(sub, rg, name))
            .copied()
            .ok_or(Missing::Factory)
    }

    pub(crate) fn subscription(&self, sub: &str) -> Option<&Subscription> {
        self.subscriptions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(sub))
    }

    pub(crate) fn vault(&self, name: &str) -> Option<&Vault> {
        self.vaults
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// Creates a new current version of a secret (a rotation) with a random value, created at `now` (unix
    /// seconds); returns the new version id, or `None` when the vault or secret does not exist.
    pub(crate) fn rotate(&mut self, vault: &str, secret: &str, now: i64) -> Option<String> {
        let vault = self
            .vaults
            .iter_mut()
            .find(|v| v.name.eq_ignore_ascii_case(vault))?;
        let secret = vault
            .secrets
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(secret))?;
        let latest = secret.versions.iter().map(|v| v.created).max().unwrap_or(0);
        let version = uuid::Uuid::new_v4().simple().to_string();
        let created = now.max(latest + 1);
        secret.versions.push(SecretVersion {
            version: version.clone(),
            value: crate::util::random_secret("rotated-"),
            enabled: true,
            created,
            updated: created,
            nbf: None,
            exp: None,
            content_type: None,
        });
        Some(version)
    }

    /// The stored (unmasked) linked service, by factory resource id and name.
    pub(crate) fn linked_service_resource(&self, factory_id: &str, name: &str) -> Option<Value> {
        let factory_id = factory_id.trim_end_matches('/');
        let factory = self
            .factories
            .iter()
            .find(|f| f.id().eq_ignore_ascii_case(factory_id))?;
        let child = factory.child(ChildKind::LinkedService, name)?;
        Some(factory.child_json(ChildKind::LinkedService, child, false))
    }

    /// The full estate, true values included, for `state()` and `GET /_emulator/state`.
    pub(crate) fn to_state_json(&self) -> Value {
        let child_state = |child: &Child| {
            json!({
                "name": child.name,
                "properties": child.properties,
                "etag": child.etag,
                "resaved": child.resaved,
                "puts": child.puts,
                "test": child.test,
            })
        };
        let factories: Vec<Value> = self
            .factories
            .iter()
            .map(|f| {
                json!({
                    "id": f.id(),
                    "subscriptionId": f.subscription_id,
                    "resourceGroup": f.resource_group,
                    "name": f.name,
                    "location": f.location,
                    "eTag": f.etag,
                    "repoConfiguration": f.repo_configuration,
                    "linkedServices": f.linked_services.iter().map(child_state).collect::<Vec<_>>(),
                    "credentials": f.credentials.iter().map(child_state).collect::<Vec<_>>(),
                    "integrationRuntimes": f.integration_runtimes.iter().map(|ir| json!({
                        "name": ir.name,
                        "properties": ir.properties,
                        "state": ir.state,
                        "interactiveAuthoring": ir.interactive_authoring,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "tenantId": self.tenant_id,
            "clientId": self.client_id,
            "managedIdentityClientId": self.managed_identity_client_id,
            "subscriptions": self.subscriptions.iter().map(|s| json!({
                "subscriptionId": s.id,
                "resourceGroups": s.resource_groups,
            })).collect::<Vec<_>>(),
            "factories": factories,
            "vaults": self.vaults,
        })
    }

    /// Every secret value the estate holds (Key Vault values and inline values, past and present).
    pub(crate) fn secret_values(&self) -> BTreeSet<String> {
        let mut out = self.inline_secrets_seen.clone();
        for factory in &self.factories {
            for child in factory.linked_services.iter().chain(&factory.credentials) {
                collect_secure_values(&child.properties, &mut out);
            }
        }
        for vault in &self.vaults {
            for secret in &vault.secrets {
                for version in &secret.versions {
                    out.insert(version.value.clone());
                }
            }
        }
        out.retain(|v| !v.is_empty() && v != MASK);
        out
    }
}

/// Whether a value is ADF's inline secret object `{"type":"SecureString","value":…}`.
pub(crate) fn is_secure_string(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("SecureString")
        && value.get("value").is_some()
}

/// Returns the properties as ADF's GET shows them: every inline secret masked and, if there was one,
/// an `encryptedCredential` in `typeProperties`.
pub(crate) fn mask(properties: &Value, encrypted_credential: &str) -> Value {
    fn walk(value: &mut Value) -> bool {
        match value {
            Value::Object(map) => {
                if map.get("type").and_then(Value::as_str) == Some("SecureString")
                    && map.contains_key("value")
                {
                    map.insert("value".into(), json!(MASK));
                    return true;
                }
                let mut found = false;
                for v in map.values_mut() {
                    found |= walk(v);
                }
                found
            }
            Value::Array(items) => items.iter_mut().fold(false, |found, v| walk(v) | found),
            _ => false,
        }
    }
    let mut out = properties.clone();
    if walk(&mut out)
        && let Some(type_properties) = out.get_mut("typeProperties").and_then(Value::as_object_mut)
    {
        type_properties
            .entry("encryptedCredential")
            .or_insert_with(|| json!(encrypted_credential));
    }
    out
}

/// Whether the properties hold any inline secret.
pub(crate) fn has_secure_string(value: &Value) -> bool {
    match value {
        Value::Object(map) => is_secure_string(value) || map.values().any(has_secure_string),
        Value::Array(items) => items.iter().any(has_secure_string),
        _ => false,
    }
}

/// Collects the true values of every inline secret.
pub(crate) fn collect_secure_values(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if is_secure_string(value) {
                if let Some(s) = map.get("value").and_then(Value::as_str) {
                    out.insert(s.to_owned());
                }
            } else {
                map.values().for_each(|v| collect_secure_values(v, out));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secure_values(v, out)),
        _ => {}
    }
}

/// JSON pointers of every inline secret object.
fn secure_string_pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if is_secure_string(value) {
                out.push(at.to_owned());
            } else {
                for (key, v) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    secure_string_pointers(v, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                secure_string_pointers(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Whether writing `new` over `stored` puts the mask where a true inline secret value was.
pub(crate) fn overwrites_secret_with_mask(stored: &Value, new: &Value) -> bool {
    let mut pointers = Vec::new();
    secure_string_pointers(stored, "", &mut pointers);
    pointers.iter().any(|pointer| {
        let written = new.pointer(pointer);
        written.and_then(Value::as_str) == Some(MASK)
            || written.and_then(|w| w.get("value")).and_then(Value::as_str) == Some(MASK)
    })
}

/// A blob shaped like ADF's `encryptedCredential` (base64 of a small JSON document).
pub(crate) fn new_encrypted_credential(factory: &str) -> String {
    let doc = format!(
        "{{\r\n  \"Version\": \"2017-11-30\",\r\n  \"ProtectionMode\": \"Key\",\r\n  \"SecretContentType\": \"Plaintext\",\r\n  \"CredentialId\": \"{}_{}\"\r\n}}",
        factory.to_ascii_uppercase(),
        uuid::Uuid::new_v4()
    );
    base64::engine::general_purpose::STANDARD.encode(doc)
}

// ---- seed document ----

/// A kind of resource seeded under `subscriptions[].resourceGroups[]`, each service its own.
pub(crate) trait SeedResource: DeserializeOwned {
    /// The resource group's key that lists this kind (`factories`, `workspaces`, `sites`, …).
    const KEY: &'static str;
}

/// One seeded subscription with its resource groups, each holding the resources of kind `T`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound = "T: SeedResource")]
pub(crate) struct SeedSubscription<T> {
    subscription_id: String,
    #[serde(default)]
    resource_groups: Vec<SeedResourceGroup<T>>,
}

/// A seeded resource group: its name and its `T::KEY` array (every other key is another service's).
pub(crate) struct SeedResourceGroup<T> {
    name: String,
    resources: Vec<T>,
}

impl<'de, T: SeedResource> Deserialize<'de> for SeedResourceGroup<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Group<T>(std::marker::PhantomData<T>);
        impl<'de, T: SeedResource> serde::de::Visitor<'de> for Group<T> {
            type Value = SeedResourceGroup<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("struct SeedResourceGroup")
            }
            // Keys are read in the seed's order, as a derived reader would, so the same fault is reported.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let (mut name, mut resources) = (None, Vec::new());
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        name = Some(map.next_value()?);
                    } else if key == T::KEY {
                        resources = map.next_value()?;
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                let name = name.ok_or_else(|| serde::de::Error::missing_field("name"))?;
                Ok(SeedResourceGroup { name, resources })
            }
        }
        deserializer.deserialize_struct(
            "SeedResourceGroup",
            &["name", T::KEY],
            Group(std::marker::PhantomData),
        )
    }
}

/// Every resource of kind `T` in a seed, with its subscription id and resource group name; the seed's
/// other keys belong to other services.
pub(crate) fn seeded<T: SeedResource>(seed: &Value) -> Result<Vec<(String, String, T)>, String> {
    #[derive(Deserialize)]
    #[serde(bound = "T: SeedResource")]
    struct SeedDoc<T> {
        #[serde(default)]
        subscriptions: Vec<SeedSubscription<T>>,
    }
    let doc: SeedDoc<T> = serde_json::from_value(seed.clone()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for sub in doc.subscriptions {
        for rg in sub.resource_groups {
            for resource in rg.resources {
                out.push((sub.subscription_id.clone(), rg.name.clone(), resource));
            }
        }
    }
    Ok(out)
}

/// A seeded identity's default: the system-assigned one.
pub(crate) fn system_assigned() -> Option<String> {
    Some("SystemAssigned".into())
}

/// A seeded flag that defaults to on.
pub(crate) fn yes() -> bool {
    true
}

/// A seeded count that defaults to one.
pub(crate) fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedDoc {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    managed_identity_client_id: Option<String>,
    #[serde(default)]
    subscriptions: Vec<SeedSubscription<SeedFactory>>,
    #[serde(default)]
    vaults: Vec<SeedVault>,
}

impl SeedResource for SeedFactory {
    const KEY: &'static str = "factories";
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedFactory {
    name: String,
    location: Option<String>,
    create_time: Option<String>,
    e_tag: Option<String>,
    identity: Option<Value>,
    tags: Option<Value>,
    /// Extra factory properties (e.g. `purviewConfiguration`, `globalParameters`).
    #[serde(default)]
    properties: Map<String, Value>,
    repo_configuration: Option<Value>,
    #[serde(default)]
    linked_services: Vec<SeedChild>,
    #[serde(default)]
    credentials: Vec<SeedChild>,
    #[serde(default)]
    integration_runtimes: Vec<SeedIntegrationRuntime>,
    #[serde(flatten)]
    authoring: crate::authoring::SeedAuthoring,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedChild {
    name: String,
    properties: Value,
    etag: Option<String>,
    #[serde(default)]
    test: TestScript,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedIntegrationRuntime {
    name: String,
    properties: Option<Value>,
    state: Option<String>,
    interactive_authoring: Option<bool>,
    nodes: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedVault {
    name: String,
    #[serde(default)]
    forbidden: bool,
    #[serde(default)]
    secrets: Vec<SeedSecret>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedSecret {
    name: String,
    #[serde(default)]
    versions: Vec<SeedVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedVersion {
    version: Option<String>,
    value: String,
    enabled: Option<bool>,
    created: Option<i64>,
    updated: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    content_type: Option<String>,
}

fn build_factory(sub: &str, rg: &str, seed: SeedFactory) -> Result<Factory, String> {
    let mut factory = Factory {
        subscription_id: sub.to_owned(),
        resource_group: rg.to_owned(),
        location: seed.location.unwrap_or_else(|| "westeurope".into()),
        create_time: seed
            .create_time
            .unwrap_or_else(|| "2023-03-14T09:26:53.5128313Z".into()),
        etag: seed
            .e_tag
            .map(|e| e.trim_matches('"').to_owned())
            .unwrap_or_else(|| {
                format!(
                    "0000{:04x}-0000-0000-0000-{:012x}",
                    fastrand::u16(..),
                    fastrand::u64(..(1 << 48))
                )
            }),
        identity: seed.identity,
        tags: seed.tags.unwrap_or_else(|| json!({})),
        extra_properties: seed.properties,
        repo_configuration: seed.repo_configuration,
        linked_services: Vec::new(),
        credentials: Vec::new(),
        integration_runtimes: Vec::new(),
        authoring: crate::authoring::Authoring::from_seed(seed.authoring)?,
        name: seed.name,
    };
    for (kind, children) in [
        (ChildKind::LinkedService, seed.linked_services),
        (ChildKind::Credential, seed.credentials),
    ] {
        for child in children {
            check_seeded_child(
                kind.segment(),
                &factory.name,
                &child.name,
                &child.properties,
                factory.child(kind, &child.name).is_some(),
            )?;
            let encrypted_credential = new_encrypted_credential(&factory.name);
            factory.children_mut(kind).push(Child {
                name: child.name,
                properties: child.properties,
                etag: child.etag.unwrap_or_else(new_etag),
                test: child.test,
                resaved: false,
                puts: 0,
                encrypted_credential,
            });
        }
    }
    for ir in seed.integration_runtimes {
        factory.integration_runtimes.push(IntegrationRuntime {
            name: ir.name,
            properties: ir
                .properties
                .unwrap_or_else(|| json!({"type": "SelfHosted"})),
            state: ir.state,
            interactive_authoring: ir.interactive_authoring,
            nodes: ir.nodes,
            etag: new_etag(),
        });
    }
    Ok(factory)
}

/// Refuses a seeded linked service or credential without `properties.type`, or one whose name (`taken`)
/// its factory or workspace already holds.
pub(crate) fn check_seeded_child(
    segment: &str,
    parent: &str,
    name: &str,
    properties: &Value,
    taken: bool,
) -> Result<(), String> {
    if properties.get("type").and_then(Value::as_str).is_none() {
        return Err(format!("{segment} {parent}/{name} has no properties.type"));
    }
    if taken {
        return Err(format!("duplicate {segment} {parent}/{name}"));
    }
    Ok(())
}

fn build_vault(seed: SeedVault) -> Result<Vault, String> {
    let mut secrets = Vec::new();
    for secret in seed.secrets {
        let mut versions = Vec::new();
        for (i, v) in secret.versions.into_iter().enumerate() {
            let version = v
                .version
                .unwrap_or_else(|| version_id(&[&seed.name, &secret.name, &i.to_string()]));
            if !version.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("secret version {version:?} must be alphanumeric"));
            }
            let offset = i64::try_from(i).unwrap_or(0) * 86_400;
            let created = v.created.unwrap_or(1_700_000_000 + offset);
            versions.push(SecretVersion {
                version,
                value: v.value,
                enabled: v.enabled.unwrap_or(true),
                created,
                updated: v.updated.unwrap_or(created),
                nbf: v.nbf,
                exp: v.exp,
                content_type: v.content_type,
            });
        }
        secrets.push(Secret {
            name: secret.name,
            versions,
        });
    }
    Ok(Vault {
        name: seed.name,
        forbidden: seed.forbidden,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_at_any_depth_and_adds_encrypted_credential() {
        let props = json!({
            "type": "AzureSqlDatabase",
            "typeProperties": {
                "connectionString": {"type": "SecureString", "value": "Server=x;Password=hunter2"},
                "nested": [{"deep": {"type": "SecureString", "value": "s2"}}],
                "password": {"type": "AzureKeyVaultSecret", "store": {"referenceName": "kv", "type": "LinkedServiceReference"}, "secretName": "p"}
            }
        });
        let masked = mask(&props, "blob");
        assert_eq!(masked["typeProperties"]["connectionString"]["value"], MASK);
        assert_eq!(masked["typeProperties"]["nested"][0]["deep"]["value"], MASK);
        assert_eq!(
            masked["typeProperties"]["password"],
            props["typeProperties"]["password"]
        );
        assert_eq!(masked["typeProperties"]["encryptedCredential"], "blob");
        let plain = json!({"type": "AzureKeyVault", "typeProperties": {"baseUrl": "https://x.vault.azure.net/"}});
        assert_eq!(mask(&plain, "blob"), plain);
    }

    #[test]
    fn detects_masked_overwrite() {
        let stored = json!({"typeProperties": {"cs": {"type": "SecureString", "value": "real"}}});
        let masked = json!({"typeProperties": {"cs": {"type": "SecureString", "value": MASK}}});
        let fresh = json!({"typeProperties": {"cs": {"type": "SecureString", "value": "new"}}});
        assert!(overwrites_secret_with_mask(&stored, &masked));
        assert!(!overwrites_secret_with_mask(&stored, &fresh));
        assert!(!overwrites_secret_with_mask(
            &json!({"typeProperties": {}}),
            &masked
        ));
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Thing {
        name: String,
    }

    impl SeedResource for Thing {
        const KEY: &'static str = "things";
    }

    #[test]
    fn each_service_reads_only_its_own_key_of_every_resource_group() {
        let seed = json!({"subscriptions": [
            {"subscriptionId": "s1", "resourceGroups": [
                {"name": "rg1", "factories": [{"name": "f"}], "things": [{"name": "a"}, {"name": "b"}]},
                {"name": "rg2"}
            ]},
            {"subscriptionId": "s2", "resourceGroups": [{"things": [{"name": "c"}], "name": "rg3"}]}
        ], "vaults": []});
        let things: Vec<(String, String, Thing)> = seeded(&seed).unwrap();
        let names: Vec<(&str, &str, &str)> = things
            .iter()
            .map(|(s, rg, t)| (s.as_str(), rg.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [("s1", "rg1", "a"), ("s1", "rg1", "b"), ("s2", "rg3", "c")]
        );
        assert!(seeded::<Thing>(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_resource_group_is_refused_with_what_is_wrong() {
        let with_groups = |groups: Value| {
            seeded::<Thing>(
                &json!({"subscriptions": [{"subscriptionId": "s", "resourceGroups": groups}]}),
            )
            .err()
            .unwrap_or_default()
        };
        assert_eq!(with_groups(json!([{"things": []}])), "missing field `name`");
        assert!(with_groups(json!([{"name": "rg", "things": {}}])).contains("expected a sequence"));
        assert!(with_groups(json!(["rg"])).contains("expected struct SeedResourceGroup"));
    }

    #[test]
    fn version_ids_are_stable_hex() {
        let id = version_id(&["kv", "s", "0"]);
        assert_eq!(id.len(), 32);
        assert_eq!(id, version_id(&["kv", "s", "0"]));
        assert_ne!(id, version_id(&["kv", "s", "1"]));
    }
}
