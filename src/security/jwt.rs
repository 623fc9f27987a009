//! JSON Web Tokens in compact form, signed with HMAC-SHA256 (RFC 7519, RFC 7515):
//! the only token format the API hands out (auth, file, verification, password
//! reset and email change tokens). It owns signing, strict verification and
//! reading claims before the key is known.
//!
//! It must never accept an algorithm other than HS256 (`none` above all), never
//! compare signatures in variable time, never sign or verify with an empty key,
//! and knows nothing of records, collections or HTTP: the caller builds the key.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::base64;

/// A token's payload: a JSON object of claims.
pub type Claims = Map<String, Value>;

type HmacSha256 = Hmac<Sha256>;

/// The one header we write, byte for byte what the reference writes.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Our tokens are a few hundred bytes; refusing anything far larger keeps a
/// hostile header from costing decode and parse time.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, or the header or payload is not a JSON object.
    Malformed,
    /// The header names no algorithm or one other than HS256 (including `none`).
    UnsupportedAlgorithm,
    /// The signature was not made with this key over this header and payload.
    BadSignature,
    /// `exp` is missing or not a number, or `nbf`/`iat` is present but not a number.
    InvalidClaims,
    /// `exp` is not after the current time.
    Expired,
    /// `nbf` or `iat` lies after the current time.
    NotYetValid,
    /// An empty key would let anyone mint tokens that verify.
    EmptyKey,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "malformed token",
            JwtError::UnsupportedAlgorithm => "unsupported token algorithm",
            JwtError::BadSignature => "invalid token signature",
            JwtError::InvalidClaims => "invalid token time claims",
            JwtError::Expired => "token expired",
            JwtError::NotYetValid => "token not valid yet",
            JwtError::EmptyKey => "empty token signing key",
        })
    }
}

impl std::error::Error for JwtError {}

/// Signs `claims` with HS256 under `key`.
///
/// Claims are written in the map's order; the reference writes them sorted by
/// name, and either order verifies on both sides. The caller adds `exp`.
pub fn sign(claims: &Claims, key: &[u8]) -> Result<String, JwtError> {
    let mac = mac_for(key)?;
    // Serialising a map of JSON values cannot fail (keys are strings); the arm
    // only exists because the serde signature allows failure in general.
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Malformed)?;
    let mut token = base64::encode_url(HEADER_JSON.as_bytes());
    token.push('.');
    token.push_str(&base64::encode_url(&payload));
    let signature = mac.chain_update(token.as_bytes()).finalize().into_bytes();
    token.push('.');
    token.push_str(&base64::encode_url(&signature));
    Ok(token)
}

/// Checks `token` against `key` at time `now_unix` (seconds) and returns its claims.
///
/// The header must name HS256, the signature must match (compared in constant
/// time), `exp` must be a number after `now_unix`, and `nbf`/`iat`, when
/// present, must be numbers not after `now_unix`.
pub fn verify(token: &str, key: &[u8], now_unix: i64) -> Result<Claims, JwtError> {
    let mac = mac_for(key)?;
    let parts = split(token)?;
    require_hs256(&decode_object(parts.header)?)?;
    // The signature is checked before the payload is parsed, so nothing an
    // attacker wrote past the header is interpreted unless the key vouches for it.
    let signature = base64::decode_url(parts.signature).map_err(|_| JwtError::Malformed)?;
    mac.chain_update(parts.signed.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims = decode_object(parts.payload)?;
    check_time_claims(&claims, now_unix)?;
    Ok(claims)
}

/// Reads a token's claims WITHOUT checking signature or times.
///
/// Only for finding the key (`collectionId`, `id`, `type` name the record and
/// secret); nothing read here may be trusted until [`verify`] accepts the token.
pub fn peek_claims(token: &str) -> Result<Claims, JwtError> {
    decode_object(split(token)?.payload)
}

/// The three parts of a compact token, plus the header-and-payload text that is signed.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signed: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut pieces = token.split('.');
    match (pieces.next(), pieces.next(), pieces.next(), pieces.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
            signed: &token[..header.len() + 1 + payload.len()],
        }),
        _ => Err(JwtError::Malformed),
    }
}

fn mac_for(key: &[u8]) -> Result<HmacSha256, JwtError> {
    if key.is_empty() {
        return Err(JwtError::EmptyKey);
    }
    // HMAC takes keys of any length, so the error arm cannot be reached.
    HmacSha256::new_from_slice(key).map_err(|_| JwtError::EmptyKey)
}

fn decode_object(part: &str) -> Result<Claims, JwtError> {
    let bytes = base64::decode_url(part).map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// Exact, case-sensitive match: "hs256", "none" or a missing `alg` are refused,
/// and so is `crit`, since we implement no header extensions a token could demand.
fn require_hs256(header: &Claims) -> Result<(), JwtError> {
    if header.contains_key("crit") {
        return Err(JwtError::UnsupportedAlgorithm);
    }
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => Ok(()),
        _ => Err(JwtError::UnsupportedAlgorithm),
    }
}

/// `exp` is required because every token we issue carries one and a token
/// without it would never expire. No leeway: issuer and verifier share a clock.
fn check_time_claims(claims: &Claims, now_unix: i64) -> Result<(), JwtError> {
    let now = now_unix as f64;
    let expires = numeric_claim(claims, "exp")?.ok_or(JwtError::InvalidClaims)?;
    if expires <= now {
        return Err(JwtError::Expired);
    }
    for name in ["nbf", "iat"] {
        if numeric_claim(claims, name)?.is_some_and(|t| t > now) {
            return Err(JwtError::NotYetValid);
        }
    }
    Ok(())
}

/// A NumericDate claim: absent is `None`; present but not a JSON number is an error.
fn numeric_claim(claims: &Claims, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or(JwtError::InvalidClaims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &[u8] = b"a-test-key";
    const NOW: i64 = 1_700_000_000;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn auth_claims(exp: i64) -> Claims {
        claims(json!({"type": "auth", "id": "abc", "collectionId": "c1", "exp": exp}))
    }

    /// Builds a token from any header and payload text, signed with HS256 under
    /// `key`, to probe what `verify` does with tokens we would never write.
    fn token_from_parts(header: &str, payload: &str, key: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            base64::encode_url(header.as_bytes()),
            base64::encode_url(payload.as_bytes())
        );
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            base64::encode_url(&mac.finalize().into_bytes())
        )
    }

    fn token_with_header(header: &str, claims: &Claims, key: &[u8]) -> String {
        token_from_parts(header, &serde_json::to_string(claims).unwrap(), key)
    }

    #[test]
    fn signed_tokens_verify_and_return_their_claims() {
        let original = auth_claims(NOW + 60);
        let token = sign(&original, KEY).unwrap();
        assert_eq!(verify(&token, KEY, NOW).unwrap(), original);
        assert_eq!(peek_claims(&token).unwrap(), original);
    }

    #[test]
    fn header_is_exactly_the_references() {
        let token = sign(&auth_claims(NOW + 60), KEY).unwrap();
        let header = token.split('.').next().unwrap();
        assert_eq!(header, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
        assert_eq!(base64::decode_url(header).unwrap(), HEADER_JSON.as_bytes());
        assert!(!token.contains('='), "parts must be unpadded");
    }

    #[test]
    fn wrong_key_is_a_bad_signature() {
        let token = sign(&auth_claims(NOW + 60), KEY).unwrap();
        assert_eq!(
            verify(&token, b"another-key", NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let token = sign(&auth_claims(NOW + 60), KEY).unwrap();
        let forged_payload = base64::encode_url(
            serde_json::to_string(&claims(
                json!({"type": "auth", "id": "admin", "collectionId": "c1", "exp": NOW + 60}),
            ))
            .unwrap()
            .as_bytes(),
        );
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify(&forged, KEY, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_signature_is_a_bad_signature() {
        let token = sign(&auth_claims(NOW + 60), KEY).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = base64::decode_url(signature).unwrap();
        bytes[0] ^= 1;
        let flipped = format!("{signed}.{}", base64::encode_url(&bytes));
        assert_eq!(verify(&flipped, KEY, NOW), Err(JwtError::BadSignature));
        let truncated = format!("{signed}.{}", base64::encode_url(&bytes[..31]));
        assert_eq!(verify(&truncated, KEY, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused_even_without_a_signature() {
        let payload = base64::encode_url(
            serde_json::to_string(&auth_claims(NOW + 60))
                .unwrap()
                .as_bytes(),
        );
        let header = base64::encode_url(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            verify(&format!("{header}.{payload}."), KEY, NOW),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn headers_other_than_hs256_are_refused_even_when_the_mac_matches() {
        let c = auth_claims(NOW + 60);
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"hs256","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":["HS256"]}"#,
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        ] {
            let token = token_with_header(header, &c, KEY);
            assert_eq!(
                verify(&token, KEY, NOW),
                Err(JwtError::UnsupportedAlgorithm),
                "{header}"
            );
        }
        let plain = token_with_header(r#"{"alg":"HS256"}"#, &c, KEY);
        assert!(verify(&plain, KEY, NOW).is_ok(), "typ is optional");
    }

    #[test]
    fn expiry_is_required_and_strict() {
        let at_expiry = sign(&auth_claims(NOW), KEY).unwrap();
        assert_eq!(verify(&at_expiry, KEY, NOW), Err(JwtError::Expired));
        assert_eq!(verify(&at_expiry, KEY, NOW - 1).map(|_| ()), Ok(()));
        let no_exp = sign(&claims(json!({"type": "auth", "id": "abc"})), KEY).unwrap();
        assert_eq!(verify(&no_exp, KEY, NOW), Err(JwtError::InvalidClaims));
        for bad in [json!("9999999999"), json!(null), json!(true)] {
            let token = sign(&claims(json!({"id": "abc", "exp": bad})), KEY).unwrap();
            assert_eq!(
                verify(&token, KEY, NOW),
                Err(JwtError::InvalidClaims),
                "{bad}"
            );
        }
        let fractional = sign(&claims(json!({"exp": NOW as f64 + 0.5})), KEY).unwrap();
        assert!(verify(&fractional, KEY, NOW).is_ok());
    }

    #[test]
    fn future_nbf_or_iat_is_not_yet_valid() {
        for name in ["nbf", "iat"] {
            let mut c = auth_claims(NOW + 60);
            c.insert(name.into(), json!(NOW + 1));
            let token = sign(&c, KEY).unwrap();
            assert_eq!(
                verify(&token, KEY, NOW),
                Err(JwtError::NotYetValid),
                "{name}"
            );
            assert!(verify(&token, KEY, NOW + 1).is_ok(), "{name}");
            c.insert(name.into(), json!("soon"));
            assert_eq!(
                verify(&sign(&c, KEY).unwrap(), KEY, NOW),
                Err(JwtError::InvalidClaims),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused_by_verify_and_peek() {
        let good = sign(&auth_claims(NOW + 60), KEY).unwrap();
        let array_payload = token_from_parts(HEADER_JSON, "[]", KEY);
        let text_header = token_from_parts("\"HS256\"", "{}", KEY);
        let oversized = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
        let padded = good.replacen('.', "=.", 1);
        for bad in [
            "",
            "..",
            "abc",
            "a.b",
            &format!("{good}.extra"),
            &good.replacen('.', "!.", 1),
            &padded,
            &array_payload,
            &text_header,
            &oversized,
        ] {
            assert_eq!(verify(bad, KEY, NOW), Err(JwtError::Malformed), "{bad}");
        }
        for bad in ["", "a.b", "x.%%%.y", &array_payload, &oversized] {
            assert_eq!(peek_claims(bad), Err(JwtError::Malformed), "{bad}");
        }
    }

    #[test]
    fn empty_key_never_signs_or_verifies() {
        assert_eq!(sign(&auth_claims(NOW + 60), b""), Err(JwtError::EmptyKey));
        let token = token_with_header(HEADER_JSON, &auth_claims(NOW + 60), b"\0");
        assert_eq!(verify(&token, b"", NOW), Err(JwtError::EmptyKey));
    }

    #[test]
    fn peek_does_not_check_signature_or_time() {
        let token = sign(&auth_claims(NOW - 60), KEY).unwrap();
        let peeked = peek_claims(&token).unwrap();
        assert_eq!(peeked.get("collectionId"), Some(&json!("c1")));
        assert_eq!(verify(&token, KEY, NOW), Err(JwtError::Expired));
    }

    /// Tokens issued by PocketBase v0.40.6 (`/work/ref/pocketbase`) for superuser
    /// `nu00su4b70sryv9` of the fixture data dir: key = record `tokenKey` followed
    /// by the `_superusers` collection's per-purpose secret from `_collections.options`.
    mod reference_vectors {
        use super::*;

        const TOKEN_KEY: &str = "K9xak0ovVzJeWKXAYGMRFAKIfouBB33sZHpNcQFIhrhc5XbAaz";
        const AUTH_SECRET: &str = "GGBX59ikWsX5NfvxFMl5BaCL9TXH0LRfjxzKNX6MR6rsFcyN6R";
        const FILE_SECRET: &str = "PUe9UyMOGHtBZSqjJKTnQ4YXXtMRAFbNUdtwONNcB5mjh3QRud";
        /// From `POST /api/collections/_superusers/auth-with-password`.
        const AUTH_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyIsImV4cCI6MTc5NTgxMjQxNCwiaWQiOiJudTAwc3U0Yjcwc3J5djkiLCJyZWZyZXNoYWJsZSI6dHJ1ZSwidHlwZSI6ImF1dGgifQ.mFPSB5uK7--R7ktnVzc9C5vkjAD9wW4xl1zRPzgyFLI";
        const AUTH_EXP: i64 = 1_795_812_414;
        /// From `POST /api/files/token` with the auth token above.
        const FILE_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb2xsZWN0aW9uSWQiOiJwYmNfMzE0MjYzNTgyMyIsImV4cCI6MTc5NTcyNjE5NywiaWQiOiJudTAwc3U0Yjcwc3J5djkiLCJ0eXBlIjoiZmlsZSJ9.OK_AhVnTptu07zdouH1udlzZa12MH1wZ6I_e9MrY5o8";
        const FILE_EXP: i64 = 1_795_726_197;

        fn key(secret: &str) -> Vec<u8> {
            format!("{TOKEN_KEY}{secret}").into_bytes()
        }

        #[test]
        fn reference_auth_token_verifies_before_expiry() {
            let c = verify(AUTH_TOKEN, &key(AUTH_SECRET), AUTH_EXP - 60).unwrap();
            assert_eq!(
                Value::Object(c),
                json!({"collectionId": "pbc_3142635823", "exp": AUTH_EXP, "id": "nu00su4b70sryv9", "refreshable": true, "type": "auth"})
            );
            assert_eq!(
                verify(AUTH_TOKEN, &key(AUTH_SECRET), AUTH_EXP),
                Err(JwtError::Expired)
            );
        }

        #[test]
        fn reference_file_token_verifies_only_with_the_file_secret() {
            let c = verify(FILE_TOKEN, &key(FILE_SECRET), FILE_EXP - 60).unwrap();
            assert_eq!(c.get("type"), Some(&json!("file")));
            assert_eq!(
                verify(FILE_TOKEN, &key(AUTH_SECRET), FILE_EXP - 60),
                Err(JwtError::BadSignature)
            );
            assert_eq!(
                verify(AUTH_TOKEN, TOKEN_KEY.as_bytes(), AUTH_EXP - 60),
                Err(JwtError::BadSignature)
            );
        }

        #[test]
        fn signing_the_reference_claims_reproduces_the_reference_token() {
            // The reference writes claims sorted by name; peeking keeps that order.
            for (token, secret) in [(AUTH_TOKEN, AUTH_SECRET), (FILE_TOKEN, FILE_SECRET)] {
                let c = peek_claims(token).unwrap();
                assert_eq!(sign(&c, &key(secret)).unwrap(), token);
            }
        }
    }
}
