//! The integration tests, as one binary (as regex-automata does): each module is one concern,
//! and they share the crate's build and the helpers of [`util`].

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apiserver;
mod browser;
mod bugs;
mod cli;
mod conformance;
mod determinism;
mod etcd_oracle;
mod etcd_reference;
mod extremes;
mod fault_plans;
mod fifo_script;
mod golden;
mod golden_traces;
mod hazards;
mod inputs;
#[cfg(feature = "kube")]
mod kube_rs;
mod layers;
mod pipeline;
mod reflector;
mod report;
mod sweeps;
mod user_controller;
mod util;
