//! The typed settings document and the reference's defaults.
//!
//! Field order follows the JSON the reference writes and serves, so a stored
//! row or a response is byte-comparable with the reference's. Every section
//! keeps keys it does not know in `unknown`, so a `pb_data` written by a newer
//! reference loses nothing when we load and save it again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole application settings document (`_params` row `settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    /// IPs or CIDR subnets superusers may connect from; empty = anywhere.
    #[serde(rename = "superuserIPs")]
    pub superuser_ips: Vec<String>,
    pub smtp: SmtpSettings,
    pub backups: BackupsSettings,
    pub s3: S3Settings,
    pub meta: MetaSettings,
    pub rate_limits: RateLimitsSettings,
    pub trusted_proxy: TrustedProxySettings,
    pub batch: BatchSettings,
    pub logs: LogsSettings,
    /// Satchel's own section (not in the reference): per-identity
    /// brute-force protection. Left out of the stored row and of `GET`
    /// while it holds the defaults, so default documents stay the
    /// reference's byte for byte; once tuned it is served and kept.
    #[serde(skip_serializing_if = "BruteForceSettings::is_default")]
    pub brute_force: BruteForceSettings,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SmtpSettings {
    pub enabled: bool,
    pub port: i64,
    pub host: String,
    pub username: String,
    /// Secret: stored, never served.
    pub password: String,
    /// `"PLAIN"`, `"LOGIN"` or `""` (let the client choose).
    pub auth_method: String,
    /// Implicit TLS (usually port 465).
    pub tls: bool,
    /// Name for EHLO/HELO; empty means `localhost`.
    pub local_name: String,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BackupsSettings {
    /// Five-field cron expression or macro; empty disables automatic backups.
    pub cron: String,
    pub cron_max_keep: i64,
    pub s3: S3Settings,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct S3Settings {
    pub enabled: bool,
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    pub access_key: String,
    /// Secret: stored, never served. The reference leaves the key out of the
    /// stored JSON while it is empty; so do we.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret: String,
    pub force_path_style: bool,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetaSettings {
    pub accent_color: String,
    pub app_name: String,
    #[serde(rename = "appURL")]
    pub app_url: String,
    pub sender_name: String,
    pub sender_address: String,
    pub hide_controls: bool,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RateLimitsSettings {
    pub rules: Vec<RateLimitRule>,
    #[serde(rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
    pub enabled: bool,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RateLimitRule {
    /// A tag (`*:auth`, `users:create`), an exact path, a path prefix ending
    /// in `/`, or `METHOD /path`.
    pub label: String,
    /// `""` everyone, `"@guest"`, or `"@auth"`.
    pub audience: String,
    /// Window length in seconds.
    pub duration: i64,
    pub max_requests: i64,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TrustedProxySettings {
    /// Headers to take the client IP from, e.g. `X-Forwarded-For`.
    pub headers: Vec<String>,
    #[serde(rename = "useLeftmostIP")]
    pub use_leftmost_ip: bool,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BatchSettings {
    pub enabled: bool,
    pub max_requests: i64,
    /// Seconds before the batch transaction is abandoned.
    pub timeout: i64,
    /// Bytes; 0 means the server's own ceiling.
    pub max_body_size: i64,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LogsSettings {
    pub max_data_size: i64,
    pub max_days: i64,
    pub min_level: i64,
    #[serde(rename = "logIP")]
    pub log_ip: bool,
    pub log_auth_id: bool,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `bruteForce`: failed sign-ins per identity (a record or an unknown
/// identity of a collection), per `otpId` and per `mfaId`, whatever the
/// client address. `maxFailures` failures within `duration` seconds lock
/// that identity for `duration` seconds (429 with `Retry-After`); a success
/// clears the count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BruteForceSettings {
    pub enabled: bool,
    pub max_failures: i64,
    /// Seconds: the counting window and the lockout.
    pub duration: i64,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        BruteForceSettings {
            enabled: true,
            max_failures: 10,
            duration: 300,
            unknown: Map::new(),
        }
    }
}

impl BruteForceSettings {
    pub fn is_default(&self) -> bool {
        *self == BruteForceSettings::default()
    }

    /// The throttle's policy; validation keeps both numbers at least 1
    /// while enabled.
    pub fn policy(&self) -> crate::auth::throttle::Policy {
        crate::auth::throttle::Policy {
            enabled: self.enabled,
            max_failures: u32::try_from(self.max_failures.max(1)).unwrap_or(u32::MAX),
            duration: u64::try_from(self.duration.max(1)).unwrap_or(1),
        }
    }
}

impl Default for Settings {
    /// The settings of a fresh reference data directory.
    fn default() -> Self {
        Settings {
            superuser_ips: Vec::new(),
            smtp: SmtpSettings::default(),
            backups: BackupsSettings::default(),
            s3: S3Settings::default(),
            meta: MetaSettings::default(),
            rate_limits: RateLimitsSettings::default(),
            trusted_proxy: TrustedProxySettings::default(),
            batch: BatchSettings::default(),
            logs: LogsSettings::default(),
            brute_force: BruteForceSettings::default(),
            unknown: Map::new(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            enabled: false,
            port: 587,
            host: "smtp.example.com".into(),
            username: String::new(),
            password: String::new(),
            auth_method: String::new(),
            tls: false,
            local_name: String::new(),
            unknown: Map::new(),
        }
    }
}

impl Default for BackupsSettings {
    fn default() -> Self {
        BackupsSettings {
            cron: String::new(),
            cron_max_keep: 3,
            s3: S3Settings::default(),
            unknown: Map::new(),
        }
    }
}

impl Default for MetaSettings {
    fn default() -> Self {
        MetaSettings {
            accent_color: "#1055c9".into(),
            app_name: "Acme".into(),
            app_url: "http://localhost:8090".into(),
            sender_name: "Support".into(),
            sender_address: "support@example.com".into(),
            hide_controls: false,
            unknown: Map::new(),
        }
    }
}

impl Default for RateLimitsSettings {
    fn default() -> Self {
        let rule = |label: &str, duration, max_requests| RateLimitRule {
            label: label.into(),
            duration,
            max_requests,
            ..RateLimitRule::default()
        };
        RateLimitsSettings {
            rules: vec![
                rule("*:auth", 3, 2),
                rule("*:create", 5, 20),
                rule("/api/batch", 1, 3),
                rule("/api/", 10, 300),
            ],
            excluded_ips: Vec::new(),
            // Off until the reference turns it on for new installations.
            enabled: false,
            unknown: Map::new(),
        }
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            enabled: false,
            max_requests: 50,
            timeout: 3,
            max_body_size: 0,
            unknown: Map::new(),
        }
    }
}

impl Default for LogsSettings {
    fn default() -> Self {
        LogsSettings {
            max_data_size: 0,
            max_days: 5,
            min_level: 0,
            log_ip: true,
            log_auth_id: false,
            unknown: Map::new(),
        }
    }
}

/// Paths of the write-only values: stored (encrypted when a key is set),
/// accepted on PATCH, never served.
pub const SECRET_PATHS: [&[&str]; 3] = [
    &["smtp", "password"],
    &["s3", "secret"],
    &["backups", "s3", "secret"],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The row a fresh reference 0.40.6 data dir stores (`_params.settings`).
    const REFERENCE_DEFAULT_ROW: &str = r##"{"superuserIPs":[],"smtp":{"enabled":false,"port":587,"host":"smtp.example.com","username":"","password":"","authMethod":"","tls":false,"localName":""},"backups":{"cron":"","cronMaxKeep":3,"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false}},"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false},"meta":{"accentColor":"#1055c9","appName":"Acme","appURL":"http://localhost:8090","senderName":"Support","senderAddress":"support@example.com","hideControls":false},"rateLimits":{"rules":[{"label":"*:auth","audience":"","duration":3,"maxRequests":2},{"label":"*:create","audience":"","duration":5,"maxRequests":20},{"label":"/api/batch","audience":"","duration":1,"maxRequests":3},{"label":"/api/","audience":"","duration":10,"maxRequests":300}],"excludedIPs":[],"enabled":false},"trustedProxy":{"headers":[],"useLeftmostIP":false},"batch":{"enabled":false,"maxRequests":50,"timeout":3,"maxBodySize":0},"logs":{"maxDataSize":0,"maxDays":5,"minLevel":0,"logIP":true,"logAuthId":false}}"##;

    #[test]
    fn defaults_serialize_exactly_like_the_reference_row() {
        let ours = serde_json::to_string(&Settings::default()).unwrap();
        assert_eq!(ours, REFERENCE_DEFAULT_ROW);
    }

    #[test]
    fn the_reference_row_parses_to_the_defaults() {
        let parsed: Settings = serde_json::from_str(REFERENCE_DEFAULT_ROW).unwrap();
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn missing_keys_take_the_defaults() {
        let parsed: Settings = serde_json::from_str(r#"{"meta":{"appName":"X"}}"#).unwrap();
        assert_eq!(parsed.meta.app_name, "X");
        assert_eq!(parsed.meta.accent_color, "#1055c9");
        assert_eq!(parsed.smtp.port, 587);
        assert_eq!(parsed.rate_limits.rules.len(), 4);
    }

    #[test]
    fn brute_force_is_kept_and_served_once_tuned() {
        let mut s = Settings::default();
        s.brute_force.max_failures = 5;
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.ends_with(r#""bruteForce":{"enabled":true,"maxFailures":5,"duration":300}}"#));
        let back: Settings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.brute_force.policy().max_failures, 5);
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let text = r#"{"meta":{"appName":"X","futureFlag":true},"futureSection":{"a":1}}"#;
        let parsed: Settings = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back["meta"]["futureFlag"], true);
        assert_eq!(back["futureSection"]["a"], 1);
    }
}
