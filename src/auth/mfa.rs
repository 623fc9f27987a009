//! Multi-factor auth: with `mfa.enabled` (and `mfa.rule` matching the
//! record), a first successful factor does not sign in; it opens an MFA
//! session (a `_mfas` row naming the method used) whose id the client
//! sends along with a second, different factor within `mfa.duration`.
//!
//! It owns the `_mfas` table and runs inside the sign-in's writer job.
//! It never issues tokens and never checks a credential itself: it is only
//! called after a factor has succeeded.
//!
//! It also counts wrong second factors per session ([`SecondFactor`]):
//! whoever holds an `mfaId` has passed the first factor, and must not get
//! to guess the second one without end, whatever `bruteForce` says.

use super::throttle::{self, Policy};
use crate::app::{App, Ctx};
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::error::ApiError;
use crate::records::{filter, RecordValues};
use crate::security::random;
use rusqlite::{params, OptionalExtension};

/// Wrong second factors one MFA session may take; the next attempt, even
/// a right one, is refused (429) for the rest of the session's life, and
/// the client has to pass the first factor again.
pub const SECOND_FACTOR_GUESSES: u32 = 5;
const TOO_MANY_GUESSES: &str =
    "Too many failed attempts for this MFA session, please authenticate again.";

/// The count of one session's wrong second factors, opened by
/// [`SecondFactor::check`] before the factor is verified (off the
/// request worker, the verdict is reported with [`SecondFactor::failed`]
/// or [`SecondFactor::passed`]).
#[derive(Debug, Clone, Copy)]
pub struct SecondFactor {
    key: throttle::Key,
    policy: Policy,
}

impl SecondFactor {
    /// `None` without an `mfaId` (a first factor); 429 once the session
    /// named by `mfa_id` has taken [`SECOND_FACTOR_GUESSES`] wrong ones.
    /// Counted per id whether or not it names a session, so the answer
    /// does not tell live sessions from made-up ones.
    pub fn check(
        app: &App,
        collection: &Collection,
        mfa_id: &str,
    ) -> Result<Option<SecondFactor>, ApiError> {
        let Some(options) = AuthOptions::from_collection(collection) else {
            return Ok(None);
        };
        if mfa_id.is_empty() || !options.mfa.enabled {
            return Ok(None);
        }
        let guard = SecondFactor {
            key: throttle::key(&["mfa", &collection.id, mfa_id]),
            policy: Policy {
                enabled: true,
                max_failures: SECOND_FACTOR_GUESSES,
                duration: u64::try_from(options.mfa.duration).unwrap_or(0).max(1),
            },
        };
        app.throttle
            .check_attempts(&guard.key, guard.policy, TOO_MANY_GUESSES)?;
        Ok(Some(guard))
    }

    /// The factor was wrong: one guess fewer for this session.
    pub fn failed(&self, app: &App) {
        app.throttle.record_failure(&self.key, self.policy);
    }

    /// The attempt ended without a wrong factor: the factor was right
    /// (which proves nothing about the session, it may be another
    /// record's, so the count of wrong ones stays) or it was refused
    /// before the factor was checked.
    pub fn release(&self, app: &App) {
        app.throttle.release(&self.key);
    }
}

/// What MFA makes of a successful factor.
#[derive(Debug, PartialEq)]
pub enum MfaStep {
    /// Nothing (more) to do: sign in.
    Done,
    /// A second factor is needed: answer 401 `{"mfaId"}`.
    Challenge(String),
    /// The session named by the client does not complete this sign-in.
    Refused(ApiError),
}

/// A stored MFA session.
struct Session {
    collection_ref: String,
    record_ref: String,
    method: String,
    created: String,
}

/// Decides the MFA step for `record` having just passed `method`, with the
/// `mfa_id` the client sent ("" for none). Creates or consumes sessions.
pub fn check(
    ctx: &Ctx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    record: &RecordValues,
    method: &str,
    mfa_id: &str,
) -> Result<MfaStep, ApiError> {
    if !options.mfa.enabled || method.is_empty() || !wants_mfa(ctx, collection, options, record)? {
        return Ok(MfaStep::Done);
    }
    if mfa_id.is_empty() {
        return open(ctx, collection, options, record, method).map(MfaStep::Challenge);
    }
    let invalid = || MfaStep::Refused(ApiError::bad_request("Invalid or expired MFA session."));
    let Some(session) = find(ctx, mfa_id)? else {
        return Ok(invalid());
    };
    if is_expired(&session.created, options.mfa.duration) {
        delete(ctx, mfa_id)?;
        return Ok(invalid());
    }
    if session.record_ref != record.id() || session.collection_ref != collection.id {
        return Ok(MfaStep::Refused(ApiError::bad_request(
            "Invalid MFA session.",
        )));
    }
    if session.method == method {
        return Ok(MfaStep::Refused(ApiError::bad_request(
            "A different authentication method is required.",
        )));
    }
    delete(ctx, mfa_id)?;
    Ok(MfaStep::Done)
}

/// Whether MFA applies to `record`: always with an empty rule, else when
/// the rule matches it. A rule that cannot run refuses the sign-in.
fn wants_mfa(
    ctx: &Ctx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    record: &RecordValues,
) -> Result<bool, ApiError> {
    let rule = options.mfa.rule.trim();
    if rule.is_empty() {
        return Ok(true);
    }
    filter::record_satisfies(ctx, collection, rule, record.id(), ctx.auth.as_ref()).map_err(|e| {
        log::warn!("the MFA rule of {} failed: {e}", collection.name);
        ApiError::bad_request("Failed to authenticate.")
    })
}

fn is_expired(created: &str, duration_secs: i64) -> bool {
    match crate::datetime::parse_millis(created) {
        Some(created) => {
            created.saturating_add(duration_secs.saturating_mul(1000))
                < crate::datetime::now_millis()
        }
        None => true,
    }
}

/// Opens a session; expired sessions of the collection go as new ones come.
fn open(
    ctx: &Ctx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    record: &RecordValues,
    method: &str,
) -> Result<String, ApiError> {
    let now = crate::datetime::now_millis();
    let cutoff = crate::datetime::format_millis(
        now.saturating_sub(options.mfa.duration.saturating_mul(1000)),
    );
    ctx.db.execute(
        "DELETE FROM `_mfas` WHERE collectionRef = ?1 AND created < ?2",
        params![collection.id, cutoff],
    )?;
    let id = random::record_id();
    ctx.db.execute(
        "INSERT INTO `_mfas` (id, collectionRef, recordRef, method, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            id,
            collection.id,
            record.id(),
            method,
            crate::datetime::now_text()
        ],
    )?;
    Ok(id)
}

fn find(ctx: &Ctx<'_>, id: &str) -> Result<Option<Session>, ApiError> {
    let session = ctx
        .db
        .query_row(
            "SELECT collectionRef, recordRef, method, created FROM `_mfas` WHERE id = ?1",
            [id],
            |row| {
                Ok(Session {
                    collection_ref: row.get(0)?,
                    record_ref: row.get(1)?,
                    method: row.get(2)?,
                    created: row.get(3)?,
                })
            },
        )
        .optional()?;
    Ok(session)
}

fn delete(ctx: &Ctx<'_>, id: &str) -> Result<(), ApiError> {
    ctx.db.execute("DELETE FROM `_mfas` WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_expired;
    use crate::datetime::{format_millis, now_millis};

    #[test]
    fn sessions_expire_after_the_duration() {
        let now = now_millis();
        assert!(!is_expired(&format_millis(now - 5_000), 600));
        assert!(is_expired(&format_millis(now - 601_000), 600));
        assert!(is_expired("not a date", 600));
    }
}
