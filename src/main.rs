//! The `informer-sim` command line.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use informer_sim::bugs::{Budget, Bug, HuntResult, hunt};
use informer_sim::check::catalog::CATALOG;
use informer_sim::client::fifo_script::run_script;
use informer_sim::conformance::{CASES, run_all};
use informer_sim::replay::ReplayFile;
use informer_sim::scenario::{DEFAULT_SCENARIO, FifoKind, LIBRARY, Scenario};
use informer_sim::shrink::{Case, shrink};
use informer_sim::trace::Trace;
use informer_sim::world::faults::FaultPlan;
use informer_sim::world::probes::Probe;
use informer_sim::world::{RunOutcome, RunStats, World};

/// Where failing runs leave their replay files.
const REPLAY_DIR: &str = "replays";
/// How many hazard seeds per scenario a sweep shows.
const HAZARDS_SHOWN: u64 = 1;
/// The seeds the main job sweeps per library scenario.
const MAIN_JOB_SEEDS: u64 = 200;

/// Deterministic simulation of the Kubernetes list-watch pipeline.
///
/// With no command, sweeps every scenario of the embedded library.
#[derive(Parser)]
#[command(name = "informer-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one schedule and checks every invariant.
    Run {
        /// The seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// A library scenario name or a path to a .toml file.
        #[arg(long, default_value = DEFAULT_SCENARIO)]
        scenario: String,
        /// Writes the trace as JSON Lines to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Overrides the clients' FIFO: delta, real or real-atomic.
        #[arg(long, value_parser = |text: &str| text.parse::<FifoKind>())]
        fifo: Option<FifoKind>,
        /// Switches on one planted bug of the catalog (see `informer-sim bugs`).
        #[arg(long)]
        bug: Option<String>,
    },
    /// Runs many seeds of one scenario (or of every library scenario).
    Sweep {
        /// A library scenario name or a path to a .toml file (default: every library scenario).
        #[arg(long)]
        scenario: Option<String>,
        /// The seeds, as A..B (B excluded).
        #[arg(long, value_parser = parse_seed_range, default_value = "0..1000")]
        seeds: SeedRange,
        /// Runs only the seeds whose index is I modulo N, given as I/N.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<Shard>,
        /// Stops starting new seeds after this many seconds of wall time.
        #[arg(long)]
        time_limit: Option<u64>,
        /// Overrides the clients' FIFO: delta, real or real-atomic.
        #[arg(long, value_parser = |text: &str| text.parse::<FifoKind>())]
        fifo: Option<FifoKind>,
        /// Switches on one planted bug of the catalog (see `informer-sim bugs`).
        #[arg(long)]
        bug: Option<String>,
    },
    /// Hunts every planted bug of the catalog (or one) and prints whether the invariants catch it.
    Bugs {
        /// Only this bug.
        #[arg(long)]
        bug: Option<String>,
        /// The first seed of every hunt.
        #[arg(long, value_parser = parse_seed, default_value = "0")]
        first_seed: u64,
    },
    /// Shrinks a failing run (its fault plan and workload) to a small one that fails the same
    /// invariant, prints it and saves it as a replay file.
    Shrink {
        /// The failing seed (decimal or 0x-hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// A library scenario name or a path to a .toml file.
        #[arg(long, default_value = DEFAULT_SCENARIO)]
        scenario: String,
        /// Overrides the clients' FIFO: delta, real or real-atomic.
        #[arg(long, value_parser = |text: &str| text.parse::<FifoKind>())]
        fifo: Option<FifoKind>,
        /// Switches on one planted bug of the catalog (see `informer-sim bugs`).
        #[arg(long)]
        bug: Option<String>,
        /// At most this many re-runs.
        #[arg(long, default_value = "300")]
        runs: u64,
    },
    /// Re-runs a saved run and checks that its trace hash matches.
    Replay {
        /// A replay file written by `run` or `sweep`.
        file: PathBuf,
        /// Writes the trace as JSON Lines to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Lists the embedded scenario library and the upstream conformance cases.
    Scenarios,
    /// Runs kube-apiserver's watch conformance cases, with and without the watch cache.
    Conformance,
    /// Prints the invariant catalog: name, promise, when it holds, upstream source.
    Invariants,
    /// Runs a JSON script of FIFO operations and prints one JSON line per step.
    FifoScript {
        /// The script file, or - for standard input.
        file: String,
    },
}

#[derive(Clone, Copy, Debug)]
struct SeedRange {
    start: u64,
    end: u64,
}

#[derive(Clone, Copy, Debug)]
struct Shard {
    index: u64,
    count: u64,
}

fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| "a seed is a u64 in decimal or 0x-hex".to_owned())
}

fn parse_seed_range(text: &str) -> Result<SeedRange, String> {
    let message = || "seeds are a range A..B of u64 seeds with A < B".to_owned();
    let (start, end) = text.split_once("..").ok_or_else(message)?;
    let start = parse_seed(start).map_err(|_| message())?;
    let end = parse_seed(end).map_err(|_| message())?;
    if start >= end {
        return Err(message());
    }
    Ok(SeedRange { start, end })
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let message = || "a shard is I/N with 0 <= I < N".to_owned();
    let (index, count) = text.split_once('/').ok_or_else(message)?;
    let index: u64 = index.parse().map_err(|_| message())?;
    let count: u64 = count.parse().map_err(|_| message())?;
    if index >= count {
        return Err(message());
    }
    Ok(Shard { index, count })
}

/// A closed standard output (`informer-sim invariants | head`) ends the process quietly, as
/// Unix tools do, instead of `println!` panicking on the broken pipe.
#[cfg(unix)]
fn restore_default_sigpipe() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: resetting one signal's disposition to its default touches no Rust memory.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    restore_default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see informer-sim --help)");
            return ExitCode::from(2);
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Some(Command::Run {
            seed,
            scenario,
            trace,
            fifo,
            bug,
        }) => run(seed, &scenario, fifo, bug.as_deref(), trace.as_deref()),
        Some(Command::Sweep {
            scenario,
            seeds,
            shard,
            time_limit,
            fifo,
            bug,
        }) => {
            let overrides = Overrides {
                fifo,
                bug: bug.as_deref(),
            };
            sweep(scenario.as_deref(), overrides, seeds, shard, time_limit)
        }
        Some(Command::Bugs { bug, first_seed }) => bugs_table(bug.as_deref(), first_seed),
        Some(Command::Shrink {
            seed,
            scenario,
            fifo,
            bug,
            runs,
        }) => {
            let overrides = Overrides {
                fifo,
                bug: bug.as_deref(),
            };
            shrink_command(seed, &scenario, overrides, runs)
        }
        Some(Command::Replay { file, trace }) => replay(&file, trace.as_deref()),
        Some(Command::Scenarios) => {
            for entry in LIBRARY {
                println!("{:<32} {}", entry.name, entry.summary());
            }
            println!();
            println!(
                "upstream watch conformance cases (informer-sim conformance; cache and no-cache):"
            );
            for case in CASES {
                println!("{:<56} {}", case.name, case.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Conformance) => Ok(conformance()),
        Some(Command::Invariants) => {
            for info in CATALOG {
                println!(
                    "{}\n  promise: {}\n  holds:   {}\n  source:  {}",
                    info.name, info.promise, info.holds_when, info.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::FifoScript { file }) => fifo_script(&file),
        None => sweep(
            None,
            Overrides::default(),
            SeedRange {
                start: 0,
                end: MAIN_JOB_SEEDS,
            },
            None,
            None,
        ),
    };
    result.unwrap_or_else(|message| {
        eprintln!("{message}");
        ExitCode::from(2)
    })
}

fn conformance() -> ExitCode {
    let results = run_all();
    let failed = results
        .iter()
        .filter(|(_, _, result)| result.is_err())
        .count();
    for (name, mode, result) in &results {
        match result {
            Ok(()) => println!("ok   {name:<56} {mode}"),
            Err(error) => println!("FAIL {name:<56} {mode}: {error}"),
        }
    }
    println!(
        "conformance: {} passed, {failed} failed",
        results.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fifo_script(file: &str) -> Result<ExitCode, String> {
    let input = if file == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|error| format!("cannot read standard input: {error}"))?
    } else {
        std::fs::read_to_string(file).map_err(|error| format!("cannot read {file}: {error}"))?
    };
    let output = run_script(&input).map_err(|error| format!("fifo-script {file}: {error}"))?;
    print!("{output}");
    Ok(ExitCode::SUCCESS)
}

/// What the command line changes in a scenario.
#[derive(Clone, Copy, Default)]
struct Overrides<'a> {
    fifo: Option<FifoKind>,
    bug: Option<&'a str>,
}

/// Loads a scenario with the command line's overrides; its name then says them, so the
/// printed replay command reproduces the run.
fn load(name: &str, overrides: Overrides<'_>) -> Result<Scenario, String> {
    let mut scenario = Scenario::load(name).map_err(|error| error.to_string())?;
    if let Some(fifo) = overrides.fifo {
        scenario.clients.fifo = fifo;
        scenario.name = format!("{} --fifo {}", scenario.name, fifo);
    }
    if let Some(bug) = overrides.bug {
        scenario.bug = Some(Bug::from_name(bug)?);
        scenario.name = format!("{} --bug {bug}", scenario.name);
    }
    Ok(scenario)
}

fn open_trace(trace_path: Option<&Path>) -> Result<Trace, String> {
    let Some(path) = trace_path else {
        return Ok(Trace::default());
    };
    let file = std::fs::File::create(path)
        .map_err(|error| format!("cannot write trace {}: {error}", path.display()))?;
    Ok(Trace::with_sink(Box::new(BufWriter::new(file))))
}

fn run(
    seed: u64,
    scenario_name: &str,
    fifo: Option<FifoKind>,
    bug: Option<&str>,
    trace_path: Option<&Path>,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, Overrides { fifo, bug })?;
    let world = World::new(scenario.clone(), seed, open_trace(trace_path)?);
    let plan = world.plan().clone();
    let outcome = world.run();
    Ok(report(seed, &scenario, plan, &outcome))
}

fn replay_command(seed: u64, scenario: &Scenario) -> String {
    format!(
        "informer-sim run --seed {seed} --scenario {}",
        scenario.name
    )
}

/// Prints the expected upstream hazards a run hit, one line each.
fn print_hazards(seed: u64, scenario: &Scenario, outcome: &RunOutcome) {
    for (step, hazard) in &outcome.hazards {
        let replay = replay_command(seed, scenario);
        println!("hazard: {hazard} (expected upstream hazard, step {step}; replay: {replay})");
    }
}

/// Prints a run's verdict; a failure also gets a replay file. Returns the exit code.
fn report(seed: u64, scenario: &Scenario, plan: FaultPlan, outcome: &RunOutcome) -> ExitCode {
    print_hazards(seed, scenario, outcome);
    let Some((step, violation)) = &outcome.violation else {
        println!(
            "ok seed={seed} events={} trace={}",
            outcome.steps, outcome.trace_hash
        );
        return ExitCode::SUCCESS;
    };
    println!("violation: {violation}");
    match ReplayFile::of(scenario, seed, plan, outcome).save(Path::new(REPLAY_DIR), "") {
        Ok(path) => println!("replay file: informer-sim replay {}", path.display()),
        Err(error) => println!("replay file not written: {error}"),
    }
    println!("replay: {}", replay_command(seed, scenario));
    println!(
        "FAIL seed={seed} invariant={} step={step}",
        violation.invariant
    );
    ExitCode::from(1)
}

fn shrink_command(
    seed: u64,
    scenario_name: &str,
    overrides: Overrides<'_>,
    runs: u64,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, overrides)?;
    let case = Case::of_seed(scenario, seed);
    let outcome = case.run();
    let Some((_, violation)) = outcome.violation else {
        return Err(format!(
            "seed {seed} of {} breaks no invariant: only a failing run can be shrunk",
            case.scenario.name
        ));
    };
    println!("violation: {violation}");
    println!("before: {} steps, {}", outcome.steps, case.describe());
    let shrunk = shrink(case, violation.invariant, runs);
    println!(
        "after {} runs: {} steps, {}",
        shrunk.runs,
        shrunk.outcome.steps,
        shrunk.case.describe()
    );
    if let Some((step, violation)) = &shrunk.outcome.violation {
        println!("shrunk violation at step {step}: {violation}");
    }
    for timed in &shrunk.case.plan.faults {
        println!("fault at {} ms: {:?}", timed.at_ms, timed.fault);
    }
    let file = ReplayFile::of(
        &shrunk.case.scenario,
        shrunk.case.seed,
        shrunk.case.plan.clone(),
        &shrunk.outcome,
    );
    let path = file
        .save(Path::new(REPLAY_DIR), "-shrunk")
        .map_err(|error| error.to_string())?;
    println!("replay: informer-sim replay {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn replay(file: &Path, trace_path: Option<&Path>) -> Result<ExitCode, String> {
    let saved = ReplayFile::load(file).map_err(|error| error.to_string())?;
    let outcome = saved.run(open_trace(trace_path)?);
    let seed = saved.seed;
    if let Some((step, violation)) = &outcome.violation {
        println!("violation: {violation}");
        println!(
            "FAIL seed={seed} invariant={} step={step}",
            violation.invariant
        );
    }
    if outcome.trace_hash != saved.trace_hash {
        println!(
            "replay diverged: trace={} but the file says {}",
            outcome.trace_hash, saved.trace_hash
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "replayed seed={seed} events={} trace={} (matches the file)",
        outcome.steps, outcome.trace_hash
    );
    Ok(if outcome.violation.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn sweep(
    scenario_name: Option<&str>,
    overrides: Overrides<'_>,
    seeds: SeedRange,
    shard: Option<Shard>,
    time_limit_secs: Option<u64>,
) -> Result<ExitCode, String> {
    let scenarios: Vec<Scenario> = match scenario_name {
        Some(name) => vec![load(name, overrides)?],
        None => LIBRARY
            .iter()
            .map(|entry| load(entry.name, overrides))
            .collect::<Result<_, _>>()?,
    };
    let started = Instant::now();
    let mut rows: Vec<SweepRow> = Vec::new();
    let mut exercised = RunStats::default();
    for scenario in &scenarios {
        let mut row = SweepRow {
            scenario: scenario.name.clone(),
            ..SweepRow::default()
        };
        let scenario_started = Instant::now();
        for seed in seeds.start..seeds.end {
            if shard.is_some_and(|shard| (seed - seeds.start) % shard.count != shard.index) {
                continue;
            }
            if time_limit_secs.is_some_and(|limit| started.elapsed().as_secs() >= limit) {
                break;
            }
            let world = World::new(scenario.clone(), seed, Trace::default());
            let plan = world.plan().clone();
            let outcome = world.run();
            row.seeds += 1;
            row.events += outcome.steps;
            row.stats.add(&outcome.stats);
            row.hazards += u64::from(!outcome.hazards.is_empty());
            if outcome.violation.is_some() {
                row.failed += 1;
                report(seed, scenario, plan, &outcome);
            } else if !outcome.hazards.is_empty() && row.hazards <= HAZARDS_SHOWN {
                print_hazards(seed, scenario, &outcome);
            }
            if row.seeds.is_multiple_of(100) {
                eprint!(
                    "\r{}: {} seeds, {} failed",
                    scenario.name, row.seeds, row.failed
                );
                let _ = std::io::stderr().flush();
            }
        }
        row.seconds = scenario_started.elapsed().as_secs_f64();
        eprintln!();
        row.probe_misses = Probe::misses(&scenario.probes, &row.stats);
        exercised.add(&row.stats);
        rows.push(row);
    }
    print_sweep_table(&rows);
    println!("exercised: {exercised}");
    print_probes(&scenarios, &rows);
    let swept: u64 = rows.iter().map(|row| row.seeds).sum();
    let failed: u64 = rows.iter().map(|row| row.failed).sum();
    let hazards: u64 = rows.iter().map(|row| row.hazards).sum();
    if hazards > 0 {
        println!("expected upstream hazards: {hazards} seeds (not failures)");
    }
    let events: u64 = rows.iter().map(|row| row.events).sum();
    let rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let misses: usize = rows.iter().map(|row| row.probe_misses.len()).sum();
    println!("swept {swept} seeds: {failed} failed, {misses} probes never hit, {rate:.0} events/s");
    Ok(if failed == 0 && misses == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One scenario's line of a sweep's summary table.
#[derive(Default)]
struct SweepRow {
    scenario: String,
    seeds: u64,
    failed: u64,
    hazards: u64,
    events: u64,
    seconds: f64,
    stats: RunStats,
    /// The scenario's coverage probes this sweep never hit.
    probe_misses: Vec<Probe>,
}

/// Prints how often each coverage probe was hit, per scenario (`*` marks the probes the
/// scenario requires), and one line per required probe that was never hit.
fn print_probes(scenarios: &[Scenario], rows: &[SweepRow]) {
    for (scenario, row) in scenarios.iter().zip(rows) {
        let hits: Vec<String> = Probe::ALL
            .iter()
            .filter(|probe| probe.hits(&row.stats) > 0 || scenario.probes.contains(probe))
            .map(|probe| {
                let required = if scenario.probes.contains(probe) {
                    "*"
                } else {
                    ""
                };
                format!("{probe}{required}={}", probe.hits(&row.stats))
            })
            .collect();
        println!("probes {}: {}", scenario.name, hits.join(" "));
        for probe in &row.probe_misses {
            println!(
                "probe never hit: {} in {}: the sweep never reached this state ({} seeds); \
                 sweep more seeds or change the scenario",
                probe, scenario.name, row.seeds
            );
        }
    }
}

fn print_sweep_table(rows: &[SweepRow]) {
    println!(
        "{:<40} {:>7} {:>7} {:>8} {:>11} {:>10}",
        "scenario", "seeds", "failed", "hazards", "events", "events/s"
    );
    for row in rows {
        let rate = row.events as f64 / row.seconds.max(1e-9);
        println!(
            "{:<40} {:>7} {:>7} {:>8} {:>11} {:>10.0}",
            row.scenario, row.seeds, row.failed, row.hazards, row.events, rate
        );
    }
}

fn bugs_table(only: Option<&str>, first_seed: u64) -> Result<ExitCode, String> {
    let bugs: Vec<Bug> = match only {
        Some(name) => vec![Bug::from_name(name)?],
        None => Bug::ALL.to_vec(),
    };
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&bug) = bugs.get(index) else { break };
                    let budget = Budget {
                        first_seed,
                        ..Budget::of(bug)
                    };
                    let result = hunt(bug, budget);
                    results
                        .lock()
                        .expect("no hunt panics")
                        .push((index, result));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no hunt panics");
    results.sort_by_key(|(index, _)| *index);
    println!(
        "{:<4} {:<40} {:<7} {:<40} {:>6} {:>8} {:>15}",
        "id", "bug", "caught", "invariant", "seeds", "time", "shrunk"
    );
    let mut caught_seeds = Vec::new();
    let mut escapes = 0;
    for (_, result) in &results {
        print_row(result);
        match &result.caught {
            Some(_) => caught_seeds.push(result.seeds),
            None => escapes += 1,
        }
    }
    caught_seeds.sort_unstable();
    let median = caught_seeds
        .get(caught_seeds.len().saturating_sub(1) / 2)
        .map_or_else(|| "-".to_owned(), u64::to_string);
    println!(
        "caught {}/{} bugs; median seeds until caught: {median}; wall {:.1}s",
        caught_seeds.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if escapes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_row(result: &HuntResult) {
    let bug = result.bug.expect("catalog hunts switch a bug on");
    let (caught, invariant, shrunk) = match &result.caught {
        Some(caught) => (
            "yes",
            caught.invariant,
            caught.shrunk.as_ref().map_or_else(
                || format!("{} steps", caught.steps),
                |shrunk| {
                    format!(
                        "{}st/{}of{}f",
                        shrunk.outcome.steps,
                        shrunk.case.plan.faults.len(),
                        shrunk.faults_before
                    )
                },
            ),
        ),
        None => ("NO", "-", "-".to_owned()),
    };
    println!(
        "{:<4} {:<40} {:<7} {:<40} {:>6} {:>7.2}s {:>15}",
        bug.info().id,
        bug.name(),
        caught,
        invariant,
        result.seeds,
        result.wall.as_secs_f64(),
        shrunk
    );
}
