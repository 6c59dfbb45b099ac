//! What a pop hands the consumer and where a waiting Pop stands: the vocabulary every queue
//! mode shares, below the modes themselves.

use crate::client::delta::Deltas;
use crate::object::ObjectKey;

/// What one pop hands the consumer (client-go `Pop`'s `process(deltas, isInInitialList)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Popped {
    /// The deltas, oldest first: all of one key's (DeltaFIFO), exactly one (RealFIFO's Pop),
    /// or one per key (RealFIFO's PopBatch).
    pub deltas: Deltas,
    /// Whether the FIFO had not synced when this was popped.
    pub is_in_initial_list: bool,
}

impl Popped {
    /// The one key the deltas are about; `None` for a whole-store delta or a batch of several
    /// keys.
    pub fn key(&self) -> Option<&ObjectKey> {
        let key = self.deltas.last()?.key()?;
        let one_key = self.deltas.len() == 1 || self.deltas.iter().all(|d| d.key() == Some(key));
        one_key.then_some(key)
    }

    /// Every key the deltas are about, once each; `None` if one of them is a whole-store
    /// delta.
    pub fn keys(&self) -> Option<std::collections::BTreeSet<&ObjectKey>> {
        self.deltas.iter().map(|delta| delta.key()).collect()
    }
}

/// Why a pop returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// Nothing queued: client-go's Pop would block here.
    #[error("fifo is empty")]
    Empty,
    /// Nothing queued, and the Pop has checked `closed` but not started waiting: call
    /// [`Fifo::wait`] as its next step (only with B28 planted).
    #[error("fifo is empty; pop has not started waiting")]
    NotYetWaiting,
    /// Closed and drained (client-go `ErrFIFOClosed`).
    #[error("DeltaFIFO: manipulating with closed queue")]
    Closed,
}

/// Where the consumer's Pop stands once it found the queue empty (client-go Pop's
/// `for len(f.queue) == 0` loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopWait {
    /// Not in the empty-queue loop: popping, processing, or returned.
    Running,
    /// Saw `closed == false` and has not waited yet (only with B28 planted).
    CheckedOpen,
    /// Waiting for an Add or a Close to broadcast.
    Waiting,
}
