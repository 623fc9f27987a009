//! JSON text for what the API sends most: records and request-log rows.
//!
//! The output is byte for byte what `serde_json::to_writer` writes for the
//! same value (the tests compare them); only the way there is cheaper.
//! `serde_json` looks up every byte of a string in an escape table, about
//! ten instructions a byte, and a record view is mostly string bytes. Here a
//! string is checked eight bytes at a time for the few bytes JSON escapes,
//! and copied whole when it has none, the usual case.

use serde_json::Value;

/// A value that writes itself as JSON text.
pub trait WriteJson {
    /// Appends the JSON text of `self` to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        push_value(out, self);
    }
}

impl<T: WriteJson> WriteJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (n, item) in self.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

/// Appends the JSON text of `value`.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => push_serde(out, number),
        Value::String(text) => push_str(out, text),
        Value::Array(items) => items.write_json(out),
        Value::Object(map) => push_object(out, map.iter()),
    }
}

/// Appends a JSON object of `pairs`, in their order.
pub fn push_object<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push(b'{');
    for (n, (key, item)) in pairs.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        push_key(out, key);
        push_value(out, item);
    }
    out.push(b'}');
}

/// Appends `"key":`.
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    push_str(out, key);
    out.push(b':');
}

/// Appends a number (or anything else small) as `serde_json` writes it:
/// integers and floats keep exactly its formatting.
pub fn push_serde<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec fails only for what JSON cannot hold (a map with
    // non-string keys); nothing passed here is such.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Appends `text` as a JSON string: quoted, with `"`, `\` and control
/// characters escaped as `serde_json` escapes them, everything else as is.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Whole words with nothing to escape are skipped eight bytes a step.
        if let Some(word) = bytes.get(at..at + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            if !needs_escape(u64::from_le_bytes(eight)) {
                at += 8;
                continue;
            }
        }
        let byte = bytes[at];
        if let Some(escape) = escape_of(byte) {
            out.extend_from_slice(&bytes[copied..at]);
            push_escape(out, byte, escape);
            copied = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `word` is below 0x20, `"` or `\`
/// (exact, not an estimate: the bit tricks only misplace which byte).
fn needs_escape(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = has_zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero_byte(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) & HIGHS != 0
}

fn has_zero_byte(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The letter after the backslash for a byte JSON escapes: `u` means
/// `\u00XX`.
fn escape_of(byte: u8) -> Option<u8> {
    match byte {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        0x08 => Some(b'b'),
        0x0C => Some(b'f'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0x00..=0x1F => Some(b'u'),
        _ => None,
    }
}

fn push_escape(out: &mut Vec<u8>, byte: u8, escape: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'\\');
    out.push(escape);
    if escape == b'u' {
        out.extend_from_slice(b"00");
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xF)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours(value: &Value) -> String {
        let mut out = Vec::new();
        push_value(&mut out, value);
        String::from_utf8(out).expect("JSON text is UTF-8")
    }

    fn serde(value: &Value) -> String {
        serde_json::to_string(value).expect("serializable")
    }

    #[test]
    fn every_single_byte_string_is_written_as_serde_json_writes_it() {
        for code in 0..=0x7Fu8 {
            let text = Value::String(char::from(code).to_string());
            assert_eq!(ours(&text), serde(&text), "byte {code:#04x}");
        }
    }

    #[test]
    fn escapes_anywhere_in_long_strings_match_serde_json() {
        let specials = [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", "\t", "é", "日本", "\u{7f}", "/",
        ];
        for len in 0..40 {
            let plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..len].to_string();
            let text = Value::String(plain.clone());
            assert_eq!(ours(&text), serde(&text));
            for at in 0..=len {
                for special in specials {
                    let mut mixed = plain.clone();
                    mixed.insert_str(at, special);
                    let text = Value::String(mixed);
                    assert_eq!(ours(&text), serde(&text));
                }
            }
        }
    }

    #[test]
    fn words_of_bytes_near_the_escaped_ones_are_not_taken_for_them() {
        // 0x20, 0x21, 0x23, 0x5B, 0x5D and high bytes sit next to what is
        // escaped; a borrow in the word tricks must not flag them.
        let text = Value::String(" !#[]~\u{80}\u{ff} !#[]~ÿ€ \u{2028}".repeat(5));
        assert_eq!(ours(&text), serde(&text));
        assert!(!needs_escape(u64::from_le_bytes(*b" !#[]~\xc3\xbf")));
        assert!(needs_escape(u64::from_le_bytes(*b" !#[]~\"a")));
        assert!(needs_escape(u64::from_le_bytes(*b"\x1f!#[]~ab")));
        assert!(needs_escape(u64::from_le_bytes(*b"abcdefg\\")));
    }

    #[test]
    fn nested_values_and_numbers_match_serde_json() {
        let value = json!({
            "id": "abc",
            "n": [0, -1, 1.5, 1e300, -0.0, 12345678901234567890u64, i64::MIN, 0.1],
            "ok": true, "no": false, "none": null,
            "nested": {"a\"b": ["x\n", {}, []], "": ""},
        });
        assert_eq!(ours(&value), serde(&value));
    }
}
