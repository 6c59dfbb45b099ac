//! The controller runtime: informer notifications in, keys through a rate-limited work queue,
//! N workers reconciling one key each (sample-controller `processNextWorkItem`).
//!
//! Sans-IO: the world tells it about notifications and time, asks a worker to `take` a key,
//! runs `reconcile` with a lister and a client, and later `finish`es the worker; the runtime
//! keeps the facts a checker reads (who holds what, the queue, the last add and take of
//! every key).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bug::{Bug, Bugs};
use crate::client::Notification;
use crate::client::workqueue::{
    DefaultControllerRateLimiter, Get, RateLimitingQueue, default_controller_rate_limiter,
};
use crate::object::ObjectKey;
use crate::sim::{SimDuration, SimTime};

use super::api::{Client, Controller, Enqueue, Lister, ReconcileError};

/// The work queue every controller gets: client-go's default controller rate limiter.
pub type ControllerQueue = RateLimitingQueue<ObjectKey, DefaultControllerRateLimiter<ObjectKey>>;

/// What became of a key once its worker finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finished {
    /// Success: its failures are forgotten.
    Forgotten,
    /// Failure: added again after this delay.
    Requeued(SimDuration),
    /// Failure, and the key was dropped (the `DropKeyOnError` bug).
    Dropped,
}

/// A controller's queue and workers around the user's code.
pub struct ControllerRuntime {
    queue: ControllerQueue,
    /// The key each worker holds, between `take` and `finish`.
    workers: Vec<Option<ObjectKey>>,
    code: Box<dyn Controller>,
    /// A sequence number per add and per take, to order them.
    sequence: u64,
    last_add: BTreeMap<ObjectKey, u64>,
    last_take: BTreeMap<ObjectKey, u64>,
    bugs: Bugs,
}

impl ControllerRuntime {
    /// `workers` idle workers around `code`.
    pub fn new(workers: usize, code: Box<dyn Controller>, bugs: Bugs) -> ControllerRuntime {
        ControllerRuntime {
            queue: RateLimitingQueue::new(default_controller_rate_limiter(), bugs),
            workers: vec![None; workers],
            code,
            sequence: 0,
            last_add: BTreeMap::new(),
            last_take: BTreeMap::new(),
            bugs,
        }
    }

    /// The user's event handler gets one notification; returns how many keys it added.
    pub fn handle_notification(&mut self, now: SimTime, notification: &Notification) -> usize {
        let mut enqueue = Enqueue::new(now);
        match notification {
            Notification::Add { obj, .. } => self.code.on_add(obj, &mut enqueue),
            Notification::Update { old, new } => self.code.on_update(old, new, &mut enqueue),
            Notification::Delete(deleted) => {
                self.code
                    .on_delete(deleted.key(), deleted.state(), &mut enqueue);
            }
        }
        let keys = enqueue.into_keys();
        let added = keys.len();
        for key in keys {
            self.note_add(&key);
            self.queue.add(key);
        }
        added
    }

    /// Worker `worker`, idle, takes the next key, if any (`queue.Get`).
    pub fn take(&mut self, worker: usize) -> Option<ObjectKey> {
        debug_assert!(self.workers[worker].is_none(), "worker {worker} is busy");
        let Get::Item(key) = self.queue.get() else {
            return None;
        };
        self.sequence += 1;
        self.last_take.insert(key.clone(), self.sequence);
        self.workers[worker] = Some(key.clone());
        Some(key)
    }

    /// Runs the user's reconcile of the key worker `worker` holds.
    pub fn reconcile(
        &mut self,
        worker: usize,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), ReconcileError> {
        let key = self.workers[worker]
            .clone()
            .expect("a worker reconciles what it took");
        self.code.reconcile(&key, lister, client)
    }

    /// Worker `worker` is done with its key: forget it on success, add it rate limited on
    /// failure, then `Done` (sample-controller `processNextWorkItem`).
    pub fn finish(
        &mut self,
        now: SimTime,
        worker: usize,
        result: &Result<(), ReconcileError>,
    ) -> Finished {
        let key = self.workers[worker].take().expect("a busy worker finishes");
        let finished = match result {
            Ok(()) => {
                self.queue.forget(&key);
                Finished::Forgotten
            }
            // Planted: classic (sample-controller processNextWorkItem requeues on error) (C8)
            Err(_) if self.bugs.is(Bug::DropKeyOnError) => {
                self.queue.forget(&key);
                Finished::Dropped
            }
            Err(_) => {
                self.note_add(&key);
                Finished::Requeued(self.queue.add_rate_limited(key.clone(), now))
            }
        };
        self.queue.done(&key);
        // Planted: k/k#79934, PR #141079 (B21)
        if result.is_err() && self.bugs.is(Bug::WorkqueueUnpairedDone) {
            self.queue.done(&key);
        }
        finished
    }

    /// When the queue next wants `handle_timeout` (a rate-limited key comes due).
    pub fn poll_timeout(&self) -> Option<SimTime> {
        self.queue.poll_timeout()
    }

    /// Moves the keys due at `now` into the queue.
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.queue.handle_timeout(now);
    }

    /// The workers that hold no key.
    pub fn idle_workers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.workers.len()).filter(|&worker| self.workers[worker].is_none())
    }

    /// The key each worker holds.
    pub fn workers(&self) -> &[Option<ObjectKey>] {
        &self.workers
    }

    /// The work queue, for its getters.
    pub fn queue(&self) -> &ControllerQueue {
        &self.queue
    }

    /// Nothing queued, waiting or held by a worker.
    pub fn is_idle(&self) -> bool {
        let delaying = self.queue.delaying_queue();
        delaying.is_empty()
            && delaying.waiting().next().is_none()
            && self.workers.iter().all(Option::is_none)
    }

    /// The keys whose last add came after their last take: work a settled controller lost.
    pub fn unprocessed_adds(&self) -> impl Iterator<Item = &ObjectKey> + '_ {
        self.last_add.iter().filter_map(|(key, added)| {
            let taken = self.last_take.get(key).copied().unwrap_or(0);
            (taken < *added).then_some(key)
        })
    }

    fn note_add(&mut self, key: &ObjectKey) {
        self.sequence += 1;
        self.last_add.insert(key.clone(), self.sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Indexer;
    use crate::controller::{EventHandler, Reconciler, Write, WriteError, Writer};
    use crate::object::Object;

    /// Enqueues every added object's key; fails every reconcile while `failing`.
    struct Flaky {
        failing: bool,
    }

    impl EventHandler for Flaky {
        fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
            queue.add(object.key.clone());
        }
    }

    impl Reconciler for Flaky {
        fn reconcile(
            &mut self,
            _key: &ObjectKey,
            _lister: &Lister<'_>,
            _client: &mut Client<'_>,
        ) -> Result<(), ReconcileError> {
            if self.failing {
                return Err(ReconcileError("flaky".into()));
            }
            Ok(())
        }
    }

    struct NoWrites;

    impl Writer for NoWrites {
        fn write(&mut self, _write: Write) -> Result<Object, WriteError> {
            Err(WriteError::Unavailable)
        }
    }

    fn added(key: &str) -> Notification {
        Notification::Add {
            obj: Object::bare(key, 1),
            is_in_initial_list: false,
        }
    }

    fn reconcile(runtime: &mut ControllerRuntime, worker: usize) -> Result<(), ReconcileError> {
        let indexer = Indexer::new(Bugs::NONE);
        let lister = Lister::new(&indexer, SimTime::ZERO);
        runtime.reconcile(worker, &lister, &mut Client::new(&mut NoWrites))
    }

    #[test]
    fn a_failed_reconcile_comes_back_rate_limited_and_a_success_forgets_it() {
        let code = Box::new(Flaky { failing: true });
        let mut runtime = ControllerRuntime::new(1, code, Bugs::NONE);
        assert_eq!(
            runtime.handle_notification(SimTime::ZERO, &added("ns/a")),
            1
        );
        let key = runtime.take(0).expect("ns/a is queued");
        let result = reconcile(&mut runtime, 0);
        let finished = runtime.finish(SimTime::ZERO, 0, &result);
        assert_eq!(finished, Finished::Requeued(SimDuration::from_millis(5)));
        assert_eq!(runtime.take(0), None, "not before its delay");
        assert!(!runtime.is_idle(), "the key waits");
        assert_eq!(runtime.unprocessed_adds().collect::<Vec<_>>(), vec![&key]);
        runtime.handle_timeout(SimTime(5));
        assert_eq!(runtime.take(0), Some(key.clone()));
        assert_eq!(runtime.finish(SimTime(5), 0, &Ok(())), Finished::Forgotten);
        assert_eq!(runtime.queue().num_requeues(&key), 0);
        assert!(runtime.is_idle());
        assert_eq!(runtime.unprocessed_adds().count(), 0);
    }

    #[test]
    fn a_key_added_while_its_worker_holds_it_waits_for_finish() {
        let mut runtime = ControllerRuntime::new(2, Box::new(Flaky { failing: false }), Bugs::NONE);
        runtime.handle_notification(SimTime::ZERO, &added("ns/a"));
        assert!(runtime.take(0).is_some());
        runtime.handle_notification(SimTime::ZERO, &added("ns/a"));
        assert_eq!(runtime.take(1), None, "one key, one worker");
        runtime.finish(SimTime::ZERO, 0, &Ok(()));
        assert_eq!(
            runtime.take(1),
            Some(ObjectKey::new("ns/a")),
            "it runs again"
        );
    }

    #[test]
    fn the_planted_drop_forgets_a_failed_key() {
        let bugs = Bugs::new(Some(Bug::DropKeyOnError));
        let mut runtime = ControllerRuntime::new(1, Box::new(Flaky { failing: true }), bugs);
        runtime.handle_notification(SimTime::ZERO, &added("ns/a"));
        runtime.take(0);
        let result = reconcile(&mut runtime, 0);
        assert_eq!(runtime.finish(SimTime::ZERO, 0, &result), Finished::Dropped);
        assert!(runtime.is_idle(), "the work is lost");
    }
}
