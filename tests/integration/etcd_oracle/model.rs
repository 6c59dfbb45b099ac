//! What a sequence is made of: steps, their answers, watch stream items, and the seeded
//! generator of random steps.
//!
//! Every revision here is sequence-relative: the fake's numbering, where the sequence starts at
//! revision 1. The real side adds its offset on the way out and takes it off on the way back.

use informer_sim::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, EtcdError, Event, KeyRange, Op, RangeRequest,
    RangeResponse, Revision, TxnRequest, TxnResponse, WatchId, WatchRequest,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One operation of a sequence. Watches are named by their opening order in the sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// `/v3/kv/put`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// Whether to return the previous state.
        prev_kv: bool,
    },
    /// `/v3/kv/deleterange`.
    Delete {
        /// The keys.
        range: KeyRange,
        /// Whether to return the deleted states.
        prev_kv: bool,
    },
    /// `/v3/kv/txn`.
    Txn(TxnRequest),
    /// `/v3/kv/range`.
    Range(RangeRequest),
    /// `/v3/kv/compaction` (physical).
    Compact {
        /// The revision compacted at.
        revision: Revision,
    },
    /// A `create_request` on a new `/v3/watch` stream.
    Watch(WatchRequest),
    /// A `cancel_request` for the watch.
    Cancel {
        /// Which watch of the sequence.
        watch: usize,
    },
    /// A `progress_request` on the watch's stream.
    RequestProgress {
        /// Which watch of the sequence.
        watch: usize,
    },
    /// One periodic progress notification (`--experimental-watch-progress-notify-interval`).
    ProgressTick,
}

/// The direct answer to a step. Watch steps answer on their streams instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Put, delete and txn, as a txn answer (a put or delete is a one-operation txn).
    Txn(Result<TxnResponse, EtcdError>),
    /// A range.
    Range(Result<RangeResponse, EtcdError>),
    /// A compaction: the header revision.
    Compact(Result<Revision, EtcdError>),
    /// The answer is on the watch streams.
    Streamed,
}

/// One item of a watch stream. Events are flattened: how real etcd batches a catch-up into
/// messages is its own business; every revision's events still arrive together and in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamItem {
    /// The watch was created; the header revision.
    Created {
        /// The store revision at creation.
        revision: Revision,
    },
    /// One event.
    Event(Event),
    /// A progress notification, requested or periodic; the header revision.
    Progress {
        /// The notified revision.
        revision: Revision,
    },
    /// Canceled because its next revision was compacted.
    Compacted {
        /// The store's compact revision.
        compact_revision: Revision,
    },
    /// Canceled at the client's request.
    Canceled,
}

impl StreamItem {
    /// Whether nothing can follow this item on its stream.
    pub fn ends_stream(&self) -> bool {
        matches!(self, StreamItem::Compacted { .. } | StreamItem::Canceled)
    }
}

/// One step with real etcd's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The step.
    pub step: Step,
    /// Real etcd's answer.
    pub reply: Reply,
}

/// A recorded real etcd session: a fresh etcd, so its revisions are real etcd's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The `etcd --version` first line of the recording etcd.
    pub etcd_version: String,
    /// The generator seed.
    pub seed: u64,
    /// Every step with its answer.
    pub exchanges: Vec<Exchange>,
    /// Every watch's whole stream, by watch number.
    pub streams: Vec<Vec<StreamItem>>,
}

const KEYS: [&str; 6] = ["a", "b", "b/1", "b/2", "c", "d"];
const MAX_OPEN_WATCHES: usize = 4;

/// The seeded random step generator of one sequence. It reads the fake (never the real etcd)
/// to aim compares and revisions at interesting values.
pub struct Generator {
    rng: ChaCha8Rng,
    prefix: String,
    ops_left: usize,
    progress_notify: Vec<bool>,
}

impl Generator {
    /// A sequence of `ops` random steps on keys under `prefix`, then a cancel per open watch.
    pub fn new(seed: u64, prefix: String, ops: usize) -> Generator {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            prefix,
            ops_left: ops,
            progress_notify: Vec::new(),
        }
    }

    /// The next step, `None` once the sequence is over.
    pub fn next_step(&mut self, fake: &Etcd) -> Option<Step> {
        let open: Vec<usize> = (0..self.progress_notify.len())
            .filter(|&watch| fake.is_watching(watch as WatchId))
            .collect();
        if self.ops_left == 0 {
            return open.first().map(|&watch| Step::Cancel { watch });
        }
        self.ops_left -= 1;
        // Rare: on real etcd a tick waits for the next periodic notification.
        let ticking = open.iter().any(|&watch| self.progress_notify[watch]);
        if ticking && self.rng.random_ratio(1, 150) {
            return Some(Step::ProgressTick);
        }
        Some(match self.rng.random_range(0..100) {
            0..24 => Step::Put {
                key: self.key(),
                value: self.value(),
                prev_kv: self.rng.random_bool(0.5),
            },
            24..32 => Step::Delete {
                range: self.range(),
                prev_kv: self.rng.random_bool(0.5),
            },
            32..56 => Step::Txn(self.txn(fake)),
            56..79 => Step::Range(self.range_request(fake)),
            79..84 => Step::Compact {
                revision: self.compact_revision(fake),
            },
            84..92 if open.len() < MAX_OPEN_WATCHES => self.watch(fake),
            92..95 if !open.is_empty() => Step::Cancel {
                watch: open[self.rng.random_range(0..open.len())],
            },
            95..100 if !open.is_empty() => Step::RequestProgress {
                watch: open[self.rng.random_range(0..open.len())],
            },
            _ => Step::Range(self.range_request(fake)),
        })
    }

    fn key(&mut self) -> String {
        let name = KEYS[self.rng.random_range(0..KEYS.len())];
        format!("{}{name}", self.prefix)
    }

    /// Short values, empty and non-UTF-8 ones included.
    fn value(&mut self) -> Vec<u8> {
        let len = self.rng.random_range(0..6);
        (0..len).map(|_| self.rng.random()).collect()
    }

    fn range(&mut self) -> KeyRange {
        let prefix = self.prefix.clone();
        match self.rng.random_range(0..6) {
            0 | 1 => KeyRange::single(&self.key()),
            2 => KeyRange::prefix(&prefix),
            3 => KeyRange::prefix(&format!("{prefix}b/")),
            4 => KeyRange::between(&format!("{prefix}a"), &format!("{prefix}c")),
            // Every key from here on: later sequences' keys sort after and do not exist yet.
            _ => KeyRange::between(&self.key(), "\0"),
        }
    }

    /// A revision near the interesting edges: the compact revision, the current one, the
    /// future, or anywhere in between.
    fn revision(&mut self, fake: &Etcd) -> Revision {
        let current = fake.revision();
        let compact = fake.compact_revision();
        let revision = match self.rng.random_range(0..6) {
            0 => current,
            1 => current + 1,
            2 => compact,
            3 => compact.saturating_sub(1),
            4 => compact + 1,
            _ => self.rng.random_range(1..=current),
        };
        revision.max(1)
    }

    fn range_request(&mut self, fake: &Etcd) -> RangeRequest {
        RangeRequest {
            range: self.range(),
            revision: match self.rng.random_bool(0.4) {
                true => 0,
                false => self.revision(fake),
            },
            limit: match self.rng.random_bool(0.6) {
                true => 0,
                false => self.rng.random_range(1..4),
            },
        }
    }

    fn compact_revision(&mut self, fake: &Etcd) -> Revision {
        match self.rng.random_range(0..4) {
            0 => self.revision(fake),
            _ => self
                .rng
                .random_range(fake.compact_revision().max(1)..=fake.revision()),
        }
    }

    fn watch(&mut self, fake: &Etcd) -> Step {
        let progress_notify = self.rng.random_bool(0.5);
        self.progress_notify.push(progress_notify);
        Step::Watch(WatchRequest {
            range: self.range(),
            start_revision: match self.rng.random_bool(0.3) {
                true => 0,
                false => self.revision(fake).min(fake.revision() + 2),
            },
            prev_kv: self.rng.random_bool(0.6),
            progress_notify,
        })
    }

    fn txn(&mut self, fake: &Etcd) -> TxnRequest {
        let compares = self.rng.random_range(0..3);
        let success = self.rng.random_range(0..4);
        let failure = self.rng.random_range(0..3);
        TxnRequest {
            compare: (0..compares).map(|_| self.compare(fake)).collect(),
            success: self.branch(fake, success),
            failure: self.branch(fake, failure),
        }
    }

    /// Deliberate difference: etcd 3.4 lets a branch put a key and delete it with an
    /// open-ended range (`range_end` "\0": its duplicate-key check reads that as an empty
    /// interval), and then records the key as put and deleted at one revision. The fake rejects
    /// it as `DuplicateKey`, the rule for every other range. kube-apiserver's txns touch one key,
    /// so such branches are not generated: the delete is narrowed to its first key.
    fn branch(&mut self, fake: &Etcd, len: usize) -> Vec<Op> {
        let mut ops: Vec<Op> = (0..len).map(|_| self.op(fake)).collect();
        let puts: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect();
        for op in &mut ops {
            if let Op::DeleteRange { range, .. } = op
                && range.range_end.as_deref() == Some("\0")
                && puts.iter().any(|key| range.contains(key))
            {
                range.range_end = None;
            }
        }
        ops
    }

    /// A compare whose value is often the key's actual one, so both branches run.
    fn compare(&mut self, fake: &Etcd) -> Compare {
        let key = self.key();
        let target = [
            CompareTarget::Mod,
            CompareTarget::Create,
            CompareTarget::Version,
        ][self.rng.random_range(0..3)];
        let result = [
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Greater,
            CompareResult::Less,
        ][self.rng.random_range(0..4)];
        let kv = fake
            .range(&RangeRequest {
                range: KeyRange::single(&key),
                revision: 0,
                limit: 0,
            })
            .expect("the latest revision is readable")
            .kvs
            .pop();
        let actual = kv.map_or(0, |kv| match target {
            CompareTarget::Mod => kv.mod_revision,
            CompareTarget::Create => kv.create_revision,
            CompareTarget::Version => kv.version,
        });
        let value = match self.rng.random_range(0..5) {
            0 => 0,
            1 | 2 => actual,
            3 => actual + 1,
            _ => actual.saturating_sub(1),
        };
        Compare {
            key,
            target,
            result,
            value,
        }
    }

    fn op(&mut self, fake: &Etcd) -> Op {
        match self.rng.random_range(0..20) {
            0..9 => Op::Put {
                key: self.key(),
                value: self.value(),
                prev_kv: self.rng.random_bool(0.5),
            },
            9..13 => Op::DeleteRange {
                range: self.range(),
                prev_kv: self.rng.random_bool(0.5),
            },
            _ => Op::Range(self.range_request(fake)),
        }
    }
}
