//! Watches over data that does not decode.
//!
//! Upstream corrupts data by swapping the storage transformer; here the corrupt data is a
//! value written with bytes the codec cannot read ([`Harness::write_raw`]). Upstream runs
//! these cases only against etcd3. With the cache, the cacher's own etcd watch reads the
//! corrupt write first, as an internal error: for 30 s its reflector re-watches from the RV
//! before it and meets it again, the cache ready but frozen, so a client watch is accepted and
//! gets nothing of the corrupt range (`MaxInternalErrorRetryDuration`). Then the cache
//! re-initializes: every watch is closed, and the relist fails on the same object, so the
//! cache stays pending and watches are refused with 429; once the object is deleted, the next
//! relist succeeds and a watch from before it is too old.

use super::{
    ConformanceCase, Mode, ensure, ensure_stream, harness, is_rejected_too_many_requests, pod,
};
use crate::api::{ListOptions, ResourceVersionParam as Rv};
use crate::object::ResourceVersion;
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::{Harness, watch_options};

const CORRUPT: &[u8] = b"corrupt";

/// Whether the corrupt object is still stored when the cache re-initializes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relist {
    /// It is: every relist fails and the cache stays pending.
    Fails,
    /// It was deleted: the relist succeeds, and a watch from before it is too old (410).
    Succeeds,
}

/// What a watch from `from` must get once the data is corrupt: without the cache an ERROR
/// 500 then the close. With it: nothing while the cacher re-watches (then the close when the
/// cache re-initializes), or a 429 refusal once it is pending; and after the re-watches' 30 s
/// and the re-initialization attempts that follow, what `relist` says.
fn ensure_corrupt_watch_fails(
    h: &mut Harness,
    mode: Mode,
    from: ResourceVersion,
    relist: Relist,
) -> Result<(), String> {
    let id = h.watch(watch_options(Rv::At(from)));
    if mode == Mode::NoCache {
        ensure_stream(h, id, &["ERROR 500", "CLOSED"])?;
        return h.check_oracles();
    }
    let frozen = h.server.cache_ready() == Some(true);
    if frozen {
        ensure_stream(h, id, &[])?;
    } else {
        ensure_refused(h, id, "while pending")?;
    }
    h.advance(SimDuration::from_secs(32));
    if frozen {
        ensure_stream(h, id, &["CLOSED"])?;
    }
    let again = h.watch(watch_options(Rv::At(from)));
    match relist {
        Relist::Fails => ensure_refused(h, again, "after the failed relists")?,
        Relist::Succeeds => ensure_stream(h, again, &["ERROR 410", "CLOSED"])?,
    }
    h.check_oracles()
}

/// Stream `id` is exactly one 429 refusal.
fn ensure_refused(h: &Harness, id: u64, when: &str) -> Result<(), String> {
    let lines = h.stream(id);
    let refused = lines.len() == 1 && is_rejected_too_many_requests(&lines[0]);
    ensure(refused, || format!("{when}: {lines:?}"))
}

/// `RunTestWatchError`: a watch whose first event does not decode gets an ERROR event.
/// Covered: the ERROR (500) and the close. Not covered: the transformer swap itself.
pub(super) const WATCH_ERROR: ConformanceCase = ConformanceCase {
    name: "RunTestWatchError",
    summary: "an event that does not decode ends the watch with an ERROR",
    run: |mode| {
        let mut h = harness(mode);
        let list = h.list(ListOptions::at(Rv::Zero));
        let start = h.page(list).resource_version;
        h.write_raw(&pod("test-ns", "foo").key(), CORRUPT.to_vec());
        ensure_corrupt_watch_fails(&mut h, mode, start, Relist::Fails)
    },
};

/// `RunTestWatchWithUnsafeDelete`: deleting an object whose data is corrupt sends the watch
/// an ERROR, since the DELETED event's previous object does not decode.
///
/// The object is overwritten with corrupt bytes and the watch starts after that write, so its
/// first event is the delete. Not covered: the model has no guarded delete path, so the
/// "normal delete fails, unsafe delete succeeds" half is absent (every delete is
/// unconditional), and the error is a 500 rather than `StoreReadError` with upstream's message.
pub(super) const WATCH_WITH_UNSAFE_DELETE: ConformanceCase = ConformanceCase {
    name: "RunTestWatchWithUnsafeDelete",
    summary: "the delete of a corrupt object ends the watch with an ERROR",
    run: |mode| {
        let mut h = harness(mode);
        let object = pod("test-ns", "foo");
        object.write(&mut h);
        h.write_raw(&object.key(), CORRUPT.to_vec());
        let corrupted_at = h.etcd.revision();
        h.delete(&object.key());
        ensure_corrupt_watch_fails(&mut h, mode, corrupted_at, Relist::Succeeds)
    },
};

/// `RunWatchErrorIsBlockingFurtherEvents`: after the ERROR for an object that does not decode,
/// no later event (the valid `baz`) follows, on any of 10 concurrent watches.
/// Covered: each of the 10 streams is exactly the ERROR and the close.
pub(super) const WATCH_ERROR_IS_BLOCKING_FURTHER_EVENTS: ConformanceCase = ConformanceCase {
    name: "RunWatchErrorIsBlockingFurtherEvents",
    summary: "no event follows a watch's ERROR",
    run: |mode| {
        let mut h = harness(mode);
        let first = pod("test", "foo").write(&mut h);
        h.write_raw(&pod("test", "bar").key(), CORRUPT.to_vec());
        pod("test", "baz").write(&mut h);
        (0..10).try_for_each(|_| {
            ensure_corrupt_watch_fails(&mut h, mode, first.resource_version, Relist::Fails)
        })
    },
};
