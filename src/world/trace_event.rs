//! What the world writes into the trace: one event per step.

use serde::Serialize;

use crate::api::{ClientMessage, ServerMessage, WatchEvent};
use crate::client::{Delta, DeltaObject, Notification};
use crate::etcd::{Revision, WatchId, WatchResponse};

use super::faults::TimedFault;
use super::writer::{CommitOutcome, PendingWrite};

/// One line of the trace.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TraceEvent<'a> {
    Read {
        key: &'a str,
        mod_revision: Revision,
    },
    Commit {
        write: &'a PendingWrite,
        outcome: &'a CommitOutcome,
    },
    Compact {
        revision: Revision,
        outcome: String,
    },
    ProgressTick {
        revision: Revision,
    },
    Watch {
        watch_id: WatchId,
        start_revision: Revision,
    },
    Stall {
        watch_id: WatchId,
    },
    Resume {
        watch_id: WatchId,
    },
    Disconnect {
        watch_id: WatchId,
    },
    ProgressRequest {
        watch_id: WatchId,
    },
    Received {
        response: &'a WatchResponse,
    },
    Lost {
        watch_id: WatchId,
    },
    Heal,
    Settled,
    ApiserverTimer,
    ApiserverEtcd {
        response: &'a WatchResponse,
    },
    Request {
        client: usize,
        message: &'a ClientMessage,
    },
    Answer {
        client: usize,
        message: String,
    },
    Pop {
        key: Option<String>,
        deltas: Vec<String>,
    },
    Handler {
        handler: usize,
        notification: String,
    },
    ReflectorTimer,
    LateHandler {
        handler: usize,
        initial_adds: usize,
    },
    Fault {
        fault: &'a TimedFault,
    },
}

fn describe_object(object: &DeltaObject) -> String {
    match object {
        DeltaObject::Object(object) => object.to_string(),
        DeltaObject::Tombstone(tombstone) => {
            format!(
                "DFSU({}, {})",
                tombstone.key,
                tombstone
                    .obj
                    .as_ref()
                    .map_or("nil".to_owned(), ToString::to_string)
            )
        }
    }
}

pub(crate) fn describe_delta(delta: &Delta) -> String {
    let what = match delta {
        Delta::Added(object)
        | Delta::Updated(object)
        | Delta::Replaced(object)
        | Delta::Sync(object) => object.to_string(),
        Delta::Deleted(object) => describe_object(object),
        Delta::ReplacedAll(info) => format!(
            "{} objects at {}",
            info.objects.len(),
            info.resource_version
        ),
        Delta::SyncAll => String::new(),
        Delta::Bookmark(resource_version) => resource_version.to_string(),
    };
    format!("{} {what}", delta.delta_type().as_str())
}

pub(crate) fn describe_notification(notification: &Notification) -> String {
    match notification {
        Notification::Add {
            obj,
            is_in_initial_list,
        } => format!("add {obj} initial={is_in_initial_list}"),
        Notification::Update { old, new } => format!("update {old} -> {new}"),
        Notification::Delete(object) => format!("delete {}", describe_object(object)),
    }
}

pub(crate) fn describe_answer(message: &ServerMessage) -> String {
    match message {
        ServerMessage::List {
            id,
            result: Ok(page),
        } => format!(
            "list {id}: {} items at {}{}",
            page.items.len(),
            page.resource_version,
            if page.continue_token.is_some() {
                ", more"
            } else {
                ""
            }
        ),
        ServerMessage::List {
            id,
            result: Err(error),
        } => format!("list {id}: {error:?}"),
        ServerMessage::WatchRejected { id, error } => format!("watch {id} rejected: {error:?}"),
        ServerMessage::WatchEvent { id, event } => match event {
            WatchEvent::Added(object) => format!("watch {id}: ADDED {object}"),
            WatchEvent::Modified(object) => format!("watch {id}: MODIFIED {object}"),
            WatchEvent::Deleted(object) => format!("watch {id}: DELETED {object}"),
            WatchEvent::Bookmark {
                resource_version,
                initial_events_end,
            } => {
                format!(
                    "watch {id}: BOOKMARK {resource_version}{}",
                    if *initial_events_end {
                        " initial-events-end"
                    } else {
                        ""
                    }
                )
            }
            WatchEvent::Error(status) => {
                format!("watch {id}: ERROR {} {}", status.code, status.message)
            }
        },
        ServerMessage::WatchClosed { id } => format!("watch {id}: closed"),
    }
}
