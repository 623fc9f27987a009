//! The one error type of the filter language. It carries a human message for
//! logs and tests; it never carries SQL. Callers map [`FilterError::Forbidden`]
//! to HTTP 403 and every other variant to HTTP 400.

use std::fmt;

/// Why a filter could not be parsed or compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// The input is longer than the configured limit (in bytes, as the reference counts).
    TooLong { max_bytes: usize },
    /// More comparisons (`a = b`) than the configured limit.
    TooManyExpressions { max: usize },
    /// Parentheses or function calls nested deeper than the configured limit.
    TooDeep { max: usize },
    /// The text is not valid filter syntax; `at` is the byte offset of the problem.
    Syntax { at: usize, message: String },
    /// Well-formed but meaningless: unknown function, bad function arguments,
    /// unknown field (reported by the resolver), and the like.
    Invalid(String),
    /// Well-formed and meaningful, but the requester may not use it
    /// (e.g. `@request.*` in a client filter by a non-superuser). Reported by resolvers.
    Forbidden(String),
}

impl FilterError {
    pub(crate) fn syntax(at: usize, message: impl Into<String>) -> Self {
        FilterError::Syntax {
            at,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        FilterError::Invalid(message.into())
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::TooLong { max_bytes } => {
                write!(f, "filter is too long (max {max_bytes} bytes)")
            }
            FilterError::TooManyExpressions { max } => {
                write!(f, "filter has too many expressions (max {max})")
            }
            FilterError::TooDeep { max } => write!(f, "filter is nested too deeply (max {max})"),
            FilterError::Syntax { at, message } => write!(f, "{message} (at byte {at})"),
            FilterError::Invalid(message) | FilterError::Forbidden(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for FilterError {}
