//! Reading a failure at a glance (a driver, floor 4): a failing case is shrunk, run once more
//! with a [`Recording`] watching its typed steps, and shown three ways: a timeline in the
//! golden traces' style ([`explain`]), a Chrome / Perfetto trace ([`perfetto`]), and one
//! self-contained HTML page with a sequence diagram, each object's history side by side and
//! the invariants checked ([`html`]); a sweep's failures get an index page ([`index`]).
//!
//! Nothing here reaches a run: the recording only reads what the world records, so a
//! recorded run has the same trace hash as the run it repeats.

pub mod explain;
pub mod html;
pub mod index;
pub mod perfetto;
mod recording;

use crate::check::Violation;
use crate::shrink::{Case, shrink_reporting};

pub use recording::{Change, Entry, Kind, Lane, Part, Place, Recorded, Recording, record};

/// What shrinking did to a case before it was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkSummary {
    /// Steps of the run before shrinking.
    pub steps: u64,
    /// Faults of the plan before shrinking.
    pub faults: usize,
    /// Re-runs shrinking spent.
    pub runs: u64,
}

/// A failing case, shrunk and recorded: what every view reads.
pub struct Investigation {
    /// The run shown.
    pub recorded: Recorded,
    /// How it was shrunk, if it was.
    pub shrunk: Option<ShrinkSummary>,
}

/// Why a case cannot be shown as a failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{case} breaks no invariant: only a failing run can be explained")]
pub struct NoFailure {
    /// The case, on one line.
    pub case: String,
}

/// A case named for people: `informer-fifo-backlog --bug requeue-on-process-error seed 3`.
pub fn case_name(case: &Case) -> String {
    let bug = case
        .scenario
        .bug
        .map_or_else(String::new, |bug| format!(" --bug {bug}"));
    format!("{}{bug} seed {}", case.scenario.name, case.seed)
}

/// Runs `case`; if it fails, shrinks it within `shrink_runs` re-runs (none: shown as it is),
/// telling `on_run` of each, and records the result.
pub fn investigate(
    case: Case,
    shrink_runs: u64,
    on_run: &mut dyn FnMut(u64),
) -> Result<Investigation, NoFailure> {
    let outcome = case.run();
    let Some((_, violation)) = &outcome.violation else {
        return Err(NoFailure {
            case: case_name(&case),
        });
    };
    if shrink_runs == 0 {
        return Ok(Investigation {
            recorded: record(&case),
            shrunk: None,
        });
    }
    let summary = ShrinkSummary {
        steps: outcome.steps,
        faults: case.plan.faults.len(),
        runs: 0,
    };
    let shrunk = shrink_reporting(case, violation.invariant, shrink_runs, on_run);
    Ok(Investigation {
        recorded: record(&shrunk.case),
        shrunk: Some(ShrinkSummary {
            runs: shrunk.runs,
            ..summary
        }),
    })
}

impl Investigation {
    /// The violation shown, with the steps recorded before it was found.
    pub fn violation(&self) -> (u64, &Violation) {
        let (step, violation) = self
            .recorded
            .outcome
            .violation
            .as_ref()
            .expect("an investigation is of a failing run");
        (*step, violation)
    }

    /// One line: the case, and how it was shrunk.
    pub fn header(&self) -> String {
        let case = &self.recorded.case;
        let now = format!(
            "{} steps and {} faults",
            self.recorded.outcome.steps,
            case.plan.faults.len()
        );
        match self.shrunk {
            Some(before) => format!(
                "{}: shrunk from {} steps and {} faults to {now} in {} runs",
                case_name(case),
                before.steps,
                before.faults,
                before.runs
            ),
            None => format!("{}: {now}, not shrunk", case_name(case)),
        }
    }
}
