//! The joins a record filter needs (relations, back-relations, `:each`,
//! `@collection`, `@request.auth`) and the SQL shapes of JSON columns.
//!
//! This file owns alias naming and rendering. Aliases are generated
//! (`__j3`, `__s7`), never derived from input, so no table or field name can
//! collide with one or change what it refers to. Sources and ON conditions
//! are built by the resolver from schema-checked, quoted names and bound
//! parameters only.

use crate::query::{Fragment, SqlValue};

/// One `LEFT JOIN <source> <alias> ON <on>` of the main query.
struct Join {
    /// What the join reaches (`$.owner`, `@collection:members:m`, ...): the
    /// same path always reuses the same join, so every mention of it in one
    /// filter talks about the same joined row, as in the reference.
    key: String,
    alias: String,
    source: Fragment,
    on: Option<Fragment>,
}

/// The joins of one statement, in registration order (a join's ON only
/// refers to aliases registered before it).
pub(crate) struct Joins {
    /// Distinguishes nested statements (`""`, `r1`, ...): their aliases
    /// never repeat an enclosing statement's.
    prefix: String,
    next: usize,
    list: Vec<Join>,
    /// Indexes of the joins used since the last `clear_touched`.
    touched: Vec<usize>,
}

impl Joins {
    pub(crate) fn new(prefix: &str) -> Joins {
        Joins {
            prefix: prefix.to_owned(),
            next: 0,
            list: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// A new quoted alias, `` `__<prefix><kind><n>` ``.
    pub(crate) fn fresh_alias(&mut self, kind: char) -> String {
        self.next += 1;
        format!("`__{}{kind}{}`", self.prefix, self.next)
    }

    /// The alias of the join reaching `key`, registering it on first use;
    /// `on` receives the new alias.
    pub(crate) fn add(
        &mut self,
        key: &str,
        source: Fragment,
        on: impl FnOnce(&str) -> Option<Fragment>,
    ) -> String {
        if let Some(index) = self.list.iter().position(|j| j.key == key) {
            self.touched.push(index);
            return self.list[index].alias.clone();
        }
        let alias = self.fresh_alias('j');
        let on = on(&alias);
        self.touched.push(self.list.len());
        self.list.push(Join {
            key: key.to_owned(),
            alias: alias.clone(),
            source,
            on,
        });
        alias
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn clear_touched(&mut self) {
        self.touched.clear();
    }

    pub(crate) fn any_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// `FROM (SELECT 1) <root> LEFT JOIN …` with every join, for the EXISTS
    /// that wraps a filter using joins.
    pub(crate) fn push_all(&self, out: &mut Fragment) {
        self.push_from(out, 0..self.list.len());
    }

    /// As `push_all`, with only the joins touched since `clear_touched`
    /// (a sort key's own chain).
    pub(crate) fn push_touched(&self, out: &mut Fragment) {
        let mut used = self.touched.clone();
        used.sort_unstable();
        used.dedup();
        self.push_from(out, used.into_iter());
    }

    fn push_from(&self, out: &mut Fragment, indexes: impl Iterator<Item = usize>) {
        out.push_sql(&format!("FROM (SELECT 1) `__{}root`", self.prefix));
        for index in indexes {
            if let Some(join) = self.list.get(index) {
                push_join(out, &join.source, &join.alias, join.on.as_ref());
            }
        }
    }
}

fn push_join(out: &mut Fragment, source: &Fragment, alias: &str, on: Option<&Fragment>) {
    out.push_sql(" LEFT JOIN ");
    out.push_fragment(source);
    out.push_sql(" ");
    out.push_sql(alias);
    out.push_sql(" ON ");
    match on {
        Some(on) => out.push_fragment(on),
        None => out.push_sql("1"),
    }
}

/// The parallel join chain of one multi-valued path, for the compiler's
/// "every element must match" subquery. It starts from the outer row (or a
/// fresh `@collection`/auth join) and never shares aliases with the main
/// query, which it is nested in.
#[derive(Clone)]
pub(crate) struct MultiChain {
    root: String,
    joins: Fragment,
    /// The alias of the collection the chain has reached.
    pub(crate) alias: String,
}

impl MultiChain {
    /// A chain whose current collection is `alias` (the outer table).
    pub(crate) fn start(root: String, alias: String) -> MultiChain {
        MultiChain {
            root,
            joins: Fragment::default(),
            alias,
        }
    }

    pub(crate) fn join(&mut self, alias: &str, source: Fragment, on: Option<Fragment>) {
        push_join(&mut self.joins, &source, alias, on.as_ref());
    }

    /// `FROM (SELECT 1) <root> LEFT JOIN …`.
    pub(crate) fn source(&self) -> Fragment {
        let mut out = Fragment::sql(format!("FROM (SELECT 1) {}", self.root));
        out.push_fragment(&self.joins);
        out
    }
}

/// A quoted table or view name as a join source.
pub(crate) fn table(quoted: String) -> Fragment {
    Fragment::sql(quoted)
}

/// `CASE` that is true for a JSON array, false for anything else — without
/// calling `json_type` on text that is not JSON, which would be an error.
fn is_json_array(column: &str) -> String {
    format!("(CASE WHEN json_valid({column}) THEN json_type({column}) = 'array' ELSE 0 END)")
}

/// `json_each` over a column as a list: a JSON array as is, anything else
/// (a single relation id, `''`, NULL) as a list of one, as the reference.
pub(crate) fn json_each_of(column: &str) -> Fragment {
    Fragment::sql(format!(
        "json_each(CASE WHEN {} THEN {column} ELSE json_array({column}) END)",
        is_json_array(column)
    ))
}

/// The element count of a column as a list; `''` and NULL count as empty.
pub(crate) fn json_array_length_of(column: &str) -> Fragment {
    Fragment::sql(format!(
        "json_array_length(CASE WHEN {} THEN {column} ELSE \
         (CASE WHEN {column} = '' OR {column} IS NULL THEN json_array() ELSE json_array({column}) END) END)",
        is_json_array(column)
    ))
}

/// `json_extract` at `path` (`$`, `$."a"[0]`, ...), also for text that is
/// not JSON (read as a JSON string), as the reference. The paths are bound.
pub(crate) fn json_extract_of(column: &str, path: &str) -> Fragment {
    let fallback = format!("$.pb{}", path.trim_start_matches('$'));
    Fragment::with_params(
        format!(
            "(CASE WHEN json_valid({column}) THEN json_extract({column}, ?) \
             ELSE json_extract(json_object('pb', {column}), ?) END)"
        ),
        vec![SqlValue::Text(path.to_owned()), SqlValue::Text(fallback)],
    )
}

/// `a.b.0` → `$."a"."b"[0]`. Keys are quoted, so no key can end the path
/// early; the lexer already limits them to letters, digits, `_` and `:`.
pub(crate) fn json_path(segments: &[String]) -> String {
    let mut out = String::from("$");
    for segment in segments {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push_str(&format!(".\"{}\"", segment.replace('"', "")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_join() {
        let mut joins = Joins::new("");
        let a = joins.add("$.owner", table("`people`".into()), |_| None);
        let b = joins.add("$.owner", table("`people`".into()), |_| None);
        let c = joins.add("$.team", table("`teams`".into()), |_| None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut out = Fragment::default();
        joins.push_all(&mut out);
        assert_eq!(
            out.sql,
            "FROM (SELECT 1) `__root` LEFT JOIN `people` `__j1` ON 1 LEFT JOIN `teams` `__j2` ON 1"
        );
    }

    #[test]
    fn nested_statements_use_their_own_aliases() {
        let mut outer = Joins::new("");
        let mut inner = Joins::new("r1");
        assert_ne!(outer.fresh_alias('j'), inner.fresh_alias('j'));
    }

    #[test]
    fn json_paths_quote_keys() {
        let path = |p: &[&str]| json_path(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(path(&["a", "b", "0"]), "$.\"a\".\"b\"[0]");
        assert_eq!(path(&[]), "$");
        assert_eq!(path(&["a\"]"]), "$.\"a]\"");
    }

    #[test]
    fn json_shapes_work_on_non_json_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let count = |value: &str| -> i64 {
            let sql = format!(
                "SELECT {} FROM (SELECT ? AS c)",
                json_array_length_of("c").sql
            );
            conn.query_row(&sql, [value], |r| r.get(0)).unwrap()
        };
        assert_eq!(count("abc"), 1);
        assert_eq!(count(""), 0);
        assert_eq!(count("[\"a\",\"b\"]"), 2);
        assert_eq!(count("{\"a\":1}"), 1);
        let each = |value: &str| -> Vec<String> {
            let sql = format!(
                "SELECT value FROM (SELECT ? AS c) JOIN {}",
                json_each_of("c").sql
            );
            let mut stmt = conn.prepare(&sql).unwrap();
            let rows = stmt.query_map([value], |r| r.get::<_, String>(0)).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(each("abc"), vec!["abc"]);
        assert_eq!(each("[\"a\",\"b\"]"), vec!["a", "b"]);
        let extract = json_extract_of("c", "$.\"k\"");
        let sql = format!("SELECT {} FROM (SELECT ? AS c)", extract.sql);
        let mut params = extract.params.clone();
        params.push(SqlValue::Text("{\"k\":2}".into()));
        let got: i64 = conn
            .query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
            .unwrap();
        assert_eq!(got, 2);
        let mut params = extract.params;
        params.push(SqlValue::Text("not json".into()));
        let got: Option<i64> = conn
            .query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
            .unwrap();
        assert_eq!(got, None);
    }
}
