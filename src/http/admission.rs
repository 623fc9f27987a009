//! Whether a request may go on to its handler at all, decided once the
//! caller's auth is known: the superuser IP allow-list (`superuserIPs`),
//! then the rate limits (`rateLimits`), in the reference's order.
//!
//! Owns the glue between a request and the limiter: who is exempt
//! (superusers, excluded IPs), the audience, the route tag's collection.
//! Must never read a body or touch the database: it runs before the
//! handler, on every request.

use super::client_ip;
use super::ratelimit::{self, Audience, CollectionRoute, Hit};
use super::request::{Method, Req};
use crate::app::Ctx;
use crate::error::ApiError;
use crate::settings::Settings;
use std::net::IpAddr;
use std::sync::Arc;

/// 403 for a superuser outside `superuserIPs`, 429 past a rate limit.
pub fn admit(ctx: &Ctx<'_>, req: &Req<'_>, path: &[&str]) -> Result<(), ApiError> {
    let settings = ctx.app.settings();
    if ctx.is_superuser() && !superuser_ip_allowed(&settings, ctx.remote_ip) {
        return Err(ip_not_allowed());
    }
    rate_limit(ctx, req.method, path, &settings)
}

/// Whether a superuser may act from `ip`: always when `superuserIPs` is
/// empty, else only from a listed IP or subnet.
pub fn superuser_ip_allowed(settings: &Settings, ip: Option<IpAddr>) -> bool {
    settings.superuser_ips.is_empty()
        || ip.is_some_and(|ip| client_ip::in_list(&settings.superuser_ips, ip))
}

/// The reference's 403 for a superuser outside `superuserIPs` (also
/// answered to a correct superuser sign-in from there).
pub fn ip_not_allowed() -> ApiError {
    ApiError::Forbidden("You are not allowed to perform this request.".into())
}

fn rate_limit(
    ctx: &Ctx<'_>,
    method: Method,
    path: &[&str],
    settings: &Arc<Settings>,
) -> Result<(), ApiError> {
    let limits = &settings.rate_limits;
    if !limits.enabled || ctx.is_superuser() {
        return Ok(());
    }
    let Some(ip) = ctx.remote_ip else {
        return Ok(());
    };
    if client_ip::in_list(&limits.excluded_ips, ip) {
        return Ok(());
    }
    let route = match ratelimit::classify(method, path) {
        Some((id_or_name, tag)) => match ctx.schema.get(id_or_name) {
            Some(collection) => Some((collection.clone(), tag)),
            // The handler answers 404, and like the reference nothing is counted.
            None => return Ok(()),
        },
        None => None,
    };
    let client = client_ip::display(ip);
    let path_text = format!("/{}", path.join("/"));
    let hit = Hit {
        method: method.name(),
        path: &path_text,
        audience: if ctx.auth.is_some() {
            Audience::Auth
        } else {
            Audience::Guest
        },
        client: &client,
        route: route.as_ref().map(|(collection, tag)| CollectionRoute {
            id: &collection.id,
            name: &collection.name,
            tag,
        }),
    };
    ctx.app.rate_limiter.admit(settings, &hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superuser_ips_allow_everyone_when_empty_and_only_listed_otherwise() {
        let mut settings = Settings::default();
        let local: Option<IpAddr> = "127.0.0.1".parse().ok();
        assert!(superuser_ip_allowed(&settings, local));
        assert!(superuser_ip_allowed(&settings, None));
        settings.superuser_ips = vec!["10.0.0.0/24".into()];
        assert!(!superuser_ip_allowed(&settings, local));
        assert!(!superuser_ip_allowed(&settings, None));
        assert!(superuser_ip_allowed(&settings, "10.0.0.9".parse().ok()));
        assert_eq!(ip_not_allowed().status(), 403);
    }
}
