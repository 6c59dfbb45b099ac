//! Many runs: the one seed loop that sweeps, hunts and the tests' sweeps share, the command
//! line's seed vocabulary, and the environment knobs of `cargo test`.
//!
//! A driver (floor 4): it builds worlds and reads the wall clock to honour time limits; nothing
//! it reads reaches a run, so every seed still replays byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::bug::Bug;
use crate::check::Invariant;
use crate::client::FifoKind;
use crate::scenario::{Probe, Scenario};
use crate::shrink::{Case, Shrunk, shrink};
use crate::trace::TraceHash;
use crate::world::{RunOutcome, RunStats, World};

/// The environment variable that pins the seed of a test.
pub const SEED_VARIABLE: &str = "INFORMER_SIM_SEED";
/// The environment variable that scales how many cases a test explores.
pub const CASES_VARIABLE: &str = "INFORMER_SIM_CASES";
/// The environment variable a Kubernetes Indexed Job sets in each pod: its completion index.
pub const JOB_INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";
/// The environment variable that carries the Job's `completions` (Kubernetes sets only the
/// index, so the Job's manifest passes its count).
pub const JOB_COUNT_VARIABLE: &str = "JOB_COMPLETIONS";

/// Parses a seed: a u64 in decimal or `0x` hex.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a seed (a u64 in decimal or 0x-hex)"))
}

/// Seeds `A..B` (B excluded), as the command line writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRange {
    /// The first seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// How many seeds.
    pub fn len(self) -> u64 {
        self.end - self.start
    }

    /// Whether there is no seed (never, for a parsed range).
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The first `count` seeds of the range (all of them if there are fewer).
    pub fn first(self, count: u64) -> SeedRange {
        SeedRange {
            end: self.end.min(self.start.saturating_add(count)),
            ..self
        }
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let message = || format!("{text:?} is not a seed range (A..B of u64 seeds with A < B)");
        let (start, end) = text.split_once("..").ok_or_else(message)?;
        let start = parse_seed(start).map_err(|_| message())?;
        let end = parse_seed(end).map_err(|_| message())?;
        if start >= end {
            return Err(message());
        }
        Ok(SeedRange { start, end })
    }
}

impl From<Range<u64>> for SeedRange {
    fn from(range: Range<u64>) -> SeedRange {
        SeedRange {
            start: range.start,
            end: range.end,
        }
    }
}

/// One of `count` shards of a sweep: the seeds whose offset in the range is `index` modulo
/// `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// Whether the seed at `offset` from the range's start belongs to this shard.
    pub fn owns(self, offset: u64) -> bool {
        offset % self.count == self.index
    }

    /// The shard a Kubernetes Indexed Job's pod runs: `JOB_COMPLETION_INDEX` of
    /// `JOB_COMPLETIONS`.
    pub fn from_job_env() -> Result<Shard, String> {
        let read = |variable| std::env::var(variable).ok();
        Shard::from_job_values(read(JOB_INDEX_VARIABLE), read(JOB_COUNT_VARIABLE))
    }

    /// The shard of a Job's completion index and count, as the environment gives them.
    pub fn from_job_values(index: Option<String>, count: Option<String>) -> Result<Shard, String> {
        let missing = |variable| {
            format!(
                "--shard auto needs {variable} (a Kubernetes Indexed Job sets \
                 {JOB_INDEX_VARIABLE}; its manifest sets {JOB_COUNT_VARIABLE} to its completions)"
            )
        };
        let index = index.ok_or_else(|| missing(JOB_INDEX_VARIABLE))?;
        let count = count.ok_or_else(|| missing(JOB_COUNT_VARIABLE))?;
        let number = |variable, given: &str| {
            given.parse::<u64>().map_err(|_| {
                format!("{variable}={given:?} is not a number (--shard auto reads it as a u64)")
            })
        };
        let shard = Shard {
            index: number(JOB_INDEX_VARIABLE, &index)?,
            count: number(JOB_COUNT_VARIABLE, &count)?,
        };
        if shard.index >= shard.count {
            return Err(format!(
                "{JOB_INDEX_VARIABLE}={index} is not below {JOB_COUNT_VARIABLE}={count} \
                 (--shard auto needs 0 <= index < completions)"
            ));
        }
        Ok(shard)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shard`: a fixed `I/N`, or `auto`, read from a Kubernetes Indexed Job's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// `I/N`.
    Fixed(Shard),
    /// `auto`: [`Shard::from_job_env`].
    Auto,
}

impl ShardArg {
    /// The shard it names (reading the environment for `auto`).
    pub fn resolve(self) -> Result<Shard, String> {
        match self {
            ShardArg::Fixed(shard) => Ok(shard),
            ShardArg::Auto => Shard::from_job_env(),
        }
    }
}

impl FromStr for ShardArg {
    type Err = String;

    fn from_str(text: &str) -> Result<ShardArg, String> {
        if text == "auto" {
            return Ok(ShardArg::Auto);
        }
        text.parse().map(ShardArg::Fixed).map_err(|error: String| {
            format!("{error}, or auto to read a Kubernetes Indexed Job's environment")
        })
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let message = || format!("{text:?} is not a shard (I/N with 0 <= I < N)");
        let (index, count) = text.split_once('/').ok_or_else(message)?;
        let index: u64 = index.parse().map_err(|_| message())?;
        let count: u64 = count.parse().map_err(|_| message())?;
        if index >= count {
            return Err(message());
        }
        Ok(Shard { index, count })
    }
}

/// What the command line changes in a scenario: scenario fields, carried beside its name so
/// that the printed replay command reproduces the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    /// The clients' FIFO (`--fifo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo: Option<FifoKind>,
    /// The planted bug switched on (`--bug`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bug: Option<Bug>,
}

impl Overrides {
    /// `scenario` with these overrides applied.
    pub fn apply(self, mut scenario: Scenario) -> Scenario {
        if let Some(fifo) = self.fifo {
            scenario.clients.fifo = Some(fifo);
        }
        if let Some(bug) = self.bug {
            scenario.bug = Some(bug);
        }
        scenario
    }
}

impl fmt::Display for Overrides {
    /// The command-line flags, each with a leading space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fifo) = self.fifo {
            write!(f, " --fifo {fifo}")?;
        }
        if let Some(bug) = self.bug {
            write!(f, " --bug {bug}")?;
        }
        Ok(())
    }
}

/// The command that replays seed `seed` of scenario `scenario` (a library name or a path).
pub fn replay_line(scenario: &str, overrides: Overrides, seed: u64) -> String {
    format!("informer-sim run --seed {seed} --scenario {scenario}{overrides}")
}

/// Why an environment knob could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={given:?} is not a {what}")]
pub struct EnvError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub given: String,
    /// What it must be.
    pub what: &'static str,
}

/// The seed `INFORMER_SIM_SEED` pins, if set.
pub fn env_seed() -> Result<Option<u64>, EnvError> {
    std::env::var(SEED_VARIABLE)
        .ok()
        .map(parse_env_seed)
        .transpose()
}

/// Reads `INFORMER_SIM_SEED`'s value.
pub fn parse_env_seed(given: String) -> Result<u64, EnvError> {
    parse_seed(&given).map_err(|_| EnvError {
        variable: SEED_VARIABLE,
        given,
        what: "seed (a u64 in decimal or 0x-hex)",
    })
}

/// How many cases `INFORMER_SIM_CASES` asks for, or `default`.
pub fn env_cases(default: u64) -> Result<u64, EnvError> {
    std::env::var(CASES_VARIABLE)
        .ok()
        .map_or(Ok(default), parse_env_cases)
}

/// Reads `INFORMER_SIM_CASES`'s value.
pub fn parse_env_cases(given: String) -> Result<u64, EnvError> {
    given.parse().map_err(|_| EnvError {
        variable: CASES_VARIABLE,
        given,
        what: "number of cases (a u64)",
    })
}

/// The seeds a test sweeps: the pinned one, or `0..INFORMER_SIM_CASES` (default `default`).
pub fn seeds_from_env(default: u64) -> Result<SeedRange, EnvError> {
    Ok(match env_seed()? {
        Some(seed) => SeedRange {
            start: seed,
            end: seed.saturating_add(1),
        },
        None => SeedRange {
            start: 0,
            end: env_cases(default)?,
        },
    })
}

/// Runs one seed of `scenario`, with the fault plan the seed expands into.
pub fn run_seed(scenario: &Scenario, seed: u64) -> RunOutcome {
    World::new(scenario.clone(), seed, crate::trace::Trace::default()).run()
}

/// What a sweep's visitor tells it after a seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next seed.
    Continue,
    /// Stop the sweep.
    Stop,
}

/// A sweep over seeds: the one seed loop.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    /// The seeds.
    pub seeds: SeedRange,
    /// Only this shard of them.
    pub shard: Option<Shard>,
    /// Start no seed after this moment.
    pub deadline: Option<Instant>,
}

impl Sweep {
    /// Every seed of `seeds`, no shard, no deadline.
    pub fn over(seeds: impl Into<SeedRange>) -> Sweep {
        Sweep {
            seeds: seeds.into(),
            shard: None,
            deadline: None,
        }
    }

    /// The seeds this sweep runs, in order.
    pub fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        (self.seeds.start..self.seeds.end).filter(|seed| {
            self.shard
                .is_none_or(|shard| shard.owns(seed - self.seeds.start))
        })
    }

    /// Runs `scenario` seed after seed, handing each outcome to `visit`, until the seeds end,
    /// the deadline passes or `visit` says stop.
    pub fn run(
        &self,
        scenario: &Scenario,
        visit: impl FnMut(u64, &RunOutcome) -> Flow,
    ) -> SweepRow {
        self.run_except(scenario, &BTreeSet::new(), visit)
    }

    /// [`Sweep::run`] without the seeds of `done` (a resumed sweep's finished seeds); the row
    /// counts only the seeds run now.
    pub fn run_except(
        &self,
        scenario: &Scenario,
        done: &BTreeSet<u64>,
        mut visit: impl FnMut(u64, &RunOutcome) -> Flow,
    ) -> SweepRow {
        let started = Instant::now();
        let mut row = SweepRow::new(scenario);
        for seed in self.seeds().filter(|seed| !done.contains(seed)) {
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                break;
            }
            let outcome = run_seed(scenario, seed);
            row.add(&Verdict::of(seed, &outcome));
            if visit(seed, &outcome) == Flow::Stop {
                break;
            }
        }
        row.wall = started.elapsed();
        row.finish();
        row
    }
}

/// What one seed's run came to, as a sweep records it: enough to rebuild the sweep's summary
/// without the run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// The seed.
    pub seed: u64,
    /// How many steps the run took.
    pub steps: u64,
    /// The trace hash.
    pub trace_hash: TraceHash,
    /// The invariant that failed and the step it failed at, if one did.
    pub failed: Option<Failed>,
    /// The expected upstream hazards the run hit.
    pub hazards: Vec<Invariant>,
    /// What the run exercised.
    pub stats: RunStats,
}

/// A failed invariant in a [`Verdict`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    /// The invariant.
    pub invariant: Invariant,
    /// The step.
    pub step: u64,
}

impl Verdict {
    /// The verdict of seed `seed`'s run.
    pub fn of(seed: u64, outcome: &RunOutcome) -> Verdict {
        Verdict {
            seed,
            steps: outcome.steps,
            trace_hash: outcome.trace_hash,
            failed: outcome.violation.as_ref().map(|(step, violation)| Failed {
                invariant: violation.invariant,
                step: *step,
            }),
            hazards: outcome
                .hazards
                .iter()
                .map(|(_, hazard)| hazard.invariant)
                .collect(),
            stats: outcome.stats.clone(),
        }
    }
}

/// What one scenario's sweep found. Everything but the wall time is a function of the seeds'
/// verdicts, so a row rebuilt from saved verdicts equals the row of the sweep that ran them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRow {
    /// The scenario's name.
    pub scenario: String,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that broke an invariant.
    pub failed: u64,
    /// The seeds that broke an invariant, in order.
    pub failing_seeds: Vec<u64>,
    /// Seeds that hit an expected upstream hazard.
    pub hazard_seeds: u64,
    /// How many seeds hit each expected hazard.
    pub hazards: BTreeMap<Invariant, u64>,
    /// Steps of every run.
    pub events: u64,
    /// Wall time (not saved: it is the one figure a rebuilt row cannot know).
    #[serde(skip)]
    pub wall: Duration,
    /// What the runs exercised, summed.
    pub stats: RunStats,
    /// The coverage probes the scenario requires.
    pub probes_required: Vec<Probe>,
    /// The scenario's required coverage probes no run hit.
    pub probe_misses: Vec<Probe>,
}

impl SweepRow {
    /// An empty row for `scenario`.
    pub fn new(scenario: &Scenario) -> SweepRow {
        SweepRow {
            scenario: scenario.name.clone(),
            probes_required: scenario.probes.clone(),
            ..SweepRow::default()
        }
    }

    /// Counts one seed's verdict (seeds in any order; [`SweepRow::finish`] after the last).
    pub fn add(&mut self, verdict: &Verdict) {
        self.seeds += 1;
        self.events += verdict.steps;
        self.stats.add(&verdict.stats);
        if verdict.failed.is_some() {
            self.failed += 1;
            self.failing_seeds.push(verdict.seed);
        }
        self.hazard_seeds += u64::from(!verdict.hazards.is_empty());
        for hazard in &verdict.hazards {
            *self.hazards.entry(*hazard).or_default() += 1;
        }
    }

    /// Orders the failing seeds and works out the probes no seed hit.
    pub fn finish(&mut self) {
        self.failing_seeds.sort_unstable();
        self.probe_misses = self.stats.probe_misses(&self.probes_required);
    }

    /// Steps per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// How long a hunt may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The first seed (a hunt uses `first_seed..first_seed + seeds`).
    pub first_seed: u64,
    /// At most this many seeds.
    pub seeds: u64,
    /// Stop starting new seeds after this much wall time.
    pub wall: Duration,
    /// Shrink a caught counterexample with at most this many extra runs (0: do not shrink).
    pub shrink_runs: u64,
}

impl Budget {
    /// The catalog budget of `bug`: its seed count, 20 s, up to 60 shrink runs.
    pub fn of(bug: Bug) -> Budget {
        Budget {
            first_seed: 0,
            seeds: bug.info().seeds,
            wall: Duration::from_secs(20),
            shrink_runs: 60,
        }
    }
}

/// The failing seed of a hunt.
#[derive(Clone, Debug)]
pub struct Caught {
    /// The seed.
    pub seed: u64,
    /// The invariant it broke.
    pub invariant: Invariant,
    /// The violation, on one line.
    pub message: String,
    /// Steps of the failing run.
    pub steps: u64,
    /// The shrunk counterexample, if shrinking was asked for.
    pub shrunk: Option<Shrunk>,
}

/// What a hunt found.
#[derive(Clone, Debug)]
pub struct HuntResult {
    /// The scenario swept.
    pub scenario: String,
    /// The bug switched on, if any.
    pub bug: Option<Bug>,
    /// The first failing seed, if any.
    pub caught: Option<Caught>,
    /// Seeds run, the failing one included.
    pub seeds: u64,
    /// Wall time, shrinking included.
    pub wall: Duration,
}

/// Sweeps `bug`'s scenario with `bug` on until an invariant fails or the budget runs out.
pub fn hunt(bug: Bug, budget: Budget) -> HuntResult {
    hunt_in(scenario_of(bug, Some(bug)), budget)
}

/// `bug`'s scenario with `switched_on` as its bug (`None` for a control run).
pub fn scenario_of(bug: Bug, switched_on: Option<Bug>) -> Scenario {
    let mut scenario =
        Scenario::load(bug.info().scenario).expect("catalog scenarios are in the library");
    scenario.bug = switched_on;
    scenario
}

/// Sweeps `scenario` (with whatever bug it has on) until an invariant fails or the budget runs
/// out; shrinks the failing case within `budget.shrink_runs`.
pub fn hunt_in(scenario: Scenario, budget: Budget) -> HuntResult {
    let started = Instant::now();
    let sweep = Sweep {
        deadline: Some(started + budget.wall),
        ..Sweep::over(budget.first_seed..budget.first_seed.saturating_add(budget.seeds))
    };
    let mut caught = None;
    let row = sweep.run(&scenario, |seed, outcome| {
        let Some((_, violation)) = &outcome.violation else {
            return Flow::Continue;
        };
        let shrunk = (budget.shrink_runs > 0).then(|| {
            let case = Case::of_seed(scenario.clone(), seed);
            shrink(case, violation.invariant, budget.shrink_runs)
        });
        caught = Some(Caught {
            seed,
            invariant: violation.invariant,
            message: violation.message.clone(),
            steps: outcome.steps,
            shrunk,
        });
        Flow::Stop
    });
    HuntResult {
        scenario: scenario.name.clone(),
        bug: scenario.bug,
        caught,
        seeds: row.seeds,
        wall: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_scenario_is_in_the_library() {
        for bug in Bug::ALL {
            assert_eq!(scenario_of(*bug, Some(*bug)).bug, Some(*bug));
        }
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex_and_bad_ones_say_what_a_seed_is() {
        assert_eq!(parse_seed("255"), Ok(255));
        assert_eq!(parse_seed("0xff"), Ok(255));
        let error = parse_seed("banana").unwrap_err();
        assert!(error.contains("u64"), "{error}");
    }

    #[test]
    fn seed_ranges_and_shards_reject_empty_and_out_of_range_forms() {
        assert_eq!("3..5".parse(), Ok(SeedRange { start: 3, end: 5 }));
        assert!("5..2".parse::<SeedRange>().is_err());
        assert!("5..5".parse::<SeedRange>().is_err());
        assert!("x".parse::<SeedRange>().is_err());
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
    }

    #[test]
    fn shards_split_a_range_without_overlap_or_gap() {
        let mut seen = Vec::new();
        for index in 0..3 {
            let sweep = Sweep {
                shard: Some(Shard { index, count: 3 }),
                ..Sweep::over(10..20)
            };
            seen.extend(sweep.seeds());
        }
        seen.sort_unstable();
        assert_eq!(seen, (10..20).collect::<Vec<_>>());
    }

    #[test]
    fn the_replay_line_carries_the_overrides_as_flags() {
        let overrides = Overrides {
            fifo: Some(FifoKind::Real),
            bug: Some(Bug::EarlyProgress),
        };
        assert_eq!(
            replay_line("informer", overrides, 7),
            "informer-sim run --seed 7 --scenario informer --fifo real --bug early-progress"
        );
        let scenario = overrides.apply(Scenario::default());
        assert_eq!(scenario.clients.fifo(), FifoKind::Real);
        assert_eq!(scenario.bug, Some(Bug::EarlyProgress));
    }
}
