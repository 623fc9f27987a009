//! Brute-force protection per identity: failed sign-in attempts are counted
//! per key (a collection's record or unknown identity, an `otpId`, an
//! `mfaId`), whatever address they come from, and a key that reaches
//! `bruteForce.maxFailures` failures within `bruteForce.duration` seconds
//! is refused with 429 and `Retry-After` for `duration` seconds. A success
//! clears its key.
//!
//! Unlike `rateLimits` this is on by default: it keys on what is attacked,
//! not on the client IP, so it stays right behind a reverse proxy.
//!
//! Use: `check` before the secret is verified (it refuses locked keys and
//! counts the attempt as pending, so parallel guesses cannot slip past the
//! limit), then `record_failure` or `reset` once the answer is known (or
//! `release` when the answer was about another secret than the key's):
//!
//! ```ignore
//! let policy = ctx.app.settings().brute_force.policy();
//! let key = throttle::key(&["otp", &collection.id, &otp_id]);
//! ctx.app.throttle.check(&key, policy)?;
//! if !valid { ctx.app.throttle.record_failure(&key, policy); return Err(..) }
//! ctx.app.throttle.reset(&key);
//! ```
//!
//! Must never keep the raw key (an identity may be long or personal): keys
//! are SHA-256 digests, and at most `MAX_KEYS` are kept.

use crate::error::ApiError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Keys kept at most; past it unlocked keys seen longest ago are dropped.
const MAX_KEYS: usize = 32_768;

/// A throttle key: a digest of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 16]);

/// The key for `parts`, e.g. `["password", collection_id, record_id]`.
pub fn key(parts: &[&str]) -> Key {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    Key(out)
}

/// How strict the throttle is (from `settings.bruteForce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    pub max_failures: u32,
    /// Seconds: the counting window and the lockout.
    pub duration: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            max_failures: 10,
            duration: 300,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    failures: u32,
    /// Attempts checked but not yet reported as failed or successful.
    pending: u32,
    locked_until: Option<u64>,
}

impl Entry {
    fn new(now: u64) -> Entry {
        Entry {
            window_start: now,
            failures: 0,
            pending: 0,
            locked_until: None,
        }
    }

    /// Seconds left on a lock, if locked at `now`.
    fn locked_for(&self, now: u64) -> Option<u64> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Whether the entry counts for nothing any more at `now`.
    fn expired(&self, now: u64, policy: Policy) -> bool {
        match self.locked_until {
            Some(until) => until <= now,
            None => now.saturating_sub(self.window_start) >= policy.duration,
        }
    }

    fn lock(&mut self, now: u64, policy: Policy) -> u64 {
        self.locked_until = Some(now + policy.duration);
        policy.duration.max(1)
    }
}

/// The failure counters of the app.
pub struct Throttle {
    started: Instant,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle {
            started: Instant::now(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// 429 while `key` is locked out; otherwise counts one pending attempt.
    pub fn check(&self, key: &Key, policy: Policy) -> Result<(), ApiError> {
        self.check_at(key, policy, self.now())
    }

    /// Like [`Self::check`], but a refusal says `message` (e.g. the
    /// reference's wording for OTP guesses).
    pub fn check_attempts(
        &self,
        key: &Key,
        policy: Policy,
        message: &'static str,
    ) -> Result<(), ApiError> {
        self.check(key, policy)
            .map_err(|err| match err.retry_after() {
                Some(retry_after_secs) => ApiError::TooManyAttempts {
                    message,
                    retry_after_secs,
                },
                None => err,
            })
    }

    /// Reports the attempt `check` counted as failed.
    pub fn record_failure(&self, key: &Key, policy: Policy) {
        self.record_failure_at(key, policy, self.now());
    }

    /// A success: the key starts from zero.
    pub fn reset(&self, key: &Key) {
        self.lock_entries().remove(key);
    }

    /// The attempt `check` counted ended without saying anything about
    /// this key's secret (it failed or succeeded on another one): it no
    /// longer counts as pending, and the failures stay. Unlike
    /// [`Self::reset`], a success elsewhere cannot clear this key's count.
    pub fn release(&self, key: &Key) {
        if let Some(entry) = self.lock_entries().get_mut(key) {
            entry.pending = entry.pending.saturating_sub(1);
        }
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn check_at(&self, key: &Key, policy: Policy, now: u64) -> Result<(), ApiError> {
        if !policy.enabled {
            return Ok(());
        }
        let mut entries = self.lock_entries();
        let entry = current_entry(&mut entries, key, policy, now);
        if let Some(secs) = entry.locked_for(now) {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: secs,
            });
        }
        if entry.failures.saturating_add(entry.pending) >= policy.max_failures {
            let secs = entry.lock(now, policy);
            return Err(ApiError::TooManyRequests {
                retry_after_secs: secs,
            });
        }
        entry.pending += 1;
        bound(&mut entries, policy, now);
        Ok(())
    }

    fn record_failure_at(&self, key: &Key, policy: Policy, now: u64) {
        if !policy.enabled {
            return;
        }
        let mut entries = self.lock_entries();
        let entry = current_entry(&mut entries, key, policy, now);
        entry.pending = entry.pending.saturating_sub(1);
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= policy.max_failures && entry.locked_for(now).is_none() {
            entry.lock(now, policy);
        }
        bound(&mut entries, policy, now);
    }
}

/// The live entry for `key`, started afresh when the old one has expired.
fn current_entry<'m>(
    entries: &'m mut HashMap<Key, Entry>,
    key: &Key,
    policy: Policy,
    now: u64,
) -> &'m mut Entry {
    let entry = entries.entry(*key).or_insert_with(|| Entry::new(now));
    if entry.expired(now, policy) {
        *entry = Entry::new(now);
    }
    entry
}

/// Keeps at most `MAX_KEYS` entries: expired ones go first, then unlocked
/// ones by age, and locked ones only when nothing else is left.
fn bound(entries: &mut HashMap<Key, Entry>, policy: Policy, now: u64) {
    if entries.len() <= MAX_KEYS {
        return;
    }
    entries.retain(|_, e| !e.expired(now, policy));
    let target = MAX_KEYS * 9 / 10;
    if entries.len() <= target {
        return;
    }
    let mut by_age: Vec<(bool, u64, Key)> = entries
        .iter()
        .map(|(k, e)| (e.locked_for(now).is_some(), e.window_start, *k))
        .collect();
    by_age.sort_unstable_by_key(|(locked, start, _)| (*locked, *start));
    let excess = entries.len() - target;
    for (_, _, key) in by_age.into_iter().take(excess) {
        entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        enabled: true,
        max_failures: 3,
        duration: 60,
    };

    fn fail(t: &Throttle, k: &Key, now: u64) -> Result<(), ApiError> {
        t.check_at(k, POLICY, now)?;
        t.record_failure_at(k, POLICY, now);
        Ok(())
    }

    #[test]
    fn keys_depend_on_every_part_and_its_boundaries() {
        assert_eq!(key(&["a", "b"]), key(&["a", "b"]));
        assert_ne!(key(&["a", "b"]), key(&["ab", ""]));
        assert_ne!(key(&["a", "b"]), key(&["a", "c"]));
    }

    #[test]
    fn failures_lock_the_key_for_the_duration() {
        let t = Throttle::new();
        let k = key(&["password", "users", "alice"]);
        for now in 0..3 {
            assert!(fail(&t, &k, now).is_ok());
        }
        let err = t.check_at(&k, POLICY, 10).unwrap_err();
        assert_eq!(
            err,
            ApiError::TooManyRequests {
                retry_after_secs: 52
            }
        );
        assert_eq!(err.status(), 429);
        // Another key is untouched.
        assert!(t
            .check_at(&key(&["password", "users", "bob"]), POLICY, 10)
            .is_ok());
        // After the lock the key starts from zero.
        assert!(fail(&t, &k, 62).is_ok());
        assert!(fail(&t, &k, 63).is_ok());
        assert!(t.check_at(&k, POLICY, 64).is_ok());
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let t = Throttle::new();
        let k = key(&["k"]);
        assert!(fail(&t, &k, 0).is_ok());
        assert!(fail(&t, &k, 30).is_ok());
        // The window started at 0 ends at 60: this failure opens a new one.
        assert!(fail(&t, &k, 61).is_ok());
        assert!(fail(&t, &k, 62).is_ok());
        assert!(t.check_at(&k, POLICY, 63).is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let t = Throttle::new();
        let k = key(&["k"]);
        assert!(fail(&t, &k, 0).is_ok());
        assert!(fail(&t, &k, 0).is_ok());
        t.check_at(&k, POLICY, 0).unwrap();
        t.reset(&k);
        assert!(fail(&t, &k, 0).is_ok());
        assert!(fail(&t, &k, 0).is_ok());
        assert!(t.check_at(&k, POLICY, 0).is_ok());
    }

    #[test]
    fn parallel_attempts_cannot_exceed_the_limit() {
        let t = Throttle::new();
        let k = key(&["k"]);
        // Three attempts in flight, none answered yet: the fourth is refused.
        for _ in 0..3 {
            assert!(t.check_at(&k, POLICY, 0).is_ok());
        }
        assert!(t.check_at(&k, POLICY, 0).is_err());
    }

    #[test]
    fn a_released_attempt_frees_its_place_but_keeps_the_failures() {
        let t = Throttle::new();
        let k = key(&["k"]);
        fail(&t, &k, 0).unwrap();
        fail(&t, &k, 0).unwrap();
        // Three in flight would be refused; releasing one makes room again.
        t.check_at(&k, POLICY, 0).unwrap();
        assert!(t.check_at(&k, POLICY, 0).is_err(), "2 failures + 1 pending");
        t.reset(&k);
        fail(&t, &k, 0).unwrap();
        fail(&t, &k, 0).unwrap();
        t.check_at(&k, POLICY, 0).unwrap();
        t.release(&k);
        t.check_at(&k, POLICY, 0).unwrap();
        t.record_failure_at(&k, POLICY, 0);
        assert!(t.check_at(&k, POLICY, 0).is_err(), "released, not forgiven");
    }

    #[test]
    fn attempts_can_be_refused_with_their_own_message() {
        let t = Throttle::new();
        let k = key(&["k"]);
        for _ in 0..3 {
            t.check(&k, POLICY).unwrap();
            t.record_failure(&k, POLICY);
        }
        let err = t
            .check_attempts(&k, POLICY, "Too many guesses.")
            .unwrap_err();
        assert_eq!(err.status(), 429);
        assert_eq!(err.message(), "Too many guesses.");
        assert!(err.retry_after().is_some());
    }

    #[test]
    fn a_disabled_policy_never_refuses() {
        let t = Throttle::new();
        let k = key(&["k"]);
        let off = Policy {
            enabled: false,
            ..POLICY
        };
        for _ in 0..10 {
            t.check_at(&k, off, 0).unwrap();
            t.record_failure_at(&k, off, 0);
        }
        assert!(t.lock_entries().is_empty());
    }

    #[test]
    fn memory_stays_bounded_and_locks_survive_a_flood() {
        let t = Throttle::new();
        let victim = key(&["victim"]);
        for _ in 0..3 {
            fail(&t, &victim, 0).unwrap();
        }
        for n in 0..(MAX_KEYS + 100) {
            let k = key(&["flood", &n.to_string()]);
            let _ = fail(&t, &k, 1);
        }
        assert!(t.lock_entries().len() <= MAX_KEYS);
        assert!(t.check_at(&victim, POLICY, 2).is_err());
    }
}
