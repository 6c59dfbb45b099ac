//! Controllers under test: the user's event handler and reconciler, run by a controller
//! runtime (a rate-limited work queue and N workers) inside the simulation, and the sample
//! ReplicaSet-like controller with client-go's expectations.
//!
//! A controller is two traits: an [`EventHandler`] turns the informer's notifications into
//! work-queue keys, a [`Reconciler`] reconciles one key, reading a [`Lister`] (the informer's
//! cache, read-only) and writing through a [`Client`] (to etcd, with resource-version
//! preconditions). The world feeds the runtime the notifications of one client's informer,
//! interleaves the workers with everything else, and lets each reconcile take simulated
//! time, so a lister that lags the controller's own writes, conflicts and requeues all happen
//! as on a real cluster. To run your own controller over many seeds, see
//! [`testing`](crate::testing).
//!
//! ```
//! use std::collections::BTreeMap;
//! use informer_sim::controller::{
//!     Client, EventHandler, Enqueue, Lister, ReconcileError, Reconciler, Write, WriteError,
//!     Writer,
//! };
//! use informer_sim::object::{Object, ObjectKey};
//! use informer_sim::sim::SimTime;
//!
//! /// Labels every object it is told about with `seen=yes`.
//! struct Labeler;
//!
//! impl EventHandler for Labeler {
//!     fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
//!         queue.add(object.key.clone());
//!     }
//! }
//!
//! impl Reconciler for Labeler {
//!     fn reconcile(
//!         &mut self,
//!         key: &ObjectKey,
//!         lister: &Lister<'_>,
//!         client: &mut Client<'_>,
//!     ) -> Result<(), ReconcileError> {
//!         let Some(object) = lister.get(key) else { return Ok(()) };
//!         if object.label("seen").is_some() {
//!             return Ok(());
//!         }
//!         let mut labels = (*object.labels).clone();
//!         labels.insert("seen".into(), "yes".into());
//!         client.update(Object { labels: labels.into(), ..object.clone() })?;
//!         Ok(())
//!     }
//! }
//!
//! // A writer that records what it is asked and fails every update with a conflict.
//! struct Conflicts(Vec<Write>);
//! impl Writer for Conflicts {
//!     fn write(&mut self, write: Write) -> Result<Object, WriteError> {
//!         self.0.push(write);
//!         Err(WriteError::Conflict)
//!     }
//! }
//!
//! let mut indexer = informer_sim::client::Indexer::new(informer_sim::bug::Bugs::NONE);
//! indexer.add(Object::bare("ns/a", 5));
//! let lister = Lister::new(&indexer, SimTime(0));
//! let mut writer = Conflicts(Vec::new());
//! let result = Labeler.reconcile(&ObjectKey::new("ns/a"), &lister, &mut Client::new(&mut writer));
//! assert_eq!(result, Err(ReconcileError("conflict: the object changed since it was read".into())));
//! assert!(matches!(&writer.0[..], [Write::Update(object)] if object.resource_version == 5));
//! ```

mod api;
mod expectations;
mod replicaset;
mod runtime;

pub use api::{
    Client, ClusterState, Controller, ControllerFactory, Enqueue, EventHandler, InvariantFn,
    Lister, ReconcileError, Reconciler, UserInvariant, When, Write, WriteError, Writer,
};
pub use expectations::{ControllerExpectations, EXPECTATIONS_TIMEOUT};
pub use replicaset::{
    OWNER_LABEL, OWNER_UID_LABEL, READY_LABEL, ReplicaSetController, desired_replicas,
    owned_labels, owner_of, with_ready,
};
pub use runtime::{ControllerQueue, ControllerRuntime, Finished};
