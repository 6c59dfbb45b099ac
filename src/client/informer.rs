//! The shared index informer (client-go `tools/cache/shared_informer.go` `sharedIndexInformer`,
//! with the controller's `processLoop` and `HandleDeltas`; SPEC §5.2).
//!
//! Contract (client-go's doc comment, paraphrased), each sentence with the check that holds it:
//! - "the cache is eventually consistent": at quiescence after a relist the indexer equals the
//!   list and every handler mirror equals the indexer (`check_mirror_equals_indexer`, P1, B3);
//! - "a notification happens after the cache/index update, and later updates may already be
//!   visible": `check_notification_follows_cache` at every delivery (P3);
//! - "notifications to one handler are sequential and, per object, in order": one queue per
//!   handler, delivered front to back ([`SharedIndexInformer::deliver_next`]);
//! - `registration.HasSynced` means the handler saw its initial list: recorded when it first
//!   turns true ([`SharedIndexInformer::handler_synced`], B20).
//!
//! Surface, all sans-IO (time comes in as `now`, never read; it must not go backwards):
//! - (A) getters: [`SharedIndexInformer::indexer`], `fifo`, `processor`, `has_synced`,
//!   `handler_has_synced`, `handler_mirror`, `pending_notifications`, `is_quiescent`;
//! - (B) store side, what the reflector emits: `replace`, `add`, `update`, `delete`, `bookmark`,
//!   `resync` (the resync timer, every [`SharedIndexInformer::resync_check_period`]);
//! - (C) consumer side, client-go `processLoop`: [`SharedIndexInformer::process_next`], or its
//!   two halves `pop_next` and `finish_processing` to observe the state in between (SPEC N6);
//! - (D) handlers: `add_event_handler`, `remove_event_handler`, `deliver_next`,
//!   `panic_next_delivery`.
//!
//! Calling order: [`SharedIndexInformer::run`] first (client-go `Run`; handlers may be added
//! before). Between `pop_next` and `finish_processing` the FIFO lock is held: no store call.
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::client::{FifoKind, InformerConfig, SharedIndexInformer};
//! use informer_sim::object::Object;
//! use informer_sim::sim::{SimDuration, SimTime};
//!
//! let now = SimTime::ZERO;
//! let mut informer = SharedIndexInformer::new(InformerConfig::new(FifoKind::Real), Bugs::NONE);
//! let handler = informer.add_event_handler(now, SimDuration::ZERO);
//! informer.run(now);
//! informer.replace(now, vec![Object::bare("ns/a", 5)], 5);
//! while informer.process_next(now).is_some() {}
//! assert!(informer.has_synced());
//! assert!(!informer.handler_has_synced(handler));
//! while informer.deliver_next(now, handler).is_some() {}
//! assert!(informer.handler_has_synced(handler));
//! assert!(informer.is_quiescent());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::bug::{Bug, Bugs};
use crate::client::delta::{Delta, DeltaObject};
use crate::client::fifo::{Fifo, FifoKind};
use crate::client::indexer::{
    APP_LABEL_INDEX, IndexFunc, Indexer, LABEL_PAIRS_INDEX, NAMESPACE_INDEX, app_label_index_func,
    label_pairs_index_func, meta_namespace_index_func,
};
use crate::client::process_deltas::{
    Notification, is_sync, process_deltas, process_deltas_in_batch,
};
use crate::client::processor::{
    HandlerId, HandlerOutcome, HandlerSynced, MINIMUM_RESYNC_PERIOD, ProcessorListener,
    SharedProcessor, determine_resync_period,
};
use crate::client::queue::{PopWait, Popped};
use crate::client::transform::TransformLedger;
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::{SimDuration, SimTime};

/// How to build an informer.
#[derive(Clone, Debug)]
pub struct InformerConfig {
    /// The queue mode.
    pub fifo: FifoKind,
    /// How often the reflector's resync timer asks the processor whether to resync (client-go
    /// `resyncCheckPeriod`); `None` (or zero) disables resync.
    pub resync_check_period: Option<SimDuration>,
    /// The indexer's index functions, exactly these.
    pub indexers: Vec<(String, IndexFunc)>,
    /// Pop RealFIFO with `PopBatch` and apply each batch as one indexer transaction
    /// (`InOrderInformersBatchProcess`); DeltaFIFO has no batches and ignores it.
    pub batch_process: bool,
    /// The informer has a `TransformFunc` ([`crate::client::transform`]).
    pub transform: bool,
}

impl InformerConfig {
    /// `fifo`, no resync, no batches, and the built-in indexes of [`Indexer::new`].
    pub fn new(fifo: FifoKind) -> InformerConfig {
        let indexers: [(&str, IndexFunc); 3] = [
            (NAMESPACE_INDEX, meta_namespace_index_func),
            (APP_LABEL_INDEX, app_label_index_func),
            (LABEL_PAIRS_INDEX, label_pairs_index_func),
        ];
        InformerConfig {
            fifo,
            resync_check_period: None,
            indexers: indexers
                .into_iter()
                .map(|(name, index_func)| (name.to_owned(), index_func))
                .collect(),
            batch_process: false,
            transform: false,
        }
    }
}

/// One notification as the informer distributed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distributed {
    /// The handler call.
    pub notification: Notification,
    /// Whether it was a sync (an update with an unchanged resource version).
    pub is_sync: bool,
    /// The listeners it was queued for, in registration order.
    pub recipients: Vec<HandlerId>,
}

/// What one pop did (for traces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// The popped deltas and their initial-list flag.
    pub popped: Popped,
    /// `has_synced()` as a concurrent reader saw it after the pop, before processing (with
    /// DeltaFIFO, true while the last initial item is still being applied: SPEC N6).
    pub has_synced_while_processing: bool,
    /// The notifications, in order.
    pub distributed: Vec<Distributed>,
    /// Object states written to the indexer that the transform ran on more than once, with
    /// the number of runs.
    pub transformed_again: Vec<(Object, u32)>,
}

/// What one handler call did (for traces and the P3 oracle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The notification the handler got.
    pub notification: Notification,
    /// Whether the handler ran or panicked.
    pub outcome: HandlerOutcome,
}

/// Where the consumer's Pop stood when the informer stopped (SPEC §8 B28).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// At the Close.
    pub at_close: PopWait,
    /// After the Close and the Pop's next step.
    pub after: PopWait,
}

/// client-go `sharedIndexInformer` with its controller's consumer loop.
#[derive(Clone, Debug)]
pub struct SharedIndexInformer {
    indexer: Indexer,
    fifo: Fifo,
    processor: SharedProcessor,
    /// Zero when the informer does not resync.
    resync_check_period: SimDuration,
    /// Pops take batches ([`InformerConfig::batch_process`]).
    batch_process: bool,
    /// Where the transform ran, if the informer has one.
    transforms: Option<TransformLedger>,
    started: bool,
    /// The `synced` latch: never resets.
    synced: bool,
    /// Popped and not yet processed (the FIFO lock is held).
    in_flight: Option<Popped>,
    /// The keys of the first Replace, if it was the initial list (B20 oracle).
    initial_list_keys: Option<BTreeSet<ObjectKey>>,
    /// Keys of the initial list whose deltas were not processed yet.
    initial_keys_unprocessed: BTreeSet<ObjectKey>,
    /// The next processing reports an error (fault injection, SPEC §8 B24).
    process_error_next: bool,
    /// Planted bugs of the informer itself (SPEC §8 B3, B24).
    bugs: Bugs,
    now: SimTime,
}

impl SharedIndexInformer {
    /// A stopped informer with an empty indexer and queue, with `bugs` planted in it, its FIFO,
    /// its indexer and its listeners.
    pub fn new(config: InformerConfig, bugs: Bugs) -> SharedIndexInformer {
        let indexers: Vec<(&str, IndexFunc)> = config
            .indexers
            .iter()
            .map(|(name, index_func)| (name.as_str(), *index_func))
            .collect();
        SharedIndexInformer {
            indexer: Indexer::with_indexers(&indexers, bugs),
            fifo: Fifo::new(config.fifo, bugs),
            processor: SharedProcessor::new(bugs),
            resync_check_period: config.resync_check_period.unwrap_or(SimDuration::ZERO),
            batch_process: config.batch_process,
            transforms: config.transform.then(TransformLedger::default),
            started: false,
            synced: false,
            in_flight: None,
            initial_list_keys: None,
            initial_keys_unprocessed: BTreeSet::new(),
            process_error_next: false,
            bugs,
            now: SimTime::ZERO,
        }
    }

    /// Starts the informer (client-go `Run`): store calls are allowed from now on, and handlers
    /// added later get the indexer snapshot.
    pub fn run(&mut self, now: SimTime) {
        assert!(!self.started, "run more than once");
        self.advance(now);
        self.started = true;
    }

    /// Whether [`SharedIndexInformer::run`] was called.
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// The resync timer's period (client-go `resyncCheckPeriod`, lowered by handlers added
    /// before start); `None` when the informer does not resync.
    pub fn resync_check_period(&self) -> Option<SimDuration> {
        (self.resync_check_period != SimDuration::ZERO).then_some(self.resync_check_period)
    }

    // ---- (B) store side --------------------------------------------------------------------

    /// A relist at `resource_version` (client-go `Store.Replace`). The first Replace before
    /// the informer synced is the initial list: its keys are kept for the B20 oracle.
    pub fn replace(&mut self, now: SimTime, items: Vec<Object>, resource_version: ResourceVersion) {
        self.replace_transformed(now, items, resource_version, 1);
    }

    /// A watch-list's initial state at `resource_version`: a Replace with its temporary
    /// store's objects, which that store's `Add` already transformed once (client-go
    /// `watchList`; k/k#131799).
    pub fn replace_from_watch_list(
        &mut self,
        now: SimTime,
        items: Vec<Object>,
        resource_version: ResourceVersion,
    ) {
        self.replace_transformed(now, items, resource_version, 2);
    }

    fn replace_transformed(
        &mut self,
        now: SimTime,
        items: Vec<Object>,
        resource_version: ResourceVersion,
        transform_runs: u32,
    ) {
        self.begin_store_call(now);
        if let Some(transforms) = &mut self.transforms {
            items
                .iter()
                .for_each(|obj| transforms.queued(obj, transform_runs));
        }
        if self.initial_list_keys.is_none() && !self.fifo.has_synced() {
            let keys: BTreeSet<ObjectKey> = items.iter().map(|obj| obj.key.clone()).collect();
            self.processor.expect_initial_keys(&keys);
            self.initial_keys_unprocessed = keys.clone();
            self.initial_list_keys = Some(keys);
        }
        self.fifo.replace(items, resource_version, &self.indexer);
        self.end_step(now);
    }

    /// A watch ADDED event.
    pub fn add(&mut self, now: SimTime, object: Object) {
        self.begin_store_call(now);
        self.transformed_once(&object);
        self.fifo.add(object);
        self.end_step(now);
    }

    /// A watch MODIFIED event.
    pub fn update(&mut self, now: SimTime, object: Object) {
        self.begin_store_call(now);
        self.transformed_once(&object);
        self.fifo.update(object);
        self.end_step(now);
    }

    /// A watch DELETED event; returns whether it was queued (DeltaFIFO drops a key that is
    /// neither known nor queued, SPEC N2).
    pub fn delete(&mut self, now: SimTime, object: Object) -> bool {
        self.begin_store_call(now);
        let queued = self.fifo.delete(DeltaObject::Object(object), &self.indexer);
        self.end_step(now);
        queued
    }

    /// A watch bookmark (queued only by the atomic RealFIFO).
    pub fn bookmark(&mut self, now: SimTime, resource_version: ResourceVersion) {
        self.begin_store_call(now);
        self.fifo.bookmark(resource_version);
        self.end_step(now);
    }

    /// The resync timer fired (client-go reflector `startResync`): resyncs the FIFO only if
    /// `processor.shouldResync` flags a listener, which also sets who gets sync notifications.
    /// Returns whether it resynced.
    pub fn resync(&mut self, now: SimTime) -> bool {
        assert!(
            self.resync_check_period().is_some(),
            "resync without resync"
        );
        self.begin_store_call(now);
        let resync_needed = self.processor.should_resync(now);
        if resync_needed {
            self.fifo.resync(&self.indexer);
        }
        self.end_step(now);
        resync_needed
    }

    // ---- (C) consumer side -----------------------------------------------------------------

    /// One turn of client-go `processLoop`: pop, apply to the indexer, distribute, done.
    /// `None` if the FIFO is empty.
    pub fn process_next(&mut self, now: SimTime) -> Option<Processed> {
        self.pop_next(now)?;
        Some(self.finish_processing(now))
    }

    /// The first half of [`SharedIndexInformer::process_next`]: pops the next item (or batch)
    /// and holds it. DeltaFIFO lowers its initial count here, so `has_synced` may already be
    /// true.
    pub fn pop_next(&mut self, now: SimTime) -> Option<&Popped> {
        assert!(self.started, "pop before run");
        assert!(self.in_flight.is_none(), "pop while processing");
        self.advance(now);
        let popped = if self.batch_process {
            self.fifo.pop_batch()
        } else {
            self.fifo.pop()
        };
        self.in_flight = Some(popped.ok()?);
        self.end_step(now);
        self.in_flight.as_ref()
    }

    /// The second step of a Pop that found the queue empty and has not waited yet (B28).
    pub fn wait_for_items(&mut self) {
        self.fifo.wait();
    }

    /// Stops the informer: client-go controller.Run defers `Queue.Close`, and processLoop
    /// returns once Pop reports `ErrFIFOClosed`. A Pop between its `closed` check and its wait
    /// takes that step first, as its goroutine still would. Returns where Pop stood at the
    /// Close and where it stands after: still `Waiting` means processLoop never returns.
    pub fn stop(&mut self) -> Stopped {
        let at_close = self.fifo.pop_wait();
        self.fifo.close();
        self.fifo.wait();
        Stopped {
            at_close,
            after: self.fifo.pop_wait(),
        }
    }

    /// The second half: mirrors client-go `HandleDeltas` (processDeltas with the informer as
    /// handler; `OnUpdate` is a sync iff the resource version is unchanged), or for a batch
    /// `HandleBatchDeltas` (one indexer transaction, then the calls), then `done`.
    pub fn finish_processing(&mut self, now: SimTime) -> Processed {
        let popped = self
            .in_flight
            .take()
            .expect("finish_processing without pop_next");
        self.advance(now);
        let has_synced_while_processing = self.synced;
        let process = match self.fifo {
            Fifo::Real(_) if self.batch_process => process_deltas_in_batch,
            _ => process_deltas,
        };
        let notifications = process(&mut self.indexer, &popped.deltas, popped.is_in_initial_list);
        self.mark_initial_keys_processed(&popped.deltas);
        let distributed: Vec<Distributed> = notifications
            .into_iter()
            .enumerate()
            .map(|(index, notification)| {
                let from_relist = matches!(popped.deltas.get(index), Some(Delta::Replaced(_)));
                let is_sync = match &notification {
                    // Planted: k/k#86015 (B3), before cg@08cc53159 every relist item was a Sync
                    // delta and went out as a sync, changed or not.
                    Notification::Update { .. }
                        if from_relist && self.bugs.is(Bug::RelistDeliveredAsSync) =>
                    {
                        true
                    }
                    Notification::Update { old, new } => is_sync(old, new),
                    _ => false,
                };
                let recipients = self.processor.distribute(&notification, is_sync);
                Distributed {
                    notification,
                    is_sync,
                    recipients,
                }
            })
            .collect();
        if std::mem::take(&mut self.process_error_next) && self.bugs.is(Bug::RequeueOnProcessError)
        {
            // Planted: cg@d853ccf18 (B24), RetryOnError re-added the failed item with
            // AddIfNotPresent, behind newer items, so its old states are applied again.
            self.fifo.add_if_not_present(popped.deltas.clone());
        }
        self.fifo.done();
        self.end_step(now);
        let transformed_again = self.transformed_again(&distributed);
        Processed {
            popped,
            has_synced_while_processing,
            distributed,
            transformed_again,
        }
    }

    // ---- (D) handlers ----------------------------------------------------------------------

    /// Mirrors client-go `AddEventHandlerWithResyncPeriod`: a nonzero period is raised to
    /// [`MINIMUM_RESYNC_PERIOD`]; one below the check period lowers the check period before
    /// start and is raised to it after; the period in force is `determineResyncPeriod`. After
    /// start the handler first gets `OnAdd(o, initial)` for every indexer object, in key order,
    /// before any later notification.
    pub fn add_event_handler(&mut self, now: SimTime, resync_period: SimDuration) -> HandlerId {
        self.advance(now);
        let mut requested = resync_period;
        if requested > SimDuration::ZERO {
            requested = requested.max(MINIMUM_RESYNC_PERIOD);
            let check = self.resync_check_period;
            if requested < check {
                if self.started {
                    requested = check;
                } else {
                    self.resync_check_period = requested;
                    self.processor.resync_check_period_changed(requested);
                }
            }
        }
        let period = determine_resync_period(requested, self.resync_check_period);
        let id = self.processor.add_listener(now, requested, period);
        if self.started {
            for obj in self.indexer.list() {
                let notification = Notification::Add {
                    obj: obj.clone(),
                    is_in_initial_list: true,
                };
                self.processor.add_to(id, notification);
            }
        }
        let snapshot = self.indexer.list_keys();
        let listener = self.processor.listener_mut(id);
        listener.expect_initial_keys(snapshot.iter().chain(&self.initial_keys_unprocessed));
        self.end_step(now);
        id
    }

    /// client-go `RemoveEventHandler`: the listener and its pending notifications are dropped;
    /// unknown ids are ignored.
    pub fn remove_event_handler(&mut self, id: HandlerId) {
        self.processor.remove_listener(id);
    }

    /// Runs handler `id` on its oldest pending notification: its mirror and HasSynced tracker
    /// follow. `None` if nothing is pending (or `id` was removed).
    pub fn deliver_next(&mut self, now: SimTime, id: HandlerId) -> Option<Delivered> {
        self.advance(now);
        let (notification, outcome) = self.processor.deliver_next(id)?;
        self.end_step(now);
        Some(Delivered {
            notification,
            outcome,
        })
    }

    /// Makes the next processing report an error after it applied its deltas. client-go's
    /// `processLoop` logs and drops such errors (cg@d853ccf18 removed `RetryOnError`), so it
    /// changes nothing unless B24 is planted.
    pub fn fail_next_processing(&mut self) {
        self.process_error_next = true;
    }

    /// Makes handler `id`'s next delivery panic (`ReallyCrash=false`, SPEC §8 B18).
    pub fn panic_next_delivery(&mut self, id: HandlerId) {
        self.processor.listener_mut(id).panic_next_delivery();
    }

    // ---- (A) getters -----------------------------------------------------------------------

    /// client-go `HasSynced`: the FIFO drained its initial population (DeltaFIFO: popped,
    /// RealFIFO: processed). Latched: never resets on relist (SPEC N4).
    pub fn has_synced(&self) -> bool {
        self.synced
    }

    /// client-go `registration.HasSynced`: the informer synced and handler `id` finished every
    /// queued initial add.
    pub fn handler_has_synced(&self, id: HandlerId) -> bool {
        self.listener(id).has_synced(self.synced)
    }

    /// When handler `id`'s registration first reported synced, with the B20 verdict.
    pub fn handler_synced(&self, id: HandlerId) -> Option<&HandlerSynced> {
        self.listener(id).synced()
    }

    /// How many notifications wait for handler `id` (0 once removed).
    pub fn pending_notifications(&self, id: HandlerId) -> usize {
        self.processor
            .listener(id)
            .map_or(0, |listener| listener.pending_notifications())
    }

    /// The state rebuilt from handler `id`'s calls.
    pub fn handler_mirror(&self, id: HandlerId) -> &BTreeMap<ObjectKey, Object> {
        self.listener(id).mirror()
    }

    /// The informer's cache.
    pub fn indexer(&self) -> &Indexer {
        &self.indexer
    }

    /// The informer's cache, writable: only for a planted bug that writes into it (a
    /// controller mutating what its lister returned).
    pub(crate) fn indexer_mut(&mut self) -> &mut Indexer {
        &mut self.indexer
    }

    /// The queue.
    pub fn fifo(&self) -> &Fifo {
        &self.fifo
    }

    /// The handlers' listeners.
    pub fn processor(&self) -> &SharedProcessor {
        &self.processor
    }

    /// The keys of the initial list (the first Replace, if it came before sync).
    pub fn initial_list_keys(&self) -> Option<&BTreeSet<ObjectKey>> {
        self.initial_list_keys.as_ref()
    }

    /// Nothing queued, nothing in flight, every listener drained.
    pub fn is_quiescent(&self) -> bool {
        self.fifo.pending().is_empty() && self.in_flight.is_none() && self.processor.is_drained()
    }

    /// The indexer's objects as they will be once every queued delta is processed, applied
    /// in pop order as processDeltas stores them (without its notifications). Pending deltas
    /// are never discarded (client-go delta_fifo.go Replace doc, k/k#83911), so this is always
    /// the state the store calls described.
    pub fn pending_state(&self) -> BTreeMap<&ObjectKey, &Object> {
        let mut state: BTreeMap<&ObjectKey, &Object> = self
            .indexer
            .list()
            .into_iter()
            .map(|obj| (&obj.key, obj))
            .collect();
        for delta in self.fifo.pending().into_iter().flatten() {
            match delta {
                Delta::Sync(obj)
                | Delta::Replaced(obj)
                | Delta::Added(obj)
                | Delta::Updated(obj) => {
                    state.insert(&obj.key, obj);
                }
                Delta::Deleted(obj) => {
                    state.remove(obj.key());
                }
                Delta::ReplacedAll(info) => {
                    state = info.objects.iter().map(|obj| (&obj.key, obj)).collect();
                }
                Delta::SyncAll | Delta::Bookmark(_) => {}
            }
        }
        state
    }

    /// What `key` will be in the indexer once every queued delta is processed (the one-key
    /// slice of [`SharedIndexInformer::pending_state`]). O(log n + the key's queued deltas).
    pub fn pending_for(&self, key: &ObjectKey) -> Option<&Object> {
        self.fifo
            .queued_for(key)
            .fold(self.indexer.get_by_key(key), |state, delta| {
                delta.state_of(key).unwrap_or(state)
            })
    }

    /// client-go `LastStoreSyncResourceVersion`: the indexer's resource version, reported only
    /// with the atomic FIFO (SPEC §6).
    pub fn last_store_sync_resource_version(&self) -> Option<ResourceVersion> {
        match self.fifo.kind() {
            FifoKind::RealAtomic => self.indexer.last_store_sync_resource_version(),
            FifoKind::Delta | FifoKind::Real => None,
        }
    }

    // ---- internals -------------------------------------------------------------------------

    fn listener(&self, id: HandlerId) -> &ProcessorListener {
        self.processor
            .listener(id)
            .unwrap_or_else(|| panic!("{id} is not registered"))
    }

    fn advance(&mut self, now: SimTime) {
        assert!(now >= self.now, "time went backwards: {now} < {}", self.now);
        self.now = now;
    }

    /// A watch event's object is transformed as it is queued.
    fn transformed_once(&mut self, obj: &Object) {
        if let Some(transforms) = &mut self.transforms {
            transforms.queued(obj, 1);
        }
    }

    /// The written states the transform ran on more than once.
    fn transformed_again(&mut self, distributed: &[Distributed]) -> Vec<(Object, u32)> {
        let Some(transforms) = &mut self.transforms else {
            return Vec::new();
        };
        distributed
            .iter()
            .filter_map(|d| match &d.notification {
                Notification::Add { obj, .. } | Notification::Update { new: obj, .. } => Some(obj),
                Notification::Delete(_) => None,
            })
            .filter_map(|obj| {
                let runs = transforms.processed(obj);
                (runs > 1).then(|| (obj.clone(), runs))
            })
            .collect()
    }

    fn begin_store_call(&mut self, now: SimTime) {
        assert!(self.started, "store call before run");
        assert!(self.in_flight.is_none(), "store call while processing");
        self.advance(now);
    }

    /// Latches `synced` from the FIFO (client-go: a goroutine closes the informer's channel
    /// once the FIFO's HasSynced checker fires) and records newly synced registrations.
    fn end_step(&mut self, now: SimTime) {
        self.synced |= self.fifo.has_synced();
        if self.synced && self.in_flight.is_none() {
            assert!(
                self.initial_keys_unprocessed.is_empty(),
                "synced with initial keys left"
            );
        }
        self.processor.observe_synced(now, self.synced);
    }

    /// Every key of the initial list is popped (DeltaFIFO) or processed (RealFIFO) before
    /// the FIFO syncs, so this empties the set by then.
    fn mark_initial_keys_processed(&mut self, deltas: &[Delta]) {
        for delta in deltas {
            match delta {
                Delta::ReplacedAll(info) => {
                    for obj in &info.objects {
                        self.initial_keys_unprocessed.remove(&obj.key);
                    }
                }
                other => {
                    if let Some(key) = other.key() {
                        self.initial_keys_unprocessed.remove(key);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Invariant;
    use crate::check::client::{
        check_initial_list_seen, check_mirror_equals_indexer, check_notification_follows_cache,
        check_tombstones,
    };
    use crate::client::delta::DeletedFinalStateUnknown;

    const T0: SimTime = SimTime::ZERO;

    fn obj(key: &str, resource_version: u64) -> Object {
        Object::bare(key, resource_version)
    }

    fn key(key: &str) -> ObjectKey {
        ObjectKey::new(key)
    }

    fn add(key: &str, resource_version: u64, is_in_initial_list: bool) -> Notification {
        Notification::Add {
            obj: obj(key, resource_version),
            is_in_initial_list,
        }
    }

    fn update(key: &str, old: u64, new: u64) -> Notification {
        Notification::Update {
            old: obj(key, old),
            new: obj(key, new),
        }
    }

    fn informer(fifo: FifoKind, resync_check_period: Option<SimDuration>) -> SharedIndexInformer {
        let config = InformerConfig {
            resync_check_period,
            ..InformerConfig::new(fifo)
        };
        SharedIndexInformer::new(config, Bugs::NONE)
    }

    fn process_all(informer: &mut SharedIndexInformer, now: SimTime) -> Vec<Processed> {
        std::iter::from_fn(|| informer.process_next(now)).collect()
    }

    fn deliver_all(
        informer: &mut SharedIndexInformer,
        now: SimTime,
        id: HandlerId,
    ) -> Vec<Notification> {
        let mut notifications = Vec::new();
        while let Some(delivered) = informer.deliver_next(now, id) {
            let indexer = informer.indexer();
            assert_eq!(
                check_notification_follows_cache(indexer, &delivered.notification),
                Ok(())
            );
            notifications.push(delivered.notification);
        }
        notifications
    }

    #[test]
    fn batch_processing_pops_distinct_keys_together_and_applies_them_before_any_call() {
        let now = SimTime::ZERO;
        for (fifo, batch_process, pops) in [
            (FifoKind::RealAtomic, true, vec![3, 1]),
            (FifoKind::RealAtomic, false, vec![1, 1, 1, 1]),
            (FifoKind::Real, true, vec![3, 1]),
            // DeltaFIFO has no PopBatch: one key (with all its deltas) per pop.
            (FifoKind::Delta, true, vec![2, 1, 1]),
        ] {
            let config = InformerConfig {
                batch_process,
                ..InformerConfig::new(fifo)
            };
            let mut informer = SharedIndexInformer::new(config, Bugs::NONE);
            let handler = informer.add_event_handler(now, SimDuration::ZERO);
            informer.run(now);
            for (key, resource_version) in [("ns/a", 1), ("ns/b", 2), ("ns/c", 3), ("ns/a", 4)] {
                informer.add(now, obj(key, resource_version));
            }
            let processed = process_all(&mut informer, now);
            let sizes: Vec<usize> = processed.iter().map(|p| p.popped.deltas.len()).collect();
            assert_eq!(sizes, pops, "{fifo} batch_process={batch_process}");
            if batch_process && fifo != FifoKind::Delta {
                assert_eq!(processed[0].popped.key(), None, "a batch has no one key");
                assert_eq!(processed[0].distributed.len(), 3);
            }
            let calls = deliver_all(&mut informer, now, handler);
            assert!(calls.contains(&update("ns/a", 1, 4)), "{calls:?}");
            assert_eq!(informer.indexer().len(), 3);
        }
    }

    #[test]
    fn a_transform_runs_twice_only_on_a_watch_list_s_initial_objects() {
        let now = SimTime::ZERO;
        for fifo in FifoKind::ALL {
            let config = InformerConfig {
                transform: true,
                resync_check_period: Some(SimDuration::from_secs(1)),
                ..InformerConfig::new(fifo)
            };
            let mut informer = SharedIndexInformer::new(config, Bugs::NONE);
            informer.add_event_handler(now, SimDuration::from_secs(1));
            informer.run(now);
            informer.replace_from_watch_list(now, vec![obj("ns/a", 1), obj("ns/b", 2)], 2);
            let twice: Vec<(Object, u32)> = process_all(&mut informer, now)
                .into_iter()
                .flat_map(|processed| processed.transformed_again)
                .collect();
            assert_eq!(
                twice,
                vec![(obj("ns/a", 1), 2), (obj("ns/b", 2), 2)],
                "{fifo}"
            );
            informer.update(now, obj("ns/a", 3));
            informer.replace(now, vec![obj("ns/a", 3), obj("ns/c", 4)], 4);
            informer.resync(now);
            let again = process_all(&mut informer, now)
                .into_iter()
                .flat_map(|processed| processed.transformed_again)
                .count();
            assert_eq!(
                again, 0,
                "{fifo}: events, LIST relists and syncs run it once at most"
            );
        }
    }

    #[test]
    fn presence_in_the_indexer_not_the_event_type_decides_add_or_update() {
        let mut informer = informer(FifoKind::Real, None);
        let handler = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.add(T0, obj("known", 1));
        informer.update(T0, obj("unknown", 2));
        informer.add(T0, obj("known", 3));
        process_all(&mut informer, T0);
        assert_eq!(
            deliver_all(&mut informer, T0, handler),
            vec![
                add("known", 1, false),
                add("unknown", 2, false),
                update("known", 1, 3)
            ]
        );
    }

    #[test]
    fn resync_skips_a_pending_key_and_syncs_the_other_only_to_flagged_listeners() {
        let mut informer = informer(FifoKind::Delta, Some(SimDuration::from_secs(10)));
        let never = informer.add_event_handler(T0, SimDuration::ZERO);
        let every_10s = informer.add_event_handler(T0, SimDuration::from_secs(10));
        informer.run(T0);
        informer.replace(T0, vec![obj("x", 10), obj("y", 10)], 10);
        process_all(&mut informer, T0);
        informer.update(T0, obj("x", 20));
        assert!(informer.resync(SimTime(10_000)));
        let processed = process_all(&mut informer, SimTime(10_000));
        let distributed: Vec<&Distributed> =
            processed.iter().flat_map(|p| &p.distributed).collect();
        let expected = [
            Distributed {
                notification: update("x", 10, 20),
                is_sync: false,
                recipients: vec![never, every_10s],
            },
            Distributed {
                notification: update("y", 10, 10),
                is_sync: true,
                recipients: vec![every_10s],
            },
        ];
        assert_eq!(distributed, expected.iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_relist_with_a_new_resource_version_is_not_a_sync_and_reaches_a_handler_without_resync() {
        for kind in FifoKind::ALL {
            let mut informer = informer(kind, Some(SimDuration::from_secs(1)));
            let handler = informer.add_event_handler(T0, SimDuration::ZERO);
            informer.run(T0);
            informer.replace(T0, vec![obj("x", 10)], 10);
            process_all(&mut informer, T0);
            deliver_all(&mut informer, T0, handler);
            assert!(!informer.resync(SimTime(1_000)), "{kind}: nobody resyncs");
            informer.replace(SimTime(1_000), vec![obj("x", 20)], 20);
            informer.replace(SimTime(1_000), vec![obj("x", 20)], 21);
            process_all(&mut informer, SimTime(1_000));
            assert_eq!(
                deliver_all(&mut informer, SimTime(1_000), handler),
                vec![update("x", 10, 20)],
                "{kind}: the changed relist reaches it, the unchanged one is a sync"
            );
            let mirror = informer.handler_mirror(handler);
            assert_eq!(
                check_mirror_equals_indexer(mirror, informer.indexer()),
                Ok(())
            );
        }
    }

    fn buggy(fifo: FifoKind, bug: Bug) -> SharedIndexInformer {
        let config = InformerConfig {
            resync_check_period: Some(SimDuration::from_secs(1)),
            ..InformerConfig::new(fifo)
        };
        SharedIndexInformer::new(config, Bugs::new(Some(bug)))
    }

    #[test]
    fn planted_relist_as_sync_hides_a_changed_relist_from_a_handler_without_resync() {
        let mut informer = buggy(FifoKind::Delta, Bug::RelistDeliveredAsSync);
        let handler = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.replace(T0, vec![obj("x", 10)], 10);
        process_all(&mut informer, T0);
        deliver_all(&mut informer, T0, handler);
        assert!(!informer.resync(SimTime(1_000)));
        informer.replace(SimTime(1_000), vec![obj("x", 20)], 20);
        process_all(&mut informer, SimTime(1_000));
        assert!(deliver_all(&mut informer, SimTime(1_000), handler).is_empty());
        let mirror = informer.handler_mirror(handler);
        let error = check_mirror_equals_indexer(mirror, informer.indexer()).unwrap_err();
        assert!(
            error.message.contains("x@10 in the mirror but x@20"),
            "{error}"
        );
    }

    #[test]
    fn planted_early_handler_sync_reports_synced_with_initial_adds_pending() {
        let mut informer = buggy(FifoKind::Real, Bug::HandlerSyncedBeforeInitialAdds);
        informer.run(T0);
        informer.replace(T0, vec![obj("a", 1)], 1);
        process_all(&mut informer, T0);
        let late = informer.add_event_handler(T0, SimDuration::ZERO);
        assert_eq!(informer.pending_notifications(late), 1);
        assert!(informer.handler_has_synced(late));
        let synced = informer.handler_synced(late).unwrap();
        let error = check_initial_list_seen(synced).unwrap_err();
        assert!(error.message.contains("before seeing a"), "{error}");
    }

    #[test]
    fn a_processing_error_is_dropped_but_the_planted_requeue_applies_old_states_again() {
        for (bugs, requeued) in [
            (Bugs::NONE, false),
            (Bugs::new(Some(Bug::RequeueOnProcessError)), true),
        ] {
            let mut informer = SharedIndexInformer::new(InformerConfig::new(FifoKind::Delta), bugs);
            informer.run(T0);
            informer.add(T0, obj("x", 5));
            informer.update(T0, obj("x", 7));
            informer.fail_next_processing();
            informer.process_next(T0).unwrap();
            assert_eq!(informer.indexer().get_by_key(&key("x")), Some(&obj("x", 7)));
            let again = informer.process_next(T0);
            assert_eq!(again.is_some(), requeued);
            if let Some(again) = again {
                let first = &again.distributed[0].notification;
                assert_eq!(first, &update("x", 7, 5), "back in time");
            }
        }
    }

    #[test]
    fn pending_state_applies_the_queue_and_tombstones_carry_the_newest_known_state() {
        for kind in FifoKind::ALL {
            let mut informer = informer(kind, None);
            informer.run(T0);
            informer.add(T0, obj("a", 1));
            informer.add(T0, obj("b", 2));
            process_all(&mut informer, T0);
            informer.update(T0, obj("a", 3));
            informer.replace(T0, vec![obj("c", 4)], 4);
            let pending: Vec<&Object> = informer.pending_state().into_values().collect();
            assert_eq!(pending, vec![&obj("c", 4)], "{kind}");
            assert_eq!(check_tombstones(&informer), Ok(()), "{kind}");
        }
        let mut stale = buggy(FifoKind::Delta, Bug::TombstoneCarriesStaleObject);
        stale.run(T0);
        stale.add(T0, obj("a", 1));
        process_all(&mut stale, T0);
        stale.update(T0, obj("a", 3));
        stale.replace(T0, vec![], 4);
        let error = check_tombstones(&stale).unwrap_err();
        assert!(error.message.contains("DFSU(a, a@1)"), "{error}");
    }

    #[test]
    fn a_late_handler_gets_the_indexer_snapshot_in_key_order_before_later_deltas() {
        let mut informer = informer(FifoKind::Real, None);
        informer.run(T0);
        informer.replace(T0, vec![obj("b", 2), obj("a", 1)], 2);
        process_all(&mut informer, T0);
        informer.add(T0, obj("c", 3));
        let late = informer.add_event_handler(T0, SimDuration::ZERO);
        assert_eq!(informer.pending_notifications(late), 2);
        assert!(!informer.handler_has_synced(late));
        process_all(&mut informer, T0);
        assert_eq!(
            deliver_all(&mut informer, T0, late),
            vec![add("a", 1, true), add("b", 2, true), add("c", 3, false)]
        );
        assert!(
            informer
                .handler_synced(late)
                .unwrap()
                .initial_list_unseen
                .is_empty()
        );
    }

    #[test]
    fn registration_has_synced_waits_until_its_initial_adds_are_delivered() {
        let mut informer = informer(FifoKind::Real, None);
        let handler = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.replace(T0, vec![obj("a", 1), obj("b", 2)], 2);
        process_all(&mut informer, T0);
        assert!(informer.has_synced());
        assert!(!informer.handler_has_synced(handler));
        informer.deliver_next(SimTime(5), handler).unwrap();
        assert!(!informer.handler_has_synced(handler));
        informer.deliver_next(SimTime(7), handler).unwrap();
        assert!(informer.handler_has_synced(handler));
        let synced = informer.handler_synced(handler).unwrap();
        assert_eq!(synced.at, SimTime(7));
        assert!(synced.initial_list_unseen.is_empty());
        assert_eq!(
            informer.initial_list_keys(),
            Some(&BTreeSet::from([key("a"), key("b")]))
        );
    }

    /// SPEC §5.3: a registration's HasSynced latches. In DeltaFIFO's N6 window it turns true
    /// before the last initial add is queued, and that add does not turn it back.
    #[test]
    fn registration_has_synced_latches_through_a_later_initial_add() {
        let mut informer = informer(FifoKind::Delta, None);
        let handler = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.replace(T0, vec![obj("a", 1)], 1);
        informer.pop_next(T0).unwrap();
        assert!(informer.has_synced(), "the N6 window");
        assert!(
            informer.handler_has_synced(handler),
            "no initial add queued yet"
        );
        informer.finish_processing(T0);
        assert!(informer.handler_has_synced(handler), "latched");
        informer.deliver_next(SimTime(5), handler).unwrap();
        assert!(informer.handler_has_synced(handler));
    }

    #[test]
    fn informer_has_synced_never_resets_on_relist() {
        for kind in FifoKind::ALL {
            let mut informer = informer(kind, None);
            informer.run(T0);
            informer.replace(T0, vec![obj("a", 1)], 1);
            process_all(&mut informer, T0);
            assert!(informer.has_synced(), "{kind}");
            informer.replace(T0, vec![obj("b", 2)], 2);
            assert!(informer.has_synced(), "{kind}: relist queued");
            informer.pop_next(T0).unwrap();
            assert!(informer.has_synced(), "{kind}: relist in flight");
            informer.finish_processing(T0);
            process_all(&mut informer, T0);
            assert!(informer.has_synced(), "{kind}: relist applied");
        }
    }

    #[test]
    fn delta_fifo_reports_synced_before_the_last_initial_item_is_applied_but_real_fifo_does_not() {
        for (kind, gap) in [(FifoKind::Delta, true), (FifoKind::Real, false)] {
            let mut informer = informer(kind, None);
            let handler = informer.add_event_handler(T0, SimDuration::ZERO);
            informer.run(T0);
            informer.replace(T0, vec![obj("a", 1), obj("b", 2)], 2);
            informer.process_next(T0).unwrap();
            informer.deliver_next(T0, handler).unwrap();
            informer.pop_next(T0).unwrap();
            assert_eq!(
                informer.has_synced(),
                gap,
                "{kind}: synced with b in flight"
            );
            assert_eq!(informer.indexer().get_by_key(&key("b")), None);
            assert_eq!(informer.handler_has_synced(handler), gap, "{kind}");
            let processed = informer.finish_processing(T0);
            assert_eq!(processed.has_synced_while_processing, gap, "{kind}");
            assert!(informer.has_synced());
            assert_eq!(
                informer.handler_has_synced(handler),
                gap,
                "{kind}: b's add pending, but DeltaFIFO's registration latched"
            );
            deliver_all(&mut informer, T0, handler);
            assert!(informer.handler_has_synced(handler));
            let unseen = &informer
                .handler_synced(handler)
                .unwrap()
                .initial_list_unseen;
            assert_eq!(!unseen.is_empty(), gap, "{kind}: B20 unseen {unseen:?}");
        }
    }

    #[test]
    fn a_handler_panic_loses_exactly_one_notification_and_the_mirror_diverges() {
        let mut informer = informer(FifoKind::Real, None);
        let panicking = informer.add_event_handler(T0, SimDuration::ZERO);
        let healthy = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        for (key, resource_version) in [("a", 1), ("b", 2), ("c", 3)] {
            informer.add(T0, obj(key, resource_version));
        }
        process_all(&mut informer, T0);
        informer.deliver_next(T0, panicking).unwrap();
        informer.panic_next_delivery(panicking);
        let lost = informer.deliver_next(T0, panicking).unwrap();
        assert_eq!(lost.outcome, HandlerOutcome::Panicked);
        assert_eq!(lost.notification, add("b", 2, false));
        assert_eq!(
            deliver_all(&mut informer, T0, panicking),
            vec![add("c", 3, false)]
        );
        deliver_all(&mut informer, T0, healthy);
        assert!(informer.is_quiescent());
        let error =
            check_mirror_equals_indexer(informer.handler_mirror(panicking), informer.indexer());
        assert!(
            error
                .unwrap_err()
                .message
                .contains("b is absent in the mirror")
        );
        let healthy_mirror = informer.handler_mirror(healthy);
        assert_eq!(
            check_mirror_equals_indexer(healthy_mirror, informer.indexer()),
            Ok(())
        );
    }

    #[test]
    fn a_panicking_initial_add_leaves_the_registration_unsynced_for_good() {
        let mut informer = informer(FifoKind::Real, None);
        let handler = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.replace(T0, vec![obj("a", 1)], 1);
        process_all(&mut informer, T0);
        informer.panic_next_delivery(handler);
        let lost = informer.deliver_next(T0, handler).unwrap();
        assert_eq!(lost.outcome, HandlerOutcome::Panicked);
        assert!(informer.is_quiescent());
        assert!(informer.has_synced());
        assert!(!informer.handler_has_synced(handler));
        assert_eq!(informer.handler_synced(handler), None);
    }

    #[test]
    fn handler_resync_periods_have_a_one_second_minimum_and_follow_the_check_period() {
        let period = |informer: &SharedIndexInformer, id| {
            informer.processor().listener(id).unwrap().resync_period()
        };
        let mut before_start = informer(FifoKind::Delta, Some(SimDuration::from_secs(10)));
        let slow = before_start.add_event_handler(T0, SimDuration::from_secs(30));
        let fast = before_start.add_event_handler(T0, SimDuration::from_millis(200));
        let none = before_start.add_event_handler(T0, SimDuration::ZERO);
        assert_eq!(
            before_start.resync_check_period(),
            Some(SimDuration::from_secs(1))
        );
        assert_eq!(period(&before_start, slow), SimDuration::from_secs(30));
        assert_eq!(period(&before_start, fast), SimDuration::from_secs(1));
        assert_eq!(period(&before_start, none), SimDuration::ZERO);

        let mut after_start = informer(FifoKind::Delta, Some(SimDuration::from_secs(10)));
        after_start.run(T0);
        let raised = after_start.add_event_handler(T0, SimDuration::from_secs(3));
        assert_eq!(
            after_start.resync_check_period(),
            Some(SimDuration::from_secs(10))
        );
        assert_eq!(period(&after_start, raised), SimDuration::from_secs(10));

        let mut without_resync = informer(FifoKind::Delta, None);
        let disabled = without_resync.add_event_handler(T0, SimDuration::from_secs(30));
        assert_eq!(without_resync.resync_check_period(), None);
        assert_eq!(period(&without_resync, disabled), SimDuration::ZERO);
        let listener = without_resync.processor().listener(disabled).unwrap();
        assert_eq!(
            listener.requested_resync_period(),
            SimDuration::from_secs(30)
        );
    }

    #[test]
    fn remove_event_handler_stops_deliveries() {
        let mut informer = informer(FifoKind::Delta, None);
        let removed = informer.add_event_handler(T0, SimDuration::ZERO);
        let kept = informer.add_event_handler(T0, SimDuration::ZERO);
        informer.run(T0);
        informer.add(T0, obj("a", 1));
        process_all(&mut informer, T0);
        informer.remove_event_handler(removed);
        assert_eq!(informer.pending_notifications(removed), 0);
        assert_eq!(informer.deliver_next(T0, removed), None);
        informer.add(T0, obj("b", 2));
        let processed = informer.process_next(T0).unwrap();
        assert_eq!(processed.distributed[0].recipients, vec![kept]);
        assert_eq!(informer.pending_notifications(kept), 2);
    }

    #[test]
    fn notification_follows_cache_accepts_the_notified_or_a_later_state_only() {
        let mut indexer = Indexer::default();
        indexer.add(obj("a", 5));
        let check = |n: &Notification| check_notification_follows_cache(&indexer, n);
        assert_eq!(check(&add("a", 5, false)), Ok(()));
        assert_eq!(check(&update("a", 1, 4)), Ok(()));
        assert_eq!(check(&add("gone", 9, false)), Ok(()), "deleted since");
        assert!(
            check(&update("a", 5, 6))
                .unwrap_err()
                .message
                .contains("a@5")
        );
        let delete = |resource_version| {
            Notification::Delete(DeltaObject::Object(obj("a", resource_version)))
        };
        assert_eq!(check(&delete(4)), Ok(()), "re-created since");
        assert!(
            check(&delete(5)).is_err(),
            "the deleted state is still cached"
        );
        let tombstone = DeletedFinalStateUnknown {
            key: key("a"),
            obj: None,
        };
        assert_eq!(
            check(&Notification::Delete(DeltaObject::Tombstone(tombstone))),
            Ok(())
        );
    }

    #[test]
    fn mirror_equals_indexer_names_the_first_differing_key() {
        let mut indexer = Indexer::default();
        indexer.add(obj("a", 1));
        indexer.add(obj("b", 2));
        let mut mirror = BTreeMap::from([(key("a"), obj("a", 1)), (key("b"), obj("b", 2))]);
        assert_eq!(check_mirror_equals_indexer(&mirror, &indexer), Ok(()));
        mirror.insert(key("b"), obj("b", 1));
        mirror.insert(key("c"), obj("c", 3));
        let error = check_mirror_equals_indexer(&mirror, &indexer).unwrap_err();
        assert_eq!(error.invariant, Invariant::HandlerMirrorEqualsIndexer);
        assert_eq!(
            error.message,
            "b is b@1 in the mirror but b@2 in the indexer"
        );
    }

    mod convergence {
        use proptest::prelude::*;

        use super::*;

        const KEYS: [&str; 4] = ["ns1/a", "ns1/b", "ns2/a", "c"];
        const HANDLERS_MAX: usize = 3;
        const RESYNC_PERIODS_MS: [u64; 3] = [0, 1_000, 2_500];

        /// One step of a run. Writes go to a tiny etcd; `seen` says whether the watch told the
        /// informer (a missed event is what a watch gap loses until the next relist).
        #[derive(Clone, Debug)]
        enum Op {
            Write { key: usize, seen: bool },
            Remove { key: usize, seen: bool },
            Relist,
            Bookmark,
            Resync,
            Process,
            Deliver(usize),
            AddHandler(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..KEYS.len(), prop::bool::weighted(0.8))
                    .prop_map(|(key, seen)| Op::Write { key, seen }),
                2 => (0..KEYS.len(), prop::bool::weighted(0.8))
                    .prop_map(|(key, seen)| Op::Remove { key, seen }),
                1 => Just(Op::Relist),
                1 => Just(Op::Bookmark),
                1 => Just(Op::Resync),
                5 => Just(Op::Process),
                5 => (0..HANDLERS_MAX).prop_map(Op::Deliver),
                1 => (0..RESYNC_PERIODS_MS.len()).prop_map(Op::AddHandler),
            ]
        }

        /// An informer fed by a naive etcd whose resource versions only grow, so an object's
        /// content is a function of its key and resource version.
        struct Run {
            informer: SharedIndexInformer,
            handlers: Vec<HandlerId>,
            etcd: BTreeMap<ObjectKey, Object>,
            revision: u64,
            now: SimTime,
        }

        impl Run {
            fn new(kind: FifoKind, periods: &[usize]) -> Run {
                let mut informer = informer(kind, Some(SimDuration::from_secs(1)));
                let handlers = periods
                    .iter()
                    .map(|&p| informer.add_event_handler(T0, SimDuration(RESYNC_PERIODS_MS[p])))
                    .collect();
                informer.run(T0);
                Run {
                    informer,
                    handlers,
                    etcd: BTreeMap::new(),
                    revision: 0,
                    now: T0,
                }
            }

            fn write(&mut self, key: &str, seen: bool) {
                self.revision += 1;
                let mut object = obj(key, self.revision);
                object.value = self.revision;
                let existed = self
                    .etcd
                    .insert(object.key.clone(), object.clone())
                    .is_some();
                match (seen, existed) {
                    (false, _) => {}
                    (true, true) => self.informer.update(self.now, object),
                    (true, false) => self.informer.add(self.now, object),
                }
            }

            fn remove(&mut self, key: &str, seen: bool) {
                let Some(object) = self.etcd.remove(&ObjectKey::new(key)) else {
                    return;
                };
                self.revision += 1;
                if seen {
                    let final_state = object.with_resource_version(self.revision);
                    self.informer.delete(self.now, final_state);
                }
            }

            fn relist(&mut self) {
                let list = self.etcd.values().cloned().collect();
                self.informer.replace(self.now, list, self.revision);
            }

            fn deliver(&mut self, index: usize) -> Result<(), TestCaseError> {
                let Some(&id) = self.handlers.get(index) else {
                    return Ok(());
                };
                if let Some(delivered) = self.informer.deliver_next(self.now, id) {
                    let indexer = self.informer.indexer();
                    let verdict =
                        check_notification_follows_cache(indexer, &delivered.notification);
                    prop_assert_eq!(verdict, Ok(()));
                }
                Ok(())
            }

            fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
                self.now = self.now + SimDuration::from_millis(250);
                match *op {
                    Op::Write { key, seen } => self.write(KEYS[key], seen),
                    Op::Remove { key, seen } => self.remove(KEYS[key], seen),
                    Op::Relist => self.relist(),
                    Op::Bookmark => self.informer.bookmark(self.now, self.revision),
                    Op::Resync => {
                        self.informer.resync(self.now);
                    }
                    Op::Process => {
                        self.informer.process_next(self.now);
                    }
                    Op::Deliver(index) => self.deliver(index)?,
                    Op::AddHandler(_) if self.handlers.len() == HANDLERS_MAX => {}
                    Op::AddHandler(p) => {
                        let period = SimDuration(RESYNC_PERIODS_MS[p]);
                        self.handlers
                            .push(self.informer.add_event_handler(self.now, period));
                    }
                }
                prop_assert_eq!(self.informer.indexer().check_index_invariant(), Ok(()));
                Ok(())
            }

            fn drain(&mut self) -> Result<(), TestCaseError> {
                while !self.informer.is_quiescent() {
                    while self.informer.process_next(self.now).is_some() {}
                    for index in 0..self.handlers.len() {
                        while self.informer.pending_notifications(self.handlers[index]) > 0 {
                            self.deliver(index)?;
                        }
                    }
                }
                Ok(())
            }
        }

        proptest! {
            #[test]
            fn after_a_final_relist_the_indexer_equals_etcd_and_every_mirror_the_indexer(
                periods in prop::collection::vec(0..RESYNC_PERIODS_MS.len(), 1..=HANDLERS_MAX),
                ops in prop::collection::vec(op(), 0..60),
            ) {
                for kind in FifoKind::ALL {
                    let mut run = Run::new(kind, &periods);
                    for op in &ops {
                        run.apply(op)?;
                    }
                    run.drain()?;
                    run.relist();
                    run.drain()?;
                    let expected: Vec<&Object> = run.etcd.values().collect();
                    prop_assert_eq!(run.informer.indexer().list(), expected, "{}", kind);
                    prop_assert!(run.informer.has_synced(), "{}", kind);
                    for &id in &run.handlers {
                        let mirror = run.informer.handler_mirror(id);
                        let verdict = check_mirror_equals_indexer(mirror, run.informer.indexer());
                        prop_assert_eq!(verdict, Ok(()), "{} {}", kind, id);
                        prop_assert!(run.informer.handler_has_synced(id), "{} {}", kind, id);
                        let synced = run.informer.handler_synced(id).expect("synced once");
                        if kind != FifoKind::Delta {
                            prop_assert!(synced.initial_list_unseen.is_empty(), "{} {}", kind, id);
                        }
                    }
                }
            }
        }
    }
}
