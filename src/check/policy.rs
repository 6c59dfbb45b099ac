//! Which checks a run makes: the hazards its scenario declares and its clients' FIFO decide
//! which assumption checks run, and checks can be switched off altogether (to measure the
//! simulation alone).

use super::catalog::{Checked, Invariant};
use super::resource::ResourceHistory;
use super::truth::GroundTruth;
use crate::client::FifoKind;

/// The hazards a run expects: those its scenario declares, and those its clients' FIFO brings
/// wherever it runs (DeltaFIFO reports synced before its last initial item is applied, SPEC
/// §9.2 N6, and so a registration can sync early, §8 B20), so that `--fifo delta` on any
/// scenario reports them as the hazards they are.
pub fn expected_hazards(declared: &[Invariant], fifo: FifoKind) -> Vec<Invariant> {
    let inherent: &[Invariant] = match fifo {
        FifoKind::Delta => &[
            Invariant::InformerSyncedImpliesInitialListApplied,
            Invariant::HandlerSyncedAfterInitialList,
        ],
        FifoKind::Real | FifoKind::RealAtomic => &[],
    };
    let mut expected = declared.to_vec();
    expected.extend(inherent.iter().filter(|hazard| !declared.contains(hazard)));
    expected
}

/// Which checks a run makes.
#[derive(Clone, Debug)]
pub(super) struct Policy {
    /// The invariants the scenario declares expected upstream hazards.
    pub(super) expected: Vec<Invariant>,
    /// Atomic RealFIFO keeps the lister a snapshot (PR #136008): there N5 is a promise.
    pub(super) atomic_fifo: bool,
    /// Whether any check runs at all.
    pub(super) enabled: bool,
}

impl Policy {
    /// Whether the scenario declares `invariant` an expected upstream hazard.
    pub(super) fn expects(&self, invariant: Invariant) -> bool {
        self.expected.contains(&invariant)
    }

    /// Whether a check of `invariant` runs in this run: assumption checks only where declared
    /// (and N5, a promise, with atomic RealFIFO).
    pub(super) fn runs(&self, invariant: Invariant) -> bool {
        match invariant.info().checked {
            Checked::EveryRun => true,
            Checked::WhereDeclared => {
                self.expects(invariant)
                    || (invariant == Invariant::ListerIsASnapshotAtOneRv && self.atomic_fifo)
            }
        }
    }

    /// Whether the ground truth keeps its whole history: an assumption check is declared (the
    /// hazard scenarios, short and small, read history anywhere).
    pub(super) fn keeps_all_history(&self) -> bool {
        self.expected
            .iter()
            .any(|hazard| hazard.info().checked == Checked::WhereDeclared)
    }
}

/// What a client's checks read: the ground truth, the resource's history, the policy.
#[derive(Clone, Copy)]
pub(super) struct Ground<'a> {
    pub(super) truth: &'a GroundTruth,
    pub(super) resource: &'a ResourceHistory,
    pub(super) policy: &'a Policy,
}
