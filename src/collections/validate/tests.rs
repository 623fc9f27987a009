use super::*;
use crate::collections::ddl;
use crate::collections::system::tests::fresh_db;
use serde_json::json;

/// Stands in for the filter parser: a rule naming `no_such` is invalid.
fn fake_rules(_: &Schema, _: &Collection, rule: &str) -> Result<(), String> {
    if rule.contains("no_such") {
        Err("invalid left operand \"no_such\" - unknown field \"no_such\"".into())
    } else {
        Ok(())
    }
}

fn create(conn: &Connection, body: Value) -> Result<Collection, ApiError> {
    let schema = Schema::load(conn).unwrap();
    let c = build_new(conn, &body, &schema, &fake_rules)?;
    ddl::create(conn, &c)?;
    Ok(c)
}

fn patch(conn: &Connection, name: &str, body: Value) -> Result<Collection, ApiError> {
    let schema = Schema::load(conn).unwrap();
    let existing = schema.get(name).unwrap().clone();
    let c = build_update(conn, &existing, &body, &schema, &fake_rules)?;
    ddl::update(conn, &existing, &c, &schema)?;
    Ok(c)
}

/// The `data` of a failed request.
fn data(result: Result<Collection, ApiError>) -> Value {
    match result {
        Ok(c) => panic!("expected a failure, got {}", c.name),
        Err(e) => {
            assert_eq!(e.status(), 400);
            e.to_json()["data"].clone()
        }
    }
}

fn code(v: &Value) -> &str {
    v["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

#[test]
fn a_minimal_base_collection_gets_only_the_id_field() {
    let (conn, _) = fresh_db();
    let c = create(&conn, json!({"name": "posts"})).unwrap();
    assert_eq!(c.id, "pbc_1125843985");
    assert_eq!(c.kind, CollectionType::Base);
    assert_eq!(c.fields.len(), 1);
    assert_eq!(c.fields[0].id, "text3208210256");
    assert!(c.fields[0].is_primary_key());
    assert_eq!(c.list_rule, None);
    assert!(c.created.ends_with('Z'));
    let api = c.to_api_json();
    assert_eq!(api.as_object().unwrap().len(), 13);
    assert_eq!(api["type"], "base");
}

#[test]
fn field_ids_are_derived_from_type_and_name() {
    let (conn, _) = fresh_db();
    let c = create(
        &conn,
        json!({"name": "kinds", "fields": [
            {"name": "title", "type": "text"}, {"name": "count", "type": "number"},
            {"name": "stamp", "type": "autodate", "onCreate": true}
        ]}),
    )
    .unwrap();
    let ids: Vec<&str> = c.fields.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "text3208210256",
            "text724990059",
            "number2245608546",
            "autodate1431215880"
        ]
    );
}

#[test]
fn collection_name_rules() {
    let (conn, _) = fresh_db();
    assert_eq!(
        code(&data(create(&conn, json!({"name": "bad name!"})))["name"]),
        "validation_match_invalid"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "a-b"})))["name"]),
        "validation_match_invalid"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"type": "base"})))["name"]),
        "validation_required"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": ""})))["name"]),
        "validation_required"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "USERS"})))["name"]),
        "validation_collection_name_exists"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "_params"})))["name"]),
        "validation_collection_name_invalid"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "a_via_b"})))["name"]),
        "validation_found_via"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "_pb_users_auth_"})))["name"]),
        "validation_collection_name_id_duplicate"
    );
    assert!(create(&conn, json!({"name": "1abc"})).is_ok());
    assert!(create(&conn, json!({"name": "_x"})).is_ok());
}

#[test]
fn type_and_id_rules() {
    let (conn, _) = fresh_db();
    let d = data(create(&conn, json!({"name": "x1", "type": "weird"})));
    assert_eq!(code(&d["type"]), "validation_in_invalid");
    assert_eq!(d.as_object().unwrap().len(), 1);
    assert!(create(&conn, json!({"name": "custom", "id": "my_id_1"})).is_ok());
    assert_eq!(
        code(&data(create(&conn, json!({"name": "custom2", "id": "my_id_1"})))["id"]),
        "validation_invalid_or_existing_id"
    );
    assert_eq!(
        code(&data(create(&conn, json!({"name": "custom3", "id": "bad id"})))["id"]),
        "validation_match_invalid"
    );
    // the same name under another type still clashes; a free derived id gets a suffix
    let err = create(&conn, json!({"name": "x", "type": 5})).unwrap_err();
    assert_eq!(err.message(), INVALID_FORMAT);
}

#[test]
fn derived_collection_ids_skip_taken_ones() {
    let (conn, _) = fresh_db();
    let first = create(&conn, json!({"name": "dup"})).unwrap();
    patch(&conn, "dup", json!({"name": "dup_renamed"})).unwrap();
    let second = create(&conn, json!({"name": "dup"})).unwrap();
    assert_eq!(second.id, format!("{}2", first.id));
}

#[test]
fn unknown_field_types_are_a_formatting_error() {
    let (conn, _) = fresh_db();
    let err = create(
        &conn,
        json!({"name": "x6", "fields": [{"name": "v", "type": "wat"}]}),
    )
    .unwrap_err();
    assert_eq!(err.message(), INVALID_FORMAT);
    assert_eq!(err.to_json()["data"], json!({}));
}

#[test]
fn field_errors_are_keyed_by_index_in_the_final_list() {
    let (conn, _) = fresh_db();
    let d = data(create(
        &conn,
        json!({"name": "x2", "fields": [{"name": "ok", "type": "text"}, {"name": "choice", "type": "select"}]}),
    ));
    assert_eq!(code(&d["fields"]["2"]["values"]), "validation_required");

    let d = data(create(
        &conn,
        json!({"name": "x3", "fields": [{"name": "rel", "type": "relation", "collectionId": "nope"}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["collectionId"]),
        "validation_field_relation_missing_collection"
    );

    let d = data(create(
        &conn,
        json!({"name": "x8", "fields": [{"name": "bad name", "type": "text"}]}),
    ));
    assert_eq!(code(&d["fields"]["1"]["name"]), "validation_match_invalid");

    let d = data(create(
        &conn,
        json!({"name": "x9", "fields": [{"type": "text"}]}),
    ));
    assert_eq!(code(&d["fields"]["1"]["name"]), "validation_required");

    let d = data(create(
        &conn,
        json!({"name": "x10", "fields": [{"name": "n", "type": "number", "min": 5, "max": 1}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["max"]),
        "validation_min_number_constraint"
    );
    assert_eq!(d["fields"]["1"]["max"]["params"], json!({"min": 5}));

    let d = data(create(
        &conn,
        json!({"name": "x11", "fields": [{"name": "n", "type": "text", "min": 5, "max": 1}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["max"]),
        "validation_min_greater_equal_than_required"
    );

    let d = data(create(
        &conn,
        json!({"name": "x12", "fields": [{"name": "n", "type": "autodate"}]}),
    ));
    assert_eq!(code(&d["fields"]["1"]["onCreate"]), "validation_required");
    assert_eq!(code(&d["fields"]["1"]["onUpdate"]), "validation_required");

    let d = data(create(
        &conn,
        json!({"name": "x13", "fields": [
            {"id": "a1", "name": "v", "type": "text"}, {"id": "a2", "name": "V", "type": "text"}
        ]}),
    ));
    assert_eq!(
        code(&d["fields"]["2"]["name"]),
        "validation_duplicated_field_name"
    );

    let d = data(create(
        &conn,
        json!({"name": "x14", "fields": [{"name": "expand", "type": "text"}]}),
    ));
    assert_eq!(code(&d["fields"]["1"]["name"]), "validation_not_in_invalid");

    let d = data(create(
        &conn,
        json!({"name": "x15", "fields": [{"name": "s", "type": "select", "values": ["a"], "maxSelect": 3}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["maxSelect"]),
        "validation_max_less_equal_than_required"
    );

    let d = data(create(
        &conn,
        json!({"name": "x16", "fields": [{"name": "f", "type": "file", "thumbs": ["100x100", "0x0", "big"]}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["thumbs"]["1"]),
        "validation_not_in_invalid"
    );
    assert_eq!(
        code(&d["fields"]["1"]["thumbs"]["2"]),
        "validation_match_invalid"
    );

    let d = data(create(
        &conn,
        json!({"name": "x17", "fields": [{"name": "t", "type": "text", "pattern": "(unclosed"}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["pattern"]),
        "validation_invalid_regex"
    );

    let d = data(create(
        &conn,
        json!({"name": "x18", "type": "auth", "fields": [{"name": "passwordConfirm", "type": "text"}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["name"]),
        "validation_reserved_field_name"
    );
}

#[test]
fn same_name_without_ids_collapses_into_one_field() {
    let (conn, _) = fresh_db();
    let c = create(&conn, json!({"name": "x7", "fields": [{"name": "v", "type": "text"}, {"name": "v", "type": "text"}]})).unwrap();
    assert_eq!(c.fields.len(), 2);
}

#[test]
fn relations_to_views_are_only_for_views() {
    let (conn, _) = fresh_db();
    let src = create(
        &conn,
        json!({"name": "src", "fields": [{"name": "v", "type": "text"}]}),
    )
    .unwrap();
    let view = create(
        &conn,
        json!({"name": "vw", "type": "view", "viewQuery": "SELECT id, v FROM src"}),
    )
    .unwrap();
    let d = data(create(
        &conn,
        json!({"name": "r", "fields": [{"name": "x", "type": "relation", "collectionId": view.id}]}),
    ));
    assert_eq!(
        code(&d["fields"]["1"]["collectionId"]),
        "validation_relation_field_non_view_base_collection"
    );
    let ok = create(
        &conn,
        json!({"name": "r2", "fields": [{"name": "x", "type": "relation", "collectionId": src.id}]}),
    );
    assert!(ok.is_ok());
}

#[test]
fn rules_are_checked_with_the_callback() {
    let (conn, _) = fresh_db();
    let d = data(create(
        &conn,
        json!({"name": "r1", "listRule": "no_such = 1", "viewRule": "", "deleteRule": "ok = 1"}),
    ));
    assert_eq!(code(&d["listRule"]), "validation_invalid_rule");
    assert_eq!(
        d["listRule"]["message"],
        "Invalid rule. Raw error: invalid left operand \"no_such\" - unknown field \"no_such\"."
    );
    assert_eq!(d.as_object().unwrap().len(), 1);
    assert!(Schema::load(&conn).unwrap().get("r1").is_none());

    // the callback sees the candidate and a schema that contains it
    let seen = std::cell::RefCell::new(Vec::new());
    let spy = |schema: &Schema, c: &Collection, rule: &str| {
        seen.borrow_mut().push((
            schema.get(&c.name).is_some(),
            c.field("v").is_some(),
            rule.to_string(),
        ));
        Ok(())
    };
    let schema = Schema::load(&conn).unwrap();
    build_new(
        &conn,
        &json!({"name": "spied", "fields": [{"name": "v", "type": "text"}], "listRule": "v != ''"}),
        &schema,
        &spy,
    )
    .unwrap();
    assert_eq!(*seen.borrow(), [(true, true, "v != ''".to_string())]);
}

#[test]
fn indexes_are_checked() {
    let (conn, _) = fresh_db();
    let fields = json!([{"name": "v", "type": "text"}]);
    let idx = |name: &str, list: Value| json!({"name": name, "fields": fields, "indexes": list});
    let d = data(create(&conn, idx("i1", json!(["garbage"]))));
    assert_eq!(
        code(&d["indexes"]["0"]),
        "validation_invalid_index_expression"
    );
    let d = data(create(
        &conn,
        idx("i2", json!(["CREATE INDEX idx_i2 ON i2 (nope)"])),
    ));
    assert_eq!(
        code(&d["indexes"]["0"]),
        "validation_invalid_index_expression"
    );
    assert_eq!(
        d["indexes"]["0"]["message"],
        "Failed to create index idx_i2 - SQL logic error: no such column: nope (1)."
    );
    let d = data(create(
        &conn,
        idx(
            "i3",
            json!([
                "CREATE INDEX idx_i3 ON i3 (v)",
                "CREATE INDEX IDX_I3 ON i3 (id)"
            ]),
        ),
    ));
    assert_eq!(code(&d["indexes"]["1"]), "validation_duplicated_index_name");
    let d = data(create(
        &conn,
        idx(
            "i4",
            json!([
                "CREATE INDEX idx_i4a ON i4 (v)",
                "CREATE INDEX idx_i4b ON i4 (v)"
            ]),
        ),
    ));
    assert_eq!(
        code(&d["indexes"]["1"]),
        "validation_duplicated_index_definition"
    );
    let d = data(create(
        &conn,
        idx(
            "i5",
            json!(["CREATE INDEX idx_tokenKey__pb_users_auth_ ON i5 (v)"]),
        ),
    ));
    assert_eq!(code(&d["indexes"]["0"]), "validation_existing_index_name");
    assert_eq!(
        d["indexes"]["0"]["params"],
        json!({"usedTableName": "users"})
    );

    // another table name is rewritten to the collection's own
    let c = create(
        &conn,
        idx(
            "i6",
            json!([
                "CREATE INDEX idx_i6 ON other (v)",
                "CREATE UNIQUE INDEX idx_i6b ON i6 (v, id)"
            ]),
        ),
    )
    .unwrap();
    assert_eq!(c.indexes[0], "CREATE INDEX `idx_i6` ON `i6` (`v`)");
    assert_eq!(
        c.indexes[1], "CREATE UNIQUE INDEX idx_i6b ON i6 (v, id)",
        "kept as written"
    );
    assert_eq!(
        crate::collections::unique_indexes(&c)[0].columns,
        ["v", "id"]
    );
}

#[test]
fn patch_replaces_the_field_list_but_keeps_id() {
    let (conn, _) = fresh_db();
    let c = create(&conn, json!({"name": "evo", "fields": [{"name": "keep", "type": "text"}, {"name": "drop", "type": "text"}]})).unwrap();
    let keep = c.field("keep").unwrap().to_json();
    let updated = patch(
        &conn,
        "evo",
        json!({"fields": [keep, {"name": "extra", "type": "bool"}]}),
    )
    .unwrap();
    let names: Vec<&str> = updated.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "keep", "extra"]);
    assert_eq!(updated.created, c.created);

    // only the rules: fields untouched
    let ruled = patch(
        &conn,
        "evo",
        json!({"listRule": "", "viewRule": "keep != ''"}),
    )
    .unwrap();
    assert_eq!(ruled.fields, updated.fields);
    assert_eq!(ruled.list_rule.as_deref(), Some(""));
}

#[test]
fn a_changed_type_on_the_same_field_id_is_refused() {
    let (conn, _) = fresh_db();
    let c = create(
        &conn,
        json!({"name": "retype", "fields": [{"name": "v", "type": "text"}]}),
    )
    .unwrap();
    let mut fields = crate::collections::json::fields_to_json(&c.fields);
    fields[1]["type"] = json!("number");
    let d = data(patch(&conn, "retype", json!({ "fields": fields })));
    assert_eq!(code(&d["fields"]["1"]), "validation_field_type_change");
}

#[test]
fn system_collections_keep_their_name_rules_and_fields() {
    let (conn, _) = fresh_db();
    assert_eq!(
        code(&data(patch(&conn, "_mfas", json!({"name": "_mfas2"})))["name"]),
        "validation_collection_system_name_change"
    );
    assert_eq!(
        code(&data(patch(&conn, "_mfas", json!({"listRule": ""})))["listRule"]),
        "validation_collection_system_rule_change"
    );
    assert_eq!(
        code(
            &data(patch(
                &conn,
                "_superusers",
                json!({"fields": [{"name": "nick", "type": "text"}]})
            ))["fields"]
        ),
        "validation_system_field_change"
    );
    create(&conn, json!({"name": "plain"})).unwrap();
    assert_eq!(
        code(&data(patch(&conn, "plain", json!({"type": "auth"})))["type"]),
        "validation_collection_type_change"
    );
    assert_eq!(
        code(&data(patch(&conn, "plain", json!({"system": true})))["system"]),
        "validation_collection_system_flag_change"
    );
}

#[test]
fn auth_collections_get_system_fields_indexes_and_secrets() {
    let (conn, _) = fresh_db();
    let c = create(&conn, json!({"name": "members", "type": "auth", "fields": [{"name": "nickname", "type": "text"}]})).unwrap();
    let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "nickname",
            "password",
            "tokenKey",
            "email",
            "emailVisibility",
            "verified"
        ]
    );
    assert_eq!(c.indexes.len(), 2);
    assert!(c.indexes[0].contains(&format!("idx_tokenKey_{}", c.id)));
    let options = AuthOptions::from_collection(&c).unwrap();
    assert_eq!(options.auth_token.duration, 432_000);
    assert_eq!(options.auth_token.secret.len(), 50);
    let api = c.to_api_json();
    assert_eq!(
        api["passwordAuth"],
        json!({"enabled": true, "identityFields": ["email"]})
    );
    assert!(!api.to_string().contains("\"secret\""));

    // an update keeps secrets it is not sent, and takes new ones it is sent
    let updated = patch(&conn, "members", json!({"fileToken": {"duration": 77}})).unwrap();
    let after = AuthOptions::from_collection(&updated).unwrap();
    assert_eq!(after.file_token.duration, 77);
    assert_eq!(after.file_token.secret, options.file_token.secret);
    assert_eq!(after.auth_token.secret, options.auth_token.secret);
    let rotated = patch(&conn, "members", json!({"authRule": "verified = true"})).unwrap();
    assert_ne!(
        AuthOptions::from_collection(&rotated)
            .unwrap()
            .auth_token
            .secret,
        options.auth_token.secret
    );
    let short = data(patch(
        &conn,
        "members",
        json!({"authToken": {"secret": "short"}}),
    ));
    assert_eq!(
        code(&short["authToken"]["secret"]),
        "validation_length_out_of_range"
    );

    // dropped system fields come back
    let again = patch(
        &conn,
        "members",
        json!({"fields": [{"name": "nickname", "type": "text"}]}),
    )
    .unwrap();
    assert_eq!(again.fields.len(), 7);
}

#[test]
fn auth_settings_are_validated() {
    let (conn, _) = fresh_db();
    create(
        &conn,
        json!({"name": "m", "type": "auth", "fields": [{"name": "nick", "type": "text"}]}),
    )
    .unwrap();
    let d = data(patch(
        &conn,
        "m",
        json!({"otp": {"enabled": true, "duration": 5, "length": 2}, "mfa": {"enabled": true, "duration": 5}}),
    ));
    assert_eq!(
        code(&d["otp"]["duration"]),
        "validation_min_greater_equal_than_required"
    );
    assert_eq!(
        code(&d["otp"]["length"]),
        "validation_min_greater_equal_than_required"
    );
    assert_eq!(
        code(&d["mfa"]["duration"]),
        "validation_min_greater_equal_than_required"
    );
    let d = data(patch(
        &conn,
        "m",
        json!({"passwordAuth": {"identityFields": ["nick"]}}),
    ));
    assert_eq!(
        code(&d["passwordAuth"]["identityFields"]),
        "validation_missing_unique_constraint"
    );
    let d = data(patch(&conn, "m", json!({"mfa": {"enabled": true}})));
    assert_eq!(
        code(&d["mfa"]["enabled"]),
        "validation_mfa_not_enough_auths"
    );
    let d = data(patch(&conn, "m", json!({"manageRule": ""})));
    assert_eq!(
        code(&d["manageRule"]),
        "validation_nil_or_not_empty_required"
    );
    let d = data(patch(
        &conn,
        "m",
        json!({"verificationTemplate": {"subject": ""}}),
    ));
    assert_eq!(
        code(&d["verificationTemplate"]["subject"]),
        "validation_required"
    );
    let d = data(patch(
        &conn,
        "m",
        json!({"oauth2": {"enabled": true, "providers": [{"name": "nosuch"}]}}),
    ));
    let p = &d["oauth2"]["providers"]["0"];
    assert_eq!(code(&p["name"]), "validation_missing_provider");
    assert_eq!(code(&p["clientId"]), "validation_required");
    assert_eq!(code(&p["clientSecret"]), "validation_required");

    // identity fields with a unique index are fine; partial nested updates merge
    patch(
        &conn,
        "m",
        json!({"indexes": [
            "CREATE UNIQUE INDEX idx_nick ON m (nick)",
            "CREATE UNIQUE INDEX `idx_tokenKey_x` ON `m` (`tokenKey`)",
            "CREATE UNIQUE INDEX `idx_email_x` ON `m` (`email`) WHERE `email` != ''"
        ]}),
    )
    .unwrap();
    let ok = patch(
        &conn,
        "m",
        json!({"passwordAuth": {"identityFields": ["email", "nick"]}, "otp": {"enabled": true}}),
    )
    .unwrap();
    let options = AuthOptions::from_collection(&ok).unwrap();
    assert_eq!(
        options.otp.length, 8,
        "untouched keys of a nested object keep their value"
    );
    let off = patch(&conn, "m", json!({"passwordAuth": {"enabled": false}})).unwrap();
    let options = AuthOptions::from_collection(&off).unwrap();
    assert_eq!(options.password_auth.identity_fields, ["email", "nick"]);
}

#[test]
fn oauth2_client_secrets_survive_a_patch_that_omits_them() {
    let (conn, _) = fresh_db();
    create(&conn, json!({"name": "o", "type": "auth"})).unwrap();
    patch(
        &conn,
        "o",
        json!({"oauth2": {"enabled": true, "providers": [
            {"name": "google", "clientId": "cid", "clientSecret": "csec"},
            {"name": "github", "clientId": "cid2", "clientSecret": "csec2"}
        ]}}),
    )
    .unwrap();
    let c = patch(
        &conn,
        "o",
        json!({"oauth2": {"providers": [{"name": "github", "clientId": "cid3"}]}}),
    )
    .unwrap();
    let options = AuthOptions::from_collection(&c).unwrap();
    assert_eq!(options.oauth2.providers.len(), 1);
    assert_eq!(options.oauth2.providers[0].client_secret, "csec2");
    assert!(!c.to_api_json().to_string().contains("csec"));
    let disabled = patch(&conn, "o", json!({"oauth2": {"enabled": false}})).unwrap();
    assert_eq!(
        AuthOptions::from_collection(&disabled)
            .unwrap()
            .oauth2
            .providers
            .len(),
        1
    );
}

#[test]
fn superuser_otp_forces_mfa() {
    let (conn, _) = fresh_db();
    let c = patch(&conn, "_superusers", json!({"otp": {"enabled": true}})).unwrap();
    let options = AuthOptions::from_collection(&c).unwrap();
    assert!(options.mfa.enabled);
}

#[test]
fn mapped_fields_must_exist() {
    let (conn, _) = fresh_db();
    let c = create(
        &conn,
        json!({"name": "mf", "type": "auth", "fields": [{"name": "nick", "type": "text"}],
        "oauth2": {"mappedFields": {"name": "nick", "avatarURL": "nope"}}}),
    )
    .unwrap();
    assert_eq!(
        c.to_api_json()["oauth2"]["mappedFields"],
        json!({"id": "", "name": "nick", "username": "", "avatarURL": ""})
    );
}

#[test]
fn views_need_a_query_with_an_id_and_no_write_rules() {
    let (conn, _) = fresh_db();
    create(&conn, json!({"name": "src", "fields": [{"name": "label", "type": "text"}, {"name": "n", "type": "number"}]})).unwrap();
    let d = data(create(&conn, json!({"name": "v0", "type": "view"})));
    assert_eq!(code(&d["viewQuery"]), "validation_required");
    assert_eq!(code(&d["fields"]), "validation_required");
    let d = data(create(
        &conn,
        json!({"name": "v1", "type": "view", "viewQuery": "select 1"}),
    ));
    assert_eq!(code(&d["viewQuery"]), "validation_invalid_view_query");
    assert_eq!(code(&d["fields"]), "validation_missing_primary_key");
    let d = data(create(
        &conn,
        json!({"name": "v2", "type": "view", "viewQuery": "select nonsense from"}),
    ));
    assert_eq!(code(&d["viewQuery"]), "validation_invalid_view_query");
    let d = data(create(
        &conn,
        json!({"name": "v3", "type": "view", "createRule": "", "viewQuery": "SELECT id FROM src"}),
    ));
    assert_eq!(code(&d["createRule"]), "validation_nil");
    let d = data(create(
        &conn,
        json!({"name": "v4", "type": "view", "viewQuery": "SELECT id FROM src", "indexes": ["CREATE INDEX a ON v4 (id)"]}),
    ));
    assert_eq!(code(&d["indexes"]), "validation_indexes_not_supported");

    let v = create(&conn, json!({"name": "v5", "type": "view", "listRule": "", "viewQuery": "SELECT id, label, n FROM src WHERE n > 5"})).unwrap();
    let types: Vec<&str> = v.fields.iter().map(|f| f.type_name()).collect();
    assert_eq!(types, ["text", "text", "number"]);
    assert_eq!(
        v.to_api_json()["viewQuery"],
        "SELECT id, label, n FROM src WHERE n > 5"
    );
    assert_eq!(v.indexes.len(), 0);
}

#[test]
fn merge_follows_decode_onto_existing_semantics() {
    let mut base = json!({"a": {"x": 1, "y": 2}, "list": [1, 2], "rule": "r", "keep": 1});
    merge_onto(
        &mut base,
        &json!({"a": {"y": 3}, "list": [9], "rule": null, "new": true}),
    );
    assert_eq!(
        base,
        json!({"a": {"x": 1, "y": 3}, "list": [9], "rule": null, "keep": 1, "new": true})
    );
    merge_onto(&mut base, &json!({"a": null}));
    assert_eq!(
        base["a"],
        json!({"x": 1, "y": 3}),
        "null leaves an object be"
    );
}
