//! The client side of the pipeline: the reflector that lists and watches (with its pager and
//! backoff), the shared informer and its processor, the queues that buffer what the reflector hears (`DeltaFIFO`, `RealFIFO`, atomic
//! `RealFIFO`), the `Indexer` they feed, and `processDeltas`, which applies popped deltas to the
//! indexer and says which handler calls follow.
//!
//! Everything here is sans-IO and single-threaded. client-go runs `process` under the FIFO lock;
//! the models reproduce that by ordering: the caller pops, processes, and only then touches the
//! FIFO again (for `RealFIFO` it reports the end of processing with `done`).
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::client::{Fifo, FifoKind, Indexer, process_deltas};
//! use informer_sim::object::Object;
//!
//! let mut indexer = Indexer::default();
//! let mut fifo = Fifo::new(FifoKind::Delta, Bugs::NONE);
//! fifo.replace(vec![Object::bare("ns/a", 10)], 10, &indexer);
//! let popped = fifo.pop().expect("one item queued");
//! let notifications = process_deltas(&mut indexer, &popped.deltas, popped.is_in_initial_list);
//! fifo.done();
//! assert_eq!(notifications.len(), 1);
//! assert!(fifo.has_synced());
//! assert_eq!(indexer.list_keys().len(), 1);
//! ```

pub mod backoff;
pub mod delta;
pub mod delta_fifo;
pub mod fifo;
pub mod indexer;
pub mod informer;
pub mod pager;
pub mod process_deltas;
pub mod processor;
pub mod queue;
pub mod real_fifo;
pub mod reflector;
pub mod release;
pub mod transform;
pub mod workqueue;

pub use delta::{DeletedFinalStateUnknown, Delta, DeltaObject, DeltaType, Deltas, ReplacedAllInfo};
pub use delta_fifo::DeltaFifo;
pub use fifo::{Fifo, FifoKind};
pub use indexer::{Indexer, IndexerError, KnownObjects, NoKnownObjects};
pub use informer::{
    Delivered, Distributed, InformerConfig, Processed, SharedIndexInformer, Stopped,
};
pub use process_deltas::{Notification, is_sync, process_deltas, process_deltas_in_batch};
pub use processor::{HandlerId, HandlerOutcome, HandlerSynced, ProcessorListener, SharedProcessor};
pub use queue::{PopError, PopWait, Popped};
pub use real_fifo::RealFifo;
pub use release::{ClientGoFeatures, ClientGoRelease};
