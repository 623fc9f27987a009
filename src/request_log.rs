//! Request logs in `auxiliary.db` table `_logs`, in the reference's shape,
//! written by a thread of their own so that logging never delays a response
//! or competes with the data writer. Entries queue in a bounded channel;
//! when it is full an entry is dropped and counted rather than blocking.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use rusqlite::Connection;
use serde_json::json;
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
    pub remote_ip: String,
    pub user_agent: String,
    pub referer: String,
    /// The auth collection name of the caller, or "".
    pub auth: String,
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
    while let Ok(first) = entries.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match entries.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if let Err(e) = insert_batch(&conn, &batch) {
            log::error!("writing request logs failed: {e}");
        }
    }
}

fn insert_batch(conn: &Connection, batch: &[Entry]) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    let result = (|| {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO `_logs` (id, level, message, data, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for entry in batch {
            let level = if entry.status >= 500 { 8 } else { 0 };
            let message = format!("{} {}", entry.method, entry.url);
            let data = json!({
                "type": "request",
                "method": entry.method,
                "url": entry.url,
                "status": entry.status,
                "execTime": entry.exec_time_ms,
                "remoteIP": entry.remote_ip,
                "userIP": entry.remote_ip,
                "userAgent": entry.user_agent,
                "referer": entry.referer,
                "auth": entry.auth,
            });
            stmt.execute(rusqlite::params![
                crate::security::random::record_id(),
                level,
                message,
                data.to_string(),
                crate::datetime::now_text()
            ])?;
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
