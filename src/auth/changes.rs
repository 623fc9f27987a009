//! The writes the auth flows make to an auth record: mark it verified,
//! switch its email, store a new password hash, rotate its `tokenKey`.
//! They go through the records code's own building and validation (so
//! autodates, the email format and uniqueness behave as on any update),
//! with the rights of the server, in the caller's writer job, and are
//! announced to realtime subscribers as updates once the job commits.
//!
//! It never hashes (callers bring hashes made on the hashing pool) and
//! never decides whether a change is allowed: the flows did that.

use crate::collections::Collection;
use crate::error::ApiError;
use crate::realtime_api::{Action, Realtime};
use crate::records::{build_update, sql, RecordValues, WriteOptions};
use crate::security::random;
use crate::store::WriteTx;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What to change; `None`/`false` leaves a value as it is.
#[derive(Debug, Default, Clone)]
pub struct AuthChange {
    pub verified: Option<bool>,
    pub email: Option<String>,
    /// An already hashed password.
    pub password_hash: Option<String>,
    /// A new `tokenKey`: every token issued so far stops verifying.
    pub rotate_token_key: bool,
}

impl AuthChange {
    fn is_empty(&self) -> bool {
        self.verified.is_none()
            && self.email.is_none()
            && self.password_hash.is_none()
            && !self.rotate_token_key
    }
}

/// Applies `change` to `current` and returns the record as stored. A
/// validation failure (a taken email) answers 400 with `message`.
pub fn save(
    tx: &mut WriteTx<'_>,
    realtime: &Realtime,
    collection: &Arc<Collection>,
    current: &RecordValues,
    change: AuthChange,
    message: &str,
) -> Result<RecordValues, ApiError> {
    if change.is_empty() {
        return Ok(current.clone());
    }
    let mut body = Map::new();
    if let Some(verified) = change.verified {
        body.insert("verified".into(), Value::Bool(verified));
    }
    if let Some(email) = &change.email {
        body.insert("email".into(), Value::String(email.clone()));
    }
    let mut opts = WriteOptions::new(true);
    if let Some(hash) = change.password_hash {
        opts.password_hashes.insert("password".into(), hash);
    }
    let mut values = build_update(collection, current, &body, &opts)
        .into_result()
        .map_err(|errors| ApiError::validation(message, errors))?;
    if change.rotate_token_key {
        values.set(
            "tokenKey",
            Value::String(random::string_from(random::ALPHANUMERIC, 50)),
        );
    }
    let conn = tx.conn();
    if !sql::update(conn, collection, current.id(), &values).map_err(|e| e.into_api(message))? {
        return Err(ApiError::not_found());
    }
    let saved = sql::find_by_id(conn, collection, current.id())?
        .ok_or_else(|| ApiError::internal("an updated auth record vanished"))?;
    realtime.publish_saved(tx, Action::Update, collection, &saved);
    Ok(saved)
}
