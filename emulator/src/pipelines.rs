//! A factory's authoring collections: datasets, pipelines, data flows and triggers, read-only.
//!
//! Each is an ARM collection under the factory, `GET …/factories/{f}/{datasets|pipelines|dataflows|triggers}`
//! (paged by `nextLink`, as the other lists) and `GET …/{collection}/{name}`, shaped like the 2018-06-01
//! spec examples `Datasets_ListByFactory.json`, `Pipelines_ListByFactory.json`, `DataFlows_ListByFactory.json`,
//! `Triggers_ListByFactory.json` and their `_Get` siblings: `id`, `name`, `type`
//! (`Microsoft.DataFactory/factories/{collection}`), `properties`, `etag`. A trigger's `runtimeState` is
//! read-only in the spec (`Trigger.json`: "Updated when Start/Stop APIs are called"); a seed sets it, and a
//! trigger without one is `Stopped`, as ADF creates triggers. The product never writes these, so any
//! other method is answered 405. A seed's `forbiddenCollections` makes those collections answer 403
//! `AuthorizationFailed`, as ARM does for a role that lacks their read action.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm_common;
use crate::authoring::{Collection, Entity};
use crate::http::{Ctx, cloud_error, json_response};
use crate::state::Shared;
use crate::store::Factory;
use crate::util::lock;

fn resource(factory: &Factory, collection: Collection, entity: &Entity) -> Value {
    json!({
        "id": format!("{}/{}/{}", factory.id(), collection.segment(), entity.name),
        "name": entity.name,
        "type": format!("Microsoft.DataFactory/factories/{}", collection.segment()),
        "properties": entity.properties,
        "etag": entity.etag,
    })
}

fn is(segment: &str, name: &str) -> bool {
    segment.eq_ignore_ascii_case(name)
}

/// Answers a request for an authoring collection or entity; `None` when the path is not one.
pub(crate) fn handle(shared: &Shared, ctx: &Ctx) -> Option<Response> {
    let s: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    let (sub, rg, name, collection, item) = match s.as_slice() {
        [
            subs,
            sub,
            rgs,
            rg,
            providers,
            rp,
            factories,
            name,
            collection,
            rest @ ..,
        ] if is(subs, "subscriptions")
            && is(rgs, "resourceGroups")
            && is(providers, "providers")
            && is(rp, "Microsoft.DataFactory")
            && is(factories, "factories")
            && rest.len() <= 1 =>
        {
            (
                *sub,
                *rg,
                *name,
                Collection::parse(collection)?,
                rest.first().copied(),
            )
        }
        _ => return None,
    };
    if ctx.method != Method::GET {
        return Some(arm_common::method_not_allowed(&ctx.method));
    }
    let store = lock(&shared.store);
    let factory = match store.find_factory(sub, rg, name) {
        Ok(i) => &store.factories[i],
        Err(missing) => {
            return Some(crate::arm_common::not_found(
                missing,
                crate::arm_common::FactoryPath { sub, rg, name },
                None,
            ));
        }
    };
    if factory.authoring.forbidden.contains(&collection) {
        // ARM's answer when the role lacks the action (learn.microsoft.com/azure/role-based-access-control/troubleshooting).
        return Some(cloud_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client does not have authorization to perform action 'Microsoft.DataFactory/factories/{}/read' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                collection.segment(),
                factory.id()
            ),
        ));
    }
    let entities = factory.authoring.of(collection);
    Some(match item {
        None => {
            let items = entities
                .iter()
                .map(|e| resource(factory, collection, e))
                .collect();
            drop(store);
            crate::arm_common::page(shared, ctx, items)
        }
        Some(item) => match entities.iter().find(|e| e.name.eq_ignore_ascii_case(item)) {
            Some(entity) => json_response(StatusCode::OK, resource(factory, collection, entity)),
            None => cloud_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!(
                    "The Resource 'Microsoft.DataFactory/factories/{}/{}/{item}' under resource group '{rg}' was not found.",
                    factory.name,
                    collection.segment()
                ),
            ),
        },
    })
}
