//! One test per row of the LIST (SPEC §2.4) and WATCH (SPEC §2.5) tables, and per rule of
//! readiness (§2.8) and slow watchers (§2.6). A harness mirrors every write into the reference
//! etcd and runs the server oracles on every message a client receives (the testkit's
//! apiserver pair).

use informer_sim::api::{
    ContinueToken, LabelSelector, ListOptions, ResourceVersionMatch, ResourceVersionParam as Rv,
    StatusReason, WatchOptions,
};
use informer_sim::apiserver::server::{ApiserverConfig, TestOnlySizes};
use informer_sim::sim::SimDuration;
use informer_sim::testkit::apiserver_pair::{CLIENT, Harness, watch_list_options, watch_options};

/// TEST ONLY: a two-event history, which no real apiserver has (upstream keeps 75 s).
fn tiny_history() -> TestOnlySizes {
    TestOnlySizes {
        history_capacity: Some(2),
        ..TestOnlySizes::default()
    }
}

fn not_older_than(revision: u64) -> ListOptions {
    ListOptions {
        resource_version_match: ResourceVersionMatch::NotOlderThan,
        ..ListOptions::at(Rv::At(revision))
    }
}

#[test]
fn consistent_list_waits_for_the_cache_then_serves_it() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.lagging = true;
    h.write("ns/b", "x", 1);
    let id = h.list(ListOptions::at(Rv::Unset));
    assert!(
        h.list_result(id).is_none(),
        "the cache is behind etcd: the list waits"
    );
    h.lagging = false;
    h.advance(SimDuration::from_millis(100));
    assert_eq!(h.page(id).items.len(), 2);
    assert_eq!(h.server.stats().etcd_fallbacks, 0);
}

#[test]
fn consistent_list_reaches_a_global_revision_through_progress_notifications() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.bump_global_revision();
    let id = h.list(ListOptions::at(Rv::Unset));
    h.advance(SimDuration::from_millis(200));
    assert_eq!(
        h.page(id).resource_version,
        3,
        "the progress notification carried the cache to 3"
    );
}

#[test]
fn consistent_list_falls_back_to_etcd_after_three_seconds() {
    let mut h = Harness::cached();
    h.lagging = true;
    h.write("ns/a", "x", 1);
    let id = h.list(ListOptions::at(Rv::Unset));
    h.advance(SimDuration::from_millis(2_999));
    assert!(h.list_result(id).is_none());
    h.advance(SimDuration::from_millis(1));
    assert_eq!(h.page(id).resource_version, 2);
    assert_eq!(h.server.stats().etcd_fallbacks, 1);
}

#[test]
fn list_at_zero_serves_a_stale_cache_without_waiting() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.lagging = true;
    h.write("ns/b", "x", 1);
    let id = h.list(ListOptions {
        limit: 1,
        ..ListOptions::at(Rv::Zero)
    });
    let page = h.page(id);
    assert_eq!(
        (page.items.len(), page.resource_version),
        (1, 2),
        "stale, and the limit is ignored"
    );
}

#[test]
fn list_not_older_than_waits_then_answers_too_large() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.list(not_older_than(9));
    h.advance(SimDuration::from_secs(3));
    assert_eq!(h.list_error(id), StatusReason::Timeout);
}

#[test]
fn list_at_n_without_limit_is_not_older_than_n() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.write("ns/a", "x", 2);
    let id = h.list(ListOptions::at(Rv::At(2)));
    assert_eq!(
        h.page(id).resource_version,
        3,
        "served from the cache at its newer RV"
    );
}

#[test]
fn exact_list_is_a_snapshot_until_the_compactor_drops_it_then_etcd_answers_410() {
    // `ListFromCacheSnapshot`: the cache serves exact RVs it keeps a snapshot of; the cacher's
    // compactor drops those below etcd's compact revision every 15 s (`compactor.go`), and
    // what the cache cannot serve goes to etcd.
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.write("ns/a", "x", 2);
    let id = h.list(ListOptions {
        limit: 10,
        ..ListOptions::at(Rv::At(2))
    });
    assert_eq!(h.page(id).items[0].value, 1);
    h.etcd.compact(3).unwrap();
    h.reference.compact(3).unwrap();
    let exact = ListOptions {
        resource_version_match: ResourceVersionMatch::Exact,
        ..ListOptions::at(Rv::At(2))
    };
    let id = h.list(exact.clone());
    assert_eq!(h.page(id).items[0].value, 1, "the snapshot at 2 is kept");
    h.advance(SimDuration::from_secs(15));
    let id = h.list(exact);
    assert_eq!(h.list_error(id), StatusReason::Expired);
}

#[test]
fn a_list_with_a_limit_is_paged_from_the_cache_and_continued_from_its_snapshot() {
    let mut h = Harness::cached();
    for name in ["ns/a", "ns/b", "ns/c"] {
        h.write(name, "x", 1);
    }
    let first = h.list(ListOptions {
        limit: 2,
        ..ListOptions::at(Rv::Unset)
    });
    let page = h.page(first).clone();
    let token = page.continue_token.clone().expect("a continue token");
    assert_eq!(
        (
            page.items.len(),
            token.last_key.as_str(),
            token.resource_version
        ),
        (2, "ns/b", 4)
    );
    h.delete("ns/c");
    h.lagging = true;
    let next = h.list(ListOptions {
        limit: 2,
        continue_token: Some(token),
        ..ListOptions::at(Rv::Unset)
    });
    assert_eq!(h.page(next).items.len(), 1, "ns/c at the token's RV 4");
    assert_eq!(h.server.stats().cache_pages, 1);
    h.check_oracles().unwrap();
}

#[test]
fn an_exact_list_ahead_of_a_lagging_cache_waits_three_seconds_then_504() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.lagging = true;
    h.write("ns/a", "x", 2);
    let id = h.list(ListOptions {
        limit: 10,
        ..ListOptions::at(Rv::At(3))
    });
    h.advance(SimDuration::from_millis(2_999));
    assert!(h.list_result(id).is_none(), "waits for the cache");
    h.advance(SimDuration::from_millis(1));
    assert_eq!(h.list_error(id), StatusReason::Timeout);
    assert_eq!(h.server.stats().snapshot_timeouts, 1);
}

#[test]
fn without_progress_requests_consistent_lists_go_to_etcd_and_watch_lists_are_refused() {
    // `ConsistentReadSupported` false (etcd without `RequestWatchProgress`).
    let mut h = Harness::new(ApiserverConfig {
        progress_requests: false,
        ..ApiserverConfig::default()
    });
    h.write("ns/a", "x", 1);
    h.lagging = true;
    h.write("ns/b", "x", 1);
    let id = h.list(ListOptions::at(Rv::Unset));
    assert_eq!(h.page(id).items.len(), 2, "etcd at once, no 3 s wait");
    assert_eq!(h.server.stats().etcd_fallbacks, 0);
    let watch_list = h.watch(watch_list_options(Rv::Unset));
    assert_eq!(h.stream(watch_list), ["ERROR 500", "CLOSED"]);
}

#[test]
fn contradictory_list_options_are_a_bad_request() {
    let mut h = Harness::cached();
    let id = h.list(ListOptions {
        resource_version_match: ResourceVersionMatch::Exact,
        ..ListOptions::at(Rv::Zero)
    });
    assert_eq!(h.list_error(id), StatusReason::BadRequest);
}

#[test]
fn continue_token_reads_the_next_page_at_the_token_revision() {
    let mut h = Harness::cached();
    for name in ["ns/a", "ns/b", "ns/c"] {
        h.write(name, "x", 1);
    }
    let first = h.list(ListOptions {
        limit: 2,
        ..ListOptions::at(Rv::At(4))
    });
    let token = h.page(first).continue_token.clone().expect("more");
    h.delete("ns/c");
    let next = h.list(ListOptions {
        limit: 2,
        continue_token: Some(token),
        ..ListOptions::at(Rv::Unset)
    });
    assert_eq!(
        h.page(next).items.len(),
        1,
        "ns/c still exists at the token's revision"
    );
}

#[test]
fn expired_continue_token_is_410_once_no_snapshot_serves_it() {
    let mut h = Harness::cached();
    for name in ["ns/a", "ns/b", "ns/c"] {
        h.write(name, "x", 1);
    }
    h.write("ns/a", "x", 2);
    h.etcd.compact(5).unwrap();
    h.reference.compact(5).unwrap();
    h.advance(SimDuration::from_secs(15));
    let token = ContinueToken {
        last_key: "ns/a".to_owned(),
        resource_version: 4,
    };
    let id = h.list(ListOptions {
        limit: 2,
        continue_token: Some(token),
        ..ListOptions::at(Rv::Unset)
    });
    assert_eq!(h.list_error(id), StatusReason::Expired);
}

#[test]
fn not_ready_cache_answers_429_except_unfiltered_limited_lists() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.server
        .restart(h.now, h.now + SimDuration::from_secs(5), &mut h.etcd);
    let plain = h.list(ListOptions::at(Rv::Unset));
    assert_eq!(h.list_error(plain), StatusReason::TooManyRequests);
    let limited = h.list(ListOptions {
        limit: 5,
        ..ListOptions::at(Rv::Unset)
    });
    assert_eq!(h.page(limited).items.len(), 1, "delegated to etcd");
    let watch = h.watch(watch_options(Rv::At(2)));
    assert!(
        h.stream(watch)[0].starts_with("REJECTED"),
        "{:?}",
        h.stream(watch)
    );
}

#[test]
fn watch_from_n_delivers_events_strictly_after_n() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.write("ns/a", "x", 2);
    let id = h.watch(watch_options(Rv::At(2)));
    h.delete("ns/a");
    assert_eq!(h.stream(id), ["MODIFIED ns/a@3", "DELETED ns/a@4"]);
}

#[test]
fn watch_from_an_evicted_rv_gets_410_as_an_error_event_then_close() {
    let mut h = Harness::new(ApiserverConfig {
        test_only: tiny_history(),
        ..ApiserverConfig::default()
    });
    for value in 1..=4 {
        h.write("ns/a", "x", value);
    }
    let id = h.watch(watch_options(Rv::At(2)));
    assert_eq!(h.stream(id), ["ERROR 410", "CLOSED"]);
}

#[test]
fn http_410_form_rejects_the_watch_request_itself() {
    let mut h = Harness::new(ApiserverConfig {
        test_only: tiny_history(),
        http_410_watch_errors: true,
        ..ApiserverConfig::default()
    });
    for value in 1..=4 {
        h.write("ns/a", "x", value);
    }
    let id = h.watch(watch_options(Rv::At(2)));
    assert_eq!(h.stream(id).len(), 1);
    assert!(h.stream(id)[0].contains("Expired"));
}

#[test]
fn watch_from_zero_sends_the_cache_state_then_live_events() {
    let mut h = Harness::cached();
    h.write("ns/b", "x", 1);
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_options(Rv::Zero));
    h.write("ns/c", "x", 1);
    assert_eq!(
        h.stream(id),
        ["ADDED ns/a@3", "ADDED ns/b@2", "ADDED ns/c@4"]
    );
}

#[test]
fn unset_watch_is_served_like_zero_from_the_cache() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_options(Rv::Unset));
    assert_eq!(h.stream(id), ["ADDED ns/a@2"]);
}

#[test]
fn watch_list_sends_state_then_the_end_bookmark_then_live_events() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    h.bump_global_revision();
    let id = h.watch(watch_list_options(Rv::Unset));
    h.advance(SimDuration::from_millis(200));
    h.write("ns/b", "x", 1);
    assert_eq!(
        h.stream(id),
        ["ADDED ns/a@2", "BOOKMARK 3 end", "ADDED ns/b@4"]
    );
}

#[test]
fn watch_list_that_the_cache_cannot_reach_fails_with_too_large() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_list_options(Rv::At(50)));
    h.advance(SimDuration::from_secs(3));
    assert_eq!(h.stream(id), ["ERROR 504", "CLOSED"]);
}

#[test]
fn selector_transition_out_of_the_watch_is_a_delete() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let options = WatchOptions {
        label_selector: Some(LabelSelector {
            name: "app".into(),
            value: "x".into(),
        }),
        ..watch_options(Rv::At(2))
    };
    let id = h.watch(options);
    h.write("ns/a", "y", 2);
    h.write("ns/a", "x", 3);
    assert_eq!(h.stream(id), ["DELETED ns/a@3", "ADDED ns/a@4"]);
}

#[test]
fn bookmarks_carry_the_last_processed_rv_every_minute() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(WatchOptions {
        allow_watch_bookmarks: true,
        ..watch_options(Rv::At(2))
    });
    h.bump_global_revision();
    h.etcd.progress_tick();
    assert_eq!(
        h.server.cache_resource_version(),
        Some(2),
        "etcd 3.6 skips a tick after events"
    );
    h.etcd.progress_tick();
    h.advance(SimDuration::from_secs(5));
    assert!(
        h.stream(id).is_empty(),
        "the first bookmark is due after about a minute"
    );
    h.advance(SimDuration::from_secs(61));
    assert_eq!(
        h.stream(id),
        ["BOOKMARK 3"],
        "a global revision from etcd's progress notification"
    );
}

#[test]
fn watch_ends_cleanly_at_its_timeout() {
    let mut h = Harness::cached();
    let id = h.watch(WatchOptions {
        timeout_ms: Some(1_000),
        ..watch_options(Rv::Zero)
    });
    h.advance(SimDuration::from_millis(1_000));
    assert_eq!(h.stream(id), ["CLOSED"]);
}

#[test]
fn slow_watcher_is_terminated_without_an_error_once_the_budget_runs_out() {
    let mut h = Harness::cached();
    let slow = h.watch(watch_options(Rv::Zero));
    h.watch(watch_options(Rv::Zero));
    h.advance(SimDuration::from_secs(2));
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
    // Ten events fill the result channel, ten more the input buffer; the next one blocks.
    for value in 0..21 {
        h.write("ns/a", "x", value);
    }
    h.advance(SimDuration::from_millis(150));
    assert_eq!(h.server.stats().slow_terminations, 2);
    assert!(h.stream(slow).is_empty(), "the client reads nothing yet");
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, true);
    h.advance(SimDuration::from_millis(1));
    let stream = h.stream(slow);
    assert_eq!(
        stream.len(),
        11,
        "the result channel's ten events, then the close: {stream:?}"
    );
    assert_eq!(stream.last().map(String::as_str), Some("CLOSED"));
    assert!(!stream.iter().any(|event| event.starts_with("ERROR")));
}

#[test]
fn a_blocked_dispatch_stops_the_cache_after_a_hundred_undispatched_events() {
    let mut h = Harness::cached();
    h.watch(watch_options(Rv::Zero));
    h.advance(SimDuration::from_secs(2));
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
    // Twenty events fill the slow watcher's buffers; the 21st blocks dispatch, the next 100
    // fill `incoming`, and the cache stops at the 121st while the budget lasts.
    let written: Vec<u64> = (0..150)
        .map(|value| h.write("ns/a", "x", value).resource_version)
        .collect();
    let cache_rv = |h: &mut Harness| {
        let id = h.list(ListOptions::at(Rv::Zero));
        h.page(id).resource_version
    };
    assert_eq!(cache_rv(&mut h), written[120]);
    h.advance(SimDuration::from_millis(150));
    assert_eq!(h.server.stats().slow_terminations, 1);
    assert_eq!(
        cache_rv(&mut h),
        written[149],
        "dispatch went on: the cache caught up"
    );
    h.check_oracles().unwrap();
}

#[test]
fn reinit_after_a_compacted_upstream_closes_watchers_and_old_rvs_get_410() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_options(Rv::At(2)));
    h.etcd.stall_watcher(0).unwrap();
    h.write("ns/a", "x", 2);
    h.write("ns/a", "x", 3);
    h.etcd.compact(4).unwrap();
    h.reference.compact(4).unwrap();
    h.etcd.resume_watcher(0).unwrap();
    h.advance(SimDuration::from_millis(1_000));
    assert_eq!(h.server.stats().reinits, 1);
    assert_eq!(h.stream(id).last().map(String::as_str), Some("CLOSED"));
    let again = h.watch(watch_options(Rv::At(2)));
    assert_eq!(h.stream(again), ["ERROR 410", "CLOSED"]);
}

#[test]
fn an_internal_error_on_the_cachers_watch_freezes_the_cache_then_it_rewatches() {
    // `reflector.MaxInternalErrorRetryDuration` = 30 s: no re-initialization, no watcher
    // terminated; the cache stays ready and stops advancing while etcd has no leader.
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_options(Rv::At(2)));
    let until = h.now + SimDuration::from_secs(5);
    h.server.break_cache_watch(h.now, until, &mut h.etcd);
    h.write("ns/a", "x", 2);
    h.advance(SimDuration::from_secs(1));
    assert_eq!(h.server.cache_ready(), Some(true));
    assert_eq!(h.server.cache_resource_version(), Some(2), "frozen");
    let frozen = h.list(ListOptions::at(Rv::Zero));
    assert_eq!(h.page(frozen).resource_version, 2);
    assert!(h.stream(id).is_empty());
    h.advance(SimDuration::from_secs(5));
    assert_eq!(h.stream(id), ["MODIFIED ns/a@3"], "re-watched from RV 2");
    let stats = h.server.stats();
    assert_eq!((stats.reinits, stats.cache_rewatches), (0, 1));
    h.check_oracles().unwrap();
}

#[test]
fn internal_errors_for_more_than_thirty_seconds_reinitialize_the_cache() {
    let mut h = Harness::cached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_options(Rv::At(2)));
    let until = h.now + SimDuration::from_secs(40);
    h.server.break_cache_watch(h.now, until, &mut h.etcd);
    h.advance(SimDuration::from_secs(30));
    assert_eq!(h.server.cache_ready(), Some(true), "still within 30 s");
    h.advance(SimDuration::from_millis(200));
    assert_eq!(h.server.cache_ready(), Some(false), "gave up: pending");
    h.advance(SimDuration::from_secs(1));
    assert_eq!(
        h.stream(id),
        ["CLOSED"],
        "the re-initialization ends every watch"
    );
    h.advance(SimDuration::from_secs(8));
    assert_eq!(h.server.cache_ready(), Some(false), "its list fails too");
    h.write("ns/a", "x", 2);
    h.advance(SimDuration::from_secs(2));
    assert_eq!(h.server.cache_ready(), Some(true));
    assert_eq!(h.server.cache_resource_version(), Some(3));
    assert_eq!(h.server.stats().reinits, 1);
}

#[test]
fn without_cache_a_watch_from_n_streams_etcd_from_n_plus_one() {
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 1);
    h.write("ns/a", "x", 2);
    let id = h.watch(watch_options(Rv::At(2)));
    h.delete("ns/a");
    assert_eq!(h.stream(id), ["MODIFIED ns/a@3", "DELETED ns/a@4"]);
}

#[test]
fn without_cache_a_compacted_watch_is_410() {
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 1);
    h.write("ns/a", "x", 2);
    h.etcd.compact(3).unwrap();
    h.reference.compact(3).unwrap();
    let id = h.watch(watch_options(Rv::At(1)));
    assert_eq!(h.stream(id), ["ERROR 410", "CLOSED"]);
}

#[test]
fn without_cache_lists_read_etcd_at_its_latest_revision() {
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 1);
    h.bump_global_revision();
    let id = h.list(ListOptions::at(Rv::Zero));
    assert_eq!(h.page(id).resource_version, 3);
    let too_new = h.list(not_older_than(9));
    assert_eq!(h.list_error(too_new), StatusReason::Timeout);
}

#[test]
fn without_cache_watch_list_ends_its_initial_events_with_a_bookmark() {
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 1);
    let id = h.watch(watch_list_options(Rv::Unset));
    h.write("ns/b", "x", 1);
    assert_eq!(
        h.stream(id),
        ["ADDED ns/a@2", "BOOKMARK 2 end", "ADDED ns/b@3"]
    );
}

#[test]
fn without_cache_a_watch_gets_no_heartbeat_bookmarks() {
    // Only the cacher's own etcd watch asks for progress notifications (`lister_watcher.go`);
    // a client's etcd3 watch cannot (`etcd3/watcher.go startWatching`).
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 1);
    let id = h.watch(WatchOptions {
        allow_watch_bookmarks: true,
        ..watch_options(Rv::At(2))
    });
    h.bump_global_revision();
    for _ in 0..3 {
        h.progress_tick();
        h.advance(SimDuration::from_secs(61));
    }
    assert!(h.stream(id).is_empty(), "{:?}", h.stream(id));
}

#[test]
fn without_cache_a_client_that_stops_reading_falls_behind_and_compaction_ends_its_watch() {
    // The etcd3 watcher's two 100-event channels fill and block; its etcd watch falls behind,
    // and a compaction past it ends the watch with 410 (`interpretWatchError`).
    let mut h = Harness::uncached();
    h.write("ns/a", "x", 0);
    let id = h.watch(watch_options(Rv::At(2)));
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
    for value in 1..=250 {
        h.write("ns/a", "x", value);
    }
    h.compact(h.etcd.revision());
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, true);
    h.advance(SimDuration::from_millis(30));
    let stream = h.stream(id);
    assert_eq!(stream.len(), 202, "200 buffered events, then the end");
    assert_eq!(stream[199], "MODIFIED ns/a@202");
    assert_eq!(stream[200..], ["ERROR 410", "CLOSED"]);
    h.check_oracles().unwrap();
}

/// A cache holding `count` objects, written before any watch, with the time budget full.
fn cache_of(count: u64) -> Harness {
    let mut h = Harness::cached();
    for index in 0..count {
        h.write(&format!("ns/{index:05}"), "x", 1);
    }
    h.advance(SimDuration::from_secs(2));
    h
}

#[test]
fn a_large_initial_state_goes_out_ten_events_a_millisecond() {
    let mut h = cache_of(500);
    let id = h.watch(watch_list_options(Rv::Unset));
    assert_eq!(h.stream(id).len(), 10, "one millisecond's worth at once");
    h.advance(SimDuration::from_millis(20));
    assert_eq!(h.stream(id).len(), 210);
    h.advance(SimDuration::from_millis(30));
    let stream = h.stream(id);
    assert_eq!(stream.len(), 501, "the state, then the end bookmark");
    assert!(
        stream
            .last()
            .is_some_and(|last| last.starts_with("BOOKMARK"))
    );
    h.check_oracles().unwrap();
}

#[test]
fn a_watcher_still_streaming_a_large_initial_state_is_cut_off_by_live_events() {
    // F4: 2,000 objects take 200 ms to send; a hundred live events fill the watcher's input
    // (about a second of history: 28 events) and block the dispatcher, whose 100 ms budget
    // ends before the state has gone out.
    let mut h = cache_of(2_000);
    let id = h.watch(watch_list_options(Rv::Unset));
    for value in 0..100 {
        h.write("ns/live", "x", value);
    }
    h.advance(SimDuration::from_millis(300));
    let stats = h.server.stats();
    assert_eq!(stats.slow_terminations, 1);
    assert_eq!(stats.initial_events_cut_offs, 1);
    let stream = h.stream(id);
    let added = stream
        .iter()
        .filter(|event| event.starts_with("ADDED"))
        .count();
    assert!(
        (1_000..2_000).contains(&added),
        "cut off part-way: {added} objects sent"
    );
    assert_eq!(stream.last().map(String::as_str), Some("CLOSED"));
    assert!(
        !stream
            .iter()
            .any(|event| event.starts_with("BOOKMARK") || event.starts_with("ERROR")),
        "no end bookmark and no error event"
    );
    h.check_oracles().unwrap();
}

#[test]
fn a_small_initial_state_outruns_the_same_live_events() {
    // The same live events, after a state sent within the budget: nothing is cut off.
    let mut h = cache_of(300);
    let id = h.watch(watch_list_options(Rv::Unset));
    for value in 0..100 {
        h.write("ns/live", "x", value);
    }
    h.advance(SimDuration::from_millis(300));
    assert_eq!(h.server.stats().slow_terminations, 0);
    let stream = h.stream(id);
    assert_eq!(
        stream.len(),
        300 + 1 + 100,
        "state, end bookmark, live events"
    );
    h.check_oracles().unwrap();
}

#[test]
fn a_slow_watch_list_watcher_whose_end_bookmark_is_buffered_drains_before_it_closes() {
    // F4's graceful path (`cacheWatcher.add`): a client that stops reading at once; the end
    // bookmark reaches the watcher's input at the next bookmark tick; live events then fill
    // the input and the dispatcher terminates the watcher, gracefully: what it holds, end
    // bookmark included, still goes out once the client reads, and then the watch closes.
    let mut h = cache_of(300);
    let id = h.watch(watch_list_options(Rv::Unset));
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
    h.advance(SimDuration::from_secs(2));
    for value in 0..100 {
        h.write("ns/live", "x", value);
    }
    h.advance(SimDuration::from_millis(300));
    let stats = h.server.stats();
    assert_eq!((stats.slow_terminations, stats.graceful_drains), (1, 1));
    assert_eq!(
        stats.initial_events_cut_offs, 1,
        "the state was still unsent"
    );
    h.server
        .set_client_reading(h.now, &mut h.etcd, CLIENT, true);
    h.advance(SimDuration::from_millis(100));
    let stream = h.stream(id);
    let state = stream
        .iter()
        .filter(|e| e.starts_with("ADDED ns/0"))
        .count();
    assert_eq!(state, 300, "the whole state goes out: {stream:?}");
    assert_eq!(
        stream[300], "BOOKMARK 301 end",
        "the end bookmark follows the state"
    );
    let drained = &stream[301..stream.len() - 1];
    assert!(
        !drained.is_empty() && drained.iter().all(|e| e.contains("ns/live")),
        "then the live events its input held: {drained:?}"
    );
    assert_eq!(stream.last().map(String::as_str), Some("CLOSED"));
    h.check_oracles().unwrap();
}
