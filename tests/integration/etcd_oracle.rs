//! Real etcd as the oracle for the fake etcd (`informer_sim::etcd`).
//!
//! - `real_etcd_agrees_with_fake` starts a real etcd (3.4, the JSON gateway) on loopback, runs
//!   seeded random sequences of puts, deletes, txns, ranges, compactions, watches, cancels and
//!   progress requests against it and against the fake, and compares every answer and every
//!   watch stream. Run it with
//!   `bash .ci/install-etcd && cargo test --test etcd_oracle -- --nocapture`.
//!   Without an `etcd` binary it passes with a loud notice, except in CI (`CI=true`).
//! - `recorded_real_sessions_replay_against_fake` replays real etcd sessions recorded under
//!   `tests/data/etcd-session-*.json` against the fake, so plain `cargo test` checks the fake
//!   against real answers without etcd.
//! - `record_real_sessions` (ignored) regenerates those files from a real etcd:
//!   `cargo test --test etcd_oracle -- --ignored record_real_sessions`.
//!
//! Each sequence has its own key prefix in one shared etcd, and its revisions are shifted by the
//! revision it started at (a separator put between sequences keeps every sequence's revision 1
//! above earlier compactions). Recorded sessions each use a fresh etcd, so they hold real etcd's
//! own revision numbers.
//!
//! What is deliberately not compared, and why (none of it matters to the apiserver model):
//! - Timing. Real etcd delivers watch responses asynchronously and catches watches up from
//!   history in a loop that runs every 100 ms; the fake does both at once. The oracle waits for
//!   real etcd to deliver what the fake delivered before any step whose outcome depends on it
//!   (compaction, cancel, progress request, periodic progress). A compaction racing a watch
//!   that etcd has not caught up yet cancels it in etcd but not in the fake: the fake models the
//!   watch as caught up at once.
//! - Progress requests on a watch that is behind. etcd 3.4 answers them at once with the
//!   current revision even while older events are still to be sent (etcd#15220, fixed in 3.5.8
//!   and 3.4.25); the fake models the fixed behaviour (and the old one as
//!   `EtcdBugs::early_progress`). The oracle asks only once the watch is caught up, where both
//!   agree.
//! - How watch events are split into messages (the streams are compared event by event), watch
//!   ids (per stream in etcd, per store in the fake), `raft_term`, member and cluster ids.
//! - `stall_watcher`/`resume_watcher`: fault knobs of the fake; a real slow consumer depends on
//!   etcd's channel and socket buffers, not on anything a test can set exactly.
//!
//! Where the fake differs on purpose (the generator does not make these):
//! - A txn branch that puts a key and also deletes it with an open-ended range (`range_end`
//!   "\0"): etcd 3.4 runs it (its duplicate-key check sees an empty interval) and records the
//!   key as put and deleted at one revision; the fake answers `DuplicateKey`, as etcd does for
//!   every other range. kube-apiserver's txns touch a single key.
//! - Compaction at revision 0 (etcd 3.4 accepts it on a store never compacted; the fake says
//!   `Compacted`). Nothing compacts at 0: kube-apiserver compacts at a revision it read.

#[path = "etcd_oracle/model.rs"]
mod model;
#[path = "etcd_oracle/real.rs"]
mod real;
#[path = "etcd_oracle/runner.rs"]
mod runner;
#[path = "etcd_oracle/watch_stream.rs"]
mod watch_stream;

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use informer_sim::etcd::{
    Compare, CompareResult, CompareTarget, Etcd, KeyRange, Op, RangeRequest, TxnRequest,
    WatchRequest,
};
use model::{Exchange, Generator, Reply, Session, Step};
use real::{EtcdProcess, RealSide};
use runner::{Divergence, FakeSide, RecordedSide, Side};

const SEQUENCES: u64 = 320;
const MIN_OPS: u64 = 20;
const MAX_OPS: u64 = 50;
const SEED: u64 = 0x0e7c_d00a_c1e5;
/// Periodic progress notifications: often enough that a tick step waits little.
const PROGRESS_INTERVAL: &str = "100ms";
const RUN_COMMAND: &str = "bash .ci/install-etcd && cargo test --test etcd_oracle -- --nocapture";

/// The `etcd` binary on PATH. Missing, it fails the test in CI and skips it loudly elsewhere.
fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcd is not installed, and CI must run the etcd oracle: run .ci/install-etcd first"
        );
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED: the real etcd oracle did NOT run: no `etcd` on PATH.\nRun it \
             with:\n    {RUN_COMMAND}\n{bar}\n",
            bar = "!".repeat(78)
        );
    }
    found
}

/// The generator of sequence `index`, with its own seed and key prefix.
fn generator(index: u64) -> (u64, Generator) {
    let seed = SEED ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let ops = MIN_OPS + seed % (MAX_OPS - MIN_OPS + 1);
    let prefix = format!("/s{index:04}/");
    (seed, Generator::new(seed, prefix, ops as usize))
}

#[test]
fn real_etcd_agrees_with_fake() {
    let Some(binary) = etcd_binary() else {
        return;
    };
    let started = Instant::now();
    let etcd = EtcdProcess::start(&binary, PROGRESS_INTERVAL);
    let mut real = RealSide::new(&etcd);
    let mut operations = 0;
    let mut divergences: Vec<(u64, Box<Divergence>)> = Vec::new();
    for index in 0..SEQUENCES {
        let (_, mut generator) = generator(index);
        real.begin_sequence();
        let mut fake = FakeSide::default();
        match runner::run(&mut fake, &mut real, |etcd| generator.next_step(etcd)) {
            Ok(steps) => operations += steps.len(),
            Err(divergence) => {
                operations += divergence.steps.len();
                divergences.push((index, divergence));
            }
        }
    }
    drop(etcd);
    // Straight to stderr, so the figures show in a plain `cargo test` run too.
    let _ = writeln!(
        std::io::stderr(),
        "etcd oracle: {SEQUENCES} sequences, {operations} operations, {} divergences in {:.1}s",
        divergences.len(),
        started.elapsed().as_secs_f64()
    );
    for (index, divergence) in &divergences {
        let _ = writeln!(std::io::stderr(), "sequence {index}: {divergence}");
    }
    assert!(
        divergences.is_empty(),
        "the fake etcd disagrees with real etcd"
    );
    assert!(operations >= 10_000, "too few operations: {operations}");
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn session_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("tests/data")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            name.starts_with("etcd-session-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn recorded_real_sessions_replay_against_fake() {
    let files = session_files();
    assert!(!files.is_empty(), "no recorded sessions in tests/data");
    for file in files {
        let text = fs::read_to_string(&file).expect("session file");
        let session: Session = serde_json::from_str(&text).expect("session json");
        let (mut recorded, mut steps) = RecordedSide::new(session);
        let mut fake = FakeSide::default();
        if let Err(divergence) = runner::run(&mut fake, &mut recorded, |_| steps.pop_front()) {
            panic!(
                "{}: the fake disagrees with real etcd: {divergence}",
                file.display()
            );
        }
    }
}

/// Keeps every reply a side gives, to record them.
struct Recording<S> {
    side: S,
    replies: Vec<Reply>,
}

impl<S: Side> Side for Recording<S> {
    fn apply(&mut self, step: &Step) -> Reply {
        let reply = self.side.apply(step);
        self.replies.push(reply.clone());
        reply
    }

    fn stream(&mut self, watch: usize, expected: usize) -> Vec<model::StreamItem> {
        self.side.stream(watch, expected)
    }
}

/// The sequences recorded: a few generator indexes that open watches, compact and tick.
const RECORDED: [u64; 4] = [1, 2, 3, 5];

#[test]
#[ignore = "regenerates tests/data/etcd-session-*.json from a real etcd"]
fn record_real_sessions() {
    let binary = etcd_binary().expect("recording needs etcd on PATH");
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("etcd --version");
    let etcd_version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    for (number, index) in RECORDED.into_iter().enumerate() {
        let (seed, mut generator) = generator(index);
        let name = format!("etcd-session-{number}.json");
        record(&binary, &etcd_version, &name, seed, |etcd| {
            generator.next_step(etcd)
        });
    }
    let mut script = VecDeque::from(scripted_steps());
    let name = "etcd-session-scripted.json";
    record(&binary, &etcd_version, name, 0, |_| script.pop_front());
}

/// Runs a sequence on a fresh real etcd and writes it to `tests/data/{name}`.
fn record(
    binary: &Path,
    etcd_version: &str,
    name: &str,
    seed: u64,
    next: impl FnMut(&Etcd) -> Option<Step>,
) {
    let etcd = EtcdProcess::start(binary, PROGRESS_INTERVAL);
    let mut recording = Recording {
        side: RealSide::new(&etcd),
        replies: Vec::new(),
    };
    recording.side.begin_sequence();
    let mut fake = FakeSide::default();
    let steps = runner::run(&mut fake, &mut recording, next)
        .unwrap_or_else(|divergence| panic!("{name} not recorded: {divergence}"));
    let watches = steps
        .iter()
        .filter(|step| matches!(step, Step::Watch(_)))
        .count();
    let session = Session {
        etcd_version: etcd_version.to_owned(),
        seed,
        exchanges: steps
            .into_iter()
            .zip(recording.replies)
            .map(|(step, reply)| Exchange { step, reply })
            .collect(),
        streams: (0..watches)
            .map(|watch| recording.side.stream(watch, usize::MAX))
            .collect(),
    };
    let path = data_dir().join(name);
    let json = serde_json::to_string_pretty(&session).expect("session json");
    fs::write(&path, json + "\n").expect("write session");
    println!(
        "recorded {} ({} steps)",
        path.display(),
        session.exchanges.len()
    );
}

/// The behaviours measured by hand on etcd 3.4 (NOTES-feasibility §B), as one fixed session:
/// deleting a missing key and a failed compare bump no revision; a watch at exactly the compact
/// revision misses a delete at that revision; a watch below it is canceled with it; reads and
/// compactions below, at and above the compact and current revisions; a progress request.
fn scripted_steps() -> Vec<Step> {
    let key = |name: &str| format!("/s9000/{name}");
    let all = || KeyRange::prefix(&key(""));
    let read_at = |revision| {
        Step::Range(RangeRequest {
            range: all(),
            revision,
            limit: 0,
        })
    };
    let put = |name: &str| Step::Put {
        key: key(name),
        value: name.as_bytes().to_vec(),
        prev_kv: true,
    };
    let delete_b = Step::Delete {
        range: KeyRange::single(&key("b")),
        prev_kv: true,
    };
    let update_a_if_mod = |revision| {
        Step::Txn(TxnRequest {
            compare: vec![Compare {
                key: key("a"),
                target: CompareTarget::Mod,
                result: CompareResult::Equal,
                value: revision,
            }],
            success: vec![Op::Put {
                key: key("a"),
                value: b"a2".to_vec(),
                prev_kv: true,
            }],
            failure: vec![Op::Range(RangeRequest {
                range: KeyRange::single(&key("a")),
                revision: 0,
                limit: 0,
            })],
        })
    };
    let watch_from = |start_revision| {
        Step::Watch(WatchRequest {
            range: all(),
            start_revision,
            prev_kv: true,
            progress_notify: false,
        })
    };
    vec![
        put("a"),           // revision 2
        put("b"),           // 3
        delete_b.clone(),   // 4
        delete_b,           // nothing to delete: still 4
        update_a_if_mod(2), // 5
        update_a_if_mod(2), // compare fails: still 5
        Step::Compact { revision: 4 },
        watch_from(4), // misses the delete at 4
        watch_from(3), // canceled: compacted
        read_at(3),
        read_at(4),
        read_at(6),
        Step::Compact { revision: 4 },
        Step::Compact { revision: 6 },
        Step::RequestProgress { watch: 0 },
        put("c"), // 6
        Step::Cancel { watch: 0 },
    ]
}
