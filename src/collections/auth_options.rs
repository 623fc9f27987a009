//! The settings of an auth collection (rules, login methods, token
//! lifetimes and secrets, email templates) as typed values, with the
//! reference's defaults for a new auth collection. They live in the
//! `options` column of `_collections` and flatten into the collection JSON.
//!
//! The email texts are Satchel's own wording; only the placeholders
//! (`{APP_NAME}`, `{APP_URL}`, `{TOKEN}`, `{OTP}`, `{ALERT_INFO}`) and the
//! link paths are shared with the reference, because clients depend on them.
//! This module never decides who may log in; the auth code reads these values.

use serde_json::{json, Map, Value};

use super::json::{read_bool, read_i64, read_opt_str, read_str, read_str_list, WrongType};
use super::model::Collection;
use crate::security::random;

/// Names the reference accepts for `oauth2.providers[].name`.
pub const KNOWN_OAUTH2_PROVIDERS: &[&str] = &[
    "apple",
    "google",
    "microsoft",
    "yandex",
    "facebook",
    "instagram2",
    "github",
    "gitlab",
    "bitbucket",
    "gitee",
    "gitea",
    "discord",
    "twitter",
    "kakao",
    "vk",
    "linear",
    "notion",
    "monday",
    "lark",
    "box",
    "spotify",
    "trakt",
    "twitch",
    "patreon",
    "strava",
    "wakatime",
    "livechat",
    "mailcow",
    "planningcenter",
    "oidc",
    "oidc2",
    "oidc3",
];

/// Length of the random token secrets the server generates.
pub const SECRET_LENGTH: usize = 50;

/// A fresh token-signing secret.
pub fn new_secret() -> String {
    random::string_from(random::ALPHANUMERIC, SECRET_LENGTH)
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailTemplate {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Signs the tokens of this kind; rotating it invalidates them all.
    pub secret: String,
    /// Lifetime in seconds.
    pub duration: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthAlert {
    pub enabled: bool,
    pub email_template: EmailTemplate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2Provider {
    pub pkce: Option<bool>,
    pub name: String,
    pub client_id: String,
    /// Write-only: stored, never returned by the API.
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub user_info_url: String,
    pub display_name: String,
    pub extra: Map<String, Value>,
}

/// Which record fields the OAuth2 user data fills in (`""` = none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MappedFields {
    pub id: String,
    pub name: String,
    pub username: String,
    pub avatar_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    pub providers: Vec<OAuth2Provider>,
    pub mapped_fields: MappedFields,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PasswordAuth {
    pub enabled: bool,
    pub identity_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mfa {
    pub enabled: bool,
    pub duration: i64,
    /// Records the MFA requirement applies to (`""` = everyone).
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Otp {
    pub enabled: bool,
    pub duration: i64,
    pub length: i64,
    pub email_template: EmailTemplate,
}

/// All settings of an auth collection.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthOptions {
    /// `None`: nobody may authenticate; `""`: anyone with valid credentials.
    pub auth_rule: Option<String>,
    pub manage_rule: Option<String>,
    pub auth_alert: AuthAlert,
    pub oauth2: OAuth2,
    pub password_auth: PasswordAuth,
    pub mfa: Mfa,
    pub otp: Otp,
    pub auth_token: TokenConfig,
    pub password_reset_token: TokenConfig,
    pub email_change_token: TokenConfig,
    pub verification_token: TokenConfig,
    pub file_token: TokenConfig,
    pub verification_template: EmailTemplate,
    pub reset_password_template: EmailTemplate,
    pub confirm_email_change_template: EmailTemplate,
}

impl AuthOptions {
    /// The settings of a new auth collection, with fresh random secrets.
    pub fn defaults() -> AuthOptions {
        let token = |duration| TokenConfig {
            secret: new_secret(),
            duration,
        };
        AuthOptions {
            auth_rule: Some(String::new()),
            manage_rule: None,
            auth_alert: AuthAlert {
                enabled: true,
                email_template: auth_alert_template(),
            },
            oauth2: OAuth2 {
                providers: Vec::new(),
                mapped_fields: MappedFields::default(),
                enabled: false,
            },
            password_auth: PasswordAuth {
                enabled: true,
                identity_fields: vec!["email".to_string()],
            },
            mfa: Mfa {
                enabled: false,
                duration: 600,
                rule: String::new(),
            },
            otp: Otp {
                enabled: false,
                duration: 180,
                length: 8,
                email_template: otp_template(),
            },
            auth_token: token(432_000),
            password_reset_token: token(1800),
            email_change_token: token(1800),
            verification_token: token(86_400),
            file_token: token(180),
            verification_template: verification_template(),
            reset_password_template: reset_password_template(),
            confirm_email_change_template: confirm_email_change_template(),
        }
    }

    /// The settings stored in an auth collection's `options`; `None` for
    /// other collection types or unreadable options.
    pub fn from_collection(collection: &Collection) -> Option<AuthOptions> {
        if !collection.is_auth() {
            return None;
        }
        AuthOptions::from_json(&collection.options).ok()
    }

    /// Decodes the options object; missing keys take the zero value (as
    /// the reference's decoder leaves them), wrong JSON types are errors.
    pub fn from_json(obj: &Map<String, Value>) -> Result<AuthOptions, WrongType> {
        let empty = Map::new();
        let sub = |key: &str| -> Result<&Map<String, Value>, WrongType> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(&empty),
                Some(Value::Object(o)) => Ok(o),
                Some(_) => Err(WrongType {
                    key: key.to_string(),
                }),
            }
        };
        let auth_alert = sub("authAlert")?;
        let oauth2 = sub("oauth2")?;
        let password_auth = sub("passwordAuth")?;
        let mfa = sub("mfa")?;
        let otp = sub("otp")?;
        Ok(AuthOptions {
            auth_rule: read_opt_str(obj, "authRule", None)?,
            manage_rule: read_opt_str(obj, "manageRule", None)?,
            auth_alert: AuthAlert {
                enabled: read_bool(auth_alert, "enabled", false)?,
                email_template: template_from(auth_alert, "emailTemplate")?,
            },
            oauth2: OAuth2 {
                providers: providers_from(oauth2)?,
                mapped_fields: mapped_fields_from(oauth2)?,
                enabled: read_bool(oauth2, "enabled", false)?,
            },
            password_auth: PasswordAuth {
                enabled: read_bool(password_auth, "enabled", false)?,
                identity_fields: read_str_list(password_auth, "identityFields")?,
            },
            mfa: Mfa {
                enabled: read_bool(mfa, "enabled", false)?,
                duration: read_i64(mfa, "duration", 0)?,
                rule: read_str(mfa, "rule", "")?,
            },
            otp: Otp {
                enabled: read_bool(otp, "enabled", false)?,
                duration: read_i64(otp, "duration", 0)?,
                length: read_i64(otp, "length", 0)?,
                email_template: template_from(otp, "emailTemplate")?,
            },
            auth_token: token_from(sub("authToken")?)?,
            password_reset_token: token_from(sub("passwordResetToken")?)?,
            email_change_token: token_from(sub("emailChangeToken")?)?,
            verification_token: token_from(sub("verificationToken")?)?,
            file_token: token_from(sub("fileToken")?)?,
            verification_template: template_from(obj, "verificationTemplate")?,
            reset_password_template: template_from(obj, "resetPasswordTemplate")?,
            confirm_email_change_template: template_from(obj, "confirmEmailChangeTemplate")?,
        })
    }

    /// The options object in the reference's key order, secrets included
    /// (this is what is stored; `Collection::to_api_json` strips them).
    pub fn to_json(&self) -> Map<String, Value> {
        let rule = |r: &Option<String>| r.as_ref().map_or(Value::Null, |s| json!(s));
        let mut out = Map::new();
        out.insert("authRule".into(), rule(&self.auth_rule));
        out.insert("manageRule".into(), rule(&self.manage_rule));
        out.insert(
            "authAlert".into(),
            json!({"enabled": self.auth_alert.enabled,
                   "emailTemplate": template_json(&self.auth_alert.email_template)}),
        );
        out.insert("oauth2".into(), oauth2_json(&self.oauth2));
        out.insert(
            "passwordAuth".into(),
            json!({"enabled": self.password_auth.enabled,
                   "identityFields": self.password_auth.identity_fields}),
        );
        out.insert(
            "mfa".into(),
            json!({"enabled": self.mfa.enabled, "duration": self.mfa.duration, "rule": self.mfa.rule}),
        );
        out.insert(
            "otp".into(),
            json!({"enabled": self.otp.enabled, "duration": self.otp.duration,
                   "length": self.otp.length,
                   "emailTemplate": template_json(&self.otp.email_template)}),
        );
        for (key, token) in self.tokens() {
            out.insert(
                key.into(),
                json!({"secret": token.secret, "duration": token.duration}),
            );
        }
        out.insert(
            "verificationTemplate".into(),
            template_json(&self.verification_template),
        );
        out.insert(
            "resetPasswordTemplate".into(),
            template_json(&self.reset_password_template),
        );
        out.insert(
            "confirmEmailChangeTemplate".into(),
            template_json(&self.confirm_email_change_template),
        );
        out
    }

    /// The five token configs with their JSON keys.
    pub fn tokens(&self) -> [(&'static str, &TokenConfig); 5] {
        [
            ("authToken", &self.auth_token),
            ("passwordResetToken", &self.password_reset_token),
            ("emailChangeToken", &self.email_change_token),
            ("verificationToken", &self.verification_token),
            ("fileToken", &self.file_token),
        ]
    }

    pub fn tokens_mut(&mut self) -> [&mut TokenConfig; 5] {
        [
            &mut self.auth_token,
            &mut self.password_reset_token,
            &mut self.email_change_token,
            &mut self.verification_token,
            &mut self.file_token,
        ]
    }
}

fn template_from(obj: &Map<String, Value>, key: &str) -> Result<EmailTemplate, WrongType> {
    let empty = Map::new();
    let t = match obj.get(key) {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(WrongType {
                key: key.to_string(),
            })
        }
    };
    Ok(EmailTemplate {
        subject: read_str(t, "subject", "")?,
        body: read_str(t, "body", "")?,
    })
}

fn token_from(obj: &Map<String, Value>) -> Result<TokenConfig, WrongType> {
    Ok(TokenConfig {
        secret: read_str(obj, "secret", "")?,
        duration: read_i64(obj, "duration", 0)?,
    })
}

fn mapped_fields_from(oauth2: &Map<String, Value>) -> Result<MappedFields, WrongType> {
    let empty = Map::new();
    let m = match oauth2.get("mappedFields") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(WrongType {
                key: "oauth2".into(),
            })
        }
    };
    Ok(MappedFields {
        id: read_str(m, "id", "")?,
        name: read_str(m, "name", "")?,
        username: read_str(m, "username", "")?,
        avatar_url: read_str(m, "avatarURL", "")?,
    })
}

fn providers_from(oauth2: &Map<String, Value>) -> Result<Vec<OAuth2Provider>, WrongType> {
    let items = match oauth2.get("providers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(WrongType {
                key: "oauth2".into(),
            })
        }
    };
    items
        .iter()
        .map(|item| {
            let p = item.as_object().ok_or(WrongType {
                key: "oauth2".into(),
            })?;
            let pkce = match p.get("pkce") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => {
                    return Err(WrongType {
                        key: "oauth2".into(),
                    })
                }
            };
            let extra = match p.get("extra") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(o)) => o.clone(),
                Some(_) => {
                    return Err(WrongType {
                        key: "oauth2".into(),
                    })
                }
            };
            Ok(OAuth2Provider {
                pkce,
                name: read_str(p, "name", "")?,
                client_id: read_str(p, "clientId", "")?,
                client_secret: read_str(p, "clientSecret", "")?,
                auth_url: read_str(p, "authURL", "")?,
                token_url: read_str(p, "tokenURL", "")?,
                user_info_url: read_str(p, "userInfoURL", "")?,
                display_name: read_str(p, "displayName", "")?,
                extra,
            })
        })
        .collect()
}

fn template_json(t: &EmailTemplate) -> Value {
    json!({"subject": t.subject, "body": t.body})
}

fn oauth2_json(o: &OAuth2) -> Value {
    let providers: Vec<Value> = o
        .providers
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("pkce".into(), p.pkce.map_or(Value::Null, Value::Bool));
            m.insert("name".into(), json!(p.name));
            m.insert("clientId".into(), json!(p.client_id));
            m.insert("clientSecret".into(), json!(p.client_secret));
            m.insert("authURL".into(), json!(p.auth_url));
            m.insert("tokenURL".into(), json!(p.token_url));
            m.insert("userInfoURL".into(), json!(p.user_info_url));
            m.insert("displayName".into(), json!(p.display_name));
            m.insert("extra".into(), Value::Object(p.extra.clone()));
            Value::Object(m)
        })
        .collect();
    let f = &o.mapped_fields;
    json!({
        "providers": providers,
        "mappedFields": {"id": f.id, "name": f.name, "username": f.username, "avatarURL": f.avatar_url},
        "enabled": o.enabled,
    })
}

// ---------------------------------------------------------------------------
// Default email templates (Satchel's wording).

const SIGNATURE: &str = "<p>\n  Best regards,<br/>\n  The {APP_NAME} team\n</p>";

fn button(path: &str, label: &str) -> String {
    format!(
        "<p>\n  <a class=\"btn\" href=\"{{APP_URL}}/_/#/auth/{path}/{{TOKEN}}\" target=\"_blank\" rel=\"noopener\">{label}</a>\n</p>"
    )
}

pub fn verification_template() -> EmailTemplate {
    EmailTemplate {
        subject: "Confirm your {APP_NAME} email address".into(),
        body: format!(
            "<p>Hi,</p>\n<p>Welcome to {{APP_NAME}}! Please confirm that this email address belongs to you.</p>\n{}\n<p><i>Did not sign up? Then you can safely ignore this message.</i></p>\n{SIGNATURE}",
            button("confirm-verification", "Confirm my address")
        ),
    }
}

pub fn reset_password_template() -> EmailTemplate {
    EmailTemplate {
        subject: "Choose a new {APP_NAME} password".into(),
        body: format!(
            "<p>Hi,</p>\n<p>A password reset was requested for your {{APP_NAME}} account. Use the button below to pick a new password.</p>\n{}\n<p><i>Did not ask for this? Then no action is needed; your password stays as it is.</i></p>\n{SIGNATURE}",
            button("confirm-password-reset", "Pick a new password")
        ),
    }
}

pub fn confirm_email_change_template() -> EmailTemplate {
    EmailTemplate {
        subject: "Confirm the new email address of your {APP_NAME} account".into(),
        body: format!(
            "<p>Hi,</p>\n<p>Your {{APP_NAME}} account is about to move to this email address. Please confirm the change below.</p>\n{}\n<p><i>Did not ask for this? Then ignore this message and your current address stays in use.</i></p>\n{SIGNATURE}",
            button("confirm-email-change", "Use this address")
        ),
    }
}

pub fn otp_template() -> EmailTemplate {
    EmailTemplate {
        subject: "Your {APP_NAME} sign-in code".into(),
        body: format!(
            "<p>Hi,</p>\n<p>Here is your one-time sign-in code: <strong>{{OTP}}</strong></p>\n<p><i>Did not try to sign in? Then you can ignore this message.</i></p>\n{SIGNATURE}"
        ),
    }
}

pub fn auth_alert_template() -> EmailTemplate {
    EmailTemplate {
        subject: "New sign-in to your {APP_NAME} account".into(),
        body: format!(
            "<p>Hi,</p>\n<p>Your {{APP_NAME}} account was just used to sign in from a device or place we had not seen before:</p>\n<p><em>{{ALERT_INFO}}</em></p>\n<p><strong>If this was not you, change your {{APP_NAME}} password right away; doing so signs out every other session.</strong></p>\n<p>If it was you, there is nothing to do.</p>\n{SIGNATURE}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference_shape_and_values() {
        let options = AuthOptions::defaults().to_json();
        let keys: Vec<&str> = options.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "authRule",
                "manageRule",
                "authAlert",
                "oauth2",
                "passwordAuth",
                "mfa",
                "otp",
                "authToken",
                "passwordResetToken",
                "emailChangeToken",
                "verificationToken",
                "fileToken",
                "verificationTemplate",
                "resetPasswordTemplate",
                "confirmEmailChangeTemplate"
            ]
        );
        assert_eq!(options["authToken"]["duration"], 432_000);
        assert_eq!(options["verificationToken"]["duration"], 86_400);
        assert_eq!(
            options["mfa"],
            json!({"enabled": false, "duration": 600, "rule": ""})
        );
        assert_eq!(options["otp"]["length"], 8);
        assert_eq!(
            options["oauth2"],
            json!({"providers": [], "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""}, "enabled": false})
        );
        let secret = options["fileToken"]["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 50);
        assert_ne!(secret, options["authToken"]["secret"].as_str().unwrap());
    }

    #[test]
    fn json_round_trips() {
        let mut options = AuthOptions::defaults();
        options.oauth2.providers.push(OAuth2Provider {
            pkce: Some(true),
            name: "google".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            auth_url: String::new(),
            token_url: String::new(),
            user_info_url: String::new(),
            display_name: String::new(),
            extra: Map::new(),
        });
        let parsed = AuthOptions::from_json(&options.to_json()).unwrap();
        assert_eq!(parsed, options);
    }

    #[test]
    fn templates_keep_the_placeholders_clients_rely_on() {
        assert!(verification_template()
            .body
            .contains("{APP_URL}/_/#/auth/confirm-verification/{TOKEN}"));
        assert!(reset_password_template()
            .body
            .contains("{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}"));
        assert!(confirm_email_change_template()
            .body
            .contains("{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}"));
        assert!(otp_template().body.contains("{OTP}"));
        assert!(auth_alert_template().body.contains("{ALERT_INFO}"));
        // the code must be the only digit run a mail reader finds
        assert!(!otp_template().body.chars().any(|c| c.is_ascii_digit()));
    }
}
