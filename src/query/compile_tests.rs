//! Tests of the compiler: the exact SQL and parameters per operator, and the
//! behaviour of that SQL on a real SQLite database — including the filters
//! recorded from the reference binary in `testdata/reference_filters.json`.

use std::collections::BTreeSet;

use rusqlite::{params_from_iter, Connection};

use super::*;
use crate::query::parser::parse;
use crate::query::test_support::{database, FakeResolver, OPTIONS};

fn compiled(filter: &str) -> CompiledFilter {
    let expr = parse(filter)
        .unwrap_or_else(|e| panic!("{filter:?} should parse: {e}"))
        .unwrap_or_else(|| panic!("{filter:?} is blank"));
    compile(&expr, &mut FakeResolver::default(), &OPTIONS)
        .unwrap_or_else(|e| panic!("{filter:?} should compile: {e}"))
}

fn compile_error(filter: &str) -> FilterError {
    let expr = parse(filter).unwrap().unwrap();
    match compile(&expr, &mut FakeResolver::default(), &OPTIONS) {
        Err(error) => error,
        Ok(sql) => panic!("{filter:?} should not compile, got {sql:?}"),
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn real(f: f64) -> SqlValue {
    SqlValue::Real(f)
}

/// Asserts the SQL and parameters of one filter.
fn assert_sql(filter: &str, sql: &str, params: &[SqlValue]) {
    let got = compiled(filter);
    assert_eq!(got.sql, sql, "SQL of {filter:?}");
    assert_eq!(got.params, params, "params of {filter:?}");
}

#[test]
fn ordering_operators() {
    assert_sql("views > 1", "([p].[views] > ?)", &[real(1.0)]);
    assert_sql("views >= -2.5", "([p].[views] >= ?)", &[real(-2.5)]);
    assert_sql("views < 'x'", "([p].[views] < ?)", &[text("x")]);
    assert_sql("views <= title", "([p].[views] <= [p].[title])", &[]);
    assert_sql("views > null", "([p].[views] > NULL)", &[]);
    assert_sql("views >= false", "([p].[views] >= 0)", &[]);
}

#[test]
fn equality_with_a_non_empty_value_compares_directly() {
    assert_sql("title = 'x'", "([p].[title] = ?)", &[text("x")]);
    assert_sql("'x' = title", "(? = [p].[title])", &[text("x")]);
    assert_sql("title != 'x'", "([p].[title] IS NOT ?)", &[text("x")]);
    assert_sql("views = 0", "([p].[views] = ?)", &[real(0.0)]);
    assert_sql("flag = true", "([p].[flag] = 1)", &[]);
    assert_sql("flag != false", "([p].[flag] IS NOT 0)", &[]);
}

#[test]
fn equality_with_empty_folds_null_and_empty_string() {
    assert_sql(
        "title = ''",
        "([p].[title] = '' OR [p].[title] IS NULL)",
        &[],
    );
    assert_sql(
        "title = null",
        "([p].[title] = '' OR [p].[title] IS NULL)",
        &[],
    );
    assert_sql(
        "null = title",
        "('' = [p].[title] OR [p].[title] IS NULL)",
        &[],
    );
    assert_sql(
        "title != ''",
        "([p].[title] IS NOT '' AND [p].[title] IS NOT NULL)",
        &[],
    );
    assert_sql(
        "'' != title",
        "('' IS NOT [p].[title] AND [p].[title] IS NOT NULL)",
        &[],
    );
}

#[test]
fn equality_between_literals() {
    assert_sql("'' = null", "('' = '')", &[]);
    assert_sql("null != ''", "('' IS NOT '')", &[]);
    assert_sql("1 = 1", "(? = ?)", &[real(1.0), real(1.0)]);
    assert_sql("'' = 1", "('' = ?)", &[real(1.0)]);
    assert_sql("true = null", "(1 = '')", &[]);
}

#[test]
fn equality_between_columns_uses_coalesce() {
    assert_sql(
        "title = maybe",
        "(COALESCE([p].[title], '') = COALESCE([p].[maybe], ''))",
        &[],
    );
    assert_sql(
        "title != maybe",
        "(COALESCE([p].[title], '') IS NOT COALESCE([p].[maybe], ''))",
        &[],
    );
}

#[test]
fn equality_without_null_fallback_uses_is() {
    let path = text("$.n");
    assert_sql(
        "meta = 1",
        "(JSON_EXTRACT([p].[meta], ?) IS ?)",
        &[path.clone(), real(1.0)],
    );
    assert_sql(
        "meta != null",
        "(JSON_EXTRACT([p].[meta], ?) IS NOT NULL)",
        std::slice::from_ref(&path),
    );
    assert_sql(
        "title = meta",
        "([p].[title] IS JSON_EXTRACT([p].[meta], ?))",
        &[path],
    );
}

#[test]
fn like_wraps_literals_and_escapes_wildcards() {
    assert_sql(
        "title ~ 'a_b'",
        r"([p].[title] LIKE ? ESCAPE '\')",
        &[text(r"%a\_b%")],
    );
    assert_sql(
        "title !~ 'x'",
        r"([p].[title] NOT LIKE ? ESCAPE '\')",
        &[text("%x%")],
    );
    assert_sql(
        "title ~ 'a%'",
        r"([p].[title] LIKE ? ESCAPE '\')",
        &[text("a%")],
    );
    // Numbers and macros are matched as their text.
    assert_sql(
        "views ~ 1.5",
        r"([p].[views] LIKE ? ESCAPE '\')",
        &[text("%1.5%")],
    );
    assert_sql(
        "views ~ 10",
        r"([p].[views] LIKE ? ESCAPE '\')",
        &[text("%10%")],
    );
    assert_sql(
        "title ~ @year",
        r"([p].[title] LIKE ? ESCAPE '\')",
        &[text("%2026%")],
    );
}

#[test]
fn like_against_columns_and_keywords_concatenates_in_sql() {
    assert_sql(
        "title ~ views",
        r"([p].[title] LIKE ('%' || [p].[views] || '%') ESCAPE '\')",
        &[],
    );
    assert_sql(
        "'abc' !~ title",
        r"(? NOT LIKE ('%' || [p].[title] || '%') ESCAPE '\')",
        &[text("abc")],
    );
    assert_sql(
        "title ~ null",
        r"([p].[title] LIKE ('%' || NULL || '%') ESCAPE '\')",
        &[],
    );
    assert_sql(
        "title ~ true",
        r"([p].[title] LIKE ('%' || 1 || '%') ESCAPE '\')",
        &[],
    );
}

#[test]
fn any_operators_on_single_values_behave_like_plain_ones() {
    for (any, plain) in [
        ("title ?= 'x'", "title = 'x'"),
        ("title ?!= ''", "title != ''"),
        ("title ?~ 'x'", "title ~ 'x'"),
        ("title ?!~ 'x'", "title !~ 'x'"),
        ("views ?> 1", "views > 1"),
        ("views ?>= 1", "views >= 1"),
        ("views ?< 1", "views < 1"),
        ("views ?<= 1", "views <= 1"),
    ] {
        assert_eq!(compiled(any), compiled(plain), "{any}");
    }
}

#[test]
fn and_or_keep_their_precedence_with_parentheses() {
    assert_sql(
        "views=1 || views=2 && views=3",
        "([p].[views] = ? OR ([p].[views] = ? AND [p].[views] = ?))",
        &[real(1.0), real(2.0), real(3.0)],
    );
    assert_sql(
        "(views=1 || views=2) && views=3",
        "(([p].[views] = ? OR [p].[views] = ?) AND [p].[views] = ?)",
        &[real(1.0), real(2.0), real(3.0)],
    );
}

#[test]
fn params_follow_placeholder_order() {
    let got = compiled("title = 'a' || (views > 2 && title ~ 'c') || meta = 'd'");
    assert_eq!(
        got.params,
        vec![text("a"), real(2.0), text("%c%"), text("$.n"), text("d")]
    );
    assert_eq!(got.sql.matches('?').count(), got.params.len());
}

#[test]
fn datetime_macros_are_bound_values() {
    assert_sql(
        "when > @now",
        "([p].[when] > ?)",
        &[text("2026-11-26 20:50:00.000Z")],
    );
    assert_sql(
        "when >= @todayStart && when <= @todayEnd",
        "([p].[when] >= ? AND [p].[when] <= ?)",
        &[
            text("2026-11-26 00:00:00.000Z"),
            text("2026-11-26 23:59:59.999Z"),
        ],
    );
    assert_sql(
        "@weekday = 4",
        "(? = ?)",
        &[SqlValue::Integer(4), real(4.0)],
    );
}

#[test]
fn macros_are_never_sent_to_the_resolver() {
    let expr = parse("@now > '2020' && @year > 2000 && title = 'x'")
        .unwrap()
        .unwrap();
    let mut resolver = FakeResolver::default();
    compile(&expr, &mut resolver, &OPTIONS).unwrap();
    assert_eq!(resolver.resolved, vec!["title"]);
}

#[test]
fn resolver_values_are_bound() {
    assert_sql(
        "@request.auth.id = 'u1'",
        "(? = ?)",
        &[text("u1"), text("u1")],
    );
    assert_sql(
        "title = @request.auth.id",
        "([p].[title] = ?)",
        &[text("u1")],
    );
    // A NULL value behaves as the `null` literal.
    assert_sql(
        "title = @request.auth.missing",
        "([p].[title] = '' OR [p].[title] IS NULL)",
        &[],
    );
}

#[test]
fn resolver_errors_pass_through() {
    assert_eq!(
        compile_error("@request.body.x = 1"),
        FilterError::Forbidden("Only superusers can filter by @request.".into())
    );
    assert!(matches!(
        compile_error("nope = 1"),
        FilterError::Invalid(message) if message.contains("nope")
    ));
}

#[test]
fn unknown_functions_are_rejected() {
    for filter in [
        "foo(1) = 1",
        "geodistance(1,2,3,4) = 1",
        "STRFTIME('%Y') = 1",
    ] {
        assert!(
            matches!(compile_error(filter), FilterError::Invalid(m) if m.contains("unknown function")),
            "{filter}"
        );
    }
}

#[test]
fn geo_distance_sql() {
    let got = compiled("geoDistance(views, flag, 1, 2) < 10");
    assert_eq!(
        got.sql,
        "((6371 * acos(max(-1, min(1, sin(radians([p].[flag])) * sin(radians(?)) \
         + cos(radians([p].[flag])) * cos(radians(?)) * cos(radians(?) - radians([p].[views])))))) < ?)"
    );
    assert_eq!(
        got.params,
        vec![real(2.0), real(2.0), real(1.0), real(10.0)]
    );
    // The result is a number: equality uses IS, without '' folding.
    assert!(compiled("geoDistance(1,2,3,4) = null")
        .sql
        .ends_with(" IS NULL)"));
}

#[test]
fn geo_distance_argument_rules() {
    for filter in [
        "geoDistance(1,2,3) < 1",
        "geoDistance(1,2,3,4,5) < 1",
        "geoDistance(1,2,3,'4') < 1",
        "geoDistance(1,2,3,geoDistance(1,2,3,4)) < 1",
    ] {
        assert!(
            matches!(compile_error(filter), FilterError::Invalid(_)),
            "{filter}"
        );
    }
    assert!(parse("geoDistance(null, true, @year, views) < 1").is_ok());
    compiled("geoDistance(null, true, @year, views) < 1");
}

#[test]
fn strftime_sql() {
    assert_sql(
        "strftime('%Y', when) = '2024'",
        "(strftime(?, [p].[when]) = ?)",
        &[text("%Y"), text("2024")],
    );
    assert_sql(
        "strftime('%Y') != ''",
        "(strftime(?) IS NOT '' AND strftime(?) IS NOT NULL)",
        &[text("%Y"), text("%Y")],
    );
    assert_sql(
        "strftime('%Y-%m', when, 'start of month', '+1 day') = ''",
        "(strftime(?, [p].[when], ?, ?) = '' OR strftime(?, [p].[when], ?, ?) IS NULL)",
        &[
            text("%Y-%m"),
            text("start of month"),
            text("+1 day"),
            text("%Y-%m"),
            text("start of month"),
            text("+1 day"),
        ],
    );
}

#[test]
fn strftime_argument_rules() {
    let eleven_args = format!("strftime('%Y', when{}) = ''", ", 'x'".repeat(9));
    for filter in [
        "strftime() = ''",
        "strftime(when) = ''",
        "strftime(1) = ''",
        "strftime('%Y', strftime('%Y')) = ''",
        "strftime('%Y', when, 1) = ''",
        "strftime('%Y', when, views) = ''",
        eleven_args.as_str(),
    ] {
        assert!(
            matches!(compile_error(filter), FilterError::Invalid(_)),
            "{filter}"
        );
    }
    let ten_args = format!("strftime('%Y', when{}) = ''", ", 'x'".repeat(8));
    compiled(&ten_args);
}

#[test]
fn every_element_constraint_for_plain_operators_on_multi_values() {
    assert_sql(
        "tags = 'x'",
        "([tags_join].[value] = ? AND NOT EXISTS (SELECT 1 FROM \
         (SELECT [tags_each].[value] AS [multiMatchValue] FROM json_each([p].[tags]) [tags_each]) [__mm1] \
         WHERE (NOT ([__mm1].[multiMatchValue] = ?))))",
        &[text("x"), text("x")],
    );
    assert_sql(
        "'x' != tags",
        "(? IS NOT [tags_join].[value] AND NOT EXISTS (SELECT 1 FROM \
         (SELECT [tags_each].[value] AS [multiMatchValue] FROM json_each([p].[tags]) [tags_each]) [__mm1] \
         WHERE (NOT (? IS NOT [__mm1].[multiMatchValue]))))",
        &[text("x"), text("x")],
    );
    // The `?` variants only need the joined column.
    assert_sql("tags ?= 'x'", "([tags_join].[value] = ?)", &[text("x")]);
}

#[test]
fn many_versus_many() {
    let got = compiled("tags = wanted");
    assert!(got
        .sql
        .contains("[__mm1] LEFT JOIN (SELECT [wanted_each].[value]"));
    assert!(got.sql.contains(
        "WHERE (NOT (COALESCE([__mm1].[multiMatchValue], '') = COALESCE([__mm2].[multiMatchValue], '')))"
    ));
    let got = compiled("tags > wanted");
    assert!(got
        .sql
        .ends_with("WHERE (NOT ([__mm1].[multiMatchValue] > [__mm2].[multiMatchValue]))))"));
}

/// Recorded from the reference binary: for a relation whose elements may
/// lack a value (`friends.team.title` with a friend without a team), a NULL
/// element never makes the plain operators fail; only a definite `false` does.
#[test]
fn null_elements_do_not_fail_the_every_element_check() {
    let conn = database();
    conn.execute_batch(
        r#"INSERT INTO posts (title, tags) VALUES ('with-null', '["b", null]'), ('only-a', '["a"]');"#,
    )
    .unwrap();
    assert_eq!(matching_titles(&conn, "tags > 'a'"), titles(&["with-null"]));
    assert_eq!(
        matching_titles(&conn, "tags != 'a'"),
        titles(&["with-null"])
    );
}

#[test]
fn guards_are_anded_after_the_comparison() {
    struct Guarded;
    impl Resolver for Guarded {
        fn resolve(&mut self, _: &Identifier) -> Result<Resolved, FilterError> {
            Ok(Resolved::Expr(ResolvedExpr {
                guard: Some(Fragment::with_params(
                    "[p].[flag] = ?",
                    vec![SqlValue::Integer(1)],
                )),
                ..ResolvedExpr::column("[p].[title]")
            }))
        }
    }
    let expr = crate::query::parse("title = 'x'").unwrap().unwrap();
    let got = compile(&expr, &mut Guarded, &OPTIONS).unwrap();
    assert_eq!(got.sql, "([p].[title] = ? AND [p].[flag] = ?)");
    assert_eq!(got.params, vec![text("x"), SqlValue::Integer(1)]);
}

#[test]
fn aliases_are_unique_per_filter() {
    let got = compiled("tags = 'a' && tags != 'b' && tags = wanted");
    for alias in ["[__mm1]", "[__mm2]", "[__mm3]", "[__mm4]"] {
        assert!(got.sql.contains(alias), "{alias} in {}", got.sql);
    }
    assert!(!got.sql.contains("[__mm5]"));
}

// ---------------------------------------------------------------------------
// Behaviour on a real SQLite database.

/// Titles of the rows matching `filter`, with every multi-valued column joined
/// the way a real resolver's caller would (LEFT JOIN + DISTINCT).
fn matching_titles(conn: &Connection, filter: &str) -> BTreeSet<String> {
    let where_sql = compiled(filter);
    let sql = format!(
        "SELECT DISTINCT [p].[title] FROM posts [p] \
         LEFT JOIN json_each([p].[tags]) [tags_join] \
         LEFT JOIN json_each([p].[wanted]) [wanted_join] \
         LEFT JOIN json_each([p].[dates]) [dates_join] \
         WHERE {}",
        where_sql.sql
    );
    let mut statement = conn
        .prepare(&sql)
        .unwrap_or_else(|e| panic!("{filter:?} → {sql}: {e}"));
    let rows = statement
        .query_map(params_from_iter(where_sql.params.iter()), |row| {
            row.get::<_, String>(0)
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn titles(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[derive(serde::Deserialize)]
struct ReferenceData {
    rows: Vec<ReferenceRow>,
    cases: Vec<ReferenceCase>,
}

#[derive(serde::Deserialize)]
struct ReferenceRow {
    title: String,
    views: f64,
    flag: bool,
    when: String,
}

#[derive(serde::Deserialize)]
struct ReferenceCase {
    filter: String,
    titles: Vec<String>,
}

#[test]
fn matches_what_the_reference_binary_returned() {
    let data: ReferenceData =
        serde_json::from_str(include_str!("testdata/reference_filters.json")).unwrap();
    let conn = database();
    for row in &data.rows {
        conn.execute(
            "INSERT INTO posts (title, views, flag, [when]) VALUES (?, ?, ?, ?)",
            rusqlite::params![row.title, row.views, row.flag, row.when],
        )
        .unwrap();
    }
    let mut failures = Vec::new();
    for case in &data.cases {
        let expected: BTreeSet<String> = case.titles.iter().cloned().collect();
        let got = matching_titles(&conn, &case.filter);
        if got != expected {
            failures.push(format!(
                "{:?}\n  reference: {expected:?}\n  ours:      {got:?}",
                case.filter
            ));
        }
    }
    assert!(data.cases.len() > 80);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn underscore_is_literal_even_when_doubled() {
    // Deliberate difference: the reference also returns "ax_b" here because it
    // leaves the first of two adjacent `_` unescaped.
    let conn = database();
    for title in ["a__b", "ax_b", "axxb"] {
        conn.execute("INSERT INTO posts (title) VALUES (?)", [title])
            .unwrap();
    }
    assert_eq!(matching_titles(&conn, "title ~ 'a__b'"), titles(&["a__b"]));
}

#[test]
fn not_equal_matches_null_columns() {
    let conn = database();
    conn.execute_batch(
        "INSERT INTO posts (title, maybe) VALUES
            ('null', NULL), ('empty', ''), ('x', 'x'), ('y', 'y'), ('', NULL);",
    )
    .unwrap();
    assert_eq!(
        matching_titles(&conn, "maybe != 'x'"),
        titles(&["null", "empty", "y", ""])
    );
    assert_eq!(
        matching_titles(&conn, "maybe = ''"),
        titles(&["null", "empty", ""])
    );
    assert_eq!(matching_titles(&conn, "maybe != null"), titles(&["x", "y"]));
    assert_eq!(
        matching_titles(&conn, "maybe = title"),
        titles(&["x", "y", ""]),
        "COALESCE makes NULL equal ''"
    );
}

#[test]
fn json_values_compare_with_is() {
    let conn = database();
    conn.execute_batch(
        r#"INSERT INTO posts (title, meta) VALUES ('one', '{"n":1}'), ('none', '{}'), ('nullmeta', NULL);"#,
    )
    .unwrap();
    assert_eq!(matching_titles(&conn, "meta = 1"), titles(&["one"]));
    assert_eq!(
        matching_titles(&conn, "meta = null"),
        titles(&["none", "nullmeta"])
    );
    assert_eq!(
        matching_titles(&conn, "meta != 1"),
        titles(&["none", "nullmeta"])
    );
}

fn multi_value_database() -> Connection {
    let conn = database();
    conn.execute_batch(
        r#"INSERT INTO posts (title, tags, wanted, dates) VALUES
            ('red+green', '["red","green"]', '["red"]', '["2024-01-02", "2023-05-06"]'),
            ('green', '["green"]', '["green"]', '["2024-07-08"]'),
            ('none', '[]', '[]', '[]'),
            ('blue', '["blue"]', '["red","blue"]', '["2024-01-01"]');"#,
    )
    .unwrap();
    conn
}

#[test]
fn plain_operators_require_every_element() {
    let conn = multi_value_database();
    assert_eq!(matching_titles(&conn, "tags = 'green'"), titles(&["green"]));
    assert_eq!(
        matching_titles(&conn, "tags != 'red'"),
        titles(&["green", "none", "blue"])
    );
    assert_eq!(
        matching_titles(&conn, "tags ~ 'e'"),
        titles(&["red+green", "green", "blue"])
    );
    assert_eq!(
        matching_titles(&conn, "tags > 'c'"),
        titles(&["red+green", "green"])
    );
}

#[test]
fn any_operators_require_one_element() {
    let conn = multi_value_database();
    assert_eq!(
        matching_titles(&conn, "tags ?= 'green'"),
        titles(&["red+green", "green"])
    );
    assert_eq!(
        matching_titles(&conn, "tags ?!= 'red'"),
        titles(&["red+green", "green", "none", "blue"])
    );
    assert_eq!(matching_titles(&conn, "tags ?~ 'bl'"), titles(&["blue"]));
}

#[test]
fn many_versus_many_requires_every_pair() {
    let conn = multi_value_database();
    // Two empty lists compare as '' = '' and have no failing pair.
    assert_eq!(
        matching_titles(&conn, "tags = wanted"),
        titles(&["green", "none"])
    );
    assert_eq!(
        matching_titles(&conn, "tags ?= wanted"),
        titles(&["red+green", "green", "none", "blue"])
    );
}

#[test]
fn strftime_applies_to_every_element() {
    let conn = multi_value_database();
    assert_eq!(
        matching_titles(&conn, "strftime('%Y', dates) = '2024'"),
        titles(&["green", "blue"])
    );
    assert_eq!(
        matching_titles(&conn, "strftime('%Y', dates) ?= '2023'"),
        titles(&["red+green"])
    );
}

#[test]
fn lower_modifier_via_resolver() {
    let conn = database();
    conn.execute("INSERT INTO posts (title) VALUES ('Post 1')", [])
        .unwrap();
    assert_eq!(
        matching_titles(&conn, "title:lower = 'post 1'"),
        titles(&["Post 1"])
    );
    assert!(matching_titles(&conn, "title = 'post 1'").is_empty());
}

#[test]
fn literal_text_never_reaches_the_sql() {
    let got = compiled(
        r#"title = "x' OR 1=1 --" || title ~ 'y"); DROP TABLE posts; --' || strftime("%Y' OR 1", when) = '1'"#,
    );
    assert!(!got.sql.contains("OR 1=1"));
    assert!(!got.sql.contains("DROP"));
    assert!(!got.sql.contains("OR 1'"));
    assert_eq!(got.sql.matches('?').count(), got.params.len());
}
