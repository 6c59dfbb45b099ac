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
//! use informer_sim::apiserver::cache_watcher::{CacheWatcher, CacheWatcherConfig, WatchStart};
//! use informer_sim::apiserver::event::{WatchCacheEvent, WatchEventType, WatchEvent};
//! use informer_sim::object::Object;
//! use informer_sim::sim::SimTime;
//!
//! let start = WatchStart::since(10, Vec::new());
//! let mut watcher = CacheWatcher::new(CacheWatcherConfig::default(), start, SimTime(0));
//! let event = WatchCacheEvent {
//!     event_type: WatchEventType::Added,
//!     object: Object::bare("ns/a", 11),
//!     prev_object: None,
//!     key: Object::bare("ns/a", 11).key,
//!     resource_version: 11,
//!     record_time: SimTime(0),
//! };
//! watcher.dispatch(&event);
//! assert_eq!(watcher.pop_output(), Some(WatchEvent::Added(Object::bare("ns/a", 11))));
//! ```

use std::collections::VecDeque;

use super::event::{WatchCacheEvent, WatchEvent, WatchEventType};
use crate::object::{Object, ResourceVersion};
use crate::sim::{SimDuration, SimTime};

/// The smallest per-watcher channel (`minWatchChanSize`), and the usual one.
pub const WATCH_CHANNEL_SIZE_MIN: usize = 10;

/// How often a watcher gets a heartbeat bookmark (`defaultBookmarkFrequency`).
pub const DEFAULT_BOOKMARK_FREQUENCY: SimDuration = SimDuration::from_secs(60);

/// How long before its deadline a watcher gets a last bookmark.
pub const BOOKMARK_BEFORE_DEADLINE: SimDuration = SimDuration::from_secs(2);

/// The per-watcher channel size: room for about one second of history, `ceil(history capacity
/// / event fresh duration in seconds)`, at least 10 and at most 100 without an index, 1000 with
/// an index but no trigger, 10 with both (`Cacher.suggestedWatchChannelSize`).
pub fn suggested_watch_channel_size(
    history_capacity: usize,
    event_fresh_duration: SimDuration,
    index_exists: bool,
    trigger_used: bool,
) -> usize {
    let fresh_seconds = event_fresh_duration.as_millis().div_ceil(1000).max(1) as usize;
    let size_max = match (index_exists, trigger_used) {
        (true, true) => 10,
        (true, false) => 1000,
        (false, _) => 100,
    };
    let size = history_capacity
        .div_ceil(fresh_seconds)
        .max(WATCH_CHANNEL_SIZE_MIN)
        .min(size_max);
    assert!(size >= 1, "a watch channel holds at least one event");
    size
}

/// An equality label selector: `name=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// The label name, e.g. `app`.
    pub name: String,
    /// The required value.
    pub value: String,
}

/// What a watch asks for: a namespace and a label selector, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchFilter {
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    /// Only objects with this label.
    pub label_selector: Option<LabelSelector>,
}

impl WatchFilter {
    /// Whether `object` passes the filter (`filterWithAttrsFunc`).
    pub fn matches(&self, object: &Object) -> bool {
        let namespace_matches = self
            .namespace
            .as_deref()
            .is_none_or(|ns| object.key.namespace() == ns);
        let labels_match = self
            .label_selector
            .as_ref()
            .is_none_or(|selector| object.label(&selector.name) == Some(selector.value.as_str()));
        namespace_matches && labels_match
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
            resource_version: requested,
            initial_events_end: None,
            bookmark_after_resource_version: 0,
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
    /// as ADDED events, then a bookmark annotated `initial-events-end` at that RV. The client
    /// required `bookmark_after_resource_version` (the snapshot is at least as new).
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
    interval: VecDeque<WatchCacheEvent>,
    initial_events_end: Option<ResourceVersion>,
    input: VecDeque<WatchCacheEvent>,
    /// Live events must be newer than this: `max(requested RV, interval RV)`, raised by every
    /// object event sent (`resourceVersion` in `processInterval` / `process`).
    last_sent_resource_version: ResourceVersion,
    bookmark_after_resource_version: ResourceVersion,
    bookmark_state: BookmarkState,
    next_bookmark_time: Option<SimTime>,
    phase: Phase,
}

impl CacheWatcher {
    /// A watcher registered at `now` (`newCacheWatcher`, `setBookmarkAfterResourceVersion`,
    /// `bookmarkWatchers.addWatcher`).
    pub fn new(config: CacheWatcherConfig, start: WatchStart, now: SimTime) -> CacheWatcher {
        assert!(
            config.input_capacity >= 1,
            "a watcher needs room for one event"
        );
        let bookmark_state = if start.bookmark_after_resource_version == 0 {
            BookmarkState::BookmarkSent
        } else {
            BookmarkState::WaitingForBookmark
        };
        let mut watcher = CacheWatcher {
            interval: start.interval.into(),
            initial_events_end: start.initial_events_end,
            input: VecDeque::with_capacity(config.input_capacity),
            last_sent_resource_version: start.resource_version,
            bookmark_after_resource_version: start.bookmark_after_resource_version,
            bookmark_state,
            next_bookmark_time: None,
            phase: Phase::Running,
            config,
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
    /// `sendWatchCacheEvent`).
    pub fn pop_output(&mut self) -> Option<WatchEvent> {
        if self.phase == Phase::Stopped {
            return None;
        }
        while let Some(event) = self.interval.pop_front() {
            self.raise_last_sent(&event);
            if let Some(output) = self.convert_to_watch_event(&event) {
                return Some(output);
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
            self.raise_last_sent(&event);
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
        let drained =
            self.interval.is_empty() && self.initial_events_end.is_none() && self.input.is_empty();
        self.phase == Phase::Stopped || (self.phase == Phase::Draining && drained)
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
        let filter = &self.config.filter;
        let current_passes =
            event.event_type != WatchEventType::Deleted && filter.matches(&event.object);
        let previous = event
            .prev_object
            .as_ref()
            .filter(|previous| filter.matches(previous));
        match (current_passes, previous) {
            (true, None) => Some(WatchEvent::Added(event.object.clone())),
            (true, Some(_)) => Some(WatchEvent::Modified(event.object.clone())),
            (false, Some(previous)) => Some(WatchEvent::Deleted(
                previous.with_resource_version(event.resource_version),
            )),
            (false, None) => None,
        }
    }

    /// Live events must be newer than the last sent RV; a bookmark at exactly that RV still
    /// goes out while the watch-list end bookmark is unsent (`cacheWatcher.process`).
    fn is_newer_than_sent(&self, event: &WatchCacheEvent) -> bool {
        let pending_bookmark = event.is_bookmark()
            && event.resource_version == self.last_sent_resource_version
            && self.bookmark_state != BookmarkState::BookmarkSent;
        event.resource_version > self.last_sent_resource_version || pending_bookmark
    }

    /// Object events raise the last sent RV; bookmarks do not, so a heartbeat with no progress
    /// since the previous one is still sent, as upstream does.
    fn raise_last_sent(&mut self, event: &WatchCacheEvent) {
        if !event.is_bookmark() {
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
