//! Maps method + path to a handler. The table is one `match` so the whole
//! API surface reads in one screen. Unknown paths and wrong methods answer
//! 404 like the reference (it has no 405).
//!
//! GET and HEAD handlers only read: their `db` may be a snapshot a few
//! milliseconds old (`store::reader`), so one that wrote and then read its
//! write back would not find it. Writes belong to the other methods.

use super::request::{Method, Req};
use super::response::{Outcome, Reply};
use crate::app::{App, Ctx};
use crate::error::ApiError;
use crate::{auth, collections, realtime_api, records, settings};
use rusqlite::Connection;
use serde_json::json;
use std::sync::Arc;

/// Routes one request. Authentication is resolved first so every handler
/// sees the same `Ctx`.
pub fn dispatch(app: &Arc<App>, db: &Connection, req: &mut Req<'_>) -> Result<Outcome, ApiError> {
    if req.method == Method::Options && req.header("access-control-request-method").is_some() {
        return Ok(Reply::no_content().into());
    }
    let mut ctx = Ctx::new(app, db, req.remote_ip);
    ctx.auth = auth::token::authenticate(&ctx, req.header("authorization"));
    let segments = Arc::clone(&req.segments);
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    super::admission::admit(&ctx, req, &path)?;
    use Method::*;
    let outcome: Outcome = match (req.method, path.as_slice()) {
        (Get | Head, ["api", "health"]) => health(&ctx, req)?.into(),

        (Get, ["api", "collections"]) => collections::api::list(&ctx, req)?.into(),
        (Post, ["api", "collections"]) => collections::api::create(&ctx, req)?.into(),
        (Put, ["api", "collections", "import"]) => collections::api::import(&ctx, req)?.into(),
        (Get, ["api", "collections", "meta", "scaffolds"]) => {
            collections::api::scaffolds(&ctx)?.into()
        }
        (Get, ["api", "collections", "meta", "oauth2-providers"]) => {
            ctx.require_superuser()?;
            Reply::json(&auth::oauth2::provider_catalogue()).into()
        }
        (Get, ["api", "collections", c]) => collections::api::view(&ctx, req, c)?.into(),
        (Patch, ["api", "collections", c]) => collections::api::update(&ctx, req, c)?.into(),
        (Delete, ["api", "collections", c]) => collections::api::delete(&ctx, c)?.into(),
        (Delete, ["api", "collections", c, "truncate"]) => {
            collections::api::truncate(&ctx, c)?.into()
        }

        (Get, ["api", "collections", c, "records"]) => records::api::list(&ctx, req, c)?.into(),
        (Post, ["api", "collections", c, "records"]) => records::api::create(&ctx, req, c)?,
        (Get, ["api", "collections", c, "records", id]) => {
            records::api::view(&ctx, req, c, id)?.into()
        }
        (Patch, ["api", "collections", c, "records", id]) => {
            records::api::update(&ctx, req, c, id)?
        }
        (Delete, ["api", "collections", c, "records", id]) => {
            records::api::delete(&ctx, req, c, id)?.into()
        }

        (Post, ["api", "batch"]) => records::batch::batch(&ctx, req)?,

        (Post, ["api", "collections", c, "auth-with-password"]) => {
            auth::api::auth_with_password(&ctx, req, c)?
        }
        (Post, ["api", "collections", c, "auth-refresh"]) => {
            auth::api::auth_refresh(&ctx, req, c)?.into()
        }
        (Get, ["api", "collections", c, "auth-methods"]) => {
            auth::api::auth_methods(&ctx, c)?.into()
        }
        (Post, ["api", "collections", c, "request-otp"]) => auth::otp::request_otp(&ctx, req, c)?,
        (Post, ["api", "collections", c, "auth-with-otp"]) => {
            auth::otp::auth_with_otp(&ctx, req, c)?
        }
        (Post, ["api", "collections", c, "request-verification"]) => {
            auth::flows::request_verification(&ctx, req, c)?.into()
        }
        (Post, ["api", "collections", c, "confirm-verification"]) => {
            auth::flows::confirm_verification(&ctx, req, c)?
        }
        (Post, ["api", "collections", c, "request-password-reset"]) => {
            auth::flows::request_password_reset(&ctx, req, c)?.into()
        }
        (Post, ["api", "collections", c, "confirm-password-reset"]) => {
            auth::flows::confirm_password_reset(&ctx, req, c)?
        }
        (Post, ["api", "collections", c, "request-email-change"]) => {
            auth::flows::request_email_change(&ctx, req, c)?.into()
        }
        (Post, ["api", "collections", c, "confirm-email-change"]) => {
            auth::flows::confirm_email_change(&ctx, req, c)?
        }
        (Post, ["api", "collections", c, "impersonate", id]) => {
            auth::impersonate::impersonate(&ctx, req, c, id)?.into()
        }

        (Post, ["api", "collections", c, "auth-with-oauth2"]) => {
            auth::oauth2::auth_with_oauth2(&ctx, req, c)?
        }
        (Get | Post, ["api", "oauth2-redirect"]) => {
            auth::oauth2::oauth2_redirect(&ctx, req)?.into()
        }

        (Get, ["api", "realtime"]) => realtime_api::handlers::connect(&ctx, req)?,
        (Post, ["api", "realtime"]) => realtime_api::handlers::subscribe(&ctx, req)?.into(),

        (Get, ["api", "settings"]) => settings::api::get(&ctx)?.into(),
        (Patch, ["api", "settings"]) => settings::api::update(&ctx, req)?.into(),
        (Post, ["api", "settings", "test", "email"]) => {
            settings::api::test_email(&ctx, req)?.into()
        }
        (Post, ["api", "settings", "apple", "generate-client-secret"]) => {
            auth::oauth2::apple::generate_client_secret(&ctx, req)?.into()
        }

        // The logs API is not served yet; its guard already is, so a
        // non-superuser token is refused as the reference refuses it.
        (_, ["api", "logs", ..]) => {
            ctx.require_superuser()?;
            super::static_files::serve(&app.config.public_dir, app.config.index_fallback, req)?
                .into()
        }

        _ => super::static_files::serve(&app.config.public_dir, app.config.index_fallback, req)?
            .into(),
    };
    Ok(outcome)
}

/// `GET /api/health`: liveness, plus a few facts for superusers.
fn health(ctx: &Ctx<'_>, req: &Req<'_>) -> Result<Reply, ApiError> {
    let data = if ctx.is_superuser() {
        let settings = ctx.app.settings();
        let proxy_header =
            super::client_ip::possible_proxy_header(req.headers(), &settings.trusted_proxy);
        json!({ "canBackup": true, "realIP": ctx.client_ip(), "possibleProxyHeader": proxy_header })
    } else {
        json!({})
    };
    Ok(Reply::json(
        &json!({ "message": "API is healthy.", "code": 200, "data": data }),
    ))
}
