use super::*;
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
fn changed_keys_skip_keys_absent_at_both_ends() {
    let truth = history();
    let all = KeyRange::prefix("");
    let changed = |a, b| -> Vec<&str> { truth.changed_keys_between(&all, a, b).collect() };
    assert_eq!(changed(3, 6), vec!["c"], "b came and went");
    assert_eq!(changed(4, 6), vec!["b", "c"]);
    assert_eq!(changed(6, 1), vec!["a", "c"]);
    assert_eq!(changed(5, 5), Vec::<&str>::new());
    let only_a: Vec<&str> = truth
        .changed_keys_between(&KeyRange::single("a"), 1, 6)
        .collect();
    assert_eq!(only_a, vec!["a"]);
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
