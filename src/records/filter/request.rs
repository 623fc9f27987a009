//! `@request.*` as records see it: what one request says (method, query,
//! headers, body, auth), gathered once by a handler and read by rules.
//!
//! This file owns the request's values and the reference's rules for
//! reading them (nested lookups, number casting, modifier keys in the
//! body). It never touches the database and never writes SQL.

use crate::auth::Auth;
use crate::collections::{Collection, FieldKind};
use crate::http::{Method, Req};
use crate::records::{modifiers, RecordValues};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// The request a filter or rule is evaluated for.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// `GET`, `POST`, ... as sent.
    pub method: String,
    /// `default` for the records API; the auth flows and realtime use their own.
    pub context: String,
    /// The first value of each query parameter.
    pub query: RequestFields,
    /// The first value of each header, names lower-cased with `-` → `_`.
    pub headers: RequestFields,
    /// The submitted body as parsed (modifier keys such as `n+` included).
    pub body: Map<String, Value>,
    pub auth: Option<Auth>,
}

impl RequestInfo {
    /// A request with nothing but its caller (internal checks, tests).
    pub fn new(auth: Option<Auth>) -> RequestInfo {
        RequestInfo {
            method: String::new(),
            context: "default".into(),
            query: RequestFields::default(),
            headers: RequestFields::default(),
            body: Map::new(),
            auth,
        }
    }

    /// Method, query and headers of `req`; the body is added by handlers
    /// that read one (`with_body`).
    pub fn from_req(req: &Req<'_>, auth: Option<Auth>) -> RequestInfo {
        let mut info = RequestInfo::new(auth);
        info.method = method_name(req.method).into();
        info.query = RequestFields::from_pairs(req.query.as_slice().into(), Naming::AsSent);
        info.headers = RequestFields::from_pairs(req.shared_headers(), Naming::Header);
        info
    }

    pub fn with_body(mut self, body: Map<String, Value>) -> RequestInfo {
        self.body = body;
        self
    }

    pub fn is_superuser(&self) -> bool {
        self.auth.as_ref().is_some_and(Auth::is_superuser)
    }
}

/// `@request.method`: the method's name, empty for one Satchel does not
/// route.
fn method_name(method: Method) -> &'static str {
    match method {
        Method::Other => "",
        known => known.name(),
    }
}

/// `@request.query` or `@request.headers`: the request's name-value pairs,
/// made into the map rules read only when one first does. Most requests
/// meet no rule that reads them, and building the map (every name and value
/// copied, header names rewritten) cost more than the rest of the request.
#[derive(Debug, Clone, Default)]
pub struct RequestFields {
    pairs: Arc<[(String, String)]>,
    naming: Naming,
    map: OnceLock<Map<String, Value>>,
}

/// How a pair's name becomes a key of the map.
#[derive(Debug, Clone, Copy, Default)]
enum Naming {
    /// Query parameters: as sent.
    #[default]
    AsSent,
    /// Headers: lower-cased, `-` → `_` (`X-Token` is `x_token`).
    Header,
}

impl RequestFields {
    fn from_pairs(pairs: Arc<[(String, String)]>, naming: Naming) -> RequestFields {
        RequestFields {
            pairs,
            naming,
            map: OnceLock::new(),
        }
    }

    /// Fields given as a ready map (realtime subscriptions, tests).
    pub fn from_map(map: Map<String, Value>) -> RequestFields {
        RequestFields {
            map: OnceLock::from(map),
            ..RequestFields::default()
        }
    }

    /// Name → value (a string), the first value of each name.
    pub fn map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            let mut map = Map::with_capacity(self.pairs.len());
            for (name, value) in self.pairs.iter() {
                let key = match self.naming {
                    Naming::AsSent => name.clone(),
                    Naming::Header => header_key(name),
                };
                map.entry(key)
                    .or_insert_with(|| Value::String(value.clone()));
            }
            map
        })
    }
}

/// A header name as `@request.headers` spells it.
fn header_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The body with modifier keys (`n+`, `+tags`, `tags-`) replaced by the
/// field value they produce from `current` (a new record's zero values for
/// a create), as the reference does before evaluating rules, so that
/// `@request.body.n` is the number about to be stored.
pub fn body_with_modifiers_applied(
    collection: &Collection,
    body: &Map<String, Value>,
    current: Option<&RecordValues>,
) -> Map<String, Value> {
    let mut out = body.clone();
    if !modifiers::any_modifier_key(body) {
        return out;
    }
    let zero;
    let current = match current {
        Some(record) => record,
        None => {
            zero = RecordValues::zero(collection);
            &zero
        }
    };
    for field in &collection.fields {
        let mut value: Option<Value> = None;
        for (key, modifier) in modifiers::modifier_keys(&field.name) {
            let Some(operand) = out.remove(&key) else {
                continue;
            };
            let base = value
                .clone()
                .or_else(|| body.get(&field.name).cloned())
                .or_else(|| current.get(&field.name).cloned())
                .unwrap_or(Value::Null);
            if let Ok(Some(next)) = modifiers::apply(&field.kind, &base, modifier, &operand) {
                value = Some(next);
            }
        }
        if let Some(value) = value {
            out.insert(field.name.clone(), value);
        }
    }
    out
}

/// `map.a.b.0`: nested objects by key, arrays by index; `None` when any
/// step is missing (the reference's "graceful fallback" to NULL).
pub fn lookup<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut current = root;
    for key in path {
        current = match current {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The value a static request field binds as, as the reference's resolver
/// does: numbers as floats, booleans as 1/0, text as text (or a float when
/// it names a number field and parses as one), lists and objects as JSON.
pub fn static_value(value: &Value, number_field: bool) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => Sql::Null,
        Value::Bool(flag) => Sql::Integer(i64::from(*flag)),
        Value::Number(n) => Sql::Real(n.as_f64().unwrap_or(0.0)),
        Value::String(text) if number_field => match text.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Sql::Real(f),
            _ => Sql::Text(text.clone()),
        },
        Value::String(text) => Sql::Text(text.clone()),
        other => Sql::Text(other.to_string()),
    }
}

/// Whether `field` names a number field of `collection` (the cast rule of
/// `static_value` looks only at the last path segment, as the reference).
pub fn is_number_field(collection: &Collection, name: &str) -> bool {
    collection
        .field(name)
        .is_some_and(|f| matches!(f.kind, FieldKind::Number { .. }))
}

/// A body value as a list, the way `:each`/`:length` see it: `null` is
/// empty, a scalar is a list of one.
pub fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    }
}

/// Text of a value for `:lower` on a body field (Go's `cast.ToString`).
pub fn as_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => crate::records::cast::format_float(n.as_f64().unwrap_or(0.0)),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(other) => other.to_string(),
    }
}

/// Equal as stored values: numbers by value (`5` and `5.0` are the same).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| same_value(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| same_value(v, other)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::Field;
    use serde_json::json;

    #[test]
    fn query_and_headers_read_as_rules_see_them() {
        let headers = vec![
            ("X-Token".to_string(), "abc".to_string()),
            ("x-token".to_string(), "second".to_string()),
            ("user-agent".to_string(), "curl".to_string()),
        ];
        let mut req = Req::synthetic(Method::Get, "/api/x?q=1&q=2&page=3", headers, None);
        req.query.push(("late".into(), "yes".into()));
        let info = RequestInfo::from_req(&req, None);
        assert_eq!(
            Value::Object(info.headers.map().clone()),
            json!({"x_token": "abc", "user_agent": "curl"})
        );
        assert_eq!(
            Value::Object(info.query.map().clone()),
            json!({"q": "1", "page": "3", "late": "yes"})
        );
        let given = RequestFields::from_map(json!({"a": "b"}).as_object().cloned().unwrap());
        assert_eq!(given.map().get("a"), Some(&json!("b")));
        assert!(RequestFields::default().map().is_empty());
    }

    fn collection() -> Collection {
        let mut c = crate::collections::defaults::new_collection(
            crate::collections::CollectionType::Base,
            "pbc_1",
            "posts",
        );
        c.fields.push(Field::new(
            "n",
            FieldKind::Number {
                min: None,
                max: None,
                only_int: false,
            },
        ));
        c
    }

    #[test]
    fn modifier_keys_become_the_value_they_produce() {
        let c = collection();
        let mut current = RecordValues::new();
        current.set("n", json!(5));
        let body = json!({"n+": 3, "title": "x"});
        let out = body_with_modifiers_applied(&c, body.as_object().unwrap(), Some(&current));
        assert_eq!(out.get("n"), Some(&json!(8)));
        assert!(!out.contains_key("n+"));
        assert_eq!(out.get("title"), Some(&json!("x")));
        // a create starts from zero values
        let out = body_with_modifiers_applied(&c, body.as_object().unwrap(), None);
        assert_eq!(out.get("n"), Some(&json!(3)));
    }

    #[test]
    fn lookups_walk_objects_and_arrays() {
        let v = json!({"a": {"b": [1, {"c": "x"}]}});
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lookup(&v, &path(&["a", "b", "1", "c"])), Some(&json!("x")));
        assert_eq!(lookup(&v, &path(&["a", "b", "9"])), None);
        assert_eq!(lookup(&v, &path(&["a", "x"])), None);
        assert_eq!(lookup(&v, &path(&["a", "b", "-1"])), None);
    }

    #[test]
    fn static_values_bind_like_the_reference() {
        use rusqlite::types::Value as Sql;
        assert_eq!(static_value(&json!(5), false), Sql::Real(5.0));
        assert_eq!(static_value(&json!("5"), false), Sql::Text("5".into()));
        assert_eq!(static_value(&json!("5"), true), Sql::Real(5.0));
        assert_eq!(static_value(&json!("x"), true), Sql::Text("x".into()));
        assert_eq!(static_value(&json!(true), false), Sql::Integer(1));
        assert_eq!(
            static_value(&json!(["a"]), false),
            Sql::Text("[\"a\"]".into())
        );
        assert_eq!(static_value(&Value::Null, false), Sql::Null);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&json!(5), &json!(5.0)));
        assert!(same_value(&json!({"x": [1]}), &json!({"x": [1.0]})));
        assert!(!same_value(&json!(["a", "b"]), &json!(["b", "a"])));
    }
}
