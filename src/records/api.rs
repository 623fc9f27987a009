//! The records API of a collection: list, view, create, update, delete.
//!
//! Access follows the collection's rules: `null` is superusers only (403),
//! a failing expression hides records from lists, answers 404 on
//! view/update/delete and 400 on create. Writes run as one writer job each:
//! validation against the database, the write and the rule check on the
//! result happen in the job's savepoint, so a refused write leaves nothing.

use super::filter::{self, RecordResolver};
use super::present::{present, PresentOptions, Presenter};
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
use crate::query::SqlValue;
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

/// `sort=-a,b` into ORDER BY terms over known, visible fields.
fn order_by<'c>(
    ctx: &Ctx<'_>,
    collection: &'c Collection,
    sort: Option<&str>,
) -> Result<Vec<Order<'c>>, ApiError> {
    let mut terms = Vec::new();
    for part in sort
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (name, desc) = match part.strip_prefix('-') {
            Some(n) => (n, true),
            None => (part.strip_prefix('+').unwrap_or(part), false),
        };
        let term = match name {
            "@random" => Order::Random,
            "@rowid" => Order::Rowid(desc),
            _ => {
                let field = collection
                    .field(name)
                    .filter(|f| !f.hidden || ctx.is_superuser())
                    .ok_or_else(|| ApiError::bad_request("Something went wrong while processing your request. Invalid sort field."))?;
                Order::Field(&field.name, desc)
            }
        };
        terms.push(term);
        if terms.len() > 8 {
            return Err(ApiError::bad_request(
                "Something went wrong while processing your request. Too many sort expressions.",
            ));
        }
    }
    Ok(terms)
}

/// Combines the client's filter and the rule into one WHERE clause.
fn where_clause(
    ctx: &Ctx<'_>,
    collection: &Collection,
    client_filter: Option<&str>,
    rule: Option<&str>,
) -> Result<(String, Vec<SqlValue>), ApiError> {
    let mut parts: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if let Some(text) = client_filter {
        let mut resolver = RecordResolver::for_client(collection, ctx.auth.as_ref());
        if let Some(c) = filter::compile(text, &mut resolver).map_err(filter::filter_error)? {
            parts.push(c.sql);
            params.extend(c.params);
        }
    }
    if let Some(rule) = rule {
        let mut resolver = RecordResolver::for_rule(collection, ctx.auth.as_ref());
        let compiled = filter::compile(rule, &mut resolver)
            .map_err(|e| ApiError::internal(format!("rule of {}: {e}", collection.name)))?;
        if let Some(c) = compiled {
            parts.push(c.sql);
            params.extend(c.params);
        }
    }
    let sql = if parts.is_empty() {
        "1".to_string()
    } else {
        parts.join(" AND ")
    };
    Ok((sql, params))
}

/// `GET /api/collections/{c}/records`
pub fn list(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    let rule = effective_rule(ctx, &collection.list_rule)?;
    let (page, per_page, skip_total) = paging(req)?;
    let order = order_by(ctx, &collection, req.query_param("sort"))?;
    let (where_sql, params) =
        where_clause(ctx, &collection, req.query_param("filter"), rule.as_deref())?;
    let offset = (page - 1).saturating_mul(per_page) as u64;
    let filter = Some((where_sql.as_str(), params.as_slice()));
    let items = sql::list(
        ctx.db,
        &collection,
        filter,
        &order,
        Some(per_page as u64),
        offset,
    )?;
    let (total_items, total_pages) = if skip_total {
        (-1, -1)
    } else {
        let total = sql::count(ctx.db, &collection, filter)? as i64;
        (total, (total + per_page - 1) / per_page)
    };
    let items = present(ctx, &collection, &items, &present_options(req)?);
    Ok(Reply::json(&json!({
        "page": page, "perPage": per_page, "totalItems": total_items, "totalPages": total_pages, "items": items,
    })))
}

/// Loads a record the caller may see under `rule`, or 404.
fn find_visible(
    ctx: &Ctx<'_>,
    collection: &Collection,
    id: &str,
    rule: Option<&str>,
) -> Result<RecordValues, ApiError> {
    let record = sql::find_by_id(ctx.db, collection, id)?.ok_or_else(ApiError::not_found)?;
    if let Some(rule) = rule {
        if !filter::record_satisfies(ctx, collection, rule, id, ctx.auth.as_ref())? {
            return Err(ApiError::not_found());
        }
    }
    Ok(record)
}

/// `GET /api/collections/{c}/records/{id}`
pub fn view(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    let rule = effective_rule(ctx, &collection.view_rule)?;
    let record = find_visible(ctx, &collection, id, rule.as_deref())?;
    let presenter = Presenter::new(ctx.db, &ctx.schema, ctx.auth.as_ref());
    Ok(Reply::json(&presenter.present_one(
        &collection,
        &record,
        &present_options(req)?,
    )))
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
fn auth_password_change(
    ctx: &Ctx<'_>,
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
    if let (Some(current), false) = (current, ctx.is_superuser()) {
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

/// Fields only the server sets on auth records, whatever the body says.
fn strip_auth_internals(
    ctx: &Ctx<'_>,
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
    if !ctx.is_superuser() && !creating {
        body.remove("verified");
    }
}

/// `POST /api/collections/{c}/records`
pub fn create(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.create_rule)?;
    let present = present_options(req)?;
    let mut body = body_of(ctx, req)?;
    let mut errors = FieldErrors::new();
    let new_password = auth_password_change(ctx, &collection, &body, None, &mut errors);
    strip_auth_internals(ctx, &collection, &mut body, true);
    if !ctx.is_superuser() {
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
        present,
    };
    run_write_job(job, new_password)
}

/// `PATCH /api/collections/{c}/records/{id}`
pub fn update(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str, id: &str) -> Result<Outcome, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.update_rule)?;
    let current = find_visible(ctx, &collection, id, rule.as_deref())?;
    let present = present_options(req)?;
    let mut body = body_of(ctx, req)?;
    let mut errors = FieldErrors::new();
    let new_password = auth_password_change(ctx, &collection, &body, Some(&current), &mut errors);
    strip_auth_internals(ctx, &collection, &mut body, false);
    let mut email_changes = false;
    if collection.is_auth() {
        if let Some(email) = body.get("email") {
            email_changes = Some(email) != current.get("email");
            if email_changes && !ctx.is_superuser() {
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
        present,
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
    /// `expand`/`fields` for the answer.
    present: PresentOptions,
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
        let shown = app.write(move |tx| {
            let conn = tx.conn();
            let WriteJob {
                collection,
                current,
                body,
                early_errors,
                rule,
                auth,
                rotate_token_key,
                present,
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
                if !filter::record_satisfies_on(conn, &collection, rule, &id, auth.as_ref())? {
                    return Err(ApiError::bad_request(message));
                }
            }
            let saved = sql::find_by_id(conn, &collection, &id)?
                .ok_or_else(|| ApiError::internal("a written record vanished"))?;
            // Presented on the writer's connection, inside the job: the
            // answer shows the record and its relations as committed.
            let presenter = Presenter::new(conn, &schema, auth.as_ref());
            Ok(presenter.present_one(&collection, &saved, &present))
        })?;
        Ok(Reply::json(&shown))
    }
}

/// `DELETE /api/collections/{c}/records/{id}`
pub fn delete(ctx: &Ctx<'_>, c: &str, id: &str) -> Result<Reply, ApiError> {
    let collection = collection(ctx, c)?;
    refuse_views(&collection)?;
    let rule = effective_rule(ctx, &collection.delete_rule)?;
    find_visible(ctx, &collection, id, rule.as_deref())?;
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
