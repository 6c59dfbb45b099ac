//! client-go's work queue (`util/workqueue`, SPEC §7) as sans-IO state machines on simulated
//! time. So far: [`Queue`] (`queue.go`) and [`DelayingQueue`] (`delaying_queue.go`, `AddAfter`).
//!
//! Contract, in client-go's words (`doc.go`, `queue.go`):
//! - "Fair: items processed in the order in which they are added."
//! - "Stingy: a single item will not be processed multiple times concurrently, and if an item
//!   is added multiple times before it can be processed, it will only be processed once."
//! - "it is allowed for an item to be reenqueued while it is being processed. In this case it
//!   will be processed again."
//!
//! Upstream tests mirrored, one Rust test each: queue_test.go `TestBasic`,
//! `TestAddWhileProcessing`, `TestLen`, `TestReinsert`, `TestCollapse`,
//! `TestCollapseWhileProcessing`, `TestQueueDrainageUsingShutDownWithDrain`,
//! `TestNoQueueDrainageUsingShutDown`, `TestForceQueueShutdownUsingShutDown`,
//! `TestQueueDrainageUsingShutDownWithDrainWithDirtyItem`, `TestGarbageCollection` (adapted).
//! delaying_queue_test.go `TestSimpleQueue`, `TestDeduping`, `TestAddTwoFireEarly`,
//! `TestCopyShifting`. Skipped: `BenchmarkQueue` and `BenchmarkDelayingQueue_AddAfter`
//! (benchmarks, no behaviour to assert).
//!
//! ```
//! use informer_sim::client::workqueue::{Added, Get, Queue};
//!
//! let mut queue = Queue::new();
//! queue.add("ns/a");
//! let Get::Item(key) = queue.get() else { panic!("ns/a is queued") };
//! assert_eq!(queue.add("ns/a"), Added::Deferred);
//! queue.done(&key);
//! assert_eq!(queue.get(), Get::Item("ns/a"));
//! ```

mod delaying_queue;
mod queue;

pub use delaying_queue::DelayingQueue;
pub use queue::{Added, Get, Queue};
