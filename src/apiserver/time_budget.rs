//! The dispatch time budget (`as: pkg/storage/cacher/time_budget.go`).
//!
//! When some watchers cannot take an event without blocking, the cacher waits for them, but
//! only as long as a shared budget allows; the watchers still blocked when it runs out are
//! terminated (SPEC §2.6, §8 B12). The budget refills by 50 ms per second of simulated time and
//! holds at most 100 ms; whatever a dispatch did not use goes back.

use crate::sim::{SimDuration, SimTime};

/// Budget regained per second of simulated time (`refresh` in `newTimeBudget`).
pub const TIME_BUDGET_REFRESH_PER_SECOND: SimDuration = SimDuration::from_millis(50);

/// The most budget that can accumulate (`maxBudget`).
pub const TIME_BUDGET_MAX: SimDuration = SimDuration::from_millis(100);

/// The shared budget for blocking dispatches.
///
/// Kept in microseconds so that frequent small refills (every 10 ms gives 0.5 ms) are not lost
/// to rounding; handed out in whole milliseconds, the remainder staying in the budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeBudget {
    budget_us: u64,
    budget_us_max: u64,
    refresh_us_per_second: u64,
    last_refresh: SimTime,
}

impl TimeBudget {
    /// An empty budget at `now` with the upstream refill rate and cap (`newTimeBudget`).
    pub fn new(now: SimTime) -> TimeBudget {
        TimeBudget {
            budget_us: 0,
            budget_us_max: TIME_BUDGET_MAX.as_millis() * 1000,
            refresh_us_per_second: TIME_BUDGET_REFRESH_PER_SECOND.as_millis() * 1000,
            last_refresh: now,
        }
    }

    /// Refills the budget for the time since the last call and takes all of it
    /// (`timeBudget.takeAvailable`).
    pub fn take_available(&mut self, now: SimTime) -> SimDuration {
        self.refresh(now);
        let available_ms = self.budget_us / 1000;
        self.budget_us %= 1000;
        assert!(
            available_ms <= TIME_BUDGET_MAX.as_millis(),
            "budget above its cap"
        );
        SimDuration::from_millis(available_ms)
    }

    /// Gives back what a dispatch did not spend, up to the cap (`timeBudget.returnUnused`).
    pub fn return_unused(&mut self, now: SimTime, unused: SimDuration) {
        self.refresh(now);
        self.budget_us = (self.budget_us + unused.as_millis() * 1000).min(self.budget_us_max);
        assert!(self.budget_us <= self.budget_us_max, "budget above its cap");
    }

    fn refresh(&mut self, now: SimTime) {
        assert!(
            now >= self.last_refresh,
            "time went backwards: {now} < {}",
            self.last_refresh
        );
        let elapsed_ms = now.saturating_since(self.last_refresh).as_millis();
        let refill_us = elapsed_ms.saturating_mul(self.refresh_us_per_second) / 1000;
        self.budget_us = self
            .budget_us
            .saturating_add(refill_us)
            .min(self.budget_us_max);
        self.last_refresh = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_starts_empty_and_refills_fifty_ms_per_second() {
        let mut budget = TimeBudget::new(SimTime(0));
        assert_eq!(budget.take_available(SimTime(0)), SimDuration::ZERO);
        assert_eq!(
            budget.take_available(SimTime(1000)),
            SimDuration::from_millis(50)
        );
        assert_eq!(budget.take_available(SimTime(1000)), SimDuration::ZERO);
    }

    #[test]
    fn budget_is_capped_at_one_hundred_ms() {
        let mut budget = TimeBudget::new(SimTime(0));
        assert_eq!(budget.take_available(SimTime(60_000)), TIME_BUDGET_MAX);
        budget.return_unused(SimTime(60_000), SimDuration::from_millis(500));
        assert_eq!(budget.take_available(SimTime(60_000)), TIME_BUDGET_MAX);
    }

    #[test]
    fn small_refills_add_up_instead_of_rounding_away() {
        let mut budget = TimeBudget::new(SimTime(0));
        let mut taken_ms = 0;
        for step in 1..=100 {
            taken_ms += budget.take_available(SimTime(step * 10)).as_millis();
        }
        assert_eq!(
            taken_ms, 50,
            "one second in 10 ms steps refills exactly 50 ms"
        );
    }

    #[test]
    fn unused_budget_comes_back() {
        let mut budget = TimeBudget::new(SimTime(0));
        let taken = budget.take_available(SimTime(2000));
        assert_eq!(taken, SimDuration::from_millis(100));
        budget.return_unused(SimTime(2000), SimDuration::from_millis(30));
        assert_eq!(
            budget.take_available(SimTime(2000)),
            SimDuration::from_millis(30)
        );
    }
}
