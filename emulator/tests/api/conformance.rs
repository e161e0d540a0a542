//! The emulator's responses have exactly the shape of the ADF REST spec examples (2018-06-01).

use std::path::PathBuf;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::Harness;

const EXAMPLE_SUB: &str = "12345678-1234-1234-1234-12345678abc";
const EXAMPLE_RG: &str = "exampleResourceGroup";
const EXAMPLE_FACTORY: &str = "exampleFactoryName";

fn examples_dir() -> PathBuf {
    // <workspace>/emulator → <workspace>/tests/fixtures (copies of the spec examples; see PROVENANCE.md there)
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/adf-spec-examples")
}

fn example(name: &str) -> Value {
    let path = examples_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the spec example {} must be readable: {e}", path.display()));
    serde_json::from_str(&text).expect("example is JSON")
}

fn response_body(example: &Value, status: &str) -> Value {
    example["responses"][status]["body"].clone()
}

/// The JSON shape: objects keep their keys, arrays their first element's shape, scalars their type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn assert_same_shape(actual: &Value, expected: &Value, what: &str) {
    assert_eq!(
        shape(actual),
        shape(expected),
        "{what}: the emulator's shape differs from the spec example\nactual:   {actual}\nexpected: {expected}"
    );
}

/// Drops `typeProperties.encryptedCredential` (random per emulator) everywhere.
fn without_encrypted_credential(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("encryptedCredential");
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

fn decoded_blob_keys(blob: &Value) -> Vec<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob.as_str().expect("encryptedCredential is a string"))
        .expect("encryptedCredential is base64");
    let doc: Value = serde_json::from_slice(&bytes).expect("encryptedCredential decodes to JSON");
    let mut keys: Vec<String> = doc.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

/// The example linked service as a seed entry: its properties with the true secret restored.
fn unmasked(properties: &Value, secret: &str) -> Value {
    let mut properties = without_encrypted_credential(properties.clone());
    properties["typeProperties"]["connectionString"]["value"] = json!(secret);
    properties
}

fn seed(factory: Value) -> Value {
    json!({"tenantId": "12345678-1234-1234-1234-123456789abc", "subscriptions": [{"subscriptionId": EXAMPLE_SUB, "resourceGroups": [
        {"name": EXAMPLE_RG, "factories": [factory]}]}], "vaults": []})
}

fn factory_path() -> String {
    format!(
        "/subscriptions/{EXAMPLE_SUB}/resourceGroups/{EXAMPLE_RG}/providers/Microsoft.DataFactory/factories/{EXAMPLE_FACTORY}"
    )
}

#[tokio::test]
async fn factories_get_matches_the_example_exactly() {
    let expected = response_body(&example("Factories_Get.json"), "200");
    let props = &expected["properties"];
    let h = Harness::start(seed(json!({
        "name": expected["name"], "location": expected["location"], "tags": expected["tags"],
        "createTime": props["createTime"], "eTag": expected["eTag"],
        "repoConfiguration": props["repoConfiguration"],
        "properties": {"purviewConfiguration": props["purviewConfiguration"]},
    })))
    .await;
    let reply = h.arm_get(&factory_path()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.body, &expected, "Factories_Get");
    assert_eq!(
        reply.body, expected,
        "seeded with the example's values, the factory is identical"
    );
    assert!(
        reply.body["eTag"]
            .as_str()
            .is_some_and(|e| e.starts_with('"') && e.ends_with('"'))
    );
    for header in [
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-ratelimit-remaining-subscription-reads",
    ] {
        assert!(reply.header(header).is_some(), "missing {header}");
    }
}

#[tokio::test]
async fn linked_services_get_and_list_match_the_examples() {
    let get = response_body(&example("LinkedServices_Get.json"), "200");
    let list = response_body(&example("LinkedServices_ListByFactory.json"), "200");
    let secret =
        "DefaultEndpointsProtocol=https;AccountName=examplestorageaccount;AccountKey=TEST-ONLY";
    let h = Harness::start(seed(json!({"name": EXAMPLE_FACTORY, "linkedServices": [
        {"name": get["name"], "properties": unmasked(&get["properties"], secret), "etag": get["etag"]}
    ]})))
    .await;

    let reply = h
        .arm_get(&format!(
            "{}/linkedservices/exampleLinkedService",
            factory_path()
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.body, &get, "LinkedServices_Get");
    assert_eq!(
        without_encrypted_credential(reply.body.clone()),
        without_encrypted_credential(get.clone())
    );
    assert_eq!(
        reply.body["properties"]["typeProperties"]["connectionString"]["value"],
        "**********"
    );
    assert_eq!(
        decoded_blob_keys(&reply.body["properties"]["typeProperties"]["encryptedCredential"]),
        decoded_blob_keys(&get["properties"]["typeProperties"]["encryptedCredential"]),
        "encryptedCredential decodes to the same kind of document"
    );

    let reply = h
        .arm_get(&format!("{}/linkedservices", factory_path()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.body, &list, "LinkedServices_ListByFactory");
    assert!(
        !reply.body.to_string().contains("TEST-ONLY"),
        "the true value never leaves the emulator"
    );
}

#[tokio::test]
async fn linked_service_put_response_matches_the_create_example() {
    let create = example("LinkedServices_Create.json");
    let request = create["parameters"]["linkedService"].clone();
    let expected = response_body(&create, "200");
    let h = Harness::start(seed(json!({"name": EXAMPLE_FACTORY}))).await;
    let reply = h
        .arm(
            Method::PUT,
            &format!("{}/linkedservices/exampleLinkedService", factory_path()),
            Some(&request),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_same_shape(&reply.body, &expected, "LinkedServices_Create");
    assert!(
        reply
            .header("x-ms-ratelimit-remaining-subscription-writes")
            .is_some()
    );
}

#[tokio::test]
async fn credentials_get_and_list_match_the_examples() {
    let get = response_body(&example("Credentials_Get.json"), "200");
    let list = response_body(&example("Credentials_ListByFactory.json"), "200");
    let h = Harness::start(seed(json!({"name": EXAMPLE_FACTORY, "credentials": [
        {"name": "exampleCredential", "properties": get["properties"], "etag": get["etag"]}
    ]})))
    .await;
    let reply = h
        .arm_get(&format!("{}/credentials/exampleCredential", factory_path()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.body, &get, "Credentials_Get");
    // The example's `name` says exampleLinkedService (a spec typo); everything else is identical.
    let mut expected = get.clone();
    expected["name"] = json!("exampleCredential");
    assert_eq!(reply.body, expected);
    let reply = h.arm_get(&format!("{}/credentials", factory_path())).await;
    assert_same_shape(&reply.body, &list, "Credentials_ListByFactory");
}

#[tokio::test]
async fn factories_list_items_match_the_example() {
    let list = response_body(&example("Factories_List.json"), "200");
    let first = &list["value"][0];
    let h = Harness::start(seed(json!({
        "name": first["name"], "location": first["location"], "tags": first["tags"], "identity": first["identity"],
        "createTime": first["properties"]["createTime"],
    })))
    .await;
    let reply = h
        .arm_get(&format!(
            "/subscriptions/{EXAMPLE_SUB}/providers/Microsoft.DataFactory/factories"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // The example's items were created with an older API version; the shape is what matters.
    assert_same_shape(&reply.body, &json!({"value": [first]}), "Factories_List");
}

#[tokio::test]
async fn integration_runtimes_list_matches_the_example() {
    let list = response_body(&example("IntegrationRuntimes_ListByFactory.json"), "200");
    let first = &list["value"][0];
    let h = Harness::start(seed(
        json!({"name": EXAMPLE_FACTORY, "integrationRuntimes": [
            {"name": first["name"], "properties": first["properties"]}
        ]}),
    ))
    .await;
    let reply = h
        .arm_get(&format!("{}/integrationRuntimes", factory_path()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_same_shape(&reply.body, &list, "IntegrationRuntimes_ListByFactory");
    assert_eq!(reply.body["value"][0]["id"], first["id"]);
    assert_eq!(reply.body["value"][0]["properties"], first["properties"]);
}
