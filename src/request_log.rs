//! Request logs in `auxiliary.db` table `_logs`, in the reference's shape,
//! written by a thread of their own so that logging never delays a response
//! or competes with the data writer. Entries queue in a bounded channel;
//! when it is full an entry is dropped and counted rather than blocking.

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Entries waiting for the log thread. Past this, entries are dropped and
/// counted. The queue is a linked channel that allocates as it fills: a
/// preallocated one of this size would hold 12 MiB from the start.
const QUEUE_CAPACITY: usize = 65_536;
/// A window closes early once this many entries wait, well before the queue
/// would drop any.
const FULL_BATCH: usize = QUEUE_CAPACITY / 2;
/// How long the thread lets entries gather after the first one before it
/// writes them, all in one transaction. Under load most of a log row's cost
/// is the pages it dirties in the message index, where request paths with
/// record ids land at random places: the more rows one transaction holds,
/// the more of them share a page. A log row appearing a second late harms
/// nobody.
const BATCH_WINDOW: Duration = Duration::from_secs(1);
/// How often the thread looks at the queue's length during a window.
const WINDOW_POLL: Duration = Duration::from_millis(50);
/// How long the queue must stay empty after a window before the thread
/// hands back its batch buffer and page cache. Shorter than the workers'
/// second: a window already gathers for a second, so releasing early costs
/// nothing, while a burst's batch (thousands of entries) would otherwise
/// stay resident for two seconds after the last request.
const IDLE_BEFORE_SHRINK: Duration = Duration::from_millis(250);

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
        let (queue, entries) = unbounded();
        let dropped = Arc::new(AtomicU64::new(0));
        let handle = std::thread::Builder::new()
            .name("satchel-request-log".into())
            .spawn(move || write_loop(conn, entries))
            .map_err(|e| format!("cannot start the log thread: {e}"))?;
        Ok((RequestLog { queue, dropped }, handle))
    }

    /// Queues `entry` without blocking. Workers check the length and send
    /// in two steps, so the queue may overshoot its capacity by a few
    /// entries; what matters is that it cannot grow without bound.
    pub fn record(&self, entry: Entry) {
        if self.queue.len() < QUEUE_CAPACITY {
            // Fails only once the log thread has stopped (shutdown).
            let _ = self.queue.send(entry);
            return;
        }
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            log::warn!("request log queue full: {n} entries dropped so far");
        }
    }
}

fn write_loop(conn: Connection, entries: Receiver<Entry>) {
    let mut ids = LogIds::new();
    let mut busy_since_shrink = false;
    let mut batch = Vec::new();
    loop {
        let first = match entries.recv_timeout(IDLE_BEFORE_SHRINK) {
            Ok(entry) => entry,
            Err(RecvTimeoutError::Timeout) => {
                if std::mem::take(&mut busy_since_shrink) {
                    // A burst may have grown it to thousands of entries.
                    batch = Vec::new();
                    crate::store::release_idle_memory(&conn);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        busy_since_shrink = true;
        batch.push(first);
        // Let the window's entries pile up in the queue and take them all
        // at once: receiving them one by one would wake this thread for
        // every request.
        wait_for_window(&entries);
        batch.extend(entries.try_iter());
        if let Err(e) = insert_batch(&conn, &batch, &mut ids) {
            log::error!("writing request logs failed: {e}");
        }
        batch.clear();
    }
}

/// Sleeps until the batch window has passed or enough entries wait.
fn wait_for_window(entries: &Receiver<Entry>) {
    let started = Instant::now();
    while started.elapsed() < BATCH_WINDOW && entries.len() < FULL_BATCH {
        std::thread::sleep(WINDOW_POLL);
    }
}

/// Appends the `data` column of a request log row, in the reference's
/// shape and key order.
fn push_request_data(out: &mut Vec<u8>, entry: &Entry) {
    use crate::json::{push_key, push_serde, push_str};
    let texts = [
        ("remoteIP", entry.remote_ip.as_str()),
        ("userIP", &entry.user_ip),
        ("userAgent", &entry.user_agent),
        ("referer", &entry.referer),
        ("auth", &entry.auth),
    ];
    out.extend_from_slice(br#"{"type":"request","method":"#);
    push_str(out, entry.method);
    out.push(b',');
    push_key(out, "url");
    push_str(out, &entry.url);
    out.push(b',');
    push_key(out, "status");
    push_serde(out, &entry.status);
    out.push(b',');
    push_key(out, "execTime");
    push_serde(out, &entry.exec_time_ms);
    for (name, text) in texts {
        out.push(b',');
        push_key(out, name);
        push_str(out, text);
    }
    out.push(b'}');
}

/// Row ids for log entries: 15 characters of `[a-z0-9]` like every other
/// id, but increasing: 9 characters of base-36 milliseconds, then 6 of a
/// per-process sequence that starts at a random point. Unique (the sequence
/// only wraps after 36^6 ids in one millisecond) without a system call, and
/// appended at the end of the primary-key index instead of inserted at a
/// random place, which halves the cost of a log row.
struct LogIds {
    sequence: u64,
}

/// 36^6: the sequence part's range.
const SEQUENCE_SPAN: u64 = 2_176_782_336;
/// Digits of milliseconds, then of the sequence, in an id.
const MILLIS_DIGITS: usize = 9;
const SEQUENCE_DIGITS: usize = 6;

impl LogIds {
    fn new() -> LogIds {
        LogIds {
            sequence: crate::security::random::u64() % SEQUENCE_SPAN,
        }
    }

    /// Replaces `id` with the next id.
    fn next_into(&mut self, id: &mut String, millis: i64) {
        self.sequence = (self.sequence + 1) % SEQUENCE_SPAN;
        id.clear();
        push_base36(id, millis.max(0) as u64, MILLIS_DIGITS);
        push_base36(id, self.sequence, SEQUENCE_DIGITS);
    }
}

/// Appends `n` in base 36 with lower-case digits, left-padded with zeros to
/// `width` (higher digits are dropped; 9 digits of milliseconds last until
/// year 5000). `width` is at most 13, enough for any u64.
fn push_base36(out: &mut String, mut n: u64, width: usize) {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = [b'0'; 13];
    let width = width.min(digits.len());
    for slot in digits[..width].iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    for &digit in &digits[..width] {
        out.push(char::from(digit));
    }
}

/// The text columns of one row, rebuilt in place for every entry so that a
/// batch of thousands of rows allocates a handful of buffers, not thousands.
#[derive(Default)]
struct RowText {
    id: String,
    message: String,
    data: Vec<u8>,
    created: String,
}

impl RowText {
    fn fill(&mut self, entry: &Entry, ids: &mut LogIds) {
        ids.next_into(&mut self.id, entry.finished_millis);
        self.message.clear();
        self.message.push_str(entry.method);
        self.message.push(' ');
        self.message.push_str(&entry.url);
        self.created.clear();
        crate::datetime::push_millis(&mut self.created, entry.finished_millis);
        self.data.clear();
        push_request_data(&mut self.data, entry);
    }

    /// The `data` column: JSON text is UTF-8.
    fn data(&self) -> &str {
        std::str::from_utf8(&self.data).unwrap_or("{}")
    }
}

/// Rows per INSERT statement: one statement for many rows opens its table
/// and index cursors once instead of for every row.
const ROWS_PER_INSERT: usize = 64;
/// Columns bound per row.
const COLUMNS: usize = 5;

fn insert_batch(conn: &Connection, batch: &[Entry], ids: &mut LogIds) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    let result = insert_rows(conn, batch, ids);
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Inserts `batch` in order: `ROWS_PER_INSERT` rows per statement, then the
/// rest one by one.
fn insert_rows(conn: &Connection, batch: &[Entry], ids: &mut LogIds) -> rusqlite::Result<()> {
    let mut rows: Vec<RowText> = Vec::new();
    rows.resize_with(ROWS_PER_INSERT.min(batch.len()), RowText::default);
    let mut chunks = batch.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut many = conn.prepare_cached(&insert_sql(ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            insert_chunk(&mut many, chunk, &mut rows, ids)?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut one = conn.prepare_cached(&insert_sql(1))?;
        for entry in chunks.remainder() {
            insert_chunk(&mut one, std::slice::from_ref(entry), &mut rows, ids)?;
        }
    }
    Ok(())
}

/// `INSERT INTO _logs ... VALUES (?, ?, ?, ?, ?), ...` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO `_logs` (id, level, message, data, created) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?)");
    }
    sql
}

/// Binds `entries` to `stmt`, which has one row of parameters per entry,
/// and runs it. `rows` holds at least as many reusable text buffers.
fn insert_chunk(
    stmt: &mut rusqlite::Statement<'_>,
    entries: &[Entry],
    rows: &mut [RowText],
    ids: &mut LogIds,
) -> rusqlite::Result<()> {
    for (n, (entry, row)) in entries.iter().zip(rows.iter_mut()).enumerate() {
        row.fill(entry, ids);
        let first = n * COLUMNS + 1;
        let level = if entry.status >= 500 { 8 } else { 0 };
        stmt.raw_bind_parameter(first, row.id.as_str())?;
        stmt.raw_bind_parameter(first + 1, level)?;
        stmt.raw_bind_parameter(first + 2, row.message.as_str())?;
        stmt.raw_bind_parameter(first + 3, row.data())?;
        stmt.raw_bind_parameter(first + 4, row.created.as_str())?;
    }
    stmt.raw_execute()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_look_like_record_ids_increase_and_do_not_repeat() {
        let mut ids = LogIds::new();
        let now = crate::datetime::now_millis();
        let all: Vec<String> = (0..10_000)
            .map(|i| {
                let mut id = String::new();
                ids.next_into(&mut id, now + i / 100);
                id
            })
            .collect();
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert!(all.iter().all(|id| id.len() == 15
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())));
        // increasing, barring one wrap of the sequence
        let increasing = all.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(increasing >= all.len() - 2);
    }

    fn entry(n: usize, status: u16) -> Entry {
        Entry {
            method: "GET",
            url: format!("/api/collections/posts/records/r{n}"),
            status,
            exec_time_ms: 0.25,
            remote_ip: "127.0.0.1".into(),
            user_ip: "127.0.0.1".into(),
            user_agent: "test \"agent\"".into(),
            referer: String::new(),
            auth: String::new(),
            finished_millis: 1_764_000_000_000 + n as i64,
        }
    }

    #[test]
    fn the_data_column_has_the_reference_keys_in_its_order() {
        let mut logged = entry(3, 404);
        logged.exec_time_ms = 1.0 / 3.0;
        logged.referer = "https://example.com/\npage".into();
        let mut data = Vec::new();
        push_request_data(&mut data, &logged);
        let expected = serde_json::json!({
            "type": "request",
            "method": "GET",
            "url": "/api/collections/posts/records/r3",
            "status": 404,
            "execTime": 1.0 / 3.0,
            "remoteIP": "127.0.0.1",
            "userIP": "127.0.0.1",
            "userAgent": "test \"agent\"",
            "referer": "https://example.com/\npage",
            "auth": "",
        });
        assert_eq!(String::from_utf8(data).unwrap(), expected.to_string());
    }

    #[test]
    fn a_batch_is_stored_whole_and_in_order_across_statement_sizes() {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::bootstrap::create_aux_tables(&conn).unwrap();
        let mut ids = LogIds::new();
        // two full statements, then the rest one by one
        let batch: Vec<Entry> = (0..2 * ROWS_PER_INSERT + 5)
            .map(|n| entry(n, if n == 7 { 503 } else { 200 }))
            .collect();
        insert_batch(&conn, &batch, &mut ids).unwrap();
        let rows: Vec<(String, i64, String, String, String)> = conn
            .prepare("SELECT id, level, message, data, created FROM _logs ORDER BY rowid")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), batch.len());
        for (n, (id, level, message, data, created)) in rows.iter().enumerate() {
            assert_eq!(message, &format!("GET /api/collections/posts/records/r{n}"));
            assert_eq!(*level, if n == 7 { 8 } else { 0 });
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["url"], format!("/api/collections/posts/records/r{n}"));
            assert_eq!(data["userAgent"], "test \"agent\"");
            assert!(created.ends_with('Z'));
            assert_eq!(id.len(), 15);
        }
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0 && w[0].4 < w[1].4));
        // a batch smaller than one statement
        insert_batch(&conn, &batch[..3], &mut ids).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM _logs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count as usize, batch.len() + 3);
    }

    #[test]
    fn base36_pads_and_counts() {
        let base36 = |n, width| {
            let mut text = String::new();
            push_base36(&mut text, n, width);
            text
        };
        assert_eq!(base36(0, 3), "000");
        assert_eq!(base36(35, 3), "00z");
        assert_eq!(base36(36, 3), "010");
        assert_eq!(base36(36 * 36 * 36, 3), "000");
        assert_eq!(base36(u64::MAX, 13), "3w5e11264sgsf");
    }
}
