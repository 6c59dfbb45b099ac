//! The re-arm protocol of a model's timer, written once: a model says when it next wants to
//! be woken (`poll_timeout`), the caller keeps at most one kernel event per earliest time, and
//! a stale event (the model's deadline moved) finds nothing to do.

use super::time::SimTime;

/// The kernel event scheduled for one model's timer, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakeup {
    scheduled: Option<SimTime>,
}

impl Wakeup {
    /// The model wants to be woken at `at`: returns the time to schedule a kernel event at,
    /// or `None` when an event at or before `at` is already scheduled.
    pub fn arm(&mut self, at: SimTime) -> Option<SimTime> {
        if self.scheduled.is_some_and(|scheduled| scheduled <= at) {
            return None;
        }
        self.scheduled = Some(at);
        Some(at)
    }

    /// A kernel event fired at `now`: an armed time that has passed is spent.
    pub fn fire(&mut self, now: SimTime) {
        if self.scheduled.is_some_and(|at| at <= now) {
            self.scheduled = None;
        }
    }

    /// Forgets the scheduled event (its model was replaced).
    pub fn reset(&mut self) {
        self.scheduled = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_earliest_time() {
        let mut wakeup = Wakeup::default();
        assert_eq!(wakeup.arm(SimTime(10)), Some(SimTime(10)));
        assert_eq!(
            wakeup.arm(SimTime(12)),
            None,
            "an earlier event is scheduled"
        );
        assert_eq!(
            wakeup.arm(SimTime(5)),
            Some(SimTime(5)),
            "an earlier need re-arms"
        );
        wakeup.fire(SimTime(4));
        assert_eq!(wakeup.arm(SimTime(6)), None, "not fired yet");
        wakeup.fire(SimTime(5));
        assert_eq!(wakeup.arm(SimTime(6)), Some(SimTime(6)));
        wakeup.reset();
        assert_eq!(wakeup.arm(SimTime(7)), Some(SimTime(7)));
    }
}
