//! The watch cache (`as: pkg/storage/cacher/watch_cache.go`, SPEC §2.2, §2.3, §2.8).
//!
//! The cacher's internal reflector feeds it: `replace` after each list, `add`/`update`/`delete`
//! for each etcd watch event, `update_resource_version` for each progress notification. It holds
//! the current state of the resource (a store sorted by key), the cache resource version, and a
//! bounded history of recent events from which watches resume.
//!
//! The history is a cyclic buffer over indices that only grow: the live events are
//! `start_index..end_index`, slot `index % capacity`. When it is full the oldest event is dropped
//! and `removed_event_since_relist` is set. A watch from `rv` is served the buffered events with
//! RV strictly greater than `rv`, unless `rv < oldest - 1`, where `oldest` is `listRV + 1` while
//! nothing was dropped since the last relist and the first buffered RV afterwards; then it gets
//! `410 Expired` (SPEC §8 B9).
//!
//! Exact-RV lists (`ListFromCacheSnapshot`, on by default at HEAD) are served from snapshots:
//! one at the list RV and one per event since, dropped below the oldest buffered event once the
//! history is full and below etcd's compact revision when the cacher's compactor says so
//! (`store/watch_cache_storage.go`). A snapshot is the store rolled back through the history.
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::apiserver::watch_cache::{WatchCache, WatchCacheConfig};
//! use informer_sim::object::Object;
//! use informer_sim::sim::SimTime;
//!
//! let mut cache = WatchCache::new(WatchCacheConfig::default(), Bugs::NONE);
//! cache.replace(vec![Object::bare("ns/a", 5)], 10);
//! cache.update(Object::bare("ns/a", 11), SimTime(1));
//! let events = cache.get_interval(10).expect("listRV is inside the window");
//! assert_eq!(events.len(), 1);
//! assert!(cache.get_interval(8).is_err(), "below listRV the history is unknown");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::event::WatchCacheEvent;
use crate::api::{Status, StatusReason, WatchEventType};
use crate::bug::{Bug, Bugs};
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::{SimDuration, SimTime};

/// The default (and smallest) history capacity (`defaultLowerBoundCapacity`).
pub const DEFAULT_CAPACITY_LOWER_BOUND: usize = 100;

/// The largest history capacity for the default window (`defaultUpperBoundCapacity`).
pub const DEFAULT_CAPACITY_UPPER_BOUND: usize = 100 * 1024;

/// How long the history keeps events: the 60 s bookmark frequency plus 15 s
/// (`DefaultEventFreshDuration`; `NewCacherFromConfig` refuses anything shorter).
pub const DEFAULT_EVENT_FRESH_DURATION: SimDuration = SimDuration::from_secs(75);

/// The smallest per-watcher channel (`minWatchChanSize`), and the usual one.
pub const WATCH_CHANNEL_SIZE_MIN: usize = 10;

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

/// How the history buffer is sized. Upstream always resizes between 100 and 102,400 events
/// (`newWatchCacheHistory`); no flag changes that (`--watch-cache-sizes` only switches a cache
/// on or off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchCacheConfig {
    /// The initial and smallest capacity.
    pub capacity_lower_bound: usize,
    /// The largest capacity resizing may reach.
    pub capacity_upper_bound: usize,
    /// Events younger than this make a full buffer grow; older ones let it shrink.
    pub event_fresh_duration: SimDuration,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        WatchCacheConfig {
            capacity_lower_bound: DEFAULT_CAPACITY_LOWER_BOUND,
            capacity_upper_bound: DEFAULT_CAPACITY_UPPER_BOUND,
            event_fresh_duration: DEFAULT_EVENT_FRESH_DURATION,
        }
    }
}

impl WatchCacheConfig {
    /// TEST ONLY: a history of exactly `capacity` events that never resizes, a configuration no
    /// real apiserver has. Scenarios use it to reach eviction corners (SPEC §8 B9) within a
    /// short run.
    pub fn fixed_for_tests(capacity: usize) -> WatchCacheConfig {
        WatchCacheConfig {
            capacity_lower_bound: capacity,
            capacity_upper_bound: capacity,
            ..WatchCacheConfig::default()
        }
    }
}

/// A watch or exact list asked for history the cache no longer holds (410 Expired).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest_minus_one})")]
pub struct TooOldResourceVersion {
    /// The resource version the request started from.
    pub requested: ResourceVersion,
    /// The oldest resource version still served, i.e. the oldest deliverable event's RV - 1.
    pub oldest_minus_one: ResourceVersion,
}

impl TooOldResourceVersion {
    /// The `410 Expired` status sent to the client (`errors.NewResourceExpired`).
    pub fn to_status(&self) -> Status {
        Status::new(StatusReason::Expired, self.to_string())
    }
}

/// Why an exact-RV list cannot be served from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExactListError {
    /// No snapshot at or below the RV is kept; upstream falls back to etcd
    /// (`GetExactSnapshotLocked`, `IsResourceExpired` in `CacheDelegator.GetList`).
    #[error("too old resource version: {requested}")]
    NoSnapshot {
        /// The requested resource version.
        requested: ResourceVersion,
    },
    /// The RV is newer than the cache.
    #[error("too large resource version: {requested}, current: {current}")]
    TooLarge {
        /// The requested resource version.
        requested: ResourceVersion,
        /// The cache's resource version.
        current: ResourceVersion,
    },
}

/// A watch's place in the history: the events at `next_index..end_index` are still to be
/// read (`watchCacheInterval`'s `startIndex` and `endIndex`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryInterval {
    next_index: u64,
    end_index: u64,
}

impl HistoryInterval {
    /// Whether every event was read.
    pub fn is_empty(&self) -> bool {
        self.next_index == self.end_index
    }
}

/// The history dropped events an interval had yet to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cache interval invalidated: index {index} is below the history's oldest {oldest}")]
pub struct IntervalInvalidated {
    /// The interval's next index.
    pub index: u64,
    /// The history's oldest index.
    pub oldest: u64,
}

/// The watch cache of one resource on one apiserver.
#[derive(Clone, Debug)]
pub struct WatchCache {
    config: WatchCacheConfig,
    /// Planted bugs (SPEC §8 B9 and a classic mistake).
    bugs: Bugs,
    /// Slot `index % cache.len()` holds the event at `index` for `start_index <= index <
    /// end_index`; every other slot is `None`.
    cache: Vec<Option<WatchCacheEvent>>,
    start_index: u64,
    end_index: u64,
    removed_event_since_relist: bool,
    store: BTreeMap<ObjectKey, Object>,
    /// The RVs with a snapshot of the store (`Snapshotter`).
    snapshots: BTreeSet<ResourceVersion>,
    resource_version: ResourceVersion,
    list_resource_version: ResourceVersion,
}

impl WatchCache {
    /// An empty, never-listed cache.
    pub fn new(config: WatchCacheConfig, bugs: Bugs) -> WatchCache {
        assert!(
            config.capacity_lower_bound >= 1,
            "history capacity must be at least 1"
        );
        assert!(
            config.capacity_lower_bound <= config.capacity_upper_bound,
            "history capacity bounds are inverted"
        );
        WatchCache {
            cache: vec![None; config.capacity_lower_bound],
            config,
            bugs,
            start_index: 0,
            end_index: 0,
            removed_event_since_relist: false,
            store: BTreeMap::new(),
            snapshots: BTreeSet::new(),
            resource_version: 0,
            list_resource_version: 0,
        }
    }

    /// The RV the cache is up to date with: the last event, list or progress notification.
    pub fn resource_version(&self) -> ResourceVersion {
        self.resource_version
    }

    /// The RV of the last `replace`.
    pub fn list_resource_version(&self) -> ResourceVersion {
        self.list_resource_version
    }

    /// The current history capacity.
    pub fn capacity(&self) -> usize {
        self.cache.len()
    }

    /// The channel size for a watcher registered now: about one second of history at the
    /// current capacity (`watchCacheHistory.suggestedWatchChannelSize`). The simulated resource
    /// is pods, whose registry indexes `spec.nodeName`; `trigger_used` says whether the
    /// watcher is registered under a trigger value.
    pub fn suggested_watch_channel_size(&self, trigger_used: bool) -> usize {
        suggested_watch_channel_size(
            self.capacity(),
            self.config.event_fresh_duration,
            true,
            trigger_used,
        )
    }

    /// The index of the oldest buffered event (only grows).
    pub fn start_index(&self) -> u64 {
        self.start_index
    }

    /// One past the index of the newest buffered event (only grows).
    pub fn end_index(&self) -> u64 {
        self.end_index
    }

    /// Whether an event was dropped from the history since the last `replace`.
    pub fn removed_event_since_relist(&self) -> bool {
        self.removed_event_since_relist
    }

    /// The object at `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.store.get(key)
    }

    /// Every object, sorted by key, with the cache RV (the list's `resourceVersion`, SPEC §2.4).
    pub fn list(&self) -> (Vec<Object>, ResourceVersion) {
        (
            self.store.values().cloned().collect(),
            self.resource_version,
        )
    }

    /// Applies an ADDED watch event from the internal reflector (`watchCache.Add`).
    pub fn add(&mut self, object: Object, now: SimTime) -> WatchCacheEvent {
        self.process_event(WatchEventType::Added, object, now)
    }

    /// Applies a MODIFIED watch event (`watchCache.Update`).
    pub fn update(&mut self, object: Object, now: SimTime) -> WatchCacheEvent {
        self.process_event(WatchEventType::Modified, object, now)
    }

    /// Applies a DELETED watch event; `object` is the last state with the deletion RV
    /// (`watchCache.Delete`).
    pub fn delete(&mut self, object: Object, now: SimTime) -> WatchCacheEvent {
        self.process_event(WatchEventType::Deleted, object, now)
    }

    /// Records a progress notification or storage bookmark: the cache is now up to date with
    /// `resource_version`, which may be a global revision with no object of this resource
    /// (`watchCache.UpdateResourceVersion`). Stored as is, even if lower (SPEC §14, B13).
    pub fn update_resource_version(&mut self, resource_version: ResourceVersion) {
        self.resource_version = resource_version;
    }

    /// Replaces the state with a fresh list at `list_resource_version` and forgets the history:
    /// the indices stay, `start_index` jumps to `end_index` (`watchCache.Replace`, `ResetLocked`).
    pub fn replace(&mut self, objects: Vec<Object>, list_resource_version: ResourceVersion) {
        let count = objects.len();
        self.store = BTreeMap::new();
        for object in objects {
            assert!(
                object.resource_version <= list_resource_version,
                "{object} is newer than its list"
            );
            self.store.insert(object.key.clone(), object);
        }
        assert_eq!(self.store.len(), count, "a list holds each key once");
        if !self.bugs.is(Bug::WatchCacheKeepsHistoryOnRelist) {
            // (Planted: classic, skipped: the history before the relist is kept.)
            self.cache.iter_mut().for_each(|slot| *slot = None);
            self.start_index = self.end_index;
            self.removed_event_since_relist = false;
        }
        self.snapshots = BTreeSet::from([list_resource_version]);
        self.list_resource_version = list_resource_version;
        self.resource_version = list_resource_version;
    }

    /// The buffered events a watch from `resource_version` must receive, read at once (see
    /// [`WatchCache::history_interval`]).
    pub fn get_interval(
        &self,
        resource_version: ResourceVersion,
    ) -> Result<Vec<WatchCacheEvent>, TooOldResourceVersion> {
        let mut interval = self.history_interval(resource_version)?;
        let events = self
            .read_interval(&mut interval, usize::MAX)
            .expect("a fresh interval is valid");
        Ok(events)
    }

    /// Where a watch from `resource_version` starts in the history: the buffered events with an
    /// RV strictly greater, or `TooOldResourceVersion` if the window no longer reaches back to
    /// it (`watchCache.getAllEventsSinceLocked`). The events are read later, a buffer at a
    /// time, and only while the history still holds them ([`WatchCache::read_interval`]).
    ///
    /// A watch from RV 0 ("any") is not served from here: the cacher sends it the cache state
    /// (`initial_events`) or starts it at the cache RV.
    pub fn history_interval(
        &self,
        resource_version: ResourceVersion,
    ) -> Result<HistoryInterval, TooOldResourceVersion> {
        let oldest_minus_one = self.oldest_resource_version().saturating_sub(1);
        if resource_version < oldest_minus_one {
            return Err(TooOldResourceVersion {
                requested: resource_version,
                oldest_minus_one,
            });
        }
        // Planted: k/k#24004 (B9), the event *at* the requested RV is served again.
        let after = if self.bugs.is(Bug::WatchCacheServesEventAtRv) {
            resource_version.saturating_sub(1)
        } else {
            resource_version
        };
        let start = self.first_index_after(after);
        if start < self.end_index {
            assert!(
                self.event_at(start).resource_version > after,
                "interval starts at or below its RV"
            );
        }
        Ok(HistoryInterval {
            next_index: start,
            end_index: self.end_index,
        })
    }

    /// The next events of `interval`, at most `max` (`watchCacheInterval.Next`, `fillBuffer`):
    /// an error once the history has dropped the first of them, as a full buffer overwrites its
    /// oldest slots (`isIndexValidLocked`, "cache interval invalidated").
    pub fn read_interval(
        &self,
        interval: &mut HistoryInterval,
        max: usize,
    ) -> Result<Vec<WatchCacheEvent>, IntervalInvalidated> {
        if interval.is_empty() {
            return Ok(Vec::new());
        }
        if interval.next_index < self.start_index {
            return Err(IntervalInvalidated {
                index: interval.next_index,
                oldest: self.start_index,
            });
        }
        let end = interval.end_index.min(
            interval
                .next_index
                .saturating_add(max.try_into().unwrap_or(u64::MAX)),
        );
        let events = (interval.next_index..end)
            .map(|index| self.event_at(index).clone())
            .collect();
        interval.next_index = end;
        Ok(events)
    }

    /// The cache state as synthetic ADDED events in key order, each with the cache RV as its
    /// event RV (the objects keep their own RVs): the initial events of an RV=0 watch or a
    /// watch-list (`newCacheIntervalFromStore`, SPEC §2.5, §2.10).
    pub fn initial_events(&self, now: SimTime) -> Vec<WatchCacheEvent> {
        self.store
            .values()
            .map(|object| WatchCacheEvent {
                event_type: WatchEventType::Added,
                object: object.clone(),
                prev_object: None,
                key: object.key.clone(),
                resource_version: self.resource_version,
                record_time: now,
            })
            .collect()
    }

    /// Whether a snapshot at or below `resource_version` is kept (`CanServeExactRV`).
    pub fn can_serve_exact(&self, resource_version: ResourceVersion) -> bool {
        self.snapshots
            .range(..=resource_version)
            .next_back()
            .is_some()
    }

    /// Drops the snapshots below etcd's compact revision (`WatchCacheStorage.Compact`, called
    /// by the cacher's compactor).
    pub fn compact_snapshots(&mut self, compact_revision: ResourceVersion) {
        self.snapshots = self.snapshots.split_off(&compact_revision);
    }

    /// The state at exactly `resource_version`, sorted by key (`waitAndListExactRV`,
    /// `GetExactSnapshotLocked`): the newest snapshot at or below it, which is the store with
    /// every buffered event after `resource_version` undone.
    pub fn list_at(
        &self,
        resource_version: ResourceVersion,
    ) -> Result<Vec<Object>, ExactListError> {
        if resource_version > self.resource_version {
            return Err(ExactListError::TooLarge {
                requested: resource_version,
                current: self.resource_version,
            });
        }
        if !self.can_serve_exact(resource_version) {
            return Err(ExactListError::NoSnapshot {
                requested: resource_version,
            });
        }
        let mut store = self.store.clone();
        let later = self
            .get_interval(resource_version)
            .expect("every event after a kept snapshot is in the history");
        for event in later.iter().rev() {
            match &event.prev_object {
                Some(previous) => store.insert(event.key.clone(), previous.clone()),
                None => store.remove(&event.key),
            };
        }
        Ok(store.into_values().collect())
    }

    fn process_event(
        &mut self,
        event_type: WatchEventType,
        object: Object,
        now: SimTime,
    ) -> WatchCacheEvent {
        let key = object.key.clone();
        let event = WatchCacheEvent {
            event_type,
            prev_object: self.store.get(&key).cloned(),
            key: key.clone(),
            resource_version: object.resource_version,
            object,
            record_time: now,
        };
        self.update_cache(event.clone(), now);
        if self.is_full() {
            let oldest = self.event_at(self.start_index).resource_version;
            self.snapshots = self.snapshots.split_off(&oldest);
        }
        self.snapshots.insert(event.resource_version);
        self.resource_version = event.resource_version;
        if event_type == WatchEventType::Deleted {
            self.store.remove(&key);
        } else {
            self.store.insert(key, event.object.clone());
        }
        event
    }

    /// Appends to the history, growing or shrinking it first if allowed and dropping the oldest
    /// event when it is still full (`watchCache.updateCache`).
    fn update_cache(&mut self, event: WatchCacheEvent, now: SimTime) {
        if let Some(newest) = self.newest() {
            assert!(
                event.resource_version > newest.resource_version,
                "history RVs must increase"
            );
        }
        self.resize_cache(now);
        if self.is_full() {
            let capacity = self.capacity() as u64;
            self.cache[(self.start_index % capacity) as usize] = None;
            self.start_index += 1;
            self.removed_event_since_relist = true;
        }
        let capacity = self.capacity() as u64;
        self.cache[(self.end_index % capacity) as usize] = Some(event);
        self.end_index += 1;
        assert!(
            self.end_index - self.start_index <= capacity,
            "history overflows its capacity"
        );
    }

    /// Doubles a full buffer whose oldest event is still fresh; halves one whose newest quarter
    /// begins with a stale event (`watchCacheHistory.resizeCacheLocked`), within the bounds.
    fn resize_cache(&mut self, now: SimTime) {
        if !self.is_full() {
            return;
        }
        let capacity = self.capacity();
        let fresh = self.config.event_fresh_duration;
        let oldest_age = now.saturating_since(self.event_at(self.start_index).record_time);
        if oldest_age < fresh {
            let grown = (capacity * 2).min(self.config.capacity_upper_bound);
            if grown > capacity {
                self.resize_to(grown);
            }
            return;
        }
        let quarter_index = self.end_index - (capacity / 4).max(1) as u64;
        if now.saturating_since(self.event_at(quarter_index).record_time) > fresh {
            let shrunk = (capacity / 2).max(self.config.capacity_lower_bound);
            if shrunk < capacity {
                self.resize_to(shrunk);
            }
        }
    }

    /// Moves the live events into a buffer of `capacity` slots, dropping the oldest ones if it
    /// is smaller (`watchCache.doCacheResizeLocked`).
    fn resize_to(&mut self, capacity: usize) {
        let live = self.end_index - self.start_index;
        if live > capacity as u64 {
            self.start_index = self.end_index - capacity as u64;
            self.removed_event_since_relist = true;
        }
        let old_capacity = self.capacity() as u64;
        let mut resized = vec![None; capacity];
        for index in self.start_index..self.end_index {
            resized[(index % capacity as u64) as usize] =
                self.cache[(index % old_capacity) as usize].take();
        }
        self.cache = resized;
        assert!(
            self.end_index - self.start_index <= capacity as u64,
            "resize lost the bound"
        );
    }

    /// The RV of the oldest event a watch can still be served: `listRV + 1` while nothing was
    /// dropped since the relist, else the first buffered event's RV.
    fn oldest_resource_version(&self) -> ResourceVersion {
        let bugs = self.bugs;
        // Planted: k/k#91415 (B9), evictions are forgotten and too-old watches are accepted.
        if self.removed_event_since_relist && !bugs.is(Bug::WatchCacheAcceptsEvictedRv) {
            assert!(
                self.end_index > self.start_index,
                "events were dropped from an empty history"
            );
            self.event_at(self.start_index).resource_version
        } else if bugs.is(Bug::WatchCacheAcceptsListRvMinusOne) {
            // Planted: k/k#49956 (B9), right after a relist a watch at listRV - 1 is accepted
            // and misses the event at listRV.
            self.list_resource_version
        } else if bugs.is(Bug::WatchCacheExpiresListRv) {
            // Planted: PR #68065 (B9), right after a relist a watch at the list RV gets 410.
            self.list_resource_version + 2
        } else {
            self.list_resource_version + 1
        }
    }

    /// Binary search for the first buffered index whose event RV exceeds `resource_version`.
    fn first_index_after(&self, resource_version: ResourceVersion) -> u64 {
        let (mut low, mut high) = (self.start_index, self.end_index);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.event_at(middle).resource_version > resource_version {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    fn event_at(&self, index: u64) -> &WatchCacheEvent {
        assert!(
            self.start_index <= index && index < self.end_index,
            "index {index} outside history"
        );
        self.cache[(index % self.capacity() as u64) as usize]
            .as_ref()
            .expect("live slot holds an event")
    }

    fn newest(&self) -> Option<&WatchCacheEvent> {
        (self.end_index > self.start_index).then(|| self.event_at(self.end_index - 1))
    }

    fn is_full(&self) -> bool {
        self.end_index - self.start_index == self.capacity() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_size_is_about_one_second_of_history_within_bounds() {
        let fresh = SimDuration::from_secs(75);
        assert_eq!(suggested_watch_channel_size(100, fresh, false, false), 10);
        assert_eq!(suggested_watch_channel_size(7500, fresh, false, false), 100);
        assert_eq!(
            suggested_watch_channel_size(102_400, fresh, false, false),
            100
        );
        assert_eq!(
            suggested_watch_channel_size(102_400, fresh, true, false),
            1000
        );
        assert_eq!(suggested_watch_channel_size(102_400, fresh, true, true), 10);
        assert_eq!(suggested_watch_channel_size(1501, fresh, false, false), 21);
    }

    fn cache_with_capacity(capacity: usize) -> WatchCache {
        WatchCache::new(WatchCacheConfig::fixed_for_tests(capacity), Bugs::NONE)
    }

    fn resource_versions(events: &[WatchCacheEvent]) -> Vec<ResourceVersion> {
        events.iter().map(|event| event.resource_version).collect()
    }

    /// A cache listed at `list_rv` with one key updated at each of `event_rvs`.
    fn listed_then_updated(
        capacity: usize,
        list_rv: ResourceVersion,
        event_rvs: &[ResourceVersion],
    ) -> WatchCache {
        let mut cache = cache_with_capacity(capacity);
        cache.replace(vec![Object::bare("ns/a", list_rv)], list_rv);
        for &rv in event_rvs {
            cache.update(Object::bare("ns/a", rv), SimTime(rv));
        }
        cache
    }

    #[test]
    fn interval_holds_events_strictly_after_requested_rv() {
        let cache = listed_then_updated(10, 10, &[11, 12, 13]);
        assert_eq!(
            resource_versions(&cache.get_interval(10).unwrap()),
            vec![11, 12, 13]
        );
        assert_eq!(
            resource_versions(&cache.get_interval(11).unwrap()),
            vec![12, 13]
        );
        assert_eq!(
            resource_versions(&cache.get_interval(13).unwrap()),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn watch_from_a_future_rv_gets_an_empty_interval() {
        let cache = listed_then_updated(10, 10, &[11]);
        assert_eq!(cache.get_interval(500), Ok(Vec::new()));
    }

    #[test]
    fn watch_from_below_oldest_minus_one_is_too_old() {
        let cache = listed_then_updated(10, 10, &[11]);
        let error = cache.get_interval(9).unwrap_err();
        assert_eq!(
            error,
            TooOldResourceVersion {
                requested: 9,
                oldest_minus_one: 10
            }
        );
        assert_eq!(error.to_string(), "too old resource version: 9 (10)");
        assert_eq!(error.to_status().code, 410);
        assert_eq!(error.to_status().reason, StatusReason::Expired);
    }

    #[test]
    fn oldest_is_list_rv_plus_one_right_after_a_relist() {
        // B9, PR #68065: a watch at the list RV right after init is served, not 410.
        let cache = listed_then_updated(10, 10, &[]);
        assert_eq!(cache.get_interval(10), Ok(Vec::new()));
        // B9, k/k#49956: a watch at listRV - 1 would miss the event at listRV: 410.
        assert_eq!(
            cache.get_interval(9),
            Err(TooOldResourceVersion {
                requested: 9,
                oldest_minus_one: 10
            })
        );
    }

    #[test]
    fn eviction_moves_oldest_to_first_buffered_event() {
        let cache = listed_then_updated(3, 10, &[11, 12, 13, 14, 15]);
        assert!(cache.removed_event_since_relist());
        assert_eq!((cache.start_index(), cache.end_index()), (2, 5));
        assert_eq!(
            resource_versions(&cache.get_interval(12).unwrap()),
            vec![13, 14, 15]
        );
        assert_eq!(
            cache.get_interval(11),
            Err(TooOldResourceVersion {
                requested: 11,
                oldest_minus_one: 12
            })
        );
    }

    #[test]
    fn after_eviction_watches_from_below_the_window_get_410() {
        // B9, k/k#91415: once events are evicted, listRV no longer bounds the window.
        let cache = listed_then_updated(2, 10, &[11, 12, 13]);
        for rv in [0, 5, 10] {
            assert!(
                cache.get_interval(rv).is_err(),
                "watch from {rv} must be too old"
            );
        }
        assert_eq!(
            resource_versions(&cache.get_interval(11).unwrap()),
            vec![12, 13]
        );
    }

    #[test]
    fn eviction_with_gaps_in_rvs_uses_the_first_buffered_rv() {
        let cache = listed_then_updated(2, 10, &[15, 20, 30]);
        assert_eq!(
            cache.get_interval(18),
            Err(TooOldResourceVersion {
                requested: 18,
                oldest_minus_one: 19
            })
        );
        assert_eq!(
            resource_versions(&cache.get_interval(19).unwrap()),
            vec![20, 30]
        );
    }

    #[test]
    fn replace_resets_history_and_indices_only_grow() {
        let mut cache = listed_then_updated(3, 10, &[11, 12, 13, 14]);
        let end_before = cache.end_index();
        cache.replace(vec![Object::bare("ns/b", 25)], 30);
        assert_eq!(
            (cache.start_index(), cache.end_index()),
            (end_before, end_before)
        );
        assert!(!cache.removed_event_since_relist());
        assert_eq!(
            (cache.resource_version(), cache.list_resource_version()),
            (30, 30)
        );
        assert_eq!(cache.list(), (vec![Object::bare("ns/b", 25)], 30));
    }

    #[test]
    fn watch_from_an_old_rv_after_replace_gets_410() {
        // SPEC §2.8, T5: a client re-watching from before the relist must relist itself.
        let mut cache = listed_then_updated(100, 500, &[501, 502]);
        cache.replace(vec![Object::bare("ns/a", 502)], 530);
        assert_eq!(
            cache.get_interval(510),
            Err(TooOldResourceVersion {
                requested: 510,
                oldest_minus_one: 530
            })
        );
        assert_eq!(cache.get_interval(530), Ok(Vec::new()));
        cache.update(Object::bare("ns/a", 531), SimTime(1));
        assert_eq!(
            resource_versions(&cache.get_interval(530).unwrap()),
            vec![531]
        );
    }

    #[test]
    fn events_carry_the_previous_state_from_the_store() {
        let mut cache = cache_with_capacity(10);
        cache.replace(Vec::new(), 1);
        let added = cache.add(Object::bare("ns/a", 2), SimTime(5));
        assert_eq!(
            (added.event_type, added.prev_object.clone()),
            (WatchEventType::Added, None)
        );
        assert_eq!(added.record_time, SimTime(5));
        let updated = cache.update(Object::bare("ns/a", 3), SimTime(6));
        assert_eq!(updated.prev_object, Some(Object::bare("ns/a", 2)));
        let deleted = cache.delete(Object::bare("ns/a", 4), SimTime(7));
        assert_eq!(deleted.prev_object, Some(Object::bare("ns/a", 3)));
        assert_eq!(
            (deleted.object.resource_version, deleted.resource_version),
            (4, 4)
        );
        assert_eq!(cache.get(&ObjectKey::new("ns/a")), None);
        assert_eq!(cache.resource_version(), 4);
    }

    #[test]
    fn progress_notification_moves_the_cache_rv_but_not_the_history() {
        let mut cache = listed_then_updated(10, 10, &[11]);
        cache.update_resource_version(50);
        assert_eq!(cache.resource_version(), 50);
        assert_eq!(cache.list().1, 50, "a list reports the progress RV");
        assert_eq!(
            resource_versions(&cache.get_interval(10).unwrap()),
            vec![11]
        );
        assert_eq!(cache.get_interval(50), Ok(Vec::new()));
    }

    #[test]
    fn list_is_sorted_by_key() {
        let mut cache = cache_with_capacity(10);
        cache.replace(vec![Object::bare("ns/c", 3), Object::bare("ns/a", 1)], 5);
        cache.add(Object::bare("ns/b", 6), SimTime(0));
        let keys: Vec<String> = cache.list().0.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["ns/a", "ns/b", "ns/c"]);
    }

    #[test]
    fn initial_events_are_the_state_in_key_order_at_the_cache_rv() {
        let mut cache = cache_with_capacity(10);
        cache.replace(vec![Object::bare("ns/b", 9), Object::bare("ns/a", 7)], 10);
        cache.update_resource_version(12);
        let events = cache.initial_events(SimTime(3));
        let objects: Vec<Object> = events.iter().map(|event| event.object.clone()).collect();
        assert_eq!(
            objects,
            vec![Object::bare("ns/a", 7), Object::bare("ns/b", 9)]
        );
        assert!(
            events
                .iter()
                .all(|e| e.event_type == WatchEventType::Added && e.resource_version == 12)
        );
    }

    #[test]
    fn a_fixed_test_capacity_never_resizes() {
        let cache = listed_then_updated(2, 10, &[11, 12, 13]);
        assert_eq!(cache.capacity(), 2);
    }

    fn resizing_cache(lower: usize, upper: usize) -> WatchCache {
        let mut cache = WatchCache::new(
            WatchCacheConfig {
                capacity_lower_bound: lower,
                capacity_upper_bound: upper,
                ..WatchCacheConfig::default()
            },
            Bugs::NONE,
        );
        cache.replace(Vec::new(), 1);
        cache
    }

    #[test]
    fn with_default_settings_a_watch_from_a_sixty_second_old_rv_is_served() {
        // F1: about 7 events a second (the `informer` workload's rate, rounded up) for five
        // minutes; the history grows past 100 events to keep 75 s, so a client resuming
        // from an RV it got 60 s ago is served, where a fixed 100 would answer 410.
        let mut cache = WatchCache::new(WatchCacheConfig::default(), Bugs::NONE);
        cache.replace(Vec::new(), 1);
        let (mut rv, mut now_ms) = (1, 0);
        let mut rv_at_ms = BTreeMap::new();
        while now_ms < 300_000 {
            rv += 1;
            now_ms += 140;
            cache.add(Object::bare(&format!("ns/{rv}"), rv), SimTime(now_ms));
            rv_at_ms.insert(now_ms, rv);
        }
        let (_, &sixty_seconds_ago) = rv_at_ms
            .range(..=now_ms - 60_000)
            .next_back()
            .expect("five minutes of events");
        let events = cache
            .get_interval(sixty_seconds_ago)
            .expect("60 s of history are kept");
        assert_eq!(events.len() as u64, rv - sixty_seconds_ago);
        assert!(cache.capacity() > DEFAULT_CAPACITY_LOWER_BOUND);
        assert!(
            cache.capacity() <= 1_600,
            "grown only as far as 75 s need: {}",
            cache.capacity()
        );
        let fixed = listed_then_updated(100, 1, &(2..=rv).collect::<Vec<_>>());
        assert!(
            fixed.get_interval(sixty_seconds_ago).is_err(),
            "a fixed 100 events hold 14 s"
        );
    }

    #[test]
    fn a_watcher_channel_follows_the_current_capacity() {
        let mut cache = resizing_cache(10, 10_000);
        assert_eq!(cache.suggested_watch_channel_size(false), 10);
        for rv in 2..2_000 {
            cache.add(Object::bare(&format!("ns/{rv}"), rv), SimTime(rv));
        }
        assert_eq!(cache.capacity(), 2_560);
        assert_eq!(
            cache.suggested_watch_channel_size(false),
            35,
            "ceil(2560 / 75)"
        );
        assert_eq!(cache.suggested_watch_channel_size(true), 10, "a trigger");
    }

    #[test]
    fn full_buffer_doubles_while_its_oldest_event_is_fresh() {
        let mut cache = resizing_cache(2, 8);
        for rv in 2..12 {
            cache.add(Object::bare(&format!("ns/{rv}"), rv), SimTime(rv * 1000));
        }
        assert_eq!(cache.capacity(), 8, "doubled twice, then capped");
        assert_eq!(cache.end_index() - cache.start_index(), 8);
        assert!(cache.removed_event_since_relist());
    }

    #[test]
    fn full_buffer_halves_when_its_newest_quarter_is_stale() {
        let mut cache = resizing_cache(2, 8);
        for rv in 2..10 {
            cache.add(Object::bare(&format!("ns/{rv}"), rv), SimTime(0));
        }
        assert_eq!(cache.capacity(), 8);
        cache.add(Object::bare("ns/late", 10), SimTime(76_000));
        assert_eq!(cache.capacity(), 4);
        assert_eq!(
            resource_versions(&cache.get_interval(6).unwrap()),
            vec![7, 8, 9, 10]
        );
        assert!(
            cache.get_interval(5).is_err(),
            "halving evicted the older events"
        );
    }

    #[test]
    fn exact_list_rolls_the_store_back_to_the_requested_rv() {
        let mut cache = cache_with_capacity(10);
        cache.replace(vec![Object::bare("ns/a", 5)], 10);
        cache.update(Object::bare("ns/a", 11), SimTime(0));
        cache.add(Object::bare("ns/b", 12), SimTime(0));
        cache.delete(Object::bare("ns/a", 13), SimTime(0));
        assert_eq!(cache.list_at(10), Ok(vec![Object::bare("ns/a", 5)]));
        assert_eq!(cache.list_at(11), Ok(vec![Object::bare("ns/a", 11)]));
        assert_eq!(
            cache.list_at(12),
            Ok(vec![Object::bare("ns/a", 11), Object::bare("ns/b", 12)])
        );
        assert_eq!(cache.list_at(13), Ok(vec![Object::bare("ns/b", 12)]));
    }

    #[test]
    fn exact_list_outside_the_window_fails() {
        let cache = listed_then_updated(2, 10, &[11, 12, 13]);
        assert_eq!(
            cache.list_at(11),
            Err(ExactListError::NoSnapshot { requested: 11 }),
            "a full history drops the snapshots below its oldest event, 12"
        );
        assert!(cache.list_at(12).is_ok());
        assert_eq!(
            cache.list_at(14),
            Err(ExactListError::TooLarge {
                requested: 14,
                current: 13
            })
        );
    }

    #[test]
    fn snapshots_below_the_compact_revision_are_dropped() {
        let mut cache = listed_then_updated(10, 10, &[12, 15]);
        assert!(cache.can_serve_exact(11), "the snapshot at 10 serves 11");
        cache.compact_snapshots(13);
        assert!(!cache.can_serve_exact(14), "12 was dropped, 15 is newer");
        assert!(cache.can_serve_exact(15));
    }

    mod reference_model {
        //! Random operation sequences against a naive reference: the list and every event since
        //! the last relist, with the window computed from the capacity alone.

        use proptest::prelude::*;

        use super::*;

        #[derive(Clone, Debug)]
        enum Operation {
            /// Create or update key `k`.
            Write(u8),
            /// Delete key `k` if present.
            Delete(u8),
            /// Relist `gap` revisions later; keys in `deleted_mask` vanished meanwhile.
            Replace { deleted_mask: u8, gap: u64 },
            /// Ask for the interval and the exact list at `back` revisions below current + 2.
            Query { back: u64 },
        }

        fn operation() -> impl Strategy<Value = Operation> {
            prop_oneof![
                4 => (0u8..4).prop_map(Operation::Write),
                2 => (0u8..4).prop_map(Operation::Delete),
                1 => (any::<u8>(), 1u64..4)
                    .prop_map(|(deleted_mask, gap)| Operation::Replace { deleted_mask, gap }),
                4 => (0u64..14).prop_map(|back| Operation::Query { back }),
            ]
        }

        /// Everything since the last relist, kept in full.
        struct Reference {
            list_resource_version: ResourceVersion,
            listed: BTreeMap<ObjectKey, Object>,
            events: Vec<(ResourceVersion, ObjectKey, Option<Object>)>,
            resource_version: ResourceVersion,
        }

        impl Reference {
            fn listed(
                listed: BTreeMap<ObjectKey, Object>,
                resource_version: ResourceVersion,
            ) -> Self {
                let events = Vec::new();
                Reference {
                    list_resource_version: resource_version,
                    listed,
                    events,
                    resource_version,
                }
            }

            fn state_at(&self, resource_version: ResourceVersion) -> Vec<Object> {
                let mut state = self.listed.clone();
                for (_, key, object) in self
                    .events
                    .iter()
                    .filter(|(rv, _, _)| *rv <= resource_version)
                {
                    match object {
                        Some(object) => state.insert(key.clone(), object.clone()),
                        None => state.remove(key),
                    };
                }
                state.into_values().collect()
            }

            /// The oldest snapshot kept: the list's, until the history is full; then the
            /// oldest buffered event's.
            fn oldest_snapshot(&self, capacity: usize) -> ResourceVersion {
                match self.events.len().checked_sub(capacity) {
                    Some(evicted) => self.events[evicted].0,
                    None => self.list_resource_version,
                }
            }

            /// The oldest deliverable RV when only the newest `capacity` events are kept.
            fn oldest(&self, capacity: usize) -> ResourceVersion {
                let evicted = self.events.len().saturating_sub(capacity);
                if evicted == 0 {
                    self.list_resource_version + 1
                } else {
                    self.events[evicted].0
                }
            }
        }

        fn apply(
            cache: &mut WatchCache,
            reference: &mut Reference,
            operation: &Operation,
            capacity: usize,
        ) {
            let current = reference.state_at(reference.resource_version);
            let key_of = |k: u8| ObjectKey::new(&format!("ns/{k}"));
            match *operation {
                Operation::Write(k) => {
                    reference.resource_version += 1;
                    let object = Object::bare(key_of(k).as_str(), reference.resource_version);
                    if current.iter().any(|o| o.key == object.key) {
                        cache.update(object.clone(), SimTime::ZERO);
                    } else {
                        cache.add(object.clone(), SimTime::ZERO);
                    }
                    reference.events.push((
                        object.resource_version,
                        object.key.clone(),
                        Some(object),
                    ));
                }
                Operation::Delete(k) => {
                    let Some(object) = current.iter().find(|o| o.key == key_of(k)) else {
                        return;
                    };
                    reference.resource_version += 1;
                    cache.delete(
                        object.with_resource_version(reference.resource_version),
                        SimTime::ZERO,
                    );
                    reference
                        .events
                        .push((reference.resource_version, object.key.clone(), None));
                }
                Operation::Replace { deleted_mask, gap } => {
                    let kept = current.into_iter().filter(|o| {
                        deleted_mask & (1 << (o.key.name().parse::<u8>().unwrap())) == 0
                    });
                    let listed: BTreeMap<ObjectKey, Object> =
                        kept.map(|o| (o.key.clone(), o)).collect();
                    reference.resource_version += gap;
                    cache.replace(
                        listed.values().cloned().collect(),
                        reference.resource_version,
                    );
                    *reference = Reference::listed(listed, reference.resource_version);
                }
                Operation::Query { back } => check_query(
                    cache,
                    reference,
                    (reference.resource_version + 2).saturating_sub(back),
                    capacity,
                ),
            }
        }

        fn check_query(
            cache: &WatchCache,
            reference: &Reference,
            resource_version: ResourceVersion,
            capacity: usize,
        ) {
            let oldest = reference.oldest(capacity);
            match cache.get_interval(resource_version) {
                Ok(events) => {
                    assert!(
                        resource_version + 1 >= oldest,
                        "accepted {resource_version} below the window"
                    );
                    let expected: Vec<_> = reference
                        .events
                        .iter()
                        .filter(|(rv, _, _)| *rv > resource_version)
                        .cloned()
                        .collect();
                    let actual: Vec<_> = events
                        .into_iter()
                        .map(|event| {
                            let state = (event.event_type != WatchEventType::Deleted)
                                .then_some(event.object);
                            (event.resource_version, event.key, state)
                        })
                        .collect();
                    assert_eq!(actual, expected, "interval after {resource_version}");
                    let snapshot = resource_version >= reference.oldest_snapshot(capacity);
                    assert_eq!(cache.can_serve_exact(resource_version), snapshot);
                    if snapshot && resource_version <= cache.resource_version() {
                        assert_eq!(
                            cache.list_at(resource_version),
                            Ok(reference.state_at(resource_version))
                        );
                    }
                }
                Err(error) => {
                    assert!(
                        resource_version + 1 < oldest,
                        "rejected {resource_version} inside the window"
                    );
                    assert_eq!(error.oldest_minus_one, oldest - 1);
                }
            }
        }

        proptest! {
            #[test]
            fn watch_cache_intervals_match_a_naive_event_log(
                capacity in 1usize..6,
                operations in proptest::collection::vec(operation(), 1..60),
            ) {
                let mut cache = cache_with_capacity(capacity);
                cache.replace(Vec::new(), 1);
                let mut reference = Reference::listed(BTreeMap::new(), 1);
                for operation in &operations {
                    apply(&mut cache, &mut reference, operation, capacity);
                    prop_assert_eq!(cache.list().0, reference.state_at(reference.resource_version));
                    prop_assert_eq!(cache.resource_version(), reference.resource_version);
                }
            }
        }
    }
}
