//! The batch API, `POST /api/batch`: record creates, updates, upserts and
//! deletes sent together, applied all-or-nothing in ONE writer job and
//! answered in order. This file owns the batch envelope (JSON, or multipart
//! with `@jsonPayload`), its limits from the settings, matching step URLs to
//! record writes, and the reference's error shapes. The writes themselves
//! are `api::run_write`, the code single requests run.
//!
//! It must never hash or verify passwords inside the writer job (that is
//! done on the hashing pool first), never run a step outside the batch's
//! job, and never answer a partial batch: the first failing step fails the
//! job, whose savepoint takes every step back, after-commit actions too.

use super::api::{self, PasswordPlan, PasswordWork, RequestParts, WriteAction};
use super::sql;
use crate::app::{App, Ctx};
use crate::auth::Auth;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::request::{parse_query, percent_decode};
use crate::http::{body, Method, Outcome, Reply, Req};
use crate::settings::BatchSettings;
use crate::store::WriteTx;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The body limit when the settings say `maxBodySize: 0` (the reference's).
const DEFAULT_MAX_BODY: u64 = 128 << 20;
/// The time limit when the settings say `timeout: 0`: a batch always has one.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// The longest step URL accepted, in characters.
const MAX_URL_CHARS: usize = 2000;
/// Methods a step may name; all but the record writes fail when run.
const KNOWN_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `POST /api/batch`
pub fn batch(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Outcome, ApiError> {
    let settings = ctx.app.settings();
    let limits = Limits::from_settings(&settings.batch)?;
    let requests = read_requests(ctx, req, limits.max_body)?;
    check_envelope(requests.as_deref(), limits.max_requests)?;
    let steps: Vec<Step> = requests
        .unwrap_or_default()
        .into_iter()
        .map(|sub| Step::new(sub, req))
        .collect();
    let plans = steps
        .iter()
        .map(|step| step.password_plan(ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let job = BatchJob {
        app: ctx.app.clone(),
        auth: ctx.auth.clone(),
        remote_ip: req.remote_ip,
        steps,
        timeout: limits.timeout,
    };
    if plans.iter().all(PasswordPlan::is_empty) {
        let nothing = plans.iter().map(|_| PasswordWork::default()).collect();
        return Ok(Outcome::Now(job.run(nothing)?));
    }
    Ok(Outcome::Later(Box::new(move || {
        let done = plans
            .into_iter()
            .map(PasswordPlan::run)
            .collect::<Result<Vec<_>, _>>()?;
        job.run(done)
    })))
}

/// The batch limits of the current settings.
#[derive(Debug, PartialEq)]
struct Limits {
    max_requests: usize,
    max_body: u64,
    timeout: Duration,
}

impl Limits {
    /// 403 while batching is off, or allows no request at all.
    fn from_settings(settings: &BatchSettings) -> Result<Limits, ApiError> {
        let max_requests = usize::try_from(settings.max_requests).unwrap_or(0);
        if !settings.enabled || max_requests == 0 {
            return Err(ApiError::Forbidden(
                "Batch requests are not allowed.".into(),
            ));
        }
        let positive = |n: i64| u64::try_from(n).ok().filter(|n| *n > 0);
        Ok(Limits {
            max_requests,
            max_body: positive(settings.max_body_size).unwrap_or(DEFAULT_MAX_BODY),
            timeout: Duration::from_secs(
                positive(settings.timeout).unwrap_or(DEFAULT_TIMEOUT_SECS),
            ),
        })
    }
}

/// One entry of `requests`, as sent.
#[derive(Debug, Default)]
struct SubRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Map<String, Value>,
}

/// The reference's 400 for a body that is not a batch at all.
fn unreadable() -> ApiError {
    ApiError::bad_request("Failed to read the submitted batch data.")
}

/// Reads the body (JSON, or multipart whose `@jsonPayload` holds the JSON)
/// into its requests; `None` when `requests` is missing or null.
fn read_requests(
    ctx: &Ctx<'_>,
    req: &mut Req<'_>,
    limit: u64,
) -> Result<Option<Vec<SubRequest>>, ApiError> {
    let parsed = body::parse(req, limit, &ctx.app.temp_dir()).map_err(|err| match err {
        ApiError::PayloadTooLarge | ApiError::Internal(_) => err,
        _ => unreadable(),
    })?;
    // Files sent as `requests.N.<field>` are dropped with `parsed` (their
    // temp files deleted): record writes do not store uploads yet.
    let mut values = parsed.values;
    match values.remove("requests") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(sub_request)
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(unreadable()),
    }
}

/// One `requests` entry: an object whose known keys have the right types.
fn sub_request(item: Value) -> Result<SubRequest, ApiError> {
    // The reference answers 500 for a `null` entry; a 400 says more.
    let Value::Object(mut fields) = item else {
        return Err(unreadable());
    };
    let text = |value: Option<Value>| match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(unreadable()),
    };
    let method = text(fields.remove("method"))?;
    let url = text(fields.remove("url"))?;
    let headers = match fields.remove("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| text(Some(value)).map(|value| (name, value)))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(unreadable()),
    };
    let body = match fields.remove("body") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(unreadable()),
    };
    Ok(SubRequest {
        method,
        url,
        headers,
        body,
    })
}

/// The reference's 400 for a batch that is readable but not acceptable.
fn invalid_batch(detail: Value) -> ApiError {
    let mut errors = FieldErrors::new();
    errors.insert("requests".into(), detail);
    ApiError::validation("Invalid batch request data.", errors)
}

fn too_long(max: usize) -> Value {
    json!({
        "code": "validation_length_too_long",
        "message": format!("The length must be no more than {max}."),
        "params": {"max": max, "min": 0},
    })
}

/// `requests` present, at most `max` of them, each with a known method and
/// a URL. Every faulty entry is reported, as the reference does.
fn check_envelope(requests: Option<&[SubRequest]>, max: usize) -> Result<(), ApiError> {
    let requests = match requests {
        Some(requests) if !requests.is_empty() => requests,
        _ => {
            return Err(invalid_batch(field_error(
                "validation_required",
                "Cannot be blank.",
            )))
        }
    };
    if requests.len() > max {
        return Err(invalid_batch(too_long(max)));
    }
    let mut faulty = FieldErrors::new();
    for (index, sub) in requests.iter().enumerate() {
        let errors = sub.errors();
        if !errors.is_empty() {
            faulty.insert(index.to_string(), Value::Object(errors));
        }
    }
    if faulty.is_empty() {
        Ok(())
    } else {
        Err(invalid_batch(Value::Object(faulty)))
    }
}

impl SubRequest {
    fn errors(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        if self.method.is_empty() {
            errors.insert(
                "method".into(),
                field_error("validation_required", "Cannot be blank."),
            );
        } else if !KNOWN_METHODS.contains(&self.method.as_str()) {
            errors.insert(
                "method".into(),
                field_error("validation_in_invalid", "Must be a valid value."),
            );
        }
        if self.url.is_empty() {
            errors.insert(
                "url".into(),
                field_error("validation_required", "Cannot be blank."),
            );
        } else if self.url.chars().count() > MAX_URL_CHARS {
            errors.insert("url".into(), too_long(MAX_URL_CHARS));
        }
        errors
    }
}

/// What a step asks for. Only the four record write routes can be
/// batched; anything else fails the step when its turn comes, so an
/// earlier failing step is still the one reported.
#[derive(Debug, Clone)]
enum Target {
    Write(WriteAction),
    /// `PUT .../records`: update when `body.id` exists, else create.
    Upsert {
        collection: String,
    },
    Unsupported,
}

/// Matches `METHOD url` against the batchable routes, exactly as sent: no
/// host, no trailing slash, no empty segment.
fn target_of(method: &str, url: &str) -> Target {
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    let Some(rest) = path.strip_prefix("/api/collections/") else {
        return Target::Unsupported;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Target::Unsupported;
    }
    let (collection, id) = match segments.as_slice() {
        [c, "records"] => (percent_decode(c), None),
        [c, "records", id] => (percent_decode(c), Some(percent_decode(id))),
        _ => return Target::Unsupported,
    };
    match (method, id) {
        ("POST", None) => Target::Write(WriteAction::Create { collection }),
        ("PUT", None) => Target::Upsert { collection },
        ("PATCH", Some(id)) => Target::Write(WriteAction::Update { collection, id }),
        ("DELETE", Some(id)) => Target::Write(WriteAction::Delete { collection, id }),
        _ => Target::Unsupported,
    }
}

fn method_of(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    }
}

/// The batch request's headers with the step's own on top (names are
/// case-insensitive), as the reference builds a sub-request. They feed
/// rules (`@request.headers.*`) only: a step runs with the batch caller's
/// auth whatever `Authorization` it sends, as in the reference.
fn step_headers(base: &[(String, String)], own: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut headers = base.to_vec();
    for (name, value) in own {
        let name = name.to_ascii_lowercase();
        headers.retain(|(existing, _)| *existing != name);
        headers.push((name, value));
    }
    // A step's body reaches its handler as a form, whatever was sent.
    headers.retain(|(name, _)| name != "content-type");
    headers.push(("content-type".into(), "multipart/form-data".into()));
    headers
}

/// The `id` a PUT names, as text (the reference accepts numbers too).
fn upsert_id(body: &Map<String, Value>) -> Option<String> {
    let id = match body.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    (!id.is_empty()).then_some(id)
}

/// One batch entry, ready for the writer job. Its rules see the step as
/// `@request.*` (its method, URL query, headers and body), with
/// `@request.context` = `batch` as in the reference.
struct Step {
    target: Target,
    request: RequestParts,
    body: Map<String, Value>,
}

impl Step {
    fn new(sub: SubRequest, batch: &Req<'_>) -> Step {
        let target = target_of(&sub.method, &sub.url);
        let (path, query) = sub.url.split_once('?').unwrap_or((&sub.url, ""));
        let request = RequestParts {
            method: method_of(&sub.method),
            path: path.to_string(),
            query: parse_query(query),
            headers: step_headers(batch.headers(), sub.headers).into(),
            remote_ip: batch.remote_ip,
            context: "batch",
        };
        Step {
            target,
            request,
            body: sub.body,
        }
    }

    /// The password work of this step, judged on the worker's snapshot
    /// (whether the caller manages the record, so no `oldPassword` is
    /// verified, too); the job checks everything again on the state it
    /// writes to.
    fn password_plan(&self, ctx: &Ctx<'_>) -> Result<PasswordPlan, ApiError> {
        let (name, id) = match &self.target {
            Target::Write(WriteAction::Create { collection }) => (collection, None),
            Target::Write(WriteAction::Update { collection, id }) => (collection, Some(id.clone())),
            Target::Upsert { collection } => (collection, upsert_id(&self.body)),
            Target::Write(WriteAction::Delete { .. }) | Target::Unsupported => {
                return Ok(PasswordPlan::default())
            }
        };
        let Some(collection) = ctx.schema.get(name).filter(|c| c.is_auth()) else {
            return Ok(PasswordPlan::default());
        };
        let current = match id {
            Some(id) => sql::find_by_id(ctx.db, collection, &id)?,
            None => None,
        };
        let full_access = match &current {
            Some(current) => {
                let request = self.request.request_info(ctx.auth.clone(), &self.body);
                api::has_full_access(ctx, collection, current, &request)?
            }
            None => ctx.is_superuser(),
        };
        Ok(PasswordPlan::for_body(
            collection,
            &self.body,
            current.as_ref(),
            full_access,
        ))
    }

    /// Runs the step inside the batch's job: its status and body.
    fn apply(
        self,
        ctx: &Ctx<'_>,
        tx: &mut WriteTx<'_>,
        passwords: &PasswordWork,
    ) -> Result<(u16, Value), ApiError> {
        let Step {
            target,
            mut request,
            body,
        } = self;
        let action = match target {
            Target::Write(action) => action,
            Target::Upsert { collection } => {
                let action = resolve_upsert(ctx, collection, &body)?;
                request.method = match action {
                    WriteAction::Update { .. } => Method::Patch,
                    _ => Method::Post,
                };
                action
            }
            Target::Unsupported => {
                return Err(ApiError::bad_request(
                    "Something went wrong while processing your request.",
                ))
            }
        };
        api::run_write(ctx, tx, &request, &action, body, passwords)
            .map(|(status, body)| (status, body.into_value()))
    }
}

/// A PUT updates the record `body.id` names when it exists in the
/// collection (as the batch so far left it; rules apply to the update, not
/// to this lookup), and creates one otherwise.
fn resolve_upsert(
    ctx: &Ctx<'_>,
    collection: String,
    body: &Map<String, Value>,
) -> Result<WriteAction, ApiError> {
    if let (Some(id), Some(found)) = (upsert_id(body), ctx.schema.get(&collection)) {
        if sql::find_by_id(ctx.db, found, &id)?.is_some() {
            return Ok(WriteAction::Update { collection, id });
        }
    }
    Ok(WriteAction::Create { collection })
}

/// The reference's answer when step `index` fails: 400 naming that step
/// only, with the step's own error body inside.
fn step_failed(index: usize, err: ApiError) -> ApiError {
    if let ApiError::Internal(context) = &err {
        // Wrapped below as a 400, so the server's own 500 logging never sees it.
        log::error!("batch request {index}: {context}");
    }
    let mut requests = Map::new();
    requests.insert(
        index.to_string(),
        json!({
            "code": "batch_request_failed",
            "message": "Batch request failed.",
            "response": err.to_json(),
        }),
    );
    let mut errors = FieldErrors::new();
    errors.insert("requests".into(), Value::Object(requests));
    ApiError::validation("Batch transaction failed.", errors)
}

/// The whole batch as one writer job.
struct BatchJob {
    app: Arc<App>,
    auth: Option<Auth>,
    remote_ip: Option<IpAddr>,
    steps: Vec<Step>,
    timeout: Duration,
}

impl BatchJob {
    fn run(self, passwords: Vec<PasswordWork>) -> Result<Reply, ApiError> {
        let app = self.app.clone();
        let results = app.write(move |tx| self.apply_all(tx, passwords))?;
        Ok(Reply::json(&Value::Array(results)))
    }

    /// Every step in order, each seeing the ones before it.
    fn apply_all(
        self,
        tx: &mut WriteTx<'_>,
        passwords: Vec<PasswordWork>,
    ) -> Result<Vec<Value>, ApiError> {
        let deadline = Instant::now() + self.timeout;
        let BatchJob {
            app,
            auth,
            remote_ip,
            steps,
            ..
        } = self;
        let ctx = api::writer_ctx(&app, tx.conn(), auth, remote_ip);
        let steps = steps.into_iter().zip(&passwords);
        run_in_order(steps, deadline, |(step, passwords)| {
            step.apply(&ctx, tx, passwords)
        })
    }
}

/// Runs `steps` one after the other into `{body, status}` results. The
/// first failure names its step; running past `deadline` fails the whole
/// batch (the reference's timeout answer names no step).
fn run_in_order<S>(
    steps: impl IntoIterator<Item = S>,
    deadline: Instant,
    mut run: impl FnMut(S) -> Result<(u16, Value), ApiError>,
) -> Result<Vec<Value>, ApiError> {
    let mut results = Vec::new();
    for (index, step) in steps.into_iter().enumerate() {
        let (status, body) = run(step).map_err(|err| step_failed(index, err))?;
        if Instant::now() > deadline {
            return Err(ApiError::bad_request("Batch transaction failed."));
        }
        results.push(json!({"body": body, "status": status}));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(enabled: bool, max_requests: i64, timeout: i64, max_body: i64) -> BatchSettings {
        BatchSettings {
            enabled,
            max_requests,
            timeout,
            max_body_size: max_body,
            ..BatchSettings::default()
        }
    }

    #[test]
    fn limits_follow_the_settings_and_their_zero_defaults() {
        assert_eq!(
            Limits::from_settings(&settings(false, 50, 3, 0)),
            Err(ApiError::Forbidden(
                "Batch requests are not allowed.".into()
            ))
        );
        assert!(Limits::from_settings(&settings(true, 0, 3, 0)).is_err());
        assert_eq!(
            Limits::from_settings(&settings(true, 7, 0, 0)),
            Ok(Limits {
                max_requests: 7,
                max_body: 128 << 20,
                timeout: Duration::from_secs(3)
            })
        );
        let custom = Limits::from_settings(&settings(true, 2, 9, 1000)).unwrap();
        assert_eq!((custom.max_body, custom.timeout.as_secs()), (1000, 9));
    }

    #[test]
    fn only_the_four_record_write_routes_are_batchable() {
        let write = |m: &str, u: &str| match target_of(m, u) {
            Target::Write(action) => format!("{action:?}"),
            Target::Upsert { collection } => format!("Upsert {collection}"),
            Target::Unsupported => "Unsupported".into(),
        };
        assert_eq!(
            write("POST", "/api/collections/posts/records?fields=id"),
            r#"Create { collection: "posts" }"#
        );
        assert_eq!(
            write("PATCH", "/api/collections/posts/records/abc"),
            r#"Update { collection: "posts", id: "abc" }"#
        );
        assert_eq!(
            write("DELETE", "/api/collections/posts/records/abc?x=1"),
            r#"Delete { collection: "posts", id: "abc" }"#
        );
        assert_eq!(
            write("PUT", "/api/collections/posts/records"),
            "Upsert posts"
        );
        for (method, url) in [
            ("GET", "/api/collections/posts/records"),
            ("PUT", "/api/collections/posts/records/abc"),
            ("POST", "/api/collections/posts/records/"),
            ("POST", "api/collections/posts/records"),
            ("POST", "http://x/api/collections/posts/records"),
            ("POST", "/api/collections//records"),
            ("PATCH", "/api/collections/posts/records"),
            ("DELETE", "/api/collections/posts/records/a/b"),
            ("POST", "/api/collections"),
        ] {
            assert_eq!(write(method, url), "Unsupported", "{method} {url}");
        }
    }

    #[test]
    fn envelope_errors_have_the_reference_shape() {
        let missing = check_envelope(None, 5).unwrap_err().to_json();
        assert_eq!(missing["message"], "Invalid batch request data.");
        assert_eq!(missing["data"]["requests"]["code"], "validation_required");

        let three: Vec<SubRequest> = (0..3).map(|_| SubRequest::default()).collect();
        let over = check_envelope(Some(&three), 2).unwrap_err().to_json();
        assert_eq!(
            over["data"]["requests"],
            json!({"code": "validation_length_too_long",
                   "message": "The length must be no more than 2.",
                   "params": {"max": 2, "min": 0}})
        );

        let entries = vec![
            SubRequest {
                method: "POST".into(),
                url: "/api/collections/a/records".into(),
                ..SubRequest::default()
            },
            SubRequest {
                method: "post".into(),
                url: "x".repeat(2001),
                ..SubRequest::default()
            },
        ];
        let faulty = check_envelope(Some(&entries), 5).unwrap_err().to_json();
        let requests = &faulty["data"]["requests"];
        assert!(requests.get("0").is_none());
        assert_eq!(requests["1"]["method"]["code"], "validation_in_invalid");
        assert_eq!(requests["1"]["url"]["code"], "validation_length_too_long");
    }

    #[test]
    fn entries_with_wrong_types_make_the_body_unreadable() {
        for bad in [
            json!(1),
            json!(null),
            json!({"method": 1}),
            json!({"headers": {"a": 1}}),
            json!({"body": [1]}),
            json!({"body": "x"}),
        ] {
            assert_eq!(sub_request(bad.clone()).unwrap_err(), unreadable(), "{bad}");
        }
        let ok = sub_request(
            json!({"method": "POST", "url": "/u", "headers": {"X-A": "1"},
                                    "body": {"t": 1}, "other": true}),
        )
        .unwrap();
        assert_eq!((ok.method.as_str(), ok.url.as_str()), ("POST", "/u"));
        assert_eq!(ok.headers, vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(ok.body["t"], 1);
    }

    #[test]
    fn step_headers_override_the_batch_ones_case_insensitively() {
        let base = vec![
            ("authorization".to_string(), "batch-token".to_string()),
            ("x-ok".to_string(), "no".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        let merged = step_headers(&base, vec![("X-Ok".into(), "yes".into())]);
        let get = |name: &str| {
            merged
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-ok"), vec!["yes"]);
        assert_eq!(get("authorization"), vec!["batch-token"]);
        assert_eq!(get("content-type"), vec!["multipart/form-data"]);
    }

    #[test]
    fn a_failed_step_is_reported_alone_with_its_own_error_body() {
        let err = step_failed(2, ApiError::not_found()).to_json();
        assert_eq!(err["status"], 400);
        assert_eq!(err["message"], "Batch transaction failed.");
        let step = &err["data"]["requests"]["2"];
        assert_eq!(step["code"], "batch_request_failed");
        assert_eq!(step["message"], "Batch request failed.");
        assert_eq!(step["response"], ApiError::not_found().to_json());
        assert_eq!(err["data"]["requests"].as_object().map(Map::len), Some(1));
    }

    #[test]
    fn upsert_ids_may_be_numbers_but_not_empty() {
        let id = |v: Value| upsert_id(v.as_object().unwrap());
        assert_eq!(id(json!({"id": "abc"})), Some("abc".into()));
        assert_eq!(id(json!({"id": 5})), Some("5".into()));
        assert_eq!(id(json!({"id": ""})), None);
        assert_eq!(id(json!({"id": null})), None);
        assert_eq!(id(json!({})), None);
    }

    #[test]
    fn steps_stop_at_the_first_failure_or_the_deadline() {
        let later = Instant::now() + Duration::from_secs(60);
        let ok = run_in_order([200u16, 204], later, |status| Ok((status, Value::Null))).unwrap();
        assert_eq!(
            ok,
            vec![
                json!({"body": null, "status": 200}),
                json!({"body": null, "status": 204})
            ]
        );

        let mut ran = Vec::new();
        let failed = run_in_order(0..5, later, |i| {
            ran.push(i);
            if i == 2 {
                Err(ApiError::not_found())
            } else {
                Ok((200, json!({})))
            }
        })
        .unwrap_err();
        assert_eq!(ran, [0, 1, 2], "nothing runs after the failing step");
        assert_eq!(
            failed.to_json()["data"]["requests"]["2"]["response"]["status"],
            404
        );

        let mut count = 0;
        let timed_out = run_in_order(0..5, Instant::now(), |_| {
            count += 1;
            std::thread::sleep(Duration::from_millis(2));
            Ok((200, json!({})))
        })
        .unwrap_err();
        assert_eq!(count, 1);
        assert_eq!(
            timed_out.to_json(),
            json!({"status": 400, "message": "Batch transaction failed.", "data": {}})
        );
    }
}
