//! The etcd watch oracle: every watch stream is exactly etcd's history after its start.
//!
//! Source: etcd API guarantees, "Watch streams" (ordered, reliable, atomic), and the progress
//! notification contract after etcd#15220 (SPEC §1.4). The ground truth is the naive
//! [`GroundTruth`], which shares no code with the fake.

use super::catalog::Invariant;
use super::truth::GroundTruth;
use crate::etcd::{Event, EventType, KeyRange, Revision, WatchResponse, WatchResponseKind};

use super::violation::Violation;

/// The oracle's view of one watch stream.
#[derive(Clone, Debug)]
pub struct WatchStreamOracle {
    range: KeyRange,
    /// Every reference event in range below this has been delivered (or promised absent).
    next_revision: Revision,
    /// Whether the watch asked for previous states.
    prev_kv: bool,
    /// How many events this stream delivered.
    pub events_delivered: u64,
}

impl WatchStreamOracle {
    /// A stream over `range` whose first revision is `start_revision` (already resolved: a
    /// request for 0 means the creation revision + 1).
    pub fn new(range: KeyRange, start_revision: Revision) -> WatchStreamOracle {
        WatchStreamOracle {
            range,
            next_revision: start_revision,
            prev_kv: true,
            events_delivered: 0,
        }
    }

    /// The same oracle for a watch that did (or did not) ask for previous states.
    pub fn with_prev_kv(self, prev_kv: bool) -> WatchStreamOracle {
        WatchStreamOracle { prev_kv, ..self }
    }

    /// The keys the stream watches.
    pub fn range(&self) -> &KeyRange {
        &self.range
    }

    /// The first revision not yet delivered.
    pub fn next_revision(&self) -> Revision {
        self.next_revision
    }

    /// Checks one delivered message against the reference history. `compact_revision` is the
    /// store's compact revision when the message was made.
    pub fn observe(
        &mut self,
        response: &WatchResponse,
        reference: &GroundTruth,
        compact_revision: Revision,
    ) -> Result<(), Violation> {
        match &response.kind {
            WatchResponseKind::Created | WatchResponseKind::Canceled => Ok(()),
            WatchResponseKind::Events(events) => {
                self.observe_events(events, reference, compact_revision)
            }
            WatchResponseKind::Progress => {
                let revision = response.header_revision;
                if let Some((missed, _)) =
                    self.pending(reference, revision, compact_revision).next()
                {
                    return Err(Violation::new(
                        Invariant::EtcdProgressAfterEvents,
                        format!("progress at {revision} before the event at {missed} was sent"),
                    ));
                }
                self.next_revision = self.next_revision.max(revision + 1);
                Ok(())
            }
            WatchResponseKind::Compacted {
                compact_revision: at,
            } => {
                if self.next_revision >= *at {
                    return Err(Violation::new(
                        Invariant::EtcdCancelOnlyWhenCompacted,
                        format!(
                            "canceled at compact revision {at}, but only {} was needed",
                            self.next_revision
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The reference events in the stream's range from its next revision through `through`.
    fn history<'a>(
        &'a self,
        reference: &'a GroundTruth,
        through: Revision,
    ) -> impl Iterator<Item = (Revision, &'a Event)> + 'a {
        reference
            .events_since(&self.range, self.next_revision)
            .take_while(move |(revision, _)| *revision <= through)
    }

    /// The reference events the stream still owes, through revision `through`.
    fn pending<'a>(
        &'a self,
        reference: &'a GroundTruth,
        through: Revision,
        compact_revision: Revision,
    ) -> impl Iterator<Item = (Revision, &'a Event)> + 'a {
        self.history(reference, through)
            .filter(move |(revision, event)| !self.may_skip(*revision, event, compact_revision))
    }

    /// The revision of the first event the stream still owes, if any.
    pub fn first_undelivered(
        &self,
        reference: &GroundTruth,
        compact_revision: Revision,
    ) -> Option<Revision> {
        self.pending(reference, Revision::MAX, compact_revision)
            .next()
            .map(|(revision, _)| revision)
    }

    /// The delivered events must be the history through the last one, in order; an event
    /// that [`Self::may_skip`] allows may be missing.
    fn observe_events(
        &mut self,
        events: &[Event],
        reference: &GroundTruth,
        compact_revision: Revision,
    ) -> Result<(), Violation> {
        let Some(last) = events.last() else {
            return Err(Violation::new(
                Invariant::EtcdWatchIsHistorySuffix,
                "an empty events message",
            ));
        };
        let through = last.kv.mod_revision;
        let mut delivered = events.iter().peekable();
        let count_mismatch = |in_history: usize| {
            Violation::new(
                Invariant::EtcdWatchIsHistorySuffix,
                format!(
                    "from revision {} through {through}: {} events delivered, {in_history} in \
                     history",
                    self.next_revision,
                    events.len(),
                ),
            )
        };
        let history: Vec<(Revision, &Event)> = self.history(reference, through).collect();
        for (revision, truth) in &history {
            match delivered.peek() {
                Some(event) if same_event(event, truth, compact_revision, self.prev_kv) => {
                    delivered.next();
                }
                _ if self.may_skip(*revision, truth, compact_revision) => {}
                Some(event) => {
                    return Err(Violation::new(
                        Invariant::EtcdWatchIsHistorySuffix,
                        format!(
                            "at revision {revision}: delivered {event:?}, history has {truth:?}"
                        ),
                    ));
                }
                None => return Err(count_mismatch(history.len())),
            }
        }
        if delivered.next().is_some() {
            return Err(count_mismatch(history.len()));
        }
        self.events_delivered += events.len() as u64;
        self.next_revision = through + 1;
        Ok(())
    }

    /// A deletion at or below the compact revision may be missing from a watch whose next
    /// revision was the compact revision (one started there, or an unsynced one caught
    /// there): etcd 3.4.23 drops it with its tombstone (etcd#18089, #19179); etcd 3.6 keeps
    /// and sends it. Either is accepted.
    fn may_skip(&self, revision: Revision, event: &Event, compact_revision: Revision) -> bool {
        event.event_type == EventType::Delete && revision <= compact_revision
    }
}

/// Two events are the same if type and kv match, and prev_kv matches unless the previous
/// state was compacted away (then the fake may omit it, as etcd does).
fn same_event(delivered: &Event, truth: &Event, compact_revision: Revision, prev_kv: bool) -> bool {
    let prev_kv_ok = match (&delivered.prev_kv, &truth.prev_kv) {
        _ if !prev_kv => delivered.prev_kv.is_none(),
        (Some(a), Some(b)) => a == b,
        (None, Some(b)) => b.mod_revision < compact_revision,
        (None, None) => true,
        (Some(_), None) => false,
    };
    delivered.event_type == truth.event_type && delivered.kv == truth.kv && prev_kv_ok
}
