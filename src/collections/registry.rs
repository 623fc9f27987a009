//! `Schema`: an immutable snapshot of every collection, looked up by id or
//! case-insensitive name. Readers share one `Arc<Schema>`; after a commit
//! that changed `_collections` the owner loads a new snapshot and swaps it
//! in whole, so a request never sees half of a schema change.
//!
//! This module only reads `_collections`; it never writes.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::json::COLLECTION_COLUMNS;
use super::model::{Collection, FieldKind};

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// In creation order (the `_collections` rowid order).
    ordered: Vec<Arc<Collection>>,
    by_id: HashMap<String, Arc<Collection>>,
    by_lower_name: HashMap<String, Arc<Collection>>,
}

impl Schema {
    pub fn empty() -> Schema {
        Schema::default()
    }

    /// Reads every `_collections` row. A row that cannot be decoded (an
    /// unknown field type from a newer reference, broken JSON) fails the
    /// whole load: serving with part of the schema missing would be worse.
    pub fn load(conn: &Connection) -> rusqlite::Result<Schema> {
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM `_collections` ORDER BY rowid");
        let mut stmt = conn.prepare(&sql)?;
        let collections = stmt
            .query_map([], Collection::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Schema::from_collections(collections))
    }

    pub fn from_collections(collections: Vec<Collection>) -> Schema {
        Schema::from_arcs(collections.into_iter().map(Arc::new).collect())
    }

    fn from_arcs(ordered: Vec<Arc<Collection>>) -> Schema {
        let by_id = ordered.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let by_lower_name = ordered
            .iter()
            .map(|c| (c.name.to_lowercase(), c.clone()))
            .collect();
        Schema {
            ordered,
            by_id,
            by_lower_name,
        }
    }

    /// By exact id first, then by name ignoring case (the reference's order).
    pub fn get(&self, id_or_name: &str) -> Option<&Arc<Collection>> {
        self.get_by_id(id_or_name)
            .or_else(|| self.get_by_name(id_or_name))
    }

    pub fn get_by_id(&self, id: &str) -> Option<&Arc<Collection>> {
        self.by_id.get(id)
    }

    /// By name, ignoring case.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<Collection>> {
        self.by_lower_name.get(&name.to_lowercase())
    }

    /// Every collection in creation order.
    pub fn all(&self) -> &[Arc<Collection>] {
        &self.ordered
    }

    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// A snapshot with `collection` added, or replacing the one with its id.
    pub fn with(&self, collection: Collection) -> Schema {
        let collection = Arc::new(collection);
        let mut ordered = self.ordered.clone();
        match ordered.iter().position(|c| c.id == collection.id) {
            Some(pos) => ordered[pos] = collection,
            None => ordered.push(collection),
        }
        Schema::from_arcs(ordered)
    }

    /// A snapshot without the collection with `id`.
    pub fn without(&self, id: &str) -> Schema {
        Schema::from_arcs(
            self.ordered
                .iter()
                .filter(|c| c.id != id)
                .cloned()
                .collect(),
        )
    }

    /// Other collections with a relation field pointing at collection `id`
    /// (a collection relating to itself does not count).
    pub fn referencing(&self, id: &str) -> Vec<&Arc<Collection>> {
        self.ordered
            .iter()
            .filter(|c| c.id != id)
            .filter(|c| {
                c.fields.iter().any(|f| {
                    matches!(&f.kind, FieldKind::Relation { collection_id, .. } if collection_id == id)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::model::{CollectionType, Field};
    use serde_json::Map;

    fn collection(id: &str, name: &str) -> Collection {
        Collection {
            id: id.into(),
            name: name.into(),
            kind: CollectionType::Base,
            system: false,
            fields: Vec::new(),
            indexes: Vec::new(),
            list_rule: None,
            view_rule: None,
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
        }
    }

    #[test]
    fn lookups_prefer_ids_then_names_ignoring_case() {
        // a collection named like another one's id: the id wins
        let schema =
            Schema::from_collections(vec![collection("abc", "posts"), collection("p2", "abc")]);
        assert_eq!(schema.get("abc").unwrap().name, "posts");
        assert_eq!(schema.get("POSTS").unwrap().id, "abc");
        assert_eq!(schema.get("p2").unwrap().name, "abc");
        assert!(schema.get("nope").is_none());
        assert_eq!(schema.all().len(), 2);
    }

    #[test]
    fn with_and_without_make_new_snapshots() {
        let schema = Schema::from_collections(vec![collection("a", "one")]);
        let grown = schema.with(collection("b", "two"));
        let renamed = grown.with(collection("a", "uno"));
        assert_eq!(schema.len(), 1);
        assert_eq!(renamed.all()[0].name, "uno");
        assert!(renamed.get("one").is_none());
        assert_eq!(renamed.without("a").len(), 1);
    }

    #[test]
    fn references_exclude_self_relations() {
        let mut posts = collection("p", "posts");
        let mut rel = Field::new("author", FieldKind::default_for("relation").unwrap());
        rel.kind = FieldKind::Relation {
            collection_id: "u".into(),
            cascade_delete: false,
            min_select: 0,
            max_select: 1,
        };
        posts.fields.push(rel.clone());
        let mut users = collection("u", "users");
        users.fields.push(rel);
        let schema = Schema::from_collections(vec![posts, users]);
        let refs: Vec<&str> = schema
            .referencing("u")
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(refs, ["posts"]);
    }

    #[test]
    fn loads_the_reference_rows_in_creation_order() {
        let Ok(text) = std::fs::read_to_string("/work/ref/collections.json") else {
            return;
        };
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        crate::store::bootstrap::create_base_tables(&conn).unwrap();
        for row in &rows {
            conn.execute(
                "INSERT INTO _collections (id, system, type, name, fields, indexes, listRule, viewRule, \
                 createRule, updateRule, deleteRule, options, created, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                rusqlite::params![
                    row["id"].as_str(), row["system"].as_i64(), row["type"].as_str(),
                    row["name"].as_str(), row["fields"].as_str(), row["indexes"].as_str(),
                    row["listRule"].as_str(), row["viewRule"].as_str(), row["createRule"].as_str(),
                    row["updateRule"].as_str(), row["deleteRule"].as_str(), row["options"].as_str(),
                    row["created"].as_str(), row["updated"].as_str()
                ],
            )
            .unwrap();
        }
        let schema = Schema::load(&conn).unwrap();
        let names: Vec<&str> = schema.all().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "_mfas",
                "_otps",
                "_externalAuths",
                "_authOrigins",
                "_superusers",
                "users"
            ]
        );
        assert_eq!(schema.get("_pb_users_auth_").unwrap().name, "users");
        assert_eq!(schema.get("USERS").unwrap().id, "_pb_users_auth_");
    }
}
