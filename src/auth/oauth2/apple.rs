//! `POST /api/settings/apple/generate-client-secret`: Apple wants its OAuth2
//! client secret as a short-lived JWT signed (ES256) with the developer's
//! "Sign in with Apple" key. Superusers paste the key here and put the
//! result in the provider's `clientSecret`.
//!
//! The key is used once and never stored or logged.

use crate::app::Ctx;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{body, Reply, Req};
use crate::security::base64;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Map, Value};

/// The longest lifetime Apple accepts (about six months).
pub const MAX_DURATION_SECS: i64 = 15_777_000;
const AUDIENCE: &str = "https://appleid.apple.com";
const INVALID: &str = "Invalid client secret data.";

/// What the form carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretRequest {
    pub client_id: String,
    pub team_id: String,
    pub key_id: String,
    pub private_key: String,
    pub duration: i64,
}

impl SecretRequest {
    fn from_body(values: &Map<String, Value>) -> SecretRequest {
        let text = |key: &str| {
            values
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let duration = match values.get("duration") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            _ => 0,
        };
        SecretRequest {
            client_id: text("clientId"),
            team_id: text("teamId"),
            key_id: text("keyId"),
            private_key: text("privateKey"),
            duration,
        }
    }

    /// The reference's form rules, every failing field reported.
    pub fn validate(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        let blank = || field_error("validation_required", "Cannot be blank.");
        if self.client_id.is_empty() {
            errors.insert("clientId".into(), blank());
        }
        for (key, value) in [("teamId", &self.team_id), ("keyId", &self.key_id)] {
            if value.is_empty() {
                errors.insert(key.into(), blank());
            } else if value.chars().count() != 10 {
                errors.insert(
                    key.into(),
                    json!({"code": "validation_length_invalid",
                           "message": "The length must be exactly 10.",
                           "params": {"max": 10, "min": 10}}),
                );
            }
        }
        if self.private_key.is_empty() {
            errors.insert("privateKey".into(), blank());
        } else if pem_body(&self.private_key).is_none() {
            errors.insert(
                "privateKey".into(),
                field_error("validation_match_invalid", "Must be in a valid format."),
            );
        }
        if self.duration == 0 {
            errors.insert("duration".into(), blank());
        } else if self.duration < 1 {
            errors.insert(
                "duration".into(),
                json!({"code": "validation_min_greater_equal_than_required",
                       "message": "Must be no less than 1.", "params": {"threshold": 1}}),
            );
        } else if self.duration > MAX_DURATION_SECS {
            errors.insert(
                "duration".into(),
                json!({"code": "validation_max_less_equal_than_required",
                       "message": format!("Must be no greater than {MAX_DURATION_SECS}."),
                       "params": {"threshold": MAX_DURATION_SECS}}),
            );
        }
        errors
    }
}

/// The base64 between `-----BEGIN PRIVATE KEY-----` and its end line.
fn pem_body(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN PRIVATE KEY----")?;
    let rest = &pem[start..];
    let body_start = rest.find('\n').map(|i| i + 1)?;
    let end = rest.find("-----END PRIVATE KEY-----")?;
    if end <= body_start {
        return None;
    }
    Some(rest[body_start..end].split_whitespace().collect())
}

/// Why a secret could not be made from a well-formed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningError(pub &'static str);

/// The ES256 JWT Apple accepts as client secret, issued at `now`.
pub fn client_secret(request: &SecretRequest, now: i64) -> Result<String, SigningError> {
    let body = pem_body(&request.private_key).ok_or(SigningError("no PEM key"))?;
    let der = base64::decode_std(&body).map_err(|_| SigningError("the key is not base64"))?;
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
        .map_err(|_| SigningError("key is not a valid ECDSA P-256 private key"))?;
    let header = json!({"alg": "ES256", "kid": request.key_id, "typ": "JWT"});
    let claims = json!({
        "iss": request.team_id,
        "sub": request.client_id,
        "aud": [AUDIENCE],
        "exp": now + request.duration,
        "iat": now,
    });
    let input = format!(
        "{}.{}",
        base64::encode_url(header.to_string().as_bytes()),
        base64::encode_url(claims.to_string().as_bytes())
    );
    let signature = key
        .sign(&rng, input.as_bytes())
        .map_err(|_| SigningError("signing failed"))?;
    Ok(format!(
        "{input}.{}",
        base64::encode_url(signature.as_ref())
    ))
}

/// `POST /api/settings/apple/generate-client-secret` (superusers only).
pub fn generate_client_secret(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let values = body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )?
    .values;
    let request = SecretRequest::from_body(&values);
    let errors = request.validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(INVALID, errors));
    }
    let secret = client_secret(&request, crate::datetime::now_unix()).map_err(|e| {
        ApiError::bad_request(&format!(
            "Failed to generate client secret. Raw error: \n{}.",
            e.0
        ))
    })?;
    Ok(Reply::json(&json!({ "secret": secret })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn pem_of(der: &[u8]) -> String {
        let b64 = base64::encode_std(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn the_secret_is_an_es256_jwt_apple_can_verify() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let request = SecretRequest {
            client_id: "com.example.web".into(),
            team_id: "ABCDEFGHIJ".into(),
            key_id: "KEY1234567".into(),
            private_key: pem_of(pkcs8.as_ref()),
            duration: 100,
        };
        assert!(request.validate().is_empty());
        let jwt = client_secret(&request, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&base64::decode_url(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"})
        );
        let claims: Value = serde_json::from_slice(&base64::decode_url(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "ABCDEFGHIJ", "sub": "com.example.web", "aud": ["https://appleid.apple.com"],
                   "exp": 1_700_000_100, "iat": 1_700_000_000})
        );
        let signature = base64::decode_url(parts[2]).unwrap();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn the_form_rules_match_the_reference() {
        let errors = SecretRequest::default().validate();
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["clientId", "teamId", "keyId", "privateKey", "duration"]
        );
        let request = SecretRequest {
            client_id: "c".into(),
            team_id: "short".into(),
            key_id: "KEY12345678".into(),
            private_key: "x".into(),
            duration: 99_999_999,
        };
        let errors = request.validate();
        assert_eq!(errors["teamId"]["code"], "validation_length_invalid");
        assert_eq!(errors["keyId"]["code"], "validation_length_invalid");
        assert_eq!(errors["privateKey"]["code"], "validation_match_invalid");
        assert_eq!(
            errors["duration"]["code"],
            "validation_max_less_equal_than_required"
        );
    }

    #[test]
    fn a_well_formed_but_wrong_key_is_a_signing_error() {
        let request = SecretRequest {
            client_id: "c".into(),
            team_id: "ABCDEFGHIJ".into(),
            key_id: "KEY1234567".into(),
            private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(),
            duration: 10,
        };
        assert!(request.validate().is_empty());
        assert!(client_secret(&request, 0).is_err());
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----";
        assert!(pem_body(sec1).is_none());
    }
}
