//! Watches scoped by namespace and selectors, as tables of writes and the event each must
//! produce: `RunTestWatch` (its `testWatch` table), `RunTestClusterScopedWatch`,
//! `RunTestNamespaceScopedWatch`.

use std::collections::BTreeMap;

use super::{ConformanceCase, Mode, Pod, ensure_events, harness, pod, run_rows, selector};
use crate::api::{ListOptions, ResourceVersionParam as Rv, WatchEvent, WatchOptions};
use crate::object::Object;
use crate::testkit::apiserver_pair::watch_options;

/// The event a write must produce on the row's watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Nothing,
    Added,
    Modified,
    Deleted,
}

/// One write (or, with `delete`, the deletion of the pod's key) and its expected event.
#[derive(Clone, Copy, Debug)]
struct Step {
    pod: Pod,
    delete: bool,
    expect: Expect,
}

const fn put(pod: Pod, expect: Expect) -> Step {
    Step {
        pod,
        delete: false,
        expect,
    }
}

/// One sub-case: the watch's request namespace and selector, then the writes.
struct Row {
    name: &'static str,
    namespace: Option<&'static str>,
    selector: Option<(&'static str, &'static str)>,
    steps: &'static [Step],
}

use Expect::{Added, Deleted, Modified, Nothing};

/// Lists (RV unset) to get a starting RV, watches from it, applies the writes and checks that
/// the stream holds exactly the expected events, a filtered-out object arriving as DELETED
/// with its last matching state at the RV of the write that removed it. After the client stops
/// the watch, a further write reaches it no more.
fn run_row(mode: Mode, row: &Row) -> Result<(), String> {
    let mut h = harness(mode);
    let list = h.list(ListOptions::at(Rv::Unset));
    let start = h.page(list).resource_version;
    let options = WatchOptions {
        namespace: row.namespace.map(str::to_owned),
        label_selector: row.selector.map(|(name, value)| selector(name, value)),
        ..watch_options(Rv::At(start))
    };
    let id = h.watch(options);
    let mut current: BTreeMap<String, Object> = BTreeMap::new();
    let mut expected = Vec::new();
    for step in row.steps {
        let key = step.pod.key();
        let (object, previous) = if step.delete {
            let resource_version = h.delete(&key);
            let previous = current.remove(&key).ok_or("deletes a pod never written")?;
            (
                previous.with_resource_version(resource_version),
                Some(previous),
            )
        } else {
            let object = step.pod.write(&mut h);
            let previous = current.insert(key, object.clone());
            (object, previous)
        };
        let event = match step.expect {
            Nothing => continue,
            Added => WatchEvent::Added(object),
            Modified => WatchEvent::Modified(object),
            Deleted => {
                let previous = previous.ok_or("DELETED of a pod never written")?;
                WatchEvent::Deleted(previous.with_resource_version(object.resource_version))
            }
        };
        expected.push(event);
    }
    h.stop_watch(id);
    if let Some(step) = row.steps.iter().find(|step| step.expect == Added) {
        step.pod.write(&mut h);
    }
    ensure_events(&h, id, &expected)?;
    h.check_oracles()
}

fn run_table(mode: Mode, rows: &[Row]) -> Result<(), String> {
    run_rows(rows, |row| row.name.to_owned(), |row| run_row(mode, row))
}

/// `RunTestWatch`: the `testWatch` table, each row watching its own namespace while a pod of
/// the same name is first written in a sibling `-bad` namespace (whose event must not appear).
///
/// Covered: ADDED on first match, MODIFIED, a transition out of the selector as DELETED with
/// the previous object at the new RV, a transition into it as ADDED, and a real delete.
/// Field selectors on `spec.nodeName` are label selectors on `node` (`!=bar` over the values
/// `""` and `bar` is `node=""`). Not covered: upstream's non-recursive variant (a watch on the
/// single key `/pods/<ns>/foo`); it differs from the recursive one only in scope, and each
/// namespace here holds just `foo`.
pub(super) const WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestWatch",
    summary: "ADDED, MODIFIED, DELETED and selector transitions on a namespace watch",
    run: |mode| run_table(mode, WATCH_ROWS),
};

const FOO: Pod = pod("test-ns", "foo");

const WATCH_ROWS: &[Row] = &[
    Row {
        name: "create a key",
        namespace: Some("test-ns"),
        selector: None,
        steps: &[put(pod("test-ns-bad", "foo"), Nothing), put(FOO, Added)],
    },
    Row {
        name: "key updated to match predicate",
        namespace: Some("test-ns"),
        selector: Some(("node", "bar")),
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Nothing),
            put(FOO.assigned("bar"), Added),
        ],
    },
    Row {
        name: "update",
        namespace: Some("test-ns"),
        selector: None,
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Added),
            put(FOO.assigned("bar"), Modified),
        ],
    },
    Row {
        name: "delete because of being filtered",
        namespace: Some("test-ns"),
        selector: Some(("node", "")),
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Added),
            put(FOO.assigned("bar"), Deleted),
        ],
    },
    Row {
        name: "filtering",
        namespace: Some("test-ns"),
        selector: Some(("select", "true")),
        steps: &[
            put(pod("test-ns-bad", "foo").selected(), Nothing),
            put(FOO.selected(), Added),
            put(FOO, Deleted),
            put(FOO.selected(), Added),
            put(FOO.assigned("bar").selected(), Modified),
            Step {
                pod: FOO,
                delete: true,
                expect: Deleted,
            },
        ],
    },
];

/// `RunTestClusterScopedWatch`: cluster-scoped pods (keys without a namespace) watched across
/// the cluster, by node and by name.
///
/// Covered: rows t1–t4 (everything; `spec.nodeName=X` as `node=X`; `spec.nodeName!=X` over
/// `""`/`X` as `node=""`; `metadata.name=X` as `name=X`). Not covered: rows t5 and t6, whose
/// selectors are conjunctions of two fields (the model's selector is one equality).
pub(super) const CLUSTER_SCOPED_WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestClusterScopedWatch",
    summary: "cluster-scoped watches filtered by node and name",
    run: |mode| run_table(mode, CLUSTER_ROWS),
};

const CLUSTER_ROWS: &[Row] = &[
    Row {
        name: "t1 without name, without field selector",
        namespace: None,
        selector: None,
        steps: &[
            put(pod("", "t1-foo1"), Added),
            put(pod("", "t1-foo1").updated(), Modified),
            put(pod("", "t1-foo2").assigned("t1-bar1"), Added),
        ],
    },
    Row {
        name: "t2 spec.nodeName=t2-bar1",
        namespace: None,
        selector: Some(("node", "t2-bar1")),
        steps: &[
            put(pod("", "t2-foo1"), Nothing),
            put(pod("", "t2-foo1").assigned("t2-bar1"), Added),
        ],
    },
    Row {
        name: "t3 spec.nodeName!=t3-bar1",
        namespace: None,
        selector: Some(("node", "")),
        steps: &[
            put(pod("", "t3-foo1"), Added),
            put(pod("", "t3-foo2"), Added),
            put(pod("", "t3-foo1").updated(), Modified),
            put(pod("", "t3-foo1").assigned("t3-bar1"), Deleted),
        ],
    },
    Row {
        name: "t4 metadata.name=t4-foo1",
        namespace: None,
        selector: Some(("name", "t4-foo1")),
        steps: &[
            put(pod("", "t4-foo1"), Added),
            put(pod("", "t4-foo2"), Nothing),
            put(pod("", "t4-foo1").updated(), Modified),
            put(pod("", "t4-foo2").updated(), Nothing),
        ],
    },
];

/// `RunTestNamespaceScopedWatch`: namespaced pods watched across namespaces or in one, by
/// namespace, node and name.
///
/// Covered: rows t1–t8, t10, t11, t16 and t17. The request namespace is
/// [`WatchOptions::namespace`]; a `metadata.namespace` field selector is the `namespace`
/// label (t2, t6, t7), or, where it is the watch's only namespace scope, the request
/// namespace, as the cacher derives its scope from it (t11, t17). Not covered: t9 (`!=` over
/// three node values), t12, t15, t18 and t19 (conjunctions of name and node selectors).
pub(super) const NAMESPACE_SCOPED_WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestNamespaceScopedWatch",
    summary: "namespace-scoped watches filtered by namespace, node and name",
    run: |mode| run_table(mode, NAMESPACE_ROWS),
};

const NAMESPACE_ROWS: &[Row] = &[
    Row {
        name: "t1 all namespaces, without field selector",
        namespace: None,
        selector: None,
        steps: &[
            put(pod("t1-ns1", "t1-foo1"), Added),
            put(pod("t1-ns2", "t1-foo2"), Added),
            put(pod("t1-ns1", "t1-foo1").updated(), Modified),
            put(pod("t1-ns2", "t1-foo2").updated(), Modified),
        ],
    },
    Row {
        name: "t2 all namespaces, metadata.namespace=t2-ns1",
        namespace: None,
        selector: Some(("namespace", "t2-ns1")),
        steps: &[
            put(pod("t2-ns1", "t2-foo1"), Added),
            put(pod("t2-ns2", "t2-foo1"), Nothing),
            put(pod("t2-ns1", "t2-foo1").updated(), Modified),
            put(pod("t2-ns2", "t2-foo1").updated(), Nothing),
        ],
    },
    Row {
        name: "t3 all namespaces, spec.nodeName=t3-bar1",
        namespace: None,
        selector: Some(("node", "t3-bar1")),
        steps: &[
            put(pod("t3-ns1", "t3-foo1"), Nothing),
            put(pod("t3-ns2", "t3-foo2"), Nothing),
            put(pod("t3-ns1", "t3-foo1").assigned("t3-bar1"), Added),
            put(pod("t3-ns2", "t3-foo2").assigned("t3-bar1"), Added),
        ],
    },
    Row {
        name: "t4 all namespaces, spec.nodeName!=t4-bar1",
        namespace: None,
        selector: Some(("node", "")),
        steps: &[
            put(pod("t4-ns1", "t4-foo1"), Added),
            put(pod("t4-ns1", "t4-foo2"), Added),
            put(pod("t4-ns1", "t4-foo1").updated(), Modified),
            put(pod("t4-ns1", "t4-foo1").assigned("t4-bar1"), Deleted),
        ],
    },
    Row {
        name: "t5 namespace t5-ns1, without field selector",
        namespace: Some("t5-ns1"),
        selector: None,
        steps: &[
            put(pod("t5-ns1", "t5-foo1"), Added),
            put(pod("t5-ns2", "t5-foo1"), Nothing),
            put(pod("t5-ns1", "t5-foo2"), Added),
            put(pod("t5-ns1", "t5-foo1").updated(), Modified),
            put(pod("t5-ns2", "t5-foo1").updated(), Nothing),
        ],
    },
    Row {
        name: "t6 namespace t6-ns1, metadata.namespace=t6-ns1",
        namespace: Some("t6-ns1"),
        selector: Some(("namespace", "t6-ns1")),
        steps: &[
            put(pod("t6-ns1", "t6-foo1"), Added),
            put(pod("t6-ns2", "t6-foo1"), Nothing),
            put(pod("t6-ns1", "t6-foo1").updated(), Modified),
        ],
    },
    Row {
        name: "t7 namespace t7-ns1, metadata.namespace=t7-ns2",
        namespace: Some("t7-ns1"),
        selector: Some(("namespace", "t7-ns2")),
        steps: &[
            put(pod("t7-ns1", "t7-foo1"), Nothing),
            put(pod("t7-ns2", "t7-foo1"), Nothing),
            put(pod("t7-ns1", "t7-foo1").updated(), Nothing),
            put(pod("t7-ns2", "t7-foo1").updated(), Nothing),
        ],
    },
    Row {
        name: "t8 namespace t8-ns1, spec.nodeName=t8-bar2",
        namespace: Some("t8-ns1"),
        selector: Some(("node", "t8-bar2")),
        steps: &[
            put(pod("t8-ns1", "t8-foo1"), Nothing),
            put(pod("t8-ns1", "t8-foo1").assigned("t8-bar1"), Nothing),
            put(pod("t8-ns2", "t8-foo1").assigned("t8-bar2"), Nothing),
            put(pod("t8-ns1", "t8-foo1").assigned("t8-bar2"), Added),
        ],
    },
    Row {
        name: "t10 all namespaces, metadata.name=t10-foo1",
        namespace: None,
        selector: Some(("name", "t10-foo1")),
        steps: &[
            put(pod("t10-ns1", "t10-foo1"), Added),
            put(pod("t10-ns2", "t10-foo1"), Added),
            put(pod("t10-ns1", "t10-foo2"), Nothing),
            put(pod("t10-ns1", "t10-foo1").updated(), Modified),
            put(pod("t10-ns1", "t10-foo1").assigned("t10-bar1"), Modified),
        ],
    },
    Row {
        name: "t11 metadata.name=t11-foo1 and metadata.namespace=t11-ns1",
        namespace: Some("t11-ns1"),
        selector: Some(("name", "t11-foo1")),
        steps: &[
            put(pod("t11-ns1", "t11-foo1"), Added),
            put(pod("t11-ns1", "t11-foo2"), Nothing),
            put(pod("t11-ns2", "t11-foo1"), Nothing),
            put(pod("t11-ns1", "t11-foo1").updated(), Modified),
            put(pod("t11-ns1", "t11-foo1").assigned("t11-bar1"), Modified),
        ],
    },
    Row {
        name: "t16 namespace t16-ns1, metadata.name=t16-foo1",
        namespace: Some("t16-ns1"),
        selector: Some(("name", "t16-foo1")),
        steps: &[
            put(pod("t16-ns1", "t16-foo1"), Added),
            put(pod("t16-ns1", "t16-foo2"), Nothing),
            put(pod("t16-ns1", "t16-foo1").updated(), Modified),
            put(pod("t16-ns1", "t16-foo1").assigned("t16-bar1"), Modified),
        ],
    },
    Row {
        name: "t17 namespace t17-ns1, metadata.name=t17-foo2 and metadata.namespace=t17-ns1",
        namespace: Some("t17-ns1"),
        selector: Some(("name", "t17-foo2")),
        steps: &[
            put(pod("t17-ns1", "t17-foo1"), Nothing),
            put(pod("t17-ns1", "t17-foo2"), Added),
            put(pod("t17-ns1", "t17-foo1").updated(), Nothing),
            put(pod("t17-ns1", "t17-foo2").assigned("t17-bar1"), Modified),
        ],
    },
];
