//! client-go's work queue (`util/workqueue`, SPEC §7) as sans-IO state machines on simulated
//! time: [`Queue`], [`DelayingQueue`] (`AddAfter`), [`RateLimitingQueue`] (`AddRateLimited`)
//! and the [`RateLimiter`]s of `default_rate_limiters.go`.
//!
//! Contract, in client-go's words (`doc.go`, `queue.go`):
//! - "Fair: items processed in the order in which they are added."
//! - "Stingy: a single item will not be processed multiple times concurrently, and if an item
//!   is added multiple times before it can be processed, it will only be processed once."
//! - "it is allowed for an item to be reenqueued while it is being processed. In this case it
//!   will be processed again."
//! - `Add`: "When the queue is shutdown new items will silently be ignored and not queued or
//!   marked as dirty for reprocessing."
//! - `Get`: "You must call Done with item when you have finished processing it." Get and Done
//!   must be paired 1:1 (k/k#79934): an unpaired `done` of a dirty item queues it twice.
//! - `ShutDown`: "Worker goroutines will continue processing items in the queue until it is
//!   empty and then receive the shutdown signal." `ShutDownWithDrain` waits only for the items
//!   being processed, and "ShutDown can be called after ShutDownWithDrain to force
//!   ShutDownWithDrain to stop waiting."
//!
//! Invariants a checker can assert from outside (the queue states facts, not verdicts); the
//! catalog's `workqueue_one_item_one_worker`, `workqueue_no_duplicate_in_queue` and
//! `workqueue_processed_after_last_add` check the first three in every run with a controller
//! (`check::controller`):
//! - `one_item_one_worker` (never one item in two workers at once): when [`Queue::get`] hands
//!   out `Get::Item(x)`, [`Queue::is_processing`] was false for `x` just before;
//!   [`Queue::processing`] lists what the workers hold.
//! - `no_duplicate_in_queue`: [`Queue::queued`] yields each item at most once.
//! - `processed_after_last_add` (every item added is processed after its last add): after an
//!   add that is not [`Added::Ignored`], [`Queue::is_dirty`] holds until a `get` hands the item
//!   out, and a queue shut down and worked until [`Get::ShutDown`] leaves nothing dirty. A
//!   delayed add only counts once it is ready: [`DelayingQueue::ready_at`] and
//!   [`DelayingQueue::waiting`] show what is still to come.
//! - The bookkeeping behind them is self-checked by `check_invariants` on each queue:
//!   `queue_has_no_duplicates`, `queued_items_are_dirty`, `queued_items_are_not_processing`,
//!   `dirty_items_are_queued_or_processing`, `waiting_matches_ready_times`,
//!   `no_waiting_after_shut_down`.
//!
//! Surface (quinn-style): getters take `&self`; commands are `add`, `add_after`,
//! `add_rate_limited`, `get` (returns [`Get::Empty`] where upstream would block), `done`,
//! `forget`, `shut_down`, `shut_down_with_drain` (poll `is_drained` where upstream would
//! block); after any command, `poll_timeout` says when to call `handle_timeout(now)`. Time never
//! goes backwards. Not modelled: metrics, the 10 s heartbeat (see [`DelayingQueue`]), custom
//! `Queue` implementations (the `Touch` hook shows as [`Added::Touched`]), the parallelizer.
//!
//! Upstream tests mirrored, one Rust test each: queue_test.go `TestBasic`,
//! `TestAddWhileProcessing`, `TestFind`, `TestLen`, `TestReinsert`, `TestCollapse`,
//! `TestCollapseWhileProcessing`, `TestQueueDrainageUsingShutDownWithDrain`,
//! `TestNoQueueDrainageUsingShutDown`, `TestForceQueueShutdownUsingShutDown`,
//! `TestQueueDrainageUsingShutDownWithDrainWithDirtyItem`, `TestGarbageCollection` (adapted);
//! delaying_queue_test.go `TestSimpleQueue`, `TestDeduping`, `TestAddTwoFireEarly`,
//! `TestCopyShifting`; rate_limiting_queue_test.go `TestRateLimitingQueue`;
//! default_rate_limiters_test.go `TestItemExponentialFailureRateLimiter`,
//! `TestItemExponentialFailureRateLimiterOverFlow`, `TestItemFastSlowRateLimiter`,
//! `TestMaxOfRateLimiter`, `TestWithMaxWaitRateLimiter`. Skipped: `BenchmarkQueue` and
//! `BenchmarkDelayingQueue_AddAfter` (benchmarks, no behaviour to assert).
//!
//! ```
//! use informer_sim::bug::Bugs;
//! use informer_sim::client::workqueue::{Get, RateLimitingQueue, default_controller_rate_limiter};
//! use informer_sim::sim::{SimDuration, SimTime};
//!
//! let mut queue = RateLimitingQueue::new(default_controller_rate_limiter(), Bugs::NONE);
//! queue.add("ns/a");
//! let Get::Item(key) = queue.get() else { panic!("ns/a is queued") };
//! // Processing failed: retry after the limiter's delay, then finish this attempt.
//! let delay = queue.add_rate_limited(key, SimTime(0));
//! queue.done(&key);
//! assert_eq!(delay, SimDuration::from_millis(5));
//! assert_eq!(queue.get(), Get::Empty);
//! assert_eq!(queue.poll_timeout(), Some(SimTime(5)));
//! queue.handle_timeout(SimTime(5));
//! assert_eq!(queue.get(), Get::Item("ns/a"));
//! assert_eq!(queue.num_requeues(&"ns/a"), 1);
//! ```

mod default_rate_limiters;
mod delaying_queue;
mod queue;
mod rate_limiting_queue;

#[cfg(test)]
mod proptests;

pub use default_rate_limiters::{
    BucketRateLimiter, DEFAULT_CONTROLLER_BURST, DEFAULT_CONTROLLER_DELAY_BASE,
    DEFAULT_CONTROLLER_DELAY_MAX, DEFAULT_CONTROLLER_QPS, DefaultControllerRateLimiter,
    ItemExponentialFailureRateLimiter, ItemFastSlowRateLimiter, MaxOfRateLimiter, RateLimiter,
    WithMaxWaitRateLimiter, default_controller_rate_limiter,
};
pub use delaying_queue::DelayingQueue;
pub use queue::{Added, Get, Queue};
pub use rate_limiting_queue::RateLimitingQueue;
