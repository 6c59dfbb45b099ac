//! Seed sweeps over every library scenario: each complete schedule must keep every invariant
//! (or hit only the hazards its scenario declares), and must replay to the same trace hash.
//!
//! `INFORMER_SIM_CASES` sets the seeds per scenario (default 250: over 2,000 complete
//! schedules in all); `INFORMER_SIM_SEED` runs that one seed instead.

use informer_sim::check::client::{
    NO_TIME_TRAVEL_ACROSS_RESTARTS, SYNCED_IMPLIES_INITIAL_LIST_APPLIED,
};
use informer_sim::scenario::{LIBRARY, Scenario};
use informer_sim::trace::Trace;
use informer_sim::world::probes::Probe;
use informer_sim::world::{RunOutcome, RunStats, World};

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("INFORMER_SIM_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
    {
        return vec![seed];
    }
    let cases = std::env::var("INFORMER_SIM_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(250);
    (0..cases).collect()
}

fn run(scenario: &Scenario, seed: u64) -> RunOutcome {
    World::new(scenario.clone(), seed, Trace::default()).run()
}

/// Sweeps `name`; returns how many seeds hit each declared hazard.
fn sweep(name: &str) -> std::collections::BTreeMap<&'static str, usize> {
    sweep_seeds(name, seeds())
}

/// Sweeps `name` over `seeds`; returns how many seeds hit each declared hazard. A sweep of
/// more than one seed must also hit every coverage probe the scenario requires.
fn sweep_seeds(name: &str, seeds: Vec<u64>) -> std::collections::BTreeMap<&'static str, usize> {
    let scenario = Scenario::load(name).expect("library scenario");
    let mut hazards = std::collections::BTreeMap::new();
    let mut stats = RunStats::default();
    for &seed in &seeds {
        let outcome = run(&scenario, seed);
        stats.add(&outcome.stats);
        if let Some((step, violation)) = &outcome.violation {
            panic!(
                "{violation} at step {step}; replay: informer-sim run --seed {seed} --scenario {name}"
            );
        }
        for (_, hazard) in &outcome.hazards {
            *hazards.entry(hazard.invariant).or_default() += 1;
        }
        if seed < 10 {
            assert_eq!(
                run(&scenario, seed).trace_hash,
                outcome.trace_hash,
                "seed {seed} of {name} is not deterministic"
            );
        }
    }
    if seeds.len() > 1 {
        let misses = Probe::misses(&scenario.probes, &stats);
        assert!(
            misses.is_empty(),
            "{name}: {} seeds never reached the probes {misses:?}",
            seeds.len()
        );
    }
    hazards
}

#[test]
fn informer_with_real_fifo_converges_and_never_syncs_early() {
    assert!(
        sweep("informer-real-fifo").is_empty(),
        "RealFIFO declares no hazard"
    );
}

/// SPEC §9.2 N6, answered by the simulator: DeltaFIFO reports HasSynced while its last initial
/// item is still being processed (RealFIFO does not: see the test above).
#[test]
fn delta_fifo_reports_synced_before_its_last_initial_item_is_applied() {
    let hazards = sweep("informer");
    assert!(
        hazards.contains_key(SYNCED_IMPLIES_INITIAL_LIST_APPLIED) || seeds().len() < 20,
        "N6 was never reproduced"
    );
}

#[test]
fn informer_with_atomic_fifo_and_watch_list_converges() {
    sweep("informer-atomic-watch-list");
}

#[test]
fn informer_without_watch_cache_converges() {
    sweep("informer-no-cache");
}

#[test]
fn informers_behind_three_lagging_apiservers_converge() {
    sweep("informer-ha");
}

#[test]
fn informer_with_a_churning_small_cache_converges() {
    sweep("informer-cache-churn");
}

#[test]
fn informer_whose_objects_gain_and_lose_labels_keeps_its_indexes() {
    sweep("informer-labels");
}

#[test]
fn informer_with_a_slow_consumer_converges() {
    sweep("informer-slow-consumer");
}

/// The planted-bug hunt scenarios of the client side (B2, B3, B4, B5, B24) are heavy (a deep
/// FIFO backlog checked at every step), so they get a few dozen seeds.
#[test]
fn informer_hunt_scenarios_hold_without_their_bugs() {
    for name in ["informer-fifo-backlog", "informer-handler-without-resync"] {
        sweep_seeds(name, seeds().into_iter().take(20).collect());
    }
}

/// The planted-bug hunt scenarios of the server side and the reflector (B9b, B10, B14, B16,
/// E4): each holds without its bug on a fifth of the seeds, reaching its probes.
#[test]
fn server_hunt_scenarios_hold_without_their_bugs() {
    let seeds = seeds();
    let fifth = seeds.len().div_ceil(5);
    for name in [
        "etcd-watch-auto-compaction",
        "informer-relist-edge",
        "informer-ha-quiet",
        "informer-blocked-dispatch",
        "informer-paged-compaction",
    ] {
        sweep_seeds(name, seeds[..fifth].to_vec());
    }
}

/// SPEC §8 B28: every client restart closes the old FIFO, and its waiting Pop must return.
#[test]
fn restarted_informers_wake_their_waiting_pop() {
    sweep_seeds("informer-restarts", seeds().into_iter().take(20).collect());
}

#[test]
fn apiserver_oracle_holds_under_cache_faults() {
    sweep("apiserver-oracle");
}

#[test]
fn stale_relist_in_ha_travels_back_in_time_as_upstream_warns() {
    let hazards = sweep("stale-relist-ha");
    assert!(
        hazards.contains_key(NO_TIME_TRAVEL_ACROSS_RESTARTS) || seeds().len() < 10,
        "the B1 hazard was never reproduced"
    );
}

#[test]
fn consistent_first_lists_never_travel_back_in_time() {
    for name in ["stale-relist-ha-consistent", "stale-relist-ha-watch-list"] {
        assert!(
            !sweep(name).contains_key(NO_TIME_TRAVEL_ACROSS_RESTARTS),
            "{name} travelled back in time"
        );
    }
}

/// The SPEC §9.2 hazard scenarios (their pinned seeds are in tests/hazards.rs).
const HAZARD_SCENARIOS: [&str; 6] = [
    "hazard-lost-deletes",
    "hazard-resync",
    "hazard-stale-sync",
    "hazard-lister-snapshot",
    "hazard-watch-close",
    "hazard-watch-410-ha",
];

/// Each hazard scenario fails nothing and shows its first declared hazard; a fifth of the
/// seeds, since each run is short and the hazards common.
#[test]
fn hazard_scenarios_show_their_hazard_and_fail_nothing() {
    let seeds = seeds();
    let fifth = seeds.len().div_ceil(5);
    for name in HAZARD_SCENARIOS {
        let hazards = sweep_seeds(name, seeds[..fifth].to_vec());
        let declared = &Scenario::load(name).expect("library").expected_hazards[0];
        assert!(
            hazards.contains_key(declared.as_str()) || fifth < 10,
            "{name} never showed {declared}"
        );
    }
}

#[test]
fn every_library_scenario_is_swept_here_or_in_determinism() {
    let covered = [
        "etcd-watch",
        "etcd-watch-auto-compaction",
        "informer",
        "informer-real-fifo",
        "informer-atomic-watch-list",
        "informer-no-cache",
        "informer-paged-compaction",
        "informer-ha",
        "informer-ha-quiet",
        "apiserver-oracle",
        "informer-cache-churn",
        "informer-blocked-dispatch",
        "informer-relist-edge",
        "informer-slow-consumer",
        "informer-labels",
        "informer-fifo-backlog",
        "informer-handler-without-resync",
        "informer-restarts",
        "stale-relist-ha",
        "stale-relist-ha-consistent",
        "stale-relist-ha-watch-list",
    ];
    for entry in LIBRARY {
        assert!(
            covered.contains(&entry.name) || HAZARD_SCENARIOS.contains(&entry.name),
            "library scenario {} is not swept by a test",
            entry.name
        );
    }
}

#[test]
fn informer_trace_hashes_are_pinned() {
    let scenario = Scenario::load("informer").expect("library scenario");
    let pinned: Vec<String> = [0u64, 1, 42]
        .iter()
        .map(|&seed| {
            let outcome = run(&scenario, seed);
            format!(
                "seed={seed} events={} trace={}",
                outcome.steps, outcome.trace_hash
            )
        })
        .collect();
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_yaml_snapshot!("informer_trace_hashes", pinned);
    });
}
