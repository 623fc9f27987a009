//! Password hashing: new hashes are argon2id PHC strings; stored hashes may also
//! be PocketBase's bcrypt (`$2a$`/`$2b$`/`$2y$`), which verify and then report
//! [`needs_rehash`]. Also owns [`HashPool`], the few threads that run the
//! deliberately slow hashing so request workers are never the ones waiting, and
//! [`verify_dummy`], which makes an unknown identity cost as much as a known one.
//! The pool's threads run at the lowest CPU priority, so hashing never
//! competes with request workers for a core.
//!
//! It must never panic or allocate without bound on a stored hash, whatever the
//! database holds, never let a long password pass by truncation, and knows
//! nothing of records, HTTP or where hashes are stored.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};

use argon2::{Config, ThreadMode, Variant, Version};
use crossbeam_channel::{Receiver, Sender};

use super::{base64, random, thread_priority};

/// Argon2id memory cost in KiB (19 MiB), with [`TIME_COST`] and [`LANES`]: the
/// smallest setting OWASP's Password Storage Cheat Sheet recommends. On a small
/// server this costs a few tens of milliseconds and 19 MiB per hash in flight;
/// the [`HashPool`] caps how many are in flight, so the memory stays bounded.
/// Raising it later is safe: old hashes keep verifying and [`needs_rehash`]
/// upgrades them at the next login.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over memory (see [`MEMORY_KIB`]).
pub const TIME_COST: u32 = 2;
/// Argon2id lanes: one, so a hash uses one core and the pool's size is the
/// server's whole hashing parallelism.
pub const LANES: u32 = 1;
const SALT_LEN: usize = 16;
const HASH_LEN: u32 = 32;

/// bcrypt reads at most 72 bytes of a password and the reference refuses to
/// hash longer ones, so a longer candidate cannot be the stored password; it is
/// refused rather than silently truncated to a prefix that might match.
pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// Stored argon2 hashes asking for more than this are treated as corrupt rather
/// than verified: a forged `m=4194304` would otherwise allocate 4 GiB.
const MAX_STORED_MEMORY_KIB: u32 = 256 * 1024;
const MAX_STORED_TIME_COST: u32 = 64;
const MAX_STORED_LANES: u32 = 16;

/// Hashing failed: only possible if the fixed parameters above were invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(String);

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "password hashing failed: {}", self.0)
    }
}

impl std::error::Error for HashError {}

/// Hashes `password` as an argon2id PHC string with a fresh 16-byte salt:
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. Slow by design: call it on
/// the [`HashPool`], not on a request worker.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    random::fill(&mut salt);
    let config = Config {
        variant: Variant::Argon2id,
        version: Version::Version13,
        mem_cost: MEMORY_KIB,
        time_cost: TIME_COST,
        lanes: LANES,
        thread_mode: ThreadMode::Sequential,
        hash_length: HASH_LEN,
        ..Config::default()
    };
    argon2::hash_encoded(password.as_bytes(), &salt, &config).map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `hash` (argon2 PHC or bcrypt). An empty,
/// unknown or corrupt hash is a mismatch, as is a password over
/// [`BCRYPT_MAX_PASSWORD_BYTES`] against a bcrypt hash. Slow by design.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if is_bcrypt(hash) {
        return verify_bcrypt(password, hash);
    }
    match StoredArgon2::parse(hash) {
        Some(stored) if stored.within_limits() => stored.matches(password),
        Some(_) => {
            log::warn!("refusing to verify an argon2 hash with excessive cost parameters");
            false
        }
        None => false,
    }
}

/// Whether a hash that just verified should be replaced by [`hash_password`]'s
/// output: true for bcrypt and for argon2 with other parameters than ours.
/// False for anything unrecognised, which could not have verified anyway.
pub fn needs_rehash(hash: &str) -> bool {
    if is_bcrypt(hash) {
        return true;
    }
    StoredArgon2::parse(hash).is_some_and(|stored| !stored.is_current())
}

/// Spends as long as [`verify_password`] on a current hash and always reports a
/// mismatch: call it when the identity is unknown so that the response time
/// does not tell which identities exist. The hash it checks against is made on
/// first use; call [`prepare_dummy`] at startup so no request pays for that.
pub fn verify_dummy(password: &str) -> bool {
    if let Some(hash) = dummy_hash() {
        // A random, discarded password: the result can only be false, but the
        // work is real so the optimiser cannot skip it.
        let _ = verify_password(password, hash);
    }
    false
}

/// Makes the hash [`verify_dummy`] checks against, so the first unknown
/// identity is not slower than the rest.
pub fn prepare_dummy() {
    let _ = dummy_hash();
}

fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let secret = random::string_from(random::ALPHANUMERIC, 32);
            hash_password(&secret)
                .map_err(|e| log::error!("cannot prepare the dummy password hash: {e}"))
                .ok()
        })
        .as_deref()
}

fn is_bcrypt(hash: &str) -> bool {
    // "$2a$10$" + 22 salt + 31 hash characters.
    hash.len() == 60
        && ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix))
}

fn verify_bcrypt(password: &str, hash: &str) -> bool {
    if password.len() > BCRYPT_MAX_PASSWORD_BYTES {
        return false;
    }
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// A parsed `$argon2{id,i,d}$v=19$m=..,t=..,p=..$salt$hash` string. Parsed here
/// rather than by the argon2 crate so that costs can be bounded before any
/// memory is allocated and verification always runs on the calling thread.
struct StoredArgon2 {
    variant: Variant,
    version: Version,
    memory_kib: u32,
    time_cost: u32,
    lanes: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl StoredArgon2 {
    fn parse(text: &str) -> Option<StoredArgon2> {
        let fields: Vec<&str> = text.split('$').collect();
        // Without a `v=` field the string is argon2 1.0 (version 16).
        let (variant, version, costs, salt, hash) = match fields.as_slice() {
            ["", variant, version, costs, salt, hash] => {
                (variant, parse_version(version)?, costs, salt, hash)
            }
            ["", variant, costs, salt, hash] => (variant, Version::Version10, costs, salt, hash),
            _ => return None,
        };
        let variant = match *variant {
            "argon2id" => Variant::Argon2id,
            "argon2i" => Variant::Argon2i,
            "argon2d" => Variant::Argon2d,
            _ => return None,
        };
        let (memory_kib, time_cost, lanes) = parse_costs(costs)?;
        Some(StoredArgon2 {
            variant,
            version,
            memory_kib,
            time_cost,
            lanes,
            salt: decode_phc_base64(salt)?,
            hash: decode_phc_base64(hash)?,
        })
    }

    fn within_limits(&self) -> bool {
        self.memory_kib <= MAX_STORED_MEMORY_KIB
            && self.time_cost <= MAX_STORED_TIME_COST
            && self.lanes <= MAX_STORED_LANES
    }

    fn is_current(&self) -> bool {
        self.variant == Variant::Argon2id
            && self.version == Version::Version13
            && self.memory_kib == MEMORY_KIB
            && self.time_cost == TIME_COST
            && self.lanes == LANES
            && self.salt.len() >= SALT_LEN
            && self.hash.len() == HASH_LEN as usize
    }

    fn matches(&self, password: &str) -> bool {
        let config = Config {
            variant: self.variant,
            version: self.version,
            mem_cost: self.memory_kib,
            time_cost: self.time_cost,
            lanes: self.lanes,
            // Lanes run one after another on this thread: the pool, not the
            // hash, decides how many cores hashing may use.
            thread_mode: ThreadMode::Sequential,
            ..Config::default()
        };
        // Invalid parameter combinations (tiny memory, short salt) are errors, not panics.
        argon2::verify_raw(password.as_bytes(), &self.salt, &self.hash, &config).unwrap_or(false)
    }
}

fn parse_version(field: &str) -> Option<Version> {
    match field {
        "v=19" => Some(Version::Version13),
        "v=16" => Some(Version::Version10),
        _ => None,
    }
}

fn parse_costs(field: &str) -> Option<(u32, u32, u32)> {
    let mut costs = field.split(',');
    let mut next = |name: &str| {
        costs
            .next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse::<u32>()
            .ok()
    };
    let parsed = (next("m")?, next("t")?, next("p")?);
    costs.next().is_none().then_some(parsed)
}

/// PHC strings use standard base64 without padding; our decoder wants padding.
fn decode_phc_base64(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 4 == 1 {
        return None;
    }
    let padding = "=".repeat((4 - text.len() % 4) % 4);
    base64::decode_std(&format!("{text}{padding}")).ok()
}

/// A job for the [`HashPool`]: it must not block on the pool itself.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool's queue was full; the input handed to [`HashPool::spawn_with`]
/// comes back so the caller can still answer (e.g. 503 with the request).
#[derive(Debug, PartialEq, Eq)]
pub struct PoolBusy<T = ()>(pub T);

impl<T> std::fmt::Display for PoolBusy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the password hashing queue is full")
    }
}

impl<T: std::fmt::Debug> std::error::Error for PoolBusy<T> {}

/// Why a blocking call on the pool gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The queue was full.
    Busy,
    /// The job panicked before answering (the pool thread survived).
    JobPanicked,
    /// Hashing itself failed.
    Hash(HashError),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Busy => f.write_str("the password hashing queue is full"),
            PoolError::JobPanicked => f.write_str("a password hashing job panicked"),
            PoolError::Hash(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PoolError {}

/// Jobs waiting per pool thread before [`HashPool::new`]'s queue counts as full:
/// with argon2 at a few tens of milliseconds, the last queued job still starts
/// within about a second.
pub const QUEUE_PER_THREAD: usize = 16;

/// A fixed set of threads (`satchel-hash-0`, `satchel-hash-1`, ...) that run
/// password hashing and whatever continuation the caller attaches, fed by a
/// bounded queue. A burst of logins fills the queue and then gets
/// [`PoolBusy`] at once, instead of occupying every request worker for
/// the length of a hash. A panicking job is logged and the thread goes on.
///
/// Dropping the pool lets the queued jobs finish, then joins the threads.
pub struct HashPool {
    jobs: Option<Sender<Job>>,
    /// Kept so the channel stays connected while the pool exists: sending can
    /// then only wait for room, and [`Self::queued`] guarantees there is room.
    _keep_open: Receiver<Job>,
    /// Jobs accepted but not yet started; admission is decided on this count.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    threads: Vec<JoinHandle<()>>,
}

impl HashPool {
    /// A pool of `threads` threads (at least one) and a queue of
    /// [`QUEUE_PER_THREAD`] jobs per thread.
    pub fn new(threads: usize) -> std::io::Result<HashPool> {
        let threads = threads.max(1);
        HashPool::with_queue(threads, threads * QUEUE_PER_THREAD)
    }

    /// A pool of `threads` threads (at least one) in which at most `capacity`
    /// jobs (at least one) may wait to start.
    pub fn with_queue(threads: usize, capacity: usize) -> std::io::Result<HashPool> {
        let capacity = capacity.max(1);
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(capacity);
        let mut pool = HashPool {
            jobs: Some(sender),
            _keep_open: receiver.clone(),
            queued: Arc::new(AtomicUsize::new(0)),
            capacity,
            threads: Vec::new(),
        };
        for index in 0..threads.max(1) {
            let (jobs, queued) = (receiver.clone(), Arc::clone(&pool.queued));
            let name = format!("satchel-hash-{index}");
            // On failure `pool` is dropped here, which stops the threads already started.
            let handle = thread::Builder::new().name(name).spawn(move || {
                lower_priority();
                run_jobs(&jobs, &queued)
            })?;
            pool.threads.push(handle);
        }
        Ok(pool)
    }

    /// Queues `job`, or answers [`PoolBusy`] at once when the queue is full.
    pub fn spawn(&self, job: Job) -> Result<(), PoolBusy> {
        self.spawn_with((), move |()| job())
    }

    /// Queues `work(input)`; when the queue is full, `input` comes back in
    /// [`PoolBusy`] untouched, so a request moved into it can still be answered.
    pub fn spawn_with<T, F>(&self, input: T, work: F) -> Result<(), PoolBusy<T>>
    where
        T: Send + 'static,
        F: FnOnce(T) + Send + 'static,
    {
        let Some(jobs) = &self.jobs else {
            return Err(PoolBusy(input));
        };
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(PoolBusy(input));
        }
        // Cannot block or fail: at most `capacity` jobs are admitted and not yet
        // taken off the channel, and `_keep_open` keeps it connected.
        if jobs.send(Box::new(move || work(input))).is_err() {
            log::error!("password hashing pool channel closed while the pool exists");
        }
        Ok(())
    }

    /// Runs `work` on the pool and waits for its result. For the CLI and
    /// tests; never call it from a pool job, which would wait on itself.
    pub fn run_blocking<R, F>(&self, work: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.spawn_with(reply, move |reply| {
            // The waiter may have gone; nothing else is owed to it.
            let _ = reply.send(work());
        })
        .map_err(|_| PoolError::Busy)?;
        // A panic drops `reply` unanswered, which ends the wait.
        answer.recv().map_err(|_| PoolError::JobPanicked)
    }

    /// [`hash_password`] on the pool, waiting for the result (see [`Self::run_blocking`]).
    pub fn hash_blocking(&self, password: &str) -> Result<String, PoolError> {
        let password = password.to_owned();
        self.run_blocking(move || hash_password(&password))?
            .map_err(PoolError::Hash)
    }

    /// [`verify_password`] on the pool, waiting for the result (see [`Self::run_blocking`]).
    pub fn verify_blocking(&self, password: &str, hash: &str) -> Result<bool, PoolError> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        self.run_blocking(move || verify_password(&password, &hash))
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Closing our sender ends each thread's loop once the queue is drained
        // (`_keep_open` is a receiver, so it does not hold the channel open).
        self.jobs = None;
        let current = thread::current().id();
        for handle in self.threads.drain(..) {
            // A job that dropped the last handle to the pool must not join itself.
            if handle.thread().id() != current && handle.join().is_err() {
                log::error!("a password hashing thread ended by panic");
            }
        }
    }
}

/// Hashing gets only the CPU that request workers leave: at full
/// concurrency a login storm would otherwise take a whole core from
/// everyone else, however few threads the pool has. Queued sign-ins wait a
/// little longer instead; with spare CPU they run at full speed.
fn lower_priority() {
    if let Err(e) = thread_priority::lower_current_thread() {
        log::warn!("cannot lower the priority of the password hashing thread: {e}");
    }
}

fn run_jobs(jobs: &Receiver<Job>, queued: &AtomicUsize) {
    for job in jobs.iter() {
        queued.fetch_sub(1, Ordering::AcqRel);
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(job)) {
            let name = thread::current()
                .name()
                .unwrap_or("satchel-hash")
                .to_owned();
            log::error!("{name}: a job panicked: {}", panic_message(panic.as_ref()));
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "non-text panic payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    /// Hashes made by PocketBase v0.40.6 (Go's bcrypt, cost 10): the fixture
    /// superuser of `/work/ref/pb_data` and `superuser upsert` in a scratch dir.
    const REFERENCE_BCRYPT: [(&str, &str); 4] = [
        (
            "password123",
            "$2a$10$7Xu4tydr8YLOcqPnxaR4zuYzWgpY1NBq3Yxnf7L2dYBUTAiYPOYnu",
        ),
        (
            "correct horse battery",
            "$2a$10$NtV3rB0rYl2bU3B7jiKQPu.PV6nyCKBg9u2JwLBUqh2A637n714wi",
        ),
        (
            "pässwörd-✓-日本",
            "$2a$10$zs1HzlJDDHSZYcejJH3U7uCrSduZFKSFK1o9iOkaRzQ2FIQyh3FLe",
        ),
        (
            "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghija",
            "$2a$10$llSsKBuskhiVHiOUYBsCBO4Bm9v9G6CuV8M5ErD7Rb1HwiGvOEFDa",
        ),
    ];

    /// Made by the reference argon2 CLI (Debian `argon2` 20171227), e.g.
    /// `echo -n "correct horse battery" | argon2 satchelsaltvector -id -t 2 -k 19456 -p 1 -e`.
    const REFERENCE_ARGON2: [(&str, &str); 3] = [
        (
            "correct horse battery",
            "$argon2id$v=19$m=19456,t=2,p=1$c2F0Y2hlbHNhbHR2ZWN0b3I$zqj93N1Qnwrka9NkGZGuOS+qv4tg1Z6QQDb27Ruc3Uk",
        ),
        (
            "password",
            "$argon2id$v=19$m=4096,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$3tSpsJ2+sQnGGMguLs3NtW/NNUlvXM7DhAQH5Tx8f6c",
        ),
        (
            "pässwörd-✓",
            "$argon2i$v=19$m=4096,t=3,p=1$YW5vdGhlcnNhbHQxMjM0NQ$QP6DbDGr+FkSa0IfWf+bDtnCxZ5okhYtYLD2yiip4hs",
        ),
    ];

    #[test]
    fn new_hashes_are_argon2id_with_our_parameters_and_verify() {
        let hash = hash_password("s3cret pässword").unwrap();
        let fields: Vec<&str> = hash.split('$').collect();
        assert_eq!(fields[..4], ["", "argon2id", "v=19", "m=19456,t=2,p=1"]);
        assert_eq!(fields[4].len(), 22, "16-byte salt, unpadded base64");
        assert_eq!(fields[5].len(), 43, "32-byte hash, unpadded base64");
        assert!(verify_password("s3cret pässword", &hash));
        assert!(!verify_password("s3cret password", &hash));
        assert!(!verify_password("", &hash));
        assert!(!needs_rehash(&hash));
    }

    #[test]
    fn same_password_gets_a_different_salt_each_time() {
        assert_ne!(
            hash_password("same").unwrap(),
            hash_password("same").unwrap()
        );
    }

    #[test]
    fn argon2_hashes_from_the_reference_implementation_verify() {
        for (password, hash) in REFERENCE_ARGON2 {
            assert!(verify_password(password, hash), "{hash}");
            assert!(!verify_password(&format!("{password}x"), hash), "{hash}");
        }
        assert!(
            !needs_rehash(REFERENCE_ARGON2[0].1),
            "our parameters, longer salt"
        );
        assert!(needs_rehash(REFERENCE_ARGON2[1].1), "other costs");
        assert!(needs_rehash(REFERENCE_ARGON2[2].1), "argon2i");
    }

    #[test]
    fn pocketbase_bcrypt_hashes_verify_and_need_rehash() {
        for (password, hash) in REFERENCE_BCRYPT {
            assert!(verify_password(password, hash), "{password}");
            assert!(
                !verify_password(&password.to_uppercase(), hash),
                "{password}"
            );
            assert!(needs_rehash(hash));
        }
    }

    #[test]
    fn bcrypt_2b_and_2y_prefixes_verify_like_2a() {
        // For passwords under 255 bytes the three revisions compute the same hash.
        let (password, hash) = REFERENCE_BCRYPT[0];
        for prefix in ["$2b$", "$2y$"] {
            let renamed = format!("{prefix}{}", &hash[4..]);
            assert!(verify_password(password, &renamed), "{renamed}");
            assert!(needs_rehash(&renamed));
        }
        assert!(!verify_password(password, &format!("$2x${}", &hash[4..])));
    }

    #[test]
    fn passwords_over_72_bytes_never_match_bcrypt_by_truncation() {
        // A cheap (cost 4) hash of exactly 72 bytes, the most bcrypt reads.
        let base = "y".repeat(BCRYPT_MAX_PASSWORD_BYTES);
        let hash = bcrypt::hash(&base, 4).unwrap();
        assert!(verify_password(&base, &hash));
        assert!(!verify_password(&format!("{base}y"), &hash));
        assert!(!verify_password(&format!("{base}anything"), &hash));
    }

    #[test]
    fn empty_garbage_and_corrupt_hashes_are_mismatches_without_panic() {
        let corrupt = [
            "",
            "garbage",
            "$",
            "$$$$$",
            "$2a$10$",
            "$2a$10$7Xu4tydr8YLOcqPnxaR4zuYzWgpY1NBq3Yxnf7L2dYBUTAiYPOYn!",
            "$2a$99$7Xu4tydr8YLOcqPnxaR4zuYzWgpY1NBq3Yxnf7L2dYBUTAiYPOYnu",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=19456,t=2$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=2,p=1,x=3$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=20$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=8,t=0,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=8,t=1,p=0$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=-1,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2x$v=19$m=4096,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo!",
            // Would allocate 4 GiB or run for hours if verified as written.
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=4096,t=4294967295,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=4096,t=1,p=16777215$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNo",
        ];
        for hash in corrupt {
            assert!(!verify_password("password", hash), "{hash}");
        }
        for hash in [
            "",
            "garbage",
            "$2a$10$",
            "$argon2id$",
            "$argon2x$v=19$m=4096,t=1,p=1$c29tZXNhbHQ$aGFzaA",
        ] {
            assert!(!needs_rehash(hash), "{hash}");
        }
    }

    #[test]
    fn dummy_verification_does_the_work_of_a_current_hash() {
        // Equal cost follows from equal parameters; timing itself is too noisy to assert.
        let dummy = dummy_hash().unwrap();
        assert!(StoredArgon2::parse(dummy).is_some_and(|stored| stored.is_current()));
        assert!(!verify_dummy("password123"));
        assert!(!verify_dummy(""));
    }

    #[test]
    fn blocking_helpers_hash_and_verify_on_the_pool() {
        let pool = HashPool::new(1).unwrap();
        let hash = pool.hash_blocking("over the pool").unwrap();
        assert_eq!(pool.verify_blocking("over the pool", &hash), Ok(true));
        assert_eq!(
            pool.verify_blocking("not it", REFERENCE_BCRYPT[0].1),
            Ok(false)
        );
    }

    #[test]
    fn pool_runs_jobs_in_parallel_on_named_threads() {
        let pool = HashPool::new(2).unwrap();
        let (started, starts) = mpsc::channel();
        let (release, released) = crossbeam_channel::unbounded::<()>();
        for _ in 0..2 {
            let (started, released) = (started.clone(), released.clone());
            pool.spawn(Box::new(move || {
                let _ = started.send(thread::current().name().map(str::to_owned));
                // Holds this thread until the test has seen both jobs running at once.
                let _ = released.recv_timeout(WAIT);
            }))
            .unwrap();
        }
        let mut names = vec![
            starts.recv_timeout(WAIT).unwrap(),
            starts.recv_timeout(WAIT).unwrap(),
        ];
        names.sort();
        assert_eq!(
            names,
            [
                Some("satchel-hash-0".to_owned()),
                Some("satchel-hash-1".to_owned())
            ]
        );
        drop(release);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pool_threads_run_at_the_lowest_priority() {
        let pool = HashPool::new(1).unwrap();
        let nice = pool.run_blocking(thread_priority::tests::current_nice);
        assert_eq!(nice, Ok(thread_priority::LOWEST_NICE));
    }

    #[test]
    fn pool_thread_survives_a_panicking_job() {
        let pool = HashPool::new(1).unwrap();
        pool.spawn(Box::new(|| panic!("job failure on purpose")))
            .unwrap();
        assert_eq!(
            pool.run_blocking(|| panic!("another on purpose")),
            Err::<(), _>(PoolError::JobPanicked)
        );
        assert_eq!(
            pool.run_blocking(|| thread::current().name().map(str::to_owned)),
            Ok(Some("satchel-hash-0".to_owned()))
        );
    }

    #[test]
    fn full_queue_answers_busy_and_gives_the_input_back() {
        let pool = HashPool::with_queue(1, 1).unwrap();
        let (started, starts) = mpsc::channel();
        let (release, released) = crossbeam_channel::unbounded::<()>();
        pool.spawn(Box::new(move || {
            let _ = started.send(());
            let _ = released.recv_timeout(WAIT);
        }))
        .unwrap();
        starts.recv_timeout(WAIT).unwrap();
        // The only thread is busy; one job may wait, the next is refused.
        let (ran, runs) = mpsc::channel();
        pool.spawn_with(1, move |n| {
            let _ = ran.send(n);
        })
        .unwrap();
        assert_eq!(
            pool.spawn_with("the request", |_| {}),
            Err(PoolBusy("the request"))
        );
        assert_eq!(pool.spawn(Box::new(|| {})), Err(PoolBusy(())));
        assert_eq!(pool.run_blocking(|| ()), Err(PoolError::Busy));
        drop(release);
        assert_eq!(runs.recv_timeout(WAIT), Ok(1));
        assert_eq!(
            pool.run_blocking(|| 7),
            Ok(7),
            "room again once the queue drains"
        );
    }

    #[test]
    fn dropping_the_pool_finishes_queued_jobs() {
        let done = Arc::new(AtomicUsize::new(0));
        let pool = HashPool::with_queue(1, 8).unwrap();
        for _ in 0..8 {
            let done = Arc::clone(&done);
            pool.spawn(Box::new(move || {
                thread::sleep(Duration::from_millis(5));
                done.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        drop(pool);
        assert_eq!(done.load(Ordering::SeqCst), 8);
    }
}
