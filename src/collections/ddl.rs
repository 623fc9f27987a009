//! Schema changes on the writer's connection: creating, altering and
//! dropping a collection's table (or view), its indexes and its
//! `_collections` row, and emptying a collection. Each public function runs
//! in its own savepoint, so a failure leaves nothing half done even when the
//! caller carries on in the same transaction.
//!
//! Callers pass collections that `validate` built. Identifiers are still
//! re-checked (`^\w+$`) before they are quoted into SQL; values are always
//! bound parameters. Index expressions, WHERE clauses and view queries are
//! superuser-written SQL by design, run one statement at a time.

use rusqlite::Connection;

use super::index;
use super::model::{Collection, Field};
use super::registry::Schema;
use super::validate::messages::error;
use super::validate::{CREATE_FAILED, UPDATE_FAILED};
use super::view::create_view_sql;
use crate::error::{ApiError, FieldErrors};
use crate::security::random;
use crate::store::quote_ident;

pub const DELETE_FAILED: &str = "Failed to delete collection.";
pub const TRUNCATE_FAILED: &str =
    "Failed to truncate collection (most likely due to required cascade delete record references).";
pub const TRUNCATE_VIEW: &str =
    "View collections cannot be truncated since they don't store their own records.";

/// Creates the table (with its indexes) or view of `collection` and its
/// `_collections` row.
pub fn create(conn: &Connection, collection: &Collection) -> Result<(), ApiError> {
    in_savepoint(conn, "collection_create", |conn| {
        if collection.is_view() {
            create_view(conn, collection, CREATE_FAILED)?;
        } else {
            create_table(conn, collection)?;
            create_indexes(conn, collection, CREATE_FAILED)?;
        }
        insert_row(conn, collection)
    })
}

/// Brings the table (or view) of `old` to the shape of `new`: renames the
/// table, drops, adds and renames columns by field id (data stays with its
/// field), converts single/multiple value columns, rebuilds the indexes,
/// updates the row, then refreshes views whose fields changed as a result.
/// `schema` is the snapshot before the change.
pub fn update(
    conn: &Connection,
    old: &Collection,
    new: &Collection,
    schema: &Schema,
) -> Result<(), ApiError> {
    in_savepoint(conn, "collection_update", |conn| {
        if new.is_view() {
            if !old.name.eq_ignore_ascii_case(&new.name) {
                conn.execute_batch(&format!(
                    "DROP VIEW IF EXISTS {}",
                    checked_ident(&old.name)?
                ))?;
            }
            create_view(conn, new, UPDATE_FAILED)?;
        } else {
            sync_table(conn, old, new)?;
        }
        update_row(conn, new)
    })?;
    refresh_views(conn, &schema.with(new.clone()), &new.id);
    Ok(())
}

/// Drops a collection's table or view and its row. Refused (400) for
/// system collections, collections other collections relate to, and
/// tables a view still reads from.
pub fn delete(conn: &Connection, collection: &Collection, schema: &Schema) -> Result<(), ApiError> {
    if collection.system {
        return Err(ApiError::bad_request(DELETE_FAILED));
    }
    let referencing: Vec<&str> = schema
        .referencing(&collection.id)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if !referencing.is_empty() {
        return Err(ApiError::bad_request(&format!(
            "Failed to delete collection probably due to existing reference in {}.",
            referencing.join(", ")
        )));
    }
    in_savepoint(conn, "collection_delete", |conn| {
        let name = checked_ident(&collection.name)?;
        let kind = if collection.is_view() {
            "VIEW"
        } else {
            "TABLE"
        };
        conn.execute_batch(&format!("DROP {kind} IF EXISTS {name}"))?;
        conn.execute(
            "DELETE FROM `_collections` WHERE `id` = ?1",
            [&collection.id],
        )?;
        forget_auth_records(conn, collection, schema)?;
        // SQLite lets a view outlive its table; the reference refuses instead
        let broken_view = schema
            .all()
            .iter()
            .filter(|c| c.is_view() && c.id != collection.id)
            .any(|view| view_is_broken(conn, &view.name));
        if broken_view {
            return Err(ApiError::bad_request(DELETE_FAILED));
        }
        Ok(())
    })
}

/// Deletes every record of a collection. Relations to those records are
/// resolved as deleting each record would: cascading relations delete the
/// referencing records, optional ones are cleared, and a required one that
/// is in use refuses the whole truncate. (One level deep; files of deleted
/// records are the caller's to remove.)
pub fn truncate(
    conn: &Connection,
    collection: &Collection,
    schema: &Schema,
) -> Result<(), ApiError> {
    if collection.is_view() {
        return Err(ApiError::bad_request(TRUNCATE_VIEW));
    }
    if collection.name == "_superusers" {
        // there must always be a superuser left
        return Err(ApiError::bad_request(TRUNCATE_FAILED));
    }
    in_savepoint(conn, "collection_truncate", |conn| {
        let references = relation_references(schema, &collection.id);
        for r in references.iter().filter(|r| r.required && !r.cascade) {
            if r.count_in_use(conn)? > 0 {
                return Err(ApiError::bad_request(TRUNCATE_FAILED));
            }
        }
        for r in &references {
            r.release(conn)?;
        }
        conn.execute_batch(&format!("DELETE FROM {}", checked_ident(&collection.name)?))?;
        forget_auth_records(conn, collection, schema)
    })
}

/// System collections keyed by `collectionRef` + `recordRef`: their rows
/// about an auth collection's records go when those records go.
const AUTH_RECORD_TABLES: &[&str] = &["_externalAuths", "_mfas", "_otps", "_authOrigins"];

fn forget_auth_records(
    conn: &Connection,
    collection: &Collection,
    schema: &Schema,
) -> Result<(), ApiError> {
    if !collection.is_auth() {
        return Ok(());
    }
    for table in AUTH_RECORD_TABLES
        .iter()
        .filter(|t| schema.get_by_name(t).is_some())
    {
        let sql = format!(
            "DELETE FROM {} WHERE `collectionRef` = ?1",
            checked_ident(table)?
        );
        conn.execute(&sql, [&collection.id])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Savepoints and identifiers

/// Runs `work` in a named savepoint: released on success, rolled back on error.
fn in_savepoint<T>(
    conn: &Connection,
    name: &str,
    work: impl FnOnce(&Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    conn.execute_batch(&format!("SAVEPOINT {name}"))?;
    match work(conn) {
        Ok(value) => {
            conn.execute_batch(&format!("RELEASE {name}"))?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) =
                conn.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
            {
                log::error!("collections: rolling back {name} failed: {rollback}");
            }
            Err(err)
        }
    }
}

/// Quotes a table or column name after checking it is a plain word; the
/// validators already refuse anything else, this is the last line.
fn checked_ident(name: &str) -> Result<String, ApiError> {
    let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        Ok(quote_ident(name))
    } else {
        Err(ApiError::internal(format!(
            "collections: refusing identifier {name:?}"
        )))
    }
}

fn temp_column_name(name: &str) -> String {
    format!("{name}{}", random::string_from(random::ALPHANUMERIC, 5))
}

// ---------------------------------------------------------------------------
// Tables, columns, indexes, views

/// `CREATE TABLE` with the columns in name order, as the reference does.
fn create_table(conn: &Connection, collection: &Collection) -> Result<(), ApiError> {
    let mut fields: Vec<&Field> = collection.fields.iter().collect();
    fields.sort_by(|a, b| a.name.cmp(&b.name));
    let columns = fields
        .iter()
        .map(|f| {
            Ok(format!(
                "{} {}",
                checked_ident(&f.name)?,
                f.kind.column_type()
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let sql = format!(
        "CREATE TABLE {} ({})",
        checked_ident(&collection.name)?,
        columns.join(", ")
    );
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Creates every index on the collection's own table; each failure is a
/// validation error at `indexes.<i>` (SQLite is the judge of expressions).
fn create_indexes(
    conn: &Connection,
    collection: &Collection,
    message: &str,
) -> Result<(), ApiError> {
    let mut failures = serde_json::Map::new();
    for (i, sql) in collection.indexes.iter().enumerate() {
        let Some(parsed) = index::parse(sql) else {
            failures.insert(
                i.to_string(),
                error(
                    "validation_invalid_index_expression",
                    "Invalid CREATE INDEX expression.",
                ),
            );
            continue;
        };
        if let Err(e) = conn.execute(&parsed.on_table(&collection.name).build(), []) {
            failures.insert(
                i.to_string(),
                error(
                    "validation_invalid_index_expression",
                    &format!(
                        "Failed to create index {} - SQL logic error: {} (1).",
                        parsed.name,
                        sqlite_message(&e)
                    ),
                ),
            );
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let mut errors = FieldErrors::new();
    errors.insert("indexes".into(), serde_json::Value::Object(failures));
    Err(ApiError::validation(message, errors))
}

fn drop_indexes(conn: &Connection, collection: &Collection) -> Result<(), ApiError> {
    for parsed in collection
        .indexes
        .iter()
        .filter_map(|sql| index::parse(sql))
    {
        conn.execute_batch(&format!(
            "DROP INDEX IF EXISTS {}",
            quote_ident(&parsed.name)
        ))?;
    }
    Ok(())
}

/// (Re)creates a view and proves it compiles; a failure is a validation
/// error at `viewQuery`.
fn create_view(conn: &Connection, collection: &Collection, message: &str) -> Result<(), ApiError> {
    let name = checked_ident(&collection.name)?;
    conn.execute_batch(&format!("DROP VIEW IF EXISTS {name}"))?;
    let result = conn
        .execute(&create_view_sql(&name, collection.view_query()), [])
        .and_then(|_| conn.prepare(&format!("SELECT * FROM {name}")).map(|_| ()));
    result.map_err(|e| {
        ApiError::field(
            message,
            "viewQuery",
            "validation_invalid_view_query",
            &format!("Invalid query - {}.", sqlite_message(&e)),
        )
    })
}

fn view_is_broken(conn: &Connection, name: &str) -> bool {
    match checked_ident(name) {
        Ok(quoted) => conn.prepare(&format!("SELECT * FROM {quoted}")).is_err(),
        Err(_) => false,
    }
}

fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}

/// A refused ALTER (e.g. dropping a column a view still reads) is the
/// client's doing: 400 with SQLite's reason, like the reference.
fn alter_failed(what: &str, err: rusqlite::Error) -> ApiError {
    ApiError::bad_request(&format!(
        "{UPDATE_FAILED} Raw error: {what} - {}.",
        sqlite_message(&err)
    ))
}

fn sync_table(conn: &Connection, old: &Collection, new: &Collection) -> Result<(), ApiError> {
    let rename_table = !old.name.eq_ignore_ascii_case(&new.name);
    let rebuild_indexes = rename_table || old.fields != new.fields || old.indexes != new.indexes;
    if rebuild_indexes {
        drop_indexes(conn, old)?;
    }
    if rename_table {
        let sql = format!(
            "ALTER TABLE {} RENAME TO {}",
            checked_ident(&old.name)?,
            checked_ident(&new.name)?
        );
        conn.execute_batch(&sql)
            .map_err(|e| alter_failed("failed to rename table", e))?;
    }
    let table = checked_ident(&new.name)?;
    for gone in old
        .fields
        .iter()
        .filter(|f| new.field_by_id(&f.id).is_none())
    {
        let sql = format!(
            "ALTER TABLE {table} DROP COLUMN {}",
            checked_ident(&gone.name)?
        );
        conn.execute_batch(&sql)
            .map_err(|e| alter_failed(&format!("failed to drop column {}", gone.name), e))?;
    }
    add_and_rename_columns(conn, &table, old, new)?;
    for field in &new.fields {
        let switched = old
            .field_by_id(&field.id)
            .is_some_and(|before| before.kind.is_multi() != field.kind.is_multi());
        if switched {
            convert_value_shape(conn, &table, field)?;
        }
    }
    if rebuild_indexes {
        create_indexes(conn, new, UPDATE_FAILED)?;
    }
    Ok(())
}

/// New fields are added and renamed fields renamed, each through a
/// temporary name first so that swapped names (`a, b` → `b, a`) never clash.
fn add_and_rename_columns(
    conn: &Connection,
    table: &str,
    old: &Collection,
    new: &Collection,
) -> Result<(), ApiError> {
    let mut pending: Vec<(String, &str)> = Vec::new();
    for field in &new.fields {
        let temp = temp_column_name(&field.name);
        match old.field_by_id(&field.id) {
            None => {
                let sql = format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}",
                    checked_ident(&temp)?,
                    field.kind.column_type()
                );
                conn.execute_batch(&sql).map_err(|e| {
                    alter_failed(&format!("failed to add column {}", field.name), e)
                })?;
            }
            Some(before) if before.name != field.name => {
                let sql = format!(
                    "ALTER TABLE {table} RENAME COLUMN {} TO {}",
                    checked_ident(&before.name)?,
                    checked_ident(&temp)?
                );
                conn.execute_batch(&sql).map_err(|e| {
                    alter_failed(&format!("failed to rename column {}", before.name), e)
                })?;
            }
            Some(_) => continue,
        }
        pending.push((temp, &field.name));
    }
    for (temp, name) in pending {
        let sql = format!(
            "ALTER TABLE {table} RENAME COLUMN {} TO {}",
            checked_ident(&temp)?,
            checked_ident(name)?
        );
        conn.execute_batch(&sql)?;
    }
    Ok(())
}

/// A field switched between one value and several (`maxSelect` crossing 1):
/// the column is rebuilt with the new type and its values converted, a
/// single value becoming a one-element array and an array keeping its last
/// element. Views are set aside meanwhile since SQLite checks them on ALTER.
fn convert_value_shape(conn: &Connection, table: &str, field: &Field) -> Result<(), ApiError> {
    let views = saved_views(conn)?;
    for (name, _) in &views {
        conn.execute_batch(&format!("DROP VIEW IF EXISTS {}", quote_ident(name)))?;
    }
    let column = checked_ident(&field.name)?;
    let temp = checked_ident(&format!("_{}", temp_column_name(&field.name)))?;
    conn.execute_batch(&format!(
        "ALTER TABLE {table} RENAME COLUMN {column} TO {temp}"
    ))?;
    conn.execute_batch(&format!(
        "ALTER TABLE {table} ADD COLUMN {column} {}",
        field.kind.column_type()
    ))?;
    let converted = if field.kind.is_multi() {
        format!(
            "CASE WHEN {temp} IS NULL OR {temp} = '' THEN '[]' \
             WHEN json_valid({temp}) AND json_type({temp}) = 'array' THEN {temp} \
             ELSE json_array({temp}) END"
        )
    } else {
        format!(
            "CASE WHEN {temp} IS NULL OR {temp} = '' OR {temp} = '[]' THEN '' \
             WHEN json_valid({temp}) AND json_type({temp}) = 'array' THEN COALESCE(json_extract({temp}, '$[#-1]'), '') \
             ELSE {temp} END"
        )
    };
    conn.execute_batch(&format!("UPDATE {table} SET {column} = ({converted})"))?;
    conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {temp}"))?;
    for (_, sql) in &views {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

/// Every view's name and CREATE statement.
fn saved_views(conn: &Connection) -> Result<Vec<(String, String)>, ApiError> {
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql IS NOT NULL")?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Re-infers the fields of every view; where they changed (a source field
/// renamed, retyped or dropped), the view and its row are rewritten. A view
/// that no longer compiles is left as it is, as the reference does, so that
/// its query can still be fixed through the API.
fn refresh_views(conn: &Connection, schema: &Schema, changed_id: &str) {
    for view in schema
        .all()
        .iter()
        .filter(|c| c.is_view() && c.id != changed_id)
    {
        let Ok(fields) = super::view::infer_fields(conn, schema, view.view_query()) else {
            continue;
        };
        if same_shape(&fields, &view.fields) {
            continue;
        }
        let mut updated = (**view).clone();
        updated.fields = fields;
        let result = in_savepoint(conn, "collection_view_refresh", |conn| {
            create_view(conn, &updated, UPDATE_FAILED)?;
            update_row(conn, &updated)
        });
        if let Err(e) = result {
            log::warn!("collections: view {} not refreshed: {e}", view.name);
        }
    }
}

/// Equal apart from the random ids of cloned fields.
fn same_shape(a: &[Field], b: &[Field]) -> bool {
    let strip = |f: &Field| {
        let mut f = f.clone();
        if f.id.starts_with("_clone_") {
            f.id.clear();
        }
        f
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| strip(x) == strip(y))
}

// ---------------------------------------------------------------------------
// `_collections` rows

fn insert_row(conn: &Connection, c: &Collection) -> Result<(), ApiError> {
    let row = c.storage_row();
    conn.execute(
        "INSERT INTO `_collections` (`id`, `system`, `type`, `name`, `fields`, `indexes`, `listRule`, \
         `viewRule`, `createRule`, `updateRule`, `deleteRule`, `options`, `created`, `updated`) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        rusqlite::params![
            c.id, c.system, c.kind.as_str(), c.name, row.fields, row.indexes, c.list_rule, c.view_rule,
            c.create_rule, c.update_rule, c.delete_rule, row.options, c.created, c.updated
        ],
    )?;
    Ok(())
}

fn update_row(conn: &Connection, c: &Collection) -> Result<(), ApiError> {
    let row = c.storage_row();
    conn.execute(
        "UPDATE `_collections` SET `system` = ?2, `type` = ?3, `name` = ?4, `fields` = ?5, `indexes` = ?6, \
         `listRule` = ?7, `viewRule` = ?8, `createRule` = ?9, `updateRule` = ?10, `deleteRule` = ?11, \
         `options` = ?12, `created` = ?13, `updated` = ?14 WHERE `id` = ?1",
        rusqlite::params![
            c.id, c.system, c.kind.as_str(), c.name, row.fields, row.indexes, c.list_rule, c.view_rule,
            c.create_rule, c.update_rule, c.delete_rule, row.options, c.created, c.updated
        ],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Relations into a collection being emptied

struct RelationReference {
    table: String,
    column: String,
    multi: bool,
    required: bool,
    cascade: bool,
}

fn relation_references(schema: &Schema, target_id: &str) -> Vec<RelationReference> {
    let mut out = Vec::new();
    for c in schema
        .all()
        .iter()
        .filter(|c| !c.is_view() && c.id != target_id)
    {
        for f in &c.fields {
            if let super::model::FieldKind::Relation {
                collection_id,
                cascade_delete,
                ..
            } = &f.kind
            {
                if collection_id == target_id {
                    out.push(RelationReference {
                        table: c.name.clone(),
                        column: f.name.clone(),
                        multi: f.kind.is_multi(),
                        required: f.required,
                        cascade: *cascade_delete,
                    });
                }
            }
        }
    }
    out
}

impl RelationReference {
    /// SQL condition: the column holds at least one id.
    fn in_use(&self, column: &str) -> String {
        if self.multi {
            format!("(json_valid({column}) AND json_array_length({column}) > 0)")
        } else {
            format!("{column} != ''")
        }
    }

    fn count_in_use(&self, conn: &Connection) -> Result<i64, ApiError> {
        let column = checked_ident(&self.column)?;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {}",
            checked_ident(&self.table)?,
            self.in_use(&column)
        );
        Ok(conn.query_row(&sql, [], |row| row.get(0))?)
    }

    /// Every target record goes away: delete the referencing records
    /// (cascade) or clear the reference.
    fn release(&self, conn: &Connection) -> Result<(), ApiError> {
        let table = checked_ident(&self.table)?;
        let column = checked_ident(&self.column)?;
        let condition = self.in_use(&column);
        let sql = if self.cascade {
            format!("DELETE FROM {table} WHERE {condition}")
        } else {
            let empty = if self.multi { "'[]'" } else { "''" };
            format!("UPDATE {table} SET {column} = {empty} WHERE {condition}")
        };
        conn.execute_batch(&sql)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
