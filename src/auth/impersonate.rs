//! `POST /api/collections/{c}/impersonate/{id}`: a superuser gets an auth
//! token of another record, for `duration` seconds (default: the
//! collection's auth token lifetime). The token is not refreshable:
//! `auth-refresh` hands the same token back, so it ends when it expires.
//!
//! Superusers only; it never opens an MFA session and never records a
//! login origin (the reference treats it as no sign-in method).

use super::api::{auth_collection, auth_reply, auth_rule_allows, owner_view, present_options};
use super::input::{read_body, INVALID_DATA};
use super::token::{self, TokenKind};
use crate::app::Ctx;
use crate::error::{ApiError, FieldErrors};
use crate::http::{Reply, Req};
use crate::records::sql;
use serde_json::{json, Value};

/// `POST /api/collections/{c}/impersonate/{id}`
pub fn impersonate(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    match &ctx.auth {
        None => return Err(ApiError::auth_required()),
        Some(auth) if !auth.is_superuser() => {
            return Err(ApiError::Forbidden(
                "The authorized record is not allowed to perform this action.".into(),
            ))
        }
        Some(_) => {}
    }
    let collection = auth_collection(ctx, c)?;
    let record = sql::find_by_id(ctx.db, &collection, id)?.ok_or_else(ApiError::not_found)?;
    let body = read_body(ctx, req)?;
    let duration = match duration(body.get("duration"))? {
        0 => token::duration_secs(&collection, TokenKind::Auth),
        secs => secs,
    };
    if !auth_rule_allows(ctx, &collection, &record)? {
        return Err(ApiError::Forbidden(
            "The request doesn't satisfy the collection requirements to authenticate.".into(),
        ));
    }
    let token = token::issue(
        &collection,
        &record,
        TokenKind::Auth,
        duration,
        &[("refreshable", json!(false))],
    )
    .map_err(ApiError::internal)?;
    let options = present_options(req)?;
    let shown = owner_view(ctx, &collection, &record, &options.expand);
    auth_reply(
        &collection,
        &record,
        shown,
        Some(token),
        options.fields.as_ref(),
    )
}

/// The requested lifetime: a whole, non-negative number of seconds (0 or
/// absent for the default).
fn duration(value: Option<&Value>) -> Result<i64, ApiError> {
    let secs = match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(unreadable)?,
        // Form bodies carry text.
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| unreadable())?,
        Some(_) => return Err(unreadable()),
    };
    if secs < 0 {
        let mut errors = FieldErrors::new();
        errors.insert(
            "duration".into(),
            json!({
                "code": "validation_min_greater_equal_than_required",
                "message": "Must be no less than 0.",
                "params": {"threshold": 0},
            }),
        );
        return Err(ApiError::validation(INVALID_DATA, errors));
    }
    Ok(secs)
}

fn unreadable() -> ApiError {
    ApiError::bad_request("An error occurred while loading the submitted data.")
}

#[cfg(test)]
mod tests {
    use super::duration;
    use serde_json::json;

    #[test]
    fn durations_as_the_reference_reads_them() {
        assert_eq!(duration(None).unwrap(), 0);
        assert_eq!(duration(Some(&json!(3600))).unwrap(), 3600);
        assert_eq!(duration(Some(&json!("60"))).unwrap(), 60);
        assert_eq!(duration(Some(&json!(-1))).unwrap_err().status(), 400);
        assert_eq!(duration(Some(&json!("abc"))).unwrap_err().status(), 400);
        assert_eq!(duration(Some(&json!(1.5))).unwrap_err().status(), 400);
        assert_eq!(duration(Some(&json!([1]))).unwrap_err().status(), 400);
    }
}
