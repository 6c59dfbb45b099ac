//! The controller of a world: its runtime (work queue and workers), fed by handler 0 of client
//! 0's informer, reading that informer's cache and writing to etcd.
//!
//! Writes go straight to the fake etcd as kube-apiserver's storage layer would send them (a
//! transaction comparing the object's `mod_revision` with the precondition: `GuaranteedUpdate`
//! and `Delete` with a resourceVersion precondition, `Create` on an absent key); the simulated
//! apiserver models only lists and watches, so no admission, defaulting or apiserver latency
//! is in the path. The controller shares its informer's process: when that restarts, the
//! controller restarts too (a fresh queue, fresh expectations), and its workers wait for the
//! new informer's first sync (`cache.WaitForCacheSync`) before they take a key. The routes
//! are in `controller_routes.rs`.

use std::rc::Rc;

use crate::bug::Bugs;
use crate::check::{Invariant, Violation};
use crate::client::Indexer;
use crate::controller::{
    ClusterState, Controller, ControllerFactory, ControllerRuntime, ReconcileError,
    ReplicaSetController, UserInvariant, When,
};
use crate::etcd::Revision;
use crate::scenario::ControllerConfig;
use crate::sim::{RngStream, SimDuration, Wakeup};

use super::core::Core;
use super::event::Ev;

/// The controller part of a world: the runtime, and how the world drives it.
pub(crate) struct ControllerSide {
    pub(crate) runtime: ControllerRuntime,
    pub(super) drive: Drive,
    /// Makes the controller of each process incarnation.
    factory: Rc<ControllerFactory>,
    /// The incarnation of the informer's process this controller runs in: the controller
    /// restarts with it (a fresh queue and fresh expectations), as it shares its process.
    pub(super) incarnation: u32,
    bugs: Bugs,
}

/// The world's side of the runtime: its random stream, its timer and its workers' events.
pub(super) struct Drive {
    pub(super) config: ControllerConfig,
    pub(super) rng: RngStream,
    pub(super) timer: Wakeup,
    /// Whether each worker has a wake event in flight.
    pub(super) wake_scheduled: Vec<bool>,
    /// Each busy worker's reconcile result, until it finishes.
    pub(super) results: Vec<Option<Result<(), ReconcileError>>>,
    /// etcd's revision after the controller's last successful write.
    pub(super) last_write: Revision,
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
    pub(super) fn follow_restarts(&mut self, informer_incarnation: u32) {
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

    pub(super) fn wake_idle_workers(&mut self, core: &mut Core) {
        for worker in self.runtime.idle_workers() {
            self.drive.wake(core, worker);
        }
    }

    pub(super) fn schedule_timer(&mut self, core: &mut Core) {
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
    pub(super) fn check_invariants(
        &self,
        core: &Core,
        cache: &Indexer,
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
