//! Turns the right-hand value of `~` / `!~` into a LIKE pattern for
//! `ESCAPE '\'`. A value with its own unescaped `%` is used as the pattern as
//! is (the user asked for wildcards); anything else means "contains", so it is
//! wrapped in `%…%` with `_`, `%` and lone `\` escaped to match literally.

/// The LIKE pattern for a `~` value.
pub(crate) fn contains_pattern(value: &str) -> String {
    if has_unescaped_percent(value) {
        return value.to_owned();
    }
    let mut pattern = String::with_capacity(value.len() + 4);
    pattern.push('%');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // `\` before a special character is the user's own escape: keep the pair.
            '\\' => match chars.peek() {
                Some(&next @ ('\\' | '%' | '_')) => {
                    chars.next();
                    pattern.push('\\');
                    pattern.push(next);
                }
                _ => pattern.push_str("\\\\"),
            },
            '%' | '_' => {
                pattern.push('\\');
                pattern.push(c);
            }
            other => pattern.push(other),
        }
    }
    pattern.push('%');
    pattern
}

/// Whether `value` holds a `%` that is not escaped by a preceding backslash
/// (a doubled backslash escapes itself, not the next character).
fn has_unescaped_percent(value: &str) -> bool {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '%' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn plain_text_is_wrapped() {
        assert_eq!(contains_pattern("post"), "%post%");
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("héllo"), "%héllo%");
    }

    #[test]
    fn underscore_is_literal() {
        assert_eq!(contains_pattern("a_b"), r"%a\_b%");
        // The reference leaves the first of two adjacent `_` unescaped; we
        // escape both so `a__b` never matches `ax_b`.
        assert_eq!(contains_pattern("a__b"), r"%a\_\_b%");
    }

    #[test]
    fn explicit_percent_means_raw_pattern() {
        assert_eq!(contains_pattern("a%b"), "a%b");
        assert_eq!(contains_pattern("%"), "%");
        assert_eq!(contains_pattern("a_%"), "a_%");
        // `\\%` is an escaped backslash followed by a real wildcard.
        assert_eq!(contains_pattern(r"a\\%"), r"a\\%");
    }

    #[test]
    fn escaped_percent_is_literal_and_wrapped() {
        assert_eq!(contains_pattern(r"\%"), r"%\%%");
        assert_eq!(contains_pattern(r"a\_b"), r"%a\_b%");
    }

    #[test]
    fn backslashes() {
        assert_eq!(contains_pattern(r"a\b"), r"%a\\b%");
        assert_eq!(contains_pattern(r"a\\b"), r"%a\\b%");
        assert_eq!(contains_pattern(r"trailing\"), r"%trailing\\%");
    }
}
