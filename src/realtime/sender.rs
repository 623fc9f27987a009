//! The loop each client's sender thread runs: wait for a queued message or a
//! timer, write it as one chunk, flush; end the stream on idle, on the
//! lifetime cap, or when the hub lets go of the client.
//!
//! It owns the socket's write half and nothing else: it never looks at the
//! registry, so a slow or stuck socket can only ever stall its own thread.

use super::client::ClientId;
use super::queue::Inbox;
use super::wire::{event_chunk, END_OF_STREAM, HEARTBEAT_CHUNK};
use crossbeam_channel::RecvTimeoutError;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The timers of one stream (copied from the hub's config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub heartbeat: Option<Duration>,
}

/// Why a stream ended; logged, and decides whether the end chunk is written.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    IdleTimeout,
    LifetimeReached,
    /// Disconnected, dropped as too slow, or shut down.
    ClosedByHub,
    /// The peer is gone (or the socket broke): nothing more can be written.
    WriteFailed(io::Error),
}

impl StreamEnd {
    /// Whether the socket can still take the end-of-stream chunk.
    pub(crate) fn socket_usable(&self) -> bool {
        !matches!(self, StreamEnd::WriteFailed(_))
    }
}

/// Writes queued messages until the stream has to end, and says why.
pub(crate) fn serve(
    client_id: &ClientId,
    stream: &mut dyn Write,
    queue: &Inbox,
    closing: &AtomicBool,
    timers: Timers,
) -> StreamEnd {
    let opened = Instant::now();
    let lifetime_ends = deadline_after(opened, timers.max_lifetime);
    let mut last_message = opened;
    let mut last_write = opened;
    loop {
        let idle_ends = deadline_after(last_message, timers.idle_timeout);
        let heartbeat_due = timers.heartbeat.map(|h| deadline_after(last_write, h));
        let wake_at = [Some(idle_ends), Some(lifetime_ends), heartbeat_due]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(idle_ends);
        match queue.recv_deadline(wake_at) {
            Ok(message) => {
                // A closing client may still have messages queued; they are
                // for a client that is being let go, so skip them.
                if closing.load(Ordering::SeqCst) {
                    return StreamEnd::ClosedByHub;
                }
                if message.is_probe() {
                    // A liveness check: not a message, so the idle timer runs on.
                    if let Err(e) = write_flushed(stream, HEARTBEAT_CHUNK) {
                        return StreamEnd::WriteFailed(e);
                    }
                    last_write = Instant::now();
                    continue;
                }
                let chunk = event_chunk(client_id.as_str(), &message.event, &message.data);
                if let Err(e) = write_flushed(stream, &chunk) {
                    return StreamEnd::WriteFailed(e);
                }
                last_message = Instant::now();
                last_write = last_message;
            }
            Err(RecvTimeoutError::Disconnected) => return StreamEnd::ClosedByHub,
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if now >= lifetime_ends {
                    return StreamEnd::LifetimeReached;
                }
                if now >= idle_ends {
                    return StreamEnd::IdleTimeout;
                }
                if heartbeat_due.is_some_and(|due| now >= due) {
                    if let Err(e) = write_flushed(stream, HEARTBEAT_CHUNK) {
                        return StreamEnd::WriteFailed(e);
                    }
                    last_write = now;
                }
            }
        }
    }
}

/// Ends the chunked body so the connection can be reused and the client
/// reconnects. Best effort: the peer may already be gone.
pub(crate) fn write_end_of_stream(stream: &mut dyn Write) {
    let _ = write_flushed(stream, END_OF_STREAM);
}

pub(crate) fn write_flushed(stream: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// `start + after`, or a moment decades away when a configured duration is
/// too large to add (a "never" timer must not panic the thread).
fn deadline_after(start: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 10);
    start
        .checked_add(after.min(FAR))
        .or_else(|| start.checked_add(Duration::from_secs(60 * 60 * 24)))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::super::client::Message;
    use super::super::queue::{queue, Limits, Outbox};
    use super::*;

    fn bounded(max_messages: usize) -> (Outbox, Inbox) {
        queue(Limits {
            max_messages,
            max_bytes: 1 << 20,
        })
    }

    fn timers(idle_ms: u64, lifetime_ms: u64, heartbeat_ms: Option<u64>) -> Timers {
        Timers {
            idle_timeout: Duration::from_millis(idle_ms),
            max_lifetime: Duration::from_millis(lifetime_ms),
            heartbeat: heartbeat_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn queued_messages_are_written_in_order_until_the_queue_is_dropped() {
        let (tx, rx) = bounded(8);
        for i in 0..3 {
            tx.try_push(Message::new("e", i.to_string())).unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        let id = ClientId::random();
        let end = serve(
            &id,
            &mut out,
            &rx,
            &AtomicBool::new(false),
            timers(5000, 5000, None),
        );
        assert!(matches!(end, StreamEnd::ClosedByHub));
        let text = String::from_utf8(out).unwrap();
        let positions: Vec<usize> = ["data:0\n", "data:1\n", "data:2\n"]
            .iter()
            .map(|d| text.find(d).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn a_closing_client_skips_what_is_still_queued() {
        let (tx, rx) = bounded(8);
        tx.try_push(Message::new("e", "stale")).unwrap();
        let mut out = Vec::new();
        let id = ClientId::random();
        let end = serve(
            &id,
            &mut out,
            &rx,
            &AtomicBool::new(true),
            timers(5000, 5000, None),
        );
        assert!(matches!(end, StreamEnd::ClosedByHub));
        assert!(out.is_empty());
    }

    #[test]
    fn heartbeats_do_not_hold_off_the_idle_timeout() {
        let (_tx, rx) = bounded(8);
        let mut out = Vec::new();
        let started = Instant::now();
        let id = ClientId::random();
        let end = serve(
            &id,
            &mut out,
            &rx,
            &AtomicBool::new(false),
            timers(120, 5000, Some(30)),
        );
        assert!(matches!(end, StreamEnd::IdleTimeout));
        assert!(started.elapsed() >= Duration::from_millis(120));
        let beats = out
            .windows(HEARTBEAT_CHUNK.len())
            .filter(|w| *w == HEARTBEAT_CHUNK)
            .count();
        assert!(beats >= 2, "expected heartbeats, got {beats}");
    }

    #[test]
    fn a_busy_stream_still_ends_at_its_lifetime() {
        let (tx, rx) = bounded(8);
        let feeder = std::thread::spawn(move || {
            while tx.try_push(Message::new("e", "tick")).is_ok() {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut out = Vec::new();
        let id = ClientId::random();
        let end = serve(
            &id,
            &mut out,
            &rx,
            &AtomicBool::new(false),
            timers(1000, 150, None),
        );
        assert!(matches!(end, StreamEnd::LifetimeReached));
        drop(rx);
        feeder.join().unwrap();
    }

    #[test]
    fn huge_timers_do_not_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now);
    }
}
