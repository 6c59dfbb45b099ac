//! The reflector's retry delay (`delayHandler`, SPEC §3.1): exponential from 800 ms, doubling to
//! a cap of 30 s, with jitter 1.0 (each delay is uniform in `[d, 2d)`), and back to 800 ms once
//! 2 minutes pass without a backoff. Time and randomness come in as arguments.
//!
//! ```
//! use informer_sim::client::backoff::Backoff;
//! use informer_sim::sim::{RngStream, SimDuration, SimTime};
//!
//! let mut rng = RngStream::new(1, "backoff");
//! let mut backoff = Backoff::new();
//! let first = backoff.next_delay(SimTime(0), &mut rng);
//! assert!(first >= SimDuration(800) && first < SimDuration(1600));
//! ```

use crate::sim::{RngStream, SimDuration, SimTime};

/// The first delay (`defaultBackoffInit`).
pub const BACKOFF_INITIAL: SimDuration = SimDuration::from_millis(800);

/// The largest delay before jitter (`defaultBackoffMax`).
pub const BACKOFF_CAP: SimDuration = SimDuration::from_secs(30);

/// Without a backoff for longer than this, the next delay starts over (`defaultBackoffReset`).
pub const BACKOFF_RESET: SimDuration = SimDuration::from_secs(120);

/// The growth factor per backoff (`defaultBackoffFactor`).
pub const BACKOFF_FACTOR: u64 = 2;

/// Exponential backoff with jitter and reset, on simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before jitter that the next backoff uses.
    duration: SimDuration,
    /// When the last delay was handed out.
    last_backoff_at: Option<SimTime>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Backoff {
    /// A backoff that has not backed off yet.
    pub fn new() -> Backoff {
        Backoff {
            duration: BACKOFF_INITIAL,
            last_backoff_at: None,
        }
    }

    /// The next delay, starting at `now`; grows the following one.
    ///
    /// Mirrors the wait package's exponential backoff manager (`getNextBackoff`, `Backoff.Step`,
    /// `Jitter` with factor 1.0): reset after a quiet spell, hand out the current duration plus a
    /// random share of it, then double up to the cap.
    pub fn next_delay(&mut self, now: SimTime, rng: &mut RngStream) -> SimDuration {
        let quiet = self
            .last_backoff_at
            .is_some_and(|at| now.saturating_since(at) > BACKOFF_RESET);
        if quiet {
            self.duration = BACKOFF_INITIAL;
        }
        self.last_backoff_at = Some(now);
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
    fn backoff_doubles_to_thirty_seconds_and_resets_after_two_minutes() {
        let mut rng = RngStream::new(3, "backoff");
        let mut backoff = Backoff::new();
        let (mut now, mut backoff_at) = (SimTime(0), SimTime(0));
        let expected_bases = [800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000];
        for base in expected_bases {
            assert_eq!(backoff.base_delay(), SimDuration(base));
            backoff_at = now;
            let delay = backoff.next_delay(backoff_at, &mut rng);
            assert!(delay >= SimDuration(base) && delay < SimDuration(2 * base));
            now = now + delay;
        }
        // Exactly two minutes after the last backoff: not yet quiet for longer than the period.
        backoff_at = backoff_at + BACKOFF_RESET;
        let delay = backoff.next_delay(backoff_at, &mut rng);
        assert!(delay >= BACKOFF_CAP);
        // More than two minutes without a backoff: start over at 800 ms.
        backoff_at = backoff_at + BACKOFF_RESET + SimDuration(1);
        let delay = backoff.next_delay(backoff_at, &mut rng);
        assert!(delay >= BACKOFF_INITIAL && delay < BACKOFF_INITIAL + BACKOFF_INITIAL);
        assert_eq!(backoff.base_delay(), SimDuration(1600));
    }

    #[test]
    fn backoff_jitter_comes_from_the_stream() {
        let mut first = Backoff::new();
        let mut second = Backoff::new();
        let delays = |backoff: &mut Backoff, seed| {
            let mut rng = RngStream::new(seed, "backoff");
            (0..5)
                .map(|step| backoff.next_delay(SimTime(step), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(&mut first, 9), delays(&mut second, 9));
    }
}
