//! Random op sequences against a [`RateLimitingQueue`] with the default controller limiter,
//! checking after every op the invariants of the module doc against a shadow of what the
//! workers hold and which adds are still owed a run.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{
    DefaultControllerRateLimiter, Get, RateLimitingQueue, default_controller_rate_limiter,
};
use crate::bug::Bugs;
use crate::sim::{SimDuration, SimTime};

type Item = u8;
type TestQueue = RateLimitingQueue<Item, DefaultControllerRateLimiter<Item>>;

#[derive(Clone, Debug)]
enum Op {
    Add(Item),
    AddAfter(Item, u64),
    AddRateLimited(Item),
    Forget(Item),
    Get,
    /// `done` of the held item at this index (modulo how many are held): always paired.
    Done(usize),
    /// Time moves on by this many milliseconds, then `handle_timeout`.
    Advance(u64),
    /// Time moves to `poll_timeout`, then `handle_timeout`.
    Timeout,
    ShutDown,
    ShutDownWithDrain,
}

fn op() -> impl Strategy<Value = Op> {
    let item = 0..5u8;
    // Shut downs are rare, so most sequences run a while before one; `drain` shuts down last.
    prop_oneof![
        12 => item.clone().prop_map(Op::Add),
        6 => (item.clone(), 0..50u64).prop_map(|(item, delay)| Op::AddAfter(item, delay)),
        9 => item.clone().prop_map(Op::AddRateLimited),
        3 => item.prop_map(Op::Forget),
        15 => Just(Op::Get),
        12 => (0..4usize).prop_map(Op::Done),
        6 => (0..200u64).prop_map(Op::Advance),
        6 => Just(Op::Timeout),
        1 => Just(Op::ShutDown),
        1 => Just(Op::ShutDownWithDrain),
    ]
}

/// What the workers hold, which accepted adds are still owed a run, and the clock.
struct Shadow {
    queue: TestQueue,
    held: Vec<Item>,
    owed: BTreeSet<Item>,
    now: SimTime,
}

impl Shadow {
    fn new() -> Shadow {
        Shadow {
            queue: RateLimitingQueue::new(default_controller_rate_limiter(), Bugs::NONE),
            held: Vec::new(),
            owed: BTreeSet::new(),
            now: SimTime::ZERO,
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let shutting_down = self.queue.shutting_down();
        match op {
            Op::Add(item) => {
                self.queue.add(item);
                self.owe_unless(shutting_down, item);
            }
            Op::AddAfter(item, delay) => self.add_after(item, SimDuration(delay))?,
            Op::AddRateLimited(item) => {
                let requeues = self.queue.num_requeues(&item);
                let delay = self.queue.add_rate_limited(item, self.now);
                prop_assert_eq!(self.queue.num_requeues(&item), requeues + 1);
                prop_assert!(delay >= SimDuration::from_millis(5), "{}", delay);
                if !shutting_down {
                    prop_assert!(
                        self.queue.delaying_queue().ready_at(&item) <= Some(self.now + delay)
                    );
                }
            }
            Op::Forget(item) => {
                self.queue.forget(&item);
                prop_assert_eq!(self.queue.num_requeues(&item), 0);
            }
            Op::Get => self.get()?,
            Op::Done(index) => {
                if !self.held.is_empty() {
                    let item = self.held.remove(index % self.held.len());
                    self.queue.done(&item);
                }
            }
            Op::Advance(ms) => self.handle_timeout(self.now + SimDuration(ms))?,
            Op::Timeout => {
                if let Some(at) = self.queue.poll_timeout() {
                    self.handle_timeout(at)?;
                }
            }
            Op::ShutDown => {
                self.queue.shut_down();
                prop_assert!(self.queue.is_drained());
            }
            Op::ShutDownWithDrain => {
                let drained = self.queue.shut_down_with_drain();
                prop_assert_eq!(drained, self.held.is_empty());
            }
        }
        self.check()
    }

    fn owe_unless(&mut self, shutting_down: bool, item: Item) {
        if !shutting_down {
            self.owed.insert(item);
        }
    }

    fn add_after(&mut self, item: Item, delay: SimDuration) -> Result<(), TestCaseError> {
        let shutting_down = self.queue.shutting_down();
        let earlier = self.queue.delaying_queue().ready_at(&item);
        self.queue.add_after(item, self.now, delay);
        if delay == SimDuration::ZERO {
            self.owe_unless(shutting_down, item);
            prop_assert_eq!(self.queue.delaying_queue().ready_at(&item), earlier);
        } else if !shutting_down {
            let expected = earlier.map_or(self.now + delay, |at| at.min(self.now + delay));
            prop_assert_eq!(self.queue.delaying_queue().ready_at(&item), Some(expected));
        }
        Ok(())
    }

    fn get(&mut self) -> Result<(), TestCaseError> {
        let queued = self.queue.len();
        match self.queue.get() {
            Get::Item(item) => {
                prop_assert!(!self.held.contains(&item), "{} in two workers", item);
                prop_assert!(self.owed.remove(&item), "{} handed out but not owed", item);
                self.held.push(item);
            }
            Get::Empty => prop_assert!(queued == 0 && !self.queue.shutting_down()),
            Get::ShutDown => prop_assert!(queued == 0 && self.queue.shutting_down()),
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: SimTime) -> Result<(), TestCaseError> {
        let ready: Vec<Item> = self
            .queue
            .delaying_queue()
            .waiting()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, item)| *item)
            .collect();
        self.now = now;
        self.queue.handle_timeout(now);
        for item in ready {
            self.owed.insert(item);
            prop_assert_eq!(self.queue.delaying_queue().ready_at(&item), None);
        }
        if let Some(next) = self.queue.poll_timeout() {
            prop_assert!(
                next > now,
                "an item ready at {} left waiting at {}",
                next,
                now
            );
        }
        Ok(())
    }

    /// The module doc's invariants, from getters only, plus the self-check.
    fn check(&self) -> Result<(), TestCaseError> {
        let queue = self.queue.delaying_queue().queue();
        prop_assert_eq!(self.queue.check_invariants(), Ok(()));
        let held: BTreeSet<&Item> = self.held.iter().collect();
        prop_assert_eq!(held.len(), self.held.len(), "one_item_one_worker");
        prop_assert!(
            held.into_iter().eq(queue.processing()),
            "processing is what is held"
        );
        let queued: BTreeSet<&Item> = queue.queued().collect();
        prop_assert_eq!(queued.len(), queue.len(), "no_duplicate_in_queue");
        prop_assert!(
            self.owed.iter().eq(queue.dirty()),
            "processed_after_last_add"
        );
        Ok(())
    }

    /// Workers finish what they hold, the queue shuts down, and workers drain it.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(item) = self.held.pop() {
            self.queue.done(&item);
        }
        self.queue.shut_down();
        for _ in 0..=Item::MAX {
            match self.queue.get() {
                Get::Item(item) => {
                    prop_assert!(self.owed.remove(&item));
                    self.queue.done(&item);
                }
                Get::Empty => prop_assert!(false, "empty while shutting down"),
                Get::ShutDown => break,
            }
        }
        prop_assert_eq!(self.queue.get(), Get::ShutDown);
        prop_assert!(self.owed.is_empty(), "never processed: {:?}", self.owed);
        prop_assert!(self.queue.is_drained());
        prop_assert_eq!(self.queue.delaying_queue().queue().processing().count(), 0);
        Ok(())
    }
}

proptest! {
    #[test]
    fn invariants_hold_after_every_op_and_every_add_is_processed(
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut shadow = Shadow::new();
        for op in ops {
            shadow.apply(op)?;
        }
        shadow.drain()?;
    }
}
