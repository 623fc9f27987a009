//! Everything that touches the SQLite files. One writer thread owns the only
//! write connection (`writer`); worker threads each own a read-only
//! connection (`reader`). Nobody opens a connection on the side.
//!
//! The PRAGMAs match the reference's (`busy_timeout` first, WAL, NORMAL sync),
//! so a data dir moves between PocketBase and Satchel in both directions.

pub mod bootstrap;
pub mod reader;
mod reply;
pub mod writer;

use rusqlite::{Connection, OpenFlags};
use std::path::Path;

pub use reader::{Access, Reader};
pub use writer::{CommitCount, OnCommit, WriteTx, Writer, WriterError};

/// PRAGMAs shared by every connection. `busy_timeout` comes first so the
/// others can wait out a checkpoint instead of failing.
const COMMON_PRAGMAS: &str = "
    PRAGMA busy_timeout = 10000;
    PRAGMA journal_size_limit = 200000000;
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -32000;
";

/// Opens (creating if needed) the write connection and switches it to WAL.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA busy_timeout = 10000;")?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(COMMON_PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Opens a read-only connection for one worker. `query_only` makes any
/// stray write fail loudly instead of racing the writer.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(COMMON_PRAGMAS)?;
    // A private cache each, large enough that a list scanning a table of a
    // few megabytes reads it from memory rather than page by page from the
    // OS (half the cost), and handed back whenever the worker goes idle.
    // Not a memory map: SQLite unmaps the whole file at the start of every
    // read after a commit, and under writes the unmapping (TLB shootdowns
    // on every core) cost more than the reads it saved.
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16000;")?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Folds the WAL back into the database and removes it, as SQLite does when
/// the last connection to close can write. Called at shutdown once every
/// other connection is closed: the writer's is not always the last (a
/// read-only one may close after it), and a read-only connection leaves the
/// WAL behind. That is safe, the next open replays it, but the data dir
/// should look after a clean stop as the reference leaves it: `data.db`
/// alone.
pub fn fold_wal(path: &Path) -> rusqlite::Result<()> {
    let conn = open_writer(path)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    conn.close().map_err(|(_, e)| e)
}

/// How long a connection's thread must be idle before it hands its page
/// cache back (`release_idle_memory`).
pub const IDLE_BEFORE_SHRINK: std::time::Duration = std::time::Duration::from_secs(1);

/// Frees the connection's cached statements and page cache, then hands free
/// heap pages back to the system. Called by a thread that has been idle for
/// a while, so an idle server holds little memory; the next query re-reads
/// pages from the OS cache.
pub fn release_idle_memory(conn: &Connection) {
    conn.flush_prepared_statement_cache();
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory;") {
        log::debug!("PRAGMA shrink_memory failed: {e}");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    crate::memory::return_free_pages();
}

/// Quotes an identifier for SQL with backticks, as the reference writes its
/// DDL. Callers must only pass names already checked against the schema;
/// doubling the backtick keeps even a hostile name inert.
pub fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    push_quoted_ident(&mut quoted, name);
    quoted
}

/// Appends `name` quoted as by [`quote_ident`], for SQL built in one string.
pub fn push_quoted_ident(sql: &mut String, name: &str) {
    sql.push('`');
    // Schema names have no backticks; a name that has one gets it doubled.
    if name.as_bytes().contains(&b'`') {
        sql.push_str(&name.replace('`', "``"));
    } else {
        sql.push_str(name);
    }
    sql.push('`');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_backticked_with_backticks_doubled() {
        assert_eq!(quote_ident("title"), "`title`");
        assert_eq!(quote_ident("a`b"), "`a``b`");
        let mut sql = String::from("SELECT ");
        push_quoted_ident(&mut sql, "x`");
        assert_eq!(sql, "SELECT `x```");
        assert_eq!(quote_ident("`a"), "```a`");
        assert_eq!(quote_ident("a``b"), "`a````b`");
        assert_eq!(quote_ident(""), "``");
    }
}
