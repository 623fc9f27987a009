//! The bytes on the wire: the hand-written HTTP response head, SSE events
//! framed as HTTP chunks, the heartbeat comment and the end of the stream.
//!
//! tiny_http's own responder cannot flush per event (see NOTES.md), so the
//! hub writes raw HTTP/1.1 onto the socket it is handed. Every SSE message is
//! exactly one chunk, so a client never sees half an event at a chunk
//! boundary it cannot explain.

use std::fmt::Write as _;
use std::io::Write as _;

/// The chunk that ends a chunked body. The connection then goes back to
/// keep-alive and the SDK's EventSource reconnects.
pub const END_OF_STREAM: &[u8] = b"0\r\n\r\n";

/// An SSE comment line in its own chunk, written to streams that have been
/// quiet for a while: every EventSource ignores it, and writing it is how a
/// peer that went away is noticed (its reset fails the next write). No blank
/// line follows it: a client that splits the stream into events at blank
/// lines (as many hand-written ones do) would see an empty event.
pub const HEARTBEAT_CHUNK: &[u8] = b"2\r\n:\n\r\n";

/// The answer when the hub cannot open a stream for a reason that is not
/// the client's (a caller passed a bad header): a bare 500 that reveals nothing.
pub const INTERNAL_ERROR_RESPONSE: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";

/// Headers the caller may not pass: they would contradict the framing the
/// hub writes, and a second `Content-Length` is a request-smuggling vector
/// for proxies in front of us.
const FRAMING_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "content-type",
    "connection",
];

/// A caller-supplied header that cannot be written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader(pub String);

impl std::fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "header {:?} cannot be added to the event stream", self.0)
    }
}

impl std::error::Error for InvalidHeader {}

/// The `200 OK` head that opens an event stream, with `extra` headers
/// (CORS, security headers) after the fixed ones.
pub fn stream_head(extra: &[(&str, &str)]) -> Result<String, InvalidHeader> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/event-stream\r\n\
         Cache-Control: no-store\r\n\
         X-Accel-Buffering: no\r\n\
         Connection: keep-alive\r\n\
         Transfer-Encoding: chunked\r\n",
    );
    push_extra_headers(&mut head, extra)?;
    head.push_str("\r\n");
    Ok(head)
}

/// A complete `503` answer for a refused stream, with a JSON body in the
/// API's error shape so the SDK shows a readable message.
pub fn refusal_response(
    message: &str,
    retry_after_secs: u64,
    extra: &[(&str, &str)],
) -> Result<String, InvalidHeader> {
    let body = serde_json::json!({ "status": 503, "message": message, "data": {} }).to_string();
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         Content-Type: application/json\r\n\
         Retry-After: {retry_after_secs}\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    push_extra_headers(&mut response, extra)?;
    response.push_str("\r\n");
    response.push_str(&body);
    Ok(response)
}

fn push_extra_headers(out: &mut String, extra: &[(&str, &str)]) -> Result<(), InvalidHeader> {
    for (name, value) in extra {
        if !is_header_name(name) || !is_header_value(value) || is_framing_header(name) {
            return Err(InvalidHeader(name.to_string()));
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "{name}: {value}\r\n");
    }
    Ok(())
}

/// RFC 9110 `token`: what a header name may be made of.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// No CR, LF or NUL: anything else is at worst an odd value, never a second
/// header or a second response.
fn is_header_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

fn is_framing_header(name: &str) -> bool {
    FRAMING_HEADERS
        .iter()
        .any(|framing| framing.eq_ignore_ascii_case(name))
}

/// An event name must stay on its line: a line break would let whoever
/// chose the name (a subscriber picks its topics) forge fields.
pub fn is_valid_event_name(name: &str) -> bool {
    !name.contains(['\r', '\n'])
}

/// One SSE message as one HTTP chunk:
/// `id:<client>\nevent:<name>\ndata:<line>\n…\n` wrapped in `<len>\r\n…\r\n`.
///
/// `data` is normally compact JSON (one line). A multi-line payload becomes
/// several `data:` lines, which EventSource joins back with `\n`, instead of
/// breaking the framing.
#[cfg(test)]
pub fn event_chunk(client_id: &str, event: &str, data: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_event_chunk(&mut out, client_id, event, data);
    out
}

/// Appends [`event_chunk`] to `out`, so a writer can build a whole backlog
/// in one reused buffer and hand it to the socket in one write.
pub fn push_event_chunk(out: &mut Vec<u8>, client_id: &str, event: &str, data: &str) {
    let lines = data_lines(data);
    let payload_len = "id:".len()
        + client_id.len()
        + "\nevent:".len()
        + event.len()
        + 1
        + data_lines(data)
            .map(|line| "data:".len() + line.len() + 1)
            .sum::<usize>()
        + 1;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{payload_len:X}\r\n");
    out.reserve(payload_len + 2);
    out.extend_from_slice(b"id:");
    out.extend_from_slice(client_id.as_bytes());
    out.extend_from_slice(b"\nevent:");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    for line in lines {
        out.extend_from_slice(b"data:");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"\n\r\n");
}

/// The lines of an SSE data field; SSE ends a line at CRLF, CR or LF alike.
fn data_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

#[cfg(test)]
fn chunk(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(format!("{:X}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_chunk_in_the_reference_framing() {
        let bytes = event_chunk("abc", "PB_CONNECT", r#"{"clientId":"abc"}"#);
        let payload = "id:abc\nevent:PB_CONNECT\ndata:{\"clientId\":\"abc\"}\n\n";
        let expected = format!("{:X}\r\n{payload}\r\n", payload.len());
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn multi_line_data_becomes_several_data_lines() {
        let bytes = event_chunk("c", "e", "a\nb\r\nc\rd");
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("data:a\ndata:b\ndata:c\ndata:d\n\n"),
            "{text:?}"
        );
        assert!(!text.contains("\nevent:e\ndata:a\nb"));
    }

    #[test]
    fn chunk_length_counts_bytes_not_characters() {
        let bytes = event_chunk("c", "é", "\"ü\"");
        let text = String::from_utf8(bytes).unwrap();
        let (len, rest) = text.split_once("\r\n").unwrap();
        let payload = rest.strip_suffix("\r\n").unwrap();
        assert_eq!(usize::from_str_radix(len, 16).unwrap(), payload.len());
    }

    #[test]
    fn the_head_declares_a_chunked_event_stream_and_keeps_extra_headers() {
        let head = stream_head(&[("Access-Control-Allow-Origin", "*")]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        for line in [
            "Content-Type: text/event-stream\r\n",
            "Cache-Control: no-store\r\n",
            "X-Accel-Buffering: no\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Access-Control-Allow-Origin: *\r\n",
        ] {
            assert!(head.contains(line), "missing {line:?} in {head:?}");
        }
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn headers_that_could_split_the_response_are_refused() {
        assert!(stream_head(&[("X-A", "1\r\nSet-Cookie: x=1")]).is_err());
        assert!(stream_head(&[("X A", "1")]).is_err());
        assert!(stream_head(&[("", "1")]).is_err());
        assert!(stream_head(&[("content-length", "5")]).is_err());
        assert!(refusal_response("busy", 5, &[("Transfer-Encoding", "gzip")]).is_err());
    }

    #[test]
    fn the_refusal_is_a_503_with_retry_after_and_an_exact_length() {
        let text = refusal_response("Too many clients.", 7, &[]).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("Retry-After: 7\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head
            .lines()
            .any(|line| line == format!("Content-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 503);
        assert_eq!(json["message"], "Too many clients.");
    }

    #[test]
    fn event_names_with_line_breaks_are_invalid() {
        assert!(is_valid_event_name("posts/*?options={\"query\":{}}"));
        assert!(!is_valid_event_name("posts/*\ndata:forged"));
        assert!(!is_valid_event_name("x\r"));
    }

    #[test]
    fn the_heartbeat_chunk_length_matches_its_payload() {
        assert_eq!(HEARTBEAT_CHUNK, chunk(b":\n").as_slice());
    }
}
