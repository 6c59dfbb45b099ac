//! Where an informer's `TransformFunc` runs (client-go `SharedIndexInformer.SetTransform`). The
//! model leaves objects as they are and counts, per object state, how many times client-go
//! would have run the transform on it before it reached the indexer: once for a watch event or
//! a listed item, never again for a Sync or a tombstone, and twice for a watch-list's initial
//! objects (its temporary store transforms on `Add`, the FIFO's `Replace` again; k/k#131799).
//! A transform that is not idempotent changes such an object twice.

use std::collections::BTreeMap;

use crate::object::{Object, ObjectKey, ResourceVersion};

/// How many times the transform ran on each queued object state, until it is processed.
#[derive(Clone, Debug, Default)]
pub struct TransformLedger {
    runs: BTreeMap<(ObjectKey, ResourceVersion), u32>,
}

impl TransformLedger {
    /// `obj` was queued after `runs` transforms (a state queued twice counts its larger run,
    /// since each queueing transformed the untransformed object anew).
    pub fn queued(&mut self, obj: &Object, runs: u32) {
        let entry = self
            .runs
            .entry((obj.key.clone(), obj.resource_version))
            .or_default();
        *entry = (*entry).max(runs);
    }

    /// How many times the transform ran on `obj` as it reaches the indexer (0 for a state it
    /// never ran on, as a Sync's); forgets it.
    pub fn processed(&mut self, obj: &Object) -> u32 {
        self.runs
            .remove(&(obj.key.clone(), obj.resource_version))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_counts_its_largest_run_once_and_is_forgotten_when_processed() {
        let mut ledger = TransformLedger::default();
        let a = Object::bare("ns/a", 5);
        ledger.queued(&a, 2);
        ledger.queued(&a, 1);
        assert_eq!(ledger.processed(&a), 2);
        assert_eq!(ledger.processed(&a), 0, "forgotten");
        assert_eq!(ledger.processed(&Object::bare("ns/b", 1)), 0);
    }
}
