//! Reading a provider's user data into one shape, [`Identity`]: who the
//! person is at the provider (`id`), what they are called, and above all
//! which email address the provider vouches for.
//!
//! `Identity::email` only ever holds an address the provider verified
//! (`email_verified`, GitLab's `confirmed_at`, Discord's `verified`, ...).
//! An address a provider returns without such a promise goes to
//! `unverified_email` at most, which may become a new account's address but
//! never links to, or verifies, an existing one. Pure functions over JSON.

use super::providers::ProfileKind;
use serde_json::{Map, Value};

/// A person as one provider describes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The provider's stable id for the person (`_externalAuths.providerId`).
    pub id: String,
    pub name: String,
    pub username: String,
    /// An address the provider verified, or `""`.
    pub email: String,
    /// An address the provider returned without vouching for it (Microsoft
    /// Graph's `mail`, which tenant admins can set to anything).
    pub unverified_email: String,
    pub avatar_url: String,
    /// The provider's data as received.
    pub raw_user: Map<String, Value>,
}

/// Reads `raw` as `kind` describes it. The GitHub email fallback and
/// Apple's id_token are fetched elsewhere; this only reads JSON.
pub fn read(kind: ProfileKind, raw: Map<String, Value>) -> Identity {
    let mut identity = match kind {
        ProfileKind::Oidc => oidc(&raw),
        ProfileKind::Google => google(&raw),
        ProfileKind::GitHub => github(&raw),
        ProfileKind::GitLab => gitlab(&raw),
        ProfileKind::Microsoft => microsoft(&raw),
        ProfileKind::Apple => apple(&raw),
        ProfileKind::Discord => discord(&raw),
        ProfileKind::Facebook => facebook(&raw),
    };
    identity.raw_user = raw;
    identity
}

/// A text value; numbers (GitHub's and GitLab's integer ids) as digits.
fn text(raw: &Map<String, Value>, key: &str) -> String {
    match raw.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A JSON value read the way the reference's `cast.ToBool` reads it:
/// `true`, `"true"`, `"1"`, `"t"`, a non-zero number.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// The email, only when `verified`.
fn vouched(raw: &Map<String, Value>, verified: bool) -> String {
    if verified {
        text(raw, "email")
    } else {
        String::new()
    }
}

fn oidc(raw: &Map<String, Value>) -> Identity {
    Identity {
        id: text(raw, "sub"),
        name: text(raw, "name"),
        username: text(raw, "preferred_username"),
        email: vouched(raw, truthy(raw.get("email_verified"))),
        avatar_url: text(raw, "picture"),
        ..Identity::default()
    }
}

fn google(raw: &Map<String, Value>) -> Identity {
    Identity {
        username: String::new(),
        ..oidc(raw)
    }
}

fn github(raw: &Map<String, Value>) -> Identity {
    Identity {
        id: text(raw, "id"),
        name: text(raw, "name"),
        username: text(raw, "login"),
        // GitHub only lets a verified address be the public profile email.
        email: text(raw, "email"),
        avatar_url: text(raw, "avatar_url"),
        ..Identity::default()
    }
}

/// The verified primary address from GitHub's `/user/emails` list.
pub fn github_primary_email(emails: &Value) -> String {
    emails
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| truthy(e.get("verified")) && truthy(e.get("primary")))
        .and_then(|e| e.get("email"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn gitlab(raw: &Map<String, Value>) -> Identity {
    let confirmed = crate::datetime::parse_millis(&text(raw, "confirmed_at")).is_some();
    Identity {
        id: text(raw, "id"),
        name: text(raw, "name"),
        username: text(raw, "username"),
        email: vouched(raw, confirmed),
        avatar_url: text(raw, "avatar_url"),
        ..Identity::default()
    }
}

fn microsoft(raw: &Map<String, Value>) -> Identity {
    Identity {
        id: text(raw, "id"),
        name: text(raw, "displayName"),
        unverified_email: text(raw, "mail"),
        ..Identity::default()
    }
}

fn apple(raw: &Map<String, Value>) -> Identity {
    let mut name = text(raw, "name");
    if name.is_empty() {
        // Only on the first authorization, and only in the redirect's
        // `user` object: `{"name": {"firstName", "lastName"}}`.
        let part = |key: &str| {
            raw.get("user")
                .and_then(|u| u.get("name"))
                .and_then(|n| n.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        name = format!("{} {}", part("firstName"), part("lastName"))
            .trim()
            .to_string();
    }
    Identity {
        id: text(raw, "sub"),
        name,
        email: vouched(raw, truthy(raw.get("email_verified"))),
        ..Identity::default()
    }
}

fn discord(raw: &Map<String, Value>) -> Identity {
    let id = text(raw, "id");
    let username = text(raw, "username");
    Identity {
        name: format!("{username}#{}", text(raw, "discriminator")),
        avatar_url: format!(
            "https://cdn.discordapp.com/avatars/{id}/{}.png",
            text(raw, "avatar")
        ),
        email: vouched(raw, truthy(raw.get("verified"))),
        id,
        username,
        ..Identity::default()
    }
}

fn facebook(raw: &Map<String, Value>) -> Identity {
    let avatar_url = raw
        .get("picture")
        .and_then(|p| p.get("data"))
        .and_then(|d| d.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Identity {
        id: text(raw, "id"),
        name: text(raw, "name"),
        // Facebook's Graph API only returns a confirmed address.
        email: text(raw, "email"),
        avatar_url,
        ..Identity::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn oidc_claims_and_the_verified_flag() {
        let me = read(
            ProfileKind::Oidc,
            raw(
                json!({"sub": "s1", "name": "Ada", "preferred_username": "ada",
                       "picture": "https://x/a.png", "email": "a@x.com", "email_verified": true}),
            ),
        );
        assert_eq!(
            (me.id.as_str(), me.name.as_str(), me.username.as_str()),
            ("s1", "Ada", "ada")
        );
        assert_eq!(me.email, "a@x.com");
        assert_eq!(me.avatar_url, "https://x/a.png");
        assert_eq!(me.raw_user["sub"], "s1");
        // Some providers send the flag as a string.
        let me = read(
            ProfileKind::Oidc,
            raw(json!({"sub": "s", "email": "a@x.com", "email_verified": "true"})),
        );
        assert_eq!(me.email, "a@x.com");
    }

    #[test]
    fn an_email_the_provider_did_not_verify_is_dropped() {
        for flag in [json!(false), json!("false"), json!(null), json!(0)] {
            let me = read(
                ProfileKind::Oidc,
                raw(json!({"sub": "s", "email": "victim@x.com", "email_verified": flag})),
            );
            assert_eq!(me.email, "", "{flag}");
            assert_eq!(me.unverified_email, "");
        }
        let me = read(
            ProfileKind::Oidc,
            raw(json!({"sub": "s", "email": "victim@x.com"})),
        );
        assert_eq!(me.email, "");
        let me = read(
            ProfileKind::Discord,
            raw(json!({"id": "1", "username": "u", "email": "v@x.com", "verified": false})),
        );
        assert_eq!(me.email, "");
        let me = read(
            ProfileKind::GitLab,
            raw(json!({"id": 1, "email": "v@x.com", "confirmed_at": null})),
        );
        assert_eq!(me.email, "");
    }

    #[test]
    fn microsoft_mail_is_never_a_vouched_address() {
        let me = read(
            ProfileKind::Microsoft,
            raw(json!({"id": "m1", "displayName": "Ms", "mail": "boss@corp.example"})),
        );
        assert_eq!(me.email, "");
        assert_eq!(me.unverified_email, "boss@corp.example");
        assert_eq!(me.name, "Ms");
    }

    #[test]
    fn github_gitlab_discord_facebook_apple_shapes() {
        let gh = read(
            ProfileKind::GitHub,
            raw(
                json!({"id": 42, "login": "octo", "name": "Octo", "email": null, "avatar_url": "https://a"}),
            ),
        );
        assert_eq!(
            (gh.id.as_str(), gh.username.as_str(), gh.email.as_str()),
            ("42", "octo", "")
        );
        let emails = json!([
            {"email": "old@x.com", "verified": true, "primary": false},
            {"email": "unv@x.com", "verified": false, "primary": true},
            {"email": "main@x.com", "verified": true, "primary": true}
        ]);
        assert_eq!(github_primary_email(&emails), "main@x.com");
        assert_eq!(github_primary_email(&json!({"message": "nope"})), "");

        let gl = read(
            ProfileKind::GitLab,
            raw(
                json!({"id": 7, "username": "gl", "email": "g@x.com", "confirmed_at": "2020-01-02T03:04:05Z"}),
            ),
        );
        assert_eq!((gl.id.as_str(), gl.email.as_str()), ("7", "g@x.com"));

        let dc = read(
            ProfileKind::Discord,
            raw(
                json!({"id": "9", "username": "dd", "discriminator": "0001", "avatar": "abc",
                       "email": "d@x.com", "verified": true}),
            ),
        );
        assert_eq!(dc.name, "dd#0001");
        assert_eq!(
            dc.avatar_url,
            "https://cdn.discordapp.com/avatars/9/abc.png"
        );
        assert_eq!(dc.email, "d@x.com");

        let fb = read(
            ProfileKind::Facebook,
            raw(json!({"id": "f", "name": "F", "email": "f@x.com",
                       "picture": {"data": {"url": "https://p"}}})),
        );
        assert_eq!(
            (fb.avatar_url.as_str(), fb.email.as_str()),
            ("https://p", "f@x.com")
        );

        let ap = read(
            ProfileKind::Apple,
            raw(
                json!({"sub": "a", "email": "a@privaterelay.appleid.com", "email_verified": "true",
                       "user": {"name": {"firstName": "Ann", "lastName": "Lee"}}}),
            ),
        );
        assert_eq!(ap.name, "Ann Lee");
        assert_eq!(ap.email, "a@privaterelay.appleid.com");
    }
}
