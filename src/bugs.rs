//! The planted-bug catalog (SPEC §8, DESIGN principle 8): known bugs, historical upstream ones
//! and classic mistakes, that can be switched on one at a time. The test suite must catch each.
//!
//! A bug is switched on through the scenario (`bug = "name"`, or `--bug NAME` on the command
//! line); the world hands [`Bugs`] to every model it builds, and each bug is exactly one
//! labelled check in one model: `if bugs.is(Bug::X) { /* planted: upstream ref */ ... }`.
//!
//! [`hunt`] sweeps a bug's scenario with the bug on, seed after seed, until an invariant fails
//! or the budget runs out, then shrinks the failing case (its fault plan and workload).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::shrink::{Case, Shrunk, shrink};
use crate::trace::Trace;
use crate::world::World;

/// One planted bug. The serde name (kebab-case) is the name `--bug` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// B11 (k/k#74022, PR #136583): lastSyncRV taken from the unordered initial ADDED events of a watch-list.
    ResumeFromAnyEventRv,
    /// B13: etcd answers a progress request ahead of pending events.
    EarlyProgress,
    /// B14 (k/k#91073, PR #92537): relist with the same RV after 504 TooLargeResourceVersion.
    RelistWithSameRvOnTooLarge,
    /// B15: relist with the same RV after 410 Expired.
    RelistWithSameRvOnExpired,
    /// Classic: re-watch from the list RV instead of the last event's RV.
    ResumeWatchFromListRv,
    /// Classic: a cleanly closed watch is taken as the end of the data.
    ClosedWatchIsEndOfData,
    /// B2 (k/k#83810, PR #83911): a listed key whose last queued delta is Deleted gets no Replaced delta.
    ReplaceSkipsKeyWithQueuedDelete,
    /// B4 (k/k#115658, PR #115620): a queue-only key missing from the relist gets no tombstone.
    ReplaceSkipsQueuedTombstone,
    /// B6 (k/k#31981, PR #32125): resync queues Sync(indexer object) behind a pending newer delta.
    ResyncBehindPendingDelta,
    /// B7 (k/k#27004, PR #27435): a Delete is dropped when the key is queued but not yet in the indexer.
    DeleteIgnoresQueuedAdd,
    /// B8 (k/k#109115, PR #109137): when an object's index values grow from [a] to [a, b], a is removed and not re-added.
    IndexerLosesValueOnGrowth,
    /// B9a (k/k#24004): a watch from RV N is served the event at N again (a duplicate).
    WatchCacheServesEventAtRv,
    /// B9b (k/k#49956, PR #49992): right after a relist a watch at listRV-1 is accepted and misses the event at listRV.
    WatchCacheAcceptsListRvMinusOne,
    /// B9c (PR #68065): right after a relist a watch at the list RV gets a needless 410.
    WatchCacheExpiresListRv,
    /// B9d (k/k#91415, PR #91417): after evictions, watches from below the window are accepted and miss the evicted events.
    WatchCacheAcceptsEvictedRv,
    /// C3 (classic): a relist of the cacher keeps the old history, so watches resume across the gap.
    WatchCacheKeepsHistoryOnRelist,
    /// C4 (classic (cf. delta_fifo.go dedupDeltas)): any two consecutive deltas of a key are merged, keeping the older.
    DedupAnyTwoDeltas,
    /// C5 (classic (SPEC §9.2 N2)): a known key missing from the relist gets no tombstone.
    ReplaceSkipsKnownTombstone,
    /// E1 (etcd#15271): a watch resuming after a stall re-sends the revision it already delivered.
    ResumeFromOlderRevision,
    /// E2 (etcd#17247): the last event of a batch is sent twice.
    DuplicateEvent,
    /// E3 (etcd#18089 (broadened)): a delete at compactRev+1 is never sent (broader than the 3.4 loss at compactRev the oracle tolerates).
    DropDeleteAboveCompaction,
    /// E4 (etcd#19179 (broadened)): a watch whose next revision is the compact revision gets nothing at it, puts included.
    SkipCompactRevision,
    /// E5 (etcd#20221, PR #20229): a watch on a future revision starts at the current one and gets an event below its start.
    FutureWatchGetsOldEvents,
    // Server-side bugs around cacher (re)initialization and paginated lists.
    /// B10 (PR #73845): events buffered in the dispatcher when a watch registers are sent again after its interval.
    CacherResendsBufferedEvents,
    /// B16 (k/k#66981, PR #67284): the pager follows the inconsistent continue token of an expired continuation.
    PagerFollowsInconsistentContinue,
    // Client-side bugs.
    /// B3 (k/k#86015, cg@08cc53159): a relist's changed object reaches handlers as a sync.
    RelistDeliveredAsSync,
    /// B5 (cg@a01b5a2a9, cg@8279635aa): a relist tombstone carries the indexer's object, not the newer queued one.
    TombstoneCarriesStaleObject,
    /// B20 (k/k#113763, PR #113985): a registration reports synced before its handler got its initial adds.
    HandlerSyncedBeforeInitialAdds,
    /// B24 (cg@52af3bdc0, cg@d853ccf18): a processing error requeues the popped deltas (RetryOnError).
    RequeueOnProcessError,
    /// B28 (k/k#90581, cg@73aa499de): Close can land between Pop's `closed` check and its wait.
    PopMissesClose,
}

/// What the catalog says about one bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BugInfo {
    /// The catalog id (SPEC §8 `B<n>`, or `C<n>` for classic mistakes, `E<n>` for etcd
    /// robustness-test finds).
    pub id: &'static str,
    /// The kebab-case name (the serde name).
    pub name: &'static str,
    /// Where upstream it was found or fixed (k/k#…, etcd#…, cg@…, or "classic").
    pub upstream: &'static str,
    /// The model it is planted in.
    pub component: &'static str,
    /// The library scenario that exposes it.
    pub scenario: &'static str,
    /// How many seeds a hunt may take to catch it.
    pub seeds: u64,
    /// What the planted check does, on one line.
    pub description: &'static str,
}

impl Bug {
    /// Every bug, in catalog order.
    pub const ALL: &'static [Bug] = &[
        Bug::ResumeFromAnyEventRv,
        Bug::EarlyProgress,
        Bug::RelistWithSameRvOnTooLarge,
        Bug::RelistWithSameRvOnExpired,
        Bug::ResumeWatchFromListRv,
        Bug::ClosedWatchIsEndOfData,
        Bug::ReplaceSkipsKeyWithQueuedDelete,
        Bug::ReplaceSkipsQueuedTombstone,
        Bug::ResyncBehindPendingDelta,
        Bug::DeleteIgnoresQueuedAdd,
        Bug::IndexerLosesValueOnGrowth,
        Bug::WatchCacheServesEventAtRv,
        Bug::WatchCacheAcceptsListRvMinusOne,
        Bug::WatchCacheExpiresListRv,
        Bug::WatchCacheAcceptsEvictedRv,
        Bug::WatchCacheKeepsHistoryOnRelist,
        Bug::DedupAnyTwoDeltas,
        Bug::ReplaceSkipsKnownTombstone,
        Bug::ResumeFromOlderRevision,
        Bug::DuplicateEvent,
        Bug::DropDeleteAboveCompaction,
        Bug::SkipCompactRevision,
        Bug::FutureWatchGetsOldEvents,
        Bug::CacherResendsBufferedEvents,
        Bug::PagerFollowsInconsistentContinue,
        Bug::RelistDeliveredAsSync,
        Bug::TombstoneCarriesStaleObject,
        Bug::HandlerSyncedBeforeInitialAdds,
        Bug::RequeueOnProcessError,
        Bug::PopMissesClose,
    ];

    /// The catalog entry.
    pub fn info(self) -> BugInfo {
        let entry = |id, name, upstream, component, scenario, seeds, description| BugInfo {
            id,
            name,
            upstream,
            component,
            scenario,
            seeds,
            description,
        };
        match self {
            Bug::ResumeFromAnyEventRv => entry(
                "B11",
                "resume-from-any-event-rv",
                "k/k#74022, PR #136583",
                "reflector",
                "informer-atomic-watch-list",
                100,
                "lastSyncRV follows the unordered initial ADDED events of a watch-list, before its bookmark",
            ),
            Bug::EarlyProgress => entry(
                "B13",
                "early-progress",
                "etcd#15220",
                "etcd watch",
                "etcd-watch",
                100,
                "a requested progress notification is sent before the watch's pending events",
            ),
            Bug::RelistWithSameRvOnTooLarge => entry(
                "B14",
                "relist-with-same-rv-on-too-large",
                "k/k#91073, PR #92537",
                "reflector",
                "informer-ha-quiet",
                150,
                "a 504 TooLargeResourceVersion list is retried with the same RV",
            ),
            Bug::RelistWithSameRvOnExpired => entry(
                "B15",
                "relist-with-same-rv-on-expired",
                "cg@a3f022a93",
                "reflector",
                "informer-no-cache",
                200,
                "a 410 Expired list is retried with the same (compacted) RV forever",
            ),
            Bug::ResumeWatchFromListRv => entry(
                "C1",
                "resume-watch-from-list-rv",
                "classic",
                "reflector",
                "informer",
                200,
                "after a clean close, re-watch from the last list's RV, not the last event's",
            ),
            Bug::ClosedWatchIsEndOfData => entry(
                "C2",
                "closed-watch-is-end-of-data",
                "classic (SPEC §9.2 N7)",
                "reflector",
                "informer",
                200,
                "a cleanly closed watch ends the reflector: it never watches again",
            ),
            Bug::ReplaceSkipsKeyWithQueuedDelete => entry(
                "B2",
                "replace-skips-key-with-queued-delete",
                "k/k#83810, PR #83911",
                "DeltaFIFO.Replace",
                "informer-fifo-backlog",
                200,
                "a listed key whose last queued delta is Deleted gets no Replaced delta",
            ),
            Bug::ReplaceSkipsQueuedTombstone => entry(
                "B4",
                "replace-skips-queued-tombstone",
                "k/k#115658, PR #115620",
                "DeltaFIFO.Replace",
                "informer-fifo-backlog",
                200,
                "a queue-only key missing from the relist gets no tombstone",
            ),
            Bug::ResyncBehindPendingDelta => entry(
                "B6",
                "resync-behind-pending-delta",
                "k/k#31981, PR #32125",
                "DeltaFIFO.Resync",
                "informer-slow-consumer",
                300,
                "resync queues Sync(indexer object) behind a pending newer delta",
            ),
            Bug::DeleteIgnoresQueuedAdd => entry(
                "B7",
                "delete-ignores-queued-add",
                "k/k#27004, PR #27435",
                "DeltaFIFO.Delete",
                "informer-slow-consumer",
                300,
                "a Delete is dropped when the key is queued but not yet in the indexer",
            ),
            Bug::IndexerLosesValueOnGrowth => entry(
                "B8",
                "indexer-loses-value-on-growth",
                "k/k#109115, PR #109137",
                "threadSafeMap.updateIndices",
                "informer-labels",
                100,
                "index values growing from [a] to [a, b] lose a",
            ),
            Bug::WatchCacheServesEventAtRv => entry(
                "B9a",
                "watch-cache-serves-event-at-rv",
                "k/k#24004",
                "watchCache.GetInterval",
                "informer",
                200,
                "a watch from RV N is served the event at N again (a duplicate)",
            ),
            Bug::WatchCacheAcceptsListRvMinusOne => entry(
                "B9b",
                "watch-cache-accepts-list-rv-minus-one",
                "k/k#49956, PR #49992",
                "watchCache.GetInterval",
                "informer-relist-edge",
                100,
                "right after a relist a watch at listRV-1 is accepted and misses the event at listRV",
            ),
            Bug::WatchCacheExpiresListRv => entry(
                "B9c",
                "watch-cache-expires-list-rv",
                "PR #68065",
                "watchCache.GetInterval",
                "informer-cache-churn",
                300,
                "right after a relist a watch at the list RV gets a needless 410",
            ),
            Bug::WatchCacheAcceptsEvictedRv => entry(
                "B9d",
                "watch-cache-accepts-evicted-rv",
                "k/k#91415, PR #91417",
                "watchCache.GetInterval",
                "informer-cache-churn",
                300,
                "after evictions, watches from below the window are accepted and miss the evicted events",
            ),
            Bug::WatchCacheKeepsHistoryOnRelist => entry(
                "C3",
                "watch-cache-keeps-history-on-relist",
                "classic",
                "watchCache.Replace",
                "informer-cache-churn",
                300,
                "a relist of the cacher keeps the old history, so watches resume across the gap",
            ),
            Bug::DedupAnyTwoDeltas => entry(
                "C4",
                "dedup-any-two-deltas",
                "classic (cf. delta_fifo.go dedupDeltas)",
                "DeltaFIFO.queueAction",
                "informer-slow-consumer",
                300,
                "any two consecutive deltas of a key are merged, keeping the older",
            ),
            Bug::ReplaceSkipsKnownTombstone => entry(
                "C5",
                "replace-skips-known-tombstone",
                "classic (SPEC §9.2 N2)",
                "DeltaFIFO.Replace",
                "informer",
                300,
                "a known key missing from the relist gets no tombstone",
            ),
            Bug::ResumeFromOlderRevision => entry(
                "E1",
                "resume-from-older-revision",
                "etcd#15271",
                "etcd watch",
                "etcd-watch",
                100,
                "a watch resuming after a stall re-sends the revision it already delivered",
            ),
            Bug::DuplicateEvent => entry(
                "E2",
                "duplicate-event",
                "etcd#17247",
                "etcd watch",
                "etcd-watch",
                100,
                "the last event of a batch is sent twice",
            ),
            Bug::DropDeleteAboveCompaction => entry(
                "E3",
                "drop-delete-above-compaction",
                "etcd#18089 (broadened)",
                "etcd watch",
                "etcd-watch",
                200,
                "a delete at compactRev+1 is never sent (broader than the 3.4 loss at compactRev the oracle tolerates)",
            ),
            Bug::SkipCompactRevision => entry(
                "E4",
                "skip-compact-revision",
                "etcd#19179 (broadened)",
                "etcd watch",
                "etcd-watch-auto-compaction",
                100,
                "a watch whose next revision is the compact revision gets nothing at it, puts included",
            ),
            Bug::FutureWatchGetsOldEvents => entry(
                "E5",
                "future-watch-gets-old-events",
                "etcd#20221, PR #20229",
                "etcd watch",
                "etcd-watch",
                100,
                "a watch on a future revision starts at the current one and gets an event below its start",
            ),
            Bug::CacherResendsBufferedEvents => entry(
                "B10",
                "cacher-resends-buffered-events",
                "PR #73845",
                "cacheWatcher.processInterval",
                "informer-blocked-dispatch",
                100,
                "events still buffered in the dispatcher when a watch registers are sent again after its interval",
            ),
            Bug::PagerFollowsInconsistentContinue => entry(
                "B16",
                "pager-follows-inconsistent-continue",
                "k/k#66981, PR #67284",
                "ListPager",
                "informer-paged-compaction",
                100,
                "an expired continuation's inconsistent token is followed: one list mixes two snapshots",
            ),
            Bug::RelistDeliveredAsSync => entry(
                "B3",
                "relist-delivered-as-sync",
                "k/k#86015, cg@08cc53159",
                "sharedIndexInformer.HandleDeltas",
                "informer-handler-without-resync",
                100,
                "an update from a relist (Replaced) is distributed as a sync, so handlers without resync miss it",
            ),
            Bug::TombstoneCarriesStaleObject => entry(
                "B5",
                "tombstone-carries-stale-object",
                "cg@a01b5a2a9, cg@8279635aa",
                "DeltaFIFO.Replace",
                "informer-fifo-backlog",
                200,
                "a queued key missing from the relist gets a tombstone with the indexer's object, not the newest queued one",
            ),
            Bug::HandlerSyncedBeforeInitialAdds => entry(
                "B20",
                "handler-synced-before-initial-adds",
                "k/k#113763, PR #113985",
                "processorListener HasSynced",
                "informer-real-fifo",
                50,
                "a registration reports synced as soon as the informer has, with initial adds still undelivered",
            ),
            Bug::RequeueOnProcessError => entry(
                "B24",
                "requeue-on-process-error",
                "cg@52af3bdc0, cg@d853ccf18, cg@8269e4141",
                "controller.processLoop (RetryOnError)",
                "informer-fifo-backlog",
                200,
                "a processing error re-adds the popped deltas (AddIfNotPresent), so they are applied again over newer state",
            ),
            Bug::PopMissesClose => entry(
                "B28",
                "pop-misses-close",
                "k/k#90581, cg@73aa499de",
                "DeltaFIFO.Pop/Close",
                "informer-restarts",
                20,
                "an empty-queue Pop checks `closed` and waits in two steps; a Close between them wakes nobody, so processLoop never returns",
            ),
        }
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The bug named `name`, or a one-line error listing the allowed names.
    pub fn from_name(name: &str) -> Result<Bug, String> {
        Bug::ALL
            .iter()
            .copied()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| {
                let allowed: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
                format!("unknown bug {name:?} (allowed: {})", allowed.join(", "))
            })
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The bugs switched on for one run: at most one. Models keep a copy in their config and ask
/// [`Bugs::is`] at the single place a bug is planted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// How long a hunt may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The first seed (a hunt uses `first_seed..first_seed + seeds`).
    pub first_seed: u64,
    /// At most this many seeds.
    pub seeds: u64,
    /// Stop starting new seeds after this much wall time.
    pub wall: Duration,
    /// Shrink a caught counterexample with at most this many extra runs (0: do not shrink).
    pub shrink_runs: u64,
}

impl Budget {
    /// The catalog budget of `bug`: its seed count, 20 s, up to 60 shrink runs.
    pub fn of(bug: Bug) -> Budget {
        Budget {
            first_seed: 0,
            seeds: bug.info().seeds,
            wall: Duration::from_secs(20),
            shrink_runs: 60,
        }
    }
}

/// The failing seed of a hunt.
#[derive(Clone, Debug)]
pub struct Caught {
    /// The seed.
    pub seed: u64,
    /// The invariant it broke.
    pub invariant: &'static str,
    /// The violation, on one line.
    pub message: String,
    /// Steps of the failing run.
    pub steps: u64,
    /// The shrunk counterexample, if shrinking was asked for.
    pub shrunk: Option<Shrunk>,
}

/// What a hunt found.
#[derive(Clone, Debug)]
pub struct HuntResult {
    /// The scenario swept.
    pub scenario: String,
    /// The bug switched on, if any.
    pub bug: Option<Bug>,
    /// The first failing seed, if any.
    pub caught: Option<Caught>,
    /// Seeds run, the failing one included.
    pub seeds: u64,
    /// Wall time, shrinking included.
    pub wall: Duration,
}

/// Sweeps `bug`'s scenario with `bug` on until an invariant fails or the budget runs out.
pub fn hunt(bug: Bug, budget: Budget) -> HuntResult {
    hunt_in(scenario_of(bug, Some(bug)), budget)
}

/// `bug`'s scenario with `switched_on` as its bug (`None` for a control run).
pub fn scenario_of(bug: Bug, switched_on: Option<Bug>) -> Scenario {
    let mut scenario =
        Scenario::load(bug.info().scenario).expect("catalog scenarios are in the library");
    scenario.bug = switched_on;
    scenario
}

/// Sweeps `scenario` (with whatever bug it has on) until an invariant fails or the budget runs
/// out; shrinks the failing case within `budget.shrink_runs`.
pub fn hunt_in(scenario: Scenario, budget: Budget) -> HuntResult {
    let started = Instant::now();
    let mut seeds = 0;
    let mut caught = None;
    for seed in budget.first_seed..budget.first_seed.saturating_add(budget.seeds) {
        if started.elapsed() >= budget.wall {
            break;
        }
        seeds += 1;
        let outcome = World::new(scenario.clone(), seed, Trace::default()).run();
        if let Some((_, violation)) = outcome.violation {
            let shrunk = (budget.shrink_runs > 0).then(|| {
                let case = Case::of_seed(scenario.clone(), seed);
                shrink(case, violation.invariant, budget.shrink_runs)
            });
            caught = Some(Caught {
                seed,
                invariant: violation.invariant,
                message: violation.message,
                steps: outcome.steps,
                shrunk,
            });
            break;
        }
    }
    HuntResult {
        scenario: scenario.name.clone(),
        bug: scenario.bug,
        caught,
        seeds,
        wall: started.elapsed(),
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
    fn every_catalog_scenario_is_in_the_library() {
        for bug in Bug::ALL {
            assert_eq!(scenario_of(*bug, Some(*bug)).bug, Some(*bug));
        }
    }

    #[test]
    fn unknown_names_list_the_catalog_on_one_line() {
        let error = Bug::from_name("nope").unwrap_err();
        assert!(error.contains("early-progress"), "{error}");
        assert!(!error.contains('\n'));
    }
}
