//! A parsed view of an incoming request: method, decoded path segments,
//! query parameters, headers and a size-limited body reader. Handlers read
//! from this, never from the socket.

use crate::error::ApiError;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

/// The default body limit, as the reference's (32 MiB).
pub const DEFAULT_BODY_LIMIT: u64 = 32 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// The method as it appears on the wire ("OTHER" for one Satchel does
    /// not route).
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }

    fn from_tiny(m: &tiny_http::Method) -> Method {
        match m {
            tiny_http::Method::Get => Method::Get,
            tiny_http::Method::Head => Method::Head,
            tiny_http::Method::Post => Method::Post,
            tiny_http::Method::Put => Method::Put,
            tiny_http::Method::Patch => Method::Patch,
            tiny_http::Method::Delete => Method::Delete,
            tiny_http::Method::Options => Method::Options,
            _ => Method::Other,
        }
    }
}

/// The request as handlers see it.
pub struct Req<'a> {
    pub method: Method,
    /// Percent-decoded path segments, without empty ones. Shared, so the
    /// router can match on them while handlers borrow the request.
    pub segments: Arc<[String]>,
    pub query: Vec<(String, String)>,
    pub remote_ip: Option<IpAddr>,
    /// Whether the raw path ended in `/` (static directories redirect otherwise).
    pub raw_path_ends_with_slash: bool,
    /// Names lower-cased. Shared: a write job and the rules' view of the
    /// request take the same list instead of copies.
    headers: Arc<[(String, String)]>,
    body: Option<&'a mut dyn Read>,
    body_length: Option<usize>,
}

impl<'a> Req<'a> {
    pub fn from_tiny(rq: &'a mut tiny_http::Request) -> Req<'a> {
        let method = Method::from_tiny(rq.method());
        let (path, query) = split_url(rq.url());
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let headers: Vec<(String, String)> = rq
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let remote_ip = rq.remote_addr().map(|a| a.ip());
        let body_length = rq.body_length();
        let raw_path_ends_with_slash = path.ends_with('/');
        Req {
            method,
            segments,
            query: parse_query(query),
            remote_ip,
            raw_path_ends_with_slash,
            headers: headers.into(),
            body: Some(rq.as_reader()),
            body_length,
        }
    }

    /// A request with no socket behind it, for tests and batch sub-requests.
    pub fn synthetic(
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<&'a mut dyn Read>,
    ) -> Req<'a> {
        let (path, query) = split_url(url);
        Req {
            method,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect(),
            query: parse_query(query),
            remote_ip: None,
            raw_path_ends_with_slash: path.ends_with('/'),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body,
            body_length: None,
        }
    }

    /// As `synthetic` without a body, sharing `headers`, whose names are
    /// already lower-cased (those of another `Req`).
    pub fn synthetic_sharing(
        method: Method,
        url: &str,
        headers: Arc<[(String, String)]>,
    ) -> Req<'static> {
        let mut req = Req::synthetic(method, url, Vec::new(), None);
        req.headers = headers;
        req
    }

    /// The headers, shared rather than copied.
    pub fn shared_headers(&self) -> Arc<[(String, String)]> {
        Arc::clone(&self.headers)
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The decoded path, `/` and the segments joined by `/` (`/` alone
    /// when there are none).
    pub fn path(&self) -> String {
        let mut path = String::with_capacity(64);
        for segment in self.segments.iter() {
            path.push('/');
            path.push_str(segment);
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// Reads the whole body, refusing it (413) if it is over `limit` bytes.
    /// A declared length over the limit is refused before reading anything.
    pub fn read_body(&mut self, limit: u64) -> Result<Vec<u8>, ApiError> {
        if let Some(len) = self.body_length {
            if len as u64 > limit {
                return Err(ApiError::PayloadTooLarge);
            }
        }
        let Some(reader) = self.body.take() else {
            return Ok(Vec::new());
        };
        let mut body = Vec::with_capacity(self.body_length.unwrap_or(0).min(1 << 20));
        reader.take(limit + 1).read_to_end(&mut body).map_err(|e| {
            ApiError::bad_request(&format!("Failed to read the request body: {e}."))
        })?;
        if body.len() as u64 > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        Ok(body)
    }

    /// The body as a stream, for parsers that must not hold it whole (multipart).
    pub fn body_reader(&mut self, limit: u64) -> Result<LimitedBody<'a>, ApiError> {
        if let Some(len) = self.body_length {
            if len as u64 > limit {
                return Err(ApiError::PayloadTooLarge);
            }
        }
        Ok(LimitedBody {
            inner: self.body.take(),
            remaining: limit,
        })
    }
}

/// A body reader that fails with `PayloadTooLarge` past its limit.
pub struct LimitedBody<'a> {
    inner: Option<&'a mut dyn Read>,
    remaining: u64,
}

impl Read for LimitedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        if self.remaining == 0 {
            // One probe byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    BodyTooLarge,
                )),
            };
        }
        let max = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The marker error inside an `io::Error` from `LimitedBody`.
#[derive(Debug)]
pub struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body over its limit")
    }
}

impl std::error::Error for BodyTooLarge {}

/// Maps a body read error to the API error it stands for.
pub fn body_read_error(err: std::io::Error) -> ApiError {
    if err.get_ref().is_some_and(|e| e.is::<BodyTooLarge>()) {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request(&format!("Failed to read the request body: {err}."))
    }
}

fn split_url(url: &str) -> (&str, &str) {
    match url.split_once('?') {
        Some((path, query)) => (path, query),
        None => (url, ""),
    }
}

/// Parses `a=1&b=x%20y` (also `+` as space), keeping order and repeats.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Decodes `application/x-www-form-urlencoded` text.
pub fn form_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

/// Decodes `%XX` escapes; invalid escapes stay as they are and invalid
/// UTF-8 becomes U+FFFD, so hostile input never fails the request here.
pub fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries_like_a_browser_sends_them() {
        let q = parse_query("filter=title%20%3D%20%27a%27&sort=-created&x&y=a+b&bad=%zz%4");
        assert_eq!(q[0], ("filter".into(), "title = 'a'".into()));
        assert_eq!(q[1], ("sort".into(), "-created".into()));
        assert_eq!(q[2], ("x".into(), "".into()));
        assert_eq!(q[3], ("y".into(), "a b".into()));
        assert_eq!(q[4], ("bad".into(), "%zz%4".into()));
    }

    #[test]
    fn the_path_joins_decoded_segments() {
        let path = |url: &str| Req::synthetic(Method::Get, url, vec![], None).path();
        assert_eq!(path("/"), "/");
        assert_eq!(path(""), "/");
        assert_eq!(path("/api//collections/a%20b/?x=1"), "/api/collections/a b");
    }

    #[test]
    fn body_over_the_limit_is_refused() {
        let mut data: &[u8] = b"0123456789";
        let mut req = Req::synthetic(Method::Post, "/x", vec![], Some(&mut data));
        assert_eq!(req.read_body(5), Err(ApiError::PayloadTooLarge));
        let mut data: &[u8] = b"01234";
        let mut req = Req::synthetic(Method::Post, "/x", vec![], Some(&mut data));
        assert_eq!(req.read_body(5).unwrap(), b"01234");
    }

    #[test]
    fn streamed_body_over_the_limit_is_refused() {
        let mut data: &[u8] = b"0123456789";
        let mut req = Req::synthetic(Method::Post, "/x", vec![], Some(&mut data));
        let mut out = Vec::new();
        let err = req
            .body_reader(4)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(body_read_error(err), ApiError::PayloadTooLarge);
    }
}
