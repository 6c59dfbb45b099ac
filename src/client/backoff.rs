//! The reflector's retry delay (`delayHandler`, SPEC §3.1): exponential from 800 ms, doubling to
//! a cap of 30 s, with jitter 1.0 (each delay is uniform in `[d, 2d)`), and back to 800 ms every
//! 2 minutes, counted from the last reset (`wait.Backoff.DelayWithReset`, cg@b5668cea2). Time
//! and randomness come in as arguments.
//!
//! ```
//! use informer_sim::client::backoff::Backoff;
//! use informer_sim::sim::{RngStream, SimDuration, SimTime};
//!
//! let mut rng = RngStream::new(1, "backoff");
//! let mut backoff = Backoff::new(SimTime(0));
//! let first = backoff.next_delay(SimTime(0), &mut rng);
//! assert!(first >= SimDuration(800) && first < SimDuration(1600));
//! ```

use crate::sim::{RngStream, SimDuration, SimTime};

/// The first delay (`defaultBackoffInit`).
pub const BACKOFF_INITIAL: SimDuration = SimDuration::from_millis(800);

/// The largest delay before jitter (`defaultBackoffMax`).
pub const BACKOFF_CAP: SimDuration = SimDuration::from_secs(30);

/// The next delay starts over once this long has passed since the last reset
/// (`defaultBackoffReset`).
pub const BACKOFF_RESET: SimDuration = SimDuration::from_secs(120);

/// The growth factor per backoff (`defaultBackoffFactor`).
pub const BACKOFF_FACTOR: u64 = 2;

/// Exponential backoff with jitter and reset, on simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before jitter that the next backoff uses.
    duration: SimDuration,
    /// When the backoff last started over (`backoffManager.lastStart`): its creation, then
    /// each reset.
    last_reset_at: SimTime,
}

impl Backoff {
    /// A backoff created at `now` that has not backed off yet.
    pub fn new(now: SimTime) -> Backoff {
        Backoff {
            duration: BACKOFF_INITIAL,
            last_reset_at: now,
        }
    }

    /// The next delay, starting at `now`; grows the following one.
    ///
    /// Mirrors the wait package's `backoffManager.Step` (`Backoff.Step`, `Jitter` with factor
    /// 1.0): start over when the last reset is more than the reset interval old, hand out the
    /// current duration plus a random share of it, then double up to the cap. Unlike the
    /// deprecated manager, a recent backoff does not hold off the reset.
    pub fn next_delay(&mut self, now: SimTime, rng: &mut RngStream) -> SimDuration {
        if now.saturating_since(self.last_reset_at) > BACKOFF_RESET {
            self.duration = BACKOFF_INITIAL;
            self.last_reset_at = now;
        }
        let base = self.duration;
        self.duration = SimDuration(base.as_millis() * BACKOFF_FACTOR).min(BACKOFF_CAP);
        assert!(base.as_millis() > 0, "a backoff never waits zero");
        let delay = base + SimDuration(rng.below(base.as_millis()));
        assert!(delay < base + base, "jitter stays below the base delay");
        delay
    }

    /// The delay before jitter that the next backoff will use.
    pub fn base_delay(&self) -> SimDuration {
        self.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets_every_two_minutes() {
        let mut rng = RngStream::new(3, "backoff");
        let mut backoff = Backoff::new(SimTime(0));
        let expected_bases = [800, 1600, 3200, 6400, 12_800, 25_600, 30_000];
        for (step, base) in expected_bases.into_iter().enumerate() {
            assert_eq!(backoff.base_delay(), SimDuration(base));
            let delay = backoff.next_delay(SimTime(step as u64 * 1_000), &mut rng);
            assert!(delay >= SimDuration(base) && delay < SimDuration(2 * base));
        }
        // Exactly two minutes after the creation: not yet more than the interval.
        let delay = backoff.next_delay(SimTime(0) + BACKOFF_RESET, &mut rng);
        assert!(delay >= BACKOFF_CAP);
        // Past it: start over at 800 ms, though the last backoff was a moment ago.
        let reset_at = SimTime(0) + BACKOFF_RESET + SimDuration(1);
        let delay = backoff.next_delay(reset_at, &mut rng);
        assert!(delay >= BACKOFF_INITIAL && delay < BACKOFF_INITIAL + BACKOFF_INITIAL);
        assert_eq!(backoff.base_delay(), SimDuration(1600));
        // The interval now counts from that reset, not from the last backoff.
        backoff.next_delay(reset_at + BACKOFF_RESET, &mut rng);
        assert_eq!(backoff.base_delay(), SimDuration(3200), "no reset yet");
        let delay = backoff.next_delay(reset_at + BACKOFF_RESET + SimDuration(1), &mut rng);
        assert!(delay < BACKOFF_INITIAL + BACKOFF_INITIAL, "reset again");
    }

    #[test]
    fn backoff_jitter_comes_from_the_stream() {
        let mut first = Backoff::new(SimTime(0));
        let mut second = Backoff::new(SimTime(0));
        let delays = |backoff: &mut Backoff, seed| {
            let mut rng = RngStream::new(seed, "backoff");
            (0..5)
                .map(|step| backoff.next_delay(SimTime(step), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(&mut first, 9), delays(&mut second, 9));
    }
}
