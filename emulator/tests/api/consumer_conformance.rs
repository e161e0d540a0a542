//! App Service and API Management answers use the names and shapes of the spec examples
//! (`tests/fixtures/consumer-spec-examples/`, see PROVENANCE.md there): every field the emulator sends is
//! one the spec knows, and the fields a client reads are there.

use std::collections::BTreeSet;
use std::path::PathBuf;

use adf_emulator::demo_seed;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{ARM, Harness};

const SUB_A: &str = "1f6a2c8e-3b4d-4f5a-9e7c-6d8b0a1c2e3f";

fn example(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/consumer-spec-examples")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must be readable: {e}", path.display()));
    serde_json::from_str(&text).expect("example is JSON")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

fn assert_subset(ours: &Value, known: &BTreeSet<String>, what: &str) {
    let extra: Vec<_> = keys(ours).difference(known).cloned().collect();
    assert!(
        extra.is_empty(),
        "{what}: fields the spec does not know: {extra:?}"
    );
}

fn apps(resource: &str) -> String {
    format!("/subscriptions/{SUB_A}/resourceGroups/rg-apps-prod/providers/{resource}")
}

async fn get(h: &Harness, path: &str) -> crate::Reply {
    let token = h.token(ARM).await;
    h.send(Method::GET, path, Some(&token), None, &[]).await
}

#[tokio::test]
async fn sites_slots_and_references_use_the_spec_names() {
    let h = Harness::start(demo_seed()).await;
    let spec_site = &example("ListWebApps.json")["responses"]["200"]["body"]["value"][0];
    // `identity` and `tags` are `Site` / `Resource` properties the example happens not to fill.
    let mut site_keys = keys(spec_site);
    site_keys.extend(["identity".to_owned(), "tags".to_owned()]);
    let sites = get(
        &h,
        &format!("{}?api-version=2023-12-01", apps("Microsoft.Web/sites")),
    )
    .await;
    assert_eq!(sites.status, StatusCode::OK);
    for site in sites.body["value"].as_array().expect("value") {
        assert_subset(site, &site_keys, "site");
        assert_subset(
            &site["properties"],
            &keys(&spec_site["properties"]),
            "site properties",
        );
        for field in ["id", "name", "type", "kind", "location"] {
            assert!(site[field].is_string(), "site {field}");
        }
    }

    let spec_slot = &example("ListWebAppSlots.json")["responses"]["200"]["body"]["value"][0];
    let slots = get(
        &h,
        &format!(
            "{}/slots?api-version=2023-12-01",
            apps("Microsoft.Web/sites/app-contoso-web")
        ),
    )
    .await;
    let slot = &slots.body["value"][0];
    assert_subset(slot, &site_keys, "slot");
    assert_subset(
        &slot["properties"],
        &keys(&spec_slot["properties"]),
        "slot properties",
    );
    assert_eq!(slot["type"], spec_slot["type"]);
    assert_eq!(
        slot["name"].as_str().map(|n| n.contains('/')),
        spec_slot["name"].as_str().map(|n| n.contains('/'))
    );

    // ApiKVReference (a ProxyOnlyResource): id, name, kind, type, and these properties.
    let reference_keys: BTreeSet<String> = [
        "reference",
        "status",
        "vaultName",
        "secretName",
        "secretVersion",
        "identityType",
        "details",
        "source",
        "activeVersion",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let spec_refs =
        &example("GetKeyVaultReferencesForAppSettings.json")["responses"]["200"]["body"];
    let refs = get(
        &h,
        &format!(
            "{}/config/configreferences/appsettings?api-version=2024-11-01",
            apps("Microsoft.Web/sites/app-contoso-reports")
        ),
    )
    .await;
    let item = &refs.body["value"][0];
    // `location` is in the refresh answer a public blog shows (appservice-spec/PROVENANCE.md).
    let item_keys: BTreeSet<String> = ["id", "name", "kind", "type", "location", "properties"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_subset(item, &item_keys, "configreference");
    assert_subset(
        &item["properties"],
        &reference_keys,
        "configreference properties",
    );
    for field in keys(&spec_refs["value"][0]["properties"]) {
        assert!(
            item["properties"][&field].is_string(),
            "a pinned reference has {field}"
        );
    }
    assert!(
        item["id"]
            .as_str()
            .is_some_and(|id| id.ends_with("/config/configreferences/appsettings/SqlPassword"))
    );
}

#[tokio::test]
async fn named_values_and_the_refresh_operation_use_the_spec_shapes() {
    let h = Harness::start(demo_seed()).await;
    let service = apps("Microsoft.ApiManagement/service/apim-contoso");
    let spec_list = &example("ApiManagementListNamedValues.json")["responses"]["200"]["body"];
    let list = get(&h, &format!("{service}/namedValues?api-version=2024-05-01")).await;
    assert_subset(&list.body, &keys(spec_list), "NamedValueCollection");
    assert!(list.body["count"].is_number());

    let spec_kv =
        &example("ApiManagementGetNamedValueWithKeyVault.json")["responses"]["200"]["body"];
    let kv = get(
        &h,
        &format!("{service}/namedValues/sql-password?api-version=2024-05-01"),
    )
    .await
    .body;
    assert_eq!(keys(&kv), keys(spec_kv));
    // `provisioningState` is a 2024-05-01 read-only property of NamedValueContractProperties.
    let mut property_keys = keys(&spec_kv["properties"]);
    property_keys.insert("provisioningState".to_owned());
    assert_subset(&kv["properties"], &property_keys, "named value properties");
    assert_eq!(
        keys(&kv["properties"]["keyVault"]),
        keys(&spec_kv["properties"]["keyVault"])
    );
    // KeyVaultLastAccessStatusContractProperties: code, message, timeStampUtc.
    let status_keys: BTreeSet<String> = ["code", "message", "timeStampUtc"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_subset(
        &kv["properties"]["keyVault"]["lastStatus"],
        &status_keys,
        "lastStatus",
    );
    assert_eq!(kv["type"], spec_kv["type"]);

    let spec_refresh =
        &example("ApiManagementRefreshNamedValue.json")["responses"]["202"]["headers"];
    let token = h.token(ARM).await;
    let started = h
        .send(
            Method::POST,
            &format!("{service}/namedValues/sql-password/refreshSecret?api-version=2024-05-01"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let shape = |url: &str| {
        let (path, query) = url.split_once('?').expect("a query");
        let path = path
            .split("/providers/")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
        let params: BTreeSet<String> = query
            .split('&')
            .filter_map(|p| p.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        (segments.len(), segments.last().cloned(), params)
    };
    for (ours, spec) in [
        (
            started.header("location"),
            spec_refresh["location"].as_str(),
        ),
        (
            started.header("azure-asyncoperation"),
            spec_refresh["Azure-AsyncOperation"].as_str(),
        ),
    ] {
        let (ours, spec) = (ours.expect("header"), spec.expect("example header"));
        let (len, _, params) = shape(ours);
        let (spec_len, spec_last, spec_params) = shape(spec);
        assert_eq!((len, params), (spec_len, spec_params), "{ours} vs {spec}");
        if spec_last.as_deref() == Some("refreshSecret") {
            assert!(
                ours.split('?')
                    .next()
                    .is_some_and(|p| p.ends_with("/refreshSecret"))
            );
        }
    }
}
