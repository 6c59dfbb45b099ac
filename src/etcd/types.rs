//! etcd's request and response types, as the v3 API defines them (`mvccpb.KeyValue`,
//! `RangeRequest`, `TxnRequest`, `WatchResponse`), reduced to what kube-apiserver uses.

use serde::{Deserialize, Serialize};

/// A store revision. A new store is at revision 1 (SPEC §1.1).
pub type Revision = u64;

/// The etcd release line the fake behaves as where releases differ (SPEC §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtcdRelease {
    /// etcd 3.4.23, Debian's and the real-etcd oracle's: a compaction loses a delete at exactly
    /// the compact revision (etcd#18089, fixed in 3.4.34); a progress request on a watch that
    /// is behind is answered once it caught up; periodic progress goes to every synced watch,
    /// even one whose start revision is still in the future.
    #[serde(rename = "3.4")]
    V3_4,
    /// etcd 3.6, the line Kubernetes HEAD runs: `keyIndex.compact` keeps the tombstone at the
    /// compact revision; a progress request covers the whole gRPC stream and is dropped unless
    /// every watch on it is synced and at or past its start revision (`progressIfSync`); a
    /// periodic progress notification is skipped for a watch that just got events (`sendLoop`).
    #[default]
    #[serde(rename = "3.6")]
    V3_6,
}

/// One gRPC watch stream; the watches a client opens with the same context share one.
pub type StreamId = u64;

/// One key's state at one revision (`mvccpb.KeyValue`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// Revision of the key's last creation.
    pub create_revision: Revision,
    /// Revision of the key's last modification.
    pub mod_revision: Revision,
    /// 1 on creation, +1 per modification; restarts at 1 after a delete and re-create.
    pub version: u64,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// A set of keys: one key, a half-open range, or every key from `key` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// The first key.
    pub key: String,
    /// `None`: just `key`; `Some("\0")`: every key `>= key`; `Some(end)`: `[key, end)`.
    pub range_end: Option<String>,
}

impl KeyRange {
    /// Exactly one key.
    pub fn single(key: &str) -> KeyRange {
        KeyRange {
            key: key.to_owned(),
            range_end: None,
        }
    }

    /// Every key that starts with `prefix` (clientv3 `WithPrefix`).
    pub fn prefix(prefix: &str) -> KeyRange {
        KeyRange {
            key: prefix.to_owned(),
            range_end: Some(prefix_end(prefix)),
        }
    }

    /// Every key in `[key, end)`.
    pub fn between(key: &str, end: &str) -> KeyRange {
        KeyRange {
            key: key.to_owned(),
            range_end: Some(end.to_owned()),
        }
    }

    /// Whether `candidate` is in the range.
    pub fn contains(&self, candidate: &str) -> bool {
        match self.range_end.as_deref() {
            None => candidate == self.key,
            Some("\0") => candidate >= self.key.as_str(),
            Some(end) => candidate >= self.key.as_str() && candidate < end,
        }
    }

    /// The same range starting at `key` instead (paging: `lastKey + "\0"`).
    pub fn starting_at(&self, key: &str) -> KeyRange {
        KeyRange {
            key: key.to_owned(),
            range_end: self.range_end.clone(),
        }
    }
}

/// The end of the prefix range (clientv3 `GetPrefixRangeEnd`): the prefix with its last byte
/// below 0xff incremented; all of the keyspace if there is none.
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).expect("ascii stays utf-8");
        }
    }
    "\0".to_owned()
}

/// A read of a key range (`RangeRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// Which keys.
    pub range: KeyRange,
    /// The revision to read at; 0 means the latest.
    pub revision: Revision,
    /// At most this many keys; 0 means no limit.
    pub limit: u64,
}

/// The answer to a range (`RangeResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The store revision when the answer was made, not the revision read at (SPEC §1.1).
    pub header_revision: Revision,
    /// The keys, sorted.
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched than `limit` allowed.
    pub more: bool,
    /// How many keys matched in all.
    pub count: u64,
}

/// What a compare looks at (`Compare.CompareTarget`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// `mod_revision`; 0 for an absent key.
    Mod,
    /// `create_revision`; 0 for an absent key.
    Create,
    /// `version`; 0 for an absent key.
    Version,
}

/// How a compare compares (`Compare.CompareResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
}

/// One guard of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key compared.
    pub key: String,
    /// The field compared.
    pub target: CompareTarget,
    /// The comparison.
    pub result: CompareResult,
    /// The number compared with.
    pub value: u64,
}

impl Compare {
    /// Whether the compare holds for the key's current state (`None`: absent, every field 0).
    pub fn holds(&self, kv: Option<&KeyValue>) -> bool {
        let actual = match self.target {
            CompareTarget::Mod => kv.map_or(0, |kv| kv.mod_revision),
            CompareTarget::Create => kv.map_or(0, |kv| kv.create_revision),
            CompareTarget::Version => kv.map_or(0, |kv| kv.version),
        };
        match self.result {
            CompareResult::Equal => actual == self.value,
            CompareResult::NotEqual => actual != self.value,
            CompareResult::Greater => actual > self.value,
            CompareResult::Less => actual < self.value,
        }
    }
}

/// One operation of a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A read.
    Range(RangeRequest),
    /// A write of one key.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
        /// Whether to return the previous state.
        prev_kv: bool,
    },
    /// A delete of every key in a range.
    DeleteRange {
        /// The keys.
        range: KeyRange,
        /// Whether to return the deleted states.
        prev_kv: bool,
    },
}

/// The answer to one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResponse {
    /// The answer to a read.
    Range(RangeResponse),
    /// The answer to a put.
    Put {
        /// The state before, if asked for and the key existed.
        prev_kv: Option<KeyValue>,
    },
    /// The answer to a delete.
    DeleteRange {
        /// How many keys were deleted.
        deleted: u64,
        /// The deleted states, if asked for.
        prev_kvs: Vec<KeyValue>,
    },
}

/// A transaction: if every compare holds, run `success`, else `failure` (`TxnRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    /// The guards.
    pub compare: Vec<Compare>,
    /// Run when every guard holds.
    pub success: Vec<Op>,
    /// Run otherwise.
    pub failure: Vec<Op>,
}

/// The answer to a transaction (`TxnResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    /// The store revision after the transaction.
    pub header_revision: Revision,
    /// Whether the success branch ran.
    pub succeeded: bool,
    /// One answer per operation of the branch that ran.
    pub responses: Vec<OpResponse>,
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// A key was created or modified (`kv.version == 1` means created).
    Put,
    /// A key was deleted.
    Delete,
}

/// One change seen by a watch (`mvccpb.Event`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub event_type: EventType,
    /// The new state; for a delete only the key and the deletion revision (`mod_revision`).
    pub kv: KeyValue,
    /// The state before, when the watch asked for it and it was not compacted away.
    pub prev_kv: Option<KeyValue>,
}

/// Identifies one watch on the store.
pub type WatchId = u64;

/// A request to open a watch (`WatchCreateRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// The keys watched.
    pub range: KeyRange,
    /// The first revision to deliver, inclusive; 0 means "events after now".
    pub start_revision: Revision,
    /// Whether events carry the previous state.
    pub prev_kv: bool,
    /// Whether the watch gets periodic progress notifications.
    pub progress_notify: bool,
}

/// One message on a watch stream (`WatchResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    /// The watch it belongs to.
    pub watch_id: WatchId,
    /// The store revision when the message was made.
    pub header_revision: Revision,
    /// What the message is.
    pub kind: WatchResponseKind,
}

/// The kinds of watch stream message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchResponseKind {
    /// The watch was created.
    Created,
    /// Events, whole revisions only, in revision order.
    Events(Vec<Event>),
    /// A progress notification: every event at or below the header revision has been sent.
    Progress,
    /// The watch's next revision was compacted away; the watch is gone (`ErrCompacted`).
    Compacted {
        /// The store's compact revision.
        compact_revision: Revision,
    },
    /// The watch was canceled at the client's request.
    Canceled,
}

impl std::fmt::Display for Event {
    /// `PUT /registry/pods/ns/a@5` or `DELETE /registry/pods/ns/a@6`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.event_type {
            EventType::Put => "PUT",
            EventType::Delete => "DELETE",
        };
        write!(f, "{verb} {}@{}", self.kv.key, self.kv.mod_revision)
    }
}

impl std::fmt::Display for WatchResponse {
    /// `watch 3: created`, `watch 3: events [PUT k@5, DELETE j@6]`, `watch 3: progress at 7`,
    /// `watch 3: compacted (compact revision 9)`, `watch 3: canceled`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "watch {}: ", self.watch_id)?;
        match &self.kind {
            WatchResponseKind::Created => f.write_str("created"),
            WatchResponseKind::Events(events) => {
                f.write_str("events [")?;
                for (index, event) in events.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{event}")?;
                }
                f.write_str("]")
            }
            WatchResponseKind::Progress => write!(f, "progress at {}", self.header_revision),
            WatchResponseKind::Compacted { compact_revision } => {
                write!(f, "compacted (compact revision {compact_revision})")
            }
            WatchResponseKind::Canceled => f.write_str("canceled"),
        }
    }
}

/// Errors of reads and compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EtcdError {
    /// The revision is below the compact revision (`ErrCompacted`).
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The revision is above the current revision (`ErrFutureRev`).
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// A transaction changes one key twice (`ErrDuplicateKey`).
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The watch does not exist.
    #[error("no such watch")]
    NoSuchWatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_holds_exactly_the_prefixed_keys() {
        let range = KeyRange::prefix("/registry/pods/");
        assert!(range.contains("/registry/pods/ns/a"));
        assert!(!range.contains("/registry/pods"));
        assert!(!range.contains("/registry/podsx"));
        assert!(!range.contains("/registry/services/ns/a"));
        assert_eq!(range.range_end.as_deref(), Some("/registry/pods0"));
    }

    #[test]
    fn single_and_open_ranges() {
        assert!(KeyRange::single("a").contains("a"));
        assert!(!KeyRange::single("a").contains("ab"));
        let open = KeyRange::between("b", "\0");
        assert!(open.contains("zzz") && !open.contains("a"));
    }
}
