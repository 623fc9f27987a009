//! Validation of a complete settings document, rule for rule as the
//! reference answers a PATCH (codes, messages and params as it sends them).
//! Every section is checked and every failing field reported, with only the
//! first failing rule per field. Pure: no I/O, no clock.

use serde_json::json;

use super::cron::CronSchedule;
use super::field_errors::{FieldError, FieldErrors};
use super::formats;
use super::model::{
    BackupsSettings, BatchSettings, BruteForceSettings, LogsSettings, MetaSettings, RateLimitRule,
    RateLimitsSettings, S3Settings, Settings, SmtpSettings,
};

/// Checks the whole document; `Ok` when nothing failed.
pub fn validate(settings: &Settings) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    check_meta(&settings.meta, &mut Scope::new(&mut errors, &["meta"]));
    check_logs(&settings.logs, &mut Scope::new(&mut errors, &["logs"]));
    check_smtp(&settings.smtp, &mut Scope::new(&mut errors, &["smtp"]));
    check_s3(&settings.s3, &mut Scope::new(&mut errors, &["s3"]));
    check_backups(
        &settings.backups,
        &mut Scope::new(&mut errors, &["backups"]),
    );
    check_batch(&settings.batch, &mut Scope::new(&mut errors, &["batch"]));
    check_rate_limits(
        &settings.rate_limits,
        &mut Scope::new(&mut errors, &["rateLimits"]),
    );
    check_ip_list(
        &settings.superuser_ips,
        &mut Scope::new(&mut errors, &["superuserIPs"]),
    );
    check_brute_force(
        &settings.brute_force,
        &mut Scope::new(&mut errors, &["bruteForce"]),
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Errors collected under a path prefix (`["backups", "s3"]`).
struct Scope<'a> {
    errors: &'a mut FieldErrors,
    prefix: Vec<String>,
}

impl<'a> Scope<'a> {
    fn new(errors: &'a mut FieldErrors, prefix: &[&str]) -> Self {
        Scope {
            errors,
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn nested(&mut self, key: &str) -> Scope<'_> {
        let mut prefix = self.prefix.clone();
        prefix.push(key.to_string());
        Scope {
            errors: self.errors,
            prefix,
        }
    }

    /// Records the first error of `rules` for `field`, if any.
    fn check(&mut self, field: &str, first_error: Option<FieldError>) {
        if let Some(error) = first_error {
            let mut path: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
            path.push(field);
            self.errors.add(&path, error);
        }
    }

    fn has_errors_under(&self, field: &str) -> bool {
        let mut path: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        path.push(field);
        self.errors.contains(&path)
    }
}

// ---- the reference's error vocabulary --------------------------------------

fn required() -> FieldError {
    FieldError::new("validation_required", "Cannot be blank.")
}

fn min_value(threshold: i64) -> FieldError {
    FieldError::new(
        "validation_min_greater_equal_than_required",
        format!("Must be no less than {threshold}."),
    )
    .with_params(json!({ "threshold": threshold }))
}

fn length_between(min: usize, max: usize) -> FieldError {
    FieldError::new(
        "validation_length_out_of_range",
        format!("The length must be between {min} and {max}."),
    )
    .with_params(json!({ "max": max, "min": min }))
}

fn length_exactly(len: usize) -> FieldError {
    FieldError::new(
        "validation_length_invalid",
        format!("The length must be exactly {len}."),
    )
    .with_params(json!({ "max": len, "min": len }))
}

fn not_in_list() -> FieldError {
    FieldError::new("validation_in_invalid", "Must be a valid value.")
}

fn invalid_url() -> FieldError {
    FieldError::new("validation_is_url", "Must be a valid URL.")
}

fn invalid_host() -> FieldError {
    FieldError::new(
        "validation_is_host",
        "Must be a valid IP address or DNS name.",
    )
}

fn invalid_email() -> FieldError {
    FieldError::new("validation_is_email", "Must be a valid email address.")
}

// ---- rule helpers: each returns the first failure -----------------------------

/// Empty text fails `Required`; whitespace is not blank (as in the reference).
fn require_text(value: &str) -> Option<FieldError> {
    value.is_empty().then(required)
}

/// A length rule in characters; like the reference, empty text is not checked.
fn text_length(value: &str, min: usize, max: usize) -> Option<FieldError> {
    let len = value.chars().count();
    (!value.is_empty() && (len < min || len > max)).then(|| length_between(min, max))
}

/// Zero counts as blank for required numbers.
fn require_number(value: i64) -> Option<FieldError> {
    (value == 0).then(required)
}

/// A minimum; like the reference, zero is "empty" and not checked.
fn at_least(value: i64, threshold: i64) -> Option<FieldError> {
    (value != 0 && value < threshold).then(|| min_value(threshold))
}

/// A format check that skips empty text.
fn matches_format(
    value: &str,
    is_valid: fn(&str) -> bool,
    error: fn() -> FieldError,
) -> Option<FieldError> {
    (!value.is_empty() && !is_valid(value)).then(error)
}

// ---- sections --------------------------------------------------------------

fn check_meta(meta: &MetaSettings, scope: &mut Scope) {
    scope.check(
        "appName",
        require_text(&meta.app_name).or_else(|| text_length(&meta.app_name, 1, 255)),
    );
    scope.check(
        "appURL",
        require_text(&meta.app_url)
            .or_else(|| matches_format(&meta.app_url, formats::is_url, invalid_url)),
    );
    scope.check(
        "senderName",
        require_text(&meta.sender_name).or_else(|| text_length(&meta.sender_name, 1, 255)),
    );
    scope.check(
        "senderAddress",
        matches_format(&meta.sender_address, formats::is_email, invalid_email)
            .or_else(|| require_text(&meta.sender_address)),
    );
    scope.check("accentColor", accent_color_error(&meta.accent_color));
}

fn accent_color_error(color: &str) -> Option<FieldError> {
    if color.is_empty() {
        return None;
    }
    if color.chars().count() != 7 {
        return Some(length_exactly(7));
    }
    (!formats::is_hex_color(color)).then(|| {
        FieldError::new(
            "validation_is_hex_color",
            "Must be a valid hexadecimal color code.",
        )
    })
}

fn check_logs(logs: &LogsSettings, scope: &mut Scope) {
    scope.check("maxDays", at_least(logs.max_days, 0));
    scope.check("maxDataSize", at_least(logs.max_data_size, 0));
}

fn check_smtp(smtp: &SmtpSettings, scope: &mut Scope) {
    let when_enabled = |error: Option<FieldError>| if smtp.enabled { error } else { None };
    scope.check(
        "host",
        when_enabled(require_text(&smtp.host))
            .or_else(|| matches_format(&smtp.host, formats::is_host, invalid_host)),
    );
    scope.check(
        "port",
        when_enabled(require_number(smtp.port)).or_else(|| at_least(smtp.port, 0)),
    );
    let known_method = matches!(smtp.auth_method.as_str(), "" | "PLAIN" | "LOGIN");
    scope.check("authMethod", (!known_method).then(not_in_list));
    scope.check(
        "localName",
        matches_format(&smtp.local_name, formats::is_host, invalid_host),
    );
}

fn check_s3(s3: &S3Settings, scope: &mut Scope) {
    let required_when_enabled = |value: &str| {
        if s3.enabled {
            require_text(value)
        } else {
            None
        }
    };
    scope.check(
        "endpoint",
        matches_format(&s3.endpoint, formats::is_url, invalid_url)
            .or_else(|| required_when_enabled(&s3.endpoint)),
    );
    scope.check("bucket", required_when_enabled(&s3.bucket));
    scope.check("region", required_when_enabled(&s3.region));
    scope.check("accessKey", required_when_enabled(&s3.access_key));
    scope.check("secret", required_when_enabled(&s3.secret));
}

fn check_backups(backups: &BackupsSettings, scope: &mut Scope) {
    check_s3(&backups.s3, &mut scope.nested("s3"));
    let cron_error = if backups.cron.is_empty() {
        None
    } else {
        CronSchedule::parse(&backups.cron)
            .err()
            .map(|e| FieldError::new("validation_invalid_cron", e.to_string()))
    };
    scope.check("cron", cron_error);
    let keep_required = if backups.cron.is_empty() {
        None
    } else {
        require_number(backups.cron_max_keep)
    };
    scope.check(
        "cronMaxKeep",
        keep_required.or_else(|| at_least(backups.cron_max_keep, 1)),
    );
}

fn check_batch(batch: &BatchSettings, scope: &mut Scope) {
    let when_enabled = |error: Option<FieldError>| if batch.enabled { error } else { None };
    scope.check(
        "maxRequests",
        when_enabled(require_number(batch.max_requests))
            .or_else(|| at_least(batch.max_requests, 0)),
    );
    scope.check(
        "timeout",
        when_enabled(require_number(batch.timeout)).or_else(|| at_least(batch.timeout, 0)),
    );
    scope.check("maxBodySize", at_least(batch.max_body_size, 0));
}

fn check_rate_limits(limits: &RateLimitsSettings, scope: &mut Scope) {
    if limits.enabled && limits.rules.is_empty() {
        scope.check("rules", Some(required()));
    }
    {
        let mut rules_scope = scope.nested("rules");
        for (index, rule) in limits.rules.iter().enumerate() {
            check_rule(rule, &mut rules_scope.nested(&index.to_string()));
        }
    }
    // Like the reference, conflicts are only reported once every rule is
    // well-formed on its own.
    if !scope.has_errors_under("rules") {
        if let Some((index, error)) = first_conflicting_rule(&limits.rules) {
            scope
                .nested("rules")
                .nested(&index.to_string())
                .check("label", Some(error));
        }
    }
    check_ip_list(&limits.excluded_ips, &mut scope.nested("excludedIPs"));
}

fn check_rule(rule: &RateLimitRule, scope: &mut Scope) {
    scope.check(
        "label",
        require_text(&rule.label).or_else(|| {
            (!formats::is_rate_limit_label(&rule.label))
                .then(|| FieldError::new("validation_match_invalid", "Must be in a valid format."))
        }),
    );
    scope.check(
        "maxRequests",
        require_number(rule.max_requests).or_else(|| at_least(rule.max_requests, 1)),
    );
    scope.check(
        "duration",
        require_number(rule.duration).or_else(|| at_least(rule.duration, 1)),
    );
    let known_audience = matches!(rule.audience.as_str(), "" | "@guest" | "@auth");
    scope.check("audience", (!known_audience).then(not_in_list));
}

/// Satchel's own section: both numbers are needed while it is on.
fn check_brute_force(brute_force: &BruteForceSettings, scope: &mut Scope) {
    for (key, value) in [
        ("maxFailures", brute_force.max_failures),
        ("duration", brute_force.duration),
    ] {
        let required = if brute_force.enabled {
            require_number(value)
        } else {
            None
        };
        scope.check(key, required.or_else(|| at_least(value, 1)));
    }
}

/// Two rules conflict when one's `label@@audience` key is a prefix of the
/// other's, so an audience-less rule shadows the audience-specific ones.
/// Returns the first later rule that conflicts with an earlier one.
fn first_conflicting_rule(rules: &[RateLimitRule]) -> Option<(usize, FieldError)> {
    let mut seen: Vec<String> = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let key = format!("{}@@{}", rule.label, rule.audience);
        let conflicts = seen
            .iter()
            .any(|earlier| earlier.starts_with(&key) || key.starts_with(earlier.as_str()));
        if conflicts {
            let error = FieldError::new(
                "validation_conflicting_rate_limit_rule",
                format!(
                    "Rate limit rule configuration with label {} already exists or conflicts with another rule.",
                    rule.label
                ),
            )
            .with_params(json!({ "label": rule.label }));
            return Some((index, error));
        }
        seen.push(key);
    }
    None
}

/// Items of `superuserIPs` / `rateLimits.excludedIPs`.
fn check_ip_list(items: &[String], scope: &mut Scope) {
    for (index, item) in items.iter().enumerate() {
        let error = require_text(item).or_else(|| {
            (!formats::is_ip_or_subnet(item)).then(|| {
                // The code's spelling is the reference's.
                FieldError::new(
                    "validation_invlaid_ip_or_subnet",
                    "Invalid IP or CIDR subnet.",
                )
            })
        });
        scope.check(&index.to_string(), error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::patch::{apply_patch, PatchError};
    use serde_json::{json, Value};

    /// The `data` of the reference's 400 answer for `patch` applied to the
    /// defaults, or `None` when it accepts the patch.
    fn errors_for(patch: Value) -> Option<Value> {
        match apply_patch(&Settings::default(), &patch) {
            Ok(_) => None,
            Err(PatchError::Invalid(errors)) => Some(errors.into_value()),
            Err(other) => panic!("{patch}: {other}"),
        }
    }

    fn required() -> Value {
        json!({"code": "validation_required", "message": "Cannot be blank."})
    }

    fn min(threshold: i64) -> Value {
        json!({
            "code": "validation_min_greater_equal_than_required",
            "message": format!("Must be no less than {threshold}."),
            "params": {"threshold": threshold}
        })
    }

    fn invalid_ip() -> Value {
        json!({"code": "validation_invlaid_ip_or_subnet", "message": "Invalid IP or CIDR subnet."})
    }

    /// Cases and answers taken from the reference 0.40.6 (PATCH on a fresh dir).
    #[test]
    fn errors_match_the_reference() {
        let long_name = "a".repeat(256);
        let cases = [
            (
                json!({"meta": {"appName": ""}}),
                json!({"meta": {"appName": required()}}),
            ),
            (
                json!({"meta": {"appName": long_name}}),
                json!({"meta": {"appName": {"code": "validation_length_out_of_range", "message": "The length must be between 1 and 255.", "params": {"max": 255, "min": 1}}}}),
            ),
            (
                json!({"meta": {"appURL": "notaurl"}}),
                json!({"meta": {"appURL": {"code": "validation_is_url", "message": "Must be a valid URL."}}}),
            ),
            (
                json!({"meta": {"appURL": ""}}),
                json!({"meta": {"appURL": required()}}),
            ),
            (
                json!({"meta": {"senderName": "", "senderAddress": "bad"}}),
                json!({"meta": {
                    "senderAddress": {"code": "validation_is_email", "message": "Must be a valid email address."},
                    "senderName": required()
                }}),
            ),
            (
                json!({"meta": {"accentColor": "red"}}),
                json!({"meta": {"accentColor": {"code": "validation_length_invalid", "message": "The length must be exactly 7.", "params": {"max": 7, "min": 7}}}}),
            ),
            (
                json!({"meta": {"accentColor": "#zzzzzz"}}),
                json!({"meta": {"accentColor": {"code": "validation_is_hex_color", "message": "Must be a valid hexadecimal color code."}}}),
            ),
            (
                json!({"superuserIPs": ["1.2.3.4", "10.0.0.0/8", "::1", "fe80::/10", "bad"]}),
                json!({"superuserIPs": {"4": invalid_ip()}}),
            ),
            (
                json!({"superuserIPs": [""]}),
                json!({"superuserIPs": {"0": required()}}),
            ),
            (
                json!({"rateLimits": {"excludedIPs": ["x", "1.1.1.1"]}}),
                json!({"rateLimits": {"excludedIPs": {"0": invalid_ip()}}}),
            ),
            (
                json!({"backups": {"cron": "@daily", "cronMaxKeep": 0}}),
                json!({"backups": {"cronMaxKeep": required()}}),
            ),
            (
                json!({"backups": {"cron": "", "cronMaxKeep": -1}}),
                json!({"backups": {"cronMaxKeep": min(1)}}),
            ),
            (
                json!({"smtp": {"port": -1}}),
                json!({"smtp": {"port": min(0)}}),
            ),
            (
                json!({"smtp": {"enabled": true, "host": "", "port": 0}}),
                json!({"smtp": {"host": required(), "port": required()}}),
            ),
            (
                json!({"smtp": {"authMethod": "plain"}}),
                json!({"smtp": {"authMethod": {"code": "validation_in_invalid", "message": "Must be a valid value."}}}),
            ),
            (
                json!({"smtp": {"localName": "bad host!"}}),
                json!({"smtp": {"localName": {"code": "validation_is_host", "message": "Must be a valid IP address or DNS name."}}}),
            ),
            (
                json!({"logs": {"maxDays": -1, "minLevel": -100, "maxDataSize": -1}}),
                json!({"logs": {"maxDataSize": min(0), "maxDays": min(0)}}),
            ),
            (
                json!({"batch": {"enabled": true, "maxRequests": 0, "timeout": 0, "maxBodySize": -1}}),
                json!({"batch": {"maxBodySize": min(0), "maxRequests": required(), "timeout": required()}}),
            ),
            (
                json!({"s3": {"enabled": true}}),
                json!({"s3": {"accessKey": required(), "bucket": required(), "endpoint": required(), "region": required(), "secret": required()}}),
            ),
            (
                json!({"backups": {"s3": {"enabled": true, "endpoint": "x"}}}),
                json!({"backups": {"s3": {
                    "accessKey": required(), "bucket": required(),
                    "endpoint": {"code": "validation_is_url", "message": "Must be a valid URL."},
                    "region": required(), "secret": required()
                }}}),
            ),
            (
                json!({"rateLimits": {"rules": [{"label": "", "duration": 0, "maxRequests": 0, "audience": "x"}]}}),
                json!({"rateLimits": {"rules": {"0": {
                    "audience": {"code": "validation_in_invalid", "message": "Must be a valid value."},
                    "duration": required(), "label": required(), "maxRequests": required()
                }}}}),
            ),
            (
                json!({"rateLimits": {"rules": [{"label": "bad label!", "duration": 1, "maxRequests": 1}]}}),
                json!({"rateLimits": {"rules": {"0": {"label": {"code": "validation_match_invalid", "message": "Must be in a valid format."}}}}}),
            ),
            (
                json!({"rateLimits": {"rules": [{"label": "/a", "duration": -1, "maxRequests": -2}]}}),
                json!({"rateLimits": {"rules": {"0": {"duration": min(1), "maxRequests": min(1)}}}}),
            ),
            (
                json!({"rateLimits": {"rules": [
                    {"label": "*:auth", "duration": 1, "maxRequests": 1},
                    {"label": "*:auth", "duration": 1, "maxRequests": 1, "audience": "@guest"}
                ]}}),
                json!({"rateLimits": {"rules": {"1": {"label": {
                    "code": "validation_conflicting_rate_limit_rule",
                    "message": "Rate limit rule configuration with label *:auth already exists or conflicts with another rule.",
                    "params": {"label": "*:auth"}
                }}}}}),
            ),
            (
                // Per-rule errors hide conflicts, as in the reference.
                json!({"rateLimits": {"rules": [
                    {"label": "/b", "duration": 1, "maxRequests": 1},
                    {"label": "/b", "duration": 1, "maxRequests": 1},
                    {"label": "/a", "duration": 0, "maxRequests": 1}
                ]}}),
                json!({"rateLimits": {"rules": {"2": {"duration": required()}}}}),
            ),
            (
                json!({"rateLimits": {"enabled": true, "rules": []}}),
                json!({"rateLimits": {"rules": required()}}),
            ),
            (
                json!({"meta": {"appName": "x", "appURL": ""}, "logs": {"maxDays": -1}, "backups": {"cron": "x", "cronMaxKeep": 0}}),
                json!({
                    "backups": {
                        "cron": {"code": "validation_invalid_cron", "message": "Invalid cron expression - must be a known macro or exactly 5 space separated fields."},
                        "cronMaxKeep": required()
                    },
                    "logs": {"maxDays": min(0)},
                    "meta": {"appURL": required()}
                }),
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(errors_for(patch.clone()), Some(expected), "patch {patch}");
        }
    }

    /// Patches the reference accepts from its defaults.
    #[test]
    fn accepts_what_the_reference_accepts() {
        for patch in [
            json!({"meta": {"appURL": "ftp://x"}}),
            json!({"meta": {"appURL": "localhost:8090"}}),
            json!({"meta": {"appName": "   "}}),
            json!({"meta": {"accentColor": ""}}),
            json!({"smtp": {"port": 70000}}),
            json!({"smtp": {"enabled": false, "host": "", "port": 0}}),
            json!({"logs": {"minLevel": 99}}),
            json!({"superuserIPs": ["1.2.3.4/24", "::ffff:1.2.3.4", "::/0", "fe80::1%eth0/64"]}),
            json!({"trustedProxy": {"headers": ["X-Forwarded-For", "bad header", ""]}}),
            json!({"backups": {"cron": "", "cronMaxKeep": 0}}),
            json!({"backups": {"cron": "*/5 * * * *"}}),
            json!({"s3": {"enabled": true, "bucket": "b", "region": "r", "endpoint": "http://x.y", "accessKey": "a", "secret": "s"}}),
            json!({"rateLimits": {"rules": [
                {"label": "FOO /api", "duration": 1, "maxRequests": 1},
                {"label": "users:create", "duration": 1, "maxRequests": 1},
                {"label": "*:auth", "duration": 1, "maxRequests": 1, "audience": "@guest"},
                {"label": "*:auth", "duration": 1, "maxRequests": 1, "audience": "@auth"},
                {"label": "tag_a", "duration": 1, "maxRequests": 1},
                {"label": "/", "duration": 1, "maxRequests": 1}
            ]}}),
            json!({"rateLimits": {"rules": [
                {"label": "*:auth", "duration": 1, "maxRequests": 1},
                {"label": "*:authRefresh", "duration": 1, "maxRequests": 1}
            ]}}),
        ] {
            assert_eq!(errors_for(patch.clone()), None, "patch {patch}");
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(validate(&Settings::default()).is_ok());
    }
}
