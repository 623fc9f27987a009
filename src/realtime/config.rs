//! The hub's limits and timers, with the reference's defaults.

use std::time::Duration;

/// Everything the hub can be tuned with. `HubConfig::default()` follows the
/// reference where it has a number and stays conservative where it has none.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Open streams in total. Each costs two threads (tiny_http's connection
    /// thread and our sender) and two file descriptors, so this is the knob
    /// that keeps a flood of subscribers inside `ulimit -n` and the pid limit.
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
    /// An SSE comment (`:` line) sent after this long without any write.
    /// The reference sends none, and every EventSource ignores comments;
    /// turning it on lets a dead peer be noticed (and its slot freed) within
    /// about two intervals instead of at the idle timeout.
    pub heartbeat: Option<Duration>,
    /// The reference's cap on subscriptions per client.
    pub max_subscriptions: usize,
    /// The reference's cap on one subscription's length, in characters.
    pub max_subscription_len: usize,
    /// Stack of each sender thread. It only formats and writes, so it needs
    /// little; the stack is virtual memory, only touched pages cost RSS.
    pub sender_stack_size: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_clients: 1000,
            max_clients_per_ip: Some(100),
            retry_after: Duration::from_secs(10),
            queue_max_messages: 1024,
            queue_max_bytes: 4 * 1024 * 1024,
            idle_timeout: Duration::from_secs(5 * 60),
            max_lifetime: Duration::from_secs(30 * 60),
            heartbeat: None,
            max_subscriptions: 1000,
            max_subscription_len: 2500,
            sender_stack_size: 64 * 1024,
        }
    }
}
