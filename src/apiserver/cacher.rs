//! The cacher: one resource's watch cache, filled by its own list + watch on etcd, and the
//! cache watchers it dispatches to (`pkg/storage/cacher/cacher.go`; SPEC §2.2, §2.6–§2.8).

use std::collections::{BTreeMap, VecDeque};

use crate::api::{RequestId, ServerMessage, Status};
use crate::api::{WatchEvent, WatchEventType};
use crate::apiserver::cache_watcher::{CacheWatcher, DispatchResult};
use crate::apiserver::event::WatchCacheEvent;
use crate::apiserver::storage::{self, EtcdListRequest, ParsedEvent};
use crate::apiserver::time_budget::TimeBudget;
use crate::apiserver::watch_cache::{WatchCache, WatchCacheConfig};
use crate::apiserver::watch_writer::WatchWriter;
use crate::bug::Bugs;
use crate::etcd::{Etcd, KeyRange, StreamId, WatchId, WatchRequest};
use crate::object::ResourceVersion;
use crate::sim::{SimDuration, SimTime};

/// A client's stream, as the apiserver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamKey {
    /// The client.
    pub client: usize,
    /// The watch request.
    pub id: RequestId,
}

/// How long after its upstream failed the cacher re-initializes (`wait.Until(startCaching, 1s)`).
const REINIT_DELAY: SimDuration = SimDuration::from_secs(1);

/// How long the cacher's reflector re-watches after internal errors before it gives up and the
/// cache re-initializes (`reflector.MaxInternalErrorRetryDuration`, set in
/// `NewCacherFromConfig`: "When etcd loses leader ... We don't want to terminate all watchers").
const INTERNAL_ERROR_RETRY_MAX: SimDuration = SimDuration::from_secs(30);

/// An internal-error streak is forgotten after a minute without errors (`NewRetryWithDeadline`'s
/// `minResetPeriod`, `time.Minute` in `Reflector.watch`).
const INTERNAL_ERROR_RESET: SimDuration = SimDuration::from_secs(60);

/// The pace of the reflector's re-watch loop after an internal error. Upstream re-watches at
/// once (`continue`), each attempt costing a round trip to etcd; the model spaces attempts
/// 100 ms apart so a 30 s streak is a few hundred steps, not thousands.
const REWATCH_ATTEMPT: SimDuration = SimDuration::from_millis(100);

/// Mirrors client-go `retryWithDeadlineImpl` for internal errors: retry while the streak's
/// first error is at most 30 s old; a minute without errors starts a new streak.
#[derive(Clone, Copy, Debug, Default)]
struct InternalErrorRetry {
    first_error: Option<SimTime>,
    last_error: Option<SimTime>,
}

impl InternalErrorRetry {
    /// `After(err)` for an internal error at `now`.
    fn after_error(&mut self, now: SimTime) {
        if self
            .last_error
            .is_some_and(|last| now.saturating_since(last) >= INTERNAL_ERROR_RESET)
        {
            *self = InternalErrorRetry::default();
        }
        self.first_error.get_or_insert(now);
        self.last_error = Some(now);
    }

    /// `ShouldRetry()`: within 30 s of the streak's first error; past that, the streak resets.
    fn should_retry(&mut self, now: SimTime) -> bool {
        let within = self
            .first_error
            .is_some_and(|first| now.saturating_since(first) <= INTERNAL_ERROR_RETRY_MAX);
        if !within {
            *self = InternalErrorRetry::default();
        }
        within
    }
}

/// The downtimes (ms) from which `Retry-After` is 2 s, 3 s, ... 30 s: `e^(0.06 s)` reaches
/// `n` after `ln(n) / 0.06` seconds. Integers, so that no platform's `exp` decides a run.
const RETRY_AFTER_STEPS_MS: [u64; 29] = [
    11_553, 18_311, 23_105, 26_824, 29_863, 32_432, 34_658, 36_621, 38_377, 39_965, 41_416, 42_750,
    43_985, 45_135, 46_210, 47_221, 48_173, 49_074, 49_929, 50_743, 51_518, 52_259, 52_968, 53_648,
    54_302, 54_931, 55_537, 56_122, 56_687,
];

/// Mirrors `cacher/util.go calculateRetryAfterForUnreadyCache`: `e^(0.06 · downtime in s)`
/// seconds, truncated, at least 1 and at most 30.
pub(crate) fn retry_after_for_unready_cache(downtime: SimDuration) -> u64 {
    let passed = RETRY_AFTER_STEPS_MS
        .iter()
        .take_while(|step| downtime.as_millis() >= **step)
        .count();
    1 + passed as u64
}

/// Whether the cache can serve (`ready.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// (Re)initializing since `since` (`ready.go`'s last state change): watches get 429,
    /// lists 429 or etcd.
    Pending {
        /// When the cache stopped serving (or was created).
        since: SimTime,
    },
    /// Serving; the generation counts initializations (k/k#116122).
    Ready {
        /// How many times the cache was (re)initialized.
        generation: u64,
    },
}

/// One cache watcher and its client's reading state.
#[derive(Clone, Debug)]
pub(crate) struct CachedStream {
    pub(crate) watcher: CacheWatcher,
    pub(crate) deadline: SimTime,
    /// Whether the client reads; a slow consumer stops, and its buffers fill.
    pub(crate) reading: bool,
    /// The watcher's result channel (`cacheWatcher.result`): events ready for the client. It
    /// outlives a termination, so the client still reads what it holds before the close.
    pub(crate) result: VecDeque<WatchEvent>,
    pub(crate) result_capacity: usize,
    /// Terminated as a slow watcher: nothing more is dispatched to it (a graceful one still
    /// drains what its input holds).
    pub(crate) terminated: bool,
    /// The handler's write pace.
    writer: WatchWriter,
    /// When the handler may write again, if it has more to send.
    pub(crate) write_at: Option<SimTime>,
}

impl CachedStream {
    pub(crate) fn new(
        watcher: CacheWatcher,
        deadline: SimTime,
        buffer: usize,
        writer: WatchWriter,
    ) -> CachedStream {
        CachedStream {
            watcher,
            deadline,
            reading: true,
            result: VecDeque::with_capacity(buffer),
            result_capacity: buffer,
            terminated: false,
            writer,
            write_at: None,
        }
    }
}

/// The streams whose handler may write again at `now`.
pub(crate) fn due_writes<'a>(
    now: SimTime,
    streams: impl Iterator<Item = (&'a StreamKey, Option<SimTime>)>,
) -> Vec<StreamKey> {
    let due = streams.filter(|(_, write_at)| write_at.is_some_and(|at| at <= now));
    due.map(|(key, _)| *key).collect()
}

/// An event the dispatcher could not hand to every watcher yet.
#[derive(Clone, Debug)]
struct BlockedDispatch {
    event: WatchCacheEvent,
    waiting_for: Vec<StreamKey>,
    deadline: SimTime,
    budget: SimDuration,
}

/// `cacher.go`'s `incoming` channel capacity: past this many undispatched events, the cache
/// stops advancing.
pub(crate) const INCOMING_CAPACITY: usize = 100;

/// The cacher's reflector, blocked on a full `incoming` channel.
#[derive(Clone, Debug, Default)]
struct Held {
    events: VecDeque<crate::etcd::Event>,
    /// A progress notification that came after them.
    progress: Option<ResourceVersion>,
    /// Whether the cacher stopped reading its etcd watch meanwhile.
    stalled_etcd: bool,
}

/// What the cacher tells its apiserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CacherNotice {
    /// A stream ended; the client gets a clean close.
    Closed(StreamKey),
    /// A slow watcher was terminated, perhaps before it had sent all its initial events.
    SlowTerminated {
        initial_events_left: bool,
        /// It drains what it holds first: its watch-list's end bookmark was buffered.
        graceful: bool,
    },
}

/// One resource's cache.
#[derive(Clone, Debug)]
pub(crate) struct Cacher {
    prefix: String,
    pub(crate) watch_cache: WatchCache,
    pub(crate) readiness: Readiness,
    generation: u64,
    upstream: Option<WatchId>,
    /// The apiserver's etcd watch stream, opened at the first initialization.
    etcd_stream: Option<StreamId>,
    reinit_at: Option<SimTime>,
    /// When the reflector re-watches from the last processed RV (after an internal error or
    /// a clean close), the cache staying ready meanwhile.
    rewatch_at: Option<SimTime>,
    internal_errors: InternalErrorRetry,
    /// Until then every etcd request of the cacher fails with an internal error (an etcd
    /// member without a leader: "etcdserver: no leader").
    etcd_failing_until: Option<SimTime>,
    /// Re-watches after an internal error (the cache stayed ready and stopped advancing).
    pub(crate) rewatches: u64,
    /// The RV of the last event or progress notification processed (bookmarks carry it).
    pub(crate) last_processed_resource_version: ResourceVersion,
    pub(crate) streams: BTreeMap<StreamKey, CachedStream>,
    incoming: VecDeque<WatchCacheEvent>,
    /// What the cacher's reflector received but cannot hand on while `incoming` is full
    /// (blocked in `processEvent`): etcd events not yet applied, and the newest progress
    /// notification behind them.
    held: Held,
    blocked: Option<BlockedDispatch>,
    time_budget: TimeBudget,
    pub(crate) messages: VecDeque<(usize, ServerMessage)>,
    pub(crate) notices: VecDeque<CacherNotice>,
    /// How many times the cache was (re)initialized after a failure.
    pub(crate) reinits: u64,
    /// Watchers stopped because the history dropped events before they read them.
    pub(crate) intervals_invalidated: u64,
}

impl Cacher {
    pub(crate) fn new(prefix: &str, config: WatchCacheConfig, now: SimTime, bugs: Bugs) -> Cacher {
        Cacher {
            prefix: prefix.to_owned(),
            watch_cache: WatchCache::new(config, bugs),
            readiness: Readiness::Pending { since: now },
            generation: 0,
            upstream: None,
            etcd_stream: None,
            reinit_at: Some(now),
            rewatch_at: None,
            internal_errors: InternalErrorRetry::default(),
            etcd_failing_until: None,
            rewatches: 0,
            last_processed_resource_version: 0,
            streams: BTreeMap::new(),
            incoming: VecDeque::new(),
            held: Held::default(),
            blocked: None,
            time_budget: TimeBudget::new(now),
            messages: VecDeque::new(),
            notices: VecDeque::new(),
            reinits: 0,
            intervals_invalidated: 0,
        }
    }

    /// A fresh cacher of a restarted apiserver: pending until `ready_at`.
    pub(crate) fn restart_at(&mut self, ready_at: SimTime, reinits: u64) {
        self.reinit_at = Some(ready_at);
        self.reinits = reinits;
    }

    pub(crate) fn upstream_watch(&self) -> Option<WatchId> {
        self.upstream
    }

    /// The generation a watch registers on (`ready.checkAndReadGeneration`).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.readiness, Readiness::Ready { .. })
    }

    pub(crate) fn next_timeout(&self) -> Option<SimTime> {
        let blocked = self.blocked.as_ref().map(|blocked| blocked.deadline);
        [self.reinit_at, self.rewatch_at, blocked]
            .into_iter()
            .flatten()
            .min()
    }

    fn etcd_fails_at(&self, now: SimTime) -> bool {
        self.etcd_failing_until.is_some_and(|until| until > now)
    }

    /// Mirrors `cacher.go startCaching`: terminate every watcher, list etcd consistently,
    /// `Replace` the cache (history reset, `listRV` = the list revision), watch from there.
    /// A list that fails (an object that does not decode) leaves the cache pending, and the
    /// next attempt comes a second later (`wait.Until(startCaching, 1s)`).
    fn initialize(&mut self, now: SimTime, etcd: &mut Etcd) {
        self.reinit_at = None;
        self.terminate_all_watchers(now);
        let request = EtcdListRequest {
            revision: 0,
            limit: 0,
            after_key: None,
        };
        let listed = match self.etcd_fails_at(now) {
            true => None,
            false => storage::list(etcd, &self.prefix, &request).ok(),
        };
        let Some(list) = listed else {
            self.set_pending(now);
            self.reinit_at = Some(now + REINIT_DELAY);
            return;
        };
        self.watch_cache.replace(list.items, list.resource_version);
        self.last_processed_resource_version = list.resource_version;
        self.generation += 1;
        self.readiness = Readiness::Ready {
            generation: self.generation,
        };
        self.incoming.clear();
        self.blocked = None;
        self.internal_errors = InternalErrorRetry::default();
        self.watch_upstream(etcd);
    }

    /// Opens the cacher's etcd watch after the last processed RV, with progress notifications
    /// (`lister_watcher.go Watch`: `ProgressNotify: true`), on the apiserver's stream.
    fn watch_upstream(&mut self, etcd: &mut Etcd) {
        self.held = Held::default();
        let stream = *self.etcd_stream.get_or_insert_with(|| etcd.open_stream());
        let watch = WatchRequest {
            range: KeyRange::prefix(&self.prefix),
            start_revision: self.last_processed_resource_version + 1,
            prev_kv: true,
            progress_notify: true,
        };
        self.upstream = Some(etcd.watch_on_stream(stream, watch));
    }

    /// Mirrors `cacher.go terminateAllWatchers`: every watcher stops at once and its stream
    /// closes cleanly once the client has read what its result channel holds (the HTTP
    /// handler drains `result`).
    fn terminate_all_watchers(&mut self, now: SimTime) {
        let keys: Vec<StreamKey> = self.streams.keys().copied().collect();
        for key in keys {
            let stream = self.streams.get_mut(&key).expect("listed");
            stream.watcher.terminate(false);
            stream.terminated = true;
            self.pump(now, key);
        }
    }

    /// The upstream watch ended with an error that is not internal (a 410 after compaction):
    /// the reflector's ListAndWatch returns, the cache goes back to pending and re-initializes
    /// a second later (`startCaching`, `wait.Until`; SPEC §2.8).
    pub(crate) fn upstream_failed(&mut self, now: SimTime, etcd: &mut Etcd) {
        if let Some(watch) = self.upstream.take() {
            let _ = etcd.cancel_watch(watch);
        }
        self.rewatch_at = None;
        self.set_pending(now);
        self.reinit_at = Some(now + REINIT_DELAY);
        self.reinits += 1;
    }

    /// The upstream watch ended with an internal error (HTTP 500: a bad event, `PrevKv=nil`,
    /// etcd without a leader; `etcd3/watcher.go transformErrorToEvent`). Mirrors client-go
    /// `Reflector.watch`: while the streak is at most 30 s old the reflector re-watches from
    /// its last RV, and the cache stays ready without advancing; past that it re-initializes.
    pub(crate) fn upstream_internal_error(&mut self, now: SimTime, etcd: &mut Etcd) {
        if let Some(watch) = self.upstream.take() {
            let _ = etcd.cancel_watch(watch);
        }
        self.internal_errors.after_error(now);
        if self.internal_errors.should_retry(now) {
            self.rewatch_at = Some(now + REWATCH_ATTEMPT);
        } else {
            self.upstream_failed(now, etcd);
        }
    }

    /// The upstream watch closed without an error: the reflector re-watches from its last RV
    /// at once (`Reflector.watch`, `handleWatch` returning nil).
    pub(crate) fn upstream_closed(&mut self, now: SimTime, etcd: &mut Etcd) {
        if self.upstream.take().is_some() {
            self.rewatch_at = Some(now);
            self.rewatch(now, etcd);
        }
    }

    /// Every etcd request of the cacher fails until `until`; its watch ends now with an
    /// internal error.
    pub(crate) fn etcd_fails_until(&mut self, now: SimTime, until: SimTime, etcd: &mut Etcd) {
        self.etcd_failing_until = Some(until);
        if self.upstream.is_some() {
            self.upstream_internal_error(now, etcd);
        }
    }

    fn rewatch(&mut self, now: SimTime, etcd: &mut Etcd) {
        if self.rewatch_at.is_none_or(|at| at > now) || !self.is_ready() {
            return;
        }
        self.rewatch_at = None;
        if self.etcd_fails_at(now) {
            return self.upstream_internal_error(now, etcd);
        }
        self.rewatches += 1;
        self.watch_upstream(etcd);
    }

    /// Applies etcd events in order: the cache changes, then the event is dispatched. An
    /// event that does not parse ends the watch with an internal error after the ones
    /// before it. Mirrors `watchCache.processEvent` then `Cacher.processEvent`: with
    /// `incoming` full the reflector blocks, so the cache stops advancing; the rest is held,
    /// and the cacher stops reading its etcd watch until dispatch makes room.
    pub(crate) fn handle_events(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        events: &[crate::etcd::Event],
    ) {
        self.held.events.extend(events.iter().cloned());
        self.take_held(now, etcd);
    }

    /// Applies held events while `incoming` has room (then a held progress notification),
    /// and reads the etcd watch again once nothing is held.
    fn take_held(&mut self, now: SimTime, etcd: &mut Etcd) {
        let Some(watch) = self.upstream else {
            // The watch ended: a re-watch from the last processed RV delivers them again.
            self.held = Held::default();
            return;
        };
        while self.incoming.len() < INCOMING_CAPACITY {
            let Some(event) = self.held.events.pop_front() else {
                break;
            };
            match storage::parse_event(&self.prefix, &event) {
                Ok(parsed) => self.apply(now, parsed),
                Err(_) => {
                    self.dispatch_incoming(now);
                    return self.upstream_internal_error(now, etcd);
                }
            }
            self.dispatch_incoming(now);
        }
        if !self.held.events.is_empty() {
            if !self.held.stalled_etcd {
                self.held.stalled_etcd = etcd.stall_watcher(watch).is_ok();
            }
            return;
        }
        if let Some(resource_version) = self.held.progress.take() {
            self.handle_progress(resource_version);
        }
        if std::mem::take(&mut self.held.stalled_etcd) {
            let _ = etcd.resume_watcher(watch);
        }
    }

    fn apply(&mut self, now: SimTime, parsed: ParsedEvent) {
        let resource_version = parsed.object.resource_version;
        let event = match parsed.event_type {
            WatchEventType::Added => self.watch_cache.add(parsed.object, now),
            WatchEventType::Modified => self.watch_cache.update(parsed.object, now),
            _ => self.watch_cache.delete(parsed.object, now),
        };
        self.last_processed_resource_version = resource_version;
        self.incoming.push_back(event);
    }

    /// A progress notification from etcd, behind any held events.
    pub(crate) fn handle_progress_notify(&mut self, resource_version: ResourceVersion) {
        if self.held.events.is_empty() {
            self.handle_progress(resource_version);
        } else {
            self.held.progress = Some(resource_version);
        }
    }

    /// A progress notification from etcd moves the cache RV (`UpdateResourceVersion`); it is
    /// not dispatched, but later bookmarks carry it.
    fn handle_progress(&mut self, resource_version: ResourceVersion) {
        if resource_version > self.watch_cache.resource_version() {
            self.watch_cache.update_resource_version(resource_version);
            self.last_processed_resource_version = resource_version;
        }
    }

    /// Mirrors `cacher.go dispatchEvents`: events go out one at a time, in order; an event
    /// that some watcher cannot take blocks everything behind it.
    fn dispatch_incoming(&mut self, now: SimTime) {
        while self.blocked.is_none() {
            let Some(event) = self.incoming.pop_front() else {
                return;
            };
            self.dispatch_event(now, event);
        }
    }

    /// Mirrors `cacher.go dispatchEvent`: a non-blocking offer to every watcher in the event's
    /// scope (`startDispatching`); the ones that block get one shared wait, as long as the
    /// time budget allows.
    fn dispatch_event(&mut self, now: SimTime, event: WatchCacheEvent) {
        let mut waiting_for = Vec::new();
        let keys = self.live_stream_keys();
        for key in keys {
            if !self.streams[&key].watcher.is_offered(&event) {
                continue;
            }
            if self.offer(now, key, &event) == DispatchResult::Blocked {
                waiting_for.push(key);
            }
        }
        if waiting_for.is_empty() {
            return;
        }
        let budget = self.time_budget.take_available(now);
        self.blocked = Some(BlockedDispatch {
            event,
            waiting_for,
            deadline: now + budget,
            budget,
        });
    }

    /// The streams events and bookmarks still go to (not terminated ones).
    fn live_stream_keys(&self) -> Vec<StreamKey> {
        let live = self.streams.iter().filter(|(_, stream)| !stream.terminated);
        live.map(|(key, _)| *key).collect()
    }

    fn offer(&mut self, now: SimTime, key: StreamKey, event: &WatchCacheEvent) -> DispatchResult {
        let stream = self
            .streams
            .get_mut(&key)
            .expect("offered to an open stream");
        let result = stream.watcher.dispatch(event);
        self.pump(now, key);
        result
    }

    /// A blocked watcher's client read again: retry the blocked event for the watchers still
    /// waiting, and go on dispatching once all took it.
    pub(crate) fn retry_blocked(&mut self, now: SimTime, etcd: &mut Etcd) {
        let Some(mut blocked) = self.blocked.take() else {
            return;
        };
        let waiting = std::mem::take(&mut blocked.waiting_for);
        for key in waiting {
            if self.streams.contains_key(&key)
                && self.offer(now, key, &blocked.event) == DispatchResult::Blocked
            {
                blocked.waiting_for.push(key);
            }
        }
        if blocked.waiting_for.is_empty() {
            let unused = blocked.deadline.saturating_since(now).min(blocked.budget);
            self.time_budget.return_unused(now, unused);
            self.dispatch_incoming(now);
            self.take_held(now, etcd);
        } else {
            self.blocked = Some(blocked);
        }
    }

    /// The cacher's timers: re-initialize, re-watch etcd, let handlers write, and terminate
    /// the watchers that stayed blocked for the whole budget (closed without an ERROR event;
    /// `forget(graceful)`).
    pub(crate) fn handle_timeout(&mut self, now: SimTime, etcd: &mut Etcd) {
        if self.reinit_at.is_some_and(|at| at <= now) {
            self.initialize(now, etcd);
        }
        self.rewatch(now, etcd);
        self.write_due(now, etcd);
        if self
            .blocked
            .as_ref()
            .is_some_and(|blocked| blocked.deadline <= now)
        {
            let blocked = self.blocked.take().expect("checked");
            for key in blocked.waiting_for {
                let Some(mut stream) = self.streams.remove(&key) else {
                    continue;
                };
                // `forget(graceful)` removes the watcher from dispatch either way; a graceful
                // one (its watch-list bookmark buffered, unsent) first drains its input.
                let graceful = stream.watcher.should_drain_when_blocked();
                let initial_events_left = stream.watcher.has_initial_events_left();
                stream.watcher.terminate(graceful);
                stream.terminated = true;
                self.notices.push_back(CacherNotice::SlowTerminated {
                    initial_events_left,
                    graceful,
                });
                self.streams.insert(key, stream);
                self.pump(now, key);
            }
            self.dispatch_incoming(now);
            self.take_held(now, etcd);
        }
    }

    /// Sends what a stream has for its client, as fast as its handler writes, if the client
    /// reads; a finished stream closes (`serveWatch` ends when `result` is closed and empty).
    pub(crate) fn pump(&mut self, now: SimTime, key: StreamKey) {
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.write_at = None;
        loop {
            while stream.result.len() < stream.result_capacity {
                let Some(event) = stream.watcher.pop_output(&self.watch_cache) else {
                    break;
                };
                stream.result.push_back(event);
            }
            if !stream.reading || stream.result.is_empty() {
                break;
            }
            let allowance = stream.writer.allowance(now);
            if allowance == 0 {
                stream.write_at = Some(stream.writer.next_write(now));
                break;
            }
            let count = allowance.min(stream.result.len());
            stream.writer.wrote(count);
            for event in stream.result.drain(..count) {
                self.messages
                    .push_back((key.client, ServerMessage::WatchEvent { id: key.id, event }));
            }
        }
        if stream.watcher.is_finished() && stream.result.is_empty() {
            self.intervals_invalidated += u64::from(stream.watcher.is_invalidated());
            self.streams.remove(&key);
            self.notices.push_back(CacherNotice::Closed(key));
        }
    }

    /// The handlers that may write again write, and the dispatcher retries what the room they
    /// made lets through.
    fn write_due(&mut self, now: SimTime, etcd: &mut Etcd) {
        let due = due_writes(now, self.streams.iter().map(|(key, s)| (key, s.write_at)));
        for key in due {
            self.pump(now, key);
        }
        self.retry_blocked(now, etcd);
    }

    /// The bookmark timer (`startDispatchingBookmarkEventsLocked`): every watcher whose
    /// bookmark is due gets one at the last processed RV.
    pub(crate) fn bookmark_tick(&mut self, now: SimTime) {
        if self.blocked.is_some() || !self.is_ready() {
            return;
        }
        let resource_version = self.last_processed_resource_version;
        let keys = self.live_stream_keys();
        for key in keys {
            let stream = self.streams.get_mut(&key).expect("listed");
            stream.watcher.on_bookmark_tick(now, resource_version);
            self.pump(now, key);
        }
    }

    /// Ends a stream at its deadline or at the client's request (no message to the client).
    pub(crate) fn remove_stream(&mut self, key: StreamKey) -> bool {
        let Some(mut stream) = self.streams.remove(&key) else {
            return false;
        };
        stream.watcher.terminate(false);
        if let Some(blocked) = self.blocked.as_mut() {
            blocked.waiting_for.retain(|waiting| *waiting != key);
        }
        true
    }

    /// The cache stops serving at `now`, unless it already had.
    fn set_pending(&mut self, now: SimTime) {
        if self.is_ready() {
            self.readiness = Readiness::Pending { since: now };
        }
    }

    /// A 429 for requests that need a ready cache, with the `Retry-After` its downtime
    /// suggests (`cacher.go Watch`, `calculateRetryAfterForUnreadyCache`).
    pub(crate) fn not_ready_status(&self, now: SimTime) -> Status {
        let since = match self.readiness {
            Readiness::Pending { since } => since,
            Readiness::Ready { .. } => now,
        };
        Status {
            retry_after_seconds: Some(retry_after_for_unready_cache(now.saturating_since(since))),
            ..Status::new(
                crate::api::StatusReason::TooManyRequests,
                "storage is (re)initializing",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_grows_with_the_downtime_as_e_to_the_0_06_s_between_1_and_30() {
        for millis in (0..70_000).step_by(250) {
            let expected = (0.06 * millis as f64 / 1000.0).exp().clamp(1.0, 30.0) as u64;
            let got = retry_after_for_unready_cache(SimDuration(millis));
            assert_eq!(got, expected, "downtime {millis} ms");
        }
        assert_eq!(retry_after_for_unready_cache(SimDuration::ZERO), 1);
        assert_eq!(
            retry_after_for_unready_cache(SimDuration::from_secs(600)),
            30
        );
    }
}
