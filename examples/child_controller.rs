//! A user's controller under test: every owner object gets exactly one child object, named
//! with a generated suffix (as `generateName` does), and children of deleted owners go.
//!
//! The first version reconciles from its lister alone. When the lister has not yet seen the
//! child it just created, the next reconcile of the same owner creates a second one: the
//! harness finds a seed where that happens, shrinks it, and prints the command that replays
//! it. The fixed version remembers the child it created until its informer shows it (what
//! client-go's `ControllerExpectations` do) and passes every seed.
//!
//! ```text
//! cargo run --example child_controller            # both versions, 200 seeds each
//! INFORMER_SIM_SEED=7 cargo run --example child_controller   # one seed
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;

use informer_sim::controller::{
    Client, ClusterState, Enqueue, EventHandler, Lister, ReconcileError, Reconciler,
};
use informer_sim::object::{Object, ObjectKey};
use informer_sim::sim::{SimDuration, SimTime};
use informer_sim::testing::{ControllerTest, Report};

const PARENT: &str = "parent";
const PARENT_UID: &str = "parent-uid";

/// How long a remembered create is trusted before the controller looks again.
const PENDING_TIMEOUT: SimDuration = SimDuration::from_secs(60);

/// The owner key and owner uid of a child; `None` for an owner.
fn parent_of(object: &Object) -> Option<(ObjectKey, u64)> {
    let name = object.label(PARENT)?;
    let uid = object.label(PARENT_UID)?.parse().ok()?;
    Some((ObjectKey::namespaced(object.key.namespace(), name), uid))
}

/// The controller; `remember_creates` is the fix.
struct ChildController {
    remember_creates: bool,
    /// Per owner: the child created and not yet seen, and when.
    pending: BTreeMap<ObjectKey, (ObjectKey, SimTime)>,
    next_name: u64,
    incarnation: u32,
}

impl ChildController {
    fn new(remember_creates: bool, incarnation: u32) -> ChildController {
        ChildController {
            remember_creates,
            pending: BTreeMap::new(),
            next_name: 0,
            incarnation,
        }
    }

    fn enqueue_owner(object: &Object, queue: &mut Enqueue) {
        let key = parent_of(object).map_or_else(|| object.key.clone(), |(owner, _)| owner);
        queue.add(key);
    }

    /// Whether a create for `owner` is still on its way to the lister.
    fn create_in_flight(&mut self, owner: &ObjectKey, now: SimTime) -> bool {
        match self.pending.get(owner) {
            Some((_, at)) if now.saturating_since(*at) <= PENDING_TIMEOUT => true,
            _ => {
                self.pending.remove(owner);
                false
            }
        }
    }
}

impl EventHandler for ChildController {
    fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
        if let Some((owner, _)) = parent_of(object)
            && self
                .pending
                .get(&owner)
                .is_some_and(|(child, _)| *child == object.key)
        {
            self.pending.remove(&owner);
        }
        Self::enqueue_owner(object, queue);
    }

    fn on_update(&mut self, _old: &Object, new: &Object, queue: &mut Enqueue) {
        Self::enqueue_owner(new, queue);
    }

    fn on_delete(&mut self, key: &ObjectKey, last_known: Option<&Object>, queue: &mut Enqueue) {
        match last_known {
            Some(object) => Self::enqueue_owner(object, queue),
            None => queue.add(key.clone()),
        }
    }
}

impl Reconciler for ChildController {
    fn reconcile(
        &mut self,
        key: &ObjectKey,
        lister: &Lister<'_>,
        client: &mut Client<'_>,
    ) -> Result<(), ReconcileError> {
        let owner = lister.get(key).filter(|object| parent_of(object).is_none());
        let children = lister.list_by_label(PARENT, key.name());
        let mut result = Ok(());
        let mut mine = Vec::new();
        for child in children {
            match (owner, parent_of(child)) {
                (Some(owner), Some((_, uid))) if uid == owner.uid => mine.push(child),
                _ => result = result.and(client.delete(child).or_else(ignore_not_found)),
            }
        }
        let Some(owner) = owner else {
            return result.map_err(ReconcileError::from);
        };
        if self.remember_creates && self.create_in_flight(key, lister.now()) {
            return result.map_err(ReconcileError::from);
        }
        if mine.is_empty() {
            self.next_name += 1;
            let name = format!("{}-c{}-{}", key.name(), self.incarnation, self.next_name);
            let child = ObjectKey::namespaced(key.namespace(), &name);
            let labels = BTreeMap::from([
                (PARENT.to_owned(), key.name().to_owned()),
                (PARENT_UID.to_owned(), owner.uid.to_string()),
            ]);
            match client.create(child.clone(), labels, 0) {
                Ok(_) => {
                    self.pending.insert(key.clone(), (child, lister.now()));
                }
                Err(error) => result = result.and(Err(error)),
            }
        }
        result.map_err(ReconcileError::from)
    }
}

fn ignore_not_found(
    error: informer_sim::controller::WriteError,
) -> Result<(), informer_sim::controller::WriteError> {
    match error {
        informer_sim::controller::WriteError::NotFound => Ok(()),
        error => Err(error),
    }
}

/// Children per owner incarnation, and the live owners.
fn census<'a>(state: &ClusterState<'a>) -> (BTreeMap<(ObjectKey, u64), u32>, Vec<&'a Object>) {
    let mut children = BTreeMap::new();
    let mut owners = Vec::new();
    for object in state.etcd() {
        match parent_of(object) {
            Some(parent) => *children.entry(parent).or_default() += 1,
            None => owners.push(*object),
        }
    }
    (children, owners)
}

/// Never two children of one owner incarnation.
fn at_most_one_child(state: &ClusterState<'_>) -> Result<(), String> {
    let (children, _) = census(state);
    match children.iter().find(|(_, count)| **count > 1) {
        Some(((owner, uid), count)) => Err(format!("{owner} (uid {uid}) has {count} children")),
        None => Ok(()),
    }
}

/// Once settled, every owner has its child and no child outlives its owner.
fn one_child_each(state: &ClusterState<'_>) -> Result<(), String> {
    let (mut children, owners) = census(state);
    for owner in owners {
        if children.remove(&(owner.key.clone(), owner.uid)) != Some(1) {
            return Err(format!("{owner} has no child"));
        }
    }
    match children.keys().next() {
        Some((owner, uid)) => Err(format!("a child of gone owner {owner} (uid {uid}) remains")),
        None => Ok(()),
    }
}

fn test(remember_creates: bool) -> Report {
    ControllerTest::with_incarnation(move |incarnation| {
        ChildController::new(remember_creates, incarnation)
    })
    .seeds(0..200)
    .always("at most one child per owner", at_most_one_child)
    .settled("one child per owner", one_child_each)
    .replay_command("cargo run --example child_controller")
    .run()
    .expect("the library scenario loads")
}

fn main() -> ExitCode {
    println!("child controller, reconciling from its lister alone:");
    let buggy = test(false);
    println!("{buggy}");
    println!("\nchild controller, remembering its creates until its informer shows them:");
    let fixed = test(true);
    println!("{fixed}");
    if buggy.failures.is_empty() || !fixed.failures.is_empty() {
        println!("\nunexpected: the bug should be found and the fix should pass");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
