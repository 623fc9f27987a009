//! Checks of a collection's `indexes` list (`data.indexes[.<i>]`): each is
//! one parseable CREATE INDEX, names are unique here and unused by other
//! tables, definitions are not repeated, unique indexes on system fields and
//! the auth identity indexes stay, and plain columns name existing fields.
//!
//! Reads `sqlite_master` (parameterised) but never changes anything.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use super::messages::{error, error_with, nested};
use crate::collections::index::{self, ParsedIndex};
use crate::collections::model::Collection;

/// The error for `data.indexes`, if any: the first problem found, or every
/// index whose columns do not exist.
pub fn check_indexes(
    conn: &Connection,
    candidate: &Collection,
    original: Option<&Collection>,
) -> Option<Value> {
    if candidate.is_view() && !candidate.indexes.is_empty() {
        return Some(error(
            "validation_indexes_not_supported",
            "View collections don't support indexes.",
        ));
    }
    check_each_index(conn, candidate, original)
        .or_else(|| original.and_then(|o| check_system_unique_indexes_kept(candidate, o)))
        .or_else(|| {
            candidate
                .is_auth()
                .then(|| check_identity_indexes(candidate))
                .flatten()
        })
        .or_else(|| check_columns_exist(candidate))
}

fn at_index(i: usize, err: Value) -> Option<Value> {
    Some(json!({ i.to_string(): err }))
}

fn check_each_index(
    conn: &Connection,
    candidate: &Collection,
    original: Option<&Collection>,
) -> Option<Value> {
    let mut names = HashSet::new();
    let mut definitions = HashSet::new();
    let old_name = original.map_or(candidate.name.as_str(), |o| o.name.as_str());
    for (i, sql) in candidate.indexes.iter().enumerate() {
        let Some(parsed) = index::parse(sql) else {
            return at_index(
                i,
                error(
                    "validation_invalid_index_expression",
                    "Invalid CREATE INDEX expression.",
                ),
            );
        };
        if !names.insert(parsed.name.to_lowercase()) {
            return at_index(
                i,
                error(
                    "validation_duplicated_index_name",
                    "The index name already exists.",
                ),
            );
        }
        if let Some(table) = index_owner_elsewhere(conn, &parsed.name, old_name, &candidate.name) {
            return at_index(
                i,
                error_with(
                    "validation_existing_index_name",
                    &format!("The index name is already used in {table} collection."),
                    json!({ "usedTableName": table }),
                ),
            );
        }
        if !definitions.insert(definition_key(&parsed)) {
            return at_index(
                i,
                error(
                    "validation_duplicated_index_definition",
                    "The index definition already exists.",
                ),
            );
        }
    }
    None
}

/// The index with its identifiers blanked out, to spot the same definition
/// under two names.
fn definition_key(parsed: &ParsedIndex) -> String {
    ParsedIndex {
        schema_name: String::new(),
        name: "validator".into(),
        table: "validator".into(),
        ..parsed.clone()
    }
    .build()
}

/// The table of an existing index called `name` on some other table
/// (neither the collection's old nor its new name).
fn index_owner_elsewhere(
    conn: &Connection,
    name: &str,
    old_table: &str,
    new_table: &str,
) -> Option<String> {
    conn.query_row(
        "SELECT tbl_name FROM sqlite_master WHERE type = 'index' \
         AND lower(tbl_name) != lower(?1) AND lower(tbl_name) != lower(?2) AND lower(name) = lower(?3) LIMIT 1",
        rusqlite::params![old_table, new_table, name],
        |row| row.get::<_, String>(0),
    )
    .optional()
    .ok()
    .flatten()
}

/// A unique index covering a system field may be renamed or made partial,
/// but its columns must stay unique.
fn check_system_unique_indexes_kept(
    candidate: &Collection,
    original: &Collection,
) -> Option<Value> {
    let comparable = |idx: &ParsedIndex, like: &ParsedIndex| {
        let mut idx = idx.clone();
        idx.schema_name = like.schema_name.clone();
        idx.name = like.name.clone();
        idx.table = like.table.clone();
        idx.where_clause = like.where_clause.clone();
        for c in &mut idx.columns {
            c.collate.clear();
            c.sort.clear();
        }
        idx.build()
    };
    let new_indexes: Vec<ParsedIndex> = candidate
        .indexes
        .iter()
        .filter_map(|s| index::parse(s))
        .collect();
    for old in original
        .indexes
        .iter()
        .filter_map(|s| index::parse(s))
        .filter(|i| i.unique)
    {
        let system_field = old.columns.iter().find_map(|c| {
            original
                .fields
                .iter()
                .find(|f| f.system && f.name.eq_ignore_ascii_case(&c.name))
        });
        let Some(field) = system_field else { continue };
        let wanted = comparable(&old, &old);
        if !new_indexes
            .iter()
            .any(|new| comparable(new, &old) == wanted)
        {
            return Some(error_with(
                "validation_invalid_unique_system_field_index",
                &format!(
                    "Unique index definition on system fields ({}) is invalid or missing.",
                    field.name
                ),
                json!({ "fieldName": field.name }),
            ));
        }
    }
    None
}

fn check_identity_indexes(candidate: &Collection) -> Option<Value> {
    ["tokenKey", "email"].into_iter().find_map(|name| {
        (!index::has_single_column_unique(&candidate.indexes, name)).then(|| {
            error_with(
                "validation_missing_required_unique_index",
                &format!("Missing required unique index for field {name:?}."),
                json!({ "fieldName": name }),
            )
        })
    })
}

/// Every index naming a plain column the collection does not have, with the
/// message SQLite's own refusal produces in the reference.
fn check_columns_exist(candidate: &Collection) -> Option<Value> {
    let mut errors = Map::new();
    for (i, sql) in candidate.indexes.iter().enumerate() {
        let Some(parsed) = index::parse(sql) else {
            continue;
        };
        let missing = parsed.plain_columns().find(|col| {
            !candidate
                .fields
                .iter()
                .any(|f| f.name.eq_ignore_ascii_case(col))
        });
        if let Some(col) = missing {
            errors.insert(
                i.to_string(),
                error(
                    "validation_invalid_index_expression",
                    &format!(
                        "Failed to create index {} - SQL logic error: no such column: {col} (1).",
                        parsed.name
                    ),
                ),
            );
        }
    }
    nested(errors)
}
