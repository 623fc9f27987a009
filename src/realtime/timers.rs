//! The `satchel-sse-timers` thread: wakes every `tick` and asks the hub to
//! look at its clients' timers (idle timeout, lifetime, heartbeat) and at
//! its writers (stuck writes). It holds no client and no socket, only the
//! callback, and ends when the hub is gone.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Runs `sweep` every `tick` until it returns false or `stop` is dropped
/// by the other side.
pub(crate) fn start(
    tick: Duration,
    stop: Receiver<()>,
    mut sweep: impl FnMut() -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("satchel-sse-timers".into())
        .stack_size(256 * 1024)
        .spawn(move || loop {
            match stop.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {
                    if !sweep() {
                        return;
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        })
        .map(drop)
}

/// How often to look: a quarter of the shortest timer, so each fires at
/// most a quarter late, between 10 ms and one second.
pub(crate) fn tick_for(timers: &[Duration]) -> Duration {
    timers
        .iter()
        .map(|t| *t / 4)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_follows_the_shortest_timer_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(tick_for(&[s(300), s(2)]), Duration::from_millis(500));
        assert_eq!(tick_for(&[s(300)]), s(1));
        assert_eq!(
            tick_for(&[Duration::from_millis(8)]),
            Duration::from_millis(10)
        );
        assert_eq!(tick_for(&[]), s(1));
    }
}
