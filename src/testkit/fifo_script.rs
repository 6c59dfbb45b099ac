//! A small JSON script language that drives one FIFO wired as an informer wires it, for worked
//! examples and regression tests. This is a public interface: keep the format exact.
//!
//! Input: `{"fifo": "delta" | "real" | "real-atomic", "steps": [STEP, ...]}`. Objects are written
//! `"ns/name@rv"` (cluster-scoped: `"name@rv"`) and become [`Object::bare`]. Steps:
//! - `{"op": "add" | "update" | "delete", "obj": OBJ}`: watch events;
//! - `{"op": "delete_tombstone", "key": "ns/name", "obj": OBJ | null}`: a Delete of a tombstone;
//! - `{"op": "replace", "list": [OBJ, ...], "rv": "N"}`: a relist;
//! - `{"op": "resync"}`, `{"op": "bookmark", "rv": "N"}` (queued by `real-atomic` only);
//! - `{"op": "pop"}`: one pop (reports nothing instead of blocking), `{"op": "drain"}`: pop until
//!   empty; each pop is processed as `processDeltas` does;
//! - `{"op": "known_add" | "known_delete", "obj": OBJ}`: change the indexer directly;
//! - `{"op": "close"}`.
//!
//! The indexer is the FIFO's known objects for `delta` and `real` (the atomic mode reads none).
//!
//! Output, one line per step: `{"step": i, "has_synced": bool, "queue": Q, "indexer": [OBJ, ...],
//! "pops": [{"key": k, "initial": bool, "deltas": [D, ...], "handler": [H, ...]}]}` where `i`
//! counts from 0, the indexer is listed in key order, a delta D is `[TYPE, OBJ]`,
//! `["ReplacedAll", {"rv": "N", "objects": [OBJ, ...]}]`, `["SyncAll", null]` or
//! `["Bookmark", "N"]`, a delta's OBJ may be a tombstone `{"tombstone": KEY, "obj": OBJ | null}`,
//! a handler call H is `["add", OBJ, initial]`, `["update", OLD, NEW]` or `["delete", OBJ]`, and
//! Q is `[[key, [D, ...]], ...]` in queue order for `delta`, `[D, ...]` in log order otherwise.
//!
//! ```
//! use informer_sim::testkit::fifo_script::run_script;
//!
//! let script = r#"{"fifo": "delta", "steps": [{"op": "add", "obj": "ns/a@1"}, {"op": "pop"}]}"#;
//! let output = run_script(script).unwrap();
//! let lines: Vec<&str> = output.lines().collect();
//! assert_eq!(lines[1], concat!(
//!     r#"{"step":1,"has_synced":true,"queue":[],"indexer":["ns/a@1"],"#,
//!     r#""pops":[{"key":"ns/a","initial":false,"deltas":[["Added","ns/a@1"]],"#,
//!     r#""handler":[["add","ns/a@1",false]]}]}"#,
//! ));
//! ```

use serde::{Deserialize, Serialize};

use crate::bug::Bugs;
use crate::client::delta::{DeletedFinalStateUnknown, Delta, DeltaObject};
use crate::client::fifo::{Fifo, FifoKind};
use crate::client::indexer::Indexer;
use crate::client::process_deltas::{Notification, process_deltas};
use crate::object::{Object, ObjectKey, ResourceVersion};

/// The step names, as the error for an unknown one lists them.
const OPS: [&str; 12] = [
    "add",
    "update",
    "delete",
    "delete_tombstone",
    "replace",
    "resync",
    "bookmark",
    "pop",
    "drain",
    "known_add",
    "known_delete",
    "close",
];

/// Why a script could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script as a whole is not `{"fifo": ..., "steps": [...]}`.
    #[error("script: {0}")]
    Script(String),
    /// One step is malformed, or broke an invariant (a model bug).
    #[error("step {step}: {message}")]
    Step {
        /// The step's index, from 0.
        step: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    fifo: String,
    steps: Vec<serde_json::Value>,
}

/// One step. Fieldless steps are empty struct variants so that `deny_unknown_fields` applies.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    Add { obj: String },
    Update { obj: String },
    Delete { obj: String },
    DeleteTombstone { key: String, obj: Option<String> },
    Replace { list: Vec<String>, rv: String },
    Resync {},
    Bookmark { rv: String },
    Pop {},
    Drain {},
    KnownAdd { obj: String },
    KnownDelete { obj: String },
    Close {},
}

impl ScriptError {
    /// The same error on one line: line breaks the script wrote (in a field name, a key) are
    /// shown escaped.
    fn one_line(self) -> ScriptError {
        let escape = |message: String| message.replace('\r', "\\r").replace('\n', "\\n");
        match self {
            ScriptError::Script(message) => ScriptError::Script(escape(message)),
            ScriptError::Step { step, message } => ScriptError::Step {
                step,
                message: escape(message),
            },
        }
    }
}

/// Runs `input` and returns one newline-terminated JSON line per step.
pub fn run_script(input: &str) -> Result<String, ScriptError> {
    run_steps(input).map_err(ScriptError::one_line)
}

fn run_steps(input: &str) -> Result<String, ScriptError> {
    let script: Script =
        serde_json::from_str(input).map_err(|e| ScriptError::Script(e.to_string()))?;
    let kind: FifoKind = script.fifo.parse().map_err(ScriptError::Script)?;
    let mut run = Run {
        fifo: Fifo::new(kind, Bugs::NONE),
        indexer: Indexer::default(),
    };
    let mut output = String::new();
    for (index, value) in script.steps.into_iter().enumerate() {
        let step_error = |message: String| ScriptError::Step {
            step: index,
            message,
        };
        let step = parse_step(value).map_err(step_error)?;
        let pops = run.apply(step).map_err(step_error)?;
        run.check_invariants()
            .map_err(|e| step_error(format!("invariant violated: {e}")))?;
        let report = run.report(index, pops);
        output.push_str(&serde_json::to_string(&report).expect("reports serialize"));
        output.push('\n');
    }
    Ok(output)
}

fn parse_step(value: serde_json::Value) -> Result<Step, String> {
    let op = value.get("op").ok_or("missing \"op\"")?;
    let op = op
        .as_str()
        .ok_or_else(|| format!("\"op\" must be a string, got {op}"))?
        .to_owned();
    if !OPS.contains(&op.as_str()) {
        return Err(format!("unknown op {op:?} (allowed: {})", OPS.join(", ")));
    }
    serde_json::from_value(value).map_err(|e| format!("bad {op:?} step: {e}"))
}

/// Parses `ns/name@rv` or `name@rv`.
fn parse_object(text: &str) -> Result<Object, String> {
    let (key, rv) = text
        .rsplit_once('@')
        .ok_or_else(|| format!("object {text:?} is not \"ns/name@rv\""))?;
    parse_key(key)?;
    let resource_version = parse_resource_version(rv)?;
    Ok(Object::bare(key, resource_version))
}

fn parse_key(key: &str) -> Result<ObjectKey, String> {
    let parts: Vec<&str> = key.split('/').collect();
    if parts.len() > 2
        || parts
            .iter()
            .any(|part| part.is_empty() || part.contains('@'))
    {
        return Err(format!("key {key:?} is not \"ns/name\" or \"name\""));
    }
    Ok(ObjectKey::new(key))
}

fn parse_resource_version(text: &str) -> Result<ResourceVersion, String> {
    text.parse()
        .map_err(|_| format!("resource version {text:?} is not an unsigned integer"))
}

/// One FIFO and the indexer it feeds.
struct Run {
    fifo: Fifo,
    indexer: Indexer,
}

impl Run {
    fn apply(&mut self, step: Step) -> Result<Vec<PopReport>, String> {
        match step {
            Step::Add { obj } => self.fifo.add(parse_object(&obj)?),
            Step::Update { obj } => self.fifo.update(parse_object(&obj)?),
            Step::Delete { obj } => {
                let obj = DeltaObject::Object(parse_object(&obj)?);
                self.fifo.delete(obj, &self.indexer);
            }
            Step::DeleteTombstone { key, obj } => {
                let tombstone = parse_tombstone(&key, obj.as_deref())?;
                self.fifo
                    .delete(DeltaObject::Tombstone(tombstone), &self.indexer);
            }
            Step::Replace { list, rv } => {
                let list = list
                    .iter()
                    .map(|obj| parse_object(obj))
                    .collect::<Result<_, _>>()?;
                self.fifo
                    .replace(list, parse_resource_version(&rv)?, &self.indexer);
            }
            Step::Resync {} => self.fifo.resync(&self.indexer),
            Step::Bookmark { rv } => self.fifo.bookmark(parse_resource_version(&rv)?),
            Step::Pop {} => return Ok(self.pop().into_iter().collect()),
            Step::Drain {} => return Ok(std::iter::from_fn(|| self.pop()).collect()),
            Step::KnownAdd { obj } => self.indexer.add(parse_object(&obj)?),
            Step::KnownDelete { obj } => self.indexer.delete(&parse_object(&obj)?.key),
            Step::Close {} => self.fifo.close(),
        }
        Ok(Vec::new())
    }

    /// One pop, processed as the informer processes it; `None` when nothing is queued.
    fn pop(&mut self) -> Option<PopReport> {
        let popped = self.fifo.pop().ok()?;
        let notifications =
            process_deltas(&mut self.indexer, &popped.deltas, popped.is_in_initial_list);
        self.fifo.done();
        Some(PopReport {
            key: popped.key().map(ToString::to_string),
            initial: popped.is_in_initial_list,
            deltas: popped.deltas.iter().map(delta_json).collect(),
            handler: notifications.iter().map(handler_json).collect(),
        })
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.fifo.check_invariants()?;
        self.indexer.check_index_invariant()
    }

    fn report(&self, step: usize, pops: Vec<PopReport>) -> StepReport {
        let queue = match &self.fifo {
            Fifo::Delta(fifo) => QueueJson::Keyed(
                fifo.queued()
                    .map(|(key, deltas)| (key.to_string(), deltas.iter().map(delta_json).collect()))
                    .collect(),
            ),
            Fifo::Real(fifo) => QueueJson::Log(fifo.queued().map(delta_json).collect()),
        };
        StepReport {
            step,
            has_synced: self.fifo.has_synced(),
            queue,
            indexer: self
                .indexer
                .list()
                .iter()
                .map(ToString::to_string)
                .collect(),
            pops,
        }
    }
}

fn parse_tombstone(key: &str, obj: Option<&str>) -> Result<DeletedFinalStateUnknown, String> {
    let key = parse_key(key)?;
    let obj = obj.map(parse_object).transpose()?;
    if let Some(obj) = &obj
        && obj.key != key
    {
        return Err(format!(
            "tombstone for {key} holds an object of {}",
            obj.key
        ));
    }
    Ok(DeletedFinalStateUnknown { key, obj })
}

#[derive(Serialize)]
struct StepReport {
    step: usize,
    has_synced: bool,
    queue: QueueJson,
    indexer: Vec<String>,
    pops: Vec<PopReport>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum QueueJson {
    Keyed(Vec<(String, Vec<DeltaJson>)>),
    Log(Vec<DeltaJson>),
}

#[derive(Serialize)]
struct PopReport {
    key: Option<String>,
    initial: bool,
    deltas: Vec<DeltaJson>,
    handler: Vec<HandlerJson>,
}

type DeltaJson = (&'static str, PayloadJson);

#[derive(Serialize)]
#[serde(untagged)]
enum PayloadJson {
    Object(ObjectJson),
    ReplacedAll { rv: String, objects: Vec<String> },
    Bookmark(String),
    SyncAll,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ObjectJson {
    Object(String),
    Tombstone {
        tombstone: String,
        obj: Option<String>,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum HandlerJson {
    Add(&'static str, ObjectJson, bool),
    Update(&'static str, ObjectJson, ObjectJson),
    Delete(&'static str, ObjectJson),
}

fn object_json(obj: &DeltaObject) -> ObjectJson {
    match obj {
        DeltaObject::Object(obj) => ObjectJson::Object(obj.to_string()),
        DeltaObject::Tombstone(DeletedFinalStateUnknown { key, obj }) => ObjectJson::Tombstone {
            tombstone: key.to_string(),
            obj: obj.as_ref().map(ToString::to_string),
        },
    }
}

fn delta_json(delta: &Delta) -> DeltaJson {
    let payload = match delta {
        Delta::Added(obj) | Delta::Updated(obj) | Delta::Replaced(obj) | Delta::Sync(obj) => {
            PayloadJson::Object(ObjectJson::Object(obj.to_string()))
        }
        Delta::Deleted(obj) => PayloadJson::Object(object_json(obj)),
        Delta::ReplacedAll(info) => PayloadJson::ReplacedAll {
            rv: info.resource_version.to_string(),
            objects: info.objects.iter().map(ToString::to_string).collect(),
        },
        Delta::SyncAll => PayloadJson::SyncAll,
        Delta::Bookmark(resource_version) => PayloadJson::Bookmark(resource_version.to_string()),
    };
    (delta.delta_type().as_str(), payload)
}

fn handler_json(notification: &Notification) -> HandlerJson {
    let plain = |obj: &Object| ObjectJson::Object(obj.to_string());
    match notification {
        Notification::Add {
            obj,
            is_in_initial_list,
        } => HandlerJson::Add("add", plain(obj), *is_in_initial_list),
        Notification::Update { old, new } => HandlerJson::Update("update", plain(old), plain(new)),
        Notification::Delete(obj) => HandlerJson::Delete("delete", object_json(obj)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(script: &str) -> String {
        run_script(script).unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_op_names_the_step_and_the_allowed_ops() {
        let message = error_of(r#"{"fifo": "delta", "steps": [{"op": "pop"}, {"op": "pusj"}]}"#);
        assert!(
            message.starts_with(r#"step 1: unknown op "pusj" (allowed: add, update, delete,"#),
            "{message}"
        );
        assert!(message.ends_with("known_delete, close)"), "{message}");
    }

    #[test]
    fn malformed_objects_keys_and_versions_are_step_errors() {
        let bad_object = error_of(r#"{"fifo": "real", "steps": [{"op": "add", "obj": "ns/a"}]}"#);
        assert_eq!(bad_object, r#"step 0: object "ns/a" is not "ns/name@rv""#);
        let bad_key = error_of(r#"{"fifo": "real", "steps": [{"op": "add", "obj": "a/b/c@1"}]}"#);
        assert!(bad_key.contains("key \"a/b/c\""), "{bad_key}");
        let bad_rv =
            error_of(r#"{"fifo": "real", "steps": [{"op": "replace", "list": [], "rv": "x"}]}"#);
        assert!(bad_rv.contains("resource version \"x\""), "{bad_rv}");
    }

    #[test]
    fn unknown_fields_missing_fields_and_bad_fifos_are_errors() {
        let extra =
            error_of(r#"{"fifo": "delta", "steps": [{"op": "add", "obj": "a@1", "x": 1}]}"#);
        assert!(
            extra.starts_with("step 0: bad \"add\" step: unknown field `x`"),
            "{extra}"
        );
        let missing = error_of(r#"{"fifo": "delta", "steps": [{"op": "replace", "rv": "1"}]}"#);
        assert!(missing.contains("missing field `list`"), "{missing}");
        let extra_on_unit = error_of(r#"{"fifo": "delta", "steps": [{"op": "resync", "x": 1}]}"#);
        assert!(
            extra_on_unit.contains("unknown field `x`"),
            "{extra_on_unit}"
        );
        let no_op = error_of(r#"{"fifo": "delta", "steps": [{"obj": "a@1"}]}"#);
        assert_eq!(no_op, r#"step 0: missing "op""#);
        assert!(
            error_of(r#"{"fifo": "lifo", "steps": []}"#)
                .starts_with("script: unknown fifo \"lifo\"")
        );
        assert!(error_of("[1, 2]").starts_with("script: "));
    }

    #[test]
    fn a_tombstone_must_hold_an_object_of_its_own_key() {
        let script = r#"{"fifo": "real", "steps": [
            {"op": "delete_tombstone", "key": "ns/a", "obj": "ns/b@1"}]}"#;
        assert_eq!(
            error_of(script),
            "step 0: tombstone for ns/a holds an object of ns/b"
        );
    }

    #[test]
    fn pop_on_an_empty_fifo_reports_no_pops() {
        let output =
            run_script(r#"{"fifo": "real-atomic", "steps": [{"op": "pop"}, {"op": "close"}]}"#)
                .unwrap();
        let expected = concat!(
            r#"{"step":0,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
            "\n",
            r#"{"step":1,"has_synced":false,"queue":[],"indexer":[],"pops":[]}"#,
            "\n",
        );
        assert_eq!(output, expected);
    }
}
