//! The hub's limits and timers, with the reference's defaults.

use std::time::Duration;

/// Everything the hub can be tuned with. `HubConfig::default()` follows the
/// reference where it has a number and stays conservative where it has none.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Open streams in total. Each costs tiny_http's connection thread and
    /// two file descriptors (tiny_http keeps a read and a write handle), so
    /// this is the knob that keeps a flood of subscribers inside `ulimit -n`
    /// and the thread limits. The reference has no cap; the default is what
    /// the file limit affords (see [`default_max_clients`]).
    pub max_clients: usize,
    /// Open streams per client address (per /64 for IPv6, where one host
    /// usually owns the whole prefix). Only applied when the caller vouches
    /// for the address by passing `Some(ip)`; behind an untrusted proxy every
    /// client would share the proxy's address.
    pub max_clients_per_ip: Option<usize>,
    /// The `Retry-After` a refused client is told to wait.
    pub retry_after: Duration,
    /// Messages waiting for one client's sender before that client is
    /// dropped as too slow. Large enough for a whole committed batch to land
    /// at once; nothing is allocated for it while the client keeps up.
    pub queue_max_messages: usize,
    /// Bytes (event names + data) waiting for one client's sender before
    /// it is dropped; bounds what a stuck client can pin in memory.
    pub queue_max_bytes: usize,
    /// The stream ends after this long without a message (the reference
    /// closes after exactly 5 minutes; heartbeats do not count).
    pub idle_timeout: Duration,
    /// The stream ends after this long however busy it is (reference: 30 min),
    /// so a connection never outlives, say, a revoked token by much.
    pub max_lifetime: Duration,
    /// An SSE comment line (`:`) sent after this long without any write.
    /// The reference sends none, and every EventSource ignores comments; it
    /// is how a peer that went away is noticed (and its slot freed) within
    /// about two intervals instead of at the idle timeout: we cannot read
    /// the socket (see the module docs). `None` turns it off.
    pub heartbeat: Option<Duration>,
    /// The reference's cap on subscriptions per client.
    pub max_subscriptions: usize,
    /// The reference's cap on one subscription's length, in characters.
    pub max_subscription_len: usize,
    /// Writer threads putting queued messages on the sockets. A few are
    /// enough: each write is one syscall, and more threads than cores only
    /// add context switches; more than one keeps a stuck socket from
    /// delaying everyone until the stall timeout.
    pub writers: usize,
    /// A write blocked this long means the peer stopped reading: that client
    /// is dropped and its writer replaced.
    pub stall_timeout: Duration,
    /// Stack of each writer thread. It only formats and writes, so it needs
    /// little; the stack is virtual memory, only touched pages cost RSS.
    pub sender_stack_size: usize,
}

impl HubConfig {
    /// The timers the timers thread must serve, to pick its tick.
    pub(crate) fn timers(&self) -> Vec<Duration> {
        let mut timers = vec![self.idle_timeout, self.max_lifetime, self.stall_timeout];
        timers.extend(self.heartbeat);
        timers
    }
}

/// File descriptors kept for everything else (database, workers' keep-alive
/// connections, logs) when deriving the cap from the file limit.
const FDS_FOR_THE_REST: usize = 1024;

/// The cap when nothing says otherwise: half of what the open-file limit
/// leaves after the rest of the server (each stream holds two descriptors),
/// at most 10,000 (each also holds a thread), at least 100. With the
/// usual 1,024 soft limit that is 100; with 20,000 it is about 9,500.
pub fn default_max_clients() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| open_files_limit(&text));
    match limit {
        Some(n) => (n.saturating_sub(FDS_FOR_THE_REST) / 2).clamp(100, 10_000),
        None => 1_000,
    }
}

/// The soft "Max open files" of a `/proc/self/limits` text.
fn open_files_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX),
        n => n.parse().ok(),
    }
}

fn default_writers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_clients: default_max_clients(),
            max_clients_per_ip: Some(100),
            retry_after: Duration::from_secs(10),
            queue_max_messages: 1024,
            queue_max_bytes: 4 * 1024 * 1024,
            idle_timeout: Duration::from_secs(5 * 60),
            max_lifetime: Duration::from_secs(30 * 60),
            heartbeat: Some(Duration::from_secs(5)),
            max_subscriptions: 1000,
            max_subscription_len: 2500,
            writers: default_writers(),
            stall_timeout: Duration::from_secs(2),
            sender_stack_size: 256 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63457                63457                processes \n\
                    Max open files            20000                40000                files     \n";
        assert_eq!(open_files_limit(text), Some(20_000));
        assert_eq!(
            open_files_limit(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(usize::MAX)
        );
        assert_eq!(open_files_limit("nothing here"), None);
    }

    #[test]
    fn the_default_cap_holds_a_thousand_subscribers_when_the_limit_allows() {
        let cap = default_max_clients();
        assert!((100..=10_000).contains(&cap), "{cap}");
    }
}
