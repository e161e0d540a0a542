//! The model of a factory's authoring collections (datasets, pipelines, data flows and triggers) as a seed
//! gives them; `pipelines.rs` serves them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::util::new_etag;

/// One of the four collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Collection {
    Datasets,
    Pipelines,
    DataFlows,
    Triggers,
}

impl Collection {
    pub(crate) fn parse(segment: &str) -> Option<Collection> {
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
    pub(crate) fn of(&self, collection: Collection) -> &[Entity] {
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
