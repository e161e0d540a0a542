//! The one retry policy of the product, and the pacer that keeps ARM calls under ARM's limits.
//!
//! What is recoverable: 429 and 503 (after `Retry-After`), other 5xx, timeouts and connection resets, with
//! exponential backoff and jitter, inside a deadline. Everything else fails fast; a 412 is not retried here but
//! re-read and re-applied by the caller.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Whether a response status is worth another try.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the server's `Retry-After` if it gave one, else backoff with jitter.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay * 3);
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        // Full jitter spreads retries of many workers apart.
        let millis = capped.as_millis() as u64;
        Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
    }

    /// Whether another attempt fits: attempts left and the wait ends before the deadline.
    pub fn should_retry(&self, attempt: u32, wait: Duration, deadline: Option<Instant>) -> bool {
        attempt + 1 < self.max_attempts && deadline.is_none_or(|d| Instant::now() + wait < d)
    }
}

/// What one attempt came to, for [`run`].
pub enum Attempt<T, E> {
    Done(T),
    /// Worth another try, after the server's `Retry-After` if it gave one.
    Retry {
        error: E,
        retry_after: Option<Duration>,
    },
    Fail(E),
}

/// The one retry loop: runs `attempt(n)` until it is done, fails for good, runs out of attempts, or the next
/// wait would end past `deadline`. The last error is returned as it was.
pub async fn run<T, E, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Attempt<T, E>>,
{
    let mut n = 0u32;
    loop {
        match attempt(n).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry { error, retry_after } => {
                let wait = policy.delay(n, retry_after);
                if !policy.should_retry(n, wait, deadline) {
                    return Err(error);
                }
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// The time a request may take: its own limit, or less when the deadline is nearer.
pub fn request_timeout(limit: Duration, deadline: Option<Instant>) -> Duration {
    deadline.map_or(limit, |d| {
        d.saturating_duration_since(Instant::now()).min(limit)
    })
}

/// Parses `Retry-After` in seconds (the form ARM uses).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let seconds: f64 = value?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(300.0)))
}

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64) -> Self {
        Bucket {
            capacity,
            per_second,
            tokens: capacity,
            updated: Instant::now(),
        }
    }
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
    }
    /// Takes a token now, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// ARM's documented limits, used as the pacer's model.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub reads: (f64, f64),
    pub writes: (f64, f64),
    /// ADF entity writes per minute per factory.
    pub factory_writes_per_minute: f64,
    /// Keep this fraction of each bucket in reserve for other clients of the same principal.
    pub headroom: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reads: (250.0, 25.0),
            writes: (200.0, 10.0),
            factory_writes_per_minute: 50.0,
            headroom: 0.1,
        }
    }
}

/// Paces calls per subscription (reads, writes) and per factory (writes) so that ARM never has to throttle.
#[derive(Debug)]
pub struct Pacer {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Pacer {
    pub fn new(limits: Limits) -> Self {
        Pacer {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until the call may go: a read or a write in `subscription`, and in `factory` for entity writes.
    pub async fn acquire(&self, subscription: &str, factory: Option<&str>, is_write: bool) {
        let mut keys = vec![format!(
            "{}:{subscription}",
            if is_write { "w" } else { "r" }
        )];
        if let Some(factory) = factory {
            keys.push(format!("f:{}", factory.to_ascii_lowercase()));
        }
        for key in keys {
            loop {
                let wait = {
                    let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
                    let bucket = buckets
                        .entry(key.clone())
                        .or_insert_with(|| self.bucket_for(&key));
                    bucket.take(Instant::now())
                };
                match wait {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
    }

    fn bucket_for(&self, key: &str) -> Bucket {
        let keep = 1.0 - self.limits.headroom;
        match key.as_bytes().first() {
            Some(b'w') => Bucket::new(self.limits.writes.0 * keep, self.limits.writes.1 * keep),
            Some(b'f') => Bucket::new(
                self.limits.factory_writes_per_minute * keep,
                self.limits.factory_writes_per_minute * keep / 60.0,
            ),
            _ => Bucket::new(self.limits.reads.0 * keep, self.limits.reads.1 * keep),
        }
    }

    /// Lowers the model to what ARM says remains, so other clients of the same principal are accounted for.
    pub fn observe_remaining(&self, subscription: &str, is_write: bool, remaining: Option<u64>) {
        let Some(remaining) = remaining else { return };
        let key = format!("{}:{subscription}", if is_write { "w" } else { "r" });
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| self.bucket_for(&key));
        bucket.refill(Instant::now());
        let reserve =
            bucket.capacity * self.limits.headroom / (1.0 - self.limits.headroom).max(0.01);
        let usable = (remaining as f64 - reserve).max(0.0);
        if usable < bucket.tokens {
            bucket.tokens = usable;
        }
    }

    /// After a 429: empty the bucket so that every caller waits for the refill.
    pub fn observe_throttled(&self, subscription: &str, is_write: bool) {
        self.observe_remaining(subscription, is_write, Some(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_and_retry_after_wins() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert!(p.delay(0, None) <= Duration::from_millis(100));
        assert!(p.delay(10, None) <= Duration::from_secs(1));
        assert!(p.delay(10, None) >= Duration::from_millis(500));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert!(!p.should_retry(4, Duration::ZERO, None));
        assert!(p.should_retry(0, Duration::ZERO, None));
        assert!(!p.should_retry(
            0,
            Duration::from_secs(10),
            Some(Instant::now() + Duration::from_secs(1))
        ));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some(" 0.5 ")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 401, 403, 404, 409, 412] {
            assert!(!is_retryable_status(s));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_one_loop_retries_until_done_and_stops_on_a_failure_or_the_deadline() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let done: Result<u32, &str> = run(&p, None, |n| async move {
            if n < 2 {
                Attempt::Retry {
                    error: "busy",
                    retry_after: None,
                }
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(done, Ok(2));
        let mut calls = 0;
        let failed: Result<(), &str> = run(&p, None, |_| {
            calls += 1;
            async { Attempt::Fail("refused") }
        })
        .await;
        assert_eq!((failed, calls), (Err("refused"), 1));
        let mut calls = 0;
        let deadline = Some(Instant::now() + Duration::from_secs(2));
        let late: Result<(), &str> = run(&p, deadline, |_| {
            calls += 1;
            async {
                Attempt::Retry {
                    error: "busy",
                    retry_after: Some(Duration::from_secs(10)),
                }
            }
        })
        .await;
        assert_eq!((late, calls), (Err("busy"), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_never_outlives_the_deadline() {
        let limit = Duration::from_secs(120);
        assert_eq!(request_timeout(limit, None), limit);
        let t = request_timeout(limit, Some(Instant::now() + Duration::from_secs(3)));
        assert!(t <= Duration::from_secs(3));
        assert_eq!(request_timeout(limit, Some(Instant::now())), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_waits_once_the_bucket_is_empty() {
        let pacer = Pacer::new(Limits {
            reads: (2.0, 1.0),
            headroom: 0.0,
            ..Limits::default()
        });
        let start = Instant::now();
        for _ in 0..4 {
            pacer.acquire("sub", None, false).await;
        }
        // Two from the bucket, then one per second.
        assert!(Instant::now() - start >= Duration::from_millis(1900));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_headers_lower_the_model() {
        let pacer = Pacer::new(Limits {
            reads: (100.0, 1.0),
            headroom: 0.0,
            ..Limits::default()
        });
        pacer.observe_remaining("sub", false, Some(0));
        let start = Instant::now();
        pacer.acquire("sub", None, false).await;
        assert!(Instant::now() - start >= Duration::from_millis(900));
    }
}
