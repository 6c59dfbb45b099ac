//! Invariants: the spec, as named checks that observe the models from outside.
//!
//! Each check is a named function or observer whose doc says what it promises, when it holds
//! and where upstream promises it. A broken invariant is reported as a [`Violation`].

pub mod api_oracle;
pub mod catalog;
pub mod checker;
pub mod client;
mod client_checks;
pub mod controller;
pub mod etcd_watch;
pub mod hazards;
mod policy;
pub mod resource;
pub mod settle;
pub mod state;
pub mod truth;
mod versions;
mod violation;

pub use catalog::{Checked, Invariant, Kind};
pub use checker::Checker;
pub use policy::expected_hazards;
pub use violation::Violation;
