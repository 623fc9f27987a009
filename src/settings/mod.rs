//! Application settings: the typed document with the reference's defaults,
//! PATCH merging and validation, the public (secret-free) view, and the
//! stored form with optional AES-GCM encryption at rest.
//!
//! Domain-free of HTTP and of the database: callers hand in JSON values and
//! stored bytes and get back settings, field errors or stored text. Secrets
//! (`smtp.password`, `s3.secret`, `backups.s3.secret`) must never leave
//! through [`public_view`]; only the stored form carries them.

pub mod api;
pub mod cron;
mod field_errors;
pub mod formats;
mod model;
mod patch;
mod storage;
mod validate;

pub use field_errors::{FieldError, FieldErrors};
pub use model::{
    BackupsSettings, BatchSettings, BruteForceSettings, LogsSettings, MetaSettings, RateLimitRule,
    RateLimitsSettings, S3Settings, Settings, SmtpSettings, TrustedProxySettings, SECRET_PATHS,
};
pub use patch::{apply_patch, PatchError};
pub use storage::{decode_from_storage, encode_for_storage, LoadError, StoreError};
pub use validate::validate;

use serde_json::Value;

/// The JSON `GET`/`PATCH /api/settings` answer with: everything but the
/// secrets, whose keys are absent (not empty).
pub fn public_view(settings: &Settings) -> Value {
    let mut view = serde_json::to_value(settings).unwrap_or(Value::Null);
    for path in SECRET_PATHS {
        remove_path(&mut view, path);
    }
    view
}

fn remove_path(value: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(value, |node, key| node.get_mut(*key));
    if let Some(Value::Object(fields)) = parent {
        // shift_remove keeps the other keys in the reference's order.
        fields.shift_remove(*last);
    }
}

impl SmtpSettings {
    /// The mail client's configuration for these settings. Fails only for a
    /// port outside 1..=65535, which validation (like the reference's) lets
    /// through.
    pub fn mail_config(&self) -> Result<crate::mail::SmtpConfig, crate::mail::SmtpError> {
        let port = u16::try_from(self.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                crate::mail::SmtpError::InvalidConfig(format!(
                    "SMTP port {} is out of range",
                    self.port
                ))
            })?;
        Ok(crate::mail::SmtpConfig {
            host: self.host.clone(),
            port,
            username: self.username.clone(),
            password: self.password.clone(),
            auth_method: self.auth_method.clone(),
            tls: self.tls,
            local_name: self.local_name.clone(),
            ..crate::mail::SmtpConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `GET /api/settings` on a fresh reference 0.40.6 data dir.
    const REFERENCE_DEFAULT_RESPONSE: &str = r##"{"superuserIPs":[],"smtp":{"enabled":false,"port":587,"host":"smtp.example.com","username":"","authMethod":"","tls":false,"localName":""},"backups":{"cron":"","cronMaxKeep":3,"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false}},"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false},"meta":{"accentColor":"#1055c9","appName":"Acme","appURL":"http://localhost:8090","senderName":"Support","senderAddress":"support@example.com","hideControls":false},"rateLimits":{"rules":[{"label":"*:auth","audience":"","duration":3,"maxRequests":2},{"label":"*:create","audience":"","duration":5,"maxRequests":20},{"label":"/api/batch","audience":"","duration":1,"maxRequests":3},{"label":"/api/","audience":"","duration":10,"maxRequests":300}],"excludedIPs":[],"enabled":false},"trustedProxy":{"headers":[],"useLeftmostIP":false},"batch":{"enabled":false,"maxRequests":50,"timeout":3,"maxBodySize":0},"logs":{"maxDataSize":0,"maxDays":5,"minLevel":0,"logIP":true,"logAuthId":false}}"##;

    #[test]
    fn the_default_public_view_is_the_reference_response() {
        let view = serde_json::to_string(&public_view(&Settings::default())).unwrap();
        assert_eq!(view, REFERENCE_DEFAULT_RESPONSE);
    }

    #[test]
    fn secrets_never_appear_in_the_public_view() {
        let patch = json!({
            "smtp": {"password": "smtp-pw-1"},
            "s3": {"secret": "s3-secret-2"},
            "backups": {"s3": {"secret": "backup-secret-3"}}
        });
        let settings = apply_patch(&Settings::default(), &patch).unwrap();
        let view = public_view(&settings);
        let text = view.to_string();
        for secret in ["smtp-pw-1", "s3-secret-2", "backup-secret-3"] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
        assert!(view["smtp"].get("password").is_none());
        assert!(view["s3"].get("secret").is_none());
        assert!(view["backups"]["s3"].get("secret").is_none());
        // ... while the stored form keeps them.
        let stored = encode_for_storage(&settings, None).unwrap();
        assert!(stored.contains("smtp-pw-1") && stored.contains("backup-secret-3"));
    }

    #[test]
    fn a_served_view_patched_back_keeps_the_secrets() {
        let mut settings = Settings::default();
        settings.smtp.password = "kept".into();
        let round_trip = apply_patch(&settings, &public_view(&settings)).unwrap();
        assert_eq!(round_trip.smtp.password, "kept");
    }

    #[test]
    fn mail_config_carries_the_smtp_section() {
        let mut smtp = SmtpSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            username: "u".into(),
            password: "p".into(),
            auth_method: "LOGIN".into(),
            ..SmtpSettings::default()
        };
        let config = smtp.mail_config().unwrap();
        assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 2525));
        assert_eq!(
            (config.username.as_str(), config.password.as_str()),
            ("u", "p")
        );
        assert_eq!(config.auth_method, "LOGIN");
        smtp.port = 70000;
        assert!(smtp.mail_config().is_err());
    }
}
