//! Filters, sorts and API rules on records: turns the `filter`/`sort`
//! parameters and a collection's rules into one WHERE clause (and ORDER BY
//! terms) for the list, its COUNT and single-record checks.
//!
//! The language itself (parsing, operators, NULL handling, any/every
//! matching) lives in `crate::query`; `resolver` says what each name means
//! for a record, `joins` names and renders the joins, `request` holds
//! `@request.*`. This module must never paste request text into SQL: names
//! are checked against the schema and quoted, values are bound.
//!
//! Relation paths need joins. Rather than joining in the main query (which
//! multiplies rows and needs DISTINCT), a filter that uses joins becomes
//! `EXISTS (SELECT 1 FROM (SELECT 1) LEFT JOIN … WHERE <filter>)`,
//! correlated with the outer row. That has the reference's semantics — one
//! set of joined rows shared by the whole filter, so `a.x ?= 1 && a.y ?= 2`
//! must hold on the same related record — and the list and its COUNT share
//! the same clause without ever seeing duplicates.

mod joins;
mod request;
mod resolver;

pub use request::{RequestFields, RequestInfo};

use crate::app::Ctx;
use crate::auth::Auth;
use crate::collections::{Collection, Schema};
use crate::error::ApiError;
use crate::query::{self, CompileOptions, FilterError, Fragment, Resolved, Resolver, SqlValue};
use crate::records::RecordValues;
use crate::store::quote_ident;
use resolver::{Mode, RecordResolver};
use serde_json::Value;
use std::collections::HashSet;

/// Most sort keys one list may have, as the reference.
const MAX_SORT_KEYS: usize = 8;

/// A WHERE clause over the collection's own table (no alias), with its
/// parameters in placeholder order. Empty `sql` means "every record".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhereClause {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

/// One ORDER BY key of a list.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// A column or expression; its parameters come after the WHERE's.
    Expr {
        sql: Fragment,
        desc: bool,
    },
    Random,
    Rowid {
        desc: bool,
    },
}

/// Builds the WHERE clause of one statement on one collection: any number
/// of rules and client filters (ANDed), plus the sort keys, which share the
/// same joins.
pub struct RecordQuery<'a> {
    resolver: RecordResolver<'a>,
    filters: Vec<Fragment>,
    /// Whether a rule or filter (not only a sort key) uses a join.
    filters_use_joins: bool,
}

impl<'a> RecordQuery<'a> {
    pub fn new(
        schema: &'a Schema,
        collection: &'a Collection,
        info: &'a RequestInfo,
    ) -> RecordQuery<'a> {
        RecordQuery::nested(schema, collection, info, "")
    }

    /// A query whose aliases start with `prefix`, for statements nested in
    /// another one (a joined collection's list rule).
    fn nested(
        schema: &'a Schema,
        collection: &'a Collection,
        info: &'a RequestInfo,
        prefix: &str,
    ) -> RecordQuery<'a> {
        RecordQuery {
            resolver: RecordResolver::new(schema, collection, info, None, prefix),
            filters: Vec::new(),
            filters_use_joins: false,
        }
    }

    /// For a rule on an existing record: the body's modifier keys apply to
    /// it and `@request.body.x:changed` compares with it.
    pub fn for_record(
        schema: &'a Schema,
        collection: &'a Collection,
        info: &'a RequestInfo,
        current: &'a RecordValues,
    ) -> RecordQuery<'a> {
        RecordQuery {
            resolver: RecordResolver::new(schema, collection, info, Some(current), ""),
            filters: Vec::new(),
            filters_use_joins: false,
        }
    }

    /// Adds an API rule (an expression; callers handle `null` and `""`).
    pub fn add_rule(&mut self, rule: &str) -> Result<(), FilterError> {
        self.add(rule, Mode::Rule)
    }

    /// Adds the client's `filter` parameter, with the restrictions of the
    /// caller (superusers have none). Empty means no filter; blank or
    /// comment-only text is an error, as in the reference.
    pub fn add_client_filter(&mut self, text: &str) -> Result<(), FilterError> {
        if text.is_empty() {
            return Ok(());
        }
        let mode = self.client_mode();
        self.add(text, mode)
    }

    fn client_mode(&self) -> Mode {
        if self.resolver_info().is_superuser() {
            Mode::Superuser
        } else {
            Mode::Client
        }
    }

    fn resolver_info(&self) -> &RequestInfo {
        self.resolver.info()
    }

    fn add(&mut self, text: &str, mode: Mode) -> Result<(), FilterError> {
        let Some(expr) = query::parse(text)? else {
            return Err(FilterError::Invalid("the filter is blank".into()));
        };
        self.resolver.mode = mode;
        self.resolver.joins.clear_touched();
        let compiled = query::compile(&expr, &mut self.resolver, &CompileOptions::now())?;
        self.filters_use_joins |= self.resolver.joins.any_touched();
        self.filters
            .push(Fragment::with_params(compiled.sql, compiled.params));
        Ok(())
    }

    /// The `sort` parameter as ORDER BY keys: `-` descending, `+`/none
    /// ascending, `@random`, `@rowid`, fields and paths (a multi-valued
    /// path sorts by its first value). Request values cannot be sorted by.
    pub fn add_client_sort(&mut self, text: &str) -> Result<Vec<SortKey>, FilterError> {
        let mode = self.client_mode();
        let mut keys = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, desc) = match part.strip_prefix('-') {
                Some(name) => (name, true),
                None => (part.strip_prefix('+').unwrap_or(part), false),
            };
            keys.push(match name {
                "@random" => SortKey::Random,
                "@rowid" => SortKey::Rowid { desc },
                _ => SortKey::Expr {
                    sql: self.sort_expr(name, mode)?,
                    desc,
                },
            });
            if keys.len() > MAX_SORT_KEYS {
                return Err(FilterError::Invalid(format!(
                    "at most {MAX_SORT_KEYS} sort keys are allowed"
                )));
            }
        }
        Ok(keys)
    }

    fn sort_expr(&mut self, name: &str, mode: Mode) -> Result<Fragment, FilterError> {
        let identifier = query::parse_identifier(name)?;
        self.resolver.mode = mode;
        self.resolver.joins.clear_touched();
        let Resolved::Expr(resolved) = self.resolver.resolve(&identifier)? else {
            return Err(FilterError::Invalid(format!("cannot sort by {name:?}")));
        };
        if !self.resolver.joins.any_touched() {
            return Ok(resolved.expr);
        }
        // A scalar subquery over the key's own joins: the first joined value.
        let mut sql = Fragment::sql("(SELECT ");
        sql.push_fragment(&resolved.expr);
        sql.push_sql(" ");
        self.resolver.joins.push_touched(&mut sql);
        sql.push_sql(" LIMIT 1)");
        Ok(sql)
    }

    /// The WHERE clause: the filters ANDed, inside one EXISTS over the
    /// joins when they use any, plus the joined rows' list-rule conditions.
    pub fn finish(self) -> WhereClause {
        let conditions: Vec<Fragment> = self
            .resolver
            .conditions
            .iter()
            .map(|(_, condition)| condition.clone())
            .collect();
        let needs_joins =
            !self.resolver.joins.is_empty() && (self.filters_use_joins || !conditions.is_empty());
        let parts: Vec<&Fragment> = self.filters.iter().chain(conditions.iter()).collect();
        if parts.is_empty() {
            return WhereClause::default();
        }
        let mut out = Fragment::default();
        if needs_joins {
            out.push_sql("EXISTS (SELECT 1 ");
            self.resolver.joins.push_all(&mut out);
            out.push_sql(" WHERE ");
        }
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push_sql(" AND ");
            }
            out.push_fragment(part);
        }
        if needs_joins {
            out.push_sql(")");
        }
        WhereClause {
            sql: out.sql,
            params: out.params,
        }
    }
}

/// `filter`/`sort` text a non-superuser may not send: the reference refuses
/// any mention of `@request.`/`@collection.` (403) before parsing.
pub fn superuser_only_mention(texts: &[Option<&str>]) -> Option<&'static str> {
    ["@collection.", "@request."]
        .into_iter()
        .find(|mention| texts.iter().flatten().any(|text| text.contains(mention)))
}

/// Maps a filter error to the API's answer: 403 for forbidden names,
/// 400 for everything else.
pub fn filter_error(err: FilterError) -> ApiError {
    match err {
        FilterError::Forbidden(message) => ApiError::Forbidden(message),
        _ => ApiError::bad_request("Something went wrong while processing your request."),
    }
}

/// Whether the record `id` satisfies `rule` for `auth` (a request with no
/// query, headers or body — e.g. the auth rule at sign-in).
pub fn record_satisfies(
    ctx: &Ctx<'_>,
    collection: &Collection,
    rule: &str,
    id: &str,
    auth: Option<&Auth>,
) -> Result<bool, ApiError> {
    let info = RequestInfo::new(auth.cloned());
    record_satisfies_on(ctx.db, &ctx.schema, collection, rule, id, &info, None)
}

/// Whether the record `id` satisfies the rule expression `rule` for the
/// request `info`, on any connection (a worker's, or the writer's inside a
/// job). `current` is the record before an update. A rule that no longer
/// compiles (e.g. a field it names was deleted) is not satisfied.
pub fn record_satisfies_on(
    conn: &rusqlite::Connection,
    schema: &Schema,
    collection: &Collection,
    rule: &str,
    id: &str,
    info: &RequestInfo,
    current: Option<&RecordValues>,
) -> Result<bool, ApiError> {
    let mut query = match current {
        Some(record) => RecordQuery::for_record(schema, collection, info, record),
        None => RecordQuery::new(schema, collection, info),
    };
    if let Err(e) = query.add_rule(rule) {
        log::warn!("rule of {} does not compile: {e}", collection.name);
        return Ok(false);
    }
    let clause = query.finish();
    let table = quote_ident(&collection.name);
    let mut sql = format!("SELECT 1 FROM {table} WHERE {table}.`id` = ?");
    if !clause.sql.is_empty() {
        sql.push_str(&format!(" AND ({})", clause.sql));
    }
    sql.push_str(" LIMIT 1");
    let mut params = vec![SqlValue::Text(id.to_owned())];
    params.extend(clause.params);
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt.exists(rusqlite::params_from_iter(params))?)
}

/// Whether the caller satisfies the auth collection's `manageRule` for the
/// record `record_id` (`current` is its state before an update), which
/// grants full edit (email, password without the old one, verified) and
/// shows its email. Superusers are handled by callers.
pub fn can_manage(
    conn: &rusqlite::Connection,
    schema: &Schema,
    collection: &Collection,
    record_id: &str,
    current: Option<&RecordValues>,
    info: &RequestInfo,
) -> Result<bool, ApiError> {
    match manage_rule(collection) {
        Some(rule) if info.auth.is_some() => {
            record_satisfies_on(conn, schema, collection, rule, record_id, info, current)
        }
        _ => Ok(false),
    }
}

/// The `manageRule` expression of an auth collection, if it has one
/// (`null` and `""` grant nothing beyond superusers).
pub fn manage_rule(collection: &Collection) -> Option<&str> {
    if !collection.is_auth() {
        return None;
    }
    collection
        .options
        .get("manageRule")
        .and_then(Value::as_str)
        .filter(|rule| !rule.trim().is_empty())
}

/// The ids among `ids` whose auth record the caller manages, in one query
/// (for showing their emails in a list).
pub fn managed_ids(
    conn: &rusqlite::Connection,
    schema: &Schema,
    collection: &Collection,
    ids: &[&str],
    info: &RequestInfo,
) -> Result<HashSet<String>, ApiError> {
    let mut managed = HashSet::new();
    let Some(rule) = manage_rule(collection) else {
        return Ok(managed);
    };
    if info.auth.is_none() || ids.is_empty() {
        return Ok(managed);
    }
    let mut query = RecordQuery::new(schema, collection, info);
    if let Err(e) = query.add_rule(rule) {
        log::warn!("manageRule of {} does not compile: {e}", collection.name);
        return Ok(managed);
    }
    let clause = query.finish();
    let table = quote_ident(&collection.name);
    let placeholders = vec!["?"; ids.len()].join(", ");
    let rule_sql = if clause.sql.is_empty() {
        "1"
    } else {
        clause.sql.as_str()
    };
    let sql = format!(
        "SELECT {table}.`id` FROM {table} WHERE {table}.`id` IN ({placeholders}) AND ({rule_sql})"
    );
    let mut params: Vec<SqlValue> = ids
        .iter()
        .map(|id| SqlValue::Text((*id).to_owned()))
        .collect();
    params.extend(clause.params);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
        row.get::<_, String>(0)
    })?;
    for id in rows {
        managed.insert(id?);
    }
    Ok(managed)
}

/// Checks that a rule is valid for `collection` (used when saving a
/// schema). `schema` already holds the candidate collection, so relation
/// paths resolve through it.
pub fn validate_rule(schema: &Schema, collection: &Collection, rule: &str) -> Result<(), String> {
    let info = RequestInfo::new(None);
    RecordQuery::new(schema, collection, &info)
        .add_rule(rule)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
