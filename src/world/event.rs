//! Everything that can happen in a world, as the kernel queues it.

use crate::api::{ClientMessage, ServerMessage};
use crate::etcd::{Revision, WatchId, WatchResponse};
use crate::sim::Delivery;

use super::faults::TimedFault;

/// One event of the kernel's queue. Indexes name the part they are for: a writer, a raw etcd
/// watcher, an apiserver, a client identity (with its process `incarnation`: events of a
/// restarted process's earlier incarnation find nothing), one of its handlers.
#[derive(Clone, Debug)]
pub(crate) enum Ev {
    /// A writer reads a random key and plans a write.
    WriterWake { writer: usize },
    /// A writer commits its planned write.
    WriterCommit { writer: usize },
    /// kube-apiserver's compactor ticks.
    CompactTick,
    /// etcd's progress-notify timer ticks.
    ProgressTick,
    /// A raw etcd watcher opens its watch.
    WatcherStart { watcher: usize },
    /// A raw etcd watcher reads again after a stall.
    StallEnd { watcher: usize },
    /// A watch message reaches a raw etcd watcher.
    Deliver {
        watcher: usize,
        delivery: Delivery,
        response: WatchResponse,
        /// etcd's compact revision when the message was made (what the oracle may excuse).
        compact_revision: Revision,
    },
    /// The fault phase ends.
    Heal,
    /// A healed run checks whether it has settled.
    SettleCheck,
    /// An apiserver's timer.
    ApiserverTimer { apiserver: usize },
    /// A message of its etcd watch reaches an apiserver's cacher.
    EtcdToApiserver {
        apiserver: usize,
        delivery: Delivery,
        response: WatchResponse,
    },
    /// A client's request reaches its apiserver (or a refused connection).
    ToServer {
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ClientMessage,
    },
    /// An apiserver's answer reaches its client.
    ToClient {
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ServerMessage,
    },
    /// HTTP/2's health check gives up on a client's silent connection `generation`.
    HealthCheck { client: usize, generation: u64 },
    /// A client's reflector timer.
    ClientTimer { client: usize, incarnation: u32 },
    /// A client's informer pops and processes one item.
    InformerPop { client: usize, incarnation: u32 },
    /// The second step of a Pop that found the queue empty (B28 planted).
    InformerWait { client: usize, incarnation: u32 },
    /// One of a client's handlers takes its next notification.
    HandlerRun {
        client: usize,
        incarnation: u32,
        handler: usize,
    },
    /// A planned fault strikes.
    Fault(TimedFault),
    /// A slow consumer reads again.
    SlowConsumerEnd { client: usize },
    /// An apiserver's etcd watch is read again.
    CacheStallEnd { watch: WatchId },
    /// A handler registers on a running informer.
    AddLateHandler { client: usize, incarnation: u32 },
    /// A controller worker takes its next key and reconciles it.
    ControllerWorker { worker: usize },
    /// A controller worker's reconcile ends (in controller incarnation `incarnation`).
    ControllerDone { worker: usize, incarnation: u32 },
    /// The controller's work queue: rate-limited keys come due.
    ControllerTimer,
    /// A kube-rs client has output (requests, store steps) at this time.
    #[cfg_attr(not(feature = "kube"), allow(dead_code))]
    KubeWake { client: usize, incarnation: u32 },
}
