//! Body-key modifiers: `field+` (add / append), `+field` (prepend) and
//! `field-` (subtract / remove), applied to a field's current value.
//! Numbers add and subtract; select, relation and file fields edit their
//! list (a single-value field keeps the last element, so `field-` clears it
//! when it names the current value). Other types ignore modifiers.
//!
//! Pure functions: no SQL, no validation of the result.

use serde_json::Value;

use super::cast;
use super::values::{finite_number, shape_list, CoerceError};
use crate::collections::FieldKind;

/// What a modifier key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `+field`
    Prepend,
    /// `field+`
    Append,
    /// `field-`
    Remove,
}

/// The modifier keys of a field, in the order they are applied (after the
/// plain `field` key): prepend, append, remove. The reference applies body
/// keys in no fixed order; this one is deterministic.
pub fn modifier_keys(name: &str) -> [(String, Modifier); 3] {
    [
        (format!("+{name}"), Modifier::Prepend),
        (format!("{name}+"), Modifier::Append),
        (format!("{name}-"), Modifier::Remove),
    ]
}

/// Whether any key of `body` has the shape of a modifier key (`+f`, `f+`,
/// `f-`). Most bodies have none, and then no field needs its three keys
/// spelled out and looked up.
pub fn any_modifier_key(body: &serde_json::Map<String, serde_json::Value>) -> bool {
    body.keys()
        .any(|key| key.starts_with('+') || key.ends_with('+') || key.ends_with('-'))
}

/// The field's new value after applying `modifier` with operand `raw` to
/// `current`, `Ok(None)` when the type ignores that modifier (text, `+n`
/// on numbers, ...), or an error when a number turns into NaN/infinity.
pub fn apply(
    kind: &FieldKind,
    current: &Value,
    modifier: Modifier,
    raw: &Value,
) -> Result<Option<Value>, CoerceError> {
    match kind {
        FieldKind::Number { .. } => apply_to_number(current, modifier, raw),
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => {
            Ok(Some(apply_to_list(kind, current, modifier, raw)))
        }
        _ => Ok(None),
    }
}

fn apply_to_number(
    current: &Value,
    modifier: Modifier,
    raw: &Value,
) -> Result<Option<Value>, CoerceError> {
    let base = cast::to_float(current);
    let operand = cast::to_float(raw);
    let result = match modifier {
        Modifier::Append => base + operand,
        Modifier::Remove => base - operand,
        Modifier::Prepend => return Ok(None),
    };
    finite_number(result).map(Some)
}

fn apply_to_list(kind: &FieldKind, current: &Value, modifier: Modifier, raw: &Value) -> Value {
    let existing = cast::to_unique_strings(current);
    let operand = cast::to_unique_strings(raw);
    let combined = match modifier {
        Modifier::Append => existing.into_iter().chain(operand).collect(),
        Modifier::Prepend => operand.into_iter().chain(existing).collect(),
        Modifier::Remove => existing
            .into_iter()
            .filter(|item| !operand.contains(item))
            .collect(),
    };
    shape_list(kind, cast::unique_non_empty(combined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modifier_shaped_keys_are_noticed() {
        let keys = |body: Value| any_modifier_key(body.as_object().expect("an object"));
        assert!(!keys(json!({"title": "x", "views": 1, "a-b": 2, "c+d": 3})));
        assert!(keys(json!({"title": "x", "views+": 1})));
        assert!(keys(json!({"+tags": ["a"]})));
        assert!(keys(json!({"tags-": "a"})));
        assert!(!keys(json!({})));
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
            values: vec![],
            max_select,
        }
    }

    fn run(kind: &FieldKind, current: Value, modifier: Modifier, raw: Value) -> Option<Value> {
        apply(kind, &current, modifier, &raw).unwrap()
    }

    #[test]
    fn numbers_add_and_subtract_numeric_strings_too() {
        let n = number();
        assert_eq!(
            run(&n, json!(10), Modifier::Append, json!(5)),
            Some(json!(15))
        );
        assert_eq!(
            run(&n, json!(15), Modifier::Remove, json!(20)),
            Some(json!(-5))
        );
        assert_eq!(
            run(&n, json!(-5), Modifier::Append, json!(0.5)),
            Some(json!(-4.5))
        );
        assert_eq!(
            run(&n, json!(10), Modifier::Append, json!("5")),
            Some(json!(15))
        );
        assert_eq!(
            run(&n, json!(15), Modifier::Remove, json!("abc")),
            Some(json!(15))
        );
        assert_eq!(
            run(&n, json!(3), Modifier::Append, json!(null)),
            Some(json!(3))
        );
        assert_eq!(
            run(&n, json!(3), Modifier::Append, json!(true)),
            Some(json!(4))
        );
        assert_eq!(run(&n, json!(3), Modifier::Prepend, json!(2)), None);
        assert_eq!(
            apply(&n, &json!(3), Modifier::Append, &json!("NaN")),
            Err(CoerceError::NotANumber)
        );
    }

    #[test]
    fn multi_value_lists_append_prepend_and_remove() {
        let s = select(4);
        assert_eq!(
            run(&s, json!(["b"]), Modifier::Append, json!(["c", "d"])),
            Some(json!(["b", "c", "d"]))
        );
        assert_eq!(
            run(&s, json!(["b", "c", "d"]), Modifier::Prepend, json!("a")),
            Some(json!(["a", "b", "c", "d"]))
        );
        assert_eq!(
            run(
                &s,
                json!(["a", "b", "c", "d"]),
                Modifier::Remove,
                json!(["b", "d"])
            ),
            Some(json!(["a", "c"]))
        );
        assert_eq!(
            run(&s, json!(["a", "b"]), Modifier::Append, json!("b")),
            Some(json!(["a", "b"])),
            "appending a present value keeps one"
        );
        assert_eq!(
            run(&s, json!(["a", "b"]), Modifier::Prepend, json!(["c", "a"])),
            Some(json!(["c", "a", "b"]))
        );
        assert_eq!(
            run(&s, json!(["b", "c"]), Modifier::Remove, json!("[\"b\"]")),
            Some(json!(["c"]))
        );
        assert_eq!(
            run(&s, json!(["c"]), Modifier::Remove, json!("zz")),
            Some(json!(["c"]))
        );
    }

    #[test]
    fn single_value_fields_keep_the_last_and_clear_on_remove() {
        let s = select(1);
        assert_eq!(
            run(&s, json!("a"), Modifier::Remove, json!("b")),
            Some(json!("a"))
        );
        assert_eq!(
            run(&s, json!("a"), Modifier::Remove, json!("a")),
            Some(json!(""))
        );
        assert_eq!(
            run(&s, json!(""), Modifier::Append, json!("b")),
            Some(json!("b"))
        );
        assert_eq!(
            run(&s, json!("b"), Modifier::Prepend, json!("c")),
            Some(json!("b"))
        );
        assert_eq!(
            run(&s, json!("b"), Modifier::Append, json!(["a", "b"])),
            Some(json!("a"))
        );
    }

    #[test]
    fn other_types_ignore_modifiers() {
        let text = FieldKind::Text {
            min: 0,
            max: 0,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        };
        for modifier in [Modifier::Append, Modifier::Prepend, Modifier::Remove] {
            assert_eq!(run(&text, json!("x"), modifier, json!("y")), None);
            assert_eq!(
                run(&FieldKind::Bool, json!(false), modifier, json!(true)),
                None
            );
            assert_eq!(
                run(
                    &FieldKind::GeoPoint,
                    json!(null),
                    modifier,
                    json!({"lon": 1})
                ),
                None
            );
        }
    }

    #[test]
    fn keys_are_named_like_the_reference() {
        let keys = modifier_keys("tags");
        assert_eq!(keys[0].0, "+tags");
        assert_eq!(keys[1].0, "tags+");
        assert_eq!(keys[2].0, "tags-");
    }
}
