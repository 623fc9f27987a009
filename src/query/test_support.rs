//! Shared test fixtures for the query module: a resolver for a fixed fake
//! schema and an in-memory SQLite table shaped like the reference's records.

use rusqlite::Connection;

use super::ast::{Identifier, Modifier};
use super::compile::{
    CompileOptions, Fragment, MultiMatch, NullFallback, Resolved, ResolvedExpr, Resolver, SqlValue,
};
use super::error::FilterError;

/// 2026-11-26 20:50:00.000Z, when the reference cases were recorded.
pub(crate) const RECORDED_AT: i64 = 1_795_726_200_000;

pub(crate) const OPTIONS: CompileOptions = CompileOptions {
    now_unix_millis: RECORDED_AT,
};

/// Knows a fixed schema: single columns on `[p]`, a JSON column, a
/// multi-valued `tags`/`wanted`/`dates` (JSON arrays joined by the caller as
/// `[tags_join]` etc.), and a few `@request` values.
#[derive(Default)]
pub(crate) struct FakeResolver {
    pub resolved: Vec<String>,
}

fn multi_valued(column: &str) -> Resolved {
    let each = format!("[{column}_each]");
    Resolved::Expr(ResolvedExpr {
        expr: Fragment::sql(format!("[{column}_join].[value]")),
        null_fallback: NullFallback::Auto,
        multi_match: Some(MultiMatch {
            value: Fragment::sql(format!("{each}.[value]")),
            source: Fragment::sql(format!("FROM json_each([p].[{column}]) {each}")),
        }),
        guard: None,
    })
}

impl Resolver for FakeResolver {
    fn resolve(&mut self, identifier: &Identifier) -> Result<Resolved, FilterError> {
        self.resolved.push(identifier.raw.clone());
        let path: Vec<&str> = identifier.path.iter().map(String::as_str).collect();
        let column = |name: &str| {
            Ok(Resolved::Expr(ResolvedExpr::column(format!(
                "[p].[{name}]"
            ))))
        };
        match (path.as_slice(), identifier.modifier) {
            (["title" | "views" | "flag" | "when" | "maybe"], None) => column(path[0]),
            (["title"], Some(Modifier::Lower)) => {
                Ok(Resolved::Expr(ResolvedExpr::column("LOWER([p].[title])")))
            }
            (["meta"], None) => Ok(Resolved::Expr(ResolvedExpr {
                expr: Fragment::with_params(
                    "JSON_EXTRACT([p].[meta], ?)",
                    vec![SqlValue::Text("$.n".into())],
                ),
                null_fallback: NullFallback::Disabled,
                multi_match: None,
                guard: None,
            })),
            (["tags" | "wanted" | "dates"], None) => Ok(multi_valued(path[0])),
            (["@request", "auth", "id"], None) => Ok(Resolved::Value(SqlValue::Text("u1".into()))),
            (["@request", "auth", "missing"], None) => Ok(Resolved::Value(SqlValue::Null)),
            (["@request", ..], _) => Err(FilterError::Forbidden(
                "Only superusers can filter by @request.".into(),
            )),
            _ => Err(FilterError::Invalid(format!(
                "unknown field {:?}",
                identifier.raw
            ))),
        }
    }
}

/// A table shaped like the reference's `posts` (non-null text with '' default),
/// plus a nullable column and JSON array columns for multi-value tests.
pub(crate) fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE posts (
            title TEXT DEFAULT '' NOT NULL,
            views NUMERIC DEFAULT 0 NOT NULL,
            flag BOOLEAN DEFAULT FALSE NOT NULL,
            [when] TEXT DEFAULT '' NOT NULL,
            maybe TEXT DEFAULT NULL,
            meta JSON DEFAULT NULL,
            tags JSON DEFAULT '[]' NOT NULL,
            wanted JSON DEFAULT '[]' NOT NULL,
            dates JSON DEFAULT '[]' NOT NULL
        );",
    )
    .unwrap();
    conn
}
