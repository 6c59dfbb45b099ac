//! Coverage probes: named rare states a sweep must reach (ANCHORS: Sieve and FoundationDB's
//! `TEST_PROBE`/`BUGGIFY` coverage). A random search that never gets a 410, never resumes from
//! a bookmark or never re-initializes a cache proves nothing about the code that handles them,
//! so each scenario names the probes its sweep must hit, and a sweep that misses one fails.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::{ClientMessage, ListResponse, RequestId, ResourceVersionParam};
use crate::api::{ServerMessage, StatusReason, WatchEvent};
use crate::object::ResourceVersion;
use crate::sim::{SimDuration, SimTime};

/// A watch resumes from an old RV when the client got that RV at least this long before: the
/// bookmark frequency (60 s) that the watch cache's 75 s window is sized to outlast (KEP-956).
pub const OLD_RESUME_AGE: SimDuration = SimDuration::from_secs(60);

/// How long the [`RevisionClock`] remembers revisions: far beyond [`OLD_RESUME_AGE`].
const REVISION_CLOCK_HORIZON: SimDuration = SimDuration::from_secs(600);

/// When etcd made each recent revision: how old an RV a watch resumes from is.
#[derive(Clone, Debug, Default)]
pub(crate) struct RevisionClock {
    made_at: BTreeMap<ResourceVersion, SimTime>,
    /// Whether revisions older than the horizon were forgotten.
    forgot: bool,
}

impl RevisionClock {
    /// etcd made `revision` at `now`.
    pub(crate) fn record(&mut self, revision: ResourceVersion, now: SimTime) {
        self.made_at.insert(revision, now);
        let horizon = SimTime(
            now.as_millis()
                .saturating_sub(REVISION_CLOCK_HORIZON.as_millis()),
        );
        while self.made_at.len() > 1
            && self
                .made_at
                .first_key_value()
                .is_some_and(|(_, made_at)| *made_at < horizon)
        {
            self.made_at.pop_first();
            self.forgot = true;
        }
    }

    /// How long ago etcd reached `revision`: at least the horizon for a forgotten one; a
    /// revision before every write is the new store's, made at time zero.
    fn age(&self, revision: ResourceVersion, now: SimTime) -> SimDuration {
        match self.made_at.range(..=revision).next_back() {
            Some((_, made_at)) => now.saturating_since(*made_at),
            None if self.forgot => REVISION_CLOCK_HORIZON,
            None => now.saturating_since(SimTime::ZERO),
        }
    }
}

/// The probe counters [`RunStats`] keeps beyond its own counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProbeCounts {
    /// Lists served below etcd's revision at arrival.
    pub stale_lists: u64,
    /// Lists served below an RV the client had seen.
    pub lists_older_than_seen: u64,
    /// Watches resumed from a bookmark's RV.
    pub bookmark_resumes: u64,
    /// Initial-events-end bookmarks delivered.
    pub initial_events_ends: u64,
    /// List pages asked for with a continue token.
    pub paginated_lists: u64,
    /// Compactions while etcd had an open watch.
    pub compactions_under_watch: u64,
    /// Known keys a DeltaFIFO resync skipped because they had queued deltas.
    pub resync_skips: u64,
    /// Client processes stopped while their Pop was in the empty-queue loop.
    pub closes_under_pop: u64,
    /// Watches resumed from an RV the client got [`OLD_RESUME_AGE`] or more before, answered
    /// without a 410.
    pub old_resumes_served: u64,
    /// Such watches answered with 410 Expired.
    pub old_resumes_expired: u64,
    /// Controller writes that failed on their precondition.
    #[serde(default)]
    pub controller_conflicts: u64,
    /// Failed reconciles requeued rate limited.
    #[serde(default)]
    pub controller_requeues: u64,
    /// Reconciles whose lister had not seen the controller's last write.
    #[serde(default)]
    pub lister_behind_writes: u64,
}

impl ProbeCounts {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &ProbeCounts) {
        self.stale_lists += other.stale_lists;
        self.lists_older_than_seen += other.lists_older_than_seen;
        self.bookmark_resumes += other.bookmark_resumes;
        self.initial_events_ends += other.initial_events_ends;
        self.paginated_lists += other.paginated_lists;
        self.compactions_under_watch += other.compactions_under_watch;
        self.resync_skips += other.resync_skips;
        self.closes_under_pop += other.closes_under_pop;
        self.old_resumes_served += other.old_resumes_served;
        self.old_resumes_expired += other.old_resumes_expired;
        self.controller_conflicts += other.controller_conflicts;
        self.controller_requeues += other.controller_requeues;
        self.lister_behind_writes += other.lister_behind_writes;
    }
}

/// What the probes remember of one client identity, across its restarts.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientMarks {
    /// The highest RV any list or event gave the client.
    max_seen: ResourceVersion,
    /// The RV of the last bookmark, while no event followed it: a watch from here resumes
    /// from the bookmark.
    bookmark: Option<ResourceVersion>,
    /// A watch from an old RV, waiting for its first answer.
    old_resume: Option<RequestId>,
}

impl ClientMarks {
    /// The client sends a request at `now`; `clock` tells how old its RV is.
    pub(crate) fn request(
        &mut self,
        counts: &mut ProbeCounts,
        (now, clock): (SimTime, &RevisionClock),
        message: &ClientMessage,
    ) {
        match message {
            ClientMessage::List { options, .. } => {
                counts.paginated_lists += u64::from(options.continue_token.is_some());
            }
            ClientMessage::Watch { id, options } => {
                let from = match options.resource_version {
                    ResourceVersionParam::At(resource_version) => Some(resource_version),
                    ResourceVersionParam::Unset | ResourceVersionParam::Zero => None,
                };
                counts.bookmark_resumes += u64::from(from.is_some() && from == self.bookmark);
                let old = from.is_some_and(|from| clock.age(from, now) >= OLD_RESUME_AGE);
                self.old_resume = old.then_some(*id);
            }
            ClientMessage::StopWatch { .. } => {}
        }
    }

    /// A watch answer reaches the client: the first one to a watch from an old RV tells
    /// whether the apiserver still served it.
    pub(crate) fn watch_answered(&mut self, counts: &mut ProbeCounts, message: &ServerMessage) {
        let (id, expired) = match message {
            ServerMessage::WatchEvent { id, event } => {
                let expired = matches!(event, WatchEvent::Error(status) if status.reason == StatusReason::Expired);
                (*id, expired)
            }
            ServerMessage::WatchRejected { id, error } => (*id, error.is_expired()),
            ServerMessage::WatchClosed { id } => (*id, false),
            ServerMessage::List { .. } => return,
        };
        if self.old_resume != Some(id) {
            return;
        }
        self.old_resume = None;
        if expired {
            counts.old_resumes_expired += 1;
        } else {
            counts.old_resumes_served += 1;
        }
    }

    /// A list page reaches the client; etcd was at `arrival` when the request reached its
    /// apiserver.
    pub(crate) fn list_answered(
        &mut self,
        counts: &mut ProbeCounts,
        page: &ListResponse,
        arrival: ResourceVersion,
    ) {
        counts.stale_lists += u64::from(page.resource_version < arrival);
        counts.lists_older_than_seen += u64::from(page.resource_version < self.max_seen);
        self.max_seen = self.max_seen.max(page.resource_version);
    }

    /// A watch event reaches the client.
    pub(crate) fn watch_event(&mut self, counts: &mut ProbeCounts, event: &WatchEvent) {
        if let WatchEvent::Bookmark {
            initial_events_end, ..
        } = event
        {
            counts.initial_events_ends += u64::from(*initial_events_end);
        }
        let Some(resource_version) = event.resource_version() else {
            return;
        };
        self.max_seen = self.max_seen.max(resource_version);
        self.bookmark = matches!(event, WatchEvent::Bookmark { .. }).then_some(resource_version);
    }

    /// The client process restarts: it keeps what it saw, not where it was.
    pub(crate) fn restart(&mut self) {
        self.bookmark = None;
        self.old_resume = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ListOptions, Status, WatchOptions};
    use crate::object::Object;

    fn watch_from(id: RequestId, resource_version: ResourceVersion) -> ClientMessage {
        ClientMessage::Watch {
            id,
            options: WatchOptions {
                resource_version: ResourceVersionParam::At(resource_version),
                resource_version_match: Default::default(),
                send_initial_events: false,
                allow_watch_bookmarks: true,
                timeout_ms: None,
                label_selector: None,
                field_selector: None,
                namespace: None,
            },
        }
    }

    #[test]
    fn a_watch_from_the_last_bookmark_is_a_bookmark_resume_until_an_event_follows() {
        let (mut counts, mut marks) = (ProbeCounts::default(), ClientMarks::default());
        marks.watch_event(&mut counts, &WatchEvent::Added(Object::bare("ns/a", 5)));
        let bookmark = WatchEvent::Bookmark {
            resource_version: 9,
            initial_events_end: false,
        };
        marks.watch_event(&mut counts, &bookmark);
        marks.request(
            &mut counts,
            (SimTime(0), &RevisionClock::default()),
            &watch_from(2, 9),
        );
        assert_eq!(counts.bookmark_resumes, 1);
        marks.watch_event(&mut counts, &WatchEvent::Added(Object::bare("ns/b", 10)));
        marks.request(
            &mut counts,
            (SimTime(0), &RevisionClock::default()),
            &watch_from(3, 9),
        );
        assert_eq!(counts.bookmark_resumes, 1, "an event followed the bookmark");
        marks.restart();
        marks.request(
            &mut counts,
            (SimTime(0), &RevisionClock::default()),
            &watch_from(4, 10),
        );
        assert_eq!(counts.bookmark_resumes, 1);
    }

    #[test]
    fn a_watch_from_an_rv_a_minute_old_is_an_old_resume_served_or_expired() {
        let (mut counts, mut marks) = (ProbeCounts::default(), ClientMarks::default());
        let mut clock = RevisionClock::default();
        clock.record(5, SimTime(1_000));
        clock.record(6, SimTime(30_000));
        marks.request(&mut counts, (SimTime(60_999), &clock), &watch_from(2, 5));
        assert_eq!(marks.old_resume, None, "59.999 s is not old");
        marks.request(&mut counts, (SimTime(61_000), &clock), &watch_from(3, 5));
        marks.watch_answered(&mut counts, &ServerMessage::WatchClosed { id: 3 });
        marks.request(&mut counts, (SimTime(70_000), &clock), &watch_from(4, 5));
        let expired = Status::new(StatusReason::Expired, "too old resource version: 5 (9)");
        let error = ServerMessage::WatchEvent {
            id: 4,
            event: WatchEvent::Error(expired),
        };
        marks.watch_answered(&mut counts, &error);
        marks.watch_answered(&mut counts, &error);
        assert_eq!(
            (counts.old_resumes_served, counts.old_resumes_expired),
            (1, 1)
        );
        marks.request(&mut counts, (SimTime(80_000), &clock), &watch_from(5, 6));
        assert_eq!(marks.old_resume, None, "revision 6 is 50 s old");
    }

    #[test]
    fn the_revision_clock_forgets_beyond_its_horizon_but_still_calls_those_old() {
        let mut clock = RevisionClock::default();
        clock.record(2, SimTime(0));
        clock.record(3, SimTime(700_000));
        assert_eq!(clock.made_at.len(), 1);
        assert_eq!(clock.age(2, SimTime(700_000)), REVISION_CLOCK_HORIZON);
        assert_eq!(clock.age(3, SimTime(760_000)), SimDuration::from_secs(60));
        assert_eq!(
            RevisionClock::default().age(1, SimTime(5)),
            SimDuration(5),
            "the new store's revision"
        );
    }

    #[test]
    fn lists_below_the_arrival_revision_or_below_what_was_seen_count_as_stale() {
        let (mut counts, mut marks) = (ProbeCounts::default(), ClientMarks::default());
        let page = |resource_version| ListResponse {
            items: Vec::new(),
            resource_version,
            continue_token: None,
        };
        marks.list_answered(&mut counts, &page(10), 10);
        marks.list_answered(&mut counts, &page(8), 12);
        assert_eq!((counts.stale_lists, counts.lists_older_than_seen), (1, 1));
        marks.request(
            &mut counts,
            (SimTime(0), &RevisionClock::default()),
            &ClientMessage::List {
                id: 1,
                options: ListOptions::at(ResourceVersionParam::Zero),
            },
        );
        assert_eq!(counts.paginated_lists, 0);
    }
}
