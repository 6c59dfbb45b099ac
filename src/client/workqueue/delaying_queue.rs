//! The delaying queue (client-go `util/workqueue/delaying_queue.go`, SPEC §7): a [`Queue`] plus
//! items waiting for their ready time, moved into the queue by [`DelayingQueue::handle_timeout`].
//!
//! Upstream a goroutine (`waitingLoop`) sleeps until the earliest ready time, or at most the 10 s
//! heartbeat (`maxWait`). The heartbeat is not modelled: it only reruns the loop that moves
//! ready items, and a caller that calls `handle_timeout` at every `poll_timeout` has moved each
//! item at its ready time already, so a heartbeat would find nothing more to move.

use std::collections::{BTreeMap, BTreeSet};

use crate::bug::Bugs;
use crate::client::workqueue::queue::{Added, Get, Queue};
use crate::sim::{SimDuration, SimTime};

/// client-go `delayingType`: a work queue with `AddAfter`, on simulated time.
///
/// Inputs: the queue verbs, [`DelayingQueue::add_after`] and
/// [`DelayingQueue::handle_timeout`]. Output: [`DelayingQueue::poll_timeout`], the next time to
/// call `handle_timeout`; any `add_after` or shut down may change it. Time never goes backwards.
#[derive(Clone, Debug)]
pub struct DelayingQueue<T> {
    queue: Queue<T>,
    /// Ready time of each waiting item (upstream `waitingEntryByData`).
    ready_at_by_item: BTreeMap<T, SimTime>,
    /// The waiting items by ready time (upstream `waitForPriorityQueue`, a min-heap); equal
    /// ready times go in item order, where Go's heap order is an artifact of `container/heap`.
    waiting: BTreeSet<(SimTime, T)>,
    /// The latest time seen, to assert that time never goes backwards.
    now_latest: SimTime,
}

impl<T: Ord + Clone> Default for DelayingQueue<T> {
    fn default() -> DelayingQueue<T> {
        DelayingQueue::new(Bugs::NONE)
    }
}

impl<T: Ord + Clone> DelayingQueue<T> {
    /// An empty delaying queue (client-go `NewTypedDelayingQueue`).
    pub fn new(bugs: Bugs) -> DelayingQueue<T> {
        DelayingQueue {
            queue: Queue::new(bugs),
            ready_at_by_item: BTreeMap::new(),
            waiting: BTreeSet::new(),
            now_latest: SimTime::ZERO,
        }
    }

    /// Adds `item` once `delay` has passed since `now` (client-go `AddAfter`): ignored when
    /// shutting down, added at once for a zero delay; a waiting item keeps the earlier of its
    /// two ready times (client-go delaying_queue.go `insert`).
    pub fn add_after(&mut self, item: T, now: SimTime, delay: SimDuration) {
        self.observe(now);
        if self.queue.shutting_down() {
            return;
        }
        if delay == SimDuration::ZERO {
            self.queue.add(item);
            return;
        }
        let ready_at = now + delay;
        match self.ready_at_by_item.get(&item) {
            Some(&earlier) if earlier <= ready_at => {}
            Some(&later) => {
                let moved = self.waiting.remove(&(later, item.clone()));
                assert!(moved, "a waiting item is in the heap");
                self.insert_waiting(item, ready_at);
            }
            None => self.insert_waiting(item, ready_at),
        }
    }

    /// The earliest ready time of a waiting item: when to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.waiting.first().map(|(ready_at, _)| *ready_at)
    }

    /// Adds every waiting item whose ready time is `now` or earlier, earliest first (client-go
    /// `waitingLoop`); an early call is a no-op.
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.observe(now);
        while self.poll_timeout().is_some_and(|ready_at| ready_at <= now) {
            let (ready_at, item) = self.waiting.pop_first().expect("an item is ready");
            let removed = self.ready_at_by_item.remove(&item);
            assert_eq!(removed, Some(ready_at), "heap and map agree");
            self.queue.add(item);
        }
        if let Some(next) = self.poll_timeout() {
            assert!(next > now, "every ready item moved");
        }
    }

    /// When `item` is due to be added, if it is waiting.
    pub fn ready_at(&self, item: &T) -> Option<SimTime> {
        self.ready_at_by_item.get(item).copied()
    }

    /// The waiting items with their ready times, earliest first.
    pub fn waiting(&self) -> impl Iterator<Item = (SimTime, &T)> {
        self.waiting
            .iter()
            .map(|(ready_at, item)| (*ready_at, item))
    }

    /// The underlying queue, for its getters.
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// [`Queue::add`].
    pub fn add(&mut self, item: T) -> Added {
        self.queue.add(item)
    }

    /// [`Queue::len`]: queued items, not counting waiting ones.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// [`Queue::is_empty`]: nothing queued, though items may be waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// [`Queue::get`].
    pub fn get(&mut self) -> Get<T> {
        self.queue.get()
    }

    /// [`Queue::done`].
    pub fn done(&mut self, item: &T) {
        self.queue.done(item)
    }

    /// [`Queue::shut_down`], dropping every waiting item (client-go `delayingType.ShutDown`
    /// stops `waitingLoop`).
    pub fn shut_down(&mut self) {
        self.queue.shut_down();
        self.drop_waiting();
    }

    /// [`Queue::shut_down_with_drain`], dropping every waiting item: upstream `waitingLoop`
    /// returns at its next wake-up once shutting down, and `Add` would ignore them anyway.
    pub fn shut_down_with_drain(&mut self) -> bool {
        let drained = self.queue.shut_down_with_drain();
        self.drop_waiting();
        drained
    }

    /// [`Queue::is_drained`].
    pub fn is_drained(&self) -> bool {
        self.queue.is_drained()
    }

    /// [`Queue::shutting_down`].
    pub fn shutting_down(&self) -> bool {
        self.queue.shutting_down()
    }

    /// [`Queue::check_invariants`], plus `waiting_matches_ready_times` (the heap and the
    /// per-item ready times hold the same entries) and `no_waiting_after_shut_down`.
    pub fn check_invariants(&self) -> Result<(), String>
    where
        T: std::fmt::Debug,
    {
        self.queue.check_invariants()?;
        let from_map: BTreeSet<(SimTime, &T)> = self
            .ready_at_by_item
            .iter()
            .map(|(item, ready_at)| (*ready_at, item))
            .collect();
        if !from_map.iter().copied().eq(self.waiting()) {
            return Err(format!(
                "waiting_matches_ready_times: heap {:?} vs map {:?}",
                self.waiting, self.ready_at_by_item
            ));
        }
        if self.shutting_down() && !self.waiting.is_empty() {
            return Err(format!(
                "no_waiting_after_shut_down: {:?} still waiting",
                self.waiting
            ));
        }
        Ok(())
    }

    fn insert_waiting(&mut self, item: T, ready_at: SimTime) {
        self.ready_at_by_item.insert(item.clone(), ready_at);
        self.waiting.insert((ready_at, item));
    }

    fn drop_waiting(&mut self) {
        self.ready_at_by_item.clear();
        self.waiting.clear();
    }

    fn observe(&mut self, now: SimTime) {
        assert!(
            now >= self.now_latest,
            "time went backwards: {now} < {}",
            self.now_latest
        );
        self.now_latest = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> SimDuration {
        SimDuration::from_millis(ms)
    }

    fn get_item(queue: &mut DelayingQueue<&'static str>) -> &'static str {
        match queue.get() {
            Get::Item(item) => item,
            other => panic!("expected an item, got {other:?}"),
        }
    }

    /// client-go delaying_queue_test.go TestSimpleQueue: the fake clock's steps become
    /// `handle_timeout` calls; stepping past the heartbeat adds nothing more.
    #[test]
    fn test_simple_queue() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        let mut now = SimTime(1_000);
        queue.add_after("foo", now, ms(50));
        assert_eq!(queue.len(), 0, "should not have added");
        assert_eq!(queue.poll_timeout(), Some(SimTime(1_050)));
        now = now + ms(60);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 1, "should have added");
        let item = get_item(&mut queue);
        queue.done(&item);
        now = now + SimDuration::from_secs(10);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 0, "should not have added");
        assert_eq!(queue.poll_timeout(), None);
    }

    /// client-go delaying_queue_test.go TestDeduping: a waiting item keeps the earlier of its
    /// ready times, whichever add came first.
    #[test]
    fn test_deduping() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        let mut now = SimTime(1_000);
        queue.add_after("foo", now, ms(50));
        queue.add_after("foo", now, ms(70));
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.ready_at(&"foo"), Some(now + ms(50)));
        now = now + ms(60);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 1, "should have added at the first ready time");
        let item = get_item(&mut queue);
        queue.done(&item);
        now = now + ms(20);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 0, "the later add was merged away");

        // Again, but this time the earlier ready time comes second and overrides.
        queue.add_after("foo", now, ms(50));
        queue.add_after("foo", now, ms(30));
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.ready_at(&"foo"), Some(now + ms(30)));
        now = now + ms(40);
        queue.handle_timeout(now);
        assert_eq!(
            queue.len(),
            1,
            "should have added at the earlier ready time"
        );
        let item = get_item(&mut queue);
        queue.done(&item);
        now = now + ms(20);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.check_invariants(), Ok(()));
    }

    /// client-go delaying_queue_test.go TestAddTwoFireEarly.
    #[test]
    fn test_add_two_fire_early() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        let mut now = SimTime(1_000);
        queue.add_after("foo", now, SimDuration::from_secs(1));
        queue.add_after("bar", now, ms(50));
        assert_eq!(queue.len(), 0);
        now = now + ms(60);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 1);
        assert_eq!(get_item(&mut queue), "bar");
        queue.add_after("baz", now, SimDuration::from_secs(2));
        now = now + SimDuration::from_secs(1);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 1);
        assert_eq!(get_item(&mut queue), "foo");
        now = now + SimDuration::from_secs(2);
        queue.handle_timeout(now);
        assert_eq!(queue.len(), 1);
        assert_eq!(get_item(&mut queue), "baz");
    }

    /// client-go delaying_queue_test.go TestCopyShifting: items ready at once enter the queue
    /// in ready-time order, not add order.
    #[test]
    fn test_copy_shifting() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        let now = SimTime(1_000);
        queue.add_after("foo", now, SimDuration::from_secs(1));
        queue.add_after("bar", now, ms(500));
        queue.add_after("baz", now, ms(250));
        assert_eq!(queue.len(), 0);
        queue.handle_timeout(now + SimDuration::from_secs(2));
        assert_eq!(queue.len(), 3);
        assert_eq!(get_item(&mut queue), "baz");
        assert_eq!(get_item(&mut queue), "bar");
        assert_eq!(get_item(&mut queue), "foo");
    }

    /// SPEC §7: a zero delay adds at once; an early `handle_timeout` is a no-op; time never
    /// goes backwards.
    #[test]
    fn zero_delay_adds_now_and_an_early_timeout_does_nothing() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        queue.add_after("now", SimTime(10), SimDuration::ZERO);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.poll_timeout(), None);
        queue.add_after("later", SimTime(10), ms(5));
        queue.handle_timeout(SimTime(14));
        assert_eq!(queue.len(), 1, "one millisecond early");
        assert_eq!(queue.poll_timeout(), Some(SimTime(15)));
        queue.handle_timeout(SimTime(15));
        assert_eq!(queue.len(), 2, "ready exactly at its time");
        assert_eq!(queue.poll_timeout(), None);
    }

    /// SPEC §7: waiting items are dropped on shut down (either kind), and `add_after` is
    /// ignored afterwards.
    #[test]
    fn shut_down_drops_waiting_items() {
        for with_drain in [false, true] {
            let mut queue = DelayingQueue::new(Bugs::NONE);
            queue.add_after("foo", SimTime(0), ms(10));
            queue.add("bar");
            if with_drain {
                assert!(queue.shut_down_with_drain());
            } else {
                queue.shut_down();
            }
            assert_eq!(queue.poll_timeout(), None);
            queue.add_after("baz", SimTime(1), ms(10));
            queue.add_after("qux", SimTime(1), SimDuration::ZERO);
            assert_eq!(queue.waiting().count(), 0);
            queue.handle_timeout(SimTime(100));
            assert_eq!(get_item(&mut queue), "bar", "queued items still handed out");
            assert_eq!(queue.get(), Get::ShutDown);
            assert_eq!(queue.check_invariants(), Ok(()));
        }
    }

    /// A waiting item that is also added directly is processed once now, and its later ready
    /// time adds it once more (upstream keeps the heap entry; `Add` of a clean item queues).
    #[test]
    fn an_item_both_waiting_and_queued_runs_again_when_ready() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        queue.add_after("foo", SimTime(0), ms(10));
        assert_eq!(queue.add("foo"), Added::Queued);
        let item = get_item(&mut queue);
        queue.done(&item);
        queue.handle_timeout(SimTime(10));
        assert_eq!(get_item(&mut queue), "foo");
    }

    /// STYLE §Synthesis 4: a model asserts that time never goes backwards.
    #[test]
    #[should_panic(expected = "time went backwards")]
    fn time_going_backwards_panics() {
        let mut queue = DelayingQueue::new(Bugs::NONE);
        queue.handle_timeout(SimTime(5));
        queue.add_after("foo", SimTime(4), ms(1));
    }
}
