//! The same seed gives the same run: twice in one process, and the same as the committed
//! hashes (a change there is a bug, or a deliberate snapshot update).

use informer_sim::determinism;
use informer_sim::explore::{Overrides, replay_line, run_seed};
use informer_sim::scenario::{FifoKind, LIBRARY, Scenario};

use crate::util::cases;

#[test]
fn every_seed_runs_twice_to_the_same_trace_hash() {
    let scenario = Scenario::load("etcd-watch").expect("library scenario");
    for seed in 0..cases(100) {
        let first = run_seed(&scenario, seed);
        let second = run_seed(&scenario, seed);
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(first.steps, second.steps);
        assert!(
            first.violation.is_none(),
            "seed {seed}: {:?}",
            first.violation
        );
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let scenario = Scenario::load("etcd-watch").expect("library scenario");
    let hashes: std::collections::BTreeSet<String> = (0..20)
        .map(|seed| run_seed(&scenario, seed).trace_hash.to_string())
        .collect();
    assert_eq!(hashes.len(), 20);
}

/// `seed=S events=N trace=HASH` for each seed of library scenario `name`.
pub fn pinned_lines(name: &str, seeds: &[u64]) -> Vec<String> {
    let scenario = Scenario::load(name).expect("library scenario");
    seeds
        .iter()
        .map(|&seed| {
            let outcome = run_seed(&scenario, seed);
            format!(
                "seed={seed} events={} trace={}",
                outcome.steps, outcome.trace_hash
            )
        })
        .collect()
}

#[test]
fn trace_hashes_are_pinned() {
    let pinned = pinned_lines("etcd-watch", &[0, 1, 42, 0xdead_beef]);
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_yaml_snapshot!("etcd_watch_trace_hashes", pinned);
    });
}

/// DESIGN principle 7: every model is plain data, so an explorer can copy a state and try two
/// futures from it.
#[test]
fn models_are_values_an_explorer_can_copy() {
    fn copyable<T: Clone>() {}
    copyable::<informer_sim::etcd::Etcd>();
    copyable::<informer_sim::apiserver::server::Apiserver>();
    copyable::<informer_sim::client::reflector::Reflector>();
    copyable::<informer_sim::client::SharedIndexInformer>();
    copyable::<
        informer_sim::client::workqueue::RateLimitingQueue<
            u64,
            informer_sim::client::workqueue::DefaultControllerRateLimiter<u64>,
        >,
    >();
}

/// `run --check-determinism` over every library scenario and every FIFO kind: each seed runs
/// twice and once from its replay file, and all three must agree at every step: 2,000 seeds
/// in all with `INFORMER_SIM_CASES=2000` (as CI runs it, in release); 500 by default, to keep
/// a debug `cargo test` within a minute or two.
#[test]
fn every_scenario_and_fifo_kind_agrees_at_every_step_across_runs_and_replay_files() {
    let kinds = [FifoKind::Delta, FifoKind::Real, FifoKind::RealAtomic];
    let combinations: Vec<(Scenario, FifoKind)> = LIBRARY
        .iter()
        .flat_map(|entry| {
            let scenario = Scenario::load(entry.name).expect("library scenario");
            kinds.map(|fifo| (scenario.clone(), fifo))
        })
        .collect();
    let total = cases(500);
    let per_combination = total.div_ceil(combinations.len() as u64);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let checked = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((scenario, fifo)) =
                    combinations.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let overrides = Overrides {
                        fifo: Some(*fifo),
                        bug: None,
                    };
                    let scenario = overrides.apply(scenario.clone());
                    for seed in 0..per_combination {
                        let result = determinism::check(&scenario, overrides, seed);
                        if let Some(parting) = result.parting {
                            let replay = replay_line(&scenario.name, overrides, seed);
                            panic!("{parting}\nreplay: {replay} --check-determinism");
                        }
                        checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(checked.into_inner() >= total);
}
