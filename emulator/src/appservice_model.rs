//! The model of App Service (`Microsoft.Web/sites`): sites and slots, the Key Vault references of their app
//! settings and connection strings, how a reference resolves against the emulator's vaults, and the
//! version each one caches (24 hours, or until refreshed). `appservice.rs` serves them.
//!
//! Sources (see the emulator README, "App Service"): `reference/appservice-spec/` and its PROVENANCE.md.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::store::{SecretRef, SeedResource, Store, parse_secret_url, system_assigned, yes};

/// The api-versions accepted for `Microsoft.Web`: the docs' refresh example (2022-03-01), the spec
/// examples' (2023-12-01) and the latest in the extract (2024-11-01).
pub(crate) const API_VERSIONS: &[&str] = &["2022-03-01", "2023-12-01", "2024-11-01"];
/// "App Service caches the values of the Key Vault references and refetches them every 24 hours."
const CACHE_SECS: i64 = 24 * 3600;
const REFERENCE_TYPE: &str = "Microsoft.Web/sites/config/configreferences";

/// The two kinds of setting that may hold a Key Vault reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefKind {
    AppSetting,
    ConnectionString,
}

impl RefKind {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            RefKind::AppSetting => "appsettings",
            RefKind::ConnectionString => "connectionstrings",
        }
    }

    pub(crate) fn from_segment(segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("appsettings") {
            Some(RefKind::AppSetting)
        } else if segment.eq_ignore_ascii_case("connectionstrings") {
            Some(RefKind::ConnectionString)
        } else {
            None
        }
    }
}

/// Parses `@Microsoft.KeyVault(SecretUri=https://{vault}.{suffix}/secrets/{name}[/{version}][/])` or
/// `@Microsoft.KeyVault(VaultName={vault};SecretName={name}[;SecretVersion={version}])` (the two forms in
/// the App Service docs). `None` when it does not parse.
pub(crate) fn parse_reference(raw: &str) -> Option<SecretRef> {
    let raw = raw.trim();
    let prefix = "@Microsoft.KeyVault(";
    if raw.len() < prefix.len() + 1
        || !raw[..prefix.len()].eq_ignore_ascii_case(prefix)
        || !raw.ends_with(')')
    {
        return None;
    }
    let inner = raw[prefix.len()..raw.len() - 1].trim();
    let (key, value) = inner.split_once('=')?;
    if key.trim().eq_ignore_ascii_case("SecretUri") {
        let url = url::Url::parse(value.trim()).ok()?;
        if url.scheme() != "https" {
            return None;
        }
        return parse_secret_url(&url);
    }
    let (mut vault, mut secret, mut version) = (None, None, None);
    for pair in inner.split(';').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair.split_once('=')?;
        let value = value.trim().to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "vaultname" => vault = Some(value),
            "secretname" => secret = Some(value),
            "secretversion" => version = Some(value).filter(|v| !v.is_empty()),
            _ => return None,
        }
    }
    Some(SecretRef {
        vault: vault.filter(|v| !v.is_empty())?,
        this_cloud: true,
        secret: secret.filter(|s| !s.is_empty())?,
        version,
    })
}

/// What a reference resolved to, last time App Service fetched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// One of the spec's `ResolveStatus` values.
    pub status: &'static str,
    /// The secret version in use (only when `Resolved`).
    pub version: Option<String>,
    pub details: String,
    /// Emulator time (unix seconds) of the fetch.
    pub resolved_at: i64,
}

/// A site or a slot: what the references are resolved as.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// `SystemAssigned` or `UserAssigned`; `None`: no managed identity.
    pub kind: Option<String>,
    /// Whether that identity may read the vaults' secrets.
    pub key_vault_access: bool,
}

fn resolve(store: &Store, identity: &Identity, raw: &str, now: i64) -> Resolution {
    let done = |status: &'static str, version: Option<String>, details: String| Resolution {
        status,
        version,
        details,
        resolved_at: now,
    };
    let Some(parsed) = parse_reference(raw) else {
        return done(
            "InvalidSyntax",
            None,
            "The Key Vault reference could not be parsed: expected @Microsoft.KeyVault(SecretUri=...) or @Microsoft.KeyVault(VaultName=...;SecretName=...).".into(),
        );
    };
    if identity.kind.is_none() {
        return done(
            "MSINotEnabled",
            None,
            "The app has no managed identity to access Key Vault with.".into(),
        );
    }
    let vault = store.vault(&parsed.vault).filter(|_| parsed.this_cloud);
    let Some(vault) = vault else {
        return done(
            "VaultNotFound",
            None,
            format!("Key Vault '{}' was not found.", parsed.vault),
        );
    };
    if !identity.key_vault_access || vault.forbidden {
        return done(
            "AccessToKeyVaultDenied",
            None,
            format!(
                "Access to Key Vault '{}' was denied to the app's identity. Grant it the Key Vault Secrets User role or a get-secret access policy.",
                vault.name
            ),
        );
    }
    let Some(secret) = vault.secret(&parsed.secret) else {
        return done(
            "SecretNotFound",
            None,
            format!(
                "Secret '{}' was not found in Key Vault '{}'.",
                parsed.secret, vault.name
            ),
        );
    };
    let version = match &parsed.version {
        Some(pinned) => match secret.version(pinned) {
            Some(v) => v,
            None => {
                return done(
                    "SecretVersionNotFound",
                    None,
                    format!(
                        "Version '{pinned}' of secret '{}' was not found.",
                        secret.name
                    ),
                );
            }
        },
        None => match secret.latest_enabled() {
            Some(v) => v,
            None => {
                return done(
                    "OtherReasons",
                    None,
                    format!("Secret '{}' has no enabled version.", secret.name),
                );
            }
        },
    };
    done(
        "Resolved",
        Some(version.version.clone()),
        "Reference has been successfully resolved.".into(),
    )
}

/// One app setting or connection string whose value is a Key Vault reference.
#[derive(Clone, Debug)]
pub(crate) struct Reference {
    pub name: String,
    pub raw: String,
    pub cache: Resolution,
}

/// A site or one of its slots: its identity, references and refresh count.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The slot name; `None` for the production site.
    pub slot: Option<String>,
    pub identity: Identity,
    pub app_settings: Vec<Reference>,
    pub connection_strings: Vec<Reference>,
    /// Refresh POSTs received for this site or slot.
    pub refreshes: u64,
}

impl Target {
    pub(crate) fn references(&self, kind: RefKind) -> &Vec<Reference> {
        match kind {
            RefKind::AppSetting => &self.app_settings,
            RefKind::ConnectionString => &self.connection_strings,
        }
    }

    pub(crate) fn references_mut(&mut self, kind: RefKind) -> &mut Vec<Reference> {
        match kind {
            RefKind::AppSetting => &mut self.app_settings,
            RefKind::ConnectionString => &mut self.connection_strings,
        }
    }

    /// Re-resolves the references of `kind` (a refresh, or the 24-hour refetch).
    pub(crate) fn resolve_all(&mut self, store: &Store, kind: RefKind, now: i64) {
        let identity = self.identity.clone();
        for reference in self.references_mut(kind) {
            reference.cache = resolve(store, &identity, &reference.raw, now);
        }
    }

    /// Refetches every reference whose cache is 24 hours old or more.
    pub(crate) fn expire(&mut self, store: &Store, now: i64) {
        let identity = self.identity.clone();
        for reference in self
            .app_settings
            .iter_mut()
            .chain(self.connection_strings.iter_mut())
        {
            if now - reference.cache.resolved_at >= CACHE_SECS {
                reference.cache = resolve(store, &identity, &reference.raw, now);
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Site {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub kind: String,
    pub location: String,
    pub tags: Value,
    /// Whether `activeVersion` is filled with the cached version (real answers often leave it `null`).
    pub active_version_filled: bool,
    /// The production site (`slot` is `None`) followed by its slots.
    pub targets: Vec<Target>,
}

impl Site {
    pub(crate) fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    pub(crate) fn target_id(&self, target: &Target) -> String {
        match &target.slot {
            Some(slot) => format!("{}/slots/{slot}", self.id()),
            None => self.id(),
        }
    }

    pub(crate) fn target(&self, slot: Option<&str>) -> Option<usize> {
        self.targets.iter().position(|t| match (&t.slot, slot) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        })
    }

    /// A deterministic GUID-shaped principal id for a site or slot's system-assigned identity.
    pub(crate) fn principal_id(&self, target: &Target) -> String {
        let hex = crate::util::version_id(&[&self.target_id(target).to_ascii_lowercase()]);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    /// A site or slot resource, shaped like `ListWebApps.json` / `ListWebAppSlots.json`.
    pub(crate) fn target_json(&self, target: &Target, tenant_id: &str) -> Value {
        let host = match &target.slot {
            Some(slot) => format!("{}-{slot}.azurewebsites.net", self.name),
            None => format!("{}.azurewebsites.net", self.name),
        };
        let scm = host.replace(".azurewebsites.net", ".scm.azurewebsites.net");
        let mut resource = Map::new();
        resource.insert("id".into(), json!(self.target_id(target)));
        match &target.slot {
            Some(slot) => {
                resource.insert("name".into(), json!(format!("{}/{slot}", self.name)));
                resource.insert("type".into(), json!("Microsoft.Web/sites/slots"));
            }
            None => {
                resource.insert("name".into(), json!(self.name));
                resource.insert("type".into(), json!("Microsoft.Web/sites"));
            }
        }
        resource.insert("kind".into(), json!(self.kind));
        resource.insert("location".into(), json!(self.location));
        resource.insert("tags".into(), self.tags.clone());
        if let Some(kind) = &target.identity.kind {
            resource.insert(
                "identity".into(),
                json!({"type": kind, "principalId": self.principal_id(target), "tenantId": tenant_id}),
            );
        }
        resource.insert(
            "properties".into(),
            json!({
                "state": "Running",
                "hostNames": [host],
                "repositorySiteName": self.name,
                "usageState": "Normal",
                "enabled": true,
                "enabledHostNames": [host, scm],
                "availabilityState": "Normal",
                "serverFarmId": format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/asp-{}", self.subscription_id, self.resource_group, self.name),
                "reserved": self.kind.contains("linux"),
                "lastModifiedTimeUtc": "2024-05-02T09:41:27.183Z",
                "resourceGroup": self.resource_group,
                "defaultHostName": host,
                "httpsOnly": true,
                "keyVaultReferenceIdentity": "SystemAssigned",
            }),
        );
        Value::Object(resource)
    }

    /// One `ApiKVReference`, as the configreferences GETs and the refresh POST answer it.
    pub(crate) fn reference_json(
        &self,
        target: &Target,
        kind: RefKind,
        reference: &Reference,
    ) -> Value {
        let mut properties = Map::new();
        properties.insert("reference".into(), json!(reference.raw));
        properties.insert("status".into(), json!(reference.cache.status));
        if let Some(parsed) = parse_reference(&reference.raw) {
            properties.insert("vaultName".into(), json!(parsed.vault));
            properties.insert("secretName".into(), json!(parsed.secret));
            if let Some(version) = parsed.version {
                properties.insert("secretVersion".into(), json!(version));
            }
        }
        // A string, as in real answers (the spec declares an object; PROVENANCE.md).
        if let Some(identity) = &target.identity.kind {
            properties.insert("identityType".into(), json!(identity));
        }
        properties.insert("details".into(), json!(reference.cache.details));
        properties.insert("source".into(), json!("KeyVault"));
        let active = reference
            .cache
            .version
            .clone()
            .filter(|_| self.active_version_filled);
        properties.insert("activeVersion".into(), json!(active));
        json!({
            "id": format!("{}/config/configreferences/{}/{}", self.target_id(target), kind.segment(), reference.name),
            "name": reference.name,
            "type": REFERENCE_TYPE,
            "location": self.location,
            "properties": properties,
        })
    }
}

/// Every site.
#[derive(Debug, Default)]
pub(crate) struct Estate {
    pub sites: Vec<Site>,
}

/// A site or slot found by its resource id.
pub(crate) struct Found {
    pub site: usize,
    pub target: usize,
}

impl Estate {
    /// Reads `sites` under `subscriptions[].resourceGroups[]` of a seed and resolves every reference
    /// against the store's vaults at `now`.
    pub(crate) fn from_seed(seed: &Value, store: &Store, now: i64) -> Result<Self, String> {
        let mut estate = Estate::default();
        let mut seen = std::collections::HashSet::new();
        for (sub, rg, site) in crate::store::seeded::<SeedSite>(seed)? {
            let site = build_site(&sub, &rg, site, store, now);
            if !seen.insert(site.id().to_ascii_lowercase()) {
                return Err(format!("duplicate site {}", site.id()));
            }
            estate.sites.push(site);
        }
        Ok(estate)
    }

    pub(crate) fn site(&self, sub: &str, rg: &str, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| {
            s.subscription_id.eq_ignore_ascii_case(sub)
                && s.resource_group.eq_ignore_ascii_case(rg)
                && s.name.eq_ignore_ascii_case(name)
        })
    }

    /// A site or slot by its resource id (`…/sites/{s}` or `…/sites/{s}/slots/{slot}`, any case).
    pub(crate) fn find(&self, id: &str) -> Option<Found> {
        let id = id.trim_end_matches('/');
        self.sites.iter().enumerate().find_map(|(i, site)| {
            site.targets
                .iter()
                .position(|t| site.target_id(t).eq_ignore_ascii_case(id))
                .map(|target| Found { site: i, target })
        })
    }

    /// The cached resolution of one reference, for the control API (the 24-hour refetch applied first).
    pub(crate) fn reference_state(
        &mut self,
        store: &Store,
        now: i64,
        id: &str,
        kind: RefKind,
        name: &str,
    ) -> Option<Value> {
        let found = self.find(id)?;
        self.sites[found.site].targets[found.target].expire(store, now);
        let site = &self.sites[found.site];
        let target = &site.targets[found.target];
        let reference = target
            .references(kind)
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))?;
        Some(json!({
            "id": site.target_id(target),
            "kind": kind.segment(),
            "name": reference.name,
            "reference": reference.raw,
            "status": reference.cache.status,
            "version": reference.cache.version,
            "details": reference.cache.details,
            "resolvedAt": crate::util::rfc3339(reference.cache.resolved_at),
            "refreshes": target.refreshes,
        }))
    }

    /// The refresh POSTs a site or slot received.
    pub(crate) fn refreshes(&self, id: &str) -> Option<u64> {
        let found = self.find(id)?;
        Some(self.sites[found.site].targets[found.target].refreshes)
    }

    /// The sites for `GET /_emulator/state`.
    pub(crate) fn to_state_json(&self) -> Value {
        let reference = |r: &Reference| {
            json!({
                "name": r.name,
                "reference": r.raw,
                "status": r.cache.status,
                "version": r.cache.version,
                "resolvedAt": crate::util::rfc3339(r.cache.resolved_at),
            })
        };
        Value::Array(
            self.sites
                .iter()
                .flat_map(|site| {
                    site.targets.iter().map(move |t| {
                        json!({
                            "id": site.target_id(t),
                            "kind": site.kind,
                            "identity": t.identity.kind,
                            "keyVaultAccess": t.identity.key_vault_access,
                            "refreshes": t.refreshes,
                            "appSettings": t.app_settings.iter().map(reference).collect::<Vec<_>>(),
                            "connectionStrings": t.connection_strings.iter().map(reference).collect::<Vec<_>>(),
                        })
                    })
                })
                .collect(),
        )
    }
}

// ---- seed ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedSite {
    name: String,
    #[serde(default = "app")]
    kind: String,
    location: Option<String>,
    tags: Option<Value>,
    /// `SystemAssigned` (the default), `UserAssigned`, or `null` (no identity).
    #[serde(default = "system_assigned")]
    identity: Option<String>,
    #[serde(default = "yes")]
    key_vault_access: bool,
    #[serde(default)]
    active_version_filled: bool,
    #[serde(default)]
    app_settings: Map<String, Value>,
    #[serde(default)]
    connection_strings: Map<String, Value>,
    #[serde(default)]
    slots: Vec<SeedSlot>,
}

impl SeedResource for SeedSite {
    const KEY: &'static str = "sites";
}

fn app() -> String {
    "app".into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedSlot {
    name: String,
    /// Absent: the site's. `null`: no identity.
    #[serde(default, deserialize_with = "some_or_null")]
    identity: Option<Option<String>>,
    key_vault_access: Option<bool>,
    #[serde(default)]
    app_settings: Map<String, Value>,
    #[serde(default)]
    connection_strings: Map<String, Value>,
}

/// Tells a `null` (Some(None)) from an absent field (None, through `default`).
fn some_or_null<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Only values that are Key Vault references are kept: plain values are never listed or served.
fn references(
    settings: Map<String, Value>,
    identity: &Identity,
    store: &Store,
    now: i64,
) -> Vec<Reference> {
    settings
        .into_iter()
        .filter_map(|(name, value)| {
            let raw = value.as_str()?.to_owned();
            let is_reference = raw
                .trim_start()
                .get(..19)
                .is_some_and(|p| p.eq_ignore_ascii_case("@Microsoft.KeyVault"));
            is_reference.then(|| Reference {
                name,
                cache: resolve(store, identity, &raw, now),
                raw,
            })
        })
        .collect()
}

fn build_site(sub: &str, rg: &str, seed: SeedSite, store: &Store, now: i64) -> Site {
    let identity = Identity {
        kind: seed.identity,
        key_vault_access: seed.key_vault_access,
    };
    let mut targets = vec![Target {
        slot: None,
        app_settings: references(seed.app_settings, &identity, store, now),
        connection_strings: references(seed.connection_strings, &identity, store, now),
        identity: identity.clone(),
        refreshes: 0,
    }];
    for slot in seed.slots {
        let identity = Identity {
            kind: slot.identity.unwrap_or_else(|| identity.kind.clone()),
            key_vault_access: slot.key_vault_access.unwrap_or(identity.key_vault_access),
        };
        targets.push(Target {
            slot: Some(slot.name),
            app_settings: references(slot.app_settings, &identity, store, now),
            connection_strings: references(slot.connection_strings, &identity, store, now),
            identity,
            refreshes: 0,
        });
    }
    Site {
        subscription_id: sub.to_owned(),
        resource_group: rg.to_owned(),
        name: seed.name,
        kind: seed.kind,
        location: seed.location.unwrap_or_else(|| "West Europe".into()),
        tags: seed.tags.unwrap_or_else(|| json!({})),
        active_version_filled: seed.active_version_filled,
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_reference_forms_parse_with_or_without_version_and_slash() {
        let uri = parse_reference(
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/sql-password/)",
        )
        .expect("parses");
        assert_eq!(
            (
                uri.vault.as_str(),
                uri.secret.as_str(),
                uri.version,
                uri.this_cloud
            ),
            ("contoso-kv", "sql-password", None, true)
        );
        let pinned = parse_reference(
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/sql-password/abc123)",
        )
        .expect("parses");
        assert_eq!(pinned.version.as_deref(), Some("abc123"));
        let china = parse_reference(
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.cn/secrets/sql-password)",
        )
        .expect("parses");
        assert!(!china.this_cloud);
        let named = parse_reference(
            "@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=sql-password;SecretVersion=abc)",
        )
        .expect("parses");
        assert_eq!(
            (
                named.vault.as_str(),
                named.secret.as_str(),
                named.version.as_deref()
            ),
            ("contoso-kv", "sql-password", Some("abc"))
        );
        for bad in [
            "@Microsoft.KeyVault(sql-password)",
            "@Microsoft.KeyVault(VaultName=contoso-kv)",
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/keys/x)",
            "@Microsoft.KeyVault(SecretUri=not a url)",
            "plain value",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
    }
}
