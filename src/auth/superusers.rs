//! Superuser accounts from the command line and the environment
//! (`superuser upsert|create|update|delete`, `POCKETBASE_ADMIN_EMAIL` /
//! `POCKETBASE_ADMIN_PASSWORD`). These run as writer jobs like any write.

use crate::security::{password, random};
use crate::store::Writer;
use rusqlite::{params, Connection, OptionalExtension};

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
