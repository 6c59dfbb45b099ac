//! The command line contract: output lines, exit codes, bad input.

use std::process::{Command, Output};

fn informer_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_informer-sim"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

#[test]
fn run_prints_ok_with_seed_events_and_trace_hash() {
    let output = informer_sim(&["run", "--seed", "42"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let last = text.lines().last().expect("a line");
    assert!(last.starts_with("ok seed=42 events="), "{last}");
    assert_eq!(last.rsplit("trace=").next().expect("hash").len(), 16);
}

#[test]
fn run_accepts_hex_seeds_as_the_same_seed() {
    let decimal = stdout(&informer_sim(&["run", "--seed", "255"]));
    let hex = stdout(&informer_sim(&["run", "--seed", "0xff"]));
    assert_eq!(decimal, hex);
}

#[test]
fn run_writes_one_json_object_per_trace_line() {
    let path =
        std::env::temp_dir().join(format!("informer-sim-trace-{}.jsonl", std::process::id()));
    let output = informer_sim(&[
        "run",
        "--seed",
        "7",
        "--trace",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).expect("trace written");
    std::fs::remove_file(&path).ok();
    let events: usize = stdout(&output)
        .split("events=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("events=N");
    assert_eq!(text.lines().count(), events);
    for (index, line) in text.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is json");
        assert_eq!(value["step"], index);
        assert!(
            value["time_ms"].is_u64() && value["actor"].is_string() && !value["event"].is_null()
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["run", "--seed", "banana"][..],
        &["run", "--seed"][..],
        &["run", "--seed", "1", "--bogus"][..],
        &["run", "--seed", "1", "--scenario", "nope"][..],
        &["sweep", "--seeds", "5..2"][..],
        &["sweep", "--shard", "3/3"][..],
        &["frobnicate"][..],
    ] {
        let output = informer_sim(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert_eq!(text.trim_end().lines().count(), 1, "{args:?}: {text}");
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
}

#[test]
fn a_failing_run_prints_a_replay_command_and_exits_1() {
    let path = std::env::temp_dir().join(format!("informer-sim-bug-{}.toml", std::process::id()));
    std::fs::write(&path, "bug = \"early-progress\"\n[apiservers]\ncount = 0\n[etcd_watchers]\ncount = 3\nprogress_request_probability = 0.5\nstall_probability = 0.3\n").expect("write scenario");
    let output = informer_sim(&[
        "run",
        "--seed",
        "19",
        "--scenario",
        path.to_str().expect("utf-8"),
    ]);
    std::fs::remove_file(&path).ok();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[lines.len() - 2].starts_with("replay: informer-sim run --seed 19 --scenario "),
        "{text}"
    );
    assert!(
        lines[lines.len() - 1]
            .starts_with("FAIL seed=19 invariant=etcd_progress_after_events step="),
        "{text}"
    );
}

#[test]
fn sweep_ends_with_the_summary_line() {
    let output = informer_sim(&["sweep", "--scenario", "etcd-watch", "--seeds", "0..5"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let last = text.lines().last().expect("a line");
    assert!(
        last.starts_with("swept 5 seeds: 0 failed, ") && last.ends_with(" events/s"),
        "{last}"
    );
}

#[test]
fn check_determinism_says_the_three_runs_agree_and_ends_with_the_verdict() {
    let output = informer_sim(&["run", "--seed", "3", "--check-determinism"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let plain = stdout(&informer_sim(&["run", "--seed", "3"]));
    let steps = plain
        .split("events=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next());
    let agree = format!("agree at every one of {} steps", steps.expect("events=N"));
    assert!(text.contains(&agree), "{text}");
    assert_eq!(text.lines().last(), plain.lines().last());
}

#[test]
fn scenarios_lists_the_library_with_summaries() {
    let text = stdout(&informer_sim(&["scenarios"]));
    assert!(
        text.lines()
            .any(|line| line.starts_with("etcd-watch") && line.contains("SPEC §1")),
        "{text}"
    );
    let informer = text.lines().find(|line| line.starts_with("informer "));
    assert!(
        informer.is_some_and(|line| line.contains("client-go 1.36")),
        "the default scenario models client-go at HEAD: {text}"
    );
}

#[test]
fn fifo_script_reads_a_file_and_prints_one_line_per_step() {
    let path = std::env::temp_dir().join(format!("informer-sim-fifo-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"fifo":"real","steps":[{"op":"add","obj":"ns/a@1"},{"op":"pop"}]}"#,
    )
    .expect("write");
    let output = informer_sim(&["fifo-script", path.to_str().expect("utf-8")]);
    std::fs::remove_file(&path).ok();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .nth(1)
            .expect("second line")
            .contains(r#"["add","ns/a@1",false]"#),
        "{text}"
    );
}

#[test]
fn fifo_script_errors_name_the_step_and_exit_2() {
    let path =
        std::env::temp_dir().join(format!("informer-sim-fifo-bad-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"fifo":"delta","steps":[{"op":"add","obj":"ns/a@1"},{"op":"pusj"}]}"#,
    )
    .expect("write");
    let output = informer_sim(&["fifo-script", path.to_str().expect("utf-8")]);
    std::fs::remove_file(&path).ok();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("step 1: unknown op"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_failing_run_leaves_a_replay_file_that_replays_to_the_same_hash() {
    let dir = std::env::temp_dir().join(format!("informer-sim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("bug.toml");
    std::fs::write(&scenario, "bug = \"early-progress\"\n[apiservers]\ncount = 0\n[etcd_watchers]\ncount = 3\nprogress_request_probability = 0.5\nstall_probability = 0.3\n").expect("write scenario");
    let run = Command::new(env!("CARGO_BIN_EXE_informer-sim"))
        .args([
            "run",
            "--seed",
            "19",
            "--scenario",
            scenario.to_str().expect("utf-8"),
        ])
        .current_dir(&dir)
        .output()
        .expect("runs");
    let text = stdout(&run);
    let file = text
        .lines()
        .find_map(|line| line.strip_prefix("replay file: informer-sim replay "))
        .expect("a replay file line");
    let replay = Command::new(env!("CARGO_BIN_EXE_informer-sim"))
        .args(["replay", file])
        .current_dir(&dir)
        .output()
        .expect("runs");
    std::fs::remove_dir_all(&dir).ok();
    let replayed = stdout(&replay);
    assert_eq!(
        replay.status.code(),
        Some(1),
        "the replayed run fails again: {replayed}"
    );
    assert!(replayed.contains("(matches the file)"), "{replayed}");
    assert!(
        replayed.contains("FAIL seed=19 invariant=etcd_progress_after_events"),
        "{replayed}"
    );
}

#[test]
fn shrink_saves_a_smaller_case_that_replays_to_the_same_failure() {
    let dir = std::env::temp_dir().join(format!("informer-sim-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let in_dir = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_informer-sim"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("runs")
    };
    let args = ["shrink", "--seed", "19", "--scenario", "etcd-watch"];
    let shrunk = in_dir(&[&args[..], &["--bug", "early-progress"]].concat());
    let passing = in_dir(&args);
    let text = stdout(&shrunk);
    let file = text
        .lines()
        .find_map(|line| line.strip_prefix("replay: informer-sim replay "))
        .expect("a replay line");
    let replay = stdout(&in_dir(&["replay", file]));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(shrunk.status.code(), Some(0), "{text}");
    let steps = |prefix: &str| -> u64 {
        let line = text.lines().find(|line| line.starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("a {prefix} line in {text}"));
        line.split(" steps")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("N steps")
    };
    assert!(steps("after") < steps("before"), "{text}");
    assert!(
        replay.contains("invariant=etcd_progress_after_events"),
        "{replay}"
    );
    assert!(replay.contains("(matches the file)"), "{replay}");
    assert_eq!(passing.status.code(), Some(2));
    assert!(stderr(&passing).contains("breaks no invariant"));
}

#[test]
fn conformance_runs_every_upstream_case_in_both_modes() {
    let output = informer_sim(&["conformance"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(
        text.lines().last(),
        Some("conformance: 58 passed, 0 failed")
    );
    let listed = stdout(&informer_sim(&["scenarios"]));
    assert!(
        listed.contains("RunTestWatchDeleteEventObjectHaveLatestRV"),
        "{listed}"
    );
}

#[test]
fn a_scenario_declaring_a_non_hazard_exits_2_naming_the_hazards() {
    let path =
        std::env::temp_dir().join(format!("informer-sim-hazard-{}.toml", std::process::id()));
    std::fs::write(&path, "expected_hazards = [\"run_settles\"]\n").expect("write scenario");
    let output = informer_sim(&[
        "run",
        "--seed",
        "1",
        "--scenario",
        path.to_str().expect("utf-8"),
    ]);
    std::fs::remove_file(&path).ok();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(
        text.contains("allowed: no_time_travel_across_restarts"),
        "{text}"
    );
}

#[test]
fn invariants_prints_each_class() {
    let text = stdout(&informer_sim(&["invariants"]));
    for class in ["always", "upstream hazard", "liveness"] {
        assert!(
            text.contains(&format!("  class:   {class}\n")),
            "{class}: {text}"
        );
    }
}

#[test]
fn an_unknown_bug_is_a_one_line_error_listing_the_catalog() {
    let output = informer_sim(&["run", "--seed", "1", "--bug", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(text.contains("early-progress"), "{text}");
}

#[test]
fn invariants_prints_the_catalog_with_sources() {
    let output = informer_sim(&["invariants"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let names = text.lines().filter(|line| !line.starts_with(' ')).count();
    let sources = text
        .lines()
        .filter(|line| line.starts_with("  source:  "))
        .count();
    assert!(names >= 15, "{text}");
    assert_eq!(names, sources);
}
