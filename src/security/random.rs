//! Random strings and bytes from the operating system's CSPRNG: record ids,
//! token keys, secrets, nonces. Never a seeded or user-influenced generator.

/// Lower-case letters and digits: the alphabet of record and OTP ids.
pub const ALPHANUMERIC_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Letters of both cases and digits: token keys and secrets.
pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` with random bytes. The OS generator failing is not something a
/// server can work around, so it aborts the request that needed it.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
pub fn string_from(alphabet: &[u8], len: usize) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        fill(&mut pool);
        for &b in &pool {
            if (b as usize) < limit && out.len() < len {
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
    fn record_ids_look_like_the_reference() {
        let id = record_id();
        assert_eq!(id.len(), 15);
        assert!(id.bytes().all(|b| ALPHANUMERIC_LOWER.contains(&b)));
        assert_ne!(record_id(), id);
    }
}
