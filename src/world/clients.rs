//! The informer clients of a world: each client identity's slot (its running process, its
//! connection, the bookkeeping of its requests) and the handlers that touch only the client:
//! its reflector's requests and timer, its store calls, pops and handler calls. What crosses
//! to an apiserver is routed by the world.

use std::collections::BTreeMap;

use crate::api::{ClientMessage, ListOptions, RequestId, ServerMessage};
use crate::bug::Bugs;
use crate::check::Violation;
use crate::client::reflector::{ReflectorOutput, StoreOp};
use crate::client::{Delivered, Fifo, Notification, PopWait, SharedIndexInformer};
use crate::object::ResourceVersion;
use crate::sim::{Delivery, RngStream, SimDuration};

use super::client_process::{ClientProcess, Connection, Direction};
use super::core::Core;
use super::event::Ev;
use super::probes::ClientMarks;
use super::trace_event::{Actor, Answer, TraceEvent, TracedDeltas};

/// Everything the world keeps for one client identity.
pub(crate) struct ClientSlot {
    pub(crate) process: ClientProcess,
    pub(crate) incarnation: u32,
    pub(crate) wire: Wire,
    /// The relists this incarnation had run when the faults healed, if its watch stream was
    /// then open and healthy.
    pub(crate) relists_at_heal: Option<u64>,
}

/// A client identity's side of the wire, whatever client runs behind it: its connection, the
/// bookkeeping of its requests, and what faults did to it.
pub(crate) struct Wire {
    pub(crate) connection: Connection,
    /// Each list request's options and etcd's revision when it reached its apiserver.
    pub(crate) lists: BTreeMap<RequestId, (ListOptions, Option<ResourceVersion>)>,
    /// Whether the client reads its streams (not a slow consumer right now).
    pub(crate) reading: bool,
    /// The next message to the client is held back by this much.
    pub(crate) delay_spike: Option<SimDuration>,
    /// What the coverage probes track of this client.
    pub(crate) marks: ClientMarks,
}

impl Wire {
    /// The wire of a client connecting to the apiserver the balancer picks among
    /// `apiservers`, its connection's generation counting from `incarnation`.
    pub(crate) fn new(core: &mut Core, incarnation: u32, apiservers: usize) -> Wire {
        let apiserver = core.streams.balancer.below(apiservers as u64) as usize;
        let generation = u64::from(incarnation) << 32;
        let now = core.now();
        Wire {
            connection: Connection::new(apiserver, generation, core.scenario.clients.link, now),
            lists: BTreeMap::new(),
            reading: true,
            delay_spike: None,
            marks: ClientMarks::default(),
        }
    }

    /// Records and checks a request, and puts it on the link to the apiserver (unless the
    /// connection went silent).
    pub(crate) fn send(&mut self, core: &mut Core, client: usize, message: ClientMessage) {
        core.record(
            Actor::Client(client),
            &TraceEvent::Request { message: &message },
        );
        let now = core.now();
        let clock = (now, &core.revisions);
        self.marks.request(&mut core.stats.probes, clock, &message);
        if let ClientMessage::List { id, options } = &message {
            self.lists.insert(*id, (options.clone(), None));
        }
        core.checker.on_request(client, &message, core.read_floor);
        if self.connection.silent {
            return;
        }
        let generation = self.connection.generation;
        if let Some(delivery) = self.connection.to_server.send(now, &mut core.streams.links) {
            core.kernel.schedule_at(
                delivery.at,
                Ev::ToServer {
                    client,
                    generation,
                    delivery,
                    message,
                },
            );
        }
    }

    /// A server message on this connection (sent on `generation`) arrives.
    pub(crate) fn delivers(
        &self,
        generation: u64,
        delivery: Delivery,
        direction: Direction,
    ) -> bool {
        self.connection.delivers(generation, delivery, direction)
    }

    /// Puts a message from `apiserver` on the link to this client, unless the connection went
    /// elsewhere or silent.
    pub(crate) fn send_answer(
        &mut self,
        core: &mut Core,
        client: usize,
        apiserver: usize,
        message: ServerMessage,
    ) {
        if self.connection.apiserver != apiserver || self.connection.silent {
            return;
        }
        let now = core.now();
        let generation = self.connection.generation;
        let link = &mut self.connection.to_client;
        let delivery = match self.delay_spike.take() {
            Some(extra) => link.send_delayed(now, extra, &mut core.streams.links),
            None => link.send(now, &mut core.streams.links),
        };
        if let Some(delivery) = delivery {
            core.kernel.schedule_at(
                delivery.at,
                Ev::ToClient {
                    client,
                    generation,
                    delivery,
                    message,
                },
            );
        }
    }

    /// A server message reaches the client: the checker sees it and the trace records it,
    /// before the client does.
    pub(crate) fn receive(
        &mut self,
        core: &mut Core,
        client: usize,
        message: &ServerMessage,
    ) -> Result<(), Violation> {
        let apiserver = self.connection.apiserver;
        self.connection.last_frame_at = core.now();
        let mut found = core.checker.on_answer(client, apiserver, message);
        match message {
            ServerMessage::List { id, result } => {
                if let (Some((options, arrival)), Ok(page)) = (self.lists.remove(id), result) {
                    let arrival = arrival.expect("a list answered after it arrived");
                    self.marks
                        .list_answered(&mut core.stats.probes, page, arrival);
                    found.extend(core.checker.on_list_page(&options, arrival, page));
                }
            }
            ServerMessage::WatchEvent { event, .. } => {
                self.marks.watch_event(&mut core.stats.probes, event);
            }
            ServerMessage::WatchRejected { .. } | ServerMessage::WatchClosed { .. } => {}
        }
        self.marks.watch_answered(&mut core.stats.probes, message);
        core.report(found)?;
        core.record(
            Actor::Client(client),
            &TraceEvent::Answer {
                answer: Answer::of(message),
            },
        );
        Ok(())
    }
}

impl ClientSlot {
    /// Incarnation `incarnation` of client `client`, connected to the apiserver the balancer
    /// picks among `apiservers`.
    pub(crate) fn new(
        core: &mut Core,
        client: usize,
        incarnation: u32,
        apiservers: usize,
    ) -> ClientSlot {
        let now = core.now();
        let rng = RngStream::new(core.streams.seed, &format!("client-{client}-{incarnation}"));
        let bugs = Bugs::new(core.scenario.bug);
        let clients = &core.scenario.clients;
        let selector = clients.selector.for_client(client, &core.scenario.workload);
        let process = ClientProcess::new(clients, selector.clone(), bugs, now, rng);
        core.checker
            .on_client_started(client, process.handlers.len(), selector);
        ClientSlot {
            process,
            incarnation,
            wire: Wire::new(core, incarnation, apiservers),
            relists_at_heal: None,
        }
    }

    /// Schedules the scenario's late handlers of this incarnation at random times.
    pub(crate) fn schedule_late_handlers(&self, core: &mut Core, client: usize) {
        ClientProcess::schedule_late_handlers(core, client, self.incarnation);
    }

    /// `AddEventHandler` on the running informer (see [`ClientProcess::add_late_handler`]).
    pub(crate) fn add_late_handler(&mut self, core: &mut Core, client: usize) {
        self.process
            .add_late_handler(core, client, self.incarnation);
    }

    /// Handler `handler` takes its next notification (see [`ClientProcess::run_handler`]).
    pub(crate) fn run_handler(
        &mut self,
        core: &mut Core,
        client: usize,
        handler: usize,
    ) -> Result<Option<Delivered>, Violation> {
        self.process
            .run_handler(core, client, self.incarnation, handler)
    }

    /// Runs the reflector's outputs: requests go on the link, store calls into the informer.
    /// Then checks the safe point and re-arms the reflector's timer.
    pub(crate) fn drain(&mut self, core: &mut Core, client: usize) -> Result<(), Violation> {
        while let Some(output) = self.process.reflector.poll_output() {
            match output {
                ReflectorOutput::Send(message) => self.wire.send(core, client, message),
                ReflectorOutput::Store(op) => self.apply_store_op(core, client, op)?,
            }
        }
        let last_sync = self.process.reflector.last_sync_resource_version();
        let found = core.checker.on_last_sync(client, last_sync);
        core.report(found)?;
        self.schedule_timer(core, client);
        Ok(())
    }

    fn schedule_timer(&mut self, core: &mut Core, client: usize) {
        let Some(at) = self.process.reflector.poll_timeout() else {
            return;
        };
        if let Some(at) = self.process.timer.arm(at) {
            let incarnation = self.incarnation;
            core.kernel.schedule_at(
                at.max(core.now()),
                Ev::ClientTimer {
                    client,
                    incarnation,
                },
            );
        }
    }

    /// The reflector's timer event.
    /// The reflector's timer event; false when it was not due (a stale event).
    pub(crate) fn timer(&mut self, core: &mut Core, client: usize) -> bool {
        let now = core.now();
        self.process.timer.fire(now);
        let reflector = &mut self.process.reflector;
        if reflector.poll_timeout().is_none_or(|at| at > now) {
            self.schedule_timer(core, client);
            return false;
        }
        reflector.handle_timeout(now);
        core.record(Actor::Client(client), &TraceEvent::ReflectorTimer);
        true
    }

    fn apply_store_op(
        &mut self,
        core: &mut Core,
        client: usize,
        op: StoreOp,
    ) -> Result<(), Violation> {
        let now = core.now();
        let touched = core.checker.on_store_op(client, &op);
        let informer = &mut self.process.informer;
        match op {
            StoreOp::Replace {
                items,
                resource_version,
            } if self.process.reflector.last_replace_from_watch_list() => {
                informer.replace_from_watch_list(now, items, resource_version);
            }
            StoreOp::Replace {
                items,
                resource_version,
            } => informer.replace(now, items, resource_version),
            StoreOp::Add(object) => informer.add(now, object),
            StoreOp::Update(object) => informer.update(now, object),
            StoreOp::Delete(object) => {
                informer.delete(now, object);
            }
            StoreOp::Bookmark(resource_version) => informer.bookmark(now, resource_version),
            StoreOp::Resync => {
                core.stats.probes.resync_skips += resync_skips(informer);
                informer.resync(now);
            }
        }
        self.schedule_pop(core, client);
        let found = core
            .checker
            .check_queue(client, &self.process.informer, &touched);
        core.report(found)
    }

    fn schedule_pop(&mut self, core: &mut Core, client: usize) {
        let delay = core.client_delay(core.scenario.clients.process_ms_max);
        if !self.process.pop_scheduled {
            self.process.pop_scheduled = true;
            let incarnation = self.incarnation;
            core.kernel.schedule_in(
                delay,
                Ev::InformerPop {
                    client,
                    incarnation,
                },
            );
        }
    }

    /// A server message reaches the client: the checker sees it first, then the reflector.
    pub(crate) fn answer(
        &mut self,
        core: &mut Core,
        client: usize,
        message: ServerMessage,
    ) -> Result<(), Violation> {
        self.wire.receive(core, client, &message)?;
        self.process.reflector.handle_message(core.now(), message);
        self.drain(core, client)
    }

    /// The informer pops and processes one item; the checker sees what it did.
    pub(crate) fn pop(&mut self, core: &mut Core, client: usize) -> Result<(), Violation> {
        let now = core.now();
        self.process.pop_scheduled = false;
        let error_probability = core.scenario.clients.process_error_probability;
        let informer = &mut self.process.informer;
        if error_probability > 0.0 && core.streams.clients.chance(error_probability) {
            informer.fail_next_processing();
        }
        let Some(processed) = informer.process_next(now) else {
            if informer.fifo().pop_wait() == PopWait::CheckedOpen {
                self.schedule_pop_wait(core, client);
            }
            return Ok(());
        };
        core.stats.pops += 1;
        // A relist's tombstone is queued (DeltaFIFO, RealFIFO) or made while an atomic
        // RealFIFO's Replace is processed: count what reached the handlers.
        core.stats.tombstones += processed
            .distributed
            .iter()
            .filter(|d| matches!(&d.notification, Notification::Delete(obj) if obj.is_tombstone()))
            .count() as u64;
        let deltas = &processed.popped.deltas;
        core.record(
            Actor::Client(client),
            &TraceEvent::Pop {
                key: processed.popped.key(),
                deltas: TracedDeltas(deltas),
            },
        );
        let found = core
            .checker
            .on_pop(client, &self.process.informer, &processed);
        let mut recipients: Vec<usize> = Vec::new();
        for id in processed.distributed.iter().flat_map(|d| &d.recipients) {
            if let Some(index) = self
                .process
                .handlers
                .iter()
                .position(|handler| handler == id)
                && !recipients.contains(&index)
            {
                recipients.push(index);
            }
        }
        for handler in recipients {
            self.process
                .schedule_handler(core, client, self.incarnation, handler);
        }
        self.schedule_pop(core, client);
        core.report(found)
    }

    /// A Pop that checked `closed` waits a processing delay later: the window a Close can
    /// land in (SPEC §8 B28). Only reached with the bug planted, so no run without it draws.
    fn schedule_pop_wait(&self, core: &mut Core, client: usize) {
        let delay = core.client_delay(core.scenario.clients.process_ms_max);
        let incarnation = self.incarnation;
        core.kernel.schedule_in(
            delay,
            Ev::InformerWait {
                client,
                incarnation,
            },
        );
    }

    /// The process stops (SPEC §8 B28): its informer closes the FIFO, and the Pop waiting on
    /// the empty queue must return `ErrFIFOClosed` within one step.
    pub(crate) fn stop(&mut self, core: &mut Core, client: usize) -> Result<(), Violation> {
        let stopped = self.process.informer.stop();
        core.stats.probes.closes_under_pop += u64::from(stopped.at_close != PopWait::Running);
        let found = core.checker.on_client_stopped(client, stopped);
        core.report(found)
    }
}

/// Known keys a DeltaFIFO resync skips because they still have queued deltas
/// (delta_fifo.go `syncKeyLocked`; SPEC §10 T9).
fn resync_skips(informer: &SharedIndexInformer) -> u64 {
    match informer.fifo() {
        Fifo::Delta(fifo) => fifo
            .queued()
            .filter(|(key, _)| informer.indexer().get_by_key(key).is_some())
            .count() as u64,
        Fifo::Real(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::world::core::tests::core_for;

    fn closed(id: RequestId) -> ServerMessage {
        ServerMessage::WatchClosed { id }
    }

    #[test]
    fn answers_travel_only_on_the_client_s_current_open_connection() {
        let mut core = core_for(Scenario::default());
        let mut slot = ClientSlot::new(&mut core, 0, 0, 1);
        slot.wire.send_answer(&mut core, 0, 1, closed(1));
        assert_eq!(core.kernel.next_time(), None, "another apiserver's answer");
        slot.wire.connection.silent = true;
        slot.wire.send_answer(&mut core, 0, 0, closed(1));
        assert_eq!(core.kernel.next_time(), None, "a silent connection");
        slot.wire.connection.silent = false;
        slot.wire.send_answer(&mut core, 0, 0, closed(1));
        assert!(core.kernel.next_time().is_some());
    }

    #[test]
    fn a_delay_spike_holds_back_exactly_the_next_answer() {
        let mut core = core_for(Scenario::default());
        let mut slot = ClientSlot::new(&mut core, 0, 0, 1);
        slot.wire.delay_spike = Some(SimDuration::from_secs(5));
        slot.wire.send_answer(&mut core, 0, 0, closed(1));
        assert!(slot.wire.delay_spike.is_none());
        let held = core.kernel.next_time().expect("scheduled");
        assert!(held >= crate::sim::SimTime(5_000), "{held}");
    }

    #[test]
    fn a_starting_legacy_client_asks_its_apiserver_for_a_list() {
        let mut scenario = Scenario::default();
        scenario.clients.client_go = crate::client::ClientGoRelease::V1_30;
        let mut core = core_for(scenario);
        let mut slot = ClientSlot::new(&mut core, 0, 0, 1);
        slot.drain(&mut core, 0).expect("a start breaks nothing");
        assert_eq!(slot.wire.lists.len(), 1, "the first list is in flight");
        assert_eq!(core.trace.steps(), 1, "one request recorded");
    }
}
