//! The surface user code plugs into: an event handler that enqueues keys, a reconciler that
//! reads a [`Lister`] and writes through a [`Client`].

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::client::Indexer;
use crate::object::{Object, ObjectKey, ResourceVersion};
use crate::sim::SimTime;

/// The informer's notifications, as client-go's `ResourceEventHandler`: each method may add
/// keys to the controller's work queue. Every method defaults to doing nothing.
pub trait EventHandler {
    /// `OnAdd`.
    fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
        let _ = (object, queue);
    }

    /// `OnUpdate`.
    fn on_update(&mut self, old: &Object, new: &Object, queue: &mut Enqueue) {
        let _ = (old, new, queue);
    }

    /// `OnDelete`: the last state the informer knew, or only the key when a relist found the
    /// object gone (a `DeletedFinalStateUnknown` without a state).
    fn on_delete(&mut self, key: &ObjectKey, last_known: Option<&Object>, queue: &mut Enqueue) {
        let _ = (key, last_known, queue);
    }
}

/// One reconcile of one key, as a controller's `syncHandler`: read the lister, write through
/// the client. An error requeues the key rate limited; success forgets its failures.
pub trait Reconciler {
    /// Brings the world closer to what `key` asks for.
    fn reconcile(
        &mut self,
        key: &ObjectKey,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), ReconcileError>;
}

/// A whole controller: both halves, usually sharing state (expectations).
pub trait Controller: EventHandler + Reconciler {}

/// Makes the controller of one process incarnation (0 first, one more at each restart).
pub type ControllerFactory = dyn Fn(u32) -> Box<dyn Controller>;

impl<T: EventHandler + Reconciler> Controller for T {}

/// Keys an event handler adds to the work queue, and the time of the notification.
#[derive(Debug)]
pub struct Enqueue {
    now: SimTime,
    keys: Vec<ObjectKey>,
}

impl Enqueue {
    /// An empty batch at `now`.
    pub fn new(now: SimTime) -> Enqueue {
        Enqueue {
            now,
            keys: Vec::new(),
        }
    }

    /// `queue.Add(key)`.
    pub fn add(&mut self, key: ObjectKey) {
        self.keys.push(key);
    }

    /// The simulated time of the notification.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The keys added, in order.
    pub fn into_keys(self) -> Vec<ObjectKey> {
        self.keys
    }
}

/// A reconcile failed; the key is requeued rate limited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileError(pub String);

impl From<WriteError> for ReconcileError {
    fn from(error: WriteError) -> ReconcileError {
        ReconcileError(error.to_string())
    }
}

/// The read-only view of the informer's cache a reconcile gets (client-go's `Lister`). Every
/// object it hands out is remembered, so that a reconcile that changed one is caught
/// (client-go's cache mutation detector).
pub struct Lister<'a> {
    indexer: &'a Indexer,
    now: SimTime,
    handed_out: RefCell<BTreeMap<ObjectKey, Object>>,
    /// States written into the cache in place by a planted bug, applied after the reconcile.
    mutated: RefCell<Vec<Object>>,
}

impl<'a> Lister<'a> {
    /// A lister over `indexer` at `now`.
    pub fn new(indexer: &'a Indexer, now: SimTime) -> Lister<'a> {
        Lister {
            indexer,
            now,
            handed_out: RefCell::new(BTreeMap::new()),
            mutated: RefCell::new(Vec::new()),
        }
    }

    /// The cached object under `key` (client-go `Get`).
    pub fn get(&self, key: &ObjectKey) -> Option<&'a Object> {
        let object = self.indexer.get_by_key(key)?;
        self.remember(object);
        Some(object)
    }

    /// Every cached object, in key order (client-go `List`).
    pub fn list(&self) -> Vec<&'a Object> {
        let objects = self.indexer.list();
        objects.iter().for_each(|object| self.remember(object));
        objects
    }

    /// The cached objects whose label `name` is `value`, in key order.
    pub fn list_by_label(&self, name: &str, value: &str) -> Vec<&'a Object> {
        let objects: Vec<&'a Object> = self
            .indexer
            .list()
            .into_iter()
            .filter(|object| object.label(name) == Some(value))
            .collect();
        objects.iter().for_each(|object| self.remember(object));
        objects
    }

    /// The newest resource version the cache has applied, if any.
    pub fn resource_version(&self) -> Option<ResourceVersion> {
        self.indexer.last_store_sync_resource_version()
    }

    /// The simulated time of the reconcile.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// What the lister handed out, as it was then.
    pub fn handed_out(&self) -> BTreeMap<ObjectKey, Object> {
        self.handed_out.borrow().clone()
    }

    /// Takes the in-place writes a planted bug made into the cache.
    pub(crate) fn take_mutations(&self) -> Vec<Object> {
        std::mem::take(&mut self.mutated.borrow_mut())
    }

    /// Writes `object` into the cache in place: what `MutateListerObject` does, and what no
    /// correct controller may do.
    pub(crate) fn mutate_in_place(&self, object: Object) {
        self.mutated.borrow_mut().push(object);
    }

    fn remember(&self, object: &Object) {
        self.handed_out
            .borrow_mut()
            .entry(object.key.clone())
            .or_insert_with(|| object.clone());
    }
}

/// A write a controller asks of the apiserver, with its precondition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create `key` (it must not exist).
    Create {
        /// The key.
        key: ObjectKey,
        /// Labels.
        labels: BTreeMap<String, String>,
        /// Payload.
        value: u64,
    },
    /// Replace the object's labels and payload if it is still at its resource version.
    Update(Object),
    /// Delete `key` if it is still at `precondition`.
    Delete {
        /// The key.
        key: ObjectKey,
        /// The resource version it must still have.
        precondition: ResourceVersion,
    },
}

/// Why a write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// 409: the object changed since the resource version the write was based on.
    #[error("conflict: the object changed since it was read")]
    Conflict,
    /// 409: a create found the key taken.
    #[error("already exists")]
    AlreadyExists,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 500 / 429: the apiserver failed the request; nothing was written.
    #[error("the apiserver failed the request")]
    Unavailable,
}

/// Where a [`Client`]'s writes go: the simulation implements it (`world`), a unit test may
/// implement it with a map.
pub trait Writer {
    /// Runs one write and returns the object as stored (for a delete: the deleted state).
    fn write(&mut self, write: Write) -> Result<Object, WriteError>;
}

/// The client a reconcile writes through (client-go's typed client, simplified).
pub struct Client<'a> {
    writer: &'a mut dyn Writer,
}

impl<'a> Client<'a> {
    /// A client writing to `writer`.
    pub fn new(writer: &'a mut dyn Writer) -> Client<'a> {
        Client { writer }
    }

    /// Creates `key` with `labels` and `value`.
    pub fn create(
        &mut self,
        key: ObjectKey,
        labels: BTreeMap<String, String>,
        value: u64,
    ) -> Result<Object, WriteError> {
        self.writer.write(Write::Create { key, labels, value })
    }

    /// Replaces `object`'s labels and payload, if etcd still holds it at
    /// `object.resource_version`.
    pub fn update(&mut self, object: Object) -> Result<Object, WriteError> {
        self.writer.write(Write::Update(object))
    }

    /// Deletes `object`, if etcd still holds it at `object.resource_version`.
    pub fn delete(&mut self, object: &Object) -> Result<(), WriteError> {
        let write = Write::Delete {
            key: object.key.clone(),
            precondition: object.resource_version,
        };
        self.writer.write(write).map(|_| ())
    }
}

/// What a user invariant reads: etcd's objects as committed now, and the controller's cache.
pub struct ClusterState<'a> {
    etcd: Vec<&'a Object>,
    cache: &'a Indexer,
}

impl<'a> ClusterState<'a> {
    /// etcd's objects `etcd` (in key order) and the informer's cache `cache`.
    pub fn new(etcd: Vec<&'a Object>, cache: &'a Indexer) -> ClusterState<'a> {
        ClusterState { etcd, cache }
    }

    /// Every object in etcd now, in key order.
    pub fn etcd(&self) -> &[&'a Object] {
        &self.etcd
    }

    /// Every object in the controller's informer cache, in key order.
    pub fn cache(&self) -> Vec<&'a Object> {
        self.cache.list()
    }
}

/// When a user invariant is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// After every reconcile: a safety property.
    Always,
    /// Once the run has settled (faults healed, informer and controller idle): a
    /// level-triggered property.
    Settled,
}

/// The signature of a user invariant: `Err` says what is wrong.
pub type InvariantFn = dyn Fn(&ClusterState<'_>) -> Result<(), String>;

/// An invariant the user registers over etcd's and the cache's state.
#[derive(Clone)]
pub struct UserInvariant {
    /// Its name, shown in the violation.
    pub name: String,
    /// When it is checked.
    pub when: When,
    /// The check.
    pub check: std::rc::Rc<InvariantFn>,
}

impl std::fmt::Debug for UserInvariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserInvariant({}, {:?})", self.name, self.when)
    }
}
