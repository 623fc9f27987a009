//! Random values for text fields' `autogeneratePattern` (record ids,
//! `tokenKey`, user-defined codes). Only the regex subset that describes a
//! fixed alphabet per position is supported: literal characters, character
//! classes such as `[a-z0-9_]`, `\d`, `\w`, and `{n}` / `{n,m}` counts.
//! Anything else (alternation, `*`, `+`, negated classes, ...) is refused
//! with a message rather than guessed at.
//!
//! Randomness comes only from `security::random` (the OS generator).

use crate::security::random;

/// Longest value we agree to generate; keeps a hostile `{n}` harmless.
const MAX_GENERATED_CHARS: usize = 10_000;

/// Why a pattern cannot be generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported autogenerate pattern: {}", self.0)
    }
}

impl std::error::Error for PatternError {}

/// One position group of the pattern: the characters it may hold and how many.
#[derive(Debug, PartialEq)]
struct Piece {
    alphabet: Vec<u8>,
    min: usize,
    max: usize,
}

/// A random string matching `pattern`.
pub fn generate(pattern: &str) -> Result<String, PatternError> {
    let pieces = parse(pattern)?;
    let mut out = String::new();
    for piece in &pieces {
        let count = pick_count(piece.min, piece.max);
        out.push_str(&random::string_from(&piece.alphabet, count));
    }
    Ok(out)
}

/// Checks that a pattern is in the supported subset, without generating.
pub fn check(pattern: &str) -> Result<(), PatternError> {
    parse(pattern).map(|_| ())
}

fn pick_count(min: usize, max: usize) -> usize {
    if max <= min {
        return min;
    }
    // The span is at most MAX_GENERATED_CHARS, so modulo bias is negligible.
    let span = (max - min + 1) as u64;
    min + (random::u64() % span) as usize
}

fn parse(pattern: &str) -> Result<Vec<Piece>, PatternError> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = body.strip_suffix('$').unwrap_or(body);
    if !body.is_ascii() {
        return Err(PatternError("only ASCII characters are supported".into()));
    }
    let bytes = body.as_bytes();
    let mut pieces = Vec::new();
    let mut total = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let (alphabet, next) = parse_atom(bytes, i)?;
        let (min, max, next) = parse_count(bytes, next)?;
        total = total.saturating_add(max);
        if total > MAX_GENERATED_CHARS {
            return Err(PatternError(format!(
                "the value would exceed {MAX_GENERATED_CHARS} characters"
            )));
        }
        pieces.push(Piece { alphabet, min, max });
        i = next;
    }
    if pieces.is_empty() {
        return Err(PatternError("the pattern is empty".into()));
    }
    Ok(pieces)
}

/// The atom starting at `i`: its alphabet and the index after it.
fn parse_atom(bytes: &[u8], i: usize) -> Result<(Vec<u8>, usize), PatternError> {
    match bytes[i] {
        b'[' => parse_class(bytes, i + 1),
        b'\\' => {
            let escaped = *bytes
                .get(i + 1)
                .ok_or_else(|| PatternError("the pattern ends with a backslash".into()))?;
            Ok((escape_alphabet(escaped)?, i + 2))
        }
        b'(' | b')' | b'|' | b'*' | b'+' | b'?' | b'{' | b'}' | b'.' | b'^' | b'$' | b']' => Err(
            PatternError(format!("'{}' is not supported", char::from(bytes[i]))),
        ),
        literal => Ok((vec![literal], i + 1)),
    }
}

fn escape_alphabet(escaped: u8) -> Result<Vec<u8>, PatternError> {
    match escaped {
        b'd' => Ok((b'0'..=b'9').collect()),
        b'w' => Ok((b'a'..=b'z')
            .chain(b'A'..=b'Z')
            .chain(b'0'..=b'9')
            .chain([b'_'])
            .collect()),
        c if c.is_ascii_alphanumeric() => Err(PatternError(format!(
            "'\\{}' is not supported",
            char::from(c)
        ))),
        c => Ok(vec![c]),
    }
}

/// A `[...]` class starting after the `[`: its characters and the index after `]`.
fn parse_class(bytes: &[u8], start: usize) -> Result<(Vec<u8>, usize), PatternError> {
    if bytes.get(start) == Some(&b'^') {
        return Err(PatternError("negated classes are not supported".into()));
    }
    let mut alphabet: Vec<u8> = Vec::new();
    let mut i = start;
    loop {
        let c = *bytes
            .get(i)
            .ok_or_else(|| PatternError("unclosed '['".into()))?;
        if c == b']' && i > start {
            break;
        }
        let (from, after) = class_char(bytes, i)?;
        let is_range = bytes.get(after) == Some(&b'-') && bytes.get(after + 1) != Some(&b']');
        if is_range && after + 1 < bytes.len() {
            let (to, after_range) = class_char(bytes, after + 1)?;
            if to < from {
                return Err(PatternError("a class range is reversed".into()));
            }
            alphabet.extend(from..=to);
            i = after_range;
        } else {
            alphabet.push(from);
            i = after;
        }
    }
    alphabet.sort_unstable();
    alphabet.dedup();
    Ok((alphabet, i + 1))
}

fn class_char(bytes: &[u8], i: usize) -> Result<(u8, usize), PatternError> {
    match bytes.get(i) {
        Some(b'\\') => match bytes.get(i + 1) {
            Some(c) if !c.is_ascii_alphanumeric() => Ok((*c, i + 2)),
            _ => Err(PatternError(
                "escapes inside classes are not supported".into(),
            )),
        },
        Some(c) => Ok((*c, i + 1)),
        None => Err(PatternError("unclosed '['".into())),
    }
}

/// An optional `{n}` or `{n,m}` after an atom: (min, max, index after).
fn parse_count(bytes: &[u8], i: usize) -> Result<(usize, usize, usize), PatternError> {
    match bytes.get(i) {
        Some(b'{') => {}
        Some(b'*' | b'+' | b'?') => {
            return Err(PatternError(
                "unbounded repetition is not supported; use {n}".into(),
            ))
        }
        _ => return Ok((1, 1, i)),
    }
    let close = bytes[i..]
        .iter()
        .position(|&b| b == b'}')
        .map(|p| i + p)
        .ok_or_else(|| PatternError("unclosed '{'".into()))?;
    let inner = std::str::from_utf8(&bytes[i + 1..close])
        .map_err(|_| PatternError("invalid repetition".into()))?;
    let number = |text: &str| {
        text.parse::<usize>()
            .map_err(|_| PatternError(format!("invalid repetition {{{inner}}}")))
    };
    let (min, max) = match inner.split_once(',') {
        Some((min, max)) => (number(min)?, number(max)?),
        None => {
            let n = number(inner)?;
            (n, n)
        }
    };
    if max < min {
        return Err(PatternError(format!("invalid repetition {{{inner}}}")));
    }
    Ok((min, max, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_in(value: &str, allowed: impl Fn(char) -> bool) -> bool {
        value.chars().all(allowed)
    }

    #[test]
    fn record_id_pattern() {
        let id = generate("[a-z0-9]{15}").unwrap();
        assert_eq!(id.len(), 15);
        assert!(all_in(&id, |c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(generate("[a-z0-9]{15}").unwrap(), id);
    }

    #[test]
    fn token_key_pattern() {
        let key = generate("[a-zA-Z0-9]{50}").unwrap();
        assert_eq!(key.len(), 50);
        assert!(all_in(&key, |c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn upper_case_codes_and_literals() {
        let code = generate("[A-Z]{4}").unwrap();
        assert_eq!(code.len(), 4);
        assert!(all_in(&code, |c| c.is_ascii_uppercase()));
        let prefixed = generate("^inv-\\d{3}$").unwrap();
        assert!(prefixed.starts_with("inv-"));
        assert_eq!(prefixed.len(), 7);
        assert!(all_in(&prefixed[4..], |c| c.is_ascii_digit()));
    }

    #[test]
    fn ranges_of_counts_and_class_edges() {
        for _ in 0..20 {
            let v = generate("[-_a]{2,4}").unwrap();
            assert!((2..=4).contains(&v.len()), "{v}");
            assert!(all_in(&v, |c| c == '-' || c == '_' || c == 'a'));
        }
        assert_eq!(generate("x").unwrap(), "x");
    }

    #[test]
    fn unsupported_patterns_are_refused_with_a_reason() {
        for pattern in [
            "", "a*", "[a-z]+", "(ab){2}", "a|b", "[^a]{3}", "[a-z", ".{5}", "a{2,}", "[z-a]",
            "a{99999}", "é{2}", "\\p{L}",
        ] {
            let err = generate(pattern).unwrap_err();
            assert!(!err.0.is_empty(), "{pattern}");
            assert!(check(pattern).is_err(), "{pattern}");
        }
    }
}
