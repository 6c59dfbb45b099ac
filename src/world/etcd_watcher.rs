//! Raw etcd watch clients: they start at old, current or future revisions, fall behind, get
//! compacted, lose their connection and resume from the last revision they saw.

use crate::check::etcd_watch::WatchStreamOracle;
use crate::etcd::WatchId;
use crate::sim::Link;

/// One client of etcd's watch API.
pub(crate) struct EtcdWatcher {
    /// The open watch and the stream it arrives on.
    pub(crate) watch: Option<OpenWatch>,
    /// The last revision seen (event or progress notification); 0 before any.
    pub(crate) last_revision: u64,
    /// Whether the consumer is currently not reading.
    pub(crate) stalled: bool,
}

/// A watch that is open from the client's point of view.
pub(crate) struct OpenWatch {
    pub(crate) id: WatchId,
    pub(crate) link: Link,
    pub(crate) oracle: WatchStreamOracle,
}

impl EtcdWatcher {
    pub(crate) fn new() -> EtcdWatcher {
        EtcdWatcher {
            watch: None,
            last_revision: 0,
            stalled: false,
        }
    }
}
