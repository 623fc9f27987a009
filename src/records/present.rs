//! The one way records leave the API: `present` turns stored records into
//! the JSON a given requester may see. It applies the visibility of §5.1
//! (hidden fields for superusers only, an auth record's email for itself,
//! superusers and `manageRule` holders), then `expand` (relations, each
//! filtered by its own collection's viewRule) and `fields`. Both rules are
//! evaluated for the request the records answer (`@request.*`; expanded
//! collections see `@request.context` as `expand`, as the reference).
//!
//! List, view, create and update answers, auth replies and realtime events
//! all go through here, so they cannot disagree about what a requester
//! sees. This module never writes and never decides whether the requester
//! may see the records it is given: the caller has applied the list/view
//! rule already.

use std::borrow::Cow;
use std::collections::HashSet;

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::expand::{self, ExpandTree};
use super::fields::FieldsPicker;
use super::filter::{self, RecordQuery, RequestInfo, WhereClause};
use super::output::{show, Shown, Viewer};
use super::values::RecordValues;
use crate::app::Ctx;
use crate::auth::Auth;
use crate::collections::{Collection, Schema};
use crate::error::ApiError;
use crate::store::quote_ident;

/// At most this many ids are bound in one `IN (...)` list.
pub(crate) const IDS_PER_QUERY: usize = 500;

/// What the requester asked to see: `?expand=` and `?fields=`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresentOptions {
    pub expand: ExpandTree,
    /// `None` keeps every key.
    pub fields: Option<FieldsPicker>,
}

impl PresentOptions {
    /// Plain records: nothing expanded, every key kept.
    pub fn none() -> PresentOptions {
        PresentOptions::default()
    }

    /// From raw `expand` and `fields` values (query parameters, or the
    /// `options.query` of a realtime subscription). A malformed `fields`
    /// expression is the reference's plain 400; unknown names are not
    /// errors.
    pub fn parse(expand: Option<&str>, fields: Option<&str>) -> Result<PresentOptions, ApiError> {
        let fields = match fields {
            Some(raw) => FieldsPicker::parse(raw).map_err(|e| {
                log::debug!("{e}");
                ApiError::bad_request("Something went wrong while processing your request.")
            })?,
            None => None,
        };
        Ok(PresentOptions {
            expand: expand.map(ExpandTree::parse).unwrap_or_default(),
            fields,
        })
    }
}

/// Records of one collection as `request`'s caller sees them, in the
/// order given (read through the worker's connection).
pub fn present(
    ctx: &Ctx<'_>,
    request: &RequestInfo,
    collection: &Collection,
    records: Vec<RecordValues>,
    options: &PresentOptions,
) -> Vec<Presented> {
    Presenter::for_request(ctx.db, &ctx.schema, request).render_owned(collection, records, options)
}

/// A record presented for an answer that only serializes it: its shown
/// fields as they are, or the JSON object `expand` or `fields` made of
/// them. Both write the same JSON text `present_owned` gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    Shown(Shown),
    Reshaped(Value),
}

impl Presented {
    /// The record as a JSON object (`null` for no record).
    pub fn into_value(self) -> Value {
        match self {
            Presented::Shown(shown) => Value::Object(shown.into_map()),
            Presented::Reshaped(value) => value,
        }
    }
}

impl crate::json::WriteJson for Presented {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Presented::Shown(shown) => shown.write_json(out),
            Presented::Reshaped(value) => value.write_json(out),
        }
    }
}

/// Who is looking and where to read related records from: a worker's read
/// connection, or the writer's inside a write job (so a write's answer
/// shows exactly what it committed).
pub struct Presenter<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) schema: &'a Schema,
    /// The request being answered: its caller, and what `manageRule` and
    /// the viewRules of expanded collections see as `@request.*`.
    request: Cow<'a, RequestInfo>,
}

impl<'a> Presenter<'a> {
    /// For a caller alone (auth replies, realtime events): rules see a
    /// request with no query, headers or body.
    pub fn new(
        conn: &'a Connection,
        schema: &'a Schema,
        requester: Option<&Auth>,
    ) -> Presenter<'a> {
        Presenter {
            conn,
            schema,
            request: Cow::Owned(RequestInfo::new(requester.cloned())),
        }
    }

    /// For the records API: rules see `request` as it was sent.
    pub fn for_request(
        conn: &'a Connection,
        schema: &'a Schema,
        request: &'a RequestInfo,
    ) -> Presenter<'a> {
        Presenter {
            conn,
            schema,
            request: Cow::Borrowed(request),
        }
    }

    /// Visible fields, `expand` and `fields` for each record.
    pub fn present(
        &self,
        collection: &Collection,
        records: &[RecordValues],
        options: &PresentOptions,
    ) -> Vec<Value> {
        self.present_owned(collection, records.to_vec(), options)
    }

    /// As `present`, moving the records' values into the JSON.
    pub fn present_owned(
        &self,
        collection: &Collection,
        records: Vec<RecordValues>,
        options: &PresentOptions,
    ) -> Vec<Value> {
        let mut out = self.present_unpicked_owned(collection, records, &options.expand);
        if let Some(fields) = &options.fields {
            for value in &mut out {
                fields.pick(value);
            }
        }
        out
    }

    /// As `present_owned`, for an answer that only serializes the records:
    /// without `expand` and `fields` they are never built into JSON
    /// objects, which costs as much as reading them.
    pub fn render_owned(
        &self,
        collection: &Collection,
        records: Vec<RecordValues>,
        options: &PresentOptions,
    ) -> Vec<Presented> {
        if options.expand.is_empty() && options.fields.is_none() {
            return self
                .shown(collection, records)
                .into_iter()
                .map(Presented::Shown)
                .collect();
        }
        self.present_owned(collection, records, options)
            .into_iter()
            .map(Presented::Reshaped)
            .collect()
    }

    /// One record, presented for an answer that only serializes it.
    pub fn render_one_owned(
        &self,
        collection: &Collection,
        record: RecordValues,
        options: &PresentOptions,
    ) -> Presented {
        self.render_owned(collection, vec![record], options)
            .pop()
            .unwrap_or(Presented::Reshaped(Value::Null))
    }

    /// One record, presented.
    pub fn present_one(
        &self,
        collection: &Collection,
        record: &RecordValues,
        options: &PresentOptions,
    ) -> Value {
        self.render_one_owned(collection, record.clone(), options)
            .into_value()
    }

    /// As `present` without `fields`, for answers that pick keys of a
    /// larger object (auth replies: `fields=token,record.id`).
    pub fn present_unpicked(
        &self,
        collection: &Collection,
        records: &[RecordValues],
        expand_tree: &ExpandTree,
    ) -> Vec<Value> {
        self.present_unpicked_owned(collection, records.to_vec(), expand_tree)
    }

    fn present_unpicked_owned(
        &self,
        collection: &Collection,
        records: Vec<RecordValues>,
        expand_tree: &ExpandTree,
    ) -> Vec<Value> {
        let expands = expand::expand(self, collection, &records, expand_tree);
        let mut shown = self.show_owned(collection, records);
        for (json, expand) in shown.iter_mut().zip(expands) {
            if let Some(expand) = expand {
                json.insert("expand".into(), Value::Object(expand));
            }
        }
        shown.into_iter().map(Value::Object).collect()
    }

    pub(crate) fn is_superuser(&self) -> bool {
        self.request.is_superuser()
    }

    /// The visible fields of each record, without `expand`.
    pub(crate) fn show(
        &self,
        collection: &Collection,
        records: &[RecordValues],
    ) -> Vec<Map<String, Value>> {
        self.show_owned(collection, records.to_vec())
    }

    fn show_owned(
        &self,
        collection: &Collection,
        records: Vec<RecordValues>,
    ) -> Vec<Map<String, Value>> {
        self.shown(collection, records)
            .into_iter()
            .map(Shown::into_map)
            .collect()
    }

    fn shown(&self, collection: &Collection, records: Vec<RecordValues>) -> Vec<Shown> {
        let managed = self.managed_ids(collection, &records);
        let requester = self.request.auth.as_ref();
        records
            .into_iter()
            .map(|record| {
                let viewer = Viewer {
                    is_superuser: self.is_superuser(),
                    is_owner: requester
                        .is_some_and(|a| a.collection.id == collection.id && a.id() == record.id()),
                    can_manage: managed.contains(record.id()),
                };
                show(collection, record, &viewer)
            })
            .collect()
    }

    /// Ids of the auth records the requester may manage (and so see the
    /// email of), in batches of `IDS_PER_QUERY`. Superusers see every email
    /// anyway; a `null` or `""` manageRule grants nothing.
    fn managed_ids(&self, collection: &Collection, records: &[RecordValues]) -> HashSet<String> {
        if self.is_superuser() || filter::manage_rule(collection).is_none() {
            return HashSet::new();
        }
        let ids: Vec<&str> = records.iter().map(RecordValues::id).collect();
        let mut managed = HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            match filter::managed_ids(self.conn, self.schema, collection, chunk, &self.request) {
                Ok(found) => managed.extend(found),
                Err(e) => {
                    // Failing closed: the email stays hidden.
                    log::warn!("manageRule of {}: {e}", collection.name);
                    return HashSet::new();
                }
            }
        }
        managed
    }

    /// The viewRule `rule` of an expanded collection as a WHERE clause for
    /// this request, seen in the `expand` context. `None` when it cannot be
    /// compiled (treated as "grants nothing").
    pub(crate) fn expand_view_condition(
        &self,
        collection: &Collection,
        rule: &str,
    ) -> Option<WhereClause> {
        let mut request = self.request.clone().into_owned();
        request.context = EXPAND_CONTEXT.into();
        let mut query = RecordQuery::new(self.schema, collection, &request);
        match query.add_rule(rule) {
            Ok(()) => Some(query.finish()),
            Err(e) => {
                log::warn!("rule of {} cannot be applied: {e}", collection.name);
                None
            }
        }
    }
}

/// `@request.context` while expanding relations.
const EXPAND_CONTEXT: &str = "expand";

/// `table.id IN (?, ?, ...)` for `count` ids.
pub(crate) fn id_in(collection: &Collection, count: usize) -> String {
    let placeholders = vec!["?"; count].join(", ");
    format!("{}.`id` IN ({placeholders})", quote_ident(&collection.name))
}
