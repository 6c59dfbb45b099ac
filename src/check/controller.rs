//! The controller's invariants: its work queue (SPEC §7), its lister (client-go's cache
//! mutation detector) and, for the sample ReplicaSet-like controller, the owned-object counts
//! at every committed revision and once settled.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::Invariant;
use super::resource::{Change, ResourceHistory};
use super::violation::Violation;
use crate::client::Indexer;
use crate::controller::{ControllerRuntime, desired_replicas, owner_of};
use crate::object::{Object, ObjectKey};

/// `workqueue_one_item_one_worker` and `workqueue_no_duplicate_in_queue`, from the runtime's
/// facts: which key each worker holds, and what is queued.
pub fn check_workqueue(runtime: &ControllerRuntime) -> Option<Violation> {
    let mut held = BTreeSet::new();
    for key in runtime.workers().iter().flatten() {
        if !held.insert(key) {
            return Some(Violation::new(
                Invariant::WorkqueueOneItemOneWorker,
                format!("{key} is held by two workers at once"),
            ));
        }
    }
    let mut queued = BTreeSet::new();
    for key in runtime.queue().delaying_queue().queue().queued() {
        if !queued.insert(key) {
            return Some(Violation::new(
                Invariant::WorkqueueNoDuplicateInQueue,
                format!("{key} is in the work queue twice"),
            ));
        }
    }
    None
}

/// `workqueue_processed_after_last_add`, once settled.
pub fn check_workqueue_settled(runtime: &ControllerRuntime) -> Option<Violation> {
    let key = runtime.unprocessed_adds().next()?;
    Some(Violation::new(
        Invariant::WorkqueueProcessedAfterLastAdd,
        format!("{key} was added and never handed to a worker after its last add"),
    ))
}

/// `lister_objects_unchanged`: what the lister handed out during a reconcile is still what the
/// cache holds after it (nothing else runs during a reconcile).
pub fn check_lister_unchanged(
    handed_out: &BTreeMap<ObjectKey, Object>,
    indexer: &Indexer,
) -> Option<Violation> {
    handed_out.iter().find_map(|(key, before)| {
        let after = indexer.get_by_key(key)?;
        (after != before).then(|| {
            Violation::new(
                Invariant::ListerObjectsUnchanged,
                format!("the reconcile changed the cached {key}: {before:?} became {after:?}"),
            )
        })
    })
}

/// An owner incarnation: its key and uid.
type Incarnation = (ObjectKey, u64);

/// The sample controller's ledger over etcd's committed revisions: per owner incarnation, the
/// largest count it ever asked for, and how many owned objects it has.
#[derive(Clone, Debug, Default)]
pub struct ReplicaSetLedger {
    replicas_max: u32,
    allowed: BTreeMap<Incarnation, u32>,
    owned: BTreeMap<Incarnation, u32>,
}

impl ReplicaSetLedger {
    /// A ledger for owners asking for up to `replicas_max`.
    pub fn new(replicas_max: u32) -> ReplicaSetLedger {
        ReplicaSetLedger {
            replicas_max,
            ..ReplicaSetLedger::default()
        }
    }

    /// One committed change; `owned_within_allowed` after it.
    pub fn observe(&mut self, change: &Change) -> Option<Violation> {
        if let Some(after) = &change.after
            && owner_of(after).is_none()
        {
            let desired = desired_replicas(after, self.replicas_max);
            let allowed = self
                .allowed
                .entry((after.key.clone(), after.uid))
                .or_default();
            *allowed = (*allowed).max(desired);
        }
        let created = change.before.is_none();
        match (&change.after, &change.before) {
            (Some(after), _) if created => {
                let incarnation = owner_of(after)?;
                let owned = self.owned.entry(incarnation.clone()).or_default();
                *owned += 1;
                let allowed = self.allowed.get(&incarnation).copied().unwrap_or(0);
                (*owned > allowed).then(|| {
                    Violation::new(
                        Invariant::OwnedWithinAllowed,
                        format!(
                            "{} has {owned} owned objects with {} created, but its uid {} never asked for more than {allowed}",
                            incarnation.0, after.key, incarnation.1
                        ),
                    )
                })
            }
            (None, Some(before)) => {
                let incarnation = owner_of(before)?;
                let owned = self.owned.get_mut(&incarnation)?;
                *owned -= 1;
                None
            }
            _ => None,
        }
    }

    /// `owned_match_desired` at etcd's current state: each live owner has exactly its desired
    /// count of owned objects of its own incarnation, and no owned object's owner is gone.
    pub fn check_settled(&self, resource: &ResourceHistory) -> Option<Violation> {
        let mut owners = BTreeMap::new();
        let mut counts: BTreeMap<Incarnation, u32> = BTreeMap::new();
        for object in resource.state_at(resource.revision(), None) {
            match owner_of(object) {
                Some(incarnation) => *counts.entry(incarnation).or_default() += 1,
                None => {
                    owners.insert(object.key.clone(), object);
                }
            }
        }
        for (key, owner) in &owners {
            let desired = desired_replicas(owner, self.replicas_max);
            let owned = counts.remove(&(key.clone(), owner.uid)).unwrap_or(0);
            if owned != desired {
                return Some(Violation::new(
                    Invariant::OwnedMatchDesired,
                    format!("{key} asks for {desired} owned objects and has {owned}"),
                ));
            }
        }
        let ((key, uid), owned) = counts.into_iter().next()?;
        Some(Violation::new(
            Invariant::OwnedMatchDesired,
            format!("{owned} owned objects outlive their owner {key} (uid {uid})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::controller::{OWNER_LABEL, OWNER_UID_LABEL};

    fn owner(value: u64, uid: u64) -> Object {
        Object {
            uid,
            value,
            ..Object::bare("ns/obj-1", uid)
        }
    }

    fn owned(name: &str, uid: u64) -> Object {
        let labels = BTreeMap::from([
            (OWNER_LABEL.to_owned(), "obj-1".to_owned()),
            (OWNER_UID_LABEL.to_owned(), uid.to_string()),
        ]);
        Object {
            labels: labels.into(),
            ..Object::bare(name, 9)
        }
    }

    fn created(object: Object) -> Change {
        Change {
            key: object.key.clone(),
            before: None,
            after: Some(object),
        }
    }

    #[test]
    fn an_owner_may_have_up_to_the_most_it_ever_asked_for() {
        let mut ledger = ReplicaSetLedger::new(3);
        assert_eq!(ledger.observe(&created(owner(2, 4))), None);
        let scaled_down = Change {
            key: ObjectKey::new("ns/obj-1"),
            before: Some(owner(2, 4)),
            after: Some(owner(1, 4)),
        };
        assert_eq!(ledger.observe(&scaled_down), None);
        assert_eq!(ledger.observe(&created(owned("ns/obj-1-g1", 4))), None);
        assert_eq!(ledger.observe(&created(owned("ns/obj-1-g2", 4))), None);
        let third = ledger
            .observe(&created(owned("ns/obj-1-g3", 4)))
            .expect("a third is more than 2");
        assert_eq!(third.invariant, Invariant::OwnedWithinAllowed);
        let other_incarnation = ledger.observe(&created(owned("ns/obj-1-g4", 7)));
        assert!(other_incarnation.is_some(), "uid 7 never asked for any");
    }

    /// Enqueues every added object's key; reconciles nothing.
    struct Enqueuer;

    impl crate::controller::EventHandler for Enqueuer {
        fn on_add(&mut self, object: &Object, queue: &mut crate::controller::Enqueue) {
            queue.add(object.key.clone());
        }
    }

    impl crate::controller::Reconciler for Enqueuer {
        fn reconcile(
            &mut self,
            _key: &ObjectKey,
            _lister: &crate::controller::Lister<'_>,
            _client: &mut crate::controller::Client<'_>,
        ) -> Result<(), crate::controller::ReconcileError> {
            Ok(())
        }
    }

    #[test]
    fn an_item_queued_while_in_processing_reaches_a_second_worker() {
        use crate::bug::{Bug, Bugs};
        use crate::client::Notification;
        use crate::sim::SimTime;
        let add = Notification::Add {
            obj: Object::bare("ns/a", 1),
            is_in_initial_list: false,
        };
        for (bugs, broken) in [
            (Bugs::NONE, None),
            (
                Bugs::new(Some(Bug::WorkqueueQueuesItemInProcessing)),
                Some(Invariant::WorkqueueOneItemOneWorker),
            ),
        ] {
            let mut runtime = ControllerRuntime::new(2, Box::new(Enqueuer), bugs);
            runtime.handle_notification(SimTime::ZERO, &add);
            runtime.take(0);
            runtime.handle_notification(SimTime::ZERO, &add);
            runtime.take(1);
            let found = check_workqueue(&runtime).map(|violation| violation.invariant);
            assert_eq!(found, broken, "{bugs:?}");
        }
    }

    #[test]
    fn a_deleted_owned_object_makes_room_again() {
        let mut ledger = ReplicaSetLedger::new(3);
        ledger.observe(&created(owner(1, 4)));
        assert_eq!(ledger.observe(&created(owned("ns/obj-1-g1", 4))), None);
        let deleted = Change {
            key: ObjectKey::new("ns/obj-1-g1"),
            before: Some(owned("ns/obj-1-g1", 4)),
            after: None,
        };
        assert_eq!(ledger.observe(&deleted), None);
        assert_eq!(ledger.observe(&created(owned("ns/obj-1-g2", 4))), None);
    }
}
