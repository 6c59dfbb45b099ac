//! The world's routes between its parts: etcd's watch responses to raw watchers and cachers,
//! requests from clients to apiservers (which call etcd), answers back, reconnections, and
//! the faults that strike several parts at once.

use crate::api::{ClientMessage, RequestError, ServerMessage};
use crate::check::Violation;
use crate::client::reflector::ConnectionLoss;
use crate::etcd::{WatchId, WatchResponse};
use crate::sim::{Delivery, SimDuration};

use super::apiservers::restart_duration;
use super::client_process::{Connection, Direction};
use super::clients::{ClientSlot, Wire};
use super::event::Ev;
use super::faults::{Fault, TimedFault};
use super::kube_clients::KubeSlot;
use super::trace_event::{Actor, TraceEvent};
use super::{World, live_slot};

/// The wire of client identity `client`: an informer's (the first identities) or a kube-rs
/// client's, if it runs.
fn wire_of<'a>(
    clients: &'a mut [Option<ClientSlot>],
    kube: &'a mut [KubeSlot],
    client: usize,
) -> Option<&'a mut Wire> {
    let informers = clients.len();
    match clients.get_mut(client) {
        Some(slot) => slot.as_mut().map(|slot| &mut slot.wire),
        None => kube.get_mut(client - informers).map(KubeSlot::wire),
    }
}

impl World {
    fn wire(&mut self, client: usize) -> &mut Wire {
        wire_of(&mut self.clients, &mut self.kube, client).expect("a started client")
    }

    /// Every client identity: the informers', then the kube-rs clients'.
    fn identities(&self) -> usize {
        self.clients.len() + self.kube.len()
    }

    /// Runs a client's reflector outputs (see [`ClientSlot::drain`]); a kube-rs client's
    /// output waits for its runtime to run.
    pub(super) fn drain_client(&mut self, client: usize) -> Result<(), Violation> {
        match self.clients.get_mut(client) {
            Some(slot) => slot
                .as_mut()
                .expect("a started client")
                .drain(&mut self.core, client),
            None => Ok(()),
        }
    }

    /// Puts every message etcd produced on the link of the raw watcher or the cacher it is
    /// for, in etcd's order.
    pub(super) fn flush_etcd(&mut self) {
        while let Some(response) = self.etcd.etcd.poll_response() {
            if self.watchers.owns(response.watch_id) {
                let compact_revision = self.etcd.etcd.compact_revision();
                self.watchers
                    .send(&mut self.core, response, compact_revision);
            } else if let Some(apiserver) = self
                .apiservers
                .iter()
                .position(|slot| slot.server.owns_etcd_watch(response.watch_id))
            {
                self.apiservers[apiserver].send_from_etcd(&mut self.core, apiserver, response);
            }
        }
    }

    /// Routes what an apiserver produced: answers to its clients, its etcd calls' watch
    /// responses, and its next timer.
    fn flush_apiserver(&mut self, apiserver: usize) {
        while let Some((client, message)) = self.apiservers[apiserver].server.poll_message() {
            if let Some(wire) = wire_of(&mut self.clients, &mut self.kube, client) {
                wire.send_answer(&mut self.core, client, apiserver, message);
            }
        }
        self.flush_etcd();
        self.apiservers[apiserver].schedule_timer(&mut self.core, apiserver);
        self.refresh_read_floor();
    }

    /// The oldest state an apiserver serves now: caches only move forward (a re-initialized
    /// one lists from etcd's current revision), so no answer to a request sent from now on
    /// is older.
    fn refresh_read_floor(&mut self) {
        let etcd = self.etcd.etcd.revision();
        self.core.read_floor = self
            .apiservers
            .iter()
            .map(|slot| slot.server.cache_resource_version().unwrap_or(etcd))
            .min()
            .unwrap_or(etcd);
    }

    pub(super) fn apiserver_timer(&mut self, apiserver: usize) {
        if !self.apiservers[apiserver].timer_due(&mut self.core, apiserver) {
            return;
        }
        let now = self.core.now();
        self.core
            .record(Actor::Apiserver(apiserver), &TraceEvent::ApiserverTimer);
        self.apiservers[apiserver]
            .server
            .handle_timeout(now, &mut self.etcd.etcd);
        self.flush_apiserver(apiserver);
    }

    pub(super) fn etcd_to_apiserver(
        &mut self,
        apiserver: usize,
        delivery: Delivery,
        response: WatchResponse,
    ) {
        if !self.apiservers[apiserver].accepts_from_etcd(delivery, &response) {
            return;
        }
        self.core.record(
            Actor::Apiserver(apiserver),
            &TraceEvent::ApiserverEtcd {
                response: &response,
            },
        );
        let now = self.core.now();
        self.apiservers[apiserver]
            .server
            .handle_etcd_response(now, &mut self.etcd.etcd, response);
        self.flush_apiserver(apiserver);
    }

    /// A client message reaches its apiserver (or a refused connection).
    pub(super) fn deliver_to_server(
        &mut self,
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ClientMessage,
    ) {
        let now = self.core.now();
        let Some(wire) = wire_of(&mut self.clients, &mut self.kube, client)
            .filter(|wire| wire.delivers(generation, delivery, Direction::ToServer))
        else {
            return;
        };
        let apiserver = wire.connection.apiserver;
        self.core.observe_arrival(client, apiserver, &message);
        if self.apiservers[apiserver].is_down(now) {
            let refused = match message {
                ClientMessage::List { id, .. } => ServerMessage::List {
                    id,
                    result: Err(RequestError::ConnectionRefused),
                },
                ClientMessage::Watch { id, .. } => ServerMessage::WatchRejected {
                    id,
                    error: RequestError::ConnectionRefused,
                },
                ClientMessage::StopWatch { .. } => return,
            };
            wire.send_answer(&mut self.core, client, apiserver, refused);
            return;
        }
        if let ClientMessage::List { id, .. } = &message
            && let Some(entry) = wire.lists.get_mut(id)
        {
            entry.1 = Some(self.etcd.etcd.revision());
        }
        self.apiservers[apiserver].server.handle_client_message(
            now,
            &mut self.etcd.etcd,
            client,
            message,
        );
        self.flush_apiserver(apiserver);
    }

    /// A server message reaches its client, if its connection still stands.
    pub(super) fn deliver_to_client(
        &mut self,
        client: usize,
        generation: u64,
        delivery: Delivery,
        message: ServerMessage,
    ) -> Result<(), Violation> {
        let delivers = wire_of(&mut self.clients, &mut self.kube, client)
            .is_some_and(|wire| wire.delivers(generation, delivery, Direction::ToClient));
        if !delivers {
            return Ok(());
        }
        let informers = self.clients.len();
        match self.clients.get_mut(client) {
            Some(slot) => slot.as_mut().expect("a delivering client runs").answer(
                &mut self.core,
                client,
                message,
            ),
            None => self.kube[client - informers].answer(&mut self.core, client, message),
        }
    }

    pub(super) fn client_timer(
        &mut self,
        client: usize,
        incarnation: u32,
    ) -> Result<(), Violation> {
        let Some(slot) = live_slot(&mut self.clients, client, incarnation) else {
            return Ok(());
        };
        if !slot.timer(&mut self.core, client) {
            return Ok(());
        }
        self.drain_client(client)
    }

    /// HTTP/2's health check fires on connection `generation` of `client`: if that connection
    /// is still the client's and still silent, it is closed as dead and replaced.
    pub(super) fn health_check(&mut self, client: usize, generation: u64) -> Result<(), Violation> {
        let Some(wire) = wire_of(&mut self.clients, &mut self.kube, client) else {
            return Ok(());
        };
        if wire.connection.generation != generation || !wire.connection.silent {
            return Ok(());
        }
        self.core.stats.health_check_closes += 1;
        self.core
            .record(Actor::Client(client), &TraceEvent::HealthCheckClose);
        self.reconnect(client, Some(ConnectionLoss::HealthCheckFailed));
        self.drain_client(client)
    }

    /// The client's connection goes away; a new one goes to the apiserver the balancer picks.
    /// With `loss`, the reflector learns how its request in flight was lost.
    fn reconnect(&mut self, client: usize, loss: Option<ConnectionLoss>) {
        let now = self.core.now();
        let old = self.wire(client).connection.apiserver;
        self.apiservers[old]
            .server
            .client_disconnected(&mut self.etcd.etcd, client);
        self.flush_apiserver(old);
        let apiserver = self
            .core
            .streams
            .balancer
            .below(self.apiservers.len() as u64) as usize;
        let link = self.core.scenario.clients.link;
        self.core.checker.on_reconnect(client);
        let wire = self.wire(client);
        let generation = wire.connection.generation + 1;
        wire.connection = Connection::new(apiserver, generation, link, now);
        wire.reading = true;
        let Some(loss) = loss else {
            return;
        };
        let informers = self.clients.len();
        match self.clients.get_mut(client) {
            Some(slot) => {
                let reflector = &mut slot.as_mut().expect("a started client").process.reflector;
                if let Some(id) = reflector.request_in_flight() {
                    reflector.handle_connection_lost(now, id, loss);
                }
            }
            None => self.kube[client - informers].connection_lost(),
        }
    }

    pub(super) fn inject(&mut self, timed: TimedFault) -> Result<(), Violation> {
        if self.core.healed {
            return Ok(());
        }
        let now = self.core.now();
        self.core.stats.faults += 1;
        self.core
            .record(Actor::Faults, &TraceEvent::Fault { fault: &timed });
        match timed.fault {
            Fault::Disconnect { client } => {
                self.reconnect(client as usize, Some(ConnectionLoss::PeerClosed));
                self.drain_client(client as usize)?;
            }
            Fault::SlowConsumer { client, ms } => {
                let client = client as usize;
                let apiserver = self.wire(client).connection.apiserver;
                self.wire(client).reading = false;
                self.apiservers[apiserver].server.set_client_reading(
                    now,
                    &mut self.etcd.etcd,
                    client,
                    false,
                );
                self.flush_apiserver(apiserver);
                self.core
                    .kernel
                    .schedule_in(SimDuration(ms), Ev::SlowConsumerEnd { client });
            }
            Fault::SilentConnection { client } => self.go_silent(client as usize),
            Fault::DelaySpike { client, ms } => {
                self.wire(client as usize).delay_spike = Some(SimDuration(ms))
            }
            Fault::CacherReinit { apiserver } => {
                let apiserver = apiserver as usize;
                self.apiservers[apiserver]
                    .server
                    .fail_cache_upstream(now, &mut self.etcd.etcd);
                self.flush_apiserver(apiserver);
            }
            Fault::CacheWatchError { apiserver, ms } => {
                let apiserver = apiserver as usize;
                let until = now + SimDuration(ms);
                self.apiservers[apiserver].server.break_cache_watch(
                    now,
                    until,
                    &mut self.etcd.etcd,
                );
                self.flush_apiserver(apiserver);
            }
            Fault::ApiserverRestart { apiserver } => self.restart_apiserver(apiserver as usize)?,
            Fault::ClientRestart { client } => self.restart_client(client as usize)?,
            Fault::WatcherStall { watcher, ms } => {
                let etcd = &mut self.etcd.etcd;
                if self
                    .watchers
                    .stall(&mut self.core, etcd, watcher as usize, ms)
                {
                    self.flush_etcd();
                }
            }
            Fault::WatcherDisconnect { watcher } => {
                let etcd = &mut self.etcd.etcd;
                self.watchers
                    .disconnect(&mut self.core, etcd, watcher as usize);
                self.flush_etcd();
            }
            Fault::WatcherProgressRequest { watcher } => {
                let etcd = &mut self.etcd.etcd;
                if self
                    .watchers
                    .request_progress(&mut self.core, etcd, watcher as usize)
                {
                    self.flush_etcd();
                }
            }
            Fault::CacheStall { apiserver, ms } => {
                let apiserver = apiserver as usize;
                if let Some(watch) = self.apiservers[apiserver].server.cache_upstream_watch()
                    && self.etcd.etcd.stall_watcher(watch).is_ok()
                {
                    self.stalled_upstreams.insert(watch);
                    self.core
                        .kernel
                        .schedule_in(SimDuration(ms), Ev::CacheStallEnd { watch });
                }
            }
        }
        Ok(())
    }

    fn restart_apiserver(&mut self, apiserver: usize) -> Result<(), Violation> {
        let now = self.core.now();
        let ready_at = now + restart_duration(&self.core.scenario);
        let slot = &mut self.apiservers[apiserver];
        slot.server.restart(now, ready_at, &mut self.etcd.etcd);
        slot.go_down(ready_at);
        self.flush_apiserver(apiserver);
        for client in 0..self.identities() {
            if self.wire(client).connection.apiserver == apiserver {
                self.reconnect(client, Some(ConnectionLoss::PeerClosed));
                self.drain_client(client)?;
            }
        }
        Ok(())
    }

    fn restart_client(&mut self, client: usize) -> Result<(), Violation> {
        if client >= self.clients.len() {
            self.restart_kube_client(client);
            return Ok(());
        }
        let slot = self.clients[client].as_mut().expect("a started client");
        slot.stop(&mut self.core, client)?;
        let old = self.clients[client].take().expect("started");
        let apiserver = old.wire.connection.apiserver;
        self.apiservers[apiserver]
            .server
            .client_disconnected(&mut self.etcd.etcd, client);
        self.flush_apiserver(apiserver);
        let incarnation = old.incarnation + 1;
        let mut slot = ClientSlot::new(&mut self.core, client, incarnation, self.apiservers.len());
        self.core.stats.add_reflector(&old.process.reflector);
        slot.wire.marks = old.wire.marks;
        slot.wire.marks.restart();
        slot.schedule_late_handlers(&mut self.core, client);
        self.clients[client] = Some(slot);
        self.drain_client(client)
    }

    /// A kube-rs client's process restarts: a new runtime, watcher and store, on a new
    /// connection.
    fn restart_kube_client(&mut self, client: usize) {
        let kube = client - self.clients.len();
        let apiserver = self.kube[kube].wire().connection.apiserver;
        self.apiservers[apiserver]
            .server
            .client_disconnected(&mut self.etcd.etcd, client);
        self.flush_apiserver(apiserver);
        let incarnation = self.kube[kube].incarnation() + 1;
        let apiservers = self.apiservers.len();
        let mut slot = KubeSlot::start(&mut self.core, client, incarnation, apiservers);
        let marks = std::mem::take(&mut self.kube[kube].wire().marks);
        slot.wire().marks = marks;
        slot.wire().marks.restart();
        self.kube[kube] = slot;
    }

    /// The client's connection goes half-open; HTTP/2's health check, if on, will close it.
    fn go_silent(&mut self, client: usize) {
        let now = self.core.now();
        let health_check = self.core.scenario.clients.health_check();
        let connection = &mut self.wire(client).connection;
        if connection.silent {
            return;
        }
        connection.silent = true;
        let generation = connection.generation;
        if let Some((read_idle, ping_timeout)) = health_check {
            let at = connection.health_check_closes_at(now, read_idle, ping_timeout);
            self.core
                .kernel
                .schedule_at(at, Ev::HealthCheck { client, generation });
        }
    }

    pub(super) fn slow_consumer_end(&mut self, client: usize) {
        let now = self.core.now();
        let Some(wire) = wire_of(&mut self.clients, &mut self.kube, client) else {
            return;
        };
        wire.reading = true;
        let apiserver = wire.connection.apiserver;
        self.apiservers[apiserver].server.set_client_reading(
            now,
            &mut self.etcd.etcd,
            client,
            true,
        );
        self.flush_apiserver(apiserver);
    }

    pub(super) fn cache_stall_end(&mut self, watch: WatchId) {
        if self.stalled_upstreams.remove(&watch) {
            let _ = self.etcd.etcd.resume_watcher(watch);
            self.flush_etcd();
        }
    }

    /// Ends the fault phase for the cluster: stalls end, slow clients read, and a silent
    /// connection's path comes back to a server that dropped it: its reset is a probable EOF.
    pub(super) fn heal_cluster(&mut self) {
        let stalled = std::mem::take(&mut self.stalled_upstreams);
        // A cache is steady if it has none, or its etcd watch is open at etcd and read.
        let steady: Vec<bool> = self
            .apiservers
            .iter()
            .map(|slot| {
                let server = &slot.server;
                server.cache_ready().is_none()
                    || server.cache_upstream_watch().is_some_and(|watch| {
                        !stalled.contains(&watch) && self.etcd.etcd.is_watching(watch)
                    })
            })
            .collect();
        for watch in stalled {
            let _ = self.etcd.etcd.resume_watcher(watch);
        }
        self.flush_etcd();
        for client in 0..self.identities() {
            let wire = self.wire(client);
            wire.delay_spike = None;
            let (silent, reading) = (wire.connection.silent, wire.reading);
            let apiserver = wire.connection.apiserver;
            // A watch is healthy at the heal unless a fault already ended it (its close still
            // on the way, the cache re-initializing) or its cache's etcd watch (stalled, or
            // canceled by a compaction that overtook it).
            let healthy = steady[apiserver]
                && self.apiservers[apiserver]
                    .server
                    .serves_open_watch_of(client);
            if let Some(Some(slot)) = self.clients.get_mut(client) {
                let reflector = &slot.process.reflector;
                slot.relists_at_heal = (reflector.is_streaming() && !silent && reading && healthy)
                    .then(|| reflector.relist_count());
            }
            if silent {
                self.reconnect(client, Some(ConnectionLoss::PeerClosed));
            } else if !reading {
                self.slow_consumer_end(client);
            }
            let _ = self.drain_client(client);
        }
    }
}
