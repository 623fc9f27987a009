//! The base tables every PocketBase data dir has, created on first start
//! exactly as the reference creates them, so that either program can open a
//! data dir made by the other. Collection tables are not made here: the
//! collections module installs the system collections on top of these.

use rusqlite::Connection;

/// Migrations the reference (v0.23+) records once its base schema is in
/// place. Recording them too tells the reference that this schema is
/// current, so it does not try to create it again.
const REFERENCE_MIGRATIONS: &[&str] = &[
    "1640988000_init.go",
    "1717233556_v0.23_migrate.go",
    "1717233557_v0.23_migrate2.go",
    "1717233558_v0.23_migrate3.go",
    "1717233559_v0.23_migrate4.go",
    "1763020353_update_default_auth_alert_templates.go",
    "1778828400_normalize_indexes.go",
];

const AUX_MIGRATIONS: &[&str] = &["1640988000_aux_init.go"];

const BASE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS `_migrations` (file VARCHAR(255) PRIMARY KEY NOT NULL, applied INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS `_params` (
    `id`      TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
    `value`   JSON DEFAULT NULL,
    `created` TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL,
    `updated` TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL
);
CREATE TABLE IF NOT EXISTS `_collections` (
    `id`         TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
    `system`     BOOLEAN DEFAULT FALSE NOT NULL,
    `type`       TEXT DEFAULT 'base' NOT NULL,
    `name`       TEXT UNIQUE NOT NULL,
    `fields`     JSON DEFAULT '[]' NOT NULL,
    `indexes`    JSON DEFAULT '[]' NOT NULL,
    `listRule`   TEXT DEFAULT NULL,
    `viewRule`   TEXT DEFAULT NULL,
    `createRule` TEXT DEFAULT NULL,
    `updateRule` TEXT DEFAULT NULL,
    `deleteRule` TEXT DEFAULT NULL,
    `options`    JSON DEFAULT '{}' NOT NULL,
    `created`    TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL,
    `updated`    TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx__collections_type on `_collections` (`type`);
";

const AUX_TABLES: &str = "
CREATE TABLE IF NOT EXISTS `_migrations` (file VARCHAR(255) PRIMARY KEY NOT NULL, applied INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS `_logs` (
    `id`      TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
    `level`   INTEGER DEFAULT 0 NOT NULL,
    `message` TEXT DEFAULT '' NOT NULL,
    `data`    JSON DEFAULT '{}' NOT NULL,
    `created` TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%fZ')) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_logs_level on `_logs` (`level`);
CREATE INDEX IF NOT EXISTS idx_logs_message on `_logs` (`message`);
CREATE INDEX IF NOT EXISTS idx_logs_created_hour on `_logs` (strftime('%Y-%m-%d %H:00:00', `created`));
";

/// True when `data.db` has no PocketBase schema yet.
pub fn is_fresh(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_collections'",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 0)
}

/// Creates the base tables of `data.db` and records the reference's
/// migrations. Idempotent; run inside the caller's transaction.
pub fn create_base_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(BASE_TABLES)?;
    record_migrations(conn, REFERENCE_MIGRATIONS)
}

/// Creates the tables of `auxiliary.db` (request and app logs).
pub fn create_aux_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(AUX_TABLES)?;
    record_migrations(conn, AUX_MIGRATIONS)
}

fn record_migrations(conn: &Connection, files: &[&str]) -> rusqlite::Result<()> {
    let applied = crate::datetime::now_millis() * 1000;
    let mut stmt =
        conn.prepare("INSERT OR IGNORE INTO `_migrations` (file, applied) VALUES (?1, ?2)")?;
    for file in files {
        stmt.execute(rusqlite::params![file, applied])?;
    }
    Ok(())
}
