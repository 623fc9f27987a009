//! Serves `--publicDir` for every path no API route matched, as the
//! reference does: files by extension type, a directory's `index.html`, and
//! (with `--indexFallback`) the root `index.html` for unknown paths so
//! single-page apps can route on the client.
//!
//! Paths are resolved segment by segment; `..`, hidden segments and
//! anything that escapes the public dir after symlinks are refused.

use super::request::{Method, Req};
use super::response::Reply;
use crate::error::ApiError;
use std::path::{Path, PathBuf};

/// Answers a GET/HEAD the API did not claim.
pub fn serve(public_dir: &Path, index_fallback: bool, req: &Req<'_>) -> Result<Reply, ApiError> {
    if !matches!(req.method, Method::Get | Method::Head) {
        return Err(not_found());
    }
    if req.segments.last().map(String::as_str) == Some("index.html") {
        let parent = req.segments[..req.segments.len() - 1].join("/");
        return Ok(redirect(
            301,
            &format!("/{}{}", parent, if parent.is_empty() { "" } else { "/" }),
        ));
    }
    let Some(path) = resolve(public_dir, &req.segments) else {
        return fallback(public_dir, index_fallback);
    };
    if path.is_dir() {
        let index = path.join("index.html");
        if index.is_file() {
            if !req.raw_path_ends_with_slash && !req.segments.is_empty() {
                return Ok(redirect(301, &format!("{}/", req.path())));
            }
            return file_reply(&index);
        }
        return fallback(public_dir, index_fallback);
    }
    if path.is_file() {
        return file_reply(&path);
    }
    fallback(public_dir, index_fallback)
}

fn not_found() -> ApiError {
    ApiError::NotFound("File not found.".into())
}

fn fallback(public_dir: &Path, index_fallback: bool) -> Result<Reply, ApiError> {
    let index = public_dir.join("index.html");
    if index_fallback && index.is_file() {
        return file_reply(&index);
    }
    Err(not_found())
}

/// The file for `segments` under `root`, if it stays inside it.
fn resolve(root: &Path, segments: &[String]) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for seg in segments {
        if seg == ".." || seg == "." || seg.starts_with('.') || seg.contains(['/', '\\', '\0']) {
            return None;
        }
        path.push(seg);
    }
    let real_root = root.canonicalize().ok()?;
    let real = path.canonicalize().ok()?;
    real.starts_with(&real_root).then_some(real)
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Location".into(), location.to_string().into())],
        body: Vec::new(),
    }
}

fn file_reply(path: &Path) -> Result<Reply, ApiError> {
    let body = std::fs::read(path)
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?;
    Ok(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), content_type(path).into())],
        body,
    })
}

/// The type of a static file from its extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_escape_the_root() {
        let root = std::env::temp_dir();
        assert!(resolve(&root, &["..".into(), "etc".into()]).is_none());
        assert!(resolve(&root, &[".hidden".into()]).is_none());
        assert!(resolve(&root, &["a/b".into()]).is_none());
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(
            content_type(Path::new("a/b.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}
