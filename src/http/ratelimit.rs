//! The reference's rate limiter (`settings.rateLimits`): which rule a
//! request falls under, and a fixed window per (rule, client IP).
//!
//! Owns: route tags for the collection routes (`users:auth`, `*:create`),
//! the reference's rule precedence, the windows and their memory bound.
//! Must never: decide who the client is (the caller passes the resolved IP
//! and audience), limit superusers or excluded IPs (the caller skips them),
//! or hold a lock while anything but its own maps is touched.
//!
//! Semantics, as the reference's (checked against v0.40.6):
//! - a collection route counts per collection and route under the first rule
//!   matching `{name}:{action}`, `*:{action}`, `METHOD /path` or `/path`;
//!   every other request counts under its rule's label, shared by all
//!   paths the rule covers;
//! - within a label list, an exact label beats a prefix (`/api/`) rule;
//!   rules whose audience does not fit the caller are passed over;
//! - a window refills when `duration` seconds have passed since its last
//!   admitted request; saving the settings starts every window afresh.

use super::request::Method;
use crate::error::ApiError;
use crate::settings::{RateLimitRule, Settings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// Windows kept at most; past it the stalest are dropped (they start afresh).
const MAX_WINDOWS: usize = 20_000;
/// Seconds between sweeps of windows that have refilled anyway.
const SWEEP_EVERY_SECS: u64 = 60;

/// What a collection route is, for the limiter: the reference's route
/// pattern (one window set per pattern) and its action tags.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteTag {
    pub pattern: &'static str,
    pub actions: &'static [&'static str],
}

macro_rules! tag {
    ($name:ident, $pattern:literal, $($action:literal),+) => {
        const $name: RouteTag = RouteTag { pattern: $pattern, actions: &[$($action),+] };
    };
}

tag!(LIST, "GET /api/collections/{collection}/records", "list");
tag!(
    VIEW,
    "GET /api/collections/{collection}/records/{id}",
    "view"
);
tag!(
    CREATE,
    "POST /api/collections/{collection}/records",
    "create"
);
tag!(
    UPDATE,
    "PATCH /api/collections/{collection}/records/{id}",
    "update"
);
tag!(
    DELETE,
    "DELETE /api/collections/{collection}/records/{id}",
    "delete"
);
tag!(
    FILE,
    "GET /api/files/{collection}/{recordId}/{filename}",
    "file"
);
tag!(
    AUTH_METHODS,
    "GET /api/collections/{collection}/auth-methods",
    "listAuthMethods"
);
tag!(
    AUTH_REFRESH,
    "POST /api/collections/{collection}/auth-refresh",
    "authRefresh"
);
tag!(
    AUTH_PASSWORD,
    "POST /api/collections/{collection}/auth-with-password",
    "authWithPassword",
    "auth"
);
tag!(
    AUTH_OAUTH2,
    "POST /api/collections/{collection}/auth-with-oauth2",
    "authWithOAuth2",
    "auth"
);
tag!(
    REQUEST_OTP,
    "POST /api/collections/{collection}/request-otp",
    "requestOTP"
);
tag!(
    AUTH_OTP,
    "POST /api/collections/{collection}/auth-with-otp",
    "authWithOTP",
    "auth"
);
tag!(
    REQUEST_RESET,
    "POST /api/collections/{collection}/request-password-reset",
    "requestPasswordReset"
);
tag!(
    CONFIRM_RESET,
    "POST /api/collections/{collection}/confirm-password-reset",
    "confirmPasswordReset"
);
tag!(
    REQUEST_VERIFY,
    "POST /api/collections/{collection}/request-verification",
    "requestVerification"
);
tag!(
    CONFIRM_VERIFY,
    "POST /api/collections/{collection}/confirm-verification",
    "confirmVerification"
);
tag!(
    REQUEST_EMAIL,
    "POST /api/collections/{collection}/request-email-change",
    "requestEmailChange"
);
tag!(
    CONFIRM_EMAIL,
    "POST /api/collections/{collection}/confirm-email-change",
    "confirmEmailChange"
);

/// The collection (id or name as written in the path) and tag of a
/// collection route, or `None` for every other request.
pub fn classify<'p>(method: Method, path: &[&'p str]) -> Option<(&'p str, &'static RouteTag)> {
    use Method::{Delete, Get, Head, Patch, Post};
    let tag = match (method, path) {
        (Get | Head, ["api", "collections", _, "records"]) => &LIST,
        (Get | Head, ["api", "collections", _, "records", _]) => &VIEW,
        (Post, ["api", "collections", _, "records"]) => &CREATE,
        (Patch, ["api", "collections", _, "records", _]) => &UPDATE,
        (Delete, ["api", "collections", _, "records", _]) => &DELETE,
        (Get | Head, ["api", "files", _, _, _]) => &FILE,
        (Get | Head, ["api", "collections", _, "auth-methods"]) => &AUTH_METHODS,
        (Post, ["api", "collections", _, action]) => auth_action(action)?,
        _ => return None,
    };
    Some((path[2], tag))
}

fn auth_action(action: &str) -> Option<&'static RouteTag> {
    Some(match action {
        "auth-refresh" => &AUTH_REFRESH,
        "auth-with-password" => &AUTH_PASSWORD,
        "auth-with-oauth2" => &AUTH_OAUTH2,
        "request-otp" => &REQUEST_OTP,
        "auth-with-otp" => &AUTH_OTP,
        "request-password-reset" => &REQUEST_RESET,
        "confirm-password-reset" => &CONFIRM_RESET,
        "request-verification" => &REQUEST_VERIFY,
        "confirm-verification" => &CONFIRM_VERIFY,
        "request-email-change" => &REQUEST_EMAIL,
        "confirm-email-change" => &CONFIRM_EMAIL,
        _ => return None,
    })
}

/// Who the caller is, for a rule's `audience` (superusers are never limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Guest,
    Auth,
}

impl Audience {
    fn accepts(self, rule_audience: &str) -> bool {
        match self {
            Audience::Guest => matches!(rule_audience, "" | "@guest"),
            Audience::Auth => matches!(rule_audience, "" | "@auth"),
        }
    }
}

/// A collection route's collection and tag.
pub struct CollectionRoute<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tag: &'static RouteTag,
}

/// One request as the limiter sees it.
pub struct Hit<'a> {
    pub method: &'a str,
    /// The decoded path, `/api/...`.
    pub path: &'a str,
    pub audience: Audience,
    /// The client IP as the reference writes it; the window key.
    pub client: &'a str,
    pub route: Option<CollectionRoute<'a>>,
}

impl Hit<'_> {
    /// Labels in precedence order and the id of the window set per rule.
    fn labels(&self) -> Vec<String> {
        let mut labels = Vec::with_capacity(6);
        if let Some(route) = &self.route {
            let actions = route.tag.actions;
            labels.extend(actions.iter().map(|a| format!("{}:{a}", route.name)));
            labels.extend(actions.iter().map(|a| format!("*:{a}")));
        }
        labels.push(format!("{} {}", self.method, self.path));
        labels.push(self.path.to_string());
        labels
    }

    fn limiter_id(&self, rule: &RateLimitRule) -> String {
        match &self.route {
            Some(route) => format!(
                "{}\u{1}{}\u{1}{}\u{1}{}",
                route.id,
                route.tag.pattern,
                route.tag.actions.join(","),
                rule.audience
            ),
            None => format!("{}\u{1}{}", rule.label, rule.audience),
        }
    }
}

/// The first rule for `labels`, the reference's way: label by label, an
/// exact match first, then a prefix rule (label ending in `/`).
pub fn find_rule<'r>(
    rules: &'r [RateLimitRule],
    labels: &[String],
    audience: Audience,
) -> Option<&'r RateLimitRule> {
    let fits = |rule: &RateLimitRule| audience.accepts(&rule.audience);
    let prefix_rules: Vec<&RateLimitRule> =
        rules.iter().filter(|r| r.label.ends_with('/')).collect();
    for label in labels {
        if let Some(rule) = rules.iter().find(|r| r.label == *label && fits(r)) {
            return Some(rule);
        }
        let with_slash = format!("{label}/");
        if let Some(rule) = prefix_rules
            .iter()
            .find(|r| with_slash.starts_with(r.label.as_str()) && fits(r))
        {
            return Some(rule);
        }
    }
    None
}

/// One client's allowance under one rule.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    available: u32,
    /// Seconds (limiter clock) of the last admitted request.
    last: Option<u64>,
}

impl Window {
    /// Admits one request, or answers how many seconds until the refill.
    fn consume(&mut self, max: u32, interval: u64, now: u64) -> Result<(), u64> {
        if self.refilled(interval, now) {
            self.available = max;
        }
        if self.available > 0 {
            self.available -= 1;
            self.last = Some(now);
            return Ok(());
        }
        let since = self.last.map_or(0, |last| now.saturating_sub(last));
        Err(interval.saturating_sub(since).max(1))
    }

    /// Whether the window is as good as new (so dropping it changes nothing).
    fn refilled(&self, interval: u64, now: u64) -> bool {
        self.last
            .is_none_or(|last| now.saturating_sub(last) >= interval)
    }
}

struct Limiter {
    max: u32,
    interval: u64,
    clients: HashMap<String, Window>,
}

struct Windows {
    /// The settings these windows were counted under.
    settings: Weak<Settings>,
    limiters: HashMap<String, Limiter>,
    count: usize,
    next_sweep: u64,
}

/// All windows of the app; one lock, held only for map lookups.
pub struct RateLimiter {
    started: Instant,
    windows: Mutex<Windows>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new()
    }
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter {
            started: Instant::now(),
            windows: Mutex::new(Windows {
                settings: Weak::new(),
                limiters: HashMap::new(),
                count: 0,
                next_sweep: SWEEP_EVERY_SECS,
            }),
        }
    }

    /// Admits `hit` or answers 429. The caller has already checked that
    /// limits are enabled and that the caller is neither a superuser nor an
    /// excluded IP.
    pub fn admit(&self, settings: &Arc<Settings>, hit: &Hit<'_>) -> Result<(), ApiError> {
        self.admit_at(settings, hit, self.started.elapsed().as_secs())
    }

    fn admit_at(&self, settings: &Arc<Settings>, hit: &Hit<'_>, now: u64) -> Result<(), ApiError> {
        if hit.client.is_empty() {
            return Ok(());
        }
        let Some(rule) = find_rule(&settings.rate_limits.rules, &hit.labels(), hit.audience) else {
            return Ok(());
        };
        let limiter_id = hit.limiter_id(rule);
        let mut windows = match self.windows.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        windows.follow(settings);
        windows.maybe_sweep(now);
        windows
            .consume(limiter_id, rule, hit.client, now)
            .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })
    }
}

impl Windows {
    /// Saving the settings starts every window afresh, as in the reference.
    fn follow(&mut self, settings: &Arc<Settings>) {
        if !Weak::ptr_eq(&self.settings, &Arc::downgrade(settings)) {
            self.settings = Arc::downgrade(settings);
            self.limiters.clear();
            self.count = 0;
        }
    }

    fn consume(
        &mut self,
        limiter_id: String,
        rule: &RateLimitRule,
        client: &str,
        now: u64,
    ) -> Result<(), u64> {
        let (max, interval) = rule_limits(rule);
        let limiter = self.limiters.entry(limiter_id).or_insert_with(|| Limiter {
            max,
            interval,
            clients: HashMap::new(),
        });
        if let Some(window) = limiter.clients.get_mut(client) {
            return window.consume(limiter.max, limiter.interval, now);
        }
        let mut window = Window::default();
        let verdict = window.consume(limiter.max, limiter.interval, now);
        limiter.clients.insert(client.to_string(), window);
        self.count += 1;
        if self.count > MAX_WINDOWS {
            self.sweep(now);
            self.evict_stalest();
        }
        verdict
    }

    fn maybe_sweep(&mut self, now: u64) {
        if now >= self.next_sweep {
            self.sweep(now);
        }
    }

    /// Drops windows that have refilled (and limiters left empty).
    fn sweep(&mut self, now: u64) {
        self.next_sweep = now + SWEEP_EVERY_SECS;
        self.limiters.retain(|_, limiter| {
            let interval = limiter.interval;
            limiter.clients.retain(|_, w| !w.refilled(interval, now));
            !limiter.clients.is_empty()
        });
        self.count = self.limiters.values().map(|l| l.clients.len()).sum();
    }

    /// Still over the bound (a flood of fresh addresses): drop the tenth
    /// of windows used longest ago. Those clients start afresh.
    fn evict_stalest(&mut self) {
        if self.count <= MAX_WINDOWS {
            return;
        }
        let mut lasts: Vec<u64> = self
            .limiters
            .values()
            .flat_map(|l| l.clients.values().map(|w| w.last.unwrap_or(0)))
            .collect();
        let mut quota = (self.count - MAX_WINDOWS * 9 / 10).min(lasts.len());
        let Some(nth) = quota.checked_sub(1) else {
            return;
        };
        let cutoff = *lasts.select_nth_unstable(nth).1;
        // Older than the cutoff first, then as many at the cutoff as needed.
        for pass_at_cutoff in [false, true] {
            for limiter in self.limiters.values_mut() {
                limiter.clients.retain(|_, w| {
                    let last = w.last.unwrap_or(0);
                    let stale = last < cutoff || (pass_at_cutoff && last == cutoff);
                    if stale && quota > 0 {
                        quota -= 1;
                        return false;
                    }
                    true
                });
            }
        }
        self.limiters.retain(|_, l| !l.clients.is_empty());
        self.count = self.limiters.values().map(|l| l.clients.len()).sum();
    }
}

/// A rule's allowance; validation keeps both at least 1.
fn rule_limits(rule: &RateLimitRule) -> (u32, u64) {
    let max = u32::try_from(rule.max_requests.max(0)).unwrap_or(u32::MAX);
    let interval = u64::try_from(rule.duration.max(1)).unwrap_or(1);
    (max, interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RateLimitsSettings;

    fn rule(label: &str, audience: &str, duration: i64, max: i64) -> RateLimitRule {
        RateLimitRule {
            label: label.into(),
            audience: audience.into(),
            duration,
            max_requests: max,
            ..RateLimitRule::default()
        }
    }

    fn labels(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn settings(rules: Vec<RateLimitRule>) -> Arc<Settings> {
        Arc::new(Settings {
            rate_limits: RateLimitsSettings {
                enabled: true,
                rules,
                ..RateLimitsSettings::default()
            },
            ..Settings::default()
        })
    }

    fn hit<'a>(method: &'a str, path: &'a str, client: &'a str) -> Hit<'a> {
        Hit {
            method,
            path,
            audience: Audience::Guest,
            client,
            route: None,
        }
    }

    fn auth_hit<'a>(client: &'a str, name: &'a str) -> Hit<'a> {
        Hit {
            method: "POST",
            path: "/api/collections/users/auth-with-password",
            audience: Audience::Guest,
            client,
            route: Some(CollectionRoute {
                id: name,
                name,
                tag: &AUTH_PASSWORD,
            }),
        }
    }

    #[test]
    fn collection_routes_are_classified_with_their_tags() {
        let path = ["api", "collections", "users", "auth-with-password"];
        let (c, tag) = classify(Method::Post, &path).unwrap();
        assert_eq!(
            (c, tag.actions),
            ("users", &["authWithPassword", "auth"][..])
        );
        let path = ["api", "collections", "posts", "records", "abc"];
        assert_eq!(classify(Method::Patch, &path).unwrap().1, &UPDATE);
        assert_eq!(classify(Method::Head, &path).unwrap().1, &VIEW);
        let path = ["api", "files", "posts", "abc", "a.txt"];
        assert_eq!(classify(Method::Get, &path).unwrap().1, &FILE);
        assert!(classify(Method::Get, &["api", "health"]).is_none());
        assert!(classify(Method::Post, &["api", "collections", "users", "nope"]).is_none());
        assert!(classify(Method::Put, &["api", "collections", "users", "records"]).is_none());
    }

    #[test]
    fn tags_come_first_collection_before_wildcard() {
        let rules = vec![rule("*:auth", "", 3, 2), rule("users:auth", "", 9, 9)];
        let l = auth_hit("1.1.1.1", "users").labels();
        assert_eq!(
            l,
            labels(&[
                "users:authWithPassword",
                "users:auth",
                "*:authWithPassword",
                "*:auth",
                "POST /api/collections/users/auth-with-password",
                "/api/collections/users/auth-with-password",
            ])
        );
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().label,
            "users:auth"
        );
    }

    #[test]
    fn exact_labels_beat_prefixes_and_method_labels_beat_paths() {
        let rules = vec![
            rule("/api/", "", 10, 300),
            rule("/api/batch", "", 1, 3),
            rule("POST /api/batch", "", 1, 1),
        ];
        let l = labels(&["POST /api/batch", "/api/batch"]);
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().label,
            "POST /api/batch"
        );
        let l = labels(&["GET /api/batch", "/api/batch"]);
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().label,
            "/api/batch"
        );
        let l = labels(&["GET /api/health", "/api/health"]);
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().label,
            "/api/"
        );
        // A prefix matches the path itself too (`/api` under `/api/`).
        let l = labels(&["GET /api", "/api"]);
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().label,
            "/api/"
        );
        let l = labels(&["GET /_/", "/_/"]);
        assert!(find_rule(&rules, &l, Audience::Guest).is_none());
    }

    #[test]
    fn method_prefixes_match_only_their_method() {
        let rules = vec![rule("POST /api/collections/", "", 1, 1)];
        let l = labels(&[
            "POST /api/collections/x/records",
            "/api/collections/x/records",
        ]);
        assert!(find_rule(&rules, &l, Audience::Guest).is_some());
        let l = labels(&[
            "GET /api/collections/x/records",
            "/api/collections/x/records",
        ]);
        assert!(find_rule(&rules, &l, Audience::Guest).is_none());
    }

    #[test]
    fn audiences_pass_over_rules_for_others() {
        let rules = vec![rule("/api/", "@auth", 1, 1), rule("/api/", "@guest", 1, 5)];
        let l = labels(&["GET /api/x", "/api/x"]);
        assert_eq!(
            find_rule(&rules, &l, Audience::Guest).unwrap().max_requests,
            5
        );
        assert_eq!(
            find_rule(&rules, &l, Audience::Auth).unwrap().max_requests,
            1
        );
        let rules = vec![rule("/api/", "@auth", 1, 1)];
        assert!(find_rule(&rules, &l, Audience::Guest).is_none());
    }

    #[test]
    fn a_window_refills_after_duration_since_the_last_admitted_request() {
        let mut w = Window::default();
        assert_eq!(w.consume(2, 3, 100), Ok(()));
        assert_eq!(w.consume(2, 3, 101), Ok(()));
        assert_eq!(w.consume(2, 3, 102), Err(2));
        assert_eq!(w.consume(2, 3, 103), Err(1));
        assert_eq!(w.consume(2, 3, 104), Ok(()));
        assert_eq!(w.consume(2, 3, 104), Ok(()));
        assert_eq!(w.consume(2, 3, 106), Err(1));
        // A clock at zero (a fresh limiter) still starts with a full window.
        let mut w = Window::default();
        assert_eq!(w.consume(1, 5, 0), Ok(()));
        assert_eq!(w.consume(1, 5, 0), Err(5));
    }

    #[test]
    fn the_third_sign_in_within_three_seconds_is_refused() {
        let limiter = RateLimiter::new();
        let s = settings(RateLimitsSettings::default().rules);
        let h = auth_hit("1.1.1.1", "users");
        assert!(limiter.admit_at(&s, &h, 0).is_ok());
        assert!(limiter.admit_at(&s, &h, 1).is_ok());
        let err = limiter.admit_at(&s, &h, 2).unwrap_err();
        assert_eq!(
            err,
            ApiError::TooManyRequests {
                retry_after_secs: 2
            }
        );
        assert_eq!(err.message(), "Too Many Requests.");
        // Another client, another collection: own windows.
        assert!(limiter
            .admit_at(&s, &auth_hit("2.2.2.2", "users"), 2)
            .is_ok());
        assert!(limiter
            .admit_at(&s, &auth_hit("1.1.1.1", "admins"), 2)
            .is_ok());
        assert!(limiter.admit_at(&s, &h, 4).is_ok());
    }

    #[test]
    fn paths_under_one_rule_share_its_windows() {
        let limiter = RateLimiter::new();
        let s = settings(vec![rule("/api/", "", 10, 2)]);
        assert!(limiter
            .admit_at(&s, &hit("GET", "/api/health", "ip"), 0)
            .is_ok());
        assert!(limiter
            .admit_at(&s, &hit("GET", "/api/nothing", "ip"), 0)
            .is_ok());
        assert!(limiter
            .admit_at(&s, &hit("POST", "/api/batch", "ip"), 0)
            .is_err());
        assert!(limiter.admit_at(&s, &hit("GET", "/_/", "ip"), 0).is_ok());
    }

    #[test]
    fn saving_the_settings_starts_afresh() {
        let limiter = RateLimiter::new();
        let s = settings(vec![rule("/api/", "", 10, 1)]);
        let h = hit("GET", "/api/health", "ip");
        assert!(limiter.admit_at(&s, &h, 0).is_ok());
        assert!(limiter.admit_at(&s, &h, 0).is_err());
        let saved = Arc::new((*s).clone());
        assert!(limiter.admit_at(&saved, &h, 0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let limiter = RateLimiter::new();
        let s = settings(vec![rule("/api/", "", 3600, 5)]);
        let mut last = String::new();
        for n in 0..(MAX_WINDOWS + 500) {
            last = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
            // Many clients per second, so evictions must split a second.
            let now = (n / 5000) as u64;
            assert!(limiter
                .admit_at(&s, &hit("GET", "/api/x", &last), now)
                .is_ok());
        }
        let windows = limiter.windows.lock().unwrap();
        assert!(windows.count <= MAX_WINDOWS, "{}", windows.count);
        assert!(windows.count >= MAX_WINDOWS * 9 / 10);
        assert!(windows
            .limiters
            .values()
            .any(|l| l.clients.contains_key(&last)));
    }

    #[test]
    fn sweeps_drop_refilled_windows() {
        let limiter = RateLimiter::new();
        let s = settings(vec![rule("/api/", "", 2, 5)]);
        for n in 0..10 {
            let client = format!("ip{n}");
            assert!(limiter
                .admit_at(&s, &hit("GET", "/api/x", &client), 0)
                .is_ok());
        }
        assert!(limiter
            .admit_at(&s, &hit("GET", "/api/x", "late"), SWEEP_EVERY_SECS)
            .is_ok());
        let windows = limiter.windows.lock().unwrap();
        assert_eq!(windows.count, 1);
    }
}
