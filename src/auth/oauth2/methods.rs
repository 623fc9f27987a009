//! The OAuth2 part of `auth-methods` and the provider catalogue: for each
//! configured provider a fresh `state`, a PKCE verifier with its S256
//! challenge, and the authorization URL the app appends its redirect URL to.
//!
//! Every call starts new flows; nothing is stored server-side (the client
//! hands `state` and the verifier back itself, as with the reference). The
//! client secret is never part of anything built here.

use super::client::form_encode;
use super::providers::{self, Provider, PROVIDERS};
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::security::{base64, random};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Length of the `state` value (the reference's).
pub const STATE_LENGTH: usize = 30;
/// Length of the PKCE code verifier (RFC 7636 allows 43–128).
pub const VERIFIER_LENGTH: usize = 43;

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    base64::encode_url(&Sha256::digest(verifier.as_bytes()))
}

/// `(oauth2, authProviders)` of the auth-methods answer: the providers with
/// their flows when OAuth2 is on, empty lists when it is off.
pub fn auth_methods_entries(collection: &Collection) -> (Value, Value) {
    let options = AuthOptions::from_collection(collection);
    let Some(oauth2) = options.map(|o| o.oauth2).filter(|o| o.enabled) else {
        return (json!({"enabled": false, "providers": []}), json!([]));
    };
    let providers: Vec<Value> = oauth2
        .providers
        .iter()
        .filter_map(|config| match providers::resolve(config) {
            Ok(provider) => Some(provider_entry(&provider)),
            Err(why) => {
                // As the reference skips providers it cannot set up.
                log::debug!(
                    "auth-methods skips OAuth2 provider {:?}: {why:?}",
                    config.name
                );
                None
            }
        })
        .collect();
    // The legacy copy carries no logos.
    let legacy: Vec<Value> = providers
        .iter()
        .cloned()
        .map(|mut p| {
            p["logo"] = json!("");
            p
        })
        .collect();
    (
        json!({"enabled": true, "providers": providers}),
        Value::Array(legacy),
    )
}

/// One provider with a new flow.
fn provider_entry(provider: &Provider) -> Value {
    let state = random::string_from(random::ALPHANUMERIC, STATE_LENGTH);
    let (verifier, challenge, method) = if provider.pkce {
        let verifier = random::string_from(random::ALPHANUMERIC, VERIFIER_LENGTH);
        let challenge = s256_challenge(&verifier);
        (verifier, challenge, "S256")
    } else {
        (String::new(), String::new(), "")
    };
    let url = authorization_url(provider, &state, &challenge);
    json!({
        "name": provider.name,
        "displayName": provider.display_name,
        "logo": "",
        "state": state,
        "authURL": url,
        "authUrl": url,
        "codeVerifier": verifier,
        "codeChallenge": challenge,
        "codeChallengeMethod": method,
    })
}

/// The provider's authorization URL with the standard parameters in name
/// order (as Go's `url.Values.Encode` writes them), ending in an empty
/// `redirect_uri=` for the app to complete.
pub fn authorization_url(provider: &Provider, state: &str, challenge: &str) -> String {
    let scope = provider.scopes.join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", &provider.client_id),
        ("response_type", "code"),
        ("state", state),
    ];
    if !scope.is_empty() {
        params.push(("scope", &scope));
    }
    if !challenge.is_empty() {
        params.push(("code_challenge", challenge));
        params.push(("code_challenge_method", "S256"));
    }
    params.sort_by(|a, b| a.0.cmp(b.0));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    let separator = if provider.auth_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{}{separator}{}&redirect_uri=",
        provider.auth_url,
        query.join("&")
    )
}

/// `GET /api/collections/meta/oauth2-providers`: every provider name the
/// server knows, for settings screens.
pub fn provider_catalogue() -> Value {
    Value::Array(
        PROVIDERS
            .iter()
            .map(|p| json!({"name": p.name, "displayName": p.display_name, "logo": ""}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::auth_options::OAuth2Provider;
    use serde_json::Map;

    #[test]
    fn the_challenge_is_rfc_7636_s256() {
        // RFC 7636 appendix B
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn provider(auth_url: &str, pkce: bool) -> Provider {
        let config = OAuth2Provider {
            pkce: Some(pkce),
            name: "oidc".into(),
            client_id: "my client".into(),
            client_secret: "s3cret".into(),
            auth_url: auth_url.into(),
            token_url: "https://idp.example/token".into(),
            user_info_url: String::new(),
            display_name: String::new(),
            extra: Map::new(),
        };
        providers::resolve(&config).unwrap()
    }

    #[test]
    fn the_authorization_url_has_sorted_parameters_and_an_open_redirect_uri() {
        let url = authorization_url(&provider("https://idp.example/auth", true), "st", "ch");
        assert_eq!(
            url,
            "https://idp.example/auth?client_id=my+client&code_challenge=ch&code_challenge_method=S256\
             &response_type=code&scope=openid+email+profile&state=st&redirect_uri="
        );
        let url = authorization_url(&provider("https://idp.example/auth?x=1", false), "st", "");
        assert!(url.starts_with("https://idp.example/auth?x=1&client_id="));
        assert!(!url.contains("code_challenge"));
    }

    #[test]
    fn entries_start_a_new_flow_and_never_carry_the_secret() {
        let p = provider("https://idp.example/auth", true);
        let a = provider_entry(&p);
        let b = provider_entry(&p);
        assert_ne!(a["state"], b["state"]);
        assert_ne!(a["codeVerifier"], b["codeVerifier"]);
        let verifier = a["codeVerifier"].as_str().unwrap();
        assert_eq!(verifier.len(), VERIFIER_LENGTH);
        assert_eq!(a["codeChallenge"], s256_challenge(verifier));
        assert_eq!(a["state"].as_str().unwrap().len(), STATE_LENGTH);
        assert!(!a.to_string().contains("s3cret"));
        let plain = provider_entry(&provider("https://idp.example/auth", false));
        assert_eq!(plain["codeVerifier"], "");
        assert_eq!(plain["codeChallengeMethod"], "");
    }

    #[test]
    fn the_catalogue_lists_every_known_name() {
        let all = provider_catalogue();
        assert_eq!(all.as_array().unwrap().len(), 32);
        assert_eq!(
            all[0],
            json!({"name": "apple", "displayName": "Apple", "logo": ""})
        );
    }
}
