//! A plain-text rendering of an HTML mail body, for the `text/plain`
//! alternative: tags dropped, block elements and `<br>` become line breaks,
//! links keep their target, common entities decoded, `<head>`, `<style>` and
//! `<script>` content skipped. Good enough for templated mails; it is not an
//! HTML parser and never executes or fetches anything.

/// Elements whose content is not text for the reader.
const SKIPPED_ELEMENTS: [&str; 4] = ["head", "style", "script", "title"];
/// Elements that start or end a line of text.
const BLOCK_ELEMENTS: [&str; 20] = [
    "p",
    "div",
    "br",
    "tr",
    "li",
    "ul",
    "ol",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "footer",
];

pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut pending_link: Option<String> = None;
    while let Some(tag_start) = rest.find('<') {
        push_text(&mut out, &rest[..tag_start]);
        let after = &rest[tag_start..];
        if let Some(comment_body) = after.strip_prefix("<!--") {
            rest = comment_body
                .find("-->")
                .map_or("", |end| &comment_body[end + 3..]);
            continue;
        }
        let Some(tag_end) = after.find('>') else {
            // A lone `<` is text.
            push_text(&mut out, after);
            rest = "";
            break;
        };
        let tag = Tag::parse(&after[1..tag_end]);
        rest = &after[tag_end + 1..];
        if !tag.closing && SKIPPED_ELEMENTS.contains(&tag.name.as_str()) {
            rest = skip_element_content(rest, &tag.name);
            continue;
        }
        if tag.name == "a" {
            if tag.closing {
                if let Some(href) = pending_link.take() {
                    out.push_str(&format!(" ({href})"));
                }
            } else {
                pending_link = tag.href.filter(|h| !h.is_empty() && !h.starts_with('#'));
            }
        } else if BLOCK_ELEMENTS.contains(&tag.name.as_str()) {
            out.push('\n');
        }
    }
    push_text(&mut out, rest);
    tidy_lines(&out)
}

/// What the converter needs from a tag.
struct Tag {
    name: String,
    closing: bool,
    href: Option<String>,
}

impl Tag {
    fn parse(inner: &str) -> Tag {
        let inner = inner.trim();
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        let name: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let href = if name == "a" {
            attribute(inner, "href")
        } else {
            None
        };
        Tag {
            name,
            closing,
            href,
        }
    }
}

/// The value of `attr="..."` / `attr='...'` in a tag's inside, entity-decoded.
fn attribute(tag_inside: &str, attr: &str) -> Option<String> {
    let lower = tag_inside.to_ascii_lowercase();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find(attr) {
        let start = search_from + found;
        search_from = start + attr.len();
        let preceded_by_space = lower[..start].ends_with(char::is_whitespace);
        let after = tag_inside[search_from..].trim_start();
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        if !preceded_by_space {
            continue;
        }
        let value = value.trim_start();
        let quote = value.chars().next()?;
        let raw = if quote == '"' || quote == '\'' {
            let body = &value[1..];
            &body[..body.find(quote).unwrap_or(body.len())]
        } else {
            value.split_whitespace().next().unwrap_or("")
        };
        return Some(decode_entities(raw));
    }
    None
}

/// Skips to just after `</name>` (case-insensitive), or to the end.
fn skip_element_content<'a>(rest: &'a str, name: &str) -> &'a str {
    let closing = format!("</{name}");
    let lower = rest.to_ascii_lowercase();
    match lower.find(&closing) {
        Some(at) => {
            let after = &rest[at..];
            after.find('>').map_or("", |end| &after[end + 1..])
        }
        None => "",
    }
}

/// Text between tags: whitespace runs collapse to one space (HTML rendering).
fn push_text(out: &mut String, raw: &str) {
    let decoded = decode_entities(raw);
    let mut last_was_space = out.ends_with([' ', '\n']) || out.is_empty();
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !last_was_space {
                out.push(' ');
                last_was_space = true;
            }
        } else {
            out.push(if c == '\u{a0}' { ' ' } else { c });
            last_was_space = false;
        }
    }
}

/// Trims each line and keeps at most one empty line between paragraphs.
fn tidy_lines(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.split('\n').map(str::trim) {
        let previous_blank = lines.last().is_none_or(|l| l.is_empty());
        if line.is_empty() && previous_blank {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        match after.find(';').filter(|&end| end <= 10) {
            Some(end) => match entity_char(&after[1..end]) {
                Some(c) => {
                    out.push(c);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = &after[1..];
                }
            },
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity_char(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "laquo" => '«',
        "raquo" => '»',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_verification_template_reads_well() {
        let html = r#"<p>Hello,</p>
<p>Thank you for joining us at Acme.</p>
<p>Click on the button below to verify your email address.</p>
<p>
  <a class="btn" href="http://localhost:8090/_/#/auth/confirm-verification/TOKEN" target="_blank" rel="noopener">Verify</a>
</p>
<p>
  Thanks,<br/>
  Acme team
</p>"#;
        assert_eq!(
            html_to_text(html),
            "Hello,\n\nThank you for joining us at Acme.\n\nClick on the button below to verify your email address.\n\nVerify (http://localhost:8090/_/#/auth/confirm-verification/TOKEN)\n\nThanks,\nAcme team"
        );
    }

    #[test]
    fn scripts_styles_and_comments_are_dropped() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body><!-- hidden --><script>alert(1)</script><p>Shown</p></body></html>";
        assert_eq!(html_to_text(html), "Shown");
    }

    #[test]
    fn entities_are_decoded() {
        // A non-breaking space is kept next to a collapsible one, as a browser would.
        assert_eq!(
            html_to_text("a &amp; b &lt;c&gt; &#39;d&#x27; &nbsp;e &bogus; &"),
            "a & b <c> 'd'  e &bogus; &"
        );
    }

    #[test]
    fn malformed_html_does_not_panic() {
        for html in [
            "<",
            "<a href=",
            "<a href=\"x",
            "<!-- open",
            "<script>never closed",
            "&#99999999;",
            "<p",
            "é<b>ü</b>",
        ] {
            let _ = html_to_text(html);
        }
        assert_eq!(html_to_text("é<b>ü</b>"), "éü");
    }
}
