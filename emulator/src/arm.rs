//! Azure Resource Manager for Data Factory: authentication, `api-version`, throttling (429 bursts and
//! per-subscription token buckets), case-insensitive routing, and the factory, linked-service and
//! credential resources with paging, masking, `If-Match` and the PUT body rules.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::arm_common::{
    FactoryPath, ProviderPath, check_scope, forbidden, in_scope, is, method_not_allowed, not_found,
    page, path_not_found, preamble, provider_path,
};
use crate::http::{Ctx, cloud_error, json_response};
use crate::state::Shared;
use crate::store::{self, API_VERSION, ChildKind, Missing, Store};
use crate::util::lock;
use crate::write;
use crate::{connectivity, pipelines};

/// One ARM operation the emulator knows, with the path parameters it names.
enum Route<'a> {
    ListFactories { sub: &'a str },
    ListFactoriesInGroup { sub: &'a str, rg: &'a str },
    Factory(FactoryPath<'a>),
    Children(FactoryPath<'a>, ChildKind),
    Child(FactoryPath<'a>, ChildKind, &'a str),
    TestConnectivity(FactoryPath<'a>),
    IntegrationRuntimes(FactoryPath<'a>),
    IntegrationRuntime(FactoryPath<'a>, &'a str),
    IntegrationRuntimeStatus(FactoryPath<'a>, &'a str),
}

fn parse_route(segments: &[String]) -> Option<Route<'_>> {
    let (f, rest) = match provider_path(segments, "Microsoft.DataFactory", "factories")? {
        ProviderPath::List { sub, rg: None } => return Some(Route::ListFactories { sub }),
        ProviderPath::List { sub, rg: Some(rg) } => {
            return Some(Route::ListFactoriesInGroup { sub, rg });
        }
        ProviderPath::Resource {
            sub,
            rg,
            name,
            rest,
        } => (FactoryPath { sub, rg, name }, rest),
    };
    let child_kind = |segment: &str| {
        if is(segment, "linkedservices") {
            Some(ChildKind::LinkedService)
        } else if is(segment, "credentials") {
            Some(ChildKind::Credential)
        } else {
            None
        }
    };
    match rest.as_slice() {
        [] => Some(Route::Factory(f)),
        [kind] if is(kind, "testConnectivity") => Some(Route::TestConnectivity(f)),
        [kind] if is(kind, "integrationRuntimes") => Some(Route::IntegrationRuntimes(f)),
        [kind] => child_kind(kind).map(|k| Route::Children(f, k)),
        [kind, ir] if is(kind, "integrationRuntimes") => Some(Route::IntegrationRuntime(f, ir)),
        [kind, child] => child_kind(kind).map(|k| Route::Child(f, k, child)),
        [kind, ir, action] if is(kind, "integrationRuntimes") && is(action, "getStatus") => {
            Some(Route::IntegrationRuntimeStatus(f, ir))
        }
        _ => None,
    }
}

/// Handles one ARM request (after latency, drops and injected errors).
pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Response {
    let client_id = match preamble(shared, ctx, &[API_VERSION]) {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    // Datasets, pipelines, data flows and triggers live in their own module.
    if let Some(response) = pipelines::handle(shared, ctx) {
        return response;
    }
    let Some(route) = parse_route(&ctx.segments) else {
        return path_not_found(&ctx.path);
    };
    let method = &ctx.method;
    match route {
        Route::ListFactories { sub } if *method == Method::GET => {
            list_factories(shared, ctx, sub, None)
        }
        Route::ListFactoriesInGroup { sub, rg } if *method == Method::GET => {
            list_factories(shared, ctx, sub, Some(rg))
        }
        Route::Factory(f) if *method == Method::GET => {
            let store = lock(&shared.store);
            match store.find_factory(f.sub, f.rg, f.name) {
                Ok(i) => json_response(StatusCode::OK, store.factories[i].to_json()),
                Err(missing) => not_found(missing, f, None),
            }
        }
        Route::Factory(f) if [Method::PUT, Method::PATCH, Method::DELETE].contains(method) => {
            shared.count(|c| c.factory_writes += 1);
            let action = if *method == Method::DELETE {
                "delete"
            } else {
                "write"
            };
            forbidden(
                &client_id,
                &format!("Microsoft.DataFactory/factories/{action}"),
                &factory_scope(f),
            )
        }
        Route::Children(f, kind) if *method == Method::GET => list_children(shared, ctx, f, kind),
        Route::Child(f, kind, name) if *method == Method::GET => get_child(shared, f, kind, name),
        Route::Child(f, kind, name) if *method == Method::PUT => {
            put_child(shared, ctx, f, kind, name)
        }
        Route::Child(f, kind, name) if *method == Method::DELETE => forbidden(
            &client_id,
            &format!("Microsoft.DataFactory/factories/{}/delete", kind.segment()),
            &format!("{}/{}/{name}", factory_scope(f), kind.segment()),
        ),
        Route::TestConnectivity(f) if *method == Method::POST => {
            connectivity::test_connectivity(shared, ctx, f)
        }
        Route::IntegrationRuntimes(f) if *method == Method::GET => {
            list_integration_runtimes(shared, ctx, f)
        }
        Route::IntegrationRuntime(f, ir) if *method == Method::GET => {
            connectivity::integration_runtime(shared, f, ir)
        }
        Route::IntegrationRuntimeStatus(f, ir) if *method == Method::POST => {
            connectivity::integration_runtime_status(shared, f, ir)
        }
        _ => method_not_allowed(method),
    }
}

fn factory_scope(f: FactoryPath<'_>) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.DataFactory/factories/{}",
        f.sub, f.rg, f.name
    )
}

fn list_factories(shared: &Shared, ctx: &Ctx, sub: &str, rg: Option<&str>) -> Response {
    if let Err(response) = check_scope(shared, sub, rg) {
        return *response;
    }
    let store = lock(&shared.store);
    let items = store
        .factories
        .iter()
        .filter(|f| in_scope(sub, rg, &f.subscription_id, &f.resource_group))
        .map(store::Factory::to_json)
        .collect();
    drop(store);
    page(shared, ctx, items)
}

fn list_children(shared: &Shared, ctx: &Ctx, f: FactoryPath<'_>, kind: ChildKind) -> Response {
    let store = lock(&shared.store);
    let factory = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => &store.factories[i],
        Err(missing) => return not_found(missing, f, None),
    };
    let items = factory
        .children(kind)
        .iter()
        .map(|child| factory.child_json(kind, child, true))
        .collect();
    drop(store);
    page(shared, ctx, items)
}

/// `GET …/integrationRuntimes`, shaped like `IntegrationRuntimes_ListByFactory.json` and paged like the
/// other lists.
fn list_integration_runtimes(shared: &Shared, ctx: &Ctx, f: FactoryPath<'_>) -> Response {
    let store = lock(&shared.store);
    let factory = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => &store.factories[i],
        Err(missing) => return not_found(missing, f, None),
    };
    let items = factory
        .integration_runtimes
        .iter()
        .map(|ir| factory.integration_runtime_json(ir))
        .collect();
    drop(store);
    page(shared, ctx, items)
}

fn get_child(shared: &Shared, f: FactoryPath<'_>, kind: ChildKind, name: &str) -> Response {
    let mut store = lock(&shared.store);
    let index = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => i,
        Err(missing) => return not_found(missing, f, None),
    };
    let factory = &store.factories[index];
    let Some(position) = factory
        .children(kind)
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
    else {
        return not_found(Missing::Factory, f, Some((kind, name)));
    };
    let body = factory.child_json(kind, &factory.children(kind)[position], true);
    if kind == ChildKind::LinkedService {
        let factory_id = factory.id();
        let child_name = factory.children(kind)[position].name.clone();
        for description in shared
            .faults
            .take_concurrent_edits(&factory_id, &child_name)
        {
            apply_concurrent_edit(&mut store, index, position, &description);
        }
    }
    json_response(StatusCode::OK, body)
}

/// Someone else edits the linked service between the product's GET and PUT.
fn apply_concurrent_edit(store: &mut Store, factory: usize, position: usize, description: &str) {
    let child = &mut store.factories[factory].linked_services[position];
    if let Some(properties) = child.properties.as_object_mut() {
        properties.insert("description".into(), json!(description));
    }
    child.etag = store::new_etag();
    tracing::info!(linked_service = %child.name, "concurrent edit applied");
}

fn put_child(
    shared: &Shared,
    ctx: &Ctx,
    f: FactoryPath<'_>,
    kind: ChildKind,
    name: &str,
) -> Response {
    let properties = match write::properties_of(ctx) {
        Ok(properties) => properties,
        Err(refusal) => return refused(&refusal, kind, name, ctx),
    };
    let mut store = lock(&shared.store);
    let index = match store.find_factory(f.sub, f.rg, f.name) {
        Ok(i) => i,
        Err(missing) => return not_found(missing, f, None),
    };
    let current_etag = store.factories[index]
        .child(kind, name)
        .map(|c| c.etag.clone());
    if let Err(refusal) = write::check_if_match(ctx, current_etag.as_deref()) {
        return refused(&refusal, kind, name, ctx);
    }
    let store = &mut *store;
    let factory_name = store.factories[index].name.clone();
    let position = write::save(
        shared,
        store.factories[index].children_mut(kind),
        &mut store.inline_secrets_seen,
        &factory_name,
        name,
        properties,
    );
    let factory = &store.factories[index];
    json_response(
        StatusCode::OK,
        factory.child_json(kind, &factory.children(kind)[position], true),
    )
}

/// ARM's answer to a refused PUT: 400 `BadRequest` or 412 `PreconditionFailed`.
fn refused(refusal: &write::Refusal, kind: ChildKind, name: &str, ctx: &Ctx) -> Response {
    match refusal.bad_request_message() {
        Some(message) => cloud_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
        None => cloud_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            &format!(
                "The specified precondition 'If-Match = {}' failed for {} '{name}'.",
                ctx.header("if-match").map(str::trim).unwrap_or(""),
                kind.segment().trim_end_matches('s')
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::decode_segments as segs;

    #[test]
    fn routes_are_case_insensitive() {
        let base = "/subscriptions/s/resourcegroups/rg/providers/microsoft.datafactory/factories/f";
        assert!(matches!(
            parse_route(&segs(&format!("{base}/LINKEDSERVICES/ls1"))),
            Some(Route::Child(_, ChildKind::LinkedService, "ls1"))
        ));
        assert!(matches!(
            parse_route(&segs(&format!("{base}/integrationruntimes/ir/getstatus"))),
            Some(Route::IntegrationRuntimeStatus(_, "ir"))
        ));
        assert!(matches!(
            parse_route(&segs(
                "/subscriptions/s/providers/Microsoft.DataFactory/factories"
            )),
            Some(Route::ListFactories { sub: "s" })
        ));
        assert!(parse_route(&segs(&format!("{base}/pipelines/p"))).is_none());
        assert!(matches!(
            parse_route(&segs(&format!("{base}/IntegrationRuntimes"))),
            Some(Route::IntegrationRuntimes(_))
        ));
    }
}
