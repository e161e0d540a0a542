//! Rotation claims with their progress: one round of PUTs per (vault, secret, version) across the app's
//! instances, and the targets an earlier delivery finished, so that a redelivery resumes instead of starting again.

use super::lease::LeaseGuard;
use super::{Coordinator, POLL, hash};
use crate::azure::storage::{BlobClient, Condition, StorageError};
use crate::report::{Note, Resave, ResaveStatus, Target, Test};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A run's progress is written after this many newly finished targets…
const PROGRESS_BATCH: usize = 10;
/// …or this long after the first unwritten one, whichever comes first, and once more at the end.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The schema of a progress blob.
pub const PROGRESS_SCHEMA: &str = "adf-secret-refresh/progress/v1";

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

impl Coordinator {
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
        &target.holder().to_ascii_lowercase(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            platform: crate::model::Platform::DataFactory,
            resource: String::new(),
            display_name: None,
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
