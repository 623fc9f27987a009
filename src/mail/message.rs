//! Rendering a [`Message`] as RFC 5322 text with MIME parts: 7-bit clean
//! (quoted-printable bodies, RFC 2047 encoded words), CRLF line ends, header
//! lines folded under 78 characters where possible.
//!
//! Everything that reaches a header is checked first: CR, LF and other
//! control characters in an address, display name or subject are refused,
//! never stripped, so a crafted value cannot add headers or recipients.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::SmtpError;
use super::plain_text::html_to_text;
use crate::security::base64::encode_std;
use crate::security::random::{string_from, ALPHANUMERIC};

/// A mailbox: address plus optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub name: String,
    pub email: String,
}

impl Address {
    pub fn new(email: impl Into<String>) -> Self {
        Address {
            name: String::new(),
            email: email.into(),
        }
    }

    pub fn with_name(name: impl Into<String>, email: impl Into<String>) -> Self {
        Address {
            name: name.into(),
            email: email.into(),
        }
    }
}

/// One mail. When `text` is empty it is derived from `html`; when `html` is
/// empty only a text part is sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub from: Address,
    pub to: Vec<Address>,
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Longest header or body line we aim for (RFC 5322 recommends 78).
const FOLD_AT: usize = 78;
/// Quoted-printable line limit (RFC 2045), soft-break `=` included.
const QP_LINE: usize = 76;

/// Renders `message` with the given Date (Unix seconds), Message-ID and MIME
/// boundary. [`super::send`] supplies the current time and random values;
/// tests pass fixed ones.
pub fn render_message(
    message: &Message,
    unix_time: u64,
    message_id: &str,
    boundary: &str,
) -> Result<String, SmtpError> {
    check_message(message)?;
    let mut out = String::new();
    push_header(&mut out, "From", &format_mailbox(&message.from));
    let to: Vec<String> = message.to.iter().map(format_mailbox).collect();
    push_header(&mut out, "To", &to.join(", "));
    push_header(&mut out, "Subject", &encode_unstructured(&message.subject));
    push_header(&mut out, "Date", &rfc5322_date(unix_time));
    push_header(&mut out, "Message-ID", &format!("<{message_id}>"));
    push_header(&mut out, "MIME-Version", "1.0");

    let text = if message.text.is_empty() {
        html_to_text(&message.html)
    } else {
        message.text.clone()
    };
    if message.html.is_empty() {
        push_part_headers(&mut out, "text/plain");
        out.push_str("\r\n");
        out.push_str(&quoted_printable(&text));
        return Ok(out);
    }
    push_header(
        &mut out,
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{boundary}\""),
    );
    out.push_str("\r\n");
    for (mime, body) in [("text/plain", text.as_str()), ("text/html", &message.html)] {
        out.push_str(&format!("--{boundary}\r\n"));
        push_part_headers(&mut out, mime);
        out.push_str("\r\n");
        out.push_str(&quoted_printable(body));
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    Ok(out)
}

/// Renders with the current time, a random Message-ID on the sender's domain
/// (as the reference does) and a random boundary.
pub(crate) fn render_for_sending(message: &Message) -> Result<String, SmtpError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let domain = message
        .from
        .email
        .rsplit_once('@')
        .map_or("localhost", |(_, domain)| domain);
    let id = format!("{}@{domain}", string_from(ALPHANUMERIC, 15));
    let boundary = format!("satchel-{}", string_from(ALPHANUMERIC, 24));
    render_message(message, now, &id, &boundary)
}

fn push_part_headers(out: &mut String, mime: &str) {
    push_header(out, "Content-Type", &format!("{mime}; charset=UTF-8"));
    push_header(out, "Content-Transfer-Encoding", "quoted-printable");
}

// ---- checks ------------------------------------------------------------------

/// Refuses anything that could break out of its header or envelope command.
pub(crate) fn check_message(message: &Message) -> Result<(), SmtpError> {
    if message.to.is_empty() {
        return Err(SmtpError::InvalidMessage("no recipients".into()));
    }
    check_mailbox("From", &message.from)?;
    for to in &message.to {
        check_mailbox("To", to)?;
    }
    check_header_text("Subject", &message.subject)
}

fn check_mailbox(role: &str, address: &Address) -> Result<(), SmtpError> {
    check_header_text(role, &address.name)?;
    if !is_envelope_address(&address.email) {
        return Err(SmtpError::InvalidMessage(format!(
            "{role} address {:?} is not a plain ASCII mailbox",
            address.email.escape_debug().to_string()
        )));
    }
    Ok(())
}

/// Control characters (CR and LF above all) have no place in a header value.
fn check_header_text(field: &str, text: &str) -> Result<(), SmtpError> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SmtpError::InvalidMessage(format!(
            "{field} contains a line break or control character"
        )));
    }
    Ok(())
}

/// `local@domain` from a conservative ASCII set: no spaces, brackets, quotes,
/// commas or line breaks, so it is safe in `MAIL FROM:<...>` and headers.
/// (Non-ASCII addresses would need SMTPUTF8, which is not implemented.)
pub(crate) fn is_envelope_address(email: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b);
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && local.bytes().all(allowed)
        && domain.bytes().all(allowed)
}

// ---- headers -----------------------------------------------------------------

/// Appends `Name: value`, folding at spaces so lines stay near 78 characters.
fn push_header(out: &mut String, name: &str, value: &str) {
    let mut line_len = name.len() + 2;
    out.push_str(name);
    out.push_str(": ");
    let mut first = true;
    for word in value.split(' ') {
        if !first {
            if line_len + 1 + word.len() > FOLD_AT {
                out.push_str("\r\n ");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(word);
        line_len += word.len();
        first = false;
    }
    out.push_str("\r\n");
}

/// `"Name" <addr>` (quoted or encoded-word name), or `<addr>` without a name.
fn format_mailbox(address: &Address) -> String {
    if address.name.is_empty() {
        return format!("<{}>", address.email);
    }
    let name = if needs_encoding(&address.name) {
        encoded_words(&address.name)
    } else {
        let escaped = address.name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    };
    format!("{name} <{}>", address.email)
}

/// Subject text: as-is when plain ASCII, RFC 2047 encoded words otherwise.
fn encode_unstructured(text: &str) -> String {
    if needs_encoding(text) {
        encoded_words(text)
    } else {
        text.to_string()
    }
}

/// Non-ASCII, or text a decoder could mistake for an encoded word.
fn needs_encoding(text: &str) -> bool {
    !text.is_ascii() || text.contains("=?") || text.contains('\t')
}

/// `=?UTF-8?B?...?=` words of at most 75 characters, split on character
/// boundaries and separated by spaces (where the header may fold).
fn encoded_words(text: &str) -> String {
    // 75 - len("=?UTF-8?B?") - len("?=") = 63 base64 characters → 45 bytes.
    const MAX_CHUNK_BYTES: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_CHUNK_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", encode_std(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", encode_std(chunk.as_bytes())));
    }
    words.join(" ")
}

/// RFC 5322 date in UTC: `Thu, 26 Nov 2026 20:47:45 +0000`.
fn rfc5322_date(unix_time: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_time / 86_400;
    let seconds = unix_time % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic
/// Gregorian (Howard Hinnant's days-to-civil algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// ---- bodies ------------------------------------------------------------------

/// Quoted-printable (RFC 2045) of UTF-8 text, any line-end style in, CRLF
/// out. A leading `.` is encoded too, so relays that mishandle dot-stuffing
/// cannot eat it.
fn quoted_printable(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalized.len() + normalized.len() / 8);
    for (index, line) in normalized.split('\n').enumerate() {
        if index > 0 {
            out.push_str("\r\n");
        }
        encode_qp_line(line.as_bytes(), &mut out);
    }
    out
}

fn encode_qp_line(line: &[u8], out: &mut String) {
    let mut line_len = 0;
    for (i, &byte) in line.iter().enumerate() {
        let at_end = i + 1 == line.len();
        let literal = match byte {
            b'=' => false,
            b'.' if line_len == 0 => false,
            b' ' | b'\t' => !at_end,
            33..=126 => true,
            _ => false,
        };
        let piece = if literal {
            (byte as char).to_string()
        } else {
            format!("={byte:02X}")
        };
        // Leave room for the soft break `=`, unless this is the line's last piece.
        let limit = if at_end { QP_LINE } else { QP_LINE - 1 };
        if line_len + piece.len() > limit {
            out.push_str("=\r\n");
            line_len = 0;
        }
        if line_len == 0 && piece == "." {
            out.push_str("=2E");
            line_len = 3;
            continue;
        }
        out.push_str(&piece);
        line_len += piece.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            from: Address::with_name("Support", "support@example.com"),
            to: vec![
                Address::new("a@example.org"),
                Address::with_name("B \"Bee\"", "b@example.org"),
            ],
            subject: "Hello".into(),
            html: "<p>Hi <b>there</b></p>".into(),
            text: String::new(),
        }
    }

    fn render(message: &Message) -> String {
        render_message(message, 1_795_000_000, "abc@example.com", "BOUNDARY").unwrap()
    }

    fn header<'a>(rendered: &'a str, name: &str) -> Option<&'a str> {
        rendered
            .split("\r\n\r\n")
            .next()?
            .split("\r\n")
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
    }

    /// Undoes quoted-printable, for checking round trips.
    fn decode_qp(text: &str) -> String {
        let joined = text.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn headers_name_sender_recipients_and_mime() {
        let text = render(&sample());
        assert_eq!(
            header(&text, "From"),
            Some("\"Support\" <support@example.com>")
        );
        assert_eq!(
            header(&text, "To"),
            Some("<a@example.org>, \"B \\\"Bee\\\"\" <b@example.org>")
        );
        assert_eq!(header(&text, "Subject"), Some("Hello"));
        assert_eq!(header(&text, "Message-ID"), Some("<abc@example.com>"));
        assert_eq!(header(&text, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&text, "Date"),
            Some("Wed, 18 Nov 2026 11:06:40 +0000")
        );
        assert_eq!(
            header(&text, "Content-Type"),
            Some("multipart/alternative; boundary=\"BOUNDARY\"")
        );
    }

    #[test]
    fn the_body_has_a_text_part_then_an_html_part() {
        let text = render(&sample());
        let text_at = text
            .find("Content-Type: text/plain; charset=UTF-8")
            .unwrap();
        let html_at = text.find("Content-Type: text/html; charset=UTF-8").unwrap();
        assert!(text_at < html_at);
        assert!(text.contains("\r\n\r\nHi there\r\n--BOUNDARY\r\n"));
        assert!(text.ends_with("--BOUNDARY--\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in output"
        );
    }

    #[test]
    fn text_only_messages_are_a_single_part() {
        let mut message = sample();
        message.html.clear();
        message.text = "just text".into();
        let text = render(&message);
        assert_eq!(
            header(&text, "Content-Type"),
            Some("text/plain; charset=UTF-8")
        );
        assert!(!text.contains("BOUNDARY"));
    }

    #[test]
    fn non_ascii_subjects_and_names_become_encoded_words() {
        let mut message = sample();
        message.subject = "Grüße aus Köln – ".repeat(4);
        message.from.name = "Zoë".into();
        let text = render(&message);
        assert_eq!(
            header(&text, "From"),
            Some("=?UTF-8?B?Wm/Dqw==?= <support@example.com>")
        );
        let subject_block = text.split("\r\nDate:").next().unwrap();
        let subject_block = &subject_block[subject_block.find("Subject:").unwrap()..];
        let mut decoded = Vec::new();
        for word in subject_block
            .trim_start_matches("Subject:")
            .split_whitespace()
        {
            assert!(word.len() <= 75, "encoded word too long: {word}");
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            decoded.extend(crate::security::base64::decode_std(b64).unwrap());
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), message.subject);
        assert!(text.is_ascii());
    }

    #[test]
    fn header_injection_is_refused() {
        let cases: [fn(&mut Message); 8] = [
            |m| m.subject = "Hi\r\nBcc: victim@example.com".into(),
            |m| m.subject = "Hi\nX: y".into(),
            |m| m.from.name = "Evil\r\nBcc: x@y.z".into(),
            |m| m.to[0].email = "a@b.c\r\nRCPT TO:<x@y.z>".into(),
            |m| m.to[0].email = "a@b.c>, <x@y.z".into(),
            |m| m.to[0].email = "not-an-address".into(),
            |m| m.from.email = "a b@c.d".into(),
            |m| m.to.clear(),
        ];
        for mutate in cases {
            let mut message = sample();
            mutate(&mut message);
            let result = render_message(&message, 0, "x@y", "B");
            assert!(
                matches!(result, Err(SmtpError::InvalidMessage(_))),
                "{message:?}"
            );
        }
    }

    #[test]
    fn quoted_printable_round_trips_and_keeps_lines_short() {
        let original = format!(
            "caf\u{e9} = 100%\n.starts with a dot\ntrailing space \n{}\r\nend",
            "long line ".repeat(20)
        );
        let encoded = quoted_printable(&original);
        for line in encoded.split("\r\n") {
            assert!(line.len() <= 76, "line too long: {line:?}");
            assert!(!line.starts_with('.'), "leading dot left: {line:?}");
            assert!(!line.ends_with(' '), "trailing space left: {line:?}");
        }
        assert!(encoded.is_ascii());
        assert_eq!(
            decode_qp(&encoded),
            original.replace("\r\n", "\n").replace('\n', "\r\n")
        );
    }

    #[test]
    fn dates_are_rfc5322_in_utc() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_210_096),
            "Thu, 29 Feb 2024 12:34:56 +0000"
        );
    }

    #[test]
    fn random_ids_use_the_sender_domain() {
        let text = render_for_sending(&sample()).unwrap();
        let id = header(&text, "Message-ID").unwrap();
        assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
    }
}
