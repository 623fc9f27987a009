//! One client's outgoing side: the messages waiting for it (bounded by how
//! far behind it is, in messages and bytes), the socket they go to, its
//! share of the caps, and when it last heard from us.
//!
//! It never writes on its own: a writer of the pool (`writers`) takes the
//! client when it has work, and exactly one writer holds it at a time
//! (`scheduled`), so messages reach the socket in the order they were
//! queued. Nothing is allocated for a client while it keeps up.

use super::client::{ClientId, Message};
use super::slots::Slot;
use super::Stream;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How far behind a client may fall before it is dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// The client is closing or gone.
    Closed,
    /// The backlog is over a limit: the client cannot keep up.
    Full,
}

/// Why a stream ended; logged, and decides whether the end chunk is written.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    IdleTimeout,
    LifetimeReached,
    /// Disconnected, dropped as too slow, or shut down.
    ClosedByHub,
    /// A write to it blocked for longer than the stall timeout.
    Stalled,
    /// The peer is gone (or the socket broke): nothing more can be written.
    WriteFailed(io::Error),
}

impl StreamEnd {
    fn describe(&self) -> String {
        match self {
            StreamEnd::IdleTimeout => "idle timeout".into(),
            StreamEnd::LifetimeReached => "lifetime reached".into(),
            StreamEnd::ClosedByHub => "disconnected by the hub".into(),
            StreamEnd::Stalled => "stopped reading".into(),
            StreamEnd::WriteFailed(e) => format!("write failed ({e})"),
        }
    }

    /// Whether the socket can still take the end-of-stream chunk.
    fn socket_usable(&self) -> bool {
        !matches!(self, StreamEnd::WriteFailed(_))
    }
}

/// What a writer should do next with a client it holds.
pub(crate) enum Step {
    /// Write these, in order.
    Write(Vec<Message>),
    /// End the stream for this reason.
    End(StreamEnd),
    /// Nothing left: the client is no longer held.
    Idle,
}

struct Pending {
    messages: VecDeque<Message>,
    bytes: usize,
    /// Held by a writer or waiting in the pool's queue.
    scheduled: bool,
    /// No more messages are taken; the writer ends the stream.
    closing: bool,
    /// Why, until a writer takes it to end the stream.
    end: Option<StreamEnd>,
}

pub(crate) struct Outlet {
    pub(crate) id: ClientId,
    pending: Mutex<Pending>,
    /// Only the writer holding the client touches it; `None` once ended.
    stream: Mutex<Option<Stream>>,
    slot: Mutex<Option<Slot>>,
    /// Unregisters the client; run once, when the stream ends.
    departure: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    limits: Limits,
    /// Milliseconds on the hub's clock (see `Hub::now_ms`).
    pub(crate) opened_ms: u64,
    last_message_ms: AtomicU64,
    last_write_ms: AtomicU64,
}

fn size_of(message: &Message) -> usize {
    message.event.len() + message.data.len()
}

impl Outlet {
    pub(crate) fn new(
        id: ClientId,
        stream: Stream,
        slot: Slot,
        limits: Limits,
        now_ms: u64,
    ) -> Self {
        Outlet {
            id,
            pending: Mutex::new(Pending {
                messages: VecDeque::new(),
                bytes: 0,
                // Held by the opener until `release`.
                scheduled: true,
                closing: false,
                end: None,
            }),
            stream: Mutex::new(Some(stream)),
            slot: Mutex::new(Some(slot)),
            departure: Mutex::new(None),
            limits,
            opened_ms: now_ms,
            last_message_ms: AtomicU64::new(now_ms),
            last_write_ms: AtomicU64::new(now_ms),
        }
    }

    pub(crate) fn on_departure(&self, departure: Box<dyn FnOnce() + Send>) {
        *lock(&self.departure) = Some(departure);
    }

    /// Queues without blocking; `Ok(true)` when the caller must hand the
    /// client to the writers. A single message larger than the byte limit
    /// still goes through when nothing is waiting: it is big, not late.
    pub(crate) fn push(&self, message: Message) -> Result<bool, QueueError> {
        let mut pending = lock(&self.pending);
        if pending.closing {
            return Err(QueueError::Closed);
        }
        let size = size_of(&message);
        let waiting = pending.messages.len();
        let too_many = waiting >= self.limits.max_messages;
        let too_big = waiting > 0 && pending.bytes.saturating_add(size) > self.limits.max_bytes;
        if too_many || too_big {
            return Err(QueueError::Full);
        }
        pending.messages.push_back(message);
        pending.bytes += size;
        Ok(!std::mem::replace(&mut pending.scheduled, true))
    }

    /// Stops taking messages, forgets what is still queued (it was for a
    /// client being let go) and asks for the stream to be ended. Returns
    /// whether the caller must hand the client to the writers. Idempotent:
    /// the first reason wins.
    pub(crate) fn close(&self, why: StreamEnd) -> bool {
        let mut pending = lock(&self.pending);
        if pending.closing {
            return false;
        }
        pending.closing = true;
        pending.end = Some(why);
        pending.messages.clear();
        pending.bytes = 0;
        !std::mem::replace(&mut pending.scheduled, true)
    }

    /// The opener lets go of a new client; true if it already has work
    /// and must be handed to the writers.
    pub(crate) fn release(&self) -> bool {
        let mut pending = lock(&self.pending);
        let has_work = pending.closing || !pending.messages.is_empty();
        if !has_work {
            pending.scheduled = false;
        }
        has_work
    }

    /// For the writer holding the client.
    pub(crate) fn next_step(&self) -> Step {
        let mut pending = lock(&self.pending);
        if let Some(end) = pending.end.take() {
            // `scheduled` stays set: an ended client is never taken again.
            return Step::End(end);
        }
        if pending.closing {
            return Step::Idle;
        }
        if pending.messages.is_empty() {
            pending.scheduled = false;
            return Step::Idle;
        }
        pending.bytes = 0;
        Step::Write(pending.messages.drain(..).collect())
    }

    /// Writes `bytes` and flushes. Only the writer holding the client calls it.
    pub(crate) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut stream = lock(&self.stream);
        let Some(stream) = stream.as_mut() else {
            return Err(io::Error::other("the stream has ended"));
        };
        stream.write_all(bytes)?;
        stream.flush()
    }

    pub(crate) fn wrote(&self, now_ms: u64, with_message: bool) {
        self.last_write_ms.store(now_ms, Ordering::Relaxed);
        if with_message {
            self.last_message_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    pub(crate) fn last_message_ms(&self) -> u64 {
        self.last_message_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn last_write_ms(&self) -> u64 {
        self.last_write_ms.load(Ordering::Relaxed)
    }

    /// Ends the stream (the last chunk unless the socket is broken), lets
    /// go of the socket, then unregisters the client and gives its slot back.
    pub(crate) fn finish(&self, end: &StreamEnd) {
        log::debug!("realtime client {} closed: {}", self.id, end.describe());
        {
            let mut pending = lock(&self.pending);
            pending.closing = true;
            pending.scheduled = true;
            pending.messages.clear();
            pending.end = None;
        }
        let stream = lock(&self.stream).take();
        if let Some(mut stream) = stream {
            if end.socket_usable() {
                super::write_end_of_stream(&mut *stream);
            }
        }
        self.depart();
        // The slot goes back once the socket is let go, not before.
        drop(lock(&self.slot).take());
    }

    /// Unregisters the client, once. A stalled client departs while a
    /// stuck write still holds its socket; `finish` frees the rest later.
    pub(crate) fn depart(&self) {
        let departure = lock(&self.departure).take();
        if let Some(departure) = departure {
            departure();
        }
    }
}

impl Drop for Outlet {
    /// A client no writer ever ended (the pool is gone): end it here so
    /// the peer is not left waiting on a silent connection.
    fn drop(&mut self) {
        let stream = self
            .stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut stream) = stream {
            super::write_end_of_stream(&mut *stream);
        }
    }
}

/// Every critical section here leaves the data consistent, so a poisoned
/// lock (a panic in a writer) is safe to keep using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::super::slots::Slots;
    use super::*;

    fn outlet(max_messages: usize, max_bytes: usize) -> Outlet {
        let slots = Slots::new(10, None);
        let o = Outlet::new(
            ClientId::random(),
            Box::new(Vec::new()),
            slots.take(None).unwrap(),
            Limits {
                max_messages,
                max_bytes,
            },
            0,
        );
        assert!(!o.release());
        o
    }

    fn written(step: Step) -> Vec<String> {
        match step {
            Step::Write(messages) => messages.iter().map(|m| m.data.to_string()).collect(),
            _ => panic!("expected messages"),
        }
    }

    #[test]
    fn only_the_first_push_asks_for_a_writer_until_the_queue_is_drained() {
        let o = outlet(8, 1 << 20);
        assert_eq!(o.push(Message::new("e", "1")), Ok(true));
        assert_eq!(o.push(Message::new("e", "2")), Ok(false));
        assert_eq!(written(o.next_step()), ["1", "2"]);
        assert!(matches!(o.next_step(), Step::Idle));
        assert_eq!(o.push(Message::new("e", "3")), Ok(true));
    }

    #[test]
    fn the_message_limit_counts_what_is_still_waiting() {
        let o = outlet(2, 1 << 20);
        o.push(Message::new("e", "1")).unwrap();
        o.push(Message::new("e", "2")).unwrap();
        assert_eq!(o.push(Message::new("e", "3")), Err(QueueError::Full));
        assert_eq!(written(o.next_step()), ["1", "2"]);
        o.push(Message::new("e", "4")).unwrap();
    }

    #[test]
    fn the_byte_limit_lets_one_big_message_through_but_not_a_backlog() {
        let o = outlet(100, 10);
        o.push(Message::new("e", "x".repeat(50))).unwrap();
        assert_eq!(o.push(Message::new("e", "y")), Err(QueueError::Full));
        o.next_step();
        o.push(Message::new("e", "12345678")).unwrap();
        assert_eq!(
            o.push(Message::new("e", "12")),
            Err(QueueError::Full),
            "9 + 3 bytes is over 10"
        );
    }

    #[test]
    fn closing_drops_the_backlog_refuses_more_and_ends_once() {
        let o = outlet(8, 1 << 20);
        assert_eq!(o.push(Message::new("e", "stale")), Ok(true));
        assert!(!o.close(StreamEnd::ClosedByHub), "already scheduled");
        assert_eq!(o.push(Message::new("e", "x")), Err(QueueError::Closed));
        assert!(matches!(o.next_step(), Step::End(StreamEnd::ClosedByHub)));
        assert!(matches!(o.next_step(), Step::Idle));
        assert!(!o.close(StreamEnd::IdleTimeout));
    }
}
