//! A sweep's summary: one row per scenario and the lines `sweep` and `merge` end with.
//!
//! A driver (floor 4). Every figure but the events per second is a function of the seeds'
//! verdicts, so the summary of a sweep, of the same sweep killed and resumed, and of its shards
//! merged are equal ([`Summary`] is compared whole, and saved as `summary.json`).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::explore::SweepRow;
use crate::scenario::Probe;
use crate::world::RunStats;

/// The rows of a sweep, one per scenario, in sweep order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The rows.
    pub rows: Vec<SweepRow>,
}

impl Summary {
    /// Seeds run.
    pub fn seeds(&self) -> u64 {
        self.rows.iter().map(|row| row.seeds).sum()
    }

    /// Seeds that broke an invariant.
    pub fn failed(&self) -> u64 {
        self.rows.iter().map(|row| row.failed).sum()
    }

    /// Required probes never hit, over every scenario.
    pub fn probe_misses(&self) -> usize {
        self.rows.iter().map(|row| row.probe_misses.len()).sum()
    }

    /// Steps of every run.
    pub fn events(&self) -> u64 {
        self.rows.iter().map(|row| row.events).sum()
    }

    /// What every run exercised, summed.
    pub fn exercised(&self) -> RunStats {
        let mut exercised = RunStats::default();
        for row in &self.rows {
            exercised.add(&row.stats);
        }
        exercised
    }

    /// Whether no seed failed and every required probe was hit.
    pub fn passed(&self) -> bool {
        self.failed() == 0 && self.probe_misses() == 0
    }

    /// The table, the exercised counts, the probes per scenario and the closing line
    /// `swept N seeds: F failed, P probes never hit[, E events/s]` (the rate when known).
    pub fn render(&self, events_per_second: Option<f64>) -> String {
        let mut out = String::new();
        self.render_table(&mut out);
        let _ = writeln!(out, "exercised: {}", self.exercised());
        for row in &self.rows {
            render_probes(&mut out, row);
        }
        let hazards: u64 = self.rows.iter().map(|row| row.hazard_seeds).sum();
        if hazards > 0 {
            let _ = writeln!(
                out,
                "expected upstream hazards: {hazards} seeds (not failures)"
            );
        }
        let _ = write!(
            out,
            "swept {} seeds: {} failed, {} probes never hit",
            self.seeds(),
            self.failed(),
            self.probe_misses()
        );
        if let Some(rate) = events_per_second {
            let _ = write!(out, ", {rate:.0} events/s");
        }
        out.push('\n');
        out
    }

    fn render_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{:<40} {:>7} {:>7} {:>8} {:>11} {:>10}",
            "scenario", "seeds", "failed", "hazards", "events", "events/s"
        );
        for row in &self.rows {
            let rate = if row.wall.is_zero() {
                "-".to_owned()
            } else {
                format!("{:.0}", row.events_per_second())
            };
            let _ = writeln!(
                out,
                "{:<40} {:>7} {:>7} {:>8} {:>11} {:>10}",
                row.scenario, row.seeds, row.failed, row.hazard_seeds, row.events, rate
            );
        }
    }
}

/// How often each coverage probe was hit (`*` marks the required ones), and one line per
/// required probe never hit.
fn render_probes(out: &mut String, row: &SweepRow) {
    let required = |probe: &Probe| row.probes_required.contains(probe);
    let hits: Vec<String> = Probe::ALL
        .iter()
        .filter(|probe| row.stats.probe_hits(**probe) > 0 || required(probe))
        .map(|probe| {
            let mark = if required(probe) { "*" } else { "" };
            format!("{probe}{mark}={}", row.stats.probe_hits(*probe))
        })
        .collect();
    let _ = writeln!(out, "probes {}: {}", row.scenario, hits.join(" "));
    for probe in &row.probe_misses {
        let _ = writeln!(
            out,
            "probe never hit: {} in {}: the sweep never reached this state ({} seeds); \
             sweep more seeds or change the scenario",
            probe, row.scenario, row.seeds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_line_counts_every_row_and_shows_the_rate_only_when_known() {
        let row = |name: &str, seeds, failed| SweepRow {
            scenario: name.to_owned(),
            seeds,
            failed,
            probes_required: vec![Probe::Relist],
            probe_misses: vec![Probe::Relist],
            ..SweepRow::default()
        };
        let summary = Summary {
            rows: vec![row("a", 3, 1), row("b", 4, 0)],
        };
        let text = summary.render(None);
        assert!(
            text.ends_with("swept 7 seeds: 1 failed, 2 probes never hit\n"),
            "{text}"
        );
        assert!(text.contains("probe never hit: relist in b"), "{text}");
        assert!(summary.render(Some(10.0)).ends_with(", 10 events/s\n"));
        assert!(!summary.passed());
    }
}
