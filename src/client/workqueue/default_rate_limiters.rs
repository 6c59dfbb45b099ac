//! Rate limiters (client-go `util/workqueue/default_rate_limiters.go`, SPEC §7): each says how
//! long an item should wait before it is added again, on simulated time.

use std::collections::BTreeMap;

use crate::sim::{SimDuration, SimTime};

/// First delay of the default controller rate limiter's per-item part.
pub const DEFAULT_CONTROLLER_DELAY_BASE: SimDuration = SimDuration::from_millis(5);

/// Largest delay of the default controller rate limiter's per-item part.
pub const DEFAULT_CONTROLLER_DELAY_MAX: SimDuration = SimDuration::from_secs(1000);

/// Tokens per second of the default controller rate limiter's overall bucket.
pub const DEFAULT_CONTROLLER_QPS: u64 = 10;

/// Bucket size of the default controller rate limiter.
pub const DEFAULT_CONTROLLER_BURST: u64 = 100;

/// Thousandths of a token per token: the bucket counts in these so that accrual is exact.
const MILLI_PER_TOKEN: i64 = 1000;

/// client-go `TypedRateLimiter`: decides how long an item waits, and tracks its failures.
pub trait RateLimiter<T> {
    /// How long `item` should wait, asked at `now` (client-go `When`); counts a failure.
    fn when(&mut self, item: &T, now: SimTime) -> SimDuration;
    /// Stops tracking `item`, whether it failed for good or succeeded (client-go `Forget`).
    fn forget(&mut self, item: &T);
    /// How many failures `item` has had (client-go `NumRequeues`).
    fn num_requeues(&self, item: &T) -> usize;
}

/// client-go `ItemExponentialFailureRateLimiter`: `delay_base · 2^failures`, capped at
/// `delay_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemExponentialFailureRateLimiter<T> {
    failures: BTreeMap<T, usize>,
    /// client-go `baseDelay`.
    delay_base: SimDuration,
    /// client-go `maxDelay`.
    delay_max: SimDuration,
}

impl<T: Ord + Clone> ItemExponentialFailureRateLimiter<T> {
    /// A limiter that has seen no failure (client-go `NewTypedItemExponentialFailureRateLimiter`).
    pub fn new(delay_base: SimDuration, delay_max: SimDuration) -> Self {
        ItemExponentialFailureRateLimiter {
            failures: BTreeMap::new(),
            delay_base,
            delay_max,
        }
    }
}

impl<T: Ord + Clone> RateLimiter<T> for ItemExponentialFailureRateLimiter<T> {
    /// Mirrors client-go `ItemExponentialFailureRateLimiter.When`: a product that overflows
    /// (upstream: exceeds `MaxInt64` nanoseconds) gives `delay_max`.
    fn when(&mut self, item: &T, _now: SimTime) -> SimDuration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        let exponent = *failures;
        *failures = failures.saturating_add(1);
        let backoff_ms = u32::try_from(exponent)
            .ok()
            .and_then(|exponent| 1u64.checked_shl(exponent))
            .and_then(|factor| self.delay_base.as_millis().checked_mul(factor));
        match backoff_ms {
            Some(ms) if SimDuration(ms) <= self.delay_max => SimDuration(ms),
            _ => self.delay_max,
        }
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// client-go `ItemFastSlowRateLimiter`: `delay_fast` for the first `fast_attempts_max`
/// failures of an item, `delay_slow` after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFastSlowRateLimiter<T> {
    failures: BTreeMap<T, usize>,
    /// client-go `fastDelay`.
    delay_fast: SimDuration,
    /// client-go `slowDelay`.
    delay_slow: SimDuration,
    /// client-go `maxFastAttempts`.
    fast_attempts_max: usize,
}

impl<T: Ord + Clone> ItemFastSlowRateLimiter<T> {
    /// A limiter that has seen no failure (client-go `NewTypedItemFastSlowRateLimiter`).
    pub fn new(delay_fast: SimDuration, delay_slow: SimDuration, fast_attempts_max: usize) -> Self {
        ItemFastSlowRateLimiter {
            failures: BTreeMap::new(),
            delay_fast,
            delay_slow,
            fast_attempts_max,
        }
    }
}

impl<T: Ord + Clone> RateLimiter<T> for ItemFastSlowRateLimiter<T> {
    /// Mirrors client-go `ItemFastSlowRateLimiter.When`: the count includes this failure.
    fn when(&mut self, item: &T, _now: SimTime) -> SimDuration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        *failures = failures.saturating_add(1);
        if *failures <= self.fast_attempts_max {
            self.delay_fast
        } else {
            self.delay_slow
        }
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// client-go `BucketRateLimiter`: one token bucket for all items (golang.org/x/time/rate
/// `Limiter` with `Reserve().Delay()`); it counts no failures.
///
/// Tokens accrue continuously at `qps` up to `burst`; every `when` takes one token, even if that
/// leaves the bucket negative, and waits until the debt is paid. The bucket counts thousandths
/// of a token, so at millisecond resolution accrual is exact integer arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRateLimiter {
    /// Tokens added per second (rate `Limit`), so thousandths added per millisecond.
    qps: u64,
    /// Bucket size (rate `burst`), in thousandths of a token.
    tokens_milli_max: i64,
    /// Thousandths of a token in the bucket at `last`; negative once reservations run ahead.
    tokens_milli: i64,
    /// When the bucket was last updated (rate `last`); `None` while full from the start.
    last: Option<SimTime>,
}

impl BucketRateLimiter {
    /// A full bucket (rate `NewLimiter(qps, burst)`). Both must be at least 1: upstream a zero
    /// burst refuses every reservation and a zero rate never refills.
    pub fn new(qps: u64, burst: u64) -> BucketRateLimiter {
        assert!(qps > 0, "a bucket refills at a positive rate");
        assert!(burst > 0, "a bucket holds at least one token");
        let tokens_milli_max = i64::try_from(burst)
            .ok()
            .and_then(|burst| burst.checked_mul(MILLI_PER_TOKEN))
            .expect("burst fits in thousandths");
        BucketRateLimiter {
            qps,
            tokens_milli_max,
            tokens_milli: tokens_milli_max,
            last: None,
        }
    }
}

impl<T> RateLimiter<T> for BucketRateLimiter {
    /// Mirrors golang.org/x/time/rate `reserveN` with n = 1 and `Reservation.DelayFrom`: refill
    /// for the time since `last` (capped at `burst`), take one token, wait out any debt. Rounds
    /// the wait up to whole milliseconds, so an item is never ready before upstream's
    /// `timeToAct`; exact when 1000 is a multiple of `qps`.
    fn when(&mut self, _item: &T, now: SimTime) -> SimDuration {
        let elapsed = self.last.map_or(0, |last| (now - last).as_millis());
        let room_milli = self.tokens_milli_max - self.tokens_milli;
        assert!(room_milli >= 0, "the bucket never holds more than burst");
        let accrued_milli = i64::try_from(elapsed.saturating_mul(self.qps)).unwrap_or(i64::MAX);
        self.tokens_milli += accrued_milli.min(room_milli);
        self.tokens_milli -= MILLI_PER_TOKEN;
        self.last = Some(now);
        if self.tokens_milli >= 0 {
            return SimDuration::ZERO;
        }
        SimDuration(self.tokens_milli.unsigned_abs().div_ceil(self.qps))
    }

    fn forget(&mut self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> usize {
        0
    }
}

/// client-go `MaxOfRateLimiter` over two limiters (nest it for more): the longer of the two
/// delays. As upstream warns, with a token bucket inside, the burst can appear exceeded when
/// some items were separately delayed longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxOfRateLimiter<A, B> {
    first: A,
    second: B,
}

impl<A, B> MaxOfRateLimiter<A, B> {
    /// The worst case of `first` and `second` (client-go `NewTypedMaxOfRateLimiter`).
    pub fn new(first: A, second: B) -> MaxOfRateLimiter<A, B> {
        MaxOfRateLimiter { first, second }
    }
}

impl<T, A: RateLimiter<T>, B: RateLimiter<T>> RateLimiter<T> for MaxOfRateLimiter<A, B> {
    /// Mirrors client-go `MaxOfRateLimiter.When`: asks every limiter, in order, so each counts
    /// the failure (or takes a token) even when the other wins.
    fn when(&mut self, item: &T, now: SimTime) -> SimDuration {
        let first = self.first.when(item, now);
        let second = self.second.when(item, now);
        first.max(second)
    }

    fn forget(&mut self, item: &T) {
        self.first.forget(item);
        self.second.forget(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        let first = self.first.num_requeues(item);
        first.max(self.second.num_requeues(item))
    }
}

/// client-go `WithMaxWaitRateLimiter`: another limiter's delay, capped at `delay_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithMaxWaitRateLimiter<L> {
    limiter: L,
    /// client-go `maxDelay`.
    delay_max: SimDuration,
}

impl<L> WithMaxWaitRateLimiter<L> {
    /// `limiter` with its delays capped (client-go `NewTypedWithMaxWaitRateLimiter`).
    pub fn new(limiter: L, delay_max: SimDuration) -> WithMaxWaitRateLimiter<L> {
        WithMaxWaitRateLimiter { limiter, delay_max }
    }
}

impl<T, L: RateLimiter<T>> RateLimiter<T> for WithMaxWaitRateLimiter<L> {
    fn when(&mut self, item: &T, now: SimTime) -> SimDuration {
        self.limiter.when(item, now).min(self.delay_max)
    }

    fn forget(&mut self, item: &T) {
        self.limiter.forget(item);
    }

    fn num_requeues(&self, item: &T) -> usize {
        self.limiter.num_requeues(item)
    }
}

/// The type of [`default_controller_rate_limiter`].
pub type DefaultControllerRateLimiter<T> =
    MaxOfRateLimiter<ItemExponentialFailureRateLimiter<T>, BucketRateLimiter>;

/// Per-item exponential (5 ms to 1000 s) and overall bucket (10 qps, burst 100), whichever waits
/// longer (client-go `DefaultTypedControllerRateLimiter`, SPEC §11).
pub fn default_controller_rate_limiter<T: Ord + Clone>() -> DefaultControllerRateLimiter<T> {
    MaxOfRateLimiter::new(
        ItemExponentialFailureRateLimiter::new(
            DEFAULT_CONTROLLER_DELAY_BASE,
            DEFAULT_CONTROLLER_DELAY_MAX,
        ),
        BucketRateLimiter::new(DEFAULT_CONTROLLER_QPS, DEFAULT_CONTROLLER_BURST),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> SimDuration {
        SimDuration::from_millis(ms)
    }

    fn secs(secs: u64) -> SimDuration {
        SimDuration::from_secs(secs)
    }

    const T0: SimTime = SimTime(1_000);

    /// client-go default_rate_limiters_test.go TestItemExponentialFailureRateLimiter.
    #[test]
    fn test_item_exponential_failure_rate_limiter() {
        let mut limiter = ItemExponentialFailureRateLimiter::new(ms(1), secs(1));
        for expected in [1, 2, 4, 8, 16] {
            assert_eq!(limiter.when(&"one", T0), ms(expected));
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", T0), ms(1));
        assert_eq!(limiter.when(&"two", T0), ms(2));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", T0), ms(1));
    }

    /// client-go default_rate_limiters_test.go TestItemExponentialFailureRateLimiterOverFlow:
    /// a product past the integer range gives the cap.
    #[test]
    fn test_item_exponential_failure_rate_limiter_over_flow() {
        let mut limiter = ItemExponentialFailureRateLimiter::new(ms(1), secs(1000));
        for _ in 0..5 {
            limiter.when(&"one", T0);
        }
        assert_eq!(limiter.when(&"one", T0), ms(32));
        for _ in 0..1000 {
            limiter.when(&"overflow1", T0);
        }
        assert_eq!(limiter.when(&"overflow1", T0), secs(1000));

        let mut limiter = ItemExponentialFailureRateLimiter::new(secs(60), secs(1000 * 3600));
        for _ in 0..2 {
            limiter.when(&"two", T0);
        }
        assert_eq!(limiter.when(&"two", T0), secs(4 * 60));
        for _ in 0..1000 {
            limiter.when(&"overflow2", T0);
        }
        assert_eq!(limiter.when(&"overflow2", T0), secs(1000 * 3600));
    }

    /// client-go default_rate_limiters_test.go TestItemFastSlowRateLimiter.
    #[test]
    fn test_item_fast_slow_rate_limiter() {
        let mut limiter = ItemFastSlowRateLimiter::new(ms(5), secs(10), 3);
        for expected in [ms(5), ms(5), ms(5), secs(10), secs(10)] {
            assert_eq!(limiter.when(&"one", T0), expected);
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", T0), ms(5));
        assert_eq!(limiter.when(&"two", T0), ms(5));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", T0), ms(5));
    }

    /// client-go default_rate_limiters_test.go TestMaxOfRateLimiter.
    #[test]
    fn test_max_of_rate_limiter() {
        let mut limiter = MaxOfRateLimiter::new(
            ItemFastSlowRateLimiter::new(ms(5), secs(3), 3),
            ItemExponentialFailureRateLimiter::new(ms(1), secs(1)),
        );
        for expected in [ms(5), ms(5), ms(5), secs(3), secs(3)] {
            assert_eq!(limiter.when(&"one", T0), expected);
        }
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", T0), ms(5));
        assert_eq!(limiter.when(&"two", T0), ms(5));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", T0), ms(5));
    }

    /// client-go default_rate_limiters_test.go's `StepRateLimiter`: `delay_base` for the first
    /// `threshold` calls over all items, `delay_max` after.
    struct StepRateLimiter {
        count: usize,
        threshold: usize,
        delay_base: SimDuration,
        delay_max: SimDuration,
    }

    impl RateLimiter<usize> for StepRateLimiter {
        fn when(&mut self, _item: &usize, _now: SimTime) -> SimDuration {
            self.count += 1;
            if self.count <= self.threshold {
                self.delay_base
            } else {
                self.delay_max
            }
        }

        fn forget(&mut self, _item: &usize) {}

        fn num_requeues(&self, _item: &usize) -> usize {
            0
        }
    }

    /// client-go default_rate_limiters_test.go TestWithMaxWaitRateLimiter.
    #[test]
    fn test_with_max_wait_rate_limiter() {
        let step = StepRateLimiter {
            count: 0,
            threshold: 100,
            delay_base: ms(5),
            delay_max: secs(1000),
        };
        let mut limiter = WithMaxWaitRateLimiter::new(step, secs(500));
        for item in 0..100 {
            assert_eq!(limiter.when(&item, T0), ms(5));
        }
        for item in 100..200 {
            assert_eq!(limiter.when(&item, T0), secs(500));
        }
    }

    /// golang.org/x/time/rate rate_test.go TestSimpleReserve, with one token per reservation
    /// (all `BucketRateLimiter` takes): the bucket goes negative and refills continuously.
    #[test]
    fn bucket_reservations_run_ahead_and_refill() {
        let mut bucket = BucketRateLimiter::new(10, 2);
        let mut when = |now| RateLimiter::<()>::when(&mut bucket, &(), now);
        assert_eq!(when(T0), ms(0));
        assert_eq!(when(T0), ms(0));
        assert_eq!(when(T0), ms(100), "bucket at -1");
        assert_eq!(when(T0), ms(200), "bucket at -2");
        assert_eq!(when(T0 + ms(300)), ms(0), "-2 + 3 tokens, one taken");
        assert_eq!(when(T0 + ms(300)), ms(100));
        // A long pause refills only up to the burst.
        assert_eq!(when(T0 + secs(60)), ms(0));
        assert_eq!(when(T0 + secs(60)), ms(0));
        assert_eq!(when(T0 + secs(60)), ms(100));
    }

    /// A rate that does not divide a second: waits round up to whole milliseconds, but the
    /// bucket itself stays exact, so rounding never accumulates.
    #[test]
    fn bucket_rounds_waits_up_without_drift() {
        let mut bucket = BucketRateLimiter::new(3, 1);
        let delays: Vec<SimDuration> = (0..4)
            .map(|_| RateLimiter::<()>::when(&mut bucket, &(), T0))
            .collect();
        assert_eq!(delays, [ms(0), ms(334), ms(667), ms(1000)]);
        assert_eq!(RateLimiter::<()>::num_requeues(&bucket, &()), 0);
    }

    /// client-go `DefaultTypedControllerRateLimiter`: 100 distinct items pass the bucket with
    /// only the 5 ms per-item delay; from the 101st, the 10 qps bucket dominates.
    #[test]
    fn default_controller_rate_limiter_is_per_item_until_the_burst_is_spent() {
        let mut limiter = default_controller_rate_limiter::<usize>();
        for item in 0..100 {
            assert_eq!(limiter.when(&item, T0), ms(5));
        }
        assert_eq!(limiter.when(&100, T0), ms(100));
        assert_eq!(limiter.when(&101, T0), ms(200));
        assert_eq!(limiter.num_requeues(&101), 1, "the exponential part counts");
        // Twenty seconds refill the bucket; one item's failures then grow to the cap.
        let later = T0 + secs(20);
        let delays: Vec<u64> = (0..19)
            .map(|_| limiter.when(&7, later).as_millis())
            .collect();
        assert_eq!(delays[..3], [10, 20, 40], "item 7 failed once already");
        assert_eq!(delays[16], 5 * (1 << 17));
        assert_eq!(delays[17], 1_000_000, "capped at 1000 s");
        limiter.forget(&7);
        assert_eq!(limiter.num_requeues(&7), 0);
    }
}
