//! One test per rule of SPEC §1, named after the rule.

use super::*;
use crate::bug::{Bug, Bugs};

const PODS: &str = "/registry/pods/";

fn key(name: &str) -> String {
    format!("{PODS}{name}")
}

fn get(etcd: &Etcd, name: &str) -> Option<KeyValue> {
    let range = RangeRequest {
        range: KeyRange::single(&key(name)),
        revision: 0,
        limit: 0,
    };
    etcd.range(&range).expect("readable").kvs.into_iter().next()
}

fn range_at(etcd: &Etcd, revision: Revision, limit: u64) -> Result<RangeResponse, EtcdError> {
    etcd.range(&RangeRequest {
        range: KeyRange::prefix(PODS),
        revision,
        limit,
    })
}

fn watch_from(etcd: &mut Etcd, start_revision: Revision) -> WatchId {
    etcd.watch(WatchRequest {
        range: KeyRange::prefix(PODS),
        start_revision,
        prev_kv: true,
        progress_notify: true,
    })
}

fn drain(etcd: &mut Etcd) -> Vec<WatchResponseKind> {
    std::iter::from_fn(|| etcd.poll_response())
        .map(|response| response.kind)
        .collect()
}

fn event_revisions(kinds: &[WatchResponseKind]) -> Vec<(EventType, Revision)> {
    kinds
        .iter()
        .filter_map(|kind| match kind {
            WatchResponseKind::Events(events) => Some(events),
            _ => None,
        })
        .flatten()
        .map(|event| (event.event_type, event.kv.mod_revision))
        .collect()
}

/// kube-apiserver's create: `If(ModRevision(key)==0) Then Put Else Get` (SPEC §1.2).
fn create(etcd: &mut Etcd, name: &str, value: &[u8]) -> TxnResponse {
    guarded_put(etcd, name, value, 0)
}

fn guarded_put(etcd: &mut Etcd, name: &str, value: &[u8], expected: Revision) -> TxnResponse {
    let k = key(name);
    etcd.txn(&TxnRequest {
        compare: vec![Compare {
            key: k.clone(),
            target: CompareTarget::Mod,
            result: CompareResult::Equal,
            value: expected,
        }],
        success: vec![Op::Put {
            key: k.clone(),
            value: value.to_vec(),
            prev_kv: false,
        }],
        failure: vec![Op::Range(RangeRequest {
            range: KeyRange::single(&k),
            revision: 0,
            limit: 0,
        })],
    })
    .expect("valid txn")
}

#[test]
fn new_store_starts_at_revision_one() {
    assert_eq!(Etcd::default().revision(), 1);
}

#[test]
fn each_changing_txn_bumps_the_revision_once() {
    let mut etcd = Etcd::default();
    let both = TxnRequest {
        compare: vec![],
        success: vec![
            Op::Put {
                key: key("a"),
                value: b"1".to_vec(),
                prev_kv: false,
            },
            Op::Put {
                key: key("b"),
                value: b"1".to_vec(),
                prev_kv: false,
            },
        ],
        failure: vec![],
    };
    assert_eq!(etcd.txn(&both).unwrap().header_revision, 2);
    assert_eq!(get(&etcd, "a").unwrap().mod_revision, 2);
    assert_eq!(get(&etcd, "b").unwrap().mod_revision, 2);
}

#[test]
fn deleting_a_missing_key_does_not_bump_the_revision() {
    let mut etcd = Etcd::default();
    let response = etcd.delete_range(KeyRange::single(&key("nope"))).unwrap();
    assert_eq!(response.header_revision, 1);
    assert_eq!(etcd.revision(), 1);
}

#[test]
fn a_failed_compare_does_not_bump_the_revision() {
    let mut etcd = Etcd::default();
    create(&mut etcd, "a", b"1");
    let failed = create(&mut etcd, "a", b"2");
    assert!(!failed.succeeded);
    assert_eq!(etcd.revision(), 2);
    let OpResponse::Range(current) = &failed.responses[0] else {
        panic!("failure branch reads")
    };
    assert_eq!(current.kvs[0].value, b"1");
}

#[test]
fn a_read_does_not_bump_the_revision() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    range_at(&etcd, 0, 0).unwrap();
    assert_eq!(etcd.revision(), 2);
}

#[test]
fn version_counts_modifications_and_restarts_after_recreate() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("a"), b"2").unwrap();
    let kv = get(&etcd, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    etcd.delete_range(KeyRange::single(&key("a"))).unwrap();
    etcd.put(&key("a"), b"3").unwrap();
    let kv = get(&etcd, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn guarded_update_succeeds_only_at_the_expected_mod_revision() {
    let mut etcd = Etcd::default();
    create(&mut etcd, "a", b"1");
    assert!(!guarded_put(&mut etcd, "a", b"2", 1).succeeded);
    assert!(guarded_put(&mut etcd, "a", b"2", 2).succeeded);
    assert_eq!(get(&etcd, "a").unwrap().value, b"2");
}

#[test]
fn compares_on_create_revision_and_version() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("a"), b"2").unwrap();
    let compare = |target, result, value| Compare {
        key: key("a"),
        target,
        result,
        value,
    };
    let holds = |etcd: &mut Etcd, compare: Compare| {
        etcd.txn(&TxnRequest {
            compare: vec![compare],
            success: vec![],
            failure: vec![],
        })
        .unwrap()
        .succeeded
    };
    assert!(holds(
        &mut etcd,
        compare(CompareTarget::Create, CompareResult::Equal, 2)
    ));
    assert!(holds(
        &mut etcd,
        compare(CompareTarget::Version, CompareResult::Greater, 1)
    ));
    assert!(holds(
        &mut etcd,
        compare(CompareTarget::Version, CompareResult::Less, 3)
    ));
    assert!(!holds(
        &mut etcd,
        compare(CompareTarget::Mod, CompareResult::NotEqual, 3)
    ));
}

#[test]
fn guarded_delete_removes_only_at_the_expected_revision() {
    let mut etcd = Etcd::default();
    create(&mut etcd, "a", b"1");
    let delete = |expected| TxnRequest {
        compare: vec![Compare {
            key: key("a"),
            target: CompareTarget::Mod,
            result: CompareResult::Equal,
            value: expected,
        }],
        success: vec![Op::DeleteRange {
            range: KeyRange::single(&key("a")),
            prev_kv: true,
        }],
        failure: vec![],
    };
    assert!(!etcd.txn(&delete(7)).unwrap().succeeded);
    let done = etcd.txn(&delete(2)).unwrap();
    assert_eq!(
        done.responses,
        vec![OpResponse::DeleteRange {
            deleted: 1,
            prev_kvs: vec![KeyValue {
                key: key("a"),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                value: b"1".to_vec()
            }]
        }]
    );
    assert_eq!(get(&etcd, "a"), None);
}

#[test]
fn a_txn_may_not_put_one_key_twice() {
    let mut etcd = Etcd::default();
    let put = Op::Put {
        key: key("a"),
        value: b"1".to_vec(),
        prev_kv: false,
    };
    let twice = TxnRequest {
        compare: vec![],
        success: vec![put.clone(), put],
        failure: vec![],
    };
    assert_eq!(etcd.txn(&twice), Err(EtcdError::DuplicateKey));
    assert_eq!(etcd.revision(), 1);
}

#[test]
fn range_reads_history_sorted_with_limit_more_and_count() {
    let mut etcd = Etcd::default();
    for name in ["c", "a", "b"] {
        etcd.put(&key(name), b"1").unwrap();
    }
    let page = range_at(&etcd, 0, 2).unwrap();
    let names: Vec<&str> = page.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(names, [key("a"), key("b")]);
    assert!(page.more);
    assert_eq!(page.count, 3);
    let old = range_at(&etcd, 3, 0).unwrap();
    assert_eq!(old.kvs.len(), 2, "at revision 3 only c and a existed");
    assert_eq!(
        old.header_revision, 4,
        "the header is the current revision, not the one read"
    );
}

#[test]
fn range_pages_continue_from_the_last_key() {
    let mut etcd = Etcd::default();
    for name in ["a", "b", "c"] {
        etcd.put(&key(name), b"1").unwrap();
    }
    let first = range_at(&etcd, 0, 2).unwrap();
    let next_key = format!("{}\0", first.kvs.last().unwrap().key);
    let rest = etcd
        .range(&RangeRequest {
            range: KeyRange::prefix(PODS).starting_at(&next_key),
            revision: first.header_revision,
            limit: 2,
        })
        .unwrap();
    assert_eq!(rest.kvs.len(), 1);
    assert!(!rest.more);
}

#[test]
fn range_at_a_future_revision_is_an_error() {
    let etcd = Etcd::default();
    assert_eq!(range_at(&etcd, 2, 0), Err(EtcdError::FutureRevision));
}

/// etcd checks the range revisions of the branch that runs only (real etcd 3.4.23 answers such
/// a txn with `succeeded: false` and no error).
#[test]
fn a_bad_range_revision_in_the_branch_that_does_not_run_is_no_error() {
    let mut etcd = Etcd::default();
    let future = Op::Range(RangeRequest {
        range: KeyRange::prefix(PODS),
        revision: 5,
        limit: 0,
    });
    let request = TxnRequest {
        compare: vec![Compare {
            key: key("a"),
            target: CompareTarget::Mod,
            result: CompareResult::Greater,
            value: 1,
        }],
        success: vec![future.clone()],
        failure: vec![],
    };
    let response = etcd.txn(&request).expect("the failure branch runs");
    assert!(!response.succeeded);
    let mut reference = reference::ReferenceEtcd::default();
    assert_eq!(reference.txn(&request), Ok(response));
    let failing = TxnRequest {
        failure: vec![future],
        ..request
    };
    assert_eq!(etcd.txn(&failing), Err(EtcdError::FutureRevision));
}

/// A read inside a write txn reports the revision it read as latest: the old one before the
/// txn's first change, the new one after it (real etcd 3.4.23, `storeTxnWrite.Range`).
#[test]
fn a_read_in_a_write_txn_reports_the_revision_it_read_at() {
    let mut etcd = Etcd::default();
    let read = Op::Range(RangeRequest {
        range: KeyRange::prefix(PODS),
        revision: 0,
        limit: 0,
    });
    let put = Op::Put {
        key: key("a"),
        value: b"1".to_vec(),
        prev_kv: false,
    };
    let request = TxnRequest {
        compare: vec![],
        success: vec![read.clone(), put, read],
        failure: vec![],
    };
    let response = etcd.txn(&request).unwrap();
    let headers: Vec<Revision> = response
        .responses
        .iter()
        .filter_map(|op| match op {
            OpResponse::Range(range) => Some(range.header_revision),
            _ => None,
        })
        .collect();
    assert_eq!((response.header_revision, headers), (2, vec![1, 2]));
    let mut reference = reference::ReferenceEtcd::default();
    assert_eq!(reference.txn(&request), Ok(response));
}

#[test]
fn range_below_the_compact_revision_is_compacted_and_at_it_is_readable() {
    let mut etcd = Etcd::default();
    for value in [b"1", b"2", b"3"] {
        etcd.put(&key("a"), value).unwrap();
    }
    etcd.compact(3).unwrap();
    assert_eq!(range_at(&etcd, 2, 0), Err(EtcdError::Compacted));
    assert_eq!(range_at(&etcd, 3, 0).unwrap().kvs[0].value, b"2");
    assert_eq!(range_at(&etcd, 4, 0).unwrap().kvs[0].value, b"3");
}

#[test]
fn compacting_twice_at_the_same_revision_or_the_future_is_an_error() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.compact(2).unwrap();
    assert_eq!(etcd.compact(2), Err(EtcdError::Compacted));
    assert_eq!(etcd.compact(9), Err(EtcdError::FutureRevision));
}

#[test]
fn compaction_keeps_a_deleted_key_readable_above_but_not_at_the_compact_revision() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.delete_range(KeyRange::single(&key("a"))).unwrap();
    etcd.put(&key("b"), b"1").unwrap();
    etcd.compact(3).unwrap();
    let at_compact = range_at(&etcd, 3, 0).unwrap();
    assert!(at_compact.kvs.is_empty());
    assert_eq!(range_at(&etcd, 4, 0).unwrap().kvs.len(), 1);
}

#[test]
fn watch_start_revision_is_inclusive_and_zero_means_from_now() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("a"), b"2").unwrap();
    watch_from(&mut etcd, 3);
    watch_from(&mut etcd, 0);
    let kinds = drain(&mut etcd);
    assert_eq!(event_revisions(&kinds), vec![(EventType::Put, 3)]);
    etcd.put(&key("a"), b"3").unwrap();
    assert_eq!(
        event_revisions(&drain(&mut etcd)),
        vec![(EventType::Put, 4), (EventType::Put, 4)]
    );
}

#[test]
fn watch_delivers_only_keys_under_its_prefix() {
    let mut etcd = Etcd::default();
    watch_from(&mut etcd, 0);
    etcd.put("/registry/services/ns/a", b"1").unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    assert_eq!(
        event_revisions(&drain(&mut etcd)),
        vec![(EventType::Put, 3)]
    );
}

#[test]
fn watch_events_of_one_revision_arrive_in_one_message() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    etcd.stall_watcher(id).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.delete_range(KeyRange::prefix(PODS)).unwrap();
    etcd.put(&key("b"), b"1").unwrap();
    etcd.put(&key("c"), b"1").unwrap();
    drain(&mut etcd);
    etcd.resume_watcher(id).unwrap();
    let kinds = drain(&mut etcd);
    assert_eq!(
        kinds.len(),
        1,
        "a catching-up watcher gets history in one message"
    );
    assert_eq!(
        event_revisions(&kinds),
        vec![
            (EventType::Put, 2),
            (EventType::Delete, 3),
            (EventType::Put, 4),
            (EventType::Put, 5)
        ]
    );
}

#[test]
fn watch_events_carry_prev_kv_and_deletes_carry_only_key_and_revision() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    watch_from(&mut etcd, 0);
    etcd.delete_range(KeyRange::single(&key("a"))).unwrap();
    let kinds = drain(&mut etcd);
    let WatchResponseKind::Events(events) = &kinds[1] else {
        panic!("events expected")
    };
    assert_eq!(
        events[0].kv,
        KeyValue {
            key: key("a"),
            create_revision: 0,
            mod_revision: 3,
            version: 0,
            value: vec![]
        }
    );
    assert_eq!(events[0].prev_kv.as_ref().unwrap().value, b"1");
}

#[test]
fn a_watch_below_the_compact_revision_is_canceled_with_it() {
    let mut etcd = Etcd::default();
    for value in [b"1", b"2", b"3"] {
        etcd.put(&key("a"), value).unwrap();
    }
    etcd.compact(3).unwrap();
    watch_from(&mut etcd, 2);
    assert_eq!(
        drain(&mut etcd),
        vec![
            WatchResponseKind::Created,
            WatchResponseKind::Compacted {
                compact_revision: 3
            }
        ]
    );
}

#[test]
fn a_stalled_watcher_overtaken_by_compaction_is_canceled() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    etcd.stall_watcher(id).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("a"), b"2").unwrap();
    etcd.compact(3).unwrap();
    drain(&mut etcd);
    etcd.resume_watcher(id).unwrap();
    assert_eq!(
        drain(&mut etcd),
        vec![WatchResponseKind::Compacted {
            compact_revision: 3
        }]
    );
    assert!(!etcd.is_watching(id));
}

fn etcd_3_4() -> Etcd {
    Etcd::new(EtcdRelease::V3_4, Bugs::NONE)
}

#[test]
fn at_3_4_a_watch_at_exactly_the_compact_revision_misses_a_delete_there() {
    let mut etcd = etcd_3_4();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("b"), b"1").unwrap();
    etcd.delete_range(KeyRange::single(&key("a"))).unwrap();
    etcd.put(&key("b"), b"2").unwrap();
    etcd.compact(4).unwrap();
    watch_from(&mut etcd, 4);
    let kinds = drain(&mut etcd);
    assert_eq!(
        event_revisions(&kinds),
        vec![(EventType::Put, 5)],
        "etcd 3.4 drops the delete at 4"
    );
}

#[test]
fn at_3_6_a_watch_at_exactly_the_compact_revision_gets_the_delete_there() {
    // etcd `keyIndex.compact` keeps the tombstone at the compact revision (etcd#18475).
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("b"), b"1").unwrap();
    etcd.delete_range(KeyRange::single(&key("a"))).unwrap();
    etcd.put(&key("b"), b"2").unwrap();
    etcd.compact(4).unwrap();
    assert_eq!(get(&etcd, "a"), None);
    watch_from(&mut etcd, 4);
    let kinds = drain(&mut etcd);
    assert_eq!(
        event_revisions(&kinds),
        vec![(EventType::Delete, 4), (EventType::Put, 5)]
    );
    let WatchResponseKind::Events(events) = &kinds[1] else {
        panic!("events expected")
    };
    assert_eq!(events[0].prev_kv, None, "the state before it was compacted");
    etcd.compact(5).unwrap();
    watch_from(&mut etcd, 5);
    assert_eq!(
        event_revisions(&drain(&mut etcd)),
        vec![(EventType::Put, 5)],
        "the next compaction drops the tombstone"
    );
}

#[test]
fn a_watch_at_exactly_the_compact_revision_keeps_a_put_there() {
    let mut etcd = Etcd::default();
    etcd.put(&key("a"), b"1").unwrap();
    etcd.put(&key("a"), b"2").unwrap();
    etcd.compact(3).unwrap();
    watch_from(&mut etcd, 3);
    let kinds = drain(&mut etcd);
    assert_eq!(event_revisions(&kinds), vec![(EventType::Put, 3)]);
    let WatchResponseKind::Events(events) = &kinds[1] else {
        panic!("events expected")
    };
    assert_eq!(
        events[0].prev_kv, None,
        "the previous state was compacted away"
    );
}

#[test]
fn a_watch_at_a_future_revision_waits() {
    let mut etcd = Etcd::default();
    watch_from(&mut etcd, 3);
    etcd.put(&key("a"), b"1").unwrap();
    assert_eq!(event_revisions(&drain(&mut etcd)), vec![]);
    etcd.put(&key("a"), b"2").unwrap();
    assert_eq!(
        event_revisions(&drain(&mut etcd)),
        vec![(EventType::Put, 3)]
    );
}

#[test]
fn at_3_4_requested_progress_waits_until_every_event_below_it_was_sent() {
    let mut etcd = etcd_3_4();
    let id = watch_from(&mut etcd, 0);
    etcd.stall_watcher(id).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    drain(&mut etcd);
    etcd.request_progress(id).unwrap();
    assert_eq!(drain(&mut etcd), vec![], "unsynced: progress is deferred");
    etcd.resume_watcher(id).unwrap();
    let kinds = drain(&mut etcd);
    assert!(matches!(kinds[0], WatchResponseKind::Events(_)));
    assert_eq!(kinds[1], WatchResponseKind::Progress);
}

#[test]
fn requested_progress_is_immediate_when_synced() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    drain(&mut etcd);
    etcd.put("/registry/other", b"1").unwrap();
    etcd.request_progress(id).unwrap();
    let response = etcd.poll_response().unwrap();
    assert_eq!(
        (response.kind, response.header_revision),
        (WatchResponseKind::Progress, 2)
    );
}

#[test]
fn at_3_6_requested_progress_on_an_unsynced_stream_is_dropped() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    etcd.stall_watcher(id).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    drain(&mut etcd);
    etcd.request_progress(id).unwrap();
    etcd.resume_watcher(id).unwrap();
    let kinds = drain(&mut etcd);
    assert_eq!(kinds.len(), 1, "the events, and no progress: {kinds:?}");
    etcd.request_progress(id).unwrap();
    assert_eq!(drain(&mut etcd), vec![WatchResponseKind::Progress]);
}

#[test]
fn at_3_6_a_progress_request_covers_every_watch_on_its_stream() {
    let mut etcd = Etcd::default();
    let stream = etcd.open_stream();
    let request = WatchRequest {
        range: KeyRange::prefix(PODS),
        start_revision: 0,
        prev_kv: true,
        progress_notify: false,
    };
    let first = etcd.watch_on_stream(stream, request.clone());
    let second = etcd.watch_on_stream(stream, request.clone());
    let alone = etcd.watch(request);
    etcd.put("/registry/other", b"1").unwrap();
    drain(&mut etcd);
    etcd.stall_watcher(second).unwrap();
    etcd.request_progress(first).unwrap();
    assert_eq!(
        drain(&mut etcd),
        vec![],
        "one watch of the stream is behind"
    );
    etcd.resume_watcher(second).unwrap();
    etcd.request_progress(first).unwrap();
    let ids: Vec<WatchId> = std::iter::from_fn(|| etcd.poll_response())
        .map(|r| r.watch_id)
        .collect();
    assert_eq!(ids, vec![first, second], "not the watch on another stream");
    assert!(etcd.is_watching(alone));
}

#[test]
fn at_3_6_no_progress_reaches_a_watch_whose_start_revision_is_ahead() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 3);
    drain(&mut etcd);
    etcd.progress_tick();
    etcd.request_progress(id).unwrap();
    assert_eq!(drain(&mut etcd), vec![], "revision 1 is below the start 3");
    etcd.put("/registry/other", b"1").unwrap();
    etcd.put("/registry/other", b"2").unwrap();
    etcd.request_progress(id).unwrap();
    assert_eq!(drain(&mut etcd), vec![WatchResponseKind::Progress]);
}

#[test]
fn at_3_6_a_periodic_tick_skips_a_watch_that_just_got_events() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    etcd.put(&key("a"), b"1").unwrap();
    drain(&mut etcd);
    etcd.progress_tick();
    assert_eq!(drain(&mut etcd), vec![], "elided after a key update");
    etcd.progress_tick();
    let response = etcd.poll_response().expect("the next tick notifies");
    assert_eq!(
        (response.watch_id, response.kind),
        (id, WatchResponseKind::Progress)
    );
}

#[test]
fn at_3_4_periodic_progress_skips_unsynced_watchers() {
    let mut etcd = etcd_3_4();
    let synced = watch_from(&mut etcd, 0);
    let behind = watch_from(&mut etcd, 0);
    etcd.stall_watcher(behind).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    drain(&mut etcd);
    etcd.progress_tick();
    let ids: Vec<WatchId> = std::iter::from_fn(|| etcd.poll_response())
        .map(|r| r.watch_id)
        .collect();
    assert_eq!(ids, vec![synced]);
}

#[test]
fn early_progress_bug_notifies_before_pending_events() {
    let mut etcd = Etcd::new(EtcdRelease::V3_6, Bugs::new(Some(Bug::EarlyProgress)));
    let id = watch_from(&mut etcd, 0);
    etcd.stall_watcher(id).unwrap();
    etcd.put(&key("a"), b"1").unwrap();
    drain(&mut etcd);
    etcd.request_progress(id).unwrap();
    assert_eq!(drain(&mut etcd), vec![WatchResponseKind::Progress]);
}

#[test]
fn canceling_a_watch_ends_its_stream() {
    let mut etcd = Etcd::default();
    let id = watch_from(&mut etcd, 0);
    etcd.cancel_watch(id).unwrap();
    assert_eq!(
        drain(&mut etcd),
        vec![WatchResponseKind::Created, WatchResponseKind::Canceled]
    );
    assert_eq!(etcd.cancel_watch(id), Err(EtcdError::NoSuchWatch));
}
