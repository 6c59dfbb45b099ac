//! The sample controller: ReplicaSet-like (kube-controller-manager `replica_set.go`). Owners
//! are the workload's objects, each asking for `value % (replicas_max + 1)` owned objects;
//! owned objects carry their owner's name and uid in labels. The controller creates and
//! deletes owned objects to match, records the count it saw in the owner's `ready` label
//! (its status), and uses [`ControllerExpectations`] not to act on a cache that has not yet
//! shown its own creates and deletes.

use std::collections::BTreeMap;

use crate::bug::{Bug, Bugs};
use crate::object::{Object, ObjectKey};

use super::api::{Client, Enqueue, EventHandler, Lister, ReconcileError, Reconciler, WriteError};
use super::expectations::ControllerExpectations;

/// The label naming an owned object's owner (in the owner's namespace).
pub const OWNER_LABEL: &str = "owner";
/// The label holding the uid of the owner incarnation that created the object.
pub const OWNER_UID_LABEL: &str = "owner-uid";
/// The owner's status: how many owned objects its last sync saw.
pub const READY_LABEL: &str = "ready";

/// How many owned objects `owner` asks for.
pub fn desired_replicas(owner: &Object, replicas_max: u32) -> u32 {
    (owner.value % (u64::from(replicas_max) + 1)) as u32
}

/// The owner key and owner uid of an owned object; `None` for an owner.
pub fn owner_of(object: &Object) -> Option<(ObjectKey, u64)> {
    let name = object.label(OWNER_LABEL)?;
    let uid = object.label(OWNER_UID_LABEL)?.parse().ok()?;
    Some((ObjectKey::namespaced(object.key.namespace(), name), uid))
}

/// The labels of an owned object of `owner`'s incarnation.
pub fn owned_labels(owner: &Object) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_LABEL.to_owned(), owner.key.name().to_owned()),
        (OWNER_UID_LABEL.to_owned(), owner.uid.to_string()),
    ])
}

/// `owner` with `ready` in its `ready` label (its status), or `None` if it already says so.
pub fn with_ready(owner: &Object, ready: usize) -> Option<Object> {
    let ready = ready.to_string();
    if owner.label(READY_LABEL) == Some(ready.as_str()) {
        return None;
    }
    let mut labels = (*owner.labels).clone();
    labels.insert(READY_LABEL.to_owned(), ready);
    Some(Object {
        labels: labels.into(),
        ..owner.clone()
    })
}

/// The ReplicaSet-like controller.
#[derive(Clone, Debug)]
pub struct ReplicaSetController {
    replicas_max: u32,
    expectations: ControllerExpectations,
    /// The owner incarnation (uid) each key's expectations were set for.
    expecting_uid: BTreeMap<ObjectKey, u64>,
    /// The process incarnation, in owned objects' names so that a restarted controller
    /// never reuses one (the apiserver's `generateName` draws a random suffix).
    incarnation: u32,
    /// The suffix of the next owned object's name.
    next_name: u64,
    bugs: Bugs,
}

impl ReplicaSetController {
    /// A controller for owners asking for up to `replicas_max` owned objects, in its process
    /// incarnation `incarnation`.
    pub fn new(replicas_max: u32, incarnation: u32, bugs: Bugs) -> ReplicaSetController {
        ReplicaSetController {
            replicas_max,
            incarnation,
            expectations: ControllerExpectations::new(),
            expecting_uid: BTreeMap::new(),
            next_name: 0,
            bugs,
        }
    }

    /// Whether `owner`'s expectations are those of incarnation `uid`: an owned object of
    /// another incarnation is not the owner's (replica_set.go `resolveControllerRef` compares
    /// the controller reference's UID).
    fn expects_for(&self, owner: &ObjectKey, uid: u64) -> bool {
        self.expecting_uid.get(owner) == Some(&uid)
    }

    /// Creates `count` owned objects of `owner`; every create that fails is observed at once,
    /// since it will never show up (replica_set.go `slowStartBatch` callers).
    fn create_owned(
        &mut self,
        owner: &Object,
        count: u32,
        client: &mut Client<'_>,
    ) -> Result<(), WriteError> {
        let mut failed = None;
        for _ in 0..count {
            self.next_name += 1;
            let key = ObjectKey::namespaced(
                owner.key.namespace(),
                &format!(
                    "{}-g{}-{}",
                    owner.key.name(),
                    self.incarnation,
                    self.next_name
                ),
            );
            if let Err(error) = client.create(key, owned_labels(owner), 0) {
                self.expectations.creation_observed(&owner.key);
                failed = Some(error);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Deletes `doomed`; for an owner that expects the deletions, a failed delete is
    /// observed at once. Not-found is no error (replica_set.go `manageReplicas`).
    fn delete_owned(
        &mut self,
        expecting: Option<&ObjectKey>,
        doomed: &[&Object],
        client: &mut Client<'_>,
    ) -> Result<(), WriteError> {
        let mut failed = None;
        for object in doomed {
            match client.delete(object) {
                Ok(()) => {}
                Err(error) => {
                    if let Some(owner_key) = expecting {
                        self.expectations.deletion_observed(owner_key);
                    }
                    if error != WriteError::NotFound {
                        failed = Some(error);
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// replica_set.go `manageReplicas`: create or delete the difference.
    fn manage_replicas(
        &mut self,
        owner: &Object,
        mine: &[&Object],
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), WriteError> {
        let desired = desired_replicas(owner, self.replicas_max) as usize;
        let now = lister.now();
        self.expecting_uid.insert(owner.key.clone(), owner.uid);
        if mine.len() < desired {
            let missing = (desired - mine.len()) as u32;
            self.expectations.expect_creations(&owner.key, missing, now);
            self.create_owned(owner, missing, client)
        } else if mine.len() > desired {
            let doomed = &mine[desired..];
            self.expectations
                .expect_deletions(&owner.key, doomed.len() as u32, now);
            self.delete_owned(Some(&owner.key), doomed, client)
        } else {
            Ok(())
        }
    }

    /// Writes how many owned objects the sync saw into the owner's `ready` label
    /// (replica_set.go `updateReplicaSetStatus`, one try: a conflict requeues).
    fn update_status(
        &mut self,
        owner: &Object,
        ready: usize,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), WriteError> {
        let Some(updated) = with_ready(owner, ready) else {
            return Ok(());
        };
        // Planted: classic (client-go cache_mutation_detector.go) (C9)
        if self.bugs.is(Bug::MutateListerObject) {
            lister.mutate_in_place(updated.clone());
        }
        client.update(updated).map(|_| ())
    }
}

impl EventHandler for ReplicaSetController {
    /// replica_set.go `addPod` / `addRS`.
    fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
        match owner_of(object) {
            Some((owner, uid)) => {
                if self.expects_for(&owner, uid) {
                    self.expectations.creation_observed(&owner);
                }
                queue.add(owner);
            }
            None => queue.add(object.key.clone()),
        }
    }

    /// replica_set.go `updatePod` / `updateRS`.
    fn on_update(&mut self, _old: &Object, new: &Object, queue: &mut Enqueue) {
        let key = owner_of(new).map_or_else(|| new.key.clone(), |(owner, _)| owner);
        queue.add(key);
    }

    /// replica_set.go `deletePod` / `deleteRS`: an owner's expectations go with it. Unlike
    /// `deleteRS`, which forgets them by key, only those set for the deleted incarnation go:
    /// when an owner is deleted and re-created under the same name, the cache can hold the new
    /// incarnation (whose creates are expected) before the handler hears of the deletion, and
    /// forgetting by key then lets the next sync create again (seed 664 of
    /// `controller-replicaset` did, before this check).
    fn on_delete(&mut self, key: &ObjectKey, last_known: Option<&Object>, queue: &mut Enqueue) {
        match last_known.and_then(owner_of) {
            Some((owner, uid)) => {
                if self.expects_for(&owner, uid) {
                    self.expectations.deletion_observed(&owner);
                }
                queue.add(owner);
            }
            None => {
                let uid = last_known.map(|object| object.uid);
                if uid.is_none() || self.expecting_uid.get(key).copied() == uid {
                    self.expectations.delete_expectations(key);
                    self.expecting_uid.remove(key);
                }
                queue.add(key.clone());
            }
        }
    }
}

impl Reconciler for ReplicaSetController {
    /// replica_set.go `syncReplicaSet`: owned objects of an older incarnation or of a deleted
    /// owner go (the garbage collector's part); then, once expectations are met, the count is
    /// managed; then the status is written.
    fn reconcile(
        &mut self,
        key: &ObjectKey,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), ReconcileError> {
        let owner = lister.get(key).filter(|object| owner_of(object).is_none());
        let owned: Vec<&Object> = lister
            .list_by_label(OWNER_LABEL, key.name())
            .into_iter()
            .filter(|object| object.key.namespace() == key.namespace())
            .collect();
        let (mine, orphans): (Vec<&Object>, Vec<&Object>) = owned.into_iter().partition(|object| {
            owner.is_some_and(|owner| owner_of(object).is_some_and(|(_, uid)| uid == owner.uid))
        });
        let mut result = self.delete_owned(None, &orphans, client);
        let Some(owner) = owner else {
            return result.map_err(ReconcileError::from);
        };
        let needs_sync = self.expectations.satisfied_expectations(key, lister.now());
        // Planted: classic (client-go controller_utils.go ControllerExpectations) (C7)
        if needs_sync || self.bugs.is(Bug::ReconcileWithoutExpectations) {
            result = result.and(self.manage_replicas(owner, &mine, lister, client));
        }
        result = result.and(self.update_status(owner, mine.len(), lister, client));
        result.map_err(ReconcileError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Indexer;
    use crate::controller::{Write, Writer};
    use crate::sim::SimTime;

    /// Accepts every write and counts the creates.
    #[derive(Default)]
    struct Counting {
        creates: Vec<ObjectKey>,
    }

    impl Writer for Counting {
        fn write(&mut self, write: Write) -> Result<Object, WriteError> {
            match write {
                Write::Create { key, .. } => {
                    self.creates.push(key.clone());
                    Ok(Object::bare(key.as_str(), 10))
                }
                Write::Update(object) => Ok(object),
                Write::Delete { key, .. } => Ok(Object::bare(key.as_str(), 10)),
            }
        }
    }

    fn owner(desired: u64) -> Object {
        Object {
            value: desired,
            uid: 3,
            ..Object::bare("ns/obj-1", 3)
        }
    }

    /// Two syncs of one owner while the cache has not seen the first sync's creates.
    fn creates_over_two_syncs(bugs: Bugs) -> usize {
        let mut indexer = Indexer::new(Bugs::NONE);
        indexer.add(owner(2));
        let mut controller = ReplicaSetController::new(3, 0, bugs);
        let mut writer = Counting::default();
        let key = ObjectKey::new("ns/obj-1");
        for _ in 0..2 {
            let lister = Lister::new(&indexer, SimTime::ZERO);
            let result = controller.reconcile(&key, &lister, &mut Client::new(&mut writer));
            assert_eq!(result, Ok(()));
        }
        writer.creates.len()
    }

    #[test]
    fn expectations_keep_a_stale_cache_from_creating_twice() {
        assert_eq!(creates_over_two_syncs(Bugs::NONE), 2);
        let without = Bugs::new(Some(Bug::ReconcileWithoutExpectations));
        assert_eq!(
            creates_over_two_syncs(without),
            4,
            "the planted bug creates again"
        );
    }

    #[test]
    fn owned_objects_name_their_owner_incarnation() {
        let mut controller = ReplicaSetController::new(3, 2, Bugs::NONE);
        let mut writer = Counting::default();
        let created = controller.create_owned(&owner(1), 1, &mut Client::new(&mut writer));
        assert_eq!(created, Ok(()));
        assert_eq!(writer.creates, vec![ObjectKey::new("ns/obj-1-g2-1")]);
        let labels = BTreeMap::from([
            (OWNER_LABEL.to_owned(), "obj-1".to_owned()),
            (OWNER_UID_LABEL.to_owned(), "3".to_owned()),
        ]);
        let owned = Object {
            labels: labels.into(),
            ..Object::bare("ns/obj-1-g2-1", 9)
        };
        assert_eq!(owner_of(&owned), Some((ObjectKey::new("ns/obj-1"), 3)));
        assert_eq!(owner_of(&owner(1)), None);
        assert_eq!(desired_replicas(&owner(7), 3), 3);
    }
}
