//! The extremes (`tests/data/extremes/`): no writes, one key under eight writers, 100,000 keys,
//! a one-event watch cache, three lagging apiservers, every fault at its maximum rate. Each
//! runs through the binary under a 1 GiB address-space limit (so unbounded memory aborts it)
//! and must end with a verdict, here a clean one; a scenario whose own workload cannot settle
//! must say so (`workload_can_settle`), not report a generic `run_settles`.

use std::process::Command;

/// The address space each run may use, in KiB.
const MEMORY_KIB_MAX: u64 = 1 << 20;

/// Runs `informer-sim run` on `file` under the memory limit; returns its exit code and last line.
fn run_capped(file: &str, seed: u64) -> (Option<i32>, String) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB_MAX} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_informer-sim"))
        .args(["run", "--seed", &seed.to_string(), "--scenario", file])
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    (output.status.code(), last)
}

#[test]
fn every_extreme_ends_with_a_clean_verdict_within_bounded_memory() {
    let mut ran = 0;
    for entry in std::fs::read_dir("tests/data/extremes").expect("extremes folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("utf-8");
        if name.starts_with("unsettleable-") {
            continue;
        }
        for seed in 0..3 {
            let (code, last) = run_capped(path.to_str().expect("utf-8"), seed);
            assert_eq!(code, Some(0), "{name} seed {seed}: {last}");
            assert!(
                last.starts_with(&format!("ok seed={seed} events=")),
                "{name}: {last}"
            );
            ran += 1;
        }
    }
    assert_eq!(ran, 6 * 3, "the six extremes");
}

#[test]
fn a_workload_that_cannot_settle_says_so_in_its_verdict() {
    for name in ["unsettleable-slow-handlers", "unsettleable-fast-resync"] {
        for seed in 0..2 {
            let (code, last) = run_capped(&format!("tests/data/extremes/{name}.toml"), seed);
            assert_eq!(code, Some(1), "{name}: {last}");
            assert!(
                last.contains("invariant=workload_can_settle"),
                "{name}: {last}"
            );
        }
    }
}
