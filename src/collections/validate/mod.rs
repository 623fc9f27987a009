//! Turns a collections API body into a checked `Collection`: applies a
//! create body on top of the blank collection of its type, or a PATCH body
//! on top of the stored one (the reference's "decode onto the existing
//! model" semantics), fills in what the reference fills in (ids, system
//! fields and indexes, view fields from the query), then validates it with
//! the reference's rules and error keys.
//!
//! Nothing here writes: the caller runs `ddl` with the result. The only SQL
//! is read-only (compiling a view query, looking names up in `sqlite_master`).

mod auth;
mod fields;
mod indexes;
pub mod messages;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use self::auth::{check_auth_options, AuthContext};
use self::fields::{check_fields, is_word, FieldContext};
use self::messages::{bad_format, blank_nil, error, length_between, not_in_list, put, required};
use super::auth_options::{new_secret, AuthOptions};
use super::defaults::{ensure_default_fields, new_collection};
use super::ids;
use super::index;
use super::json::{fields_from_json, read_bool, read_opt_str, read_str, read_str_list, WrongType};
use super::model::{Collection, CollectionType};
use super::registry::Schema;
use super::view::{infer_fields, ViewError};
use crate::datetime::now_text;
use crate::error::{ApiError, FieldErrors};

pub use self::fields::{is_domain, MAX_SAFE_INT};

/// Checks one API rule against a candidate collection: `Err(reason)` when
/// the filter does not compile. The schema passed in already contains the
/// candidate, so rules may follow relations to it or to collections created
/// alongside it (imports).
pub type RuleCheck<'a> = &'a dyn Fn(&Schema, &Collection, &str) -> Result<(), String>;

pub const CREATE_FAILED: &str = "Failed to create collection.";
pub const UPDATE_FAILED: &str = "Failed to update collection.";
/// The reference's answer to a body whose JSON types are wrong.
pub const INVALID_FORMAT: &str = "Failed to load the submitted data due to invalid formatting.";

/// Name of the collection whose OTP logins are always a second factor.
const SUPERUSERS: &str = "_superusers";

fn invalid_format() -> ApiError {
    ApiError::bad_request(INVALID_FORMAT)
}

/// Builds and validates a new collection from a create body.
pub fn build_new(
    conn: &Connection,
    input: &Value,
    schema: &Schema,
    rule_check: RuleCheck,
) -> Result<Collection, ApiError> {
    let draft = draft_new(input, schema)?;
    complete(conn, draft, None, schema, rule_check)
        .map_err(|errors| ApiError::validation(CREATE_FAILED, errors))
}

/// Builds and validates the updated form of `existing` from a PATCH body.
/// Keys left out keep their stored values; `fields` and `indexes` replace
/// the whole list; token secrets and OAuth2 client secrets not sent are kept.
pub fn build_update(
    conn: &Connection,
    existing: &Collection,
    patch: &Value,
    schema: &Schema,
    rule_check: RuleCheck,
) -> Result<Collection, ApiError> {
    let draft = draft_update(existing, patch)?;
    complete(conn, draft, Some(existing), schema, rule_check)
        .map_err(|errors| ApiError::validation(UPDATE_FAILED, errors))
}

/// A collection being built from a request body, not yet normalised or
/// checked; auth settings stay typed until the end.
pub(crate) struct Draft {
    pub(crate) collection: Collection,
    auth: Option<AuthOptions>,
    /// An unknown or changed `type`, reported with the other errors.
    type_error: Option<Value>,
}

/// A create body applied on top of the blank collection of its type.
pub(crate) fn draft_new(input: &Value, schema: &Schema) -> Result<Draft, ApiError> {
    let body = input.as_object().ok_or_else(invalid_format)?;
    let requested_type = read_str(body, "type", "").map_err(|_| invalid_format())?;
    let name = read_str(body, "name", "").map_err(|_| invalid_format())?;
    let kind = CollectionType::parse(if requested_type.is_empty() {
        "base"
    } else {
        &requested_type
    });
    // an unknown type is reported by validation; build the rest as a base
    let build_kind = kind.unwrap_or(CollectionType::Base);
    let generated_id = ids::first_free(&ids::collection_id(build_kind.as_str(), &name), |id| {
        schema.get_by_id(id).is_some()
    });

    let mut merged = new_collection(build_kind, &generated_id, &name).to_full_json();
    merge_onto(&mut merged, input);
    let mut draft = decode(&merged, build_kind).map_err(|_| invalid_format())?;
    if draft.collection.id.is_empty() {
        draft.collection.id = generated_id;
    }
    let now = now_text();
    draft.collection.created = now.clone();
    draft.collection.updated = now;
    draft.type_error = kind.is_none().then(not_in_list);
    Ok(draft)
}

/// A PATCH body applied on top of the stored collection.
pub(crate) fn draft_update(existing: &Collection, patch: &Value) -> Result<Draft, ApiError> {
    let body = patch.as_object().ok_or_else(invalid_format)?;
    let requested_type =
        read_str(body, "type", existing.kind.as_str()).map_err(|_| invalid_format())?;

    // a type change is refused, but like the reference the body is still
    // read as the requested type so every resulting problem is reported
    let decode_kind = CollectionType::parse(&requested_type).unwrap_or(existing.kind);
    let mut merged = existing.to_full_json();
    merge_onto(&mut merged, patch);
    let mut draft = decode(&merged, decode_kind).map_err(|_| invalid_format())?;
    draft.collection.created = existing.created.clone();
    draft.collection.updated = now_text();
    let original_auth = AuthOptions::from_collection(existing);
    if let (Some(auth), Some(old)) = (draft.auth.as_mut(), original_auth.as_ref()) {
        keep_provider_secrets(auth, old);
        if auth.auth_rule != old.auth_rule {
            // tokens issued under the old rule must stop working
            auth.auth_token.secret = new_secret();
        }
    }
    if requested_type != existing.kind.as_str() {
        draft.type_error = Some(match CollectionType::parse(&requested_type) {
            Some(_) => error(
                "validation_collection_type_change",
                "Collection type cannot be changed.",
            ),
            None => not_in_list(),
        });
    }
    Ok(draft)
}

/// Normalises and validates a draft. `schema` is the stored schema (for an
/// update it still holds `original`); the result is ready for `ddl`.
pub(crate) fn complete(
    conn: &Connection,
    mut draft: Draft,
    original: Option<&Collection>,
    schema: &Schema,
    rule_check: RuleCheck,
) -> Result<Collection, FieldErrors> {
    let view_error = normalize(conn, &mut draft, schema);
    let mut errors = Validator {
        conn,
        existing: schema,
        schema: &schema.with(draft.collection.clone()),
        original,
        candidate: &draft.collection,
        auth: draft.auth.as_ref(),
        rule_check,
        view_error: view_error.as_ref(),
    }
    .run();
    if let Some(type_error) = draft.type_error.take() {
        errors.insert("type".into(), type_error);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(auth) = draft.auth {
        draft.collection.options = auth.to_json();
    }
    Ok(draft.collection)
}

// ---------------------------------------------------------------------------
// Decoding

/// Applies `patch` onto `base` the way the reference decodes a body onto an
/// existing model: objects merge key by key, anything else (arrays
/// included) replaces, and `null` clears a value but leaves an object be.
pub fn merge_onto(base: &mut Value, patch: &Value) {
    let (Some(base_obj), Some(patch_obj)) = (base.as_object_mut(), patch.as_object()) else {
        *base = patch.clone();
        return;
    };
    for (key, value) in patch_obj {
        match (base_obj.get_mut(key), value) {
            (Some(Value::Object(_)), Value::Null) => {}
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_onto(existing, value),
            _ => {
                base_obj.insert(key.clone(), value.clone());
            }
        }
    }
}

fn decode(merged: &Value, kind: CollectionType) -> Result<Draft, WrongType> {
    let empty = Map::new();
    let obj = merged.as_object().unwrap_or(&empty);
    let mut options = Map::new();
    let auth = match kind {
        CollectionType::Auth => Some(AuthOptions::from_json(obj)?),
        CollectionType::View => {
            options.insert(
                "viewQuery".into(),
                Value::String(read_str(obj, "viewQuery", "")?),
            );
            None
        }
        CollectionType::Base => None,
    };
    let collection = Collection {
        id: read_str(obj, "id", "")?,
        name: read_str(obj, "name", "")?,
        kind,
        system: read_bool(obj, "system", false)?,
        fields: fields_from_json(obj.get("fields").unwrap_or(&Value::Null))?,
        indexes: read_str_list(obj, "indexes")?,
        list_rule: read_opt_str(obj, "listRule", None)?,
        view_rule: read_opt_str(obj, "viewRule", None)?,
        create_rule: read_opt_str(obj, "createRule", None)?,
        update_rule: read_opt_str(obj, "updateRule", None)?,
        delete_rule: read_opt_str(obj, "deleteRule", None)?,
        options,
        created: String::new(),
        updated: String::new(),
    };
    Ok(Draft {
        collection,
        auth,
        type_error: None,
    })
}

/// A provider sent without its `clientSecret` keeps the stored one (the API
/// never returns it, so clients cannot send it back).
fn keep_provider_secrets(auth: &mut AuthOptions, old: &AuthOptions) {
    for provider in auth
        .oauth2
        .providers
        .iter_mut()
        .filter(|p| p.client_secret.is_empty())
    {
        if let Some(stored) = old
            .oauth2
            .providers
            .iter()
            .find(|o| o.name == provider.name)
        {
            provider.client_secret = stored.client_secret.clone();
        }
    }
}

// ---------------------------------------------------------------------------
// Normalisation: what the reference fills in before validating.

fn normalize(conn: &Connection, draft: &mut Draft, schema: &Schema) -> Option<ViewError> {
    let collection = &mut draft.collection;
    ensure_default_fields(collection);
    if let Some(auth) = draft.auth.as_mut() {
        clear_unknown_mapped_fields(auth, collection);
        if collection.name == SUPERUSERS && auth.otp.enabled {
            // for superusers an OTP is only ever a second factor
            auth.mfa.enabled = true;
        }
    }
    retarget_indexes(collection);
    if !collection.is_view() {
        return None;
    }
    match infer_fields(conn, schema, collection.view_query()) {
        Ok(fields) => {
            collection.fields = fields;
            None
        }
        Err(err) => {
            collection.fields = err.fields.clone();
            Some(err)
        }
    }
}

/// OAuth2 mappings naming a field the collection lacks are dropped.
fn clear_unknown_mapped_fields(auth: &mut AuthOptions, collection: &Collection) {
    let m = &mut auth.oauth2.mapped_fields;
    for target in [&mut m.id, &mut m.name, &mut m.username, &mut m.avatar_url] {
        if !target.is_empty() && collection.field(target).is_none() {
            target.clear();
        }
    }
}

/// Indexes always apply to the collection's own table: one written for
/// another table (or for the old name after a rename) is rewritten.
fn retarget_indexes(collection: &mut Collection) {
    for sql in &mut collection.indexes {
        if let Some(parsed) = index::parse(sql) {
            if parsed.table != collection.name {
                *sql = parsed.on_table(&collection.name).build();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Validation

struct Validator<'a> {
    conn: &'a Connection,
    /// The schema as stored, without the candidate.
    existing: &'a Schema,
    /// The schema with the candidate in it (for rules and relations).
    schema: &'a Schema,
    original: Option<&'a Collection>,
    candidate: &'a Collection,
    auth: Option<&'a AuthOptions>,
    rule_check: RuleCheck<'a>,
    view_error: Option<&'a ViewError>,
}

impl Validator<'_> {
    fn run(&self) -> FieldErrors {
        let c = self.candidate;
        let mut errors = FieldErrors::new();
        put(&mut errors, "id", self.check_id());
        put(&mut errors, "system", self.check_system_flag());
        put(&mut errors, "name", self.check_name());
        let field_ctx = FieldContext {
            candidate: c,
            original: self.original,
            schema: self.schema,
        };
        put(&mut errors, "fields", check_fields(&field_ctx));
        let old =
            |pick: fn(&Collection) -> &Option<String>| self.original.map(|o| pick(o).as_deref());
        put(
            &mut errors,
            "listRule",
            self.check_rule(c.list_rule.as_deref(), old(|o| &o.list_rule), false),
        );
        put(
            &mut errors,
            "viewRule",
            self.check_rule(c.view_rule.as_deref(), old(|o| &o.view_rule), false),
        );
        let is_view = c.is_view();
        put(
            &mut errors,
            "createRule",
            self.check_rule(c.create_rule.as_deref(), old(|o| &o.create_rule), is_view),
        );
        put(
            &mut errors,
            "updateRule",
            self.check_rule(c.update_rule.as_deref(), old(|o| &o.update_rule), is_view),
        );
        put(
            &mut errors,
            "deleteRule",
            self.check_rule(c.delete_rule.as_deref(), old(|o| &o.delete_rule), is_view),
        );
        put(
            &mut errors,
            "indexes",
            indexes::check_indexes(self.conn, c, self.original),
        );
        if let Some(auth) = self.auth {
            let original_auth = self.original.and_then(AuthOptions::from_collection);
            let rule_error = |rule: &str| self.rule_error(rule);
            let ctx = AuthContext {
                candidate: c,
                original: original_auth.as_ref(),
                original_system: self.original.is_some_and(|o| o.system),
                check_rule: &rule_error,
            };
            errors.extend(check_auth_options(&ctx, auth));
        }
        if is_view {
            put(&mut errors, "viewQuery", self.check_view_query());
        }
        errors
    }

    fn check_id(&self) -> Option<Value> {
        let id = &self.candidate.id;
        if let Some(original) = self.original {
            return (id != &original.id)
                .then(|| error("validation_values_mismatch", "Values don't match."));
        }
        if id.is_empty() {
            Some(required())
        } else if id.chars().count() > 100 {
            Some(length_between(1, 100))
        } else if !is_word(id) {
            Some(bad_format())
        } else if self
            .existing
            .all()
            .iter()
            .any(|c| c.id.eq_ignore_ascii_case(id))
        {
            Some(error(
                "validation_invalid_or_existing_id",
                "The model id is invalid or already exists.",
            ))
        } else {
            None
        }
    }

    fn check_system_flag(&self) -> Option<Value> {
        let original = self.original?;
        (original.system != self.candidate.system).then(|| {
            error(
                "validation_collection_system_flag_change",
                "System collection state cannot be changed.",
            )
        })
    }

    fn check_name(&self) -> Option<Value> {
        let name = &self.candidate.name;
        let own_id = &self.candidate.id;
        if name.is_empty() {
            return Some(required());
        }
        if name.chars().count() > 255 {
            return Some(length_between(1, 255));
        }
        if name.to_lowercase().contains("_via_") {
            return Some(error(
                "validation_found_via",
                "The value cannot contain \"_via_\".",
            ));
        }
        if !is_word(name) {
            return Some(bad_format());
        }
        if let Some(original) = self.original {
            if original.system && &original.name != name {
                return Some(error(
                    "validation_collection_system_name_change",
                    "System collection name cannot be changed.",
                ));
            }
        }
        let lower = name.to_lowercase();
        let taken = self
            .existing
            .all()
            .iter()
            .any(|c| &c.id != own_id && c.name.to_lowercase() == lower);
        if taken {
            return Some(error(
                "validation_collection_name_exists",
                "Collection name must be unique (case insensitive).",
            ));
        }
        if self
            .existing
            .all()
            .iter()
            .any(|c| &c.id != own_id && &c.id == name)
        {
            return Some(error(
                "validation_collection_name_id_duplicate",
                "The name must not match an existing collection id.",
            ));
        }
        let renamed = self.original.is_none_or(|o| &o.name != name);
        if renamed && self.is_internal_table(name) {
            return Some(error(
                "validation_collection_name_invalid",
                "The name shouldn't match with an existing internal table.",
            ));
        }
        None
    }

    /// A table or view that exists but belongs to no collection
    /// (`_params`, `_collections`, `sqlite_*`, ...).
    fn is_internal_table(&self, name: &str) -> bool {
        let owned_by_collection = self
            .existing
            .all()
            .iter()
            .any(|c| c.id != self.candidate.id && c.name.eq_ignore_ascii_case(name));
        if owned_by_collection {
            return false;
        }
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) = lower(?1)",
                [name],
                |row| row.get(0),
            )
            .optional()
            .unwrap_or(None);
        let reserved_prefix = name.to_lowercase().starts_with("sqlite_");
        found.is_some() || reserved_prefix
    }

    fn rule_error(&self, rule: &str) -> Option<Value> {
        (self.rule_check)(self.schema, self.candidate, rule)
            .err()
            .map(|reason| {
                error(
                    "validation_invalid_rule",
                    &format!("Invalid rule. Raw error: {reason}"),
                )
            })
    }

    /// `old` is `Some(stored rule)` on update; `must_be_nil` for view write rules.
    fn check_rule(
        &self,
        rule: Option<&str>,
        old: Option<Option<&str>>,
        must_be_nil: bool,
    ) -> Option<Value> {
        if must_be_nil && rule.is_some() {
            return Some(blank_nil());
        }
        if let Some(err) = rule
            .filter(|r| !r.is_empty())
            .and_then(|r| self.rule_error(r))
        {
            return Some(err);
        }
        let system = self.original.is_some_and(|o| o.system);
        let changed = old.is_some_and(|old| old != rule);
        (system && changed).then(|| {
            error(
                "validation_collection_system_rule_change",
                "System collection API rule cannot be changed.",
            )
        })
    }

    fn check_view_query(&self) -> Option<Value> {
        if self.candidate.view_query().is_empty() {
            return Some(required());
        }
        self.view_error.map(|e| {
            error(
                "validation_invalid_view_query",
                &format!("Invalid query - {}", e.message),
            )
        })
    }
}

#[cfg(test)]
mod tests;
