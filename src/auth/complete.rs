//! Completing a sign-in once a factor (password, OTP) has succeeded, in one
//! writer job: the flow's own changes (consume the OTP, upgrade a hash,
//! ...), the auth rule, MFA, the login origin and alert, then the token
//! and `{token, record}`. One job means a refused step leaves nothing
//! half-done, and every read sees the writes before it.
//!
//! It never checks credentials (callers did, on the hashing pool) and never
//! runs on a request worker's read connection.

use super::alerts::{self, Origin};
use super::api::{auth_reply, auth_rule_allows, owner_view, present_options};
use super::mfa::{self, MfaStep};
use crate::app::{App, Ctx};
use crate::collections::auth_options::AuthOptions;
use crate::collections::Collection;
use crate::error::ApiError;
use crate::http::{Reply, Req};
use crate::records::api::writer_ctx;
use crate::records::{sql, PresentOptions, RecordValues};
use crate::store::WriteTx;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The factor a sign-in used, as `_mfas.method` names it.
pub const METHOD_PASSWORD: &str = "password";
pub const METHOD_OTP: &str = "otp";
pub const METHOD_OAUTH2: &str = "oauth2";

/// What a sign-in attempt brings besides its credential.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub method: &'static str,
    /// The MFA session the client continues ("" for none).
    pub mfa_id: String,
    pub origin: Origin,
    /// The reply's `?expand=` and `?fields=`; an error is answered only
    /// once the sign-in has succeeded.
    pub present: Result<PresentOptions, ApiError>,
}

impl Attempt {
    /// `mfaId` from the body, else from the query (the SDK sends unknown
    /// options as query parameters).
    pub fn of(
        ctx: &Ctx<'_>,
        req: &Req<'_>,
        body: &Map<String, Value>,
        method: &'static str,
    ) -> Attempt {
        let from_body = body
            .get("mfaId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mfa_id = if from_body.is_empty() {
            req.query_param("mfaId").unwrap_or_default()
        } else {
            from_body
        };
        Attempt {
            method,
            mfa_id: mfa_id.to_string(),
            origin: Origin {
                ip: ctx.client_ip(),
                user_agent: req.header("user-agent").unwrap_or_default().to_string(),
            },
            present: present_options(req),
        }
    }
}

/// The flow's own changes, inside the job, before anything else: gets the
/// record as stored and returns it as changed. An error refuses the
/// sign-in and rolls the job back.
pub type Prelude =
    Box<dyn FnOnce(&App, &mut WriteTx<'_>, RecordValues) -> Result<RecordValues, ApiError> + Send>;

/// Runs the rest of the sign-in of record `record_id` as one writer job
/// and answers it. Blocks until the job has committed: call it off the
/// request workers (from the hashing pool).
pub fn sign_in(
    app: &Arc<App>,
    collection: Arc<Collection>,
    record_id: String,
    attempt: Attempt,
    prelude: Prelude,
) -> Result<Reply, ApiError> {
    let job_app = app.clone();
    app.write(move |tx| {
        let Some(record) = sql::find_by_id(tx.conn(), &collection, &record_id)? else {
            return Err(ApiError::bad_request("Failed to authenticate."));
        };
        let record = prelude(&job_app, tx, record)?;
        Ok(finish(&job_app, tx, &collection, record, &attempt))
    })?
}

/// After the prelude: the gate, then the token. An `Err` inside `Ok` is a
/// refusal whose writes (an opened or spent MFA session, a consumed OTP)
/// are kept.
fn finish(
    app: &Arc<App>,
    tx: &mut WriteTx<'_>,
    collection: &Collection,
    record: RecordValues,
    attempt: &Attempt,
) -> Result<Reply, ApiError> {
    if let Some(challenge) = gate(app, tx, collection, &record, attempt)? {
        return Ok(challenge);
    }
    let present = attempt.present.clone()?;
    let ctx = writer_ctx(app, tx.conn(), None, None);
    let shown = owner_view(&ctx, collection, &record, &present.expand);
    auth_reply(collection, &record, shown, None, present.fields.as_ref())
}

/// What every sign-in method passes once its factor has succeeded, inside
/// its writer job: the auth rule, MFA (`Some` 401 `{mfaId}` challenge to
/// answer instead of a token), then the login origin and its alert.
pub fn gate(
    app: &Arc<App>,
    tx: &mut WriteTx<'_>,
    collection: &Collection,
    record: &RecordValues,
    attempt: &Attempt,
) -> Result<Option<Reply>, ApiError> {
    let ctx = writer_ctx(app, tx.conn(), None, None);
    let options = AuthOptions::from_collection(collection)
        .ok_or_else(|| ApiError::internal("sign-in into a collection without auth options"))?;
    if !auth_rule_allows(&ctx, collection, record)? {
        return Err(ApiError::Forbidden(
            "The request doesn't satisfy the collection requirements to authenticate.".into(),
        ));
    }
    match mfa::check(
        &ctx,
        collection,
        &options,
        record,
        attempt.method,
        &attempt.mfa_id,
    )? {
        MfaStep::Done => {}
        MfaStep::Challenge(mfa_id) => {
            return Ok(Some(Reply::json_status(401, &json!({ "mfaId": mfa_id }))));
        }
        MfaStep::Refused(err) => return Err(err),
    }
    drop(ctx);
    if options.auth_alert.enabled {
        alerts::record_sign_in(app, tx, collection, &options, record, &attempt.origin);
    }
    Ok(None)
}
