//! One kube-rs client process inside the simulation: kube-rs's own `watcher` and `reflector`
//! store over a `kube::Client` whose `tower` service hands every request to the simulation
//! through the [HTTP face](super::face).
//!
//! The process owns a current-thread tokio runtime with a paused clock: the simulation's
//! executor. [`KubeProcess::run_until`] lets it run until it has something for the world (a
//! request to send, a watcher event applied to its store) or until the simulated time the world
//! names, whichever comes first; tokio's auto-advance moves its clock only when every task is
//! idle, so kube-rs's timers (its backoff, its watch idle timeout) fire at their simulated
//! times. Answers come back through [`KubeProcess::deliver`]: a list as one body, a watch as a
//! body of JSON lines fed event by event, a lost connection as a transport error.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::poll_fn;
use futures::{Stream, StreamExt};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::Serialize;

use super::backoff::SeededBackoff;
use super::face::{self, FaceRequest};
use crate::api::{ClientMessage, RequestError, RequestId, ServerMessage};
use crate::controller::WriteError;
use crate::object::{Object, ObjectKey};
use crate::sim::{RngStream, SimTime};

/// The namespace the kube-rs clients watch (the workload's only one).
pub const NAMESPACE: &str = "ns-0";

type Body = UnsyncBoxBody<Bytes, std::io::Error>;
type Item = watcher::Result<watcher::Event<ConfigMap>>;
/// What a request waits for: its HTTP answer, or why there is none.
type Answer = oneshot::Receiver<Result<Response<Body>, Lost>>;

/// How a kube-rs watcher is configured (`watcher::Config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KubeConfig {
    /// `page_size` of the initial list (0: kube-rs's default, 500).
    pub page_size: u32,
    /// `streaming_lists()`: the initial list is a watch with `sendInitialEvents`.
    pub streaming_lists: bool,
}

/// One watcher step, as the world traces and checks it (kube-rs `watcher::Event` and
/// `watcher::Error`, with the ConfigMaps as the objects they show).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreEvent {
    /// A (re)list begins.
    Init,
    /// One object of the list, into the buffer the store will swap in.
    InitApply(Object),
    /// The list is complete: the store now holds it.
    InitDone,
    /// A watched object was added or modified.
    Apply(Object),
    /// A watched object was deleted.
    Delete(Object),
    /// The watcher yielded an error (it retries after the backoff).
    Error(WatcherError),
}

/// kube-rs's `watcher::Error`, with the HTTP code where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatcherError {
    /// The list request failed (`InitialListFailed`).
    InitialListFailed(Option<u16>),
    /// The watch request failed (`WatchStartFailed`).
    WatchStartFailed(Option<u16>),
    /// The stream carried an ERROR event with this code (`WatchError`).
    WatchError(u16),
    /// The stream broke (`WatchFailed`).
    WatchFailed,
    /// An answer had no resource version (`NoResourceVersion`).
    NoResourceVersion,
}

impl StoreEvent {
    fn of(item: Item) -> StoreEvent {
        let object = |config_map: &ConfigMap| {
            face::object_of(config_map).expect("the face wrote every ConfigMap")
        };
        let code = |error: &kube::Error| match error {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        };
        match item {
            Ok(watcher::Event::Init) => StoreEvent::Init,
            Ok(watcher::Event::InitApply(config_map)) => StoreEvent::InitApply(object(&config_map)),
            Ok(watcher::Event::InitDone) => StoreEvent::InitDone,
            Ok(watcher::Event::Apply(config_map)) => StoreEvent::Apply(object(&config_map)),
            Ok(watcher::Event::Delete(config_map)) => StoreEvent::Delete(object(&config_map)),
            Err(watcher::Error::InitialListFailed(error)) => {
                StoreEvent::Error(WatcherError::InitialListFailed(code(&error)))
            }
            Err(watcher::Error::WatchStartFailed(error)) => {
                StoreEvent::Error(WatcherError::WatchStartFailed(code(&error)))
            }
            Err(watcher::Error::WatchError(status)) => {
                StoreEvent::Error(WatcherError::WatchError(status.code))
            }
            Err(watcher::Error::WatchFailed(_)) => StoreEvent::Error(WatcherError::WatchFailed),
            Err(watcher::Error::NoResourceVersion) => {
                StoreEvent::Error(WatcherError::NoResourceVersion)
            }
        }
    }
}

impl std::fmt::Display for StoreEvent {
    /// `Init`, `InitApply ns-0/obj-1@5`, `Apply ...`, `Delete ...`, `error WatchStartFailed(Some(410))`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreEvent::Init => f.write_str("Init"),
            StoreEvent::InitApply(object) => write!(f, "InitApply {object}"),
            StoreEvent::InitDone => f.write_str("InitDone"),
            StoreEvent::Apply(object) => write!(f, "Apply {object}"),
            StoreEvent::Delete(object) => write!(f, "Delete {object}"),
            StoreEvent::Error(error) => write!(f, "error {error:?}"),
        }
    }
}

/// Why a request got no HTTP answer.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// The apiserver refused the connection.
    Refused,
    /// The connection broke.
    Reset,
}

impl Lost {
    fn error(self) -> std::io::Error {
        let kind = match self {
            Lost::Refused => std::io::ErrorKind::ConnectionRefused,
            Lost::Reset => std::io::ErrorKind::ConnectionReset,
        };
        std::io::Error::from(kind)
    }
}

/// A request waiting for the simulation: its answer, or its open watch body.
enum Waiting {
    Answer {
        sender: oneshot::Sender<Result<Response<Body>, Lost>>,
        watch: bool,
    },
    Streaming(mpsc::UnboundedSender<Result<Frame<Bytes>, std::io::Error>>),
}

impl Waiting {
    /// The client dropped the request or the body: the stream is given up.
    fn is_dropped(&self) -> bool {
        match self {
            Waiting::Answer { sender, .. } => sender.is_canceled(),
            Waiting::Streaming(body) => body.is_closed(),
        }
    }
}

/// What the service and the world exchange: the requests made, and who waits for what.
#[derive(Default)]
struct Exchange {
    next_id: RequestId,
    outbox: VecDeque<ClientMessage>,
    waiting: BTreeMap<RequestId, Waiting>,
    /// The world's poll of the runtime, woken when a request arrives.
    waker: Option<Waker>,
    /// Requests the face could not read (answered 400 at once).
    unreadable: u64,
}

impl Exchange {
    /// Whether the world has something to send: a request, or a stream the client dropped
    /// (which becomes a `StopWatch`).
    fn has_output(&mut self) -> bool {
        let dropped: Vec<RequestId> = self
            .waiting
            .iter()
            .filter(|(_, waiting)| waiting.is_dropped())
            .map(|(id, _)| *id)
            .collect();
        for id in dropped {
            if let Some(Waiting::Streaming(_) | Waiting::Answer { watch: true, .. }) =
                self.waiting.remove(&id)
            {
                self.outbox.push_back(ClientMessage::StopWatch { id });
            }
        }
        !self.outbox.is_empty()
    }

    fn submit(&mut self, request: FaceRequest) -> Result<Answer, Box<Response<Body>>> {
        self.next_id += 1;
        let id = self.next_id;
        let (message, watch) = match request {
            FaceRequest::List(options) => (ClientMessage::List { id, options }, false),
            FaceRequest::Watch(options) => (ClientMessage::Watch { id, options }, true),
            FaceRequest::Write(write) => {
                // No kube-rs writer runs in the world: the watcher and store only read.
                return Err(Box::new(full(face::write_response(
                    &write,
                    &Err(WriteError::Unavailable),
                ))));
            }
        };
        let (answer, receiver) = oneshot::channel();
        self.waiting.insert(
            id,
            Waiting::Answer {
                sender: answer,
                watch,
            },
        );
        self.outbox.push_back(message);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        Ok(receiver)
    }
}

fn full(response: Response<Bytes>) -> Response<Body> {
    response.map(|bytes| {
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync()
    })
}

fn lock(exchange: &Mutex<Exchange>) -> MutexGuard<'_, Exchange> {
    exchange.lock().expect("the exchange is never poisoned")
}

/// One kube-rs client process.
pub struct KubeProcess {
    runtime: tokio::runtime::Runtime,
    stream: Pin<Box<dyn Stream<Item = Item> + Send>>,
    store: Store<ConfigMap>,
    exchange: Arc<Mutex<Exchange>>,
    /// The simulated time and the tokio instant the process started at.
    origin: (SimTime, tokio::time::Instant),
    /// Watcher steps not yet handed to the world.
    events: VecDeque<StoreEvent>,
}

impl KubeProcess {
    /// A process started at `now`, its backoff's jitter drawn from `rng`.
    pub fn new(config: KubeConfig, now: SimTime, rng: RngStream) -> KubeProcess {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds");
        let exchange = Arc::new(Mutex::new(Exchange::default()));
        let shared = Arc::clone(&exchange);
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let exchange = Arc::clone(&shared);
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                let request = match face::parse(&parts.method, &parts.uri, &body) {
                    Ok(request) => request,
                    Err(error) => {
                        lock(&exchange).unreadable += 1;
                        return Ok(full(error.response()));
                    }
                };
                let receiver = match lock(&exchange).submit(request) {
                    Ok(receiver) => receiver,
                    Err(answer) => return Ok(*answer),
                };
                match receiver.await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(lost)) => Err(lost.error()),
                    Err(oneshot::Canceled) => Err(Lost::Reset.error()),
                }
            }
        });
        let (store, writer) = reflector::store::<ConfigMap>();
        let mut watcher_config = watcher::Config::default();
        if config.page_size > 0 {
            watcher_config = watcher_config.page_size(config.page_size);
        }
        if config.streaming_lists {
            watcher_config = watcher_config.streaming_lists();
        }
        let (stream, started) = {
            let _context = runtime.enter();
            let client = Client::new(service, NAMESPACE);
            let api = Api::<ConfigMap>::namespaced(client, NAMESPACE);
            let stream = watcher(api, watcher_config)
                .backoff(SeededBackoff::new(rng))
                .reflect(writer)
                .boxed();
            (stream, tokio::time::Instant::now())
        };
        KubeProcess {
            runtime,
            stream,
            store,
            exchange,
            origin: (now, started),
            events: VecDeque::new(),
        }
    }

    fn sim_time(&self, instant: tokio::time::Instant) -> SimTime {
        let elapsed = instant.duration_since(self.origin.1).as_millis() as u64;
        SimTime(self.origin.0.as_millis() + elapsed)
    }

    /// Runs kube-rs until it has something for the world or until `limit`, whichever is
    /// first: the simulated time of its output, or `None` if it was idle until `limit`.
    pub fn run_until(&mut self, limit: SimTime) -> Option<SimTime> {
        let millis = limit.as_millis().saturating_sub(self.origin.0.as_millis());
        let deadline = self.origin.1 + Duration::from_millis(millis);
        let (stream, exchange, events) = (&mut self.stream, &self.exchange, &mut self.events);
        let (output, at) = self.runtime.block_on(async {
            let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
            let output = poll_fn(|cx| {
                if let Poll::Ready(Some(item)) = stream.poll_next_unpin(cx) {
                    events.push_back(StoreEvent::of(item));
                    return Poll::Ready(true);
                }
                let mut exchange = lock(exchange);
                exchange.waker = Some(cx.waker().clone());
                if exchange.has_output() {
                    return Poll::Ready(true);
                }
                drop(exchange);
                sleep.as_mut().poll(cx).map(|()| false)
            })
            .await;
            (output, tokio::time::Instant::now())
        });
        output.then(|| self.sim_time(at))
    }

    /// The requests kube-rs made since the last call, in order (and a `StopWatch` for each
    /// watch it gave up).
    pub fn take_requests(&mut self) -> Vec<ClientMessage> {
        lock(&self.exchange).outbox.drain(..).collect()
    }

    /// The watcher steps since the last call, each already applied to the store.
    pub fn take_events(&mut self) -> Vec<StoreEvent> {
        self.events.drain(..).collect()
    }

    /// An answer from the apiserver reaches the client.
    pub fn deliver(&mut self, message: ServerMessage) {
        let mut exchange = lock(&self.exchange);
        let answer = |result: Result<Response<Bytes>, Lost>| result.map(full);
        let refused = |error: &RequestError| match error {
            RequestError::Status(status) => Ok(face::error_response(status)),
            RequestError::ConnectionRefused => Err(Lost::Refused),
        };
        match message {
            ServerMessage::List { id, result } => {
                if let Some(Waiting::Answer { sender, .. }) = exchange.waiting.remove(&id) {
                    let response = match &result {
                        Ok(page) => Ok(face::list_response(page)),
                        Err(error) => refused(error),
                    };
                    let _ = sender.send(answer(response));
                }
            }
            ServerMessage::WatchRejected { id, error } => {
                if let Some(Waiting::Answer { sender, .. }) = exchange.waiting.remove(&id) {
                    let _ = sender.send(answer(refused(&error)));
                }
            }
            ServerMessage::WatchEvent { id, event } => {
                let line = Ok(Frame::data(face::watch_line(&event)));
                match exchange.waiting.remove(&id) {
                    Some(Waiting::Answer { sender, .. }) => {
                        let (body, frames) = mpsc::unbounded();
                        let _ = body.unbounded_send(line);
                        let response = Response::new(StreamBody::new(frames).boxed_unsync());
                        let _ = sender.send(Ok(response));
                        exchange.waiting.insert(id, Waiting::Streaming(body));
                    }
                    Some(Waiting::Streaming(body)) => {
                        let _ = body.unbounded_send(line);
                        exchange.waiting.insert(id, Waiting::Streaming(body));
                    }
                    None => {}
                }
            }
            ServerMessage::WatchClosed { id } => {
                if let Some(Waiting::Answer { sender, .. }) = exchange.waiting.remove(&id) {
                    let _ = sender.send(Ok(full(Response::new(Bytes::new()))));
                }
            }
        }
    }

    /// The connection broke: requests waiting for an answer fail, open watch bodies end with a
    /// transport error.
    pub fn connection_lost(&mut self) {
        let mut exchange = lock(&self.exchange);
        for (_, waiting) in std::mem::take(&mut exchange.waiting) {
            match waiting {
                Waiting::Answer { sender, .. } => {
                    let _ = sender.send(Err(Lost::Reset));
                }
                Waiting::Streaming(body) => {
                    let _ = body.unbounded_send(Err(Lost::Reset.error()));
                }
            }
        }
    }

    /// The store's objects, sorted by key (the store is a hash map).
    pub fn store_objects(&self) -> Vec<Object> {
        let mut objects: Vec<Object> = self
            .store
            .state()
            .iter()
            .map(|config_map| face::object_of(config_map).expect("the face wrote it"))
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    /// The store's object for `key`, if any.
    pub fn store_get(&self, key: &ObjectKey) -> Option<Object> {
        let reference = ObjectRef::new(key.name()).within(key.namespace());
        self.store
            .get(&reference)
            .map(|config_map| face::object_of(&config_map).expect("the face wrote it"))
    }

    /// Requests the face could not read (a kube-rs request it does not model).
    pub fn unreadable_requests(&self) -> u64 {
        lock(&self.exchange).unreadable
    }
}
