//! A fake etcd with the semantics kube-apiserver relies on (SPEC §1).
//!
//! - One global revision, bumped once per transaction that changes something.
//! - Per key `create_revision`, `mod_revision` and `version`.
//! - Transactions with compares on those fields (kube-apiserver's `OptimisticPut`).
//! - Ranges at a revision with limit, `more` and `count`.
//! - Watches from an inclusive start revision: ordered, gap-free, whole revisions per message,
//!   canceled with the compact revision when their next revision was compacted away.
//! - Progress notifications, periodic and on request, only once every event at or below the
//!   notified revision has been sent.
//! - Compaction.
//! - Where etcd releases differ, the release line of [`EtcdRelease`]: 3.6 (what Kubernetes HEAD
//!   runs) by default, or 3.4.23 (what the real-etcd oracle runs).
//!
//! The store is a plain state machine: calls go in, watch responses come out of
//! [`Etcd::poll_response`]. It never reads a clock; the world calls [`Etcd::progress_tick`] on
//! its own timer.
//!
//! ```
//! use informer_sim::etcd::{Etcd, KeyRange, WatchRequest, WatchResponseKind};
//!
//! let mut etcd = Etcd::default();
//! let watch = etcd.watch(WatchRequest {
//!     range: KeyRange::prefix("/registry/pods/"),
//!     start_revision: 0,
//!     prev_kv: true,
//!     progress_notify: false,
//! });
//! etcd.put("/registry/pods/ns/a", b"v=1;").unwrap();
//! assert_eq!(etcd.revision(), 2);
//! let created = etcd.poll_response().unwrap();
//! assert_eq!(created.kind, WatchResponseKind::Created);
//! let events = etcd.poll_response().unwrap();
//! assert!(matches!(events.kind, WatchResponseKind::Events(ref e) if e.len() == 1));
//! assert_eq!(events.watch_id, watch);
//! ```

pub mod reference;
mod store;
#[cfg(test)]
mod tests;
mod types;
mod watch;

pub use types::*;

use std::collections::{BTreeMap, VecDeque};

use crate::bug::Bugs;
use store::MvccStore;
use watch::Watcher;

/// The fake etcd: an MVCC store plus its watches. The default is etcd 3.6 with no bug.
#[derive(Clone, Debug, Default)]
pub struct Etcd {
    release: EtcdRelease,
    store: MvccStore,
    watchers: BTreeMap<WatchId, Watcher>,
    next_watch_id: WatchId,
    next_stream_id: StreamId,
    outbox: VecDeque<WatchResponse>,
    bugs: Bugs,
}

impl Etcd {
    /// A new store at revision 1 that behaves as `release` and whose watches misbehave as
    /// `bugs` says.
    pub fn new(release: EtcdRelease, bugs: Bugs) -> Etcd {
        Etcd {
            release,
            bugs,
            ..Etcd::default()
        }
    }

    /// The release line the fake behaves as.
    pub fn release(&self) -> EtcdRelease {
        self.release
    }

    /// The current store revision.
    pub fn revision(&self) -> Revision {
        self.store.revision()
    }

    /// The revision history was last compacted at (0 if never).
    pub fn compact_revision(&self) -> Revision {
        self.store.compact_revision()
    }

    /// Reads a key range.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.store.range(request)
    }

    /// Runs a transaction, then lets every synced watch see its changes.
    pub fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        let before = self.store.revision();
        let response = self.store.txn(request)?;
        if self.store.revision() != before {
            self.sync_watchers();
        }
        Ok(response)
    }

    /// Writes one key unconditionally.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<TxnResponse, EtcdError> {
        let put = Op::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            prev_kv: false,
        };
        self.txn(&TxnRequest {
            compare: vec![],
            success: vec![put],
            failure: vec![],
        })
    }

    /// Deletes every key in a range unconditionally.
    pub fn delete_range(&mut self, range: KeyRange) -> Result<TxnResponse, EtcdError> {
        let delete = Op::DeleteRange {
            range,
            prev_kv: false,
        };
        self.txn(&TxnRequest {
            compare: vec![],
            success: vec![delete],
            failure: vec![],
        })
    }

    /// Compacts history at `revision`, then cancels every watch that still needed an older
    /// revision. Compacting at or below the current compact revision is `Compacted`; above the
    /// current revision, `FutureRevision`.
    pub fn compact(&mut self, revision: Revision) -> Result<Revision, EtcdError> {
        let keep_tombstone = self.release == EtcdRelease::V3_6;
        self.store.compact(revision, keep_tombstone)?;
        self.sync_watchers();
        Ok(self.store.revision())
    }

    /// Takes the next watch message, in the order the store made them.
    pub fn poll_response(&mut self) -> Option<WatchResponse> {
        self.outbox.pop_front()
    }
}
