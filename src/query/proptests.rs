//! Property tests: whatever the input, parsing and compiling never panic, and
//! text from the input never becomes SQL text — every literal is a parameter.

use proptest::prelude::*;
use rusqlite::Connection;

use super::compile::{compile, CompiledFilter};
use super::parser::parse;
use super::test_support::{database, FakeResolver, OPTIONS};

/// Appears in every generated string literal, and nowhere in the SQL the
/// compiler or the fake resolver write on their own.
const MARKER: &str = "ZQX";

fn parse_and_compile(input: &str) -> Option<CompiledFilter> {
    let expr = parse(input).ok()??;
    compile(&expr, &mut FakeResolver::default(), &OPTIONS).ok()
}

/// The compiler's own quoted fragments; after removing them no quote may remain.
fn without_own_literals(sql: &str) -> String {
    sql.replace("ESCAPE '\\'", "")
        .replace("'%'", "")
        .replace("''", "")
}

fn assert_safe_sql(compiled: &CompiledFilter) {
    let rest = without_own_literals(&compiled.sql);
    assert!(
        !rest.contains('\'') && !rest.contains('"') && !rest.contains(MARKER),
        "input text reached the SQL: {}",
        compiled.sql
    );
    assert_eq!(
        compiled.sql.matches('?').count(),
        compiled.params.len(),
        "placeholders vs params in {}",
        compiled.sql
    );
}

/// The SQL must be valid for SQLite (the bundled build has the math
/// functions `geoDistance` uses; `records::filter` runs it on data).
fn assert_prepares(conn: &Connection, compiled: &CompiledFilter) {
    let sql = format!(
        "SELECT 1 FROM posts [p] \
         LEFT JOIN json_each([p].[tags]) [tags_join] \
         LEFT JOIN json_each([p].[wanted]) [wanted_join] \
         LEFT JOIN json_each([p].[dates]) [dates_join] WHERE {}",
        compiled.sql
    );
    if let Err(error) = conn.prepare(&sql) {
        panic!("invalid SQL ({error}): {sql}");
    }
}

/// A quoted literal holding the marker and awkward characters, escaped so the
/// lexer reads back exactly `content`.
fn quoted_literal() -> impl Strategy<Value = String> {
    (
        "[a-z0-9 '\"%_\\\\;()-]{0,6}",
        "[a-z0-9 '\"%_\\\\;()-]{0,6}",
        prop::bool::ANY,
    )
        .prop_map(|(before, after, single)| {
            let quote = if single { '\'' } else { '"' };
            let content = format!("{before}{MARKER}{after}");
            let mut literal = String::from(quote);
            for c in content.chars() {
                if c == '\\' || c == quote {
                    literal.push('\\');
                }
                literal.push(c);
            }
            literal.push(quote);
            literal
        })
}

fn token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "title",
        "views",
        "flag",
        "when",
        "maybe",
        "meta",
        "tags",
        "wanted",
        "dates",
        "nope",
        "title:lower",
        "tags:each",
        "@now",
        "@year",
        "@todayEnd",
        "@request.auth.id",
        "@request.body.x",
        "null",
        "TRUE",
        "false",
        "and",
        "or",
        "=",
        "!=",
        "~",
        "!~",
        "<",
        "<=",
        ">",
        ">=",
        "?=",
        "?!=",
        "?~",
        "?!~",
        "?<",
        "?<=",
        "?>",
        "?>=",
        "==",
        "<>",
        "&&",
        "||",
        "&",
        "(",
        ")",
        ",",
        "geoDistance(",
        "strftime(",
        "foo(",
        "1",
        "-2.5",
        "0",
        "'%Y'",
        "// note\n",
        "/",
        "\r",
        "é",
    ])
    .prop_map(str::to_owned);
    prop_oneof![4 => fixed, 1 => quoted_literal()]
}

/// A syntactically valid filter built from comparisons, joins and parentheses.
fn valid_filter() -> impl Strategy<Value = String> {
    let operand = prop_oneof![
        prop::sample::select(vec![
            "title",
            "views",
            "maybe",
            "meta",
            "tags",
            "wanted",
            "dates",
            "@now",
            "@day",
            "null",
            "true",
            "-1.5",
            "42",
            "strftime('%Y', dates)",
            "strftime('%m')",
        ])
        .prop_map(str::to_owned),
        quoted_literal(),
    ];
    let op = prop::sample::select(vec![
        "=", "!=", "~", "!~", "<", "<=", ">", ">=", "?=", "?!=", "?~", "?!~", "?<", "?<=", "?>",
        "?>=",
    ]);
    let comparison =
        (operand.clone(), op, operand).prop_map(|(left, op, right)| format!("{left} {op} {right}"));
    comparison.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(input in "\\PC{0,200}") {
        if let Some(compiled) = parse_and_compile(&input) {
            assert_eq!(compiled.sql.matches('?').count(), compiled.params.len());
        }
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(input in prop::collection::vec(any::<char>(), 0..300)) {
        let input: String = input.into_iter().collect();
        let _ = parse_and_compile(&input);
    }

    #[test]
    fn token_soup_never_leaks_literals(tokens in prop::collection::vec(token(), 0..16)) {
        let input = tokens.join(" ");
        if let Some(compiled) = parse_and_compile(&input) {
            assert_safe_sql(&compiled);
            assert_prepares(&database(), &compiled);
        }
    }

    #[test]
    fn valid_filters_compile_to_valid_sql(filter in valid_filter()) {
        let expr = parse(&filter);
        prop_assert!(matches!(expr, Ok(Some(_))), "{filter:?}: {expr:?}");
        let compiled = parse_and_compile(&filter);
        prop_assert!(compiled.is_some(), "{filter:?} did not compile");
        if let Some(compiled) = compiled {
            assert_safe_sql(&compiled);
            assert_prepares(&database(), &compiled);
        }
    }
}

/// The long fuzz run: arbitrary text, token soup and valid filters through
/// parse + compile + SQLite's prepare, for `QUERY_FUZZ_SECONDS` (default 60)
/// or `QUERY_FUZZ_CASES` inputs, whichever ends first; prints how many
/// inputs it tried. Run with
/// `QUERY_FUZZ_SECONDS=600 cargo test --release --lib long_fuzz -- --ignored --nocapture`.
#[test]
#[ignore = "long-running; run explicitly"]
fn long_fuzz_of_parse_and_compile() {
    use proptest::test_runner::{Config, TestRunner};
    use std::time::{Duration, Instant};

    let env_number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let budget = Duration::from_secs(env_number("QUERY_FUZZ_SECONDS", 60));
    let max_cases = env_number("QUERY_FUZZ_CASES", u64::MAX);
    let inputs = prop_oneof![
        "\\PC{0,200}",
        prop::collection::vec(token(), 0..24).prop_map(|tokens| tokens.join(" ")),
        valid_filter(),
    ];
    let conn = database();
    let started = Instant::now();
    let mut tried: u64 = 0;
    let mut compiled: u64 = 0;
    let batch: u32 = 5_000;
    while started.elapsed() < budget && tried < max_cases {
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            ..Config::default()
        });
        let compiled_in_batch = std::cell::Cell::new(0u64);
        let result = runner.run(&inputs, |input| {
            if let Some(filter) = parse_and_compile(&input) {
                assert_safe_sql(&filter);
                assert_prepares(&conn, &filter);
                compiled_in_batch.set(compiled_in_batch.get() + 1);
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("after {tried} inputs: {failure}");
        }
        tried += u64::from(batch);
        compiled += compiled_in_batch.get();
    }
    println!(
        "long fuzz: {tried} inputs ({compiled} compiled to SQL) in {:.0?}",
        started.elapsed()
    );
}
