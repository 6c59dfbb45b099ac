//! Bookmarks and progress notifications.

use super::{ConformanceCase, Mode, ensure, ensure_stream, harness, in_namespace, pod};
use crate::api::{
    Field, FieldSelector, ListOptions, ResourceVersionParam as Rv, WatchEvent, WatchOptions,
};
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::watch_options;

/// A watch from `resource_version` that allows bookmarks and ends after `timeout_ms`.
fn bookmark_watch(resource_version: Rv, timeout_ms: u64) -> WatchOptions {
    WatchOptions {
        allow_watch_bookmarks: true,
        timeout_ms: Some(timeout_ms),
        ..watch_options(resource_version)
    }
}

/// `RunOptionalTestProgressNotify`: a watch that asked for progress notifications, with no
/// events after its RV, gets a BOOKMARK carrying only an RV at least as new as its start.
///
/// Upstream runs it against the etcd3 store with the storage option `ProgressNotify`, which
/// only the cacher's own watch sets (`lister_watcher.go`); through the API a client cannot ask
/// for it (`isInitialEventsEndBookmarkRequired`: "the etcd3 impl doesn't support notification
/// for external clients"). So with the cache the client's `allowWatchBookmarks` watch gets the
/// cacher's heartbeat bookmark a minute later carrying the progress revision (exactly
/// `BOOKMARK 3`, after a write outside the resource, upstream's `increaseRV`), and without the
/// cache it gets nothing: the API's side of the same storage behaviour.
pub(super) const PROGRESS_NOTIFY: ConformanceCase = ConformanceCase {
    name: "RunOptionalTestProgressNotify",
    summary: "an etcd progress notification reaches a cached client as a bookmark",
    run: |mode| {
        let mut h = harness(mode);
        let stored = pod("test-ns", "name").write(&mut h);
        h.bump_global_revision();
        let id = h.watch(bookmark_watch(Rv::At(stored.resource_version), 600_000));
        // Two ticks: etcd 3.6 skips a watch on the first tick after it got events.
        h.progress_tick();
        h.progress_tick();
        h.advance(SimDuration::from_secs(61));
        let expected: &[&str] = match mode {
            Mode::Cache => &["BOOKMARK 3"],
            Mode::NoCache => &[],
        };
        ensure_stream(&h, id, expected)?;
        h.check_oracles()
    },
};

/// `RunTestWatchDispatchBookmarkEvents`: a watch with a 3 s timeout on one pod, while a pod in
/// another namespace is created, gets a bookmark within those 3 s only if it allowed
/// bookmarks and the storage makes them (upstream: the cacher does, etcd3 does not).
///
/// With the cache, the bookmark due 2 s before the deadline carries the other namespace's
/// write (RV 3); without, etcd sends no progress notification in 3 s. Both rows then close at
/// the timeout. A tick that lands exactly on the pre-deadline instant re-arms it (as
/// upstream's `nextBookmarkTime` does, `now` not being after it), so the bookmark may repeat. The watch on the key `foo` is a namespace watch with `metadata.name=foo`.
pub(super) const WATCH_DISPATCH_BOOKMARK_EVENTS: ConformanceCase = ConformanceCase {
    name: "RunTestWatchDispatchBookmarkEvents",
    summary: "the cacher sends a bookmark before the deadline only if bookmarks are allowed",
    run: |mode| {
        let rows = [false, true];
        super::run_rows(
            &rows,
            |allow| format!("allowWatchBookmarks={allow}"),
            |&allow| {
                let mut h = harness(mode);
                let stored = pod("test-ns", "foo").write(&mut h);
                let options = WatchOptions {
                    allow_watch_bookmarks: allow,
                    field_selector: Some(FieldSelector::equal(Field::MetadataName, "foo")),
                    ..bookmark_watch(Rv::At(stored.resource_version), 3_000)
                };
                let id = h.watch(in_namespace("test-ns", options));
                pod("other-ns", "foo").write(&mut h);
                h.advance(SimDuration::from_secs(3));
                let lines = h.stream(id);
                let bookmarks = lines
                    .iter()
                    .take_while(|line| *line == "BOOKMARK 3")
                    .count();
                let expect_bookmark = allow && mode == Mode::Cache;
                let closed = lines.last().map(String::as_str) == Some("CLOSED");
                let well_formed = closed && bookmarks + 1 == lines.len();
                ensure(well_formed && (bookmarks > 0) == expect_bookmark, || {
                    format!("got {lines:?}, bookmark expected: {expect_bookmark}")
                })?;
                h.check_oracles()
            },
        )
    },
};

/// `RunTestOptionalWatchBookmarksWithCorrectResourceVersion`: while 100 pods are created 10 ms
/// apart, a 3 s watch with bookmarks sees every object event newer than anything before it,
/// every bookmark at least as new, at least one bookmark, and then the close.
///
/// Upstream runs it only against the cacher, whose own bookmark comes 2 s before the
/// deadline (etcd's progress notifications, here every 100 ms, only move the cache RV).
/// Without the cache the RV checks still hold and no bookmark comes: a client's etcd3 watch
/// gets no progress notifications.
pub(super) const WATCH_BOOKMARKS_WITH_CORRECT_RESOURCE_VERSION: ConformanceCase = ConformanceCase {
    name: "RunTestOptionalWatchBookmarksWithCorrectResourceVersion",
    summary: "bookmark RVs never go back and object RVs always go forward",
    run: bookmarks_with_correct_resource_version,
};

fn bookmarks_with_correct_resource_version(mode: Mode) -> Result<(), String> {
    let mut h = harness(mode);
    let list = h.list(ListOptions::at(Rv::Unset));
    let start = h.page(list).resource_version;
    let id = h.watch(in_namespace(
        "test-ns",
        bookmark_watch(Rv::At(start), 3_000),
    ));
    for i in 0..100 {
        h.write(&format!("test-ns/foo-{i}"), "x", 0);
        h.advance(SimDuration::from_millis(10));
        if i % 10 == 9 {
            h.progress_tick();
        }
    }
    h.advance(SimDuration::from_secs(3));
    let mut last = 0;
    let mut bookmarks = 0;
    for event in h.events(id) {
        let resource_version = event.resource_version().ok_or("an ERROR event")?;
        if matches!(event, WatchEvent::Bookmark { .. }) {
            bookmarks += 1;
            ensure(resource_version >= last, || {
                format!("bookmark at {resource_version} after {last}")
            })?;
        } else {
            ensure(resource_version > last, || {
                format!("event at {resource_version} after {last}")
            })?;
        }
        last = resource_version;
    }
    ensure((bookmarks > 0) == (mode == Mode::Cache), || {
        format!("{bookmarks} bookmarks in mode {mode}")
    })?;
    ensure(
        h.stream(id).last().map(String::as_str) == Some("CLOSED"),
        || "the watch did not close at its timeout".to_owned(),
    )?;
    h.check_oracles()
}
