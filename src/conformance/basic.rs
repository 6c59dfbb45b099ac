//! Single-object watches from a resource version, cancel, slow readers and timeouts.

use super::{
    ConformanceCase, Mode, ensure, ensure_events, ensure_stream, harness, in_namespace, pod,
    wait_for,
};
use crate::api::{ListOptions, ResourceVersionParam as Rv, WatchEvent};
use crate::object::Object;
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::{CLIENT, watch_options};

/// `RunTestWatchFromZero`: a watch from "0" starts with the current state as ADDED, then
/// streams changes; after compaction a watch from "0" still works, and one from a compacted
/// RV fails.
///
/// Without the cache, the compacted watch must end with an ERROR (410, or 500 when etcd
/// delivers the event whose previous value was compacted away without `prev_kv`, which
/// upstream also accepts) and then close. With the cache: upstream's cacher test trims the
/// cache's history by hand before compacting (a test-only hook the model does not have), so
/// here the cache, which never learns of etcd's compaction, keeps serving its history window:
/// the watch from the compacted RV gets the one later event. Not covered: the trimmed-history
/// 410 from the cache (the history-window 410 is covered by the apiserver's unit tests).
pub(super) const WATCH_FROM_ZERO: ConformanceCase = ConformanceCase {
    name: "RunTestWatchFromZero",
    summary: "a watch from 0 sends the state as ADDED, then changes; compacted RVs fail",
    run: watch_from_zero,
};

fn watch_from_zero(mode: Mode) -> Result<(), String> {
    let mut h = harness(mode);
    let object = pod("test-ns", "foo");
    let stored = object.write(&mut h);
    let first = h.watch(watch_options(Rv::Zero));
    let updated = object.updated().write(&mut h);
    let want = [
        WatchEvent::Added(stored),
        WatchEvent::Modified(updated.clone()),
    ];
    ensure_events(&h, first, &want)?;
    h.stop_watch(first);
    let second = h.watch(watch_options(Rv::Zero));
    ensure_events(&h, second, &[WatchEvent::Added(updated.clone())])?;
    h.stop_watch(second);
    let newest = object.write(&mut h);
    h.compact(newest.resource_version);
    let third = h.watch(watch_options(Rv::Zero));
    ensure_events(&h, third, &[WatchEvent::Added(newest.clone())])?;
    let too_old = h.watch(watch_options(Rv::At(updated.resource_version)));
    match mode {
        Mode::Cache => ensure_events(&h, too_old, &[WatchEvent::Modified(newest)])?,
        Mode::NoCache => {
            let stream = h.stream(too_old);
            let failed = stream == ["ERROR 410", "CLOSED"] || stream == ["ERROR 500", "CLOSED"];
            ensure(failed, || format!("compacted watch got {stream:?}"))?;
        }
    }
    h.check_oracles()
}

/// Writes `foo` and watches it from its RV; returns the stored object and the stream.
fn watch_after_create(h: &mut crate::testkit::apiserver_pair::Harness) -> (Object, u64) {
    let stored = pod("test-ns", "foo").write(h);
    let id = h.watch(watch_options(Rv::At(stored.resource_version)));
    (stored, id)
}

/// `RunTestDeleteTriggerWatch`: deleting the object a watch started at sends DELETED.
/// Covered in full (the exact event, not only its type).
pub(super) const DELETE_TRIGGER_WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestDeleteTriggerWatch",
    summary: "a delete after the watch's RV is a DELETED event",
    run: |mode| {
        let mut h = harness(mode);
        let (stored, id) = watch_after_create(&mut h);
        let deleted_at = h.delete(&stored.key.to_string());
        let want = WatchEvent::Deleted(stored.with_resource_version(deleted_at));
        ensure_events(&h, id, &[want])?;
        h.check_oracles()
    },
};

/// `RunTestWatchFromNonZero`: a watch from the object's RV gets the next update, and not the
/// write at that RV. Covered in full.
pub(super) const WATCH_FROM_NON_ZERO: ConformanceCase = ConformanceCase {
    name: "RunTestWatchFromNonZero",
    summary: "a watch from RV N sends the update after N, not the write at N",
    run: |mode| {
        let mut h = harness(mode);
        let (_, id) = watch_after_create(&mut h);
        let updated = pod("test-ns", "foo").updated().write(&mut h);
        ensure_events(&h, id, &[WatchEvent::Modified(updated)])?;
        h.check_oracles()
    },
};

/// `RunTestWatchDeleteEventObjectHaveLatestRV`: the DELETED event carries the last state of
/// the object with the deletion's RV, which differs from the stored RV. Covered in full.
pub(super) const WATCH_DELETE_EVENT_OBJECT_HAVE_LATEST_RV: ConformanceCase = ConformanceCase {
    name: "RunTestWatchDeleteEventObjectHaveLatestRV",
    summary: "a DELETED event's object has the deletion RV",
    run: |mode| {
        let mut h = harness(mode);
        let (stored, id) = watch_after_create(&mut h);
        let deleted_at = h.delete(&stored.key.to_string());
        ensure(deleted_at != stored.resource_version, || {
            "the delete did not move the RV".to_owned()
        })?;
        let got = h.events(id);
        let want = stored.with_resource_version(deleted_at);
        ensure(got == [WatchEvent::Deleted(want.clone())], || {
            format!("got {got:?}, want DELETED {want:?}")
        })?;
        h.check_oracles()
    },
};

/// `RunTestDelayedWatchDelivery`: a client that reads one event, then stalls while 20 more
/// are written, must still get at least 11 (the first plus a full 10-event output buffer), in
/// order, once it reads again and stops the watch.
///
/// The stall is [`crate::apiserver::server::Apiserver::set_client_reading`] for one simulated
/// second. Upstream's cacher holds 21 events for a stalled reader (its `input` and `result`
/// channels of 10 each, plus one in hand) and, if it terminates the watcher, still delivers
/// what is in `result`. The model sizes both buffers as upstream does (10 events for a small
/// history).
pub(super) const DELAYED_WATCH_DELIVERY: ConformanceCase = ConformanceCase {
    name: "RunTestDelayedWatchDelivery",
    summary: "a stalled reader still gets at least 11 buffered events, in order",
    run: delayed_watch_delivery,
};

fn delayed_watch_delivery(mode: Mode) -> Result<(), String> {
    const TOTAL_PODS: usize = 21;
    const EXPECT_AT_LEAST: usize = 11;
    let mut h = harness(mode);
    let stored = pod("test-ns", "foo").write(&mut h);
    let options = in_namespace("test-ns", watch_options(Rv::At(stored.resource_version)));
    let id = h.watch(options);
    let names: Vec<String> = (0..TOTAL_PODS)
        .map(|i| format!("test-ns/foo-{i}"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        h.write(name, "x", 0);
        if i == 0 {
            h.server
                .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
        }
    }
    h.advance(SimDuration::from_secs(1));
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, true);
    h.pump();
    h.stop_watch(id);
    let got: Vec<String> = h
        .events(id)
        .iter()
        .filter_map(|event| match event {
            WatchEvent::Added(object) => Some(object.key.to_string()),
            _ => None,
        })
        .collect();
    ensure(got.len() == h.events(id).len(), || {
        format!("non-ADDED events: {:?}", h.stream(id))
    })?;
    ensure(names.starts_with(&got), || format!("out of order: {got:?}"))?;
    ensure(got.len() >= EXPECT_AT_LEAST, || {
        format!(
            "{} events delivered, want at least {EXPECT_AT_LEAST}: {:?}",
            got.len(),
            h.stream(id)
        )
    })?;
    h.check_oracles()
}

/// `RunTestWatchContextCancel`: a watch whose request context is already canceled ends
/// without an error.
///
/// The model has no request context; the closest is a client that cancels in the same
/// instant it asks: a `StopWatch` right after the `Watch`, before anything is read. Covered:
/// no event (and no error) ever reaches the stream, even when a matching object appears.
/// Not covered: upstream also sees its result channel closed; a client-side stop in the model
/// sends nothing back.
pub(super) const WATCH_CONTEXT_CANCEL: ConformanceCase = ConformanceCase {
    name: "RunTestWatchContextCancel",
    summary: "a watch canceled at once delivers nothing, not even an error",
    run: |mode| {
        let mut h = harness(mode);
        let id = h.watch(in_namespace("not-existing", watch_options(Rv::Zero)));
        h.stop_watch(id);
        pod("not-existing", "foo").write(&mut h);
        h.advance(SimDuration::from_secs(1));
        ensure_stream(&h, id, &[])?;
        h.check_oracles()
    },
};

/// `RunTestWatcherTimeout`: 50 watchers that never read must not stall a reading watcher:
/// each of 22 creates reaches it, all within 12.5 s (250 ms per stalled watcher).
///
/// Covered in both modes. With the cache, the stalled watchers fill their buffers and the
/// dispatcher terminates them once its time budget runs out; without it, each stream buffers
/// on its own. The 50 stalled watchers are a second client that stops reading.
pub(super) const WATCHER_TIMEOUT: ConformanceCase = ConformanceCase {
    name: "RunTestWatcherTimeout",
    summary: "watchers that never read do not block one that does",
    run: watcher_timeout,
};

fn watcher_timeout(mode: Mode) -> Result<(), String> {
    const STALLED_WATCHERS: usize = 50;
    const STALLED_CLIENT: usize = CLIENT + 1;
    let mut h = harness(mode);
    let list = h.list(ListOptions::at(Rv::Unset));
    let start = h.page(list).resource_version;
    let options = in_namespace("test-ns", watch_options(Rv::At(start)));
    for _ in 0..STALLED_WATCHERS {
        h.watch_as(STALLED_CLIENT, options.clone());
    }
    h.server
        .set_client_reading(h.now, &mut h.etcd, STALLED_CLIENT, false);
    let reading = h.watch(options);
    let started = h.now;
    for i in 0..22 {
        let created = h.write(&format!("test-ns/foo-{i}"), "x", 0);
        let want = WatchEvent::Added(created);
        wait_for(&mut h, SimDuration::from_secs(30), |h| {
            h.events(reading).last() == Some(&want)
        })?;
    }
    let waited = h.now.saturating_since(started);
    let limit = SimDuration::from_millis(250 * STALLED_WATCHERS as u64);
    ensure(waited <= limit, || format!("took {waited}, limit {limit}"))?;
    ensure(h.events(reading).len() == 22, || {
        format!("{:?}", h.stream(reading))
    })?;
    h.check_oracles()
}

/// `RunTestWatchInitializationSignal`: establishing a watch signals the request's
/// initialization at once (API priority and fairness releases its seat).
///
/// The model has no priority and fairness; the observable counterpart is that a watch from a
/// known RV is registered synchronously: no answer, no rejection, and a write in the same
/// instant reaches it. Not covered: the flow-control signal itself.
pub(super) const WATCH_INITIALIZATION_SIGNAL: ConformanceCase = ConformanceCase {
    name: "RunTestWatchInitializationSignal",
    summary: "a watch is established at once, without waiting",
    run: |mode| {
        let mut h = harness(mode);
        let (_, id) = watch_after_create(&mut h);
        ensure_stream(&h, id, &[])?;
        let updated = pod("test-ns", "foo").updated().write(&mut h);
        ensure_events(&h, id, &[WatchEvent::Modified(updated)])?;
        h.check_oracles()
    },
};
