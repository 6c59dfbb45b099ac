//! Reading a failure: `explain`, `run --format perfetto`, `report` and `sweep --report`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use informer_sim::world::RunStats;
use serde_json::Value;

/// Three planted bugs, one per part of the pipeline, with a seed that catches each: a client's
/// processing loop (B24), DeltaFIFO's Replace (B2) and the apiserver's watch cache (B9a).
pub const THREE_BUGS: [(&str, &str, &str); 3] = [
    ("informer-fifo-backlog", "requeue-on-process-error", "0"),
    (
        "informer-fifo-backlog",
        "replace-skips-key-with-queued-delete",
        "0",
    ),
    ("informer", "watch-cache-serves-event-at-rv", "3"),
];

/// Runs the binary in `dir`.
pub fn informer_sim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_informer-sim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs")
}

/// Runs `command` on a planted bug's seed (`--seed S --scenario NAME --bug B`), then `extra`.
pub fn on_bug(dir: &Path, command: &str, case: (&str, &str, &str), extra: &[&str]) -> Output {
    let (scenario, bug, seed) = case;
    let mut args = vec![
        command,
        "--seed",
        seed,
        "--scenario",
        scenario,
        "--bug",
        bug,
    ];
    args.extend_from_slice(extra);
    informer_sim_in(dir, &args)
}

/// A fresh directory under the target directory for test `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[test]
fn explain_shows_three_planted_bugs_each_in_at_most_40_lines_ending_at_the_violation() {
    let dir = scratch("explain");
    for case in THREE_BUGS {
        let bug = case.1;
        let output = on_bug(&dir, "explain", case, &[]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{bug}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= 40, "{bug}: {} lines\n{text}", lines.len());
        assert!(lines[0].contains("shrunk from"), "{bug}: {}", lines[0]);
        let key = lines[1]
            .strip_prefix("following ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("{bug} names no object: {}", lines[1]));
        let mark = lines
            .iter()
            .position(|line| line.starts_with("  ✗ step "))
            .unwrap_or_else(|| panic!("{bug}: no violation mark\n{text}"));
        assert!(lines[mark].contains(key), "{bug}: {}", lines[mark]);
        assert!(lines[mark + 1].starts_with("cause: "), "{bug}");
        assert!(text.contains("planted bug "), "{bug}");
        let timeline = &lines[2..mark];
        let on_key = timeline.iter().filter(|line| line.contains(key)).count();
        assert!(
            on_key * 2 >= timeline.len(),
            "{bug}: mostly about {key}\n{text}"
        );
        let times: Vec<u64> = timeline
            .iter()
            .filter_map(|line| line.split("ms").next()?.trim().parse().ok())
            .collect();
        assert!(
            times.windows(2).all(|pair| pair[0] <= pair[1]),
            "{bug}: in order"
        );
    }
}

#[test]
fn explain_reads_a_replay_file_and_refuses_a_passing_seed_in_one_line() {
    let dir = scratch("explain-replay");
    let run = on_bug(&dir, "run", THREE_BUGS[0], &[]);
    let run_text = stdout(&run);
    let file = run_text
        .lines()
        .find_map(|line| line.strip_prefix("replay file: informer-sim replay "))
        .expect("a failing run saves a replay file");
    let failed_at = run_text
        .lines()
        .find_map(|line| line.split("step=").nth(1))
        .expect("FAIL line");
    let output = informer_sim_in(&dir, &["explain", file, "--runs", "0"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.lines()
            .next()
            .is_some_and(|line| line.ends_with("not shrunk")),
        "{text}"
    );
    assert!(text.contains(&format!("✗ step {failed_at}:")), "{text}");

    let passing = informer_sim_in(&dir, &["explain", "--seed", "1", "--scenario", "informer"]);
    assert_eq!(passing.status.code(), Some(2));
    let error = String::from_utf8(passing.stderr).expect("utf-8");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("breaks no invariant"), "{error}");
}

/// The fields every event of the trace-event format has, checked for one event.
fn check_event(event: &Value) -> Result<(), String> {
    let phase = event["ph"].as_str().ok_or("no ph")?;
    event["name"].as_str().ok_or("no name")?;
    event["pid"].as_u64().ok_or("no pid")?;
    event["tid"].as_u64().ok_or("no tid")?;
    match phase {
        "M" => {
            let name = event["name"].as_str().unwrap_or_default();
            let known = ["process_name", "thread_name", "thread_sort_index"].contains(&name);
            (known && event["args"].is_object())
                .then_some(())
                .ok_or(format!("bad metadata {event}"))
        }
        "i" => {
            event["ts"].as_u64().ok_or("no ts")?;
            ["t", "p", "g"]
                .contains(&event["s"].as_str().unwrap_or("t"))
                .then_some(())
                .ok_or(format!("bad scope {event}"))
        }
        "s" | "f" => {
            event["ts"].as_u64().ok_or("no ts")?;
            event["id"].as_u64().ok_or("no flow id")?;
            event["cat"].as_str().ok_or("a flow needs a category")?;
            Ok(())
        }
        other => Err(format!("unexpected phase {other}")),
    }
}

#[test]
fn the_perfetto_export_is_trace_event_json_with_a_track_per_lane_flows_and_the_violation() {
    let dir = scratch("perfetto");
    let output = on_bug(
        &dir,
        "run",
        THREE_BUGS[0],
        &["--trace", "t.json", "--format", "perfetto"],
    );
    assert_eq!(output.status.code(), Some(1), "the bug fails the run");
    let steps: u64 = stdout(&output)
        .lines()
        .find_map(|line| line.split("step=").nth(1)?.parse().ok())
        .expect("FAIL line");
    let text = std::fs::read_to_string(dir.join("t.json")).expect("trace written");
    let document: Value = serde_json::from_str(&text).expect("one JSON document");
    let events = document["traceEvents"].as_array().expect("traceEvents");
    for event in events {
        check_event(event).unwrap_or_else(|error| panic!("{error}: {event}"));
    }
    let of = |phase: &'static str| events.iter().filter(move |event| event["ph"] == phase);
    let named: BTreeMap<u64, &str> = of("M")
        .filter(|event| event["name"] == "thread_name")
        .map(|event| {
            (
                event["tid"].as_u64().unwrap(),
                event["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    let names: BTreeSet<&str> = named.values().copied().collect();
    assert_eq!(names.len(), named.len(), "one track per lane");
    for lane in [
        "etcd",
        "apiserver-0",
        "client-0 reflector",
        "client-0 indexer",
    ] {
        assert!(names.contains(lane), "a track for {lane}: {names:?}");
    }
    let instants: Vec<&Value> = of("i").filter(|event| event["s"] == "t").collect();
    for instant in &instants {
        assert!(
            named.contains_key(&instant["tid"].as_u64().unwrap()),
            "{instant}"
        );
    }
    let recorded = instants
        .iter()
        .filter(|event| event["args"]["recorded"] == true)
        .count() as u64;
    assert_eq!(recorded, steps, "an instant per step");
    let bound = |flow: &Value| {
        instants.iter().any(|instant| {
            ["pid", "tid", "ts", "cat"]
                .iter()
                .all(|field| instant[field] == flow[field])
        })
    };
    let mut flows: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for flow in of("s").chain(of("f")) {
        assert!(bound(flow), "a flow bound to an instant: {flow}");
        flows
            .entry(flow["id"].as_u64().unwrap())
            .or_default()
            .push(flow);
    }
    assert!(flows.len() > 10, "messages flow: {}", flows.len());
    for (id, ends) in &flows {
        assert_eq!(ends.len(), 2, "flow {id} has a start and an end");
        assert!(
            ends[0]["ts"].as_u64() <= ends[1]["ts"].as_u64(),
            "flow {id} goes forward"
        );
    }
    let violations: Vec<&Value> = of("i").filter(|event| event["s"] == "g").collect();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0]["args"]["step"].as_u64(), Some(steps));
    assert!(
        violations[0]["name"]
            .as_str()
            .unwrap()
            .contains("indexer_rv_never_decreases")
    );
}

#[test]
fn the_report_is_one_self_contained_page_with_diagram_violation_histories_and_invariants() {
    let dir = scratch("report");
    let output = on_bug(&dir, "report", THREE_BUGS[0], &["-o", "run.html"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let page = std::fs::read_to_string(dir.join("run.html")).expect("page written");
    for part in [
        "<svg id=\"diagram\"",
        "id=\"violation\"",
        "<table class=\"history\" data-key=\"ns-0/obj-0\"",
        "<table id=\"invariants\"",
        "<th>client-0 indexer</th>",
        "broke at step",
    ] {
        assert!(page.contains(part), "the page has {part}");
    }
    assert!(
        page.matches("class=\"arrow").count() > 5,
        "messages are arrows"
    );
    for outside in ["<script", "<link", "@import", " src=", "@font-face"] {
        assert!(!page.contains(outside), "nothing from outside: {outside}");
    }
    let addresses = page.matches("http").count();
    let namespaces = page.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(addresses, namespaces, "no address but SVG's namespace");
}

#[test]
fn a_sweep_report_links_each_failure_to_its_page_and_charts_the_exercised_counts() {
    let dir = scratch("sweep-report");
    let (scenario, bug, _) = THREE_BUGS[0];
    let output = informer_sim_in(
        &dir,
        &[
            "sweep",
            "--scenario",
            scenario,
            "--bug",
            bug,
            "--seeds",
            "0..3",
            "--report",
            "out",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "the bug fails seeds");
    let failed = stdout(&output).matches("\nFAIL seed=").count();
    let index = std::fs::read_to_string(dir.join("out/index.html")).expect("index written");
    let links: Vec<&str> = index
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(links.len(), failed, "a page per failure");
    for link in links {
        let page = std::fs::read_to_string(dir.join("out").join(link)).expect("linked page");
        assert!(page.contains("id=\"violation\""), "{link}");
    }
    assert_eq!(
        index.matches("<g class=\"bar\"").count(),
        RunStats::default().counts().len(),
        "every exercised count"
    );
    assert!(index.contains("<table id=\"probes\""));
}
