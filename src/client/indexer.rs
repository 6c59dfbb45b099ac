//! The informer's local cache with secondary indexes (client-go `tools/cache/thread_safe_store.go`
//! `threadSafeMap`, `index.go`, `store.go` `cache`).
//!
//! Items live in a `BTreeMap`, so every listing is in key order and runs are deterministic. An
//! index function maps an object to 0, 1 or several index values; `indices[name][value]` is the
//! set of keys whose object yields `value`. The contract (SPEC §6) is the **index invariant**:
//! for every index and value, the set equals the keys whose object yields that value, and no set
//! is empty. [`Indexer::check_index_invariant`] recomputes it from the items.
//!
//! ```
//! use informer_sim::client::indexer::{Indexer, NAMESPACE_INDEX};
//! use informer_sim::object::Object;
//!
//! let mut indexer = Indexer::default();
//! indexer.add(Object::bare("ns1/a", 3));
//! indexer.add(Object::bare("ns2/b", 4));
//! let keys = indexer.index_keys(NAMESPACE_INDEX, "ns1").unwrap();
//! assert_eq!(keys.len(), 1);
//! assert!(indexer.check_index_invariant().is_ok());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::bug::{Bug, Bugs};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// Maps an object to its index values (client-go `IndexFunc`; errors are not modelled).
pub type IndexFunc = fn(&Object) -> Vec<String>;

/// The namespace index's name (client-go `NamespaceIndex`).
pub const NAMESPACE_INDEX: &str = "namespace";
/// The index of the `app` label.
pub const APP_LABEL_INDEX: &str = "app";
/// The index of every `name=value` label pair.
pub const LABEL_PAIRS_INDEX: &str = "labels";

/// The namespace, `""` when cluster-scoped (client-go `MetaNamespaceIndexFunc`): one value.
pub fn meta_namespace_index_func(obj: &Object) -> Vec<String> {
    vec![obj.key.namespace().to_owned()]
}

/// The `app` label's value: no value when the label is unset, else one.
pub fn app_label_index_func(obj: &Object) -> Vec<String> {
    obj.label("app").map(str::to_owned).into_iter().collect()
}

/// Every label as `name=value`: any number of values (the shape that exposed SPEC §8 B8).
pub fn label_pairs_index_func(obj: &Object) -> Vec<String> {
    obj.labels
        .iter()
        .map(|(name, value)| [name.as_str(), "=", value.as_str()].concat())
        .collect()
}

/// What a FIFO reads from the informer's store (client-go `KeyListerGetter`).
pub trait KnownObjects {
    /// Every known key, in key order (client-go iterates a Go map; SPEC §4.3 fixes key order).
    fn list_keys(&self) -> Vec<ObjectKey>;
    /// The known object for `key`.
    fn get_by_key(&self, key: &ObjectKey) -> Option<&Object>;
}

/// No known objects: a FIFO built without `knownObjects`. For DeltaFIFO this is exactly the
/// same as a nil `knownObjects`: Delete filters on the queue alone, Replace detects deletions
/// from the queue alone, Resync queues nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoKnownObjects;

impl KnownObjects for NoKnownObjects {
    fn list_keys(&self) -> Vec<ObjectKey> {
        Vec::new()
    }

    fn get_by_key(&self, _key: &ObjectKey) -> Option<&Object> {
        None
    }
}

/// Why an indexer call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexerError {
    /// No index of that name exists.
    #[error("index with name {0} does not exist")]
    UnknownIndex(String),
    /// `add_indexers` named an index that already exists.
    #[error("indexer conflict: {0}")]
    IndexerConflict(String),
}

/// One operation of an [`Indexer::transaction`] (client-go `Transaction`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// Add (same as update).
    Add(Object),
    /// Update (same as add).
    Update(Object),
    /// Delete by key, with the deleted object's resource version (`None` for a tombstone).
    Delete(ObjectKey, Option<ResourceVersion>),
}

/// index value -> keys.
type Index = BTreeMap<String, BTreeSet<ObjectKey>>;

/// The informer's store: items, named indexes and the last synced resource version.
#[derive(Clone, Debug)]
pub struct Indexer {
    items: BTreeMap<ObjectKey, Object>,
    indexers: BTreeMap<String, IndexFunc>,
    indices: BTreeMap<String, Index>,
    resource_version: Option<ResourceVersion>,
    /// Planted bugs (SPEC §8 B8).
    bugs: Bugs,
}

impl Default for Indexer {
    /// [`Indexer::new`] with no bug planted.
    fn default() -> Indexer {
        Indexer::new(Bugs::NONE)
    }
}

impl Indexer {
    /// An empty indexer with the built-in indexes (namespace, `app` label, label pairs) and
    /// `bugs` planted.
    pub fn new(bugs: Bugs) -> Indexer {
        let mut indexer = Indexer::with_indexers(&[], bugs);
        indexer
            .add_indexers(&[
                (NAMESPACE_INDEX, meta_namespace_index_func),
                (APP_LABEL_INDEX, app_label_index_func),
                (LABEL_PAIRS_INDEX, label_pairs_index_func),
            ])
            .expect("built-in index names are distinct");
        indexer
    }

    /// An empty indexer with exactly `indexers` and `bugs` planted.
    pub fn with_indexers(indexers: &[(&str, IndexFunc)], bugs: Bugs) -> Indexer {
        let mut indexer = Indexer {
            items: BTreeMap::new(),
            indexers: BTreeMap::new(),
            indices: BTreeMap::new(),
            resource_version: None,
            bugs,
        };
        indexer
            .add_indexers(indexers)
            .expect("indexer names must be distinct");
        indexer
    }

    /// Stores `obj` under its key and updates every index (client-go `threadSafeMap.Add`).
    pub fn add(&mut self, obj: Object) {
        self.resource_version = Some(obj.resource_version);
        let key = obj.key.clone();
        let old = self.items.insert(key.clone(), obj);
        let new = self.items.get(&key);
        update_indices(
            self.bugs,
            &self.indexers,
            &mut self.indices,
            old.as_ref(),
            new,
            &key,
        );
    }

    /// Same as [`Indexer::add`] (client-go `threadSafeMap.Update`).
    pub fn update(&mut self, obj: Object) {
        self.add(obj);
    }

    /// Removes `key` and its index entries; a no-op when absent (client-go
    /// `threadSafeMap.Delete`).
    pub fn delete(&mut self, key: &ObjectKey) {
        if let Some(old) = self.items.remove(key) {
            update_indices(
                self.bugs,
                &self.indexers,
                &mut self.indices,
                Some(&old),
                None,
                key,
            );
        }
        assert!(!self.items.contains_key(key));
    }

    /// Removes `key` as [`Indexer::delete`] does and, for a deleted object (not a tombstone,
    /// which carries no resource version of its own), takes its resource version (client-go
    /// `threadSafeMap.DeleteWithObject`).
    pub fn delete_with_object(
        &mut self,
        key: &ObjectKey,
        resource_version: Option<ResourceVersion>,
    ) {
        self.delete(key);
        if let Some(resource_version) = resource_version {
            self.resource_version = Some(resource_version);
        }
    }

    /// Swaps in `list` as the whole content, rebuilds every index from scratch and sets the
    /// resource version (client-go `threadSafeMap.Replace`).
    pub fn replace(&mut self, list: Vec<Object>, resource_version: ResourceVersion) {
        self.items = list.into_iter().map(|obj| (obj.key.clone(), obj)).collect();
        self.indices.values_mut().for_each(Index::clear);
        for (key, obj) in &self.items {
            update_indices(
                self.bugs,
                &self.indexers,
                &mut self.indices,
                None,
                Some(obj),
                key,
            );
        }
        self.resource_version = Some(resource_version);
    }

    /// Applies `transactions` in order as one step; the resource version becomes the last
    /// transaction's object's, and stays as it was when that object is a tombstone (client-go
    /// `threadSafeMap.Transaction` reads it from the final object only).
    pub fn transaction(&mut self, transactions: Vec<Transaction>) {
        let previous = self.resource_version;
        let last = match transactions.last() {
            Some(Transaction::Add(obj) | Transaction::Update(obj)) => Some(obj.resource_version),
            Some(Transaction::Delete(_, resource_version)) => *resource_version,
            None => return,
        };
        for transaction in transactions {
            match transaction {
                Transaction::Add(obj) | Transaction::Update(obj) => self.add(obj),
                Transaction::Delete(key, _) => self.delete(&key),
            }
        }
        self.resource_version = last.or(previous);
    }

    /// Records a bookmark's resource version (client-go `threadSafeMap.Bookmark`).
    pub fn bookmark(&mut self, resource_version: ResourceVersion) {
        self.resource_version = Some(resource_version);
    }

    /// The resource version of the last write, replace or bookmark (client-go
    /// `LastStoreSyncResourceVersion`).
    pub fn last_store_sync_resource_version(&self) -> Option<ResourceVersion> {
        self.resource_version
    }

    /// Adds index functions and indexes the existing items at once (client-go
    /// `threadSafeMap.AddIndexers`, k/k#117046). A name already in use is an error and adds
    /// nothing.
    pub fn add_indexers(&mut self, indexers: &[(&str, IndexFunc)]) -> Result<(), IndexerError> {
        let mut names = BTreeSet::new();
        for (name, _) in indexers {
            if self.indexers.contains_key(*name) || !names.insert(*name) {
                return Err(IndexerError::IndexerConflict((*name).to_owned()));
            }
        }
        for (name, index_func) in indexers {
            let index = self.indices.entry((*name).to_owned()).or_default();
            for (key, obj) in &self.items {
                for value in index_func(obj) {
                    index.entry(value).or_default().insert(key.clone());
                }
            }
            self.indexers.insert((*name).to_owned(), *index_func);
        }
        Ok(())
    }

    /// The object stored under `key`.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<&Object> {
        self.items.get(key)
    }

    /// Every key, in key order.
    pub fn list_keys(&self) -> Vec<ObjectKey> {
        self.items.keys().cloned().collect()
    }

    /// Every object, in key order.
    pub fn list(&self) -> Vec<&Object> {
        self.items.values().collect()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The objects whose `index_name` values include `value`, in key order (client-go
    /// `ByIndex`).
    pub fn by_index(&self, index_name: &str, value: &str) -> Result<Vec<&Object>, IndexerError> {
        let keys = self.index_keys(index_name, value)?;
        Ok(keys.iter().map(|key| &self.items[key]).collect())
    }

    /// The sorted keys whose `index_name` values include `value` (client-go `IndexKeys`).
    pub fn index_keys(
        &self,
        index_name: &str,
        value: &str,
    ) -> Result<Vec<ObjectKey>, IndexerError> {
        let index = self.index_named(index_name)?;
        Ok(index
            .get(value)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// The values of `index_name` that have at least one key (client-go `ListIndexFuncValues`).
    pub fn list_index_func_values(&self, index_name: &str) -> Result<Vec<String>, IndexerError> {
        let index = self.index_named(index_name)?;
        Ok(index.keys().cloned().collect())
    }

    /// The objects sharing any `index_name` value with `obj`, in key order (client-go `Index`).
    pub fn index(&self, index_name: &str, obj: &Object) -> Result<Vec<&Object>, IndexerError> {
        let index_func = self.index_func_named(index_name)?;
        let index = self.index_named(index_name)?;
        let keys: BTreeSet<&ObjectKey> = index_func(obj)
            .iter()
            .filter_map(|value| index.get(value))
            .flatten()
            .collect();
        Ok(keys.into_iter().map(|key| &self.items[key]).collect())
    }

    /// Recomputes every index from the items and compares (SPEC §6 index invariant): each set
    /// equals the keys whose object yields the value, and no set is empty.
    pub fn check_index_invariant(&self) -> Result<(), String> {
        for (name, index_func) in &self.indexers {
            let mut expected: Index = BTreeMap::new();
            for (key, obj) in &self.items {
                for value in index_func(obj) {
                    expected.entry(value).or_default().insert(key.clone());
                }
            }
            let actual = self
                .indices
                .get(name)
                .ok_or_else(|| format!("index {name} missing"))?;
            if let Some((value, _)) = actual.iter().find(|(_, keys)| keys.is_empty()) {
                return Err(format!("index {name}: empty set kept for value {value:?}"));
            }
            if *actual != expected {
                return Err(format!(
                    "index {name}: have {actual:?}, items give {expected:?}"
                ));
            }
        }
        if self.indices.len() != self.indexers.len() {
            return Err(format!(
                "{} indices for {} indexers",
                self.indices.len(),
                self.indexers.len()
            ));
        }
        Ok(())
    }

    /// The part of [`Indexer::check_index_invariant`] about one key: for every index and every
    /// value that its current item or any of `seen` (states it had) gives, the key is indexed
    /// under the value exactly when its current item gives it, and no such value keeps an
    /// empty set. O(indexes × values × log n), not O(n).
    pub fn check_key_index_invariant<'a>(
        &self,
        key: &ObjectKey,
        seen: impl IntoIterator<Item = &'a Object>,
    ) -> Result<(), String> {
        let seen: Vec<&Object> = seen.into_iter().collect();
        let current = self.items.get(key);
        for (name, index_func) in &self.indexers {
            let index = self
                .indices
                .get(name)
                .ok_or_else(|| format!("index {name} missing"))?;
            let expected: BTreeSet<String> = current
                .map(index_func)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let candidates = seen
                .iter()
                .flat_map(|object| index_func(object))
                .chain(expected.iter().cloned());
            for value in candidates.collect::<BTreeSet<String>>() {
                let keys = index.get(&value);
                if keys.is_some_and(BTreeSet::is_empty) {
                    return Err(format!("index {name}: empty set kept for value {value:?}"));
                }
                let indexed = keys.is_some_and(|keys| keys.contains(key));
                if indexed != expected.contains(&value) {
                    return Err(format!(
                        "index {name}: {key} indexed under {value:?} is {indexed}, its item says {}",
                        expected.contains(&value)
                    ));
                }
            }
        }
        Ok(())
    }

    fn index_named(&self, index_name: &str) -> Result<&Index, IndexerError> {
        self.indices
            .get(index_name)
            .ok_or_else(|| IndexerError::UnknownIndex(index_name.to_owned()))
    }

    fn index_func_named(&self, index_name: &str) -> Result<IndexFunc, IndexerError> {
        self.indexers
            .get(index_name)
            .copied()
            .ok_or_else(|| IndexerError::UnknownIndex(index_name.to_owned()))
    }
}

impl KnownObjects for Indexer {
    fn list_keys(&self) -> Vec<ObjectKey> {
        Indexer::list_keys(self)
    }

    fn get_by_key(&self, key: &ObjectKey) -> Option<&Object> {
        Indexer::get_by_key(self, key)
    }
}

/// Moves `key` from `old`'s index values to `new`'s in every index (client-go `updateIndices`).
fn update_indices(
    bugs: Bugs,
    indexers: &BTreeMap<String, IndexFunc>,
    indices: &mut BTreeMap<String, Index>,
    old: Option<&Object>,
    new: Option<&Object>,
    key: &ObjectKey,
) {
    for (name, index_func) in indexers {
        let index = match indices.get_mut(name) {
            Some(index) => index,
            None => indices.entry(name.clone()).or_default(),
        };
        update_single_index(bugs, *index_func, index, old, new, key);
    }
}

/// Mirrors client-go thread_safe_store.go updateSingleIndex: skip only when old and new give the
/// same single value; otherwise remove the key from every old value (dropping emptied sets),
/// then add it to every new value (the order PR #109137 restored, SPEC §8 B8).
fn update_single_index(
    bugs: Bugs,
    index_func: IndexFunc,
    index: &mut Index,
    old: Option<&Object>,
    new: Option<&Object>,
    key: &ObjectKey,
) {
    let old_values = old.map(index_func).unwrap_or_default();
    let new_values = new.map(index_func).unwrap_or_default();
    if old_values.len() == 1 && new_values.len() == 1 && old_values[0] == new_values[0] {
        return;
    }
    for value in &old_values {
        if let Some(keys) = index.get_mut(value) {
            keys.remove(key);
            if keys.is_empty() {
                index.remove(value);
            }
        }
    }
    for value in new_values {
        if bugs.is(Bug::IndexerLosesValueOnGrowth)
            && old_values.len() == 1
            && old_values[0] == value
        {
            // Planted: k/k#109115 (B8), the value just removed above is not added back.
            continue;
        }
        index.entry(value).or_default().insert(key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(key: &str, resource_version: ResourceVersion, labels: &[(&str, &str)]) -> Object {
        let mut obj = Object::bare(key, resource_version);
        for (name, value) in labels {
            std::sync::Arc::make_mut(&mut obj.labels)
                .insert((*name).to_owned(), (*value).to_owned());
        }
        obj
    }

    fn keys(keys: &[&str]) -> Vec<ObjectKey> {
        keys.iter().map(|key| ObjectKey::new(key)).collect()
    }

    #[test]
    fn planted_b8_loses_the_first_value_when_values_grow() {
        let mut indexer = Indexer::with_indexers(
            &[(LABEL_PAIRS_INDEX, label_pairs_index_func)],
            Bugs::new(Some(Bug::IndexerLosesValueOnGrowth)),
        );
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.update(labelled("ns/a", 2, &[("app", "x"), ("tier", "y")]));
        assert!(indexer.check_index_invariant().is_err());
    }

    #[test]
    fn growing_from_one_index_value_to_two_keeps_the_first_value() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.update(labelled("ns/a", 2, &[("app", "x"), ("tier", "y")]));
        assert_eq!(
            indexer.index_keys(LABEL_PAIRS_INDEX, "app=x").unwrap(),
            keys(&["ns/a"])
        );
        assert_eq!(
            indexer.index_keys(LABEL_PAIRS_INDEX, "tier=y").unwrap(),
            keys(&["ns/a"])
        );
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn update_removes_the_key_from_values_it_no_longer_has_and_drops_empty_sets() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.update(labelled("ns/a", 2, &[("app", "z")]));
        assert_eq!(
            indexer.list_index_func_values(APP_LABEL_INDEX).unwrap(),
            vec!["z"]
        );
        assert!(indexer.index_keys(APP_LABEL_INDEX, "x").unwrap().is_empty());
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn an_index_func_may_return_no_value() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.update(Object::bare("ns/a", 2));
        assert!(
            indexer
                .list_index_func_values(APP_LABEL_INDEX)
                .unwrap()
                .is_empty()
        );
        assert!(
            indexer
                .list_index_func_values(LABEL_PAIRS_INDEX)
                .unwrap()
                .is_empty()
        );
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn delete_removes_the_item_and_its_index_entries() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.add(Object::bare("ns/b", 2));
        indexer.delete(&ObjectKey::new("ns/a"));
        indexer.delete(&ObjectKey::new("ns/absent"));
        assert_eq!(indexer.list_keys(), keys(&["ns/b"]));
        assert!(
            indexer
                .list_index_func_values(APP_LABEL_INDEX)
                .unwrap()
                .is_empty()
        );
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn replace_rebuilds_every_index_and_sets_the_resource_version() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer.replace(vec![labelled("other/b", 5, &[("app", "y")])], 9);
        assert_eq!(
            indexer.list_index_func_values(NAMESPACE_INDEX).unwrap(),
            vec!["other"]
        );
        assert_eq!(
            indexer.index_keys(APP_LABEL_INDEX, "y").unwrap(),
            keys(&["other/b"])
        );
        assert_eq!(indexer.last_store_sync_resource_version(), Some(9));
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn by_index_and_index_answer_from_the_same_sets() {
        let mut indexer = Indexer::default();
        indexer.add(Object::bare("ns/b", 2));
        indexer.add(Object::bare("ns/a", 1));
        indexer.add(Object::bare("cluster", 3));
        let in_ns: Vec<String> = indexer
            .by_index(NAMESPACE_INDEX, "ns")
            .unwrap()
            .iter()
            .map(|obj| obj.to_string())
            .collect();
        assert_eq!(in_ns, vec!["ns/a@1", "ns/b@2"]);
        let probe = Object::bare("ns/zzz", 0);
        assert_eq!(indexer.index(NAMESPACE_INDEX, &probe).unwrap().len(), 2);
        assert_eq!(
            indexer.index_keys(NAMESPACE_INDEX, "").unwrap(),
            keys(&["cluster"])
        );
    }

    #[test]
    fn an_unknown_index_name_is_an_error() {
        let indexer = Indexer::default();
        let error = IndexerError::UnknownIndex("nope".to_owned());
        assert_eq!(indexer.index_keys("nope", "x"), Err(error.clone()));
        assert_eq!(indexer.list_index_func_values("nope"), Err(error.clone()));
        assert_eq!(
            indexer
                .index("nope", &Object::bare("a", 1))
                .map(|objs| objs.len()),
            Err(error)
        );
    }

    #[test]
    fn add_indexers_indexes_existing_items_and_rejects_conflicts() {
        let mut indexer = Indexer::with_indexers(&[], Bugs::NONE);
        indexer.add(labelled("ns/a", 1, &[("app", "x")]));
        indexer
            .add_indexers(&[(APP_LABEL_INDEX, app_label_index_func)])
            .unwrap();
        assert_eq!(
            indexer.index_keys(APP_LABEL_INDEX, "x").unwrap(),
            keys(&["ns/a"])
        );
        let conflict = indexer.add_indexers(&[(APP_LABEL_INDEX, app_label_index_func)]);
        assert_eq!(
            conflict,
            Err(IndexerError::IndexerConflict(APP_LABEL_INDEX.to_owned()))
        );
        assert_eq!(indexer.check_index_invariant(), Ok(()));
    }

    #[test]
    fn transaction_applies_in_order_and_takes_the_final_objects_resource_version() {
        let mut indexer = Indexer::default();
        indexer.transaction(vec![
            Transaction::Add(Object::bare("ns/a", 4)),
            Transaction::Update(Object::bare("ns/b", 6)),
            Transaction::Delete(ObjectKey::new("ns/a"), None),
        ]);
        assert_eq!(indexer.list_keys(), keys(&["ns/b"]));
        assert_eq!(
            indexer.last_store_sync_resource_version(),
            None,
            "a final tombstone leaves the resource version as it was"
        );
        indexer.transaction(vec![
            Transaction::Add(Object::bare("ns/c", 8)),
            Transaction::Delete(ObjectKey::new("ns/b"), Some(9)),
        ]);
        assert_eq!(indexer.list_keys(), keys(&["ns/c"]));
        assert_eq!(indexer.last_store_sync_resource_version(), Some(9));
    }

    #[test]
    fn a_delete_takes_the_deleted_object_s_resource_version_but_not_a_tombstone_s() {
        let mut indexer = Indexer::default();
        indexer.add(Object::bare("ns/a", 4));
        indexer.add(Object::bare("ns/b", 5));
        indexer.delete_with_object(&ObjectKey::new("ns/a"), Some(9));
        assert_eq!(indexer.last_store_sync_resource_version(), Some(9));
        indexer.delete_with_object(&ObjectKey::new("ns/b"), None);
        assert_eq!(indexer.last_store_sync_resource_version(), Some(9));
        assert_eq!(indexer.len(), 0);
    }

    #[test]
    fn bookmark_sets_only_the_resource_version() {
        let mut indexer = Indexer::default();
        indexer.add(Object::bare("ns/a", 4));
        indexer.bookmark(40);
        assert_eq!(indexer.last_store_sync_resource_version(), Some(40));
        assert_eq!(indexer.len(), 1);
    }

    #[test]
    fn the_invariant_check_catches_a_lost_index_entry() {
        let mut indexer = Indexer::default();
        indexer.add(labelled("ns/a", 1, &[("app", "x"), ("tier", "y")]));
        let pairs = indexer.indices.get_mut(LABEL_PAIRS_INDEX).unwrap();
        pairs.remove("app=x");
        assert!(
            indexer
                .check_index_invariant()
                .unwrap_err()
                .contains("labels")
        );
    }
}
