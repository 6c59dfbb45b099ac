//! Client-side invariants (SPEC §9.1, §9.3 items 4, 5 and 7).
//!
//! - The reflector's view (the state its store calls describe) equals etcd's state at its
//!   last synced RV whenever that RV is set: the safe-point oracle of B11, and B16.
//! - Per key, the RV the indexer holds never goes back within one process (P2; B6, B24).
//! - Every object the client holds existed in etcd's history (P2).
//! - Across restarts of one client identity, no key's RV goes back (B1): an upstream hazard
//!   with RV="0" initial lists served by a lagging cache, not a guarantee.
//! - At quiescence the indexer equals etcd's state (P1; B2, B4, B7).

use super::catalog::Invariant;
use std::collections::{BTreeMap, BTreeSet};

use super::resource::{ResourceHistory, Selection};
use crate::client::{
    Delta, DeltaObject, HandlerSynced, Indexer, Notification, PopWait, SharedIndexInformer, Stopped,
};
use crate::object::{Object, ObjectKey, ResourceVersion};

use super::state::{IncrementalCompare, by_key, describe_difference, first_difference};
use super::violation::Violation;

/// P3 (SPEC §9.1): at delivery, the indexer already reflects the notified state or a later
/// one. Add/update: the key is held at a resource version at least the notified one, or is
/// absent (deleted since). Delete: the key is absent, or held at a newer resource version
/// (re-created); a tombstone without an object says nothing to compare.
pub fn check_notification_follows_cache(
    indexer: &Indexer,
    notification: &Notification,
) -> Result<(), Violation> {
    let (key, notified) = match notification {
        Notification::Add { obj, .. } | Notification::Update { new: obj, .. } => {
            (&obj.key, obj.resource_version)
        }
        Notification::Delete(DeltaObject::Object(obj)) => (&obj.key, obj.resource_version),
        Notification::Delete(DeltaObject::Tombstone(tombstone)) => match &tombstone.obj {
            Some(obj) => (&tombstone.key, obj.resource_version),
            None => return Ok(()),
        },
    };
    let Some(cached) = indexer.get_by_key(key) else {
        return Ok(());
    };
    let follows = if matches!(notification, Notification::Delete(_)) {
        cached.resource_version > notified
    } else {
        cached.resource_version >= notified
    };
    if follows {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::NotificationFollowsCacheUpdate,
        format!("{key}@{notified} notified while the indexer holds {cached}"),
    ))
}

/// B3 (SPEC §8 B3, §9.1 P1): at quiescence a handler's mirror equals the indexer, key for key
/// and object for object.
pub fn check_mirror_equals_indexer(
    mirror: &BTreeMap<ObjectKey, Object>,
    indexer: &Indexer,
) -> Result<(), Violation> {
    let cached = indexer.list();
    let keys: BTreeSet<&ObjectKey> = mirror
        .keys()
        .chain(cached.iter().map(|obj| &obj.key))
        .collect();
    for key in keys {
        let in_mirror = mirror.get(key);
        let in_indexer = indexer.get_by_key(key);
        if in_mirror != in_indexer {
            let show = |obj: Option<&Object>| obj.map_or("absent".to_owned(), Object::to_string);
            return Err(Violation::new(
                Invariant::HandlerMirrorEqualsIndexer,
                format!(
                    "{key} is {} in the mirror but {} in the indexer",
                    show(in_mirror),
                    show(in_indexer)
                ),
            ));
        }
    }
    Ok(())
}

/// B5 (SPEC §8 B5): a queued tombstone carries the newest state the client knew for its key
/// when it was built, the key's previous queued state or else the indexer's (client-go
/// delta_fifo.go Replace since cg@a01b5a2a9).
pub fn check_tombstones(informer: &SharedIndexInformer) -> Result<(), Violation> {
    let indexer = informer.indexer();
    let mut known: BTreeMap<&ObjectKey, Option<&Object>> = BTreeMap::new();
    for delta in informer.fifo().pending().into_iter().flatten() {
        let Some(key) = delta.key() else {
            continue;
        };
        let newest = *known.entry(key).or_insert_with(|| indexer.get_by_key(key));
        check_tombstone(key, delta, newest)?;
        known.insert(key, delta.newest_state());
    }
    Ok(())
}

/// [`check_tombstones`] for one key. O(log n + the key's queued deltas).
pub fn check_tombstones_for(
    informer: &SharedIndexInformer,
    key: &ObjectKey,
) -> Result<(), Violation> {
    let mut newest = informer.indexer().get_by_key(key);
    for delta in informer.fifo().queued_for(key) {
        check_tombstone(key, delta, newest)?;
        newest = match delta.key() {
            Some(_) => delta.newest_state(),
            None => delta.state_of(key).unwrap_or(newest),
        };
    }
    Ok(())
}

/// A queued `delta` of `key`, after a queued or indexed `newest` state: if a tombstone, it
/// carries that state.
fn check_tombstone(
    key: &ObjectKey,
    delta: &Delta,
    newest: Option<&Object>,
) -> Result<(), Violation> {
    let Delta::Deleted(DeltaObject::Tombstone(tombstone)) = delta else {
        return Ok(());
    };
    if tombstone.obj.as_ref() == newest {
        return Ok(());
    }
    let show = |obj: Option<&Object>| obj.map_or("nil".to_owned(), Object::to_string);
    Err(Violation::new(
        Invariant::TombstoneCarriesNewestKnownState,
        format!(
            "DFSU({key}, {}) but the newest known state is {}",
            show(tombstone.obj.as_ref()),
            show(newest)
        ),
    ))
}

/// B20 (SPEC §8 B20): when a registration first reports synced, its handler has been notified
/// of every key of its initial list.
pub fn check_initial_list_seen(synced: &HandlerSynced) -> Result<(), Violation> {
    let unseen = &synced.initial_list_unseen;
    match unseen.first() {
        None => Ok(()),
        Some(first) => Err(Violation::new(
            Invariant::HandlerSyncedAfterInitialList,
            format!(
                "synced before seeing {first} ({} of the initial list unseen)",
                unseen.len()
            ),
        )),
    }
}

/// B28 (SPEC §8 B28): when a client process stops, its closed FIFO wakes the Pop waiting on
/// the empty queue, so processLoop returns.
pub fn check_closed_fifo_wakes_pop(stopped: Stopped) -> Result<(), Violation> {
    if stopped.after != PopWait::Waiting {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::ClosedFifoWakesPop,
        format!(
            "Pop still waits on the closed FIFO (it was {:?} at Close)",
            stopped.at_close
        ),
    ))
}

/// The reflector's view: the state its `Replace/Add/Update/Delete` calls describe.
#[derive(Clone, Debug, Default)]
pub struct ReflectorView {
    objects: BTreeMap<ObjectKey, Object>,
    /// The safe-point comparison, kept incremental.
    safe_point: IncrementalCompare,
}

impl ReflectorView {
    /// `store.Replace`.
    pub fn replace(&mut self, items: &[Object]) {
        self.objects = by_key(items);
        self.safe_point.touch_all();
    }

    /// `store.Add` / `store.Update`.
    pub fn put(&mut self, object: &Object) {
        self.objects.insert(object.key.clone(), object.clone());
        self.safe_point.touch(&object.key);
    }

    /// `store.Delete`.
    pub fn delete(&mut self, key: &ObjectKey) {
        self.objects.remove(key);
        self.safe_point.touch(key);
    }

    /// The revision the safe point was last checked at, while it stands (what the ground
    /// truth must still hold history from).
    pub fn safe_point_checked_at(&self) -> Option<ResourceVersion> {
        self.safe_point.compared_at()
    }

    /// Checks one key of [`ReflectorView::check_pending_state`]: what the informer will hold
    /// for `key` once its queue drains is this view's object.
    pub fn check_pending_for(
        &self,
        key: &ObjectKey,
        informer: &SharedIndexInformer,
    ) -> Result<(), Violation> {
        match describe_difference(key, informer.pending_for(key), self.objects.get(key)) {
            None => Ok(()),
            Some(difference) => Err(Violation::new(
                Invariant::QueueAppliedEqualsReflectorView,
                format!("indexer plus queue vs reflector: {difference}"),
            )),
        }
    }

    /// Checks that `pending` (the informer's indexer once its queue drains) is this view.
    pub fn check_pending_state(
        &self,
        pending: &BTreeMap<&ObjectKey, &Object>,
    ) -> Result<(), Violation> {
        let same = pending.len() == self.objects.len()
            && pending
                .iter()
                .zip(&self.objects)
                .all(|((key, obj), (view_key, view_obj))| *key == view_key && *obj == view_obj);
        if same {
            return Ok(());
        }
        let pending = pending
            .iter()
            .map(|(key, obj)| ((*key).clone(), (*obj).clone()))
            .collect();
        match first_difference(&pending, &self.objects) {
            None => Ok(()),
            Some(difference) => Err(Violation::new(
                Invariant::QueueAppliedEqualsReflectorView,
                format!("indexer plus queue vs reflector: {difference}"),
            )),
        }
    }

    /// Checks the safe point: the view is etcd's state at `last_sync` (incrementally: see
    /// [`IncrementalCompare`]).
    pub fn check_safe_point(
        &mut self,
        resource: &ResourceHistory,
        selection: &Selection,
        last_sync: ResourceVersion,
    ) -> Result<(), Violation> {
        let difference =
            self.safe_point
                .first_difference(resource, selection, last_sync, &self.objects);
        match difference {
            None => Ok(()),
            Some(difference) => Err(Violation::new(
                Invariant::ReflectorLastSyncRvIsASafePoint,
                format!("at last sync RV {last_sync}: {difference}"),
            )),
        }
    }
}

/// Per-key RV bookkeeping for one client identity.
#[derive(Clone, Debug, Default)]
pub struct RvHistory {
    /// The highest RV this process wrote into its indexer, per key.
    process_max: BTreeMap<ObjectKey, ResourceVersion>,
    /// The highest RV any earlier incarnation of the client saw, per key (persisted).
    persisted_max: BTreeMap<ObjectKey, ResourceVersion>,
}

impl RvHistory {
    /// The process restarts: what it saw becomes the persisted record.
    pub fn restart(&mut self) {
        for (key, resource_version) in std::mem::take(&mut self.process_max) {
            let persisted = self.persisted_max.entry(key).or_default();
            *persisted = (*persisted).max(resource_version);
        }
    }

    /// Checks and records an object the indexer now holds. The within-process check is an
    /// invariant; the cross-restart one is the B1 hazard, reported under its own name.
    pub fn observe(
        &mut self,
        resource: &ResourceHistory,
        object: &Object,
    ) -> Result<(), Violation> {
        // Below the history the ground truth still holds, only a state still live at its
        // horizon can be confirmed; an older one (a client far behind) is not judged.
        let horizon = resource.oldest_readable();
        let revision = object.resource_version.clamp(horizon, resource.revision());
        let stored = resource.get_at(&object.key, revision.max(1));
        let judged = object.resource_version >= horizon
            || stored.is_some_and(|stored| stored.resource_version == object.resource_version);
        if judged && stored != Some(object) {
            return Err(Violation::new(
                Invariant::IndexerObjectsExistedInEtcd,
                format!("{object} (value {}) was never in etcd", object.value),
            ));
        }
        let seen = self.process_max.entry(object.key.clone()).or_default();
        if object.resource_version < *seen {
            return Err(Violation::new(
                Invariant::IndexerRvNeverDecreases,
                format!(
                    "{} went back from RV {seen} to {}",
                    object.key, object.resource_version
                ),
            ));
        }
        *seen = object.resource_version;
        if let Some(persisted) = self.persisted_max.get(&object.key)
            && object.resource_version < *persisted
        {
            return Err(Violation::new(
                Invariant::NoTimeTravelAcrossRestarts,
                format!(
                    "{} is back at RV {} after an earlier incarnation saw {persisted}",
                    object.key, object.resource_version
                ),
            ));
        }
        Ok(())
    }

    /// A relist replaced the process's view with `objects`: each is checked as
    /// [`RvHistory::observe`] does, except that a key taken back to an older RV is
    /// `no_time_travel_on_relist`; then the process's record is the relisted state.
    pub fn observe_relisted(
        &mut self,
        resource: &ResourceHistory,
        objects: &[Object],
    ) -> Vec<Violation> {
        let found = objects
            .iter()
            .filter_map(|object| {
                let mut violation = self.observe(resource, object).err()?;
                if violation.invariant == Invariant::IndexerRvNeverDecreases {
                    violation.invariant = Invariant::NoTimeTravelOnRelist;
                }
                Some(violation)
            })
            .collect();
        self.process_max = objects
            .iter()
            .map(|object| (object.key.clone(), object.resource_version))
            .collect();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::truth::GroundTruth;
    use crate::etcd::{Op, TxnRequest};

    const PREFIX: &str = "/registry/pods/";

    fn write(reference: &mut GroundTruth, name: &str, value: u64) {
        let put = Op::Put {
            key: format!("{PREFIX}{name}"),
            value: Object::encode_body(&BTreeMap::new(), value),
            prev_kv: false,
        };
        reference
            .txn(&TxnRequest {
                compare: vec![],
                success: vec![put],
                failure: vec![],
            })
            .unwrap();
    }

    fn resource(reference: &GroundTruth) -> ResourceHistory {
        ResourceHistory::from_truth(PREFIX, reference)
    }

    fn object(reference: &GroundTruth, name: &str, revision: ResourceVersion) -> Object {
        let resource = resource(reference);
        resource
            .get_at(&ObjectKey::new(name), revision)
            .expect("exists")
            .clone()
    }

    #[test]
    fn safe_point_fails_when_the_view_misses_an_event_below_the_rv() {
        let mut reference = GroundTruth::default();
        write(&mut reference, "ns/a", 1);
        write(&mut reference, "ns/b", 1);
        let mut view = ReflectorView::default();
        view.put(&object(&reference, "ns/b", 3));
        assert!(
            view.check_safe_point(&resource(&reference), &Selection::ALL, 3)
                .is_err(),
            "ns/a@2 was skipped"
        );
        view.put(&object(&reference, "ns/a", 2));
        assert!(
            view.check_safe_point(&resource(&reference), &Selection::ALL, 3)
                .is_ok()
        );
    }

    #[test]
    fn rv_going_back_within_a_process_is_a_violation_and_across_restarts_a_hazard() {
        let mut reference = GroundTruth::default();
        write(&mut reference, "ns/a", 1);
        write(&mut reference, "ns/a", 2);
        let (old, new) = (object(&reference, "ns/a", 2), object(&reference, "ns/a", 3));
        let mut history = RvHistory::default();
        history.observe(&resource(&reference), &new).unwrap();
        assert_eq!(
            history
                .observe(&resource(&reference), &old)
                .unwrap_err()
                .invariant,
            Invariant::IndexerRvNeverDecreases
        );
        history.restart();
        assert_eq!(
            history
                .observe(&resource(&reference), &old)
                .unwrap_err()
                .invariant,
            Invariant::NoTimeTravelAcrossRestarts
        );
    }

    #[test]
    fn an_object_etcd_never_had_is_a_violation() {
        let mut reference = GroundTruth::default();
        write(&mut reference, "ns/a", 1);
        let mut forged = object(&reference, "ns/a", 2);
        forged.value = 99;
        let error = RvHistory::default()
            .observe(&resource(&reference), &forged)
            .unwrap_err();
        assert_eq!(error.invariant, Invariant::IndexerObjectsExistedInEtcd);
    }
}
