//! ADF's test connection (`POST …/testConnectivity`) and integration runtime status
//! (`POST …/integrationruntimes/{ir}/getStatus`): which seeded linked service is being tested, what its
//! integration runtime says, whether its Key Vault references resolve, and what its test script answers.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::arm_common::{self, FactoryPath, not_found};
use crate::http::{Ctx, cloud_error, json_response};
use crate::state::Shared;
use crate::store::{self, ChildKind, Factory, IntegrationRuntime, Store, TestScript};
use crate::util::lock;

struct TestError {
    code: String,
    message: String,
}

fn outcome(errors: Vec<TestError>) -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "succeeded": errors.is_empty(),
            "errors": errors
                .into_iter()
                .map(|e| json!({"code": e.code, "message": e.message}))
                .collect::<Vec<_>>(),
        }),
    )
}

/// `POST …/factories/{f}/testConnectivity` with `{"linkedService": {"properties": …}, "parameters"?: …}`.
pub(crate) fn test_connectivity(shared: &Shared, ctx: &Ctx, f: FactoryPath<'_>) -> Response {
    let body = ctx.json.as_ref();
    let Some(properties) = body
        .and_then(|b| b.pointer("/linkedService/properties"))
        .filter(|p| p.is_object())
    else {
        return cloud_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body must contain 'linkedService.properties'.",
        );
    };
    let name = body
        .and_then(|b| b.pointer("/linkedService/name"))
        .and_then(Value::as_str);
    let parameters = body
        .and_then(|b| b.get("parameters"))
        .and_then(Value::as_object);

    let store = lock(&shared.store);
    let factory = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => &store.factories[i],
        Err(missing) => return not_found(missing, f, None),
    };
    let matched = name
        .and_then(|n| factory.child(ChildKind::LinkedService, n))
        .or_else(|| {
            let wanted = comparable(properties);
            factory
                .linked_services
                .iter()
                .find(|ls| comparable(&ls.properties) == wanted)
        });

    if let Some(ir_name) = properties
        .pointer("/connectVia/referenceName")
        .and_then(Value::as_str)
    {
        let Some(ir) = factory.integration_runtime(ir_name) else {
            return cloud_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "The integration runtime '{ir_name}' referenced by the linked service does not exist in factory '{}'.",
                    factory.name
                ),
            );
        };
        if ir.ir_type().eq_ignore_ascii_case("Managed") && ir.interactive_authoring == Some(false) {
            return cloud_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "Interactive authoring is disabled for the integration runtime '{}' in the managed virtual network. Enable interactive authoring on the integration runtime to test connections.",
                    ir.name
                ),
            );
        }
        if ir.ir_type().eq_ignore_ascii_case("SelfHosted")
            && matches!(ir.state.as_deref(), Some("Offline" | "NeedRegistration"))
        {
            return outcome(vec![TestError {
                code: "IntegrationRuntimeOffline".into(),
                message: format!(
                    "The self-hosted integration runtime '{}' is offline: none of its nodes is connected. Make sure the integration runtime service is running on at least one node and can reach Data Factory.",
                    ir.name
                ),
            }]);
        }
    }

    let mut references = Vec::new();
    collect_key_vault_references(properties, &mut references);
    // ADF keeps the credential reference in `typeProperties.credential`; accept the top level too.
    let credential = [
        "/typeProperties/credential/referenceName",
        "/credential/referenceName",
    ]
    .iter()
    .find_map(|pointer| properties.pointer(pointer).and_then(Value::as_str))
    .and_then(|c| factory.child(ChildKind::Credential, c));
    if let Some(credential) = credential {
        collect_key_vault_references(&credential.properties, &mut references);
    }
    let lookup = |param: &str| {
        parameters
            .and_then(|p| p.get(param))
            .or_else(|| default_of(properties, param))
            .and_then(scalar)
    };
    let errors: Vec<TestError> = references
        .iter()
        .filter_map(|reference| check_reference(&store, factory, reference, &lookup))
        .collect();
    if !errors.is_empty() {
        return outcome(errors);
    }

    let resaved = matched.is_some_and(|ls| ls.resaved) || credential.is_some_and(|c| c.resaved);
    match matched.map(|ls| &ls.test) {
        None | Some(TestScript::Success) => outcome(Vec::new()),
        Some(TestScript::FailUntilResaved { .. }) if resaved => outcome(Vec::new()),
        Some(
            TestScript::Failure { message, code } | TestScript::FailUntilResaved { message, code },
        ) => outcome(vec![TestError {
            code: code
                .clone()
                .unwrap_or_else(|| "TestConnectionFailed".into()),
            message: message.clone(),
        }]),
        Some(TestScript::Http400 { message }) => {
            cloud_error(StatusCode::BAD_REQUEST, "BadRequest", message)
        }
    }
}

/// The properties as a GET would show them, minus `encryptedCredential`, with every inline secret
/// masked: a test body matches a stored linked service whether it carries masks or true values.
fn comparable(properties: &Value) -> Value {
    let mut masked = store::mask(properties, "");
    if let Some(type_properties) = masked
        .get_mut("typeProperties")
        .and_then(Value::as_object_mut)
    {
        type_properties.remove("encryptedCredential");
    }
    masked
}

fn collect_key_vault_references<'a>(value: &'a Value, out: &mut Vec<&'a Map<String, Value>>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("AzureKeyVaultSecret") {
                out.push(map);
            } else {
                map.values()
                    .for_each(|v| collect_key_vault_references(v, out));
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_key_vault_references(v, out)),
        _ => {}
    }
}

/// `properties.parameters.{name}.defaultValue`.
fn default_of<'a>(properties: &'a Value, name: &str) -> Option<&'a Value> {
    properties
        .get("parameters")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?
        .1
        .get("defaultValue")
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Evaluates the small expression subset linked services use: literals, `@linkedService().x`,
/// `@{linkedService().x}` interpolated in a string, and `{"type":"Expression","value":…}`.
fn resolve(value: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match value {
        Value::String(s) => resolve_str(s, lookup),
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("Expression") => {
            resolve_str(map.get("value")?.as_str()?, lookup)
        }
        _ => None,
    }
}

fn resolve_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    fn parameter(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let expr = expr.trim();
        let prefix = "linkedservice().";
        let head = expr.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| lookup(&expr[prefix.len()..]))
            .flatten()
    }
    if let Some(literal) = text.strip_prefix("@@") {
        return Some(format!("@{literal}"));
    }
    if let Some(expr) = text.strip_prefix('@').filter(|e| !e.starts_with('{')) {
        return parameter(expr, lookup);
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        out.push_str(&parameter(&rest[start + 2..end], lookup)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Resolves one Key Vault reference the way ADF does when it tests; an error if the secret (version)
/// is missing, disabled, expired or not yet valid. References that cannot be resolved are left alone.
fn check_reference(
    store: &Store,
    factory: &Factory,
    reference: &Map<String, Value>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<TestError> {
    let store_ref = reference.get("store")?;
    let kv_linked_service = factory.child(
        ChildKind::LinkedService,
        store_ref.get("referenceName")?.as_str()?,
    )?;
    let kv_properties = &kv_linked_service.properties;
    let passed = store_ref.get("parameters").and_then(Value::as_object);
    let store_lookup = |param: &str| {
        passed
            .and_then(|p| p.get(param))
            .or_else(|| default_of(kv_properties, param))
            .and_then(scalar)
    };
    let base_url = resolve(
        kv_properties.pointer("/typeProperties/baseUrl")?,
        &store_lookup,
    )?;
    let host = url::Url::parse(base_url.trim())
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let vault = store.vault(host.split('.').next()?)?;
    let secret_name = resolve(reference.get("secretName")?, lookup)?;
    let pinned = reference
        .get("secretVersion")
        .and_then(|v| resolve(v, lookup))
        .filter(|v| !v.trim().is_empty());

    let failure = |detail: String| TestError {
        code: "AzureKeyVaultSecretError".into(),
        message: format!(
            "Failed to get the secret from key vault, secretName: {secret_name}, secretVersion: {}, vaultBaseUrl: {base_url}. The error message is: {detail}",
            pinned.as_deref().unwrap_or("")
        ),
    };
    let not_found = |id: String| {
        failure(format!(
            "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ))
    };
    if vault.forbidden {
        return Some(failure(format!(
            "The user, group or application does not have secrets get permission on key vault '{}'.",
            vault.name
        )));
    }
    let Some(secret) = vault.secret(&secret_name) else {
        return Some(not_found(secret_name.clone()));
    };
    let version = match &pinned {
        Some(v) => match secret.version(v) {
            Some(version) => version,
            None => return Some(not_found(format!("{secret_name}/{v}"))),
        },
        None => match secret.latest_enabled() {
            Some(version) => version,
            None => {
                return Some(failure(
                    "Operation get is not allowed on a disabled secret.".into(),
                ));
            }
        },
    };
    let now = now_secs();
    if !version.enabled {
        Some(failure(
            "Operation get is not allowed on a disabled secret.".into(),
        ))
    } else if version.exp.is_some_and(|exp| exp <= now) {
        Some(failure(
            "Secret is expired. Operation get is not allowed on an expired secret.".into(),
        ))
    } else if version.nbf.is_some_and(|nbf| nbf > now) {
        Some(failure(
            "Secret is not yet valid (nbf is in the future).".into(),
        ))
    } else {
        None
    }
}

fn with_factory<'a>(
    store: &'a Store,
    f: FactoryPath<'_>,
    ir_name: &str,
) -> Result<(&'a Factory, &'a IntegrationRuntime), Box<Response>> {
    let factory = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => &store.factories[i],
        Err(missing) => return Err(Box::new(not_found(missing, f, None))),
    };
    let ir = factory.integration_runtime(ir_name).ok_or_else(|| {
        Box::new(arm_common::resource_not_found(
            &format!(
                "Microsoft.DataFactory/factories/{}/integrationruntimes/{ir_name}",
                f.name
            ),
            f.rg,
        ))
    })?;
    Ok((factory, ir))
}

/// `GET …/integrationruntimes/{ir}`.
pub(crate) fn integration_runtime(shared: &Shared, f: FactoryPath<'_>, ir_name: &str) -> Response {
    let store = lock(&shared.store);
    match with_factory(&store, f, ir_name) {
        Ok((factory, ir)) => json_response(StatusCode::OK, factory.integration_runtime_json(ir)),
        Err(response) => *response,
    }
}

/// `POST …/integrationruntimes/{ir}/getStatus`, shaped like `IntegrationRuntimes_GetStatus.json`.
pub(crate) fn integration_runtime_status(
    shared: &Shared,
    f: FactoryPath<'_>,
    ir_name: &str,
) -> Response {
    let store = lock(&shared.store);
    let (factory, ir) = match with_factory(&store, f, ir_name) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let self_hosted = !ir.ir_type().eq_ignore_ascii_case("Managed");
    let default_state = if self_hosted { "Online" } else { "Started" };
    let state = ir.state.as_deref().unwrap_or(default_state);
    let type_properties = if self_hosted {
        self_hosted_status(ir, state)
    } else {
        json!({"createTime": factory.create_time, "nodes": [], "otherErrors": []})
    };
    json_response(
        StatusCode::OK,
        json!({
            "name": ir.name,
            "properties": {
                "type": if self_hosted { "SelfHosted" } else { "Managed" },
                "dataFactoryName": factory.name,
                "state": state,
                "typeProperties": type_properties,
            }
        }),
    )
}

const SHIR_VERSION: &str = "5.44.8984.1";

fn node(ir: &str, index: usize, status: &str) -> Value {
    let online = status == "Online";
    let flag = |b: bool| if b { "True" } else { "False" };
    json!({
        "nodeName": format!("node-{index}"),
        "machineName": format!("{}-VM{index}", ir.to_ascii_uppercase()),
        "hostServiceUri": format!("https://{}-vm{index}.contoso.local:8050/HostServiceRemote.svc/", ir.to_ascii_lowercase()),
        "status": status,
        "capabilities": {
            "serviceBusConnected": flag(online),
            "httpsPortEnabled": "True",
            "credentialInSync": "True",
            "connectedToResourceManager": flag(online),
            "nodeEnabled": "True",
        },
        "versionStatus": "UpToDate",
        "version": SHIR_VERSION,
        "registerTime": "2023-02-01T10:00:00.0000000Z",
        "lastConnectTime": "2024-05-01T08:00:00.0000000Z",
        "lastStartTime": "2024-05-01T07:59:30.0000000Z",
        "lastUpdateResult": "None",
        "isActiveDispatcher": index == 1,
        "maxConcurrentJobs": 8,
    })
}

fn self_hosted_status(ir: &IntegrationRuntime, state: &str) -> Value {
    let nodes: Vec<Value> = match &ir.nodes {
        Some(nodes) => nodes
            .iter()
            .enumerate()
            .map(|(i, seeded)| {
                let status = seeded
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("Online");
                let mut n = node(&ir.name, i + 1, status);
                if let (Some(target), Some(extra)) = (n.as_object_mut(), seeded.as_object()) {
                    target.extend(extra.clone());
                }
                n
            })
            .collect(),
        None => match state {
            "NeedRegistration" => Vec::new(),
            "Limited" => vec![node(&ir.name, 1, "Online"), node(&ir.name, 2, "Offline")],
            "Online" => vec![node(&ir.name, 1, "Online")],
            other => vec![node(&ir.name, 1, other)],
        },
    };
    let connected = nodes.iter().any(|n| n["status"] == "Online");
    let flag = |b: bool| if b { "True" } else { "False" };
    json!({
        "autoUpdate": "On",
        "taskQueueId": store::version_id(&[&ir.name, "queue"]),
        "version": SHIR_VERSION,
        "nodes": nodes,
        "updateDelayOffset": "PT3H",
        "localTimeZoneOffset": "PT0S",
        "serviceUrls": ["wu.frontend.clouddatahub.net", "*.servicebus.windows.net"],
        "versionStatus": "UpToDate",
        "capabilities": {
            "serviceBusConnected": flag(connected),
            "httpsPortEnabled": "True",
            "credentialInSync": "True",
            "connectedToResourceManager": flag(connected),
            "nodeEnabled": "True",
        },
        "latestVersion": SHIR_VERSION,
        "createTime": "2023-02-01T09:45:00.0000000Z",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_resolve() {
        let lookup = |name: &str| {
            (name == "kvUrl").then(|| "https://contoso-kv.vault.azure.net/".to_owned())
        };
        assert_eq!(resolve(&json!("plain"), &lookup).as_deref(), Some("plain"));
        assert_eq!(
            resolve(&json!("@{linkedService().kvUrl}"), &lookup).as_deref(),
            Some("https://contoso-kv.vault.azure.net/")
        );
        assert_eq!(
            resolve(
                &json!({"type": "Expression", "value": "@linkedService().kvUrl"}),
                &lookup
            )
            .as_deref(),
            Some("https://contoso-kv.vault.azure.net/")
        );
        assert_eq!(
            resolve(
                &json!({"type": "Expression", "value": "sql-password"}),
                &lookup
            )
            .as_deref(),
            Some("sql-password")
        );
        assert_eq!(
            resolve(&json!("x-@{linkedService().kvUrl}"), &lookup).as_deref(),
            Some("x-https://contoso-kv.vault.azure.net/")
        );
        assert_eq!(resolve(&json!("@linkedService().other"), &lookup), None);
        assert_eq!(
            resolve(&json!("@@literal"), &lookup).as_deref(),
            Some("@literal")
        );
    }
}
