//! The application: what every request shares. `App` owns the writer
//! handle, the cached schema and settings, the hashing pool, the realtime
//! hub and its event publisher, the mail outbox, the auth flows'
//! short-lived limits and the configuration; `Ctx` is one request's view of
//! it (its worker's read connection, the schema snapshot, the caller's auth).
//!
//! Caches here are replaced only after the writer has committed the change
//! they reflect, so a reader never sees a schema newer than the database.

use crate::auth::limits::AuthLimits;
use crate::auth::token::Auth;
use crate::auth::token_cache::TokenCache;
use crate::collections::registry::Schema;
use crate::error::ApiError;
use crate::mail::Outbox;
use crate::realtime::HubConfig;
use crate::realtime_api::Realtime;
use crate::request_log::RequestLog;
use crate::security::password::HashPool;
use crate::settings::Settings;
use crate::store::{self, Writer, WriterError};
use rusqlite::Connection;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Password hashes waiting per hashing thread before sign-ins are shed.
const SIGN_INS_QUEUED_PER_HASHER: usize = 64;

/// Where and how the app runs; fixed at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The settings encryption key and the env var it came from.
    pub encryption: Option<EncryptionKey>,
    /// `*` or the allowed CORS origins.
    pub origins: Vec<String>,
    pub dev: bool,
    pub public_dir: PathBuf,
    pub index_fallback: bool,
    /// Caps and timers of realtime streams.
    pub realtime: HubConfig,
    /// Longest a request's queries may run on a worker (`--queryTimeout`).
    pub query_timeout: std::time::Duration,
}

#[derive(Clone)]
pub struct EncryptionKey {
    pub env_name: String,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key itself.
        write!(f, "EncryptionKey({})", self.env_name)
    }
}

pub struct App {
    pub config: Config,
    pub writer: Writer,
    pub hash_pool: HashPool,
    pub realtime: Realtime,
    /// The windows of `settings.rateLimits`.
    pub rate_limiter: crate::http::ratelimit::RateLimiter,
    /// Failed sign-ins per identity (`settings.bruteForce`).
    pub throttle: crate::auth::throttle::Throttle,
    /// Mails go out from here, never from a request worker.
    pub mail: Outbox,
    pub auth_limits: AuthLimits,
    /// Auth tokens verified a moment ago.
    pub tokens: Arc<TokenCache>,
    schema: RwLock<Arc<Schema>>,
    settings: RwLock<Arc<Settings>>,
    request_log: Option<RequestLog>,
}

impl App {
    pub fn new(
        config: Config,
        writer: Writer,
        tokens: Arc<TokenCache>,
        schema: Schema,
        settings: Settings,
        request_log: Option<RequestLog>,
    ) -> std::io::Result<App> {
        // One core is always left to everything else: a login storm may queue
        // up sign-ins (and shed them with 503 past the queue), but it must not
        // take the CPU that serves other requests.
        let hashers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .saturating_sub(1)
            .clamp(1, 4);
        let realtime = Realtime::start(config.realtime.clone(), &config.data_dir.join("data.db"))?;
        Ok(App {
            config,
            writer,
            // Sign-ins wait in a queue rather than fail (a queued request holds
            // no worker), but not for long: at tens of milliseconds a hash, a
            // hashing thread clears 64 in about two seconds, and past that a
            // 503 with Retry-After serves the client better than a wait.
            hash_pool: HashPool::with_queue(hashers, SIGN_INS_QUEUED_PER_HASHER * hashers)?,
            realtime,
            rate_limiter: Default::default(),
            throttle: Default::default(),
            mail: Outbox::start()?,
            auth_limits: AuthLimits::new(),
            tokens,
            schema: RwLock::new(Arc::new(schema)),
            settings: RwLock::new(Arc::new(settings)),
            request_log,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.data_dir.join("data.db")
    }

    /// Where uploads wait before they are kept.
    pub fn temp_dir(&self) -> PathBuf {
        self.config.data_dir.join(".pb_temp_to_delete")
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.config.data_dir.join("storage")
    }

    /// The schema as of the last committed change.
    pub fn schema(&self) -> Arc<Schema> {
        match self.schema.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the schema; called on the writer thread after a commit.
    pub fn reload_schema(&self, conn: &Connection) {
        match Schema::load(conn) {
            Ok(schema) => {
                self.tokens.watch(&schema);
                match self.schema.write() {
                    Ok(mut guard) => *guard = Arc::new(schema),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(schema),
                }
            }
            Err(e) => log::error!("reloading the schema failed: {e}"),
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        match self.settings.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace_settings(&self, settings: Settings) {
        match self.settings.write() {
            Ok(mut guard) => *guard = Arc::new(settings),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(settings),
        }
    }

    /// Runs a write job on the writer thread and waits for its commit.
    pub fn write<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut store::WriteTx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        match self.writer.run(work) {
            Ok(result) => result,
            Err(WriterError::Stopped) => Err(ApiError::Unavailable {
                message: "The server is shutting down.".into(),
                retry_after_secs: 5,
            }),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's origin, if allowed.
    pub fn allowed_origin(&self, origin: &str) -> Option<String> {
        if self.config.origins.iter().any(|o| o == "*") {
            Some("*".to_string())
        } else if self.config.origins.iter().any(|o| o == origin) {
            Some(origin.to_string())
        } else {
            None
        }
    }

    pub fn log_request(&self, entry: crate::request_log::Entry) {
        if let Some(log) = &self.request_log {
            log.record(entry);
        }
    }
}

/// One request's view of the app.
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    /// This worker's read-only connection.
    pub db: &'a Connection,
    pub schema: Arc<Schema>,
    pub auth: Option<Auth>,
    /// The client's IP: the TCP peer, or what a trusted proxy header says.
    pub remote_ip: Option<IpAddr>,
}

impl<'a> Ctx<'a> {
    pub fn new(app: &'a Arc<App>, db: &'a Connection, remote_ip: Option<IpAddr>) -> Ctx<'a> {
        Ctx {
            app,
            db,
            schema: app.schema(),
            auth: None,
            remote_ip,
        }
    }

    pub fn is_superuser(&self) -> bool {
        self.auth.as_ref().is_some_and(Auth::is_superuser)
    }

    /// 401 for guests, 403 for anyone but a superuser.
    pub fn require_superuser(&self) -> Result<(), ApiError> {
        match &self.auth {
            None => Err(ApiError::auth_required()),
            Some(auth) if auth.is_superuser() => Ok(()),
            Some(_) => Err(ApiError::superusers_only()),
        }
    }

    /// The client's IP as the reference writes it (IPv6 expanded).
    pub fn client_ip(&self) -> String {
        self.remote_ip
            .map(crate::http::client_ip::display)
            .unwrap_or_default()
    }
}

/// Creates the data dir layout the seed's volume documents.
pub fn create_layout(data_dir: &Path) -> std::io::Result<()> {
    for sub in ["storage", "logs", ".pb_temp_to_delete"] {
        std::fs::create_dir_all(data_dir.join(sub))?;
    }
    Ok(())
}
