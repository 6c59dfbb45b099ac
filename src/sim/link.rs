//! Links: ordered, delayed, breakable connections between two actors.
//!
//! A link models one TCP-like stream (an etcd watch, an HTTP watch response). Messages on it
//! arrive in the order they were sent, each after a random delay; a disconnect bumps the link's
//! epoch, and every message still in flight from an older epoch is dropped on arrival.

use serde::{Deserialize, Serialize};

use super::rng::RngStream;
use super::time::{SimDuration, SimTime};

/// How long a message takes on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelayConfig {
    /// The shortest delay, in milliseconds.
    pub delay_ms_min: u64,
    /// The longest delay, in milliseconds.
    pub delay_ms_max: u64,
}

impl Default for DelayConfig {
    fn default() -> Self {
        DelayConfig {
            delay_ms_min: 1,
            delay_ms_max: 5,
        }
    }
}

/// One ordered stream between two actors.
#[derive(Clone, Debug)]
pub struct Link {
    delay: DelayConfig,
    epoch: u64,
    last_arrival: SimTime,
    connected: bool,
}

/// A message's ticket for a link: when it arrives, and the epoch it was sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// When the message reaches the far end.
    pub at: SimTime,
    /// The link epoch at send time; a message from an older epoch is dropped on arrival.
    pub epoch: u64,
}

impl Link {
    /// A connected link with the given delays.
    pub fn new(delay: DelayConfig) -> Link {
        assert!(
            delay.delay_ms_min <= delay.delay_ms_max,
            "delay range is empty"
        );
        Link {
            delay,
            epoch: 0,
            last_arrival: SimTime::ZERO,
            connected: true,
        }
    }

    /// Sends one message at `now`: when and in which epoch it arrives, or `None` if the link is
    /// down. Arrival times never decrease, so messages stay in order.
    pub fn send(&mut self, now: SimTime, rng: &mut RngStream) -> Option<Delivery> {
        if !self.connected {
            return None;
        }
        let delay = rng.between(self.delay.delay_ms_min, self.delay.delay_ms_max);
        let at = (now + SimDuration(delay)).max(self.last_arrival);
        self.last_arrival = at;
        Some(Delivery {
            at,
            epoch: self.epoch,
        })
    }

    /// Sends one message that must arrive no sooner than `extra` after the usual delay: a
    /// latency spike. Later messages queue behind it.
    pub fn send_delayed(
        &mut self,
        now: SimTime,
        extra: SimDuration,
        rng: &mut RngStream,
    ) -> Option<Delivery> {
        let mut delivery = self.send(now, rng)?;
        delivery.at = delivery.at + extra;
        self.last_arrival = delivery.at;
        Some(delivery)
    }

    /// Whether a message sent with `delivery` still counts when it arrives.
    pub fn accepts(&self, delivery: Delivery) -> bool {
        self.connected && delivery.epoch == self.epoch
    }

    /// Breaks the stream: messages in flight are lost and nothing more can be sent.
    pub fn disconnect(&mut self) {
        self.connected = false;
        self.epoch += 1;
    }

    /// Whether the link is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_on_a_link_arrive_in_send_order() {
        let mut rng = RngStream::new(3, "link");
        let mut link = Link::new(DelayConfig {
            delay_ms_min: 1,
            delay_ms_max: 50,
        });
        let mut last = SimTime::ZERO;
        for t in 0..200 {
            let delivery = link.send(SimTime(t), &mut rng).expect("connected");
            assert!(delivery.at >= last);
            assert!(delivery.at >= SimTime(t + 1));
            last = delivery.at;
        }
    }

    #[test]
    fn a_disconnect_drops_messages_in_flight() {
        let mut rng = RngStream::new(3, "link");
        let mut link = Link::new(DelayConfig::default());
        let in_flight = link.send(SimTime(0), &mut rng).expect("connected");
        link.disconnect();
        assert!(!link.accepts(in_flight));
        assert_eq!(link.send(SimTime(1), &mut rng), None);
    }

    #[test]
    fn a_delay_spike_holds_back_later_messages() {
        let mut rng = RngStream::new(3, "link");
        let mut link = Link::new(DelayConfig {
            delay_ms_min: 1,
            delay_ms_max: 1,
        });
        let slow = link
            .send_delayed(SimTime(0), SimDuration(100), &mut rng)
            .expect("up");
        let next = link.send(SimTime(1), &mut rng).expect("up");
        assert_eq!(slow.at, SimTime(101));
        assert!(next.at >= slow.at);
    }
}
