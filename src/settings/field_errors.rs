//! Field validation errors in the API's nested shape:
//! `{"meta":{"appName":{"code":"validation_required","message":"Cannot be blank."}}}`.
//! Array positions become string keys (`{"superuserIPs":{"2":{...}}}`).
//! This type only collects and serializes; it knows nothing of HTTP statuses.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// One failed rule for one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    /// Template values the reference sends along (`{"min":1,"max":255}`).
    pub params: Option<Value>,
}

impl FieldError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            code,
            message: message.into(),
            params: None,
        }
    }

    pub fn with_params(mut self, params: Value) -> Self {
        self.params = Some(params);
        self
    }

    fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), Value::from(self.code));
        obj.insert("message".into(), Value::from(self.message.clone()));
        if let Some(params) = &self.params {
            obj.insert("params".into(), params.clone());
        }
        Value::Object(obj)
    }
}

/// Errors keyed by field path, serialized with sorted keys at every level
/// (as the reference's responses are).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors {
    root: BTreeMap<String, Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Error(FieldError),
    Nested(BTreeMap<String, Node>),
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Records `error` at `path`. A field that already has an error keeps its
    /// first one (only the first failing rule per field is reported), and an
    /// error on a whole field hides errors below it.
    pub fn add(&mut self, path: &[&str], error: FieldError) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut level = &mut self.root;
        for key in parents {
            let node = level
                .entry(key.to_string())
                .or_insert_with(|| Node::Nested(BTreeMap::new()));
            match node {
                Node::Nested(children) => level = children,
                Node::Error(_) => return,
            }
        }
        level.entry(last.to_string()).or_insert(Node::Error(error));
    }

    /// Whether anything was recorded at or below `path`.
    pub fn contains(&self, path: &[&str]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return !self.is_empty();
        };
        let mut node = self.root.get(*first);
        for key in rest {
            node = match node {
                Some(Node::Nested(children)) => children.get(*key),
                _ => None,
            };
        }
        node.is_some()
    }

    /// The `data` object of an API error body.
    pub fn into_value(self) -> Value {
        nested_to_value(&self.root)
    }
}

fn nested_to_value(children: &BTreeMap<String, Node>) -> Value {
    let map: Map<String, Value> = children
        .iter()
        .map(|(key, node)| {
            let value = match node {
                Node::Error(error) => error.to_value(),
                Node::Nested(grandchildren) => nested_to_value(grandchildren),
            };
            (key.clone(), value)
        })
        .collect();
    Value::Object(map)
}

impl Serialize for FieldErrors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        nested_to_value(&self.root).serialize(serializer)
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid settings: {}", nested_to_value(&self.root))
    }
}

impl std::error::Error for FieldErrors {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_paths_build_nested_objects_in_sorted_order() {
        let mut errors = FieldErrors::new();
        errors.add(
            &["meta", "senderName"],
            FieldError::new("validation_required", "Cannot be blank."),
        );
        errors.add(
            &["meta", "appName"],
            FieldError::new("validation_required", "Cannot be blank."),
        );
        errors.add(&["logs", "maxDays"], FieldError::new("x", "y"));
        let text = serde_json::to_string(&errors).unwrap();
        assert_eq!(
            text,
            r#"{"logs":{"maxDays":{"code":"x","message":"y"}},"meta":{"appName":{"code":"validation_required","message":"Cannot be blank."},"senderName":{"code":"validation_required","message":"Cannot be blank."}}}"#
        );
    }

    #[test]
    fn the_first_error_per_field_wins() {
        let mut errors = FieldErrors::new();
        errors.add(&["a"], FieldError::new("first", "1"));
        errors.add(&["a"], FieldError::new("second", "2"));
        errors.add(&["a", "b"], FieldError::new("nested", "3"));
        assert_eq!(
            errors.into_value(),
            json!({"a": {"code": "first", "message": "1"}})
        );
    }

    #[test]
    fn params_are_included_when_present() {
        let mut errors = FieldErrors::new();
        let e = FieldError::new("validation_length_invalid", "m")
            .with_params(json!({"max": 7, "min": 7}));
        errors.add(&["meta", "accentColor"], e);
        assert!(errors.contains(&["meta", "accentColor"]));
        assert_eq!(
            errors.into_value()["meta"]["accentColor"]["params"]["max"],
            json!(7)
        );
    }
}
