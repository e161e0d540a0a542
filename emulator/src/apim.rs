//! API Management (`Microsoft.ApiManagement/service`): services and their named values. A Key Vault-backed
//! named value caches the secret version it fetched; a rotation leaves it on the old version until
//! `refreshSecret` (a long-running operation polled at its `location`) or until 4 hours of emulator time pass.
//! `listValue`, which returns values, is always refused.
//!
//! Sources (see the emulator README, "API Management"): `reference/apim-spec/` (apimnamedvalues.json, the
//! extract and the examples) and the documentation quoted in its PROVENANCE.md.

use std::sync::MutexGuard;

use axum::http::header::{ETAG, LOCATION, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::apim_model::{API_VERSIONS, Estate, Operation, Service, fetch};
use crate::arm_common::{self as arm, ProviderPath, is};
use crate::http::{Ctx, cloud_error, json_response};
use crate::state::Shared;
use crate::util::lock;

const AZURE_ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");

// ---- ARM routes ----

/// Whether an ARM request is for the `Microsoft.ApiManagement` provider.
pub(crate) fn is_arm_request(segments: &[String]) -> bool {
    arm::is_provider_request(segments, "Microsoft.ApiManagement")
}

enum Route<'a> {
    List { sub: &'a str, rg: Option<&'a str> },
    Service(ServicePath<'a>),
    NamedValues(ServicePath<'a>),
    NamedValue(ServicePath<'a>, &'a str),
    RefreshSecret(ServicePath<'a>, &'a str),
    ListValue,
    OperationResult(ServicePath<'a>, &'a str),
}

#[derive(Clone, Copy)]
struct ServicePath<'a> {
    sub: &'a str,
    rg: &'a str,
    name: &'a str,
}

fn parse_route(segments: &[String]) -> Option<Route<'_>> {
    let (path, rest) = match arm::provider_path(segments, "Microsoft.ApiManagement", "service")? {
        ProviderPath::List { sub, rg } => return Some(Route::List { sub, rg }),
        ProviderPath::Resource {
            sub,
            rg,
            name,
            rest,
        } => (ServicePath { sub, rg, name }, rest),
    };
    match rest.as_slice() {
        [] => Some(Route::Service(path)),
        [nvs] if is(nvs, "namedValues") => Some(Route::NamedValues(path)),
        [nvs, id] if is(nvs, "namedValues") => Some(Route::NamedValue(path, id)),
        [nvs, id, action] if is(nvs, "namedValues") && is(action, "refreshSecret") => {
            Some(Route::RefreshSecret(path, id))
        }
        [nvs, _, action] if is(nvs, "namedValues") && is(action, "listValue") => {
            Some(Route::ListValue)
        }
        [tenant, results, id] if is(tenant, "tenant") && is(results, "operationResults") => {
            Some(Route::OperationResult(path, id))
        }
        _ => None,
    }
}

fn named_value_not_found(id: &str) -> Response {
    cloud_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("Named value '{id}' was not found."),
    )
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}

/// Handles one ARM request for `Microsoft.ApiManagement` (after latency, drops and injected errors).
pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Response {
    let client_id = match arm::preamble(shared, ctx, API_VERSIONS) {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    let Some(route) = parse_route(&ctx.segments) else {
        return arm::path_not_found(&ctx.path);
    };
    let api_version = ctx.query_param("api-version").unwrap_or(API_VERSIONS[0]);
    let now = shared.now_unix();
    let method = &ctx.method;
    match route {
        Route::ListValue if *method == Method::POST => {
            // The product must never read a named value's secret: refused and counted.
            shared.count(|c| c.secret_read_attempts += 1);
            tracing::warn!("a call to namedValues/listValue was refused");
            arm::authorization_failed(
                &client_id,
                "Microsoft.ApiManagement/service/namedValues/listValue/action",
                &ctx.path,
            )
        }
        Route::List { sub, rg } if *method == Method::GET => {
            if let Err(response) = arm::check_scope(shared, sub, rg) {
                return *response;
            }
            let estate = lock(&shared.apim);
            let items = estate
                .services
                .iter()
                .filter(|s| arm::in_scope(sub, rg, &s.subscription_id, &s.resource_group))
                .map(|s| s.to_json(&shared.config.tenant_id))
                .collect();
            drop(estate);
            page(shared, ctx, items, api_version, false)
        }
        Route::Service(path) if *method == Method::GET => {
            with_service(shared, path, now, |estate, i| {
                json_response(
                    StatusCode::OK,
                    estate.services[i].to_json(&shared.config.tenant_id),
                )
            })
        }
        Route::NamedValues(path) if *method == Method::GET => {
            with_service(shared, path, now, |estate, i| {
                let service = &estate.services[i];
                let items = service
                    .named_values
                    .iter()
                    .map(|nv| service.named_value_json(nv))
                    .collect();
                page(shared, ctx, items, api_version, true)
            })
        }
        Route::NamedValue(path, id) if *method == Method::GET => {
            with_service(shared, path, now, |estate, i| {
                let service = &estate.services[i];
                match service.named_value(id) {
                    Some(p) => {
                        let nv = &service.named_values[p];
                        with_etag(
                            json_response(StatusCode::OK, service.named_value_json(nv)),
                            &nv.etag,
                        )
                    }
                    None => named_value_not_found(id),
                }
            })
        }
        Route::RefreshSecret(path, id) if *method == Method::POST => {
            start_refresh(shared, path, id, api_version, now)
        }
        Route::RefreshSecret(path, id) if *method == Method::GET => {
            let Some(async_id) = ctx.query_param("asyncId") else {
                return cloud_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "refreshSecret is a POST; a GET must carry the asyncId of an operation.",
                );
            };
            poll(shared, path, Some(id), async_id, api_version, now, false)
        }
        Route::OperationResult(path, async_id) if *method == Method::GET => {
            poll(shared, path, None, async_id, api_version, now, true)
        }
        _ => arm::method_not_allowed(method),
    }
}

/// One page; a named-value page also carries `count` (the total), as `NamedValueCollection` does.
fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>, api_version: &str, count: bool) -> Response {
    let total = items.len();
    match arm::page_body(shared, ctx, items, api_version) {
        Ok(mut body) => {
            if count {
                body.insert("count".into(), json!(total));
            }
            json_response(StatusCode::OK, Value::Object(body))
        }
        Err(response) => *response,
    }
}

/// Finds the service, applies the 4-hour refetch, then answers from the estate.
fn with_service(
    shared: &Shared,
    path: ServicePath<'_>,
    now: i64,
    answer: impl FnOnce(&Estate, usize) -> Response,
) -> Response {
    let (mut estate, index) = match scoped_service(shared, path) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    {
        let store = lock(&shared.store);
        estate.expire(&store, index, now);
    }
    answer(&estate, index)
}

/// Checks the subscription and resource group, then finds the service: ARM's 404s otherwise.
fn scoped_service<'s>(
    shared: &'s Shared,
    path: ServicePath<'_>,
) -> Result<(MutexGuard<'s, Estate>, usize), Box<Response>> {
    arm::check_scope(shared, path.sub, Some(path.rg))?;
    let estate = lock(&shared.apim);
    let index = find_service(&estate, path)?;
    Ok((estate, index))
}

/// The service a path names, or ARM's 404.
fn find_service(estate: &Estate, path: ServicePath<'_>) -> Result<usize, Box<Response>> {
    estate.service(path.sub, path.rg, path.name).ok_or_else(|| {
        Box::new(arm::resource_not_found(
            &format!("Microsoft.ApiManagement/service/{}", path.name),
            path.rg,
        ))
    })
}

fn operation_urls(
    shared: &Shared,
    service: &Service,
    named_value: &str,
    async_id: &str,
    api_version: &str,
) -> (String, String) {
    let base = format!("{}{}", shared.config.https_url, service.id());
    (
        format!(
            "{base}/namedValues/{named_value}/refreshSecret?api-version={api_version}&asyncId={async_id}&asyncCode=201"
        ),
        format!("{base}/tenant/operationResults/{async_id}?api-version={api_version}"),
    )
}

/// A 202 with `location`, `Azure-AsyncOperation` and `Retry-After`, as `ApiManagementRefreshNamedValue.json`.
fn accepted(location: &str, async_operation: &str, retry_after: u64, body: Value) -> Response {
    let mut response = json_response(StatusCode::ACCEPTED, body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(async_operation) {
        headers.insert(AZURE_ASYNC_OPERATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        headers.insert(RETRY_AFTER, value);
    }
    response
}

fn start_refresh(
    shared: &Shared,
    path: ServicePath<'_>,
    id: &str,
    api_version: &str,
    now: i64,
) -> Response {
    let (mut estate, index) = match scoped_service(shared, path) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let Some(position) = estate.services[index].named_value(id) else {
        return named_value_not_found(id);
    };
    let service = &mut estate.services[index];
    let nv = &mut service.named_values[position];
    if nv.key_vault.is_none() {
        return cloud_error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &format!("Named value '{}' is not backed by Key Vault.", nv.name),
        );
    }
    nv.refreshes += 1;
    let name = nv.name.clone();
    let async_id = uuid::Uuid::new_v4().simple().to_string()[..24].to_owned();
    let polls = service.refresh_polls;
    let retry_after = service.retry_after_secs;
    let (location, async_operation) =
        operation_urls(shared, service, &name, &async_id, api_version);
    estate.operations.insert(
        async_id,
        Operation {
            service: index,
            named_value: name,
            polls_left: polls,
            started: now,
            outcome: None,
        },
    );
    shared.count(|c| c.named_value_refreshes += 1);
    accepted(&location, &async_operation, retry_after, json!({}))
}

/// Polls an operation at its `location` (`as_status` false: 202 while running, then the named value or an
/// error) or at its `Azure-AsyncOperation` URL (`as_status` true: ARM's `{"status": …}` body). Both advance
/// the same operation.
fn poll(
    shared: &Shared,
    path: ServicePath<'_>,
    named_value: Option<&str>,
    async_id: &str,
    api_version: &str,
    now: i64,
    as_status: bool,
) -> Response {
    let faults = shared.faults.current();
    let mut estate = lock(&shared.apim);
    let index = match find_service(&estate, path) {
        Ok(index) => index,
        Err(response) => return *response,
    };
    let Some(mut operation) = estate
        .operations
        .get(async_id)
        .filter(|op| op.service == index)
        .filter(|op| named_value.is_none_or(|n| op.named_value.eq_ignore_ascii_case(n)))
        .cloned()
    else {
        return cloud_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            &format!("The operation '{async_id}' was not found."),
        );
    };
    let service = &estate.services[index];
    let (location, async_operation) = operation_urls(
        shared,
        service,
        &operation.named_value,
        async_id,
        api_version,
    );
    let retry_after = service.retry_after_secs;
    let started = operation.started;
    let status_body = |status: &str, error: Option<Value>| {
        let mut body = json!({
            "id": async_operation.split('?').next().unwrap_or_default().trim_start_matches(&shared.config.https_url),
            "name": async_id,
            "status": status,
            "startTime": crate::util::rfc3339(started),
        });
        if status != "InProgress" {
            body["endTime"] = json!(crate::util::rfc3339(now));
        }
        if let Some(error) = error {
            body["error"] = error;
        }
        body
    };
    let running =
        operation.outcome.is_none() && (faults.apim_refresh_never_ends || operation.polls_left > 0);
    if running {
        if !faults.apim_refresh_never_ends {
            operation.polls_left -= 1;
        }
        estate.operations.insert(async_id.to_owned(), operation);
        return accepted(
            &location,
            &async_operation,
            retry_after,
            if as_status {
                status_body("InProgress", None)
            } else {
                json!({})
            },
        );
    }
    if operation.outcome.is_none() {
        let outcome = if faults.apim_refresh_fails {
            // How a failed refresh operation answers is not specified; ARM's rule for a failed
            // long-running operation (an error at its location) is the emulator's choice.
            (
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "OperationFailed", "message": "The named value could not be refreshed from Key Vault (injected fault)."}}),
                false,
            )
        } else {
            let store = lock(&shared.store);
            let service = &mut estate.services[index];
            let (identity, access) = (service.identity.clone(), service.key_vault_access);
            let position = service
                .named_value(&operation.named_value)
                .unwrap_or_default();
            let nv = &mut service.named_values[position];
            if let Some(kv) = &mut nv.key_vault {
                kv.fetch = fetch(&store, identity.as_deref(), access, kv, now);
            }
            nv.etag = crate::store::new_etag();
            let service = &estate.services[index];
            (
                StatusCode::OK,
                service.named_value_json(&service.named_values[position]),
                true,
            )
        };
        operation.outcome = Some(outcome);
        estate
            .operations
            .insert(async_id.to_owned(), operation.clone());
    }
    let Some((status, body, succeeded)) = operation.outcome.clone() else {
        return cloud_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The operation has no outcome.",
        );
    };
    if as_status {
        let error = (!succeeded).then(|| body["error"].clone());
        let state = if succeeded { "Succeeded" } else { "Failed" };
        return json_response(StatusCode::OK, status_body(state, error));
    }
    let etag = estate.services[index]
        .named_value(&operation.named_value)
        .map(|p| estate.services[index].named_values[p].etag.clone());
    let response = json_response(status, body);
    match etag {
        Some(etag) if succeeded => with_etag(response, &etag),
        _ => response,
    }
}
