//! Random strings and bytes from the operating system's CSPRNG: record ids,
//! token keys, secrets, nonces. Never a seeded or user-influenced generator.
//!
//! Small requests are served from a per-thread pool of OS bytes fetched
//! `POOL_SIZE` at a time: a record id needs about 15 bytes, and a system call
//! for each was a measurable part of a create. Bytes leave the pool once
//! and are wiped as they go.

use std::cell::RefCell;

/// OS bytes fetched per refill of a thread's pool.
const POOL_SIZE: usize = 256;
/// Larger requests skip the pool.
const LARGEST_POOLED: usize = 64;

struct Pool {
    bytes: [u8; POOL_SIZE],
    /// Bytes before this index have been handed out (and wiped).
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_SIZE], next: POOL_SIZE })
    };
}

impl Pool {
    fn take(&mut self, buf: &mut [u8]) {
        if POOL_SIZE - self.next < buf.len() {
            os_fill(&mut self.bytes);
            self.next = 0;
        }
        let end = self.next + buf.len();
        buf.copy_from_slice(&self.bytes[self.next..end]);
        self.bytes[self.next..end].fill(0);
        self.next = end;
    }
}

/// Lower-case letters and digits: the alphabet of record and OTP ids.
pub const ALPHANUMERIC_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Letters of both cases and digits: token keys and secrets.
pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` with random bytes. The OS generator failing is not something a
/// server can work around, so it aborts the request that needed it.
pub fn fill(buf: &mut [u8]) {
    if buf.len() > LARGEST_POOLED {
        os_fill(buf);
    } else {
        POOL.with_borrow_mut(|pool| pool.take(buf));
    }
}

fn os_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub fn string_from(alphabet: &[u8], len: usize) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; LARGEST_POOLED];
    while out.len() < len {
        // As many bytes as characters are missing: rejections are rare.
        let batch = &mut bytes[..(len - out.len()).min(LARGEST_POOLED)];
        fill(batch);
        for &b in batch.iter() {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A new 15-character record id, `[a-z0-9]{15}`.
pub fn record_id() -> String {
    string_from(ALPHANUMERIC_LOWER, 15)
}

/// A random unsigned integer.
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_use_only_the_alphabet() {
        let s = string_from(b"ab", 200);
        assert_eq!(s.len(), 200);
        assert!(s.chars().all(|c| c == 'a' || c == 'b'));
        assert!(s.contains('a') && s.contains('b'));
    }

    #[test]
    fn pooled_bytes_are_never_handed_out_twice() {
        // Requests of every pooled size, across several refills: no 16-byte
        // window repeats (a repeat by chance has odds of 2^-128).
        let mut seen = std::collections::HashSet::new();
        for size in (16..=LARGEST_POOLED).cycle().take(200) {
            let mut buf = vec![0u8; size];
            fill(&mut buf);
            assert!(seen.insert(buf[..16].to_vec()));
        }
        let mut big = [0u8; 1024];
        fill(&mut big);
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn long_strings_come_out_whole() {
        let s = string_from(ALPHANUMERIC, 300);
        assert_eq!(s.len(), 300);
        assert!(s.bytes().all(|b| ALPHANUMERIC.contains(&b)));
    }

    #[test]
    fn record_ids_look_like_the_reference() {
        let id = record_id();
        assert_eq!(id.len(), 15);
        assert!(id.bytes().all(|b| ALPHANUMERIC_LOWER.contains(&b)));
        assert_ne!(record_id(), id);
    }
}
