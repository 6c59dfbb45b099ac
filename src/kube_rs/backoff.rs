//! kube-rs's default watcher backoff with its randomness from the seeded generator.

use std::time::Duration;

use kube::runtime::utils::Backoff;
use tokio::time::Instant;

use crate::sim::RngStream;

/// The first delay (`DefaultBackoff`: backon's `ExponentialBuilder` from 800 ms).
const MIN_DELAY: Duration = Duration::from_millis(800);
/// The longest delay before jitter (30 s).
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A backoff unused this long starts again from the first delay (`ResetTimerBackoff`, 120 s).
const RESET_AFTER: Duration = Duration::from_secs(120);

/// Mirrors kube-runtime `DefaultBackoff`: delays from 800 ms doubling to 30 s, each plus a
/// jitter uniform in [0, delay) (backon `ExponentialBackoff` with jitter), reset after 120 s
/// without a backoff (`ResetTimerBackoff`) and by `StreamBackoff` on every success. The jitter
/// comes from a named stream of the run's seed, and the reset timer reads the tokio clock the
/// simulation drives (upstream's reads the wall clock).
pub struct SeededBackoff {
    rng: RngStream,
    current: Option<Duration>,
    last: Option<Instant>,
}

impl SeededBackoff {
    /// A backoff drawing its jitter from `rng`.
    pub fn new(rng: RngStream) -> SeededBackoff {
        SeededBackoff {
            rng,
            current: None,
            last: None,
        }
    }
}

impl Iterator for SeededBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) > RESET_AFTER)
        {
            self.current = None;
        }
        self.last = Some(now);
        let delay = match self.current {
            None => MIN_DELAY,
            Some(current) => (current * 2).min(MAX_DELAY),
        };
        self.current = Some(delay);
        let millis = delay.as_millis() as u64;
        Some(delay + Duration::from_millis(self.rng.below(millis)))
    }
}

impl Backoff for SeededBackoff {
    fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(seed: u64, count: usize) -> Vec<Duration> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let _context = runtime.enter();
        SeededBackoff::new(RngStream::new(seed, "backoff"))
            .take(count)
            .collect()
    }

    #[test]
    fn delays_double_from_800_ms_to_30_s_with_seeded_jitter() {
        let drawn = delays(1, 8);
        assert_eq!(drawn, delays(1, 8), "the same seed, the same delays");
        assert_ne!(drawn, delays(2, 8));
        let mut floor = MIN_DELAY;
        for delay in drawn {
            assert!(
                delay >= floor && delay < floor * 2,
                "{delay:?} from {floor:?}"
            );
            floor = (floor * 2).min(MAX_DELAY);
        }
    }
}
