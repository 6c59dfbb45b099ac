//! The per-step determinism check (`run --check-determinism`): one seed run twice, and once
//! more from its replay file (written to text and read back), must give the same step at every
//! step. Where two runs part, it names the first step that differs and shows both steps.
//!
//! Each run keeps its running trace hash after every step (the hash covers each step's typed
//! event in full), so comparing costs 8 bytes a step and no formatting; only where two runs part
//! are they run again to render that one step of each. A driver (floor 4).

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use crate::explore::Overrides;
use crate::replay::ReplayFile;
use crate::scenario::Scenario;
use crate::trace::{Trace, TraceSink};
use crate::world::{RunOutcome, World};

/// Which of the three runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The seed's first run.
    First,
    /// The seed run again.
    Second,
    /// The run of the first run's replay file.
    Replay,
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pass::First => "first run",
            Pass::Second => "second run",
            Pass::Replay => "replay-file run",
        })
    }
}

/// Where two runs of one seed part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parting {
    /// The first step at which they differ.
    pub step: u64,
    /// The run compared with the first one.
    pub other: Pass,
    /// The first run's step there (`None`: its run had ended).
    pub first_event: Option<String>,
    /// The other run's step there.
    pub other_event: Option<String>,
}

impl fmt::Display for Parting {
    /// Three lines: where, then both steps side by side.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |event: &Option<String>| {
            event
                .clone()
                .unwrap_or_else(|| "(no step: the run had ended)".to_owned())
        };
        writeln!(
            f,
            "determinism: the {} parts from the first run at step {}",
            self.other, self.step
        )?;
        writeln!(
            f,
            "  {:<16} {}",
            format!("{}:", Pass::First),
            show(&self.first_event)
        )?;
        write!(
            f,
            "  {:<16} {}",
            format!("{}:", self.other),
            show(&self.other_event)
        )
    }
}

/// What the check found: the first run's outcome, and where a run parted from it, if one did.
#[derive(Debug)]
pub struct Checked {
    /// The first run.
    pub outcome: RunOutcome,
    /// The first parting (the second run is compared first, then the replay-file run).
    pub parting: Option<Parting>,
}

/// Runs seed `seed` of `scenario` twice and once from its replay file, comparing every step.
pub fn check(scenario: &Scenario, overrides: Overrides, seed: u64) -> Checked {
    let fresh = |sink| World::new(scenario.clone(), seed, Trace::with_sink(sink)).run();
    let (outcome, first) = digested(fresh);
    let file = ReplayFile::of(scenario, overrides, seed, &outcome);
    let text = serde_json::to_string(&file).expect("replay files serialize");
    let file = ReplayFile::from_json(Path::new("(in memory)"), &text)
        .expect("a replay file of a valid scenario reads back");
    let from_file = |sink| file.run(Trace::with_sink(sink));
    let parting = part(&first, fresh, Pass::Second, fresh)
        .or_else(|| part(&first, fresh, Pass::Replay, from_file));
    Checked { outcome, parting }
}

/// Where run `other` parts from the first run (whose digests are `first`), if it does.
fn part(
    first: &[u64],
    first_run: impl FnOnce(TraceSink) -> RunOutcome,
    pass: Pass,
    other: impl FnOnce(TraceSink) -> RunOutcome + Copy,
) -> Option<Parting> {
    let (_, digests) = digested(other);
    let step = first_difference(first, &digests)?;
    Some(Parting {
        step,
        other: pass,
        first_event: step_line(step, first_run),
        other_event: step_line(step, other),
    })
}

/// The first step at which two digest lists differ (a missing step differs from any).
fn first_difference(left: &[u64], right: &[u64]) -> Option<u64> {
    let common = left.iter().zip(right).position(|(a, b)| a != b);
    let step = common.or_else(|| (left.len() != right.len()).then(|| left.len().min(right.len())));
    step.map(|step| step as u64)
}

/// Runs with a sink that keeps the running trace hash after every step.
fn digested(run: impl FnOnce(TraceSink) -> RunOutcome) -> (RunOutcome, Vec<u64>) {
    let digests = Rc::new(RefCell::new(Vec::new()));
    let sink = digests.clone();
    let outcome = run(TraceSink::StepHashes(Box::new(move |hash| {
        sink.borrow_mut().push(hash.0)
    })));
    let list = digests.take();
    (outcome, list)
}

/// Runs again with a timeline sink and returns step `step`'s line, if the run reached it.
fn step_line(step: u64, run: impl FnOnce(TraceSink) -> RunOutcome) -> Option<String> {
    let line = StepLine {
        wanted: step,
        ..StepLine::default()
    };
    let shared = Rc::new(RefCell::new(line));
    run(TraceSink::Timeline(Box::new(SharedLine(shared.clone()))));
    let line = shared.borrow();
    (line.seen > step).then(|| String::from_utf8_lossy(&line.text).trim().to_owned())
}

/// Keeps line `wanted` of what is written to it.
#[derive(Default)]
struct StepLine {
    wanted: u64,
    seen: u64,
    text: Vec<u8>,
}

struct SharedLine(Rc<RefCell<StepLine>>);

impl Write for SharedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut line = self.0.borrow_mut();
        for byte in bytes {
            if line.seen == line.wanted && *byte != b'\n' {
                line.text.push(*byte);
            }
            line.seen += u64::from(*byte == b'\n');
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_the_first_unequal_or_missing_step() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 9, 3]), Some(1));
        assert_eq!(first_difference(&[1, 2], &[1, 2, 3]), Some(2));
    }

    #[test]
    fn the_kept_line_follows_the_newlines_whatever_the_chunks() {
        let shared = Rc::new(RefCell::new(StepLine {
            wanted: 1,
            ..StepLine::default()
        }));
        let mut line = SharedLine(shared.clone());
        line.write_all(b"zero\non").expect("written");
        line.write_all(b"e\ntwo\n").expect("written");
        assert_eq!(shared.borrow().text, b"one");
    }

    #[test]
    fn a_library_seed_agrees_at_every_step_in_all_three_runs() {
        let scenario = Scenario::load("informer").expect("library scenario");
        let checked = check(&scenario, Overrides::default(), 3);
        assert_eq!(checked.parting, None);
        assert!(checked.outcome.steps > 100);
    }

    #[test]
    fn two_different_runs_part_at_a_step_whose_two_events_differ() {
        let scenario = &Scenario::load("informer").expect("library scenario");
        let run = |seed: u64| {
            move |sink| World::new(scenario.clone(), seed, Trace::with_sink(sink)).run()
        };
        let (_, first) = digested(run(1));
        let parting = part(&first, run(1), Pass::Second, run(2)).expect("seeds 1 and 2 differ");
        assert_ne!(parting.first_event, parting.other_event);
        assert!(parting.first_event.is_some() && parting.other_event.is_some());
    }

    #[test]
    fn a_parting_names_its_step_and_shows_both_events() {
        let parting = Parting {
            step: 7,
            other: Pass::Replay,
            first_event: Some("5ms  etcd  put a".to_owned()),
            other_event: None,
        };
        let text = parting.to_string();
        assert!(text.contains("replay-file run parts from the first run at step 7"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("  first run:") && lines[1].ends_with(" 5ms  etcd  put a"));
        assert!(lines[2].starts_with("  replay-file run:"), "{text}");
        assert!(lines[2].ends_with("(no step: the run had ended)"));
    }
}
