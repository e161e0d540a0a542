//! Cooperation between instances of the function app through its storage account.
//!
//! On Flex Consumption the app runs on several instances, and a queue or Event Grid may deliver the same
//! rotation to two of them. They cooperate through blobs in one container of the app's storage account (the
//! CLI does not use this: it runs alone and has no storage account):
//!
//! - **One round of PUTs per rotation.** [`Coordinator::claim_rotation`] takes a blob lease named after the
//!   (vault, secret, version). The holder runs the refresh and, when it completes, writes a done marker with a
//!   conditional write ([`RotationGuard::complete`]). A duplicate delivery on another instance sees the lease
//!   ([`Claim::HeldByOther`]) or the marker ([`Claim::AlreadyDone`]) and does not re-save anything.
//! - **One discovery per burst.** [`Coordinator::shared_discovery`] lets one instance list a set of scopes
//!   under a lease and publish what it found in a blob; the others wait briefly and
//!   reuse that discovery while it is fresh instead of listing ARM again. It only says *where to
//!   look*: every PUT is still preceded by a fresh GET of the resource, by the caller.
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
//!
//! `claims` holds the rotation claims and their progress, `discovery` the shared discoveries; both stand on
//! the blob leases of `lease`.

mod claims;
mod discovery;
mod lease;

pub use claims::{
    Claim, Done, PROGRESS_SCHEMA, Progress, Recorded, RotationGuard, RunProgress, rotation_key,
    target_key,
};
pub use discovery::{DiscoveryGuard, SharedDiscoveries, SharedDiscovery};

use crate::azure::storage::{BlobClient, Condition, StorageError};
use lease::LeaseGuard;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The container the product keeps its coordination blobs in.
pub const CONTAINER: &str = "adf-refresh-coordination";
/// How long a lease lasts without renewal: an instance that dies frees its claims within this time.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long a completed rotation counts as done: a redelivery within it does nothing (as within one instance).
pub const DEFAULT_DONE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often a waiting instance looks again.
const POLL: Duration = Duration::from_millis(500);

/// Coordinates this instance with the others through one storage account.
#[derive(Clone, Debug)]
pub struct Coordinator {
    blobs: BlobClient,
    container: String,
    lease: Duration,
    done_window: Duration,
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

/// SHA-256 of the parts, each length-prefixed so that no two different tuples collide by concatenation.
fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}
