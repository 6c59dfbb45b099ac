//! Fault plans: faults are data. A run's seed expands into a list of timed faults; a plan can
//! also be given explicitly (that is what shrinking reduces and replay files store).
//!
//! Expansion is swarm testing (Groce et al., ISSTA 2012): each seed first switches a random
//! subset of fault kinds off, then draws the remaining kinds' faults second by second, so
//! that across seeds every combination of kinds gets explored and no kind drowns another.
//! The raw etcd watchers' faults (stall, disconnect, progress request) are drawn second by
//! second too, one at most per watcher, outside the swarm (as their own scenario knobs ask).

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::sim::RngStream;

/// One fault, aimed at one client or apiserver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    /// The client's connection breaks; it reconnects to an apiserver the balancer picks.
    Disconnect {
        /// The client.
        client: u32,
    },
    /// The client stops reading its streams for `ms`.
    SlowConsumer {
        /// The client.
        client: u32,
        /// For how long.
        ms: u64,
    },
    /// The client's connection goes silent without closing.
    SilentConnection {
        /// The client.
        client: u32,
    },
    /// The next message to the client is held back by `ms`.
    DelaySpike {
        /// The client.
        client: u32,
        /// By how much.
        ms: u64,
    },
    /// The apiserver's cacher loses its etcd watch and re-initializes.
    CacherReinit {
        /// The apiserver.
        apiserver: u32,
    },
    /// The apiserver restarts.
    ApiserverRestart {
        /// The apiserver.
        apiserver: u32,
    },
    /// The client process restarts with a fresh informer.
    ClientRestart {
        /// The client.
        client: u32,
    },
    /// The apiserver stops reading its etcd watch for `ms`: its cache lags.
    CacheStall {
        /// The apiserver.
        apiserver: u32,
        /// For how long.
        ms: u64,
    },
    /// The apiserver's etcd member loses its leader for `ms`: the cacher's watch ends with an
    /// internal error, and its re-watches and lists fail meanwhile (the cache stays ready and
    /// frozen for up to 30 s, then re-initializes).
    CacheWatchError {
        /// The apiserver.
        apiserver: u32,
        /// For how long.
        ms: u64,
    },
    /// A raw etcd watcher stops reading its watch for `ms` (if it has one and reads).
    WatcherStall {
        /// The raw etcd watcher.
        watcher: u32,
        /// For how long.
        ms: u64,
    },
    /// A raw etcd watcher's connection breaks; it resumes after a backoff.
    WatcherDisconnect {
        /// The raw etcd watcher.
        watcher: u32,
    },
    /// A raw etcd watcher asks etcd for a progress notification.
    WatcherProgressRequest {
        /// The raw etcd watcher.
        watcher: u32,
    },
}

/// A fault at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedFault {
    /// When, in milliseconds of simulated time.
    pub at_ms: u64,
    /// What.
    pub fault: Fault,
}

/// Every fault of one run, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The faults.
    pub faults: Vec<TimedFault>,
}

/// The fault kinds, in the order swarm decisions are drawn (append only: reordering changes
/// every seed's plan).
const KINDS: usize = 9;

impl FaultPlan {
    /// Expands a seed's fault stream into a plan for `scenario`.
    pub fn generate(scenario: &Scenario, rng: &mut RngStream) -> FaultPlan {
        let f = &scenario.faults;
        let enabled: [bool; KINDS] = std::array::from_fn(|_| !f.swarm || rng.chance(0.5));
        let probabilities = [
            f.disconnect_probability,
            f.slow_consumer_probability,
            f.silent_connection_probability,
            f.delay_spike_probability,
            f.cacher_reinit_probability,
            f.apiserver_restart_probability,
            f.client_restart_probability,
            f.cache_stall_probability,
            f.cache_watch_error_probability,
        ];
        let apiservers = u64::from(scenario.apiservers.count);
        let clients = u64::from(scenario.client_identities());
        let mut faults = Vec::new();
        for second in 0..scenario.duration_ms / 1000 {
            for watcher in 0..scenario.etcd_watchers.count {
                if let Some(fault) = watcher_fault(scenario, watcher, rng) {
                    let at_ms = second * 1000 + rng.below(1000);
                    faults.push(TimedFault { at_ms, fault });
                }
            }
            for (kind, probability) in probabilities.iter().enumerate() {
                let targets = if matches!(kind, 4 | 5 | 7 | 8) {
                    apiservers
                } else {
                    clients
                };
                if !enabled[kind] || targets == 0 || !rng.chance(*probability) {
                    continue;
                }
                let at_ms = second * 1000 + rng.below(1000);
                let target = rng.below(targets) as u32;
                faults.push(TimedFault {
                    at_ms,
                    fault: make_fault(kind, target, scenario, rng),
                });
            }
        }
        faults.sort_by_key(|fault| fault.at_ms);
        FaultPlan { faults }
    }
}

/// One second's fault of raw etcd watcher `watcher`, if any: a stall, else a disconnect, else a
/// progress request, each with its per-second chance.
fn watcher_fault(scenario: &Scenario, watcher: u32, rng: &mut RngStream) -> Option<Fault> {
    let config = &scenario.etcd_watchers;
    if rng.chance(config.stall_probability) {
        let ms = rng.between(1, config.stall_ms_max.max(1));
        return Some(Fault::WatcherStall { watcher, ms });
    }
    if rng.chance(config.disconnect_probability) {
        return Some(Fault::WatcherDisconnect { watcher });
    }
    rng.chance(config.progress_request_probability)
        .then_some(Fault::WatcherProgressRequest { watcher })
}

fn make_fault(kind: usize, target: u32, scenario: &Scenario, rng: &mut RngStream) -> Fault {
    let f = &scenario.faults;
    match kind {
        0 => Fault::Disconnect { client: target },
        1 => Fault::SlowConsumer {
            client: target,
            ms: rng.between(1, f.slow_consumer_ms_max.max(1)),
        },
        2 => Fault::SilentConnection { client: target },
        3 => Fault::DelaySpike {
            client: target,
            ms: rng.between(1, f.delay_spike_ms_max.max(1)),
        },
        4 => Fault::CacherReinit { apiserver: target },
        5 => Fault::ApiserverRestart { apiserver: target },
        6 => Fault::ClientRestart { client: target },
        7 => Fault::CacheStall {
            apiserver: target,
            ms: rng.between(1, f.cache_stall_ms_max.max(1)),
        },
        _ => Fault::CacheWatchError {
            apiserver: target,
            ms: rng.between(1, f.cache_watch_error_ms_max.max(1)),
        },
    }
}

impl std::fmt::Display for Fault {
    /// The fault as the timeline says it: `client-2 disconnects`, `apiserver-0 restarts`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Disconnect { client } => write!(f, "client-{client}'s connection breaks"),
            Fault::SlowConsumer { client, ms } => {
                write!(f, "client-{client} stops reading for {ms} ms")
            }
            Fault::SilentConnection { client } => {
                write!(f, "client-{client}'s connection goes silent")
            }
            Fault::DelaySpike { client, ms } => {
                write!(f, "client-{client}'s next message is held back {ms} ms")
            }
            Fault::CacherReinit { apiserver } => {
                write!(f, "apiserver-{apiserver}'s cacher loses its etcd watch")
            }
            Fault::ApiserverRestart { apiserver } => write!(f, "apiserver-{apiserver} restarts"),
            Fault::ClientRestart { client } => write!(f, "client-{client}'s process restarts"),
            Fault::CacheStall { apiserver, ms } => {
                write!(f, "apiserver-{apiserver} stops reading etcd for {ms} ms")
            }
            Fault::CacheWatchError { apiserver, ms } => {
                write!(
                    f,
                    "apiserver-{apiserver}'s etcd member has no leader for {ms} ms"
                )
            }
            Fault::WatcherStall { watcher, ms } => {
                write!(f, "watcher-{watcher} stops reading for {ms} ms")
            }
            Fault::WatcherDisconnect { watcher } => {
                write!(f, "watcher-{watcher}'s connection breaks")
            }
            Fault::WatcherProgressRequest { watcher } => {
                write!(f, "watcher-{watcher} asks for progress")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let mut scenario = Scenario::default();
        scenario.clients.count = 2;
        scenario.apiservers.count = 2;
        scenario.faults.disconnect_probability = 0.5;
        scenario
    }

    #[test]
    fn plans_are_sorted_and_aimed_at_existing_targets() {
        let plan = FaultPlan::generate(&scenario(), &mut RngStream::new(3, "faults"));
        assert!(
            plan.faults
                .windows(2)
                .all(|pair| pair[0].at_ms <= pair[1].at_ms)
        );
        for timed in &plan.faults {
            match timed.fault {
                Fault::Disconnect { client } | Fault::ClientRestart { client } => {
                    assert!(client < 2)
                }
                Fault::CacherReinit { apiserver } | Fault::ApiserverRestart { apiserver } => {
                    assert!(apiserver < 2)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn swarm_switches_some_kinds_off_for_some_seeds() {
        let mut scenario = scenario();
        scenario.faults.disconnect_probability = 1.0;
        let without_disconnects = (0..20).any(|seed| {
            let plan = FaultPlan::generate(&scenario, &mut RngStream::new(seed, "faults"));
            !plan
                .faults
                .iter()
                .any(|timed| matches!(timed.fault, Fault::Disconnect { .. }))
        });
        assert!(without_disconnects);
    }

    #[test]
    fn plans_round_trip_through_json() {
        let plan = FaultPlan::generate(&scenario(), &mut RngStream::new(5, "faults"));
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&text).unwrap(), plan);
    }
}
