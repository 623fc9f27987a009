//! The functions a filter may call, and the SQL each compiles to. Only the
//! names listed here exist; anything else is an error, so no input text ever
//! reaches SQL as a function name.
//!
//! - `geoDistance(lonA, latA, lonB, latB)`: great-circle distance in km
//!   (spherical law of cosines, Earth radius 6371 km). Needs SQLite's math
//!   functions (`SQLITE_ENABLE_MATH_FUNCTIONS`).
//! - `strftime(format[, timeValue[, modifier...]])`: SQLite's `strftime`,
//!   with NULL results compared as `''`.

use super::ast::{FunctionCall, Operand};
use super::compile::{Fragment, MultiMatch, NullFallback, ResolvedExpr, Term};
use super::error::FilterError;

/// `strftime` takes at most this many arguments, as in the reference.
const STRFTIME_MAX_ARGS: usize = 10;

/// Compiles a call; `resolve` turns an argument operand into a term (it handles
/// literals, macros and identifiers the same way as comparison operands).
pub(crate) fn compile_call(
    call: &FunctionCall,
    resolve: &mut dyn FnMut(&Operand) -> Result<Term, FilterError>,
) -> Result<ResolvedExpr, FilterError> {
    match call.name.as_str() {
        "geoDistance" => geo_distance(&call.args, resolve),
        "strftime" => strftime(&call.args, resolve),
        other => Err(FilterError::invalid(format!("unknown function {other:?}"))),
    }
}

fn geo_distance(
    args: &[Operand],
    resolve: &mut dyn FnMut(&Operand) -> Result<Term, FilterError>,
) -> Result<ResolvedExpr, FilterError> {
    let [lon_a, lat_a, lon_b, lat_b] = args else {
        return Err(FilterError::invalid(format!(
            "geoDistance expects 4 arguments, got {}",
            args.len()
        )));
    };
    let mut point = |operand: &Operand, position: usize| {
        if !matches!(
            operand,
            Operand::Identifier(_) | Operand::Number(_) | Operand::Bool(_) | Operand::Null
        ) {
            return Err(FilterError::invalid(format!(
                "geoDistance argument {position} must be a field or a number"
            )));
        }
        // A multi-valued argument is used as its joined column: the distance
        // then holds if any element satisfies it, as in the reference.
        resolve(operand).map(without_multi_match)
    };
    let lon_a = point(lon_a, 1)?;
    let lat_a = point(lat_a, 2)?;
    let lon_b = point(lon_b, 3)?;
    let lat_b = point(lat_b, 4)?;

    // acos(sin φ1·sin φ2 + cos φ1·cos φ2·cos Δλ); the argument is clamped to
    // [-1, 1] because rounding can push it past 1 for identical points, and
    // acos would then give NULL instead of 0.
    let mut sql = Fragment::sql("(6371 * acos(max(-1, min(1, sin(radians(");
    lat_a.write(&mut sql);
    sql.push_sql(")) * sin(radians(");
    lat_b.write(&mut sql);
    sql.push_sql(")) + cos(radians(");
    lat_a.write(&mut sql);
    sql.push_sql(")) * cos(radians(");
    lat_b.write(&mut sql);
    sql.push_sql(")) * cos(radians(");
    lon_b.write(&mut sql);
    sql.push_sql(") - radians(");
    lon_a.write(&mut sql);
    sql.push_sql("))))))");
    Ok(ResolvedExpr {
        expr: sql,
        // A number: compare with IS / IS NOT, no '' folding.
        null_fallback: NullFallback::Disabled,
        multi_match: None,
        guard: None,
    })
}

fn strftime(
    args: &[Operand],
    resolve: &mut dyn FnMut(&Operand) -> Result<Term, FilterError>,
) -> Result<ResolvedExpr, FilterError> {
    let Some((format, rest)) = args.split_first() else {
        return Err(FilterError::invalid("strftime expects at least 1 argument"));
    };
    if args.len() > STRFTIME_MAX_ARGS {
        return Err(FilterError::invalid(format!(
            "strftime accepts at most {STRFTIME_MAX_ARGS} arguments, got {}",
            args.len()
        )));
    }
    if !matches!(format, Operand::Text(_)) {
        return Err(FilterError::invalid(
            "strftime expects a quoted format as its first argument",
        ));
    }
    let format = resolve(format)?;
    let Some((time_value, modifiers)) = rest.split_first() else {
        return Ok(ResolvedExpr {
            expr: strftime_call(&format, None, &[]),
            null_fallback: NullFallback::Enforced,
            multi_match: None,
            guard: None,
        });
    };
    if matches!(time_value, Operand::Function(_)) {
        return Err(FilterError::invalid(
            "strftime expects a field, quoted date or number as its second argument",
        ));
    }
    let time_value = resolve(time_value)?;
    let mut modifier_terms = Vec::with_capacity(modifiers.len());
    for modifier in modifiers {
        if !matches!(modifier, Operand::Text(_)) {
            return Err(FilterError::invalid(
                "strftime modifiers must be quoted text",
            ));
        }
        modifier_terms.push(resolve(modifier)?);
    }
    let (time_sql, many, guard) = match time_value {
        Term::Expr(resolved) => (resolved.expr, resolved.multi_match, resolved.guard),
        other => {
            let mut sql = Fragment::default();
            other.write(&mut sql);
            (sql, None, None)
        }
    };
    // A multi-valued time value: the every-element check formats each element.
    let multi_match = many.map(|many| MultiMatch {
        value: strftime_call(&format, Some(&many.value), &modifier_terms),
        source: many.source,
    });
    Ok(ResolvedExpr {
        expr: strftime_call(&format, Some(&time_sql), &modifier_terms),
        // NULL (an unparsable date) compares as ''.
        null_fallback: NullFallback::Enforced,
        multi_match,
        guard,
    })
}

/// `strftime(format[, time][, modifiers…])`.
fn strftime_call(format: &Term, time: Option<&Fragment>, modifiers: &[Term]) -> Fragment {
    let mut sql = Fragment::sql("strftime(");
    format.write(&mut sql);
    if let Some(time) = time {
        sql.push_sql(", ");
        sql.push_fragment(time);
    }
    for modifier in modifiers {
        sql.push_sql(", ");
        modifier.write(&mut sql);
    }
    sql.push_sql(")");
    sql
}

fn without_multi_match(term: Term) -> Term {
    match term {
        Term::Expr(resolved) => Term::Expr(ResolvedExpr {
            multi_match: None,
            ..resolved
        }),
        other => other,
    }
}
