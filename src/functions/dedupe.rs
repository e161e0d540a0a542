//! Duplicate deliveries: Event Grid and queues deliver at least once.
//!
//! A (vault, secret, version) that completed a refresh within the window is not refreshed again; a second
//! delivery that arrives while the first is running waits for it and then sees it done. This holds within one
//! instance and costs nothing; across instances the same is done through the app's storage account
//! ([`crate::coordination`]), after this check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

pub struct Dedupe {
    window: Duration,
    done: Mutex<HashMap<String, (Instant, String)>>,
    running: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Held while a job runs; the next delivery of the same key waits for it.
pub struct Running {
    _guard: OwnedMutexGuard<()>,
}

impl Dedupe {
    pub fn new(window: Duration) -> Self {
        Dedupe {
            window,
            done: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for any run of the same key, then returns the id of the report that already covers it, if any.
    pub async fn begin(&self, key: &str) -> (Running, Option<String>) {
        let lock = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        let previous = {
            let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            done.retain(|_, (at, _)| at.elapsed() < self.window);
            done.get(key).map(|(_, id)| id.clone())
        };
        (Running { _guard: guard }, previous)
    }

    /// Records a completed run.
    pub fn complete(&self, key: &str, report_id: &str) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        done.insert(key.to_string(), (Instant::now(), report_id.to_string()));
    }
}
