//! The event queue: events ordered by (simulated time, sequence number).
//!
//! The sequence number is the order of scheduling, so two events due at the same millisecond
//! run in the order they were scheduled. Randomness enters through the delays that callers draw
//! from their streams, never through the queue itself.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// A min-queue of events by (time, sequence).
///
/// The heap orders small `(time, sequence, slot)` triples; the events themselves stay put in a
/// slab until popped, so sifting never moves a large event.
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    slots: Vec<Option<E>>,
    free: Vec<usize>,
    next_sequence: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_sequence: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Queues `event` to happen at `at`.
    pub fn push(&mut self, at: SimTime, event: E) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((at, sequence, slot)));
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let event = self.slots[slot]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(slot);
        Some((at, event))
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pop_in_time_order_then_schedule_order() {
        let mut queue = EventQueue::default();
        queue.push(SimTime(20), "late");
        queue.push(SimTime(10), "first");
        queue.push(SimTime(10), "second");
        assert_eq!(queue.pop(), Some((SimTime(10), "first")));
        assert_eq!(queue.pop(), Some((SimTime(10), "second")));
        assert_eq!(queue.pop(), Some((SimTime(20), "late")));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn freed_slots_are_reused_without_disturbing_the_order() {
        let mut queue = EventQueue::default();
        for round in 0..3u64 {
            queue.push(SimTime(100 - round), round);
            queue.push(SimTime(100 - round), round + 10);
            assert_eq!(queue.pop(), Some((SimTime(100 - round), round)));
        }
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop(), Some((SimTime(98), 12)));
        assert_eq!(queue.pop(), Some((SimTime(99), 11)));
        assert_eq!(queue.pop(), Some((SimTime(100), 10)));
        assert!(queue.is_empty());
    }
}
