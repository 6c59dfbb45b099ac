//! What a kube-rs process hands the world besides its requests: its watcher's steps (each as
//! the world traces and checks it, with what the store then held) and its controller's
//! reconciles; and the store read in key order (it is a hash map).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::Serialize;

use super::face;
use crate::object::{Object, ObjectKey};

/// One item of kube-rs's watcher.
pub(super) type Item = watcher::Result<watcher::Event<ConfigMap>>;

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

/// What a process hands the world besides its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeStep {
    /// A watcher step, applied to the store, with what the store then held: its whole state
    /// after `InitDone`, the object's entry after `Apply`, nothing otherwise.
    Store {
        /// The step.
        event: StoreEvent,
        /// The store's objects it shows, sorted by key.
        held: Vec<Object>,
    },
    /// The controller's reconcile of `key` ended (`error`: why it failed).
    Reconciled {
        /// The object reconciled.
        key: ObjectKey,
        /// The reconciler's error, if it failed.
        error: Option<String>,
    },
}

impl StoreEvent {
    pub(super) fn of(item: &Item) -> StoreEvent {
        let object = |config_map: &ConfigMap| {
            face::object_of(config_map).expect("the face wrote every ConfigMap")
        };
        let code = |error: &kube::Error| match error {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        };
        match item {
            Ok(watcher::Event::Init) => StoreEvent::Init,
            Ok(watcher::Event::InitApply(config_map)) => StoreEvent::InitApply(object(config_map)),
            Ok(watcher::Event::InitDone) => StoreEvent::InitDone,
            Ok(watcher::Event::Apply(config_map)) => StoreEvent::Apply(object(config_map)),
            Ok(watcher::Event::Delete(config_map)) => StoreEvent::Delete(object(config_map)),
            Err(watcher::Error::InitialListFailed(error)) => {
                StoreEvent::Error(WatcherError::InitialListFailed(code(error)))
            }
            Err(watcher::Error::WatchStartFailed(error)) => {
                StoreEvent::Error(WatcherError::WatchStartFailed(code(error)))
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

/// The store's objects, sorted by key (the store is a hash map).
pub(super) fn store_objects(store: &Store<ConfigMap>) -> Vec<Object> {
    let mut objects: Vec<Object> = store
        .state()
        .iter()
        .map(|config_map| face::object_of(config_map).expect("the face wrote it"))
        .collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    objects
}

/// The store's object for `key`, if any.
pub(super) fn store_get(store: &Store<ConfigMap>, key: &ObjectKey) -> Option<Object> {
    let reference = ObjectRef::new(key.name()).within(key.namespace());
    store
        .get(&reference)
        .map(|config_map| face::object_of(&config_map).expect("the face wrote it"))
}
