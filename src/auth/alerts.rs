//! Login alerts: every completed sign-in records where it came from (the
//! reference's fingerprint, hex MD5 of client IP + user agent, in
//! `_authOrigins`, at most five per record, least recently used dropped
//! first). A sign-in from a new origin mails an alert, except the very
//! first sign-in of a record, when there is nothing to compare with.
//!
//! It owns the `_authOrigins` table and runs inside the sign-in's writer
//! job; the alert is queued only once that job has committed. It never
//! refuses a sign-in: a failure here is logged, as the reference does.

use super::emails::{self, AuthMail};
use crate::app::App;
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::records::RecordValues;
use crate::security::{md5, random};
use crate::store::WriteTx;
use rusqlite::params;
use std::sync::Arc;

/// Origins kept per record.
const MAX_ORIGINS: usize = 5;
/// Bytes of the user agent that count (the reference's cut).
const MAX_USER_AGENT_BYTES: usize = 300;

/// Where a sign-in comes from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

impl Origin {
    fn user_agent_bytes(&self) -> &[u8] {
        let bytes = self.user_agent.as_bytes();
        &bytes[..bytes.len().min(MAX_USER_AGENT_BYTES)]
    }

    /// The reference's fingerprint: hex MD5 of IP + (cut) user agent.
    pub fn fingerprint(&self) -> String {
        let mut data = self.ip.as_bytes().to_vec();
        data.extend_from_slice(self.user_agent_bytes());
        md5::hex(&data)
    }

    /// `{ALERT_INFO}`: when, from which IP, with which user agent.
    fn alert_info(&self) -> String {
        let agent = String::from_utf8_lossy(self.user_agent_bytes());
        format!("{} - {} {agent}", crate::datetime::now_text(), self.ip)
    }
}

/// Records the origin of a completed sign-in of `record` and, for a new
/// origin of a record seen before, queues the alert after commit.
pub fn record_sign_in(
    app: &Arc<App>,
    tx: &mut WriteTx<'_>,
    collection: &Collection,
    options: &AuthOptions,
    record: &RecordValues,
    origin: &Origin,
) {
    match remember(tx, collection, record, origin) {
        Ok(true) if !record.get_str("email").is_empty() => {
            let message = emails::compose(
                &app.settings(),
                options,
                &AuthMail::LoginAlert {
                    info: origin.alert_info(),
                },
                record.get_str("email"),
            );
            let app = app.clone();
            tx.after_commit(move |_| emails::deliver(&app, message, None));
        }
        Ok(_) => {}
        Err(e) => log::warn!("recording the sign-in origin failed: {e}"),
    }
}

/// Stores the origin; true when it is new for a record that had others.
fn remember(
    tx: &WriteTx<'_>,
    collection: &Collection,
    record: &RecordValues,
    origin: &Origin,
) -> rusqlite::Result<bool> {
    let conn = tx.conn();
    let fingerprint = origin.fingerprint();
    let now = crate::datetime::now_text();
    let known: Vec<(String, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id, fingerprint FROM `_authOrigins`
             WHERE collectionRef = ?1 AND recordRef = ?2
             ORDER BY updated DESC, rowid DESC",
        )?;
        let rows = stmt.query_map(params![collection.id, record.id()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if let Some((id, _)) = known.iter().find(|(_, f)| *f == fingerprint) {
        conn.execute(
            "UPDATE `_authOrigins` SET updated = ?1 WHERE id = ?2",
            params![now, id],
        )?;
        return Ok(false);
    }
    // Room for the new one: drop the least recently used beyond the cap.
    for (id, _) in known.iter().skip(MAX_ORIGINS - 1) {
        conn.execute("DELETE FROM `_authOrigins` WHERE id = ?1", [id])?;
    }
    conn.execute(
        "INSERT INTO `_authOrigins` (id, collectionRef, recordRef, fingerprint, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            random::record_id(),
            collection.id,
            record.id(),
            fingerprint,
            now
        ],
    )?;
    Ok(!known.is_empty())
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn fingerprints_match_the_reference() {
        // Stored by the reference for a curl login from loopback.
        let origin = Origin {
            ip: "127.0.0.1".into(),
            user_agent: "curl/7.88.1".into(),
        };
        assert_eq!(origin.fingerprint(), "31c54d6751a716e42db5807665d4a6b3");
    }

    #[test]
    fn only_the_first_300_bytes_of_the_user_agent_count() {
        let long = |tail: &str| Origin {
            ip: "1.2.3.4".into(),
            user_agent: format!("{}{tail}", "x".repeat(300)),
        };
        assert_eq!(long("a").fingerprint(), long("b").fingerprint());
        assert_ne!(long("").fingerprint(), Origin::default().fingerprint());
    }
}
