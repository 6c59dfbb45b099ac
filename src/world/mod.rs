//! The world: the parts of one scenario wired into one simulated cluster, driven by the kernel.
//!
//! A run has two phases, as TigerBeetle's VOPR does: for `duration_ms` the writers write and
//! faults strike, with every invariant checked at every step; then the world heals (stalled
//! watchers resume, broken connections come back, periodic timers stop) and must settle within
//! `settle_ms_max`, after which the convergence checks run.

mod client;
mod cluster;
mod etcd_watcher;
pub mod faults;
mod hazards;
pub mod probes;
pub mod writer;

use crate::check::Invariant;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::api::{ClientMessage, ServerMessage};
use crate::apiserver::server::{Apiserver, ApiserverStats};
use crate::bug::Bugs;
use crate::check::Violation;
use crate::etcd::reference::ReferenceEtcd;
use crate::etcd::{
    Etcd, EtcdError, KeyRange, Op, RangeRequest, Revision, TxnRequest, WatchId, WatchResponse,
};
use crate::scenario::Scenario;
use crate::sim::{Delivery, Kernel, KernelError, Link, RngStream, SimDuration, SimTime};
use crate::trace::{Trace, TraceHash};

use client::ClientSlot;
use etcd_watcher::EtcdWatcher;
use faults::{FaultPlan, TimedFault};
use writer::{CommitOutcome, PendingWrite};

/// kube-apiserver's compaction bookkeeping key: outside every resource prefix.
const COMPACT_REV_KEY: &str = "compact_rev_key";

/// The most steps one run may take: a run that needs more is stuck.
const STEPS_MAX: u64 = 2_000_000;

/// How often a healed run checks whether it has settled.
const SETTLE_CHECK_PERIOD: SimDuration = SimDuration::from_millis(500);

/// Everything that can happen, in the kernel's queue.
#[derive(Clone, Debug)]
enum Ev {
    WriterWake(usize),
    WriterCommit(usize),
    CompactTick,
    ProgressTick,
    FaultTick,
    WatcherStart(usize),
    StallEnd(usize),
    Deliver {
        watcher: usize,
        delivery: Delivery,
        response: WatchResponse,
        /// etcd's compact revision when the message was made (what the oracle may excuse).
        compact_revision: Revision,
    },
    Heal,
    SettleCheck,
    ApiserverTimer(usize),
    EtcdToApiserver {
        apiserver: usize,
        delivery: Delivery,
        response: WatchResponse,
    },
    ToServer {
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ClientMessage,
    },
    ToClient {
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ServerMessage,
    },
    ClientTimer(usize, u32),
    InformerPop(usize, u32),
    /// The second step of a Pop that found the queue empty (B28 planted).
    InformerWait(usize, u32),
    HandlerRun(usize, u32, usize),
    Fault(TimedFault),
    SlowConsumerEnd(usize),
    CacheStallEnd(usize, WatchId),
    AddLateHandler(usize, u32),
}

/// One line of the trace.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum TraceEvent<'a> {
    Read {
        key: &'a str,
        mod_revision: Revision,
    },
    Commit {
        write: &'a PendingWrite,
        outcome: &'a CommitOutcome,
    },
    Compact {
        revision: Revision,
        outcome: String,
    },
    ProgressTick {
        revision: Revision,
    },
    Watch {
        watch_id: WatchId,
        start_revision: Revision,
    },
    Stall {
        watch_id: WatchId,
    },
    Resume {
        watch_id: WatchId,
    },
    Disconnect {
        watch_id: WatchId,
    },
    ProgressRequest {
        watch_id: WatchId,
    },
    Received {
        response: &'a WatchResponse,
    },
    Lost {
        watch_id: WatchId,
    },
    Heal,
    Settled,
    ApiserverTimer,
    ApiserverEtcd {
        response: &'a WatchResponse,
    },
    Request {
        client: usize,
        message: &'a ClientMessage,
    },
    Answer {
        client: usize,
        message: String,
    },
    Pop {
        key: Option<String>,
        deltas: Vec<String>,
    },
    Handler {
        handler: usize,
        notification: String,
    },
    ReflectorTimer,
    LateHandler {
        handler: usize,
        initial_adds: usize,
    },
    Fault {
        fault: &'a TimedFault,
    },
}

/// Counts of what a run exercised, for sweep summaries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// Writes committed.
    pub commits: u64,
    /// CAS conflicts.
    pub conflicts: u64,
    /// Compactions done.
    pub compactions: u64,
    /// Watches canceled because their revision was compacted.
    pub compacted_watches: u64,
    /// Watch events delivered.
    pub watch_events: u64,
    /// Progress notifications delivered.
    pub progress_notifications: u64,
    /// What the apiservers answered and did.
    pub apiservers: ApiserverStats,
    /// Relists (ListAndWatch runs after the first) of every reflector.
    pub relists: u64,
    /// FIFO items processed by informers.
    pub pops: u64,
    /// Tombstones (`DeletedFinalStateUnknown`) processed by informers.
    pub tombstones: u64,
    /// Handler notifications delivered.
    pub notifications: u64,
    /// Faults injected.
    pub faults: u64,
    /// The coverage probes' own counters.
    pub probes: probes::ProbeCounts,
}

impl RunStats {
    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &RunStats) {
        self.commits += other.commits;
        self.conflicts += other.conflicts;
        self.compactions += other.compactions;
        self.compacted_watches += other.compacted_watches;
        self.watch_events += other.watch_events;
        self.progress_notifications += other.progress_notifications;
        self.apiservers.add(&other.apiservers);
        self.relists += other.relists;
        self.pops += other.pops;
        self.tombstones += other.tombstones;
        self.notifications += other.notifications;
        self.faults += other.faults;
        self.probes.add(&other.probes);
    }
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commits={} conflicts={} compactions={} etcd_compacted_watches={} etcd_watch_events={} \
             etcd_progress={} faults={} relists={} pops={} tombstones={} notifications={} \
             expired_410={} too_large_504={} not_ready_429={} etcd_fallbacks={} \
             slow_watcher_terminations={} cacher_reinits={}",
            self.commits,
            self.conflicts,
            self.compactions,
            self.compacted_watches,
            self.watch_events,
            self.progress_notifications,
            self.faults,
            self.relists,
            self.pops,
            self.tombstones,
            self.notifications,
            self.apiservers.expired,
            self.apiservers.too_large,
            self.apiservers.not_ready,
            self.apiservers.etcd_fallbacks,
            self.apiservers.slow_terminations,
            self.apiservers.reinits
        )
    }
}

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
}

struct Streams {
    seed: u64,
    workload: RngStream,
    faults: RngStream,
    links: RngStream,
    balancer: RngStream,
    clients: RngStream,
}

/// One simulated cluster.
pub struct World {
    scenario: Scenario,
    kernel: Kernel<Ev>,
    etcd: Etcd,
    reference: ReferenceEtcd,
    streams: Streams,
    trace: Trace,
    writers: Vec<Option<PendingWrite>>,
    next_value: u64,
    compactor: Compactor,
    watchers: Vec<EtcdWatcher>,
    watch_owner: BTreeMap<WatchId, usize>,
    apiservers: Vec<Apiserver>,
    apiserver_links: Vec<Link>,
    apiserver_down_until: Vec<Option<SimTime>>,
    apiserver_timer_at: Vec<Option<SimTime>>,
    clients: Vec<Option<ClientSlot>>,
    plan: FaultPlan,
    stalled_upstreams: BTreeSet<WatchId>,
    healed: bool,
    settled: bool,
    hazards: Vec<(u64, Violation)>,
    stats: RunStats,
}

#[derive(Default)]
struct Compactor {
    /// The version of `compact_rev_key` last seen (kube-apiserver `compact`'s `t`).
    version: u64,
    /// The revision seen at the previous tick: what this tick compacts to.
    previous_revision: Revision,
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
        let watchers = (0..scenario.etcd_watchers.count)
            .map(|_| EtcdWatcher::new())
            .collect();
        let writers = vec![None; scenario.workload.writers as usize];
        let apiserver_count = scenario.apiservers.count as usize;
        let apiservers = (0..apiserver_count)
            .map(|index| {
                let rng = RngStream::new(seed, &format!("apiserver-{index}"));
                let config = scenario.apiservers.server.clone();
                let bugs = Bugs::new(scenario.bug);
                Apiserver::new(config, writer::RESOURCE_PREFIX, SimTime::ZERO, rng, bugs)
            })
            .collect();
        let apiserver_links = (0..apiserver_count)
            .map(|index| Link::new(cluster::etcd_link_delay(&scenario, index)))
            .collect();
        World {
            kernel: Kernel::new(STEPS_MAX),
            etcd: Etcd::new(Bugs::new(scenario.bug)),
            reference: ReferenceEtcd::default(),
            streams: Streams {
                seed,
                workload: RngStream::new(seed, "workload"),
                faults: RngStream::new(seed, "faults"),
                links: RngStream::new(seed, "links"),
                balancer: RngStream::new(seed, "balancer"),
                clients: RngStream::new(seed, "clients"),
            },
            trace,
            writers,
            next_value: 1,
            compactor: Compactor::default(),
            watchers,
            watch_owner: BTreeMap::new(),
            apiservers,
            apiserver_links,
            apiserver_down_until: vec![None; apiserver_count],
            apiserver_timer_at: vec![None; apiserver_count],
            clients: Vec::new(),
            plan,
            stalled_upstreams: BTreeSet::new(),
            healed: false,
            settled: false,
            hazards: Vec::new(),
            stats: RunStats::default(),
            scenario,
        }
    }

    /// The fault plan this run follows.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Runs to the end and returns the verdict.
    pub fn run(mut self) -> RunOutcome {
        self.schedule_start();
        let violation = self
            .run_loop()
            .err()
            .map(|violation| (self.trace.steps(), violation));
        self.collect_stats();
        RunOutcome {
            violation,
            hazards: self.hazards,
            steps: self.trace.steps(),
            trace_hash: self.trace.hash(),
            stats: self.stats,
            plan: self.plan,
        }
    }

    fn run_loop(&mut self) -> Result<(), Violation> {
        let settle_deadline =
            SimTime(self.scenario.duration_ms) + SimDuration(self.scenario.settle_ms_max);
        while !self.settled {
            let event = match self.kernel.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return self.check_settled().map(|_| ()),
                Err(KernelError::StepBudgetExhausted { steps_max, now }) => {
                    return Err(Violation::new(
                        Invariant::RunSettles,
                        format!("{steps_max} steps exhausted at {now}"),
                    ));
                }
            };
            if self.kernel.now() > settle_deadline {
                let why = self
                    .check_settled()
                    .err()
                    .map_or_else(|| "busy".to_owned(), |violation| violation.to_string());
                return Err(Violation::new(
                    Invariant::RunSettles,
                    format!("not settled at {}: {why}", self.kernel.now()),
                ));
            }
            self.handle(event)?;
        }
        Ok(())
    }

    fn schedule_start(&mut self) {
        for writer in 0..self.writers.len() {
            let delay = self.random_write_interval();
            self.kernel.schedule_in(delay, Ev::WriterWake(writer));
        }
        if self.scenario.etcd.compaction_interval_ms > 0 {
            self.kernel.schedule_in(
                SimDuration(self.scenario.etcd.compaction_interval_ms),
                Ev::CompactTick,
            );
        }
        if self.scenario.etcd.progress_notify_interval_ms > 0 {
            self.kernel.schedule_in(
                SimDuration(self.scenario.etcd.progress_notify_interval_ms),
                Ev::ProgressTick,
            );
        }
        for watcher in 0..self.watchers.len() {
            let delay = self.streams.faults.below(self.scenario.duration_ms / 2 + 1);
            self.kernel
                .schedule_in(SimDuration(delay), Ev::WatcherStart(watcher));
        }
        if !self.watchers.is_empty() {
            self.kernel
                .schedule_in(SimDuration::from_secs(1), Ev::FaultTick);
        }
        self.kernel
            .schedule_at(SimTime(self.scenario.duration_ms), Ev::Heal);
        self.schedule_cluster_start();
    }

    fn random_write_interval(&mut self) -> SimDuration {
        let w = &self.scenario.workload;
        SimDuration(
            self.streams
                .workload
                .between(w.write_interval_ms_min, w.write_interval_ms_max),
        )
    }

    /// Reports a broken invariant: an error, unless the scenario declares it an expected
    /// upstream hazard, which is recorded (its first occurrence) and the run goes on.
    fn report(&mut self, violation: Violation) -> Result<(), Violation> {
        if !self.expects(violation.invariant) {
            return Err(violation);
        }
        if !self
            .hazards
            .iter()
            .any(|(_, seen)| seen.invariant == violation.invariant)
        {
            self.hazards.push((self.trace.steps(), violation));
        }
        Ok(())
    }

    /// Whether the scenario declares `invariant` an expected upstream hazard. Assumption
    /// checks (`check::hazards`) run only where it does.
    fn expects(&self, invariant: Invariant) -> bool {
        self.scenario.expected_hazards.contains(&invariant)
    }

    fn handle(&mut self, event: Ev) -> Result<(), Violation> {
        match event {
            Ev::WriterWake(writer) => self.writer_wake(writer),
            Ev::WriterCommit(writer) => self.writer_commit(writer),
            Ev::CompactTick => self.compact_tick(),
            Ev::ProgressTick => self.progress_tick(),
            Ev::FaultTick => self.fault_tick(),
            Ev::WatcherStart(watcher) => self.watcher_start(watcher),
            Ev::StallEnd(watcher) => self.stall_end(watcher),
            Ev::Deliver {
                watcher,
                delivery,
                response,
                compact_revision,
            } => self.deliver(watcher, delivery, response, compact_revision),
            Ev::Heal => self.heal(),
            Ev::SettleCheck => self.settle_check(),
            Ev::ApiserverTimer(apiserver) => self.apiserver_timer(apiserver),
            Ev::EtcdToApiserver {
                apiserver,
                delivery,
                response,
            } => self.etcd_to_apiserver(apiserver, delivery, response),
            Ev::ToServer {
                client,
                generation,
                delivery,
                message,
            } => self.deliver_to_server(client, generation, delivery, message),
            Ev::ToClient {
                client,
                generation,
                delivery,
                message,
            } => self.deliver_to_client(client, generation, delivery, message),
            Ev::ClientTimer(client, incarnation) => self.client_timer(client, incarnation),
            Ev::InformerPop(client, incarnation) => self.informer_pop(client, incarnation),
            Ev::InformerWait(client, incarnation) => {
                self.informer_wait(client, incarnation);
                Ok(())
            }
            Ev::HandlerRun(client, incarnation, handler) => {
                self.handler_run(client, incarnation, handler)
            }
            Ev::Fault(fault) => self.inject(fault),
            Ev::SlowConsumerEnd(client) => self.slow_consumer_end(client),
            Ev::CacheStallEnd(apiserver, watch) => self.cache_stall_end(apiserver, watch),
            Ev::AddLateHandler(client, incarnation) => self.add_late_handler(client, incarnation),
        }
    }

    fn record(&mut self, actor: &str, event: &TraceEvent<'_>) {
        self.trace.record(self.kernel.now(), actor, event);
    }

    fn writer_wake(&mut self, writer: usize) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        let index = self
            .streams
            .workload
            .below(u64::from(self.scenario.workload.keys)) as u32;
        let key = writer::object_key(&self.scenario.workload, index);
        let read = RangeRequest {
            range: KeyRange::single(&key),
            revision: 0,
            limit: 0,
        };
        let current = self.checked_range(&read)?;
        let value = self.next_value;
        self.next_value += 1;
        let plan = writer::plan_write(
            &self.scenario.workload,
            current.kvs.first(),
            key,
            value,
            &mut self.streams.workload,
        );
        let actor = format!("writer-{writer}");
        self.record(
            &actor,
            &TraceEvent::Read {
                key: &plan.key,
                mod_revision: plan.expected_mod_revision,
            },
        );
        self.writers[writer] = Some(plan);
        self.schedule_commit(writer);
        Ok(())
    }

    /// The writer commits after thinking for a while: the window for CAS conflicts.
    fn schedule_commit(&mut self, writer: usize) {
        let think = self
            .streams
            .workload
            .between(0, self.scenario.workload.think_ms_max);
        self.kernel
            .schedule_in(SimDuration(think), Ev::WriterCommit(writer));
    }

    fn writer_commit(&mut self, writer: usize) -> Result<(), Violation> {
        let mut write = self.writers[writer]
            .take()
            .expect("a commit follows a read");
        let response = self.checked_txn(&writer::commit_txn(&write))?;
        let outcome = writer::after_commit(&mut write, &response);
        let actor = format!("writer-{writer}");
        self.record(
            &actor,
            &TraceEvent::Commit {
                write: &write,
                outcome: &outcome,
            },
        );
        match outcome {
            CommitOutcome::Conflict => {
                self.stats.conflicts += 1;
                self.writers[writer] = Some(write);
                self.schedule_commit(writer);
            }
            outcome => {
                self.stats.commits += u64::from(matches!(outcome, CommitOutcome::Committed(_)));
                let delay = self.random_write_interval();
                self.kernel.schedule_in(delay, Ev::WriterWake(writer));
            }
        }
        self.flush_watch_responses();
        Ok(())
    }

    /// Mirrors kube-apiserver `etcd3/compact.go compact`: CAS-bump `compact_rev_key`, then
    /// compact at the revision seen on the previous tick. The bump moves the global revision
    /// while no resource changes.
    fn compact_tick(&mut self) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        let target = match self.scenario.etcd.auto_compaction_retention {
            0 => self.bump_compact_rev_key()?,
            retention => self.etcd.revision().saturating_sub(retention),
        };
        let outcome = if target > 0 {
            self.stats.probes.compactions_under_watch += u64::from(self.etcd.watch_count() > 0);
            let fake = self.etcd.compact(target);
            let reference = self.reference.compact(target);
            self.compare(&fake, &reference, "compact")?;
            self.stats.compactions += u64::from(fake.is_ok());
            format!("{fake:?}")
        } else {
            "first tick".to_owned()
        };
        self.record(
            "compactor",
            &TraceEvent::Compact {
                revision: target,
                outcome,
            },
        );
        self.flush_watch_responses();
        let interval = SimDuration(self.scenario.etcd.compaction_interval_ms);
        self.kernel.schedule_in(interval, Ev::CompactTick);
        Ok(())
    }

    /// The CAS bump of kube-apiserver's compactor; returns the revision to compact at (the
    /// previous tick's bump, 0 on the first tick).
    fn bump_compact_rev_key(&mut self) -> Result<Revision, Violation> {
        let bump = TxnRequest {
            compare: vec![crate::etcd::Compare {
                key: COMPACT_REV_KEY.to_owned(),
                target: crate::etcd::CompareTarget::Version,
                result: crate::etcd::CompareResult::Equal,
                value: self.compactor.version,
            }],
            success: vec![Op::Put {
                key: COMPACT_REV_KEY.to_owned(),
                value: Vec::new(),
                prev_kv: false,
            }],
            failure: vec![Op::Range(RangeRequest {
                range: KeyRange::single(COMPACT_REV_KEY),
                revision: 0,
                limit: 0,
            })],
        };
        let response = self.checked_txn(&bump)?;
        assert!(
            response.succeeded,
            "the compactor is the only writer of its key"
        );
        self.compactor.version += 1;
        let target = self.compactor.previous_revision;
        self.compactor.previous_revision = response.header_revision;
        Ok(target)
    }

    fn progress_tick(&mut self) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        self.etcd.progress_tick();
        let revision = self.etcd.revision();
        self.record("etcd", &TraceEvent::ProgressTick { revision });
        self.flush_watch_responses();
        let interval = SimDuration(self.scenario.etcd.progress_notify_interval_ms);
        self.kernel.schedule_in(interval, Ev::ProgressTick);
        Ok(())
    }

    fn checked_range(
        &mut self,
        request: &RangeRequest,
    ) -> Result<crate::etcd::RangeResponse, Violation> {
        let fake = self.etcd.range(request);
        let reference = self.reference.range(request);
        self.compare(&fake, &reference, "range")?;
        fake.map_err(|error| {
            Violation::new(
                Invariant::EtcdMatchesReference,
                format!("range failed: {error}"),
            )
        })
    }

    fn checked_txn(&mut self, request: &TxnRequest) -> Result<crate::etcd::TxnResponse, Violation> {
        let fake = self.etcd.txn(request);
        let reference = self.reference.txn(request);
        self.compare(&fake, &reference, "txn")?;
        fake.map_err(|error| {
            Violation::new(
                Invariant::EtcdMatchesReference,
                format!("txn failed: {error}"),
            )
        })
    }

    fn compare<T: PartialEq + std::fmt::Debug>(
        &self,
        fake: &Result<T, EtcdError>,
        reference: &Result<T, EtcdError>,
        what: &str,
    ) -> Result<(), Violation> {
        if fake == reference {
            return Ok(());
        }
        Err(Violation::new(
            Invariant::EtcdMatchesReference,
            format!("{what}: fake {fake:?}, reference {reference:?}"),
        ))
    }

    /// Ends the fault phase: stalled watchers resume and every watcher is (re)connected.
    fn heal(&mut self) -> Result<(), Violation> {
        self.healed = true;
        self.record("world", &TraceEvent::Heal);
        for watcher in 0..self.watchers.len() {
            self.stall_end(watcher)?;
            if self.watchers[watcher].watch.is_none() {
                self.kernel
                    .schedule_in(SimDuration::ZERO, Ev::WatcherStart(watcher));
            }
        }
        self.heal_cluster();
        self.kernel
            .schedule_in(SETTLE_CHECK_PERIOD, Ev::SettleCheck);
        Ok(())
    }
}

/// The server may already have dropped a watch (a compaction cancel) while its last message is
/// still on the way to the client, so client actions on it can find it gone.
fn tolerate_gone(result: Result<(), EtcdError>) {
    assert!(
        matches!(result, Ok(()) | Err(EtcdError::NoSuchWatch)),
        "watch call failed: {result:?}"
    );
}
