//! The simulated resource's history as objects: etcd's history under the resource prefix,
//! decoded once per write with the checks' own decoding (not the apiserver's storage layer),
//! so that no check decodes etcd bytes again, however many clients and streams read it.
//!
//! See [`ResourceHistory`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use super::versions::{History, Version};
use crate::api::{Field, FieldSelector, LabelSelector};
use crate::etcd::{Event, EventType, KeyValue, Revision};
use crate::object::{Object, ObjectKey};

/// What one write did to one object: its state before and after (`None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The object's key.
    pub key: ObjectKey,
    /// The state the write replaced.
    pub before: Option<Object>,
    /// The state the write made; `None` for a deletion.
    pub after: Option<Object>,
}

/// The resource's objects over revisions, fed every revision of the ground truth in order.
///
/// Per key, its decoded versions (a [`History`]); per revision from
/// [`oldest_readable`](Self::oldest_readable) on, the changes it made to the resource. It
/// forgets in step with the ground truth ([`forget_before`](Self::forget_before)). Costs: a
/// revision O(log n) per change to record; [`get_at`](Self::get_at) O(log n + log v);
/// [`changes_between`](Self::changes_between) O(revisions between + changes);
/// [`state_at`](Self::state_at) O(keys held × log v); [`selected_at`](Self::selected_at) with a
/// label selector O(keys that had the label × log v), as the label indexes of the indexer and
/// the cacher spare their readers a walk over every object.
#[derive(Clone, Debug)]
pub struct ResourceHistory {
    prefix: &'static str,
    objects: BTreeMap<ObjectKey, History<Object>>,
    /// Per label `name=value`, the keys with a version held that has it.
    by_label: BTreeMap<(String, String), BTreeSet<ObjectKey>>,
    /// The changes of each revision `oldest_readable..=revision()`.
    log: VecDeque<Vec<Change>>,
    /// The revision of `log[0]`.
    oldest_readable: Revision,
}

impl ResourceHistory {
    /// The history of the resource stored under `prefix`, at etcd's first revision (1).
    pub fn new(prefix: &'static str) -> ResourceHistory {
        ResourceHistory {
            prefix,
            objects: BTreeMap::new(),
            by_label: BTreeMap::new(),
            log: VecDeque::from([Vec::new()]),
            oldest_readable: 1,
        }
    }

    /// The etcd key prefix of the resource.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The newest revision recorded.
    pub fn revision(&self) -> Revision {
        self.oldest_readable + self.log.len() as Revision - 1
    }

    /// The oldest revision still held.
    pub fn oldest_readable(&self) -> Revision {
        self.oldest_readable
    }

    /// How many keys are held (live, or deleted since the last forgetting).
    pub fn keys_held(&self) -> usize {
        self.objects.len()
    }

    /// The object an etcd key-value under the prefix holds, or `None` for a key outside the
    /// prefix or a value that does not decode (which no check compares).
    pub fn decode(&self, kv: &KeyValue) -> Option<Object> {
        let key = kv.key.strip_prefix(self.prefix)?;
        Object::decode(key, kv.mod_revision, kv.create_revision, &kv.value).ok()
    }

    /// Records the events of the next revision (those outside the prefix change nothing).
    ///
    /// # Panics
    ///
    /// Unless `revision` is the one after [`revision`](Self::revision).
    pub fn record(&mut self, revision: Revision, events: &[Event]) {
        assert_eq!(
            revision,
            self.revision() + 1,
            "resource history: revisions are recorded in order"
        );
        let mut changes = Vec::new();
        for event in events {
            let Some(key) = event.kv.key.strip_prefix(self.prefix) else {
                continue;
            };
            let key = ObjectKey::new(key);
            let after = match event.event_type {
                EventType::Put => self.decode(&event.kv),
                EventType::Delete => None,
            };
            for label in after.iter().flat_map(|object| object.labels.iter()) {
                let keys = match self.by_label.get_mut(&(label.0.clone(), label.1.clone())) {
                    Some(keys) => keys,
                    None => self
                        .by_label
                        .entry((label.0.clone(), label.1.clone()))
                        .or_default(),
                };
                keys.insert(key.clone());
            }
            let version = Version {
                revision,
                slot: changes.len(),
                state: after.clone(),
            };
            let before = match self.objects.get_mut(&key) {
                Some(history) => {
                    let before = history.latest().cloned();
                    history.push(version);
                    before
                }
                None => {
                    self.objects.insert(key.clone(), History::new(version));
                    None
                }
            };
            changes.push(Change { key, before, after });
        }
        self.log.push_back(changes);
    }

    /// The object `key` names at `revision`, if it existed.
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn get_at(&self, key: &ObjectKey, revision: Revision) -> Option<&Object> {
        self.expect_held(revision);
        self.objects.get(key)?.state_at(revision)
    }

    /// Every object at `revision` whose key is after `after` (all: `None`), in key order.
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn state_at<'a>(
        &'a self,
        revision: Revision,
        after: Option<&ObjectKey>,
    ) -> impl Iterator<Item = &'a Object> + use<'a> {
        self.expect_held(revision);
        let start = after.map_or(Bound::Unbounded, |key| Bound::Excluded(key.clone()));
        self.objects
            .range((start, Bound::Unbounded))
            .filter_map(move |(_, history)| history.state_at(revision))
    }

    /// The objects at `revision` that `selection` selects, whose key is after `after` (all:
    /// `None`), in key order. With a label selector only the keys that had the label are
    /// visited.
    ///
    /// # Panics
    ///
    /// Unless `oldest_readable() <= revision <= revision()`.
    pub fn selected_at<'a>(
        &'a self,
        revision: Revision,
        selection: &'a Selection,
        after: Option<&ObjectKey>,
    ) -> Box<dyn Iterator<Item = &'a Object> + 'a> {
        let Some(selector) = &selection.label_selector else {
            return Box::new(
                self.state_at(revision, after)
                    .filter(|object| selection.selects(object)),
            );
        };
        self.expect_held(revision);
        let start = after.map_or(Bound::Unbounded, |key| Bound::Excluded(key.clone()));
        let label = (selector.name.clone(), selector.value.clone());
        let keys = self.by_label.get(&label).into_iter();
        Box::new(
            keys.flat_map(move |keys| keys.range((start.clone(), Bound::Unbounded)))
                .filter_map(move |key| self.objects.get(key)?.state_at(revision))
                .filter(|object| selection.selects(object)),
        )
    }

    /// Every change at revisions `from` or later (0 counts as 1), oldest first, with its
    /// revision.
    ///
    /// # Panics
    ///
    /// If `from` is below `oldest_readable()`.
    pub fn changes_since(&self, from: Revision) -> impl Iterator<Item = (Revision, &Change)> {
        self.changes_between(from.max(1) - 1, self.revision())
    }

    /// Every change at revisions in `after + 1 ..= upto`, oldest first, with its revision.
    ///
    /// # Panics
    ///
    /// If `after + 1` is below `oldest_readable()`.
    pub fn changes_between(
        &self,
        after: Revision,
        upto: Revision,
    ) -> impl Iterator<Item = (Revision, &Change)> {
        let from = after + 1;
        assert!(
            from >= self.oldest_readable,
            "resource history: changes since {from} asked, but history before {} was \
             forgotten (a harness bug: forgetting ran past a revision a check still reads)",
            self.oldest_readable
        );
        let skip = ((from - self.oldest_readable) as usize).min(self.log.len());
        let take = (upto.saturating_sub(after) as usize).min(self.log.len() - skip);
        self.log
            .range(skip..skip + take)
            .zip(from..)
            .flat_map(|(changes, revision)| changes.iter().map(move |change| (revision, change)))
    }

    /// The changes of one key at revisions `from` or later, oldest first, with their revision.
    ///
    /// # Panics
    ///
    /// If `from` is below `oldest_readable()`.
    pub fn changes_of<'a>(
        &'a self,
        key: &ObjectKey,
        from: Revision,
    ) -> impl Iterator<Item = (Revision, &'a Change)> + use<'a> {
        let from = from.max(self.oldest_readable);
        let versions = self.objects.get(key).into_iter();
        versions
            .flat_map(move |history| history.since(from))
            .map(|version| {
                let changes = &self.log[(version.revision - self.oldest_readable) as usize];
                (version.revision, &changes[version.slot])
            })
    }

    /// Forgets what no read at `revision` or later needs, as
    /// [`GroundTruth::forget_before`](super::truth::GroundTruth::forget_before) does.
    pub fn forget_before(&mut self, revision: Revision) {
        let oldest = self.oldest_readable;
        if revision <= oldest {
            return;
        }
        let dropped = ((revision - oldest) as usize).min(self.log.len());
        for changes in self.log.drain(..dropped) {
            for change in changes {
                let Some(history) = self.objects.get_mut(&change.key) else {
                    continue; // Dropped already, by an earlier change of the same pass.
                };
                history.forget_before(revision);
                let gone = history.is_deleted_before(revision);
                let held = if gone {
                    self.objects.remove(&change.key);
                    None
                } else {
                    self.objects.get(&change.key)
                };
                unindex_forgotten_labels(&mut self.by_label, &change, held);
            }
        }
        self.oldest_readable = revision;
    }

    /// The history of everything `truth` holds under `prefix`, for tests.
    #[cfg(test)]
    pub(crate) fn from_truth(
        prefix: &'static str,
        truth: &super::truth::GroundTruth,
    ) -> ResourceHistory {
        let mut history = ResourceHistory::new(prefix);
        assert_eq!(truth.oldest_readable(), 1, "a whole history");
        for revision in 2..=truth.revision() {
            history.record(revision, truth.events_at(revision));
        }
        history
    }

    fn expect_held(&self, revision: Revision) {
        assert!(
            (self.oldest_readable..=self.revision()).contains(&revision),
            "resource history: revision {revision} asked, but only {}..={} is held",
            self.oldest_readable,
            self.revision()
        );
    }
}

/// Drops `change.key` from the label index under each label its state before `change` had and
/// no version still `held` has.
fn unindex_forgotten_labels(
    by_label: &mut BTreeMap<(String, String), BTreeSet<ObjectKey>>,
    change: &Change,
    held: Option<&History<Object>>,
) {
    let still_has = |name: &String, value: &String| {
        held.into_iter()
            .flat_map(History::versions)
            .filter_map(|version| version.state.as_ref())
            .any(|object| object.labels.get(name) == Some(value))
    };
    for (name, value) in change.before.iter().flat_map(|object| object.labels.iter()) {
        if still_has(name, value) {
            continue;
        }
        let label = (name.clone(), value.clone());
        if let Some(keys) = by_label.get_mut(&label) {
            keys.remove(&change.key);
            if keys.is_empty() {
                by_label.remove(&label);
            }
        }
    }
}

/// What a client's list or watch selects, as the checks read its request: their own copy of
/// the rule, written apart from the apiserver's `WatchFilter` on purpose, so that a bug there
/// is not reproduced here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only this namespace, if set.
    pub namespace: Option<String>,
    /// Only objects with this label, if set.
    pub label_selector: Option<LabelSelector>,
    /// Only objects whose fields meet every term, if set.
    pub field_selector: Option<FieldSelector>,
}

impl Selection {
    /// Every object.
    pub const ALL: Selection = Selection {
        namespace: None,
        label_selector: None,
        field_selector: None,
    };

    /// Whether `object` is selected.
    pub fn selects(&self, object: &Object) -> bool {
        let in_namespace = match &self.namespace {
            Some(namespace) => object.key.namespace() == namespace.as_str(),
            None => true,
        };
        let labelled = match &self.label_selector {
            Some(selector) => object.label(&selector.name) == Some(selector.value.as_str()),
            None => true,
        };
        let fields = self
            .field_selector
            .iter()
            .flat_map(|selector| &selector.terms);
        let fields_hold = fields.into_iter().all(|term| {
            let value = match term.field {
                Field::MetadataName => object.key.name(),
                Field::MetadataNamespace => object.key.namespace(),
                Field::SpecNodeName => &object.node_name,
            };
            (value == term.value) == term.equal
        });
        in_namespace && labelled && fields_hold
    }

    /// `object`, if selected.
    pub fn filter<'a>(&self, object: Option<&'a Object>) -> Option<&'a Object> {
        object.filter(|object| self.selects(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::KeyValue;

    const PREFIX: &str = "/r/";

    fn put(key: &str, revision: Revision, created: Revision, body: &str) -> Event {
        Event {
            event_type: EventType::Put,
            kv: KeyValue {
                key: format!("{PREFIX}{key}"),
                create_revision: created,
                mod_revision: revision,
                version: 1,
                value: body.as_bytes().to_vec(),
            },
            prev_kv: None,
        }
    }

    fn delete(key: &str, revision: Revision) -> Event {
        Event {
            event_type: EventType::Delete,
            kv: KeyValue {
                key: format!("{PREFIX}{key}"),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
                value: Vec::new(),
            },
            prev_kv: None,
        }
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(name)
    }

    /// a created at 2, b at 3 (and a key outside the prefix), a updated at 4, a deleted at 5.
    fn history() -> ResourceHistory {
        let mut history = ResourceHistory::new(PREFIX);
        history.record(2, &[put("ns/a", 2, 2, "v=1;app=x")]);
        let mut outside = put("other", 3, 3, "v=0;");
        outside.kv.key = "/elsewhere".to_owned();
        history.record(3, &[put("ns/b", 3, 3, "v=2;app=y"), outside]);
        history.record(4, &[put("ns/a", 4, 2, "v=3;app=y")]);
        history.record(5, &[delete("ns/a", 5)]);
        history
    }

    #[test]
    fn objects_are_read_at_any_held_revision() {
        let history = history();
        assert_eq!(history.revision(), 5);
        assert_eq!(history.get_at(&key("ns/a"), 1), None);
        assert_eq!(history.get_at(&key("ns/a"), 3).map(|o| o.value), Some(1));
        assert_eq!(history.get_at(&key("ns/a"), 4).map(|o| o.value), Some(3));
        assert_eq!(history.get_at(&key("ns/a"), 5), None);
        let at_4: Vec<String> = history.state_at(4, None).map(|o| o.to_string()).collect();
        assert_eq!(at_4, ["ns/a@4", "ns/b@3"]);
        let after_a: Vec<String> = history
            .state_at(4, Some(&key("ns/a")))
            .map(|o| o.to_string())
            .collect();
        assert_eq!(after_a, ["ns/b@3"]);
    }

    #[test]
    fn changes_carry_the_state_before_and_after() {
        let history = history();
        let changes: Vec<(Revision, String)> = history
            .changes_between(3, 5)
            .map(|(revision, change)| {
                let show =
                    |o: &Option<Object>| o.as_ref().map_or("-".to_owned(), |o| o.to_string());
                (
                    revision,
                    format!("{} {}", show(&change.before), show(&change.after)),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [(4, "ns/a@2 ns/a@4".to_owned()), (5, "ns/a@4 -".to_owned())]
        );
        assert_eq!(
            history.changes_since(0).count(),
            4,
            "outside the prefix is no change"
        );
        assert_eq!(history.changes_between(2, 2).count(), 0);
        let of_a: Vec<Revision> = history
            .changes_of(&key("ns/a"), 3)
            .map(|(r, _)| r)
            .collect();
        assert_eq!(of_a, [4, 5]);
    }

    #[test]
    fn forgetting_keeps_what_is_live_at_the_new_oldest_revision() {
        let mut history = history();
        history.forget_before(4);
        assert_eq!(history.oldest_readable(), 4);
        assert_eq!(history.get_at(&key("ns/a"), 4).map(|o| o.value), Some(3));
        assert_eq!(history.get_at(&key("ns/b"), 4).map(|o| o.value), Some(2));
        assert_eq!(history.changes_since(4).count(), 2);
        history.forget_before(6.min(history.revision()));
        assert_eq!(
            history.keys_held(),
            2,
            "a's deletion at 5 is still readable at 5"
        );
    }

    #[test]
    #[should_panic(expected = "only 4..=5 is held")]
    fn reading_below_what_was_forgotten_is_a_harness_bug() {
        let mut history = history();
        history.forget_before(4);
        history.get_at(&key("ns/a"), 3);
    }

    fn app(value: &str) -> Selection {
        Selection {
            namespace: None,
            label_selector: Some(LabelSelector {
                name: "app".to_owned(),
                value: value.to_owned(),
            }),
            field_selector: None,
        }
    }

    fn selected(
        history: &ResourceHistory,
        revision: Revision,
        selection: &Selection,
    ) -> Vec<String> {
        history
            .selected_at(revision, selection, None)
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_label_selection_reads_what_the_label_index_holds_at_any_revision() {
        let mut history = history();
        assert_eq!(selected(&history, 2, &app("x")), ["ns/a@2"]);
        assert_eq!(selected(&history, 4, &app("x")), Vec::<String>::new());
        assert_eq!(selected(&history, 4, &app("y")), ["ns/a@4", "ns/b@3"]);
        assert_eq!(selected(&history, 5, &app("y")), ["ns/b@3"]);
        assert_eq!(selected(&history, 5, &Selection::ALL), ["ns/b@3"]);
        let after_a: Vec<String> = history
            .selected_at(4, &app("y"), Some(&key("ns/a")))
            .map(ToString::to_string)
            .collect();
        assert_eq!(after_a, ["ns/b@3"]);
        history.forget_before(5);
        assert_eq!(selected(&history, 5, &app("y")), ["ns/b@3"]);
        assert!(
            history.by_label.keys().all(|(_, value)| value == "y"),
            "a label no held version has is forgotten: {:?}",
            history.by_label
        );
        assert_eq!(
            history.by_label[&("app".to_owned(), "y".to_owned())].len(),
            2,
            "a's deletion at 5 is held, so the change at 5 (and a's entry) goes with revision 5"
        );
    }

    #[test]
    fn selections_filter_by_namespace_and_label() {
        let history = history();
        let b = history.get_at(&key("ns/b"), 5).expect("b lives");
        let by_label = Selection {
            namespace: None,
            label_selector: Some(LabelSelector {
                name: "app".to_owned(),
                value: "y".to_owned(),
            }),
            field_selector: None,
        };
        assert!(by_label.selects(b));
        assert!(Selection::ALL.selects(b));
        let elsewhere = Selection {
            namespace: Some("other".to_owned()),
            label_selector: None,
            field_selector: None,
        };
        assert!(!elsewhere.selects(b));
        assert_eq!(by_label.filter(history.get_at(&key("ns/a"), 3)), None);
    }
}
