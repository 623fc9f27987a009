//! The auth mails (verification, password reset, email change, OTP, login
//! alert): each built from its collection's own template with the
//! placeholders `{APP_NAME}`, `{APP_URL}`, `{TOKEN}`, `{OTP}` and
//! `{ALERT_INFO}`, and handed to the outbox.
//!
//! It never sends on the calling thread and never decides whether a mail
//! should go out (the flows do); values a client controls (the user agent
//! in a login alert) are HTML-escaped before they reach a body.

use crate::app::App;
use crate::collections::auth_options::{AuthOptions, EmailTemplate};
use crate::mail::outbox::Delivered;
use crate::mail::templates::Template;
use crate::mail::{Message, Outgoing};
use crate::settings::Settings;

/// What a mail carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMail {
    Verification { token: String },
    PasswordReset { token: String },
    EmailChange { token: String },
    Otp { code: String },
    LoginAlert { info: String },
}

impl AuthMail {
    fn template<'o>(&self, options: &'o AuthOptions) -> &'o EmailTemplate {
        match self {
            AuthMail::Verification { .. } => &options.verification_template,
            AuthMail::PasswordReset { .. } => &options.reset_password_template,
            AuthMail::EmailChange { .. } => &options.confirm_email_change_template,
            AuthMail::Otp { .. } => &options.otp.email_template,
            AuthMail::LoginAlert { .. } => &options.auth_alert.email_template,
        }
    }

    fn placeholders(&self) -> Vec<(&'static str, String)> {
        match self {
            AuthMail::Verification { token }
            | AuthMail::PasswordReset { token }
            | AuthMail::EmailChange { token } => vec![("{TOKEN}", token.clone())],
            AuthMail::Otp { code } => vec![("{OTP}", code.clone())],
            AuthMail::LoginAlert { info } => vec![("{ALERT_INFO}", escape_html(info))],
        }
    }
}

/// The message for `mail` to `to`, from the collection's template.
pub fn compose(settings: &Settings, options: &AuthOptions, mail: &AuthMail, to: &str) -> Message {
    let stored = mail.template(options);
    let template = Template {
        subject: stored.subject.clone(),
        body: stored.body.clone(),
    };
    let values = mail.placeholders();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    template.render_with(&settings.meta, to, &pairs)
}

/// Queues `message` on the outbox with the current SMTP settings. Without
/// a usable SMTP configuration nothing is sent (logged), and `on_done`
/// hears `false` at once.
pub fn deliver(app: &App, message: Message, on_done: Option<Delivered>) {
    let settings = app.settings();
    let refuse = |why: String, on_done: Option<Delivered>| {
        log::warn!("mail {:?} not sent: {why}", message.subject);
        if let Some(done) = on_done {
            done(false);
        }
    };
    if !settings.smtp.enabled {
        return refuse("SMTP is not enabled in the settings".into(), on_done);
    }
    match settings.smtp.mail_config() {
        Ok(config) => app.mail.queue(Outgoing {
            config,
            message,
            on_done,
        }),
        Err(e) => refuse(format!("invalid SMTP settings: {e}"), on_done),
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut s = Settings::default();
        s.meta.app_name = "Acme".into();
        s.meta.app_url = "https://acme.test/".into();
        s
    }

    #[test]
    fn links_use_the_app_url_and_the_token() {
        let options = AuthOptions::defaults();
        let mail = AuthMail::PasswordReset {
            token: "eyJ.a.b".into(),
        };
        let m = compose(&settings(), &options, &mail, "u@x.y");
        assert!(m
            .html
            .contains("https://acme.test/_/#/auth/confirm-password-reset/eyJ.a.b"));
        assert!(m.subject.contains("Acme"));
        assert_eq!(m.to[0].email, "u@x.y");
    }

    #[test]
    fn each_collection_uses_its_own_template() {
        let mut options = AuthOptions::defaults();
        options.otp.email_template = EmailTemplate {
            subject: "Code for {APP_NAME}".into(),
            body: "<p>code: {OTP}</p>".into(),
        };
        let m = compose(
            &settings(),
            &options,
            &AuthMail::Otp {
                code: "123456".into(),
            },
            "u@x.y",
        );
        assert_eq!(m.subject, "Code for Acme");
        assert_eq!(m.html, "<p>code: 123456</p>");
    }

    #[test]
    fn a_hostile_user_agent_cannot_add_markup_to_an_alert() {
        let mail = AuthMail::LoginAlert {
            info: "x - 1.2.3.4 <a href=\"https://evil\">click</a>".into(),
        };
        let m = compose(&settings(), &AuthOptions::defaults(), &mail, "u@x.y");
        assert!(!m.html.contains("<a href=\"https://evil\""));
        assert!(m.html.contains("&lt;a href=&quot;https://evil&quot;&gt;"));
    }
}
