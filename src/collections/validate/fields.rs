//! Checks of a collection's field list: duplicates, the fields every
//! collection type must have, system fields and types that may not change,
//! and each field's own options (`data.fields.<index>.<option>`).
//!
//! Reports the first list-level problem, like the reference; per-field
//! option errors are only reported once the list itself is sound.

use serde_json::{json, Map, Value};

use super::messages::{
    at_least, at_most, bad_format, blank_empty, error, error_with, in_excluded_list,
    length_between, nested, required,
};
use crate::collections::model::{Collection, CollectionType, Field, FieldKind};
use crate::collections::registry::Schema;

/// The largest integer a JSON number holds exactly (2^53 - 1).
pub const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// Names a field may not take: filter literals and the record keys the API adds.
const EXCLUDED_FIELD_NAMES: &[&str] = &[
    "null",
    "true",
    "false",
    "_rowid_",
    "collectionId",
    "collectionName",
    "expand",
];

/// Names auth collections reserve for request keys.
const RESERVED_AUTH_NAMES: &[&str] = &["passwordConfirm", "oldPassword"];

/// What the field checks look at.
pub struct FieldContext<'a> {
    pub candidate: &'a Collection,
    pub original: Option<&'a Collection>,
    /// The schema with the candidate in it (relations may point at it).
    pub schema: &'a Schema,
}

/// `^\w+$` in the reference's (ASCII) sense: letters, digits, underscore.
pub fn is_word(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The error for `data.fields`, if any.
pub fn check_fields(ctx: &FieldContext) -> Option<Value> {
    let fields = &ctx.candidate.fields;
    check_duplicates(fields)
        .or_else(|| check_required_fields(ctx))
        .or_else(|| {
            (!ctx.candidate.is_view())
                .then(|| check_system_fields_kept(ctx))
                .flatten()
        })
        .or_else(|| {
            (!ctx.candidate.is_view())
                .then(|| check_type_changes(ctx))
                .flatten()
        })
        .or_else(|| {
            ctx.candidate
                .is_auth()
                .then(|| check_reserved_names(fields))
                .flatten()
        })
        .or_else(|| check_options(ctx))
}

fn at_index(index: usize, error: Value) -> Value {
    json!({ index.to_string(): error })
}

fn check_duplicates(fields: &[Field]) -> Option<Value> {
    let mut ids: Vec<&str> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if ids.contains(&field.id.as_str()) {
            let err = error(
                "validation_duplicated_field_id",
                &format!("Duplicated or invalid field id {:?}", field.id),
            );
            return Some(at_index(i, json!({ "id": err })));
        }
        // names become columns, and SQLite column names ignore case
        let lower = field.name.to_lowercase();
        if names.contains(&lower) {
            let err = error_with(
                "validation_duplicated_field_name",
                &format!("Duplicated or invalid field name {}", field.name),
                json!({ "fieldName": field.name }),
            );
            return Some(at_index(i, json!({ "name": err })));
        }
        ids.push(&field.id);
        names.push(lower);
    }
    None
}

fn check_required_fields(ctx: &FieldContext) -> Option<Value> {
    let fields = &ctx.candidate.fields;
    if fields.is_empty() {
        return Some(required());
    }
    let has_pk = fields.iter().any(|f| f.name == "id" && f.is_primary_key());
    if !has_pk {
        return Some(error(
            "validation_missing_primary_key",
            "Missing or invalid \"id\" PK field.",
        ));
    }
    if ctx.candidate.kind != CollectionType::Auth {
        return None;
    }
    let must_have = [
        ("password", "password", true),
        ("tokenKey", "text", true),
        ("email", "email", false),
        ("emailVisibility", "bool", false),
        ("verified", "bool", false),
    ];
    for (name, type_name, hidden) in must_have {
        let Some(field) = fields
            .iter()
            .find(|f| f.name == name && f.type_name() == type_name)
        else {
            return Some(error(
                &format!("validation_missing_{name}_field"),
                &format!("System {name:?} field is required."),
            ));
        };
        if !field.system || (hidden && !field.hidden) {
            let err = if hidden {
                error(
                    "validation_must_be_system_and_hidden",
                    "The field must be marked as \"System\" and \"Hidden\".",
                )
            } else {
                error(
                    "validation_must_be_system",
                    "The field must be marked as \"System\".",
                )
            };
            return Some(json!({ name: err }));
        }
    }
    None
}

/// System fields of the stored collection must survive, under their name.
fn check_system_fields_kept(ctx: &FieldContext) -> Option<Value> {
    let original = ctx.original?;
    let broken = original.fields.iter().filter(|f| f.system).any(|old| {
        ctx.candidate
            .field_by_id(&old.id)
            .is_none_or(|new| new.name != old.name)
    });
    broken.then(|| {
        error(
            "validation_system_field_change",
            "System fields cannot be deleted or renamed.",
        )
    })
}

/// A field keeps its type for life (its column holds values of that type).
fn check_type_changes(ctx: &FieldContext) -> Option<Value> {
    let original = ctx.original?;
    let mut errors = Map::new();
    for (i, field) in ctx.candidate.fields.iter().enumerate() {
        let changed = original
            .field_by_id(&field.id)
            .is_some_and(|old| old.type_name() != field.type_name());
        if changed {
            errors.insert(
                i.to_string(),
                error(
                    "validation_field_type_change",
                    "Field type cannot be changed.",
                ),
            );
        }
    }
    nested(errors)
}

fn check_reserved_names(fields: &[Field]) -> Option<Value> {
    let mut errors = Map::new();
    for (i, field) in fields.iter().enumerate() {
        if RESERVED_AUTH_NAMES.contains(&field.name.as_str()) {
            let err = error(
                "validation_reserved_field_name",
                "The field name is reserved and cannot be used.",
            );
            errors.insert(i.to_string(), json!({ "name": err }));
        }
    }
    nested(errors)
}

fn check_options(ctx: &FieldContext) -> Option<Value> {
    let mut errors = Map::new();
    for (i, field) in ctx.candidate.fields.iter().enumerate() {
        if let Some(err) = nested(field_errors(ctx, field)) {
            errors.insert(i.to_string(), err);
        }
    }
    nested(errors)
}

/// Every option error of one field, keyed by option.
fn field_errors(ctx: &FieldContext, field: &Field) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut put = |key: &str, err: Option<Value>| {
        if let Some(err) = err {
            errors.insert(key.to_string(), err);
        }
    };
    put("id", check_field_id(&field.id));
    put("name", check_field_name(field));
    match &field.kind {
        FieldKind::Text {
            min,
            max,
            pattern,
            autogenerate_pattern,
            primary_key,
        } => {
            put("primaryKey", check_single_primary_key(ctx, *primary_key));
            put("min", check_range(*min, 0, MAX_SAFE_INT));
            put("max", check_max_after_min(*max, *min, MAX_SAFE_INT));
            let pattern_err = if *primary_key && pattern.is_empty() {
                Some(required())
            } else {
                check_regex(pattern)
            };
            put("pattern", pattern_err);
            put("hidden", (*primary_key && field.hidden).then(blank_empty));
            put("required", (*primary_key && !field.required).then(required));
            put("autogeneratePattern", check_regex(autogenerate_pattern));
        }
        FieldKind::Number { min, max, only_int } => {
            put("min", check_only_int(*min, *only_int));
            let max_err =
                check_only_int(*max, *only_int).or_else(|| check_number_order(*min, *max));
            put("max", max_err);
        }
        FieldKind::Email {
            only_domains,
            except_domains,
        }
        | FieldKind::Url {
            only_domains,
            except_domains,
        } => {
            put(
                "exceptDomains",
                check_domains(except_domains, !only_domains.is_empty()),
            );
            put(
                "onlyDomains",
                check_domains(only_domains, !except_domains.is_empty()),
            );
        }
        FieldKind::Editor { max_size, .. } | FieldKind::Json { max_size } => {
            put("maxSize", check_range(*max_size, 0, MAX_SAFE_INT));
        }
        // the reference accepts any pair of date limits, even crossed ones
        FieldKind::Date { .. } => {}
        FieldKind::Autodate {
            on_create,
            on_update,
        } => {
            if !on_create && !on_update {
                let err = error(
                    "validation_required",
                    "Either onCreate or onUpdate must be enabled.",
                );
                put("onCreate", Some(err.clone()));
                put("onUpdate", Some(err));
            }
        }
        FieldKind::Select { values, max_select } => {
            put("values", values.is_empty().then(required));
            let limit = values.len().max(1) as i64;
            put("maxSelect", check_range(*max_select, 0, limit));
        }
        FieldKind::File {
            max_select,
            max_size,
            thumbs,
            ..
        } => {
            put("maxSelect", check_range(*max_select, 0, MAX_SAFE_INT));
            put("maxSize", check_range(*max_size, 0, MAX_SAFE_INT));
            put("thumbs", check_thumbs(thumbs));
        }
        FieldKind::Relation {
            collection_id,
            min_select,
            max_select,
            ..
        } => {
            put(
                "collectionId",
                check_relation_target(ctx, field, collection_id),
            );
            put("minSelect", check_range(*min_select, 0, MAX_SAFE_INT));
            let max_err = if *min_select > 0 && *max_select == 0 {
                Some(required())
            } else {
                check_max_after_min(*max_select, *min_select, MAX_SAFE_INT)
            };
            put("maxSelect", max_err);
        }
        FieldKind::Password {
            min,
            max,
            pattern,
            cost,
        } => {
            put("min", check_range(*min, 1, 71));
            put("max", check_max_after_min(*max, *min, 71));
            put("cost", check_range(*cost, 4, 31));
            put("pattern", check_regex(pattern));
        }
        FieldKind::Bool | FieldKind::GeoPoint => {}
    }
    errors
}

fn check_field_id(id: &str) -> Option<Value> {
    if id.is_empty() {
        return Some(required());
    }
    (id.chars().count() > 100).then(|| length_between(1, 100))
}

fn check_field_name(field: &Field) -> Option<Value> {
    let name = &field.name;
    if name.is_empty() {
        return Some(required());
    }
    if name.chars().count() > 100 {
        return Some(length_between(1, 100));
    }
    if !is_word(name) {
        return Some(bad_format());
    }
    if EXCLUDED_FIELD_NAMES.contains(&name.as_str()) {
        return Some(in_excluded_list());
    }
    if name.to_lowercase().contains("_via_") {
        return Some(error(
            "validation_found_via",
            "The value cannot contain \"_via_\".",
        ));
    }
    if field.is_primary_key() && name != "id" {
        return Some(error(
            "validation_in_invalid",
            "The primary key must be named \"id\".",
        ));
    }
    None
}

fn check_single_primary_key(ctx: &FieldContext, primary_key: bool) -> Option<Value> {
    let keys = ctx
        .candidate
        .fields
        .iter()
        .filter(|f| f.is_primary_key())
        .count();
    (primary_key && keys > 1).then(|| {
        error(
            "validation_unsupported_composite_pk",
            "Composite PKs are not supported and the collection must have only 1 PK.",
        )
    })
}

/// `min..=max`, where 0 means "not set" and is always fine (as in the reference).
fn check_range(value: i64, min: i64, max: i64) -> Option<Value> {
    if value == 0 {
        None
    } else if value < min {
        Some(at_least(min))
    } else if value > max {
        Some(at_most(max))
    } else {
        None
    }
}

/// An upper limit must not be below the lower one (0 = no limit).
fn check_max_after_min(max: i64, min: i64, ceiling: i64) -> Option<Value> {
    if max == 0 {
        None
    } else if max < min {
        Some(at_least(min))
    } else if max > ceiling {
        Some(at_most(ceiling))
    } else {
        None
    }
}

fn check_only_int(value: Option<f64>, only_int: bool) -> Option<Value> {
    let fractional = value.is_some_and(|v| v.fract() != 0.0);
    (only_int && fractional).then(|| {
        error(
            "validation_only_int_constraint",
            "Decimal numbers are not allowed.",
        )
    })
}

fn check_number_order(min: Option<f64>, max: Option<f64>) -> Option<Value> {
    let (min, max) = (min?, max?);
    (max < min).then(|| {
        let shown = crate::collections::json::number_value(min);
        error_with(
            "validation_min_number_constraint",
            &format!("Must be greater or equal than {shown}"),
            json!({ "min": shown }),
        )
    })
}

fn check_regex(pattern: &str) -> Option<Value> {
    if pattern.is_empty() {
        return None;
    }
    regex::Regex::new(pattern)
        .err()
        .map(|_| error("validation_invalid_regex", "Invalid regular expression."))
}

/// One domain list: must be empty when the other list is set, else every
/// entry must look like a domain name.
fn check_domains(domains: &[String], other_list_set: bool) -> Option<Value> {
    if other_list_set {
        return (!domains.is_empty()).then(blank_empty);
    }
    let mut errors = Map::new();
    for (i, domain) in domains.iter().enumerate() {
        if !is_domain(domain) {
            errors.insert(
                i.to_string(),
                error("validation_is_domain", "Must be a valid domain"),
            );
        }
    }
    nested(errors)
}

/// Labels of letters, digits and inner hyphens, at least two of them, the
/// last one alphabetic (or an IDNA `xn--` label).
pub fn is_domain(text: &str) -> bool {
    if text.is_empty() || text.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = text.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|t| {
        t.bytes().all(|b| b.is_ascii_alphabetic()) || t.to_ascii_lowercase().starts_with("xn--")
    });
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

/// Thumb sizes look like `100x100`, `0x100`, `100x0` with an optional
/// `t`/`b`/`f` suffix; `0x0` in any form is refused.
fn check_thumbs(thumbs: &[String]) -> Option<Value> {
    let mut errors = Map::new();
    for (i, thumb) in thumbs.iter().enumerate() {
        let err = if ["0x0", "0x0t", "0x0b", "0x0f"].contains(&thumb.as_str()) {
            Some(in_excluded_list())
        } else if !is_thumb_size(thumb) {
            Some(bad_format())
        } else {
            None
        };
        if let Some(err) = err {
            errors.insert(i.to_string(), err);
        }
    }
    nested(errors)
}

fn is_thumb_size(text: &str) -> bool {
    let body = text.strip_suffix(['t', 'b', 'f']).unwrap_or(text);
    match body.split_once('x') {
        Some((w, h)) => {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits(w) && digits(h)
        }
        None => false,
    }
}

fn check_relation_target(ctx: &FieldContext, field: &Field, collection_id: &str) -> Option<Value> {
    if collection_id.is_empty() {
        return Some(required());
    }
    let previous_target = ctx
        .original
        .and_then(|o| o.field_by_id(&field.id))
        .and_then(|old| match &old.kind {
            FieldKind::Relation { collection_id, .. } => Some(collection_id.as_str()),
            _ => None,
        });
    if previous_target.is_some_and(|old| old != collection_id) {
        return Some(error(
            "validation_field_relation_change",
            "The relation collection cannot be changed.",
        ));
    }
    let Some(target) = ctx.schema.get_by_id(collection_id) else {
        return Some(error(
            "validation_field_relation_missing_collection",
            "The relation collection doesn't exist.",
        ));
    };
    (target.is_view() && !ctx.candidate.is_view()).then(|| {
        error(
            "validation_relation_field_non_view_base_collection",
            "Only view collections are allowed to have relations to other views.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_thumbs() {
        assert!(is_domain("example.com"));
        assert!(is_domain("a-b.co.uk"));
        assert!(!is_domain("localhost"));
        assert!(!is_domain("-a.com"));
        assert!(!is_domain("a..com"));
        assert!(is_thumb_size("100x100"));
        assert!(is_thumb_size("0x50t"));
        assert!(!is_thumb_size("100"));
        assert!(!is_thumb_size("axb"));
        assert!(check_thumbs(&["0x0".into()]).is_some());
    }

    #[test]
    fn zero_means_unset_for_ranges() {
        assert_eq!(check_range(0, 4, 31), None);
        assert!(check_range(3, 4, 31).is_some());
        assert!(check_range(32, 4, 31).is_some());
        assert_eq!(check_max_after_min(0, 5, 100), None);
        assert_eq!(
            check_max_after_min(1, 5, 100).unwrap()["code"],
            "validation_min_greater_equal_than_required"
        );
    }
}
