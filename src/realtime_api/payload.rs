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
    /// their own collections' view rules for that requester.
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
        if key.expand.is_some() || key.fields.is_some() {
            let text: Arc<str> = self.presented(conn, auth, &key).into();
            self.rendered.insert(key, Arc::clone(&text));
            return text;
        }
        let viewer = Viewer {
            is_superuser: key.superuser,
            is_owner: key.owner,
            // Hook: `manageRule` access is not evaluated yet (nor in the
            // records API); when it is, it joins the key like `owner`.
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
        PayloadKey {
            superuser: auth.is_some_and(ClientAuth::is_superuser),
            owner,
            fields: options.fields().map(str::to_string),
            requester: expand
                .as_ref()
                .and(auth)
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
    use super::*;
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

    #[test]
    fn a_star_keeps_everything_and_modifiers_keep_their_key() {
        assert_eq!(pick_top_level(record(), "*").len(), 4);
        let picked = pick_top_level(record(), "body:excerpt(1,true),expand.x.y");
        assert_eq!(Value::Object(picked), json!({"body": "b"}));
    }
}
