//! Relations between records on the database: that related ids exist
//! when a record is saved, and what deleting a record does to the records
//! pointing at it (the reference's semantics: `cascadeDelete` relations
//! delete the pointing record too, a *required* relation that would become
//! empty refuses the delete, otherwise the id is removed from the pointing
//! record and its `onUpdate` autodates move).
//!
//! Runs on the connection it is given (the writer's, inside its
//! transaction); never opens one. All SQL is parameterised and names only
//! collections and fields of the schema.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};

use rusqlite::Connection;
use serde_json::Value;

use super::sql;
use super::validate::error;
use super::values::{shape_list, RecordValues};
use crate::collections::{Collection, Field, FieldKind};
use crate::error::FieldErrors;
use crate::store::quote_ident;

/// Read access to the whole schema, as relations cross collections.
/// Implemented for slices and vectors of `Collection` or of anything that
/// borrows one (`Arc<Collection>`, ...).
pub trait SchemaLookup {
    fn collection_by_id(&self, id: &str) -> Option<&Collection>;
    fn all_collections(&self) -> Vec<&Collection>;
}

impl<C: Borrow<Collection>> SchemaLookup for [C] {
    fn collection_by_id(&self, id: &str) -> Option<&Collection> {
        self.iter().map(Borrow::borrow).find(|c| c.id == id)
    }

    fn all_collections(&self) -> Vec<&Collection> {
        self.iter().map(Borrow::borrow).collect()
    }
}

impl<C: Borrow<Collection>> SchemaLookup for Vec<C> {
    fn collection_by_id(&self, id: &str) -> Option<&Collection> {
        self.as_slice().collection_by_id(id)
    }

    fn all_collections(&self) -> Vec<&Collection> {
        self.as_slice().all_collections()
    }
}

fn missing_records_error() -> Value {
    error(
        "validation_missing_rel_records",
        "Failed to find all relation records with the provided ids.",
    )
}

/// `validation_missing_rel_records` for every relation field of `values`
/// naming an id that does not exist in its target collection (or whose
/// target collection is gone). Merge into the `prepare_*` errors with
/// `merge_errors`, which keeps a field's earlier error.
pub fn check_relations(
    conn: &Connection,
    schema: &(impl SchemaLookup + ?Sized),
    collection: &Collection,
    values: &RecordValues,
) -> rusqlite::Result<FieldErrors> {
    let mut errors = FieldErrors::new();
    for field in &collection.fields {
        let FieldKind::Relation { collection_id, .. } = &field.kind else {
            continue;
        };
        let ids = values.get_strings(&field.name);
        if ids.is_empty() {
            continue;
        }
        let found = match schema.collection_by_id(collection_id) {
            Some(target) => count_existing(conn, target, &ids)?,
            None => 0,
        };
        if found < ids.len() {
            errors.insert(field.name.clone(), missing_records_error());
        }
    }
    Ok(errors)
}

/// How many of the (distinct) `ids` exist in `target`.
fn count_existing(conn: &Connection, target: &Collection, ids: &[&str]) -> rusqlite::Result<usize> {
    if let [id] = ids {
        // The common single relation: a plain key lookup. The list form
        // below has SQLite build a temporary index of the ids first, which
        // cost more than the rest of a record create's checks together.
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE `id` = ?",
            quote_ident(&target.name)
        );
        let n: i64 = conn
            .prepare_cached(&sql)?
            .query_row([id], |row| row.get(0))?;
        return Ok(usize::try_from(n).unwrap_or(0));
    }
    // One JSON parameter instead of one placeholder per id: no limit on the list length.
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE `id` IN (SELECT value FROM json_each(?))",
        quote_ident(&target.name)
    );
    let list = Value::from(ids.to_vec()).to_string();
    // Cached: every write with a relation field runs it on the writer thread.
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row([list], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// What a delete did, for the caller's follow-ups (files, realtime events).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// (collection id, record id) of every deleted record, the requested
    /// one first, then those removed by `cascadeDelete`.
    pub deleted: Vec<(String, String)>,
    /// (collection id, record id) of records whose relation fields lost the
    /// deleted ids.
    pub updated: Vec<(String, String)>,
}

/// Why a delete did not happen.
#[derive(Debug)]
pub enum DeleteError {
    /// No record with that id.
    NotFound,
    /// A required relation of another record points at it (the reference
    /// answers 400 "Failed to delete record. Make sure that the record is
    /// not part of a required relation reference.").
    RequiredReference {
        collection_id: String,
        record_id: String,
        field: String,
    },
    /// Updating a pointing record or deleting a row failed.
    Write(sql::WriteError),
}

impl From<rusqlite::Error> for DeleteError {
    fn from(err: rusqlite::Error) -> DeleteError {
        DeleteError::Write(sql::WriteError::Sql(err))
    }
}

impl From<sql::WriteError> for DeleteError {
    fn from(err: sql::WriteError) -> DeleteError {
        DeleteError::Write(err)
    }
}

impl std::fmt::Display for DeleteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeleteError::NotFound => write!(f, "record not found"),
            DeleteError::RequiredReference {
                collection_id,
                record_id,
                field,
            } => write!(
                f,
                "required relation {collection_id}.{field} of {record_id} points at the record"
            ),
            DeleteError::Write(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for DeleteError {}

/// Name of the savepoint that makes a delete all-or-nothing even when the
/// caller's transaction continues after a refused delete.
const DELETE_SAVEPOINT: &str = "satchel_records_delete";

/// Deletes record `id` of `collection` and settles the records pointing at
/// it (see the module docs). `now` stamps `onUpdate` autodates of records
/// that lose an id. All or nothing: on error nothing is changed.
pub fn delete_record(
    conn: &Connection,
    schema: &(impl SchemaLookup + ?Sized),
    collection: &Collection,
    id: &str,
    now: &str,
) -> Result<DeleteOutcome, DeleteError> {
    delete_with_observer(conn, schema, collection, id, now, None)
}

/// Receives a deleted record's collection and last state (see
/// [`delete_record_observed`]).
pub type DeleteObserver<'a> = &'a mut dyn FnMut(&Collection, RecordValues);

/// As [`delete_record`], also handing `observe` each deleted record's last
/// state (and its collection) just before its row goes, in delete order:
/// what realtime delete events carry. The states only mean something if
/// the delete succeeds.
pub fn delete_record_observed(
    conn: &Connection,
    schema: &(impl SchemaLookup + ?Sized),
    collection: &Collection,
    id: &str,
    now: &str,
    observe: DeleteObserver<'_>,
) -> Result<DeleteOutcome, DeleteError> {
    delete_with_observer(conn, schema, collection, id, now, Some(observe))
}

fn delete_with_observer(
    conn: &Connection,
    schema: &(impl SchemaLookup + ?Sized),
    collection: &Collection,
    id: &str,
    now: &str,
    observe: Option<DeleteObserver<'_>>,
) -> Result<DeleteOutcome, DeleteError> {
    conn.execute_batch(&format!("SAVEPOINT {DELETE_SAVEPOINT}"))?;
    let result = delete_cascading(conn, schema, collection, id, now, observe);
    let finish = match result {
        Ok(_) => format!("RELEASE {DELETE_SAVEPOINT}"),
        Err(_) => format!("ROLLBACK TO {DELETE_SAVEPOINT}; RELEASE {DELETE_SAVEPOINT}"),
    };
    conn.execute_batch(&finish)?;
    result
}

/// Breadth-first over the records to delete, so long cascade chains need
/// no recursion.
fn delete_cascading(
    conn: &Connection,
    schema: &(impl SchemaLookup + ?Sized),
    collection: &Collection,
    id: &str,
    now: &str,
    mut observe: Option<DeleteObserver<'_>>,
) -> Result<DeleteOutcome, DeleteError> {
    if sql::find_by_id(conn, collection, id)?.is_none() {
        return Err(DeleteError::NotFound);
    }
    let mut outcome = DeleteOutcome::default();
    let mut queue = VecDeque::from([(collection.id.clone(), id.to_string())]);
    let mut seen: HashSet<(String, String)> = queue.iter().cloned().collect();
    while let Some((collection_id, record_id)) = queue.pop_front() {
        let Some(owner) = schema
            .collection_by_id(&collection_id)
            .or_else(|| (collection_id == collection.id).then_some(collection))
        else {
            continue;
        };
        for (referrer, field) in referencing_fields(schema, &collection_id) {
            for mut record in records_pointing_at(conn, referrer, field, &record_id)? {
                let key = (referrer.id.clone(), record.id().to_string());
                if seen.contains(&key) {
                    continue;
                }
                if cascades(field) {
                    seen.insert(key.clone());
                    queue.push_back(key);
                    continue;
                }
                remove_reference(referrer, field, &mut record, &record_id, now)?;
                sql::update(conn, referrer, record.id(), &record)?;
                if !outcome.updated.contains(&key) {
                    outcome.updated.push(key);
                }
            }
        }
        if let Some(observe) = observe.as_mut() {
            if let Some(last_state) = sql::find_by_id(conn, owner, &record_id)? {
                observe(owner, last_state);
            }
        }
        sql::delete(conn, owner, &record_id)?;
        outcome.deleted.push((collection_id, record_id));
    }
    outcome.updated.retain(|key| !outcome.deleted.contains(key));
    Ok(outcome)
}

/// Every (collection, relation field) of the schema that targets `target_id`.
fn referencing_fields<'s>(
    schema: &'s (impl SchemaLookup + ?Sized),
    target_id: &str,
) -> Vec<(&'s Collection, &'s Field)> {
    let mut out = Vec::new();
    for collection in schema.all_collections() {
        if collection.is_view() {
            continue;
        }
        for field in &collection.fields {
            if matches!(&field.kind, FieldKind::Relation { collection_id, .. } if collection_id == target_id)
            {
                out.push((collection, field));
            }
        }
    }
    out
}

fn cascades(field: &Field) -> bool {
    matches!(
        field.kind,
        FieldKind::Relation {
            cascade_delete: true,
            ..
        }
    )
}

/// Records of `collection` whose relation `field` holds `id`. A LIKE on the
/// stored text narrows the scan; the exact membership is checked here.
fn records_pointing_at(
    conn: &Connection,
    collection: &Collection,
    field: &Field,
    id: &str,
) -> rusqlite::Result<Vec<RecordValues>> {
    let column = format!(
        "{}.{}",
        quote_ident(&collection.name),
        quote_ident(&field.name)
    );
    let pattern = format!("%{}%", escape_like(id));
    let filter = format!("{column} LIKE ? ESCAPE '\\'");
    let params = [sql::SqlParam::Text(pattern)];
    let candidates = sql::list(conn, collection, Some((&filter, &params)), &[], None, 0)?;
    Ok(candidates
        .into_iter()
        .filter(|record| record.get_strings(&field.name).contains(&id))
        .collect())
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Drops `id` from the relation, refusing when a required relation would
/// become empty, and stamps the record's `onUpdate` autodates.
fn remove_reference(
    collection: &Collection,
    field: &Field,
    record: &mut RecordValues,
    id: &str,
    now: &str,
) -> Result<(), DeleteError> {
    let remaining: Vec<String> = record
        .get_strings(&field.name)
        .into_iter()
        .filter(|item| *item != id)
        .map(str::to_string)
        .collect();
    if field.required && remaining.is_empty() {
        return Err(DeleteError::RequiredReference {
            collection_id: collection.id.clone(),
            record_id: record.id().to_string(),
            field: field.name.clone(),
        });
    }
    record.set(&field.name, shape_list(&field.kind, remaining));
    for autodate in &collection.fields {
        if matches!(
            autodate.kind,
            FieldKind::Autodate {
                on_update: true,
                ..
            }
        ) {
            record.set(&autodate.name, Value::String(now.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::CollectionType;
    use serde_json::{json, Map};

    const NOW: &str = "2030-01-01 00:00:00.000Z";

    fn field(name: &str, kind: FieldKind, required: bool) -> Field {
        Field {
            id: format!("f_{name}"),
            name: name.into(),
            system: false,
            hidden: false,
            presentable: false,
            required,
            help: String::new(),
            kind,
        }
    }

    fn relation(target: &str, max_select: i64, cascade_delete: bool) -> FieldKind {
        FieldKind::Relation {
            collection_id: target.into(),
            cascade_delete,
            min_select: 0,
            max_select,
        }
    }

    fn id_field() -> Field {
        field(
            "id",
            FieldKind::Text {
                min: 0,
                max: 0,
                pattern: String::new(),
                autogenerate_pattern: String::new(),
                primary_key: true,
            },
            true,
        )
    }

    fn collection(id: &str, name: &str, extra: Vec<Field>) -> Collection {
        let mut fields = vec![id_field()];
        fields.extend(extra);
        Collection {
            id: id.into(),
            name: name.into(),
            kind: CollectionType::Base,
            system: false,
            fields,
            indexes: vec![],
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

    fn updated_field() -> Field {
        field(
            "updated",
            FieldKind::Autodate {
                on_create: true,
                on_update: true,
            },
            false,
        )
    }

    /// tgt ← loose (one, many), strict (required one), chained (cascade) ← leaf (cascade).
    fn schema() -> Vec<Collection> {
        vec![
            collection("c_tgt", "tgt", vec![]),
            collection(
                "c_loose",
                "loose",
                vec![
                    field("one", relation("c_tgt", 1, false), false),
                    field("many", relation("c_tgt", 5, false), false),
                    updated_field(),
                ],
            ),
            collection(
                "c_strict",
                "strict",
                vec![field("one", relation("c_tgt", 1, false), true)],
            ),
            collection(
                "c_chained",
                "chained",
                vec![field("one", relation("c_tgt", 1, true), false)],
            ),
            collection(
                "c_leaf",
                "leaf",
                vec![field("up", relation("c_chained", 1, true), false)],
            ),
        ]
    }

    fn setup() -> (Connection, Vec<Collection>) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE tgt (id TEXT PRIMARY KEY NOT NULL);
             CREATE TABLE loose (id TEXT PRIMARY KEY NOT NULL, one TEXT DEFAULT '' NOT NULL,
                                 many JSON DEFAULT '[]' NOT NULL, updated TEXT DEFAULT '' NOT NULL);
             CREATE TABLE strict (id TEXT PRIMARY KEY NOT NULL, one TEXT DEFAULT '' NOT NULL);
             CREATE TABLE chained (id TEXT PRIMARY KEY NOT NULL, one TEXT DEFAULT '' NOT NULL);
             CREATE TABLE leaf (id TEXT PRIMARY KEY NOT NULL, up TEXT DEFAULT '' NOT NULL);
             INSERT INTO tgt VALUES ('t1'), ('t2'), ('t3'), ('t_4%');",
        )
        .unwrap();
        (conn, schema())
    }

    fn record(pairs: Value) -> RecordValues {
        match pairs {
            Value::Object(map) => RecordValues::from(map),
            _ => RecordValues::new(),
        }
    }

    fn find(
        conn: &Connection,
        schema: &[Collection],
        collection_id: &str,
        id: &str,
    ) -> Option<RecordValues> {
        let c = schema.collection_by_id(collection_id).unwrap();
        sql::find_by_id(conn, c, id).unwrap()
    }

    #[test]
    fn missing_relation_ids_are_reported_per_field() {
        let (conn, schema) = setup();
        let loose = &schema[1];
        let ok = record(json!({"id": "l1", "one": "t1", "many": ["t2", "t1"]}));
        assert!(check_relations(&conn, &schema, loose, &ok)
            .unwrap()
            .is_empty());
        let bad = record(json!({"id": "l1", "one": "nope", "many": ["t1", "bbbbbbbbbbbbbbb"]}));
        let errors = check_relations(&conn, &schema, loose, &bad).unwrap();
        assert_eq!(errors["one"]["code"], "validation_missing_rel_records");
        assert_eq!(
            errors["one"]["message"],
            "Failed to find all relation records with the provided ids."
        );
        assert_eq!(errors["many"]["code"], "validation_missing_rel_records");
        let empty = record(json!({"id": "l1", "one": "", "many": []}));
        assert!(check_relations(&conn, &schema, loose, &empty)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn relations_to_a_vanished_collection_are_missing() {
        let (conn, schema) = setup();
        let orphan = collection(
            "c_orphan",
            "orphan",
            vec![field("r", relation("c_gone", 1, false), false)],
        );
        let errors = check_relations(
            &conn,
            &schema,
            &orphan,
            &record(json!({"id": "o", "r": "t1"})),
        )
        .unwrap();
        assert!(errors.contains_key("r"));
    }

    #[test]
    fn delete_removes_the_id_from_optional_relations() {
        let (conn, schema) = setup();
        sql::insert(
            &conn,
            &schema[1],
            &record(json!({"id": "l1", "one": "t1", "many": ["t2", "t1"], "updated": "old"})),
        )
        .unwrap();
        let outcome = delete_record(&conn, &schema, &schema[0], "t1", NOW).unwrap();
        assert_eq!(outcome.deleted, [("c_tgt".to_string(), "t1".to_string())]);
        assert_eq!(outcome.updated, [("c_loose".to_string(), "l1".to_string())]);
        let l1 = find(&conn, &schema, "c_loose", "l1").unwrap();
        assert_eq!(l1.get("one"), Some(&json!("")));
        assert_eq!(l1.get("many"), Some(&json!(["t2"])));
        assert_eq!(l1.get_str("updated"), NOW);
        assert!(find(&conn, &schema, "c_tgt", "t1").is_none());
    }

    #[test]
    fn required_references_refuse_the_delete_and_change_nothing() {
        let (conn, schema) = setup();
        sql::insert(&conn, &schema[1], &record(json!({"id": "l1", "one": "t2"}))).unwrap();
        sql::insert(&conn, &schema[2], &record(json!({"id": "s1", "one": "t2"}))).unwrap();
        let err = delete_record(&conn, &schema, &schema[0], "t2", NOW).unwrap_err();
        assert!(
            matches!(err, DeleteError::RequiredReference { ref field, .. } if field == "one"),
            "{err}"
        );
        assert!(find(&conn, &schema, "c_tgt", "t2").is_some());
        assert_eq!(
            find(&conn, &schema, "c_loose", "l1")
                .unwrap()
                .get_str("one"),
            "t2"
        );
    }

    #[test]
    fn cascade_deletes_follow_chains() {
        let (conn, schema) = setup();
        sql::insert(
            &conn,
            &schema[3],
            &record(json!({"id": "ch1", "one": "t3"})),
        )
        .unwrap();
        sql::insert(
            &conn,
            &schema[4],
            &record(json!({"id": "lf1", "up": "ch1"})),
        )
        .unwrap();
        let outcome = delete_record(&conn, &schema, &schema[0], "t3", NOW).unwrap();
        let deleted: Vec<&str> = outcome.deleted.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(deleted, ["t3", "ch1", "lf1"]);
        assert!(find(&conn, &schema, "c_chained", "ch1").is_none());
        assert!(find(&conn, &schema, "c_leaf", "lf1").is_none());
    }

    #[test]
    fn an_observed_delete_reports_each_last_state_in_delete_order() {
        let (conn, schema) = setup();
        sql::insert(
            &conn,
            &schema[3],
            &record(json!({"id": "ch1", "one": "t3"})),
        )
        .unwrap();
        sql::insert(
            &conn,
            &schema[4],
            &record(json!({"id": "lf1", "up": "ch1"})),
        )
        .unwrap();
        let mut seen: Vec<(String, String, Value)> = Vec::new();
        let mut observe = |owner: &Collection, last: RecordValues| {
            let up = last.get("up").cloned().unwrap_or(Value::Null);
            seen.push((owner.name.clone(), last.id().to_string(), up));
        };
        delete_record_observed(&conn, &schema, &schema[0], "t3", NOW, &mut observe).unwrap();
        let ids: Vec<(&str, &str)> = seen
            .iter()
            .map(|(c, id, _)| (c.as_str(), id.as_str()))
            .collect();
        assert_eq!(ids, [("tgt", "t3"), ("chained", "ch1"), ("leaf", "lf1")]);
        assert_eq!(seen[2].2, json!("ch1"), "the state before the row went");
    }

    #[test]
    fn like_wildcards_in_ids_do_not_over_match() {
        let (conn, schema) = setup();
        sql::insert(
            &conn,
            &schema[1],
            &record(json!({"id": "l1", "many": ["t_4%"]})),
        )
        .unwrap();
        sql::insert(
            &conn,
            &schema[1],
            &record(json!({"id": "l2", "many": ["tx4y"]})),
        )
        .unwrap();
        let outcome = delete_record(&conn, &schema, &schema[0], "t_4%", NOW).unwrap();
        assert_eq!(outcome.updated, [("c_loose".to_string(), "l1".to_string())]);
        assert_eq!(
            find(&conn, &schema, "c_loose", "l2").unwrap().get("many"),
            Some(&json!(["tx4y"]))
        );
    }

    #[test]
    fn deleting_a_missing_record_is_not_found() {
        let (conn, schema) = setup();
        assert!(matches!(
            delete_record(&conn, &schema, &schema[0], "zzz", NOW),
            Err(DeleteError::NotFound)
        ));
    }

    #[test]
    fn self_references_do_not_loop() {
        let (conn, _) = setup();
        conn.execute_batch(
            "CREATE TABLE nodes (id TEXT PRIMARY KEY NOT NULL, parent TEXT DEFAULT '' NOT NULL)",
        )
        .unwrap();
        let nodes = collection(
            "c_nodes",
            "nodes",
            vec![field("parent", relation("c_nodes", 1, true), false)],
        );
        let schema = vec![nodes];
        sql::insert(
            &conn,
            &schema[0],
            &record(json!({"id": "a", "parent": "b"})),
        )
        .unwrap();
        sql::insert(
            &conn,
            &schema[0],
            &record(json!({"id": "b", "parent": "a"})),
        )
        .unwrap();
        let outcome = delete_record(&conn, &schema, &schema[0], "a", NOW).unwrap();
        assert_eq!(outcome.deleted.len(), 2);
    }
}
