//! Blob leases renewed in the background: what makes a claim or a discovery duty exclusive, and what frees it
//! when an instance dies.

use crate::azure::storage::BlobClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A held blob lease, renewed in the background until released or dropped.
#[derive(Debug)]
pub(super) struct LeaseGuard {
    pub(super) blobs: BlobClient,
    pub(super) container: String,
    blob: String,
    id: String,
    held: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl LeaseGuard {
    pub(super) fn start(
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

    pub(super) fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    pub(super) async fn release(mut self) {
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
