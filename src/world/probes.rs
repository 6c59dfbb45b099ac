//! Coverage probes: named rare states a sweep must reach (ANCHORS: Sieve and FoundationDB's
//! `TEST_PROBE`/`BUGGIFY` coverage). A random search that never gets a 410, never resumes from
//! a bookmark or never re-initializes a cache proves nothing about the code that handles them,
//! so each scenario names the probes its sweep must hit, and a sweep that misses one fails.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RunStats;
use crate::api::{ClientMessage, ListResponse, ResourceVersionParam};
use crate::apiserver::event::WatchEvent;
use crate::object::ResourceVersion;

/// One named rare state. The serde name (kebab-case) is what scenarios list under `probes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// A reflector ran ListAndWatch again (a relist, or a watch-list restart).
    Relist,
    /// An apiserver answered 410 Expired (a list or a watch).
    #[serde(rename = "expired-410")]
    Expired410,
    /// A list was served at an RV below etcd's revision when the request arrived.
    StaleList,
    /// A list was served at an RV below one the client had already seen.
    ListOlderThanSeen,
    /// A watch resumed from the RV of a bookmark (newer than the client's last event).
    BookmarkResume,
    /// A watch-list stream reached its initial-events-end bookmark.
    InitialEventsEnd,
    /// A list page was asked for with a continue token.
    PaginatedList,
    /// etcd compacted while a watch was open on it.
    CompactionUnderWatch,
    /// etcd canceled a watch because its revision was compacted.
    EtcdWatchCompacted,
    /// etcd sent a progress notification.
    ProgressNotify,
    /// An informer processed a `DeletedFinalStateUnknown` tombstone from a relist.
    ReplaceTombstone,
    /// A DeltaFIFO resync skipped a known key that still had queued deltas (SPEC T9).
    ResyncSkipPending,
    /// The cacher's dispatcher terminated a slow watcher.
    SlowWatcherTermination,
    /// A watch cache re-initialized after its upstream watch failed.
    CacherReinit,
    /// An apiserver answered 504 TooLargeResourceVersion.
    #[serde(rename = "too-large-504")]
    TooLarge504,
    /// An apiserver answered 429 while its cache was not ready.
    #[serde(rename = "not-ready-429")]
    NotReady429,
    /// A consistent list timed out waiting for the cache and was served by etcd.
    EtcdFallback,
    /// A client process stopped while its informer's Pop was in the empty-queue loop.
    CloseUnderPop,
}

/// The probe counters [`RunStats`] keeps beyond its own counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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

impl Probe {
    /// Every probe.
    pub const ALL: &'static [Probe] = &[
        Probe::Relist,
        Probe::Expired410,
        Probe::StaleList,
        Probe::ListOlderThanSeen,
        Probe::BookmarkResume,
        Probe::InitialEventsEnd,
        Probe::PaginatedList,
        Probe::CompactionUnderWatch,
        Probe::EtcdWatchCompacted,
        Probe::ProgressNotify,
        Probe::ReplaceTombstone,
        Probe::ResyncSkipPending,
        Probe::SlowWatcherTermination,
        Probe::CacherReinit,
        Probe::TooLarge504,
        Probe::NotReady429,
        Probe::EtcdFallback,
        Probe::CloseUnderPop,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Relist => "relist",
            Probe::Expired410 => "expired-410",
            Probe::StaleList => "stale-list",
            Probe::ListOlderThanSeen => "list-older-than-seen",
            Probe::BookmarkResume => "bookmark-resume",
            Probe::InitialEventsEnd => "initial-events-end",
            Probe::PaginatedList => "paginated-list",
            Probe::CompactionUnderWatch => "compaction-under-watch",
            Probe::EtcdWatchCompacted => "etcd-watch-compacted",
            Probe::ProgressNotify => "progress-notify",
            Probe::ReplaceTombstone => "replace-tombstone",
            Probe::ResyncSkipPending => "resync-skip-pending",
            Probe::SlowWatcherTermination => "slow-watcher-termination",
            Probe::CacherReinit => "cacher-reinit",
            Probe::TooLarge504 => "too-large-504",
            Probe::NotReady429 => "not-ready-429",
            Probe::EtcdFallback => "etcd-fallback",
            Probe::CloseUnderPop => "close-under-pop",
        }
    }

    /// How often a run (or a sum of runs) reached this state.
    pub fn hits(self, stats: &RunStats) -> u64 {
        let probes = &stats.probes;
        let apiservers = &stats.apiservers;
        match self {
            Probe::Relist => stats.relists,
            Probe::Expired410 => apiservers.expired,
            Probe::StaleList => probes.stale_lists,
            Probe::ListOlderThanSeen => probes.lists_older_than_seen,
            Probe::BookmarkResume => probes.bookmark_resumes,
            Probe::InitialEventsEnd => probes.initial_events_ends,
            Probe::PaginatedList => probes.paginated_lists,
            Probe::CompactionUnderWatch => probes.compactions_under_watch,
            Probe::EtcdWatchCompacted => stats.compacted_watches,
            Probe::ProgressNotify => stats.progress_notifications,
            Probe::ReplaceTombstone => stats.tombstones,
            Probe::ResyncSkipPending => probes.resync_skips,
            Probe::SlowWatcherTermination => apiservers.slow_terminations,
            Probe::CacherReinit => apiservers.reinits,
            Probe::TooLarge504 => apiservers.too_large,
            Probe::NotReady429 => apiservers.not_ready,
            Probe::EtcdFallback => apiservers.etcd_fallbacks,
            Probe::CloseUnderPop => probes.closes_under_pop,
        }
    }

    /// The probes of `required` that `stats` never hit.
    pub fn misses(required: &[Probe], stats: &RunStats) -> Vec<Probe> {
        required
            .iter()
            .copied()
            .filter(|probe| probe.hits(stats) == 0)
            .collect()
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for probe in Probe::ALL {
            let serde_name = serde_json::to_string(probe).expect("serializes");
            assert_eq!(serde_name, format!("\"{}\"", probe.name()));
        }
    }

    #[test]
    fn misses_lists_exactly_the_probes_never_hit() {
        let stats = RunStats {
            relists: 3,
            probes: ProbeCounts {
                bookmark_resumes: 1,
                ..ProbeCounts::default()
            },
            ..RunStats::default()
        };
        let required = [Probe::Relist, Probe::BookmarkResume, Probe::CacherReinit];
        assert_eq!(Probe::misses(&required, &stats), vec![Probe::CacherReinit]);
    }
}
