//! The reflector (`cg: tools/cache/reflector.go`, SPEC §3) as a sans-IO state machine: it lists,
//! watches, re-watches and relists, and tells its store what it heard.
//!
//! The state machine follows SPEC §3.4: `LIST(rv)` with `rv = "" if unavailable, "0" before the
//! first sync, else lastSyncRV`; on success `Replace` and `WATCH(lastSyncRV)`; a clean close
//! re-watches without a relist; 410 and most errors relist after the backoff; 429 and connection
//! refused back off and re-watch. With `use_watch_list` the initial state comes from a
//! `sendInitialEvents` watch instead (SPEC §3.6).
//!
//! Methods, as in quinn-proto:
//! - Inputs: [`Reflector::start`], [`Reflector::handle_message`],
//!   [`Reflector::handle_connection_lost`], [`Reflector::handle_timeout`].
//! - Command: [`Reflector::stop`].
//! - Outputs: [`Reflector::poll_output`] (requests to send and store operations, in order), then
//!   [`Reflector::poll_timeout`] (the earliest of the backoff, the REST client's retry and the
//!   resync period). Any input or command may change both; an early `handle_timeout` is a no-op.
//! - Getters: [`Reflector::last_sync_resource_version`], [`Reflector::phase`], counters.
//!
//! Contract (client-go `LastSyncResourceVersion`): "the resource version observed when last sync
//! with the underlying store"; it is not synchronized with the store and can be ahead of what the
//! store has processed.
//!
//! ```
//! use informer_sim::api::{ClientMessage, ListResponse, ResourceVersionParam, ServerMessage};
//! use informer_sim::bug::Bugs;
//! use informer_sim::client::reflector::{Reflector, ReflectorConfig, ReflectorOutput, StoreOp};
//! use informer_sim::object::Object;
//! use informer_sim::sim::{RngStream, SimTime};
//!
//! let mut reflector = Reflector::new(ReflectorConfig::default(), RngStream::new(1, "reflector"), Bugs::NONE);
//! reflector.start(SimTime(0));
//! let Some(ReflectorOutput::Send(ClientMessage::List { id, options })) = reflector.poll_output()
//! else { panic!("the first thing a reflector does is list") };
//! assert_eq!(options.resource_version, ResourceVersionParam::Zero);
//! let page = ListResponse { items: vec![Object::bare("ns/a", 90)], resource_version: 100, continue_token: None };
//! reflector.handle_message(SimTime(5), ServerMessage::List { id, result: Ok(page) });
//! assert!(matches!(reflector.poll_output(), Some(ReflectorOutput::Store(StoreOp::Replace { .. }))));
//! let Some(ReflectorOutput::Send(ClientMessage::Watch { options, .. })) = reflector.poll_output()
//! else { panic!("then it watches") };
//! assert_eq!(options.resource_version, ResourceVersionParam::At(100));
//! assert_eq!(reflector.last_sync_resource_version(), Some(100));
//! ```

use std::collections::{BTreeMap, VecDeque};

use super::backoff::Backoff;
use super::pager::{DEFAULT_PAGE_SIZE, ListPager, ListedItems, PagerStep};
use crate::api::{
    ClientMessage, FieldSelector, LabelSelector, ListOptions, ListResponse, Objects, RequestError,
    RequestId, ResourceVersionMatch, ResourceVersionParam, ServerMessage, Status, StatusReason,
    WatchEvent, WatchOptions,
};
use crate::bug::{Bug, Bugs};
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::{RngStream, SimDuration, SimTime};

/// The shortest watch timeout a reflector asks for (`defaultMinWatchTimeout`); the longest is
/// twice the minimum.
pub const MIN_WATCH_TIMEOUT_DEFAULT: SimDuration = SimDuration::from_secs(300);

/// The watch timeout a reflector built with `MinWatchTimeout = option` uses: client-go
/// `NewReflectorWithOptions` honours only values above its 5 min default.
pub fn min_watch_timeout_honoured(option: SimDuration) -> SimDuration {
    option.max(MIN_WATCH_TIMEOUT_DEFAULT)
}

/// A watch that closes sooner than this after it started, with no events, is an error
/// (`VeryShortWatchError`).
pub const VERY_SHORT_WATCH: SimDuration = SimDuration::from_secs(1);

/// How many times the REST client sends a request again after its connection closed before
/// the answer began (`rest.Request`'s `maxRetries`).
pub const MAX_REST_RETRIES: u32 = 10;

/// How long the REST client waits before it sends such a request again (`retryAfterResponse`'s
/// artificial `Retry-After: 1`).
pub const REST_RETRY_AFTER: SimDuration = SimDuration::from_secs(1);

/// Internal errors further apart than this start a new retry window (`NewRetryWithDeadline`'s
/// reset period in `Reflector.watch`).
pub const INTERNAL_ERROR_RESET_PERIOD: SimDuration = SimDuration::from_secs(60);

/// How a reflector lists and watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflectorConfig {
    /// Get the initial state from a watch-list stream (`WatchListClient`, SPEC §3.6).
    pub use_watch_list: bool,
    /// The first list asks for RV "" (a consistent read) instead of "0": not client-go's
    /// default, but what a client avoiding stale initial lists (SPEC §8 B1) does.
    pub consistent_first_list: bool,
    /// Emit [`StoreOp::Resync`] this often while watching (SPEC §3.5).
    pub resync_period: Option<SimDuration>,
    /// The shortest watch timeout to ask for, as the built reflector holds it (its
    /// `minWatchTimeout`: see [`min_watch_timeout_honoured`]); at most twice this.
    pub min_watch_timeout: SimDuration,
    /// `WatchListPageSize`: the list page size; `None` lets the reflector choose.
    pub page_size: Option<u64>,
    /// How long internal errors on a watch are retried by re-watching (`MaxInternalErrorRetryDuration`).
    pub max_internal_error_retry_duration: SimDuration,
    /// The label selector of every list and watch.
    pub label_selector: Option<LabelSelector>,
    /// The field selector of every list and watch (a kubelet's `spec.nodeName=<node>`).
    pub field_selector: Option<FieldSelector>,
}

impl Default for ReflectorConfig {
    fn default() -> ReflectorConfig {
        ReflectorConfig {
            use_watch_list: false,
            consistent_first_list: false,
            resync_period: None,
            min_watch_timeout: MIN_WATCH_TIMEOUT_DEFAULT,
            page_size: None,
            max_internal_error_retry_duration: SimDuration::ZERO,
            label_selector: None,
            field_selector: None,
        }
    }
}

/// A call on the reflector's store (`ReflectorStore`, SPEC §3.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// `Replace(items, rv)`: the result of a list or of a watch-list's initial events.
    Replace {
        /// The complete state, in key order.
        items: Vec<Object>,
        /// The list's resource version.
        resource_version: ResourceVersion,
    },
    /// `Add` from an ADDED event.
    Add(Object),
    /// `Update` from a MODIFIED event.
    Update(Object),
    /// `Delete` from a DELETED event: the object's last state.
    Delete(Object),
    /// `Bookmark(rv)` from a BOOKMARK event.
    Bookmark(ResourceVersion),
    /// `Resync`: the resync period elapsed (the informer decides whether to act).
    Resync,
}

impl std::fmt::Display for StoreOp {
    /// The store call as client-go names it: `Replace([ns/a@5], "9")`, `Add(ns/a@5)`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreOp::Replace {
                items,
                resource_version,
            } => write!(f, "Replace({}, \"{resource_version}\")", Objects(items)),
            StoreOp::Add(object) => write!(f, "Add({object})"),
            StoreOp::Update(object) => write!(f, "Update({object})"),
            StoreOp::Delete(object) => write!(f, "Delete({object})"),
            StoreOp::Bookmark(resource_version) => write!(f, "Bookmark(\"{resource_version}\")"),
            StoreOp::Resync => f.write_str("resync timer: Resync()"),
        }
    }
}

/// What the reflector wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReflectorOutput {
    /// Send a request to the apiserver.
    Send(ClientMessage),
    /// Apply an operation to the store.
    Store(StoreOp),
}

/// Why a list or watch ended badly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReflectorError {
    /// The server answered with an error, or refused the connection.
    #[error("request failed: {0:?}")]
    Request(RequestError),
    /// The watch closed within a second with no events (`VeryShortWatchError`).
    #[error("very short watch")]
    VeryShortWatch,
    /// The transport broke under the request before its answer began, and the REST client
    /// gave up or does not retry.
    #[error("connection lost")]
    ConnectionLost,
}

/// How the transport lost a request's connection, as client-go's transport reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionLoss {
    /// The peer closed or reset the connection, or sent GOAWAY (`net.IsProbableEOF`): an open
    /// watch stream ends cleanly, a request not yet answered is sent again.
    PeerClosed,
    /// HTTP/2's health check found the connection dead ("http2: client connection lost"): an
    /// open watch stream reports a 500 (`ClientWatchDecoding`).
    HealthCheckFailed,
}

impl ReflectorError {
    fn request(&self) -> Option<&RequestError> {
        match self {
            ReflectorError::Request(error) => Some(error),
            _ => None,
        }
    }

    fn is_expired(&self) -> bool {
        self.request().is_some_and(RequestError::is_expired)
    }

    fn is_too_large_resource_version(&self) -> bool {
        self.request()
            .is_some_and(RequestError::is_too_large_resource_version)
    }

    fn is_too_many_requests(&self) -> bool {
        self.request()
            .is_some_and(RequestError::is_too_many_requests)
    }

    fn is_internal_error(&self) -> bool {
        self.request().is_some_and(RequestError::is_internal_error)
    }

    /// Mirrors client-go reflector.go `isWatchErrorRetriable`: connection refused or 429.
    fn is_watch_error_retriable(&self) -> bool {
        self.is_too_many_requests() || self.request() == Some(&RequestError::ConnectionRefused)
    }
}

/// Where the reflector is, for traces and probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReflectorPhase {
    /// Not started.
    Idle,
    /// A list (one of its pages) is in flight.
    Listing,
    /// A watch-list stream is in flight, before its initial-events-end bookmark.
    WatchListing,
    /// A watch is in flight (request sent, or events streaming).
    Watching,
    /// Backing off before the next ListAndWatch (a relist).
    WaitingToRelist,
    /// Backing off before a re-watch (429 or connection refused).
    WaitingToRewatch,
    /// Backing off before a watch-list retry (429 or connection refused).
    WaitingToRetryWatchList,
    /// Waiting to send a request again whose connection closed before its answer began.
    RetryingRequest,
    /// Gave up after a clean close (the `closed_watch_is_end_of_data` bug).
    Finished,
    /// Stopped by [`Reflector::stop`].
    Stopped,
}

/// What runs when a backoff ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    ListAndWatch,
    Watch,
    WatchList,
}

#[derive(Clone, Debug)]
struct Listing {
    id: RequestId,
    pager: ListPager,
    /// The RV of the first attempt of this `list()` call (before any RV "" retry).
    resource_version: ResourceVersionParam,
    page_size: u64,
    retried_at_unset: bool,
}

#[derive(Clone, Debug)]
struct WatchListing {
    id: RequestId,
    started_at: SimTime,
    event_count: u64,
    /// The temporary store, keyed like `DeletionHandlingMetaNamespaceKeyFunc`.
    items: BTreeMap<ObjectKey, Object>,
    /// The RV of the last non-ADDED event.
    resource_version: Option<ResourceVersion>,
}

#[derive(Clone, Debug)]
struct Watching {
    id: RequestId,
    started_at: SimTime,
    event_count: u64,
    /// False for a new watch at RV "0" or "": its initial ADDED events are not RV-ordered.
    propagate_rv_from_start: bool,
    event_received_besides_added: bool,
}

#[derive(Clone, Debug)]
enum State {
    Idle,
    Listing(Listing),
    WatchListing(WatchListing),
    Watching(Watching),
    Waiting { resume: Resume, until: SimTime },
    RetryingRequest(Box<RestRetry>),
    Finished,
    Stopped,
}

/// Mirrors client-go rest/with_retry.go: a request whose connection closed before the answer
/// began is sent again after [`REST_RETRY_AFTER`], into the state it left.
#[derive(Clone, Debug)]
struct RestRetry {
    until: SimTime,
    message: ClientMessage,
    /// The listing, watch or watch-list to return to, under the new request's id.
    state: State,
}

/// Mirrors client-go retry_with_deadline.go: internal errors are retried while the first of a
/// run of them is at most the budget old.
#[derive(Clone, Copy, Debug, Default)]
struct InternalErrorRetry {
    first_error_at: Option<SimTime>,
    last_error_at: Option<SimTime>,
}

impl InternalErrorRetry {
    fn after(&mut self, now: SimTime, error: &ReflectorError) {
        if !error.is_internal_error() {
            return;
        }
        let stale = self
            .last_error_at
            .is_none_or(|at| now.saturating_since(at) >= INTERNAL_ERROR_RESET_PERIOD);
        if stale {
            *self = InternalErrorRetry::default();
        }
        self.first_error_at.get_or_insert(now);
        self.last_error_at = Some(now);
    }

    fn should_retry(&mut self, now: SimTime, budget: SimDuration) -> bool {
        let Some(first) = self.first_error_at else {
            return false;
        };
        if budget > SimDuration::ZERO && now.saturating_since(first) <= budget {
            return true;
        }
        *self = InternalErrorRetry::default();
        false
    }
}

/// The reflector of one informer.
#[derive(Clone, Debug)]
pub struct Reflector {
    config: ReflectorConfig,
    /// Planted bugs (SPEC §8): B11, B14, B15 and two classic mistakes.
    bugs: Bugs,
    rng: RngStream,
    backoff: Backoff,
    state: State,
    outputs: VecDeque<ReflectorOutput>,
    /// `lastSyncResourceVersion`; `None` is "".
    last_sync_resource_version: Option<ResourceVersion>,
    is_last_sync_resource_version_unavailable: bool,
    /// `paginatedResult`: an RV "0" list came back in pages (the watch cache is off).
    paginated_result: bool,
    /// The RV of the last Replace (for the `resume_watch_from_list_rv` bug).
    list_resource_version: Option<ResourceVersion>,
    /// The last Replace came from a watch-list's temporary store.
    last_replace_from_watch_list: bool,
    internal_error_retry: InternalErrorRetry,
    resync_at: Option<SimTime>,
    next_request_id: RequestId,
    last_input_at: SimTime,
    last_error: Option<ReflectorError>,
    /// The request in flight, as sent, for the REST client to send again.
    last_request: Option<ClientMessage>,
    /// Whether a message answered the request in flight (the response began).
    answered: bool,
    /// The REST client's retries of the request in flight.
    rest_attempts: u32,
    list_and_watch_count: u64,
    rewatch_count: u64,
    rest_retry_count: u64,
    list_count: u64,
    watch_count: u64,
}

/// The `Retry-After` of an answer the REST client retries: a 429 that carries one (client-go
/// rest `checkWait`).
fn retry_after(message: &ServerMessage) -> Option<SimDuration> {
    let status = match message {
        ServerMessage::List {
            result: Err(RequestError::Status(status)),
            ..
        }
        | ServerMessage::WatchRejected {
            error: RequestError::Status(status),
            ..
        } => status,
        _ => return None,
    };
    let seconds = status
        .retry_after_seconds
        .filter(|_| status.reason == StatusReason::TooManyRequests)?;
    Some(SimDuration::from_secs(seconds))
}

impl Reflector {
    /// A reflector that has not started, with `bugs` planted. `rng` draws watch timeouts and
    /// backoff jitter only.
    pub fn new(config: ReflectorConfig, rng: RngStream, bugs: Bugs) -> Reflector {
        assert!(
            config.min_watch_timeout > SimDuration::ZERO,
            "watch timeout must be positive"
        );
        assert!(
            config.resync_period != Some(SimDuration::ZERO),
            "a resync period of zero means none: use None"
        );
        Reflector {
            config,
            bugs,
            rng,
            backoff: Backoff::new(SimTime::ZERO),
            state: State::Idle,
            outputs: VecDeque::new(),
            last_sync_resource_version: None,
            is_last_sync_resource_version_unavailable: false,
            paginated_result: false,
            list_resource_version: None,
            last_replace_from_watch_list: false,
            internal_error_retry: InternalErrorRetry::default(),
            resync_at: None,
            next_request_id: 1,
            last_input_at: SimTime::ZERO,
            last_error: None,
            last_request: None,
            answered: false,
            rest_attempts: 0,
            list_and_watch_count: 0,
            rewatch_count: 0,
            rest_retry_count: 0,
            list_count: 0,
            watch_count: 0,
        }
    }

    // ---- Inputs -------------------------------------------------------------------------------

    /// Begins ListAndWatch (`Reflector.Run`: the first run has no delay).
    pub fn start(&mut self, now: SimTime) {
        self.observe(now);
        assert!(matches!(self.state, State::Idle), "a reflector starts once");
        // The backoff's reset interval counts from the reflector's creation, which is its
        // start here (`NewReflectorWithOptions` builds the `DelayWithReset` handler).
        self.backoff = Backoff::new(now);
        self.list_and_watch(now);
    }

    /// Takes a message from the apiserver. Messages for requests other than the one in flight
    /// (stale, abandoned or stopped ones) are ignored.
    pub fn handle_message(&mut self, now: SimTime, message: ServerMessage) {
        self.observe(now);
        let id = match &message {
            ServerMessage::List { id, .. }
            | ServerMessage::WatchRejected { id, .. }
            | ServerMessage::WatchEvent { id, .. }
            | ServerMessage::WatchClosed { id } => *id,
        };
        if self.request_in_flight() != Some(id) {
            return;
        }
        if let Some(delay) = retry_after(&message)
            && self.rest_attempts < MAX_REST_RETRIES
        {
            return self.retry_request_after(now, delay);
        }
        self.answered = true;
        match (std::mem::replace(&mut self.state, State::Idle), message) {
            (State::Listing(listing), ServerMessage::List { result, .. }) => {
                self.handle_list_page(now, listing, result.map_err(ReflectorError::Request));
            }
            (State::Watching(watching), message) => {
                self.handle_watch_message(now, watching, message)
            }
            (State::WatchListing(watch_list), message) => {
                self.handle_watch_list_message(now, watch_list, message);
            }
            (_, message) => panic!("{message:?} does not answer request {id}"),
        }
    }

    /// The transport lost request `id`'s connection in the way `loss` says. Ignored unless `id`
    /// is the request in flight.
    pub fn handle_connection_lost(&mut self, now: SimTime, id: RequestId, loss: ConnectionLoss) {
        self.observe(now);
        if self.request_in_flight() != Some(id) {
            return;
        }
        let listing = matches!(self.state, State::Listing(_));
        match (loss, self.answered) {
            (ConnectionLoss::PeerClosed, true) => self.stream_closed(now),
            (ConnectionLoss::PeerClosed, false) => self.retry_request(now),
            // Mirrors apimachinery streamwatcher.go `receive`: a read error that is not a
            // probable EOF becomes a 500 `ClientWatchDecoding` event.
            (ConnectionLoss::HealthCheckFailed, true) => {
                let status = Status::new(
                    StatusReason::InternalError,
                    "unable to decode an event from the watch stream: http2: client connection lost",
                );
                self.request_failed(now, ReflectorError::Request(RequestError::Status(status)));
            }
            // Mirrors client-go rest/request.go `request`: a GET is retried on
            // `IsHTTP2ConnectionLost`; a watch request is not.
            (ConnectionLoss::HealthCheckFailed, false) if listing => self.retry_request(now),
            (ConnectionLoss::HealthCheckFailed, false) => {
                self.request_failed(now, ReflectorError::ConnectionLost)
            }
        }
    }

    /// Fires the timers due at `now`: the resync period, then the backoff or the REST retry.
    /// A call before [`Reflector::poll_timeout`] is a no-op.
    pub fn handle_timeout(&mut self, now: SimTime) {
        self.observe(now);
        if let (Some(at), Some(period)) = (self.resync_at, self.config.resync_period)
            && at <= now
        {
            self.outputs
                .push_back(ReflectorOutput::Store(StoreOp::Resync));
            self.resync_at = Some(now + period);
        }
        if let State::Waiting { resume, until } = self.state
            && until <= now
        {
            match resume {
                Resume::ListAndWatch => self.list_and_watch(now),
                Resume::Watch => self.rewatch(now),
                Resume::WatchList => self.start_watch_list(now),
            }
        } else if let State::RetryingRequest(retry) = &self.state
            && retry.until <= now
        {
            self.send_again(now);
        }
    }

    // ---- Command ------------------------------------------------------------------------------

    /// Stops: closes an open watch with `StopWatch` and goes quiet (no timers, no requests;
    /// answers to earlier requests are ignored).
    pub fn stop(&mut self) {
        if let State::Watching(Watching { id, .. }) | State::WatchListing(WatchListing { id, .. }) =
            self.state
        {
            self.send(ClientMessage::StopWatch { id });
        }
        self.state = State::Stopped;
        self.resync_at = None;
    }

    // ---- Outputs ------------------------------------------------------------------------------

    /// The next output, in the order produced. Changed by every input and by `stop`.
    pub fn poll_output(&mut self) -> Option<ReflectorOutput> {
        self.outputs.pop_front()
    }

    /// When [`Reflector::handle_timeout`] should next be called: the earliest of the backoff
    /// end, the REST retry and the next resync. Changed by every input and by `stop`.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let wait_until = match &self.state {
            State::Waiting { until, .. } => Some(*until),
            State::RetryingRequest(retry) => Some(retry.until),
            _ => None,
        };
        [wait_until, self.resync_at].into_iter().flatten().min()
    }

    // ---- Getters ------------------------------------------------------------------------------

    /// `LastSyncResourceVersion()`: the RV of the last list or event taken; `None` is "".
    pub fn last_sync_resource_version(&self) -> Option<ResourceVersion> {
        self.last_sync_resource_version
    }

    /// Whether the last Replace came from a watch-list's temporary store, whose `Add`s already
    /// ran the FIFO's transformer on each object (client-go `watchList`, cg@71776a84b).
    pub fn last_replace_from_watch_list(&self) -> bool {
        self.last_replace_from_watch_list
    }

    /// Whether the last list or watch-list at lastSyncRV got Expired or TooLargeResourceVersion,
    /// so the next list asks for RV "".
    pub fn is_last_sync_resource_version_unavailable(&self) -> bool {
        self.is_last_sync_resource_version_unavailable
    }

    /// Where the reflector is.
    pub fn phase(&self) -> ReflectorPhase {
        match self.state {
            State::Idle => ReflectorPhase::Idle,
            State::Listing(_) => ReflectorPhase::Listing,
            State::WatchListing(_) => ReflectorPhase::WatchListing,
            State::Watching(_) => ReflectorPhase::Watching,
            State::Waiting { resume, .. } => match resume {
                Resume::ListAndWatch => ReflectorPhase::WaitingToRelist,
                Resume::Watch => ReflectorPhase::WaitingToRewatch,
                Resume::WatchList => ReflectorPhase::WaitingToRetryWatchList,
            },
            State::RetryingRequest(_) => ReflectorPhase::RetryingRequest,
            State::Finished => ReflectorPhase::Finished,
            State::Stopped => ReflectorPhase::Stopped,
        }
    }

    /// Whether a watch stream is open and has delivered an event: the reflector is healthy.
    pub fn is_streaming(&self) -> bool {
        matches!(self.state, State::Watching(_)) && self.answered
    }

    /// The request in flight, if any.
    pub fn request_in_flight(&self) -> Option<RequestId> {
        match &self.state {
            State::Listing(Listing { id, .. })
            | State::WatchListing(WatchListing { id, .. })
            | State::Watching(Watching { id, .. }) => Some(*id),
            _ => None,
        }
    }

    /// The error that last made the reflector back off, retry or fall back.
    pub fn last_error(&self) -> Option<&ReflectorError> {
        self.last_error.as_ref()
    }

    /// How many times ListAndWatch ran again after the first run (relists, or watch-list
    /// restarts in watch-list mode).
    pub fn relist_count(&self) -> u64 {
        self.list_and_watch_count.saturating_sub(1)
    }

    /// How many watches were started again without a relist: after a clean close, a retriable
    /// error or an internal error within its budget.
    pub fn rewatch_count(&self) -> u64 {
        self.rewatch_count
    }

    /// How many requests the REST client sent again after their connection closed unanswered.
    pub fn rest_retry_count(&self) -> u64 {
        self.rest_retry_count
    }

    /// How many list requests (pages included) were sent.
    pub fn list_count(&self) -> u64 {
        self.list_count
    }

    /// How many watch requests (watch-list included) were sent.
    pub fn watch_count(&self) -> u64 {
        self.watch_count
    }

    /// Whether an RV "0" list came back in pages, so later lists keep paginating.
    pub fn is_paginated_result(&self) -> bool {
        self.paginated_result
    }

    // ---- ListAndWatch -------------------------------------------------------------------------

    /// Mirrors client-go reflector.go `ListAndWatchWithContext`: watch-list first if enabled,
    /// otherwise a list.
    fn list_and_watch(&mut self, now: SimTime) {
        self.list_and_watch_count += 1;
        if self.config.use_watch_list {
            self.start_watch_list(now);
        } else {
            self.start_list();
        }
    }

    /// Mirrors client-go reflector.go `RunWithContext`: every return of ListAndWatch is followed
    /// by the sliding backoff, then ListAndWatch again.
    fn list_and_watch_returned(&mut self, now: SimTime, error: ReflectorError) {
        self.resync_at = None;
        self.back_off(now, Resume::ListAndWatch, error);
    }

    fn back_off(&mut self, now: SimTime, resume: Resume, error: ReflectorError) {
        let delay = self.backoff.next_delay(now, &mut self.rng);
        assert!(delay > SimDuration::ZERO, "a backoff waits");
        self.last_error = Some(error);
        self.state = State::Waiting {
            resume,
            until: now + delay,
        };
    }

    /// Mirrors client-go reflector.go `relistResourceVersion`: "" if unavailable, "0" before
    /// the first sync, else lastSyncRV.
    fn relist_resource_version(&self) -> ResourceVersionParam {
        if self.is_last_sync_resource_version_unavailable {
            return ResourceVersionParam::Unset;
        }
        match self.last_sync_resource_version {
            None if self.config.consistent_first_list => ResourceVersionParam::Unset,
            None => ResourceVersionParam::Zero,
            Some(resource_version) => resource_version_param(resource_version),
        }
    }

    /// Mirrors client-go reflector.go `list`'s page size choice: the configured size, else keep
    /// the default pages if an RV "0" list was paginated, else no limit for an RV other than
    /// "" and "0" (so the watch cache serves it).
    fn page_size(&self, resource_version: ResourceVersionParam) -> u64 {
        match self.config.page_size.filter(|&size| size > 0) {
            Some(size) => size,
            None if self.paginated_result => DEFAULT_PAGE_SIZE,
            None if matches!(resource_version, ResourceVersionParam::At(_)) => 0,
            None => DEFAULT_PAGE_SIZE,
        }
    }

    fn start_list(&mut self) {
        let resource_version = self.relist_resource_version();
        let page_size = self.page_size(resource_version);
        self.send_first_page(resource_version, page_size, resource_version, false);
    }

    fn send_first_page(
        &mut self,
        request_resource_version: ResourceVersionParam,
        page_size: u64,
        resource_version: ResourceVersionParam,
        retried_at_unset: bool,
    ) {
        let options = ListOptions {
            limit: page_size,
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            ..ListOptions::at(request_resource_version)
        };
        let (pager, request) = ListPager::new(options, self.bugs);
        let id = self.send_list(request);
        self.state = State::Listing(Listing {
            id,
            pager,
            resource_version,
            page_size,
            retried_at_unset,
        });
    }

    fn handle_list_page(
        &mut self,
        now: SimTime,
        mut listing: Listing,
        result: Result<ListResponse, ReflectorError>,
    ) {
        let step = match result {
            Ok(page) => listing.pager.handle_page(Ok(page)),
            Err(ReflectorError::Request(error)) => listing.pager.handle_page(Err(error)),
            Err(error) => return self.list_and_watch_returned(now, error),
        };
        match step {
            PagerStep::Request(options) => {
                listing.id = self.send_list(options);
                self.state = State::Listing(listing);
            }
            PagerStep::Done(list) => self.list_succeeded(now, listing.resource_version, list),
            PagerStep::Failed { error, .. } => {
                self.list_failed(now, &listing, ReflectorError::Request(error));
            }
        }
    }

    /// Mirrors client-go reflector.go `list`: an Expired or TooLargeResourceVersion list marks
    /// lastSyncRV unavailable and is retried at once, once, at RV ""; any other failure returns.
    fn list_failed(&mut self, now: SimTime, listing: &Listing, error: ReflectorError) {
        if listing.retried_at_unset || !self.is_unavailable_error(&error) {
            return self.list_and_watch_returned(now, error);
        }
        self.is_last_sync_resource_version_unavailable = true;
        self.last_error = Some(error);
        let request_resource_version = self.relist_resource_version();
        assert_eq!(request_resource_version, ResourceVersionParam::Unset);
        let (page_size, resource_version) = (listing.page_size, listing.resource_version);
        self.send_first_page(request_resource_version, page_size, resource_version, true);
    }

    /// Whether `error` means lastSyncRV is unavailable (`isExpiredError`,
    /// `isTooLargeResourceVersionError`), unless a planted bug ignores that class.
    fn is_unavailable_error(&self, error: &ReflectorError) -> bool {
        let bugs = self.bugs;
        // Planted: cg@a3f022a93 (B15), an Expired list keeps lastSyncRV.
        (error.is_expired() && !bugs.is(Bug::RelistWithSameRvOnExpired))
            // Planted: k/k#91073 (B14), a TooLargeResourceVersion list keeps lastSyncRV.
            || (error.is_too_large_resource_version()
                && !bugs.is(Bug::RelistWithSameRvOnTooLarge))
    }

    fn list_succeeded(
        &mut self,
        now: SimTime,
        resource_version: ResourceVersionParam,
        list: ListedItems,
    ) {
        if resource_version == ResourceVersionParam::Zero && list.paginated {
            self.paginated_result = true;
        }
        self.is_last_sync_resource_version_unavailable = false;
        self.synced(list.items, list.resource_version, false);
        self.watch_with_resync(now, None);
    }

    /// `syncWith` plus `setLastSyncResourceVersion`: Replace the store, then remember the RV.
    fn synced(
        &mut self,
        items: Vec<Object>,
        resource_version: ResourceVersion,
        from_watch_list: bool,
    ) {
        self.last_replace_from_watch_list = from_watch_list;
        self.outputs
            .push_back(ReflectorOutput::Store(StoreOp::Replace {
                items,
                resource_version,
            }));
        self.last_sync_resource_version = Some(resource_version);
        self.list_resource_version = Some(resource_version);
    }

    // ---- watch --------------------------------------------------------------------------------

    /// Mirrors client-go reflector.go `watchWithResync`: arm the resync timer, then watch (on
    /// the watch-list stream if there is one).
    fn watch_with_resync(&mut self, now: SimTime, stream: Option<RequestId>) {
        self.resync_at = self.config.resync_period.map(|period| now + period);
        self.internal_error_retry = InternalErrorRetry::default();
        match stream {
            Some(id) => self.state = State::Watching(Watching::new(id, now, true)),
            None => self.start_watch(now),
        }
    }

    /// Mirrors client-go reflector.go `watch`: a watch at lastSyncRV with bookmarks and a
    /// random timeout; RVs from a watch at "0" or "" propagate only after a non-ADDED event.
    fn start_watch(&mut self, now: SimTime) {
        let resource_version = self
            .last_sync_resource_version
            .map_or(ResourceVersionParam::Unset, resource_version_param);
        let options = WatchOptions {
            resource_version,
            resource_version_match: ResourceVersionMatch::Unset,
            send_initial_events: false,
            allow_watch_bookmarks: true,
            timeout_ms: Some(self.watch_timeout_ms()),
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            namespace: None,
        };
        let id = self.send_watch(options);
        let propagate = matches!(resource_version, ResourceVersionParam::At(_));
        self.state = State::Watching(Watching::new(id, now, propagate));
    }

    fn handle_watch_message(
        &mut self,
        now: SimTime,
        mut watching: Watching,
        message: ServerMessage,
    ) {
        match message {
            ServerMessage::WatchRejected { error, .. } => {
                self.watch_creation_failed(now, ReflectorError::Request(error));
            }
            ServerMessage::WatchEvent {
                event: WatchEvent::Error(status),
                ..
            } => {
                let error = ReflectorError::Request(RequestError::Status(status));
                self.watch_ended(now, Some(error));
            }
            ServerMessage::WatchEvent { event, .. } => {
                self.handle_watch_event(&mut watching, event);
                self.state = State::Watching(watching);
            }
            ServerMessage::WatchClosed { .. } => self.watch_closed(now, &watching),
            ServerMessage::List { .. } => panic!("a list answer for watch {}", watching.id),
        }
    }

    /// Mirrors client-go reflector.go `handleAnyWatch`'s end: a clean close within a second
    /// with no events is an error.
    fn watch_closed(&mut self, now: SimTime, watching: &Watching) {
        let very_short = now.saturating_since(watching.started_at) < VERY_SHORT_WATCH
            && watching.event_count == 0;
        self.watch_ended(now, very_short.then_some(ReflectorError::VeryShortWatch));
    }

    /// Mirrors client-go reflector.go `handleAnyWatch`: apply the event to the store, then take
    /// its RV (gated for watches at "0" or "", k/k#136583).
    fn handle_watch_event(&mut self, watching: &mut Watching, event: WatchEvent) {
        let resource_version = event
            .resource_version()
            .expect("an error event ends the watch");
        let operation = match event {
            WatchEvent::Added(object) => StoreOp::Add(object),
            WatchEvent::Modified(object) => StoreOp::Update(object),
            WatchEvent::Deleted(object) => StoreOp::Delete(object),
            WatchEvent::Bookmark { .. } => StoreOp::Bookmark(resource_version),
            WatchEvent::Error(_) => unreachable!("handled by the caller"),
        };
        watching.event_received_besides_added |= !matches!(operation, StoreOp::Add(_));
        watching.event_count += 1;
        self.outputs.push_back(ReflectorOutput::Store(operation));
        if watching.propagate_rv_from_start || watching.event_received_besides_added {
            self.last_sync_resource_version = Some(resource_version);
        }
    }

    /// Mirrors client-go reflector.go `watch` after `WatchWithContext` fails: connection refused
    /// and 429 back off and re-watch; any other error ends ListAndWatch.
    fn watch_creation_failed(&mut self, now: SimTime, error: ReflectorError) {
        if error.is_watch_error_retriable() {
            self.back_off(now, Resume::Watch, error);
        } else {
            self.list_and_watch_returned(now, error);
        }
    }

    /// Mirrors client-go reflector.go `watch` after `handleWatch` returns: a clean close
    /// re-watches at once; 429 backs off and re-watches; an internal error re-watches within its
    /// budget; Expired and everything else end ListAndWatch (a relist at lastSyncRV follows).
    fn watch_ended(&mut self, now: SimTime, error: Option<ReflectorError>) {
        let Some(error) = error else {
            return self.watch_closed_cleanly(now);
        };
        self.internal_error_retry.after(now, &error);
        let budget = self.config.max_internal_error_retry_duration;
        if error.is_too_many_requests() {
            self.back_off(now, Resume::Watch, error);
        } else if error.is_internal_error() && self.internal_error_retry.should_retry(now, budget) {
            self.last_error = Some(error);
            self.rewatch(now);
        } else {
            self.list_and_watch_returned(now, error);
        }
    }

    fn watch_closed_cleanly(&mut self, now: SimTime) {
        let bugs = self.bugs;
        if bugs.is(Bug::ClosedWatchIsEndOfData) {
            // Planted: classic (SPEC §9.2 N7), a clean close taken as the end of the data.
            self.state = State::Finished;
            self.resync_at = None;
            return;
        }
        if bugs.is(Bug::ResumeWatchFromListRv) {
            // Planted: classic, re-watch from the list RV instead of the last event's.
            self.last_sync_resource_version = self.list_resource_version;
        }
        self.rewatch(now);
    }

    /// A watch started again without a relist.
    fn rewatch(&mut self, now: SimTime) {
        self.rewatch_count += 1;
        self.start_watch(now);
    }

    // ---- watch-list ---------------------------------------------------------------------------

    /// Mirrors client-go reflector.go `watchList` and `rewatchResourceVersion`: a
    /// `sendInitialEvents` watch at "" if unavailable, else at lastSyncRV ("" at startup).
    fn start_watch_list(&mut self, now: SimTime) {
        let resource_version = match self.last_sync_resource_version {
            Some(rv) if !self.is_last_sync_resource_version_unavailable => {
                resource_version_param(rv)
            }
            _ => ResourceVersionParam::Unset,
        };
        let options = WatchOptions {
            resource_version,
            resource_version_match: ResourceVersionMatch::NotOlderThan,
            send_initial_events: true,
            allow_watch_bookmarks: true,
            timeout_ms: Some(self.watch_timeout_ms()),
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            namespace: None,
        };
        let id = self.send_watch(options);
        self.state = State::WatchListing(WatchListing {
            id,
            started_at: now,
            event_count: 0,
            items: BTreeMap::new(),
            resource_version: None,
        });
    }

    fn handle_watch_list_message(
        &mut self,
        now: SimTime,
        mut watch_list: WatchListing,
        message: ServerMessage,
    ) {
        let event = match message {
            ServerMessage::WatchEvent { event, .. } => event,
            ServerMessage::WatchRejected { error, .. } => {
                return self.watch_list_failed(now, ReflectorError::Request(error));
            }
            ServerMessage::WatchClosed { .. } => return self.watch_list_closed(now, &watch_list),
            ServerMessage::List { .. } => panic!("a list answer for watch {}", watch_list.id),
        };
        watch_list.event_count += 1;
        match event {
            WatchEvent::Added(object) => {
                if self.bugs.is(Bug::ResumeFromAnyEventRv) {
                    // Planted: k/k#74022 (B11), before PR #136583 the watch-list handler set
                    // lastSyncRV from each unordered initial ADDED event, not at the bookmark.
                    self.last_sync_resource_version = Some(object.resource_version);
                }
                watch_list.items.insert(object.key.clone(), object);
            }
            WatchEvent::Modified(object) => {
                watch_list.resource_version = Some(object.resource_version);
                watch_list.items.insert(object.key.clone(), object);
            }
            WatchEvent::Deleted(object) => {
                watch_list.resource_version = Some(object.resource_version);
                watch_list.items.remove(&object.key);
            }
            WatchEvent::Bookmark {
                resource_version,
                initial_events_end,
            } => {
                watch_list.resource_version = Some(resource_version);
                if initial_events_end {
                    return self.watch_list_synced(now, watch_list, resource_version);
                }
            }
            WatchEvent::Error(status) => {
                let error = ReflectorError::Request(RequestError::Status(status));
                return self.watch_list_failed(now, error);
            }
        }
        self.state = State::WatchListing(watch_list);
    }

    /// The initial-events-end bookmark: Replace with the temporary store at its RV and keep
    /// the stream as the watch.
    fn watch_list_synced(
        &mut self,
        now: SimTime,
        watch_list: WatchListing,
        resource_version: ResourceVersion,
    ) {
        assert_eq!(watch_list.resource_version, Some(resource_version));
        self.is_last_sync_resource_version_unavailable = false;
        self.synced(
            watch_list.items.into_values().collect(),
            resource_version,
            true,
        );
        self.watch_with_resync(now, Some(watch_list.id));
    }

    /// A stream that closed before the bookmark is retried with a fresh temporary store, unless
    /// it was very short (an error).
    fn watch_list_closed(&mut self, now: SimTime, watch_list: &WatchListing) {
        let very_short = now.saturating_since(watch_list.started_at) < VERY_SHORT_WATCH
            && watch_list.event_count == 0;
        if very_short {
            self.watch_list_failed(now, ReflectorError::VeryShortWatch);
        } else {
            self.start_watch_list(now);
        }
    }

    /// Mirrors client-go reflector.go `watchList`'s `isErrorRetriableWithSideEffectsFn`:
    /// connection refused and 429 back off and retry; Expired and TooLargeResourceVersion mark
    /// lastSyncRV unavailable and retry at once; anything else falls back to a list.
    fn watch_list_failed(&mut self, now: SimTime, error: ReflectorError) {
        if error.is_watch_error_retriable() {
            return self.back_off(now, Resume::WatchList, error);
        }
        let unavailable = self.is_unavailable_error(&error);
        self.last_error = Some(error);
        if unavailable {
            self.is_last_sync_resource_version_unavailable = true;
            self.start_watch_list(now);
        } else {
            self.start_list();
        }
    }

    // ---- Requests and timers ------------------------------------------------------------------

    fn request_failed(&mut self, now: SimTime, error: ReflectorError) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Listing(listing) => self.handle_list_page(now, listing, Err(error)),
            State::Watching(_) => self.watch_ended(now, Some(error)),
            State::WatchListing(_) => self.watch_list_failed(now, error),
            state => panic!("no request in flight in {state:?}"),
        }
    }

    /// The stream of the answered request in flight closed cleanly (a probable EOF).
    fn stream_closed(&mut self, now: SimTime) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Watching(watching) => self.watch_closed(now, &watching),
            State::WatchListing(watch_list) => self.watch_list_closed(now, &watch_list),
            state => panic!("no open stream in {state:?}"),
        }
    }

    /// Mirrors client-go rest/with_retry.go `IsNextRetry`: the request in flight is sent again
    /// after [`REST_RETRY_AFTER`], at most [`MAX_REST_RETRIES`] times; then a watch is an empty
    /// watch (`NewEmptyWatch`, which ends as a very short watch) and a list fails.
    fn retry_request(&mut self, now: SimTime) {
        if self.rest_attempts >= MAX_REST_RETRIES {
            let error = match self.state {
                State::Listing(_) => ReflectorError::ConnectionLost,
                _ => ReflectorError::VeryShortWatch,
            };
            return self.request_failed(now, error);
        }
        self.retry_request_after(now, REST_RETRY_AFTER);
    }

    /// Mirrors client-go rest/with_retry.go `IsNextRetry` for an answer that asks for it (a
    /// 429 with `Retry-After`, `checkWait`) and for a lost connection: the request in flight
    /// is sent again after `delay`, into the state it left.
    fn retry_request_after(&mut self, now: SimTime, delay: SimDuration) {
        let message = self
            .last_request
            .clone()
            .expect("a request in flight was sent");
        let state = std::mem::replace(&mut self.state, State::Idle);
        self.state = State::RetryingRequest(Box::new(RestRetry {
            until: now + delay,
            message,
            state,
        }));
    }

    /// Sends the retried request again under a new id and returns to the state it left.
    fn send_again(&mut self, now: SimTime) {
        let State::RetryingRequest(retry) = std::mem::replace(&mut self.state, State::Idle) else {
            panic!("no request to retry");
        };
        let RestRetry {
            message, mut state, ..
        } = *retry;
        let id = self.allocate_request_id();
        self.rest_attempts += 1;
        self.rest_retry_count += 1;
        let message = match message {
            ClientMessage::List { options, .. } => {
                self.list_count += 1;
                ClientMessage::List { id, options }
            }
            ClientMessage::Watch { options, .. } => {
                self.watch_count += 1;
                ClientMessage::Watch { id, options }
            }
            message => panic!("{message:?} is not retried"),
        };
        match &mut state {
            State::Listing(listing) => listing.id = id,
            State::Watching(watching) => {
                *watching = Watching::new(id, now, watching.propagate_rv_from_start)
            }
            State::WatchListing(watch_list) => {
                watch_list.id = id;
                watch_list.started_at = now;
            }
            state => panic!("no request to retry in {state:?}"),
        }
        self.state = state;
        self.answered = false;
        self.last_request = Some(message.clone());
        self.send(message);
    }

    /// A uniform watch timeout in `[min, 2·min]` (`Reflector.watch`'s `timeoutSeconds`).
    fn watch_timeout_ms(&mut self) -> u64 {
        let min_ms = self.config.min_watch_timeout.as_millis();
        self.rng.between(min_ms, 2 * min_ms)
    }

    fn send_list(&mut self, options: ListOptions) -> RequestId {
        let id = self.allocate_request_id();
        self.list_count += 1;
        self.send_request(ClientMessage::List { id, options });
        id
    }

    fn send_watch(&mut self, options: WatchOptions) -> RequestId {
        let id = self.allocate_request_id();
        self.watch_count += 1;
        self.send_request(ClientMessage::Watch { id, options });
        id
    }

    /// A new request: not answered yet, no REST retries yet.
    fn send_request(&mut self, message: ClientMessage) {
        self.answered = false;
        self.rest_attempts = 0;
        self.last_request = Some(message.clone());
        self.send(message);
    }

    fn allocate_request_id(&mut self) -> RequestId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    fn send(&mut self, message: ClientMessage) {
        self.outputs.push_back(ReflectorOutput::Send(message));
    }

    fn observe(&mut self, now: SimTime) {
        assert!(
            now >= self.last_input_at,
            "time went backwards: {now} < {}",
            self.last_input_at
        );
        self.last_input_at = now;
    }
}

impl Watching {
    fn new(id: RequestId, now: SimTime, propagate_rv_from_start: bool) -> Watching {
        Watching {
            id,
            started_at: now,
            event_count: 0,
            propagate_rv_from_start,
            event_received_besides_added: false,
        }
    }
}

/// A known resource version as a request parameter: 0 stands for "0" (a list that carried no
/// usable resource version).
fn resource_version_param(resource_version: ResourceVersion) -> ResourceVersionParam {
    if resource_version == 0 {
        ResourceVersionParam::Zero
    } else {
        ResourceVersionParam::At(resource_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives one reflector by hand: feeds server messages and collects what it does.
    struct Fake {
        reflector: Reflector,
        now: SimTime,
    }

    fn status(reason: StatusReason) -> RequestError {
        RequestError::Status(Status::new(reason, "test"))
    }

    fn too_large() -> RequestError {
        RequestError::Status(Status::too_large_resource_version())
    }

    fn page(items: &[(&str, u64)], resource_version: u64) -> ListResponse {
        ListResponse {
            items: items
                .iter()
                .map(|(key, rv)| Object::bare(key, *rv))
                .collect(),
            resource_version,
            continue_token: None,
        }
    }

    fn bookmark(resource_version: u64, initial_events_end: bool) -> WatchEvent {
        WatchEvent::Bookmark {
            resource_version,
            initial_events_end,
        }
    }

    impl Fake {
        fn started(config: ReflectorConfig) -> Fake {
            Fake::started_with(config, Bugs::NONE)
        }

        fn started_with(config: ReflectorConfig, bugs: Bugs) -> Fake {
            let mut reflector = Reflector::new(config, RngStream::new(7, "reflector"), bugs);
            reflector.start(SimTime::ZERO);
            Fake {
                reflector,
                now: SimTime::ZERO,
            }
        }

        fn advance(&mut self, delta_ms: u64) {
            self.now = self.now + SimDuration(delta_ms);
        }

        fn outputs(&mut self) -> Vec<ReflectorOutput> {
            std::iter::from_fn(|| self.reflector.poll_output()).collect()
        }

        fn store_ops(&mut self) -> Vec<StoreOp> {
            let outputs = self.outputs();
            outputs
                .into_iter()
                .map(|output| match output {
                    ReflectorOutput::Store(op) => op,
                    ReflectorOutput::Send(message) => panic!("unexpected {message:?}"),
                })
                .collect()
        }

        fn expect_list(&mut self) -> (RequestId, ListOptions) {
            match self.outputs().as_slice() {
                [ReflectorOutput::Send(ClientMessage::List { id, options })] => {
                    (*id, options.clone())
                }
                other => panic!("expected one list request, got {other:?}"),
            }
        }

        fn expect_watch(&mut self) -> (RequestId, WatchOptions) {
            match self.outputs().as_slice() {
                [ReflectorOutput::Send(ClientMessage::Watch { id, options })] => {
                    (*id, options.clone())
                }
                other => panic!("expected one watch request, got {other:?}"),
            }
        }

        fn expect_nothing(&mut self) {
            assert_eq!(self.outputs(), Vec::new());
        }

        fn answer_list(&mut self, id: RequestId, result: Result<ListResponse, RequestError>) {
            self.reflector
                .handle_message(self.now, ServerMessage::List { id, result });
        }

        fn event(&mut self, id: RequestId, event: WatchEvent) {
            self.reflector
                .handle_message(self.now, ServerMessage::WatchEvent { id, event });
        }

        fn close(&mut self, id: RequestId) {
            self.reflector
                .handle_message(self.now, ServerMessage::WatchClosed { id });
        }

        fn reject(&mut self, id: RequestId, error: RequestError) {
            self.reflector
                .handle_message(self.now, ServerMessage::WatchRejected { id, error });
        }

        /// Moves to the next timer and fires it; returns how long that took.
        fn fire(&mut self) -> SimDuration {
            let at = self.reflector.poll_timeout().expect("a timer is armed");
            let waited = at - self.now;
            self.now = at;
            self.reflector.handle_timeout(at);
            waited
        }

        /// Lists at RV "0" with `items` at `resource_version`; returns the watch that follows.
        fn synced(&mut self, items: &[(&str, u64)], resource_version: u64) -> RequestId {
            let (id, _) = self.expect_list();
            self.advance(10);
            self.answer_list(id, Ok(page(items, resource_version)));
            let outputs = self.outputs();
            assert!(matches!(
                outputs[0],
                ReflectorOutput::Store(StoreOp::Replace { .. })
            ));
            match &outputs[1..] {
                [ReflectorOutput::Send(ClientMessage::Watch { id, .. })] => *id,
                other => panic!("expected a watch, got {other:?}"),
            }
        }

        /// Starts in watch-list mode and syncs at `resource_version`; returns the stream.
        fn watch_list_synced(&mut self, resource_version: u64) -> RequestId {
            let (id, _) = self.expect_watch();
            self.advance(10);
            self.event(id, bookmark(resource_version, true));
            assert_eq!(self.store_ops().len(), 1, "the Replace");
            id
        }
    }

    fn watch_list_config() -> ReflectorConfig {
        ReflectorConfig {
            use_watch_list: true,
            ..ReflectorConfig::default()
        }
    }

    #[test]
    fn first_list_uses_resource_version_zero() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Zero);
        assert_eq!(options.resource_version_match, ResourceVersionMatch::Unset);
        assert_eq!(options.limit, DEFAULT_PAGE_SIZE);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Listing);
        assert_eq!(fake.reflector.last_sync_resource_version(), None);
    }

    /// T1: LIST(RV="0") → Replace at the list RV → WATCH(list RV).
    #[test]
    fn successful_list_replaces_then_watches_at_the_list_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (id, _) = fake.expect_list();
        fake.answer_list(id, Ok(page(&[("ns/a", 90), ("ns/b", 95)], 100)));
        let outputs = fake.outputs();
        let replace = StoreOp::Replace {
            items: vec![Object::bare("ns/a", 90), Object::bare("ns/b", 95)],
            resource_version: 100,
        };
        assert_eq!(outputs[0], ReflectorOutput::Store(replace));
        let ReflectorOutput::Send(ClientMessage::Watch { options, .. }) = &outputs[1] else {
            panic!("a watch follows the list");
        };
        assert_eq!(options.resource_version, ResourceVersionParam::At(100));
        assert!(options.allow_watch_bookmarks);
        assert!(!options.send_initial_events);
        let timeout_ms = options.timeout_ms.expect("a watch timeout");
        assert!((300_000..=600_000).contains(&timeout_ms));
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(100));
        assert_eq!(
            fake.reflector.poll_timeout(),
            None,
            "no timers while watching"
        );
    }

    #[test]
    fn watch_events_become_store_operations_and_advance_last_sync_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.event(watch, WatchEvent::Added(Object::bare("ns/a", 101)));
        fake.event(watch, WatchEvent::Modified(Object::bare("ns/a", 102)));
        fake.event(watch, WatchEvent::Deleted(Object::bare("ns/a", 103)));
        fake.event(watch, bookmark(110, false));
        let expected = vec![
            StoreOp::Add(Object::bare("ns/a", 101)),
            StoreOp::Update(Object::bare("ns/a", 102)),
            StoreOp::Delete(Object::bare("ns/a", 103)),
            StoreOp::Bookmark(110),
        ];
        assert_eq!(fake.store_ops(), expected);
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(110));
    }

    /// T2: the server closes the stream at its timeout after a bookmark at 180.
    #[test]
    fn clean_close_rewatches_from_last_event_rv_without_relist() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[("ns/a", 90)], 100);
        fake.advance(120_000);
        fake.event(watch, WatchEvent::Modified(Object::bare("ns/a", 150)));
        fake.advance(178_000);
        fake.event(watch, bookmark(180, false));
        fake.store_ops();
        fake.advance(2_000);
        fake.close(watch);
        let (rewatch, options) = fake.expect_watch();
        assert_ne!(rewatch, watch);
        assert_eq!(options.resource_version, ResourceVersionParam::At(180));
        assert_eq!(fake.reflector.list_count(), 1, "no relist");
        assert_eq!(fake.reflector.relist_count(), 0);
    }

    #[test]
    fn close_under_one_second_with_no_events_relists() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.advance(999);
        fake.close(watch);
        fake.expect_nothing();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        assert_eq!(
            fake.reflector.last_error(),
            Some(&ReflectorError::VeryShortWatch)
        );
        let waited = fake.fire();
        assert!(waited >= SimDuration(800) && waited < SimDuration(1600));
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(100));
        assert_eq!(
            options.limit, 0,
            "an RV other than 0 lists from the watch cache"
        );
        assert_eq!(fake.reflector.relist_count(), 1);
    }

    #[test]
    fn close_under_one_second_after_an_event_rewatches() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.event(watch, bookmark(101, false));
        fake.store_ops();
        fake.advance(10);
        fake.close(watch);
        let (_, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::At(101));
    }

    /// T3: a 410 on the re-watch relists at lastSyncRV, after the backoff, without marking it
    /// unavailable.
    #[test]
    fn expired_watch_relists_at_last_sync_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[("ns/x", 50)], 100);
        fake.advance(60_000);
        fake.event(watch, bookmark(180, false));
        fake.store_ops();
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::HealthCheckFailed);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        fake.fire();
        let (relist, _) = fake.expect_list();
        fake.answer_list(relist, Ok(page(&[("ns/x", 50)], 181)));
        let rewatch = match fake.outputs().as_slice() {
            [_, ReflectorOutput::Send(ClientMessage::Watch { id, .. })] => *id,
            other => panic!("expected Replace then Watch, got {other:?}"),
        };
        fake.event(
            rewatch,
            WatchEvent::Error(Status::new(StatusReason::Expired, "gone")),
        );
        fake.expect_nothing();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        assert!(!fake.reflector.is_last_sync_resource_version_unavailable());
        fake.fire();
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(181));
        assert_eq!(options.limit, 0);
    }

    #[test]
    fn expired_watch_rejection_relists_after_the_backoff() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.reject(watch, status(StatusReason::Expired));
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        fake.fire();
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(100));
    }

    #[test]
    fn expired_list_retries_at_once_with_unset_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.advance(5_000);
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::HealthCheckFailed);
        fake.fire();
        let (list, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(100));
        fake.answer_list(list, Err(status(StatusReason::Expired)));
        let (retry, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        assert_eq!(options.limit, 0, "the page size of the first attempt");
        assert!(fake.reflector.is_last_sync_resource_version_unavailable());
        fake.answer_list(retry, Ok(page(&[], 300)));
        assert!(!fake.reflector.is_last_sync_resource_version_unavailable());
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(300));
    }

    /// T7: L=900, the watch dies with 410, `LIST(900)` gets 504 TooLargeResourceVersion from a
    /// lagging apiserver, and the reflector lists at RV "" at once.
    #[test]
    fn too_large_list_retries_at_once_with_unset_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 800);
        fake.event(watch, bookmark(900, false));
        fake.store_ops();
        fake.advance(30_000);
        fake.event(
            watch,
            WatchEvent::Error(Status::new(StatusReason::Expired, "gone")),
        );
        fake.fire();
        let (list, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(900));
        fake.advance(3_000);
        fake.answer_list(list, Err(too_large()));
        let (retry, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        fake.advance(100);
        fake.answer_list(retry, Ok(page(&[], 1000)));
        let outputs = fake.outputs();
        let ReflectorOutput::Send(ClientMessage::Watch { options, .. }) = &outputs[1] else {
            panic!("a watch follows the list");
        };
        assert_eq!(options.resource_version, ResourceVersionParam::At(1000));
    }

    #[test]
    fn a_second_unavailable_list_error_backs_off_before_the_next_request() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (list, _) = fake.expect_list();
        fake.answer_list(list, Err(too_large()));
        let (retry, _) = fake.expect_list();
        fake.answer_list(retry, Err(status(StatusReason::Expired)));
        fake.expect_nothing();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        fake.fire();
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        assert_eq!(
            options.limit, DEFAULT_PAGE_SIZE,
            "RV \"\" keeps the default pages"
        );
    }

    #[test]
    fn other_list_errors_back_off_then_relist() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let mut waits = Vec::new();
        for error in [
            status(StatusReason::InternalError),
            RequestError::ConnectionRefused,
        ] {
            let (list, _) = fake.expect_list();
            fake.answer_list(list, Err(error));
            assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
            waits.push(fake.fire());
        }
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Zero);
        assert!(waits[0] >= SimDuration(800) && waits[1] >= SimDuration(1600));
    }

    #[test]
    fn too_many_requests_backs_off_and_rewatches() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.reject(watch, status(StatusReason::TooManyRequests));
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRewatch);
        fake.fire();
        let (watch, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::At(100));
        fake.reject(watch, RequestError::ConnectionRefused);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRewatch);
        fake.fire();
        let (watch, _) = fake.expect_watch();
        fake.advance(5_000);
        fake.event(
            watch,
            WatchEvent::Error(Status::new(StatusReason::TooManyRequests, "")),
        );
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRewatch);
        fake.fire();
        fake.expect_watch();
        assert_eq!(fake.reflector.list_count(), 1, "no relist");
    }

    #[test]
    fn a_429_with_retry_after_is_sent_again_after_it_ten_times_then_backs_off() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        let too_many = |seconds| {
            RequestError::Status(Status {
                retry_after_seconds: Some(seconds),
                ..Status::new(StatusReason::TooManyRequests, "storage is (re)initializing")
            })
        };
        fake.reject(watch, too_many(7));
        assert_eq!(fake.reflector.phase(), ReflectorPhase::RetryingRequest);
        assert!(
            fake.reflector.last_error().is_none(),
            "the REST client retries"
        );
        assert_eq!(fake.fire(), SimDuration::from_secs(7));
        for _ in 1..MAX_REST_RETRIES {
            let (watch, options) = fake.expect_watch();
            assert_eq!(options.resource_version, ResourceVersionParam::At(100));
            fake.reject(watch, too_many(3));
            assert_eq!(fake.fire(), SimDuration::from_secs(3));
        }
        let (watch, _) = fake.expect_watch();
        fake.reject(watch, too_many(3));
        assert!(
            fake.reflector.last_error().is_some(),
            "the eleventh 429 reaches the reflector"
        );
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRewatch);
        assert_eq!(fake.reflector.list_count(), 1, "no relist");
    }

    #[test]
    fn a_list_429_with_retry_after_sends_the_same_page_again_after_it() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (list, first) = fake.expect_list();
        let retried = RequestError::Status(Status {
            retry_after_seconds: Some(2),
            ..Status::new(StatusReason::TooManyRequests, "storage is (re)initializing")
        });
        fake.answer_list(list, Err(retried));
        assert_eq!(fake.fire(), SimDuration::from_secs(2));
        let (_, again) = fake.expect_list();
        assert_eq!(again, first);
        assert_eq!(fake.reflector.relist_count(), 0, "the same ListAndWatch");
    }

    #[test]
    fn internal_error_rewatches_within_its_budget_else_relists() {
        let config = ReflectorConfig {
            max_internal_error_retry_duration: SimDuration::from_secs(30),
            ..ReflectorConfig::default()
        };
        let mut fake = Fake::started(config);
        let mut watch = fake.synced(&[], 100);
        let internal = || WatchEvent::Error(Status::new(StatusReason::InternalError, "boom"));
        // The first error at 10 s; the ones at 20, 30 and 40 s are within 30 s of it.
        for _ in 0..4 {
            fake.advance(10_000);
            fake.event(watch, internal());
            watch = fake.expect_watch().0;
        }
        fake.advance(10_000);
        fake.event(watch, internal());
        assert_eq!(
            fake.reflector.phase(),
            ReflectorPhase::WaitingToRelist,
            "40 s > 30 s"
        );
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.event(watch, internal());
        assert_eq!(
            fake.reflector.phase(),
            ReflectorPhase::WaitingToRelist,
            "no budget"
        );
    }

    /// T3: a probable EOF ends an open watch cleanly; the reflector re-watches from lastSyncRV
    /// at once, with no relist.
    #[test]
    fn peer_close_mid_stream_rewatches_at_once_from_last_sync_rv() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.advance(60_000);
        fake.event(watch, bookmark(120, false));
        fake.store_ops();
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::PeerClosed);
        let options = match fake.outputs().as_slice() {
            [ReflectorOutput::Send(ClientMessage::Watch { options, .. })] => options.clone(),
            other => panic!("expected a re-watch, got {other:?}"),
        };
        assert_eq!(options.resource_version, ResourceVersionParam::At(120));
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Watching);
        assert_eq!(fake.reflector.rewatch_count(), 1);
        assert_eq!(fake.reflector.relist_count(), 0);
    }

    #[test]
    fn health_check_close_mid_stream_is_an_internal_error_and_relists() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let watch = fake.synced(&[], 100);
        fake.advance(60_000);
        fake.event(watch, bookmark(120, false));
        fake.store_ops();
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::HealthCheckFailed);
        assert!(
            fake.reflector
                .last_error()
                .is_some_and(|error| error.to_string().contains("InternalError")),
            "{:?}",
            fake.reflector.last_error()
        );
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        fake.fire();
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::At(120));
    }

    /// A request whose connection closed before its answer is sent again a second later, the
    /// same request under a new id; after ten retries the list fails and a relist follows.
    #[test]
    fn peer_close_before_the_answer_retries_the_request_ten_times() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (mut list, first) = fake.expect_list();
        for attempt in 1..=MAX_REST_RETRIES {
            fake.reflector
                .handle_connection_lost(fake.now, list, ConnectionLoss::PeerClosed);
            assert_eq!(fake.reflector.phase(), ReflectorPhase::RetryingRequest);
            assert_eq!(fake.reflector.request_in_flight(), None);
            assert_eq!(
                fake.reflector.poll_timeout(),
                Some(fake.now + REST_RETRY_AFTER)
            );
            fake.fire();
            let (again, options) = fake.expect_list();
            assert_ne!(again, list, "attempt {attempt} has a new id");
            assert_eq!(options, first);
            list = again;
        }
        assert_eq!(
            fake.reflector.rest_retry_count(),
            u64::from(MAX_REST_RETRIES)
        );
        fake.reflector
            .handle_connection_lost(fake.now, list, ConnectionLoss::PeerClosed);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        assert_eq!(
            fake.reflector.last_error(),
            Some(&ReflectorError::ConnectionLost)
        );
    }

    /// An unanswered watch that keeps losing its connection becomes an empty watch
    /// (`NewEmptyWatch`): a very short watch, then a relist.
    #[test]
    fn unanswered_watch_ends_as_a_very_short_watch_after_its_retries() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let mut watch = fake.synced(&[], 100);
        for _ in 0..MAX_REST_RETRIES {
            fake.reflector
                .handle_connection_lost(fake.now, watch, ConnectionLoss::PeerClosed);
            fake.fire();
            watch = match fake.outputs().as_slice() {
                [ReflectorOutput::Send(ClientMessage::Watch { id, options })] => {
                    assert_eq!(options.resource_version, ResourceVersionParam::At(100));
                    *id
                }
                other => panic!("expected the watch again, got {other:?}"),
            };
        }
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::PeerClosed);
        assert_eq!(
            fake.reflector.last_error(),
            Some(&ReflectorError::VeryShortWatch)
        );
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        assert_eq!(fake.reflector.rewatch_count(), 0);
    }

    /// A watch-list stream that closes after its first events is retried at once with a fresh
    /// temporary store, not replaced by a list.
    #[test]
    fn peer_close_mid_watch_list_retries_the_watch_list() {
        let mut fake = Fake::started(watch_list_config());
        let (stream, _) = fake.expect_watch();
        fake.advance(2_000);
        fake.event(stream, WatchEvent::Added(Object::bare("ns/a", 90)));
        fake.reflector
            .handle_connection_lost(fake.now, stream, ConnectionLoss::PeerClosed);
        let (retry, options) = fake.expect_watch();
        assert_ne!(retry, stream);
        assert!(options.send_initial_events);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WatchListing);
        assert_eq!(fake.reflector.list_count(), 0, "no fallback to a list");
    }

    /// A healthy quiet watch has no client-side timer: it lives until the server closes it at
    /// its timeout (HTTP/2's health check is the connection's, not the reflector's).
    #[test]
    fn a_quiet_watch_arms_no_timer() {
        let mut fake = Fake::started(ReflectorConfig::default());
        let (list, _) = fake.expect_list();
        fake.answer_list(list, Ok(page(&[], 5)));
        fake.outputs();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Watching);
        assert_eq!(fake.reflector.poll_timeout(), None);
    }

    #[test]
    fn stop_sends_stop_watch_and_goes_quiet() {
        let config = ReflectorConfig {
            resync_period: Some(SimDuration::from_secs(10)),
            ..ReflectorConfig::default()
        };
        let mut fake = Fake::started(config);
        let watch = fake.synced(&[], 100);
        fake.reflector.stop();
        assert_eq!(
            fake.outputs(),
            vec![ReflectorOutput::Send(ClientMessage::StopWatch {
                id: watch
            })]
        );
        assert_eq!(fake.reflector.poll_timeout(), None);
        fake.event(watch, bookmark(120, false));
        fake.reflector
            .handle_connection_lost(fake.now, watch, ConnectionLoss::HealthCheckFailed);
        fake.expect_nothing();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Stopped);
    }

    /// T6: watch-list startup.
    #[test]
    fn watch_list_replaces_at_the_initial_events_end_bookmark() {
        let mut fake = Fake::started(watch_list_config());
        let (stream, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        assert_eq!(
            options.resource_version_match,
            ResourceVersionMatch::NotOlderThan
        );
        assert!(options.send_initial_events && options.allow_watch_bookmarks);
        fake.advance(3_000);
        fake.event(stream, WatchEvent::Added(Object::bare("ns/a", 650)));
        fake.event(stream, WatchEvent::Added(Object::bare("ns/c", 699)));
        fake.event(stream, WatchEvent::Added(Object::bare("ns/b", 702)));
        fake.event(stream, WatchEvent::Added(Object::bare("ns/a", 655)));
        fake.expect_nothing();
        assert_eq!(fake.reflector.last_sync_resource_version(), None);
        fake.event(stream, bookmark(702, true));
        let replace = StoreOp::Replace {
            items: vec![
                Object::bare("ns/a", 655),
                Object::bare("ns/b", 702),
                Object::bare("ns/c", 699),
            ],
            resource_version: 702,
        };
        assert_eq!(fake.store_ops(), vec![replace]);
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(702));
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Watching);
        fake.event(stream, WatchEvent::Modified(Object::bare("ns/a", 703)));
        assert_eq!(
            fake.store_ops(),
            vec![StoreOp::Update(Object::bare("ns/a", 703))]
        );
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(703));
        assert_eq!(
            (fake.reflector.watch_count(), fake.reflector.list_count()),
            (1, 0)
        );
    }

    #[test]
    fn watch_list_closed_before_the_bookmark_retries_with_a_fresh_store() {
        let mut fake = Fake::started(watch_list_config());
        let (stream, _) = fake.expect_watch();
        fake.advance(2_000);
        fake.event(stream, WatchEvent::Added(Object::bare("ns/gone", 650)));
        fake.close(stream);
        let (retry, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        fake.advance(2_000);
        fake.event(retry, WatchEvent::Added(Object::bare("ns/b", 700)));
        fake.event(retry, bookmark(710, true));
        let replace = StoreOp::Replace {
            items: vec![Object::bare("ns/b", 700)],
            resource_version: 710,
        };
        assert_eq!(fake.store_ops(), vec![replace]);
    }

    #[test]
    fn watch_list_unavailable_rv_retries_at_once_with_unset_rv() {
        let mut fake = Fake::started(watch_list_config());
        let stream = fake.watch_list_synced(702);
        fake.advance(60_000);
        fake.reflector
            .handle_connection_lost(fake.now, stream, ConnectionLoss::HealthCheckFailed);
        fake.fire();
        let (retry, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::At(702));
        assert!(options.send_initial_events);
        fake.event(
            retry,
            WatchEvent::Error(Status::too_large_resource_version()),
        );
        let (_, options) = fake.expect_watch();
        assert_eq!(options.resource_version, ResourceVersionParam::Unset);
        assert!(fake.reflector.is_last_sync_resource_version_unavailable());
    }

    #[test]
    fn watch_list_too_many_requests_backs_off_and_retries() {
        let mut fake = Fake::started(watch_list_config());
        let (stream, _) = fake.expect_watch();
        fake.reject(stream, status(StatusReason::TooManyRequests));
        assert_eq!(
            fake.reflector.phase(),
            ReflectorPhase::WaitingToRetryWatchList
        );
        fake.fire();
        assert!(fake.expect_watch().1.send_initial_events);
    }

    #[test]
    fn watch_list_other_errors_fall_back_to_a_list() {
        let mut fake = Fake::started(watch_list_config());
        let (stream, _) = fake.expect_watch();
        fake.reject(stream, status(StatusReason::InternalError));
        let (_, options) = fake.expect_list();
        assert_eq!(options.resource_version, ResourceVersionParam::Zero);
        let mut fake = Fake::started(watch_list_config());
        let (stream, _) = fake.expect_watch();
        fake.advance(10);
        fake.close(stream);
        fake.expect_list();
        assert_eq!(
            fake.reflector.last_error(),
            Some(&ReflectorError::VeryShortWatch)
        );
    }

    #[test]
    fn watch_list_stream_closing_within_a_second_of_the_bookmark_relists() {
        let mut fake = Fake::started(watch_list_config());
        let stream = fake.watch_list_synced(702);
        fake.advance(500);
        fake.close(stream);
        assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        fake.fire();
        assert_eq!(
            fake.expect_watch().1.resource_version,
            ResourceVersionParam::At(702)
        );
    }

    // ---- Planted bugs -------------------------------------------------------------------------

    fn with_bug(bug: Bug) -> Fake {
        Fake::started_with(ReflectorConfig::default(), Bugs::new(Some(bug)))
    }

    #[test]
    fn bug_b11_takes_rv_from_initial_added_events_of_a_watch_list() {
        let mut fake = Fake::started_with(
            watch_list_config(),
            Bugs::new(Some(Bug::ResumeFromAnyEventRv)),
        );
        let (stream, _) = fake.expect_watch();
        fake.event(stream, WatchEvent::Added(Object::bare("ns/a", 900)));
        fake.event(stream, WatchEvent::Added(Object::bare("ns/b", 500)));
        fake.expect_nothing();
        assert_eq!(fake.reflector.last_sync_resource_version(), Some(500));
    }

    #[test]
    fn bug_b14_relists_with_the_same_rv_on_too_large() {
        let mut fake = with_bug(Bug::RelistWithSameRvOnTooLarge);
        let watch = fake.synced(&[], 900);
        fake.event(
            watch,
            WatchEvent::Error(Status::new(StatusReason::Expired, "gone")),
        );
        for _ in 0..3 {
            fake.fire();
            let (list, options) = fake.expect_list();
            assert_eq!(options.resource_version, ResourceVersionParam::At(900));
            fake.answer_list(list, Err(too_large()));
            assert!(!fake.reflector.is_last_sync_resource_version_unavailable());
        }
    }

    #[test]
    fn bug_b15_relists_with_the_same_rv_on_expired() {
        let mut fake = with_bug(Bug::RelistWithSameRvOnExpired);
        let watch = fake.synced(&[], 900);
        fake.event(
            watch,
            WatchEvent::Error(Status::new(StatusReason::Expired, "gone")),
        );
        for _ in 0..3 {
            fake.fire();
            let (list, options) = fake.expect_list();
            assert_eq!(options.resource_version, ResourceVersionParam::At(900));
            fake.answer_list(list, Err(status(StatusReason::Expired)));
            assert_eq!(fake.reflector.phase(), ReflectorPhase::WaitingToRelist);
        }
    }

    #[test]
    fn bug_resume_watch_from_list_rv_rewatches_from_the_list_rv() {
        let mut fake = with_bug(Bug::ResumeWatchFromListRv);
        let watch = fake.synced(&[], 100);
        fake.event(watch, WatchEvent::Added(Object::bare("ns/a", 150)));
        fake.store_ops();
        fake.advance(300_000);
        fake.close(watch);
        assert_eq!(
            fake.expect_watch().1.resource_version,
            ResourceVersionParam::At(100)
        );
    }

    #[test]
    fn bug_closed_watch_is_end_of_data_never_watches_again() {
        let mut fake = with_bug(Bug::ClosedWatchIsEndOfData);
        let watch = fake.synced(&[], 100);
        fake.advance(300_000);
        fake.close(watch);
        fake.expect_nothing();
        assert_eq!(fake.reflector.phase(), ReflectorPhase::Finished);
        assert_eq!(fake.reflector.poll_timeout(), None);
    }

    #[test]
    fn same_seed_gives_the_same_requests_and_timers() {
        let run = || {
            let mut fake = Fake::started(ReflectorConfig::default());
            let mut trace = Vec::new();
            for _ in 0..4 {
                let (list, _) = fake.expect_list();
                fake.answer_list(list, Err(RequestError::ConnectionRefused));
                trace.push(fake.fire().as_millis());
            }
            let watch = fake.synced(&[], 10);
            fake.reflector.stop();
            trace.push(watch);
            trace
        };
        assert_eq!(run(), run());
    }
}
