//! The invariant catalog: every named check, what it promises, when it holds, and where
//! upstream makes (or does not make) the promise. `informer-sim invariants` prints it.

use super::{api_oracle, client, etcd_watch, hazards};
use crate::world;

/// One invariant of the spec.
#[derive(Clone, Copy, Debug)]
pub struct InvariantInfo {
    /// Its name, as violations report it.
    pub name: &'static str,
    /// What it promises.
    pub promise: &'static str,
    /// The scenario settings under which it holds (or that it is a hazard).
    pub holds_when: &'static str,
    /// The upstream source of the promise.
    pub source: &'static str,
}

const ALWAYS: &str = "always";
const DELTA_FIFO_HAZARD: &str =
    "RealFIFO and atomic RealFIFO; an expected hazard with DeltaFIFO (SPEC §9.2 N6)";

/// Every invariant, grouped by the part of the pipeline it watches.
pub const CATALOG: &[InvariantInfo] = &[
    InvariantInfo {
        name: world::ETCD_MATCHES_REFERENCE,
        promise: "the fake etcd answers every request exactly as a naive full-copy-per-revision model does",
        holds_when: ALWAYS,
        source: "etcd API doc (KV, Txn, revisions); SPEC §1.1-§1.3",
    },
    InvariantInfo {
        name: etcd_watch::WATCH_IS_HISTORY_SUFFIX,
        promise: "an etcd watch stream is exactly the history after its start revision for its range: ordered, gap-free, whole revisions",
        holds_when: "always; a delete at exactly the compact revision may be missing, as etcd 3.4 does",
        source: "etcd api.md \"Watch streams\" (ordered, reliable, atomic); SPEC §1.4",
    },
    InvariantInfo {
        name: etcd_watch::PROGRESS_AFTER_EVENTS,
        promise: "a progress notification at R comes only after every event at or below R was sent",
        holds_when: ALWAYS,
        source: "etcd#15220, etcd#17507; SPEC §1.4, §8 B13",
    },
    InvariantInfo {
        name: etcd_watch::CANCEL_ONLY_WHEN_COMPACTED,
        promise: "a watch is canceled for compaction only when its next revision is below the compact revision",
        holds_when: ALWAYS,
        source: "etcd watcher_group.go chooseAll; SPEC §1.4",
    },
    InvariantInfo {
        name: world::WATCHERS_CAUGHT_UP,
        promise: "after healing, every raw etcd watcher has an open watch that delivered all of its range",
        holds_when: ALWAYS,
        source: "etcd api.md \"Watch streams\" (reliable)",
    },
    InvariantInfo {
        name: api_oracle::WATCH_STREAM_IS_HISTORY_SUFFIX,
        promise: "an apiserver watch stream is etcd's history after its start RV (selector transitions included), synthetic ADDED only at its start, or a 410 before any event",
        holds_when: ALWAYS,
        source: "api-concepts \"Semantics for watch\"; k/k#24004, #49956, #91415, #73845, #116122; SPEC §2.5, §8 B9, B10",
    },
    InvariantInfo {
        name: api_oracle::BOOKMARK_IS_PROGRESS,
        promise: "a bookmark's RV is at least every earlier event's and below every later one's",
        holds_when: "always, unless etcd's progress contract is broken (etcd#15220)",
        source: "KEP-956; cacher.go dispatchEvents; SPEC §2.7, §8 B13",
    },
    InvariantInfo {
        name: api_oracle::LIST_IS_STATE_AT_RV,
        promise: "every list page holds exactly etcd's state at its resourceVersion",
        holds_when: ALWAYS,
        source: "etcd3/store.go GetList; k/k#66981; SPEC §2.1, §8 B16",
    },
    InvariantInfo {
        name: api_oracle::LIST_IS_FRESH_ENOUGH,
        promise: "RV \"\" lists are at least etcd's revision at arrival, RV=N not-older-than lists at least N, exact lists exactly N; RV \"0\" promises nothing",
        holds_when: ALWAYS,
        source: "api-concepts \"Semantics for get and list\"; KEP-2340, KEP-2523; SPEC §2.4, §9.1 P5",
    },
    InvariantInfo {
        name: client::REFLECTOR_SAFE_POINT,
        promise: "whenever the reflector sets its last synced RV to R, what it told its store is etcd's state at R",
        holds_when: ALWAYS,
        source: "reflector.go watchHandler (k/k#136583); SPEC §8 B11, §9.3 item 4",
    },
    InvariantInfo {
        name: client::INDEXER_RV_MONOTONIC,
        promise: "per key, the RV the indexer holds never decreases within one process",
        holds_when: ALWAYS,
        source: "shared_informer.go contract (subsequence of states); k/k#31981, cg@52af3bdc0; SPEC §9.1 P2, §8 B6, B24",
    },
    InvariantInfo {
        name: client::INDEXER_STATE_EXISTED,
        promise: "every object the indexer holds is a state etcd really had",
        holds_when: ALWAYS,
        source: "shared_informer.go contract; SPEC §9.1 P2",
    },
    InvariantInfo {
        name: client::NO_TIME_TRAVEL_ACROSS_RESTARTS,
        promise: "across restarts of one client, no key goes back to an older RV",
        holds_when: "NOT guaranteed upstream: an expected hazard with RV \"0\" initial lists from a lagging cache (stale-relist-ha); holds with consistent lists and watch-list",
        source: "k/k#59848, #67998, #83520, KEP-3157; SPEC §8 B1, §9.2 N1",
    },
    InvariantInfo {
        name: client::NOTIFICATION_FOLLOWS_CACHE,
        promise: "a handler is notified of a state only once the indexer holds it or a newer one",
        holds_when: ALWAYS,
        source: "shared_informer.go contract; SPEC §9.1 P3",
    },
    InvariantInfo {
        name: client::INDEX_MATCHES_ITEMS,
        promise: "every index holds exactly the keys its function gives for the items, with no empty sets",
        holds_when: ALWAYS,
        source: "thread_safe_store.go updateIndices; k/k#109115; SPEC §6, §8 B8",
    },
    InvariantInfo {
        name: client::FIFO_INTERNALS,
        promise: "the FIFO's bookkeeping holds: a key is queued iff it has deltas, no empty deltas, tombstones carry their own key",
        holds_when: ALWAYS,
        source: "delta_fifo.go, the_real_fifo.go; SPEC §4.1, §8 B5",
    },
    InvariantInfo {
        name: client::PENDING_STATE_MATCHES_REFLECTOR,
        promise: "after every store call and every pop, the indexer with the FIFO's queued deltas applied equals the state the reflector's store calls describe",
        holds_when: ALWAYS,
        source: "delta_fifo.go Replace and Delete (k/k#83911, #115620, #27435), the_real_fifo.go; SPEC §4.2, §8 B2, B4, B7",
    },
    InvariantInfo {
        name: client::TOMBSTONE_CARRIES_NEWEST_STATE,
        promise: "a queued DeletedFinalStateUnknown carries the newest state the client knew for its key (the previous queued state, else the indexer's), never an older one",
        holds_when: ALWAYS,
        source: "delta_fifo.go Replace (cg@a01b5a2a9, cg@8279635aa); SPEC §4.3, §8 B5",
    },
    InvariantInfo {
        name: client::SYNCED_IMPLIES_INITIAL_LIST_APPLIED,
        promise: "when the informer reports synced, every item of its initial list has been applied to the indexer",
        holds_when: DELTA_FIFO_HAZARD,
        source: "delta_fifo.go Pop vs the_real_fifo.go Pop; SPEC §9.2 N6, §8 B20",
    },
    InvariantInfo {
        name: client::HANDLER_SYNCED_AFTER_INITIAL_LIST,
        promise: "when a handler registration first reports synced, the handler was notified of every object of its initial list",
        holds_when: DELTA_FIFO_HAZARD,
        source: "k/k#113763, PR #113985; SPEC §8 B20",
    },
    InvariantInfo {
        name: client::CLOSED_FIFO_WAKES_POP,
        promise: "when a client process stops, Close wakes the Pop waiting on the empty DeltaFIFO and processLoop returns ErrFIFOClosed within one step",
        holds_when: "always; checked at every client restart (RealFIFO's Close always held the FIFO lock)",
        source: "controller.go Run (defer Queue.Close), delta_fifo.go Pop/Close (k/k#90581, cg@73aa499de); SPEC §8 B28",
    },
    InvariantInfo {
        name: client::INDEXER_CONVERGES,
        promise: "after faults heal and writes stop, the indexer equals etcd's state (keys, RVs, values)",
        holds_when: ALWAYS,
        source: "shared_informer.go contract (eventual consistency); SPEC §9.1 P1, §8 B2, B4, B7",
    },
    InvariantInfo {
        name: client::HANDLER_MIRROR_CONVERGES,
        promise: "after settling, every handler's mirror (rebuilt from OnAdd/OnUpdate/OnDelete) equals the indexer",
        holds_when: "always without handler panics",
        source: "k/k#86015, cg@08cc53159; SPEC §8 B3, §9.1 P1",
    },
    InvariantInfo {
        name: hazards::DELETE_WITH_FINAL_STATE,
        promise: "every delete reaches handlers as OnDelete with the object's final state",
        holds_when: "NOT guaranteed upstream: deletes noticed by a relist arrive as DeletedFinalStateUnknown with a stale or nil object, a delete+recreate as OnUpdate across UIDs; checked only where declared (hazard-lost-deletes)",
        source: "delta_fifo.go Replace; shared_informer.go handler doc; controller.go DeletedObject; SPEC §9.2 N2, §10 T3",
    },
    InvariantInfo {
        name: hazards::RESYNC_REPAIRS_DIVERGENCE,
        promise: "after a resync, the resynced objects equal etcd's current state",
        holds_when: "NOT guaranteed upstream: resync replays the indexer's own objects, stale while the watch lags or stalls; checked only where declared (hazard-resync)",
        source: "delta_fifo.go Resync/syncKeyLocked, the_real_fifo.go Resync; SPEC §9.2 N3",
    },
    InvariantInfo {
        name: hazards::SYNCED_MEANS_UP_TO_DATE,
        promise: "when the informer first reports synced, its indexer equals etcd's current state",
        holds_when: "NOT guaranteed upstream: synced means the first list (RV \"0\" may be stale) was popped; checked only where declared (hazard-stale-sync)",
        source: "shared_informer.go HasSynced doc; delta_fifo.go / the_real_fifo.go HasSynced; SPEC §9.2 N4",
    },
    InvariantInfo {
        name: hazards::LISTER_IS_SNAPSHOT,
        promise: "after every processed item, the indexer equals etcd's state at one single RV",
        holds_when: "NOT guaranteed upstream with DeltaFIFO (per-key compression reorders keys) or plain RealFIFO (relists apply key by key): a hazard where declared (hazard-lister-snapshot); holds with atomic RealFIFO, checked in every atomic run",
        source: "delta_fifo.go doc, k/k#27984, PR #77636; RealFIFO PR #129568, PR #136008 (KEP-5647); SPEC §8 B23, §9.2 N5",
    },
    InvariantInfo {
        name: hazards::CLOSED_WATCH_IS_CAUGHT_UP,
        promise: "when a watch closes cleanly, etcd has no event for its range after the last RV it delivered",
        holds_when: "NOT guaranteed upstream: timeouts, slow-consumer terminations, cacher re-inits and shutdowns close streams whatever was sent; checked only where declared (hazard-watch-close)",
        source: "cache_watcher.go add, cacher.go terminateAllWatchers; SPEC §8 B12, §9.2 N7",
    },
    InvariantInfo {
        name: hazards::WATCH_SERVED_BY_ANY_APISERVER,
        promise: "a watch from an RV etcd still retains (not below its compact revision) is never answered 410 Gone",
        holds_when: "NOT guaranteed upstream: an apiserver whose cache was re-initialized after the RV, or whose window is short, answers 410; checked only where declared (hazard-watch-410-ha)",
        source: "watch_cache.go getAllEventsSinceLocked, cacher.go Watch; SPEC §2.5, §9.2 N8, §10 T5",
    },
    InvariantInfo {
        name: world::SETTLES,
        promise: "after faults heal, every reflector is watching and every informer idle within settle_ms_max: no livelock, no hang",
        holds_when: ALWAYS,
        source: "reflector.go relistResourceVersion; k/k#91073, cg@a3f022a93; SPEC §8 B14, B15, §9.3 item 8",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_each_invariant_once_with_a_source() {
        let names: std::collections::BTreeSet<&str> =
            CATALOG.iter().map(|info| info.name).collect();
        assert_eq!(names.len(), CATALOG.len());
        assert!(CATALOG.len() >= 15);
        assert!(
            CATALOG
                .iter()
                .all(|info| !info.source.is_empty() && !info.promise.is_empty())
        );
    }
}
