//! What the reference puts into a collection before the client says
//! anything: the `id` primary key of every table, the system fields and
//! unique indexes of auth collections, and the blank collection of each
//! type that a create request is applied on top of.
//!
//! Pure data building; no validation, no SQL.

use serde_json::{Map, Value};

use super::auth_options::AuthOptions;
use super::ids;
use super::index;
use super::json::add_to_fields_list;
use super::model::{Collection, CollectionType, Field, FieldKind};
use crate::security::random;

/// Pattern of record ids made by the default `id` field.
pub const RECORD_ID_PATTERN: &str = "^[a-z0-9]+$";

fn with_default_id(mut field: Field) -> Field {
    field.id = ids::field_id(field.type_name(), &field.name);
    field
}

/// The record primary key: 15 random lower-case letters and digits.
pub fn id_field() -> Field {
    let mut field = Field::new(
        "id",
        FieldKind::Text {
            min: 15,
            max: 15,
            pattern: RECORD_ID_PATTERN.into(),
            autogenerate_pattern: "[a-z0-9]{15}".into(),
            primary_key: true,
        },
    );
    field.system = true;
    field.required = true;
    with_default_id(field)
}

pub fn password_field() -> Field {
    let mut field = Field::new(
        "password",
        FieldKind::Password {
            min: 8,
            max: 0,
            pattern: String::new(),
            cost: 0,
        },
    );
    field.system = true;
    field.hidden = true;
    field.required = true;
    with_default_id(field)
}

/// Per-record key mixed into token signatures; rotating it logs the record out.
pub fn token_key_field() -> Field {
    let mut field = Field::new(
        "tokenKey",
        FieldKind::Text {
            min: 30,
            max: 60,
            pattern: String::new(),
            autogenerate_pattern: "[a-zA-Z0-9]{50}".into(),
            primary_key: false,
        },
    );
    field.system = true;
    field.hidden = true;
    field.required = true;
    with_default_id(field)
}

pub fn email_field() -> Field {
    let mut field = Field::new(
        "email",
        FieldKind::Email {
            only_domains: Vec::new(),
            except_domains: Vec::new(),
        },
    );
    field.system = true;
    field.required = true;
    with_default_id(field)
}

pub fn bool_system_field(name: &str) -> Field {
    let mut field = Field::new(name, FieldKind::Bool);
    field.system = true;
    with_default_id(field)
}

/// A plain text field with default options.
pub fn text_field(name: &str) -> Field {
    with_default_id(Field::new(
        name,
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        },
    ))
}

/// `created` (on create only) or `updated` (on create and update).
pub fn autodate_field(name: &str, on_update: bool) -> Field {
    with_default_id(Field::new(
        name,
        FieldKind::Autodate {
            on_create: true,
            on_update,
        },
    ))
}

/// `idx_<field>_<collection id>` (the name when there is no id yet, random
/// when there is neither), cut to 64 bytes like the reference does.
pub fn field_index_name(field: &str, collection: &Collection) -> String {
    let suffix = if !collection.id.is_empty() {
        collection.id.clone()
    } else if !collection.name.is_empty() {
        collection.name.clone()
    } else {
        random::string_from(random::ALPHANUMERIC_LOWER, 10)
    };
    let mut name = format!("idx_{field}_{suffix}");
    if name.len() > 64 {
        let mut cut = 64;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

fn token_key_index(collection: &Collection) -> String {
    format!(
        "CREATE UNIQUE INDEX `{}` ON `{}` (`tokenKey`)",
        field_index_name("tokenKey", collection),
        collection.name
    )
}

fn email_index(collection: &Collection) -> String {
    format!(
        "CREATE UNIQUE INDEX `{}` ON `{}` (`email`) WHERE `email` != ''",
        field_index_name("email", collection),
        collection.name
    )
}

/// A blank collection of `kind` with the type's default fields, indexes and
/// options: what a create request is applied on top of.
pub fn new_collection(kind: CollectionType, id: &str, name: &str) -> Collection {
    let options = match kind {
        CollectionType::Base => Map::new(),
        CollectionType::View => {
            let mut m = Map::new();
            m.insert("viewQuery".into(), Value::String(String::new()));
            m
        }
        CollectionType::Auth => AuthOptions::defaults().to_json(),
    };
    let mut collection = Collection {
        id: id.to_string(),
        name: name.to_string(),
        kind,
        system: false,
        fields: Vec::new(),
        indexes: Vec::new(),
        list_rule: None,
        view_rule: None,
        create_rule: None,
        update_rule: None,
        delete_rule: None,
        options,
        created: String::new(),
        updated: String::new(),
    };
    ensure_default_fields(&mut collection);
    collection
}

/// Adds the fields and indexes the collection's type requires when they are
/// missing, and forces the flags the system fields must have. Base and auth
/// collections get the `id` key first; auth collections also `password`,
/// `tokenKey`, `email`, `emailVisibility`, `verified` (appended) and the
/// unique indexes on `tokenKey` and `email`. Views get nothing: their fields
/// come from the query.
pub fn ensure_default_fields(collection: &mut Collection) {
    if collection.is_view() {
        return;
    }
    ensure_id_field(collection);
    if !collection.is_auth() {
        return;
    }
    ensure_field(collection, "password", password_field, |f| {
        f.system = true;
        f.hidden = true;
        f.required = true;
    });
    ensure_field(collection, "tokenKey", token_key_field, |f| {
        f.system = true;
        f.hidden = true;
        f.required = true;
    });
    if !index::has_single_column_unique(&collection.indexes, "tokenKey") {
        let sql = token_key_index(collection);
        collection.indexes.push(sql);
    }
    ensure_field(collection, "email", email_field, |f| {
        f.system = true;
        // visibility is governed by `emailVisibility`, never by `hidden`
        f.hidden = false;
    });
    if !index::has_single_column_unique(&collection.indexes, "email") {
        let sql = email_index(collection);
        collection.indexes.push(sql);
    }
    ensure_field(
        collection,
        "emailVisibility",
        || bool_system_field("emailVisibility"),
        |f| {
            f.system = true;
        },
    );
    ensure_field(
        collection,
        "verified",
        || bool_system_field("verified"),
        |f| {
            f.system = true;
        },
    );
}

fn ensure_id_field(collection: &mut Collection) {
    let existing = collection
        .fields
        .iter_mut()
        .find(|f| f.name == "id" && matches!(f.kind, FieldKind::Text { .. }));
    match existing {
        Some(field) => {
            field.system = true;
            field.required = true;
            field.hidden = false;
            if let FieldKind::Text {
                primary_key,
                pattern,
                ..
            } = &mut field.kind
            {
                *primary_key = true;
                if pattern.is_empty() {
                    *pattern = RECORD_ID_PATTERN.into();
                }
            }
        }
        None => {
            // prepend, re-adding the others with the list's usual rules
            let others = std::mem::take(&mut collection.fields);
            collection.fields.push(id_field());
            for field in others {
                add_to_fields_list(&mut collection.fields, field);
            }
        }
    }
}

/// Forces `flags` on the field called `name` when it has the expected type,
/// else adds `make()` the way the reference's list adds a field without id
/// (replacing a same-named field of another type in place).
fn ensure_field(
    collection: &mut Collection,
    name: &str,
    make: impl Fn() -> Field,
    flags: impl Fn(&mut Field),
) {
    let wanted_type = make().type_name();
    let existing = collection
        .fields
        .iter_mut()
        .find(|f| f.name == name && f.type_name() == wanted_type);
    match existing {
        Some(field) => flags(field),
        None => {
            let mut field = make();
            field.id = String::new();
            add_to_fields_list(&mut collection.fields, field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::json::fields_to_json;

    #[test]
    fn a_new_auth_collection_has_the_reference_fields_and_indexes() {
        let c = new_collection(CollectionType::Auth, "pbc_1", "members");
        let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "password",
                "tokenKey",
                "email",
                "emailVisibility",
                "verified"
            ]
        );
        let ids: Vec<&str> = c.fields.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "text3208210256",
                "password901924565",
                "text2504183744",
                "email3885137012",
                "bool1547992806",
                "bool256245529"
            ]
        );
        assert_eq!(
            c.indexes,
            [
                "CREATE UNIQUE INDEX `idx_tokenKey_pbc_1` ON `members` (`tokenKey`)",
                "CREATE UNIQUE INDEX `idx_email_pbc_1` ON `members` (`email`) WHERE `email` != ''"
            ]
        );
    }

    #[test]
    fn system_fields_match_the_reference_json() {
        let Ok(text) = std::fs::read_to_string("/work/ref/collections.json") else {
            return;
        };
        let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
        let users = rows.iter().find(|r| r["name"] == "users").unwrap();
        let stored: Value = serde_json::from_str(users["fields"].as_str().unwrap()).unwrap();
        let ours = fields_to_json(&[
            id_field(),
            password_field(),
            token_key_field(),
            email_field(),
            bool_system_field("emailVisibility"),
            bool_system_field("verified"),
        ]);
        assert_eq!(
            ours.as_array().unwrap()[..],
            stored.as_array().unwrap()[..6]
        );
    }

    #[test]
    fn user_fields_come_between_id_and_the_auth_fields() {
        let mut c = new_collection(CollectionType::Auth, "pbc_1", "members");
        c.fields = vec![text_field("nickname")];
        ensure_default_fields(&mut c);
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
        assert_eq!(c.indexes.len(), 2, "existing indexes are not duplicated");
    }

    #[test]
    fn index_names_fall_back_to_the_name_then_random() {
        let mut c = new_collection(CollectionType::Base, "", "posts");
        assert_eq!(field_index_name("email", &c), "idx_email_posts");
        c.name.clear();
        assert_eq!(field_index_name("email", &c).len(), "idx_email_".len() + 10);
        c.id = "x".repeat(80);
        assert_eq!(field_index_name("email", &c).len(), 64);
    }
}
