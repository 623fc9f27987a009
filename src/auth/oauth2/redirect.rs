//! `GET|POST /api/oauth2-redirect`: where providers send the browser back
//! in the SDK's all-in-one flow. The SDK opened a realtime connection,
//! subscribed to `@oauth2` and used its realtime client id as the OAuth2
//! `state`; this endpoint hands `{state, code, error}` to that client and
//! sends the browser to the dashboard's success or failure page.
//!
//! It never signs anyone in (the app does that with auth-with-oauth2) and
//! never echoes the code anywhere but to the waiting realtime client.

use crate::app::{App, Ctx};
use crate::error::ApiError;
use crate::http::{body, Method, Reply, Req};
use serde_json::{json, Map, Value};

/// The realtime topic the SDK waits on.
pub const OAUTH2_TOPIC: &str = "@oauth2";
pub const SUCCESS_PATH: &str = "../_/#/auth/oauth2-redirect-success";
pub const FAILURE_PATH: &str = "../_/#/auth/oauth2-redirect-failure";

/// What the provider sent back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectData {
    pub state: String,
    pub code: String,
    pub error: String,
}

impl RedirectData {
    /// The `@oauth2` event payload: `error` only when there is one.
    pub fn payload(&self) -> Value {
        let mut payload = json!({"state": self.state, "code": self.code});
        if !self.error.is_empty() {
            payload["error"] = json!(self.error);
        }
        payload
    }
}

/// `GET|POST /api/oauth2-redirect`: 307 (GET) or 303 (POST) to the
/// success page when the client got a code, else to the failure page.
pub fn oauth2_redirect(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    let status = if req.method == Method::Get { 307 } else { 303 };
    let data = match req.method {
        Method::Get => Some(from_pairs(
            req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )),
        _ => read_form(ctx, req),
    };
    let target = match data {
        Some(data) => outcome(ctx.app, &data),
        None => FAILURE_PATH,
    };
    Ok(Reply {
        status,
        headers: vec![("Location".into(), target.into())],
        body: Vec::new(),
    })
}

/// Where the browser goes, after handing the data to the realtime client.
fn outcome(app: &App, data: &RedirectData) -> &'static str {
    if data.state.is_empty() {
        log::debug!("OAuth2 redirect without a state");
        return FAILURE_PATH;
    }
    if !deliver_oauth2_redirect(app, &data.state, &data.payload()) {
        log::debug!("OAuth2 redirect for an unknown realtime client");
        return FAILURE_PATH;
    }
    if !data.error.is_empty() || data.code.is_empty() {
        return FAILURE_PATH;
    }
    SUCCESS_PATH
}

/// The POST body (form, multipart or JSON); unreadable → `None`.
fn read_form(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Option<RedirectData> {
    let values: Map<String, Value> = body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )
    .map_err(|e| log::debug!("unreadable OAuth2 redirect body: {}", e.message()))
    .ok()?
    .values;
    let text = |key: &str| values.get(key).and_then(Value::as_str).unwrap_or_default();
    Some(RedirectData {
        state: text("state").to_string(),
        code: text("code").to_string(),
        error: text("error").to_string(),
    })
}

fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> RedirectData {
    let mut data = RedirectData::default();
    for (key, value) in pairs {
        let slot = match key {
            "state" => &mut data.state,
            "code" => &mut data.code,
            "error" => &mut data.error,
            _ => continue,
        };
        // The first value wins, as with Go's `Query().Get`.
        if slot.is_empty() {
            *slot = value.to_string();
        }
    }
    data
}

/// Sends `payload` as an `@oauth2` event to realtime client `client_id` if
/// it is connected and subscribed to `@oauth2`, then drops that
/// subscription (one redirect per flow). Returns whether it was sent.
pub fn deliver_oauth2_redirect(app: &App, client_id: &str, payload: &Value) -> bool {
    let hub = &app.realtime.hub;
    // Check and unsubscribe in one step, so two redirects for the same
    // state cannot both be delivered.
    let subscribed = hub.update(client_id, |state| {
        let current: Vec<String> = state
            .subscriptions()
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !current.iter().any(|s| s == OAUTH2_TOPIC) {
            return false;
        }
        let rest = current.into_iter().filter(|s| s != OAUTH2_TOPIC).collect();
        state.replace_subscriptions(rest).is_ok()
    });
    if !matches!(subscribed, Ok(true)) {
        return false;
    }
    hub.send(client_id, OAUTH2_TOPIC, payload.to_string())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_take_the_first_value_and_ignore_the_rest() {
        let data = from_pairs(
            [
                ("state", "s1"),
                ("code", "c"),
                ("state", "s2"),
                ("other", "x"),
            ]
            .into_iter(),
        );
        assert_eq!(
            data,
            RedirectData {
                state: "s1".into(),
                code: "c".into(),
                error: String::new()
            }
        );
    }

    #[test]
    fn the_event_carries_an_error_only_when_there_is_one() {
        let ok = RedirectData {
            state: "s".into(),
            code: "c".into(),
            error: String::new(),
        };
        assert_eq!(ok.payload(), json!({"state": "s", "code": "c"}));
        let failed = RedirectData {
            error: "access_denied".into(),
            ..ok
        };
        assert_eq!(failed.payload()["error"], "access_denied");
    }
}
