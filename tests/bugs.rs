//! The planted-bug catalog proves the harness (DESIGN principle 8): every reachable bug is
//! caught within its budget, and the same budgets with no bug switched on find nothing.
//!
//! A fast subset runs always (well under a minute in debug); the whole catalog is `#[ignore]`d
//! here because it is meant for `--release` (`cargo test --release -- --ignored`, or
//! `informer-sim bugs`).

use std::time::Duration;

use informer_sim::bugs::{Budget, Bug, hunt, hunt_in, scenario_of};

/// Bugs that are caught within a few seeds: checked on every `cargo test`.
const FAST: &[Bug] = &[
    Bug::EarlyProgress,
    Bug::DuplicateEvent,
    Bug::FutureWatchGetsOldEvents,
    Bug::ResumeFromOlderRevision,
    Bug::WatchCacheServesEventAtRv,
    Bug::WatchCacheKeepsHistoryOnRelist,
    Bug::ResyncBehindPendingDelta,
    Bug::ClosedWatchIsEndOfData,
    Bug::HandlerSyncedBeforeInitialAdds,
    Bug::RelistDeliveredAsSync,
    Bug::RequeueOnProcessError,
    Bug::PopMissesClose,
];

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
    let control = scenario_of(bug, None).expect("hunted bugs have a scenario");
    let clean = hunt_in(control, budget(result.seeds));
    assert!(
        clean.caught.is_none(),
        "{bug}'s scenario fails without the bug: {:?}",
        clean.caught
    );
    assert!(!caught.invariant.is_empty());
}

#[test]
fn the_fast_subset_is_caught_and_its_scenarios_are_clean_without_it() {
    for bug in FAST {
        caught_and_control_clean(*bug, 20);
    }
}

#[test]
#[ignore = "the whole catalog: run with --release"]
fn every_reachable_catalog_bug_is_caught_within_its_budget() {
    for bug in Bug::ALL {
        if bug.info().scenario.is_none() || Bug::KNOWN_ESCAPES.contains(bug) {
            continue;
        }
        caught_and_control_clean(*bug, bug.info().seeds);
    }
}

#[test]
#[ignore = "the whole catalog: run with --release"]
fn known_escapes_still_escape() {
    for bug in Bug::KNOWN_ESCAPES {
        let result = hunt(*bug, budget(bug.info().seeds));
        assert!(
            result.caught.is_none(),
            "{bug} is caught now: drop it from Bug::KNOWN_ESCAPES"
        );
    }
}
