//! The model of API Management (`Microsoft.ApiManagement/service`): services, named values, how a Key
//! Vault-backed one fetches its secret and the version it caches (4 hours, or until refreshed), and the
//! `refreshSecret` operations in flight. `apim.rs` serves them.
//!
//! Sources (see the emulator README, "API Management"): `reference/apim-spec/` and its PROVENANCE.md.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::store::{SecretRef, SeedResource, Store, one, parse_secret_url, system_assigned, yes};

/// The api-versions accepted: the latest stable (2024-05-01) and the one the service definitions in the
/// extract come from (2022-08-01).
pub(crate) const API_VERSIONS: &[&str] = &["2024-05-01", "2022-08-01"];
/// "A named value is updated within four hours of the update in the vault" (PROVENANCE.md).
const CACHE_SECS: i64 = 4 * 3600;

/// The last fetch of a Key Vault-backed named value (`keyVault.lastStatus`, and the version it holds).
#[derive(Clone, Debug)]
pub(crate) struct Fetch {
    /// The version in use: the last one fetched successfully.
    pub version: Option<String>,
    pub code: String,
    pub message: String,
    /// Emulator time (unix seconds) of the fetch.
    pub at: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct KeyVaultBacking {
    pub secret_identifier: String,
    pub identity_client_id: Option<String>,
    pub fetch: Fetch,
}

#[derive(Clone, Debug)]
pub(crate) struct NamedValue {
    pub name: String,
    pub display_name: String,
    pub tags: Vec<String>,
    pub secret: bool,
    /// A plain named value's value (never shown when `secret`).
    pub value: Option<String>,
    pub key_vault: Option<KeyVaultBacking>,
    pub etag: String,
    pub refreshes: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// `SystemAssigned` (the default) or `UserAssigned`; `None`: no identity.
    pub identity: Option<String>,
    /// Whether the service's identity may read the vaults' secrets.
    pub key_vault_access: bool,
    /// How many polls of a refresh operation answer 202 before it ends.
    pub refresh_polls: u32,
    pub retry_after_secs: u64,
    pub named_values: Vec<NamedValue>,
}

impl Service {
    pub(crate) fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ApiManagement/service/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    pub(crate) fn named_value(&self, name: &str) -> Option<usize> {
        self.named_values
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The service resource, shaped like `ApiManagementServiceResource` (extract).
    pub(crate) fn to_json(&self, tenant_id: &str) -> Value {
        let mut resource = Map::new();
        resource.insert("id".into(), json!(self.id()));
        resource.insert("name".into(), json!(self.name));
        resource.insert("type".into(), json!("Microsoft.ApiManagement/service"));
        resource.insert("location".into(), json!(self.location));
        resource.insert("etag".into(), json!("AAAAAAAmREI="));
        resource.insert("tags".into(), json!({}));
        resource.insert("sku".into(), json!({"name": "Developer", "capacity": 1}));
        if let Some(kind) = &self.identity {
            let hex = crate::util::version_id(&[&self.id().to_ascii_lowercase()]);
            resource.insert(
                "identity".into(),
                json!({
                    "type": kind,
                    "principalId": format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]),
                    "tenantId": tenant_id,
                }),
            );
        }
        resource.insert(
            "properties".into(),
            json!({
                "publisherEmail": "apim-admins@contoso.com",
                "publisherName": "Contoso",
                "provisioningState": "Succeeded",
                "targetProvisioningState": "",
                "createdAtUtc": "2023-04-11T08:20:13.5197162Z",
                "gatewayUrl": format!("https://{}.azure-api.net", self.name),
                "portalUrl": format!("https://{}.portal.azure-api.net", self.name),
                "managementApiUrl": format!("https://{}.management.azure-api.net", self.name),
                "developerPortalUrl": format!("https://{}.developer.azure-api.net", self.name),
                "virtualNetworkType": "None",
                "platformVersion": "stv2",
            }),
        );
        Value::Object(resource)
    }

    /// A named value, shaped like `ApiManagementGetNamedValueWithKeyVault.json`: never a `value` for a
    /// secret one.
    pub(crate) fn named_value_json(&self, nv: &NamedValue) -> Value {
        let mut properties = Map::new();
        properties.insert("displayName".into(), json!(nv.display_name));
        if !nv.secret
            && let Some(value) = &nv.value
        {
            properties.insert("value".into(), json!(value));
        }
        if let Some(kv) = &nv.key_vault {
            properties.insert(
                "keyVault".into(),
                json!({
                    "secretIdentifier": kv.secret_identifier,
                    "identityClientId": kv.identity_client_id,
                    "lastStatus": {
                        "code": kv.fetch.code,
                        "message": kv.fetch.message,
                        "timeStampUtc": crate::util::rfc3339(kv.fetch.at),
                    },
                }),
            );
        }
        properties.insert("tags".into(), json!(nv.tags));
        properties.insert("secret".into(), json!(nv.secret));
        properties.insert("provisioningState".into(), json!("Succeeded"));
        json!({
            "id": format!("{}/namedValues/{}", self.id(), nv.name),
            "type": "Microsoft.ApiManagement/service/namedValues",
            "name": nv.name,
            "properties": properties,
        })
    }
}

/// Parses `https://{vault}.{suffix}/secrets/{name}[/{version}]` (the scheme is not checked).
fn parse_identifier(identifier: &str) -> Option<SecretRef> {
    parse_secret_url(&url::Url::parse(identifier.trim()).ok()?)
}

/// Fetches the secret as APIM would, keeping the last good version on a failure. The failure codes and
/// messages are guesses: no source specifies them (PROVENANCE.md).
pub(crate) fn fetch(
    store: &Store,
    identity: Option<&str>,
    access: bool,
    kv: &KeyVaultBacking,
    now: i64,
) -> Fetch {
    let failed = |code: &str, message: String| Fetch {
        version: kv.fetch.version.clone(),
        code: code.to_owned(),
        message,
        at: now,
    };
    let Some(SecretRef {
        vault,
        this_cloud,
        secret,
        version,
    }) = parse_identifier(&kv.secret_identifier)
    else {
        return failed(
            "BadRequest",
            format!(
                "'{}' is not a valid Key Vault secret identifier.",
                kv.secret_identifier
            ),
        );
    };
    if identity.is_none() {
        return failed(
            "Forbidden",
            "The service has no managed identity to access Key Vault with.".into(),
        );
    }
    let Some(vault) = store.vault(&vault).filter(|_| this_cloud) else {
        return failed("NotFound", format!("Key Vault '{vault}' was not found."));
    };
    if !access || vault.forbidden {
        return failed(
            "Forbidden",
            format!(
                "Access to Key Vault '{}' was denied: the service's managed identity has no permission to get secret '{secret}'.",
                vault.name
            ),
        );
    }
    let found = vault.secret(&secret).and_then(|s| match &version {
        Some(pinned) => s.version(pinned),
        None => s.latest_enabled(),
    });
    match found {
        Some(v) => Fetch {
            version: Some(v.version.clone()),
            code: "Success".into(),
            message: String::new(),
            at: now,
        },
        None => failed(
            "NotFound",
            format!(
                "Secret '{}' was not found in Key Vault '{}'.",
                secret, vault.name
            ),
        ),
    }
}

/// A `refreshSecret` operation.
#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub(crate) service: usize,
    pub(crate) named_value: String,
    pub(crate) polls_left: u32,
    pub(crate) started: i64,
    /// `(status, body)` once ended; later polls repeat it.
    pub(crate) outcome: Option<(StatusCode, Value, bool)>,
}

#[derive(Debug, Default)]
pub(crate) struct Estate {
    pub services: Vec<Service>,
    pub(crate) operations: HashMap<String, Operation>,
}

impl Estate {
    /// Reads `apiManagement` under `subscriptions[].resourceGroups[]` of a seed and fetches every Key
    /// Vault-backed named value at `now`.
    pub(crate) fn from_seed(seed: &Value, store: &Store, now: i64) -> Result<Self, String> {
        let mut estate = Estate::default();
        for (sub, rg, service) in crate::store::seeded::<SeedService>(seed)? {
            if estate
                .services
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case(&service.name))
            {
                return Err(format!("duplicate API Management service {}", service.name));
            }
            estate
                .services
                .push(build_service(&sub, &rg, service, store, now));
        }
        Ok(estate)
    }

    pub(crate) fn service(&self, sub: &str, rg: &str, name: &str) -> Option<usize> {
        self.services.iter().position(|s| {
            s.subscription_id.eq_ignore_ascii_case(sub)
                && s.resource_group.eq_ignore_ascii_case(rg)
                && s.name.eq_ignore_ascii_case(name)
        })
    }

    /// Refetches the named values of a service whose cache is 4 hours old or more.
    pub(crate) fn expire(&mut self, store: &Store, index: usize, now: i64) {
        let service = &mut self.services[index];
        let (identity, access) = (service.identity.clone(), service.key_vault_access);
        for nv in &mut service.named_values {
            if let Some(kv) = &mut nv.key_vault
                && now - kv.fetch.at >= CACHE_SECS
            {
                kv.fetch = fetch(store, identity.as_deref(), access, kv, now);
            }
        }
    }

    /// A named value's cached state by its resource id, for the control API.
    pub(crate) fn named_value_state(&mut self, store: &Store, now: i64, id: &str) -> Option<Value> {
        let id = id.trim_end_matches('/');
        let (index, position) = self.services.iter().enumerate().find_map(|(i, s)| {
            s.named_values
                .iter()
                .position(|nv| {
                    format!("{}/namedValues/{}", s.id(), nv.name).eq_ignore_ascii_case(id)
                })
                .map(|p| (i, p))
        })?;
        self.expire(store, index, now);
        let service = &self.services[index];
        let nv = &service.named_values[position];
        let kv = nv.key_vault.as_ref();
        Some(json!({
            "id": format!("{}/namedValues/{}", service.id(), nv.name),
            "secretIdentifier": kv.map(|k| k.secret_identifier.clone()),
            "version": kv.and_then(|k| k.fetch.version.clone()),
            "lastStatus": kv.map(|k| json!({"code": k.fetch.code, "message": k.fetch.message, "timeStampUtc": crate::util::rfc3339(k.fetch.at)})),
            "refreshes": nv.refreshes,
        }))
    }

    /// Plain values of secret named values (a plain value that is not secret is shown by APIM anyway).
    pub(crate) fn secret_values(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .flat_map(|s| &s.named_values)
            .filter(|nv| nv.secret)
            .filter_map(|nv| nv.value.clone())
            .collect()
    }

    /// The services for `GET /_emulator/state`.
    pub(crate) fn to_state_json(&self) -> Value {
        Value::Array(
            self.services
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id(),
                        "identity": s.identity,
                        "keyVaultAccess": s.key_vault_access,
                        "namedValues": s.named_values.iter().map(|nv| json!({
                            "name": nv.name,
                            "secretIdentifier": nv.key_vault.as_ref().map(|k| k.secret_identifier.clone()),
                            "version": nv.key_vault.as_ref().and_then(|k| k.fetch.version.clone()),
                            "lastStatusCode": nv.key_vault.as_ref().map(|k| k.fetch.code.clone()),
                            "refreshes": nv.refreshes,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

// ---- seed ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedService {
    name: String,
    location: Option<String>,
    #[serde(default = "system_assigned")]
    identity: Option<String>,
    #[serde(default = "yes")]
    key_vault_access: bool,
    #[serde(default = "one")]
    refresh_polls: u32,
    retry_after_secs: Option<u64>,
    #[serde(default)]
    named_values: Vec<SeedNamedValue>,
}

impl SeedResource for SeedService {
    const KEY: &'static str = "apiManagement";
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedNamedValue {
    name: String,
    display_name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    secret: Option<bool>,
    value: Option<String>,
    key_vault: Option<SeedKeyVault>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedKeyVault {
    secret_identifier: String,
    identity_client_id: Option<String>,
}

fn build_service(sub: &str, rg: &str, seed: SeedService, store: &Store, now: i64) -> Service {
    let named_values = seed
        .named_values
        .into_iter()
        .map(|nv| {
            let key_vault = nv.key_vault.map(|kv| {
                let mut backing = KeyVaultBacking {
                    secret_identifier: kv.secret_identifier,
                    identity_client_id: kv.identity_client_id,
                    fetch: Fetch {
                        version: None,
                        code: String::new(),
                        message: String::new(),
                        at: now,
                    },
                };
                backing.fetch = fetch(
                    store,
                    seed.identity.as_deref(),
                    seed.key_vault_access,
                    &backing,
                    now,
                );
                backing
            });
            NamedValue {
                display_name: nv.display_name.unwrap_or_else(|| nv.name.clone()),
                secret: nv.secret.unwrap_or(key_vault.is_some()),
                name: nv.name,
                tags: nv.tags,
                value: nv.value,
                key_vault,
                etag: crate::store::new_etag(),
                refreshes: 0,
            }
        })
        .collect();
    Service {
        subscription_id: sub.to_owned(),
        resource_group: rg.to_owned(),
        name: seed.name,
        location: seed.location.unwrap_or_else(|| "West Europe".into()),
        identity: seed.identity,
        key_vault_access: seed.key_vault_access,
        refresh_polls: seed.refresh_polls,
        retry_after_secs: seed.retry_after_secs.unwrap_or(1),
        named_values,
    }
}
