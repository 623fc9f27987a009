//! Base64 in the two alphabets the API needs: standard with padding (settings
//! encryption, as the reference stores it) and URL-safe without padding (JWT).
//! Decoding is strict: a character outside the alphabet or a bad length is an error.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Byte → 6-bit value for each alphabet, `NOT_A_DIGIT` elsewhere: every
/// request with a token decodes it, and a table beats searching the alphabet.
const STD_VALUES: [u8; 256] = values_of(STD);
const URL_VALUES: [u8; 256] = values_of(URL);
const NOT_A_DIGIT: u8 = 0xFF;

const fn values_of(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut values = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < 64 {
        values[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    values
}

/// Why a base64 text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid base64 data")
    }
}

impl std::error::Error for DecodeError {}

/// Standard alphabet, `=` padded.
pub fn encode_std(data: &[u8]) -> String {
    encode(data, STD, true)
}

/// Standard alphabet; the padding must be present and correct.
pub fn decode_std(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(DecodeError);
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return Err(DecodeError);
    }
    decode(&bytes[..bytes.len() - pad], &STD_VALUES)
}

/// URL-safe alphabet, no padding (RFC 7515 `base64url`).
pub fn encode_url(data: &[u8]) -> String {
    encode(data, URL, false)
}

/// URL-safe alphabet without padding.
pub fn decode_url(text: &str) -> Result<Vec<u8>, DecodeError> {
    decode(text.as_bytes(), &URL_VALUES)
}

fn encode(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn decode(text: &[u8], values: &[u8; 256]) -> Result<Vec<u8>, DecodeError> {
    if text.len() % 4 == 1 {
        return Err(DecodeError);
    }
    let value_of = |c: u8| -> Result<u32, DecodeError> {
        match values[usize::from(c)] {
            NOT_A_DIGIT => Err(DecodeError),
            value => Ok(u32::from(value)),
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value_of(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let kept = chunk.len() - 1;
        // Bits past the last whole byte must be zero, or two texts would decode alike.
        if kept < 3 && bytes[kept] != 0 {
            return Err(DecodeError);
        }
        out.extend_from_slice(&bytes[..kept]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..40 {
            let slice = &data[..len];
            assert_eq!(decode_std(&encode_std(slice)).unwrap(), slice);
            assert_eq!(decode_url(&encode_url(slice)).unwrap(), slice);
        }
    }

    #[test]
    fn matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode_std(plain.as_bytes()), encoded);
            assert_eq!(decode_std(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["Zg=", "Z===", "Zm9v!", "Zh=="] {
            assert!(decode_std(bad).is_err(), "{bad}");
        }
        assert!(decode_url("a").is_err());
        assert!(decode_url("Zm9v+").is_err());
    }
}
