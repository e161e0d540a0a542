//! A cooperative pacer: many processes share one ARM budget without a shared store.
//!
//! ARM throttles per subscription and principal with token buckets (reads 250 refilling 25/s, writes 200
//! refilling 10/s; DESIGN.md, "Throttling"), and tells every caller what is left in
//! `x-ms-ratelimit-remaining-subscription-reads|writes`. Several instances of the function app and a person's
//! CLI run may spend the same bucket at once. Each process here adapts on its own to what ARM tells it:
//!
//! - **Rate (AIMD).** Each (subscription, reads|writes) lane sends at most `rate` per second. The rate starts
//!   at the model's refill (a little under ARM's) and recovers additively, by a tenth of the refill per second,
//!   while ARM reports a healthy bucket; it is cut multiplicatively, at most once a second, when the bucket runs
//!   below the low-water mark (somebody else is spending it: lower our share) and halved on a 429. N processes
//!   doing this converge on sharing the one refill instead of storming it.
//! - **Burst.** Unused tokens accrue locally at our rate but never beyond what the remaining-tokens header says
//!   is left above the low-water mark, so the burst of a full bucket is spent once, not once per process.
//! - **429.** A 429 is back-pressure: the lane pauses until `Retry-After` (at most [`MAX_PAUSE`]) and every
//!   caller of the lane waits in [`Pacer::acquire`]; the call is then retried, not counted as a failed attempt
//!   (the rule is [`super::retry::another_attempt_fits`]).
//! - **Per factory.** ADF's older limit of 50 entity writes per minute per factory applies to writes only.
//!
//! Nothing here can leave a caller stuck: pauses are bounded and the rate never drops below a floor.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// ARM's documented limits, used as the pacer's model (same fields as the former pacer's).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Read bucket: (capacity, refill per second).
    pub reads: (f64, f64),
    /// Write bucket: (capacity, refill per second).
    pub writes: (f64, f64),
    /// ADF entity writes per minute per factory.
    pub factory_writes_per_minute: f64,
    /// Model each bucket this fraction under ARM's, for clients of the same principal that do not cooperate.
    pub headroom: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reads: (250.0, 25.0),
            writes: (200.0, 10.0),
            factory_writes_per_minute: 50.0,
            // A little under ARM's rates: 5 % is what a single run gives up against the throttle floor.
            headroom: 0.05,
        }
    }
}

/// The longest pause a `Retry-After` can impose on a lane.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Below this fraction of ARM's bucket, others are taken to be spending it: the rate is cut. It is also the
/// part of the burst a process leaves to others. A tenth (25 reads, 20 writes) keeps a run's burst close to
/// ARM's, so that a rotation of a few hundred definitions is not held to the refill rate.
const LOW_WATER: f64 = 0.1;
/// The cut when the bucket runs low, and on a 429.
const DECREASE_LOW: f64 = 0.8;
const DECREASE_THROTTLED: f64 = 0.5;
/// At most one cut per this interval: many answers carrying the same news are one piece of news.
const DECREASE_INTERVAL: Duration = Duration::from_secs(1);
/// Additive recovery per second of healthy answers, as a fraction of the ceiling.
const RECOVERY_PER_SECOND: f64 = 0.1;
/// The lowest rate, as a fraction of the ceiling.
const FLOOR: f64 = 0.02;
/// A 429 without `Retry-After` pauses this long.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// One subscription's reads or writes.
#[derive(Debug)]
struct Lane {
    /// ARM's bucket capacity as modelled (no headroom: compared with the remaining-tokens header).
    arm_capacity: f64,
    /// The most this process may hold.
    capacity: f64,
    ceiling: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
    paused_until: Option<Instant>,
    last_decrease: Option<Instant>,
    healthy_since: Option<Instant>,
}

impl Lane {
    fn new((capacity, per_second): (f64, f64), headroom: f64, now: Instant) -> Self {
        let keep = (1.0 - headroom).clamp(0.01, 1.0);
        let capacity = capacity.max(1.0);
        let ceiling = (per_second * keep).max(0.001);
        // The burst is bounded by what ARM says remains above the low-water mark, not by a share guessed here.
        let local = (capacity * keep).max(1.0);
        Lane {
            arm_capacity: capacity,
            capacity: local,
            ceiling,
            rate: ceiling,
            tokens: local,
            updated: now,
            paused_until: None,
            last_decrease: None,
            healthy_since: None,
        }
    }

    fn low_water(&self) -> f64 {
        self.arm_capacity * LOW_WATER
    }

    fn refill(&mut self, now: Instant) {
        // No tokens accrue during a pause.
        let from = match self.paused_until {
            Some(until) if until > self.updated => until,
            _ => self.updated,
        };
        if now > from {
            let elapsed = now.duration_since(from).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        }
        self.updated = self.updated.max(now);
    }

    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until
            && now < until
        {
            return Err(until - now);
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(token_wait(self.tokens, self.rate))
        }
    }

    fn decrease(&mut self, now: Instant, factor: f64) {
        self.healthy_since = None;
        if self
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_INTERVAL)
        {
            return;
        }
        self.rate = (self.rate * factor).max(self.ceiling * FLOOR);
        self.last_decrease = Some(now);
    }

    fn recover(&mut self, now: Instant) {
        if let Some(since) = self.healthy_since {
            let seconds = now.saturating_duration_since(since).as_secs_f64().min(1.0);
            self.rate =
                (self.rate + self.ceiling * RECOVERY_PER_SECOND * seconds).min(self.ceiling);
        }
        self.healthy_since = Some(now);
    }

    fn observe_remaining(&mut self, now: Instant, remaining: f64) {
        self.refill(now);
        let usable = (remaining - self.low_water()).max(0.0);
        if usable < self.tokens {
            self.tokens = usable;
        }
        if remaining < self.low_water() {
            self.decrease(now, DECREASE_LOW);
        } else {
            self.recover(now);
        }
    }

    fn observe_throttled(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.refill(now);
        self.tokens = 0.0;
        let until = now + retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        // A 429 always cuts, even right after a low-water cut.
        self.last_decrease = None;
        self.decrease(now, DECREASE_THROTTLED);
    }
}

/// How long until `tokens` reach one at `rate`: at least a millisecond, so that a rounding error in the
/// tokens can never make a caller spin on zero-length sleeps.
fn token_wait(tokens: f64, rate: f64) -> Duration {
    Duration::from_secs_f64(((1.0 - tokens) / rate).clamp(0.001, 3600.0))
}

/// A plain token bucket (the per-factory write limit).
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = self.updated.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(token_wait(self.tokens, self.per_second))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LaneKey {
    subscription: String,
    write: bool,
}

#[derive(Debug, Default)]
struct State {
    lanes: HashMap<LaneKey, Lane>,
    factories: HashMap<String, Bucket>,
}

/// Paces ARM calls per subscription (reads, writes) and per factory (writes), cooperating with other processes
/// through ARM's own answers.
#[derive(Debug)]
pub struct Pacer {
    limits: Limits,
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(limits: Limits) -> Self {
        Pacer {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn with_lane<T>(&self, subscription: &str, write: bool, f: impl FnOnce(&mut Lane) -> T) -> T {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = LaneKey {
            subscription: subscription.to_ascii_lowercase(),
            write,
        };
        let limits = if write {
            self.limits.writes
        } else {
            self.limits.reads
        };
        let headroom = self.limits.headroom;
        let lane = state
            .lanes
            .entry(key)
            .or_insert_with(|| Lane::new(limits, headroom, now));
        f(lane)
    }

    /// Waits until the call may go: a read or a write in `subscription`, and for a write also in `factory`
    /// (ADF's per-factory entity write limit). Reads are never charged to a factory.
    pub async fn acquire(&self, subscription: &str, factory: Option<&str>, is_write: bool) {
        // The factory first: it is a local limit, and a subscription token taken before a long wait for the
        // factory would be wasted.
        if is_write && let Some(factory) = factory {
            let key = factory.to_ascii_lowercase();
            loop {
                let wait = {
                    let now = Instant::now();
                    let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    let keep = (1.0 - self.limits.headroom).clamp(0.01, 1.0);
                    let per_minute = (self.limits.factory_writes_per_minute * keep).max(1.0);
                    state
                        .factories
                        .entry(key.clone())
                        .or_insert_with(|| Bucket {
                            capacity: per_minute,
                            per_second: per_minute / 60.0,
                            tokens: per_minute,
                            updated: now,
                        })
                        .take(now)
                };
                match wait {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
        loop {
            let wait = self.with_lane(subscription, is_write, |lane| lane.take(Instant::now()));
            match wait {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Steers by what ARM says remains in the shared bucket (`x-ms-ratelimit-remaining-subscription-*`): below
    /// the low-water mark others are spending it and our share is cut; above it our rate recovers.
    pub fn observe_remaining(&self, subscription: &str, is_write: bool, remaining: Option<u64>) {
        let Some(remaining) = remaining else { return };
        self.with_lane(subscription, is_write, |lane| {
            lane.observe_remaining(Instant::now(), remaining as f64)
        });
    }

    /// After a 429 without a known `Retry-After`: pause the lane briefly and halve its rate.
    pub fn observe_throttled(&self, subscription: &str, is_write: bool) {
        self.observe_throttled_for(subscription, is_write, None);
    }

    /// After a 429: every caller of the lane waits until `retry_after` (at most [`MAX_PAUSE`]), and the lane's
    /// rate is halved.
    pub fn observe_throttled_for(
        &self,
        subscription: &str,
        is_write: bool,
        retry_after: Option<Duration>,
    ) {
        self.with_lane(subscription, is_write, |lane| {
            lane.observe_throttled(Instant::now(), retry_after)
        });
    }

    /// The lane's current rate in calls per second (for logs and tests).
    pub fn rate(&self, subscription: &str, is_write: bool) -> f64 {
        self.with_lane(subscription, is_write, |lane| lane.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// ARM's bucket for one subscription, as the emulator models it: refused calls take nothing and are told
    /// `Retry-After` = the seconds until a token is back, at least 1.
    struct SharedArm {
        capacity: f64,
        refill: f64,
        level: f64,
        at: Instant,
        calls: u64,
        throttled: u64,
    }

    impl SharedArm {
        fn new((capacity, refill): (f64, f64)) -> Self {
            SharedArm {
                capacity,
                refill,
                level: capacity,
                at: Instant::now(),
                calls: 0,
                throttled: 0,
            }
        }
        fn call(&mut self) -> Result<u64, Duration> {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
            self.level = (self.level + elapsed * self.refill).min(self.capacity);
            self.at = now;
            self.calls += 1;
            if self.level >= 1.0 {
                self.level -= 1.0;
                Ok(self.level.floor() as u64)
            } else {
                self.throttled += 1;
                let wait = ((1.0 - self.level) / self.refill).ceil().max(1.0);
                Err(Duration::from_secs_f64(wait))
            }
        }
    }

    /// One simulated process: its own pacer and `workers` concurrent callers doing `calls` successful calls,
    /// each with `latency` of round trip; a 429 is retried after the pacer's pause.
    async fn process(
        arm: Arc<Mutex<SharedArm>>,
        calls: usize,
        workers: usize,
        latency: Duration,
        write: bool,
        factories: usize,
    ) -> Instant {
        let pacer = Arc::new(Pacer::new(Limits::default()));
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (arm, pacer, next) = (arm.clone(), pacer.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= calls {
                        return;
                    }
                    let factory = format!("f{}", n % factories.max(1));
                    loop {
                        pacer.acquire("sub", Some(&factory), write).await;
                        tokio::time::sleep(latency / 2).await;
                        let answer = arm.lock().unwrap_or_else(|e| e.into_inner()).call();
                        tokio::time::sleep(latency / 2).await;
                        match answer {
                            Ok(remaining) => {
                                pacer.observe_remaining("sub", write, Some(remaining));
                                break;
                            }
                            Err(retry_after) => {
                                pacer.observe_throttled_for("sub", write, Some(retry_after))
                            }
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("worker");
        }
        Instant::now()
    }

    struct Outcome {
        wall: f64,
        floor: f64,
        throttled_share: f64,
    }

    /// `n` processes started `stagger` apart, each doing `calls`; the floor is what ARM's bucket allows for all
    /// their calls together: (calls − capacity) / refill.
    async fn together(
        n: usize,
        calls: usize,
        stagger: Duration,
        write: bool,
        factories: usize,
    ) -> Outcome {
        let limits = if write {
            Limits::default().writes
        } else {
            Limits::default().reads
        };
        let arm = Arc::new(Mutex::new(SharedArm::new(limits)));
        let start = Instant::now();
        let mut runs = Vec::new();
        for i in 0..n {
            let arm = arm.clone();
            runs.push(tokio::spawn(async move {
                tokio::time::sleep(stagger * i as u32).await;
                process(arm, calls, 16, Duration::from_millis(120), write, factories).await
            }));
        }
        let mut end = start;
        for run in runs {
            end = end.max(run.await.expect("process"));
        }
        let arm = arm.lock().unwrap_or_else(|e| e.into_inner());
        let total = (n * calls) as f64;
        Outcome {
            wall: (end - start).as_secs_f64(),
            floor: ((total - limits.0) / limits.1).max(0.0),
            throttled_share: arm.throttled as f64 / arm.calls as f64,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_and_three_processes_share_the_read_bucket_near_the_floor() {
        for n in [1, 2, 3] {
            let o = together(n, 1500, Duration::ZERO, false, 20).await;
            println!(
                "{n} processes: wall {:.1} s, floor {:.1} s, ratio {:.2}, 429s {:.2} %",
                o.wall,
                o.floor,
                o.wall / o.floor,
                o.throttled_share * 100.0
            );
            assert!(o.throttled_share < 0.02, "{n}: 429s {}", o.throttled_share);
            assert!(
                o.wall <= o.floor * 1.25,
                "{n}: {} s vs floor {} s",
                o.wall,
                o.floor
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_process_joining_late_converges_too() {
        let o = together(3, 1500, Duration::from_secs(20), false, 20).await;
        println!(
            "staggered: wall {:.1} s, floor {:.1} s, 429s {:.2} %",
            o.wall,
            o.floor,
            o.throttled_share * 100.0
        );
        assert!(o.throttled_share < 0.02, "429s {}", o.throttled_share);
        // The last starts 40 s in: it cannot finish before the floor of everything, measured from the start.
        assert!(
            o.wall <= o.floor * 1.25,
            "{} s vs floor {} s",
            o.wall,
            o.floor
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_processes_share_the_write_bucket() {
        let o = together(2, 600, Duration::ZERO, true, 40).await;
        println!(
            "writes: wall {:.1} s, floor {:.1} s, 429s {:.2} %",
            o.wall,
            o.floor,
            o.throttled_share * 100.0
        );
        assert!(o.throttled_share < 0.02, "429s {}", o.throttled_share);
        assert!(
            o.wall <= o.floor * 1.25,
            "{} s vs floor {} s",
            o.wall,
            o.floor
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_not_charged_per_factory_and_writes_are() {
        let pacer = Pacer::new(Limits::default());
        let start = Instant::now();
        for _ in 0..300 {
            pacer.acquire("sub", Some("factory"), false).await;
        }
        // 300 reads: the read lane alone (a burst, then 23.75/s), not the factory's 47.5 a minute.
        assert!(Instant::now() - start < Duration::from_secs(15));

        let start = Instant::now();
        for _ in 0..60 {
            pacer.acquire("sub", Some("Factory"), true).await;
        }
        // 60 writes to one factory: 47 at once, then 47.5 a minute (13 more take over 15 s).
        assert!(Instant::now() - start >= Duration::from_secs(15));
        // Another factory's writes are not held back by it.
        let start = Instant::now();
        pacer.acquire("sub", Some("other"), true).await;
        assert!(Instant::now() - start < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_caller_until_retry_after_then_lets_them_go() {
        let pacer = Pacer::new(Limits::default());
        pacer.observe_throttled_for("sub", false, Some(Duration::from_secs(3)));
        let start = Instant::now();
        pacer.acquire("sub", None, false).await;
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_secs(3), "{waited:?}");
        assert!(waited < Duration::from_secs(6), "{waited:?}");
        // Writes and other subscriptions are not paused by a read 429.
        let start = Instant::now();
        pacer.observe_throttled_for("sub", false, Some(Duration::from_secs(3)));
        pacer.acquire("sub", None, true).await;
        pacer.acquire("other", None, false).await;
        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_of_429s_never_leaves_the_pacer_stuck() {
        let pacer = Pacer::new(Limits::default());
        for _ in 0..1000 {
            pacer.observe_throttled_for("sub", false, Some(Duration::from_secs(3600)));
            pacer.observe_remaining("sub", false, Some(0));
        }
        assert!(pacer.rate("sub", false) > 0.0);
        let start = Instant::now();
        pacer.acquire("sub", None, false).await;
        pacer.acquire("sub", None, false).await;
        // Bounded by the longest pause and the floor rate.
        assert!(Instant::now() - start <= MAX_PAUSE + Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_cut_when_others_spend_the_bucket_and_recovers_gently() {
        let pacer = Pacer::new(Limits::default());
        let ceiling = pacer.rate("sub", false);
        pacer.observe_throttled_for("sub", false, Some(Duration::from_secs(1)));
        let halved = pacer.rate("sub", false);
        assert!((halved - ceiling / 2.0).abs() < 1e-9);
        // Low remaining cuts at most once a second.
        pacer.observe_remaining("sub", false, Some(10));
        assert_eq!(pacer.rate("sub", false), halved);
        tokio::time::advance(Duration::from_secs(1)).await;
        pacer.observe_remaining("sub", false, Some(10));
        assert!(pacer.rate("sub", false) < halved);
        // Healthy answers bring it back additively: not at once, within about ten seconds.
        let low = pacer.rate("sub", false);
        pacer.observe_remaining("sub", false, Some(200));
        tokio::time::advance(Duration::from_secs(1)).await;
        pacer.observe_remaining("sub", false, Some(200));
        let one_second = pacer.rate("sub", false);
        assert!(one_second > low && one_second < ceiling);
        for _ in 0..12 {
            tokio::time::advance(Duration::from_secs(1)).await;
            pacer.observe_remaining("sub", false, Some(200));
        }
        assert!((pacer.rate("sub", false) - ceiling).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn the_remaining_header_caps_the_burst() {
        let pacer = Pacer::new(Limits::default());
        // ARM says 30 reads remain: 5 above the low-water mark (25) may go at once, the rest at the rate.
        pacer.observe_remaining("sub", false, Some(30));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.acquire("sub", None, false).await;
        }
        assert_eq!(Instant::now(), start);
        pacer.acquire("sub", None, false).await;
        assert!(Instant::now() > start);
    }
}
