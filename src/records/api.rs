//! The records API of a collection: list, view, create, update, delete.
//!
//! Access follows the collection's rules: `null` is superusers only (403),
//! a failing expression hides records from lists, answers 404 on
//! view/update/delete and 400 on create. Rules see the request as
//! `@request.*` (`RequestInfo`: method, query, headers, auth and, for
//! writes, the submitted body). Auth collections add `manageRule`: a caller
//! satisfying it for a record edits it as a superuser would (email,
//! `verified`, password without the old one) and sees its email.
//!
//! Writes run inside a writer job: their own (one per request) or a
//! batch's (`batch.rs`, one for all its steps). The `apply_*` functions
//! hold the whole write logic — rules, manage checks, validation against
//! the database, the write, the rule check on the result — on the writer's
//! connection, so a refused write fails its job and the savepoint leaves
//! nothing. Password hashing never runs in a writer job: a `PasswordPlan`
//! is carried out on the hashing pool first. Each `apply_*` registers its
//! realtime events on the job's `WriteTx`, so they are published only once
//! the job (or the whole batch) commits.

use super::filter::{self, RecordQuery, RequestInfo, SortKey};
use super::present::{present, PresentOptions, Presented, Presenter};
use super::relations::{self, DeleteError};
use super::sql::{self, Order};
use super::{
    build_create, build_update, check_relations, merge_errors, RecordValues, WriteOptions,
};
use crate::app::{App, Ctx};
use crate::auth::Auth;
use crate::collections::Collection;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{body, Method, Outcome, Reply, Req};
use crate::json::{self, WriteJson};
use crate::realtime_api::{Action, DeletedRecords};
use crate::security::{password, random};
use crate::store::WriteTx;
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

const DEFAULT_PER_PAGE: i64 = 30;
const MAX_PER_PAGE: i64 = 1000;

/// The collection named in the path, or the reference's 404.
fn collection(ctx: &Ctx<'_>, id_or_name: &str) -> Result<Arc<Collection>, ApiError> {
    ctx.schema
        .get(id_or_name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("Missing collection context.".into()))
}

/// The rule text to apply: `None` means "no restriction" (superuser or `""`).
fn effective_rule(ctx: &Ctx<'_>, rule: &Option<String>) -> Result<Option<String>, ApiError> {
    if ctx.is_superuser() {
        return Ok(None);
    }
    match rule {
        None => Err(ApiError::superusers_only()),
        Some(r) if r.trim().is_empty() => Ok(None),
        Some(r) => Ok(Some(r.clone())),
    }
}

/// The `?expand=` and `?fields=` the request asks for on returned records.
fn present_options(req: &Req<'_>) -> Result<PresentOptions, ApiError> {
    PresentOptions::parse(req.query_param("expand"), req.query_param("fields"))
}

/// Parses `page`/`perPage`: numbers or absent, else 400.
fn paging(req: &Req<'_>) -> Result<(i64, i64, bool), ApiError> {
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        match req.query_param(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(&format!("Invalid {name} parameter."))),
        }
    };
    let page = number("page")?.filter(|p| *p > 0).unwrap_or(1);
    let per_page = number("perPage")?
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PER_PAGE)
        .min(MAX_PER_PAGE);
    let skip_total = matches!(req.query_param("skipTotal"), Some("1") | Some("true"));
    Ok((page, per_page, skip_total))
}

/// `sort=-a,b` as ORDER BY keys over what the caller may filter by (own
/// fields, relation and JSON paths, `@random`, `@rowid`).
fn order_by(
    collection: &Collection,
    query: &mut RecordQuery<'_>,
    sort: Option<&str>,
) -> Result<Vec<SortKey>, ApiError> {
    let keys = query
        .add_client_sort(sort.unwrap_or(""))
        .map_err(filter::filter_error)?;
    if collection.is_view() && keys.iter().any(|k| matches!(k, SortKey::Rowid { .. })) {
        return Err(ApiError::bad_request(
            "Something went wrong while processing your request.",
        ));
    }
    Ok(keys)
}

/// Adds the rule and the client's filter to the list query. Only
/// superusers may mention `@request.`/`@collection.` in `filter` or `sort`.
fn where_clause(
    ctx: &Ctx<'_>,
    query: &mut RecordQuery<'_>,
    client_filter: Option<&str>,
    sort: Option<&str>,
    rule: Option<&str>,
) -> Result<(), ApiError> {
    if !ctx.is_superuser() {
        if let Some(mention) = filter::superuser_only_mention(&[client_filter, sort]) {
            return Err(ApiError::Forbidden(format!(
                "Only superusers can filter by {mention}"
            )));
        }
    }
    if let Some(rule) = rule {
        query.add_rule(rule).map_err(filter::filter_error)?;
    }
    if let Some(text) = client_filter {
        query
            .add_client_filter(text)
            .map_err(filter::filter_error)?;
    }
    Ok(())
}

/// `GET /api/collections/{c}/records`
pub fn list(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    let rule = effective_rule(ctx, &collection.list_rule)?;
    let (page, per_page, skip_total) = paging(req)?;
    let info = RequestInfo::from_req(req, ctx.auth.clone());
    let mut query = RecordQuery::new(&ctx.schema, &collection, &info);
    let sort = req.query_param("sort");
    where_clause(
        ctx,
        &mut query,
        req.query_param("filter"),
        sort,
        rule.as_deref(),
    )?;
    let keys = order_by(&collection, &mut query, sort)?;
    let clause = query.finish();
    // The items query binds the sort keys' parameters after the WHERE's
    // (ORDER BY follows WHERE); the COUNT shares the WHERE alone.
    let mut item_params = clause.params.clone();
    let mut order = Vec::with_capacity(keys.len() + 1);
    for key in &keys {
        order.push(match key {
            SortKey::Expr { sql, desc } => {
                item_params.extend(sql.params.iter().cloned());
                Order::Sql(&sql.sql, *desc)
            }
            SortKey::Random => Order::Random,
            SortKey::Rowid { desc } => Order::Rowid(*desc),
        });
    }
    // Ties keep insertion order, so pages never overlap or skip a record.
    let ordered_by_row = keys.iter().any(|k| !matches!(k, SortKey::Expr { .. }));
    if !keys.is_empty() && !ordered_by_row && !collection.is_view() {
        order.push(Order::Rowid(false));
    }
    let offset = (page - 1).saturating_mul(per_page) as u64;
    // `sql::list` binds parameters only along with a WHERE, so a sort key
    // with parameters (a JSON path) needs one even when nothing filters.
    let item_where = if clause.sql.is_empty() {
        "1"
    } else {
        clause.sql.as_str()
    };
    let items = sql::list(
        ctx.db,
        &collection,
        Some((item_where, item_params.as_slice())),
        &order,
        Some(per_page as u64),
        offset,
    )?;
    let (total_items, total_pages) = if skip_total {
        (-1, -1)
    } else {
        let filter = Some((clause.sql.as_str(), clause.params.as_slice()));
        let total = sql::count(ctx.db, &collection, filter)? as i64;
        (total, (total + per_page - 1) / per_page)
    };
    let items = present(ctx, &info, &collection, items, &present_options(req)?);
    Ok(Reply::json_of(
        200,
        &Page {
            page,
            per_page,
            total_items,
            total_pages,
            items,
        },
    ))
}

/// A list answer, its keys in the reference's order.
struct Page {
    page: i64,
    per_page: i64,
    total_items: i64,
    total_pages: i64,
    items: Vec<Presented>,
}

impl WriteJson for Page {
    fn write_json(&self, out: &mut Vec<u8>) {
        let numbers = [
            ("page", self.page),
            ("perPage", self.per_page),
            ("totalItems", self.total_items),
            ("totalPages", self.total_pages),
        ];
        out.push(b'{');
        for (name, number) in numbers {
            json::push_key(out, name);
            json::push_serde(out, &number);
            out.push(b',');
        }
        json::push_key(out, "items");
        self.items.write_json(out);
        out.push(b'}');
    }
}

/// Loads a record the caller may see under `rule`, or 404.
/// The rule sees the record as stored (for an update: before the change,
/// with the submitted values under `@request.body`, as the reference).
fn find_visible(
    ctx: &Ctx<'_>,
    collection: &Collection,
    id: &str,
    rule: Option<&str>,
    info: &RequestInfo,
) -> Result<RecordValues, ApiError> {
    let record = sql::find_by_id(ctx.db, collection, id)?.ok_or_else(ApiError::not_found)?;
    if let Some(rule) = rule {
        let schema = &ctx.schema;
        if !filter::record_satisfies_on(ctx.db, schema, collection, rule, id, info, Some(&record))?
        {
            return Err(ApiError::not_found());
        }
    }
    Ok(record)
}

/// `GET /api/collections/{c}/records/{id}`
pub fn view(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    let rule = effective_rule(ctx, &collection.view_rule)?;
    let info = RequestInfo::from_req(req, ctx.auth.clone());
    let record = find_visible(ctx, &collection, id, rule.as_deref(), &info)?;
    let presenter = Presenter::for_request(ctx.db, &ctx.schema, &info);
    Ok(Reply::json_of(
        200,
        &presenter.render_one_owned(&collection, record, &present_options(req)?),
    ))
}

fn body_of(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Map<String, Value>, ApiError> {
    Ok(body::parse(
        req,
        crate::http::request::DEFAULT_BODY_LIMIT,
        &ctx.app.temp_dir(),
    )?
    .values)
}

fn refuse_views(collection: &Collection) -> Result<(), ApiError> {
    if collection.is_view() {
        return Err(ApiError::bad_request("Unsupported collection type."));
    }
    Ok(())
}

/// The most bytes bcrypt-compatible password rules accept (the reference's).
const MAX_PASSWORD_BYTES: usize = 71;

/// A text value of the body, `""` when missing or not text.
fn body_text<'b>(body: &'b Map<String, Value>, key: &str) -> &'b str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Whether the caller may edit the auth record `current` as a superuser
/// would (email, `verified`, a new password without the old one):
/// superusers, and callers satisfying the collection's `manageRule` for the
/// record as it is, under `request`.
pub(crate) fn has_full_access(
    ctx: &Ctx<'_>,
    collection: &Collection,
    current: &RecordValues,
    request: &RequestInfo,
) -> Result<bool, ApiError> {
    if ctx.is_superuser() {
        return Ok(true);
    }
    filter::can_manage(
        ctx.db,
        &ctx.schema,
        collection,
        current.id(),
        Some(current),
        request,
    )
}

/// The password work a create or update needs before its writer job:
/// hashing and verifying are slow by design, and the writer thread must
/// never spend its time on them.
#[derive(Debug, Default)]
pub(crate) struct PasswordPlan {
    /// `password` from the body, when the write could accept it.
    to_hash: Option<String>,
    /// `oldPassword` and the stored hash it must match.
    to_verify: Option<(String, String)>,
}

impl PasswordPlan {
    /// What `body` asks for on an auth collection. `current` is the record
    /// as read before the job (updates only); `full_access` (see
    /// [`has_full_access`], judged then too) needs no `oldPassword`, so
    /// none is verified. The job decides again on the state it writes to:
    /// if it finds no full access after all, the unverified `oldPassword`
    /// counts as wrong.
    pub(crate) fn for_body(
        collection: &Collection,
        body: &Map<String, Value>,
        current: Option<&RecordValues>,
        full_access: bool,
    ) -> PasswordPlan {
        if !collection.is_auth() {
            return PasswordPlan::default();
        }
        let new = body_text(body, "password");
        // Only a password the write could accept is worth hashing. These
        // checks are a subset of the writer's, so whenever the writer
        // accepts a password its hash exists.
        let acceptable = !new.is_empty()
            && new.len() <= MAX_PASSWORD_BYTES
            && new == body_text(body, "passwordConfirm");
        let old = body_text(body, "oldPassword");
        let to_verify = match current {
            Some(current) if !full_access && !new.is_empty() && !old.is_empty() => {
                Some((old.to_string(), current.get_str("password").to_string()))
            }
            _ => None,
        };
        PasswordPlan {
            to_hash: acceptable.then(|| new.to_string()),
            to_verify,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.to_hash.is_none() && self.to_verify.is_none()
    }

    /// Hashes and verifies; run it on the hashing pool.
    pub(crate) fn run(self) -> Result<PasswordWork, ApiError> {
        let hash = self
            .to_hash
            .map(|plain| password::hash_password(&plain))
            .transpose()
            .map_err(ApiError::internal)?;
        let old_password_matched = self
            .to_verify
            .and_then(|(old, stored)| password::verify_password(&old, &stored).then_some(stored));
        Ok(PasswordWork {
            hash,
            old_password_matched,
        })
    }
}

/// The results of a [`PasswordPlan`], handed to the write in its job.
#[derive(Debug, Default, Clone)]
pub(crate) struct PasswordWork {
    hash: Option<String>,
    /// The stored hash `oldPassword` matched, when it did.
    old_password_matched: Option<String>,
}

impl PasswordWork {
    /// A match against another hash (the password changed since it was
    /// checked, perhaps earlier in the same batch) is no match.
    fn old_password_matches(&self, stored_hash: &str) -> bool {
        !stored_hash.is_empty() && self.old_password_matched.as_deref() == Some(stored_hash)
    }
}

/// Password handling of auth records inside the writer job: the
/// reference's checks, with hashing and `oldPassword` verification already
/// done by a [`PasswordPlan`]. `full_access` (superusers, `manageRule`)
/// needs no old password. Returns the hash to store, if any.
fn auth_password_change(
    full_access: bool,
    collection: &Collection,
    body: &Map<String, Value>,
    current: Option<&RecordValues>,
    passwords: &PasswordWork,
    errors: &mut FieldErrors,
) -> Result<Option<String>, ApiError> {
    if !collection.is_auth() {
        return Ok(None);
    }
    let (new, confirm) = (
        body_text(body, "password"),
        body_text(body, "passwordConfirm"),
    );
    let creating = current.is_none();
    if new.is_empty() && !creating {
        return Ok(None);
    }
    if new.is_empty() {
        errors.insert(
            "password".into(),
            field_error("validation_required", "Cannot be blank."),
        );
        return Ok(None);
    }
    let min = collection.field("password").and_then(|f| match f.kind {
        crate::collections::FieldKind::Password { min, .. } => Some(min),
        _ => None,
    });
    let min = min.filter(|m| *m > 0).unwrap_or(8) as usize;
    if new.chars().count() < min {
        errors.insert(
            "password".into(),
            field_error(
                "validation_min_text_constraint",
                &format!("Must be at least {min} character(s)."),
            ),
        );
    } else if new.len() > MAX_PASSWORD_BYTES {
        errors.insert(
            "password".into(),
            field_error(
                "validation_max_text_constraint",
                "Must be no more than 71 bytes.",
            ),
        );
    }
    if confirm != new {
        errors.insert("passwordConfirm".into(), values_mismatch());
    }
    if let (Some(current), false) = (current, full_access) {
        if body_text(body, "oldPassword").is_empty() {
            errors.insert(
                "oldPassword".into(),
                field_error("validation_required", "Cannot be blank."),
            );
        } else if !passwords.old_password_matches(current.get_str("password")) {
            errors.insert(
                "oldPassword".into(),
                field_error(
                    "validation_invalid_old_password",
                    "Missing or invalid old password.",
                ),
            );
        }
    }
    if !errors.is_empty() {
        return Ok(None);
    }
    match &passwords.hash {
        Some(hash) => Ok(Some(hash.clone())),
        None => Err(ApiError::internal(
            "an accepted password reached the writer unhashed",
        )),
    }
}

/// Fields only the server sets on auth records, whatever the body says
/// (`verified` too, on updates without `full_access`).
fn strip_auth_internals(
    full_access: bool,
    collection: &Collection,
    body: &mut Map<String, Value>,
    creating: bool,
) {
    if !collection.is_auth() {
        return;
    }
    for key in ["password", "passwordConfirm", "oldPassword", "tokenKey"] {
        body.remove(key);
    }
    if !full_access && !creating {
        body.remove("verified");
    }
}

/// Whether the body sets an auth record's `verified` to something else
/// than it is (`false` for a new record).
fn asks_for_verified(
    collection: &Collection,
    body: &Map<String, Value>,
    current: Option<&RecordValues>,
) -> bool {
    let now = current.is_some_and(|r| r.get_bool("verified"));
    collection.is_auth()
        && body
            .get("verified")
            .is_some_and(|v| super::cast::to_bool(v) != now)
}

fn values_mismatch() -> Value {
    field_error("validation_values_mismatch", "Values don't match.")
}

/// `POST /api/collections/{c}/records`
pub fn create(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    // Refused callers are answered before their body is read; the writer
    // job checks everything again on the state it writes to.
    effective_rule(ctx, &collection.create_rule)?;
    let body = body_of(ctx, req)?;
    let plan = PasswordPlan::for_body(&collection, &body, None, ctx.is_superuser());
    let action = WriteAction::Create {
        collection: c.to_string(),
    };
    WriteJob::new(ctx, req, action, body).submit(plan)
}

/// `PATCH /api/collections/{c}/records/{id}`
pub fn update(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Outcome, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.update_rule)?;
    let body = body_of(ctx, req)?;
    // The rule and `manageRule` may read the body, so both are judged with
    // it: a hidden record is 404 before any hashing, and the stored hash is
    // what `oldPassword` gets verified against, off the writer.
    let request = RequestInfo::from_req(req, ctx.auth.clone()).with_body(body.clone());
    let current = find_visible(ctx, &collection, id, rule.as_deref(), &request)?;
    let full_access = has_full_access(ctx, &collection, &current, &request)?;
    let plan = PasswordPlan::for_body(&collection, &body, Some(&current), full_access);
    let action = WriteAction::Update {
        collection: c.to_string(),
        id: id.to_string(),
    };
    WriteJob::new(ctx, req, action, body).submit(plan)
}

/// `DELETE /api/collections/{c}/records/{id}`
pub fn delete(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    // Refused callers are answered before their body is read.
    effective_rule(ctx, &collection(ctx, c)?.delete_rule)?;
    // The reference reads a DELETE's body too: rules may look at it.
    let body = body_of(ctx, req)?;
    let action = WriteAction::Delete {
        collection: c.to_string(),
        id: id.to_string(),
    };
    WriteJob::new(ctx, req, action, body).run(PasswordWork::default())
}

/// One record write, as a request or a batch step asks for it.
#[derive(Debug, Clone)]
pub(crate) enum WriteAction {
    Create { collection: String },
    Update { collection: String, id: String },
    Delete { collection: String, id: String },
}

/// What a write keeps of its request once the body is read: owned, so it
/// can travel into a writer job (a `Req` borrows its socket). Rule checks
/// and rendering inside the job see it again as a `Req` (`to_req`) and as
/// `@request.*` (`request_info`).
#[derive(Debug, Clone)]
pub(crate) struct RequestParts {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lower-cased, as `Req` keeps them.
    pub headers: Arc<[(String, String)]>,
    pub remote_ip: Option<IpAddr>,
    /// `@request.context`: `default`, or `batch` for a batch step.
    pub context: &'static str,
}

impl RequestParts {
    pub(crate) fn of(req: &Req<'_>) -> RequestParts {
        RequestParts {
            method: req.method,
            path: req.path(),
            query: req.query.clone(),
            headers: req.shared_headers(),
            remote_ip: req.remote_ip,
            context: "default",
        }
    }

    /// The request without its body, which the write already holds.
    pub(crate) fn to_req(&self) -> Req<'static> {
        let mut req = Req::synthetic_sharing(self.method, &self.path, Arc::clone(&self.headers));
        req.query = self.query.clone();
        req.remote_ip = self.remote_ip;
        req
    }

    /// What rules see as `@request.*`: this request from `auth`, with
    /// `body` as submitted (modifier keys such as `n+` included).
    pub(crate) fn request_info(
        &self,
        auth: Option<Auth>,
        body: &Map<String, Value>,
    ) -> RequestInfo {
        self.request_info_of(&self.to_req(), auth, body)
    }

    /// As `request_info`, from this request already rebuilt by `to_req`.
    fn request_info_of(
        &self,
        req: &Req<'_>,
        auth: Option<Auth>,
        body: &Map<String, Value>,
    ) -> RequestInfo {
        let mut info = RequestInfo::from_req(req, auth).with_body(body.clone());
        info.context = self.context.into();
        info
    }
}

/// A `Ctx` over the writer's connection, so rule checks, lookups and
/// rendering inside a writer job see what the job (and the batch steps
/// before it) wrote.
pub(crate) fn writer_ctx<'a>(
    app: &'a Arc<App>,
    conn: &'a Connection,
    auth: Option<Auth>,
    remote_ip: Option<IpAddr>,
) -> Ctx<'a> {
    let mut ctx = Ctx::new(app, conn, remote_ip);
    ctx.auth = auth;
    ctx
}

/// Runs one write inside the caller's writer job and renders its answer:
/// the status and the body (`null` for a delete's 204). Single requests and
/// batch steps both come through here, so their rules see the same
/// `@request.*`: the request or step, with the body as submitted.
pub(crate) fn run_write(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    request: &RequestParts,
    action: &WriteAction,
    body: Map<String, Value>,
    passwords: &PasswordWork,
) -> Result<(u16, Presented), ApiError> {
    let req = request.to_req();
    let info = request.request_info_of(&req, ctx.auth.clone(), &body);
    let written = match action {
        WriteAction::Create { collection } => {
            apply_create(ctx, tx, collection, body, &info, passwords)?
        }
        WriteAction::Update { collection, id } => {
            apply_update(ctx, tx, collection, id, body, &info, passwords)?
        }
        WriteAction::Delete { collection, id } => {
            apply_delete(ctx, tx, collection, id, &info)?;
            return Ok((204, Presented::Reshaped(Value::Null)));
        }
    };
    Ok((200, render_written(ctx, &info, &req, written)?))
}

/// The answer body of a create or update: the one place written records
/// are rendered. `req` carries the query (`fields`, `expand`) of the
/// request or batch step that wrote the record, `info` what `manageRule`
/// and expanded viewRules see. A malformed `fields` fails the job, so
/// nothing is written.
fn render_written(
    ctx: &Ctx<'_>,
    info: &RequestInfo,
    req: &Req<'_>,
    written: Written,
) -> Result<Presented, ApiError> {
    let options = present_options(req)?;
    let presenter = Presenter::for_request(ctx.db, &ctx.schema, info);
    Ok(presenter.render_one_owned(&written.collection, written.record, &options))
}

/// The reply for a `run_write` answer.
pub(crate) fn reply_for(status: u16, body: &Presented) -> Reply {
    if status == 204 {
        Reply::no_content()
    } else {
        Reply::json_of(status, body)
    }
}

/// A single request's write as its own writer job.
struct WriteJob {
    app: Arc<App>,
    auth: Option<Auth>,
    request: RequestParts,
    action: WriteAction,
    body: Map<String, Value>,
}

impl WriteJob {
    fn new(
        ctx: &Ctx<'_>,
        req: &Req<'_>,
        action: WriteAction,
        body: Map<String, Value>,
    ) -> WriteJob {
        WriteJob {
            app: ctx.app.clone(),
            auth: ctx.auth.clone(),
            request: RequestParts::of(req),
            action,
            body,
        }
    }

    /// Runs now, or on the hashing pool first when a password must be
    /// hashed or checked (tens of milliseconds a worker should not spend).
    fn submit(self, plan: PasswordPlan) -> Result<Outcome, ApiError> {
        if plan.is_empty() {
            return Ok(Outcome::Now(self.run(PasswordWork::default())?));
        }
        Ok(Outcome::Later(Box::new(move || self.run(plan.run()?))))
    }

    fn run(self, passwords: PasswordWork) -> Result<Reply, ApiError> {
        let app = self.app.clone();
        let (status, body) = app.write(move |tx| {
            let WriteJob {
                app,
                auth,
                request,
                action,
                body,
            } = self;
            let ctx = writer_ctx(&app, tx.conn(), auth, request.remote_ip);
            run_write(&ctx, tx, &request, &action, body, &passwords)
        })?;
        Ok(reply_for(status, &body))
    }
}

/// A record as a create or update left it, with its collection.
pub(crate) struct Written {
    pub collection: Arc<Collection>,
    pub record: RecordValues,
}

/// Creates a record in `c` inside the caller's writer job: the create
/// rule, validation against the database, the insert, then the rule and
/// (for a verified auth record asked by a non-superuser) `manageRule`
/// checked on the new record. `ctx` reads through the writer's connection;
/// `request` is what the rules see.
pub(crate) fn apply_create(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    c: &str,
    mut body: Map<String, Value>,
    request: &RequestInfo,
    passwords: &PasswordWork,
) -> Result<Written, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.create_rule)?;
    let superuser = ctx.is_superuser();
    let mut errors = FieldErrors::new();
    let password_hash =
        auth_password_change(superuser, &collection, &body, None, passwords, &mut errors)?;
    strip_auth_internals(superuser, &collection, &mut body, true);
    // Only superusers and managers may create a verified auth record; a
    // manager is known once the record exists (the rule may read it).
    let mut manage_check = false;
    if !superuser && asks_for_verified(&collection, &body, None) {
        if filter::manage_rule(&collection).is_some() && ctx.auth.is_some() {
            manage_check = true;
        } else {
            errors.insert("verified".into(), values_mismatch());
        }
    }
    if !superuser && !manage_check {
        body.remove("verified");
    }
    let change = RecordChange {
        collection: &collection,
        current: None,
        body: &body,
        early_errors: errors,
        request,
        create_rule: rule.as_deref(),
        manage_check,
        rotate_token_key: false,
        password_hash,
    };
    let record = write_record(ctx, tx.conn(), change)?;
    let realtime = &ctx.app.realtime;
    realtime.publish_saved(tx, Action::Create, &collection, &record);
    Ok(Written { collection, record })
}

/// Updates record `id` of `c` inside the caller's writer job; the update
/// rule and `manageRule` are checked on the record as the job sees it,
/// with the body under `@request.body`.
pub(crate) fn apply_update(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    c: &str,
    id: &str,
    mut body: Map<String, Value>,
    request: &RequestInfo,
    passwords: &PasswordWork,
) -> Result<Written, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.update_rule)?;
    let current = find_visible(ctx, &collection, id, rule.as_deref(), request)?;
    let full_access = has_full_access(ctx, &collection, &current, request)?;
    let mut errors = FieldErrors::new();
    if !full_access && asks_for_verified(&collection, &body, Some(&current)) {
        errors.insert("verified".into(), values_mismatch());
    }
    let password_hash = auth_password_change(
        full_access,
        &collection,
        &body,
        Some(&current),
        passwords,
        &mut errors,
    )?;
    strip_auth_internals(full_access, &collection, &mut body, false);
    let mut email_changes = false;
    if collection.is_auth() {
        if let Some(email) = body.get("email") {
            email_changes = Some(email) != current.get("email");
            if email_changes && !full_access {
                errors.insert(
                    "email".into(),
                    field_error(
                        "validation_values_mismatch",
                        "The email can only be changed through the email change flow.",
                    ),
                );
            }
        }
    }
    // A new password or email invalidates every token of the record.
    let rotate_token_key = password_hash.is_some() || email_changes;
    let change = RecordChange {
        collection: &collection,
        current: Some(&current),
        body: &body,
        early_errors: errors,
        request,
        // the update rule was checked against the record as it is
        create_rule: None,
        manage_check: false,
        rotate_token_key,
        password_hash,
    };
    let record = write_record(ctx, tx.conn(), change)?;
    let realtime = &ctx.app.realtime;
    realtime.publish_saved(tx, Action::Update, &collection, &record);
    Ok(Written { collection, record })
}

/// Deletes record `id` of `c` inside the caller's writer job; the delete
/// rule sees `request` (its body included).
pub(crate) fn apply_delete(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    c: &str,
    id: &str,
    request: &RequestInfo,
) -> Result<(), ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.delete_rule)?;
    find_visible(ctx, &collection, id, rule.as_deref(), request)?;
    let conn = tx.conn();
    if collection.id == crate::auth::token::SUPERUSERS_ID {
        let total: i64 = conn.query_row("SELECT count(*) FROM `_superusers`", [], |r| r.get(0))?;
        if total <= 1 {
            return Err(ApiError::bad_request(
                "You can't delete the only existing superuser.",
            ));
        }
    }
    let now = crate::datetime::now_text();
    let mut deleted = DeletedRecords::default();
    let mut observe = |owner: &Collection, last: RecordValues| deleted.observe(owner, last);
    let schema = ctx.schema.all();
    match relations::delete_record_observed(conn, schema, &collection, id, &now, &mut observe) {
        Ok(outcome) => {
            let realtime = &ctx.app.realtime;
            Ok(realtime.publish_deleted(tx, &ctx.schema, deleted, &outcome.updated)?)
        }
        Err(DeleteError::NotFound) => Err(ApiError::not_found()),
        Err(DeleteError::RequiredReference { .. }) => Err(ApiError::bad_request(
            "Failed to delete record. Make sure that the record is not part of a required relation reference.",
        )),
        Err(DeleteError::Write(e)) => Err(e.into_api("Failed to delete record.")),
    }
}

/// What `write_record` stores: a create (`current` is `None`) or an update.
struct RecordChange<'a> {
    collection: &'a Collection,
    /// The record before the change.
    current: Option<&'a RecordValues>,
    body: &'a Map<String, Value>,
    /// Errors found before the database checks (auth password rules).
    early_errors: FieldErrors,
    /// What the rules checked on the result see as `@request.*`.
    request: &'a RequestInfo,
    /// The create rule to check on the new record.
    create_rule: Option<&'a str>,
    /// A non-superuser asks for a verified auth record: allowed only when
    /// they satisfy `manageRule` for the new record.
    manage_check: bool,
    rotate_token_key: bool,
    password_hash: Option<String>,
}

impl RecordChange<'_> {
    fn failure_message(&self) -> &'static str {
        if self.current.is_some() {
            "Failed to update record."
        } else {
            "Failed to create record."
        }
    }
}

/// Validation against the database, the write, and the create rule and
/// manage check on the result, on the writer's connection; a refusal fails
/// the caller's job so its savepoint leaves nothing behind.
fn write_record(
    ctx: &Ctx<'_>,
    conn: &Connection,
    change: RecordChange<'_>,
) -> Result<RecordValues, ApiError> {
    let message = change.failure_message();
    let collection = change.collection;
    let mut opts = WriteOptions::new(ctx.is_superuser());
    if let Some(hash) = change.password_hash {
        opts.password_hashes.insert("password".into(), hash);
    }
    let mut prepared = match change.current {
        None => build_create(collection, change.body, &opts),
        Some(current) => build_update(collection, current, change.body, &opts),
    };
    let missing = check_relations(conn, ctx.schema.all(), collection, &prepared.values)?;
    merge_errors(&mut prepared.errors, missing);
    // The password's own error wins: a refused password is never hashed,
    // so the field would otherwise read as merely missing.
    let mut errors = change.early_errors;
    merge_errors(&mut errors, std::mem::take(&mut prepared.errors));
    prepared.errors = errors;
    let mut values = prepared
        .into_result()
        .map_err(|errors| ApiError::validation(message, errors))?;
    if collection.is_auth() && (change.current.is_none() || change.rotate_token_key) {
        values.set(
            "tokenKey",
            Value::String(random::string_from(random::ALPHANUMERIC, 50)),
        );
    }
    if change.current.is_none() && collection.id == crate::auth::token::SUPERUSERS_ID {
        values.set("verified", Value::Bool(true));
    }
    let id = values.id().to_string();
    match change.current {
        None => sql::insert(conn, collection, &values).map_err(|e| e.into_api(message))?,
        Some(current) => {
            if !sql::update(conn, collection, current.id(), &values)
                .map_err(|e| e.into_api(message))?
            {
                return Err(ApiError::not_found());
            }
        }
    }
    let schema = &ctx.schema;
    if let Some(rule) = change.create_rule {
        let allowed =
            filter::record_satisfies_on(conn, schema, collection, rule, &id, change.request, None)?;
        if !allowed {
            return Err(ApiError::bad_request(message));
        }
    }
    if change.manage_check
        && !filter::can_manage(conn, schema, collection, &id, None, change.request)?
    {
        let mut errors = FieldErrors::new();
        errors.insert("verified".into(), values_mismatch());
        return Err(ApiError::validation(message, errors));
    }
    sql::find_by_id(conn, collection, &id)?
        .ok_or_else(|| ApiError::internal("a written record vanished"))
}
