//! One discovery for a burst of rotations: single-flight per scope, with a short freshness window.
//!
//! A vault that rotates fifty secrets in ten seconds sends fifty events over the same estate. Each rotation
//! needs the same listing (every factory's linked services and credentials), so the first one in a window
//! discovers and every other one, arriving while that discovery runs or shortly after, plans on its result.
//! Nothing stale is ever written: a re-save reads the definition afresh (GET) right before its PUT and sends
//! it with `If-Match`, whatever the listing said.
//!
//! What is shared holds every definition with a Key Vault reference ([`Keep::KeyVault`]), so that rotations of
//! different secrets share it. A discovery that reported errors is handed to the runs waiting for it (each
//! reports those errors) but not kept: the next rotation reads again. The cache sits behind
//! [`InventoryBackend`], so a store shared by several instances can take the place of process memory.

use super::{Clients, Keep, Scanned};
use crate::config::Scope;
use crate::model::{Platforms, Snapshot};
use crate::report::{Command, Report, RunError, Trigger};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// A completed discovery, as runs share it.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Every holder read, of every platform scanned.
    pub snapshots: Vec<Snapshot>,
    pub errors: Vec<RunError>,
    /// How much was listed.
    pub scanned: Scanned,
    /// When it completed.
    pub at: Instant,
}

impl Discovery {
    /// Whether a run may still plan on it.
    pub fn fresh(&self, window: Duration) -> bool {
        self.errors.is_empty() && self.at.elapsed() < window
    }

    /// Copies what discovery found and could not read into a run's report.
    pub fn report_into(&self, report: &mut Report) {
        self.scanned.add_to(&mut report.summary);
        report.errors.extend(self.errors.iter().cloned());
    }
}

/// Where completed discoveries are kept between runs. The in-process backend is [`MemoryBackend`]; a backend
/// over shared storage lets several instances share one discovery.
#[async_trait::async_trait]
pub trait InventoryBackend: Send + Sync {
    /// A discovery of `key` still fresh within `window`, if one is kept.
    async fn load(&self, key: &str, window: Duration) -> Option<Arc<Discovery>>;
    /// Keeps a complete discovery of `key`.
    async fn store(&self, key: &str, discovery: Arc<Discovery>);
    /// The discovery of `key` this process started could not be completed: nothing is kept.
    async fn discard(&self, _key: &str) {}
}

/// Keeps the latest discovery of each scope in process memory, dropping stale ones as others are stored.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    kept: Mutex<HashMap<String, Arc<Discovery>>>,
}

#[async_trait::async_trait]
impl InventoryBackend for MemoryBackend {
    async fn load(&self, key: &str, window: Duration) -> Option<Arc<Discovery>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(key).filter(|d| d.fresh(window)).cloned()
    }

    async fn store(&self, key: &str, discovery: Arc<Discovery>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing older than a window is of use to anybody.
        kept.retain(|_, d| d.at.elapsed() < Duration::from_secs(600));
        kept.insert(key.to_string(), discovery);
    }
}

/// Shares discoveries between the runs of one process: one in flight per scope, reused within `window`.
pub struct DiscoveryCache {
    window: Duration,
    backend: Arc<dyn InventoryBackend>,
    in_flight: Mutex<HashMap<String, Arc<OnceCell<Arc<Discovery>>>>>,
}

impl std::fmt::Debug for DiscoveryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryCache")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl DiscoveryCache {
    /// A cache in process memory.
    pub fn new(window: Duration) -> Self {
        Self::with_backend(window, Arc::new(MemoryBackend::default()))
    }

    pub fn with_backend(window: Duration, backend: Arc<dyn InventoryBackend>) -> Self {
        DiscoveryCache {
            window,
            backend,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The freshness window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A discovery of `scopes` on `platforms`: a fresh one if there is one, the one in flight if another run
    /// started it, or a new one made with `clients` (whose deadline bounds it).
    pub async fn discover(
        &self,
        clients: &Clients,
        scopes: &[Scope],
        platforms: &Platforms,
        concurrency: usize,
    ) -> Arc<Discovery> {
        let key = discovery_key(scopes, platforms);
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let stale = in_flight
                .get(&key)
                .is_some_and(|cell| cell.get().is_some_and(|d| !d.fresh(self.window)));
            if stale {
                in_flight.remove(&key);
            }
            in_flight
                .entry(key.clone())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let discovery = cell
            .get_or_init(|| async {
                // Kept by this process, or published by another instance: one caller per process asks.
                if let Some(kept) = self.backend.load(&key, self.window).await {
                    return kept;
                }
                let mut report = Report::start(
                    String::new(),
                    Command::Plan,
                    true,
                    Trigger::default(),
                    scopes,
                );
                let mut snapshots = Vec::new();
                let scanned = super::discover_each(
                    clients,
                    scopes,
                    platforms,
                    concurrency,
                    &Keep::KeyVault,
                    &mut report,
                    &mut |_| {},
                    &mut |s| snapshots.push(s),
                )
                .await;
                snapshots.sort_by_key(|s| s.id.to_lowercase());
                let discovery = Arc::new(Discovery {
                    snapshots,
                    errors: report.errors,
                    scanned,
                    at: Instant::now(),
                });
                if discovery.errors.is_empty() {
                    self.backend.store(&key, discovery.clone()).await;
                } else {
                    self.backend.discard(&key).await;
                }
                discovery
            })
            .await
            .clone();
        // A discovery with errors served the runs that waited for it; the next run reads again.
        if !discovery.fresh(self.window) {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight
                .get(&key)
                .is_some_and(|c| c.get().is_some_and(|d| Arc::ptr_eq(d, &discovery)))
            {
                in_flight.remove(&key);
            }
        }
        discovery
    }
}

/// The cache key of a discovery: its scopes and, when narrowed, its platforms.
pub fn discovery_key(scopes: &[Scope], platforms: &Platforms) -> String {
    let key = scope_key(scopes);
    if *platforms == Platforms::default() {
        key
    } else {
        let names: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        format!("{key};{}", names.join(","))
    }
}

/// The cache key of a set of scopes: the same scopes in any order or case are the same key.
pub fn scope_key(scopes: &[Scope]) -> String {
    let mut ids: Vec<String> = scopes.iter().map(|s| s.id().to_ascii_lowercase()).collect();
    ids.sort();
    ids.dedup();
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(errors: usize, at: Instant) -> Discovery {
        Discovery {
            snapshots: Vec::new(),
            errors: (0..errors)
                .map(|_| RunError {
                    stage: "discovery".into(),
                    message: "x".into(),
                    transient: true,
                    subject: None,
                })
                .collect(),
            scanned: Scanned::default(),
            at,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_discovery_is_fresh_within_the_window_and_only_without_errors() {
        let window = Duration::from_secs(30);
        assert!(discovery(0, Instant::now()).fresh(window));
        assert!(!discovery(1, Instant::now()).fresh(window));
        let old = discovery(0, Instant::now());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!old.fresh(window));
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_backend_returns_only_fresh_discoveries() {
        let backend = MemoryBackend::default();
        let window = Duration::from_secs(30);
        backend
            .store("a", Arc::new(discovery(0, Instant::now())))
            .await;
        assert!(backend.load("a", window).await.is_some());
        assert!(backend.load("b", window).await.is_none());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(backend.load("a", window).await.is_none());
    }

    #[test]
    fn scopes_in_any_order_or_case_share_a_key() {
        let a = Scope::parse("/subscriptions/AAA").expect("scope");
        let b = Scope::parse("/subscriptions/bbb/resourceGroups/rg").expect("scope");
        let b2 = Scope::parse("/subscriptions/BBB/resourceGroups/RG").expect("scope");
        assert_eq!(
            scope_key(&[a.clone(), b]),
            scope_key(&[b2, a.clone(), a.clone()])
        );
    }
}
