//! Every input the command line reads, each as one function from raw bytes to `Ok` or the
//! one-line error the command prints: the entry points of the fuzz targets (`fuzz/`) and of the
//! property tests over arbitrary bytes (`tests/integration/inputs.rs`). None may panic or hang,
//! whatever the bytes; [`check`] asserts the rest of the contract (an error is one line).
//!
//! A driver (floor 4).

use std::path::Path;

use crate::explore::{SeedRange, Shard, ShardArg, parse_env_cases, parse_env_seed, parse_seed};
use crate::replay::ReplayFile;
use crate::scenario::Scenario;
use crate::sweep_dir::{Manifest, verdict_from_json};
use crate::testkit::fifo_script::run_script;

/// One input's parser: `Ok`, or the one-line error the command prints.
pub type Parser = fn(&[u8]) -> Result<(), String>;

/// The inputs, by the name of their fuzz target.
pub const TARGETS: &[(&str, Parser)] = &[
    ("scenario", scenario),
    ("replay", replay),
    ("fifo_script", fifo_script),
    ("arguments", arguments),
    ("sweep_files", sweep_files),
];

/// The text of `bytes`, as a file reader would refuse non-UTF-8.
fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|error| format!("not UTF-8 text: {error}"))
}

/// A scenario file (`--scenario FILE.toml`): parsed and validated.
pub fn scenario(bytes: &[u8]) -> Result<(), String> {
    Scenario::from_toml("input.toml", text(bytes)?)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// A replay file (`replay FILE`): parsed and checked that it can run.
pub fn replay(bytes: &[u8]) -> Result<(), String> {
    ReplayFile::from_json(Path::new("input.json"), text(bytes)?)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// A FIFO script (`fifo-script FILE`): parsed and run.
pub fn fifo_script(bytes: &[u8]) -> Result<(), String> {
    run_script(text(bytes)?)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// The argument values and environment knobs, one per line: a seed (`--seed`), a seed range
/// (`--seeds`), a shard (`--shard`), `INFORMER_SIM_SEED`, `INFORMER_SIM_CASES`, then
/// `JOB_COMPLETION_INDEX` and `JOB_COMPLETIONS` (a missing line is an unset variable). Every
/// one is parsed; the first error is returned, and every error is checked.
pub fn arguments(bytes: &[u8]) -> Result<(), String> {
    let text = text(bytes)?;
    let mut lines = text.split('\n').map(str::to_owned);
    let mut next = || lines.next();
    let results = [
        next().map(|given| parse_seed(&given).map(drop)),
        next().map(|given| given.parse::<SeedRange>().map(drop)),
        next().map(|given| given.parse::<ShardArg>().map(drop)),
        next().map(|given| parse_env_seed(given).map(drop).map_err(|e| e.to_string())),
        next().map(|given| parse_env_cases(given).map(drop).map_err(|e| e.to_string())),
        Some(Shard::from_job_values(next(), next()).map(drop)),
    ];
    let mut first = Ok(());
    for result in results.into_iter().flatten() {
        check(&result);
        first = first.and(result);
    }
    first
}

/// A sweep folder's files (`sweep --resume DIR`, `merge DIR...`): the first byte picks the
/// manifest (even) or a verdict (odd); the rest is the file.
pub fn sweep_files(bytes: &[u8]) -> Result<(), String> {
    let Some((first, rest)) = bytes.split_first() else {
        return Ok(());
    };
    let text = text(rest)?;
    if first % 2 == 0 {
        Manifest::from_json(text).map(drop)
    } else {
        verdict_from_json(text).map(drop)
    }
}

/// Asserts the error contract: an error is one non-empty line.
pub fn check(result: &Result<(), String>) {
    if let Err(message) = result {
        assert!(!message.trim().is_empty(), "an empty error");
        assert!(!message.contains('\n'), "an error of many lines: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_accepts_a_valid_input_and_refuses_a_bad_one_in_one_line() {
        let valid: [&[u8]; 5] = [
            b"[workload]\nwriters = 2\n",
            b"",
            br#"{"fifo": "delta", "steps": [{"op": "add", "obj": "ns/a@1"}]}"#,
            b"0x10\n1..5\n2/3\n7\n100\n1\n4",
            b"\x01{\"seed\":1}",
        ];
        for ((name, target), input) in TARGETS.iter().zip(valid) {
            let result = target(input);
            check(&result);
            let refused = target(b"\xff{");
            assert!(refused.is_err(), "{name} took bad bytes");
            check(&refused);
            if *name != "replay" && *name != "sweep_files" {
                assert_eq!(result, Ok(()), "{name}");
            }
        }
    }

    #[test]
    fn arguments_name_the_first_bad_value() {
        let error = arguments(b"1\n5..2\n0/1\n1\n1\n0\n1").unwrap_err();
        assert!(error.contains("5..2"), "{error}");
        let error = arguments(b"1\n1..2\nauto\n1\n1\n0").unwrap_err();
        assert!(error.contains("JOB_COMPLETIONS"), "{error}");
    }
}
