use proptest::prelude::*;

use super::*;
use crate::etcd::reference::ReferenceEtcd;
use crate::etcd::{Compare, CompareResult, CompareTarget};

fn put(key: &str, value: &[u8]) -> TxnRequest {
    TxnRequest {
        success: vec![Op::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            prev_kv: true,
        }],
        ..TxnRequest::default()
    }
}

fn delete(range: KeyRange) -> TxnRequest {
    TxnRequest {
        success: vec![Op::DeleteRange {
            range,
            prev_kv: true,
        }],
        ..TxnRequest::default()
    }
}

fn read(range: KeyRange, revision: Revision, limit: u64) -> RangeRequest {
    RangeRequest {
        range,
        revision,
        limit,
    }
}

fn write(truth: &mut GroundTruth, request: &TxnRequest) -> TxnResponse {
    truth.txn(request).expect("the write is accepted")
}

fn value_at(truth: &GroundTruth, key: &str, revision: Revision) -> Option<Vec<u8>> {
    truth.get_at(key, revision).map(|kv| kv.value.clone())
}

/// a=1 at 2, a=2 at 3, b=1 at 4, b deleted at 5, c=1 at 6.
fn history() -> GroundTruth {
    let mut truth = GroundTruth::default();
    write(&mut truth, &put("a", b"1"));
    write(&mut truth, &put("a", b"2"));
    write(&mut truth, &put("b", b"1"));
    write(&mut truth, &delete(KeyRange::single("b")));
    write(&mut truth, &put("c", b"1"));
    truth
}

#[test]
fn a_new_truth_is_at_revision_one_and_empty() {
    let truth = GroundTruth::default();
    assert_eq!(truth.revision(), 1);
    assert_eq!(truth.compact_revision(), 0);
    assert_eq!(truth.oldest_readable(), 1);
    assert!(truth.events_at(1).is_empty());
    let all = truth.range(&read(KeyRange::prefix(""), 0, 0)).unwrap();
    assert_eq!((all.header_revision, all.count, all.kvs.len()), (1, 0, 0));
    assert_eq!(
        truth.retained(),
        Retained {
            keys: 0,
            versions: 0,
            revisions: 1,
            events: 0
        }
    );
}

#[test]
fn a_put_creates_then_modifies_a_key() {
    let mut truth = GroundTruth::default();
    let created = write(&mut truth, &put("a", b"1"));
    assert_eq!(created.header_revision, 2);
    assert_eq!(created.responses, vec![OpResponse::Put { prev_kv: None }]);
    let first = truth.get_at("a", 2).cloned().unwrap();
    assert_eq!(
        (first.create_revision, first.mod_revision, first.version),
        (2, 2, 1)
    );
    let modified = write(&mut truth, &put("a", b"2"));
    assert_eq!(
        modified.responses,
        vec![OpResponse::Put {
            prev_kv: Some(first.clone())
        }]
    );
    let second = truth.get_at("a", 3).unwrap();
    assert_eq!(
        (second.create_revision, second.mod_revision, second.version),
        (2, 3, 2)
    );
    assert_eq!(truth.events_at(3)[0].prev_kv, Some(first));
    assert_eq!(truth.events_at(3)[0].event_type, EventType::Put);
    let quiet = TxnRequest {
        success: vec![Op::Put {
            key: "a".into(),
            value: b"3".to_vec(),
            prev_kv: false,
        }],
        ..TxnRequest::default()
    };
    assert_eq!(
        write(&mut truth, &quiet).responses,
        vec![OpResponse::Put { prev_kv: None }]
    );
}

#[test]
fn a_delete_leaves_a_tombstone_event_and_a_recreate_starts_over() {
    let mut truth = GroundTruth::default();
    write(&mut truth, &put("a", b"1"));
    let live = truth.get_at("a", 2).cloned();
    let deleted = write(&mut truth, &delete(KeyRange::single("a")));
    assert_eq!(
        deleted.responses,
        vec![OpResponse::DeleteRange {
            deleted: 1,
            prev_kvs: vec![live.clone().unwrap()]
        }]
    );
    assert_eq!(truth.get_at("a", 3), None);
    let event = &truth.events_at(3)[0];
    assert_eq!(event.event_type, EventType::Delete);
    assert_eq!(
        event.kv,
        KeyValue {
            key: "a".into(),
            create_revision: 0,
            mod_revision: 3,
            version: 0,
            value: Vec::new()
        }
    );
    assert_eq!(event.prev_kv, live);
    write(&mut truth, &put("a", b"again"));
    let again = truth.get_at("a", 4).unwrap();
    assert_eq!((again.create_revision, again.version), (4, 1));
    assert_eq!(truth.events_at(4)[0].prev_kv, None);
}

#[test]
fn a_txn_that_changes_nothing_keeps_the_revision() {
    let mut truth = GroundTruth::default();
    let nothing = write(&mut truth, &delete(KeyRange::prefix("/")));
    assert_eq!(nothing.header_revision, 1);
    assert_eq!(
        nothing.responses,
        vec![OpResponse::DeleteRange {
            deleted: 0,
            prev_kvs: vec![]
        }]
    );
    let failed = TxnRequest {
        compare: vec![Compare {
            key: "a".into(),
            target: CompareTarget::Version,
            result: CompareResult::Greater,
            value: 0,
        }],
        success: vec![Op::Put {
            key: "a".into(),
            value: vec![],
            prev_kv: false,
        }],
        failure: vec![Op::Range(read(KeyRange::single("a"), 0, 0))],
    };
    let answer = write(&mut truth, &failed);
    assert!(!answer.succeeded);
    assert_eq!(answer.header_revision, 1);
    assert_eq!(truth.revision(), 1);
    assert_eq!(truth.retained().revisions, 1);
}

#[test]
fn reads_in_a_txn_see_its_own_writes_only_at_revision_zero() {
    let mut truth = GroundTruth::default();
    write(&mut truth, &put("a", b"1"));
    let request = TxnRequest {
        success: vec![
            Op::Range(read(KeyRange::single("a"), 0, 0)),
            Op::Put {
                key: "a".into(),
                value: b"2".to_vec(),
                prev_kv: false,
            },
            Op::Range(read(KeyRange::single("a"), 0, 0)),
            Op::Range(read(KeyRange::single("a"), 2, 0)),
        ],
        ..TxnRequest::default()
    };
    let answer = write(&mut truth, &request);
    let reads: Vec<(Revision, Vec<u8>)> = answer
        .responses
        .iter()
        .filter_map(|response| match response {
            OpResponse::Range(range) => Some((range.header_revision, range.kvs[0].value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        reads,
        vec![(2, b"1".to_vec()), (3, b"2".to_vec()), (3, b"1".to_vec())]
    );
}

#[test]
fn compares_choose_the_branch() {
    let mut truth = GroundTruth::default();
    write(&mut truth, &put("a", b"1"));
    let guarded = |value| TxnRequest {
        compare: vec![Compare {
            key: "a".into(),
            target: CompareTarget::Mod,
            result: CompareResult::Equal,
            value,
        }],
        success: vec![Op::Put {
            key: "a".into(),
            value: b"won".to_vec(),
            prev_kv: false,
        }],
        failure: vec![Op::Put {
            key: "lost".into(),
            value: vec![],
            prev_kv: false,
        }],
    };
    assert!(!write(&mut truth, &guarded(7)).succeeded);
    assert!(truth.get_at("lost", 3).is_some());
    assert!(write(&mut truth, &guarded(2)).succeeded);
    assert_eq!(value_at(&truth, "a", 4), Some(b"won".to_vec()));
    let absent = Compare {
        key: "nope".into(),
        target: CompareTarget::Create,
        result: CompareResult::Equal,
        value: 0,
    };
    assert!(absent.holds(None));
}

#[test]
fn a_branch_that_writes_a_key_twice_is_refused_even_if_it_would_not_run() {
    let mut truth = GroundTruth::default();
    let put_op = |key: &str| Op::Put {
        key: key.into(),
        value: vec![],
        prev_kv: false,
    };
    let delete_op = |range| Op::DeleteRange {
        range,
        prev_kv: false,
    };
    let twice = TxnRequest {
        failure: vec![put_op("a"), put_op("a")],
        ..TxnRequest::default()
    };
    assert_eq!(truth.txn(&twice), Err(EtcdError::DuplicateKey));
    let put_then_covered = TxnRequest {
        success: vec![put_op("/r/a"), delete_op(KeyRange::prefix("/r/"))],
        ..TxnRequest::default()
    };
    assert_eq!(truth.txn(&put_then_covered), Err(EtcdError::DuplicateKey));
    let covered_then_put = TxnRequest {
        success: vec![delete_op(KeyRange::between("/r/", "/s")), put_op("/r/a")],
        ..TxnRequest::default()
    };
    assert_eq!(truth.txn(&covered_then_put), Err(EtcdError::DuplicateKey));
    assert_eq!(truth.revision(), 1);

    write(&mut truth, &put("/r/a", b""));
    write(&mut truth, &put("/r/b", b""));
    let disjoint = TxnRequest {
        success: vec![
            delete_op(KeyRange::prefix("/r/")),
            delete_op(KeyRange::single("/r/a")),
            put_op("/s/a"),
        ],
        ..TxnRequest::default()
    };
    let answer = write(&mut truth, &disjoint);
    assert_eq!(answer.header_revision, 4);
    let kinds: Vec<(EventType, &str)> = truth
        .events_at(4)
        .iter()
        .map(|event| (event.event_type, event.kv.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::Delete, "/r/a"),
            (EventType::Delete, "/r/b"),
            (EventType::Put, "/s/a")
        ]
    );
}

#[test]
fn reads_and_compactions_are_refused_like_etcd() {
    let mut truth = history();
    assert_eq!(
        truth.range(&read(KeyRange::single("a"), 7, 0)),
        Err(EtcdError::FutureRevision)
    );
    assert_eq!(truth.compact(0), Err(EtcdError::Compacted));
    assert_eq!(truth.compact(7), Err(EtcdError::FutureRevision));
    assert_eq!(truth.compact(4), Ok(6));
    assert_eq!(truth.compact(4), Err(EtcdError::Compacted));
    assert_eq!(truth.compact(3), Err(EtcdError::Compacted));
    assert_eq!(
        truth.range(&read(KeyRange::single("a"), 3, 0)),
        Err(EtcdError::Compacted)
    );
    let at_compaction = truth.range(&read(KeyRange::single("b"), 4, 0)).unwrap();
    assert_eq!((at_compaction.header_revision, at_compaction.count), (6, 1));

    let stale_read = |in_success: bool| {
        let ops = vec![
            Op::Range(read(KeyRange::single("a"), 3, 0)),
            Op::Put {
                key: "z".into(),
                value: vec![],
                prev_kv: false,
            },
        ];
        let (success, failure) = if in_success {
            (ops, vec![])
        } else {
            (vec![], ops)
        };
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    };
    assert_eq!(truth.txn(&stale_read(true)), Err(EtcdError::Compacted));
    assert_eq!(truth.revision(), 6);
    let untaken = write(&mut truth, &stale_read(false));
    assert!(untaken.succeeded && untaken.responses.is_empty());
}

#[test]
fn a_limit_counts_everything_and_marks_more() {
    let truth = history();
    let limited = truth.range(&read(KeyRange::prefix(""), 4, 1)).unwrap();
    assert_eq!(
        (limited.count, limited.kvs.len(), limited.more),
        (2, 1, true)
    );
    assert_eq!(limited.kvs[0].key, "a");
    let exact = truth.range(&read(KeyRange::prefix(""), 4, 2)).unwrap();
    assert_eq!((exact.count, exact.kvs.len(), exact.more), (2, 2, false));
}

#[test]
fn an_empty_or_inverted_range_holds_nothing() {
    let truth = history();
    for range in [KeyRange::between("c", "a"), KeyRange::between("a", "a")] {
        assert_eq!(truth.range(&read(range.clone(), 0, 0)).unwrap().count, 0);
        assert_eq!(truth.state_at(&range, 6).count(), 0);
    }
    let open = KeyRange::between("b", "\0");
    let keys: Vec<&str> = truth.state_at(&open, 6).map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, vec!["c"]);
}

#[test]
fn history_reads_answer_old_revisions() {
    let truth = history();
    assert_eq!(value_at(&truth, "a", 2), Some(b"1".to_vec()));
    assert_eq!(value_at(&truth, "a", 6), Some(b"2".to_vec()));
    assert_eq!(value_at(&truth, "b", 3), None);
    assert_eq!(value_at(&truth, "b", 4), Some(b"1".to_vec()));
    assert_eq!(value_at(&truth, "b", 5), None);
    let all = KeyRange::prefix("");
    let keys_at = |revision| -> Vec<&str> {
        truth
            .state_at(&all, revision)
            .map(|kv| kv.key.as_str())
            .collect()
    };
    assert_eq!(keys_at(4), vec!["a", "b"]);
    assert_eq!(keys_at(5), vec!["a"]);
    assert_eq!(keys_at(6), vec!["a", "c"]);

    let single = KeyRange::single("b");
    let revisions = |range: &KeyRange, from| -> Vec<Revision> {
        truth
            .events_since(range, from)
            .map(|(revision, _)| revision)
            .collect()
    };
    assert_eq!(revisions(&single, 0), vec![4, 5]);
    assert_eq!(revisions(&single, 5), vec![5]);
    assert_eq!(revisions(&single, 7), Vec::<Revision>::new());
    assert_eq!(
        revisions(&KeyRange::single("zz"), 1),
        Vec::<Revision>::new()
    );
    assert_eq!(revisions(&all, 3), vec![3, 4, 5, 6]);
    assert_eq!(
        revisions(&KeyRange::between("b", "c"), 0),
        vec![4, 5],
        "a wider range filters the log"
    );
    let (revision, event) = truth.events_since(&single, 5).next().unwrap();
    assert_eq!(&truth.events_at(revision)[0], event);
}

#[test]
fn forget_before_keeps_what_is_live_at_its_revision() {
    let mut truth = history();
    truth.forget_before(4);
    assert_eq!(truth.oldest_readable(), 4);
    assert_eq!(value_at(&truth, "a", 4), Some(b"2".to_vec()));
    assert_eq!(value_at(&truth, "b", 4), Some(b"1".to_vec()));
    assert_eq!(value_at(&truth, "b", 5), None);
    assert_eq!(
        truth.retained(),
        Retained {
            keys: 3,
            versions: 4,
            revisions: 3,
            events: 3
        },
        "a keeps its version from 3; b its put at 4 and delete at 5; c its put"
    );
    let range = truth.range(&read(KeyRange::single("a"), 0, 0)).unwrap();
    assert_eq!(range.kvs[0].mod_revision, 3);
    let since: Vec<Revision> = truth
        .events_since(&KeyRange::prefix(""), 4)
        .map(|(revision, _)| revision)
        .collect();
    assert_eq!(since, vec![4, 5, 6]);
}

#[test]
fn a_deletion_at_the_forgotten_revision_stays_until_the_next() {
    let mut truth = history();
    truth.forget_before(5);
    let single = KeyRange::single("b");
    let deletes: Vec<EventType> = truth
        .events_since(&single, 5)
        .map(|(_, event)| event.event_type)
        .collect();
    assert_eq!(deletes, vec![EventType::Delete]);
    assert_eq!(truth.retained().keys, 3);
    truth.forget_before(6);
    assert_eq!(truth.retained().keys, 2, "b is gone for good");
    assert_eq!(truth.events_since(&single, 6).count(), 0);
    assert_eq!(truth.get_at("b", 6), None);
}

#[test]
fn forget_before_below_what_is_held_does_nothing() {
    let mut truth = history();
    truth.forget_before(3);
    let held = truth.retained();
    truth.forget_before(2);
    truth.forget_before(3);
    assert_eq!(truth.retained(), held);
    assert_eq!(truth.oldest_readable(), 3);
}

#[test]
#[should_panic(expected = "revision 3 asked, but only 4..=6 is held")]
fn get_at_below_the_forgotten_revision_panics() {
    let mut truth = history();
    truth.forget_before(4);
    truth.get_at("a", 3);
}

#[test]
#[should_panic(expected = "revision 3 asked, but only 4..=6 is held")]
fn events_at_below_the_forgotten_revision_panics() {
    let mut truth = history();
    truth.forget_before(4);
    truth.events_at(3);
}

#[test]
#[should_panic(expected = "events since 3 asked, but history before 4 was forgotten")]
fn events_since_below_the_forgotten_revision_panics() {
    let mut truth = history();
    truth.forget_before(4);
    let _ = truth.events_since(&KeyRange::single("a"), 3);
}

#[test]
#[should_panic(expected = "revision 3 asked, but only 4..=6 is held")]
fn state_at_below_the_forgotten_revision_panics() {
    let mut truth = history();
    truth.forget_before(4);
    let _ = truth.state_at(&KeyRange::prefix(""), 3);
}

#[test]
#[should_panic(expected = "revision 3 asked, but only 4..=6 is held")]
fn a_range_etcd_would_serve_from_forgotten_history_panics() {
    let mut truth = history();
    truth.compact(2).unwrap();
    truth.forget_before(4);
    let _ = truth.range(&read(KeyRange::single("a"), 3, 0));
}

#[test]
#[should_panic(expected = "revision 7 asked, but only 1..=6 is held")]
fn get_at_a_future_revision_panics() {
    history().get_at("a", 7);
}

#[test]
#[should_panic(expected = "forget_before(7) is past the current revision 6")]
fn forgetting_the_future_panics() {
    history().forget_before(7);
}

#[test]
fn memory_stays_flat_under_periodic_forgetting() {
    const KEYS: usize = 1_000;
    const WRITES: usize = 1_000_000;
    const EVERY: usize = 10_000;
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("/registry/pods/ns/{i:04}"))
        .collect();
    let mut truth = GroundTruth::default();
    let mut peak = Retained::default();
    for write in 0..WRITES {
        let key = &keys[write * 7919 % KEYS];
        let request = if write % 7 == 3 {
            delete(KeyRange::single(key))
        } else {
            put(key, &write.to_le_bytes())
        };
        truth.txn(&request).expect("writes are never refused");
        if write % EVERY == EVERY - 1 {
            let revision = truth.revision();
            truth.compact(revision).expect("a new compact revision");
            truth.forget_before(revision);
        }
        let now = truth.retained();
        peak = Retained {
            keys: peak.keys.max(now.keys),
            versions: peak.versions.max(now.versions),
            revisions: peak.revisions.max(now.revisions),
            events: peak.events.max(now.events),
        };
    }
    assert!(truth.revision() > 900_000, "most writes change something");
    // After a forget: one version per live key, plus a deletion at the forgotten revision.
    assert!(peak.keys <= KEYS, "{peak:?}");
    assert!(peak.versions <= KEYS + EVERY + 1, "{peak:?}");
    assert!(peak.revisions <= EVERY + 1, "{peak:?}");
    assert!(peak.events <= EVERY + 1, "{peak:?}");
    let last = &keys[(WRITES - 1) * 7919 % KEYS];
    assert_eq!(
        value_at(&truth, last, truth.revision()),
        Some((WRITES - 1).to_le_bytes().to_vec())
    );
}

// The property: GroundTruth answers exactly as the naive reference does.

const KEYS: [&str; 5] = ["/r/a/1", "/r/a/2", "/r/b/1", "/r/b/2", "/s/x"];

fn ranges() -> [KeyRange; 13] {
    [
        KeyRange::single(KEYS[0]),
        KeyRange::single(KEYS[1]),
        KeyRange::single(KEYS[2]),
        KeyRange::single(KEYS[3]),
        KeyRange::single(KEYS[4]),
        KeyRange::single("/absent"),
        KeyRange::prefix("/r/"),
        KeyRange::prefix("/r/b/"),
        KeyRange::prefix(""),
        KeyRange::between("/r/a/2", "/s/"),
        KeyRange::between("/r/b/", "\0"),
        KeyRange::between("/s/", "/r/"),
        KeyRange::between("/r/a/1", "/r/a/1"),
    ]
}

/// One operation of a transaction branch.
#[derive(Clone, Debug)]
enum Step {
    Put { key: usize, prev_kv: bool },
    Delete { range: usize, prev_kv: bool },
    Read { range: usize, back: u8, limit: u8 },
}

#[derive(Clone, Debug)]
enum Action {
    Put {
        key: usize,
        value: u8,
    },
    Delete {
        range: usize,
    },
    /// Compares `(key, target, result, delta from the current value)`, then a branch.
    Txn {
        compares: Vec<(usize, u8, u8, i8)>,
        success: Vec<Step>,
        failure: Vec<Step>,
    },
    Range {
        range: usize,
        back: u8,
        limit: u8,
    },
    Compact {
        back: u8,
    },
    Forget {
        back: u8,
    },
}

/// Which history to read after an action: numbers folded into the readable revisions.
#[derive(Clone, Debug)]
struct Probe {
    key: usize,
    range: usize,
    a: u8,
    b: u8,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..KEYS.len(), any::<bool>()).prop_map(|(key, prev_kv)| Step::Put { key, prev_kv }),
        1 => (0..ranges().len(), any::<bool>())
            .prop_map(|(range, prev_kv)| Step::Delete { range, prev_kv }),
        2 => (0..ranges().len(), 0..8u8, 0..3u8)
            .prop_map(|(range, back, limit)| Step::Read { range, back, limit }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let compare = (0..KEYS.len(), 0..3u8, 0..4u8, -1..2i8);
    prop_oneof![
        4 => (0..KEYS.len(), any::<u8>()).prop_map(|(key, value)| Action::Put { key, value }),
        2 => (0..ranges().len()).prop_map(|range| Action::Delete { range }),
        4 => (
            proptest::collection::vec(compare, 0..3),
            proptest::collection::vec(step(), 0..4),
            proptest::collection::vec(step(), 0..3),
        )
            .prop_map(|(compares, success, failure)| Action::Txn { compares, success, failure }),
        2 => (0..ranges().len(), 0..8u8, 0..3u8)
            .prop_map(|(range, back, limit)| Action::Range { range, back, limit }),
        1 => (0..6u8).prop_map(|back| Action::Compact { back }),
        1 => (0..4u8).prop_map(|back| Action::Forget { back }),
    ]
}

fn probe() -> impl Strategy<Value = Probe> {
    (0..KEYS.len(), 0..ranges().len(), any::<u8>(), any::<u8>())
        .prop_map(|(key, range, a, b)| Probe { key, range, a, b })
}

struct Both {
    truth: GroundTruth,
    reference: ReferenceEtcd,
}

impl Both {
    fn txn(&mut self, request: &TxnRequest) {
        let truth = self.truth.txn(request);
        let reference = self.reference.txn(request);
        assert_eq!(truth, reference, "txn {request:?}");
    }

    /// A revision `back` steps behind the next one; 0 stays 0 (latest), 1 is the future.
    fn back(&self, back: u8) -> Revision {
        match back {
            0 => 0,
            back => (self.reference.revision() + 2).saturating_sub(u64::from(back)),
        }
    }

    fn step(&self, step: &Step) -> Op {
        match *step {
            Step::Put { key, prev_kv } => Op::Put {
                key: KEYS[key].to_owned(),
                value: vec![self.reference.revision() as u8],
                prev_kv,
            },
            Step::Delete { range, prev_kv } => Op::DeleteRange {
                range: ranges()[range].clone(),
                prev_kv,
            },
            Step::Read { range, back, limit } => Op::Range(read(
                ranges()[range].clone(),
                self.back(back),
                u64::from(limit),
            )),
        }
    }

    fn compare(&self, (key, target, result, delta): (usize, u8, u8, i8)) -> Compare {
        let latest = self
            .reference
            .state_at(self.reference.revision())
            .get(KEYS[key]);
        let target = [
            CompareTarget::Mod,
            CompareTarget::Create,
            CompareTarget::Version,
        ][target as usize];
        let current = match target {
            CompareTarget::Mod => latest.map_or(0, |kv| kv.mod_revision),
            CompareTarget::Create => latest.map_or(0, |kv| kv.create_revision),
            CompareTarget::Version => latest.map_or(0, |kv| kv.version),
        };
        Compare {
            key: KEYS[key].to_owned(),
            target,
            result: [
                CompareResult::Equal,
                CompareResult::NotEqual,
                CompareResult::Greater,
                CompareResult::Less,
            ][result as usize],
            value: current.saturating_add_signed(i64::from(delta)),
        }
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::Put { key, value } => self.txn(&put(KEYS[*key], &[*value])),
            Action::Delete { range } => self.txn(&delete(ranges()[*range].clone())),
            Action::Txn {
                compares,
                success,
                failure,
            } => {
                let request = TxnRequest {
                    compare: compares.iter().map(|c| self.compare(*c)).collect(),
                    success: success.iter().map(|step| self.step(step)).collect(),
                    failure: failure.iter().map(|step| self.step(step)).collect(),
                };
                self.txn(&request);
            }
            Action::Range { range, back, limit } => {
                let request = read(
                    ranges()[*range].clone(),
                    self.back(*back),
                    u64::from(*limit),
                );
                assert_eq!(
                    self.truth.range(&request),
                    self.reference.range(&request),
                    "range {request:?}"
                );
            }
            Action::Compact { back } => {
                let revision = (self.reference.revision() + 1).saturating_sub(u64::from(*back));
                assert_eq!(
                    self.truth.compact(revision),
                    self.reference.compact(revision),
                    "compact {revision}"
                );
            }
            Action::Forget { back } => {
                let revision = self
                    .reference
                    .compact_revision()
                    .saturating_sub(u64::from(*back));
                self.truth.forget_before(revision);
            }
        }
        assert_eq!(self.truth.revision(), self.reference.revision());
        assert_eq!(
            self.truth.compact_revision(),
            self.reference.compact_revision()
        );
    }

    /// Every history read at revisions the probe picks agrees with the reference.
    fn check(&self, probe: &Probe) {
        let (oldest, current) = (self.truth.oldest_readable(), self.truth.revision());
        let span = current - oldest + 1;
        let a = oldest + u64::from(probe.a) % span;
        let key = KEYS[probe.key];
        let range = &ranges()[probe.range];
        let state_a = self.reference.state_at(a);

        assert_eq!(
            self.truth.get_at(key, a),
            state_a.get(key),
            "get_at {key} {a}"
        );
        let expected: Vec<&KeyValue> = state_a
            .values()
            .filter(|kv| range.contains(&kv.key))
            .collect();
        let actual: Vec<&KeyValue> = self.truth.state_at(range, a).collect();
        assert_eq!(actual, expected, "state_at {range:?} {a}");
        assert_eq!(self.truth.events_at(a), self.reference.events_at(a));

        let from = oldest + u64::from(probe.b) % (span + 1);
        for range in [range, &KeyRange::single(key)] {
            let actual: Vec<_> = self.truth.events_since(range, from).collect();
            let expected: Vec<_> = self.reference.events_since(range, from).collect();
            assert_eq!(actual, expected, "events_since {range:?} {from}");
        }
    }

    /// The counters are right, and nothing forgettable is left.
    fn check_retention(&self) {
        let truth = &self.truth;
        let versions = truth
            .histories
            .values()
            .map(|history| history.versions().count())
            .sum();
        let events = truth.log.iter().map(Vec::len).sum();
        assert_eq!(
            truth.retained(),
            Retained {
                keys: truth.histories.len(),
                versions,
                revisions: (truth.revision() - truth.oldest_readable() + 1) as usize,
                events
            }
        );
        for (key, history) in &truth.histories {
            let versions: Vec<&Version<KeyValue>> = history.versions().collect();
            assert!(
                versions.is_sorted_by_key(|version| version.revision),
                "{key}: {versions:?}"
            );
            let superseded = versions[1..]
                .iter()
                .any(|version| version.revision <= truth.oldest_readable());
            assert!(
                !superseded,
                "{key} keeps a version superseded by the forgetting"
            );
            let gone = matches!(versions.as_slice(), [only]
                if only.state.is_none() && only.revision < truth.oldest_readable());
            assert!(!gone, "{key} keeps a deletion before the forgetting");
        }
    }
}

fn cases() -> u32 {
    crate::explore::env_cases(256).unwrap_or_else(|error| panic!("{error}")) as u32
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn ground_truth_matches_the_naive_reference(
        steps in proptest::collection::vec((action(), probe()), 1..100)
    ) {
        let mut both = Both { truth: GroundTruth::default(), reference: ReferenceEtcd::default() };
        for (action, probe) in &steps {
            both.apply(action);
            both.check(probe);
            both.check_retention();
        }
    }
}
