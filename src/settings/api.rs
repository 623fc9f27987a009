//! `/api/settings`: read (secrets left out), patch (deep merge, validated,
//! stored encrypted when a key is configured) and the test email.

use crate::app::Ctx;
use crate::error::ApiError;
use crate::http::{body, Reply, Req};
use serde_json::Value;

/// `GET /api/settings`
pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    Ok(Reply::json(&super::public_view(&ctx.app.settings())))
}

/// `PATCH /api/settings`
pub fn update(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let patch = Value::Object(
        body::parse(
            req,
            crate::http::request::DEFAULT_BODY_LIMIT,
            &ctx.app.temp_dir(),
        )?
        .values,
    );
    let current = ctx.app.settings();
    let next = super::apply_patch(&current, &patch).map_err(|e| match e {
        super::PatchError::Invalid(errors) => match errors.into_value() {
            Value::Object(map) => {
                ApiError::validation("An error occurred while saving the new settings.", map)
            }
            _ => ApiError::bad_request("An error occurred while saving the new settings."),
        },
        super::PatchError::Malformed(_) => {
            ApiError::bad_request("An error occurred while loading the submitted data.")
        }
    })?;
    let stored =
        crate::boot::encode_settings(&next, &ctx.app.config).map_err(ApiError::internal)?;
    let app = ctx.app.clone();
    let saved = next.clone();
    ctx.app.write(move |tx| {
        tx.conn().execute(
            "INSERT INTO `_params` (id, value, created, updated) VALUES ('settings', ?1, ?2, ?2)
             ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            rusqlite::params![stored, crate::datetime::now_text()],
        )?;
        tx.after_commit(move |_| app.replace_settings(saved));
        Ok(())
    })?;
    Ok(Reply::json(&super::public_view(&next)))
}

/// `POST /api/settings/test/email`: sends a sample of a template through the
/// configured SMTP server and waits for the server's answer.
pub fn test_email(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let body = body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )?
    .values;
    let to = body
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let template = body
        .get("template")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut errors = crate::error::FieldErrors::new();
    if !crate::records::is_email(&to) {
        errors.insert(
            "email".into(),
            crate::error::field_error("validation_is_email", "Must be a valid email address."),
        );
    }
    let Some(sample) = crate::mail::templates::sample(&template) else {
        errors.insert(
            "template".into(),
            crate::error::field_error("validation_in_invalid", "Must be a valid value."),
        );
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            errors,
        ));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(
            "An error occurred while validating the submitted data.",
            errors,
        ));
    }
    let settings = ctx.app.settings();
    let message = sample.render(&settings.meta, &to);
    let config = settings
        .smtp
        .mail_config()
        .map_err(|e| ApiError::bad_request(&format!("Invalid SMTP settings: {e}.")))?;
    crate::mail::send(&config, &message)
        .map_err(|e| ApiError::bad_request(&format!("Failed to send the test email: {e}.")))?;
    Ok(Reply::no_content())
}
