//! Short-lived, in-memory limits of the auth flows, as the reference keeps
//! them (in its app store, lost on restart): the ~2 minute pause between
//! two verification or password reset mails to the same record. (OTP
//! guesses are counted by `auth::throttle`, see `otp::GUESSES`.)
//!
//! Pure bookkeeping over keys and clocks: it knows nothing of HTTP or the
//! database, and it never grows without bound (expired entries are swept
//! and the maps are capped).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Pause between two verification or password reset mails to one record.
pub const RESEND_PAUSE: Duration = Duration::from_secs(120);
/// Entries kept per map before expired ones are swept (and, if that is not
/// enough, everything is forgotten rather than growing further).
const MAX_ENTRIES: usize = 50_000;

/// The mail kinds with a resend pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resend {
    Verification,
    PasswordReset,
}

#[derive(Default)]
pub struct AuthLimits {
    /// (kind, collection id + record id) → when the pause ends.
    resend: Mutex<HashMap<(Resend, String), Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl AuthLimits {
    pub fn new() -> AuthLimits {
        AuthLimits::default()
    }

    /// Whether a mail of `kind` to `record_key` is still paused.
    pub fn resend_paused(&self, kind: Resend, record_key: &str) -> bool {
        self.resend_paused_at(kind, record_key, Instant::now())
    }

    fn resend_paused_at(&self, kind: Resend, record_key: &str, now: Instant) -> bool {
        lock(&self.resend)
            .get(&(kind, record_key.to_string()))
            .is_some_and(|until| *until > now)
    }

    /// Starts the pause after a mail of `kind` to `record_key`.
    pub fn pause_resend(&self, kind: Resend, record_key: &str) {
        self.pause_resend_at(kind, record_key, Instant::now());
    }

    fn pause_resend_at(&self, kind: Resend, record_key: &str, now: Instant) {
        let mut map = lock(&self.resend);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, until| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert((kind, record_key.to_string()), now + RESEND_PAUSE);
    }

    /// Ends the pause (the flow was confirmed).
    pub fn clear_resend(&self, kind: Resend, record_key: &str) {
        lock(&self.resend).remove(&(kind, record_key.to_string()));
    }
}

/// The key limits use for a record.
pub fn record_key(collection_id: &str, record_id: &str) -> String {
    format!("{collection_id}/{record_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resend_pauses_per_kind_and_record_and_ends() {
        let limits = AuthLimits::new();
        let t0 = Instant::now();
        assert!(!limits.resend_paused_at(Resend::Verification, "c/r", t0));
        limits.pause_resend_at(Resend::Verification, "c/r", t0);
        assert!(limits.resend_paused_at(Resend::Verification, "c/r", t0));
        assert!(!limits.resend_paused_at(Resend::PasswordReset, "c/r", t0));
        assert!(!limits.resend_paused_at(Resend::Verification, "c/other", t0));
        assert!(!limits.resend_paused_at(Resend::Verification, "c/r", t0 + RESEND_PAUSE));
        limits.clear_resend(Resend::Verification, "c/r");
        assert!(!limits.resend_paused_at(Resend::Verification, "c/r", t0));
    }
}
