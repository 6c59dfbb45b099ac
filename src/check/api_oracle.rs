//! Oracles for what apiservers send clients (SPEC §9.3 items 2 and 3, bugs B9, B10, B13,
//! B16, B22): every watch stream is exactly etcd's history after its start, and every list is
//! exactly etcd's state at its resource version, as fresh as its request demands.

use super::catalog::Invariant;
use std::collections::BTreeMap;

use super::resource::{ResourceHistory, Selection};
use crate::api::{
    ListOptions, ListResponse, ResourceVersionMatch, ResourceVersionParam, StatusReason,
    WatchEvent, WatchOptions,
};
use crate::object::{Object, ObjectKey, ResourceVersion};

use super::state::{below_horizon, etcd_state};
use super::violation::Violation;

/// The event a stream with `selection` must carry for a change of one key from `before` to
/// `after` (`None`: absent) at `revision`: entering the selection is ADDED, staying in it
/// MODIFIED, leaving it (or being deleted) DELETED with the last selected state at the
/// change's revision; outside before and after, nothing (SPEC §2.6, T10).
fn expected_event(
    selection: &Selection,
    before: Option<&Object>,
    after: Option<&Object>,
    revision: ResourceVersion,
) -> Option<WatchEvent> {
    match (selection.filter(before), selection.filter(after)) {
        (None, None) => None,
        (None, Some(object)) => Some(WatchEvent::Added(object.clone())),
        (Some(_), Some(object)) => Some(WatchEvent::Modified(object.clone())),
        (Some(object), None) => Some(WatchEvent::Deleted(object.with_resource_version(revision))),
    }
}

enum Phase {
    /// Synthetic ADDED events of the initial state may still come.
    Initial { added: BTreeMap<ObjectKey, Object> },
    /// Live: every event after `resource_version`.
    Live { resource_version: ResourceVersion },
}

/// The oracle for one client watch stream.
pub struct WatchStreamOracle {
    selection: Selection,
    phase: Phase,
    events_seen: u64,
}

impl WatchStreamOracle {
    /// A stream opened with `options`.
    pub fn new(options: &WatchOptions) -> WatchStreamOracle {
        let selection = Selection {
            namespace: options.namespace.clone(),
            label_selector: options.label_selector.clone(),
            field_selector: options.field_selector.clone(),
        };
        let phase = match options.resource_version {
            ResourceVersionParam::At(resource_version) if !options.send_initial_events => {
                Phase::Live { resource_version }
            }
            _ => Phase::Initial {
                added: BTreeMap::new(),
            },
        };
        WatchStreamOracle {
            selection,
            phase,
            events_seen: 0,
        }
    }

    /// Checks one event the client received; `compact_revision` is etcd's when it arrives.
    pub fn observe(
        &mut self,
        resource: &ResourceHistory,
        compact_revision: ResourceVersion,
        event: &WatchEvent,
    ) -> Result<(), Violation> {
        let result = match (&mut self.phase, event) {
            (_, WatchEvent::Error(status)) => self.check_error(compact_revision, status.reason),
            (Phase::Initial { added }, WatchEvent::Added(object)) => {
                added.insert(object.key.clone(), object.clone());
                Ok(())
            }
            (
                Phase::Initial { .. },
                WatchEvent::Bookmark {
                    resource_version, ..
                },
            ) => self.end_initial(resource, *resource_version),
            (Phase::Initial { .. }, live) => {
                let resource_version = live.resource_version().expect("not an error");
                self.end_initial(resource, resource_version.saturating_sub(1))?;
                self.check_live(resource, live)
            }
            (Phase::Live { .. }, live) => self.check_live(resource, live),
        };
        self.events_seen += 1;
        result
    }

    /// The last RV the stream delivered (its start RV before any event), once past its
    /// initial events.
    pub fn delivered_resource_version(&self) -> Option<ResourceVersion> {
        match self.phase {
            Phase::Live { resource_version } => Some(resource_version),
            Phase::Initial { .. } => None,
        }
    }

    /// The first event of the stream's range that etcd has after what the stream delivered.
    pub fn first_undelivered(
        &self,
        resource: &ResourceHistory,
    ) -> Option<(ResourceVersion, WatchEvent)> {
        let after = self.delivered_resource_version()?;
        next_event(resource, &self.selection, after)
    }

    /// A 410 comes before any event, or (a watch served from etcd that fell behind, F9)
    /// once etcd has compacted the next revision the stream needs.
    fn check_error(
        &self,
        compact_revision: ResourceVersion,
        reason: StatusReason,
    ) -> Result<(), Violation> {
        let compacted_past = self
            .delivered_resource_version()
            .is_some_and(|delivered| delivered + 1 < compact_revision);
        if reason == StatusReason::Expired && self.events_seen > 0 && !compacted_past {
            return Err(Violation::new(
                Invariant::ServerWatchIsHistorySuffix,
                "a 410 after events were delivered",
            ));
        }
        Ok(())
    }

    /// The initial ADDED events must be exactly the state at the snapshot RV.
    fn end_initial(
        &mut self,
        resource: &ResourceHistory,
        snapshot: ResourceVersion,
    ) -> Result<(), Violation> {
        let Phase::Initial { added } = &self.phase else {
            unreachable!("only from the initial phase")
        };
        if let Some(why) = below_horizon(resource, snapshot) {
            return Err(Violation::new(
                Invariant::ServerWatchIsHistorySuffix,
                format!("initial events at {why}"),
            ));
        }
        let expected = etcd_state(resource, snapshot, &self.selection);
        if *added != expected {
            let got: Vec<String> = added.values().map(ToString::to_string).collect();
            let want: Vec<String> = expected.values().map(ToString::to_string).collect();
            return Err(Violation::new(
                Invariant::ServerWatchIsHistorySuffix,
                format!("initial events {got:?} are not the state at {snapshot}: {want:?}"),
            ));
        }
        self.phase = Phase::Live {
            resource_version: snapshot,
        };
        Ok(())
    }

    fn check_live(
        &mut self,
        resource: &ResourceHistory,
        event: &WatchEvent,
    ) -> Result<(), Violation> {
        let Phase::Live { resource_version } = &mut self.phase else {
            unreachable!("live phase")
        };
        let expected = next_event(resource, &self.selection, *resource_version);
        if let WatchEvent::Bookmark {
            resource_version: bookmark,
            ..
        } = event
        {
            if let Some((at, _)) = expected.filter(|(at, _)| at <= bookmark) {
                return Err(Violation::new(
                    Invariant::ServerBookmarkIsProgress,
                    format!("bookmark at {bookmark} before the event at {at}"),
                ));
            }
            *resource_version = (*resource_version).max(*bookmark);
            return Ok(());
        }
        match expected {
            Some((at, truth)) if truth == *event => {
                *resource_version = at;
                Ok(())
            }
            expected => Err(Violation::new(
                Invariant::ServerWatchIsHistorySuffix,
                format!("after {resource_version}: delivered {event:?}, history says {expected:?}"),
            )),
        }
    }
}

/// The first event after `after` that a stream with `selection` must deliver, and its revision.
fn next_event(
    resource: &ResourceHistory,
    selection: &Selection,
    after: ResourceVersion,
) -> Option<(ResourceVersion, WatchEvent)> {
    resource
        .changes_since(after + 1)
        .find_map(|(revision, change)| {
            expected_event(
                selection,
                change.before.as_ref(),
                change.after.as_ref(),
                revision,
            )
            .map(|expected| (revision, expected))
        })
}

/// What freshness a list request demands, computed when the server received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Any state will do (RV "0").
    Any,
    /// At least this RV (RV "" from etcd's revision at arrival, or RV "N" not-older-than).
    AtLeast(ResourceVersion),
    /// Exactly this RV (Exact, legacy RV with limit, or a continue token).
    Exactly(ResourceVersion),
}

impl Freshness {
    /// The freshness `options` demand, given etcd's revision when the request arrived.
    pub fn of(options: &ListOptions, etcd_revision_at_arrival: ResourceVersion) -> Freshness {
        if let Some(token) = &options.continue_token {
            return match u64::try_from(token.resource_version) {
                Ok(revision) => Freshness::Exactly(revision),
                Err(_) => Freshness::AtLeast(etcd_revision_at_arrival),
            };
        }
        match options.resource_version {
            ResourceVersionParam::Zero => Freshness::Any,
            ResourceVersionParam::Unset => Freshness::AtLeast(etcd_revision_at_arrival),
            ResourceVersionParam::At(revision) => {
                let exact = options.resource_version_match == ResourceVersionMatch::Exact
                    || (options.resource_version_match == ResourceVersionMatch::Unset
                        && options.limit > 0);
                if exact {
                    Freshness::Exactly(revision)
                } else {
                    Freshness::AtLeast(revision)
                }
            }
        }
    }
}

/// Checks a list page: its items are the state at its RV (after the continue key, at most
/// `limit` of them), and its RV is as fresh as demanded.
pub fn check_list(
    resource: &ResourceHistory,
    options: &ListOptions,
    freshness: Freshness,
    response: &ListResponse,
) -> Result<(), Violation> {
    let fresh_enough = match freshness {
        Freshness::Any => true,
        Freshness::AtLeast(revision) => response.resource_version >= revision,
        Freshness::Exactly(revision) => response.resource_version == revision,
    };
    if !fresh_enough {
        return Err(Violation::new(
            Invariant::ServerListIsFreshEnough,
            format!(
                "list at {} does not meet {freshness:?}",
                response.resource_version
            ),
        ));
    }
    let selection = Selection {
        namespace: None,
        label_selector: options.label_selector.clone(),
        field_selector: options.field_selector.clone(),
    };
    let after = options
        .continue_token
        .as_ref()
        .map(|token| ObjectKey::new(&token.last_key));
    if let Some(why) = below_horizon(resource, response.resource_version) {
        return Err(Violation::new(
            Invariant::ServerListIsStateAtRv,
            format!("list at {why}"),
        ));
    }
    if response.resource_version > resource.revision() {
        return Err(Violation::new(
            Invariant::ServerListIsStateAtRv,
            format!(
                "list at {}, after etcd's revision {}",
                response.resource_version,
                resource.revision()
            ),
        ));
    }
    let mut expected: Vec<&Object> = resource
        .selected_at(response.resource_version, &selection, after.as_ref())
        .collect();
    if response.continue_token.is_some() {
        expected.truncate(response.items.len());
    }
    let got: Vec<&Object> = response.items.iter().collect();
    if got != expected {
        return Err(Violation::new(
            Invariant::ServerListIsStateAtRv,
            format!(
                "list at {} has {} items, etcd had {}",
                response.resource_version,
                got.len(),
                expected.len()
            ),
        ));
    }
    Ok(())
}
