//! The worked traces of SPEC §10 (T1..T10) as golden timelines: each scene drives the real
//! models through exactly the trace's interleaving ([`golden::Scene`]), asserts the trace's key
//! facts, then pins the timeline as an insta snapshot in `snapshots/golden_t*.snap`.
//!
//! Object keys are `ns/<name>`, `x@N` is object x at resource version N, `L` is the
//! reflector's lastSyncRV. Revisions are moved with writes to other resources so that the
//! numbers match the SPEC's where the trace names them.

use crate::golden::Scene;
use informer_sim::api::{LabelSelector, ServerMessage, WatchEvent};
use informer_sim::bug::{Bug, Bugs};
use informer_sim::client::reflector::{ConnectionLoss, ReflectorConfig, ReflectorError};
use informer_sim::client::{Delta, DeltaObject, Fifo, FifoKind, Notification};
use informer_sim::object::ObjectKey;
use informer_sim::sim::SimDuration;

fn snapshot(name: &str, title: &str, scene: &Scene) {
    snapshot_text(name, title, &scene.timeline());
}

fn snapshot_text(name: &str, title: &str, timeline: &str) {
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => title,
    }, {
        insta::assert_snapshot!(name, timeline);
    });
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(&format!("ns/{name}"))
}

fn calls(popped: &[Notification]) -> Vec<String> {
    popped.iter().map(ToString::to_string).collect()
}

/// T1: LIST RV="0" served from the cache at 100, Replace into DeltaFIFO, WATCH from 100, pops
/// with isInInitialList, HasSynced after the last initial pop.
#[test]
fn t1_legacy_startup() {
    let mut scene = Scene::new(FifoKind::Delta, ReflectorConfig::default());
    scene.bump_revision_to(89);
    scene.put("ns/a", "a");
    scene.bump_revision_to(94);
    scene.put("ns/b", "a");
    scene.bump_revision_to(100);
    scene.progress_tick();
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.start();
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(100));
    let Fifo::Delta(fifo) = scene.informer.fifo() else {
        panic!("a DeltaFIFO");
    };
    assert_eq!(fifo.initial_population_count(), 2);
    let first = scene.pop();
    assert!(first.popped.is_in_initial_list);
    assert!(!scene.informer.has_synced());
    scene.pop();
    assert!(scene.informer.has_synced());
    scene.advance(1000);
    scene.put("ns/c", "a");
    let live = scene.pop();
    assert!(!live.popped.is_in_initial_list);
    assert_eq!(
        calls(&scene.deliver_all(handler)),
        [
            "OnAdd(ns/a@90, isInInitialList=true)",
            "OnAdd(ns/b@95, isInInitialList=true)",
            "OnAdd(ns/c@101, isInInitialList=false)",
        ]
    );
    snapshot(
        "golden_t1_legacy_startup",
        "SPEC §10 T1: legacy startup (DeltaFIFO, LIST mode)",
        &scene,
    );
}

/// T2: the server closes the watch at its timeout (a bookmark came 2 s before); the reflector
/// re-watches from L with no relist and no Replace.
///
/// Not shown: "a close within <1 s with 0 events counts as an error and relists". No server
/// path in the model closes a fresh stream cleanly within a second with no events (a cacher
/// reinit waits 1 s, a slow-consumer termination follows undelivered events); the reflector's
/// rule is covered by its unit test `close_under_one_second_with_no_events_relists`.
#[test]
fn t2_watch_timeout_rewatches_without_relist() {
    let mut scene = Scene::new(FifoKind::Delta, ReflectorConfig::default());
    scene.put("ns/a", "a");
    scene.start();
    scene.pop_all();
    scene.bump_revision_to(179);
    scene.put("ns/a", "a");
    scene.pop_all();
    let deadline = scene.watch_deadline();
    scene.advance(deadline.as_millis() - scene.h.now.as_millis());
    assert_eq!(scene.reflector.list_count(), 1, "no relist");
    assert_eq!(scene.reflector.watch_count(), 2, "one re-watch");
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(180));
    snapshot(
        "golden_t2_watch_timeout",
        "SPEC §10 T2: watch timeout (no relist)",
        &scene,
    );
}

/// T3: L=180; x is deleted at 185 while its event is still in flight; the stream drops (a
/// probable EOF, so the watch ends cleanly) and the event is lost with it; the reflector
/// re-watches from 180 at once, without a relist, and gets DELETED x@185 from the watch cache:
/// a normal OnDelete with the final object, no tombstone.
#[test]
fn t3_delete_during_gap_is_not_a_tombstone() {
    let mut scene = Scene::new(FifoKind::Delta, ReflectorConfig::default());
    scene.put("ns/x", "a");
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.start();
    scene.pop_all();
    scene.bump_revision_to(179);
    scene.put("ns/y", "a");
    scene.pop_all();
    scene.deliver_all(handler);
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(180));
    scene.advance(10_000);
    scene.hold();
    scene.bump_revision_to(184);
    let deleted_at = scene.delete("ns/x");
    assert_eq!(deleted_at, 185);
    scene.reconnect_to(0, ConnectionLoss::PeerClosed);
    assert_eq!(scene.reflector.rewatch_count(), 1, "a re-watch at once");
    scene.release();
    let popped = scene.pop();
    assert!(matches!(
        popped.popped.deltas.as_slice(),
        [Delta::Deleted(DeltaObject::Object(obj))] if obj.resource_version == 185
    ));
    let got = scene.deliver_all(handler);
    assert!(matches!(
        got.as_slice(),
        [Notification::Delete(DeltaObject::Object(obj))] if obj.key == key("x")
    ));
    assert_eq!(scene.reflector.list_count(), 1, "no relist");
    snapshot(
        "golden_t3_delete_during_gap",
        "SPEC §10 T3: disconnect with a delete during the gap (no tombstone)",
        &scene,
    );
}

/// Runs T4 with `bugs` up to the relist and the pops; returns the scene and the handler calls.
fn t4_scene(bugs: Bugs) -> (Scene, Vec<Notification>) {
    let mut scene = Scene::with_bugs(FifoKind::Delta, ReflectorConfig::default(), bugs);
    scene.put("ns/a", "a");
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.start();
    scene.pop_all();
    scene.deliver_all(handler);
    scene.bump_revision_to(199);
    scene.put("ns/o", "a");
    scene.fail_cache_upstream(0);
    scene.delete("ns/o");
    scene.bump_revision_to(205);
    scene.advance(3000);
    scene.pop_all();
    let calls = scene.deliver_all(handler);
    (scene, calls)
}

/// T4 (B4, k/k#115658): o's Added is still queued when the watch gets 410 (here after a cacher
/// re-initialization) and o is deleted; the relist at 205 lacks o. HEAD Replace appends
/// `Deleted(DFSU{o, o@200})` behind the queued Added, so the consumer adds then deletes o.
/// The snapshot ends with the same relist under the old Replace (the planted bug
/// `replace-skips-queued-tombstone`): nothing is queued for o, and o leaks into the indexer.
#[test]
fn t4_relist_tombstones_a_queue_only_key() {
    let (scene, calls) = t4_scene(Bugs::NONE);
    assert_eq!(
        self::calls(&calls),
        [
            "OnAdd(ns/o@200, isInInitialList=false)",
            "OnDelete(DFSU(ns/o, ns/o@200))",
            "OnUpdate(ns/a@2 -> ns/a@2)",
        ]
    );
    assert!(scene.informer.indexer().get_by_key(&key("o")).is_none());
    let (old, old_calls) = t4_scene(Bugs::new(Some(Bug::ReplaceSkipsQueuedTombstone)));
    assert_eq!(
        self::calls(&old_calls),
        [
            "OnAdd(ns/o@200, isInInitialList=false)",
            "OnUpdate(ns/a@2 -> ns/a@2)"
        ]
    );
    assert!(
        old.informer.indexer().get_by_key(&key("o")).is_some(),
        "the leak"
    );
    let old_timeline = old.timeline();
    let old_lines: Vec<&str> = old_timeline.lines().collect();
    let relist = old_lines
        .iter()
        .rposition(|line| line.contains("reflector     Replace("))
        .expect("a relist");
    let mut timeline = scene.timeline();
    timeline.push_str(
        "--- the same relist before k/k#115620 (planted: replace-skips-queued-tombstone):\n",
    );
    for line in &old_lines[relist..] {
        timeline.push_str(line);
        timeline.push('\n');
    }
    snapshot_text(
        "golden_t4_queue_only_key_tombstone",
        "SPEC §10 T4: B4 leak, step by step (HEAD, then old DeltaFIFO.Replace)",
        &timeline,
    );
}

/// T5: the cacher's etcd watch falls behind at 500 while etcd compacts to 520: its catch-up
/// fails with ErrCompacted, the cache goes Pending, and re-initializes a second later with a
/// consistent etcd list at 530. The client re-watches from L=500: 429 while Pending (its REST
/// layer sends it again after the 1 s Retry-After), then 410 once ready (500 < 530), then
/// relists at "500", served at 530, which tombstones x (deleted at 501, unseen by the client).
///
/// In the model the cacher terminates its watchers and lists etcd in one instant, so a stream
/// it terminates re-watches into a ready cache; to show the 429 the client's watch reaches its
/// timeout while the cache is Pending.
#[test]
fn t5_cacher_reinit() {
    let mut scene = Scene::new(FifoKind::Delta, ReflectorConfig::default());
    scene.put("ns/x", "a");
    scene.put("ns/y", "a");
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.start();
    scene.pop_all();
    scene.deliver_all(handler);
    scene.bump_revision_to(499);
    scene.put("ns/y", "a");
    scene.pop_all();
    scene.deliver_all(handler);
    let deadline = scene.watch_deadline().as_millis();
    scene.advance(deadline - 500 - scene.h.now.as_millis());
    scene.stall_cache_watch(0, true);
    scene.delete("ns/x");
    scene.bump_revision_to(520);
    scene.compact(520);
    scene.stall_cache_watch(0, false);
    assert_eq!(scene.h.server.cache_ready(), Some(false));
    scene.bump_revision_to(530);
    scene.advance(5000);
    assert_eq!(scene.h.server.cache_resource_version(), Some(530));
    assert_eq!(scene.reflector.relist_count(), 1);
    scene.pop_all();
    assert_eq!(
        calls(&scene.deliver_all(handler)),
        [
            "OnUpdate(ns/y@500 -> ns/y@500)",
            "OnDelete(DFSU(ns/x, ns/x@2))"
        ]
    );
    snapshot(
        "golden_t5_cacher_reinit",
        "SPEC §10 T5: cacher reinit (429 while Pending, 410, relist, tombstone)",
        &scene,
    );
}

/// T6: a watch-list (`sendInitialEvents`) at RV "" with etcd at 700: the server waits until
/// its cache reaches 700, which b's write at 702 does; it streams ADDED a@650, b@702, c@699 (key
/// order, RVs unordered), then the initial-events-end BOOKMARK 702; the reflector replaces
/// with its temporary store at "702" and keeps the stream for live events.
#[test]
fn t6_watch_list_startup() {
    let config = ReflectorConfig {
        use_watch_list: true,
        ..ReflectorConfig::default()
    };
    let mut scene = Scene::new(FifoKind::Real, config);
    scene.bump_revision_to(649);
    scene.put("ns/a", "a");
    scene.bump_revision_to(698);
    scene.put("ns/c", "a");
    scene.bump_revision_to(700);
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.start();
    assert_eq!(
        scene.reflector.last_sync_resource_version(),
        None,
        "waiting"
    );
    scene.bump_revision_to(701);
    scene.put("ns/b", "a");
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(702));
    assert_eq!(scene.reflector.list_count(), 0, "no LIST");
    scene.put("ns/c", "a");
    assert_eq!(scene.reflector.watch_count(), 1, "the same stream");
    scene.pop_all();
    assert_eq!(
        calls(&scene.deliver_all(handler)),
        [
            "OnAdd(ns/a@650, isInInitialList=true)",
            "OnAdd(ns/b@702, isInInitialList=true)",
            "OnAdd(ns/c@699, isInInitialList=true)",
            "OnUpdate(ns/c@699 -> ns/c@703)",
        ]
    );
    snapshot(
        "golden_t6_watch_list_startup",
        "SPEC §10 T6: watch-list startup (RealFIFO, sendInitialEvents)",
        &scene,
    );
}

/// T7: L=900 came from apiserver A (a bookmark carrying a progress revision). The connection
/// breaks and the relist `LIST(RV=900)` lands on B, whose cache is at 880; B's etcd watch is
/// unsynced, so its progress requests go unanswered: 3 s, then 504 TooLargeResourceVersion.
/// The reflector marks L unavailable and lists at once with RV="": B waits for etcd's 1000;
/// once its etcd watch catches up, the next progress request (one every 100 ms; etcd 3.6
/// drops those made while the watch was behind) brings the cache to 1000.
///
/// Differences from the SPEC's wording: the watch on A ends because HTTP/2's health check
/// found its connection dead (a 500, so a relist) rather than with a 410, and B is behind because its etcd watch is unsynced: at
/// HEAD (and in the model) a waiting RV=N list also requests progress, so a synced B with no
/// events of this type would catch up within 100 ms instead of timing out.
#[test]
fn t7_ha_lag_on_relist() {
    let mut scene = Scene::new(FifoKind::Delta, ReflectorConfig::default());
    scene.add_apiserver();
    scene.put("ns/a", "a");
    scene.start();
    scene.pop_all();
    scene.bump_revision_to(879);
    scene.put("ns/a", "a");
    scene.pop_all();
    scene.stall_cache_watch(1, true);
    scene.bump_revision_to(900);
    scene.progress_tick();
    scene.advance(61_000);
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(900));
    scene.bump_revision_to(1000);
    scene.reconnect_to(1, ConnectionLoss::HealthCheckFailed);
    scene.advance(4500);
    assert!(scene.reflector.is_last_sync_resource_version_unavailable());
    assert!(matches!(
        scene.reflector.last_error(),
        Some(ReflectorError::Request(error)) if error.is_too_large_resource_version()
    ));
    scene.stall_cache_watch(1, false);
    scene.advance(200);
    assert!(!scene.reflector.is_last_sync_resource_version_unavailable());
    assert_eq!(scene.reflector.last_sync_resource_version(), Some(1000));
    snapshot(
        "golden_t7_ha_lag_on_relist",
        "SPEC §10 T7: HA lag on relist (504 TooLargeResourceVersion, then RV=\"\")",
        &scene,
    );
}

/// T8: a handler added to a running informer with indexer {a, b} first gets OnAdd(a),
/// OnAdd(b) with isInInitialList=true, then the later Updated a; its registration syncs after
/// the second initial add.
#[test]
fn t8_late_handler() {
    let mut scene = Scene::new(FifoKind::Real, ReflectorConfig::default());
    scene.put("ns/a", "a");
    scene.put("ns/b", "a");
    scene.start();
    scene.pop_all();
    let late = scene.add_handler(SimDuration::ZERO);
    scene.put("ns/a", "a");
    scene.pop_all();
    let first = scene.deliver(late);
    assert!(!scene.informer.handler_has_synced(late));
    scene.deliver(late);
    assert!(scene.informer.handler_has_synced(late));
    let update = scene.deliver(late);
    assert_eq!(
        calls(&[first.notification, update.notification]),
        [
            "OnAdd(ns/a@2, isInInitialList=true)",
            "OnUpdate(ns/a@2 -> ns/a@4)"
        ]
    );
    snapshot(
        "golden_t8_late_handler",
        "SPEC §10 T8: late handler",
        &scene,
    );
}

/// T9: indexer {x@10, y@11}, `items{x: [Updated x@20]}` when the resync timer fires: x has
/// pending deltas and is skipped, y gets `Sync y@11`. Popping x gives a non-sync OnUpdate for
/// both handlers; y's OnUpdate(y@11 -> y@11) is a sync, delivered only to the handler that
/// `shouldResync` flagged (the one with a resync period).
#[test]
fn t9_resync_with_pending_delta() {
    let config = ReflectorConfig {
        resync_period: Some(SimDuration::from_secs(30)),
        ..ReflectorConfig::default()
    };
    let mut scene = Scene::new(FifoKind::Delta, config);
    let resyncing = scene.add_handler(SimDuration::from_secs(30));
    let quiet = scene.add_handler(SimDuration::ZERO);
    scene.bump_revision_to(9);
    scene.put("ns/x", "a");
    scene.put("ns/y", "a");
    scene.start();
    scene.pop_all();
    scene.bump_revision_to(19);
    scene.put("ns/x", "a");
    scene.advance(30_000);
    let x = scene.pop();
    assert_eq!(x.distributed[0].recipients, [resyncing, quiet]);
    assert!(!x.distributed[0].is_sync);
    let y = scene.pop();
    assert!(matches!(y.popped.deltas.as_slice(), [Delta::Sync(obj)] if obj.key == key("y")));
    assert!(y.distributed[0].is_sync);
    assert_eq!(y.distributed[0].recipients, [resyncing]);
    scene.deliver_all(resyncing);
    scene.deliver_all(quiet);
    snapshot(
        "golden_t9_resync_with_pending_delta",
        "SPEC §10 T9: resync with a pending delta (DeltaFIFO)",
        &scene,
    );
}

/// T10: a watch with labelSelector app=a; o moving to app=b at 300 reaches the client as
/// DELETED o (its previous state, RV 300); moving back at 310 as ADDED o@310.
#[test]
fn t10_selector_transition() {
    let config = ReflectorConfig {
        label_selector: Some(LabelSelector {
            name: "app".to_owned(),
            value: "a".to_owned(),
        }),
        ..ReflectorConfig::default()
    };
    let mut scene = Scene::new(FifoKind::Real, config);
    let handler = scene.add_handler(SimDuration::ZERO);
    scene.put("ns/o", "a");
    scene.start();
    scene.pop_all();
    scene.bump_revision_to(299);
    scene.put("ns/o", "b");
    scene.bump_revision_to(309);
    scene.put("ns/o", "a");
    let events: Vec<&WatchEvent> = scene
        .h
        .received()
        .iter()
        .filter_map(|message| match message {
            ServerMessage::WatchEvent { event, .. } => Some(event),
            _ => None,
        })
        .collect();
    assert!(matches!(
        events.as_slice(),
        [WatchEvent::Deleted(gone), WatchEvent::Added(back)]
            if gone.resource_version == 300 && gone.label("app") == Some("a")
                && back.resource_version == 310
    ));
    scene.pop_all();
    assert_eq!(
        calls(&scene.deliver_all(handler)),
        [
            "OnAdd(ns/o@2, isInInitialList=true)",
            "OnDelete(ns/o@300)",
            "OnAdd(ns/o@310, isInInitialList=false)",
        ]
    );
    assert!(scene.informer.indexer().get_by_key(&key("o")).is_some());
    snapshot(
        "golden_t10_selector_transition",
        "SPEC §10 T10: selector transition at the cacher",
        &scene,
    );
}
