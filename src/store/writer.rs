//! The writer thread: the only place that writes to `data.db`.
//!
//! Workers send jobs over a channel and wait for the reply. The thread takes
//! every job already queued (up to a batch limit), runs them in ONE
//! transaction with a SAVEPOINT per job, commits once, and only then answers
//! each caller and runs the jobs' after-commit actions (cache reloads,
//! realtime events) in commit order. A job that fails or panics rolls back
//! its own savepoint and nothing else. Because no other connection writes,
//! "database is locked" cannot happen.
//!
//! The writer knows nothing about collections or HTTP: a job is a closure.

use super::reply::{self, Answer};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Most jobs committed together; bounds the latency a long batch adds.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before senders block (back-pressure).
const QUEUE_CAPACITY: usize = 4096;

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterError {
    /// The writer thread has stopped (shutdown) or died.
    Stopped,
    /// The job panicked; its savepoint was rolled back.
    Panicked,
    /// SQLite refused the transaction itself (BEGIN/COMMIT), so the job's
    /// changes are not in the database.
    Transaction(String),
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterError::Stopped => f.write_str("the writer thread is not running"),
            WriterError::Panicked => f.write_str("the write job panicked"),
            WriterError::Transaction(e) => write!(f, "the write transaction failed: {e}"),
        }
    }
}

impl std::error::Error for WriterError {}

/// What a job gets: the write connection inside its savepoint, and a place
/// to leave actions that must run only once its changes are committed.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    after_commit: Vec<AfterCommit>,
}

type AfterCommit = Box<dyn FnOnce(&Connection) + Send>;

impl<'a> WriteTx<'a> {
    pub fn conn(&self) -> &'a Connection {
        self.conn
    }

    /// Runs `action` after COMMIT, with the write connection (outside any
    /// transaction), in commit order. Dropped if this job rolls back.
    pub fn after_commit(&mut self, action: impl FnOnce(&Connection) + Send + 'static) {
        self.after_commit.push(Box::new(action));
    }
}

/// A queued job, type-erased so jobs of any result type share one queue.
trait Job: Send {
    /// Runs inside the job's savepoint. Returns true to keep its changes.
    fn run(&mut self, tx: &mut WriteTx<'_>) -> bool;
    /// Sends the reply: the job's own result if the batch committed.
    fn finish(self: Box<Self>, committed: Result<(), WriterError>);
}

struct TypedJob<T, E, F> {
    work: Option<F>,
    outcome: Option<Result<Result<T, E>, WriterError>>,
    reply: Answer<Result<Result<T, E>, WriterError>>,
}

impl<T, E, F> Job for TypedJob<T, E, F>
where
    T: Send,
    E: Send,
    F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send,
{
    fn run(&mut self, tx: &mut WriteTx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = match catch_unwind(AssertUnwindSafe(|| work(tx))) {
            Ok(result) => Ok(result),
            Err(_) => Err(WriterError::Panicked),
        };
        let keep = matches!(outcome, Ok(Ok(_)));
        self.outcome = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, committed: Result<(), WriterError>) {
        let outcome = match (self.outcome, committed) {
            // A failed job's own error is the answer whatever the batch did.
            (Some(Ok(Err(e))), _) => Ok(Err(e)),
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(Ok(value))), Ok(())) => Ok(Ok(value)),
            (Some(Ok(Ok(_))), Err(e)) => Err(e),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(WriterError::Stopped),
        };
        self.reply.send(outcome);
    }
}

/// The handle workers use to submit jobs. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: Sender<Box<dyn Job>>,
    commits: CommitCount,
}

/// How many transactions the writer has committed so far. The count grows
/// right after each COMMIT, before any caller of that transaction is
/// answered: a reader that sees the same count as when its read transaction
/// began has missed no write of this process.
#[derive(Clone)]
pub struct CommitCount(Arc<AtomicU64>);

impl CommitCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Called on the writer thread after every successful COMMIT, before any
/// caller of that transaction is answered.
pub type OnCommit = Box<dyn Fn() + Send>;

impl Writer {
    /// Starts the writer thread, which owns `conn` from now on.
    pub fn start(
        conn: Connection,
        on_commit: OnCommit,
    ) -> std::io::Result<(Writer, JoinHandle<()>)> {
        let (jobs, queue) = bounded::<Box<dyn Job>>(QUEUE_CAPACITY);
        let commits = CommitCount(Arc::new(AtomicU64::new(0)));
        let counted = commits.clone();
        let handle = std::thread::Builder::new()
            .name("satchel-writer".into())
            .spawn(move || group_commit_loop(conn, queue, on_commit, &counted))?;
        Ok((Writer { jobs, commits }, handle))
    }

    /// The writer's count of committed transactions.
    pub fn commit_count(&self) -> CommitCount {
        self.commits.clone()
    }

    /// Runs `work` on the writer thread inside its own savepoint and waits
    /// until the transaction holding it has committed. `Ok(Err(e))` is the
    /// job's own failure (its changes were rolled back).
    pub fn run<T, E, F>(&self, work: F) -> Result<Result<T, E>, WriterError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = reply::slot();
        let job = TypedJob {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| WriterError::Stopped)?;
        answer.wait().ok_or(WriterError::Stopped)?
    }
}

/// Waits for a job, gathers whatever else is queued, commits them together.
/// Returns when every `Writer` handle is dropped and the queue is empty.
fn group_commit_loop(
    conn: Connection,
    queue: Receiver<Box<dyn Job>>,
    on_commit: OnCommit,
    commits: &CommitCount,
) {
    let mut busy_since_shrink = false;
    loop {
        let first = match queue.recv_timeout(super::IDLE_BEFORE_SHRINK) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if std::mem::take(&mut busy_since_shrink) {
                    super::release_idle_memory(&conn);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        busy_since_shrink = true;
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch, &on_commit, commits);
    }
    if let Err(e) = conn.execute_batch("PRAGMA optimize;") {
        log::warn!("PRAGMA optimize at shutdown failed: {e}");
    }
}

fn commit_batch(
    conn: &Connection,
    batch: Vec<Box<dyn Job>>,
    on_commit: &OnCommit,
    commits: &CommitCount,
) {
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        let err = WriterError::Transaction(e.to_string());
        log::error!("writer: {err}");
        for job in batch {
            job.finish(Err(err.clone()));
        }
        return;
    }
    let mut done: Vec<(Box<dyn Job>, Vec<AfterCommit>)> = Vec::with_capacity(batch.len());
    for mut job in batch {
        let actions = run_in_savepoint(conn, job.as_mut());
        if conn.is_autocommit() {
            // The job ended the whole transaction (SQLite rolls back on some
            // errors, e.g. a full disk): everything before it is gone too.
            let err = WriterError::Transaction("the transaction was rolled back by SQLite".into());
            log::error!("writer: {err}");
            for (earlier, _) in done.drain(..) {
                earlier.finish(Err(err.clone()));
            }
            job.finish(Err(err));
            if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
                log::error!("writer: cannot restart the transaction: {e}");
                return;
            }
            continue;
        }
        done.push((job, actions));
    }
    let committed = run_cached(conn, "COMMIT").map_err(|e| WriterError::Transaction(e.to_string()));
    match &committed {
        Ok(()) => {
            commits.add_one();
            on_commit();
        }
        Err(e) => {
            log::error!("writer: {e}");
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    for (job, actions) in done {
        if committed.is_ok() {
            for action in actions {
                if catch_unwind(AssertUnwindSafe(|| action(conn))).is_err() {
                    log::error!("writer: an after-commit action panicked");
                }
            }
        }
        job.finish(committed.clone());
    }
}

/// Runs one job in `SAVEPOINT job`; returns its after-commit actions if it
/// kept its changes, or an empty list after rolling it back.
fn run_in_savepoint(conn: &Connection, job: &mut dyn Job) -> Vec<AfterCommit> {
    if let Err(e) = run_cached(conn, "SAVEPOINT job") {
        log::error!("writer: SAVEPOINT failed: {e}");
        job.run(&mut WriteTx {
            conn,
            after_commit: Vec::new(),
        });
        return Vec::new();
    }
    let mut tx = WriteTx {
        conn,
        after_commit: Vec::new(),
    };
    let keep = job.run(&mut tx);
    let actions = tx.after_commit;
    if conn.is_autocommit() {
        return Vec::new();
    }
    if keep {
        if let Err(e) = run_cached(conn, "RELEASE job") {
            log::error!("writer: RELEASE failed: {e}");
        }
        actions
    } else {
        let rolled_back =
            run_cached(conn, "ROLLBACK TO job").and_then(|_| run_cached(conn, "RELEASE job"));
        if let Err(e) = rolled_back {
            log::error!("writer: ROLLBACK TO failed: {e}");
        }
        Vec::new()
    }
}

/// Runs one statement through the connection's statement cache: every job
/// opens and releases a savepoint and every batch begins and commits, and
/// parsing those each time would be a fixed cost on the one thread all
/// writes pass through.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn test_writer() -> (Writer, JoinHandle<()>, tempdir::TempDir) {
        let dir = tempdir::TempDir::new();
        let conn = crate::store::open_writer(&dir.path().join("data.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
            .unwrap();
        let (writer, handle) = Writer::start(conn, Box::new(|| {})).unwrap();
        (writer, handle, dir)
    }

    fn insert(writer: &Writer, v: &str) -> Result<Result<i64, String>, WriterError> {
        let v = v.to_string();
        writer.run(move |tx| {
            tx.conn()
                .execute("INSERT INTO t (v) VALUES (?1)", [&v])
                .map_err(|e| e.to_string())?;
            Ok(tx.conn().last_insert_rowid())
        })
    }

    fn count(writer: &Writer) -> i64 {
        writer
            .run(|tx| {
                tx.conn()
                    .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_failing_job_rolls_back_alone() {
        let (writer, _h, _dir) = test_writer();
        assert!(insert(&writer, "a").unwrap().is_ok());
        // duplicate: fails inside its savepoint
        assert!(insert(&writer, "a").unwrap().is_err());
        assert!(insert(&writer, "b").unwrap().is_ok());
        assert_eq!(count(&writer), 2);
    }

    #[test]
    fn a_job_that_writes_then_fails_leaves_nothing() {
        let (writer, _h, _dir) = test_writer();
        let r: Result<Result<(), String>, WriterError> = writer.run(|tx| {
            tx.conn()
                .execute("INSERT INTO t (v) VALUES ('x')", [])
                .map_err(|e| e.to_string())?;
            Err("validation failed after the insert".to_string())
        });
        assert_eq!(r, Ok(Err("validation failed after the insert".to_string())));
        assert_eq!(count(&writer), 0);
    }

    #[test]
    fn a_panicking_job_answers_and_the_writer_lives_on() {
        let (writer, _h, _dir) = test_writer();
        let r: Result<Result<(), String>, WriterError> = writer.run(|tx| {
            tx.conn()
                .execute("INSERT INTO t (v) VALUES ('p')", [])
                .unwrap();
            panic!("bug in a job");
        });
        assert_eq!(r, Err(WriterError::Panicked));
        assert!(insert(&writer, "after").unwrap().is_ok());
        assert_eq!(count(&writer), 1);
    }

    #[test]
    fn concurrent_jobs_are_group_committed_and_each_answered() {
        let (writer, _h, _dir) = test_writer();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        // every 10th value collides with itself across threads
                        let v = if i % 10 == 0 {
                            format!("dup{i}")
                        } else {
                            format!("{t}-{i}")
                        };
                        let _ = insert(&writer, &v).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 8 threads × 45 unique values + 5 shared duplicates
        assert_eq!(count(&writer), 8 * 45 + 5);
    }

    #[test]
    fn after_commit_actions_run_in_order_and_only_for_kept_jobs() {
        let (writer, _h, _dir) = test_writer();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        for (i, fail) in [(1, false), (2, true), (3, false)] {
            let seen = seen.clone();
            let _: Result<Result<(), ()>, _> = writer.run(move |tx| {
                tx.after_commit(move |_| seen.lock().unwrap().push(i));
                if fail {
                    Err(())
                } else {
                    Ok(())
                }
            });
        }
        assert_eq!(*seen.lock().unwrap(), vec![1, 3]);
    }

    #[test]
    fn order_of_submission_is_order_of_commit() {
        let (writer, _h, _dir) = test_writer();
        let next = Arc::new(AtomicUsize::new(0));
        for i in 0..100 {
            let next = next.clone();
            let _: Result<Result<(), ()>, _> = writer.run(move |tx| {
                assert_eq!(next.fetch_add(1, Ordering::SeqCst), i);
                tx.conn()
                    .execute("INSERT INTO t (v) VALUES (?1)", [i.to_string()])
                    .unwrap();
                Ok(())
            });
        }
        let ids: Vec<String> = writer
            .run(|tx| {
                let mut s = tx.conn().prepare("SELECT v FROM t ORDER BY id").unwrap();
                let rows = s
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<Vec<String>, _>>();
                rows.map_err(|e| e.to_string())
            })
            .unwrap()
            .unwrap();
        assert_eq!(ids, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn dropping_every_handle_stops_the_thread_after_draining() {
        let (writer, handle, _dir) = test_writer();
        assert!(insert(&writer, "last").unwrap().is_ok());
        drop(writer);
        handle.join().unwrap();
    }

    /// A throwaway directory removed on drop (no tempfile crate).
    mod tempdir {
        pub struct TempDir(std::path::PathBuf);
        impl TempDir {
            pub fn new() -> TempDir {
                let p = std::env::temp_dir().join(format!(
                    "satchel-test-{}",
                    crate::security::random::string_from(b"abcdefghij", 12)
                ));
                std::fs::create_dir_all(&p).unwrap();
                TempDir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
