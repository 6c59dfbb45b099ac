//! One key's versions over revisions, as the ground truth keeps etcd's key-values and the
//! resource history keeps decoded objects: the current state held inline, older ones behind.

use crate::etcd::Revision;

/// What one key became at one revision.
#[derive(Clone, Debug)]
pub(super) struct Version<T> {
    /// The revision of the write.
    pub(super) revision: Revision,
    /// Where the write's event sits among the events of `revision`.
    pub(super) slot: usize,
    /// The key's state from `revision` on; `None`: deleted.
    pub(super) state: Option<T>,
}

/// One key's versions, oldest first: `older`, then `latest`, its current state. The common
/// key, one version held, needs no room beyond its map entry.
#[derive(Clone, Debug)]
pub(super) struct History<T> {
    older: Vec<Version<T>>,
    latest: Version<T>,
}

impl<T> History<T> {
    /// A key's history from its first version.
    pub(super) fn new(first: Version<T>) -> History<T> {
        History {
            older: Vec::new(),
            latest: first,
        }
    }

    /// Every version held, oldest first.
    pub(super) fn versions(&self) -> impl Iterator<Item = &Version<T>> {
        self.older.iter().chain([&self.latest])
    }

    /// The key's current state.
    pub(super) fn latest(&self) -> Option<&T> {
        self.latest.state.as_ref()
    }

    /// The key's state as of `revision`: its last version at or before it.
    pub(super) fn state_at(&self, revision: Revision) -> Option<&T> {
        let live = if self.latest.revision <= revision {
            Some(&self.latest)
        } else {
            let after = self
                .older
                .partition_point(|version| version.revision <= revision);
            after.checked_sub(1).map(|live| &self.older[live])
        };
        live.and_then(|version| version.state.as_ref())
    }

    /// The versions written at `from` or later.
    pub(super) fn since(&self, from: Revision) -> impl Iterator<Item = &Version<T>> {
        let first = self
            .older
            .partition_point(|version| version.revision < from);
        let latest = (self.latest.revision >= from).then_some(&self.latest);
        self.older[first..].iter().chain(latest)
    }

    /// Adds the key's newest version.
    ///
    /// # Panics
    ///
    /// If it is not newer than the current one: a key is written once per revision.
    pub(super) fn push(&mut self, version: Version<T>) {
        assert!(
            self.latest.revision < version.revision,
            "a key written twice at revision {} (DuplicateKey should refuse it)",
            version.revision
        );
        let previous = std::mem::replace(&mut self.latest, version);
        self.older.push(previous);
    }

    /// Drops the versions superseded at or before `revision`; answers how many went.
    pub(super) fn forget_before(&mut self, revision: Revision) -> usize {
        let superseded = if self.latest.revision <= revision {
            self.older.len()
        } else {
            let after = self
                .older
                .partition_point(|version| version.revision <= revision);
            after.saturating_sub(1)
        };
        self.older.drain(..superseded);
        if self.older.capacity() > 4 * self.older.len() {
            // A key that was busy once must not keep its peak's room.
            self.older.shrink_to(2 * self.older.len());
        }
        superseded
    }

    /// Whether all that is left is a deletion before `revision` (after
    /// [`forget_before`](Self::forget_before)): the key need not be held at all.
    pub(super) fn is_deleted_before(&self, revision: Revision) -> bool {
        self.older.is_empty() && self.latest.state.is_none() && self.latest.revision < revision
    }
}
