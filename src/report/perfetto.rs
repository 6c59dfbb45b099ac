//! A recorded run as Chrome trace-event JSON (the "JSON Object Format" that Perfetto and
//! chrome://tracing open): one process, one thread track per [`Lane`], one thread-scoped
//! instant event per entry, a flow (`s` then `f`, bound to the instants at both ends by equal
//! category, thread and timestamp) per message, and the violation as a global instant.
//!
//! Simulated milliseconds become microseconds, and entries within one millisecond are spread
//! a microsecond apart, so that order within a millisecond stays visible.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use super::recording::{Lane, Recorded};

/// The one process of the export.
const PID: u64 = 1;
/// The category of every step and of the flows bound to them.
const STEP_CATEGORY: &str = "step";

/// Each lane's thread id, from 1, in lane order (writers, etcd, apiservers, clients, faults).
fn thread_ids(recorded: &Recorded) -> BTreeMap<Lane, u64> {
    let mut lanes: Vec<Lane> = recorded
        .recording
        .entries
        .iter()
        .map(|entry| entry.lane)
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    lanes.into_iter().zip(1..).collect()
}

/// Each entry's timestamp in microseconds.
fn timestamps(recorded: &Recorded) -> Vec<u64> {
    let mut stamps = Vec::with_capacity(recorded.recording.entries.len());
    let mut previous: Option<u64> = None;
    for entry in &recorded.recording.entries {
        let base = entry.time_ms * 1000;
        let stamp = match previous {
            Some(previous) if previous >= base => (previous + 1).min(base + 999),
            _ => base,
        };
        stamps.push(stamp);
        previous = Some(stamp);
    }
    stamps
}

/// The trace-event document of `recorded`.
pub fn document(recorded: &Recorded) -> Value {
    let threads = thread_ids(recorded);
    let stamps = timestamps(recorded);
    let entries = &recorded.recording.entries;
    let case = &recorded.case;
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": PID, "tid": 0,
        "args": {"name": super::case_name(case)},
    })];
    for (lane, tid) in &threads {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": PID, "tid": tid,
            "args": {"name": lane.to_string()},
        }));
        events.push(json!({
            "name": "thread_sort_index", "ph": "M", "pid": PID, "tid": tid,
            "args": {"sort_index": tid},
        }));
    }
    for (index, entry) in entries.iter().enumerate() {
        let keys: Vec<&str> = entry.keys.iter().map(|key| key.as_str()).collect();
        events.push(json!({
            "name": entry.text, "cat": STEP_CATEGORY, "ph": "i", "s": "t",
            "ts": stamps[index], "pid": PID, "tid": threads[&entry.lane],
            "args": {
                "step": entry.step, "recorded": entry.recorded,
                "kind": format!("{:?}", entry.kind), "keys": keys,
            },
        }));
        if let Some(from) = entry.from {
            for (phase, at) in [("s", from), ("f", index)] {
                let mut flow = json!({
                    "name": "message", "cat": STEP_CATEGORY, "ph": phase, "id": index,
                    "ts": stamps[at], "pid": PID, "tid": threads[&entries[at].lane],
                });
                if phase == "f" {
                    flow["bp"] = json!("e");
                }
                events.push(flow);
            }
        }
    }
    if let Some((step, violation)) = &recorded.outcome.violation {
        let at = recorded.recording.violation_entry(*step);
        let ts = at.map_or(0, |at| stamps[at] + 1);
        let tid = at.map_or(0, |at| threads[&entries[at].lane]);
        events.push(json!({
            "name": format!("VIOLATION {}", violation.invariant), "cat": "violation",
            "ph": "i", "s": "g", "ts": ts, "pid": PID, "tid": tid,
            "args": {"step": step, "message": violation.message},
        }));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "scenario": case.scenario.name,
            "seed": case.seed,
            "trace_hash": recorded.outcome.trace_hash.to_string(),
        },
    })
}

/// Writes the trace-event document of `recorded` to `out`.
pub fn write(recorded: &Recorded, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &document(recorded)).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}
