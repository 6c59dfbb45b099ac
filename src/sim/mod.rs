//! The simulation kernel. It knows nothing of Kubernetes: time, one event queue, seeded random
//! streams, links and a step budget.
//!
//! The kernel owns time and the queue; models never read a clock. A run pops one event at a
//! time, hands it to the world, and the world schedules what follows. The step budget bounds
//! every run, so a run always ends with a verdict.

pub mod link;
pub mod queue;
pub mod rng;
pub mod time;
pub mod wakeup;

pub use link::{DelayConfig, Delivery, Link};
pub use queue::EventQueue;
pub use rng::{RngStream, fnv1a64};
pub use time::{SimDuration, SimTime};
pub use wakeup::Wakeup;

/// Why a run stopped before its queue ran dry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// More steps than the budget allows: a livelock, or a budget set too low.
    #[error("step budget of {steps_max} exhausted at {now}")]
    StepBudgetExhausted {
        /// The budget.
        steps_max: u64,
        /// Simulated time when it ran out.
        now: SimTime,
    },
}

/// Simulated time, the event queue and a step budget.
pub struct Kernel<E> {
    now: SimTime,
    queue: EventQueue<E>,
    steps: u64,
    steps_max: u64,
}

impl<E> Kernel<E> {
    /// A kernel at time zero that allows at most `steps_max` steps.
    pub fn new(steps_max: u64) -> Kernel<E> {
        Kernel {
            now: SimTime::ZERO,
            queue: EventQueue::default(),
            steps: 0,
            steps_max,
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// How many events have been popped.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Schedules `event` at `at`, which must not be in the past.
    pub fn schedule_at(&mut self, at: SimTime, event: E) {
        assert!(at >= self.now, "scheduled in the past: {at} < {}", self.now);
        self.queue.push(at, event);
    }

    /// Schedules `event` after `delay`.
    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.queue.push(self.now + delay, event);
    }

    /// Pops the next event and moves time to it; `Ok(None)` when nothing is left.
    pub fn next_event(&mut self) -> Result<Option<E>, KernelError> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        if self.steps >= self.steps_max {
            return Err(KernelError::StepBudgetExhausted {
                steps_max: self.steps_max,
                now: self.now,
            });
        }
        let (at, event) = self.queue.pop().expect("queue is not empty");
        assert!(at >= self.now, "time went backwards");
        self.now = at;
        self.steps += 1;
        Ok(Some(event))
    }

    /// The time of the next queued event.
    pub fn next_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_advances_time_to_each_event() {
        let mut kernel = Kernel::new(10);
        kernel.schedule_in(SimDuration(5), 'a');
        kernel.schedule_in(SimDuration(2), 'b');
        assert_eq!(kernel.next_event(), Ok(Some('b')));
        assert_eq!(kernel.now(), SimTime(2));
        assert_eq!(kernel.next_event(), Ok(Some('a')));
        assert_eq!(kernel.now(), SimTime(5));
        assert_eq!(kernel.next_event(), Ok(None));
    }

    #[test]
    fn kernel_stops_at_the_step_budget() {
        let mut kernel = Kernel::new(1);
        kernel.schedule_in(SimDuration(1), ());
        kernel.schedule_in(SimDuration(1), ());
        assert_eq!(kernel.next_event(), Ok(Some(())));
        assert!(matches!(
            kernel.next_event(),
            Err(KernelError::StepBudgetExhausted { .. })
        ));
    }
}
