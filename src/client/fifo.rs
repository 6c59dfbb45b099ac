//! One surface over the three queue modes an informer can be built with (client-go
//! `controller.go newQueueFIFO`): DeltaFIFO, RealFIFO, atomic RealFIFO (SPEC §12).
//!
//! Calling order for the consumer, as the informer runs it under the FIFO lock: [`Fifo::pop`],
//! apply the deltas ([`process_deltas`](super::process_deltas)), then [`Fifo::done`]. `known` is
//! the informer's indexer (client-go `knownObjects`); the atomic mode never reads it.

use std::fmt;
use std::str::FromStr;

use crate::bug::Bugs;
use crate::client::delta::{Delta, DeltaList, DeltaObject, Deltas};
use crate::client::delta_fifo::DeltaFifo;
use crate::client::indexer::KnownObjects;
use crate::client::queue::{PopError, PopWait, Popped};
use crate::client::real_fifo::RealFifo;
use crate::object::{Object, ObjectKey, ResourceVersion};

/// Which queue an informer uses (SPEC §0, §12); scenarios name it as [`FifoKind::as_str`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FifoKind {
    /// `DeltaFIFO` with `EmitDeltaTypeReplaced` (the legacy informer).
    Delta,
    /// `RealFIFO` with the indexer as known objects (`InOrderInformers`).
    Real,
    /// `RealFIFO` in atomic mode (`AtomicFIFO`).
    RealAtomic,
}

impl FifoKind {
    /// Every kind, in declaration order.
    pub const ALL: [FifoKind; 3] = [FifoKind::Delta, FifoKind::Real, FifoKind::RealAtomic];

    /// The kind's name: `delta`, `real` or `real-atomic`.
    pub fn as_str(self) -> &'static str {
        match self {
            FifoKind::Delta => "delta",
            FifoKind::Real => "real",
            FifoKind::RealAtomic => "real-atomic",
        }
    }
}

impl fmt::Display for FifoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FifoKind {
    type Err = String;

    fn from_str(name: &str) -> Result<FifoKind, String> {
        FifoKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| format!("unknown fifo {name:?} (allowed: delta, real, real-atomic)"))
    }
}

/// An informer's queue, in one of the three modes.
#[derive(Clone, Debug)]
pub enum Fifo {
    /// DeltaFIFO.
    Delta(DeltaFifo),
    /// RealFIFO, non-atomic or atomic.
    Real(RealFifo),
}

impl fmt::Display for Fifo {
    /// DeltaFIFO as `items{key: [deltas], ...}` in queue order (with `initialPopulationCount`
    /// until it drains); RealFIFO as `queue[deltas]`, its log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fifo::Delta(fifo) => {
                f.write_str("items{")?;
                for (index, (key, deltas)) in fifo.queued().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {}", DeltaList(deltas))?;
                }
                f.write_str("}")?;
                if fifo.initial_population_count() > 0 {
                    write!(
                        f,
                        " initialPopulationCount={}",
                        fifo.initial_population_count()
                    )?;
                }
                Ok(())
            }
            Fifo::Real(fifo) => {
                let deltas: Vec<Delta> = fifo.queued().cloned().collect();
                write!(f, "queue{}", DeltaList(&deltas))
            }
        }
    }
}

impl Fifo {
    /// An empty queue wired as client-go's `newQueueFIFO` wires it, with `bugs` planted
    /// (DeltaFIFO's only).
    pub fn new(kind: FifoKind, bugs: Bugs) -> Fifo {
        match kind {
            FifoKind::Delta => Fifo::Delta(DeltaFifo::new(true, bugs)),
            FifoKind::Real => Fifo::Real(RealFifo::new(false)),
            FifoKind::RealAtomic => Fifo::Real(RealFifo::new(true)),
        }
    }

    /// The mode.
    pub fn kind(&self) -> FifoKind {
        match self {
            Fifo::Delta(_) => FifoKind::Delta,
            Fifo::Real(fifo) if fifo.is_atomic() => FifoKind::RealAtomic,
            Fifo::Real(_) => FifoKind::Real,
        }
    }

    /// A watch ADDED event.
    pub fn add(&mut self, obj: Object) {
        match self {
            Fifo::Delta(fifo) => fifo.add(obj),
            Fifo::Real(fifo) => fifo.add(obj),
        }
    }

    /// A watch MODIFIED event.
    pub fn update(&mut self, obj: Object) {
        match self {
            Fifo::Delta(fifo) => fifo.update(obj),
            Fifo::Real(fifo) => fifo.update(obj),
        }
    }

    /// A watch DELETED event; returns whether it was queued (DeltaFIFO drops a key that is
    /// neither known nor queued, RealFIFO never drops).
    pub fn delete(&mut self, obj: DeltaObject, known: &dyn KnownObjects) -> bool {
        match self {
            Fifo::Delta(fifo) => fifo.delete(obj, known),
            Fifo::Real(fifo) => {
                fifo.delete(obj);
                true
            }
        }
    }

    /// A relist at `resource_version`.
    pub fn replace(
        &mut self,
        list: Vec<Object>,
        resource_version: ResourceVersion,
        known: &dyn KnownObjects,
    ) {
        match self {
            Fifo::Delta(fifo) => fifo.replace(list, known),
            Fifo::Real(fifo) => fifo.replace(list, resource_version, known),
        }
    }

    /// A periodic resync.
    pub fn resync(&mut self, known: &dyn KnownObjects) {
        match self {
            Fifo::Delta(fifo) => fifo.resync(known),
            Fifo::Real(fifo) => fifo.resync(known),
        }
    }

    /// A bookmark: queued only by the atomic mode.
    pub fn bookmark(&mut self, resource_version: ResourceVersion) {
        if let Fifo::Real(fifo) = self {
            fifo.bookmark(resource_version);
        }
    }

    /// Requeues popped deltas unless their key is queued (DeltaFIFO's removed
    /// `AddIfNotPresent`, SPEC §8 B24); RealFIFO never had it, so there it does nothing.
    pub fn add_if_not_present(&mut self, deltas: Deltas) {
        if let Fifo::Delta(fifo) = self {
            fifo.add_if_not_present(deltas);
        }
    }

    /// The queued deltas in pop order: one slice per key (DeltaFIFO) or per delta (RealFIFO).
    pub fn pending(&self) -> Vec<&[Delta]> {
        match self {
            Fifo::Delta(fifo) => fifo.queued().map(|(_, deltas)| deltas.as_slice()).collect(),
            Fifo::Real(fifo) => fifo.queued().map(std::slice::from_ref).collect(),
        }
    }

    /// Pops the next item; follow with [`Fifo::done`] once it is processed.
    pub fn pop(&mut self) -> Result<Popped, PopError> {
        match self {
            Fifo::Delta(fifo) => fifo.pop(),
            Fifo::Real(fifo) => fifo.pop(),
        }
    }

    /// client-go `PopBatch`: RealFIFO's next run of batchable deltas with distinct keys
    /// ([`RealFifo::pop_batch`]); DeltaFIFO has none and pops one key, as `processLoop` does
    /// with a queue that is no `QueueWithBatch`.
    pub fn pop_batch(&mut self) -> Result<Popped, PopError> {
        match self {
            Fifo::Delta(fifo) => fifo.pop(),
            Fifo::Real(fifo) => fifo.pop_batch(),
        }
    }

    /// Ends the processing of the last popped item (only RealFIFO counts it for HasSynced).
    pub fn done(&mut self) {
        if let Fifo::Real(fifo) = self {
            fifo.done();
        }
    }

    /// client-go `HasSynced`.
    pub fn has_synced(&self) -> bool {
        match self {
            Fifo::Delta(fifo) => fifo.has_synced(),
            Fifo::Real(fifo) => fifo.has_synced(),
        }
    }

    /// The second step of a DeltaFIFO Pop that returned [`PopError::NotYetWaiting`].
    pub fn wait(&mut self) {
        if let Fifo::Delta(fifo) = self {
            fifo.wait();
        }
    }

    /// Where the consumer's Pop stands on the empty queue. RealFIFO is always
    /// [`PopWait::Running`] here: its Close holds the FIFO lock (the_real_fifo.go Close), so a
    /// Pop cannot miss it, and the model does not track its waiter.
    pub fn pop_wait(&self) -> PopWait {
        match self {
            Fifo::Delta(fifo) => fifo.pop_wait(),
            Fifo::Real(_) => PopWait::Running,
        }
    }

    /// client-go `Close`.
    pub fn close(&mut self) {
        match self {
            Fifo::Delta(fifo) => fifo.close(),
            Fifo::Real(fifo) => fifo.close(),
        }
    }

    /// client-go `IsClosed`.
    pub fn is_closed(&self) -> bool {
        match self {
            Fifo::Delta(fifo) => fifo.is_closed(),
            Fifo::Real(fifo) => fifo.is_closed(),
        }
    }

    /// The mode's structural invariants. O(n).
    pub fn check_invariants(&self) -> Result<(), String> {
        match self {
            Fifo::Delta(fifo) => fifo.check_invariants(),
            Fifo::Real(fifo) => fifo.check_invariants(),
        }
    }

    /// The part of [`Fifo::check_invariants`] about one key. O(log n + its deltas).
    pub fn check_key_invariants(&self, key: &ObjectKey) -> Result<(), String> {
        match self {
            Fifo::Delta(fifo) => fifo.check_key_invariants(key),
            Fifo::Real(fifo) => fifo.check_key_invariants(key),
        }
    }

    /// The queued deltas that touch `key`, oldest first (a `ReplacedAll` touches every key).
    /// O(log n + those deltas).
    pub fn queued_for<'a>(&'a self, key: &ObjectKey) -> Box<dyn Iterator<Item = &'a Delta> + 'a> {
        match self {
            Fifo::Delta(fifo) => Box::new(fifo.queued_for(key).iter()),
            Fifo::Real(fifo) => Box::new(fifo.queued_for(key)),
        }
    }

    /// How many items are queued (keys for DeltaFIFO, deltas for RealFIFO).
    pub fn len(&self) -> usize {
        match self {
            Fifo::Delta(fifo) => fifo.len(),
            Fifo::Real(fifo) => fifo.len(),
        }
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in FifoKind::ALL {
            assert_eq!(kind.as_str().parse::<FifoKind>(), Ok(kind));
            assert_eq!(Fifo::new(kind, Bugs::NONE).kind(), kind);
        }
        assert!(
            "deque"
                .parse::<FifoKind>()
                .unwrap_err()
                .contains("real-atomic")
        );
    }

    #[test]
    fn done_is_a_no_op_for_delta_fifo_whose_count_drops_at_pop() {
        let mut fifo = Fifo::new(FifoKind::Delta, Bugs::NONE);
        fifo.replace(
            vec![Object::bare("a", 1)],
            1,
            &crate::client::NoKnownObjects,
        );
        let popped = fifo.pop().unwrap();
        assert_eq!(popped.key(), Some(&ObjectKey::new("a")));
        assert!(fifo.has_synced());
        fifo.done();
        assert!(fifo.has_synced());
    }

    mod convergence {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::super::*;
        use crate::client::delta::DeletedFinalStateUnknown;
        use crate::client::indexer::Indexer;
        use crate::client::process_deltas::process_deltas;

        const KEYS: [&str; 4] = ["ns1/a", "ns1/b", "ns2/a", "c"];

        #[derive(Clone, Debug)]
        enum Op {
            Add(Object),
            Update(Object),
            Delete(Object),
            DeleteTombstone(ObjectKey, Option<Object>),
            Replace(Vec<Object>, ResourceVersion),
            Resync,
            Bookmark(ResourceVersion),
            Pop,
        }

        /// Objects over a few keys, with labels that give each index 0, 1 or 2 values.
        fn object() -> impl Strategy<Value = Object> {
            (
                0..KEYS.len(),
                1..100u64,
                proptest::option::of(0..2u8),
                any::<bool>(),
            )
                .prop_map(|(key, resource_version, app, tier)| {
                    let mut obj = Object::bare(KEYS[key], resource_version);
                    if let Some(app) = app {
                        std::sync::Arc::make_mut(&mut obj.labels)
                            .insert("app".to_owned(), format!("a{app}"));
                    }
                    if tier {
                        std::sync::Arc::make_mut(&mut obj.labels)
                            .insert("tier".to_owned(), "t".to_owned());
                    }
                    obj
                })
        }

        /// A relist: at most one object per key.
        fn list() -> impl Strategy<Value = Vec<Object>> {
            proptest::collection::vec(object(), 0..5).prop_map(|objects| {
                let unique: BTreeMap<ObjectKey, Object> = objects
                    .into_iter()
                    .map(|obj| (obj.key.clone(), obj))
                    .collect();
                unique.into_values().rev().collect()
            })
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => object().prop_map(Op::Add),
                3 => object().prop_map(Op::Update),
                2 => object().prop_map(Op::Delete),
                1 => (object(), any::<bool>()).prop_map(|(obj, keep)| {
                    Op::DeleteTombstone(obj.key.clone(), keep.then_some(obj))
                }),
                1 => (list(), 1..100u64).prop_map(|(list, rv)| Op::Replace(list, rv)),
                1 => Just(Op::Resync),
                1 => (1..100u64).prop_map(Op::Bookmark),
                4 => Just(Op::Pop),
            ]
        }

        fn pop_and_process(fifo: &mut Fifo, indexer: &mut Indexer) -> bool {
            let Ok(popped) = fifo.pop() else {
                return false;
            };
            process_deltas(indexer, &popped.deltas, popped.is_in_initial_list);
            fifo.done();
            true
        }

        fn apply(fifo: &mut Fifo, indexer: &mut Indexer, op: Op) {
            match op {
                Op::Add(obj) => fifo.add(obj),
                Op::Update(obj) => fifo.update(obj),
                Op::Delete(obj) => {
                    fifo.delete(DeltaObject::Object(obj), indexer);
                }
                Op::DeleteTombstone(key, obj) => {
                    let tombstone = DeletedFinalStateUnknown { key, obj };
                    fifo.delete(DeltaObject::Tombstone(tombstone), indexer);
                }
                Op::Replace(list, rv) => fifo.replace(list, rv, indexer),
                Op::Resync => fifo.resync(indexer),
                Op::Bookmark(rv) => fifo.bookmark(rv),
                Op::Pop => {
                    pop_and_process(fifo, indexer);
                }
            }
        }

        proptest! {
            #[test]
            fn invariants_hold_after_every_op_and_a_final_relist_converges(
                ops in proptest::collection::vec(op(), 0..40),
                final_list in list(),
            ) {
                for kind in FifoKind::ALL {
                    let mut fifo = Fifo::new(kind, Bugs::NONE);
                    let mut indexer = Indexer::default();
                    for op in ops.iter().cloned() {
                        apply(&mut fifo, &mut indexer, op);
                        prop_assert_eq!(fifo.check_invariants(), Ok(()), "{}", kind);
                        prop_assert_eq!(indexer.check_index_invariant(), Ok(()), "{}", kind);
                    }
                    fifo.replace(final_list.clone(), 1000, &indexer);
                    while pop_and_process(&mut fifo, &mut indexer) {
                        prop_assert_eq!(indexer.check_index_invariant(), Ok(()), "{}", kind);
                    }
                    let mut expected: Vec<&Object> = final_list.iter().collect();
                    expected.sort_by(|a, b| a.key.cmp(&b.key));
                    prop_assert_eq!(indexer.list(), expected, "{} did not converge", kind);
                    prop_assert!(fifo.has_synced(), "{} not synced once drained", kind);
                }
            }
        }
    }
}
