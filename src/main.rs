//! The `informer-sim` command line.

use std::collections::BTreeSet;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use informer_sim::bench;
use informer_sim::bug::Bug;
use informer_sim::check::Invariant;
use informer_sim::conformance::{CASES, run_all};
use informer_sim::determinism;
use informer_sim::explore::{
    Budget, Flow, HuntResult, Overrides, SeedRange, ShardArg, Sweep, Verdict, hunt, parse_seed,
    replay_line,
};
use informer_sim::progress::Progress;
use informer_sim::replay::ReplayFile;
use informer_sim::report::index::SweepPages;
use informer_sim::report::{Investigation, explain, html, investigate, perfetto, record};
use informer_sim::scenario::{DEFAULT_SCENARIO, FifoKind, LIBRARY, Scenario};
use informer_sim::shrink::{Case, shrink_reporting};
use informer_sim::summary::Summary;
use informer_sim::sweep_dir::{self, Manifest, SweepDir};
use informer_sim::testkit::fifo_script::run_script;
use informer_sim::trace::{Trace, TraceSink};
use informer_sim::world::{RunOutcome, World};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where failing runs leave their replay files.
const REPLAY_DIR: &str = "replays";
/// How many hazard seeds per scenario a sweep shows.
const HAZARDS_SHOWN: u64 = 1;
/// The seeds the main job sweeps per library scenario, unless the scenario says fewer
/// (`main_job_seeds`, for the scenarios at cluster size).
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
        /// Writes the trace to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// How the trace file is written.
        #[arg(long, value_enum, default_value_t)]
        format: TraceFormat,
        /// Runs the seed twice and once from its replay file, and names the first step where
        /// two runs part.
        #[arg(long, conflicts_with = "trace")]
        check_determinism: bool,
        #[command(flatten)]
        overrides: OverrideFlags,
    },
    /// Runs many seeds of one scenario (or of every library scenario).
    Sweep {
        /// A library scenario name or a path to a .toml file (default: every library scenario).
        #[arg(long)]
        scenario: Option<String>,
        /// The seeds, as A..B (B excluded).
        #[arg(long, value_parser = |text: &str| text.parse::<SeedRange>(), default_value = "0..1000")]
        seeds: SeedRange,
        /// Runs only the seeds whose index is I modulo N, given as I/N; `auto` reads I from
        /// JOB_COMPLETION_INDEX and N from JOB_COMPLETIONS (a Kubernetes Indexed Job).
        #[arg(long, value_parser = |text: &str| text.parse::<ShardArg>())]
        shard: Option<ShardArg>,
        /// Stops starting new seeds after this many seconds of wall time.
        #[arg(long)]
        time_limit: Option<u64>,
        /// Saves each seed's verdict and each failing run's replay file into this new folder,
        /// so that a killed sweep can be resumed and shards merged.
        #[arg(long, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Continues the sweep saved in this folder (by --out): runs only its seeds without a
        /// verdict. Its scenarios, seeds, shard and flags come from the folder.
        #[arg(long, conflicts_with_all = ["scenario", "seeds", "shard", "fifo", "bug"])]
        resume: Option<PathBuf>,
        #[command(flatten)]
        overrides: OverrideFlags,
        /// Writes an HTML page per failing seed and an index page into this directory.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Merges the folders of a sharded sweep (sweep --shard I/N --out DIR, one per shard) into
    /// one summary; fails on a missing, duplicated or unfinished shard.
    Merge {
        /// The shards' folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Also writes the merged summary as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Hunts every planted bug of the catalog (or one) and prints whether the invariants catch it.
    Bugs {
        /// Only this bug.
        #[arg(long, value_parser = |text: &str| text.parse::<Bug>())]
        bug: Option<Bug>,
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
        #[command(flatten)]
        overrides: OverrideFlags,
        /// At most this many re-runs.
        #[arg(long, default_value = "300")]
        runs: u64,
    },
    /// Re-runs a saved run and checks that its trace hash matches.
    Replay {
        /// A replay file written by `run` or `sweep`.
        file: PathBuf,
        /// Writes the trace to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// How the trace file is written.
        #[arg(long, value_enum, default_value_t)]
        format: TraceFormat,
    },
    /// Shrinks a failing run and prints it as a timeline of the violating object's path,
    /// with the violation marked and its cause in plain words.
    Explain {
        #[command(flatten)]
        case: CaseFlags,
    },
    /// Shrinks a failing run and writes one self-contained HTML page: a sequence diagram,
    /// each object's history side by side, the invariants checked.
    Report {
        #[command(flatten)]
        case: CaseFlags,
        /// The HTML file to write.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Lists the embedded scenario library and the upstream conformance cases.
    Scenarios,
    /// Runs kube-apiserver's watch conformance cases, with and without the watch cache.
    Conformance,
    /// Prints the invariant catalog: name, promise, when it holds, upstream source.
    Invariants,
    /// Measures the simulator on fixed standard workloads (see the README's Performance).
    Bench {
        /// Prints the figures as one JSON object.
        #[arg(long)]
        json: bool,
        /// A quick pass over every figure (seconds instead of minutes).
        #[arg(long)]
        quick: bool,
    },
    /// Runs a JSON script of FIFO operations and prints one JSON line per step.
    FifoScript {
        /// The script file, or - for standard input.
        file: String,
    },
}

/// A failing case to show: a replay file, or a seed of a scenario.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "seed"])))]
struct CaseFlags {
    /// A replay file written by `run`, `sweep` or `shrink`.
    file: Option<PathBuf>,
    /// The failing seed (decimal or 0x-hex), instead of a replay file.
    #[arg(long, value_parser = parse_seed, conflicts_with = "file")]
    seed: Option<u64>,
    /// A library scenario name or a path to a .toml file (with --seed).
    #[arg(long, default_value = DEFAULT_SCENARIO, conflicts_with = "file")]
    scenario: String,
    #[command(flatten)]
    overrides: OverrideFlags,
    /// Shrinks with at most this many re-runs (0: show the run as it is).
    #[arg(long, default_value = "300")]
    runs: u64,
}

/// The flags that change a scenario's fields.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
struct OverrideFlags {
    /// Overrides the clients' FIFO: delta, real or real-atomic.
    #[arg(long, value_parser = |text: &str| text.parse::<FifoKind>())]
    fifo: Option<FifoKind>,
    /// Switches on one planted bug of the catalog (see `informer-sim bugs`).
    #[arg(long, value_parser = |text: &str| text.parse::<Bug>())]
    bug: Option<Bug>,
}

impl From<OverrideFlags> for Overrides {
    fn from(flags: OverrideFlags) -> Overrides {
        Overrides {
            fifo: flags.fifo,
            bug: flags.bug,
        }
    }
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
            check_determinism: true,
            seed,
            scenario,
            overrides,
            ..
        }) => check_determinism(seed, &scenario, overrides.into()),
        Some(Command::Run {
            seed,
            scenario,
            trace,
            format: TraceFormat::Perfetto,
            overrides,
            ..
        }) => run_perfetto(seed, &scenario, overrides.into(), trace.as_deref()),
        Some(Command::Run {
            seed,
            scenario,
            trace,
            format,
            overrides,
            ..
        }) => run(
            seed,
            &scenario,
            overrides.into(),
            open_trace(trace.as_deref(), format),
        ),
        Some(Command::Sweep {
            resume: Some(dir),
            time_limit,
            ..
        }) => resume_command(&dir, deadline(time_limit)),
        Some(Command::Sweep {
            scenario,
            seeds,
            shard,
            time_limit,
            out,
            overrides,
            report,
            ..
        }) => shard.map(ShardArg::resolve).transpose().and_then(|shard| {
            let sweep = Sweep {
                seeds,
                shard,
                deadline: deadline(time_limit),
            };
            sweep_command(
                scenario.as_deref(),
                overrides.into(),
                sweep,
                out.as_deref(),
                report.as_deref(),
            )
        }),
        Some(Command::Merge { dirs, json }) => merge_command(&dirs, json.as_deref()),
        Some(Command::Bugs { bug, first_seed }) => bugs_table(bug, first_seed),
        Some(Command::Shrink {
            seed,
            scenario,
            overrides,
            runs,
        }) => shrink_command(seed, &scenario, overrides.into(), runs),
        Some(Command::Replay {
            file,
            trace,
            format,
        }) => replay(&file, open_trace(trace.as_deref(), format)),
        Some(Command::Explain { case }) => investigate_command(&case).map(|investigation| {
            print!(
                "{}",
                explain::render(&investigation.recorded, &investigation.header())
            );
            ExitCode::SUCCESS
        }),
        Some(Command::Report { case, output }) => investigate_command(&case).and_then(|found| {
            std::fs::write(&output, html::render(&found))
                .map_err(|error| format!("cannot write report {}: {error}", output.display()))?;
            let (step, violation) = found.violation();
            println!("{}", found.header());
            println!("violation at step {step}: {violation}");
            println!("report: {}", output.display());
            Ok(ExitCode::SUCCESS)
        }),
        Some(Command::Scenarios) => {
            for entry in LIBRARY {
                let clients = Scenario::from_toml(entry.name, entry.text)
                    .ok()
                    .filter(|scenario| scenario.apiservers.count > 0 && scenario.clients.count > 0)
                    .map_or("-".to_owned(), |scenario| {
                        format!("client-go {}", scenario.clients.client_go)
                    });
                println!("{:<36} {clients:<15} {}", entry.name, entry.summary());
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
            for invariant in Invariant::ALL {
                let info = invariant.info();
                println!(
                    "{}\n  class:   {}\n  promise: {}\n  holds:   {}\n  source:  {}",
                    info.name,
                    info.kind.as_str(),
                    info.promise,
                    info.holds_when,
                    info.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::FifoScript { file }) => fifo_script(&file),
        Some(Command::Bench { json, quick }) => Ok(bench_command(json, quick)),
        None => main_job(),
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

/// Loads a scenario by library name or path, with the command line's overrides applied.
fn load(name: &str, overrides: Overrides) -> Result<Scenario, String> {
    let scenario = Scenario::load(name).map_err(|error| error.to_string())?;
    Ok(overrides.apply(scenario))
}

/// How `--trace` writes a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum TraceFormat {
    /// One JSON object per step (the trace contract).
    #[default]
    Jsonl,
    /// One readable line per step, as the golden traces read.
    Timeline,
    /// Chrome trace-event JSON for Perfetto and chrome://tracing (`run` only).
    Perfetto,
}

fn open_trace(trace_path: Option<&Path>, format: TraceFormat) -> Result<Trace, String> {
    let Some(path) = trace_path else {
        return Ok(Trace::default());
    };
    let file = std::fs::File::create(path)
        .map_err(|error| format!("cannot write trace {}: {error}", path.display()))?;
    let out = Box::new(BufWriter::new(file));
    Ok(Trace::with_sink(match format {
        TraceFormat::Jsonl => TraceSink::JsonLines(out),
        TraceFormat::Timeline => TraceSink::Timeline(out),
        TraceFormat::Perfetto => {
            return Err("--format perfetto is written by run only (jsonl or timeline here)".into());
        }
    }))
}

/// `run --format perfetto`: the run, recorded, as Chrome trace-event JSON.
fn run_perfetto(
    seed: u64,
    scenario_name: &str,
    overrides: Overrides,
    path: Option<&Path>,
) -> Result<ExitCode, String> {
    let path = path.ok_or("--format perfetto needs --trace FILE")?;
    let scenario = load(scenario_name, overrides)?;
    let recorded = record(&Case::of_seed(scenario.clone(), seed));
    let cannot = |error: std::io::Error| format!("cannot write trace {}: {error}", path.display());
    let file = std::fs::File::create(path).map_err(cannot)?;
    perfetto::write(&recorded, &mut BufWriter::new(file)).map_err(cannot)?;
    Ok(report(
        seed,
        &scenario,
        overrides,
        &recorded.outcome,
        save_replay,
    ))
}

/// The failing case `explain` and `report` show, shrunk and recorded.
fn investigate_command(flags: &CaseFlags) -> Result<Investigation, String> {
    let case = match (&flags.file, flags.seed) {
        (Some(file), _) => ReplayFile::load(file)
            .map_err(|error| error.to_string())?
            .case(),
        (None, Some(seed)) => Case::of_seed(load(&flags.scenario, flags.overrides.into())?, seed),
        (None, None) => return Err("give a replay file or --seed S".to_owned()),
    };
    let mut progress = Progress::new("shrink", flags.runs, "runs");
    let mut done = 0;
    let found = investigate(case, flags.runs, &mut |runs| {
        progress.advance(runs - done, "");
        done = runs;
    });
    progress.finish();
    found.map_err(|error| error.to_string())
}

fn run(
    seed: u64,
    scenario_name: &str,
    overrides: Overrides,
    trace: Result<Trace, String>,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, overrides)?;
    let outcome = World::new(scenario.clone(), seed, trace?).run();
    print_trace_error(&outcome);
    Ok(report(seed, &scenario, overrides, &outcome, save_replay))
}

/// `run --check-determinism`: the verdict of the first run, or where a run parts from it.
fn check_determinism(
    seed: u64,
    scenario_name: &str,
    overrides: Overrides,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, overrides)?;
    let checked = determinism::check(&scenario, overrides, seed);
    if let Some(parting) = &checked.parting {
        println!("{parting}");
        println!("FAIL seed={seed} determinism step={}", parting.step);
        return Ok(ExitCode::from(1));
    }
    println!(
        "determinism: 3 runs (twice from the seed, once from its replay file) agree at every \
         one of {} steps",
        checked.outcome.steps
    );
    Ok(report(
        seed,
        &scenario,
        overrides,
        &checked.outcome,
        save_replay,
    ))
}

/// Saves a failing run's replay file into `replays/`.
fn save_replay(file: &ReplayFile) -> Result<PathBuf, String> {
    file.save(Path::new(REPLAY_DIR), "")
        .map_err(|error| error.to_string())
}

fn deadline(time_limit: Option<u64>) -> Option<Instant> {
    time_limit.map(|secs| Instant::now() + Duration::from_secs(secs))
}

/// Says so when the trace file could not be written (the run's verdict still stands).
fn print_trace_error(outcome: &RunOutcome) {
    if let Some(error) = &outcome.trace_error {
        eprintln!("trace not fully written: {error}");
    }
}

/// Prints the expected upstream hazards a run hit, one line each.
fn print_hazards(seed: u64, scenario: &Scenario, overrides: Overrides, outcome: &RunOutcome) {
    for (step, hazard) in &outcome.hazards {
        let replay = replay_line(&scenario.name, overrides, seed);
        println!("hazard: {hazard} (expected upstream hazard, step {step}; replay: {replay})");
    }
}

/// Prints a run's verdict; a failure also gets a replay file, which `save` writes. Returns the
/// exit code.
fn report(
    seed: u64,
    scenario: &Scenario,
    overrides: Overrides,
    outcome: &RunOutcome,
    save: impl FnOnce(&ReplayFile) -> Result<PathBuf, String>,
) -> ExitCode {
    print_hazards(seed, scenario, overrides, outcome);
    let Some((step, violation)) = &outcome.violation else {
        println!(
            "ok seed={seed} events={} trace={}",
            outcome.steps, outcome.trace_hash
        );
        return ExitCode::SUCCESS;
    };
    println!("violation: {violation}");
    let file = ReplayFile::of(scenario, overrides, seed, outcome);
    match save(&file) {
        Ok(path) => println!("replay file: informer-sim replay {}", path.display()),
        Err(error) => println!("replay file not written: {error}"),
    }
    println!("replay: {}", replay_line(&scenario.name, overrides, seed));
    println!(
        "FAIL seed={seed} invariant={} step={step}",
        violation.invariant
    );
    ExitCode::from(1)
}

fn shrink_command(
    seed: u64,
    scenario_name: &str,
    overrides: Overrides,
    runs: u64,
) -> Result<ExitCode, String> {
    let scenario = load(scenario_name, overrides)?;
    let case = Case::of_seed(scenario, seed);
    let outcome = case.run();
    let Some((_, violation)) = outcome.violation else {
        return Err(format!(
            "seed {seed} of {}{overrides} breaks no invariant: only a failing run can be shrunk",
            case.scenario.name
        ));
    };
    println!("violation: {violation}");
    println!("before: {} steps, {}", outcome.steps, case.describe());
    let mut progress = Progress::new("shrink", runs, "runs");
    let mut done = 0;
    let shrunk = shrink_reporting(case, violation.invariant, runs, &mut |spent| {
        progress.advance(spent - done, "");
        done = spent;
    });
    progress.finish();
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
        println!("fault at {} ms: {}", timed.at_ms, timed.fault);
    }
    let file = ReplayFile::of(
        &shrunk.case.scenario,
        overrides,
        shrunk.case.seed,
        &shrunk.outcome,
    );
    let path = file
        .save(Path::new(REPLAY_DIR), "-shrunk")
        .map_err(|error| error.to_string())?;
    println!("replay: informer-sim replay {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn replay(file: &Path, trace: Result<Trace, String>) -> Result<ExitCode, String> {
    let saved = ReplayFile::load(file).map_err(|error| error.to_string())?;
    let outcome = saved.run(trace?);
    print_trace_error(&outcome);
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

/// `sweep`: one scenario or the whole library over one seed range, saved into `out` and written
/// up as HTML pages into `report_dir` when given.
fn sweep_command(
    scenario_name: Option<&str>,
    overrides: Overrides,
    sweep: Sweep,
    out: Option<&Path>,
    report_dir: Option<&Path>,
) -> Result<ExitCode, String> {
    let scenarios: Vec<Scenario> = match scenario_name {
        Some(name) => vec![load(name, overrides)?],
        None => library(overrides)?,
    };
    let dir = out
        .map(|dir| {
            let manifest = Manifest::new(scenarios.clone(), sweep.seeds, sweep.shard, overrides);
            SweepDir::create(dir, manifest).map_err(|error| error.to_string())
        })
        .transpose()?;
    let seeds = sweep.seeds;
    let shard = sweep.shard;
    let deadline = sweep.deadline;
    run_sweep(
        &scenarios,
        overrides,
        |_| Sweep {
            seeds,
            shard,
            deadline,
        },
        dir.as_ref(),
        report_dir,
    )
}

/// The main job: every library scenario over its own number of seeds.
fn main_job() -> Result<ExitCode, String> {
    let scenarios = library(Overrides::default())?;
    run_sweep(
        &scenarios,
        Overrides::default(),
        |scenario| Sweep::over(0..scenario.main_job_seeds.unwrap_or(MAIN_JOB_SEEDS)),
        None,
        None,
    )
}

fn library(overrides: Overrides) -> Result<Vec<Scenario>, String> {
    LIBRARY
        .iter()
        .map(|entry| load(entry.name, overrides))
        .collect()
}

/// `sweep --resume DIR`: the folder's sweep, without the seeds it has verdicts for.
fn resume_command(dir: &Path, deadline: Option<Instant>) -> Result<ExitCode, String> {
    let dir = SweepDir::open(dir).map_err(|error| error.to_string())?;
    let manifest = dir.manifest().clone();
    run_sweep(
        &manifest.scenarios,
        manifest.overrides,
        |_| manifest.sweep(deadline),
        Some(&dir),
        None,
    )
}

/// Sweeps each scenario over the seeds `sweep_of` gives it, saving every verdict into `dir` and
/// a page per failure into `report_dir` when given, and prints the summary (of every verdict in
/// `dir`, when there is one).
fn run_sweep(
    scenarios: &[Scenario],
    overrides: Overrides,
    sweep_of: impl Fn(&Scenario) -> Sweep,
    dir: Option<&SweepDir>,
    report_dir: Option<&Path>,
) -> Result<ExitCode, String> {
    let mut pages = report_dir
        .map(SweepPages::new)
        .transpose()
        .map_err(|error| format!("cannot write the sweep report: {error}"))?;
    let mut page_error = None;
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut saved = Ok(());
    for (index, scenario) in scenarios.iter().enumerate() {
        let done: BTreeSet<u64> = match dir {
            Some(dir) => dir
                .verdicts(index)
                .map_err(|e| e.to_string())?
                .into_keys()
                .collect(),
            None => BTreeSet::new(),
        };
        let (mut failed, mut hazards_shown) = (0u64, 0u64);
        let sweep = sweep_of(scenario);
        let todo = sweep.seeds().filter(|seed| !done.contains(seed)).count();
        let mut progress = Progress::new(&scenario.name, todo as u64, "seeds");
        let row = sweep.run_except(scenario, &done, |seed, outcome| {
            let mut saved_replay = None;
            if let Some(dir) = dir {
                let failed = outcome.violation.is_some();
                let replay = failed.then(|| ReplayFile::of(scenario, overrides, seed, outcome));
                match dir.record(index, &Verdict::of(seed, outcome), replay.as_ref()) {
                    Ok(path) => saved_replay = path,
                    Err(error) => {
                        saved = Err(error.to_string());
                        return Flow::Stop;
                    }
                }
            }
            if outcome.violation.is_some() {
                failed += 1;
                report(
                    seed,
                    scenario,
                    overrides,
                    outcome,
                    |file| match saved_replay {
                        Some(path) => Ok(path),
                        None => save_replay(file),
                    },
                );
                if let Some(pages) = &mut pages {
                    let replay = replay_line(&scenario.name, overrides, seed);
                    if let Err(error) = pages.failure(scenario, seed, outcome, replay) {
                        page_error.get_or_insert(error);
                    }
                }
            } else if !outcome.hazards.is_empty() && hazards_shown < HAZARDS_SHOWN {
                hazards_shown += 1;
                print_hazards(seed, scenario, overrides, outcome);
            }
            progress.advance(1, &format!("{failed} failed"));
            Flow::Continue
        });
        progress.finish();
        saved.clone()?;
        summary.rows.push(row);
    }
    let events_now = summary.events();
    let rate = events_now as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if let Some(dir) = dir {
        summary = stored_summary(dir, &summary)?;
    }
    print!("{}", summary.render(Some(rate)));
    if let Some(pages) = pages {
        let written = match page_error {
            Some(error) => Err(error),
            None => pages.finish(scenarios, &summary.rows, &summary.exercised()),
        };
        match written {
            Ok(index) => println!("report: {}", index.display()),
            Err(error) => println!("sweep report not written: {error}"),
        }
    }
    Ok(exit_code(summary.passed()))
}

/// The summary of every verdict in `dir` (each row's wall time from `ran`, this process's
/// rows, where it ran the whole row), saved as `summary.json` once no seed is missing.
fn stored_summary(dir: &SweepDir, ran: &Summary) -> Result<Summary, String> {
    let (mut summary, missing) = dir.summary().map_err(|error| error.to_string())?;
    for (row, ran) in summary.rows.iter_mut().zip(&ran.rows) {
        if ran.seeds == row.seeds {
            row.wall = ran.wall;
        }
    }
    if missing == 0 {
        dir.save_summary(&summary)
            .map_err(|error| error.to_string())?;
    } else {
        println!(
            "unfinished: {missing} seeds have no verdict yet; continue with: informer-sim sweep --resume {}",
            dir.dir().display()
        );
    }
    Ok(summary)
}

/// `merge DIR...`: the shards' verdicts as one summary.
fn merge_command(dirs: &[PathBuf], json: Option<&Path>) -> Result<ExitCode, String> {
    let summary = sweep_dir::merge(dirs).map_err(|error| error.to_string())?;
    print!("{}", summary.render(None));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&summary).expect("summaries serialize");
        informer_sim::atomic_file::write(path, text.as_bytes())
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    Ok(exit_code(summary.passed()))
}

fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn bugs_table(only: Option<Bug>, first_seed: u64) -> Result<ExitCode, String> {
    let bugs: Vec<Bug> = match only {
        Some(bug) => vec![bug],
        None => Bug::ALL.to_vec(),
    };
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let progress = std::sync::Mutex::new(Progress::new("bugs", bugs.len() as u64, "bugs"));
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
                    progress
                        .lock()
                        .expect("no hunt panics")
                        .advance(1, bug.name());
                    results
                        .lock()
                        .expect("no hunt panics")
                        .push((index, result));
                }
            });
        }
    });
    progress.into_inner().expect("no hunt panics").finish();
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
            caught.invariant.name(),
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

fn bench_command(json: bool, quick: bool) -> ExitCode {
    let size = if quick {
        bench::BenchSize::QUICK
    } else {
        bench::BenchSize::FULL
    };
    let report = bench::run(size, |figure| eprintln!("bench: {figure}"));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("figures serialize")
        );
        return ExitCode::SUCCESS;
    }
    let rss = |bytes: Option<u64>| bytes.map_or("-".to_owned(), |b| format!("{} MB", b >> 20));
    let row = |name: &str, figures: &bench::PipelineFigures| {
        println!(
            "{name:<34} {:>10} writes {:>8.2} s {:>10.0} writes/s {:>9.1}x sim {:>10.0} ev/sim-s {:>9}",
            figures.writes,
            figures.wall_seconds,
            figures.writes_per_second,
            figures.simulated_per_wall,
            figures.events_per_simulated_second,
            rss(figures.peak_rss_bytes)
        );
    };
    row("pipeline, every check on", &report.pipeline_checked);
    row("pipeline, no check", &report.pipeline_unchecked);
    for scaling in &report.scaling {
        row(&format!("scaling, {} keys", scaling.keys), &scaling.run);
    }
    row("long run, 1000 keys", &report.long_run);
    println!(
        "FIFO + indexer stage: {:.0} events/s; standard schedules: {:.1}/s; long run peak RSS {}",
        report.fifo_indexer_events_per_second,
        report.schedules_per_second,
        report
            .long_run_memory_ratio
            .map_or("-".to_owned(), |ratio| format!(
                "{ratio:.2}x the short run's"
            ))
    );
    if let Some((kube_rs, model)) = report.kube_rs_against_reflector {
        println!(
            "one watch stream: kube-rs watcher + store {kube_rs:.0} events/s, reflector + DeltaFIFO + indexer {model:.0} events/s ({:.2}x)",
            kube_rs / model.max(1e-9)
        );
    }
    ExitCode::SUCCESS
}
