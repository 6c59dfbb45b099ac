//! Raw etcd watch clients: they start at old, current or future revisions, fall behind, get
//! compacted, lose their connection and resume from the last revision they saw.

use crate::check::Invariant;
use crate::check::Violation;
use crate::check::etcd_watch::WatchStreamOracle;
use crate::etcd::{KeyRange, Revision, WatchId, WatchRequest, WatchResponse, WatchResponseKind};
use crate::sim::{Delivery, Link, SimDuration};

use super::writer::RESOURCE_PREFIX;
use super::{Ev, TraceEvent, World, tolerate_gone};

/// One client of etcd's watch API.
pub(crate) struct EtcdWatcher {
    /// The open watch and the stream it arrives on.
    pub(crate) watch: Option<OpenWatch>,
    /// The last revision seen (event or progress notification); 0 before any.
    pub(crate) last_revision: u64,
    /// Whether the consumer is currently not reading.
    pub(crate) stalled: bool,
}

/// A watch that is open from the client's point of view.
pub(crate) struct OpenWatch {
    pub(crate) id: WatchId,
    pub(crate) link: Link,
    pub(crate) oracle: WatchStreamOracle,
}

impl EtcdWatcher {
    pub(crate) fn new() -> EtcdWatcher {
        EtcdWatcher {
            watch: None,
            last_revision: 0,
            stalled: false,
        }
    }
}

impl World {
    pub(super) fn fault_tick(&mut self) -> Result<(), Violation> {
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

    pub(super) fn stall_end(&mut self, watcher: usize) -> Result<(), Violation> {
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
    pub(super) fn watcher_start(&mut self, watcher: usize) -> Result<(), Violation> {
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

    /// Puts every message etcd produced on the link of the watcher or apiserver it is for.
    pub(super) fn flush_watch_responses(&mut self) {
        while let Some(response) = self.etcd.poll_response() {
            if let Some(&watcher) = self.watch_owner.get(&response.watch_id) {
                self.send_to_watcher(watcher, response);
            } else if let Some(apiserver) = self
                .apiservers
                .iter()
                .position(|a| a.owns_etcd_watch(response.watch_id))
            {
                self.send_to_apiserver(apiserver, response);
            }
        }
    }

    fn send_to_watcher(&mut self, watcher: usize, response: WatchResponse) {
        let Some(watch) = self.watchers[watcher].watch.as_mut() else {
            return;
        };
        if let Some(delivery) = watch.link.send(self.kernel.now(), &mut self.streams.links) {
            if matches!(response.kind, WatchResponseKind::Compacted { .. }) {
                self.watch_owner.remove(&response.watch_id);
            }
            self.kernel.schedule_at(
                delivery.at,
                Ev::Deliver {
                    watcher,
                    delivery,
                    response,
                    compact_revision: self.etcd.compact_revision(),
                },
            );
        }
    }

    pub(super) fn deliver(
        &mut self,
        watcher: usize,
        delivery: Delivery,
        response: WatchResponse,
        compact_revision: Revision,
    ) -> Result<(), Violation> {
        let actor = format!("watcher-{watcher}");
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

    /// After settling, every raw watcher has an open watch that delivered all of its range.
    pub(super) fn check_etcd_watchers_caught_up(&self) -> Result<(), Violation> {
        let compact_revision = self.etcd.compact_revision();
        for (index, watcher) in self.watchers.iter().enumerate() {
            let Some(watch) = &watcher.watch else {
                return Err(Violation::new(
                    Invariant::EtcdWatchersCaughtUp,
                    format!("watcher-{index} has no watch after healing"),
                ));
            };
            if let Some(missed) = watch
                .oracle
                .first_undelivered(&self.reference, compact_revision)
            {
                return Err(Violation::new(
                    Invariant::EtcdWatchersCaughtUp,
                    format!("watcher-{index} never received the event at revision {missed}"),
                ));
            }
        }
        Ok(())
    }
}
