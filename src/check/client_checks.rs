//! What the checker keeps of one client identity, and the checks of its requests, answers,
//! store calls, pops and handler calls: the client half of the [`Checker`](super::Checker).

use std::collections::BTreeMap;

use super::api_oracle;
use super::catalog::Invariant;
use super::client::{self, ReflectorView, RvHistory};
use super::hazards;
use super::policy::Ground;
use super::resource::Selection;
use super::state::{FULL_COMPARE_SIZE, IncrementalCompare, by_key};
use super::violation::Violation;
use crate::api::{ClientMessage, RequestId, ResourceVersionParam, Selectors, ServerMessage};
use crate::client::reflector::StoreOp;
use crate::client::{Delivered, Delta, HandlerId, Notification, Processed, SharedIndexInformer};
use crate::etcd::Revision;
use crate::object::{Object, ObjectKey, ResourceVersion};

/// What the checker keeps of one client identity: the cross-restart history, and the oracles
/// of the running process and its connection.
#[derive(Default)]
pub(super) struct ClientChecks {
    /// What the client's lists and watches select: the part of etcd its indexer mirrors.
    selection: Selection,
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
    /// A client without a reflector's safe point (kube-rs): the RV it will watch from next.
    resume_point: Option<ResourceVersion>,
}

/// What a store call or a pop may have changed in a client's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// These keys only (a watch event's key, or the keys of a batch pop).
    Keys(Vec<ObjectKey>),
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

impl ClientChecks {
    /// A new process of a client identity whose earlier processes left `self`, listing and
    /// watching with `selectors`: the history persists (and becomes the record of an
    /// earlier incarnation), the rest starts afresh.
    pub(super) fn restarted(&mut self, handlers: usize, selectors: Selectors) {
        self.history.restart();
        *self = ClientChecks {
            selection: Selection {
                namespace: None,
                label_selector: selectors.label,
                field_selector: selectors.field,
            },
            history: std::mem::take(&mut self.history),
            handler_synced_checked: vec![false; handlers],
            ..ClientChecks::default()
        };
    }

    /// A handler was registered on the running informer.
    pub(super) fn handler_added(&mut self) {
        self.handler_synced_checked.push(false);
    }

    /// The client sends `message`; no apiserver serves a state older than `floor`.
    pub(super) fn on_request(&mut self, message: &ClientMessage, floor: ResourceVersion) {
        let checks = self;
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
                let oracle = api_oracle::WatchStreamOracle::new(options);
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

    /// The connection broke: the streams and requests are gone.
    pub(super) fn on_reconnect(&mut self) {
        self.watches.clear();
        self.floors.clear();
    }

    /// A client without a reflector's safe point will watch from `resume_point` next: the
    /// history after it stays readable.
    pub(super) fn resume_from(&mut self, resume_point: ResourceVersion) {
        self.resume_point = Some(resume_point);
    }

    /// A client's cache took `objects` outside an informer (a kube-rs store): one watch
    /// event's object, or after a relist every object it holds.
    pub(super) fn observe_cache(
        &mut self,
        ground: Ground<'_>,
        objects: &[Object],
        relist: bool,
    ) -> Vec<Violation> {
        if relist {
            return self.history.observe_relisted(ground.resource, objects);
        }
        objects
            .iter()
            .filter_map(|object| self.history.observe(ground.resource, object).err())
            .collect()
    }

    /// What the client's lists and watches select.
    pub(super) fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The revisions this client's checks may still read from.
    pub(super) fn marks(&self) -> impl Iterator<Item = Revision> + '_ {
        let streams = self
            .watches
            .values()
            .filter_map(api_oracle::WatchStreamOracle::delivered_resource_version);
        // A reflector may list or watch from its last synced RV at any time (after a broken
        // connection, long after the request that set it), and that watch's checks read the
        // history after it.
        [
            self.view.safe_point_checked_at(),
            self.lister.compared_at(),
            self.resume_point,
            self.last_sync_checked,
        ]
        .into_iter()
        .flatten()
        .chain(streams)
        .chain(self.floors.values().copied())
    }

    /// A server message from `apiserver` arrives, before the reflector sees it: the closes and
    /// 410s upstream does not promise about (N7, N8) first, then the stream's oracle.
    pub(super) fn on_answer(
        &mut self,
        ground: Ground<'_>,
        apiserver: usize,
        message: &ServerMessage,
    ) -> Vec<Violation> {
        let mut found: Vec<Violation> = self
            .answer_hazards(ground, apiserver, message)
            .into_iter()
            .collect();
        let checks = self;
        match message {
            ServerMessage::List { id, .. } => {
                checks.floors.remove(id);
            }
            ServerMessage::WatchEvent { id, event } => {
                if let Some(oracle) = checks.watches.get_mut(id) {
                    found.extend(
                        oracle
                            .observe(ground.resource, ground.truth.compact_revision(), event)
                            .err(),
                    );
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

    fn answer_hazards(
        &self,
        ground: Ground<'_>,
        apiserver: usize,
        message: &ServerMessage,
    ) -> Option<Violation> {
        let watches = &self.watches;
        match message {
            ServerMessage::WatchClosed { id }
                if ground.policy.runs(Invariant::ClosedWatchIsCaughtUp) =>
            {
                let oracle = watches.get(id)?;
                let delivered = oracle.delivered_resource_version()?;
                let undelivered = oracle.first_undelivered(ground.resource);
                hazards::check_closed_watch_caught_up(id, delivered, undelivered).err()
            }
            _ if ground
                .policy
                .runs(Invariant::WatchFromRetainedRvServedAnywhere) =>
            {
                let id = hazards::expired_watch(message)?;
                let from = watches.get(&id)?.delivered_resource_version()?;
                hazards::check_watch_served(ground.truth, apiserver, from).err()
            }
            _ => None,
        }
    }

    /// The reflector called its store: the view follows. Returns what the call may have
    /// changed in the queue, for [`ClientChecks::check_queue`].
    pub(super) fn on_store_op(&mut self, op: &StoreOp) -> Touched {
        let view = &mut self.view;
        match op {
            StoreOp::Replace { items, .. } => {
                view.replace(items);
                Touched::All
            }
            StoreOp::Add(object) | StoreOp::Update(object) => {
                view.put(object);
                Touched::Keys(vec![object.key.clone()])
            }
            StoreOp::Delete(object) => {
                view.delete(&object.key);
                Touched::Keys(vec![object.key.clone()])
            }
            StoreOp::Resync => Touched::All,
            StoreOp::Bookmark(_) => Touched::Nothing,
        }
    }

    /// After every store call and every pop: tombstones carry the newest known state (B5), and
    /// the indexer with the queue applied is the reflector's view (B2, B4, B7). Only the
    /// `touched` keys are looked at, unless the client is small enough to look at all.
    pub(super) fn check_queue(
        &self,
        informer: &SharedIndexInformer,
        touched: &Touched,
    ) -> Vec<Violation> {
        let view = &self.view;
        let results = match touched {
            Touched::Nothing => return Vec::new(),
            Touched::Keys(keys) if !is_small(informer) => keys
                .iter()
                .flat_map(|key| {
                    [
                        client::check_tombstones_for(informer, key),
                        view.check_pending_for(key, informer),
                    ]
                })
                .collect(),
            Touched::Keys(_) | Touched::All => vec![
                client::check_tombstones(informer),
                view.check_pending_state(&informer.pending_state()),
            ],
        };
        results.into_iter().filter_map(Result::err).collect()
    }

    /// The reflector's last synced RV may have moved: when it is set to a new RV, the view must
    /// be etcd's state there (the safe point, B11, B16).
    pub(super) fn on_last_sync(
        &mut self,
        ground: Ground<'_>,
        last_sync: Option<ResourceVersion>,
    ) -> Option<Violation> {
        let checks = self;
        if last_sync == checks.last_sync_checked {
            return None;
        }
        checks.last_sync_checked = last_sync;
        let revision = last_sync.filter(|revision| *revision > 0)?;
        checks
            .view
            .check_safe_point(ground.resource, &checks.selection, revision)
            .err()
    }

    /// The informer processed one popped item: every indexer write and what the indexer now
    /// holds for the key existed in etcd and moves forward (P2, B1), the FIFO's sync came after
    /// the item (N6), the indexer and FIFO bookkeeping, the queue, and the assumption checks of
    /// a pop (N3, N4, N5).
    pub(super) fn on_pop(
        &mut self,
        ground: Ground<'_>,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Vec<Violation> {
        let key = processed.popped.key();
        let indexer = informer.indexer();
        let written = processed.distributed.iter().filter_map(|distributed| {
            match &distributed.notification {
                Notification::Add { obj, .. } | Notification::Update { new: obj, .. } => Some(obj),
                Notification::Delete(_) => None,
            }
        });
        // A batch touches only its own keys (one indexer transaction): the checks look at
        // those, so that small batches of a large store stay O(batch), not O(store).
        let keys = processed.popped.keys();
        let touched = keys.as_ref().map_or(Touched::All, |keys| {
            Touched::Keys(keys.iter().map(|key| (*key).clone()).collect())
        });
        let held: Vec<&Object> = match &keys {
            Some(keys) => keys
                .iter()
                .filter_map(|key| indexer.get_by_key(key))
                .collect(),
            None => indexer.list(),
        };
        let history = &mut self.history;
        let mut found: Vec<Violation> = written
            .chain(held)
            .filter_map(|object| history.observe(ground.resource, object).err())
            .collect();
        if processed.popped.is_in_initial_list && processed.has_synced_while_processing {
            let key = key.map_or("?".to_owned(), ToString::to_string);
            found.push(Violation::new(
                Invariant::InformerSyncedImpliesInitialListApplied,
                format!("synced while the initial item {key} was still being processed"),
            ));
        }
        found.extend(processed.transformed_again.iter().map(|(obj, runs)| {
            Violation::new(
                Invariant::TransformAppliedOnce,
                format!("{obj} reached the indexer transformed {runs} times"),
            )
        }));
        let internals: Vec<(Invariant, Result<(), String>)> =
            match keys.filter(|_| !is_small(informer)) {
                Some(keys) => keys
                    .into_iter()
                    .flat_map(|key| {
                        let states = mentioned(processed).filter(|object| object.key == *key);
                        [
                            (
                                Invariant::IndexerIndicesMatchItems,
                                indexer.check_key_index_invariant(key, states),
                            ),
                            (
                                Invariant::FifoInternalInvariants,
                                informer.fifo().check_key_invariants(key),
                            ),
                        ]
                    })
                    .collect(),
                None => vec![
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
        found.extend(self.check_queue(informer, &touched));
        found.extend(self.pop_hazards(ground, informer, processed));
        found
    }

    /// After a pop: N3 (a resync's objects equal etcd's), N4 (the first synced moment; an
    /// empty initial list syncs without a pop and is not checked) and N5 (the indexer is one
    /// snapshot).
    fn pop_hazards(
        &mut self,
        ground: Ground<'_>,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Vec<Violation> {
        let resync = ground.policy.runs(Invariant::ResyncRepairsDivergence);
        let synced = ground.policy.runs(Invariant::SyncedMeansCacheUpToDate);
        let declared_snapshot = ground.policy.expects(Invariant::ListerIsASnapshotAtOneRv);
        let mut found = Vec::new();
        if ground.policy.atomic_fifo && !declared_snapshot {
            found.extend(self.check_atomic_snapshot(ground, informer, processed));
        }
        if !(resync || synced || declared_snapshot) {
            return found;
        }
        let indexer = by_key(informer.indexer().list());
        let (resource, selection) = (ground.resource, &self.selection);
        let popped = &processed.popped;
        let first_synced = popped.is_in_initial_list && informer.has_synced();
        let results = [
            resync.then(|| {
                hazards::check_resync_repairs(resource, selection, &popped.deltas, &indexer)
            }),
            (synced && first_synced)
                .then(|| hazards::check_synced_up_to_date(resource, selection, &indexer)),
            declared_snapshot
                .then(|| hazards::check_lister_is_snapshot(resource, selection, &indexer)),
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
        ground: Ground<'_>,
        informer: &SharedIndexInformer,
        processed: &Processed,
    ) -> Option<Violation> {
        let (lister, selection) = (&mut self.lister, &self.selection);
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
            lister.first_difference(ground.resource, selection, revision, informer.indexer())?;
        Some(Violation::new(
            Invariant::ListerIsASnapshotAtOneRv,
            format!(
                "with atomic RealFIFO, at the RV {revision} of the last delta applied: {difference}"
            ),
        ))
    }

    /// A handler (the `handler`-th registration, `id`) was notified: the
    /// indexer already had the state (P3), deletes carry their final state (N2), and the first
    /// time the registration reports synced its handler saw the whole initial list (B20).
    pub(super) fn on_delivery(
        &mut self,
        ground: Ground<'_>,
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
        if ground
            .policy
            .runs(Invariant::EveryDeleteIsOnDeleteWithFinalState)
        {
            found.extend(
                hazards::check_delete_has_final_state(ground.resource, &delivered.notification)
                    .err(),
            );
        }
        if let Some(synced) = informer.handler_synced(id)
            && !std::mem::replace(&mut self.handler_synced_checked[handler], true)
        {
            found.extend(client::check_initial_list_seen(synced).err());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bug::Bugs;
    use crate::client::{FifoKind, InformerConfig};
    use crate::sim::SimTime;

    fn key(index: usize) -> ObjectKey {
        ObjectKey::new(&format!("k{index:04}"))
    }

    /// Past the small size, the queue checks look at the touched keys and nothing else, so a
    /// batch pop costs its batch, not the store; a whole-store touch still looks at all.
    #[test]
    fn a_large_clients_queue_checks_look_at_exactly_the_touched_keys() {
        let now = SimTime::ZERO;
        let mut checks = ClientChecks::default();
        let mut informer =
            SharedIndexInformer::new(InformerConfig::new(FifoKind::Real), Bugs::NONE);
        informer.run(now);
        for index in 0..=FULL_COMPARE_SIZE {
            let object = Object::bare(key(index).as_str(), index as u64 + 1);
            checks.on_store_op(&StoreOp::Add(object.clone()));
            informer.add(now, object);
        }
        assert!(!is_small(&informer));
        // The reflector's store saw a newer k0000 that never reached the informer's queue.
        checks.on_store_op(&StoreOp::Update(Object::bare(key(0).as_str(), 9_999)));

        let untouched = Touched::Keys(vec![key(1), key(2)]);
        assert_eq!(checks.check_queue(&informer, &untouched), Vec::new());
        for touched in [Touched::Keys(vec![key(1), key(0)]), Touched::All] {
            let found = checks.check_queue(&informer, &touched);
            let invariants: Vec<Invariant> = found.iter().map(|v| v.invariant).collect();
            assert_eq!(
                invariants,
                vec![Invariant::QueueAppliedEqualsReflectorView],
                "{touched:?}"
            );
        }
        assert_eq!(checks.check_queue(&informer, &Touched::Nothing), Vec::new());
    }
}
