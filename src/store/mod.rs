//! Everything that touches the SQLite files. One writer thread owns the only
//! write connection (`writer`); worker threads each own a read-only
//! connection (`open_reader`). Nobody opens a connection on the side.
//!
//! The PRAGMAs match the reference's (`busy_timeout` first, WAL, NORMAL sync),
//! so a data dir moves between PocketBase and Satchel in both directions.

pub mod bootstrap;
pub mod writer;

use rusqlite::{Connection, OpenFlags};
use std::path::Path;

pub use writer::{WriteTx, Writer, WriterError};

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
    // Readers read the database file through a shared memory map instead of
    // copying pages into private caches: a list that scans a table costs half
    // as much as through a 2 MB cache, and the pages live once, in the OS page
    // cache, however many workers there are. Pages still in the WAL go
    // through the small private cache.
    conn.execute_batch(
        "PRAGMA query_only = ON; PRAGMA cache_size = -2000; PRAGMA mmap_size = 1073741824;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// How long a connection's thread must be idle before it hands its page
/// cache back (`release_idle_memory`).
pub const IDLE_BEFORE_SHRINK: std::time::Duration = std::time::Duration::from_secs(1);

/// Frees the connection's cached statements and page cache, unmaps the pages
/// of the database file it read, then hands free heap pages back to the
/// system. Called by a
/// thread that has been idle for a while, so an idle server holds little
/// memory; the next query re-reads pages from the OS cache.
pub fn release_idle_memory(conn: &Connection) {
    conn.flush_prepared_statement_cache();
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory;") {
        log::debug!("PRAGMA shrink_memory failed: {e}");
    }
    if let Err(e) = drop_mapped_pages(conn) {
        log::debug!("could not drop the mapped pages: {e}");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    crate::memory::return_free_pages();
}

/// A connection that reads through a memory map keeps every page it touched
/// mapped (and counted in the process's resident memory). Setting the limit
/// to zero and back unmaps the file and maps it afresh, with nothing resident.
fn drop_mapped_pages(conn: &Connection) -> rusqlite::Result<()> {
    let limit: i64 = conn.query_row("PRAGMA mmap_size", [], |row| row.get(0))?;
    if limit > 0 {
        conn.execute_batch(&format!("PRAGMA mmap_size = 0; PRAGMA mmap_size = {limit};"))?;
    }
    Ok(())
}

/// Quotes an identifier for SQL with backticks, as the reference writes its
/// DDL. Callers must only pass names already checked against the schema;
/// doubling the backtick keeps even a hostile name inert.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
