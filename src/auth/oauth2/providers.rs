//! The OAuth2 provider table: every provider name the reference knows, with
//! display name, and for the ones Satchel signs in with, the default
//! endpoints, scopes, PKCE default and how their profile reads
//! (`ProfileKind`). A collection's provider entry overrides the defaults
//! (`resolve`).
//!
//! Plain data and lookups: no I/O, no JSON parsing of profiles (that is
//! `profile.rs`), no secrets beyond carrying the configured ones along.

use crate::collections::auth_options::OAuth2Provider;
use serde_json::{Map, Value};

/// How a provider's user data is read into an [`super::profile::AuthUser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// Standard OIDC claims from the user-info URL, or from the id_token
    /// when no user-info URL is configured.
    Oidc,
    Google,
    /// `/user`, plus `/user/emails` for the verified primary address.
    GitHub,
    GitLab,
    Microsoft,
    /// Claims of the id_token, checked against Apple's published keys.
    Apple,
    Discord,
    Facebook,
}

/// One row of the table.
#[derive(Debug)]
pub struct ProviderSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    /// `None`: listed (the reference knows the name) but Satchel cannot sign
    /// in with it yet.
    pub kind: Option<ProfileKind>,
    pub pkce: bool,
    pub scopes: &'static [&'static str],
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub user_info_url: &'static str,
}

const fn listed(name: &'static str, display_name: &'static str) -> ProviderSpec {
    ProviderSpec {
        name,
        display_name,
        kind: None,
        pkce: true,
        scopes: &[],
        auth_url: "",
        token_url: "",
        user_info_url: "",
    }
}

const OIDC_SCOPES: &[&str] = &["openid", "email", "profile"];

const fn oidc(name: &'static str) -> ProviderSpec {
    ProviderSpec {
        name,
        display_name: "OIDC",
        kind: Some(ProfileKind::Oidc),
        pkce: true,
        scopes: OIDC_SCOPES,
        auth_url: "",
        token_url: "",
        user_info_url: "",
    }
}

/// Every provider name, in the reference's order (its
/// `/api/collections/meta/oauth2-providers` lists them so).
pub const PROVIDERS: &[ProviderSpec] = &[
    ProviderSpec {
        name: "apple",
        display_name: "Apple",
        kind: Some(ProfileKind::Apple),
        pkce: true,
        scopes: &["name", "email"],
        auth_url: "https://appleid.apple.com/auth/authorize",
        token_url: "https://appleid.apple.com/auth/token",
        user_info_url: "",
    },
    ProviderSpec {
        name: "google",
        display_name: "Google",
        kind: Some(ProfileKind::Google),
        pkce: true,
        scopes: &[
            "https://www.googleapis.com/auth/userinfo.profile",
            "https://www.googleapis.com/auth/userinfo.email",
        ],
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        user_info_url: "https://www.googleapis.com/oauth2/v3/userinfo",
    },
    ProviderSpec {
        name: "microsoft",
        display_name: "Microsoft",
        kind: Some(ProfileKind::Microsoft),
        pkce: true,
        scopes: &["User.Read"],
        auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        user_info_url: "https://graph.microsoft.com/v1.0/me",
    },
    listed("yandex", "Yandex"),
    ProviderSpec {
        name: "facebook",
        display_name: "Facebook",
        kind: Some(ProfileKind::Facebook),
        pkce: true,
        scopes: &["email"],
        auth_url: "https://www.facebook.com/v3.2/dialog/oauth",
        token_url: "https://graph.facebook.com/v3.2/oauth/access_token",
        user_info_url: "https://graph.facebook.com/me?fields=name,email,picture.type(large)",
    },
    listed("instagram2", "Instagram"),
    ProviderSpec {
        name: "github",
        display_name: "GitHub",
        kind: Some(ProfileKind::GitHub),
        // GitHub ignores the PKCE parameters; sending them does no harm.
        pkce: true,
        scopes: &["read:user", "user:email"],
        auth_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        user_info_url: "https://api.github.com/user",
    },
    ProviderSpec {
        name: "gitlab",
        display_name: "GitLab",
        kind: Some(ProfileKind::GitLab),
        pkce: true,
        scopes: &["read_user"],
        auth_url: "https://gitlab.com/oauth/authorize",
        token_url: "https://gitlab.com/oauth/token",
        user_info_url: "https://gitlab.com/api/v4/user",
    },
    listed("bitbucket", "Bitbucket"),
    listed("gitee", "Gitee"),
    listed("gitea", "Gitea/Forgejo"),
    ProviderSpec {
        name: "discord",
        display_name: "Discord",
        kind: Some(ProfileKind::Discord),
        pkce: true,
        scopes: &["identify", "email"],
        auth_url: "https://discord.com/api/oauth2/authorize",
        token_url: "https://discord.com/api/oauth2/token",
        user_info_url: "https://discord.com/api/users/@me",
    },
    listed("twitter", "X/Twitter"),
    listed("kakao", "Kakao"),
    listed("vk", "ВКонтакте"),
    listed("linear", "Linear"),
    listed("notion", "Notion"),
    listed("monday", "monday.com"),
    listed("lark", "Lark"),
    listed("box", "Box"),
    listed("spotify", "Spotify"),
    listed("trakt", "Trakt"),
    listed("twitch", "Twitch"),
    listed("patreon", "Patreon"),
    listed("strava", "Strava"),
    listed("wakatime", "WakaTime"),
    listed("livechat", "LiveChat"),
    listed("mailcow", "mailcow"),
    listed("planningcenter", "Planning Center"),
    oidc("oidc"),
    oidc("oidc2"),
    oidc("oidc3"),
];

/// The table row for a provider name.
pub fn spec(name: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// A provider ready to use: the table's defaults with the collection's
/// configuration laid over them.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub display_name: String,
    pub kind: ProfileKind,
    pub pkce: bool,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub user_info_url: String,
    pub extra: Map<String, Value>,
}

/// Why a configured provider cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// The name is not in the table.
    Unknown,
    /// The reference knows it; Satchel has no profile reader for it yet.
    NotSupported,
    /// No authorization or token URL (the generic OIDC entries need them).
    MissingUrls,
}

/// The configured provider over its defaults. Empty configured values keep
/// the default, as the reference does.
pub fn resolve(config: &OAuth2Provider) -> Result<Provider, Unusable> {
    let spec = spec(&config.name).ok_or(Unusable::Unknown)?;
    let kind = spec.kind.ok_or(Unusable::NotSupported)?;
    let pick = |configured: &str, default: &str| {
        if configured.is_empty() {
            default.to_string()
        } else {
            configured.to_string()
        }
    };
    let provider = Provider {
        name: spec.name.to_string(),
        display_name: pick(&config.display_name, spec.display_name),
        kind,
        pkce: config.pkce.unwrap_or(spec.pkce),
        scopes: spec.scopes.iter().map(|s| s.to_string()).collect(),
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        auth_url: pick(&config.auth_url, spec.auth_url),
        token_url: pick(&config.token_url, spec.token_url),
        user_info_url: pick(&config.user_info_url, spec.user_info_url),
        extra: config.extra.clone(),
    };
    if provider.auth_url.is_empty() || provider.token_url.is_empty() {
        return Err(Unusable::MissingUrls);
    }
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::auth_options::KNOWN_OAUTH2_PROVIDERS;

    fn config(name: &str) -> OAuth2Provider {
        OAuth2Provider {
            pkce: None,
            name: name.into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            auth_url: String::new(),
            token_url: String::new(),
            user_info_url: String::new(),
            display_name: String::new(),
            extra: Map::new(),
        }
    }

    #[test]
    fn the_table_names_exactly_the_providers_collections_accept() {
        let names: Vec<&str> = PROVIDERS.iter().map(|p| p.name).collect();
        assert_eq!(names, KNOWN_OAUTH2_PROVIDERS);
    }

    #[test]
    fn the_issue_s_providers_all_sign_in() {
        for name in [
            "oidc",
            "oidc2",
            "oidc3",
            "google",
            "github",
            "gitlab",
            "microsoft",
            "apple",
            "discord",
            "facebook",
        ] {
            assert!(spec(name).unwrap().kind.is_some(), "{name}");
        }
    }

    #[test]
    fn configured_values_override_the_defaults_and_blank_ones_do_not() {
        let mut c = config("github");
        c.display_name = "Code host".into();
        c.pkce = Some(false);
        c.token_url = "https://ghe.example.com/token".into();
        let p = resolve(&c).unwrap();
        assert_eq!(p.display_name, "Code host");
        assert!(!p.pkce);
        assert_eq!(p.token_url, "https://ghe.example.com/token");
        assert_eq!(p.auth_url, "https://github.com/login/oauth/authorize");
        assert_eq!(p.scopes, ["read:user", "user:email"]);
    }

    #[test]
    fn unusable_providers_say_why() {
        assert_eq!(resolve(&config("nope")).unwrap_err(), Unusable::Unknown);
        assert_eq!(
            resolve(&config("twitch")).unwrap_err(),
            Unusable::NotSupported
        );
        // the generic OIDC entries have no default endpoints
        assert_eq!(resolve(&config("oidc")).unwrap_err(), Unusable::MissingUrls);
        let mut c = config("oidc2");
        c.auth_url = "https://idp.example.com/auth".into();
        c.token_url = "https://idp.example.com/token".into();
        let p = resolve(&c).unwrap();
        assert_eq!(p.kind, ProfileKind::Oidc);
        assert_eq!(p.display_name, "OIDC");
    }
}
