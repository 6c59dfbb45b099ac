//! The etcd side of a world: the fake etcd, the writers that change it, kube-apiserver's
//! compactor and etcd's progress-notify timer. Every request goes to the fake and, through the
//! checker, to the naive reference, and their answers must agree (double entry).

use crate::check::{Invariant, Violation};
use crate::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, KeyRange, Op, RangeRequest, RangeResponse,
    Revision, TxnRequest, TxnResponse,
};
use crate::sim::SimDuration;

use super::core::Core;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};
use super::writer::{self, CommitOutcome, PendingWrite};

/// kube-apiserver's compaction bookkeeping key: outside every resource prefix.
const COMPACT_REV_KEY: &str = "compact_rev_key";

/// kube-apiserver's compactor (`etcd3/compact.go compact`) as it stands between ticks.
#[derive(Default)]
struct Compactor {
    /// The version of `compact_rev_key` last seen (`compact`'s `t`).
    version: u64,
    /// The revision seen at the previous tick: what this tick compacts to.
    previous_revision: Revision,
}

/// The fake etcd, its writers and its periodic work.
pub(crate) struct EtcdSide {
    pub(crate) etcd: Etcd,
    /// Each writer's write in progress (between its read and its commit).
    writers: Vec<Option<PendingWrite>>,
    /// The payload of the next write: every write changes the stored bytes.
    next_value: u64,
    compactor: Compactor,
}

impl EtcdSide {
    pub(crate) fn new(etcd: Etcd, writers: usize) -> EtcdSide {
        EtcdSide {
            etcd,
            writers: vec![None; writers],
            next_value: 1,
            compactor: Compactor::default(),
        }
    }

    /// Creates the workload's initial objects, one transaction each, before anything starts
    /// (the history a cluster has when its apiservers and informers come up). Labels and
    /// payloads are drawn as writers draw them; nothing is drawn when there are none.
    pub(crate) fn populate(&mut self, core: &mut Core) -> Result<(), Violation> {
        let objects = core.scenario.workload.initial_objects;
        if objects == 0 {
            return Ok(());
        }
        for index in 0..objects {
            let workload = &core.scenario.workload;
            let create = PendingWrite {
                key: writer::object_key(workload, index),
                expected_mod_revision: 0,
                intent: writer::Intent::Create {
                    labels: writer::random_labels(workload, &mut core.streams.workload),
                    value: self.next_value,
                },
                conflicts: 0,
            };
            self.next_value += 1;
            self.checked_txn(core, &writer::commit_txn(&create))?;
            core.stats.commits += 1;
        }
        let revision = self.etcd.revision();
        core.record(Actor::Etcd, &TraceEvent::Populated { objects, revision });
        Ok(())
    }

    /// Schedules the writers' first wakes and the periodic ticks.
    pub(crate) fn schedule_start(&mut self, core: &mut Core) {
        for writer in 0..self.writers.len() {
            let delay = random_write_interval(core);
            core.kernel.schedule_in(delay, Ev::WriterWake { writer });
        }
        let etcd = &core.scenario.etcd;
        if etcd.compaction_interval_ms > 0 {
            let interval = SimDuration(etcd.compaction_interval_ms);
            core.kernel.schedule_in(interval, Ev::CompactTick);
        }
        if etcd.progress_notify_interval_ms > 0 {
            let interval = SimDuration(etcd.progress_notify_interval_ms);
            core.kernel.schedule_in(interval, Ev::ProgressTick);
        }
    }

    /// A range read on the fake, checked against the reference.
    pub(crate) fn checked_range(
        &self,
        core: &mut Core,
        request: &RangeRequest,
    ) -> Result<RangeResponse, Violation> {
        let fake = self.etcd.range(request);
        let found = core.checker.on_etcd_range(request, &fake);
        core.report(found)?;
        fake.map_err(|error| {
            Violation::new(
                Invariant::EtcdMatchesReference,
                format!("range failed: {error}"),
            )
        })
    }

    /// A transaction on the fake, checked against the reference.
    pub(crate) fn checked_txn(
        &mut self,
        core: &mut Core,
        request: &TxnRequest,
    ) -> Result<TxnResponse, Violation> {
        let before = self.etcd.revision();
        let fake = self.etcd.txn(request);
        if self.etcd.revision() != before {
            core.revisions.record(self.etcd.revision(), core.now());
        }
        let found = core.checker.on_etcd_txn(request, &fake);
        core.report(found)?;
        fake.map_err(|error| {
            Violation::new(
                Invariant::EtcdMatchesReference,
                format!("txn failed: {error}"),
            )
        })
    }

    /// A writer reads a random key and plans what to do with it.
    pub(crate) fn writer_wake(&mut self, core: &mut Core, writer: usize) -> Result<(), Violation> {
        if core.healed {
            return Ok(());
        }
        let workload = &core.scenario.workload;
        let index = core.streams.workload.below(u64::from(workload.keys)) as u32;
        let key = writer::object_key(workload, index);
        let read = RangeRequest {
            range: KeyRange::single(&key),
            revision: 0,
            limit: 0,
        };
        let current = self.checked_range(core, &read)?;
        let value = self.next_value;
        self.next_value += 1;
        let plan = writer::plan_write(
            &core.scenario.workload,
            current.kvs.first(),
            key,
            value,
            &mut core.streams.workload,
        );
        core.record(
            Actor::Writer(writer),
            &TraceEvent::Read {
                key: &plan.key,
                mod_revision: plan.expected_mod_revision,
            },
        );
        self.writers[writer] = Some(plan);
        schedule_commit(core, writer);
        Ok(())
    }

    /// A writer commits: on a conflict it retries from the fresh state, else it sleeps until
    /// its next write. The caller flushes etcd's watch responses afterwards.
    pub(crate) fn writer_commit(
        &mut self,
        core: &mut Core,
        writer: usize,
    ) -> Result<(), Violation> {
        let mut write = self.writers[writer]
            .take()
            .expect("a commit follows a read");
        let response = self.checked_txn(core, &writer::commit_txn(&write))?;
        let outcome = writer::after_commit(&mut write, &response);
        core.record(
            Actor::Writer(writer),
            &TraceEvent::Commit {
                write: &write,
                outcome: &outcome,
            },
        );
        match outcome {
            CommitOutcome::Conflict => {
                core.stats.conflicts += 1;
                self.writers[writer] = Some(write);
                schedule_commit(core, writer);
            }
            outcome => {
                core.stats.commits += u64::from(matches!(outcome, CommitOutcome::Committed(_)));
                let delay = random_write_interval(core);
                core.kernel.schedule_in(delay, Ev::WriterWake { writer });
            }
        }
        Ok(())
    }

    /// Mirrors kube-apiserver `etcd3/compact.go compact`: CAS-bump `compact_rev_key`, then
    /// compact at the revision seen on the previous tick (the bump moves the global revision
    /// while no resource changes); or, with etcd's own revision-mode auto-compaction, at the
    /// current revision minus the retention. The compactor never stops, healed or not, as
    /// upstream's does not: a reflector whose paginated relist at its last synced RV is served
    /// exactly by etcd while no watch cache reaches that RV any more (its 410 keeps lastSyncRV)
    /// loops until a compaction passes that RV, and then relists consistently. The caller
    /// flushes and schedules the next tick.
    pub(crate) fn compact_tick(&mut self, core: &mut Core) -> Result<(), Violation> {
        let target = match core.scenario.etcd.auto_compaction_retention {
            0 => self.bump_compact_rev_key(core)?,
            retention => self.etcd.revision().saturating_sub(retention),
        };
        let outcome = if target > 0 {
            core.stats.probes.compactions_under_watch += u64::from(self.etcd.watch_count() > 0);
            let fake = self.etcd.compact(target);
            let found = core.checker.on_etcd_compact(target, &fake, core.read_floor);
            core.report(found)?;
            core.stats.compactions += u64::from(fake.is_ok());
            Some(fake)
        } else {
            None
        };
        core.record(
            Actor::Compactor,
            &TraceEvent::Compact {
                revision: target,
                outcome,
            },
        );
        Ok(())
    }

    /// The next compaction tick.
    pub(crate) fn schedule_compact_tick(core: &mut Core) {
        let interval = SimDuration(core.scenario.etcd.compaction_interval_ms);
        core.kernel.schedule_in(interval, Ev::CompactTick);
    }

    /// The CAS bump of kube-apiserver's compactor; returns the revision to compact at (the
    /// previous tick's bump, 0 on the first tick).
    fn bump_compact_rev_key(&mut self, core: &mut Core) -> Result<Revision, Violation> {
        let bump = TxnRequest {
            compare: vec![Compare {
                key: COMPACT_REV_KEY.to_owned(),
                target: CompareTarget::Version,
                result: CompareResult::Equal,
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
        let response = self.checked_txn(core, &bump)?;
        assert!(
            response.succeeded,
            "the compactor is the only writer of its key"
        );
        self.compactor.version += 1;
        let target = self.compactor.previous_revision;
        self.compactor.previous_revision = response.header_revision;
        Ok(target)
    }

    /// etcd's progress-notify timer: every synced watch gets a progress notification. Returns
    /// whether it ran (not after healing); the caller then flushes and schedules the next one.
    pub(crate) fn progress_tick(&mut self, core: &mut Core) -> bool {
        if core.healed {
            return false;
        }
        self.etcd.progress_tick();
        let revision = self.etcd.revision();
        core.record(Actor::Etcd, &TraceEvent::ProgressTick { revision });
        true
    }

    /// The next progress-notify tick.
    pub(crate) fn schedule_progress_tick(core: &mut Core) {
        let interval = SimDuration(core.scenario.etcd.progress_notify_interval_ms);
        core.kernel.schedule_in(interval, Ev::ProgressTick);
    }
}

fn random_write_interval(core: &mut Core) -> SimDuration {
    let workload = &core.scenario.workload;
    SimDuration(core.streams.workload.between(
        workload.write_interval_ms_min,
        workload.write_interval_ms_max,
    ))
}

/// The writer commits after thinking for a while: the window for CAS conflicts.
fn schedule_commit(core: &mut Core, writer: usize) {
    let think = core
        .streams
        .workload
        .between(0, core.scenario.workload.think_ms_max);
    core.kernel
        .schedule_in(SimDuration(think), Ev::WriterCommit { writer });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::world::core::tests::core_for;

    #[test]
    fn a_writer_creates_its_key_in_the_fake_and_the_reference_alike() {
        let mut core = core_for(Scenario::default());
        let mut side = EtcdSide::new(Etcd::default(), 1);
        side.writer_wake(&mut core, 0).expect("a read agrees");
        side.writer_commit(&mut core, 0).expect("a write agrees");
        assert_eq!(core.stats.commits, 1);
        assert_eq!(side.etcd.revision(), 2);
        assert_eq!(core.checker.truth().revision(), 2);
        assert_eq!(core.trace.steps(), 2, "a read and a commit");
    }

    #[test]
    fn the_compactor_compacts_at_the_revision_its_previous_tick_bumped() {
        let mut core = core_for(Scenario::default());
        let mut side = EtcdSide::new(Etcd::default(), 0);
        assert_eq!(side.compact_tick(&mut core), Ok(()));
        assert_eq!(side.etcd.compact_revision(), 0, "the first tick only bumps");
        let bumped = side.etcd.revision();
        assert_eq!(side.compact_tick(&mut core), Ok(()));
        assert_eq!(side.etcd.compact_revision(), bumped);
        assert_eq!(core.stats.compactions, 1);
        core.healed = true;
        let bumped = side.etcd.revision();
        assert_eq!(side.compact_tick(&mut core), Ok(()));
        assert_eq!(
            side.etcd.compact_revision(),
            bumped,
            "a healed cluster's compactor keeps compacting"
        );
    }

    #[test]
    fn initial_objects_exist_before_anything_starts() {
        let mut scenario = Scenario::default();
        scenario.workload.keys = 20;
        scenario.workload.initial_objects = 15;
        let mut core = core_for(scenario);
        let mut side = EtcdSide::new(Etcd::default(), 0);
        side.populate(&mut core).expect("the reference agrees");
        assert_eq!(side.etcd.revision(), 16, "one create each");
        assert_eq!(core.checker.truth().revision(), 16);
        assert_eq!(core.trace.steps(), 1, "one step says how many");
        let none = core_for(Scenario::default());
        let mut untouched = EtcdSide::new(Etcd::default(), 0);
        let mut none = none;
        untouched.populate(&mut none).expect("nothing to do");
        assert_eq!((untouched.etcd.revision(), none.trace.steps()), (1, 0));
    }
}
