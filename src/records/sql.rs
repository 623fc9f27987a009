//! Persistence of records on a connection the caller gives (the writer's
//! for writes, a worker's read-only one for reads): insert, update, delete,
//! find, list and count, plus the conversion between SQLite values and the
//! API's JSON values per field type.
//!
//! Every value is bound as a parameter. Identifiers are only the names of
//! the collection and its fields, always through `quote_ident`. Filter SQL
//! comes ready-made from the query compiler (text with `?` placeholders and
//! its parameters); this module never builds SQL from request text.

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, ErrorCode, Row};
use serde_json::Value;

use super::cast;
use super::validate::error;
use super::values::{zero_value, RecordValues};
use crate::collections::{Collection, Field, FieldKind};
use crate::error::{ApiError, FieldErrors};
use crate::store::{push_quoted_ident, quote_ident};

/// A bound SQL parameter.
pub type SqlParam = rusqlite::types::Value;

/// A WHERE fragment from the query compiler: SQL with `?` placeholders
/// referring to the collection's table by its own (quoted) name, and the
/// parameters in placeholder order.
pub type WhereSql<'a> = (&'a str, &'a [SqlParam]);

/// SQLite's extended codes for a UNIQUE index and a PRIMARY KEY violation.
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;

/// One ORDER BY term of a list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order<'a> {
    /// A field of the collection; `true` for descending.
    Field(&'a str, bool),
    /// Insertion order (`@rowid`); not available on view collections.
    Rowid(bool),
    /// `@random`.
    Random,
    /// An expression compiled by the query module (relation or JSON paths).
    Sql(&'a str, bool),
}

/// A failed insert or update.
#[derive(Debug)]
pub enum WriteError {
    /// A UNIQUE index refused the values: every column of that index is
    /// named with `validation_not_unique`.
    NotUnique(FieldErrors),
    /// Anything else the database reported.
    Sql(rusqlite::Error),
}

impl WriteError {
    /// The API error: a 400 with `message` (e.g. `Failed to create
    /// record.`) for unique violations, a 500 otherwise.
    pub fn into_api(self, message: &str) -> ApiError {
        match self {
            WriteError::NotUnique(errors) => ApiError::validation(message, errors),
            WriteError::Sql(err) => ApiError::from(err),
        }
    }
}

impl From<rusqlite::Error> for WriteError {
    fn from(err: rusqlite::Error) -> WriteError {
        WriteError::Sql(err)
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NotUnique(errors) => {
                write!(f, "not unique: {}", Value::Object(errors.clone()))
            }
            WriteError::Sql(err) => write!(f, "sqlite: {err}"),
        }
    }
}

impl std::error::Error for WriteError {}

fn table(collection: &Collection) -> String {
    quote_ident(&collection.name)
}

/// `a`, `b`, ... for every field of the collection, in schema order.
/// Built in one string: every record read asks for it.
fn column_list(collection: &Collection) -> String {
    let mut list = String::with_capacity(collection.fields.len() * 16);
    push_column_list(&mut list, &collection.fields);
    list
}

/// Appends the quoted names of `fields`, separated by `, `, to `sql`.
fn push_column_list<'f>(sql: &mut String, fields: impl IntoIterator<Item = &'f Field>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        push_quoted_ident(sql, &field.name);
    }
}

/// Inserts a new record. `values` should come from `prepare_create`;
/// fields missing from it get their column defaults.
pub fn insert(
    conn: &Connection,
    collection: &Collection,
    values: &RecordValues,
) -> Result<(), WriteError> {
    let fields: Vec<&Field> = collection
        .fields
        .iter()
        .filter(|f| values.get(&f.name).is_some())
        .collect();
    let mut sql = String::with_capacity(64 + fields.len() * 24);
    sql.push_str("INSERT INTO ");
    push_quoted_ident(&mut sql, &collection.name);
    sql.push_str(" (");
    push_column_list(&mut sql, fields.iter().copied());
    sql.push_str(") VALUES (");
    for i in 0..fields.len() {
        sql.push_str(if i > 0 { ", ?" } else { "?" });
    }
    sql.push(')');
    let params = fields.iter().map(|f| to_sql(&f.kind, values.get(&f.name)));
    // Cached: preparing an INSERT (constraints, indexes, foreign keys) costs
    // more than running it, and it runs on the writer thread.
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params_from_iter(params)))
        .map(drop)
        .map_err(|err| classify_write_error(collection, err))
}

/// Writes every field (but the id) of the record `id`; `false` when there
/// is no such record.
pub fn update(
    conn: &Connection,
    collection: &Collection,
    id: &str,
    values: &RecordValues,
) -> Result<bool, WriteError> {
    let fields: Vec<&Field> = collection
        .fields
        .iter()
        .filter(|f| f.name != "id" && values.get(&f.name).is_some())
        .collect();
    if fields.is_empty() {
        return Ok(find_by_id(conn, collection, id)?.is_some());
    }
    let assignments: Vec<String> = fields
        .iter()
        .map(|f| format!("{} = ?", quote_ident(&f.name)))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE `id` = ?",
        table(collection),
        assignments.join(", ")
    );
    let mut params: Vec<SqlParam> = fields
        .iter()
        .map(|f| to_sql(&f.kind, values.get(&f.name)))
        .collect();
    params.push(SqlParam::Text(id.to_string()));
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params_from_iter(params)))
        .map(|changed| changed > 0)
        .map_err(|err| classify_write_error(collection, err))
}

/// Deletes the row of record `id` only (see `relations::delete_record` for
/// the reference's handling of records that point at it); `false` when
/// there was no such record.
pub fn delete(conn: &Connection, collection: &Collection, id: &str) -> rusqlite::Result<bool> {
    let sql = format!("DELETE FROM {} WHERE `id` = ?", table(collection));
    conn.prepare_cached(&sql)?
        .execute([id])
        .map(|deleted| deleted > 0)
}

/// The record `id`, or `None`.
pub fn find_by_id(
    conn: &Connection,
    collection: &Collection,
    id: &str,
) -> rusqlite::Result<Option<RecordValues>> {
    // Built in place: every record view and every write's read-back asks.
    let mut sql = String::with_capacity(48 + collection.fields.len() * 16);
    sql.push_str("SELECT ");
    push_column_list(&mut sql, &collection.fields);
    sql.push_str(" FROM ");
    push_quoted_ident(&mut sql, &collection.name);
    sql.push_str(" WHERE `id` = ? LIMIT 1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => read_row(collection, row).map(Some),
        None => Ok(None),
    }
}

/// The first record whose `field` equals `value` exactly (identity lookups
/// for sign-in). `field` must be a field of the collection.
pub fn find_by_field(
    conn: &Connection,
    collection: &Collection,
    field: &str,
    value: &str,
) -> rusqlite::Result<Option<RecordValues>> {
    let Some(field) = collection.field(field) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ? LIMIT 1",
        column_list(collection),
        table(collection),
        quote_ident(&field.name)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([value])?;
    match rows.next()? {
        Some(row) => read_row(collection, row).map(Some),
        None => Ok(None),
    }
}

/// A page of records matching `filter`, in `order` (insertion order when
/// empty). `limit: None` means no limit.
pub fn list(
    conn: &Connection,
    collection: &Collection,
    filter: Option<WhereSql<'_>>,
    order: &[Order<'_>],
    limit: Option<u64>,
    offset: u64,
) -> rusqlite::Result<Vec<RecordValues>> {
    let mut sql = format!(
        "SELECT {} FROM {}",
        column_list(collection),
        table(collection)
    );
    let params = push_where(&mut sql, filter);
    push_order(&mut sql, collection, order)?;
    // Integers computed by the caller, not request text: safe to inline,
    // and it keeps the filter's `?` numbering untouched.
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
    // Cached: a client repeats the same filter shape with new values.
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_row(collection, row)?);
    }
    Ok(out)
}

/// How many records match `filter`.
pub fn count(
    conn: &Connection,
    collection: &Collection,
    filter: Option<WhereSql<'_>>,
) -> rusqlite::Result<u64> {
    let mut sql = format!("SELECT COUNT(*) FROM {}", table(collection));
    let params = push_where(&mut sql, filter);
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(params), |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn push_where<'p>(sql: &mut String, filter: Option<WhereSql<'p>>) -> &'p [SqlParam] {
    match filter {
        Some((fragment, params)) if !fragment.trim().is_empty() => {
            sql.push_str(&format!(" WHERE ({fragment})"));
            params
        }
        _ => &[],
    }
}

fn push_order(
    sql: &mut String,
    collection: &Collection,
    order: &[Order<'_>],
) -> rusqlite::Result<()> {
    let direction = |desc: bool| if desc { "DESC" } else { "ASC" };
    let mut terms = Vec::with_capacity(order.len());
    for term in order {
        terms.push(match *term {
            Order::Field(name, desc) => {
                if collection.field(name).is_none() {
                    return Err(rusqlite::Error::InvalidColumnName(name.to_string()));
                }
                format!(
                    "{}.{} {}",
                    table(collection),
                    quote_ident(name),
                    direction(desc)
                )
            }
            Order::Rowid(desc) => {
                if collection.is_view() {
                    return Err(rusqlite::Error::InvalidColumnName("@rowid".into()));
                }
                format!("{}._rowid_ {}", table(collection), direction(desc))
            }
            Order::Random => "RANDOM()".to_string(),
            Order::Sql(expr, desc) => format!("{expr} {}", direction(desc)),
        });
    }
    if terms.is_empty() && !collection.is_view() {
        terms.push(format!("{}._rowid_ ASC", table(collection)));
    }
    if !terms.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
    }
    Ok(())
}

/// One row selected with `column_list(collection)`.
fn read_row(collection: &Collection, row: &Row<'_>) -> rusqlite::Result<RecordValues> {
    let mut values = RecordValues::with_capacity(collection.fields.len());
    for (index, field) in collection.fields.iter().enumerate() {
        values.push_new(&field.name, from_sql(&field.kind, row.get_ref(index)?));
    }
    Ok(values)
}

/// The SQLite value stored for a field value: numbers as INTEGER when
/// whole, booleans as 0/1, multi-value/json/geoPoint as JSON text (json
/// `null` as NULL), everything else as TEXT.
pub fn to_sql(kind: &FieldKind, value: Option<&Value>) -> SqlParam {
    let value = value.unwrap_or(&Value::Null);
    match kind {
        FieldKind::Number { .. } => match (value.as_i64(), value.as_f64()) {
            (Some(i), _) => SqlParam::Integer(i),
            (None, Some(f)) => SqlParam::Real(f),
            (None, None) => SqlParam::Integer(0),
        },
        FieldKind::Bool => SqlParam::Integer(i64::from(value.as_bool().unwrap_or(false))),
        FieldKind::Json { .. } if value.is_null() => SqlParam::Null,
        FieldKind::Json { .. } | FieldKind::GeoPoint => SqlParam::Text(value.to_string()),
        kind if kind.is_multi() => match value {
            Value::Array(_) => SqlParam::Text(value.to_string()),
            other => SqlParam::Text(
                Value::Array(
                    cast::to_unique_strings(other)
                        .into_iter()
                        .map(Value::String)
                        .collect(),
                )
                .to_string(),
            ),
        },
        _ => SqlParam::Text(cast::to_text(value)),
    }
}

/// The API value of a stored SQLite value, per field type. Tolerates what
/// other writers may have stored (numbers as text, booleans as text, ...).
pub fn from_sql(kind: &FieldKind, stored: ValueRef<'_>) -> Value {
    if let ValueRef::Null = stored {
        return zero_value(kind);
    }
    match kind {
        FieldKind::Number { .. } => match stored {
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => cast::number_value(f),
            other => cast::number_value(
                cast::parse_go_float(&text_of(other))
                    .filter(|f| f.is_finite())
                    .unwrap_or(0.0),
            ),
        },
        FieldKind::Bool => match stored {
            ValueRef::Integer(i) => Value::Bool(i != 0),
            ValueRef::Real(f) => Value::Bool(f != 0.0),
            other => Value::Bool(cast::to_bool(&Value::String(text_of(other)))),
        },
        FieldKind::Json { .. } => match stored {
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => cast::number_value(f),
            other => {
                let text = text_of(other);
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
        },
        FieldKind::GeoPoint => super::values::coerce(kind, &Value::String(text_of(stored)))
            .unwrap_or_else(|_| zero_value(kind)),
        kind if kind.is_multi() => {
            let items = cast::to_unique_strings(&Value::String(text_of(stored)));
            Value::Array(items.into_iter().map(Value::String).collect())
        }
        _ => Value::String(text_of(stored)),
    }
}

fn text_of(stored: ValueRef<'_>) -> String {
    match stored {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => cast::format_float(f),
        // Valid UTF-8 is the rule; checking it whole is much cheaper than
        // the lossy conversion's chunk-by-chunk walk.
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// Unique violations become field errors; other errors pass through.
fn classify_write_error(collection: &Collection, err: rusqlite::Error) -> WriteError {
    match unique_violation_columns(collection, &err) {
        Some(columns) => {
            let mut errors = FieldErrors::new();
            for column in columns {
                errors.insert(
                    column,
                    error("validation_not_unique", "Value must be unique."),
                );
            }
            WriteError::NotUnique(errors)
        }
        None => WriteError::Sql(err),
    }
}

/// The collection fields named by a UNIQUE/PRIMARY KEY failure. SQLite says
/// either `UNIQUE constraint failed: tbl.a, tbl.b` or, for indexes on
/// expressions, `UNIQUE constraint failed: index 'name'` — then the fields
/// are read from that index's definition in the collection.
fn unique_violation_columns(collection: &Collection, err: &rusqlite::Error) -> Option<Vec<String>> {
    let rusqlite::Error::SqliteFailure(failure, Some(message)) = err else {
        return None;
    };
    let is_unique = failure.code == ErrorCode::ConstraintViolation
        && matches!(
            failure.extended_code,
            SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
        );
    if !is_unique {
        return None;
    }
    let detail = message
        .split_once("constraint failed:")
        .map_or("", |(_, d)| d)
        .trim();
    let named = match detail
        .strip_prefix("index '")
        .and_then(|d| d.strip_suffix('\''))
    {
        Some(index_name) => index_definition_columns(collection, index_name),
        None => detail
            .split(',')
            .map(|column| column.trim().rsplit('.').next().unwrap_or("").to_string())
            .collect(),
    };
    Some(
        named
            .into_iter()
            .filter(|name| collection.field(name).is_some())
            .collect(),
    )
}

/// Field names used by the index `name` among the collection's indexes
/// (identifiers inside its column list that are fields).
fn index_definition_columns(collection: &Collection, name: &str) -> Vec<String> {
    let Some(definition) = collection
        .indexes
        .iter()
        .find(|sql| index_name_of(sql) == Some(name))
    else {
        return Vec::new();
    };
    let columns = definition.split_once('(').map_or("", |(_, rest)| {
        rest.rsplit_once(')').map_or(rest, |(inner, _)| inner)
    });
    let mut names: Vec<String> = Vec::new();
    for word in columns.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if !word.is_empty() && collection.field(word).is_some() && !names.iter().any(|n| n == word)
        {
            names.push(word.to_string());
        }
    }
    names
}

/// The name in `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON ...`, unquoted.
fn index_name_of(definition: &str) -> Option<&str> {
    let upper = definition.to_ascii_uppercase();
    let start = upper.find("INDEX")? + "INDEX".len();
    let rest = definition[start..].trim_start();
    let rest = if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS") {
        rest["IF NOT EXISTS".len()..].trim_start()
    } else {
        rest
    };
    let closing = match rest.chars().next()? {
        '`' => Some('`'),
        '"' => Some('"'),
        '[' => Some(']'),
        '\'' => Some('\''),
        _ => None,
    };
    match closing {
        Some(close) => rest[1..].split(close).next(),
        None => rest.split(|c: char| c.is_whitespace() || c == '(').next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::CollectionType;
    use serde_json::{json, Map};

    fn field(name: &str, kind: FieldKind) -> Field {
        Field {
            id: format!("f_{name}"),
            name: name.into(),
            system: false,
            hidden: false,
            presentable: false,
            required: false,
            help: String::new(),
            kind,
        }
    }

    fn text() -> FieldKind {
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        }
    }

    /// A collection of every stored shape, and its table as the reference's DDL makes it.
    fn setup() -> (Connection, Collection) {
        let collection = Collection {
            id: "pbc_1".into(),
            name: "things".into(),
            kind: CollectionType::Base,
            system: false,
            fields: vec![
                field("id", text()),
                field("title", text()),
                field(
                    "n",
                    FieldKind::Number {
                        min: None,
                        max: None,
                        only_int: false,
                    },
                ),
                field("done", FieldKind::Bool),
                field(
                    "tags",
                    FieldKind::Select {
                        values: vec![],
                        max_select: 3,
                    },
                ),
                field(
                    "one",
                    FieldKind::Select {
                        values: vec![],
                        max_select: 1,
                    },
                ),
                field("meta", FieldKind::Json { max_size: 0 }),
                field("loc", FieldKind::GeoPoint),
                field("handle", text()),
                field("a", text()),
                field("b", text()),
            ],
            indexes: vec![
                "CREATE UNIQUE INDEX `idx_handle` ON `things` (`handle`) WHERE `handle` != ''"
                    .into(),
                "CREATE UNIQUE INDEX idx_ab ON things (a, b)".into(),
                "CREATE UNIQUE INDEX `idx_lower_title` ON `things` (lower(`title`))".into(),
            ],
            list_rule: None,
            view_rule: None,
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
        };
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE `things` (
                `id` TEXT PRIMARY KEY DEFAULT ('r'||lower(hex(randomblob(7)))) NOT NULL,
                `title` TEXT DEFAULT '' NOT NULL,
                `n` NUMERIC DEFAULT 0 NOT NULL,
                `done` BOOLEAN DEFAULT FALSE NOT NULL,
                `tags` JSON DEFAULT '[]' NOT NULL,
                `one` TEXT DEFAULT '' NOT NULL,
                `meta` JSON DEFAULT NULL,
                `loc` JSON DEFAULT '{\"lon\":0,\"lat\":0}' NOT NULL,
                `handle` TEXT DEFAULT '' NOT NULL,
                `a` TEXT DEFAULT '' NOT NULL,
                `b` TEXT DEFAULT '' NOT NULL);",
        )
        .unwrap();
        for index in &collection.indexes {
            conn.execute_batch(index).unwrap();
        }
        (conn, collection)
    }

    fn record(pairs: Value) -> RecordValues {
        match pairs {
            Value::Object(map) => RecordValues::from(map),
            _ => RecordValues::new(),
        }
    }

    #[test]
    fn values_round_trip_with_their_types() {
        let (conn, c) = setup();
        let v = record(
            json!({"id": "r1", "title": "hello", "n": 42.5, "done": true, "tags": ["x", "z"],
                              "one": "a", "meta": {"nested": {"list": [1, "two", null, false]}},
                              "loc": {"lon": 10.5, "lat": -3}, "handle": "h1", "a": "1", "b": "1"}),
        );
        insert(&conn, &c, &v).unwrap();
        let got = find_by_id(&conn, &c, "r1").unwrap().unwrap();
        assert_eq!(got, v);
        let stored: (String, i64, String) = conn
            .query_row("SELECT typeof(n), done, tags FROM things", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(stored, ("real".to_string(), 1, "[\"x\",\"z\"]".to_string()));
    }

    #[test]
    fn json_values_of_every_kind_survive_numeric_affinity() {
        let (conn, c) = setup();
        let samples = [
            json!("just a string"),
            json!(12.75),
            json!(false),
            json!(null),
            json!(7),
            json!([1, "two"]),
            json!("1.50"),
        ];
        for (i, sample) in samples.iter().enumerate() {
            let id = format!("j{i}");
            insert(
                &conn,
                &c,
                &record(json!({"id": id, "title": id, "meta": sample, "handle": id, "a": id})),
            )
            .unwrap();
            let got = find_by_id(&conn, &c, &id).unwrap().unwrap();
            assert_eq!(got.get("meta"), Some(sample), "{sample}");
        }
        let null_is_sql_null: bool = conn
            .query_row("SELECT meta IS NULL FROM things WHERE id = 'j3'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(null_is_sql_null);
    }

    #[test]
    fn whole_numbers_come_back_as_integers_and_defaults_as_zero_values() {
        let (conn, c) = setup();
        conn.execute("INSERT INTO things (id, n) VALUES ('raw', '15')", [])
            .unwrap();
        let got = find_by_id(&conn, &c, "raw").unwrap().unwrap();
        assert_eq!(got.get("n"), Some(&json!(15)));
        assert_eq!(got.get("done"), Some(&json!(false)));
        assert_eq!(got.get("tags"), Some(&json!([])));
        assert_eq!(got.get("meta"), Some(&json!(null)));
        assert_eq!(got.get("loc"), Some(&json!({"lon": 0, "lat": 0})));
        assert_eq!(got.get("title"), Some(&json!("")));
    }

    #[test]
    fn update_and_delete_report_missing_records() {
        let (conn, c) = setup();
        insert(&conn, &c, &record(json!({"id": "r1", "title": "a"}))).unwrap();
        assert!(update(
            &conn,
            &c,
            "r1",
            &record(json!({"id": "r1", "title": "b", "n": 2}))
        )
        .unwrap());
        assert_eq!(
            find_by_id(&conn, &c, "r1")
                .unwrap()
                .unwrap()
                .get_str("title"),
            "b"
        );
        assert!(!update(&conn, &c, "nope", &record(json!({"title": "x"}))).unwrap());
        assert!(delete(&conn, &c, "r1").unwrap());
        assert!(!delete(&conn, &c, "r1").unwrap());
        assert!(find_by_id(&conn, &c, "r1").unwrap().is_none());
    }

    fn unique_fields(result: Result<(), WriteError>) -> Vec<String> {
        match result {
            Err(WriteError::NotUnique(errors)) => {
                for err in errors.values() {
                    assert_eq!(err["code"], "validation_not_unique");
                }
                errors.keys().cloned().collect()
            }
            other => panic!("expected a unique violation, got {other:?}"),
        }
    }

    #[test]
    fn unique_violations_name_every_indexed_column() {
        let (conn, c) = setup();
        insert(
            &conn,
            &c,
            &record(json!({"id": "r1", "title": "T", "handle": "alice", "a": "1", "b": "2"})),
        )
        .unwrap();
        let dup_id = insert(
            &conn,
            &c,
            &record(json!({"id": "r1", "title": "other", "handle": "x", "a": "9"})),
        );
        assert_eq!(unique_fields(dup_id), ["id"]);
        let dup_handle = insert(
            &conn,
            &c,
            &record(json!({"id": "r2", "title": "2", "handle": "alice", "a": "8"})),
        );
        assert_eq!(unique_fields(dup_handle), ["handle"]);
        let dup_pair = insert(
            &conn,
            &c,
            &record(json!({"id": "r3", "title": "3", "a": "1", "b": "2"})),
        );
        assert_eq!(unique_fields(dup_pair), ["a", "b"]);
        let dup_expr = insert(
            &conn,
            &c,
            &record(json!({"id": "r4", "title": "t", "a": "7"})),
        );
        assert_eq!(unique_fields(dup_expr), ["title"]);
        // the partial index lets many records have no handle
        insert(
            &conn,
            &c,
            &record(json!({"id": "r5", "title": "5", "a": "5"})),
        )
        .unwrap();
        insert(
            &conn,
            &c,
            &record(json!({"id": "r6", "title": "6", "a": "6"})),
        )
        .unwrap();
        let on_update = update(
            &conn,
            &c,
            "r5",
            &record(json!({"title": "5", "handle": "alice", "a": "5"})),
        )
        .map(drop);
        assert_eq!(unique_fields(on_update), ["handle"]);
        // saving a record with its own unique value is fine
        assert!(update(
            &conn,
            &c,
            "r1",
            &record(json!({"title": "T", "handle": "alice", "a": "1", "b": "2"}))
        )
        .unwrap());
        let api = insert(&conn, &c, &record(json!({"id": "r1"})))
            .unwrap_err()
            .into_api("Failed to create record.");
        assert_eq!(api.status(), 400);
    }

    #[test]
    fn other_write_errors_pass_through() {
        let (conn, c) = setup();
        conn.execute_batch("DROP TABLE things").unwrap();
        let err = insert(&conn, &c, &record(json!({"id": "r1"}))).unwrap_err();
        assert!(matches!(err, WriteError::Sql(_)));
        assert_eq!(err.into_api("x").status(), 500);
    }

    fn ids(records: &[RecordValues]) -> Vec<String> {
        records.iter().map(|r| r.id().to_string()).collect()
    }

    #[test]
    fn list_filters_orders_and_pages() {
        let (conn, c) = setup();
        for (id, n) in [("r1", 5), ("r2", 1), ("r3", 3), ("r4", 3)] {
            insert(
                &conn,
                &c,
                &record(json!({"id": id, "title": id, "n": n, "a": id})),
            )
            .unwrap();
        }
        assert_eq!(
            ids(&list(&conn, &c, None, &[], None, 0).unwrap()),
            ["r1", "r2", "r3", "r4"]
        );
        let params = [SqlParam::Integer(2)];
        let filter = Some(("`things`.`n` > ?", &params[..]));
        let by_n = list(
            &conn,
            &c,
            filter,
            &[Order::Field("n", true), Order::Field("id", false)],
            None,
            0,
        )
        .unwrap();
        assert_eq!(ids(&by_n), ["r1", "r3", "r4"]);
        assert_eq!(count(&conn, &c, filter).unwrap(), 3);
        assert_eq!(count(&conn, &c, None).unwrap(), 4);
        let page = list(&conn, &c, filter, &[Order::Rowid(true)], Some(1), 1).unwrap();
        assert_eq!(ids(&page), ["r3"]);
        assert_eq!(
            list(&conn, &c, None, &[Order::Random], Some(10), 0)
                .unwrap()
                .len(),
            4
        );
        let by_expr = list(
            &conn,
            &c,
            None,
            &[
                Order::Sql("`things`.`n` * -1", false),
                Order::Field("id", true),
            ],
            None,
            0,
        )
        .unwrap();
        assert_eq!(ids(&by_expr), ["r1", "r4", "r3", "r2"]);
        assert!(list(&conn, &c, None, &[Order::Field("nope", false)], None, 0).is_err());
    }

    #[test]
    fn index_names_parse_from_definitions() {
        assert_eq!(
            index_name_of("CREATE UNIQUE INDEX `idx_x` ON `t` (`a`)"),
            Some("idx_x")
        );
        assert_eq!(
            index_name_of("create index if not exists idx_y on t (a)"),
            Some("idx_y")
        );
        assert_eq!(
            index_name_of("CREATE INDEX \"idx_z\"ON t(a)"),
            Some("idx_z")
        );
    }
}
