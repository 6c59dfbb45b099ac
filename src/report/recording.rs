//! A run recorded for people: every step as an [`Entry`] on the lane of the part that took it,
//! the messages between parts as links from sender to receiver, and each object's history in
//! every place that holds it. Built by watching the typed events as the world records them
//! (a [`StepObserver`]), never by reading a trace file back.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

use crate::api::{ClientMessage, RequestId, WatchEvent};
use crate::client::{Delta, DeltaObject, Notification};
use crate::etcd::{EventType, Revision, WatchResponse, WatchResponseKind};
use crate::object::{Object, ObjectKey};
use crate::shrink::Case;
use crate::sim::SimTime;
use crate::world::writer::{CommitOutcome, Intent, RESOURCE_PREFIX};
use crate::world::{Actor, Answer, RunOutcome, StepObserver, TraceEvent, World};

/// A part of the cluster that takes steps: a lane of the sequence diagram, a track of the
/// Perfetto export. A client is split into the parts client-go has: its reflector, its
/// informer (the FIFO's pops into the indexer) and each handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// A workload writer.
    Writer(usize),
    /// kube-apiserver's compactor.
    Compactor,
    /// etcd.
    Etcd,
    /// A raw etcd watcher.
    Watcher(usize),
    /// An apiserver (its cacher and watch cache).
    Apiserver(usize),
    /// One part of an informer client.
    Client(usize, Part),
    /// The fault plan.
    Faults,
    /// The world (heal, settle).
    World,
    /// A controller worker.
    Worker(usize),
}

/// The parts of an informer client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The reflector: requests, answers, its timer.
    Reflector,
    /// The informer: pops from the FIFO into the indexer.
    Indexer,
    /// A handler.
    Handler(usize),
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lane::Writer(index) => write!(f, "writer-{index}"),
            Lane::Worker(index) => write!(f, "worker-{index}"),
            Lane::Compactor => f.write_str("compactor"),
            Lane::Etcd => f.write_str("etcd"),
            Lane::Watcher(index) => write!(f, "watcher-{index}"),
            Lane::Apiserver(index) => write!(f, "apiserver-{index}"),
            Lane::Client(client, Part::Reflector) => write!(f, "client-{client} reflector"),
            Lane::Client(client, Part::Indexer) => write!(f, "client-{client} indexer"),
            Lane::Client(client, Part::Handler(handler)) => {
                write!(f, "client-{client} handler-{handler}")
            }
            Lane::Faults => f.write_str("faults"),
            Lane::World => f.write_str("world"),
        }
    }
}

impl Lane {
    /// The process the lane belongs to: a client's parts share one.
    pub fn component(self) -> Lane {
        match self {
            Lane::Client(client, _) => Lane::Client(client, Part::Reflector),
            lane => lane,
        }
    }

    /// The name of the process the lane belongs to: `client-0` for each of its parts.
    pub fn component_name(self) -> String {
        match self {
            Lane::Client(client, _) => format!("client-{client}"),
            lane => lane.to_string(),
        }
    }
}

/// What an entry is, for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// It carries object states (writes, watch events, pops, handler calls).
    Data,
    /// It changes how a part talks to another: requests, lists, closes, errors, restarts.
    Control,
    /// A planned fault.
    Fault,
    /// Timers, reads, progress: true but rarely the story.
    Quiet,
}

/// One entry of a recording: a trace step, or something the trace leaves implicit (a request
/// reaching its apiserver, a commit applied by etcd).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The trace step; for an implicit entry, the steps recorded before it.
    pub step: u64,
    /// Whether it is a line of the trace (not an implicit entry).
    pub recorded: bool,
    /// Simulated time.
    pub time_ms: u64,
    /// Who.
    pub lane: Lane,
    /// What happened, in client-go's and etcd's words.
    pub text: String,
    /// The objects it touches.
    pub keys: Vec<ObjectKey>,
    /// What kind of entry it is.
    pub kind: Kind,
    /// The entry that sent the message this entry receives, if it is a receipt.
    pub from: Option<usize>,
}

/// Where an object's state is held: a column of its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// etcd's committed history.
    Etcd,
    /// An apiserver's watch cache, as its etcd watch fed it.
    Cache(usize),
    /// A client's indexer, as pops applied.
    Indexer(usize),
    /// What a client's handler was told.
    Handler(usize, usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Etcd => f.write_str("etcd"),
            Place::Cache(apiserver) => write!(f, "apiserver-{apiserver} cache"),
            Place::Indexer(client) => write!(f, "client-{client} indexer"),
            Place::Handler(client, handler) => write!(f, "client-{client} handler-{handler}"),
        }
    }
}

/// One change of an object in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The entry it happened at.
    pub entry: usize,
    /// What, briefly: `PUT @4`, `Deleted @7`, `OnUpdate @2 -> @4`.
    pub text: String,
}

/// A recorded run.
#[derive(Default)]
pub struct Recording {
    /// Every entry, in the order it happened.
    pub entries: Vec<Entry>,
    /// Each object's changes, per place.
    pub histories: BTreeMap<ObjectKey, BTreeMap<Place, Vec<Change>>>,
    /// Each client's request entries, by request id (ids restart with a restarted process).
    requests: BTreeMap<(usize, RequestId), usize>,
    /// Each client's request arrivals at an apiserver: the arrival entry and the apiserver.
    arrivals: BTreeMap<(usize, RequestId), (usize, usize)>,
    /// The etcd entry of each committed revision.
    commits: BTreeMap<Revision, usize>,
    /// The entry at which each apiserver's cache took each revision.
    cached: BTreeMap<(usize, Revision), usize>,
    /// The latest entry of each lane.
    latest: BTreeMap<Lane, usize>,
    /// The keys each client's indexer holds, as pops applied them.
    indexed: BTreeMap<usize, BTreeSet<ObjectKey>>,
}

/// A run with its recording.
pub struct Recorded {
    /// The case that was run.
    pub case: Case,
    /// Its outcome.
    pub outcome: RunOutcome,
    /// What it did, step by step.
    pub recording: Recording,
}

/// Runs `case` once more, recording it.
pub fn record(case: &Case) -> Recorded {
    let recording = Rc::new(RefCell::new(Recording::default()));
    let outcome = World::with_plan(
        case.scenario.clone(),
        case.seed,
        case.plan.clone(),
        crate::trace::Trace::default(),
    )
    .observed_by(recording.clone())
    .run();
    let recording = Rc::try_unwrap(recording)
        .map_err(|_| ())
        .expect("the world is gone after its run")
        .into_inner();
    Recorded {
        case: case.clone(),
        outcome,
        recording,
    }
}

/// The object key of an etcd key of the simulated resource.
fn object_key(etcd_key: &str) -> ObjectKey {
    ObjectKey::new(etcd_key.strip_prefix(RESOURCE_PREFIX).unwrap_or(etcd_key))
}

impl Recording {
    /// The last entry recorded at or before the violation found after `steps` steps.
    pub fn violation_entry(&self, steps: u64) -> Option<usize> {
        self.entries.iter().rposition(|entry| entry.step < steps)
    }

    fn push(&mut self, entry: Entry) -> usize {
        let index = self.entries.len();
        self.latest.insert(entry.lane, index);
        self.entries.push(entry);
        index
    }

    fn change(&mut self, key: &ObjectKey, place: Place, entry: usize, text: String) {
        self.histories
            .entry(key.clone())
            .or_default()
            .entry(place)
            .or_default()
            .push(Change { entry, text });
    }

    /// The entry that sent an etcd watch response: the commit of its first event's revision,
    /// or etcd's latest entry.
    fn etcd_sender(&self, response: &WatchResponse) -> Option<usize> {
        let first = match &response.kind {
            WatchResponseKind::Events(events) => events.first().map(|event| event.kv.mod_revision),
            _ => None,
        };
        first
            .and_then(|revision| self.commits.get(&revision).copied())
            .or_else(|| self.latest.get(&Lane::Etcd).copied())
    }

    /// The entry that sent an answer to client `client`: the arrival of its request for a
    /// list or a refusal; for a watch event, the cache's receipt of that revision when there
    /// is one; otherwise the apiserver's latest entry.
    fn answer_sender(&self, client: usize, answer: &Answer<'_>) -> Option<usize> {
        let id = match answer {
            Answer::List { id, .. }
            | Answer::ListFailed { id, .. }
            | Answer::WatchRejected { id, .. }
            | Answer::Event { id, .. }
            | Answer::Closed { id } => *id,
        };
        let (arrival, apiserver) = *self.arrivals.get(&(client, id))?;
        match answer {
            Answer::List { .. } | Answer::ListFailed { .. } | Answer::WatchRejected { .. } => {
                Some(arrival)
            }
            Answer::Event { event, .. } => match event_object(event) {
                Some(object) => self
                    .cached
                    .get(&(apiserver, object.resource_version))
                    .copied()
                    .filter(|cached| *cached > arrival)
                    .or(Some(arrival)),
                None => self.latest.get(&Lane::Apiserver(apiserver)).copied(),
            },
            Answer::Closed { .. } => self.latest.get(&Lane::Apiserver(apiserver)).copied(),
        }
    }

    fn etcd_response(&mut self, entry: usize, lane: Lane, response: &WatchResponse) {
        let WatchResponseKind::Events(events) = &response.kind else {
            return;
        };
        for event in events {
            let key = object_key(&event.kv.key);
            self.entries[entry].keys.push(key.clone());
            if let Lane::Apiserver(apiserver) = lane {
                self.cached
                    .insert((apiserver, event.kv.mod_revision), entry);
                let verb = match event.event_type {
                    EventType::Put => "PUT",
                    EventType::Delete => "DELETE",
                };
                let text = format!("{verb} @{}", event.kv.mod_revision);
                self.change(&key, Place::Cache(apiserver), entry, text);
            }
        }
    }

    fn commit(&mut self, entry: usize, step: u64, at: SimTime, event: &TraceEvent<'_>) {
        let TraceEvent::Commit { write, outcome } = event else {
            return;
        };
        let key = object_key(&write.key);
        self.entries[entry].keys.push(key.clone());
        let CommitOutcome::Committed(revision) = outcome else {
            return;
        };
        let verb = match write.intent {
            Intent::Create { .. } => "CREATE",
            Intent::Update { .. } => "UPDATE",
            Intent::Delete => "DELETE",
        };
        let applied = self.push(Entry {
            step,
            recorded: false,
            time_ms: at.as_millis(),
            lane: Lane::Etcd,
            text: format!("rev {revision}: {verb} {key}"),
            keys: vec![key.clone()],
            kind: Kind::Data,
            from: Some(entry),
        });
        self.commits.insert(*revision, applied);
        self.change(&key, Place::Etcd, applied, format!("{verb} @{revision}"));
    }

    fn pop(&mut self, entry: usize, client: usize, deltas: &[Delta]) {
        for delta in deltas {
            let (object, text) = match delta {
                Delta::Added(object) => (object, "Added"),
                Delta::Updated(object) => (object, "Updated"),
                Delta::Replaced(object) => (object, "Replaced"),
                Delta::Sync(object) => (object, "Sync"),
                Delta::Deleted(deleted) => {
                    let key = deleted.key().clone();
                    self.indexed.entry(client).or_default().remove(&key);
                    let text = match deleted {
                        DeltaObject::Object(object) => {
                            format!("Deleted @{}", object.resource_version)
                        }
                        DeltaObject::Tombstone(tombstone) => match &tombstone.obj {
                            Some(object) => {
                                format!("Deleted (tombstone @{})", object.resource_version)
                            }
                            None => "Deleted (tombstone)".to_owned(),
                        },
                    };
                    self.touch(entry, &key);
                    self.change(&key, Place::Indexer(client), entry, text);
                    continue;
                }
                Delta::ReplacedAll(info) => {
                    let listed: BTreeSet<ObjectKey> = info
                        .objects
                        .iter()
                        .map(|object| object.key.clone())
                        .collect();
                    let held = self.indexed.remove(&client).unwrap_or_default();
                    for gone in held.difference(&listed) {
                        self.touch(entry, gone);
                        let text = format!("removed by Replace at {}", info.resource_version);
                        self.change(gone, Place::Indexer(client), entry, text);
                    }
                    for object in &info.objects {
                        self.stored(entry, client, object, "Replaced");
                    }
                    continue;
                }
                Delta::SyncAll | Delta::Bookmark(_) => continue,
            };
            self.stored(entry, client, object, text);
        }
    }

    fn stored(&mut self, entry: usize, client: usize, object: &Object, verb: &str) {
        self.indexed
            .entry(client)
            .or_default()
            .insert(object.key.clone());
        self.touch(entry, &object.key);
        let text = format!("{verb} @{}", object.resource_version);
        self.change(&object.key, Place::Indexer(client), entry, text);
    }

    fn touch(&mut self, entry: usize, key: &ObjectKey) {
        let keys = &mut self.entries[entry].keys;
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    fn handled(&mut self, entry: usize, place: Place, notification: &Notification) {
        let (key, text) = match notification {
            Notification::Add { obj, .. } => (&obj.key, format!("OnAdd @{}", obj.resource_version)),
            Notification::Update { old, new } => (
                &new.key,
                format!(
                    "OnUpdate @{} -> @{}",
                    old.resource_version, new.resource_version
                ),
            ),
            Notification::Delete(DeltaObject::Object(object)) => (
                &object.key,
                format!("OnDelete @{}", object.resource_version),
            ),
            Notification::Delete(DeltaObject::Tombstone(tombstone)) => {
                (&tombstone.key, "OnDelete (tombstone)".to_owned())
            }
        };
        let key = key.clone();
        self.touch(entry, &key);
        self.change(&key, place, entry, text);
    }
}

/// The request a client message belongs to.
fn request_id(message: &ClientMessage) -> RequestId {
    match message {
        ClientMessage::List { id, .. }
        | ClientMessage::Watch { id, .. }
        | ClientMessage::StopWatch { id } => *id,
    }
}

/// The object a watch event carries, if any.
fn event_object(event: &WatchEvent) -> Option<&Object> {
    match event {
        WatchEvent::Added(object) | WatchEvent::Modified(object) | WatchEvent::Deleted(object) => {
            Some(object)
        }
        WatchEvent::Bookmark { .. } | WatchEvent::Error(_) => None,
    }
}

/// The lane and kind of a step.
fn classify(actor: Actor, event: &TraceEvent<'_>) -> (Lane, Kind) {
    let client_part = |part| match actor {
        Actor::Client(client) => Lane::Client(client, part),
        _ => Lane::World,
    };
    let lane = match actor {
        Actor::Writer(index) => Lane::Writer(index),
        Actor::Compactor => Lane::Compactor,
        Actor::Etcd => Lane::Etcd,
        Actor::Watcher(index) => Lane::Watcher(index),
        Actor::Apiserver(index) => Lane::Apiserver(index),
        Actor::Faults => Lane::Faults,
        Actor::World => Lane::World,
        Actor::Controller(worker) => Lane::Worker(worker),
        Actor::Client(_) => match event {
            TraceEvent::Pop { .. } => client_part(Part::Indexer),
            TraceEvent::Handler { handler, .. } => client_part(Part::Handler(*handler)),
            _ => client_part(Part::Reflector),
        },
    };
    let kind = match event {
        TraceEvent::Commit { .. } | TraceEvent::Pop { .. } | TraceEvent::Handler { .. } => {
            Kind::Data
        }
        TraceEvent::Received { response } | TraceEvent::ApiserverEtcd { response } => {
            match response.kind {
                WatchResponseKind::Events(_) => Kind::Data,
                WatchResponseKind::Progress => Kind::Quiet,
                _ => Kind::Control,
            }
        }
        TraceEvent::Answer {
            answer: Answer::Event { event, .. },
        } => match event {
            WatchEvent::Bookmark { .. } => Kind::Quiet,
            WatchEvent::Error(_) => Kind::Control,
            _ => Kind::Data,
        },
        TraceEvent::Fault { .. } => Kind::Fault,
        TraceEvent::Read { .. }
        | TraceEvent::ProgressTick { .. }
        | TraceEvent::ApiserverTimer
        | TraceEvent::ReflectorTimer
        | TraceEvent::ProgressRequest { .. } => Kind::Quiet,
        _ => Kind::Control,
    };
    (lane, kind)
}

impl StepObserver for Recording {
    fn step(&mut self, step: u64, at: SimTime, actor: Actor, event: &TraceEvent<'_>) {
        let (lane, kind) = classify(actor, event);
        let from = match (actor, event) {
            (_, TraceEvent::Received { response } | TraceEvent::ApiserverEtcd { response }) => {
                self.etcd_sender(response)
            }
            (Actor::Client(client), TraceEvent::Answer { answer }) => {
                self.answer_sender(client, answer)
            }
            _ => None,
        };
        let text = match event {
            // The lane already names the handler.
            TraceEvent::Handler { notification, .. } => notification.to_string(),
            event => event.to_string(),
        };
        let entry = self.push(Entry {
            step,
            recorded: true,
            time_ms: at.as_millis(),
            lane,
            text,
            keys: Vec::new(),
            kind,
            from,
        });
        match (actor, event) {
            (_, TraceEvent::Read { key, .. }) => self.touch(entry, &object_key(key)),
            (_, TraceEvent::Commit { .. }) => self.commit(entry, step, at, event),
            (_, TraceEvent::Received { response } | TraceEvent::ApiserverEtcd { response }) => {
                self.etcd_response(entry, lane, response)
            }
            (Actor::Client(client), TraceEvent::Request { message }) => {
                let id = request_id(message);
                self.requests.insert((client, id), entry);
                self.arrivals.remove(&(client, id));
            }
            (Actor::Client(_), TraceEvent::Answer { answer }) => {
                if let Answer::Event { event, .. } = answer
                    && let Some(object) = event_object(event)
                {
                    self.touch(entry, &object.key);
                }
            }
            (Actor::Client(client), TraceEvent::Pop { key, deltas }) => {
                if let Some(key) = key {
                    self.touch(entry, key);
                }
                self.pop(entry, client, deltas.0);
            }
            (
                Actor::Client(client),
                TraceEvent::Handler {
                    handler,
                    notification,
                },
            ) => self.handled(entry, Place::Handler(client, *handler), notification),
            _ => {}
        }
    }

    fn arrived(
        &mut self,
        step: u64,
        at: SimTime,
        client: usize,
        apiserver: usize,
        message: &ClientMessage,
    ) {
        let id = request_id(message);
        let from = self.requests.get(&(client, id)).copied();
        let entry = self.push(Entry {
            step,
            recorded: false,
            time_ms: at.as_millis(),
            lane: Lane::Apiserver(apiserver),
            text: format!("receives client-{client}'s {message}"),
            keys: Vec::new(),
            kind: Kind::Control,
            from,
        });
        self.arrivals.insert((client, id), (entry, apiserver));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn a_recorded_run_is_the_same_run_and_links_each_receipt_to_an_earlier_sender() {
        let case = Case::of_seed(Scenario::load("informer").expect("library scenario"), 3);
        let recorded = record(&case);
        assert_eq!(recorded.outcome.trace_hash, case.run().trace_hash);
        let entries = &recorded.recording.entries;
        let steps = entries.iter().filter(|entry| entry.recorded).count() as u64;
        assert_eq!(steps, recorded.outcome.steps, "an entry per step");
        let receipts = entries
            .iter()
            .enumerate()
            .filter_map(|(at, e)| Some((at, e.from?)));
        let mut linked = 0;
        for (at, from) in receipts {
            assert!(from < at, "entry {at} received from a later entry {from}");
            linked += 1;
        }
        assert!(linked > 100, "messages link senders to receivers: {linked}");
        let histories = &recorded.recording.histories;
        assert!(
            histories.values().any(|places| places.len() >= 4),
            "etcd, cache, indexer, handler"
        );
    }
}
