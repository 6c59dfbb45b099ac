//! The world's routes for its controller: notifications in, workers taking and finishing keys,
//! the work queue's timer, and the controller's writes into etcd (see
//! [`ControllerSide`](super::controller_side::ControllerSide) and `controller_writer.rs`).

use crate::check::{Invariant, Violation};
use crate::client::{Delivered, HandlerOutcome};
use crate::controller::{Client, Finished, Lister, When};
use crate::sim::SimDuration;

use super::World;
use super::controller_writer::EtcdWriter;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};

/// The client whose informer feeds the controller, and its handler that does.
const CONTROLLER_CLIENT: usize = 0;
const CONTROLLER_HANDLER: usize = 0;

/// How often a worker waiting for its informer's first sync looks again (client-go
/// `WaitForCacheSync`'s poll period).
const SYNC_POLL: SimDuration = SimDuration::from_millis(100);

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
        let registration = slot.process.handlers[CONTROLLER_HANDLER];
        if !slot.process.informer.handler_has_synced(registration) {
            // Workers start only once the controller's handler has seen the whole initial list
            // (`cache.WaitForCacheSync` on the registration's `HasSynced`, k/k#113985: the
            // informer's own `HasSynced` comes before its handlers saw the initial adds, and an
            // initial add observed after a sync would lower that sync's expectations), and
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
            rng: &mut side.drive.rng,
            error_probability: side.drive.config.write_error_probability,
            last_write: Some(&mut side.drive.last_write),
            actor: Actor::Controller(worker),
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
