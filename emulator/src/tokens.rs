//! The token endpoints: App Service managed identity (`GET /msi/token`, plain HTTP) and Entra's
//! client-credentials flow (`POST /{tenant}/oauth2/v2.0/token`, TLS). Tokens are opaque random strings,
//! remembered with their audience and expiry so ARM and Key Vault can check them.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::http::{Ctx, json_response};
use crate::state::Shared;

const MSI_API_VERSION: &str = "2019-08-01";
const MSI_LIFETIME_SECS: u64 = 86_399;
const ENTRA_LIFETIME_SECS: u64 = 3_599;

fn msi_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({"statusCode": status.as_u16(), "message": message}),
    )
}

/// `GET /msi/token?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER`.
pub(crate) fn managed_identity(shared: &Shared, ctx: &Ctx) -> Response {
    if ctx.path != "/msi/token" {
        return msi_error(StatusCode::NOT_FOUND, "Not found.");
    }
    if ctx.method != Method::GET {
        return msi_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET is supported by the managed identity endpoint.",
        );
    }
    match ctx.header("x-identity-header") {
        None => {
            return msi_error(
                StatusCode::BAD_REQUEST,
                "The X-IDENTITY-HEADER header is required.",
            );
        }
        Some(value) if value != shared.config.identity_header => {
            return msi_error(
                StatusCode::UNAUTHORIZED,
                "The X-IDENTITY-HEADER value is not valid.",
            );
        }
        Some(_) => {}
    }
    match ctx.query_param("api-version") {
        Some(MSI_API_VERSION) => {}
        other => {
            return msi_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The api-version '{}' is not supported; use {MSI_API_VERSION}.",
                    other.unwrap_or("")
                ),
            );
        }
    }
    let Some(resource) = ctx.query_param("resource").filter(|r| !r.trim().is_empty()) else {
        return msi_error(
            StatusCode::BAD_REQUEST,
            "The 'resource' query parameter is required.",
        );
    };
    let client_id = ctx
        .query_param("client_id")
        .unwrap_or(&shared.config.managed_identity_client_id)
        .to_owned();
    let (token, expires_on) = shared.tokens.issue(resource, &client_id, MSI_LIFETIME_SECS);
    shared.count(|c| c.tokens_issued += 1);
    json_response(
        StatusCode::OK,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }),
    )
}

fn entra_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    ctx_trace: &str,
) -> Response {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json_response(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {ctx_trace} Correlation ID: {ctx_trace} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": ctx_trace,
            "correlation_id": ctx_trace,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// Whether `segments` are `{tenant}/v2.0/.well-known/openid-configuration`, the OpenID discovery document
/// MSAL (and so azure-identity's `ClientSecretCredential`) reads before it asks for a token.
pub(crate) fn is_discovery_path(segments: &[String]) -> bool {
    segments.len() == 4
        && segments[1].eq_ignore_ascii_case("v2.0")
        && segments[2] == ".well-known"
        && segments[3] == "openid-configuration"
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the fields MSAL reads (`token_endpoint`,
/// `authorization_endpoint`, `issuer`), pointing at this emulator. Shape from
/// <https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc> ("Find your app's OpenID
/// configuration document URI"); MSAL Python 1.x `authority.py` (`tenant_discovery`) fetches it for every
/// authority. An unknown tenant gets AADSTS90002, as on login.microsoftonline.com. Only
/// `token_endpoint` is served; the others are there because MSAL requires them.
fn openid_configuration(shared: &Shared, ctx: &Ctx, trace: &str) -> Response {
    let config = &shared.config;
    if ctx.method != Method::GET {
        return entra_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900_561,
            "The discovery document only answers GET.",
            trace,
        );
    }
    let tenant = ctx.segments.first().map(String::as_str).unwrap_or("");
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            trace,
        );
    }
    let base = format!("{}/{}", config.https_url, config.tenant_id);
    json_response(
        StatusCode::OK,
        json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "issuer": format!("{base}/v2.0"),
            "jwks_uri": format!("{}/{}/discovery/v2.0/keys", config.https_url, config.tenant_id),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token` with a client-credentials form body (and the discovery document,
/// see [`openid_configuration`]).
pub(crate) fn entra(shared: &Shared, ctx: &Ctx) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    if is_discovery_path(&ctx.segments) {
        return openid_configuration(shared, ctx, &trace);
    }
    let config = &shared.config;
    if ctx.method != Method::POST {
        return entra_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests.",
            &trace,
        );
    }
    let tenant = ctx.segments.first().map(String::as_str).unwrap_or("");
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            &trace,
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&ctx.body)
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type. Only client_credentials is supported here.",
            &trace,
        );
    }
    let client_id = field("client_id");
    if client_id != config.client_id {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                config.tenant_id
            ),
            &trace,
        );
    }
    match form.get("client_secret") {
        None => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                &trace,
            );
        }
        Some(secret) if *secret != config.client_secret => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
                &trace,
            );
        }
        Some(_) => {}
    }
    let scope = field("scope");
    let Some(resource) = scope.split_whitespace().find(|s| s.ends_with("/.default")) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
            &trace,
        );
    };
    let (token, _) = shared
        .tokens
        .issue(resource, client_id, ENTRA_LIFETIME_SECS);
    shared.count(|c| c.tokens_issued += 1);
    json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": ENTRA_LIFETIME_SECS,
            "ext_expires_in": ENTRA_LIFETIME_SECS,
            "access_token": token,
        }),
    )
}
