//! Filters and API rules on records: resolves the identifiers of the filter
//! language against a collection's fields and the caller's auth, and runs
//! rule checks. The language itself (parsing, operators, SQL shape) lives in
//! `crate::query`; this file only says what each name means for a record.
//!
//! Identifiers become quoted columns of fields that exist in the schema, or
//! bound values (`@request.auth.*`). Nothing typed by a client reaches the
//! SQL text.

use crate::app::Ctx;
use crate::auth::Auth;
use crate::collections::{Collection, FieldKind};
use crate::error::ApiError;
use crate::query::{
    self, FilterError, Identifier, NullFallback, Resolved, ResolvedExpr, Resolver, SqlValue,
};
use crate::store::quote_ident;
use serde_json::Value;

/// Who is asking, and whether `@request.*` may be used.
pub struct RecordResolver<'a> {
    collection: &'a Collection,
    table: String,
    auth: Option<&'a Auth>,
    /// Rules may use `@request.*`; a client's `filter` only as a superuser.
    allow_request: bool,
    /// Hidden fields are filterable only by superusers.
    show_hidden: bool,
}

impl<'a> RecordResolver<'a> {
    /// For a client-supplied `filter` or `sort`.
    pub fn for_client(collection: &'a Collection, auth: Option<&'a Auth>) -> RecordResolver<'a> {
        let su = auth.is_some_and(Auth::is_superuser);
        RecordResolver {
            collection,
            table: quote_ident(&collection.name),
            auth,
            allow_request: su,
            show_hidden: su,
        }
    }

    /// For an API rule, which the server wrote and may see everything.
    pub fn for_rule(collection: &'a Collection, auth: Option<&'a Auth>) -> RecordResolver<'a> {
        RecordResolver {
            collection,
            table: quote_ident(&collection.name),
            auth,
            allow_request: true,
            show_hidden: true,
        }
    }

    fn request_value(&self, path: &[String], raw: &str) -> Result<Resolved, FilterError> {
        if !self.allow_request {
            return Err(FilterError::Forbidden(
                "Only superusers can filter by @request.".into(),
            ));
        }
        match path.get(1).map(String::as_str) {
            Some("auth") => Ok(Resolved::Value(self.auth_value(&path[2..]))),
            // Outside a request with a body/query (list, view, delete) these are unset.
            Some("body") | Some("query") | Some("headers") => Ok(Resolved::Value(SqlValue::Null)),
            Some("method") | Some("context") => Ok(Resolved::Value(SqlValue::Null)),
            _ => Err(FilterError::Invalid(format!("unknown identifier {raw}"))),
        }
    }

    /// `@request.auth.<field>` as a bound value; NULL for guests.
    fn auth_value(&self, rest: &[String]) -> SqlValue {
        let Some(auth) = self.auth else {
            return SqlValue::Null;
        };
        let Some(name) = rest.first() else {
            return SqlValue::Null;
        };
        if rest.len() > 1 {
            return SqlValue::Null;
        }
        match name.as_str() {
            "collectionId" => SqlValue::Text(auth.collection.id.clone()),
            "collectionName" => SqlValue::Text(auth.collection.name.clone()),
            // Secrets are never comparable, not even in rules.
            "password" | "tokenKey" => SqlValue::Null,
            field => auth
                .record
                .get(field)
                .map(json_to_sql)
                .unwrap_or(SqlValue::Null),
        }
    }

    fn field_expr(&self, path: &[String], raw: &str) -> Result<Resolved, FilterError> {
        let name = &path[0];
        let Some(field) = self.collection.field(name) else {
            return Err(FilterError::Invalid(format!("unknown field {raw:?}")));
        };
        if (field.hidden && !self.show_hidden) || matches!(field.kind, FieldKind::Password { .. }) {
            return Err(FilterError::Invalid(format!(
                "field {name:?} cannot be filtered"
            )));
        }
        let column = format!("{}.{}", self.table, quote_ident(&field.name));
        if path.len() == 1 {
            return Ok(Resolved::Expr(ResolvedExpr::column(column)));
        }
        match field.kind {
            FieldKind::Json { .. } | FieldKind::GeoPoint => {
                let json_path = json_path(&path[1..])
                    .ok_or_else(|| FilterError::Invalid(format!("invalid JSON path {raw:?}")))?;
                Ok(Resolved::Expr(ResolvedExpr {
                    expr: query::Fragment::with_params(
                        format!("json_extract({column}, ?)"),
                        vec![SqlValue::Text(json_path)],
                    ),
                    null_fallback: NullFallback::Disabled,
                    multi_match: None,
                }))
            }
            _ => Err(FilterError::Invalid(format!(
                "relation paths such as {raw:?} are not supported yet"
            ))),
        }
    }
}

/// `a.b.0` → `$."a"."b"[0]`; keys are quoted so no key can break the path.
fn json_path(segments: &[String]) -> Option<String> {
    let mut out = String::from("$");
    for seg in segments {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else if seg.chars().all(|c| c.is_alphanumeric() || c == '_') && !seg.is_empty() {
            out.push_str(&format!(".\"{seg}\""));
        } else {
            return None;
        }
    }
    Some(out)
}

impl Resolver for RecordResolver<'_> {
    fn resolve(&mut self, identifier: &Identifier) -> Result<Resolved, FilterError> {
        if identifier.modifier.is_some() {
            return Err(FilterError::Invalid(format!(
                "modifiers such as {:?} are not supported yet",
                identifier.raw
            )));
        }
        let path = &identifier.path;
        let Some(first) = path.first() else {
            return Err(FilterError::Invalid("empty identifier".into()));
        };
        if first == "@request" {
            return self.request_value(path, &identifier.raw);
        }
        if first.starts_with("@collection") {
            if !self.allow_request {
                return Err(FilterError::Forbidden(
                    "Only superusers can filter by @collection.".into(),
                ));
            }
            return Err(FilterError::Invalid(
                "@collection joins are not supported yet".into(),
            ));
        }
        self.field_expr(path, &identifier.raw)
    }
}

/// A JSON value as an SQL parameter with SQLite's comparison semantics.
pub fn json_to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Maps a filter error to the API's answer: 403 for forbidden names,
/// 400 for everything else.
pub fn filter_error(err: FilterError) -> ApiError {
    match err {
        FilterError::Forbidden(message) => ApiError::Forbidden(message),
        _ => ApiError::bad_request(
            "Something went wrong while processing your request. Invalid filter.",
        ),
    }
}

/// Parses and compiles `text` with `resolver`; `None` for an empty filter.
pub fn compile(
    text: &str,
    resolver: &mut dyn Resolver,
) -> Result<Option<query::CompiledFilter>, FilterError> {
    match query::parse(text)? {
        None => Ok(None),
        Some(expr) => query::compile(&expr, resolver, &query::CompileOptions::now()).map(Some),
    }
}

/// Whether the record `id` satisfies the rule expression `rule` for `auth`.
pub fn record_satisfies(
    ctx: &Ctx<'_>,
    collection: &Collection,
    rule: &str,
    id: &str,
    auth: Option<&Auth>,
) -> Result<bool, ApiError> {
    record_satisfies_on(ctx.db, collection, rule, id, auth)
}

/// As `record_satisfies`, on any connection (the writer's, inside a job).
pub fn record_satisfies_on(
    conn: &rusqlite::Connection,
    collection: &Collection,
    rule: &str,
    id: &str,
    auth: Option<&Auth>,
) -> Result<bool, ApiError> {
    let mut resolver = RecordResolver::for_rule(collection, auth);
    let compiled = compile(rule, &mut resolver)
        .map_err(|e| ApiError::internal(format!("rule of {}: {e}", collection.name)))?;
    let Some(compiled) = compiled else {
        return Ok(true);
    };
    let table = quote_ident(&collection.name);
    let sql = format!(
        "SELECT 1 FROM {table} WHERE {table}.`id` = ? AND {} LIMIT 1",
        compiled.sql
    );
    let mut params: Vec<SqlValue> = vec![SqlValue::Text(id.to_string())];
    params.extend(compiled.params);
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt.exists(rusqlite::params_from_iter(params))?;
    Ok(found)
}

/// Checks that a rule is valid for `collection` (used when saving a schema).
/// `_schema` already holds the candidate collection; relation paths will
/// resolve through it.
pub fn validate_rule(
    _schema: &crate::collections::Schema,
    collection: &Collection,
    rule: &str,
) -> Result<(), String> {
    let mut resolver = RecordResolver::for_rule(collection, None);
    compile(rule, &mut resolver)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_are_quoted_and_safe() {
        assert_eq!(
            json_path(&["a".into(), "b".into(), "0".into()]).as_deref(),
            Some("$.\"a\".\"b\"[0]")
        );
        assert_eq!(json_path(&["a\"]; DROP".into()]), None);
    }
}
