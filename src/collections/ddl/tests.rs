use super::*;
use crate::collections::json::fields_to_json;
use crate::collections::system::tests::{accept_rules, fresh_db};
use crate::collections::validate::{build_new, build_update};
use serde_json::{json, Value};

fn create_from(conn: &Connection, body: Value) -> Collection {
    let schema = Schema::load(conn).unwrap();
    let c = build_new(conn, &body, &schema, &accept_rules).unwrap();
    create(conn, &c).unwrap();
    c
}

fn update_with(conn: &Connection, name: &str, body: Value) -> Result<Collection, ApiError> {
    let schema = Schema::load(conn).unwrap();
    let existing = schema.get(name).unwrap().clone();
    let c = build_update(conn, &existing, &body, &schema, &accept_rules)?;
    update(conn, &existing, &c, &schema)?;
    Ok(c)
}

fn table_sql(conn: &Connection, name: &str) -> String {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY name"
        ))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn create_uses_the_reference_column_types() {
    let (conn, _) = fresh_db();
    let target = create_from(
        &conn,
        json!({"name": "tgt", "fields": [{"name": "label", "type": "text"}]}),
    );
    create_from(
        &conn,
        json!({"name": "kinds", "fields": [
            {"name": "title", "type": "text"}, {"name": "count", "type": "number"},
            {"name": "active", "type": "bool"}, {"name": "contact", "type": "email"},
            {"name": "homepage", "type": "url"}, {"name": "body", "type": "editor"},
            {"name": "due", "type": "date"}, {"name": "stamp", "type": "autodate", "onCreate": true},
            {"name": "status", "type": "select", "values": ["a"], "maxSelect": 1},
            {"name": "labels", "type": "select", "values": ["x", "y"], "maxSelect": 2},
            {"name": "meta", "type": "json"},
            {"name": "owner", "type": "relation", "collectionId": target.id, "maxSelect": 1},
            {"name": "related", "type": "relation", "collectionId": target.id, "maxSelect": 5},
            {"name": "attachment", "type": "file", "maxSelect": 2},
            {"name": "pw", "type": "password"}, {"name": "loc", "type": "geoPoint"},
            {"name": "n2", "type": "number"}
        ]}),
    );
    // observed on the reference for the same definition
    assert_eq!(
        table_sql(&conn, "kinds"),
        "CREATE TABLE `kinds` (`active` BOOLEAN DEFAULT FALSE NOT NULL, `attachment` JSON DEFAULT '[]' NOT NULL, \
         `body` TEXT DEFAULT '' NOT NULL, `contact` TEXT DEFAULT '' NOT NULL, `count` NUMERIC DEFAULT 0 NOT NULL, \
         `due` TEXT DEFAULT '' NOT NULL, `homepage` TEXT DEFAULT '' NOT NULL, \
         `id` TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL, `labels` JSON DEFAULT '[]' NOT NULL, \
         `loc` JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL, `meta` JSON DEFAULT NULL, `n2` NUMERIC DEFAULT 0 NOT NULL, \
         `owner` TEXT DEFAULT '' NOT NULL, `pw` TEXT DEFAULT '' NOT NULL, `related` JSON DEFAULT '[]' NOT NULL, \
         `stamp` TEXT DEFAULT '' NOT NULL, `status` TEXT DEFAULT '' NOT NULL, `title` TEXT DEFAULT '' NOT NULL)"
    );
    let stored = Schema::load(&conn).unwrap();
    assert_eq!(stored.get("kinds").unwrap().fields.len(), 18);
}

#[test]
fn altering_fields_keeps_data_by_field_id() {
    let (conn, _) = fresh_db();
    let c = create_from(
        &conn,
        json!({"name": "evo", "fields": [
            {"name": "keep", "type": "text"}, {"name": "num", "type": "number"}, {"name": "drop", "type": "text"},
            {"name": "a", "type": "text"}, {"name": "b", "type": "text"}
        ], "indexes": ["CREATE INDEX idx_evo_keep ON evo (keep)"]}),
    );
    conn.execute(
        "INSERT INTO evo (id, keep, num, `drop`, a, b) VALUES ('r1', 'kept', 7, 'bye', 'was a', 'was b')",
        [],
    )
    .unwrap();
    let mut fields = fields_to_json(&c.fields);
    let list = fields.as_array_mut().unwrap();
    list.retain(|f| f["name"] != "drop");
    // swap the names of a and b: data follows the field ids
    for f in list.iter_mut() {
        match f["name"].as_str() {
            Some("a") => f["name"] = json!("b"),
            Some("b") => f["name"] = json!("a"),
            Some("keep") => f["name"] = json!("kept_renamed"),
            _ => {}
        }
    }
    list.push(json!({"name": "extra", "type": "bool"}));
    update_with(
        &conn,
        "evo",
        json!({"fields": fields, "indexes": ["CREATE INDEX idx_evo_keep ON evo (kept_renamed)"]}),
    )
    .unwrap();
    assert_eq!(
        columns(&conn, "evo"),
        ["a", "b", "extra", "id", "kept_renamed", "num"]
    );
    let row: (String, f64, String, String, bool) = conn
        .query_row("SELECT kept_renamed, num, a, b, extra FROM evo", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(
        row,
        ("kept".into(), 7.0, "was b".into(), "was a".into(), false)
    );
    assert!(table_sql(&conn, "idx_evo_keep").contains("`kept_renamed`"));
}

#[test]
fn renaming_a_collection_renames_its_table_and_indexes() {
    let (conn, _) = fresh_db();
    create_from(
        &conn,
        json!({"name": "old_name", "fields": [{"name": "v", "type": "text"}],
               "indexes": ["CREATE UNIQUE INDEX idx_v ON old_name (v)"]}),
    );
    conn.execute("INSERT INTO old_name (id, v) VALUES ('r1', 'x')", [])
        .unwrap();
    let renamed = update_with(&conn, "old_name", json!({"name": "new_name"})).unwrap();
    assert_eq!(
        renamed.indexes,
        ["CREATE UNIQUE INDEX `idx_v` ON `new_name` (`v`)"]
    );
    let v: String = conn
        .query_row("SELECT v FROM new_name", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "x");
    assert!(conn.prepare("SELECT * FROM old_name").is_err());
    // the unique index is live on the new table
    assert!(conn
        .execute("INSERT INTO new_name (id, v) VALUES ('r2', 'x')", [])
        .is_err());
}

#[test]
fn a_new_unique_index_is_enforced_and_a_bad_one_rolls_back() {
    let (conn, _) = fresh_db();
    create_from(
        &conn,
        json!({"name": "slugs", "fields": [{"name": "slug", "type": "text"}]}),
    );
    conn.execute(
        "INSERT INTO slugs (id, slug) VALUES ('r1', 'first'), ('r2', 'dup'), ('r3', 'dup')",
        [],
    )
    .unwrap();
    // duplicates already stored: SQLite refuses, reported at indexes.0
    let err = update_with(
        &conn,
        "slugs",
        json!({"indexes": ["CREATE UNIQUE INDEX idx_slug ON slugs (slug)"]}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_json()["data"]["indexes"]["0"]["code"],
        "validation_invalid_index_expression"
    );
    assert!(
        Schema::load(&conn)
            .unwrap()
            .get("slugs")
            .unwrap()
            .indexes
            .is_empty(),
        "row unchanged"
    );
    conn.execute("DELETE FROM slugs WHERE id = 'r3'", [])
        .unwrap();
    update_with(
        &conn,
        "slugs",
        json!({"indexes": ["CREATE UNIQUE INDEX idx_slug ON slugs (slug)"]}),
    )
    .unwrap();
    assert!(conn
        .execute("INSERT INTO slugs (id, slug) VALUES ('r4', 'first')", [])
        .is_err());
}

#[test]
fn single_and_multiple_values_convert() {
    let (conn, _) = fresh_db();
    let c = create_from(
        &conn,
        json!({"name": "sel", "fields": [{"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 1}]}),
    );
    create_from(
        &conn,
        json!({"name": "selview", "type": "view", "viewQuery": "SELECT id, tags FROM sel"}),
    );
    conn.execute(
        "INSERT INTO sel (id, tags) VALUES ('r1', 'a'), ('r2', '')",
        [],
    )
    .unwrap();
    let mut fields = fields_to_json(&c.fields);
    fields[1]["maxSelect"] = json!(2);
    update_with(&conn, "sel", json!({ "fields": fields.clone() })).unwrap();
    let values: Vec<String> = conn
        .prepare("SELECT tags FROM sel ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(values, ["[\"a\"]", "[]"]);
    assert!(table_sql(&conn, "sel").contains("`tags` JSON DEFAULT '[]' NOT NULL"));
    conn.execute("UPDATE sel SET tags = '[\"a\",\"b\"]' WHERE id = 'r1'", [])
        .unwrap();
    fields[1]["maxSelect"] = json!(1);
    update_with(&conn, "sel", json!({ "fields": fields })).unwrap();
    let last: String = conn
        .query_row("SELECT tags FROM sel WHERE id = 'r1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(last, "b");
    // the view survived the column rebuilds
    let through_view: String = conn
        .query_row("SELECT tags FROM selview WHERE id = 'r1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(through_view, "b");
}

#[test]
fn dropping_a_column_a_view_reads_is_refused() {
    let (conn, _) = fresh_db();
    let c = create_from(
        &conn,
        json!({"name": "src", "fields": [{"name": "label", "type": "text"}]}),
    );
    create_from(
        &conn,
        json!({"name": "v1", "type": "view", "viewQuery": "SELECT id, label FROM src"}),
    );
    let fields: Vec<Value> = fields_to_json(&c.fields)
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] != "label")
        .cloned()
        .collect();
    let err = update_with(&conn, "src", json!({ "fields": fields })).unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.message().starts_with("Failed to update collection."),
        "{}",
        err.message()
    );
    assert_eq!(columns(&conn, "src"), ["id", "label"], "nothing changed");
}

#[test]
fn views_are_created_renamed_and_refreshed() {
    let (conn, _) = fresh_db();
    let src = create_from(
        &conn,
        json!({"name": "src", "fields": [{"name": "label", "type": "text"}, {"name": "n", "type": "number"}]}),
    );
    conn.execute(
        "INSERT INTO src (id, label, n) VALUES ('a', 'small', 1), ('b', 'big', 9)",
        [],
    )
    .unwrap();
    create_from(
        &conn,
        json!({"name": "big", "type": "view", "viewQuery": "SELECT id, label, n FROM src WHERE n > 5"}),
    );
    assert_eq!(
        table_sql(&conn, "big"),
        "CREATE VIEW `big` AS SELECT * FROM (SELECT id, label, n FROM src WHERE n > 5)"
    );
    let label: String = conn
        .query_row("SELECT label FROM big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(label, "big");

    update_with(
        &conn,
        "big",
        json!({"name": "large", "viewQuery": "SELECT id, label FROM src WHERE n > 0"}),
    )
    .unwrap();
    assert!(conn.prepare("SELECT * FROM big").is_err());
    let count: i64 = conn
        .query_row("SELECT count(*) FROM large", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
    let stored = Schema::load(&conn).unwrap();
    assert_eq!(stored.get("large").unwrap().fields.len(), 2);

    // the source field grows a limit: the view's copy of it follows
    let mut fields = fields_to_json(&src.fields);
    fields[1]["max"] = json!(10);
    update_with(&conn, "src", json!({ "fields": fields })).unwrap();
    let view = Schema::load(&conn).unwrap().get("large").unwrap().clone();
    assert!(matches!(
        view.field("label").unwrap().kind,
        crate::collections::FieldKind::Text { max: 10, .. }
    ));
}

#[test]
fn delete_refuses_system_referenced_and_view_sources() {
    let (conn, schema) = fresh_db();
    let su = schema.get("_superusers").unwrap().clone();
    assert_eq!(
        delete(&conn, &su, &schema).unwrap_err().message(),
        DELETE_FAILED
    );

    let target = create_from(
        &conn,
        json!({"name": "target", "fields": [{"name": "v", "type": "text"}]}),
    );
    create_from(
        &conn,
        json!({"name": "source", "fields": [{"name": "rel", "type": "relation", "collectionId": target.id, "maxSelect": 1}]}),
    );
    let schema = Schema::load(&conn).unwrap();
    let err = delete(&conn, &target, &schema).unwrap_err();
    assert_eq!(
        err.message(),
        "Failed to delete collection probably due to existing reference in source."
    );

    let viewed = create_from(
        &conn,
        json!({"name": "viewed", "fields": [{"name": "v", "type": "text"}]}),
    );
    create_from(
        &conn,
        json!({"name": "vv", "type": "view", "viewQuery": "SELECT id, v FROM viewed"}),
    );
    let schema = Schema::load(&conn).unwrap();
    assert_eq!(
        delete(&conn, &viewed, &schema).unwrap_err().message(),
        DELETE_FAILED
    );
    assert!(
        Schema::load(&conn).unwrap().get("viewed").is_some(),
        "rolled back"
    );

    // a self-relation does not block, and the name is free afterwards
    let lonely = create_from(&conn, json!({"name": "lonely"}));
    let schema = Schema::load(&conn).unwrap();
    delete(&conn, &lonely, &schema).unwrap();
    assert!(Schema::load(&conn).unwrap().get("lonely").is_none());
    assert!(conn.prepare("SELECT * FROM lonely").is_err());
    create_from(&conn, json!({"name": "lonely"}));
}

#[test]
fn truncate_empties_and_resolves_relations() {
    let (conn, schema) = fresh_db();
    let su = schema.get("_superusers").unwrap().clone();
    assert_eq!(
        truncate(&conn, &su, &schema).unwrap_err().message(),
        TRUNCATE_FAILED
    );

    let target = create_from(
        &conn,
        json!({"name": "target", "fields": [{"name": "v", "type": "text"}]}),
    );
    create_from(
        &conn,
        json!({"name": "soft", "fields": [{"name": "rel", "type": "relation", "collectionId": target.id, "maxSelect": 3}]}),
    );
    create_from(
        &conn,
        json!({"name": "gone", "fields": [{"name": "rel", "type": "relation", "collectionId": target.id, "maxSelect": 1, "cascadeDelete": true}]}),
    );
    conn.execute_batch(
        "INSERT INTO target (id, v) VALUES ('t1', 'a'), ('t2', 'b');
         INSERT INTO soft (id, rel) VALUES ('s1', '[\"t1\",\"t2\"]');
         INSERT INTO gone (id, rel) VALUES ('g1', 't1'), ('g2', '');",
    )
    .unwrap();
    let schema = Schema::load(&conn).unwrap();
    truncate(&conn, &target, &schema).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM target"), 0);
    assert_eq!(
        count("SELECT count(*) FROM gone"),
        1,
        "cascade removed g1 only"
    );
    assert_eq!(count("SELECT count(*) FROM soft WHERE rel = '[]'"), 1);

    let view = create_from(
        &conn,
        json!({"name": "tv", "type": "view", "viewQuery": "SELECT id FROM target"}),
    );
    assert_eq!(
        truncate(&conn, &view, &schema).unwrap_err().message(),
        TRUNCATE_VIEW
    );

    // a required reference in use blocks the truncate
    create_from(
        &conn,
        json!({"name": "strict", "fields": [{"name": "rel", "type": "relation", "collectionId": target.id, "maxSelect": 1, "required": true}]}),
    );
    conn.execute_batch("INSERT INTO target (id, v) VALUES ('t3', 'c'); INSERT INTO strict (id, rel) VALUES ('x1', 't3');")
        .unwrap();
    let schema = Schema::load(&conn).unwrap();
    assert_eq!(
        truncate(&conn, &target, &schema).unwrap_err().message(),
        TRUNCATE_FAILED
    );
    assert_eq!(count("SELECT count(*) FROM target"), 1);
}

#[test]
fn emptying_an_auth_collection_forgets_its_sessions() {
    let (conn, _) = fresh_db();
    let members = create_from(&conn, json!({"name": "members", "type": "auth"}));
    conn.execute(
        "INSERT INTO _externalAuths (id, collectionRef, recordRef, provider, providerId) \
         VALUES ('e1', ?1, 'r1', 'google', 'x'), ('e2', 'other', 'r2', 'google', 'y')",
        [&members.id],
    )
    .unwrap();
    let schema = Schema::load(&conn).unwrap();
    truncate(&conn, &members, &schema).unwrap();
    let left: Vec<String> = conn
        .prepare("SELECT id FROM _externalAuths")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(left, ["e2"]);
}
