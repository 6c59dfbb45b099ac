//! The pace at which one watch's HTTP handler writes to its client (`serveWatch` in
//! `endpoints/handlers/watch.go`): it encodes and writes one event at a time, so however many
//! events are ready, a stream sends at most a few each millisecond. A large initial state
//! therefore takes time to go out, and meanwhile the watcher's buffers fill with live events
//! (the common slow-watcher termination, `cacheWatcher.add`).

use crate::sim::{SimDuration, SimTime};

/// Events one watch writes per millisecond by default: 10,000 events a second, what encoding
/// and writing objects of a few kilobytes costs one handler goroutine.
pub const DEFAULT_WATCH_EVENTS_PER_MS: usize = 10;

/// One stream's write budget: `per_ms` events in each millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WatchWriter {
    per_ms: usize,
    /// The millisecond of the last write, and how many events went out in it.
    window: SimTime,
    written: usize,
}

impl WatchWriter {
    pub(crate) fn new(per_ms: usize) -> WatchWriter {
        assert!(per_ms >= 1, "a watch writes at least one event per ms");
        WatchWriter {
            per_ms,
            window: SimTime::ZERO,
            written: 0,
        }
    }

    /// How many events may still be written at `now`.
    pub(crate) fn allowance(&mut self, now: SimTime) -> usize {
        if now > self.window {
            self.window = now;
            self.written = 0;
        }
        self.per_ms - self.written
    }

    /// `count` events were written at the current window (after [`WatchWriter::allowance`]).
    pub(crate) fn wrote(&mut self, count: usize) {
        self.written += count;
        assert!(self.written <= self.per_ms, "wrote past the allowance");
    }

    /// When a stream that used its allowance at `now` may write again.
    pub(crate) fn next_write(&self, now: SimTime) -> SimTime {
        now + SimDuration::from_millis(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_refills_each_millisecond() {
        let mut writer = WatchWriter::new(3);
        assert_eq!(writer.allowance(SimTime(5)), 3);
        writer.wrote(3);
        assert_eq!(writer.allowance(SimTime(5)), 0);
        assert_eq!(writer.next_write(SimTime(5)), SimTime(6));
        assert_eq!(writer.allowance(SimTime(6)), 3);
        writer.wrote(1);
        assert_eq!(writer.allowance(SimTime(6)), 2);
    }

    #[test]
    #[should_panic(expected = "wrote past the allowance")]
    fn writing_past_the_allowance_is_a_bug() {
        let mut writer = WatchWriter::new(2);
        writer.allowance(SimTime(1));
        writer.wrote(3);
    }
}
