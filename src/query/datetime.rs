//! The datetime macros (`@now`, `@todayStart`, `@month`, ...) evaluated for one
//! instant given by the caller, plus the small UTC calendar arithmetic they
//! need. Never reads the clock itself except in [`unix_millis_now`], so tests
//! are deterministic.

use std::time::{SystemTime, UNIX_EPOCH};

use super::compile::SqlValue;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The current time as milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A UTC calendar date and time of day, millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    milli: u32,
}

impl Civil {
    fn from_unix_millis(millis: i64) -> Civil {
        let days = millis.div_euclid(MILLIS_PER_DAY);
        let of_day = millis.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (of_day / 3_600_000) as u32,
            minute: (of_day / 60_000 % 60) as u32,
            second: (of_day / 1000 % 60) as u32,
            milli: (of_day % 1000) as u32,
        }
    }

    /// The same calendar day with the time of day replaced.
    fn at(self, hour: u32, minute: u32, second: u32, milli: u32) -> Civil {
        Civil {
            hour,
            minute,
            second,
            milli,
            ..self
        }
    }

    /// `2024-01-02 03:04:05.678Z`, the datetime format of the whole API.
    fn format(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.milli
        )
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
/// Works in 400-year eras, each exactly 146097 days long, with years counted
/// from March so the leap day falls at the end of the counted year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 = Sunday … 6 = Saturday; 1970-01-01 was a Thursday.
fn weekday(millis: i64) -> i64 {
    (millis.div_euclid(MILLIS_PER_DAY) + 4).rem_euclid(7)
}

/// The value of a datetime macro at `now_unix_millis`, or `None` when `name`
/// is not a macro. Names are case-sensitive, as in the reference.
pub(crate) fn macro_value(name: &str, now_unix_millis: i64) -> Option<SqlValue> {
    let now = Civil::from_unix_millis(now_unix_millis);
    let text = |civil: Civil| Some(SqlValue::Text(civil.format()));
    let number = |n: i64| Some(SqlValue::Integer(n));
    match name {
        "@now" => text(now),
        "@yesterday" => text(Civil::from_unix_millis(
            now_unix_millis.saturating_sub(MILLIS_PER_DAY),
        )),
        "@tomorrow" => text(Civil::from_unix_millis(
            now_unix_millis.saturating_add(MILLIS_PER_DAY),
        )),
        "@second" => number(i64::from(now.second)),
        "@minute" => number(i64::from(now.minute)),
        "@hour" => number(i64::from(now.hour)),
        "@day" => number(i64::from(now.day)),
        "@month" => number(i64::from(now.month)),
        "@year" => number(now.year),
        "@weekday" => number(weekday(now_unix_millis)),
        "@todayStart" => text(now.at(0, 0, 0, 0)),
        "@todayEnd" => text(now.at(23, 59, 59, 999)),
        "@monthStart" => text(Civil { day: 1, ..now }.at(0, 0, 0, 0)),
        "@monthEnd" => text(
            Civil {
                day: days_in_month(now.year, now.month),
                ..now
            }
            .at(23, 59, 59, 999),
        ),
        "@yearStart" => text(
            Civil {
                month: 1,
                day: 1,
                ..now
            }
            .at(0, 0, 0, 0),
        ),
        "@yearEnd" => text(
            Civil {
                month: 12,
                day: 31,
                ..now
            }
            .at(23, 59, 59, 999),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-02-29 13:45:30.123Z, a Thursday in a leap year.
    const LEAP_DAY: i64 = 1_709_214_330_123;

    fn text(name: &str, now: i64) -> String {
        match macro_value(name, now) {
            Some(SqlValue::Text(s)) => s,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn number(name: &str, now: i64) -> i64 {
        match macro_value(name, now) {
            Some(SqlValue::Integer(n)) => n,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn civil_dates_at_known_points() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn civil_dates_walk_every_day_without_gaps() {
        // 1900-01-01 .. 2100-12-31 day by day against a naive calendar walk.
        let (mut year, mut month, mut day) = (1900_i64, 1_u32, 1_u32);
        for days in -25_567..47_846 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            day += 1;
            if day > days_in_month(year, month) {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(text("@now", 0), "1970-01-01 00:00:00.000Z");
        assert_eq!(text("@now", LEAP_DAY), "2024-02-29 13:45:30.123Z");
        assert_eq!(text("@now", -1), "1969-12-31 23:59:59.999Z");
    }

    #[test]
    fn day_boundaries() {
        assert_eq!(text("@yesterday", LEAP_DAY), "2024-02-28 13:45:30.123Z");
        assert_eq!(text("@tomorrow", LEAP_DAY), "2024-03-01 13:45:30.123Z");
        assert_eq!(text("@todayStart", LEAP_DAY), "2024-02-29 00:00:00.000Z");
        assert_eq!(text("@todayEnd", LEAP_DAY), "2024-02-29 23:59:59.999Z");
    }

    #[test]
    fn month_and_year_boundaries() {
        assert_eq!(text("@monthStart", LEAP_DAY), "2024-02-01 00:00:00.000Z");
        assert_eq!(text("@monthEnd", LEAP_DAY), "2024-02-29 23:59:59.999Z");
        assert_eq!(text("@yearStart", LEAP_DAY), "2024-01-01 00:00:00.000Z");
        assert_eq!(text("@yearEnd", LEAP_DAY), "2024-12-31 23:59:59.999Z");
        // 2023-02-10: not a leap year.
        assert_eq!(
            text("@monthEnd", 1_675_987_200_000),
            "2023-02-28 23:59:59.999Z"
        );
        // 2023-04-15 and 2023-12-31.
        assert_eq!(
            text("@monthEnd", 1_681_516_800_000),
            "2023-04-30 23:59:59.999Z"
        );
        assert_eq!(
            text("@monthEnd", 1_703_980_800_000),
            "2023-12-31 23:59:59.999Z"
        );
    }

    #[test]
    fn numeric_parts() {
        assert_eq!(number("@second", LEAP_DAY), 30);
        assert_eq!(number("@minute", LEAP_DAY), 45);
        assert_eq!(number("@hour", LEAP_DAY), 13);
        assert_eq!(number("@day", LEAP_DAY), 29);
        assert_eq!(number("@month", LEAP_DAY), 2);
        assert_eq!(number("@year", LEAP_DAY), 2024);
        assert_eq!(number("@weekday", LEAP_DAY), 4);
        assert_eq!(number("@weekday", 0), 4, "1970-01-01 was a Thursday");
        assert_eq!(number("@weekday", 3 * MILLIS_PER_DAY), 0, "a Sunday");
    }

    #[test]
    fn unknown_and_wrong_case_names_are_not_macros() {
        for name in ["@NOW", "@Now", "@today", "now", "@request", "@now:lower"] {
            assert_eq!(macro_value(name, LEAP_DAY), None, "{name}");
        }
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for millis in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            for name in ["@now", "@yesterday", "@tomorrow", "@monthEnd", "@weekday"] {
                assert!(macro_value(name, millis).is_some());
            }
        }
    }
}
