//! How a record looks inside an event for one subscriber: the records API's
//! JSON for that viewer (hidden fields only for superusers, an auth record's
//! email only when visible to that viewer) with the subscription's `fields`
//! applied, wrapped as `{"action": ..., "record": ...}`.
//!
//! Pure apart from its cache: each distinct (viewer, fields) is rendered once
//! per event and the text is shared by every subscriber that sees it.

use super::events::RecordChange;
use super::topic::SubscriptionOptions;
use super::ClientAuth;
use crate::collections::Schema;
use crate::records::filter;
use crate::records::output::{to_json, Viewer};
use crate::records::{PresentOptions, Presenter};
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What makes two subscribers see different bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PayloadKey {
    superuser: bool,
    owner: bool,
    fields: Option<String>,
    expand: Option<String>,
    /// Who is asking, when it matters: expanded records are filtered by
    /// their own collections' view rules for that requester, and an auth
    /// collection's `manageRule` may show the record's email to them.
    requester: Option<(String, String)>,
}

/// The rendered payloads of one event.
pub(super) struct EventPayloads<'a> {
    change: &'a RecordChange,
    schema: &'a Schema,
    rendered: HashMap<PayloadKey, Arc<str>>,
}

impl<'a> EventPayloads<'a> {
    pub(super) fn new(change: &'a RecordChange, schema: &'a Schema) -> EventPayloads<'a> {
        EventPayloads {
            change,
            schema,
            rendered: HashMap::new(),
        }
    }

    /// The event data for a subscriber with `auth` and `options`.
    pub(super) fn for_subscriber(
        &mut self,
        conn: &Connection,
        auth: Option<&ClientAuth>,
        options: &SubscriptionOptions,
    ) -> Arc<str> {
        let key = self.key(auth, options);
        if let Some(text) = self.rendered.get(&key) {
            return Arc::clone(text);
        }
        if key.expand.is_some() || key.fields.is_some() || key.requester.is_some() {
            let text: Arc<str> = self.presented(conn, auth, &key).into();
            self.rendered.insert(key, Arc::clone(&text));
            return text;
        }
        let viewer = Viewer {
            is_superuser: key.superuser,
            is_owner: key.owner,
            // Without a requester in the key nobody here manages the record
            // (see `key`); managers are shown through `presented`.
            can_manage: false,
        };
        let text: Arc<str> = event_data(self.change, &viewer, key.fields.as_deref()).into();
        self.rendered.insert(key, Arc::clone(&text));
        text
    }

    fn key(&self, auth: Option<&ClientAuth>, options: &SubscriptionOptions) -> PayloadKey {
        let collection = &self.change.collection;
        // Ownership only changes what an auth record shows (its email), so
        // base records share one rendering for owners and others.
        let owner = collection.is_auth()
            && auth.is_some_and(|a| a.is(&collection.id, self.change.record.id()));
        let expand = options.expand().map(str::to_string);
        let per_requester = expand.is_some() || filter::manage_rule(collection).is_some();
        PayloadKey {
            superuser: auth.is_some_and(ClientAuth::is_superuser),
            owner,
            fields: options.fields().map(str::to_string),
            requester: auth
                .filter(|_| per_requester)
                .map(|a| (a.0.collection.id.clone(), a.0.id().to_string())),
            expand,
        }
    }

    /// The records API's presentation (visibility, expand, fields) of the
    /// changed record for this subscriber. Expanded records are read from
    /// the database as committed; the record itself is the event's state
    /// (for a delete, its last one). A malformed `fields` shows the record
    /// unpicked rather than nothing.
    fn presented(&self, conn: &Connection, auth: Option<&ClientAuth>, key: &PayloadKey) -> String {
        let options = PresentOptions::parse(key.expand.as_deref(), key.fields.as_deref())
            .or_else(|_| PresentOptions::parse(key.expand.as_deref(), None))
            .unwrap_or_else(|_| PresentOptions::none());
        let presenter = Presenter::new(conn, self.schema, auth.map(|a| a.0.as_ref()));
        let record = presenter.present_one(&self.change.collection, &self.change.record, &options);
        let mut data = Map::new();
        data.insert(
            "action".into(),
            Value::String(self.change.action.as_str().into()),
        );
        data.insert("record".into(), record);
        Value::Object(data).to_string()
    }
}

/// `{"action": ..., "record": ...}` as one line of JSON.
pub(super) fn event_data(change: &RecordChange, viewer: &Viewer, fields: Option<&str>) -> String {
    let mut record = to_json(&change.collection, &change.record, viewer);
    // Hook: `expand` from the subscription options is applied here once the
    // records API can expand relations (each expanded record filtered by
    // its own collection's view rule for this subscriber).
    if let Some(fields) = fields {
        record = pick_top_level(record, fields);
    }
    let mut data = Map::new();
    data.insert(
        "action".into(),
        Value::String(change.action.as_str().into()),
    );
    data.insert("record".into(), Value::Object(record));
    Value::Object(data).to_string()
}

/// Keeps the listed top-level keys (`*` keeps all), in the record's order.
/// Unknown names are ignored. Nested paths (`expand.author.name`) keep their
/// top-level key whole, and modifiers (`title:excerpt(10)`) are not applied
/// yet: both come with the shared `fields` picker of the records API.
fn pick_top_level(record: Map<String, Value>, fields: &str) -> Map<String, Value> {
    let wanted: Vec<&str> = fields
        .split(',')
        .map(|item| {
            let path = item.split(':').next().unwrap_or(item);
            path.split('.').next().unwrap_or(path).trim()
        })
        .filter(|name| !name.is_empty())
        .collect();
    if wanted.contains(&"*") {
        return record;
    }
    record
        .into_iter()
        .filter(|(key, _)| wanted.contains(&key.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::events::Action;
    use super::*;
    use crate::auth::Auth;
    use crate::collections::{defaults, Collection, CollectionType};
    use crate::records::RecordValues;
    use serde_json::json;

    fn record() -> Map<String, Value> {
        let Value::Object(map) =
            json!({"collectionId": "c", "id": "r1", "title": "t", "body": "b"})
        else {
            unreachable!()
        };
        map
    }

    #[test]
    fn fields_keep_only_listed_top_level_keys_in_record_order() {
        let picked = pick_top_level(record(), " title , id,unknown");
        assert_eq!(Value::Object(picked), json!({"id": "r1", "title": "t"}));
        let keys: Vec<String> = pick_top_level(record(), "title,id")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["id", "title"]);
    }

    fn staff(manage_rule: Option<&str>) -> Arc<Collection> {
        let mut c = defaults::new_collection(CollectionType::Auth, "pbc_staff", "staff");
        if let Some(rule) = manage_rule {
            c.options.insert("manageRule".into(), json!(rule));
        }
        Arc::new(c)
    }

    fn member(id: &str) -> RecordValues {
        let mut record = RecordValues::new();
        record.set("id", json!(id));
        record
    }

    fn client(collection: &Arc<Collection>, id: &str) -> ClientAuth {
        ClientAuth::new(Auth {
            collection: Arc::clone(collection),
            record: Arc::new(member(id)),
            token: "t".into(),
            refreshable: true,
        })
    }

    #[test]
    fn a_manage_rule_keeps_renderings_apart_per_requester() {
        let options = SubscriptionOptions::default();
        let schema = Schema::empty();
        for (rule, shared) in [(None, true), (Some("@request.auth.id != ''"), false)] {
            let collection = staff(rule);
            let change = RecordChange {
                action: Action::Update,
                collection: Arc::clone(&collection),
                record: member("bob"),
            };
            let payloads = EventPayloads::new(&change, &schema);
            let ann = payloads.key(Some(&client(&collection, "ann")), &options);
            let carl = payloads.key(Some(&client(&collection, "carl")), &options);
            // a manager must never get a non-manager's rendering, or back
            assert_eq!(ann == carl, shared, "manageRule {rule:?}");
        }
    }

    #[test]
    fn a_star_keeps_everything_and_modifiers_keep_their_key() {
        assert_eq!(pick_top_level(record(), "*").len(), 4);
        let picked = pick_top_level(record(), "body:excerpt(1,true),expand.x.y");
        assert_eq!(Value::Object(picked), json!({"body": "b"}));
    }
}
