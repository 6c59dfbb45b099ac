//! kube-apiserver's storage conformance suite (`k8s.io/apiserver pkg/storage/testing`: the
//! watch cases of `watcher_tests.go` and the list cases of `store_tests.go`; and cacher tests
//! that the model's paths reach), ported as named
//! cases that run against the apiserver with its watch cache ([`Mode::Cache`], upstream's
//! cacher) and without it ([`Mode::NoCache`], upstream's etcd3 store).
//!
//! Each case writes its scenario through the [`Harness`], so every list and watch event is
//! also checked by the server oracles, and asserts exact event sequences, resource versions
//! and errors. Upstream checks are restated, not translated; where the model lacks what a case
//! needs, the case's doc comment says what stands in for it and what is not covered.
//!
//! Mapping used throughout: a request's namespace is [`WatchOptions::namespace`], a request's
//! name the `metadata.name` term of its field selector (the cacher derives its scope from
//! either); field selectors are the model's own (`metadata.name`, `metadata.namespace`,
//! `spec.nodeName`); a pod's status change is a payload change.
//!
//! ```
//! use informer_sim::conformance::{CASES, Mode};
//!
//! let case = CASES.iter().find(|case| case.name == "RunTestWatchFromNonZero").unwrap();
//! assert_eq!((case.run)(Mode::Cache), Ok(()));
//! assert_eq!((case.run)(Mode::NoCache), Ok(()));
//! ```

mod basic;
mod bookmarks;
mod cacher;
mod errors;
mod lists;
mod scoped;
mod watch_list;

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};

use crate::api::{LabelSelector, WatchEvent, WatchOptions};
use crate::apiserver::server::ApiserverConfig;
use crate::object::Object;
use crate::sim::SimDuration;
use crate::testkit::apiserver_pair::Harness;

/// Which storage the apiserver serves watches from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// The watch cache (upstream's `Cacher`).
    Cache,
    /// etcd directly (upstream's etcd3 store).
    NoCache,
}

impl Mode {
    /// Both modes, cache first.
    pub const ALL: [Mode; 2] = [Mode::Cache, Mode::NoCache];

    /// The apiserver settings of this mode.
    pub fn config(self) -> ApiserverConfig {
        ApiserverConfig {
            watch_cache: self == Mode::Cache,
            ..ApiserverConfig::default()
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Cache => "cache",
            Mode::NoCache => "no-cache",
        })
    }
}

/// One ported upstream case.
#[derive(Clone, Copy, Debug)]
pub struct ConformanceCase {
    /// The upstream function's name, e.g. `RunTestWatch`.
    pub name: &'static str,
    /// What it checks, on one line.
    pub summary: &'static str,
    /// Runs the case against one mode: `Err` says what differed.
    pub run: fn(Mode) -> Result<(), String>,
}

/// Every ported case, in upstream's order.
pub const CASES: &[ConformanceCase] = &[
    scoped::WATCH,
    basic::WATCH_FROM_ZERO,
    basic::DELETE_TRIGGER_WATCH,
    basic::WATCH_FROM_NON_ZERO,
    basic::DELAYED_WATCH_DELIVERY,
    errors::WATCH_ERROR,
    errors::WATCH_WITH_UNSAFE_DELETE,
    basic::WATCH_CONTEXT_CANCEL,
    basic::WATCHER_TIMEOUT,
    basic::WATCH_DELETE_EVENT_OBJECT_HAVE_LATEST_RV,
    basic::WATCH_INITIALIZATION_SIGNAL,
    bookmarks::PROGRESS_NOTIFY,
    scoped::CLUSTER_SCOPED_WATCH,
    scoped::NAMESPACE_SCOPED_WATCH,
    bookmarks::WATCH_DISPATCH_BOOKMARK_EVENTS,
    bookmarks::WATCH_BOOKMARKS_WITH_CORRECT_RESOURCE_VERSION,
    watch_list::SEND_INITIAL_EVENTS_BACKWARD_COMPATIBILITY,
    watch_list::WATCH_SEMANTICS,
    watch_list::WATCH_SEMANTIC_INITIAL_EVENTS_EXTENDED,
    watch_list::WATCH_LIST_MATCH_SINGLE,
    errors::WATCH_ERROR_IS_BLOCKING_FURTHER_EVENTS,
    lists::LIST_PAGING,
    lists::LIST_CONTINUATION,
    lists::LIST_PAGINATION_RARE_OBJECT,
    lists::LIST_CONTINUATION_WITH_FILTER,
    lists::CONSISTENT_LIST,
    lists::LIST_INCONSISTENT_CONTINUATION,
    lists::LIST_RESOURCE_VERSION_MATCH,
    cacher::CACHE_INTERVAL_INVALIDATION_STOPS_WATCH,
];

/// Runs every case in both modes: `(name, mode, result)`, a panic counted as a failure.
pub fn run_all() -> Vec<(&'static str, Mode, Result<(), String>)> {
    CASES
        .iter()
        .flat_map(|case| Mode::ALL.map(|mode| (case.name, mode, run_case(case, mode))))
        .collect()
}

fn run_case(case: &ConformanceCase, mode: Mode) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| (case.run)(mode))).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(format!("panicked: {message}"))
    })
}

/// A fresh harness for `mode`.
fn harness(mode: Mode) -> Harness {
    Harness::new(mode.config())
}

/// A pod as the upstream cases write it: base, status Running (`updated`), assigned to a node,
/// or labelled `select=true`.
#[derive(Clone, Copy, Debug)]
struct Pod {
    namespace: &'static str,
    name: &'static str,
    node: &'static str,
    running: bool,
    selected: bool,
}

/// The base pod `name` in `namespace` (`""`: cluster-scoped).
const fn pod(namespace: &'static str, name: &'static str) -> Pod {
    Pod {
        namespace,
        name,
        node: "",
        running: false,
        selected: false,
    }
}

impl Pod {
    /// The pod with status Running (`basePodUpdated`).
    const fn updated(self) -> Pod {
        Pod {
            running: true,
            ..self
        }
    }

    /// The base pod bound to `node` (`basePodAssigned`).
    const fn assigned(self, node: &'static str) -> Pod {
        Pod {
            node,
            running: false,
            ..self
        }
    }

    /// The pod with label `select=true`.
    const fn selected(self) -> Pod {
        Pod {
            selected: true,
            ..self
        }
    }

    fn key(&self) -> String {
        crate::object::ObjectKey::namespaced(self.namespace, self.name)
            .as_str()
            .to_owned()
    }

    /// Writes the pod; returns the stored object.
    fn write(&self, h: &mut Harness) -> Object {
        let mut labels = BTreeMap::new();
        if self.selected {
            labels.insert("select".to_owned(), "true".to_owned());
        }
        let body = Object::encode_body_on_node(&labels, u64::from(self.running), self.node);
        h.write_body(&self.key(), body)
    }
}

/// An equality label selector.
fn selector(name: &str, value: &str) -> LabelSelector {
    LabelSelector {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// `options` limited to `namespace`.
fn in_namespace(namespace: &str, options: WatchOptions) -> WatchOptions {
    WatchOptions {
        namespace: Some(namespace.to_owned()),
        ..options
    }
}

/// `Err` with `message` unless `condition` holds.
fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

/// Stream `id` received exactly `expected` events (closes and rejections aside).
fn ensure_events(h: &Harness, id: u64, expected: &[WatchEvent]) -> Result<(), String> {
    let got = h.events(id);
    ensure(got == expected, || {
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        let want: Vec<String> = expected.iter().map(ToString::to_string).collect();
        format!(
            "stream {id}: got {got:?}, want {want:?} ({:?})",
            h.events(id)
        )
    })
}

/// Stream `id` received exactly `expected`, as [`Harness::stream`] lines.
fn ensure_stream(h: &Harness, id: u64, expected: &[&str]) -> Result<(), String> {
    let got = h.stream(id);
    ensure(got == expected, || {
        format!("stream {id}: got {got:?}, want {expected:?}")
    })
}

/// Whether a [`Harness::stream`] line is a 429 refusal of the watch request.
fn is_rejected_too_many_requests(line: &str) -> bool {
    line.starts_with("REJECTED") && line.contains("TooManyRequests")
}

/// Advances in 10 ms steps until `done` holds, for at most `limit`.
fn wait_for(
    h: &mut Harness,
    limit: SimDuration,
    done: impl Fn(&Harness) -> bool,
) -> Result<(), String> {
    let step = SimDuration::from_millis(10);
    let mut waited = SimDuration::ZERO;
    while !done(h) {
        ensure(waited < limit, || format!("nothing after {waited:?}"))?;
        h.advance(step);
        waited = SimDuration(waited.as_millis() + step.as_millis());
    }
    Ok(())
}

/// Runs every row of a table (upstream's `t.Run` sub-cases); `Err` names each failing row.
fn run_rows<Row>(
    rows: &[Row],
    name: impl Fn(&Row) -> String,
    run: impl Fn(&Row) -> Result<(), String>,
) -> Result<(), String> {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            run(row)
                .err()
                .map(|error| format!("[{}] {error}", name(row)))
        })
        .collect();
    ensure(failures.is_empty(), || failures.join("\n"))
}
