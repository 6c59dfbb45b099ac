//! The rate limiting queue (client-go `util/workqueue/rate_limiting_queue.go`, SPEC §7): a
//! [`DelayingQueue`] whose re-adds wait as long as a [`RateLimiter`] says.

use crate::bug::Bugs;
use crate::client::workqueue::default_rate_limiters::RateLimiter;
use crate::client::workqueue::delaying_queue::DelayingQueue;
use crate::client::workqueue::queue::{Added, Get};
use crate::sim::{SimDuration, SimTime};

/// client-go `rateLimitingType`: a delaying queue plus a rate limiter.
///
/// Same surface as [`DelayingQueue`] (call `handle_timeout` at every `poll_timeout`), plus
/// [`RateLimitingQueue::add_rate_limited`], [`RateLimitingQueue::forget`] and
/// [`RateLimitingQueue::num_requeues`]. Remember to call `forget`, or the limiter tracks an
/// item's failures forever (client-go `NewTypedRateLimitingQueue`).
#[derive(Clone, Debug)]
pub struct RateLimitingQueue<T, L> {
    queue: DelayingQueue<T>,
    rate_limiter: L,
}

impl<T: Ord + Clone, L: RateLimiter<T>> RateLimitingQueue<T, L> {
    /// An empty queue limited by `rate_limiter` (client-go `NewTypedRateLimitingQueue`).
    pub fn new(rate_limiter: L, bugs: Bugs) -> RateLimitingQueue<T, L> {
        RateLimitingQueue {
            queue: DelayingQueue::new(bugs),
            rate_limiter,
        }
    }

    /// Adds `item` after the delay the limiter gives at `now`, and returns that delay (client-go
    /// `AddRateLimited`). The limiter is asked even when shutting down, so the failure counts.
    pub fn add_rate_limited(&mut self, item: T, now: SimTime) -> SimDuration {
        let delay = self.rate_limiter.when(&item, now);
        self.queue.add_after(item, now, delay);
        delay
    }

    /// Stops the limiter tracking `item`; the caller must still call `done` (client-go
    /// `Forget`).
    pub fn forget(&mut self, item: &T) {
        self.rate_limiter.forget(item);
    }

    /// How many times `item` was requeued, as the limiter counts (client-go `NumRequeues`).
    pub fn num_requeues(&self, item: &T) -> usize {
        self.rate_limiter.num_requeues(item)
    }

    /// The delaying queue, for its getters.
    pub fn delaying_queue(&self) -> &DelayingQueue<T> {
        &self.queue
    }

    /// The rate limiter.
    pub fn rate_limiter(&self) -> &L {
        &self.rate_limiter
    }

    /// [`DelayingQueue::add_after`].
    pub fn add_after(&mut self, item: T, now: SimTime, delay: SimDuration) {
        self.queue.add_after(item, now, delay);
    }

    /// [`DelayingQueue::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.queue.poll_timeout()
    }

    /// [`DelayingQueue::handle_timeout`].
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.queue.handle_timeout(now);
    }

    /// [`DelayingQueue::add`].
    pub fn add(&mut self, item: T) -> Added {
        self.queue.add(item)
    }

    /// [`DelayingQueue::len`].
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// [`DelayingQueue::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// [`DelayingQueue::get`].
    pub fn get(&mut self) -> Get<T> {
        self.queue.get()
    }

    /// [`DelayingQueue::done`].
    pub fn done(&mut self, item: &T) {
        self.queue.done(item);
    }

    /// [`DelayingQueue::shut_down`].
    pub fn shut_down(&mut self) {
        self.queue.shut_down();
    }

    /// [`DelayingQueue::shut_down_with_drain`].
    pub fn shut_down_with_drain(&mut self) -> bool {
        self.queue.shut_down_with_drain()
    }

    /// [`DelayingQueue::is_drained`].
    pub fn is_drained(&self) -> bool {
        self.queue.is_drained()
    }

    /// [`DelayingQueue::shutting_down`].
    pub fn shutting_down(&self) -> bool {
        self.queue.shutting_down()
    }

    /// [`DelayingQueue::check_invariants`].
    pub fn check_invariants(&self) -> Result<(), String>
    where
        T: std::fmt::Debug,
    {
        self.queue.check_invariants()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::workqueue::default_rate_limiters::{
        ItemExponentialFailureRateLimiter, default_controller_rate_limiter,
    };

    fn ms(ms: u64) -> SimDuration {
        SimDuration::from_millis(ms)
    }

    /// client-go rate_limiting_queue_test.go TestRateLimitingQueue: upstream reads each raw
    /// wait entry off the channel; here `add_rate_limited` returns the delay, and the waiting
    /// item shows the earlier ready time the delaying queue keeps.
    #[test]
    fn test_rate_limiting_queue() {
        let limiter = ItemExponentialFailureRateLimiter::new(ms(1), SimDuration::from_secs(1));
        let mut queue = RateLimitingQueue::new(limiter, Bugs::NONE);
        let now = SimTime(1_000);
        assert_eq!(queue.add_rate_limited("one", now), ms(1));
        assert_eq!(queue.add_rate_limited("one", now), ms(2));
        assert_eq!(queue.num_requeues(&"one"), 2);
        assert_eq!(queue.delaying_queue().ready_at(&"one"), Some(now + ms(1)));
        assert_eq!(queue.add_rate_limited("two", now), ms(1));
        assert_eq!(queue.add_rate_limited("two", now), ms(2));
        queue.forget(&"one");
        assert_eq!(queue.num_requeues(&"one"), 0);
        assert_eq!(queue.add_rate_limited("one", now), ms(1));
        assert_eq!(queue.num_requeues(&"two"), 2);
    }

    /// client-go `AddRateLimited` asks the limiter before `AddAfter` drops the item, so a
    /// rate-limited add while shutting down still counts a failure.
    #[test]
    fn add_rate_limited_counts_a_failure_even_when_shutting_down() {
        let mut queue = RateLimitingQueue::new(default_controller_rate_limiter(), Bugs::NONE);
        queue.shut_down();
        assert_eq!(queue.add_rate_limited("one", SimTime(0)), ms(5));
        assert_eq!(queue.num_requeues(&"one"), 1);
        assert_eq!(queue.poll_timeout(), None);
        assert_eq!(queue.get(), Get::ShutDown);
    }

    /// A controller's retry loop: fail twice, then succeed and forget; each retry waits
    /// for the limiter's delay before `get` sees the item again.
    #[test]
    fn retries_wait_for_the_limiter_then_forget_resets() {
        let mut queue = RateLimitingQueue::new(default_controller_rate_limiter(), Bugs::NONE);
        queue.add("key");
        let mut now = SimTime(0);
        for expected_delay in [ms(5), ms(10)] {
            let Get::Item(item) = queue.get() else {
                panic!("queued")
            };
            assert_eq!(queue.add_rate_limited(item, now), expected_delay);
            queue.done(&item);
            assert_eq!(queue.get(), Get::Empty, "not before the delay");
            let ready_at = queue.poll_timeout().expect("waiting");
            assert_eq!(ready_at, now + expected_delay);
            now = ready_at;
            queue.handle_timeout(now);
            assert_eq!(queue.check_invariants(), Ok(()));
        }
        let Get::Item(item) = queue.get() else {
            panic!("queued after the delay")
        };
        queue.forget(&item);
        queue.done(&item);
        assert_eq!(queue.num_requeues(&"key"), 0);
        assert_eq!(queue.add_rate_limited("key", now), ms(5));
    }
}
