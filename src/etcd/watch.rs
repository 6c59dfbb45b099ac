//! Watches: delivery from history, compaction cancels, progress notifications.

use super::Etcd;
use super::store::Change;
use super::types::{
    EtcdError, EtcdRelease, Event, EventType, KeyRange, KeyValue, Revision, StreamId, WatchId,
    WatchRequest, WatchResponse, WatchResponseKind,
};
use crate::bug::Bug;

/// One open watch.
#[derive(Clone, Debug)]
pub(super) struct Watcher {
    range: KeyRange,
    /// The gRPC stream it is on.
    stream: StreamId,
    /// The start revision asked for (0: none).
    start_revision: Revision,
    /// The next revision this watch must deliver.
    next_revision: Revision,
    prev_kv: bool,
    progress_notify: bool,
    /// The consumer is not reading: nothing is sent until it resumes (an unsynced watcher).
    stalled: bool,
    /// etcd 3.4: a requested progress notification waits until the watch is synced.
    progress_pending: bool,
    /// etcd 3.6: the watch got events since the last periodic tick, so the next one skips it
    /// (`sendLoop`: "elide next progress update if sent a key update").
    skip_next_progress: bool,
}

impl Etcd {
    /// Opens a gRPC watch stream for watches to share.
    pub fn open_stream(&mut self) -> StreamId {
        self.next_stream_id += 1;
        self.next_stream_id
    }

    /// Opens a watch on a stream of its own (as one JSON-gateway request has). The stream
    /// starts with `Created`, then delivers every change in range from `start_revision` on (0:
    /// from the next revision), or `Compacted` if that start was compacted away.
    pub fn watch(&mut self, request: WatchRequest) -> WatchId {
        let stream = self.open_stream();
        self.watch_on_stream(stream, request)
    }

    /// Opens a watch on `stream`, shared with the other watches on it (progress requests cover
    /// the whole stream at etcd 3.6).
    pub fn watch_on_stream(&mut self, stream: StreamId, request: WatchRequest) -> WatchId {
        let id = self.next_watch_id;
        self.next_watch_id += 1;
        let revision = self.store.revision();
        let next_revision = match request.start_revision {
            0 => revision + 1,
            // Planted: etcd#20221, a watch on a future revision starts at the current one and
            // so delivers an event below the revision it asked for.
            start if start > revision + 1 && self.bugs.is(Bug::FutureWatchGetsOldEvents) => {
                revision
            }
            start => start,
        };
        self.push(id, WatchResponseKind::Created);
        let watcher = Watcher {
            range: request.range,
            stream,
            start_revision: request.start_revision,
            next_revision,
            prev_kv: request.prev_kv,
            progress_notify: request.progress_notify,
            stalled: false,
            progress_pending: false,
            skip_next_progress: false,
        };
        self.watchers.insert(id, watcher);
        self.sync_watcher(id);
        id
    }

    /// How many watches are open.
    pub fn watch_count(&self) -> usize {
        self.watchers.len()
    }

    /// Closes a watch at the client's request.
    pub fn cancel_watch(&mut self, id: WatchId) -> Result<(), EtcdError> {
        self.watchers.remove(&id).ok_or(EtcdError::NoSuchWatch)?;
        self.push(id, WatchResponseKind::Canceled);
        Ok(())
    }

    /// Whether watch `id` is open.
    pub fn is_watching(&self, id: WatchId) -> bool {
        self.watchers.contains_key(&id)
    }

    /// Asks for a progress notification on the stream of watch `id` (`RequestProgress`).
    ///
    /// - etcd 3.6 (`recvLoop` → `RequestProgressAll` → `progressIfSync`): if every watch on
    ///   the stream is synced and at or past its start revision, each gets one notification at
    ///   the current revision (etcd sends it once, clientv3 broadcasts it); otherwise the
    ///   request is dropped and the client must ask again.
    /// - etcd 3.4 as modelled (`watchableStore.progress` after etcd#15220): this watch is
    ///   answered at once if it is synced, else as soon as it is.
    pub fn request_progress(&mut self, id: WatchId) -> Result<(), EtcdError> {
        let watcher = self.watchers.get_mut(&id).ok_or(EtcdError::NoSuchWatch)?;
        if self.bugs.is(Bug::EarlyProgress) {
            // Planted: etcd#15220, answered at once, before pending events are sent.
            self.push(id, WatchResponseKind::Progress);
            return Ok(());
        }
        match self.release {
            EtcdRelease::V3_4 => {
                watcher.progress_pending = true;
                self.sync_watcher(id);
            }
            EtcdRelease::V3_6 => {
                let stream = watcher.stream;
                let on_stream: Vec<WatchId> = self
                    .watchers
                    .iter()
                    .filter(|(_, watcher)| watcher.stream == stream)
                    .map(|(id, _)| *id)
                    .collect();
                if on_stream.iter().all(|id| self.progress_if_sync(id)) {
                    for id in on_stream {
                        self.push(id, WatchResponseKind::Progress);
                    }
                }
            }
        }
        Ok(())
    }

    /// The periodic progress notification (`--experimental-watch-progress-notify-interval`)
    /// to every watch that asked for `progress_notify` and is synced (`progressIfSync`); at
    /// etcd 3.6 not to one whose start revision is still ahead, nor, once, to one that got
    /// events since the last tick (`sendLoop`).
    pub fn progress_tick(&mut self) {
        let release = self.release;
        let mut due = Vec::new();
        for (id, watcher) in &self.watchers {
            if !watcher.progress_notify {
                continue;
            }
            let ready = match release {
                EtcdRelease::V3_4 => self.is_synced(watcher),
                EtcdRelease::V3_6 => self.progress_if_sync(id) && !watcher.skip_next_progress,
            };
            if ready {
                due.push(*id);
            }
        }
        for watcher in self.watchers.values_mut() {
            watcher.skip_next_progress = false;
        }
        for id in due {
            self.push(id, WatchResponseKind::Progress);
        }
    }

    /// Whether watch `id` may get a progress notification at etcd 3.6: synced, and the
    /// current revision not below its start revision (`progressIfSync`).
    fn progress_if_sync(&self, id: &WatchId) -> bool {
        let watcher = &self.watchers[id];
        self.is_synced(watcher) && self.store.revision() >= watcher.start_revision
    }

    /// The consumer of watch `id` stops reading: the watch falls behind (becomes unsynced).
    pub fn stall_watcher(&mut self, id: WatchId) -> Result<(), EtcdError> {
        self.watchers
            .get_mut(&id)
            .ok_or(EtcdError::NoSuchWatch)?
            .stalled = true;
        Ok(())
    }

    /// The consumer of watch `id` reads again: the watch catches up from history, or is
    /// canceled if its next revision was compacted meanwhile.
    pub fn resume_watcher(&mut self, id: WatchId) -> Result<(), EtcdError> {
        let watcher = self.watchers.get_mut(&id).ok_or(EtcdError::NoSuchWatch)?;
        watcher.stalled = false;
        if self.bugs.is(Bug::ResumeFromOlderRevision) {
            // Planted: etcd#15271, after a partition the watch resumes one revision back and
            // re-sends what it already delivered.
            watcher.next_revision = watcher.next_revision.saturating_sub(1).max(1);
        }
        self.sync_watcher(id);
        Ok(())
    }

    pub(super) fn sync_watchers(&mut self) {
        let ids: Vec<WatchId> = self.watchers.keys().copied().collect();
        for id in ids {
            self.sync_watcher(id);
        }
    }

    fn is_synced(&self, watcher: &Watcher) -> bool {
        !watcher.stalled && watcher.next_revision > self.store.revision()
    }

    /// Mirrors etcd `watcherGroup.chooseAll` + `syncWatchers`: a watch whose next revision is
    /// below the compact revision is canceled with it; otherwise it gets every change from its
    /// next revision to the current one in one message (whole revisions only).
    fn sync_watcher(&mut self, id: WatchId) {
        let Some(watcher) = self.watchers.get(&id) else {
            return;
        };
        if watcher.stalled {
            return;
        }
        let compact_revision = self.store.compact_revision();
        if watcher.next_revision < compact_revision {
            self.watchers.remove(&id);
            self.push(id, WatchResponseKind::Compacted { compact_revision });
            return;
        }
        let revision = self.store.revision();
        if watcher.next_revision <= revision {
            let mut events: Vec<Event> = self
                .store
                .changes_since(watcher.next_revision)
                .filter(|change| watcher.range.contains(&change.key))
                // Planted: a broader etcd#18089, the delete right above the compact revision
                // is lost (the oracle tolerates only a delete *at* it).
                .filter(|change| {
                    !(self.bugs.is(Bug::DropDeleteAboveCompaction)
                        && change.revision == compact_revision + 1
                        && self.store.change_states(change).0.is_none())
                })
                // Planted: a broader etcd#19179, a watch whose next revision is the compact
                // revision gets nothing at it, puts included.
                .filter(|change| {
                    !(self.bugs.is(Bug::SkipCompactRevision)
                        && change.revision == compact_revision
                        && watcher.next_revision == compact_revision)
                })
                .map(|change| self.event_for(change, watcher.prev_kv))
                .collect();
            if self.bugs.is(Bug::DuplicateEvent)
                && let Some(last) = events.last().cloned()
            {
                // Planted: etcd#17247, the last event of a batch is sent twice.
                events.push(last);
            }
            if !events.is_empty() {
                self.push(id, WatchResponseKind::Events(events));
                let watcher = self.watchers.get_mut(&id).expect("still open");
                watcher.skip_next_progress = true;
            }
        }
        let watcher = self.watchers.get_mut(&id).expect("still open");
        watcher.next_revision = watcher.next_revision.max(revision + 1);
        if watcher.progress_pending {
            watcher.progress_pending = false;
            self.push(id, WatchResponseKind::Progress);
        }
    }

    fn event_for(&self, change: &Change, with_prev_kv: bool) -> Event {
        let (current, previous) = self.store.change_states(change);
        let prev_kv = previous.filter(|_| with_prev_kv).cloned();
        match current {
            Some(kv) => Event {
                event_type: EventType::Put,
                kv: kv.clone(),
                prev_kv,
            },
            None => Event {
                event_type: EventType::Delete,
                kv: KeyValue {
                    key: change.key.clone(),
                    create_revision: 0,
                    mod_revision: change.revision,
                    version: 0,
                    value: Vec::new(),
                },
                prev_kv,
            },
        }
    }

    fn push(&mut self, watch_id: WatchId, kind: WatchResponseKind) {
        let header_revision = self.store.revision();
        self.outbox.push_back(WatchResponse {
            watch_id,
            header_revision,
            kind,
        });
    }
}
