//! Request bodies as the records and auth APIs take them: JSON objects,
//! url-encoded forms and multipart forms (with `@jsonPayload` merged in and
//! file parts streamed to temporary files, never held whole in memory).
//!
//! The result is one JSON object of submitted values plus the uploaded
//! files; what the values mean is for the domain code to decide.

use super::request::{body_read_error, Req};
use crate::error::ApiError;
use crate::security::random;
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// An uploaded file, held in a temporary file until the handler keeps it.
#[derive(Debug)]
pub struct UploadedFile {
    /// The form field it was sent under.
    pub field: String,
    /// The client's file name (untrusted; for display and sanitising only).
    pub original_name: String,
    pub content_type: String,
    pub size: u64,
    pub temp_path: PathBuf,
}

impl Drop for UploadedFile {
    fn drop(&mut self) {
        // A kept file has been moved away; an unused one must not linger.
        let _ = std::fs::remove_file(&self.temp_path);
    }
}

/// A parsed body.
#[derive(Debug, Default)]
pub struct Body {
    pub values: Map<String, Value>,
    pub files: Vec<UploadedFile>,
}

/// Parses the body by its content type. `temp_dir` receives file parts.
pub fn parse(req: &mut Req<'_>, limit: u64, temp_dir: &Path) -> Result<Body, ApiError> {
    let content_type = req.content_type();
    match content_type.as_str() {
        "multipart/form-data" => {
            let boundary = req
                .header("content-type")
                .and_then(boundary_of)
                .ok_or_else(|| ApiError::bad_request("Missing multipart boundary."))?;
            let reader = req.body_reader(limit)?;
            parse_multipart(reader, &boundary, temp_dir)
        }
        "application/x-www-form-urlencoded" => {
            let raw = req.read_body(limit)?;
            let text = String::from_utf8_lossy(&raw);
            let mut values = Map::new();
            for (k, v) in super::request::parse_query(&text) {
                push_form_value(&mut values, k, Value::String(v));
            }
            Ok(Body {
                values,
                files: Vec::new(),
            })
        }
        _ => {
            let raw = req.read_body(limit)?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(Body::default());
            }
            if content_type != "application/json" && !content_type.is_empty() {
                return Err(ApiError::bad_request("Unsupported Content-Type."));
            }
            Ok(Body {
                values: json_object(&raw)?,
                files: Vec::new(),
            })
        }
    }
}

/// Parses a JSON object body. Arrays, scalars, bad JSON and nesting deeper
/// than serde_json's recursion limit are all a 400.
pub fn json_object(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(ApiError::bad_request(
            "Failed to parse the request body as JSON.",
        )),
    }
}

/// Repeated form keys collect into an array, as the reference does.
fn push_form_value(values: &mut Map<String, Value>, key: String, value: Value) {
    match values.get_mut(&key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            values.insert(key, value);
        }
    }
}

fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("boundary") {
            let b = value.trim().trim_matches('"');
            (!b.is_empty() && b.len() <= 200).then(|| b.to_string())
        } else {
            None
        }
    })
}

/// Most header bytes one part may have; bounds memory for hostile input.
const MAX_PART_HEADER: usize = 16 << 10;
/// Most bytes a non-file part may hold in memory.
const MAX_FIELD_VALUE: u64 = 32 << 20;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 64 << 10;

/// Streams a multipart body: plain parts become values, file parts are
/// copied to temp files chunk by chunk.
pub fn parse_multipart(
    reader: impl Read,
    boundary: &str,
    temp_dir: &Path,
) -> Result<Body, ApiError> {
    let mut input = PartReader {
        src: reader,
        buf: Vec::new(),
        pos: 0,
        eof: false,
    };
    input.skip_preamble(format!("--{boundary}").as_bytes())?;
    let close = format!("\r\n--{boundary}");
    let mut body = Body::default();
    loop {
        let headers = input.read_part_headers()?;
        let disposition = header_value(&headers, "content-disposition").unwrap_or_default();
        let name = disposition_param(&disposition, "name").unwrap_or_default();
        let last = match disposition_param(&disposition, "filename") {
            Some(original_name) => {
                let content_type = header_value(&headers, "content-type")
                    .unwrap_or_else(|| "application/octet-stream".into());
                let temp_path = temp_dir.join(format!(
                    "upload_{}",
                    random::string_from(random::ALPHANUMERIC_LOWER, 20)
                ));
                let mut file = std::fs::File::create(&temp_path)
                    .map_err(|e| ApiError::internal(format!("temp upload file: {e}")))?;
                let mut upload = UploadedFile {
                    field: name,
                    original_name,
                    content_type,
                    size: 0,
                    temp_path,
                };
                let (size, last) = input.copy_part(close.as_bytes(), &mut file, u64::MAX)?;
                file.flush()
                    .map_err(|e| ApiError::internal(format!("temp upload file: {e}")))?;
                upload.size = size;
                body.files.push(upload);
                last
            }
            None => {
                let mut data = Vec::new();
                let (_, last) = input.copy_part(close.as_bytes(), &mut data, MAX_FIELD_VALUE)?;
                if name == "@jsonPayload" {
                    for (k, v) in json_object(&data)? {
                        body.values.insert(k, v);
                    }
                } else {
                    push_form_value(
                        &mut body.values,
                        name,
                        Value::String(String::from_utf8_lossy(&data).into_owned()),
                    );
                }
                last
            }
        };
        if last {
            return Ok(body);
        }
    }
}

fn malformed() -> ApiError {
    ApiError::bad_request("Malformed multipart body.")
}

/// A read buffer over the body that can look ahead for delimiters without
/// losing the bytes that follow them.
struct PartReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> PartReader<R> {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more input; false at the end of the body.
    fn fill(&mut self) -> Result<bool, ApiError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match self.src.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(body_read_error(e));
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// One line without its line break; at most `MAX_PART_HEADER` bytes.
    fn read_line(&mut self) -> Result<Vec<u8>, ApiError> {
        loop {
            if let Some(nl) = self.available().iter().position(|&b| b == b'\n') {
                let line = trim_crlf(&self.available()[..=nl]).to_vec();
                self.pos += nl + 1;
                return Ok(line);
            }
            if self.available().len() > MAX_PART_HEADER || !self.fill()? {
                return Err(malformed());
            }
        }
    }

    fn skip_preamble(&mut self, delimiter: &[u8]) -> Result<(), ApiError> {
        for _ in 0..64 {
            if self.read_line()? == delimiter {
                return Ok(());
            }
        }
        Err(malformed())
    }

    fn read_part_headers(&mut self) -> Result<Vec<(String, String)>, ApiError> {
        let mut headers = Vec::new();
        let mut total = 0;
        loop {
            let line = self.read_line()?;
            total += line.len() + 2;
            if total > MAX_PART_HEADER {
                return Err(malformed());
            }
            if line.is_empty() {
                return Ok(headers);
            }
            let text = String::from_utf8_lossy(&line);
            if let Some((k, v)) = text.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }

    /// Copies part data to `out` up to `close` (`\r\n--boundary`); returns
    /// the byte count and whether that was the final delimiter (`--` after it).
    fn copy_part(
        &mut self,
        close: &[u8],
        out: &mut impl Write,
        limit: u64,
    ) -> Result<(u64, bool), ApiError> {
        let mut written = 0u64;
        loop {
            if let Some(at) = find(self.available(), close) {
                write_limited(out, &self.buf[self.pos..self.pos + at], &mut written, limit)?;
                self.pos += at + close.len();
                return Ok((written, self.finish_delimiter()?));
            }
            // Everything but a tail that could begin the delimiter is data.
            let safe = self.available().len().saturating_sub(close.len());
            write_limited(
                out,
                &self.buf[self.pos..self.pos + safe],
                &mut written,
                limit,
            )?;
            self.pos += safe;
            if !self.fill()? {
                return Err(malformed());
            }
        }
    }

    /// After a delimiter: `--` ends the body, a line break starts a part.
    fn finish_delimiter(&mut self) -> Result<bool, ApiError> {
        while self.available().len() < 2 {
            if !self.fill()? {
                return Err(malformed());
            }
        }
        let next = [self.available()[0], self.available()[1]];
        self.pos += 2;
        match &next {
            b"--" => Ok(true),
            b"\r\n" => Ok(false),
            _ => Err(malformed()),
        }
    }
}

fn write_limited(
    out: &mut impl Write,
    data: &[u8],
    written: &mut u64,
    limit: u64,
) -> Result<(), ApiError> {
    *written += data.len() as u64;
    if *written > limit {
        return Err(ApiError::PayloadTooLarge);
    }
    out.write_all(data)
        .map_err(|e| ApiError::internal(format!("writing upload: {e}")))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `name="x"` from a Content-Disposition value (quoted or bare).
fn disposition_param(disposition: &str, param: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        if k.trim().eq_ignore_ascii_case(param) {
            Some(v.trim().trim_matches('"').replace("\\\"", "\""))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(parts: &[(&str, Option<&str>, &[u8])], boundary: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    /// Reads one byte at a time, the worst case for delimiter lookahead.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn parses_fields_files_and_json_payload() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let raw = multipart(
            &[
                ("title", None, b"hello"),
                ("tags", None, b"a"),
                ("tags", None, b"b"),
                ("@jsonPayload", None, br#"{"n": 3, "meta": {"x": 1}}"#),
                ("doc", Some("My File.txt"), &big),
                ("empty", None, b""),
            ],
            "XyZ",
        );
        let dir = std::env::temp_dir();
        for trickle in [false, true] {
            let body = if trickle {
                parse_multipart(Trickle(&raw), "XyZ", &dir).unwrap()
            } else {
                parse_multipart(&raw[..], "XyZ", &dir).unwrap()
            };
            assert_eq!(body.values["title"], "hello");
            assert_eq!(body.values["tags"], serde_json::json!(["a", "b"]));
            assert_eq!(body.values["n"], 3);
            assert_eq!(body.values["meta"], serde_json::json!({"x": 1}));
            assert_eq!(body.values["empty"], "");
            assert_eq!(body.files.len(), 1);
            assert_eq!(body.files[0].original_name, "My File.txt");
            assert_eq!(std::fs::read(&body.files[0].temp_path).unwrap(), big);
        }
    }

    #[test]
    fn truncated_or_garbage_multipart_is_a_400() {
        let dir = std::env::temp_dir();
        let raw = multipart(&[("a", None, b"1")], "B");
        for bad in [&raw[..raw.len() - 8], b"garbage", b""] {
            let err = parse_multipart(bad, "B", &dir).unwrap_err();
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn json_bodies_must_be_objects() {
        assert!(json_object(br#"{"a":1}"#).is_ok());
        for bad in [&b"[1,2]"[..], b"{\"a\":", b"not json", b"3"] {
            assert_eq!(json_object(bad).unwrap_err().status(), 400);
        }
        let deep = format!("{{\"j\": {}1{}}}", "[".repeat(20000), "]".repeat(20000));
        assert_eq!(json_object(deep.as_bytes()).unwrap_err().status(), 400);
    }
}
