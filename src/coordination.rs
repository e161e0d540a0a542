//! Cooperation between instances of the function app through its storage account.
//!
//! On Flex Consumption the app runs on several instances, and a queue or Event Grid may deliver the same
//! rotation to two of them. Two things are coordinated through blobs in one container of the app's storage
//! account (the CLI does not use this: it runs alone and has no storage account):
//!
//! - **One round of PUTs per rotation.** [`Coordinator::claim_rotation`] takes a blob lease named after the
//!   (vault, secret, version). The holder runs the refresh and, when it completes, writes a done marker with a
//!   conditional write ([`RotationGuard::complete`]). A duplicate delivery on another instance sees the lease
//!   ([`Claim::HeldByOther`]) or the marker ([`Claim::AlreadyDone`]) and does not re-save anything.
//! - **One discovery per subscription.** [`Coordinator::shared_inventory`] lets one instance list a
//!   subscription's factories under a lease and publish what it found in a blob; the others wait briefly and
//!   reuse that inventory while it is fresh instead of listing ARM again. The inventory only says *where to
//!   look*: every PUT is still preceded by a fresh GET of the resource, by the caller.
//!
//! - **Resumable runs.** The instance that holds a rotation records, in `rotations/{key}.progress`, every target
//!   it re-saved and tested ([`Coordinator::progress`], [`RunProgress`]). A redelivery of the same rotation after
//!   an outage or a spent run budget skips those targets and carries their recorded outcome into its report
//!   (note `carriedOver`), so a long run converges over deliveries instead of starting again each time.
//!
//! Leases have a fixed duration (see [`DEFAULT_LEASE`]) and are renewed while their guard lives, so an instance
//! that dies frees its claims within that duration; nobody ever breaks another holder's lease. Blob names are
//! SHA-256 hashes of the normalised data, so no vault, secret or subscription name reaches a URL.
//!
//! Freshness is judged by the storage service's own clock (`Date` − `Last-Modified` of one response), so clock
//! skew between instances does not matter.

use crate::azure::storage::{BlobClient, Condition, StorageError};
use crate::report::{Note, Resave, ResaveStatus, Target, Test};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The container the product keeps its coordination blobs in.
pub const CONTAINER: &str = "adf-refresh-coordination";
/// How long a lease lasts without renewal: an instance that dies frees its claims within this time.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long a completed rotation counts as done: a redelivery within it does nothing (as within one instance).
pub const DEFAULT_DONE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often a waiting instance looks again.
const POLL: Duration = Duration::from_millis(500);
/// A run's progress is written after this many newly finished targets…
const PROGRESS_BATCH: usize = 10;
/// …or this long after the first unwritten one, whichever comes first, and once more at the end.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The schema of a progress blob.
pub const PROGRESS_SCHEMA: &str = "adf-secret-refresh/progress/v1";

/// Coordinates this instance with the others through one storage account.
#[derive(Clone, Debug)]
pub struct Coordinator {
    blobs: BlobClient,
    container: String,
    lease: Duration,
    done_window: Duration,
}

/// The answer to "may this instance refresh this rotation?".
#[derive(Debug)]
pub enum Claim {
    /// Go ahead; call [`RotationGuard::complete`] when the run completes, or drop it to let a retry try again.
    Mine(RotationGuard),
    /// Another delivery completed it within the done window; `record` is what that run stored (its report id).
    AlreadyDone(Done),
    /// Another instance is refreshing it right now.
    HeldByOther,
}

/// A completed rotation's marker.
#[derive(Debug, Clone)]
pub struct Done {
    pub record: Vec<u8>,
    pub age: Option<Duration>,
}

/// The answer to "must this instance list this subscription?".
#[derive(Debug)]
// Made once per subscription and consumed at once: boxing the guard would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Inventory {
    /// A fresh inventory published by an instance that listed it.
    Reuse(Vec<u8>),
    /// List it, then [`InventoryGuard::publish`] the result for the others.
    Discover(InventoryGuard),
}

impl Coordinator {
    pub fn new(blobs: BlobClient) -> Self {
        Coordinator {
            blobs,
            container: CONTAINER.to_string(),
            lease: DEFAULT_LEASE,
            done_window: DEFAULT_DONE_WINDOW,
        }
    }

    /// The coordinator of a function app, from the host's storage settings (`AzureWebJobsStorage`, or its
    /// identity-based `__blobServiceUri` / `__accountName` with the app's credential); `None` where there are
    /// none (the CLI), which then runs uncoordinated, as it does alone.
    pub fn from_functions_environment(
        http: reqwest::Client,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
    ) -> Option<Result<Coordinator, StorageError>> {
        BlobClient::from_functions_settings(http, |k| std::env::var(k).ok(), credential)
            .map(|blobs| blobs.map(Coordinator::new))
    }

    /// Another container (tests use one each).
    pub fn in_container(mut self, container: &str) -> Self {
        self.container = container.to_string();
        self
    }

    /// The lease duration, clamped by the service to 15–60 s.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(
            crate::azure::storage::MIN_LEASE,
            crate::azure::storage::MAX_LEASE,
        );
        self
    }

    pub fn with_done_window(mut self, window: Duration) -> Self {
        self.done_window = window;
        self
    }

    /// Creates the container if missing. Call once at start-up.
    pub async fn prepare(&self) -> Result<(), StorageError> {
        self.blobs.create_container(&self.container).await
    }

    /// Claims a rotation for this instance: a lease on `rotations/{key}.lock`, unless a done marker
    /// `rotations/{key}.done` younger than the done window exists. `vault` is the vault's name or URL and
    /// `version` the secret version (`None` for "latest"); all three compare case-insensitively.
    pub async fn claim_rotation(
        &self,
        vault: &str,
        secret: &str,
        version: Option<&str>,
    ) -> Result<Claim, StorageError> {
        let key = rotation_key(vault, secret, version);
        let done_blob = format!("rotations/{key}.done");
        let lock_blob = format!("rotations/{key}.lock");
        let done = self.blobs.get_blob(&self.container, &done_blob).await?;
        if let Some(done) = self.fresh_done(done.as_ref()) {
            return Ok(Claim::AlreadyDone(done));
        }
        let Some(lease) = self.try_lease(&lock_blob).await? else {
            return Ok(Claim::HeldByOther);
        };
        // The holder before us may have completed between our read and our lease.
        let done = self.blobs.get_blob(&self.container, &done_blob).await?;
        if let Some(fresh) = self.fresh_done(done.as_ref()) {
            lease.release().await;
            return Ok(Claim::AlreadyDone(fresh));
        }
        Ok(Claim::Mine(RotationGuard {
            lease,
            done_blob,
            done_etag: done.map(|d| d.etag),
        }))
    }

    /// Like [`Coordinator::claim_rotation`], but while another instance holds the rotation, waits up to
    /// `patience` for it to finish (then `AlreadyDone`) or to give up (then `Mine`).
    pub async fn claim_rotation_waiting(
        &self,
        vault: &str,
        secret: &str,
        version: Option<&str>,
        patience: Duration,
    ) -> Result<Claim, StorageError> {
        let until = tokio::time::Instant::now() + patience;
        loop {
            match self.claim_rotation(vault, secret, version).await? {
                Claim::HeldByOther if tokio::time::Instant::now() + POLL < until => {
                    tokio::time::sleep(POLL).await;
                }
                claim => return Ok(claim),
            }
        }
    }

    /// One discovery per subscription: reuse an inventory younger than `freshness`, else list it under a lease;
    /// while another instance holds that lease, wait up to `patience` for its inventory, then list anyway
    /// (without publishing over a newer one).
    pub async fn shared_inventory(
        &self,
        subscription: &str,
        freshness: Duration,
        patience: Duration,
    ) -> Result<Inventory, StorageError> {
        let key = hash(&["inventory", &subscription.trim().to_ascii_lowercase()]);
        let blob = format!("inventories/{key}.json");
        let lock_blob = format!("inventories/{key}.lock");
        let until = tokio::time::Instant::now() + patience;
        loop {
            let current = self.blobs.get_blob(&self.container, &blob).await?;
            if let Some(current) = &current
                && current.age.is_some_and(|age| age <= freshness)
            {
                return Ok(Inventory::Reuse(current.bytes.clone()));
            }
            if let Some(lease) = self.try_lease(&lock_blob).await? {
                // Someone may have published between our read and our lease.
                let current = self.blobs.get_blob(&self.container, &blob).await?;
                if let Some(current) = &current
                    && current.age.is_some_and(|age| age <= freshness)
                {
                    lease.release().await;
                    return Ok(Inventory::Reuse(current.bytes.clone()));
                }
                return Ok(Inventory::Discover(InventoryGuard {
                    blobs: self.blobs.clone(),
                    container: self.container.clone(),
                    blob,
                    etag: current.map(|c| c.etag),
                    lease: Some(lease),
                }));
            }
            if tokio::time::Instant::now() + POLL >= until {
                return Ok(Inventory::Discover(InventoryGuard {
                    blobs: self.blobs.clone(),
                    container: self.container.clone(),
                    blob,
                    etag: current.map(|c| c.etag),
                    lease: None,
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The progress of a rotation this instance holds (call it after [`Claim::Mine`]): what earlier deliveries
    /// recorded in `rotations/{key}.progress`, and a handle to record this delivery's finished targets there.
    /// A progress blob that does not parse is treated as empty (and replaced).
    pub async fn progress(
        &self,
        vault: &str,
        secret: &str,
        version: Option<&str>,
    ) -> Result<RunProgress, StorageError> {
        let key = rotation_key(vault, secret, version);
        let blob = format!("rotations/{key}.progress");
        let current = self.blobs.get_blob(&self.container, &blob).await?;
        let (earlier, etag) = match current {
            Some(current) => (parse_progress(&current.bytes, &blob), Some(current.etag)),
            None => (BTreeMap::new(), None),
        };
        let inner = Arc::new(ProgressInner {
            blobs: self.blobs.clone(),
            container: self.container.clone(),
            blob,
            state: Mutex::new(ProgressState {
                earlier,
                recorded: BTreeMap::new(),
                etag,
                unwritten: 0,
            }),
            write: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        });
        let flusher = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    inner.wake.notified().await;
                    // Let a burst of finished targets gather into one write.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    inner.flush_logged().await;
                }
            })
        };
        let timer = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(PROGRESS_EVERY).await;
                    inner.flush_logged().await;
                }
            })
        };
        Ok(RunProgress {
            inner,
            tasks: Mutex::new(vec![flusher, timer]),
        })
    }

    fn fresh_done(&self, done: Option<&crate::azure::storage::Blob>) -> Option<Done> {
        let done = done?;
        // A marker whose age the service did not tell is taken as fresh: doing nothing twice is the safe side.
        let fresh = done.age.is_none_or(|age| age <= self.done_window);
        fresh.then(|| Done {
            record: done.bytes.clone(),
            age: done.age,
        })
    }

    /// Leases `blob` (creating it empty first if needed); `None` when another holder has it.
    async fn try_lease(&self, blob: &str) -> Result<Option<LeaseGuard>, StorageError> {
        match self
            .blobs
            .put_blob(&self.container, blob, Vec::new(), &Condition::Absent, None)
            .await
        {
            Ok(_) | Err(StorageError::PreconditionFailed { .. } | StorageError::Leased { .. }) => {}
            Err(e) => return Err(e),
        }
        let proposed = uuid::Uuid::new_v4().to_string();
        match self
            .blobs
            .acquire_lease(&self.container, blob, self.lease, &proposed)
            .await
        {
            Ok(id) => Ok(Some(LeaseGuard::start(
                self.blobs.clone(),
                self.container.clone(),
                blob.to_string(),
                id,
                self.lease,
            ))),
            Err(StorageError::Leased { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What an earlier delivery recorded for a target it re-saved and tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub resave: Resave,
    pub test: Test,
}

impl Recorded {
    /// Puts the recorded outcome on `target` and notes that it was carried over (`carriedOver`).
    pub fn carry_into(self, target: &mut Target) {
        target.resave = self.resave;
        target.test = self.test;
        if !target.notes.contains(&Note::CarriedOver) {
            target.notes.push(Note::CarriedOver);
        }
    }
}

/// The progress of one rotation across its deliveries, as the act step sees it. The act step asks
/// [`Progress::already_done`] before it re-saves a target and calls [`Progress::record`] after it tested one.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// What an earlier delivery recorded for this target, if it re-saved and tested it.
    fn already_done(&self, target: &Target) -> Option<Recorded>;
    /// Notes that this delivery finished the target (only a successful re-save is kept).
    fn record(&self, target: &Target);
}

/// The key of a target in a progress blob: its kind, factory (or workspace) id and name, case-insensitive,
/// hashed like every other name the coordination blobs hold.
pub fn target_key(target: &Target) -> String {
    let kind = format!("{:?}", target.kind);
    hash(&[
        "target",
        &kind,
        &target.factory.to_ascii_lowercase(),
        &target.name.to_ascii_lowercase(),
    ])
}

/// A rotation's progress kept in its blob: read once when the claim is taken, written with conditional writes
/// in batches (every `PROGRESS_BATCH` finished targets or `PROGRESS_EVERY`, and by [`RunProgress::finish`]).
#[derive(Debug)]
pub struct RunProgress {
    inner: Arc<ProgressInner>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug)]
struct ProgressInner {
    blobs: BlobClient,
    container: String,
    blob: String,
    state: Mutex<ProgressState>,
    /// One write at a time, so that each is conditional on the etag of the one before.
    write: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

#[derive(Debug)]
struct ProgressState {
    /// What earlier deliveries recorded.
    earlier: BTreeMap<String, Recorded>,
    /// What this delivery recorded.
    recorded: BTreeMap<String, Recorded>,
    etag: Option<String>,
    unwritten: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ProgressDocument {
    schema: String,
    targets: BTreeMap<String, Recorded>,
}

fn parse_progress(bytes: &[u8], blob: &str) -> BTreeMap<String, Recorded> {
    match serde_json::from_slice::<ProgressDocument>(bytes) {
        Ok(doc) if doc.schema == PROGRESS_SCHEMA => doc.targets,
        _ => {
            tracing::warn!(
                blob,
                "a run progress blob is unreadable; starting the rotation's progress afresh"
            );
            BTreeMap::new()
        }
    }
}

impl Progress for RunProgress {
    fn already_done(&self, target: &Target) -> Option<Recorded> {
        // A target whose definition now plans otherwise (pinned, say) is judged afresh.
        if target.verdict != crate::report::Verdict::Resave {
            return None;
        }
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.earlier.get(&target_key(target)).cloned()
    }

    fn record(&self, target: &Target) {
        if target.resave.status != ResaveStatus::Ok {
            return;
        }
        let batch_full = {
            let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            state.recorded.insert(
                target_key(target),
                Recorded {
                    resave: target.resave.clone(),
                    test: target.test.clone(),
                },
            );
            state.unwritten += 1;
            state.unwritten >= PROGRESS_BATCH
        };
        if batch_full {
            self.inner.wake.notify_one();
        }
    }
}

impl RunProgress {
    /// How many targets earlier deliveries recorded.
    pub fn earlier_count(&self) -> usize {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.earlier.len()
    }

    /// Stops the background writes. A run that stopped early writes what is not written yet, for the next
    /// delivery; a complete run empties the progress, so that a new round of the same rotation after the done
    /// window starts afresh. Call it when the run ends, before the claim is completed or abandoned.
    pub async fn finish(&self, run_complete: bool) -> Result<(), StorageError> {
        self.stop();
        if run_complete {
            self.inner.clear().await
        } else {
            self.inner.flush().await
        }
    }

    fn stop(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProgressInner {
    async fn flush_logged(&self) {
        if let Err(e) = self.flush().await {
            tracing::warn!(blob = %self.blob, error = %e, "could not record the run's progress; a redelivery re-saves those targets again, which is harmless");
        }
    }

    /// Empties the progress blob, if one was read or written (conditionally: a newer one is left alone).
    async fn clear(&self) -> Result<(), StorageError> {
        let _one_at_a_time = self.write.lock().await;
        let etag = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.earlier.clear();
            state.recorded.clear();
            state.unwritten = 0;
            state.etag.clone()
        };
        let Some(etag) = etag else {
            return Ok(());
        };
        let doc = ProgressDocument {
            schema: PROGRESS_SCHEMA.into(),
            targets: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| StorageError::Config(e.to_string()))?;
        match self
            .blobs
            .put_blob(
                &self.container,
                &self.blob,
                bytes,
                &Condition::Matches(etag),
                None,
            )
            .await
        {
            Ok(_) | Err(StorageError::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes earlier and new records, conditionally on the version last read or written. When another
    /// writer got in between (a claim that expired and was taken over), reads theirs, merges, and tries again.
    async fn flush(&self) -> Result<(), StorageError> {
        let _one_at_a_time = self.write.lock().await;
        for _ in 0..3 {
            let (bytes, condition, written) = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.unwritten == 0 {
                    return Ok(());
                }
                let mut targets = state.earlier.clone();
                targets.extend(state.recorded.clone());
                let doc = ProgressDocument {
                    schema: PROGRESS_SCHEMA.into(),
                    targets,
                };
                let bytes =
                    serde_json::to_vec(&doc).map_err(|e| StorageError::Config(e.to_string()))?;
                let condition = match &state.etag {
                    Some(etag) => Condition::Matches(etag.clone()),
                    None => Condition::Absent,
                };
                (bytes, condition, state.unwritten)
            };
            match self
                .blobs
                .put_blob(&self.container, &self.blob, bytes, &condition, None)
                .await
            {
                Ok(etag) => {
                    let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.etag = Some(etag);
                    state.unwritten = state.unwritten.saturating_sub(written);
                    return Ok(());
                }
                Err(StorageError::PreconditionFailed { .. }) => {
                    let current = self.blobs.get_blob(&self.container, &self.blob).await?;
                    let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    match current {
                        Some(current) => {
                            let theirs = parse_progress(&current.bytes, &self.blob);
                            state.earlier.extend(theirs);
                            state.etag = Some(current.etag);
                        }
                        None => state.etag = None,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::Config(
            "the run's progress blob kept changing under concurrent writes".into(),
        ))
    }
}

/// This instance's claim on a rotation.
#[derive(Debug)]
pub struct RotationGuard {
    lease: LeaseGuard,
    done_blob: String,
    done_etag: Option<String>,
}

impl RotationGuard {
    /// Marks the rotation done with `record` (for example the report id) and frees the claim. The marker is
    /// written conditionally (created, or replacing exactly the stale marker read at claim time), so a marker
    /// written meanwhile by another instance is kept.
    pub async fn complete(self, record: &[u8]) -> Result<(), StorageError> {
        let condition = match &self.done_etag {
            Some(etag) => Condition::Matches(etag.clone()),
            None => Condition::Absent,
        };
        let written = self
            .lease
            .blobs
            .put_blob(
                &self.lease.container,
                &self.done_blob,
                record.to_vec(),
                &condition,
                None,
            )
            .await;
        self.lease.release().await;
        match written {
            Ok(_) | Err(StorageError::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Frees the claim without marking the rotation done (the run is incomplete; a retry may try again).
    pub async fn abandon(self) {
        self.lease.release().await;
    }

    /// Whether the lease is still held (renewals succeeded).
    pub fn is_held(&self) -> bool {
        self.lease.is_held()
    }
}

/// The discoveries of a burst shared by every instance of the app: the instance that discovers a set of scopes
/// holds a lease on it and publishes what it found; the others wait briefly and reuse it while it is fresh,
/// instead of listing ARM again. What is shared only says where to look: every re-save still reads its
/// definition afresh and writes it with `If-Match`.
pub struct SharedInventories {
    coordinator: Coordinator,
    /// How long an instance waits for another's discovery before it discovers on its own.
    patience: Duration,
    /// The discoveries this instance holds the lease of, until it publishes or discards them.
    duties: Mutex<std::collections::HashMap<String, InventoryGuard>>,
}

/// A discovery as the instances share it (without the errors: only a complete discovery is published).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishedDiscovery {
    snapshots: Vec<crate::plan::FactorySnapshot>,
    factories_scanned: usize,
    linked_services_scanned: usize,
    credentials_scanned: usize,
}

impl SharedInventories {
    pub fn new(coordinator: Coordinator, patience: Duration) -> Self {
        SharedInventories {
            coordinator,
            patience,
            duties: Mutex::new(std::collections::HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl crate::observe::cache::InventoryBackend for SharedInventories {
    async fn load(
        &self,
        key: &str,
        window: Duration,
    ) -> Option<Arc<crate::observe::cache::Discovery>> {
        match self
            .coordinator
            .shared_inventory(key, window, self.patience)
            .await
        {
            Ok(Inventory::Reuse(bytes)) => {
                match serde_json::from_slice::<PublishedDiscovery>(&bytes) {
                    Ok(p) => Some(Arc::new(crate::observe::cache::Discovery {
                        snapshots: p.snapshots,
                        errors: Vec::new(),
                        factories_scanned: p.factories_scanned,
                        linked_services_scanned: p.linked_services_scanned,
                        credentials_scanned: p.credentials_scanned,
                        at: tokio::time::Instant::now(),
                    })),
                    Err(e) => {
                        tracing::warn!(error = %e, "a shared discovery does not parse: discovering again");
                        None
                    }
                }
            }
            Ok(Inventory::Discover(guard)) => {
                let previous = self
                    .duties
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.to_string(), guard);
                if let Some(previous) = previous {
                    previous.abandon().await;
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared discoveries are unavailable: discovering in this instance");
                None
            }
        }
    }

    async fn store(&self, key: &str, discovery: Arc<crate::observe::cache::Discovery>) {
        let duty = self
            .duties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let Some(duty) = duty else { return };
        let published = PublishedDiscovery {
            snapshots: discovery.snapshots.clone(),
            factories_scanned: discovery.factories_scanned,
            linked_services_scanned: discovery.linked_services_scanned,
            credentials_scanned: discovery.credentials_scanned,
        };
        match serde_json::to_vec(&published) {
            Ok(bytes) => {
                if let Err(e) = duty.publish(bytes).await {
                    tracing::warn!(error = %e, "could not publish a discovery for the other instances");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not serialise a discovery");
                duty.abandon().await;
            }
        }
    }

    async fn discard(&self, key: &str) {
        let duty = self
            .duties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(duty) = duty {
            duty.abandon().await;
        }
    }
}

/// This instance's duty to discover a subscription.
#[derive(Debug)]
pub struct InventoryGuard {
    blobs: BlobClient,
    container: String,
    blob: String,
    etag: Option<String>,
    lease: Option<LeaseGuard>,
}

impl InventoryGuard {
    /// Whether this instance holds the subscription's discovery lease (else it gave up waiting for another).
    pub fn leased(&self) -> bool {
        self.lease.is_some()
    }

    /// Publishes the inventory for the others, conditionally on the version read before listing, and frees
    /// the lease. An inventory published meanwhile by another instance is kept.
    pub async fn publish(self, bytes: Vec<u8>) -> Result<(), StorageError> {
        let condition = match &self.etag {
            Some(etag) => Condition::Matches(etag.clone()),
            None => Condition::Absent,
        };
        let written = self
            .blobs
            .put_blob(&self.container, &self.blob, bytes, &condition, None)
            .await;
        if let Some(lease) = self.lease {
            lease.release().await;
        }
        match written {
            Ok(_) | Err(StorageError::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Frees the lease without publishing (the listing failed).
    pub async fn abandon(self) {
        if let Some(lease) = self.lease {
            lease.release().await;
        }
    }
}

/// A held blob lease, renewed in the background until released or dropped.
#[derive(Debug)]
struct LeaseGuard {
    blobs: BlobClient,
    container: String,
    blob: String,
    id: String,
    held: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl LeaseGuard {
    fn start(
        blobs: BlobClient,
        container: String,
        blob: String,
        id: String,
        duration: Duration,
    ) -> Self {
        let held = Arc::new(AtomicBool::new(true));
        let renewer = {
            let (blobs, container, blob, id, held) = (
                blobs.clone(),
                container.clone(),
                blob.clone(),
                id.clone(),
                held.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(duration / 3).await;
                    if let Err(e) = blobs.renew_lease(&container, &blob, &id).await {
                        // After two more failures the lease expires; another instance may then take over,
                        // which is safe (every PUT is conditional on a fresh etag) but no longer exclusive.
                        tracing::warn!(blob = %blob, error = %e, "could not renew a coordination lease");
                        if !e.is_transient() {
                            held.store(false, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        };
        LeaseGuard {
            blobs,
            container,
            blob,
            id,
            held,
            renewer: Some(renewer),
        }
    }

    fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if let Err(e) = self
            .blobs
            .release_lease(&self.container, &self.blob, &self.id)
            .await
        {
            tracing::warn!(blob = %self.blob, error = %e, "could not release a coordination lease; it expires by itself");
        }
        self.held.store(false, Ordering::Relaxed);
    }
}

impl Drop for LeaseGuard {
    /// A guard dropped without release (a panic, an early return) stops renewing and releases in the
    /// background, so the next delivery need not wait for the lease to expire.
    fn drop(&mut self) {
        let Some(renewer) = self.renewer.take() else {
            return;
        };
        renewer.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (blobs, container, blob, id) = (
                self.blobs.clone(),
                self.container.clone(),
                self.blob.clone(),
                self.id.clone(),
            );
            runtime.spawn(async move {
                let _ = blobs.release_lease(&container, &blob, &id).await;
            });
        }
    }
}

/// The blob key of a rotation: vault (name or URL, without scheme and trailing slash), secret and version,
/// case-insensitive, hashed.
pub fn rotation_key(vault: &str, secret: &str, version: Option<&str>) -> String {
    let vault = vault.trim().to_ascii_lowercase();
    let vault = vault
        .strip_prefix("https://")
        .unwrap_or(&vault)
        .trim_end_matches('/');
    let secret = secret.trim().to_ascii_lowercase();
    let version = version
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "latest".into());
    hash(&["rotation", vault, &secret, &version])
}

/// SHA-256 of the parts, each length-prefixed so that no two different tuples collide by concatenation.
fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            kind: crate::report::TargetKind::LinkedService,
            factory:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/F"
                    .into(),
            name: name.into(),
            adf_type: "AzureSqlDatabase".into(),
            references: Vec::new(),
            verdict: crate::report::Verdict::Resave,
            reason: String::new(),
            notes: Vec::new(),
            via_credential: None,
            used_by: Vec::new(),
            integration_runtime: None,
            resave: Resave::with_status(ResaveStatus::NotReached, None),
            test: Test::not_tested("not yet"),
            diagnosis: None,
            request_ids: Vec::new(),
            impact: None,
        }
    }

    #[test]
    fn target_keys_ignore_case_and_hold_no_names() {
        let a = target("SalesSql");
        let mut b = target("salessql");
        b.factory = b.factory.to_ascii_uppercase();
        assert_eq!(target_key(&a), target_key(&b));
        assert_ne!(target_key(&a), target_key(&target("SalesSql2")));
        let mut credential = target("SalesSql");
        credential.kind = crate::report::TargetKind::Credential;
        assert_ne!(target_key(&a), target_key(&credential));
        assert!(!target_key(&a).to_ascii_lowercase().contains("sales"));
    }

    #[test]
    fn a_carried_over_target_keeps_the_recorded_outcome_and_says_so() {
        let mut resave = Resave::with_status(ResaveStatus::Ok, None);
        resave.etag_after = Some("etag-2".into());
        let recorded = Recorded {
            resave: resave.clone(),
            test: Test::not_tested(
                "a credential is tested through the linked services that use it",
            ),
        };
        let mut t = target("SalesSql");
        recorded.clone().carry_into(&mut t);
        recorded.carry_into(&mut t);
        assert_eq!(t.resave, resave);
        assert_eq!(t.notes, vec![Note::CarriedOver], "noted once");
    }

    #[test]
    fn an_unreadable_progress_blob_counts_as_empty() {
        assert!(parse_progress(b"not json", "b").is_empty());
        assert!(parse_progress(br#"{"schema":"other","targets":{}}"#, "b").is_empty());
        let doc = ProgressDocument {
            schema: PROGRESS_SCHEMA.into(),
            targets: BTreeMap::from([(
                "k".to_string(),
                Recorded {
                    resave: Resave::with_status(ResaveStatus::Ok, None),
                    test: Test::not_tested("x"),
                },
            )]),
        };
        let bytes = serde_json::to_vec(&doc).expect("serialises");
        assert_eq!(parse_progress(&bytes, "b").len(), 1);
    }

    #[test]
    fn rotation_keys_normalise_and_do_not_collide() {
        let a = rotation_key(
            "https://Contoso-KV.vault.azure.net/",
            "SQL-password",
            Some("ABC"),
        );
        assert_eq!(
            a,
            rotation_key("contoso-kv.vault.azure.net", "sql-password", Some("abc"))
        );
        assert_ne!(
            a,
            rotation_key("contoso-kv.vault.azure.cn", "sql-password", Some("abc"))
        );
        assert_ne!(
            a,
            rotation_key("contoso-kv.vault.azure.net", "sql-password", None)
        );
        assert_eq!(
            rotation_key("kv", "s", None),
            rotation_key("kv", "s", Some(" "))
        );
        // Length-prefixing: ("ab","c") and ("a","bc") differ.
        assert_ne!(rotation_key("ab", "c", None), rotation_key("a", "bc", None));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
