//! The stored form of the settings (`_params` row `settings`, column
//! `value`), byte-compatible with the reference in both directions:
//!
//! - without a key: the settings JSON, secrets included;
//! - with a key: `base64std(nonce(12) || AES-GCM(json) || tag(16))`, no
//!   additional data, the key being the raw bytes of the environment variable
//!   named by `--encryptionEnv`. Like the reference, a 16- or 24-byte key
//!   selects AES-128/192; the documented and recommended size is 32 bytes
//!   (AES-256).
//!
//! Loading tries plain JSON first and decrypts only when that fails, so a
//! plain row keeps working after a key is introduced (it is encrypted on the
//! next save). This module never reads the environment or the database: the
//! caller passes the key and the variable's name.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce};
use serde_json::Value;

use super::model::Settings;
use crate::security::base64::{decode_std, encode_std};
use crate::security::random;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why the stored settings could not be turned into [`Settings`]. Each is
/// fatal at startup (the reference exits with code 1 and logs the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The row is not plain settings JSON and no key was given.
    MissingKey { env_name: String },
    /// The key is not 16, 24 or 32 bytes long.
    InvalidKeySize(usize),
    /// The row is neither settings JSON nor base64.
    NotBase64,
    /// Too short to hold a nonce and a tag.
    Truncated,
    /// Wrong key, or the ciphertext was altered.
    AuthenticationFailed,
    /// Decrypted fine, but the plaintext is not a settings document.
    InvalidJson(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::MissingKey { env_name } => write!(
                f,
                "invalid settings db data or missing encryption key {env_name:?}"
            ),
            LoadError::InvalidKeySize(n) => write!(
                f,
                "invalid encryption key size {n} (the key must be 32 bytes)"
            ),
            LoadError::NotBase64 => f.write_str("encrypted settings are not valid base64"),
            LoadError::Truncated => f.write_str("encrypted settings are truncated"),
            LoadError::AuthenticationFailed => f.write_str(
                "cipher: message authentication failed (wrong encryption key or corrupted settings)",
            ),
            LoadError::InvalidJson(why) => write!(f, "decrypted settings are not valid JSON: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Why the settings could not be prepared for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    InvalidKeySize(usize),
    Serialize(String),
    Encrypt,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::InvalidKeySize(n) => write!(
                f,
                "invalid encryption key size {n} (the key must be 32 bytes)"
            ),
            StoreError::Serialize(why) => write!(f, "cannot serialize settings: {why}"),
            StoreError::Encrypt => f.write_str("settings encryption failed"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The text to store in `_params.value`: plain JSON without a key (the
/// reference stores that as a BLOB; TEXT reads back the same), the encrypted
/// base64 form with one. An empty key counts as no key, as an empty
/// environment variable does for the reference.
pub fn encode_for_storage(settings: &Settings, key: Option<&[u8]>) -> Result<String, StoreError> {
    let json = serde_json::to_string(settings).map_err(|e| StoreError::Serialize(e.to_string()))?;
    match key.filter(|k| !k.is_empty()) {
        None => Ok(json),
        Some(key) => encrypt(json.as_bytes(), key),
    }
}

/// Reads the stored value (TEXT or BLOB bytes). `key_env_name` only names
/// the variable in the error when the row is encrypted and no key was given.
/// Keys missing from the stored JSON take their defaults, and `null`s are
/// skipped, as the reference does when it loads onto its defaults.
pub fn decode_from_storage(
    stored: &[u8],
    key: Option<&[u8]>,
    key_env_name: &str,
) -> Result<Settings, LoadError> {
    if let Some(settings) = parse_plain(stored) {
        return Ok(settings);
    }
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(LoadError::MissingKey {
            env_name: key_env_name.to_string(),
        });
    };
    let plaintext = decrypt(stored, key)?;
    parse_document(&plaintext).map_err(LoadError::InvalidJson)
}

fn parse_plain(stored: &[u8]) -> Option<Settings> {
    parse_document(stored).ok()
}

fn parse_document(bytes: &[u8]) -> Result<Settings, String> {
    let mut document: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !document.is_object() {
        return Err("the settings document is not a JSON object".into());
    }
    drop_nulls(&mut document);
    serde_json::from_value(document).map_err(|e| e.to_string())
}

/// Removes `null` object members so the defaults stand in for them.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// AES-GCM with the variant the key length selects.
enum Cipher {
    Aes128(AesGcm<Aes128, U12>),
    Aes192(AesGcm<Aes192, U12>),
    Aes256(AesGcm<Aes256, U12>),
}

impl Cipher {
    fn for_key(key: &[u8]) -> Option<Cipher> {
        match key.len() {
            16 => AesGcm::new_from_slice(key).ok().map(Cipher::Aes128),
            24 => AesGcm::new_from_slice(key).ok().map(Cipher::Aes192),
            32 => AesGcm::new_from_slice(key).ok().map(Cipher::Aes256),
            _ => None,
        }
    }

    fn seal(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.encrypt(nonce, plaintext).ok(),
            Cipher::Aes192(c) => c.encrypt(nonce, plaintext).ok(),
            Cipher::Aes256(c) => c.encrypt(nonce, plaintext).ok(),
        }
    }

    fn open(&self, nonce: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce, sealed).ok(),
            Cipher::Aes192(c) => c.decrypt(nonce, sealed).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce, sealed).ok(),
        }
    }
}

fn encrypt(plaintext: &[u8], key: &[u8]) -> Result<String, StoreError> {
    let cipher = Cipher::for_key(key).ok_or(StoreError::InvalidKeySize(key.len()))?;
    // A fresh random nonce per save: the key is long-lived, so nonce reuse
    // would break GCM.
    let mut nonce = [0u8; NONCE_LEN];
    random::fill(&mut nonce);
    let sealed = cipher.seal(&nonce, plaintext).ok_or(StoreError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(encode_std(&out))
}

fn decrypt(stored: &[u8], key: &[u8]) -> Result<Vec<u8>, LoadError> {
    // The key is checked first, as the reference does: a bad key size is
    // reported even for garbage data.
    let cipher = Cipher::for_key(key).ok_or(LoadError::InvalidKeySize(key.len()))?;
    let text = std::str::from_utf8(stored).map_err(|_| LoadError::NotBase64)?;
    let raw = decode_std(text.trim_end()).map_err(|_| LoadError::NotBase64)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(LoadError::Truncated);
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    cipher
        .open(nonce, sealed)
        .ok_or(LoadError::AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// Written by the reference 0.40.6 (`serve --encryptionEnv PBKEY` with
    /// PBKEY=KEY) after a PATCH of appName, smtp user/password, s3 secret and
    /// superuserIPs; read back from its `_params` row.
    const REFERENCE_AES256_ROW: &str = include_str!("testdata/reference_aes256.txt");
    /// Same, with the 16-byte key `0123456789abcdef` (the reference then uses AES-128).
    ///
    /// The other direction was checked by hand: a row from
    /// `encode_for_storage(.., Some(KEY))` written into the reference's
    /// `_params` started it fine, its GET showed our values, and its test
    /// mail authenticated with our stored SMTP password.
    const REFERENCE_AES128_ROW: &str = include_str!("testdata/reference_aes128.txt");

    fn sample() -> Settings {
        let mut s = Settings::default();
        s.meta.app_name = "Round Trip".into();
        s.smtp.password = "smtp-secret".into();
        s.s3.secret = "s3-secret".into();
        s
    }

    #[test]
    fn decrypts_the_reference_row() {
        let s = decode_from_storage(REFERENCE_AES256_ROW.trim().as_bytes(), Some(KEY), "PBKEY")
            .unwrap();
        assert_eq!(s.meta.app_name, "Vector App");
        assert_eq!(s.smtp.username, "vec-user");
        assert_eq!(s.smtp.password, "vec-pass-123");
        assert_eq!(s.s3.secret, "s3-secret-xyz");
        assert_eq!(s.superuser_ips, ["127.0.0.1"]);
        assert_eq!(s.rate_limits, Settings::default().rate_limits);
    }

    #[test]
    fn decrypts_the_reference_row_made_with_a_16_byte_key() {
        let row = REFERENCE_AES128_ROW.trim().as_bytes();
        let s = decode_from_storage(row, Some(b"0123456789abcdef"), "PBKEY").unwrap();
        assert_eq!(s.meta.app_name, "K16");
    }

    #[test]
    fn the_reference_row_with_a_wrong_key_fails_authentication() {
        let wrong = b"0123456789abcdef0123456789abcdeX";
        let err = decode_from_storage(REFERENCE_AES256_ROW.trim().as_bytes(), Some(wrong), "PBKEY")
            .unwrap_err();
        assert_eq!(err, LoadError::AuthenticationFailed);
        assert!(err.to_string().contains("message authentication failed"));
    }

    #[test]
    fn plain_storage_round_trips_with_secrets() {
        let stored = encode_for_storage(&sample(), None).unwrap();
        assert!(
            stored.contains("smtp-secret"),
            "plain storage keeps secrets"
        );
        assert_eq!(
            decode_from_storage(stored.as_bytes(), None, "K").unwrap(),
            sample()
        );
    }

    #[test]
    fn encrypted_storage_round_trips_and_hides_secrets() {
        let stored = encode_for_storage(&sample(), Some(KEY)).unwrap();
        assert!(!stored.contains("smtp-secret") && !stored.contains('{'));
        assert_eq!(
            decode_from_storage(stored.as_bytes(), Some(KEY), "K").unwrap(),
            sample()
        );
    }

    #[test]
    fn each_save_uses_a_fresh_nonce() {
        let a = encode_for_storage(&sample(), Some(KEY)).unwrap();
        let b = encode_for_storage(&sample(), Some(KEY)).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn an_empty_key_means_no_encryption() {
        let stored = encode_for_storage(&sample(), Some(b"")).unwrap();
        assert!(stored.starts_with('{'));
    }

    #[test]
    fn plain_rows_load_even_when_a_key_is_given() {
        let stored = encode_for_storage(&sample(), None).unwrap();
        assert_eq!(
            decode_from_storage(stored.as_bytes(), Some(KEY), "K").unwrap(),
            sample()
        );
        // A short key does not matter while the row is still plain.
        assert!(decode_from_storage(stored.as_bytes(), Some(b"short"), "K").is_ok());
    }

    #[test]
    fn encrypted_rows_without_a_key_name_the_variable() {
        let stored = encode_for_storage(&sample(), Some(KEY)).unwrap();
        for key in [None, Some(&b""[..])] {
            let err = decode_from_storage(stored.as_bytes(), key, "PB_ENCRYPTION_KEY").unwrap_err();
            assert_eq!(
                err.to_string(),
                r#"invalid settings db data or missing encryption key "PB_ENCRYPTION_KEY""#
            );
        }
    }

    #[test]
    fn bad_key_sizes_are_refused_both_ways() {
        let stored = encode_for_storage(&sample(), Some(KEY)).unwrap();
        assert_eq!(
            decode_from_storage(stored.as_bytes(), Some(b"12345678"), "K").unwrap_err(),
            LoadError::InvalidKeySize(8)
        );
        assert_eq!(
            encode_for_storage(&sample(), Some(b"12345678")).unwrap_err(),
            StoreError::InvalidKeySize(8)
        );
    }

    #[test]
    fn garbage_and_truncated_rows_are_errors_not_panics() {
        let stored = encode_for_storage(&sample(), Some(KEY)).unwrap();
        let cases: [(&[u8], LoadError); 6] = [
            (b"not base64 at all!", LoadError::NotBase64),
            (b"", LoadError::Truncated),
            (b"AAAA", LoadError::Truncated),
            (&[0xff, 0xfe, 0x00], LoadError::NotBase64),
            (&stored.as_bytes()[..stored.len() - 3], LoadError::NotBase64),
            (
                &stored.as_bytes()[..stored.len() - 8],
                LoadError::AuthenticationFailed,
            ),
        ];
        for (row, expected) in cases {
            assert_eq!(
                decode_from_storage(row, Some(KEY), "K").unwrap_err(),
                expected,
                "{row:?}"
            );
        }
    }

    #[test]
    fn tampered_ciphertext_fails_authentication() {
        let stored = encode_for_storage(&sample(), Some(KEY)).unwrap();
        let mut raw = decode_std(&stored).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = encode_std(&raw);
        assert_eq!(
            decode_from_storage(tampered.as_bytes(), Some(KEY), "K").unwrap_err(),
            LoadError::AuthenticationFailed
        );
        let cut = encode_std(&raw[..NONCE_LEN + TAG_LEN - 1]);
        assert_eq!(
            decode_from_storage(cut.as_bytes(), Some(KEY), "K").unwrap_err(),
            LoadError::Truncated
        );
    }

    #[test]
    fn encrypted_non_settings_json_is_reported() {
        let stored = encrypt(b"[1,2,3]", KEY).unwrap();
        assert!(matches!(
            decode_from_storage(stored.as_bytes(), Some(KEY), "K"),
            Err(LoadError::InvalidJson(_))
        ));
    }

    #[test]
    fn stored_nulls_and_missing_keys_fall_back_to_defaults() {
        let stored = br#"{"meta":{"appName":"N","appURL":null},"smtp":null}"#;
        let s = decode_from_storage(stored, None, "K").unwrap();
        assert_eq!(s.meta.app_name, "N");
        assert_eq!(s.meta.app_url, "http://localhost:8090");
        assert_eq!(s.smtp, Settings::default().smtp);
    }
}
