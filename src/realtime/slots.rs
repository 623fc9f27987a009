//! Counting open streams against the total and per-address caps.
//!
//! A slot is taken before the stream is opened and given back when the
//! sender thread has dropped the socket, not when the client leaves the
//! registry: a sender stuck writing to a peer that never reads still holds a
//! thread and a socket, and the caps exist to bound exactly those.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Why a new stream was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The total cap is reached.
    TooManyClients,
    /// The caller's address (or IPv6 /64) has reached its cap.
    TooManyFromAddress,
    /// The hub is shutting down.
    ShuttingDown,
}

/// What the per-address cap counts: one IPv4 address, or one IPv6 /64
/// (a single host usually owns a whole /64 and can pick any address in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            // A mapped IPv4 address is that IPv4 client, not a v6 network.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(u32::from(v4)),
                None => AddressKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<AddressKey, usize>,
    shutting_down: bool,
}

/// The shared counters. Cloned into every slot so a slot can give itself
/// back from any thread.
pub(crate) struct Slots {
    max_total: usize,
    max_per_address: Option<usize>,
    counts: Mutex<Counts>,
    /// Signalled whenever a slot is given back (shutdown waits on it).
    released: Condvar,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_address: Option<usize>) -> Arc<Slots> {
        Arc::new(Slots {
            max_total,
            max_per_address,
            counts: Mutex::new(Counts::default()),
            released: Condvar::new(),
        })
    }

    /// Takes a slot for a client at `address` (`None`: unknown or not
    /// trusted, so only the total cap applies).
    pub(crate) fn take(self: &Arc<Self>, address: Option<IpAddr>) -> Result<Slot, Refusal> {
        let key = address.map(AddressKey::of);
        let mut counts = self.lock();
        if counts.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if counts.total >= self.max_total {
            return Err(Refusal::TooManyClients);
        }
        if let (Some(key), Some(max)) = (key, self.max_per_address) {
            if counts.per_address.get(&key).copied().unwrap_or(0) >= max {
                return Err(Refusal::TooManyFromAddress);
            }
        }
        counts.total += 1;
        if let Some(key) = key {
            *counts.per_address.entry(key).or_insert(0) += 1;
        }
        Ok(Slot {
            slots: Arc::clone(self),
            key,
        })
    }

    /// Streams whose socket is still held (registered or being torn down).
    pub(crate) fn in_use(&self) -> usize {
        self.lock().total
    }

    /// From now on every `take` is refused.
    pub(crate) fn refuse_new(&self) {
        self.lock().shutting_down = true;
    }

    /// Waits until every slot is back or `deadline` passes; returns how
    /// many are still held.
    pub(crate) fn wait_until_free(&self, deadline: Instant) -> usize {
        let mut counts = self.lock();
        while counts.total > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            counts = self
                .released
                .wait_timeout(counts, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        counts.total
    }

    fn give_back(&self, key: Option<AddressKey>) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = key {
            if let Some(n) = counts.per_address.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    // Forget the address so the map only holds live ones.
                    counts.per_address.remove(&key);
                }
            }
        }
        drop(counts);
        self.released.notify_all();
    }

    /// The counters stay consistent under every critical section here, so a
    /// panic elsewhere while holding the lock does not make them wrong.
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn addresses_tracked(&self) -> usize {
        self.lock().per_address.len()
    }
}

/// One open stream's share of the caps, given back on drop.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    key: Option<AddressKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_total_cap_refuses_the_next_client_until_a_slot_is_dropped() {
        let slots = Slots::new(2, None);
        let a = slots.take(None).unwrap();
        let _b = slots.take(ip("10.0.0.1")).unwrap();
        assert_eq!(slots.take(None).err(), Some(Refusal::TooManyClients));
        drop(a);
        assert!(slots.take(None).is_ok());
    }

    #[test]
    fn the_address_cap_counts_each_address_separately() {
        let slots = Slots::new(10, Some(1));
        let _a = slots.take(ip("10.0.0.1")).unwrap();
        assert_eq!(
            slots.take(ip("10.0.0.1")).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(slots.take(ip("10.0.0.2")).is_ok());
        // An address nobody vouched for is only subject to the total cap.
        assert!(slots.take(None).is_ok());
        assert!(slots.take(None).is_ok());
    }

    #[test]
    fn ipv6_addresses_in_one_64_share_a_cap_and_mapped_v4_is_v4() {
        let slots = Slots::new(10, Some(1));
        let _a = slots.take(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            slots.take(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(slots.take(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = slots.take(ip("192.0.2.7")).unwrap();
        assert_eq!(
            slots.take(ip("::ffff:192.0.2.7")).err(),
            Some(Refusal::TooManyFromAddress)
        );
    }

    #[test]
    fn giving_back_the_last_slot_of_an_address_forgets_it() {
        let slots = Slots::new(10, Some(5));
        let a = slots.take(ip("10.0.0.1")).unwrap();
        let b = slots.take(ip("10.0.0.1")).unwrap();
        drop(a);
        assert_eq!(slots.addresses_tracked(), 1);
        drop(b);
        assert_eq!(slots.addresses_tracked(), 0);
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn refusing_new_slots_and_waiting_for_the_held_ones() {
        let slots = Slots::new(10, None);
        let held = slots.take(None).unwrap();
        slots.refuse_new();
        assert_eq!(slots.take(None).err(), Some(Refusal::ShuttingDown));
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(slots.wait_until_free(soon), 1);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(held);
        });
        assert_eq!(
            slots.wait_until_free(Instant::now() + Duration::from_secs(2)),
            0
        );
        releaser.join().unwrap();
    }
}
