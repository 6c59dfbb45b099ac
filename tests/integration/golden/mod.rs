//! A scripted driver for the golden traces (SPEC §10): the real fake etcd, apiserver (cacher,
//! watch cache, cache watchers), reflector, FIFO, indexer and processor wired as one client
//! process, stepped by hand so that a scene shows exactly one interleaving, and a timeline of
//! what each part did, one line per step: `time  actor  what happened`.
//!
//! Nothing here decides anything for the models: the script only writes to etcd, injects the
//! faults a scene names, moves time, and says when the informer pops and the handlers run. Every
//! other line is a model's own output. Server answers pass through the harness's oracles.
//!
//! Two rendering rules keep the timelines short: a line that repeats the one before it is
//! counted (`(x10, the last at ...)`), and a bookmark that changes nothing on the client (L
//! unchanged, a FIFO that ignores bookmarks) shows only as the server's line.

use std::fmt::Write as _;

use informer_sim::api::{ClientMessage, RequestError};
use informer_sim::apiserver::server::Apiserver;
use informer_sim::bug::Bugs;
use informer_sim::client::delta::DeltaList;
use informer_sim::client::reflector::{
    ConnectionLoss, Reflector, ReflectorConfig, ReflectorError, ReflectorOutput, ReflectorPhase,
    StoreOp,
};
use informer_sim::client::{
    Delivered, Fifo, FifoKind, HandlerId, InformerConfig, Notification, Processed,
    SharedIndexInformer,
};
use informer_sim::etcd::Etcd;
use informer_sim::object::{Object, ResourceVersion};
use informer_sim::sim::{RngStream, SimDuration, SimTime};
use informer_sim::testkit::apiserver_pair::{CLIENT, Harness};

/// How many timer firings one `advance` may take before the scene is declared stuck.
const STEPS_MAX: usize = 10_000;

/// One client process against the harness's apiserver(s), with its timeline.
pub struct Scene {
    /// etcd and the apiserver(s).
    pub h: Harness,
    /// The client's reflector.
    pub reflector: Reflector,
    /// The client's informer (its FIFO, indexer and processor).
    pub informer: SharedIndexInformer,
    /// The apiserver the client's connection goes to (0 is `h.server`, `i` is `h.peers[i-1]`).
    apiserver: usize,
    /// How many of `h.received()` the reflector has read.
    delivered: usize,
    /// While set, server messages stay in flight (the script acts before they arrive).
    holding: bool,
    /// The lastSyncRV the timeline last showed.
    shown_last_sync: Option<ResourceVersion>,
    /// Whether the timeline showed the informer's HasSynced turning true.
    shown_synced: bool,
    /// The handlers registered, each with whether the timeline showed its registration's
    /// HasSynced latch.
    registrations: Vec<(HandlerId, bool)>,
    /// Each apiserver's cache readiness as the timeline last showed it.
    shown_ready: Vec<Option<bool>>,
    /// The payload of the last write (every write changes the stored bytes).
    value: u64,
    /// When the last watch the client sent times out at the server.
    watch_deadline: Option<SimTime>,
    lines: Vec<Line>,
}

/// One timeline line; a line that repeats the one before it (say a periodic bookmark) is
/// counted instead of written again.
struct Line {
    time: SimTime,
    actor: String,
    what: String,
    repeats: u32,
    last: SimTime,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = format!("{}ms", self.time.as_millis());
        write!(f, "{time:>9}  {:<12}  {}", self.actor, self.what)?;
        if self.repeats > 1 {
            let last = self.last.as_millis();
            write!(f, "  (x{}, the last at {last}ms)", self.repeats)?;
        }
        Ok(())
    }
}

impl Scene {
    /// A cached apiserver over an empty etcd, and a stopped client with `fifo` and `reflector`
    /// (the informer resyncs as often as the reflector's resync timer fires).
    pub fn new(fifo: FifoKind, reflector: ReflectorConfig) -> Scene {
        Scene::with_bugs(fifo, reflector, Bugs::NONE)
    }

    /// [`Scene::new`] with `bugs` planted in the FIFO and the indexer.
    pub fn with_bugs(fifo: FifoKind, reflector: ReflectorConfig, bugs: Bugs) -> Scene {
        let mut informer_config = InformerConfig::new(fifo);
        informer_config.resync_check_period = reflector.resync_period;
        Scene {
            h: Harness::cached(),
            reflector: Reflector::new(reflector, RngStream::new(1, "reflector"), Bugs::NONE),
            informer: SharedIndexInformer::new(informer_config, bugs),
            apiserver: 0,
            delivered: 0,
            holding: false,
            shown_last_sync: None,
            shown_synced: false,
            registrations: Vec::new(),
            shown_ready: vec![Some(true)],
            value: 0,
            watch_deadline: None,
            lines: Vec::new(),
        }
    }

    /// When the last watch the client asked for reaches its `timeoutSeconds`.
    pub fn watch_deadline(&self) -> SimTime {
        self.watch_deadline.expect("a watch was sent")
    }

    /// The timeline so far, one line per step.
    pub fn timeline(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Adds a line: a model's output, or the fault or input the script injects.
    fn log(&mut self, actor: &str, what: impl AsRef<str>) {
        let what = what.as_ref();
        if let Some(last) = self.lines.last_mut()
            && last.actor == actor
            && last.what == what
        {
            last.repeats += 1;
            last.last = self.h.now;
            return;
        }
        self.lines.push(Line {
            time: self.h.now,
            actor: actor.to_owned(),
            what: what.to_owned(),
            repeats: 1,
            last: self.h.now,
        });
    }

    fn apiserver_name(&self) -> String {
        self.server_name(self.apiserver)
    }

    // ---- etcd and server inputs ------------------------------------------------------------

    /// Creates or updates `key` with label `app=<app>`.
    pub fn put(&mut self, key: &str, app: &str) -> Object {
        self.value += 1;
        let object = self.h.write(key, app, self.value);
        self.log(
            "etcd",
            format!("PUT {key} app={app} -> rev {}", object.resource_version),
        );
        self.settle();
        object
    }

    /// Deletes `key`; returns the deletion's revision.
    pub fn delete(&mut self, key: &str) -> ResourceVersion {
        let revision = self.h.delete(key);
        self.log("etcd", format!("DELETE {key} -> rev {revision}"));
        self.settle();
        revision
    }

    /// Writes to other resources until etcd's revision is `revision`: the global revision
    /// moves, no event for this resource (SPEC §1.4, N9).
    pub fn bump_revision_to(&mut self, revision: ResourceVersion) {
        assert!(self.h.etcd.revision() < revision, "revisions only grow");
        while self.h.etcd.revision() < revision {
            self.h.bump_global_revision();
        }
        self.log("etcd", format!("other resources written -> rev {revision}"));
        self.settle();
    }

    /// etcd's periodic progress notification to every synced watch: two ticks, since etcd
    /// 3.6 skips a watch on the first tick after it got events (`sendLoop`).
    pub fn progress_tick(&mut self) {
        self.log(
            "etcd",
            format!("progress notify rev {}", self.h.etcd.revision()),
        );
        self.h.progress_tick();
        self.h.progress_tick();
        self.settle();
    }

    /// Compacts etcd at `revision`.
    pub fn compact(&mut self, revision: ResourceVersion) {
        self.log("etcd", format!("compact at rev {revision}"));
        self.h.compact(revision);
        self.settle();
    }

    /// Adds a second apiserver over the same etcd (the client stays on the first).
    pub fn add_apiserver(&mut self) {
        let config = informer_sim::apiserver::server::ApiserverConfig::default();
        let index = self.h.add_peer(config);
        self.shown_ready.push(self.server(index).cache_ready());
    }

    fn server(&self, index: usize) -> &Apiserver {
        match index {
            0 => &self.h.server,
            peer => &self.h.peers[peer - 1],
        }
    }

    fn server_name(&self, index: usize) -> String {
        if self.h.peers.is_empty() {
            "apiserver".to_owned()
        } else {
            format!("apiserver-{}", char::from(b'a' + index as u8))
        }
    }

    /// The cacher of apiserver `index` loses its etcd watch (an error from etcd).
    pub fn fail_cache_upstream(&mut self, index: usize) {
        let name = self.server_name(index);
        self.log(&name, "cacher's etcd watch fails");
        let now = self.h.now;
        let (server, etcd) = server_and_etcd(&mut self.h, index);
        server.fail_cache_upstream(now, etcd);
        self.h.pump();
        self.settle();
    }

    /// etcd's watch for apiserver `index`'s cacher stops (`true`) or resumes (`false`)
    /// delivering: an unsynced watch, as when the apiserver is partitioned from etcd.
    pub fn stall_cache_watch(&mut self, index: usize, stalled: bool) {
        let watch = self.server(index).cache_upstream_watch().expect("a cacher");
        let name = self.server_name(index);
        if stalled {
            self.log(
                "etcd",
                format!("watch of {name}'s cacher stalls (unsynced)"),
            );
            self.h.etcd.stall_watcher(watch).expect("watching");
        } else {
            self.log("etcd", format!("watch of {name}'s cacher resumes"));
            self.h.etcd.resume_watcher(watch).expect("watching");
            if !self.h.etcd.is_watching(watch) {
                let compacted = self.h.etcd.compact_revision();
                self.log(
                    "etcd",
                    format!(
                        "watch of {name}'s cacher canceled: ErrCompacted (compacted at {compacted})"
                    ),
                );
            }
        }
        self.h.pump();
        self.settle();
    }

    /// Logs the apiservers whose cache readiness changed since the last look.
    fn log_readiness(&mut self) {
        for index in 0..self.shown_ready.len() {
            let ready = self.server(index).cache_ready();
            if ready == self.shown_ready[index] {
                continue;
            }
            self.shown_ready[index] = ready;
            let what = match ready {
                Some(true) => format!(
                    "cache ready (re-initialized: etcd list, rv={})",
                    self.server(index).cache_resource_version().expect("cached")
                ),
                _ => "cache Pending (not ready)".to_owned(),
            };
            self.log(&self.server_name(index), what);
        }
    }

    /// Server messages stay in flight until [`Scene::release`].
    pub fn hold(&mut self) {
        self.holding = true;
    }

    /// Delivers the messages held in flight.
    pub fn release(&mut self) {
        self.holding = false;
        self.settle();
    }

    /// The client's connection is lost as `loss` says (messages still in flight on it are
    /// lost too); it reconnects to apiserver `apiserver`.
    pub fn reconnect_to(&mut self, apiserver: usize, loss: ConnectionLoss) {
        let old_name = self.apiserver_name();
        let old = std::mem::replace(&mut self.apiserver, apiserver);
        let new_name = self.apiserver_name();
        let how = match loss {
            ConnectionLoss::PeerClosed => "closes (EOF)",
            ConnectionLoss::HealthCheckFailed => "is dead (HTTP/2 PING unanswered)",
        };
        self.log(
            "network",
            format!("connection to {old_name} {how}; reconnect to {new_name}"),
        );
        let (server, etcd) = server_and_etcd(&mut self.h, old);
        server.client_disconnected(etcd, CLIENT);
        self.delivered = self.h.received().len();
        if let Some(id) = self.reflector.request_in_flight() {
            self.step_reflector(|reflector, now| reflector.handle_connection_lost(now, id, loss));
        }
        self.settle();
    }

    // ---- client ----------------------------------------------------------------------------

    /// Registers a handler with `resync_period` (zero: no resync), before or after start.
    pub fn add_handler(&mut self, resync_period: SimDuration) -> HandlerId {
        let now = self.h.now;
        let id = self.informer.add_event_handler(now, resync_period);
        self.registrations.push((id, false));
        let started = if self.informer.has_started() {
            format!(
                "; {} initial adds queued from the indexer",
                self.informer.pending_notifications(id)
            )
        } else {
            String::new()
        };
        let resync = match resync_period.as_millis() {
            0 => "no resync".to_owned(),
            ms => format!("resync {}s", ms / 1000),
        };
        self.log(
            "informer",
            format!("AddEventHandler({id}, {resync}){started}"),
        );
        id
    }

    /// Starts the informer and its reflector (client-go `Run`).
    pub fn start(&mut self) {
        let now = self.h.now;
        self.informer.run(now);
        self.step_reflector(|reflector, now| reflector.start(now));
        self.settle();
    }

    /// Runs time forward by `ms`, firing apiserver and reflector timers in time order.
    pub fn advance(&mut self, ms: u64) {
        let until = self.h.now + SimDuration(ms);
        for _ in 0..STEPS_MAX {
            let servers = std::iter::once(&self.h.server).chain(&self.h.peers);
            let next = servers
                .filter_map(|server| server.poll_timeout())
                .chain(self.reflector.poll_timeout())
                .min()
                .filter(|at| *at <= until);
            let Some(at) = next else {
                self.h.advance(until.saturating_since(self.h.now));
                return self.settle();
            };
            self.h.advance(at.saturating_since(self.h.now));
            self.settle();
            if self.reflector.poll_timeout().is_some_and(|due| due <= at) {
                self.step_reflector(|reflector, now| reflector.handle_timeout(now));
                self.settle();
            }
        }
        panic!("the scene is stuck: {STEPS_MAX} timers before {until}");
    }

    /// Passes reflector outputs and server messages on until neither has more.
    fn settle(&mut self) {
        loop {
            self.log_readiness();
            if let Some(output) = self.reflector.poll_output() {
                self.apply_output(output);
            } else if !self.holding && self.delivered < self.h.received().len() {
                let message = self.h.received()[self.delivered].clone();
                self.delivered += 1;
                self.log(&self.apiserver_name(), message.to_string());
                self.step_reflector(|reflector, now| reflector.handle_message(now, message));
            } else {
                return;
            }
        }
    }

    /// Runs one reflector input and logs a backoff it starts.
    fn step_reflector(&mut self, input: impl FnOnce(&mut Reflector, SimTime)) {
        let before = self.reflector.phase();
        input(&mut self.reflector, self.h.now);
        let then = match self.reflector.phase() {
            phase if phase == before => return,
            ReflectorPhase::WaitingToRelist => "relist",
            ReflectorPhase::WaitingToRewatch => "re-watch",
            ReflectorPhase::WaitingToRetryWatchList => "retry the watch-list",
            ReflectorPhase::RetryingRequest => {
                let until = self.reflector.poll_timeout().expect("a retry timer");
                let line = format!("REST client: send again at {}ms", until.as_millis());
                return self.log("reflector", line);
            }
            _ => return,
        };
        let until = self.reflector.poll_timeout().expect("a backoff timer");
        let error = self
            .reflector
            .last_error()
            .map_or(String::new(), render_error);
        self.log(
            "reflector",
            format!(
                "{error}: back off until {}ms, then {then}",
                until.as_millis()
            ),
        );
    }

    fn apply_output(&mut self, output: ReflectorOutput) {
        match output {
            ReflectorOutput::Send(message) => {
                if let ClientMessage::Watch { options, .. } = &message {
                    let timeout = SimDuration(options.timeout_ms.expect("reflectors set one"));
                    self.watch_deadline = Some(self.h.now + timeout);
                }
                self.log("reflector", message.to_string());
                self.h.send(self.apiserver, CLIENT, message);
            }
            ReflectorOutput::Store(operation) => self.apply_store_op(operation),
        }
    }

    /// Applies a store call and logs it with the FIFO it leaves, except a bookmark that changes
    /// nothing on the client (L unchanged, a FIFO that ignores bookmarks): the server's line
    /// already shows it.
    fn apply_store_op(&mut self, operation: StoreOp) {
        let now = self.h.now;
        let mut line = operation.to_string();
        let last_sync = self.reflector.last_sync_resource_version();
        let last_sync_moved = last_sync != self.shown_last_sync;
        if last_sync_moved {
            self.shown_last_sync = last_sync;
            let _ = write!(line, "; L={}", last_sync.expect("only set"));
        }
        let fifo_takes_bookmarks = self.informer.fifo().kind() == FifoKind::RealAtomic;
        if last_sync_moved || fifo_takes_bookmarks || !matches!(operation, StoreOp::Bookmark(_)) {
            self.log("reflector", line);
        }
        let resynced = match operation {
            StoreOp::Replace {
                items,
                resource_version,
            } => {
                self.informer.replace(now, items, resource_version);
                true
            }
            StoreOp::Add(object) => {
                self.informer.add(now, object);
                true
            }
            StoreOp::Update(object) => {
                self.informer.update(now, object);
                true
            }
            StoreOp::Delete(object) => self.informer.delete(now, object),
            StoreOp::Bookmark(resource_version) => {
                self.informer.bookmark(now, resource_version);
                fifo_takes_bookmarks
            }
            StoreOp::Resync => self.resync(now),
        };
        if resynced {
            self.log(self.fifo_name(), self.informer.fifo().to_string());
        }
    }

    fn resync(&mut self, now: SimTime) -> bool {
        let resynced = self.informer.resync(now);
        let syncing: Vec<String> = self
            .informer
            .processor()
            .listeners()
            .filter(|(_, listener)| listener.is_syncing())
            .map(|(id, _)| id.to_string())
            .collect();
        self.log(
            "processor",
            format!(
                "shouldResync -> {resynced}, syncing [{}]",
                syncing.join(", ")
            ),
        );
        resynced
    }

    fn fifo_name(&self) -> &'static str {
        match self.informer.fifo().kind() {
            FifoKind::Delta => "delta-fifo",
            FifoKind::Real | FifoKind::RealAtomic => "real-fifo",
        }
    }

    /// One turn of the informer's process loop; panics if the FIFO is empty.
    pub fn pop(&mut self) -> Processed {
        let processed = self.informer.process_next(self.h.now).expect("queued");
        let deltas = DeltaList(&processed.popped.deltas);
        let key = processed
            .popped
            .key()
            .map_or("*".to_owned(), ToString::to_string);
        let initial = processed.popped.is_in_initial_list;
        self.log(
            "informer",
            format!("Pop {key} {deltas} isInInitialList={initial}"),
        );
        for distributed in &processed.distributed {
            let recipients: Vec<String> = distributed
                .recipients
                .iter()
                .map(ToString::to_string)
                .collect();
            let sync = if distributed.is_sync { " (sync)" } else { "" };
            let call = distributed.notification.to_string();
            self.log(
                "informer",
                format!("  {call}{sync} -> [{}]", recipients.join(", ")),
            );
        }
        if self.informer.has_synced() && !self.shown_synced {
            self.shown_synced = true;
            self.log("informer", "HasSynced=true");
        }
        self.log_registrations();
        processed
    }

    /// Shows each registration's HasSynced the moment it latches.
    fn log_registrations(&mut self) {
        for index in 0..self.registrations.len() {
            let (id, shown) = self.registrations[index];
            if !shown && self.informer.handler_has_synced(id) {
                self.registrations[index].1 = true;
                self.log(&id.to_string(), "registration HasSynced=true");
            }
        }
    }

    /// Pops until the FIFO is empty.
    pub fn pop_all(&mut self) {
        while !fifo_is_empty(self.informer.fifo()) {
            self.pop();
        }
    }

    /// Runs handler `id` on its next notification; panics if none is pending.
    pub fn deliver(&mut self, id: HandlerId) -> Delivered {
        let delivered = self.informer.deliver_next(self.h.now, id).expect("pending");
        self.log(&id.to_string(), delivered.notification.to_string());
        self.log_registrations();
        delivered
    }

    /// Runs handler `id` until nothing is pending; returns what it got.
    pub fn deliver_all(&mut self, id: HandlerId) -> Vec<Notification> {
        let mut got = Vec::new();
        while self.informer.pending_notifications(id) > 0 {
            got.push(self.deliver(id).notification);
        }
        got
    }
}

impl Drop for Scene {
    /// A failing scene prints its timeline: the step where it went wrong is the last one.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("timeline so far:\n{}", self.timeline());
        }
    }
}

/// Apiserver `index` (0 is `h.server`, `i` is `h.peers[i-1]`) and the etcd it calls.
fn server_and_etcd(h: &mut Harness, index: usize) -> (&mut Apiserver, &mut Etcd) {
    let server = match index {
        0 => &mut h.server,
        peer => &mut h.peers[peer - 1],
    };
    (server, &mut h.etcd)
}

fn fifo_is_empty(fifo: &Fifo) -> bool {
    match fifo {
        Fifo::Delta(fifo) => fifo.queued().next().is_none(),
        Fifo::Real(fifo) => fifo.queued().next().is_none(),
    }
}

// ---- rendering ---------------------------------------------------------------------------------

fn render_error(error: &ReflectorError) -> String {
    match error {
        ReflectorError::Request(RequestError::Status(status)) => {
            format!("{} {:?}", status.code, status.reason)
        }
        ReflectorError::Request(RequestError::ConnectionRefused) => "connection refused".to_owned(),
        other => other.to_string(),
    }
}
