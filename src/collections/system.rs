//! The collections every data dir starts with (`_mfas`, `_otps`,
//! `_externalAuths`, `_authOrigins`, `_superusers` and the default `users`),
//! with the reference's ids, field ids, tables, indexes and rules; the
//! blank collections of `GET /api/collections/meta/scaffolds`; and the
//! bulk import of `PUT /api/collections/import`.
//!
//! Writes only through `ddl` on the connection it is given.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::auth_options::AuthOptions;
use super::ddl;
use super::defaults::{self, autodate_field, new_collection, text_field};
use super::json::add_to_fields_list;
use super::model::{Collection, CollectionType, Field, FieldKind};
use super::registry::Schema;
use super::validate::messages::error;
use super::validate::{complete, draft_new, draft_update, merge_onto, RuleCheck};
use crate::datetime::now_text;
use crate::error::{ApiError, FieldErrors};

pub const SUPERUSERS_ID: &str = "pbc_3142635823";
pub const USERS_ID: &str = "_pb_users_auth_";
pub const IMPORT_FAILED: &str = "Failed to import collections.";
pub const IMPORT_EMPTY: &str = "An error occurred while validating the submitted data.";

/// Only the record's own auth session may see these system records.
const OWNER_RULE: &str =
    "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId";
const SELF_RULE: &str = "id = @request.auth.id";

/// Creates the default collections on a fresh database whose base tables
/// (`_params`, `_collections`, `_migrations`) already exist.
pub fn install_defaults(conn: &Connection) -> Result<(), ApiError> {
    for collection in default_collections() {
        ddl::create(conn, &collection)?;
    }
    Ok(())
}

/// The default collections, in the reference's creation order.
pub fn default_collections() -> Vec<Collection> {
    vec![
        mfas(),
        otps(),
        external_auths(),
        auth_origins(),
        superusers(),
        users(),
    ]
}

/// The blank collection of each type, for `GET /api/collections/meta/scaffolds`.
pub fn scaffolds() -> Value {
    let blank = |kind| new_collection(kind, "", "").to_api_json();
    json!({
        "base": blank(CollectionType::Base),
        "auth": blank(CollectionType::Auth),
        "view": blank(CollectionType::View),
    })
}

fn system_text(name: &str, required: bool, hidden: bool) -> Field {
    let mut field = text_field(name);
    field.system = true;
    field.required = required;
    field.hidden = hidden;
    field
}

fn system_autodates(system: bool) -> [Field; 2] {
    let mut created = autodate_field("created", false);
    let mut updated = autodate_field("updated", true);
    created.system = system;
    updated.system = system;
    [created, updated]
}

fn system_base(
    id: &str,
    name: &str,
    middle: Vec<Field>,
    indexes: &[&str],
    delete_by_owner: bool,
) -> Collection {
    let mut c = new_collection(CollectionType::Base, id, name);
    c.system = true;
    c.fields.push(system_text("collectionRef", true, false));
    c.fields.push(system_text("recordRef", true, false));
    c.fields.extend(middle);
    c.fields.extend(system_autodates(true));
    c.indexes = indexes.iter().map(|s| s.to_string()).collect();
    c.list_rule = Some(OWNER_RULE.into());
    c.view_rule = Some(OWNER_RULE.into());
    c.delete_rule = delete_by_owner.then(|| OWNER_RULE.into());
    stamp(c)
}

fn stamp(mut c: Collection) -> Collection {
    let now = now_text();
    c.created = now.clone();
    c.updated = now;
    c
}

fn mfas() -> Collection {
    system_base(
        "pbc_2279338944",
        "_mfas",
        vec![system_text("method", true, false)],
        &["CREATE INDEX `idx_mfas_collectionRef_recordRef` ON `_mfas` (collectionRef,recordRef)"],
        false,
    )
}

fn otps() -> Collection {
    let mut password = defaults::password_field();
    password.kind = FieldKind::Password {
        min: 0,
        max: 0,
        pattern: String::new(),
        cost: 8,
    };
    system_base(
        "pbc_1638494021",
        "_otps",
        vec![password, system_text("sentTo", false, true)],
        &["CREATE INDEX `idx_otps_collectionRef_recordRef` ON `_otps` (collectionRef, recordRef)"],
        false,
    )
}

fn external_auths() -> Collection {
    system_base(
        "pbc_2281828961",
        "_externalAuths",
        vec![system_text("provider", true, false), system_text("providerId", true, false)],
        &[
            "CREATE UNIQUE INDEX `idx_externalAuths_record_provider` ON `_externalAuths` (collectionRef, recordRef, provider)",
            "CREATE UNIQUE INDEX `idx_externalAuths_collection_provider` ON `_externalAuths` (collectionRef, provider, providerId)",
        ],
        true,
    )
}

fn auth_origins() -> Collection {
    system_base(
        "pbc_4275539003",
        "_authOrigins",
        vec![system_text("fingerprint", true, false)],
        &["CREATE UNIQUE INDEX `idx_authOrigins_unique_pairs` ON `_authOrigins` (collectionRef, recordRef, fingerprint)"],
        true,
    )
}

fn superusers() -> Collection {
    let mut c = new_collection(CollectionType::Auth, SUPERUSERS_ID, "_superusers");
    c.system = true;
    c.fields.extend(system_autodates(true));
    let mut options = AuthOptions::defaults();
    options.auth_token.duration = 86_400;
    c.options = options.to_json();
    stamp(c)
}

fn users() -> Collection {
    let mut c = new_collection(CollectionType::Auth, USERS_ID, "users");
    let mut name = text_field("name");
    name.kind = FieldKind::Text {
        min: 0,
        max: 255,
        pattern: String::new(),
        autogenerate_pattern: String::new(),
        primary_key: false,
    };
    let mut avatar = Field::new(
        "avatar",
        FieldKind::File {
            max_select: 1,
            max_size: 0,
            mime_types: [
                "image/jpeg",
                "image/png",
                "image/svg+xml",
                "image/gif",
                "image/webp",
            ]
            .map(String::from)
            .to_vec(),
            thumbs: Vec::new(),
            protected: false,
        },
    );
    avatar.id = super::ids::field_id("file", "avatar");
    c.fields.push(name);
    c.fields.push(avatar);
    c.fields.extend(system_autodates(false));
    c.list_rule = Some(SELF_RULE.into());
    c.view_rule = Some(SELF_RULE.into());
    c.create_rule = Some(String::new());
    c.update_rule = Some(SELF_RULE.into());
    c.delete_rule = Some(SELF_RULE.into());
    let mut options = AuthOptions::defaults();
    options.oauth2.mapped_fields.name = "name".into();
    options.oauth2.mapped_fields.avatar_url = "avatar".into();
    c.options = options.to_json();
    stamp(c)
}

// ---------------------------------------------------------------------------
// Import

/// Imports collection definitions in one go (`PUT /api/collections/import`).
///
/// A listed collection matching a stored one (by `id`, else by name) is
/// updated in place: the listed keys are applied over the stored ones and
/// stored fields left out of the list are kept (unless `delete_missing`, in
/// which case only system fields are kept). Unknown ones are created. With
/// `delete_missing`, every non-system collection not listed is deleted
/// first, references or not. Views are saved last. Everything happens in
/// one savepoint: any failure leaves the schema as it was.
pub fn import(
    conn: &Connection,
    schema: &Schema,
    collections: &[Value],
    delete_missing: bool,
    rule_check: RuleCheck,
) -> Result<(), ApiError> {
    if collections.is_empty() {
        let mut errors = FieldErrors::new();
        errors.insert(
            "collections".into(),
            error("validation_required", "Cannot be blank."),
        );
        return Err(ApiError::validation(IMPORT_EMPTY, errors));
    }
    let mut drafts = Vec::with_capacity(collections.len());
    for item in collections {
        drafts.push(import_draft(item, schema, delete_missing)?);
    }
    // views read from the tables, so they come last
    drafts.sort_by_key(|d| d.draft.collection.is_view());

    let kept_ids: Vec<&str> = drafts
        .iter()
        .map(|d| d.draft.collection.id.as_str())
        .collect();
    let doomed: Vec<Collection> = if delete_missing {
        schema
            .all()
            .iter()
            .filter(|c| !c.system && !kept_ids.contains(&c.id.as_str()))
            .map(|c| (**c).clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut provisional = schema.clone();
    for c in &doomed {
        provisional = provisional.without(&c.id);
    }
    for d in &drafts {
        let mut c = d.draft.collection.clone();
        defaults::ensure_default_fields(&mut c);
        provisional = provisional.with(c);
    }

    conn.execute_batch("SAVEPOINT collections_import")?;
    let result = apply_import(conn, &provisional, drafts, &doomed, rule_check);
    let finish = if result.is_ok() {
        "RELEASE collections_import"
    } else {
        "ROLLBACK TO collections_import; RELEASE collections_import"
    };
    conn.execute_batch(finish)?;
    result
}

struct ImportDraft {
    draft: super::validate::Draft,
    original: Option<Collection>,
}

fn import_draft(
    item: &Value,
    schema: &Schema,
    delete_missing: bool,
) -> Result<ImportDraft, ApiError> {
    let obj = item
        .as_object()
        .ok_or_else(|| ApiError::bad_request(super::validate::INVALID_FORMAT))?;
    let key = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    let identifier = if key("id").is_empty() {
        key("name")
    } else {
        key("id")
    };
    let Some(existing) = schema.get(identifier).map(|c| (**c).clone()) else {
        return Ok(ImportDraft {
            draft: draft_new(item, schema)?,
            original: None,
        });
    };
    let mut data = item.clone();
    if delete_missing && obj.get("fields").is_none_or(Value::is_null) {
        merge_onto(&mut data, &json!({ "fields": [] }));
    }
    let mut draft = draft_update(&existing, &data)?;
    keep_unlisted_fields(&mut draft.collection.fields, &existing, delete_missing);
    Ok(ImportDraft {
        draft,
        original: Some(existing),
    })
}

/// Stored fields missing from an imported list stay (system ones always).
/// A listed field with the same name and type as a stored one takes over
/// the stored field, so its column and data survive.
fn keep_unlisted_fields(fields: &mut Vec<Field>, existing: &Collection, delete_missing: bool) {
    for stored in &existing.fields {
        if delete_missing && !stored.system {
            continue;
        }
        if fields.iter().any(|f| f.id == stored.id) {
            continue;
        }
        if let Some(same) = fields
            .iter_mut()
            .find(|f| f.name == stored.name && f.type_name() == stored.type_name())
        {
            same.id = stored.id.clone();
        }
        add_to_fields_list(fields, stored.clone());
    }
}

fn apply_import(
    conn: &Connection,
    provisional: &Schema,
    drafts: Vec<ImportDraft>,
    doomed: &[Collection],
    rule_check: RuleCheck,
) -> Result<(), ApiError> {
    for c in doomed {
        drop_without_checks(conn, c)?;
    }
    let mut live = provisional.clone();
    for ImportDraft { draft, original } in drafts {
        let id = draft.collection.id.clone();
        let name = draft.collection.name.clone();
        let others = live.without(&id);
        let candidate = complete(conn, draft, original.as_ref(), &others, rule_check)
            .map_err(|errors| import_failure(&name, &id, &errors))?;
        match &original {
            Some(old) => ddl::update(conn, old, &candidate, &live)?,
            None => ddl::create(conn, &candidate)?,
        }
        live = live.with(candidate);
    }
    Ok(())
}

/// Deleting for an import skips the reference checks: the collections that
/// pointed at it are replaced in the same import.
fn drop_without_checks(conn: &Connection, c: &Collection) -> Result<(), ApiError> {
    let mut unchecked = c.clone();
    unchecked.system = false;
    ddl::delete(conn, &unchecked, &Schema::empty())
}

fn import_failure(name: &str, id: &str, errors: &FieldErrors) -> ApiError {
    let details = serde_json::to_string_pretty(&plain_messages(&Value::Object(errors.clone())))
        .unwrap_or_default();
    let mut data = FieldErrors::new();
    data.insert(
        "collections".into(),
        error(
            "validation_collections_import_failure",
            &format!("Data validations failed for collection {name:?} ({id}):\n{details}"),
        ),
    );
    ApiError::validation(IMPORT_FAILED, data)
}

/// The error tree with each `{code, message}` leaf reduced to its message,
/// as the reference prints it inside the import failure.
fn plain_messages(errors: &Value) -> Value {
    match errors {
        Value::Object(map) if map.contains_key("code") && map.contains_key("message") => {
            let message = map["message"].as_str().unwrap_or("");
            let trimmed = message.strip_suffix('.').unwrap_or(message);
            let mut chars = trimmed.chars();
            let lowered: String = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            };
            Value::String(lowered)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), plain_messages(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
