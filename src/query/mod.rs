//! The PocketBase filter/rule language: text → tokens → AST → SQL boolean
//! expression with `?` placeholders and bound values.
//!
//! This module owns the grammar, its limits, and the comparison semantics
//! (null/empty handling, LIKE wrapping, any/every matching, datetime macros,
//! the `geoDistance` and `strftime` functions). It knows nothing about
//! collections, records, HTTP or `@request`: every identifier is handed to a
//! caller-supplied [`Resolver`]. It must never paste text from the input into
//! SQL — literals always become bound parameters; the only SQL text it emits
//! is its own fixed fragments and whatever the resolver returns.
//!
//! ```text
//! let Some(expr) = parse("title ~ 'rust' && views > 10")? else { /* blank filter */ };
//! let filter = compile(&expr, &mut resolver, &CompileOptions::now())?;
//! // filter.sql    == "([posts].[title] LIKE ? ESCAPE '\' AND [posts].[views] > ?)"
//! // filter.params == [Text("%rust%"), Real(10.0)]
//! ```
//!
//! Errors map to HTTP 400, except [`FilterError::Forbidden`] (403), which
//! only resolvers produce.

mod ast;
mod compile;
mod datetime;
mod error;
mod functions;
mod lexer;
mod like;
mod parser;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

pub use ast::{Comparison, Expr, FunctionCall, Identifier, Modifier, Op, OpKind, Operand};
pub use compile::{
    compile, CompileOptions, CompiledFilter, Fragment, MultiMatch, NullFallback, Resolved,
    ResolvedExpr, Resolver, SqlValue, MULTI_MATCH_ALIAS_PREFIX,
};
pub use error::FilterError;
pub use parser::{parse, parse_identifier, parse_with_limits, Limits};
