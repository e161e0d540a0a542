//! Key Vault secrets under `/kv/{vault}/`: the 401 challenge the SDK's authorizer parses, audience
//! checks, the versions pager (metadata only), the secrets pager, and value reads (counted, because the
//! product must never make one).

use axum::http::{HeaderValue, Method, StatusCode, header::WWW_AUTHENTICATE};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::faults::{KvPageFaultKind, PageFaultKind};
use crate::http::{Ctx, json_response};
use crate::state::Shared;
use crate::store::{Secret, SecretVersion, Vault};
use crate::token_store::{KEYVAULT_AUDIENCE, TokenCheck, normalize_audience};
use crate::util::lock;

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

/// The page size a listing request asks for: `maxresults`, at most the configured Key Vault page size.
fn page_size(shared: &Shared, ctx: &Ctx) -> usize {
    ctx.query_param("maxresults")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| *m > 0)
        .map_or(shared.config.kv_page_size, |m| {
            m.min(shared.config.kv_page_size)
        })
}

/// Which page (0 = the first) a `GET /kv/{vault}/secrets/{name}/versions` asks for; `None` for any other
/// request.
pub(crate) fn versions_page_index(shared: &Shared, ctx: &Ctx) -> Option<u64> {
    let is_versions = ctx.method == Method::GET
        && matches!(ctx.segments.as_slice(), [kv, _, secrets, _, versions]
            if kv == "kv" && secrets == "secrets" && versions == "versions");
    if !is_versions {
        return None;
    }
    let skip = ctx
        .query_param("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    u64::try_from(skip / page_size(shared, ctx).max(1)).ok()
}

/// Breaks a versions page the way a `kvPageFaults` entry says (faults.rs).
pub(crate) async fn break_versions_page(
    shared: &Shared,
    ctx: &Ctx,
    kind: KvPageFaultKind,
    response: Response,
) -> Response {
    match kind {
        // A 200 that carries an error object: some proxies and gateways answer so.
        KvPageFaultKind::ErrorObject => json_response(
            StatusCode::OK,
            json!({"error": {
                "code": "Forbidden",
                "message": "The request was refused by a gateway between the client and the vault (injected fault: an error object on a 200).",
            }}),
        ),
        KvPageFaultKind::ForeignPortNextLink => {
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut page: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let skip = ctx
                .query_param("$skiptoken")
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(0);
            let next = format!(
                "https://127.0.0.1:{}{}?api-version={}&$skiptoken={}",
                shared.trap.port,
                ctx.path,
                ctx.query_param("api-version").unwrap_or("7.6"),
                skip + page_size(shared, ctx)
            );
            if let Some(map) = page.as_object_mut() {
                map.insert("nextLink".into(), json!(next));
            }
            let mut out = json_response(parts.status, page);
            for (name, value) in &parts.headers {
                if name != axum::http::header::CONTENT_LENGTH {
                    out.headers_mut().insert(name.clone(), value.clone());
                }
            }
            out
        }
        KvPageFaultKind::TruncatedBody => {
            crate::faults::break_page(PageFaultKind::TruncatedBody, response, "").await
        }
        KvPageFaultKind::NotJson => {
            crate::faults::break_page(PageFaultKind::NotJson, response, "").await
        }
    }
}

/// A Key Vault page: `{"value": […], "nextLink": <absolute URL or null>}`.
fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>, base_path: &str) -> Response {
    let skip = ctx
        .query_param("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let size = page_size(shared, ctx);
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
