//! Applying popped deltas to the indexer (client-go `tools/cache/controller.go processDeltas`,
//! `processReplacedAllInfo`; SPEC §5.1). The handler calls that follow are returned as data, in
//! the order the informer would make them, after the indexer was updated.
//!
//! Rules:
//! - for `Sync`, `Replaced`, `Added`, `Updated`, **presence in the indexer** decides between
//!   update (`Update{old, new}`) and add, not the delta type;
//! - `Deleted` removes the key (a no-op when absent) and **always** notifies;
//! - `ReplacedAll` reconciles against the indexer in key order, replaces the indexer in one
//!   step, then notifies the deletions, then the adds/updates in list order;
//! - `SyncAll` notifies `Update{o, o}` for every indexer object in key order;
//! - `Bookmark` only sets the indexer's resource version.

use std::collections::BTreeSet;

use crate::client::delta::{DeletedFinalStateUnknown, Delta, DeltaObject, ReplacedAllInfo};
use crate::client::indexer::{Indexer, Transaction};
use crate::object::{Object, ObjectKey};

/// A handler call (client-go `ResourceEventHandler` `OnAdd`, `OnUpdate`, `OnDelete`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Notification {
    /// `OnAdd(obj, isInInitialList)`.
    Add {
        /// The added object.
        obj: Object,
        /// Whether it came with the initial list.
        is_in_initial_list: bool,
    },
    /// `OnUpdate(old, new)`.
    Update {
        /// The indexer's object before.
        old: Object,
        /// The new object.
        new: Object,
    },
    /// `OnDelete(obj)`: the final object or a tombstone.
    Delete(DeltaObject),
}

/// Whether an update notification is a sync: the resource version did not change (client-go
/// shared_informer.go `OnUpdate`, cg@54928eef9).
pub fn is_sync(old: &Object, new: &Object) -> bool {
    old.resource_version == new.resource_version
}

/// Applies `deltas`, oldest first, to `indexer` and returns the handler calls (client-go
/// `processDeltas`).
pub fn process_deltas(
    indexer: &mut Indexer,
    deltas: &[Delta],
    is_in_initial_list: bool,
) -> Vec<Notification> {
    let mut notifications = Vec::new();
    for delta in deltas {
        match delta {
            Delta::Sync(obj) | Delta::Replaced(obj) | Delta::Added(obj) | Delta::Updated(obj) => {
                notifications.push(add_or_update(indexer, obj, is_in_initial_list));
            }
            Delta::Deleted(obj) => {
                indexer.delete_with_object(obj.key(), obj.resource_version());
                notifications.push(Notification::Delete(obj.clone()));
            }
            Delta::ReplacedAll(info) => {
                notifications.extend(process_replaced_all_info(indexer, info, is_in_initial_list));
            }
            Delta::SyncAll => {
                let objects = indexer.list().into_iter();
                notifications.extend(objects.map(|obj| Notification::Update {
                    old: obj.clone(),
                    new: obj.clone(),
                }));
            }
            Delta::Bookmark(resource_version) => indexer.bookmark(*resource_version),
        }
    }
    notifications
}

/// Mirrors client-go controller.go processDeltas: update if the indexer has the key, else add.
fn add_or_update(indexer: &mut Indexer, obj: &Object, is_in_initial_list: bool) -> Notification {
    let notification = match indexer.get_by_key(&obj.key) {
        Some(old) => Notification::Update {
            old: old.clone(),
            new: obj.clone(),
        },
        None => Notification::Add {
            obj: obj.clone(),
            is_in_initial_list,
        },
    };
    indexer.update(obj.clone());
    notification
}

/// Applies a batch from `PopBatch` (one delta per key, no whole-store delta) to `indexer` as
/// one transaction, then returns the handler calls (client-go controller.go
/// `processDeltasInBatch`): each call's old state is the one before the batch, and a handler
/// sees the indexer with the whole batch applied.
pub fn process_deltas_in_batch(
    indexer: &mut Indexer,
    deltas: &[Delta],
    is_in_initial_list: bool,
) -> Vec<Notification> {
    if deltas.len() == 1 {
        return process_deltas(indexer, deltas, is_in_initial_list);
    }
    let mut transactions = Vec::with_capacity(deltas.len());
    let mut notifications = Vec::with_capacity(deltas.len());
    for delta in deltas {
        match delta {
            Delta::Sync(obj) | Delta::Replaced(obj) | Delta::Added(obj) | Delta::Updated(obj) => {
                let notification = match indexer.get_by_key(&obj.key) {
                    Some(old) => {
                        transactions.push(Transaction::Update(obj.clone()));
                        Notification::Update {
                            old: old.clone(),
                            new: obj.clone(),
                        }
                    }
                    None => {
                        transactions.push(Transaction::Add(obj.clone()));
                        Notification::Add {
                            obj: obj.clone(),
                            is_in_initial_list,
                        }
                    }
                };
                notifications.push(notification);
            }
            Delta::Deleted(obj) => {
                transactions.push(Transaction::Delete(
                    obj.key().clone(),
                    obj.resource_version(),
                ));
                notifications.push(Notification::Delete(obj.clone()));
            }
            delta => panic!("{delta} cannot be in a batch"),
        }
    }
    indexer.transaction(transactions);
    notifications
}

/// Mirrors client-go controller.go processReplacedAllInfo: tombstones for indexer keys missing
/// from the list (key order), old states looked up before one atomic `Replace`, then deletions
/// first and adds/updates in list order.
fn process_replaced_all_info(
    indexer: &mut Indexer,
    info: &ReplacedAllInfo,
    is_in_initial_list: bool,
) -> Vec<Notification> {
    let listed: BTreeSet<&ObjectKey> = info.objects.iter().map(|obj| &obj.key).collect();
    let deletions: Vec<Notification> = indexer
        .list()
        .into_iter()
        .filter(|obj| !listed.contains(&obj.key))
        .map(|obj| {
            let tombstone = DeletedFinalStateUnknown {
                key: obj.key.clone(),
                obj: Some(obj.clone()),
            };
            Notification::Delete(DeltaObject::Tombstone(tombstone))
        })
        .collect();
    let replacements: Vec<Notification> = info
        .objects
        .iter()
        .map(|obj| match indexer.get_by_key(&obj.key) {
            Some(old) => Notification::Update {
                old: old.clone(),
                new: obj.clone(),
            },
            None => Notification::Add {
                obj: obj.clone(),
                is_in_initial_list,
            },
        })
        .collect();
    indexer.replace(info.objects.clone(), info.resource_version);
    assert_eq!(indexer.len(), listed.len());
    deletions.into_iter().chain(replacements).collect()
}

impl std::fmt::Display for Notification {
    /// A handler call as client-go names it: `OnAdd(ns/a@5, isInInitialList=true)`,
    /// `OnUpdate(ns/a@5 -> ns/a@7)`, `OnDelete(ns/a@9)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notification::Add {
                obj,
                is_in_initial_list,
            } => write!(f, "OnAdd({obj}, isInInitialList={is_in_initial_list})"),
            Notification::Update { old, new } => write!(f, "OnUpdate({old} -> {new})"),
            Notification::Delete(object) => write!(f, "OnDelete({object})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, resource_version: u64) -> Object {
        Object::bare(key, resource_version)
    }

    fn add(key: &str, resource_version: u64, is_in_initial_list: bool) -> Notification {
        Notification::Add {
            obj: obj(key, resource_version),
            is_in_initial_list,
        }
    }

    fn update(key: &str, old: u64, new: u64) -> Notification {
        Notification::Update {
            old: obj(key, old),
            new: obj(key, new),
        }
    }

    #[test]
    fn presence_in_the_indexer_not_the_delta_type_decides_add_or_update() {
        let mut indexer = Indexer::default();
        indexer.add(obj("known", 1));
        let deltas = vec![
            Delta::Updated(obj("unknown", 2)),
            Delta::Added(obj("known", 3)),
        ];
        let notifications = process_deltas(&mut indexer, &deltas, false);
        assert_eq!(
            notifications,
            vec![add("unknown", 2, false), update("known", 1, 3)]
        );
        assert_eq!(
            indexer.get_by_key(&ObjectKey::new("known")),
            Some(&obj("known", 3))
        );
    }

    #[test]
    fn deleted_always_notifies_even_for_an_absent_key() {
        let mut indexer = Indexer::default();
        let ghost = DeltaObject::Object(obj("ghost", 4));
        let notifications = process_deltas(&mut indexer, &[Delta::Deleted(ghost.clone())], false);
        assert_eq!(notifications, vec![Notification::Delete(ghost)]);
        assert!(indexer.is_empty());
    }

    #[test]
    fn deleted_then_updated_in_one_pop_gives_delete_then_add() {
        let mut indexer = Indexer::default();
        indexer.add(obj("x", 1));
        let deleted = DeltaObject::Object(obj("x", 2));
        let deltas = vec![Delta::Deleted(deleted.clone()), Delta::Updated(obj("x", 3))];
        let notifications = process_deltas(&mut indexer, &deltas, false);
        assert_eq!(
            notifications,
            vec![Notification::Delete(deleted), add("x", 3, false)]
        );
    }

    #[test]
    fn a_relisted_unchanged_object_gives_a_sync_update() {
        let mut indexer = Indexer::default();
        indexer.add(obj("o", 12));
        let notifications = process_deltas(&mut indexer, &[Delta::Replaced(obj("o", 12))], false);
        assert_eq!(notifications, vec![update("o", 12, 12)]);
        assert!(is_sync(&obj("o", 12), &obj("o", 12)));
        assert!(!is_sync(&obj("o", 12), &obj("o", 13)));
    }

    #[test]
    fn replaced_all_notifies_deletions_in_key_order_then_list_order_after_replacing() {
        let mut indexer = Indexer::default();
        for (key, resource_version) in [("d2", 1), ("d1", 1), ("kept", 1)] {
            indexer.add(obj(key, resource_version));
        }
        let info = ReplacedAllInfo {
            resource_version: 9,
            objects: vec![obj("new", 9), obj("kept", 8)],
        };
        let notifications = process_deltas(&mut indexer, &[Delta::ReplacedAll(info)], true);
        let tombstone = |key: &str| {
            let dfsu = DeletedFinalStateUnknown {
                key: ObjectKey::new(key),
                obj: Some(obj(key, 1)),
            };
            Notification::Delete(DeltaObject::Tombstone(dfsu))
        };
        let expected = vec![
            tombstone("d1"),
            tombstone("d2"),
            add("new", 9, true),
            update("kept", 1, 8),
        ];
        assert_eq!(notifications, expected);
        assert_eq!(
            indexer.list_keys(),
            vec![ObjectKey::new("kept"), ObjectKey::new("new")]
        );
        assert_eq!(indexer.last_store_sync_resource_version(), Some(9));
    }

    #[test]
    fn sync_all_updates_every_indexer_object_with_itself_in_key_order() {
        let mut indexer = Indexer::default();
        indexer.add(obj("b", 2));
        indexer.add(obj("a", 1));
        let notifications = process_deltas(&mut indexer, &[Delta::SyncAll], false);
        assert_eq!(notifications, vec![update("a", 1, 1), update("b", 2, 2)]);
    }

    #[test]
    fn bookmark_sets_the_indexer_resource_version_without_notifying() {
        let mut indexer = Indexer::default();
        let notifications = process_deltas(&mut indexer, &[Delta::Bookmark(77)], false);
        assert!(notifications.is_empty());
        assert_eq!(indexer.last_store_sync_resource_version(), Some(77));
    }
}
