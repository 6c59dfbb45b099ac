//! kube-rs inside the simulation (the `kube` feature): kube-rs's own `watcher` and
//! `reflector` store, run on a tokio runtime the world steps, talking to the simulated
//! apiservers through an HTTP/JSON face of their model.
//!
//! - [`face`]: HTTP requests into the model's requests, its answers into HTTP and JSON.
//! - [`process`]: one kube-rs client process (runtime, client, watcher, store).
//! - [`backoff`]: kube-rs's default backoff, its jitter from the seeded generator.
//! - [`controller`]: kube-rs's `Controller` running the sample ReplicaSet-like reconciler.
//! - [`steps`]: what a process hands the world (watcher steps, reconciles).

pub mod backoff;
pub mod controller;
pub mod face;
pub mod process;
pub mod steps;

pub use controller::ControllerSetup;
pub use process::{KubeConfig, KubeProcess};
pub use steps::{KubeStep, StoreEvent, WatcherError};
