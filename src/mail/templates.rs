//! Email templates: a subject and body with placeholders (`{APP_NAME}`,
//! `{APP_URL}`, `{TOKEN}`, `{OTP}`, `{ALERT_INFO}`) and their rendering
//! into a message. The default wording lives with the auth options of a
//! collection (`collections::auth_options`); this module only fills it in.

use super::{Address, Message};
use crate::settings::MetaSettings;

/// A subject and an HTML body with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// Template kinds the test-email endpoint accepts.
pub const KINDS: &[&str] = &[
    "verification",
    "password-reset",
    "email-change",
    "otp",
    "login-alert",
];

/// The default template of a kind, or `None` for an unknown kind: the
/// same wording a new auth collection stores in its options, so the test
/// email shows what users will receive.
pub fn default_template(kind: &str) -> Option<Template> {
    use crate::collections::auth_options as defaults;
    let template = match kind {
        "verification" => defaults::verification_template(),
        "password-reset" => defaults::reset_password_template(),
        "email-change" => defaults::confirm_email_change_template(),
        "otp" => defaults::otp_template(),
        "login-alert" => defaults::auth_alert_template(),
        _ => return None,
    };
    Some(Template {
        subject: template.subject,
        body: template.body,
    })
}

/// A sample of a kind for the test-email endpoint, with dummy values.
pub fn sample(kind: &str) -> Option<Template> {
    default_template(kind)
}

impl Template {
    /// Fills the placeholders and addresses the message.
    pub fn render(&self, meta: &MetaSettings, to: &str) -> Message {
        self.render_with(
            meta,
            to,
            &[
                ("{TOKEN}", "SAMPLE_TOKEN"),
                ("{OTP}", "123456"),
                ("{ALERT_INFO}", "a sample device"),
            ],
        )
    }

    pub fn render_with(&self, meta: &MetaSettings, to: &str, values: &[(&str, &str)]) -> Message {
        let fill = |text: &str| {
            let mut out = text
                .replace("{APP_NAME}", &meta.app_name)
                .replace("{APP_URL}", meta.app_url.trim_end_matches('/'));
            for (placeholder, value) in values {
                out = out.replace(placeholder, value);
            }
            out
        };
        let html = fill(&self.body);
        Message {
            from: Address {
                name: meta.sender_name.clone(),
                email: meta.sender_address.clone(),
            },
            to: vec![Address {
                name: String::new(),
                email: to.to_string(),
            }],
            subject: fill(&self.subject),
            text: super::html_to_text(&html),
            html,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_template_with_its_placeholder() {
        for kind in KINDS {
            let t = default_template(kind).unwrap();
            assert!(t.subject.contains("{APP_NAME}"));
        }
        assert!(default_template("otp").unwrap().body.contains("{OTP}"));
        assert!(default_template("verification")
            .unwrap()
            .body
            .contains("{TOKEN}"));
        assert!(default_template("nope").is_none());
    }
}
