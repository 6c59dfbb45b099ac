//! One informer client process (a Reflector feeding a shared informer with its handlers) and
//! the connection it talks to an apiserver over.

use crate::api::Selectors;
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
        selectors: Selectors,
        bugs: Bugs,
        now: SimTime,
        rng: RngStream,
    ) -> ClientProcess {
        let resync_period =
            (config.resync_period_ms > 0).then_some(SimDuration(config.resync_period_ms));
        let reflector_config = ReflectorConfig {
            use_watch_list: config.initial_list() == InitialList::WatchList,
            consistent_first_list: config.initial_list() == InitialList::ConsistentList,
            resync_period,
            min_watch_timeout: config.min_watch_timeout(),
            page_size: (config.page_size > 0).then_some(config.page_size),
            label_selector: selectors.label,
            field_selector: selectors.field,
            ..ReflectorConfig::default()
        };
        let mut informer_config = InformerConfig::new(config.fifo());
        informer_config.resync_check_period = resync_period;
        informer_config.batch_process = config.batch_process();
        informer_config.transform = config.transform;
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
    /// When the client last read a frame on it (the HTTP/2 read loop's idle timer).
    pub(crate) last_frame_at: SimTime,
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

    pub(crate) fn new(
        apiserver: usize,
        generation: u64,
        delay: DelayConfig,
        now: SimTime,
    ) -> Connection {
        Connection {
            apiserver,
            generation,
            to_server: Link::new(delay),
            to_client: Link::new(delay),
            silent: false,
            last_frame_at: now,
        }
    }

    /// Mirrors x/net http2 `clientConnReadLoop.run` and `ClientConn.healthCheck`: a PING goes
    /// out after `read_idle` without a frame (a healthy peer's ack is a frame, so on a live but
    /// quiet connection PINGs come every `read_idle`); once the connection went silent at
    /// `silent_at`, the first unanswered PING closes it `ping_timeout` later.
    pub(crate) fn health_check_closes_at(
        &self,
        silent_at: SimTime,
        read_idle: SimDuration,
        ping_timeout: SimDuration,
    ) -> SimTime {
        let quiet = silent_at.saturating_since(self.last_frame_at).as_millis();
        let pings = quiet.div_ceil(read_idle.as_millis()).max(1);
        self.last_frame_at + SimDuration(pings * read_idle.as_millis()) + ping_timeout
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

    /// x/net's health check: PINGs every 30 s of quiet keep a live connection; once it went
    /// silent, the first PING after that goes unanswered and closes it 15 s later.
    #[test]
    fn the_health_check_closes_a_silent_connection_at_its_first_unanswered_ping() {
        let mut connection = Connection::new(0, 1, delay(), SimTime(1_000));
        let (idle, ping) = (SimDuration::from_secs(30), SimDuration::from_secs(15));
        let closes = |connection: &Connection, silent_at| {
            connection.health_check_closes_at(SimTime(silent_at), idle, ping)
        };
        assert_eq!(
            closes(&connection, 1_000),
            SimTime(46_000),
            "silent at once"
        );
        assert_eq!(
            closes(&connection, 20_000),
            SimTime(46_000),
            "before the first PING"
        );
        assert_eq!(
            closes(&connection, 31_000),
            SimTime(46_000),
            "at the first PING"
        );
        assert_eq!(
            closes(&connection, 31_001),
            SimTime(76_000),
            "the first PING was answered"
        );
        connection.last_frame_at = SimTime(50_000);
        assert_eq!(
            closes(&connection, 50_000),
            SimTime(95_000),
            "a frame resets the timer"
        );
    }

    #[test]
    fn a_message_arrives_only_on_the_connection_it_was_sent_on() {
        let mut links = RngStream::new(1, "links");
        let mut connection = Connection::new(0, 7, delay(), SimTime::ZERO);
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
            client_go: crate::client::ClientGoRelease::V1_30,
            ..ClientsConfig::default()
        };
        let mut process = ClientProcess::new(
            &config,
            Selectors::default(),
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
            "a started 1.30 reflector lists first: {first:?}"
        );
    }
}
