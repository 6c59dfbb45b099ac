//! The world: the parts of one scenario wired into one simulated cluster, driven by the kernel.
//!
//! A run has two phases, as TigerBeetle's VOPR does: for `duration_ms` the writers write and
//! faults strike, with every invariant checked at every step; then the world heals (stalled
//! watchers resume, broken connections come back, periodic timers stop) and must settle within
//! `settle_ms_max`, after which the convergence checks run.

mod etcd_watcher;
pub mod faults;
pub mod writer;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Violation;
use crate::check::etcd_watch::WatchStreamOracle;
use crate::etcd::reference::ReferenceEtcd;
use crate::etcd::{
    Etcd, EtcdError, KeyRange, Op, RangeRequest, Revision, TxnRequest, WatchId, WatchRequest,
    WatchResponse, WatchResponseKind,
};
use crate::scenario::Scenario;
use crate::sim::{Delivery, Kernel, KernelError, Link, RngStream, SimDuration, SimTime};
use crate::trace::{Trace, TraceHash};

use etcd_watcher::{EtcdWatcher, OpenWatch};
use writer::{CommitOutcome, PendingWrite, RESOURCE_PREFIX};

/// kube-apiserver's compaction bookkeeping key: outside every resource prefix.
const COMPACT_REV_KEY: &str = "compact_rev_key";

/// The most steps one run may take: a run that needs more is stuck.
const STEPS_MAX: u64 = 2_000_000;

/// Invariant: the fake etcd answers every request exactly as the naive reference does.
pub const ETCD_MATCHES_REFERENCE: &str = "etcd_matches_reference";
/// Invariant: after healing, the run settles within `settle_ms_max`.
pub const SETTLES: &str = "run_settles";
/// Invariant: after settling, every etcd watcher has seen every event of its range.
pub const WATCHERS_CAUGHT_UP: &str = "etcd_watchers_caught_up";

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
    },
    Heal,
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
    }
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commits={} conflicts={} compactions={} compacted_watches={} watch_events={} progress_notifications={}",
            self.commits,
            self.conflicts,
            self.compactions,
            self.compacted_watches,
            self.watch_events,
            self.progress_notifications
        )
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The first broken invariant, and the step it broke at.
    pub violation: Option<(u64, Violation)>,
    /// How many steps the run took.
    pub steps: u64,
    /// The trace hash.
    pub trace_hash: TraceHash,
    /// What the run exercised.
    pub stats: RunStats,
}

struct Streams {
    workload: RngStream,
    faults: RngStream,
    links: RngStream,
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
    healed: bool,
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
    /// A world for `scenario` and `seed`, recording into `trace`.
    pub fn new(scenario: Scenario, seed: u64, trace: Trace) -> World {
        let watchers = (0..scenario.etcd_watchers.count)
            .map(|_| EtcdWatcher::new())
            .collect();
        let writers = vec![None; scenario.workload.writers as usize];
        World {
            kernel: Kernel::new(STEPS_MAX),
            etcd: Etcd::with_bugs(scenario.etcd.bugs),
            reference: ReferenceEtcd::default(),
            streams: Streams {
                workload: RngStream::new(seed, "workload"),
                faults: RngStream::new(seed, "faults"),
                links: RngStream::new(seed, "links"),
            },
            trace,
            writers,
            next_value: 1,
            compactor: Compactor::default(),
            watchers,
            watch_owner: BTreeMap::new(),
            healed: false,
            stats: RunStats::default(),
            scenario,
        }
    }

    /// Runs to the end and returns the verdict.
    pub fn run(mut self) -> RunOutcome {
        self.schedule_start();
        let violation = self
            .run_loop()
            .err()
            .map(|violation| (self.trace.steps(), violation));
        RunOutcome {
            violation,
            steps: self.trace.steps(),
            trace_hash: self.trace.hash(),
            stats: self.stats,
        }
    }

    fn run_loop(&mut self) -> Result<(), Violation> {
        let settle_deadline =
            SimTime(self.scenario.duration_ms) + SimDuration(self.scenario.settle_ms_max);
        loop {
            let event = match self.kernel.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(KernelError::StepBudgetExhausted { steps_max, now }) => {
                    return Err(Violation::new(
                        SETTLES,
                        format!("{steps_max} steps exhausted at {now}"),
                    ));
                }
            };
            if self.kernel.now() > settle_deadline {
                return Err(Violation::new(
                    SETTLES,
                    format!("still busy at {}", self.kernel.now()),
                ));
            }
            self.handle(event)?;
        }
        self.check_caught_up()
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
        self.kernel
            .schedule_in(SimDuration::from_secs(1), Ev::FaultTick);
        self.kernel
            .schedule_at(SimTime(self.scenario.duration_ms), Ev::Heal);
    }

    fn random_write_interval(&mut self) -> SimDuration {
        let w = &self.scenario.workload;
        SimDuration(
            self.streams
                .workload
                .between(w.write_interval_ms_min, w.write_interval_ms_max),
        )
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
            } => self.deliver(watcher, delivery, response),
            Ev::Heal => self.heal(),
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
        let think = self
            .streams
            .workload
            .between(0, self.scenario.workload.think_ms_max);
        self.kernel
            .schedule_in(SimDuration(think), Ev::WriterCommit(writer));
        Ok(())
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
                let think = self
                    .streams
                    .workload
                    .between(0, self.scenario.workload.think_ms_max);
                self.kernel
                    .schedule_in(SimDuration(think), Ev::WriterCommit(writer));
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
        let outcome = if target > 0 {
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
            Violation::new(ETCD_MATCHES_REFERENCE, format!("range failed: {error}"))
        })
    }

    fn checked_txn(&mut self, request: &TxnRequest) -> Result<crate::etcd::TxnResponse, Violation> {
        let fake = self.etcd.txn(request);
        let reference = self.reference.txn(request);
        self.compare(&fake, &reference, "txn")?;
        fake.map_err(|error| Violation::new(ETCD_MATCHES_REFERENCE, format!("txn failed: {error}")))
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
            ETCD_MATCHES_REFERENCE,
            format!("{what}: fake {fake:?}, reference {reference:?}"),
        ))
    }

    fn fault_tick(&mut self) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        let config = self.scenario.etcd_watchers.clone();
        for watcher in 0..self.watchers.len() {
            let Some(id) = self.watchers[watcher].watch.as_ref().map(|watch| watch.id) else {
                continue;
            };
            let actor = format!("watcher-{watcher}");
            if !self.watchers[watcher].stalled
                && self.streams.faults.chance(config.stall_probability)
            {
                tolerate_gone(self.etcd.stall_watcher(id));
                self.watchers[watcher].stalled = true;
                self.record(&actor, &TraceEvent::Stall { watch_id: id });
                let stall = self.streams.faults.between(1, config.stall_ms_max.max(1));
                self.kernel
                    .schedule_in(SimDuration(stall), Ev::StallEnd(watcher));
            } else if self.streams.faults.chance(config.disconnect_probability) {
                self.disconnect(watcher);
            } else if self
                .streams
                .faults
                .chance(config.progress_request_probability)
            {
                tolerate_gone(self.etcd.request_progress(id));
                self.record(&actor, &TraceEvent::ProgressRequest { watch_id: id });
            }
        }
        self.flush_watch_responses();
        self.kernel
            .schedule_in(SimDuration::from_secs(1), Ev::FaultTick);
        Ok(())
    }

    fn disconnect(&mut self, watcher: usize) {
        let Some(mut watch) = self.watchers[watcher].watch.take() else {
            return;
        };
        watch.link.disconnect();
        self.watchers[watcher].stalled = false;
        // The server notices the broken stream and drops the watch; its answer is lost.
        tolerate_gone(self.etcd.cancel_watch(watch.id));
        self.watch_owner.remove(&watch.id);
        self.record(
            &format!("watcher-{watcher}"),
            &TraceEvent::Disconnect { watch_id: watch.id },
        );
        let backoff = self.streams.faults.between(100, 2_000);
        self.kernel
            .schedule_in(SimDuration(backoff), Ev::WatcherStart(watcher));
    }

    fn stall_end(&mut self, watcher: usize) -> Result<(), Violation> {
        let state = &mut self.watchers[watcher];
        let Some(id) = state.watch.as_ref().map(|watch| watch.id) else {
            return Ok(());
        };
        if !state.stalled {
            return Ok(());
        }
        state.stalled = false;
        tolerate_gone(self.etcd.resume_watcher(id));
        self.record(
            &format!("watcher-{watcher}"),
            &TraceEvent::Resume { watch_id: id },
        );
        self.flush_watch_responses();
        Ok(())
    }

    /// Opens a watch: resuming after the last revision seen, or (first time, or after a
    /// compaction cancel) from now, from an old revision, at the compact revision, or ahead.
    fn watcher_start(&mut self, watcher: usize) -> Result<(), Violation> {
        if self.watchers[watcher].watch.is_some() {
            return Ok(());
        }
        let revision = self.etcd.revision();
        let start_revision = match self.watchers[watcher].last_revision {
            0 => match self.streams.faults.below(4) {
                0 => 0,
                1 => self.streams.faults.between(1, revision),
                2 => self.etcd.compact_revision().max(1),
                _ => revision + self.streams.faults.between(1, 3),
            },
            last => last + 1,
        };
        let range = KeyRange::prefix(RESOURCE_PREFIX);
        let request = WatchRequest {
            range: range.clone(),
            start_revision,
            prev_kv: true,
            progress_notify: true,
        };
        let resolved = if start_revision == 0 {
            revision + 1
        } else {
            start_revision
        };
        let id = self.etcd.watch(request);
        self.watch_owner.insert(id, watcher);
        let link = Link::new(self.scenario.etcd_watchers.link);
        let oracle = WatchStreamOracle::new(range, resolved);
        self.watchers[watcher].watch = Some(OpenWatch { id, link, oracle });
        self.record(
            &format!("watcher-{watcher}"),
            &TraceEvent::Watch {
                watch_id: id,
                start_revision,
            },
        );
        self.flush_watch_responses();
        Ok(())
    }

    /// Puts every message etcd produced on its watcher's link.
    fn flush_watch_responses(&mut self) {
        while let Some(response) = self.etcd.poll_response() {
            let Some(&watcher) = self.watch_owner.get(&response.watch_id) else {
                continue;
            };
            let Some(watch) = self.watchers[watcher].watch.as_mut() else {
                continue;
            };
            if let Some(delivery) = watch.link.send(self.kernel.now(), &mut self.streams.links) {
                let compacted = matches!(response.kind, WatchResponseKind::Compacted { .. });
                if compacted {
                    self.watch_owner.remove(&response.watch_id);
                }
                self.kernel.schedule_at(
                    delivery.at,
                    Ev::Deliver {
                        watcher,
                        delivery,
                        response,
                    },
                );
            }
        }
    }

    fn deliver(
        &mut self,
        watcher: usize,
        delivery: Delivery,
        response: WatchResponse,
    ) -> Result<(), Violation> {
        let actor = format!("watcher-{watcher}");
        let compact_revision = self.etcd.compact_revision();
        let state = &mut self.watchers[watcher];
        let Some(watch) = state
            .watch
            .as_mut()
            .filter(|watch| watch.id == response.watch_id && watch.link.accepts(delivery))
        else {
            self.record(
                &actor,
                &TraceEvent::Lost {
                    watch_id: response.watch_id,
                },
            );
            return Ok(());
        };
        watch
            .oracle
            .observe(&response, &self.reference, compact_revision)?;
        match &response.kind {
            WatchResponseKind::Events(events) => {
                self.stats.watch_events += events.len() as u64;
                state.last_revision = events.last().expect("never empty").kv.mod_revision;
            }
            WatchResponseKind::Progress => {
                self.stats.progress_notifications += 1;
                state.last_revision = state.last_revision.max(response.header_revision);
            }
            WatchResponseKind::Compacted { .. } => {
                self.stats.compacted_watches += 1;
                state.watch = None;
                state.last_revision = 0;
                state.stalled = false;
                let backoff = self.streams.faults.between(100, 2_000);
                self.kernel
                    .schedule_in(SimDuration(backoff), Ev::WatcherStart(watcher));
            }
            WatchResponseKind::Created | WatchResponseKind::Canceled => {}
        }
        self.record(
            &actor,
            &TraceEvent::Received {
                response: &response,
            },
        );
        Ok(())
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
        Ok(())
    }

    fn check_caught_up(&self) -> Result<(), Violation> {
        let compact_revision = self.etcd.compact_revision();
        for (index, watcher) in self.watchers.iter().enumerate() {
            let Some(watch) = &watcher.watch else {
                return Err(Violation::new(
                    WATCHERS_CAUGHT_UP,
                    format!("watcher-{index} has no watch after healing"),
                ));
            };
            if let Some(missed) = watch
                .oracle
                .first_undelivered(&self.reference, compact_revision)
            {
                return Err(Violation::new(
                    WATCHERS_CAUGHT_UP,
                    format!("watcher-{index} never received the event at revision {missed}"),
                ));
            }
        }
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
