//! The kube-rs clients of a world (the `kube` feature): each client identity after the
//! informer clients runs kube-rs's own watcher and reflector store
//! ([`KubeProcess`]) over the same [`Wire`] as an informer, so its requests cross the same
//! links to the same apiservers and meet the same faults.
//!
//! The world steps each process's tokio runtime before every kernel event
//! ([`KubeSlot::catch_up`]): kube-rs runs until it has output or until the event's time, and
//! output at a time `t` is handled by a [`Ev::KubeWake`] at `t` ([`KubeSlot::wake`]), which
//! sends its requests, commits its writes and traces and checks its store's steps.
//!
//! With `[kube_rs.controller]`, kube-rs client 0 runs kube-rs's `Controller` with the sample
//! ReplicaSet-like reconciler over its watcher and store; the face reads its writes, and the
//! world commits each into etcd as the modelled controller's (`controller_writer.rs`): straight
//! to storage with its resourceVersion precondition, refused (500) with the scenario's
//! `write_error_probability` before the heal, and answered at once.

use crate::api::{ClientMessage, ResourceVersionParam, ServerMessage, WatchEvent};
use crate::check::{Invariant, Violation};
use crate::controller::Writer as _;
use crate::kube_rs::{ControllerSetup, KubeConfig, KubeProcess, KubeStep, StoreEvent};
use crate::object::{Object, ResourceVersion};
use crate::scenario::KubeRsInitialList;
use crate::sim::{RngStream, SimTime};

use super::clients::Wire;
use super::controller_writer::EtcdWriter;
use super::core::Core;
use super::etcd_side::EtcdSide;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};

/// The kube-rs client that runs the controller, if the scenario has one.
const CONTROLLER_CLIENT: usize = 0;

/// Everything the world keeps for one kube-rs client identity.
pub(crate) struct KubeSlot {
    process: KubeProcess,
    incarnation: u32,
    wire: Wire,
    /// A `KubeWake` is scheduled and not yet handled.
    wake_scheduled: bool,
    /// The last watcher step was an error.
    failed: bool,
    /// ... and no request followed it yet (it is backing off).
    backing_off: bool,
    /// A (re)list is between `Init` and `InitDone`.
    listing: bool,
    /// Relists after the first list of this process.
    lists: u64,
    /// The RV the current relist's store will hold: the last list page's, or the
    /// initial-events-end bookmark's.
    list_resource_version: Option<ResourceVersion>,
    /// A watch was answered 410 and the client has not listed since.
    expired: bool,
    /// The client re-watched after a 410 without a relist, as a declared hazard: it may never
    /// follow etcd again (kube-rs#1042), and its store is not held to converge.
    stuck: bool,
    /// Draws which of the controller's writes the apiserver refuses.
    writes: RngStream,
}

impl KubeSlot {
    /// The process incarnation this slot runs.
    pub(crate) fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The client's side of the wire.
    pub(crate) fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    /// Incarnation `incarnation` of kube-rs client `client`.
    pub(crate) fn start(
        core: &mut Core,
        client: usize,
        incarnation: u32,
        apiservers: usize,
    ) -> KubeSlot {
        let now = core.now();
        let seed = core.streams.seed;
        let rng = RngStream::new(seed, &format!("kube-backoff-{client}-{incarnation}"));
        let scenario = &core.scenario.kube_rs;
        let config = KubeConfig {
            page_size: scenario.page_size,
            streaming_lists: scenario.initial_list == KubeRsInitialList::Streaming,
        };
        let controller = &scenario.controller;
        let runs_controller = !controller.is_off()
            && client - core.scenario.clients.count as usize == CONTROLLER_CLIENT;
        let process = if runs_controller {
            let setup = ControllerSetup {
                workers: controller.workers,
                replicas_max: controller.replicas_max,
                reconcile_ms_max: controller.reconcile_ms_max,
                worker_wake_ms_max: controller.worker_wake_ms_max,
                reconcile_after_relist: !scenario.no_reconcile_after_relist,
            };
            let workers = RngStream::new(seed, &format!("kube-workers-{client}-{incarnation}"));
            KubeProcess::controller(config, setup, now, rng, workers)
        } else {
            KubeProcess::new(config, now, rng)
        };
        let writes = RngStream::new(seed, &format!("kube-writes-{client}-{incarnation}"));
        core.checker
            .on_client_started(client, 0, crate::api::Selectors::default());
        KubeSlot {
            process,
            writes,
            incarnation,
            wire: Wire::new(core, incarnation, apiservers),
            wake_scheduled: false,
            failed: false,
            backing_off: false,
            listing: false,
            lists: 0,
            list_resource_version: None,
            expired: false,
            stuck: false,
        }
    }

    /// Lets kube-rs run until its next output or `limit`; output at `t` is handled at `t`.
    pub(crate) fn catch_up(&mut self, core: &mut Core, client: usize, limit: SimTime) {
        if self.wake_scheduled {
            return;
        }
        if let Some(at) = self.process.run_until(limit) {
            self.wake_scheduled = true;
            let incarnation = self.incarnation;
            core.kernel.schedule_at(
                at.max(core.now()),
                Ev::KubeWake {
                    client,
                    incarnation,
                },
            );
        }
    }

    /// kube-rs's output: its store's steps and reconciles are traced and checked, its requests
    /// go on the wire, its writes into etcd.
    pub(crate) fn wake(
        &mut self,
        core: &mut Core,
        etcd: &mut EtcdSide,
        client: usize,
    ) -> Result<(), Violation> {
        self.wake_scheduled = false;
        for step in self.process.take_steps() {
            match step {
                KubeStep::Store { event, held } => self.store_step(core, client, &event, held)?,
                KubeStep::Reconciled { key, error } => {
                    let error = error.as_deref();
                    let event = TraceEvent::Reconcile { key: &key, error };
                    core.record(Actor::Client(client), &event);
                    core.stats.probes.controller_requeues += u64::from(error.is_some());
                }
            }
        }
        for message in self.process.take_requests() {
            self.check_relist_after_expired(core, &message)?;
            self.backing_off &= matches!(message, ClientMessage::StopWatch { .. });
            self.wire.send(core, client, message);
        }
        self.commit_writes(core, etcd, client)
    }

    /// The controller's writes, each committed into etcd and answered.
    fn commit_writes(
        &mut self,
        core: &mut Core,
        etcd: &mut EtcdSide,
        client: usize,
    ) -> Result<(), Violation> {
        let error_probability = core.scenario.kube_rs.controller.write_error_probability;
        for (id, write) in self.process.take_writes() {
            let mut writer = EtcdWriter {
                etcd: &mut *etcd,
                core: &mut *core,
                rng: &mut self.writes,
                error_probability,
                last_write: None,
                actor: Actor::Client(client),
                violation: None,
            };
            let result = writer.write(write);
            let violation = writer.violation.take();
            core.report(violation)?;
            self.process.answer_write(id, &result);
        }
        Ok(())
    }

    /// After a 410 to a watch, the next list or watch must start a new initial state.
    fn check_relist_after_expired(
        &mut self,
        core: &mut Core,
        message: &ClientMessage,
    ) -> Result<(), Violation> {
        let resumes = match message {
            ClientMessage::List { .. } => false,
            ClientMessage::Watch { options, .. } => {
                !options.send_initial_events
                    && matches!(options.resource_version, ResourceVersionParam::At(_))
            }
            ClientMessage::StopWatch { .. } => return Ok(()),
        };
        if !std::mem::replace(&mut self.expired, false) || !resumes {
            return Ok(());
        }
        let violation = Violation::new(
            Invariant::RelistAfterExpiredWatch,
            format!("kube-rs re-watches without a relist after a 410: {message}"),
        );
        core.report([violation])?;
        self.stuck = true;
        Ok(())
    }

    /// One watcher step, and what the store held of it then (see [`KubeStep::Store`]).
    fn store_step(
        &mut self,
        core: &mut Core,
        client: usize,
        event: &StoreEvent,
        held: Vec<Object>,
    ) -> Result<(), Violation> {
        core.record(Actor::Client(client), &TraceEvent::KubeStore { event });
        self.failed = matches!(event, StoreEvent::Error(_));
        self.backing_off = self.failed;
        match event {
            StoreEvent::Init => {
                core.stats.relists += u64::from(self.lists > 0);
                self.lists += 1;
                self.listing = true;
                Ok(())
            }
            StoreEvent::InitDone => {
                self.listing = false;
                let mut found = core.checker.on_cache_objects(client, &held, true);
                if let Some(revision) = self.list_resource_version.take() {
                    found.extend(core.checker.check_cache_at(client, &held, revision));
                }
                core.report(found)
            }
            StoreEvent::Apply(_) => {
                let found = core.checker.on_cache_objects(client, &held, false);
                core.report(found)
            }
            StoreEvent::InitApply(_) | StoreEvent::Delete(_) | StoreEvent::Error(_) => Ok(()),
        }
    }

    /// A server message reaches the client: the wire's checks, then kube-rs.
    pub(crate) fn answer(
        &mut self,
        core: &mut Core,
        client: usize,
        message: ServerMessage,
    ) -> Result<(), Violation> {
        self.wire.receive(core, client, &message)?;
        let resume_point = match &message {
            ServerMessage::List {
                result: Ok(page), ..
            } => Some(page.resource_version),
            ServerMessage::WatchEvent { event, .. } => event.resource_version(),
            _ => None,
        };
        if let Some(resume_point) = resume_point {
            core.checker.on_resume_point(client, resume_point);
        }
        match &message {
            ServerMessage::List {
                result: Ok(page), ..
            } => {
                self.list_resource_version = Some(page.resource_version);
            }
            ServerMessage::WatchEvent {
                event:
                    WatchEvent::Bookmark {
                        resource_version,
                        initial_events_end: true,
                    },
                ..
            } => self.list_resource_version = Some(*resource_version),
            ServerMessage::WatchEvent {
                event: WatchEvent::Error(status),
                ..
            } => self.expired |= status.code == 410,
            ServerMessage::WatchRejected { error, .. } => self.expired |= error.is_expired(),
            _ => {}
        }
        self.process.deliver(message);
        Ok(())
    }

    /// The connection broke: what kube-rs waits for fails with a transport error.
    pub(crate) fn connection_lost(&mut self) {
        self.process.connection_lost();
    }

    /// Whether the client has settled: a list done, not backing off after an error, and its
    /// store equal to etcd's state. A watch counts from its request: the face sends a watch's
    /// 200 with its first event or its close (the model has no message for an accepted watch),
    /// so a re-watch after the writes stopped waits for its headers. A client stuck by the
    /// declared kube-rs#1042 hazard is excused.
    pub(crate) fn check_settled(&self, core: &Core, client: usize) -> Result<(), Violation> {
        if self.stuck && self.failed {
            return Ok(());
        }
        if self.listing || self.backing_off || self.lists == 0 {
            return Err(Violation::new(
                Invariant::RunSettles,
                format!("client-{client}: the kube-rs watcher is not watching"),
            ));
        }
        if !self.process.controller_idle() {
            return Err(Violation::new(
                Invariant::RunSettles,
                format!("client-{client}: the kube-rs controller still has work"),
            ));
        }
        let unreadable = self.process.unreadable_requests();
        if unreadable > 0 {
            return Err(Violation::new(
                Invariant::RunSettles,
                format!("client-{client}: {unreadable} kube-rs requests the face could not read"),
            ));
        }
        core.checker
            .check_cache_converged(client, &self.process.store_objects())
    }
}
