//! One client's outgoing queue, bounded by its backlog in messages and
//! bytes rather than by preallocated slots.
//!
//! Why not a `bounded(64)` channel: the writer publishes a committed batch
//! (up to hundreds of jobs) in one burst, faster than any sender thread is
//! scheduled on two cores, so a small fixed capacity would drop healthy
//! clients; and a large fixed capacity is allocated up front for every idle
//! client. An unbounded channel allocates only while messages wait, and the
//! counters below turn it into a bounded one that measures what actually
//! matters: how far behind the client is.

use super::client::Message;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

#[derive(Default)]
struct Backlog {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

/// The hub's end.
pub(crate) struct Outbox {
    sender: Sender<Message>,
    backlog: Arc<Backlog>,
    limits: Limits,
}

/// The sender thread's end.
pub(crate) struct Inbox {
    receiver: Receiver<Message>,
    backlog: Arc<Backlog>,
}

pub(crate) fn queue(limits: Limits) -> (Outbox, Inbox) {
    let (sender, receiver) = unbounded();
    let backlog = Arc::new(Backlog::default());
    let outbox = Outbox {
        sender,
        backlog: Arc::clone(&backlog),
        limits,
    };
    (outbox, Inbox { receiver, backlog })
}

fn size_of(message: &Message) -> usize {
    message.event.len() + message.data.len()
}

impl Outbox {
    /// Queues without blocking, or refuses when the backlog would pass a
    /// limit. A single message larger than the byte limit still goes
    /// through when nothing is waiting: it is big, not late.
    pub(crate) fn try_push(&self, message: Message) -> Result<(), QueueError> {
        let size = size_of(&message);
        let waiting = self.backlog.messages.fetch_add(1, Ordering::SeqCst);
        let waiting_bytes = self.backlog.bytes.fetch_add(size, Ordering::SeqCst);
        let too_many = waiting >= self.limits.max_messages;
        let too_big = waiting > 0 && waiting_bytes.saturating_add(size) > self.limits.max_bytes;
        if too_many || too_big {
            self.forget(size);
            return Err(QueueError::Full);
        }
        self.sender.send(message).map_err(|_| {
            self.forget(size);
            QueueError::Closed
        })
    }

    fn forget(&self, size: usize) {
        self.backlog.messages.fetch_sub(1, Ordering::SeqCst);
        self.backlog.bytes.fetch_sub(size, Ordering::SeqCst);
    }
}

impl Inbox {
    /// The next message, waiting until `deadline`; `Disconnected` once the
    /// outbox is dropped and nothing is left.
    pub(crate) fn recv_deadline(&self, deadline: Instant) -> Result<Message, RecvTimeoutError> {
        let message = self.receiver.recv_deadline(deadline)?;
        self.backlog.messages.fetch_sub(1, Ordering::SeqCst);
        self.backlog
            .bytes
            .fetch_sub(size_of(&message), Ordering::SeqCst);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(max_messages: usize, max_bytes: usize) -> Limits {
        Limits {
            max_messages,
            max_bytes,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[test]
    fn the_message_limit_counts_what_is_still_waiting() {
        let (outbox, inbox) = queue(limits(2, 1 << 20));
        outbox.try_push(Message::new("e", "1")).unwrap();
        outbox.try_push(Message::new("e", "2")).unwrap();
        assert_eq!(
            outbox.try_push(Message::new("e", "3")),
            Err(QueueError::Full)
        );
        assert_eq!(inbox.recv_deadline(soon()).unwrap().data.as_ref(), "1");
        outbox.try_push(Message::new("e", "4")).unwrap();
        assert_eq!(inbox.recv_deadline(soon()).unwrap().data.as_ref(), "2");
        assert_eq!(inbox.recv_deadline(soon()).unwrap().data.as_ref(), "4");
    }

    #[test]
    fn the_byte_limit_lets_one_big_message_through_but_not_a_backlog() {
        let (outbox, inbox) = queue(limits(100, 10));
        let big = "x".repeat(50);
        outbox.try_push(Message::new("e", big.as_str())).unwrap();
        assert_eq!(
            outbox.try_push(Message::new("e", "y")),
            Err(QueueError::Full)
        );
        inbox.recv_deadline(soon()).unwrap();
        outbox.try_push(Message::new("e", "12345678")).unwrap();
        assert_eq!(
            outbox.try_push(Message::new("e", "12")),
            Err(QueueError::Full),
            "9 + 3 bytes is over 10"
        );
    }

    #[test]
    fn a_dropped_outbox_disconnects_after_the_backlog() {
        let (outbox, inbox) = queue(limits(10, 1 << 20));
        outbox.try_push(Message::new("e", "last")).unwrap();
        drop(outbox);
        assert!(inbox.recv_deadline(soon()).is_ok());
        assert_eq!(
            inbox.recv_deadline(soon()).err(),
            Some(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn a_gone_inbox_refuses_and_leaves_the_counters_at_zero() {
        let (outbox, inbox) = queue(limits(10, 1 << 20));
        drop(inbox);
        assert_eq!(
            outbox.try_push(Message::new("e", "x")),
            Err(QueueError::Closed)
        );
        assert_eq!(outbox.backlog.messages.load(Ordering::SeqCst), 0);
        assert_eq!(outbox.backlog.bytes.load(Ordering::SeqCst), 0);
    }
}
