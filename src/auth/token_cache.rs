//! Auth tokens verified a moment ago, so that a client sending the same
//! token request after request does not pay for the signature check and
//! the read of its record every time.
//!
//! A remembered token is only as good as the record it was checked
//! against, so the cache is forgotten whole whenever a commit writes to an
//! auth collection's table or to `_collections` (a password or email
//! change, a deleted user, a rotated secret). The writer connection's
//! update hook notes such writes ([`TokenCache::note_write`]) and the
//! writer calls [`TokenCache::after_commit`] before it answers anyone, so
//! the request that changed a password is answered only once the old
//! tokens are forgotten.
//!
//! An entry also ages out after [`MAX_AGE`]: the CLI (`superuser update`)
//! writes from another process, which no hook sees.

use super::token::Auth;
use crate::collections::Schema;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long a verified token is trusted without another look at its record.
pub const MAX_AGE: Duration = Duration::from_secs(2);
/// Entries kept at most; past this the cache starts over.
const CAPACITY: usize = 4096;
/// Written by collection changes (a rename, a rotated token secret).
const COLLECTIONS_TABLE: &str = "_collections";

pub struct TokenCache {
    /// The tables whose writes forget every entry.
    watched: RwLock<HashSet<String>>,
    /// A watched table was written since the last commit.
    dirty: AtomicBool,
    /// Bumped by every commit that wrote a watched table. An entry made
    /// from a read that started before a bump is never used after it.
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    generation: u64,
    verified: Instant,
    /// The token's `exp` claim, Unix seconds.
    expires: f64,
    auth: Auth,
}

impl TokenCache {
    pub fn new(schema: &Schema) -> TokenCache {
        let cache = TokenCache {
            watched: RwLock::new(HashSet::new()),
            dirty: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        };
        cache.watch(schema);
        cache
    }

    /// Watches the tables of `schema`'s auth collections from now on;
    /// called whenever the schema is reloaded.
    pub fn watch(&self, schema: &Schema) {
        let mut tables: HashSet<String> = schema
            .all()
            .iter()
            .filter(|c| c.is_auth())
            .map(|c| c.name.clone())
            .collect();
        tables.insert(COLLECTIONS_TABLE.to_string());
        *self.watched.write().unwrap_or_else(PoisonError::into_inner) = tables;
    }

    /// The writer connection's update hook: a row of `table` in database
    /// `db` was written.
    pub fn note_write(&self, db: &str, table: &str) {
        if db != "main" || self.dirty.load(Ordering::Relaxed) {
            return;
        }
        let watched = self.watched.read().unwrap_or_else(PoisonError::into_inner);
        if watched.contains(table) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Marks the transaction being built as one that changes who a token
    /// stands for, for writes the update hook does not see (a `DELETE`
    /// without `WHERE` empties a table without calling it).
    pub fn note_bulk_write(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Called by the writer once a transaction is committed, before any of
    /// its callers is answered.
    pub fn after_commit(&self) {
        if self.dirty.swap(false, Ordering::Relaxed) {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.lock().clear();
        }
    }

    /// To be read before the record a token is checked against, and handed
    /// to [`remember`](Self::remember) with the result.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The caller `token` stood for when it was last verified, if that was
    /// recently, nothing it depends on was written since, and it has not
    /// expired at `now_unix`.
    pub fn get(&self, token: &str, now_unix: i64) -> Option<Auth> {
        let current = self.generation();
        let entries = self.lock();
        let entry = entries.get(token)?;
        let fresh = entry.generation == current
            && entry.verified.elapsed() < MAX_AGE
            && entry.expires > now_unix as f64;
        fresh.then(|| entry.auth.clone())
    }

    /// Keeps `auth`, verified from a read that began at `generation`.
    pub fn remember(&self, generation: u64, expires: f64, auth: &Auth) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            auth.token.to_string(),
            Entry {
                generation,
                verified: Instant::now(),
                expires,
                auth: auth.clone(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Inserting or reading a map entry cannot leave it half-done.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
