//! The email-driven auth flows: request/confirm verification, password
//! reset and email change. A request mails a purpose token (signed with the
//! record's `tokenKey` + that purpose's collection secret); confirming it
//! changes the record (verified, new password, new email) in a writer job
//! that checks the token again on what it writes to.
//!
//! Request endpoints answer the same way, and do the same work (token and
//! message are built, then dropped), whether or not the address belongs to
//! a record, is already verified or is inside the resend pause, so neither
//! answers nor timings reveal accounts. Mails leave through the outbox;
//! hashing runs on the hashing pool; nothing here blocks on SMTP.

use super::api::auth_collection;
use super::changes::{self, AuthChange};
use super::emails::{self, AuthMail};
use super::input::{
    email_error, length_error, read_body, required, text, valid_email, INVALID_DATA,
};
use super::limits::{record_key, Resend};
use super::token::{self, TokenKind, SUPERUSERS_ID};
use crate::app::{App, Ctx};
use crate::collections::auth_options::AuthOptions;
use crate::collections::{Collection, FieldKind};
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{Outcome, Reply, Req};
use crate::records::api::writer_ctx;
use crate::records::{self, RecordValues};
use crate::security::{jwt, password, random};
use serde_json::{json, Value};
use std::sync::Arc;

/// Longest new password confirm-password-reset accepts before the
/// password field's own rules apply.
const MAX_RESET_PASSWORD_CHARS: usize = 255;
/// The most bytes a stored password may have (bcrypt's, the reference's).
const MAX_PASSWORD_BYTES: usize = 71;

// ---------------------------------------------------------------------------
// shared pieces

fn options_of(collection: &Collection) -> Result<AuthOptions, ApiError> {
    AuthOptions::from_collection(collection).ok_or_else(|| {
        ApiError::internal(format!("unreadable auth options of {}", collection.name))
    })
}

fn is_superusers(collection: &Collection) -> bool {
    collection.id == SUPERUSERS_ID
}

fn find_by_email(
    ctx: &Ctx<'_>,
    collection: &Collection,
    email: &str,
) -> Result<Option<RecordValues>, ApiError> {
    Ok(records::sql::find_by_field(
        ctx.db, collection, "email", email,
    )?)
}

/// What a request endpoint mails and how its resend pause works.
struct MailPurpose {
    kind: TokenKind,
    resend: Resend,
    mail: fn(String) -> AuthMail,
    pause_only_if_sent: bool,
}

/// The shared body of the request endpoints: the purpose token and message
/// are built whether or not `email` belongs to a record (a decoy stands in),
/// and the mail leaves only for a record that is `eligible` and outside the
/// resend pause.
fn request_mail(
    ctx: &Ctx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    email: &str,
    purpose: MailPurpose,
    eligible: impl Fn(&RecordValues) -> bool,
) -> Result<(), ApiError> {
    let found = find_by_email(ctx, collection, email)?;
    let key = found
        .as_ref()
        .map(|r| record_key(&collection.id, r.id()))
        .unwrap_or_default();
    let send = found
        .as_ref()
        .is_some_and(|r| eligible(r) && !ctx.app.auth_limits.resend_paused(purpose.resend, &key));
    let target = found.unwrap_or_else(|| decoy(email));
    let token = purpose_token(
        collection,
        &target,
        purpose.kind,
        &[("email", json!(target.get_str("email")))],
    )?;
    let message = emails::compose(
        &ctx.app.settings(),
        options,
        &(purpose.mail)(token),
        target.get_str("email"),
    );
    if send {
        let app = ctx.app.clone();
        let on_done = Box::new(move |sent: bool| {
            if sent || !purpose.pause_only_if_sent {
                app.auth_limits.pause_resend(purpose.resend, &key);
            }
        });
        emails::deliver(ctx.app, message, Some(on_done));
    }
    Ok(())
}

/// A stand-in for a record that does not exist, so the request endpoints
/// sign and render exactly as much for unknown addresses as for real ones.
fn decoy(email: &str) -> RecordValues {
    let mut record = RecordValues::new();
    record.set("id", Value::String(random::record_id()));
    record.set(
        "tokenKey",
        Value::String(random::string_from(random::ALPHANUMERIC, 50)),
    );
    record.set("email", Value::String(email.to_string()));
    record
}

fn purpose_token(
    collection: &Collection,
    record: &RecordValues,
    kind: TokenKind,
    extra: &[(&str, Value)],
) -> Result<String, ApiError> {
    let duration = token::duration_secs(collection, kind);
    token::issue(collection, record, kind, duration, extra).map_err(ApiError::internal)
}

/// A token of `kind` checked the way the confirm endpoints check it.
struct CheckedToken {
    collection: Arc<Collection>,
    record: RecordValues,
}

fn check_token(
    ctx: &Ctx<'_>,
    collection: &Collection,
    raw: &str,
    kind: TokenKind,
) -> Result<CheckedToken, Value> {
    let Some((owner, record, _)) = token::verify(ctx, raw, kind) else {
        return Err(field_error(
            "validation_invalid_token",
            "Invalid or expired token.",
        ));
    };
    if owner.id != collection.id {
        return Err(field_error(
            "validation_token_collection_mismatch",
            "The provided token is for different auth collection.",
        ));
    }
    Ok(CheckedToken {
        collection: owner,
        record,
    })
}

fn claim<'c>(claims: &'c jwt::Claims, name: &str) -> &'c str {
    claims.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn unverified_claims(raw: &str) -> jwt::Claims {
    jwt::peek_claims(raw).unwrap_or_default()
}

/// Runs `work` now or, when it hashes, on the hashing pool.
fn now_or_later(
    hashes: bool,
    work: impl FnOnce() -> Result<Reply, ApiError> + Send + 'static,
) -> Result<Outcome, ApiError> {
    if hashes {
        Ok(Outcome::Later(Box::new(work)))
    } else {
        Ok(Outcome::Now(work()?))
    }
}

/// Re-checks a confirm token inside the writer job (the record may have
/// changed since the worker looked) and returns its record and claims.
fn recheck_token(
    app: &Arc<App>,
    conn: &rusqlite::Connection,
    collection_id: &str,
    raw: &str,
    kind: TokenKind,
    refusal: &str,
) -> Result<(RecordValues, jwt::Claims), ApiError> {
    let ctx = writer_ctx(app, conn, None, None);
    match token::verify(&ctx, raw, kind) {
        Some((owner, record, claims)) if owner.id == collection_id => Ok((record, claims)),
        _ => Err(ApiError::bad_request(refusal)),
    }
}

// ---------------------------------------------------------------------------
// verification

/// `POST /api/collections/{c}/request-verification`
pub fn request_verification(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    if is_superusers(&collection) {
        return Err(ApiError::bad_request(
            "All superusers are verified by default.",
        ));
    }
    let email = valid_email(&read_body(ctx, req)?, "email")?;
    let options = options_of(&collection)?;
    let purpose = MailPurpose {
        kind: TokenKind::Verification,
        resend: Resend::Verification,
        mail: |token| AuthMail::Verification { token },
        // As the reference: the pause starts whether or not it went out.
        pause_only_if_sent: false,
    };
    request_mail(ctx, &collection, &options, &email, purpose, |r| {
        !r.get_bool("verified")
    })?;
    Ok(Reply::no_content())
}

/// `POST /api/collections/{c}/confirm-verification`
pub fn confirm_verification(
    ctx: &Ctx<'_>,
    req: &mut Req<'_>,
    c: &str,
) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    if is_superusers(&collection) {
        return Err(ApiError::bad_request(
            "All superusers are verified by default.",
        ));
    }
    let raw = text(&read_body(ctx, req)?, "token");
    let checked = verification_token(ctx, &collection, &raw).map_err(|error| {
        ApiError::validation(
            INVALID_DATA,
            FieldErrors::from_iter([("token".into(), error)]),
        )
    })?;
    let key = record_key(&collection.id, checked.record.id());
    let app = ctx.app.clone();
    if checked.record.get_bool("verified") {
        app.auth_limits.clear_resend(Resend::Verification, &key);
        return Ok(Outcome::Now(Reply::no_content()));
    }
    // Without password sign-in a verified account gets a random password,
    // so a password set by someone before the owner proved the address
    // cannot be used later (the reference's pre-hijacking guard).
    let needs_password = !options_of(&collection)?.password_auth.enabled;
    now_or_later(needs_password, move || {
        let hash = needs_password.then(random_password_hash).transpose()?;
        let collection_id = collection.id.clone();
        let job_app = app.clone();
        app.write(move |tx| {
            let (record, _) = recheck_token(
                &job_app,
                tx.conn(),
                &collection_id,
                &raw,
                TokenKind::Verification,
                "Invalid or expired verification token.",
            )?;
            if record.get_bool("verified") {
                return Ok(());
            }
            let change = AuthChange {
                verified: Some(true),
                rotate_token_key: hash.is_some(),
                password_hash: hash,
                ..AuthChange::default()
            };
            changes::save(
                tx,
                &job_app.realtime,
                &checked.collection,
                &record,
                change,
                "An error occurred while saving the verified state.",
            )
            .map(drop)
        })?;
        app.auth_limits.clear_resend(Resend::Verification, &key);
        Ok(Reply::no_content())
    })
}

fn verification_token(
    ctx: &Ctx<'_>,
    collection: &Collection,
    raw: &str,
) -> Result<CheckedToken, Value> {
    if raw.is_empty() {
        return Err(required());
    }
    let email = claim(&unverified_claims(raw), "email").to_string();
    if email.is_empty() {
        return Err(field_error(
            "validation_invalid_token_claims",
            "Missing email token claim.",
        ));
    }
    let checked = check_token(ctx, collection, raw, TokenKind::Verification)?;
    if checked.record.get_str("email") != email {
        return Err(field_error(
            "validation_token_email_mismatch",
            "The record email doesn't match with the requested token claims.",
        ));
    }
    Ok(checked)
}

fn random_password_hash() -> Result<String, ApiError> {
    password::hash_password(&random::string_from(random::ALPHANUMERIC, 30))
        .map_err(ApiError::internal)
}

// ---------------------------------------------------------------------------
// password reset

/// `POST /api/collections/{c}/request-password-reset`
pub fn request_password_reset(
    ctx: &Ctx<'_>,
    req: &mut Req<'_>,
    c: &str,
) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let options = options_of(&collection)?;
    if !options.password_auth.enabled {
        return Err(ApiError::bad_request(
            "The collection is not configured to allow password authentication.",
        ));
    }
    let email = valid_email(&read_body(ctx, req)?, "email")?;
    let purpose = MailPurpose {
        kind: TokenKind::PasswordReset,
        resend: Resend::PasswordReset,
        mail: |token| AuthMail::PasswordReset { token },
        // As the reference: only a mail that went out starts the pause.
        pause_only_if_sent: true,
    };
    request_mail(ctx, &collection, &options, &email, purpose, |_| true)?;
    Ok(Reply::no_content())
}

/// `POST /api/collections/{c}/confirm-password-reset`
pub fn confirm_password_reset(
    ctx: &Ctx<'_>,
    req: &mut Req<'_>,
    c: &str,
) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let body = read_body(ctx, req)?;
    let (raw, new_password) = (text(&body, "token"), text(&body, "password"));
    let mut errors = FieldErrors::new();
    if raw.is_empty() {
        errors.insert("token".into(), required());
    } else if let Err(error) = check_token(ctx, &collection, &raw, TokenKind::PasswordReset) {
        errors.insert("token".into(), error);
    }
    let min = password_min(&collection);
    if new_password.is_empty() {
        errors.insert("password".into(), required());
    } else if !(min..=MAX_RESET_PASSWORD_CHARS).contains(&new_password.chars().count()) {
        errors.insert(
            "password".into(),
            length_error(min, MAX_RESET_PASSWORD_CHARS),
        );
    }
    let confirm = text(&body, "passwordConfirm");
    if confirm.is_empty() {
        errors.insert("passwordConfirm".into(), required());
    } else if confirm != new_password {
        errors.insert(
            "passwordConfirm".into(),
            field_error("validation_values_mismatch", "Values don't match."),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(INVALID_DATA, errors));
    }
    if new_password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(
            "Failed to set new password.",
            FieldErrors::from_iter([(
                "password".into(),
                field_error(
                    "validation_max_text_constraint",
                    "Must be no more than 71 bytes.",
                ),
            )]),
        ));
    }
    let app = ctx.app.clone();
    now_or_later(true, move || {
        let hash = password::hash_password(&new_password).map_err(ApiError::internal)?;
        let job_app = app.clone();
        let collection_id = collection.id.clone();
        let record = app.write(move |tx| {
            let (record, claims) = recheck_token(
                &job_app,
                tx.conn(),
                &collection.id,
                &raw,
                TokenKind::PasswordReset,
                "Invalid or expired password reset token.",
            )?;
            // The mail proved the address, unless the email changed since.
            let proves_email =
                !record.get_bool("verified") && record.get_str("email") == claim(&claims, "email");
            let change = AuthChange {
                verified: proves_email.then_some(true),
                password_hash: Some(hash),
                rotate_token_key: true,
                ..AuthChange::default()
            };
            changes::save(
                tx,
                &job_app.realtime,
                &collection,
                &record,
                change,
                "Failed to set new password.",
            )
        })?;
        let key = record_key(&collection_id, record.id());
        app.auth_limits.clear_resend(Resend::PasswordReset, &key);
        Ok(Reply::no_content())
    })
}

fn password_min(collection: &Collection) -> usize {
    collection
        .field("password")
        .and_then(|f| match f.kind {
            FieldKind::Password { min, .. } if min > 0 => usize::try_from(min).ok(),
            _ => None,
        })
        .unwrap_or(1)
}

// ---------------------------------------------------------------------------
// email change

/// `POST /api/collections/{c}/request-email-change`
pub fn request_email_change(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = auth_collection(ctx, c)?;
    if is_superusers(&collection) {
        return Err(ApiError::bad_request(
            "All superusers can change their emails directly.",
        ));
    }
    let auth = ctx.auth.as_ref().ok_or_else(ApiError::auth_required)?;
    if auth.collection.id != collection.id {
        return Err(ApiError::Forbidden(
            "The request requires valid auth record of this collection.".into(),
        ));
    }
    let new_email = text(&read_body(ctx, req)?, "newEmail");
    let current = auth.record.get_str("email");
    let error = email_error(&new_email).or_else(|| {
        if new_email == current {
            Some(field_error(
                "validation_not_in_invalid",
                "Must not be in list.",
            ))
        } else {
            None
        }
    });
    let error = match error {
        Some(e) => Some(e),
        None => find_by_email(ctx, &collection, &new_email)?
            .filter(|other| other.id() != auth.id())
            .map(|_| field_error("validation_invalid_new_email", "Invalid new email address.")),
    };
    if let Some(error) = error {
        return Err(ApiError::validation(
            INVALID_DATA,
            FieldErrors::from_iter([("newEmail".into(), error)]),
        ));
    }
    let token = purpose_token(
        &collection,
        &auth.record,
        TokenKind::EmailChange,
        &[("email", json!(current)), ("newEmail", json!(new_email))],
    )?;
    let message = emails::compose(
        &ctx.app.settings(),
        &options_of(&collection)?,
        &AuthMail::EmailChange { token },
        &new_email,
    );
    emails::deliver(ctx.app, message, None);
    Ok(Reply::no_content())
}

/// `POST /api/collections/{c}/confirm-email-change`
pub fn confirm_email_change(
    ctx: &Ctx<'_>,
    req: &mut Req<'_>,
    c: &str,
) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    if is_superusers(&collection) {
        return Err(ApiError::bad_request(
            "All superusers can change their emails directly.",
        ));
    }
    let body = read_body(ctx, req)?;
    let (raw, given) = (text(&body, "token"), text(&body, "password"));
    let mut errors = FieldErrors::new();
    let checked = if raw.is_empty() {
        errors.insert("token".into(), required());
        None
    } else {
        email_change_token(ctx, &collection, &raw)
            .map_err(|error| errors.insert("token".into(), error))
            .ok()
    };
    let bad_password = || {
        field_error(
            "validation_invalid_password",
            "Missing or invalid auth record password.",
        )
    };
    if given.is_empty() {
        errors.insert("password".into(), required());
    } else if given.chars().count() > 100 || checked.is_none() {
        errors.insert("password".into(), bad_password());
    }
    let checked = match checked {
        Some(c) if errors.is_empty() => c,
        _ => return Err(ApiError::validation(INVALID_DATA, errors)),
    };
    let app = ctx.app.clone();
    now_or_later(true, move || {
        if !password::verify_password(&given, checked.record.get_str("password")) {
            return Err(ApiError::validation(
                INVALID_DATA,
                FieldErrors::from_iter([("password".into(), bad_password())]),
            ));
        }
        let job_app = app.clone();
        app.write(move |tx| {
            let (record, claims) = recheck_token(
                &job_app,
                tx.conn(),
                &checked.collection.id,
                &raw,
                TokenKind::EmailChange,
                "Invalid or expired token.",
            )?;
            let change = AuthChange {
                email: Some(claim(&claims, "newEmail").to_string()),
                verified: Some(true),
                rotate_token_key: true,
                ..AuthChange::default()
            };
            changes::save(
                tx,
                &job_app.realtime,
                &checked.collection,
                &record,
                change,
                "Failed to confirm email change.",
            )
            .map(drop)
        })?;
        Ok(Reply::no_content())
    })
}

/// The checks of an email change token: its claims, its signature and
/// collection, and a new address still free.
fn email_change_token(
    ctx: &Ctx<'_>,
    collection: &Collection,
    raw: &str,
) -> Result<CheckedToken, Value> {
    let new_email = claim(&unverified_claims(raw), "newEmail").to_string();
    if new_email.is_empty() {
        return Err(field_error(
            "validation_invalid_token_payload",
            "Invalid token payload - newEmail must be set.",
        ));
    }
    let checked = check_token(ctx, collection, raw, TokenKind::EmailChange)?;
    let taken = find_by_email(ctx, collection, &new_email)
        .map_err(|_| field_error("validation_invalid_token", "Invalid or expired token."))?
        .is_some();
    if taken {
        return Err(field_error(
            "validation_invalid_token_email",
            "The new email address is invalid.",
        ));
    }
    Ok(checked)
}
