//! Progress of long commands (a driver, floor 4): a bar with rate and time left (`indicatif`)
//! when standard error is a terminal, and otherwise a plain line every [`PLAIN_PERIOD`], so a
//! log or CI stays readable. It reads the wall clock for display only; nothing it reads reaches
//! a run.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// How often a plain progress line is printed.
pub const PLAIN_PERIOD: Duration = Duration::from_secs(5);

/// The bar's layout: what, how far, how fast, how long still.
const TEMPLATE: &str =
    "{prefix} [{bar:30}] {pos}/{len} {msg} ({rate}, {elapsed} elapsed, {eta} left)";

/// The progress of one job of `len` units.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    unit: &'static str,
    len: u64,
    done: u64,
    message: String,
    started: Instant,
    printed: Instant,
}

impl Progress {
    /// Progress of `label` over `len` units named `unit` (`seeds`, `bugs`, `runs`).
    pub fn new(label: &str, len: u64, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template(TEMPLATE)
                .expect("the template is valid")
                .with_key(
                    "rate",
                    |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = write!(out, "{:.0}/s", state.per_sec());
                    },
                )
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            label: label.to_owned(),
            unit,
            len,
            done: 0,
            message: String::new(),
            started: now,
            printed: now,
        }
    }

    /// `units` more are done; `message` says what stands out so far (`3 failed`).
    pub fn advance(&mut self, units: u64, message: &str) {
        self.done += units;
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
            bar.inc(units);
            return;
        }
        message.clone_into(&mut self.message);
        if self.printed.elapsed() >= PLAIN_PERIOD {
            self.printed = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    /// The plain line: `informer: 1200/5000 seeds, 0 failed (240/s, 5s elapsed)`.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = self.done as f64 / elapsed.max(1e-9);
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(", {}", self.message)
        };
        format!(
            "{}: {}/{} {}{message} ({rate:.0}/s, {elapsed:.0}s elapsed)",
            self.label, self.done, self.len, self.unit
        )
    }

    /// The job is over: the bar is cleared (the command prints its own summary).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_says_what_how_far_and_what_stands_out() {
        let mut progress = Progress::new("informer", 10, "seeds");
        progress.bar = None;
        progress.advance(4, "1 failed");
        let line = progress.line();
        assert!(
            line.starts_with("informer: 4/10 seeds, 1 failed ("),
            "{line}"
        );
        assert!(line.ends_with("s elapsed)"), "{line}");
    }
}
