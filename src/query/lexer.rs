//! Turns filter text into tokens, one at a time, without recursion.
//!
//! The character rules follow the reference grammar (`fexpr`): whitespace is
//! only space, tab and newline; identifiers start with a letter, `_`, `@` or
//! `#` and continue with letters, digits, `_`, `.` and `:`; an identifier
//! directly followed by `(` starts a function call; numbers are `-?digits[.digits]`
//! (no exponent); a run of operator characters must spell one operator
//! exactly; `//` starts a comment up to the end of the line. Words such as
//! `and`/`or` are plain identifiers here, so the parser rejects them.

use super::ast::Op;
use super::error::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Identifier(String),
    /// An identifier immediately followed by `(`; the parenthesis is consumed.
    FunctionStart(String),
    Text(String),
    Number(f64),
    Operator(Op),
    And,
    Or,
    OpenParen,
    CloseParen,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offset of the token's first character, for error messages.
    pub at: usize,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_whitespace(c: char) -> bool {
    // `\r` is deliberately absent: the reference rejects it.
    matches!(c, ' ' | '\t' | '\n')
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '_' | '@' | '#')
}

fn is_identifier_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '?' | '!' | '>' | '<' | '~')
}

fn is_join_char(c: char) -> bool {
    matches!(c, '&' | '|')
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    /// The next token, `Ok(None)` at the end of input.
    pub fn next_token(&mut self) -> Result<Option<Token>, FilterError> {
        self.skip_trivia()?;
        let at = self.pos;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let kind = match c {
            '(' => self.single(TokenKind::OpenParen),
            ')' => self.single(TokenKind::CloseParen),
            ',' => self.single(TokenKind::Comma),
            '\'' | '"' => self.text()?,
            '-' | '0'..='9' => self.number()?,
            c if is_identifier_start(c) => self.identifier()?,
            c if is_operator_char(c) => self.operator()?,
            c if is_join_char(c) => self.join()?,
            other => {
                return Err(FilterError::syntax(
                    at,
                    format!("unexpected character {other:?}"),
                ))
            }
        };
        Ok(Some(Token { kind, at }))
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.bump();
        kind
    }

    /// Consumes the longest run of characters matching `keep` and returns it.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    /// Skips whitespace and `//` comments. A lone `/` is an error.
    fn skip_trivia(&mut self) -> Result<(), FilterError> {
        loop {
            match self.peek() {
                Some(c) if is_whitespace(c) => {
                    self.take_while(is_whitespace);
                }
                Some('/') => {
                    if self.peek_second() != Some('/') {
                        return Err(FilterError::syntax(self.pos, "a comment starts with //"));
                    }
                    self.take_while(|c| c != '\n');
                }
                _ => return Ok(()),
            }
        }
    }

    /// A quoted string. Escapes: `\\`, `\'`, `\"`, `\n`, `\t`, `\r`; any other
    /// backslash pair is kept as written (the reference does the same).
    fn text(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        let quote = self.bump().unwrap_or('"');
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err(FilterError::syntax(start, "unterminated quoted text")),
                Some(c) if c == quote => return Ok(TokenKind::Text(value)),
                Some('\\') => match self.bump() {
                    None => return Err(FilterError::syntax(start, "unterminated quoted text")),
                    Some(escaped) => push_escape(&mut value, escaped),
                },
                Some(c) => value.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.bump();
        }
        let integer = self.take_while(|c| c.is_ascii_digit());
        let mut fraction = "";
        if self.peek() == Some('.') {
            self.bump();
            fraction = self.take_while(|c| c.is_ascii_digit());
            if fraction.is_empty() {
                return Err(self.invalid_number(start));
            }
        }
        // `-.5` is accepted by the reference; `-` alone and `1.` are not.
        if integer.is_empty() && fraction.is_empty() {
            return Err(self.invalid_number(start));
        }
        let literal = &self.src[start..self.pos];
        match literal.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(TokenKind::Number(value)),
            _ => Err(self.invalid_number(start)),
        }
    }

    fn invalid_number(&self, start: usize) -> FilterError {
        let end = (self.pos + 1).min(self.src.len());
        let shown = self.src.get(start..end).unwrap_or("");
        FilterError::syntax(start, format!("invalid number {shown:?}"))
    }

    fn identifier(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        self.bump();
        self.take_while(is_identifier_continue);
        let literal = &self.src[start..self.pos];
        if !is_valid_identifier(literal) {
            return Err(FilterError::syntax(
                start,
                format!("invalid identifier {literal:?}"),
            ));
        }
        if self.peek() == Some('(') {
            self.bump();
            return Ok(TokenKind::FunctionStart(literal.to_owned()));
        }
        Ok(TokenKind::Identifier(literal.to_owned()))
    }

    fn operator(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        let symbol = self.take_while(is_operator_char);
        Op::from_symbol(symbol)
            .map(TokenKind::Operator)
            .ok_or_else(|| FilterError::syntax(start, format!("unknown operator {symbol:?}")))
    }

    fn join(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        match self.take_while(is_join_char) {
            "&&" => Ok(TokenKind::And),
            "||" => Ok(TokenKind::Or),
            other => Err(FilterError::syntax(
                start,
                format!("unknown operator {other:?} (use && or ||)"),
            )),
        }
    }
}

fn push_escape(value: &mut String, escaped: char) {
    match escaped {
        'n' => value.push('\n'),
        't' => value.push('\t'),
        'r' => value.push('\r'),
        '\\' | '\'' | '"' => value.push(escaped),
        other => {
            value.push('\\');
            value.push(other);
        }
    }
}

/// Must not end with `.`/`:` and must not be a lone special start character.
fn is_valid_identifier(literal: &str) -> bool {
    let ends_with_separator = literal.ends_with(['.', ':']);
    let lone_special = matches!(literal, "_" | "@" | "#");
    !ends_with_separator && !lone_special
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::OpKind;

    fn kinds(src: &str) -> Result<Vec<TokenKind>, FilterError> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        while let Some(token) = lexer.next_token()? {
            out.push(token.kind);
        }
        Ok(out)
    }

    fn ident(s: &str) -> TokenKind {
        TokenKind::Identifier(s.to_owned())
    }

    fn text(s: &str) -> TokenKind {
        TokenKind::Text(s.to_owned())
    }

    fn op(kind: OpKind, any: bool) -> TokenKind {
        TokenKind::Operator(Op { kind, any })
    }

    fn syntax_error(src: &str) -> String {
        match kinds(src) {
            Err(FilterError::Syntax { message, .. }) => message,
            other => panic!("expected a syntax error for {src:?}, got {other:?}"),
        }
    }

    #[test]
    fn identifiers_of_every_shape() {
        for raw in [
            "title",
            "author.name",
            "meta.arr.0",
            "tags:length",
            "@request.auth.id",
            "@collection.posts:alias.title",
            "_private",
            "#hash",
            "a1_b2",
        ] {
            assert_eq!(kinds(raw).unwrap(), vec![ident(raw)], "{raw}");
        }
    }

    #[test]
    fn invalid_identifiers() {
        for raw in ["title.", "title:", "@", "_", "#"] {
            assert!(syntax_error(raw).contains("invalid identifier"), "{raw}");
        }
    }

    #[test]
    fn identifier_stops_at_characters_it_cannot_hold() {
        assert_eq!(
            kinds("a@b").unwrap(),
            vec![ident("a"), ident("@b")],
            "@ is only a start character"
        );
    }

    #[test]
    fn texts_in_both_quote_styles_with_escapes() {
        assert_eq!(kinds(r#""a \"b\" c""#).unwrap(), vec![text(r#"a "b" c"#)]);
        assert_eq!(kinds(r"'O\'Reilly'").unwrap(), vec![text("O'Reilly")]);
        assert_eq!(kinds(r#"'say "hi"'"#).unwrap(), vec![text(r#"say "hi""#)]);
        assert_eq!(kinds(r#""it's""#).unwrap(), vec![text("it's")]);
        // The other quote may be escaped too.
        assert_eq!(kinds(r#"'q\"q'"#).unwrap(), vec![text(r#"q"q"#)]);
        assert_eq!(kinds(r#""q\'q""#).unwrap(), vec![text("q'q")]);
    }

    #[test]
    fn backslash_escapes_match_the_reference() {
        assert_eq!(kinds(r#""a\\b""#).unwrap(), vec![text(r"a\b")]);
        assert_eq!(kinds(r#""a\nb""#).unwrap(), vec![text("a\nb")]);
        assert_eq!(kinds(r#""a\tb""#).unwrap(), vec![text("a\tb")]);
        assert_eq!(kinds(r#""a\rb""#).unwrap(), vec![text("a\rb")]);
        // Unknown escapes are kept as written.
        assert_eq!(kinds(r#""a\bc""#).unwrap(), vec![text(r"a\bc")]);
        assert_eq!(kinds(r#""\u0041""#).unwrap(), vec![text(r"\u0041")]);
        // An escaped backslash right before the closing quote ends the string.
        assert_eq!(kinds(r#""x\\""#).unwrap(), vec![text(r"x\")]);
    }

    #[test]
    fn empty_and_unicode_texts() {
        assert_eq!(kinds("''").unwrap(), vec![text("")]);
        assert_eq!(kinds("\"héllo ✓\"").unwrap(), vec![text("héllo ✓")]);
    }

    #[test]
    fn unterminated_texts() {
        for src in ["'abc", "\"abc", r"'abc\'", r#""x\""#, "'", r"'\"] {
            assert!(syntax_error(src).contains("unterminated"), "{src}");
        }
    }

    #[test]
    fn numbers() {
        let cases = [
            ("0", 0.0),
            ("123", 123.0),
            ("10.50", 10.5),
            ("-14", -14.0),
            ("-0.25", -0.25),
            ("007", 7.0),
            ("-.5", -0.5),
        ];
        for (src, value) in cases {
            assert_eq!(kinds(src).unwrap(), vec![TokenKind::Number(value)], "{src}");
        }
    }

    #[test]
    fn invalid_numbers() {
        for src in ["1.", "-", "--1", "-x", "1.e3", "-."] {
            assert!(syntax_error(src).contains("invalid number"), "{src}");
        }
        // `.5` and `1e3` fail on the character after the number instead.
        assert!(kinds(".5").is_err());
        assert!(kinds("1.2.3").is_err());
    }

    #[test]
    fn number_then_word_is_two_tokens() {
        assert_eq!(
            kinds("1e3").unwrap(),
            vec![TokenKind::Number(1.0), ident("e3")]
        );
    }

    #[test]
    fn every_operator() {
        let src = "= != ~ !~ < <= > >= ?= ?!= ?~ ?!~ ?< ?<= ?> ?>=";
        let expected: Vec<TokenKind> = src
            .split(' ')
            .map(|s| TokenKind::Operator(Op::from_symbol(s).unwrap()))
            .collect();
        assert_eq!(kinds(src).unwrap(), expected);
    }

    #[test]
    fn operators_need_no_spaces() {
        assert_eq!(
            kinds("views>=-1").unwrap(),
            vec![
                ident("views"),
                op(OpKind::Gte, false),
                TokenKind::Number(-1.0)
            ]
        );
    }

    #[test]
    fn unknown_operators() {
        for src in ["a == 1", "a =! 1", "a <> 1", "a ?? 1", "a ! 1", "a ? 1"] {
            assert!(syntax_error(src).contains("unknown operator"), "{src}");
        }
    }

    #[test]
    fn joins() {
        assert_eq!(kinds("&& ||").unwrap(), vec![TokenKind::And, TokenKind::Or]);
        for src in ["&", "|", "&&&", "|&", "||&&"] {
            assert!(syntax_error(src).contains("unknown operator"), "{src}");
        }
    }

    #[test]
    fn words_and_or_are_just_identifiers() {
        assert_eq!(kinds("and or").unwrap(), vec![ident("and"), ident("or")]);
    }

    #[test]
    fn function_start_needs_an_adjacent_parenthesis() {
        assert_eq!(
            kinds("strftime('%Y', created)").unwrap(),
            vec![
                TokenKind::FunctionStart("strftime".into()),
                text("%Y"),
                TokenKind::Comma,
                ident("created"),
                TokenKind::CloseParen,
            ]
        );
        assert_eq!(
            kinds("f (1)").unwrap(),
            vec![
                ident("f"),
                TokenKind::OpenParen,
                TokenKind::Number(1.0),
                TokenKind::CloseParen
            ]
        );
    }

    #[test]
    fn comments_and_whitespace_are_skipped() {
        assert_eq!(
            kinds("a // one\n\t= // two\n 1 // end").unwrap(),
            vec![ident("a"), op(OpKind::Eq, false), TokenKind::Number(1.0)]
        );
        assert_eq!(kinds("// only a comment").unwrap(), vec![]);
        assert_eq!(kinds(" \n\t ").unwrap(), vec![]);
    }

    #[test]
    fn lone_slash_is_an_error() {
        assert!(syntax_error("a / 1").contains("//"));
        assert!(syntax_error("a = 1 /").contains("//"));
    }

    #[test]
    fn carriage_return_and_strange_characters_are_errors() {
        for src in [
            "a = 1\r\n",
            "a = 1;",
            "a = $1",
            "é = 1",
            "a[0] = 1",
            "`a` = 1",
        ] {
            assert!(syntax_error(src).contains("unexpected character"), "{src}");
        }
    }

    #[test]
    fn error_offsets_point_at_the_problem() {
        match kinds("title = 'x' && y = \"oops") {
            Err(FilterError::Syntax { at, .. }) => assert_eq!(at, 19),
            other => panic!("{other:?}"),
        }
    }
}
