//! Writers: kube-apiserver-style create, update and delete with compare-and-swap.
//!
//! A write reads the object, "thinks" for a while (the window in which another writer can
//! change it), then commits with a compare on the `mod_revision` it read. On a conflict it
//! retries from the fresh state the failed transaction returned, as `GuaranteedUpdate` does.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::etcd::{
    Compare, CompareResult, CompareTarget, KeyRange, KeyValue, Op, OpResponse, RangeRequest,
    Revision, TxnRequest, TxnResponse,
};
use crate::object::Object;
use crate::scenario::{WorkloadConfig, node_name};
use crate::sim::RngStream;

/// The etcd key prefix of the simulated resource.
pub const RESOURCE_PREFIX: &str = "/registry/pods/";

/// How many times a conflicting write is retried before the writer gives up.
const CONFLICT_RETRIES_MAX: u32 = 5;

/// What a writer means to do to one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Create with these labels and payload (`storage.Create`), unscheduled.
    Create {
        /// Labels.
        labels: BTreeMap<String, String>,
        /// Payload.
        value: u64,
    },
    /// Replace labels and payload (`GuaranteedUpdate`), bound to `node` (`""`: unscheduled).
    Update {
        /// Labels.
        labels: BTreeMap<String, String>,
        /// Payload.
        value: u64,
        /// The pod's `spec.nodeName` (not written out while unscheduled, so runs without
        /// nodes trace as before).
        #[serde(skip_serializing_if = "String::is_empty")]
        node: String,
    },
    /// Delete (`storage.Delete` with a revision precondition).
    Delete,
}

/// A write in progress: the key, what was read, and what to do.
#[derive(Clone, Debug, Serialize)]
pub struct PendingWrite {
    /// The etcd key.
    pub key: String,
    /// The `mod_revision` the write is conditional on (0: must not exist).
    pub expected_mod_revision: Revision,
    /// What to do.
    pub intent: Intent,
    /// Conflicts so far.
    pub conflicts: u32,
}

/// What became of a commit attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOutcome {
    /// Written at this revision.
    Committed(Revision),
    /// The object changed meanwhile; retry with the fresh state.
    Conflict,
    /// A create found the key taken (`KeyExists`).
    AlreadyExists,
    /// An update or delete found the key gone (`NotFound`).
    NotFound,
    /// Too many conflicts in a row.
    GaveUp,
}

/// The etcd key of object number `index`.
pub fn object_key(config: &WorkloadConfig, index: u32) -> String {
    format!(
        "{RESOURCE_PREFIX}ns-{}/obj-{index}",
        index % config.namespaces
    )
}

/// Reads a random key and decides what to do with it.
pub fn plan_write(
    config: &WorkloadConfig,
    current: Option<&KeyValue>,
    key: String,
    next_value: u64,
    rng: &mut RngStream,
) -> PendingWrite {
    let labels = random_labels(config, rng);
    let (expected_mod_revision, intent) = match current {
        None => (
            0,
            Intent::Create {
                labels,
                value: next_value,
            },
        ),
        Some(kv) if rng.chance(config.delete_probability) => (kv.mod_revision, Intent::Delete),
        Some(kv) => (
            kv.mod_revision,
            Intent::Update {
                labels,
                value: next_value,
                node: bound_node(config, kv, rng),
            },
        ),
    };
    PendingWrite {
        key,
        expected_mod_revision,
        intent,
        conflicts: 0,
    }
}

/// The node an updated pod is bound to: the one it has, else (with nodes) a random one, as
/// the scheduler binds a pending pod (`spec.nodeName` never changes once set).
fn bound_node(config: &WorkloadConfig, current: &KeyValue, rng: &mut RngStream) -> String {
    if config.nodes == 0 {
        return String::new();
    }
    let held = Object::decode(
        "",
        current.mod_revision,
        current.create_revision,
        &current.value,
    )
    .map(|object| object.node_name.to_string())
    .unwrap_or_default();
    if held.is_empty() {
        node_name(rng.below(u64::from(config.nodes)))
    } else {
        held
    }
}

/// Labels as the workload draws them: `app` always, `tier` sometimes.
pub fn random_labels(config: &WorkloadConfig, rng: &mut RngStream) -> BTreeMap<String, String> {
    let app = format!("app-{}", rng.below(u64::from(config.label_values)));
    let mut labels = BTreeMap::from([("app".to_owned(), app)]);
    if rng.chance(config.second_label_probability) {
        labels.insert("tier".to_owned(), format!("tier-{}", rng.below(2)));
    }
    labels
}

/// The transaction for a pending write: compare the mod revision, then put or delete; on
/// failure read the key (kube-apiserver `OptimisticPut` / `OptimisticDelete`).
pub fn commit_txn(write: &PendingWrite) -> TxnRequest {
    let compare = Compare {
        key: write.key.clone(),
        target: CompareTarget::Mod,
        result: CompareResult::Equal,
        value: write.expected_mod_revision,
    };
    let success = match &write.intent {
        Intent::Create { labels, value } => Op::Put {
            key: write.key.clone(),
            value: Object::encode_body(labels, *value),
            prev_kv: false,
        },
        Intent::Update {
            labels,
            value,
            node,
        } => Op::Put {
            key: write.key.clone(),
            value: Object::encode_body_on_node(labels, *value, node),
            prev_kv: false,
        },
        Intent::Delete => Op::DeleteRange {
            range: KeyRange::single(&write.key),
            prev_kv: true,
        },
    };
    let read = Op::Range(RangeRequest {
        range: KeyRange::single(&write.key),
        revision: 0,
        limit: 0,
    });
    TxnRequest {
        compare: vec![compare],
        success: vec![success],
        failure: vec![read],
    }
}

/// Interprets the answer to [`commit_txn`], updating `write` for a retry on conflict.
/// Mirrors `GuaranteedUpdate`: a conflict reloads the state from the failure branch's read.
pub fn after_commit(write: &mut PendingWrite, response: &TxnResponse) -> CommitOutcome {
    if response.succeeded {
        return CommitOutcome::Committed(response.header_revision);
    }
    let current = match response.responses.first() {
        Some(OpResponse::Range(range)) => range.kvs.first(),
        _ => None,
    };
    match (&write.intent, current) {
        (Intent::Create { .. }, _) => CommitOutcome::AlreadyExists,
        (_, None) => CommitOutcome::NotFound,
        (_, Some(_)) if write.conflicts >= CONFLICT_RETRIES_MAX => CommitOutcome::GaveUp,
        (_, Some(kv)) => {
            write.conflicts += 1;
            write.expected_mod_revision = kv.mod_revision;
            CommitOutcome::Conflict
        }
    }
}

impl std::fmt::Display for PendingWrite {
    /// `CREATE ns-0/obj-3`, `UPDATE ... if mod_revision=7`, `DELETE ... if mod_revision=7`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.intent {
            Intent::Create { .. } => "CREATE",
            Intent::Update { .. } => "UPDATE",
            Intent::Delete => "DELETE",
        };
        let key = self.key.strip_prefix(RESOURCE_PREFIX).unwrap_or(&self.key);
        write!(
            f,
            "{verb} {key} if mod_revision={}",
            self.expected_mod_revision
        )
    }
}

impl std::fmt::Display for CommitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitOutcome::Committed(revision) => write!(f, "rev {revision}"),
            CommitOutcome::Conflict => f.write_str("conflict, retry"),
            CommitOutcome::AlreadyExists => f.write_str("already exists"),
            CommitOutcome::NotFound => f.write_str("not found"),
            CommitOutcome::GaveUp => f.write_str("gave up after conflicts"),
        }
    }
}
