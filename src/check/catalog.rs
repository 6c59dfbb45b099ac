//! The invariant catalog: every named check, its class, what it promises, when it holds, and
//! where upstream makes (or does not make) the promise. `informer-sim invariants` prints it.
//!
//! Each invariant has one name: the enum variant, whose snake case is the string violations
//! and scenario files use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The class of an invariant, as stateright's `Expectation` classes properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Holds at every step of every run: a violation is a failure.
    Always,
    /// Upstream does NOT guarantee it in general (SPEC §9.2): a scenario may declare it in
    /// `expected_hazards`, and then a violation is reported as an expected hazard.
    Hazard,
    /// Must eventually hold once faults heal: checked when the run settles (or at a stop).
    Liveness,
}

impl Kind {
    /// The class's name as `informer-sim invariants` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Hazard => "upstream hazard",
            Kind::Liveness => "liveness",
        }
    }
}

/// Where a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// In every run.
    EveryRun,
    /// Only in scenarios that declare it an expected hazard (an assumption check: cheap runs
    /// elsewhere must not rely on it, and must not pay for it).
    WhereDeclared,
}

/// One invariant of the spec.
#[derive(Clone, Copy, Debug)]
pub struct InvariantInfo {
    /// Its name, as violations report it.
    pub name: &'static str,
    /// Its class.
    pub kind: Kind,
    /// Where it is checked.
    pub checked: Checked,
    /// What it promises.
    pub promise: &'static str,
    /// The scenario settings under which it holds (or that it is a hazard).
    pub holds_when: &'static str,
    /// The upstream source of the promise.
    pub source: &'static str,
}

/// Writes the `Invariant` enum, `Invariant::ALL` and `Invariant::info` from one list of rows.
macro_rules! invariant_catalog {
    ($(
        $variant:ident {
            name: $name:literal,
            kind: $kind:ident,
            checked: $checked:ident,
            promise: $promise:literal,
            holds_when: $holds_when:literal,
            source: $source:literal $(,)?
        },
    )*) => {
        /// One invariant of the catalog. Its serde name is its snake-case name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Invariant {
            $(
                #[doc = $promise]
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl Invariant {
            /// Every invariant, grouped by the part of the pipeline it watches.
            pub const ALL: &'static [Invariant] = &[$(Invariant::$variant),*];

            /// The catalog entry.
            pub fn info(self) -> InvariantInfo {
                match self {
                    $(Invariant::$variant => InvariantInfo {
                        name: $name,
                        kind: Kind::$kind,
                        checked: Checked::$checked,
                        promise: $promise,
                        holds_when: $holds_when,
                        source: $source,
                    },)*
                }
            }
        }
    };
}

invariant_catalog! {
    EtcdMatchesReference {
        name: "etcd_matches_reference",
        kind: Always,
        checked: EveryRun,
        promise: "the fake etcd answers every request exactly as a naive full-copy-per-revision model does",
        holds_when: "always",
        source: "etcd API doc (KV, Txn, revisions); SPEC §1.1-§1.3",
    },
    EtcdWatchIsHistorySuffix {
        name: "etcd_watch_is_history_suffix",
        kind: Always,
        checked: EveryRun,
        promise: "an etcd watch stream is exactly the history after its start revision for its range: ordered, gap-free, whole revisions",
        holds_when: "always; a delete at exactly the compact revision may be missing, as etcd 3.4 does",
        source: "etcd api.md \"Watch streams\" (ordered, reliable, atomic); SPEC §1.4",
    },
    EtcdProgressAfterEvents {
        name: "etcd_progress_after_events",
        kind: Always,
        checked: EveryRun,
        promise: "a progress notification at R comes only after every event at or below R was sent",
        holds_when: "always",
        source: "etcd#15220, etcd#17507; SPEC §1.4, §8 B13",
    },
    EtcdCancelOnlyWhenCompacted {
        name: "etcd_cancel_only_when_compacted",
        kind: Always,
        checked: EveryRun,
        promise: "a watch is canceled for compaction only when its next revision is below the compact revision",
        holds_when: "always",
        source: "etcd watcher_group.go chooseAll; SPEC §1.4",
    },
    EtcdWatchersCaughtUp {
        name: "etcd_watchers_caught_up",
        kind: Liveness,
        checked: EveryRun,
        promise: "after healing, every raw etcd watcher has an open watch that delivered all of its range",
        holds_when: "always",
        source: "etcd api.md \"Watch streams\" (reliable)",
    },
    ServerWatchIsHistorySuffix {
        name: "server_watch_is_history_suffix",
        kind: Always,
        checked: EveryRun,
        promise: "an apiserver watch stream is etcd's history after its start RV (selector transitions included), synthetic ADDED only at its start, or a 410 before any event",
        holds_when: "always",
        source: "api-concepts \"Semantics for watch\"; k/k#24004, #49956, #91415, #73845, #116122; SPEC §2.5, §8 B9, B10",
    },
    ServerBookmarkIsProgress {
        name: "server_bookmark_is_progress",
        kind: Always,
        checked: EveryRun,
        promise: "a bookmark's RV is at least every earlier event's and below every later one's",
        holds_when: "always, unless etcd's progress contract is broken (etcd#15220)",
        source: "KEP-956; cacher.go dispatchEvents; SPEC §2.7, §8 B13",
    },
    ServerListIsStateAtRv {
        name: "server_list_is_state_at_rv",
        kind: Always,
        checked: EveryRun,
        promise: "every list page holds exactly etcd's state at its resourceVersion",
        holds_when: "always",
        source: "etcd3/store.go GetList; k/k#66981; SPEC §2.1, §8 B16",
    },
    ServerListIsFreshEnough {
        name: "server_list_is_fresh_enough",
        kind: Always,
        checked: EveryRun,
        promise: "RV \"\" lists are at least etcd's revision at arrival, RV=N not-older-than lists at least N, exact lists exactly N; RV \"0\" promises nothing",
        holds_when: "always",
        source: "api-concepts \"Semantics for get and list\"; KEP-2340, KEP-2523; SPEC §2.4, §9.1 P5",
    },
    ReflectorLastSyncRvIsASafePoint {
        name: "reflector_last_sync_rv_is_a_safe_point",
        kind: Always,
        checked: EveryRun,
        promise: "whenever the reflector sets its last synced RV to R, what it told its store is etcd's state at R",
        holds_when: "always",
        source: "reflector.go watchHandler (k/k#136583); SPEC §8 B11, §9.3 item 4",
    },
    IndexerRvNeverDecreases {
        name: "indexer_rv_never_decreases",
        kind: Always,
        checked: EveryRun,
        promise: "per key, the RV the indexer holds never decreases within one process",
        holds_when: "always",
        source: "shared_informer.go contract (subsequence of states); k/k#31981, cg@52af3bdc0; SPEC §9.1 P2, §8 B6, B24",
    },
    IndexerObjectsExistedInEtcd {
        name: "indexer_objects_existed_in_etcd",
        kind: Always,
        checked: EveryRun,
        promise: "every object the indexer holds is a state etcd really had",
        holds_when: "always",
        source: "shared_informer.go contract; SPEC §9.1 P2",
    },
    NoTimeTravelAcrossRestarts {
        name: "no_time_travel_across_restarts",
        kind: Hazard,
        checked: EveryRun,
        promise: "across restarts of one client, no key goes back to an older RV",
        holds_when: "NOT guaranteed upstream: an expected hazard with RV \"0\" initial lists from a lagging cache (stale-relist-ha); holds with consistent lists, and with watch-list while its first stream does not fail non-retriably (stale-relist-ha-watch-list-fallback)",
        source: "k/k#59848, #67998, #83520, KEP-3157; SPEC §8 B1, §9.2 N1",
    },
    NotificationFollowsCacheUpdate {
        name: "notification_follows_cache_update",
        kind: Always,
        checked: EveryRun,
        promise: "a handler is notified of a state only once the indexer holds it or a newer one",
        holds_when: "always",
        source: "shared_informer.go contract; SPEC §9.1 P3",
    },
    IndexerIndicesMatchItems {
        name: "indexer_indices_match_items",
        kind: Always,
        checked: EveryRun,
        promise: "every index holds exactly the keys its function gives for the items, with no empty sets",
        holds_when: "always",
        source: "thread_safe_store.go updateIndices; k/k#109115; SPEC §6, §8 B8",
    },
    FifoInternalInvariants {
        name: "fifo_internal_invariants",
        kind: Always,
        checked: EveryRun,
        promise: "the FIFO's bookkeeping holds: a key is queued iff it has deltas, no empty deltas, tombstones carry their own key",
        holds_when: "always",
        source: "delta_fifo.go, the_real_fifo.go; SPEC §4.1, §8 B5",
    },
    QueueAppliedEqualsReflectorView {
        name: "queue_applied_equals_reflector_view",
        kind: Always,
        checked: EveryRun,
        promise: "after every store call and every pop, the indexer with the FIFO's queued deltas applied equals the state the reflector's store calls describe",
        holds_when: "always",
        source: "delta_fifo.go Replace and Delete (k/k#83911, #115620, #27435), the_real_fifo.go; SPEC §4.2, §8 B2, B4, B7",
    },
    TombstoneCarriesNewestKnownState {
        name: "tombstone_carries_newest_known_state",
        kind: Always,
        checked: EveryRun,
        promise: "a queued DeletedFinalStateUnknown carries the newest state the client knew for its key (the previous queued state, else the indexer's), never an older one",
        holds_when: "always",
        source: "delta_fifo.go Replace (cg@a01b5a2a9, cg@8279635aa); SPEC §4.3, §8 B5",
    },
    InformerSyncedImpliesInitialListApplied {
        name: "informer_synced_implies_initial_list_applied",
        kind: Hazard,
        checked: EveryRun,
        promise: "when the informer reports synced, every item of its initial list has been applied to the indexer",
        holds_when: "RealFIFO and atomic RealFIFO; an expected hazard with DeltaFIFO (SPEC §9.2 N6)",
        source: "delta_fifo.go Pop vs the_real_fifo.go Pop; SPEC §9.2 N6, §8 B20",
    },
    HandlerSyncedAfterInitialList {
        name: "handler_synced_after_initial_list",
        kind: Hazard,
        checked: EveryRun,
        promise: "when a handler registration first reports synced, the handler was notified of every object of its initial list",
        holds_when: "RealFIFO and atomic RealFIFO; an expected hazard with DeltaFIFO (SPEC §9.2 N6)",
        source: "k/k#113763, PR #113985; SPEC §8 B20",
    },
    ClosedFifoWakesPop {
        name: "closed_fifo_wakes_pop",
        kind: Liveness,
        checked: EveryRun,
        promise: "when a client process stops, Close wakes the Pop waiting on the empty DeltaFIFO and processLoop returns ErrFIFOClosed within one step",
        holds_when: "always; checked at every client restart (RealFIFO's Close always held the FIFO lock)",
        source: "controller.go Run (defer Queue.Close), delta_fifo.go Pop/Close (k/k#90581, cg@73aa499de); SPEC §8 B28",
    },
    IndexerConvergesToEtcd {
        name: "indexer_converges_to_etcd",
        kind: Liveness,
        checked: EveryRun,
        promise: "after faults heal and writes stop, the indexer equals etcd's state (keys, RVs, values)",
        holds_when: "always",
        source: "shared_informer.go contract (eventual consistency); SPEC §9.1 P1, §8 B2, B4, B7",
    },
    HandlerMirrorEqualsIndexer {
        name: "handler_mirror_equals_indexer",
        kind: Liveness,
        checked: EveryRun,
        promise: "after settling, every handler's mirror (rebuilt from OnAdd/OnUpdate/OnDelete) equals the indexer",
        holds_when: "always without handler panics",
        source: "k/k#86015, cg@08cc53159; SPEC §8 B3, §9.1 P1",
    },
    EveryDeleteIsOnDeleteWithFinalState {
        name: "every_delete_is_on_delete_with_final_state",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "every delete reaches handlers as OnDelete with the object's final state",
        holds_when: "NOT guaranteed upstream: deletes noticed by a relist arrive as DeletedFinalStateUnknown with a stale or nil object, a delete+recreate as OnUpdate across UIDs; checked only where declared (hazard-lost-deletes)",
        source: "delta_fifo.go Replace; shared_informer.go handler doc; controller.go DeletedObject; SPEC §9.2 N2, §10 T3",
    },
    ResyncRepairsDivergence {
        name: "resync_repairs_divergence",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "after a resync, the resynced objects equal etcd's current state",
        holds_when: "NOT guaranteed upstream: resync replays the indexer's own objects, stale while the watch lags or stalls; checked only where declared (hazard-resync)",
        source: "delta_fifo.go Resync/syncKeyLocked, the_real_fifo.go Resync; SPEC §9.2 N3",
    },
    SyncedMeansCacheUpToDate {
        name: "synced_means_cache_up_to_date",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "when the informer first reports synced, its indexer equals etcd's current state",
        holds_when: "NOT guaranteed upstream: synced means the first list (RV \"0\" may be stale) was popped; checked only where declared (hazard-stale-sync)",
        source: "shared_informer.go HasSynced doc; delta_fifo.go / the_real_fifo.go HasSynced; SPEC §9.2 N4",
    },
    ListerIsASnapshotAtOneRv {
        name: "lister_is_a_snapshot_at_one_rv",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "after every processed item, the indexer equals etcd's state at one single RV",
        holds_when: "NOT guaranteed upstream with DeltaFIFO (per-key compression reorders keys) or plain RealFIFO (relists apply key by key): a hazard where declared (hazard-lister-snapshot); holds with atomic RealFIFO, checked in every atomic run",
        source: "delta_fifo.go doc, k/k#27984, PR #77636; RealFIFO PR #129568, PR #136008 (KEP-5647); SPEC §8 B23, §9.2 N5",
    },
    ClosedWatchIsCaughtUp {
        name: "closed_watch_is_caught_up",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "when a watch closes cleanly, etcd has no event for its range after the last RV it delivered",
        holds_when: "NOT guaranteed upstream: timeouts, slow-consumer terminations, cacher re-inits and shutdowns close streams whatever was sent; checked only where declared (hazard-watch-close)",
        source: "cache_watcher.go add, cacher.go terminateAllWatchers; SPEC §8 B12, §9.2 N7",
    },
    WatchFromRetainedRvServedAnywhere {
        name: "watch_from_retained_rv_served_anywhere",
        kind: Hazard,
        checked: WhereDeclared,
        promise: "a watch from an RV etcd still retains (not below its compact revision) is never answered 410 Gone",
        holds_when: "NOT guaranteed upstream: an apiserver whose cache was re-initialized after the RV, or whose window is short, answers 410; checked only where declared (hazard-watch-410-ha)",
        source: "watch_cache.go getAllEventsSinceLocked, cacher.go Watch; SPEC §2.5, §9.2 N8, §10 T5",
    },
    WorkqueueOneItemOneWorker {
        name: "workqueue_one_item_one_worker",
        kind: Always,
        checked: EveryRun,
        promise: "a controller's workqueue never hands one item to two workers at once",
        holds_when: "always (scenarios with a controller)",
        source: "workqueue doc.go (\"Stingy\"), queue.go Add/Get/Done; SPEC §7",
    },
    WorkqueueNoDuplicateInQueue {
        name: "workqueue_no_duplicate_in_queue",
        kind: Always,
        checked: EveryRun,
        promise: "a controller's workqueue never holds one item twice",
        holds_when: "always, while Get and Done are paired (an unpaired Done of a dirty item queues it twice)",
        source: "workqueue queue.go Add/Done; k/k#79934, PR #141079; SPEC §7, §8 B21",
    },
    WorkqueueProcessedAfterLastAdd {
        name: "workqueue_processed_after_last_add",
        kind: Liveness,
        checked: EveryRun,
        promise: "once settled, every item added to a controller's workqueue was handed to a worker after its last add, and nothing is queued, waiting or in processing",
        holds_when: "always (scenarios with a controller)",
        source: "workqueue doc.go (\"it will be processed again\"), queue.go Done; SPEC §7",
    },
    ListerObjectsUnchanged {
        name: "lister_objects_unchanged",
        kind: Always,
        checked: EveryRun,
        promise: "a reconcile never changes an object in its informer's cache: what the lister returned is read-only",
        holds_when: "always (scenarios with a controller)",
        source: "client-go cache_mutation_detector.go; thread_safe_store.go (\"treat returned items as read-only\")",
    },
    OwnedWithinAllowed {
        name: "owned_within_allowed",
        kind: Always,
        checked: EveryRun,
        promise: "at every committed revision, no owner incarnation has more owned objects than the largest count it ever asked for",
        holds_when: "the sample ReplicaSet-like controller, with its expectations (controller_utils.go ControllerExpectations)",
        source: "replica_set.go manageReplicas, controller_utils.go ControllerExpectations",
    },
    OwnedMatchDesired {
        name: "owned_match_desired",
        kind: Liveness,
        checked: EveryRun,
        promise: "once settled, every owner has exactly its desired count of owned objects and no owned object outlives its owner",
        holds_when: "the sample ReplicaSet-like controller (level-triggered: it reconciles every owner it is told of until it succeeds)",
        source: "replica_set.go syncReplicaSet; sample-controller processNextWorkItem (AddRateLimited on error)",
    },
    UserInvariant {
        name: "user_invariant",
        kind: Always,
        checked: EveryRun,
        promise: "an invariant the user registered over etcd's and the lister's state holds (its own name is in the message)",
        holds_when: "runs with user invariants (controller::testing)",
        source: "the user's code",
    },
    RunSettles {
        name: "run_settles",
        kind: Liveness,
        checked: EveryRun,
        promise: "after faults heal, every reflector is watching and every informer idle within settle_ms_max: no livelock, no hang",
        holds_when: "always",
        source: "reflector.go relistResourceVersion; k/k#91073, cg@a3f022a93; SPEC §8 B14, B15, §9.3 item 8",
    },
    WorkloadCanSettle {
        name: "workload_can_settle",
        kind: Liveness,
        checked: EveryRun,
        promise: "the scenario's own workload lets the run settle: a resync round is shorter than the resync period, and the handlers and the informer keep up with the writes well enough to drain within settle_ms_max",
        holds_when: "scenarios whose handlers and processing are faster than their writes and resyncs; reported instead of run_settles when a run is not settled and its workload explains why (src/check/settle.rs)",
        source: "shared_informer.go processorListener.pendingNotifications (unbounded), sharedIndexInformer resync; SPEC §9.3 item 8",
    },
    RelistAfterExpiredWatch {
        name: "relist_after_expired_watch",
        kind: Hazard,
        checked: EveryRun,
        promise: "after a 410 Gone answer to its watch, a client lists again (or streams a new initial state) before it watches from an RV again",
        holds_when: "client-go relists on any Expired; NOT kube-rs, whose watcher retries an HTTP 410 status on the watch request itself at the same RV (kube-rs watcher.rs InitListed, kube-rs#1042); checked for kube-rs clients",
        source: "reflector.go isExpiredError; kube-rs kube-runtime watcher.rs step_trampolined; kube-rs#1042",
    },
    NoTimeTravelOnRelist {
        name: "no_time_travel_on_relist",
        kind: Hazard,
        checked: EveryRun,
        promise: "a relist within one process never takes a key back to an older RV than the process held",
        holds_when: "client-go relists at lastSyncRV or \"\"; NOT kube-rs streaming lists, which always ask for RV \"0\" (NotOlderThan 0), so a lagging apiserver may serve an older state; checked for kube-rs clients",
        source: "reflector.go relistResourceVersion; kube-rs kube-runtime watcher.rs State::Empty (watch from \"0\")",
    },
    TransformAppliedOnce {
        name: "transform_applied_once",
        kind: Hazard,
        checked: EveryRun,
        promise: "an informer's TransformFunc runs once on each object state before it reaches the indexer, so it need not be idempotent",
        holds_when: "LIST relists; NOT watch-list: its temporary store transforms each initial object, and Replace transforms it again (k/k#131799); checked where clients set transform",
        source: "reflector.go watchList (temporaryStore with the FIFO's transformer, cg@71776a84b), store.go Add, delta_fifo.go queueActionInternalLocked, the_real_fifo.go addToItems_locked / addReplaceToItemsLocked",
    },
}

impl Invariant {
    /// The snake-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The class.
    pub fn kind(self) -> Kind {
        self.info().kind
    }

    /// The invariants a scenario may declare an expected hazard.
    pub fn hazards() -> impl Iterator<Item = Invariant> {
        Invariant::ALL
            .iter()
            .copied()
            .filter(|invariant| invariant.kind() == Kind::Hazard)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Invariant {
    type Err = String;

    fn from_str(name: &str) -> Result<Invariant, String> {
        Invariant::ALL
            .iter()
            .copied()
            .find(|invariant| invariant.name() == name)
            .ok_or_else(|| format!("unknown invariant {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One spelling: the variant, in snake case, is the name.
    #[test]
    fn each_invariant_has_one_spelling_and_a_source() {
        for invariant in Invariant::ALL {
            let variant = format!("{invariant:?}");
            let mut snake = String::new();
            for (index, c) in variant.chars().enumerate() {
                if c.is_ascii_uppercase() && index > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(snake, invariant.name());
            assert_eq!(invariant.name().parse(), Ok(*invariant));
            let info = invariant.info();
            assert!(!info.source.is_empty() && !info.promise.is_empty());
        }
        assert!(Invariant::ALL.len() >= 15);
    }

    #[test]
    fn only_hazards_are_checked_where_declared() {
        for invariant in Invariant::ALL {
            if invariant.info().checked == Checked::WhereDeclared {
                assert_eq!(invariant.kind(), Kind::Hazard, "{invariant}");
            }
        }
    }
}
