//! The `satchel-realtime` thread: takes committed changes one at a time (so
//! subscribers see them in commit order), keeps clients' bound auth in step
//! with auth records, and fans each record event out to the subscriptions
//! allowed to see it.
//!
//! It owns one read connection (for rule checks) and never writes to the
//! database; it queues messages on the hub and never writes to a socket, so
//! a slow client costs it nothing. A panic while handling one change is
//! caught and logged; the thread goes on with the next.

use super::events::{Action, Command, RecordChange};
use super::payload::EventPayloads;
use super::topic::{self, Topic};
use super::visibility::{EventAccess, Snapshots};
use super::ClientAuth;
use crate::auth::Auth;
use crate::collections::registry::Schema;
use crate::realtime::{ClientView, Hub, Message};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Parsed subscriptions kept between events; cleared when it grows past
/// this, so a churn of distinct topics cannot grow it without bound.
const MAX_CACHED_TOPICS: usize = 10_000;

pub(super) fn start(
    hub: Hub<ClientAuth>,
    conn: Connection,
    commands: Receiver<Command>,
    gap: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // The schema as committed; replaced on every schema change, in order.
    let schema = Arc::new(Schema::load(&conn).map_err(std::io::Error::other)?);
    let snapshots = Snapshots::new(conn).map_err(std::io::Error::other)?;
    let mut dispatcher = Dispatcher {
        hub,
        snapshots,
        topics: HashMap::new(),
        schema,
    };
    std::thread::Builder::new()
        .name("satchel-realtime".into())
        .spawn(move || dispatcher.run(&commands, &gap))
}

struct Dispatcher {
    hub: Hub<ClientAuth>,
    snapshots: Snapshots,
    topics: HashMap<Arc<str>, Arc<Topic>>,
    /// Expanding relations in payloads reads the other collections.
    schema: Arc<Schema>,
}

impl Dispatcher {
    /// Until every publisher is gone.
    fn run(&mut self, commands: &Receiver<Command>, gap: &AtomicBool) {
        while let Some(command) = self.next_command(commands) {
            // Checked after taking a command: a change committed after a
            // lost one is only taken once the flag is already visible.
            if gap.swap(false, Ordering::SeqCst) {
                self.reconnect_everyone();
            }
            let handled = catch_unwind(AssertUnwindSafe(|| self.handle(command)));
            if handled.is_err() {
                log::error!("realtime: handling a change panicked; it was not delivered");
            }
        }
        log::debug!("realtime dispatcher stopped");
    }

    /// The next command, or `None` once every publisher is gone. Idle for a
    /// second, the read connection gives its page cache back, as the other
    /// threads' connections do.
    fn next_command(&self, commands: &Receiver<Command>) -> Option<Command> {
        let mut released = false;
        loop {
            match commands.recv_timeout(crate::store::IDLE_BEFORE_SHRINK) {
                Ok(command) => return Some(command),
                Err(RecvTimeoutError::Timeout) if !released => {
                    self.snapshots.release_idle_memory();
                    released = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Record(change) => {
                if change.collection.is_auth() {
                    self.follow_auth_record(&change);
                }
                self.broadcast(&change);
            }
            Command::SchemaChanged { before, after } => {
                self.forget_auth_of_changed_collections(&before, &after);
                self.snapshots.forget_all();
                self.schema = after;
            }
        }
    }

    /// Events were lost: ending every stream is the honest answer, since
    /// the SDK reconnects and resubscribes instead of missing changes.
    fn reconnect_everyone(&self) {
        let dropped = self.hub.disconnect_where(|_| true);
        log::warn!("realtime: {dropped} client(s) disconnected after lost events");
    }

    fn broadcast(&mut self, change: &RecordChange) {
        if self.hub.client_count() == 0 {
            return;
        }
        let Dispatcher {
            hub,
            snapshots,
            topics,
            schema,
        } = self;
        if topics.len() > MAX_CACHED_TOPICS {
            topics.clear();
        }
        let mut access = EventAccess::new(snapshots, schema, &change.collection, &change.record);
        let mut payloads = EventPayloads::new(change, schema);
        let report = hub
            .broadcast(|client| messages_for(client, change, topics, &mut access, &mut payloads));
        if report.queued > 0 || report.dropped > 0 {
            log::debug!(
                "realtime: {} {}/{}: {} message(s) for {} client(s), {} dropped as too slow",
                change.action.as_str(),
                change.collection.name,
                change.record.id(),
                report.queued,
                report.clients,
                report.dropped
            );
        }
    }

    /// An auth record changed: clients bound to it follow the new values,
    /// or lose the binding when its tokens were invalidated (new `tokenKey`)
    /// or it was deleted. Done before the event's fan-out, so a revoked
    /// session never receives anything more under the old identity.
    fn follow_auth_record(&self, change: &RecordChange) {
        if change.action == Action::Create {
            return;
        }
        let collection_id = &change.collection.id;
        let record_id = change.record.id();
        for client in self.clients_bound_to(|auth| auth.is(collection_id, record_id)) {
            // Rechecked under the client's lock: the binding may have
            // changed since the snapshot.
            let _ = self.hub.update(client.id.as_str(), |state| {
                let Some(current) = state.auth().filter(|a| a.is(collection_id, record_id)) else {
                    return;
                };
                let revoked = change.action == Action::Delete
                    || token_key(&current.0.record) != token_key(&change.record);
                let next = (!revoked).then(|| {
                    ClientAuth::new(Auth {
                        collection: Arc::clone(&change.collection),
                        record: Arc::new(change.record.clone()),
                        token: current.0.token.clone(),
                        refreshable: current.0.refreshable,
                    })
                });
                state.set_auth(next);
            });
        }
    }

    /// A collection's token secret changed, or the collection is gone: every
    /// token of its records is invalid, so bound clients lose their auth.
    fn forget_auth_of_changed_collections(&self, before: &Schema, after: &Schema) {
        let invalidated = |auth: &ClientAuth| {
            let id = &auth.0.collection.id;
            match (before.get_by_id(id), after.get_by_id(id)) {
                (_, None) => true,
                (Some(old), Some(new)) => auth_secret(old) != auth_secret(new),
                (None, Some(_)) => false,
            }
        };
        for client in self.clients_bound_to(invalidated) {
            let _ = self.hub.update(client.id.as_str(), |state| {
                if state.auth().is_some_and(invalidated) {
                    state.set_auth(None);
                }
            });
        }
    }

    fn clients_bound_to(
        &self,
        matches: impl Fn(&ClientAuth) -> bool,
    ) -> Vec<ClientView<ClientAuth>> {
        self.hub
            .clients()
            .into_iter()
            .filter(|client| client.auth.as_ref().is_some_and(&matches))
            .collect()
    }
}

/// The messages one client gets for one change: one per matching
/// subscription that its auth may see, named by the subscription string.
fn messages_for(
    client: &ClientView<ClientAuth>,
    change: &RecordChange,
    topics: &mut HashMap<Arc<str>, Arc<Topic>>,
    access: &mut EventAccess<'_>,
    payloads: &mut EventPayloads<'_>,
) -> Vec<Message> {
    let collection = &change.collection;
    let record_id = change.record.id();
    let mut messages = Vec::new();
    for subscription in client.subscriptions.iter() {
        let topic = topics
            .entry(Arc::clone(subscription))
            .or_insert_with(|| Arc::new(topic::parse(subscription)));
        let Some(kind) = topic.rule_for(&collection.name, &collection.id, record_id) else {
            continue;
        };
        if !access.allows(kind, client.auth.as_ref(), &topic.options) {
            continue;
        }
        let data =
            payloads.for_subscriber(access.connection(), client.auth.as_ref(), &topic.options);
        messages.push(Message::new(Arc::clone(subscription), data));
    }
    messages
}

fn token_key(record: &crate::records::RecordValues) -> &str {
    record.get_str("tokenKey")
}

fn auth_secret(collection: &crate::collections::Collection) -> Option<&Value> {
    collection
        .options
        .get("authToken")
        .and_then(|o| o.get("secret"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::{Collection, CollectionType, Field, FieldKind};
    use crate::realtime::HubConfig;
    use crate::records::RecordValues;
    use serde_json::{json, Map};
    use std::time::Duration;

    fn users(secret: &str) -> Arc<Collection> {
        let mut options = Map::new();
        options.insert(
            "authToken".into(),
            json!({"secret": secret, "duration": 100}),
        );
        Arc::new(Collection {
            id: "_pb_users_auth_".into(),
            name: "users".into(),
            kind: CollectionType::Auth,
            system: false,
            fields: vec![
                Field::new("id", FieldKind::default_for("text").unwrap()),
                Field::new("tokenKey", FieldKind::default_for("text").unwrap()),
                Field::new("name", FieldKind::default_for("text").unwrap()),
            ],
            indexes: vec![],
            list_rule: Some(String::new()),
            view_rule: Some(String::new()),
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options,
            created: String::new(),
            updated: String::new(),
        })
    }

    fn user(id: &str, token_key: &str, name: &str) -> RecordValues {
        let mut record = RecordValues::new();
        record.set("id", json!(id));
        record.set("tokenKey", json!(token_key));
        record.set("name", json!(name));
        record
    }

    fn auth(collection: &Arc<Collection>, record: RecordValues) -> ClientAuth {
        ClientAuth::new(Auth {
            collection: Arc::clone(collection),
            record: Arc::new(record),
            token: "t".into(),
            refreshable: true,
        })
    }

    /// A dispatcher over a hub whose clients write into memory, with
    /// clients bound to `bindings` (one client each).
    fn dispatcher_with(bindings: Vec<ClientAuth>) -> (Dispatcher, Vec<String>) {
        let hub = Hub::new(HubConfig::default());
        let mut ids = Vec::new();
        for binding in bindings {
            let id = hub.connect(Box::new(Vec::new()), None, &[]).unwrap();
            hub.set_auth(id.as_str(), Some(binding)).unwrap();
            ids.push(id.as_str().to_string());
        }
        let conn = Connection::open_in_memory().unwrap();
        let dispatcher = Dispatcher {
            hub,
            snapshots: Snapshots::new(conn).unwrap(),
            topics: HashMap::new(),
            schema: Arc::new(Schema::empty()),
        };
        (dispatcher, ids)
    }

    fn bound_name(d: &Dispatcher, client: &str) -> Option<String> {
        let auth = d.hub.auth(client).unwrap()?;
        Some(auth.0.record.get_str("name").to_string())
    }

    fn change(action: Action, collection: &Arc<Collection>, record: RecordValues) -> RecordChange {
        RecordChange {
            action,
            collection: Arc::clone(collection),
            record,
        }
    }

    #[test]
    fn bound_auth_follows_updates_and_is_dropped_on_new_token_key_or_delete() {
        let c = users("s");
        let bindings = vec![
            auth(&c, user("u1", "k1", "Ann")),
            auth(&c, user("u2", "k2", "Bo")),
        ];
        let (d, ids) = dispatcher_with(bindings);
        d.follow_auth_record(&change(Action::Update, &c, user("u1", "k1", "Ann 2")));
        assert_eq!(
            bound_name(&d, &ids[0]).as_deref(),
            Some("Ann 2"),
            "same tokens: values follow"
        );
        d.follow_auth_record(&change(Action::Update, &c, user("u1", "k9", "Ann 3")));
        assert_eq!(bound_name(&d, &ids[0]), None, "new token key: unbound");
        assert_eq!(
            bound_name(&d, &ids[1]).as_deref(),
            Some("Bo"),
            "others untouched"
        );
        d.follow_auth_record(&change(Action::Delete, &c, user("u2", "k2", "Bo")));
        assert_eq!(bound_name(&d, &ids[1]), None, "deleted: unbound");
        assert_eq!(d.hub.client_count(), 2, "clients stay connected as guests");
        d.hub.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn a_new_collection_secret_or_a_deleted_collection_unbinds_its_clients() {
        let old = users("s1");
        let mut other = (*users("x")).clone();
        other.id = "pbc_other".into();
        other.name = "members".into();
        let other = Arc::new(other);
        let bindings = vec![
            auth(&old, user("u1", "k1", "Ann")),
            auth(&other, user("m1", "k", "Mo")),
        ];
        let (d, ids) = dispatcher_with(bindings);
        let before = Schema::from_collections(vec![(*old).clone(), (*other).clone()]);
        let same = Schema::from_collections(vec![(*old).clone(), (*other).clone()]);
        d.forget_auth_of_changed_collections(&before, &same);
        assert!(bound_name(&d, &ids[0]).is_some() && bound_name(&d, &ids[1]).is_some());
        let rotated = Schema::from_collections(vec![(*users("s2")).clone(), (*other).clone()]);
        d.forget_auth_of_changed_collections(&before, &rotated);
        assert_eq!(bound_name(&d, &ids[0]), None, "secret rotated");
        assert!(bound_name(&d, &ids[1]).is_some());
        let without_other = Schema::from_collections(vec![(*users("s2")).clone()]);
        d.forget_auth_of_changed_collections(&rotated, &without_other);
        assert_eq!(bound_name(&d, &ids[1]), None, "collection deleted");
        d.hub.shutdown(Duration::from_secs(1));
    }
}
