//! Every input parser under arbitrary input: no panic, and an error is one line
//! (`informer_sim::inputs`, which the fuzz targets in `fuzz/` also drive). Arbitrary bytes,
//! edits of valid files, and arbitrary scenario values and fault plans, whose valid ones also
//! run to a verdict. The fuzz corpora and every saved crash (`fuzz/regressions/`) replay here.

use std::path::Path;

use proptest::prelude::*;

use informer_sim::inputs::{TARGETS, check};
use informer_sim::replay::ReplayFile;
use informer_sim::scenario::{LIBRARY, Scenario};
use informer_sim::trace::{Trace, TraceHash};
use informer_sim::world::faults::{Fault, FaultPlan, TimedFault};
use informer_sim::world::{RunOutcome, World};

use crate::util::cases;

fn config(default: u64) -> ProptestConfig {
    ProptestConfig::with_cases(cases(default) as u32)
}

#[test]
fn the_fuzz_corpora_and_saved_crashes_replay_without_a_panic() {
    let mut replayed = 0;
    for folder in ["fuzz/corpus", "fuzz/regressions"] {
        for (name, target) in TARGETS {
            let Ok(entries) = std::fs::read_dir(Path::new(folder).join(name)) else {
                continue;
            };
            for entry in entries {
                let bytes = std::fs::read(entry.expect("entry").path()).expect("readable");
                check(&target(&bytes));
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "every target has a corpus");
}

/// A valid file with bytes cut, inserted or replaced.
fn edited(text: &[u8], at: usize, cut: usize, insert: &[u8]) -> Vec<u8> {
    let at = at % (text.len() + 1);
    let end = (at + cut).min(text.len());
    [&text[..at], insert, &text[end..]].concat()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_one_line(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        for (_, target) in TARGETS {
            check(&target(&bytes));
        }
    }

    #[test]
    fn edited_library_scenarios_never_panic_and_errors_are_one_line(
        entry in 0..LIBRARY.len(),
        at in any::<usize>(),
        cut in 0usize..16,
        insert in proptest::collection::vec(
            prop_oneof![Just(b'='), Just(b'['), Just(b'"'), Just(b'\n'), Just(b'9'), any::<u8>()],
            0..8,
        ),
    ) {
        let text = edited(LIBRARY[entry].text.as_bytes(), at, cut, &insert);
        check(&informer_sim::inputs::scenario(&text));
    }
}

/// A scenario value with small and out-of-range numbers in the fields that shape a run.
fn arbitrary_scenario() -> impl Strategy<Value = Scenario> {
    let shape = (0u32..4, 0u32..5, 0u32..10, 0u32..4, 0u32..3, 0u64..4);
    let pace = (
        0u64..3_000,
        0u64..100,
        0u64..1_500,
        0u64..2_000,
        0usize..5,
        0usize..4,
    );
    let chances = (
        0.0f64..1.2,
        0.0f64..1.2,
        0.0f64..1.2,
        any::<bool>(),
        0u64..200_000,
    );
    (shape, pace, chances).prop_map(|(shape, pace, chances)| {
        let (apiservers, clients, writers, keys, handlers, lag_s) = shape;
        let (duration_ms, interval_ms, handler_ms, resync_ms, history, buffer) = pace;
        let (disconnect, restart, stall, swarm, settle_ms) = chances;
        let mut scenario = Scenario {
            name: "arbitrary".to_owned(),
            duration_ms,
            settle_ms_max: settle_ms,
            ..Scenario::default()
        };
        scenario.apiservers.count = apiservers;
        scenario.apiservers.lag_ms_per_index = lag_s * 1_000;
        scenario.apiservers.server.test_only.history_capacity = Some(history);
        scenario.apiservers.server.test_only.watcher_buffer = Some(buffer);
        scenario.clients.count = clients;
        scenario.clients.handlers = handlers;
        scenario.clients.handler_ms_max = handler_ms;
        scenario.clients.resync_period_ms = resync_ms;
        scenario.workload.writers = writers;
        scenario.workload.keys = keys;
        scenario.workload.write_interval_ms_min = interval_ms;
        scenario.workload.write_interval_ms_max = interval_ms * 3;
        scenario.faults.swarm = swarm;
        scenario.faults.disconnect_probability = disconnect;
        scenario.faults.client_restart_probability = restart;
        scenario.faults.cache_stall_probability = stall;
        scenario
    })
}

/// Runs `scenario` with `plan` and asserts it ends with a verdict within the step budget.
fn runs_to_a_verdict(scenario: Scenario, plan: FaultPlan) -> RunOutcome {
    let outcome = World::with_plan(scenario, 1, plan, Trace::default()).run();
    assert!(outcome.steps > 0 || outcome.violation.is_some());
    outcome
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn arbitrary_scenario_values_read_back_or_are_refused_and_valid_ones_run(
        scenario in arbitrary_scenario(),
    ) {
        let text = toml::to_string(&scenario).expect("scenarios serialize");
        let read = informer_sim::inputs::scenario(text.as_bytes());
        check(&read);
        if read.is_ok() {
            let parsed = Scenario::from_toml("arbitrary", &text).expect("just read");
            prop_assert_eq!(&parsed, &scenario);
            runs_to_a_verdict(parsed, FaultPlan::default());
        }
    }

    #[test]
    fn arbitrary_fault_plans_in_replay_files_are_refused_in_one_line_or_run(
        faults in proptest::collection::vec((0u64..3_000, 0u32..4, 0u64..(1 << 40), 0usize..6), 0..12),
    ) {
        let mut scenario = Scenario::load("informer-ha").expect("library scenario");
        scenario.duration_ms = 2_000;
        let faults = faults.into_iter().map(|(at_ms, target, ms, kind)| TimedFault {
            at_ms,
            fault: match kind {
                0 => Fault::Disconnect { client: target },
                1 => Fault::SlowConsumer { client: target, ms },
                2 => Fault::CacheStall { apiserver: target, ms },
                3 => Fault::ApiserverRestart { apiserver: target },
                4 => Fault::WatcherStall { watcher: target, ms },
                _ => Fault::ClientRestart { client: target },
            },
        });
        let file = ReplayFile {
            scenario,
            overrides: Default::default(),
            seed: 1,
            plan: FaultPlan { faults: faults.collect() },
            trace_hash: TraceHash(0),
            invariant: None,
            step: None,
        };
        let text = serde_json::to_string(&file).expect("serializes");
        let read = informer_sim::inputs::replay(text.as_bytes());
        check(&read);
        if read.is_ok() {
            runs_to_a_verdict(file.scenario, file.plan);
        }
    }
}
