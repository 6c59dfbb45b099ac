//! Invariants: the spec, as named checks that observe the models from outside.
//!
//! Each check is a named function or observer whose doc says what it promises, when it holds
//! and where upstream promises it. A broken invariant is reported as a [`Violation`].

pub mod api_oracle;
pub mod catalog;
pub mod client;
pub mod etcd_watch;
pub mod hazards;
pub mod truth;

use serde::Serialize;

/// A broken invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// What went wrong, on one line.
    pub message: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: &'static str, message: impl Into<String>) -> Violation {
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
