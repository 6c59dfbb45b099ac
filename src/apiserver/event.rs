//! Watch events on both sides of the cacher: the watch cache's internal event, which carries
//! the previous state of the object so each watcher can apply its own filter, and the event a
//! client reads from its watch stream.

use serde::{Deserialize, Serialize};

use crate::api::ContinueToken;
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::SimTime;

/// The type of a watch event (`watch.EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WatchEventType {
    /// The object appeared (or entered the watcher's selector).
    Added,
    /// The object changed and still matches.
    Modified,
    /// The object was deleted (or left the watcher's selector).
    Deleted,
    /// Only a resource version: everything up to it has been sent.
    Bookmark,
    /// The watch failed; the stream ends after this event.
    Error,
}

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

/// Why a request failed, with its HTTP code (`metav1.StatusReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusReason {
    /// 410 Gone: the requested resource version is too old (compacted or out of the window).
    Expired,
    /// 429: the cache is (re)initializing; retry later.
    TooManyRequests,
    /// 504: the cache did not reach the requested resource version in time.
    Timeout,
    /// 500.
    InternalError,
}

impl StatusReason {
    /// The HTTP status code of this reason.
    pub fn code(self) -> u16 {
        match self {
            StatusReason::Expired => 410,
            StatusReason::TooManyRequests => 429,
            StatusReason::Timeout => 504,
            StatusReason::InternalError => 500,
        }
    }
}

/// A failed request or a watch `ERROR` event (`metav1.Status`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// The HTTP code: 410, 429, 504 or 500.
    pub code: u16,
    /// The machine-readable reason.
    pub reason: StatusReason,
    /// The human-readable message, e.g. `too old resource version: 5 (9)`.
    pub message: String,
    /// `ListMeta.Continue` of a 410 on an expired continuation: an inconsistent token that
    /// reads the rest of the list at the latest revision (etcd3 store.go
    /// `handleCompactedErrorForPaging`, PR #67284).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<ContinueToken>,
}

impl Status {
    /// A status for `reason`, with the code that belongs to it.
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Status {
        Status {
            code: reason.code(),
            reason,
            message: message.into(),
            continue_token: None,
        }
    }
}

/// One event on a client's watch stream (`watch.Event` after encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchEvent {
    /// The object appeared, or entered the selector.
    Added(Object),
    /// The object changed.
    Modified(Object),
    /// The object was deleted, or left the selector: its last matching state, with the RV of
    /// the event that removed it.
    Deleted(Object),
    /// Progress: every event up to `resource_version` has been sent.
    Bookmark {
        /// The bookmark's resource version.
        resource_version: ResourceVersion,
        /// The `k8s.io/initial-events-end: "true"` annotation that ends the initial events of a
        /// watch-list stream (SPEC §2.10).
        initial_events_end: bool,
    },
    /// The watch failed; the stream ends.
    Error(Status),
}

impl WatchEvent {
    /// The event's type.
    pub fn event_type(&self) -> WatchEventType {
        match self {
            WatchEvent::Added(_) => WatchEventType::Added,
            WatchEvent::Modified(_) => WatchEventType::Modified,
            WatchEvent::Deleted(_) => WatchEventType::Deleted,
            WatchEvent::Bookmark { .. } => WatchEventType::Bookmark,
            WatchEvent::Error(_) => WatchEventType::Error,
        }
    }

    /// The resource version the client takes from the event, or `None` for an error.
    pub fn resource_version(&self) -> Option<ResourceVersion> {
        match self {
            WatchEvent::Added(object)
            | WatchEvent::Modified(object)
            | WatchEvent::Deleted(object) => Some(object.resource_version),
            WatchEvent::Bookmark {
                resource_version, ..
            } => Some(*resource_version),
            WatchEvent::Error(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_follows_its_reason() {
        let status = Status::new(StatusReason::Expired, "too old resource version: 1 (5)");
        assert_eq!(status.code, 410);
        assert_eq!(StatusReason::TooManyRequests.code(), 429);
        assert_eq!(StatusReason::Timeout.code(), 504);
        assert_eq!(StatusReason::InternalError.code(), 500);
    }

    #[test]
    fn bookmark_event_carries_only_its_resource_version() {
        let bookmark = WatchCacheEvent::bookmark(42, SimTime(7));
        assert!(bookmark.is_bookmark());
        assert_eq!(bookmark.object.resource_version, 42);
        assert_eq!(bookmark.key.as_str(), "");
        assert!(bookmark.prev_object.is_none());
    }

    #[test]
    fn client_event_reports_type_and_resource_version() {
        let deleted = WatchEvent::Deleted(Object::bare("ns/a", 9));
        assert_eq!(deleted.event_type(), WatchEventType::Deleted);
        assert_eq!(deleted.resource_version(), Some(9));
        let error = WatchEvent::Error(Status::new(StatusReason::Expired, "gone"));
        assert_eq!(error.event_type(), WatchEventType::Error);
        assert_eq!(error.resource_version(), None);
    }
}
