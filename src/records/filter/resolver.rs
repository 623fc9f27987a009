//! What each identifier of the filter language means for records: own
//! fields, JSON paths, relations and back-relations (`posts_via_author`),
//! modifiers, `@request.*` and `@collection.*`, following the reference's
//! resolver (`core/record_field_resolver*.go`, observed on v0.40.6).
//!
//! Every name is looked up in the schema before it is quoted into SQL;
//! request values are bound parameters; aliases come from `Joins`. Nothing
//! typed by a client reaches the SQL text. This file never runs queries.

use super::joins::{self, Joins, MultiChain};
use super::request::{self, RequestInfo};
use super::RecordQuery;
use crate::auth::Auth;
use crate::collections::{unique_indexes, Collection, Field, FieldKind, Schema};
use crate::query::{
    FilterError, Fragment, Identifier, Modifier, MultiMatch, NullFallback, Resolved, ResolvedExpr,
    Resolver, SqlValue,
};
use crate::records::{values, RecordValues};
use crate::store::quote_ident;
use serde_json::{Map, Value};
use std::cell::OnceCell;

/// Relation hops one path may take, as the reference.
const MAX_NESTED_RELATIONS: usize = 6;

/// `@request.auth.*` fields read from the caller's token record instead of
/// a join (only without a modifier, as the reference).
const PLAIN_AUTH_FIELDS: &[&str] = &[
    "id",
    "collectionId",
    "collectionName",
    "email",
    "emailVisibility",
    "verified",
];

/// Who wrote the expression being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An API rule: written by a superuser, sees everything.
    Rule,
    /// A superuser's `filter`/`sort`: sees everything.
    Superuser,
    /// Anyone else's `filter`/`sort`: no hidden fields, no hidden emails,
    /// no `@request`/`@collection`, and every collection a relation path
    /// enters must allow listing (its list rule then limits the joined rows).
    Client,
}

/// Where a path walk is: the collection reached, its alias in the main
/// query and in the every-element chain, and the flags of the path kind.
struct Walk<'a> {
    collection: &'a Collection,
    alias: String,
    /// The join key of the reached collection, the prefix of later keys.
    key: String,
    chain: MultiChain,
    /// A hop could yield several rows: plain operators then check every one.
    multi: bool,
    allow_hidden: bool,
    /// `@request.*` paths answer NULL for unknown names instead of 400.
    nullify_missing: bool,
}

pub(crate) struct RecordResolver<'a> {
    schema: &'a Schema,
    base: &'a Collection,
    info: &'a RequestInfo,
    /// The record before an update, for `@request.body.x:changed`.
    current: Option<&'a RecordValues>,
    /// The body with modifier keys applied (`n+` → `n`), made on first
    /// use: most rules never look at the body.
    body: OnceCell<Value>,
    pub(crate) mode: Mode,
    pub(crate) joins: Joins,
    /// Per joined collection alias: the condition its list rule puts on the
    /// joined rows of a client filter.
    pub(crate) conditions: Vec<(String, Fragment)>,
}

impl<'a> RecordResolver<'a> {
    pub(crate) fn new(
        schema: &'a Schema,
        base: &'a Collection,
        info: &'a RequestInfo,
        current: Option<&'a RecordValues>,
        alias_prefix: &str,
    ) -> RecordResolver<'a> {
        RecordResolver {
            schema,
            base,
            info,
            current,
            body: OnceCell::new(),
            mode: Mode::Rule,
            joins: Joins::new(alias_prefix),
            conditions: Vec::new(),
        }
    }

    pub(crate) fn info(&self) -> &'a RequestInfo {
        self.info
    }

    fn body(&self) -> &Value {
        self.body.get_or_init(|| {
            let body =
                request::body_with_modifiers_applied(self.base, &self.info.body, self.current);
            Value::Object(body)
        })
    }

    fn base_walk(&mut self) -> Walk<'a> {
        let alias = quote_ident(&self.base.name);
        Walk {
            collection: self.base,
            chain: MultiChain::start(self.joins.fresh_alias('s'), alias.clone()),
            alias,
            key: "$".into(),
            multi: false,
            allow_hidden: self.mode != Mode::Client,
            nullify_missing: false,
        }
    }

    /// A collection by id or name, preferring the base one (which may be a
    /// candidate not yet in the schema, when a rule is validated).
    fn collection(&self, id_or_name: &str) -> Option<&'a Collection> {
        let base = self.base;
        if base.id == id_or_name || base.name.eq_ignore_ascii_case(id_or_name) {
            return Some(base);
        }
        self.schema.get(id_or_name).map(|c| &**c)
    }

    /// Walks `props` from `w`: relation and back-relation hops, then the
    /// last field (or a JSON path inside a JSON/geoPoint field).
    fn walk(
        &mut self,
        mut w: Walk<'a>,
        props: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let total = props.len();
        for (i, prop) in props.iter().enumerate() {
            if i + 1 == total {
                return self.last_prop(&mut w, prop, modifier);
            }
            let collection = w.collection;
            let field = collection.field(prop);
            if let Some(field) = field {
                if field.hidden && !w.allow_hidden {
                    return Err(not_filterable(prop));
                }
                if matches!(field.kind, FieldKind::Json { .. } | FieldKind::GeoPoint) {
                    return Ok(self.json_path(&w, field, &props[i + 1..]));
                }
            }
            if i >= MAX_NESTED_RELATIONS {
                return Err(invalid(format!(
                    "max nested relations reached for {prop:?}"
                )));
            }
            let Some(field) = field else {
                if !self.back_relation(&mut w, prop)? {
                    return Ok(Resolved::Value(SqlValue::Null));
                }
                continue;
            };
            let FieldKind::Relation { collection_id, .. } = &field.kind else {
                return Err(invalid(format!("field {prop:?} is not a relation")));
            };
            // `rel.id` of a single relation is the relation column itself:
            // no join, as the reference.
            let is_last_id = i + 2 == total && props[i + 1] == "id" && modifier.is_none();
            if !field.kind.is_multi() && is_last_id {
                return self.last_prop(&mut w, &field.name, None);
            }
            self.forward_relation(&mut w, field, collection_id)?;
        }
        Err(invalid("empty field path"))
    }

    /// `rel.…`: joins the related collection (through `json_each` for a
    /// multiple relation).
    fn forward_relation(
        &mut self,
        w: &mut Walk<'a>,
        field: &'a Field,
        collection_id: &str,
    ) -> Result<(), FilterError> {
        let target = self
            .collection(collection_id)
            .ok_or_else(|| invalid(format!("missing collection of relation {:?}", field.name)))?;
        let multiple = field.kind.is_multi();
        let column = format!("{}.{}", w.alias, quote_ident(&field.name));
        let chain_column = format!("{}.{}", w.chain.alias, quote_ident(&field.name));
        let key = format!("{}.{}", w.key, field.name);
        let target_table = quote_ident(&target.name);

        let alias = if multiple {
            let each = self
                .joins
                .add(&format!("{key}:je"), joins::json_each_of(&column), |_| None);
            self.joins
                .add(&key, joins::table(target_table.clone()), |a| {
                    Some(Fragment::sql(format!("{a}.`id` = {each}.`value`")))
                })
        } else {
            self.joins
                .add(&key, joins::table(target_table.clone()), |a| {
                    Some(Fragment::sql(format!("{a}.`id` = {column}")))
                })
        };
        self.check_list_access(target, &alias)?;

        let chain_alias = self.joins.fresh_alias('s');
        if multiple {
            let each = self.joins.fresh_alias('s');
            w.chain
                .join(&each, joins::json_each_of(&chain_column), None);
            w.chain.join(
                &chain_alias,
                joins::table(target_table),
                Some(Fragment::sql(format!(
                    "{chain_alias}.`id` = {each}.`value`"
                ))),
            );
        } else {
            w.chain.join(
                &chain_alias,
                joins::table(target_table),
                Some(Fragment::sql(format!(
                    "{chain_alias}.`id` = {chain_column}"
                ))),
            );
        }
        w.multi |= multiple;
        w.collection = target;
        w.alias = alias;
        w.chain.alias = chain_alias;
        w.key = key;
        Ok(())
    }

    /// `<collection>_via_<relation field>`: the records of another
    /// collection pointing at the current one. `Ok(false)` means "resolve
    /// to NULL" (an `@request.*` path naming nothing).
    fn back_relation(&mut self, w: &mut Walk<'a>, prop: &str) -> Result<bool, FilterError> {
        let missing = |message: String| -> Result<bool, FilterError> {
            if w.nullify_missing {
                Ok(false)
            } else {
                Err(invalid(message))
            }
        };
        let Some((collection_name, field_name)) = split_via(prop) else {
            return missing(format!("unknown field {prop:?}"));
        };
        let Some(back) = self.collection(collection_name) else {
            return missing(format!("unknown collection in {prop:?}"));
        };
        let Some(back_field) = back.field(field_name) else {
            return missing(format!("unknown back relation field {field_name:?}"));
        };
        let FieldKind::Relation { collection_id, .. } = &back_field.kind else {
            return missing(format!("{field_name:?} is not a relation"));
        };
        if collection_id != &w.collection.id {
            return missing(format!("{prop:?} does not point at this collection"));
        }
        if back_field.hidden && !w.allow_hidden {
            return Err(not_filterable(field_name));
        }
        // A single relation without a unique index can still be shared by
        // many records, so it is multi-valued from this side.
        let multiple = back_field.kind.is_multi() || !has_unique_index(back, field_name);
        let back_table = quote_ident(&back.name);
        let back_column = quote_ident(&back_field.name);
        let key = format!("{}.{prop}", w.key);
        let parent_id = format!("{}.`id`", w.alias);
        let alias = self.joins.add(&key, joins::table(back_table.clone()), |a| {
            Some(back_relation_on(
                a,
                &back_column,
                &parent_id,
                multiple,
                "`__je`",
            ))
        });
        self.check_list_access(back, &alias)?;

        let chain_alias = self.joins.fresh_alias('s');
        let chain_parent_id = format!("{}.`id`", w.chain.alias);
        w.chain.join(
            &chain_alias,
            joins::table(back_table),
            Some(back_relation_on(
                &chain_alias,
                &back_column,
                &chain_parent_id,
                multiple,
                "`__je`",
            )),
        );
        w.multi |= multiple;
        w.collection = back;
        w.alias = alias;
        w.chain.alias = chain_alias;
        w.key = key;
        Ok(true)
    }

    /// The last segment: a field, maybe with `:length`, `:each` or `:lower`
    /// (`:isset`/`:changed` on a record field mean nothing and are ignored,
    /// as in the reference).
    fn last_prop(
        &mut self,
        w: &mut Walk<'a>,
        name: &str,
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let Some(field) = w.collection.field(name) else {
            if w.nullify_missing {
                return Ok(Resolved::Value(SqlValue::Null));
            }
            return Err(invalid(format!("unknown field {name:?}")));
        };
        if field.hidden && !w.allow_hidden {
            return Err(not_filterable(name));
        }
        let column = format!("{}.{}", w.alias, quote_ident(&field.name));
        let chain_column = format!("{}.{}", w.chain.alias, quote_ident(&field.name));
        let list_like = is_list_like(&field.kind);
        match modifier {
            Some(Modifier::Length) if list_like => {
                return Ok(resolved(
                    w,
                    joins::json_array_length_of(&column),
                    joins::json_array_length_of(&chain_column),
                    NullFallback::Auto,
                    None,
                ));
            }
            Some(Modifier::Each) if list_like => {
                let key = format!("{}.{}:each", w.key, field.name);
                let each = self.joins.add(&key, joins::json_each_of(&column), |_| None);
                let chain_each = self.joins.fresh_alias('s');
                w.chain
                    .join(&chain_each, joins::json_each_of(&chain_column), None);
                w.multi |= field.kind.is_multi();
                return Ok(resolved(
                    w,
                    Fragment::sql(format!("{each}.`value`")),
                    Fragment::sql(format!("{chain_each}.`value`")),
                    NullFallback::Auto,
                    None,
                ));
            }
            _ => {}
        }
        let (mut expr, mut chain_expr, fallback) = if matches!(field.kind, FieldKind::Json { .. }) {
            // Top-level JSON values compare as their SQL equivalents.
            (
                joins::json_extract_of(&column, "$"),
                joins::json_extract_of(&chain_column, "$"),
                NullFallback::Disabled,
            )
        } else {
            (
                Fragment::sql(column),
                Fragment::sql(chain_column),
                NullFallback::Auto,
            )
        };
        if modifier == Some(Modifier::Lower) {
            expr = wrap("LOWER(", expr, ")");
            chain_expr = wrap("LOWER(", chain_expr, ")");
        }
        // Only public emails are filterable by non-superusers (even one's own).
        let guard = (!w.allow_hidden && w.collection.is_auth() && field.name == "email")
            .then(|| Fragment::sql(format!("{}.`emailVisibility` = TRUE", w.alias)));
        Ok(resolved(w, expr, chain_expr, fallback, guard))
    }

    /// `json.a.b.0` inside a JSON or geoPoint field (modifiers do not apply).
    fn json_path(&self, w: &Walk<'a>, field: &Field, rest: &[String]) -> Resolved {
        let path = joins::json_path(rest);
        let column = format!("{}.{}", w.alias, quote_ident(&field.name));
        let chain_column = format!("{}.{}", w.chain.alias, quote_ident(&field.name));
        resolved(
            w,
            joins::json_extract_of(&column, &path),
            joins::json_extract_of(&chain_column, &path),
            NullFallback::Disabled,
            None,
        )
    }

    /// In a client filter, entering `target` needs its list access: a
    /// locked list (null rule) refuses the filter, an expression limits the
    /// joined rows to the ones the caller could list (checked once per alias).
    fn check_list_access(&mut self, target: &Collection, alias: &str) -> Result<(), FilterError> {
        if self.mode != Mode::Client {
            return Ok(());
        }
        let rule = match target.list_rule.as_deref() {
            None => {
                return Err(invalid(format!(
                    "{:?} can only be filtered by superusers",
                    target.name
                )))
            }
            Some(rule) if rule.trim().is_empty() => return Ok(()),
            Some(rule) => rule,
        };
        if self.conditions.iter().any(|(a, _)| a == alias) {
            return Ok(());
        }
        let prefix = format!("r{}_", self.conditions.len() + 1);
        let mut nested = RecordQuery::nested(self.schema, target, self.info, &prefix);
        nested.add_rule(rule)?;
        let listable = nested.finish();
        let table = quote_ident(&target.name);
        let mut condition = Fragment::sql(format!(
            "({alias}.`id` IS NULL OR {alias}.`id` IN (SELECT {table}.`id` FROM {table} WHERE "
        ));
        condition.push_fragment(&Fragment::with_params(listable.sql, listable.params));
        condition.push_sql("))");
        self.conditions.push((alias.to_owned(), condition));
        Ok(())
    }

    // ---- @request.* -----------------------------------------------------

    fn request_field(
        &mut self,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let section = path.get(1).map(String::as_str).unwrap_or_default();
        match (section, path.len()) {
            ("context", 2) if modifier.is_none() => {
                Ok(Resolved::Value(SqlValue::Text(self.info.context.clone())))
            }
            ("method", 2) if modifier.is_none() => {
                Ok(Resolved::Value(SqlValue::Text(self.info.method.clone())))
            }
            ("auth", n) if n >= 3 => self.request_auth(path, modifier),
            ("body", n) if n >= 3 => self.request_body(path, modifier),
            ("query" | "headers", n) if n >= 3 => self.static_request(path, modifier),
            _ => Err(invalid(format!(
                "unknown request field {:?}",
                path.join(".")
            ))),
        }
    }

    /// The static value of `@request.<section>.<path>`.
    fn static_request(
        &self,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let auth_value;
        let found = match path[1].as_str() {
            "query" => lookup_in(self.info.query.map(), &path[2..]),
            "headers" => lookup_in(self.info.headers.map(), &path[2..]),
            "body" => request::lookup(self.body(), &path[2..]),
            "auth" => {
                auth_value = self
                    .info
                    .auth
                    .as_ref()
                    .and_then(|a| plain_auth_field(a, &path[2]));
                auth_value
                    .as_ref()
                    .and_then(|v| request::lookup(v, &path[3..]))
            }
            _ => None,
        };
        let last = path.last().map(String::as_str).unwrap_or_default();
        let number_field = request::is_number_field(self.base, last);
        match modifier {
            Some(Modifier::Isset) => Ok(flag(found.is_some())),
            Some(Modifier::Changed) => {
                Err(invalid(format!("invalid modifier sequence {last}:changed")))
            }
            Some(Modifier::Lower) => {
                let value = request::static_value(found.unwrap_or(&Value::Null), number_field);
                Ok(Resolved::Expr(ResolvedExpr {
                    expr: Fragment::with_params("LOWER(?)", vec![value]),
                    ..ResolvedExpr::column("")
                }))
            }
            _ => Ok(Resolved::Value(request::static_value(
                found.unwrap_or(&Value::Null),
                number_field,
            ))),
        }
    }

    /// `@request.auth.*`: NULL for guests; the token record's plain fields;
    /// anything else through a join on the auth record's collection.
    fn request_auth(
        &mut self,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let info = self.info;
        let Some(auth) = info.auth.as_ref() else {
            return Ok(Resolved::Value(SqlValue::Null));
        };
        if path.len() == 3 && modifier.is_none() && PLAIN_AUTH_FIELDS.contains(&path[2].as_str()) {
            return self.static_request(path, None);
        }
        let collection = self
            .collection(&auth.collection.id)
            .unwrap_or(&auth.collection);
        let table = quote_ident(&collection.name);
        let id = SqlValue::Text(auth.id().to_owned());
        let on_id =
            |alias: &str| Fragment::with_params(format!("{alias}.`id` = ?"), vec![id.clone()]);
        let alias = self
            .joins
            .add("@auth", joins::table(table.clone()), |a| Some(on_id(a)));
        let mut chain = MultiChain::start(self.joins.fresh_alias('s'), String::new());
        let chain_alias = self.joins.fresh_alias('s');
        chain.join(&chain_alias, joins::table(table), Some(on_id(&chain_alias)));
        chain.alias = chain_alias;
        let walk = Walk {
            collection,
            alias,
            key: "@auth".into(),
            chain,
            multi: false,
            allow_hidden: true,
            nullify_missing: true,
        };
        self.walk(walk, &path[2..], modifier)
    }

    /// `@request.body.*`: values, `:isset`, `:lower`, `:each`, `:length`,
    /// `:changed`, and relation paths through the submitted ids.
    fn request_body(
        &mut self,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let base = self.base;
        let Some(field) = base.field(&path[2]) else {
            return self.static_request(path, modifier);
        };
        let last = path.len() == 3;
        match (&field.kind, modifier) {
            (FieldKind::Relation { collection_id, .. }, _) if !last => {
                self.body_relation(field, collection_id, &path[3..], modifier)
            }
            (_, Some(Modifier::Each)) if last => self.body_each(field),
            (_, Some(Modifier::Length)) if last => {
                require_list_like(field)?;
                let count = request::as_list(self.body().get(&field.name)).len();
                Ok(Resolved::Value(SqlValue::Integer(
                    i64::try_from(count).unwrap_or(i64::MAX),
                )))
            }
            (_, Some(Modifier::Lower)) if last => {
                let text = request::as_text(self.body().get(&field.name));
                Ok(Resolved::Expr(ResolvedExpr {
                    expr: Fragment::with_params("LOWER(?)", vec![SqlValue::Text(text)]),
                    ..ResolvedExpr::column("")
                }))
            }
            (_, Some(Modifier::Changed)) if last => Ok(flag(self.body_changed(field))),
            _ => self.static_request(path, modifier),
        }
    }

    /// `@request.body.tags:each`: the submitted list as rows.
    fn body_each(&mut self, field: &Field) -> Result<Resolved, FilterError> {
        require_list_like(field)?;
        let items = Value::Array(request::as_list(self.body().get(&field.name))).to_string();
        let source = || Fragment::with_params("json_each(?)", vec![SqlValue::Text(items.clone())]);
        let each = self
            .joins
            .add(&format!("@body.{}:each", field.name), source(), |_| None);
        let mut chain = MultiChain::start(self.joins.fresh_alias('s'), String::new());
        let chain_each = self.joins.fresh_alias('s');
        chain.join(&chain_each, source(), None);
        let multi_match = field.kind.is_multi().then(|| MultiMatch {
            value: Fragment::sql(format!("{chain_each}.`value`")),
            source: chain.source(),
        });
        Ok(Resolved::Expr(ResolvedExpr {
            expr: Fragment::sql(format!("{each}.`value`")),
            null_fallback: NullFallback::Auto,
            multi_match,
            guard: None,
        }))
    }

    /// `@request.body.x:changed`: `x` was sent and, read as the field's
    /// type, differs from the stored value. Never true outside an update.
    fn body_changed(&self, field: &Field) -> bool {
        let (Some(current), Some(sent)) = (self.current, self.body().get(&field.name)) else {
            return false;
        };
        let stored = current.get(&field.name).unwrap_or(&Value::Null);
        match values::coerce(&field.kind, sent) {
            Ok(sent) => !request::same_value(&sent, stored),
            Err(_) => true,
        }
    }

    /// `@request.body.rel.x`: the records the submitted ids point at.
    fn body_relation(
        &mut self,
        field: &'a Field,
        collection_id: &str,
        rest: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        let target = self
            .collection(collection_id)
            .ok_or_else(|| invalid(format!("missing collection of relation {:?}", field.name)))?;
        let ids = crate::records::cast::to_unique_strings(
            self.body().get(&field.name).unwrap_or(&Value::Null),
        );
        if ids.is_empty() {
            return Ok(Resolved::Value(SqlValue::Null));
        }
        let table = quote_ident(&target.name);
        let placeholders = vec!["?"; ids.len()].join(", ");
        let params: Vec<SqlValue> = ids.into_iter().map(SqlValue::Text).collect();
        let on_ids = |alias: &str| {
            Fragment::with_params(format!("{alias}.`id` IN ({placeholders})"), params.clone())
        };
        let key = format!("@body.{}", field.name);
        let alias = self
            .joins
            .add(&key, joins::table(table.clone()), |a| Some(on_ids(a)));
        let mut chain = MultiChain::start(self.joins.fresh_alias('s'), String::new());
        let chain_alias = self.joins.fresh_alias('s');
        chain.join(
            &chain_alias,
            joins::table(table),
            Some(on_ids(&chain_alias)),
        );
        chain.alias = chain_alias;
        let walk = Walk {
            collection: target,
            alias,
            key,
            chain,
            multi: field.kind.is_multi(),
            allow_hidden: true,
            nullify_missing: true,
        };
        self.walk(walk, rest, modifier)
    }

    // ---- @collection.* ---------------------------------------------------

    /// `@collection.<name>[:alias].<path>`: every record of another
    /// collection (a cross join; the alias names one shared row).
    fn collection_field(
        &mut self,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Resolved, FilterError> {
        if path.len() < 3 {
            return Err(invalid("invalid @collection path"));
        }
        let (name, alias_name) = path[1].split_once(':').unwrap_or((path[1].as_str(), ""));
        let collection = self
            .collection(name)
            .ok_or_else(|| invalid(format!("unknown collection {name:?}")))?;
        let key = if alias_name.is_empty() {
            format!("@collection:{}", collection.name)
        } else {
            format!("@collection:{}:{alias_name}", collection.name)
        };
        let table = quote_ident(&collection.name);
        let alias = self.joins.add(&key, joins::table(table.clone()), |_| None);
        let mut chain = MultiChain::start(self.joins.fresh_alias('s'), String::new());
        let chain_alias = self.joins.fresh_alias('s');
        chain.join(&chain_alias, joins::table(table), None);
        chain.alias = chain_alias;
        let walk = Walk {
            collection,
            alias,
            key,
            chain,
            multi: true,
            allow_hidden: true,
            nullify_missing: false,
        };
        self.walk(walk, &path[2..], modifier)
    }
}

impl Resolver for RecordResolver<'_> {
    fn resolve(&mut self, identifier: &Identifier) -> Result<Resolved, FilterError> {
        let path = &identifier.path;
        let Some(first) = path.first() else {
            return Err(invalid("empty identifier"));
        };
        match first.as_str() {
            "@request" | "@collection" if self.mode == Mode::Client => Err(FilterError::Forbidden(
                format!("Only superusers can filter by {first}."),
            )),
            "@request" => self.request_field(path, identifier.modifier),
            "@collection" => self.collection_field(path, identifier.modifier),
            _ => {
                let walk = self.base_walk();
                self.walk(walk, path, identifier.modifier)
            }
        }
    }
}

/// The resolved expression of a walk: multi-valued when a hop was.
fn resolved(
    w: &Walk<'_>,
    expr: Fragment,
    chain_expr: Fragment,
    null_fallback: NullFallback,
    guard: Option<Fragment>,
) -> Resolved {
    Resolved::Expr(ResolvedExpr {
        expr,
        null_fallback,
        multi_match: w.multi.then(|| MultiMatch {
            value: chain_expr,
            source: w.chain.source(),
        }),
        guard,
    })
}

/// ON of a back-relation join: the back record's relation holds the id.
fn back_relation_on(
    alias: &str,
    column: &str,
    parent_id: &str,
    multiple: bool,
    each_alias: &str,
) -> Fragment {
    if multiple {
        let each = joins::json_each_of(&format!("{alias}.{column}"));
        Fragment::sql(format!(
            "{parent_id} IN (SELECT {each_alias}.`value` FROM {} {each_alias})",
            each.sql
        ))
    } else {
        Fragment::sql(format!("{alias}.{column} = {parent_id}"))
    }
}

/// `posts_via_author` → (`posts`, `author`); like the reference's
/// `^(\w+)_via_(\w+)$`, the last `_via_` separates them.
fn split_via(prop: &str) -> Option<(&str, &str)> {
    let at = prop.rfind("_via_")?;
    let (collection, field) = (&prop[..at], &prop[at + "_via_".len()..]);
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (word(collection) && word(field)).then_some((collection, field))
}

fn has_unique_index(collection: &Collection, field: &str) -> bool {
    unique_indexes(collection)
        .iter()
        .any(|index| index.columns.len() == 1 && index.columns[0].eq_ignore_ascii_case(field))
}

/// Fields holding lists (the reference's "multi-valuers"), even with maxSelect 1.
fn is_list_like(kind: &FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. }
    )
}

fn require_list_like(field: &Field) -> Result<(), FilterError> {
    if is_list_like(&field.kind) {
        Ok(())
    } else {
        Err(invalid(format!(
            "field {:?} doesn't support multivalue operations",
            field.name
        )))
    }
}

/// The token record's plain fields as the reference exports them for rules.
/// `path` inside `map` (no copy of the map, unlike wrapping it in a `Value`).
fn lookup_in<'v>(map: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    request::lookup(map.get(first)?, rest)
}

/// One of `PLAIN_AUTH_FIELDS` of the caller, as rules see it.
fn plain_auth_field(auth: &Auth, name: &str) -> Option<Value> {
    match name {
        "id" => Some(Value::String(auth.id().to_owned())),
        "collectionId" => Some(Value::String(auth.collection.id.clone())),
        "collectionName" => Some(Value::String(auth.collection.name.clone())),
        "email" | "emailVisibility" | "verified" => auth.record.get(name).cloned(),
        _ => None,
    }
}

fn flag(value: bool) -> Resolved {
    Resolved::Value(SqlValue::Integer(i64::from(value)))
}

fn wrap(open: &str, inner: Fragment, close: &str) -> Fragment {
    let mut out = Fragment::sql(open);
    out.push_fragment(&inner);
    out.push_sql(close);
    out
}

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError::Invalid(message.into())
}

fn not_filterable(name: &str) -> FilterError {
    invalid(format!("field {name:?} cannot be filtered"))
}
