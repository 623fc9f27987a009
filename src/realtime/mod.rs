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
//! hands the socket to a small named thread (`satchel-sse`) per client fed
//! by a bounded queue; the worker goes straight back to the pool. Senders
//! never block the caller: a full queue drops that client (the SDK
//! reconnects) instead of stalling everyone else. A write error, the idle
//! timeout, the lifetime cap, [`Hub::disconnect`] and [`Hub::shutdown`] all
//! end a stream and free what it held; a panicking sender is caught and
//! cleaned up like any other ending.

mod client;
mod config;
mod error;
mod queue;
mod sender;
mod slots;
mod wire;

#[cfg(test)]
mod tests;

pub use client::{AuthKey, ClientId, ClientState, ClientView, Message};
pub use config::HubConfig;
pub use error::{ConnectError, ConnectRefused, HubError, Refusal, SendError};
pub use wire::InvalidHeader;

use client::ClientEntry;
use queue::{Inbox, Limits, Outbox, QueueError};
use sender::{serve, write_end_of_stream, write_flushed, StreamEnd, Timers};
use slots::{Slot, Slots};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

/// The raw write half of an HTTP connection, as `into_writer` returns it.
pub type Stream = Box<dyn Write + Send + 'static>;

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
    /// When the caps last made the hub probe for dead peers (ms since the
    /// hub started); at most one probe a second.
    last_probe_ms: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
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
    pub fn new(config: HubConfig) -> Self {
        let slots = Slots::new(config.max_clients, config.max_clients_per_ip);
        Hub {
            inner: Arc::new(Inner {
                config,
                clients: RwLock::new(HashMap::new()),
                slots,
                shutting_down: AtomicBool::new(false),
                last_probe_ms: std::sync::atomic::AtomicU64::new(0),
                started: std::time::Instant::now(),
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Takes a slot for a client at `remote_ip`. Pass `None` when the
    /// address is not trustworthy (e.g. behind a proxy whose forwarding
    /// header is not trusted): then only the total cap applies.
    pub fn reserve(&self, remote_ip: Option<IpAddr>) -> Result<Reservation<A>, ConnectRefused> {
        let slot = match self.inner.slots.take(remote_ip) {
            Ok(slot) => slot,
            // A peer that went away keeps its slot until a write to it
            // fails, and an idle stream writes nothing for minutes. At the
            // cap, write a heartbeat to everyone and look again.
            Err(_) if self.probe_for_dead_peers() => self.take_freed_slot(remote_ip)?,
            Err(reason) => return Err(self.refused(reason)),
        };
        Ok(Reservation {
            hub: self.clone(),
            slot,
            remote_ip,
        })
    }

    /// After a probe, dead peers free their slots as their writes fail,
    /// within milliseconds: look a few times before refusing.
    fn take_freed_slot(&self, remote_ip: Option<IpAddr>) -> Result<slots::Slot, ConnectRefused> {
        let mut last = None;
        for _ in 0..10 {
            match self.inner.slots.take(remote_ip) {
                Ok(slot) => return Ok(slot),
                Err(reason) => last = Some(reason),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(self.refused(last.unwrap_or(Refusal::TooManyClients)))
    }

    /// Writes a heartbeat comment to every client twice, a moment apart
    /// (the first write to a closed peer only draws its reset; the second
    /// fails and frees the slot). Runs at most four times a second so a
    /// flood of refused connects cannot keep workers busy; returns whether
    /// it ran.
    fn probe_for_dead_peers(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now_ms = self.inner.started.elapsed().as_millis() as u64;
        let last = self.inner.last_probe_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < 250 {
            return false;
        }
        let claimed = self
            .inner
            .last_probe_ms
            .compare_exchange(last, now_ms.max(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
        if !claimed {
            return false;
        }
        for _ in 0..2 {
            for entry in self.entries() {
                let _ = entry.try_queue(Message::probe());
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        true
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
        match entry.try_queue(message) {
            Ok(()) => Ok(()),
            Err(QueueError::Closed) => Err(SendError::UnknownClient),
            Err(QueueError::Full) => {
                self.drop_slow_client(&entry);
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
                match entry.try_queue(message) {
                    Ok(()) => report.queued += 1,
                    Err(QueueError::Closed) => break,
                    Err(QueueError::Full) => {
                        self.drop_slow_client(&entry);
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

    /// Sockets still held, counting streams being torn down (a sender stuck
    /// writing to a peer that stopped reading holds its socket until the
    /// peer reads or goes away). This is what the caps count.
    pub fn open_streams(&self) -> usize {
        self.inner.slots.in_use()
    }

    /// Ends the client's stream and forgets it. False if it was not open.
    pub fn disconnect(&self, client_id: &str) -> bool {
        let removed = self.write().remove(client_id);
        match removed {
            Some(entry) => {
                entry.close();
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
    /// for their senders to let go of the sockets. Returns how many are
    /// still held (senders stuck on peers that do not read).
    pub fn shutdown(&self, grace: Duration) -> usize {
        self.inner.slots.refuse_new();
        let drained: Vec<Arc<ClientEntry<A>>> = {
            let mut clients = self.write();
            self.inner.shutting_down.store(true, Ordering::SeqCst);
            clients.drain().map(|(_, entry)| entry).collect()
        };
        for entry in &drained {
            entry.close();
        }
        self.inner.slots.wait_until_free(Instant::now() + grace)
    }

    fn refused(&self, reason: Refusal) -> ConnectRefused {
        ConnectRefused {
            reason,
            retry_after: self.inner.config.retry_after,
        }
    }

    fn drop_slow_client(&self, entry: &Arc<ClientEntry<A>>) {
        log::warn!(
            "realtime client {} could not keep up with its queue; disconnecting it",
            entry.id
        );
        self.remove_entry(entry);
    }

    /// Removes this exact entry (not a later one under the same id).
    fn remove_entry(&self, entry: &Arc<ClientEntry<A>>) {
        self.inner.remove_if_current(&entry.id, &entry.closing);
    }

    fn entry(&self, client_id: &str) -> Option<Arc<ClientEntry<A>>> {
        self.read().get(client_id).cloned()
    }

    fn entries(&self) -> Vec<Arc<ClientEntry<A>>> {
        self.read().values().cloned().collect()
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

    /// Removes and closes the entry registered under `id` if it is the one
    /// whose closing flag is `closing`.
    fn remove_if_current(&self, id: &ClientId, closing: &Arc<AtomicBool>) {
        let mut clients = self.write();
        let is_current = clients
            .get(id)
            .is_some_and(|entry| Arc::ptr_eq(&entry.closing, closing));
        if is_current {
            if let Some(entry) = clients.remove(id) {
                entry.close();
            }
        }
    }
}

impl<A: AuthKey> Reservation<A> {
    /// Writes the stream's head and `PB_CONNECT`, registers the client and
    /// starts its sender. On error nothing stays registered and the slot is
    /// given back.
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
        let (outbox, inbox) = hub.new_queue();
        let Some(entry) = hub.register(outbox, remote_ip) else {
            let refused = hub.refused(Refusal::ShuttingDown);
            answer_refusal(&mut *stream, &refused, extra_headers);
            return Err(ConnectError::Refused(refused));
        };
        if let Err(e) = write_opening(&mut *stream, &head, &entry.id) {
            hub.remove_entry(&entry);
            return Err(ConnectError::Io(e));
        }
        hub.start_sender(&entry, stream, inbox, slot)
            .map_err(ConnectError::Io)?;
        Ok(entry.id.clone())
    }
}

impl<A: AuthKey> Hub<A> {
    fn new_queue(&self) -> (Outbox, Inbox) {
        let config = &self.inner.config;
        queue::queue(Limits {
            max_messages: config.queue_max_messages.max(1),
            max_bytes: config.queue_max_bytes,
        })
    }

    /// Adds a client under a fresh id; `None` once shutdown has begun.
    fn register(&self, outbox: Outbox, remote_ip: Option<IpAddr>) -> Option<Arc<ClientEntry<A>>> {
        let mut clients = self.write();
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return None;
        }
        // 238 bits of randomness make a repeat practically impossible, but
        // overwriting a live client would hand its stream to a stranger.
        let mut id = ClientId::random();
        while clients.contains_key(&id) {
            id = ClientId::random();
        }
        let entry = Arc::new(ClientEntry::new(
            id.clone(),
            outbox,
            remote_ip,
            &self.inner.config,
        ));
        clients.insert(id, Arc::clone(&entry));
        Some(entry)
    }

    /// Hands the stream to a new `satchel-sse` thread. If the thread cannot
    /// start, its closure is dropped right here: the stream gets its last
    /// chunk, the client is unregistered and the slot given back.
    fn start_sender(
        &self,
        entry: &ClientEntry<A>,
        stream: Stream,
        inbox: Inbox,
        slot: Slot,
    ) -> io::Result<()> {
        let config = &self.inner.config;
        let stream = EndOnDrop {
            inner: stream,
            usable: true,
        };
        let departure = Departure {
            hub: Arc::downgrade(&self.inner),
            id: entry.id.clone(),
            closing: Arc::clone(&entry.closing),
            _slot: slot,
        };
        let timers = Timers {
            idle_timeout: config.idle_timeout,
            max_lifetime: config.max_lifetime,
            heartbeat: config.heartbeat,
        };
        std::thread::Builder::new()
            .name("satchel-sse".into())
            .stack_size(config.sender_stack_size)
            .spawn(move || run_sender(stream, inbox, timers, departure))
            .map(drop)
    }
}

/// The response head and the `PB_CONNECT` event, flushed together.
fn write_opening(stream: &mut dyn Write, head: &str, id: &ClientId) -> io::Result<()> {
    let connect_data = serde_json::json!({ "clientId": id.as_str() }).to_string();
    let mut opening = head.as_bytes().to_vec();
    opening.extend_from_slice(&wire::event_chunk(id.as_str(), "PB_CONNECT", &connect_data));
    write_flushed(stream, &opening)
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

/// The body of a sender thread: serve until the stream ends, end it
/// cleanly, and let `departure` free everything — even after a panic.
fn run_sender<A>(mut stream: EndOnDrop, queue: Inbox, timers: Timers, departure: Departure<A>) {
    let id = &departure.id;
    let served = catch_unwind(AssertUnwindSafe(|| {
        serve(id, &mut *stream.inner, &queue, &departure.closing, timers)
    }));
    match served {
        Ok(end) => {
            stream.usable = end.socket_usable();
            log::debug!("realtime client {id} closed: {}", describe(&end));
        }
        // Chunks are built before they are written, so the stream is almost
        // surely at a chunk boundary: `EndOnDrop` still tries to end it.
        Err(_) => log::error!("realtime sender for client {id} panicked; closing its stream"),
    }
    // The socket is ended and let go before `departure` gives the slot back.
    drop(stream);
}

/// The client's stream, ended with the last chunk when dropped unless a
/// write already failed. Also covers a sender thread that never started,
/// so a client is not left waiting on a silent connection.
struct EndOnDrop {
    inner: Stream,
    usable: bool,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if self.usable {
            write_end_of_stream(&mut *self.inner);
        }
    }
}

fn describe(end: &StreamEnd) -> String {
    match end {
        StreamEnd::IdleTimeout => "idle timeout".into(),
        StreamEnd::LifetimeReached => "lifetime reached".into(),
        StreamEnd::ClosedByHub => "disconnected by the hub".into(),
        StreamEnd::WriteFailed(e) => format!("write failed ({e})"),
    }
}

/// Held by a sender thread; dropping it (normal exit or unwinding)
/// unregisters the client and then gives back its slot.
struct Departure<A> {
    hub: Weak<Inner<A>>,
    id: ClientId,
    closing: Arc<AtomicBool>,
    _slot: Slot,
}

impl<A> Drop for Departure<A> {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(inner) = self.hub.upgrade() {
            inner.remove_if_current(&self.id, &self.closing);
        }
        // `_slot` is dropped right after this, giving the slot back.
    }
}
