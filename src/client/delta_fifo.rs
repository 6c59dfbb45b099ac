//! `DeltaFIFO` (client-go `tools/cache/delta_fifo.go`, SPEC §4.1-4.3): a queue of keys, each
//! with the non-empty list of its pending deltas.
//!
//! Contract (client-go's doc, paraphrased): DeltaFIFO is FIFO over **keys**, not events. A key
//! keeps the place it got when first queued; later deltas for it join that place, and one pop
//! delivers all of them. Only two consecutive `Deleted` deltas are merged. Named invariants
//! ([`DeltaFifo::check_invariants`]):
//! - `queue_matches_items`: a key is in the queue iff it has pending deltas, at most once;
//! - `deltas_non_empty`: no key has an empty delta list;
//! - `deltas_share_the_key`: every delta of a key carries that key;
//! - `tombstone_shares_the_key`: a tombstone's object has the tombstone's key.
//!
//! `knownObjects` (the informer's indexer) is passed into the calls that read it, as a
//! [`KnownObjects`]; [`NoKnownObjects`](super::NoKnownObjects) models a nil `knownObjects`.
//!
//! HasSynced (SPEC §4.2, §9.2 N6): the first Replace sets the initial population count, and
//! [`DeltaFifo::pop`] decrements it **before** the caller processes the popped item, so
//! [`DeltaFifo::has_synced`] is already true while the last initial item is being processed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::bug::{Bug, Bugs};
use crate::client::delta::{DeletedFinalStateUnknown, Delta, DeltaObject, Deltas};
use crate::client::indexer::KnownObjects;
use crate::client::queue::{PopError, PopWait, Popped};
use crate::object::{Object, ObjectKey};

/// client-go `DeltaFIFO`.
#[derive(Clone, Debug)]
pub struct DeltaFifo {
    items: BTreeMap<ObjectKey, Deltas>,
    queue: VecDeque<ObjectKey>,
    /// Set by the first Replace or any Add/Update/Delete.
    populated: bool,
    /// Items of the first Replace not yet popped.
    initial_population_count: usize,
    /// Replace queues `Replaced` (true, as informers build it) or `Sync` (false).
    emit_delta_type_replaced: bool,
    closed: bool,
    /// Where the consumer's Pop stands on the empty queue.
    pop_wait: PopWait,
    /// Planted bugs (SPEC §8 B2, B4, B6, B7 and classic mistakes).
    bugs: Bugs,
}

impl DeltaFifo {
    /// An empty FIFO with `bugs` planted. Informers set `emit_delta_type_replaced` (client-go
    /// `newQueueFIFO`).
    pub fn new(emit_delta_type_replaced: bool, bugs: Bugs) -> DeltaFifo {
        DeltaFifo {
            items: BTreeMap::new(),
            queue: VecDeque::new(),
            populated: false,
            initial_population_count: 0,
            emit_delta_type_replaced,
            closed: false,
            pop_wait: PopWait::Running,
            bugs,
        }
    }

    /// Queues `Added(obj)` (client-go `DeltaFIFO.Add`).
    pub fn add(&mut self, obj: Object) {
        self.populated = true;
        self.queue_action(Delta::Added(obj));
    }

    /// Queues `Updated(obj)` (client-go `DeltaFIFO.Update`).
    pub fn update(&mut self, obj: Object) {
        self.populated = true;
        self.queue_action(Delta::Updated(obj));
    }

    /// Queues `Deleted(obj)` unless the key is neither known nor queued; returns whether it
    /// queued. Mirrors client-go delta_fifo.go Delete: drop only if in neither items nor
    /// knownObjects (the rule PR #27435 fixed, SPEC §8 B7).
    pub fn delete(&mut self, obj: DeltaObject, known: &dyn KnownObjects) -> bool {
        self.populated = true;
        let key = obj.key();
        // Planted: k/k#27004 (B7), a Delete is dropped when only the queue knows the key.
        let queued = self.items.contains_key(key) && !self.bugs.is(Bug::DeleteIgnoresQueuedAdd);
        if known.get_by_key(key).is_none() && !queued {
            return false;
        }
        self.queue_action(Delta::Deleted(obj));
        true
    }

    /// A relist (client-go `DeltaFIFO.Replace`; the resource version is not used): `Replaced`
    /// (or `Sync`) for every listed object, then a tombstone for every queued key missing from
    /// the list, then one for every known key missing from the list and not queued.
    pub fn replace(&mut self, list: Vec<Object>, known: &dyn KnownObjects) {
        let mut keys = BTreeSet::new();
        for obj in list {
            keys.insert(obj.key.clone());
            let pending_delete = self.items.get(&obj.key).and_then(|deltas| deltas.last());
            if self.bugs.is(Bug::ReplaceSkipsKeyWithQueuedDelete)
                && matches!(pending_delete, Some(Delta::Deleted(_)))
            {
                // Planted: k/k#83810 (B2), a listed key whose last queued delta is a Delete
                // gets no Replaced delta.
                continue;
            }
            let delta = if self.emit_delta_type_replaced {
                Delta::Replaced(obj)
            } else {
                Delta::Sync(obj)
            };
            self.queue_action(delta);
        }
        let mut queued_deletions = 0;
        // Mirrors client-go delta_fifo.go Replace: queued keys missing from the list get a
        // tombstone carrying the newest queued state, unwrapped if already a tombstone (B4, B5).
        let missing_queued: Vec<(ObjectKey, Option<Object>)> = self
            .queue
            .iter()
            // Planted: k/k#115658 (B4), queue-only keys missing from the list get no tombstone.
            .filter(|key| !keys.contains(*key) && !self.bugs.is(Bug::ReplaceSkipsQueuedTombstone))
            .map(|key| match known.get_by_key(key) {
                // Planted: cg@a01b5a2a9 (B5), before the rewrite a known key's tombstone took
                // the known object even when a newer state was queued.
                Some(stale) if self.bugs.is(Bug::TombstoneCarriesStaleObject) => {
                    (key.clone(), Some(stale.clone()))
                }
                _ => (key.clone(), self.newest_state(key)),
            })
            .collect();
        for (key, obj) in missing_queued {
            queued_deletions += 1;
            self.queue_tombstone(key, obj);
        }
        // Known keys in key order (client-go: Go map order, SPEC §4.3).
        for key in known.list_keys() {
            if keys.contains(&key) || self.items.contains_key(&key) {
                continue;
            }
            if self.bugs.is(Bug::ReplaceSkipsKnownTombstone) {
                // Planted: classic, a known key missing from the relist gets no tombstone.
                continue;
            }
            queued_deletions += 1;
            let obj = known.get_by_key(&key).cloned();
            self.queue_tombstone(key, obj);
        }
        if !self.populated {
            self.populated = true;
            self.initial_population_count = keys.len() + queued_deletions;
            assert_eq!(self.initial_population_count, self.queue.len());
        }
    }

    /// Mirrors client-go delta_fifo.go Resync/syncKeyLocked: `Sync(known object)` for every
    /// known key without pending deltas, in key order (PR #32125, SPEC §8 B6). A no-op without
    /// known objects.
    pub fn resync(&mut self, known: &dyn KnownObjects) {
        for key in known.list_keys() {
            // Planted: k/k#31981 (B6), resync queues Sync(known) behind a pending newer delta.
            if self.items.contains_key(&key) && !self.bugs.is(Bug::ResyncBehindPendingDelta) {
                continue;
            }
            if let Some(obj) = known.get_by_key(&key) {
                self.queue_action(Delta::Sync(obj.clone()));
            }
        }
    }

    /// Queues `deltas` under their key at the back, unless the key is already queued (client-go
    /// `DeltaFIFO.AddIfNotPresent`, removed in cg@d853ccf18; only the B24 planted requeue uses it).
    pub fn add_if_not_present(&mut self, deltas: Deltas) {
        let key = deltas
            .last()
            .and_then(Delta::key)
            .expect("popped deltas carry a key")
            .clone();
        if self.items.contains_key(&key) {
            return;
        }
        self.populated = true;
        self.items.insert(key.clone(), deltas);
        self.queue.push_back(key);
    }

    /// Pops the oldest key with all its deltas, or says why not (client-go `DeltaFIFO.Pop`,
    /// which would block on `Empty`). The initial population count is decremented here, before
    /// the caller processes the item (SPEC §9.2 N6).
    pub fn pop(&mut self) -> Result<Popped, PopError> {
        let Some(key) = self.queue.pop_front() else {
            return Err(self.pop_empty());
        };
        self.pop_wait = PopWait::Running;
        let is_in_initial_list = !self.has_synced();
        if self.initial_population_count > 0 {
            self.initial_population_count -= 1;
        }
        let deltas = self.items.remove(&key).expect("a queued key has deltas");
        assert!(!deltas.is_empty());
        Ok(Popped {
            deltas,
            is_in_initial_list,
        })
    }

    /// Whether the first Replace has been popped in full, or an Add/Update/Delete came first
    /// (client-go `DeltaFIFO.HasSynced`).
    pub fn has_synced(&self) -> bool {
        self.populated && self.initial_population_count == 0
    }

    /// Pop found the queue empty: `ErrFIFOClosed` if closed, else it waits for a broadcast.
    /// Mirrors client-go delta_fifo.go Pop since cg@73aa499de: Close holds the FIFO lock, so
    /// Pop's `closed` check and its `cond.Wait` are one step as far as Close is concerned.
    fn pop_empty(&mut self) -> PopError {
        if self.closed {
            self.pop_wait = PopWait::Running;
            return PopError::Closed;
        }
        if self.bugs.is(Bug::PopMissesClose) {
            // Planted: k/k#90581 (B28), before cg@73aa499de Close set `closed` under its own
            // lock and broadcast without the FIFO lock, so it could land between the two steps.
            self.pop_wait = PopWait::CheckedOpen;
            return PopError::NotYetWaiting;
        }
        self.pop_wait = PopWait::Waiting;
        PopError::Empty
    }

    /// The second step of a Pop that returned [`PopError::NotYetWaiting`]: it waits, even if
    /// Close came in between (that broadcast found no waiter and is lost). An item queued
    /// meanwhile ends the loop instead (upstream's Add could not land there: Pop held the lock).
    /// A no-op in any other state.
    pub fn wait(&mut self) {
        if self.pop_wait == PopWait::CheckedOpen {
            self.pop_wait = if self.queue.is_empty() {
                PopWait::Waiting
            } else {
                PopWait::Running
            };
        }
    }

    /// Where the consumer's Pop stands on the empty queue.
    pub fn pop_wait(&self) -> PopWait {
        self.pop_wait
    }

    /// Closes the FIFO and wakes a waiting Pop (client-go `Close` broadcasts); pops drain what
    /// is queued, then report [`PopError::Closed`]. A Pop that has only checked `closed`
    /// (B28) is not waiting yet, so it is not woken.
    pub fn close(&mut self) {
        self.closed = true;
        if self.pop_wait == PopWait::Waiting {
            self.pop_wait = PopWait::Running;
        }
    }

    /// Whether [`DeltaFifo::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Items of the first Replace not yet popped (client-go `initialPopulationCount`).
    pub fn initial_population_count(&self) -> usize {
        self.initial_population_count
    }

    /// The queued keys in pop order, with their pending deltas.
    pub fn queued(&self) -> impl Iterator<Item = (&ObjectKey, &Deltas)> {
        self.queue.iter().map(|key| (key, &self.items[key]))
    }

    /// How many keys are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The queued keys in pop order.
    pub fn list_keys(&self) -> Vec<ObjectKey> {
        self.queue.iter().cloned().collect()
    }

    /// The queued deltas of `key`, oldest first. O(log n).
    pub fn queued_for(&self, key: &ObjectKey) -> &[Delta] {
        self.items.get(key).map_or(&[], |deltas| deltas.as_slice())
    }

    /// The cheap part of [`DeltaFifo::check_invariants`], for one key: its deltas, if queued,
    /// are non-empty and carry its key, and the queue is as long as the items.
    pub fn check_key_invariants(&self, key: &ObjectKey) -> Result<(), String> {
        if self.queue.len() != self.items.len() {
            return Err(format!(
                "queue_matches_items: {} queued keys, {} with deltas",
                self.queue.len(),
                self.items.len()
            ));
        }
        let Some(deltas) = self.items.get(key) else {
            return Ok(());
        };
        if deltas.is_empty() {
            return Err(format!("deltas_non_empty: {key} has no deltas"));
        }
        for delta in deltas {
            if delta.key() != Some(key) {
                return Err(format!(
                    "deltas_share_the_key: {delta:?} queued under {key}"
                ));
            }
            delta.check_tombstone_key()?;
        }
        Ok(())
    }

    /// Checks the named invariants of the module doc. O(n).
    pub fn check_invariants(&self) -> Result<(), String> {
        let queued: BTreeSet<&ObjectKey> = self.queue.iter().collect();
        if queued.len() != self.queue.len() {
            return Err(format!(
                "queue_matches_items: duplicate key in {:?}",
                self.queue
            ));
        }
        if !queued.iter().copied().eq(self.items.keys()) {
            return Err(format!(
                "queue_matches_items: queue {queued:?} vs items {:?}",
                self.items.keys()
            ));
        }
        for (key, deltas) in &self.items {
            if deltas.is_empty() {
                return Err(format!("deltas_non_empty: {key} has no deltas"));
            }
            for delta in deltas {
                if delta.key() != Some(key) {
                    return Err(format!(
                        "deltas_share_the_key: {delta:?} queued under {key}"
                    ));
                }
                delta.check_tombstone_key()?;
            }
        }
        Ok(())
    }

    /// The newest object state queued for `key`, unwrapping a tombstone.
    fn newest_state(&self, key: &ObjectKey) -> Option<Object> {
        let newest = self.items[key].last().expect("deltas are non-empty");
        newest.newest_state().cloned()
    }

    fn queue_tombstone(&mut self, key: ObjectKey, obj: Option<Object>) {
        let tombstone = DeletedFinalStateUnknown { key, obj };
        self.queue_action(Delta::Deleted(DeltaObject::Tombstone(tombstone)));
    }

    /// Appends `delta` to its key's deltas, dedups, and queues the key if it is new (client-go
    /// `queueActionLocked`).
    fn queue_action(&mut self, delta: Delta) {
        let key = delta
            .key()
            .expect("DeltaFIFO queues per-object deltas only")
            .clone();
        let deltas = self.items.entry(key.clone()).or_default();
        let is_new = deltas.is_empty();
        deltas.push(delta);
        if self.bugs.is(Bug::DedupAnyTwoDeltas) && deltas.len() >= 2 {
            // Planted: classic, any two consecutive deltas are taken as duplicates (the older
            // one is kept, as for two Deleted).
            deltas.pop();
        }
        dedup_deltas(deltas);
        if is_new {
            self.queue.push_back(key);
        }
        assert!(!self.items[self.queue.back().expect("queue non-empty")].is_empty());
    }
}

/// Mirrors client-go delta_fifo.go dedupDeltas: only the last two deltas are compared, and only
/// two consecutive `Deleted` merge into one.
pub fn dedup_deltas(deltas: &mut Deltas) {
    let n = deltas.len();
    if n < 2 {
        return;
    }
    if let Some(kept) = is_deletion_dup(&deltas[n - 2], &deltas[n - 1]) {
        let kept = kept.clone();
        deltas.truncate(n - 2);
        deltas.push(kept);
    }
}

/// Mirrors client-go delta_fifo.go isDeletionDup: of two `Deleted`, keep the older one unless
/// the older carries a tombstone, then keep the newer; anything else is not a duplicate.
fn is_deletion_dup<'a>(older: &'a Delta, newer: &'a Delta) -> Option<&'a Delta> {
    match (older, newer) {
        (Delta::Deleted(older_obj), Delta::Deleted(_)) if older_obj.is_tombstone() => Some(newer),
        (Delta::Deleted(_), Delta::Deleted(_)) => Some(older),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::indexer::{Indexer, NoKnownObjects};

    fn obj(key: &str, resource_version: u64) -> Object {
        Object::bare(key, resource_version)
    }

    fn tombstone(key: &str, obj: Option<Object>) -> DeltaObject {
        DeltaObject::Tombstone(DeletedFinalStateUnknown {
            key: ObjectKey::new(key),
            obj,
        })
    }

    fn deleted(obj: Object) -> DeltaObject {
        DeltaObject::Object(obj)
    }

    fn deltas_of<'a>(fifo: &'a DeltaFifo, key: &str) -> &'a Deltas {
        &fifo.items[&ObjectKey::new(key)]
    }

    #[test]
    fn dedup_merges_only_two_consecutive_deleted() {
        let mut deltas = vec![Delta::Added(obj("a", 1)), Delta::Updated(obj("a", 2))];
        deltas.push(Delta::Updated(obj("a", 3)));
        dedup_deltas(&mut deltas);
        assert_eq!(deltas.len(), 3);
        deltas.push(Delta::Deleted(deleted(obj("a", 4))));
        deltas.push(Delta::Deleted(deleted(obj("a", 5))));
        dedup_deltas(&mut deltas);
        assert_eq!(deltas.len(), 4);
        assert_eq!(deltas[3], Delta::Deleted(deleted(obj("a", 4))));
    }

    #[test]
    fn dedup_keeps_the_newer_deleted_when_the_older_is_a_tombstone() {
        let mut deltas = vec![Delta::Deleted(tombstone("a", None))];
        deltas.push(Delta::Deleted(deleted(obj("a", 5))));
        dedup_deltas(&mut deltas);
        assert_eq!(deltas, vec![Delta::Deleted(deleted(obj("a", 5)))]);
    }

    #[test]
    fn a_key_keeps_its_first_queue_position() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("a", 1));
        fifo.add(obj("b", 2));
        fifo.update(obj("a", 3));
        assert_eq!(
            fifo.list_keys(),
            vec![ObjectKey::new("a"), ObjectKey::new("b")]
        );
        let popped = fifo.pop().unwrap();
        assert_eq!(
            popped.deltas,
            vec![Delta::Added(obj("a", 1)), Delta::Updated(obj("a", 3))]
        );
        assert_eq!(fifo.check_invariants(), Ok(()));
    }

    #[test]
    fn delete_of_a_key_neither_known_nor_queued_is_dropped() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let indexer = Indexer::default();
        assert!(!fifo.delete(deleted(obj("a", 1)), &indexer));
        assert!(fifo.list_keys().is_empty());
        assert!(fifo.has_synced(), "a Delete still marks the FIFO populated");
    }

    #[test]
    fn delete_while_the_add_is_still_queued_is_kept() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("a", 1));
        assert!(fifo.delete(deleted(obj("a", 2)), &NoKnownObjects));
        assert_eq!(deltas_of(&fifo, "a").len(), 2);
    }

    #[test]
    fn delete_of_a_key_known_only_to_the_indexer_is_queued_with_the_passed_object() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("a", 1));
        assert!(fifo.delete(deleted(obj("a", 9)), &indexer));
        assert_eq!(
            deltas_of(&fifo, "a"),
            &vec![Delta::Deleted(deleted(obj("a", 9)))]
        );
    }

    #[test]
    fn replace_emits_tombstone_for_queued_key_missing_from_list() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("o", 200));
        fifo.replace(vec![obj("p", 205)], &Indexer::default());
        let expected = vec![
            Delta::Added(obj("o", 200)),
            Delta::Deleted(tombstone("o", Some(obj("o", 200)))),
        ];
        assert_eq!(deltas_of(&fifo, "o"), &expected);
        assert_eq!(fifo.check_invariants(), Ok(()));
    }

    #[test]
    fn replace_unwraps_a_queued_tombstone_instead_of_wrapping_it_again() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("o", 1));
        fifo.replace(vec![], &NoKnownObjects);
        fifo.replace(vec![], &NoKnownObjects);
        let expected = vec![
            Delta::Added(obj("o", 1)),
            Delta::Deleted(tombstone("o", Some(obj("o", 1)))),
        ];
        assert_eq!(deltas_of(&fifo, "o"), &expected);
    }

    #[test]
    fn replace_emits_tombstone_with_the_known_object_for_an_unqueued_known_key() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("k", 3));
        fifo.replace(vec![], &indexer);
        assert_eq!(
            deltas_of(&fifo, "k"),
            &vec![Delta::Deleted(tombstone("k", Some(obj("k", 3))))]
        );
    }

    #[test]
    fn replace_keeps_a_pending_deleted_before_the_replaced() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("x", 1));
        fifo.delete(deleted(obj("x", 2)), &indexer);
        fifo.replace(vec![obj("x", 3)], &indexer);
        let expected = vec![
            Delta::Deleted(deleted(obj("x", 2))),
            Delta::Replaced(obj("x", 3)),
        ];
        assert_eq!(deltas_of(&fifo, "x"), &expected);
    }

    #[test]
    fn replace_queues_new_keys_in_list_order_after_queued_keys_then_known_tombstones() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("k2", 1));
        indexer.add(obj("k1", 1));
        fifo.add(obj("q", 1));
        fifo.replace(vec![obj("z", 2), obj("q", 2), obj("m", 2)], &indexer);
        let order: Vec<&str> = fifo.queue.iter().map(ObjectKey::as_str).collect();
        assert_eq!(order, vec!["q", "z", "m", "k1", "k2"]);
    }

    #[test]
    fn replace_without_emit_delta_type_replaced_queues_sync() {
        let mut fifo = DeltaFifo::new(false, Bugs::NONE);
        fifo.replace(vec![obj("a", 1)], &NoKnownObjects);
        assert_eq!(deltas_of(&fifo, "a"), &vec![Delta::Sync(obj("a", 1))]);
    }

    #[test]
    fn resync_skips_keys_with_pending_deltas() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("x", 10));
        indexer.add(obj("y", 10));
        fifo.update(obj("x", 20));
        fifo.resync(&indexer);
        assert_eq!(deltas_of(&fifo, "x"), &vec![Delta::Updated(obj("x", 20))]);
        assert_eq!(deltas_of(&fifo, "y"), &vec![Delta::Sync(obj("y", 10))]);
    }

    #[test]
    fn resync_without_known_objects_is_a_no_op() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.resync(&NoKnownObjects);
        assert!(fifo.list_keys().is_empty());
        assert!(!fifo.has_synced());
    }

    #[test]
    fn has_synced_turns_true_when_the_last_initial_item_is_popped_before_processing() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.replace(vec![obj("a", 1), obj("b", 1)], &NoKnownObjects);
        assert!(!fifo.has_synced());
        assert!(fifo.pop().unwrap().is_in_initial_list);
        assert!(!fifo.has_synced());
        let last = fifo.pop().unwrap();
        assert!(last.is_in_initial_list);
        assert!(
            fifo.has_synced(),
            "N6: synced before the caller processed the last item"
        );
    }

    #[test]
    fn has_synced_is_true_at_once_after_an_empty_first_replace_or_an_add_first() {
        let mut empty = DeltaFifo::new(true, Bugs::NONE);
        empty.replace(vec![], &NoKnownObjects);
        assert!(empty.has_synced());
        let mut added = DeltaFifo::new(true, Bugs::NONE);
        added.add(obj("a", 1));
        added.replace(vec![obj("b", 1)], &NoKnownObjects);
        assert!(added.has_synced(), "only the first populating call counts");
    }

    #[test]
    fn initial_population_counts_tombstones_of_the_first_replace() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        let mut indexer = Indexer::default();
        indexer.add(obj("gone", 1));
        fifo.replace(vec![obj("a", 1)], &indexer);
        assert_eq!(fifo.initial_population_count, 2);
        assert!(fifo.pop().unwrap().is_in_initial_list);
        assert!(fifo.pop().unwrap().is_in_initial_list);
        assert!(fifo.has_synced());
    }

    #[test]
    fn planted_stale_tombstone_takes_the_known_object_over_the_newer_queued_one() {
        let mut indexer = Indexer::default();
        indexer.add(obj("k", 1));
        for (bugs, carried) in [
            (Bugs::NONE, 2),
            (Bugs::new(Some(Bug::TombstoneCarriesStaleObject)), 1),
        ] {
            let mut fifo = DeltaFifo::new(true, bugs);
            fifo.update(obj("k", 2));
            fifo.replace(vec![], &indexer);
            let expected = Delta::Deleted(tombstone("k", Some(obj("k", carried))));
            assert_eq!(deltas_of(&fifo, "k").last(), Some(&expected));
        }
    }

    #[test]
    fn add_if_not_present_requeues_at_the_back_only_an_absent_key() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("a", 1));
        fifo.add(obj("b", 2));
        let popped = fifo.pop().unwrap();
        fifo.add_if_not_present(popped.deltas.clone());
        assert_eq!(
            fifo.list_keys(),
            vec![ObjectKey::new("b"), ObjectKey::new("a")]
        );
        fifo.add_if_not_present(vec![Delta::Added(obj("b", 1))]);
        assert_eq!(deltas_of(&fifo, "b"), &vec![Delta::Added(obj("b", 2))]);
        assert_eq!(fifo.check_invariants(), Ok(()));
    }

    #[test]
    fn pop_reports_empty_then_closed_after_draining() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        assert_eq!(fifo.pop(), Err(PopError::Empty));
        fifo.add(obj("a", 1));
        fifo.close();
        assert!(fifo.is_closed());
        assert!(fifo.pop().is_ok(), "close does not discard queued items");
        assert_eq!(fifo.pop(), Err(PopError::Closed));
    }

    #[test]
    fn close_wakes_the_pop_waiting_on_the_empty_queue() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        assert_eq!(fifo.pop(), Err(PopError::Empty));
        assert_eq!(
            fifo.pop_wait(),
            PopWait::Waiting,
            "check and wait are one step"
        );
        fifo.close();
        assert_eq!(fifo.pop_wait(), PopWait::Running);
        fifo.wait();
        assert_eq!(fifo.pop_wait(), PopWait::Running, "no second step to take");
        assert_eq!(fifo.pop(), Err(PopError::Closed));
    }

    #[test]
    fn planted_b28_a_close_between_check_and_wait_is_lost() {
        let mut fifo = DeltaFifo::new(true, Bugs::new(Some(Bug::PopMissesClose)));
        assert_eq!(fifo.pop(), Err(PopError::NotYetWaiting));
        assert_eq!(fifo.pop_wait(), PopWait::CheckedOpen);
        fifo.close();
        assert_eq!(fifo.pop_wait(), PopWait::CheckedOpen, "no waiter to wake");
        fifo.wait();
        assert_eq!(fifo.pop_wait(), PopWait::Waiting, "waits on a closed FIFO");
    }

    #[test]
    fn planted_b28_a_pop_that_waits_before_the_close_is_woken() {
        let mut fifo = DeltaFifo::new(true, Bugs::new(Some(Bug::PopMissesClose)));
        assert_eq!(fifo.pop(), Err(PopError::NotYetWaiting));
        fifo.wait();
        assert_eq!(fifo.pop_wait(), PopWait::Waiting);
        fifo.close();
        assert_eq!(fifo.pop_wait(), PopWait::Running);
    }

    #[test]
    fn planted_b28_an_item_queued_before_the_wait_ends_the_loop() {
        let mut fifo = DeltaFifo::new(true, Bugs::new(Some(Bug::PopMissesClose)));
        assert_eq!(fifo.pop(), Err(PopError::NotYetWaiting));
        fifo.add(obj("a", 1));
        fifo.wait();
        assert_eq!(fifo.pop_wait(), PopWait::Running);
        assert!(fifo.pop().is_ok());
    }

    #[test]
    fn the_invariant_check_catches_a_queue_entry_without_deltas() {
        let mut fifo = DeltaFifo::new(true, Bugs::NONE);
        fifo.add(obj("a", 1));
        fifo.queue.push_back(ObjectKey::new("b"));
        assert!(
            fifo.check_invariants()
                .unwrap_err()
                .starts_with("queue_matches_items")
        );
    }
}
