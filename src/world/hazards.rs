//! Where the world runs the assumption checks of `check::hazards` (SPEC §9.2): each only in a
//! scenario that declares it in `expected_hazards`, so other scenarios pay nothing for them;
//! the one exception is N5, a promise with atomic RealFIFO.

use crate::api::{RequestId, ServerMessage, StatusReason, WatchEvent};
use crate::check::Invariant;
use crate::check::Violation;
use crate::check::client::by_key;
use crate::check::hazards::{
    check_closed_watch_caught_up, check_delete_has_final_state, check_lister_is_snapshot,
    check_resync_repairs, check_synced_up_to_date, check_watch_served,
};
use crate::client::{FifoKind, Notification, Popped};

use super::World;
use super::writer::RESOURCE_PREFIX;

impl World {
    /// After an informer processed `popped`: N3 (a resync's objects equal etcd's), N4 (the
    /// first synced moment; an empty initial list syncs without a pop and is not checked) and
    /// N5 (the indexer is one snapshot), which is also checked, as a promise, in every atomic
    /// RealFIFO run.
    pub(super) fn pop_hazards(&self, client: usize, popped: &Popped) -> Vec<Violation> {
        let resync = self.expects(Invariant::ResyncRepairsDivergence);
        let synced = self.expects(Invariant::SyncedMeansCacheUpToDate);
        // Atomic RealFIFO keeps the lister a snapshot (PR #136008): there N5 is a promise.
        let snapshot = self.expects(Invariant::ListerIsASnapshotAtOneRv)
            || self.scenario.clients.fifo == FifoKind::RealAtomic;
        if !(resync || synced || snapshot) {
            return Vec::new();
        }
        let informer = &self.clients[client]
            .as_ref()
            .expect("started")
            .process
            .informer;
        let indexer = by_key(informer.indexer().list());
        let reference = &self.reference;
        let first_synced = popped.is_in_initial_list && informer.has_synced();
        let results = [
            resync.then(|| {
                check_resync_repairs(reference, RESOURCE_PREFIX, &popped.deltas, &indexer)
            }),
            (synced && first_synced)
                .then(|| check_synced_up_to_date(reference, RESOURCE_PREFIX, &indexer)),
            snapshot.then(|| check_lister_is_snapshot(reference, RESOURCE_PREFIX, &indexer)),
        ];
        results
            .into_iter()
            .flatten()
            .filter_map(Result::err)
            .collect()
    }

    /// A handler was notified: N2 (deletes arrive as OnDelete with the final state).
    pub(super) fn notification_hazards(
        &mut self,
        notification: &Notification,
    ) -> Result<(), Violation> {
        if !self.expects(Invariant::EveryDeleteIsOnDeleteWithFinalState) {
            return Ok(());
        }
        match check_delete_has_final_state(&self.reference, RESOURCE_PREFIX, notification) {
            Err(violation) => self.report(violation),
            Ok(()) => Ok(()),
        }
    }

    /// A server message reached a client, before its watch oracle sees it: N7 (a clean close
    /// means caught up) and N8 (a 410 only for an RV etcd no longer retains).
    pub(super) fn answer_hazards(
        &mut self,
        client: usize,
        message: &ServerMessage,
    ) -> Result<(), Violation> {
        let slot = self.clients[client].as_ref().expect("started");
        let violation = match message {
            ServerMessage::WatchClosed { id } if self.expects(Invariant::ClosedWatchIsCaughtUp) => {
                slot.watch_oracles.get(id).and_then(|oracle| {
                    let delivered = oracle.delivered_resource_version()?;
                    let undelivered = oracle.first_undelivered(&self.reference);
                    check_closed_watch_caught_up(id, delivered, undelivered).err()
                })
            }
            _ if self.expects(Invariant::WatchFromRetainedRvServedAnywhere) => {
                expired_watch(message)
                    .and_then(|id| slot.watch_oracles.get(&id)?.delivered_resource_version())
                    .and_then(|from| {
                        check_watch_served(&self.reference, slot.connection.apiserver, from).err()
                    })
            }
            _ => None,
        };
        violation.map_or(Ok(()), |violation| self.report(violation))
    }
}

/// The watch a 410 Gone answers, in either form: a refused watch or an ERROR event.
fn expired_watch(message: &ServerMessage) -> Option<RequestId> {
    match message {
        ServerMessage::WatchRejected { id, error } if error.is_expired() => Some(*id),
        ServerMessage::WatchEvent {
            id,
            event: WatchEvent::Error(status),
        } if status.reason == StatusReason::Expired => Some(*id),
        _ => None,
    }
}
