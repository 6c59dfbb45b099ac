//! What the world writes into the trace: one typed event per step, by one actor. No prose and
//! no `Debug` strings reach the hashed trace; the readable rendering (`Display`, in client-go's
//! words, the golden traces' style) is derived from the typed event.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::api::{ClientMessage, RequestError, RequestId, ServerMessage, WatchEvent};
use crate::client::{Delta, DeltaObject, Notification};
use crate::controller::Finished;
use crate::etcd::{EtcdError, Revision, WatchId, WatchResponse};
use crate::object::{Object, ObjectKey, ResourceVersion};

use super::faults::TimedFault;
use super::writer::{CommitOutcome, PendingWrite};

/// Who did what a step records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    Writer(usize),
    Compactor,
    Etcd,
    Watcher(usize),
    Apiserver(usize),
    Client(usize),
    Faults,
    World,
    Controller(usize),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Writer(index) => write!(f, "writer-{index}"),
            Actor::Compactor => f.write_str("compactor"),
            Actor::Etcd => f.write_str("etcd"),
            Actor::Watcher(index) => write!(f, "watcher-{index}"),
            Actor::Apiserver(index) => write!(f, "apiserver-{index}"),
            Actor::Client(index) => write!(f, "client-{index}"),
            Actor::Faults => f.write_str("faults"),
            Actor::World => f.write_str("world"),
            Actor::Controller(worker) => write!(f, "worker-{worker}"),
        }
    }
}

impl Serialize for Actor {
    /// Its name in a readable trace (`client-3`); a tag and an index in the hashed encoding.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.collect_str(self);
        }
        let (tag, index): (u8, usize) = match *self {
            Actor::Writer(index) => (0, index),
            Actor::Compactor => (1, 0),
            Actor::Etcd => (2, 0),
            Actor::Watcher(index) => (3, index),
            Actor::Apiserver(index) => (4, index),
            Actor::Client(index) => (5, index),
            Actor::Faults => (6, 0),
            Actor::World => (7, 0),
            Actor::Controller(worker) => (8, worker),
        };
        (tag, index as u64).serialize(serializer)
    }
}

/// One step of the trace.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TraceEvent<'a> {
    /// A writer read the key it will write.
    Read {
        key: &'a str,
        mod_revision: Revision,
    },
    /// A writer's commit and what became of it.
    Commit {
        write: &'a PendingWrite,
        outcome: &'a CommitOutcome,
    },
    /// The compactor's tick: `None` on the first, which only bumps.
    Compact {
        revision: Revision,
        outcome: Option<Result<Revision, EtcdError>>,
    },
    /// etcd's progress-notify timer.
    ProgressTick { revision: Revision },
    /// A raw watcher opened a watch.
    Watch {
        watch_id: WatchId,
        start_revision: Revision,
    },
    /// A raw watcher stopped reading.
    Stall { watch_id: WatchId },
    /// A raw watcher reads again.
    Resume { watch_id: WatchId },
    /// A raw watcher's connection broke.
    Disconnect { watch_id: WatchId },
    /// A raw watcher asked for progress.
    ProgressRequest { watch_id: WatchId },
    /// A watch message reached a raw watcher.
    Received { response: &'a WatchResponse },
    /// A watch message arrived for a watch the watcher no longer has.
    Lost { watch_id: WatchId },
    /// The fault phase ended.
    Heal,
    /// Every part settled.
    Settled,
    /// An apiserver's timer fired.
    ApiserverTimer,
    /// A message of its etcd watch reached an apiserver's cacher.
    ApiserverEtcd { response: &'a WatchResponse },
    /// A client sent a request.
    Request { message: &'a ClientMessage },
    /// An answer reached a client.
    Answer { answer: Answer<'a> },
    /// A client's informer popped and processed one item.
    Pop {
        key: Option<&'a ObjectKey>,
        deltas: TracedDeltas<'a>,
    },
    /// A handler was notified.
    Handler {
        handler: usize,
        notification: &'a Notification,
    },
    /// A client's reflector timer fired.
    ReflectorTimer,
    /// A handler registered on a running informer, with its initial adds.
    LateHandler { handler: usize, initial_adds: usize },
    /// A planned fault struck.
    Fault { fault: &'a TimedFault },
    /// etcd held the workload's initial objects before anything started.
    Populated { objects: u32, revision: Revision },
    /// HTTP/2's health check closed the client's silent connection.
    HealthCheckClose,
    /// A controller worker reconciled the key it took; `error` if it failed.
    Reconcile {
        key: &'a ObjectKey,
        error: Option<&'a str>,
    },
    /// A controller worker is done with its key.
    Finish {
        key: &'a ObjectKey,
        finished: Finished,
    },
    /// The apiserver failed a controller write (500/429) without writing.
    WriteRefused { key: &'a str },
    /// A kube-rs client's watcher yielded a step, already applied to its reflector store.
    #[cfg(feature = "kube")]
    KubeStore {
        event: &'a crate::kube_rs::StoreEvent,
    },
}

/// A server message as the trace keeps it: a list page by its size, not its items.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Answer<'a> {
    /// A list page.
    List {
        id: RequestId,
        items: usize,
        resource_version: ResourceVersion,
        more: bool,
    },
    /// A failed list.
    ListFailed {
        id: RequestId,
        error: &'a RequestError,
    },
    /// A refused watch.
    WatchRejected {
        id: RequestId,
        error: &'a RequestError,
    },
    /// One watch event.
    Event {
        id: RequestId,
        event: &'a WatchEvent,
    },
    /// A cleanly closed watch.
    Closed { id: RequestId },
}

impl<'a> Answer<'a> {
    pub(crate) fn of(message: &'a ServerMessage) -> Answer<'a> {
        match message {
            ServerMessage::List {
                id,
                result: Ok(page),
            } => Answer::List {
                id: *id,
                items: page.items.len(),
                resource_version: page.resource_version,
                more: page.continue_token.is_some(),
            },
            ServerMessage::List {
                id,
                result: Err(error),
            } => Answer::ListFailed { id: *id, error },
            ServerMessage::WatchRejected { id, error } => Answer::WatchRejected { id: *id, error },
            ServerMessage::WatchEvent { id, event } => Answer::Event { id: *id, event },
            ServerMessage::WatchClosed { id } => Answer::Closed { id: *id },
        }
    }
}

/// One delta as the trace keeps it: a whole-store delta by its size.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum TracedDelta<'a> {
    Added(&'a Object),
    Updated(&'a Object),
    Replaced(&'a Object),
    Sync(&'a Object),
    Deleted(&'a DeltaObject),
    ReplacedAll {
        objects: usize,
        resource_version: ResourceVersion,
    },
    SyncAll,
    Bookmark(ResourceVersion),
}

impl<'a> TracedDelta<'a> {
    fn of(delta: &'a Delta) -> TracedDelta<'a> {
        match delta {
            Delta::Added(object) => TracedDelta::Added(object),
            Delta::Updated(object) => TracedDelta::Updated(object),
            Delta::Replaced(object) => TracedDelta::Replaced(object),
            Delta::Sync(object) => TracedDelta::Sync(object),
            Delta::Deleted(object) => TracedDelta::Deleted(object),
            Delta::ReplacedAll(info) => TracedDelta::ReplacedAll {
                objects: info.objects.len(),
                resource_version: info.resource_version,
            },
            Delta::SyncAll => TracedDelta::SyncAll,
            Delta::Bookmark(resource_version) => TracedDelta::Bookmark(*resource_version),
        }
    }
}

/// The deltas of one pop, written as [`TracedDelta`]s without copying them.
pub(crate) struct TracedDeltas<'a>(pub(crate) &'a [Delta]);

impl Serialize for TracedDeltas<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(TracedDelta::of))
    }
}

impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::List {
                items,
                resource_version,
                more,
                ..
            } => {
                let more = if *more { ", more" } else { "" };
                write!(
                    f,
                    "LIST -> 200 OK, {items} items, rv={resource_version}{more}"
                )
            }
            Answer::ListFailed { error, .. } => write!(f, "LIST -> {error}"),
            Answer::WatchRejected { id, error } => write!(f, "WATCH #{id} -> {error}"),
            Answer::Event { id, event } => write!(f, "#{id} {event}"),
            Answer::Closed { id } => write!(f, "#{id} closed"),
        }
    }
}

impl fmt::Display for TracedDeltas<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (index, delta) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            match delta {
                Delta::ReplacedAll(info) => write!(
                    f,
                    "ReplacedAll(\"{}\", {} objects)",
                    info.resource_version,
                    info.objects.len()
                )?,
                delta => write!(f, "{delta}")?,
            }
        }
        f.write_str("]")
    }
}

impl fmt::Display for TraceEvent<'_> {
    /// What happened, in client-go's and etcd's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Read { key, mod_revision } => {
                write!(f, "GET {key} (mod_revision {mod_revision})")
            }
            TraceEvent::Commit { write, outcome } => write!(f, "{write} -> {outcome}"),
            TraceEvent::Compact {
                revision,
                outcome: None,
            } => write!(f, "compactor's first tick, bumps at rev {revision}"),
            TraceEvent::Compact {
                revision,
                outcome: Some(Ok(_)),
            } => write!(f, "compact at rev {revision}"),
            TraceEvent::Compact {
                revision,
                outcome: Some(Err(error)),
            } => write!(f, "compact at rev {revision} -> {error}"),
            TraceEvent::ProgressTick { revision } => {
                write!(f, "progress notifications at rev {revision}")
            }
            TraceEvent::Watch {
                watch_id,
                start_revision,
            } => write!(f, "WATCH {watch_id} from rev {start_revision}"),
            TraceEvent::Stall { watch_id } => write!(f, "stops reading watch {watch_id}"),
            TraceEvent::Resume { watch_id } => write!(f, "reads watch {watch_id} again"),
            TraceEvent::Disconnect { watch_id } => {
                write!(f, "connection of watch {watch_id} breaks")
            }
            TraceEvent::ProgressRequest { watch_id } => {
                write!(f, "RequestProgress on watch {watch_id}")
            }
            TraceEvent::Received { response } | TraceEvent::ApiserverEtcd { response } => {
                write!(f, "{response}")
            }
            TraceEvent::Lost { watch_id } => write!(f, "message of gone watch {watch_id} lost"),
            TraceEvent::Heal => f.write_str("faults heal, writes stop"),
            TraceEvent::Settled => f.write_str("settled"),
            TraceEvent::ApiserverTimer => f.write_str("timer"),
            TraceEvent::Request { message } => write!(f, "{message}"),
            TraceEvent::Answer { answer } => write!(f, "{answer}"),
            TraceEvent::Pop { key, deltas } => match key {
                Some(key) => write!(f, "Pop {key} {deltas}"),
                None => write!(f, "Pop {deltas}"),
            },
            TraceEvent::Handler {
                handler,
                notification,
            } => write!(f, "handler-{handler} {notification}"),
            TraceEvent::ReflectorTimer => f.write_str("reflector timer"),
            TraceEvent::HealthCheckClose => {
                f.write_str("HTTP/2 health check: PING unanswered, connection closed")
            }
            TraceEvent::LateHandler {
                handler,
                initial_adds,
            } => write!(
                f,
                "AddEventHandler(handler-{handler}) on a running informer, {initial_adds} initial adds"
            ),
            TraceEvent::Fault { fault } => write!(f, "{}", fault.fault),
            TraceEvent::Populated { objects, revision } => {
                write!(f, "populated {objects} objects, at revision {revision}")
            }
            TraceEvent::Reconcile { key, error: None } => write!(f, "reconcile {key} -> ok"),
            TraceEvent::Reconcile {
                key,
                error: Some(error),
            } => write!(f, "reconcile {key} -> {error}"),
            TraceEvent::Finish { key, finished } => match finished {
                Finished::Forgotten => write!(f, "Done {key}, Forget"),
                Finished::Requeued(delay) => {
                    write!(
                        f,
                        "Done {key}, AddRateLimited after {}ms",
                        delay.as_millis()
                    )
                }
                Finished::Dropped => write!(f, "Done {key}, dropped"),
            },
            TraceEvent::WriteRefused { key } => write!(f, "write of {key} -> 500"),
            #[cfg(feature = "kube")]
            TraceEvent::KubeStore { event } => write!(f, "kube-rs watcher {event}"),
        }
    }
}
