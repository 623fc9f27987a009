//! Collection indexes: parsing the `CREATE [UNIQUE] INDEX` statements a
//! collection lists, rebuilding them in the reference's canonical form (the
//! SQL actually executed, always against the collection's own table), and
//! telling the records code which columns each UNIQUE index covers.
//!
//! The parser is deliberately small: it accepts one statement (no `;`),
//! quoted or bare identifiers, column expressions, COLLATE/ASC/DESC and a
//! WHERE clause. It never executes anything; `ddl.rs` does.

use super::model::Collection;
use crate::store::quote_ident;

/// One column (or expression) of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexColumn {
    /// A column name with its quotes removed, or an expression as written.
    pub name: String,
    pub collate: String,
    /// `ASC`, `DESC` or empty.
    pub sort: String,
}

impl IndexColumn {
    /// True when the column is an expression rather than a plain column
    /// name (the reference's rule: it has a parenthesis or a space).
    pub fn is_expression(&self) -> bool {
        self.name.contains('(') || self.name.contains(' ')
    }
}

/// A parsed `CREATE INDEX` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedIndex {
    pub unique: bool,
    pub if_not_exists: bool,
    pub schema_name: String,
    pub name: String,
    pub table: String,
    pub columns: Vec<IndexColumn>,
    /// The WHERE expression of a partial index, as written (may be empty).
    pub where_clause: String,
}

/// The columns of one UNIQUE index, for turning a constraint failure into
/// an error on the field(s) it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueIndex {
    pub name: String,
    /// Plain column names; expressions are listed as written.
    pub columns: Vec<String>,
}

impl ParsedIndex {
    /// The statement in the reference's canonical layout, e.g.
    /// ``CREATE UNIQUE INDEX `idx_x` ON `posts` (`title`) WHERE title != ''``;
    /// several columns go on their own indented lines.
    pub fn build(&self) -> String {
        let mut sql = String::from("CREATE ");
        if self.unique {
            sql.push_str("UNIQUE ");
        }
        sql.push_str("INDEX ");
        if self.if_not_exists {
            sql.push_str("IF NOT EXISTS ");
        }
        if !self.schema_name.is_empty() {
            sql.push_str(&quote_ident(&self.schema_name));
            sql.push('.');
        }
        sql.push_str(&quote_ident(&self.name));
        sql.push_str(" ON ");
        sql.push_str(&quote_ident(&self.table));
        sql.push_str(" (");
        let columns: Vec<String> = self.columns.iter().map(column_sql).collect();
        if columns.len() > 1 {
            sql.push_str("\n  ");
            sql.push_str(&columns.join(",\n  "));
            sql.push('\n');
        } else {
            sql.push_str(&columns.concat());
        }
        sql.push(')');
        if !self.where_clause.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.where_clause);
        }
        sql
    }

    /// The same index aimed at another table.
    pub fn on_table(&self, table: &str) -> ParsedIndex {
        ParsedIndex {
            table: table.to_string(),
            ..self.clone()
        }
    }

    /// Plain column names (expressions excluded).
    pub fn plain_columns(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|c| !c.is_expression())
            .map(|c| c.name.as_str())
    }
}

fn column_sql(column: &IndexColumn) -> String {
    let mut sql = if column.is_expression() {
        column.name.trim().to_string()
    } else {
        quote_ident(column.name.trim())
    };
    if !column.collate.is_empty() {
        sql.push_str(" COLLATE ");
        sql.push_str(&column.collate);
    }
    if !column.sort.is_empty() {
        sql.push(' ');
        sql.push_str(&column.sort);
    }
    sql
}

/// Parses one `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (cols) [WHERE ...]`.
/// `None` when the text is not such a statement (or holds more than one).
pub fn parse(sql: &str) -> Option<ParsedIndex> {
    if sql.contains(';') {
        return None;
    }
    let mut cur = Cursor::new(sql);
    cur.keyword("create")?;
    let unique = cur.keyword("unique").is_some();
    cur.keyword("index")?;
    let if_not_exists = cur.keywords(&["if", "not", "exists"]);
    let mut name = cur.identifier()?;
    let mut schema_name = String::new();
    if cur.eat('.') {
        schema_name = name;
        name = cur.identifier()?;
    }
    cur.keyword("on")?;
    let table = cur.identifier()?;
    let inner = cur.parenthesized()?;
    let where_clause = if cur.at_end() {
        String::new()
    } else {
        cur.keyword("where")?;
        let rest = cur.rest().trim().to_string();
        if rest.is_empty() {
            return None;
        }
        rest
    };
    let columns: Vec<IndexColumn> = split_top_level(&inner, ',')
        .iter()
        .filter_map(|raw| parse_column(raw))
        .collect();
    let parsed = ParsedIndex {
        unique,
        if_not_exists,
        schema_name,
        name,
        table,
        columns,
        where_clause,
    };
    let valid = !parsed.name.is_empty() && !parsed.table.is_empty() && !parsed.columns.is_empty();
    valid.then_some(parsed)
}

/// The UNIQUE indexes of a collection with the columns they cover.
pub fn unique_indexes(collection: &Collection) -> Vec<UniqueIndex> {
    collection
        .indexes
        .iter()
        .filter_map(|sql| parse(sql))
        .filter(|idx| idx.unique)
        .map(|idx| UniqueIndex {
            name: idx.name.clone(),
            columns: idx.columns.iter().map(|c| c.name.clone()).collect(),
        })
        .collect()
}

/// True when one of `indexes` is a UNIQUE index on exactly `column` (any
/// WHERE clause allowed), the condition for identity fields.
pub fn has_single_column_unique(indexes: &[String], column: &str) -> bool {
    indexes.iter().filter_map(|sql| parse(sql)).any(|idx| {
        idx.unique && idx.columns.len() == 1 && idx.columns[0].name.eq_ignore_ascii_case(column)
    })
}

const QUOTE_CHARS: &[char] = &['`', '"', '\'', '[', ']'];

fn parse_column(raw: &str) -> Option<IndexColumn> {
    let mut text = raw.trim();
    let mut sort = String::new();
    if let Some((rest, word)) = split_last_word(text) {
        if word.eq_ignore_ascii_case("asc") || word.eq_ignore_ascii_case("desc") {
            sort = word.to_ascii_uppercase();
            text = rest;
        }
    }
    let mut collate = String::new();
    if let Some((rest, word)) = split_last_word(text) {
        if let Some((before, kw)) = split_last_word(rest) {
            if kw.eq_ignore_ascii_case("collate") && is_word(word) {
                collate = word.to_string();
                text = before;
            }
        }
    }
    let name = text.trim().trim_matches(QUOTE_CHARS).trim().to_string();
    (!name.is_empty()).then_some(IndexColumn {
        name,
        collate,
        sort,
    })
}

/// Splits `text` into everything before its last whitespace-separated word
/// and that word; `None` when there is only one word.
fn split_last_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_end();
    let start = text.rfind(char::is_whitespace)?;
    Some((text[..start].trim_end(), &text[start + 1..]))
}

fn is_word(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits at `sep` where it is outside parentheses and quotes.
pub(crate) fn split_top_level(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                current.push(c);
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    current.push(c);
                }
                '[' => {
                    quote = Some(']');
                    current.push(c);
                }
                '(' => {
                    depth += 1;
                    current.push(c);
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    current.push(c);
                }
                c if c == sep && depth == 0 => parts.push(std::mem::take(&mut current)),
                c => current.push(c),
            },
        }
    }
    parts.push(current);
    parts
}

/// A forward-only reader over the statement text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.pos >= self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `word` (case-insensitively) when it is the next whole word.
    fn keyword(&mut self, word: &str) -> Option<()> {
        self.skip_space();
        let rest = self.rest();
        let head = rest.get(..word.len())?;
        let boundary = rest[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if head.eq_ignore_ascii_case(word) && boundary {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Consumes a sequence of keywords, all or nothing.
    fn keywords(&mut self, words: &[&str]) -> bool {
        let start = self.pos;
        if words.iter().all(|w| self.keyword(w).is_some()) {
            true
        } else {
            self.pos = start;
            false
        }
    }

    /// A bare or quoted (`` ` ``, `"`, `'`, `[]`) identifier, unquoted.
    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        let rest = self.rest();
        let first = rest.chars().next()?;
        let close = match first {
            '`' | '"' | '\'' => Some(first),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            let body = &rest[1..];
            let end = body.find(close)?;
            self.pos += 1 + end + 1;
            return Some(body[..end].to_string());
        }
        let len = rest
            .find(|c: char| c.is_whitespace() || c == '(' || c == '.')
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(rest[..len].to_string())
    }

    /// The text inside the next balanced pair of parentheses.
    fn parenthesized(&mut self) -> Option<String> {
        if !self.eat('(') {
            return None;
        }
        let start = self.pos;
        let mut depth = 1usize;
        let mut quote: Option<char> = None;
        for (offset, c) in self.rest().char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '\'' | '"' | '`' => quote = Some(c),
                    '[' => quote = Some(']'),
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            let inner = self.text[start..start + offset].to_string();
                            self.pos = start + offset + 1;
                            return Some(inner);
                        }
                    }
                    _ => {}
                },
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let idx =
            parse("CREATE UNIQUE INDEX `idx_email_x` ON `users` (`email`) WHERE `email` != ''")
                .unwrap();
        assert!(idx.unique);
        assert_eq!(idx.name, "idx_email_x");
        assert_eq!(idx.table, "users");
        assert_eq!(idx.columns[0].name, "email");
        assert_eq!(idx.where_clause, "`email` != ''");

        let idx = parse("create index idx_a on posts (title)").unwrap();
        assert!(!idx.unique);
        assert_eq!((idx.name.as_str(), idx.table.as_str()), ("idx_a", "posts"));

        let idx = parse("CREATE INDEX IF NOT EXISTS \"idx_b\" ON [t] ([v] ASC, lower(w) , x COLLATE NOCASE DESC)").unwrap();
        assert!(idx.if_not_exists);
        assert_eq!(idx.table, "t");
        assert_eq!(idx.columns.len(), 3);
        assert_eq!(
            idx.columns[0],
            IndexColumn {
                name: "v".into(),
                collate: String::new(),
                sort: "ASC".into()
            }
        );
        assert!(idx.columns[1].is_expression());
        assert_eq!(idx.columns[2].collate, "NOCASE");
        assert_eq!(idx.columns[2].sort, "DESC");
    }

    #[test]
    fn rejects_what_is_not_one_index_statement() {
        for bad in [
            "garbage",
            "CREATE INDEX idx ON t ()",
            "CREATE INDEX idx ON t (v); DROP TABLE users",
            "CREATE TABLE x (v)",
            "CREATE INDEX ON t (v)",
            "CREATE INDEX idx ON t (v) WHERE",
            "CREATE INDEX idx ON t (v) trailing",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn builds_the_reference_layout() {
        // layouts observed in the reference's sqlite_master
        let one = parse("CREATE INDEX idx_evo_v ON evo (v)").unwrap();
        assert_eq!(one.build(), "CREATE INDEX `idx_evo_v` ON `evo` (`v`)");
        let two = parse(
            "create unique index `idx_evo_w` on \"evo\" (`w` DESC, v COLLATE NOCASE) where w > 0",
        )
        .unwrap();
        assert_eq!(
            two.build(),
            "CREATE UNIQUE INDEX `idx_evo_w` ON `evo` (\n  `w` DESC,\n  `v` COLLATE NOCASE\n) WHERE w > 0"
        );
        let expr = parse("CREATE INDEX idx_i6 ON i6 (lower(v))").unwrap();
        assert_eq!(
            expr.on_table("other").build(),
            "CREATE INDEX `idx_i6` ON `other` (lower(v))"
        );
    }

    #[test]
    fn finds_single_column_unique_indexes() {
        let indexes = vec![
            "CREATE UNIQUE INDEX `a` ON `t` (`tokenKey`)".to_string(),
            "CREATE UNIQUE INDEX `b` ON `t` (x, y)".to_string(),
            "CREATE INDEX `c` ON `t` (z)".to_string(),
        ];
        assert!(has_single_column_unique(&indexes, "tokenkey"));
        assert!(!has_single_column_unique(&indexes, "x"));
        assert!(!has_single_column_unique(&indexes, "z"));
    }
}
