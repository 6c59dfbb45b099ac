//! Watches scoped by namespace and selectors, as tables of writes and the event each must
//! produce: `RunTestWatch` (its `testWatch` table), `RunTestClusterScopedWatch`,
//! `RunTestNamespaceScopedWatch`.

use std::collections::BTreeMap;

use super::{ConformanceCase, Mode, Pod, ensure_events, harness, pod, run_rows, selector};
use crate::api::{
    Field, FieldSelector, FieldTerm, ListOptions, ResourceVersionParam as Rv, WatchEvent,
    WatchOptions,
};
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

/// A row's selector: everything, one label, or field terms `(field, value, equal)` that all
/// must hold (`fields.AndSelectors`).
#[derive(Clone, Copy, Debug)]
enum Sel {
    Everything,
    Label(&'static str, &'static str),
    Fields(&'static [(Field, &'static str, bool)]),
}

impl Sel {
    /// `options` with this selector.
    fn apply(self, options: WatchOptions) -> WatchOptions {
        match self {
            Sel::Everything => options,
            Sel::Label(name, value) => WatchOptions {
                label_selector: Some(selector(name, value)),
                ..options
            },
            Sel::Fields(terms) => WatchOptions {
                field_selector: Some(FieldSelector {
                    terms: terms
                        .iter()
                        .map(|&(field, value, equal)| FieldTerm {
                            field,
                            value: value.to_owned(),
                            equal,
                        })
                        .collect(),
                }),
                ..options
            },
        }
    }
}

/// One sub-case: the watch's request namespace and selector, then the writes. A request
/// name (upstream's `requestedName`) is the `metadata.name` term of the field selector.
struct Row {
    name: &'static str,
    namespace: Option<&'static str>,
    selector: Sel,
    steps: &'static [Step],
}

use Expect::{Added, Deleted, Modified, Nothing};
use Field::{MetadataName as NAME, MetadataNamespace as NAMESPACE, SpecNodeName as NODE};

/// Lists (RV unset) to get a starting RV, watches from it, applies the writes and checks that
/// the stream holds exactly the expected events, a filtered-out object arriving as DELETED
/// with its last matching state at the RV of the write that removed it. After the client stops
/// the watch, a further write reaches it no more.
fn run_row(mode: Mode, row: &Row) -> Result<(), String> {
    let mut h = harness(mode);
    let list = h.list(ListOptions::at(Rv::Unset));
    let start = h.page(list).resource_version;
    let options = row.selector.apply(WatchOptions {
        namespace: row.namespace.map(str::to_owned),
        ..watch_options(Rv::At(start))
    });
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
/// Not covered: upstream's non-recursive variant (a watch on the single key
/// `/pods/<ns>/foo`); it differs from the recursive one only in scope, and each namespace
/// here holds just `foo`.
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
        selector: Sel::Everything,
        steps: &[put(pod("test-ns-bad", "foo"), Nothing), put(FOO, Added)],
    },
    Row {
        name: "key updated to match predicate",
        namespace: Some("test-ns"),
        selector: Sel::Fields(&[(NODE, "bar", true)]),
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Nothing),
            put(FOO.assigned("bar"), Added),
        ],
    },
    Row {
        name: "update",
        namespace: Some("test-ns"),
        selector: Sel::Everything,
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Added),
            put(FOO.assigned("bar"), Modified),
        ],
    },
    Row {
        name: "delete because of being filtered",
        namespace: Some("test-ns"),
        selector: Sel::Fields(&[(NODE, "bar", false)]),
        steps: &[
            put(pod("test-ns-bad", "foo"), Nothing),
            put(FOO, Added),
            put(FOO.assigned("bar"), Deleted),
        ],
    },
    Row {
        name: "filtering",
        namespace: Some("test-ns"),
        selector: Sel::Label("select", "true"),
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
/// Covered: every row, t1–t6 (a request name is the `metadata.name` term).
pub(super) const CLUSTER_SCOPED_WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestClusterScopedWatch",
    summary: "cluster-scoped watches filtered by node and name",
    run: |mode| run_table(mode, CLUSTER_ROWS),
};

const CLUSTER_ROWS: &[Row] = &[
    Row {
        name: "t1 without name, without field selector",
        namespace: None,
        selector: Sel::Everything,
        steps: &[
            put(pod("", "t1-foo1"), Added),
            put(pod("", "t1-foo1").updated(), Modified),
            put(pod("", "t1-foo2").assigned("t1-bar1"), Added),
        ],
    },
    Row {
        name: "t2 spec.nodeName=t2-bar1",
        namespace: None,
        selector: Sel::Fields(&[(NODE, "t2-bar1", true)]),
        steps: &[
            put(pod("", "t2-foo1"), Nothing),
            put(pod("", "t2-foo1").assigned("t2-bar1"), Added),
        ],
    },
    Row {
        name: "t3 spec.nodeName!=t3-bar1",
        namespace: None,
        selector: Sel::Fields(&[(NODE, "t3-bar1", false)]),
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
        selector: Sel::Fields(&[(NAME, "t4-foo1", true)]),
        steps: &[
            put(pod("", "t4-foo1"), Added),
            put(pod("", "t4-foo2"), Nothing),
            put(pod("", "t4-foo1").updated(), Modified),
            put(pod("", "t4-foo2").updated(), Nothing),
        ],
    },
    Row {
        name: "t5 metadata.name=t5-foo1,spec.nodeName=t5-bar1",
        namespace: None,
        selector: Sel::Fields(&[(NAME, "t5-foo1", true), (NODE, "t5-bar1", true)]),
        steps: &[
            put(pod("", "t5-foo1"), Nothing),
            put(pod("", "t5-foo2"), Nothing),
            put(pod("", "t5-foo1").updated(), Nothing),
            put(pod("", "t5-foo2").updated(), Nothing),
            put(pod("", "t5-foo1").assigned("t5-bar1"), Added),
        ],
    },
    Row {
        name: "t6 spec.nodeName!=t6-bar1,metadata.name=t6-foo1",
        namespace: None,
        selector: Sel::Fields(&[(NODE, "t6-bar1", false), (NAME, "t6-foo1", true)]),
        steps: &[
            put(pod("", "t6-foo1"), Added),
            put(pod("", "t6-foo2"), Nothing),
            put(pod("", "t6-foo1").updated(), Modified),
            put(pod("", "t6-foo1").assigned("t6-bar1"), Deleted),
            put(pod("", "t6-foo2").assigned("t6-bar1"), Nothing),
        ],
    },
];

/// `RunTestNamespaceScopedWatch`: namespaced pods watched across namespaces or in one, by
/// namespace, node and name.
///
/// Covered: every row upstream has, t1–t12 and t15–t19. The request namespace is
/// [`WatchOptions::namespace`]; a request name is the `metadata.name` term.
pub(super) const NAMESPACE_SCOPED_WATCH: ConformanceCase = ConformanceCase {
    name: "RunTestNamespaceScopedWatch",
    summary: "namespace-scoped watches filtered by namespace, node and name",
    run: |mode| run_table(mode, NAMESPACE_ROWS),
};

const NAMESPACE_ROWS: &[Row] = &[
    Row {
        name: "t1 all namespaces, without field selector",
        namespace: None,
        selector: Sel::Everything,
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
        selector: Sel::Fields(&[(NAMESPACE, "t2-ns1", true)]),
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
        selector: Sel::Fields(&[(NODE, "t3-bar1", true)]),
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
        selector: Sel::Fields(&[(NODE, "t4-bar1", false)]),
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
        selector: Sel::Everything,
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
        selector: Sel::Fields(&[(NAMESPACE, "t6-ns1", true)]),
        steps: &[
            put(pod("t6-ns1", "t6-foo1"), Added),
            put(pod("t6-ns2", "t6-foo1"), Nothing),
            put(pod("t6-ns1", "t6-foo1").updated(), Modified),
        ],
    },
    Row {
        name: "t7 namespace t7-ns1, metadata.namespace=t7-ns2",
        namespace: Some("t7-ns1"),
        selector: Sel::Fields(&[(NAMESPACE, "t7-ns2", true)]),
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
        selector: Sel::Fields(&[(NODE, "t8-bar2", true)]),
        steps: &[
            put(pod("t8-ns1", "t8-foo1"), Nothing),
            put(pod("t8-ns1", "t8-foo1").assigned("t8-bar1"), Nothing),
            put(pod("t8-ns2", "t8-foo1").assigned("t8-bar2"), Nothing),
            put(pod("t8-ns1", "t8-foo1").assigned("t8-bar2"), Added),
        ],
    },
    Row {
        name: "t9 namespace t9-ns2, spec.nodeName!=t9-bar1",
        namespace: Some("t9-ns2"),
        selector: Sel::Fields(&[(NODE, "t9-bar1", false)]),
        steps: &[
            put(pod("t9-ns1", "t9-foo1"), Nothing),
            put(pod("t9-ns2", "t9-foo1"), Added),
            put(pod("t9-ns2", "t9-foo1").assigned("t9-bar1"), Deleted),
            put(pod("t9-ns2", "t9-foo1").assigned("t9-bar2"), Added),
        ],
    },
    Row {
        name: "t10 all namespaces, metadata.name=t10-foo1",
        namespace: None,
        selector: Sel::Fields(&[(NAME, "t10-foo1", true)]),
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
        namespace: None,
        selector: Sel::Fields(&[(NAME, "t11-foo1", true), (NAMESPACE, "t11-ns1", true)]),
        steps: &[
            put(pod("t11-ns1", "t11-foo1"), Added),
            put(pod("t11-ns1", "t11-foo2"), Nothing),
            put(pod("t11-ns2", "t11-foo1"), Nothing),
            put(pod("t11-ns1", "t11-foo1").updated(), Modified),
            put(pod("t11-ns1", "t11-foo1").assigned("t11-bar1"), Modified),
        ],
    },
    Row {
        name: "t12 metadata.name=t12-foo1,spec.nodeName=t12-bar1",
        namespace: None,
        selector: Sel::Fields(&[(NAME, "t12-foo1", true), (NODE, "t12-bar1", true)]),
        steps: &[
            put(pod("t12-ns1", "t12-foo1"), Nothing),
            put(pod("t12-ns1", "t12-foo1").updated(), Nothing),
            put(pod("t12-ns1", "t12-foo1").assigned("t12-bar1"), Added),
        ],
    },
    Row {
        name: "t15 spec.nodeName!=t15-bar1,metadata.name=t15-foo1",
        namespace: None,
        selector: Sel::Fields(&[(NODE, "t15-bar1", false), (NAME, "t15-foo1", true)]),
        steps: &[
            put(pod("t15-ns1", "t15-foo1"), Added),
            put(pod("t15-ns1", "t15-foo2"), Nothing),
            put(pod("t15-ns1", "t15-foo1").updated(), Modified),
            put(pod("t15-ns1", "t15-foo1").assigned("t15-bar1"), Deleted),
            put(pod("t15-ns1", "t15-foo1").assigned("t15-bar2"), Added),
        ],
    },
    Row {
        name: "t16 namespace t16-ns1, metadata.name=t16-foo1",
        namespace: Some("t16-ns1"),
        selector: Sel::Fields(&[(NAME, "t16-foo1", true)]),
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
        selector: Sel::Fields(&[(NAME, "t17-foo2", true), (NAMESPACE, "t17-ns1", true)]),
        steps: &[
            put(pod("t17-ns1", "t17-foo1"), Nothing),
            put(pod("t17-ns1", "t17-foo2"), Added),
            put(pod("t17-ns1", "t17-foo1").updated(), Nothing),
            put(pod("t17-ns1", "t17-foo2").assigned("t17-bar1"), Modified),
        ],
    },
    Row {
        name: "t18 namespace t18-ns1, metadata.name, metadata.namespace and spec.nodeName",
        namespace: Some("t18-ns1"),
        selector: Sel::Fields(&[
            (NAME, "t18-foo1", true),
            (NAMESPACE, "t18-ns1", true),
            (NODE, "t18-bar1", true),
        ]),
        steps: &[
            put(pod("t18-ns1", "t18-foo1"), Nothing),
            put(pod("t18-ns1", "t18-foo2"), Nothing),
            put(pod("t18-ns2", "t18-foo1"), Nothing),
            put(pod("t18-ns1", "t18-foo1").updated(), Nothing),
            put(pod("t18-ns1", "t18-foo1").assigned("t18-bar1"), Added),
        ],
    },
    Row {
        name: "t19 namespace t19-ns1, spec.nodeName!=t19-bar1, metadata.name, metadata.namespace",
        namespace: Some("t19-ns1"),
        selector: Sel::Fields(&[
            (NODE, "t19-bar1", false),
            (NAME, "t19-foo2", true),
            (NAMESPACE, "t19-ns1", true),
        ]),
        steps: &[
            put(pod("t19-ns1", "t19-foo1"), Nothing),
            put(pod("t19-ns2", "t19-foo2"), Nothing),
            put(pod("t19-ns1", "t19-foo2"), Added),
            put(pod("t19-ns1", "t19-foo2").updated(), Modified),
            put(pod("t19-ns1", "t19-foo2").assigned("t19-bar1"), Deleted),
        ],
    },
];
