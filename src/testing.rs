//! Test your own controller: run it inside the simulated cluster over many seeds, with your
//! invariants, and get every failure back with the command that replays it and its shrunk
//! counterexample.
//!
//! Write the controller against [`controller`](crate::controller)'s traits (an
//! [`EventHandler`](crate::controller::EventHandler) that enqueues keys and a
//! [`Reconciler`](crate::controller::Reconciler) that reads a lister and writes through a
//! client), then hand a constructor to [`ControllerTest`]. Each seed runs the scenario (by
//! default the library's `controller-replicaset` cluster: writers that create, rescale and
//! delete owner objects, one informer, faults) with your controller in place of the sample
//! one, restarted with its informer's process. Your invariants see etcd's objects and your
//! cache; the harness's own (work queue, read-only lister, every model invariant) hold too.
//!
//! ```
//! use informer_sim::controller::{
//!     Client, ClusterState, EventHandler, Enqueue, Lister, ReconcileError, Reconciler,
//! };
//! use informer_sim::object::{Object, ObjectKey};
//! use informer_sim::testing::ControllerTest;
//!
//! /// Copies every object's payload into a `copy` label.
//! #[derive(Default)]
//! struct Copier;
//!
//! impl EventHandler for Copier {
//!     fn on_add(&mut self, object: &Object, queue: &mut Enqueue) {
//!         queue.add(object.key.clone());
//!     }
//!     fn on_update(&mut self, _old: &Object, new: &Object, queue: &mut Enqueue) {
//!         queue.add(new.key.clone());
//!     }
//! }
//!
//! impl Reconciler for Copier {
//!     fn reconcile(
//!         &mut self,
//!         key: &ObjectKey,
//!         lister: &Lister<'_>,
//!         client: &mut Client<'_>,
//!     ) -> Result<(), ReconcileError> {
//!         let Some(object) = lister.get(key) else { return Ok(()) };
//!         let copy = object.value.to_string();
//!         if object.label("copy") == Some(copy.as_str()) {
//!             return Ok(());
//!         }
//!         let mut labels = (*object.labels).clone();
//!         labels.insert("copy".into(), copy);
//!         client.update(Object { labels: labels.into(), ..object.clone() })?;
//!         Ok(())
//!     }
//! }
//!
//! fn every_copy_is_current(state: &ClusterState<'_>) -> Result<(), String> {
//!     match state.etcd().iter().find(|o| o.label("copy") != Some(&o.value.to_string())) {
//!         Some(stale) => Err(format!("{stale} has copy {:?}", stale.label("copy"))),
//!         None => Ok(()),
//!     }
//! }
//!
//! let report = ControllerTest::new(|| Copier)
//!     .seeds(0..5)
//!     .settled("every copy is current", every_copy_is_current)
//!     .run()
//!     .expect("the library scenario loads");
//! assert_eq!(report.seeds, 5);
//! assert!(report.failures.is_empty(), "{report}");
//! ```

use std::fmt;
use std::ops::Range;
use std::rc::Rc;

use crate::check::Invariant;
use crate::controller::{ClusterState, Controller, ControllerFactory, UserInvariant, When};
use crate::explore::{EnvError, env_seed};
use crate::scenario::{Scenario, ScenarioError};
use crate::shrink::{Case, shrink_with};
use crate::trace::Trace;
use crate::world::{RunOutcome, World};

/// The library scenario a controller test runs by default.
pub const DEFAULT_SCENARIO: &str = "controller-replicaset";

/// A test of the user's controller over a range of seeds.
pub struct ControllerTest {
    factory: Rc<ControllerFactory>,
    scenario: Option<Scenario>,
    invariants: Vec<UserInvariant>,
    seeds: Range<u64>,
    shrink_runs: u64,
    replay_command: String,
}

/// One failing seed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The broken invariant's name (`user_invariant` for the user's own; its name then leads
    /// the message).
    pub invariant: String,
    /// What was wrong.
    pub message: String,
    /// The step it broke at.
    pub step: u64,
    /// The command that runs this seed again.
    pub replay: String,
    /// The smallest case that still fails the same way (the first failure only), on one line:
    /// seed, faults, duration and workload knobs.
    pub shrunk: Option<String>,
}

/// What a controller test found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Seeds run.
    pub seeds: u64,
    /// The failing seeds, in seed order.
    pub failures: Vec<Failure>,
}

/// Why a controller test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The scenario is not valid, or has no `[controller]`.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The scenario has no `[controller]` section.
    #[error("scenario {0:?} has no controller: set [controller] workers >= 1")]
    NoController(String),
    /// `INFORMER_SIM_SEED` is not a seed.
    #[error("{0}")]
    Env(#[from] EnvError),
}

impl ControllerTest {
    /// A test of the controllers `make` builds (one per process incarnation), over seeds
    /// `0..100` of the default scenario.
    pub fn new<C: Controller + 'static>(make: impl Fn() -> C + 'static) -> ControllerTest {
        ControllerTest::with_incarnation(move |_incarnation| make())
    }

    /// Like [`ControllerTest::new`], telling `make` the process incarnation it builds for
    /// (0 first, one more at each restart of the informer's process), for names no earlier
    /// incarnation used.
    pub fn with_incarnation<C: Controller + 'static>(
        make: impl Fn(u32) -> C + 'static,
    ) -> ControllerTest {
        let factory =
            Rc::new(move |incarnation| -> Box<dyn Controller> { Box::new(make(incarnation)) });
        ControllerTest {
            factory,
            scenario: None,
            invariants: Vec::new(),
            seeds: 0..100,
            shrink_runs: 100,
            replay_command: "cargo test".to_owned(),
        }
    }

    /// Runs `scenario` instead of the default one (it needs a `[controller]` section).
    pub fn scenario(mut self, scenario: Scenario) -> ControllerTest {
        self.scenario = Some(scenario);
        self
    }

    /// Runs these seeds (`INFORMER_SIM_SEED`, when set, pins one instead).
    pub fn seeds(mut self, seeds: Range<u64>) -> ControllerTest {
        self.seeds = seeds;
        self
    }

    /// Spends at most `runs` extra runs shrinking the first failure (0: do not shrink).
    pub fn shrink_runs(mut self, runs: u64) -> ControllerTest {
        self.shrink_runs = runs;
        self
    }

    /// The command a failure's replay line starts with, after `INFORMER_SIM_SEED=S`
    /// (default `cargo test`; an example would say `cargo run --example NAME`).
    pub fn replay_command(mut self, command: &str) -> ControllerTest {
        self.replay_command = command.to_owned();
        self
    }

    /// An invariant checked after every reconcile.
    pub fn always(
        self,
        name: &str,
        check: impl Fn(&ClusterState<'_>) -> Result<(), String> + 'static,
    ) -> ControllerTest {
        self.invariant(name, When::Always, check)
    }

    /// An invariant checked once the run has settled.
    pub fn settled(
        self,
        name: &str,
        check: impl Fn(&ClusterState<'_>) -> Result<(), String> + 'static,
    ) -> ControllerTest {
        self.invariant(name, When::Settled, check)
    }

    fn invariant(
        mut self,
        name: &str,
        when: When,
        check: impl Fn(&ClusterState<'_>) -> Result<(), String> + 'static,
    ) -> ControllerTest {
        self.invariants.push(UserInvariant {
            name: name.to_owned(),
            when,
            check: Rc::new(check),
        });
        self
    }

    /// Runs every seed and returns what failed; the first failure is shrunk.
    pub fn run(&self) -> Result<Report, TestError> {
        let scenario = match &self.scenario {
            Some(scenario) => scenario.clone(),
            None => Scenario::load(DEFAULT_SCENARIO)?,
        };
        if scenario.controller.is_off() {
            return Err(TestError::NoController(scenario.name));
        }
        let seeds = match env_seed()? {
            Some(seed) => seed..seed.saturating_add(1),
            None => self.seeds.clone(),
        };
        let mut report = Report {
            seeds: 0,
            failures: Vec::new(),
        };
        for seed in seeds {
            report.seeds += 1;
            let case = Case::of_seed(scenario.clone(), seed);
            let outcome = self.run_case(&case);
            let Some((step, violation)) = outcome.violation else {
                continue;
            };
            let shrunk = (report.failures.is_empty() && self.shrink_runs > 0)
                .then(|| self.shrink(case, violation.invariant));
            report.failures.push(Failure {
                seed,
                invariant: violation.invariant.to_string(),
                message: violation.message,
                step,
                replay: format!("INFORMER_SIM_SEED={seed} {}", self.replay_command),
                shrunk,
            });
        }
        Ok(report)
    }

    fn run_case(&self, case: &Case) -> RunOutcome {
        World::with_plan(
            case.scenario.clone(),
            case.seed,
            case.plan.clone(),
            Trace::default(),
        )
        .with_controller(self.factory.clone(), self.invariants.clone())
        .run()
    }

    fn shrink(&self, case: Case, invariant: Invariant) -> String {
        let shrunk = shrink_with(case, invariant, self.shrink_runs, &mut |_| {}, &|case| {
            self.run_case(case)
        });
        format!(
            "{} ({} of {} faults left, {} runs)",
            shrunk.case.describe(),
            shrunk.case.plan.faults.len(),
            shrunk.faults_before,
            shrunk.runs
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAIL seed={} invariant={} step={}",
            self.seed, self.invariant, self.step
        )?;
        writeln!(f, "  {}", self.message)?;
        if let Some(shrunk) = &self.shrunk {
            writeln!(f, "  shrunk: {shrunk}")?;
        }
        write!(f, "  replay: {}", self.replay)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failures {
            writeln!(f, "{failure}")?;
        }
        write!(f, "{} seeds: {} failed", self.seeds, self.failures.len())
    }
}
