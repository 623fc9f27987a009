//! Request logs in `auxiliary.db` table `_logs`, in the reference's shape,
//! written by a thread of their own so that logging never delays a response
//! or competes with the data writer. Entries queue in a bounded channel;
//! when it is full an entry is dropped and counted rather than blocking.

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

const QUEUE_CAPACITY: usize = 8192;
const MAX_BATCH: usize = 1024;

/// One finished request.
#[derive(Debug, Clone)]
pub struct Entry {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    pub exec_time_ms: f64,
    /// The TCP peer.
    pub remote_ip: String,
    /// The client behind trusted proxies (the peer without them).
    pub user_ip: String,
    pub user_agent: String,
    pub referer: String,
    /// The auth collection name of the caller, or "".
    pub auth: String,
    /// When the response was sent, Unix milliseconds.
    pub finished_millis: i64,
}

/// The handle requests log through.
pub struct RequestLog {
    queue: Sender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl RequestLog {
    /// Opens `auxiliary.db` (creating its tables) and starts the log thread.
    pub fn start(path: &Path) -> Result<(RequestLog, JoinHandle<()>), String> {
        let conn = crate::store::open_writer(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        crate::store::bootstrap::create_aux_tables(&conn)
            .map_err(|e| format!("cannot create the log tables: {e}"))?;
        let (queue, entries) = bounded(QUEUE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let handle = std::thread::Builder::new()
            .name("satchel-request-log".into())
            .spawn(move || write_loop(conn, entries))
            .map_err(|e| format!("cannot start the log thread: {e}"))?;
        Ok((RequestLog { queue, dropped }, handle))
    }

    pub fn record(&self, entry: Entry) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(entry) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                log::warn!("request log queue full: {n} entries dropped so far");
            }
        }
    }
}

fn write_loop(conn: Connection, entries: Receiver<Entry>) {
    let mut ids = LogIds::new();
    let mut busy_since_shrink = false;
    loop {
        let first = match entries.recv_timeout(crate::store::IDLE_BEFORE_SHRINK) {
            Ok(entry) => entry,
            Err(RecvTimeoutError::Timeout) => {
                if std::mem::take(&mut busy_since_shrink) {
                    crate::store::release_idle_memory(&conn);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        busy_since_shrink = true;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match entries.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if let Err(e) = insert_batch(&conn, &batch, &mut ids) {
            log::error!("writing request logs failed: {e}");
        }
    }
}

/// The `data` column of a request log row, in the reference's shape.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    method: &'static str,
    url: &'a str,
    status: u16,
    exec_time: f64,
    #[serde(rename = "remoteIP")]
    remote_ip: &'a str,
    #[serde(rename = "userIP")]
    user_ip: &'a str,
    user_agent: &'a str,
    referer: &'a str,
    auth: &'a str,
}

/// Row ids for log entries. They must be unique, not secret, so a fast
/// generator seeded once from the OS replaces a system call per row.
struct LogIds(u64);

impl LogIds {
    fn new() -> LogIds {
        LogIds(crate::security::random::u64())
    }

    /// 15 characters of `[a-z0-9]`, like every other id (splitmix64).
    fn next(&mut self) -> String {
        let alphabet = crate::security::random::ALPHANUMERIC_LOWER;
        let mut id = String::with_capacity(15);
        while id.len() < 15 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            for _ in 0..8 {
                if id.len() == 15 {
                    break;
                }
                id.push(alphabet[(z % 36) as usize] as char);
                z /= 36;
            }
        }
        id
    }
}

fn insert_batch(conn: &Connection, batch: &[Entry], ids: &mut LogIds) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO `_logs` (id, level, message, data, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for entry in batch {
            let created = crate::datetime::format_millis(entry.finished_millis);
            let level = if entry.status >= 500 { 8 } else { 0 };
            let message = format!("{} {}", entry.method, entry.url);
            let data = RequestData {
                kind: "request",
                method: entry.method,
                url: &entry.url,
                status: entry.status,
                exec_time: entry.exec_time_ms,
                remote_ip: &entry.remote_ip,
                user_ip: &entry.user_ip,
                user_agent: &entry.user_agent,
                referer: &entry.referer,
                auth: &entry.auth,
            };
            let data = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_string());
            stmt.execute(rusqlite::params![ids.next(), level, message, data, created])?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_look_like_record_ids_and_do_not_repeat() {
        let mut ids = LogIds::new();
        let seen: std::collections::HashSet<String> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(seen.len(), 10_000);
        assert!(seen.iter().all(|id| id.len() == 15
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())));
    }
}
