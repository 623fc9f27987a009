//! Loose conversions of JSON input values, with the reference's semantics:
//! PocketBase is written in Go and converts request values the way Go's
//! `strconv` and the `cast` library do, so `"1_000"` is a number, `"T"` is
//! true and `[{"a":1}]` is no list at all. Every rule here was checked
//! against the reference binary.
//!
//! Pure functions only: no schema knowledge, no SQL, no errors raised — a
//! value that cannot be converted becomes the zero value, as in the reference.

use serde_json::{Number, Value};

/// Largest integer a float holds exactly; whole floats up to it are shown as
/// JSON integers (`15`, not `15.0`).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A float as a JSON number: whole values as integers, others as floats.
/// `NaN`/infinities have no JSON form and become 0 (callers reject them first).
pub fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= MAX_EXACT_INTEGER {
        // `as` is exact here; it also turns -0.0 into 0.
        return Value::from(f as i64);
    }
    Number::from_f64(f).map_or(Value::from(0), Value::Number)
}

/// Any JSON value as text: strings as is, numbers in Go's shortest
/// fixed-point form (`1e21` → `"1000000000000000000000"`), booleans as
/// `true`/`false`; null, arrays and objects as `""`.
pub fn to_text(raw: &Value) -> String {
    match raw {
        Value::String(s) => s.clone(),
        Value::Number(n) => format_float(json_number_as_f64(n)),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Like [`to_text`], but `None` for arrays and objects, which the reference
/// refuses to turn into a list element.
fn to_text_strict(raw: &Value) -> Option<String> {
    match raw {
        Value::Array(_) | Value::Object(_) => None,
        other => Some(to_text(other)),
    }
}

/// JSON numbers arrive in the reference as 64-bit floats, so large integers
/// lose their low digits exactly as they do there.
fn json_number_as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// A float in Go's `strconv.FormatFloat(f, 'f', -1, 64)` form. Rust's
/// `Display` for `f64` is the same shortest round-trip, fixed-point text.
pub fn format_float(f: f64) -> String {
    format!("{f}")
}

/// Truthiness: `true`, non-zero numbers, and the strings `1 t T true TRUE True`.
pub fn to_bool(raw: &Value) -> bool {
    match raw {
        Value::Bool(b) => *b,
        Value::Number(n) => json_number_as_f64(n) != 0.0,
        Value::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// A number: JSON numbers, booleans as 1/0, strings parsed with Go's float
/// syntax, everything else 0. May return NaN or an infinity (from strings
/// such as `"NaN"` or `"inf"`); the caller rejects those.
pub fn to_float(raw: &Value) -> f64 {
    match raw {
        Value::Number(n) => json_number_as_f64(n),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => parse_go_float(s).unwrap_or(0.0),
        Value::Null | Value::Array(_) | Value::Object(_) => 0.0,
    }
}

/// A list of distinct non-empty strings, the shape of multi-value fields:
/// a string holding a JSON array of strings is decoded, any other non-empty
/// string is a one-element list, arrays keep the first occurrence of each
/// element (numbers and booleans become text), and an array containing an
/// array or object converts to nothing at all.
pub fn to_unique_strings(raw: &Value) -> Vec<String> {
    let items: Vec<String> = match raw {
        Value::Null | Value::Object(_) => Vec::new(),
        Value::String(s) => strings_from_text(s),
        Value::Array(items) => items
            .iter()
            .map(to_text_strict)
            .collect::<Option<Vec<String>>>()
            .unwrap_or_default(),
        Value::Number(_) | Value::Bool(_) => vec![to_text(raw)],
    };
    unique_non_empty(items)
}

fn strings_from_text(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(list) => list,
        Err(_) => vec![text.to_string()],
    }
}

/// Drops empty strings and later duplicates, keeping the order of first use.
pub fn unique_non_empty(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Parses a float with the syntax of Go's `strconv.ParseFloat`: optional
/// sign, decimal or `0x` hexadecimal (with a mandatory `p` exponent)
/// mantissa, `_` separators between digits, and the special values
/// `inf`/`infinity` (signed, any case) and `nan`. `None` for syntax errors
/// and for finite text whose value overflows (Go reports a range error and
/// the reference then falls back to 0).
pub fn parse_go_float(text: &str) -> Option<f64> {
    if let Some(special) = parse_special_float(text) {
        return Some(special);
    }
    if !underscores_between_digits(text) {
        return None;
    }
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, unsigned) = match cleaned.as_bytes().first() {
        Some(b'+') => (false, &cleaned[1..]),
        Some(b'-') => (true, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let magnitude = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        parse_hex_float(hex)?
    } else {
        parse_decimal_float(unsigned)?
    };
    if magnitude.is_infinite() {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_special_float(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let (negative, word) = match lower.as_bytes().first() {
        Some(b'+') => (false, &lower[1..]),
        Some(b'-') => (true, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    match word {
        "inf" | "infinity" if negative => Some(f64::NEG_INFINITY),
        "inf" | "infinity" => Some(f64::INFINITY),
        // Go accepts "nan" only without a sign.
        "nan" if word.len() == lower.len() => Some(f64::NAN),
        _ => None,
    }
}

/// Go's rule for `_` in numbers: each underscore sits between two digits
/// (a `0x`/`0b`/`0o` prefix counts as a digit on its left).
fn underscores_between_digits(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let bytes = unsigned.as_bytes();
    let (mut index, mut hex, mut last) = (0, false, LastSeen::Start);
    if bytes.len() >= 2 && bytes[0] == b'0' && matches!(bytes[1] | 0x20, b'b' | b'o' | b'x') {
        index = 2;
        hex = bytes[1] | 0x20 == b'x';
        last = LastSeen::Digit;
    }
    for &b in &bytes[index..] {
        let is_digit = b.is_ascii_digit() || (hex && b.is_ascii_hexdigit());
        last = match (b, last) {
            _ if is_digit => LastSeen::Digit,
            (b'_', LastSeen::Digit) => LastSeen::Underscore,
            (b'_', _) | (_, LastSeen::Underscore) => return false,
            _ => LastSeen::Other,
        };
    }
    last != LastSeen::Underscore
}

#[derive(Clone, Copy, PartialEq)]
enum LastSeen {
    Start,
    Digit,
    Underscore,
    Other,
}

/// `digits[.digits][e[sign]digits]` with at least one mantissa digit.
fn parse_decimal_float(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut mantissa_digits = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
        mantissa_digits += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < bytes.len() && (bytes[i] | 0x20) == b'e' {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        let exponent_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exponent_start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok()
}

/// Hexadecimal mantissa (after `0x`) with a mandatory binary exponent: `1p4`, `1.8P-2`.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once(['p', 'P'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for c in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let fraction_bits = i32::try_from(fraction.len()).ok()?.checked_mul(4)?;
    Some(value * 2f64.powi(exponent.checked_sub(fraction_bits)?))
}

/// Go's `%v` for a float64, used inside validation messages: shortest
/// digits, exponent form below 1e-4 and from 1e21 (`1e+21`).
pub fn format_float_for_message(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let text = format!("{f:e}");
        return match text.split_once('e') {
            Some((mantissa, exp)) if exp.starts_with('-') => {
                format!("{mantissa}e-{:0>2}", &exp[1..])
            }
            Some((mantissa, exp)) => format!("{mantissa}e+{exp:0>2}"),
            None => text,
        };
    }
    format_float(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_follows_go_formatting() {
        assert_eq!(to_text(&json!("  x  ")), "  x  ", "not trimmed");
        assert_eq!(to_text(&json!(5)), "5");
        assert_eq!(to_text(&json!(1.5)), "1.5");
        assert_eq!(to_text(&json!(1e21)), "1000000000000000000000");
        assert_eq!(to_text(&json!(0.1)), "0.1");
        assert_eq!(
            to_text(&json!(12345678901234567890u64)),
            "12345678901234567000"
        );
        assert_eq!(to_text(&json!(true)), "true");
        assert_eq!(to_text(&json!(null)), "");
        assert_eq!(to_text(&json!(["a"])), "");
        assert_eq!(to_text(&json!({"a": 1})), "");
    }

    #[test]
    fn bool_truthiness_matches_go_parse_bool() {
        for yes in [
            json!(true),
            json!(1),
            json!(2),
            json!(0.5),
            json!(-1),
            json!("1"),
        ] {
            assert!(to_bool(&yes), "{yes}");
        }
        for yes in ["t", "T", "true", "TRUE", "True"] {
            assert!(to_bool(&json!(yes)), "{yes}");
        }
        for no in ["yes", "0", "false", "f", "on", "", " true", "2"] {
            assert!(!to_bool(&json!(no)), "{no}");
        }
        for no in [json!(null), json!([true]), json!({"a": 1}), json!(0)] {
            assert!(!to_bool(&no), "{no}");
        }
    }

    #[test]
    fn floats_parse_like_go_strconv() {
        let cases: &[(&str, Option<f64>)] = &[
            ("12.5", Some(12.5)),
            ("1e3", Some(1000.0)),
            ("+5", Some(5.0)),
            ("5.", Some(5.0)),
            (".5", Some(0.5)),
            ("+.5e1", Some(5.0)),
            ("07", Some(7.0)),
            ("00.5", Some(0.5)),
            ("1_000", Some(1000.0)),
            ("1_000.5", Some(1000.5)),
            ("0x1p4", Some(16.0)),
            ("0x_1p4", Some(16.0)),
            ("0X1P-2", Some(0.25)),
            ("1e-400", Some(0.0)),
            (" 7 ", None),
            ("abc", None),
            ("", None),
            ("0x10", None),
            ("0b101", None),
            ("0o17", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1e", None),
            ("1e+", None),
            (".", None),
            ("-", None),
            ("1,5", None),
            ("1e400", None),
            ("-nan", None),
            ("NaN ", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_float(text), *want, "{text:?}");
        }
    }

    #[test]
    fn special_float_words_parse_to_non_finite_values() {
        for text in ["NaN", "nan"] {
            assert!(parse_go_float(text).is_some_and(f64::is_nan), "{text}");
        }
        for text in ["Infinity", "inf", "infinity", "+Inf"] {
            assert_eq!(parse_go_float(text), Some(f64::INFINITY), "{text}");
        }
        assert_eq!(parse_go_float("-Infinity"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn floats_from_json_values() {
        assert_eq!(to_float(&json!(true)), 1.0);
        assert_eq!(to_float(&json!(null)), 0.0);
        assert_eq!(to_float(&json!("")), 0.0);
        assert_eq!(to_float(&json!([5])), 0.0);
        assert_eq!(to_float(&json!({"a": 1})), 0.0);
        assert_eq!(to_float(&json!("true")), 0.0);
        assert_eq!(to_float(&json!("-2.5")), -2.5);
    }

    #[test]
    fn numbers_render_as_integers_when_whole() {
        assert_eq!(number_value(15.0).to_string(), "15");
        assert_eq!(number_value(-0.0).to_string(), "0");
        assert_eq!(number_value(-4.5).to_string(), "-4.5");
        assert_eq!(number_value(f64::NAN), json!(0));
        assert!(number_value(1e300).is_f64());
    }

    #[test]
    fn string_lists_follow_the_reference() {
        let cases = [
            (json!("a"), vec!["a"]),
            (json!(["b", "a", "b"]), vec!["b", "a"]),
            (json!(["a", "", ""]), vec!["a"]),
            (json!(null), vec![]),
            (json!(""), vec![]),
            (json!("a,b"), vec!["a,b"]),
            (json!("[\"a\",\"b\"]"), vec!["a", "b"]),
            (json!("[\"a\",\"a\",\"b\"]"), vec!["a", "b"]),
            (json!("[1,2]"), vec!["[1,2]"]),
            (json!("\"a\""), vec!["\"a\""]),
            (json!([null, "a"]), vec!["a"]),
            (json!([1, true, 1.5]), vec!["1", "true", "1.5"]),
            (json!([{"a": 1}, "b"]), vec![]),
            (json!([["a"]]), vec![]),
            (json!({"x": "a"}), vec![]),
            (json!(5), vec!["5"]),
        ];
        for (raw, want) in cases {
            assert_eq!(to_unique_strings(&raw), want, "{raw}");
        }
    }

    #[test]
    fn message_floats_use_go_percent_v() {
        assert_eq!(format_float_for_message(-1.5), "-1.5");
        assert_eq!(format_float_for_message(10.0), "10");
        assert_eq!(format_float_for_message(1e21), "1e+21");
        assert_eq!(format_float_for_message(0.00001), "1e-05");
    }
}
