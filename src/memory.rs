//! Keeps the process's memory footprint honest under glibc.
//!
//! glibc raises its mmap threshold to the size of the largest block freed so
//! far (its "dynamic threshold"). Password hashing allocates a 19 MiB argon2
//! buffer; once one is freed, the next ones come from the heap instead of
//! fresh mappings, and aligned allocations of that size fragment the heap so
//! badly that every login left about 19 MiB behind. Fixing the threshold
//! makes such buffers mappings again, returned to the system when freed.
//!
//! glibc reads its tunables only at process start, and setting them from
//! inside would take unsafe FFI, so the binary re-executes itself once with
//! `GLIBC_TUNABLES` set. The PID stays the same (`exec`), which matters for
//! containers and service managers.

use std::os::unix::process::CommandExt;

const TUNABLE: &str = "glibc.malloc.mmap_threshold";
/// glibc's own default starting value (128 KiB), but fixed.
const THRESHOLD: &str = "131072";

/// Re-executes the binary with a fixed mmap threshold unless it already has
/// one. On failure it carries on as is: the footprint is a quality, not a
/// condition for running.
pub fn pin_malloc_thresholds(args: &[String]) {
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains(TUNABLE) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let tunables = if current.is_empty() {
        format!("{TUNABLE}={THRESHOLD}")
    } else {
        format!("{current}:{TUNABLE}={THRESHOLD}")
    };
    // `exec` only returns on failure.
    let err = std::process::Command::new(exe)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    log::debug!("could not re-execute with fixed malloc thresholds: {err}");
}

/// Hands the free pages of every malloc arena back to the system. glibc only
/// ever returns the top of an arena by itself; pages freed in the middle
/// (a connection's page cache, a finished burst's buffers) stay resident
/// until `malloc_trim` releases them. Called when a thread goes idle, so an
/// idle server keeps only what it uses.
#[allow(unsafe_code)]
pub fn return_free_pages() {
    // SAFETY: `malloc_trim` takes a plain integer, touches only the
    // allocator's own state under its arena locks, and is safe to call from
    // any thread at any time (glibc documents it as MT-Safe).
    unsafe {
        libc::malloc_trim(0);
    }
}
