//! The one error type of the API. Every handler returns `Result<_, ApiError>`,
//! and `ApiError::to_json` is the only place that turns a failure into the
//! reference's error body `{"status", "message", "data"}`.
//!
//! Internal failures are logged with their context and answered with a plain
//! 500 that leaks nothing about the cause.

use serde_json::{json, Map, Value};

/// Validation failures: field name → `{"code", "message"}` (or a nested map
/// for structured values, with array indexes as string keys).
pub type FieldErrors = Map<String, Value>;

/// One validation failure, as it appears under `data.<field>`.
pub fn field_error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// A failed request, mapped to its HTTP status by `status()`.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400 with per-field validation errors in `data`.
    Validation {
        message: String,
        errors: FieldErrors,
    },
    /// 400 without field details: bad JSON, bad filter, unsupported operation.
    BadRequest(String),
    /// 401: the endpoint needs a valid auth token and has none.
    Unauthorized(String),
    /// 403: authenticated (or not) but not allowed.
    Forbidden(String),
    /// 404: no such route, collection or record (or hidden by a rule).
    NotFound(String),
    /// 413: the request body is over its limit.
    PayloadTooLarge,
    /// 429: a rate limit or a brute-force guard refused the request.
    TooManyRequests { retry_after_secs: u64 },
    /// 429 with its own message: too many wrong guesses of one secret
    /// (an OTP, an MFA session's second factor).
    TooManyAttempts {
        message: &'static str,
        retry_after_secs: u64,
    },
    /// 503: a bounded resource (hashing pool, client slots) is full.
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// 500: a bug or an I/O failure. The text is logged, never sent.
    Internal(String),
}

impl ApiError {
    pub fn validation(message: &str, errors: FieldErrors) -> ApiError {
        ApiError::Validation {
            message: message.to_string(),
            errors,
        }
    }

    /// A 400 naming a single field.
    pub fn field(message: &str, field: &str, code: &str, detail: &str) -> ApiError {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), field_error(code, detail));
        ApiError::validation(message, errors)
    }

    pub fn bad_request(message: &str) -> ApiError {
        ApiError::BadRequest(message.to_string())
    }

    pub fn not_found() -> ApiError {
        ApiError::NotFound("The requested resource wasn't found.".to_string())
    }

    pub fn superusers_only() -> ApiError {
        ApiError::Forbidden("Only superusers can perform this action.".to_string())
    }

    pub fn auth_required() -> ApiError {
        ApiError::Unauthorized("The request requires valid record authorization token.".to_string())
    }

    pub fn internal(context: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(context.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::PayloadTooLarge => 413,
            ApiError::TooManyRequests { .. } | ApiError::TooManyAttempts { .. } => 429,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::Validation { message, .. } | ApiError::Unavailable { message, .. } => message,
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m) => m,
            ApiError::PayloadTooLarge => "Request entity too large.",
            ApiError::TooManyRequests { .. } => "Too Many Requests.",
            ApiError::TooManyAttempts { message, .. } => message,
            ApiError::Internal(_) => "Something went wrong while processing your request.",
        }
    }

    /// Seconds for a `Retry-After` header, when the error has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after_secs }
            | ApiError::TooManyAttempts {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The reference's error body.
    pub fn to_json(&self) -> Value {
        let data = match self {
            ApiError::Validation { errors, .. } => Value::Object(errors.clone()),
            _ => Value::Object(Map::new()),
        };
        json!({ "status": self.status(), "message": self.message(), "data": data })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Internal(context) => write!(f, "500: {context}"),
            other => write!(f, "{}: {}", other.status(), other.message()),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> ApiError {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            // The request's queries ran past `--queryTimeout`.
            return ApiError::bad_request("The request took too long to process.");
        }
        ApiError::Internal(format!("sqlite: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_carry_their_fields() {
        let err = ApiError::field(
            "Failed to create record.",
            "title",
            "validation_required",
            "Cannot be blank.",
        );
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.to_json(),
            json!({"status": 400, "message": "Failed to create record.",
                   "data": {"title": {"code": "validation_required", "message": "Cannot be blank."}}})
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let body = ApiError::internal("disk on fire at /secret/path").to_json();
        assert_eq!(body["status"], 500);
        assert!(!body.to_string().contains("secret"));
        assert_eq!(body["data"], json!({}));
    }
}
