//! Seed sweeps over every library scenario: each complete schedule must keep every invariant
//! (or hit only the hazards its scenario declares), and must replay to the same trace hash.
//!
//! `INFORMER_SIM_CASES` sets the seeds per scenario (default 250: over 2,000 complete
//! schedules in all); `INFORMER_SIM_SEED` runs that one seed instead.

use informer_sim::check::Invariant;
use informer_sim::scenario::{LIBRARY, Scenario};

use informer_sim::explore::run_seed;

use crate::util::{seeds, sweep, sweep_row};

/// The seeds per scenario.
const SEEDS: u64 = 250;

#[test]
fn informer_with_real_fifo_converges_and_never_syncs_early() {
    assert!(
        sweep_all("informer-real-fifo").is_empty(),
        "RealFIFO declares no hazard"
    );
}

/// SPEC §9.2 N6, answered by the simulator: DeltaFIFO reports HasSynced while its last initial
/// item is still being processed (RealFIFO does not: see the test above). `informer-restarts`
/// models client-go 1.30 and restarts its informers often, so most of its initial lists are
/// not empty.
#[test]
fn delta_fifo_reports_synced_before_its_last_initial_item_is_applied() {
    let hazards = sweep_all("informer-restarts");
    assert!(
        hazards.contains_key(&Invariant::InformerSyncedImpliesInitialListApplied)
            || seeds(SEEDS).len() < 20,
        "N6 was never reproduced"
    );
}

/// k/k#131799: a watch-list transforms its initial objects twice (its temporary store, then
/// Replace); a LIST relist, watch events and syncs transform once at most.
#[test]
fn a_watch_list_transforms_its_initial_objects_twice_and_a_list_once() {
    let hazards = sweep_all("informer-transform");
    assert!(
        hazards.contains_key(&Invariant::TransformAppliedOnce) || seeds(SEEDS).len() < 20,
        "the double transform was never seen"
    );
    let mut listing = Scenario::load("informer-transform").expect("library scenario");
    listing.clients.client_go = informer_sim::scenario::ClientGoRelease::V1_33;
    listing.expected_hazards.clear();
    let range = seeds(SEEDS).first(40);
    for seed in range.start..range.end {
        let outcome = run_seed(&listing, seed);
        assert_eq!(outcome.violation, None, "seed {seed} with LIST relists");
    }
}

#[test]
fn informer_with_atomic_fifo_and_watch_list_converges() {
    sweep_all("informer-atomic-watch-list");
}

/// Without the cache a client's watch gets no heartbeat bookmarks (only the cacher's own etcd
/// watch asks for progress notifications), so it resumes from its last event and meets the
/// compactor's 410s, as upstream clients do.
#[test]
fn informer_without_watch_cache_converges_through_410s_and_no_bookmark_resumes() {
    let row = sweep_row("informer-no-cache", seeds(SEEDS));
    assert_eq!(row.stats.probes.bookmark_resumes, 0);
    assert!(row.stats.apiservers.expired > 0 || row.seeds < 20, "no 410");
}

/// A reader that stops fills a no-cache watch's buffers; its etcd watch falls behind and a
/// compaction ends it with 410 after events (`direct-watch-behind`, F9).
#[test]
fn slow_readers_without_the_cache_lose_their_watch_to_compaction() {
    let row = sweep_row("informer-no-cache-slow-reader", seeds(SEEDS).first(40));
    assert!(row.stats.apiservers.direct_watches_behind > 0 || row.seeds < 20);
}

/// With default settings, a client that resumes a watch from an RV a minute old or more is
/// served from the watch cache's 75 s window, never answered 410 (KEP-956).
#[test]
fn watches_resumed_from_a_minute_old_rv_are_served() {
    let row = sweep_row("informer-old-resume", seeds(SEEDS).first(40));
    assert_eq!(row.stats.probes.old_resumes_expired, 0);
    assert!(row.stats.probes.old_resumes_served > 0 || row.seeds < 20);
}

#[test]
fn informers_behind_three_lagging_apiservers_converge() {
    sweep_all("informer-ha");
}

/// Lists paged from the cache and continued from its snapshots, and exact relists that a
/// lagging cache answers with 504 (`ListFromCacheSnapshot`): the sweep reaches `cache-page`
/// and `snapshot-504`.
#[test]
fn informers_paging_through_three_lagging_caches_converge() {
    let row = sweep_row("informer-ha-pages", seeds(SEEDS).first(60));
    assert!(row.stats.apiservers.cache_pages > 0 || row.seeds < 20);
}

/// Kubelet-like informers, each selecting `spec.nodeName` of one node, converge to their
/// node's pods; pods enter a selection when they are bound.
#[test]
fn kubelet_like_informers_each_converge_to_their_nodes_pods() {
    let row = sweep_row("informer-kubelets", seeds(SEEDS).first(60));
    assert!(row.stats.notifications > 0 || row.seeds < 20);
}

#[test]
fn informer_with_a_churning_small_cache_converges() {
    sweep_all("informer-cache-churn");
}

#[test]
fn informer_whose_objects_gain_and_lose_labels_keeps_its_indexes() {
    sweep_all("informer-labels");
}

/// The sample ReplicaSet-like controller: never more owned objects than asked for, every count
/// right once settled, the work queue's invariants, a read-only lister, with every probe hit.
#[test]
fn the_sample_controller_keeps_its_counts_under_faults() {
    sweep_all("controller-replicaset");
}

#[test]
fn informer_with_a_slow_consumer_converges() {
    sweep_all("informer-slow-consumer");
}

/// A broken connection is a probable EOF: the open watch ends cleanly and the reflector
/// re-watches from lastSyncRV; only a dead connection (HTTP/2's health check) relists.
#[test]
fn broken_connections_rewatch_rather_than_relist() {
    let stats = sweep_row("informer-disconnects", seeds(SEEDS / 5)).stats;
    assert!(
        stats.rewatches >= 10 * stats.relists.max(1),
        "re-watches should far outnumber relists: {stats}"
    );
    assert_eq!(stats.health_check_closes, 0, "no connection went silent");
}

/// Once the faults heal and the writes stop, a client whose watch was healthy keeps it: a
/// quiet watch is not torn down, so no relist follows the last write.
#[test]
fn a_healed_quiet_cluster_settles_without_a_relist() {
    let stats = sweep_row("informer-quiet-ha", seeds(SEEDS * 2 / 5)).stats;
    assert_eq!(stats.relists_after_heal, 0, "{stats}");
    assert!(
        stats.relists > 0,
        "the faults before the heal still relist: {stats}"
    );
}

/// The planted-bug hunt scenarios of the client side (B2, B3, B4, B5, B24) are heavy (a deep
/// FIFO backlog checked at every step), so they get a few dozen seeds.
#[test]
fn informer_hunt_scenarios_hold_without_their_bugs() {
    for name in ["informer-fifo-backlog", "informer-handler-without-resync"] {
        sweep(name, seeds(SEEDS).first(20));
    }
}

/// The planted-bug hunt scenarios of the server side and the reflector (B9b, B10, B14, B16,
/// E4): each holds without its bug on a fifth of the seeds, reaching its probes
/// (informer-quiet-ha, whose health-check closes need more seeds, is swept by
/// `a_healed_quiet_cluster_settles_without_a_relist`).
#[test]
fn server_hunt_scenarios_hold_without_their_bugs() {
    let seeds = seeds(SEEDS);
    let fifth = seeds.first(seeds.len().div_ceil(5));
    for name in [
        "etcd-watch-auto-compaction",
        "informer-relist-edge",
        "informer-ha-quiet",
        "informer-blocked-dispatch",
        "informer-paged-compaction",
    ] {
        sweep(name, fifth);
    }
}

/// SPEC §8 B28: every client restart closes the old FIFO, and its waiting Pop must return.
#[test]
fn restarted_informers_wake_their_waiting_pop() {
    sweep("informer-restarts", seeds(SEEDS).first(20));
}

#[test]
fn apiserver_oracle_holds_under_cache_faults() {
    sweep_all("apiserver-oracle");
}

#[test]
fn stale_relist_in_ha_travels_back_in_time_as_upstream_warns() {
    let hazards = sweep_all("stale-relist-ha");
    assert!(
        hazards.contains_key(&Invariant::NoTimeTravelAcrossRestarts) || seeds(SEEDS).len() < 10,
        "the B1 hazard was never reproduced"
    );
}

/// Watch-list does not rule out B1: a first stream that fails non-retriably falls back to a
/// LIST at RV "0", which a lagging cache serves.
#[test]
fn watch_list_falls_back_to_a_stale_list_and_travels_back_in_time() {
    let hazards = sweep_all("stale-relist-ha-watch-list-fallback");
    assert!(
        hazards.contains_key(&Invariant::NoTimeTravelAcrossRestarts) || seeds(SEEDS).len() < 10,
        "the watch-list fallback never travelled back in time"
    );
}

#[test]
fn consistent_first_lists_never_travel_back_in_time() {
    for name in ["stale-relist-ha-consistent", "stale-relist-ha-watch-list"] {
        assert!(
            !sweep_all(name).contains_key(&Invariant::NoTimeTravelAcrossRestarts),
            "{name} travelled back in time"
        );
    }
}

/// The scenarios at cluster size (tens of thousands of objects, a thousand watchers, hours of
/// simulated time) at full size over a shortened life, one seed: the main job sweeps them
/// whole (their `main_job_seeds`), and `informer-sim sweep --scenario NAME` as long as wanted.
#[test]
fn scenarios_at_cluster_size_hold_over_a_shortened_life() {
    let seed = seeds(SEEDS).start;
    for (name, life_ms) in [
        ("scale-objects", 20_000),
        ("scale-watch-list", 20_000),
        ("scale-watchers", 15_000),
        ("long-quiet", 1_800_000),
    ] {
        let mut scenario = Scenario::load(name).expect("library scenario");
        scenario.duration_ms = life_ms;
        let outcome = run_seed(&scenario, seed);
        if let Some((step, violation)) = &outcome.violation {
            panic!("{name} (life {life_ms} ms) seed {seed}: {violation} at step {step}");
        }
        let initial = u64::from(scenario.workload.initial_objects);
        assert!(
            outcome.stats.commits > initial,
            "{name}: the {initial} initial objects and then the writers commit"
        );
        assert!(
            outcome.stats.pops >= initial.min(1_000),
            "{name}: the informers' initial lists reach their indexers"
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
    let seeds = seeds(SEEDS);
    let fifth = seeds.first(seeds.len().div_ceil(5));
    for name in HAZARD_SCENARIOS {
        let hazards = sweep(name, fifth);
        let declared = Scenario::load(name).expect("library").expected_hazards[0];
        assert!(
            hazards.contains_key(&declared) || fifth.len() < 10,
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
        "informer-no-cache-slow-reader",
        "informer-old-resume",
        "informer-paged-compaction",
        "informer-ha",
        "informer-ha-pages",
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
        "informer-kubelets",
        "informer-disconnects",
        "informer-quiet-ha",
        "stale-relist-ha",
        "stale-relist-ha-consistent",
        "stale-relist-ha-watch-list",
        "scale-objects",
        "scale-watch-list",
        "scale-watchers",
        "long-quiet",
        "stale-relist-ha-watch-list-fallback",
        "controller-replicaset",
        "informer-transform",
        // With the kube feature: tests/integration/kube_rs.rs.
        "kube-rs",
        "kube-rs-streaming",
        "kube-rs-http-410",
        "kube-rs-controller",
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
    let pinned = crate::determinism::pinned_lines("informer", &[0, 1, 42]);
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_yaml_snapshot!("informer_trace_hashes", pinned);
    });
}

/// Sweeps library scenario `name` over the test's seeds.
fn sweep_all(name: &str) -> std::collections::BTreeMap<Invariant, u64> {
    sweep(name, seeds(SEEDS))
}
