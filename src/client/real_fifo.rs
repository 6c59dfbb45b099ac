//! `RealFIFO` (client-go `tools/cache/the_real_fifo.go`, SPEC §4.4, §12): a log of deltas in
//! arrival order, popped one delta at a time, with no per-key merging and no dedup.
//!
//! Two modes:
//! - **non-atomic** (`InOrderInformers`): `knownObjects` is the informer's indexer. Replace
//!   queues tombstones first (queued keys whose last delta is not `Deleted`, then known keys not
//!   queued), then `Replaced` for every listed object; Resync queues `Sync` for known keys that
//!   appear nowhere in the log. Bookmarks are ignored.
//! - **atomic** (`AtomicFIFO`): no `knownObjects`. Replace queues one `ReplacedAll`, Resync one
//!   `SyncAll`, a bookmark one `Bookmark`; the consumer reconciles against the indexer
//!   ([`process_deltas`](super::process_deltas)).
//!
//! HasSynced: the first Replace sets the initial population count to the log length; it is
//! decremented in [`RealFifo::done`], **after** the caller processed the popped delta, so
//! [`RealFifo::has_synced`] turns true only once the last initial delta has been applied (the
//! contrast with DeltaFIFO, SPEC §9.2 N6).
//!
//! Named invariants ([`RealFifo::check_invariants`]): `whole_store_deltas_only_when_atomic`,
//! `tombstone_shares_the_key`, `initial_count_within_log`, `log_index_matches_log`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::client::delta::{DeletedFinalStateUnknown, Delta, DeltaObject, ReplacedAllInfo};
use crate::client::indexer::KnownObjects;
use crate::client::queue::{PopError, Popped};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// The most deltas one [`RealFifo::pop_batch`] takes (`defaultBatchSize`).
pub const POP_BATCH_SIZE: usize = 1_000;

/// The log, with an index of where each key's deltas sit, so that one key's queued deltas are
/// found without walking the log (a data layout choice: the same deltas in the same order).
#[derive(Clone, Debug, Default)]
struct Log {
    deltas: VecDeque<Delta>,
    /// The sequence number of `deltas[0]`; the n-th delta ever pushed has number n.
    head: u64,
    /// Per key, the sequence numbers of its queued deltas, oldest first.
    by_key: BTreeMap<ObjectKey, VecDeque<u64>>,
    /// The sequence numbers of the queued whole-store deltas (atomic mode), oldest first.
    whole_store: VecDeque<u64>,
}

impl Log {
    fn len(&self) -> usize {
        self.deltas.len()
    }

    fn push(&mut self, delta: Delta) {
        let sequence = self.head + self.deltas.len() as u64;
        match delta.key() {
            Some(key) => self
                .by_key
                .entry(key.clone())
                .or_default()
                .push_back(sequence),
            None => self.whole_store.push_back(sequence),
        }
        self.deltas.push_back(delta);
    }

    fn pop_front(&mut self) -> Option<Delta> {
        let delta = self.deltas.pop_front()?;
        let sequence = self.head;
        self.head += 1;
        let popped = match delta.key() {
            Some(key) => {
                let queued = self
                    .by_key
                    .get_mut(key)
                    .expect("every queued key is indexed");
                let front = queued.pop_front();
                if queued.is_empty() {
                    self.by_key.remove(key);
                }
                front
            }
            None => self.whole_store.pop_front(),
        };
        assert_eq!(popped, Some(sequence), "the index follows the log");
        Some(delta)
    }

    fn get(&self, sequence: u64) -> &Delta {
        &self.deltas[(sequence - self.head) as usize]
    }

    /// The deltas that touch `key`, oldest first: its own and the whole-store ones.
    fn for_key<'a>(&'a self, key: &ObjectKey) -> impl Iterator<Item = &'a Delta> + use<'a> {
        let own = self.by_key.get(key).into_iter().flatten().copied();
        let mut own = own.peekable();
        let mut whole = self.whole_store.iter().copied().peekable();
        std::iter::from_fn(move || {
            let next = match (own.peek(), whole.peek()) {
                (Some(a), Some(b)) if a < b => own.next(),
                (Some(_), Some(_)) | (None, Some(_)) => whole.next(),
                (Some(_), None) => own.next(),
                (None, None) => None,
            };
            next.map(|sequence| self.get(sequence))
        })
    }

    /// The queued keys in the order each was first queued, each with its newest delta.
    fn queued_keys(&self) -> Vec<(&ObjectKey, &Delta)> {
        let mut keys: Vec<(u64, &ObjectKey, u64)> = self
            .by_key
            .iter()
            .map(|(key, queued)| (queued[0], key, queued[queued.len() - 1]))
            .collect();
        keys.sort_unstable_by_key(|(first, _, _)| *first);
        keys.into_iter()
            .map(|(_, key, last)| (key, self.get(last)))
            .collect()
    }

    /// The index matches the log.
    fn check(&self) -> Result<(), String> {
        let indexed: usize =
            self.by_key.values().map(VecDeque::len).sum::<usize>() + self.whole_store.len();
        if indexed != self.deltas.len() {
            return Err(format!(
                "log_index_matches_log: {indexed} indexed, {} queued",
                self.deltas.len()
            ));
        }
        for (key, queued) in &self.by_key {
            if queued
                .iter()
                .any(|sequence| self.get(*sequence).key() != Some(key))
            {
                return Err(format!(
                    "log_index_matches_log: {key} points at another key"
                ));
            }
        }
        Ok(())
    }
}

/// client-go `RealFIFO`, non-atomic or atomic.
#[derive(Clone, Debug)]
pub struct RealFifo {
    items: Log,
    atomic: bool,
    /// Set by the first Replace or any Add/Update/Delete.
    populated: bool,
    /// Deltas of the first Replace not yet processed.
    initial_population_count: usize,
    /// While popped deltas are being processed: how much `done` takes off the count.
    in_flight: Option<usize>,
    closed: bool,
}

impl RealFifo {
    /// An empty FIFO; `atomic` selects the `AtomicFIFO` mode.
    pub fn new(atomic: bool) -> RealFifo {
        RealFifo {
            items: Log::default(),
            atomic,
            populated: false,
            initial_population_count: 0,
            in_flight: None,
            closed: false,
        }
    }

    /// Whether this is the atomic mode.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Appends `Added(obj)`.
    pub fn add(&mut self, obj: Object) {
        self.populated = true;
        self.items.push(Delta::Added(obj));
    }

    /// Appends `Updated(obj)`.
    pub fn update(&mut self, obj: Object) {
        self.populated = true;
        self.items.push(Delta::Updated(obj));
    }

    /// Appends `Deleted(obj)`: unlike DeltaFIFO, never filtered by known objects (SPEC §12).
    pub fn delete(&mut self, obj: DeltaObject) {
        self.populated = true;
        self.items.push(Delta::Deleted(obj));
    }

    /// A relist (client-go `RealFIFO.Replace`): one `ReplacedAll` in atomic mode (`known` is not
    /// read), else tombstones first and then `Replaced` for every listed object.
    pub fn replace(
        &mut self,
        list: Vec<Object>,
        resource_version: ResourceVersion,
        known: &dyn KnownObjects,
    ) {
        if self.atomic {
            let info = ReplacedAllInfo {
                resource_version,
                objects: list,
            };
            self.items.push(Delta::ReplacedAll(info));
        } else {
            self.reconcile_replacement(list, known);
        }
        if !self.populated {
            self.populated = true;
            self.initial_population_count = self.items.len();
        }
    }

    /// Mirrors client-go the_real_fifo.go reconcileReplacement: a tombstone for each queued key
    /// missing from the list unless its last queued delta is `Deleted`, then for each known key
    /// missing from the list and not queued (key order), then `Replaced` for every item.
    fn reconcile_replacement(&mut self, list: Vec<Object>, known: &dyn KnownObjects) {
        let new_keys: BTreeSet<&ObjectKey> = list.iter().map(|obj| &obj.key).collect();
        let mut deletions = Vec::new();
        for (key, last) in self.items.queued_keys() {
            if new_keys.contains(key) || matches!(last, Delta::Deleted(_)) {
                continue;
            }
            deletions.push(tombstone(key.clone(), last.newest_state().cloned()));
        }
        for key in known.list_keys() {
            if new_keys.contains(&key) || self.items.by_key.contains_key(&key) {
                continue;
            }
            let obj = known.get_by_key(&key).cloned();
            deletions.push(tombstone(key, obj));
        }
        for delta in deletions
            .into_iter()
            .chain(list.into_iter().map(Delta::Replaced))
        {
            self.items.push(delta);
        }
    }

    /// A resync (client-go `RealFIFO.Resync`): one `SyncAll` in atomic mode, else `Sync(known
    /// object)` for every known key that appears nowhere in the log, in key order.
    pub fn resync(&mut self, known: &dyn KnownObjects) {
        if self.atomic {
            self.items.push(Delta::SyncAll);
            return;
        }
        for key in known.list_keys() {
            if self.items.by_key.contains_key(&key) {
                continue;
            }
            if let Some(obj) = known.get_by_key(&key) {
                self.items.push(Delta::Sync(obj.clone()));
            }
        }
    }

    /// Appends `Bookmark(resource_version)` in atomic mode (`EmitDeltaTypeBookmark`); ignored
    /// otherwise.
    pub fn bookmark(&mut self, resource_version: ResourceVersion) {
        if self.atomic {
            self.items.push(Delta::Bookmark(resource_version));
        }
    }

    /// Pops the oldest delta as a one-element `Deltas` (client-go `RealFIFO.Pop`). The caller
    /// must process it and then call [`RealFifo::done`] before the next pop.
    pub fn pop(&mut self) -> Result<Popped, PopError> {
        assert!(
            self.in_flight.is_none(),
            "pop while the previous delta is still being processed"
        );
        let Some(delta) = self.items.pop_front() else {
            return Err(if self.closed {
                PopError::Closed
            } else {
                PopError::Empty
            });
        };
        let is_in_initial_list = !self.has_synced();
        self.in_flight = Some(usize::from(self.initial_population_count > 0));
        Ok(Popped {
            deltas: vec![delta],
            is_in_initial_list,
        })
    }

    /// Pops a batch (client-go `RealFIFO.PopBatch`): the longest run from the front of at most
    /// [`POP_BATCH_SIZE`] batchable deltas (an object's Sync, Replaced, Added, Updated or
    /// Deleted) with unique keys, never past the initial population; a whole-store delta first
    /// in line is popped alone. The caller processes the batch, then calls [`RealFifo::done`].
    pub fn pop_batch(&mut self) -> Result<Popped, PopError> {
        assert!(
            self.in_flight.is_none(),
            "pop while the previous batch is still being processed"
        );
        let limit = match self.initial_population_count {
            0 => POP_BATCH_SIZE,
            initial => POP_BATCH_SIZE.min(initial),
        };
        let mut keys = BTreeSet::new();
        let mut length = 0;
        for delta in self.items.deltas.iter().take(limit) {
            match delta.key() {
                Some(key) if keys.insert(key) => length += 1,
                Some(_) => break,
                None => {
                    length += usize::from(length == 0);
                    break;
                }
            }
        }
        if length == 0 {
            return self.pop();
        }
        let is_in_initial_list = !self.has_synced();
        let deltas: Vec<Delta> = (0..length)
            .map(|_| self.items.pop_front().expect("counted above"))
            .collect();
        let initial = self.initial_population_count > 0;
        self.in_flight = Some(if initial { deltas.len() } else { 0 });
        Ok(Popped {
            deltas,
            is_in_initial_list,
        })
    }

    /// Ends the processing of the popped delta: only now does the initial population count go
    /// down (client-go the_real_fifo.go Pop defers the decrement past `process`).
    pub fn done(&mut self) {
        let decrement = self.in_flight.take().expect("done without a popped delta");
        self.initial_population_count -= decrement;
    }

    /// Whether the first Replace has been processed in full, or an Add/Update/Delete came first.
    pub fn has_synced(&self) -> bool {
        self.populated && self.initial_population_count == 0
    }

    /// Closes the FIFO: pops drain what is queued, then report [`PopError::Closed`].
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether [`RealFifo::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The log, oldest first.
    pub fn queued(&self) -> impl Iterator<Item = &Delta> {
        self.items.deltas.iter()
    }

    /// How many deltas are queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    /// The part of [`RealFifo::check_invariants`] about one key: its indexed deltas carry
    /// its key, whole-store deltas only in atomic mode. O(log n + its deltas).
    pub fn check_key_invariants(&self, key: &ObjectKey) -> Result<(), String> {
        if !self.atomic && !self.items.whole_store.is_empty() {
            return Err(
                "whole_store_deltas_only_when_atomic: a whole-store delta is queued".into(),
            );
        }
        for sequence in self.items.by_key.get(key).into_iter().flatten() {
            let delta = self.items.get(*sequence);
            if delta.key() != Some(key) {
                return Err(format!("log_index_matches_log: {key} points at {delta:?}"));
            }
            delta.check_tombstone_key()?;
        }
        Ok(())
    }

    /// The queued deltas that touch `key`, oldest first: its own, and the whole-store ones.
    /// O(log n + those deltas).
    pub fn queued_for<'a>(&'a self, key: &ObjectKey) -> impl Iterator<Item = &'a Delta> + use<'a> {
        self.items.for_key(key)
    }

    /// Checks the named invariants of the module doc.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.items.check()?;
        for delta in &self.items.deltas {
            if !self.atomic && delta.key().is_none() {
                return Err(format!(
                    "whole_store_deltas_only_when_atomic: {:?}",
                    delta.delta_type()
                ));
            }
            delta.check_tombstone_key()?;
        }
        let in_flight = usize::from(self.in_flight.is_some());
        if self.initial_population_count > self.items.len() + in_flight {
            return Err(format!(
                "initial_count_within_log: {} initial deltas left, {} queued",
                self.initial_population_count,
                self.items.len()
            ));
        }
        Ok(())
    }
}

fn tombstone(key: ObjectKey, obj: Option<Object>) -> Delta {
    Delta::Deleted(DeltaObject::Tombstone(DeletedFinalStateUnknown {
        key,
        obj,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::indexer::{Indexer, NoKnownObjects};

    fn obj(key: &str, resource_version: u64) -> Object {
        Object::bare(key, resource_version)
    }

    fn dfsu(key: &str, obj: Option<Object>) -> Delta {
        tombstone(ObjectKey::new(key), obj)
    }

    fn log(fifo: &RealFifo) -> Vec<Delta> {
        fifo.queued().cloned().collect()
    }

    #[test]
    fn every_event_is_kept_in_arrival_order_without_dedup() {
        let mut fifo = RealFifo::new(false);
        fifo.add(obj("a", 1));
        fifo.add(obj("b", 2));
        fifo.delete(DeltaObject::Object(obj("a", 3)));
        fifo.delete(DeltaObject::Object(obj("a", 3)));
        let expected = vec![
            Delta::Added(obj("a", 1)),
            Delta::Added(obj("b", 2)),
            Delta::Deleted(DeltaObject::Object(obj("a", 3))),
            Delta::Deleted(DeltaObject::Object(obj("a", 3))),
        ];
        assert_eq!(log(&fifo), expected);
    }

    #[test]
    fn delete_of_an_unknown_key_is_delivered() {
        let mut fifo = RealFifo::new(false);
        fifo.delete(DeltaObject::Object(obj("ghost", 1)));
        assert_eq!(
            fifo.pop().unwrap().deltas,
            vec![Delta::Deleted(DeltaObject::Object(obj("ghost", 1)))]
        );
        fifo.done();
        assert!(fifo.has_synced());
    }

    #[test]
    fn replace_queues_tombstones_before_every_replaced() {
        let mut fifo = RealFifo::new(false);
        let mut indexer = Indexer::default();
        indexer.add(obj("known", 1));
        indexer.add(obj("kept", 1));
        fifo.add(obj("queued", 2));
        fifo.replace(vec![obj("kept", 3), obj("new", 3)], 3, &indexer);
        let expected = vec![
            Delta::Added(obj("queued", 2)),
            dfsu("queued", Some(obj("queued", 2))),
            dfsu("known", Some(obj("known", 1))),
            Delta::Replaced(obj("kept", 3)),
            Delta::Replaced(obj("new", 3)),
        ];
        assert_eq!(log(&fifo), expected);
    }

    #[test]
    fn replace_skips_a_queued_key_whose_last_delta_is_deleted() {
        let mut fifo = RealFifo::new(false);
        let mut indexer = Indexer::default();
        indexer.add(obj("x", 1));
        fifo.delete(DeltaObject::Object(obj("x", 2)));
        fifo.replace(vec![], 5, &indexer);
        assert_eq!(
            log(&fifo),
            vec![Delta::Deleted(DeltaObject::Object(obj("x", 2)))]
        );
    }

    #[test]
    fn replace_keeps_a_queued_deleted_and_appends_replaced_for_a_listed_key() {
        let mut fifo = RealFifo::new(false);
        fifo.delete(DeltaObject::Object(obj("x", 2)));
        fifo.replace(vec![obj("x", 3)], 3, &NoKnownObjects);
        let expected = vec![
            Delta::Deleted(DeltaObject::Object(obj("x", 2))),
            Delta::Replaced(obj("x", 3)),
        ];
        assert_eq!(log(&fifo), expected);
    }

    #[test]
    fn resync_queues_sync_only_for_known_keys_absent_from_the_log() {
        let mut fifo = RealFifo::new(false);
        let mut indexer = Indexer::default();
        indexer.add(obj("x", 10));
        indexer.add(obj("y", 10));
        fifo.update(obj("x", 20));
        fifo.resync(&indexer);
        assert_eq!(
            log(&fifo),
            vec![Delta::Updated(obj("x", 20)), Delta::Sync(obj("y", 10))]
        );
    }

    #[test]
    fn atomic_replace_resync_and_bookmark_queue_one_delta_each() {
        let mut fifo = RealFifo::new(true);
        let mut indexer = Indexer::default();
        indexer.add(obj("old", 1));
        fifo.replace(vec![obj("a", 5)], 5, &indexer);
        fifo.resync(&indexer);
        fifo.bookmark(9);
        let info = ReplacedAllInfo {
            resource_version: 5,
            objects: vec![obj("a", 5)],
        };
        assert_eq!(
            log(&fifo),
            vec![Delta::ReplacedAll(info), Delta::SyncAll, Delta::Bookmark(9)]
        );
        assert_eq!(fifo.check_invariants(), Ok(()));
    }

    #[test]
    fn non_atomic_fifo_ignores_bookmarks() {
        let mut fifo = RealFifo::new(false);
        fifo.bookmark(9);
        assert_eq!(log(&fifo), vec![]);
    }

    #[test]
    fn has_synced_waits_until_the_last_initial_delta_is_processed() {
        let mut fifo = RealFifo::new(false);
        fifo.replace(vec![obj("a", 1), obj("b", 1)], 1, &NoKnownObjects);
        assert!(fifo.pop().unwrap().is_in_initial_list);
        fifo.done();
        let last = fifo.pop().unwrap();
        assert!(last.is_in_initial_list);
        assert!(
            !fifo.has_synced(),
            "not synced while the last initial delta is processed"
        );
        fifo.done();
        assert!(fifo.has_synced());
    }

    #[test]
    fn initial_population_counts_every_delta_in_the_log_after_the_first_replace() {
        let mut fifo = RealFifo::new(false);
        let mut indexer = Indexer::default();
        indexer.add(obj("gone", 1));
        fifo.replace(vec![obj("a", 1)], 1, &indexer);
        assert_eq!(fifo.initial_population_count, 2);
        assert_eq!(fifo.check_invariants(), Ok(()));
    }

    fn keys(popped: &Popped) -> Vec<String> {
        let key = |delta: &Delta| delta.key().map_or("*".to_owned(), ToString::to_string);
        popped.deltas.iter().map(key).collect()
    }

    /// A batch ends before a repeated key, and the repeated key starts the next one.
    #[test]
    fn pop_batch_takes_distinct_keys_up_to_the_first_repeat() {
        let mut fifo = RealFifo::new(false);
        fifo.add(obj("a", 1));
        fifo.add(obj("b", 2));
        fifo.update(obj("a", 3));
        fifo.add(obj("c", 4));
        let batch = fifo.pop_batch().unwrap();
        assert_eq!(keys(&batch), ["a", "b"]);
        fifo.done();
        let batch = fifo.pop_batch().unwrap();
        assert_eq!(keys(&batch), ["a", "c"]);
        fifo.done();
        assert_eq!(fifo.pop_batch().unwrap_err(), PopError::Empty);
    }

    #[test]
    fn pop_batch_never_crosses_the_initial_population_and_counts_it_after_processing() {
        let mut fifo = RealFifo::new(false);
        fifo.replace(vec![obj("a", 1), obj("b", 1)], 1, &NoKnownObjects);
        fifo.add(obj("c", 2));
        let batch = fifo.pop_batch().unwrap();
        assert_eq!(keys(&batch), ["a", "b"]);
        assert!(batch.is_in_initial_list);
        assert!(!fifo.has_synced(), "not while the batch is processed");
        fifo.done();
        assert!(fifo.has_synced());
        let batch = fifo.pop_batch().unwrap();
        assert_eq!(keys(&batch), ["c"]);
        assert!(!batch.is_in_initial_list);
    }

    #[test]
    fn pop_batch_pops_a_whole_store_delta_alone_and_stops_before_one() {
        let mut fifo = RealFifo::new(true);
        fifo.add(obj("a", 1));
        fifo.bookmark(2);
        fifo.add(obj("b", 3));
        for expected in [["a"], ["*"], ["b"]] {
            let batch = fifo.pop_batch().unwrap();
            assert_eq!(keys(&batch), expected);
            fifo.done();
        }
    }

    #[test]
    fn pop_batch_takes_at_most_the_batch_size() {
        let mut fifo = RealFifo::new(false);
        for index in 0..POP_BATCH_SIZE + 5 {
            fifo.add(obj(&format!("k{index}"), index as u64 + 1));
        }
        assert_eq!(fifo.pop_batch().unwrap().deltas.len(), POP_BATCH_SIZE);
        fifo.done();
        assert_eq!(fifo.pop_batch().unwrap().deltas.len(), 5);
    }

    #[test]
    #[should_panic(expected = "still being processed")]
    fn pop_before_done_is_a_caller_bug() {
        let mut fifo = RealFifo::new(true);
        fifo.add(obj("a", 1));
        fifo.add(obj("b", 1));
        let _ = fifo.pop();
        let _ = fifo.pop();
    }

    #[test]
    fn pop_reports_closed_only_once_drained() {
        let mut fifo = RealFifo::new(false);
        assert_eq!(fifo.pop(), Err(PopError::Empty));
        fifo.add(obj("a", 1));
        fifo.close();
        assert!(fifo.pop().is_ok());
        fifo.done();
        assert_eq!(fifo.pop(), Err(PopError::Closed));
        assert!(fifo.is_closed());
    }
}
