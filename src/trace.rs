//! The trace: one JSON object per step, and a stable hash of them all.
//!
//! A step is every delivered message and every fired timer: `{"step", "time_ms", "actor",
//! "event"}`. The hash is FNV-1a over the canonical JSON Lines text (each line plus `\n`), so it
//! is the same across runs, builds and machines as long as the events are: no floats, no map
//! iteration order and no addresses ever reach an event.

use std::io::Write;

use serde::Serialize;

use crate::sim::{SimTime, fnv1a64};

/// Where trace lines go, besides the hash.
pub trait TraceSink {
    /// Takes one complete JSON line (without the newline).
    fn line(&mut self, line: &str) -> std::io::Result<()>;
}

impl<W: Write> TraceSink for W {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        self.write_all(line.as_bytes())?;
        self.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct Line<'a, E: Serialize> {
    step: u64,
    time_ms: u64,
    actor: &'a str,
    event: &'a E,
}

/// The running trace of one simulation.
pub struct Trace {
    steps: u64,
    hash: u64,
    buffer: Vec<u8>,
    sink: Option<Box<dyn TraceSink>>,
    sink_error: Option<std::io::Error>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            steps: 0,
            hash: fnv1a64(b""),
            buffer: Vec::with_capacity(256),
            sink: None,
            sink_error: None,
        }
    }
}

impl Trace {
    /// A trace that also writes every line to `sink`.
    pub fn with_sink(sink: Box<dyn TraceSink>) -> Trace {
        Trace {
            sink: Some(sink),
            ..Trace::default()
        }
    }

    /// Records one step.
    pub fn record<E: Serialize>(&mut self, now: SimTime, actor: &str, event: &E) {
        self.buffer.clear();
        let line = Line {
            step: self.steps,
            time_ms: now.as_millis(),
            actor,
            event,
        };
        serde_json::to_writer(&mut self.buffer, &line).expect("trace events always serialize");
        self.buffer.push(b'\n');
        for byte in &self.buffer {
            self.hash ^= u64::from(*byte);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        if let Some(sink) = self.sink.as_mut()
            && self.sink_error.is_none()
        {
            let text =
                std::str::from_utf8(&self.buffer[..self.buffer.len() - 1]).expect("json is utf-8");
            if let Err(error) = sink.line(text) {
                self.sink_error = Some(error);
            }
        }
        self.steps += 1;
    }

    /// How many steps were recorded.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> TraceHash {
        TraceHash(self.hash)
    }

    /// The first error writing to the sink, if any.
    pub fn take_sink_error(&mut self) -> Option<std::io::Error> {
        self.sink_error.take()
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
    struct Shared(Rc<RefCell<Vec<String>>>);
    impl TraceSink for Shared {
        fn line(&mut self, line: &str) -> std::io::Result<()> {
            self.0.borrow_mut().push(line.to_owned());
            Ok(())
        }
    }

    #[test]
    fn each_step_is_one_json_object() {
        let lines = Shared::default();
        let mut trace = Trace::with_sink(Box::new(lines.clone()));
        trace.record(SimTime(5), "etcd", &serde_json::json!({"put": "a"}));
        assert_eq!(
            lines.0.borrow()[0],
            r#"{"step":0,"time_ms":5,"actor":"etcd","event":{"put":"a"}}"#
        );
    }

    #[test]
    fn the_hash_is_fnv_of_the_json_lines() {
        let mut trace = Trace::default();
        trace.record(SimTime(5), "etcd", &"x");
        let expected = fnv1a64(b"{\"step\":0,\"time_ms\":5,\"actor\":\"etcd\",\"event\":\"x\"}\n");
        assert_eq!(trace.hash(), TraceHash(expected));
        assert_eq!(trace.hash().to_string().len(), 16);
    }
}
