//! Go's `time.Parse` for the two layouts Kubernetes timestamps use, with Go's error texts, and
//! the UTC formatting `metav1.Time` / `metav1.MicroTime` marshal with.

/// `time.RFC3339`, the layout of `metav1.Time`.
pub(crate) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
/// `metav1.RFC3339Micro`, the layout of `metav1.MicroTime`.
pub(crate) const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

/// A parsed instant: seconds since the Unix epoch (UTC) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

/// Go's `time.quote`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn cannot(layout: &str, value: &str, value_elem: &str, layout_elem: &str) -> String {
    format!("parsing time {} as {}: cannot parse {} as {}", quote(value), quote(layout), quote(value_elem), quote(layout_elem))
}

fn message(value: &str, msg: &str) -> String {
    format!("parsing time {}{msg}", quote(value))
}

fn digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !digit(s, 0) {
        return None;
    }
    if !digit(s, 1) {
        if fixed {
            return None;
        }
        return Some(((s[0] - b'0') as i64, &s[1..]));
    }
    Some((((s[0] - b'0') * 10 + (s[1] - b'0')) as i64, &s[2..]))
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `time.Parse(layout, value)` for [`RFC3339`] and [`RFC3339_MICRO`], following Go's generic
/// parser (which is what produces the error text when the RFC 3339 fast path fails).
pub(crate) fn parse(layout: &str, value: &str) -> Result<Instant, String> {
    let micro = layout == RFC3339_MICRO;
    let v = value.as_bytes();
    let mut rest = v;
    let at = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    // Year: four digits.
    if rest.len() < 4 || !digit(rest, 0) || !rest[..4].iter().all(u8::is_ascii_digit) {
        return Err(cannot(layout, value, &at(rest), "2006"));
    }
    let year: i64 = at(&rest[..4]).parse().unwrap_or(0);
    rest = &rest[4..];
    let mut fields = [0i64; 5];
    for (i, (sep, elem, range)) in
        [(b'-', "01", "month"), (b'-', "02", ""), (b'T', "15", "hour"), (b':', "04", "minute"), (b':', "05", "second")].into_iter().enumerate()
    {
        if rest.first() != Some(&sep) {
            return Err(cannot(layout, value, &at(rest), &(sep as char).to_string()));
        }
        rest = &rest[1..];
        let fixed = elem != "15";
        let Some((n, r)) = getnum(rest, fixed) else {
            return Err(cannot(layout, value, &at(rest), elem));
        };
        let out_of_range = match range {
            "month" => !(1..=12).contains(&n),
            "hour" => n >= 24,
            "minute" | "second" => n >= 60,
            _ => false,
        };
        if out_of_range {
            return Err(message(value, &format!(": {range} out of range")));
        }
        fields[i] = n;
        rest = r;
    }
    let [month, day, hour, minute, second] = fields;
    let mut nanos: i64 = 0;
    let frac_digits = |r: &[u8]| 1 + r[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if micro {
        if rest.len() < 7 || !(rest[0] == b'.' || rest[0] == b',') || !rest[1..7].iter().all(u8::is_ascii_digit) {
            return Err(cannot(layout, value, &at(rest), ".000000"));
        }
        nanos = at(&rest[1..7]).parse::<i64>().unwrap_or(0) * 1000;
        rest = &rest[7..];
    } else if rest.len() >= 2 && (rest[0] == b'.' || rest[0] == b',') && digit(rest, 1) {
        // Go accepts a fractional second the layout doesn't mention.
        let n = frac_digits(rest);
        let digits = &rest[1..n.min(10)];
        nanos = at(digits).parse::<i64>().unwrap_or(0) * 10i64.pow(9 - digits.len() as u32);
        rest = &rest[n..];
    }
    // Zone: "Z" or ±hh:mm.
    let offset: i64 = if rest.first() == Some(&b'Z') {
        rest = &rest[1..];
        0
    } else {
        if rest.len() < 6 || rest[3] != b':' {
            return Err(cannot(layout, value, &at(rest), "Z07:00"));
        }
        let (Some((hh, _)), Some((mm, _))) = (getnum(&rest[1..3], true), getnum(&rest[4..6], true)) else {
            return Err(cannot(layout, value, &at(rest), "Z07:00"));
        };
        if hh > 24 {
            return Err(message(value, ": time zone offset hour out of range"));
        }
        if mm > 60 {
            return Err(message(value, ": time zone offset minute out of range"));
        }
        let sign = match rest[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(cannot(layout, value, &at(rest), "Z07:00")),
        };
        rest = &rest[6..];
        sign * (hh * 3600 + mm * 60)
    };
    if !rest.is_empty() {
        return Err(message(value, &format!(": extra text: {}", quote(&at(rest)))));
    }
    if day < 1 || day > days_in(month, year) {
        return Err(message(value, ": day out of range"));
    }
    let secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    Ok(Instant { secs, nanos: nanos as u32 })
}

/// `t.UTC().Format(layout)`.
pub(crate) fn format(layout: &str, t: Instant) -> String {
    let days = t.secs.div_euclid(86400);
    let sod = t.secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let base = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60);
    if layout == RFC3339_MICRO {
        format!("{base}.{:06}Z", t.nanos / 1000)
    } else {
        format!("{base}Z")
    }
}

/// The zero `time.Time` (0001-01-01T00:00:00Z), which metav1 marshals as `null`.
pub(crate) fn is_zero(t: Instant) -> bool {
    t.secs == days_from_civil(1, 1, 1) * 86400 && t.nanos == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_folded_into_utc() {
        let t = parse(RFC3339, "2024-03-01T01:30:00+02:00").unwrap();
        assert_eq!(format(RFC3339, t), "2024-02-29T23:30:00Z");
        let t = parse(RFC3339, "2024-01-01T00:00:00.123456789Z").unwrap();
        assert_eq!((format(RFC3339, t), t.nanos), ("2024-01-01T00:00:00Z".to_string(), 123456789));
        let t = parse(RFC3339_MICRO, "2026-11-21T23:27:36.636073Z").unwrap();
        assert_eq!(format(RFC3339_MICRO, t), "2026-11-21T23:27:36.636073Z");
        assert!(is_zero(parse(RFC3339, "0001-01-01T00:00:00Z").unwrap()));
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            parse(RFC3339, "yesterday").unwrap_err(),
            r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#
        );
        assert_eq!(
            parse(RFC3339, "2024-01-01").unwrap_err(),
            r#"parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T""#
        );
        assert_eq!(parse(RFC3339, "2024-13-01T00:00:00Z").unwrap_err(), r#"parsing time "2024-13-01T00:00:00Z": month out of range"#);
        assert_eq!(parse(RFC3339, "2023-02-29T00:00:00Z").unwrap_err(), r#"parsing time "2023-02-29T00:00:00Z": day out of range"#);
        assert_eq!(
            parse(RFC3339, "2024-01-01T00:00:00").unwrap_err(),
            r#"parsing time "2024-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#
        );
        assert_eq!(
            parse(RFC3339_MICRO, "2024-01-01T00:00:00Z").unwrap_err(),
            r#"parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#
        );
    }
}
