//! JSON forms of collections and fields, byte-compatible with the
//! reference: the field objects it stores in `_collections.fields` and
//! returns from the API (keys in alphabetical order, type-specific keys
//! only), the collection object of the collections API (auth options
//! flattened at the top level, secrets left out) and the `_collections` row.
//!
//! Parsing here only checks JSON types (a string where a string belongs);
//! the rules of what makes a schema valid live in `validate.rs`. This module
//! never touches SQL beyond reading and writing one `_collections` row's values.

use std::collections::BTreeMap;

use rusqlite::types::{Type, Value as SqlValue};
use rusqlite::Row;
use serde_json::{json, Map, Value};

use super::ids;
use super::model::{Collection, CollectionType, Field, FieldKind};
use crate::error::{field_error, FieldErrors};

/// The columns of `_collections`, in the order `Collection::from_row` expects
/// none in particular (it reads them by name); handy for SELECTs.
pub const COLLECTION_COLUMNS: &str = "`id`, `system`, `type`, `name`, `fields`, `indexes`, \
     `listRule`, `viewRule`, `createRule`, `updateRule`, `deleteRule`, `options`, `created`, `updated`";

/// A JSON value of the wrong type for its key (the reference refuses such a
/// body as "invalid formatting" before validating anything).
#[derive(Debug, Clone, PartialEq)]
pub struct WrongType {
    pub key: String,
}

impl WrongType {
    fn at(key: &str) -> WrongType {
        WrongType {
            key: key.to_string(),
        }
    }

    /// The error as a field error map, for callers that report it per key.
    pub fn into_field_errors(self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        errors.insert(
            self.key,
            field_error("validation_invalid_type", "Invalid value type."),
        );
        errors
    }
}

// ---------------------------------------------------------------------------
// Typed readers with the reference's decoding rules: a missing key or `null`
// keeps the default, a value of another JSON type is an error.

pub(crate) fn read_str(
    obj: &Map<String, Value>,
    key: &str,
    default: &str,
) -> Result<String, WrongType> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(WrongType::at(key)),
    }
}

pub(crate) fn read_bool(
    obj: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, WrongType> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(WrongType::at(key)),
    }
}

/// An integer; a float without fraction is accepted as the integer it is.
pub(crate) fn read_i64(
    obj: &Map<String, Value>,
    key: &str,
    default: i64,
) -> Result<i64, WrongType> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| WrongType::at(key)),
        Some(_) => Err(WrongType::at(key)),
    }
}

fn read_opt_f64(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, WrongType> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| WrongType::at(key)),
        Some(_) => Err(WrongType::at(key)),
    }
}

pub(crate) fn read_opt_str(
    obj: &Map<String, Value>,
    key: &str,
    default: Option<&str>,
) -> Result<Option<String>, WrongType> {
    match obj.get(key) {
        None => Ok(default.map(str::to_string)),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WrongType::at(key)),
    }
}

pub(crate) fn read_str_list(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, WrongType> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| WrongType::at(key))
            })
            .collect(),
        Some(_) => Err(WrongType::at(key)),
    }
}

/// A number as the reference prints it: whole values without a fraction
/// (`100`, not `100.0`).
pub fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn opt_number_value(n: Option<f64>) -> Value {
    n.map_or(Value::Null, number_value)
}

fn str_list_value(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

// ---------------------------------------------------------------------------
// Fields

impl Field {
    /// Parses one field object as the reference decodes it: `type` picks the
    /// option set, unknown keys are ignored, missing keys keep their defaults.
    /// An unknown type or a value of the wrong JSON type is an error keyed by
    /// the offending key.
    pub fn from_json(value: &Value) -> Result<Field, FieldErrors> {
        parse_field(value).map_err(WrongType::into_field_errors)
    }

    /// The field object with exactly the reference's keys for its type, in
    /// alphabetical order (the order the reference stores and returns).
    pub fn to_json(&self) -> Value {
        let mut keys: BTreeMap<&str, Value> = BTreeMap::new();
        keys.insert("id", json!(self.id));
        keys.insert("name", json!(self.name));
        keys.insert("type", json!(self.type_name()));
        keys.insert("system", json!(self.system));
        keys.insert("hidden", json!(self.hidden));
        keys.insert("presentable", json!(self.presentable));
        // autodate fields are set by the server only: no `required`, no `help`
        if !matches!(self.kind, FieldKind::Autodate { .. }) {
            keys.insert("required", json!(self.required));
            keys.insert("help", json!(self.help));
        }
        insert_kind_options(&self.kind, &mut keys);
        Value::Object(keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

fn insert_kind_options(kind: &FieldKind, keys: &mut BTreeMap<&'static str, Value>) {
    match kind {
        FieldKind::Text {
            min,
            max,
            pattern,
            autogenerate_pattern,
            primary_key,
        } => {
            keys.insert("min", json!(min));
            keys.insert("max", json!(max));
            keys.insert("pattern", json!(pattern));
            keys.insert("autogeneratePattern", json!(autogenerate_pattern));
            keys.insert("primaryKey", json!(primary_key));
        }
        FieldKind::Number { min, max, only_int } => {
            keys.insert("min", opt_number_value(*min));
            keys.insert("max", opt_number_value(*max));
            keys.insert("onlyInt", json!(only_int));
        }
        FieldKind::Bool | FieldKind::GeoPoint => {}
        FieldKind::Email {
            only_domains,
            except_domains,
        }
        | FieldKind::Url {
            only_domains,
            except_domains,
        } => {
            keys.insert("onlyDomains", str_list_value(only_domains));
            keys.insert("exceptDomains", str_list_value(except_domains));
        }
        FieldKind::Editor {
            max_size,
            convert_urls,
        } => {
            keys.insert("maxSize", json!(max_size));
            keys.insert("convertURLs", json!(convert_urls));
        }
        FieldKind::Date { min, max } => {
            keys.insert("min", json!(min));
            keys.insert("max", json!(max));
        }
        FieldKind::Autodate {
            on_create,
            on_update,
        } => {
            keys.insert("onCreate", json!(on_create));
            keys.insert("onUpdate", json!(on_update));
        }
        FieldKind::Select { values, max_select } => {
            keys.insert("values", str_list_value(values));
            keys.insert("maxSelect", json!(max_select));
        }
        FieldKind::File {
            max_select,
            max_size,
            mime_types,
            thumbs,
            protected,
        } => {
            keys.insert("maxSelect", json!(max_select));
            keys.insert("maxSize", json!(max_size));
            keys.insert("mimeTypes", str_list_value(mime_types));
            keys.insert("thumbs", str_list_value(thumbs));
            keys.insert("protected", json!(protected));
        }
        FieldKind::Relation {
            collection_id,
            cascade_delete,
            min_select,
            max_select,
        } => {
            keys.insert("collectionId", json!(collection_id));
            keys.insert("cascadeDelete", json!(cascade_delete));
            keys.insert("minSelect", json!(min_select));
            keys.insert("maxSelect", json!(max_select));
        }
        FieldKind::Json { max_size } => {
            keys.insert("maxSize", json!(max_size));
        }
        FieldKind::Password {
            min,
            max,
            pattern,
            cost,
        } => {
            keys.insert("min", json!(min));
            keys.insert("max", json!(max));
            keys.insert("pattern", json!(pattern));
            keys.insert("cost", json!(cost));
        }
    }
}

fn parse_field(value: &Value) -> Result<Field, WrongType> {
    let obj = value.as_object().ok_or_else(|| WrongType::at("fields"))?;
    let type_name = read_str(obj, "type", "")?;
    let default_kind = FieldKind::default_for(&type_name).ok_or_else(|| WrongType::at("type"))?;
    Ok(Field {
        id: read_str(obj, "id", "")?,
        name: read_str(obj, "name", "")?,
        system: read_bool(obj, "system", false)?,
        hidden: read_bool(obj, "hidden", false)?,
        presentable: read_bool(obj, "presentable", false)?,
        required: read_bool(obj, "required", false)?,
        help: read_str(obj, "help", "")?,
        kind: parse_kind_options(obj, default_kind)?,
    })
}

fn parse_kind_options(obj: &Map<String, Value>, kind: FieldKind) -> Result<FieldKind, WrongType> {
    Ok(match kind {
        FieldKind::Text { .. } => FieldKind::Text {
            min: read_i64(obj, "min", 0)?,
            max: read_i64(obj, "max", 0)?,
            pattern: read_str(obj, "pattern", "")?,
            autogenerate_pattern: read_str(obj, "autogeneratePattern", "")?,
            primary_key: read_bool(obj, "primaryKey", false)?,
        },
        FieldKind::Number { .. } => FieldKind::Number {
            min: read_opt_f64(obj, "min")?,
            max: read_opt_f64(obj, "max")?,
            only_int: read_bool(obj, "onlyInt", false)?,
        },
        FieldKind::Email { .. } => FieldKind::Email {
            only_domains: read_str_list(obj, "onlyDomains")?,
            except_domains: read_str_list(obj, "exceptDomains")?,
        },
        FieldKind::Url { .. } => FieldKind::Url {
            only_domains: read_str_list(obj, "onlyDomains")?,
            except_domains: read_str_list(obj, "exceptDomains")?,
        },
        FieldKind::Editor { .. } => FieldKind::Editor {
            max_size: read_i64(obj, "maxSize", 0)?,
            convert_urls: read_bool(obj, "convertURLs", false)?,
        },
        FieldKind::Date { .. } => FieldKind::Date {
            min: parse_date_option(obj, "min")?,
            max: parse_date_option(obj, "max")?,
        },
        FieldKind::Autodate { .. } => FieldKind::Autodate {
            on_create: read_bool(obj, "onCreate", false)?,
            on_update: read_bool(obj, "onUpdate", false)?,
        },
        FieldKind::Select { .. } => FieldKind::Select {
            values: read_str_list(obj, "values")?,
            max_select: read_i64(obj, "maxSelect", 0)?,
        },
        FieldKind::File { .. } => FieldKind::File {
            max_select: read_i64(obj, "maxSelect", 0)?,
            max_size: read_i64(obj, "maxSize", 0)?,
            mime_types: read_str_list(obj, "mimeTypes")?,
            thumbs: read_str_list(obj, "thumbs")?,
            protected: read_bool(obj, "protected", false)?,
        },
        FieldKind::Relation { .. } => FieldKind::Relation {
            collection_id: read_str(obj, "collectionId", "")?,
            cascade_delete: read_bool(obj, "cascadeDelete", false)?,
            min_select: read_i64(obj, "minSelect", 0)?,
            max_select: read_i64(obj, "maxSelect", 0)?,
        },
        FieldKind::Json { .. } => FieldKind::Json {
            max_size: read_i64(obj, "maxSize", 0)?,
        },
        FieldKind::Password { .. } => FieldKind::Password {
            min: read_i64(obj, "min", 0)?,
            max: read_i64(obj, "max", 0)?,
            pattern: read_str(obj, "pattern", "")?,
            cost: read_i64(obj, "cost", 0)?,
        },
        kind @ (FieldKind::Bool | FieldKind::GeoPoint) => kind,
    })
}

/// Date limits are stored in the canonical datetime form; text that is not
/// a datetime becomes `""` (no limit), as the reference decodes it.
fn parse_date_option(obj: &Map<String, Value>, key: &str) -> Result<String, WrongType> {
    let raw = read_str(obj, key, "")?;
    Ok(crate::datetime::normalize(&raw).unwrap_or_default())
}

/// Decodes a `fields` array with the reference's list semantics: a field
/// without an id gets `<type><crc32(name)>` (made unique within the list) and
/// replaces an earlier field of the same name; a field whose id is already in
/// the list replaces that field in place.
pub fn fields_from_json(value: &Value) -> Result<Vec<Field>, WrongType> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(WrongType::at("fields")),
    };
    let mut list: Vec<Field> = Vec::with_capacity(items.len());
    for item in items {
        add_to_fields_list(&mut list, parse_field(item)?);
    }
    Ok(list)
}

/// Adds `field` to `list` the way the reference's fields list does (see
/// `fields_from_json`): replace by name when the id was generated, replace
/// by id when it was given, append otherwise.
pub fn add_to_fields_list(list: &mut Vec<Field>, mut field: Field) {
    if field.id.is_empty() {
        let base = ids::field_id(field.type_name(), &field.name);
        field.id = ids::first_free(&base, |id| list.iter().any(|f| f.id == id));
        let same_name = list
            .iter()
            .position(|f| !field.name.is_empty() && f.name == field.name);
        if let Some(pos) = same_name {
            field.id = list[pos].id.clone();
            list[pos] = field;
            return;
        }
    } else if let Some(pos) = list.iter().position(|f| f.id == field.id) {
        list[pos] = field;
        return;
    }
    list.push(field);
}

pub fn fields_to_json(fields: &[Field]) -> Value {
    Value::Array(fields.iter().map(Field::to_json).collect())
}

// ---------------------------------------------------------------------------
// Collections

/// Keys of the options object that hold a `{secret, duration}` token config.
pub const TOKEN_KEYS: &[&str] = &[
    "authToken",
    "passwordResetToken",
    "emailChangeToken",
    "verificationToken",
    "fileToken",
];

fn rule_value(rule: &Option<String>) -> Value {
    rule.as_ref()
        .map_or(Value::Null, |r| Value::String(r.clone()))
}

impl Collection {
    /// The collection as the collections API returns it: base keys in the
    /// reference's order, then the type's options flattened at the top level
    /// (`viewQuery` for views, the auth settings for auth collections) with
    /// every token `secret` and OAuth2 `clientSecret` left out.
    pub fn to_api_json(&self) -> Value {
        let mut out = self.base_json();
        for (key, value) in self.type_options() {
            out.insert(key.clone(), without_secrets(key, value));
        }
        Value::Object(out)
    }

    /// Like `to_api_json` but with the secrets: the complete state, used as
    /// the base a PATCH body is merged onto. Never send this to a client.
    pub fn to_full_json(&self) -> Value {
        let mut out = self.base_json();
        for (key, value) in self.type_options() {
            out.insert(key.clone(), value.clone());
        }
        Value::Object(out)
    }

    fn base_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("listRule".into(), rule_value(&self.list_rule));
        out.insert("viewRule".into(), rule_value(&self.view_rule));
        out.insert("createRule".into(), rule_value(&self.create_rule));
        out.insert("updateRule".into(), rule_value(&self.update_rule));
        out.insert("deleteRule".into(), rule_value(&self.delete_rule));
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.kind.as_str()));
        out.insert("fields".into(), fields_to_json(&self.fields));
        out.insert("indexes".into(), str_list_value(&self.indexes));
        out.insert("created".into(), json!(self.created));
        out.insert("updated".into(), json!(self.updated));
        out.insert("system".into(), json!(self.system));
        out
    }

    /// The options that belong to this collection's type: a base collection
    /// has none, a view only `viewQuery`, an auth collection its settings.
    fn type_options(&self) -> impl Iterator<Item = (&String, &Value)> {
        let kind = self.kind;
        self.options.iter().filter(move |(key, _)| match kind {
            CollectionType::Base => false,
            CollectionType::View => key.as_str() == "viewQuery",
            CollectionType::Auth => key.as_str() != "viewQuery",
        })
    }

    /// Reads one `_collections` row (selected with `COLLECTION_COLUMNS`).
    pub fn from_row(row: &Row) -> rusqlite::Result<Collection> {
        let kind_text: String = row.get("type")?;
        let kind = CollectionType::parse(&kind_text)
            .ok_or_else(|| row_error("type", format!("unknown collection type {kind_text:?}")))?;
        let fields_text: String = row.get("fields")?;
        let fields = serde_json::from_str::<Value>(&fields_text)
            .map_err(|e| row_error("fields", e.to_string()))
            .and_then(|v| {
                fields_from_json(&v)
                    .map_err(|e| row_error("fields", format!("bad value at {:?}", e.key)))
            })?;
        let indexes_text: String = row.get("indexes")?;
        let indexes: Vec<String> =
            serde_json::from_str(&indexes_text).map_err(|e| row_error("indexes", e.to_string()))?;
        let options_text: String = row.get("options")?;
        let options = match serde_json::from_str::<Value>(&options_text) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            Ok(_) => return Err(row_error("options", "not an object".to_string())),
            Err(e) => return Err(row_error("options", e.to_string())),
        };
        Ok(Collection {
            id: row.get("id")?,
            name: row.get("name")?,
            kind,
            system: sql_truthy(row.get("system")?),
            fields,
            indexes,
            list_rule: row.get("listRule")?,
            view_rule: row.get("viewRule")?,
            create_rule: row.get("createRule")?,
            update_rule: row.get("updateRule")?,
            delete_rule: row.get("deleteRule")?,
            options,
            created: row.get("created")?,
            updated: row.get("updated")?,
        })
    }

    /// The JSON text columns of this collection's `_collections` row, as the
    /// reference stores them (options include the secrets).
    pub fn storage_row(&self) -> CollectionRow {
        let options: Map<String, Value> = self
            .type_options()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        CollectionRow {
            fields: fields_to_json(&self.fields).to_string(),
            indexes: str_list_value(&self.indexes).to_string(),
            options: Value::Object(options).to_string(),
        }
    }
}

/// The JSON columns of a `_collections` row.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionRow {
    pub fields: String,
    pub indexes: String,
    pub options: String,
}

/// Removes what must never leave the server from one top-level option.
fn without_secrets(key: &str, value: &Value) -> Value {
    let mut value = value.clone();
    if TOKEN_KEYS.contains(&key) {
        if let Some(obj) = value.as_object_mut() {
            obj.remove("secret");
        }
    }
    if key == "oauth2" {
        let providers = value
            .as_object_mut()
            .and_then(|o| o.get_mut("providers"))
            .and_then(Value::as_array_mut);
        for provider in providers.into_iter().flatten() {
            if let Some(obj) = provider.as_object_mut() {
                obj.remove("clientSecret");
            }
        }
    }
    value
}

/// SQLite booleans may be stored as integers or as text by other writers.
fn sql_truthy(value: SqlValue) -> bool {
    match value {
        SqlValue::Integer(n) => n != 0,
        SqlValue::Real(f) => f != 0.0,
        SqlValue::Text(t) => matches!(t.to_ascii_lowercase().as_str(), "1" | "true"),
        SqlValue::Null | SqlValue::Blob(_) => false,
    }
}

#[derive(Debug)]
struct RowDecodeError(String);

impl std::fmt::Display for RowDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowDecodeError {}

fn row_error(column: &str, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        Type::Text,
        Box::new(RowDecodeError(format!("_collections.{column}: {detail}"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn reference_rows() -> Option<Vec<Value>> {
        let text = std::fs::read_to_string("/work/ref/collections.json").ok()?;
        serde_json::from_str::<Vec<Value>>(&text).ok()
    }

    #[test]
    fn reference_fields_round_trip_byte_for_byte() {
        let Some(rows) = reference_rows() else { return };
        for row in rows {
            let stored = row["fields"].as_str().unwrap_or("[]");
            let parsed: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
            let fields = fields_from_json(&parsed).unwrap_or_default();
            assert!(!fields.is_empty());
            assert_eq!(
                fields_to_json(&fields).to_string(),
                stored,
                "{}",
                row["name"]
            );
        }
    }

    #[test]
    fn reference_rows_load_and_hide_secrets() {
        let Some(rows) = reference_rows() else { return };
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
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM _collections WHERE name = 'users'");
        let users = conn.query_row(&sql, [], Collection::from_row).unwrap();
        assert_eq!(users.id, "_pb_users_auth_");
        assert!(!users.system);
        let api = users.to_api_json();
        let keys: Vec<&str> = api
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "listRule",
                "viewRule",
                "createRule",
                "updateRule",
                "deleteRule",
                "name",
                "type",
                "fields",
                "indexes",
                "created",
                "updated",
                "system",
                "authRule",
                "manageRule",
                "authAlert",
                "oauth2",
                "passwordAuth",
                "mfa",
                "otp",
                "authToken",
                "passwordResetToken",
                "emailChangeToken",
                "verificationToken",
                "fileToken",
                "verificationTemplate",
                "resetPasswordTemplate",
                "confirmEmailChangeTemplate"
            ]
        );
        assert_eq!(api["authToken"], json!({"duration": 432000}));
        assert!(!api.to_string().contains("\"secret\""));
        // the stored row keeps its secrets
        let row = users.storage_row();
        assert!(row.options.contains("\"secret\""));
        let original = rows.iter().find(|r| r["name"] == "users").unwrap();
        assert_eq!(row.fields, original["fields"].as_str().unwrap());
        assert_eq!(row.indexes, original["indexes"].as_str().unwrap());
        assert_eq!(row.options, original["options"].as_str().unwrap());

        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM _collections WHERE name = '_mfas'");
        let mfas = conn.query_row(&sql, [], Collection::from_row).unwrap();
        assert!(mfas.system);
        let keys = mfas.to_api_json().as_object().unwrap().len();
        assert_eq!(keys, 13, "a base collection has no option keys");
    }

    #[test]
    fn unknown_types_and_wrong_value_types_are_errors() {
        assert!(Field::from_json(&json!({"name": "x", "type": "wat"})).is_err());
        assert!(Field::from_json(&json!({"name": "x"})).is_err());
        let err = Field::from_json(&json!({"name": "x", "type": "text", "min": "3"})).unwrap_err();
        assert!(err.contains_key("min"));
        assert!(Field::from_json(&json!({"name": 5, "type": "text"})).is_err());
    }

    #[test]
    fn defaults_fill_missing_options() {
        let f = Field::from_json(&json!({"name": "n", "type": "number", "max": 100})).unwrap();
        assert_eq!(
            f.to_json(),
            json!({"help": "", "hidden": false, "id": "", "max": 100, "min": null, "name": "n",
                   "onlyInt": false, "presentable": false, "required": false, "system": false,
                   "type": "number"})
        );
        let d =
            Field::from_json(&json!({"name": "a", "type": "autodate", "onCreate": true})).unwrap();
        let keys: Vec<String> = d.to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "hidden",
                "id",
                "name",
                "onCreate",
                "onUpdate",
                "presentable",
                "system",
                "type"
            ]
        );
        let fractional =
            Field::from_json(&json!({"name": "n", "type": "number", "min": 0.5})).unwrap();
        assert_eq!(fractional.to_json()["min"], json!(0.5));
    }

    #[test]
    fn list_semantics_follow_the_reference() {
        // same name without ids: the later definition replaces the earlier one
        let list = fields_from_json(&json!([
            {"name": "v", "type": "text"}, {"name": "v", "type": "number"}
        ]))
        .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].type_name(), "number");
        assert_eq!(list[0].id, "text1801730948");
        // explicit ids are kept; a generated id avoids taken ones
        let list = fields_from_json(&json!([
            {"id": "text1801730948", "name": "w", "type": "text"}, {"name": "v", "type": "text"}
        ]))
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].id, "text18017309482");
    }
}
