//! A sweep's output folder (`sweep --out DIR`): what lets a sweep survive a kill, resume
//! (`sweep --resume DIR`), and spread over machines whose folders merge into one summary
//! (`merge DIR...`).
//!
//! ```text
//! DIR/sweep.json                 the manifest: the scenarios in full, the seeds, the shard, the flags
//! DIR/verdicts/<i>/<seed>.json   one verdict per finished seed of the manifest's scenario i
//! DIR/replays/*.json             each failing run's replay file
//! DIR/summary.json               the summary, once every seed of the shard has a verdict
//! ```
//!
//! Every file is written atomically ([`atomic_file`]), and a failing seed's replay file before
//! its verdict, so a kill at any moment loses at most the seed that was running: resume runs
//! exactly the seeds without a verdict. A driver (floor 4).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::explore::{Overrides, SeedRange, Shard, Sweep, SweepRow, Verdict};
use crate::replay::ReplayFile;
use crate::scenario::Scenario;
use crate::summary::Summary;

/// The manifest's format; a folder of another format is refused.
const FORMAT: u32 = 1;
/// The manifest's file name.
const MANIFEST: &str = "sweep.json";
/// The summary's file name.
pub const SUMMARY: &str = "summary.json";

/// What a sweep folder holds the results of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The folder's format.
    pub format: u32,
    /// The scenarios, in full (overrides applied), in sweep order.
    pub scenarios: Vec<Scenario>,
    /// The seeds.
    pub seeds: SeedRange,
    /// The shard of them this folder runs (none: all).
    pub shard: Option<Shard>,
    /// The command line's overrides, for replay lines and file names.
    #[serde(default)]
    pub overrides: Overrides,
}

impl Manifest {
    /// The manifest of a sweep of `scenarios` over `seeds`.
    pub fn new(
        scenarios: Vec<Scenario>,
        seeds: SeedRange,
        shard: Option<Shard>,
        overrides: Overrides,
    ) -> Manifest {
        Manifest {
            format: FORMAT,
            scenarios,
            seeds,
            shard,
            overrides,
        }
    }

    /// Parses a manifest's text and checks it: its format, a non-empty seed range, a shard
    /// within its count, and valid scenarios.
    pub fn from_json(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| e.to_string().replace('\n', " "))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "format {} is not {FORMAT}, the one this informer-sim writes",
                manifest.format
            ));
        }
        if manifest.seeds.is_empty() {
            return Err("its seed range is empty".to_owned());
        }
        if manifest
            .shard
            .is_some_and(|shard| shard.index >= shard.count)
        {
            return Err("its shard is not I/N with 0 <= I < N".to_owned());
        }
        if manifest.scenarios.is_empty() {
            return Err("it names no scenario".to_owned());
        }
        for scenario in &manifest.scenarios {
            scenario
                .validate(&scenario.name)
                .map_err(|error| error.to_string().replace('\n', " "))?;
        }
        Ok(manifest)
    }

    /// The sweep it describes, stopping at `deadline`.
    pub fn sweep(&self, deadline: Option<Instant>) -> Sweep {
        Sweep {
            seeds: self.seeds,
            shard: self.shard,
            deadline,
        }
    }

    /// The manifest with its shard taken out: what every shard of one sweep shares.
    fn unsharded(&self) -> Manifest {
        Manifest {
            shard: None,
            ..self.clone()
        }
    }
}

/// Parses a verdict file's text.
pub fn verdict_from_json(text: &str) -> Result<Verdict, String> {
    serde_json::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
}

/// Why a sweep folder could not be written, read or merged: one line.
#[derive(Debug, thiserror::Error)]
pub enum SweepDirError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file is not what the folder should hold.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, on one line.
        message: String,
    },
    /// `--out` names a folder that already holds a sweep.
    #[error("{0} already holds a sweep: continue it with sweep --resume {0}, or pick a new folder")]
    Exists(String),
    /// The folders given to merge are not the shards of one sweep.
    #[error("merge: {0}")]
    Merge(String),
}

/// A sweep folder.
#[derive(Debug)]
pub struct SweepDir {
    dir: PathBuf,
    manifest: Manifest,
}

impl SweepDir {
    /// Starts a new sweep folder at `dir` for `manifest`; refuses one that holds a sweep.
    pub fn create(dir: &Path, manifest: Manifest) -> Result<SweepDir, SweepDirError> {
        let path = dir.join(MANIFEST);
        if path.exists() {
            return Err(SweepDirError::Exists(dir.display().to_string()));
        }
        let text = serde_json::to_string_pretty(&manifest).expect("manifests serialize");
        atomic_file::write(&path, text.as_bytes()).map_err(|source| SweepDirError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(SweepDir {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// Opens the sweep folder at `dir`.
    pub fn open(dir: &Path) -> Result<SweepDir, SweepDirError> {
        let path = dir.join(MANIFEST);
        let text = read(&path)?;
        let manifest = Manifest::from_json(&text).map_err(|message| SweepDirError::Format {
            path: path.clone(),
            message: format!("not a sweep manifest: {message}"),
        })?;
        Ok(SweepDir {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn verdict_folder(&self, scenario: usize) -> PathBuf {
        self.dir.join("verdicts").join(scenario.to_string())
    }

    /// The saved verdicts of scenario `scenario` (its index in the manifest), by seed. Each must
    /// be a seed of this folder's sweep, in a file named after it.
    pub fn verdicts(&self, scenario: usize) -> Result<BTreeMap<u64, Verdict>, SweepDirError> {
        let folder = self.verdict_folder(scenario);
        let io = |source| SweepDirError::Io {
            path: folder.clone(),
            source,
        };
        let mut verdicts = BTreeMap::new();
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(verdicts),
            Err(error) => return Err(io(error)),
        };
        let seeds: BTreeSet<u64> = self.manifest.sweep(None).seeds().collect();
        for entry in entries {
            let path = entry.map_err(io)?.path();
            if atomic_file::is_temp(&path) {
                continue;
            }
            let verdict =
                verdict_from_json(&read(&path)?).map_err(|message| SweepDirError::Format {
                    path: path.clone(),
                    message: format!("not a verdict: {message}"),
                })?;
            let named = path.file_name() == Some(format!("{}.json", verdict.seed).as_ref());
            if !named || !seeds.contains(&verdict.seed) {
                return Err(SweepDirError::Format {
                    path,
                    message: format!(
                        "the verdict of seed {} does not belong here (not its file, or not a \
                         seed of this sweep's range and shard)",
                        verdict.seed
                    ),
                });
            }
            verdicts.insert(verdict.seed, verdict);
        }
        Ok(verdicts)
    }

    /// Saves one seed's verdict of scenario `scenario`, and first its replay file if it failed
    /// (into `DIR/replays`); returns the replay file's path.
    pub fn record(
        &self,
        scenario: usize,
        verdict: &Verdict,
        replay: Option<&ReplayFile>,
    ) -> Result<Option<PathBuf>, SweepDirError> {
        let replay_path = replay
            .map(|file| {
                file.save(&self.dir.join("replays"), "")
                    .map_err(|error| SweepDirError::Format {
                        path: self.dir.join("replays"),
                        message: error.to_string(),
                    })
            })
            .transpose()?;
        let path = self
            .verdict_folder(scenario)
            .join(format!("{}.json", verdict.seed));
        let text = serde_json::to_string(verdict).expect("verdicts serialize");
        atomic_file::write(&path, text.as_bytes())
            .map_err(|source| SweepDirError::Io { path, source })?;
        Ok(replay_path)
    }

    /// The summary of every saved verdict, and how many seeds of the sweep have none yet.
    pub fn summary(&self) -> Result<(Summary, u64), SweepDirError> {
        let mut summary = Summary::default();
        let mut missing = 0;
        let seeds = self.manifest.sweep(None).seeds().count() as u64;
        for (index, scenario) in self.manifest.scenarios.iter().enumerate() {
            let verdicts = self.verdicts(index)?;
            missing += seeds - verdicts.len() as u64;
            let mut row = SweepRow::new(scenario);
            for verdict in verdicts.values() {
                row.add(verdict);
            }
            row.finish();
            summary.rows.push(row);
        }
        Ok((summary, missing))
    }

    /// Saves `summary` as `DIR/summary.json`.
    pub fn save_summary(&self, summary: &Summary) -> Result<(), SweepDirError> {
        let path = self.dir.join(SUMMARY);
        let text = serde_json::to_string_pretty(summary).expect("summaries serialize");
        atomic_file::write(&path, text.as_bytes())
            .map_err(|source| SweepDirError::Io { path, source })
    }
}

fn read(path: &Path) -> Result<String, SweepDirError> {
    std::fs::read_to_string(path).map_err(|source| SweepDirError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Merges the folders of a sharded sweep into one summary, as one unsharded sweep of the same
/// seeds would print it. The folders must be shards `0/N` to `N-1/N` of one sweep (same
/// scenarios, seeds and flags), each exactly once and each finished.
pub fn merge(dirs: &[PathBuf]) -> Result<Summary, SweepDirError> {
    let folders: Vec<SweepDir> = dirs
        .iter()
        .map(|dir| SweepDir::open(dir))
        .collect::<Result<_, _>>()?;
    let first = folders
        .first()
        .ok_or_else(|| SweepDirError::Merge("no folder given".to_owned()))?;
    let shared = first.manifest.unsharded();
    let count = first.manifest.shard.map_or(1, |shard| shard.count);
    let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
    for folder in &folders {
        let shard = folder
            .manifest
            .shard
            .unwrap_or(Shard { index: 0, count: 1 });
        if folder.manifest.unsharded() != shared || shard.count != count {
            return Err(SweepDirError::Merge(format!(
                "{} is not a shard of the same sweep as {} (scenarios, seeds, flags or shard \
                 count differ)",
                folder.dir.display(),
                first.dir.display()
            )));
        }
        if let Some(other) = seen.insert(shard.index, &folder.dir) {
            return Err(SweepDirError::Merge(format!(
                "shard {shard} is given twice: {} and {}",
                other.display(),
                folder.dir.display()
            )));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|index| !seen.contains_key(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(SweepDirError::Merge(format!(
            "shard {} missing: every shard 0/{count} to {}/{count} must be given once",
            missing.join(", "),
            count - 1
        )));
    }
    let mut rows: Vec<SweepRow> = shared.scenarios.iter().map(SweepRow::new).collect();
    for folder in &folders {
        let seeds = folder.manifest.sweep(None).seeds().count();
        for (index, row) in rows.iter_mut().enumerate() {
            let verdicts = folder.verdicts(index)?;
            if verdicts.len() < seeds {
                return Err(SweepDirError::Merge(format!(
                    "{} is unfinished: {} seeds have no verdict (finish it with sweep --resume {})",
                    folder.dir.display(),
                    seeds - verdicts.len(),
                    folder.dir.display()
                )));
            }
            verdicts.values().for_each(|verdict| row.add(verdict));
        }
    }
    for row in &mut rows {
        row.finish();
    }
    Ok(Summary { rows })
}
