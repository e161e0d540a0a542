//! The control API under `/_emulator/` on the plain HTTP listener, so another process (the demo script,
//! the product's CLI tests) can do what the Rust API does. Never faulted, never recorded.
//!
//! - `GET requests`, `DELETE requests`
//! - `GET state`, `GET counters`, `GET secrets`
//! - `GET faults`, `PUT faults` (a JSON `Faults`)
//! - `GET linked-service?factoryId=…&name=…` (the stored, unmasked resource)
//! - `GET synapse-linked-service?workspace=…&name=…` (the same, for a Synapse workspace)
//! - `GET trap` (the trap listener's port and what reached it)
//! - `POST rotate` (`{"vault","secret"}`: a new secret version), `POST advance` (`{"hours"}`: the clock)
//! - `GET site-reference?id=…&kind=appsettings|connectionstrings&name=…`, `GET site-refreshes?id=…`
//! - `GET named-value?id=…` (an API Management named value's cached version and last status)
//! - `GET info` (endpoints, identities and the env the product needs)

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::http::{Ctx, json_response};
use crate::state::Shared;
use crate::util::lock;

/// The full state document: the estate plus counters and active faults.
pub(crate) fn state(shared: &Shared) -> Value {
    let mut state = lock(&shared.store).to_state_json();
    if let Some(map) = state.as_object_mut() {
        map.insert("counters".into(), json!(*lock(&shared.counters)));
        map.insert("faults".into(), json!(shared.faults.current()));
        map.insert("workspaces".into(), lock(&shared.synapse).to_state_json());
        map.insert("sites".into(), lock(&shared.appservice).to_state_json());
        map.insert("apiManagement".into(), lock(&shared.apim).to_state_json());
        map.insert("now".into(), json!(crate::util::rfc3339(shared.now_unix())));
    }
    state
}

/// Every secret string the emulator knows, sorted and deduplicated.
pub(crate) fn known_secrets(shared: &Shared) -> Vec<String> {
    let mut secrets = lock(&shared.store).secret_values();
    secrets.extend(lock(&shared.synapse).secret_values());
    secrets.extend(lock(&shared.apim).secret_values());
    secrets.extend(shared.tokens.all());
    secrets.insert(shared.config.identity_header.clone());
    secrets.insert(shared.config.client_secret.clone());
    secrets.into_iter().collect()
}

/// A rotation: a new current version of the secret.
pub(crate) fn rotate(shared: &Shared, vault: &str, secret: &str) -> Option<String> {
    let now = shared.now_unix();
    lock(&shared.store).rotate(vault, secret, now)
}

/// Moves the emulator's clock forward.
pub(crate) fn advance(shared: &Shared, hours: u64) {
    let secs = i64::try_from(hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let mut offset = lock(&shared.clock_offset_secs);
    *offset = offset.saturating_add(secs);
}

/// One App Service reference's cached resolution.
pub(crate) fn site_reference(shared: &Shared, id: &str, kind: &str, name: &str) -> Option<Value> {
    let kind = crate::appservice_model::RefKind::from_segment(kind)?;
    let now = shared.now_unix();
    let mut estate = lock(&shared.appservice);
    let store = lock(&shared.store);
    estate.reference_state(&store, now, id, kind, name)
}

/// One API Management named value's cached state.
pub(crate) fn named_value(shared: &Shared, id: &str) -> Option<Value> {
    let now = shared.now_unix();
    let mut estate = lock(&shared.apim);
    let store = lock(&shared.store);
    estate.named_value_state(&store, now, id)
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"error": message}))
}

pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Response {
    let resource = ctx.segments.get(1).map(String::as_str).unwrap_or("");
    match (&ctx.method, resource) {
        (&Method::GET, "requests") => {
            let log = lock(&shared.log);
            let entries: Vec<_> = log.entries.iter().map(|(_, e)| e).collect();
            json_response(StatusCode::OK, json!(entries))
        }
        (&Method::DELETE, "requests") => {
            lock(&shared.log).entries.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::GET, "state") => json_response(StatusCode::OK, state(shared)),
        (&Method::GET, "counters") => json_response(StatusCode::OK, json!(*lock(&shared.counters))),
        (&Method::GET, "secrets") => json_response(StatusCode::OK, json!(known_secrets(shared))),
        (&Method::GET, "faults") => json_response(StatusCode::OK, json!(shared.faults.current())),
        (&Method::PUT, "faults") => match serde_json::from_slice::<Faults>(&ctx.body) {
            Ok(faults) => {
                shared.faults.set(faults.clone());
                json_response(StatusCode::OK, json!(faults))
            }
            Err(err) => error(StatusCode::BAD_REQUEST, &format!("invalid faults: {err}")),
        },
        (&Method::GET, "linked-service") => {
            let (Some(factory_id), Some(name)) =
                (ctx.query_param("factoryId"), ctx.query_param("name"))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "factoryId and name query parameters are required",
                );
            };
            match lock(&shared.store).linked_service_resource(factory_id, name) {
                Some(resource) => json_response(StatusCode::OK, resource),
                None => error(StatusCode::NOT_FOUND, "no such linked service"),
            }
        }
        (&Method::GET, "synapse-linked-service") => {
            let (Some(workspace), Some(name)) =
                (ctx.query_param("workspace"), ctx.query_param("name"))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "workspace and name query parameters are required",
                );
            };
            match lock(&shared.synapse).linked_service_resource(workspace, name) {
                Some(resource) => json_response(StatusCode::OK, resource),
                None => error(StatusCode::NOT_FOUND, "no such Synapse linked service"),
            }
        }
        (&Method::POST, "rotate") => {
            let body = ctx.json.as_ref();
            let field = |name: &str| body.and_then(|b| b.get(name)).and_then(Value::as_str);
            let (Some(vault), Some(secret)) = (field("vault"), field("secret")) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a JSON body {\"vault\",\"secret\"} is required",
                );
            };
            match rotate(shared, vault, secret) {
                Some(version) => json_response(
                    StatusCode::OK,
                    json!({"vault": vault, "secret": secret, "version": version}),
                ),
                None => error(StatusCode::NOT_FOUND, "no such vault or secret"),
            }
        }
        (&Method::POST, "advance") => {
            let Some(hours) = ctx
                .json
                .as_ref()
                .and_then(|b| b.get("hours"))
                .and_then(Value::as_u64)
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a JSON body {\"hours\": n} is required",
                );
            };
            advance(shared, hours);
            json_response(
                StatusCode::OK,
                json!({"now": crate::util::rfc3339(shared.now_unix())}),
            )
        }
        (&Method::GET, "site-reference") => {
            let (Some(id), Some(kind), Some(name)) = (
                ctx.query_param("id"),
                ctx.query_param("kind"),
                ctx.query_param("name"),
            ) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "id, kind (appsettings or connectionstrings) and name query parameters are required",
                );
            };
            match site_reference(shared, id, kind, name) {
                Some(state) => json_response(StatusCode::OK, state),
                None => error(StatusCode::NOT_FOUND, "no such site, slot or reference"),
            }
        }
        (&Method::GET, "site-refreshes") => {
            let Some(id) = ctx.query_param("id") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the id query parameter is required",
                );
            };
            match lock(&shared.appservice).refreshes(id) {
                Some(refreshes) => {
                    json_response(StatusCode::OK, json!({"id": id, "refreshes": refreshes}))
                }
                None => error(StatusCode::NOT_FOUND, "no such site or slot"),
            }
        }
        (&Method::GET, "named-value") => {
            let Some(id) = ctx.query_param("id") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the id query parameter is required",
                );
            };
            match named_value(shared, id) {
                Some(state) => json_response(StatusCode::OK, state),
                None => error(StatusCode::NOT_FOUND, "no such named value"),
            }
        }
        (&Method::GET, "trap") => json_response(StatusCode::OK, json!(shared.trap.stats())),
        (&Method::GET, "info") => {
            let config = &shared.config;
            json_response(
                StatusCode::OK,
                json!({
                    "httpsUrl": config.https_url,
                    "tenantId": config.tenant_id,
                    "clientId": config.client_id,
                    "clientSecret": config.client_secret,
                    "identityHeader": config.identity_header,
                    "managedIdentityClientId": config.managed_identity_client_id,
                }),
            )
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown control endpoint; see the adf-emulator docs",
        ),
    }
}
