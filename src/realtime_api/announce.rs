//! What the records write paths call, inside their writer job, to have
//! their changes announced once the job commits: a saved record becomes a
//! create or update event; a delete becomes a delete event for every record
//! it removed (cascades included, with each one's last state) and an update
//! event for every record that lost a relation to them.
//!
//! The records code calls this from its shared `apply_*` functions, so a
//! single request and a batch step announce alike, and because everything
//! goes through `WriteTx::after_commit`, a write that fails or belongs to a
//! batch that rolls back announces nothing. This file must never publish
//! before commit, and never make the writer wait (see `events`).

use super::events::{Action, RecordChange};
use super::Realtime;
use crate::collections::registry::Schema;
use crate::collections::Collection;
use crate::records::{sql, RecordValues};
use crate::store::WriteTx;
use std::sync::Arc;

/// The last states a delete reports through its observer
/// (`relations::delete_record_observed`), in delete order.
#[derive(Debug, Default)]
pub struct DeletedRecords(Vec<(String, RecordValues)>);

impl DeletedRecords {
    /// Keeps `last_state`, a record of `collection` about to be deleted.
    pub fn observe(&mut self, collection: &Collection, last_state: RecordValues) {
        self.0.push((collection.id.clone(), last_state));
    }
}

impl Realtime {
    /// Announces a created or updated `record` after the job commits.
    pub fn publish_saved(
        &self,
        tx: &mut WriteTx<'_>,
        action: Action,
        collection: &Arc<Collection>,
        record: &RecordValues,
    ) {
        self.queue_change(tx, action, collection, record.clone());
    }

    /// Announces a finished delete after the job commits: each deleted
    /// record's last state, then the state (as the job now sees it) of every
    /// record in `updated` (collection id, record id) that lost a relation.
    pub fn publish_deleted(
        &self,
        tx: &mut WriteTx<'_>,
        schema: &Schema,
        deleted: DeletedRecords,
        updated: &[(String, String)],
    ) -> rusqlite::Result<()> {
        for (collection_id, record) in deleted.0 {
            if let Some(collection) = schema.get_by_id(&collection_id) {
                self.queue_change(tx, Action::Delete, collection, record);
            }
        }
        for (collection_id, record_id) in updated {
            let Some(collection) = schema.get_by_id(collection_id) else {
                continue;
            };
            if let Some(record) = sql::find_by_id(tx.conn(), collection, record_id)? {
                self.queue_change(tx, Action::Update, collection, record);
            }
        }
        Ok(())
    }

    fn queue_change(
        &self,
        tx: &mut WriteTx<'_>,
        action: Action,
        collection: &Arc<Collection>,
        record: RecordValues,
    ) {
        let change = RecordChange {
            action,
            collection: Arc::clone(collection),
            record,
        };
        self.publisher.after_commit(tx, change);
    }
}
