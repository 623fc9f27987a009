//! Start-up: open (or create) a data dir, check that its settings can be
//! read with the given key, and start the writer. Shared by `serve` and the
//! `superuser` commands, so both refuse an encrypted data dir without its
//! key the same way, before anything is written.

use crate::app::{self, App, Config, EncryptionKey};
use crate::auth::token_cache::TokenCache;
use crate::cli::GlobalFlags;
use crate::collections::registry::Schema;
use crate::request_log::RequestLog;
use crate::settings::Settings;
use crate::store::{self, Writer};
use rusqlite::{Connection, OptionalExtension};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A data dir opened and checked, with its writer running.
pub struct Booted {
    pub writer: Writer,
    pub writer_thread: JoinHandle<()>,
    pub tokens: Arc<TokenCache>,
    pub schema: Schema,
    pub settings: Settings,
    pub config: Config,
}

/// Reads the encryption key from the env var named by `--encryptionEnv`.
/// An unset or empty variable means "no key": plain settings still load,
/// encrypted ones then fail with a message naming the variable.
fn encryption_key(flags: &GlobalFlags) -> Option<EncryptionKey> {
    let env_name = flags.encryption_env.clone()?;
    let key = std::env::var_os(&env_name)
        .map(|v| v.into_encoded_bytes())
        .unwrap_or_default();
    Some(EncryptionKey { env_name, key })
}

/// Opens the data dir at `flags.dir`, creating its layout and schema on first use.
pub fn open(flags: &GlobalFlags, origins: Vec<String>) -> Result<Booted, String> {
    app::create_layout(&flags.dir)
        .map_err(|e| format!("cannot create the data dir {}: {e}", flags.dir.display()))?;
    let config = Config {
        data_dir: flags.dir.clone(),
        encryption: encryption_key(flags),
        origins,
        dev: flags.dev,
        public_dir: flags.public_dir.clone(),
        index_fallback: flags.index_fallback,
        realtime: crate::realtime::HubConfig::default(),
        query_timeout: std::time::Duration::from_secs(flags.query_timeout_secs.max(1)),
    };
    let mut conn = store::open_writer(&flags.dir.join("data.db"))
        .map_err(|e| format!("cannot open data.db: {e}"))?;
    if store::bootstrap::is_fresh(&conn).map_err(|e| e.to_string())? {
        create_schema(&conn, &config)?;
    }
    let settings = load_settings(&conn, &config)?;
    let schema = Schema::load(&conn).map_err(|e| format!("cannot read the collections: {e}"))?;
    let tokens = Arc::new(TokenCache::new(&schema));
    let noted = tokens.clone();
    conn.update_hook(Some(move |_, db: &str, table: &str, _| {
        noted.note_write(db, table)
    }))
    .map_err(|e| format!("cannot watch data.db's writes: {e}"))?;
    let committed = tokens.clone();
    let on_commit = Box::new(move || committed.after_commit());
    let (writer, writer_thread) =
        Writer::start(conn, on_commit).map_err(|e| format!("cannot start the writer: {e}"))?;
    Ok(Booted {
        writer,
        writer_thread,
        tokens,
        schema,
        settings,
        config,
    })
}

/// Creates the reference's schema and default settings in one transaction.
fn create_schema(conn: &Connection, config: &Config) -> Result<(), String> {
    let run = || -> Result<(), String> {
        store::bootstrap::create_base_tables(conn).map_err(|e| e.to_string())?;
        crate::collections::system::install_defaults(conn).map_err(|e| e.to_string())?;
        let stored = encode_settings(&Settings::default(), config)?;
        conn.execute(
            "INSERT INTO `_params` (id, value) VALUES ('settings', ?1)",
            [stored],
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    };
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    match run() {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .map_err(|e| format!("cannot create the schema: {e}")),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(format!("cannot create the schema: {e}"))
        }
    }
}

/// The settings row encoded for storage: encrypted when a key is configured.
pub fn encode_settings(settings: &Settings, config: &Config) -> Result<String, String> {
    let key = config
        .encryption
        .as_ref()
        .filter(|k| !k.key.is_empty())
        .map(|k| k.key.as_slice());
    crate::settings::encode_for_storage(settings, key).map_err(|e| e.to_string())
}

fn load_settings(conn: &Connection, config: &Config) -> Result<Settings, String> {
    // The reference stores plain settings as a BLOB and encrypted ones as TEXT.
    let stored: Option<rusqlite::types::Value> = conn
        .query_row(
            "SELECT value FROM `_params` WHERE id = 'settings'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let stored = match stored {
        Some(rusqlite::types::Value::Text(text)) => text.into_bytes(),
        Some(rusqlite::types::Value::Blob(bytes)) => bytes,
        _ => return Ok(Settings::default()),
    };
    let key = config
        .encryption
        .as_ref()
        .filter(|k| !k.key.is_empty())
        .map(|k| k.key.as_slice());
    let env_name = config
        .encryption
        .as_ref()
        .map(|k| k.env_name.as_str())
        .unwrap_or_default();
    crate::settings::decode_from_storage(&stored, key, env_name).map_err(|e| e.to_string())
}

/// The app with the threads that outlive its last request: the writer
/// (joined at shutdown so every queued write lands) and the request log.
pub struct Started {
    pub app: Arc<App>,
    pub writer_thread: JoinHandle<()>,
    pub log_thread: JoinHandle<()>,
}

/// Builds the running app from a booted data dir.
pub fn into_app(booted: Booted) -> Result<Started, String> {
    let aux = booted.config.data_dir.join("auxiliary.db");
    let (request_log, log_thread) = RequestLog::start(&aux)?;
    let app = App::new(
        booted.config,
        booted.writer,
        booted.tokens,
        booted.schema,
        booted.settings,
        Some(request_log),
    )
    .map_err(|e| format!("cannot start the hashing pool or the mail outbox: {e}"))?;
    Ok(Started {
        app: Arc::new(app),
        writer_thread: booted.writer_thread,
        log_thread,
    })
}
