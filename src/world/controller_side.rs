//! The controller of a world: its runtime (work queue and workers), fed by handler 0 of client
//! 0's informer, reading that informer's cache and writing to etcd.
//!
//! Writes go straight to the fake etcd as kube-apiserver's storage layer would send them (a
//! transaction comparing the object's `mod_revision` with the precondition: `GuaranteedUpdate`
//! and `Delete` with a resourceVersion precondition, `Create` on an absent key); the simulated
//! apiserver models only lists and watches, so no admission, defaulting or apiserver latency
//! is in the path. The controller keeps its queue and expectations across restarts of its
//! informer's process: a restarted informer's initial list re-adds every key.

use crate::bug::Bugs;
use crate::check::{Invariant, Violation};
use crate::client::{Delivered, HandlerOutcome};
use std::rc::Rc;

use crate::controller::{
    Client, ClusterState, Controller, ControllerFactory, ControllerRuntime, Finished, Lister,
    ReconcileError, ReplicaSetController, UserInvariant, When, Write, WriteError, Writer,
};
use crate::etcd::Revision;
use crate::object::Object;
use crate::scenario::ControllerConfig;
use crate::sim::{RngStream, SimDuration, Wakeup};

use super::World;
use super::core::Core;
use super::etcd_side::EtcdSide;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};
use super::writer::{self, CommitOutcome, Intent, PendingWrite, RESOURCE_PREFIX};

/// The client whose informer feeds the controller, and its handler that does.
const CONTROLLER_CLIENT: usize = 0;
const CONTROLLER_HANDLER: usize = 0;

/// How often a worker waiting for its informer's first sync looks again (client-go
/// `WaitForCacheSync`'s poll period).
const SYNC_POLL: SimDuration = SimDuration::from_millis(100);

/// The controller part of a world: the runtime, and how the world drives it.
pub(crate) struct ControllerSide {
    pub(crate) runtime: ControllerRuntime,
    drive: Drive,
    /// Makes the controller of each process incarnation.
    factory: Rc<ControllerFactory>,
    /// The incarnation of the informer's process this controller runs in: the controller
    /// restarts with it (a fresh queue and fresh expectations), as it shares its process.
    incarnation: u32,
    bugs: Bugs,
}

/// The world's side of the runtime: its random stream, its timer and its workers' events.
struct Drive {
    config: ControllerConfig,
    rng: RngStream,
    timer: Wakeup,
    /// Whether each worker has a wake event in flight.
    wake_scheduled: Vec<bool>,
    /// Each busy worker's reconcile result, until it finishes.
    results: Vec<Option<Result<(), ReconcileError>>>,
    /// etcd's revision after the controller's last successful write.
    last_write: Revision,
    invariants: Vec<UserInvariant>,
}

impl ControllerSide {
    /// The scenario's controller running `code`.
    pub(crate) fn new(
        config: &ControllerConfig,
        seed: u64,
        factory: Rc<ControllerFactory>,
        invariants: Vec<UserInvariant>,
        bugs: Bugs,
    ) -> ControllerSide {
        let workers = config.workers as usize;
        let drive = Drive {
            config: config.clone(),
            rng: RngStream::new(seed, "controller"),
            timer: Wakeup::default(),
            wake_scheduled: vec![false; workers],
            results: vec![None; workers],
            last_write: 0,
            invariants,
        };
        ControllerSide {
            runtime: ControllerRuntime::new(workers, factory(0), bugs),
            drive,
            factory,
            incarnation: 0,
            bugs,
        }
    }

    /// The sample ReplicaSet-like controller.
    pub(crate) fn sample(config: &ControllerConfig, seed: u64, bugs: Bugs) -> ControllerSide {
        let replicas_max = config.replicas_max;
        let factory = Rc::new(move |incarnation| -> Box<dyn Controller> {
            Box::new(ReplicaSetController::new(replicas_max, incarnation, bugs))
        });
        ControllerSide::new(config, seed, factory, Vec::new(), bugs)
    }

    /// Restarts the controller if its informer's process restarted since it last looked.
    fn follow_restarts(&mut self, informer_incarnation: u32) {
        if informer_incarnation == self.incarnation {
            return;
        }
        self.incarnation = informer_incarnation;
        let workers = self.drive.results.len();
        let code = (self.factory)(informer_incarnation);
        self.runtime = ControllerRuntime::new(workers, code, self.bugs);
        self.drive.timer.reset();
        self.drive.wake_scheduled.fill(false);
        self.drive.results.fill(None);
    }

    fn wake_idle_workers(&mut self, core: &mut Core) {
        for worker in self.runtime.idle_workers() {
            self.drive.wake(core, worker);
        }
    }

    fn schedule_timer(&mut self, core: &mut Core) {
        let due = self.runtime.poll_timeout();
        if let Some(at) = due.and_then(|at| self.drive.timer.arm(at)) {
            core.kernel
                .schedule_at(at.max(core.now()), Ev::ControllerTimer);
        }
    }
}

impl Drive {
    fn wake(&mut self, core: &mut Core, worker: usize) {
        if !std::mem::replace(&mut self.wake_scheduled[worker], true) {
            let delay = SimDuration(self.rng.between(0, self.config.worker_wake_ms_max));
            core.kernel
                .schedule_in(delay, Ev::ControllerWorker { worker });
        }
    }

    /// The user invariants due `when`, over etcd's state now and `cache`.
    fn check_invariants(
        &self,
        core: &Core,
        cache: &crate::client::Indexer,
        when: When,
    ) -> Option<Violation> {
        let mut due = self
            .invariants
            .iter()
            .filter(|invariant| invariant.when == when);
        let first = due.next()?;
        let resource = core.checker.resource();
        let etcd = resource.state_at(resource.revision(), None).collect();
        let state = ClusterState::new(etcd, cache);
        std::iter::once(first).chain(due).find_map(|invariant| {
            let message = (invariant.check)(&state).err()?;
            Some(Violation::new(
                Invariant::UserInvariant,
                format!("{}: {message}", invariant.name),
            ))
        })
    }
}

/// The controller's writes, into the fake etcd through the checker.
struct EtcdWriter<'a> {
    etcd: &'a mut EtcdSide,
    core: &'a mut Core,
    drive: &'a mut Drive,
    worker: usize,
    /// What the checker found while writing: ends the run after the reconcile.
    violation: Option<Violation>,
}

impl Writer for EtcdWriter<'_> {
    fn write(&mut self, write: Write) -> Result<Object, WriteError> {
        if self.violation.is_some() {
            return Err(WriteError::Unavailable);
        }
        let (pending, labels, value) = pending_write(write);
        let actor = Actor::Controller(self.worker);
        let error_probability = self.drive.config.write_error_probability;
        if !self.core.healed && error_probability > 0.0 && self.drive.rng.chance(error_probability)
        {
            let key = pending
                .key
                .strip_prefix(RESOURCE_PREFIX)
                .unwrap_or(&pending.key);
            self.core.record(actor, &TraceEvent::WriteRefused { key });
            return Err(WriteError::Unavailable);
        }
        let response = match self
            .etcd
            .checked_txn(self.core, &writer::commit_txn(&pending))
        {
            Ok(response) => response,
            Err(violation) => {
                self.violation = Some(violation);
                return Err(WriteError::Unavailable);
            }
        };
        let outcome = writer::after_commit(&mut pending.clone(), &response);
        let event = TraceEvent::Commit {
            write: &pending,
            outcome: &outcome,
        };
        self.core.record(actor, &event);
        match outcome {
            CommitOutcome::Committed(revision) => {
                self.core.stats.commits += 1;
                self.drive.last_write = revision;
                let key = &pending.key[RESOURCE_PREFIX.len()..];
                let uid = match pending.intent {
                    Intent::Create { .. } => revision,
                    Intent::Update { .. } | Intent::Delete => 0,
                };
                Ok(Object {
                    labels: labels.into(),
                    value,
                    uid,
                    ..Object::bare(key, revision)
                })
            }
            CommitOutcome::Conflict | CommitOutcome::GaveUp => {
                self.core.stats.probes.controller_conflicts += 1;
                Err(WriteError::Conflict)
            }
            CommitOutcome::AlreadyExists => Err(WriteError::AlreadyExists),
            CommitOutcome::NotFound => Err(WriteError::NotFound),
        }
    }
}

/// A controller write as the transaction kube-apiserver's storage would run.
fn pending_write(
    write: Write,
) -> (
    PendingWrite,
    std::collections::BTreeMap<String, String>,
    u64,
) {
    let (key, expected_mod_revision, intent) = match write {
        Write::Create { key, labels, value } => (key, 0, Intent::Create { labels, value }),
        Write::Update(object) => {
            let intent = Intent::Update {
                labels: (*object.labels).clone(),
                value: object.value,
            };
            (object.key, object.resource_version, intent)
        }
        Write::Delete { key, precondition } => (key, precondition, Intent::Delete),
    };
    let (labels, value) = match &intent {
        Intent::Create { labels, value } | Intent::Update { labels, value } => {
            (labels.clone(), *value)
        }
        Intent::Delete => Default::default(),
    };
    let pending = PendingWrite {
        key: format!("{RESOURCE_PREFIX}{key}"),
        expected_mod_revision,
        intent,
        conflicts: 0,
    };
    (pending, labels, value)
}

impl World {
    /// A notification a handler took: the controller's handler enqueues keys.
    pub(super) fn feed_controller(
        &mut self,
        client: usize,
        handler: usize,
        delivered: Option<Delivered>,
    ) -> Result<(), Violation> {
        let (Some(side), Some(delivered)) = (self.controller.as_mut(), delivered) else {
            return Ok(());
        };
        if client != CONTROLLER_CLIENT
            || handler != CONTROLLER_HANDLER
            || delivered.outcome != HandlerOutcome::Handled
        {
            return Ok(());
        }
        side.follow_restarts(
            self.clients[client]
                .as_ref()
                .expect("a running client")
                .incarnation,
        );
        let core = &mut self.core;
        if side
            .runtime
            .handle_notification(core.now(), &delivered.notification)
            > 0
        {
            side.wake_idle_workers(core);
        }
        let found = core.checker.on_controller_step(&side.runtime);
        core.report(found)
    }

    /// A worker takes its next key, if any, and reconciles it; the reconcile then holds the
    /// worker for a random time.
    pub(super) fn controller_worker(&mut self, worker: usize) -> Result<(), Violation> {
        let side = self.controller.as_mut().expect("a world with a controller");
        let slot = self.clients[CONTROLLER_CLIENT]
            .as_mut()
            .expect("the controller's client runs");
        side.follow_restarts(slot.incarnation);
        side.drive.wake_scheduled[worker] = false;
        if side.runtime.workers()[worker].is_some() {
            return Ok(());
        }
        let core = &mut self.core;
        if !slot.process.informer.has_synced() {
            // Workers start only once the cache has synced (`cache.WaitForCacheSync`), and
            // wait again while a restarted informer lists.
            side.drive.wake_scheduled[worker] = true;
            core.kernel
                .schedule_in(SYNC_POLL, Ev::ControllerWorker { worker });
            return Ok(());
        }
        let Some(key) = side.runtime.take(worker) else {
            return Ok(());
        };
        core.report(core.checker.on_controller_step(&side.runtime))?;
        let lister = Lister::new(slot.process.informer.indexer(), core.now());
        let behind = lister.resource_version().unwrap_or(0) < side.drive.last_write;
        core.stats.probes.lister_behind_writes += u64::from(behind);
        let mut writer = EtcdWriter {
            etcd: &mut self.etcd,
            core,
            drive: &mut side.drive,
            worker,
            violation: None,
        };
        let result = side
            .runtime
            .reconcile(worker, &lister, &mut Client::new(&mut writer));
        let violation = writer.violation.take();
        let (mutations, handed_out) = (lister.take_mutations(), lister.handed_out());
        let indexer = slot.process.informer.indexer_mut();
        for object in mutations {
            indexer.update(object);
        }
        core.report(violation)?;
        let error = result.as_ref().err().map(|error| error.0.as_str());
        let event = TraceEvent::Reconcile { key: &key, error };
        core.record(Actor::Controller(worker), &event);
        side.drive.results[worker] = Some(result);
        core.report(core.checker.on_reconciled(&handed_out, indexer))?;
        let found =
            side.drive
                .check_invariants(core, slot.process.informer.indexer(), When::Always);
        core.report(found)?;
        let took = SimDuration(
            side.drive
                .rng
                .between(0, side.drive.config.reconcile_ms_max),
        );
        let incarnation = side.incarnation;
        core.kernel.schedule_in(
            took,
            Ev::ControllerDone {
                worker,
                incarnation,
            },
        );
        self.flush_etcd();
        Ok(())
    }

    /// A worker's reconcile ends: `Forget` or `AddRateLimited`, then `Done`.
    pub(super) fn controller_done(
        &mut self,
        worker: usize,
        incarnation: u32,
    ) -> Result<(), Violation> {
        let side = self.controller.as_mut().expect("a world with a controller");
        if incarnation != side.incarnation {
            return Ok(());
        }
        let core = &mut self.core;
        let result = side.drive.results[worker]
            .take()
            .expect("a reconciled worker");
        let key = side.runtime.workers()[worker]
            .clone()
            .expect("a busy worker");
        let finished = side.runtime.finish(core.now(), worker, &result);
        core.stats.probes.controller_requeues +=
            u64::from(matches!(finished, Finished::Requeued(_)));
        core.record(
            Actor::Controller(worker),
            &TraceEvent::Finish {
                key: &key,
                finished,
            },
        );
        side.schedule_timer(core);
        side.wake_idle_workers(core);
        let found = core.checker.on_controller_step(&side.runtime);
        core.report(found)
    }

    /// Rate-limited keys come due.
    pub(super) fn controller_timer(&mut self) -> Result<(), Violation> {
        let side = self.controller.as_mut().expect("a world with a controller");
        let core = &mut self.core;
        let now = core.now();
        side.drive.timer.fire(now);
        side.runtime.handle_timeout(now);
        side.schedule_timer(core);
        side.wake_idle_workers(core);
        let found = core.checker.on_controller_step(&side.runtime);
        core.report(found)
    }

    /// Whether the controller is idle (nothing queued, waiting or being reconciled).
    pub(super) fn controller_idle(&self) -> Result<(), Violation> {
        match &self.controller {
            Some(side) if !side.runtime.is_idle() => Err(Violation::new(
                Invariant::RunSettles,
                "the controller still has work".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// Once settled: the controller lost no work, its own invariants and the user's hold.
    pub(super) fn check_controller_settled(&mut self) -> Result<(), Violation> {
        let Some(side) = &self.controller else {
            return Ok(());
        };
        let core = &mut self.core;
        let found = core.checker.check_controller_settled(&side.runtime);
        core.report(found)?;
        let Some(slot) = self.clients[CONTROLLER_CLIENT].as_ref() else {
            return Ok(());
        };
        let cache = slot.process.informer.indexer();
        let found = side.drive.check_invariants(core, cache, When::Settled);
        core.report(found)
    }
}
