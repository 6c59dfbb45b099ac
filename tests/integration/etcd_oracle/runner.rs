//! Runs one sequence against the fake and another side (real etcd, or a recording of it) and
//! compares every answer and every watch stream.

use std::collections::VecDeque;
use std::fmt;

use informer_sim::bug::Bugs;
use informer_sim::etcd::{
    Etcd, EtcdRelease, Op, TxnRequest, WatchId, WatchResponse, WatchResponseKind,
};

use super::model::{Reply, Session, Step, StreamItem};

/// Something that answers steps like etcd.
pub trait Side {
    /// Runs one step.
    fn apply(&mut self, step: &Step) -> Reply;

    /// The items of watch `watch` so far. A side that receives them asynchronously waits
    /// (bounded) until it has `expected` of them or the stream ended; `usize::MAX` asks for
    /// the whole stream of a watch that is over.
    fn stream(&mut self, watch: usize, expected: usize) -> Vec<StreamItem>;
}

/// The first point where the two sides disagreed.
#[derive(Debug)]
pub struct Divergence {
    /// The steps run, the last one being where they disagreed.
    pub steps: Vec<Step>,
    /// What disagreed.
    pub what: String,
    /// The fake's answer.
    pub fake: String,
    /// The other side's answer.
    pub other: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} after {} steps", self.what, self.steps.len())?;
        for (index, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {index:3} {step:?}")?;
        }
        writeln!(f, "  fake:  {}", self.fake)?;
        write!(f, "  other: {}", self.other)
    }
}

/// A sequence can never run longer than this (the generator stops far earlier).
const MAX_STEPS: usize = 10_000;

/// Runs the steps `next` gives (it sees the fake's state) on both sides; returns the steps.
pub fn run(
    fake: &mut FakeSide,
    other: &mut impl Side,
    mut next: impl FnMut(&Etcd) -> Option<Step>,
) -> Result<Vec<Step>, Box<Divergence>> {
    let mut steps = Vec::new();
    while let Some(step) = next(&fake.etcd) {
        assert!(steps.len() < MAX_STEPS, "runaway sequence");
        steps.push(step.clone());
        // Before anything whose outcome depends on a watch being caught up, both streams must
        // have delivered the same items (real etcd delivers asynchronously).
        let settle = match step {
            Step::Compact { .. } | Step::ProgressTick => 0..fake.streams.len(),
            Step::Cancel { watch } | Step::RequestProgress { watch } => watch..watch + 1,
            _ => 0..0,
        };
        for watch in settle {
            let expected = fake.streams[watch].len();
            compare_stream(fake, other, watch, expected, &steps)?;
        }
        let expected = fake.apply(&step);
        let actual = other.apply(&step);
        if expected != actual {
            return Err(divergence(&steps, "reply", &expected, &actual));
        }
    }
    for watch in 0..fake.streams.len() {
        compare_stream(fake, other, watch, usize::MAX, &steps)?;
    }
    Ok(steps)
}

fn compare_stream(
    fake: &mut FakeSide,
    other: &mut impl Side,
    watch: usize,
    wanted: usize,
    steps: &[Step],
) -> Result<(), Box<Divergence>> {
    let expected = fake.stream(watch, wanted);
    let actual = other.stream(watch, wanted);
    if expected == actual {
        Ok(())
    } else {
        let what = format!("watch {watch} stream");
        Err(divergence(steps, &what, &expected, &actual))
    }
}

fn divergence(
    steps: &[Step],
    what: &str,
    fake: &impl fmt::Debug,
    other: &impl fmt::Debug,
) -> Box<Divergence> {
    Box::new(Divergence {
        steps: steps.to_vec(),
        what: what.to_owned(),
        fake: format!("{fake:?}"),
        other: format!("{other:?}"),
    })
}

/// The fake etcd as a side: a fresh store per sequence, so watch `n` has id `n`. It behaves
/// as etcd 3.4, the release of the real etcd it is compared with (Debian's 3.4.23).
pub struct FakeSide {
    etcd: Etcd,
    streams: Vec<Vec<StreamItem>>,
}

impl Default for FakeSide {
    fn default() -> Self {
        FakeSide {
            etcd: Etcd::new(EtcdRelease::V3_4, Bugs::NONE),
            streams: Vec::new(),
        }
    }
}

impl FakeSide {
    fn drain_responses(&mut self) {
        while let Some(WatchResponse {
            watch_id,
            header_revision,
            kind,
        }) = self.etcd.poll_response()
        {
            let stream = &mut self.streams[watch_id as usize];
            match kind {
                WatchResponseKind::Created => stream.push(StreamItem::Created {
                    revision: header_revision,
                }),
                WatchResponseKind::Events(events) => {
                    stream.extend(events.into_iter().map(StreamItem::Event))
                }
                WatchResponseKind::Progress => stream.push(StreamItem::Progress {
                    revision: header_revision,
                }),
                WatchResponseKind::Compacted { compact_revision } => {
                    stream.push(StreamItem::Compacted { compact_revision })
                }
                WatchResponseKind::Canceled => stream.push(StreamItem::Canceled),
            }
        }
    }
}

fn one_op_txn(op: Op) -> TxnRequest {
    TxnRequest {
        compare: vec![],
        success: vec![op],
        failure: vec![],
    }
}

impl Side for FakeSide {
    fn apply(&mut self, step: &Step) -> Reply {
        let etcd = &mut self.etcd;
        let reply = match step {
            Step::Put {
                key,
                value,
                prev_kv,
            } => Reply::Txn(etcd.txn(&one_op_txn(Op::Put {
                key: key.clone(),
                value: value.clone(),
                prev_kv: *prev_kv,
            }))),
            Step::Delete { range, prev_kv } => Reply::Txn(etcd.txn(&one_op_txn(Op::DeleteRange {
                range: range.clone(),
                prev_kv: *prev_kv,
            }))),
            Step::Txn(request) => Reply::Txn(etcd.txn(request)),
            Step::Range(request) => Reply::Range(etcd.range(request)),
            Step::Compact { revision } => Reply::Compact(etcd.compact(*revision)),
            Step::Watch(request) => {
                self.streams.push(Vec::new());
                let id = etcd.watch(request.clone());
                assert_eq!(id, self.streams.len() as WatchId - 1, "fresh store");
                Reply::Streamed
            }
            Step::Cancel { watch } => {
                etcd.cancel_watch(*watch as WatchId).expect("open watch");
                Reply::Streamed
            }
            Step::RequestProgress { watch } => {
                etcd.request_progress(*watch as WatchId)
                    .expect("open watch");
                Reply::Streamed
            }
            Step::ProgressTick => {
                etcd.progress_tick();
                Reply::Streamed
            }
        };
        self.drain_responses();
        reply
    }

    fn stream(&mut self, watch: usize, _expected: usize) -> Vec<StreamItem> {
        self.streams[watch].clone()
    }
}

/// A recorded real etcd session as a side: it answers with what real etcd answered.
pub struct RecordedSide {
    replies: VecDeque<Reply>,
    streams: Vec<Vec<StreamItem>>,
}

impl RecordedSide {
    /// The side that answers as `session` was answered, and the steps to run.
    pub fn new(session: Session) -> (RecordedSide, VecDeque<Step>) {
        let (steps, replies) = session
            .exchanges
            .into_iter()
            .map(|exchange| (exchange.step, exchange.reply))
            .unzip();
        let side = RecordedSide {
            replies,
            streams: session.streams,
        };
        (side, steps)
    }
}

impl Side for RecordedSide {
    fn apply(&mut self, _step: &Step) -> Reply {
        self.replies.pop_front().expect("one reply per step")
    }

    /// The recorded stream up to where the fake should be by now.
    fn stream(&mut self, watch: usize, expected: usize) -> Vec<StreamItem> {
        let stream = self.streams.get(watch).map_or(&[][..], Vec::as_slice);
        stream[..expected.min(stream.len())].to_vec()
    }
}
