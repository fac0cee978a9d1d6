//! Time stamps as Docker's image endpoints give them: image configs carry RFC 3339 strings
//! (any offset, optional fraction); ImageSummary and history want Unix seconds; `until`
//! filters take Unix seconds, RFC 3339 or a Go-style duration back from now.

/// Unix seconds of an RFC 3339 time (`2026-12-07T11:46:34.123456789+09:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: i64 = date.next()?.parse().ok()?;
    let day: i64 = date.next()?.parse().ok()?;
    let (clock, offset) = split_offset(rest)?;
    let clock = clock.split('.').next()?;
    let mut clock = clock.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Splits `HH:MM:SS[.frac](Z|±HH:MM)` into the clock and the offset in seconds.
fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    let at = rest.rfind(['+', '-'])?;
    let (clock, offset) = rest.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let (h, m) = offset[1..].split_once(':')?;
    let seconds = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
    Some((clock, sign * seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An `until`/`before` time as Docker takes it: Unix seconds (fraction allowed), RFC 3339,
/// or a duration before now (`10m`, `1h30m`, `24h`).
pub fn parse_filter_time(value: &str, now: i64) -> Option<i64> {
    if let Ok(secs) = value.parse::<f64>() {
        return Some(secs as i64);
    }
    if let Some(t) = parse_rfc3339(value) {
        return Some(t);
    }
    parse_duration(value).map(|d| now - d)
}

/// Seconds in a Go duration made of `h`, `m`, `s` parts.
fn parse_duration(value: &str) -> Option<i64> {
    let mut total = 0.0;
    let mut number = String::new();
    for c in value.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (number.is_empty() && !value.is_empty()).then_some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_fractions_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_rfc3339("2026-11-20T22:26:18.123456789Z"),
            Some(1_795_213_578)
        );
        assert_eq!(parse_rfc3339("1970-01-01T09:00:00+09:00"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn filter_times() {
        assert_eq!(parse_filter_time("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_filter_time("1h30m", 10_000), Some(10_000 - 5400));
        assert_eq!(parse_filter_time("10s", 100), Some(90));
        assert_eq!(parse_filter_time("10", 100), Some(10));
        assert_eq!(parse_filter_time("soon", 100), None);
        assert_eq!(parse_filter_time("10x", 100), None);
    }
}
