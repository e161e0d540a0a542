//! Black-box tests of the emulator over real HTTP(S): spec conformance, ARM, Key Vault, tokens, faults,
//! the control API and the binary.

mod apim;
mod appservice;
mod arm;
mod binary;
mod conformance;
mod consumer_conformance;
mod demo;
mod faults;
mod keyvault;
mod listing_faults;
mod pipelines;
mod synapse;
mod tokens;

use adf_emulator::{Emulator, Options};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub const SUB: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const TENANT: &str = "tttttttt-0000-4000-8000-000000000001";
pub const ARM: &str = "https://management.azure.com";
pub const VAULT: &str = "https://vault.azure.net";

/// A `application/x-www-form-urlencoded` body (reqwest's `form` feature is not enabled in the workspace).
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub fn factory_path(rg: &str, factory: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DataFactory/factories/{factory}"
    )
}

pub fn kv_ref(store: &str, secret: &str) -> Value {
    json!({"type": "AzureKeyVaultSecret", "store": {"referenceName": store, "type": "LinkedServiceReference"}, "secretName": secret})
}

/// A small estate: one factory `f1` in `rg1` with linked services `ls0`…`ls{n-1}` (each an inline-secret
/// blob storage), plus whatever `extra` linked services, IRs and credentials are given.
pub fn estate(n: usize, extra: Vec<Value>, irs: Vec<Value>, credentials: Vec<Value>) -> Value {
    let mut linked_services: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("ls{i}"), "properties": {"type": "AzureBlobStorage", "typeProperties": {
            "connectionString": {"type": "SecureString", "value": format!("DefaultEndpointsProtocol=https;AccountName=a{i};AccountKey=TEST-ONLY-key-{i}")}}}}))
        .collect();
    linked_services.extend(extra);
    json!({
        "tenantId": TENANT,
        "subscriptions": [{"subscriptionId": SUB, "resourceGroups": [
            {"name": "rg1", "factories": [{"name": "f1", "linkedServices": linked_services, "integrationRuntimes": irs, "credentials": credentials}]},
            {"name": "rg2", "factories": []}
        ]}],
        "vaults": [{"name": "kv1", "secrets": [{"name": "sql-password", "versions": [
            {"version": "00000000000000000000000000000001", "value": "TEST-ONLY-old-value", "created": 1700000000},
            {"version": "00000000000000000000000000000002", "value": "TEST-ONLY-new-value", "created": 1710000000}
        ]}]}]
    })
}

/// A started emulator with a client that trusts its CA.
pub struct Harness {
    pub emu: Emulator,
    pub client: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client_for(emu: &Emulator) -> reqwest::Client {
    let pem = std::fs::read(emu.ca_file()).expect("CA file written");
    let cert = reqwest::Certificate::from_pem(&pem).expect("CA is PEM");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .no_proxy()
        .build()
        .expect("client builds")
}

impl Harness {
    pub async fn start(seed: Value) -> Self {
        Self::start_with(seed, Options::default()).await
    }

    pub async fn start_with(seed: Value, options: Options) -> Self {
        let emu = adf_emulator::start(seed, options)
            .await
            .expect("emulator starts");
        let client = client_for(&emu);
        Self { emu, client }
    }

    /// A token from the managed-identity endpoint.
    pub async fn token(&self, resource: &str) -> String {
        let reply = self
            .client
            .get(self.emu.identity_endpoint())
            .query(&[("api-version", "2019-08-01"), ("resource", resource)])
            .header("X-IDENTITY-HEADER", self.emu.identity_header())
            .send()
            .await
            .expect("MSI answers");
        assert_eq!(reply.status(), StatusCode::OK);
        let body: Value = reply.json().await.expect("JSON");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Sends a request to the HTTPS listener with an optional bearer token, body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path_and_query.starts_with("https://") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.emu.https_url())
        };
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request completes");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An ARM call with a management token and `api-version=2018-06-01` appended when absent.
    pub async fn arm(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let token = self.token(ARM).await;
        let path = if path.contains("api-version=") || path.starts_with("https://") {
            path.to_owned()
        } else if path.contains('?') {
            format!("{path}&api-version=2018-06-01")
        } else {
            format!("{path}?api-version=2018-06-01")
        };
        self.send(method, &path, Some(&token), body, headers).await
    }

    pub async fn arm_get(&self, path: &str) -> Reply {
        self.arm(Method::GET, path, None, &[]).await
    }

    /// Follows `nextLink` to the end; returns every item and the number of pages.
    pub async fn arm_list(&self, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut next = Some(path.to_owned());
        while let Some(link) = next {
            let reply = self.arm_get(&link).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            pages += 1;
            items.extend(reply.body["value"].as_array().cloned().unwrap_or_default());
            next = reply
                .body
                .get("nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(link) = &next {
                assert!(
                    link.starts_with(&self.emu.https_url()),
                    "nextLink is absolute: {link}"
                );
                assert!(link.contains("api-version=2018-06-01"));
            }
        }
        (items, pages)
    }
}
