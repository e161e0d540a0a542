//! The re-save of a definition (a linked service or credential of a factory or Synapse workspace), written once
//! over [`Store`]: GET it fresh, re-plan it on what was read (it must still be safe), PUT exactly the properties
//! just read with `If-Match: <etag>`, and on 412 read again and write *their* version.

use crate::azure::error::AzureError;
use crate::model::Snapshot;
use crate::plan::{self, SecretRef};
use crate::report::{Note, Resave, ResaveStatus, Target, TargetKind, Test, Verdict};
use serde_json::Value;

/// How many times a 412 is answered by reading again and re-applying.
pub const MAX_PRECONDITION_RETRIES: u32 = 3;

/// One read or write of a target's definition, as a re-save needs it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The resource as the service returned it.
    pub body: Value,
    pub etag: Option<String>,
    /// The request ids of every call that made this answer (a long-running write has several).
    pub request_ids: Vec<String>,
}

/// Where a target's definition is read and written: ARM for a factory, the development endpoint for a
/// Synapse workspace. The re-save rules (fresh read, re-plan, exact properties, `If-Match`, 412 loop) are
/// written once, over this.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// GETs the linked service or credential.
    async fn read(&self, kind: TargetKind, name: &str) -> Result<Stored, AzureError>;
    /// PUTs `{"properties": …}` conditionally on `etag`; the answer is the resource as saved.
    async fn write(
        &self,
        kind: TargetKind,
        name: &str,
        properties: &Value,
        etag: &str,
    ) -> Result<Stored, AzureError>;
}

/// What the re-save step left for the test.
pub enum Written {
    /// The resource to test: as saved, or as freshly read when the re-save was skipped.
    Resource(Value),
    /// No re-save was due (another verdict, a dry run, an unusable secret version).
    NotAttempted,
    /// The re-save failed for good; the target says why and is not tested.
    Failed,
}

/// Re-saves the target when its verdict and the mode allow, and records the outcome on it. A transient
/// failure is recorded and returned, so the caller stops the factory or workspace there.
pub async fn resave_if_safe<S: Store + ?Sized>(
    store: &S,
    factory: &Snapshot,
    target: &mut Target,
    secret: &SecretRef,
    mode: &super::Mode,
) -> Result<Written, AzureError> {
    if !super::may_refresh(target, mode) {
        return Ok(Written::NotAttempted);
    }
    match resave(store, factory, target, secret).await {
        Ok(resource) => Ok(Written::Resource(resource)),
        Err(e) => {
            target.resave.status = ResaveStatus::Failed;
            target.resave.error = Some(e.to_string());
            target
                .request_ids
                .extend(e.request_id().map(str::to_string));
            target.test = Test::not_tested("not tested: the re-save failed");
            if e.is_transient() {
                Err(e)
            } else {
                Ok(Written::Failed)
            }
        }
    }
}

/// GET fresh, check it is still safe, PUT exactly its properties with `If-Match`; on 412, again.
async fn resave<S: Store + ?Sized>(
    store: &S,
    factory: &Snapshot,
    target: &mut Target,
    secret: &SecretRef,
) -> Result<Value, AzureError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        target.resave.attempts = attempts;
        let fresh = store.read(target.kind, &target.name).await?;
        target.request_ids.extend(fresh.request_ids.iter().cloned());
        let Some(etag) = fresh.etag.clone() else {
            target.resave = Resave::with_status(
                ResaveStatus::Skipped,
                Some("the service returned no etag, so a conditional write is impossible".into()),
            );
            return Ok(fresh.body);
        };
        if let Err(why) = still_safe(factory, target, &fresh.body, secret) {
            target.resave = Resave::with_status(ResaveStatus::Skipped, Some(why));
            target.notes.push(Note::ChangedSinceDiscovery);
            return Ok(fresh.body);
        }
        let properties = fresh.body.get("properties").cloned().unwrap_or(Value::Null);
        target.resave.etag_before = Some(etag.clone());
        match store
            .write(target.kind, &target.name, &properties, &etag)
            .await
        {
            Ok(saved) => {
                target.request_ids.extend(saved.request_ids.iter().cloned());
                target.resave.status = ResaveStatus::Ok;
                target.resave.etag_after = saved.etag;
                target.resave.error = None;
                tracing::info!(factory = %factory.id, name = %target.name, kind = ?target.kind, "re-saved");
                return Ok(saved.body);
            }
            Err(e @ AzureError::PreconditionFailed { .. })
                if attempts <= MAX_PRECONDITION_RETRIES =>
            {
                // Someone changed it between our GET and PUT: read again and write their version.
                target
                    .request_ids
                    .extend(e.request_id().map(str::to_string));
                tracing::info!(factory = %factory.id, name = %target.name, attempts, "etag changed; reading again");
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Re-plans the target on the fresh definition: it must still be a plain, certain, inline-free reference.
fn still_safe(
    factory: &Snapshot,
    target: &Target,
    fresh: &Value,
    secret: &SecretRef,
) -> Result<(), String> {
    match plan::plan_one(factory, target.kind, fresh, secret) {
        Some(t) if t.verdict == Verdict::Resave => Ok(()),
        Some(t) => Err(format!(
            "it changed since discovery and is now {:?}: {}",
            t.verdict, t.reason
        )),
        None => Err("it changed since discovery and no longer references the secret".into()),
    }
}
