//! Replay files: everything needed to re-run one run exactly, so a failure survives a
//! truncated log: the scenario itself (not its name), the seed, the explicit fault plan (not
//! only the seed, so a later change of the plan generator cannot lose the case) and the trace
//! hash the run produced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::check::Invariant;
use crate::explore::Overrides;
use crate::scenario::Scenario;
use crate::shrink::Case;
use crate::trace::{Trace, TraceHash};
use crate::world::faults::{Fault, FaultPlan};
use crate::world::{RunOutcome, World};

/// The longest a fault may last or wait: a day, as a scenario's durations.
const FAULT_MS_MAX: u64 = 86_400_000;

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

    /// Writes the file into `dir` (created if needed) as `<scenario><overrides>-<seed><tag>.json`,
    /// atomically, and returns its path.
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
        let text = serde_json::to_string_pretty(self).expect("replay files always serialize");
        atomic_file::write(&path, text.as_bytes()).map_err(|source| ReplayError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Reads a replay file.
    pub fn load(path: &Path) -> Result<ReplayFile, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_owned(),
            source,
        })?;
        ReplayFile::from_json(path, &text)
    }

    /// Parses a replay file's text and checks that it can run: its scenario is valid and each
    /// fault aims at a part the scenario has.
    pub fn from_json(path: &Path, text: &str) -> Result<ReplayFile, ReplayError> {
        let format = |message: String| ReplayError::Format {
            path: path.to_owned(),
            message: message.replace('\n', " "),
        };
        let file: ReplayFile = serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
        file.scenario
            .validate(&file.scenario.name)
            .map_err(|error| format(error.to_string()))?;
        file.check_plan().map_err(format)?;
        Ok(file)
    }

    /// Each fault aims at a client, apiserver or raw watcher the scenario has, and lasts at
    /// most a day.
    fn check_plan(&self) -> Result<(), String> {
        let scenario = &self.scenario;
        let clients = scenario.client_identities();
        for (index, timed) in self.plan.faults.iter().enumerate() {
            let (part, target, count, ms) = match timed.fault {
                Fault::Disconnect { client }
                | Fault::SilentConnection { client }
                | Fault::ClientRestart { client } => ("client", client, clients, 0),
                Fault::SlowConsumer { client, ms } | Fault::DelaySpike { client, ms } => {
                    ("client", client, clients, ms)
                }
                Fault::CacherReinit { apiserver } | Fault::ApiserverRestart { apiserver } => {
                    ("apiserver", apiserver, scenario.apiservers.count, 0)
                }
                Fault::CacheStall { apiserver, ms } | Fault::CacheWatchError { apiserver, ms } => {
                    ("apiserver", apiserver, scenario.apiservers.count, ms)
                }
                Fault::WatcherStall { watcher, ms } => {
                    ("watcher", watcher, scenario.etcd_watchers.count, ms)
                }
                Fault::WatcherDisconnect { watcher }
                | Fault::WatcherProgressRequest { watcher } => {
                    ("watcher", watcher, scenario.etcd_watchers.count, 0)
                }
            };
            if target >= count {
                return Err(format!(
                    "plan fault {index} aims at {part} {target}, but the scenario has {count}"
                ));
            }
            if ms > FAULT_MS_MAX || timed.at_ms > scenario.duration_ms {
                return Err(format!(
                    "plan fault {index} at {} ms lasting {ms} ms is out of range (allowed: at \
                     most duration_ms = {}, lasting at most {FAULT_MS_MAX})",
                    timed.at_ms, scenario.duration_ms
                ));
            }
        }
        Ok(())
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
