//! Key Vault secrets under `/kv/{vault}/`: the 401 challenge the SDK's authorizer parses, audience
//! checks, the versions pager (metadata only), the secrets pager, and value reads (counted, because the
//! product must never make one).

use axum::http::{HeaderValue, Method, StatusCode, header::WWW_AUTHENTICATE};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::server::{Ctx, json_response};
use crate::store::{Secret, SecretVersion, Vault};
use crate::tokens::{KEYVAULT_AUDIENCE, TokenCheck, normalize_audience};
use crate::{Shared, lock};

fn kv_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"error": {"code": code, "message": message}}))
}

fn challenge(shared: &Shared, message: &str) -> Response {
    let mut response = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
    let value = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"{KEYVAULT_AUDIENCE}\"",
        shared.config.tenant_id
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// `None` when the caller holds a valid Key Vault token, else the 401 challenge.
fn authenticate(shared: &Shared, ctx: &Ctx) -> Option<Response> {
    let Some(token) = ctx.bearer() else {
        return Some(challenge(
            shared,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ));
    };
    match shared.tokens.check(token) {
        TokenCheck::Valid(issued) if normalize_audience(&issued.audience) == KEYVAULT_AUDIENCE => {
            None
        }
        TokenCheck::Valid(issued) => Some(challenge(
            shared,
            &format!(
                "AKV10022: Invalid audience. Expected {KEYVAULT_AUDIENCE}, found: {}.",
                issued.audience
            ),
        )),
        TokenCheck::Expired => Some(challenge(
            shared,
            "AKV10032: Invalid issuer or expired token. The token has expired.",
        )),
        TokenCheck::Unknown => Some(challenge(
            shared,
            "AKV10032: Invalid token. The token could not be validated.",
        )),
    }
}

/// Handles one request under `/kv/{vault}/` (after latency and injected errors).
pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Response {
    let segments: Vec<&str> = ctx.segments.iter().skip(1).map(String::as_str).collect();
    let Some((vault_name, rest)) = segments.split_first() else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No vault in the request path.",
        );
    };
    let store = lock(&shared.store);
    let Some(vault) = store.vault(vault_name) else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            &format!("The vault '{vault_name}' does not exist."),
        );
    };
    if let Some(response) = authenticate(shared, ctx) {
        return response;
    }
    if ctx.query_param("api-version").is_none_or(str::is_empty) {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing 'api-version' parameter.",
        );
    }
    if ctx.method != Method::GET {
        return kv_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            &format!(
                "The method '{}' is not supported by this emulator.",
                ctx.method
            ),
        );
    }
    if vault.forbidden {
        let permission = match rest {
            ["secrets"] | ["secrets", _, "versions"] => "list",
            _ => "get",
        };
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": {
                "code": "Forbidden",
                "message": format!("The user, group or application 'appid={};oid={};iss=https://sts.windows.net/{}/' does not have secrets {permission} permission on key vault '{};location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287", shared.config.managed_identity_client_id, shared.config.managed_identity_client_id, shared.config.tenant_id, vault.name),
                "innererror": {"code": "AccessDenied"},
            }}),
        );
    }
    let urls = VaultUrls {
        ids: canonical_vault_url(&vault.name),
        pages: format!("{}/kv/{}", shared.config.https_url, vault.name),
    };
    match rest {
        ["secrets"] => list_secrets(shared, ctx, vault, &urls),
        ["secrets", name, "versions"] => match vault.secret(name) {
            Some(secret) => list_versions(shared, ctx, secret, &urls),
            None => secret_not_found(name),
        },
        ["secrets", name] => {
            shared.count(|c| c.secret_value_reads += 1);
            match vault.secret(name) {
                Some(secret) => match secret.current() {
                    Some(version) => secret_bundle(&urls.ids, secret, version),
                    None => secret_not_found(name),
                },
                None => secret_not_found(name),
            }
        }
        ["secrets", name, version] => {
            shared.count(|c| c.secret_value_reads += 1);
            match vault
                .secret(name)
                .and_then(|s| s.version(version).map(|v| (s, v)))
            {
                Some((secret, version)) => secret_bundle(&urls.ids, secret, version),
                None => secret_not_found(&format!("{name}/{version}")),
            }
        }
        _ => kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!(
                "The path '{}' is not a Key Vault secrets operation.",
                ctx.path
            ),
        ),
    }
}

/// The URL a vault's object ids start with: `https://{vault}.vault.azure.net`, whatever URL the client
/// used ("Object identifiers" in
/// <https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates>; the
/// `SecretNewVersionCreated` payloads under `reference/events/` carry ids of that form). The SDKs parse
/// ids as `{vault URL}/secrets/{name}[/{version}]` (azure-keyvault-secrets 4.12,
/// `_shared/__init__.py`, `parse_key_vault_id`) and refuse anything with a longer path. Other clouds'
/// suffixes (`vault.azure.cn`, …) are not modelled.
fn canonical_vault_url(vault: &str) -> String {
    format!("https://{vault}.vault.azure.net")
}

/// Where ids point (the vault's own host) and where `nextLink`s point (back at the emulator, so a client
/// can follow them).
struct VaultUrls {
    ids: String,
    pages: String,
}

fn secret_not_found(id: &str) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )
}

fn secret_bundle(base: &str, secret: &Secret, version: &SecretVersion) -> Response {
    if !version.enabled {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": {
                "code": "Forbidden",
                "message": "Operation get is not allowed on a disabled secret.",
                "innererror": {"code": "SecretDisabled"},
            }}),
        );
    }
    let mut body = Map::new();
    body.insert("value".into(), json!(version.value));
    if let Some(content_type) = &version.content_type {
        body.insert("contentType".into(), json!(content_type));
    }
    body.insert(
        "id".into(),
        json!(format!(
            "{base}/secrets/{}/{}",
            secret.name, version.version
        )),
    );
    body.insert("attributes".into(), version.attributes());
    body.insert("tags".into(), json!({}));
    json_response(StatusCode::OK, Value::Object(body))
}

fn properties_item(id: String, version: &SecretVersion) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(id));
    if let Some(content_type) = &version.content_type {
        item.insert("contentType".into(), json!(content_type));
    }
    item.insert("attributes".into(), version.attributes());
    item.insert("tags".into(), json!({}));
    Value::Object(item)
}

/// A Key Vault page: `{"value": […], "nextLink": <absolute URL or null>}`.
fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>, base_path: &str) -> Response {
    let skip = ctx
        .query_param("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let size = ctx
        .query_param("maxresults")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| *m > 0)
        .map_or(shared.config.kv_page_size, |m| {
            m.min(shared.config.kv_page_size)
        });
    let end = skip.saturating_add(size).min(items.len());
    let api_version = ctx.query_param("api-version").unwrap_or("7.6");
    let next_link = (end < items.len()).then(|| {
        format!("{base_path}?api-version={api_version}&$skiptoken={end}&maxresults={size}")
    });
    json_response(
        StatusCode::OK,
        json!({"value": items[skip..end].to_vec(), "nextLink": next_link}),
    )
}

fn list_versions(shared: &Shared, ctx: &Ctx, secret: &Secret, urls: &VaultUrls) -> Response {
    let items = secret
        .versions
        .iter()
        .map(|v| {
            properties_item(
                format!("{}/secrets/{}/{}", urls.ids, secret.name, v.version),
                v,
            )
        })
        .collect();
    page(
        shared,
        ctx,
        items,
        &format!("{}/secrets/{}/versions", urls.pages, secret.name),
    )
}

fn list_secrets(shared: &Shared, ctx: &Ctx, vault: &Vault, urls: &VaultUrls) -> Response {
    let items = vault
        .secrets
        .iter()
        .filter_map(|s| {
            s.current()
                .map(|v| properties_item(format!("{}/secrets/{}", urls.ids, s.name), v))
        })
        .collect();
    page(shared, ctx, items, &format!("{}/secrets", urls.pages))
}
