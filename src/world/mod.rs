//! The world: the parts of one scenario wired into one simulated cluster, driven by the kernel.
//!
//! A run has two phases, as TigerBeetle's VOPR does: for `duration_ms` the writers write and
//! faults strike, with every invariant checked at every step; then the world heals (stalled
//! watchers resume, broken connections come back, periodic timers stop) and must settle within
//! `settle_ms_max`, after which the convergence checks run.
//!
//! `World` is a router of owned parts: [`Core`](core::Core) (scenario, kernel, random streams,
//! trace, checker, counts) and the etcd side, the raw etcd watchers, the apiservers and the
//! clients, each in its own module. A handler calls the part the event is for, then routes what
//! it produced to the next part; the checker sees every step through one hook per concern.

mod apiservers;
mod client_process;
mod clients;
mod controller_routes;
mod controller_side;
mod controller_writer;
mod core;
mod etcd_side;
mod etcd_watchers;
mod event;
pub mod faults;
#[cfg_attr(not(feature = "kube"), path = "kube_stub.rs")]
mod kube_clients;
mod observe;
pub mod probes;
mod routes;
mod settle;
mod stats;
mod trace_event;
pub mod writer;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::bug::Bugs;
use crate::check::settle::{Workload, workload_blocks_settling};
use crate::check::{Checker, Violation};
use crate::etcd::{Etcd, WatchId};
use crate::scenario::Scenario;
use crate::sim::{KernelError, RngStream, SimDuration, SimTime};
use crate::trace::{Trace, TraceHash};

use apiservers::ApiserverSlot;
use clients::ClientSlot;
use controller_side::ControllerSide;
use core::Core;
use etcd_side::EtcdSide;
use etcd_watchers::EtcdWatchers;
use event::Ev;
use faults::FaultPlan;
use kube_clients::KubeSlot;

pub(crate) use observe::StepObserver;
pub use stats::RunStats;
pub(crate) use trace_event::{Actor, Answer, TraceEvent};

/// How often a healed run checks whether it has settled.
const SETTLE_CHECK_PERIOD: SimDuration = SimDuration::from_millis(500);

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The first broken invariant, and the step it broke at.
    pub violation: Option<(u64, Violation)>,
    /// The expected upstream hazards seen (invariants the scenario declares upstream does not
    /// guarantee): the first occurrence of each, with its step; the run went on after them.
    pub hazards: Vec<(u64, Violation)>,
    /// How many steps the run took.
    pub steps: u64,
    /// The trace hash.
    pub trace_hash: TraceHash,
    /// What the run exercised.
    pub stats: RunStats,
    /// The fault plan the run followed.
    pub plan: FaultPlan,
    /// Why the trace sink could not be written, if it could not.
    pub trace_error: Option<String>,
}

/// One simulated cluster.
pub struct World {
    core: Core,
    etcd: EtcdSide,
    watchers: EtcdWatchers,
    apiservers: Vec<ApiserverSlot>,
    clients: Vec<Option<ClientSlot>>,
    /// The kube-rs clients: client identities after the informer clients'.
    kube: Vec<KubeSlot>,
    controller: Option<ControllerSide>,
    plan: FaultPlan,
    /// The cachers' etcd watches stalled by a fault, until it ends or the world heals.
    stalled_upstreams: BTreeSet<WatchId>,
    settled: bool,
}

impl World {
    /// A world for `scenario` and `seed`, recording into `trace`; the seed also expands into
    /// the fault plan.
    pub fn new(scenario: Scenario, seed: u64, trace: Trace) -> World {
        let plan = FaultPlan::generate(&scenario, &mut RngStream::new(seed, "fault-plan"));
        World::with_plan(scenario, seed, plan, trace)
    }

    /// A world with an explicit fault plan (what shrinking reduces and replay files store).
    pub fn with_plan(scenario: Scenario, seed: u64, plan: FaultPlan, trace: Trace) -> World {
        let apiservers = (0..scenario.apiservers.count as usize)
            .map(|index| ApiserverSlot::new(&scenario, seed, index))
            .collect();
        let etcd = EtcdSide::new(
            Etcd::new(scenario.etcd.release, Bugs::new(scenario.bug)),
            scenario.workload.writers as usize,
        );
        let watchers = EtcdWatchers::new(scenario.etcd_watchers.count as usize);
        let mut checker = Checker::new(
            writer::RESOURCE_PREFIX,
            &scenario.expected_hazards,
            scenario.clients.fifo(),
        );
        let controller = (!scenario.controller.is_off()).then(|| {
            checker.watch_replicasets(Some(scenario.controller.replicas_max));
            ControllerSide::sample(&scenario.controller, seed, Bugs::new(scenario.bug))
        });
        let kube_controller = &scenario.kube_rs.controller;
        if !kube_controller.is_off() {
            checker.watch_replicasets(Some(kube_controller.replicas_max));
        }
        World {
            core: Core::new(scenario, seed, trace, checker),
            etcd,
            watchers,
            apiservers,
            clients: Vec::new(),
            kube: Vec::new(),
            controller,
            plan,
            stalled_upstreams: BTreeSet::new(),
            settled: false,
        }
    }

    /// The same world with no check at all (no ground truth either): what the simulation
    /// costs alone, for `informer-sim bench`. Its verdict says only whether it settled.
    pub fn without_checks(mut self) -> World {
        self.core.checker = Checker::disabled(writer::RESOURCE_PREFIX);
        self
    }

    /// This world, with `observer` seeing every step as it is recorded.
    pub(crate) fn observed_by(mut self, observer: Rc<RefCell<dyn StepObserver>>) -> World {
        self.core.observer = Some(observer);
        self
    }

    /// This world with the controllers `code` makes (one per process incarnation: the
    /// controller restarts with its informer's process) instead of the sample one, and `invariants`
    /// checked over etcd's and the controller's cache's state (the scenario must have a
    /// `[controller]`; the sample controller's own invariants are off).
    pub fn with_controller(
        mut self,
        code: std::rc::Rc<crate::controller::ControllerFactory>,
        invariants: Vec<crate::controller::UserInvariant>,
    ) -> World {
        let config = &self.core.scenario.controller;
        assert!(
            !config.is_off(),
            "a user controller needs a [controller] scenario"
        );
        let seed = self.core.streams.seed;
        let bugs = Bugs::new(self.core.scenario.bug);
        self.controller = Some(ControllerSide::new(config, seed, code, invariants, bugs));
        self.core.checker.watch_replicasets(None);
        self
    }

    /// The fault plan this run follows.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Runs to the end and returns the verdict.
    pub fn run(mut self) -> RunOutcome {
        let violation = self
            .etcd
            .populate(&mut self.core)
            .and_then(|()| {
                self.schedule_start();
                self.run_loop()
            })
            .err()
            .map(|violation| (self.core.trace.steps(), violation));
        let stats = self.collect_stats();
        let trace_error = self.core.trace.finish().map(|error| error.to_string());
        RunOutcome {
            trace_error,
            violation,
            steps: self.core.trace.steps(),
            trace_hash: self.core.trace.hash(),
            hazards: self.core.checker.into_hazards(),
            stats,
            plan: self.plan,
        }
    }

    fn run_loop(&mut self) -> Result<(), Violation> {
        let scenario = &self.core.scenario;
        let settle_deadline = SimTime(scenario.duration_ms) + SimDuration(scenario.settle_ms_max);
        while !self.settled {
            self.catch_up_kube();
            let event = match self.core.kernel.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return self.check_settled(),
                Err(KernelError::StepBudgetExhausted { steps_max, now }) => {
                    return Err(self.not_settled(format!("{steps_max} steps exhausted at {now}")));
                }
            };
            let now = self.core.now();
            if now > settle_deadline {
                let why = self
                    .check_settled()
                    .err()
                    .map_or_else(|| "busy".to_owned(), |violation| violation.to_string());
                return Err(self.not_settled(format!("not settled at {now}: {why}")));
            }
            self.handle(event)?;
        }
        Ok(())
    }

    /// The verdict of a run that did not settle: `workload_can_settle` when the scenario's own
    /// workload explains it (src/check/settle.rs), else `run_settles` with `message`.
    fn not_settled(&self, message: String) -> Violation {
        let clients = &self.core.scenario.clients;
        let workload = Workload {
            handler_ms_max: clients.handler_ms_max,
            process_ms_max: clients.process_ms_max,
            elapsed_ms: self.core.now().as_millis(),
            notifications: self.core.stats.notifications,
            pops: self.core.stats.pops,
        };
        let slots = self.clients.iter().enumerate().filter_map(|(index, slot)| {
            let process = &slot.as_ref()?.process;
            Some((index, &process.reflector, &process.informer))
        });
        workload_blocks_settling(&workload, slots)
            .unwrap_or_else(|| Violation::new(crate::check::Invariant::RunSettles, message))
    }

    fn schedule_start(&mut self) {
        let core = &mut self.core;
        self.etcd.schedule_start(core);
        self.watchers.schedule_start(core);
        core.kernel
            .schedule_at(SimTime(core.scenario.duration_ms), Ev::Heal);
        for (index, slot) in self.apiservers.iter_mut().enumerate() {
            slot.schedule_timer(core, index);
        }
        let clients = if self.apiservers.is_empty() {
            0
        } else {
            core.scenario.clients.count as usize
        };
        for client in 0..clients {
            let slot = ClientSlot::new(&mut self.core, client, 0, self.apiservers.len());
            slot.schedule_late_handlers(&mut self.core, client);
            self.clients.push(Some(slot));
            self.drain_client(client)
                .expect("a starting client breaks no invariant");
        }
        let kube_clients = if self.apiservers.is_empty() {
            0
        } else {
            self.core.scenario.kube_rs.clients as usize
        };
        for kube in 0..kube_clients {
            let client = clients + kube;
            let apiservers = self.apiservers.len();
            self.kube
                .push(KubeSlot::start(&mut self.core, client, 0, apiservers));
        }
        for timed in self.plan.faults.clone() {
            self.core
                .kernel
                .schedule_at(SimTime(timed.at_ms), Ev::Fault(timed));
        }
    }

    fn handle(&mut self, event: Ev) -> Result<(), Violation> {
        let core = &mut self.core;
        match event {
            Ev::WriterWake { writer } => self.etcd.writer_wake(core, writer),
            Ev::WriterCommit { writer } => {
                self.etcd.writer_commit(core, writer)?;
                self.flush_etcd();
                Ok(())
            }
            Ev::CompactTick => {
                self.etcd.compact_tick(core)?;
                self.flush_etcd();
                EtcdSide::schedule_compact_tick(&mut self.core);
                Ok(())
            }
            Ev::ProgressTick => {
                if self.etcd.progress_tick(core) {
                    self.flush_etcd();
                    EtcdSide::schedule_progress_tick(&mut self.core);
                }
                Ok(())
            }
            Ev::WatcherStart { watcher } => {
                if self
                    .watchers
                    .watcher_start(core, &mut self.etcd.etcd, watcher)
                {
                    self.flush_etcd();
                }
                Ok(())
            }
            Ev::StallEnd { watcher } => {
                self.end_watcher_stall(watcher);
                Ok(())
            }
            Ev::Deliver {
                watcher,
                delivery,
                response,
                compact_revision,
            } => self
                .watchers
                .deliver(core, watcher, delivery, response, compact_revision),
            Ev::Heal => {
                self.heal();
                Ok(())
            }
            Ev::SettleCheck => self.settle_check(),
            Ev::ApiserverTimer { apiserver } => {
                self.apiserver_timer(apiserver);
                Ok(())
            }
            Ev::EtcdToApiserver {
                apiserver,
                delivery,
                response,
            } => {
                self.etcd_to_apiserver(apiserver, delivery, response);
                Ok(())
            }
            Ev::ToServer {
                client,
                generation,
                delivery,
                message,
            } => {
                self.deliver_to_server(client, generation, delivery, message);
                Ok(())
            }
            Ev::ToClient {
                client,
                generation,
                delivery,
                message,
            } => self.deliver_to_client(client, generation, delivery, message),
            Ev::ClientTimer {
                client,
                incarnation,
            } => self.client_timer(client, incarnation),
            Ev::HealthCheck { client, generation } => self.health_check(client, generation),
            Ev::InformerPop {
                client,
                incarnation,
            } => match live_slot(&mut self.clients, client, incarnation) {
                Some(slot) => slot.pop(core, client),
                None => Ok(()),
            },
            Ev::InformerWait {
                client,
                incarnation,
            } => {
                if let Some(slot) = live_slot(&mut self.clients, client, incarnation) {
                    slot.process.informer.wait_for_items();
                }
                Ok(())
            }
            Ev::HandlerRun {
                client,
                incarnation,
                handler,
            } => match live_slot(&mut self.clients, client, incarnation) {
                Some(slot) => {
                    let delivered = slot.run_handler(core, client, handler)?;
                    self.feed_controller(client, handler, delivered)
                }
                None => Ok(()),
            },
            Ev::Fault(fault) => self.inject(fault),
            Ev::SlowConsumerEnd { client } => {
                self.slow_consumer_end(client);
                Ok(())
            }
            Ev::CacheStallEnd { watch } => {
                self.cache_stall_end(watch);
                Ok(())
            }
            Ev::AddLateHandler {
                client,
                incarnation,
            } => {
                if let Some(slot) = live_slot(&mut self.clients, client, incarnation) {
                    slot.add_late_handler(core, client);
                }
                Ok(())
            }
            Ev::ControllerWorker { worker } => self.controller_worker(worker),
            Ev::ControllerDone {
                worker,
                incarnation,
            } => self.controller_done(worker, incarnation),
            Ev::ControllerTimer => self.controller_timer(),
            Ev::KubeWake {
                client,
                incarnation,
            } => {
                let kube = client - self.clients.len();
                match self.kube.get_mut(kube) {
                    Some(slot) if slot.incarnation() == incarnation => {
                        slot.wake(core, &mut self.etcd, client)?;
                        self.flush_etcd();
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

impl World {
    /// Lets every kube-rs client's runtime run up to the next kernel event's time, once every
    /// event at the current time is handled (its output at `t` is then handled at `t`).
    fn catch_up_kube(&mut self) {
        if self.kube.is_empty() {
            return;
        }
        let Some(next) = self.core.kernel.next_time() else {
            return;
        };
        if next <= self.core.now() {
            return;
        }
        let informers = self.clients.len();
        for (kube, slot) in self.kube.iter_mut().enumerate() {
            slot.catch_up(&mut self.core, informers + kube, next);
        }
    }
}

/// The client's slot, if `incarnation` is still the running one (events of a restarted
/// process's previous incarnation find nothing).
fn live_slot(
    clients: &mut [Option<ClientSlot>],
    client: usize,
    incarnation: u32,
) -> Option<&mut ClientSlot> {
    clients[client]
        .as_mut()
        .filter(|slot| slot.incarnation == incarnation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(scenario: &str) -> RunOutcome {
        let scenario = Scenario::load(scenario).expect("library scenario");
        World::with_plan(scenario, 3, FaultPlan::default(), Trace::default()).run()
    }

    #[test]
    fn a_run_without_faults_settles_with_every_check_held() {
        let outcome = quiet("informer-real-fifo");
        assert_eq!(outcome.violation, None);
        assert!(outcome.stats.commits > 0 && outcome.stats.pops > 0);
        assert_eq!(outcome.stats.faults, 0);
        assert_eq!(
            outcome.stats.relists, 0,
            "nothing made the reflector relist"
        );
    }

    #[test]
    fn a_world_without_apiservers_has_no_clients_but_its_etcd_faults_strike() {
        let scenario = Scenario::load("etcd-watch").expect("library scenario");
        let outcome = World::new(scenario, 3, Trace::default()).run();
        assert_eq!(outcome.violation, None);
        assert!(outcome.stats.faults > 0);
        assert_eq!(outcome.stats.pops, 0);
    }
}
