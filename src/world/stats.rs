//! Counts of what runs exercised, for sweep summaries and coverage probes.

use serde::Serialize;

use crate::apiserver::server::ApiserverStats;
use crate::client::reflector::Reflector;

use super::probes::ProbeCounts;
use crate::scenario::Probe;

/// Counts of what a run exercised, for sweep summaries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// Watches started again without a relist (after a clean close, a retriable error or an
    /// internal error within its budget).
    #[serde(default)]
    pub rewatches: u64,
    /// Requests the REST client sent again after their connection closed unanswered.
    #[serde(default)]
    pub rest_retries: u64,
    /// Relists after the faults healed (and the writes stopped) by clients whose watch stream
    /// was open and healthy then: none, since a healthy quiet watch stays open.
    #[serde(default)]
    pub relists_after_heal: u64,
    /// Silent connections HTTP/2's health check closed.
    #[serde(default)]
    pub health_check_closes: u64,
    /// FIFO items processed by informers.
    pub pops: u64,
    /// Tombstones (`DeletedFinalStateUnknown`) processed by informers.
    pub tombstones: u64,
    /// Handler notifications delivered.
    pub notifications: u64,
    /// Faults injected.
    pub faults: u64,
    /// The coverage probes' own counters.
    pub probes: ProbeCounts,
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
        self.rewatches += other.rewatches;
        self.rest_retries += other.rest_retries;
        self.health_check_closes += other.health_check_closes;
        self.relists_after_heal += other.relists_after_heal;
        self.pops += other.pops;
        self.tombstones += other.tombstones;
        self.notifications += other.notifications;
        self.faults += other.faults;
        self.probes.add(&other.probes);
    }
}

impl RunStats {
    /// Adds what a reflector counted: its relists, re-watches and REST retries.
    pub(crate) fn add_reflector(&mut self, reflector: &Reflector) {
        self.relists += reflector.relist_count();
        self.rewatches += reflector.rewatch_count();
        self.rest_retries += reflector.rest_retry_count();
    }

    /// The counts the `exercised:` line prints, by name, in its order.
    pub fn counts(&self) -> [(&'static str, u64); 26] {
        let apiservers = &self.apiservers;
        [
            ("commits", self.commits),
            ("conflicts", self.conflicts),
            ("compactions", self.compactions),
            ("etcd_compacted_watches", self.compacted_watches),
            ("etcd_watch_events", self.watch_events),
            ("etcd_progress", self.progress_notifications),
            ("faults", self.faults),
            ("relists", self.relists),
            ("rewatches", self.rewatches),
            ("rest_retries", self.rest_retries),
            ("health_check_closes", self.health_check_closes),
            ("relists_after_heal", self.relists_after_heal),
            ("pops", self.pops),
            ("tombstones", self.tombstones),
            ("notifications", self.notifications),
            ("expired_410", apiservers.expired),
            ("too_large_504", apiservers.too_large),
            ("not_ready_429", apiservers.not_ready),
            ("etcd_fallbacks", apiservers.etcd_fallbacks),
            ("slow_watcher_terminations", apiservers.slow_terminations),
            (
                "initial_events_cut_offs",
                apiservers.initial_events_cut_offs,
            ),
            ("intervals_invalidated", apiservers.intervals_invalidated),
            ("graceful_drains", apiservers.graceful_drains),
            ("cacher_reinits", apiservers.reinits),
            ("cacher_rewatches", apiservers.cache_rewatches),
            ("old_rv_resumes_410", self.probes.old_resumes_expired),
        ]
    }
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (name, count)) in self.counts().iter().enumerate() {
            let space = if index == 0 { "" } else { " " };
            write!(f, "{space}{name}={count}")?;
        }
        Ok(())
    }
}

impl RunStats {
    /// How often a run (or a sum of runs) reached `probe`'s state.
    pub fn probe_hits(&self, probe: Probe) -> u64 {
        let stats = self;
        let probes = &stats.probes;
        let apiservers = &stats.apiservers;
        match probe {
            Probe::Relist => stats.relists,
            Probe::Expired410 => apiservers.expired,
            Probe::StaleList => probes.stale_lists,
            Probe::ListOlderThanSeen => probes.lists_older_than_seen,
            Probe::BookmarkResume => probes.bookmark_resumes,
            Probe::InitialEventsEnd => probes.initial_events_ends,
            Probe::PaginatedList => probes.paginated_lists,
            Probe::CompactionUnderWatch => probes.compactions_under_watch,
            Probe::EtcdWatchCompacted => stats.compacted_watches,
            Probe::ProgressNotify => stats.progress_notifications,
            Probe::ReplaceTombstone => stats.tombstones,
            Probe::ResyncSkipPending => probes.resync_skips,
            Probe::SlowWatcherTermination => apiservers.slow_terminations,
            Probe::CacherReinit => apiservers.reinits,
            Probe::TooLarge504 => apiservers.too_large,
            Probe::NotReady429 => apiservers.not_ready,
            Probe::EtcdFallback => apiservers.etcd_fallbacks,
            Probe::CloseUnderPop => probes.closes_under_pop,
            Probe::OldRvResume => probes.old_resumes_served,
            Probe::CacherRewatch => apiservers.cache_rewatches,
            Probe::CachePage => apiservers.cache_pages,
            Probe::Snapshot504 => apiservers.snapshot_timeouts,
            Probe::DirectWatchBehind => apiservers.direct_watches_behind,
            Probe::Rewatch => stats.rewatches,
            Probe::HealthCheckClose => stats.health_check_closes,
            Probe::ControllerConflict => probes.controller_conflicts,
            Probe::ControllerRequeue => probes.controller_requeues,
            Probe::ListerBehindWrite => probes.lister_behind_writes,
            Probe::InitialEventsCutOff => apiservers.initial_events_cut_offs,
            Probe::IntervalInvalidated => apiservers.intervals_invalidated,
            Probe::GracefulDrain => apiservers.graceful_drains,
        }
    }

    /// The probes of `required` these counts never hit.
    pub fn probe_misses(&self, required: &[Probe]) -> Vec<Probe> {
        required
            .iter()
            .copied()
            .filter(|probe| self.probe_hits(*probe) == 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_lists_exactly_the_probes_never_hit() {
        let stats = RunStats {
            relists: 3,
            probes: ProbeCounts {
                bookmark_resumes: 1,
                ..ProbeCounts::default()
            },
            ..RunStats::default()
        };
        let required = [Probe::Relist, Probe::BookmarkResume, Probe::CacherReinit];
        assert_eq!(stats.probe_misses(&required), vec![Probe::CacherReinit]);
    }
}
