//! One informer client process (a Reflector feeding a shared informer with its handlers) and
//! the connection it talks to an apiserver over.

use crate::api::LabelSelector;
use crate::bug::Bugs;
use crate::check::Violation;
use crate::client::reflector::{Reflector, ReflectorConfig};
use crate::client::{Delivered, HandlerId, InformerConfig, SharedIndexInformer};
use crate::scenario::{ClientsConfig, InitialList};
use crate::sim::{DelayConfig, Delivery, Link, RngStream, SimDuration, SimTime, Wakeup};

use super::core::Core;
use super::event::Ev;
use super::trace_event::{Actor, TraceEvent};

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
        label_selector: Option<LabelSelector>,
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
            label_selector,
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

    /// Schedules the scenario's late handlers of this incarnation at random times.
    pub(crate) fn schedule_late_handlers(core: &mut Core, client: usize, incarnation: u32) {
        let window = core.scenario.duration_ms.max(1);
        for _ in 0..core.scenario.clients.late_handlers {
            let at = core.now() + SimDuration(core.streams.clients.below(window));
            core.kernel.schedule_at(
                at,
                Ev::AddLateHandler {
                    client,
                    incarnation,
                },
            );
        }
    }

    /// `AddEventHandler` on a running informer: the new handler first gets every indexer
    /// object as an initial add, then the deltas that follow (SPEC §5.2, §10 T8).
    pub(crate) fn add_late_handler(&mut self, core: &mut Core, client: usize, incarnation: u32) {
        let resync = SimDuration(core.scenario.clients.resync_period_ms);
        let id = self.informer.add_event_handler(core.now(), resync);
        self.handlers.push(id);
        self.handler_scheduled.push(false);
        core.checker.on_handler_added(client);
        let handler = self.handlers.len() - 1;
        let initial_adds = self.informer.pending_notifications(id);
        core.record(
            Actor::Client(client),
            &TraceEvent::LateHandler {
                handler,
                initial_adds,
            },
        );
        self.schedule_handler(core, client, incarnation, handler);
    }

    pub(crate) fn schedule_handler(
        &mut self,
        core: &mut Core,
        client: usize,
        incarnation: u32,
        handler: usize,
    ) {
        let delay = core.client_delay(core.scenario.clients.handler_ms_max);
        if !self.handler_scheduled[handler] {
            self.handler_scheduled[handler] = true;
            core.kernel.schedule_in(
                delay,
                Ev::HandlerRun {
                    client,
                    incarnation,
                    handler,
                },
            );
        }
    }

    /// Handler `handler` takes its next notification, which the checker sees and which is
    /// returned.
    pub(crate) fn run_handler(
        &mut self,
        core: &mut Core,
        client: usize,
        incarnation: u32,
        handler: usize,
    ) -> Result<Option<Delivered>, Violation> {
        self.handler_scheduled[handler] = false;
        let id = self.handlers[handler];
        let informer = &mut self.informer;
        let Some(delivered) = informer.deliver_next(core.now(), id) else {
            return Ok(None);
        };
        let pending = informer.pending_notifications(id);
        core.stats.notifications += 1;
        core.record(
            Actor::Client(client),
            &TraceEvent::Handler {
                handler,
                notification: &delivered.notification,
            },
        );
        let found = core
            .checker
            .on_delivery(client, handler, id, &self.informer, &delivered);
        if pending > 0 {
            self.schedule_handler(core, client, incarnation, handler);
        }
        core.report(found)?;
        Ok(Some(delivered))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::RngStream;

    fn delay() -> DelayConfig {
        DelayConfig {
            delay_ms_min: 1,
            delay_ms_max: 1,
        }
    }

    #[test]
    fn a_message_arrives_only_on_the_connection_it_was_sent_on() {
        let mut links = RngStream::new(1, "links");
        let mut connection = Connection::new(0, 7, delay());
        let sent = connection
            .to_client
            .send(SimTime::ZERO, &mut links)
            .expect("an open link sends");
        assert!(connection.delivers(7, sent, Direction::ToClient));
        assert!(
            !connection.delivers(8, sent, Direction::ToClient),
            "a newer connection"
        );
        connection.silent = true;
        assert!(
            !connection.delivers(7, sent, Direction::ToClient),
            "a silent connection"
        );
        connection.silent = false;
        connection.to_client.disconnect();
        assert!(
            !connection.delivers(7, sent, Direction::ToClient),
            "a broken link"
        );
    }

    #[test]
    fn a_process_registers_its_handlers_before_its_informer_runs() {
        let config = ClientsConfig {
            handlers: 2,
            handlers_without_resync: 1,
            resync_period_ms: 1_000,
            ..ClientsConfig::default()
        };
        let mut process = ClientProcess::new(
            &config,
            None,
            Bugs::NONE,
            SimTime::ZERO,
            RngStream::new(1, "c"),
        );
        assert_eq!(process.handlers.len(), 3);
        assert_eq!(process.handler_scheduled, vec![false; 3]);
        assert!(process.informer.has_started());
        let first = process.reflector.poll_output();
        assert!(
            matches!(
                first,
                Some(crate::client::reflector::ReflectorOutput::Send(
                    crate::api::ClientMessage::List { .. }
                ))
            ),
            "a started reflector lists first: {first:?}"
        );
    }
}
