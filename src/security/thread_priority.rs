//! Puts the calling thread at the lowest CPU priority (nice 19), for work
//! that must only ever use the CPU the request workers leave: password
//! hashing. Nice is a per-thread attribute on Linux (setpriority(2),
//! NOTES), so only the calling thread changes, never the process.
//!
//! This is the crate's only unsafe code: two libc calls that take and
//! return plain integers. It must never raise a priority (that needs
//! privileges and is never wanted) and must stay this small. Elsewhere
//! than Linux, where nice is per process, it does nothing.
#![allow(unsafe_code)]

/// The lowest priority `setpriority` accepts: a nice-19 thread gets about
/// 1/70 of the CPU a default (nice 0) thread gets while both want it, and
/// all of it when nothing else runs.
pub const LOWEST_NICE: i32 = 19;

/// Lowers the calling thread to [`LOWEST_NICE`]. Unprivileged processes
/// may always lower their own priority; an error is still reported (for
/// instance a seccomp filter refusing the call) so the caller can log it.
#[cfg(target_os = "linux")]
pub fn lower_current_thread() -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions, cannot fail and touches no memory.
    let tid = unsafe { libc::gettid() };
    // A thread id is positive, so it always fits `id_t`.
    let who = libc::id_t::try_from(tid).map_err(std::io::Error::other)?;
    // SAFETY: setpriority only reads its three integer arguments; with
    // PRIO_PROCESS and a thread id, Linux changes that one thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, LOWEST_NICE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere nice applies to the whole process: leave it alone.
#[cfg(not(target_os = "linux"))]
pub fn lower_current_thread() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::*;

    /// The nice value of the calling thread, from `/proc/thread-self/stat`
    /// (field 19; the command name before it may hold spaces and parentheses).
    pub(crate) fn current_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        after_name
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = current_nice();
        let lowered = std::thread::spawn(|| {
            lower_current_thread().unwrap();
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, LOWEST_NICE);
        assert_eq!(current_nice(), before, "other threads keep their priority");
    }
}
