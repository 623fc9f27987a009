//! Reading and checking the bodies of the auth endpoints: text values as
//! the reference reads them, and its validation codes and messages for the
//! inputs they share (emails, lengths, required values).
//!
//! Pure input handling: no database, no hashing, no decisions about
//! records.

use crate::app::Ctx;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{body, Req};
use crate::records;
use serde_json::{json, Map, Value};

/// The message of a 400 with field errors on these endpoints.
pub const INVALID_DATA: &str = "An error occurred while validating the submitted data.";
/// Longest email the request endpoints accept (the reference's limit).
const MAX_EMAIL_LEN: usize = 255;

/// The parsed body (JSON, form or multipart).
pub fn read_body(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Map<String, Value>, ApiError> {
    Ok(body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )?
    .values)
}

/// A text value of the body ("" when missing or not text).
pub fn text(body: &Map<String, Value>, key: &str) -> String {
    match body.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub fn required() -> Value {
    field_error("validation_required", "Cannot be blank.")
}

pub fn length_error(min: usize, max: usize) -> Value {
    json!({
        "code": "validation_length_out_of_range",
        "message": format!("The length must be between {min} and {max}."),
        "params": {"max": max, "min": min},
    })
}

/// The reference's checks of an email input: required, 1–255 long, valid.
pub fn email_error(value: &str) -> Option<Value> {
    if value.is_empty() {
        Some(required())
    } else if value.chars().count() > MAX_EMAIL_LEN {
        Some(length_error(1, MAX_EMAIL_LEN))
    } else if !records::is_email(value) {
        Some(field_error(
            "validation_is_email",
            "Must be a valid email address.",
        ))
    } else {
        None
    }
}

/// The email under `key`, or the 400 naming it.
pub fn valid_email(body: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    let email = text(body, key);
    match email_error(&email) {
        Some(error) => Err(ApiError::validation(
            INVALID_DATA,
            FieldErrors::from_iter([(key.to_string(), error)]),
        )),
        None => Ok(email),
    }
}
