//! View collections: checking a `viewQuery` and inferring the view's fields
//! from it. SQLite itself compiles the query (so every syntax and name error
//! is SQLite's own) and reports where each result column comes from; a
//! light scan of the SELECT list adds what SQLite cannot say (`count(...)`,
//! `CAST(... AS type)`).
//!
//! Inference rules (as the reference's): `id` → the text primary key; a
//! column selected straight from a collection keeps that field's type and
//! options (its `id` becomes a single relation to that collection);
//! `count(`/`total(`/numeric casts → number; text and bool casts → text and
//! bool; anything else → json. This module only prepares statements; it
//! never executes or writes anything.

use rusqlite::Connection;

use super::ids;
use super::json::add_to_fields_list;
use super::model::{Field, FieldKind};
use super::registry::Schema;
use crate::security::random;

/// Why a view query was refused, with whatever fields could be inferred
/// (the reference reports a missing `id` column alongside the other fields).
#[derive(Debug, Clone, PartialEq)]
pub struct ViewError {
    pub message: String,
    pub fields: Vec<Field>,
}

impl ViewError {
    fn new(message: impl Into<String>) -> ViewError {
        ViewError {
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

pub const MISSING_ID: &str =
    "missing required id column (you can use `(ROW_NUMBER() OVER()) as id` if you don't have one)";
pub const MULTIPLE_STATEMENTS: &str = "multiple statements are not supported";
pub const WILDCARD: &str = "wildcard columns (*) are not supported - manually type the collection field names you want the view query to have";

/// The query as it is wrapped into the view: surrounding whitespace and
/// semicolons removed.
pub fn normalize_query(query: &str) -> String {
    query.trim().trim_matches(';').trim().to_string()
}

/// The SQL that (re)creates view `name`. The query is wrapped in an outer
/// SELECT so the statement can only ever be one SELECT. `quoted_name` must
/// come from `quote_ident`.
pub fn create_view_sql(quoted_name: &str, query: &str) -> String {
    format!(
        "CREATE VIEW {quoted_name} AS SELECT * FROM ({})",
        normalize_query(query)
    )
}

/// `POST /api/collections/meta/dry-run-view`: the fields a view with this
/// query would get, as `{"fields": [...]}`, or the reference's 400.
pub fn dry_run(
    conn: &Connection,
    schema: &Schema,
    query: &str,
) -> Result<serde_json::Value, crate::error::ApiError> {
    match infer_fields(conn, schema, query) {
        Ok(fields) => Ok(serde_json::json!({ "fields": super::json::fields_to_json(&fields) })),
        Err(err) => Err(crate::error::ApiError::bad_request(&format!(
            "Invalid view query. Raw error: \n{}.",
            err.message
        ))),
    }
}

/// Compiles `query` on `conn` and infers the view fields from its result
/// columns. `schema` supplies the collections the query reads from.
pub fn infer_fields(
    conn: &Connection,
    schema: &Schema,
    query: &str,
) -> Result<Vec<Field>, ViewError> {
    let query = normalize_query(query);
    let tokens = lex(&query);
    if tokens
        .iter()
        .any(|t| t.kind == TokenKind::Punct && t.text == ";")
    {
        return Err(ViewError::new(MULTIPLE_STATEMENTS));
    }
    let items = select_items(&tokens);
    if items.iter().any(|item| is_wildcard(item)) {
        return Err(ViewError::new(WILDCARD));
    }
    let stmt = conn
        .prepare(&format!("SELECT * FROM ({query})"))
        .map_err(|e| ViewError::new(sqlite_message(&e)))?;

    let mut fields: Vec<Field> = Vec::new();
    let mut has_id = false;
    let columns: Vec<_> = stmt.columns_with_metadata().collect();
    let items_match = items.len() == columns.len();
    for (i, column) in columns.iter().enumerate() {
        let name = column.name().to_string();
        has_id |= name == "id";
        let item = if items_match {
            Some(&items[i][..])
        } else {
            None
        };
        let origin = column.table_name().zip(column.origin_name());
        let field = infer_field(&name, item, origin, schema);
        add_to_fields_list(&mut fields, field);
    }
    if !has_id {
        return Err(ViewError {
            message: MISSING_ID.to_string(),
            fields,
        });
    }
    Ok(fields)
}

fn infer_field(
    name: &str,
    item: Option<&[Token]>,
    origin: Option<(&str, &str)>,
    schema: &Schema,
) -> Field {
    if name == "id" {
        return view_id_field();
    }
    if let Some(kind) = item.and_then(expression_kind) {
        return Field::new(name, kind);
    }
    if let Some(field) =
        origin.and_then(|(table, column)| source_field(name, table, column, schema))
    {
        return field;
    }
    Field::new(name, FieldKind::Json { max_size: 1 })
}

/// The primary key of every view: text, without the record-id limits.
fn view_id_field() -> Field {
    let mut field = Field::new(
        "id",
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: "^[a-z0-9]+$".into(),
            autogenerate_pattern: String::new(),
            primary_key: true,
        },
    );
    field.id = ids::field_id("text", "id");
    field.system = true;
    field.required = true;
    field
}

/// The field a column selected from a collection's table inherits.
fn source_field(name: &str, table: &str, column: &str, schema: &Schema) -> Option<Field> {
    let collection = schema.get_by_name(table)?;
    let source = collection
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(column))?;
    if column.eq_ignore_ascii_case("id") {
        // a record id elsewhere in the view is a reference to that record
        let mut field = Field::new(
            name,
            FieldKind::Relation {
                collection_id: collection.id.clone(),
                cascade_delete: false,
                min_select: 0,
                max_select: 1,
            },
        );
        field.id = ids::field_id("relation", name);
        return Some(field);
    }
    let mut clone = source.clone();
    // a fresh id, so one source field selected twice stays two fields
    clone.id = format!("_clone_{}", random::string_from(random::ALPHANUMERIC, 4));
    clone.name = name.to_string();
    Some(clone)
}

/// The type an expression implies regardless of where its values come from.
fn expression_kind(item: &[Token]) -> Option<FieldKind> {
    let first = item.first()?.text.to_ascii_lowercase();
    let opens_call = item.get(1).is_some_and(|t| t.text == "(");
    if opens_call && first == "count" {
        return Some(number_kind(true));
    }
    if opens_call && first == "total" {
        return Some(number_kind(false));
    }
    if opens_call && first == "cast" && cast_is_whole_item(item) {
        return cast_kind(&cast_target(item)?);
    }
    None
}

fn number_kind(only_int: bool) -> FieldKind {
    FieldKind::Number {
        min: None,
        max: None,
        only_int,
    }
}

fn cast_kind(target: &str) -> Option<FieldKind> {
    match target {
        "integer" | "int" => Some(number_kind(true)),
        "real" | "decimal" | "numeric" => Some(number_kind(false)),
        "text" => FieldKind::default_for("text"),
        "boolean" | "bool" => Some(FieldKind::Bool),
        _ => None,
    }
}

/// True when the CAST's closing parenthesis ends the expression (only an
/// alias may follow), so `CAST(x AS int) + 1` is not taken for a cast.
fn cast_is_whole_item(item: &[Token]) -> bool {
    let Some(close) = matching_close(item, 1) else {
        return false;
    };
    let rest = &item[close + 1..];
    match rest {
        [] => true,
        [alias] => alias.is_name(),
        [kw, alias] => kw.text.eq_ignore_ascii_case("as") && alias.is_name(),
        _ => false,
    }
}

/// The lower-cased type word after the last top-level `AS` inside CAST(...).
fn cast_target(item: &[Token]) -> Option<String> {
    let close = matching_close(item, 1)?;
    let depth = item[1].depth + 1;
    let inner = &item[2..close];
    let as_pos = inner
        .iter()
        .rposition(|t| t.depth == depth && t.text.eq_ignore_ascii_case("as"))?;
    inner.get(as_pos + 1).map(|t| t.text.to_ascii_lowercase())
}

fn matching_close(item: &[Token], open: usize) -> Option<usize> {
    let depth = item.get(open)?.depth;
    item.iter()
        .enumerate()
        .skip(open + 1)
        .find(|(_, t)| t.text == ")" && t.depth == depth)
        .map(|(i, _)| i)
}

fn is_wildcard(item: &[Token]) -> bool {
    match item {
        [star] => star.text == "*",
        [_, dot, star] => dot.text == "." && star.text == "*",
        _ => false,
    }
}

/// SQLite's own message for a failed prepare.
fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// A minimal SQL lexer: enough to find the outer SELECT list and the shape of
// each item. Strings, quoted names and comments are single tokens or skipped.

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    /// Parenthesis depth at the token (a `(` has the depth outside it).
    depth: usize,
    kind: TokenKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TokenKind {
    Word,
    QuotedName,
    Literal,
    Punct,
}

impl Token {
    fn is_name(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::QuotedName)
    }
}

fn lex(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if matches!(c, '\'' | '"' | '`' | '[') {
            let close = if c == '[' { ']' } else { c };
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            let text: String = chars[start..i.min(chars.len())].iter().collect();
            let kind = if c == '\'' {
                TokenKind::Literal
            } else {
                TokenKind::QuotedName
            };
            tokens.push(Token { text, depth, kind });
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || matches!(chars[i], '_' | '$')
                    || !chars[i].is_ascii())
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let kind = if c.is_ascii_digit() {
                TokenKind::Literal
            } else {
                TokenKind::Word
            };
            tokens.push(Token { text, depth, kind });
        } else {
            if c == ')' {
                depth = depth.saturating_sub(1);
            }
            tokens.push(Token {
                text: c.to_string(),
                depth,
                kind: TokenKind::Punct,
            });
            if c == '(' {
                depth += 1;
            }
            i += 1;
        }
    }
    tokens
}

/// The items of the outermost SELECT list, split at top-level commas.
/// Empty when no top-level SELECT is found (e.g. a `WITH` query the scan
/// does not follow); inference then relies on SQLite's metadata alone.
fn select_items(tokens: &[Token]) -> Vec<Vec<Token>> {
    let is_kw = |t: &Token, word: &str| {
        t.depth == 0 && t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case(word)
    };
    let Some(select) = tokens.iter().position(|t| is_kw(t, "select")) else {
        return Vec::new();
    };
    let mut start = select + 1;
    while tokens
        .get(start)
        .is_some_and(|t| is_kw(t, "distinct") || is_kw(t, "all"))
    {
        start += 1;
    }
    let end = tokens[start..]
        .iter()
        .position(|t| is_kw(t, "from"))
        .map_or(tokens.len(), |p| start + p);
    let mut items = Vec::new();
    let mut current = Vec::new();
    for token in &tokens[start..end] {
        if token.depth == 0 && token.text == "," && token.kind == TokenKind::Punct {
            items.push(std::mem::take(&mut current));
        } else {
            current.push(token.clone());
        }
    }
    items.push(current);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::model::{Collection, CollectionType};
    use serde_json::Map;

    fn schema_and_db() -> (Schema, Connection) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE src (id TEXT PRIMARY KEY, label TEXT, n NUMERIC, owner TEXT, files JSON);
             CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT);",
        )
        .unwrap();
        let field = |name: &str, kind: FieldKind| {
            let mut f = Field::new(name, kind);
            f.id = ids::field_id(f.type_name(), name);
            f
        };
        let mut label = field("label", FieldKind::default_for("text").unwrap());
        if let FieldKind::Text { max, .. } = &mut label.kind {
            *max = 50;
        }
        let src = Collection {
            id: "pbc_src".into(),
            name: "src".into(),
            kind: CollectionType::Base,
            system: false,
            fields: vec![
                field("id", FieldKind::default_for("text").unwrap()),
                label,
                field("n", FieldKind::default_for("number").unwrap()),
                field(
                    "owner",
                    FieldKind::Relation {
                        collection_id: "_pb_users_auth_".into(),
                        cascade_delete: false,
                        min_select: 0,
                        max_select: 1,
                    },
                ),
                field(
                    "files",
                    FieldKind::File {
                        max_select: 3,
                        max_size: 0,
                        mime_types: vec![],
                        thumbs: vec![],
                        protected: false,
                    },
                ),
            ],
            indexes: vec![],
            list_rule: None,
            view_rule: None,
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
        };
        let mut users = src.clone();
        users.id = "_pb_users_auth_".into();
        users.name = "users".into();
        users.fields = vec![
            field("id", FieldKind::default_for("text").unwrap()),
            field("email", FieldKind::default_for("email").unwrap()),
        ];
        (Schema::from_collections(vec![src, users]), conn)
    }

    fn summary(fields: &[Field]) -> Vec<(String, &'static str)> {
        fields
            .iter()
            .map(|f| (f.name.clone(), f.type_name()))
            .collect()
    }

    #[test]
    fn columns_from_collections_keep_their_field_types() {
        let (schema, conn) = schema_and_db();
        let fields = infer_fields(
            &conn,
            &schema,
            "SELECT id, label, n, owner, files FROM src WHERE n > 5;",
        )
        .unwrap();
        assert_eq!(
            summary(&fields),
            [
                ("id".into(), "text"),
                ("label".into(), "text"),
                ("n".into(), "number"),
                ("owner".into(), "relation"),
                ("files".into(), "file")
            ]
        );
        assert_eq!(fields[0].id, "text3208210256");
        assert!(fields[0].is_primary_key() && fields[0].system);
        assert!(fields[1].id.starts_with("_clone_"));
        assert!(matches!(fields[1].kind, FieldKind::Text { max: 50, .. }));
    }

    #[test]
    fn aliases_joins_aggregates_and_casts() {
        let (schema, conn) = schema_and_db();
        let q = "SELECT s.id, s.label AS lbl, count(*) AS c, cast(s.n as integer) AS ci, (s.n + 1) AS expr, \
                 u.id AS uid, u.email, total(s.n) as t2, CAST(s.n AS text) ct, cast(1 as real) AS r \
                 FROM src s LEFT JOIN users u ON u.id = s.owner GROUP BY s.id";
        let fields = infer_fields(&conn, &schema, q).unwrap();
        assert_eq!(
            summary(&fields),
            [
                ("id".into(), "text"),
                ("lbl".into(), "text"),
                ("c".into(), "number"),
                ("ci".into(), "number"),
                ("expr".into(), "json"),
                ("uid".into(), "relation"),
                ("email".into(), "email"),
                ("t2".into(), "number"),
                ("ct".into(), "text"),
                ("r".into(), "number")
            ]
        );
        assert!(matches!(
            fields[2].kind,
            FieldKind::Number { only_int: true, .. }
        ));
        assert!(matches!(
            fields[7].kind,
            FieldKind::Number {
                only_int: false,
                ..
            }
        ));
        assert!(
            matches!(&fields[5].kind, FieldKind::Relation { collection_id, max_select: 1, .. } if collection_id == "_pb_users_auth_")
        );
        assert_eq!(fields[5].id, "relation1402668550");
        assert_eq!(fields[4].id, "json3865741347");
    }

    #[test]
    fn literals_are_json_and_row_number_ids_work() {
        let (schema, conn) = schema_and_db();
        let fields = infer_fields(
            &conn,
            &schema,
            "SELECT (ROW_NUMBER() OVER()) as id, 1 as one, 'x' as s FROM src",
        )
        .unwrap();
        assert_eq!(
            summary(&fields),
            [
                ("id".into(), "text"),
                ("one".into(), "json"),
                ("s".into(), "json")
            ]
        );
    }

    #[test]
    fn refusals() {
        let (schema, conn) = schema_and_db();
        let err = infer_fields(&conn, &schema, "SELECT label FROM src").unwrap_err();
        assert_eq!(err.message, MISSING_ID);
        assert_eq!(summary(&err.fields), [("label".into(), "text")]);
        assert_eq!(
            infer_fields(&conn, &schema, "SELECT * FROM src")
                .unwrap_err()
                .message,
            WILDCARD
        );
        assert_eq!(
            infer_fields(&conn, &schema, "SELECT s.* FROM src s")
                .unwrap_err()
                .message,
            WILDCARD
        );
        assert_eq!(
            infer_fields(&conn, &schema, "SELECT id FROM src; DELETE FROM src")
                .unwrap_err()
                .message,
            MULTIPLE_STATEMENTS
        );
        assert!(infer_fields(&conn, &schema, "SELECT id FROM nonexist")
            .unwrap_err()
            .message
            .contains("no such table"));
        assert!(infer_fields(&conn, &schema, "select nonsense from").is_err());
        // a semicolon inside a string is not a statement separator
        assert!(infer_fields(&conn, &schema, "SELECT id, ';' AS semi FROM src").is_ok());
    }

    #[test]
    fn dry_runs_answer_like_the_reference() {
        let (schema, conn) = schema_and_db();
        let ok = dry_run(&conn, &schema, "SELECT id, label FROM src").unwrap();
        assert_eq!(ok["fields"].as_array().unwrap().len(), 2);
        let err = dry_run(&conn, &schema, "SELECT * FROM src").unwrap_err();
        assert_eq!(
            err.message(),
            format!("Invalid view query. Raw error: \n{WILDCARD}.")
        );
    }

    #[test]
    fn the_view_statement_wraps_the_query() {
        assert_eq!(
            create_view_sql("`v1`", "  SELECT id FROM src;\n"),
            "CREATE VIEW `v1` AS SELECT * FROM (SELECT id FROM src)"
        );
    }
}
