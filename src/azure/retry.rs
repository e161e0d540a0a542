//! The one retry loop of every Azure client (ARM, Synapse, Key Vault, Storage) and of token requests. (The pacer
//! that keeps ARM calls under ARM's limits is [`super::pacer::Pacer`]; it decides when to send, never whether to
//! try again.)
//!
//! What is recoverable: 429 and 503 (after `Retry-After`), other 5xx, timeouts and connection resets, and a 2xx
//! whose body is unusable, with exponential backoff and jitter, inside a deadline. A 429 is back-pressure, not a
//! failure: it is retried after `Retry-After` for as long as the deadline allows and never counts against
//! `max_attempts`. Everything else fails fast; a 412 is not retried here but re-read and re-applied by the caller.

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

/// The longest a `Retry-After` is waited for at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Without a deadline, throttled attempts still end somewhere.
pub const MAX_THROTTLED_WITHOUT_DEADLINE: u32 = 1000;

/// The attempts of one call so far, by kind: failures count against the attempt limit, 429s do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Failed attempts that count: 5xx, 408, timeouts, connection failures, unusable bodies.
    pub failed: u32,
    /// Attempts answered 429.
    pub throttled: u32,
}

/// Whether another attempt may follow, `wait` from `now`. A 429 is back-pressure, not a failure: throttled
/// attempts are retried for as long as the deadline allows, and only other failures count against
/// `max_attempts`. Without a deadline, throttled attempts stop at [`MAX_THROTTLED_WITHOUT_DEADLINE`].
pub fn another_attempt_fits(
    attempts: Attempts,
    max_attempts: u32,
    now: Instant,
    wait: Duration,
    deadline: Option<Instant>,
) -> bool {
    let fits = match deadline {
        Some(deadline) => now + wait < deadline,
        None => attempts.throttled < MAX_THROTTLED_WITHOUT_DEADLINE,
    };
    fits && attempts.failed < max_attempts
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

    /// The wait after a 429: the server's `Retry-After` (ARM always sends one), else one second with jitter.
    pub fn throttled_delay(&self, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or_else(
            || Duration::from_millis(1000 + fastrand::u64(0..=500)),
            |after| after.min(MAX_RETRY_AFTER),
        )
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
    /// Throttled (429): tried again after `retry_after` for as long as the deadline allows, never counted
    /// against the attempt limit.
    Throttled {
        error: E,
        retry_after: Option<Duration>,
    },
    Fail(E),
}

impl<T, E> Attempt<T, E> {
    /// The same outcome with the answer mapped (errors and waits kept).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U, E> {
        match self {
            Attempt::Done(value) => Attempt::Done(f(value)),
            Attempt::Retry { error, retry_after } => Attempt::Retry { error, retry_after },
            Attempt::Throttled { error, retry_after } => Attempt::Throttled { error, retry_after },
            Attempt::Fail(error) => Attempt::Fail(error),
        }
    }
}

/// The one retry loop: runs `attempt(n)` (`n` counts every attempt so far) until it is done, fails for good, runs
/// out of attempts, or the next wait would end past `deadline`. Throttled attempts do not count against
/// `max_attempts`. The last error is returned as it was.
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
    let mut attempts = Attempts::default();
    loop {
        let (error, wait) = match attempt(n).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry { error, retry_after } => {
                let wait = policy.delay(attempts.failed, retry_after);
                attempts.failed += 1;
                (error, wait)
            }
            Attempt::Throttled { error, retry_after } => {
                attempts.throttled += 1;
                (error, policy.throttled_delay(retry_after))
            }
        };
        if !another_attempt_fits(
            attempts,
            policy.max_attempts,
            Instant::now(),
            wait,
            deadline,
        ) {
            return Err(error);
        }
        tokio::time::sleep(wait).await;
        n += 1;
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
    async fn throttled_attempts_never_count_against_the_limit_but_stop_at_the_deadline() {
        let p = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        // Ten 429s in a row, then an answer: more than max_attempts, all within the deadline.
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let done: Result<u32, &str> = run(&p, deadline, |n| async move {
            if n < 10 {
                Attempt::Throttled {
                    error: "throttled",
                    retry_after: Some(Duration::from_secs(2)),
                }
            } else {
                Attempt::Done(n)
            }
        })
        .await;
        assert_eq!(done, Ok(10));
        // A 429 mixed with real failures: only the failures count.
        let done: Result<u32, &str> = run(&p, deadline, |n| async move {
            match n {
                0 => Attempt::Retry {
                    error: "busy",
                    retry_after: None,
                },
                1..=5 => Attempt::Throttled {
                    error: "throttled",
                    retry_after: Some(Duration::from_secs(1)),
                },
                _ => Attempt::Done(n),
            }
        })
        .await;
        assert_eq!(done, Ok(6));
        // The deadline ends the waiting: a Retry-After past it is not waited for.
        let start = Instant::now();
        let deadline = Some(start + Duration::from_secs(5));
        let mut calls = 0;
        let late: Result<(), &str> = run(&p, deadline, |_| {
            calls += 1;
            async {
                Attempt::Throttled {
                    error: "throttled",
                    retry_after: Some(Duration::from_secs(2)),
                }
            }
        })
        .await;
        assert_eq!((late, calls), (Err("throttled"), 3));
        assert!(Instant::now() <= start + Duration::from_secs(5));
    }

    #[test]
    fn throttled_attempts_do_not_count_against_the_limit() {
        let now = Instant::now();
        let deadline = Some(now + Duration::from_secs(60));
        let mut attempts = Attempts {
            failed: 0,
            throttled: 50,
        };
        assert!(another_attempt_fits(
            attempts,
            8,
            now,
            Duration::from_secs(1),
            deadline
        ));
        // …but the deadline does.
        assert!(!another_attempt_fits(
            attempts,
            8,
            now,
            Duration::from_secs(61),
            deadline
        ));
        // Other failures count as before: 8 of them and no more tries.
        attempts.failed = 7;
        assert!(another_attempt_fits(
            attempts,
            8,
            now,
            Duration::ZERO,
            deadline
        ));
        attempts.failed = 8;
        assert!(!another_attempt_fits(
            attempts,
            8,
            now,
            Duration::ZERO,
            deadline
        ));
        // Without a deadline, 429s stop somewhere.
        let many = Attempts {
            failed: 0,
            throttled: MAX_THROTTLED_WITHOUT_DEADLINE,
        };
        assert!(!another_attempt_fits(many, 8, now, Duration::ZERO, None));
    }
}
