//! Sweeps that survive a kill and spread over processes: `sweep --out`, `sweep --resume`,
//! `--shard auto` with a Kubernetes Indexed Job's environment, and `merge`, all through the
//! binary. A sweep folder's verdicts and summary must not depend on how its seeds were run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use informer_sim::sweep_dir::SUMMARY;

/// A sweep where about two seeds in three fail (a planted bug), so replay files are saved too.
const SWEEP: &[&str] = &[
    "sweep",
    "--scenario",
    "informer-fifo-backlog",
    "--bug",
    "replace-skips-key-with-queued-delete",
    "--seeds",
    "0..24",
];

fn informer_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_informer-sim"))
}

/// Variables set for one run.
type Environment = Vec<(&'static str, String)>;

fn run(args: &[&str], envs: &[(&str, String)]) -> Output {
    informer_sim()
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("JOB_COMPLETIONS")
        .envs(envs.iter().map(|(key, value)| (key, value)))
        .output()
        .expect("binary runs")
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("informer-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Every file under `dir` but temporary ones, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("listable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, found);
            } else if !informer_sim::atomic_file::is_temp(&path) {
                let relative = path.strip_prefix(root).expect("under root").to_owned();
                found.insert(relative, std::fs::read(&path).expect("readable"));
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    found
}

fn verdicts(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("verdicts/0")).map_or(0, |entries| {
        entries
            .filter(|entry| {
                let path = entry.as_ref().expect("entry").path();
                !informer_sim::atomic_file::is_temp(&path)
            })
            .count()
    })
}

/// A number from the wall clock: where the kills land differs from run to run, and is
/// printed so that a failure can be told apart.
fn entropy() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    u64::from(nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16
}

#[test]
fn a_sweep_killed_at_random_moments_and_resumed_ends_as_an_uninterrupted_one() {
    let root = scratch("kill");
    let whole = root.join("whole");
    let killed = root.join("killed");
    let output = run(&[SWEEP, &["--out", text(&whole)]].concat(), &[]);
    assert_eq!(output.status.code(), Some(1), "some seeds fail");
    let mut random = entropy();
    let mut kills = Vec::new();
    let mut first = true;
    while kills.len() < 3 {
        let mut command = informer_sim();
        if first {
            command.args([SWEEP, &["--out", text(&killed)]].concat());
        } else {
            command.args(["sweep", "--resume", text(&killed)]);
        }
        first = false;
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns");
        // Kill after a random number of new verdicts, a random few milliseconds later: the kill
        // may land between two seeds, in a run, or in the middle of writing a file.
        let target = verdicts(&killed) + 1 + (random % 5) as usize;
        let mut exited = false;
        while verdicts(&killed) < target {
            if child.try_wait().expect("waitable").is_some() {
                exited = true;
                break;
            }
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_micros(random % 20_000));
        random = random.rotate_left(13) ^ 0x5851_f42d;
        child.kill().expect("SIGKILL sent");
        child.wait().expect("reaped");
        kills.push((verdicts(&killed), exited));
        assert!(
            !killed.join(SUMMARY).exists() || exited,
            "a killed sweep wrote its summary"
        );
    }
    let output = run(&["sweep", "--resume", text(&killed)], &[]);
    assert_eq!(output.status.code(), Some(1), "kills at {kills:?}");
    eprintln!("killed with (verdicts saved, had exited) = {kills:?}");
    let (whole_files, killed_files) = (files(&whole), files(&killed));
    assert_eq!(
        whole_files.keys().collect::<Vec<_>>(),
        killed_files.keys().collect::<Vec<_>>(),
        "kills at {kills:?}"
    );
    for (path, bytes) in &whole_files {
        assert!(bytes == &killed_files[path], "{} differs", path.display());
    }
    assert!(whole_files.keys().any(|path| path.starts_with("replays")));
    assert_eq!(
        whole_files
            .keys()
            .filter(|p| p.starts_with("verdicts"))
            .count(),
        24
    );
    let resumed = run(&["sweep", "--resume", text(&killed)], &[]);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("swept 24 seeds: "), "{stdout}");
    assert_eq!(
        files(&killed),
        killed_files,
        "a finished sweep runs nothing again"
    );
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn shards_run_with_an_indexed_jobs_environment_merge_into_the_unsharded_summary() {
    let root = scratch("shards");
    let whole = root.join("whole");
    let output = run(&[SWEEP, &["--out", text(&whole)]].concat(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let count = 3;
    let shards: Vec<PathBuf> = (0..count)
        .map(|index| root.join(format!("shard-{index}")))
        .collect();
    let children: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(index, dir)| {
            informer_sim()
                .args([SWEEP, &["--shard", "auto", "--out", text(dir)]].concat())
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .env("JOB_COMPLETIONS", count.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawns")
        })
        .collect();
    for mut child in children {
        assert_ne!(child.wait().expect("exits").code(), Some(2));
    }
    let merged = root.join("merged.json");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|dir| text(dir)));
    args.extend(["--json", text(&merged)]);
    let output = run(&args, &[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the merged sweep has failing seeds"
    );
    let summary = std::fs::read_to_string(whole.join(SUMMARY)).expect("summary written");
    assert_eq!(std::fs::read_to_string(&merged).expect("merged"), summary);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("swept 24 seeds: "), "{stdout}");
    for (dirs, complaint) in [
        (vec![&shards[0], &shards[1]], "shard 2/3 missing"),
        (
            vec![&shards[0], &shards[1], &shards[1]],
            "shard 1/3 is given twice",
        ),
        (
            vec![&shards[0], &shards[1], &whole],
            "not a shard of the same sweep",
        ),
    ] {
        let mut args = vec!["merge"];
        args.extend(dirs.iter().map(|dir| text(dir)));
        let output = run(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{complaint}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(complaint) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn an_unfinished_shard_is_refused_by_merge_until_resumed() {
    let root = scratch("unfinished");
    let dirs: Vec<PathBuf> = (0..2).map(|index| root.join(format!("s{index}"))).collect();
    for (index, dir) in dirs.iter().enumerate() {
        let limit = if index == 0 { "0" } else { "1000" };
        let shard = format!("{index}/2");
        let args = [
            "sweep",
            "--scenario",
            "etcd-watch",
            "--seeds",
            "0..6",
            "--shard",
            &shard,
        ];
        run(
            &[&args[..], &["--time-limit", limit, "--out", text(dir)]].concat(),
            &[],
        );
    }
    let merge = || run(&["merge", text(&dirs[0]), text(&dirs[1])], &[]);
    let refused = merge();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is unfinished: 3 seeds have no verdict"),
        "{stderr}"
    );
    std::fs::create_dir_all(dirs[0].join("verdicts/0")).expect("folder");
    std::fs::write(dirs[0].join("verdicts/0/4.json.123.tmp"), "{half").expect("stray");
    let resumed = run(&["sweep", "--resume", text(&dirs[0])], &[]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "a stray temporary file is skipped"
    );
    assert_eq!(merge().status.code(), Some(0));
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn sweep_folder_and_job_environment_errors_are_one_line_and_exit_2() {
    let root = scratch("errors");
    let taken = root.join("taken");
    run(
        &[
            "sweep",
            "--scenario",
            "etcd-watch",
            "--seeds",
            "0..1",
            "--out",
            text(&taken),
        ],
        &[],
    );
    let not_a_sweep = root.join("not-a-sweep");
    std::fs::create_dir_all(&not_a_sweep).expect("folder");
    std::fs::write(not_a_sweep.join("sweep.json"), "{\"format\": 9}").expect("written");
    let index = |value: &str| vec![("JOB_COMPLETION_INDEX", value.to_owned())];
    let both = |index: &str, count: &str| {
        vec![
            ("JOB_COMPLETION_INDEX", index.to_owned()),
            ("JOB_COMPLETIONS", count.to_owned()),
        ]
    };
    let cases: Vec<(Vec<&str>, Environment, &str)> = vec![
        (
            vec!["sweep", "--out", text(&taken)],
            vec![],
            "already holds a sweep",
        ),
        (vec!["sweep", "--resume", text(&root)], vec![], "sweep.json"),
        (
            vec!["sweep", "--resume", text(&not_a_sweep)],
            vec![],
            "not a sweep manifest",
        ),
        (vec!["merge", text(&root)], vec![], "sweep.json"),
        (
            vec!["sweep", "--shard", "auto"],
            vec![],
            "JOB_COMPLETION_INDEX",
        ),
        (
            vec!["sweep", "--shard", "auto"],
            index("1"),
            "JOB_COMPLETIONS",
        ),
        (
            vec!["sweep", "--shard", "auto"],
            both("x", "2"),
            "is not a number",
        ),
        (
            vec!["sweep", "--shard", "auto"],
            both("2", "2"),
            "is not below",
        ),
        (vec!["sweep", "--shard", "nope"], vec![], "or auto"),
        (
            vec!["sweep", "--resume", text(&taken), "--seeds", "0..2"],
            vec![],
            "--seeds",
        ),
        (
            vec!["run", "--seed", "1", "--check-determinism", "--trace", "t"],
            vec![],
            "--trace",
        ),
    ];
    for (args, envs, says) in cases {
        let output = run(&args, &envs);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(root).ok();
}
