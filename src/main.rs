//! The `informer-sim` command line.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use informer_sim::bugs::{Budget, Bug, HuntResult, hunt};
use informer_sim::client::fifo_script::run_script;
use informer_sim::scenario::{DEFAULT_SCENARIO, LIBRARY, Scenario};
use informer_sim::trace::Trace;
use informer_sim::world::{RunOutcome, RunStats, World};

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
        trace: Option<std::path::PathBuf>,
        /// Switches on one planted bug of the catalog (see `informer-sim bugs`).
        #[arg(long)]
        bug: Option<String>,
    },
    /// Runs many seeds of one scenario.
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
    /// Lists the embedded scenario library.
    Scenarios,
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
    let (start, end) = (
        parse_seed(start).map_err(|_| message())?,
        parse_seed(end).map_err(|_| message())?,
    );
    if start >= end {
        return Err(message());
    }
    Ok(SeedRange { start, end })
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let message = || "a shard is I/N with 0 <= I < N".to_owned();
    let (index, count) = text.split_once('/').ok_or_else(message)?;
    let (index, count): (u64, u64) = (
        index.parse().map_err(|_| message())?,
        count.parse().map_err(|_| message())?,
    );
    if index >= count {
        return Err(message());
    }
    Ok(Shard { index, count })
}

fn main() -> ExitCode {
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
            bug,
        }) => run(seed, &scenario, trace.as_deref(), bug.as_deref()),
        Some(Command::Sweep {
            scenario,
            seeds,
            shard,
            time_limit,
            bug,
        }) => sweep(
            scenario.as_deref(),
            seeds,
            shard,
            time_limit,
            bug.as_deref(),
        ),
        Some(Command::Bugs { bug, first_seed }) => bugs_table(bug.as_deref(), first_seed),
        Some(Command::Scenarios) => {
            for entry in LIBRARY {
                println!("{:<28} {}", entry.name, entry.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::FifoScript { file }) => fifo_script(&file),
        None => sweep(None, SeedRange { start: 0, end: 200 }, None, None, None),
    };
    result.unwrap_or_else(|message| {
        eprintln!("{message}");
        ExitCode::from(2)
    })
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

fn load(name: &str, bug: Option<&str>) -> Result<Scenario, String> {
    let mut scenario = Scenario::load(name).map_err(|error| error.to_string())?;
    if let Some(name) = bug {
        scenario.bug = Some(Bug::from_name(name)?);
    }
    Ok(scenario)
}

fn run(
    seed: u64,
    scenario_name: &str,
    trace_path: Option<&std::path::Path>,
    bug: Option<&str>,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, bug)?;
    let trace = match trace_path {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|error| format!("cannot write trace {}: {error}", path.display()))?;
            Trace::with_sink(Box::new(BufWriter::new(file)))
        }
        None => Trace::default(),
    };
    let outcome = World::new(scenario.clone(), seed, trace).run();
    Ok(report(seed, &scenario, &outcome))
}

fn report(seed: u64, scenario: &Scenario, outcome: &RunOutcome) -> ExitCode {
    match &outcome.violation {
        None => {
            println!(
                "ok seed={seed} events={} trace={}",
                outcome.steps, outcome.trace_hash
            );
            ExitCode::SUCCESS
        }
        Some((step, violation)) => {
            println!("violation: {violation}");
            let bug = scenario
                .bug
                .map_or_else(String::new, |bug| format!(" --bug {bug}"));
            println!(
                "replay: informer-sim run --seed {seed} --scenario {}{bug}",
                scenario.name
            );
            println!(
                "FAIL seed={seed} invariant={} step={step}",
                violation.invariant
            );
            ExitCode::from(1)
        }
    }
}

fn sweep(
    scenario_name: Option<&str>,
    seeds: SeedRange,
    shard: Option<Shard>,
    time_limit_secs: Option<u64>,
    bug: Option<&str>,
) -> Result<ExitCode, String> {
    let scenarios: Vec<Scenario> = match scenario_name {
        Some(name) => vec![load(name, bug)?],
        None => LIBRARY
            .iter()
            .map(|entry| load(entry.name, bug))
            .collect::<Result<_, _>>()?,
    };
    let started = Instant::now();
    let (mut swept, mut failed, mut events) = (0u64, 0u64, 0u64);
    let mut exercised = RunStats::default();
    for scenario in &scenarios {
        for seed in seeds.start..seeds.end {
            if shard.is_some_and(|shard| (seed - seeds.start) % shard.count != shard.index) {
                continue;
            }
            if time_limit_secs.is_some_and(|limit| started.elapsed().as_secs() >= limit) {
                break;
            }
            let outcome = World::new(scenario.clone(), seed, Trace::default()).run();
            swept += 1;
            events += outcome.steps;
            exercised.add(&outcome.stats);
            if outcome.violation.is_some() {
                failed += 1;
                report(seed, scenario, &outcome);
            }
            if swept % 100 == 0 {
                eprint!("\r{}: {swept} seeds, {failed} failed", scenario.name);
                let _ = std::io::stderr().flush();
            }
        }
        eprintln!();
    }
    println!("exercised: {exercised}");
    let rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
    println!("swept {swept} seeds: {failed} failed, {rate:.0} events/s");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Hunts the catalog on two threads (each hunt is deterministic; only wall times vary) and
/// prints one row per bug, then the median seeds until caught. Exit 1 if a bug escaped that is
/// not a known escape.
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
        "{:<4} {:<40} {:<7} {:<34} {:>6} {:>8} {:>15}",
        "id", "bug", "caught", "invariant", "seeds", "time", "shrunk"
    );
    let mut caught_seeds = Vec::new();
    let mut unexpected_escapes = 0;
    for (_, result) in &results {
        print_row(result);
        let bug = result.bug.expect("catalog hunts switch a bug on");
        match &result.caught {
            Some(_) => caught_seeds.push(result.seeds),
            None if bug.info().scenario.is_some() && !Bug::KNOWN_ESCAPES.contains(&bug) => {
                unexpected_escapes += 1
            }
            None => {}
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
    Ok(if unexpected_escapes == 0 {
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
                        shrunk.steps, shrunk.faults, shrunk.faults_before
                    )
                },
            ),
        ),
        None if bug.info().scenario.is_none() => {
            ("unit", "(no world run reaches it)", "-".to_owned())
        }
        None => ("NO", "-", "-".to_owned()),
    };
    println!(
        "{:<4} {:<40} {:<7} {:<34} {:>6} {:>7.2}s {:>15}",
        bug.info().id,
        bug.name(),
        caught,
        invariant,
        result.seeds,
        result.wall.as_secs_f64(),
        shrunk
    );
}
