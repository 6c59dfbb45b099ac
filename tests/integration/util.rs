//! Helpers the integration tests share.

use std::collections::BTreeMap;

use informer_sim::check::Invariant;
use informer_sim::explore::{
    Flow, Overrides, SeedRange, Sweep, SweepRow, env_cases, replay_line, run_seed, seeds_from_env,
};
use informer_sim::scenario::Scenario;

/// The seeds a sweep test runs: `INFORMER_SIM_SEED` alone, or `0..INFORMER_SIM_CASES`
/// (default `default`).
pub fn seeds(default: u64) -> SeedRange {
    seeds_from_env(default).unwrap_or_else(|error| panic!("{error}"))
}

/// How many cases a property test explores: `INFORMER_SIM_CASES`, or `default`.
pub fn cases(default: u64) -> u64 {
    env_cases(default).unwrap_or_else(|error| panic!("{error}"))
}

/// Sweeps library scenario `name` over `seeds`: no seed may fail, the first ten must replay to
/// the same hash, and a sweep of more than one seed must hit every coverage probe the scenario
/// requires. Returns how many seeds hit each declared hazard.
pub fn sweep(name: &str, seeds: SeedRange) -> BTreeMap<Invariant, u64> {
    sweep_row(name, seeds).hazards
}

/// [`sweep`]'s row: the hazards and what the runs exercised.
pub fn sweep_row(name: &str, seeds: SeedRange) -> SweepRow {
    let scenario = Scenario::load(name).expect("library scenario");
    let row = Sweep::over(seeds).run(&scenario, |seed, outcome| {
        if let Some((step, violation)) = &outcome.violation {
            let replay = replay_line(name, Overrides::default(), seed);
            panic!("{violation} at step {step}; replay: {replay}");
        }
        if seed < seeds.start + 10 {
            assert_eq!(
                run_seed(&scenario, seed).trace_hash,
                outcome.trace_hash,
                "seed {seed} of {name} is not deterministic"
            );
        }
        Flow::Continue
    });
    if seeds.len() > 1 {
        assert!(
            row.probe_misses.is_empty(),
            "{name}: {} seeds never reached the probes {:?}",
            seeds.len(),
            row.probe_misses
        );
    }
    row
}
