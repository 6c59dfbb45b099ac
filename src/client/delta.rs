//! Deltas: what a FIFO queues for the informer (client-go `tools/cache/delta_fifo.go` `Delta`,
//! `Deltas`, `DeltaType`, `DeletedFinalStateUnknown`; `ReplacedAllInfo` from `the_real_fifo.go`).
//!
//! A per-object delta carries either an object or a tombstone. The model only lets `Deleted`
//! carry a tombstone (the reflector never passes one to Add/Update, and Replace/Resync build
//! tombstones only for deletions), and a tombstone's `obj` is an [`Object`], so a doubly wrapped
//! tombstone (SPEC §8 B5) cannot be represented at all.

use std::fmt;

use crate::object::{Object, ObjectKey, ResourceVersion};

/// The kind of a [`Delta`] (client-go `DeltaType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeltaType {
    /// A watch ADDED event.
    Added,
    /// A watch MODIFIED event.
    Updated,
    /// A watch DELETED event, or a deletion a relist detected (then with a tombstone).
    Deleted,
    /// One object of a relist (`EmitDeltaTypeReplaced`).
    Replaced,
    /// A resync of one known object (also a relist item without `EmitDeltaTypeReplaced`).
    Sync,
    /// A whole relist, reconciled by the consumer (atomic `RealFIFO` only).
    ReplacedAll,
    /// A whole resync of the indexer (atomic `RealFIFO` only).
    SyncAll,
    /// A bookmark's resource version for the indexer (atomic `RealFIFO` only).
    Bookmark,
}

impl DeltaType {
    /// The name client-go gives the type (`"Added"`, `"ReplacedAll"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeltaType::Added => "Added",
            DeltaType::Updated => "Updated",
            DeltaType::Deleted => "Deleted",
            DeltaType::Replaced => "Replaced",
            DeltaType::Sync => "Sync",
            DeltaType::ReplacedAll => "ReplacedAll",
            DeltaType::SyncAll => "SyncAll",
            DeltaType::Bookmark => "Bookmark",
        }
    }
}

impl fmt::Display for DeltaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deletion whose final state the client did not see (client-go `DeletedFinalStateUnknown`):
/// `obj` is the newest state the client knew, possibly stale, possibly absent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DeletedFinalStateUnknown {
    /// The deleted object's key.
    pub key: ObjectKey,
    /// The last state the client knew, if any.
    pub obj: Option<Object>,
}

/// What a per-object delta carries: an object, or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DeltaObject {
    /// An object state.
    Object(Object),
    /// A deletion with an unknown final state.
    Tombstone(DeletedFinalStateUnknown),
}

impl DeltaObject {
    /// The key, unwrapping a tombstone (client-go `DeletionHandlingMetaNamespaceKeyFunc`).
    pub fn key(&self) -> &ObjectKey {
        match self {
            DeltaObject::Object(obj) => &obj.key,
            DeltaObject::Tombstone(tombstone) => &tombstone.key,
        }
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        matches!(self, DeltaObject::Tombstone(_))
    }

    /// The resource version the indexer takes from it: an object's, none for a tombstone
    /// (client-go `meta.Accessor` fails on `DeletedFinalStateUnknown`).
    pub fn resource_version(&self) -> Option<ResourceVersion> {
        match self {
            DeltaObject::Object(obj) => Some(obj.resource_version),
            DeltaObject::Tombstone(_) => None,
        }
    }

    /// The object state it carries, unwrapping a tombstone (which may carry none).
    pub fn state(&self) -> Option<&Object> {
        match self {
            DeltaObject::Object(obj) => Some(obj),
            DeltaObject::Tombstone(tombstone) => tombstone.obj.as_ref(),
        }
    }
}

impl fmt::Display for DeltaObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeltaObject::Object(obj) => write!(f, "{obj}"),
            DeltaObject::Tombstone(DeletedFinalStateUnknown {
                key,
                obj: Some(obj),
            }) => {
                write!(f, "DFSU({key}, {obj})")
            }
            DeltaObject::Tombstone(DeletedFinalStateUnknown { key, obj: None }) => {
                write!(f, "DFSU({key}, nil)")
            }
        }
    }
}

/// A whole relist for the consumer to reconcile (client-go `ReplacedAllInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplacedAllInfo {
    /// The list's resource version.
    pub resource_version: ResourceVersion,
    /// The listed objects, in list order.
    pub objects: Vec<Object>,
}

impl ReplacedAllInfo {
    /// The listed object with `key`. Lists come in key order, so a binary search finds it; a
    /// miss is confirmed by a scan, which keeps the answer right for any order.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        match self.objects.binary_search_by(|object| object.key.cmp(key)) {
            Ok(index) => Some(&self.objects[index]),
            Err(_) => self.objects.iter().find(|object| object.key == *key),
        }
    }
}

/// One change queued for the informer (client-go `Delta`), typed by what each kind carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Delta {
    /// [`DeltaType::Added`].
    Added(Object),
    /// [`DeltaType::Updated`].
    Updated(Object),
    /// [`DeltaType::Deleted`]: the final object, or a tombstone.
    Deleted(DeltaObject),
    /// [`DeltaType::Replaced`].
    Replaced(Object),
    /// [`DeltaType::Sync`].
    Sync(Object),
    /// [`DeltaType::ReplacedAll`].
    ReplacedAll(ReplacedAllInfo),
    /// [`DeltaType::SyncAll`].
    SyncAll,
    /// [`DeltaType::Bookmark`].
    Bookmark(ResourceVersion),
}

impl Delta {
    /// The delta's type.
    pub fn delta_type(&self) -> DeltaType {
        match self {
            Delta::Added(_) => DeltaType::Added,
            Delta::Updated(_) => DeltaType::Updated,
            Delta::Deleted(_) => DeltaType::Deleted,
            Delta::Replaced(_) => DeltaType::Replaced,
            Delta::Sync(_) => DeltaType::Sync,
            Delta::ReplacedAll(_) => DeltaType::ReplacedAll,
            Delta::SyncAll => DeltaType::SyncAll,
            Delta::Bookmark(_) => DeltaType::Bookmark,
        }
    }

    /// The object of a per-object delta as a [`DeltaObject`] reference; `None` for the
    /// whole-store deltas (`ReplacedAll`, `SyncAll`, `Bookmark`).
    pub fn object(&self) -> Option<DeltaObjectRef<'_>> {
        match self {
            Delta::Added(obj) | Delta::Updated(obj) | Delta::Replaced(obj) | Delta::Sync(obj) => {
                Some(DeltaObjectRef::Object(obj))
            }
            Delta::Deleted(DeltaObject::Object(obj)) => Some(DeltaObjectRef::Object(obj)),
            Delta::Deleted(DeltaObject::Tombstone(tombstone)) => {
                Some(DeltaObjectRef::Tombstone(tombstone))
            }
            Delta::ReplacedAll(_) | Delta::SyncAll | Delta::Bookmark(_) => None,
        }
    }

    /// The key of a per-object delta (client-go `KeyOf`); `None` for whole-store deltas.
    pub fn key(&self) -> Option<&ObjectKey> {
        self.object().map(|obj| match obj {
            DeltaObjectRef::Object(obj) => &obj.key,
            DeltaObjectRef::Tombstone(tombstone) => &tombstone.key,
        })
    }

    /// Checks the invariant `tombstone_shares_the_key`: a tombstone's object, if any, has the
    /// tombstone's key.
    pub fn check_tombstone_key(&self) -> Result<(), String> {
        match self.object() {
            Some(DeltaObjectRef::Tombstone(DeletedFinalStateUnknown {
                key,
                obj: Some(obj),
            })) if *key != obj.key => Err(format!("tombstone_shares_the_key: {key} holds {obj}")),
            _ => Ok(()),
        }
    }

    /// What the state of `key` is once this delta is applied: `None` if the delta does not
    /// touch `key` (another key's delta, `SyncAll`, `Bookmark`), `Some(None)` if it removes it
    /// (a `Deleted`, or a `ReplacedAll` without it), else `Some(Some(object))`.
    pub fn state_of(&self, key: &ObjectKey) -> Option<Option<&Object>> {
        match self {
            Delta::ReplacedAll(info) => Some(info.get(key)),
            Delta::SyncAll | Delta::Bookmark(_) => None,
            Delta::Deleted(_) => (self.key() == Some(key)).then_some(None),
            Delta::Added(obj) | Delta::Updated(obj) | Delta::Replaced(obj) | Delta::Sync(obj) => {
                (obj.key == *key).then_some(Some(obj))
            }
        }
    }

    /// The newest object state the delta tells of, unwrapping a tombstone (used for the
    /// tombstones a relist builds, SPEC §4.2 Replace step 2).
    pub fn newest_state(&self) -> Option<&Object> {
        self.object().and_then(|obj| match obj {
            DeltaObjectRef::Object(obj) => Some(obj),
            DeltaObjectRef::Tombstone(tombstone) => tombstone.obj.as_ref(),
        })
    }
}

/// A borrowed view of a per-object delta's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaObjectRef<'a> {
    /// An object state.
    Object(&'a Object),
    /// A tombstone.
    Tombstone(&'a DeletedFinalStateUnknown),
}

/// The deltas of one pop, oldest first (client-go `Deltas`). A DeltaFIFO pop holds every
/// pending delta of one key; a RealFIFO pop holds exactly one delta.
pub type Deltas = Vec<Delta>;

/// Deltas as `[Added ns/a@5, Deleted DFSU(ns/b, nil)]`.
pub struct DeltaList<'a>(pub &'a [Delta]);

impl fmt::Display for DeltaList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (index, delta) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{delta}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Delta {
    /// `Added ns/a@5`, `Deleted DFSU(ns/b, nil)`, `ReplacedAll("9", [ns/a@5])`, `SyncAll`,
    /// `Bookmark("9")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delta::ReplacedAll(info) => {
                write!(f, "ReplacedAll(\"{}\", [", info.resource_version)?;
                for (index, object) in info.objects.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{object}")?;
                }
                f.write_str("])")
            }
            Delta::SyncAll => f.write_str("SyncAll"),
            Delta::Bookmark(resource_version) => write!(f, "Bookmark(\"{resource_version}\")"),
            Delta::Deleted(object) => write!(f, "Deleted {object}"),
            Delta::Added(object)
            | Delta::Updated(object)
            | Delta::Replaced(object)
            | Delta::Sync(object) => write!(f, "{} {object}", self.delta_type()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstone_key_comes_from_the_tombstone_not_its_object() {
        let tombstone = DeletedFinalStateUnknown {
            key: ObjectKey::new("ns/a"),
            obj: None,
        };
        let delta = Delta::Deleted(DeltaObject::Tombstone(tombstone));
        assert_eq!(delta.key(), Some(&ObjectKey::new("ns/a")));
        assert_eq!(delta.newest_state(), None);
        assert_eq!(delta.delta_type(), DeltaType::Deleted);
    }

    #[test]
    fn newest_state_unwraps_a_tombstone_object() {
        let obj = Object::bare("ns/a", 7);
        let tombstone = DeletedFinalStateUnknown {
            key: ObjectKey::new("ns/a"),
            obj: Some(obj.clone()),
        };
        let delta = Delta::Deleted(DeltaObject::Tombstone(tombstone));
        assert_eq!(delta.newest_state(), Some(&obj));
        assert_eq!(Delta::Replaced(obj.clone()).newest_state(), Some(&obj));
    }

    #[test]
    fn whole_store_deltas_have_no_key() {
        let info = ReplacedAllInfo {
            resource_version: 5,
            objects: vec![],
        };
        assert_eq!(Delta::ReplacedAll(info).key(), None);
        assert_eq!(Delta::SyncAll.key(), None);
        assert_eq!(Delta::Bookmark(9).delta_type().as_str(), "Bookmark");
    }
}
