//! informer-sim: a deterministic simulation and property-testing harness for the Kubernetes
//! list-watch pipeline.
//!
//! ```text
//!  workload (create / update / delete, with CAS)
//!     |
//!  etcd (MVCC: global revision, history, watch from revision, compaction)     etcd/
//!     |  watch stream
//!  apiserver x N (cacher -> watch cache -> cache watchers)                    apiserver/
//!     |  list / watch over simulated links
//!  Reflector -> DeltaFIFO / RealFIFO -> Indexer -> processor -> handlers      client/
//! ```
//!
//! A single-threaded kernel (`sim`) owns simulated time and one event queue; the world draws
//! every choice from named random streams of one seed, and every model is a plain state machine
//! driven by it. The same seed gives the same run, byte for byte, on every machine.
//!
//! # Floors
//!
//! The crate stands on five floors; each module imports only from its own floor or those
//! below, and no two files import each other in a circle (`tests/integration/layers.rs` holds
//! the map below against every `use` in `src/`):
//!
//! ```text
//! 4 drivers      explore (sweeps, hunts, seeds, env knobs)  shrink  replay  conformance  bench
//!                report (explain, HTML, Perfetto)  progress  summary  sweep_dir (--out, --resume,
//!                merge)  determinism  atomic_file  inputs  testing (user controllers)  main
//! 3 composition  scenario  world (a router of owned parts)  trace  testkit
//! 2 observers    check (one Checker, the catalog, every oracle; the ground truth)
//! 1 models       etcd  apiserver  client  controller        pure state machines
//!                kube_rs (the `kube` feature: kube-rs's watcher, store and Controller, stepped)
//! 0 leaves       sim (kernel)  object  api (wire vocabulary)  bug (planted-bug flags)
//! ```
//!
//! Planted bugs reach the models through one door: each model's constructor takes a
//! [`bug::Bugs`] as its last argument. Models keep facts, not verdicts; the checker decides.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod apiserver;
pub mod atomic_file;
pub mod bench;
pub mod bug;
pub mod check;
pub mod client;
pub mod conformance;
pub mod controller;
pub mod determinism;
pub mod etcd;
pub mod explore;
pub mod inputs;
#[cfg(feature = "kube")]
pub mod kube_rs;
pub mod object;
pub mod progress;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod sim;
pub mod summary;
pub mod sweep_dir;
pub mod testing;
#[doc(hidden)]
pub mod testkit;
pub mod trace;
pub mod world;
