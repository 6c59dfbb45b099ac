//! Invariants: the spec, as named checks that observe the models from outside.
//!
//! Each check is a named function or observer whose doc says what it promises, when it holds
//! and where upstream promises it. A broken invariant is reported as a [`Violation`].

pub mod api_oracle;
pub mod catalog;
pub mod client;
pub mod etcd_watch;
pub mod hazards;

use serde::Serialize;

pub use catalog::{Invariant, Kind};

/// A broken invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// What went wrong, on one line.
    pub message: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: Invariant, message: impl Into<String>) -> Violation {
        Violation {
            invariant,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.message)
    }
}
