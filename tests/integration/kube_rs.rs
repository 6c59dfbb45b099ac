//! kube-rs's own watcher, reflector store and Controller inside the simulation (the `kube`
//! feature): its library scenarios sweep clean or show their declared finding, and a seed
//! replays to the same trace hash.

use informer_sim::check::Invariant;
use informer_sim::explore::run_seed;
use informer_sim::scenario::Scenario;

use crate::util::{seeds, sweep_row};

/// kube-rs runs are short; a tenth of the default sweep keeps a debug `cargo test` quick.
const SEEDS: u64 = 40;

#[test]
fn kube_rs_stores_converge_under_faults_and_reach_their_probes() {
    let row = sweep_row("kube-rs", seeds(SEEDS));
    assert!(row.hazards.is_empty(), "{:?}", row.hazards);
    assert!(row.stats.relists > 0, "no relist in {SEEDS} seeds");
    let streaming = sweep_row("kube-rs-streaming", seeds(SEEDS));
    assert!(
        streaming.stats.relists > 0,
        "no streaming relist in {SEEDS} seeds"
    );
}

#[test]
fn two_runs_of_one_kube_rs_seed_give_the_same_trace_hash() {
    let scenario = Scenario::load("kube-rs").expect("library scenario");
    // Seeds 0 and 1 each break a kube-rs client's connection at least once.
    for seed in [0, 1] {
        let first = run_seed(&scenario, seed);
        let second = run_seed(&scenario, seed);
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
        assert_eq!(first.steps, second.steps);
        assert!(first.stats.commits > 0 && first.stats.faults > 0);
    }
    let other = run_seed(&scenario, 2);
    assert_ne!(other.trace_hash, run_seed(&scenario, 0).trace_hash);
}

/// Finding F1 (kube-rs#1042): an HTTP 410 status on the watch request is retried at the same
/// RV; the same cluster with 410s as ERROR events relists.
#[test]
fn an_http_410_watch_answer_is_retried_at_the_same_rv_without_a_relist() {
    let row = sweep_row("kube-rs-http-410", seeds(SEEDS));
    assert!(
        row.hazards
            .contains_key(&Invariant::RelistAfterExpiredWatch),
        "{:?}",
        row.hazards
    );
}

/// kube-rs's `Controller` with the sample ReplicaSet-like reconciler: no owner ever has more
/// owned objects than it asked for, every count matches once settled (both checked in every
/// run), and the sweep meets write conflicts, failed reconciles and relists.
#[test]
fn the_kube_rs_controller_keeps_the_replicaset_invariants_under_faults() {
    let row = sweep_row("kube-rs-controller", seeds(SEEDS));
    assert!(row.hazards.is_empty(), "{:?}", row.hazards);
    assert!(row.stats.commits > 0 && row.stats.relists > 0);
}

#[test]
fn two_runs_of_one_kube_rs_controller_seed_give_the_same_trace_hash() {
    let scenario = Scenario::load("kube-rs-controller").expect("library scenario");
    for seed in [0, 1] {
        let first = run_seed(&scenario, seed);
        let second = run_seed(&scenario, seed);
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
        assert_eq!(first.steps, second.steps);
        assert!(first.stats.probes.controller_conflicts > 0, "seed {seed}");
    }
    assert_ne!(
        run_seed(&scenario, 2).trace_hash,
        run_seed(&scenario, 0).trace_hash
    );
}

/// Finding F4: with kube-rs's own triggers alone, a relist's reconcile reads the store before
/// the relist is swapped in, and the owner keeps a wrong count; reconciling every object once
/// the relist is in (`InitDone`) repairs it.
#[test]
fn a_relist_reconciled_before_its_store_is_swapped_in_leaves_a_wrong_count() {
    let stock = Scenario::load("sim/findings/kube-rs-controller-f4.toml").expect("F4 scenario");
    let (_, violation) = run_seed(&stock, 28).violation.expect("seed 28 shows F4");
    assert_eq!(violation.invariant, Invariant::OwnedMatchDesired);
    let library = Scenario::load("kube-rs-controller").expect("library scenario");
    assert_eq!(run_seed(&library, 28).violation, None);
}
