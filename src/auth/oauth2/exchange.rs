//! The two provider round trips of a sign-in: the authorization code for
//! tokens (RFC 6749 §4.1.3, with the PKCE verifier), then the person behind
//! the access token (the user-info URL with `Bearer`, GitHub's email list,
//! or the id_token for Apple and OIDC without a user-info URL).
//!
//! Only talks to the configured provider through `client`; it decides
//! nothing about records.

use super::client::{self, Answer, CallError};
use super::id_token::{self, Expect, IdToken};
use super::profile::{self, Identity};
use super::providers::{ProfileKind, Provider};
use crate::security::base64;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Where Apple publishes the keys its id_tokens are signed with.
pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";
const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// What the token endpoint granted.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, as the reference formats datetimes,
    /// or `""` when the provider did not say.
    pub expiry: String,
    pub id_token: String,
}

/// Why a sign-in could not get past the provider.
#[derive(Debug)]
pub enum ExchangeError {
    /// The code was refused or the answer unusable.
    Token(String),
    /// The person could not be read.
    User(String),
    /// No free call slot.
    Busy,
}

impl From<CallError> for ExchangeError {
    fn from(e: CallError) -> ExchangeError {
        match e {
            CallError::Busy => ExchangeError::Busy,
            other => ExchangeError::Token(other.to_string()),
        }
    }
}

/// How a token endpoint takes the client credentials (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    Basic,
    InBody,
}

/// Token URLs known to refuse HTTP Basic, learnt at run time. Bounded:
/// the URLs come from collection settings, so there are few.
fn preferred_auth(token_url: &str) -> ClientAuth {
    match known_styles().lock() {
        Ok(styles) => styles.get(token_url).copied().unwrap_or(ClientAuth::Basic),
        Err(_) => ClientAuth::Basic,
    }
}

fn remember_auth(token_url: &str, style: ClientAuth) {
    if let Ok(mut styles) = known_styles().lock() {
        if styles.len() < 256 {
            styles.insert(token_url.to_string(), style);
        }
    }
}

fn known_styles() -> &'static Mutex<HashMap<String, ClientAuth>> {
    static STYLES: std::sync::OnceLock<Mutex<HashMap<String, ClientAuth>>> =
        std::sync::OnceLock::new();
    STYLES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Exchanges `code` for tokens. The client credentials go in an HTTP
/// Basic header first and, if the provider refuses that, in the body (the
/// way Go's oauth2 package, and so the reference, finds out).
pub fn exchange_code(
    provider: &Provider,
    code: &str,
    code_verifier: &str,
    redirect_url: &str,
) -> Result<Tokens, ExchangeError> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_url),
    ];
    if provider.pkce {
        fields.push(("code_verifier", code_verifier));
    }
    let first = preferred_auth(&provider.token_url);
    let answer = token_request(provider, &fields, first)?;
    if answer.is_success() {
        return parse_tokens(&answer);
    }
    let second = match first {
        ClientAuth::Basic => ClientAuth::InBody,
        ClientAuth::InBody => ClientAuth::Basic,
    };
    let retry = token_request(provider, &fields, second)?;
    if retry.is_success() {
        remember_auth(&provider.token_url, second);
        return parse_tokens(&retry);
    }
    Err(ExchangeError::Token(format!(
        "token endpoint answered {}: {}",
        retry.status,
        excerpt(&retry.body)
    )))
}

fn token_request(
    provider: &Provider,
    fields: &[(&str, &str)],
    auth: ClientAuth,
) -> Result<Answer, CallError> {
    match auth {
        ClientAuth::Basic => {
            let credentials = format!(
                "{}:{}",
                client::form_encode(&provider.client_id),
                client::form_encode(&provider.client_secret)
            );
            let basic = base64::encode_std(credentials.as_bytes());
            client::post_form(&provider.token_url, fields, Some(&basic))
        }
        ClientAuth::InBody => {
            let mut all = fields.to_vec();
            all.push(("client_id", &provider.client_id));
            all.push(("client_secret", &provider.client_secret));
            client::post_form(&provider.token_url, &all, None)
        }
    }
}

/// Reads a token answer: JSON, or the form encoding some providers (GitHub
/// without `Accept: application/json`) still answer with.
fn parse_tokens(answer: &Answer) -> Result<Tokens, ExchangeError> {
    let fields: Map<String, Value> = if answer.content_type.contains("x-www-form-urlencoded")
        || answer.content_type == "text/plain"
    {
        let text = String::from_utf8_lossy(&answer.body);
        crate::http::request::parse_query(&text)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    } else {
        match serde_json::from_slice(&answer.body) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ExchangeError::Token("unreadable token answer".into())),
        }
    };
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let access_token = text("access_token");
    if access_token.is_empty() {
        return Err(ExchangeError::Token(
            "the token answer has no access_token".into(),
        ));
    }
    Ok(Tokens {
        access_token,
        refresh_token: text("refresh_token"),
        expiry: expiry_text(fields.get("expires_in")),
        id_token: text("id_token"),
    })
}

/// `expires_in` seconds (a number, or digits in a string) from now.
fn expiry_text(expires_in: Option<&Value>) -> String {
    let secs = match expires_in {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match secs {
        Some(secs) if secs > 0 => crate::datetime::format_millis(
            crate::datetime::now_millis().saturating_add(secs.saturating_mul(1000)),
        ),
        _ => String::new(),
    }
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// Who the tokens belong to.
pub fn fetch_identity(provider: &Provider, tokens: &Tokens) -> Result<Identity, ExchangeError> {
    let raw = match provider.kind {
        ProfileKind::Apple => apple_claims(provider, tokens)?,
        ProfileKind::Oidc if provider.user_info_url.is_empty() => oidc_claims(provider, tokens)?,
        _ => user_info(&provider.user_info_url, &tokens.access_token)?,
    };
    let mut identity = profile::read(provider.kind, raw);
    if provider.kind == ProfileKind::GitHub && identity.email.is_empty() {
        identity.email = github_email(provider, tokens)?;
    }
    if identity.id.is_empty() {
        return Err(ExchangeError::User("the profile has no id".into()));
    }
    Ok(identity)
}

fn user_info(url: &str, access_token: &str) -> Result<Map<String, Value>, ExchangeError> {
    let answer = client::get(url, Some(access_token)).map_err(user_error)?;
    if !answer.is_success() {
        return Err(ExchangeError::User(format!(
            "user info answered {}: {}",
            answer.status,
            excerpt(&answer.body)
        )));
    }
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ExchangeError::User("unreadable user info".into())),
    }
}

fn user_error(e: CallError) -> ExchangeError {
    match e {
        CallError::Busy => ExchangeError::Busy,
        other => ExchangeError::User(other.to_string()),
    }
}

/// GitHub hides private addresses from `/user`; `/user/emails` has them.
/// Missing scope answers (401/403/404) just mean "no email".
fn github_email(provider: &Provider, tokens: &Tokens) -> Result<String, ExchangeError> {
    let url = format!("{}/emails", provider.user_info_url.trim_end_matches('/'));
    let answer = client::get(&url, Some(&tokens.access_token)).map_err(user_error)?;
    if matches!(answer.status, 401 | 403 | 404) {
        return Ok(String::new());
    }
    let list: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| ExchangeError::User("unreadable GitHub email list".into()))?;
    Ok(profile::github_primary_email(&list))
}

/// Apple has no user-info endpoint: the person is in the id_token, which
/// must come from Apple (issuer, audience, signature by its keys).
fn apple_claims(provider: &Provider, tokens: &Tokens) -> Result<Map<String, Value>, ExchangeError> {
    let token = IdToken::parse(&tokens.id_token).map_err(id_error)?;
    let expect = Expect {
        audience: &provider.client_id,
        issuers: vec![APPLE_ISSUER.to_string()],
        require_exp: true,
    };
    id_token::check_claims(&token.claims, &expect, crate::datetime::now_unix())
        .map_err(id_error)?;
    let jwks = fetch_jwks(APPLE_JWKS_URL)?;
    id_token::verify_signature(&token, &jwks).map_err(id_error)?;
    Ok(token.claims)
}

/// Generic OIDC without a user-info URL: the id_token's claims, checked
/// against `extra.issuers` and, with `extra.jwksURL`, its signature.
fn oidc_claims(provider: &Provider, tokens: &Tokens) -> Result<Map<String, Value>, ExchangeError> {
    let token = IdToken::parse(&tokens.id_token).map_err(id_error)?;
    let issuers = provider
        .extra
        .get("issuers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let expect = Expect {
        audience: &provider.client_id,
        issuers,
        require_exp: false,
    };
    id_token::check_claims(&token.claims, &expect, crate::datetime::now_unix())
        .map_err(id_error)?;
    let jwks_url = provider
        .extra
        .get("jwksURL")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !jwks_url.is_empty() {
        let jwks = fetch_jwks(jwks_url)?;
        id_token::verify_signature(&token, &jwks).map_err(id_error)?;
    }
    Ok(token.claims)
}

fn id_error(e: id_token::IdTokenError) -> ExchangeError {
    ExchangeError::User(e.to_string())
}

fn fetch_jwks(url: &str) -> Result<Value, ExchangeError> {
    let answer = client::get(url, None).map_err(user_error)?;
    if !answer.is_success() {
        return Err(ExchangeError::User(format!(
            "key set answered {}",
            answer.status
        )));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|_| ExchangeError::User("unreadable key set".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: &str, body: &str) -> Answer {
        Answer {
            status: 200,
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_and_form_token_answers() {
        let t = parse_tokens(&answer(
            "application/json",
            r#"{"access_token":"at","refresh_token":"rt","expires_in":3600,"id_token":"x.y.z"}"#,
        ))
        .unwrap();
        assert_eq!(
            (
                t.access_token.as_str(),
                t.refresh_token.as_str(),
                t.id_token.as_str()
            ),
            ("at", "rt", "x.y.z")
        );
        assert_eq!(t.expiry.len(), "2024-01-02 03:04:05.000Z".len());
        let t = parse_tokens(&answer(
            "application/x-www-form-urlencoded",
            "access_token=gho_1&scope=read%3Auser&token_type=bearer",
        ))
        .unwrap();
        assert_eq!(t.access_token, "gho_1");
        assert_eq!(t.expiry, "");
    }

    #[test]
    fn a_token_answer_without_an_access_token_is_refused() {
        for body in [
            r#"{"error":"invalid_grant"}"#,
            "[]",
            "nonsense",
            r#"{"access_token":""}"#,
        ] {
            assert!(
                parse_tokens(&answer("application/json", body)).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn expiry_reads_numbers_and_digit_strings() {
        assert_eq!(expiry_text(None), "");
        assert_eq!(expiry_text(Some(&Value::from(0))), "");
        assert_eq!(expiry_text(Some(&Value::from("x"))), "");
        assert!(expiry_text(Some(&Value::from("60"))).ends_with('Z'));
    }
}
