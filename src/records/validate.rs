//! Validation of one field's (already coerced) value against its options,
//! with the reference's error codes, messages and params. Each check
//! returns the first failing rule only, as the reference does.
//!
//! Pure functions: checks that need the database (relation ids exist,
//! unique indexes) live in `relations` and `sql`.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;
use serde_json::{json, Value};

use super::cast::{self, format_float_for_message};
use super::formats;
use crate::collections::{Field, FieldKind};
use crate::datetime;

/// Text fields with `max: 0` allow this many characters.
pub const DEFAULT_TEXT_MAX_CHARS: usize = 5000;
/// Editor fields with `maxSize: 0` allow this many bytes.
pub const DEFAULT_EDITOR_MAX_BYTES: i64 = 5 * 1024 * 1024;
/// Json fields with `maxSize: 0` allow this many bytes of serialized JSON.
pub const DEFAULT_JSON_MAX_BYTES: i64 = 1024 * 1024;
/// How many compiled field patterns a thread keeps.
const REGEX_CACHE_CAPACITY: usize = 256;

/// A validation error as it appears under `data.<field>`. The reference
/// trims messages and ends them with a period, after filling in values
/// (so `Invalid value {v}` with `v = "a "` reads `Invalid value a.`).
pub fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": finish_message(message) })
}

/// Like [`error`], with the `params` object the reference adds to some codes.
pub fn error_with(code: &str, message: &str, params: Value) -> Value {
    json!({ "code": code, "message": finish_message(message), "params": params })
}

fn finish_message(message: &str) -> String {
    let trimmed = message.trim();
    if trimmed.ends_with('.') {
        trimmed.to_string()
    } else {
        format!("{trimmed}.")
    }
}

pub fn required_error() -> Value {
    error("validation_required", "Cannot be blank.")
}

/// Checks `value` against the field's type rules; `None` when valid.
/// Autodate fields are never invalid; password fields are only checked for
/// presence (their plain-text rules belong to the auth code).
pub fn validate_field(field: &Field, value: &Value) -> Option<Value> {
    match &field.kind {
        FieldKind::Text {
            min,
            max,
            pattern,
            primary_key,
            ..
        } => check_text(
            field.required || *primary_key,
            *min,
            *max,
            pattern,
            str_of(value),
        ),
        FieldKind::Number { min, max, only_int } => check_number(
            field.required,
            *min,
            *max,
            *only_int,
            value.as_f64().unwrap_or(0.0),
        ),
        FieldKind::Bool => (field.required && value != &Value::Bool(true)).then(required_error),
        FieldKind::Email {
            only_domains,
            except_domains,
        } => check_email(field.required, only_domains, except_domains, str_of(value)),
        FieldKind::Url {
            only_domains,
            except_domains,
        } => check_url(field.required, only_domains, except_domains, str_of(value)),
        FieldKind::Editor { max_size, .. } => {
            check_editor(field.required, *max_size, str_of(value))
        }
        FieldKind::Date { min, max } => check_date(field.required, min, max, str_of(value)),
        FieldKind::Autodate { .. } => None,
        FieldKind::Select { values, max_select } => {
            check_select(field.required, values, *max_select, &strings_of(value))
        }
        FieldKind::Relation {
            min_select,
            max_select,
            ..
        } => check_relation_count(field.required, *min_select, *max_select, &strings_of(value)),
        FieldKind::File { max_select, .. } => {
            check_file_count(field.required, *max_select, &strings_of(value))
        }
        FieldKind::Json { max_size } => check_json(field.required, *max_size, value),
        FieldKind::Password { .. } => {
            (field.required && str_of(value).is_empty()).then(required_error)
        }
        FieldKind::GeoPoint => check_geo_point(field.required, value),
    }
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn strings_of(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) if !s.is_empty() => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Text rules, also used for record ids. Lengths count characters.
pub fn check_text(required: bool, min: i64, max: i64, pattern: &str, text: &str) -> Option<Value> {
    if text.is_empty() {
        return required.then(required_error);
    }
    let length = text.chars().count();
    let min = usize::try_from(min).unwrap_or(0);
    if min > 0 && length < min {
        return Some(error_with(
            "validation_min_text_constraint",
            &format!("Must be at least {min} character(s)."),
            json!({ "min": min }),
        ));
    }
    let max = match usize::try_from(max) {
        Ok(0) | Err(_) => DEFAULT_TEXT_MAX_CHARS,
        Ok(max) => max,
    };
    if length > max {
        return Some(error_with(
            "validation_max_text_constraint",
            &format!("Must be no more than {max} character(s)."),
            json!({ "max": max }),
        ));
    }
    if !pattern.is_empty() && !pattern_matches(pattern, text) {
        return Some(error("validation_invalid_format", "Invalid value format."));
    }
    None
}

/// Matches `text` against a field's `pattern`; a pattern that does not
/// compile matches nothing (the collection check should have refused it).
fn pattern_matches(pattern: &str, text: &str) -> bool {
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
    }
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= REGEX_CACHE_CAPACITY && !cache.contains_key(pattern) {
            cache.clear();
        }
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok())
            .as_ref()
            .is_some_and(|regex| regex.is_match(text))
    })
}

fn check_number(
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    only_int: bool,
    n: f64,
) -> Option<Value> {
    // Zero is "blank": only `required` applies to it, not min/max.
    if n == 0.0 {
        return required.then(required_error);
    }
    if only_int && n.fract() != 0.0 {
        return Some(error(
            "validation_only_int_constraint",
            "Decimal numbers are not allowed.",
        ));
    }
    if let Some(min) = min.filter(|&min| n < min) {
        return Some(error_with(
            "validation_min_number_constraint",
            &format!(
                "Must be greater or equal than {}.",
                format_float_for_message(min)
            ),
            json!({ "min": cast::number_value(min) }),
        ));
    }
    if let Some(max) = max.filter(|&max| n > max) {
        return Some(error_with(
            "validation_max_number_constraint",
            &format!(
                "Must be less or equal than {}.",
                format_float_for_message(max)
            ),
            json!({ "max": cast::number_value(max) }),
        ));
    }
    None
}

/// The error for a number that is NaN or infinite.
pub fn not_a_number_error() -> Value {
    error(
        "validation_not_a_number",
        "The submitted number is not properly formatted.",
    )
}

fn check_email(required: bool, only: &[String], except: &[String], email: &str) -> Option<Value> {
    if email.is_empty() {
        return required.then(required_error);
    }
    if !formats::is_email(email) {
        return Some(error(
            "validation_is_email",
            "Must be a valid email address.",
        ));
    }
    (!domain_allowed(formats::email_domain(email), only, except)).then(|| {
        error(
            "validation_email_domain_not_allowed",
            "Email domain is not allowed.",
        )
    })
}

fn check_url(required: bool, only: &[String], except: &[String], url: &str) -> Option<Value> {
    if url.is_empty() {
        return required.then(required_error);
    }
    if !formats::is_url(url) {
        return Some(error("validation_invalid_url", "Must be a valid url."));
    }
    (!domain_allowed(formats::url_domain(url), only, except)).then(|| {
        error(
            "validation_url_domain_not_allowed",
            "Url domain is not allowed.",
        )
    })
}

/// Domains compare exactly (case-sensitively), as in the reference.
fn domain_allowed(domain: &str, only: &[String], except: &[String]) -> bool {
    let listed = |list: &[String]| list.iter().any(|d| d == domain);
    (only.is_empty() || listed(only)) && !listed(except)
}

fn check_editor(required: bool, max_size: i64, html: &str) -> Option<Value> {
    if html.is_empty() {
        return required.then(required_error);
    }
    let limit = if max_size > 0 {
        max_size
    } else {
        DEFAULT_EDITOR_MAX_BYTES
    };
    (html.len() as u64 > limit as u64).then(|| {
        error_with(
            "validation_content_size_limit",
            &format!("The maximum allowed content size is {limit} bytes."),
            json!({ "maxSize": limit }),
        )
    })
}

fn check_date(required: bool, min: &str, max: &str, date: &str) -> Option<Value> {
    if date.is_empty() {
        return required.then(required_error);
    }
    let millis = datetime::parse_millis(date)?;
    if let Some(min) = datetime::parse_millis(min).filter(|&min| millis < min) {
        return Some(date_bound_error(
            "validation_min_greater_equal_than_required",
            "Must be no less than",
            min,
        ));
    }
    if let Some(max) = datetime::parse_millis(max).filter(|&max| millis > max) {
        return Some(date_bound_error(
            "validation_max_less_equal_than_required",
            "Must be no greater than",
            max,
        ));
    }
    None
}

/// The reference prints the bound with Go's time formats: `2020-01-01
/// 00:00:00.5 +0000 UTC` in the message, RFC 3339 in `params.threshold`.
fn date_bound_error(code: &str, text: &str, bound_millis: i64) -> Value {
    let stored = datetime::format_millis(bound_millis); // 2020-01-01 00:00:00.500Z
    let (seconds, fraction) = (&stored[..19], stored[20..23].trim_end_matches('0'));
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    let message = format!("{text} {seconds}{fraction} +0000 UTC.");
    let threshold = format!("{}T{}{fraction}Z", &seconds[..10], &seconds[11..]);
    error_with(code, &message, json!({ "threshold": threshold }))
}

fn too_many_values(max_select: i64) -> Value {
    error_with(
        "validation_too_many_values",
        &format!("Select no more than {max_select}."),
        json!({ "maxSelect": max_select }),
    )
}

fn check_select(
    required: bool,
    allowed: &[String],
    max_select: i64,
    chosen: &[&str],
) -> Option<Value> {
    if chosen.is_empty() {
        return required.then(required_error);
    }
    if max_select > 1 && chosen.len() as u64 > max_select as u64 {
        return Some(too_many_values(max_select));
    }
    let unknown = chosen.iter().find(|v| !allowed.iter().any(|a| a == *v))?;
    Some(error_with(
        "validation_invalid_value",
        &format!("Invalid value {unknown}"),
        json!({ "value": unknown }),
    ))
}

fn check_relation_count(
    required: bool,
    min_select: i64,
    max_select: i64,
    ids: &[&str],
) -> Option<Value> {
    if ids.is_empty() {
        return required.then(required_error);
    }
    if max_select > 1 && ids.len() as u64 > max_select as u64 {
        return Some(too_many_values(max_select));
    }
    (min_select > 0 && (ids.len() as u64) < min_select as u64).then(|| {
        error_with(
            "validation_not_enough_values",
            &format!("Select at least {min_select}."),
            json!({ "minSelect": min_select }),
        )
    })
}

fn check_file_count(required: bool, max_select: i64, names: &[&str]) -> Option<Value> {
    if names.is_empty() {
        return required.then(required_error);
    }
    (max_select > 1 && names.len() as u64 > max_select as u64).then(|| {
        error_with(
            "validation_too_many_files",
            &format!("The maximum allowed files is {max_select}."),
            json!({ "maxSelect": max_select }),
        )
    })
}

/// The error for file names that are neither stored on the record nor
/// uploaded with this request. The message lists them the way Go prints a
/// slice: `[a.png b.png]`.
pub fn invalid_files_error(names: &[String]) -> Value {
    error_with(
        "validation_invalid_file",
        &format!("Invalid new files: [{}].", names.join(" ")),
        json!({ "invalidFiles": names }),
    )
}

fn check_json(required: bool, max_size: i64, value: &Value) -> Option<Value> {
    if required && is_blank_json(value) {
        return Some(required_error());
    }
    let limit = if max_size > 0 {
        max_size
    } else {
        DEFAULT_JSON_MAX_BYTES
    };
    let size = serde_json::to_string(value).map_or(0, |text| text.len());
    (size as u64 > limit as u64).then(|| {
        error_with(
            "validation_json_size_limit",
            &format!("The maximum allowed JSON size is {limit} bytes."),
            json!({ "maxSize": limit }),
        )
    })
}

/// `null`, `""`, `[]` and `{}` are blank for a required json field; `0` and `false` are not.
fn is_blank_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn check_geo_point(required: bool, value: &Value) -> Option<Value> {
    let coordinate = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let (lon, lat) = (coordinate("lon"), coordinate("lat"));
    if lon == 0.0 && lat == 0.0 {
        return required.then(required_error);
    }
    // The reference reports latitude first when both are out of range.
    if !(-90.0..=90.0).contains(&lat) {
        return Some(error(
            "validation_invalid_latitude",
            "Latitude must be between -90 and 90 degrees.",
        ));
    }
    (!(-180.0..=180.0).contains(&lon)).then(|| {
        error(
            "validation_invalid_longitude",
            "Longitude must be between -180 and 180 degrees.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind, required: bool) -> Field {
        Field {
            id: "f1".into(),
            name: "f".into(),
            system: false,
            hidden: false,
            presentable: false,
            required,
            help: String::new(),
            kind,
        }
    }

    fn text(min: i64, max: i64, pattern: &str) -> FieldKind {
        FieldKind::Text {
            min,
            max,
            pattern: pattern.into(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        }
    }

    fn code(field: &Field, value: Value) -> Option<String> {
        validate_field(field, &value).map(|e| e["code"].as_str().unwrap_or("").to_string())
    }

    fn codes_ok(field: &Field, cases: &[(Value, Option<&str>)]) {
        for (value, want) in cases {
            assert_eq!(code(field, value.clone()).as_deref(), *want, "{value}");
        }
    }

    #[test]
    fn messages_end_with_one_period() {
        assert_eq!(
            error("c", "Invalid value a ")["message"],
            "Invalid value a."
        );
        assert_eq!(
            error("c", "Invalid value y.")["message"],
            "Invalid value y."
        );
        assert_eq!(error("c", "Invalid value  ")["message"], "Invalid value.");
    }

    #[test]
    fn text_min_max_pattern() {
        let f = field(text(3, 6, "^[a-z]+$"), false);
        codes_ok(
            &f,
            &[
                (json!(""), None),
                (json!("ab"), Some("validation_min_text_constraint")),
                (json!("abcdefg"), Some("validation_max_text_constraint")),
                (json!("ABCD"), Some("validation_invalid_format")),
                (json!("ééé"), Some("validation_invalid_format")),
                (json!(" abc"), Some("validation_invalid_format")),
                (json!("abcd"), None),
            ],
        );
        let err = validate_field(&f, &json!("ab")).unwrap();
        assert_eq!(err["message"], "Must be at least 3 character(s).");
        assert_eq!(err["params"], json!({"min": 3}));
    }

    #[test]
    fn text_lengths_count_characters_and_default_to_5000() {
        let f = field(text(0, 3, ""), false);
        assert_eq!(code(&f, json!("ééé")), None);
        let unbounded = field(text(0, 0, ""), true);
        assert_eq!(code(&unbounded, json!("x".repeat(5000))), None);
        let err = validate_field(&unbounded, &json!("x".repeat(5001))).unwrap();
        assert_eq!(err["params"], json!({"max": 5000}));
        assert_eq!(
            code(&unbounded, json!("")).as_deref(),
            Some("validation_required")
        );
    }

    #[test]
    fn number_rules_skip_zero_unless_required() {
        let f = field(
            FieldKind::Number {
                min: Some(1.0),
                max: Some(10.0),
                only_int: true,
            },
            false,
        );
        codes_ok(
            &f,
            &[
                (json!(0), None),
                (json!(11), Some("validation_max_number_constraint")),
                (json!(-3), Some("validation_min_number_constraint")),
                (json!(2.5), Some("validation_only_int_constraint")),
                (json!(10), None),
            ],
        );
        assert_eq!(
            validate_field(&f, &json!(11)).unwrap()["message"],
            "Must be less or equal than 10."
        );
        let ratio = field(
            FieldKind::Number {
                min: Some(-1.5),
                max: None,
                only_int: false,
            },
            true,
        );
        let err = validate_field(&ratio, &json!(-2)).unwrap();
        assert_eq!(err["message"], "Must be greater or equal than -1.5.");
        assert_eq!(err["params"], json!({"min": -1.5}));
        assert_eq!(
            code(&ratio, json!(0)).as_deref(),
            Some("validation_required")
        );
    }

    #[test]
    fn required_bool_must_be_true() {
        let f = field(FieldKind::Bool, true);
        codes_ok(
            &f,
            &[
                (json!(false), Some("validation_required")),
                (json!(true), None),
            ],
        );
    }

    #[test]
    fn email_format_and_domains() {
        let f = field(
            FieldKind::Email {
                only_domains: vec!["x.com".into()],
                except_domains: vec![],
            },
            false,
        );
        codes_ok(
            &f,
            &[
                (json!(""), None),
                (json!("bad"), Some("validation_is_email")),
                (json!("a@x.com"), None),
                (
                    json!("a@X.COM"),
                    Some("validation_email_domain_not_allowed"),
                ),
                (
                    json!("a@sub.x.com"),
                    Some("validation_email_domain_not_allowed"),
                ),
            ],
        );
    }

    #[test]
    fn url_format_and_domains() {
        let f = field(
            FieldKind::Url {
                only_domains: vec![],
                except_domains: vec!["bad.com".into()],
            },
            true,
        );
        codes_ok(
            &f,
            &[
                (json!(""), Some("validation_required")),
                (json!("not a url"), Some("validation_invalid_url")),
                (
                    json!("https://bad.com/x"),
                    Some("validation_url_domain_not_allowed"),
                ),
                (json!("https://BAD.com"), None),
                (json!("bad.com"), None),
            ],
        );
    }

    #[test]
    fn editor_size_limit_in_bytes() {
        let f = field(
            FieldKind::Editor {
                max_size: 20,
                convert_urls: false,
            },
            false,
        );
        assert_eq!(code(&f, json!("12345678901234567890")), None);
        let err = validate_field(&f, &json!("123456789012345678901")).unwrap();
        assert_eq!(err["code"], "validation_content_size_limit");
        assert_eq!(
            err["message"],
            "The maximum allowed content size is 20 bytes."
        );
        assert_eq!(err["params"], json!({"maxSize": 20}));
    }

    #[test]
    fn date_bounds_print_go_times() {
        let f = field(
            FieldKind::Date {
                min: "2020-01-01 00:00:00.500Z".into(),
                max: "2030-01-01 00:00:00.000Z".into(),
            },
            false,
        );
        let low = validate_field(&f, &json!("2019-01-01 00:00:00.000Z")).unwrap();
        assert_eq!(low["code"], "validation_min_greater_equal_than_required");
        assert_eq!(
            low["message"],
            "Must be no less than 2020-01-01 00:00:00.5 +0000 UTC."
        );
        assert_eq!(
            low["params"],
            json!({"threshold": "2020-01-01T00:00:00.5Z"})
        );
        let high = validate_field(&f, &json!("2030-01-02 00:00:00.000Z")).unwrap();
        assert_eq!(high["code"], "validation_max_less_equal_than_required");
        assert_eq!(
            high["message"],
            "Must be no greater than 2030-01-01 00:00:00 +0000 UTC."
        );
        assert_eq!(high["params"], json!({"threshold": "2030-01-01T00:00:00Z"}));
        assert_eq!(code(&f, json!("2025-01-01 00:00:00.000Z")), None);
        assert_eq!(code(&f, json!("")), None);
    }

    #[test]
    fn select_counts_before_values() {
        let f = field(
            FieldKind::Select {
                values: vec!["a".into(), "b".into(), "c".into(), "d".into()],
                max_select: 3,
            },
            true,
        );
        codes_ok(
            &f,
            &[
                (json!([]), Some("validation_required")),
                (
                    json!(["z", "a", "b", "c"]),
                    Some("validation_too_many_values"),
                ),
                (json!(["a", "z"]), Some("validation_invalid_value")),
                (json!(["c", "a"]), None),
            ],
        );
        let err = validate_field(&f, &json!(["a "])).unwrap();
        assert_eq!(err["message"], "Invalid value a.");
        assert_eq!(err["params"], json!({"value": "a "}));
        let err = validate_field(&f, &json!(["a", "b", "c", "d"])).unwrap();
        assert_eq!(err["message"], "Select no more than 3.");
        assert_eq!(err["params"], json!({"maxSelect": 3}));
    }

    #[test]
    fn relation_counts() {
        let f = field(
            FieldKind::Relation {
                collection_id: "c".into(),
                cascade_delete: false,
                min_select: 2,
                max_select: 3,
            },
            false,
        );
        codes_ok(
            &f,
            &[
                (json!([]), None),
                (json!(["a"]), Some("validation_not_enough_values")),
                (
                    json!(["a", "b", "c", "d"]),
                    Some("validation_too_many_values"),
                ),
                (json!(["a", "b"]), None),
            ],
        );
        assert_eq!(
            validate_field(&f, &json!(["a"])).unwrap()["params"],
            json!({"minSelect": 2})
        );
    }

    #[test]
    fn file_counts_and_unknown_names() {
        let f = field(
            FieldKind::File {
                max_select: 3,
                max_size: 0,
                mime_types: vec![],
                thumbs: vec![],
                protected: false,
            },
            true,
        );
        codes_ok(
            &f,
            &[
                (json!([]), Some("validation_required")),
                (
                    json!(["a", "b", "c", "d"]),
                    Some("validation_too_many_files"),
                ),
                (json!(["a"]), None),
            ],
        );
        let err = invalid_files_error(&["x.png".into(), "y.png".into()]);
        assert_eq!(err["message"], "Invalid new files: [x.png y.png].");
        assert_eq!(err["params"], json!({"invalidFiles": ["x.png", "y.png"]}));
    }

    #[test]
    fn json_blank_and_size() {
        let f = field(FieldKind::Json { max_size: 10 }, true);
        codes_ok(
            &f,
            &[
                (json!(null), Some("validation_required")),
                (json!(""), Some("validation_required")),
                (json!([]), Some("validation_required")),
                (json!({}), Some("validation_required")),
                (json!(0), None),
                (json!(false), None),
                (json!(123456789), None),
                (json!([1, 2, 3, 4]), None),
                (json!(12345678901u64), Some("validation_json_size_limit")),
            ],
        );
        let default = field(FieldKind::Json { max_size: 0 }, false);
        let big = json!("y".repeat(2 * 1024 * 1024));
        let err = validate_field(&default, &big).unwrap();
        assert_eq!(err["params"], json!({"maxSize": 1048576}));
    }

    #[test]
    fn geo_point_ranges_latitude_first() {
        let f = field(FieldKind::GeoPoint, true);
        codes_ok(
            &f,
            &[
                (json!({"lon": 0, "lat": 0}), Some("validation_required")),
                (json!({"lon": 0, "lat": 1}), None),
                (
                    json!({"lon": 181, "lat": 0}),
                    Some("validation_invalid_longitude"),
                ),
                (
                    json!({"lon": 0, "lat": -91}),
                    Some("validation_invalid_latitude"),
                ),
                (
                    json!({"lon": 200, "lat": 100}),
                    Some("validation_invalid_latitude"),
                ),
            ],
        );
    }

    #[test]
    fn autodate_is_never_invalid_and_password_needs_a_value() {
        let a = field(
            FieldKind::Autodate {
                on_create: true,
                on_update: true,
            },
            true,
        );
        assert_eq!(code(&a, json!("")), None);
        let p = field(
            FieldKind::Password {
                min: 8,
                max: 0,
                pattern: String::new(),
                cost: 0,
            },
            true,
        );
        assert_eq!(code(&p, json!("")).as_deref(), Some("validation_required"));
        assert_eq!(code(&p, json!("$2a$10$hash")), None);
    }
}
