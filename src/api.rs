//! The API between clients and apiservers: list and watch requests, their options and
//! answers, as `metav1.ListOptions`, `metav1.List` and the watch stream carry them.
//!
//! Resource versions in requests keep the three meanings the API gives the string: unset
//! (`""`), `"0"`, and a number (SPEC §2.4, §2.5).

use serde::{Deserialize, Serialize};

pub use crate::apiserver::cache_watcher::LabelSelector;
pub use crate::apiserver::event::{Status, StatusReason, WatchEvent};
use crate::object::{Object, ResourceVersion};

/// The `resourceVersion` parameter of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceVersionParam {
    /// `""`: the most recent state (a consistent read).
    Unset,
    /// `"0"`: any state the server has (possibly stale).
    Zero,
    /// A number.
    At(ResourceVersion),
}

/// The `resourceVersionMatch` parameter of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceVersionMatch {
    /// Not given: legacy semantics (SPEC §2.4).
    #[default]
    Unset,
    /// At least as new as the given resource version.
    NotOlderThan,
    /// Exactly the given resource version.
    Exact,
}

/// Where a paginated list continues (`continue` token): after `start_key`, at
/// `resource_version`; a negative resource version is an "inconsistent continue" that reads
/// the rest at the latest revision (SPEC §2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContinueToken {
    /// The last key returned; the next page starts after it.
    pub last_key: String,
    /// The revision the list is read at, or -1 for the latest.
    pub resource_version: i64,
}

/// A list request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    /// `resourceVersion`.
    pub resource_version: ResourceVersionParam,
    /// `resourceVersionMatch`.
    pub resource_version_match: ResourceVersionMatch,
    /// `limit`: at most this many items; 0 means all.
    pub limit: u64,
    /// `continue`: the token of the previous page.
    pub continue_token: Option<ContinueToken>,
    /// `labelSelector`.
    pub label_selector: Option<LabelSelector>,
}

impl ListOptions {
    /// A list of everything with the given resource version and no limit.
    pub fn at(resource_version: ResourceVersionParam) -> ListOptions {
        ListOptions {
            resource_version,
            resource_version_match: ResourceVersionMatch::Unset,
            limit: 0,
            continue_token: None,
            label_selector: None,
        }
    }
}

/// One page of a list (`metav1.List`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    /// The objects, sorted by key.
    pub items: Vec<Object>,
    /// The list's `metadata.resourceVersion`: may be a global revision newer than every item.
    pub resource_version: ResourceVersion,
    /// Set when more items follow.
    pub continue_token: Option<ContinueToken>,
}

/// A watch request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchOptions {
    /// `resourceVersion`.
    pub resource_version: ResourceVersionParam,
    /// `resourceVersionMatch` (watch-list needs `NotOlderThan`).
    pub resource_version_match: ResourceVersionMatch,
    /// `sendInitialEvents`: stream the current state first, then a bookmark marking its end.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `timeoutSeconds`, in milliseconds: the server closes the stream cleanly then.
    pub timeout_ms: Option<u64>,
    /// `labelSelector`.
    pub label_selector: Option<LabelSelector>,
    /// The namespace of a namespace-scoped watch (`/namespaces/{ns}/pods?watch=1`); `None`
    /// watches every namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Why a request got no answer from the API: an HTTP error status, or no connection at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestError {
    /// The server answered with an error status.
    Status(Status),
    /// The connection was refused (the apiserver is down or restarting).
    ConnectionRefused,
}

impl RequestError {
    /// 410 Gone (`apierrors.IsResourceExpired` / `IsGone`).
    pub fn is_expired(&self) -> bool {
        matches!(self, RequestError::Status(status) if status.reason == StatusReason::Expired)
    }

    /// 504 with cause `ResourceVersionTooLarge` (`isTooLargeResourceVersionError`).
    pub fn is_too_large_resource_version(&self) -> bool {
        matches!(self, RequestError::Status(status) if status.reason == StatusReason::Timeout)
    }

    /// 429 Too Many Requests (`apierrors.IsTooManyRequests`).
    pub fn is_too_many_requests(&self) -> bool {
        matches!(self, RequestError::Status(status) if status.reason == StatusReason::TooManyRequests)
    }

    /// 500 (`apierrors.IsInternalError`).
    pub fn is_internal_error(&self) -> bool {
        matches!(self, RequestError::Status(status) if status.reason == StatusReason::InternalError)
    }
}

/// Identifies one request of one client.
pub type RequestId = u64;

/// A message from a client to an apiserver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// A list request.
    List {
        /// The request.
        id: RequestId,
        /// Its options.
        options: ListOptions,
    },
    /// A watch request.
    Watch {
        /// The request (and so the stream).
        id: RequestId,
        /// Its options.
        options: WatchOptions,
    },
    /// The client closes a watch stream.
    StopWatch {
        /// The stream.
        id: RequestId,
    },
}

/// A message from an apiserver to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The answer to a list request.
    List {
        /// The request.
        id: RequestId,
        /// The page, or why not.
        result: Result<ListResponse, RequestError>,
    },
    /// A watch request was refused before its stream began (an HTTP error status, e.g. 429,
    /// or 410 from a server that answers a too-old watch without a stream).
    WatchRejected {
        /// The request.
        id: RequestId,
        /// Why.
        error: RequestError,
    },
    /// One event on a watch stream (the stream is a 200 response).
    WatchEvent {
        /// The stream.
        id: RequestId,
        /// The event; an `Error` event ends the stream.
        event: WatchEvent,
    },
    /// The server closed the watch stream cleanly (timeout, slow consumer, reinit, shutdown).
    WatchClosed {
        /// The stream.
        id: RequestId,
    },
}
