//! The collection schema as the rest of Satchel sees it: a collection, its
//! fields and their type-specific options. These types mirror the JSON that
//! PocketBase stores in `_collections` and returns from the collections API;
//! conversion to and from that JSON lives beside them in `json.rs`.
//!
//! This module holds data only: no SQL, no HTTP.

use serde_json::{Map, Value};

/// What kind of records a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionType {
    Base,
    Auth,
    View,
}

impl CollectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionType::Base => "base",
            CollectionType::Auth => "auth",
            CollectionType::View => "view",
        }
    }

    pub fn parse(text: &str) -> Option<CollectionType> {
        match text {
            "base" => Some(CollectionType::Base),
            "auth" => Some(CollectionType::Auth),
            "view" => Some(CollectionType::View),
            _ => None,
        }
    }
}

/// One collection: a table (or, for views, an SQL view) plus its API rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub kind: CollectionType,
    pub system: bool,
    pub fields: Vec<Field>,
    pub indexes: Vec<String>,
    pub list_rule: Option<String>,
    pub view_rule: Option<String>,
    pub create_rule: Option<String>,
    pub update_rule: Option<String>,
    pub delete_rule: Option<String>,
    /// The `options` column: auth settings (token secrets and durations,
    /// templates, `authRule`, `manageRule`, ...) or a view's `viewQuery`.
    /// Kept as JSON so keys written by a newer reference survive a round trip.
    pub options: Map<String, Value>,
    pub created: String,
    pub updated: String,
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn is_auth(&self) -> bool {
        self.kind == CollectionType::Auth
    }

    pub fn is_view(&self) -> bool {
        self.kind == CollectionType::View
    }
}

/// A field: what every field has, plus its type and type-specific options.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub id: String,
    pub name: String,
    pub system: bool,
    pub hidden: bool,
    pub presentable: bool,
    /// Meaning depends on the type: non-blank text, non-zero number, `true` bool...
    pub required: bool,
    pub help: String,
    pub kind: FieldKind,
}

/// The type of a field and its options, with the reference's defaults
/// (`0`/empty meaning "no limit" where the reference does so).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text {
        min: i64,
        max: i64,
        pattern: String,
        autogenerate_pattern: String,
        primary_key: bool,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        only_int: bool,
    },
    Bool,
    Email {
        only_domains: Vec<String>,
        except_domains: Vec<String>,
    },
    Url {
        only_domains: Vec<String>,
        except_domains: Vec<String>,
    },
    Editor {
        max_size: i64,
        convert_urls: bool,
    },
    Date {
        min: String,
        max: String,
    },
    Autodate {
        on_create: bool,
        on_update: bool,
    },
    Select {
        values: Vec<String>,
        max_select: i64,
    },
    File {
        max_select: i64,
        max_size: i64,
        mime_types: Vec<String>,
        thumbs: Vec<String>,
        protected: bool,
    },
    Relation {
        collection_id: String,
        cascade_delete: bool,
        min_select: i64,
        max_select: i64,
    },
    Json {
        max_size: i64,
    },
    Password {
        min: i64,
        max: i64,
        pattern: String,
        cost: i64,
    },
    GeoPoint,
}

impl FieldKind {
    /// The `type` string of the field JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Editor { .. } => "editor",
            FieldKind::Date { .. } => "date",
            FieldKind::Autodate { .. } => "autodate",
            FieldKind::Select { .. } => "select",
            FieldKind::File { .. } => "file",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Json { .. } => "json",
            FieldKind::Password { .. } => "password",
            FieldKind::GeoPoint => "geoPoint",
        }
    }

    /// True when the stored value is a JSON array (multi select, relation, file).
    pub fn is_multi(&self) -> bool {
        match self {
            FieldKind::Select { max_select, .. }
            | FieldKind::File { max_select, .. }
            | FieldKind::Relation { max_select, .. } => *max_select > 1,
            _ => false,
        }
    }
}

/// Every field type name the reference knows, in its own spelling.
pub const FIELD_TYPES: &[&str] = &[
    "text", "number", "bool", "email", "url", "editor", "date", "autodate", "select", "file",
    "relation", "json", "password", "geoPoint",
];

/// The column definition of the record id: a text primary key with a random
/// fallback default, exactly as the reference declares it.
pub const ID_COLUMN_TYPE: &str =
    "TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL";

impl FieldKind {
    /// The options of a fresh field of type `type_name`, as the reference
    /// initialises them; `None` for an unknown type.
    pub fn default_for(type_name: &str) -> Option<FieldKind> {
        let kind = match type_name {
            "text" => FieldKind::Text {
                min: 0,
                max: 0,
                pattern: String::new(),
                autogenerate_pattern: String::new(),
                primary_key: false,
            },
            "number" => FieldKind::Number {
                min: None,
                max: None,
                only_int: false,
            },
            "bool" => FieldKind::Bool,
            "email" => FieldKind::Email {
                only_domains: Vec::new(),
                except_domains: Vec::new(),
            },
            "url" => FieldKind::Url {
                only_domains: Vec::new(),
                except_domains: Vec::new(),
            },
            "editor" => FieldKind::Editor {
                max_size: 0,
                convert_urls: false,
            },
            "date" => FieldKind::Date {
                min: String::new(),
                max: String::new(),
            },
            "autodate" => FieldKind::Autodate {
                on_create: false,
                on_update: false,
            },
            "select" => FieldKind::Select {
                values: Vec::new(),
                max_select: 0,
            },
            "file" => FieldKind::File {
                max_select: 0,
                max_size: 0,
                mime_types: Vec::new(),
                thumbs: Vec::new(),
                protected: false,
            },
            "relation" => FieldKind::Relation {
                collection_id: String::new(),
                cascade_delete: false,
                min_select: 0,
                max_select: 0,
            },
            "json" => FieldKind::Json { max_size: 0 },
            "password" => FieldKind::Password {
                min: 0,
                max: 0,
                pattern: String::new(),
                cost: 0,
            },
            "geoPoint" => FieldKind::GeoPoint,
            _ => return None,
        };
        Some(kind)
    }

    /// The SQLite column definition the reference uses for this type.
    pub fn column_type(&self) -> &'static str {
        match self {
            FieldKind::Text {
                primary_key: true, ..
            } => ID_COLUMN_TYPE,
            FieldKind::Number { .. } => "NUMERIC DEFAULT 0 NOT NULL",
            FieldKind::Bool => "BOOLEAN DEFAULT FALSE NOT NULL",
            FieldKind::Json { .. } => "JSON DEFAULT NULL",
            FieldKind::GeoPoint => r#"JSON DEFAULT '{"lon":0,"lat":0}' NOT NULL"#,
            kind if kind.is_multi() => "JSON DEFAULT '[]' NOT NULL",
            _ => "TEXT DEFAULT '' NOT NULL",
        }
    }
}

impl Field {
    /// A non-system field with the type's default options and no id yet.
    pub fn new(name: &str, kind: FieldKind) -> Field {
        Field {
            id: String::new(),
            name: name.to_string(),
            system: false,
            hidden: false,
            presentable: false,
            required: false,
            help: String::new(),
            kind,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// True for the record primary key (`id`, a text field marked `primaryKey`).
    pub fn is_primary_key(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Text {
                primary_key: true,
                ..
            }
        )
    }
}

impl Collection {
    pub fn field_by_id(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    pub fn is_base(&self) -> bool {
        self.kind == CollectionType::Base
    }

    /// The `viewQuery` of a view collection (`""` for other types).
    pub fn view_query(&self) -> &str {
        self.options
            .get("viewQuery")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}
