//! Cross-instance coordination against a real Azure Storage API: Azurite, the Storage emulator, on loopback.
//!
//! `scripts/azurite.sh start` starts it (CI does, see `.ci/run`) and prints the account URL; set
//! `ADF_REFRESH_TEST_AZURITE` to it. Without that variable these tests fail under CI (`CI` set) and are
//! skipped with a notice elsewhere.

use adf_secret_refresh::azure::storage::{
    BlobClient, Condition, DEV_ACCOUNT, StorageAuth, StorageError,
};
use adf_secret_refresh::coordination::{Claim, Coordinator, Inventory};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const AZURITE_VAR: &str = "ADF_REFRESH_TEST_AZURITE";

/// The Azurite account URL, or `None` (with a notice) when it is not configured outside CI.
fn azurite() -> Option<String> {
    match std::env::var(AZURITE_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{AZURITE_VAR} is not set, but CI is: the coordination tests must run against Azurite. \
             Start it with `scripts/azurite.sh start` and export {AZURITE_VAR} to the URL it prints."
        ),
        _ => {
            // Written past the test harness's capture, so that the skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {AZURITE_VAR} is not set (start Azurite with `scripts/azurite.sh start` and export \
                 {AZURITE_VAR}=<the URL it prints> to run the coordination tests)"
            );
            None
        }
    }
}

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
        matches!(again, Err(StorageError::ConditionNotMet { .. })),
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
        matches!(stale, Err(StorageError::ConditionNotMet { .. })),
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
        matches!(error, StorageError::Failed { status: 403, .. }),
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
    let Inventory::Discover(guard) = a
        .shared_inventory(sub, fresh, Duration::from_secs(10))
        .await
        .expect("inventory")
    else {
        panic!("nothing to reuse yet");
    };
    assert!(guard.leased());
    let waiting = tokio::spawn(async move {
        b.shared_inventory(&sub.to_uppercase(), fresh, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    guard
        .publish(br#"["factory-a","factory-b"]"#.to_vec())
        .await
        .expect("publish");
    match waiting.await.expect("task").expect("inventory") {
        Inventory::Reuse(bytes) => assert_eq!(bytes, br#"["factory-a","factory-b"]"#),
        Inventory::Discover(_) => panic!("listed again instead of reusing"),
    }
    // Past its freshness the inventory is listed again, under the lease, and replaced.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let Inventory::Discover(guard) = a
        .shared_inventory(sub, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .expect("inventory")
    else {
        panic!("stale inventory is not reused");
    };
    guard.publish(b"[]".to_vec()).await.expect("publish");
    assert!(matches!(
        a.shared_inventory(sub, fresh, Duration::ZERO).await.expect("inventory"),
        Inventory::Reuse(bytes) if bytes == b"[]"
    ));
}

#[tokio::test]
async fn a_discoverer_that_never_publishes_does_not_block_the_others() {
    let Some(url) = azurite() else { return };
    let c = container("patience");
    let (a, b) = (instance(&url, &c).await, instance(&url, &c).await);
    let Inventory::Discover(_holding) = a
        .shared_inventory("sub", Duration::from_secs(60), Duration::ZERO)
        .await
        .expect("inventory")
    else {
        panic!("first discovers");
    };
    let started = std::time::Instant::now();
    let Inventory::Discover(guard) = b
        .shared_inventory("sub", Duration::from_secs(60), Duration::from_secs(2))
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
