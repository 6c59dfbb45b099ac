//! The apiservers and the informer clients of a world: message routing over the links,
//! faults, the oracles on every message, and the settle check.

use crate::api::{ClientMessage, RequestError, ServerMessage, WatchEvent};
use crate::bug::Bugs;
use crate::check::Invariant;
use crate::check::Violation;
use crate::check::api_oracle::{Freshness, WatchStreamOracle, check_list};
use crate::check::client::{RvHistory, by_key, etcd_state, first_difference};
use crate::client::reflector::{ReflectorError, ReflectorOutput, ReflectorPhase, StoreOp};
use crate::client::{
    Delta, DeltaObject, Fifo, Notification, PopWait, SharedIndexInformer,
    check_mirror_equals_indexer,
};
use crate::scenario::Scenario;
use crate::sim::{DelayConfig, Delivery, RngStream, SimDuration, SimTime};

use super::client::{ClientProcess, ClientSlot, Connection, Direction};
use super::faults::{Fault, TimedFault};
use super::probes::ClientMarks;
use super::writer::RESOURCE_PREFIX;
use super::{Ev, TraceEvent, World};

/// The etcd link of apiserver `index`: the base delay plus its lag.
pub(super) fn etcd_link_delay(scenario: &Scenario, index: usize) -> DelayConfig {
    let base = scenario.apiservers.etcd_link;
    let lag = scenario.apiservers.lag_ms_per_index * index as u64;
    DelayConfig {
        delay_ms_min: base.delay_ms_min + lag,
        delay_ms_max: base.delay_ms_max + lag,
    }
}

/// The client's slot, if `incarnation` is still the running one (events of a restarted
/// process's previous incarnation find nothing).
fn live_slot(
    clients: &mut [Option<ClientSlot>],
    client: usize,
    incarnation: u32,
) -> Option<&mut ClientSlot> {
    clients[client]
        .as_mut()
        .filter(|slot| slot.incarnation == incarnation)
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

fn describe_object(object: &DeltaObject) -> String {
    match object {
        DeltaObject::Object(object) => object.to_string(),
        DeltaObject::Tombstone(tombstone) => {
            format!(
                "DFSU({}, {})",
                tombstone.key,
                tombstone
                    .obj
                    .as_ref()
                    .map_or("nil".to_owned(), ToString::to_string)
            )
        }
    }
}

fn describe_delta(delta: &Delta) -> String {
    let what = match delta {
        Delta::Added(object)
        | Delta::Updated(object)
        | Delta::Replaced(object)
        | Delta::Sync(object) => object.to_string(),
        Delta::Deleted(object) => describe_object(object),
        Delta::ReplacedAll(info) => format!(
            "{} objects at {}",
            info.objects.len(),
            info.resource_version
        ),
        Delta::SyncAll => String::new(),
        Delta::Bookmark(resource_version) => resource_version.to_string(),
    };
    format!("{} {what}", delta.delta_type().as_str())
}

fn describe_notification(notification: &Notification) -> String {
    match notification {
        Notification::Add {
            obj,
            is_in_initial_list,
        } => format!("add {obj} initial={is_in_initial_list}"),
        Notification::Update { old, new } => format!("update {old} -> {new}"),
        Notification::Delete(object) => format!("delete {}", describe_object(object)),
    }
}

fn describe_answer(message: &ServerMessage) -> String {
    match message {
        ServerMessage::List {
            id,
            result: Ok(page),
        } => format!(
            "list {id}: {} items at {}{}",
            page.items.len(),
            page.resource_version,
            if page.continue_token.is_some() {
                ", more"
            } else {
                ""
            }
        ),
        ServerMessage::List {
            id,
            result: Err(error),
        } => format!("list {id}: {error:?}"),
        ServerMessage::WatchRejected { id, error } => format!("watch {id} rejected: {error:?}"),
        ServerMessage::WatchEvent { id, event } => match event {
            WatchEvent::Added(object) => format!("watch {id}: ADDED {object}"),
            WatchEvent::Modified(object) => format!("watch {id}: MODIFIED {object}"),
            WatchEvent::Deleted(object) => format!("watch {id}: DELETED {object}"),
            WatchEvent::Bookmark {
                resource_version,
                initial_events_end,
            } => {
                format!(
                    "watch {id}: BOOKMARK {resource_version}{}",
                    if *initial_events_end {
                        " initial-events-end"
                    } else {
                        ""
                    }
                )
            }
            WatchEvent::Error(status) => {
                format!("watch {id}: ERROR {} {}", status.code, status.message)
            }
        },
        ServerMessage::WatchClosed { id } => format!("watch {id}: closed"),
    }
}

/// The checks of an informer's queue against its indexer and its reflector, after every store
/// call and every pop: tombstones carry the newest known state (B5), and the indexer with the
/// queue applied is the reflector's view (B2, B4, B7).
fn check_queue(process: &ClientProcess) -> Vec<Violation> {
    let informer = &process.informer;
    let tombstones = informer
        .check_tombstones()
        .map_err(|message| Violation::new(Invariant::TombstoneCarriesNewestKnownState, message));
    let view = process.view.check_pending_state(&informer.pending_state());
    [tombstones, view]
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

impl World {
    pub(super) fn schedule_cluster_start(&mut self) {
        for apiserver in 0..self.apiservers.len() {
            self.schedule_apiserver_timer(apiserver);
        }
        if self.apiservers.is_empty() {
            return;
        }
        for client in 0..self.scenario.clients.count as usize {
            let slot = self.new_client_slot(client, 0, RvHistory::default());
            self.clients.push(Some(slot));
            self.schedule_late_handlers(client, 0);
            self.drain_client(client)
                .expect("a starting client breaks no invariant");
        }
        for timed in self.plan.faults.clone() {
            self.kernel
                .schedule_at(SimTime(timed.at_ms), Ev::Fault(timed));
        }
    }

    /// Schedules the scenario's late handlers of a client incarnation at random times.
    fn schedule_late_handlers(&mut self, client: usize, incarnation: u32) {
        let window = self.scenario.duration_ms.max(1);
        for _ in 0..self.scenario.clients.late_handlers {
            let at = self.kernel.now() + SimDuration(self.streams.clients.below(window));
            self.kernel
                .schedule_at(at, Ev::AddLateHandler(client, incarnation));
        }
    }

    /// `AddEventHandler` on a running informer: the new handler first gets every indexer
    /// object as an initial add, then the deltas that follow (SPEC §5.2, §10 T8).
    pub(super) fn add_late_handler(
        &mut self,
        client: usize,
        incarnation: u32,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = live_slot(&mut self.clients, client, incarnation) else {
            return Ok(());
        };
        let process = &mut slot.process;
        let resync = SimDuration(self.scenario.clients.resync_period_ms);
        let id = process.informer.add_event_handler(now, resync);
        process.handlers.push(id);
        process.handler_scheduled.push(false);
        process.handler_synced_checked.push(false);
        let handler = process.handlers.len() - 1;
        let initial_adds = process.informer.pending_notifications(id);
        self.record(
            &format!("client-{client}"),
            &TraceEvent::LateHandler {
                handler,
                initial_adds,
            },
        );
        self.schedule_handler(client, handler);
        Ok(())
    }

    fn new_client_slot(
        &mut self,
        client: usize,
        incarnation: u32,
        history: RvHistory,
    ) -> ClientSlot {
        let now = self.kernel.now();
        let rng = RngStream::new(self.streams.seed, &format!("client-{client}-{incarnation}"));
        let bugs = Bugs::new(self.scenario.bug);
        let process = ClientProcess::new(&self.scenario.clients, bugs, now, rng);
        let apiserver = self.streams.balancer.below(self.apiservers.len() as u64) as usize;
        let generation = u64::from(incarnation) << 32;
        ClientSlot {
            process,
            incarnation,
            connection: Connection::new(apiserver, generation, self.scenario.clients.link),
            history,
            watch_oracles: Default::default(),
            lists: Default::default(),
            reading: true,
            delay_spike: None,
            relists_before: 0,
            marks: ClientMarks::default(),
        }
    }

    fn slot(&mut self, client: usize) -> &mut ClientSlot {
        self.clients[client].as_mut().expect("a started client")
    }

    /// Runs the reflector's outputs: requests go on the link, store calls into the informer.
    /// Then checks the safe point and re-arms the reflector's timer.
    fn drain_client(&mut self, client: usize) -> Result<(), Violation> {
        while let Some(output) = self.slot(client).process.reflector.poll_output() {
            match output {
                ReflectorOutput::Send(message) => self.client_send(client, message),
                ReflectorOutput::Store(op) => self.apply_store_op(client, op)?,
            }
        }
        let slot = self.clients[client].as_mut().expect("started");
        let last_sync = slot.process.reflector.last_sync_resource_version();
        if last_sync != slot.process.last_sync_checked {
            slot.process.last_sync_checked = last_sync;
            if let Some(revision) = last_sync.filter(|revision| *revision > 0) {
                slot.process
                    .view
                    .check_safe_point(&self.reference, RESOURCE_PREFIX, revision)?;
            }
        }
        self.schedule_client_timer(client);
        Ok(())
    }

    fn schedule_client_timer(&mut self, client: usize) {
        let now = self.kernel.now();
        let slot = self.clients[client].as_mut().expect("started");
        let Some(at) = slot.process.reflector.poll_timeout() else {
            return;
        };
        if slot
            .process
            .timer_at
            .is_some_and(|scheduled| scheduled <= at)
        {
            return;
        }
        slot.process.timer_at = Some(at);
        let incarnation = slot.incarnation;
        self.kernel
            .schedule_at(at.max(now), Ev::ClientTimer(client, incarnation));
    }

    fn client_send(&mut self, client: usize, message: ClientMessage) {
        let now = self.kernel.now();
        self.record(
            &format!("client-{client}"),
            &TraceEvent::Request {
                client,
                message: &message,
            },
        );
        let slot = self.clients[client].as_mut().expect("started");
        slot.marks.request(&mut self.stats.probes, &message);
        match &message {
            ClientMessage::List { id, options } => {
                slot.lists.insert(*id, (options.clone(), None));
            }
            ClientMessage::Watch { id, options } => {
                slot.watch_oracles
                    .insert(*id, WatchStreamOracle::new(RESOURCE_PREFIX, options));
            }
            ClientMessage::StopWatch { id } => {
                slot.watch_oracles.remove(id);
            }
        }
        if slot.connection.silent {
            return;
        }
        let generation = slot.connection.generation;
        if let Some(delivery) = slot.connection.to_server.send(now, &mut self.streams.links) {
            self.kernel.schedule_at(
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

    fn apply_store_op(&mut self, client: usize, op: StoreOp) -> Result<(), Violation> {
        let now = self.kernel.now();
        let process = &mut self.clients[client].as_mut().expect("started").process;
        match op {
            StoreOp::Replace {
                items,
                resource_version,
            } => {
                process.view.replace(&items);
                process.informer.replace(now, items, resource_version);
            }
            StoreOp::Add(object) => {
                process.view.put(&object);
                process.informer.add(now, object);
            }
            StoreOp::Update(object) => {
                process.view.put(&object);
                process.informer.update(now, object);
            }
            StoreOp::Delete(object) => {
                process.view.delete(&object.key);
                process.informer.delete(now, object);
            }
            StoreOp::Bookmark(resource_version) => process.informer.bookmark(now, resource_version),
            StoreOp::Resync => {
                self.stats.probes.resync_skips += resync_skips(&process.informer);
                process.informer.resync(now);
            }
        }
        self.schedule_pop(client);
        check_queue(&self.slot(client).process)
            .into_iter()
            .try_for_each(|violation| self.report(violation))
    }

    fn schedule_pop(&mut self, client: usize) {
        let delay = self
            .streams
            .clients
            .between(0, self.scenario.clients.process_ms_max);
        let slot = self.clients[client].as_mut().expect("started");
        if !slot.process.pop_scheduled {
            slot.process.pop_scheduled = true;
            let incarnation = slot.incarnation;
            self.kernel
                .schedule_in(SimDuration(delay), Ev::InformerPop(client, incarnation));
        }
    }

    /// A client message reaches its apiserver (or a refused connection).
    pub(super) fn deliver_to_server(
        &mut self,
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ClientMessage,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = self.clients[client].as_mut().filter(|slot| {
            slot.connection
                .delivers(generation, delivery, Direction::ToServer)
        }) else {
            return Ok(());
        };
        let apiserver = slot.connection.apiserver;
        if self.apiserver_down_until[apiserver].is_some_and(|until| until > now) {
            let refused = match message {
                ClientMessage::List { id, .. } => ServerMessage::List {
                    id,
                    result: Err(RequestError::ConnectionRefused),
                },
                ClientMessage::Watch { id, .. } => ServerMessage::WatchRejected {
                    id,
                    error: RequestError::ConnectionRefused,
                },
                ClientMessage::StopWatch { .. } => return Ok(()),
            };
            self.send_to_client(client, apiserver, refused);
            return Ok(());
        }
        if let ClientMessage::List { id, .. } = &message
            && let Some(entry) = slot.lists.get_mut(id)
        {
            entry.1 = Some(self.etcd.revision());
        }
        self.apiservers[apiserver].handle_client_message(now, &mut self.etcd, client, message);
        self.flush_apiserver(apiserver);
        Ok(())
    }

    fn flush_apiserver(&mut self, apiserver: usize) {
        while let Some((client, message)) = self.apiservers[apiserver].poll_message() {
            self.send_to_client(client, apiserver, message);
        }
        self.flush_watch_responses();
        self.schedule_apiserver_timer(apiserver);
    }

    fn send_to_client(&mut self, client: usize, apiserver: usize, message: ServerMessage) {
        let now = self.kernel.now();
        let Some(slot) = self.clients.get_mut(client).and_then(Option::as_mut) else {
            return;
        };
        if slot.connection.apiserver != apiserver || slot.connection.silent {
            return;
        }
        let generation = slot.connection.generation;
        let delivery = match slot.delay_spike.take() {
            Some(extra) => {
                slot.connection
                    .to_client
                    .send_delayed(now, extra, &mut self.streams.links)
            }
            None => slot.connection.to_client.send(now, &mut self.streams.links),
        };
        if let Some(delivery) = delivery {
            self.kernel.schedule_at(
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

    /// A server message reaches its client: the oracles check it, then the reflector takes it.
    pub(super) fn deliver_to_client(
        &mut self,
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ServerMessage,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let delivers = self.clients[client].as_ref().is_some_and(|slot| {
            slot.connection
                .delivers(generation, delivery, Direction::ToClient)
        });
        if !delivers {
            return Ok(());
        }
        self.answer_hazards(client, &message)?;
        let slot = self.clients[client].as_mut().expect("started");
        match &message {
            ServerMessage::List { id, result } => {
                if let (Some((options, arrival)), Ok(page)) = (slot.lists.remove(id), result) {
                    let arrival = arrival.expect("a list answered after it arrived");
                    slot.marks
                        .list_answered(&mut self.stats.probes, page, arrival);
                    let freshness = Freshness::of(&options, arrival);
                    check_list(&self.reference, RESOURCE_PREFIX, &options, freshness, page)?;
                }
            }
            ServerMessage::WatchEvent { id, event } => {
                slot.marks.watch_event(&mut self.stats.probes, event);
                if let Some(oracle) = slot.watch_oracles.get_mut(id) {
                    oracle.observe(&self.reference, event)?;
                }
            }
            ServerMessage::WatchRejected { id, .. } | ServerMessage::WatchClosed { id } => {
                slot.watch_oracles.remove(id);
            }
        }
        self.record(
            &format!("client-{client}"),
            &TraceEvent::Answer {
                client,
                message: describe_answer(&message),
            },
        );
        self.slot(client)
            .process
            .reflector
            .handle_message(now, message);
        self.drain_client(client)
    }

    pub(super) fn client_timer(
        &mut self,
        client: usize,
        incarnation: u32,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = live_slot(&mut self.clients, client, incarnation) else {
            return Ok(());
        };
        if slot.process.timer_at.is_some_and(|at| at <= now) {
            slot.process.timer_at = None;
        }
        if slot
            .process
            .reflector
            .poll_timeout()
            .is_none_or(|at| at > now)
        {
            self.schedule_client_timer(client);
            return Ok(());
        }
        slot.process.reflector.handle_timeout(now);
        let idle = matches!(
            slot.process.reflector.last_error(),
            Some(ReflectorError::IdleTimeout)
        );
        let silent = slot.connection.silent;
        self.record(&format!("client-{client}"), &TraceEvent::ReflectorTimer);
        if idle && silent {
            // The transport gives up on the half-open connection and dials again.
            self.reconnect(client, false);
        }
        self.drain_client(client)
    }

    pub(super) fn informer_pop(
        &mut self,
        client: usize,
        incarnation: u32,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = live_slot(&mut self.clients, client, incarnation) else {
            return Ok(());
        };
        slot.process.pop_scheduled = false;
        let error_probability = self.scenario.clients.process_error_probability;
        if error_probability > 0.0 && self.streams.clients.chance(error_probability) {
            slot.process.informer.fail_next_processing();
        }
        let Some(processed) = slot.process.informer.process_next(now) else {
            if slot.process.informer.fifo().pop_wait() == PopWait::CheckedOpen {
                self.schedule_pop_wait(client, incarnation);
            }
            return Ok(());
        };
        self.stats.pops += 1;
        let deltas = &processed.popped.deltas;
        self.stats.tombstones += deltas
            .iter()
            .filter(|delta| matches!(delta, Delta::Deleted(object) if object.is_tombstone()))
            .count() as u64;
        let key = processed.popped.key().cloned();
        let summary: Vec<String> = deltas.iter().map(describe_delta).collect();
        self.record(
            &format!("client-{client}"),
            &TraceEvent::Pop {
                key: key.as_ref().map(ToString::to_string),
                deltas: summary,
            },
        );
        let slot = self.clients[client].as_mut().expect("started");
        let indexer = slot.process.informer.indexer();
        // Every indexer write of the pop in order, then what the indexer holds now.
        let written = processed.distributed.iter().filter_map(|distributed| {
            match &distributed.notification {
                Notification::Add { obj, .. } | Notification::Update { new: obj, .. } => {
                    Some(obj.clone())
                }
                Notification::Delete(_) => None,
            }
        });
        let held: Vec<_> = match &key {
            Some(key) => indexer.get_by_key(key).into_iter().cloned().collect(),
            None => indexer.list().into_iter().cloned().collect(),
        };
        let touched: Vec<_> = written.chain(held).collect();
        let mut violations: Vec<Violation> = touched
            .iter()
            .filter_map(|object| {
                slot.history
                    .observe(&self.reference, RESOURCE_PREFIX, object)
                    .err()
            })
            .collect();
        let informer = &slot.process.informer;
        if processed.popped.is_in_initial_list && processed.has_synced_while_processing {
            let key = key.as_ref().map_or("?".to_owned(), ToString::to_string);
            let message = format!("synced while the initial item {key} was still being processed");
            violations.push(Violation::new(
                Invariant::InformerSyncedImpliesInitialListApplied,
                message,
            ));
        }
        let internals = [
            (
                Invariant::IndexerIndicesMatchItems,
                informer.indexer().check_index_invariant(),
            ),
            (
                Invariant::FifoInternalInvariants,
                informer.fifo().check_invariants(),
            ),
        ];
        for (invariant, result) in internals {
            if let Err(message) = result {
                violations.push(Violation::new(invariant, message));
            }
        }
        violations.extend(check_queue(&slot.process));
        let mut recipients: Vec<usize> = Vec::new();
        for distributed in &processed.distributed {
            for id in &distributed.recipients {
                if let Some(index) = slot
                    .process
                    .handlers
                    .iter()
                    .position(|handler| handler == id)
                    && !recipients.contains(&index)
                {
                    recipients.push(index);
                }
            }
        }
        for handler in recipients {
            self.schedule_handler(client, handler);
        }
        self.schedule_pop(client);
        violations.extend(self.pop_hazards(client, &processed.popped));
        violations
            .into_iter()
            .try_for_each(|violation| self.report(violation))
    }

    /// A Pop that checked `closed` waits a processing delay later: the window a Close can
    /// land in (SPEC §8 B28). Only reached with the bug planted, so no run without it draws.
    fn schedule_pop_wait(&mut self, client: usize, incarnation: u32) {
        let delay = self
            .streams
            .clients
            .between(0, self.scenario.clients.process_ms_max);
        self.kernel
            .schedule_in(SimDuration(delay), Ev::InformerWait(client, incarnation));
    }

    pub(super) fn informer_wait(&mut self, client: usize, incarnation: u32) {
        if let Some(slot) = live_slot(&mut self.clients, client, incarnation) {
            slot.process.informer.wait_for_items();
        }
    }

    /// A client process stops (SPEC §8 B28): its informer closes the FIFO, and the Pop
    /// waiting on the empty queue must return `ErrFIFOClosed` within one step.
    fn stop_client_process(&mut self, client: usize) -> Result<(), Violation> {
        match self.slot(client).process.informer.stop() {
            Ok(PopWait::Running) => Ok(()),
            Ok(_) => {
                self.stats.probes.closes_under_pop += 1;
                Ok(())
            }
            Err(message) => self.report(Violation::new(
                Invariant::ClosedFifoWakesPop,
                format!("client-{client}: {message}"),
            )),
        }
    }

    fn schedule_handler(&mut self, client: usize, handler: usize) {
        let delay = self
            .streams
            .clients
            .between(0, self.scenario.clients.handler_ms_max);
        let slot = self.clients[client].as_mut().expect("started");
        if !slot.process.handler_scheduled[handler] {
            slot.process.handler_scheduled[handler] = true;
            let incarnation = slot.incarnation;
            self.kernel.schedule_in(
                SimDuration(delay),
                Ev::HandlerRun(client, incarnation, handler),
            );
        }
    }

    pub(super) fn handler_run(
        &mut self,
        client: usize,
        incarnation: u32,
        handler: usize,
    ) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = live_slot(&mut self.clients, client, incarnation) else {
            return Ok(());
        };
        slot.process.handler_scheduled[handler] = false;
        let id = slot.process.handlers[handler];
        let Some(delivered) = slot.process.informer.deliver_next(now, id) else {
            return Ok(());
        };
        let pending = slot.process.informer.pending_notifications(id);
        self.stats.notifications += 1;
        let notification = describe_notification(&delivered.notification);
        self.record(
            &format!("client-{client}"),
            &TraceEvent::Handler {
                handler,
                notification,
            },
        );
        if let Err(message) = delivered.follows_cache {
            return Err(Violation::new(
                Invariant::NotificationFollowsCacheUpdate,
                message,
            ));
        }
        self.notification_hazards(&delivered.notification)?;
        if pending > 0 {
            self.schedule_handler(client, handler);
        }
        self.check_handler_synced(client, handler)
    }

    /// The first time a registration reports synced, its handler must have seen its whole
    /// initial list (SPEC §8 B20).
    fn check_handler_synced(&mut self, client: usize, handler: usize) -> Result<(), Violation> {
        let process = &mut self.clients[client].as_mut().expect("started").process;
        let id = process.handlers[handler];
        let Some(synced) = process.informer.handler_synced(id) else {
            return Ok(());
        };
        if std::mem::replace(&mut process.handler_synced_checked[handler], true) {
            return Ok(());
        }
        match synced.initial_list_check.clone() {
            Ok(()) => Ok(()),
            Err(message) => self.report(Violation::new(
                Invariant::HandlerSyncedAfterInitialList,
                message,
            )),
        }
    }

    fn schedule_apiserver_timer(&mut self, apiserver: usize) {
        let Some(at) = self.apiservers[apiserver].poll_timeout() else {
            return;
        };
        if self.apiserver_timer_at[apiserver].is_some_and(|scheduled| scheduled <= at) {
            return;
        }
        self.apiserver_timer_at[apiserver] = Some(at);
        self.kernel
            .schedule_at(at.max(self.kernel.now()), Ev::ApiserverTimer(apiserver));
    }

    pub(super) fn apiserver_timer(&mut self, apiserver: usize) -> Result<(), Violation> {
        let now = self.kernel.now();
        if self.apiserver_timer_at[apiserver].is_some_and(|at| at <= now) {
            self.apiserver_timer_at[apiserver] = None;
        }
        if self.apiservers[apiserver]
            .poll_timeout()
            .is_none_or(|at| at > now)
        {
            self.schedule_apiserver_timer(apiserver);
            return Ok(());
        }
        self.record(
            &format!("apiserver-{apiserver}"),
            &TraceEvent::ApiserverTimer,
        );
        self.apiservers[apiserver].handle_timeout(now, &mut self.etcd);
        self.flush_apiserver(apiserver);
        Ok(())
    }

    pub(super) fn send_to_apiserver(
        &mut self,
        apiserver: usize,
        response: crate::etcd::WatchResponse,
    ) {
        if let Some(delivery) =
            self.apiserver_links[apiserver].send(self.kernel.now(), &mut self.streams.links)
        {
            self.kernel.schedule_at(
                delivery.at,
                Ev::EtcdToApiserver {
                    apiserver,
                    delivery,
                    response,
                },
            );
        }
    }

    pub(super) fn etcd_to_apiserver(
        &mut self,
        apiserver: usize,
        delivery: Delivery,
        response: crate::etcd::WatchResponse,
    ) -> Result<(), Violation> {
        if !self.apiserver_links[apiserver].accepts(delivery)
            || !self.apiservers[apiserver].owns_etcd_watch(response.watch_id)
        {
            return Ok(());
        }
        self.record(
            &format!("apiserver-{apiserver}"),
            &TraceEvent::ApiserverEtcd {
                response: &response,
            },
        );
        let now = self.kernel.now();
        self.apiservers[apiserver].handle_etcd_response(now, &mut self.etcd, response);
        self.flush_apiserver(apiserver);
        Ok(())
    }

    /// The client's connection goes away; a new one goes to the apiserver the balancer picks.
    /// With `notify`, the reflector learns that its request in flight was lost.
    fn reconnect(&mut self, client: usize, notify: bool) {
        let now = self.kernel.now();
        let old = self.slot(client).connection.apiserver;
        self.apiservers[old].client_disconnected(&mut self.etcd, client);
        self.flush_apiserver(old);
        let apiserver = self.streams.balancer.below(self.apiservers.len() as u64) as usize;
        let link = self.scenario.clients.link;
        let slot = self.slot(client);
        let generation = slot.connection.generation + 1;
        slot.connection = Connection::new(apiserver, generation, link);
        slot.reading = true;
        slot.watch_oracles.clear();
        if notify && let Some(id) = slot.process.reflector.request_in_flight() {
            slot.process.reflector.handle_connection_lost(now, id);
        }
    }

    pub(super) fn inject(&mut self, timed: TimedFault) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        let now = self.kernel.now();
        self.stats.faults += 1;
        self.record("faults", &TraceEvent::Fault { fault: &timed });
        match timed.fault {
            Fault::Disconnect { client } => {
                self.reconnect(client as usize, true);
                self.drain_client(client as usize)?;
            }
            Fault::SlowConsumer { client, ms } => {
                let client = client as usize;
                let apiserver = self.slot(client).connection.apiserver;
                self.slot(client).reading = false;
                self.apiservers[apiserver].set_client_reading(now, client, false);
                self.flush_apiserver(apiserver);
                self.kernel
                    .schedule_in(SimDuration(ms), Ev::SlowConsumerEnd(client));
            }
            Fault::SilentConnection { client } => {
                self.slot(client as usize).connection.silent = true
            }
            Fault::DelaySpike { client, ms } => {
                self.slot(client as usize).delay_spike = Some(SimDuration(ms))
            }
            Fault::CacherReinit { apiserver } => {
                let apiserver = apiserver as usize;
                self.apiservers[apiserver].fail_cache_upstream(now, &mut self.etcd);
                self.flush_apiserver(apiserver);
            }
            Fault::ApiserverRestart { apiserver } => self.restart_apiserver(apiserver as usize)?,
            Fault::ClientRestart { client } => self.restart_client(client as usize)?,
            Fault::CacheStall { apiserver, ms } => {
                let apiserver = apiserver as usize;
                if let Some(watch) = self.apiservers[apiserver].cache_upstream_watch()
                    && self.etcd.stall_watcher(watch).is_ok()
                {
                    self.stalled_upstreams.insert(watch);
                    self.kernel
                        .schedule_in(SimDuration(ms), Ev::CacheStallEnd(apiserver, watch));
                }
            }
        }
        Ok(())
    }

    fn restart_apiserver(&mut self, apiserver: usize) -> Result<(), Violation> {
        let now = self.kernel.now();
        let ready_at = now + SimDuration(self.scenario.apiservers.restart_ms);
        self.apiservers[apiserver].restart(now, ready_at, &mut self.etcd);
        self.apiserver_down_until[apiserver] = Some(ready_at);
        self.apiserver_timer_at[apiserver] = None;
        self.flush_apiserver(apiserver);
        for client in 0..self.clients.len() {
            if self.slot(client).connection.apiserver == apiserver {
                self.reconnect(client, true);
                self.drain_client(client)?;
            }
        }
        Ok(())
    }

    fn restart_client(&mut self, client: usize) -> Result<(), Violation> {
        self.stop_client_process(client)?;
        let old = self.clients[client].take().expect("started");
        let apiserver = old.connection.apiserver;
        self.apiservers[apiserver].client_disconnected(&mut self.etcd, client);
        self.flush_apiserver(apiserver);
        let mut history = old.history;
        history.restart();
        let incarnation = old.incarnation + 1;
        let mut slot = self.new_client_slot(client, incarnation, history);
        slot.relists_before = old.relists_before + old.process.reflector.relist_count();
        slot.marks = old.marks;
        slot.marks.restart();
        self.clients[client] = Some(slot);
        self.schedule_late_handlers(client, incarnation);
        self.drain_client(client)
    }

    pub(super) fn slow_consumer_end(&mut self, client: usize) -> Result<(), Violation> {
        let now = self.kernel.now();
        let Some(slot) = self.clients[client].as_mut() else {
            return Ok(());
        };
        slot.reading = true;
        let apiserver = slot.connection.apiserver;
        self.apiservers[apiserver].set_client_reading(now, client, true);
        self.flush_apiserver(apiserver);
        Ok(())
    }

    pub(super) fn cache_stall_end(
        &mut self,
        _apiserver: usize,
        watch: crate::etcd::WatchId,
    ) -> Result<(), Violation> {
        if self.stalled_upstreams.remove(&watch) {
            let _ = self.etcd.resume_watcher(watch);
            self.flush_watch_responses();
        }
        Ok(())
    }

    /// Ends the fault phase for the cluster: stalls end, slow clients read, silent
    /// connections are noticed and replaced.
    pub(super) fn heal_cluster(&mut self) {
        for watch in std::mem::take(&mut self.stalled_upstreams) {
            let _ = self.etcd.resume_watcher(watch);
        }
        self.flush_watch_responses();
        for client in 0..self.clients.len() {
            let slot = self.slot(client);
            slot.delay_spike = None;
            let (silent, reading) = (slot.connection.silent, slot.reading);
            if silent {
                self.reconnect(client, true);
            } else if !reading {
                let _ = self.slow_consumer_end(client);
            }
            let _ = self.drain_client(client);
        }
    }

    pub(super) fn settle_check(&mut self) -> Result<(), Violation> {
        if self.check_settled().is_err() {
            self.kernel
                .schedule_in(super::SETTLE_CHECK_PERIOD, Ev::SettleCheck);
            return Ok(());
        }
        self.settled = true;
        self.record("world", &TraceEvent::Settled);
        for slot in self.clients.iter().flatten() {
            let informer = &slot.process.informer;
            for id in &slot.process.handlers {
                check_mirror_equals_indexer(informer.handler_mirror(*id), informer.indexer())
                    .map_err(|message| {
                        Violation::new(Invariant::HandlerMirrorEqualsIndexer, message)
                    })?;
            }
        }
        Ok(())
    }

    /// Whether the run has settled: etcd watchers caught up, and every client watching with
    /// an idle informer whose indexer equals etcd's state.
    pub(super) fn check_settled(&self) -> Result<(), Violation> {
        self.check_etcd_watchers_caught_up()?;
        let truth = etcd_state(&self.reference, RESOURCE_PREFIX, self.reference.revision());
        for (index, slot) in self.clients.iter().enumerate() {
            let slot = slot.as_ref().expect("started");
            let process = &slot.process;
            if process.reflector.phase() != ReflectorPhase::Watching {
                return Err(Violation::new(
                    Invariant::RunSettles,
                    format!(
                        "client-{index}: reflector is {:?}",
                        process.reflector.phase()
                    ),
                ));
            }
            if !process.informer.is_quiescent() {
                return Err(Violation::new(
                    Invariant::RunSettles,
                    format!("client-{index}: informer still busy"),
                ));
            }
            let indexer = by_key(process.informer.indexer().list());
            if let Some(difference) = first_difference(&indexer, &truth) {
                return Err(Violation::new(
                    Invariant::IndexerConvergesToEtcd,
                    format!("client-{index}: {difference}"),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn collect_stats(&mut self) {
        let mut apiservers = crate::apiserver::server::ApiserverStats::default();
        for apiserver in &self.apiservers {
            apiservers.add(&apiserver.stats());
        }
        self.stats.apiservers = apiservers;
        self.stats.relists = self
            .clients
            .iter()
            .flatten()
            .map(|slot| slot.relists_before + slot.process.reflector.relist_count())
            .sum();
    }
}
