//! The trace: one record per step, and a stable hash of them all.
//!
//! A step is every delivered message and every fired timer: `{step, time_ms, actor, event}`.
//! The hash is FNV-1a 64 over postcard's compact encoding of each step (a specified, versioned
//! binary format), so it is the same whether or not a trace file is written, across runs,
//! builds and machines, as long as the events are: no floats, no map iteration order and no
//! addresses ever reach an event. JSON is formatted only for a JSON Lines sink; a timeline sink
//! renders each step on one line the way the golden traces read.

use std::fmt::Display;
use std::io::Write;

use serde::Serialize;

use crate::sim::SimTime;

/// FNV-1a 64's offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64's prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Where trace steps go, besides the hash.
pub enum TraceSink {
    /// One JSON object per line: `{"step", "time_ms", "actor", "event"}`.
    JsonLines(Box<dyn Write>),
    /// One readable line per step: `  1234ms  client-0      LIST rv="0"`.
    Timeline(Box<dyn Write>),
    /// The running hash after each step, handed to a function: where two runs part is the
    /// first step whose running hashes differ (what `run --check-determinism` compares).
    StepHashes(Box<dyn FnMut(TraceHash)>),
}

#[derive(Serialize)]
struct Line<'a, A: Serialize, E: Serialize> {
    step: u64,
    time_ms: u64,
    actor: &'a A,
    event: &'a E,
}

/// An FNV-1a 64 hash that postcard writes its encoding into.
struct Fnv(u64);

impl Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The running trace of one simulation.
pub struct Trace {
    steps: u64,
    hash: Fnv,
    sink: Option<TraceSink>,
    sink_error: Option<std::io::Error>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            steps: 0,
            hash: Fnv(FNV_OFFSET_BASIS),
            sink: None,
            sink_error: None,
        }
    }
}

impl Trace {
    /// A trace that also writes every step to `sink`.
    pub fn with_sink(sink: TraceSink) -> Trace {
        Trace {
            sink: Some(sink),
            ..Trace::default()
        }
    }

    /// Records one step.
    pub fn record<A, E>(&mut self, now: SimTime, actor: &A, event: &E)
    where
        A: Serialize + Display,
        E: Serialize + Display,
    {
        let line = Line {
            step: self.steps,
            time_ms: now.as_millis(),
            actor,
            event,
        };
        postcard::to_io(&line, &mut self.hash).expect("trace events always encode");
        if self.sink_error.is_none() {
            let written = match &mut self.sink {
                None => Ok(()),
                Some(TraceSink::JsonLines(out)) => serde_json::to_writer(&mut *out, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n")),
                Some(TraceSink::Timeline(out)) => {
                    let actor = actor.to_string();
                    writeln!(out, "{:>9}ms  {actor:<12}  {event}", line.time_ms)
                }
                Some(TraceSink::StepHashes(hand)) => {
                    hand(TraceHash(self.hash.0));
                    Ok(())
                }
            };
            self.sink_error = written.err();
        }
        self.steps += 1;
    }

    /// How many steps were recorded.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The hash of every step so far.
    pub fn hash(&self) -> TraceHash {
        TraceHash(self.hash.0)
    }

    /// Flushes the sink and returns the first error writing to it, if any.
    pub fn finish(&mut self) -> Option<std::io::Error> {
        let flushed = match &mut self.sink {
            Some(TraceSink::JsonLines(out) | TraceSink::Timeline(out)) => out.flush(),
            Some(TraceSink::StepHashes(_)) | None => Ok(()),
        };
        self.sink_error.take().or(flushed.err())
    }
}

/// The stable 64-bit hash of a trace, printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TraceHash(pub u64);

impl std::fmt::Display for TraceHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(shared: &Shared) -> String {
        String::from_utf8(shared.0.borrow().clone()).expect("utf-8")
    }

    #[test]
    fn each_step_is_one_json_object_or_one_timeline_line() {
        let json = Shared::default();
        let mut trace = Trace::with_sink(TraceSink::JsonLines(Box::new(json.clone())));
        trace.record(SimTime(5), &"etcd", &"put a");
        assert_eq!(
            text(&json),
            "{\"step\":0,\"time_ms\":5,\"actor\":\"etcd\",\"event\":\"put a\"}\n"
        );
        let timeline = Shared::default();
        let mut trace = Trace::with_sink(TraceSink::Timeline(Box::new(timeline.clone())));
        trace.record(SimTime(5), &"etcd", &"put a");
        assert_eq!(text(&timeline), "        5ms  etcd          put a\n");
    }

    #[test]
    fn the_hash_is_the_same_with_or_without_a_sink_and_moves_with_any_field() {
        let mut plain = Trace::default();
        let mut written = Trace::with_sink(TraceSink::JsonLines(Box::new(Shared::default())));
        for trace in [&mut plain, &mut written] {
            trace.record(SimTime(5), &"etcd", &"x");
        }
        assert_eq!(plain.hash(), written.hash());
        let mut later = Trace::default();
        later.record(SimTime(6), &"etcd", &"x");
        let mut other_actor = Trace::default();
        other_actor.record(SimTime(5), &"world", &"x");
        assert_ne!(plain.hash(), later.hash());
        let handed = Rc::new(RefCell::new(Vec::new()));
        let sink = handed.clone();
        let mut stepped = Trace::with_sink(TraceSink::StepHashes(Box::new(move |hash| {
            sink.borrow_mut().push(hash)
        })));
        stepped.record(SimTime(5), &"etcd", &"x");
        assert_eq!(*handed.borrow(), vec![plain.hash()]);
        assert_ne!(plain.hash(), other_actor.hash());
        assert_eq!(plain.hash().to_string().len(), 16);
    }
}
