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
