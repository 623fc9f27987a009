//! The realtime hub: open Server-Sent Event streams, who is connected, what
//! each client subscribed to and which auth it is bound to, and delivery of
//! messages the caller decides on. Domain-free: it never knows about
//! collections, records or API rules, never opens a database connection and
//! never parses a topic — a subscription is an opaque string, an auth
//! binding an opaque key, and the caller's broadcast closure decides who gets
//! what.
//!
//! Threading: a worker validates `GET /api/realtime`, turns the request into
//! its raw writer (`tiny_http::Request::into_writer`) and calls
//! [`Hub::connect`], which writes the response head and `PB_CONNECT` and
//! registers the client; the worker goes straight back to the pool. Queuing
//! never blocks the caller: each client has a bounded backlog (`outlet`),
//! and a client whose backlog overflows is dropped (the SDK reconnects)
//! instead of stalling everyone else. A small pool of `satchel-sse` writers
//! (`writers`) puts the backlogs on the sockets; one `satchel-sse-timers`
//! thread (`timers`) runs the idle timeout, the lifetime cap, heartbeats
//! and the watch on stuck writes. A write error, a timer, [`Hub::disconnect`]
//! and [`Hub::shutdown`] all end a stream and free what it held; a panic
//! while writing is caught and cleaned up like any other ending.
//!
//! A peer that goes away is only seen when a write to it fails: tiny_http
//! keeps the read half of the connection (and `upgrade` gives a plain GET an
//! empty reader), and without unsafe code there is no way to poll the
//! socket. So streams quiet for a `heartbeat` get an SSE comment line; the
//! first one to a closed peer draws its reset, the next fails and frees the
//! slot — within two heartbeats.

mod client;
mod config;
mod error;
mod outlet;
mod slots;
mod timers;
mod wire;
mod writers;

#[cfg(test)]
mod tests;

pub use client::{AuthKey, ClientId, ClientState, ClientView, Message};
pub use config::HubConfig;
pub use error::{ConnectError, ConnectRefused, HubError, Refusal, SendError};
pub use wire::InvalidHeader;

use client::ClientEntry;
use crossbeam_channel::Sender;
use outlet::{Limits, Outlet, QueueError, StreamEnd};
use slots::{Slot, Slots};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};
use writers::Writers;

/// The raw write half of an HTTP connection, as `into_writer` returns it.
pub type Stream = Box<dyn Write + Send + 'static>;

/// Milliseconds since the hub started, plus one (0 means "never"), so
/// timestamps fit in atomics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }
}

/// The registry of open streams. Cheap to clone: all clones share one hub.
pub struct Hub<A> {
    inner: Arc<Inner<A>>,
}

impl<A> Clone for Hub<A> {
    fn clone(&self) -> Self {
        Hub {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<A> {
    config: HubConfig,
    clients: RwLock<HashMap<ClientId, Arc<ClientEntry<A>>>>,
    slots: Arc<Slots>,
    /// Checked under the registry's write lock, so a stream opened while
    /// shutdown drains the registry is either drained or refused.
    shutting_down: AtomicBool,
    writers: Writers,
    clock: Clock,
    /// Dropped with the hub, which stops the timers thread.
    _stop_timers: Sender<()>,
}

/// What one broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Clients the decision function was asked about.
    pub clients: usize,
    /// Messages queued for delivery.
    pub queued: usize,
    /// Clients dropped because their queue was full.
    pub dropped: usize,
    /// Messages refused for an event name with a line break.
    pub invalid: usize,
}

/// A slot taken against the caps before the request is given up, so a
/// refusal can still be answered with the normal response machinery (503
/// with `Retry-After`). Dropping it gives the slot back.
pub struct Reservation<A> {
    hub: Hub<A>,
    slot: Slot,
    remote_ip: Option<IpAddr>,
}

impl<A: AuthKey> Hub<A> {
    /// Creates the hub and starts its writers and timers thread.
    ///
    /// # Panics
    /// If not even one thread can be started: the process is out of
    /// threads at startup, and a hub that can never write is worse than
    /// stopping there.
    pub fn new(config: HubConfig) -> Self {
        Self::start(config).expect("the realtime hub's threads start")
    }

    /// Like [`Hub::new`], returning the error instead.
    pub fn start(config: HubConfig) -> io::Result<Self> {
        let clock = Clock(Instant::now());
        let slots = Slots::new(config.max_clients, config.max_clients_per_ip);
        let writers = Writers::start(config.writers, config.sender_stack_size, clock)?;
        let (stop_timers, stop) = crossbeam_channel::bounded(1);
        let tick = timers::tick_for(&config.timers());
        let inner = Arc::new(Inner {
            config,
            clients: RwLock::new(HashMap::new()),
            slots,
            shutting_down: AtomicBool::new(false),
            writers,
            clock,
            _stop_timers: stop_timers,
        });
        let weak = Arc::downgrade(&inner);
        timers::start(tick, stop, move || match weak.upgrade() {
            Some(inner) => {
                inner.sweep();
                true
            }
            None => false,
        })?;
        Ok(Hub { inner })
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Takes a slot for a client at `remote_ip`. Pass `None` when the
    /// address is not trustworthy (e.g. behind a proxy whose forwarding
    /// header is not trusted): then only the total cap applies.
    pub fn reserve(&self, remote_ip: Option<IpAddr>) -> Result<Reservation<A>, ConnectRefused> {
        let slot = self
            .inner
            .slots
            .take(remote_ip)
            .map_err(|reason| self.refused(reason))?;
        Ok(Reservation {
            hub: self.clone(),
            slot,
            remote_ip,
        })
    }

    /// Reserves and opens in one call. When a cap refuses the client, the
    /// 503 (with `Retry-After` and `extra_headers`) is written on `stream`
    /// here, since the caller no longer holds the request.
    pub fn connect(
        &self,
        mut stream: Stream,
        remote_ip: Option<IpAddr>,
        extra_headers: &[(&str, &str)],
    ) -> Result<ClientId, ConnectError> {
        match self.reserve(remote_ip) {
            Ok(reservation) => reservation.open(stream, extra_headers),
            Err(refused) => {
                answer_refusal(&mut *stream, &refused, extra_headers);
                Err(ConnectError::Refused(refused))
            }
        }
    }

    /// Queues one message for one client without blocking.
    pub fn send(
        &self,
        client_id: &str,
        event: impl Into<Arc<str>>,
        data: impl Into<Arc<str>>,
    ) -> Result<(), SendError> {
        let message = Message::new(event, data);
        if !wire::is_valid_event_name(&message.event) {
            return Err(SendError::InvalidEventName);
        }
        let entry = self.entry(client_id).ok_or(SendError::UnknownClient)?;
        match self.inner.queue(&entry, message) {
            Ok(()) => Ok(()),
            Err(QueueError::Closed) => Err(SendError::UnknownClient),
            Err(QueueError::Full) => {
                self.inner.drop_slow_client(&entry);
                Err(SendError::ClientDropped)
            }
        }
    }

    /// Asks `decide` what to send to each client (nothing is a fine answer)
    /// and queues it. No hub lock is held while `decide` runs, so it may
    /// take its time (rule checks) or call back into the hub.
    pub fn broadcast<F>(&self, mut decide: F) -> BroadcastReport
    where
        F: FnMut(&ClientView<A>) -> Vec<Message>,
    {
        let mut report = BroadcastReport::default();
        for entry in self.entries() {
            report.clients += 1;
            for message in decide(&entry.view()) {
                if !wire::is_valid_event_name(&message.event) {
                    log::warn!("realtime: event name with a line break not sent");
                    report.invalid += 1;
                    continue;
                }
                match self.inner.queue(&entry, message) {
                    Ok(()) => report.queued += 1,
                    Err(QueueError::Closed) => break,
                    Err(QueueError::Full) => {
                        self.inner.drop_slow_client(&entry);
                        report.dropped += 1;
                        break;
                    }
                }
            }
        }
        report
    }

    /// Replaces the client's whole subscription set (empty = none).
    pub fn set_subscriptions(
        &self,
        client_id: &str,
        subscriptions: Vec<String>,
    ) -> Result<(), HubError> {
        self.update(client_id, |state| {
            state.replace_subscriptions(subscriptions)
        })?
    }

    pub fn subscriptions(&self, client_id: &str) -> Result<Arc<[Arc<str>]>, HubError> {
        Ok(self
            .client(client_id)
            .ok_or(HubError::UnknownClient)?
            .subscriptions)
    }

    /// Binds or clears the client's auth unconditionally. To enforce "an
    /// auth, once bound, cannot change" use [`Hub::update`] and compare
    /// first, so the check and the change cannot interleave with another call.
    pub fn set_auth(&self, client_id: &str, auth: Option<A>) -> Result<(), HubError> {
        self.update(client_id, |state| state.set_auth(auth))
    }

    pub fn auth(&self, client_id: &str) -> Result<Option<A>, HubError> {
        Ok(self.client(client_id).ok_or(HubError::UnknownClient)?.auth)
    }

    /// Runs `change` on the client's state under its lock and returns what
    /// it returns. Keep it short: broadcasts read this state too.
    pub fn update<R>(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut ClientState<A>) -> R,
    ) -> Result<R, HubError> {
        let entry = self.entry(client_id).ok_or(HubError::UnknownClient)?;
        let mut state = entry.state();
        Ok(change(&mut state))
    }

    /// A snapshot of one client, if its stream is open.
    pub fn client(&self, client_id: &str) -> Option<ClientView<A>> {
        self.entry(client_id).map(|entry| entry.view())
    }

    /// A snapshot of every client with an open stream.
    pub fn clients(&self) -> Vec<ClientView<A>> {
        self.entries().iter().map(|entry| entry.view()).collect()
    }

    /// Clients that can be sent to.
    pub fn client_count(&self) -> usize {
        self.read().len()
    }

    /// Sockets still held, counting streams being torn down (a writer stuck
    /// on a peer that stopped reading holds its socket until the peer reads
    /// or goes away). This is what the caps count.
    pub fn open_streams(&self) -> usize {
        self.inner.slots.in_use()
    }

    /// Ends the client's stream and forgets it. False if it was not open.
    pub fn disconnect(&self, client_id: &str) -> bool {
        let removed = self.write().remove(client_id);
        match removed {
            Some(entry) => {
                self.inner.close(&entry.outlet, StreamEnd::ClosedByHub);
                true
            }
            None => false,
        }
    }

    /// Ends every stream whose client matches (e.g. all bound to a deleted
    /// auth record) and returns how many.
    pub fn disconnect_where(&self, mut matches: impl FnMut(&ClientView<A>) -> bool) -> usize {
        let chosen: Vec<ClientId> = self
            .entries()
            .iter()
            .filter(|entry| matches(&entry.view()))
            .map(|entry| entry.id.clone())
            .collect();
        chosen
            .iter()
            .filter(|id| self.disconnect(id.as_str()))
            .count()
    }

    /// Refuses new streams, ends every open one, and waits up to `grace`
    /// for the writers to let go of the sockets. Returns how many are
    /// still held (writers stuck on peers that do not read).
    pub fn shutdown(&self, grace: Duration) -> usize {
        self.inner.slots.refuse_new();
        let drained: Vec<Arc<ClientEntry<A>>> = {
            let mut clients = self.write();
            self.inner.shutting_down.store(true, Ordering::SeqCst);
            clients.drain().map(|(_, entry)| entry).collect()
        };
        for entry in &drained {
            self.inner.close(&entry.outlet, StreamEnd::ClosedByHub);
        }
        self.inner.slots.wait_until_free(Instant::now() + grace)
    }

    fn refused(&self, reason: Refusal) -> ConnectRefused {
        ConnectRefused {
            reason,
            retry_after: self.inner.config.retry_after,
        }
    }

    fn entry(&self, client_id: &str) -> Option<Arc<ClientEntry<A>>> {
        self.read().get(client_id).cloned()
    }

    fn entries(&self) -> Vec<Arc<ClientEntry<A>>> {
        self.inner.entries()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<ClientId, Arc<ClientEntry<A>>>> {
        self.inner.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ClientId, Arc<ClientEntry<A>>>> {
        self.inner.write()
    }
}

impl<A> Inner<A> {
    /// The registry is consistent after every critical section, so a
    /// poisoned lock is safe to keep using.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<ClientId, Arc<ClientEntry<A>>>> {
        self.clients.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ClientId, Arc<ClientEntry<A>>>> {
        self.clients.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn entries(&self) -> Vec<Arc<ClientEntry<A>>> {
        self.read().values().cloned().collect()
    }

    fn queue(&self, entry: &ClientEntry<A>, message: Message) -> Result<(), QueueError> {
        if entry.outlet.push(message)? {
            self.writers.schedule(&entry.outlet);
        }
        Ok(())
    }

    fn close(&self, outlet: &Arc<Outlet>, why: StreamEnd) {
        if outlet.close(why) {
            self.writers.schedule(outlet);
        }
    }

    fn drop_slow_client(&self, entry: &Arc<ClientEntry<A>>) {
        log::warn!(
            "realtime client {} could not keep up with its queue; disconnecting it",
            entry.id
        );
        self.remove_if_current(&entry.id, &entry.outlet);
    }

    /// Removes and closes the entry registered under `id` if it is the one
    /// with this outlet (not a later client under the same id).
    fn remove_if_current(&self, id: &ClientId, outlet: &Arc<Outlet>) {
        let removed = {
            let mut clients = self.write();
            let is_current = clients
                .get(id)
                .is_some_and(|entry| Arc::ptr_eq(&entry.outlet, outlet));
            if is_current {
                clients.remove(id)
            } else {
                None
            }
        };
        if let Some(entry) = removed {
            self.close(&entry.outlet, StreamEnd::ClosedByHub);
        }
    }

    /// One look at every timer: stuck writers, then each client's lifetime,
    /// idle timeout and heartbeat.
    fn sweep(&self) {
        let config = &self.config;
        let now = self.clock.now_ms();
        self.writers.retire_stuck(now, millis(config.stall_timeout));
        let heartbeat = config.heartbeat.map(millis);
        for entry in self.entries() {
            let outlet = &entry.outlet;
            if now.saturating_sub(outlet.opened_ms) >= millis(config.max_lifetime) {
                self.close(outlet, StreamEnd::LifetimeReached);
            } else if now.saturating_sub(outlet.last_message_ms()) >= millis(config.idle_timeout) {
                self.close(outlet, StreamEnd::IdleTimeout);
            } else if heartbeat.is_some_and(|h| now.saturating_sub(outlet.last_write_ms()) >= h) {
                // Counts as a write only once written, so a slow writer
                // pool does not queue one per tick.
                outlet.wrote(now, false);
                if let Err(QueueError::Full) = self.queue(&entry, Message::probe()) {
                    self.drop_slow_client(&entry);
                }
            }
        }
    }
}

impl<A> Drop for Inner<A> {
    /// The last handle is gone: end every stream. The writers finish what
    /// is queued, then see the hub gone and exit.
    fn drop(&mut self) {
        let drained: Vec<Arc<ClientEntry<A>>> =
            self.write().drain().map(|(_, entry)| entry).collect();
        for entry in &drained {
            self.close(&entry.outlet, StreamEnd::ClosedByHub);
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<A: AuthKey> Reservation<A> {
    /// Writes the stream's head and `PB_CONNECT`, registers the client and
    /// hands it to the writers. On error nothing stays registered and the
    /// slot is given back.
    ///
    /// The opening is written on the calling worker: a few hundred bytes
    /// into a fresh socket's empty send buffer, which cannot block.
    pub fn open(
        self,
        mut stream: Stream,
        extra_headers: &[(&str, &str)],
    ) -> Result<ClientId, ConnectError> {
        let head = match wire::stream_head(extra_headers) {
            Ok(head) => head,
            Err(invalid) => {
                // The caller has given up the request: answer it anyway so
                // the client is not left waiting on a silent connection.
                let _ = write_flushed(&mut *stream, wire::INTERNAL_ERROR_RESPONSE);
                return Err(ConnectError::InvalidHeader(invalid));
            }
        };
        let Reservation {
            hub,
            slot,
            remote_ip,
        } = self;
        let inner = &hub.inner;
        let outlet = match inner.register(stream, slot, remote_ip) {
            Ok(outlet) => outlet,
            Err(mut stream) => {
                let refused = hub.refused(Refusal::ShuttingDown);
                answer_refusal(&mut *stream, &refused, extra_headers);
                return Err(ConnectError::Refused(refused));
            }
        };
        // Registered but held by this thread: whatever is queued meanwhile
        // waits until the opening is on the wire.
        let opening = opening(&head, &outlet.id);
        if let Err(e) = outlet.write(&opening) {
            let kind = e.kind();
            outlet.finish(&StreamEnd::WriteFailed(e));
            return Err(ConnectError::Io(io::Error::new(
                kind,
                "writing the opening failed",
            )));
        }
        outlet.wrote(inner.clock.now_ms(), true);
        if outlet.release() {
            inner.writers.schedule(&outlet);
        }
        Ok(outlet.id.clone())
    }
}

impl<A: AuthKey> Inner<A> {
    /// Adds a client under a fresh id, held by the caller until it calls
    /// `Outlet::release`; gives the stream back once shutdown has begun.
    fn register(
        self: &Arc<Self>,
        stream: Stream,
        slot: Slot,
        remote_ip: Option<IpAddr>,
    ) -> Result<Arc<Outlet>, Stream> {
        let mut clients = self.write();
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(stream);
        }
        // 238 bits of randomness make a repeat practically impossible, but
        // overwriting a live client would hand its stream to a stranger.
        let mut id = ClientId::random();
        while clients.contains_key(&id) {
            id = ClientId::random();
        }
        let limits = Limits {
            max_messages: self.config.queue_max_messages.max(1),
            max_bytes: self.config.queue_max_bytes,
        };
        let outlet = Arc::new(Outlet::new(
            id.clone(),
            stream,
            slot,
            limits,
            self.clock.now_ms(),
        ));
        let hub: Weak<Inner<A>> = Arc::downgrade(self);
        let departing = Arc::downgrade(&outlet);
        let departing_id = id.clone();
        outlet.on_departure(Box::new(move || {
            if let (Some(inner), Some(outlet)) = (hub.upgrade(), departing.upgrade()) {
                inner.remove_if_current(&departing_id, &outlet);
            }
        }));
        let entry = Arc::new(ClientEntry::new(
            id.clone(),
            Arc::clone(&outlet),
            remote_ip,
            &self.config,
        ));
        clients.insert(id, entry);
        Ok(outlet)
    }
}

/// The response head and the `PB_CONNECT` event, written together.
fn opening(head: &str, id: &ClientId) -> Vec<u8> {
    let connect_data = serde_json::json!({ "clientId": id.as_str() }).to_string();
    let mut opening = head.as_bytes().to_vec();
    wire::push_event_chunk(&mut opening, id.as_str(), "PB_CONNECT", &connect_data);
    opening
}

fn answer_refusal(stream: &mut dyn Write, refused: &ConnectRefused, extra: &[(&str, &str)]) {
    let secs = refused.retry_after_secs();
    // Bad extra headers must not cost the client its answer.
    let response = wire::refusal_response(refused.message(), secs, extra)
        .or_else(|_| wire::refusal_response(refused.message(), secs, &[]));
    if let Ok(response) = response {
        let _ = write_flushed(stream, response.as_bytes());
    }
}

pub(crate) fn write_flushed(stream: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// Ends the chunked body so the connection can be reused and the client
/// reconnects. Best effort: the peer may already be gone.
pub(crate) fn write_end_of_stream(stream: &mut dyn Write) {
    let _ = write_flushed(stream, wire::END_OF_STREAM);
}
