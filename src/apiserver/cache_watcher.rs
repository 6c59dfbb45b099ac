//! One client watch served by the cacher (`as: pkg/storage/cacher/cache_watcher.go`, SPEC §2.6,
//! §2.7, §2.10), as a sans-IO state machine.
//!
//! A watcher starts with its initial events (buffered history after the requested RV, or the
//! cache state as ADDED events) and, for a watch-list, the initial-events-end bookmark. The
//! dispatcher then offers it live events through a bounded input buffer.
//!
//! - Inputs: [`CacheWatcher::dispatch`] (non-blocking; `Blocked` tells the dispatcher to spend
//!   its time budget and then terminate the watcher), [`CacheWatcher::on_bookmark_tick`],
//!   [`CacheWatcher::terminate`].
//! - Outputs: [`CacheWatcher::pop_output`] yields the next client event, in order: the initial
//!   events, the end bookmark, then buffered live events newer than everything already sent.
//!   It merges upstream's `result` channel into the consumer: one `pop_output` is one event
//!   read by the client.
//! - Getters: [`CacheWatcher::next_bookmark_time`], [`CacheWatcher::is_finished`],
//!   [`CacheWatcher::should_drain_when_blocked`].
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::apiserver::cache_watcher::{CacheWatcher, CacheWatcherConfig, WatchStart};
//! use informer_sim::apiserver::event::WatchCacheEvent;
//! use informer_sim::apiserver::watch_cache::{WatchCache, WatchCacheConfig};
//! use informer_sim::api::{WatchEvent, WatchEventType};
//! use informer_sim::object::Object;
//! use informer_sim::sim::SimTime;
//!
//! let start = WatchStart::since(10, Vec::new());
//! let mut watcher = CacheWatcher::new(CacheWatcherConfig::default(), start, SimTime(0), Bugs::NONE);
//! let event = WatchCacheEvent {
//!     event_type: WatchEventType::Added,
//!     object: Object::bare("ns/a", 11),
//!     prev_object: None,
//!     key: Object::bare("ns/a", 11).key,
//!     resource_version: 11,
//!     record_time: SimTime(0),
//! };
//! watcher.dispatch(&event);
//! let history = WatchCache::new(WatchCacheConfig::default(), Bugs::NONE);
//! assert_eq!(
//!     watcher.pop_output(&history),
//!     Some(WatchEvent::Added(Object::bare("ns/a", 11)))
//! );
//! ```

use std::collections::VecDeque;

use super::event::WatchCacheEvent;
use super::watch_cache::{HistoryInterval, WATCH_CHANNEL_SIZE_MIN, WatchCache};
use crate::api::{
    Field, FieldSelector, LabelSelector, ListOptions, WatchEvent, WatchEventType, WatchOptions,
};
use crate::bug::{Bug, Bugs};
use crate::object::{Object, ResourceVersion};
use crate::sim::{SimDuration, SimTime};

/// How many history events a watcher reads at a time (`watchCacheInterval`'s `bufferSize`).
pub const INTERVAL_BUFFER_SIZE: usize = 100;

/// How often a watcher gets a heartbeat bookmark (`defaultBookmarkFrequency`).
pub const DEFAULT_BOOKMARK_FREQUENCY: SimDuration = SimDuration::from_secs(60);

/// How long before its deadline a watcher gets a last bookmark.
pub const BOOKMARK_BEFORE_DEADLINE: SimDuration = SimDuration::from_secs(2);

/// What a watch or list asks for: a namespace, a label selector and a field selector, each
/// optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchFilter {
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    /// Only objects with this label.
    pub label_selector: Option<LabelSelector>,
    /// Only objects whose fields match.
    pub field_selector: Option<FieldSelector>,
}

impl WatchFilter {
    /// The filter of a watch request.
    pub fn of_watch(options: &WatchOptions) -> WatchFilter {
        WatchFilter {
            namespace: options.namespace.clone(),
            label_selector: options.label_selector.clone(),
            field_selector: options.field_selector.clone(),
        }
    }

    /// The filter of a list request (a list's namespace is in its keys).
    pub fn of_list(options: &ListOptions) -> WatchFilter {
        WatchFilter {
            namespace: None,
            label_selector: options.label_selector.clone(),
            field_selector: options.field_selector.clone(),
        }
    }

    /// The node a `spec.nodeName=` term pins: the value of the pod registry's indexed trigger
    /// (`NodeNameTriggerFunc`) this watcher is registered under (`Cacher.Watch`,
    /// `RequiresExactMatch` on the trigger's field).
    pub fn trigger_value(&self) -> Option<&str> {
        self.field_selector
            .as_ref()
            .and_then(|selector| selector.requires_exact_match(Field::SpecNodeName))
    }

    /// Mirrors `startDispatching` with `triggerValuesThreadUnsafe`: a watcher registered under
    /// a trigger value is offered the events whose object or previous object is on that node;
    /// any other watcher, the events of its scope (see [`WatchFilter::in_scope`]).
    pub fn is_offered(&self, event: &WatchCacheEvent) -> bool {
        match self.trigger_value() {
            Some(node) => {
                let on_node = |object: &Object| &*object.node_name == node;
                on_node(&event.object) || event.prev_object.as_ref().is_some_and(on_node)
            }
            None => self.in_scope(&event.object),
        }
    }

    /// Mirrors `Cacher.Watch`'s scope and `startDispatching`: a watcher is registered under
    /// its request namespace (else a `metadata.namespace` field selector's) and a
    /// `metadata.name` field selector's name, and is offered only the events of objects in
    /// that scope, so other objects' events never fill or block its input.
    pub fn in_scope(&self, object: &Object) -> bool {
        let exact = |field| {
            self.field_selector
                .as_ref()
                .and_then(|selector| selector.requires_exact_match(field))
        };
        let namespace = self
            .namespace
            .as_deref()
            .or_else(|| exact(Field::MetadataNamespace));
        let name = exact(Field::MetadataName);
        namespace.is_none_or(|namespace| object.key.namespace() == namespace)
            && name.is_none_or(|name| object.key.name() == name)
    }

    /// Mirrors `cache_watcher.go convertToWatchEvent` (and the etcd3 watcher's filtering): a
    /// change into the filter is ADDED, within it MODIFIED, out of it (or a delete) DELETED
    /// carrying the old object at the event's RV; outside it before and after, nothing.
    pub fn convert(&self, event: &WatchCacheEvent) -> Option<WatchEvent> {
        let current_passes =
            event.event_type != WatchEventType::Deleted && self.matches(&event.object);
        let previous = event
            .prev_object
            .as_ref()
            .filter(|previous| self.matches(previous));
        match (current_passes, previous) {
            (true, None) => Some(WatchEvent::Added(event.object.clone())),
            (true, Some(_)) => Some(WatchEvent::Modified(event.object.clone())),
            (false, Some(previous)) => Some(WatchEvent::Deleted(
                previous.with_resource_version(event.resource_version),
            )),
            (false, None) => None,
        }
    }

    /// Whether `object` passes the filter (`filterWithAttrsFunc`).
    pub fn matches(&self, object: &Object) -> bool {
        let namespace_matches = self
            .namespace
            .as_deref()
            .is_none_or(|ns| object.key.namespace() == ns);
        let labels_match = self
            .label_selector
            .as_ref()
            .is_none_or(|selector| selector.matches(object));
        let fields_match = self
            .field_selector
            .as_ref()
            .is_none_or(|selector| selector.matches(object));
        namespace_matches && labels_match && fields_match
    }
}

/// The per-watch settings of a watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheWatcherConfig {
    /// Which objects the client wants.
    pub filter: WatchFilter,
    /// Whether the client asked for bookmarks (`allowWatchBookmarks`).
    pub allow_watch_bookmarks: bool,
    /// When the server ends the watch (the request timeout), if known.
    pub deadline: Option<SimTime>,
    /// The input buffer size, usually [`suggested_watch_channel_size`].
    pub input_capacity: usize,
    /// The heartbeat bookmark period.
    pub bookmark_frequency: SimDuration,
}

impl Default for CacheWatcherConfig {
    fn default() -> Self {
        CacheWatcherConfig {
            filter: WatchFilter::default(),
            allow_watch_bookmarks: false,
            deadline: None,
            input_capacity: WATCH_CHANNEL_SIZE_MIN,
            bookmark_frequency: DEFAULT_BOOKMARK_FREQUENCY,
        }
    }
}

/// Where a watcher starts: its initial events and the RV that later events must exceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchStart {
    interval: Vec<WatchCacheEvent>,
    /// Events still in the watch cache's history, read a buffer at a time.
    history: Option<HistoryInterval>,
    resource_version: ResourceVersion,
    initial_events_end: Option<ResourceVersion>,
    bookmark_after_resource_version: ResourceVersion,
}

impl WatchStart {
    /// A watch from `requested` served the buffered events after it (`get_interval`), or no
    /// events for an RV=0 watch without initial events started at the cache RV.
    pub fn since(requested: ResourceVersion, interval: Vec<WatchCacheEvent>) -> WatchStart {
        WatchStart {
            interval,
            history: None,
            resource_version: requested,
            initial_events_end: None,
            bookmark_after_resource_version: 0,
        }
    }

    /// A watch from `requested` served the buffered events after it straight from the cache's
    /// history, as upstream does: read later, in buffers, while the history still holds them
    /// ([`WatchCache::history_interval`]).
    pub fn from_history(requested: ResourceVersion, history: HistoryInterval) -> WatchStart {
        WatchStart {
            history: Some(history),
            ..WatchStart::since(requested, Vec::new())
        }
    }

    /// A legacy RV=0 (or unset) watch: the cache state as ADDED events (`initial_events`) taken
    /// at `cache_resource_version`, then live events after it, with no end marker.
    pub fn initial_state(
        cache_resource_version: ResourceVersion,
        events: Vec<WatchCacheEvent>,
    ) -> WatchStart {
        WatchStart::since(cache_resource_version, events)
    }

    /// A watch-list (`sendInitialEvents=true`): the cache state at `snapshot_resource_version`
    /// as ADDED events, then a bookmark annotated `initial-events-end` at that RV.
    /// `bookmark_after_resource_version` is what the request required: the etcd revision for
    /// RV="", the cache RV for RV="0", N for RV=N (`getBookmarkAfterResourceVersionLockedFunc`);
    /// the snapshot is at least as new.
    pub fn watch_list(
        snapshot_resource_version: ResourceVersion,
        events: Vec<WatchCacheEvent>,
        bookmark_after_resource_version: ResourceVersion,
    ) -> WatchStart {
        assert!(
            bookmark_after_resource_version > 0,
            "a watch-list needs a bookmark RV"
        );
        assert!(
            snapshot_resource_version >= bookmark_after_resource_version,
            "the snapshot must be at least as new as the required RV"
        );
        WatchStart {
            interval: events,
            history: None,
            resource_version: snapshot_resource_version,
            initial_events_end: Some(snapshot_resource_version),
            bookmark_after_resource_version,
        }
    }
}

/// What happened to an event offered to a watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchResult {
    /// The event is in the input buffer.
    Accepted,
    /// The input buffer is full; the dispatcher may retry within its time budget.
    Blocked,
}

/// What a bookmark tick did for a watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookmarkOutcome {
    /// No bookmark is due (or the client did not ask for bookmarks).
    NotDue,
    /// The bookmark is below the RV a watch-list waits for, and was discarded.
    BelowBookmarkAfterResourceVersion,
    /// The input buffer was full, and the bookmark was discarded.
    BufferFull,
    /// The bookmark is in the input buffer.
    Queued,
}

/// Progress towards the bookmark a watch-list waits for (`cacheWatcherWaitingForBookmark`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BookmarkState {
    WaitingForBookmark,
    BookmarkReceived,
    BookmarkSent,
}

/// Whether the watcher still runs (`stopped`, `drainInputBuffer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopped,
}

/// One client watch on the cacher.
#[derive(Clone, Debug)]
pub struct CacheWatcher {
    config: CacheWatcherConfig,
    /// Planted bugs of the cache watcher (SPEC §8 B10).
    bugs: Bugs,
    /// Initial events ready to send: a copy of the cache state, or the current buffer of a
    /// history interval (`watchCacheIntervalBuffer`).
    interval: VecDeque<WatchCacheEvent>,
    /// The part of a history interval not yet read into `interval`.
    history: Option<HistoryInterval>,
    /// The history dropped events before this watcher read them: it stopped, silently.
    invalidated: bool,
    initial_events_end: Option<ResourceVersion>,
    input: VecDeque<WatchCacheEvent>,
    /// Live events must be newer than this: `max(requested RV, interval RV)`, raised by the
    /// interval's events only (`resourceVersion` in `processInterval`); `process` keeps it
    /// fixed, so a heartbeat bookmark at the RV of the last live event is still sent.
    last_sent_resource_version: ResourceVersion,
    bookmark_after_resource_version: ResourceVersion,
    bookmark_state: BookmarkState,
    next_bookmark_time: Option<SimTime>,
    phase: Phase,
}

impl CacheWatcher {
    /// A watcher registered at `now` (`newCacheWatcher`, `setBookmarkAfterResourceVersion`,
    /// `bookmarkWatchers.addWatcher`).
    pub fn new(
        config: CacheWatcherConfig,
        start: WatchStart,
        now: SimTime,
        bugs: Bugs,
    ) -> CacheWatcher {
        assert!(
            config.input_capacity >= 1,
            "a watcher needs room for one event"
        );
        if start.initial_events_end.is_some() {
            assert!(
                config.allow_watch_bookmarks,
                "a watch-list requires allowWatchBookmarks"
            );
        }
        let bookmark_state = if start.bookmark_after_resource_version == 0 {
            BookmarkState::BookmarkSent
        } else {
            BookmarkState::WaitingForBookmark
        };
        let mut watcher = CacheWatcher {
            interval: start.interval.into(),
            history: start.history,
            invalidated: false,
            initial_events_end: start.initial_events_end,
            input: VecDeque::with_capacity(config.input_capacity),
            last_sent_resource_version: start.resource_version,
            bookmark_after_resource_version: start.bookmark_after_resource_version,
            bookmark_state,
            next_bookmark_time: None,
            phase: Phase::Running,
            config,
            bugs,
        };
        watcher.next_bookmark_time = watcher.compute_next_bookmark_time(now);
        watcher
    }

    /// Offers a live event without blocking (`cacheWatcher.nonblockingAdd`).
    pub fn dispatch(&mut self, event: &WatchCacheEvent) -> DispatchResult {
        assert!(
            !event.is_bookmark(),
            "bookmarks go through on_bookmark_tick"
        );
        assert!(
            self.phase == Phase::Running,
            "dispatch to a terminated watcher"
        );
        if self.input.len() >= self.config.input_capacity {
            return DispatchResult::Blocked;
        }
        self.input.push_back(event.clone());
        DispatchResult::Accepted
    }

    /// The next event for the client, or `None` if nothing is ready (or the watcher is
    /// finished, see [`CacheWatcher::is_finished`]) (`processInterval`, `process`,
    /// `sendWatchCacheEvent`). A history interval is read from `cache` a buffer at a time; if
    /// the history dropped what it still had to read, the watcher stops without an error
    /// event (`processInterval`: "cache interval invalidated"), and the client's next watch
    /// learns from its 410 that its RV is too old.
    pub fn pop_output(&mut self, cache: &WatchCache) -> Option<WatchEvent> {
        if self.phase == Phase::Stopped {
            return None;
        }
        loop {
            while let Some(event) = self.interval.pop_front() {
                self.raise_last_sent(&event);
                if let Some(output) = self.convert_to_watch_event(&event) {
                    return Some(output);
                }
            }
            let Some(history) = self.history.as_mut().filter(|history| !history.is_empty()) else {
                break;
            };
            match cache.read_interval(history, INTERVAL_BUFFER_SIZE) {
                Ok(events) => self.interval.extend(events),
                Err(_) => {
                    self.invalidated = true;
                    self.terminate(false);
                    return None;
                }
            }
        }
        if let Some(resource_version) = self.initial_events_end.take() {
            assert!(
                self.bookmark_state != BookmarkState::BookmarkSent,
                "second initial-events end"
            );
            self.bookmark_state = BookmarkState::BookmarkSent;
            return Some(WatchEvent::Bookmark {
                resource_version,
                initial_events_end: true,
            });
        }
        while let Some(event) = self.input.pop_front() {
            if !self.is_newer_than_sent(&event) {
                continue;
            }
            if let Some(output) = self.convert_to_watch_event(&event) {
                if event.is_bookmark() {
                    self.bookmark_state = BookmarkState::BookmarkSent;
                }
                return Some(output);
            }
        }
        None
    }

    /// A bookmark tick of the cacher at `now`, with `resource_version` = the dispatcher's last
    /// processed RV: if this watcher's bookmark is due, offers it a bookmark without blocking and
    /// schedules the next one (`startDispatchingBookmarkEventsLocked`, `nextBookmarkTime`).
    pub fn on_bookmark_tick(
        &mut self,
        now: SimTime,
        resource_version: ResourceVersion,
    ) -> BookmarkOutcome {
        let due = self.next_bookmark_time.is_some_and(|at| at <= now);
        if !due || self.phase != Phase::Running {
            return BookmarkOutcome::NotDue;
        }
        assert!(
            self.config.allow_watch_bookmarks,
            "bookmark due for a watcher that did not ask"
        );
        let outcome = if resource_version < self.bookmark_after_resource_version {
            BookmarkOutcome::BelowBookmarkAfterResourceVersion
        } else if self.input.len() >= self.config.input_capacity {
            BookmarkOutcome::BufferFull
        } else {
            self.input
                .push_back(WatchCacheEvent::bookmark(resource_version, now));
            if self.bookmark_state == BookmarkState::WaitingForBookmark {
                self.bookmark_state = BookmarkState::BookmarkReceived;
            }
            BookmarkOutcome::Queued
        };
        self.next_bookmark_time = self.compute_next_bookmark_time(now);
        outcome
    }

    /// Stops the watcher (`cacheWatcher.stopLocked`): at once, dropping what was not sent, or,
    /// with `drain_input_buffer`, after the pending initial and buffered events are sent. The
    /// stream then ends without an error event.
    pub fn terminate(&mut self, drain_input_buffer: bool) {
        if drain_input_buffer && self.phase != Phase::Stopped {
            self.phase = Phase::Draining;
            return;
        }
        self.phase = Phase::Stopped;
        self.interval.clear();
        self.history = None;
        self.initial_events_end = None;
        self.input.clear();
    }

    /// Whether a termination for slowness should drain the input: only when the bookmark a
    /// watch-list waits for is buffered but not yet sent (`cacheWatcher.add`, "graceful").
    pub fn should_drain_when_blocked(&self) -> bool {
        self.bookmark_state == BookmarkState::BookmarkReceived
    }

    /// Whether the stream has ended: terminated and nothing left to send.
    pub fn is_finished(&self) -> bool {
        let drained = self.interval.is_empty()
            && self.history.is_none_or(|history| history.is_empty())
            && self.initial_events_end.is_none()
            && self.input.is_empty();
        self.phase == Phase::Stopped || (self.phase == Phase::Draining && drained)
    }

    /// Whether initial events are still to be sent: the state, the history interval, or the
    /// watch-list's end bookmark.
    pub fn has_initial_events_left(&self) -> bool {
        !self.interval.is_empty()
            || self.history.is_some_and(|history| !history.is_empty())
            || self.initial_events_end.is_some()
    }

    /// Whether the watcher stopped because its history interval was invalidated.
    pub fn is_invalidated(&self) -> bool {
        self.invalidated
    }

    /// Whether the dispatcher offers this watcher `event` (see [`WatchFilter::is_offered`]).
    pub fn is_offered(&self, event: &WatchCacheEvent) -> bool {
        self.config.filter.is_offered(event)
    }

    /// When this watcher's next bookmark is due, if ever.
    pub fn next_bookmark_time(&self) -> Option<SimTime> {
        self.next_bookmark_time
    }

    /// Turns a cache event into what this client sees, or `None` if it does not concern it
    /// (`cacheWatcher.convertToWatchEvent`): the new state matches and the old one does not,
    /// ADDED; both, MODIFIED; only the old one (or a delete), DELETED with the old object at the
    /// event's RV. A bookmark is annotated as the initial-events end until one has been sent.
    pub fn convert_to_watch_event(&self, event: &WatchCacheEvent) -> Option<WatchEvent> {
        if event.is_bookmark() {
            let initial_events_end = self.bookmark_state != BookmarkState::BookmarkSent;
            return Some(WatchEvent::Bookmark {
                resource_version: event.resource_version,
                initial_events_end,
            });
        }
        self.config.filter.convert(event)
    }

    /// Live events must be newer than the last sent RV; a bookmark at exactly that RV still
    /// goes out while the watch-list end bookmark is unsent (`cacheWatcher.process`).
    fn is_newer_than_sent(&self, event: &WatchCacheEvent) -> bool {
        let pending_bookmark = event.is_bookmark()
            && event.resource_version == self.last_sent_resource_version
            && self.bookmark_state != BookmarkState::BookmarkSent;
        event.resource_version > self.last_sent_resource_version || pending_bookmark
    }

    /// Initial (interval) object events raise the last sent RV, so live events they already
    /// covered are not sent twice (k/k#73845); bookmarks do not.
    fn raise_last_sent(&mut self, event: &WatchCacheEvent) {
        // Planted: PR #73845 (B10), the interval leaves the RV alone, so events still
        // buffered in the dispatcher's input when the watch registered are sent again.
        if !event.is_bookmark() && !self.bugs.is(Bug::CacherResendsBufferedEvents) {
            self.last_sent_resource_version =
                self.last_sent_resource_version.max(event.resource_version);
        }
    }

    /// Due at once while a watch-list waits for its bookmark; else after the bookmark frequency,
    /// or 2 s before the deadline if sooner; never if that is already past
    /// (`cacheWatcher.nextBookmarkTime`).
    fn compute_next_bookmark_time(&self, now: SimTime) -> Option<SimTime> {
        if !self.config.allow_watch_bookmarks {
            return None;
        }
        if self.bookmark_state == BookmarkState::WaitingForBookmark {
            return Some(now);
        }
        let heartbeat = now + self.config.bookmark_frequency;
        let Some(deadline) = self.config.deadline else {
            return Some(heartbeat);
        };
        let before_deadline = SimTime(
            deadline
                .as_millis()
                .saturating_sub(BOOKMARK_BEFORE_DEADLINE.as_millis()),
        );
        let next = heartbeat.min(before_deadline);
        (next >= now).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labelled(key: &str, resource_version: ResourceVersion, app: &str) -> Object {
        let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
        Object {
            labels: labels.into(),
            ..Object::bare(key, resource_version)
        }
    }

    fn cache_event(
        event_type: WatchEventType,
        object: Object,
        prev_object: Option<Object>,
    ) -> WatchCacheEvent {
        WatchCacheEvent {
            event_type,
            key: object.key.clone(),
            resource_version: object.resource_version,
            object,
            prev_object,
            record_time: SimTime::ZERO,
        }
    }

    /// A MODIFIED event whose previous state is one revision older.
    fn modified(key: &str, resource_version: ResourceVersion) -> WatchCacheEvent {
        cache_event(
            WatchEventType::Modified,
            Object::bare(key, resource_version),
            Some(Object::bare(key, resource_version - 1)),
        )
    }

    fn app_a_watcher() -> CacheWatcher {
        let selector = LabelSelector {
            name: "app".to_owned(),
            value: "a".to_owned(),
        };
        let filter = WatchFilter {
            label_selector: Some(selector),
            ..WatchFilter::default()
        };
        let config = CacheWatcherConfig {
            filter,
            ..CacheWatcherConfig::default()
        };
        CacheWatcher::new(
            config,
            WatchStart::since(0, Vec::new()),
            SimTime::ZERO,
            Bugs::NONE,
        )
    }

    fn bookmark_watcher(deadline: Option<SimTime>, start: WatchStart) -> CacheWatcher {
        let config = CacheWatcherConfig {
            allow_watch_bookmarks: true,
            deadline,
            ..CacheWatcherConfig::default()
        };
        CacheWatcher::new(config, start, SimTime::ZERO, Bugs::NONE)
    }

    /// A cache whose history no test watcher reads.
    fn no_history() -> WatchCache {
        WatchCache::new(
            crate::apiserver::watch_cache::WatchCacheConfig::default(),
            Bugs::NONE,
        )
    }

    fn drain(watcher: &mut CacheWatcher) -> Vec<WatchEvent> {
        let history = no_history();
        std::iter::from_fn(|| watcher.pop_output(&history)).collect()
    }

    fn output_rvs(watcher: &mut CacheWatcher) -> Vec<ResourceVersion> {
        drain(watcher)
            .iter()
            .filter_map(WatchEvent::resource_version)
            .collect()
    }

    #[test]
    fn selector_transition_out_becomes_deleted_with_event_rv() {
        // T10: o goes from app=a to app=b at 300.
        let watcher = app_a_watcher();
        let event = cache_event(
            WatchEventType::Modified,
            labelled("ns/o", 300, "b"),
            Some(labelled("ns/o", 290, "a")),
        );
        let expected = WatchEvent::Deleted(labelled("ns/o", 300, "a"));
        assert_eq!(watcher.convert_to_watch_event(&event), Some(expected));
    }

    #[test]
    fn selector_transition_in_becomes_added() {
        let watcher = app_a_watcher();
        let event = cache_event(
            WatchEventType::Modified,
            labelled("ns/o", 310, "a"),
            Some(labelled("ns/o", 300, "b")),
        );
        assert_eq!(
            watcher.convert_to_watch_event(&event),
            Some(WatchEvent::Added(labelled("ns/o", 310, "a")))
        );
    }

    #[test]
    fn change_within_the_selector_is_modified() {
        let watcher = app_a_watcher();
        let event = cache_event(
            WatchEventType::Modified,
            labelled("ns/o", 5, "a"),
            Some(labelled("ns/o", 4, "a")),
        );
        assert_eq!(
            watcher.convert_to_watch_event(&event),
            Some(WatchEvent::Modified(labelled("ns/o", 5, "a")))
        );
    }

    #[test]
    fn delete_of_a_matching_object_is_deleted_with_the_old_state_at_the_delete_rv() {
        let watcher = app_a_watcher();
        let mut previous = labelled("ns/o", 4, "a");
        previous.value = 7;
        let event = cache_event(
            WatchEventType::Deleted,
            labelled("ns/o", 9, "a"),
            Some(previous.clone()),
        );
        let expected = WatchEvent::Deleted(previous.with_resource_version(9));
        assert_eq!(watcher.convert_to_watch_event(&event), Some(expected));
    }

    #[test]
    fn events_outside_the_selector_are_not_sent() {
        let watcher = app_a_watcher();
        let event = cache_event(
            WatchEventType::Modified,
            labelled("ns/o", 5, "b"),
            Some(labelled("ns/o", 4, "c")),
        );
        assert_eq!(watcher.convert_to_watch_event(&event), None);
        let deleted = cache_event(
            WatchEventType::Deleted,
            labelled("ns/o", 6, "b"),
            Some(labelled("ns/o", 5, "b")),
        );
        assert_eq!(watcher.convert_to_watch_event(&deleted), None);
    }

    #[test]
    fn namespace_filter_matches_the_key_namespace() {
        let filter = WatchFilter {
            namespace: Some("ns".to_owned()),
            ..WatchFilter::default()
        };
        assert!(filter.matches(&Object::bare("ns/a", 1)));
        assert!(!filter.matches(&Object::bare("other/a", 1)));
        assert!(!filter.matches(&Object::bare("cluster-scoped", 1)));
    }

    #[test]
    fn a_watcher_is_in_the_scope_of_its_namespace_and_name_selectors_only() {
        let by_field = WatchFilter {
            field_selector: Some(
                FieldSelector::equal(Field::MetadataNamespace, "ns").and(Field::MetadataName, "a"),
            ),
            ..WatchFilter::default()
        };
        assert!(by_field.in_scope(&Object::bare("ns/a", 1)));
        assert!(!by_field.in_scope(&Object::bare("ns/b", 1)));
        assert!(!by_field.in_scope(&Object::bare("other/a", 1)));
    }

    #[test]
    fn a_watcher_pinned_to_a_node_is_offered_the_events_on_that_node_before_or_after() {
        let by_node = WatchFilter {
            field_selector: Some(FieldSelector::equal(Field::SpecNodeName, "node-1")),
            namespace: Some("ns".to_owned()),
            ..WatchFilter::default()
        };
        assert_eq!(by_node.trigger_value(), Some("node-1"));
        let on = |node: &str| Object {
            node_name: node.into(),
            ..Object::bare("other/a", 2)
        };
        let event = |object: Object, prev_object: Option<Object>| WatchCacheEvent {
            event_type: WatchEventType::Modified,
            key: object.key.clone(),
            resource_version: object.resource_version,
            object,
            prev_object,
            record_time: SimTime::ZERO,
        };
        assert!(
            by_node.is_offered(&event(on("node-1"), None)),
            "a trigger, not the namespace scope, decides"
        );
        assert!(by_node.is_offered(&event(on("node-2"), Some(on("node-1")))));
        assert!(!by_node.is_offered(&event(on("node-2"), Some(on("")))));
        let not_on_node = WatchFilter {
            field_selector: Some(FieldSelector::not_equal(Field::SpecNodeName, "node-1")),
            ..WatchFilter::default()
        };
        assert_eq!(not_on_node.trigger_value(), None);
        assert!(not_on_node.is_offered(&event(on("node-2"), None)));
    }

    #[test]
    fn watch_at_rv_n_never_receives_the_event_at_n() {
        // B9, k/k#24004: the event at N was delivered to a watch from N.
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::since(12, Vec::new()),
            SimTime::ZERO,
            Bugs::NONE,
        );
        for rv in [11, 12, 13] {
            assert_eq!(
                watcher.dispatch(&modified("ns/a", rv)),
                DispatchResult::Accepted
            );
        }
        assert_eq!(output_rvs(&mut watcher), vec![13]);
    }

    #[test]
    fn live_events_already_covered_by_the_interval_are_not_sent_again() {
        // B10, PR #73845: events buffered in input while the interval was sent went back in time.
        let interval = vec![modified("ns/a", 11), modified("ns/b", 12)];
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::since(10, interval),
            SimTime::ZERO,
            Bugs::NONE,
        );
        for rv in [12, 13] {
            watcher.dispatch(&modified("ns/c", rv));
        }
        assert_eq!(output_rvs(&mut watcher), vec![11, 12, 13]);
    }

    #[test]
    fn bug_b10_sends_live_events_the_interval_covered_again() {
        let interval = vec![modified("ns/a", 11), modified("ns/b", 12)];
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::since(10, interval),
            SimTime::ZERO,
            Bugs::new(Some(Bug::CacherResendsBufferedEvents)),
        );
        for rv in [12, 13] {
            watcher.dispatch(&modified("ns/c", rv));
        }
        assert_eq!(output_rvs(&mut watcher), vec![11, 12, 12, 13]);
    }

    #[test]
    fn rv_zero_watch_sends_the_state_then_only_newer_events() {
        let state = vec![
            cache_event(WatchEventType::Added, Object::bare("ns/a", 90), None),
            cache_event(WatchEventType::Added, Object::bare("ns/b", 40), None),
        ]
        .into_iter()
        .map(|event| WatchCacheEvent {
            resource_version: 100,
            ..event
        })
        .collect();
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::initial_state(100, state),
            SimTime::ZERO,
            Bugs::NONE,
        );
        watcher.dispatch(&modified("ns/a", 100));
        watcher.dispatch(&modified("ns/a", 101));
        let expected = vec![
            WatchEvent::Added(Object::bare("ns/a", 90)),
            WatchEvent::Added(Object::bare("ns/b", 40)),
            WatchEvent::Modified(Object::bare("ns/a", 101)),
        ];
        assert_eq!(drain(&mut watcher), expected);
    }

    #[test]
    fn full_input_buffer_blocks_until_the_client_reads() {
        let config = CacheWatcherConfig {
            input_capacity: 2,
            ..CacheWatcherConfig::default()
        };
        let mut watcher = CacheWatcher::new(
            config,
            WatchStart::since(0, Vec::new()),
            SimTime::ZERO,
            Bugs::NONE,
        );
        assert_eq!(
            watcher.dispatch(&modified("ns/a", 1)),
            DispatchResult::Accepted
        );
        assert_eq!(
            watcher.dispatch(&modified("ns/a", 2)),
            DispatchResult::Accepted
        );
        assert_eq!(
            watcher.dispatch(&modified("ns/a", 3)),
            DispatchResult::Blocked
        );
        assert_eq!(
            watcher
                .pop_output(&no_history())
                .and_then(|event| event.resource_version()),
            Some(1)
        );
        assert_eq!(
            watcher.dispatch(&modified("ns/a", 3)),
            DispatchResult::Accepted
        );
        assert_eq!(output_rvs(&mut watcher), vec![2, 3]);
    }

    #[test]
    fn watch_list_sends_the_snapshot_then_one_annotated_bookmark() {
        // SPEC §2.10, T6.
        let snapshot = vec![
            cache_event(WatchEventType::Added, Object::bare("ns/a", 650), None),
            cache_event(WatchEventType::Added, Object::bare("ns/b", 702), None),
        ];
        let mut watcher = bookmark_watcher(None, WatchStart::watch_list(702, snapshot, 700));
        watcher.dispatch(&modified("ns/b", 702));
        watcher.dispatch(&modified("ns/c", 703));
        let expected = vec![
            WatchEvent::Added(Object::bare("ns/a", 650)),
            WatchEvent::Added(Object::bare("ns/b", 702)),
            WatchEvent::Bookmark {
                resource_version: 702,
                initial_events_end: true,
            },
            WatchEvent::Modified(Object::bare("ns/c", 703)),
        ];
        assert_eq!(drain(&mut watcher), expected);
    }

    #[test]
    fn heartbeat_bookmarks_after_the_watch_list_end_are_not_annotated() {
        let mut watcher = bookmark_watcher(None, WatchStart::watch_list(702, Vec::new(), 700));
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(1000), 702),
            BookmarkOutcome::Queued
        );
        let end = WatchEvent::Bookmark {
            resource_version: 702,
            initial_events_end: true,
        };
        assert_eq!(
            drain(&mut watcher),
            vec![end],
            "the tick's bookmark at the same RV is a duplicate"
        );
        let due = watcher.next_bookmark_time().expect("heartbeat scheduled");
        assert_eq!(watcher.on_bookmark_tick(due, 710), BookmarkOutcome::Queued);
        let heartbeat = WatchEvent::Bookmark {
            resource_version: 710,
            initial_events_end: false,
        };
        assert_eq!(drain(&mut watcher), vec![heartbeat]);
    }

    #[test]
    fn heartbeat_at_the_rv_of_the_last_live_event_is_sent() {
        // `process` never raises its RV: a filtered-out event at 11 does not hide the
        // heartbeat at 11 (RunTestWatchDispatchBookmarkEvents).
        let mut watcher = bookmark_watcher(None, WatchStart::since(10, Vec::new()));
        let config = CacheWatcherConfig {
            allow_watch_bookmarks: true,
            ..app_a_watcher().config
        };
        let mut filtered = CacheWatcher::new(
            config,
            WatchStart::since(10, Vec::new()),
            SimTime::ZERO,
            Bugs::NONE,
        );
        for watcher in [&mut watcher, &mut filtered] {
            watcher.dispatch(&modified("ns/a", 11));
            let due = watcher.next_bookmark_time().expect("heartbeat scheduled");
            assert_eq!(watcher.on_bookmark_tick(due, 11), BookmarkOutcome::Queued);
        }
        let heartbeat = WatchEvent::Bookmark {
            resource_version: 11,
            initial_events_end: false,
        };
        assert_eq!(drain(&mut watcher).last(), Some(&heartbeat));
        assert_eq!(drain(&mut filtered), vec![heartbeat]);
    }

    #[test]
    fn waiting_watch_list_is_due_every_tick_and_drops_bookmarks_below_its_rv() {
        let mut watcher = bookmark_watcher(None, WatchStart::watch_list(702, Vec::new(), 700));
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime::ZERO));
        let outcome = watcher.on_bookmark_tick(SimTime(1000), 699);
        assert_eq!(outcome, BookmarkOutcome::BelowBookmarkAfterResourceVersion);
        assert_eq!(
            watcher.next_bookmark_time(),
            Some(SimTime(1000)),
            "still due at the next tick"
        );
        assert!(!watcher.should_drain_when_blocked());
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(2000), 700),
            BookmarkOutcome::Queued
        );
        assert!(
            watcher.should_drain_when_blocked(),
            "received but not yet sent"
        );
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime(62_000)));
    }

    #[test]
    fn bookmarks_are_due_every_minute() {
        let mut watcher = bookmark_watcher(None, WatchStart::since(10, Vec::new()));
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime(60_000)));
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(59_000), 11),
            BookmarkOutcome::NotDue
        );
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(60_500), 11),
            BookmarkOutcome::Queued
        );
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime(120_500)));
        let bookmark = WatchEvent::Bookmark {
            resource_version: 11,
            initial_events_end: false,
        };
        assert_eq!(drain(&mut watcher), vec![bookmark]);
    }

    #[test]
    fn last_bookmark_is_due_two_seconds_before_the_deadline() {
        let mut watcher =
            bookmark_watcher(Some(SimTime(30_000)), WatchStart::since(10, Vec::new()));
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime(28_000)));
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(28_500), 11),
            BookmarkOutcome::Queued
        );
        assert_eq!(
            watcher.next_bookmark_time(),
            None,
            "the pre-deadline time has passed"
        );
    }

    #[test]
    fn bookmark_is_dropped_when_the_input_buffer_is_full() {
        let config = CacheWatcherConfig {
            allow_watch_bookmarks: true,
            input_capacity: 1,
            ..CacheWatcherConfig::default()
        };
        let mut watcher = CacheWatcher::new(
            config,
            WatchStart::since(10, Vec::new()),
            SimTime::ZERO,
            Bugs::NONE,
        );
        watcher.dispatch(&modified("ns/a", 11));
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(60_000), 11),
            BookmarkOutcome::BufferFull
        );
        assert_eq!(watcher.next_bookmark_time(), Some(SimTime(120_000)));
    }

    #[test]
    fn watcher_without_bookmarks_never_gets_one() {
        let mut watcher = app_a_watcher();
        assert_eq!(watcher.next_bookmark_time(), None);
        assert_eq!(
            watcher.on_bookmark_tick(SimTime(600_000), 5),
            BookmarkOutcome::NotDue
        );
    }

    #[test]
    fn repeated_heartbeat_at_an_unchanged_rv_is_still_sent() {
        let mut watcher = bookmark_watcher(None, WatchStart::since(10, Vec::new()));
        watcher.on_bookmark_tick(SimTime(60_000), 12);
        watcher.on_bookmark_tick(SimTime(120_000), 12);
        assert_eq!(output_rvs(&mut watcher), vec![12, 12]);
    }

    #[test]
    fn termination_drops_what_was_not_sent() {
        // B12: a slow watcher's stream ends without an error event.
        let interval = vec![modified("ns/a", 11)];
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::since(10, interval),
            SimTime::ZERO,
            Bugs::NONE,
        );
        watcher.dispatch(&modified("ns/a", 12));
        watcher.terminate(false);
        assert!(watcher.is_finished());
        assert_eq!(watcher.pop_output(&no_history()), None);
    }

    #[test]
    fn draining_termination_sends_the_pending_events_then_finishes() {
        let interval = vec![modified("ns/a", 11)];
        let mut watcher = CacheWatcher::new(
            CacheWatcherConfig::default(),
            WatchStart::since(10, interval),
            SimTime::ZERO,
            Bugs::NONE,
        );
        watcher.dispatch(&modified("ns/a", 12));
        watcher.terminate(true);
        assert!(!watcher.is_finished());
        assert_eq!(output_rvs(&mut watcher), vec![11, 12]);
        assert!(watcher.is_finished());
    }

    #[test]
    #[should_panic(expected = "dispatch to a terminated watcher")]
    fn dispatch_to_a_terminated_watcher_is_a_bug() {
        let mut watcher = app_a_watcher();
        watcher.terminate(false);
        watcher.dispatch(&modified("ns/a", 1));
    }

    /// A cache listed at 10 whose history then holds one update of `ns/a` at each of 11..=last.
    fn history_through(capacity: usize, last: ResourceVersion) -> WatchCache {
        let config = crate::apiserver::watch_cache::WatchCacheConfig::fixed_for_tests(capacity);
        let mut cache = WatchCache::new(config, Bugs::NONE);
        cache.replace(vec![Object::bare("ns/a", 10)], 10);
        for rv in 11..=last {
            cache.update(Object::bare("ns/a", rv), SimTime(rv));
        }
        cache
    }

    fn history_watcher(cache: &WatchCache, from: ResourceVersion) -> CacheWatcher {
        let interval = cache.history_interval(from).expect("inside the window");
        let start = WatchStart::from_history(from, interval);
        CacheWatcher::new(
            CacheWatcherConfig::default(),
            start,
            SimTime::ZERO,
            Bugs::NONE,
        )
    }

    #[test]
    fn a_history_interval_is_read_a_buffer_at_a_time_and_in_full() {
        let cache = history_through(400, 260);
        let mut watcher = history_watcher(&cache, 10);
        let rvs: Vec<ResourceVersion> = std::iter::from_fn(|| watcher.pop_output(&cache))
            .filter_map(|event| event.resource_version())
            .collect();
        assert_eq!(rvs, (11..=260).collect::<Vec<_>>());
        assert!(!watcher.is_invalidated());
    }

    #[test]
    fn a_history_interval_overwritten_before_it_is_read_closes_the_watch_silently() {
        // F10: the first buffer (11..=110) is read at the first event; the history then drops
        // index 100 onwards' predecessors, so the second buffer is gone.
        let mut cache = history_through(150, 130);
        let mut watcher = history_watcher(&cache, 10);
        let first: Vec<WatchEvent> = (0..INTERVAL_BUFFER_SIZE)
            .map_while(|_| watcher.pop_output(&cache))
            .collect();
        assert_eq!(first.len(), INTERVAL_BUFFER_SIZE);
        for rv in 131..=270 {
            cache.update(Object::bare("ns/a", rv), SimTime(rv));
        }
        assert!(cache.start_index() > INTERVAL_BUFFER_SIZE as u64);
        assert_eq!(watcher.pop_output(&cache), None, "no error event is sent");
        assert!(watcher.is_invalidated());
        assert!(watcher.is_finished());
    }

    #[test]
    fn a_history_interval_read_before_the_overwrite_is_sent_in_full() {
        // The same overwrite after the whole interval fit into one buffer changes nothing.
        let mut cache = history_through(150, 60);
        let mut watcher = history_watcher(&cache, 10);
        assert!(watcher.pop_output(&cache).is_some());
        for rv in 61..=400 {
            cache.update(Object::bare("ns/a", rv), SimTime(rv));
        }
        let rest = std::iter::from_fn(|| watcher.pop_output(&cache)).count();
        assert_eq!(rest, 49);
        assert!(!watcher.is_invalidated());
    }
}
