//! The API between clients and apiservers: list and watch requests, their options and
//! answers, as `metav1.ListOptions`, `metav1.List` and the watch stream carry them.
//!
//! Resource versions in requests keep the three meanings the API gives the string: unset
//! (`""`), `"0"`, and a number (SPEC §2.4, §2.5).
//!
//! A leaf: clients, apiservers, checks and traces all speak this vocabulary, and each wire type
//! has its one rendering here (`Display`), which the trace, the harness and the golden timelines
//! share.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::object::{Object, ResourceVersion};

/// An equality label selector: `name=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelSelector {
    /// The label name, e.g. `app`.
    pub name: String,
    /// The required value.
    pub value: String,
}

impl LabelSelector {
    /// Whether `object` carries the label with the value (`labels.Selector.Matches`).
    pub fn matches(&self, object: &Object) -> bool {
        object.label(&self.name) == Some(self.value.as_str())
    }
}

/// A field the simulated objects expose to field selectors, as pods' `GetAttrs` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Field {
    /// `metadata.name`.
    MetadataName,
    /// `metadata.namespace`.
    MetadataNamespace,
    /// `spec.nodeName` (`""` while unscheduled).
    SpecNodeName,
}

impl Field {
    /// The field's path, as a selector names it.
    pub fn path(self) -> &'static str {
        match self {
            Field::MetadataName => "metadata.name",
            Field::MetadataNamespace => "metadata.namespace",
            Field::SpecNodeName => "spec.nodeName",
        }
    }

    /// The field's value on `object`.
    pub fn value(self, object: &Object) -> &str {
        match self {
            Field::MetadataName => object.key.name(),
            Field::MetadataNamespace => object.key.namespace(),
            Field::SpecNodeName => &object.node_name,
        }
    }
}

/// One term of a field selector: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldTerm {
    /// The field compared.
    pub field: Field,
    /// The value compared with.
    pub value: String,
    /// `=` (true) or `!=` (false).
    pub equal: bool,
}

/// A field selector: every term must hold (`fields.Selector`, `fields.AndSelectors`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldSelector {
    /// The terms.
    pub terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// `field=value`.
    pub fn equal(field: Field, value: &str) -> FieldSelector {
        FieldSelector {
            terms: vec![FieldTerm {
                field,
                value: value.to_owned(),
                equal: true,
            }],
        }
    }

    /// `field!=value`.
    pub fn not_equal(field: Field, value: &str) -> FieldSelector {
        FieldSelector { terms: Vec::new() }.and_not(field, value)
    }

    /// This selector and `field!=value`.
    pub fn and_not(mut self, field: Field, value: &str) -> FieldSelector {
        self.terms.push(FieldTerm {
            field,
            value: value.to_owned(),
            equal: false,
        });
        self
    }

    /// This selector and `field=value`.
    pub fn and(mut self, field: Field, value: &str) -> FieldSelector {
        self.terms.push(FieldTerm {
            field,
            value: value.to_owned(),
            equal: true,
        });
        self
    }

    /// Whether every term holds for `object` (`Selector.Matches` over the object's fields).
    pub fn matches(&self, object: &Object) -> bool {
        self.terms
            .iter()
            .all(|term| (term.field.value(object) == term.value) == term.equal)
    }

    /// The value an equality term pins `field` to (`Selector.RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: Field) -> Option<&str> {
        self.terms
            .iter()
            .find(|term| term.field == field && term.equal)
            .map(|term| term.value.as_str())
    }
}

/// What a client's lists and watches select: a label selector and a field selector, each
/// optional (`ListOptions.LabelSelector`, `ListOptions.FieldSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Selectors {
    /// The label selector, if any.
    pub label: Option<LabelSelector>,
    /// The field selector, if any.
    pub field: Option<FieldSelector>,
}

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
    /// 400: the request's options contradict each other (`ValidateListOptions`).
    BadRequest,
}

impl StatusReason {
    /// The HTTP status code of this reason.
    pub fn code(self) -> u16 {
        match self {
            StatusReason::Expired => 410,
            StatusReason::TooManyRequests => 429,
            StatusReason::Timeout => 504,
            StatusReason::InternalError => 500,
            StatusReason::BadRequest => 400,
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
    /// The `Retry-After` header of a 429, in seconds: when the client's REST layer retries the
    /// same request (`errors.NewTooManyRequests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// The message (and cause) that marks a 504 as an RV the storage has not reached
/// (`storage.NewTooLargeResourceVersionError`); client-go tells it apart from other 504s by it.
pub const TOO_LARGE_RESOURCE_VERSION: &str = "Too large resource version";

impl Status {
    /// The 504 of a read whose RV the storage has not reached within its wait.
    pub fn too_large_resource_version() -> Status {
        Status::new(StatusReason::Timeout, TOO_LARGE_RESOURCE_VERSION)
    }

    /// A status for `reason`, with the code that belongs to it.
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Status {
        Status {
            code: reason.code(),
            reason,
            message: message.into(),
            continue_token: None,
            retry_after_seconds: None,
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
    /// `fieldSelector`.
    #[serde(default)]
    pub field_selector: Option<FieldSelector>,
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
            field_selector: None,
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
    /// `fieldSelector`.
    #[serde(default)]
    pub field_selector: Option<FieldSelector>,
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

    /// A 504 that says the RV is too large (client-go `isTooLargeResourceVersionError`: the
    /// `ResourceVersionTooLarge` cause, or a Timeout whose message says so); any other 504 is
    /// a plain error that keeps lastSyncRV.
    pub fn is_too_large_resource_version(&self) -> bool {
        matches!(self, RequestError::Status(status)
            if status.reason == StatusReason::Timeout
                && status.message.contains(TOO_LARGE_RESOURCE_VERSION))
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

// ---- The one rendering of each wire type: traces, test harnesses and timelines share it. ----

impl fmt::Display for ResourceVersionParam {
    /// `""`, `"0"` or `"N"`, quoted as the API's string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceVersionParam::Unset => f.write_str("\"\""),
            ResourceVersionParam::Zero => f.write_str("\"0\""),
            ResourceVersionParam::At(revision) => write!(f, "\"{revision}\""),
        }
    }
}

impl fmt::Display for ResourceVersionMatch {
    /// Nothing, or ` match=NotOlderThan` / ` match=Exact`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceVersionMatch::Unset => Ok(()),
            ResourceVersionMatch::NotOlderThan => f.write_str(" match=NotOlderThan"),
            ResourceVersionMatch::Exact => f.write_str(" match=Exact"),
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

impl fmt::Display for FieldSelector {
    /// `spec.nodeName=node-1,metadata.name!=a`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, term) in self.terms.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            let operator = if term.equal { "=" } else { "!=" };
            write!(
                f,
                "{separator}{}{operator}{}",
                term.field.path(),
                term.value
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for ListOptions {
    /// `LIST rv="0" limit=500 labelSelector=app=a`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LIST rv={}{}",
            self.resource_version, self.resource_version_match
        )?;
        if self.limit > 0 {
            write!(f, " limit={}", self.limit)?;
        }
        if let Some(token) = &self.continue_token {
            write!(f, " continue={}@{}", token.last_key, token.resource_version)?;
        }
        if let Some(selector) = &self.label_selector {
            write!(f, " labelSelector={selector}")?;
        }
        if let Some(selector) = &self.field_selector {
            write!(f, " fieldSelector={selector}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ClientMessage {
    /// `LIST ...`, `WATCH #2 rv="5" sendInitialEvents bookmarks timeout=598s`, `stop watch #2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientMessage::List { options, .. } => write!(f, "{options}"),
            ClientMessage::Watch { id, options } => {
                write!(
                    f,
                    "WATCH #{id} rv={}{}",
                    options.resource_version, options.resource_version_match
                )?;
                if options.send_initial_events {
                    f.write_str(" sendInitialEvents")?;
                }
                if options.allow_watch_bookmarks {
                    f.write_str(" bookmarks")?;
                }
                if let Some(namespace) = &options.namespace {
                    write!(f, " namespace={namespace}")?;
                }
                if let Some(selector) = &options.label_selector {
                    write!(f, " labelSelector={selector}")?;
                }
                if let Some(selector) = &options.field_selector {
                    write!(f, " fieldSelector={selector}")?;
                }
                if let Some(timeout_ms) = options.timeout_ms {
                    write!(f, " timeout={}s", timeout_ms / 1000)?;
                }
                Ok(())
            }
            ClientMessage::StopWatch { id } => write!(f, "stop watch #{id}"),
        }
    }
}

impl fmt::Display for RequestError {
    /// `410 Expired: too old resource version: 5 (9)`, `429 TooManyRequests: storage is
    /// (re)initializing (Retry-After: 1)`, or `connection refused`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Status(status) => {
                write!(f, "{} {:?}: {}", status.code, status.reason, status.message)?;
                match status.retry_after_seconds {
                    Some(seconds) => write!(f, " (Retry-After: {seconds})"),
                    None => Ok(()),
                }
            }
            RequestError::ConnectionRefused => f.write_str("connection refused"),
        }
    }
}

impl fmt::Display for WatchEvent {
    /// `ADDED ns/x@5`, `BOOKMARK 180` (` end` for initial-events-end), `ERROR 410`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchEvent::Added(object) => write!(f, "ADDED {object}"),
            WatchEvent::Modified(object) => write!(f, "MODIFIED {object}"),
            WatchEvent::Deleted(object) => write!(f, "DELETED {object}"),
            WatchEvent::Bookmark {
                resource_version,
                initial_events_end,
            } => {
                let end = if *initial_events_end { " end" } else { "" };
                write!(f, "BOOKMARK {resource_version}{end}")
            }
            WatchEvent::Error(status) => write!(f, "ERROR {}", status.code),
        }
    }
}

/// A list of objects as `[ns/a@5, ns/b@7]`.
pub struct Objects<'a>(pub &'a [Object]);

impl fmt::Display for Objects<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (index, object) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{object}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for ServerMessage {
    /// `LIST -> 200 OK, 2 items [ns/a@5, ns/b@7], rv=9`, `WATCH #3 -> 429 ...`,
    /// `#3 ADDED ns/x@5`, `#3 closed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerMessage::List {
                result: Ok(page), ..
            } => {
                write!(
                    f,
                    "LIST -> 200 OK, {} items {}, rv={}",
                    page.items.len(),
                    Objects(&page.items),
                    page.resource_version
                )?;
                if let Some(token) = &page.continue_token {
                    write!(f, " continue={}@{}", token.last_key, token.resource_version)?;
                }
                Ok(())
            }
            ServerMessage::List {
                result: Err(error), ..
            } => write!(f, "LIST -> {error}"),
            ServerMessage::WatchRejected { id, error } => write!(f, "WATCH #{id} -> {error}"),
            ServerMessage::WatchEvent { id, event } => write!(f, "#{id} {event}"),
            ServerMessage::WatchClosed { id } => write!(f, "#{id} closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_504_that_names_a_too_large_resource_version_is_one() {
        let too_large = RequestError::Status(Status::too_large_resource_version());
        assert!(too_large.is_too_large_resource_version());
        let other = RequestError::Status(Status::new(StatusReason::Timeout, "request timed out"));
        assert!(!other.is_too_large_resource_version());
        assert!(!other.is_expired());
    }

    #[test]
    fn status_code_follows_its_reason() {
        let status = Status::new(StatusReason::Expired, "too old resource version: 1 (5)");
        assert_eq!(status.code, 410);
        assert_eq!(StatusReason::TooManyRequests.code(), 429);
        assert_eq!(StatusReason::Timeout.code(), 504);
        assert_eq!(StatusReason::InternalError.code(), 500);
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

    #[test]
    fn a_field_selector_is_a_conjunction_over_name_namespace_and_node() {
        let pod = Object {
            node_name: "node-1".into(),
            ..Object::bare("ns-a/web", 3)
        };
        let on_node = FieldSelector::equal(Field::SpecNodeName, "node-1");
        assert!(on_node.matches(&pod));
        let elsewhere = on_node.clone().and_not(Field::MetadataNamespace, "ns-a");
        assert!(!elsewhere.matches(&pod));
        let named = on_node.and(Field::MetadataName, "web");
        assert!(named.matches(&pod));
        assert_eq!(named.requires_exact_match(Field::MetadataName), Some("web"));
        assert_eq!(named.requires_exact_match(Field::MetadataNamespace), None);
        assert_eq!(named.to_string(), "spec.nodeName=node-1,metadata.name=web");
        let unscheduled = FieldSelector::equal(Field::SpecNodeName, "");
        assert!(unscheduled.matches(&Object::bare("ns-a/job", 4)));
    }

    #[test]
    fn a_label_selector_matches_only_its_value() {
        let selector = LabelSelector {
            name: "app".to_owned(),
            value: "a".to_owned(),
        };
        let labelled = |value: &str| {
            let labels = std::collections::BTreeMap::from([("app".to_owned(), value.to_owned())]);
            Object::decode("ns/x", 1, 1, &Object::encode_body(&labels, 1)).expect("decodes")
        };
        assert!(selector.matches(&labelled("a")));
        assert!(!selector.matches(&labelled("b")));
        assert!(!selector.matches(&Object::bare("ns/x", 1)));
    }
}
