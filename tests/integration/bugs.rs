//! The planted-bug catalog proves the harness (DESIGN principle 8): every reachable bug is
//! caught within its budget, and the same budgets with no bug switched on find nothing.
//!
//! The whole catalog runs on every `cargo test` (under a minute in debug); `informer-sim bugs`
//! prints the same hunts as a table.

use std::time::Duration;

use informer_sim::bug::Bug;
use informer_sim::explore::{Budget, hunt, hunt_in, scenario_of};

fn budget(seeds: u64) -> Budget {
    Budget {
        first_seed: 0,
        seeds,
        wall: Duration::from_secs(600),
        shrink_runs: 0,
    }
}

/// Hunts `bug` within its catalog seeds, then runs the seeds it took with the bug off.
fn caught_and_control_clean(bug: Bug, seeds: u64) {
    let result = hunt(bug, budget(seeds));
    let caught = result
        .caught
        .unwrap_or_else(|| panic!("{bug} escaped {} seeds", result.seeds));
    let control = scenario_of(bug, None);
    let clean = hunt_in(control, budget(result.seeds));
    assert!(
        clean.caught.is_none(),
        "{bug}'s scenario fails without the bug: {:?}",
        clean.caught
    );
    assert!(!caught.message.is_empty());
}

#[test]
fn every_catalog_bug_is_caught_within_its_budget_and_its_scenario_is_clean_without_it() {
    for bug in Bug::ALL {
        caught_and_control_clean(*bug, bug.info().seeds);
    }
}
