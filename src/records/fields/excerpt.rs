//! `:excerpt(max, withEllipsis)`: the plain text of an HTML fragment, with
//! whitespace collapsed, cut to `max` characters.
//!
//! The reference parses the HTML into a tree and walks it; this walks a
//! token stream with a stack of open elements instead, which gives the
//! same text for the markup editors produce (and for plain text). It is
//! a text extractor, never a sanitizer: its output is not HTML.
//!
//! Reference details kept on purpose: block elements separate words with
//! one space, inline ones do not; the content of script-like and form
//! elements is dropped; once the text is more than `max + 2` *bytes* long,
//! elements that start afterwards contribute nothing (which cuts multibyte
//! text earlier than `max` characters); the final cut counts characters.

/// Elements whose content never shows.
const EXCLUDED: &[&str] = &[
    "head", "style", "script", "iframe", "embed", "applet", "object", "svg", "img", "picture",
    "dialog", "template", "button", "form", "textarea", "input", "select", "option",
];

/// Elements that do not separate words; every other element does.
const INLINE: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdo", "big", "br", "button", "cite", "code", "em", "i", "label",
    "q", "small", "span", "strong", "strike", "sub", "sup", "time",
];

/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "hr", "img", "input", "keygen",
    "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text up to their end tag, never markup.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "textarea",
    "title",
    "plaintext",
];

/// Raw-text elements whose content still decodes character references.
const ESCAPABLE_RAW_TEXT: &[&str] = &["textarea", "title"];

/// Elements that a parser moves into `<head>` when they come first.
const HEAD_ONLY: &[&str] = &["title", "base", "link", "meta", "style", "script"];

/// The plain-text excerpt of `html`.
pub fn excerpt(html: &str, max: usize, ellipsis: bool) -> String {
    let mut text = TextBuilder::new(max);
    walk(html, &mut text);
    let full = text.out.trim();
    if full.chars().count() <= max {
        return full.to_string();
    }
    let cut: String = full.chars().take(max).collect();
    let mut result = cut.trim().to_string();
    if ellipsis {
        result.push_str("...");
    }
    result
}

/// The text written so far and the reference's spacing state.
struct TextBuilder {
    out: String,
    /// The text ends with a space (the start counts as one).
    prev_space: bool,
    max: usize,
}

impl TextBuilder {
    fn new(max: usize) -> TextBuilder {
        // The document's root elements are blocks: the text starts after a space.
        TextBuilder {
            out: " ".to_string(),
            prev_space: true,
            max,
        }
    }

    fn text(&mut self, raw: &str) {
        let collapsed = collapse_whitespace(raw);
        let piece = if self.prev_space {
            collapsed.trim_start_matches(' ')
        } else {
            collapsed.as_str()
        };
        if !piece.is_empty() {
            self.prev_space = piece.ends_with(' ');
            self.out.push_str(piece);
        }
    }

    fn block_edge(&mut self) {
        if !self.prev_space {
            self.out.push(' ');
            self.prev_space = true;
        }
    }

    /// The reference stops descending once the text is this long.
    fn is_full(&self) -> bool {
        self.out.len() > self.max.saturating_add(2)
    }
}

/// Runs of HTML whitespace (not other Unicode spaces) become one space.
fn collapse_whitespace(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_space = false;
    for ch in raw.chars() {
        if matches!(ch, ' ' | '\t' | '\n' | '\r' | '\x0c') {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(ch);
            in_space = false;
        }
    }
    out
}

/// How an open element contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Content shows; a block adds spaces around it.
    Shown { block: bool },
    /// Started after the text was full: spaces around it, no content.
    Skipped { block: bool },
    /// Excluded element, or anything inside a hidden element.
    Hidden,
}

struct Open {
    name: String,
    mode: Mode,
}

/// The element stack and what the current position contributes.
struct Walker<'t> {
    text: &'t mut TextBuilder,
    stack: Vec<Open>,
    /// No content seen yet: head-only elements go to the (hidden) head.
    in_head: bool,
}

impl Walker<'_> {
    fn hidden(&self) -> bool {
        self.stack
            .iter()
            .any(|o| matches!(o.mode, Mode::Hidden | Mode::Skipped { .. }))
    }

    fn text(&mut self, raw: &str) {
        if self.hidden() {
            return;
        }
        if raw.chars().any(|c| !c.is_ascii_whitespace()) {
            self.in_head = false;
        }
        self.text.text(raw);
    }

    fn start(&mut self, name: &str, self_closing: bool) {
        let void = VOID.contains(&name);
        let excluded = EXCLUDED.contains(&name) || (self.in_head && HEAD_ONLY.contains(&name));
        let mode = if self.hidden() || excluded {
            Mode::Hidden
        } else {
            self.in_head = false;
            let block = !INLINE.contains(&name);
            if block {
                self.text.block_edge();
            }
            if self.text.is_full() {
                Mode::Skipped { block }
            } else {
                Mode::Shown { block }
            }
        };
        // Inside hidden (possibly foreign, e.g. SVG) content `/>` closes.
        let closes_now = void || (self_closing && mode == Mode::Hidden);
        if closes_now {
            self.close(mode);
        } else {
            self.stack.push(Open {
                name: name.to_string(),
                mode,
            });
        }
    }

    fn end(&mut self, name: &str) {
        if let Some(at) = self.stack.iter().rposition(|o| o.name == name) {
            while self.stack.len() > at {
                if let Some(open) = self.stack.pop() {
                    self.close(open.mode);
                }
            }
        } else if name == "p" || name == "br" {
            // A stray `</p>` is an empty paragraph, a stray `</br>` a `<br>`.
            self.start(name, true);
            if name == "p" {
                self.end_of_new_p();
            }
        }
    }

    /// The empty paragraph opened by a stray `</p>` closes at once.
    fn end_of_new_p(&mut self) {
        if self.stack.last().is_some_and(|o| o.name == "p") {
            if let Some(open) = self.stack.pop() {
                self.close(open.mode);
            }
        }
    }

    fn close(&mut self, mode: Mode) {
        if let Mode::Shown { block: true } | Mode::Skipped { block: true } = mode {
            if !self.hidden() {
                self.text.block_edge();
            }
        }
    }

    fn finish(&mut self) {
        while let Some(open) = self.stack.pop() {
            self.close(open.mode);
        }
    }
}

/// Tokenizes `html` and feeds the walker.
fn walk(html: &str, text: &mut TextBuilder) {
    let mut walker = Walker {
        text,
        stack: Vec::new(),
        in_head: true,
    };
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            walker.text(&decode_entities(rest));
            break;
        };
        if lt > 0 {
            walker.text(&decode_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        match read_markup(rest) {
            Markup::Text(len) => {
                walker.text("<");
                rest = &rest[len..];
            }
            Markup::Ignored(len) => rest = &rest[len..],
            Markup::End(name, len) => {
                walker.end(&name);
                rest = &rest[len..];
            }
            Markup::Start(name, self_closing, len) => {
                rest = &rest[len..];
                walker.start(&name, self_closing);
                if RAW_TEXT.contains(&name.as_str()) && !self_closing {
                    let (content, after) = split_raw_text(rest, &name);
                    if ESCAPABLE_RAW_TEXT.contains(&name.as_str()) {
                        walker.text(&decode_entities(content));
                    } else {
                        walker.text(content);
                    }
                    walker.end(&name);
                    rest = after;
                }
            }
        }
    }
    walker.finish();
}

/// What a `<` starts, with the byte length it covers.
enum Markup {
    /// A literal `<` (1 byte).
    Text(usize),
    /// Comment, doctype, processing instruction, `</>`.
    Ignored(usize),
    End(String, usize),
    /// Name, self-closing flag.
    Start(String, bool, usize),
}

fn read_markup(at: &str) -> Markup {
    let bytes = at.as_bytes();
    let next = bytes.get(1).copied();
    match next {
        Some(b'!') if at.starts_with("<!--") => Markup::Ignored(comment_len(at)),
        Some(b'!') | Some(b'?') => Markup::Ignored(until_gt(at)),
        Some(b'/') => match bytes.get(2).copied() {
            Some(c) if c.is_ascii_alphabetic() => {
                let (name, _, len) = read_tag(at, 2);
                Markup::End(name, len)
            }
            Some(b'>') => Markup::Ignored(3),
            None => Markup::Text(1),
            Some(_) => Markup::Ignored(until_gt(at)),
        },
        Some(c) if c.is_ascii_alphabetic() => {
            let (name, self_closing, len) = read_tag(at, 1);
            Markup::Start(name, self_closing, len)
        }
        _ => Markup::Text(1),
    }
}

fn comment_len(at: &str) -> usize {
    match at[4..].find("-->") {
        Some(end) => 4 + end + 3,
        None => at.len(),
    }
}

fn until_gt(at: &str) -> usize {
    at.find('>').map_or(at.len(), |i| i + 1)
}

/// Reads a tag from `start` (just after `<` or `</`): its lower-cased name,
/// whether it ends with `/>`, and the length up to and including `>`.
/// Attributes are skipped, honouring quoted values.
fn read_tag(at: &str, start: usize) -> (String, bool, usize) {
    let bytes = at.as_bytes();
    let mut i = start;
    while i < bytes.len()
        && !matches!(
            bytes[i],
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>'
        )
    {
        i += 1;
    }
    let name = at[start..i].to_ascii_lowercase();
    let mut quote: Option<u8> = None;
    let mut prev = 0u8;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            // Only a quote right after `=` opens a value.
            None if (b == b'"' || b == b'\'') && prev == b'=' => quote = Some(b),
            None if b == b'>' => return (name, prev == b'/', i + 1),
            None => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
        i += 1;
    }
    // A tag cut off by the end of the input is dropped.
    (name, false, at.len())
}

/// The content of a raw-text element and what follows its end tag start.
fn split_raw_text<'h>(rest: &'h str, name: &str) -> (&'h str, &'h str) {
    let lower = rest.to_ascii_lowercase();
    let closing = format!("</{name}");
    let mut from = 0;
    while let Some(found) = lower[from..].find(&closing) {
        let at = from + found;
        let after = at + closing.len();
        let ends_name = matches!(
            lower.as_bytes().get(after),
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>')
        );
        if ends_name {
            let gt = until_gt(&rest[at..]);
            return (&rest[..at], &rest[at + gt..]);
        }
        from = after;
    }
    (rest, "")
}

/// Replaces character references (`&amp;`, `&#233;`, `&#xE9;`) with the
/// characters they stand for; unknown ones stay as written.
fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match decode_one(rest) {
            Some((decoded, len)) => {
                out.push_str(&decoded);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The reference at the start of `at` (which begins with `&`) and its length.
fn decode_one(at: &str) -> Option<(String, usize)> {
    let body = &at[1..];
    if let Some(num) = body.strip_prefix('#') {
        return decode_numeric(num).map(|(c, len)| (c.to_string(), 2 + len));
    }
    let name_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &body[..name_len];
    if body[name_len..].starts_with(';') {
        if let Some(c) = named_entity(name) {
            return Some((c.to_string(), 1 + name_len + 1));
        }
    }
    // Legacy references work without `;`, even glued to more letters.
    (1..=name_len)
        .rev()
        .find_map(|len| legacy_entity(&name[..len]).map(|c| (c.to_string(), 1 + len)))
}

fn decode_numeric(num: &str) -> Option<(char, usize)> {
    let (radix, digits_from) = match num.as_bytes().first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits = num[digits_from..]
        .chars()
        .take_while(|c| c.is_digit(radix))
        .count();
    if digits == 0 {
        return None;
    }
    let text = &num[digits_from..digits_from + digits];
    let mut len = digits_from + digits;
    if num[len..].starts_with(';') {
        len += 1;
    }
    let code = u32::from_str_radix(text, radix).unwrap_or(u32::MAX);
    Some((numeric_char(code), len))
}

/// Windows-1252 remapping of C1 codes, as HTML parsers do.
const C1_REPLACEMENTS: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

fn numeric_char(code: u32) -> char {
    match code {
        0x80..=0x9F => C1_REPLACEMENTS[(code - 0x80) as usize],
        0 => '\u{FFFD}',
        _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
    }
}

/// Latin-1 named references (U+00A0 to U+00FF), which also work without `;`.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

fn legacy_entity(name: &str) -> Option<char> {
    let basic = match name {
        "amp" | "AMP" => Some('&'),
        "lt" | "LT" => Some('<'),
        "gt" | "GT" => Some('>'),
        "quot" | "QUOT" => Some('"'),
        "COPY" => Some('\u{A9}'),
        "REG" => Some('\u{AE}'),
        _ => None,
    };
    basic.or_else(|| {
        LATIN1
            .iter()
            .position(|n| *n == name)
            .and_then(|i| char::from_u32(0xA0 + i as u32))
    })
}

/// Named references that need their `;`: the common typographic ones.
fn named_entity(name: &str) -> Option<char> {
    let c = match name {
        "apos" => '\'',
        "hellip" => '\u{2026}',
        "mdash" => '\u{2014}',
        "ndash" => '\u{2013}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "sbquo" => '\u{201A}',
        "ldquo" => '\u{201C}',
        "rdquo" => '\u{201D}',
        "bdquo" => '\u{201E}',
        "lsaquo" => '\u{2039}',
        "rsaquo" => '\u{203A}',
        "bull" => '\u{2022}',
        "trade" => '\u{2122}',
        "euro" => '\u{20AC}',
        "dagger" => '\u{2020}',
        "Dagger" => '\u{2021}',
        "permil" => '\u{2030}',
        "prime" => '\u{2032}',
        "larr" => '\u{2190}',
        "rarr" => '\u{2192}',
        "uarr" => '\u{2191}',
        "darr" => '\u{2193}',
        "harr" => '\u{2194}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "zwnj" => '\u{200C}',
        "zwj" => '\u{200D}',
        "minus" => '\u{2212}',
        "infin" => '\u{221E}',
        "ne" => '\u{2260}',
        "le" => '\u{2264}',
        "ge" => '\u{2265}',
        "check" => '\u{2713}',
        "hearts" => '\u{2665}',
        _ => return legacy_entity(name),
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (html, excerpt(100), excerpt(5,true)) as the reference answered.
    const REFERENCE: &[(&str, &str, &str)] = &[
        (
            "<p>Héllo wörld ünïcode</p>",
            "Héllo wörld ünïcode",
            "Héllo...",
        ),
        (
            "日本語のテキストです",
            "日本語のテキストです",
            "日本語のテ...",
        ),
        (
            "a &amp; b &lt;c&gt; &nbsp;d",
            "a & b <c> \u{a0}d",
            "a & b...",
        ),
        ("<div>one</div><div>two</div>", "one two", "one t..."),
        ("<p>x<br>y</p>", "xy", "xy"),
        (
            "<script>bad()</script>ok <style>.x{}</style>fine",
            "ok fine",
            "ok fi...",
        ),
        ("   lots   of \n\t space   ", "lots of space", "lots..."),
        ("<ul><li>a</li><li>b</li></ul>", "a b", "a b"),
        ("<b>bold</b><i>it</i>", "boldit", "boldi..."),
        ("plain < text > here", "plain < text > here", "plain..."),
        ("<!-- comment -->after", "after", "after"),
        ("<p>unclosed <b>bold", "unclosed bold", "unclo..."),
        ("x <img src=a.png> y", "x y", "x y"),
        ("<button>btn</button>z", "z", "z"),
        (
            "<b>日本</b><b>語の</b><b>テキ</b>",
            "日本語のテキ",
            "日本語の",
        ),
        ("a<b>x</b>b<b>y</b>c<b>z</b>d", "axbyczd", "axbyc..."),
        (
            "&#x41;&#66; &foo; &amp &ampx &AMP; &lt",
            "AB &foo; & &x & <",
            "AB &f...",
        ),
        ("abcd efgh", "abcd efgh", "abcd..."),
        ("<p> lead</p><p>trail </p>", "lead trail", "lead..."),
        ("<title>T</title>body", "body", "body"),
        ("<textarea>ta</textarea>x", "x", "x"),
        ("<p>a</p>\n<p>b</p>", "a b", "a b"),
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1 2", "1 2"),
        ("<span>a</span> <span>b</span>", "a b", "a b"),
        ("<div><p>nested</p></div>tail", "nested tail", "neste..."),
        ("<svg><text>s</text></svg>after", "after", "after"),
        ("x<noscript>ns</noscript>y", "x ns y", "x ns..."),
        ("<a href=\"u\">link</a>text", "linktext", "linkt..."),
        ("<pre>  pre   text </pre>", "pre text", "pre t..."),
        ("x\u{a0}\u{a0}y", "x\u{a0}\u{a0}y", "x\u{a0}\u{a0}y"),
        ("<P>UP</P><DIV>case</DIV>", "UP case", "UP ca..."),
        ("<custom-el>c</custom-el>d", "c d", "c d"),
        ("<p>a<!--c-->b</p>", "ab", "ab"),
        ("1 < 2 && 3 > 2", "1 < 2 && 3 > 2", "1 < 2..."),
        ("<p>a</P>b</p>c", "a b c", "a b c"),
        ("x</b>y", "xy", "xy"),
        ("<br/>a<hr>b", "a b", "a b"),
    ];

    #[test]
    fn matches_the_reference_outputs() {
        for (html, long, short) in REFERENCE {
            assert_eq!(excerpt(html, 100, false), *long, "excerpt(100) of {html:?}");
            assert_eq!(
                excerpt(html, 5, true),
                *short,
                "excerpt(5,true) of {html:?}"
            );
        }
    }

    #[test]
    fn cuts_by_characters_and_trims_before_the_ellipsis() {
        let html = "<p>An <strong>apple</strong> a day keeps the doctor away.</p>";
        assert_eq!(excerpt(html, 10, true), "An apple a...");
        assert_eq!(excerpt(html, 12, false), "An apple a d");
        assert_eq!(
            excerpt(html, 100, true),
            "An apple a day keeps the doctor away."
        );
        assert_eq!(excerpt("ab", 2, true), "ab", "no ellipsis without a cut");
    }

    #[test]
    fn attributes_with_markup_inside_quotes_do_not_leak() {
        assert_eq!(excerpt("<a title=\"x > y\">in</a>out", 100, false), "inout");
        assert_eq!(excerpt("<div data-x='<b>'>t</div>", 100, false), "t");
    }

    #[test]
    fn unterminated_markup_does_not_panic() {
        for html in [
            "<",
            "<p",
            "<!--",
            "</",
            "&",
            "&#",
            "&#x",
            "<script>x",
            "<a href='",
        ] {
            let _ = excerpt(html, 3, true);
        }
        assert_eq!(excerpt("a <", 10, false), "a <");
    }

    proptest::proptest! {
        /// Any input, however broken: no panic, no surrounding spaces, and
        /// never longer than asked (plus the ellipsis).
        #[test]
        fn never_panics_and_respects_max(
            html in "[<>/!&#;x=a-c \"'\\-é日]{0,60}",
            max in 1usize..20,
            ellipsis: bool,
        ) {
            let out = excerpt(&html, max, ellipsis);
            proptest::prop_assert!(out.chars().count() <= max + 3);
            proptest::prop_assert_eq!(out.trim(), out.as_str());
        }
    }

    #[test]
    fn numeric_references_follow_html_rules() {
        assert_eq!(
            excerpt("&#150;&#0;&#x110000;", 10, false),
            "\u{2013}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(excerpt("&eacute;t&eacute", 10, false), "été");
        assert_eq!(excerpt("&hellip; &hellip", 10, false), "… &hellip");
    }
}
