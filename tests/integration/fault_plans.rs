//! Property test over scenario knobs and explicit fault plans: proptest generates the plan,
//! and shrinks a failing one to a minimal list of faults. Failures are persisted in
//! `proptest-regressions/` and re-run first. `INFORMER_SIM_CASES` scales the cases.

use informer_sim::check::Invariant;
use informer_sim::scenario::{FifoKind, InitialList, Scenario};
use informer_sim::trace::Trace;
use informer_sim::world::World;
use informer_sim::world::faults::{Fault, FaultPlan, TimedFault};
use proptest::prelude::*;

const DURATION_MS: u64 = 20_000;

#[derive(Clone, Debug)]
struct Knobs {
    fifo: FifoKind,
    initial_list: InitialList,
    apiservers: u32,
    watch_cache: bool,
    lag_ms: u64,
    resync_ms: u64,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    let fifo = prop_oneof![
        Just(FifoKind::Delta),
        Just(FifoKind::Real),
        Just(FifoKind::RealAtomic)
    ];
    let initial = prop_oneof![
        Just(InitialList::List),
        Just(InitialList::WatchList),
        Just(InitialList::ConsistentList)
    ];
    (
        fifo,
        initial,
        1..=3u32,
        any::<bool>(),
        prop_oneof![Just(0u64), Just(800)],
        prop_oneof![Just(0u64), Just(3_000)],
    )
        .prop_map(
            |(fifo, initial_list, apiservers, watch_cache, lag_ms, resync_ms)| Knobs {
                fifo,
                initial_list,
                apiservers,
                watch_cache,
                lag_ms,
                resync_ms,
            },
        )
}

fn fault(apiservers: u32) -> impl Strategy<Value = Fault> {
    let client = 0..2u32;
    let apiserver = 0..apiservers;
    prop_oneof![
        client
            .clone()
            .prop_map(|client| Fault::Disconnect { client }),
        (client.clone(), 1..4_000u64).prop_map(|(client, ms)| Fault::SlowConsumer { client, ms }),
        client
            .clone()
            .prop_map(|client| Fault::SilentConnection { client }),
        (client.clone(), 1..5_000u64).prop_map(|(client, ms)| Fault::DelaySpike { client, ms }),
        apiserver
            .clone()
            .prop_map(|apiserver| Fault::CacherReinit { apiserver }),
        apiserver
            .clone()
            .prop_map(|apiserver| Fault::ApiserverRestart { apiserver }),
        client.prop_map(|client| Fault::ClientRestart { client }),
        (apiserver, 1..10_000u64).prop_map(|(apiserver, ms)| Fault::CacheStall { apiserver, ms }),
    ]
}

fn case() -> impl Strategy<Value = (Knobs, FaultPlan, u64)> {
    knobs().prop_flat_map(|knobs| {
        let timed = (0..DURATION_MS, fault(knobs.apiservers))
            .prop_map(|(at_ms, fault)| TimedFault { at_ms, fault });
        let plan = proptest::collection::vec(timed, 0..12).prop_map(|mut faults| {
            faults.sort_by_key(|timed| timed.at_ms);
            FaultPlan { faults }
        });
        (Just(knobs), plan, any::<u64>())
    })
}

fn scenario(knobs: &Knobs) -> Scenario {
    let mut scenario = Scenario {
        duration_ms: DURATION_MS,
        ..Scenario::default()
    };
    scenario.workload.write_interval_ms_max = 400;
    scenario.etcd.compaction_interval_ms = 4_000;
    scenario.apiservers.count = knobs.apiservers;
    scenario.apiservers.lag_ms_per_index = knobs.lag_ms;
    scenario.apiservers.server.watch_cache = knobs.watch_cache;
    // TEST ONLY: a 30-event history (upstream keeps 75 s), so short runs reach 410s.
    scenario.apiservers.server.test_only.history_capacity = Some(30);
    scenario.clients.count = 2;
    scenario.clients.fifo = Some(knobs.fifo);
    scenario.clients.initial_list = Some(knobs.initial_list);
    scenario.clients.resync_period_ms = knobs.resync_ms;
    scenario.clients.handlers = 2;
    // A lagging cache serving an RV "0" list after a client restart may go back in time (B1),
    // and DeltaFIFO reports synced before its last initial item is applied (N6, and so B20).
    let mut hazards = vec![Invariant::NoTimeTravelAcrossRestarts];
    if knobs.fifo == FifoKind::Delta {
        hazards.extend([
            Invariant::InformerSyncedImpliesInitialListApplied,
            Invariant::HandlerSyncedAfterInitialList,
        ]);
    }
    scenario.expected_hazards = hazards;
    scenario
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::util::cases(64) as u32, ..ProptestConfig::default() })]

    #[test]
    fn every_fault_plan_keeps_every_invariant((knobs, plan, seed) in case()) {
        let scenario = scenario(&knobs);
        let outcome = World::with_plan(scenario, seed, plan, Trace::default()).run();
        if let Some((step, violation)) = outcome.violation {
            prop_assert!(false, "{} at step {}", violation, step);
        }
    }
}
