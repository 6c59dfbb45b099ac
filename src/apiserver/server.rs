//! One kube-apiserver: it answers list and watch requests from the watch cache or from etcd
//! (`pkg/storage/cacher/delegator`, `cacher.go Watch`, `etcd3/watcher.go`; SPEC §2.4, §2.5).
//!
//! Inputs: client messages, etcd watch responses and timeouts. Outputs: messages for clients
//! ([`Apiserver::poll_message`]) and the next timer ([`Apiserver::poll_timeout`]).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::api::{
    ListOptions, ListResponse, RequestError, ResourceVersionParam, ServerMessage, Status,
    StatusReason, WatchEvent, WatchOptions,
};
use crate::apiserver::cache_watcher::{CacheWatcher, CacheWatcherConfig, WatchFilter, WatchStart};
use crate::apiserver::cacher::{
    CachedStream, Cacher, CacherNotice, Readiness, StreamKey, due_writes,
};
use crate::apiserver::event::WatchCacheEvent;
use crate::apiserver::list::{self, ListSource};
use crate::apiserver::storage::{self, EtcdListRequest};
use crate::apiserver::watch_cache::WatchCacheConfig;
use crate::apiserver::watch_writer::{DEFAULT_WATCH_EVENTS_PER_MS, WatchWriter};
use crate::bug::Bugs;
use crate::etcd::{Etcd, KeyRange, WatchId, WatchRequest, WatchResponse, WatchResponseKind};
use crate::object::ResourceVersion;
use crate::sim::{RngStream, SimDuration, SimTime};

/// How long a read waits for the cache to catch up (`blockTimeout`, 3 s).
const FRESHNESS_WAIT: SimDuration = SimDuration::from_secs(3);
/// How often progress is requested from etcd while reads wait (`watch_progress.go`, 100 ms).
const PROGRESS_REQUEST_PERIOD: SimDuration = SimDuration::from_millis(100);
/// The bookmark timer's period (1 s, plus a jitter of up to 25%).
const BOOKMARK_TICK: SimDuration = SimDuration::from_secs(1);
/// How often the cacher's compactor reads etcd's compact revision and drops the snapshots
/// below it (`compactorPollPeriod`).
const SNAPSHOT_COMPACTION_PERIOD: SimDuration = SimDuration::from_secs(15);
/// A watch without `timeoutSeconds` lasts uniformly [1800 s, 3600 s] (`minRequestTimeout`).
const SERVER_WATCH_TIMEOUT_MIN: SimDuration = SimDuration::from_secs(1800);

/// One apiserver's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiserverConfig {
    /// Serve from the watch cache; off: every request goes to etcd (SPEC §2.1).
    pub watch_cache: bool,
    /// Answer a too-old watch with an HTTP 410 status instead of a 200 stream carrying an
    /// ERROR event (a fault form some proxies and fakes produce).
    pub http_410_watch_errors: bool,
    /// While a read waits for the cache to be fresh, ask etcd for progress every 100 ms
    /// (kube-apiserver >= 1.28 `progress.conditionalProgressRequester`, KEP-2340). Off: an
    /// older apiserver whose cache advances only on this resource's events and periodic
    /// progress notifications, so a quiet resource's cache stays below the global revision
    /// (SPEC §8 B14).
    pub progress_requests: bool,
    /// How many events one watch's handler writes to its client per millisecond (encoding
    /// and the network; `serveWatch`): a large initial state takes time to send.
    pub watch_events_per_ms: usize,
    /// Sizes no real apiserver has. TEST ONLY.
    pub test_only: TestOnlySizes,
}

impl Default for ApiserverConfig {
    fn default() -> Self {
        ApiserverConfig {
            watch_cache: true,
            http_410_watch_errors: false,
            progress_requests: true,
            watch_events_per_ms: DEFAULT_WATCH_EVENTS_PER_MS,
            test_only: TestOnlySizes::default(),
        }
    }
}

/// TEST ONLY: sizes that no real apiserver has, which a scenario sets to reach corners that
/// upstream's sizes make rare within a short run (evictions from the history, dispatches that
/// block). Unset, the apiserver sizes both as upstream does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestOnlySizes {
    /// A fixed watch-cache history of this many events. Upstream's history always resizes
    /// between 100 and 102,400 events to keep at least 75 s (`watch_cache_history.go`).
    pub history_capacity: Option<usize>,
    /// Each cache watcher's input and result buffers. Upstream sizes them when the watch is
    /// created from the history's capacity: 10 to 100 events (`suggestedWatchChannelSize`).
    pub watcher_buffer: Option<usize>,
}

/// Counts of what an apiserver did, for sweep summaries and coverage probes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApiserverStats {
    /// 410 Expired answers (lists and watches).
    pub expired: u64,
    /// 504 Too large resource version answers.
    pub too_large: u64,
    /// 429 answers while the cache was (re)initializing.
    pub not_ready: u64,
    /// Consistent lists that timed out waiting for the cache and went to etcd.
    pub etcd_fallbacks: u64,
    /// Slow watchers terminated by the dispatcher.
    pub slow_terminations: u64,
    /// Cache re-initializations after an upstream failure.
    pub reinits: u64,
    /// Re-watches of the cacher after an internal error, the cache staying ready.
    pub cache_rewatches: u64,
    /// List pages served from the cache with a continue token.
    pub cache_pages: u64,
    /// Exact-RV and continue lists that waited 3 s for a lagging cache and got 504.
    pub snapshot_timeouts: u64,
    /// Watches served from etcd whose full buffers stopped them reading etcd (F9).
    pub direct_watches_behind: u64,
    /// Cache watchers closed silently because the history dropped events of their interval
    /// before they were sent (F10).
    pub intervals_invalidated: u64,
    /// Slow watchers terminated while they still had initial events to send (F4).
    pub initial_events_cut_offs: u64,
    /// Slow watchers terminated gracefully: their watch-list's end bookmark was buffered, so
    /// they drain their input before closing (F4).
    pub graceful_drains: u64,
}

impl ApiserverStats {
    /// Adds another apiserver's counts.
    pub fn add(&mut self, other: &ApiserverStats) {
        self.expired += other.expired;
        self.too_large += other.too_large;
        self.not_ready += other.not_ready;
        self.etcd_fallbacks += other.etcd_fallbacks;
        self.slow_terminations += other.slow_terminations;
        self.reinits += other.reinits;
        self.cache_rewatches += other.cache_rewatches;
        self.cache_pages += other.cache_pages;
        self.snapshot_timeouts += other.snapshot_timeouts;
        self.direct_watches_behind += other.direct_watches_behind;
        self.intervals_invalidated += other.intervals_invalidated;
        self.initial_events_cut_offs += other.initial_events_cut_offs;
        self.graceful_drains += other.graceful_drains;
    }
}

/// How many events a watch served straight from etcd holds for a client that does not read:
/// the etcd3 watcher's incoming and result channels (`incomingBufSize`, `outgoingBufSize`,
/// 100 each). Beyond that it stops reading its etcd watch, which falls behind (etcd's own
/// buffers are not modelled).
const DIRECT_WATCH_BUFFERED_MAX: usize = 200;

/// A stream served straight from etcd (no cache).
#[derive(Clone, Debug)]
struct DirectStream {
    etcd_watch: WatchId,
    filter: WatchFilter,
    deadline: SimTime,
    reading: bool,
    pending: VecDeque<WatchEvent>,
    /// Its etcd watch is not read: the buffers are full (`sendEvent` blocks).
    etcd_stalled: bool,
    /// The handler's write pace.
    writer: WatchWriter,
    /// When the handler may write again, if it has more to send.
    write_at: Option<SimTime>,
    /// Its etcd watch ended with an error: the stream closes once `pending` is sent.
    closing: bool,
}

/// A read waiting for the cache to reach `required`.
#[derive(Clone, Debug)]
struct WaitingRead {
    key: StreamKey,
    required: ResourceVersion,
    deadline: SimTime,
    request: WaitingRequest,
}

#[derive(Clone, Debug)]
enum WaitingRequest {
    List {
        options: ListOptions,
        source: ListSource,
    },
    WatchList {
        options: WatchOptions,
        /// The cache's ready generation when the watch arrived (k/k#116122).
        generation: u64,
    },
}

/// One kube-apiserver serving one resource.
#[derive(Clone, Debug)]
pub struct Apiserver {
    config: ApiserverConfig,
    /// Planted bugs of the watch cache and its watchers (SPEC §8 B9, B10).
    bugs: Bugs,
    prefix: String,
    cacher: Option<Cacher>,
    direct: BTreeMap<StreamKey, DirectStream>,
    waiting: Vec<WaitingRead>,
    outbox: VecDeque<(usize, ServerMessage)>,
    rng: RngStream,
    bookmark_tick_at: SimTime,
    progress_request_at: Option<SimTime>,
    /// The cacher's compactor's next poll (`ListFromCacheSnapshot`).
    snapshot_compaction_at: SimTime,
    stats: ApiserverStats,
}

impl Apiserver {
    /// An apiserver for the resource under `prefix`; its cache initializes at once.
    pub fn new(
        config: ApiserverConfig,
        prefix: &str,
        now: SimTime,
        rng: RngStream,
        bugs: Bugs,
    ) -> Apiserver {
        let cacher = config.watch_cache.then(|| {
            let cache_config = config
                .test_only
                .history_capacity
                .map_or_else(WatchCacheConfig::default, WatchCacheConfig::fixed_for_tests);
            Cacher::new(prefix, cache_config, now, bugs)
        });
        Apiserver {
            config,
            bugs,
            prefix: prefix.to_owned(),
            cacher,
            direct: BTreeMap::new(),
            waiting: Vec::new(),
            outbox: VecDeque::new(),
            rng,
            bookmark_tick_at: now + BOOKMARK_TICK,
            progress_request_at: None,
            snapshot_compaction_at: now + SNAPSHOT_COMPACTION_PERIOD,
            stats: ApiserverStats::default(),
        }
    }

    /// The process restarts: every stream and waiting read is gone (clients see their
    /// connections break), and the cache starts over, initializing at `ready_at`.
    pub fn restart(&mut self, now: SimTime, ready_at: SimTime, etcd: &mut Etcd) {
        let reinits = self.cacher.as_ref().map_or(0, |cacher| cacher.reinits);
        for watch in self.direct.values().map(|stream| stream.etcd_watch) {
            let _ = etcd.cancel_watch(watch);
        }
        if let Some(watch) = self.cacher.as_ref().and_then(Cacher::upstream_watch) {
            let _ = etcd.cancel_watch(watch);
        }
        let config = self.config.clone();
        let mut stats = std::mem::take(&mut self.stats);
        self.add_cacher_counts(&mut stats);
        *self = Apiserver::new(
            config,
            &self.prefix.clone(),
            now,
            self.rng.clone(),
            self.bugs,
        );
        self.stats = stats;
        if let Some(cacher) = self.cacher.as_mut() {
            cacher.restart_at(ready_at, reinits + 1);
        }
    }

    /// The cacher's etcd watch ends with an error that is not internal (a 410 after
    /// compaction): the cache re-initializes (SPEC §2.8).
    pub fn fail_cache_upstream(&mut self, now: SimTime, etcd: &mut Etcd) {
        if let Some(cacher) = self.cacher.as_mut()
            && cacher.upstream_watch().is_some()
        {
            cacher.upstream_failed(now, etcd);
        }
    }

    /// The cacher's etcd member loses its leader until `until`: its watch ends with an
    /// internal error and every re-watch or list of the cacher fails the same way meanwhile.
    /// The cache stays ready and frozen for up to 30 s, then re-initializes (SPEC §2.8).
    /// Requests the delegator sends to etcd are not affected (a simplification).
    pub fn break_cache_watch(&mut self, now: SimTime, until: SimTime, etcd: &mut Etcd) {
        if let Some(cacher) = self.cacher.as_mut() {
            cacher.etcd_fails_until(now, until, etcd);
        }
    }

    /// The cacher's etcd watch (to stall it: an unsynced watcher that compaction can overtake).
    pub fn cache_upstream_watch(&self) -> Option<WatchId> {
        self.cacher.as_ref().and_then(Cacher::upstream_watch)
    }

    /// What this apiserver did so far.
    pub fn stats(&self) -> ApiserverStats {
        let mut stats = self.stats.clone();
        stats.reinits = self.cacher.as_ref().map_or(0, |cacher| cacher.reinits);
        self.add_cacher_counts(&mut stats);
        stats
    }

    /// Adds what the cacher counts itself (kept across a restart, which replaces the cacher).
    fn add_cacher_counts(&self, stats: &mut ApiserverStats) {
        if let Some(cacher) = self.cacher.as_ref() {
            stats.cache_rewatches += cacher.rewatches;
            stats.intervals_invalidated += cacher.intervals_invalidated;
        }
    }

    /// The cache's resource version (`None` without a cache).
    pub fn cache_resource_version(&self) -> Option<ResourceVersion> {
        self.cacher
            .as_ref()
            .map(|cacher| cacher.watch_cache.resource_version())
    }

    /// Whether the cache can serve (`ready.go`); `None` without a cache.
    pub fn cache_ready(&self) -> Option<bool> {
        self.cacher.as_ref().map(Cacher::is_ready)
    }

    /// Whether the cache serves (or there is none) and `client` has a watch stream here that
    /// no error or termination is ending: a healthy watch, from the server's side.
    pub fn serves_open_watch_of(&self, client: usize) -> bool {
        let Some(cacher) = self.cacher.as_ref() else {
            return self
                .direct
                .iter()
                .any(|(key, stream)| key.client == client && !stream.closing);
        };
        cacher.is_ready()
            && cacher
                .streams
                .iter()
                .any(|(key, stream)| key.client == client && !stream.terminated)
    }

    /// Whether etcd watch `id` belongs to this apiserver.
    pub fn owns_etcd_watch(&self, id: WatchId) -> bool {
        self.cacher
            .as_ref()
            .is_some_and(|cacher| cacher.upstream_watch() == Some(id))
            || self.direct.values().any(|stream| stream.etcd_watch == id)
    }

    /// The next message for a client.
    pub fn poll_message(&mut self) -> Option<(usize, ServerMessage)> {
        self.collect_cacher_output();
        self.outbox.pop_front()
    }

    /// When [`Apiserver::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let cacher = self.cacher.as_ref();
        let bookmarks = cacher
            .filter(|cacher| !cacher.streams.is_empty())
            .map(|_| self.bookmark_tick_at);
        let deadlines = cacher
            .into_iter()
            .flat_map(|cacher| cacher.streams.values())
            .flat_map(|stream| [Some(stream.deadline), stream.write_at])
            .chain(
                self.direct
                    .values()
                    .flat_map(|stream| [Some(stream.deadline), stream.write_at]),
            )
            .flatten()
            .chain(self.waiting.iter().map(|read| read.deadline));
        [
            cacher.and_then(Cacher::next_timeout),
            bookmarks,
            self.progress_request_at,
            cacher.map(|_| self.snapshot_compaction_at),
        ]
        .into_iter()
        .flatten()
        .chain(deadlines)
        .min()
    }

    /// Handles one request from `client`.
    pub fn handle_client_message(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        client: usize,
        message: crate::api::ClientMessage,
    ) {
        match message {
            crate::api::ClientMessage::List { id, options } => {
                self.list(now, etcd, StreamKey { client, id }, options)
            }
            crate::api::ClientMessage::Watch { id, options } => {
                self.watch(now, etcd, StreamKey { client, id }, options)
            }
            crate::api::ClientMessage::StopWatch { id } => {
                self.stop_stream(etcd, StreamKey { client, id })
            }
        }
    }

    /// The client's connection broke: its streams and waiting reads go away.
    pub fn client_disconnected(&mut self, etcd: &mut Etcd, client: usize) {
        let keys: Vec<StreamKey> = self
            .stream_keys()
            .filter(|key| key.client == client)
            .collect();
        for key in keys {
            self.stop_stream(etcd, key);
        }
        self.waiting.retain(|read| read.key.client != client);
    }

    fn stream_keys(&self) -> impl Iterator<Item = StreamKey> + '_ {
        let cached = self
            .cacher
            .iter()
            .flat_map(|cacher| cacher.streams.keys().copied());
        cached.chain(self.direct.keys().copied())
    }

    /// The client stops (`false`) or resumes (`true`) reading a stream: a slow consumer.
    pub fn set_client_reading(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        client: usize,
        reading: bool,
    ) {
        if let Some(cacher) = self.cacher.as_mut() {
            let keys: Vec<StreamKey> = cacher
                .streams
                .keys()
                .copied()
                .filter(|key| key.client == client)
                .collect();
            for key in keys {
                cacher.streams.get_mut(&key).expect("listed").reading = reading;
                cacher.pump(now, key);
            }
            cacher.retry_blocked(now, etcd);
        }
        let keys: Vec<StreamKey> = self
            .direct
            .keys()
            .copied()
            .filter(|key| key.client == client)
            .collect();
        for key in keys {
            self.direct.get_mut(&key).expect("listed").reading = reading;
            self.pump_direct(now, etcd, key);
        }
    }

    fn stop_stream(&mut self, etcd: &mut Etcd, key: StreamKey) {
        if let Some(cacher) = self.cacher.as_mut()
            && cacher.remove_stream(key)
        {
            return;
        }
        if let Some(stream) = self.direct.remove(&key) {
            let _ = etcd.cancel_watch(stream.etcd_watch);
        }
        self.waiting.retain(|read| read.key != key);
    }

    fn reply_list(&mut self, key: StreamKey, result: Result<ListResponse, Status>) {
        if let Err(status) = &result {
            match status.reason {
                StatusReason::Expired => self.stats.expired += 1,
                StatusReason::Timeout => self.stats.too_large += 1,
                StatusReason::TooManyRequests => self.stats.not_ready += 1,
                StatusReason::InternalError | StatusReason::BadRequest => {}
            }
        }
        let result = result.map_err(RequestError::Status);
        self.outbox
            .push_back((key.client, ServerMessage::List { id: key.id, result }));
    }

    /// `CacheDelegator.GetList` (SPEC §2.4): validation, the delegator's decision, KEP-4568's
    /// delegation while the cache is not ready, then a cache read once it is fresh enough.
    fn list(&mut self, now: SimTime, etcd: &mut Etcd, key: StreamKey, options: ListOptions) {
        if let Err(status) = list::validate(&options) {
            return self.reply_list(key, Err(status));
        }
        let Some(cacher) = self.cacher.as_ref() else {
            return self.list_from_etcd(etcd, key, &options);
        };
        let source =
            list::list_source(&cacher.watch_cache, &options, self.config.progress_requests);
        if source == ListSource::Etcd {
            return self.list_from_etcd(etcd, key, &options);
        }
        if !cacher.is_ready() {
            // `shouldDelegateListOnNotReadyCache`: unfiltered lists with a limit.
            let unfiltered = options.label_selector.is_none() && options.field_selector.is_none();
            if options.limit > 0 && unfiltered {
                return self.list_from_etcd(etcd, key, &options);
            }
            return self.reply_list(key, Err(cacher.not_ready_status(now)));
        }
        let required = match (source, options.resource_version) {
            (ListSource::CacheExact(resource_version), _) => resource_version,
            _ if list::is_consistent_read(&options, source) => etcd.revision(),
            (_, ResourceVersionParam::At(resource_version)) => resource_version,
            _ => 0,
        };
        let request = WaitingRequest::List { options, source };
        self.read_when_fresh(
            now,
            etcd,
            WaitingRead {
                key,
                required,
                deadline: now + FRESHNESS_WAIT,
                request,
            },
        );
    }

    /// The etcd3 store answers with the request's own options (`etcd3/store.go GetList`).
    fn list_from_etcd(&mut self, etcd: &Etcd, key: StreamKey, options: &ListOptions) {
        let result = list::etcd_get_list(etcd, &self.prefix, options);
        self.reply_list(key, result);
    }

    /// Serves `read` now if the cache is at least at its required RV, else parks it and asks
    /// etcd for progress every 100 ms (`waitUntilFreshAndBlock`, SPEC §2.9).
    fn read_when_fresh(&mut self, now: SimTime, etcd: &Etcd, read: WaitingRead) {
        let cacher = self.cacher.as_ref().expect("only cached reads wait");
        if cacher.watch_cache.resource_version() >= read.required {
            return self.complete_read(now, etcd, read);
        }
        self.waiting.push(read);
        if self.config.progress_requests && self.progress_request_at.is_none() {
            self.progress_request_at = Some(now);
        }
    }

    fn complete_read(&mut self, now: SimTime, etcd: &Etcd, read: WaitingRead) {
        let (options, source) = match read.request {
            WaitingRequest::List { options, source } => (options, source),
            WaitingRequest::WatchList {
                options,
                generation,
            } => {
                // `Cacher.Watch`: a watch that waited across a re-initialization is closed at
                // once instead of registered on the new generation (k/k#116122).
                let cacher = self.cacher.as_ref().expect("cached watch-list");
                if cacher.readiness != (Readiness::Ready { generation }) {
                    return self.outbox.push_back((
                        read.key.client,
                        ServerMessage::WatchClosed { id: read.key.id },
                    ));
                }
                return self.start_cached_watch_list(now, read.key, options, read.required);
            }
        };
        let cache = &self.cacher.as_ref().expect("cached read").watch_cache;
        let listed = match source {
            ListSource::CacheExact(resource_version) => cache
                .list_at(resource_version)
                .ok()
                .map(|items| (items, resource_version)),
            _ => Some(cache.list()),
        };
        // A snapshot gone while the read waited is `Expired`, which the delegator sends to
        // etcd (`CacheDelegator.GetList`).
        let Some((items, resource_version)) = listed else {
            return self.list_from_etcd(etcd, read.key, &options);
        };
        let page = list::cache_page(items, resource_version, &options);
        self.stats.cache_pages += u64::from(page.continue_token.is_some());
        self.reply_list(read.key, Ok(page));
    }

    /// A read's 3 s are up: a consistent list falls back to etcd; the others get 504
    /// (`waitUntilFreshLocked`, `CacheDelegator.GetList`).
    fn expire_read(&mut self, etcd: &mut Etcd, read: WaitingRead) {
        let too_large = || Status::too_large_resource_version();
        match read.request {
            WaitingRequest::List { options, source }
                if list::is_consistent_read(&options, source) =>
            {
                self.stats.etcd_fallbacks += 1;
                self.list_from_etcd(etcd, read.key, &options);
            }
            WaitingRequest::List { source, .. } => {
                if matches!(source, ListSource::CacheExact(_)) {
                    self.stats.snapshot_timeouts += 1;
                }
                self.reply_list(read.key, Err(too_large()));
            }
            WaitingRequest::WatchList { .. } => {
                self.stats.too_large += 1;
                self.fail_watch_with_event(read.key, too_large());
            }
        }
    }

    /// An error after the watch request was accepted: one ERROR event, then the stream ends.
    fn fail_watch_with_event(&mut self, key: StreamKey, status: Status) {
        self.outbox.push_back((
            key.client,
            ServerMessage::WatchEvent {
                id: key.id,
                event: WatchEvent::Error(status),
            },
        ));
        self.outbox
            .push_back((key.client, ServerMessage::WatchClosed { id: key.id }));
    }

    fn reject_watch(&mut self, key: StreamKey, status: Status) {
        self.outbox.push_back((
            key.client,
            ServerMessage::WatchRejected {
                id: key.id,
                error: RequestError::Status(status),
            },
        ));
    }

    fn watch_deadline(&mut self, now: SimTime, options: &WatchOptions) -> SimTime {
        let timeout = options.timeout_ms.map(SimDuration).unwrap_or_else(|| {
            let min = SERVER_WATCH_TIMEOUT_MIN.as_millis();
            SimDuration(self.rng.between(min, 2 * min))
        });
        now + timeout
    }

    /// `cacher.go Watch` (SPEC §2.5), or the etcd3 watcher without a cache.
    fn watch(&mut self, now: SimTime, etcd: &mut Etcd, key: StreamKey, options: WatchOptions) {
        let Some(cacher) = self.cacher.as_ref() else {
            return self.watch_without_cache(now, etcd, key, options);
        };
        if !cacher.is_ready() {
            self.stats.not_ready += 1;
            return self.reject_watch(key, cacher.not_ready_status(now));
        }
        let cache_rv = cacher.watch_cache.resource_version();
        if options.send_initial_events && !self.config.progress_requests {
            // `Cacher.Watch`: a watch-list needs `RequestWatchProgress`; the error watcher's
            // one ERROR event makes client-go fall back to a list.
            let refused = Status::new(
                StatusReason::InternalError,
                "a watch stream was requested by the client but the required storage feature \
                 RequestWatchProgress is disabled",
            );
            return self.fail_watch_with_event(key, refused);
        }
        if options.send_initial_events {
            let required = match options.resource_version {
                ResourceVersionParam::Unset => etcd.revision(),
                ResourceVersionParam::Zero => cache_rv,
                ResourceVersionParam::At(revision) => revision,
            };
            let read = WaitingRead {
                key,
                required,
                deadline: now + FRESHNESS_WAIT,
                request: WaitingRequest::WatchList {
                    options,
                    generation: cacher.generation(),
                },
            };
            return self.read_when_fresh(now, etcd, read);
        }
        let start = match options.resource_version {
            ResourceVersionParam::At(revision) => {
                match cacher.watch_cache.history_interval(revision) {
                    Ok(interval) => WatchStart::from_history(revision, interval),
                    Err(too_old) => {
                        self.stats.expired += 1;
                        return if self.config.http_410_watch_errors {
                            self.reject_watch(key, too_old.to_status())
                        } else {
                            self.fail_watch_with_event(key, too_old.to_status())
                        };
                    }
                }
            }
            ResourceVersionParam::Zero | ResourceVersionParam::Unset => {
                WatchStart::initial_state(cache_rv, cacher.watch_cache.initial_events(now))
            }
        };
        self.add_cached_stream(now, key, &options, start);
    }

    fn start_cached_watch_list(
        &mut self,
        now: SimTime,
        key: StreamKey,
        options: WatchOptions,
        required: ResourceVersion,
    ) {
        let cacher = self.cacher.as_ref().expect("cached watch-list");
        let snapshot_rv = cacher.watch_cache.resource_version();
        let events = cacher.watch_cache.initial_events(now);
        // Only a client that allows bookmarks gets the initial-events-end bookmark
        // (`isListWatchRequest`); without, it gets the state and then live events.
        let start = if options.allow_watch_bookmarks {
            WatchStart::watch_list(snapshot_rv, events, required.max(1))
        } else {
            WatchStart::initial_state(snapshot_rv, events)
        };
        self.add_cached_stream(now, key, &options, start);
    }

    fn add_cached_stream(
        &mut self,
        now: SimTime,
        key: StreamKey,
        options: &WatchOptions,
        start: WatchStart,
    ) {
        let deadline = self.watch_deadline(now, options);
        let cacher = self.cacher.as_mut().expect("cached watch");
        let filter = WatchFilter::of_watch(options);
        let trigger_used = filter.trigger_value().is_some();
        let buffer = self.config.test_only.watcher_buffer.unwrap_or_else(|| {
            cacher
                .watch_cache
                .suggested_watch_channel_size(trigger_used)
        });
        let config = CacheWatcherConfig {
            filter,
            allow_watch_bookmarks: options.allow_watch_bookmarks,
            deadline: Some(deadline),
            input_capacity: buffer,
            ..CacheWatcherConfig::default()
        };
        let watcher = CacheWatcher::new(config, start, now, self.bugs);
        let writer = WatchWriter::new(self.config.watch_events_per_ms);
        let stream = CachedStream::new(watcher, deadline, buffer, writer);
        cacher.streams.insert(key, stream);
        cacher.pump(now, key);
    }

    /// The etcd3 watcher (`watchChan.startWatching`): RV=N watches etcd from N+1; RV 0 or ""
    /// (or initial events) lists first and sends the state as ADDED events.
    fn watch_without_cache(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        key: StreamKey,
        options: WatchOptions,
    ) {
        let filter = WatchFilter::of_watch(&options);
        let mut pending = VecDeque::new();
        let start_revision = match options.resource_version {
            ResourceVersionParam::At(revision) if !options.send_initial_events => revision + 1,
            // `startWatching`: a watch-list from an RV etcd has not reached is too large.
            ResourceVersionParam::At(revision) if revision > etcd.revision() => {
                self.stats.too_large += 1;
                let error = Status::too_large_resource_version();
                return self.fail_watch_with_event(key, error);
            }
            _ => {
                let request = EtcdListRequest {
                    revision: 0,
                    limit: 0,
                    after_key: None,
                };
                let list = match storage::list(etcd, &self.prefix, &request) {
                    Ok(list) => list,
                    Err(status) => return self.fail_watch_with_event(key, status),
                };
                pending.extend(
                    list.items
                        .into_iter()
                        .filter(|object| filter.matches(object))
                        .map(WatchEvent::Added),
                );
                if options.send_initial_events && options.allow_watch_bookmarks {
                    pending.push_back(WatchEvent::Bookmark {
                        resource_version: list.resource_version,
                        initial_events_end: true,
                    });
                }
                list.resource_version + 1
            }
        };
        // Only the cacher's own watch asks etcd for progress notifications
        // (`lister_watcher.go Watch`); a client's etcd3 watch has no way to (`startWatching`),
        // so it gets no heartbeat bookmarks, only the watch-list end marker above.
        let request = WatchRequest {
            range: KeyRange::prefix(&self.prefix),
            start_revision,
            prev_kv: true,
            progress_notify: false,
        };
        let etcd_watch = etcd.watch(request);
        let deadline = self.watch_deadline(now, &options);
        let stream = DirectStream {
            etcd_watch,
            filter,
            deadline,
            reading: true,
            pending,
            etcd_stalled: false,
            writer: WatchWriter::new(self.config.watch_events_per_ms),
            write_at: None,
            closing: false,
        };
        self.direct.insert(key, stream);
        self.pump_direct(now, etcd, key);
    }

    /// Sends what a direct stream holds to a reading client, as fast as its handler writes,
    /// and reads its etcd watch again once there is room; a stream that holds more than its
    /// buffers (a client that does not read, or a large initial state still going out) stops
    /// reading etcd (`watchChan.sendEvent`, `queueEvent` block).
    fn pump_direct(&mut self, now: SimTime, etcd: &mut Etcd, key: StreamKey) {
        let Some(stream) = self.direct.get_mut(&key) else {
            return;
        };
        stream.write_at = None;
        if stream.reading && !stream.pending.is_empty() {
            let count = stream.writer.allowance(now).min(stream.pending.len());
            stream.writer.wrote(count);
            for event in stream.pending.drain(..count) {
                self.outbox
                    .push_back((key.client, ServerMessage::WatchEvent { id: key.id, event }));
            }
            if !stream.pending.is_empty() {
                stream.write_at = Some(stream.writer.next_write(now));
            }
        }
        if stream.closing {
            if stream.pending.is_empty() {
                self.direct.remove(&key);
                self.outbox
                    .push_back((key.client, ServerMessage::WatchClosed { id: key.id }));
            }
            return;
        }
        let full = stream.pending.len() >= DIRECT_WATCH_BUFFERED_MAX;
        if full && !stream.etcd_stalled {
            stream.etcd_stalled = etcd.stall_watcher(stream.etcd_watch).is_ok();
            self.stats.direct_watches_behind += u64::from(stream.etcd_stalled);
        } else if !full && stream.etcd_stalled {
            stream.etcd_stalled = false;
            let _ = etcd.resume_watcher(stream.etcd_watch);
        }
    }

    /// A direct stream's etcd watch failed: the client gets what the buffers hold, then the
    /// error event, then the close (`watchChan.run`: the error goes into `resultChan` behind
    /// the events already there).
    fn end_direct_with_error(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        key: StreamKey,
        status: Status,
    ) {
        let stream = self.direct.get_mut(&key).expect("an open direct stream");
        let _ = etcd.cancel_watch(stream.etcd_watch);
        stream.etcd_stalled = false;
        stream.pending.push_back(WatchEvent::Error(status));
        stream.closing = true;
        self.pump_direct(now, etcd, key);
    }

    /// The direct streams' handlers that may write again write.
    fn write_due_direct(&mut self, now: SimTime, etcd: &mut Etcd) {
        let due = due_writes(now, self.direct.iter().map(|(key, s)| (key, s.write_at)));
        for key in due {
            self.pump_direct(now, etcd, key);
        }
    }

    /// A message on one of this apiserver's etcd watches.
    pub fn handle_etcd_response(&mut self, now: SimTime, etcd: &mut Etcd, response: WatchResponse) {
        if let Some(cacher) = self.cacher.as_mut()
            && cacher.upstream_watch() == Some(response.watch_id)
        {
            match &response.kind {
                WatchResponseKind::Events(events) => cacher.handle_events(now, etcd, events),
                WatchResponseKind::Progress => {
                    cacher.handle_progress_notify(response.header_revision)
                }
                WatchResponseKind::Compacted { .. } => cacher.upstream_failed(now, etcd),
                WatchResponseKind::Canceled => cacher.upstream_closed(now, etcd),
                WatchResponseKind::Created => {}
            }
            return self.serve_fresh_reads(now, etcd);
        }
        let Some((&key, _)) = self
            .direct
            .iter()
            .find(|(_, stream)| stream.etcd_watch == response.watch_id)
        else {
            return;
        };
        self.direct_response(now, etcd, key, response);
    }

    fn direct_response(
        &mut self,
        now: SimTime,
        etcd: &mut Etcd,
        key: StreamKey,
        response: WatchResponse,
    ) {
        let prefix = self.prefix.clone();
        let stream = self.direct.get_mut(&key).expect("found");
        match response.kind {
            WatchResponseKind::Events(events) => {
                for event in &events {
                    let Ok(parsed) = storage::parse_event(&prefix, event) else {
                        let status = Status::new(
                            StatusReason::InternalError,
                            "etcd event received with PrevKv=nil",
                        );
                        return self.end_direct_with_error(now, etcd, key, status);
                    };
                    let cache_event = WatchCacheEvent {
                        event_type: parsed.event_type,
                        key: parsed.object.key.clone(),
                        resource_version: parsed.object.resource_version,
                        object: parsed.object,
                        prev_object: parsed.prev_object,
                        record_time: SimTime::ZERO,
                    };
                    stream.pending.extend(stream.filter.convert(&cache_event));
                }
            }
            WatchResponseKind::Compacted { .. } => {
                self.stats.expired += 1;
                let status = Status::new(
                    StatusReason::Expired,
                    "The resourceVersion for the provided watch is too old.",
                );
                return self.end_direct_with_error(now, etcd, key, status);
            }
            WatchResponseKind::Progress
            | WatchResponseKind::Created
            | WatchResponseKind::Canceled => {}
        }
        self.pump_direct(now, etcd, key);
    }

    fn serve_fresh_reads(&mut self, now: SimTime, etcd: &Etcd) {
        let Some(cache_rv) = self.cache_resource_version() else {
            return;
        };
        let (fresh, waiting): (Vec<WaitingRead>, Vec<WaitingRead>) =
            std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|read| read.required <= cache_rv);
        self.waiting = waiting;
        for read in fresh {
            self.complete_read(now, etcd, read);
        }
        if self.waiting.is_empty() {
            self.progress_request_at = None;
        }
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: SimTime, etcd: &mut Etcd) {
        if let Some(cacher) = self.cacher.as_mut() {
            cacher.handle_timeout(now, etcd);
            if self.bookmark_tick_at <= now {
                cacher.bookmark_tick(now);
                // `wait.Jitter(time.Second, 0.25)`: 1 s plus up to a quarter more.
                let jitter = self.rng.between(0, BOOKMARK_TICK.as_millis() / 4);
                self.bookmark_tick_at = now + SimDuration(BOOKMARK_TICK.as_millis() + jitter);
            }
            if self.snapshot_compaction_at <= now {
                // `compactor.compactIfNeeded`: the snapshots below etcd's compact revision go.
                cacher
                    .watch_cache
                    .compact_snapshots(etcd.compact_revision());
                self.snapshot_compaction_at = now + SNAPSHOT_COMPACTION_PERIOD;
            }
        }
        self.write_due_direct(now, etcd);
        self.end_streams_past_deadline(now, etcd);
        let (expired, waiting): (Vec<WaitingRead>, Vec<WaitingRead>) =
            std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|read| read.deadline <= now);
        self.waiting = waiting;
        for read in expired {
            self.expire_read(etcd, read);
        }
        self.serve_fresh_reads(now, etcd);
        self.request_progress(now, etcd);
    }

    fn request_progress(&mut self, now: SimTime, etcd: &mut Etcd) {
        if self.waiting.is_empty() || self.progress_request_at.is_none_or(|at| at > now) {
            return;
        }
        if let Some(watch) = self.cacher.as_ref().and_then(Cacher::upstream_watch) {
            let _ = etcd.request_progress(watch);
        }
        self.progress_request_at = Some(now + PROGRESS_REQUEST_PERIOD);
    }

    /// The server closes a watch cleanly at its timeout (`timeoutSeconds`).
    fn end_streams_past_deadline(&mut self, now: SimTime, etcd: &mut Etcd) {
        let due: Vec<StreamKey> = self
            .cacher
            .iter()
            .flat_map(|cacher| {
                cacher
                    .streams
                    .iter()
                    .map(|(key, stream)| (*key, stream.deadline))
            })
            .chain(
                self.direct
                    .iter()
                    .map(|(key, stream)| (*key, stream.deadline)),
            )
            .filter(|(_, deadline)| *deadline <= now)
            .map(|(key, _)| key)
            .collect();
        for key in due {
            self.stop_stream(etcd, key);
            self.outbox
                .push_back((key.client, ServerMessage::WatchClosed { id: key.id }));
        }
        if let Some(cacher) = self.cacher.as_mut() {
            cacher.retry_blocked(now, etcd);
        }
    }

    fn collect_cacher_output(&mut self) {
        let Some(cacher) = self.cacher.as_mut() else {
            return;
        };
        self.outbox.extend(cacher.messages.drain(..));
        while let Some(notice) = cacher.notices.pop_front() {
            let key = match notice {
                CacherNotice::Closed(key) => key,
                CacherNotice::SlowTerminated {
                    initial_events_left,
                    graceful,
                } => {
                    // The close comes once the client has read what the result buffer holds.
                    self.stats.slow_terminations += 1;
                    self.stats.initial_events_cut_offs += u64::from(initial_events_left);
                    self.stats.graceful_drains += u64::from(graceful);
                    continue;
                }
            };
            self.outbox
                .push_back((key.client, ServerMessage::WatchClosed { id: key.id }));
        }
    }
}
