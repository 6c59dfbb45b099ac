//! Assumption checks: properties users commonly assume of an informer but upstream does NOT
//! guarantee (SPEC §9.2 N2, N3, N4, N5, N7, N8).
//!
//! They are not promises. The world runs one only in a scenario that lists it in
//! `expected_hazards`, which shows a concrete seed where the assumption breaks; every other
//! scenario skips it (and so must not rely on it). The exception is N5, which atomic RealFIFO
//! does keep: it is also checked, as an invariant, in every atomic RealFIFO run. Each check
//! reads the ground-truth history of the reference etcd and what the client was handed, and
//! keeps no state of its own.

use super::catalog::Invariant;
use std::collections::{BTreeMap, BTreeSet};

use super::resource::{ResourceHistory, Selection};
use super::truth::GroundTruth;
use crate::api::{RequestId, ServerMessage, StatusReason, WatchEvent};
use crate::client::{Delta, DeltaObject, Notification};
use crate::object::{Object, ObjectKey, ResourceVersion};

use super::state::{by_key, etcd_state, first_difference};
use super::violation::Violation;

/// The revision at which etcd deleted `key` after `after`, if it did.
fn deletion_after(
    resource: &ResourceHistory,
    key: &ObjectKey,
    after: ResourceVersion,
) -> Option<ResourceVersion> {
    resource
        .changes_of(key, after + 1)
        .find(|(_, change)| change.after.is_none())
        .map(|(revision, _)| revision)
}

/// Assumed (N2): "I will see every delete as `OnDelete(obj)` with the object's final state".
/// NOT guaranteed: a delete that happens while the watch is down and is only noticed by a
/// relist reaches `OnDelete` as a `DeletedFinalStateUnknown` carrying the last *locally known*
/// state (possibly stale, possibly nil), and a delete plus re-create under the same name can
/// surface as `OnUpdate(old, new)` with different UIDs and no delete at all. Upstream:
/// delta_fifo.go `Replace` (tombstones for keys missing from a relist); shared_informer.go
/// `ResourceEventHandler` doc; typed `DeletedObject[T].OptionalObj` doc in controller.go.
pub fn check_delete_has_final_state(
    resource: &ResourceHistory,
    notification: &Notification,
) -> Result<(), Violation> {
    match notification {
        Notification::Delete(DeltaObject::Tombstone(tombstone)) => {
            let known = tombstone.obj.as_ref();
            let known_rv = known.map_or(0, |obj| obj.resource_version);
            let deleted_at = deletion_after(resource, &tombstone.key, known_rv)
                .map_or("never".to_owned(), |revision| format!("at RV {revision}"));
            Err(Violation::new(
                Invariant::EveryDeleteIsOnDeleteWithFinalState,
                format!(
                    "OnDelete({}) got DeletedFinalStateUnknown with {}; etcd deleted it {deleted_at}",
                    tombstone.key,
                    known.map_or("no object".to_owned(), |_| format!("stale RV {known_rv}")),
                ),
            ))
        }
        Notification::Update { old, new } if old.uid != new.uid => Err(Violation::new(
            Invariant::EveryDeleteIsOnDeleteWithFinalState,
            format!(
                "OnUpdate({}) from uid {} (RV {}) to uid {} (RV {}): deleted and re-created with no OnDelete",
                new.key, old.uid, old.resource_version, new.uid, new.resource_version
            ),
        )),
        _ => Ok(()),
    }
}

/// Assumed (N3): "a periodic resync repairs divergence from the server". NOT guaranteed: a
/// resync replays the indexer's *own* objects (`Sync` / `SyncAll` deltas), so after it the
/// resynced objects are exactly as stale (or leaked, or missing) as before; only a relist,
/// which needs a watch failure, re-reads the server. It breaks whenever a resync lands while
/// the watch lags etcd or the stream is silently stalled. Upstream: delta_fifo.go `Resync` /
/// `syncKeyLocked` (reads `knownObjects`), the_real_fifo.go `Resync`.
///
/// `deltas` are the ones just processed; `indexer` is the indexer after processing them.
pub fn check_resync_repairs(
    resource: &ResourceHistory,
    selection: &Selection,
    deltas: &[Delta],
    indexer: &BTreeMap<ObjectKey, Object>,
) -> Result<(), Violation> {
    let whole_store = deltas.iter().any(|delta| matches!(delta, Delta::SyncAll));
    let synced_key = deltas.iter().find_map(|delta| match delta {
        Delta::Sync(object) => Some(&object.key),
        _ => None,
    });
    if !whole_store && synced_key.is_none() {
        return Ok(());
    }
    let truth = etcd_state(resource, resource.revision(), selection);
    let (got, want) = match synced_key.filter(|_| !whole_store) {
        Some(key) => {
            let only = |map: &BTreeMap<ObjectKey, Object>| by_key(map.get(key));
            (only(indexer), only(&truth))
        }
        None => (indexer.clone(), truth),
    };
    match first_difference(&got, &want) {
        None => Ok(()),
        Some(difference) => Err(Violation::new(
            Invariant::ResyncRepairsDivergence,
            format!(
                "after a resync at etcd RV {}: {difference}",
                resource.revision()
            ),
        )),
    }
}

/// Assumed (N4): "`HasSynced()` means the cache is up to date". NOT guaranteed: it only means
/// the first list, served at *some* RV, has been popped into the indexer. An RV "0" list may
/// come from a lagging watch cache, and writes during the list and the pops are not in it
/// either; it never resets after a relist. Upstream: shared_informer.go `HasSynced` doc,
/// delta_fifo.go / the_real_fifo.go `HasSynced` (initial population count).
///
/// Called the first time the informer reports synced, with its indexer at that moment.
pub fn check_synced_up_to_date(
    resource: &ResourceHistory,
    selection: &Selection,
    indexer: &BTreeMap<ObjectKey, Object>,
) -> Result<(), Violation> {
    let truth = etcd_state(resource, resource.revision(), selection);
    match first_difference(indexer, &truth) {
        None => Ok(()),
        Some(difference) => Err(Violation::new(
            Invariant::SyncedMeansCacheUpToDate,
            format!(
                "first synced while etcd is at RV {}: {difference}",
                resource.revision()
            ),
        )),
    }
}

/// Whether some revision at or after `newest` (the indexer's newest object RV) has exactly
/// the indexer's state, given that the indexer agrees with etcd at `newest` on every key it
/// holds. `extra` are the keys etcd had at `newest` that the indexer lacks: later events of
/// other keys may remove them, and the first event of a key the indexer holds ends every
/// chance, since that key's RV would then be above `newest`.
fn reaches_indexer_state(
    resource: &ResourceHistory,
    selection: &Selection,
    indexer: &BTreeMap<ObjectKey, Object>,
    newest: ResourceVersion,
    mut extra: BTreeSet<ObjectKey>,
) -> bool {
    let mut changes = resource.changes_since(newest + 1);
    loop {
        if extra.is_empty() {
            return true;
        }
        let Some((_, change)) = changes.next() else {
            return false;
        };
        // The indexer agrees at `newest` on every key it holds: a later change of one of them
        // puts its RV above `newest`.
        if indexer.contains_key(&change.key) {
            return false;
        }
        if selection.filter(change.after.as_ref()).is_some() {
            extra.insert(change.key.clone());
        } else {
            extra.remove(&change.key);
        }
    }
}

/// Assumed (N5): "the lister shows a consistent snapshot across objects": the indexer equals
/// etcd's state at one single RV. NOT guaranteed with DeltaFIFO: it queues one entry per key
/// and pops all of a key's deltas at once, so a later event of one key is applied before an
/// earlier event of another, and a relist is applied key by key (SPEC §8 B23). Upstream:
/// delta_fifo.go doc (per-key compression, k/k#27984, PR #77636). Plain RealFIFO keeps the
/// event order (PR #129568) but still applies a relist key by key; atomic RealFIFO (PR
/// #136008, KEP-5647) applies a relist as one `ReplacedAll`, and with it this holds. The
/// state compared is what the client's `selection` selects.
pub fn check_lister_is_snapshot(
    resource: &ResourceHistory,
    selection: &Selection,
    indexer: &BTreeMap<ObjectKey, Object>,
) -> Result<(), Violation> {
    let newest = indexer
        .values()
        .map(|object| object.resource_version)
        .max()
        .unwrap_or(0);
    let at_newest = etcd_state(resource, newest.max(1), selection);
    let disagreement = indexer
        .iter()
        .find(|(key, object)| at_newest.get(key) != Some(object))
        .map(|(key, _)| key);
    let extra = at_newest
        .keys()
        .filter(|key| !indexer.contains_key(key))
        .cloned()
        .collect();
    if disagreement.is_none() && reaches_indexer_state(resource, selection, indexer, newest, extra)
    {
        return Ok(());
    }
    let difference = first_difference(indexer, &at_newest).unwrap_or_default();
    Err(Violation::new(
        Invariant::ListerIsASnapshotAtOneRv,
        format!("the indexer is etcd's state at no RV; at its newest RV {newest}: {difference}"),
    ))
}

/// Assumed (N7): "a cleanly closed watch means I am caught up". NOT guaranteed: the apiserver
/// closes streams without an error on its watch timeout, on slow-consumer termination, on a
/// cacher re-initialization and on shutdown, whatever the client has seen; only an event's or
/// bookmark's RV says how far the client is. Upstream: cache_watcher.go `add` (slow watcher
/// closed), cacher.go `terminateAllWatchers`, apiserver `MinRequestTimeout`; SPEC §8 B12.
///
/// `undelivered` is the first event of the watched range after the last RV the stream
/// delivered, if etcd has one.
pub fn check_closed_watch_caught_up(
    watch: impl std::fmt::Display,
    delivered: ResourceVersion,
    undelivered: Option<(ResourceVersion, WatchEvent)>,
) -> Result<(), Violation> {
    let Some((at, event)) = undelivered else {
        return Ok(());
    };
    let key = match &event {
        WatchEvent::Added(object) | WatchEvent::Modified(object) | WatchEvent::Deleted(object) => {
            object.key.to_string()
        }
        other => format!("{other:?}"),
    };
    Err(Violation::new(
        Invariant::ClosedWatchIsCaughtUp,
        format!(
            "watch {watch} closed cleanly after RV {delivered}, but etcd already has the event for {key} at RV {at}"
        ),
    ))
}

/// Assumed (N8): "a watch from RV N returns the events after N at any apiserver". NOT
/// guaranteed: each apiserver answers from its own watch cache, and one that was
/// re-initialized after N (a restart, a cacher re-init) or whose window no longer reaches N
/// answers 410 Gone, although etcd (compacted below N) could still serve the watch, and
/// another apiserver would. Upstream: watch_cache.go `getAllEventsSinceLocked`
/// (`TooOldResourceVersion`), cacher.go `Watch`; SPEC §2.5, §10 T5.
pub fn check_watch_served(
    reference: &GroundTruth,
    apiserver: usize,
    from: ResourceVersion,
) -> Result<(), Violation> {
    let compacted = reference.compact_revision();
    if from < compacted {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::WatchFromRetainedRvServedAnywhere,
        format!(
            "apiserver-{apiserver} answered 410 Gone to a watch from RV {from}, which etcd (compacted at {compacted}, now at {}) still serves",
            reference.revision()
        ),
    ))
}

/// The watch a 410 Gone answers, in either form: a refused watch or an ERROR event.
pub fn expired_watch(message: &ServerMessage) -> Option<RequestId> {
    match message {
        ServerMessage::WatchRejected { id, error } if error.is_expired() => Some(*id),
        ServerMessage::WatchEvent {
            id,
            event: WatchEvent::Error(status),
        } if status.reason == StatusReason::Expired => Some(*id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DeletedFinalStateUnknown;
    use crate::etcd::{KeyRange, Op, TxnRequest};

    const PREFIX: &str = "/registry/pods/";

    fn txn(reference: &mut GroundTruth, op: Op) {
        let request = TxnRequest {
            compare: vec![],
            success: vec![op],
            failure: vec![],
        };
        reference.txn(&request).unwrap();
    }

    fn put(reference: &mut GroundTruth, name: &str, value: u64) {
        let op = Op::Put {
            key: format!("{PREFIX}{name}"),
            value: Object::encode_body(&BTreeMap::new(), value),
            prev_kv: false,
        };
        txn(reference, op);
    }

    fn delete(reference: &mut GroundTruth, name: &str) {
        let op = Op::DeleteRange {
            range: KeyRange::single(&format!("{PREFIX}{name}")),
            prev_kv: false,
        };
        txn(reference, op);
    }

    fn state(reference: &GroundTruth, revision: ResourceVersion) -> BTreeMap<ObjectKey, Object> {
        etcd_state(&resource(reference), revision, &Selection::ALL)
    }

    fn resource(reference: &GroundTruth) -> ResourceHistory {
        ResourceHistory::from_truth(PREFIX, reference)
    }

    /// a@2, b@3, b deleted @4, a@5.
    fn history() -> GroundTruth {
        let mut reference = GroundTruth::default();
        put(&mut reference, "ns/a", 1);
        put(&mut reference, "ns/b", 2);
        delete(&mut reference, "ns/b");
        put(&mut reference, "ns/a", 3);
        reference
    }

    #[test]
    fn a_lagging_indexer_is_a_snapshot_and_a_reordered_one_is_not() {
        let reference = history();
        for revision in 1..=5 {
            let indexer = state(&reference, revision);
            assert!(
                check_lister_is_snapshot(&resource(&reference), &Selection::ALL, &indexer).is_ok()
            );
        }
        let mut reordered = state(&reference, 3);
        reordered.insert(
            ObjectKey::new("ns/a"),
            state(&reference, 5)[&ObjectKey::new("ns/a")].clone(),
        );
        let error = check_lister_is_snapshot(&resource(&reference), &Selection::ALL, &reordered)
            .unwrap_err();
        assert_eq!(error.invariant, Invariant::ListerIsASnapshotAtOneRv);
    }

    #[test]
    fn a_snapshot_may_be_after_deletes_following_its_newest_object() {
        let mut reference = GroundTruth::default();
        put(&mut reference, "ns/a", 1);
        put(&mut reference, "ns/b", 2);
        put(&mut reference, "ns/c", 3);
        delete(&mut reference, "ns/c");
        delete(&mut reference, "ns/a");
        let indexer = state(&reference, 6);
        assert_eq!(indexer.len(), 1, "only b@3 is left");
        assert!(check_lister_is_snapshot(&resource(&reference), &Selection::ALL, &indexer).is_ok());
    }

    #[test]
    fn a_tombstone_and_an_update_across_uids_break_the_delete_assumption() {
        let reference = history();
        let b = state(&reference, 3)[&ObjectKey::new("ns/b")].clone();
        let tombstone = Notification::Delete(DeltaObject::Tombstone(DeletedFinalStateUnknown {
            key: b.key.clone(),
            obj: Some(b.clone()),
        }));
        let error = check_delete_has_final_state(&resource(&reference), &tombstone).unwrap_err();
        assert!(
            error
                .message
                .contains("stale RV 3; etcd deleted it at RV 4"),
            "{error}"
        );
        let final_state = Notification::Delete(DeltaObject::Object(b.with_resource_version(4)));
        assert!(check_delete_has_final_state(&resource(&reference), &final_state).is_ok());
        let recreated = Object {
            uid: 9,
            ..b.clone()
        };
        let update = Notification::Update {
            old: b,
            new: recreated,
        };
        assert!(check_delete_has_final_state(&resource(&reference), &update).is_err());
    }

    #[test]
    fn a_resync_of_a_stale_object_is_reported_and_of_a_fresh_one_not() {
        let reference = history();
        let stale = state(&reference, 4);
        let fresh = state(&reference, 5);
        let sync = |indexer: &BTreeMap<ObjectKey, Object>| {
            [Delta::Sync(indexer[&ObjectKey::new("ns/a")].clone())]
        };
        assert!(
            check_resync_repairs(
                &resource(&reference),
                &Selection::ALL,
                &sync(&stale),
                &stale
            )
            .is_err()
        );
        assert!(
            check_resync_repairs(
                &resource(&reference),
                &Selection::ALL,
                &sync(&fresh),
                &fresh
            )
            .is_ok()
        );
        assert!(
            check_resync_repairs(
                &resource(&reference),
                &Selection::ALL,
                &[Delta::SyncAll],
                &stale
            )
            .is_err()
        );
    }

    #[test]
    fn a_410_is_a_hazard_only_for_an_rv_etcd_retains() {
        let mut reference = history();
        assert!(check_watch_served(&reference, 0, 2).is_err());
        reference.compact(4).unwrap();
        assert!(check_watch_served(&reference, 0, 2).is_ok());
        assert!(check_watch_served(&reference, 0, 4).is_err());
    }
}
