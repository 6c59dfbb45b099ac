//! client-go's `ControllerExpectations` (`pkg/controller/controller_utils.go`): how a
//! controller remembers the creates and deletes it asked for until its informer shows them,
//! so that it does not act again on a cache that has not caught up with its own writes.

use std::collections::BTreeMap;

use crate::object::ObjectKey;
use crate::sim::{SimDuration, SimTime};

/// How long expectations are waited for before a sync goes ahead anyway (client-go
/// `ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: SimDuration = SimDuration::from_secs(5 * 60);

/// What one controller key still expects to see (client-go `ControlleeExpectations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expected {
    add: i64,
    del: i64,
    timestamp: SimTime,
}

/// client-go `ControllerExpectations`: per controller key, the creates and deletes not yet
/// observed. Counters only; client-go's UID tracking of deletions is not modelled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerExpectations {
    expected: BTreeMap<ObjectKey, Expected>,
}

impl ControllerExpectations {
    /// No expectations.
    pub fn new() -> ControllerExpectations {
        ControllerExpectations::default()
    }

    /// Whether `key` may sync: it expects nothing more, its expectations expired, or it has
    /// none (client-go `SatisfiedExpectations`).
    pub fn satisfied_expectations(&self, key: &ObjectKey, now: SimTime) -> bool {
        self.expected.get(key).is_none_or(|expected| {
            let fulfilled = expected.add <= 0 && expected.del <= 0;
            fulfilled || now.saturating_since(expected.timestamp) > EXPECTATIONS_TIMEOUT
        })
    }

    /// `key` expects `adds` creations from now on (client-go `ExpectCreations`).
    pub fn expect_creations(&mut self, key: &ObjectKey, adds: u32, now: SimTime) {
        self.set_expectations(key, i64::from(adds), 0, now);
    }

    /// `key` expects `dels` deletions from now on (client-go `ExpectDeletions`).
    pub fn expect_deletions(&mut self, key: &ObjectKey, dels: u32, now: SimTime) {
        self.set_expectations(key, 0, i64::from(dels), now);
    }

    /// One creation for `key` was seen, or will never happen (client-go `CreationObserved`).
    pub fn creation_observed(&mut self, key: &ObjectKey) {
        self.lower_expectations(key, 1, 0);
    }

    /// One deletion for `key` was seen, or will never happen (client-go `DeletionObserved`).
    pub fn deletion_observed(&mut self, key: &ObjectKey) {
        self.lower_expectations(key, 0, 1);
    }

    /// Forgets `key` (client-go `DeleteExpectations`, called when the owner is deleted).
    pub fn delete_expectations(&mut self, key: &ObjectKey) {
        self.expected.remove(key);
    }

    /// The creations and deletions `key` still waits for, if it has expectations.
    pub fn get_expectations(&self, key: &ObjectKey) -> Option<(i64, i64)> {
        self.expected
            .get(key)
            .map(|expected| (expected.add, expected.del))
    }

    /// client-go `SetExpectations`: replaces, never adds to, what was expected.
    fn set_expectations(&mut self, key: &ObjectKey, add: i64, del: i64, now: SimTime) {
        let expected = Expected {
            add,
            del,
            timestamp: now,
        };
        self.expected.insert(key.clone(), expected);
    }

    /// client-go `LowerExpectations`: a no-op for a key without expectations.
    fn lower_expectations(&mut self, key: &ObjectKey, add: i64, del: i64) {
        if let Some(expected) = self.expected.get_mut(key) {
            expected.add -= add;
            expected.del -= del;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// controller_utils_test.go `TestControllerExpectations`: adds and deletes are satisfied
    /// only once all are observed, raising or re-setting undoes that, and old expectations
    /// expire after `ExpectationsTimeout`.
    #[test]
    fn test_controller_expectations() {
        let key = ObjectKey::new("ns/rc");
        let mut expectations = ControllerExpectations::new();
        let now = SimTime(1_000);
        let (adds, dels) = (10, 10);
        expectations.set_expectations(&key, adds, dels, now);
        for _ in 0..adds {
            expectations.creation_observed(&key);
            expectations.deletion_observed(&key);
            assert_eq!(
                expectations.satisfied_expectations(&key, now),
                expectations.get_expectations(&key) == Some((0, 0)),
            );
        }
        assert!(expectations.satisfied_expectations(&key, now));
        expectations.creation_observed(&key);
        assert_eq!(expectations.get_expectations(&key), Some((-1, 0)));
        assert!(
            expectations.satisfied_expectations(&key, now),
            "over-observed is still fulfilled"
        );
        expectations.expect_creations(&key, 2, now);
        assert!(!expectations.satisfied_expectations(&key, now));
        let later = now + EXPECTATIONS_TIMEOUT;
        assert!(
            !expectations.satisfied_expectations(&key, later),
            "not expired at exactly the timeout"
        );
        assert!(expectations.satisfied_expectations(&key, later + SimDuration(1)));
    }

    #[test]
    fn a_key_without_expectations_is_satisfied_and_lowering_it_creates_none() {
        let key = ObjectKey::new("ns/rs");
        let mut expectations = ControllerExpectations::new();
        assert!(expectations.satisfied_expectations(&key, SimTime::ZERO));
        expectations.creation_observed(&key);
        assert_eq!(expectations.get_expectations(&key), None);
        expectations.expect_deletions(&key, 1, SimTime::ZERO);
        assert!(!expectations.satisfied_expectations(&key, SimTime::ZERO));
        expectations.delete_expectations(&key);
        assert!(expectations.satisfied_expectations(&key, SimTime::ZERO));
    }
}
