//! Fault injection: latency, injected 5xx, dropped connections, 429 bursts, ARM's per-subscription token
//! buckets, token-endpoint outages and concurrent edits. Random choices come from one seeded RNG so a
//! run with the same seed and the same request order behaves the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::lock;

/// The faults to inject. Deserialized from the control API (`PUT /_emulator/faults`) in camelCase.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Added to every ARM and Key Vault request.
    pub latency_ms: u64,
    /// Up to this much more, uniformly at random.
    pub jitter_ms: u64,
    /// Fraction of ARM and Key Vault requests answered 500 or 503 (503 with `Retry-After: 1`).
    pub error_rate: f64,
    /// Fraction of ARM requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// After every `every` ARM requests, the next `length` get 429 with `Retry-After`.
    pub burst429: Option<Burst429>,
    /// Enforce ARM's per-subscription token buckets (reads 250 refilling 25/s, writes 200 refilling 10/s).
    pub token_buckets: bool,
    /// From the moment these faults are set, the token endpoints answer 503 for this many milliseconds.
    pub token_outage_ms: u64,
    /// Edits made by "someone else" right after the product's next GET of a linked service.
    pub concurrent_edits: Vec<ConcurrentEdit>,
    /// Seed of the RNG behind every random choice.
    pub seed: u64,
    /// Broken answers to ARM listing pages (a `GET` of a collection such as `linkedservices`).
    pub page_faults: Vec<PageFault>,
    /// An ARM outage that starts mid-run: after this many ARM `PUT`s (counted from the moment these faults
    /// are set), every further ARM `PUT` answers 503 with `Retry-After: 1` until the faults change.
    pub write_outage_after: Option<u64>,
    /// Broken answers to Key Vault listings of secret versions (`GET /kv/{vault}/secrets/{name}/versions`).
    pub kv_page_faults: Vec<KvPageFault>,
    /// The next `times` Synapse development-endpoint PUTs are answered 429 with `Retry-After`.
    pub synapse429: Option<Synapse429>,
    /// The App Service refresh POST re-resolves app-setting references only, not connection strings.
    pub refresh_skips_connection_strings: bool,
    /// Polling an API Management `refreshSecret` operation answers 202 forever.
    pub apim_refresh_never_ends: bool,
    /// An API Management `refreshSecret` operation ends failed.
    pub apim_refresh_fails: bool,
}

/// Answers the next `times` Synapse development-endpoint PUTs (linked services, credentials) with 429 and
/// `Retry-After: retry_after_secs`; later PUTs are accepted as usual.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Synapse429 {
    pub times: u64,
    pub retry_after_secs: u64,
}

/// One way a Key Vault versions page can be broken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KvPageFaultKind {
    /// A 200 whose body is `{"error":{"code":"Forbidden","message":…}}` instead of a page.
    #[default]
    ErrorObject,
    /// The page's `nextLink` points at the emulator's trap listener: same host, another port.
    ForeignPortNextLink,
    /// Status and the full `Content-Length` arrive; the connection is cut halfway through the body.
    TruncatedBody,
    /// A 200 whose body is an HTML page, not JSON.
    NotJson,
}

/// Breaks the next `times` answers (0: every answer) to page `page` (0 = the first) of any Key Vault
/// versions listing.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KvPageFault {
    pub kind: KvPageFaultKind,
    pub page: u64,
    pub times: u64,
}

/// One way a 2xx listing page can be broken on the wire. Real networks do all of these: a connection reset
/// after the headers, a proxy's HTML error page with status 200, an empty object from a misbehaving gateway,
/// and a `nextLink` that leaves the endpoint (DESIGN.md, "Names and clouds": follow it only to the
/// configured endpoint's origin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PageFaultKind {
    /// Status and headers (with the full `Content-Length`) arrive; the connection is cut halfway through the body.
    #[default]
    TruncatedBody,
    /// A 200 whose body is an HTML page, not JSON.
    NotJson,
    /// A 200 with `{}`: neither `value` nor `nextLink`.
    NeitherValueNorNextLink,
    /// The page's `nextLink` points at another host.
    ForeignNextLink,
    /// One item of the page's `value` is replaced by `null`.
    NullItem,
    /// One item of the page's `value` is replaced by a number.
    NonObjectItem,
    /// The page's `nextLink` points back at the first page of the same listing (a listing that loops).
    LoopingNextLink,
}

/// Breaks the next `times` answers to `GET …/{collection}` (0: every answer, for good).
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageFault {
    /// The last path segment of the listing, e.g. `linkedservices`, `credentials` or `factories` (any case):
    /// ARM listings and Synapse development-endpoint listings alike.
    pub collection: String,
    pub kind: PageFaultKind,
    pub times: u64,
}

/// A periodic burst of 429 answers.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Burst429 {
    pub every: u64,
    pub length: u64,
    pub retry_after_secs: u64,
}

/// Right after the next GET of this linked service is answered, its `properties.description` becomes
/// `description` and its etag changes, so a PUT with the etag just read fails with 412.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConcurrentEdit {
    /// The factory's resource id, `/subscriptions/…/resourceGroups/…/providers/Microsoft.DataFactory/factories/…`,
    /// or a Synapse workspace's (`…/providers/Microsoft.Synapse/workspaces/…`).
    pub factory_id: String,
    pub name: String,
    pub description: String,
}

/// The two ARM buckets of one subscription (or of the tenant, for requests without a subscription).
#[derive(Clone, Copy, Debug)]
struct Buckets {
    reads: f64,
    writes: f64,
    at: Instant,
}

const READ_CAPACITY: f64 = 250.0;
const READ_REFILL_PER_SEC: f64 = 25.0;
const WRITE_CAPACITY: f64 = 200.0;
const WRITE_REFILL_PER_SEC: f64 = 10.0;

impl Buckets {
    fn full(now: Instant) -> Self {
        Self {
            reads: READ_CAPACITY,
            writes: WRITE_CAPACITY,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.reads = (self.reads + secs * READ_REFILL_PER_SEC).min(READ_CAPACITY);
        self.writes = (self.writes + secs * WRITE_REFILL_PER_SEC).min(WRITE_CAPACITY);
        self.at = now;
    }
}

struct Inner {
    faults: Faults,
    rng: fastrand::Rng,
    set_at: Instant,
    arm_requests: u64,
    arm_puts: u64,
    synapse_puts_throttled: u64,
    buckets: HashMap<String, Buckets>,
}

impl Inner {
    /// The scope's buckets (full the first time one is seen), refilled up to now.
    fn refilled_buckets(&mut self, scope: &str) -> &mut Buckets {
        let now = Instant::now();
        let buckets = self
            .buckets
            .entry(scope.to_ascii_lowercase())
            .or_insert_with(|| Buckets::full(now));
        buckets.refill(now);
        buckets
    }
}

/// The live fault configuration plus the state it needs (RNG, burst counter, buckets).
pub(crate) struct FaultState {
    inner: Mutex<Inner>,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rng: fastrand::Rng::with_seed(faults.seed),
                faults,
                set_at: Instant::now(),
                arm_requests: 0,
                arm_puts: 0,
                synapse_puts_throttled: 0,
                buckets: HashMap::new(),
            }),
        }
    }

    /// Replaces the faults. The bucket levels carry over: they model ARM, not the configuration.
    pub(crate) fn set(&self, faults: Faults) {
        let mut inner = lock(&self.inner);
        inner.rng = fastrand::Rng::with_seed(faults.seed);
        inner.faults = faults;
        inner.set_at = Instant::now();
        inner.arm_requests = 0;
        inner.arm_puts = 0;
        inner.synapse_puts_throttled = 0;
    }

    /// Counts one Synapse development-endpoint PUT; `Some(retry_after_secs)` when `synapse429` refuses it.
    pub(crate) fn take_synapse429(&self) -> Option<u64> {
        let mut inner = lock(&self.inner);
        let fault = inner.faults.synapse429.clone()?;
        if inner.synapse_puts_throttled >= fault.times {
            return None;
        }
        inner.synapse_puts_throttled += 1;
        Some(fault.retry_after_secs)
    }

    /// The Key Vault page fault for page `page` of a versions listing, if one is due; counts it.
    pub(crate) fn take_kv_page_fault(&self, page: u64) -> Option<KvPageFaultKind> {
        let mut inner = lock(&self.inner);
        take_scripted(
            &mut inner.faults.kv_page_faults,
            |f| f.page == page,
            |f| &mut f.times,
        )
        .map(|f| f.kind)
    }

    /// Counts one ARM `PUT`; whether it falls in the write outage (`writeOutageAfter`).
    pub(crate) fn take_write_outage(&self) -> bool {
        let mut inner = lock(&self.inner);
        inner.arm_puts += 1;
        inner
            .faults
            .write_outage_after
            .is_some_and(|after| inner.arm_puts > after)
    }

    pub(crate) fn current(&self) -> Faults {
        lock(&self.inner).faults.clone()
    }

    /// The delay to add to this request, if any.
    pub(crate) fn latency(&self) -> Option<Duration> {
        let mut inner = lock(&self.inner);
        let Faults {
            latency_ms,
            jitter_ms,
            ..
        } = inner.faults;
        let jitter = if jitter_ms > 0 {
            inner.rng.u64(0..=jitter_ms)
        } else {
            0
        };
        let total = latency_ms.saturating_add(jitter);
        (total > 0).then(|| Duration::from_millis(total))
    }

    /// The page fault for this answer to a `GET` of `collection`, if one is due; counts it.
    pub(crate) fn take_page_fault(&self, collection: &str) -> Option<PageFaultKind> {
        let mut inner = lock(&self.inner);
        take_scripted(
            &mut inner.faults.page_faults,
            |f| f.collection.eq_ignore_ascii_case(collection),
            |f| &mut f.times,
        )
        .map(|f| f.kind)
    }

    /// Whether to close this ARM request's connection without answering.
    pub(crate) fn roll_drop(&self) -> bool {
        let mut inner = lock(&self.inner);
        let rate = inner.faults.drop_rate;
        rate > 0.0 && inner.rng.f64() < rate
    }

    /// The status of an injected error for this request (500 or 503), if any.
    pub(crate) fn roll_error(&self) -> Option<u16> {
        let mut inner = lock(&self.inner);
        let rate = inner.faults.error_rate;
        if rate > 0.0 && inner.rng.f64() < rate {
            Some(if inner.rng.bool() { 500 } else { 503 })
        } else {
            None
        }
    }

    /// Counts one ARM request against the burst pattern; `Some(retry_after_secs)` when it falls in a burst.
    pub(crate) fn burst(&self) -> Option<u64> {
        let mut inner = lock(&self.inner);
        let burst = inner.faults.burst429.clone()?;
        if burst.length == 0 {
            return None;
        }
        let position = inner.arm_requests % (burst.every + burst.length);
        inner.arm_requests += 1;
        (position >= burst.every).then_some(burst.retry_after_secs)
    }

    /// Takes one token from the subscription's read or write bucket. When enforcement is on and the bucket
    /// is empty, returns `Err(retry_after_secs)` and takes nothing.
    pub(crate) fn take_token(&self, scope: &str, write: bool) -> Result<(), u64> {
        let mut inner = lock(&self.inner);
        let enforce = inner.faults.token_buckets;
        let buckets = inner.refilled_buckets(scope);
        let (level, rate) = if write {
            (&mut buckets.writes, WRITE_REFILL_PER_SEC)
        } else {
            (&mut buckets.reads, READ_REFILL_PER_SEC)
        };
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else if enforce {
            let wait = ((1.0 - *level) / rate).ceil().max(1.0);
            // The value is between 1 and a few seconds, so the cast cannot truncate meaningfully.
            Err(wait as u64)
        } else {
            *level = 0.0;
            Ok(())
        }
    }

    /// What the model says is left in the subscription's read or write bucket.
    pub(crate) fn remaining(&self, scope: &str, write: bool) -> u64 {
        let mut inner = lock(&self.inner);
        let buckets = inner.refilled_buckets(scope);
        let level = if write { buckets.writes } else { buckets.reads };
        // Levels are clamped to [0, capacity], so the cast is exact after floor().
        level.floor() as u64
    }

    /// Whether the token endpoints are in an outage window.
    pub(crate) fn token_outage(&self) -> bool {
        let inner = lock(&self.inner);
        let window = Duration::from_millis(inner.faults.token_outage_ms);
        !window.is_zero() && inner.set_at.elapsed() < window
    }

    /// Removes and returns the concurrent edits pending for this linked service.
    pub(crate) fn take_concurrent_edits(&self, factory_id: &str, name: &str) -> Vec<String> {
        let mut inner = lock(&self.inner);
        let factory_id = factory_id.trim_end_matches('/');
        let (hits, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.faults.concurrent_edits)
            .into_iter()
            .partition(|edit| {
                edit.factory_id
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(factory_id)
                    && edit.name.eq_ignore_ascii_case(name)
            });
        inner.faults.concurrent_edits = rest;
        hits.into_iter().map(|edit| edit.description).collect()
    }
}

/// Breaks a 2xx listing page the way `kind` says; `first_page` is the absolute URL of the listing's first
/// page (for `LoopingNextLink`).
pub(crate) async fn break_page(
    kind: PageFaultKind,
    response: axum::response::Response,
    first_page: &str,
) -> axum::response::Response {
    use axum::body::{Body, Bytes};
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body = match kind {
        PageFaultKind::TruncatedBody => {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let half = bytes.slice(..bytes.len() / 2);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::other("connection reset by fault injection")),
            ];
            return axum::response::Response::from_parts(
                parts,
                Body::from_stream(futures::stream::iter(chunks)),
            );
        }
        PageFaultKind::NotJson => {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Bytes::from_static(
                b"<html><body><h1>Gateway</h1><p>Please sign in to the proxy.</p></body></html>",
            )
        }
        PageFaultKind::NeitherValueNorNextLink => Bytes::from_static(b"{}"),
        PageFaultKind::ForeignNextLink => {
            let mut page: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if let Some(page) = page.as_object_mut() {
                page.insert(
                    "nextLink".into(),
                    "https://arm.attacker.example/subscriptions/x/providers/Microsoft.DataFactory/factories?page=2".into(),
                );
            }
            Bytes::from(serde_json::to_vec(&page).unwrap_or_default())
        }
        PageFaultKind::NullItem | PageFaultKind::NonObjectItem => {
            let mut page: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let broken = if kind == PageFaultKind::NullItem {
                serde_json::Value::Null
            } else {
                serde_json::json!(42)
            };
            if let Some(items) = page
                .get_mut("value")
                .and_then(serde_json::Value::as_array_mut)
            {
                match items.first_mut() {
                    Some(first) => *first = broken,
                    None => items.push(broken),
                }
            }
            Bytes::from(serde_json::to_vec(&page).unwrap_or_default())
        }
        PageFaultKind::LoopingNextLink => {
            let mut page: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if let Some(page) = page.as_object_mut() {
                page.insert("nextLink".into(), first_page.into());
            }
            Bytes::from(serde_json::to_vec(&page).unwrap_or_default())
        }
    };
    parts.headers.remove(CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, Body::from(body))
}

/// Takes the first scripted fault that `matches`: `times` 0 keeps it for good, otherwise each take uses
/// one up and the last one removes it.
fn take_scripted<F: Clone>(
    faults: &mut Vec<F>,
    matches: impl Fn(&F) -> bool,
    times: impl Fn(&mut F) -> &mut u64,
) -> Option<F> {
    let index = faults.iter().position(matches)?;
    let fault = faults[index].clone();
    match times(&mut faults[index]) {
        0 => {}
        1 => {
            faults.remove(index);
        }
        left => *left -= 1,
    }
    Some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_follow_the_pattern() {
        let state = FaultState::new(Faults {
            burst429: Some(Burst429 {
                every: 3,
                length: 2,
                retry_after_secs: 7,
            }),
            ..Faults::default()
        });
        let seen: Vec<_> = (0..10).map(|_| state.burst()).collect();
        let expected = [None, None, None, Some(7), Some(7)];
        assert_eq!(seen[..5], expected);
        assert_eq!(seen[5..], expected);
    }

    #[test]
    fn buckets_empty_then_refuse_only_when_enforced() {
        let state = FaultState::new(Faults::default());
        for _ in 0..250 {
            assert!(state.take_token("sub", false).is_ok());
        }
        assert!(state.take_token("sub", false).is_ok(), "not enforced");
        state.set(Faults {
            token_buckets: true,
            ..Faults::default()
        });
        assert!(state.remaining("sub", false) <= 1);
        let mut refused = false;
        for _ in 0..5 {
            refused |= state.take_token("sub", false).is_err();
        }
        assert!(refused);
        assert_eq!(state.remaining("other", true), 200);
    }

    #[test]
    fn same_seed_same_choices() {
        let faults = Faults {
            error_rate: 0.5,
            seed: 42,
            ..Faults::default()
        };
        let a = FaultState::new(faults.clone());
        let b = FaultState::new(faults);
        let run = |s: &FaultState| (0..50).map(|_| s.roll_error()).collect::<Vec<_>>();
        assert_eq!(run(&a), run(&b));
    }
}
