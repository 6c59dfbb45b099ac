//! kube-rs's own `Controller` inside the simulation, reconciling ConfigMaps with the sample
//! ReplicaSet-like rule of [`crate::controller`]: an owner (a ConfigMap without an owner label)
//! asks for [`desired_replicas`] owned ConfigMaps, each labelled with its owner's name and uid;
//! the reconciler creates and deletes owned objects to match, deletes owned objects of a
//! deleted or re-created owner (the garbage collector's part), and writes the count it saw into
//! the owner's `ready` label, with resourceVersion preconditions (a 409 fails the reconcile and
//! the error policy requeues it).
//!
//! kube-rs's way to create at most the desired count is not client-go's expectations but
//! deterministic names: owned object `i` of owner incarnation `uid` is `OWNER-uUID-i`, so a
//! create from a store that has not yet seen an earlier create answers 409 AlreadyExists.
//!
//! The triggers are kube-rs's: `Controller::for_stream` over the watcher's applied objects
//! (what `Controller::new` builds), and `reconcile_on` for the related objects a
//! `watches` mapper would give: an owned object's owner on its every change, a deleted owner's
//! owned objects, and every object once a relist's store is swapped in (`InitDone`; finding F4
//! in the README: kube-rs triggers a relist's objects on `InitApply`, and its runner reads them
//! from the store before `InitDone` swaps the relist in, so without this a reconcile acts on the
//! pre-relist state and nothing triggers the object again).
//!
//! Determinism: kube-rs's scheduler and runner keep their work in std hash maps and sets, whose
//! iteration order is random per process, so the order in which the runner starts
//! reconciles of several keys at one instant is not reproducible. Every reconcile therefore
//! waits first for a worker (`workers` of them, as `Config::concurrency`): a worker is handed
//! out at least 1 ms after it was asked for, once every task runnable at that instant has run
//! (tokio's paused clock moves only when all are idle), in key order, after a wake delay drawn
//! from the seeded generator. The error policy's requeue is deterministic (client-go's
//! per-item exponential backoff, 5 ms doubling to 1000 s), the trigger backoff is
//! [`SeededBackoff`], and no other timer of kube-rs's controller is random.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{Stream, StreamExt, future};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::backoff::SeededBackoff;
use super::face;
use super::steps::{Item, KubeStep, store_get, store_objects};
use crate::controller::{
    ReconcileError, WriteError, desired_replicas, owned_labels, owner_of, with_ready,
};
use crate::object::{Object, ObjectKey};
use crate::sim::RngStream;

/// The first requeue delay of a failing key (client-go `DefaultItemBasedRateLimiter`).
const REQUEUE_BASE: Duration = Duration::from_millis(5);
/// The longest requeue delay.
const REQUEUE_MAX: Duration = Duration::from_secs(1000);
/// The shortest time between asking for a worker and getting one: one tick of the paused
/// clock, so that every reconcile asked for at an instant is there when workers are handed out.
const WORKER_TICK: Duration = Duration::from_millis(1);

/// How the controller runs (the scenario's `[kube_rs.controller]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerSetup {
    /// How many reconciles run at once (`Config::concurrency`).
    pub workers: u32,
    /// Owners ask for `value % (replicas_max + 1)` owned objects.
    pub replicas_max: u32,
    /// The longest time one reconcile holds its worker after its writes.
    pub reconcile_ms_max: u64,
    /// The longest extra wait for a worker.
    pub worker_wake_ms_max: u64,
    /// Every object is reconciled again once a relist's store is swapped in (`InitDone`);
    /// off: kube-rs's own triggers only, which fire on a relist's `InitApply` before the swap
    /// (finding F4).
    pub reconcile_after_relist: bool,
}

/// What the process hands the controller.
pub(super) struct Parts {
    /// The ConfigMap API the reconciler writes through.
    pub(super) api: Api<ConfigMap>,
    /// The store `events` fill.
    pub(super) store: Store<ConfigMap>,
    /// The watcher's steps, each applied to `store`.
    pub(super) events: Pin<Box<dyn Stream<Item = Item> + Send>>,
    /// The trigger backoff.
    pub(super) backoff: SeededBackoff,
    /// Wake delays and reconcile times.
    pub(super) rng: RngStream,
    /// Hands a finished reconcile to the world.
    pub(super) report: Box<dyn Fn(KubeStep) + Send + Sync>,
}

/// A running controller, as the process sees it.
pub struct KubeController {
    context: Arc<Context>,
}

impl KubeController {
    /// No reconcile is running or waiting for a worker, and no object in the store failed its
    /// last reconcile (its requeue is still due; the requeue of an object gone from the store
    /// finds nothing to reconcile: applier's `ObjectNotFound`).
    pub fn is_idle(&self) -> bool {
        let context = &self.context;
        let state = context.state();
        state.waiting.is_empty()
            && state.running == 0
            && state
                .failures
                .keys()
                .all(|key| store_get(&context.store, key).is_none())
    }
}

/// What every reconcile shares (kube-rs's `Ctx`).
struct Context {
    api: Api<ConfigMap>,
    store: Store<ConfigMap>,
    setup: ControllerSetup,
    state: Mutex<State>,
    /// Wakes the worker arbiter.
    kicks: mpsc::UnboundedSender<()>,
    report: Box<dyn Fn(KubeStep) + Send + Sync>,
}

struct State {
    rng: RngStream,
    /// Reconciles waiting for a worker, by key.
    waiting: BTreeMap<ObjectKey, oneshot::Sender<()>>,
    /// Workers busy.
    running: u32,
    /// Consecutive failed reconciles of each key since its last success.
    failures: BTreeMap<ObjectKey, u32>,
}

/// Starts the controller on the current runtime: kube-rs's `Controller` driven by a spawned
/// task, and the task that hands out workers.
pub(super) fn spawn(parts: Parts, setup: ControllerSetup) -> KubeController {
    let (related, related_triggers) = mpsc::unbounded();
    let reader = parts.store.clone();
    let events = parts.events.map(move |item| {
        if let Ok(event) = &item {
            for reference in related_objects(event, &reader, setup.reconcile_after_relist) {
                let _ = related.unbounded_send(reference);
            }
        }
        item
    });
    let (kicks, kicked) = mpsc::unbounded();
    let context = Arc::new(Context {
        api: parts.api,
        store: parts.store.clone(),
        setup,
        state: Mutex::new(State {
            rng: parts.rng,
            waiting: BTreeMap::new(),
            running: 0,
            failures: BTreeMap::new(),
        }),
        kicks,
        report: parts.report,
    });
    let driver = Controller::for_stream(events.applied_objects(), parts.store)
        .reconcile_on(related_triggers)
        .trigger_backoff(parts.backoff)
        .run(reconcile, error_policy, Arc::clone(&context))
        .for_each(|_| future::ready(()));
    tokio::spawn(driver);
    tokio::spawn(hand_out_workers(Arc::clone(&context), kicked));
    KubeController { context }
}

fn reference(key: &ObjectKey) -> ObjectRef<ConfigMap> {
    ObjectRef::new(key.name()).within(key.namespace())
}

fn object(config_map: &ConfigMap) -> Object {
    face::object_of(config_map).expect("the face wrote every ConfigMap")
}

/// The owned objects of `owner` among `objects`, of any incarnation.
fn owned_by<'a>(objects: &'a [Object], owner: &'a ObjectKey) -> impl Iterator<Item = &'a Object> {
    objects
        .iter()
        .filter(move |object| owner_of(object).is_some_and(|(key, _)| &key == owner))
}

/// What a watcher step triggers besides the applied object itself (kube-rs `watches` and
/// `reconcile_on`): an owned object's owner, a deleted owner's owned objects, and after a
/// relist every object of the store just swapped in (unless `reconcile_after_relist` is off).
fn related_objects(
    event: &watcher::Event<ConfigMap>,
    store: &Store<ConfigMap>,
    reconcile_after_relist: bool,
) -> Vec<ObjectRef<ConfigMap>> {
    match event {
        watcher::Event::Apply(config_map) | watcher::Event::InitApply(config_map) => {
            owner_of(&object(config_map))
                .map(|(owner, _)| reference(&owner))
                .into_iter()
                .collect()
        }
        watcher::Event::Delete(config_map) => {
            let deleted = object(config_map);
            match owner_of(&deleted) {
                Some((owner, _)) => vec![reference(&owner)],
                None => {
                    let objects = store_objects(store);
                    owned_by(&objects, &deleted.key)
                        .map(|owned| reference(&owned.key))
                        .collect()
                }
            }
        }
        watcher::Event::InitDone if reconcile_after_relist => store_objects(store)
            .iter()
            .map(|object| reference(&object.key))
            .collect(),
        watcher::Event::InitDone | watcher::Event::Init => Vec::new(),
    }
}

/// The reconciler: waits for a worker, reconciles an owner or an owned object, holds the
/// worker for the reconcile's time.
async fn reconcile(
    config_map: Arc<ConfigMap>,
    context: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let object = object(&config_map);
    let _ = context.ask_for_worker(&object.key).await;
    let result = match owner_of(&object) {
        None => sync_owner(&context, &object).await,
        Some((owner, uid)) => collect_if_orphan(&context, &object, &owner, uid).await,
    };
    let took = context.reconcile_time();
    tokio::time::sleep(took).await;
    context.release_worker(&object.key, &result);
    result.map(|()| Action::await_change())
}

/// client-go's `AddRateLimited` with `DefaultItemBasedRateLimiter`: 5 ms doubling per
/// consecutive failure of the key, up to 1000 s, with no jitter.
fn error_policy(config_map: Arc<ConfigMap>, _: &ReconcileError, context: Arc<Context>) -> Action {
    let key = object(&config_map).key;
    let failures = context.state().failures.get(&key).copied().unwrap_or(1);
    let delay = REQUEUE_BASE.saturating_mul(1 << failures.saturating_sub(1).min(31));
    Action::requeue(delay.min(REQUEUE_MAX))
}

/// Keeps the first write error that is not a benign 404 or 409 AlreadyExists (what a stale
/// store's delete or create meets).
fn note(failed: &mut Option<WriteError>, result: Result<(), WriteError>) {
    if let Err(error) = result
        && !matches!(error, WriteError::NotFound | WriteError::AlreadyExists)
    {
        failed.get_or_insert(error);
    }
}

/// The key of owned object `index` of `owner`'s incarnation.
fn owned_key(owner: &Object, index: u32) -> ObjectKey {
    let name = format!("{}-u{}-{index}", owner.key.name(), owner.uid);
    ObjectKey::namespaced(owner.key.namespace(), &name)
}

/// replica_set.go `syncReplicaSet` over the store: owned objects of another incarnation go,
/// missing ones are created, extra ones deleted, then the status is written.
async fn sync_owner(context: &Context, owner: &Object) -> Result<(), ReconcileError> {
    let objects = store_objects(&context.store);
    let (mine, orphans): (Vec<&Object>, Vec<&Object>) = owned_by(&objects, &owner.key)
        .partition(|owned| owner_of(owned).is_some_and(|(_, uid)| uid == owner.uid));
    let mut failed = None;
    for orphan in orphans {
        note(&mut failed, context.delete(orphan).await);
    }
    let desired: Vec<ObjectKey> = (0..desired_replicas(owner, context.setup.replicas_max))
        .map(|index| owned_key(owner, index))
        .collect();
    for key in &desired {
        if !mine.iter().any(|owned| &owned.key == key) {
            note(&mut failed, context.create(owner, key).await);
        }
    }
    for extra in mine.iter().filter(|owned| !desired.contains(&owned.key)) {
        note(&mut failed, context.delete(extra).await);
    }
    note(&mut failed, context.update_status(owner, mine.len()).await);
    failed.map_or(Ok(()), |error| Err(ReconcileError::from(error)))
}

/// The garbage collector's part: an owned object whose owner incarnation is gone from the
/// store is deleted.
async fn collect_if_orphan(
    context: &Context,
    owned: &Object,
    owner: &ObjectKey,
    uid: u64,
) -> Result<(), ReconcileError> {
    let alive = store_get(&context.store, owner)
        .is_some_and(|owner| owner.uid == uid && owner_of(&owner).is_none());
    let mut failed = None;
    if !alive {
        note(&mut failed, context.delete(owned).await);
    }
    failed.map_or(Ok(()), |error| Err(ReconcileError::from(error)))
}

/// A kube-rs error as the write error it answers.
fn write_error(error: &kube::Error) -> WriteError {
    match error {
        kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists" => {
            WriteError::AlreadyExists
        }
        kube::Error::Api(status) if status.code == 409 => WriteError::Conflict,
        kube::Error::Api(status) if status.code == 404 => WriteError::NotFound,
        _ => WriteError::Unavailable,
    }
}

impl Context {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the controller state is never poisoned")
    }

    fn kick(&self) {
        let _ = self.kicks.unbounded_send(());
    }

    /// Queues the reconcile of `key` for a worker: the receiver fires when it has one.
    fn ask_for_worker(&self, key: &ObjectKey) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        self.state().waiting.insert(key.clone(), sender);
        self.kick();
        receiver
    }

    /// How long the worker waits before it takes work, if a worker is free for a waiting
    /// reconcile.
    fn wake_delay(&self) -> Option<Duration> {
        let mut state = self.state();
        if state.waiting.is_empty() || state.running >= self.setup.workers {
            return None;
        }
        let extra = state.rng.between(0, self.setup.worker_wake_ms_max);
        Some(WORKER_TICK + Duration::from_millis(extra))
    }

    /// Hands free workers to the waiting reconciles, in key order.
    fn hand_out(&self) {
        let mut state = self.state();
        while state.running < self.setup.workers {
            let Some((_, sender)) = state.waiting.pop_first() else {
                break;
            };
            if sender.send(()).is_ok() {
                state.running += 1;
            }
        }
    }

    fn reconcile_time(&self) -> Duration {
        let millis = self.state().rng.between(0, self.setup.reconcile_ms_max);
        Duration::from_millis(millis)
    }

    /// The reconcile of `key` ended: its worker is free, its failures counted or forgotten.
    fn release_worker(&self, key: &ObjectKey, result: &Result<(), ReconcileError>) {
        {
            let mut state = self.state();
            state.running -= 1;
            match result {
                Ok(()) => {
                    state.failures.remove(key);
                }
                Err(_) => *state.failures.entry(key.clone()).or_default() += 1,
            }
        }
        (self.report)(KubeStep::Reconciled {
            key: key.clone(),
            error: result.as_ref().err().map(|error| error.0.clone()),
        });
        self.kick();
    }

    async fn create(&self, owner: &Object, key: &ObjectKey) -> Result<(), WriteError> {
        let config_map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(key.name().to_owned()),
                namespace: Some(key.namespace().to_owned()),
                labels: Some(owned_labels(owner)),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("value".to_owned(), "0".to_owned())])),
            ..ConfigMap::default()
        };
        let created = self.api.create(&PostParams::default(), &config_map).await;
        created.map(|_| ()).map_err(|error| write_error(&error))
    }

    async fn delete(&self, object: &Object) -> Result<(), WriteError> {
        let parameters = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(object.resource_version.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        let deleted = self.api.delete(object.key.name(), &parameters).await;
        deleted.map(|_| ()).map_err(|error| write_error(&error))
    }

    /// replica_set.go `updateReplicaSetStatus`, one try: the owner replaced at the RV read.
    async fn update_status(&self, owner: &Object, ready: usize) -> Result<(), WriteError> {
        let Some(updated) = with_ready(owner, ready) else {
            return Ok(());
        };
        let config_map: ConfigMap =
            serde_json::from_value(face::config_map_json(&updated)).expect("a ConfigMap");
        let replaced = self
            .api
            .replace(owner.key.name(), &PostParams::default(), &config_map)
            .await;
        replaced.map(|_| ()).map_err(|error| write_error(&error))
    }
}

/// Hands out workers: after a reconcile asks for one or a worker is freed, waits a tick and
/// the wake delay (every task runnable now has run by then), then hands the free workers to
/// the waiting reconciles in key order.
async fn hand_out_workers(context: Arc<Context>, mut kicks: mpsc::UnboundedReceiver<()>) {
    let drain = |kicks: &mut mpsc::UnboundedReceiver<()>| while kicks.try_recv().is_ok() {};
    while kicks.next().await.is_some() {
        drain(&mut kicks);
        let Some(delay) = context.wake_delay() else {
            continue;
        };
        tokio::time::sleep(delay).await;
        drain(&mut kicks);
        context.hand_out();
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector;

    use super::*;

    fn config_map(object: &Object) -> ConfigMap {
        serde_json::from_value(face::config_map_json(object)).expect("a ConfigMap")
    }

    fn names(references: Vec<ObjectRef<ConfigMap>>) -> Vec<String> {
        references
            .into_iter()
            .map(|reference| reference.name)
            .collect()
    }

    #[test]
    fn an_owned_object_triggers_its_owner_and_a_deleted_owner_its_owned_objects() {
        let owner = Object {
            uid: 3,
            ..Object::bare("ns-0/obj-1", 3)
        };
        let owned = Object {
            labels: owned_labels(&owner).into(),
            ..Object::bare("ns-0/obj-1-u3-0", 4)
        };
        assert_eq!(owned.key, owned_key(&owner, 0));
        let (store, mut writer) = reflector::store::<ConfigMap>();
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(config_map(&owner)),
            watcher::Event::InitApply(config_map(&owned)),
            watcher::Event::InitDone,
        ] {
            writer.apply_watcher_event(&event);
        }
        let related = |event: watcher::Event<ConfigMap>, after_relist| {
            names(related_objects(&event, &store, after_relist))
        };
        assert_eq!(
            related(watcher::Event::Apply(config_map(&owned)), true),
            ["obj-1"]
        );
        assert_eq!(
            related(watcher::Event::Apply(config_map(&owner)), true),
            Vec::<String>::new(),
            "the owner itself is the applied object's own trigger"
        );
        assert_eq!(
            related(watcher::Event::Delete(config_map(&owner)), true),
            ["obj-1-u3-0"]
        );
        assert_eq!(
            related(watcher::Event::InitDone, true),
            ["obj-1", "obj-1-u3-0"]
        );
        assert!(related(watcher::Event::InitDone, false).is_empty());
    }
}
