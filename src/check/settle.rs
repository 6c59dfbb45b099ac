//! Runs that cannot settle because their own workload never lets them: the scenario asks more
//! of its clients than they can do, so no implementation of the pipeline could settle it. A run
//! not settled at its deadline is classed here before it is reported as a generic
//! `run_settles` (a livelock or a hang of the models, SPEC §8 B14, B15).
//!
//! The world draws each handler call and each processed item uniformly up to the scenario's
//! maximum, so their mean pace is half of it. Listeners never drop a notification (client-go
//! shared_informer.go `processorListener.pendingNotifications`, an unbounded ring), so a
//! handler slower than what it is sent only falls further behind.

use crate::client::SharedIndexInformer;
use crate::client::reflector::{Reflector, ReflectorPhase};

use super::catalog::Invariant;
use super::violation::Violation;

/// What a scenario asks of its clients and what they were handed so far, in milliseconds and
/// counts.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// The longest a handler takes per notification.
    pub handler_ms_max: u64,
    /// The longest the informer takes to process one popped item.
    pub process_ms_max: u64,
    /// How long the run has gone on.
    pub elapsed_ms: u64,
    /// Notifications delivered so far, to every handler of every client.
    pub notifications: u64,
    /// Items popped so far, by every informer.
    pub pops: u64,
}

/// Why a watching client's informer, still busy at the deadline, could never have been idle:
/// a resync round takes longer than the resync period, or its handlers or its processing were
/// handed more work (at the mean pace, counting what still waits) than the whole run had time
/// for. Counts delivered so far are averaged over the handlers and clients, so the busiest one
/// is, if anything, underrated. `None`: nothing in the workload explains it.
pub fn workload_blocks_settling<'a>(
    workload: &Workload,
    clients: impl IntoIterator<Item = (usize, &'a Reflector, &'a SharedIndexInformer)>,
) -> Option<Violation> {
    let clients: Vec<_> = clients.into_iter().collect();
    let listeners: usize = clients
        .iter()
        .map(|(_, _, informer)| informer.processor().listeners().count())
        .sum();
    let handed_per_listener = workload.notifications / listeners.max(1) as u64;
    let popped_per_client = workload.pops / clients.len().max(1) as u64;
    let at_mean = |count: u64, max_ms: u64| count * max_ms / 2;
    let blocked = |message: String| Some(Violation::new(Invariant::WorkloadCanSettle, message));
    let elapsed = workload.elapsed_ms;
    for (client, reflector, informer) in clients {
        if reflector.phase() != ReflectorPhase::Watching || informer.is_quiescent() {
            continue;
        }
        let objects = informer.indexer().len() as u64;
        for (position, (_, listener)) in informer.processor().listeners().enumerate() {
            let period = listener.resync_period().0;
            let round = at_mean(
                objects,
                workload.handler_ms_max.max(workload.process_ms_max),
            );
            if period > 0 && round >= period {
                return blocked(format!(
                    "client-{client}: handler {position} resyncs every {period} ms, but one round \
                     of {objects} sync notifications takes ~{round} ms at the mean pace: the \
                     informer is never idle"
                ));
            }
            let handed = handed_per_listener + listener.pending_notifications() as u64;
            let work = at_mean(handed, workload.handler_ms_max);
            if work >= elapsed {
                return blocked(format!(
                    "client-{client}: handler {position} was handed ~{handed} notifications, \
                     ~{work} ms of work at the mean pace, in a run of {elapsed} ms: the \
                     handlers are slower than the workload's writes"
                ));
            }
        }
        let popped = popped_per_client + informer.fifo().pending().len() as u64;
        let work = at_mean(popped, workload.process_ms_max);
        if work >= elapsed {
            return blocked(format!(
                "client-{client}: the informer was handed ~{popped} items, ~{work} ms of \
                 processing at the mean pace, in a run of {elapsed} ms: processing is slower \
                 than the workload's writes"
            ));
        }
    }
    None
}
