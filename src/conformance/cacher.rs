//! Cases of the cacher's own tests (`pkg/storage/cacher/cacher_whitebox_test.go`) that the
//! watch cache's history intervals make reachable. Without the cache, the etcd3 watcher has no
//! interval; each case says what it must do there instead.

use std::collections::BTreeMap;

use super::{ConformanceCase, Mode, ensure};
use crate::api::{Field, FieldSelector, ResourceVersionParam, WatchOptions};
use crate::apiserver::cache_watcher::INTERVAL_BUFFER_SIZE;
use crate::apiserver::server::{ApiserverConfig, TestOnlySizes};
use crate::object::Object;
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::{CLIENT, Harness, watch_options};

/// `TestCacheIntervalInvalidationStopsWatch`: a watch served from a history interval whose
/// events the history drops before they are read stops after the buffer it already read,
/// every event it sent an ADDED, and no error.
///
/// Upstream forces the invalidation with an index validator that fails the second fill. Here
/// a 300-event history (test only) drops the interval's second buffer while the client does
/// not read; the watch selects one node so that the events written meanwhile (on another node)
/// are not offered to it and never block the dispatcher. Without the cache the etcd3 watcher
/// sends all 250 once the client reads again.
pub(super) const CACHE_INTERVAL_INVALIDATION_STOPS_WATCH: ConformanceCase = ConformanceCase {
    name: "TestCacheIntervalInvalidationStopsWatch",
    summary: "a history interval dropped before it is read ends the watch after its first buffer",
    run: |mode| {
        const PODS: u64 = 250;
        let mut h = Harness::new(ApiserverConfig {
            test_only: TestOnlySizes {
                history_capacity: Some(300),
                ..TestOnlySizes::default()
            },
            ..mode.config()
        });
        let write_on = |h: &mut Harness, name: String, node: &str| {
            let body = Object::encode_body_on_node(&BTreeMap::new(), 0, node);
            h.write_body(&format!("ns/{name}"), body).resource_version
        };
        let before = h.etcd.revision();
        for index in 0..PODS {
            write_on(&mut h, format!("pod-{}", 1000 + index), "node-1");
        }
        h.server
            .set_client_reading(h.now, &mut h.etcd, CLIENT, false);
        let id = h.watch(WatchOptions {
            field_selector: Some(FieldSelector::equal(Field::SpecNodeName, "node-1")),
            ..watch_options(ResourceVersionParam::At(before))
        });
        for index in 0..300 {
            write_on(&mut h, format!("other-{index}"), "node-2");
        }
        h.server
            .set_client_reading(h.now, &mut h.etcd, CLIENT, true);
        h.advance(SimDuration::from_millis(100));
        let stream = h.stream(id);
        let added = stream
            .iter()
            .filter(|line| line.starts_with("ADDED"))
            .count();
        ensure(
            added == stream.iter().filter(|line| *line != "CLOSED").count(),
            || format!("only ADDED events: {stream:?}"),
        )?;
        let (sent, closed) = match mode {
            Mode::Cache => (INTERVAL_BUFFER_SIZE, true),
            Mode::NoCache => (PODS as usize, false),
        };
        ensure(added == sent, || {
            format!("{added} events sent, want {sent}")
        })?;
        let ended = stream.last().map(String::as_str) == Some("CLOSED");
        ensure(ended == closed, || {
            format!("closed: {ended}, want {closed}")
        })?;
        if mode == Mode::Cache {
            let invalidated = h.server.stats().intervals_invalidated;
            ensure(invalidated == 1, || {
                format!("{invalidated} intervals invalidated")
            })?;
            // The client's next watch, from the last RV it got, learns that it is too old.
            let last = before + INTERVAL_BUFFER_SIZE as u64;
            let again = h.watch(watch_options(ResourceVersionParam::At(last)));
            let answer = h.stream(again);
            ensure(answer == ["ERROR 410", "CLOSED"], || format!("{answer:?}"))?;
        }
        h.check_oracles()
    },
};
