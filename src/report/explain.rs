//! `informer-sim explain`: a failing run as a timeline a person reads top to bottom, in the
//! golden traces' style. Only the steps that touch the violating object, and the requests,
//! answers and faults of the parts on its path (etcd, the apiservers and clients that held
//! it), are shown; the violation is marked where the run stopped; a few plain words built from
//! the invariant's catalog entry (and the planted bug's, if one was on) say what broke.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::check::Violation;
use crate::object::ObjectKey;
use crate::world::writer::RESOURCE_PREFIX;

use super::recording::{Entry, Kind, Lane, Recorded};

/// At most this many timeline lines: with the header and the cause, an explanation fits in
/// 40 lines.
pub const TIMELINE_LINES_MAX: usize = 30;

/// What an explanation follows: the violating object, and the parts on its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Focus {
    /// The object the violation names, if it names one the run touched.
    pub key: Option<ObjectKey>,
    /// The parts (see [`Lane::component`]) that held it, etcd always among them.
    pub components: BTreeSet<Lane>,
}

impl Focus {
    /// The object and the path of `recorded`'s violation.
    pub fn of(recorded: &Recorded) -> Focus {
        let recording = &recorded.recording;
        let key = recorded
            .outcome
            .violation
            .as_ref()
            .and_then(|(_, violation)| named_key(recording.histories.keys(), violation));
        let client = violating_client(recorded);
        let components = recording
            .entries
            .iter()
            .filter(|entry| match &key {
                Some(key) => entry.kind == Kind::Data && entry.keys.contains(key),
                None => true,
            })
            .map(|entry| entry.lane.component())
            .chain([Lane::Etcd])
            .filter(|lane| match (lane, client) {
                (Lane::Client(other, _), Some(client)) => *other == client,
                _ => true,
            })
            .collect();
        Focus { key, components }
    }

    /// Whether entry `index` of `entries` belongs to the story ([`Focus::shows`]), and, if it
    /// receives a request, whether the request came from a part on the path.
    pub fn shows_in(&self, entries: &[Entry], index: usize) -> bool {
        let entry = &entries[index];
        let sender_on_path = |from: usize| {
            let sender = &entries[from];
            sender.kind != Kind::Control || self.components.contains(&sender.lane.component())
        };
        self.shows(entry) && entry.from.is_none_or(sender_on_path)
    }

    /// Whether `entry` belongs to the story: every fault, no timer, the object's states on
    /// its path, and the requests and answers of the parts on its path.
    pub fn shows(&self, entry: &Entry) -> bool {
        let on_path = self.components.contains(&entry.lane.component());
        match entry.kind {
            Kind::Fault => true,
            Kind::Quiet => false,
            Kind::Data => {
                on_path
                    && self
                        .key
                        .as_ref()
                        .is_some_and(|key| entry.keys.contains(key))
            }
            Kind::Control => on_path,
        }
    }
}

/// The client whose check broke: the one the message names (`client-2: ...`), or else the
/// one that took the last step before the violation was found.
fn violating_client(recorded: &Recorded) -> Option<usize> {
    let (steps, violation) = recorded.outcome.violation.as_ref()?;
    let named = violation
        .message
        .strip_prefix("client-")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    let recording = &recorded.recording;
    named.or_else(|| {
        let last = &recording.entries[recording.violation_entry(*steps)?];
        match last.lane {
            Lane::Client(client, _) => Some(client),
            _ => None,
        }
    })
}

/// The object `violation`'s message names first, among `keys` (a whole word: `ns-0/obj-1` is
/// not found in `ns-0/obj-12`).
fn named_key<'a>(
    keys: impl Iterator<Item = &'a ObjectKey>,
    violation: &Violation,
) -> Option<ObjectKey> {
    let message = &violation.message;
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    keys.filter_map(|key| {
        message
            .match_indices(key.as_str())
            .find(|(at, found)| {
                let after = message[at + found.len()..].chars().next();
                let head = &message[..*at];
                let in_path = head.ends_with('/') && !head.ends_with(RESOURCE_PREFIX);
                !after.is_some_and(is_word)
                    && !head.chars().next_back().is_some_and(is_word)
                    && !in_path
            })
            .map(|(at, _)| (at, key.clone()))
    })
    .min_by_key(|(at, _)| *at)
    .map(|(_, key)| key)
}

/// The entries an explanation shows, in order, at most [`TIMELINE_LINES_MAX`] of them (the
/// latest: the story ends at the violation), and how many more would have been shown.
pub fn selected(recorded: &Recorded, focus: &Focus) -> (Vec<usize>, usize) {
    let entries = &recorded.recording.entries;
    let shown: Vec<usize> = (0..entries.len())
        .filter(|index| entries[*index].recorded && focus.shows_in(entries, *index))
        .collect();
    let left_out = shown.len().saturating_sub(TIMELINE_LINES_MAX);
    (shown[left_out..].to_vec(), left_out)
}

/// The plain-words cause of `violation`, from its catalog entry and the planted bug's.
pub fn cause(recorded: &Recorded, violation: &Violation) -> Vec<String> {
    let info = violation.invariant.info();
    let mut lines = vec![
        format!(
            "cause: {} ({}) broke: {}.",
            info.name,
            info.kind.as_str(),
            violation.message
        ),
        format!("  it promises that {}", info.promise),
        format!("  it holds {} (source: {})", info.holds_when, info.source),
    ];
    if let Some(bug) = recorded.case.scenario.bug {
        let bug = bug.info();
        lines.push(format!(
            "  planted bug {} {} in {} ({}): {}",
            bug.id, bug.name, bug.component, bug.upstream, bug.description
        ));
    }
    lines
}

/// The explanation of a failing run: a header, the timeline, the violation's mark, the cause.
/// `header` is the first line (what was run, and how it was shrunk).
pub fn render(recorded: &Recorded, header: &str) -> String {
    let mut out = String::new();
    let Some((steps, violation)) = &recorded.outcome.violation else {
        let _ = writeln!(out, "{header}\nno invariant broke: nothing to explain");
        return out;
    };
    let focus = Focus::of(recorded);
    let (shown, left_out) = selected(recorded, &focus);
    let entries = &recorded.recording.entries;
    let _ = writeln!(out, "{header}");
    let path: Vec<String> = focus
        .components
        .iter()
        .map(|lane| lane.component_name())
        .collect();
    let following = match &focus.key {
        Some(key) => format!("following {key} through {}", path.join(", ")),
        None => "the violation names no object: every part's requests and faults".to_owned(),
    };
    let _ = writeln!(
        out,
        "{following} ({} of {} steps)",
        shown.len(),
        recorded.outcome.steps
    );
    if left_out > 0 {
        let _ = writeln!(out, "  ... {left_out} earlier steps on this path left out");
    }
    let width = shown
        .iter()
        .map(|index| entries[*index].lane.to_string().len())
        .max()
        .unwrap_or(0);
    for index in &shown {
        let entry = &entries[*index];
        let lane = entry.lane.to_string();
        let _ = writeln!(
            out,
            "{:>8}ms  {lane:<width$}  {}",
            entry.time_ms, entry.text
        );
    }
    let _ = writeln!(out, "  ✗ step {steps}: {violation}");
    for line in cause(recorded, violation) {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Invariant;

    fn keys(names: &[&str]) -> Vec<ObjectKey> {
        names.iter().map(|name| ObjectKey::new(name)).collect()
    }

    #[test]
    fn the_named_key_is_a_whole_word_and_the_first_named() {
        let violation = Violation::new(
            Invariant::IndexerRvNeverDecreases,
            "ns-0/obj-12 went back; ns-0/obj-1 too",
        );
        let known = keys(&["ns-0/obj-1", "ns-0/obj-12"]);
        assert_eq!(
            named_key(known.iter(), &violation),
            Some(ObjectKey::new("ns-0/obj-12"))
        );
        let other = Violation::new(Invariant::IndexerRvNeverDecreases, "/registry/x/ns-0/obj-1");
        assert_eq!(
            named_key(known.iter(), &other),
            None,
            "a key inside a longer path"
        );
        let etcd = Violation::new(
            Invariant::EtcdWatchIsHistorySuffix,
            "/registry/pods/ns-0/obj-1@3",
        );
        assert_eq!(
            named_key(known.iter(), &etcd),
            Some(ObjectKey::new("ns-0/obj-1"))
        );
        let none = Violation::new(Invariant::RunSettles, "client-0: informer still busy");
        assert_eq!(named_key(known.iter(), &none), None);
    }

    #[test]
    fn a_focus_shows_faults_never_timers_and_control_only_on_its_path() {
        let focus = Focus {
            key: Some(ObjectKey::new("ns-0/a")),
            components: BTreeSet::from([Lane::Etcd, Lane::Apiserver(0), Lane::Writer(3)]),
        };
        let entry = |kind, lane, names: &[&str]| Entry {
            step: 0,
            recorded: true,
            time_ms: 0,
            lane,
            text: String::new(),
            keys: keys(names),
            kind,
            from: None,
        };
        assert!(focus.shows(&entry(Kind::Fault, Lane::Faults, &[])));
        assert!(!focus.shows(&entry(Kind::Quiet, Lane::Apiserver(0), &["ns-0/a"])));
        assert!(focus.shows(&entry(Kind::Data, Lane::Writer(3), &["ns-0/a"])));
        assert!(!focus.shows(&entry(Kind::Data, Lane::Writer(2), &["ns-0/a"])));
        assert!(!focus.shows(&entry(Kind::Data, Lane::Apiserver(0), &["ns-0/b"])));
        assert!(focus.shows(&entry(Kind::Control, Lane::Apiserver(0), &[])));
        assert!(!focus.shows(&entry(Kind::Control, Lane::Apiserver(1), &[])));
    }
}
