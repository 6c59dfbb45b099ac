//! The end of a run: the heal, the checks that it settled, and what it exercised.

use crate::check::Violation;
use crate::sim::SimDuration;

use super::event::Ev;
use super::stats::RunStats;
use super::trace_event::{Actor, TraceEvent};
use super::{SETTLE_CHECK_PERIOD, World};

impl World {
    /// Ends the fault phase: stalled watchers resume, every raw watcher is (re)connected, and
    /// the cluster heals.
    pub(super) fn heal(&mut self) {
        self.core.healed = true;
        self.core.record(Actor::World, &TraceEvent::Heal);
        for watcher in 0..self.watchers.len() {
            self.end_watcher_stall(watcher);
            if self.watchers.is_closed(watcher) {
                self.core
                    .kernel
                    .schedule_in(SimDuration::ZERO, Ev::WatcherStart { watcher });
            }
        }
        self.heal_cluster();
        self.core
            .kernel
            .schedule_in(SETTLE_CHECK_PERIOD, Ev::SettleCheck);
    }

    pub(super) fn end_watcher_stall(&mut self, watcher: usize) {
        if self
            .watchers
            .stall_end(&mut self.core, &mut self.etcd.etcd, watcher)
        {
            self.flush_etcd();
        }
    }

    pub(super) fn settle_check(&mut self) -> Result<(), Violation> {
        if self.check_settled().is_err() {
            self.core
                .kernel
                .schedule_in(SETTLE_CHECK_PERIOD, Ev::SettleCheck);
            return Ok(());
        }
        self.settled = true;
        self.core.record(Actor::World, &TraceEvent::Settled);
        for slot in self.clients.iter().flatten() {
            let process = &slot.process;
            let found = self
                .core
                .checker
                .check_mirrors(&process.informer, &process.handlers)
                .err();
            self.core.report(found)?;
        }
        if self.controller.is_none() {
            let found = self.core.checker.check_owned_settled();
            self.core.report(found)?;
        }
        self.check_controller_settled()
    }

    /// Whether the run has settled: etcd watchers caught up, and every client watching with
    /// an idle informer whose indexer equals etcd's state.
    pub(super) fn check_settled(&self) -> Result<(), Violation> {
        let checker = &self.core.checker;
        checker.check_etcd_watchers_caught_up(self.etcd.etcd.compact_revision())?;
        self.controller_idle()?;
        let clients = self.clients.iter().enumerate().map(|(index, slot)| {
            let process = &slot.as_ref().expect("started").process;
            (index, &process.reflector, &process.informer)
        });
        checker.check_clients_settled(clients)?;
        let informers = self.clients.len();
        self.kube
            .iter()
            .enumerate()
            .try_for_each(|(kube, slot)| slot.check_settled(&self.core, informers + kube))
    }

    pub(super) fn collect_stats(&mut self) -> RunStats {
        let mut stats = std::mem::take(&mut self.core.stats);
        for slot in &self.apiservers {
            stats.apiservers.add(&slot.server.stats());
        }
        for slot in self.clients.iter().flatten() {
            let reflector = &slot.process.reflector;
            stats.add_reflector(reflector);
            if let Some(at_heal) = slot.relists_at_heal {
                stats.relists_after_heal += reflector.relist_count().saturating_sub(at_heal);
            }
        }
        stats
    }
}
