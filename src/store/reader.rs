//! A worker's read connection to `data.db`: opened on demand, closed when
//! its worker has been idle for a while, with a deadline on each request's
//! queries and one read transaction shared by consecutive read-only
//! requests while nothing has been written.
//!
//! Why share a read transaction (a snapshot): beginning and ending one takes
//! locks on the WAL index, which are file-lock system calls that the
//! workers contend on, and which make a worker that finds no request waiting
//! more likely to fall asleep and be woken again. Under a load of record
//! views, sharing them cut the server's CPU per view by a quarter (20
//! against 26 microseconds, measured side by side).
//!
//! Why it is safe: the writer counts its commits before it answers anyone
//! (`Writer::commits`). A snapshot begun when the count was N holds every
//! write of this server up to N, so while the count is still N it has
//! missed nothing, and a client always reads what it was told was written.
//! Requests that may write run outside any snapshot, and end the one held.
//! Two limits cover what the count cannot see: a snapshot lives at most
//! `SNAPSHOT_MAX_AGE`, so a write by another process (the `superuser`
//! command) shows within that time, and a worker with no request to serve
//! lets its snapshot go after the same time, so an old snapshot never keeps
//! the writer from resetting the WAL.

use super::writer::CommitCount;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a snapshot is kept, in use or idle.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_millis(10);

/// What a request may do with the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads (GET and HEAD): it may share the worker's snapshot.
    ReadOnly,
    /// May send writes to the writer, then read them back: it reads outside
    /// any snapshot, as SQLite's autocommit mode does.
    MayWrite,
}

/// One worker's read connection; see the module documentation.
pub struct Reader {
    path: PathBuf,
    commits: CommitCount,
    query_timeout: Duration,
    open: Option<Open>,
    snapshot: Option<Snapshot>,
}

struct Open {
    db: Connection,
    deadline: QueryDeadline,
}

/// The read transaction kept across read-only requests.
struct Snapshot {
    /// `Writer::commits` when the transaction began.
    commits: u64,
    began: Instant,
}

impl Reader {
    /// Opens the connection at once, so that a data dir that cannot be read
    /// fails the start rather than the first request.
    pub fn open(
        path: PathBuf,
        commits: CommitCount,
        query_timeout: Duration,
    ) -> rusqlite::Result<Reader> {
        let open = Open::new(&path)?;
        Ok(Reader {
            path,
            commits,
            query_timeout,
            open: Some(open),
            snapshot: None,
        })
    }

    /// The connection for a request that arrived at `now`, with its query
    /// deadline started: inside a current snapshot for `Access::ReadOnly`,
    /// outside any for `Access::MayWrite`. On an error the connection is
    /// dropped, and the next request opens a fresh one.
    pub fn for_request(&mut self, access: Access, now: Instant) -> rusqlite::Result<&Connection> {
        let open = match self.open.take() {
            Some(open) => open,
            None => Open::new(&self.path)?,
        };
        if let Some(snapshot) = &self.snapshot {
            let current = access == Access::ReadOnly
                && snapshot.commits == self.commits.get()
                && now.saturating_duration_since(snapshot.began) < SNAPSHOT_MAX_AGE;
            if !current {
                self.snapshot = None;
                end_transaction(&open.db)?;
            }
        }
        if access == Access::ReadOnly && self.snapshot.is_none() {
            // Counted before the transaction takes its snapshot (at its first
            // read), so the snapshot holds at least every counted commit.
            let commits = self.commits.get();
            open.db.prepare_cached("BEGIN")?.execute([])?;
            self.snapshot = Some(Snapshot {
                commits,
                began: now,
            });
        }
        open.deadline.start(self.query_timeout);
        Ok(&self.open.insert(open).db)
    }

    /// How long the worker may wait for its next request before it should
    /// call `idle`.
    pub fn patience(&self) -> Duration {
        if self.snapshot.is_some() {
            SNAPSHOT_MAX_AGE
        } else {
            super::IDLE_BEFORE_SHRINK
        }
    }

    /// The worker waited `patience()` for a request in vain: the snapshot
    /// goes first, the connection (and its memory) the next time.
    pub fn idle(&mut self) {
        if self.snapshot.take().is_none() {
            self.close();
            return;
        }
        let ended = match &self.open {
            Some(open) => end_transaction(&open.db),
            None => Ok(()),
        };
        if let Err(e) = ended {
            log::warn!("cannot end a read transaction: {e}");
            self.close();
        }
    }

    /// Closes the connection, handing its memory back.
    fn close(&mut self) {
        self.snapshot = None;
        if self.open.take().is_some() {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            crate::memory::return_free_pages();
        }
    }
}

impl Open {
    fn new(path: &std::path::Path) -> rusqlite::Result<Open> {
        let mut db = super::open_reader(path)?;
        let deadline = QueryDeadline::install(&mut db)?;
        Ok(Open { db, deadline })
    }
}

/// Ends the read transaction, unless SQLite has ended it already.
fn end_transaction(db: &Connection) -> rusqlite::Result<()> {
    if db.is_autocommit() {
        return Ok(());
    }
    db.prepare_cached("COMMIT")?.execute([]).map(drop)
}

/// `--queryTimeout` on a worker's connection: SQLite calls a progress
/// handler every few thousand VM steps, and it interrupts the statement once
/// the current request's deadline has passed. A runaway filter then answers
/// an error instead of holding the worker.
struct QueryDeadline(Arc<AtomicI64>);

/// VM steps between two deadline checks: frequent enough to stop within
/// milliseconds, rare enough to cost nothing measurable.
const STEPS_BETWEEN_CHECKS: i32 = 10_000;

impl QueryDeadline {
    fn install(conn: &mut Connection) -> rusqlite::Result<QueryDeadline> {
        let deadline = Arc::new(AtomicI64::new(i64::MAX));
        let shared = Arc::clone(&deadline);
        conn.progress_handler(
            STEPS_BETWEEN_CHECKS,
            Some(move || crate::datetime::now_millis() > shared.load(Ordering::Relaxed)),
        )?;
        Ok(QueryDeadline(deadline))
    }

    fn start(&self, timeout: Duration) {
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        self.0.store(
            crate::datetime::now_millis().saturating_add(millis),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_writer, Writer};

    /// A temp dir with a WAL-mode `data.db` holding table `t`, its writer
    /// thread, and a reader of it.
    struct Fixture {
        dir: PathBuf,
        writer: Option<Writer>,
        thread: Option<std::thread::JoinHandle<()>>,
        reader: Reader,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir().join(format!(
                "satchel-reader-{name}-{}-{}",
                std::process::id(),
                crate::datetime::now_millis()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("data.db");
            let conn = open_writer(&path).unwrap();
            conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
            let (writer, thread) = Writer::start(conn, Box::new(|| {})).unwrap();
            let reader =
                Reader::open(path, writer.commit_count(), Duration::from_secs(30)).unwrap();
            Fixture {
                dir,
                writer: Some(writer),
                thread: Some(thread),
                reader,
            }
        }

        fn insert(&self, n: i64) {
            let writer = self.writer.as_ref().unwrap();
            writer
                .run(move |tx| {
                    tx.conn()
                        .execute("INSERT INTO t (n) VALUES (?1)", [n])
                        .map(drop)
                })
                .unwrap()
                .unwrap();
        }

        /// Inserts like another process would: not through the writer.
        fn insert_on_the_side(&self, n: i64) {
            let conn = open_writer(&self.dir.join("data.db")).unwrap();
            conn.execute("INSERT INTO t (n) VALUES (?1)", [n]).unwrap();
        }

        fn count(&mut self, access: Access, now: Instant) -> i64 {
            let db = self.reader.for_request(access, now).unwrap();
            db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.writer.take();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_read_after_a_commit_sees_it_even_inside_a_snapshot() {
        let mut f = Fixture::new("commit");
        let now = Instant::now();
        assert_eq!(f.count(Access::ReadOnly, now), 0);
        f.insert(1);
        // same instant: only the commit count can tell the snapshot is old
        assert_eq!(f.count(Access::ReadOnly, now), 1);
        f.insert(2);
        assert_eq!(f.count(Access::MayWrite, now), 2);
    }

    #[test]
    fn read_only_requests_share_a_snapshot_until_it_is_too_old() {
        let mut f = Fixture::new("age");
        let now = Instant::now();
        assert_eq!(f.count(Access::ReadOnly, now), 0);
        f.insert_on_the_side(1);
        assert_eq!(f.count(Access::ReadOnly, now), 0, "the snapshot is shared");
        let later = now + SNAPSHOT_MAX_AGE;
        assert_eq!(f.count(Access::ReadOnly, later), 1, "and renewed in time");
    }

    #[test]
    fn a_request_that_may_write_reads_outside_any_snapshot() {
        let mut f = Fixture::new("write");
        let now = Instant::now();
        assert_eq!(f.count(Access::ReadOnly, now), 0);
        assert_eq!(f.count(Access::MayWrite, now), 0);
        assert!(f.reader.open.as_ref().unwrap().db.is_autocommit());
        f.insert_on_the_side(1);
        assert_eq!(f.count(Access::MayWrite, now), 1);
    }

    #[test]
    fn an_idle_worker_lets_its_snapshot_go_then_its_connection() {
        let mut f = Fixture::new("idle");
        let now = Instant::now();
        f.count(Access::ReadOnly, now);
        assert_eq!(f.reader.patience(), SNAPSHOT_MAX_AGE);
        f.reader.idle();
        assert!(f.reader.open.as_ref().unwrap().db.is_autocommit());
        assert_eq!(f.reader.patience(), crate::store::IDLE_BEFORE_SHRINK);
        f.insert_on_the_side(1);
        assert_eq!(f.count(Access::ReadOnly, now), 1);
        f.reader.idle();
        f.reader.idle();
        assert!(f.reader.open.is_none());
        assert_eq!(f.count(Access::ReadOnly, now), 1, "opened again on demand");
    }

    #[test]
    fn a_query_past_its_deadline_is_interrupted_and_the_connection_stays_usable() {
        let mut conn = Connection::open_in_memory().unwrap();
        let deadline = QueryDeadline::install(&mut conn).unwrap();
        deadline.start(Duration::from_millis(50));
        let runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
        let err = conn
            .query_row(runaway, [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(crate::error::ApiError::from(err).status(), 400);
        deadline.start(Duration::from_secs(30));
        let n: i64 = conn.query_row("SELECT 40 + 2", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 42);
    }
}
