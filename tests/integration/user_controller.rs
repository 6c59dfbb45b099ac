//! A user's controller tested through the public API alone (`informer_sim::controller` and
//! `informer_sim::testing`), as another crate with informer-sim as a dev-dependency would.

use std::collections::BTreeMap;

use informer_sim::controller::{
    Client, ClusterState, Enqueue, EventHandler, Lister, ReconcileError, Reconciler,
};
use informer_sim::object::{Object, ObjectKey};
use informer_sim::testing::ControllerTest;

/// Keeps a `shadow` object per owner whose payload is the owner's, reading only the lister.
/// It never creates a second shadow (the name is fixed, so a second create is a conflict).
struct Shadower {
    /// Deliberate bug: write the payload plus one.
    off_by_one: bool,
}

fn shadow_key(owner: &ObjectKey) -> ObjectKey {
    ObjectKey::namespaced(owner.namespace(), &format!("{}-shadow", owner.name()))
}

fn owner_of_shadow(object: &Object) -> Option<ObjectKey> {
    let name = object.key.name().strip_suffix("-shadow")?;
    Some(ObjectKey::namespaced(object.key.namespace(), name))
}

impl EventHandler for Shadower {
    fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
        queue.add(owner_of_shadow(object).unwrap_or_else(|| object.key.clone()));
    }

    fn on_update(&mut self, _old: &Object, new: &Object, queue: &mut Enqueue) {
        queue.add(owner_of_shadow(new).unwrap_or_else(|| new.key.clone()));
    }

    fn on_delete(&mut self, key: &ObjectKey, _last: Option<&Object>, queue: &mut Enqueue) {
        queue.add(owner_of_shadow_key(key).unwrap_or_else(|| key.clone()));
    }
}

fn owner_of_shadow_key(key: &ObjectKey) -> Option<ObjectKey> {
    let name = key.name().strip_suffix("-shadow")?;
    Some(ObjectKey::namespaced(key.namespace(), name))
}

impl Reconciler for Shadower {
    fn reconcile(
        &mut self,
        key: &ObjectKey,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), ReconcileError> {
        let shadow = lister.get(&shadow_key(key));
        let Some(owner) = lister.get(key) else {
            if let Some(shadow) = shadow {
                client.delete(shadow)?;
            }
            return Ok(());
        };
        let value = owner.value + u64::from(self.off_by_one);
        match shadow {
            Some(shadow) if shadow.value == value => {}
            Some(shadow) => {
                client.update(Object {
                    value,
                    ..shadow.clone()
                })?;
            }
            None => {
                client.create(shadow_key(key), BTreeMap::new(), value)?;
            }
        }
        Ok(())
    }
}

fn shadows_match(state: &ClusterState<'_>) -> Result<(), String> {
    let etcd: BTreeMap<&ObjectKey, &Object> = state
        .etcd()
        .iter()
        .map(|object| (&object.key, *object))
        .collect();
    for object in state.etcd() {
        match owner_of_shadow(object) {
            Some(owner) => match etcd.get(&owner) {
                Some(owner) if owner.value == object.value => {}
                Some(owner) => return Err(format!("{object} shadows {owner} with another value")),
                None => return Err(format!("{object} outlives its owner")),
            },
            None if !etcd.contains_key(&shadow_key(&object.key)) => {
                return Err(format!("{object} has no shadow"));
            }
            None => {}
        }
    }
    Ok(())
}

#[test]
fn a_correct_controller_passes_and_its_cache_matches_etcd_once_settled() {
    let report = ControllerTest::new(|| Shadower { off_by_one: false })
        .seeds(0..30)
        .settled("shadows match their owners", shadows_match)
        .settled("the cache is etcd", |state| {
            let cache = state.cache();
            (cache.as_slice() == state.etcd())
                .then_some(())
                .ok_or_else(|| format!("{} cached, {} in etcd", cache.len(), state.etcd().len()))
        })
        .run()
        .expect("the default scenario runs");
    assert_eq!(report.seeds, 30);
    assert!(report.failures.is_empty(), "{report}");
}

#[test]
fn a_buggy_controller_fails_with_a_replay_command_and_a_shrunk_case() {
    let report = ControllerTest::new(|| Shadower { off_by_one: true })
        .seeds(0..3)
        .shrink_runs(10)
        .settled("shadows match their owners", shadows_match)
        .replay_command("cargo test shadow")
        .run()
        .expect("the default scenario runs");
    let first = report.failures.first().expect("the off-by-one is found");
    assert_eq!(first.invariant, "user_invariant");
    assert!(
        first.message.starts_with("shadows match their owners: "),
        "{}",
        first.message
    );
    assert_eq!(
        first.replay,
        format!("INFORMER_SIM_SEED={} cargo test shadow", first.seed)
    );
    assert!(first.shrunk.is_some(), "the first failure is shrunk");
    assert!(
        report.failures[1..]
            .iter()
            .all(|failure| failure.shrunk.is_none())
    );
}
