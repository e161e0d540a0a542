//! Shared discovery: one instance lists a set of scopes under a lease and publishes what it found; the app's
//! other instances reuse it while it is fresh instead of listing ARM again.

use super::lease::LeaseGuard;
use super::{Coordinator, POLL, hash};
use crate::azure::storage::{BlobClient, Condition, StorageError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The answer to "must this instance list this subscription?".
#[derive(Debug)]
// Made once per subscription and consumed at once: boxing the guard would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SharedDiscovery {
    /// A fresh discovery published by an instance that listed it.
    Reuse(Vec<u8>),
    /// List it, then [`DiscoveryGuard::publish`] the result for the others.
    Discover(DiscoveryGuard),
}

impl Coordinator {
    /// One discovery per key (a set of scopes): reuse a discovery younger than `freshness`, else list it under a
    /// lease; while another instance holds that lease, wait up to `patience` for its discovery, then list anyway
    /// (without publishing over a newer one).
    pub async fn shared_discovery(
        &self,
        subscription: &str,
        freshness: Duration,
        patience: Duration,
    ) -> Result<SharedDiscovery, StorageError> {
        // The blob names predate the word "discovery"; they stay, so that running instances keep agreeing.
        let key = hash(&["inventory", &subscription.trim().to_ascii_lowercase()]);
        let blob = format!("inventories/{key}.json");
        let lock_blob = format!("inventories/{key}.lock");
        let until = tokio::time::Instant::now() + patience;
        loop {
            let current = self.blobs.get_blob(&self.container, &blob).await?;
            if let Some(current) = &current
                && current.age.is_some_and(|age| age <= freshness)
            {
                return Ok(SharedDiscovery::Reuse(current.bytes.clone()));
            }
            if let Some(lease) = self.try_lease(&lock_blob).await? {
                // Someone may have published between our read and our lease.
                let current = self.blobs.get_blob(&self.container, &blob).await?;
                if let Some(current) = &current
                    && current.age.is_some_and(|age| age <= freshness)
                {
                    lease.release().await;
                    return Ok(SharedDiscovery::Reuse(current.bytes.clone()));
                }
                return Ok(SharedDiscovery::Discover(DiscoveryGuard {
                    blobs: self.blobs.clone(),
                    container: self.container.clone(),
                    blob,
                    etag: current.map(|c| c.etag),
                    lease: Some(lease),
                }));
            }
            if tokio::time::Instant::now() + POLL >= until {
                return Ok(SharedDiscovery::Discover(DiscoveryGuard {
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
}

/// The discoveries of a burst shared by every instance of the app: the instance that discovers a set of scopes
/// holds a lease on it and publishes what it found; the others wait briefly and reuse it while it is fresh,
/// instead of listing ARM again. What is shared only says where to look: every re-save still reads its
/// definition afresh and writes it with `If-Match`.
pub struct SharedDiscoveries {
    coordinator: Coordinator,
    /// How long an instance waits for another's discovery before it discovers on its own.
    patience: Duration,
    /// The discoveries this instance holds the lease of, until it publishes or discards them.
    duties: Mutex<std::collections::HashMap<String, DiscoveryGuard>>,
}

/// A discovery as the instances share it (without the errors: only a complete discovery is published).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishedDiscovery {
    snapshots: Vec<crate::model::Snapshot>,
    #[serde(default)]
    scanned: crate::observe::Scanned,
}

impl SharedDiscoveries {
    pub fn new(coordinator: Coordinator, patience: Duration) -> Self {
        SharedDiscoveries {
            coordinator,
            patience,
            duties: Mutex::new(std::collections::HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl crate::observe::cache::InventoryBackend for SharedDiscoveries {
    async fn load(
        &self,
        key: &str,
        window: Duration,
    ) -> Option<Arc<crate::observe::cache::Discovery>> {
        match self
            .coordinator
            .shared_discovery(key, window, self.patience)
            .await
        {
            Ok(SharedDiscovery::Reuse(bytes)) => {
                match serde_json::from_slice::<PublishedDiscovery>(&bytes) {
                    Ok(p) => Some(Arc::new(crate::observe::cache::Discovery {
                        snapshots: p.snapshots,
                        errors: Vec::new(),
                        scanned: p.scanned,
                        at: tokio::time::Instant::now(),
                    })),
                    Err(e) => {
                        tracing::warn!(error = %e, "a shared discovery does not parse: discovering again");
                        None
                    }
                }
            }
            Ok(SharedDiscovery::Discover(guard)) => {
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
            scanned: discovery.scanned,
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
pub struct DiscoveryGuard {
    blobs: BlobClient,
    container: String,
    blob: String,
    etag: Option<String>,
    lease: Option<LeaseGuard>,
}

impl DiscoveryGuard {
    /// Whether this instance holds the subscription's discovery lease (else it gave up waiting for another).
    pub fn leased(&self) -> bool {
        self.lease.is_some()
    }

    /// Publishes the discovery for the others, conditionally on the version read before listing, and frees
    /// the lease. A discovery published meanwhile by another instance is kept.
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
