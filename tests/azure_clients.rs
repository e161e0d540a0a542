//! The Azure clients against small local fakes of Azure that misbehave on purpose: broken pages, error objects
//! on a 200, links to another origin, listings that loop, 429s and 503s, long-running operations. Each test
//! asserts what the caller gets and what reached (or never reached) the fake.

use adf_secret_refresh::azure::arm::{ArmClient, ArmError, ArmResponse};
use adf_secret_refresh::azure::auth::CredentialKind;
use adf_secret_refresh::azure::keyvault::{self, KeyVaultError, VaultEndpoints};
use adf_secret_refresh::azure::operations;
use adf_secret_refresh::azure::pacer::{Limits, Pacer};
use adf_secret_refresh::azure::resource_id::ResourceId;
use adf_secret_refresh::azure::retry::RetryPolicy;
use adf_secret_refresh::azure::storage::BlobClient;
use adf_secret_refresh::azure::synapse::{ArtifactKind, SynapseClient};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const FACTORY: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1";

/// A fixed token, so that tests can check where it went.
#[derive(Debug)]
struct FixedToken;

#[async_trait::async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            "fake-bearer-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    bearer: bool,
}

type Script = dyn Fn(&Seen, usize) -> Response + Send + Sync;

/// A fake of one Azure endpoint on 127.0.0.1: `script(request, n)` answers the `n`th request (from 0).
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    async fn start(script: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static) -> Fake {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let app = {
            let seen = seen.clone();
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
                let seen = seen.clone();
                let script = script.clone();
                async move {
                    let request = Seen {
                        method,
                        path_and_query: uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        bearer: headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("Bearer ")),
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                        seen.push(request.clone());
                        seen.len() - 1
                    };
                    script(&request, n)
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A port that counts the connections made to it and answers none.
async fn counting_port() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted)
}

fn json_answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn arm(fake: &Fake) -> ArmClient {
    ArmClient::new(
        reqwest::Client::new(),
        &fake.url(),
        Arc::new(FixedToken),
        CredentialKind::ManagedIdentity,
        Arc::new(Pacer::new(Limits::default())),
        quick(),
    )
    .with_deadline(Some(Instant::now() + Duration::from_secs(30)))
}

fn linked_service(name: &str) -> Value {
    json!({"name": name, "properties": {"type": "AzureSqlDatabase"}})
}

// ---- Pages whose items are not objects ----

/// A linked-service listing whose first page holds `bad` among real items for the first `times` answers.
async fn listing_with(bad: Value, times: usize) -> (Fake, Result<Vec<Value>, ArmError>) {
    let fake = Fake::start(move |_, n| {
        if n < times {
            json_answer(
                200,
                json!({"value": [linked_service("a"), bad.clone(), linked_service("b")]}),
            )
        } else {
            json_answer(
                200,
                json!({"value": [linked_service("a"), linked_service("b")]}),
            )
        }
    })
    .await;
    let listed = arm(&fake).list_linked_services(FACTORY).await;
    (fake, listed)
}

#[tokio::test]
async fn a_null_item_in_a_linked_service_page_once_is_read_again_and_nothing_is_missed() {
    for bad in [Value::Null, json!(7), json!("ls"), json!([])] {
        let (fake, listed) = listing_with(bad.clone(), 1).await;
        let listed = listed.expect("the page read again is whole");
        let names: Vec<&str> = listed.iter().filter_map(|l| l["name"].as_str()).collect();
        assert_eq!(names, ["a", "b"], "{bad}");
        assert_eq!(fake.seen().len(), 2, "{bad}: the page was read twice");
    }
}

#[tokio::test]
async fn a_page_whose_items_stay_broken_fails_the_listing_and_never_reads_as_shorter() {
    for bad in [Value::Null, json!(7), json!("ls")] {
        let (fake, listed) = listing_with(bad.clone(), usize::MAX).await;
        let error = listed.expect_err("a listing with an unread item is not a listing");
        assert!(
            matches!(error, ArmError::Malformed { .. }) && error.is_transient(),
            "{bad}: {error:?}"
        );
        assert!(error.to_string().contains("not an object"), "{error}");
        assert_eq!(
            fake.seen().len(),
            3,
            "{bad}: retried like a 5xx, then given up"
        );
    }
}

#[tokio::test]
async fn a_null_item_in_a_credential_page_or_a_workspace_page_fails_those_listings_too() {
    let fake = Fake::start(|_, _| {
        json_answer(
            200,
            json!({"value": [{"name": "cred", "properties": {"type": "ServicePrincipal"}}, null]}),
        )
    })
    .await;
    let credentials = arm(&fake).list_credentials(FACTORY).await;
    assert!(
        matches!(credentials, Err(ArmError::Malformed { .. })),
        "{credentials:?}"
    );
    let workspace = SynapseClient::new(
        reqwest::Client::new(),
        Arc::new(FixedToken),
        CredentialKind::ManagedIdentity,
        quick(),
    )
    .list_linked_services(&url::Url::parse(&format!("{}/synapse/ws/", fake.url())).expect("url"))
    .await;
    assert!(
        matches!(workspace, Err(ArmError::Malformed { .. })),
        "{workspace:?}"
    );
}

#[tokio::test]
async fn a_listing_that_loops_back_to_a_page_already_read_fails_at_once() {
    let port_cell: Arc<Mutex<u16>> = Arc::default();
    let cell = port_cell.clone();
    let fake = Fake::start(move |seen, _| {
        let port = *cell.lock().unwrap_or_else(|e| e.into_inner());
        let first = format!(
            "http://127.0.0.1:{port}/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f1/linkedservices?api-version=2018-06-01"
        );
        // Page 2 links back to page 1.
        let next = if seen.path_and_query.contains("page=2") {
            first
        } else {
            format!("{first}&page=2")
        };
        json_answer(200, json!({"value": [linked_service("a")], "nextLink": next}))
    })
    .await;
    *port_cell.lock().unwrap_or_else(|e| e.into_inner()) = fake.port;
    let started = std::time::Instant::now();
    let error = arm(&fake)
        .list_linked_services(FACTORY)
        .await
        .expect_err("a loop is no listing");
    assert!(
        matches!(error, ArmError::LoopingListing { .. }),
        "{error:?}"
    );
    assert_eq!(
        fake.seen().len(),
        2,
        "each page was read once, then the loop was seen"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---- Key Vault: the challenge, pages checked, links kept on their origin ----

fn challenge() -> Response {
    with_headers(
        json_answer(401, json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        &[(
            "www-authenticate",
            "Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"https://vault.azure.net\"".into(),
        )],
    )
}

fn version(n: u32) -> Value {
    json!({"id": format!("https://kv.vault.azure.net/secrets/s/{n:032}"),
           "attributes": {"enabled": true, "created": 1_700_000_000 + n, "updated": 1_700_000_000 + n}})
}

async fn list_versions(fake: &Fake) -> Result<Vec<keyvault::VersionMetadata>, KeyVaultError> {
    keyvault::list_versions(
        &reqwest::Client::new(),
        Arc::new(FixedToken),
        &VaultEndpoints {
            template: Some(format!("{}/kv/{{vault}}/", fake.url())),
        },
        "kv",
        "s",
        None,
    )
    .await
}

/// A vault whose versions listing has two pages; `broken(page, n)` may replace a page's answer.
async fn vault(broken: impl Fn(u32, usize) -> Option<Response> + Send + Sync + 'static) -> Fake {
    let port_cell: Arc<Mutex<u16>> = Arc::default();
    let cell = port_cell.clone();
    let fake = Fake::start(move |seen, n| {
        if !seen.bearer {
            return challenge();
        }
        let page = if seen.path_and_query.contains("skiptoken=1") { 2 } else { 1 };
        if let Some(answer) = broken(page, n) {
            return answer;
        }
        let port = *cell.lock().unwrap_or_else(|e| e.into_inner());
        if page == 1 {
            json_answer(200, json!({"value": [version(1)], "nextLink": format!("http://127.0.0.1:{port}/kv/kv/secrets/s/versions?api-version=7.5&$skiptoken=1")}))
        } else {
            json_answer(200, json!({"value": [version(2)], "nextLink": null}))
        }
    })
    .await;
    *port_cell.lock().unwrap_or_else(|e| e.into_inner()) = fake.port;
    fake
}

fn error_object() -> Response {
    json_answer(
        200,
        json!({"error": {"code": "Throttled", "message": "Try again later."}}),
    )
}

#[tokio::test]
async fn key_vault_versions_are_listed_after_the_challenge_with_the_token_only_then() {
    let fake = vault(|_, _| None).await;
    let versions = list_versions(&fake).await.expect("listed");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].version, format!("{:032}", 2));
    let seen = fake.seen();
    assert!(!seen[0].bearer, "the first request carries no token");
    assert!(seen[1..].iter().all(|s| s.bearer));
    assert!(
        seen.iter()
            .all(|s| s.path_and_query.contains("api-version=7.5"))
    );
}

#[tokio::test]
async fn an_error_object_instead_of_a_versions_page_once_is_read_again_and_nothing_is_missed() {
    for broken_page in [1, 2] {
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        let fake = vault(move |page, _| {
            (page == broken_page && count.fetch_add(1, Ordering::SeqCst) == 0).then(error_object)
        })
        .await;
        let versions = list_versions(&fake).await.expect("recovered");
        assert_eq!(
            versions.len(),
            2,
            "page {broken_page}: every version is there"
        );
    }
}

#[tokio::test]
async fn an_error_object_that_persists_is_an_error_never_no_versions() {
    for broken_page in [1, 2] {
        let fake = vault(move |page, _| (page == broken_page).then(error_object)).await;
        let error = list_versions(&fake)
            .await
            .expect_err("an error object is not an empty listing");
        assert!(
            matches!(error, KeyVaultError::Malformed { .. }),
            "page {broken_page}: {error:?}"
        );
        assert!(error.to_string().contains("error answer"), "{error}");
    }
}

#[tokio::test]
async fn a_key_vault_next_link_to_another_port_is_never_followed_and_the_listing_fails() {
    let (other, accepted) = counting_port().await;
    let fake = vault(move |page, _| {
        (page == 1).then(|| {
            json_answer(200, json!({"value": [version(1)], "nextLink": format!("http://127.0.0.1:{other}/kv/kv/secrets/s/versions?api-version=7.5&$skiptoken=1")}))
        })
    })
    .await;
    let error = list_versions(&fake)
        .await
        .expect_err("the listing cannot be read to its end");
    assert!(error.is_transient(), "{error:?}");
    assert!(!error.to_string().contains("fake-bearer-token"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no connection reached the other port"
    );
}

// ---- Synapse: a PUT throttled longer than the attempt limit ----

#[tokio::test]
async fn a_synapse_put_answered_429_more_times_than_the_attempt_limit_is_saved_once_accepted() {
    let fake = Fake::start(|seen, n| {
        if seen.method == Method::PUT && n < 6 {
            return with_headers(
                json_answer(
                    429,
                    json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
                ),
                &[("retry-after", "0.05".into())],
            );
        }
        json_answer(
            200,
            json!({"name": "ls", "etag": "e2", "properties": {"type": "AzureSqlDatabase"}}),
        )
    })
    .await;
    let client = SynapseClient::new(
        reqwest::Client::new(),
        Arc::new(FixedToken),
        CredentialKind::ManagedIdentity,
        RetryPolicy {
            max_attempts: 2,
            ..quick()
        },
    )
    .with_deadline(Some(Instant::now() + Duration::from_secs(30)));
    let base = url::Url::parse(&format!("{}/synapse/ws/", fake.url())).expect("url");
    let saved = client
        .put_if_match(
            &base,
            ArtifactKind::LinkedService,
            "ls",
            &json!({"type": "AzureSqlDatabase"}),
            "e1",
        )
        .await
        .expect("a 429 is back-pressure, not a failure");
    assert_eq!(saved.etag.as_deref(), Some("e2"));
    let puts = fake
        .seen()
        .iter()
        .filter(|s| s.method == Method::PUT)
        .count();
    assert_eq!(puts, 7, "six 429s, then the accepted PUT");
}

#[tokio::test]
async fn a_synapse_put_throttled_past_the_deadline_is_unavailable_not_saved() {
    let fake = Fake::start(|_, _| {
        with_headers(
            json_answer(
                429,
                json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            ),
            &[("retry-after", "1".into())],
        )
    })
    .await;
    let client = SynapseClient::new(
        reqwest::Client::new(),
        Arc::new(FixedToken),
        CredentialKind::ManagedIdentity,
        quick(),
    )
    .with_deadline(Some(Instant::now() + Duration::from_millis(2500)));
    let base = url::Url::parse(&format!("{}/synapse/ws/", fake.url())).expect("url");
    let error = client
        .put_if_match(&base, ArtifactKind::LinkedService, "ls", &json!({}), "e1")
        .await
        .expect_err("never accepted");
    assert!(
        matches!(error, ArmError::Unavailable { status: 429, .. }) && error.is_transient(),
        "{error:?}"
    );
}

// ---- Storage: retried like every client ----

#[tokio::test]
async fn storage_retries_a_503_then_succeeds() {
    let fake = Fake::start(|_, n| {
        if n == 0 {
            return with_headers(
                (StatusCode::SERVICE_UNAVAILABLE, "").into_response(),
                &[("x-ms-error-code", "ServerBusy".into())],
            );
        }
        with_headers(
            (StatusCode::CREATED, "").into_response(),
            &[("etag", "\"0x1\"".into())],
        )
    })
    .await;
    let blobs = BlobClient::azurite(
        reqwest::Client::new(),
        &format!("{}/devstoreaccount1", fake.url()),
    )
    .expect("client");
    let etag = blobs
        .put_blob(
            "coordination",
            "rotations/a.lock",
            b"{}".to_vec(),
            &adf_secret_refresh::azure::storage::Condition::Absent,
            None,
        )
        .await
        .expect("the second attempt succeeds");
    assert_eq!(etag, "\"0x1\"");
    assert_eq!(fake.seen().len(), 2);
}

// ---- ARM: long-running POSTs ----

async fn post_test_connectivity(fake: &Fake) -> Result<ArmResponse, ArmError> {
    let factory = ResourceId::parse(FACTORY).expect("id");
    arm(fake)
        .post_at(
            operations::TEST_CONNECTIVITY,
            &factory.join(&["testConnectivity"]),
            operations::ADF_API_VERSION,
            &json!({}),
        )
        .await
}

#[tokio::test]
async fn an_arm_post_answered_202_is_polled_on_the_same_origin_to_its_result() {
    let fake = Fake::start(|seen, _| {
        if seen.method == Method::POST {
            return with_headers(
                json_answer(202, json!({})),
                &[
                    ("location", "/operations/op1?api-version=2018-06-01".into()),
                    ("retry-after", "0.05".into()),
                ],
            );
        }
        json_answer(200, json!({"succeeded": true}))
    })
    .await;
    let answer = post_test_connectivity(&fake).await.expect("ended");
    assert_eq!(answer.body["succeeded"], true);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].path_and_query.starts_with("/operations/op1"));
    assert!(seen.iter().all(|s| s.bearer));
}

#[tokio::test]
async fn an_arm_202_whose_location_leaves_the_endpoint_is_never_polled() {
    let (other, accepted) = counting_port().await;
    let fake = Fake::start(move |_, _| {
        with_headers(
            json_answer(202, json!({})),
            &[(
                "location",
                format!("http://127.0.0.1:{other}/operations/op1"),
            )],
        )
    })
    .await;
    let error = post_test_connectivity(&fake)
        .await
        .expect_err("not followed");
    assert!(matches!(error, ArmError::ForeignLink(_)), "{error:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}
