use super::*;
use crate::collections::json::COLLECTION_COLUMNS;
use rusqlite::OpenFlags;

/// A fresh database as the server would have it after first start.
pub(crate) fn fresh_db() -> (Connection, Schema) {
    let conn = Connection::open_in_memory().unwrap();
    crate::store::bootstrap::create_base_tables(&conn).unwrap();
    install_defaults(&conn).unwrap();
    let schema = Schema::load(&conn).unwrap();
    (conn, schema)
}

pub(crate) fn accept_rules(_: &Schema, _: &Collection, _: &str) -> Result<(), String> {
    Ok(())
}

fn normalized(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn master_sql(conn: &Connection) -> Vec<(String, String)> {
    let names = "'_mfas', '_otps', '_externalAuths', '_authOrigins', '_superusers', 'users'";
    let sql = format!(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name IN ({names}) AND sql IS NOT NULL ORDER BY name"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, normalized(&r.get::<_, String>(1)?)))
    })
    .unwrap()
    .collect::<rusqlite::Result<Vec<_>>>()
    .unwrap()
}

#[test]
fn default_tables_and_indexes_are_the_references() {
    let Ok(reference) = Connection::open_with_flags(
        "/work/ref/pb_data/data.db",
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return;
    };
    let (conn, _) = fresh_db();
    let ours = master_sql(&conn);
    assert_eq!(ours.len(), 15, "6 tables and 9 indexes");
    assert_eq!(ours, master_sql(&reference));
}

#[test]
fn default_rows_match_the_reference_except_secrets_and_wording() {
    let Ok(text) = std::fs::read_to_string("/work/ref/collections.json") else {
        return;
    };
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    let (conn, schema) = fresh_db();
    assert_eq!(schema.len(), 6);
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM _collections WHERE name = ?1");
        let ours = conn.query_row(&sql, [name], Collection::from_row).unwrap();
        let stored = ours.storage_row();
        assert_eq!(ours.id, row["id"].as_str().unwrap(), "{name}");
        assert_eq!(ours.system, row["system"] == 1, "{name}");
        assert_eq!(ours.kind.as_str(), row["type"].as_str().unwrap(), "{name}");
        assert_eq!(stored.fields, row["fields"].as_str().unwrap(), "{name}");
        assert_eq!(stored.indexes, row["indexes"].as_str().unwrap(), "{name}");
        for (rule, value) in [
            ("listRule", &ours.list_rule),
            ("viewRule", &ours.view_rule),
            ("createRule", &ours.create_rule),
            ("updateRule", &ours.update_rule),
            ("deleteRule", &ours.delete_rule),
        ] {
            assert_eq!(value.as_deref(), row[rule].as_str(), "{name}.{rule}");
        }
        let theirs: Value = serde_json::from_str(row["options"].as_str().unwrap()).unwrap();
        let ours_options = Value::Object(ours.options.clone());
        if ours.is_auth() {
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&ours_options), keys(&theirs), "{name}");
            for key in ["authRule", "manageRule", "oauth2", "passwordAuth", "mfa"] {
                assert_eq!(ours_options[key], theirs[key], "{name}.{key}");
            }
            for key in crate::collections::json::TOKEN_KEYS {
                assert_eq!(
                    ours_options[key]["duration"], theirs[key]["duration"],
                    "{name}.{key}"
                );
                assert_eq!(ours_options[key]["secret"].as_str().unwrap().len(), 50);
            }
            assert_eq!(ours_options["otp"]["duration"], theirs["otp"]["duration"]);
        } else {
            assert_eq!(ours_options, theirs, "{name}");
        }
    }
}

#[test]
fn scaffolds_have_the_reference_shape() {
    let s = scaffolds();
    assert_eq!(s["base"]["name"], "");
    assert_eq!(s["base"]["id"], "");
    assert_eq!(s["base"]["fields"].as_array().unwrap().len(), 1);
    assert_eq!(s["base"]["indexes"], json!([]));
    assert_eq!(s["view"]["viewQuery"], "");
    assert_eq!(s["view"]["fields"], json!([]));
    let auth = &s["auth"];
    assert_eq!(auth["fields"].as_array().unwrap().len(), 6);
    assert_eq!(auth["authToken"], json!({"duration": 432000}));
    assert!(!auth.to_string().contains("secret\""));
    let idx = auth["indexes"][0].as_str().unwrap();
    assert!(
        idx.starts_with("CREATE UNIQUE INDEX `idx_tokenKey_")
            && idx.ends_with("ON `` (`tokenKey`)"),
        "{idx}"
    );
    assert_eq!(s["base"].as_object().unwrap().len(), 13);
    assert_eq!(auth.as_object().unwrap().len(), 28);
}

fn import_ok(conn: &Connection, items: Value, delete_missing: bool) -> Result<Schema, ApiError> {
    let schema = Schema::load(conn).unwrap();
    import(
        conn,
        &schema,
        items.as_array().unwrap(),
        delete_missing,
        &accept_rules,
    )?;
    Ok(Schema::load(conn).unwrap())
}

#[test]
fn import_creates_related_collections_in_one_go() {
    let (conn, _) = fresh_db();
    // imp1 relates to imp2, which comes later in the list
    let schema = import_ok(
        &conn,
        json!([
            {"name": "imp1", "fields": [{"name": "a", "type": "text"}, {"name": "r", "type": "relation", "collectionId": "pbc_imp2"}]},
            {"id": "pbc_imp2", "name": "imp2", "fields": [{"name": "b", "type": "text"}]},
            {"name": "impview", "type": "view", "viewQuery": "SELECT id, b FROM imp2"}
        ]),
        false,
    )
    .unwrap();
    assert!(schema.get("imp1").is_some());
    assert_eq!(schema.get("pbc_imp2").unwrap().name, "imp2");
    assert_eq!(schema.get("impview").unwrap().fields.len(), 2);
    conn.execute("INSERT INTO imp2 (id, b) VALUES ('x', 'y')", [])
        .unwrap();
    let b: String = conn
        .query_row("SELECT b FROM impview", [], |r| r.get(0))
        .unwrap();
    assert_eq!(b, "y");
}

#[test]
fn import_merges_fields_unless_delete_missing() {
    let (conn, _) = fresh_db();
    import_ok(
        &conn,
        json!([{"name": "imp1", "fields": [{"name": "a", "type": "text"}]}]),
        false,
    )
    .unwrap();
    conn.execute("INSERT INTO imp1 (id, a) VALUES ('r1', 'kept')", [])
        .unwrap();
    let schema = import_ok(
        &conn,
        json!([{"name": "imp1", "fields": [{"name": "c", "type": "text"}]}]),
        false,
    )
    .unwrap();
    let names: Vec<&str> = schema
        .get("imp1")
        .unwrap()
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["c", "id", "a"],
        "listed first, then the stored ones kept"
    );
    let a: String = conn
        .query_row("SELECT a FROM imp1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(a, "kept");

    // delete_missing: unlisted fields and collections go, system ones stay
    let schema = import_ok(
        &conn,
        json!([{"name": "imp1", "fields": [{"name": "c", "type": "text"}]}]),
        true,
    )
    .unwrap();
    let names: Vec<&str> = schema
        .get("imp1")
        .unwrap()
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["c", "id"]);
    assert!(
        schema.get("users").is_none(),
        "users is not a system collection"
    );
    assert!(schema.get("_superusers").is_some());
    assert_eq!(schema.len(), 6);
}

#[test]
fn a_failed_import_changes_nothing() {
    let (conn, _) = fresh_db();
    let err = import_ok(
        &conn,
        json!([
            {"name": "ok1", "fields": [{"name": "a", "type": "text"}]},
            {"name": "bad", "fields": [{"name": "b", "type": "select"}]}
        ]),
        true,
    )
    .unwrap_err();
    let body = err.to_json();
    assert_eq!(body["message"], IMPORT_FAILED);
    assert_eq!(
        body["data"]["collections"]["code"],
        "validation_collections_import_failure"
    );
    let message = body["data"]["collections"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"bad\"") && message.contains("cannot be blank"),
        "{message}"
    );
    let schema = Schema::load(&conn).unwrap();
    assert!(schema.get("ok1").is_none());
    assert!(
        schema.get("users").is_some(),
        "the deletions were rolled back"
    );

    let empty = import(&conn, &schema, &[], false, &accept_rules).unwrap_err();
    assert_eq!(
        empty.to_json()["data"]["collections"]["code"],
        "validation_required"
    );
}

/// Our scaffolds without what legitimately differs (template wording, the
/// random index suffix) equal the reference's, key order included.
#[test]
fn scaffolds_equal_the_references_apart_from_wording() {
    let reference: Value =
        serde_json::from_str(include_str!("../testdata/reference_scaffolds.json")).unwrap();
    let mut ours = scaffolds();
    for kind in ["base", "auth", "view"] {
        let Some(obj) = ours[kind].as_object_mut() else {
            panic!("{kind}")
        };
        for key in [
            "verificationTemplate",
            "resetPasswordTemplate",
            "confirmEmailChangeTemplate",
        ] {
            obj.remove(key);
        }
        for key in ["otp", "authAlert"] {
            if let Some(o) = obj.get_mut(key).and_then(Value::as_object_mut) {
                o.remove("emailTemplate");
            }
        }
        if let Some(indexes) = obj.get_mut("indexes").and_then(Value::as_array_mut) {
            for idx in indexes.iter_mut() {
                let text = idx.as_str().unwrap().to_string();
                let name = text.split('`').nth(1).unwrap().to_string();
                *idx = Value::String(text.replacen(&name, "IDX", 1));
            }
        }
    }
    assert_eq!(ours.to_string(), reference.to_string());
}
