//! One test per row of the LIST (SPEC §2.4) and WATCH (SPEC §2.5) tables, and per rule of
//! readiness (§2.8) and slow watchers (§2.6). A harness mirrors every write into the reference
//! etcd and runs the server oracles on every message a client receives.

use std::collections::BTreeMap;

use super::server::{Apiserver, ApiserverConfig};
use crate::api::{
    ClientMessage, ContinueToken, LabelSelector, ListOptions, ListResponse, RequestError,
    ResourceVersionMatch, ResourceVersionParam as Rv, ServerMessage, StatusReason, WatchEvent,
    WatchOptions,
};
use crate::check::api_oracle::{Freshness, WatchStreamOracle, check_list};
use crate::etcd::reference::ReferenceEtcd;
use crate::etcd::{Etcd, KeyRange, Op, TxnRequest, WatchResponse};
use crate::object::Object;
use crate::sim::{RngStream, SimDuration, SimTime};

const PREFIX: &str = "/registry/pods/";
const CLIENT: usize = 0;

struct Harness {
    now: SimTime,
    etcd: Etcd,
    reference: ReferenceEtcd,
    server: Apiserver,
    /// etcd messages for the apiserver not yet delivered: a lagging cache.
    held: Vec<WatchResponse>,
    lagging: bool,
    watches: BTreeMap<u64, WatchStreamOracle>,
    lists: BTreeMap<u64, (ListOptions, Freshness)>,
    received: Vec<ServerMessage>,
    next_id: u64,
}

impl Harness {
    fn new(config: ApiserverConfig) -> Harness {
        let mut harness = Harness {
            now: SimTime::ZERO,
            etcd: Etcd::default(),
            reference: ReferenceEtcd::default(),
            server: Apiserver::new(
                config,
                PREFIX,
                SimTime::ZERO,
                RngStream::new(1, "apiserver"),
            ),
            held: Vec::new(),
            lagging: false,
            watches: BTreeMap::new(),
            lists: BTreeMap::new(),
            received: Vec::new(),
            next_id: 0,
        };
        harness.advance(SimDuration::ZERO);
        harness
    }

    fn cached() -> Harness {
        Harness::new(ApiserverConfig::default())
    }

    fn uncached() -> Harness {
        Harness::new(ApiserverConfig {
            watch_cache: false,
            ..ApiserverConfig::default()
        })
    }

    fn write(&mut self, name: &str, app: &str, value: u64) {
        let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
        let put = Op::Put {
            key: format!("{PREFIX}{name}"),
            value: Object::encode_body(&labels, value),
            prev_kv: false,
        };
        self.txn(TxnRequest {
            compare: vec![],
            success: vec![put],
            failure: vec![],
        });
    }

    fn delete(&mut self, name: &str) {
        let delete = Op::DeleteRange {
            range: KeyRange::single(&format!("{PREFIX}{name}")),
            prev_kv: false,
        };
        self.txn(TxnRequest {
            compare: vec![],
            success: vec![delete],
            failure: vec![],
        });
    }

    /// A write outside the resource: the global revision moves, no event for this resource.
    fn bump_global_revision(&mut self) {
        let put = Op::Put {
            key: "/registry/other".to_owned(),
            value: vec![],
            prev_kv: false,
        };
        self.txn(TxnRequest {
            compare: vec![],
            success: vec![put],
            failure: vec![],
        });
    }

    fn txn(&mut self, request: TxnRequest) {
        assert_eq!(self.etcd.txn(&request), self.reference.txn(&request));
        self.pump();
    }

    /// Delivers etcd's messages (unless the cache lags) and the timers due, then collects
    /// what clients receive, checking each against the oracles.
    fn pump(&mut self) {
        while let Some(response) = self.etcd.poll_response() {
            self.held.push(response);
        }
        if !self.lagging {
            for response in std::mem::take(&mut self.held) {
                if self.server.owns_etcd_watch(response.watch_id) {
                    self.server
                        .handle_etcd_response(self.now, &mut self.etcd, response);
                }
            }
        }
        while let Some((client, message)) = self.server.poll_message() {
            assert_eq!(client, CLIENT);
            self.check(&message);
            self.received.push(message);
        }
    }

    fn check(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::List {
                id,
                result: Ok(page),
            } => {
                let (options, freshness) = &self.lists[id];
                check_list(&self.reference, PREFIX, options, *freshness, page)
                    .expect("list oracle");
            }
            ServerMessage::WatchEvent { id, event } => {
                let oracle = self.watches.get_mut(id).expect("a watch");
                oracle
                    .observe(&self.reference, event)
                    .expect("watch oracle");
            }
            _ => {}
        }
    }

    fn advance(&mut self, by: SimDuration) {
        let until = self.now + by;
        loop {
            self.pump();
            match self.server.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.server.handle_timeout(self.now, &mut self.etcd);
                }
                _ => break,
            }
        }
        self.now = until;
        self.pump();
    }

    fn list(&mut self, options: ListOptions) -> u64 {
        let id = self.request_id();
        self.lists.insert(
            id,
            (
                options.clone(),
                Freshness::of(&options, self.etcd.revision()),
            ),
        );
        self.server.handle_client_message(
            self.now,
            &mut self.etcd,
            CLIENT,
            ClientMessage::List { id, options },
        );
        self.pump();
        id
    }

    fn watch(&mut self, options: WatchOptions) -> u64 {
        let id = self.request_id();
        self.watches
            .insert(id, WatchStreamOracle::new(PREFIX, &options));
        self.server.handle_client_message(
            self.now,
            &mut self.etcd,
            CLIENT,
            ClientMessage::Watch { id, options },
        );
        self.pump();
        id
    }

    fn request_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn list_result(&self, id: u64) -> Option<&Result<ListResponse, RequestError>> {
        self.received.iter().find_map(|message| match message {
            ServerMessage::List { id: got, result } if *got == id => Some(result),
            _ => None,
        })
    }

    fn page(&self, id: u64) -> &ListResponse {
        self.list_result(id)
            .expect("answered")
            .as_ref()
            .expect("a page")
    }

    fn list_error(&self, id: u64) -> StatusReason {
        match self.list_result(id).expect("answered") {
            Err(RequestError::Status(status)) => status.reason,
            other => panic!("expected an error status, got {other:?}"),
        }
    }

    fn stream(&self, id: u64) -> Vec<String> {
        self.received
            .iter()
            .filter_map(|message| match message {
                ServerMessage::WatchEvent { id: got, event } if *got == id => Some(describe(event)),
                ServerMessage::WatchClosed { id: got } if *got == id => Some("CLOSED".to_owned()),
                ServerMessage::WatchRejected { id: got, error } if *got == id => {
                    Some(format!("REJECTED {error:?}"))
                }
                _ => None,
            })
            .collect()
    }
}

fn describe(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Added(object) => format!("ADDED {object}"),
        WatchEvent::Modified(object) => format!("MODIFIED {object}"),
        WatchEvent::Deleted(object) => format!("DELETED {object}"),
        WatchEvent::Bookmark {
            resource_version,
            initial_events_end,
        } => {
            format!(
                "BOOKMARK {resource_version}{}",
                if *initial_events_end { " end" } else { "" }
            )
        }
        WatchEvent::Error(status) => format!("ERROR {}", status.code),
    }
}

fn watch_options(resource_version: Rv) -> WatchOptions {
    WatchOptions {
        resource_version,
        resource_version_match: ResourceVersionMatch::Unset,
        send_initial_events: false,
        allow_watch_bookmarks: false,
        timeout_ms: Some(600_000),
        label_selector: None,
    }
}

fn watch_list_options(resource_version: Rv) -> WatchOptions {
    WatchOptions {
        resource_version_match: ResourceVersionMatch::NotOlderThan,
        send_initial_events: true,
        allow_watch_bookmarks: true,
        ..watch_options(resource_version)
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
fn exact_list_reads_etcd_at_n_and_410s_when_compacted() {
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
    let id = h.list(exact);
    assert_eq!(h.list_error(id), StatusReason::Expired);
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
fn expired_continue_token_is_410() {
    let mut h = Harness::cached();
    for name in ["ns/a", "ns/b", "ns/c"] {
        h.write(name, "x", 1);
    }
    h.write("ns/a", "x", 2);
    h.etcd.compact(5).unwrap();
    h.reference.compact(5).unwrap();
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
        history_capacity: 2,
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
        history_capacity: 2,
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
    h.server.set_client_reading(h.now, CLIENT, false);
    for value in 0..11 {
        h.write("ns/a", "x", value);
    }
    h.advance(SimDuration::from_millis(150));
    assert_eq!(h.server.stats().slow_terminations, 2);
    assert_eq!(h.stream(slow).last().map(String::as_str), Some("CLOSED"));
    assert!(
        !h.stream(slow)
            .iter()
            .any(|event| event.starts_with("ERROR"))
    );
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
