//! The SPEC §9.2 assumptions upstream does NOT guarantee (N2, N3, N4, N5, N7, N8): each has a
//! scenario that declares it and a pinned seed where it breaks. The run reports it as an
//! expected upstream hazard whose message names the key and RVs, and is otherwise clean.

use informer_sim::check::Invariant;
use informer_sim::explore::run_seed as run;
use informer_sim::scenario::{FifoKind, Scenario};

/// Runs `seed` of library scenario `name`: no failure, and `invariant` reported as a hazard
/// whose message holds every one of `parts`.
fn shows_hazard(name: &str, seed: u64, invariant: Invariant, parts: &[&str]) {
    let outcome = run(&Scenario::load(name).expect("library scenario"), seed);
    assert!(
        outcome.violation.is_none(),
        "{name} seed {seed} failed: {:?}",
        outcome.violation
    );
    let (_, hazard) = outcome
        .hazards
        .iter()
        .find(|(_, hazard)| hazard.invariant == invariant)
        .unwrap_or_else(|| panic!("{name} seed {seed} did not show {invariant}"));
    for part in parts {
        assert!(
            hazard.message.contains(part),
            "{invariant}: {:?} lacks {part:?}",
            hazard.message
        );
    }
}

#[test]
fn n2_a_delete_noticed_by_a_relist_arrives_as_a_stale_tombstone() {
    shows_hazard(
        "hazard-lost-deletes",
        2,
        Invariant::EveryDeleteIsOnDeleteWithFinalState,
        &[
            "OnDelete(ns-0/obj-0) got DeletedFinalStateUnknown",
            "stale RV 57",
            "deleted it at RV 95",
        ],
    );
}

#[test]
fn n2_a_delete_and_recreate_arrives_as_an_update_across_uids() {
    shows_hazard(
        "hazard-lost-deletes",
        16,
        Invariant::EveryDeleteIsOnDeleteWithFinalState,
        &["OnUpdate(ns-0/obj-0) from uid 18 (RV 19) to uid 166 (RV 187)"],
    );
}

#[test]
fn n3_a_resync_replays_a_stale_object_while_the_cache_lags() {
    shows_hazard(
        "hazard-resync",
        0,
        Invariant::ResyncRepairsDivergence,
        &["etcd RV 7", "ns-1/obj-11@2", "etcd ns-1/obj-11@6"],
    );
}

#[test]
fn n4_synced_after_a_stale_rv_0_list_is_behind_etcd() {
    shows_hazard(
        "hazard-stale-sync",
        0,
        Invariant::SyncedMeansCacheUpToDate,
        &["etcd is at RV 166", "ns-0/obj-0@94", "etcd ns-0/obj-0@118"],
    );
}

#[test]
fn n5_a_delta_fifo_indexer_is_no_snapshot() {
    shows_hazard(
        "hazard-lister-snapshot",
        0,
        Invariant::ListerIsASnapshotAtOneRv,
        &[
            "newest RV 18",
            "ns-0/obj-10: missing, etcd has ns-0/obj-10@15",
        ],
    );
}

/// The same cluster with atomic RealFIFO: its indexer is a snapshot after every item, as
/// atomic RealFIFO promises (there the check runs as an invariant in every scenario).
#[test]
fn n5_an_atomic_real_fifo_indexer_is_always_a_snapshot() {
    let mut scenario = Scenario::load("hazard-lister-snapshot").expect("library scenario");
    scenario.clients.fifo = Some(FifoKind::RealAtomic);
    for seed in 0..10 {
        let outcome = run(&scenario, seed);
        assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
        assert!(
            outcome.hazards.is_empty(),
            "seed {seed}: {:?}",
            outcome.hazards
        );
    }
}

#[test]
fn n7_a_cleanly_closed_watch_is_behind_etcd() {
    shows_hazard(
        "hazard-watch-close",
        0,
        Invariant::ClosedWatchIsCaughtUp,
        &["closed cleanly after RV 170", "ns-1/obj-3 at RV 171"],
    );
}

#[test]
fn n8_an_apiserver_answers_410_for_an_rv_etcd_still_serves() {
    shows_hazard(
        "hazard-watch-410-ha",
        0,
        Invariant::WatchFromRetainedRvServedAnywhere,
        &[
            "apiserver-2 answered 410 Gone to a watch from RV 38",
            "compacted at 0",
        ],
    );
}

/// An assumption check runs only where a scenario declares it: undeclared, the same seed is
/// clean, not a failure.
#[test]
fn undeclared_assumptions_are_not_checked() {
    let mut scenario = Scenario::load("hazard-resync").expect("library scenario");
    scenario.expected_hazards.clear();
    let outcome = run(&scenario, 0);
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
    assert!(outcome.hazards.is_empty());
}
