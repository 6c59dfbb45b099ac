//! An informer client process: a Reflector feeding a shared informer with its handlers, the
//! connection it talks to an apiserver over, and the observers that check it.

use std::collections::BTreeMap;

use crate::api::{ListOptions, RequestId};
use crate::bug::Bugs;
use crate::check::api_oracle::WatchStreamOracle;
use crate::check::client::{ReflectorView, RvHistory};
use crate::client::reflector::{Reflector, ReflectorConfig};
use crate::client::{HandlerId, InformerConfig, SharedIndexInformer};
use crate::object::ResourceVersion;
use crate::scenario::{ClientsConfig, InitialList};
use crate::sim::{DelayConfig, Delivery, Link, RngStream, SimDuration, SimTime};

use super::probes::ClientMarks;

/// One process incarnation: what a restart throws away.
pub(crate) struct ClientProcess {
    pub(crate) reflector: Reflector,
    pub(crate) informer: SharedIndexInformer,
    pub(crate) handlers: Vec<HandlerId>,
    /// The state the reflector's store calls describe (the safe-point oracle's view).
    pub(crate) view: ReflectorView,
    /// The last synced RV already checked against etcd.
    pub(crate) last_sync_checked: Option<ResourceVersion>,
    pub(crate) pop_scheduled: bool,
    pub(crate) handler_scheduled: Vec<bool>,
    /// Whether each registration's first synced moment was checked (B20).
    pub(crate) handler_synced_checked: Vec<bool>,
    pub(crate) timer_at: Option<SimTime>,
}

impl ClientProcess {
    pub(crate) fn new(
        config: &ClientsConfig,
        bugs: Bugs,
        now: SimTime,
        rng: RngStream,
    ) -> ClientProcess {
        let resync_period =
            (config.resync_period_ms > 0).then_some(SimDuration(config.resync_period_ms));
        let reflector_config = ReflectorConfig {
            use_watch_list: config.initial_list == InitialList::WatchList,
            consistent_first_list: config.initial_list == InitialList::ConsistentList,
            resync_period,
            min_watch_timeout: SimDuration(config.min_watch_timeout_ms),
            page_size: (config.page_size > 0).then_some(config.page_size),
            idle_timeout: (config.idle_timeout_ms > 0)
                .then_some(SimDuration(config.idle_timeout_ms)),
            ..ReflectorConfig::default()
        };
        let mut informer_config = InformerConfig::new(config.fifo);
        informer_config.resync_check_period = resync_period;
        let mut informer = SharedIndexInformer::new(informer_config, bugs);
        let resyncing = (0..config.handlers).map(|_| resync_period.unwrap_or(SimDuration::ZERO));
        let never = (0..config.handlers_without_resync).map(|_| SimDuration::ZERO);
        let handlers = resyncing
            .chain(never)
            .map(|period| informer.add_event_handler(now, period))
            .collect::<Vec<_>>();
        informer.run(now);
        let mut reflector = Reflector::new(reflector_config, rng, bugs);
        reflector.start(now);
        ClientProcess {
            reflector,
            informer,
            handler_scheduled: vec![false; handlers.len()],
            handler_synced_checked: vec![false; handlers.len()],
            handlers,
            view: ReflectorView::default(),
            last_sync_checked: None,
            pop_scheduled: false,
            timer_at: None,
        }
    }
}

/// A client's connection to one apiserver: two ordered links. A new connection gets a new
/// generation, so messages of an old one are dropped when they arrive.
pub(crate) struct Connection {
    pub(crate) apiserver: usize,
    pub(crate) generation: u64,
    pub(crate) to_server: Link,
    pub(crate) to_client: Link,
    /// Half-open: messages vanish in both directions and nobody is told.
    pub(crate) silent: bool,
}

/// Which way a message travels on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    ToServer,
    ToClient,
}

impl Connection {
    /// Whether a message sent on generation `generation` with `delivery` still arrives: the
    /// connection is the same one, not silent, and its link did not break since.
    pub(crate) fn delivers(
        &self,
        generation: u64,
        delivery: Delivery,
        direction: Direction,
    ) -> bool {
        let link = match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        };
        self.generation == generation && !self.silent && link.accepts(delivery)
    }

    pub(crate) fn new(apiserver: usize, generation: u64, delay: DelayConfig) -> Connection {
        Connection {
            apiserver,
            generation,
            to_server: Link::new(delay),
            to_client: Link::new(delay),
            silent: false,
        }
    }
}

/// Everything the world keeps for one client identity.
pub(crate) struct ClientSlot {
    pub(crate) process: ClientProcess,
    pub(crate) incarnation: u32,
    pub(crate) connection: Connection,
    /// Per-key RVs seen, persisted across restarts (the B1 oracle).
    pub(crate) history: RvHistory,
    pub(crate) watch_oracles: BTreeMap<RequestId, WatchStreamOracle>,
    /// Each list request's options and etcd's revision when it reached its apiserver.
    pub(crate) lists: BTreeMap<RequestId, (ListOptions, Option<ResourceVersion>)>,
    /// The client stopped reading (a slow consumer) until this time.
    pub(crate) reading: bool,
    /// The next message to the client is held back by this much.
    pub(crate) delay_spike: Option<SimDuration>,
    /// Relists of earlier incarnations.
    pub(crate) relists_before: u64,
    /// What the coverage probes track of this client.
    pub(crate) marks: ClientMarks,
}
