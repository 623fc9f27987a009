//! A record's values and the conversion of request input into them.
//!
//! [`RecordValues`] holds one record as field name → value, where each value
//! already has the JSON shape the API shows and SQL stores (text fields as
//! strings, numbers as numbers, multi-value fields as arrays, ...). The
//! `coerce` functions turn any request JSON into that shape per field type,
//! exactly as loosely as the reference does (bad numbers become 0, bad
//! dates `""`), leaving rejections to `validate`.
//!
//! Pure functions: no SQL, no HTTP, no validation.

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::cast;
use crate::collections::{Collection, FieldKind};
use crate::datetime;

/// One record: field name → value in the API's JSON shape, in schema order
/// when built from a collection. Values for every field are present after
/// `prepare_*` and after reading from SQL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordValues(IndexMap<String, Value, BuildFieldHasher>);

impl RecordValues {
    pub fn new() -> RecordValues {
        RecordValues::default()
    }

    /// Room for `fields` values without growing.
    pub fn with_capacity(fields: usize) -> RecordValues {
        RecordValues(IndexMap::with_capacity_and_hasher(fields, BuildFieldHasher))
    }

    /// Every field of `collection` at its zero value (what a new record starts as).
    pub fn zero(collection: &Collection) -> RecordValues {
        let mut values = RecordValues::with_capacity(collection.fields.len());
        for field in &collection.fields {
            values.set(&field.name, zero_value(&field.kind));
        }
        values
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn set(&mut self, name: &str, value: Value) {
        // Most sets replace a value (a draft starts from every field's zero
        // value): only a new name needs its own copy.
        match self.0.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.0.insert(name.to_string(), value);
            }
        }
    }

    /// Adds a value under a name the record does not have yet, looking the
    /// name up once rather than twice as `set` does (reading a row: each
    /// field once). A name already present has its value replaced.
    pub fn push_new(&mut self, name: &str, value: Value) {
        self.0.insert(name.to_string(), value);
    }

    /// Removes the value of `name` and hands over its name and value. The
    /// last value takes the removed one's place, so the order of the rest
    /// changes.
    pub fn take(&mut self, name: &str) -> Option<(String, Value)> {
        self.0.swap_remove_entry(name)
    }

    /// The record id (`""` when not set yet).
    pub fn id(&self) -> &str {
        self.get_str("id")
    }

    /// A text value, or `""` when missing or not text.
    pub fn get_str(&self, name: &str) -> &str {
        self.0.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// The strings of a single- or multi-value field (select, relation,
    /// file): `"x"` → `["x"]`, `""` → `[]`.
    pub fn get_strings(&self, name: &str) -> Vec<&str> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.0.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn get_f64(&self, name: &str) -> f64 {
        self.0.get(name).and_then(Value::as_f64).unwrap_or(0.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
}

impl From<Map<String, Value>> for RecordValues {
    fn from(map: Map<String, Value>) -> RecordValues {
        let mut values = RecordValues::with_capacity(map.len());
        values.0.extend(map);
        values
    }
}

/// Hashes field names for [`RecordValues`] with one multiply and rotate per
/// word (the scheme of rustc's own `FxHasher`) instead of the standard
/// SipHash. A record's keys are the field names of its collection, set by
/// the collection's definition and never by a request, so there is no
/// flooding to resist; SipHash cost a twentieth of every record read.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildFieldHasher;

impl std::hash::BuildHasher for BuildFieldHasher {
    type Hasher = FieldHasher;

    fn build_hasher(&self) -> FieldHasher {
        FieldHasher(0)
    }
}

/// See [`BuildFieldHasher`].
#[derive(Debug, Clone, Copy)]
pub struct FieldHasher(u64);

/// An odd constant with well-mixed bits (from rustc's `FxHasher`).
const FIELD_HASH_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FieldHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FIELD_HASH_SEED);
    }
}

impl std::hash::Hasher for FieldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        // `str`'s Hash ends with a 0xff byte so that "ab"+"c" and "a"+"bc"
        // differ; one word for it is plenty.
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The value a field has when nothing was set: `""`, `0`, `false`, `[]`,
/// `null` (json) or `{"lon":0,"lat":0}`.
pub fn zero_value(kind: &FieldKind) -> Value {
    match kind {
        FieldKind::Number { .. } => json!(0),
        FieldKind::Bool => Value::Bool(false),
        FieldKind::Json { .. } => Value::Null,
        FieldKind::GeoPoint => geo_point(0.0, 0.0),
        kind if kind.is_multi() => Value::Array(Vec::new()),
        _ => Value::String(String::new()),
    }
}

/// Why an input value has no stored form at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoerceError {
    /// A number field received `"NaN"`, `"Infinity"` or similar.
    NotANumber,
}

/// Converts request JSON to the stored shape of a field of type `kind`.
/// Autodate and password values are set by the server, never coerced from
/// input; for them this returns the text form of the input.
pub fn coerce(kind: &FieldKind, raw: &Value) -> Result<Value, CoerceError> {
    match kind {
        FieldKind::Number { .. } => coerce_number(raw),
        FieldKind::Bool => Ok(Value::Bool(cast::to_bool(raw))),
        FieldKind::Date { .. } => Ok(Value::String(coerce_date(raw))),
        FieldKind::Json { .. } => Ok(coerce_json(raw)),
        FieldKind::GeoPoint => Ok(coerce_geo_point(raw)),
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => {
            Ok(shape_list(kind, cast::to_unique_strings(raw)))
        }
        FieldKind::Text { .. }
        | FieldKind::Email { .. }
        | FieldKind::Url { .. }
        | FieldKind::Editor { .. }
        | FieldKind::Autodate { .. }
        | FieldKind::Password { .. } => Ok(Value::String(cast::to_text(raw))),
    }
}

/// A number, or an error for NaN and infinities (which the reference
/// refuses with `validation_not_a_number`).
pub fn coerce_number(raw: &Value) -> Result<Value, CoerceError> {
    finite_number(cast::to_float(raw))
}

/// A float as a stored number, refusing NaN and infinities.
pub fn finite_number(f: f64) -> Result<Value, CoerceError> {
    if f.is_finite() {
        Ok(cast::number_value(f))
    } else {
        Err(CoerceError::NotANumber)
    }
}

/// A datetime in the stored form, or `""` for anything unparseable
/// (including non-strings and text with surrounding spaces).
fn coerce_date(raw: &Value) -> String {
    match raw {
        Value::String(text) if text.trim() == text => datetime::normalize(text).unwrap_or_default(),
        _ => String::new(),
    }
}

/// JSON values are kept, except that a string holding a JSON document
/// (without leading whitespace, as the reference requires) is decoded.
fn coerce_json(raw: &Value) -> Value {
    match raw {
        Value::String(text) if !text.starts_with(char::is_whitespace) => {
            serde_json::from_str(text).unwrap_or_else(|_| raw.clone())
        }
        other => other.clone(),
    }
}

/// `{"lon", "lat"}` from an object (or a string holding one); a key that
/// is missing or not a number counts as 0, anything else is the zero point.
fn coerce_geo_point(raw: &Value) -> Value {
    let decoded;
    let object = match raw {
        Value::Object(object) => object,
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => {
                decoded = object;
                &decoded
            }
            _ => return geo_point(0.0, 0.0),
        },
        _ => return geo_point(0.0, 0.0),
    };
    let coordinate = |key: &str| object.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    geo_point(coordinate("lon"), coordinate("lat"))
}

pub fn geo_point(lon: f64, lat: f64) -> Value {
    json!({ "lon": cast::number_value(lon), "lat": cast::number_value(lat) })
}

/// A list of ids/names in the field's shape: the array itself for
/// multi-value fields, the last element (or `""`) for single-value ones.
pub fn shape_list(kind: &FieldKind, items: Vec<String>) -> Value {
    if kind.is_multi() {
        Value::Array(items.into_iter().map(Value::String).collect())
    } else {
        Value::String(items.into_iter().last().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn values_are_set_replaced_and_taken_by_name() {
        let mut values = RecordValues::with_capacity(2);
        values.set("title", json!("a"));
        values.set("views", json!(1));
        values.set("title", json!("b"));
        assert_eq!(values.iter().count(), 2);
        assert_eq!(values.get("title"), Some(&json!("b")));
        assert_eq!(
            values.take("title"),
            Some(("title".to_string(), json!("b")))
        );
        assert_eq!(values.take("title"), None);
        assert_eq!(values.get("views"), Some(&json!(1)));
        // many names, some sharing long prefixes, all kept apart
        let names: Vec<String> = (0..500)
            .map(|n| format!("field_with_a_long_name_{n}"))
            .collect();
        for (n, name) in names.iter().enumerate() {
            values.set(name, json!(n));
        }
        for (n, name) in names.iter().enumerate() {
            assert_eq!(values.get(name), Some(&json!(n)));
        }
    }

    #[test]
    fn pushed_values_keep_their_order_and_a_repeat_replaces() {
        let mut values = RecordValues::with_capacity(3);
        values.push_new("id", json!("r1"));
        values.push_new("title", json!("a"));
        values.push_new("views", json!(2));
        values.push_new("title", json!("b"));
        let names: Vec<&str> = values.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["id", "title", "views"]);
        assert_eq!(values.get("title"), Some(&json!("b")));
    }

    #[test]
    fn field_names_hash_by_their_bytes() {
        let hash = |name: &str| BuildFieldHasher.hash_one(name);
        assert_eq!(hash("title"), hash("title"));
        assert_ne!(hash("title"), hash("titles"));
        assert_ne!(hash("a"), hash("b"));
        assert_ne!(hash("12345678"), hash("123456789"));
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

    fn number() -> FieldKind {
        FieldKind::Number {
            min: None,
            max: None,
            only_int: false,
        }
    }

    fn select(max_select: i64) -> FieldKind {
        FieldKind::Select {
            values: vec!["a".into(), "b".into()],
            max_select,
        }
    }

    fn relation(max_select: i64) -> FieldKind {
        FieldKind::Relation {
            collection_id: "c".into(),
            cascade_delete: false,
            min_select: 0,
            max_select,
        }
    }

    fn ok(kind: &FieldKind, raw: Value) -> Value {
        coerce(kind, &raw).unwrap()
    }

    #[test]
    fn zero_values_per_type() {
        assert_eq!(zero_value(&text()), json!(""));
        assert_eq!(zero_value(&number()), json!(0));
        assert_eq!(zero_value(&FieldKind::Bool), json!(false));
        assert_eq!(zero_value(&FieldKind::Json { max_size: 0 }), json!(null));
        assert_eq!(
            zero_value(&FieldKind::GeoPoint),
            json!({"lon": 0, "lat": 0})
        );
        assert_eq!(zero_value(&select(1)), json!(""));
        assert_eq!(zero_value(&select(2)), json!([]));
        assert_eq!(zero_value(&relation(3)), json!([]));
    }

    #[test]
    fn text_is_stored_as_sent() {
        assert_eq!(ok(&text(), json!("  x  ")), json!("  x  "));
        assert_eq!(ok(&text(), json!(5)), json!("5"));
        assert_eq!(ok(&text(), json!(["a"])), json!(""));
    }

    #[test]
    fn numbers_coerce_loosely_but_refuse_nan() {
        assert_eq!(ok(&number(), json!("12.5")), json!(12.5));
        assert_eq!(ok(&number(), json!("1e3")), json!(1000));
        assert_eq!(ok(&number(), json!("abc")), json!(0));
        assert_eq!(ok(&number(), json!(null)), json!(0));
        assert_eq!(ok(&number(), json!("")), json!(0));
        assert_eq!(ok(&number(), json!(true)), json!(1));
        assert_eq!(ok(&number(), json!(3.0)), json!(3));
        for bad in ["NaN", "Infinity", "-Infinity", "inf"] {
            assert_eq!(
                coerce(&number(), &json!(bad)),
                Err(CoerceError::NotANumber),
                "{bad}"
            );
        }
    }

    #[test]
    fn bools_use_truthiness() {
        assert_eq!(ok(&FieldKind::Bool, json!("T")), json!(true));
        assert_eq!(ok(&FieldKind::Bool, json!("yes")), json!(false));
    }

    #[test]
    fn dates_normalise_or_become_empty() {
        let date = FieldKind::Date {
            min: String::new(),
            max: String::new(),
        };
        let cases = [
            (json!("2024-01-02T03:04:05Z"), "2024-01-02 03:04:05.000Z"),
            (
                json!("2024-01-02 03:04:05.123456Z"),
                "2024-01-02 03:04:05.123Z",
            ),
            (
                json!("2024-01-02 03:04:05+02:00"),
                "2024-01-02 01:04:05.000Z",
            ),
            (json!("2024-01-02"), "2024-01-02 00:00:00.000Z"),
            (
                json!("2024-01-02T03:04:05.123-05:30"),
                "2024-01-02 08:34:05.123Z",
            ),
            (json!("bad"), ""),
            (json!("2024-01-02T03:04"), ""),
            (json!(1700000000), ""),
            (json!(" 2024-01-02 "), ""),
            (json!("2024-02-30"), ""),
            (json!(["2024-01-02"]), ""),
        ];
        for (raw, want) in cases {
            assert_eq!(ok(&date, raw.clone()), json!(want), "{raw}");
        }
    }

    #[test]
    fn json_strings_holding_json_are_decoded() {
        let kind = FieldKind::Json { max_size: 0 };
        assert_eq!(ok(&kind, json!("null")), json!(null));
        assert_eq!(ok(&kind, json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(ok(&kind, json!("abc")), json!("abc"));
        assert_eq!(ok(&kind, json!(" [1] ")), json!(" [1] "));
        assert_eq!(ok(&kind, json!("[1] ")), json!([1]));
        assert_eq!(ok(&kind, json!("01")), json!("01"));
        assert_eq!(ok(&kind, json!("\"x\"")), json!("x"));
        assert_eq!(ok(&kind, json!("")), json!(""));
        assert_eq!(ok(&kind, json!([1, "two"])), json!([1, "two"]));
    }

    #[test]
    fn geo_points_take_numeric_coordinates_only() {
        let g = FieldKind::GeoPoint;
        assert_eq!(
            ok(&g, json!({"lon": 10, "lat": 20})),
            json!({"lon": 10, "lat": 20})
        );
        assert_eq!(ok(&g, json!({"lat": 5})), json!({"lon": 0, "lat": 5}));
        assert_eq!(
            ok(&g, json!({"lon": "10", "lat": "20.5"})),
            json!({"lon": 0, "lat": 0})
        );
        assert_eq!(
            ok(&g, json!({"lon": "abc", "lat": 2})),
            json!({"lon": 0, "lat": 2})
        );
        assert_eq!(
            ok(&g, json!("{\"lon\":1,\"lat\":2}")),
            json!({"lon": 1, "lat": 2})
        );
        assert_eq!(
            ok(&g, json!({"lon": 1, "lat": 2, "x": 3})),
            json!({"lon": 1, "lat": 2})
        );
        for zero in [json!(null), json!([1, 2]), json!(5), json!("abc")] {
            assert_eq!(ok(&g, zero.clone()), json!({"lon": 0, "lat": 0}), "{zero}");
        }
    }

    #[test]
    fn single_value_fields_keep_the_last_element() {
        assert_eq!(ok(&select(1), json!(["a", "b"])), json!("b"));
        assert_eq!(ok(&select(1), json!([])), json!(""));
        assert_eq!(ok(&select(1), json!(["b", ""])), json!("b"));
        assert_eq!(ok(&select(1), json!(5)), json!("5"));
        assert_eq!(ok(&relation(1), json!(["x", "y"])), json!("y"));
        assert_eq!(ok(&select(1), json!({"a": 1})), json!(""));
    }

    #[test]
    fn multi_value_fields_are_deduplicated_lists() {
        assert_eq!(ok(&select(3), json!("a")), json!(["a"]));
        assert_eq!(ok(&select(3), json!(["b", "a", "b"])), json!(["b", "a"]));
        assert_eq!(ok(&relation(3), json!("[\"x\",\"y\"]")), json!(["x", "y"]));
        assert_eq!(ok(&relation(3), json!(null)), json!([]));
    }

    #[test]
    fn record_values_accessors() {
        let mut values = RecordValues::new();
        values.set("id", json!("abc"));
        values.set("tags", json!(["a", "b"]));
        values.set("one", json!("x"));
        values.set("none", json!(""));
        assert_eq!(values.id(), "abc");
        assert_eq!(values.get_strings("tags"), vec!["a", "b"]);
        assert_eq!(values.get_strings("one"), vec!["x"]);
        assert!(values.get_strings("none").is_empty());
        assert_eq!(values.get_str("missing"), "");
    }
}
