//! What every part of a world shares: the scenario, the kernel with its queue, the named random
//! streams, the trace, the checker and the counts. Each part's handlers take it by `&mut`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::api::ClientMessage;
use crate::check::{Checker, Violation};
use crate::object::ResourceVersion;
use crate::scenario::Scenario;
use crate::sim::{Kernel, RngStream, SimDuration, SimTime};
use crate::trace::Trace;

use super::event::Ev;
use super::observe::StepObserver;
use super::probes::RevisionClock;
use super::stats::RunStats;
use super::trace_event::{Actor, TraceEvent};

/// The run's random streams, one per concern, so that a new draw in one never reshuffles
/// another.
pub(crate) struct Streams {
    pub(crate) seed: u64,
    pub(crate) workload: RngStream,
    pub(crate) faults: RngStream,
    pub(crate) links: RngStream,
    pub(crate) balancer: RngStream,
    pub(crate) clients: RngStream,
}

impl Streams {
    fn new(seed: u64) -> Streams {
        Streams {
            seed,
            workload: RngStream::new(seed, "workload"),
            faults: RngStream::new(seed, "faults"),
            links: RngStream::new(seed, "links"),
            balancer: RngStream::new(seed, "balancer"),
            clients: RngStream::new(seed, "clients"),
        }
    }
}

/// The shared state of one world.
pub(crate) struct Core {
    pub(crate) scenario: Scenario,
    pub(crate) kernel: Kernel<Ev>,
    pub(crate) streams: Streams,
    pub(crate) trace: Trace,
    pub(crate) checker: Checker,
    pub(crate) stats: RunStats,
    /// The fault phase is over: writers, compaction and faults stop.
    pub(crate) healed: bool,
    /// No apiserver serves a state older than this (the oldest cache's RV, or etcd's
    /// revision where there is no cache), as of its last change: what a request's checks may
    /// read history back to.
    pub(crate) read_floor: ResourceVersion,
    /// When etcd made each recent revision (for the `old-rv-resume` probe).
    pub(crate) revisions: RevisionClock,
    /// Who watches the run step by step, if anyone (see [`StepObserver`]).
    pub(crate) observer: Option<Rc<RefCell<dyn StepObserver>>>,
}

impl Core {
    pub(crate) fn new(scenario: Scenario, seed: u64, trace: Trace, checker: Checker) -> Core {
        Core {
            kernel: Kernel::new(scenario.steps_max),
            scenario,
            streams: Streams::new(seed),
            trace,
            checker,
            stats: RunStats::default(),
            healed: false,
            read_floor: 0,
            revisions: RevisionClock::default(),
            observer: None,
        }
    }

    pub(crate) fn now(&self) -> SimTime {
        self.kernel.now()
    }

    /// Writes one trace line for `actor`.
    pub(crate) fn record(&mut self, actor: Actor, event: &TraceEvent<'_>) {
        if let Some(observer) = &self.observer {
            let step = self.trace.steps();
            observer.borrow_mut().step(step, self.now(), actor, event);
        }
        self.trace.record(self.kernel.now(), &actor, event);
    }

    /// Tells the observer, if any, that a client's message reached its apiserver.
    pub(crate) fn observe_arrival(&self, client: usize, apiserver: usize, message: &ClientMessage) {
        if let Some(observer) = &self.observer {
            let step = self.trace.steps();
            observer
                .borrow_mut()
                .arrived(step, self.now(), client, apiserver, message);
        }
    }

    /// Hands what a check found to the checker's one reporting path, at the current step.
    pub(crate) fn report(
        &mut self,
        found: impl IntoIterator<Item = Violation>,
    ) -> Result<(), Violation> {
        let step = self.trace.steps();
        self.checker.report(step, found)
    }

    /// A uniform delay in `0..=max_ms` from the clients' stream (processing and handler times).
    pub(crate) fn client_delay(&mut self, max_ms: u64) -> SimDuration {
        SimDuration(self.streams.clients.between(0, max_ms))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::{Invariant, Violation};
    use crate::client::FifoKind;

    /// A core for `scenario` at seed 1, its checker expecting the scenario's hazards.
    pub(crate) fn core_for(scenario: Scenario) -> Core {
        let checker = Checker::new(
            super::super::writer::RESOURCE_PREFIX,
            &scenario.expected_hazards,
            scenario.clients.fifo(),
        );
        Core::new(scenario, 1, Trace::default(), checker)
    }

    #[test]
    fn a_declared_hazard_is_recorded_once_and_anything_else_fails_the_run() {
        let mut scenario = Scenario {
            expected_hazards: vec![Invariant::NoTimeTravelAcrossRestarts],
            ..Scenario::default()
        };
        scenario.clients.fifo = Some(FifoKind::Real);
        let mut core = core_for(scenario);
        let hazard = Violation::new(Invariant::NoTimeTravelAcrossRestarts, "back in time");
        assert_eq!(core.report([hazard.clone()]), Ok(()));
        assert_eq!(core.report([hazard.clone()]), Ok(()));
        let failure = Violation::new(Invariant::IndexerRvNeverDecreases, "went back");
        assert_eq!(core.report([hazard, failure.clone()]), Err(failure));
        assert_eq!(core.checker.into_hazards().len(), 1);
    }

    #[test]
    fn client_delays_stay_within_their_bound() {
        let mut core = core_for(Scenario::default());
        for _ in 0..100 {
            assert!(core.client_delay(7) <= SimDuration(7));
        }
        assert_eq!(core.client_delay(0), SimDuration::ZERO);
    }
}
