//! The one observer of a run, as TigerBeetle's cluster holds its state checkers: it owns the
//! ground truth (the naive reference etcd) and every per-client oracle, the world calls one
//! hook per thing that happens, and every verdict goes out along one path, [`Checker::report`],
//! where the catalog (not the call site) decides whether a broken invariant is a failure or an
//! expected upstream hazard.
//!
//! Hooks return the violations they found; the world hands them to `report` with the step
//! they belong to. The models only expose facts (`pending_state`, `handler_synced`, `stop`'s
//! [`Stopped`]); the verdicts are computed here and in the check modules.

use super::api_oracle::{self, Freshness};
use super::catalog::{Invariant, Kind};
use super::client;
use super::client_checks::ClientChecks;
use super::controller::{self, ReplicaSetLedger};
use super::etcd_watch;
use super::policy::{Ground, Policy};
use super::resource::ResourceHistory;
use super::state::{below_horizon, by_key, etcd_state, first_difference};
use super::truth::GroundTruth;
use super::violation::Violation;
use crate::api::{ClientMessage, ListOptions, ListResponse, Selectors, ServerMessage};
use crate::client::reflector::{Reflector, ReflectorPhase, StoreOp};
use crate::client::{
    Delivered, FifoKind, HandlerId, Indexer, Processed, SharedIndexInformer, Stopped,
};
use crate::controller::ControllerRuntime;
use crate::etcd::{
    EtcdError, KeyRange, RangeRequest, RangeResponse, Revision, TxnRequest, TxnResponse,
    WatchResponse,
};
use crate::object::{Object, ObjectKey, ResourceVersion};
use std::collections::BTreeMap;

pub use super::client_checks::Touched;

/// The one observer of a run.
pub struct Checker {
    truth: GroundTruth,
    /// The simulated resource's history, decoded from the truth's as it is written.
    resource: ResourceHistory,
    policy: Policy,
    clients: Vec<ClientChecks>,
    etcd_watches: Vec<Option<etcd_watch::WatchStreamOracle>>,
    hazards: Vec<(u64, Violation)>,
    /// The sample controller's owned-object ledger, in runs of it.
    replicasets: Option<ReplicaSetLedger>,
}

impl Checker {
    /// A checker for a run of the resource under `prefix`, whose scenario declares `declared`
    /// hazards and whose clients use `fifo` (which may bring hazards of its own,
    /// [`expected_hazards`](super::expected_hazards)).
    pub fn new(prefix: &'static str, declared: &[Invariant], fifo: FifoKind) -> Checker {
        let expected = super::policy::expected_hazards(declared, fifo);
        debug_assert!(expected.iter().all(|hazard| hazard.kind() == Kind::Hazard));
        Checker {
            truth: GroundTruth::default(),
            resource: ResourceHistory::new(prefix),
            policy: Policy {
                expected,
                atomic_fifo: fifo == FifoKind::RealAtomic,
                enabled: true,
            },
            clients: Vec::new(),
            etcd_watches: Vec::new(),
            hazards: Vec::new(),
            replicasets: None,
        }
    }

    /// A checker that checks nothing, and so keeps no ground truth: what the simulation costs
    /// alone (`informer-sim bench`). Settling then means only that every reflector watches
    /// and every informer is idle.
    pub fn disabled(prefix: &'static str) -> Checker {
        let mut checker = Checker::new(prefix, &[], FifoKind::Delta);
        checker.policy.enabled = false;
        checker
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
            if !self.policy.expects(violation.invariant) {
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

    /// What client `client`'s checks read, beside the checks themselves.
    fn client(&mut self, client: usize) -> (Ground<'_>, &mut ClientChecks) {
        let ground = Ground {
            truth: &self.truth,
            resource: &self.resource,
            policy: &self.policy,
        };
        (ground, &mut self.clients[client])
    }

    // ---- etcd ----------------------------------------------------------------------------------

    /// The fake answered a range read: the truth must answer the same.
    pub fn on_etcd_range(
        &mut self,
        request: &RangeRequest,
        fake: &Result<RangeResponse, EtcdError>,
    ) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let truth = self.truth.range(request);
        compare(fake, &truth, "range")
    }

    /// The fake ran a transaction: the truth runs it too and must answer the same.
    pub fn on_etcd_txn(
        &mut self,
        request: &TxnRequest,
        fake: &Result<TxnResponse, EtcdError>,
    ) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let revision = self.truth.revision();
        let truth = self.truth.txn(request);
        let mut owned = None;
        if self.truth.revision() > revision {
            let revision = self.truth.revision();
            self.resource
                .record(revision, self.truth.events_at(revision));
            if let Some(ledger) = &mut self.replicasets {
                let changes = self.resource.changes_between(revision - 1, revision);
                owned = changes
                    .filter_map(|(_, change)| ledger.observe(change))
                    .last();
            }
        }
        compare(fake, &truth, "txn").or(owned)
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
        if !self.policy.enabled {
            return None;
        }
        let truth = self.truth.compact(revision);
        let found = compare(fake, &truth, "compact");
        if truth.is_ok() {
            let low_water = self.low_water().min(read_floor).min(self.truth.revision());
            self.truth.forget_before(low_water);
            self.resource.forget_before(low_water);
        }
        found
    }

    /// Raw etcd watcher `watcher` opened a watch on `range` whose first revision is `start`.
    pub fn on_etcd_watch_opened(&mut self, watcher: usize, range: KeyRange, start: Revision) {
        if !self.policy.enabled {
            return;
        }
        if self.etcd_watches.len() <= watcher {
            self.etcd_watches.resize(watcher + 1, None);
        }
        self.etcd_watches[watcher] = Some(etcd_watch::WatchStreamOracle::new(range, start));
    }

    /// Raw etcd watcher `watcher`'s watch is gone (a disconnect or a compaction cancel).
    pub fn on_etcd_watch_closed(&mut self, watcher: usize) {
        if let Some(watch) = self.etcd_watches.get_mut(watcher) {
            *watch = None;
        }
    }

    /// A message reached raw etcd watcher `watcher`; `compact_revision` is etcd's when the
    /// message was made.
    pub fn on_etcd_watch_response(
        &mut self,
        watcher: usize,
        response: &WatchResponse,
        compact_revision: Revision,
    ) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let oracle = self.etcd_watches[watcher]
            .as_mut()
            .expect("an open watch has an oracle");
        oracle
            .observe(response, &self.truth, compact_revision)
            .err()
    }

    // ---- clients: requests and answers ---------------------------------------------------------

    /// Client `client` starts a new process, listing and watching with `selectors`: its
    /// oracles start afresh, its history persists (and becomes the record of an earlier
    /// incarnation after a restart).
    pub fn on_client_started(&mut self, client: usize, handlers: usize, selectors: Selectors) {
        if client == self.clients.len() {
            self.clients.push(ClientChecks::default());
        }
        self.clients[client].restarted(handlers, selectors);
    }

    /// A handler was registered on client `client`'s running informer.
    pub fn on_handler_added(&mut self, client: usize) {
        self.clients[client].handler_added();
    }

    /// Client `client` sends `message`; no apiserver serves a state older than `floor` (the
    /// oldest cache, or etcd's revision where there is none), so the answer's checks read no
    /// history below it or below an RV the request names.
    pub fn on_request(&mut self, client: usize, message: &ClientMessage, floor: ResourceVersion) {
        if self.policy.enabled {
            self.clients[client].on_request(message, floor);
        }
    }

    /// Client `client`'s connection broke: its streams and requests are gone.
    pub fn on_reconnect(&mut self, client: usize) {
        self.clients[client].on_reconnect();
    }

    /// The oldest revision any check may still read: the compact revision, each client's
    /// last safe point and lister comparison, each open stream's position, each request's
    /// floor, and each raw etcd watch's next revision. With an assumption check declared
    /// (hazard scenarios, short and small), everything is kept.
    fn low_water(&self) -> Revision {
        if self.policy.keeps_all_history() {
            return 0;
        }
        let watches = self
            .etcd_watches
            .iter()
            .flatten()
            .map(etcd_watch::WatchStreamOracle::next_revision);
        self.clients
            .iter()
            .flat_map(ClientChecks::marks)
            .chain(watches)
            .fold(self.truth.compact_revision(), Revision::min)
    }

    /// A server message reaches client `client` (connected to `apiserver`), before the
    /// reflector sees it.
    pub fn on_answer(
        &mut self,
        client: usize,
        apiserver: usize,
        message: &ServerMessage,
    ) -> Vec<Violation> {
        if !self.policy.enabled {
            return Vec::new();
        }
        let (ground, checks) = self.client(client);
        checks.on_answer(ground, apiserver, message)
    }

    /// A list page reaches a client: `options` were asked for, and etcd was at `arrival` when
    /// the request reached its apiserver.
    pub fn on_list_page(
        &self,
        options: &ListOptions,
        arrival: ResourceVersion,
        page: &ListResponse,
    ) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let freshness = Freshness::of(options, arrival);
        api_oracle::check_list(&self.resource, options, freshness, page).err()
    }

    // ---- clients: the reflector's store and the informer -------------------------------------

    /// The reflector called its store. Returns what the call may have changed in the queue.
    pub fn on_store_op(&mut self, client: usize, op: &StoreOp) -> Touched {
        if !self.policy.enabled {
            return Touched::Nothing;
        }
        self.clients[client].on_store_op(op)
    }

    /// After every store call: the queue checks of what it `touched`.
    pub fn check_queue(
        &self,
        client: usize,
        informer: &SharedIndexInformer,
        touched: &Touched,
    ) -> Vec<Violation> {
        if !self.policy.enabled {
            return Vec::new();
        }
        self.clients[client].check_queue(informer, touched)
    }

    /// The reflector's last synced RV may have moved: the safe point (B11, B16).
    pub fn on_last_sync(
        &mut self,
        client: usize,
        last_sync: Option<ResourceVersion>,
    ) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let (ground, checks) = self.client(client);
        checks.on_last_sync(ground, last_sync)
    }

    /// The informer of client `client` processed one popped item.
    pub fn on_pop(
        &mut self,
        client: usize,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Vec<Violation> {
        if !self.policy.enabled {
            return Vec::new();
        }
        let (ground, checks) = self.client(client);
        checks.on_pop(ground, informer, processed)
    }

    /// A handler of client `client` (the `handler`-th registration, `id`) was notified.
    pub fn on_delivery(
        &mut self,
        client: usize,
        handler: usize,
        id: HandlerId,
        informer: &SharedIndexInformer,
        delivered: &Delivered,
    ) -> Vec<Violation> {
        if !self.policy.enabled {
            return Vec::new();
        }
        let (ground, checks) = self.client(client);
        checks.on_delivery(ground, handler, id, informer, delivered)
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

    // ---- clients without an informer (kube-rs) ------------------------------------------------

    /// Client `client`'s cache (a kube-rs reflector store) took `objects`: one watch event's
    /// object, or, after a relist (`relist`), every object it now holds. Each existed in etcd
    /// and moves forward within the process (P2); a relist that goes back is
    /// `no_time_travel_on_relist`.
    pub fn on_cache_objects(
        &mut self,
        client: usize,
        objects: &[Object],
        relist: bool,
    ) -> Vec<Violation> {
        if !self.policy.enabled {
            return Vec::new();
        }
        let (ground, checks) = self.client(client);
        checks.observe_cache(ground, objects, relist)
    }

    /// Client `client` (without a reflector's safe point) will watch from `resume_point` next:
    /// the history after it stays readable for that watch's checks.
    pub fn on_resume_point(&mut self, client: usize, resume_point: ResourceVersion) {
        self.clients[client].resume_from(resume_point);
    }

    /// A relist of client `client` ended with its cache holding `objects`, from a list at
    /// `revision`: they are etcd's state there, so deletes missed while it was disconnected
    /// are gone (the safe point, as for the reflector's last synced RV).
    pub fn check_cache_at(
        &self,
        client: usize,
        objects: &[Object],
        revision: ResourceVersion,
    ) -> Option<Violation> {
        if !self.policy.enabled || below_horizon(&self.resource, revision).is_some() {
            return None;
        }
        let truth = etcd_state(&self.resource, revision, self.clients[client].selection());
        let difference = first_difference(&by_key(objects), &truth)?;
        Some(Violation::new(
            Invariant::ReflectorLastSyncRvIsASafePoint,
            format!("client-{client}: at the relist's RV {revision}: {difference}"),
        ))
    }

    /// Once settled: client `client`'s cache equals etcd's current state.
    pub fn check_cache_converged(
        &self,
        client: usize,
        objects: &[Object],
    ) -> Result<(), Violation> {
        if !self.policy.enabled {
            return Ok(());
        }
        self.check_converged(client, &by_key(objects))
    }

    fn check_converged(
        &self,
        client: usize,
        cache: &BTreeMap<ObjectKey, Object>,
    ) -> Result<(), Violation> {
        let revision = self.resource.revision();
        let truth = etcd_state(&self.resource, revision, self.clients[client].selection());
        match first_difference(cache, &truth) {
            None => Ok(()),
            Some(difference) => Err(Violation::new(
                Invariant::IndexerConvergesToEtcd,
                format!("client-{client}: {difference}"),
            )),
        }
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
        if !self.policy.enabled {
            return Ok(());
        }
        clients.into_iter().try_for_each(|(index, _, informer)| {
            self.check_converged(index, &by_key(informer.indexer().list()))
        })
    }

    // ---- controller ----------------------------------------------------------------------------

    /// The run's controller is the sample ReplicaSet-like one: keep its owned-object ledger
    /// (`owned_within_allowed` at every commit, `owned_match_desired` once settled).
    /// `None`: the controller is the user's, whose invariants are its own.
    pub fn watch_replicasets(&mut self, replicas_max: Option<u32>) {
        self.replicasets = replicas_max.map(ReplicaSetLedger::new);
    }

    /// The controller's queue or workers changed: the work-queue invariants.
    pub fn on_controller_step(&self, runtime: &ControllerRuntime) -> Option<Violation> {
        self.policy
            .enabled
            .then(|| controller::check_workqueue(runtime))?
    }

    /// A reconcile ended: what its lister handed out must still be in the cache unchanged.
    pub fn on_reconciled(
        &self,
        handed_out: &std::collections::BTreeMap<ObjectKey, Object>,
        indexer: &Indexer,
    ) -> Option<Violation> {
        self.policy
            .enabled
            .then(|| controller::check_lister_unchanged(handed_out, indexer))?
    }

    /// Once settled: no work lost by the queue, and the sample controller's counts match.
    pub fn check_controller_settled(&self, runtime: &ControllerRuntime) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        controller::check_workqueue_settled(runtime).or_else(|| self.check_owned_settled())
    }

    /// Once settled: the sample controller's counts match (`owned_match_desired`), for the
    /// modelled controller or kube-rs's.
    pub fn check_owned_settled(&self) -> Option<Violation> {
        if !self.policy.enabled {
            return None;
        }
        let ledger = self.replicasets.as_ref()?;
        ledger.check_settled(&self.resource)
    }

    /// The simulated resource's history (what user invariants read of etcd).
    pub fn resource(&self) -> &ResourceHistory {
        &self.resource
    }

    /// Once settled: every handler's mirror equals its indexer (B3).
    pub fn check_mirrors(
        &self,
        informer: &SharedIndexInformer,
        handlers: &[HandlerId],
    ) -> Result<(), Violation> {
        if !self.policy.enabled {
            return Ok(());
        }
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
