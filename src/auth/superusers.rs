//! Superuser accounts from the command line and the environment
//! (`superuser upsert|create|update|delete|otp|ips`,
//! `POCKETBASE_ADMIN_EMAIL` / `POCKETBASE_ADMIN_PASSWORD`). These run as
//! writer jobs like any write; errors are the reference's CLI wording.

use super::otp::{self, IssuedCode};
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::security::{password, random};
use crate::settings::{PatchError, Settings};
use crate::store::Writer;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use std::sync::Arc;

/// The reference's minimum password length for superusers.
pub const MIN_PASSWORD_LEN: usize = 8;

/// What an upsert did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

fn check_input(email: &str, password: &str) -> Result<(), String> {
    if !crate::records::is_email(email) {
        return Err(format!("invalid email address {email:?}"));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

fn find_id(conn: &Connection, email: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM `_superusers` WHERE email = ?1",
        [email],
        |r| r.get(0),
    )
    .optional()
}

fn insert(conn: &Connection, email: &str, hash: &str) -> rusqlite::Result<()> {
    let now = crate::datetime::now_text();
    conn.execute(
        "INSERT INTO `_superusers` (id, email, password, tokenKey, emailVisibility, verified, created, updated)
         VALUES (?1, ?2, ?3, ?4, FALSE, TRUE, ?5, ?5)",
        params![random::record_id(), email, hash, random::string_from(random::ALPHANUMERIC, 50), now],
    )?;
    Ok(())
}

/// A new password also gets a new tokenKey, so old tokens stop working.
fn set_password(conn: &Connection, id: &str, hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE `_superusers` SET password = ?1, tokenKey = ?2, updated = ?3 WHERE id = ?4",
        params![
            hash,
            random::string_from(random::ALPHANUMERIC, 50),
            crate::datetime::now_text(),
            id
        ],
    )?;
    Ok(())
}

fn run<T: Send + 'static>(
    writer: &Writer,
    job: impl FnOnce(&Connection) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match writer.run(move |tx| job(tx.conn())) {
        Ok(result) => result,
        Err(e) => Err(e.to_string()),
    }
}

pub fn upsert(writer: &Writer, email: &str, password: &str) -> Result<Upserted, String> {
    check_input(email, password)?;
    let hash = password::hash_password(password).map_err(|e| e.to_string())?;
    let email = email.to_string();
    run(writer, move |conn| {
        let db = |e: rusqlite::Error| e.to_string();
        match find_id(conn, &email).map_err(db)? {
            Some(id) => set_password(conn, &id, &hash)
                .map_err(db)
                .map(|_| Upserted::Updated),
            None => insert(conn, &email, &hash)
                .map_err(db)
                .map(|_| Upserted::Created),
        }
    })
}

pub fn create(writer: &Writer, email: &str, password: &str) -> Result<(), String> {
    check_input(email, password)?;
    let hash = password::hash_password(password).map_err(|e| e.to_string())?;
    let email = email.to_string();
    run(writer, move |conn| {
        if find_id(conn, &email).map_err(|e| e.to_string())?.is_some() {
            return Err(format!("a superuser with email {email:?} already exists"));
        }
        insert(conn, &email, &hash).map_err(|e| e.to_string())
    })
}

pub fn update(writer: &Writer, email: &str, password: &str) -> Result<(), String> {
    check_input(email, password)?;
    let hash = password::hash_password(password).map_err(|e| e.to_string())?;
    let email = email.to_string();
    run(writer, move |conn| {
        match find_id(conn, &email).map_err(|e| e.to_string())? {
            Some(id) => set_password(conn, &id, &hash).map_err(|e| e.to_string()),
            None => Err(format!("no superuser with email {email:?}")),
        }
    })
}

/// Deletes a superuser; a missing one is not an error (as the reference),
/// but the last one is never deleted.
pub fn delete(writer: &Writer, email: &str) -> Result<bool, String> {
    let email = email.to_string();
    run(writer, move |conn| {
        let db = |e: rusqlite::Error| e.to_string();
        let Some(id) = find_id(conn, &email).map_err(db)? else {
            return Ok(false);
        };
        let total: i64 = conn
            .query_row("SELECT count(*) FROM `_superusers`", [], |r| r.get(0))
            .map_err(db)?;
        if total <= 1 {
            return Err("you can't delete the only existing superuser".into());
        }
        conn.execute("DELETE FROM `_superusers` WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(true)
    })
}

/// `superuser otp EMAIL`: a one-time password for signing in as that
/// superuser without mail (e.g. when SMTP is not set up yet). Refused
/// unless OTP is enabled for `_superusers`.
pub fn create_otp(
    writer: &Writer,
    superusers: &Arc<Collection>,
    email: &str,
) -> Result<IssuedCode, String> {
    if !crate::records::is_email(email) {
        return Err("invalid or missing email address".into());
    }
    let options = AuthOptions::from_collection(superusers)
        .ok_or("the _superusers collection has no auth options")?;
    let (collection, email) = (superusers.clone(), email.to_string());
    run(writer, move |conn| {
        let Some(id) = find_id(conn, &email).map_err(|e| e.to_string())? else {
            return Err(format!("superuser with email {email:?} doesn't exist"));
        };
        if !options.otp.enabled {
            return Err("OTP auth is not enabled for the _superusers collection".into());
        }
        otp::issue_unmailed(conn, &collection, &options, &id)
    })
}

/// `superuser ips [IP|CIDR ...]`: `settings` with `superuserIPs` set to
/// `ips` (none clears it), validated as the settings API does. The caller
/// stores them.
pub fn with_ips(settings: &Settings, ips: &[String]) -> Result<Settings, String> {
    crate::settings::apply_patch(settings, &json!({ "superuserIPs": ips })).map_err(|e| match e {
        PatchError::Invalid(errors) => describe_errors(&errors.into_value()),
        PatchError::Malformed(message) => message.to_string(),
    })
}

/// Field errors as one line, shaped like the reference's
/// (`superuserIPs: (0: invalid IP or CIDR subnet.).`).
fn describe_errors(errors: &Value) -> String {
    fn message(value: &Value) -> Option<&str> {
        value.get("message").and_then(Value::as_str)
    }
    fn describe(value: &Value) -> String {
        let Some(fields) = value.as_object() else {
            return value.to_string();
        };
        let field = |(key, inner): (&String, &Value)| match message(inner) {
            Some(message) => format!("{key}: {message}"),
            None => format!("{key}: ({})", describe(inner)),
        };
        fields.iter().map(field).collect::<Vec<_>>().join("; ")
    }
    format!("{}.", describe(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_validated_like_the_settings_api() {
        let set = with_ips(
            &Settings::default(),
            &["127.0.0.1".into(), "10.0.0.0/24".into()],
        );
        assert_eq!(set.unwrap().superuser_ips, ["127.0.0.1", "10.0.0.0/24"]);
        assert!(with_ips(&Settings::default(), &[])
            .unwrap()
            .superuser_ips
            .is_empty());
        let bad = with_ips(&Settings::default(), &["10.0.0.1".into(), "bogus".into()]);
        let message = bad.unwrap_err();
        assert!(message.starts_with("superuserIPs: (1: "), "{message}");
        assert!(message.ends_with(".)."), "{message}");
        assert_eq!(message.matches('(').count(), 1, "{message}");
    }
}
