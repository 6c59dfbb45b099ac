//! Replay files: everything needed to re-run one run exactly, so a failure survives a
//! truncated log: the scenario itself (not its name), the seed, the explicit fault plan (not
//! only the seed, so a later change of the plan generator cannot lose the case) and the trace
//! hash the run produced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::Invariant;
use crate::explore::Overrides;
use crate::scenario::Scenario;
use crate::shrink::Case;
use crate::trace::{Trace, TraceHash};
use crate::world::faults::FaultPlan;
use crate::world::{RunOutcome, World};

/// One saved run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFile {
    /// The scenario, in full (the overrides already applied).
    pub scenario: Scenario,
    /// The command line's overrides, for the replay command and the file name.
    #[serde(default)]
    pub overrides: Overrides,
    /// The seed.
    pub seed: u64,
    /// The fault plan the run followed.
    pub plan: FaultPlan,
    /// The trace hash the run produced.
    pub trace_hash: TraceHash,
    /// The invariant that failed, if any.
    pub invariant: Option<Invariant>,
    /// The step it failed at.
    pub step: Option<u64>,
}

/// Why a replay file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading or writing the file failed.
    #[error("replay file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a replay file.
    #[error("replay file {path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser said, on one line.
        message: String,
    },
}

impl ReplayFile {
    /// The replay file of a finished run.
    pub fn of(
        scenario: &Scenario,
        overrides: Overrides,
        seed: u64,
        outcome: &RunOutcome,
    ) -> ReplayFile {
        ReplayFile {
            scenario: scenario.clone(),
            overrides,
            seed,
            plan: outcome.plan.clone(),
            trace_hash: outcome.trace_hash,
            invariant: outcome
                .violation
                .as_ref()
                .map(|(_, violation)| violation.invariant),
            step: outcome.violation.as_ref().map(|(step, _)| *step),
        }
    }

    /// Writes the file into `dir` (created if needed) as `<scenario><overrides>-<seed><tag>.json`
    /// and returns its path.
    pub fn save(&self, dir: &Path, tag: &str) -> Result<PathBuf, ReplayError> {
        let scenario: String = format!("{}{}", self.scenario.name, self.overrides)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{scenario}-{}{tag}.json", self.seed));
        let io = |source| ReplayError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = serde_json::to_string_pretty(self).expect("replay files always serialize");
        std::fs::write(&path, text).map_err(io)?;
        Ok(path)
    }

    /// Reads a replay file.
    pub fn load(path: &Path) -> Result<ReplayFile, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|error| ReplayError::Format {
            path: path.to_owned(),
            message: error.to_string(),
        })
    }

    /// The case it saved.
    pub fn case(&self) -> Case {
        Case {
            scenario: self.scenario.clone(),
            seed: self.seed,
            plan: self.plan.clone(),
        }
    }

    /// Runs it again, recording into `trace`.
    pub fn run(&self, trace: Trace) -> RunOutcome {
        World::with_plan(self.scenario.clone(), self.seed, self.plan.clone(), trace).run()
    }
}
