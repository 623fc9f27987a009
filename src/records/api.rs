//! The records API of a collection: list, view, create, update, delete.
//!
//! Access follows the collection's rules: `null` is superusers only (403),
//! a failing expression hides records from lists, answers 404 on
//! view/update/delete and 400 on create. Writes run as one writer job each:
//! validation against the database, the write and the rule check on the
//! result happen in the job's savepoint, so a refused write leaves nothing.

use super::filter::{self, RecordQuery, RequestInfo, SortKey};
use super::output::{self, Viewer};
use super::relations::{self, DeleteError};
use super::sql::{self, Order};
use super::{
    build_create, build_update, check_relations, merge_errors, RecordValues, WriteOptions,
};
use crate::app::Ctx;
use crate::auth::Auth;
use crate::collections::Collection;
use crate::error::{field_error, ApiError, FieldErrors};
use crate::http::{body, Outcome, Reply, Req};
use crate::security::{password, random};
use serde_json::{json, Map, Value};
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

fn viewer_for(ctx: &Ctx<'_>, collection: &Collection, record: &RecordValues) -> Viewer {
    let is_owner = ctx.auth.as_ref().is_some_and(|a| {
        a.collection.id == collection.id && record.get("id").and_then(Value::as_str) == Some(a.id())
    });
    Viewer {
        is_superuser: ctx.is_superuser(),
        is_owner,
        can_manage: manages(ctx, collection, record),
    }
}

/// Whether the caller satisfies the auth collection's `manageRule` for
/// `record` (then its email shows). One indexed lookup per record, and
/// only for auth collections that have such a rule; a failed check hides.
fn manages(ctx: &Ctx<'_>, collection: &Collection, record: &RecordValues) -> bool {
    if ctx.is_superuser() || ctx.auth.is_none() || filter::manage_rule(collection).is_none() {
        return false;
    }
    let info = RequestInfo::new(ctx.auth.clone());
    filter::can_manage(
        ctx.db,
        &ctx.schema,
        collection,
        record.id(),
        Some(record),
        &info,
    )
    .unwrap_or(false)
}

fn render(ctx: &Ctx<'_>, collection: &Collection, record: &RecordValues) -> Value {
    Value::Object(output::to_json(
        collection,
        record,
        &viewer_for(ctx, collection, record),
    ))
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
    let items: Vec<Value> = items.iter().map(|r| render(ctx, &collection, r)).collect();
    Ok(Reply::json(&json!({
        "page": page, "perPage": per_page, "totalItems": total_items, "totalPages": total_pages, "items": items,
    })))
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
    Ok(Reply::json(&render(ctx, &collection, &record)))
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

/// Password handling of auth records. Returns the new hash to store, if any.
/// The checks are the reference's; hashing itself happens later, off the worker.
/// `full_access` (superusers, `manageRule`) needs no old password.
fn auth_password_change(
    full_access: bool,
    collection: &Collection,
    body: &Map<String, Value>,
    current: Option<&RecordValues>,
    errors: &mut FieldErrors,
) -> Option<String> {
    if !collection.is_auth() {
        return None;
    }
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (new, confirm) = (text("password"), text("passwordConfirm"));
    let creating = current.is_none();
    if new.is_empty() && !creating {
        return None;
    }
    if new.is_empty() {
        errors.insert(
            "password".into(),
            field_error("validation_required", "Cannot be blank."),
        );
        return None;
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
    } else if new.len() > 71 {
        errors.insert(
            "password".into(),
            field_error(
                "validation_max_text_constraint",
                "Must be no more than 71 bytes.",
            ),
        );
    }
    if confirm != new {
        errors.insert(
            "passwordConfirm".into(),
            field_error("validation_values_mismatch", "Values don't match."),
        );
    }
    if let (Some(current), false) = (current, full_access) {
        let old = text("oldPassword");
        let hash = current
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if old.is_empty() {
            errors.insert(
                "oldPassword".into(),
                field_error("validation_required", "Cannot be blank."),
            );
        } else if !password::verify_password(&old, hash) {
            errors.insert(
                "oldPassword".into(),
                field_error(
                    "validation_invalid_old_password",
                    "Missing or invalid old password.",
                ),
            );
        }
    }
    Some(new)
}

/// Fields only the server sets on auth records, whatever the body says
/// (`verified` too, without `full_access`: superusers, `manageRule`).
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
    let rule = effective_rule(ctx, &collection.create_rule)?;
    let mut body = body_of(ctx, req)?;
    // The create rule sees the body as submitted.
    let request = RequestInfo::from_req(req, ctx.auth.clone()).with_body(body.clone());
    let mut errors = FieldErrors::new();
    let su = ctx.is_superuser();
    let new_password = auth_password_change(su, &collection, &body, None, &mut errors);
    strip_auth_internals(su, &collection, &mut body, true);
    // Only superusers and managers (`manageRule`, checked on the new record
    // inside the job) may create a verified auth record.
    let mut manage_check = false;
    if !su && asks_for_verified(&collection, &body, None) {
        if filter::manage_rule(&collection).is_some() && ctx.auth.is_some() {
            manage_check = true;
        } else {
            errors.insert("verified".into(), values_mismatch());
        }
    }
    if !su && !manage_check {
        body.remove("verified");
    }
    let job = WriteJob {
        app: ctx.app.clone(),
        collection,
        current: None,
        body,
        early_errors: errors,
        rule,
        auth: ctx.auth.clone(),
        rotate_token_key: false,
        request,
        can_manage: false,
        manage_check,
    };
    run_write_job(job, new_password)
}

/// `PATCH /api/collections/{c}/records/{id}`
pub fn update(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Outcome, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.update_rule)?;
    let mut body = body_of(ctx, req)?;
    let request = RequestInfo::from_req(req, ctx.auth.clone()).with_body(body.clone());
    let current = find_visible(ctx, &collection, id, rule.as_deref(), &request)?;
    let can_manage = !ctx.is_superuser()
        && filter::can_manage(
            ctx.db,
            &ctx.schema,
            &collection,
            id,
            Some(&current),
            &request,
        )?;
    let full_access = ctx.is_superuser() || can_manage;
    let mut errors = FieldErrors::new();
    if !full_access && asks_for_verified(&collection, &body, Some(&current)) {
        errors.insert("verified".into(), values_mismatch());
    }
    let new_password =
        auth_password_change(full_access, &collection, &body, Some(&current), &mut errors);
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
    let job = WriteJob {
        app: ctx.app.clone(),
        collection,
        current: Some(current),
        body,
        early_errors: errors,
        // the rule was checked against the record as it is
        rule: None,
        auth: ctx.auth.clone(),
        // A new password or email invalidates every token of the record.
        rotate_token_key: new_password.is_some() || email_changes,
        request,
        can_manage,
        manage_check: false,
    };
    run_write_job(job, new_password)
}

/// Runs a create/update now, or on the hashing pool when a password must be
/// hashed first (tens of milliseconds a worker should not spend).
fn run_write_job(job: WriteJob, new_password: Option<String>) -> Result<Outcome, ApiError> {
    match new_password {
        Some(plain) if job.early_errors.is_empty() => Ok(Outcome::Later(Box::new(move || {
            let hash = password::hash_password(&plain).map_err(ApiError::internal)?;
            job.run(Some(hash))
        }))),
        _ => Ok(Outcome::Now(job.run(None)?)),
    }
}

/// A create or update once the request has been read: validation against
/// the database, the write and the create rule all happen in one writer
/// job, so a refused write leaves nothing behind.
struct WriteJob {
    app: Arc<crate::app::App>,
    collection: Arc<Collection>,
    /// The record before the change; `None` for a create.
    current: Option<RecordValues>,
    body: Map<String, Value>,
    /// Errors found before the job (auth password rules).
    early_errors: FieldErrors,
    /// The create rule to check on the new record.
    rule: Option<String>,
    auth: Option<Auth>,
    rotate_token_key: bool,
    /// What the create rule sees as `@request.*`.
    request: RequestInfo,
    /// The caller satisfies the auth collection's `manageRule` (sees the email).
    can_manage: bool,
    /// A create asks for `verified` without superuser rights: allowed only
    /// when the caller satisfies `manageRule` for the new record.
    manage_check: bool,
}

impl WriteJob {
    fn failure_message(&self) -> &'static str {
        if self.current.is_some() {
            "Failed to update record."
        } else {
            "Failed to create record."
        }
    }

    fn run(self, password_hash: Option<String>) -> Result<Reply, ApiError> {
        let message = self.failure_message();
        let mut opts = WriteOptions::new(self.auth.as_ref().is_some_and(Auth::is_superuser));
        if let Some(hash) = password_hash {
            opts.password_hashes.insert("password".into(), hash);
        }
        let app = self.app.clone();
        let schema = app.schema();
        let collection = self.collection.clone();
        let auth = self.auth.clone();
        let can_manage = self.can_manage;
        let (saved, can_manage) = app.write(move |tx| {
            let conn = tx.conn();
            let WriteJob {
                collection,
                current,
                body,
                early_errors,
                rule,
                rotate_token_key,
                request,
                manage_check,
                ..
            } = self;
            let mut prepared = match &current {
                None => build_create(&collection, &body, &opts),
                Some(current) => build_update(&collection, current, &body, &opts),
            };
            let missing = check_relations(conn, schema.all(), &collection, &prepared.values)?;
            merge_errors(&mut prepared.errors, missing);
            merge_errors(&mut prepared.errors, early_errors);
            let mut values = prepared
                .into_result()
                .map_err(|errors| ApiError::validation(message, errors))?;
            if collection.is_auth() && (current.is_none() || rotate_token_key) {
                values.set(
                    "tokenKey",
                    Value::String(random::string_from(random::ALPHANUMERIC, 50)),
                );
            }
            if current.is_none() && collection.id == crate::auth::token::SUPERUSERS_ID {
                values.set("verified", Value::Bool(true));
            }
            let id = values.id().to_string();
            match &current {
                None => sql::insert(conn, &collection, &values).map_err(|e| e.into_api(message))?,
                Some(current) => {
                    if !sql::update(conn, &collection, current.id(), &values)
                        .map_err(|e| e.into_api(message))?
                    {
                        return Err(ApiError::not_found());
                    }
                }
            }
            if let Some(rule) = &rule {
                let allowed = filter::record_satisfies_on(
                    conn,
                    &schema,
                    &collection,
                    rule,
                    &id,
                    &request,
                    None,
                )?;
                if !allowed {
                    return Err(ApiError::bad_request(message));
                }
            }
            let mut managed = can_manage;
            if manage_check {
                if !filter::can_manage(conn, &schema, &collection, &id, None, &request)? {
                    let mut errors = FieldErrors::new();
                    errors.insert("verified".into(), values_mismatch());
                    return Err(ApiError::validation(message, errors));
                }
                managed = true;
            }
            let saved = sql::find_by_id(conn, &collection, &id)?
                .ok_or_else(|| ApiError::internal("a written record vanished"))?;
            Ok((saved, managed))
        })?;
        let is_owner = auth
            .as_ref()
            .is_some_and(|a| a.collection.id == collection.id && saved.id() == a.id());
        let viewer = Viewer {
            is_superuser: auth.as_ref().is_some_and(Auth::is_superuser),
            is_owner,
            can_manage,
        };
        Ok(Reply::json(&Value::Object(output::to_json(
            &collection,
            &saved,
            &viewer,
        ))))
    }
}

/// `DELETE /api/collections/{c}/records/{id}`
pub fn delete(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.delete_rule)?;
    // The reference reads a DELETE's body too: rules may look at it.
    let body = body_of(ctx, req)?;
    let request = RequestInfo::from_req(req, ctx.auth.clone()).with_body(body);
    find_visible(ctx, &collection, id, rule.as_deref(), &request)?;
    let is_superusers = collection.id == crate::auth::token::SUPERUSERS_ID;
    let schema = ctx.schema.clone();
    let id = id.to_string();
    ctx.app.write(move |tx| {
        let conn = tx.conn();
        if is_superusers {
            let total: i64 = conn.query_row("SELECT count(*) FROM `_superusers`", [], |r| r.get(0))?;
            if total <= 1 {
                return Err(ApiError::bad_request("You can't delete the only existing superuser."));
            }
        }
        match relations::delete_record(conn, schema.all(), &collection, &id, &crate::datetime::now_text()) {
            Ok(_) => Ok(()),
            Err(DeleteError::NotFound) => Err(ApiError::not_found()),
            Err(DeleteError::RequiredReference { .. }) => Err(ApiError::bad_request(
                "Failed to delete record. Make sure that the record is not part of a required relation reference.",
            )),
            Err(DeleteError::Write(e)) => Err(e.into_api("Failed to delete record.")),
        }
    })?;
    Ok(Reply::no_content())
}
