//! A burst of rotations over one estate shares one discovery: the listings are read once per freshness window,
//! not once per rotation, and every re-save still reads its definition afresh right before the PUT.

mod common;

use adf_emulator::Emulator;
use adf_secret_refresh::apply::{self, Azure, RunRequest};
use adf_secret_refresh::azure::keyvault::VaultEndpoints;
use adf_secret_refresh::azure::synapse::SynapseClient;
use adf_secret_refresh::azure::{arm, auth, pacer, retry};
use adf_secret_refresh::config::Scope;
use adf_secret_refresh::event::EventKind;
use adf_secret_refresh::observe::SynapseAccess;
use adf_secret_refresh::observe::cache::DiscoveryCache;
use adf_secret_refresh::plan::SecretRef;
use adf_secret_refresh::report::Trigger;
use std::sync::Arc;
use std::time::Duration;

/// Tokens from the emulator's managed-identity endpoint, for whichever resource is asked.
#[derive(Debug)]
struct EmulatorIdentity {
    http: reqwest::Client,
    endpoint: String,
    header: String,
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for EmulatorIdentity {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let resource = scopes
            .first()
            .map(|s| s.trim_end_matches("/.default"))
            .unwrap_or_default();
        let answer: serde_json::Value = self
            .http
            .get(&self.endpoint)
            .query(&[("api-version", "2019-08-01"), ("resource", resource)])
            .header("X-IDENTITY-HEADER", &self.header)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Credential, e))?
            .json()
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Credential, e))?;
        Ok(azure_core::credentials::AccessToken::new(
            answer["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn azure(emu: &Emulator, discovery: Option<Arc<DiscoveryCache>>) -> Azure {
    let http = auth::http_client(Some(&emu.ca_file())).expect("client");
    let credential: Arc<dyn azure_core::credentials::TokenCredential> =
        Arc::new(EmulatorIdentity {
            http: http.clone(),
            endpoint: emu.identity_endpoint(),
            header: emu.identity_header(),
        });
    Azure {
        arm: arm::ArmClient::new(
            http.clone(),
            &emu.arm_endpoint(),
            credential.clone(),
            auth::CredentialKind::ManagedIdentity,
            Arc::new(pacer::Pacer::new(pacer::Limits::default())),
            retry::RetryPolicy::default(),
        ),
        http: http.clone(),
        credential: credential.clone(),
        vaults: VaultEndpoints {
            template: Some(emu.keyvault_endpoint_template()),
        },
        concurrency: 8,
        synapse: SynapseAccess {
            client: SynapseClient::new(
                http.clone(),
                credential.clone(),
                auth::CredentialKind::ManagedIdentity,
                retry::RetryPolicy::default(),
            ),
            endpoint_template: None,
        },
        discovery,
        platforms: Default::default(),
    }
}

fn request(scopes: &[Scope], dry_run: bool) -> RunRequest {
    RunRequest {
        secret: SecretRef {
            vault: "contoso-kv".into(),
            name: "sql-password".into(),
            version: None,
            vault_suffix: "vault.azure.net".into(),
        },
        secret_url: None,
        event_kind: EventKind::NewVersion,
        dry_run,
        scopes: scopes.to_vec(),
        trigger: Trigger::default(),
        deadline: Some(tokio::time::Instant::now() + Duration::from_secs(120)),
        report_id: None,
        progress: None,
    }
}

/// Listing pages read from ARM: factories, linked services and credentials.
fn listing_reads(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.host_kind == "arm" && r.method == "GET")
        .filter(|r| {
            let last = r
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            matches!(
                last.as_str(),
                "factories" | "linkedservices" | "credentials"
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rotations_in_a_burst_do_one_discovery_and_read_afresh_before_every_put() {
    let seed = adf_emulator::large_estate(10, 4);
    let scopes: Vec<Scope> = adf_emulator::subscription_scopes(&seed)
        .iter()
        .map(|s| Scope::parse(s).expect("scope"))
        .collect();
    let emu = adf_emulator::start(seed, adf_emulator::Options::default())
        .await
        .expect("emulator");

    // One rotation alone: the listings it reads.
    let one = apply::run(&azure(&emu, None), request(&scopes, true)).await;
    assert!(one.complete, "{:?}", one.errors);
    let one_rotation = listing_reads(&emu);
    assert!(one_rotation > 0);
    emu.clear_requests();

    // Fifty at once on one instance: 45 plans and 5 refreshes.
    let shared = azure(
        &emu,
        Some(Arc::new(DiscoveryCache::new(Duration::from_secs(30)))),
    );
    let runs = (0..50).map(|i| {
        let shared = shared.clone();
        let request = request(&scopes, i % 10 != 0);
        tokio::spawn(async move { apply::run(&shared, request).await })
    });
    let reports = futures::future::join_all(runs).await;
    for report in &reports {
        let report = report.as_ref().expect("run");
        assert!(report.complete, "{:?}", report.errors);
        assert_eq!(report.summary.affected, one.summary.affected);
        assert_eq!(
            report.summary.linked_services_scanned,
            one.summary.linked_services_scanned
        );
    }
    let burst = listing_reads(&emu);
    assert!(
        burst as f64 <= one_rotation as f64 * 1.3,
        "the burst read {burst} listing pages, one rotation {one_rotation}"
    );

    // Every PUT follows a GET of the same definition, and no single definition is read except before its PUT.
    let requests = emu.requests();
    let arm: Vec<_> = requests.iter().filter(|r| r.host_kind == "arm").collect();
    let puts: Vec<_> = arm.iter().filter(|r| r.method == "PUT").collect();
    assert!(!puts.is_empty());
    for put in &puts {
        assert!(
            arm.iter()
                .take_while(|r| !std::ptr::eq(**r, **put))
                .any(|r| r.method == "GET" && r.path.eq_ignore_ascii_case(&put.path)),
            "PUT {} without a fresh GET before it",
            put.path
        );
    }
    let single_gets = arm
        .iter()
        .filter(|r| r.method == "GET" && r.path.to_ascii_lowercase().contains("/linkedservices/"))
        .count();
    assert!(
        single_gets <= puts.len() + 5 * 3,
        "{single_gets} GETs for {} PUTs",
        puts.len()
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_is_shared_across_instances_through_the_storage_account() {
    use adf_secret_refresh::azure::storage::BlobClient;
    use adf_secret_refresh::coordination::{Coordinator, SharedDiscoveries};
    let Some(url) = common::azurite() else { return };
    let seed = adf_emulator::large_estate(6, 4);
    let scopes: Vec<Scope> = adf_emulator::subscription_scopes(&seed)
        .iter()
        .map(|s| Scope::parse(s).expect("scope"))
        .collect();
    let emu = adf_emulator::start(seed, adf_emulator::Options::default())
        .await
        .expect("emulator");
    let container = format!(
        "t-shared-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // Two instances: each its own process memory, its own storage client, one storage account.
    let instance = || async {
        let coordinator = Coordinator::new(
            BlobClient::azurite(reqwest::Client::new(), &url).expect("azurite client"),
        )
        .in_container(&container);
        coordinator.prepare().await.expect("container");
        Arc::new(DiscoveryCache::with_backend(
            Duration::from_secs(60),
            Arc::new(SharedDiscoveries::new(coordinator, Duration::from_secs(30))),
        ))
    };
    let (first, second) = (instance().await, instance().await);
    let one = apply::run(&azure(&emu, Some(first)), request(&scopes, true)).await;
    let reads_of_one = listing_reads(&emu);
    assert!(one.complete, "{:?}", one.errors);
    assert!(reads_of_one > 0);
    let two = apply::run(&azure(&emu, Some(second)), request(&scopes, true)).await;
    assert!(two.complete, "{:?}", two.errors);
    assert_eq!(
        listing_reads(&emu),
        reads_of_one,
        "the second instance reused the first one's discovery instead of listing again"
    );
    assert_eq!(one.targets.len(), two.targets.len());
    assert_eq!(
        one.summary.linked_services_scanned,
        two.summary.linked_services_scanned
    );
}

/// Listing pages of every platform's discovery: factories, workspaces, sites, slots, API Management services
/// and their collections (ARM and the Synapse development endpoint alike).
fn discovery_reads(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter(|r| {
            let last = r
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            matches!(
                last.as_str(),
                "factories"
                    | "linkedservices"
                    | "credentials"
                    | "workspaces"
                    | "sites"
                    | "slots"
                    | "appsettings"
                    | "connectionstrings"
                    | "service"
                    | "namedvalues"
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_shares_one_discovery_of_every_platform() {
    // The demo estate holds factories, a Synapse workspace, web apps with a slot and an API Management service.
    let seed = adf_emulator::demo_seed();
    let scopes: Vec<Scope> = adf_emulator::subscription_scopes(&seed)
        .iter()
        .map(|s| Scope::parse(s).expect("scope"))
        .collect();
    let emu = adf_emulator::start(seed, adf_emulator::Options::default())
        .await
        .expect("emulator");
    let one = apply::run(&azure(&emu, None), request(&scopes, true)).await;
    assert!(one.complete, "{:?}", one.errors);
    assert!(one.summary.workspaces_scanned > 0 && one.summary.sites_scanned > 0);
    let one_rotation = discovery_reads(&emu);
    emu.clear_requests();

    let shared = azure(
        &emu,
        Some(Arc::new(DiscoveryCache::new(Duration::from_secs(30)))),
    );
    let runs = (0..50).map(|_| {
        let shared = shared.clone();
        let request = request(&scopes, true);
        tokio::spawn(async move { apply::run(&shared, request).await })
    });
    for report in futures::future::join_all(runs).await {
        let report = report.expect("run");
        assert!(report.complete, "{:?}", report.errors);
        assert_eq!(report.summary.affected, one.summary.affected);
        assert_eq!(report.summary.sites_scanned, one.summary.sites_scanned);
        assert_eq!(
            report.summary.workspaces_scanned,
            one.summary.workspaces_scanned
        );
    }
    let burst = discovery_reads(&emu);
    assert!(
        burst as f64 <= one_rotation as f64 * 1.3,
        "fifty rotations read {burst} discovery pages, one rotation {one_rotation}"
    );
}
