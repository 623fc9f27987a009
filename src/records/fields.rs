//! The `fields` query parameter: which keys of a JSON answer to keep
//! (`id,title`, `*`, nested `expand.author.name`) and the value modifiers
//! written after a colon (`body:excerpt(200,true)`).
//!
//! Pure and domain-free: it reshapes any JSON value and knows nothing of
//! records, rules, SQL or HTTP. Unknown keys are ignored, as the reference
//! does; only a malformed expression (unbalanced parenthesis, unknown
//! modifier, bad modifier arguments) is an error.

mod excerpt;

pub use excerpt::excerpt;

use serde_json::{Map, Value};

/// Why a `fields` expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldsError(pub String);

impl std::fmt::Display for FieldsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid fields expression: {}", self.0)
    }
}

impl std::error::Error for FieldsError {}

/// A value modifier applied to a kept key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// Plain text of an HTML string, cut to `max` characters.
    Excerpt { max: usize, ellipsis: bool },
}

impl Modifier {
    /// Non-string values pass through untouched: the key may name a
    /// relation that was not expanded, which is not an error.
    fn apply(self, value: Value) -> Value {
        match (self, value) {
            (Modifier::Excerpt { max, ellipsis }, Value::String(text)) => {
                Value::String(excerpt(&text, max, ellipsis))
            }
            (_, other) => other,
        }
    }
}

/// One comma-separated entry: a dot path and its optional modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pick {
    path: String,
    modifier: Option<Modifier>,
}

/// A parsed `fields` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldsPicker {
    /// Unique by path; a repeated path keeps its last modifier.
    picks: Vec<Pick>,
}

impl FieldsPicker {
    /// `None` when the expression names no field at all (keep everything).
    pub fn parse(raw: &str) -> Result<Option<FieldsPicker>, FieldsError> {
        let mut picks: Vec<Pick> = Vec::new();
        for entry in split_top_level(raw)? {
            let (path, modifier) = match entry.split_once(':') {
                Some((path, modifier)) => (path, Some(parse_modifier(modifier)?)),
                None => (entry.as_str(), None),
            };
            picks.retain(|p| p.path != path);
            picks.push(Pick {
                path: path.to_string(),
                modifier,
            });
        }
        Ok((!picks.is_empty()).then_some(FieldsPicker { picks }))
    }

    /// Keeps only the picked keys of `value`: an object, or an array of
    /// objects (each picked alike). Other values are left as they are.
    pub fn pick(&self, value: &mut Value) {
        pick_value(value, &self.picks);
    }
}

fn pick_value(value: &mut Value, picks: &[Pick]) {
    match value {
        Value::Object(map) => pick_map(map, picks),
        // Arrays of scalars (relation ids, select values) are not pickable.
        Value::Array(items) if items.first().is_some_and(Value::is_object) => {
            for item in items.iter_mut() {
                if let Value::Object(map) = item {
                    pick_map(map, picks);
                }
            }
        }
        _ => {}
    }
}

/// True when `path` is `key` itself or goes through it (`key.…`).
fn goes_through(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What is left of `path` below `key`; empty when `path` ends at `key`
/// (a trailing dot counts as ending there, as in the reference).
fn below(path: &str, key: &str) -> String {
    let rest = path.get(key.len()..).unwrap_or("");
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.strip_suffix('.').unwrap_or(rest).to_string()
}

fn pick_map(map: &mut Map<String, Value>, picks: &[Pick]) {
    if picks.is_empty() {
        return;
    }
    let mut picks = picks.to_vec();
    // `*` keeps every key no other pick already says something about.
    if let Some(star) = picks.iter().find(|p| p.path == "*").map(|p| p.modifier) {
        for key in map.keys() {
            if !picks.iter().any(|p| goes_through(&p.path, key)) {
                picks.push(Pick {
                    path: key.clone(),
                    modifier: star,
                });
            }
        }
    }
    let old = std::mem::take(map);
    for (key, mut value) in old {
        let through: Vec<&Pick> = picks
            .iter()
            .filter(|p| goes_through(&p.path, &key))
            .collect();
        if through.is_empty() {
            continue;
        }
        // A pick ending at this key keeps the whole value, whatever longer
        // picks through it say.
        let whole = through.iter().find(|p| below(&p.path, &key).is_empty());
        match whole {
            Some(pick) => {
                if let Some(modifier) = pick.modifier {
                    value = modifier.apply(value);
                }
            }
            None => {
                let nested: Vec<Pick> = through
                    .iter()
                    .map(|p| Pick {
                        path: below(&p.path, &key),
                        modifier: p.modifier,
                    })
                    .collect();
                pick_value(&mut value, &nested);
            }
        }
        map.insert(key, value);
    }
}

/// Splits on commas outside parentheses and quotes; entries are trimmed
/// and empty ones dropped.
fn split_top_level(raw: &str) -> Result<Vec<String>, FieldsError> {
    let mut entries = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in raw.chars() {
        if !escaped {
            match (ch, quote) {
                ('(', None) => depth += 1,
                (')', None) if depth > 0 => depth -= 1,
                ('\'' | '"' | '`', None) => quote = Some(ch),
                (c, Some(q)) if c == q => quote = None,
                (',', None) if depth == 0 => {
                    entries.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
        }
        escaped = ch == '\\' && !escaped;
        current.push(ch);
    }
    if depth > 0 || quote.is_some() {
        return Err(FieldsError(format!(
            "unbalanced parenthesis or quote in {raw:?}"
        )));
    }
    entries.push(current);
    Ok(entries
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect())
}

/// `excerpt(200,true)`: a name and arguments separated by parentheses,
/// commas or spaces.
fn parse_modifier(raw: &str) -> Result<Modifier, FieldsError> {
    let mut parts = raw
        .split(['(', ')', ',', ' '])
        .filter(|part| !part.is_empty());
    let name = parts
        .next()
        .ok_or_else(|| FieldsError(format!("empty modifier {raw:?}")))?;
    let args: Vec<&str> = parts.collect();
    match name {
        "excerpt" => excerpt_modifier(&args),
        other => Err(FieldsError(format!("unknown modifier {other:?}"))),
    }
}

fn excerpt_modifier(args: &[&str]) -> Result<Modifier, FieldsError> {
    let (max, ellipsis) = match args {
        [max] => (*max, None),
        [max, ellipsis] => (*max, Some(*ellipsis)),
        _ => {
            return Err(FieldsError(
                "excerpt expects (max, withEllipsis?)".to_string(),
            ))
        }
    };
    let max = loose_int(max)
        .filter(|m| *m > 0)
        .ok_or_else(|| FieldsError("excerpt max must be > 0".to_string()))?;
    Ok(Modifier::Excerpt {
        max: usize::try_from(max).unwrap_or(usize::MAX),
        ellipsis: ellipsis.is_some_and(loose_bool),
    })
}

/// The reference's lenient integer: a decimal part is dropped (`4.6` is 4)
/// and Go literal prefixes are understood (`0x10`, `0o17`, `0b11`, `010`).
fn loose_int(text: &str) -> Option<i64> {
    let whole = text.split('.').next().unwrap_or("");
    let (negative, digits) = match whole.as_bytes().first() {
        Some(b'-') => (true, &whole[1..]),
        Some(b'+') => (false, &whole[1..]),
        _ => (false, whole),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (8, oct)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (2, bin)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = i64::from_str_radix(body, radix).ok()?;
    Some(if negative { -value } else { value })
}

/// Go's `strconv.ParseBool` spellings of true; anything else is false.
fn loose_bool(text: &str) -> bool {
    matches!(text, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn picked(fields: &str, mut value: Value) -> Value {
        if let Some(picker) = FieldsPicker::parse(fields).expect("valid fields") {
            picker.pick(&mut value);
        }
        value
    }

    fn post() -> Value {
        json!({
            "id": "p1", "title": "post one", "n": 1,
            "body": "<p>An <strong>apple</strong> a day</p>",
            "tags": ["a", "b"],
            "meta": {"a": {"b": 1, "c": 2}, "l": [{"x": 1, "y": 2}]},
            "expand": {
                "author": {"id": "u1", "name": "Ann", "expand": {"team": {"id": "t1", "title": "Red"}}},
                "friends": [{"id": "u2", "name": "Bob"}, {"id": "u1", "name": "Ann"}]
            }
        })
    }

    #[test]
    fn keeps_only_the_named_top_level_keys() {
        assert_eq!(picked("id,n", post()), json!({"id": "p1", "n": 1}));
        assert_eq!(picked(" id , n ,,", post()), json!({"id": "p1", "n": 1}));
        assert_eq!(picked("nope", post()), json!({}));
    }

    #[test]
    fn an_empty_expression_keeps_everything() {
        for raw in ["", ",", " , "] {
            assert_eq!(FieldsPicker::parse(raw), Ok(None), "{raw:?}");
        }
    }

    #[test]
    fn nested_paths_reach_into_expand_and_arrays_of_objects() {
        assert_eq!(
            picked(
                "title,expand.author.name,expand.author.expand.team.title,expand.friends.name",
                post()
            ),
            json!({"title": "post one", "expand": {
                "author": {"name": "Ann", "expand": {"team": {"title": "Red"}}},
                "friends": [{"name": "Bob"}, {"name": "Ann"}]}})
        );
        assert_eq!(
            picked("meta.a.b,meta.l.x", post()),
            json!({"meta": {"a": {"b": 1}, "l": [{"x": 1}]}})
        );
    }

    #[test]
    fn paths_into_scalars_keep_the_scalar() {
        assert_eq!(
            picked("tags.x,title.y", post()),
            json!({"title": "post one", "tags": ["a", "b"]})
        );
    }

    #[test]
    fn star_keeps_all_keys_not_picked_more_precisely() {
        let out = picked("*,expand.author.name", post());
        assert_eq!(out["title"], "post one");
        assert_eq!(out["meta"], post()["meta"]);
        assert_eq!(out["expand"], json!({"author": {"name": "Ann"}}));
        let nested = picked("expand.author.*", post());
        assert_eq!(nested["expand"]["author"], post()["expand"]["author"]);
    }

    #[test]
    fn a_pick_ending_at_a_key_keeps_the_whole_value() {
        assert_eq!(
            picked("expand,expand.author.name", post())["expand"],
            post()["expand"]
        );
        // a trailing dot still ends there
        assert_eq!(picked("meta.", post())["meta"], post()["meta"]);
    }

    #[test]
    fn the_last_repetition_of_a_path_wins() {
        assert_eq!(picked("id,id:excerpt(1)", post()), json!({"id": "p"}));
        assert_eq!(picked("id:excerpt(1),id", post()), json!({"id": "p1"}));
    }

    #[test]
    fn excerpt_applies_to_strings_only_and_nested_values() {
        assert_eq!(
            picked("body:excerpt(8,true),n:excerpt(1)", post()),
            json!({"body": "An apple...", "n": 1})
        );
        assert_eq!(
            picked("expand.friends.name:excerpt(2,true)", post()),
            json!({"expand": {"friends": [{"name": "Bo..."}, {"name": "An..."}]}})
        );
        assert_eq!(picked("*:excerpt(3)", post())["title"], json!("pos"));
    }

    #[test]
    fn excerpt_arguments_are_read_like_the_reference() {
        let body = |fields: &str| picked(fields, post())["body"].clone();
        assert_eq!(body("body:excerpt(4.6)"), "An a");
        assert_eq!(body("body:excerpt(0x5)"), "An ap");
        assert_eq!(body("body:excerpt(010)"), "An apple");
        assert_eq!(body("body:excerpt(+5)"), "An ap");
        assert_eq!(body("body:excerpt 5"), "An ap");
        assert_eq!(body("body:excerpt((5))"), "An ap");
        assert_eq!(body("body: excerpt(5, t)"), "An ap...");
        assert_eq!(body("body:excerpt(5,yes)"), "An ap");
        assert_eq!(body("body:excerpt(5,)"), "An ap");
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for raw in [
            "title:foo",
            "title:excerpt()",
            "title:excerpt",
            "title:excerpt(0)",
            "title:excerpt(-1)",
            "title:excerpt(0.5)",
            "title:excerpt(abc)",
            "title:excerpt(\"1\")",
            "title:excerpt(1,2,3)",
            "title:excerpt(5):excerpt(2)",
            "title:excerpt(5",
            "id,ti(tle",
            "id,'title",
        ] {
            assert!(FieldsPicker::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_space_is_part_of_the_name() {
        assert_eq!(picked("id title", post()), json!({}));
        assert_eq!(picked("body :excerpt(5)", post()), json!({}));
    }

    #[test]
    fn quoted_commas_do_not_split() {
        assert_eq!(picked("id,\"a,b\"", post()), json!({"id": "p1"}));
    }

    #[test]
    fn arrays_of_records_are_picked_item_by_item() {
        let mut items = json!([{"id": "a", "x": 1}, {"id": "b", "x": 2}]);
        FieldsPicker::parse("id").unwrap().unwrap().pick(&mut items);
        assert_eq!(items, json!([{"id": "a"}, {"id": "b"}]));
    }

    #[test]
    fn key_order_is_kept() {
        let out = picked("n,id,title", post());
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "title", "n"]);
    }
}
