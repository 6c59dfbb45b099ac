//! A deliberately naive model of etcd: a full copy of the key space at every revision.
//!
//! It shares no code with the fake's store, so the two can check each other: the property
//! tests run random operations against both and compare every answer, and the run oracle takes
//! its ground-truth history (the events at each revision) from here.

use std::collections::BTreeMap;

use super::types::{
    EtcdError, Event, EventType, KeyRange, KeyValue, Op, OpResponse, RangeRequest, RangeResponse,
    Revision, TxnRequest, TxnResponse,
};

/// The naive reference model.
#[derive(Clone, Debug)]
pub struct ReferenceEtcd {
    /// `states[r - 1]` is the whole key space at revision `r`.
    states: Vec<BTreeMap<String, KeyValue>>,
    /// `events[r - 1]` is what changed at revision `r`, with previous states.
    events: Vec<Vec<Event>>,
    compact_revision: Revision,
}

impl Default for ReferenceEtcd {
    fn default() -> Self {
        ReferenceEtcd {
            states: vec![BTreeMap::new()],
            events: vec![Vec::new()],
            compact_revision: 0,
        }
    }
}

impl ReferenceEtcd {
    /// The current revision.
    pub fn revision(&self) -> Revision {
        self.states.len() as Revision
    }

    /// The compact revision.
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// The whole key space at `revision` (history is never really dropped here).
    pub fn state_at(&self, revision: Revision) -> &BTreeMap<String, KeyValue> {
        &self.states[revision as usize - 1]
    }

    /// What changed at `revision`, every event carrying its previous state.
    pub fn events_at(&self, revision: Revision) -> &[Event] {
        &self.events[revision as usize - 1]
    }

    /// Every event in `range` at revisions `>= from`, oldest first.
    pub fn events_since<'a>(
        &'a self,
        range: &'a KeyRange,
        from: Revision,
    ) -> impl Iterator<Item = (Revision, &'a Event)> + 'a {
        (from.max(1)..=self.revision()).flat_map(move |revision| {
            self.events_at(revision)
                .iter()
                .filter(move |event| range.contains(&event.kv.key))
                .map(move |event| (revision, event))
        })
    }

    /// A range read.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.check_readable(request.revision)?;
        let current = self.revision();
        let at = if request.revision == 0 {
            current
        } else {
            request.revision
        };
        Ok(range_of(self.state_at(at), request, current))
    }

    /// A transaction: copy the current state, apply the branch, keep the copy if it changed.
    pub fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        for branch in [&request.success, &request.failure] {
            if has_duplicate_keys(branch) {
                return Err(EtcdError::DuplicateKey);
            }
        }
        let current = self.state_at(self.revision()).clone();
        let succeeded = request
            .compare
            .iter()
            .all(|compare| compare.holds(current.get(&compare.key)));
        let branch = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        for op in branch {
            if let Op::Range(range) = op {
                self.check_readable(range.revision)?;
            }
        }
        let new_revision = self.revision() + 1;
        let mut next = current;
        let mut events = Vec::new();
        let mut responses = Vec::new();
        for op in branch {
            // A read's header is the revision it read as latest: changed yet or not.
            let latest = if events.is_empty() {
                self.revision()
            } else {
                new_revision
            };
            let response = match op {
                Op::Range(range) if range.revision != 0 => {
                    OpResponse::Range(range_of(self.state_at(range.revision), range, latest))
                }
                Op::Range(range) => OpResponse::Range(range_of(&next, range, latest)),
                write => apply(&mut next, write, new_revision, &mut events),
            };
            responses.push(response);
        }
        let header_revision = if events.is_empty() {
            self.revision()
        } else {
            new_revision
        };
        if !events.is_empty() {
            self.states.push(next);
            self.events.push(events);
        }
        Ok(TxnResponse {
            header_revision,
            succeeded,
            responses,
        })
    }

    fn check_readable(&self, revision: Revision) -> Result<(), EtcdError> {
        if revision > self.revision() {
            return Err(EtcdError::FutureRevision);
        }
        if revision != 0 && revision < self.compact_revision {
            return Err(EtcdError::Compacted);
        }
        Ok(())
    }

    /// Records a compaction (the reference keeps every state; reads below it fail).
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
}

fn range_of(
    state: &BTreeMap<String, KeyValue>,
    request: &RangeRequest,
    header_revision: Revision,
) -> RangeResponse {
    let matching: Vec<&KeyValue> = state
        .values()
        .filter(|kv| request.range.contains(&kv.key))
        .collect();
    let count = matching.len() as u64;
    let shown = if request.limit == 0 {
        matching.len()
    } else {
        request.limit as usize
    };
    let kvs = matching.into_iter().take(shown).cloned().collect();
    RangeResponse {
        header_revision,
        kvs,
        more: request.limit > 0 && count > request.limit,
        count,
    }
}

fn has_duplicate_keys(ops: &[Op]) -> bool {
    let puts: Vec<&String> = ops
        .iter()
        .filter_map(|op| {
            if let Op::Put { key, .. } = op {
                Some(key)
            } else {
                None
            }
        })
        .collect();
    let repeated = puts
        .iter()
        .enumerate()
        .any(|(i, key)| puts[..i].contains(key));
    let deleted = ops.iter().any(|op| {
        matches!(op, Op::DeleteRange { range, .. } if puts.iter().any(|key| range.contains(key)))
    });
    repeated || deleted
}

fn apply(
    state: &mut BTreeMap<String, KeyValue>,
    op: &Op,
    revision: Revision,
    events: &mut Vec<Event>,
) -> OpResponse {
    match op {
        Op::Range(_) => unreachable!("reads are answered by the caller"),
        Op::Put {
            key,
            value,
            prev_kv,
        } => {
            let previous = state.get(key).cloned();
            let kv = KeyValue {
                key: key.clone(),
                create_revision: previous.as_ref().map_or(revision, |p| p.create_revision),
                mod_revision: revision,
                version: previous.as_ref().map_or(1, |p| p.version + 1),
                value: value.clone(),
            };
            state.insert(key.clone(), kv.clone());
            events.push(Event {
                event_type: EventType::Put,
                kv,
                prev_kv: previous.clone(),
            });
            OpResponse::Put {
                prev_kv: previous.filter(|_| *prev_kv),
            }
        }
        Op::DeleteRange { range, prev_kv } => {
            let doomed: Vec<KeyValue> = state
                .values()
                .filter(|kv| range.contains(&kv.key))
                .cloned()
                .collect();
            for kv in &doomed {
                state.remove(&kv.key);
                let tombstone = KeyValue {
                    key: kv.key.clone(),
                    create_revision: 0,
                    mod_revision: revision,
                    version: 0,
                    value: Vec::new(),
                };
                events.push(Event {
                    event_type: EventType::Delete,
                    kv: tombstone,
                    prev_kv: Some(kv.clone()),
                });
            }
            let deleted = doomed.len() as u64;
            OpResponse::DeleteRange {
                deleted,
                prev_kvs: if *prev_kv { doomed } else { Vec::new() },
            }
        }
    }
}
