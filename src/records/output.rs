//! A record as the API shows it: `collectionId`, `collectionName`, then
//! every field in schema order with its value or zero value, minus what the
//! viewer may not see (hidden fields, password hashes, token keys, and an
//! auth record's email unless it is visible to this viewer).
//!
//! Pure: no SQL, no rules evaluation — the caller says who is looking.
//! `expand` and `fields` filtering are added by the caller afterwards.

use serde_json::{Map, Value};

use super::values::{zero_value, RecordValues};
use crate::collections::{Collection, FieldKind};

/// Auth collections' token-key field: never shown to anyone.
const TOKEN_KEY_FIELD: &str = "tokenKey";
const EMAIL_FIELD: &str = "email";
const EMAIL_VISIBILITY_FIELD: &str = "emailVisibility";

/// Who is looking at a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Viewer {
    /// Superusers see hidden fields and every email.
    pub is_superuser: bool,
    /// The viewer is this very (auth) record.
    pub is_owner: bool,
    /// The viewer satisfies the collection's `manageRule`.
    pub can_manage: bool,
}

/// A record as shown: its keys and values in API order. It writes itself
/// as a JSON object (`WriteJson`), without the hashed map a `serde_json`
/// object builds, and becomes one (`into_map`) when `expand` or `fields`
/// must reshape it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shown {
    pairs: Vec<(String, Value)>,
}

impl Shown {
    pub fn into_map(self) -> Map<String, Value> {
        self.pairs.into_iter().collect()
    }
}

impl crate::json::WriteJson for Shown {
    fn write_json(&self, out: &mut Vec<u8>) {
        crate::json::push_object(out, self.pairs.iter().map(|(name, value)| (name, value)));
    }
}

/// The API JSON of one record.
pub fn to_json(
    collection: &Collection,
    values: &RecordValues,
    viewer: &Viewer,
) -> Map<String, Value> {
    show(collection, values.clone(), viewer).into_map()
}

/// The keys and values of one record that `viewer` may see, moved out of
/// `values`. Names are unique: field names never repeat and never take the
/// two collection keys (collection validation).
pub fn show(collection: &Collection, mut values: RecordValues, viewer: &Viewer) -> Shown {
    let mut pairs = Vec::with_capacity(collection.fields.len() + 2);
    pairs.push(("collectionId".into(), Value::String(collection.id.clone())));
    pairs.push((
        "collectionName".into(),
        Value::String(collection.name.clone()),
    ));
    let hide_email = collection.is_auth() && !email_visible(&values, viewer);
    for field in &collection.fields {
        if field.hidden && !viewer.is_superuser {
            continue;
        }
        let never_shown = collection.is_auth() && field.name == TOKEN_KEY_FIELD;
        if never_shown || (hide_email && field.name == EMAIL_FIELD) {
            continue;
        }
        let pair = match field.kind {
            // Hashes never leave the server; a visible password field shows "".
            FieldKind::Password { .. } if field.hidden => continue,
            FieldKind::Password { .. } => (field.name.clone(), Value::String(String::new())),
            _ => values
                .take(&field.name)
                .unwrap_or_else(|| (field.name.clone(), zero_value(&field.kind))),
        };
        pairs.push(pair);
    }
    Shown { pairs }
}

fn email_visible(values: &RecordValues, viewer: &Viewer) -> bool {
    viewer.is_superuser
        || viewer.is_owner
        || viewer.can_manage
        || values.get_bool(EMAIL_VISIBILITY_FIELD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::{CollectionType, Field};
    use serde_json::json;

    fn field(name: &str, kind: FieldKind, hidden: bool) -> Field {
        Field {
            id: format!("f_{name}"),
            name: name.into(),
            system: false,
            hidden,
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

    fn password() -> FieldKind {
        FieldKind::Password {
            min: 8,
            max: 0,
            pattern: String::new(),
            cost: 0,
        }
    }

    fn collection(kind: CollectionType, fields: Vec<Field>) -> Collection {
        Collection {
            id: "pbc_9".into(),
            name: "people".into(),
            kind,
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

    fn users() -> Collection {
        collection(
            CollectionType::Auth,
            vec![
                field("id", text(), false),
                field("password", password(), true),
                field("tokenKey", text(), true),
                field(
                    "email",
                    FieldKind::Email {
                        only_domains: vec![],
                        except_domains: vec![],
                    },
                    false,
                ),
                field("emailVisibility", FieldKind::Bool, false),
                field("verified", FieldKind::Bool, false),
                field("notes", text(), true),
            ],
        )
    }

    fn user(visible: bool) -> RecordValues {
        let mut v = RecordValues::new();
        v.set("id", json!("u1"));
        v.set("password", json!("$2a$10$hash"));
        v.set("tokenKey", json!("secret-key"));
        v.set("email", json!("u1@example.com"));
        v.set("emailVisibility", json!(visible));
        v.set("verified", json!(false));
        v.set("notes", json!("private"));
        v
    }

    #[test]
    fn base_records_show_every_field_with_zero_values_for_missing() {
        let c = collection(
            CollectionType::Base,
            vec![
                field("id", text(), false),
                field("title", text(), false),
                field(
                    "n",
                    FieldKind::Number {
                        min: None,
                        max: None,
                        only_int: false,
                    },
                    false,
                ),
                field("j", FieldKind::Json { max_size: 0 }, false),
                field(
                    "many",
                    FieldKind::Select {
                        values: vec![],
                        max_select: 2,
                    },
                    false,
                ),
            ],
        );
        let mut v = RecordValues::new();
        v.set("id", json!("r1"));
        v.set("title", json!("hello"));
        v.set("bogus", json!("not in the schema"));
        let out = to_json(&c, &v, &Viewer::default());
        assert_eq!(
            Value::Object(out.clone()),
            json!({"collectionId": "pbc_9", "collectionName": "people", "id": "r1",
                   "title": "hello", "n": 0, "j": null, "many": []})
        );
        let keys: Vec<&String> = out.keys().collect();
        assert_eq!(
            keys,
            [
                "collectionId",
                "collectionName",
                "id",
                "title",
                "n",
                "j",
                "many"
            ]
        );
    }

    #[test]
    fn a_shown_record_writes_the_json_of_its_object() {
        let c = users();
        let viewers = [
            Viewer::default(),
            Viewer {
                is_superuser: true,
                ..Viewer::default()
            },
            Viewer {
                is_owner: true,
                ..Viewer::default()
            },
        ];
        for viewer in viewers {
            for visible in [false, true] {
                let mut record = user(visible);
                record.set("notes", json!("quote \" and\nline, \u{e9}"));
                let object = Value::Object(to_json(&c, &record, &viewer));
                let shown = show(&c, record, &viewer);
                let mut written = Vec::new();
                crate::json::WriteJson::write_json(&shown, &mut written);
                assert_eq!(written, serde_json::to_vec(&object).unwrap());
                assert_eq!(Value::Object(shown.into_map()), object);
            }
        }
    }

    #[test]
    fn hidden_fields_only_for_superusers_and_secrets_never() {
        let c = users();
        let anon = to_json(&c, &user(true), &Viewer::default());
        assert!(!anon.contains_key("notes"));
        assert!(!anon.contains_key("password"));
        assert!(!anon.contains_key("tokenKey"));
        let su = Viewer {
            is_superuser: true,
            ..Viewer::default()
        };
        let full = to_json(&c, &user(false), &su);
        assert_eq!(full["notes"], "private");
        assert_eq!(full["email"], "u1@example.com");
        assert!(!full.contains_key("password"));
        assert!(!full.contains_key("tokenKey"));
    }

    #[test]
    fn auth_email_needs_visibility_or_a_privileged_viewer() {
        let c = users();
        assert!(!to_json(&c, &user(false), &Viewer::default()).contains_key("email"));
        assert_eq!(
            to_json(&c, &user(true), &Viewer::default())["email"],
            "u1@example.com"
        );
        for viewer in [
            Viewer {
                is_owner: true,
                ..Viewer::default()
            },
            Viewer {
                can_manage: true,
                ..Viewer::default()
            },
        ] {
            assert_eq!(
                to_json(&c, &user(false), &viewer)["email"],
                "u1@example.com"
            );
        }
    }

    #[test]
    fn visible_password_fields_show_empty() {
        let c = collection(
            CollectionType::Base,
            vec![field("id", text(), false), field("pin", password(), false)],
        );
        let mut v = RecordValues::new();
        v.set("id", json!("r1"));
        v.set("pin", json!("$2a$10$hash"));
        assert_eq!(to_json(&c, &v, &Viewer::default())["pin"], "");
    }
}
