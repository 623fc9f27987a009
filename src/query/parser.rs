//! Builds the AST from tokens and enforces the size limits while doing so.
//!
//! Grammar (`&&` binds tighter than `||`):
//! ```text
//! filter     := or_expr?                      (blank or comment-only → None)
//! or_expr    := and_expr ("||" and_expr)*
//! and_expr   := primary ("&&" primary)*
//! primary    := "(" or_expr ")" | operand OPERATOR operand
//! operand    := IDENT | TEXT | NUMBER | true | false | null | call
//! call       := NAME "(" [operand ("," operand)*] ")"
//! ```
//! Recursion is bounded: every `(` and every nested call counts against
//! [`Limits::max_depth`] before descending, so hostile input such as five
//! thousand `(` ends in an error, never a stack overflow.

use super::ast::{Comparison, Expr, FunctionCall, Identifier, Operand};
use super::error::FilterError;
use super::lexer::{Lexer, Token, TokenKind};

/// Function calls nest at most this deep (`f(g(h(x)))`), as in the reference.
const MAX_FUNCTION_NESTING: usize = 3;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted input in bytes (the reference: 3500).
    pub max_bytes: usize,
    /// Most comparisons in one filter (the reference: 200).
    pub max_expressions: usize,
    /// Deepest parenthesis nesting. The reference has no explicit limit; ours
    /// keeps recursion (parser, compiler, drop) bounded.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 3500,
            max_expressions: 200,
            max_depth: 64,
        }
    }
}

/// Parses a filter with the default [`Limits`]. A blank or comment-only
/// filter is `Ok(None)`; note the reference answers 400 to a `filter` query
/// parameter that is non-empty but blank, so the caller decides what `None` means.
pub fn parse(input: &str) -> Result<Option<Expr>, FilterError> {
    parse_with_limits(input, &Limits::default())
}

/// Parses a filter with explicit limits.
pub fn parse_with_limits(input: &str, limits: &Limits) -> Result<Option<Expr>, FilterError> {
    if input.len() > limits.max_bytes {
        return Err(FilterError::TooLong {
            max_bytes: limits.max_bytes,
        });
    }
    let mut parser = Parser::new(input, *limits)?;
    if parser.peeked.is_none() {
        return Ok(None);
    }
    let expr = parser.or_expr(0)?;
    if let Some(token) = &parser.peeked {
        return Err(unexpected(token, "&& or || (or the end of the filter)"));
    }
    Ok(Some(expr))
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// One token of lookahead.
    peeked: Option<Token>,
    limits: Limits,
    comparisons: usize,
    input_len: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, limits: Limits) -> Result<Self, FilterError> {
        let mut lexer = Lexer::new(input);
        let peeked = lexer.next_token()?;
        Ok(Parser {
            lexer,
            peeked,
            limits,
            comparisons: 0,
            input_len: input.len(),
        })
    }

    fn advance(&mut self) -> Result<Option<Token>, FilterError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peeked, next))
    }

    /// Consumes the next token, or reports what was expected at the end of input.
    fn expect_token(&mut self, expected: &str) -> Result<Token, FilterError> {
        match self.advance()? {
            Some(token) => Ok(token),
            None => Err(FilterError::syntax(
                self.input_len,
                format!("expected {expected}, found the end of the filter"),
            )),
        }
    }

    fn next_is(&self, kind: &TokenKind) -> bool {
        matches!(&self.peeked, Some(token) if &token.kind == kind)
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut children = vec![self.and_expr(depth)?];
        while self.next_is(&TokenKind::Or) {
            self.advance()?;
            children.push(self.and_expr(depth)?);
        }
        Ok(collapse(children, Expr::Or))
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut children = vec![self.primary(depth)?];
        while self.next_is(&TokenKind::And) {
            self.advance()?;
            children.push(self.primary(depth)?);
        }
        Ok(collapse(children, Expr::And))
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        if self.next_is(&TokenKind::OpenParen) {
            return self.group(depth);
        }
        self.comparison(depth)
    }

    fn group(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let open = self.expect_token("(")?;
        if depth + 1 > self.limits.max_depth {
            return Err(FilterError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        if self.next_is(&TokenKind::CloseParen) {
            return Err(FilterError::syntax(open.at, "empty parentheses"));
        }
        let inner = self.or_expr(depth + 1)?;
        let close = self.expect_token(")")?;
        if close.kind != TokenKind::CloseParen {
            return Err(unexpected(&close, "&&, || or )"));
        }
        Ok(inner)
    }

    fn comparison(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let left = self.operand(depth, 0)?;
        let op_token = self.expect_token("an operator")?;
        let TokenKind::Operator(op) = op_token.kind else {
            return Err(unexpected(&op_token, "an operator such as = or ~"));
        };
        let right = self.operand(depth, 0)?;
        self.comparisons += 1;
        if self.comparisons > self.limits.max_expressions {
            return Err(FilterError::TooManyExpressions {
                max: self.limits.max_expressions,
            });
        }
        Ok(Expr::Compare(Comparison { left, op, right }))
    }

    /// `call_depth` counts enclosing function calls; `depth` the enclosing parentheses.
    fn operand(&mut self, depth: usize, call_depth: usize) -> Result<Operand, FilterError> {
        let token = self.expect_token("an operand")?;
        match token.kind {
            TokenKind::Identifier(raw) => identifier_operand(&raw, token.at),
            TokenKind::Text(value) => Ok(Operand::Text(value)),
            TokenKind::Number(value) => Ok(Operand::Number(value)),
            TokenKind::FunctionStart(name) => self.call(name, token.at, depth, call_depth + 1),
            _ => Err(unexpected(
                &token,
                "an operand (field, text, number or function)",
            )),
        }
    }

    fn call(
        &mut self,
        name: String,
        at: usize,
        depth: usize,
        call_depth: usize,
    ) -> Result<Operand, FilterError> {
        if call_depth > MAX_FUNCTION_NESTING {
            return Err(FilterError::syntax(
                at,
                format!("function calls nest at most {MAX_FUNCTION_NESTING} deep"),
            ));
        }
        if depth + call_depth > self.limits.max_depth {
            return Err(FilterError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        let mut args = Vec::new();
        if self.next_is(&TokenKind::CloseParen) {
            self.advance()?;
            return Ok(Operand::Function(FunctionCall { name, args }));
        }
        loop {
            args.push(self.operand(depth, call_depth)?);
            let separator = self.expect_token(", or )")?;
            match separator.kind {
                TokenKind::Comma => continue,
                TokenKind::CloseParen => break,
                _ => return Err(unexpected(&separator, ", or ) in the call")),
            }
        }
        Ok(Operand::Function(FunctionCall { name, args }))
    }
}

/// Parses one bare identifier, e.g. a `sort` key such as `author.name` or
/// `tags:length`. Anything else — several tokens, literals, calls,
/// operators — is an error, so a sort key can never smuggle in syntax.
pub fn parse_identifier(input: &str) -> Result<Identifier, FilterError> {
    if input.len() > Limits::default().max_bytes {
        return Err(FilterError::TooLong {
            max_bytes: Limits::default().max_bytes,
        });
    }
    let mut lexer = Lexer::new(input);
    let first = lexer.next_token()?;
    let rest = lexer.next_token()?;
    match (first, rest) {
        (Some(token), None) => match token.kind {
            TokenKind::Identifier(raw) => Identifier::from_raw(&raw).ok_or_else(|| {
                FilterError::syntax(token.at, format!("invalid identifier {raw:?}"))
            }),
            other => Err(FilterError::syntax(
                token.at,
                format!("expected a field name, found {}", describe(&other)),
            )),
        },
        (None, _) => Err(FilterError::syntax(0, "expected a field name")),
        (Some(_), Some(extra)) => Err(unexpected(&extra, "the end of the field name")),
    }
}

/// `true`, `false` and `null` in any letter case are literals; everything else is a path.
fn identifier_operand(raw: &str, at: usize) -> Result<Operand, FilterError> {
    if raw.eq_ignore_ascii_case("null") {
        return Ok(Operand::Null);
    }
    if raw.eq_ignore_ascii_case("true") {
        return Ok(Operand::Bool(true));
    }
    if raw.eq_ignore_ascii_case("false") {
        return Ok(Operand::Bool(false));
    }
    Identifier::from_raw(raw)
        .map(Operand::Identifier)
        .ok_or_else(|| FilterError::syntax(at, format!("invalid identifier {raw:?}")))
}

/// A list of one is just that child; parentheses around a single comparison
/// add nothing to the tree.
fn collapse(mut children: Vec<Expr>, group: fn(Vec<Expr>) -> Expr) -> Expr {
    if children.len() == 1 {
        if let Some(only) = children.pop() {
            return only;
        }
    }
    group(children)
}

fn describe(kind: &TokenKind) -> String {
    match kind {
        TokenKind::Identifier(raw) => format!("{raw:?}"),
        TokenKind::FunctionStart(name) => format!("function {name:?}"),
        TokenKind::Text(_) => "quoted text".to_owned(),
        TokenKind::Number(_) => "a number".to_owned(),
        TokenKind::Operator(_) => "an operator".to_owned(),
        TokenKind::And => "&&".to_owned(),
        TokenKind::Or => "||".to_owned(),
        TokenKind::OpenParen => "(".to_owned(),
        TokenKind::CloseParen => ")".to_owned(),
        TokenKind::Comma => ",".to_owned(),
    }
}

fn unexpected(token: &Token, expected: &str) -> FilterError {
    FilterError::syntax(
        token.at,
        format!("expected {expected}, found {}", describe(&token.kind)),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_identifier_accepts_one_identifier_only() {
        let id = super::parse_identifier("author.name:lower").unwrap();
        assert_eq!(id.path, vec!["author", "name"]);
        for bad in [
            "", " ", "a b", "a = 1", "'a'", "1", "f(x)", "a,b", "-a", "a;", "a--", "a)",
        ] {
            assert!(super::parse_identifier(bad).is_err(), "{bad:?}");
        }
        // Keywords of SQL are plain names here; the resolver decides.
        assert_eq!(
            super::parse_identifier("select").unwrap().path,
            vec!["select"]
        );
    }

    use super::*;
    use crate::query::ast::{Op, OpKind};

    fn parsed(src: &str) -> Expr {
        match parse(src) {
            Ok(Some(expr)) => expr,
            other => panic!("{src:?} should parse, got {other:?}"),
        }
    }

    fn ident(raw: &str) -> Operand {
        Operand::Identifier(Identifier::from_raw(raw).unwrap())
    }

    fn cmp(left: Operand, symbol: &str, right: Operand) -> Expr {
        Expr::Compare(Comparison {
            left,
            op: Op::from_symbol(symbol).unwrap(),
            right,
        })
    }

    fn eq_num(field: &str, n: f64) -> Expr {
        cmp(ident(field), "=", Operand::Number(n))
    }

    fn syntax_message(src: &str) -> String {
        match parse(src) {
            Err(FilterError::Syntax { message, .. }) => message,
            other => panic!("expected a syntax error for {src:?}, got {other:?}"),
        }
    }

    #[test]
    fn single_comparison() {
        assert_eq!(
            parsed("title = 'x'"),
            cmp(ident("title"), "=", Operand::Text("x".into()))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            parsed("a=1 || b=2 && c=3"),
            Expr::Or(vec![
                eq_num("a", 1.0),
                Expr::And(vec![eq_num("b", 2.0), eq_num("c", 3.0)]),
            ])
        );
        assert_eq!(
            parsed("a=1 && b=2 || c=3"),
            Expr::Or(vec![
                Expr::And(vec![eq_num("a", 1.0), eq_num("b", 2.0)]),
                eq_num("c", 3.0),
            ])
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(
            parsed("(a=1 || b=2) && c=3"),
            Expr::And(vec![
                Expr::Or(vec![eq_num("a", 1.0), eq_num("b", 2.0)]),
                eq_num("c", 3.0),
            ])
        );
    }

    #[test]
    fn redundant_parentheses_collapse() {
        assert_eq!(parsed("((((a=1))))"), eq_num("a", 1.0));
    }

    #[test]
    fn chains_stay_flat() {
        assert_eq!(
            parsed("a=1 && b=2 && c=3"),
            Expr::And(vec![eq_num("a", 1.0), eq_num("b", 2.0), eq_num("c", 3.0)])
        );
    }

    #[test]
    fn literals_on_either_side() {
        assert_eq!(
            parsed("'1' = title"),
            cmp(Operand::Text("1".into()), "=", ident("title"))
        );
        assert_eq!(
            parsed("1 = 1"),
            cmp(Operand::Number(1.0), "=", Operand::Number(1.0))
        );
    }

    #[test]
    fn keywords_in_any_case() {
        assert_eq!(
            parsed("a = NULL && b != True && c = false"),
            Expr::And(vec![
                cmp(ident("a"), "=", Operand::Null),
                cmp(ident("b"), "!=", Operand::Bool(true)),
                cmp(ident("c"), "=", Operand::Bool(false)),
            ])
        );
        // Only the whole word is a keyword.
        assert_eq!(
            parsed("nullable = 1"),
            cmp(ident("nullable"), "=", Operand::Number(1.0))
        );
    }

    #[test]
    fn any_operators() {
        let Expr::Compare(c) = parsed("tags.label ?!~ 'x'") else {
            panic!()
        };
        assert_eq!(
            c.op,
            Op {
                kind: OpKind::NotLike,
                any: true
            }
        );
    }

    #[test]
    fn function_calls() {
        assert_eq!(
            parsed("geoDistance(loc.lon, loc.lat, -1.5, 2) < 25"),
            cmp(
                Operand::Function(FunctionCall {
                    name: "geoDistance".into(),
                    args: vec![
                        ident("loc.lon"),
                        ident("loc.lat"),
                        Operand::Number(-1.5),
                        Operand::Number(2.0)
                    ],
                }),
                "<",
                Operand::Number(25.0)
            )
        );
        assert_eq!(
            parsed("strftime('%Y', created // the year\n) = '2024'"),
            cmp(
                Operand::Function(FunctionCall {
                    name: "strftime".into(),
                    args: vec![Operand::Text("%Y".into()), ident("created")],
                }),
                "=",
                Operand::Text("2024".into())
            )
        );
        assert_eq!(
            parsed("f() = 1"),
            cmp(
                Operand::Function(FunctionCall {
                    name: "f".into(),
                    args: vec![]
                }),
                "=",
                Operand::Number(1.0)
            )
        );
    }

    #[test]
    fn function_nesting_limit() {
        assert!(parse("f(g(h(1))) = 1").is_ok());
        assert!(syntax_message("f(g(h(i(1)))) = 1").contains("nest"));
    }

    #[test]
    fn malformed_calls() {
        for src in [
            "f(1,) = 1",
            "f(,1) = 1",
            "f(1 2) = 1",
            "f(1 = 1",
            "f((1)) = 1",
            "f(a = 1) = 1",
        ] {
            assert!(parse(src).is_err(), "{src}");
        }
    }

    #[test]
    fn comments_anywhere() {
        assert_eq!(
            parsed("// leading\na = 1 // trailing\n|| b = 2 // end"),
            Expr::Or(vec![eq_num("a", 1.0), eq_num("b", 2.0)])
        );
    }

    #[test]
    fn blank_input_is_none() {
        for src in ["", "   ", "\n\t", "// nothing here", "  // a\n // b\n"] {
            assert_eq!(parse(src), Ok(None), "{src:?}");
        }
    }

    #[test]
    fn words_and_or_are_rejected() {
        assert!(parse("a = 1 and b = 2").is_err());
        assert!(parse("a = 1 or b = 2").is_err());
        assert!(parse("a = 1 AND b = 2").is_err());
    }

    #[test]
    fn dangling_operators() {
        for src in [
            "title",
            "title =",
            "= 1",
            "a = 1 &&",
            "&& a = 1",
            "a = 1 ||",
            "a = 1 && || b = 2",
            "a = = 1",
            "a = 1 = 2",
            "a = 1 b = 2",
        ] {
            assert!(
                matches!(parse(src), Err(FilterError::Syntax { .. })),
                "{src}"
            );
        }
    }

    #[test]
    fn unbalanced_and_empty_parentheses() {
        for src in ["(a = 1", "a = 1)", "((a = 1)", "(a = 1))", ")", "("] {
            assert!(
                matches!(parse(src), Err(FilterError::Syntax { .. })),
                "{src}"
            );
        }
        for src in [
            "()",
            "(())",
            "() && a = 1",
            "a = 1 && ()",
            "a = 1 || (b = 2 || ())",
        ] {
            assert!(
                syntax_message(src).contains("empty parentheses") || parse(src).is_err(),
                "{src}"
            );
        }
        assert!(syntax_message("()").contains("empty parentheses"));
    }

    #[test]
    fn adjacent_groups_need_a_join() {
        // The reference silently accepts these (and even drops `title` in the
        // second); we refuse them rather than guess.
        assert!(parse("a = 1 (b = 2)").is_err());
        assert!(parse("title = (views = 1)").is_err());
    }

    #[test]
    fn invalid_identifier_segments() {
        assert!(syntax_message("a..b = 1").contains("invalid identifier"));
    }

    #[test]
    fn length_limit_is_in_bytes() {
        let base = "a = 1 //";
        let ok = format!("{base}{}", "x".repeat(3500 - base.len()));
        assert!(parse(&ok).is_ok());
        let too_long = format!("{ok}x");
        assert_eq!(
            parse(&too_long),
            Err(FilterError::TooLong { max_bytes: 3500 })
        );
        // 'é' is two bytes: 1750 characters of it fill the limit.
        let multibyte = format!("{base}{}", "é".repeat(1747));
        assert!(multibyte.len() > 3500 && multibyte.chars().count() < 3500);
        assert!(matches!(
            parse(&multibyte),
            Err(FilterError::TooLong { .. })
        ));
    }

    #[test]
    fn expression_limit() {
        let two_hundred = vec!["a = 1"; 200].join(" || ");
        assert!(parse(&two_hundred).is_ok());
        let too_many = vec!["a=1"; 201].join("||");
        assert_eq!(
            parse(&too_many),
            Err(FilterError::TooManyExpressions { max: 200 })
        );
    }

    #[test]
    fn nesting_limit() {
        let at_limit = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
        assert!(parse(&at_limit).is_ok());
        let too_deep = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
        assert_eq!(parse(&too_deep), Err(FilterError::TooDeep { max: 64 }));
    }

    #[test]
    fn hostile_parentheses_do_not_overflow_the_stack() {
        let unlimited = Limits {
            max_bytes: usize::MAX,
            ..Limits::default()
        };
        for n in [2000, 5000, 100_000] {
            let opens = "(".repeat(n);
            assert_eq!(
                parse_with_limits(&opens, &unlimited),
                Err(FilterError::TooDeep { max: 64 })
            );
            let balanced = format!("{opens}a = 1{}", ")".repeat(n));
            assert_eq!(
                parse_with_limits(&balanced, &unlimited),
                Err(FilterError::TooDeep { max: 64 })
            );
        }
        // Within the default byte limit 2000 `(` fail on length first.
        assert_eq!(
            parse(&"(".repeat(2000)),
            Err(FilterError::TooDeep { max: 64 })
        );
        assert_eq!(
            parse(&"(".repeat(5000)),
            Err(FilterError::TooLong { max_bytes: 3500 })
        );
    }

    #[test]
    fn custom_limits() {
        let tight = Limits {
            max_bytes: 10,
            max_expressions: 1,
            max_depth: 1,
        };
        assert_eq!(
            parse_with_limits("a=1||b=2", &tight),
            Err(FilterError::TooManyExpressions { max: 1 })
        );
        assert_eq!(
            parse_with_limits("((a=1))", &tight),
            Err(FilterError::TooDeep { max: 1 })
        );
        assert_eq!(
            parse_with_limits("aaaaa = 1234", &tight),
            Err(FilterError::TooLong { max_bytes: 10 })
        );
    }

    #[test]
    fn error_messages_are_human() {
        let message = syntax_message("a = 1 and b = 2");
        assert!(message.contains("\"and\""), "{message}");
        let message = parse("title = 'x").unwrap_err().to_string();
        assert!(message.contains("unterminated"), "{message}");
    }
}
