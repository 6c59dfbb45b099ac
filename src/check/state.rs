//! States of the simulated resource as the checks compare them: etcd's, decoded from the
//! ground truth with the checks' own decoding (not the apiserver's storage layer), and a
//! client's, keyed by object key.

use std::collections::BTreeMap;

use super::truth::GroundTruth;
use crate::etcd::{KeyRange, KeyValue};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// The object an etcd key-value under `prefix` holds, or `None` for a key outside the prefix
/// or a value that does not decode (which no check compares).
pub fn decode(prefix: &str, kv: &KeyValue) -> Option<Object> {
    let key = kv.key.strip_prefix(prefix)?;
    Object::decode(key, kv.mod_revision, kv.create_revision, &kv.value).ok()
}

/// etcd's state of the resource at `revision`, decoded.
pub fn etcd_state(
    reference: &GroundTruth,
    prefix: &str,
    revision: ResourceVersion,
) -> BTreeMap<ObjectKey, Object> {
    reference
        .state_at(
            &KeyRange::prefix(prefix),
            revision.min(reference.revision()),
        )
        .filter_map(|kv| decode(prefix, kv))
        .map(|object| (object.key.clone(), object))
        .collect()
}

/// Compares two key spaces, naming the first difference.
pub fn first_difference(
    got: &BTreeMap<ObjectKey, Object>,
    want: &BTreeMap<ObjectKey, Object>,
) -> Option<String> {
    let keys = got
        .keys()
        .chain(want.keys())
        .collect::<std::collections::BTreeSet<_>>();
    keys.into_iter()
        .find_map(|key| match (got.get(key), want.get(key)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!(
                "{key}: has {a} (value {}), etcd {b} (value {})",
                a.value, b.value
            )),
            (Some(a), None) => Some(format!("{key}: has {a}, etcd has no such key")),
            (None, Some(b)) => Some(format!("{key}: missing, etcd has {b}")),
            (None, None) => None,
        })
}

/// `objects` keyed by their keys (an indexer's or a list's objects as a comparable state).
pub fn by_key<'a>(objects: impl IntoIterator<Item = &'a Object>) -> BTreeMap<ObjectKey, Object> {
    objects
        .into_iter()
        .map(|object| (object.key.clone(), object.clone()))
        .collect()
}
