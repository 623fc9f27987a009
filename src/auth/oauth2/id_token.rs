//! OpenID Connect id_tokens: reading their claims and checking them the way
//! the reference does for Apple and for the generic OIDC provider without a
//! user-info URL: audience, time claims with five minutes' leeway, optional
//! issuer list, and the RS256/384/512 signature against a JSON Web Key Set.
//!
//! The token arrives straight from the provider over TLS in answer to our
//! own code exchange, so without a key set the claims are trusted as the
//! reference trusts them. Never accepts `none` or an HMAC algorithm when a
//! key set is given.

use crate::security::base64;
use ring::signature::{self, RsaPublicKeyComponents};
use serde_json::{Map, Value};

/// Slack for clocks that disagree (the reference's default).
pub const LEEWAY_SECS: i64 = 300;

/// Why an id_token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    Missing,
    Malformed,
    /// `aud`, `iss`, `exp` or `iat` does not fit.
    Claims(&'static str),
    /// No key with the token's `kid`, an unusable key, or a bad signature.
    Signature(&'static str),
}

impl std::fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdTokenError::Missing => f.write_str("empty id_token"),
            IdTokenError::Malformed => f.write_str("malformed id_token"),
            IdTokenError::Claims(what) => write!(f, "id_token claim check failed: {what}"),
            IdTokenError::Signature(what) => write!(f, "id_token signature check failed: {what}"),
        }
    }
}

/// A split, decoded compact JWS.
#[derive(Debug, Clone)]
pub struct IdToken {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl IdToken {
    pub fn parse(token: &str) -> Result<IdToken, IdTokenError> {
        if token.is_empty() {
            return Err(IdTokenError::Missing);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdTokenError::Malformed);
        };
        let object = |part: &str| -> Result<Map<String, Value>, IdTokenError> {
            let bytes = base64::decode_url(part).map_err(|_| IdTokenError::Malformed)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(IdTokenError::Malformed),
            }
        };
        Ok(IdToken {
            header: object(h)?,
            claims: object(p)?,
            signing_input: format!("{h}.{p}"),
            signature: base64::decode_url(s).map_err(|_| IdTokenError::Malformed)?,
        })
    }

    pub fn kid(&self) -> &str {
        self.header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// What the claims must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    pub audience: &'a str,
    /// Accepted `iss` values; empty = any.
    pub issuers: Vec<String>,
    pub require_exp: bool,
}

/// Checks `aud`, `iss`, `exp` and `iat` at `now` (Unix seconds).
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expect<'_>,
    now: i64,
) -> Result<(), IdTokenError> {
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !audience_ok || expect.audience.is_empty() {
        return Err(IdTokenError::Claims("aud"));
    }
    if !expect.issuers.is_empty() {
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !expect.issuers.iter().any(|i| i == iss) {
            return Err(IdTokenError::Claims("iss"));
        }
    }
    match number(claims, "exp")? {
        Some(exp) if exp + LEEWAY_SECS <= now => return Err(IdTokenError::Claims("exp")),
        None if expect.require_exp => return Err(IdTokenError::Claims("exp")),
        _ => {}
    }
    if number(claims, "iat")?.is_some_and(|iat| iat - LEEWAY_SECS > now) {
        return Err(IdTokenError::Claims("iat"));
    }
    Ok(())
}

fn number(claims: &Map<String, Value>, key: &str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f as i64))
            .ok_or(IdTokenError::Claims("time claim")),
        Some(_) => Err(IdTokenError::Claims("time claim")),
    }
}

/// Verifies the signature with the key of the token's `kid` in `jwks`
/// (`{"keys": [{"kty":"RSA","kid","alg","n","e"}]}`).
pub fn verify_signature(token: &IdToken, jwks: &Value) -> Result<(), IdTokenError> {
    let kid = token.kid();
    if kid.is_empty() {
        return Err(IdTokenError::Signature("missing kid"));
    }
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or(IdTokenError::Signature("unknown kid"))?;
    let header_alg = token
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key_alg = key.get("alg").and_then(Value::as_str).unwrap_or(header_alg);
    if key_alg != header_alg {
        return Err(IdTokenError::Signature("algorithm differs from the key's"));
    }
    let params = match header_alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return Err(IdTokenError::Signature("unsupported algorithm")),
    };
    let component = |name: &str| -> Result<Vec<u8>, IdTokenError> {
        let text = key.get(name).and_then(Value::as_str).unwrap_or_default();
        base64::decode_url(text.trim_end_matches('='))
            .map_err(|_| IdTokenError::Signature("unreadable key"))
    };
    let public = RsaPublicKeyComponents {
        n: component("n")?,
        e: component("e")?,
    };
    public
        .verify(params, token.signing_input.as_bytes(), &token.signature)
        .map_err(|_| IdTokenError::Signature("bad signature"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::RsaKeyPair;
    use serde_json::json;

    /// A 2048-bit RSA key made for these tests only (PKCS#8, base64).
    const TEST_RSA_PKCS8: &str = include_str!("testdata/rsa2048.pk8.b64");

    fn key_pair() -> RsaKeyPair {
        let der = base64::decode_std(&TEST_RSA_PKCS8.replace(['\n', '\r'], "")).unwrap();
        RsaKeyPair::from_pkcs8(&der).unwrap()
    }

    fn jwks_for(pair: &RsaKeyPair, kid: &str) -> Value {
        let public = pair.public().modulus_len();
        assert_eq!(public, 256);
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        json!({"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": base64::encode_url(&components.n), "e": base64::encode_url(&components.e)}]})
    }

    fn sign(pair: &RsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            base64::encode_url(header.to_string().as_bytes()),
            base64::encode_url(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", base64::encode_url(&sig))
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let pair = key_pair();
        let jwks = jwks_for(&pair, "k1");
        let token = sign(
            &pair,
            json!({"alg": "RS256", "kid": "k1"}),
            json!({"sub": "a", "aud": "client"}),
        );
        let parsed = IdToken::parse(&token).unwrap();
        assert_eq!(verify_signature(&parsed, &jwks), Ok(()));

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = base64::encode_url(
            json!({"sub": "victim", "aud": "client"})
                .to_string()
                .as_bytes(),
        );
        parts[1] = &forged;
        let tampered = IdToken::parse(&parts.join(".")).unwrap();
        assert!(verify_signature(&tampered, &jwks).is_err());

        let other_kid = IdToken::parse(&sign(
            &pair,
            json!({"alg": "RS256", "kid": "k2"}),
            json!({"aud": "client"}),
        ))
        .unwrap();
        assert_eq!(
            verify_signature(&other_kid, &jwks),
            Err(IdTokenError::Signature("unknown kid"))
        );
    }

    #[test]
    fn hmac_and_none_tokens_never_pass_a_key_set() {
        let pair = key_pair();
        let jwks = jwks_for(&pair, "k1");
        for alg in ["none", "HS256"] {
            let header =
                base64::encode_url(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
            let claims = base64::encode_url(br#"{"aud":"client"}"#);
            let token = IdToken::parse(&format!("{header}.{claims}.c2ln")).unwrap();
            assert!(verify_signature(&token, &jwks).is_err(), "{alg}");
        }
    }

    #[test]
    fn claims_are_checked_with_leeway() {
        let now = 1_700_000_000;
        let expect = Expect {
            audience: "client",
            issuers: vec!["https://appleid.apple.com".into()],
            require_exp: true,
        };
        let ok = json!({"aud": ["x", "client"], "iss": "https://appleid.apple.com",
                        "exp": now + 10, "iat": now});
        assert_eq!(check_claims(ok.as_object().unwrap(), &expect, now), Ok(()));
        let cases = [
            (
                json!({"aud": "other", "iss": "https://appleid.apple.com", "exp": now + 10}),
                "aud",
            ),
            (
                json!({"aud": "client", "iss": "https://evil", "exp": now + 10}),
                "iss",
            ),
            (
                json!({"aud": "client", "iss": "https://appleid.apple.com", "exp": now - 301}),
                "exp",
            ),
            (
                json!({"aud": "client", "iss": "https://appleid.apple.com"}),
                "exp",
            ),
            (
                json!({"aud": "client", "iss": "https://appleid.apple.com", "exp": now + 10, "iat": now + 301}),
                "iat",
            ),
        ];
        for (claims, what) in cases {
            assert_eq!(
                check_claims(claims.as_object().unwrap(), &expect, now),
                Err(IdTokenError::Claims(what))
            );
        }
        // within the leeway
        let late = json!({"aud": "client", "iss": "https://appleid.apple.com", "exp": now - 200});
        assert_eq!(
            check_claims(late.as_object().unwrap(), &expect, now),
            Ok(())
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.W10.", "e30.e30.!!"] {
            assert!(IdToken::parse(bad).is_err(), "{bad}");
        }
        assert!(IdToken::parse("e30.e30.").is_ok());
    }
}
