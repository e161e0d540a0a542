//! App Service (`Microsoft.Web/sites`): web apps, function apps and Logic Apps Standard with their
//! deployment slots, and the Key Vault references of their app settings and connection strings. Each
//! reference caches the secret version it resolved; a rotation leaves the cache on the old version until the
//! refresh POST for that site or slot, or until 24 hours of emulator time pass.
//!
//! Sources (see the emulator README, "App Service"): `reference/appservice-spec/` (WebApps extract and
//! examples) and the documentation quoted in its PROVENANCE.md.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::appservice_model::{API_VERSIONS, Estate, RefKind, Site};
use crate::arm_common::{self as arm, ProviderPath, is};
use crate::http::{Ctx, json_response};
use crate::state::Shared;
use crate::util::lock;

// ---- ARM routes ----

/// Whether an ARM request is for the `Microsoft.Web` provider.
pub(crate) fn is_arm_request(segments: &[String]) -> bool {
    arm::is_provider_request(segments, "Microsoft.Web")
}

enum Route<'a> {
    List {
        sub: &'a str,
        rg: Option<&'a str>,
    },
    Get(SitePath<'a>),
    Slots(SitePath<'a>),
    References(SitePath<'a>, RefKind),
    Reference(SitePath<'a>, RefKind, &'a str),
    /// `…/config/configreferences/appsettings/refresh` (POST).
    Refresh(SitePath<'a>),
    /// `…/config/{appsettings|connectionstrings}/list`: returns secret values; always refused here.
    ListSecrets(SitePath<'a>, RefKind),
}

#[derive(Clone, Copy)]
struct SitePath<'a> {
    sub: &'a str,
    rg: &'a str,
    name: &'a str,
    slot: Option<&'a str>,
}

fn parse_route<'a>(segments: &'a [String], method: &Method) -> Option<Route<'a>> {
    let (site, rest) = match arm::provider_path(segments, "Microsoft.Web", "sites")? {
        ProviderPath::List { sub, rg } => return Some(Route::List { sub, rg }),
        ProviderPath::Resource {
            sub,
            rg,
            name,
            rest,
        } => (
            SitePath {
                sub,
                rg,
                name,
                slot: None,
            },
            rest,
        ),
    };
    let (path, rest) = match rest.as_slice() {
        [slots] if is(slots, "slots") => return Some(Route::Slots(site)),
        [slots, slot, rest @ ..] if is(slots, "slots") => (
            SitePath {
                slot: Some(slot),
                ..site
            },
            rest,
        ),
        rest => (site, rest),
    };
    match rest {
        [] => Some(Route::Get(path)),
        [config, refs, kind] if is(config, "config") && is(refs, "configreferences") => {
            RefKind::from_segment(kind).map(|k| Route::References(path, k))
        }
        [config, refs, kind, action]
            if is(config, "config")
                && is(refs, "configreferences")
                && is(kind, "appsettings")
                && is(action, "refresh")
                && *method == Method::POST =>
        {
            Some(Route::Refresh(path))
        }
        [config, refs, kind, key] if is(config, "config") && is(refs, "configreferences") => {
            RefKind::from_segment(kind).map(|k| Route::Reference(path, k, key))
        }
        [config, kind, list] if is(config, "config") && is(list, "list") => {
            RefKind::from_segment(kind).map(|k| Route::ListSecrets(path, k))
        }
        _ => None,
    }
}

/// Handles one ARM request for `Microsoft.Web` (after latency, drops and injected errors).
pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Response {
    let client_id = match arm::preamble(shared, ctx, API_VERSIONS) {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    let Some(route) = parse_route(&ctx.segments, &ctx.method) else {
        return arm::path_not_found(&ctx.path);
    };
    let api_version = ctx.query_param("api-version").unwrap_or(API_VERSIONS[0]);
    let now = shared.now_unix();
    let tenant_id = shared.config.tenant_id.clone();
    match route {
        Route::ListSecrets(path, kind) => {
            // The product must never read setting values: refused and counted (PROVENANCE.md, RBAC).
            shared.count(|c| c.secret_read_attempts += 1);
            tracing::warn!(
                site = path.name,
                "a call to config/{}/list was refused",
                kind.segment()
            );
            arm::authorization_failed(
                &client_id,
                "Microsoft.Web/sites/config/list/Action",
                &ctx.path,
            )
        }
        Route::List { sub, rg } if ctx.method == Method::GET => {
            if let Err(response) = arm::check_scope(shared, sub, rg) {
                return *response;
            }
            let estate = lock(&shared.appservice);
            let items = estate
                .sites
                .iter()
                .filter(|s| arm::in_scope(sub, rg, &s.subscription_id, &s.resource_group))
                .map(|s| s.target_json(&s.targets[0], &tenant_id))
                .collect();
            drop(estate);
            page(shared, ctx, items, api_version)
        }
        Route::Slots(path) if ctx.method == Method::GET => {
            if let Err(response) = arm::check_scope(shared, path.sub, Some(path.rg)) {
                return *response;
            }
            let estate = lock(&shared.appservice);
            let Some(site) = estate.site(path.sub, path.rg, path.name) else {
                return arm::resource_not_found(
                    &format!("Microsoft.Web/sites/{}", path.name),
                    path.rg,
                );
            };
            let site = &estate.sites[site];
            let items = site
                .targets
                .iter()
                .filter(|t| t.slot.is_some())
                .map(|t| site.target_json(t, &tenant_id))
                .collect();
            drop(estate);
            page(shared, ctx, items, api_version)
        }
        Route::Get(path) if ctx.method == Method::GET => {
            with_target(shared, path, None, |site, target| {
                json_response(
                    StatusCode::OK,
                    site.target_json(&site.targets[target], &tenant_id),
                )
            })
        }
        Route::References(path, kind) if ctx.method == Method::GET => {
            with_target(shared, path, Some(now), |site, target| {
                let t = &site.targets[target];
                let items = t
                    .references(kind)
                    .iter()
                    .map(|r| site.reference_json(t, kind, r))
                    .collect();
                page(shared, ctx, items, api_version)
            })
        }
        Route::Reference(path, kind, key) if ctx.method == Method::GET => {
            with_target(shared, path, Some(now), |site, target| {
                let t = &site.targets[target];
                match t
                    .references(kind)
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(key))
                {
                    Some(r) => json_response(StatusCode::OK, site.reference_json(t, kind, r)),
                    None => arm::resource_not_found(
                        &format!(
                            "Microsoft.Web/sites/{}/config/configreferences/{}/{key}",
                            site.name,
                            kind.segment()
                        ),
                        &site.resource_group,
                    ),
                }
            })
        }
        Route::Refresh(path) => {
            let skip_connection_strings = shared.faults.current().refresh_skips_connection_strings;
            let answer = {
                let mut estate = lock(&shared.appservice);
                let store = lock(&shared.store);
                let (index, target) = match find_target(&estate, path) {
                    Ok(found) => found,
                    Err(response) => return *response,
                };
                let t = &mut estate.sites[index].targets[target];
                t.refreshes += 1;
                t.resolve_all(&store, RefKind::AppSetting, now);
                if !skip_connection_strings {
                    t.resolve_all(&store, RefKind::ConnectionString, now);
                }
                let site = &estate.sites[index];
                let t = &site.targets[target];
                // The answer a public blog shows (PROVENANCE.md): the app settings' references.
                json!({
                    "id": null,
                    "nextLink": null,
                    "value": t.app_settings.iter().map(|r| site.reference_json(t, RefKind::AppSetting, r)).collect::<Vec<_>>(),
                })
            };
            shared.count(|c| c.app_service_refreshes += 1);
            json_response(StatusCode::OK, answer)
        }
        _ => arm::method_not_allowed(&ctx.method),
    }
}

fn page(shared: &Shared, ctx: &Ctx, items: Vec<Value>, api_version: &str) -> Response {
    match arm::page_body(shared, ctx, items, api_version) {
        Ok(body) => json_response(StatusCode::OK, Value::Object(body)),
        Err(response) => *response,
    }
}

/// Finds the site or slot, applies the 24-hour refetch first when `refetch_at` is given (the emulator
/// time), then answers from it.
fn with_target(
    shared: &Shared,
    path: SitePath<'_>,
    refetch_at: Option<i64>,
    answer: impl FnOnce(&Site, usize) -> Response,
) -> Response {
    if let Err(response) = arm::check_scope(shared, path.sub, Some(path.rg)) {
        return *response;
    }
    let mut estate = lock(&shared.appservice);
    let (index, target) = match find_target(&estate, path) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    if let Some(now) = refetch_at {
        let store = lock(&shared.store);
        estate.sites[index].targets[target].expire(&store, now);
    }
    answer(&estate.sites[index], target)
}

/// The site and the target (the site itself or a slot) a path names, or ARM's 404 for the first missing.
fn find_target(estate: &Estate, path: SitePath<'_>) -> Result<(usize, usize), Box<Response>> {
    let Some(index) = estate.site(path.sub, path.rg, path.name) else {
        return Err(Box::new(arm::resource_not_found(
            &format!("Microsoft.Web/sites/{}", path.name),
            path.rg,
        )));
    };
    match estate.sites[index].target(path.slot) {
        Some(target) => Ok((index, target)),
        None => Err(Box::new(arm::resource_not_found(
            &format!(
                "Microsoft.Web/sites/{}/slots/{}",
                path.name,
                path.slot.unwrap_or("")
            ),
            path.rg,
        ))),
    }
}
