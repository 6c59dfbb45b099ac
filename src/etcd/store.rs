//! The MVCC store: per-key revision histories, transactions, ranges and compaction.
//!
//! Each key keeps the list of its states by revision (etcd's `keyIndex`), a `None` state being a
//! deletion (a tombstone). A change log in revision order lets watches catch up from history.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::types::{
    EtcdError, KeyRange, KeyValue, Op, OpResponse, RangeRequest, RangeResponse, Revision,
    TxnRequest, TxnResponse,
};

/// One state of one key: `kv` is `None` for a deletion.
#[derive(Clone, Debug)]
struct KeyRevision {
    revision: Revision,
    kv: Option<KeyValue>,
}

/// One change, in the order the store made them.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) revision: Revision,
    pub(crate) key: String,
}

/// The multi-version key-value store.
#[derive(Clone, Debug)]
pub(crate) struct MvccStore {
    revision: Revision,
    compact_revision: Revision,
    keys: BTreeMap<String, Vec<KeyRevision>>,
    changes: VecDeque<Change>,
}

impl Default for MvccStore {
    fn default() -> Self {
        MvccStore {
            revision: 1,
            compact_revision: 0,
            keys: BTreeMap::new(),
            changes: VecDeque::new(),
        }
    }
}

impl MvccStore {
    pub(crate) fn revision(&self) -> Revision {
        self.revision
    }

    pub(crate) fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// The state of `key` at `revision`, `None` if absent then.
    fn kv_at(&self, key: &str, revision: Revision) -> Option<&KeyValue> {
        let history = self.keys.get(key)?;
        let index = history.partition_point(|entry| entry.revision <= revision);
        history[..index].last()?.kv.as_ref()
    }

    /// Mirrors etcd `kvstore_txn.go rangeKeys`: 0 reads the latest; a future revision and one
    /// below the compact revision are errors; exactly the compact revision is readable.
    pub(crate) fn range(&self, request: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.range_at_pending(request, self.revision)
    }

    fn range_at_pending(
        &self,
        request: &RangeRequest,
        latest: Revision,
    ) -> Result<RangeResponse, EtcdError> {
        self.check_readable(request.revision)?;
        let at = if request.revision == 0 {
            latest
        } else {
            request.revision
        };
        let mut kvs = Vec::new();
        let mut count = 0;
        for key in self.keys_in(&request.range) {
            if let Some(kv) = self.kv_at(key, at) {
                count += 1;
                if request.limit == 0 || (kvs.len() as u64) < request.limit {
                    kvs.push(kv.clone());
                }
            }
        }
        let more = request.limit > 0 && count > request.limit;
        Ok(RangeResponse {
            header_revision: latest,
            kvs,
            more,
            count,
        })
    }

    /// Mirrors etcd `rangeKeys` checks: a revision above the current one is `FutureRevision`,
    /// one below the compact revision `Compacted`; the compact revision itself is readable.
    fn check_readable(&self, revision: Revision) -> Result<(), EtcdError> {
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        if revision != 0 && revision < self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        Ok(())
    }

    fn keys_in<'a>(&'a self, range: &'a KeyRange) -> impl Iterator<Item = &'a String> + 'a {
        self.keys
            .range(range.key.clone()..)
            .map(|(key, _)| key)
            .take_while(move |key| match range.range_end.as_deref() {
                None => **key == range.key,
                Some("\0") => true,
                Some(end) => key.as_str() < end,
            })
    }

    /// Runs a transaction. Mirrors etcd `storeTxnWrite.End`: the revision is bumped once, and
    /// only if some key changed; every change of the transaction shares the new revision.
    pub(crate) fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        check_no_duplicate_keys(&request.success)?;
        check_no_duplicate_keys(&request.failure)?;
        let succeeded = request
            .compare
            .iter()
            .all(|compare| compare.holds(self.kv_at(&compare.key, self.revision)));
        let branch = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        // Mirrors etcd `applierV3backend.Txn` + `checkRequests`: only the ranges of the branch
        // that runs are checked, so a bad revision in the other branch is no error.
        for op in branch {
            if let Op::Range(range) = op {
                self.check_readable(range.revision)?;
            }
        }
        let pending = self.revision + 1;
        let mut changed = false;
        let mut responses = Vec::with_capacity(branch.len());
        for op in branch {
            let response = match op {
                // Mirrors etcd `storeTxnWrite.Range`: a read sees the changes made before it
                // in the txn, and its header is the revision it read as latest.
                Op::Range(range) => {
                    let latest = if changed { pending } else { self.revision };
                    OpResponse::Range(self.range_at_pending(range, latest)?)
                }
                Op::Put {
                    key,
                    value,
                    prev_kv,
                } => {
                    let previous = self.put_at(key, value, pending);
                    changed = true;
                    OpResponse::Put {
                        prev_kv: previous.filter(|_| *prev_kv),
                    }
                }
                Op::DeleteRange { range, prev_kv } => {
                    let deleted = self.delete_at(range, pending);
                    changed |= !deleted.is_empty();
                    let count = deleted.len() as u64;
                    let prev_kvs = if *prev_kv { deleted } else { Vec::new() };
                    OpResponse::DeleteRange {
                        deleted: count,
                        prev_kvs,
                    }
                }
            };
            responses.push(response);
        }
        if changed {
            self.revision = pending;
        }
        Ok(TxnResponse {
            header_revision: self.revision,
            succeeded,
            responses,
        })
    }

    /// Writes `key` at `revision`; returns the previous state. A put on an absent key creates it
    /// with version 1 and a new create_revision (SPEC §1.1).
    fn put_at(&mut self, key: &str, value: &[u8], revision: Revision) -> Option<KeyValue> {
        let previous = self.kv_at(key, revision).cloned();
        let kv = KeyValue {
            key: key.to_owned(),
            create_revision: previous.as_ref().map_or(revision, |kv| kv.create_revision),
            mod_revision: revision,
            version: previous.as_ref().map_or(1, |kv| kv.version + 1),
            value: value.to_vec(),
        };
        self.record(key, revision, Some(kv));
        previous
    }

    /// Deletes every live key in `range` at `revision`; returns the deleted states. Deleting
    /// absent keys changes nothing.
    fn delete_at(&mut self, range: &KeyRange, revision: Revision) -> Vec<KeyValue> {
        let live: Vec<KeyValue> = self
            .keys_in(range)
            .filter_map(|key| self.kv_at(key, revision).cloned())
            .collect();
        for kv in &live {
            self.record(&kv.key, revision, None);
        }
        live
    }

    fn record(&mut self, key: &str, revision: Revision, kv: Option<KeyValue>) {
        let history = self.keys.entry(key.to_owned()).or_default();
        assert!(
            history.last().is_none_or(|last| last.revision < revision),
            "one change per key per txn"
        );
        history.push(KeyRevision { revision, kv });
        self.changes.push_back(Change {
            revision,
            key: key.to_owned(),
        });
    }

    /// Compacts history at `revision`. Mirrors etcd `keyIndex.compact`: each key keeps its
    /// newest state at or below `revision` unless that state is a deletion, and the change log
    /// keeps changes from `revision` on that are still stored. A deletion at exactly
    /// `revision` keeps its tombstone with `keep_tombstone` (etcd 3.6, and 3.4.34 on), so a
    /// watch whose next revision is the compact revision still gets it; without, it is gone,
    /// as in etcd 3.4.23 (etcd#18089, #19179).
    pub(crate) fn compact(
        &mut self,
        revision: Revision,
        keep_tombstone: bool,
    ) -> Result<(), EtcdError> {
        if revision <= self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        self.compact_revision = revision;
        self.keys.retain(|_, history| {
            let index = history.partition_point(|entry| entry.revision <= revision);
            let keep_from = match history[..index].last() {
                Some(newest) if newest.kv.is_some() => index - 1,
                Some(newest) if keep_tombstone && newest.revision == revision => index - 1,
                _ => index,
            };
            history.drain(..keep_from);
            !history.is_empty()
        });
        while self
            .changes
            .front()
            .is_some_and(|change| change.revision < revision)
        {
            self.changes.pop_front();
        }
        let keys = &self.keys;
        self.changes.retain(|change| {
            change.revision > revision
                || keys
                    .get(&change.key)
                    .is_some_and(|history| history.iter().any(|e| e.revision == change.revision))
        });
        Ok(())
    }

    /// The changes with revision `>= from`, oldest first.
    pub(crate) fn changes_since(&self, from: Revision) -> impl Iterator<Item = &Change> {
        let start = self
            .changes
            .partition_point(|change| change.revision < from);
        self.changes.range(start..)
    }

    /// The state a change wrote (`None` for a deletion) and the state before it, if that is
    /// still stored.
    pub(crate) fn change_states(&self, change: &Change) -> (Option<&KeyValue>, Option<&KeyValue>) {
        let history = &self.keys[&change.key];
        let index = history.partition_point(|entry| entry.revision < change.revision);
        let current = history[index].kv.as_ref();
        let previous = index.checked_sub(1).and_then(|i| history[i].kv.as_ref());
        (current, previous)
    }
}

/// Mirrors etcd `checkIntervals`: a branch may not put one key twice, nor put a key it also
/// deletes.
fn check_no_duplicate_keys(ops: &[Op]) -> Result<(), EtcdError> {
    let mut puts = BTreeSet::new();
    for op in ops {
        if let Op::Put { key, .. } = op
            && !puts.insert(key.as_str())
        {
            return Err(EtcdError::DuplicateKey);
        }
    }
    let deletes_a_put = ops.iter().any(|op| match op {
        Op::DeleteRange { range, .. } => puts.iter().any(|key| range.contains(key)),
        _ => false,
    });
    if deletes_a_put {
        Err(EtcdError::DuplicateKey)
    } else {
        Ok(())
    }
}
