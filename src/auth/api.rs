//! Auth endpoints of an auth collection: `auth-with-password`,
//! `auth-refresh` and `auth-methods`.
//!
//! Password checks run on the hashing pool (`Outcome::Later`), never on a
//! request worker, and an unknown identity costs a dummy verification so its
//! answer takes about as long as a wrong password's.

use super::complete::{self, Attempt, Prelude, METHOD_PASSWORD};
use super::mfa::SecondFactor;
use super::throttle;
use super::token::{self, Auth};
use crate::app::{App, Ctx};
use crate::collections::Collection;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{admission, body, Outcome, Reply, Req};
use crate::records::expand::ExpandTree;
use crate::records::fields::FieldsPicker;
use crate::records::{self, PresentOptions, Presenter, RecordValues};
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
    // Guessing is throttled per identity, whatever the client address.
    let settings = ctx.app.settings();
    let policy = settings.brute_force.policy();
    let attempt_key = sign_in_key(&collection, record.as_ref(), &identity);
    // `?expand=`/`?fields=` ride along: the reply is built in the sign-in's
    // job, and a bad `?fields=` is only reported after a successful sign-in.
    let attempt = Attempt::of(ctx, req, &body, METHOD_PASSWORD);
    // A second factor is also counted per MFA session.
    let second = SecondFactor::check(ctx.app, &collection, &attempt.mfa_id)?;
    if let Err(err) = ctx.app.throttle.check(&attempt_key, policy) {
        if let Some(s) = second {
            s.release(ctx.app);
        }
        return Err(err);
    }
    let ip_allowed = collection.id != token::SUPERUSERS_ID
        || admission::superuser_ip_allowed(&settings, ctx.remote_ip);
    let app = ctx.app.clone();
    Ok(Outcome::Later(Box::new(move || {
        let failed = |app: &App| {
            app.throttle.record_failure(&attempt_key, policy);
            if let Some(s) = second {
                s.failed(app);
            }
            ApiError::bad_request(AUTH_FAILED)
        };
        let Some(record) = record else {
            password::verify_dummy(&secret);
            return Err(failed(&app));
        };
        let hash = record.get_str("password").to_string();
        if !password::verify_password(&secret, &hash) {
            return Err(failed(&app));
        }
        app.throttle.reset(&attempt_key);
        if let Some(s) = second {
            s.release(&app);
        }
        if !ip_allowed {
            return Err(admission::ip_not_allowed());
        }
        let upgraded = upgraded_hash(&hash, &secret);
        let table = collection.name.clone();
        let prelude: Prelude =
            Box::new(move |_, tx, record| store_upgraded_hash(tx.conn(), &table, record, upgraded));
        complete::sign_in(&app, collection, record.id().to_string(), attempt, prelude)
    })))
}

/// The brute-force key of a sign-in: the record when the identity names
/// one (so its email and username share a count), else the identity as
/// typed, case-folded (so unknown identities are throttled alike).
fn sign_in_key(
    collection: &Collection,
    record: Option<&RecordValues>,
    identity: &str,
) -> throttle::Key {
    match record.and_then(|r| r.get("id")).and_then(Value::as_str) {
        Some(id) => throttle::key(&["password", &collection.id, id]),
        None => throttle::key(&["password?", &collection.id, &identity.to_lowercase()]),
    }
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
    conn: &rusqlite::Connection,
    table: &str,
    mut record: RecordValues,
    upgraded: Option<String>,
) -> Result<RecordValues, ApiError> {
    if let Some(new_hash) = upgraded {
        let sql = format!(
            "UPDATE {} SET password = ?1 WHERE id = ?2",
            crate::store::quote_ident(table)
        );
        conn.execute(&sql, rusqlite::params![new_hash, record.id()])?;
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
            let auth = as_requester(collection, record);
            records::filter::record_satisfies(ctx, collection, expr, id, Some(&auth))
        }
    }
}

/// `record` acting as the requester (an auth collection's record).
fn as_requester(collection: &Collection, record: &RecordValues) -> Auth {
    Auth {
        collection: Arc::new(collection.clone()),
        record: Arc::new(record.clone()),
        token: "".into(),
        refreshable: false,
    }
}

/// The `?expand=` and `?fields=` of an auth request.
pub(crate) fn present_options(req: &Req<'_>) -> Result<PresentOptions, ApiError> {
    PresentOptions::parse(req.query_param("expand"), req.query_param("fields"))
}

/// An auth reply's record: as the record sees itself (its email always,
/// hidden fields if it is a superuser), with `expand` followed as that
/// record, not as whoever sent the request (the reference's choice).
pub(crate) fn owner_view(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: &RecordValues,
    expand: &ExpandTree,
) -> Value {
    let me = as_requester(collection, record);
    let presenter = Presenter::new(ctx.db, &ctx.schema, Some(&me));
    presenter
        .present_unpicked(collection, std::slice::from_ref(record), expand)
        .pop()
        .unwrap_or(Value::Null)
}

/// `{token, record}` for a freshly authenticated record; `?fields=` picks
/// from the whole reply (`fields=token,record.id`).
pub(crate) fn auth_reply(
    collection: &Collection,
    record: &RecordValues,
    shown: Value,
    token: Option<String>,
    fields: Option<&FieldsPicker>,
) -> Result<Reply, ApiError> {
    let token = match token {
        Some(t) => t,
        None => token::issue_auth(collection, record).map_err(ApiError::internal)?,
    };
    let mut reply = json!({ "token": token, "record": shown });
    if let Some(fields) = fields {
        fields.pick(&mut reply);
    }
    Ok(Reply::json(&reply))
}

/// `POST /api/collections/{c}/auth-refresh`
pub fn auth_refresh(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let auth = ctx.auth.as_ref().ok_or_else(ApiError::auth_required)?;
    if auth.collection.id != collection.id {
        return Err(ApiError::Forbidden(
            "The request requires valid auth record of this collection.".into(),
        ));
    }
    // Impersonation tokens are not refreshable: the same token comes back.
    let token = (!auth.refreshable).then(|| auth.token.to_string());
    let options = present_options(req)?;
    let shown = owner_view(ctx, &collection, &auth.record, &options.expand);
    auth_reply(
        &collection,
        &auth.record,
        shown,
        token,
        options.fields.as_ref(),
    )
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
    let (oauth2, auth_providers) = super::oauth2::auth_methods_entries(&collection);
    Ok(Reply::json(&json!({
        "password": { "enabled": password_on, "identityFields": fields },
        "oauth2": oauth2,
        "mfa": { "enabled": mfa_on, "duration": duration(&["mfa", "duration"], mfa_on) },
        "otp": { "enabled": otp_on, "duration": duration(&["otp", "duration"], otp_on) },
        "authProviders": auth_providers,
        "usernamePassword": password_on && fields.iter().any(|f| f == "username"),
        "emailPassword": password_on && fields.iter().any(|f| f == "email"),
    })))
}
