//! The collections API (superusers only): list, view, create, update,
//! delete, truncate, import and scaffolds. Schema changes run as writer
//! jobs; the cached schema is swapped only after they commit.

use super::registry::Schema;
use super::{ddl, system, validate, Collection};
use crate::app::{App, Ctx};
use crate::error::ApiError;
use crate::http::{body, Reply, Req};
use crate::query::{self, FilterError, Identifier, Resolved, ResolvedExpr, Resolver, SqlValue};
use crate::records::filter::filter_error;
use crate::store::quote_ident;
use serde_json::{json, Value};
use std::sync::Arc;

/// Columns of `_collections` a superuser may filter and sort by.
const FILTERABLE: &[&str] = &[
    "id",
    "name",
    "type",
    "system",
    "listRule",
    "viewRule",
    "createRule",
    "updateRule",
    "deleteRule",
    "created",
    "updated",
];

struct CollectionsResolver;

impl Resolver for CollectionsResolver {
    fn resolve(&mut self, identifier: &Identifier) -> Result<Resolved, FilterError> {
        match identifier.path.as_slice() {
            [name] if FILTERABLE.contains(&name.as_str()) && identifier.modifier.is_none() => {
                Ok(Resolved::Expr(ResolvedExpr::column(quote_ident(name))))
            }
            _ => Err(FilterError::Invalid(format!(
                "unknown field {:?}",
                identifier.raw
            ))),
        }
    }
}

fn find(ctx: &Ctx<'_>, id_or_name: &str) -> Result<Arc<Collection>, ApiError> {
    ctx.schema
        .get(id_or_name)
        .cloned()
        .ok_or_else(ApiError::not_found)
}

fn body_json(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Value, ApiError> {
    Ok(Value::Object(
        body::parse(
            req,
            crate::http::request::DEFAULT_BODY_LIMIT,
            &ctx.app.temp_dir(),
        )?
        .values,
    ))
}

/// `GET /api/collections`
pub fn list(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        match req.query_param(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(&format!("Invalid {name} parameter."))),
        }
    };
    let page = number("page")?.filter(|p| *p > 0).unwrap_or(1);
    let per_page = number("perPage")?
        .filter(|p| *p > 0)
        .unwrap_or(30)
        .min(1000);
    let skip_total = matches!(req.query_param("skipTotal"), Some("1") | Some("true"));
    let (where_sql, params) = match req.query_param("filter") {
        Some(text) => match query::parse(text).map_err(filter_error)? {
            Some(expr) => {
                let c = query::compile(
                    &expr,
                    &mut CollectionsResolver,
                    &query::CompileOptions::now(),
                )
                .map_err(filter_error)?;
                (c.sql, c.params)
            }
            None => ("1".to_string(), Vec::new()),
        },
        None => ("1".to_string(), Vec::new()),
    };
    let mut order = Vec::new();
    for part in req
        .query_param("sort")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (name, dir) = match part.strip_prefix('-') {
            Some(n) => (n, "DESC"),
            None => (part.strip_prefix('+').unwrap_or(part), "ASC"),
        };
        if !FILTERABLE.contains(&name) {
            return Err(ApiError::bad_request(
                "Something went wrong while processing your request. Invalid sort field.",
            ));
        }
        order.push(format!("{} {dir}", quote_ident(name)));
    }
    order.push("rowid ASC".into());
    let sql = format!(
        "SELECT id FROM `_collections` WHERE {where_sql} ORDER BY {} LIMIT ? OFFSET ?",
        order.join(", ")
    );
    let mut all_params = params.clone();
    all_params.push(SqlValue::Integer(per_page));
    all_params.push(SqlValue::Integer((page - 1) * per_page));
    let ids: Vec<String> = {
        let mut stmt = ctx.db.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(all_params), |r| {
            r.get::<_, String>(0)
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| ctx.schema.get_by_id(id))
        .map(|c| c.to_api_json())
        .collect();
    let (total, pages) = if skip_total {
        (-1, -1)
    } else {
        let count_sql = format!("SELECT count(*) FROM `_collections` WHERE {where_sql}");
        let total: i64 = ctx
            .db
            .query_row(&count_sql, rusqlite::params_from_iter(params), |r| r.get(0))?;
        (total, (total + per_page - 1) / per_page)
    };
    Ok(Reply::json(
        &json!({"page": page, "perPage": per_page, "totalItems": total, "totalPages": pages, "items": items}),
    ))
}

/// `GET /api/collections/{c}`
pub fn view(ctx: &Ctx<'_>, _req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    Ok(Reply::json(&find(ctx, c)?.to_api_json()))
}

/// The rule check schema validation uses: the filter language over the
/// candidate collection's own fields.
fn rule_check(schema: &Schema, collection: &Collection, rule: &str) -> Result<(), String> {
    crate::records::filter::validate_rule(schema, collection, rule)
}

/// Runs a schema change on the writer and reloads the schema after commit,
/// then tells realtime (in commit order with record events), which drops
/// the bound auth of collections that vanished or got a new token secret.
fn write_schema<T: Send + 'static>(
    app: &Arc<App>,
    job: impl FnOnce(&rusqlite::Connection, &Schema) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let after = app.clone();
    app.write(move |tx| {
        // Validate against the schema as committed, read on the writer itself.
        let schema = Schema::load(tx.conn())?;
        let value = job(tx.conn(), &schema)?;
        tx.after_commit(move |conn| {
            let before = after.schema();
            after.reload_schema(conn);
            let publisher = after.realtime.publisher();
            publisher.schema_changed(before, after.schema());
        });
        Ok(value)
    })
}

/// `POST /api/collections`
pub fn create(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let input = body_json(ctx, req)?;
    let created = write_schema(ctx.app, move |conn, schema| {
        let collection = validate::build_new(conn, &input, schema, &rule_check)?;
        ddl::create(conn, &collection)?;
        Ok(collection)
    })?;
    Ok(Reply::json(&created.to_api_json()))
}

/// `PATCH /api/collections/{c}`
pub fn update(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let id = find(ctx, c)?.id.clone();
    let patch = body_json(ctx, req)?;
    let updated = write_schema(ctx.app, move |conn, schema| {
        let existing = schema
            .get_by_id(&id)
            .cloned()
            .ok_or_else(ApiError::not_found)?;
        let next = validate::build_update(conn, &existing, &patch, schema, &rule_check)?;
        ddl::update(conn, &existing, &next, schema)?;
        Ok(next)
    })?;
    Ok(Reply::json(&updated.to_api_json()))
}

/// `DELETE /api/collections/{c}`
pub fn delete(ctx: &Ctx<'_>, c: &str) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let id = find(ctx, c)?.id.clone();
    write_schema(ctx.app, move |conn, schema| {
        let existing = schema
            .get_by_id(&id)
            .cloned()
            .ok_or_else(ApiError::not_found)?;
        ddl::delete(conn, &existing, schema)
    })?;
    Ok(Reply::no_content())
}

/// `DELETE /api/collections/{c}/truncate`
pub fn truncate(ctx: &Ctx<'_>, c: &str) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let collection = find(ctx, c)?;
    let schema = ctx.schema.clone();
    let tokens = ctx.app.tokens.clone();
    ctx.app.write(move |tx| {
        // Emptied in one go, which SQLite's update hook does not report.
        tokens.note_bulk_write();
        ddl::truncate(tx.conn(), &collection, &schema)
    })?;
    Ok(Reply::no_content())
}

/// `PUT /api/collections/import`
pub fn import(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    let input = body_json(ctx, req)?;
    let list = input
        .get("collections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let delete_missing = input
        .get("deleteMissing")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    write_schema(ctx.app, move |conn, schema| {
        system::import(conn, schema, &list, delete_missing, &rule_check)
    })?;
    Ok(Reply::no_content())
}

/// `GET /api/collections/meta/scaffolds`
pub fn scaffolds(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    ctx.require_superuser()?;
    Ok(Reply::json(&system::scaffolds()))
}
