//! The hand-off from the writer to the realtime dispatcher: what changed,
//! queued only after COMMIT and in commit order.
//!
//! The writer thread must never wait on subscribers, so publishing is a
//! non-blocking push onto a bounded queue. If the dispatcher ever falls so
//! far behind that the queue is full, the event is not silently lost: a
//! gap is recorded and the dispatcher disconnects every client before it
//! delivers anything committed after the gap (the SDK reconnects and
//! resubscribes), so no client sees a history with a hole in it.

use super::ClientAuth;
use crate::collections::registry::Schema;
use crate::collections::Collection;
use crate::realtime::Hub;
use crate::records::RecordValues;
use crate::store::WriteTx;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The `action` of a record event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One committed change of one record: the record as stored (before any
/// output filtering; for a delete, its last state) and the collection as
/// the write saw it.
#[derive(Debug, Clone)]
pub struct RecordChange {
    pub action: Action,
    pub collection: Arc<Collection>,
    pub record: RecordValues,
}

/// What the dispatcher works through, one at a time, in commit order.
pub(super) enum Command {
    Record(RecordChange),
    /// The schema was replaced: bound auth whose collection vanished or
    /// whose token secret changed is dropped, cached tables are rebuilt.
    SchemaChanged {
        before: Arc<Schema>,
        after: Arc<Schema>,
    },
}

/// Commands waiting for the dispatcher. Large enough for several full
/// group-commit batches; each entry is one record, so this bounds memory.
/// The queue is a linked channel that allocates as it fills (a preallocated
/// one would hold this many slots from the start); `publish` checks the
/// length before it sends.
pub(super) const QUEUE_CAPACITY: usize = 16 * 1024;

/// The writer's end of the dispatcher queue. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    queue: Sender<Command>,
    /// Set when a command could not be queued; see the module docs.
    gap: Arc<AtomicBool>,
    /// Who could receive a change.
    hub: Hub<ClientAuth>,
}

impl Publisher {
    pub(super) fn new(
        queue: Sender<Command>,
        gap: Arc<AtomicBool>,
        hub: Hub<ClientAuth>,
    ) -> Publisher {
        Publisher { queue, gap, hub }
    }

    /// Publishes `change` once the job's transaction has committed; nothing
    /// is published if the job (or its batch) rolls back, or if no client is
    /// connected at that moment: nobody could receive it (a client that
    /// connects later only hears of later commits), and waking the
    /// dispatcher for it would cost every write on a server without
    /// subscribers.
    pub fn after_commit(&self, tx: &mut WriteTx<'_>, change: RecordChange) {
        let publisher = self.clone();
        tx.after_commit(move |_| {
            if publisher.hub.client_count() > 0 {
                publisher.publish(Command::Record(change));
            }
        });
    }

    /// Announces a committed schema change (call it after commit).
    pub fn schema_changed(&self, before: Arc<Schema>, after: Arc<Schema>) {
        self.publish(Command::SchemaChanged { before, after });
    }

    /// Never blocks: runs on the writer thread.
    fn publish(&self, command: Command) {
        if self.queue.len() >= QUEUE_CAPACITY {
            // Order matters: the flag is set before any later command
            // can be queued, so the dispatcher sees it before them.
            self.gap.store(true, Ordering::SeqCst);
            log::error!("realtime: the event queue is full; subscribers will be reconnected");
            return;
        }
        if self.queue.send(command).is_err() {
            log::warn!("realtime: the dispatcher is not running; event dropped");
        }
    }
}
