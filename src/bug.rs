//! Planted bugs (SPEC §8, DESIGN principle 8): the flags the models ask, and the catalog data.
//!
//! A leaf: it imports nothing of the crate. Every model takes a [`Bugs`] as the last argument
//! of its constructor and asks [`Bugs::is`] at the single place a bug is planted, each such
//! place one labelled line: `if self.bugs.is(Bug::X) { // Planted: <upstream ref> (Bn) ... }`.
//! The hunt that proves each bug is caught lives with the drivers (`explore`).

use serde::{Deserialize, Serialize};

/// What the catalog says about one bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BugInfo {
    /// The catalog id (SPEC §8 `B<n>`, or `C<n>` for classic mistakes, `E<n>` for etcd
    /// robustness-test finds).
    pub id: &'static str,
    /// The kebab-case name `--bug` takes (the serde name).
    pub name: &'static str,
    /// Where upstream it was found or fixed (k/k#…, etcd#…, cg@…, or "classic").
    pub upstream: &'static str,
    /// The model it is planted in.
    pub component: &'static str,
    /// The name of the library scenario that exposes it.
    pub scenario: &'static str,
    /// How many seeds a hunt may take to catch it.
    pub seeds: u64,
    /// What the planted check does, on one line.
    pub description: &'static str,
}

/// Writes the `Bug` enum, `Bug::ALL` and `Bug::info` from one list of rows, so that each bug
/// is written once.
macro_rules! bug_catalog {
    ($(
        $(#[$attr:meta])*
        $variant:ident {
            id: $id:literal,
            name: $name:literal,
            upstream: $upstream:literal,
            component: $component:literal,
            scenario: $scenario:literal,
            seeds: $seeds:literal,
            description: $description:literal $(,)?
        },
    )*) => {
        /// One planted bug. Its name (see [`Bug::info`]) is the serde name `--bug` takes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Bug {
            $(
                #[doc = $description]
                $(#[$attr])*
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl Bug {
            /// Every bug, in catalog order.
            pub const ALL: &'static [Bug] = &[$(Bug::$variant),*];

            /// The catalog entry.
            pub fn info(self) -> BugInfo {
                match self {
                    $(Bug::$variant => BugInfo {
                        id: $id,
                        name: $name,
                        upstream: $upstream,
                        component: $component,
                        scenario: $scenario,
                        seeds: $seeds,
                        description: $description,
                    },)*
                }
            }
        }
    };
}

bug_catalog! {
    ResumeFromAnyEventRv {
        id: "B11",
        name: "resume-from-any-event-rv",
        upstream: "k/k#74022, PR #136583",
        component: "reflector",
        scenario: "informer-atomic-watch-list",
        seeds: 100,
        description: "lastSyncRV follows the unordered initial ADDED events of a watch-list, before its bookmark",
    },
    EarlyProgress {
        id: "B13",
        name: "early-progress",
        upstream: "etcd#15220",
        component: "etcd watch",
        scenario: "etcd-watch",
        seeds: 100,
        description: "a requested progress notification is sent before the watch's pending events",
    },
    RelistWithSameRvOnTooLarge {
        id: "B14",
        name: "relist-with-same-rv-on-too-large",
        upstream: "k/k#91073, PR #92537",
        component: "reflector",
        scenario: "informer-ha-quiet",
        seeds: 150,
        description: "a 504 TooLargeResourceVersion list is retried with the same RV",
    },
    RelistWithSameRvOnExpired {
        id: "B15",
        name: "relist-with-same-rv-on-expired",
        upstream: "cg@a3f022a93",
        component: "reflector",
        scenario: "informer-no-cache",
        seeds: 200,
        description: "a 410 Expired list is retried with the same (compacted) RV forever",
    },
    ResumeWatchFromListRv {
        id: "C1",
        name: "resume-watch-from-list-rv",
        upstream: "classic",
        component: "reflector",
        scenario: "informer",
        seeds: 200,
        description: "after a clean close, re-watch from the last list's RV, not the last event's",
    },
    ClosedWatchIsEndOfData {
        id: "C2",
        name: "closed-watch-is-end-of-data",
        upstream: "classic (SPEC §9.2 N7)",
        component: "reflector",
        scenario: "informer",
        seeds: 200,
        description: "a cleanly closed watch ends the reflector: it never watches again",
    },
    ReplaceSkipsKeyWithQueuedDelete {
        id: "B2",
        name: "replace-skips-key-with-queued-delete",
        upstream: "k/k#83810, PR #83911",
        component: "DeltaFIFO.Replace",
        scenario: "informer-fifo-backlog",
        seeds: 200,
        description: "a listed key whose last queued delta is Deleted gets no Replaced delta",
    },
    ReplaceSkipsQueuedTombstone {
        id: "B4",
        name: "replace-skips-queued-tombstone",
        upstream: "k/k#115658, PR #115620",
        component: "DeltaFIFO.Replace",
        scenario: "informer-fifo-backlog",
        seeds: 200,
        description: "a queue-only key missing from the relist gets no tombstone",
    },
    ResyncBehindPendingDelta {
        id: "B6",
        name: "resync-behind-pending-delta",
        upstream: "k/k#31981, PR #32125",
        component: "DeltaFIFO.Resync",
        scenario: "informer-slow-consumer",
        seeds: 300,
        description: "resync queues Sync(indexer object) behind a pending newer delta",
    },
    DeleteIgnoresQueuedAdd {
        id: "B7",
        name: "delete-ignores-queued-add",
        upstream: "k/k#27004, PR #27435",
        component: "DeltaFIFO.Delete",
        scenario: "informer-slow-consumer",
        seeds: 300,
        description: "a Delete is dropped when the key is queued but not yet in the indexer",
    },
    IndexerLosesValueOnGrowth {
        id: "B8",
        name: "indexer-loses-value-on-growth",
        upstream: "k/k#109115, PR #109137",
        component: "threadSafeMap.updateIndices",
        scenario: "informer-labels",
        seeds: 100,
        description: "index values growing from [a] to [a, b] lose a",
    },
    WatchCacheServesEventAtRv {
        id: "B9a",
        name: "watch-cache-serves-event-at-rv",
        upstream: "k/k#24004",
        component: "watchCache.GetInterval",
        scenario: "informer",
        seeds: 200,
        description: "a watch from RV N is served the event at N again (a duplicate)",
    },
    WatchCacheAcceptsListRvMinusOne {
        id: "B9b",
        name: "watch-cache-accepts-list-rv-minus-one",
        upstream: "k/k#49956, PR #49992",
        component: "watchCache.GetInterval",
        scenario: "informer-relist-edge",
        seeds: 100,
        description: "right after a relist a watch at listRV-1 is accepted and misses the event at listRV",
    },
    WatchCacheExpiresListRv {
        id: "B9c",
        name: "watch-cache-expires-list-rv",
        upstream: "PR #68065",
        component: "watchCache.GetInterval",
        scenario: "informer-cache-churn",
        seeds: 300,
        description: "right after a relist a watch at the list RV gets a needless 410",
    },
    WatchCacheAcceptsEvictedRv {
        id: "B9d",
        name: "watch-cache-accepts-evicted-rv",
        upstream: "k/k#91415, PR #91417",
        component: "watchCache.GetInterval",
        scenario: "informer-cache-churn",
        seeds: 300,
        description: "after evictions, watches from below the window are accepted and miss the evicted events",
    },
    WatchCacheKeepsHistoryOnRelist {
        id: "C3",
        name: "watch-cache-keeps-history-on-relist",
        upstream: "classic",
        component: "watchCache.Replace",
        scenario: "informer-cache-churn",
        seeds: 300,
        description: "a relist of the cacher keeps the old history, so watches resume across the gap",
    },
    DedupAnyTwoDeltas {
        id: "C4",
        name: "dedup-any-two-deltas",
        upstream: "classic (cf. delta_fifo.go dedupDeltas)",
        component: "DeltaFIFO.queueAction",
        scenario: "informer-slow-consumer",
        seeds: 300,
        description: "any two consecutive deltas of a key are merged, keeping the older",
    },
    ReplaceSkipsKnownTombstone {
        id: "C5",
        name: "replace-skips-known-tombstone",
        upstream: "classic (SPEC §9.2 N2)",
        component: "DeltaFIFO.Replace",
        scenario: "informer-fifo-backlog",
        seeds: 300,
        description: "a known key missing from the relist gets no tombstone",
    },
    ResumeFromOlderRevision {
        id: "E1",
        name: "resume-from-older-revision",
        upstream: "etcd#15271",
        component: "etcd watch",
        scenario: "etcd-watch",
        seeds: 100,
        description: "a watch resuming after a stall re-sends the revision it already delivered",
    },
    DuplicateEvent {
        id: "E2",
        name: "duplicate-event",
        upstream: "etcd#17247",
        component: "etcd watch",
        scenario: "etcd-watch",
        seeds: 100,
        description: "the last event of a batch is sent twice",
    },
    DropDeleteAboveCompaction {
        id: "E3",
        name: "drop-delete-above-compaction",
        upstream: "etcd#18089 (broadened)",
        component: "etcd watch",
        scenario: "etcd-watch",
        seeds: 200,
        description: "a delete at compactRev+1 is never sent (broader than the 3.4 loss at compactRev the oracle tolerates)",
    },
    SkipCompactRevision {
        id: "E4",
        name: "skip-compact-revision",
        upstream: "etcd#19179 (broadened)",
        component: "etcd watch",
        scenario: "etcd-watch-auto-compaction",
        seeds: 100,
        description: "a watch whose next revision is the compact revision gets nothing at it, puts included",
    },
    FutureWatchGetsOldEvents {
        id: "E5",
        name: "future-watch-gets-old-events",
        upstream: "etcd#20221, PR #20229",
        component: "etcd watch",
        scenario: "etcd-watch",
        seeds: 100,
        description: "a watch on a future revision starts at the current one and gets an event below its start",
    },
    CacherResendsBufferedEvents {
        id: "B10",
        name: "cacher-resends-buffered-events",
        upstream: "PR #73845",
        component: "cacheWatcher.processInterval",
        scenario: "informer-blocked-dispatch",
        seeds: 100,
        description: "events still buffered in the dispatcher when a watch registers are sent again after its interval",
    },
    PagerFollowsInconsistentContinue {
        id: "B16",
        name: "pager-follows-inconsistent-continue",
        upstream: "k/k#66981, PR #67284",
        component: "ListPager",
        scenario: "informer-paged-compaction",
        seeds: 100,
        description: "an expired continuation's inconsistent token is followed: one list mixes two snapshots",
    },
    RelistDeliveredAsSync {
        id: "B3",
        name: "relist-delivered-as-sync",
        upstream: "k/k#86015, cg@08cc53159",
        component: "sharedIndexInformer.HandleDeltas",
        scenario: "informer-handler-without-resync",
        seeds: 100,
        description: "an update from a relist (Replaced) is distributed as a sync, so handlers without resync miss it",
    },
    TombstoneCarriesStaleObject {
        id: "B5",
        name: "tombstone-carries-stale-object",
        upstream: "cg@a01b5a2a9, cg@8279635aa",
        component: "DeltaFIFO.Replace",
        scenario: "informer-fifo-backlog",
        seeds: 200,
        description: "a queued key missing from the relist gets a tombstone with the indexer's object, not the newest queued one",
    },
    HandlerSyncedBeforeInitialAdds {
        id: "B20",
        name: "handler-synced-before-initial-adds",
        upstream: "k/k#113763, PR #113985",
        component: "processorListener HasSynced",
        scenario: "informer-real-fifo",
        seeds: 50,
        description: "a registration reports synced as soon as the informer has, with initial adds still undelivered",
    },
    RequeueOnProcessError {
        id: "B24",
        name: "requeue-on-process-error",
        upstream: "cg@52af3bdc0, cg@d853ccf18, cg@8269e4141",
        component: "controller.processLoop (RetryOnError)",
        scenario: "informer-fifo-backlog",
        seeds: 200,
        description: "a processing error re-adds the popped deltas (AddIfNotPresent), so they are applied again over newer state",
    },
    PopMissesClose {
        id: "B28",
        name: "pop-misses-close",
        upstream: "k/k#90581, cg@73aa499de",
        component: "DeltaFIFO.Pop/Close",
        scenario: "informer-restarts",
        seeds: 20,
        description: "an empty-queue Pop checks `closed` and waits in two steps; a Close between them wakes nobody, so processLoop never returns",
    },
    WorkqueueQueuesItemInProcessing {
        id: "C6",
        name: "workqueue-queues-item-in-processing",
        upstream: "classic (client-go queue.go Add, SPEC §7)",
        component: "workqueue",
        scenario: "controller-replicaset",
        seeds: 100,
        description: "an add of an item being processed queues it at once instead of deferring it to Done, so a second worker takes it",
    },
    WorkqueueUnpairedDone {
        id: "B21",
        name: "workqueue-unpaired-done",
        upstream: "k/k#79934, PR #141079",
        component: "controller runtime",
        scenario: "controller-replicaset",
        seeds: 200,
        description: "a failed reconcile calls Done twice; a key added meanwhile is pushed twice and sits in the queue twice",
    },
    ReconcileWithoutExpectations {
        id: "C7",
        name: "reconcile-without-expectations",
        upstream: "classic (client-go controller_utils.go ControllerExpectations)",
        component: "sample controller",
        scenario: "controller-replicaset",
        seeds: 100,
        description: "the ReplicaSet-like controller acts on its lister without waiting for its own creates to show up, so it creates again",
    },
    DropKeyOnError {
        id: "C8",
        name: "drop-key-on-error",
        upstream: "classic (sample-controller processNextWorkItem)",
        component: "controller runtime",
        scenario: "controller-replicaset",
        seeds: 200,
        description: "a failed reconcile forgets its key instead of requeueing it rate limited, so the work is lost until another event",
    },
    MutateListerObject {
        id: "C9",
        name: "mutate-lister-object",
        upstream: "classic (client-go cache_mutation_detector.go)",
        component: "sample controller",
        scenario: "controller-replicaset",
        seeds: 50,
        description: "the controller writes the owner's status into the object its lister returned, changing the informer's cache",
    },
}

impl Bug {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The bug named `name`, or a one-line error listing the allowed names.
    pub fn from_name(name: &str) -> Result<Bug, UnknownBug> {
        Bug::ALL
            .iter()
            .copied()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| UnknownBug {
                given: name.to_owned(),
            })
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(name: &str) -> Result<Bug, UnknownBug> {
        Bug::from_name(name)
    }
}

/// A name that is not in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBug {
    /// The name given.
    pub given: String,
}

impl std::fmt::Display for UnknownBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allowed: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
        write!(
            f,
            "unknown bug {:?} (allowed: {})",
            self.given,
            allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownBug {}

/// The bugs switched on for one run: at most one. Models keep a copy and ask [`Bugs::is`] at
/// the single place a bug is planted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bugs(Option<Bug>);

impl Bugs {
    /// No bug: the faithful models.
    pub const NONE: Bugs = Bugs(None);

    /// `bug` switched on, or none.
    pub fn new(bug: Option<Bug>) -> Bugs {
        Bugs(bug)
    }

    /// Whether `bug` is switched on.
    pub fn is(self, bug: Bug) -> bool {
        self.0 == Some(bug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names_and_ids_are_unique() {
        let mut ids = std::collections::BTreeSet::new();
        for bug in Bug::ALL {
            let serde_name = serde_json::to_value(bug).expect("serializes");
            assert_eq!(serde_name.as_str(), Some(bug.name()));
            assert_eq!(Bug::from_name(bug.name()), Ok(*bug));
            assert!(ids.insert(bug.info().id), "duplicate id {}", bug.info().id);
        }
    }

    #[test]
    fn unknown_names_list_the_catalog_on_one_line() {
        let error = Bug::from_name("nope").unwrap_err().to_string();
        assert!(error.contains("early-progress"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn only_the_switched_on_bug_is_on() {
        let bugs = Bugs::new(Some(Bug::DuplicateEvent));
        assert!(bugs.is(Bug::DuplicateEvent));
        assert!(!bugs.is(Bug::EarlyProgress));
        assert!(!Bugs::NONE.is(Bug::DuplicateEvent));
    }
}
