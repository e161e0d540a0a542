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
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::{Ctx, cloud_error, json_response};
use crate::store::{Factory, new_etag};
use crate::{Shared, lock};

/// One of the four collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Collection {
    Datasets,
    Pipelines,
    DataFlows,
    Triggers,
}

impl Collection {
    fn parse(segment: &str) -> Option<Collection> {
        [
            Collection::Datasets,
            Collection::Pipelines,
            Collection::DataFlows,
            Collection::Triggers,
        ]
        .into_iter()
        .find(|c| c.segment().eq_ignore_ascii_case(segment))
    }

    pub(crate) fn segment(self) -> &'static str {
        match self {
            Collection::Datasets => "datasets",
            Collection::Pipelines => "pipelines",
            Collection::DataFlows => "dataflows",
            Collection::Triggers => "triggers",
        }
    }
}

/// A dataset, pipeline, data flow or trigger.
#[derive(Clone, Debug)]
pub(crate) struct Entity {
    pub name: String,
    pub properties: Value,
    pub etag: String,
}

/// A factory's authoring entities.
#[derive(Clone, Debug, Default)]
pub(crate) struct Authoring {
    pub datasets: Vec<Entity>,
    pub pipelines: Vec<Entity>,
    pub data_flows: Vec<Entity>,
    pub triggers: Vec<Entity>,
    /// Collections the caller's role may not read (a role without `…/{collection}/read`): 403.
    pub forbidden: Vec<Collection>,
}

impl Authoring {
    fn of(&self, collection: Collection) -> &[Entity] {
        match collection {
            Collection::Datasets => &self.datasets,
            Collection::Pipelines => &self.pipelines,
            Collection::DataFlows => &self.data_flows,
            Collection::Triggers => &self.triggers,
        }
    }

    /// From a seed factory's `datasets`, `pipelines`, `dataflows` and `triggers` (each `{name, properties}`).
    pub(crate) fn from_seed(seed: SeedAuthoring) -> Result<Authoring, String> {
        let build =
            |collection: Collection, items: Vec<SeedEntity>| -> Result<Vec<Entity>, String> {
                let mut out: Vec<Entity> = Vec::new();
                for item in items {
                    if out.iter().any(|e| e.name.eq_ignore_ascii_case(&item.name)) {
                        return Err(format!("duplicate {} {}", collection.segment(), item.name));
                    }
                    let mut properties = item.properties;
                    if !properties.is_object() {
                        return Err(format!(
                            "{} {} has no properties object",
                            collection.segment(),
                            item.name
                        ));
                    }
                    if collection == Collection::Triggers
                        && let Some(map) = properties.as_object_mut()
                    {
                        map.entry("runtimeState")
                            .or_insert_with(|| json!("Stopped"));
                    }
                    out.push(Entity {
                        name: item.name,
                        properties,
                        etag: item.etag.unwrap_or_else(new_etag),
                    });
                }
                Ok(out)
            };
        let forbidden = seed
            .forbidden_collections
            .iter()
            .map(|c| Collection::parse(c).ok_or_else(|| format!("unknown collection {c}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Authoring {
            forbidden,
            datasets: build(Collection::Datasets, seed.datasets)?,
            pipelines: build(Collection::Pipelines, seed.pipelines)?,
            data_flows: build(Collection::DataFlows, seed.dataflows)?,
            triggers: build(Collection::Triggers, seed.triggers)?,
        })
    }
}

/// The seed fields, flattened into a seed factory.
#[derive(Deserialize, Default)]
pub(crate) struct SeedAuthoring {
    #[serde(default)]
    datasets: Vec<SeedEntity>,
    #[serde(default)]
    pipelines: Vec<SeedEntity>,
    #[serde(default)]
    dataflows: Vec<SeedEntity>,
    #[serde(default)]
    triggers: Vec<SeedEntity>,
    /// `["triggers", …]`: these answer 403, as ARM does for a role without their read action.
    #[serde(default, rename = "forbiddenCollections")]
    forbidden_collections: Vec<String>,
}

#[derive(Deserialize)]
struct SeedEntity {
    name: String,
    properties: Value,
    etag: Option<String>,
}

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
        return Some(cloud_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The requested resource does not support http method '{}'.",
                ctx.method
            ),
        ));
    }
    let store = lock(&shared.store);
    let factory = match store.find_factory(sub, rg, name) {
        Ok(i) => &store.factories[i],
        Err(missing) => {
            return Some(crate::arm::not_found(
                missing,
                crate::arm::FactoryPath { sub, rg, name },
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
            crate::arm::page(shared, ctx, items)
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
