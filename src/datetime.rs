//! UTC datetimes in the reference's text form, `2024-01-02 03:04:05.678Z`,
//! and the input forms that `date` fields accept. Dates are stored and
//! compared as this text, so the format must never vary.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(_) => 0,
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    now_millis().div_euclid(1000)
}

/// Now, formatted as the reference stores datetimes.
pub fn now_text() -> String {
    format_millis(now_millis())
}

/// `YYYY-MM-DD HH:MM:SS.mmmZ` for a Unix time in milliseconds.
pub fn format_millis(millis: i64) -> String {
    let mut text = String::with_capacity(FORMATTED_LEN);
    push_millis(&mut text, millis);
    text
}

/// The length of [`format_millis`]'s text for years 0 to 9999.
const FORMATTED_LEN: usize = 24;

/// Appends [`format_millis`]'s text to `out`. Written digit by digit: every
/// record write and every request log row formats a time, and the general
/// formatter spends most of its effort on padding rules this never needs.
pub fn push_millis(out: &mut String, millis: i64) {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Years outside four digits keep the general formatter's rendering.
        out.push_str(&format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        ));
        return;
    }
    let mut text = *b"0000-00-00 00:00:00.000Z";
    put_digits(&mut text[0..4], y);
    put_digits(&mut text[5..7], m);
    put_digits(&mut text[8..10], d);
    put_digits(&mut text[11..13], rem / 3600);
    put_digits(&mut text[14..16], rem % 3600 / 60);
    put_digits(&mut text[17..19], rem % 60);
    put_digits(&mut text[20..23], ms);
    // Only ASCII digits went into an ASCII template.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// Writes `n` (not negative) as decimal digits filling `slot`, zero-padded.
fn put_digits(slot: &mut [u8], mut n: i64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Parses the datetime forms a `date` field accepts and returns Unix millis:
/// `2024-01-02`, `2024-01-02 03:04:05`, a `T` separator, optional fraction
/// (truncated to milliseconds), and `Z` or a `±HH:MM` offset.
pub fn parse_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(millis);
    }
    if rest[0] != b' ' && rest[0] != b'T' || rest.len() < 9 || rest[3] != b':' || rest[6] != b':' {
        return None;
    }
    let (h, mi, s) = (
        digits(&rest[1..3])?,
        digits(&rest[4..6])?,
        digits(&rest[7..9])?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    millis += (h * 3600 + mi * 60 + s) * 1000;
    let mut rest = &rest[9..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &rest[1..1 + n.min(3)];
        let scale = [100, 10, 1];
        for (i, c) in frac.iter().enumerate() {
            millis += i64::from(c - b'0') * scale[i];
        }
        rest = &rest[1 + n..];
    }
    let rest = if rest.first() == Some(&b' ') {
        &rest[1..]
    } else {
        rest
    };
    match rest {
        [] | [b'Z'] => Some(millis),
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let offset = (digits(&[*oh1, *oh2])? * 60 + digits(&[*om1, *om2])?) * 60_000;
            Some(if *sign == b'+' {
                millis - offset
            } else {
                millis + offset
            })
        }
        _ => None,
    }
}

/// Normalises any accepted datetime text to the stored form; `None` if unparseable.
pub fn normalize(text: &str) -> Option<String> {
    parse_millis(text).map(format_millis)
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_reference() {
        assert_eq!(format_millis(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(format_millis(1_704_164_645_678), "2024-01-02 03:04:05.678Z");
        assert_eq!(
            format_millis(253_402_300_799_999),
            "9999-12-31 23:59:59.999Z"
        );
        assert_eq!(format_millis(-1), "1969-12-31 23:59:59.999Z");
        assert_eq!(
            format_millis(-62_167_219_200_000),
            "0000-01-01 00:00:00.000Z"
        );
        // outside four-digit years, the general formatter's rendering
        assert_eq!(
            format_millis(253_402_300_800_000),
            "10000-01-01 00:00:00.000Z"
        );
    }

    #[test]
    fn accepts_the_documented_inputs() {
        let cases = [
            ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05.000Z"),
            ("2024-01-02T03:04:05.123456Z", "2024-01-02 03:04:05.123Z"),
            ("2024-01-02 03:04:05+02:00", "2024-01-02 01:04:05.000Z"),
            ("2024-01-02", "2024-01-02 00:00:00.000Z"),
            ("2030-05-06 07:08:09.123Z", "2030-05-06 07:08:09.123Z"),
            ("2024-02-29 23:59:59.9Z", "2024-02-29 23:59:59.900Z"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn rejects_what_the_reference_stores_as_blank() {
        for bad in [
            "bad",
            "2024-01-02T03:04",
            "12345",
            "2023-02-29",
            "2024-13-01",
            "",
            "2024-01-02T03:04:05X",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in [-800_000, -1, 0, 1, 59, 10_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
