//! Five-field cron expressions as the reference accepts them (backups
//! schedule): `minute hour day-of-month month day-of-week`, each a list of
//! `*`, `n`, `a-b`, `*/s` or `a-b/s`, or one of the `@yearly`-style macros.
//! Only numbers: no month or weekday names, no `?`, `L` or `#`.
//! Domain-free: parsing and matching only; running jobs belongs elsewhere.

use std::collections::BTreeSet;
use std::fmt;

/// The parsed slots of a schedule; a moment is due when every field matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    pub minutes: BTreeSet<u8>,
    pub hours: BTreeSet<u8>,
    pub days: BTreeSet<u8>,
    pub months: BTreeSet<u8>,
    /// 0 = Sunday.
    pub weekdays: BTreeSet<u8>,
}

/// Why an expression was refused; the message is shown to the superuser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// Macros accepted in place of five fields, with what they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Inclusive bounds per field, in field order.
const FIELD_BOUNDS: [(u8, u8); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];

impl CronSchedule {
    /// Parses an expression. Fields are separated by exactly one space, as in
    /// the reference: doubled or trailing spaces are an error, not a shrug.
    pub fn parse(expression: &str) -> Result<CronSchedule, CronError> {
        let expanded = MACROS
            .iter()
            .find(|(name, _)| *name == expression)
            .map_or(expression, |(_, fields)| *fields);
        let fields: Vec<&str> = expanded.split(' ').collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(CronError(
                "Invalid cron expression - must be a known macro or exactly 5 space separated fields."
                    .into(),
            ));
        };
        let field = |text: &str, index: usize| {
            let (min, max) = FIELD_BOUNDS[index];
            parse_field(text, min, max)
        };
        Ok(CronSchedule {
            minutes: field(minute, 0)?,
            hours: field(hour, 1)?,
            days: field(day, 2)?,
            months: field(month, 3)?,
            weekdays: field(weekday, 4)?,
        })
    }

    /// Whether the schedule fires at this wall-clock minute.
    pub fn is_due(&self, minute: u8, hour: u8, day: u8, month: u8, weekday: u8) -> bool {
        self.minutes.contains(&minute)
            && self.hours.contains(&hour)
            && self.days.contains(&day)
            && self.months.contains(&month)
            && self.weekdays.contains(&weekday)
    }
}

/// One field: a comma-separated list of items, each expanded into its slots.
fn parse_field(text: &str, min: u8, max: u8) -> Result<BTreeSet<u8>, CronError> {
    let mut slots = BTreeSet::new();
    for item in text.split(',') {
        let (first, last, step) = parse_item(item, min, max)?;
        let mut value = first;
        while value <= last {
            slots.insert(value);
            value = match value.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
    }
    Ok(slots)
}

/// One list item → (first, last, step).
fn parse_item(item: &str, min: u8, max: u8) -> Result<(u8, u8, u8), CronError> {
    let mut parts = item.split('/');
    let range = parts.next().unwrap_or_default();
    let step = match (parts.next(), parts.next()) {
        (None, _) => 1,
        (Some(step), None) => parse_step(step, max)?,
        (Some(_), Some(_)) => {
            return Err(CronError("Invalid step format - use */n or a-b/n.".into()))
        }
    };
    if range == "*" {
        return Ok((min, max, step));
    }
    let bounds: Vec<&str> = range.split('-').collect();
    match bounds[..] {
        [single] => {
            if step != 1 {
                return Err(CronError(
                    "Invalid step - a step needs * or a range before it.".into(),
                ));
            }
            let value = parse_number(single)?;
            if value < i64::from(min) || value > i64::from(max) {
                return Err(CronError(format!(
                    "Invalid value {value} - must be between {min} and {max}."
                )));
            }
            let value = to_slot(value);
            Ok((value, value, 1))
        }
        [low, high] => {
            let low = parse_number(low)?;
            if low < i64::from(min) || low > i64::from(max) {
                return Err(CronError(format!(
                    "Invalid range start {low} - must be between {min} and {max}."
                )));
            }
            let high = parse_number(high)?;
            if high < low || high > i64::from(max) {
                return Err(CronError(format!(
                    "Invalid range end {high} - must be between {low} and {max}."
                )));
            }
            Ok((to_slot(low), to_slot(high), step))
        }
        _ => Err(CronError(
            "Invalid range format - a range has exactly two ends.".into(),
        )),
    }
}

fn parse_step(text: &str, max: u8) -> Result<u8, CronError> {
    let step = parse_number(text)?;
    if step < 1 || step > i64::from(max) {
        return Err(CronError(format!(
            "Invalid step {step} - must be between 1 and {max}."
        )));
    }
    Ok(to_slot(step))
}

/// A decimal integer with an optional sign, as Go's `strconv.Atoi` reads it
/// (the reference accepts `+5`).
fn parse_number(text: &str) -> Result<i64, CronError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<i64>() {
        Ok(n) if valid => Ok(n),
        _ => Err(CronError(format!("Invalid number {text:?}."))),
    }
}

/// Callers have checked the bounds (all within 0..=59).
fn to_slot(value: i64) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr:?} refused: {e}"))
    }

    #[test]
    fn accepts_what_the_reference_accepts() {
        for expr in [
            "* * * * *",
            "*/5 * * * *",
            "0 0 1 1 0",
            "59 23 31 12 6",
            "*/59 * * * *",
            "1-30/2 * * * *",
            "1,2,3-10/3 * * * *",
            "+5 * * * *",
            "*/+5 * * * *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ] {
            ok(expr);
        }
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        for expr in [
            "",
            "* * * *",
            "* * * * * *",
            "*  * * * *",
            "* * * * * ",
            " @daily",
            "@DAILY",
            "@every 5m",
            "@reboot",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "*/60 * * * *",
            "5/2 * * * *",
            "30-1 * * * *",
            "1-2-3 * * * *",
            "1/2/3 * * * *",
            "1,,2 * * * *",
            ",1 * * * *",
            "a * * * *",
            "-5 * * * *",
            "JAN * * * *",
            "* * * * MON",
            "*-5 * * * *",
        ] {
            assert!(CronSchedule::parse(expr).is_err(), "{expr:?} was accepted");
        }
    }

    #[test]
    fn steps_ranges_and_lists_expand_to_the_right_slots() {
        let s = ok("*/15 1-5/2 1,15 * 1-5");
        assert_eq!(
            s.minutes.iter().copied().collect::<Vec<_>>(),
            [0, 15, 30, 45]
        );
        assert_eq!(s.hours.iter().copied().collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(s.days.iter().copied().collect::<Vec<_>>(), [1, 15]);
        assert_eq!(s.months.len(), 12);
        assert_eq!(
            s.weekdays.iter().copied().collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn macros_mean_their_expansion() {
        assert_eq!(ok("@daily"), ok("0 0 * * *"));
        assert!(ok("@weekly").is_due(0, 0, 17, 3, 0));
        assert!(!ok("@weekly").is_due(0, 0, 17, 3, 1));
        assert!(ok("@hourly").is_due(0, 13, 2, 2, 4));
        assert!(!ok("@hourly").is_due(1, 13, 2, 2, 4));
    }
}
