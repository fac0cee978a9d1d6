//! Time as the engine records it (nanoseconds since the Unix epoch, 0 = never) and as Docker
//! shows it: RFC 3339 with nanoseconds in UTC, trailing zeros of the fraction dropped (Go's
//! RFC3339Nano), "0001-01-01T00:00:00Z" for never; and the "Up 5 minutes" durations.

/// Go's zero time, which Docker shows for a time that never happened.
pub const NEVER: &str = "0001-01-01T00:00:00Z";

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// RFC 3339 with nanoseconds (trailing zeros trimmed), or [`NEVER`] for 0.
pub fn format_ns(ns: i64) -> String {
    if ns <= 0 {
        return NEVER.to_string();
    }
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses RFC 3339 (`2026-12-07T12:00:00.123Z`, `...+01:00`); [`NEVER`] and junk give None.
pub fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut rest = &text[19..];
    let mut frac_ns = 0i64;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        let frac = after_dot.get(..digits.min(9))?;
        frac_ns = format!("{frac:0<9}").parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(secs * 1_000_000_000 + frac_ns)
}

/// Docker's (go-units') HumanDuration: "Less than a second", "5 seconds", "About a minute",
/// "3 hours", "2 weeks"...
pub fn human_duration(ns: i64) -> String {
    let secs = ns / 1_000_000_000;
    let minutes = secs / 60;
    let hours = (ns as f64 / 3.6e12 + 0.5) as i64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

// Howard Hinnant's civil-from-days and days-from-civil (proleptic Gregorian, day 0 = 1970-01-01).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_ns(0), NEVER);
        assert_eq!(format_ns(1_000_000_000), "1970-01-01T00:00:01Z");
        let ns = 1_796_644_800_123_456_789;
        let text = format_ns(ns);
        assert_eq!(text, "2026-12-07T12:00:00.123456789Z");
        assert_eq!(parse(&text), Some(ns));
        assert_eq!(
            format_ns(1_796_644_800_100_000_000),
            "2026-12-07T12:00:00.1Z"
        );
        assert_eq!(
            parse("2026-12-07T13:00:00+01:00"),
            Some(1_796_644_800_000_000_000)
        );
        assert_eq!(parse(NEVER), None);
        assert_eq!(parse("yesterday"), None);
        assert_eq!(
            parse("2026-12-07T12:00:00.Z"),
            Some(1_796_644_800_000_000_000)
        );
    }

    #[test]
    fn human_durations() {
        let s = 1_000_000_000;
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(s), "1 second");
        assert_eq!(human_duration(5 * s), "5 seconds");
        assert_eq!(human_duration(90 * s), "About a minute");
        assert_eq!(human_duration(300 * s), "5 minutes");
        assert_eq!(human_duration(3600 * s), "About an hour");
        assert_eq!(human_duration(5 * 3600 * s), "5 hours");
        assert_eq!(human_duration(3 * 86_400 * s), "3 days");
    }
}
