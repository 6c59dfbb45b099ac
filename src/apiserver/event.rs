//! The watch cache's internal event, which carries the previous state of the object so each
//! watcher can apply its own filter (the event a client reads is [`crate::api::WatchEvent`]).

use serde::{Deserialize, Serialize};

use crate::api::WatchEventType;
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::SimTime;

/// One event in the watch cache's history (`watchCacheEvent`).
///
/// The cacher builds one per write it observes from etcd, looking `prev_object` up in its store
/// before applying the write, so that every watcher can turn a selector transition into ADDED or
/// DELETED (SPEC §2.2, §2.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCacheEvent {
    /// ADDED, MODIFIED, DELETED, or BOOKMARK for a bookmark the cacher makes itself.
    pub event_type: WatchEventType,
    /// The new state; for a DELETED event, the last state with the deletion RV; for a
    /// bookmark, an empty object carrying only the RV.
    pub object: Object,
    /// The state in the cache store before this event, if the key was present.
    pub prev_object: Option<Object>,
    /// The object's key.
    pub key: ObjectKey,
    /// The etcd revision of the event.
    pub resource_version: ResourceVersion,
    /// When the cache recorded the event; drives the history resize rule (SPEC §2.3).
    pub record_time: SimTime,
}

impl WatchCacheEvent {
    /// A bookmark at `resource_version`: an empty object with only its RV set, as the cacher's
    /// bookmark timer makes them (`Cacher.dispatchEvents`).
    pub fn bookmark(resource_version: ResourceVersion, record_time: SimTime) -> WatchCacheEvent {
        let object = Object::bare("", resource_version);
        WatchCacheEvent {
            event_type: WatchEventType::Bookmark,
            key: object.key.clone(),
            object,
            prev_object: None,
            resource_version,
            record_time,
        }
    }

    /// Whether this is a bookmark rather than a change of an object.
    pub fn is_bookmark(&self) -> bool {
        self.event_type == WatchEventType::Bookmark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmark_event_carries_only_its_resource_version() {
        let bookmark = WatchCacheEvent::bookmark(42, SimTime(7));
        assert!(bookmark.is_bookmark());
        assert_eq!(bookmark.object.resource_version, 42);
        assert_eq!(bookmark.key.as_str(), "");
        assert!(bookmark.prev_object.is_none());
    }
}
