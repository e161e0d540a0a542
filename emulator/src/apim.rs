//! API Management (`Microsoft.ApiManagement/service`): services and their named values. A Key Vault-backed
//! named value caches the secret version it fetched; a rotation leaves it on the old version until
//! `refreshSecret` (a long-running operation polled at its `location`) or until 4 hours of emulator time pass.
//! `listValue`, which returns values, is always refused.
//!
//! Sources (see the emulator README, "API Management"): `reference/apim-spec/` (apimnamedvalues.json, the
//! extract and the examples) and the documentation quoted in its PROVENANCE.md.

use std::collections::{BTreeSet, HashMap};

use axum::http::header::{ETAG, LOCATION, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::server::{Ctx, cloud_error, json_response};
use crate::store::Store;
use crate::{Shared, arm, lock};

/// The api-versions accepted: the latest stable (2024-05-01) and the one the service definitions in the
/// extract come from (2022-08-01).
pub(crate) const API_VERSIONS: &[&str] = &["2024-05-01", "2022-08-01"];
/// "A named value is updated within four hours of the update in the vault" (PROVENANCE.md).
const CACHE_SECS: i64 = 4 * 3600;
const VAULT_SUFFIX: &str = "vault.azure.net";
const AZURE_ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");

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

    fn named_value(&self, name: &str) -> Option<usize> {
        self.named_values
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The service resource, shaped like `ApiManagementServiceResource` (extract).
    fn to_json(&self, tenant_id: &str) -> Value {
        let mut resource = Map::new();
        resource.insert("id".into(), json!(self.id()));
        resource.insert("name".into(), json!(self.name));
        resource.insert("type".into(), json!("Microsoft.ApiManagement/service"));
        resource.insert("location".into(), json!(self.location));
        resource.insert("etag".into(), json!("AAAAAAAmREI="));
        resource.insert("tags".into(), json!({}));
        resource.insert("sku".into(), json!({"name": "Developer", "capacity": 1}));
        if let Some(kind) = &self.identity {
            let hex = crate::store::version_id(&[&self.id().to_ascii_lowercase()]);
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
    fn named_value_json(&self, nv: &NamedValue) -> Value {
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
                        "timeStampUtc": crate::rfc3339(kv.fetch.at),
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

/// Parses `https://{vault}.{suffix}/secrets/{name}[/{version}]`: (vault, this cloud, secret, version).
fn parse_identifier(identifier: &str) -> Option<(String, bool, String, Option<String>)> {
    let url = url::Url::parse(identifier.trim()).ok()?;
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
    Some((
        vault.to_owned(),
        suffix == VAULT_SUFFIX,
        secret.to_owned(),
        version,
    ))
}

/// Fetches the secret as APIM would, keeping the last good version on a failure. The failure codes and
/// messages are guesses: no source specifies them (PROVENANCE.md).
fn fetch(
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
    let Some((vault, this_cloud, secret, version)) = parse_identifier(&kv.secret_identifier) else {
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
struct Operation {
    service: usize,
    named_value: String,
    polls_left: u32,
    started: i64,
    /// `(status, body)` once ended; later polls repeat it.
    outcome: Option<(StatusCode, Value, bool)>,
}

#[derive(Debug, Default)]
pub(crate) struct Estate {
    pub services: Vec<Service>,
    operations: HashMap<String, Operation>,
}

impl Estate {
    /// Reads `apiManagement` under `subscriptions[].resourceGroups[]` of a seed and fetches every Key
    /// Vault-backed named value at `now`.
    pub(crate) fn from_seed(seed: &Value, store: &Store, now: i64) -> Result<Self, String> {
        let doc: SeedDoc = serde_json::from_value(seed.clone()).map_err(|e| e.to_string())?;
        let mut estate = Estate::default();
        for sub in doc.subscriptions {
            for rg in sub.resource_groups {
                for service in rg.api_management {
                    if estate
                        .services
                        .iter()
                        .any(|s| s.name.eq_ignore_ascii_case(&service.name))
                    {
                        return Err(format!("duplicate API Management service {}", service.name));
                    }
                    estate.services.push(build_service(
                        &sub.subscription_id,
                        &rg.name,
                        service,
                        store,
                        now,
                    ));
                }
            }
        }
        Ok(estate)
    }

    fn service(&self, sub: &str, rg: &str, name: &str) -> Option<usize> {
        self.services.iter().position(|s| {
            s.subscription_id.eq_ignore_ascii_case(sub)
                && s.resource_group.eq_ignore_ascii_case(rg)
                && s.name.eq_ignore_ascii_case(name)
        })
    }

    /// Refetches the named values of a service whose cache is 4 hours old or more.
    fn expire(&mut self, store: &Store, index: usize, now: i64) {
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
            "lastStatus": kv.map(|k| json!({"code": k.fetch.code, "message": k.fetch.message, "timeStampUtc": crate::rfc3339(k.fetch.at)})),
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

// ---- ARM routes ----

fn is(segment: &str, name: &str) -> bool {
    segment.eq_ignore_ascii_case(name)
}

/// Whether an ARM request is for the `Microsoft.ApiManagement` provider.
pub(crate) fn is_arm_request(segments: &[String]) -> bool {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(s.as_slice(), [subs, _, providers, rp, ..]
        if is(subs, "subscriptions") && is(providers, "providers") && is(rp, "Microsoft.ApiManagement"))
        || matches!(s.as_slice(), [subs, _, rgs, _, providers, rp, ..]
        if is(subs, "subscriptions") && is(rgs, "resourceGroups") && is(providers, "providers") && is(rp, "Microsoft.ApiManagement"))
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
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [subs, sub, providers, rp, service]
            if is(subs, "subscriptions")
                && is(providers, "providers")
                && is(rp, "Microsoft.ApiManagement")
                && is(service, "service") =>
        {
            Some(Route::List { sub, rg: None })
        }
        [subs, sub, rgs, rg, providers, rp, service, rest @ ..]
            if is(subs, "subscriptions")
                && is(rgs, "resourceGroups")
                && is(providers, "providers")
                && is(rp, "Microsoft.ApiManagement")
                && is(service, "service") =>
        {
            let Some((name, rest)) = rest.split_first() else {
                return Some(Route::List { sub, rg: Some(rg) });
            };
            let path = ServicePath { sub, rg, name };
            match rest {
                [] => Some(Route::Service(path)),
                [nvs] if is(nvs, "namedValues") => Some(Route::NamedValues(path)),
                [nvs, id] if is(nvs, "namedValues") => Some(Route::NamedValue(path, id)),
                [nvs, id, action] if is(nvs, "namedValues") && is(action, "refreshSecret") => {
                    Some(Route::RefreshSecret(path, id))
                }
                [nvs, _, action] if is(nvs, "namedValues") && is(action, "listValue") => {
                    Some(Route::ListValue)
                }
                [tenant, results, id]
                    if is(tenant, "tenant") && is(results, "operationResults") =>
                {
                    Some(Route::OperationResult(path, id))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn not_found(what: &str, rg: &str) -> Response {
    cloud_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{what}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
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
        return cloud_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The resource at '{}' was not found.", ctx.path),
        );
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
                .filter(|s| s.subscription_id.eq_ignore_ascii_case(sub))
                .filter(|s| rg.is_none_or(|rg| s.resource_group.eq_ignore_ascii_case(rg)))
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
        _ => cloud_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("The requested resource does not support http method '{method}'."),
        ),
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
    if let Err(response) = arm::check_scope(shared, path.sub, Some(path.rg)) {
        return *response;
    }
    let mut estate = lock(&shared.apim);
    let Some(index) = estate.service(path.sub, path.rg, path.name) else {
        return not_found(
            &format!("Microsoft.ApiManagement/service/{}", path.name),
            path.rg,
        );
    };
    {
        let store = lock(&shared.store);
        estate.expire(&store, index, now);
    }
    answer(&estate, index)
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
    if let Err(response) = arm::check_scope(shared, path.sub, Some(path.rg)) {
        return *response;
    }
    let mut estate = lock(&shared.apim);
    let Some(index) = estate.service(path.sub, path.rg, path.name) else {
        return not_found(
            &format!("Microsoft.ApiManagement/service/{}", path.name),
            path.rg,
        );
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
    let Some(index) = estate.service(path.sub, path.rg, path.name) else {
        return not_found(
            &format!("Microsoft.ApiManagement/service/{}", path.name),
            path.rg,
        );
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
            "startTime": crate::rfc3339(started),
        });
        if status != "InProgress" {
            body["endTime"] = json!(crate::rfc3339(now));
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

// ---- seed ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedDoc {
    #[serde(default)]
    subscriptions: Vec<SeedSubscription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedSubscription {
    subscription_id: String,
    #[serde(default)]
    resource_groups: Vec<SeedResourceGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedResourceGroup {
    name: String,
    #[serde(default)]
    api_management: Vec<SeedService>,
}

fn system_assigned() -> Option<String> {
    Some("SystemAssigned".into())
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

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
