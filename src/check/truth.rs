//! The run's ground truth about etcd, at a cost that follows the work rather than the key space.
//!
//! See [`GroundTruth`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use crate::etcd::{
    EtcdError, Event, EventType, KeyRange, KeyValue, Op, OpResponse, RangeRequest, RangeResponse,
    Revision, TxnRequest, TxnResponse,
};

use super::versions::{History, Version};

#[cfg(test)]
mod tests;

/// How much history a [`GroundTruth`] holds, counted as it changes (reading it is O(1)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Keys with a history: live keys, and deleted keys whose deletion is still readable.
    pub keys: usize,
    /// Key versions held, deletions included.
    pub versions: usize,
    /// Revisions in the event log (`oldest_readable..=revision`).
    pub revisions: usize,
    /// Events in the event log.
    pub events: usize,
}

/// The run's ground truth about etcd: answers every etcd request exactly as the naive
/// [`ReferenceEtcd`](crate::etcd::reference::ReferenceEtcd) does, and keeps the history the
/// checks read, at a cost that follows the writes instead of keys × revisions.
///
/// # Why
///
/// The reference copies the whole key space on every transaction, so a run costs memory
/// keys × revisions (12.7 GB at 1,000 keys; OOM at 10,000). This keeps each key's versions
/// and one log entry per revision instead, and forgets what no remaining read can need. It
/// is an oracle for the fake etcd (`etcd/store.rs`, `etcd/watch.rs`) and shares no code with
/// it: only the plain request types and [`Compare::holds`](crate::etcd::Compare::holds).
///
/// # Layout and cost
///
/// - per key, its versions oldest first (`(mod_revision, Option<KeyValue>)`, deletions
///   included), in a `BTreeMap` by key; the last version is the key's current state;
/// - the event log: per revision from [`oldest_readable`](Self::oldest_readable) on, its
///   events with their previous states, as a watch with `prev_kv` delivers them.
///
/// With `n` keys held, `v` versions of one key, `k` answers: a write costs O(log n) per key
/// written, memory O(1) per key written; [`txn`](Self::txn) and [`range`](Self::range) at any
/// revision cost O(log n + keys held in range × log v) (held: live, or deleted since the last
/// forgetting); [`get_at`](Self::get_at) O(log n + log v);
/// [`events_at`](Self::events_at) O(1); [`events_since`](Self::events_since) O(log n + log v + k)
/// for one key and O(revisions since) for a wider range; [`state_at`](Self::state_at)
/// O(log n + keys held in range × log v).
///
/// # Forgetting
///
/// Nothing is dropped until [`forget_before`](Self::forget_before)`(r)`: it drops every
/// version superseded at or before `r` (keeping each key's version live at `r`), every key
/// deleted before `r`, and the log entries below `r`. It visits only the keys written in
/// `oldest_readable..=r`, so it costs O(events dropped × log n). Afterwards memory is
/// O(keys live at `r` + writes after `r`): with a fixed key set and periodic forgetting it
/// stays flat. A read below the forgotten revision panics: it is a harness bug to ask, and a
/// wrong answer would be worse. Forgetting at or below the compact revision keeps
/// [`range`](Self::range) and [`txn`](Self::txn) total, since etcd refuses older reads anyway.
///
/// ```
/// use informer_sim::check::truth::GroundTruth;
/// use informer_sim::etcd::{KeyRange, Op, TxnRequest};
///
/// let put = |value: &[u8]| TxnRequest {
///     success: vec![Op::Put { key: "/r/a".into(), value: value.to_vec(), prev_kv: false }],
///     ..TxnRequest::default()
/// };
/// let mut truth = GroundTruth::default();
/// truth.txn(&put(b"one")).unwrap(); // revision 2
/// truth.txn(&put(b"two")).unwrap(); // revision 3
/// assert_eq!(truth.get_at("/r/a", 2).unwrap().value, b"one");
///
/// truth.compact(3).unwrap();
/// truth.forget_before(3);
/// assert_eq!(truth.oldest_readable(), 3);
/// assert_eq!(truth.retained().versions, 1);
/// let since: Vec<_> = truth.events_since(&KeyRange::prefix("/r/"), 3).collect();
/// assert_eq!(since.len(), 1);
/// assert_eq!(since[0].1.prev_kv.as_ref().unwrap().value, b"one");
/// ```
#[derive(Clone, Debug)]
pub struct GroundTruth {
    /// Per key, its versions oldest first; the last is its current state.
    histories: BTreeMap<String, History<KeyValue>>,
    /// The events of each revision `oldest_readable..=revision()`, in order.
    log: VecDeque<Vec<Event>>,
    /// The revision of `log[0]`.
    oldest_readable: Revision,
    compact_revision: Revision,
    /// The versions in `histories`, counted.
    versions: usize,
    /// The events in `log`, counted.
    events: usize,
}

impl Default for GroundTruth {
    /// A new store at revision 1, nothing in it.
    fn default() -> Self {
        GroundTruth {
            histories: BTreeMap::new(),
            log: VecDeque::from([Vec::new()]),
            oldest_readable: 1,
            compact_revision: 0,
            versions: 0,
            events: 0,
        }
    }
}

impl GroundTruth {
    /// The current revision. O(1).
    pub fn revision(&self) -> Revision {
        self.oldest_readable + self.log.len() as Revision - 1
    }

    /// The compact revision (0 if never compacted). O(1).
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// The oldest revision whose state and events are still held (1 until
    /// [`forget_before`](Self::forget_before)). O(1).
    pub fn oldest_readable(&self) -> Revision {
        self.oldest_readable
    }

    /// How much history is held. O(1).
    pub fn retained(&self) -> Retained {
        Retained {
            keys: self.histories.len(),
            versions: self.versions,
            revisions: self.log.len(),
            events: self.events,
        }
    }

    /// A range read, answered and refused as etcd does: `FutureRevision` above the current
    /// revision, `Compacted` below the compact revision. O(log n + keys held in range × log v).
    ///
    /// # Panics
    ///
    /// At a revision etcd would serve that was forgotten (see
    /// [`forget_before`](Self::forget_before)).
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.check_readable(request.revision)?;
        let current = self.revision();
        let as_of = match request.revision {
            0 => current,
            revision => revision,
        };
        Ok(self.read(request, as_of, current))
    }

    /// A transaction, answered and refused as etcd does. Both branches are refused with
    /// `DuplicateKey` if they put one key twice or delete a key they put; the branch that runs
    /// is refused if one of its reads would be. A read at revision 0 sees the writes before it
    /// in the branch; a read at an explicit revision sees history as it was before the
    /// transaction. The revision moves only if something changed. O(log n) per key written,
    /// plus the reads.
    ///
    /// # Panics
    ///
    /// If the branch that runs reads a forgotten revision etcd would serve.
    pub fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        if writes_a_key_twice(&request.success) || writes_a_key_twice(&request.failure) {
            return Err(EtcdError::DuplicateKey);
        }
        let succeeded = request
            .compare
            .iter()
            .all(|compare| compare.holds(self.latest(&compare.key)));
        let branch = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        for op in branch {
            if let Op::Range(read) = op {
                self.check_readable(read.revision)?;
            }
        }
        let before = self.revision();
        let at = before + 1;
        let mut events = Vec::new();
        let mut responses = Vec::with_capacity(branch.len());
        for op in branch {
            let response = match op {
                Op::Range(read) => {
                    let header = if events.is_empty() { before } else { at };
                    // The branch's own writes are at `at`: visible to "latest" only.
                    let as_of = match read.revision {
                        0 => at,
                        revision => revision,
                    };
                    OpResponse::Range(self.read(read, as_of, header))
                }
                Op::Put {
                    key,
                    value,
                    prev_kv,
                } => {
                    let previous = self.latest(key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        create_revision: previous.as_ref().map_or(at, |kv| kv.create_revision),
                        mod_revision: at,
                        version: previous.as_ref().map_or(1, |kv| kv.version + 1),
                        value: value.clone(),
                    };
                    let answer = if *prev_kv { previous.clone() } else { None };
                    self.record(
                        Event {
                            event_type: EventType::Put,
                            kv,
                            prev_kv: previous,
                        },
                        &mut events,
                    );
                    OpResponse::Put { prev_kv: answer }
                }
                Op::DeleteRange { range, prev_kv } => {
                    let doomed: Vec<KeyValue> = self.visible_in(range, at).cloned().collect();
                    for kv in &doomed {
                        let tombstone = KeyValue {
                            key: kv.key.clone(),
                            create_revision: 0,
                            mod_revision: at,
                            version: 0,
                            value: Vec::new(),
                        };
                        let event = Event {
                            event_type: EventType::Delete,
                            kv: tombstone,
                            prev_kv: Some(kv.clone()),
                        };
                        self.record(event, &mut events);
                    }
                    OpResponse::DeleteRange {
                        deleted: doomed.len() as u64,
                        prev_kvs: if *prev_kv { doomed } else { Vec::new() },
                    }
                }
            };
            responses.push(response);
        }
        let header_revision = if events.is_empty() {
            before
        } else {
            self.events += events.len();
            self.log.push_back(events);
            at
        };
        Ok(TxnResponse {
            header_revision,
            succeeded,
            responses,
        })
    }

    /// Compacts at `revision`: `Compacted` at or below the compact revision, `FutureRevision`
    /// above the current one; answers the current revision. Keeps history (see
    /// [`forget_before`](Self::forget_before)). O(1).
    pub fn compact(&mut self, revision: Revision) -> Result<Revision, EtcdError> {
        if revision <= self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if revision > self.revision() {
            return Err(EtcdError::FutureRevision);
        }
        self.compact_revision = revision;
        Ok(self.revision())
    }

    /// The state of `key` at `revision`; `None` if it did not exist. O(log n + log v).
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn get_at(&self, key: &str, revision: Revision) -> Option<&KeyValue> {
        self.expect_held(revision);
        self.histories.get(key)?.state_at(revision)
    }

    /// The events of `revision`, each with its previous state; empty for revision 1. O(1).
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn events_at(&self, revision: Revision) -> &[Event] {
        self.expect_held(revision);
        &self.log[(revision - self.oldest_readable) as usize]
    }

    /// Every event in `range` at revisions `>= from` (0 counts as 1), oldest first, each with
    /// its revision. For a single key it walks the key's versions: O(log n + log v + k); for
    /// a wider range, the log: O(revisions since `from`). The events borrow only `self`.
    ///
    /// # Panics
    ///
    /// If `from` is below `oldest_readable()`.
    pub fn events_since<'a, 'r>(
        &'a self,
        range: &'r KeyRange,
        from: Revision,
    ) -> impl Iterator<Item = (Revision, &'a Event)> + use<'a, 'r> {
        let from = from.max(1);
        assert!(
            from >= self.oldest_readable,
            "ground truth: events since {from} asked, but history before {} was forgotten \
             (a harness bug: forget_before ran past a revision a check still reads)",
            self.oldest_readable
        );
        let one_key = range.range_end.is_none().then(|| {
            let versions = self.histories.get(&range.key).into_iter();
            versions
                .flat_map(move |history| history.since(from))
                .map(|version| {
                    let entry = &self.log[(version.revision - self.oldest_readable) as usize];
                    (version.revision, &entry[version.slot])
                })
        });
        let wider = range.range_end.is_some().then(|| {
            let skip = ((from - self.oldest_readable) as usize).min(self.log.len());
            self.log
                .range(skip..)
                .zip(from..)
                .flat_map(move |(events, revision)| {
                    events
                        .iter()
                        .filter(|event| range.contains(&event.kv.key))
                        .map(move |event| (revision, event))
                })
        });
        one_key
            .into_iter()
            .flatten()
            .chain(wider.into_iter().flatten())
    }

    /// The keys of `range` live at `revision`, in key order. Visits every key held in the
    /// range, so call it only where a whole snapshot is needed (a list page): O(log n + keys
    /// in range × log v).
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn state_at<'a>(
        &'a self,
        range: &KeyRange,
        revision: Revision,
    ) -> impl Iterator<Item = &'a KeyValue> + use<'a> {
        self.expect_held(revision);
        self.visible_in(range, revision)
    }

    /// Forgets what no read at `revision` or later can need: each key's versions superseded
    /// at or before `revision` (its version live at `revision` stays), keys deleted before
    /// `revision`, and the events of revisions below it. Afterwards
    /// [`oldest_readable`](Self::oldest_readable) is `revision`, and reads below it panic.
    /// Below the current `oldest_readable()` it does nothing. O(events forgotten × log n).
    ///
    /// # Panics
    ///
    /// If `revision` is above the current revision.
    pub fn forget_before(&mut self, revision: Revision) {
        assert!(
            revision <= self.revision(),
            "ground truth: forget_before({revision}) is past the current revision {}",
            self.revision()
        );
        let oldest = self.oldest_readable;
        if revision <= oldest {
            return;
        }
        // Every version superseded at or before `revision`, and every deletion before it,
        // belongs to a key written in `oldest..=revision`: older ones went on earlier calls.
        for events in self.log.range(..=(revision - oldest) as usize) {
            for event in events {
                self.versions -= trim(&mut self.histories, &event.kv.key, revision);
            }
        }
        for events in self.log.drain(..(revision - oldest) as usize) {
            self.events -= events.len();
        }
        self.oldest_readable = revision;
    }

    /// etcd's refusals of a read at `revision` (0: latest).
    ///
    /// # Panics
    ///
    /// If etcd would serve it but it was forgotten.
    fn check_readable(&self, revision: Revision) -> Result<(), EtcdError> {
        if revision > self.revision() {
            return Err(EtcdError::FutureRevision);
        }
        if revision != 0 && revision < self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        if revision != 0 {
            self.expect_held(revision);
        }
        Ok(())
    }

    fn expect_held(&self, revision: Revision) {
        assert!(
            (self.oldest_readable..=self.revision()).contains(&revision),
            "ground truth: revision {revision} asked, but only {}..={} is held (a harness bug: \
             a read from the future, or below a revision given to forget_before)",
            self.oldest_readable,
            self.revision()
        );
    }

    /// The current state of `key`, including writes of a transaction in progress.
    fn latest(&self, key: &str) -> Option<&KeyValue> {
        self.histories.get(key).and_then(History::latest)
    }

    /// The keys of `range` live as of `revision`, in key order.
    fn visible_in<'a>(
        &'a self,
        range: &KeyRange,
        revision: Revision,
    ) -> impl Iterator<Item = &'a KeyValue> + use<'a> {
        let held = bounds(range).map(|bounds| self.histories.range::<str, _>(bounds));
        held.into_iter()
            .flatten()
            .filter_map(move |(_, history)| history.state_at(revision))
    }

    /// A range read as of `revision`, answered with `header_revision`.
    fn read(
        &self,
        request: &RangeRequest,
        revision: Revision,
        header_revision: Revision,
    ) -> RangeResponse {
        let mut count = 0;
        let mut kvs = Vec::new();
        for kv in self.visible_in(&request.range, revision) {
            count += 1;
            if request.limit == 0 || count <= request.limit {
                kvs.push(kv.clone());
            }
        }
        RangeResponse {
            header_revision,
            kvs,
            more: request.limit > 0 && count > request.limit,
            count,
        }
    }

    /// Adds the version an event makes to its key's history, then the event to `events`, the
    /// log entry being built for the next revision.
    fn record(&mut self, event: Event, events: &mut Vec<Event>) {
        let version = Version {
            revision: event.kv.mod_revision,
            slot: events.len(),
            state: (event.event_type == EventType::Put).then(|| event.kv.clone()),
        };
        match self.histories.get_mut(&event.kv.key) {
            Some(history) => history.push(version),
            None => {
                self.histories
                    .insert(event.kv.key.clone(), History::new(version));
            }
        }
        self.versions += 1;
        events.push(event);
    }
}

/// Drops `key`'s versions superseded at or before `revision`, and the key itself if all that
/// is left is a deletion before `revision`. Answers how many versions went.
fn trim(
    histories: &mut BTreeMap<String, History<KeyValue>>,
    key: &str,
    revision: Revision,
) -> usize {
    let Some(history) = histories.get_mut(key) else {
        return 0; // Dropped already, by an earlier event of the same pass.
    };
    let superseded = history.forget_before(revision);
    if history.is_deleted_before(revision) {
        histories.remove(key);
        return superseded + 1;
    }
    superseded
}

/// Whether a branch puts one key twice, or deletes a key it puts (etcd's `DuplicateKey`).
fn writes_a_key_twice(ops: &[Op]) -> bool {
    let mut puts = BTreeSet::new();
    for op in ops {
        if let Op::Put { key, .. } = op
            && !puts.insert(key.as_str())
        {
            return true;
        }
    }
    ops.iter().any(|op| match op {
        Op::DeleteRange { range, .. } => {
            bounds(range).is_some_and(|bounds| puts.range::<str, _>(bounds).next().is_some())
        }
        _ => false,
    })
}

/// `range` as ordered-map bounds; `None` if it holds no key (an end at or before its start).
fn bounds(range: &KeyRange) -> Option<(Bound<&str>, Bound<&str>)> {
    let start = range.key.as_str();
    match range.range_end.as_deref() {
        None => Some((Bound::Included(start), Bound::Included(start))),
        Some("\0") => Some((Bound::Included(start), Bound::Unbounded)),
        Some(end) if end > start => Some((Bound::Included(start), Bound::Excluded(end))),
        Some(_) => None,
    }
}
