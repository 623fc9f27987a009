//! What a subscription string means: which collection, all records or one,
//! and the `?options=` JSON that carries query parameters and headers.
//!
//! Pure parsing, no rules and no I/O. Malformed options are ignored rather
//! than refused, as the reference does (the subscription still counts, just
//! without options); the subscription string itself stays the event name.

use crate::http::request::parse_query;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which records of the collection a subscription asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `collection/*`, or the older bare `collection`: every record,
    /// checked with the list rule.
    AllRecords,
    /// `collection/RECORD_ID`: that record only, checked with the view rule.
    Record(String),
}

/// Which of the collection's rules decides whether a subscriber sees an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    List,
    View,
}

/// One parsed subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The collection name or id as the client wrote it (matched exactly,
    /// like the reference's prefix match).
    pub collection: String,
    pub target: Target,
    pub options: Arc<SubscriptionOptions>,
}

/// The `?options=` of a subscription: what a request would have carried.
/// Compared and hashed by value so equal options share rule checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Query parameters as strings (`filter`, `expand`, `fields`, and any
    /// others a rule may read as `@request.query.*`).
    pub query: BTreeMap<String, String>,
    /// Headers with names normalised like the reference (`X-Token` →
    /// `x_token`), for `@request.headers.*`.
    pub headers: BTreeMap<String, String>,
}

impl SubscriptionOptions {
    fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The client-side `filter` that further narrows what is delivered.
    pub fn filter(&self) -> Option<&str> {
        self.query_value("filter")
    }

    /// The `fields` list applied to the delivered record.
    pub fn fields(&self) -> Option<&str> {
        self.query_value("fields")
    }

    /// The `expand` list. Not applied yet: expansion comes with the query
    /// language's relation support (see `payload::render_record`).
    pub fn expand(&self) -> Option<&str> {
        self.query_value("expand")
    }

    pub fn is_empty(&self) -> bool {
        self.query.is_empty() && self.headers.is_empty()
    }
}

impl Topic {
    /// The rule that applies when this topic matches an event of the
    /// collection (`name`, `id`) about `record_id`; `None` if it does not match.
    pub fn rule_for(&self, name: &str, id: &str, record_id: &str) -> Option<RuleKind> {
        if self.collection != name && self.collection != id {
            return None;
        }
        match &self.target {
            Target::AllRecords => Some(RuleKind::List),
            Target::Record(wanted) if wanted == record_id => Some(RuleKind::View),
            Target::Record(_) => None,
        }
    }
}

/// Parses a subscription string. Never fails: a string that names no
/// collection simply never matches an event (e.g. `@oauth2`).
pub fn parse(subscription: &str) -> Topic {
    let (base, query) = match subscription.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (subscription, None),
    };
    let (collection, target) = match base.split_once('/') {
        Some((collection, "*")) => (collection, Target::AllRecords),
        Some((collection, record)) => (collection, Target::Record(record.to_string())),
        None => (base, Target::AllRecords),
    };
    let options = query.map(options_of_query).unwrap_or_default();
    Topic {
        collection: collection.to_string(),
        target,
        options: Arc::new(options),
    }
}

/// The `options` parameter of a subscription's query string, decoded like
/// a URL query (`+` is a space) and read as
/// `{"query": {...}, "headers": {...}}`.
fn options_of_query(query: &str) -> SubscriptionOptions {
    let raw = parse_query(query)
        .into_iter()
        .find(|(name, _)| name == "options")
        .map(|(_, value)| value);
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return SubscriptionOptions::default();
    };
    let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&raw) else {
        return SubscriptionOptions::default();
    };
    let mut options = SubscriptionOptions::default();
    if let Some(Value::Object(query)) = json.get("query") {
        for (name, value) in query {
            options.query.insert(name.clone(), value_as_string(value));
        }
    }
    if let Some(Value::Object(headers)) = json.get("headers") {
        for (name, value) in headers {
            // The reference only takes string header values.
            if let Value::String(value) = value {
                options.headers.insert(snake_case(name), value.clone());
            }
        }
    }
    options
}

/// A query value as the reference's `cast.ToString` renders it.
fn value_as_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Arrays and objects have no string form there.
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// `X-Token` → `x_token`, `xToken` → `x_token`: header names as rules
/// address them (`@request.headers.x_token`).
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower_or_digit = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && previous_lower_or_digit {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            previous_lower_or_digit = c.is_lowercase() || c.is_ascii_digit();
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            previous_lower_or_digit = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_topic_shapes() {
        let all = parse("posts/*");
        assert_eq!(all.collection, "posts");
        assert_eq!(all.target, Target::AllRecords);
        assert!(all.options.is_empty());
        assert_eq!(parse("posts").target, Target::AllRecords);
        let one = parse("pbc_123/abc");
        assert_eq!(one.collection, "pbc_123");
        assert_eq!(one.target, Target::Record("abc".into()));
    }

    #[test]
    fn topics_match_by_collection_name_or_id_and_pick_the_rule() {
        let all = parse("posts/*");
        assert_eq!(all.rule_for("posts", "pbc_1", "r1"), Some(RuleKind::List));
        assert_eq!(
            parse("pbc_1/*").rule_for("posts", "pbc_1", "r1"),
            Some(RuleKind::List)
        );
        assert_eq!(all.rule_for("postsx", "pbc_2", "r1"), None);
        assert_eq!(all.rule_for("Posts", "pbc_2", "r1"), None, "case-sensitive");
        let one = parse("posts/r1?options=%7B%7D");
        assert_eq!(one.rule_for("posts", "pbc_1", "r1"), Some(RuleKind::View));
        assert_eq!(one.rule_for("posts", "pbc_1", "r2"), None);
        assert_eq!(parse("@oauth2").rule_for("posts", "pbc_1", "r1"), None);
    }

    #[test]
    fn options_carry_query_and_normalised_headers() {
        let json = r#"{"query":{"filter":"n >= 10","fields":"id,title","page":2,"x":null},"headers":{"X-Token":"t","xApiKey":"k","n":1}}"#;
        let encoded: String = json
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let topic = parse(&format!("posts/*?options={encoded}"));
        assert_eq!(topic.target, Target::AllRecords);
        let options = &topic.options;
        assert_eq!(options.filter(), Some("n >= 10"));
        assert_eq!(options.fields(), Some("id,title"));
        assert_eq!(options.query.get("page").map(String::as_str), Some("2"));
        assert_eq!(options.query.get("x").map(String::as_str), Some(""));
        assert_eq!(
            options.headers.get("x_token").map(String::as_str),
            Some("t")
        );
        assert_eq!(
            options.headers.get("x_api_key").map(String::as_str),
            Some("k")
        );
        assert!(
            !options.headers.contains_key("n"),
            "non-string header values are dropped"
        );
    }

    #[test]
    fn malformed_options_are_ignored_not_refused() {
        for sub in [
            "posts/*?options=",
            "posts/*?options=%7Bbroken",
            "posts/*?options=%5B1%5D",
            "posts/*?other=1",
        ] {
            let topic = parse(sub);
            assert_eq!(topic.collection, "posts", "{sub}");
            assert!(topic.options.is_empty(), "{sub}");
        }
    }

    #[test]
    fn blank_query_values_count_as_absent() {
        let topic = parse("posts/*?options=%7B%22query%22%3A%7B%22filter%22%3A%22%20%22%7D%7D");
        assert_eq!(topic.options.filter(), None);
        assert_eq!(topic.options.expand(), None);
    }

    #[test]
    fn header_names_become_snake_case() {
        assert_eq!(snake_case("X-Token"), "x_token");
        assert_eq!(snake_case("Authorization"), "authorization");
        assert_eq!(snake_case("xApiKey"), "x_api_key");
        assert_eq!(snake_case("--a--b--"), "a_b");
    }
}
