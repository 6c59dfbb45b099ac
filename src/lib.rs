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
//! A single-threaded kernel (`sim`) owns simulated time, one event queue and the seeded random
//! streams; every model is a plain state machine driven by it. The same seed gives the same run,
//! byte for byte, on every machine.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod apiserver;
pub mod bug;
pub mod check;
pub mod client;
pub mod conformance;
pub mod etcd;
pub mod explore;
pub mod object;
pub mod replay;
pub mod scenario;
pub mod shrink;
pub mod sim;
#[doc(hidden)]
pub mod testkit;
pub mod trace;
pub mod world;
