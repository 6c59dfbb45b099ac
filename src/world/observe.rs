//! A typed view of a run as it happens, for whoever reads a failure (the `explain`, `report`
//! and Perfetto drivers): every step exactly as the trace records it, before it is encoded,
//! and the arrivals of client requests at their apiserver, which the trace leaves out (an
//! apiserver's handling of a request shows in what it answers). An observer reads; it never
//! reaches a decision, the trace or its hash.

use crate::api::ClientMessage;
use crate::sim::SimTime;

use super::trace_event::{Actor, TraceEvent};

/// Sees a run step by step.
pub(crate) trait StepObserver {
    /// Step `step` of the trace, recorded at `at` by `actor`.
    fn step(&mut self, step: u64, at: SimTime, actor: Actor, event: &TraceEvent<'_>);

    /// A message of client `client` reached apiserver `apiserver` (or found it down) at `at`,
    /// after `step` steps were recorded.
    fn arrived(
        &mut self,
        step: u64,
        at: SimTime,
        client: usize,
        apiserver: usize,
        message: &ClientMessage,
    );
}
