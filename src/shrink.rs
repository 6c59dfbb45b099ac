//! Shrinking a failing run to a small one that breaks the same invariant (ANCHORS: proptest's
//! and Hypothesis's greedy reduction, TigerBeetle's VOPR minimising its fault schedule).
//!
//! A counterexample is a [`Case`]: the scenario (whose workload knobs shrinking may lower),
//! the seed, and the explicit fault plan. Shrinking tries smaller cases, biggest cuts first,
//! and keeps the first one that still fails the same invariant, until no cut helps or the run
//! budget is spent. The result is saved whole (a replay file), not as a seed: the smaller
//! workload draws different numbers, so the seed alone no longer names the case.

use crate::check::Invariant;
use crate::scenario::Scenario;
use crate::sim::RngStream;
use crate::trace::Trace;
use crate::world::faults::FaultPlan;
use crate::world::{RunOutcome, World};

/// The shortest run duration shrinking tries.
const DURATION_MS_MIN: u64 = 1_000;

/// A shorter run or a smaller workload draws different numbers, so one seed says little about
/// whether the cut case can still fail: each such cut is tried with this many seeds (the
/// case's own first).
const SEEDS_PER_CUT: u64 = 3;

/// One run: everything needed to repeat it.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The scenario, with whatever workload shrinking left.
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// The faults, explicit.
    pub plan: FaultPlan,
}

/// A shrunk counterexample.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing case found.
    pub case: Case,
    /// Its run.
    pub outcome: RunOutcome,
    /// Faults in the seed's own plan, before shrinking.
    pub faults_before: usize,
    /// Runs spent.
    pub runs: u64,
}

/// A workload knob shrinking may lower: its name, where it lives, its smallest useful value.
struct Knob {
    name: &'static str,
    field: fn(&mut Scenario) -> &mut u32,
    min: u32,
}

fn writers(scenario: &mut Scenario) -> &mut u32 {
    &mut scenario.workload.writers
}

fn keys(scenario: &mut Scenario) -> &mut u32 {
    &mut scenario.workload.keys
}

fn namespaces(scenario: &mut Scenario) -> &mut u32 {
    &mut scenario.workload.namespaces
}

fn handlers(scenario: &mut Scenario) -> &mut u32 {
    &mut scenario.clients.handlers
}

fn late_handlers(scenario: &mut Scenario) -> &mut u32 {
    &mut scenario.clients.late_handlers
}

/// The knobs, in the order they are tried.
const KNOBS: &[Knob] = &[
    Knob {
        name: "writers",
        field: writers,
        min: 1,
    },
    Knob {
        name: "keys",
        field: keys,
        min: 1,
    },
    Knob {
        name: "namespaces",
        field: namespaces,
        min: 1,
    },
    Knob {
        name: "handlers",
        field: handlers,
        min: 1,
    },
    Knob {
        name: "late_handlers",
        field: late_handlers,
        min: 0,
    },
];

impl Case {
    /// The case a seed stands for: the scenario as given and the seed's generated fault plan.
    pub fn of_seed(scenario: Scenario, seed: u64) -> Case {
        let plan = FaultPlan::generate(&scenario, &mut RngStream::new(seed, "fault-plan"));
        Case {
            scenario,
            seed,
            plan,
        }
    }

    /// Runs it.
    pub fn run(&self) -> RunOutcome {
        World::with_plan(
            self.scenario.clone(),
            self.seed,
            self.plan.clone(),
            Trace::default(),
        )
        .run()
    }

    /// Its size, on one line: faults, duration and workload knobs.
    pub fn describe(&self) -> String {
        let mut scenario = self.scenario.clone();
        let knobs: Vec<String> = KNOBS
            .iter()
            .map(|knob| format!("{}={}", knob.name, (knob.field)(&mut scenario)))
            .collect();
        format!(
            "seed {}, {} faults, duration_ms={}, {}",
            self.seed,
            self.plan.faults.len(),
            self.scenario.duration_ms,
            knobs.join(" ")
        )
    }

    /// Smaller cases, biggest cuts first: no faults at all, a shorter run, one fault fewer
    /// (newest first), then each workload knob halved or lowered by one. Shorter runs and
    /// smaller workloads come with [`SEEDS_PER_CUT`] seeds each.
    fn smaller(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        if self.plan.faults.len() > 1 {
            cases.push(self.with_faults(Vec::new()));
        }
        let duration = self.scenario.duration_ms;
        for shorter in [duration / 2, duration * 3 / 4] {
            if shorter >= DURATION_MS_MIN && shorter < duration {
                cases.extend(self.shortened(shorter).reseeded());
            }
        }
        for index in (0..self.plan.faults.len()).rev() {
            let mut faults = self.plan.faults.clone();
            faults.remove(index);
            cases.push(self.with_faults(faults));
        }
        for knob in KNOBS {
            let mut scenario = self.scenario.clone();
            let value = *(knob.field)(&mut scenario);
            let mut tried = Vec::new();
            for lower in [
                knob.min.max(value / 2),
                value.saturating_sub(1).max(knob.min),
            ] {
                if lower < value && !tried.contains(&lower) {
                    tried.push(lower);
                    let mut case = self.clone();
                    *(knob.field)(&mut case.scenario) = lower;
                    cases.extend(case.reseeded());
                }
            }
        }
        cases
    }

    /// This case with its own seed and the next ones.
    fn reseeded(self) -> impl Iterator<Item = Case> {
        (0..SEEDS_PER_CUT).map(move |offset| Case {
            seed: self.seed.wrapping_add(offset),
            ..self.clone()
        })
    }

    fn with_faults(&self, faults: Vec<crate::world::faults::TimedFault>) -> Case {
        Case {
            plan: FaultPlan { faults },
            ..self.clone()
        }
    }

    /// The case cut to `duration_ms`, without the faults that would now strike after it.
    fn shortened(&self, duration_ms: u64) -> Case {
        let mut case = self.with_faults(
            self.plan
                .faults
                .iter()
                .filter(|timed| timed.at_ms < duration_ms)
                .cloned()
                .collect(),
        );
        case.scenario.duration_ms = duration_ms;
        case
    }
}

/// Whether `outcome` breaks `invariant`.
fn breaks(outcome: &RunOutcome, invariant: Invariant) -> bool {
    outcome
        .violation
        .as_ref()
        .is_some_and(|(_, violation)| violation.invariant == invariant)
}

/// Greedy first-improvement shrinking of `case`, which must fail `invariant`, within `runs`
/// re-runs.
pub fn shrink(case: Case, invariant: Invariant, runs: u64) -> Shrunk {
    shrink_reporting(case, invariant, runs, &mut |_| {})
}

/// [`shrink`], telling `on_run` how many re-runs it has spent after each one (for a progress
/// bar).
pub fn shrink_reporting(
    case: Case,
    invariant: Invariant,
    runs: u64,
    on_run: &mut dyn FnMut(u64),
) -> Shrunk {
    shrink_with(case, invariant, runs, on_run, &Case::run)
}

/// [`shrink_reporting`], running each case with `run` (a world with the user's controller
/// plugged in, for [`testing`](crate::testing)).
pub fn shrink_with(
    case: Case,
    invariant: Invariant,
    runs: u64,
    on_run: &mut dyn FnMut(u64),
    run: &dyn Fn(&Case) -> RunOutcome,
) -> Shrunk {
    let faults_before = case.plan.faults.len();
    let mut best = case;
    let mut outcome = run(&best);
    let mut runs_left = runs;
    'shrinking: while runs_left > 0 {
        for candidate in best.smaller() {
            if runs_left == 0 {
                break 'shrinking;
            }
            runs_left -= 1;
            let candidate_outcome = run(&candidate);
            on_run(runs - runs_left);
            if breaks(&candidate_outcome, invariant) {
                best = candidate;
                outcome = candidate_outcome;
                continue 'shrinking;
            }
        }
        break;
    }
    Shrunk {
        case: best,
        outcome,
        faults_before,
        runs: runs - runs_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bug::Bug;

    fn failing_case() -> (Case, Invariant) {
        let mut scenario = Scenario::load("informer").expect("library scenario");
        scenario.bug = Some(Bug::ResyncBehindPendingDelta);
        // The planted bug is DeltaFIFO's.
        scenario.clients.fifo = Some(crate::client::FifoKind::Delta);
        scenario.clients.resync_period_ms = 1_000;
        for seed in 0..20 {
            let case = Case::of_seed(scenario.clone(), seed);
            if let Some((_, violation)) = case.run().violation {
                return (case, violation.invariant);
            }
        }
        panic!("a planted resync bug fails within 20 seeds");
    }

    #[test]
    fn a_shrunk_case_is_no_bigger_and_still_fails_the_same_invariant() {
        let (case, invariant) = failing_case();
        let shrunk = shrink(case.clone(), invariant, 40);
        assert!(breaks(&shrunk.case.run(), invariant));
        assert!(shrunk.case.plan.faults.len() <= case.plan.faults.len());
        assert!(shrunk.case.scenario.duration_ms <= case.scenario.duration_ms);
        assert!(shrunk.case.scenario.workload.writers <= case.scenario.workload.writers);
        assert!(shrunk.runs <= 40);
        assert_ne!(
            shrunk.case, case,
            "informer's workload always has room to shrink"
        );
    }

    #[test]
    fn smaller_cases_are_each_one_cut_smaller() {
        let case = Case::of_seed(Scenario::load("informer").expect("library"), 3);
        for smaller in case.smaller() {
            let shrunk_something = smaller.plan.faults.len() < case.plan.faults.len()
                || smaller.scenario.duration_ms < case.scenario.duration_ms
                || smaller.scenario != case.scenario;
            assert!(shrunk_something, "{}", smaller.describe());
            assert!(smaller.scenario.validate("shrunk").is_ok());
        }
    }
}
