//! States of the simulated resource as the checks compare them: etcd's, read from the
//! [`ResourceHistory`] and selected as a client's requests select, and a client's, keyed by
//! object key.

use std::collections::{BTreeMap, BTreeSet};

use super::resource::{ResourceHistory, Selection};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// Why history at `revision` cannot be read, if it cannot: it is older than what the ground
/// truth still holds. The truth keeps every revision a correct apiserver may still serve and
/// every position a client or a stream holds (the checker's low water), so a client, stream or
/// answer at such a revision went back past all of them.
pub fn below_horizon(resource: &ResourceHistory, revision: ResourceVersion) -> Option<String> {
    let horizon = resource.oldest_readable();
    (revision < horizon).then(|| {
        format!(
            "RV {revision} is older than every state an apiserver may still serve and every \
             position the clients and streams hold (from {horizon})"
        )
    })
}

/// etcd's state of the resource at `revision` (at most the newest), as `selection` selects it.
pub fn etcd_state(
    resource: &ResourceHistory,
    revision: ResourceVersion,
    selection: &Selection,
) -> BTreeMap<ObjectKey, Object> {
    resource
        .selected_at(revision.min(resource.revision()), selection, None)
        .map(|object| (object.key.clone(), object.clone()))
        .collect()
}

/// Compares two key spaces, naming the first difference.
pub fn first_difference(
    got: &BTreeMap<ObjectKey, Object>,
    want: &BTreeMap<ObjectKey, Object>,
) -> Option<String> {
    let keys = got.keys().chain(want.keys()).collect::<BTreeSet<_>>();
    keys.into_iter()
        .find_map(|key| describe_difference(key, got.get(key), want.get(key)))
}

/// How `got` differs from etcd's `want` for `key`, if it does.
pub fn describe_difference(
    key: &ObjectKey,
    got: Option<&Object>,
    want: Option<&Object>,
) -> Option<String> {
    match (got, want) {
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => Some(format!(
            "{key}: has {a} (value {}), etcd {b} (value {})",
            a.value, b.value
        )),
        (Some(a), None) => Some(format!("{key}: has {a}, etcd has no such key")),
        (None, Some(b)) => Some(format!("{key}: missing, etcd has {b}")),
        (None, None) => None,
    }
}

/// `objects` keyed by their keys (an indexer's or a list's objects as a comparable state).
pub fn by_key<'a>(objects: impl IntoIterator<Item = &'a Object>) -> BTreeMap<ObjectKey, Object> {
    objects
        .into_iter()
        .map(|object| (object.key.clone(), object.clone()))
        .collect()
}

/// Below this many objects a comparison walks the whole key space: cheap, and it also catches
/// a change to a key nothing said was touched.
pub const FULL_COMPARE_SIZE: usize = 256;

/// A client-side key space a check compares with etcd's.
pub trait KeySpace {
    /// The object held for `key`.
    fn object(&self, key: &ObjectKey) -> Option<&Object>;
    /// Every object, keyed.
    fn objects(&self) -> BTreeMap<ObjectKey, Object>;
    /// How many objects.
    fn size(&self) -> usize;
}

impl KeySpace for BTreeMap<ObjectKey, Object> {
    fn object(&self, key: &ObjectKey) -> Option<&Object> {
        self.get(key)
    }

    fn objects(&self) -> BTreeMap<ObjectKey, Object> {
        self.clone()
    }

    fn size(&self) -> usize {
        self.len()
    }
}

impl KeySpace for crate::client::Indexer {
    fn object(&self, key: &ObjectKey) -> Option<&Object> {
        self.get_by_key(key)
    }

    fn objects(&self) -> BTreeMap<ObjectKey, Object> {
        by_key(self.list())
    }

    fn size(&self) -> usize {
        self.len()
    }
}

/// Compares a client-side key space with etcd's (selected) state at a moving revision without
/// walking it whole each time: after a full comparison at revision A, one at B looks only at
/// the keys the client changed since (as [`IncrementalCompare::touch`] was told) and the keys
/// etcd changed between A and B. Below [`FULL_COMPARE_SIZE`] objects it always walks the
/// whole.
#[derive(Clone, Debug, Default)]
pub struct IncrementalCompare {
    /// The revision of the last comparison, while the touched keys are all that changed.
    at: Option<ResourceVersion>,
    touched: BTreeSet<ObjectKey>,
}

impl IncrementalCompare {
    /// The client changed `key`.
    pub fn touch(&mut self, key: &ObjectKey) {
        if self.at.is_some() {
            self.touched.insert(key.clone());
        }
    }

    /// The client may have changed every key: the next comparison walks the whole.
    pub fn touch_all(&mut self) {
        self.at = None;
        self.touched.clear();
    }

    /// The revision of the last comparison, while it still stands for the untouched keys.
    pub fn compared_at(&self) -> Option<ResourceVersion> {
        self.at
    }

    /// The first key where `client` differs from etcd's state at `revision` as `selection`
    /// selects it, described.
    pub fn first_difference(
        &mut self,
        resource: &ResourceHistory,
        selection: &Selection,
        revision: ResourceVersion,
        client: &impl KeySpace,
    ) -> Option<String> {
        let revision = revision.min(resource.revision());
        if let Some(why) = below_horizon(resource, revision) {
            return Some(why);
        }
        let small = client.size() <= FULL_COMPARE_SIZE && resource.keys_held() <= FULL_COMPARE_SIZE;
        let difference = match self.at {
            Some(at) if !small && at >= resource.oldest_readable() => {
                let (early, late) = (at.min(revision), at.max(revision));
                let changed = resource
                    .changes_between(early, late)
                    .map(|(_, change)| &change.key);
                let keys: BTreeSet<&ObjectKey> = self.touched.iter().chain(changed).collect();
                keys.into_iter().find_map(|key| {
                    let etcd = selection.filter(resource.get_at(key, revision.max(1)));
                    describe_difference(key, client.object(key), etcd)
                })
            }
            _ => first_difference(
                &client.objects(),
                &etcd_state(resource, revision, selection),
            ),
        };
        self.at = Some(revision);
        self.touched.clear();
        difference
    }
}
