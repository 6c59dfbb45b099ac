//! A broken invariant, as every check reports it.

use serde::Serialize;

use super::catalog::Invariant;

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
