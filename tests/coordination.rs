//! Cross-instance coordination against a real Azure Storage API: Azurite, the Storage emulator, on loopback.
//!
//! `scripts/azurite.sh start` starts it (CI does, see `.ci/run`) and prints the account URL; set
//! `ADF_REFRESH_TEST_AZURITE` to it. Without that variable these tests fail under CI (`CI` set) and are
//! skipped with a notice elsewhere.

use adf_secret_refresh::azure::storage::{
    BlobClient, Condition, DEV_ACCOUNT, StorageAuth, StorageError,
};
use adf_secret_refresh::coordination::{Claim, Coordinator, SharedDiscovery};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::azurite;

fn client(url: &str) -> BlobClient {
    BlobClient::azurite(reqwest::Client::new(), url).expect("azurite client")
}

/// A container of its own for each test, so tests never see each other's blobs.
fn container(test: &str) -> String {
    format!(
        "t-{test}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// One "instance": its own HTTP client and coordinator, as two function-app instances would have.
async fn instance(url: &str, container: &str) -> Coordinator {
    let coordinator = Coordinator::new(client(url))
        .in_container(container)
        .with_lease(Duration::from_secs(15));
    coordinator.prepare().await.expect("container");
    coordinator
}

#[tokio::test]
async fn blobs_are_written_conditionally_and_read_with_their_etag_and_age() {
    let Some(url) = azurite() else { return };
    let blobs = client(&url);
    let c = container("blobs");
    blobs.create_container(&c).await.expect("create");
    blobs
        .create_container(&c)
        .await
        .expect("create again is fine");

    assert!(blobs.get_blob(&c, "a/b.json").await.expect("get").is_none());
    let etag = blobs
        .put_blob(&c, "a/b.json", b"one".to_vec(), &Condition::Absent, None)
        .await
        .expect("create-only write");
    let again = blobs
        .put_blob(&c, "a/b.json", b"two".to_vec(), &Condition::Absent, None)
        .await;
    assert!(
        matches!(again, Err(StorageError::PreconditionFailed { .. })),
        "{again:?}"
    );
    let stale = blobs
        .put_blob(
            &c,
            "a/b.json",
            b"two".to_vec(),
            &Condition::Matches("\"0x0\"".into()),
            None,
        )
        .await;
    assert!(
        matches!(stale, Err(StorageError::PreconditionFailed { .. })),
        "{stale:?}"
    );
    let read = blobs
        .get_blob(&c, "a/b.json")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read.bytes, b"one");
    assert_eq!(read.etag, etag);
    assert!(read.age.is_some_and(|a| a < Duration::from_secs(30)));
    let newer = blobs
        .put_blob(
            &c,
            "a/b.json",
            b"two".to_vec(),
            &Condition::Matches(etag.clone()),
            None,
        )
        .await
        .expect("write on the etag read");
    assert_ne!(newer, etag);
    let read = blobs
        .get_blob(&c, "a/b.json")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read.bytes, b"two");
}

#[tokio::test]
async fn a_lease_excludes_others_until_released_and_guards_writes() {
    let Some(url) = azurite() else { return };
    let (a, b) = (client(&url), client(&url));
    let c = container("lease");
    a.create_container(&c).await.expect("create");
    a.put_blob(&c, "lock", Vec::new(), &Condition::Absent, None)
        .await
        .expect("blob");
    let proposed = uuid::Uuid::new_v4().to_string();
    let lease = a
        .acquire_lease(&c, "lock", Duration::from_secs(15), &proposed)
        .await
        .expect("acquire");
    assert_eq!(lease, proposed);
    let other = b
        .acquire_lease(
            &c,
            "lock",
            Duration::from_secs(15),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await;
    assert!(
        matches!(other, Err(StorageError::Leased { .. })),
        "{other:?}"
    );
    let unleased_write = b
        .put_blob(&c, "lock", b"x".to_vec(), &Condition::Always, None)
        .await;
    assert!(
        matches!(unleased_write, Err(StorageError::Leased { .. })),
        "{unleased_write:?}"
    );
    a.put_blob(&c, "lock", b"x".to_vec(), &Condition::Always, Some(&lease))
        .await
        .expect("the holder writes");
    a.renew_lease(&c, "lock", &lease).await.expect("renew");
    a.release_lease(&c, "lock", &lease).await.expect("release");
    b.acquire_lease(
        &c,
        "lock",
        Duration::from_secs(15),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("free after release");
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_no_key_shows_in_errors() {
    let Some(url) = azurite() else { return };
    let key = b"this-is-not-the-account-key-0123456789".to_vec();
    let encoded = base64_of(&key);
    let blobs = BlobClient::new(
        reqwest::Client::new(),
        &url,
        StorageAuth::SharedKey {
            account: DEV_ACCOUNT.into(),
            key,
        },
    )
    .expect("client");
    let error = blobs
        .create_container(&container("badkey"))
        .await
        .expect_err("a wrong key is refused");
    assert!(
        matches!(error, StorageError::Forbidden { status: 403, .. }),
        "{error:?}"
    );
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{blobs:?}"),
    ] {
        assert!(!shown.contains(&encoded), "{shown}");
        assert!(!shown.contains("SharedKey devstoreaccount1:"), "{shown}");
        assert!(
            !shown.contains(adf_secret_refresh::azure::storage::DEV_ACCOUNT_KEY),
            "{shown}"
        );
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Duplicate deliveries of one rotation on two instances: exactly one does the round of PUTs; the other
/// waits and sees it done, with the first run's record.
#[tokio::test]
async fn duplicate_deliveries_on_two_instances_do_one_round_of_puts() {
    let Some(url) = azurite() else { return };
    let c = container("dupes");
    let instances = [instance(&url, &c).await, instance(&url, &c).await];
    let rounds = Arc::new(AtomicUsize::new(0));
    let mut runs = Vec::new();
    for (n, coordinator) in instances.into_iter().enumerate() {
        let rounds = rounds.clone();
        runs.push(tokio::spawn(async move {
            let claim = coordinator
                .claim_rotation_waiting(
                    "https://contoso-kv.vault.azure.net/",
                    "sql-password",
                    Some("0123abcd"),
                    Duration::from_secs(20),
                )
                .await
                .expect("claim");
            match claim {
                Claim::Mine(guard) => {
                    // The round of PUTs this claim stands for.
                    rounds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    assert!(guard.is_held());
                    guard
                        .complete(format!("report-{n}").as_bytes())
                        .await
                        .expect("complete");
                    None
                }
                Claim::AlreadyDone(done) => Some(String::from_utf8_lossy(&done.record).to_string()),
                Claim::HeldByOther => panic!("gave up waiting for the other instance"),
            }
        }));
    }
    let mut seen = Vec::new();
    for run in runs {
        seen.push(run.await.expect("task"));
    }
    assert_eq!(
        rounds.load(Ordering::SeqCst),
        1,
        "exactly one round of PUTs"
    );
    let records: Vec<_> = seen.into_iter().flatten().collect();
    assert_eq!(records.len(), 1, "the other delivery saw it done");
    assert!(records[0].starts_with("report-"));

    // A third delivery later, on either instance, is a duplicate too; another version is not.
    let third = instance(&url, &c).await;
    assert!(matches!(
        third
            .claim_rotation(
                "CONTOSO-KV.vault.azure.net",
                "SQL-PASSWORD",
                Some("0123ABCD")
            )
            .await
            .expect("claim"),
        Claim::AlreadyDone(_)
    ));
    assert!(matches!(
        third
            .claim_rotation("contoso-kv.vault.azure.net", "sql-password", Some("ffff"))
            .await
            .expect("claim"),
        Claim::Mine(_)
    ));
}

#[tokio::test]
async fn a_claim_held_elsewhere_is_reported_and_an_abandoned_one_is_free_again() {
    let Some(url) = azurite() else { return };
    let c = container("held");
    let (a, b) = (instance(&url, &c).await, instance(&url, &c).await);
    let Claim::Mine(guard) = a.claim_rotation("kv", "s", None).await.expect("claim") else {
        panic!("the first claim is ours");
    };
    assert!(matches!(
        b.claim_rotation("kv", "s", None).await.expect("claim"),
        Claim::HeldByOther
    ));
    // An incomplete run frees the claim without marking it done: a retry may try again.
    guard.abandon().await;
    let Claim::Mine(guard) = b.claim_rotation("kv", "s", None).await.expect("claim") else {
        panic!("free after abandon");
    };
    // A guard dropped without completing (a crash of the task) frees it too, in the background.
    drop(guard);
    let mut claimed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Claim::Mine(g) = a.claim_rotation("kv", "s", None).await.expect("claim") {
            g.abandon().await;
            claimed = true;
            break;
        }
    }
    assert!(claimed, "a dropped guard frees the claim");
}

#[tokio::test]
async fn a_done_marker_older_than_the_window_allows_a_new_round() {
    let Some(url) = azurite() else { return };
    let c = container("window");
    let a = instance(&url, &c)
        .await
        .with_done_window(Duration::from_secs(1));
    let Claim::Mine(guard) = a.claim_rotation("kv", "s", Some("v")).await.expect("claim") else {
        panic!("first claim");
    };
    guard.complete(b"first").await.expect("complete");
    assert!(matches!(
        a.claim_rotation("kv", "s", Some("v")).await.expect("claim"),
        Claim::AlreadyDone(_)
    ));
    // Last-Modified has one-second resolution: wait past the window by the service's clock.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let Claim::Mine(guard) = a.claim_rotation("kv", "s", Some("v")).await.expect("claim") else {
        panic!("a stale marker allows a new round");
    };
    guard
        .complete(b"second")
        .await
        .expect("replaces the stale marker");
    let Claim::AlreadyDone(done) = a.claim_rotation("kv", "s", Some("v")).await.expect("claim")
    else {
        panic!("done again");
    };
    assert_eq!(done.record, b"second");
}

/// One instance lists a subscription; the other waits and reuses its inventory instead of listing again.
#[tokio::test]
async fn one_instance_discovers_a_subscription_and_the_other_reuses_it() {
    let Some(url) = azurite() else { return };
    let c = container("inventory");
    let (a, b) = (instance(&url, &c).await, instance(&url, &c).await);
    let sub = "00000000-0000-0000-0000-000000000001";
    let fresh = Duration::from_secs(60);
    let SharedDiscovery::Discover(guard) = a
        .shared_discovery(sub, fresh, Duration::from_secs(10))
        .await
        .expect("inventory")
    else {
        panic!("nothing to reuse yet");
    };
    assert!(guard.leased());
    let waiting = tokio::spawn(async move {
        b.shared_discovery(&sub.to_uppercase(), fresh, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    guard
        .publish(br#"["factory-a","factory-b"]"#.to_vec())
        .await
        .expect("publish");
    match waiting.await.expect("task").expect("inventory") {
        SharedDiscovery::Reuse(bytes) => assert_eq!(bytes, br#"["factory-a","factory-b"]"#),
        SharedDiscovery::Discover(_) => panic!("listed again instead of reusing"),
    }
    // Past its freshness the inventory is listed again, under the lease, and replaced.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let SharedDiscovery::Discover(guard) = a
        .shared_discovery(sub, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .expect("inventory")
    else {
        panic!("stale inventory is not reused");
    };
    guard.publish(b"[]".to_vec()).await.expect("publish");
    assert!(matches!(
        a.shared_discovery(sub, fresh, Duration::ZERO).await.expect("inventory"),
        SharedDiscovery::Reuse(bytes) if bytes == b"[]"
    ));
}

#[tokio::test]
async fn a_discoverer_that_never_publishes_does_not_block_the_others() {
    let Some(url) = azurite() else { return };
    let c = container("patience");
    let (a, b) = (instance(&url, &c).await, instance(&url, &c).await);
    let SharedDiscovery::Discover(_holding) = a
        .shared_discovery("sub", Duration::from_secs(60), Duration::ZERO)
        .await
        .expect("inventory")
    else {
        panic!("first discovers");
    };
    let started = std::time::Instant::now();
    let SharedDiscovery::Discover(guard) = b
        .shared_discovery("sub", Duration::from_secs(60), Duration::from_secs(2))
        .await
        .expect("inventory")
    else {
        panic!("nothing published");
    };
    assert!(
        !guard.leased(),
        "lists without the lease after its patience"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------------------
// The function app end to end: real `adf-secret-refresh serve` processes under simulated Functions hosts,
// sharing one emulator (ARM, Key Vault) and one Azurite (the app's storage account).

mod common;

use adf_emulator::host::{Answer, HostSimulator};
use adf_secret_refresh::azure::storage::DEV_ACCOUNT_KEY;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The app's `AzureWebJobsStorage` setting for Azurite: a connection string with the development account key
/// (Azurite's documented well-known key, not a secret).
fn storage_connection_string(url: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={url};"
    )
}

/// The estate with a version of `contoso-kv/sql-password` of its own: coordination blobs are keyed by
/// (vault, secret, version) and Azurite keeps them between tests, so each test rotates to a fresh version.
fn estate_with_fresh_version() -> (Value, String) {
    let version = uuid::Uuid::new_v4().simple().to_string();
    let mut seed = estate();
    let versions = seed["vaults"][0]["secrets"][0]["versions"]
        .as_array_mut()
        .expect("the estate seeds contoso-kv/sql-password versions");
    versions.push(json!({"version": version, "value": "FAKE-TEST-ONLY-sql-password-v3", "enabled": true, "created": 1770000000}));
    (seed, version)
}

/// One function-app instance: the real handler under a simulated host. The host passes app settings to the
/// worker process as environment variables, `AzureWebJobsStorage` among them.
async fn app_instance(emu: &adf_emulator::Emulator, storage: &str) -> HostSimulator {
    let mut env = emu.env();
    env.push(("ADF_REFRESH_SCOPE".into(), format!("/subscriptions/{SUB}")));
    env.push(("ADF_REFRESH_VAULTS".into(), "contoso-kv".into()));
    env.push(("AzureWebJobsStorage".into(), storage.into()));
    env.push(("RUST_LOG".into(), "info,adf_secret_refresh=debug".into()));
    HostSimulator::start(Path::new(env!("CARGO_BIN_EXE_adf-secret-refresh")), &env)
        .await
        .expect("handler starts")
}

/// A `SecretNewVersionCreated` event for `contoso-kv/sql-password` at `version`.
fn rotation_event(version: &str) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": format!("/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"),
        "subject": "sql-password",
        "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "eventTime": "2026-11-28T09:00:00Z",
        "dataVersion": "1",
        "metadataVersion": "1",
        "data": {
            "Id": format!("https://contoso-kv.vault.azure.net/secrets/sql-password/{version}"),
            "VaultName": "contoso-kv",
            "ObjectType": "Secret",
            "ObjectName": "sql-password",
            "Version": version,
            "NBF": null,
            "EXP": null
        }
    })
}

/// The refresh job `KeyVaultSecretEvent` queues for an event.
async fn queued_job(host: &HostSimulator, event: Value) -> Value {
    let answer = host.event_grid(event).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    match answer.output("job") {
        Some(Value::Array(items)) if items.len() == 1 => items[0].clone(),
        other => panic!("expected one queued job, got {other:?}"),
    }
}

fn report_of(answer: &Answer) -> Value {
    let report = answer
        .output("report")
        .unwrap_or_else(|| panic!("the answer has a report: {:?}", answer.body))
        .clone();
    schema::assert_valid_report(&report);
    report
}

/// ARM `PUT`s of linked services and credentials the emulator answered with success, per resource path.
fn successful_puts(requests: &[adf_emulator::RecordedRequest]) -> BTreeMap<String, usize> {
    let mut puts = BTreeMap::new();
    for r in requests {
        let path = r.path.to_ascii_lowercase();
        if r.method == "PUT"
            && r.host_kind == "arm"
            && (200..300).contains(&r.status)
            && (path.contains("/linkedservices/") || path.contains("/credentials/"))
        {
            *puts.entry(path).or_insert(0) += 1;
        }
    }
    puts
}

/// How many targets a progress blob in the app's coordination container records.
async fn progress_targets(url: &str, blob: &str) -> usize {
    let stored = client(url)
        .get_blob(adf_secret_refresh::coordination::CONTAINER, blob)
        .await
        .expect("read")
        .expect("the progress blob exists");
    let doc: Value = serde_json::from_slice(&stored.bytes).expect("JSON");
    assert_eq!(
        doc["schema"],
        adf_secret_refresh::coordination::PROGRESS_SCHEMA
    );
    doc["targets"].as_object().map_or(0, |t| t.len())
}

/// Two deliveries of one rotation (Event Grid delivered the event twice, so two jobs were queued) reach two
/// instances at once: one instance re-saves, the other waits for it and answers with a duplicate report naming
/// the first run. The emulator sees exactly one round of PUTs.
#[tokio::test]
async fn two_app_instances_given_the_same_rotation_do_one_round_of_puts() {
    let Some(url) = azurite() else { return };
    let (seed, version) = estate_with_fresh_version();
    let emu = emulator(seed, 50).await;
    let storage = storage_connection_string(&url);
    let (a, b) = tokio::join!(app_instance(&emu, &storage), app_instance(&emu, &storage));
    let event = rotation_event(&version);
    let (job_a, job_b) = (
        queued_job(&a, event.clone()).await,
        queued_job(&b, event).await,
    );
    assert_ne!(job_a["id"], job_b["id"]);
    emu.clear_requests();

    let (answer_a, answer_b) = tokio::join!(
        a.queue("RefreshJob", &job_a, 1),
        b.queue("RefreshJob", &job_b, 1)
    );
    assert_eq!(answer_a.status, 200, "{:?}\n{}", answer_a.body, a.logs());
    assert_eq!(answer_b.status, 200, "{:?}\n{}", answer_b.body, b.logs());
    let (report_a, report_b) = (report_of(&answer_a), report_of(&answer_b));
    let (run, duplicate) = if report_a["duplicateOf"].is_null() {
        (report_a, report_b)
    } else {
        (report_b, report_a)
    };
    assert!(run["duplicateOf"].is_null(), "one of them ran: {run}");
    assert_eq!(duplicate["duplicateOf"], run["id"], "{duplicate}");
    assert!(
        duplicate["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["code"] == "duplicateDelivery"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(run["id"].as_str().unwrap_or("?")))),
        "{duplicate}"
    );
    assert!(duplicate["targets"].as_array().is_none_or(Vec::is_empty));

    let puts = successful_puts(&emu.requests());
    let resaved = run["summary"]["resaved"].as_u64().expect("summary.resaved");
    assert!(
        resaved >= 2,
        "the estate has several targets to re-save: {run}"
    );
    assert_eq!(puts.len() as u64, resaved, "{puts:?}");
    for (path, count) in &puts {
        assert_eq!(*count, 1, "{path} was re-saved {count} times");
    }
    let all_puts = emu
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.host_kind == "arm")
        .count() as u64;
    assert_eq!(all_puts, resaved, "no PUT beyond the one round");

    // The same queue message delivered to both at once (a visibility timeout that ran out mid-run): still one
    // round, and the second answer leaves the first run's report blob alone.
    let (seed, version) = estate_with_fresh_version();
    let emu2 = emulator(seed, 50).await;
    let (c, d) = tokio::join!(app_instance(&emu2, &storage), app_instance(&emu2, &storage));
    let job = queued_job(&c, rotation_event(&version)).await;
    emu2.clear_requests();
    let (answer_c, answer_d) = tokio::join!(
        c.queue("RefreshJob", &job, 1),
        d.queue("RefreshJob", &job, 2)
    );
    assert_eq!((answer_c.status, answer_d.status), (200, 200));
    let reports: Vec<Value> = [&answer_c, &answer_d]
        .into_iter()
        .filter(|a| a.output("report").is_some())
        .map(report_of)
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one report for one job id: {:?} {:?}",
        answer_c.body,
        answer_d.body
    );
    assert!(reports[0]["duplicateOf"].is_null());
    let puts = successful_puts(&emu2.requests());
    assert_eq!(
        puts.len() as u64,
        reports[0]["summary"]["resaved"].as_u64().unwrap_or(0)
    );
    assert!(puts.values().all(|n| *n == 1), "{puts:?}");

    for host in [a, b, c, d] {
        assert_no_secrets(&emu, &host.logs());
        host.stop().await;
    }
}

/// A rotation whose first delivery meets an ARM outage halfway: the targets it re-saved and tested are recorded
/// next to the claim, and the redelivery (on another instance) carries them over instead of writing them again.
#[tokio::test]
async fn a_redelivered_rotation_skips_the_targets_an_earlier_delivery_finished() {
    let Some(url) = azurite() else { return };
    let (seed, version) = estate_with_fresh_version();
    let emu = emulator(seed, 50).await;
    let storage = storage_connection_string(&url);
    let (a, b) = tokio::join!(app_instance(&emu, &storage), app_instance(&emu, &storage));
    let job = queued_job(&a, rotation_event(&version)).await;
    emu.clear_requests();

    // ARM stops taking writes after two PUTs.
    emu.set_faults(adf_emulator::Faults {
        write_outage_after: Some(2),
        ..Default::default()
    });
    let first = a.queue("RefreshJob", &job, 1).await;
    assert_eq!(
        first.status,
        503,
        "a transient failure asks for a redelivery: {:?}\n{}",
        first.body,
        a.logs()
    );
    let first_round = successful_puts(&emu.requests());
    assert_eq!(first_round.len(), 2, "{first_round:?}");
    let progress_blob = format!(
        "rotations/{}.progress",
        adf_secret_refresh::coordination::rotation_key(
            "contoso-kv",
            "sql-password",
            Some(&version)
        )
    );
    let recorded = progress_targets(&url, &progress_blob).await;
    assert_eq!(
        recorded, 2,
        "the two finished targets are recorded next to the claim"
    );

    // The outage ends; the host redelivers the message, here to the other instance.
    emu.set_faults(adf_emulator::Faults::default());
    let seen = emu.requests().len();
    let second = b.queue("RefreshJob", &job, 2).await;
    assert_eq!(second.status, 200, "{:?}\n{}", second.body, b.logs());
    let report = report_of(&second);
    assert_eq!(report["complete"], true, "{report}");
    let second_round = successful_puts(&emu.requests()[seen..]);
    for path in first_round.keys() {
        assert!(!second_round.contains_key(path), "{path} was written again");
    }
    let resaved = report["summary"]["resaved"]
        .as_u64()
        .expect("summary.resaved");
    assert_eq!(
        (first_round.len() + second_round.len()) as u64,
        resaved,
        "every target re-saved exactly once over both deliveries"
    );
    let carried: Vec<&Value> = report["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n == "carriedOver"))
        })
        .collect();
    assert_eq!(carried.len(), 2, "{report}");
    for t in carried {
        assert_eq!(t["resave"]["status"], "ok", "{t}");
        assert!(t["resave"]["etagAfter"].is_string(), "{t}");
    }

    assert_eq!(
        progress_targets(&url, &progress_blob).await,
        0,
        "a complete run empties the progress, so a later round starts afresh"
    );

    // A third delivery after completion is a duplicate of the same job: nothing is written.
    let seen = emu.requests().len();
    let third = a.queue("RefreshJob", &job, 3).await;
    assert_eq!(third.status, 200);
    assert!(
        third.output("report").is_none(),
        "the run's report blob is left alone"
    );
    assert!(successful_puts(&emu.requests()[seen..]).is_empty());

    for host in [a, b] {
        host.stop().await;
    }
}

/// A rotation another instance holds for longer than a delivery waits: that delivery does nothing and asks for
/// a redelivery; the last delivery parks the job on the poison queue with a message for a person.
#[tokio::test]
async fn a_rotation_held_elsewhere_is_redelivered_and_the_last_delivery_parks_it() {
    let Some(url) = azurite() else { return };
    let (seed, version) = estate_with_fresh_version();
    let emu = emulator(seed, 50).await;
    let storage = storage_connection_string(&url);
    // Two instances, so that both deliveries wait at the same time (within one instance the second
    // delivery of a job would first wait for the first).
    let (app, app2) = tokio::join!(app_instance(&emu, &storage), app_instance(&emu, &storage));
    let job = queued_job(&app, rotation_event(&version)).await;
    emu.clear_requests();

    // Another instance (here, this test) holds the rotation, in the app's own container.
    let other = Coordinator::new(client(&url));
    other.prepare().await.expect("container");
    let Claim::Mine(held) = other
        .claim_rotation("contoso-kv", "sql-password", Some(&version))
        .await
        .expect("claim")
    else {
        panic!("the rotation is free")
    };

    let (early, last) = tokio::join!(
        app.queue("RefreshJob", &job, 1),
        app2.queue("RefreshJob", &job, 5)
    );
    assert!(held.is_held(), "the lease was renewed throughout");
    held.abandon().await;

    assert_eq!(
        early.status, 503,
        "an early delivery asks for a redelivery: {:?}",
        early.body
    );
    assert_eq!(last.status, 200, "{:?}", last.body);
    let report = report_of(&last);
    assert_eq!(report["complete"], false);
    assert!(report["errors"].as_array().is_some_and(|e| {
        e.iter()
            .any(|e| e["stage"] == "coordination" && e["transient"] == true)
    }));
    assert!(
        report["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["code"] == "retriesExhausted"))
    );
    assert_eq!(
        last.output("poison"),
        Some(&job),
        "the job is parked unchanged"
    );
    assert_eq!(
        last.output("attention").map(|a| a["reason"].clone()),
        Some(json!("retriesExhausted"))
    );
    assert!(
        successful_puts(&emu.requests()).is_empty(),
        "nothing was written while another instance held the rotation"
    );
    app.stop().await;
    app2.stop().await;
}
