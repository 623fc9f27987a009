//! The PocketBase realtime API on top of the domain-free hub
//! (`crate::realtime`): `GET /api/realtime` opens a client's event stream,
//! `POST /api/realtime` sets its subscriptions and binds its auth, and record
//! changes committed by the writer become `{action, record}` events for the
//! subscribers whose rules let them see the record.
//!
//! This module owns topic parsing, the auth-binding rules, who may see which
//! record event, and how the record is shown. It must never write to the
//! database, never make the writer thread wait (the writer only enqueues, see
//! `events`), and never keep a worker for an open stream (the worker hands
//! the socket to the hub and returns to the pool).
//!
//! The event path: the records write paths (`apply_create`/`apply_update`/
//! `apply_delete`, shared by single requests and batch steps) register their
//! changes on the job's `WriteTx` (`announce`); after COMMIT the writer
//! pushes them onto a bounded queue, in commit order (a failed write or a
//! rolled-back batch pushes nothing); the
//! `satchel-realtime` dispatcher thread takes changes one by one (so in
//! commit order), decides per subscription with rules evaluated on its own
//! read connection against the record as committed (`visibility`), renders
//! each distinct view of the record once (`payload`), and queues messages
//! on the hub, whose per-client sender threads write them.

mod announce;
mod dispatcher;
mod events;
pub mod handlers;
mod payload;
mod topic;
mod visibility;

pub use announce::DeletedRecords;
pub use events::{Action, Publisher, RecordChange};
pub use topic::{RuleKind, SubscriptionOptions, Target, Topic};

use crate::auth::Auth;
use crate::realtime::{Hub, HubConfig};
use crossbeam_channel::unbounded;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The auth a realtime client is bound to. Two bindings are the same when
/// they name the same record of the same collection, whatever its values:
/// the reference's `isSameAuth`, used to refuse changing the auth of a client.
#[derive(Debug, Clone)]
pub struct ClientAuth(pub Arc<Auth>);

impl ClientAuth {
    pub fn new(auth: Auth) -> ClientAuth {
        ClientAuth(Arc::new(auth))
    }

    /// Whether this is record `record_id` of collection `collection_id`.
    pub fn is(&self, collection_id: &str, record_id: &str) -> bool {
        self.0.collection.id == collection_id && self.0.id() == record_id
    }

    pub fn is_superuser(&self) -> bool {
        self.0.is_superuser()
    }
}

impl PartialEq for ClientAuth {
    fn eq(&self, other: &ClientAuth) -> bool {
        self.is(&other.0.collection.id, other.0.id())
    }
}

/// The realtime service the app owns: the hub of open streams and the
/// writer's way to publish committed changes.
pub struct Realtime {
    pub hub: Hub<ClientAuth>,
    publisher: Publisher,
    /// The dispatcher thread, until shutdown takes it to wait for it.
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl Realtime {
    /// Creates the hub and starts the dispatcher with its own read
    /// connection to `db_path`. The dispatcher stops once every publisher
    /// (the app's and any still held by pending writer jobs) is dropped.
    pub fn start(config: HubConfig, db_path: &Path) -> std::io::Result<Realtime> {
        let hub = Hub::start(config)?;
        let conn = crate::store::open_reader(db_path).map_err(std::io::Error::other)?;
        let (queue, commands) = unbounded();
        let gap = Arc::new(AtomicBool::new(false));
        let dispatcher = dispatcher::start(hub.clone(), conn, commands, Arc::clone(&gap))?;
        let publisher = Publisher::new(queue, gap, hub.clone());
        Ok(Realtime {
            hub,
            publisher,
            dispatcher: Mutex::new(Some(dispatcher)),
        })
    }

    /// The dispatcher's thread, for shutdown to wait on once the app and
    /// the writer are gone: it holds a read connection to `data.db`, and
    /// SQLite folds the WAL back into the database and removes it only
    /// when the last connection closes. A process that exits first leaves
    /// `data.db-wal` behind (safe, but not the tidy directory the
    /// reference leaves).
    pub fn take_dispatcher(&self) -> Option<JoinHandle<()>> {
        self.dispatcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// A handle for writer jobs to publish committed changes with.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }
}
