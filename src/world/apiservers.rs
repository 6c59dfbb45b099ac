//! The apiservers of a world, each with the link its cacher's etcd watch arrives on, its timer
//! and whether it is down (restarting).

use crate::apiserver::server::Apiserver;
use crate::bug::Bugs;
use crate::etcd::WatchResponse;
use crate::scenario::Scenario;
use crate::sim::{DelayConfig, Delivery, Link, RngStream, SimDuration, SimTime, Wakeup};

use super::core::Core;
use super::event::Ev;
use super::writer::RESOURCE_PREFIX;

/// One apiserver and what the world keeps for it.
pub(crate) struct ApiserverSlot {
    pub(crate) server: Apiserver,
    /// From etcd to the cacher: the lag of this apiserver's cache.
    etcd_link: Link,
    /// While set and in the future, the apiserver refuses connections.
    down_until: Option<SimTime>,
    wakeup: Wakeup,
}

impl ApiserverSlot {
    /// Apiserver `index` of `scenario`, at time zero.
    pub(crate) fn new(scenario: &Scenario, seed: u64, index: usize) -> ApiserverSlot {
        let rng = RngStream::new(seed, &format!("apiserver-{index}"));
        let config = scenario.apiservers.server.clone();
        let bugs = Bugs::new(scenario.bug);
        ApiserverSlot {
            server: Apiserver::new(config, RESOURCE_PREFIX, SimTime::ZERO, rng, bugs),
            etcd_link: Link::new(etcd_link_delay(scenario, index)),
            down_until: None,
            wakeup: Wakeup::default(),
        }
    }

    /// Arms the kernel for the server's next timer.
    pub(crate) fn schedule_timer(&mut self, core: &mut Core, apiserver: usize) {
        let Some(at) = self.server.poll_timeout() else {
            return;
        };
        if let Some(at) = self.wakeup.arm(at) {
            core.kernel
                .schedule_at(at.max(core.now()), Ev::ApiserverTimer { apiserver });
        }
    }

    /// A timer event fired: whether the server's timer is due now (otherwise the event was
    /// stale and the timer is re-armed).
    pub(crate) fn timer_due(&mut self, core: &mut Core, apiserver: usize) -> bool {
        let now = core.now();
        self.wakeup.fire(now);
        let due = self.server.poll_timeout().is_some_and(|at| at <= now);
        if !due {
            self.schedule_timer(core, apiserver);
        }
        due
    }

    /// Whether the apiserver refuses connections at `now`.
    pub(crate) fn is_down(&self, now: SimTime) -> bool {
        self.down_until.is_some_and(|until| until > now)
    }

    /// The apiserver restarts at `now` and refuses connections until `ready_at`.
    pub(crate) fn go_down(&mut self, ready_at: SimTime) {
        self.down_until = Some(ready_at);
        self.wakeup.reset();
    }

    /// Puts a message of the cacher's etcd watch on the etcd link.
    pub(crate) fn send_from_etcd(
        &mut self,
        core: &mut Core,
        apiserver: usize,
        response: WatchResponse,
    ) {
        if let Some(delivery) = self.etcd_link.send(core.now(), &mut core.streams.links) {
            core.kernel.schedule_at(
                delivery.at,
                Ev::EtcdToApiserver {
                    apiserver,
                    delivery,
                    response,
                },
            );
        }
    }

    /// Whether a message sent on the etcd link with `delivery` arrives for the cacher's
    /// current etcd watch.
    pub(crate) fn accepts_from_etcd(&self, delivery: Delivery, response: &WatchResponse) -> bool {
        self.etcd_link.accepts(delivery) && self.server.owns_etcd_watch(response.watch_id)
    }
}

/// The etcd link of apiserver `index`: the base delay plus its lag.
pub(crate) fn etcd_link_delay(scenario: &Scenario, index: usize) -> DelayConfig {
    let base = scenario.apiservers.etcd_link;
    let lag = scenario.apiservers.lag_ms_per_index * index as u64;
    DelayConfig {
        delay_ms_min: base.delay_ms_min + lag,
        delay_ms_max: base.delay_ms_max + lag,
    }
}

/// How long a restarted apiserver refuses connections.
pub(crate) fn restart_duration(scenario: &Scenario) -> SimDuration {
    SimDuration(scenario.apiservers.restart_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::core::tests::core_for;

    #[test]
    fn each_apiserver_lags_etcd_by_its_index_times_the_lag() {
        let mut scenario = Scenario::default();
        scenario.apiservers.lag_ms_per_index = 500;
        let delay = etcd_link_delay(&scenario, 2);
        assert_eq!(
            delay.delay_ms_min,
            scenario.apiservers.etcd_link.delay_ms_min + 1_000
        );
        assert_eq!(
            delay.delay_ms_max,
            scenario.apiservers.etcd_link.delay_ms_max + 1_000
        );
        assert_eq!(etcd_link_delay(&scenario, 0), scenario.apiservers.etcd_link);
    }

    #[test]
    fn a_restarted_apiserver_refuses_until_it_is_ready() {
        let scenario = Scenario::default();
        let mut slot = ApiserverSlot::new(&scenario, 1, 0);
        assert!(!slot.is_down(SimTime::ZERO));
        slot.go_down(SimTime(2_000));
        assert!(slot.is_down(SimTime(1_999)));
        assert!(!slot.is_down(SimTime(2_000)));
    }

    #[test]
    fn a_stale_timer_event_rearms_and_a_due_one_fires() {
        let scenario = Scenario::default();
        let mut core = core_for(scenario.clone());
        let mut slot = ApiserverSlot::new(&scenario, 1, 0);
        slot.schedule_timer(&mut core, 0);
        let at = slot
            .server
            .poll_timeout()
            .expect("a new cache initializes at once");
        assert_eq!(at, SimTime::ZERO);
        assert!(slot.timer_due(&mut core, 0), "due at time zero");
        assert_eq!(core.kernel.next_event().map(|e| e.is_some()), Ok(true));
    }
}
