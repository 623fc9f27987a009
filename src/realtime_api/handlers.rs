//! `GET /api/realtime` and `POST /api/realtime`: plain functions from the
//! request to what the server should do, like every other handler.
//!
//! Opening a stream takes a hub slot first, so a full server answers a
//! normal 503 JSON error with `Retry-After`; only then does the handler ask
//! the server to hand over the connection (`Outcome::Stream`).

use super::ClientAuth;
use crate::app::Ctx;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::request::DEFAULT_BODY_LIMIT;
use crate::http::{body, Outcome, Reply, Req};
use crate::realtime::{ConnectRefused, HubError};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The reference's bound on a client id's length.
const MAX_CLIENT_ID_LEN: usize = 255;

const BAD_REQUEST: &str = "Something went wrong while processing your request.";

/// `GET /api/realtime`: reserves a slot, then has the server hand the
/// socket to the hub, which writes the stream head and `PB_CONNECT`.
pub fn connect(ctx: &Ctx<'_>, req: &Req<'_>) -> Result<Outcome, ApiError> {
    let reservation = ctx
        .app
        .realtime
        .hub
        .reserve(address_for_caps(ctx, req))
        .map_err(unavailable)?;
    Ok(Outcome::Stream(Box::new(
        move |stream, headers| match reservation.open(stream, headers) {
            Ok(id) => log::debug!("realtime client {id} connected"),
            Err(e) => log::debug!("realtime stream not opened: {e}"),
        },
    )))
}

fn unavailable(refused: ConnectRefused) -> ApiError {
    ApiError::Unavailable {
        message: refused.message().to_string(),
        retry_after_secs: refused.retry_after_secs(),
    }
}

/// The client address the per-address cap may count, or `None` when the
/// address is not the client's own. A configured trusted-proxy header wins;
/// otherwise a loopback peer is taken to be a local reverse proxy whose
/// forwarding is not trusted, and counting it would make every client
/// behind it share one cap.
fn address_for_caps(ctx: &Ctx<'_>, req: &Req<'_>) -> Option<IpAddr> {
    let settings = ctx.app.settings();
    let proxy = &settings.trusted_proxy;
    for name in proxy.headers.iter().filter(|h| !h.trim().is_empty()) {
        if let Some(ip) = req
            .header(name)
            .and_then(|v| forwarded_ip(v, proxy.use_leftmost_ip))
        {
            return Some(ip);
        }
    }
    ctx.remote_ip.filter(|ip| !ip.to_canonical().is_loopback())
}

/// The rightmost (or leftmost) address of a forwarding header's list.
fn forwarded_ip(value: &str, leftmost: bool) -> Option<IpAddr> {
    let mut addresses = value.split(',').map(str::trim).filter(|a| !a.is_empty());
    let chosen = if leftmost {
        addresses.next()
    } else {
        addresses.next_back()
    };
    chosen?.parse().ok()
}

/// `POST /api/realtime` `{clientId, subscriptions}`: replaces the client's
/// subscriptions and binds the request's auth to it. 204.
pub fn subscribe(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    let values = body::parse(req, DEFAULT_BODY_LIMIT, &ctx.app.temp_dir())?.values;
    let form = SubscribeForm::read(&values)?;
    form.validate(ctx.app.realtime.hub.config())?;
    let requested = ctx.auth.clone().map(ClientAuth::new);
    let applied = ctx.app.realtime.hub.update(&form.client_id, |state| {
        // Only a guest -> auth upgrade is allowed; any other change of a
        // bound auth (another record, or none) is refused.
        if let Some(bound) = state.auth() {
            if requested.as_ref() != Some(bound) {
                return Err(ApiError::Forbidden(
                    "The current and the previous request authorization don't match.".into(),
                ));
            }
        }
        state
            .replace_subscriptions(form.subscriptions)
            .map_err(subscriptions_error)?;
        // Rebinding the same record refreshes its values for the rules.
        state.set_auth(requested);
        Ok(())
    });
    match applied {
        Ok(result) => result.map(|()| Reply::no_content()),
        Err(HubError::UnknownClient) => {
            Err(ApiError::NotFound("Missing or invalid client id.".into()))
        }
        Err(other) => Err(subscriptions_error(other)),
    }
}

/// The body of a subscribe call.
#[derive(Debug)]
struct SubscribeForm {
    client_id: String,
    subscriptions: Vec<String>,
}

impl SubscribeForm {
    /// JSON or form values; a form's single subscription is a string.
    fn read(values: &Map<String, Value>) -> Result<SubscribeForm, ApiError> {
        let client_id = match values.get("clientId") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(ApiError::bad_request(BAD_REQUEST)),
        };
        let subscriptions = match values.get("subscriptions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| ApiError::bad_request(BAD_REQUEST))?,
            Some(_) => return Err(ApiError::bad_request(BAD_REQUEST)),
        };
        Ok(SubscribeForm {
            client_id,
            subscriptions,
        })
    }

    /// The reference's checks (before the client is looked up, so a bad
    /// body is a 400 even for an unknown client), plus line breaks, which
    /// would break the SSE framing once a subscription names an event.
    fn validate(&self, limits: &crate::realtime::HubConfig) -> Result<(), ApiError> {
        let mut errors = FieldErrors::new();
        let id_len = self.client_id.chars().count();
        if self.client_id.is_empty() {
            errors.insert(
                "clientId".into(),
                field_error("validation_required", "Cannot be blank."),
            );
        } else if id_len > MAX_CLIENT_ID_LEN {
            let message = format!("The length must be between 1 and {MAX_CLIENT_ID_LEN}.");
            errors.insert(
                "clientId".into(),
                field_error("validation_length_out_of_range", &message),
            );
        }
        if self.subscriptions.len() > limits.max_subscriptions {
            let message = format!(
                "The length must be no more than {}.",
                limits.max_subscriptions
            );
            errors.insert(
                "subscriptions".into(),
                field_error("validation_length_too_long", &message),
            );
        } else {
            let per_item = subscription_errors(&self.subscriptions, limits.max_subscription_len);
            if !per_item.is_empty() {
                errors.insert("subscriptions".into(), Value::Object(per_item));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(BAD_REQUEST, errors))
        }
    }
}

/// Errors of single subscriptions, keyed by their index as a string.
fn subscription_errors(subscriptions: &[String], max_len: usize) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (index, topic) in subscriptions.iter().enumerate() {
        let error = if topic.chars().count() > max_len {
            let message = format!("The length must be no more than {max_len}.");
            field_error("validation_length_too_long", &message)
        } else if topic.contains(['\r', '\n']) {
            field_error("validation_invalid_value", "Must not contain line breaks.")
        } else {
            continue;
        };
        errors.insert(index.to_string(), error);
    }
    errors
}

/// The hub's own checks; `validate` has already caught these, so this only
/// guards against the two drifting apart.
fn subscriptions_error(err: HubError) -> ApiError {
    match err {
        HubError::UnknownClient => ApiError::NotFound("Missing or invalid client id.".into()),
        other => ApiError::field(
            BAD_REQUEST,
            "subscriptions",
            "validation_invalid_value",
            &other.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::HubConfig;
    use serde_json::json;

    fn form(value: Value) -> Result<SubscribeForm, ApiError> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        SubscribeForm::read(&map)
    }

    fn status_of(value: Value) -> u16 {
        let limits = HubConfig {
            max_subscriptions: 2,
            max_subscription_len: 5,
            ..HubConfig::default()
        };
        match form(value).and_then(|f| f.validate(&limits)) {
            Ok(()) => 204,
            Err(e) => e.status(),
        }
    }

    #[test]
    fn the_reference_form_checks() {
        assert_eq!(
            status_of(json!({"clientId": "abc", "subscriptions": ["a/*"]})),
            204
        );
        assert_eq!(
            status_of(json!({"clientId": "abc"})),
            204,
            "no list = unsubscribe all"
        );
        assert_eq!(status_of(json!({"subscriptions": ["a/*"]})), 400);
        assert_eq!(status_of(json!({"clientId": "x".repeat(256)})), 400);
        assert_eq!(status_of(json!({"clientId": 5})), 400);
        assert_eq!(
            status_of(json!({"clientId": "a", "subscriptions": ["a", "b", "c"]})),
            400
        );
        assert_eq!(
            status_of(json!({"clientId": "a", "subscriptions": ["toolong"]})),
            400
        );
        assert_eq!(
            status_of(json!({"clientId": "a", "subscriptions": ["a\nb"]})),
            400
        );
        assert_eq!(
            status_of(json!({"clientId": "a", "subscriptions": [1]})),
            400
        );
        assert_eq!(
            status_of(json!({"clientId": "a", "subscriptions": "a/*"})),
            204
        );
    }

    #[test]
    fn validation_errors_name_the_field_and_the_index() {
        let limits = HubConfig {
            max_subscription_len: 5,
            ..HubConfig::default()
        };
        let err = form(json!({"clientId": "", "subscriptions": ["ok", "toolong"]}))
            .and_then(|f| f.validate(&limits))
            .unwrap_err();
        let body = err.to_json();
        assert_eq!(body["data"]["clientId"]["code"], "validation_required");
        assert_eq!(
            body["data"]["subscriptions"]["1"]["code"],
            "validation_length_too_long"
        );
    }

    #[test]
    fn forwarding_headers_pick_the_configured_end_of_the_list() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(forwarded_ip("1.1.1.1, 2.2.2.2", false), ip("2.2.2.2"));
        assert_eq!(forwarded_ip("1.1.1.1, 2.2.2.2", true), ip("1.1.1.1"));
        assert_eq!(forwarded_ip(" , ", false), None);
        assert_eq!(forwarded_ip("unknown", false), None);
    }
}
