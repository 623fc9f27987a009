//! One-time passwords by email: `request-otp` mails a code of `otp.length`
//! digits and answers its id; `auth-with-otp` exchanges id + code for a
//! sign-in (through MFA when that is on). Codes are stored hashed in
//! `_otps` (this module owns that table), are single use, expire after
//! `otp.duration`, survive a wrong guess, and a few wrong guesses per
//! record and window lock further attempts (429).
//!
//! Unknown addresses get a made-up id after the same work (a hash and a
//! writer round trip) as real ones, and unknown ids cost a dummy hash
//! check, so neither answers nor timings reveal accounts. Hashing runs on
//! the hashing pool; mails leave through the outbox.

use super::api::auth_collection;
use super::changes::{self, AuthChange};
use super::complete::{self, Attempt, Prelude, METHOD_OTP};
use super::emails::{self, AuthMail};
use super::input::{length_error, read_body, required, text, valid_email, INVALID_DATA};
use super::mfa::SecondFactor;
use super::throttle::{self, Policy};
use crate::app::{App, Ctx};
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::datetime;
use crate::error::{ApiError, FieldErrors};
use crate::http::{Outcome, Reply, Req};
use crate::records::{sql, RecordValues};
use crate::security::{password, random};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use std::sync::Arc;

const INVALID_OTP: &str = "Invalid or expired OTP.";
/// Live codes per record before new requests reuse the newest one.
const MAX_LIVE_CODES: usize = 10;
/// Digits of a code when the options do not say.
const DEFAULT_LENGTH: usize = 8;
const MAX_OTP_ID_LEN: usize = 255;
const MAX_CODE_LEN: usize = 71;
/// Codes are short: five wrong guesses per record lock its OTP sign-in
/// for three minutes, even with a new code (the reference's limit and
/// answer, whatever `bruteForce` says).
const GUESSES: Policy = Policy {
    enabled: true,
    max_failures: 5,
    duration: 180,
};
const TOO_MANY_GUESSES: &str = "Too many attempts, please try again later with a new OTP.";

/// The throttle key of OTP guesses: the record, so a new code does not
/// reset the count.
fn guess_key(collection: &Collection, record: &RecordValues) -> throttle::Key {
    throttle::key(&["otp", &collection.id, record.id()])
}

fn disabled() -> ApiError {
    ApiError::Forbidden("The collection is not configured to allow OTP authentication.".into())
}

fn otp_options(collection: &Collection) -> Result<AuthOptions, ApiError> {
    let options = AuthOptions::from_collection(collection)
        .ok_or_else(|| ApiError::internal("unreadable auth options"))?;
    if options.otp.enabled {
        Ok(options)
    } else {
        Err(disabled())
    }
}

/// `POST /api/collections/{c}/request-otp`
pub fn request_otp(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let options = otp_options(&collection)?;
    let email = valid_email(&read_body(ctx, req)?, "email")?;
    let found = sql::find_by_field(ctx.db, &collection, "email", &email)?;
    let code = random::string_from(b"0123456789", code_length(&options));
    let app = ctx.app.clone();
    let issue = match found {
        Some(record) => {
            let live = live_codes(ctx.db, &collection, &record, options.otp.duration)?;
            match live.first().filter(|_| live.len() >= MAX_LIVE_CODES) {
                Some(newest) => {
                    log::warn!("too many OTP requests for a record: reusing the newest code");
                    Issue::Reuse(newest.clone())
                }
                None => Issue::New(Box::new(NewCode {
                    collection,
                    options,
                    record,
                })),
            }
        }
        None => Issue::Decoy,
    };
    // Every path hashes and goes through the writer once.
    Ok(Outcome::Later(Box::new(move || {
        let hash = password::hash_password(&code).map_err(ApiError::internal)?;
        let id = match issue {
            Issue::New(new) => store_and_mail(&app, *new, code, hash)?,
            Issue::Reuse(id) => app.write(move |_| Ok(id))?,
            Issue::Decoy => app.write(|_| Ok(random::record_id()))?,
        };
        Ok(Reply::json(&json!({ "otpId": id })))
    })))
}

/// A code issued without mail, for `satchel superuser otp`.
#[derive(Debug)]
pub struct IssuedCode {
    pub id: String,
    pub code: String,
    /// Seconds the code stays valid.
    pub valid_secs: i64,
}

/// Issues a code for `record_id` of `collection` as `request-otp` would,
/// but hands it back instead of mailing it (the reference's CLI stores no
/// `sentTo`, so using it proves no address). The caller checked that OTP
/// is enabled. Hashes on the calling thread: never call it from a request
/// worker.
pub fn issue_unmailed(
    conn: &Connection,
    collection: &Collection,
    options: &AuthOptions,
    record_id: &str,
) -> Result<IssuedCode, String> {
    let code = random::string_from(b"0123456789", code_length(options));
    let hash = password::hash_password(&code).map_err(|e| e.to_string())?;
    let id = random::record_id();
    conn.execute(
        "INSERT INTO `_otps` (id, collectionRef, recordRef, password, sentTo, created, updated)
         VALUES (?1, ?2, ?3, ?4, '', ?5, ?5)",
        params![id, collection.id, record_id, hash, datetime::now_text()],
    )
    .map_err(|e| e.to_string())?;
    Ok(IssuedCode {
        id,
        code,
        valid_secs: options.otp.duration,
    })
}

fn code_length(options: &AuthOptions) -> usize {
    usize::try_from(options.otp.length)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LENGTH)
}

enum Issue {
    New(Box<NewCode>),
    Reuse(String),
    Decoy,
}

struct NewCode {
    collection: Arc<Collection>,
    options: AuthOptions,
    record: RecordValues,
}

/// Stores the code's hash and, once committed, mails the code; a mail
/// that fails takes its code back out.
fn store_and_mail(
    app: &Arc<App>,
    new: NewCode,
    code: String,
    hash: String,
) -> Result<String, ApiError> {
    let id = random::record_id();
    let sent_to = new.record.get_str("email").to_string();
    let message = emails::compose(
        &app.settings(),
        &new.options,
        &AuthMail::Otp { code },
        &sent_to,
    );
    let (job_app, row_id) = (app.clone(), id.clone());
    let cutoff = expiry_cutoff(new.options.otp.duration);
    app.write(move |tx| {
        // Expired codes of this collection go as new ones come.
        tx.conn().execute(
            "DELETE FROM `_otps` WHERE collectionRef = ?1 AND created < ?2",
            params![new.collection.id, cutoff],
        )?;
        tx.conn().execute(
            "INSERT INTO `_otps` (id, collectionRef, recordRef, password, sentTo, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                row_id,
                new.collection.id,
                new.record.id(),
                hash,
                sent_to,
                datetime::now_text()
            ],
        )?;
        tx.after_commit(move |_| {
            let app = job_app.clone();
            let on_done = Box::new(move |sent: bool| {
                if !sent {
                    let _ = app.write(move |tx| delete_code(tx.conn(), &row_id).map(drop));
                }
            });
            emails::deliver(&job_app, message, Some(on_done));
        });
        Ok(())
    })?;
    Ok(id)
}

/// Ids of the record's unexpired codes, newest first.
fn live_codes(
    conn: &Connection,
    collection: &Collection,
    record: &RecordValues,
    duration_secs: i64,
) -> Result<Vec<String>, ApiError> {
    let since = expiry_cutoff(duration_secs);
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM `_otps` WHERE collectionRef = ?1 AND recordRef = ?2 AND created > ?3
         ORDER BY created DESC, rowid DESC",
    )?;
    let ids = stmt
        .query_map(params![collection.id, record.id(), since], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// Codes created before this time have expired.
fn expiry_cutoff(duration_secs: i64) -> String {
    datetime::format_millis(
        datetime::now_millis().saturating_sub(duration_secs.saturating_mul(1000)),
    )
}

/// A stored code.
struct StoredCode {
    id: String,
    collection_ref: String,
    record_ref: String,
    hash: String,
    sent_to: String,
    created: String,
}

fn find_code(conn: &Connection, id: &str) -> Result<Option<StoredCode>, ApiError> {
    let code = conn
        .query_row(
            "SELECT id, collectionRef, recordRef, password, sentTo, created FROM `_otps` WHERE id = ?1",
            [id],
            |row| {
                Ok(StoredCode {
                    id: row.get(0)?,
                    collection_ref: row.get(1)?,
                    record_ref: row.get(2)?,
                    hash: row.get(3)?,
                    sent_to: row.get(4)?,
                    created: row.get(5)?,
                })
            },
        )
        .optional()?;
    Ok(code)
}

/// Removes a code; false when it was already gone.
fn delete_code(conn: &Connection, id: &str) -> Result<bool, ApiError> {
    Ok(conn.execute("DELETE FROM `_otps` WHERE id = ?1", [id])? > 0)
}

fn is_expired(created: &str, duration_secs: i64) -> bool {
    datetime::parse_millis(created).is_none_or(|created| {
        created.saturating_add(duration_secs.saturating_mul(1000)) < datetime::now_millis()
    })
}

/// A code that may be tried: of this collection, unexpired, its record alive.
struct Candidate {
    code: StoredCode,
    record: RecordValues,
}

fn candidate(
    ctx: &Ctx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    otp_id: &str,
) -> Result<Option<Candidate>, ApiError> {
    let Some(code) = find_code(ctx.db, otp_id)? else {
        return Ok(None);
    };
    if code.collection_ref != collection.id || is_expired(&code.created, options.otp.duration) {
        return Ok(None);
    }
    let record = sql::find_by_id(ctx.db, collection, &code.record_ref)?;
    Ok(record.map(|record| Candidate { code, record }))
}

/// `POST /api/collections/{c}/auth-with-otp`
pub fn auth_with_otp(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = auth_collection(ctx, c)?;
    let options = otp_options(&collection)?;
    let body = read_body(ctx, req)?;
    let (otp_id, given) = (text(&body, "otpId"), text(&body, "password"));
    let mut errors = FieldErrors::new();
    for (key, value, max) in [
        ("otpId", &otp_id, MAX_OTP_ID_LEN),
        ("password", &given, MAX_CODE_LEN),
    ] {
        if value.is_empty() {
            errors.insert(key.into(), required());
        } else if value.chars().count() > max {
            errors.insert(key.into(), length_error(1, max));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(INVALID_DATA, errors));
    }
    let attempt = Attempt::of(ctx, req, &body, METHOD_OTP);
    let found = candidate(ctx, &collection, &options, &otp_id)?;
    // As a second factor, also counted per MFA session.
    let second = SecondFactor::check(ctx.app, &collection, &attempt.mfa_id)?;
    if let Some(found) = &found {
        let key = guess_key(&collection, &found.record);
        if let Err(err) = ctx
            .app
            .throttle
            .check_attempts(&key, GUESSES, TOO_MANY_GUESSES)
        {
            if let Some(s) = second {
                s.release(ctx.app);
            }
            return Err(err);
        }
    }
    let app = ctx.app.clone();
    Ok(Outcome::Later(Box::new(move || {
        let Some(found) = found else {
            password::verify_dummy(&given);
            if let Some(s) = second {
                s.failed(&app);
            }
            return Err(ApiError::bad_request(INVALID_OTP));
        };
        let key = guess_key(&collection, &found.record);
        if !password::verify_password(&given, &found.code.hash) {
            app.throttle.record_failure(&key, GUESSES);
            if let Some(s) = second {
                s.failed(&app);
            }
            return Err(ApiError::bad_request(INVALID_OTP));
        }
        app.throttle.reset(&key);
        if let Some(s) = second {
            s.release(&app);
        }
        let new_hash = guard_password(&options, &found)?;
        let record_id = found.record.id().to_string();
        let prelude = consume(collection.clone(), found.code, new_hash);
        complete::sign_in(&app, collection, record_id, attempt, prelude)
    })))
}

/// A code mailed to the record's address proves it: the record becomes
/// verified. Without MFA, as the reference does, its password is then
/// replaced by a random one, so a password set by whoever created the
/// account before the owner proved the address no longer signs in.
fn guard_password(options: &AuthOptions, found: &Candidate) -> Result<Option<String>, ApiError> {
    if options.mfa.enabled || !proves_email(&found.record, &found.code.sent_to) {
        return Ok(None);
    }
    password::hash_password(&random::string_from(random::ALPHANUMERIC, 30))
        .map(Some)
        .map_err(ApiError::internal)
}

fn proves_email(record: &RecordValues, sent_to: &str) -> bool {
    !record.get_bool("verified") && !sent_to.is_empty() && record.get_str("email") == sent_to
}

/// The sign-in's prelude: spend the code (a second use fails here) and
/// apply what it proved.
fn consume(collection: Arc<Collection>, code: StoredCode, new_hash: Option<String>) -> Prelude {
    Box::new(move |app, tx, record| {
        if !delete_code(tx.conn(), &code.id)? {
            return Err(ApiError::bad_request(INVALID_OTP));
        }
        if !proves_email(&record, &code.sent_to) {
            return Ok(record);
        }
        let change = AuthChange {
            verified: Some(true),
            rotate_token_key: new_hash.is_some(),
            password_hash: new_hash,
            ..AuthChange::default()
        };
        changes::save(tx, &app.realtime, &collection, &record, change, INVALID_OTP)
    })
}
