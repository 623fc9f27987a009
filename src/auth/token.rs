//! Auth tokens: issuing them for a record and turning an `Authorization`
//! header back into the caller (`Auth`).
//!
//! A token is an HS256 JWT signed with the record's `tokenKey` concatenated
//! with the collection's per-purpose secret, as the reference does: rotating
//! either one (password change, secret rotation) invalidates every token.
//! An invalid token is never an error here: the request just runs as a guest,
//! and endpoints that need auth answer 401 themselves.

use crate::app::Ctx;
use crate::collections::Collection;
use crate::records::RecordValues;
use crate::security::jwt::{self, Claims};
use serde_json::{json, Value};
use std::sync::Arc;

/// The `_superusers` collection id, fixed by the reference.
pub const SUPERUSERS_ID: &str = "pbc_3142635823";

/// The authenticated caller. Cheap to clone: a request's rules, its writer
/// job and the token cache each hold one.
#[derive(Debug, Clone)]
pub struct Auth {
    pub collection: Arc<Collection>,
    /// The record as stored (including `tokenKey` and the password hash).
    pub record: Arc<RecordValues>,
    /// The token it came with, for `auth-refresh` of non-refreshable tokens.
    pub token: Arc<str>,
    pub refreshable: bool,
}

impl Auth {
    pub fn id(&self) -> &str {
        self.record
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn is_superuser(&self) -> bool {
        self.collection.id == SUPERUSERS_ID
    }
}

/// The kinds of token; each is signed with its own collection secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Auth,
    File,
    Verification,
    PasswordReset,
    EmailChange,
}

impl TokenKind {
    pub fn claim(self) -> &'static str {
        match self {
            TokenKind::Auth => "auth",
            TokenKind::File => "file",
            TokenKind::Verification => "verification",
            TokenKind::PasswordReset => "passwordReset",
            TokenKind::EmailChange => "emailChange",
        }
    }

    /// The key under the collection's options holding secret and duration.
    pub fn options_key(self) -> &'static str {
        match self {
            TokenKind::Auth => "authToken",
            TokenKind::File => "fileToken",
            TokenKind::Verification => "verificationToken",
            TokenKind::PasswordReset => "passwordResetToken",
            TokenKind::EmailChange => "emailChangeToken",
        }
    }
}

/// The collection's secret for a token kind ("" when missing).
fn secret(collection: &Collection, kind: TokenKind) -> &str {
    collection
        .options
        .get(kind.options_key())
        .and_then(|o| o.get("secret"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The configured lifetime in seconds of a token kind.
pub fn duration_secs(collection: &Collection, kind: TokenKind) -> i64 {
    collection
        .options
        .get(kind.options_key())
        .and_then(|o| o.get("duration"))
        .and_then(Value::as_i64)
        .unwrap_or(match kind {
            TokenKind::Auth => 604_800,
            TokenKind::File => 180,
            TokenKind::Verification => 86_400,
            TokenKind::PasswordReset | TokenKind::EmailChange => 1800,
        })
}

fn signing_key(collection: &Collection, record: &RecordValues, kind: TokenKind) -> Vec<u8> {
    let token_key = record
        .get("tokenKey")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{token_key}{}", secret(collection, kind)).into_bytes()
}

/// Issues a token of `kind` for `record`, valid for `duration_secs`.
/// `extra` claims (email, newEmail, refreshable) are added to the standard ones.
pub fn issue(
    collection: &Collection,
    record: &RecordValues,
    kind: TokenKind,
    duration_secs: i64,
    extra: &[(&str, Value)],
) -> Result<String, jwt::JwtError> {
    let mut claims = Claims::new();
    claims.insert("collectionId".into(), json!(collection.id));
    claims.insert(
        "exp".into(),
        json!(crate::datetime::now_unix() + duration_secs),
    );
    claims.insert(
        "id".into(),
        record.get("id").cloned().unwrap_or(Value::Null),
    );
    claims.insert("type".into(), json!(kind.claim()));
    for (name, value) in extra {
        claims.insert((*name).to_string(), value.clone());
    }
    jwt::sign(&claims, &signing_key(collection, record, kind))
}

/// A refreshable auth token with the collection's configured lifetime.
pub fn issue_auth(collection: &Collection, record: &RecordValues) -> Result<String, jwt::JwtError> {
    issue(
        collection,
        record,
        TokenKind::Auth,
        duration_secs(collection, TokenKind::Auth),
        &[("refreshable", json!(true))],
    )
}

/// The raw token from an `Authorization` header: bare, `Bearer x` or `bearer x`.
pub fn token_from_header(header: &str) -> &str {
    let header = header.trim();
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim()
}

/// Verifies a token of `kind` and loads its record, or `None`.
pub fn verify(
    ctx: &Ctx<'_>,
    token: &str,
    kind: TokenKind,
) -> Option<(Arc<Collection>, RecordValues, Claims)> {
    let peeked = jwt::peek_claims(token).ok()?;
    if peeked.get("type").and_then(Value::as_str) != Some(kind.claim()) {
        return None;
    }
    let collection_id = peeked.get("collectionId").and_then(Value::as_str)?;
    let record_id = peeked.get("id").and_then(Value::as_str)?;
    let collection = ctx.schema.get_by_id(collection_id)?.clone();
    if !collection.is_auth() {
        return None;
    }
    let record = crate::records::sql::find_by_id(ctx.db, &collection, record_id).ok()??;
    let key = signing_key(&collection, &record, kind);
    let claims = jwt::verify(token, &key, crate::datetime::now_unix()).ok()?;
    Some((collection, record, claims))
}

/// The caller behind an `Authorization` header, if its auth token is valid.
pub fn authenticate(ctx: &Ctx<'_>, header: Option<&str>) -> Option<Auth> {
    let token = token_from_header(header?);
    if token.is_empty() {
        return None;
    }
    let cache = &ctx.app.tokens;
    let now = crate::datetime::now_unix();
    if let Some(auth) = cache.get(token, now) {
        return Some(auth);
    }
    // Read before the record is, so a write committed meanwhile is noticed.
    let generation = cache.generation();
    let (collection, record, claims) = verify(ctx, token, TokenKind::Auth)?;
    let refreshable = claims
        .get("refreshable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let auth = Auth {
        collection,
        record: Arc::new(record),
        token: token.into(),
        refreshable,
    };
    if let Some(expires) = claims.get("exp").and_then(Value::as_f64) {
        cache.remember(generation, expires, &auth);
    }
    Some(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms_the_sdk_and_curl_send() {
        assert_eq!(token_from_header("abc.def.ghi"), "abc.def.ghi");
        assert_eq!(token_from_header("Bearer abc.def.ghi"), "abc.def.ghi");
        assert_eq!(token_from_header("bearer abc.def.ghi "), "abc.def.ghi");
        assert_eq!(token_from_header("Basic abc"), "Basic abc");
    }
}
