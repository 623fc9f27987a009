//! The validation errors collection checks produce, with the reference's
//! codes and sentence-style messages (capitalised, ending with a period).
//! Only constructors live here; deciding when an error applies does not.

use serde_json::{json, Map, Value};

use crate::error::FieldErrors;

/// Capitalises the first letter and ends the sentence with a period.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

pub fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": sentence(message) })
}

pub fn error_with(code: &str, message: &str, params: Value) -> Value {
    json!({ "code": code, "message": sentence(message), "params": params })
}

pub fn required() -> Value {
    error("validation_required", "Cannot be blank")
}

pub fn blank_nil() -> Value {
    error("validation_nil", "Must be blank")
}

pub fn blank_empty() -> Value {
    error("validation_empty", "Must be blank")
}

pub fn bad_format() -> Value {
    error("validation_match_invalid", "Must be in a valid format")
}

pub fn not_in_list() -> Value {
    error("validation_in_invalid", "Must be a valid value")
}

pub fn in_excluded_list() -> Value {
    error("validation_not_in_invalid", "Must not be in list")
}

pub fn at_least(threshold: impl Into<Value> + std::fmt::Display + Copy) -> Value {
    error_with(
        "validation_min_greater_equal_than_required",
        &format!("Must be no less than {threshold}"),
        json!({ "threshold": threshold.into() }),
    )
}

pub fn at_most(threshold: impl Into<Value> + std::fmt::Display + Copy) -> Value {
    error_with(
        "validation_max_less_equal_than_required",
        &format!("Must be no greater than {threshold}"),
        json!({ "threshold": threshold.into() }),
    )
}

pub fn length_between(min: usize, max: usize) -> Value {
    error_with(
        "validation_length_out_of_range",
        &format!("The length must be between {min} and {max}"),
        json!({ "min": min, "max": max }),
    )
}

/// Inserts `error` under `key` when there is one.
pub fn put(errors: &mut FieldErrors, key: &str, error: Option<Value>) {
    if let Some(error) = error {
        errors.insert(key.to_string(), error);
    }
}

/// A map of errors as one nested error value, `None` when empty.
pub fn nested(errors: Map<String, Value>) -> Option<Value> {
    (!errors.is_empty()).then_some(Value::Object(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_the_reference() {
        assert_eq!(sentence("cannot be blank"), "Cannot be blank.");
        assert_eq!(sentence("Already done."), "Already done.");
        assert_eq!(at_least(10)["message"], "Must be no less than 10.");
        assert_eq!(at_least(10)["params"], json!({"threshold": 10}));
    }
}
