//! Coverage probes: named rare states a sweep must reach (ANCHORS: Sieve and FoundationDB's
//! `TEST_PROBE`/`BUGGIFY` coverage). A random search that never gets a 410, never resumes from
//! a bookmark or never re-initializes a cache proves nothing about the code that handles them,
//! so each scenario names the probes its sweep must hit, and a sweep that misses one fails.

use serde::Serialize;

use crate::api::WatchEvent;
use crate::api::{ClientMessage, ListResponse, ResourceVersionParam};
use crate::object::ResourceVersion;

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
}

impl ClientMarks {
    /// The client sends a request.
    pub(crate) fn request(&mut self, counts: &mut ProbeCounts, message: &ClientMessage) {
        match message {
            ClientMessage::List { options, .. } => {
                counts.paginated_lists += u64::from(options.continue_token.is_some());
            }
            ClientMessage::Watch { options, .. } => {
                let from = match options.resource_version {
                    ResourceVersionParam::At(resource_version) => Some(resource_version),
                    ResourceVersionParam::Unset | ResourceVersionParam::Zero => None,
                };
                counts.bookmark_resumes += u64::from(from.is_some() && from == self.bookmark);
            }
            ClientMessage::StopWatch { .. } => {}
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ListOptions, RequestId, WatchOptions};
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
        marks.request(&mut counts, &watch_from(2, 9));
        assert_eq!(counts.bookmark_resumes, 1);
        marks.watch_event(&mut counts, &WatchEvent::Added(Object::bare("ns/b", 10)));
        marks.request(&mut counts, &watch_from(3, 9));
        assert_eq!(counts.bookmark_resumes, 1, "an event followed the bookmark");
        marks.restart();
        marks.request(&mut counts, &watch_from(4, 10));
        assert_eq!(counts.bookmark_resumes, 1);
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
            &ClientMessage::List {
                id: 1,
                options: ListOptions::at(ResourceVersionParam::Zero),
            },
        );
        assert_eq!(counts.paginated_lists, 0);
    }
}
