//! Pure: finds Key Vault references in an ADF definition and works out which vault and secret each names.
//!
//! A reference is `{"type":"AzureKeyVaultSecret","store":{"referenceName":…},"secretName":…,"secretVersion"?}`
//! at any depth. Its vault comes from the store, an `AzureKeyVault` linked service with `typeProperties.baseUrl`.
//! Names may be expressions over linked-service parameters; a value that only a parameter's `defaultValue`
//! supplies is a guess, because a caller can pass another value at run time, and is marked so.

use serde::Serialize;
use serde_json::{Map, Value};

/// The value ADF returns in place of an inline `SecureString`.
pub const MASK: &str = "**********";

/// How sure we are of a resolved name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "certainty", content = "value", rename_all = "camelCase")]
pub enum Resolved {
    /// A literal, or an expression whose every input is a literal.
    Certain(String),
    /// Known only through a parameter's `defaultValue`.
    ParameterDefault(String),
    /// An expression we cannot evaluate, or a parameter with no default.
    Unresolved(String),
}

impl Resolved {
    pub fn value(&self) -> Option<&str> {
        match self {
            Resolved::Certain(v) | Resolved::ParameterDefault(v) => Some(v),
            Resolved::Unresolved(_) => None,
        }
    }
    pub fn is_certain(&self) -> bool {
        matches!(self, Resolved::Certain(_))
    }
    fn map(self, f: impl FnOnce(String) -> Result<String, String>) -> Resolved {
        match self {
            Resolved::Certain(v) => f(v).map_or_else(Resolved::Unresolved, Resolved::Certain),
            Resolved::ParameterDefault(v) => {
                f(v).map_or_else(Resolved::Unresolved, Resolved::ParameterDefault)
            }
            unresolved => unresolved,
        }
    }
    /// The weaker of two certainties, for a value built from another.
    fn weaken_to(self, other: &Resolved) -> Resolved {
        match (self, other) {
            (Resolved::Certain(v), Resolved::ParameterDefault(_)) => Resolved::ParameterDefault(v),
            (r, _) => r,
        }
    }
}

/// One Key Vault reference found in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultReference {
    /// Where it sits, relative to `properties`, e.g. `typeProperties.password`.
    pub path: String,
    /// The `AzureKeyVault` linked service named by `store.referenceName`.
    pub store: String,
    /// The vault, resolved from the store's `baseUrl`.
    pub vault: Resolved,
    /// The vault's cloud (its Key Vault DNS suffix), when the `baseUrl` resolved to a Key Vault URL.
    pub vault_suffix: Option<String>,
    pub secret_name: Resolved,
    /// `secretVersion` when set: the reference is pinned.
    pub secret_version: Option<String>,
}

/// A Key Vault host, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultHost {
    /// The vault name, lower-cased.
    pub name: String,
    /// The DNS suffix, e.g. `vault.azure.net`.
    pub suffix: String,
}

/// The DNS suffixes of Key Vault in the public and sovereign clouds.
pub const KEY_VAULT_SUFFIXES: &[&str] = &[
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "vault.microsoftazure.de",
];

/// Parses a vault `baseUrl` (any scheme case, host case, trailing slash) into its vault name and suffix.
pub fn parse_vault_url(url: &str) -> Option<VaultHost> {
    let trimmed = url.trim();
    let without_scheme = match trimmed.find("://") {
        Some(i) if trimmed[..i].eq_ignore_ascii_case("https") => &trimmed[i + 3..],
        Some(_) => return None,
        None => trimmed,
    };
    let host = without_scheme.split(['/', '?', '#']).next()?;
    let host = host
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let (name, suffix) = host.split_once('.')?;
    if name.is_empty() || !KEY_VAULT_SUFFIXES.contains(&suffix) {
        return None;
    }
    Some(VaultHost {
        name: name.to_string(),
        suffix: suffix.to_string(),
    })
}

/// The linked services and credentials of one factory, by name, to resolve stores and credentials.
#[derive(Debug, Default)]
pub struct FactoryIndex<'a> {
    pub linked_services: std::collections::HashMap<String, &'a Value>,
}

impl<'a> FactoryIndex<'a> {
    /// Builds the index from linked-service resources (`{"name":…,"properties":…}`).
    pub fn new(linked_services: impl IntoIterator<Item = &'a Value>) -> Self {
        let linked_services = linked_services
            .into_iter()
            .filter_map(|ls| Some((ls.get("name")?.as_str()?.to_ascii_lowercase(), ls)))
            .collect();
        FactoryIndex { linked_services }
    }
    fn linked_service(&self, name: &str) -> Option<&'a Value> {
        self.linked_services
            .get(&name.to_ascii_lowercase())
            .copied()
    }
}

/// Finds every Key Vault reference in a resource's `properties`, resolving its vault and secret name.
pub fn find_references(properties: &Value, index: &FactoryIndex) -> Vec<KeyVaultReference> {
    let params = parameters_of(properties);
    let mut found = Vec::new();
    walk(properties, &mut String::new(), &mut |path, node| {
        let Some(obj) = node.as_object() else {
            return false;
        };
        if !is_type(obj, "AzureKeyVaultSecret") {
            return false;
        }
        found.push(resolve_reference(path, obj, &params, index));
        true
    });
    found
}

fn resolve_reference(
    path: &str,
    reference: &Map<String, Value>,
    params: &Map<String, Value>,
    index: &FactoryIndex,
) -> KeyVaultReference {
    let store = reference.get("store").and_then(Value::as_object);
    let store_name = store
        .and_then(|s| s.get("referenceName"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let secret_name = reference
        .get("secretName")
        .map_or(Resolved::Unresolved("no secretName".into()), |v| {
            resolve(v, params)
        });
    let secret_version = reference
        .get("secretVersion")
        .and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .filter(|v| !v.is_empty());

    let mut vault_suffix = None;
    let vault = match index.linked_service(&store_name) {
        None => Resolved::Unresolved(format!(
            "the store `{store_name}` is not a linked service of this factory"
        )),
        Some(kv_ls) => {
            let kv_props = kv_ls.get("properties").unwrap_or(&Value::Null);
            // The store's own parameters take what the reference passes, which may come from ours.
            let passed = store
                .and_then(|s| s.get("parameters"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut store_params = parameters_of(kv_props);
            let mut weakest = Resolved::Certain(String::new());
            for (name, value) in passed {
                let resolved = resolve(&value, params);
                if !resolved.is_certain() {
                    weakest = resolved.clone();
                }
                let mut definition = Map::new();
                match resolved {
                    Resolved::Certain(v) => {
                        definition.insert("fixedValue".into(), Value::String(v));
                    }
                    Resolved::ParameterDefault(v) => {
                        definition.insert("defaultValue".into(), Value::String(v));
                    }
                    Resolved::Unresolved(_) => {}
                }
                store_params.insert(name, Value::Object(definition));
            }
            match kv_props.pointer("/typeProperties/baseUrl") {
                None => Resolved::Unresolved(format!("the store `{store_name}` has no baseUrl")),
                Some(base_url) => {
                    let url = resolve(base_url, &store_params).weaken_to(&weakest);
                    vault_suffix = url.value().and_then(parse_vault_url).map(|h| h.suffix);
                    url.map(|url| {
                        parse_vault_url(&url)
                            .map(|host| host.name)
                            .ok_or_else(|| format!("`{url}` is not a Key Vault URL"))
                    })
                }
            }
        }
    };
    KeyVaultReference {
        path: path.to_string(),
        store: store_name,
        vault,
        vault_suffix,
        secret_name,
        secret_version,
    }
}

/// The `parameters` of a definition: `{"name": {"type":…, "defaultValue"?:…}}`.
fn parameters_of(properties: &Value) -> Map<String, Value> {
    properties
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Resolves a property that may be a literal, an `@…` expression string, or an `Expression` object.
pub fn resolve(value: &Value, params: &Map<String, Value>) -> Resolved {
    match value {
        Value::String(s) => resolve_text(s, params),
        Value::Object(o) if is_type(o, "Expression") => match o.get("value") {
            Some(Value::String(s)) if s.trim_start().starts_with('@') => resolve_text(s, params),
            Some(Value::String(s)) => Resolved::Certain(s.clone()),
            _ => Resolved::Unresolved("an Expression without a value".into()),
        },
        Value::Object(o) if is_type(o, "SecureString") => o
            .get("value")
            .and_then(Value::as_str)
            .map_or(Resolved::Unresolved("a SecureString".into()), |s| {
                Resolved::Certain(s.into())
            }),
        other => Resolved::Unresolved(format!("{} is not a name", crate::event::json_kind(other))),
    }
}

fn resolve_text(text: &str, params: &Map<String, Value>) -> Resolved {
    let trimmed = text.trim();
    if let Some(escaped) = trimmed.strip_prefix("@@") {
        return Resolved::Certain(format!("@{escaped}"));
    }
    // ADF interpolates `@{…}` anywhere in a string; a value that starts with `@` is wholly an expression.
    let interpolated = trimmed.contains("@{");
    let Some(expression) = trimmed
        .strip_prefix('@')
        .or(interpolated.then_some(trimmed))
    else {
        return Resolved::Certain(text.to_string());
    };
    if !interpolated {
        // A whole-value expression: only a bare parameter reference can be evaluated.
        return parameter(expression.trim(), params);
    }
    // String interpolation: literal text with `@{…}` holes.
    let mut out = String::new();
    let mut certainty = Resolved::Certain(String::new());
    let mut rest = trimmed;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Resolved::Unresolved(format!("unterminated interpolation in `{text}`"));
        };
        match parameter(after[..end].trim(), params) {
            Resolved::Certain(v) => out.push_str(&v),
            Resolved::ParameterDefault(v) => {
                out.push_str(&v);
                certainty = Resolved::ParameterDefault(String::new());
            }
            unresolved => return unresolved,
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Resolved::Certain(out).weaken_to(&certainty)
}

/// `linkedService().name` → the parameter's value: fixed when a caller passed a literal, else its default.
fn parameter(expression: &str, params: &Map<String, Value>) -> Resolved {
    let Some(name) = expression
        .strip_prefix("linkedService().")
        .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
    else {
        return Resolved::Unresolved(format!("cannot evaluate `@{expression}`"));
    };
    let definition = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v);
    match definition {
        None => Resolved::Unresolved(format!("parameter `{name}` is not declared")),
        Some(def) => match (def.get("fixedValue"), def.get("defaultValue")) {
            (Some(Value::String(v)), _) => Resolved::Certain(v.clone()),
            (_, Some(Value::String(v))) => Resolved::ParameterDefault(v.clone()),
            (_, Some(other)) if !other.is_null() => Resolved::ParameterDefault(other.to_string()),
            _ => Resolved::Unresolved(format!("parameter `{name}` has no default value")),
        },
    }
}

/// Whether the definition holds an inline secret: a masked `SecureString` or an `encryptedCredential`.
/// Either means a re-save could send back something ADF would not take as the same value.
pub fn inline_secret_paths(properties: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(
        properties,
        &mut String::new(),
        &mut |path, node| match node {
            Value::Object(o) if is_type(o, "SecureString") => {
                paths.push(path.to_string());
                true
            }
            Value::String(s) if s == MASK => {
                paths.push(path.to_string());
                true
            }
            _ if path.rsplit('.').next() == Some("encryptedCredential") && !node.is_null() => {
                paths.push(path.to_string());
                true
            }
            _ => false,
        },
    );
    paths
}

/// The credentials a definition uses: `{"type":"CredentialReference","referenceName":…}` at any depth.
pub fn credential_references(properties: &Value) -> Vec<String> {
    let mut names = Vec::new();
    walk(properties, &mut String::new(), &mut |_, node| {
        let Some(o) = node.as_object() else {
            return false;
        };
        if !is_type(o, "CredentialReference") {
            return false;
        }
        if let Some(name) = o.get("referenceName").and_then(Value::as_str) {
            names.push(name.to_string());
        }
        true
    });
    names
}

/// The integration runtime a linked service runs on, if it names one.
pub fn connect_via(properties: &Value) -> Option<String> {
    properties
        .pointer("/connectVia/referenceName")
        .and_then(Value::as_str)
        .filter(|n| !n.eq_ignore_ascii_case("AutoResolveIntegrationRuntime"))
        .map(str::to_string)
}

fn is_type(object: &Map<String, Value>, type_name: &str) -> bool {
    object
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(type_name))
}

/// Depth-first walk with dotted paths; `visit` returns true to stop descending into a node.
fn walk(node: &Value, path: &mut String, visit: &mut impl FnMut(&str, &Value) -> bool) {
    walk_depth(node, path, visit, 0);
}

const MAX_DEPTH: usize = 64;

fn walk_depth(
    node: &Value,
    path: &mut String,
    visit: &mut impl FnMut(&str, &Value) -> bool,
    depth: usize,
) {
    if depth > MAX_DEPTH || visit(path, node) {
        return;
    }
    let len = path.len();
    match node {
        Value::Object(o) => {
            for (key, child) in o {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk_depth(child, path, visit, depth + 1);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                walk_depth(child, path, visit, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Where an App Service Key Vault reference or an API Management `secretIdentifier` points: a vault (name and
/// cloud), a secret, and the version when one is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretLocator {
    /// The vault name, lower-cased.
    pub vault: String,
    /// The vault's cloud, as its Key Vault DNS suffix.
    pub suffix: String,
    pub secret: String,
    /// A version named in the reference: it is pinned and never moves.
    pub version: Option<String>,
}

/// Reads an App Service app setting or connection string value as a Key Vault reference:
/// `@Microsoft.KeyVault(SecretUri=https://{vault}.{suffix}/secrets/{name}[/{version}][/])` or
/// `@Microsoft.KeyVault(VaultName={vault};SecretName={name}[;SecretVersion={version}])`, whose vault is in the
/// deployment's cloud (`home_suffix`). Source: "Use Key Vault references as app settings in Azure App Service",
/// section "Reference syntax". `None` when the value is no Key Vault reference at all; `Some(Err(why))` when it
/// is one whose vault or secret cannot be read.
pub fn parse_app_service_reference(
    value: &str,
    home_suffix: &str,
) -> Option<Result<SecretLocator, String>> {
    const PREFIX: &str = "@microsoft.keyvault(";
    let trimmed = value.trim();
    let head = trimmed.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let Some(inner) = trimmed[PREFIX.len()..].strip_suffix(')') else {
        return Some(Err("the reference has no closing parenthesis".into()));
    };
    let mut uri = None;
    let (mut vault, mut secret, mut version) = (None, None, None);
    for part in inner.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = part.split_once('=') else {
            return Some(Err(format!("`{part}` is not a key=value pair")));
        };
        let val = val.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "secreturi" => uri = Some(val),
            "vaultname" => vault = Some(val),
            "secretname" => secret = Some(val),
            "secretversion" => version = Some(val),
            other => return Some(Err(format!("unknown key `{other}`"))),
        }
    }
    Some(match (uri, vault, secret) {
        (Some(uri), None, None) if version.is_none() => parse_secret_identifier(uri),
        (None, Some(vault), Some(secret)) => {
            let version = version.filter(|v| !v.is_empty());
            if !is_vault_name(vault) {
                Err(format!("`{vault}` is not a vault name"))
            } else if !is_secret_name(secret) {
                Err(format!("`{secret}` is not a secret name"))
            } else if version.is_some_and(|v| !is_secret_name(v)) {
                Err("the secret version is not a version".into())
            } else {
                Ok(SecretLocator {
                    vault: vault.to_ascii_lowercase(),
                    suffix: home_suffix.to_ascii_lowercase(),
                    secret: secret.to_string(),
                    version: version.map(str::to_string),
                })
            }
        }
        _ => Err("it names neither a SecretUri nor a VaultName and a SecretName".into()),
    })
}

/// Reads a Key Vault secret URL, `https://{vault}.{suffix}/secrets/{name}[/{version}][/]`, as App Service's
/// `SecretUri` and API Management's `keyVault.secretIdentifier` give it (apim-spec: "Providing a versioned secret
/// will prevent auto-refresh").
pub fn parse_secret_identifier(url: &str) -> Result<SecretLocator, String> {
    let url = url.trim();
    let host = parse_vault_url(url)
        .ok_or_else(|| format!("`{url}` is not an https URL of a Key Vault in a known cloud"))?;
    let after_scheme = &url[url.find("://").map_or(0, |i| i + 3)..];
    let path = after_scheme
        .split_once('/')
        .map_or("", |(_, p)| p)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [collection, name, rest @ ..]
            if collection.eq_ignore_ascii_case("secrets") && rest.len() <= 1 =>
        {
            if !is_secret_name(name) {
                return Err(format!("`{name}` is not a secret name"));
            }
            let version = rest.first().filter(|v| !v.is_empty());
            if version.is_some_and(|v| !is_secret_name(v)) {
                return Err("the secret version is not a version".into());
            }
            Ok(SecretLocator {
                vault: host.name,
                suffix: host.suffix,
                secret: name.to_string(),
                version: version.map(|v| v.to_string()),
            })
        }
        _ => Err(format!(
            "`{url}` does not name a secret (expected /secrets/{{name}}[/{{version}}])"
        )),
    }
}

/// Key Vault names: 3 to 24 letters, digits and hyphens.
fn is_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Secret names (and versions): 1 to 127 letters, digits and hyphens.
fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kv_ls(name: &str, base_url: Value) -> Value {
        json!({"name": name, "properties": {"type": "AzureKeyVault", "typeProperties": {"baseUrl": base_url}}})
    }

    fn reference(store: &str, secret: Value) -> Value {
        json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
    }

    #[test]
    fn vault_urls_normalise_scheme_case_slash_and_sovereign_suffix() {
        for url in [
            "https://contoso-kv.vault.azure.net/",
            "HTTPS://Contoso-KV.vault.azure.net",
            "contoso-kv.VAULT.azure.net/",
            "https://contoso-kv.vault.azure.cn/",
            "https://contoso-kv.vault.usgovcloudapi.net:443/",
            "https://contoso-kv.vault.microsoftazure.de",
        ] {
            assert_eq!(
                parse_vault_url(url).map(|h| h.name),
                Some("contoso-kv".into()),
                "{url}"
            );
        }
        for url in [
            "http://contoso-kv.vault.azure.net/",
            "https://contoso.blob.core.windows.net/",
            "",
            "https://vault.azure.net",
        ] {
            assert_eq!(parse_vault_url(url), None, "{url}");
        }
    }

    proptest::proptest! {
        #[test]
        fn vault_urls_never_panic_and_only_known_suffixes_parse(url in "\\PC{0,80}") {
            if let Some(host) = parse_vault_url(&url) {
                proptest::prop_assert!(KEY_VAULT_SUFFIXES.contains(&host.suffix.as_str()));
                proptest::prop_assert!(!host.name.is_empty());
            }
        }
    }

    #[test]
    fn finds_nested_references_with_their_paths() {
        let kv = kv_ls("KV", json!("https://contoso-kv.vault.azure.net/"));
        let index = FactoryIndex::new([&kv]);
        let props = json!({"type": "AzureDatabricks", "typeProperties": {
            "accessToken": reference("KV", json!("dbx-token")),
            "nested": {"list": [{"servicePrincipalCredential": reference("kv", json!("sp-secret"))}]}
        }});
        let refs = find_references(&props, &index);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].path, "typeProperties.accessToken");
        assert_eq!(refs[0].vault, Resolved::Certain("contoso-kv".into()));
        assert_eq!(refs[0].secret_name, Resolved::Certain("dbx-token".into()));
        assert_eq!(
            refs[1].path,
            "typeProperties.nested.list[0].servicePrincipalCredential"
        );
        assert_eq!(refs[1].secret_name, Resolved::Certain("sp-secret".into()));
    }

    #[test]
    fn secret_name_from_a_parameter_default_is_only_a_guess() {
        let kv = kv_ls("KV", json!("https://contoso-kv.vault.azure.net/"));
        let index = FactoryIndex::new([&kv]);
        let props = json!({"type": "AzureSqlDatabase",
        "parameters": {"secretName": {"type": "String", "defaultValue": "sql-password"}, "noDefault": {"type": "String"}},
        "typeProperties": {
            "a": reference("KV", json!("@{linkedService().secretName}")),
            "b": reference("KV", json!({"type": "Expression", "value": "@linkedService().secretName"})),
            "c": reference("KV", json!("@linkedService().noDefault")),
            "d": reference("KV", json!("@concat('sql-', 'password')")),
            "e": reference("KV", json!({"type": "Expression", "value": "sql-password"})),
            "f": reference("KV", json!("prefix-@{linkedService().secretName}")),
        }});
        let refs = find_references(&props, &index);
        let names: Vec<_> = refs.iter().map(|r| r.secret_name.clone()).collect();
        assert_eq!(names[0], Resolved::ParameterDefault("sql-password".into()));
        assert_eq!(names[1], Resolved::ParameterDefault("sql-password".into()));
        assert!(matches!(&names[2], Resolved::Unresolved(why) if why.contains("no default")));
        assert!(matches!(&names[3], Resolved::Unresolved(why) if why.contains("cannot evaluate")));
        assert_eq!(names[4], Resolved::Certain("sql-password".into()));
        assert_eq!(
            names[5],
            Resolved::ParameterDefault("prefix-sql-password".into())
        );
    }

    #[test]
    fn a_parameterised_store_takes_what_the_reference_passes() {
        let kv = kv_ls(
            "KVP",
            json!({"type": "Expression", "value": "@{linkedService().vaultUrl}"}),
        );
        let index = FactoryIndex::new([&kv]);
        let literal = json!({"type": "AzureSqlDatabase", "typeProperties": {"password": {
            "type": "AzureKeyVaultSecret", "secretName": "sql-password",
            "store": {"referenceName": "KVP", "type": "LinkedServiceReference", "parameters": {"vaultUrl": "https://contoso-kv.vault.azure.net/"}}}}});
        assert_eq!(
            find_references(&literal, &index)[0].vault,
            Resolved::Certain("contoso-kv".into())
        );

        let defaulted = json!({"type": "AzureSqlDatabase",
            "parameters": {"kv": {"type": "String", "defaultValue": "https://contoso-kv.vault.azure.net/"}},
            "typeProperties": {"password": {
            "type": "AzureKeyVaultSecret", "secretName": "sql-password",
            "store": {"referenceName": "KVP", "type": "LinkedServiceReference", "parameters": {"vaultUrl": "@linkedService().kv"}}}}});
        assert_eq!(
            find_references(&defaulted, &index)[0].vault,
            Resolved::ParameterDefault("contoso-kv".into())
        );

        let nothing_passed = json!({"type": "AzureSqlDatabase", "typeProperties": {"password": reference("KVP", json!("sql-password"))}});
        assert!(matches!(
            find_references(&nothing_passed, &index)[0].vault,
            Resolved::Unresolved(_)
        ));
    }

    #[test]
    fn a_missing_store_is_unresolved_not_a_match() {
        let index = FactoryIndex::default();
        let props = json!({"typeProperties": {"password": reference("Gone", json!("s"))}});
        assert!(
            matches!(&find_references(&props, &index)[0].vault, Resolved::Unresolved(why) if why.contains("Gone"))
        );
    }

    #[test]
    fn pinned_versions_are_kept() {
        let kv = kv_ls("KV", json!("https://contoso-kv.vault.azure.net/"));
        let index = FactoryIndex::new([&kv]);
        let mut r = reference("KV", json!("s"));
        r["secretVersion"] = json!("0123abc");
        let props = json!({"typeProperties": {"password": r}});
        assert_eq!(
            find_references(&props, &index)[0].secret_version.as_deref(),
            Some("0123abc")
        );
        let mut r = reference("KV", json!("s"));
        r["secretVersion"] = json!("");
        let props = json!({"typeProperties": {"password": r}});
        assert_eq!(find_references(&props, &index)[0].secret_version, None);
    }

    #[test]
    fn inline_secrets_are_found_masked_or_encrypted() {
        let masked = json!({"typeProperties": {"connectionString": {"type": "SecureString", "value": MASK}, "encryptedCredential": "ew0K"}});
        assert_eq!(
            inline_secret_paths(&masked),
            [
                "typeProperties.connectionString",
                "typeProperties.encryptedCredential"
            ]
        );
        let clean =
            json!({"typeProperties": {"password": reference("KV", json!("s")), "server": "x"}});
        assert!(inline_secret_paths(&clean).is_empty());
    }

    #[test]
    fn credentials_and_runtimes_are_found() {
        let props = json!({"connectVia": {"referenceName": "shir-1", "type": "IntegrationRuntimeReference"},
            "typeProperties": {"credential": {"referenceName": "sp-cred", "type": "CredentialReference"}}});
        assert_eq!(credential_references(&props), ["sp-cred"]);
        assert_eq!(connect_via(&props).as_deref(), Some("shir-1"));
        let auto = json!({"connectVia": {"referenceName": "AutoResolveIntegrationRuntime"}});
        assert_eq!(connect_via(&auto), None);
    }

    #[test]
    fn deep_hostile_nesting_does_not_overflow() {
        let mut v = json!("leaf");
        for _ in 0..(MAX_DEPTH * 3) {
            v = json!({"a": v});
        }
        assert!(find_references(&v, &FactoryIndex::default()).is_empty());
    }

    #[test]
    fn app_service_references_of_both_forms_are_read_with_their_cloud_and_pin() {
        let uri = parse_app_service_reference(
            "@Microsoft.KeyVault(SecretUri=https://Contoso-KV.vault.azure.net/secrets/sql-password/)",
            "vault.azure.net",
        );
        assert_eq!(
            uri,
            Some(Ok(SecretLocator {
                vault: "contoso-kv".into(),
                suffix: "vault.azure.net".into(),
                secret: "sql-password".into(),
                version: None
            }))
        );
        let pinned = parse_app_service_reference(
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.cn/secrets/sql-password/abc123)",
            "vault.azure.net",
        )
        .and_then(Result::ok)
        .expect("pinned");
        assert_eq!(pinned.version.as_deref(), Some("abc123"));
        assert_eq!(pinned.suffix, "vault.azure.cn");
        let named = parse_app_service_reference(
            " @microsoft.keyvault(VaultName=contoso-kv; SecretName=sql-password;SecretVersion=v2) ",
            "vault.usgovcloudapi.net",
        )
        .and_then(Result::ok)
        .expect("vault name form");
        assert_eq!(named.suffix, "vault.usgovcloudapi.net");
        assert_eq!(named.version.as_deref(), Some("v2"));
        assert_eq!(
            parse_app_service_reference("plain value", "vault.azure.net"),
            None
        );
        for broken in [
            "@Microsoft.KeyVault(VaultName=contoso-kv)",
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/keys/k)",
            "@Microsoft.KeyVault(SecretUri=https://evil.example/secrets/s)",
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/s/v/extra)",
            "@Microsoft.KeyVault(SecretUri=https://contoso-kv.vault.azure.net/secrets/sql-password",
            "@Microsoft.KeyVault(Secret=https://contoso-kv.vault.azure.net/secrets/s)",
        ] {
            assert!(
                matches!(
                    parse_app_service_reference(broken, "vault.azure.net"),
                    Some(Err(_))
                ),
                "{broken}"
            );
        }
    }

    #[test]
    fn api_management_secret_identifiers_name_a_secret_and_maybe_a_version() {
        let unpinned =
            parse_secret_identifier("https://contoso-kv.vault.azure.net/secrets/sql-password")
                .expect("identifier");
        assert_eq!(
            (unpinned.secret.as_str(), unpinned.version),
            ("sql-password", None)
        );
        let pinned = parse_secret_identifier(
            "https://contoso-kv.vault.azure.net/secrets/sql-password/0123abcd",
        )
        .expect("identifier");
        assert_eq!(pinned.version.as_deref(), Some("0123abcd"));
        assert!(parse_secret_identifier("https://contoso-kv.vault.azure.net/").is_err());
        assert!(parse_secret_identifier("http://contoso-kv.vault.azure.net/secrets/s").is_err());
    }
}
