//! `informer-sim sweep --report DIR`: a report page for each failing seed (the first
//! [`PAGES_MAX`], each shrunk within [`SHRINK_RUNS`] re-runs) and one index page for the sweep:
//! its scenarios, the failures linked to their pages, the coverage probes' hits, and the
//! `exercised:` counts as a bar chart.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::explore::SweepRow;
use crate::scenario::{Probe, Scenario};
use crate::shrink::Case;
use crate::world::{RunOutcome, RunStats};

use super::html::{escape, page_start};
use super::investigate;

/// Failing seeds that get a page of their own; later ones are listed with their replay line.
pub const PAGES_MAX: usize = 20;
/// Re-runs each page's shrinking may spend.
pub const SHRINK_RUNS: u64 = 120;
/// The width of the longest bar of the chart, in pixels.
const BAR_WIDTH_MAX: f64 = 420.0;

/// One failing seed of a sweep.
struct Failure {
    scenario: String,
    seed: u64,
    violation: String,
    replay: String,
    page: Option<String>,
}

/// The pages of one sweep, written into a directory as the sweep goes.
pub struct SweepPages {
    dir: PathBuf,
    failures: Vec<Failure>,
}

fn io_error(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

impl SweepPages {
    /// Pages written into `dir` (created if needed).
    pub fn new(dir: &Path) -> io::Result<SweepPages> {
        std::fs::create_dir_all(dir).map_err(|error| io_error(dir, error))?;
        Ok(SweepPages {
            dir: dir.to_owned(),
            failures: Vec::new(),
        })
    }

    /// A failing seed of `scenario`: its page, if fewer than [`PAGES_MAX`] were written.
    /// `replay` is the command that repeats it.
    pub fn failure(
        &mut self,
        scenario: &Scenario,
        seed: u64,
        outcome: &RunOutcome,
        replay: String,
    ) -> io::Result<()> {
        let Some((_, violation)) = &outcome.violation else {
            return Ok(());
        };
        let mut page = None;
        if self.failures.len() < PAGES_MAX {
            let case = Case::of_seed(scenario.clone(), seed);
            if let Ok(investigation) = investigate(case, SHRINK_RUNS, &mut |_| {}) {
                let name = format!("{}-{seed}.html", scenario.name);
                let path = self.dir.join(&name);
                std::fs::write(&path, super::html::render(&investigation))
                    .map_err(|error| io_error(&path, error))?;
                page = Some(name);
            }
        }
        self.failures.push(Failure {
            scenario: scenario.name.clone(),
            seed,
            violation: violation.to_string(),
            replay,
            page,
        });
        Ok(())
    }

    /// Writes the index page of the sweep and returns its path.
    pub fn finish(
        self,
        scenarios: &[Scenario],
        rows: &[SweepRow],
        exercised: &RunStats,
    ) -> io::Result<PathBuf> {
        let path = self.dir.join("index.html");
        let page = self.render(scenarios, rows, exercised);
        std::fs::write(&path, page).map_err(|error| io_error(&path, error))?;
        Ok(path)
    }

    fn render(&self, scenarios: &[Scenario], rows: &[SweepRow], exercised: &RunStats) -> String {
        let seeds: u64 = rows.iter().map(|row| row.seeds).sum();
        let mut out = page_start("informer-sim sweep");
        let _ = writeln!(
            out,
            "<h1>informer-sim sweep: {seeds} seeds, {} failed</h1>\n<h2>Scenarios</h2>\n\
             <table id=\"scenarios\"><tr><th>scenario</th><th>seeds</th><th>failed</th>\
             <th>hazard seeds</th><th>events</th></tr>",
            self.failures.len()
        );
        for row in rows {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.scenario),
                row.seeds,
                row.failed,
                row.hazard_seeds,
                row.events
            );
        }
        out.push_str("</table>\n<h2>Failures</h2>\n<ul id=\"failures\">\n");
        for failure in &self.failures {
            let name = format!("{} seed {}", failure.scenario, failure.seed);
            let link = match &failure.page {
                Some(page) => format!("<a href=\"{}\">{}</a>", escape(page), escape(&name)),
                None => escape(&name),
            };
            let _ = writeln!(
                out,
                "<li>{link}: {}<br><code>{}</code></li>",
                escape(&failure.violation),
                escape(&failure.replay)
            );
        }
        if self.failures.is_empty() {
            out.push_str("<li>none</li>\n");
        }
        out.push_str("</ul>\n<h2>Coverage probes</h2>\n<table id=\"probes\"><tr><th>scenario</th>");
        for probe in Probe::ALL {
            let _ = write!(out, "<th>{probe}</th>");
        }
        out.push_str("</tr>\n");
        for (scenario, row) in scenarios.iter().zip(rows) {
            let _ = write!(out, "<tr><td>{}</td>", escape(&scenario.name));
            for probe in Probe::ALL {
                let hits = row.stats.probe_hits(*probe);
                let required = scenario.probes.contains(probe);
                let style = match (required, hits) {
                    (true, 0) => " style=\"background:#ffd6dc\"",
                    (true, _) => " style=\"font-weight:bold\"",
                    _ => "",
                };
                let star = if required { "*" } else { "" };
                let _ = write!(out, "<td{style}>{hits}{star}</td>");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table><p>* required by the scenario</p>\n<h2>Exercised</h2>\n");
        chart(&mut out, exercised);
        out.push_str("</body></html>\n");
        out
    }
}

/// The `exercised:` counts as horizontal bars on a logarithmic scale (counts span 1 to
/// millions).
fn chart(out: &mut String, exercised: &RunStats) {
    let counts = exercised.counts();
    let log = |count: u64| (count as f64 + 1.0).log10();
    let longest = counts
        .iter()
        .map(|(_, count)| log(*count))
        .fold(1.0, f64::max);
    let (label_width, row_height) = (200, 20);
    let height = row_height * counts.len() + 10;
    let _ = writeln!(
        out,
        "<svg id=\"exercised\" xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" \
         height=\"{height}\">"
    );
    for (row, (name, count)) in counts.iter().enumerate() {
        let y = row * row_height + 4;
        let width = (log(*count) / longest * BAR_WIDTH_MAX).round();
        let _ = writeln!(
            out,
            "<g class=\"bar\" data-name=\"{name}\" data-count=\"{count}\"><text x=\"0\" \
             y=\"{}\">{name}</text><rect x=\"{label_width}\" y=\"{y}\" width=\"{width}\" \
             height=\"{}\" fill=\"#1f6fb2\"/><text x=\"{}\" y=\"{}\">{count}</text></g>",
            y + 13,
            row_height - 6,
            label_width as f64 + width + 6.0,
            y + 13
        );
    }
    out.push_str("</svg><p>bars on a log scale</p>\n");
}
