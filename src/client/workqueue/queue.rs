//! The basic work queue (client-go `util/workqueue/queue.go`, SPEC §7): a FIFO of items with a
//! `dirty` set (needs processing) and a `processing` set (handed out, not yet done).

use std::collections::{BTreeSet, VecDeque};

use crate::bug::{Bug, Bugs};

/// What [`Queue::get`] hands out (client-go `Get` returns `(item, shutdown)` and blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Get<T> {
    /// An item to process; the caller must pass it to `done` once finished.
    Item(T),
    /// Nothing queued and not shutting down: a real `Get` would block until an add or a shut
    /// down.
    Empty,
    /// Nothing queued and shutting down: the worker should exit.
    ShutDown,
}

/// What [`Queue::add`] did with the item (client-go `Add` returns nothing; these are its
/// branches, so a checker can tell them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Marked dirty and pushed at the back of the queue.
    Queued,
    /// Already queued: nothing changes (client-go calls `Touch`, a no-op for the default FIFO).
    Touched,
    /// Being processed: marked dirty, so `done` queues it again.
    Deferred,
    /// Being processed and already dirty: nothing changes, `done` queues it once.
    AlreadyDeferred,
    /// The queue is shutting down: dropped.
    Ignored,
}

/// client-go `workqueue.Typed`: fair, stingy, with shutdown and drain.
#[derive(Clone, Debug)]
pub struct Queue<T> {
    /// Processing order. Every element should be dirty and not processing.
    queue: VecDeque<T>,
    /// Items that need processing.
    dirty: BTreeSet<T>,
    /// Items handed out by `get` and not yet `done`; they may be dirty too.
    processing: BTreeSet<T>,
    shutting_down: bool,
    /// Set by `shut_down_with_drain`, cleared by `shut_down`.
    drain: bool,
    bugs: Bugs,
}

impl<T: Ord + Clone> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new(Bugs::NONE)
    }
}

impl<T: Ord + Clone> Queue<T> {
    /// An empty queue that is not shutting down (client-go `NewTyped`).
    pub fn new(bugs: Bugs) -> Queue<T> {
        Queue {
            queue: VecDeque::new(),
            dirty: BTreeSet::new(),
            processing: BTreeSet::new(),
            shutting_down: false,
            drain: false,
            bugs,
        }
    }

    /// Marks `item` as needing processing (client-go `Add`): ignored when shutting down, a no-op
    /// when already dirty, deferred to `done` while the item is being processed.
    pub fn add(&mut self, item: T) -> Added {
        if self.shutting_down {
            return Added::Ignored;
        }
        let processing = self.processing.contains(&item);
        if self.dirty.contains(&item) {
            return if processing {
                Added::AlreadyDeferred
            } else {
                Added::Touched
            };
        }
        self.dirty.insert(item.clone());
        // Planted: classic (SPEC §7 "one item is never processed by two workers at once")
        if processing && !self.bugs.is(Bug::WorkqueueQueuesItemInProcessing) {
            return Added::Deferred;
        }
        self.queue.push_back(item);
        Added::Queued
    }

    /// How many items are queued, not counting those being processed (client-go `Len`).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Pops the oldest item and marks it processing and clean (client-go `Get`). Items queued
    /// before a shut down are still handed out; `ShutDown` only once the queue is empty.
    pub fn get(&mut self) -> Get<T> {
        let Some(item) = self.queue.pop_front() else {
            return if self.shutting_down {
                Get::ShutDown
            } else {
                Get::Empty
            };
        };
        self.processing.insert(item.clone());
        self.dirty.remove(&item);
        Get::Item(item)
    }

    /// Marks `item` as done processing and queues it again if it was added meanwhile (client-go
    /// `Done`). Mirrors upstream in not checking that `item` was handed out: an unpaired `done`
    /// of a dirty item pushes it again, duplicating it in the queue (k/k#79934).
    pub fn done(&mut self, item: &T) {
        self.processing.remove(item);
        if self.dirty.contains(item) {
            self.queue.push_back(item.clone());
        }
    }

    /// New items are ignored from now on; `get` drains what is queued, then says `ShutDown`
    /// (client-go `ShutDown`). Also ends the wait of an earlier `shut_down_with_drain`.
    pub fn shut_down(&mut self) {
        self.drain = false;
        self.shutting_down = true;
    }

    /// Like [`Queue::shut_down`], but the caller then waits until nothing is being processed
    /// (client-go `ShutDownWithDrain`; it does not wait for queued items, k/k#141079). Returns
    /// whether that wait is already over; otherwise poll [`Queue::is_drained`].
    pub fn shut_down_with_drain(&mut self) -> bool {
        self.drain = true;
        self.shutting_down = true;
        self.is_drained()
    }

    /// Whether a `shut_down_with_drain` caller would have returned: shutting down and either
    /// nothing is being processed or a later `shut_down` aborted the wait (client-go's
    /// `for q.processing.Len() != 0 && q.drain` loop).
    pub fn is_drained(&self) -> bool {
        self.shutting_down && (self.processing.is_empty() || !self.drain)
    }

    /// Whether `shut_down` or `shut_down_with_drain` was called (client-go `ShuttingDown`).
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The queued items in the order `get` hands them out.
    pub fn queued(&self) -> impl Iterator<Item = &T> {
        self.queue.iter()
    }

    /// The items that need processing: queued, or added again while being processed.
    pub fn dirty(&self) -> impl Iterator<Item = &T> {
        self.dirty.iter()
    }

    /// The items handed out by `get` and not yet `done`.
    pub fn processing(&self) -> impl Iterator<Item = &T> {
        self.processing.iter()
    }

    /// Whether `item` needs processing, so a later `get` will hand it out.
    pub fn is_dirty(&self, item: &T) -> bool {
        self.dirty.contains(item)
    }

    /// Whether `item` was handed out by `get` and is not yet `done`.
    pub fn is_processing(&self, item: &T) -> bool {
        self.processing.contains(item)
    }

    /// Whether `item` is known to the queue (dirty or being processed), and whether the queue
    /// is shutting down (client-go `Find`).
    pub fn find(&self, item: &T) -> (bool, bool) {
        let found = self.dirty.contains(item) || self.processing.contains(item);
        (found, self.shutting_down)
    }

    /// Checks the bookkeeping named in the module doc: `queue_has_no_duplicates`,
    /// `queued_items_are_dirty`, `queued_items_are_not_processing`,
    /// `dirty_items_are_queued_or_processing`.
    pub fn check_invariants(&self) -> Result<(), String>
    where
        T: std::fmt::Debug,
    {
        let queued: BTreeSet<&T> = self.queue.iter().collect();
        if queued.len() != self.queue.len() {
            return Err(format!("queue_has_no_duplicates: queue {:?}", self.queue));
        }
        if let Some(item) = queued.iter().find(|item| !self.dirty.contains(**item)) {
            return Err(format!(
                "queued_items_are_dirty: {item:?} is queued but clean"
            ));
        }
        if let Some(item) = queued.iter().find(|item| self.processing.contains(**item)) {
            return Err(format!(
                "queued_items_are_not_processing: {item:?} is queued and processing"
            ));
        }
        let lost = self
            .dirty
            .iter()
            .find(|item| !queued.contains(item) && !self.processing.contains(*item));
        if let Some(item) = lost {
            return Err(format!(
                "dirty_items_are_queued_or_processing: {item:?} is dirty but neither"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A worker of client-go's test loops: holds at most one item between `get` and `done`.
    #[derive(Default)]
    struct Worker {
        holding: Option<i32>,
        exited: bool,
        /// How often this worker got each item (TestAddWhileProcessing's `counters`).
        counters: BTreeMap<i32, usize>,
    }

    /// The items the workers hold are exactly the processing set, each in one worker only.
    fn assert_one_worker_per_item(queue: &Queue<i32>, workers: &[Worker]) {
        let held: Vec<i32> = workers.iter().filter_map(|w| w.holding).collect();
        let distinct: BTreeSet<i32> = held.iter().copied().collect();
        assert_eq!(
            held.len(),
            distinct.len(),
            "an item in two workers: {held:?}"
        );
        assert!(distinct.iter().eq(queue.processing()));
        assert_eq!(queue.check_invariants(), Ok(()));
    }

    /// A queue shut down one of client-go's two ways (the tables of TestBasic and
    /// TestAddWhileProcessing).
    fn shut_down(queue: &mut Queue<i32>, with_drain: bool) {
        if with_drain {
            queue.shut_down_with_drain();
        } else {
            queue.shut_down();
        }
    }

    fn get_item(queue: &mut Queue<&'static str>) -> &'static str {
        match queue.get() {
            Get::Item(item) => item,
            other => panic!("expected an item, got {other:?}"),
        }
    }

    /// client-go queue_test.go TestBasic: 50 producers adding their number 50 times and 10
    /// workers, interleaved round-robin instead of goroutines; an add after shut down is
    /// never handed out, and every worker exits on an empty queue.
    #[test]
    fn test_basic() {
        const ADDED_AFTER_SHUT_DOWN: i32 = -1;
        for with_drain in [false, true] {
            let mut queue = Queue::new(Bugs::NONE);
            let mut workers: Vec<Worker> = (0..10).map(|_| Worker::default()).collect();
            let mut handed_out = 0;
            let mut step = |queue: &mut Queue<i32>, workers: &mut [Worker], index: usize| {
                let worker = &mut workers[index];
                if let Some(item) = worker.holding.take() {
                    queue.done(&item);
                    return;
                }
                match queue.get() {
                    Get::Item(item) => {
                        assert_ne!(
                            item, ADDED_AFTER_SHUT_DOWN,
                            "got an item added after shutdown"
                        );
                        handed_out += 1;
                        worker.holding = Some(item);
                    }
                    Get::Empty => {}
                    Get::ShutDown => worker.exited = true,
                }
            };
            for _ in 0..50 {
                for producer in 0..50 {
                    queue.add(producer);
                    step(&mut queue, &mut workers, producer as usize % 10);
                    assert_one_worker_per_item(&queue, &workers);
                }
            }
            shut_down(&mut queue, with_drain);
            assert_eq!(queue.add(ADDED_AFTER_SHUT_DOWN), Added::Ignored);
            for round in 0..1000 {
                assert!(round < 999, "workers never exited");
                if workers.iter().all(|w| w.exited) {
                    break;
                }
                for index in 0..workers.len() {
                    if !workers[index].exited {
                        step(&mut queue, &mut workers, index);
                        assert_one_worker_per_item(&queue, &workers);
                    }
                }
            }
            assert_eq!(queue.len(), 0);
            assert!(queue.is_drained());
            // 2500 adds of 50 items, collapsed while queued: far fewer runs, at least one each.
            assert!((50..2500).contains(&handed_out), "{handed_out} runs");
        }
    }

    /// client-go queue_test.go TestAddWhileProcessing: every worker re-adds an item it got
    /// fewer than two times before calling done. Goroutines become a round-robin interleaving
    /// with the re-add and the done in separate steps; checks that each re-add that was not
    /// ignored gives exactly one more run.
    #[test]
    fn test_add_while_processing() {
        for with_drain in [false, true] {
            let mut queue = Queue::new(Bugs::NONE);
            let mut workers: Vec<Worker> = (0..10).map(|_| Worker::default()).collect();
            let mut runs: BTreeMap<i32, usize> = BTreeMap::new();
            let mut readds: BTreeMap<i32, usize> = BTreeMap::new();
            let mut deferred = 0;
            let mut step = |queue: &mut Queue<i32>, worker: &mut Worker| {
                if let Some(item) = worker.holding.take() {
                    queue.done(&item);
                    return;
                }
                match queue.get() {
                    Get::Item(item) => {
                        *runs.entry(item).or_default() += 1;
                        let count = worker.counters.entry(item).or_default();
                        *count += 1;
                        if *count < 2 {
                            match queue.add(item) {
                                Added::Deferred => {
                                    deferred += 1;
                                    *readds.entry(item).or_default() += 1;
                                }
                                Added::Ignored => {}
                                other => panic!("re-add while processing gave {other:?}"),
                            }
                        }
                        worker.holding = Some(item);
                    }
                    Get::Empty => {}
                    Get::ShutDown => worker.exited = true,
                }
            };
            for producer in 0..50 {
                queue.add(producer);
                let index = producer as usize % workers.len();
                step(&mut queue, &mut workers[index]);
                assert_one_worker_per_item(&queue, &workers);
            }
            shut_down(&mut queue, with_drain);
            for round in 0..1000 {
                assert!(round < 999, "workers never exited");
                if workers.iter().all(|w| w.exited) {
                    break;
                }
                for index in 0..workers.len() {
                    if !workers[index].exited {
                        step(&mut queue, &mut workers[index]);
                        assert_one_worker_per_item(&queue, &workers);
                    }
                }
            }
            assert_eq!(queue.len(), 0);
            assert!(deferred > 0, "no add landed while processing");
            for producer in 0..50 {
                let expected = 1 + readds.get(&producer).copied().unwrap_or(0);
                assert_eq!(runs[&producer], expected, "runs of {producer}");
            }
        }
    }

    /// client-go queue_test.go TestFind: an added item is found while dirty and while
    /// processing.
    #[test]
    fn test_find() {
        let mut queue = Queue::new(Bugs::NONE);
        assert_eq!(queue.find(&"foo"), (false, false), "queue is empty");
        queue.add("foo");
        assert_eq!(queue.find(&"foo"), (true, false), "found in dirty");
        assert_eq!(get_item(&mut queue), "foo");
        assert_eq!(queue.find(&"foo"), (true, false), "found in processing");
        queue.done(&"foo");
        assert_eq!(queue.find(&"foo"), (false, false));
        queue.shut_down();
        assert_eq!(queue.find(&"foo"), (false, true));
    }

    /// client-go queue_test.go TestLen.
    #[test]
    fn test_len() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        assert_eq!(queue.len(), 1);
        queue.add("bar");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.add("foo"), Added::Touched);
        assert_eq!(
            queue.len(),
            2,
            "adding a queued item does not grow the queue"
        );
    }

    /// client-go queue_test.go TestReinsert.
    #[test]
    fn test_reinsert() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        let item = get_item(&mut queue);
        assert_eq!(item, "foo");
        assert_eq!(queue.add(item), Added::Deferred);
        assert_eq!(queue.len(), 0, "not queued while processing");
        queue.done(&item);
        assert_eq!(get_item(&mut queue), "foo", "back on the queue after done");
        queue.done(&item);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.get(), Get::Empty);
    }

    /// client-go queue_test.go TestCollapse: upstream traces `Touch` through a custom queue;
    /// here the second add reports [`Added::Touched`].
    #[test]
    fn test_collapse() {
        let mut queue = Queue::new(Bugs::NONE);
        assert_eq!(queue.add("bar"), Added::Queued);
        assert_eq!(queue.add("bar"), Added::Touched);
        let item = get_item(&mut queue);
        assert_eq!(item, "bar");
        queue.done(&item);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.get(), Get::Empty);
    }

    /// client-go queue_test.go TestCollapseWhileProcessing: the second worker's blocked `Get`
    /// is a `Get::Empty` until the first worker's done; no `Touch` while processing.
    #[test]
    fn test_collapse_while_processing() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        let first = get_item(&mut queue);
        assert_eq!(queue.add("foo"), Added::Deferred);
        assert_eq!(
            queue.add("foo"),
            Added::AlreadyDeferred,
            "no touch while processing"
        );
        assert_eq!(
            queue.get(),
            Get::Empty,
            "the other worker blocks until done"
        );
        queue.done(&first);
        let second = get_item(&mut queue);
        assert_eq!(second, "foo");
        queue.done(&second);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.get(), Get::Empty);
    }

    /// client-go queue_test.go TestQueueDrainageUsingShutDownWithDrain: the drain waits for
    /// both items in processing, not for the queue.
    #[test]
    fn test_queue_drainage_using_shut_down_with_drain() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        queue.add("bar");
        let first = get_item(&mut queue);
        let second = get_item(&mut queue);
        assert!(
            !queue.shut_down_with_drain(),
            "two items are being processed"
        );
        assert_eq!(queue.get(), Get::ShutDown);
        queue.done(&first);
        assert!(!queue.is_drained(), "one item is still being processed");
        queue.done(&second);
        assert!(queue.is_drained());
    }

    /// client-go queue_test.go TestNoQueueDrainageUsingShutDown: shut down does not wait for
    /// the items being processed.
    #[test]
    fn test_no_queue_drainage_using_shut_down() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        queue.add("bar");
        get_item(&mut queue);
        get_item(&mut queue);
        queue.shut_down();
        assert!(queue.shutting_down());
        assert!(queue.is_drained(), "nothing waits for processing");
        assert_eq!(queue.processing().count(), 2);
    }

    /// client-go queue_test.go TestForceQueueShutdownUsingShutDown: a shut down after a
    /// shut down with drain ends the drain's wait.
    #[test]
    fn test_force_queue_shutdown_using_shut_down() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        queue.add("bar");
        get_item(&mut queue);
        get_item(&mut queue);
        assert!(!queue.shut_down_with_drain());
        assert_eq!(queue.get(), Get::ShutDown);
        assert!(!queue.is_drained());
        queue.shut_down();
        assert!(queue.is_drained(), "shut down aborts the drain");
        assert_eq!(queue.processing().count(), 2);
    }

    /// client-go queue_test.go TestQueueDrainageUsingShutDownWithDrainWithDirtyItem: done
    /// queues an item added while processing, even while shutting down.
    #[test]
    fn test_queue_drainage_using_shut_down_with_drain_with_dirty_item() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        let gotten = get_item(&mut queue);
        queue.add("foo");
        assert!(!queue.shut_down_with_drain());
        assert_eq!(queue.get(), Get::ShutDown);
        queue.done(&gotten);
        assert!(queue.is_drained(), "nothing is being processed");
        let again = get_item(&mut queue);
        assert!(!queue.is_drained());
        queue.done(&again);
        assert_eq!(queue.get(), Get::ShutDown, "now really done");
        assert!(queue.is_drained());
    }

    /// client-go queue_test.go TestGarbageCollection, adapted: Rust has no collector to
    /// watch, so it checks that the queue keeps no trace of an item after add, get and done.
    #[test]
    fn test_garbage_collection() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add(String::from("hello"));
        let item = match queue.get() {
            Get::Item(item) => item,
            other => panic!("expected an item, got {other:?}"),
        };
        assert!(queue.is_processing(&item));
        queue.done(&item);
        assert_eq!(queue.queued().count(), 0);
        assert_eq!(queue.dirty().count(), 0);
        assert_eq!(queue.processing().count(), 0);
    }

    /// k/k#79934: Get and Done must be paired; `Add, Done, Done` without a Get queues the
    /// item three times, which `check_invariants` reports, and then two workers get it at once,
    /// which a checker sees through `is_processing`.
    #[test]
    fn unpaired_done_of_a_dirty_item_duplicates_it() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add("foo");
        queue.done(&"foo");
        queue.done(&"foo");
        assert_eq!(queue.len(), 3);
        let error = queue.check_invariants().unwrap_err();
        assert!(error.starts_with("queue_has_no_duplicates"), "{error}");
        assert_eq!(get_item(&mut queue), "foo");
        assert!(queue.is_processing(&"foo"));
        assert_eq!(
            get_item(&mut queue),
            "foo",
            "handed out while already processing"
        );
    }

    /// SPEC §7: an add while shutting down is dropped, but `get` still hands out what was
    /// queued before, and `done` still re-queues a dirty item.
    #[test]
    fn get_after_shut_down_hands_out_queued_items() {
        let mut queue = Queue::new(Bugs::NONE);
        queue.add(1);
        queue.add(2);
        let one = match queue.get() {
            Get::Item(item) => item,
            other => panic!("expected an item, got {other:?}"),
        };
        queue.add(1);
        queue.shut_down();
        assert_eq!(queue.add(3), Added::Ignored);
        assert!(!queue.is_dirty(&3));
        assert_eq!(queue.get(), Get::Item(2));
        assert_eq!(queue.get(), Get::ShutDown);
        queue.done(&one);
        assert_eq!(queue.get(), Get::Item(1), "dirty item re-queued by done");
        queue.done(&1);
        queue.done(&2);
        assert_eq!(queue.get(), Get::ShutDown);
        assert_eq!(queue.check_invariants(), Ok(()));
    }
}
