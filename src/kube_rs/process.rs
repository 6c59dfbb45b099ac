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
//! body of JSON lines fed event by event, a lost connection as a transport error, a write as
//! the world's answer to it.
//!
//! A process runs either kube-rs's watcher and store alone ([`KubeProcess::new`]) or kube-rs's
//! `Controller` over them ([`KubeProcess::controller`], see [`super::controller`]).

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
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::backoff::SeededBackoff;
use super::controller::{self, ControllerSetup, KubeController};
use super::face::{self, FaceRequest};
use super::steps::{Item, KubeStep, StoreEvent, store_get, store_objects};
use crate::api::{ClientMessage, RequestError, RequestId, ServerMessage};
use crate::controller::{Write, WriteError};
use crate::object::Object;
use crate::sim::{RngStream, SimTime};

/// The namespace the kube-rs clients watch (the workload's only one).
pub const NAMESPACE: &str = "ns-0";

type Body = UnsyncBoxBody<Bytes, std::io::Error>;
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
    /// A write, until the world answers it.
    Write {
        sender: oneshot::Sender<Result<Response<Body>, Lost>>,
        write: Write,
    },
}

impl Waiting {
    /// The client dropped the request or the body: the stream is given up.
    fn is_dropped(&self) -> bool {
        match self {
            Waiting::Answer { sender, .. } | Waiting::Write { sender, .. } => sender.is_canceled(),
            Waiting::Streaming(body) => body.is_closed(),
        }
    }
}

/// What the service and the world exchange: the requests made, and who waits for what.
#[derive(Default)]
struct Exchange {
    next_id: RequestId,
    outbox: VecDeque<ClientMessage>,
    /// Writes for the world to commit, in order.
    writes: VecDeque<(RequestId, Write)>,
    /// Watcher steps and reconciles not yet handed to the world.
    steps: VecDeque<KubeStep>,
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
        !self.outbox.is_empty() || !self.writes.is_empty() || !self.steps.is_empty()
    }

    /// Something for the world: the world's poll of the runtime wakes.
    pub(super) fn push_step(&mut self, step: KubeStep) {
        self.steps.push_back(step);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn submit(&mut self, request: FaceRequest) -> Answer {
        self.next_id += 1;
        let id = self.next_id;
        let (answer, receiver) = oneshot::channel();
        let (watch, message) = match request {
            FaceRequest::List(options) => (false, ClientMessage::List { id, options }),
            FaceRequest::Watch(options) => (true, ClientMessage::Watch { id, options }),
            FaceRequest::Write(write) => {
                let waiting = Waiting::Write {
                    sender: answer,
                    write: write.clone(),
                };
                self.waiting.insert(id, waiting);
                self.writes.push_back((id, write));
                return self.woken(receiver);
            }
        };
        let waiting = Waiting::Answer {
            sender: answer,
            watch,
        };
        self.waiting.insert(id, waiting);
        self.outbox.push_back(message);
        self.woken(receiver)
    }

    /// Wakes the task waiting on new requests, and hands back the answer's receiver.
    fn woken(&mut self, receiver: Answer) -> Answer {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        receiver
    }
}

/// The `watcher::Config` of a process.
fn watcher_config(config: KubeConfig) -> watcher::Config {
    let mut watcher_config = watcher::Config::default();
    if config.page_size > 0 {
        watcher_config = watcher_config.page_size(config.page_size);
    }
    if config.streaming_lists {
        watcher_config = watcher_config.streaming_lists();
    }
    watcher_config
}

/// Hands each watcher step, as the store applied it, to the world (with what the store then
/// holds of it), and passes the step on.
fn recorder(
    exchange: &Arc<Mutex<Exchange>>,
    store: &Store<ConfigMap>,
) -> impl FnMut(Item) -> Item + use<> {
    let (exchange, store) = (Arc::clone(exchange), store.clone());
    move |item| {
        let event = StoreEvent::of(&item);
        let held = match &event {
            StoreEvent::InitDone => store_objects(&store),
            StoreEvent::Apply(object) => store_get(&store, &object.key).into_iter().collect(),
            _ => Vec::new(),
        };
        lock(&exchange).push_step(KubeStep::Store { event, held });
        item
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
    /// The watcher and store the world polls; `None` when a spawned controller drives them.
    stream: Option<Pin<Box<dyn Stream<Item = Item> + Send>>>,
    store: Store<ConfigMap>,
    exchange: Arc<Mutex<Exchange>>,
    /// The simulated time and the tokio instant the process started at.
    origin: (SimTime, tokio::time::Instant),
    /// The controller, if the process runs one.
    controller: Option<KubeController>,
}

impl KubeProcess {
    /// A process running kube-rs's watcher and store, started at `now`, its backoff's jitter
    /// drawn from `rng`.
    pub fn new(config: KubeConfig, now: SimTime, rng: RngStream) -> KubeProcess {
        let mut process = KubeProcess::start(now);
        let (store, writer) = reflector::store::<ConfigMap>();
        let stream = {
            let _context = process.runtime.enter();
            watcher(process.api(), watcher_config(config))
                .backoff(SeededBackoff::new(rng))
                .reflect(writer)
                .map(recorder(&process.exchange, &store))
                .boxed()
        };
        process.stream = Some(stream);
        process.store = store;
        process
    }

    /// A process running kube-rs's `Controller` with the sample reconciler (see
    /// [`super::controller`]): its trigger backoff's jitter drawn from `rng`, its workers'
    /// wake delays and reconcile times from `workers_rng`.
    pub fn controller(
        config: KubeConfig,
        setup: ControllerSetup,
        now: SimTime,
        rng: RngStream,
        workers_rng: RngStream,
    ) -> KubeProcess {
        let mut process = KubeProcess::start(now);
        let (store, writer) = reflector::store::<ConfigMap>();
        let exchange = Arc::clone(&process.exchange);
        let report = move |step| lock(&exchange).push_step(step);
        let controller = {
            let _context = process.runtime.enter();
            let events = watcher(process.api(), watcher_config(config))
                .reflect(writer)
                .map(recorder(&process.exchange, &store));
            let parts = controller::Parts {
                api: process.api(),
                store: store.clone(),
                events: events.boxed(),
                backoff: SeededBackoff::new(rng),
                rng: workers_rng,
                report: Box::new(report),
            };
            controller::spawn(parts, setup)
        };
        process.controller = Some(controller);
        process.store = store;
        process
    }

    /// The runtime, the exchange and the face's client, before kube-rs runs over them.
    fn start(now: SimTime) -> KubeProcess {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds");
        let started = {
            let _context = runtime.enter();
            tokio::time::Instant::now()
        };
        KubeProcess {
            runtime,
            stream: None,
            store: reflector::store::<ConfigMap>().0,
            exchange: Arc::new(Mutex::new(Exchange::default())),
            origin: (now, started),
            controller: None,
        }
    }

    /// A ConfigMap API in the workload's namespace, over a client whose `tower` service hands
    /// every request to the simulation through the face.
    fn api(&self) -> Api<ConfigMap> {
        let shared = Arc::clone(&self.exchange);
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
                let receiver = lock(&exchange).submit(request);
                match receiver.await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(lost)) => Err(lost.error()),
                    Err(oneshot::Canceled) => Err(Lost::Reset.error()),
                }
            }
        });
        Api::namespaced(Client::new(service, NAMESPACE), NAMESPACE)
    }

    fn sim_time(&self, instant: tokio::time::Instant) -> SimTime {
        let elapsed = instant.duration_since(self.origin.1).as_millis() as u64;
        SimTime(self.origin.0.as_millis() + elapsed)
    }

    /// Runs kube-rs until it has something for the world or until `limit`, whichever is
    /// first: the simulated time of its output, or `None` if it was idle until `limit`.
    /// Output not yet taken (requests, writes, steps) counts: it returns at once.
    pub fn run_until(&mut self, limit: SimTime) -> Option<SimTime> {
        let millis = limit.as_millis().saturating_sub(self.origin.0.as_millis());
        let deadline = self.origin.1 + Duration::from_millis(millis);
        let (stream, exchange) = (&mut self.stream, &self.exchange);
        let (output, at) = self.runtime.block_on(async {
            let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
            let output = poll_fn(|cx| {
                if let Some(stream) = stream.as_mut()
                    && let Poll::Ready(Some(_)) = stream.poll_next_unpin(cx)
                {
                    // The recorder has handed the step to the exchange.
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

    /// The writes kube-rs made since the last call, in order: the world answers each with
    /// [`KubeProcess::answer_write`].
    pub fn take_writes(&mut self) -> Vec<(RequestId, Write)> {
        lock(&self.exchange).writes.drain(..).collect()
    }

    /// The world's answer to write `id`.
    pub fn answer_write(&mut self, id: RequestId, result: &Result<Object, WriteError>) {
        if let Some(Waiting::Write { sender, write }) = lock(&self.exchange).waiting.remove(&id) {
            let _ = sender.send(Ok(full(face::write_response(&write, result))));
        }
    }

    /// The watcher steps (each already applied to the store) and reconciles since the last
    /// call, in order.
    pub fn take_steps(&mut self) -> Vec<KubeStep> {
        lock(&self.exchange).steps.drain(..).collect()
    }

    /// Whether the controller (if any) has no work: no reconcile running or waiting for a
    /// worker, and none failed since its last success (its requeue is still due).
    pub fn controller_idle(&self) -> bool {
        self.controller.as_ref().is_none_or(KubeController::is_idle)
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
                    Some(Waiting::Write { .. }) | None => {}
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
                Waiting::Answer { sender, .. } | Waiting::Write { sender, .. } => {
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
        store_objects(&self.store)
    }

    /// Requests the face could not read (a kube-rs request it does not model).
    pub fn unreadable_requests(&self) -> u64 {
        lock(&self.exchange).unreadable
    }
}
