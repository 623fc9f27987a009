//! `PATCH /api/settings` semantics without the HTTP: deep-merge a partial
//! document into the current settings, then validate the result.
//!
//! Merge rules, as the reference behaves:
//! - objects merge key by key; keys the model does not know are ignored
//!   (stored unknown keys are kept, patched ones are not added);
//! - arrays replace the old array; each element starts from zero values;
//! - `null` resets a value to its zero (`""`, `0`, `false`, `[]`, or an object
//!   of zeros);
//! - a value of the wrong JSON type rejects the whole patch;
//! - secrets are ordinary fields here: omitted keeps, `""` clears.

use serde_json::{json, Map, Value};

use super::field_errors::FieldErrors;
use super::model::Settings;
use super::validate::validate;

/// Why a patch was not applied.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// The body is not a JSON object or a value has the wrong type. The
    /// reference answers 400 "An error occurred while loading the submitted
    /// data." with empty `data`.
    Malformed(String),
    /// The merged settings break validation rules. The reference answers 400
    /// "An error occurred while saving the new settings." with these in `data`.
    Invalid(FieldErrors),
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchError::Malformed(why) => write!(f, "malformed settings patch: {why}"),
            PatchError::Invalid(errors) => errors.fmt(f),
        }
    }
}

impl std::error::Error for PatchError {}

/// Returns `current` with `patch` merged in, or why it cannot be.
pub fn apply_patch(current: &Settings, patch: &Value) -> Result<Settings, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed("expected a JSON object".into()));
    }
    let mut document = serde_json::to_value(current)
        .map_err(|e| PatchError::Malformed(format!("cannot serialize current settings: {e}")))?;
    // Sections left out while default still merge into their current values.
    if let (Value::Object(fields), Ok(brute_force)) =
        (&mut document, serde_json::to_value(&current.brute_force))
    {
        fields.entry("bruteForce").or_insert(brute_force);
    }
    merge(&mut document, patch, &settings_shape(), "")?;
    let merged: Settings =
        serde_json::from_value(document).map_err(|e| PatchError::Malformed(e.to_string()))?;
    validate(&merged).map_err(PatchError::Invalid)?;
    Ok(merged)
}

/// Every key the model knows with its zero value; an array holds one
/// template element. The merge only follows keys present here.
fn settings_shape() -> Value {
    let s3 = json!({
        "enabled": false, "bucket": "", "region": "", "endpoint": "",
        "accessKey": "", "secret": "", "forcePathStyle": false
    });
    json!({
        "superuserIPs": [""],
        "smtp": {
            "enabled": false, "port": 0, "host": "", "username": "", "password": "",
            "authMethod": "", "tls": false, "localName": ""
        },
        "backups": { "cron": "", "cronMaxKeep": 0, "s3": s3.clone() },
        "s3": s3,
        "meta": {
            "accentColor": "", "appName": "", "appURL": "", "senderName": "",
            "senderAddress": "", "hideControls": false
        },
        "rateLimits": {
            "rules": [{ "label": "", "audience": "", "duration": 0, "maxRequests": 0 }],
            "excludedIPs": [""],
            "enabled": false
        },
        "trustedProxy": { "headers": [""], "useLeftmostIP": false },
        "batch": { "enabled": false, "maxRequests": 0, "timeout": 0, "maxBodySize": 0 },
        "logs": { "maxDataSize": 0, "maxDays": 0, "minLevel": 0, "logIP": false, "logAuthId": false },
        "bruteForce": { "enabled": false, "maxFailures": 0, "duration": 0 }
    })
}

/// The zero value of a shape: empty arrays, objects of zeros.
fn zero_of(shape: &Value) -> Value {
    match shape {
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, field)| (key.clone(), zero_of(field)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// Merges `patch` into `target` following `shape`. `path` names the spot for
/// error messages.
fn merge(target: &mut Value, patch: &Value, shape: &Value, path: &str) -> Result<(), PatchError> {
    if patch.is_null() {
        *target = zero_of(shape);
        return Ok(());
    }
    match shape {
        Value::Object(shape_fields) => merge_object(target, patch, shape_fields, path),
        Value::Array(template) => {
            let items = patch
                .as_array()
                .ok_or_else(|| wrong_type(path, "an array"))?;
            let element_shape = template.first().unwrap_or(&Value::Null);
            let mut replaced = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let mut element = zero_of(element_shape);
                merge(
                    &mut element,
                    item,
                    element_shape,
                    &format!("{path}.{index}"),
                )?;
                replaced.push(element);
            }
            *target = Value::Array(replaced);
            Ok(())
        }
        scalar => {
            check_scalar_type(patch, scalar, path)?;
            *target = patch.clone();
            Ok(())
        }
    }
}

fn merge_object(
    target: &mut Value,
    patch: &Value,
    shape_fields: &Map<String, Value>,
    path: &str,
) -> Result<(), PatchError> {
    let patch_fields = patch
        .as_object()
        .ok_or_else(|| wrong_type(path, "an object"))?;
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_fields) = target.as_object_mut() else {
        return Ok(());
    };
    for (key, value) in patch_fields {
        let Some(field_shape) = shape_fields.get(key) else {
            continue; // unknown keys are ignored
        };
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let slot = target_fields
            .entry(key.clone())
            .or_insert_with(|| zero_of(field_shape));
        merge(slot, value, field_shape, &child_path)?;
    }
    Ok(())
}

fn check_scalar_type(value: &Value, shape: &Value, path: &str) -> Result<(), PatchError> {
    let fits = match shape {
        Value::String(_) => value.is_string(),
        Value::Bool(_) => value.is_boolean(),
        // Integers only, like the reference's Go ints: 25.5, 1e2 and "25" are refused.
        Value::Number(_) => value.is_i64(),
        _ => false,
    };
    if fits {
        return Ok(());
    }
    let expected = match shape {
        Value::String(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "an integer",
        _ => "a known value",
    };
    Err(wrong_type(path, expected))
}

fn wrong_type(path: &str, expected: &str) -> PatchError {
    let at = if path.is_empty() { "the body" } else { path };
    PatchError::Malformed(format!("{at} must be {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(patch: Value) -> Settings {
        apply_patch(&Settings::default(), &patch).unwrap_or_else(|e| panic!("{e}"))
    }

    fn field_errors(base: &Settings, patch: Value) -> Value {
        match apply_patch(base, &patch) {
            Err(PatchError::Invalid(errors)) => errors.into_value(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                let path = format!("{prefix}/{key}");
                out.push(path.clone());
                key_paths(child, &path, out);
            }
        }
    }

    #[test]
    fn shape_knows_exactly_the_model_keys() {
        let mut model = Settings::default();
        model.brute_force.enabled = false;
        model.s3.secret = "x".into();
        model.backups.s3.secret = "x".into();
        let (mut ours, mut shape) = (Vec::new(), Vec::new());
        key_paths(&serde_json::to_value(&model).unwrap(), "", &mut ours);
        key_paths(&settings_shape(), "", &mut shape);
        ours.sort();
        shape.sort();
        assert_eq!(ours, shape);
    }

    #[test]
    fn a_partial_patch_changes_only_what_it_names() {
        let s = patched(json!({"meta": {"appName": "Renamed"}}));
        let defaults = Settings::default();
        assert_eq!(s.meta.app_name, "Renamed");
        assert_eq!(s.meta.app_url, defaults.meta.app_url);
        assert_eq!(s.smtp, defaults.smtp);
        assert_eq!(s.rate_limits, defaults.rate_limits);
    }

    #[test]
    fn omitted_secrets_are_kept_and_empty_ones_clear() {
        let with_secrets = patched(json!({
            "smtp": {"password": "pw"}, "s3": {"secret": "s3"}, "backups": {"s3": {"secret": "b"}}
        }));
        let kept = apply_patch(
            &with_secrets,
            &json!({"smtp": {"username": "u"}, "s3": {"bucket": "b"}}),
        )
        .unwrap();
        assert_eq!(kept.smtp.password, "pw");
        assert_eq!(kept.s3.secret, "s3");
        assert_eq!(kept.backups.s3.secret, "b");
        let cleared = apply_patch(
            &kept,
            &json!({"smtp": {"password": ""}, "backups": {"s3": {"secret": ""}}}),
        )
        .unwrap();
        assert_eq!(cleared.smtp.password, "");
        assert_eq!(cleared.s3.secret, "s3");
        assert_eq!(cleared.backups.s3.secret, "");
    }

    #[test]
    fn arrays_are_replaced_and_elements_start_from_zero() {
        let s = patched(
            json!({"rateLimits": {"rules": [{"label": "/x", "duration": 1, "maxRequests": 9}]}}),
        );
        assert_eq!(s.rate_limits.rules.len(), 1);
        assert_eq!(s.rate_limits.rules[0].audience, "");
        // A rule with only a label does not inherit the old first rule's numbers.
        let errors = field_errors(
            &Settings::default(),
            json!({"rateLimits": {"rules": [{"label": "xyz"}]}}),
        );
        assert_eq!(
            errors["rateLimits"]["rules"]["0"]["duration"]["code"],
            "validation_required"
        );
        assert_eq!(
            errors["rateLimits"]["rules"]["0"]["maxRequests"]["code"],
            "validation_required"
        );
    }

    #[test]
    fn null_resets_to_zero_values() {
        let s = patched(json!({"superuserIPs": null, "trustedProxy": {"headers": null}}));
        assert!(s.superuser_ips.is_empty());
        let errors = field_errors(&Settings::default(), json!({"meta": null}));
        for field in ["appName", "appURL", "senderName", "senderAddress"] {
            assert_eq!(
                errors["meta"][field]["code"], "validation_required",
                "{field}"
            );
        }
        assert!(errors["meta"].get("accentColor").is_none());
        let errors = field_errors(&Settings::default(), json!({"superuserIPs": [null]}));
        assert_eq!(errors["superuserIPs"]["0"]["code"], "validation_required");
    }

    #[test]
    fn unknown_patch_keys_are_ignored_and_stored_ones_kept() {
        let mut current = Settings::default();
        current.meta.unknown.insert("future".into(), json!(1));
        let s = apply_patch(
            &current,
            &json!({"bogus": 1, "meta": {"alsoBogus": 2, "appName": "Y"}}),
        )
        .unwrap();
        assert!(s.unknown.is_empty());
        assert_eq!(s.meta.unknown.get("future"), Some(&json!(1)));
        assert!(s.meta.unknown.get("alsoBogus").is_none());
    }

    #[test]
    fn wrong_types_are_malformed_not_field_errors() {
        for patch in [
            json!([]),
            json!("x"),
            json!({"meta": {"appName": 123}}),
            json!({"meta": 5}),
            json!({"smtp": {"port": "25"}}),
            json!({"smtp": {"port": 25.5}}),
            json!({"smtp": {"port": 100.0}}),
            json!({"smtp": {"enabled": 1}}),
            json!({"smtp": {"password": 5}}),
            json!({"superuserIPs": "1.2.3.4"}),
            json!({"rateLimits": {"rules": [5]}}),
            json!({"trustedProxy": {"headers": [1]}}),
        ] {
            match apply_patch(&Settings::default(), &patch) {
                Err(PatchError::Malformed(_)) => {}
                other => panic!("{patch} gave {other:?}"),
            }
        }
        let huge: Value =
            serde_json::from_str(r#"{"smtp":{"port":99999999999999999999}}"#).unwrap();
        assert!(matches!(
            apply_patch(&Settings::default(), &huge),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn the_reference_default_rules_patch_back_cleanly() {
        let rules = serde_json::to_value(&Settings::default().rate_limits.rules).unwrap();
        patched(json!({"rateLimits": {"rules": rules}}));
    }

    #[test]
    fn brute_force_patches_from_its_defaults_and_round_trips() {
        let s = patched(json!({"bruteForce": {"maxFailures": 5}}));
        assert!(s.brute_force.enabled);
        assert_eq!(
            (s.brute_force.max_failures, s.brute_force.duration),
            (5, 300)
        );
        let view = crate::settings::public_view(&s);
        assert_eq!(
            view["bruteForce"],
            json!({"enabled": true, "maxFailures": 5, "duration": 300})
        );
        assert_eq!(apply_patch(&s, &view).unwrap(), s);
        // Untouched, it stays out of the document.
        let untouched = patched(json!({"meta": {"appName": "X"}}));
        assert!(crate::settings::public_view(&untouched)
            .get("bruteForce")
            .is_none());
        let off = patched(json!({"bruteForce": {"enabled": false}}));
        assert!(!off.brute_force.enabled);
    }

    #[test]
    fn brute_force_numbers_must_be_positive_while_enabled() {
        let errors = field_errors(
            &Settings::default(),
            json!({"bruteForce": {"maxFailures": 0, "duration": -1}}),
        );
        assert_eq!(
            errors["bruteForce"]["maxFailures"]["code"],
            "validation_required"
        );
        assert_eq!(
            errors["bruteForce"]["duration"]["code"],
            "validation_min_greater_equal_than_required"
        );
        patched(json!({"bruteForce": null}));
    }
}
