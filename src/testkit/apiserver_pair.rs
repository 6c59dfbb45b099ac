//! A test harness for one apiserver over the fake etcd: every write is mirrored into the naive
//! reference etcd, and every message a client receives goes through the server oracles
//! ([`WatchStreamOracle`], [`check_list`]).
//!
//! Used by the apiserver's unit tests and by the storage conformance cases
//! ([`crate::conformance`]). Nothing runs on its own: writes, requests and
//! [`Harness::advance`] pump etcd's watch messages and the apiserver's timers, in order.
//!
//! ```
//! use informer_sim::api::ResourceVersionParam;
//! use informer_sim::testkit::apiserver_pair::{Harness, watch_options};
//!
//! let mut h = Harness::cached();
//! h.write("ns/a", "x", 1);
//! let id = h.watch(watch_options(ResourceVersionParam::At(1)));
//! assert_eq!(h.stream(id), ["ADDED ns/a@2"]);
//! h.check_oracles().unwrap();
//! ```

use std::collections::BTreeMap;

use crate::api::{
    ClientMessage, ListOptions, ListResponse, RequestError, ResourceVersionMatch,
    ResourceVersionParam, ServerMessage, StatusReason, WatchEvent, WatchOptions,
};
use crate::apiserver::server::{Apiserver, ApiserverConfig};
use crate::bug::Bugs;
use crate::check::api_oracle::{Freshness, WatchStreamOracle, check_list};
use crate::check::resource::ResourceHistory;
use crate::check::truth::GroundTruth;
use crate::etcd::{Etcd, KeyRange, Op, TxnRequest, WatchResponse};
use crate::object::{Object, ResourceVersion};
use crate::sim::{RngStream, SimDuration, SimTime};

/// The resource prefix the harness's apiserver serves.
pub const PREFIX: &str = "/registry/pods/";
/// The client that requests come from unless a test names another.
pub const CLIENT: usize = 0;

/// One watch request: who asked, and the oracle its events must satisfy.
struct WatchRecord {
    client: usize,
    oracle: WatchStreamOracle,
}

/// etcd, its reference, and one apiserver, driven step by step.
pub struct Harness {
    /// Simulated time.
    pub now: SimTime,
    /// The fake etcd the apiserver reads.
    pub etcd: Etcd,
    /// The naive etcd every write is mirrored into: the oracles' ground truth.
    pub reference: GroundTruth,
    /// The reference's history of the resource, decoded: what the oracles compare with.
    pub resource: ResourceHistory,
    /// The apiserver under test.
    pub server: Apiserver,
    /// More apiservers over the same etcd, each with its own cache (an HA control plane); a
    /// request goes to one of them through [`Harness::send`].
    pub peers: Vec<Apiserver>,
    /// While set, etcd's messages for the apiserver are held back: a lagging cache.
    pub lagging: bool,
    held: Vec<WatchResponse>,
    watches: BTreeMap<u64, WatchRecord>,
    lists: BTreeMap<u64, (ListOptions, Freshness)>,
    received: Vec<ServerMessage>,
    violations: Vec<String>,
    next_id: u64,
}

impl Harness {
    /// An apiserver with `config` at time zero, its cache (if any) initialized.
    pub fn new(config: ApiserverConfig) -> Harness {
        let mut harness = Harness {
            now: SimTime::ZERO,
            etcd: Etcd::default(),
            reference: GroundTruth::default(),
            resource: ResourceHistory::new(PREFIX),
            server: Apiserver::new(
                config,
                PREFIX,
                SimTime::ZERO,
                RngStream::new(1, "apiserver"),
                Bugs::NONE,
            ),
            peers: Vec::new(),
            lagging: false,
            held: Vec::new(),
            watches: BTreeMap::new(),
            lists: BTreeMap::new(),
            received: Vec::new(),
            violations: Vec::new(),
            next_id: 0,
        };
        harness.advance(SimDuration::ZERO);
        harness
    }

    /// An apiserver with the watch cache.
    pub fn cached() -> Harness {
        Harness::new(ApiserverConfig::default())
    }

    /// An apiserver that serves everything from etcd.
    pub fn uncached() -> Harness {
        Harness::new(ApiserverConfig {
            watch_cache: false,
            ..ApiserverConfig::default()
        })
    }

    /// Adds an apiserver with `config` over the same etcd, its cache (if any) initialized now;
    /// returns its index for [`Harness::send`] (the first apiserver is 0).
    pub fn add_peer(&mut self, config: ApiserverConfig) -> usize {
        let seed = self.peers.len() as u64 + 2;
        let peer = Apiserver::new(
            config,
            PREFIX,
            self.now,
            RngStream::new(seed, "apiserver"),
            Bugs::NONE,
        );
        self.peers.push(peer);
        self.advance(SimDuration::ZERO);
        self.peers.len()
    }

    /// Writes `key` (`namespace/name` or `name`) with label `app` and payload `value`.
    pub fn write(&mut self, key: &str, app: &str, value: u64) -> Object {
        let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
        self.write_object(key, &labels, value)
    }

    /// Writes `key` with `labels` and payload `value`; returns the stored object.
    pub fn write_object(
        &mut self,
        key: &str,
        labels: &BTreeMap<String, String>,
        value: u64,
    ) -> Object {
        self.write_body(key, Object::encode_body(labels, value))
    }

    /// Writes encoded object bytes at `key`; returns the stored object.
    pub fn write_body(&mut self, key: &str, body: Vec<u8>) -> Object {
        self.write_raw(key, body);
        let resource_version = self.etcd.revision();
        let kv = self
            .reference
            .get_at(&format!("{PREFIX}{key}"), resource_version)
            .expect("just written");
        Object::decode(key, kv.mod_revision, kv.create_revision, &kv.value)
            .expect("an encoded body decodes")
    }

    /// Writes raw bytes at `key`: bytes that do not decode stand for corrupt data (a value
    /// the storage transformer or codec cannot read).
    pub fn write_raw(&mut self, key: &str, value: Vec<u8>) {
        let put = Op::Put {
            key: format!("{PREFIX}{key}"),
            value,
            prev_kv: false,
        };
        self.txn(TxnRequest {
            compare: vec![],
            success: vec![put],
            failure: vec![],
        });
    }

    /// Deletes `key` unconditionally; returns the deletion's revision.
    pub fn delete(&mut self, key: &str) -> ResourceVersion {
        let delete = Op::DeleteRange {
            range: KeyRange::single(&format!("{PREFIX}{key}")),
            prev_kv: false,
        };
        self.txn(TxnRequest {
            compare: vec![],
            success: vec![delete],
            failure: vec![],
        });
        self.etcd.revision()
    }

    /// A write outside the resource: the global revision moves, no event for this resource.
    pub fn bump_global_revision(&mut self) {
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

    /// Compacts etcd and the reference at `revision`.
    pub fn compact(&mut self, revision: ResourceVersion) {
        self.etcd.compact(revision).expect("compactable");
        self.reference.compact(revision).expect("compactable");
        self.pump();
    }

    /// etcd's periodic progress notification to every synced watch that asked for it.
    pub fn progress_tick(&mut self) {
        self.etcd.progress_tick();
        self.pump();
    }

    fn txn(&mut self, request: TxnRequest) {
        assert_eq!(self.etcd.txn(&request), self.reference.txn(&request));
        let revision = self.reference.revision();
        if revision > self.resource.revision() {
            self.resource
                .record(revision, self.reference.events_at(revision));
        }
        self.pump();
    }

    /// Delivers etcd's messages (unless the cache lags), then collects what clients receive,
    /// checking each against the oracles.
    pub fn pump(&mut self) {
        while let Some(response) = self.etcd.poll_response() {
            self.held.push(response);
        }
        if !self.lagging {
            for response in std::mem::take(&mut self.held) {
                if let Some(server) = apiservers(&mut self.server, &mut self.peers)
                    .find(|server| server.owns_etcd_watch(response.watch_id))
                {
                    server.handle_etcd_response(self.now, &mut self.etcd, response);
                }
            }
        }
        let mut messages = Vec::new();
        for server in apiservers(&mut self.server, &mut self.peers) {
            while let Some(message) = server.poll_message() {
                messages.push(message);
            }
        }
        for (client, message) in messages {
            self.check(client, &message);
            self.received.push(message);
        }
    }

    fn check(&mut self, client: usize, message: &ServerMessage) {
        let violation = match message {
            ServerMessage::List {
                id,
                result: Ok(page),
            } => {
                let (options, freshness) = &self.lists[id];
                check_list(&self.resource, options, *freshness, page).err()
            }
            ServerMessage::WatchEvent { id, event } => {
                let record = self.watches.get_mut(id).expect("a watch");
                assert_eq!(record.client, client, "an event for another client");
                let compacted = self.reference.compact_revision();
                record
                    .oracle
                    .observe(&self.resource, compacted, event)
                    .err()
            }
            _ => None,
        };
        if let Some(violation) = violation {
            self.violations.push(format!("{message:?}: {violation}"));
        }
    }

    /// Runs time forward by `by`, firing every apiserver timer due on the way.
    pub fn advance(&mut self, by: SimDuration) {
        let until = self.now + by;
        loop {
            self.pump();
            let next = apiservers(&mut self.server, &mut self.peers)
                .filter_map(|server| server.poll_timeout())
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let servers = apiservers(&mut self.server, &mut self.peers);
                    for server in servers.filter(|server| server.poll_timeout() == Some(at)) {
                        server.handle_timeout(self.now, &mut self.etcd);
                    }
                }
                _ => break,
            }
        }
        self.now = until;
        self.pump();
    }

    /// Sends a list request; returns its id.
    pub fn list(&mut self, options: ListOptions) -> u64 {
        let id = self.request_id();
        self.send(0, CLIENT, ClientMessage::List { id, options });
        id
    }

    /// Sends `message` from `client` (with the client's own request ids) to apiserver
    /// `apiserver` (0 is [`Harness::server`], `i` is `peers[i - 1]`); its answers are checked
    /// against the oracles like every other.
    pub fn send(&mut self, apiserver: usize, client: usize, message: ClientMessage) {
        match &message {
            ClientMessage::List { id, options } => {
                let freshness = Freshness::of(options, self.etcd.revision());
                self.lists.insert(*id, (options.clone(), freshness));
            }
            ClientMessage::Watch { id, options } => {
                let oracle = WatchStreamOracle::new(options);
                self.watches.insert(*id, WatchRecord { client, oracle });
            }
            ClientMessage::StopWatch { .. } => {}
        }
        let server = apiservers(&mut self.server, &mut self.peers)
            .nth(apiserver)
            .expect("an apiserver");
        server.handle_client_message(self.now, &mut self.etcd, client, message);
        self.pump();
    }

    /// Sends a watch request from [`CLIENT`]; returns the stream's id.
    pub fn watch(&mut self, options: WatchOptions) -> u64 {
        self.watch_as(CLIENT, options)
    }

    /// Sends a watch request from `client`; returns the stream's id (unique across clients).
    pub fn watch_as(&mut self, client: usize, options: WatchOptions) -> u64 {
        let id = self.request_id();
        self.send(0, client, ClientMessage::Watch { id, options });
        id
    }

    /// The client closes stream `id` (a canceled request context).
    pub fn stop_watch(&mut self, id: u64) {
        let client = self.watches[&id].client;
        let message = ClientMessage::StopWatch { id };
        self.server
            .handle_client_message(self.now, &mut self.etcd, client, message);
        self.pump();
    }

    fn request_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Every message the clients received so far, in order.
    pub fn received(&self) -> &[ServerMessage] {
        &self.received
    }

    /// The answer to list `id`, if it came.
    pub fn list_result(&self, id: u64) -> Option<&Result<ListResponse, RequestError>> {
        self.received.iter().find_map(|message| match message {
            ServerMessage::List { id: got, result } if *got == id => Some(result),
            _ => None,
        })
    }

    /// The page list `id` got; panics if it got none.
    pub fn page(&self, id: u64) -> &ListResponse {
        self.list_result(id)
            .expect("answered")
            .as_ref()
            .expect("a page")
    }

    /// The error status list `id` got; panics if it got a page or nothing.
    pub fn list_error(&self, id: u64) -> StatusReason {
        match self.list_result(id).expect("answered") {
            Err(RequestError::Status(status)) => status.reason,
            other => panic!("expected an error status, got {other:?}"),
        }
    }

    /// The events stream `id` received so far.
    pub fn events(&self, id: u64) -> Vec<WatchEvent> {
        self.received
            .iter()
            .filter_map(|message| match message {
                ServerMessage::WatchEvent { id: got, event } if *got == id => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// Everything stream `id` received, one line each: its events ([`describe`]), `CLOSED`,
    /// or `REJECTED <error>`.
    pub fn stream(&self, id: u64) -> Vec<String> {
        self.received
            .iter()
            .filter_map(|message| match message {
                ServerMessage::WatchEvent { id: got, event } if *got == id => {
                    Some(event.to_string())
                }
                ServerMessage::WatchClosed { id: got } if *got == id => Some("CLOSED".to_owned()),
                ServerMessage::WatchRejected { id: got, error } if *got == id => {
                    Some(format!("REJECTED {error:?}"))
                }
                _ => None,
            })
            .collect()
    }

    /// The oracle violations seen so far, taken: `Err` lists them.
    pub fn check_oracles(&mut self) -> Result<(), String> {
        let violations = std::mem::take(&mut self.violations);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations.join("; "))
        }
    }
}

impl Drop for Harness {
    /// A harness dropped with oracle violations nobody took fails the test that used it.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.violations.is_empty(),
                "server oracle: {:?}",
                self.violations
            );
        }
    }
}

/// Every apiserver, the first one first (free of `Harness`, so etcd can be borrowed alongside).
fn apiservers<'a>(
    server: &'a mut Apiserver,
    peers: &'a mut [Apiserver],
) -> impl Iterator<Item = &'a mut Apiserver> {
    std::iter::once(server).chain(peers.iter_mut())
}

/// A plain watch from `resource_version`: no bookmarks, no initial events, every namespace,
/// a 600 s timeout.
pub fn watch_options(resource_version: ResourceVersionParam) -> WatchOptions {
    WatchOptions {
        resource_version,
        resource_version_match: ResourceVersionMatch::Unset,
        send_initial_events: false,
        allow_watch_bookmarks: false,
        timeout_ms: Some(600_000),
        label_selector: None,
        field_selector: None,
        namespace: None,
    }
}

/// A watch-list (`sendInitialEvents=true`, `NotOlderThan`, bookmarks) from `resource_version`.
pub fn watch_list_options(resource_version: ResourceVersionParam) -> WatchOptions {
    WatchOptions {
        resource_version_match: ResourceVersionMatch::NotOlderThan,
        send_initial_events: true,
        allow_watch_bookmarks: true,
        ..watch_options(resource_version)
    }
}
