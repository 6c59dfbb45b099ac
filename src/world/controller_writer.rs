//! A controller's writes into the fake etcd, as kube-apiserver's storage layer would send them
//! (a transaction comparing the object's `mod_revision` with the precondition:
//! `GuaranteedUpdate` and `Delete` with a resourceVersion precondition, `Create` on an absent
//! key), through the checker. The modelled controller's workers and the kube-rs controller's
//! writes (read by the HTTP face) both go this way.

use std::collections::BTreeMap;

use crate::check::Violation;
use crate::controller::{Write, WriteError, Writer};
use crate::etcd::Revision;
use crate::object::Object;
use crate::sim::RngStream;

use super::core::Core;
use super::etcd_side::EtcdSide;
use super::trace_event::{Actor, TraceEvent};
use super::writer::{self, CommitOutcome, Intent, PendingWrite, RESOURCE_PREFIX};

/// A controller's writes, into the fake etcd through the checker.
pub(super) struct EtcdWriter<'a> {
    pub(super) etcd: &'a mut EtcdSide,
    pub(super) core: &'a mut Core,
    /// Draws the refused writes.
    pub(super) rng: &'a mut RngStream,
    /// The chance that a write fails at the apiserver (500/429) before the heal.
    pub(super) error_probability: f64,
    /// Where to keep etcd's revision after the controller's last successful write, if
    /// anywhere.
    pub(super) last_write: Option<&'a mut Revision>,
    /// Who writes, in the trace.
    pub(super) actor: Actor,
    /// What the checker found while writing: ends the run after the reconcile.
    pub(super) violation: Option<Violation>,
}

impl Writer for EtcdWriter<'_> {
    fn write(&mut self, write: Write) -> Result<Object, WriteError> {
        if self.violation.is_some() {
            return Err(WriteError::Unavailable);
        }
        let (pending, labels, value) = pending_write(write);
        let actor = self.actor;
        let error_probability = self.error_probability;
        if !self.core.healed && error_probability > 0.0 && self.rng.chance(error_probability) {
            let key = pending
                .key
                .strip_prefix(RESOURCE_PREFIX)
                .unwrap_or(&pending.key);
            self.core.record(actor, &TraceEvent::WriteRefused { key });
            return Err(WriteError::Unavailable);
        }
        let response = match self
            .etcd
            .checked_txn(self.core, &writer::commit_txn(&pending))
        {
            Ok(response) => response,
            Err(violation) => {
                self.violation = Some(violation);
                return Err(WriteError::Unavailable);
            }
        };
        let outcome = writer::after_commit(&mut pending.clone(), &response);
        let event = TraceEvent::Commit {
            write: &pending,
            outcome: &outcome,
        };
        self.core.record(actor, &event);
        match outcome {
            CommitOutcome::Committed(revision) => {
                self.core.stats.commits += 1;
                if let Some(last_write) = self.last_write.as_deref_mut() {
                    *last_write = revision;
                }
                let key = &pending.key[RESOURCE_PREFIX.len()..];
                let uid = match pending.intent {
                    Intent::Create { .. } => revision,
                    Intent::Update { .. } | Intent::Delete => 0,
                };
                Ok(Object {
                    labels: labels.into(),
                    value,
                    uid,
                    ..Object::bare(key, revision)
                })
            }
            CommitOutcome::Conflict | CommitOutcome::GaveUp => {
                self.core.stats.probes.controller_conflicts += 1;
                Err(WriteError::Conflict)
            }
            CommitOutcome::AlreadyExists => Err(WriteError::AlreadyExists),
            CommitOutcome::NotFound => Err(WriteError::NotFound),
        }
    }
}

/// A controller write as the transaction kube-apiserver's storage would run.
fn pending_write(write: Write) -> (PendingWrite, BTreeMap<String, String>, u64) {
    let (key, expected_mod_revision, intent) = match write {
        Write::Create { key, labels, value } => (key, 0, Intent::Create { labels, value }),
        Write::Update(object) => {
            let intent = Intent::Update {
                labels: (*object.labels).clone(),
                value: object.value,
                node: object.node_name.to_string(),
            };
            (object.key, object.resource_version, intent)
        }
        Write::Delete { key, precondition } => (key, precondition, Intent::Delete),
    };
    let (labels, value) = match &intent {
        Intent::Create { labels, value } | Intent::Update { labels, value, .. } => {
            (labels.clone(), *value)
        }
        Intent::Delete => Default::default(),
    };
    let pending = PendingWrite {
        key: format!("{RESOURCE_PREFIX}{key}"),
        expected_mod_revision,
        intent,
        conflicts: 0,
    };
    (pending, labels, value)
}
