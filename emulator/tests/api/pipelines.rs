//! Datasets, pipelines, data flows and triggers: paged lists and gets with the spec examples' shapes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Harness, SUB, factory_path};
use adf_emulator::Options;

fn spec_example(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/adf-spec-examples")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the spec example {} must be readable: {e}", path.display()));
    let example: Value = serde_json::from_str(&text).expect("example is JSON");
    example["responses"]["200"]["body"].clone()
}

/// The seed entry that reproduces a spec example's resource.
fn seeded(resource: &Value) -> Value {
    json!({"name": resource["name"], "properties": resource["properties"], "etag": resource["etag"]})
}

#[tokio::test]
async fn authoring_lists_and_gets_match_the_spec_examples() {
    const SPEC_SUB: &str = "12345678-1234-1234-1234-12345678abc";
    for (collection, seed_key, list_example, get_example) in [
        (
            "datasets",
            "datasets",
            "Datasets_ListByFactory.json",
            "Datasets_Get.json",
        ),
        (
            "pipelines",
            "pipelines",
            "Pipelines_ListByFactory.json",
            "Pipelines_Get.json",
        ),
        (
            "dataflows",
            "dataflows",
            "DataFlows_ListByFactory.json",
            "DataFlows_Get.json",
        ),
        (
            "triggers",
            "triggers",
            "Triggers_ListByFactory.json",
            "Triggers_Get.json",
        ),
    ] {
        let list = spec_example(list_example);
        let get = spec_example(get_example);
        let items: Vec<Value> = list["value"]
            .as_array()
            .expect("a list")
            .iter()
            .map(seeded)
            .collect();
        let mut factory = json!({"name": "exampleFactoryName"});
        factory[seed_key] = Value::Array(items);
        let h = Harness::start(
            json!({"tenantId": crate::TENANT, "subscriptions": [{"subscriptionId": SPEC_SUB,
            "resourceGroups": [{"name": "exampleResourceGroup", "factories": [factory]}]}]}),
        )
        .await;
        let base = format!(
            "/subscriptions/{SPEC_SUB}/resourceGroups/exampleResourceGroup/providers/Microsoft.DataFactory/factories/exampleFactoryName/{collection}"
        );
        let reply = h.arm_get(&base).await;
        assert_eq!(reply.status, StatusCode::OK, "{collection}");
        assert_eq!(
            reply.body, list,
            "{collection}: seeded with the example's values, the list is identical"
        );
        let name = get["name"].as_str().expect("a name");
        if list["value"]
            .as_array()
            .is_some_and(|v| v.iter().any(|r| r["name"] == name))
        {
            let one = h.arm_get(&format!("{base}/{name}")).await;
            assert_eq!(one.status, StatusCode::OK, "{collection}/{name}");
            let listed = list["value"]
                .as_array()
                .and_then(|v| v.iter().find(|r| r["name"] == name))
                .cloned();
            assert_eq!(
                Some(one.body),
                listed,
                "{collection}/{name}: the get is the listed resource"
            );
        }
        let missing = h.arm_get(&format!("{base}/nope")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn authoring_lists_page_and_only_answer_reads() {
    let pipelines: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("p{i}"), "properties": {"activities": []}}))
        .collect();
    let seed = json!({"tenantId": crate::TENANT, "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
        {"name": "rg1", "factories": [{"name": "f1", "pipelines": pipelines,
            "triggers": [{"name": "t", "properties": {"type": "ScheduleTrigger", "pipelines": []}}]}]}]}]});
    let h = Harness::start_with(
        seed,
        Options {
            page_size: 2,
            ..Options::default()
        },
    )
    .await;
    let (items, pages) = h
        .arm_list(&format!("{}/pipelines", factory_path("rg1", "f1")))
        .await;
    assert_eq!((items.len(), pages), (5, 3));
    let (triggers, _) = h
        .arm_list(&format!("{}/TRIGGERS", factory_path("rg1", "f1")))
        .await;
    assert_eq!(
        triggers[0]["properties"]["runtimeState"], "Stopped",
        "a trigger is created stopped"
    );
    let (datasets, pages) = h
        .arm_list(&format!("{}/datasets", factory_path("rg1", "f1")))
        .await;
    assert_eq!((datasets.len(), pages), (0, 1));
    let missing = h
        .arm_get(&format!("{}/pipelines", factory_path("rg1", "nope")))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let put = h
        .arm(
            Method::PUT,
            &format!("{}/pipelines/p0", factory_path("rg1", "f1")),
            Some(&json!({"properties": {"activities": []}})),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
}
