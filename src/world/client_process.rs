//! One informer client process (a Reflector feeding a shared informer with its handlers) and
//! the connection it talks to an apiserver over.

use crate::bug::Bugs;
use crate::client::reflector::{Reflector, ReflectorConfig};
use crate::client::{HandlerId, InformerConfig, SharedIndexInformer};
use crate::scenario::{ClientsConfig, InitialList};
use crate::sim::{DelayConfig, Delivery, Link, RngStream, SimDuration, SimTime, Wakeup};

/// One process incarnation: what a restart throws away.
pub(crate) struct ClientProcess {
    pub(crate) reflector: Reflector,
    pub(crate) informer: SharedIndexInformer,
    pub(crate) handlers: Vec<HandlerId>,
    pub(crate) pop_scheduled: bool,
    pub(crate) handler_scheduled: Vec<bool>,
    /// The kernel event armed for the reflector's timer.
    pub(crate) timer: Wakeup,
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
            handlers,
            pop_scheduled: false,
            timer: Wakeup::default(),
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
