//! `informer-sim bench`: fixed standard workloads and the figures they give on this machine.
//!
//! - the whole pipeline's writes per second of wall time, with every check on and with none
//!   (the simulation alone): a write is committed in etcd, dispatched by the watch cache,
//!   streamed to an informer, queued, popped into its indexer and handed to its handler;
//! - the FIFO and indexer stage alone: add or update, then pop through processDeltas, over
//!   10,000 keys (client-go's own stage does 0.7 to 1 million per second);
//! - standard schedules per second (the `informer` library scenario, one seed each);
//! - the simulated-to-wall time ratio, and events per simulated second beside it;
//! - a scaling table: the same writes over 1,000, 10,000 and 100,000 keys, wall time and
//!   peak RSS each;
//! - memory over a long run: peak RSS after ten times the writes, at a fixed key count;
//! - with the `kube` feature, one watch stream through kube-rs's watcher and store and through
//!   this project's reflector, FIFO and indexer.
//!
//! A driver (floor 4): it reads the wall clock and the process's memory, never inside a run.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bug::Bugs;
use crate::client::{DeltaFifo, Indexer, process_deltas};
use crate::object::Object;
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::world::{RunOutcome, World};

/// The standard pipeline workload: one apiserver with its watch cache and one atomic RealFIFO
/// informer whose consumer keeps up, ten writers each writing every simulated millisecond, no
/// faults. Its key count and duration are set per figure.
const PIPELINE: &str = r#"
[workload]
writers = 10
keys = 1000
write_interval_ms_min = 1
write_interval_ms_max = 1
think_ms_max = 0
delete_probability = 0.05
[clients]
fifo = "real-atomic"
handlers = 1
handler_ms_max = 0
process_ms_max = 0
[faults]
swarm = false
disconnect_probability = 0.0
slow_consumer_probability = 0.0
silent_connection_probability = 0.0
delay_spike_probability = 0.0
cacher_reinit_probability = 0.0
apiserver_restart_probability = 0.0
client_restart_probability = 0.0
cache_stall_probability = 0.0
"#;

/// Simulated writes per simulated millisecond in [`PIPELINE`].
const WRITES_PER_MS: u64 = 10;

/// How much work the figures take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchSize {
    /// Writes of the pipeline figures and of each scaling row.
    pub writes: u64,
    /// Events of the FIFO and indexer stage.
    pub fifo_events: u64,
    /// Seeds of the standard schedules figure.
    pub schedules: u64,
    /// Key counts of the scaling table.
    pub scaling_keys: &'static [u32],
    /// How many times the writes the long memory run makes.
    pub memory_factor: u64,
}

impl BenchSize {
    /// The figures the README reports (a few minutes on a 2-core machine).
    pub const FULL: BenchSize = BenchSize {
        writes: 1_000_000,
        fifo_events: 10_000_000,
        schedules: 200,
        scaling_keys: &[1_000, 10_000, 100_000],
        memory_factor: 10,
    };

    /// A quick pass over every figure (seconds), for tests and a first look.
    pub const QUICK: BenchSize = BenchSize {
        writes: 20_000,
        fifo_events: 200_000,
        schedules: 5,
        scaling_keys: &[1_000, 10_000],
        memory_factor: 3,
    };
}

/// One pipeline run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineFigures {
    /// Writes committed.
    pub writes: u64,
    /// Steps of the run.
    pub events: u64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// Committed writes per wall second.
    pub writes_per_second: f64,
    /// Simulated seconds per wall second.
    pub simulated_per_wall: f64,
    /// Steps per simulated second.
    pub events_per_simulated_second: f64,
    /// The process's peak resident memory during the run, in bytes, where the system says.
    pub peak_rss_bytes: Option<u64>,
}

/// One row of the scaling table.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingRow {
    /// Keys written over.
    pub keys: u32,
    /// The run, every check on.
    pub run: PipelineFigures,
}

/// Every figure of one bench.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The pipeline with every check on.
    pub pipeline_checked: PipelineFigures,
    /// The pipeline with no check (the simulation alone).
    pub pipeline_unchecked: PipelineFigures,
    /// FIFO and indexer stage events per wall second.
    pub fifo_indexer_events_per_second: f64,
    /// Standard `informer` schedules per wall second.
    pub schedules_per_second: f64,
    /// The same writes over more and more keys.
    pub scaling: Vec<ScalingRow>,
    /// The pipeline at 1,000 keys with `memory_factor` times the writes.
    pub long_run: PipelineFigures,
    /// The long run's peak RSS over the short one's (the scaling table's 1,000-key row).
    pub long_run_memory_ratio: Option<f64>,
    /// With the `kube` feature: one watch stream's events per wall second through kube-rs's
    /// watcher and reflector store, and through this project's reflector, DeltaFIFO and
    /// indexer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_rs_against_reflector: Option<(f64, f64)>,
}

/// Runs every figure at `size`, calling `progress` with each figure's name as it starts.
pub fn run(size: BenchSize, mut progress: impl FnMut(&str)) -> BenchReport {
    progress("pipeline, every check on");
    let pipeline_checked = pipeline(size.writes, 1_000, true);
    progress("pipeline, no check");
    let pipeline_unchecked = pipeline(size.writes, 1_000, false);
    progress("FIFO and indexer stage");
    let fifo_indexer_events_per_second = fifo_indexer(size.fifo_events);
    progress("standard schedules");
    let schedules_per_second = schedules(size.schedules);
    let mut scaling = Vec::new();
    for &keys in size.scaling_keys {
        progress(&format!("scaling, {keys} keys"));
        scaling.push(ScalingRow {
            keys,
            run: pipeline(size.writes, keys, true),
        });
    }
    progress("long run");
    let long_run = pipeline(size.writes * size.memory_factor, 1_000, true);
    let short = scaling
        .iter()
        .find(|row| row.keys == 1_000)
        .and_then(|row| row.run.peak_rss_bytes);
    let long_run_memory_ratio = short
        .zip(long_run.peak_rss_bytes)
        .map(|(short, long)| long as f64 / short.max(1) as f64);
    #[cfg(feature = "kube")]
    let kube_rs_against_reflector = {
        progress("kube-rs watcher and store against the reflector, FIFO and indexer");
        Some(kube_rs_store_against_reflector(size.fifo_events / 10))
    };
    #[cfg(not(feature = "kube"))]
    let kube_rs_against_reflector = None;
    BenchReport {
        pipeline_checked,
        pipeline_unchecked,
        fifo_indexer_events_per_second,
        schedules_per_second,
        scaling,
        long_run,
        long_run_memory_ratio,
        kube_rs_against_reflector,
    }
}

/// The standard pipeline over `keys` keys, long enough for about `writes` writes.
pub fn pipeline(writes: u64, keys: u32, checked: bool) -> PipelineFigures {
    let mut scenario = Scenario::from_toml("bench-pipeline", PIPELINE).expect("a valid workload");
    scenario.workload.keys = keys;
    scenario.duration_ms = (writes / WRITES_PER_MS).max(1);
    reset_peak_rss();
    let world = World::new(scenario.clone(), 1, Trace::default());
    let world = if checked {
        world
    } else {
        world.without_checks()
    };
    let started = Instant::now();
    let outcome = world.run();
    figures(&scenario, &outcome, started.elapsed())
}

fn figures(scenario: &Scenario, outcome: &RunOutcome, wall: Duration) -> PipelineFigures {
    assert!(
        outcome.violation.is_none(),
        "the bench workload breaks no invariant: {:?}",
        outcome.violation
    );
    let wall_seconds = wall.as_secs_f64().max(1e-9);
    let simulated_seconds = scenario.duration_ms as f64 / 1000.0;
    PipelineFigures {
        writes: outcome.stats.commits,
        events: outcome.steps,
        wall_seconds,
        writes_per_second: outcome.stats.commits as f64 / wall_seconds,
        simulated_per_wall: simulated_seconds / wall_seconds,
        events_per_simulated_second: outcome.steps as f64 / simulated_seconds.max(1e-9),
        peak_rss_bytes: peak_rss(),
    }
}

/// The FIFO and indexer stage: `events` adds and updates over 10,000 keys, each popped through
/// processDeltas into the indexer. Events per wall second.
pub fn fifo_indexer(events: u64) -> f64 {
    const KEYS: u64 = 10_000;
    let objects: Vec<Object> = (0..KEYS)
        .map(|index| Object::bare(&format!("ns-{}/obj-{index}", index % 10), 1))
        .collect();
    let mut fifo = DeltaFifo::new(true, Bugs::NONE);
    let mut indexer = Indexer::default();
    let started = Instant::now();
    for event in 0..events {
        let object = objects[(event % KEYS) as usize].with_resource_version(event + 1);
        if event < KEYS {
            fifo.add(object);
        } else {
            fifo.update(object);
        }
        let popped = fifo.pop().expect("one item queued");
        std::hint::black_box(process_deltas(&mut indexer, &popped.deltas, false));
    }
    assert_eq!(indexer.len() as u64, KEYS.min(events));
    events as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// The same watch stream through both clients: `events` ADDED and MODIFIED events over 10,000
/// keys after an empty list, into kube-rs's watcher and reflector store (over the HTTP face:
/// JSON lines decoded by kube-rs), and into this project's reflector, DeltaFIFO and indexer
/// (popped through processDeltas). Events per wall second, kube-rs's then the model's.
#[cfg(feature = "kube")]
pub fn kube_rs_store_against_reflector(events: u64) -> (f64, f64) {
    use crate::api::{ListResponse, ServerMessage, WatchEvent};
    use crate::client::reflector::{Reflector, ReflectorConfig, ReflectorOutput, StoreOp};
    use crate::client::{FifoKind, InformerConfig, SharedIndexInformer};
    use crate::kube_rs::{KubeConfig, KubeProcess, KubeStep, StoreEvent};
    use crate::sim::{RngStream, SimTime};

    const KEYS: u64 = 10_000;
    let stream: Vec<WatchEvent> = (0..events)
        .map(|event| {
            let object = Object::bare(&format!("ns-0/obj-{}", event % KEYS), event + 2);
            if event < KEYS {
                WatchEvent::Added(object)
            } else {
                WatchEvent::Modified(object)
            }
        })
        .collect();
    let list = |id| ServerMessage::List {
        id,
        result: Ok(ListResponse {
            items: Vec::new(),
            resource_version: 1,
            continue_token: None,
        }),
    };
    let at = SimTime(1);
    let started = Instant::now();
    let mut kube = KubeProcess::new(KubeConfig::default(), SimTime::ZERO, RngStream::new(1, "b"));
    while kube.take_requests().is_empty() {
        // Undrained steps would count as output and stop the runtime at once.
        kube.run_until(at);
        kube.take_steps();
    }
    kube.deliver(list(1));
    while kube.take_requests().is_empty() {
        // Undrained steps would count as output and stop the runtime at once.
        kube.run_until(at);
        kube.take_steps();
    }
    for event in &stream {
        kube.deliver(ServerMessage::WatchEvent {
            id: 2,
            event: event.clone(),
        });
    }
    let mut applied = 0;
    while applied < events {
        kube.run_until(at);
        applied += kube
            .take_steps()
            .iter()
            .filter(|step| {
                matches!(
                    step,
                    KubeStep::Store {
                        event: StoreEvent::Apply(_),
                        ..
                    }
                )
            })
            .count() as u64;
    }
    let kube_rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
    assert_eq!(kube.store_objects().len() as u64, KEYS.min(events));

    let started = Instant::now();
    let mut reflector = Reflector::new(
        ReflectorConfig::default(),
        RngStream::new(1, "b"),
        Bugs::NONE,
    );
    let mut informer = SharedIndexInformer::new(InformerConfig::new(FifoKind::Delta), Bugs::NONE);
    informer.run(SimTime::ZERO);
    reflector.start(SimTime::ZERO);
    let drain = |reflector: &mut Reflector, informer: &mut SharedIndexInformer| {
        let mut id = None;
        while let Some(output) = reflector.poll_output() {
            match output {
                ReflectorOutput::Send(message) => id = Some(message_id(&message)),
                ReflectorOutput::Store(StoreOp::Add(object)) => informer.add(at, object),
                ReflectorOutput::Store(StoreOp::Update(object)) => informer.update(at, object),
                ReflectorOutput::Store(StoreOp::Replace {
                    items,
                    resource_version,
                }) => informer.replace(at, items, resource_version),
                ReflectorOutput::Store(_) => {}
            }
            while informer.process_next(at).is_some() {}
        }
        id
    };
    let list_id = drain(&mut reflector, &mut informer).expect("a list");
    reflector.handle_message(at, list(list_id));
    let watch_id = drain(&mut reflector, &mut informer).expect("a watch");
    for event in stream {
        reflector.handle_message(
            at,
            ServerMessage::WatchEvent {
                id: watch_id,
                event,
            },
        );
        drain(&mut reflector, &mut informer);
    }
    let model_rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
    assert_eq!(informer.indexer().len() as u64, KEYS.min(events));
    (kube_rate, model_rate)
}

#[cfg(feature = "kube")]
fn message_id(message: &crate::api::ClientMessage) -> crate::api::RequestId {
    match message {
        crate::api::ClientMessage::List { id, .. }
        | crate::api::ClientMessage::Watch { id, .. }
        | crate::api::ClientMessage::StopWatch { id } => *id,
    }
}

/// Standard `informer` schedules (one seed each) per wall second.
pub fn schedules(seeds: u64) -> f64 {
    let scenario = Scenario::load("informer").expect("library scenario");
    let started = Instant::now();
    for seed in 0..seeds {
        std::hint::black_box(World::new(scenario.clone(), seed, Trace::default()).run());
    }
    seeds as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// The process's peak resident set size (Linux `VmHWM`), if the system says.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// Starts a new peak-RSS measurement (Linux: `5` into `clear_refs` resets `VmHWM`); where the
/// system does not allow it, the figure stays the process's whole peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_workload_commits_about_the_writes_asked_for_and_settles() {
        let figures = pipeline(2_000, 100, true);
        assert!(
            figures.writes > 1_500 && figures.writes <= 2_100,
            "{figures:?}"
        );
        assert!(
            figures.events > figures.writes * 3,
            "each write crosses the pipeline"
        );
    }

    #[test]
    fn the_fifo_indexer_stage_applies_every_event() {
        assert!(fifo_indexer(20_000) > 0.0);
    }

    /// Both clients apply the whole stream (each asserts its store holds every key).
    #[cfg(feature = "kube")]
    #[test]
    fn kube_rs_and_the_reflector_apply_the_same_stream() {
        let (kube_rs, model) = kube_rs_store_against_reflector(12_000);
        assert!(kube_rs > 0.0 && model > 0.0);
    }
}
