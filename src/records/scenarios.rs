//! End-to-end scenarios of the records layer as the handlers will drive it
//! (prepare → check relations → write → read → JSON), mirroring the
//! conformance tests in `records.test.js` and `collections.test.js` on an
//! in-memory database. Test-only.

use rusqlite::Connection;
use serde_json::{json, Map, Value};

use super::*;
use crate::collections::{Collection, CollectionType, Field, FieldKind};
use crate::error::FieldErrors;

fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        id: format!("f_{name}"),
        name: name.into(),
        system: false,
        hidden: false,
        presentable: false,
        required: false,
        help: String::new(),
        kind,
    }
}

fn text() -> FieldKind {
    FieldKind::Text {
        min: 0,
        max: 0,
        pattern: String::new(),
        autogenerate_pattern: String::new(),
        primary_key: false,
    }
}

fn id_field() -> Field {
    let mut f = field(
        "id",
        FieldKind::Text {
            min: 15,
            max: 15,
            pattern: "^[a-z0-9]+$".into(),
            autogenerate_pattern: "[a-z0-9]{15}".into(),
            primary_key: true,
        },
    );
    f.required = true;
    f.system = true;
    f
}

fn collection(id: &str, name: &str, fields: Vec<Field>, indexes: Vec<String>) -> Collection {
    let mut all = vec![id_field()];
    all.extend(fields);
    Collection {
        id: id.into(),
        name: name.into(),
        kind: CollectionType::Base,
        system: false,
        fields: all,
        indexes,
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

/// The column definition the reference's DDL gives a field.
fn column(field: &Field) -> String {
    let ty = match &field.kind {
        _ if field.name == "id" => "TEXT PRIMARY KEY NOT NULL",
        FieldKind::Number { .. } => "NUMERIC DEFAULT 0 NOT NULL",
        FieldKind::Bool => "BOOLEAN DEFAULT FALSE NOT NULL",
        FieldKind::Json { .. } => "JSON DEFAULT NULL",
        FieldKind::GeoPoint => "JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL",
        kind if kind.is_multi() => "JSON DEFAULT '[]' NOT NULL",
        _ => "TEXT DEFAULT '' NOT NULL",
    };
    format!("`{}` {ty}", field.name)
}

fn create_table(conn: &Connection, c: &Collection) {
    let columns: Vec<String> = c.fields.iter().map(column).collect();
    conn.execute_batch(&format!(
        "CREATE TABLE `{}` ({});",
        c.name,
        columns.join(", ")
    ))
    .unwrap();
    for index in &c.indexes {
        conn.execute_batch(index).unwrap();
    }
}

fn body(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What the create handler does; `Err` holds the 400's `data`.
fn create(
    conn: &Connection,
    schema: &[Collection],
    c: &Collection,
    input: Value,
) -> Result<Value, FieldErrors> {
    let mut prepared = build_create(c, &body(input), &WriteOptions::new(true));
    let missing = check_relations(conn, schema, c, &prepared.values).unwrap();
    merge_errors(&mut prepared.errors, missing);
    let values = prepared.into_result()?;
    match sql::insert(conn, c, &values) {
        Ok(()) => {}
        Err(WriteError::NotUnique(errors)) => return Err(errors),
        Err(other) => panic!("{other}"),
    }
    let stored = sql::find_by_id(conn, c, values.id()).unwrap().unwrap();
    Ok(Value::Object(to_json(
        c,
        &stored,
        &Viewer {
            is_superuser: true,
            ..Viewer::default()
        },
    )))
}

/// What the update handler does.
fn update(
    conn: &Connection,
    schema: &[Collection],
    c: &Collection,
    id: &str,
    input: Value,
) -> Result<Value, FieldErrors> {
    let current = sql::find_by_id(conn, c, id).unwrap().unwrap();
    let mut prepared = build_update(c, &current, &body(input), &WriteOptions::new(true));
    let missing = check_relations(conn, schema, c, &prepared.values).unwrap();
    merge_errors(&mut prepared.errors, missing);
    let values = prepared.into_result()?;
    match sql::update(conn, c, id, &values) {
        Ok(found) => assert!(found),
        Err(WriteError::NotUnique(errors)) => return Err(errors),
        Err(other) => panic!("{other}"),
    }
    let stored = sql::find_by_id(conn, c, id).unwrap().unwrap();
    Ok(Value::Object(to_json(c, &stored, &Viewer::default())))
}

fn code(errors: &FieldErrors, key: &str) -> String {
    errors
        .get(key)
        .and_then(|e| e["code"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn records_of_a_many_typed_collection_store_and_return_typed_values() {
    let conn = Connection::open_in_memory().unwrap();
    let target = collection(
        "c_target",
        "coll_target",
        vec![field("label", text())],
        vec![],
    );
    let relation = |max_select| FieldKind::Relation {
        collection_id: "c_target".into(),
        cascade_delete: false,
        min_select: 0,
        max_select,
    };
    let values = collection(
        "c_values",
        "coll_values",
        vec![
            field("title", text()),
            field(
                "count",
                FieldKind::Number {
                    min: None,
                    max: None,
                    only_int: false,
                },
            ),
            field("active", FieldKind::Bool),
            field(
                "contact",
                FieldKind::Email {
                    only_domains: vec![],
                    except_domains: vec![],
                },
            ),
            field(
                "homepage",
                FieldKind::Url {
                    only_domains: vec![],
                    except_domains: vec![],
                },
            ),
            field(
                "body",
                FieldKind::Editor {
                    max_size: 0,
                    convert_urls: false,
                },
            ),
            field(
                "due",
                FieldKind::Date {
                    min: String::new(),
                    max: String::new(),
                },
            ),
            field(
                "stamp",
                FieldKind::Autodate {
                    on_create: true,
                    on_update: true,
                },
            ),
            field(
                "status",
                FieldKind::Select {
                    values: vec!["draft".into(), "live".into()],
                    max_select: 1,
                },
            ),
            field(
                "labels",
                FieldKind::Select {
                    values: vec!["x".into(), "y".into(), "z".into()],
                    max_select: 3,
                },
            ),
            field("meta", FieldKind::Json { max_size: 0 }),
            field("owner", relation(1)),
            field("related", relation(5)),
            field(
                "attachment",
                FieldKind::File {
                    max_select: 1,
                    max_size: 0,
                    mime_types: vec![],
                    thumbs: vec![],
                    protected: false,
                },
            ),
        ],
        vec![],
    );
    create_table(&conn, &target);
    create_table(&conn, &values);
    let schema = vec![target.clone(), values.clone()];
    let t1 = create(&conn, &schema, &target, json!({"label": "one"})).unwrap();
    let t2 = create(&conn, &schema, &target, json!({"label": "two"})).unwrap();
    let got = create(
        &conn,
        &schema,
        &values,
        json!({"title": "hello", "count": 42.5, "active": true, "contact": "someone@example.com",
               "homepage": "https://example.com/a", "body": "<p>hi <b>there</b></p>",
               "due": "2030-05-06 07:08:09.123Z", "status": "live", "labels": ["x", "z"],
               "meta": {"nested": {"list": [1, "two", null, false]}}, "owner": t1["id"],
               "related": [t2["id"], t1["id"]]}),
    )
    .unwrap();
    assert_eq!(got["title"], "hello");
    assert_eq!(got["count"], 42.5);
    assert_eq!(got["active"], true);
    assert_eq!(got["contact"], "someone@example.com");
    assert_eq!(got["homepage"], "https://example.com/a");
    assert_eq!(got["body"], "<p>hi <b>there</b></p>");
    assert_eq!(got["due"], "2030-05-06 07:08:09.123Z");
    assert_eq!(got["stamp"].as_str().map(str::len), Some(24));
    assert_eq!(got["status"], "live");
    assert_eq!(got["labels"], json!(["x", "z"]));
    assert_eq!(
        got["meta"],
        json!({"nested": {"list": [1, "two", null, false]}})
    );
    assert_eq!(got["owner"], t1["id"]);
    assert_eq!(got["related"], json!([t2["id"], t1["id"]]));
    assert_eq!(got["attachment"], "");
    assert_eq!(got["collectionId"], "c_values");
    assert_eq!(got["collectionName"], "coll_values");
}

#[test]
fn relations_unique_indexes_and_required_fields_through_the_whole_flow() {
    let conn = Connection::open_in_memory().unwrap();
    let target = collection("c_t", "rec_target", vec![field("v", text())], vec![]);
    let mut title = field("title", text());
    title.required = true;
    let notes = collection(
        "c_n",
        "rec_notes",
        vec![
            title,
            field("handle", text()),
            field(
                "one",
                FieldKind::Relation {
                    collection_id: "c_t".into(),
                    cascade_delete: false,
                    min_select: 0,
                    max_select: 1,
                },
            ),
            field(
                "qty",
                FieldKind::Number {
                    min: None,
                    max: Some(5.0),
                    only_int: false,
                },
            ),
        ],
        vec!["CREATE UNIQUE INDEX idx_rec_handle ON rec_notes (handle)".into()],
    );
    create_table(&conn, &target);
    create_table(&conn, &notes);
    let schema = vec![target.clone(), notes.clone()];

    let errors = create(
        &conn,
        &schema,
        &notes,
        json!({"qty": 50, "one": "aaaaaaaaaaaaaaa"}),
    )
    .unwrap_err();
    assert_eq!(code(&errors, "title"), "validation_required");
    assert_eq!(code(&errors, "qty"), "validation_max_number_constraint");
    assert_eq!(code(&errors, "one"), "validation_missing_rel_records");
    assert_eq!(sql::count(&conn, &notes, None).unwrap(), 0);

    let t = create(&conn, &schema, &target, json!({"v": "x"})).unwrap();
    let a = create(
        &conn,
        &schema,
        &notes,
        json!({"title": "a", "handle": "alice", "one": t["id"]}),
    )
    .unwrap();
    let b = create(
        &conn,
        &schema,
        &notes,
        json!({"title": "b", "handle": "bob"}),
    )
    .unwrap();
    let dup = create(
        &conn,
        &schema,
        &notes,
        json!({"title": "c", "handle": "alice"}),
    )
    .unwrap_err();
    assert_eq!(code(&dup, "handle"), "validation_not_unique");
    let b_id = b["id"].as_str().unwrap();
    let on_update = update(&conn, &schema, &notes, b_id, json!({"handle": "alice"})).unwrap_err();
    assert_eq!(code(&on_update, "handle"), "validation_not_unique");
    let a_id = a["id"].as_str().unwrap();
    assert_eq!(
        update(&conn, &schema, &notes, a_id, json!({"handle": "alice"})).unwrap()["handle"],
        "alice"
    );
    let blank = update(&conn, &schema, &notes, a_id, json!({"title": ""})).unwrap_err();
    assert_eq!(code(&blank, "title"), "validation_required");
    let cleared = update(&conn, &schema, &notes, a_id, json!({"one-": t["id"]})).unwrap();
    assert_eq!(cleared["one"], "");

    let dup_id = create(
        &conn,
        &schema,
        &notes,
        json!({"id": a_id, "title": "again", "handle": "new"}),
    )
    .unwrap_err();
    assert_eq!(code(&dup_id, "id"), "validation_not_unique");
}

#[test]
fn unset_fields_come_back_with_their_zero_values() {
    let conn = Connection::open_in_memory().unwrap();
    let c = collection(
        "c_z",
        "rec_zero",
        vec![
            field("s", text()),
            field(
                "n",
                FieldKind::Number {
                    min: None,
                    max: None,
                    only_int: false,
                },
            ),
            field("b", FieldKind::Bool),
            field(
                "d",
                FieldKind::Date {
                    min: String::new(),
                    max: String::new(),
                },
            ),
            field(
                "one",
                FieldKind::Select {
                    values: vec!["a".into()],
                    max_select: 1,
                },
            ),
            field(
                "many",
                FieldKind::Select {
                    values: vec!["a".into()],
                    max_select: 2,
                },
            ),
            field("j", FieldKind::Json { max_size: 0 }),
            field("g", FieldKind::GeoPoint),
        ],
        vec![],
    );
    create_table(&conn, &c);
    let rec = create(&conn, std::slice::from_ref(&c), &c, json!({})).unwrap();
    let expected = json!({"s": "", "n": 0, "b": false, "d": "", "one": "", "many": [], "j": null,
                          "g": {"lon": 0, "lat": 0}});
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&rec[key], want, "{key}");
    }
}
