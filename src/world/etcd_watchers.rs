//! Raw etcd watch clients: they start at old, current or future revisions, fall behind, get
//! compacted, lose their connection and resume from the last revision they saw. The checker
//! holds each open watch's oracle.

use std::collections::BTreeMap;

use crate::check::Violation;
use crate::etcd::{
    Etcd, EtcdError, KeyRange, Revision, WatchId, WatchRequest, WatchResponse, WatchResponseKind,
};
use crate::sim::{Delivery, Link, SimDuration};

use super::core::Core;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};
use super::writer::RESOURCE_PREFIX;

/// One client of etcd's watch API.
struct EtcdWatcher {
    /// The open watch and the stream it arrives on.
    watch: Option<OpenWatch>,
    /// The last revision seen (event or progress notification); 0 before any.
    last_revision: u64,
    /// Whether the consumer is currently not reading.
    stalled: bool,
}

/// A watch that is open from the client's point of view.
struct OpenWatch {
    id: WatchId,
    link: Link,
}

/// The raw etcd watchers of a world.
pub(crate) struct EtcdWatchers {
    watchers: Vec<EtcdWatcher>,
    /// Which watcher each open etcd watch belongs to.
    owner: BTreeMap<WatchId, usize>,
}

impl EtcdWatchers {
    pub(crate) fn new(count: usize) -> EtcdWatchers {
        let watchers = (0..count)
            .map(|_| EtcdWatcher {
                watch: None,
                last_revision: 0,
                stalled: false,
            })
            .collect();
        EtcdWatchers {
            watchers,
            owner: BTreeMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Each watcher starts at a random time in the first half of the run.
    pub(crate) fn schedule_start(&self, core: &mut Core) {
        for watcher in 0..self.watchers.len() {
            let delay = core.streams.faults.below(core.scenario.duration_ms / 2 + 1);
            core.kernel
                .schedule_in(SimDuration(delay), Ev::WatcherStart { watcher });
        }
    }

    /// Whether `watch` belongs to a raw watcher.
    pub(crate) fn owns(&self, watch: WatchId) -> bool {
        self.owner.contains_key(&watch)
    }

    /// Planned fault: watcher `watcher` stops reading for `ms`, if it has a watch it reads.
    /// Returns whether it stalled; the caller then flushes.
    pub(crate) fn stall(
        &mut self,
        core: &mut Core,
        etcd: &mut Etcd,
        watcher: usize,
        ms: u64,
    ) -> bool {
        let state = &mut self.watchers[watcher];
        let Some(id) = state.watch.as_ref().map(|watch| watch.id) else {
            return false;
        };
        if state.stalled {
            return false;
        }
        tolerate_gone(etcd.stall_watcher(id));
        state.stalled = true;
        core.record(Actor::Watcher(watcher), &TraceEvent::Stall { watch_id: id });
        core.kernel
            .schedule_in(SimDuration(ms), Ev::StallEnd { watcher });
        true
    }

    /// Planned fault: watcher `watcher` asks for a progress notification, if it has a watch.
    pub(crate) fn request_progress(
        &mut self,
        core: &mut Core,
        etcd: &mut Etcd,
        watcher: usize,
    ) -> bool {
        let Some(id) = self.watchers[watcher].watch.as_ref().map(|watch| watch.id) else {
            return false;
        };
        tolerate_gone(etcd.request_progress(id));
        core.record(
            Actor::Watcher(watcher),
            &TraceEvent::ProgressRequest { watch_id: id },
        );
        true
    }

    /// Planned fault: watcher `watcher`'s connection breaks, if it has a watch; it resumes
    /// after a backoff.
    pub(crate) fn disconnect(&mut self, core: &mut Core, etcd: &mut Etcd, watcher: usize) {
        let Some(mut watch) = self.watchers[watcher].watch.take() else {
            return;
        };
        core.checker.on_etcd_watch_closed(watcher);
        watch.link.disconnect();
        self.watchers[watcher].stalled = false;
        // The server notices the broken stream and drops the watch; its answer is lost.
        tolerate_gone(etcd.cancel_watch(watch.id));
        self.owner.remove(&watch.id);
        core.record(
            Actor::Watcher(watcher),
            &TraceEvent::Disconnect { watch_id: watch.id },
        );
        let backoff = core.streams.faults.between(100, 2_000);
        core.kernel
            .schedule_in(SimDuration(backoff), Ev::WatcherStart { watcher });
    }

    /// A stalled watcher reads again. Returns whether it was stalled; the caller then flushes.
    pub(crate) fn stall_end(&mut self, core: &mut Core, etcd: &mut Etcd, watcher: usize) -> bool {
        let state = &mut self.watchers[watcher];
        let Some(id) = state.watch.as_ref().map(|watch| watch.id) else {
            return false;
        };
        if !state.stalled {
            return false;
        }
        state.stalled = false;
        tolerate_gone(etcd.resume_watcher(id));
        core.record(
            Actor::Watcher(watcher),
            &TraceEvent::Resume { watch_id: id },
        );
        true
    }

    /// Opens a watch: resuming after the last revision seen, or (first time, or after a
    /// compaction cancel) from now, from an old revision, at the compact revision, or ahead.
    /// Returns whether it opened one; the caller then flushes.
    pub(crate) fn watcher_start(
        &mut self,
        core: &mut Core,
        etcd: &mut Etcd,
        watcher: usize,
    ) -> bool {
        if self.watchers[watcher].watch.is_some() {
            return false;
        }
        let revision = etcd.revision();
        let faults = &mut core.streams.faults;
        let start_revision = match self.watchers[watcher].last_revision {
            0 => match faults.below(4) {
                0 => 0,
                1 => faults.between(1, revision),
                2 => etcd.compact_revision().max(1),
                _ => revision + faults.between(1, 3),
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
        let id = etcd.watch(request);
        self.owner.insert(id, watcher);
        let link = Link::new(core.scenario.etcd_watchers.link);
        core.checker.on_etcd_watch_opened(watcher, range, resolved);
        self.watchers[watcher].watch = Some(OpenWatch { id, link });
        core.record(
            Actor::Watcher(watcher),
            &TraceEvent::Watch {
                watch_id: id,
                start_revision,
            },
        );
        true
    }

    /// Puts a message etcd produced for a raw watcher on its link.
    pub(crate) fn send(
        &mut self,
        core: &mut Core,
        response: WatchResponse,
        compact_revision: Revision,
    ) {
        let watcher = self.owner[&response.watch_id];
        let Some(watch) = self.watchers[watcher].watch.as_mut() else {
            return;
        };
        if let Some(delivery) = watch.link.send(core.now(), &mut core.streams.links) {
            if matches!(response.kind, WatchResponseKind::Compacted { .. }) {
                self.owner.remove(&response.watch_id);
            }
            core.kernel.schedule_at(
                delivery.at,
                Ev::Deliver {
                    watcher,
                    delivery,
                    response,
                    compact_revision,
                },
            );
        }
    }

    /// A message reaches a raw watcher: the checker's oracle checks it first.
    pub(crate) fn deliver(
        &mut self,
        core: &mut Core,
        watcher: usize,
        delivery: Delivery,
        response: WatchResponse,
        compact_revision: Revision,
    ) -> Result<(), Violation> {
        let actor = Actor::Watcher(watcher);
        let state = &mut self.watchers[watcher];
        let open = state
            .watch
            .as_ref()
            .is_some_and(|watch| watch.id == response.watch_id && watch.link.accepts(delivery));
        if !open {
            core.record(
                actor,
                &TraceEvent::Lost {
                    watch_id: response.watch_id,
                },
            );
            return Ok(());
        }
        let found = core
            .checker
            .on_etcd_watch_response(watcher, &response, compact_revision);
        core.report(found)?;
        match &response.kind {
            WatchResponseKind::Events(events) => {
                core.stats.watch_events += events.len() as u64;
                state.last_revision = events.last().expect("never empty").kv.mod_revision;
            }
            WatchResponseKind::Progress => {
                core.stats.progress_notifications += 1;
                state.last_revision = state.last_revision.max(response.header_revision);
            }
            WatchResponseKind::Compacted { .. } => {
                core.stats.compacted_watches += 1;
                state.watch = None;
                core.checker.on_etcd_watch_closed(watcher);
                state.last_revision = 0;
                state.stalled = false;
                let backoff = core.streams.faults.between(100, 2_000);
                core.kernel
                    .schedule_in(SimDuration(backoff), Ev::WatcherStart { watcher });
            }
            WatchResponseKind::Created | WatchResponseKind::Canceled => {}
        }
        core.record(
            actor,
            &TraceEvent::Received {
                response: &response,
            },
        );
        Ok(())
    }

    /// Whether watcher `watcher` has no open watch (after healing it opens one at once).
    pub(crate) fn is_closed(&self, watcher: usize) -> bool {
        self.watchers[watcher].watch.is_none()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::world::core::tests::core_for;

    #[test]
    fn a_planned_fault_on_a_watcher_without_a_watch_does_nothing() {
        let mut core = core_for(Scenario::default());
        let mut etcd = Etcd::default();
        let mut watchers = EtcdWatchers::new(1);
        assert!(!watchers.stall(&mut core, &mut etcd, 0, 100));
        assert!(!watchers.request_progress(&mut core, &mut etcd, 0));
        watchers.disconnect(&mut core, &mut etcd, 0);
        assert_eq!(core.trace.steps(), 0);
        assert!(watchers.watcher_start(&mut core, &mut etcd, 0));
        assert!(
            !watchers.watcher_start(&mut core, &mut etcd, 0),
            "already open"
        );
        assert!(watchers.stall(&mut core, &mut etcd, 0, 100));
        assert!(
            !watchers.stall(&mut core, &mut etcd, 0, 100),
            "already stalled"
        );
        assert!(watchers.stall_end(&mut core, &mut etcd, 0));
    }

    #[test]
    fn a_disconnected_watcher_drops_its_watch_and_comes_back() {
        let mut core = core_for(Scenario::default());
        let mut etcd = Etcd::default();
        let mut watchers = EtcdWatchers::new(1);
        assert!(watchers.watcher_start(&mut core, &mut etcd, 0));
        assert_eq!(etcd.watch_count(), 1);
        watchers.disconnect(&mut core, &mut etcd, 0);
        assert!(watchers.is_closed(0));
        assert_eq!(etcd.watch_count(), 0, "the server dropped the watch");
        let restart = core.kernel.next_event().expect("within budget");
        assert!(matches!(restart, Some(Ev::WatcherStart { watcher: 0 })));
    }
}
