//! `informer-sim report`: one self-contained HTML page for a failing run (no script, no font,
//! nothing fetched): the cause, a sequence diagram of the steps on the violating object's path
//! (a lane per part, an arrow per message, faults and the violation highlighted), each
//! object's history side by side in every place that held it, the invariants checked, and
//! every step as text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::check::{Checked, Invariant, Kind as Class, expected_hazards};
use crate::object::ObjectKey;

use super::Investigation;
use super::explain::{Focus, cause};
use super::recording::{Kind, Lane, Place, Recorded};

/// The diagram shows at most this many rows (the latest: the story ends at the violation).
const DIAGRAM_ROWS_MAX: usize = 400;
/// At most this many objects' histories (the violating one first).
const HISTORIES_MAX: usize = 40;
/// Diagram geometry, in pixels.
const ROW_HEIGHT: usize = 18;
const LANE_WIDTH: usize = 104;
const TIME_WIDTH: usize = 76;
const HEADER_HEIGHT: usize = 44;
const TEXT_WIDTH: usize = 760;

const STYLE: &str = "
body { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 13px; margin: 16px;
       color: #1d1d1f; background: #fff; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 28px; }
.verdict { color: #b00020; font-weight: bold; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
svg text { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 11px; }
.lane-line { stroke: #c8c8c8; stroke-dasharray: 3 3; }
.lane-name { font-weight: bold; }
.dot { fill: #444; } .dot.data { fill: #1f6fb2; }
.arrow { stroke: #1f6fb2; stroke-width: 1.2; fill: none; }
.arrow.unseen { stroke-dasharray: 4 3; stroke: #7aa7d0; }
.fault rect.band { fill: #ffe2b8; } .key rect.band { fill: #eef5ff; }
.row text.what { fill: #1d1d1f; } .key text.what { font-weight: bold; }
.violation rect.band { fill: #ffd6dc; } .violation text { fill: #b00020; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.broke td { background: #ffd6dc; } tr.hazard td { background: #fff1c9; }
tr.unchecked td { color: #888; }
";

/// Escapes text for HTML and SVG.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's head and its inline style, titled `title`.
pub(crate) fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    )
}

/// The report page of a failing run.
pub fn render(investigation: &Investigation) -> String {
    let recorded = &investigation.recorded;
    let (step, violation) = investigation.violation();
    let focus = Focus::of(recorded);
    let mut out = page_start(&format!(
        "informer-sim: {} in {}",
        violation.invariant,
        super::case_name(&recorded.case)
    ));
    let _ = write!(
        out,
        "<h1>{}</h1>\n<p class=\"verdict\" id=\"verdict\">✗ step {step}: {}</p>\n<pre id=\"cause\">",
        escape(&investigation.header()),
        escape(&violation.to_string())
    );
    for line in cause(recorded, violation) {
        let _ = writeln!(out, "{}", escape(&line));
    }
    out.push_str("</pre>\n");
    faults(&mut out, recorded);
    out.push_str("<h2>Sequence diagram</h2>\n");
    diagram(&mut out, recorded, &focus);
    out.push_str("<h2>Histories</h2>\n");
    histories(&mut out, recorded, &focus);
    out.push_str("<h2>Invariants checked</h2>\n");
    invariants(&mut out, recorded);
    out.push_str(
        "<h2>Every step</h2>\n<details><summary>the whole run as a timeline</summary><pre>",
    );
    for entry in recorded
        .recording
        .entries
        .iter()
        .filter(|entry| entry.recorded)
    {
        let _ = writeln!(
            out,
            "{:>6} {:>8}ms  {:<20} {}",
            entry.step,
            entry.time_ms,
            entry.lane.to_string(),
            escape(&entry.text)
        );
    }
    out.push_str("</pre></details>\n</body></html>\n");
    out
}

fn faults(out: &mut String, recorded: &Recorded) {
    let faults = &recorded.case.plan.faults;
    let _ = write!(out, "<p id=\"faults\">{} faults in the plan", faults.len());
    for timed in faults {
        let _ = write!(
            out,
            "; at {} ms: {}",
            timed.at_ms,
            escape(&timed.fault.to_string())
        );
    }
    out.push_str("</p>\n");
}

/// The entries the diagram shows: what [`Focus`] keeps, implicit entries (arrivals, commits
/// applied) included, the latest [`DIAGRAM_ROWS_MAX`].
fn diagram_rows(recorded: &Recorded, focus: &Focus) -> Vec<usize> {
    let entries = &recorded.recording.entries;
    let rows: Vec<usize> = (0..entries.len())
        .filter(|index| focus.shows_in(entries, *index))
        .collect();
    rows[rows.len().saturating_sub(DIAGRAM_ROWS_MAX)..].to_vec()
}

fn diagram(out: &mut String, recorded: &Recorded, focus: &Focus) {
    let entries = &recorded.recording.entries;
    let rows = diagram_rows(recorded, focus);
    let lanes: Vec<Lane> = rows
        .iter()
        .map(|index| entries[*index].lane)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lane_x = |lane: Lane| {
        let at = lanes.iter().position(|l| *l == lane).unwrap_or(0);
        TIME_WIDTH + LANE_WIDTH * at + LANE_WIDTH / 2
    };
    let row_of: BTreeMap<usize, usize> =
        rows.iter().enumerate().map(|(row, e)| (*e, row)).collect();
    let y = |row: usize| HEADER_HEIGHT + ROW_HEIGHT * row + ROW_HEIGHT / 2;
    let text_x = TIME_WIDTH + LANE_WIDTH * lanes.len() + 8;
    let width = text_x + TEXT_WIDTH;
    let height = HEADER_HEIGHT + ROW_HEIGHT * (rows.len() + 2);
    let _ = writeln!(
        out,
        "<p>{} of the run's {} entries: the steps on {}'s path, messages drawn from the step \
         that sent them (dashed when that step is not on the path), requests received by an \
         apiserver and commits applied by etcd included.</p>",
        rows.len(),
        entries.len(),
        focus
            .key
            .as_ref()
            .map_or_else(|| "every part".to_owned(), |key| escape(key.as_str()))
    );
    let _ = writeln!(
        out,
        "<svg id=\"diagram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<defs><marker id=\"head\" \
         viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#1f6fb2\"/>\
         </marker></defs>"
    );
    // Row bands first, so lanes and arrows are drawn over them.
    for (row, index) in rows.iter().enumerate() {
        let entry = &entries[*index];
        let on_key = focus
            .key
            .as_ref()
            .is_some_and(|key| entry.keys.contains(key));
        let class = match entry.kind {
            Kind::Fault => "row fault",
            _ if on_key => "row key",
            _ => "row",
        };
        let top = y(row) - ROW_HEIGHT / 2;
        let step = if entry.recorded {
            format!("step {}", entry.step)
        } else {
            "implicit".to_owned()
        };
        let _ = writeln!(
            out,
            "<g class=\"{class}\" data-step=\"{}\" data-lane=\"{}\"><title>{step}</title>\
             <rect class=\"band\" x=\"0\" y=\"{top}\" width=\"{width}\" height=\"{ROW_HEIGHT}\" \
             fill=\"none\"/><text x=\"4\" y=\"{}\">{}ms</text><text class=\"what\" x=\"{text_x}\" \
             y=\"{}\">{}</text></g>",
            entry.step,
            escape(&entry.lane.to_string()),
            y(row) + 4,
            entry.time_ms,
            y(row) + 4,
            escape(&truncate(&format!("{}: {}", entry.lane, entry.text), 110))
        );
    }
    for lane in &lanes {
        let x = lane_x(*lane);
        let name = lane.component_name();
        let part = lane.to_string();
        let part = part.strip_prefix(&name).unwrap_or("").trim();
        let _ = writeln!(
            out,
            "<g class=\"lane\" data-lane=\"{}\"><text class=\"lane-name\" x=\"{x}\" y=\"14\" \
             text-anchor=\"middle\">{}<tspan x=\"{x}\" dy=\"13\">{}</tspan></text>\
             <line class=\"lane-line\" x1=\"{x}\" y1=\"32\" x2=\"{x}\" y2=\"{height}\"/></g>",
            escape(&lane.to_string()),
            escape(&name),
            escape(part)
        );
    }
    for (row, index) in rows.iter().enumerate() {
        let entry = &entries[*index];
        let (x, y_to) = (lane_x(entry.lane), y(row));
        if let Some(from) = entry.from {
            let source = &entries[from];
            let (class, y_from) = match row_of.get(&from) {
                Some(source_row) => ("arrow", y(*source_row)),
                None => ("arrow unseen", y_to.saturating_sub(ROW_HEIGHT / 2)),
            };
            let x_from = lane_x(source.lane);
            if lanes.contains(&source.lane) && x_from != x {
                let _ = writeln!(
                    out,
                    "<line class=\"{class}\" x1=\"{x_from}\" y1=\"{y_from}\" x2=\"{x}\" \
                     y2=\"{y_to}\" marker-end=\"url(#head)\"/>"
                );
            }
        }
        let dot = if entry.kind == Kind::Data {
            "dot data"
        } else {
            "dot"
        };
        let _ = writeln!(
            out,
            "<circle class=\"{dot}\" cx=\"{x}\" cy=\"{y_to}\" r=\"3.5\"/>"
        );
    }
    if let Some((step, violation)) = &recorded.outcome.violation {
        let row = rows.len();
        let top = y(row) - ROW_HEIGHT / 2;
        let _ = writeln!(
            out,
            "<g class=\"violation\" id=\"violation\" data-step=\"{step}\"><rect class=\"band\" \
             x=\"0\" y=\"{top}\" width=\"{width}\" height=\"{}\"/><text x=\"4\" y=\"{}\">✗ step \
             {step}: {}</text></g>",
            ROW_HEIGHT * 2,
            y(row) + 4,
            escape(&truncate(&violation.to_string(), 160))
        );
    }
    out.push_str("</svg>\n");
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars - 1).collect();
    cut.push('…');
    cut
}

/// Each object's changes side by side: a column per place, a row per change, in run order.
fn histories(out: &mut String, recorded: &Recorded, focus: &Focus) {
    let recording = &recorded.recording;
    let mut keys: Vec<&ObjectKey> = recording.histories.keys().collect();
    keys.sort_by_key(|key| Some(*key) != focus.key.as_ref());
    if keys.len() > HISTORIES_MAX {
        let _ = writeln!(
            out,
            "<p>{} objects; the first {HISTORIES_MAX} shown.</p>",
            keys.len()
        );
    }
    for key in keys.into_iter().take(HISTORIES_MAX) {
        let places = &recording.histories[key];
        let columns: Vec<Place> = places.keys().copied().collect();
        let mut changes: Vec<(usize, usize, &str)> = places
            .iter()
            .enumerate()
            .flat_map(|(column, (_, changes))| {
                changes
                    .iter()
                    .map(move |change| (change.entry, column, change.text.as_str()))
            })
            .collect();
        changes.sort_by_key(|(entry, column, _)| (*entry, *column));
        let violating = Some(key) == focus.key.as_ref();
        let open = if violating { " open" } else { "" };
        let _ = write!(
            out,
            "<details{open}><summary>{}{}</summary>\n<table class=\"history\" data-key=\"{}\">\
             <tr><th>step</th><th>time</th>",
            escape(key.as_str()),
            if violating {
                " (the violating object)"
            } else {
                ""
            },
            escape(key.as_str())
        );
        for place in &columns {
            let _ = write!(out, "<th>{}</th>", escape(&place.to_string()));
        }
        out.push_str("</tr>\n");
        for (entry, column, text) in changes {
            let at = &recording.entries[entry];
            let _ = write!(out, "<tr><td>{}</td><td>{}ms</td>", at.step, at.time_ms);
            for other in 0..columns.len() {
                let cell = if other == column {
                    escape(text)
                } else {
                    String::new()
                };
                let _ = write!(out, "<td>{cell}</td>");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table></details>\n");
    }
}

/// The catalog, each invariant with whether this run checked it and what became of it.
fn invariants(out: &mut String, recorded: &Recorded) {
    let outcome = &recorded.outcome;
    let scenario = &recorded.case.scenario;
    let declared = expected_hazards(&scenario.expected_hazards, scenario.clients.fifo());
    out.push_str(
        "<table id=\"invariants\"><tr><th>invariant</th><th>class</th><th>this run</th>\
         <th>promise</th></tr>\n",
    );
    for invariant in Invariant::ALL {
        let info = invariant.info();
        let broke = outcome
            .violation
            .as_ref()
            .filter(|(_, violation)| violation.invariant == *invariant);
        let hazard = outcome
            .hazards
            .iter()
            .find(|(_, hazard)| hazard.invariant == *invariant);
        let checked = info.checked == Checked::EveryRun || declared.contains(invariant);
        let (class, verdict) = match (broke, hazard) {
            (Some((step, _)), _) => ("broke", format!("broke at step {step}")),
            (None, Some((step, _))) => ("hazard", format!("expected hazard at step {step}")),
            _ if !checked => ("unchecked", "not checked here".to_owned()),
            _ if info.kind == Class::Liveness => {
                ("liveness", "checked when the run settles".to_owned())
            }
            _ => ("held", "held until the run stopped".to_owned()),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>",
            info.name,
            info.kind.as_str(),
            escape(info.promise)
        );
    }
    out.push_str("</table>\n");
}
