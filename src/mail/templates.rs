//! Email templates: the default wording of Satchel's auth emails and their
//! placeholders (`{APP_NAME}`, `{APP_URL}`, `{TOKEN}`, `{OTP}`,
//! `{ALERT_INFO}`), as stored in an auth collection's options.

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

fn paragraphs(lines: &[&str]) -> String {
    let mut html: String = lines.iter().map(|l| format!("<p>{l}</p>\n")).collect();
    html.push_str("<p>The {APP_NAME} team</p>");
    html
}

/// The default template of a kind, or `None` for an unknown kind.
pub fn default_template(kind: &str) -> Option<Template> {
    let (subject, body) = match kind {
        "verification" => (
            "Confirm your email for {APP_NAME}",
            paragraphs(&[
                "Hi,",
                "Please confirm that this email address belongs to you:",
                "<a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-verification/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Confirm email</a>",
                "<i>If you did not sign up, you can safely ignore this message.</i>",
            ]),
        ),
        "password-reset" => (
            "Password reset for {APP_NAME}",
            paragraphs(&[
                "Hi,",
                "Someone asked to reset the password of your account. Choose a new one here:",
                "<a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Choose a new password</a>",
                "<i>If it was not you, ignore this message: your password stays as it is.</i>",
            ]),
        ),
        "email-change" => (
            "Confirm your new email for {APP_NAME}",
            paragraphs(&[
                "Hi,",
                "Please confirm the new email address of your account:",
                "<a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Confirm new email</a>",
                "<i>If you did not ask for this change, ignore this message.</i>",
            ]),
        ),
        "otp" => (
            "Your {APP_NAME} sign-in code",
            paragraphs(&["Hi,", "Your one-time sign-in code is <strong>{OTP}</strong>.", "<i>If you did not try to sign in, ignore this message.</i>"]),
        ),
        "login-alert" => (
            "New sign-in to your {APP_NAME} account",
            paragraphs(&[
                "Hi,",
                "Your account was just used to sign in from a new location:",
                "<em>{ALERT_INFO}</em>",
                "<strong>If this was not you, change your {APP_NAME} password now; that signs out every other session.</strong>",
            ]),
        ),
        _ => return None,
    };
    Some(Template {
        subject: subject.to_string(),
        body,
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
