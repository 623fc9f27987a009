//! Auth endpoints of an auth collection: `auth-with-password`,
//! `auth-refresh` and `auth-methods`.
//!
//! Password checks run on the hashing pool (`Outcome::Later`), never on a
//! request worker, and an unknown identity costs a dummy verification so its
//! answer takes about as long as a wrong password's.

use super::complete::{self, Attempt, Prelude, METHOD_PASSWORD};
use super::token::{self, Auth};
use crate::app::Ctx;
use crate::collections::Collection;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{body, Outcome, Reply, Req};
use crate::records::{self, RecordValues};
use crate::security::password;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const AUTH_FAILED: &str = "Failed to authenticate.";

/// The auth collection named in the path, or the reference's 404.
pub fn auth_collection(ctx: &Ctx<'_>, id_or_name: &str) -> Result<Arc<Collection>, ApiError> {
    match ctx.schema.get(id_or_name) {
        Some(c) if c.is_auth() => Ok(c.clone()),
        _ => Err(ApiError::NotFound(
            "Missing or invalid auth collection context.".into(),
        )),
    }
}

fn option<'c>(collection: &'c Collection, path: &[&str]) -> Option<&'c Value> {
    let (first, rest) = path.split_first()?;
    let mut value = collection.options.get(*first)?;
    for key in rest {
        value = value.get(*key)?;
    }
    Some(value)
}

fn identity_fields(collection: &Collection) -> Vec<String> {
    option(collection, &["passwordAuth", "identityFields"])
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| vec!["email".to_string()])
}

fn text_of(body: &Map<String, Value>, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `POST /api/collections/{c}/auth-with-password`
pub fn auth_with_password(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    if option(&collection, &["passwordAuth", "enabled"]).and_then(Value::as_bool) == Some(false) {
        return Err(ApiError::Forbidden(
            "The collection is not configured to allow password authentication.".into(),
        ));
    }
    let body = body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )?
    .values;
    let identity = text_of(&body, "identity");
    let secret = text_of(&body, "password");
    let identity_field = text_of(&body, "identityField");
    let mut errors = FieldErrors::new();
    if identity.is_empty() {
        errors.insert(
            "identity".into(),
            field_error("validation_required", "Cannot be blank."),
        );
    }
    if secret.is_empty() {
        errors.insert(
            "password".into(),
            field_error("validation_required", "Cannot be blank."),
        );
    }
    let allowed = identity_fields(&collection);
    if !identity_field.is_empty() && !allowed.contains(&identity_field) {
        errors.insert(
            "identityField".into(),
            field_error("validation_in_invalid", "Must be a valid value."),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            errors,
        ));
    }
    let fields = if identity_field.is_empty() {
        allowed
    } else {
        vec![identity_field]
    };
    let record = find_by_identity(ctx, &collection, &fields, &identity)?;
    let attempt = Attempt::of(ctx, req, &body, METHOD_PASSWORD);
    let app = ctx.app.clone();
    Ok(Outcome::Later(Box::new(move || {
        let Some(record) = record else {
            password::verify_dummy(&secret);
            return Err(ApiError::bad_request(AUTH_FAILED));
        };
        let hash = record.get_str("password").to_string();
        if !password::verify_password(&secret, &hash) {
            return Err(ApiError::bad_request(AUTH_FAILED));
        }
        let upgraded = upgraded_hash(&hash, &secret);
        let table = collection.name.clone();
        let prelude: Prelude =
            Box::new(move |ctx, record| store_upgraded_hash(ctx, &table, record, upgraded));
        complete::sign_in(&app, collection, record.id().to_string(), attempt, prelude)
    })))
}

/// A fresh hash replacing an old (bcrypt) one after a successful login.
/// A failure is logged, not answered: the login itself succeeded.
fn upgraded_hash(hash: &str, secret: &str) -> Option<String> {
    if !password::needs_rehash(hash) {
        return None;
    }
    password::hash_password(secret)
        .map_err(|e| log::warn!("re-hashing a password after login failed: {e}"))
        .ok()
}

/// Stores the upgraded hash inside the sign-in's job (same `tokenKey`:
/// the password did not change).
fn store_upgraded_hash(
    ctx: &Ctx<'_>,
    table: &str,
    mut record: RecordValues,
    upgraded: Option<String>,
) -> Result<RecordValues, ApiError> {
    if let Some(new_hash) = upgraded {
        let sql = format!(
            "UPDATE {} SET password = ?1 WHERE id = ?2",
            crate::store::quote_ident(table)
        );
        ctx.db
            .execute(&sql, rusqlite::params![new_hash, record.id()])?;
        record.set("password", Value::String(new_hash));
    }
    Ok(record)
}

fn find_by_identity(
    ctx: &Ctx<'_>,
    collection: &Collection,
    fields: &[String],
    identity: &str,
) -> Result<Option<RecordValues>, ApiError> {
    for field in fields {
        if collection.field(field).is_none() {
            continue;
        }
        if let Some(record) = records::sql::find_by_field(ctx.db, collection, field, identity)? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

pub(crate) fn auth_rule_allows(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: &RecordValues,
) -> Result<bool, ApiError> {
    let rule: Option<String> = option(collection, &["authRule"])
        .and_then(Value::as_str)
        .map(str::to_string);
    match rule.as_deref() {
        None => Ok(false),
        Some("") => Ok(true),
        Some(expr) => {
            let id = record.get("id").and_then(Value::as_str).unwrap_or_default();
            // The rule sees the record as the would-be auth.
            let auth = Auth {
                collection: Arc::new(collection.clone()),
                record: record.clone(),
                token: String::new(),
                refreshable: false,
            };
            records::filter::record_satisfies(ctx, collection, expr, id, Some(&auth))
        }
    }
}

/// `{token, record}` for a freshly authenticated record.
pub(crate) fn auth_reply(
    collection: &Collection,
    record: &RecordValues,
    token: Option<String>,
) -> Result<Reply, ApiError> {
    let token = match token {
        Some(t) => t,
        None => token::issue_auth(collection, record).map_err(ApiError::internal)?,
    };
    let viewer = records::output::Viewer {
        is_owner: true,
        ..Default::default()
    };
    let record_json = records::output::to_json(collection, record, &viewer);
    Ok(Reply::json(
        &json!({ "token": token, "record": record_json }),
    ))
}

/// `POST /api/collections/{c}/auth-refresh`
pub fn auth_refresh(ctx: &Ctx<'_>, _req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let auth = ctx.auth.as_ref().ok_or_else(ApiError::auth_required)?;
    if auth.collection.id != collection.id {
        return Err(ApiError::Forbidden(
            "The request requires valid auth record of this collection.".into(),
        ));
    }
    // Impersonation tokens are not refreshable: the same token comes back.
    let token = (!auth.refreshable).then(|| auth.token.clone());
    auth_reply(&collection, &auth.record, token)
}

/// `GET /api/collections/{c}/auth-methods`
pub fn auth_methods(ctx: &Ctx<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let enabled = |path: &[&str]| {
        option(&collection, path)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let duration = |path: &[&str], on: bool| {
        if on {
            option(&collection, path)
                .and_then(Value::as_i64)
                .unwrap_or(0)
        } else {
            0
        }
    };
    let password_on = option(&collection, &["passwordAuth", "enabled"])
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let fields = identity_fields(&collection);
    let otp_on = enabled(&["otp", "enabled"]);
    let mfa_on = enabled(&["mfa", "enabled"]);
    Ok(Reply::json(&json!({
        "password": { "enabled": password_on, "identityFields": fields },
        "oauth2": { "enabled": false, "providers": [] },
        "mfa": { "enabled": mfa_on, "duration": duration(&["mfa", "duration"], mfa_on) },
        "otp": { "enabled": otp_on, "duration": duration(&["otp", "duration"], otp_on) },
        "authProviders": [],
        "usernamePassword": password_on && fields.iter().any(|f| f == "username"),
        "emailPassword": password_on && fields.iter().any(|f| f == "email"),
    })))
}
