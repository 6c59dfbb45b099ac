//! The fake etcd against the naive reference model: random operation sequences, every answer
//! compared, every watch stream checked by the history oracle.

use std::collections::BTreeMap;

use informer_sim::check::etcd_watch::WatchStreamOracle;
use informer_sim::check::truth::GroundTruth;
use informer_sim::etcd::reference::ReferenceEtcd;
use informer_sim::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, KeyRange, Op, RangeRequest, TxnRequest, WatchId,
    WatchRequest,
};
use proptest::prelude::*;

const KEYS: [&str; 5] = ["/r/a/1", "/r/a/2", "/r/b/1", "/r/b/2", "/s/x"];

#[derive(Clone, Debug)]
enum Action {
    Put {
        key: usize,
        value: u8,
    },
    Delete {
        key: usize,
    },
    DeletePrefix {
        b_side: bool,
    },
    /// A compare on a field against a value near the key's current one.
    Guarded {
        key: usize,
        target: u8,
        result: u8,
        delta: i8,
        then_delete: bool,
    },
    /// Two keys in one transaction.
    PutPair {
        first: usize,
        second: usize,
    },
    Range {
        prefix: bool,
        key: usize,
        back: u8,
        limit: u8,
    },
    Compact {
        back: u8,
    },
    Watch {
        prefix: bool,
        start: u8,
        prev_kv: bool,
    },
    Stall {
        watch: u8,
    },
    Resume {
        watch: u8,
    },
    RequestProgress {
        watch: u8,
    },
    ProgressTick,
    Cancel {
        watch: u8,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), any::<u8>()).prop_map(|(key, value)| Action::Put { key, value }),
        2 => key.clone().prop_map(|key| Action::Delete { key }),
        1 => any::<bool>().prop_map(|b_side| Action::DeletePrefix { b_side }),
        3 => (key.clone(), 0..3u8, 0..4u8, -1..2i8, any::<bool>()).prop_map(|(key, target, result, delta, then_delete)| Action::Guarded { key, target, result, delta, then_delete }),
        1 => (key.clone(), key.clone()).prop_map(|(first, second)| Action::PutPair { first, second }),
        2 => (any::<bool>(), key, 0..6u8, 0..3u8).prop_map(|(prefix, key, back, limit)| Action::Range { prefix, key, back, limit }),
        1 => (0..6u8).prop_map(|back| Action::Compact { back }),
        2 => (any::<bool>(), 0..12u8, any::<bool>()).prop_map(|(prefix, start, prev_kv)| Action::Watch { prefix, start, prev_kv }),
        1 => any::<u8>().prop_map(|watch| Action::Stall { watch }),
        2 => any::<u8>().prop_map(|watch| Action::Resume { watch }),
        1 => any::<u8>().prop_map(|watch| Action::RequestProgress { watch }),
        1 => Just(Action::ProgressTick),
        1 => any::<u8>().prop_map(|watch| Action::Cancel { watch }),
    ]
}

/// The fake, the naive reference, and the ground truth the runs use (fed the same writes, it
/// answers the same and holds the history the watch oracle reads).
struct Pair {
    fake: Etcd,
    reference: ReferenceEtcd,
    truth: GroundTruth,
    watches: BTreeMap<WatchId, WatchStreamOracle>,
}

impl Pair {
    fn txn(&mut self, request: TxnRequest) {
        let fake = self.fake.txn(&request);
        let reference = self.reference.txn(&request);
        assert_eq!(fake, reference, "txn {request:?}");
        assert_eq!(
            self.truth.txn(&request),
            reference,
            "truth: txn {request:?}"
        );
    }

    fn pick_watch(&self, index: u8) -> Option<WatchId> {
        let open: Vec<WatchId> = self
            .watches
            .keys()
            .copied()
            .filter(|id| self.fake.is_watching(*id))
            .collect();
        (!open.is_empty()).then(|| open[index as usize % open.len()])
    }

    fn current(&self, key: &str) -> [u64; 3] {
        let read = RangeRequest {
            range: KeyRange::single(key),
            revision: 0,
            limit: 0,
        };
        let kv = self
            .reference
            .range(&read)
            .expect("latest is readable")
            .kvs
            .into_iter()
            .next();
        kv.map_or([0; 3], |kv| {
            [kv.mod_revision, kv.create_revision, kv.version]
        })
    }

    fn apply(&mut self, action: &Action) {
        match *action {
            Action::Put { key, value } => {
                let put = Op::Put {
                    key: KEYS[key].to_owned(),
                    value: vec![value],
                    prev_kv: value % 2 == 0,
                };
                self.txn(TxnRequest {
                    compare: vec![],
                    success: vec![put],
                    failure: vec![],
                });
            }
            Action::Delete { key } => {
                let delete = Op::DeleteRange {
                    range: KeyRange::single(KEYS[key]),
                    prev_kv: true,
                };
                self.txn(TxnRequest {
                    compare: vec![],
                    success: vec![delete],
                    failure: vec![],
                });
            }
            Action::DeletePrefix { b_side } => {
                let prefix = if b_side { "/r/b/" } else { "/r/" };
                let delete = Op::DeleteRange {
                    range: KeyRange::prefix(prefix),
                    prev_kv: false,
                };
                self.txn(TxnRequest {
                    compare: vec![],
                    success: vec![delete],
                    failure: vec![],
                });
            }
            Action::Guarded {
                key,
                target,
                result,
                delta,
                then_delete,
            } => {
                let targets = [
                    CompareTarget::Mod,
                    CompareTarget::Create,
                    CompareTarget::Version,
                ];
                let results = [
                    CompareResult::Equal,
                    CompareResult::NotEqual,
                    CompareResult::Greater,
                    CompareResult::Less,
                ];
                let value = self.current(KEYS[key])[target as usize]
                    .saturating_add_signed(i64::from(delta));
                let compare = Compare {
                    key: KEYS[key].to_owned(),
                    target: targets[target as usize],
                    result: results[result as usize],
                    value,
                };
                let write = if then_delete {
                    Op::DeleteRange {
                        range: KeyRange::single(KEYS[key]),
                        prev_kv: true,
                    }
                } else {
                    Op::Put {
                        key: KEYS[key].to_owned(),
                        value: vec![7],
                        prev_kv: true,
                    }
                };
                let read = Op::Range(RangeRequest {
                    range: KeyRange::single(KEYS[key]),
                    revision: 0,
                    limit: 0,
                });
                self.txn(TxnRequest {
                    compare: vec![compare],
                    success: vec![write, read.clone()],
                    failure: vec![read],
                });
            }
            Action::PutPair { first, second } => {
                let put = |key: usize| Op::Put {
                    key: KEYS[key].to_owned(),
                    value: vec![1],
                    prev_kv: false,
                };
                self.txn(TxnRequest {
                    compare: vec![],
                    success: vec![put(first), put(second)],
                    failure: vec![],
                });
            }
            Action::Range {
                prefix,
                key,
                back,
                limit,
            } => {
                let range = if prefix {
                    KeyRange::prefix("/r/")
                } else {
                    KeyRange::single(KEYS[key])
                };
                let revision = match back {
                    0 => 0,
                    back => (self.reference.revision() + 2).saturating_sub(u64::from(back)),
                };
                let request = RangeRequest {
                    range,
                    revision,
                    limit: u64::from(limit),
                };
                assert_eq!(
                    self.fake.range(&request),
                    self.reference.range(&request),
                    "range {request:?}"
                );
            }
            Action::Compact { back } => {
                let revision = (self.reference.revision() + 1).saturating_sub(u64::from(back));
                let reference = self.reference.compact(revision);
                assert_eq!(self.fake.compact(revision), reference, "compact {revision}");
                assert_eq!(
                    self.truth.compact(revision),
                    reference,
                    "truth: compact {revision}"
                );
            }
            Action::Watch {
                prefix,
                start,
                prev_kv,
            } => {
                let range = if prefix {
                    KeyRange::prefix("/r/")
                } else {
                    KeyRange::single(KEYS[0])
                };
                let start_revision = match start {
                    0 => 0,
                    start => (self.reference.revision() + 3)
                        .saturating_sub(u64::from(start))
                        .max(1),
                };
                let resolved = if start_revision == 0 {
                    self.reference.revision() + 1
                } else {
                    start_revision
                };
                let id = self.fake.watch(WatchRequest {
                    range: range.clone(),
                    start_revision,
                    prev_kv,
                    progress_notify: true,
                });
                self.watches.insert(
                    id,
                    WatchStreamOracle::new(range, resolved).with_prev_kv(prev_kv),
                );
            }
            Action::Stall { watch } => {
                if let Some(id) = self.pick_watch(watch) {
                    self.fake.stall_watcher(id).expect("open");
                }
            }
            Action::Resume { watch } => {
                if let Some(id) = self.pick_watch(watch) {
                    self.fake.resume_watcher(id).expect("open");
                }
            }
            Action::RequestProgress { watch } => {
                if let Some(id) = self.pick_watch(watch) {
                    self.fake.request_progress(id).expect("open");
                }
            }
            Action::ProgressTick => self.fake.progress_tick(),
            Action::Cancel { watch } => {
                if let Some(id) = self.pick_watch(watch) {
                    self.fake.cancel_watch(id).expect("open");
                }
            }
        }
        self.check_watch_responses();
    }

    fn check_watch_responses(&mut self) {
        let compact_revision = self.fake.compact_revision();
        while let Some(response) = self.fake.poll_response() {
            let oracle = self
                .watches
                .get_mut(&response.watch_id)
                .expect("every response belongs to a watch");
            if let Err(violation) = oracle.observe(&response, &self.truth, compact_revision) {
                panic!("{violation}");
            }
        }
    }

    /// At the end every open watch resumes and must have delivered all of its history, unless
    /// it was canceled by a compaction it had fallen behind.
    fn finish(&mut self) {
        let open: Vec<WatchId> = self
            .watches
            .keys()
            .copied()
            .filter(|id| self.fake.is_watching(*id))
            .collect();
        for id in &open {
            self.fake.resume_watcher(*id).expect("open");
        }
        self.check_watch_responses();
        let compact_revision = self.fake.compact_revision();
        for id in open.into_iter().filter(|id| self.fake.is_watching(*id)) {
            let behind = self.watches[&id].first_undelivered(&self.truth, compact_revision);
            assert_eq!(
                behind, None,
                "watch {id} never delivered the event at {behind:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::util::cases(256) as u32, ..ProptestConfig::default() })]

    #[test]
    fn fake_etcd_matches_the_naive_reference(actions in proptest::collection::vec(action(), 1..80)) {
        let mut pair = Pair { fake: Etcd::default(), reference: ReferenceEtcd::default(), truth: GroundTruth::default(), watches: BTreeMap::new() };
        for action in &actions {
            pair.apply(action);
        }
        pair.finish();
    }
}
