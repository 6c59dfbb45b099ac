//! The one observer of a run, as TigerBeetle's cluster holds its state checkers: it owns the
//! ground truth (the naive reference etcd) and every per-client oracle, the world calls one
//! hook per thing that happens, and every verdict goes out along one path, [`Checker::report`],
//! where the catalog (not the call site) decides whether a broken invariant is a failure or an
//! expected upstream hazard.
//!
//! Hooks return the violations they found; the world hands them to `report` with the step
//! they belong to. The models only expose facts (`pending_state`, `handler_synced`, `stop`'s
//! [`Stopped`]); the verdicts are computed here and in the check modules.

use std::collections::BTreeMap;

use super::truth::GroundTruth;
use crate::api::{
    ClientMessage, ListOptions, ListResponse, RequestId, ResourceVersionParam, ServerMessage,
};
use crate::client::reflector::{Reflector, ReflectorPhase, StoreOp};
use crate::client::{Delivered, Delta, Notification};
use crate::client::{FifoKind, HandlerId, Processed, SharedIndexInformer, Stopped};
use crate::etcd::{
    EtcdError, KeyRange, RangeRequest, RangeResponse, Revision, TxnRequest, TxnResponse,
    WatchResponse,
};
use crate::object::{Object, ObjectKey, ResourceVersion};

use super::api_oracle::{self, Freshness};
use super::catalog::{Checked, Invariant, Kind};
use super::client::{self, ReflectorView, RvHistory};
use super::etcd_watch;
use super::hazards;
use super::state::{FULL_COMPARE_SIZE, IncrementalCompare, by_key, etcd_state, first_difference};
use super::violation::Violation;

/// What the checker keeps of one client identity: the cross-restart history, and the oracles
/// of the running process and its connection.
#[derive(Default)]
struct ClientChecks {
    /// Per-key RVs seen, persisted across restarts (the B1 oracle).
    history: RvHistory,
    /// The state the reflector's store calls describe (the safe-point oracle's view).
    view: ReflectorView,
    /// The last synced RV already checked against etcd.
    last_sync_checked: Option<ResourceVersion>,
    /// The oracle of each open watch stream of the current connection.
    watches: BTreeMap<RequestId, api_oracle::WatchStreamOracle>,
    /// Whether each registration's first synced moment was checked (B20).
    handler_synced_checked: Vec<bool>,
    /// With atomic RealFIFO: the indexer against etcd, kept incremental (N5 as a promise).
    lister: IncrementalCompare,
    /// The floor of each request whose answer will be read against history (lists, and
    /// watches until their initial events end).
    floors: BTreeMap<RequestId, ResourceVersion>,
}

/// What a store call or a pop may have changed in a client's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// One key.
    Key(ObjectKey),
    /// Any key (a relist, a resync, a whole-store delta).
    All,
    /// Nothing the queue checks look at (a bookmark).
    Nothing,
}

/// Whether a client's indexer and queue are small enough that the checks walk them whole.
fn is_small(informer: &SharedIndexInformer) -> bool {
    informer.indexer().len() + informer.fifo().len() <= FULL_COMPARE_SIZE
}

/// Every object state a pop's notifications mention (the states its key went through).
fn mentioned(processed: &Processed) -> impl Iterator<Item = &Object> {
    processed
        .distributed
        .iter()
        .flat_map(|distributed| match &distributed.notification {
            Notification::Add { obj, .. } => [Some(obj), None],
            Notification::Update { old, new } => [Some(old), Some(new)],
            Notification::Delete(object) => [object.state(), None],
        })
        .flatten()
}

/// The one observer of a run.
pub struct Checker {
    truth: GroundTruth,
    /// The etcd key prefix of the simulated resource.
    prefix: &'static str,
    /// The invariants the scenario declares expected upstream hazards.
    expected: Vec<Invariant>,
    /// Atomic RealFIFO keeps the lister a snapshot (PR #136008): there N5 is a promise.
    atomic_fifo: bool,
    clients: Vec<ClientChecks>,
    etcd_watches: Vec<Option<etcd_watch::WatchStreamOracle>>,
    hazards: Vec<(u64, Violation)>,
}

impl Checker {
    /// A checker for a run of the resource under `prefix`, whose scenario declares `expected`
    /// hazards and whose clients use `fifo`.
    pub fn new(prefix: &'static str, expected: Vec<Invariant>, fifo: FifoKind) -> Checker {
        debug_assert!(expected.iter().all(|hazard| hazard.kind() == Kind::Hazard));
        Checker {
            truth: GroundTruth::default(),
            prefix,
            expected,
            atomic_fifo: fifo == FifoKind::RealAtomic,
            clients: Vec::new(),
            etcd_watches: Vec::new(),
            hazards: Vec::new(),
        }
    }

    /// The one reporting path: the first violation that is not a declared hazard is returned;
    /// each declared hazard is recorded (its first occurrence, with `step`) and the run goes
    /// on.
    pub fn report(
        &mut self,
        step: u64,
        violations: impl IntoIterator<Item = Violation>,
    ) -> Result<(), Violation> {
        for violation in violations {
            if !self.expects(violation.invariant) {
                return Err(violation);
            }
            if !self
                .hazards
                .iter()
                .any(|(_, seen)| seen.invariant == violation.invariant)
            {
                self.hazards.push((step, violation));
            }
        }
        Ok(())
    }

    /// The expected hazards seen, each with the step it first broke at.
    pub fn into_hazards(self) -> Vec<(u64, Violation)> {
        self.hazards
    }

    /// The ground truth.
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    fn expects(&self, invariant: Invariant) -> bool {
        self.expected.contains(&invariant)
    }

    /// Whether a check of `invariant` runs in this run: assumption checks only where declared
    /// (and N5, a promise, with atomic RealFIFO).
    fn runs(&self, invariant: Invariant) -> bool {
        match invariant.info().checked {
            Checked::EveryRun => true,
            Checked::WhereDeclared => {
                self.expects(invariant)
                    || (invariant == Invariant::ListerIsASnapshotAtOneRv && self.atomic_fifo)
            }
        }
    }

    // ---- etcd ----------------------------------------------------------------------------------

    /// The fake answered a range read: the truth must answer the same.
    pub fn on_etcd_range(
        &mut self,
        request: &RangeRequest,
        fake: &Result<RangeResponse, EtcdError>,
    ) -> Option<Violation> {
        let truth = self.truth.range(request);
        compare(fake, &truth, "range")
    }

    /// The fake ran a transaction: the truth runs it too and must answer the same.
    pub fn on_etcd_txn(
        &mut self,
        request: &TxnRequest,
        fake: &Result<TxnResponse, EtcdError>,
    ) -> Option<Violation> {
        let truth = self.truth.txn(request);
        compare(fake, &truth, "txn")
    }

    /// The fake compacted: the truth compacts too and must answer the same, then forgets the
    /// history no check can read any more. `read_floor` is the oldest state an apiserver may
    /// still serve (a quiet cache can lag the compact revision).
    pub fn on_etcd_compact(
        &mut self,
        revision: Revision,
        fake: &Result<Revision, EtcdError>,
        read_floor: ResourceVersion,
    ) -> Option<Violation> {
        let truth = self.truth.compact(revision);
        let found = compare(fake, &truth, "compact");
        if truth.is_ok() {
            let low_water = self.low_water().min(read_floor).min(self.truth.revision());
            self.truth.forget_before(low_water);
        }
        found
    }

    /// Raw etcd watcher `watcher` opened a watch on `range` whose first revision is `start`.
    pub fn on_etcd_watch_opened(&mut self, watcher: usize, range: KeyRange, start: Revision) {
        if self.etcd_watches.len() <= watcher {
            self.etcd_watches.resize(watcher + 1, None);
        }
        self.etcd_watches[watcher] = Some(etcd_watch::WatchStreamOracle::new(range, start));
    }

    /// Raw etcd watcher `watcher`'s watch is gone (a disconnect or a compaction cancel).
    pub fn on_etcd_watch_closed(&mut self, watcher: usize) {
        self.etcd_watches[watcher] = None;
    }

    /// A message reached raw etcd watcher `watcher`; `compact_revision` is etcd's when the
    /// message was made.
    pub fn on_etcd_watch_response(
        &mut self,
        watcher: usize,
        response: &WatchResponse,
        compact_revision: Revision,
    ) -> Option<Violation> {
        let oracle = self.etcd_watches[watcher]
            .as_mut()
            .expect("an open watch has an oracle");
        oracle
            .observe(response, &self.truth, compact_revision)
            .err()
    }

    // ---- clients: requests and answers ---------------------------------------------------------

    /// Client `client` starts a new process: its oracles start afresh, its history persists
    /// (and becomes the record of an earlier incarnation after a restart).
    pub fn on_client_started(&mut self, client: usize, handlers: usize) {
        if client == self.clients.len() {
            self.clients.push(ClientChecks::default());
        }
        let checks = &mut self.clients[client];
        checks.history.restart();
        *checks = ClientChecks {
            history: std::mem::take(&mut checks.history),
            handler_synced_checked: vec![false; handlers],
            ..ClientChecks::default()
        };
    }

    /// A handler was registered on client `client`'s running informer.
    pub fn on_handler_added(&mut self, client: usize) {
        self.clients[client].handler_synced_checked.push(false);
    }

    /// Client `client` sends `message`; no apiserver serves a state older than `floor` (the
    /// oldest cache, or etcd's revision where there is none), so the answer's checks read no
    /// history below it or below an RV the request names.
    pub fn on_request(&mut self, client: usize, message: &ClientMessage, floor: ResourceVersion) {
        let checks = &mut self.clients[client];
        match message {
            ClientMessage::List { id, options } => {
                let named = match (&options.continue_token, options.resource_version) {
                    (Some(token), _) => u64::try_from(token.resource_version).ok(),
                    (None, ResourceVersionParam::At(revision)) => Some(revision),
                    (None, _) => None,
                };
                checks
                    .floors
                    .insert(*id, named.map_or(floor, |named| named.min(floor)));
            }
            ClientMessage::Watch { id, options } => {
                let oracle = api_oracle::WatchStreamOracle::new(self.prefix, options);
                if oracle.delivered_resource_version().is_none() {
                    checks.floors.insert(*id, floor);
                }
                checks.watches.insert(*id, oracle);
            }
            ClientMessage::StopWatch { id } => {
                checks.watches.remove(id);
                checks.floors.remove(id);
            }
        }
    }

    /// Client `client`'s connection broke: its streams and requests are gone.
    pub fn on_reconnect(&mut self, client: usize) {
        let checks = &mut self.clients[client];
        checks.watches.clear();
        checks.floors.clear();
    }

    /// The oldest revision any check may still read: the compact revision, each client's
    /// last safe point and lister comparison, each open stream's position, each request's
    /// floor, and each raw etcd watch's next revision. With an assumption check declared
    /// (hazard scenarios, short and small), everything is kept.
    fn low_water(&self) -> Revision {
        let keeps_all = self
            .expected
            .iter()
            .any(|hazard| hazard.info().checked == Checked::WhereDeclared);
        if keeps_all {
            return 0;
        }
        let clients = self.clients.iter().flat_map(|checks| {
            let streams = checks
                .watches
                .values()
                .filter_map(api_oracle::WatchStreamOracle::delivered_resource_version);
            [
                checks.view.safe_point_checked_at(),
                checks.lister.compared_at(),
            ]
            .into_iter()
            .flatten()
            .chain(streams)
            .chain(checks.floors.values().copied())
        });
        let watches = self
            .etcd_watches
            .iter()
            .flatten()
            .map(etcd_watch::WatchStreamOracle::next_revision);
        clients
            .chain(watches)
            .fold(self.truth.compact_revision(), Revision::min)
    }

    /// A server message reaches client `client` (connected to `apiserver`), before the
    /// reflector sees it: the closes and 410s upstream does not promise about (N7, N8) first,
    /// then the watch stream's oracle.
    pub fn on_answer(
        &mut self,
        client: usize,
        apiserver: usize,
        message: &ServerMessage,
    ) -> Vec<Violation> {
        let mut found: Vec<Violation> = self
            .answer_hazards(client, apiserver, message)
            .into_iter()
            .collect();
        let checks = &mut self.clients[client];
        match message {
            ServerMessage::List { id, .. } => {
                checks.floors.remove(id);
            }
            ServerMessage::WatchEvent { id, event } => {
                if let Some(oracle) = checks.watches.get_mut(id) {
                    found.extend(oracle.observe(&self.truth, event).err());
                    if oracle.delivered_resource_version().is_some() {
                        checks.floors.remove(id);
                    }
                }
            }
            ServerMessage::WatchRejected { id, .. } | ServerMessage::WatchClosed { id } => {
                checks.watches.remove(id);
                checks.floors.remove(id);
            }
        }
        found
    }

    /// A list page reaches a client: `options` were asked for, and etcd was at `arrival` when
    /// the request reached its apiserver.
    pub fn on_list_page(
        &self,
        options: &ListOptions,
        arrival: ResourceVersion,
        page: &ListResponse,
    ) -> Option<Violation> {
        let freshness = Freshness::of(options, arrival);
        api_oracle::check_list(&self.truth, self.prefix, options, freshness, page).err()
    }

    fn answer_hazards(
        &self,
        client: usize,
        apiserver: usize,
        message: &ServerMessage,
    ) -> Option<Violation> {
        let watches = &self.clients[client].watches;
        match message {
            ServerMessage::WatchClosed { id } if self.runs(Invariant::ClosedWatchIsCaughtUp) => {
                let oracle = watches.get(id)?;
                let delivered = oracle.delivered_resource_version()?;
                let undelivered = oracle.first_undelivered(&self.truth);
                hazards::check_closed_watch_caught_up(id, delivered, undelivered).err()
            }
            _ if self.runs(Invariant::WatchFromRetainedRvServedAnywhere) => {
                let id = hazards::expired_watch(message)?;
                let from = watches.get(&id)?.delivered_resource_version()?;
                hazards::check_watch_served(&self.truth, apiserver, from).err()
            }
            _ => None,
        }
    }

    // ---- clients: the reflector's store and the informer -------------------------------------

    /// The reflector called its store: the view follows. Returns what the call may have
    /// changed in the queue, for [`Checker::check_queue`].
    pub fn on_store_op(&mut self, client: usize, op: &StoreOp) -> Touched {
        let view = &mut self.clients[client].view;
        match op {
            StoreOp::Replace { items, .. } => {
                view.replace(items);
                Touched::All
            }
            StoreOp::Add(object) | StoreOp::Update(object) => {
                view.put(object);
                Touched::Key(object.key.clone())
            }
            StoreOp::Delete(object) => {
                view.delete(&object.key);
                Touched::Key(object.key.clone())
            }
            StoreOp::Resync => Touched::All,
            StoreOp::Bookmark(_) => Touched::Nothing,
        }
    }

    /// After every store call and every pop: tombstones carry the newest known state (B5), and
    /// the indexer with the queue applied is the reflector's view (B2, B4, B7). Only the
    /// `touched` key is looked at, unless the client is small enough to look at all.
    pub fn check_queue(
        &self,
        client: usize,
        informer: &SharedIndexInformer,
        touched: &Touched,
    ) -> Vec<Violation> {
        let view = &self.clients[client].view;
        let (tombstones, pending) = match touched {
            Touched::Nothing => return Vec::new(),
            Touched::Key(key) if !is_small(informer) => (
                client::check_tombstones_for(informer, key),
                view.check_pending_for(key, informer),
            ),
            Touched::Key(_) | Touched::All => (
                client::check_tombstones(informer),
                view.check_pending_state(&informer.pending_state()),
            ),
        };
        [tombstones, pending]
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// The reflector's last synced RV may have moved: when it is set to a new RV, the view must
    /// be etcd's state there (the safe point, B11, B16).
    pub fn on_last_sync(
        &mut self,
        client: usize,
        last_sync: Option<ResourceVersion>,
    ) -> Option<Violation> {
        let checks = &mut self.clients[client];
        if last_sync == checks.last_sync_checked {
            return None;
        }
        checks.last_sync_checked = last_sync;
        let revision = last_sync.filter(|revision| *revision > 0)?;
        checks
            .view
            .check_safe_point(&self.truth, self.prefix, revision)
            .err()
    }

    /// The informer processed one popped item: every indexer write and what the indexer now
    /// holds for the key existed in etcd and moves forward (P2, B1), the FIFO's sync came after
    /// the item (N6), the indexer and FIFO bookkeeping, the queue, and the assumption checks of
    /// a pop (N3, N4, N5).
    pub fn on_pop(
        &mut self,
        client: usize,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Vec<Violation> {
        let key = processed.popped.key();
        let touched = key.map_or(Touched::All, |key| Touched::Key(key.clone()));
        let indexer = informer.indexer();
        let written = processed.distributed.iter().filter_map(|distributed| {
            match &distributed.notification {
                Notification::Add { obj, .. } | Notification::Update { new: obj, .. } => Some(obj),
                Notification::Delete(_) => None,
            }
        });
        let held: Vec<&Object> = match key {
            Some(key) => indexer.get_by_key(key).into_iter().collect(),
            None => indexer.list(),
        };
        let history = &mut self.clients[client].history;
        let mut found: Vec<Violation> = written
            .chain(held)
            .filter_map(|object| history.observe(&self.truth, self.prefix, object).err())
            .collect();
        if processed.popped.is_in_initial_list && processed.has_synced_while_processing {
            let key = key.map_or("?".to_owned(), ToString::to_string);
            found.push(Violation::new(
                Invariant::InformerSyncedImpliesInitialListApplied,
                format!("synced while the initial item {key} was still being processed"),
            ));
        }
        let internals = match key.filter(|_| !is_small(informer)) {
            Some(key) => [
                (
                    Invariant::IndexerIndicesMatchItems,
                    indexer.check_key_index_invariant(key, mentioned(processed)),
                ),
                (
                    Invariant::FifoInternalInvariants,
                    informer.fifo().check_key_invariants(key),
                ),
            ],
            None => [
                (
                    Invariant::IndexerIndicesMatchItems,
                    indexer.check_index_invariant(),
                ),
                (
                    Invariant::FifoInternalInvariants,
                    informer.fifo().check_invariants(),
                ),
            ],
        };
        for (invariant, result) in internals {
            if let Err(message) = result {
                found.push(Violation::new(invariant, message));
            }
        }
        found.extend(self.check_queue(client, informer, &touched));
        found.extend(self.pop_hazards(client, informer, processed));
        found
    }

    /// After a pop: N3 (a resync's objects equal etcd's), N4 (the first synced moment; an
    /// empty initial list syncs without a pop and is not checked) and N5 (the indexer is one
    /// snapshot).
    fn pop_hazards(
        &mut self,
        client: usize,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Vec<Violation> {
        let resync = self.runs(Invariant::ResyncRepairsDivergence);
        let synced = self.runs(Invariant::SyncedMeansCacheUpToDate);
        let declared_snapshot = self.expects(Invariant::ListerIsASnapshotAtOneRv);
        let mut found = Vec::new();
        if self.atomic_fifo && !declared_snapshot {
            found.extend(self.check_atomic_snapshot(client, informer, processed));
        }
        if !(resync || synced || declared_snapshot) {
            return found;
        }
        let indexer = by_key(informer.indexer().list());
        let truth = &self.truth;
        let popped = &processed.popped;
        let first_synced = popped.is_in_initial_list && informer.has_synced();
        let results = [
            resync.then(|| {
                hazards::check_resync_repairs(truth, self.prefix, &popped.deltas, &indexer)
            }),
            (synced && first_synced)
                .then(|| hazards::check_synced_up_to_date(truth, self.prefix, &indexer)),
            declared_snapshot
                .then(|| hazards::check_lister_is_snapshot(truth, self.prefix, &indexer)),
        ];
        found.extend(results.into_iter().flatten().filter_map(Result::err));
        found
    }

    /// N5 as the promise atomic RealFIFO keeps (PR #136008): applying deltas in order and a
    /// relist as one `ReplacedAll`, the indexer is etcd's state at the revision of the last
    /// delta it applied. Checked incrementally: the keys the pop touched and the keys etcd
    /// changed since the last check.
    fn check_atomic_snapshot(
        &mut self,
        client: usize,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Option<Violation> {
        let lister = &mut self.clients[client].lister;
        let mut applied = None;
        for delta in &processed.popped.deltas {
            match delta {
                Delta::ReplacedAll(info) => {
                    lister.touch_all();
                    applied = Some(info.resource_version);
                }
                Delta::Bookmark(resource_version) => applied = Some(*resource_version),
                Delta::SyncAll => {}
                delta => {
                    let key = delta.key().expect("a per-object delta");
                    lister.touch(key);
                    applied = delta.newest_state().map(|object| object.resource_version);
                }
            }
        }
        let revision = applied?;
        let difference =
            lister.first_difference(&self.truth, self.prefix, revision, informer.indexer())?;
        Some(Violation::new(
            Invariant::ListerIsASnapshotAtOneRv,
            format!(
                "with atomic RealFIFO, at the RV {revision} of the last delta applied: {difference}"
            ),
        ))
    }

    /// A handler of client `client` (the `handler`-th registration, `id`) was notified: the
    /// indexer already had the state (P3), deletes carry their final state (N2), and the first
    /// time the registration reports synced its handler saw the whole initial list (B20).
    pub fn on_delivery(
        &mut self,
        client: usize,
        handler: usize,
        id: HandlerId,
        informer: &SharedIndexInformer,
        delivered: &Delivered,
    ) -> Vec<Violation> {
        let mut found: Vec<Violation> =
            client::check_notification_follows_cache(informer.indexer(), &delivered.notification)
                .err()
                .into_iter()
                .collect();
        if self.runs(Invariant::EveryDeleteIsOnDeleteWithFinalState) {
            found.extend(
                hazards::check_delete_has_final_state(
                    &self.truth,
                    self.prefix,
                    &delivered.notification,
                )
                .err(),
            );
        }
        if let Some(synced) = informer.handler_synced(id)
            && !std::mem::replace(
                &mut self.clients[client].handler_synced_checked[handler],
                true,
            )
        {
            found.extend(client::check_initial_list_seen(synced).err());
        }
        found
    }

    /// Client `client`'s process stopped (B28).
    pub fn on_client_stopped(&self, client: usize, stopped: Stopped) -> Option<Violation> {
        client::check_closed_fifo_wakes_pop(stopped)
            .map_err(|violation| Violation {
                message: format!("client-{client}: {}", violation.message),
                ..violation
            })
            .err()
    }

    // ---- settling ------------------------------------------------------------------------------

    /// After healing, every raw etcd watcher has an open watch that delivered all of its range.
    pub fn check_etcd_watchers_caught_up(
        &self,
        compact_revision: Revision,
    ) -> Result<(), Violation> {
        for (index, watch) in self.etcd_watches.iter().enumerate() {
            let Some(oracle) = watch else {
                return Err(Violation::new(
                    Invariant::EtcdWatchersCaughtUp,
                    format!("watcher-{index} has no watch after healing"),
                ));
            };
            if let Some(missed) = oracle.first_undelivered(&self.truth, compact_revision) {
                return Err(Violation::new(
                    Invariant::EtcdWatchersCaughtUp,
                    format!("watcher-{index} never received the event at revision {missed}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether every client has settled: its reflector watches, its informer is idle, and its
    /// indexer equals etcd's current state.
    pub fn check_clients_settled<'a>(
        &self,
        clients: impl IntoIterator<Item = (usize, &'a Reflector, &'a SharedIndexInformer)>,
    ) -> Result<(), Violation> {
        let clients: Vec<_> = clients.into_iter().collect();
        for (index, reflector, informer) in &clients {
            if reflector.phase() != ReflectorPhase::Watching {
                return Err(Violation::new(
                    Invariant::RunSettles,
                    format!("client-{index}: reflector is {:?}", reflector.phase()),
                ));
            }
            if !informer.is_quiescent() {
                return Err(Violation::new(
                    Invariant::RunSettles,
                    format!("client-{index}: informer still busy"),
                ));
            }
        }
        let truth = etcd_state(&self.truth, self.prefix, self.truth.revision());
        for (index, _, informer) in clients {
            let indexer = by_key(informer.indexer().list());
            if let Some(difference) = first_difference(&indexer, &truth) {
                return Err(Violation::new(
                    Invariant::IndexerConvergesToEtcd,
                    format!("client-{index}: {difference}"),
                ));
            }
        }
        Ok(())
    }

    /// Once settled: every handler's mirror equals its indexer (B3).
    pub fn check_mirrors(
        informer: &SharedIndexInformer,
        handlers: &[HandlerId],
    ) -> Result<(), Violation> {
        handlers.iter().try_for_each(|id| {
            client::check_mirror_equals_indexer(informer.handler_mirror(*id), informer.indexer())
        })
    }
}

/// The fake's answer against the truth's.
fn compare<T: PartialEq + std::fmt::Debug>(
    fake: &Result<T, EtcdError>,
    truth: &Result<T, EtcdError>,
    what: &str,
) -> Option<Violation> {
    (fake != truth).then(|| {
        Violation::new(
            Invariant::EtcdMatchesReference,
            format!("{what}: fake {fake:?}, reference {truth:?}"),
        )
    })
}
