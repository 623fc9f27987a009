//! Checks of an auth collection's settings: the auth and manage rules,
//! email templates, token secrets and lifetimes, OTP/MFA limits, OAuth2
//! providers, and that identity fields are unique. Errors are keyed like
//! the settings JSON (`data.otp.duration`, `data.oauth2.providers.0.name`).

use serde_json::{json, Map, Value};

use super::messages::{
    at_least, at_most, error, error_with, length_between, nested, put, required,
};
use crate::collections::auth_options::{
    AuthOptions, EmailTemplate, TokenConfig, KNOWN_OAUTH2_PROVIDERS,
};
use crate::collections::index;
use crate::collections::model::Collection;
use crate::error::FieldErrors;

/// Longest token lifetime the reference accepts (about three years).
const MAX_TOKEN_DURATION: i64 = 94_670_856;

/// What the auth checks need besides the settings themselves.
pub struct AuthContext<'a> {
    pub candidate: &'a Collection,
    pub original: Option<&'a AuthOptions>,
    /// True when the stored collection is a system one (its rules are fixed).
    pub original_system: bool,
    /// Checks one rule expression; `Some(error)` when it is invalid.
    pub check_rule: &'a dyn Fn(&str) -> Option<Value>,
}

impl AuthContext<'_> {
    fn rule_error(&self, rule: Option<&str>, old: Option<Option<&str>>) -> Option<Value> {
        rule.filter(|r| !r.is_empty())
            .and_then(|r| (self.check_rule)(r))
            .or_else(|| self.system_rule_change(rule, old))
    }

    fn system_rule_change(&self, rule: Option<&str>, old: Option<Option<&str>>) -> Option<Value> {
        let old = old?;
        (self.original_system && old != rule).then(|| {
            error(
                "validation_collection_system_rule_change",
                "System collection API rule cannot be changed.",
            )
        })
    }
}

/// Every settings error of `auth`, as top-level keys of `data`.
pub fn check_auth_options(ctx: &AuthContext, auth: &AuthOptions) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let original = ctx.original;
    put(
        &mut errors,
        "authRule",
        ctx.rule_error(
            auth.auth_rule.as_deref(),
            original.map(|o| o.auth_rule.as_deref()),
        ),
    );
    let manage_err = if auth.manage_rule.as_deref() == Some("") {
        Some(error(
            "validation_nil_or_not_empty_required",
            "Cannot be blank.",
        ))
    } else {
        ctx.rule_error(
            auth.manage_rule.as_deref(),
            original.map(|o| o.manage_rule.as_deref()),
        )
    };
    put(&mut errors, "manageRule", manage_err);
    put(
        &mut errors,
        "authAlert",
        template_errors(&auth.auth_alert.email_template).map(|e| json!({ "emailTemplate": e })),
    );
    let identity_missing =
        auth.password_auth.enabled && auth.password_auth.identity_fields.is_empty();
    put(
        &mut errors,
        "passwordAuth",
        identity_missing.then(|| json!({ "identityFields": required() })),
    );
    if auth.oauth2.enabled {
        put(
            &mut errors,
            "oauth2",
            providers_errors(auth).map(|e| json!({ "providers": e })),
        );
    }
    put(&mut errors, "otp", otp_errors(auth));
    if auth.mfa.enabled {
        put(
            &mut errors,
            "mfa",
            duration_error(auth.mfa.duration, 10, 86_400).map(|e| json!({ "duration": e })),
        );
    }
    for (key, token) in auth.tokens() {
        put(&mut errors, key, token_errors(token));
    }
    let templates = [
        ("verificationTemplate", &auth.verification_template),
        ("resetPasswordTemplate", &auth.reset_password_template),
        (
            "confirmEmailChangeTemplate",
            &auth.confirm_email_change_template,
        ),
    ];
    for (key, template) in templates {
        put(&mut errors, key, template_errors(template));
    }
    if errors.is_empty() {
        // only checked once the settings are individually sound
        put(&mut errors, "mfa", mfa_errors(ctx, auth));
    }
    if errors.is_empty() && auth.password_auth.enabled {
        put(
            &mut errors,
            "passwordAuth",
            identity_fields_error(ctx.candidate, &auth.password_auth.identity_fields)
                .map(|e| json!({ "identityFields": e })),
        );
    }
    errors
}

fn template_errors(template: &EmailTemplate) -> Option<Value> {
    let mut errors = Map::new();
    if template.subject.is_empty() {
        errors.insert("subject".into(), required());
    }
    if template.body.is_empty() {
        errors.insert("body".into(), required());
    }
    nested(errors)
}

/// Required, then within `min..=max`.
fn duration_error(value: i64, min: i64, max: i64) -> Option<Value> {
    if value == 0 {
        Some(required())
    } else if value < min {
        Some(at_least(min))
    } else if value > max {
        Some(at_most(max))
    } else {
        None
    }
}

fn token_errors(token: &TokenConfig) -> Option<Value> {
    let mut errors = Map::new();
    let secret_len = token.secret.chars().count();
    let secret_err = if secret_len == 0 {
        Some(required())
    } else if !(30..=255).contains(&secret_len) {
        Some(length_between(30, 255))
    } else {
        None
    };
    if let Some(e) = secret_err {
        errors.insert("secret".into(), e);
    }
    if let Some(e) = duration_error(token.duration, 10, MAX_TOKEN_DURATION) {
        errors.insert("duration".into(), e);
    }
    nested(errors)
}

fn otp_errors(auth: &AuthOptions) -> Option<Value> {
    let otp = &auth.otp;
    let mut errors = Map::new();
    if otp.enabled {
        if let Some(e) = duration_error(otp.duration, 10, 86_400) {
            errors.insert("duration".into(), e);
        }
        let length_err = if otp.length == 0 {
            Some(required())
        } else {
            (otp.length < 4).then(|| at_least(4))
        };
        if let Some(e) = length_err {
            errors.insert("length".into(), e);
        }
    }
    // the template is checked even while OTP is off: it can be sent on its own
    if let Some(e) = template_errors(&otp.email_template) {
        errors.insert("emailTemplate".into(), e);
    }
    nested(errors)
}

fn providers_errors(auth: &AuthOptions) -> Option<Value> {
    let providers = &auth.oauth2.providers;
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        if !p.name.is_empty() && seen.contains(&p.name.as_str()) {
            let err = error_with(
                "validation_duplicated_provider",
                &format!("The provider {} is already registered.", p.name),
                json!({ "name": p.name }),
            );
            return Some(json!({ i.to_string(): { "name": err } }));
        }
        seen.push(&p.name);
    }
    let mut errors = Map::new();
    for (i, p) in providers.iter().enumerate() {
        let mut own = Map::new();
        let name_err = if p.name.is_empty() {
            Some(required())
        } else {
            (!KNOWN_OAUTH2_PROVIDERS.contains(&p.name.as_str())).then(|| {
                error_with(
                    "validation_missing_provider",
                    &format!("Invalid or missing provider with name {}.", p.name),
                    json!({ "name": p.name }),
                )
            })
        };
        put(&mut own, "name", name_err);
        put(&mut own, "clientId", p.client_id.is_empty().then(required));
        put(
            &mut own,
            "clientSecret",
            p.client_secret.is_empty().then(required),
        );
        for (key, url) in [
            ("authURL", &p.auth_url),
            ("tokenURL", &p.token_url),
            ("userInfoURL", &p.user_info_url),
        ] {
            put(
                &mut own,
                key,
                (!url.is_empty() && !is_url(url))
                    .then(|| error("validation_is_url", "Must be a valid URL")),
            );
        }
        if let Some(e) = nested(own) {
            errors.insert(i.to_string(), e);
        }
    }
    nested(errors)
}

/// An absolute http(s) (or other scheme) URL with a host.
fn is_url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !host.is_empty()
        && !text.contains(char::is_whitespace)
}

fn mfa_errors(ctx: &AuthContext, auth: &AuthOptions) -> Option<Value> {
    if !auth.mfa.enabled {
        return None;
    }
    let methods = [
        auth.password_auth.enabled,
        auth.oauth2.enabled,
        auth.otp.enabled,
    ];
    if methods.iter().filter(|on| **on).count() < 2 {
        let err = error(
            "validation_mfa_not_enough_auths",
            "MFA requires at least 2 auth methods to be enabled.",
        );
        return Some(json!({ "enabled": err }));
    }
    let rule = auth.mfa.rule.as_str();
    if rule.is_empty() {
        return None;
    }
    let old = ctx.original.map(|o| Some(o.mfa.rule.as_str()));
    ctx.rule_error(Some(rule), old)
        .map(|e| json!({ "rule": e }))
}

fn identity_fields_error(candidate: &Collection, names: &[String]) -> Option<Value> {
    names.iter().find_map(|name| {
        if candidate.field(name).is_none() {
            return Some(error_with(
                "validation_missing_field",
                &format!("Invalid or missing field {name}."),
                json!({ "fieldName": name }),
            ));
        }
        (!index::has_single_column_unique(&candidate.indexes, name)).then(|| {
            error_with(
                "validation_missing_unique_constraint",
                &format!("The field {name} doesn't have a UNIQUE constraint."),
                json!({ "fieldName": name }),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_url("https://example.com/auth"));
        assert!(is_url("http://localhost:8080"));
        assert!(!is_url("example.com"));
        assert!(!is_url("https://"));
        assert!(!is_url("https://a b"));
    }
}
