//! Timestamps: ISO 8601 / RFC 3339 (extended or basic form, with or without a zone), epoch
//! seconds or milliseconds, and local wall-clock time in an IANA zone, all to UTC.
use crate::error::{show, Error, ErrorKind, Result};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

pub const ACCEPTED: &str = "accepted: ISO 8601 such as 2024-03-01T14:05:00Z, 2024-03-01T15:05:00+01:00, \
2024-03-01 14:05:00 (read in the given zone), 20240301T140500Z, 2024-03-01, or epoch seconds / milliseconds";

/// How to read a bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// Seconds below 100 000 000 000 (year 5138), milliseconds at or above.
    Auto,
    Seconds,
    Millis,
}

/// A named IANA time zone (`Europe/Berlin`), or `UTC`.
pub fn zone(name: &str) -> Result<Tz> {
    let n = name.trim();
    n.parse::<Tz>().or_else(|_| match n.to_ascii_uppercase().as_str() {
        "UTC" | "Z" | "GMT" | "ZULU" => Ok(Tz::UTC),
        _ => Err(Error::new(ErrorKind::UndefinedObject, format!("time zone {} is not known", show(n)))
            .hint("use an IANA zone name such as Europe/Berlin or America/New_York, or UTC")),
    })
}

/// Parses text: a number is an epoch (see `unit`), anything else ISO 8601. Text without a zone
/// is wall-clock time in `local`.
pub fn parse(text: &str, local: Tz, unit: EpochUnit) -> Result<DateTime<Utc>> {
    let t = text.trim();
    if is_epoch_text(t) {
        return from_epoch_text(t, unit);
    }
    parse_iso(t, local)
}

/// `-?digits(.digits)?`, except exactly eight digits, which is a basic-form date (20240301).
fn is_epoch_text(t: &str) -> bool {
    let body = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(int.len() == 8 && !body.contains('.') && body.len() == t.len())
}

/// An epoch given as decimal text (`1709301900`, `1709301900123`, `1709301900.5`).
pub fn from_epoch_text(t: &str, unit: EpochUnit) -> Result<DateTime<Utc>> {
    let bad = || Error::new(ErrorKind::InvalidDatetime, format!("{} is not an epoch timestamp", show(t))).hint(ACCEPTED);
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = int.parse().map_err(|_| out_of_range(t))?;
    let unit = match unit {
        EpochUnit::Auto if whole >= 100_000_000_000 => EpochUnit::Millis,
        EpochUnit::Auto => EpochUnit::Seconds,
        u => u,
    };
    // fraction digits beyond microseconds are dropped
    let scale_digits: u32 = if unit == EpochUnit::Seconds { 6 } else { 3 };
    let mut frac_micros: i64 = 0;
    for (k, b) in frac.bytes().take(scale_digits as usize).enumerate() {
        frac_micros += i64::from(b - b'0') * 10i64.pow(scale_digits - 1 - k as u32);
    }
    let per_unit: i64 = if unit == EpochUnit::Seconds { 1_000_000 } else { 1_000 };
    let micros = whole.checked_mul(per_unit).and_then(|m| m.checked_add(frac_micros)).ok_or_else(|| out_of_range(t))?;
    let micros = if neg { -micros } else { micros };
    DateTime::<Utc>::from_timestamp_micros(micros).filter(in_range).ok_or_else(|| out_of_range(t))
}

pub fn from_epoch_millis(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms).filter(in_range).ok_or_else(|| out_of_range(&ms.to_string()))
}

/// How far past the server's clock an event, order or captured preference may be dated: clock
/// skew between the OMS's machines and the database.
pub const MAX_FUTURE_SECONDS: i64 = 300;

/// Checks a time at which something happened (an event, an order, a preference observed): a
/// finite time, not before 1970-01-01 (hour-of-day, weekday and decay are counted from the Unix
/// epoch, and an OMS has no earlier activity), and not later than `now` plus
/// `MAX_FUTURE_SECONDS` (a date in the future would outrank every real one: decay would give it
/// the most weight, and a preference "observed" in 2099 would beat every later edit).
/// `what` names the field in the message.
pub fn check_activity(d: &DateTime<Utc>, now: &DateTime<Utc>, what: &str) -> Result<()> {
    let shown = if *d == DateTime::<Utc>::MAX_UTC {
        "infinity".to_string()
    } else if *d == DateTime::<Utc>::MIN_UTC {
        "-infinity".to_string()
    } else {
        format_utc(d)
    };
    if *d == DateTime::<Utc>::MAX_UTC || *d == DateTime::<Utc>::MIN_UTC {
        return Err(Error::new(ErrorKind::DatetimeOverflow, format!("{what} {shown} is not a point in time"))
            .at(what)
            .hint("send the time it happened, for example 2024-03-01T14:05:00Z"));
    }
    if d.timestamp() < 0 {
        return Err(Error::new(ErrorKind::DatetimeOverflow, format!("{what} {shown} is before 1970-01-01"))
            .at(what)
            .hint("activity is dated from 1970-01-01 UTC on; check the epoch unit (seconds or milliseconds) of the source"));
    }
    let latest = *now + chrono::Duration::seconds(MAX_FUTURE_SECONDS);
    if *d > latest {
        return Err(Error::new(ErrorKind::DatetimeOverflow, format!("{what} {shown} is in the future (now is {})", format_utc(now)))
            .at(what)
            .hint(format!("times may be at most {MAX_FUTURE_SECONDS} seconds ahead of the database's clock; check the sender's clock and time zone")));
    }
    Ok(())
}

fn in_range(d: &DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&d.year())
}

fn out_of_range(t: &str) -> Error {
    Error::new(ErrorKind::DatetimeOverflow, format!("timestamp {} is out of range", show(t))).hint("timestamps must fall in the years 1 to 9999")
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

/// ISO 8601 date or date-time; `local` applies when no zone is written.
pub fn parse_iso(t: &str, local: Tz) -> Result<DateTime<Utc>> {
    let bad = || Error::new(ErrorKind::InvalidDatetime, format!("{} is not a valid timestamp", show(t))).hint(ACCEPTED);
    let mut c = Cursor { b: t.as_bytes(), i: 0 };
    let year = c.digits(4).ok_or_else(bad)?;
    let extended = c.eat(b'-');
    let month = c.digits(2).ok_or_else(bad)?;
    if extended && !c.eat(b'-') {
        return Err(bad());
    }
    let day = c.digits(2).ok_or_else(bad)?;
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    let mut offset: Option<i32> = None;
    if !c.done() {
        if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
            return Err(bad());
        }
        hour = c.digits(2).ok_or_else(bad)?;
        let ext_time = c.eat(b':');
        minute = c.digits(2).ok_or_else(bad)?;
        let has_seconds = if ext_time { c.eat(b':') } else { c.peek().is_some_and(|b| b.is_ascii_digit()) };
        if has_seconds {
            second = c.digits(2).ok_or_else(bad)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.i;
                while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                    c.i += 1;
                }
                let frac = &t[start..c.i];
                if frac.is_empty() {
                    return Err(bad());
                }
                micros = frac.bytes().take(6).enumerate().fold(0u32, |a, (k, d)| a + u32::from(d - b'0') * 10u32.pow(5 - k as u32));
            }
        }
        // zone designator
        let _ = c.eat(b' ');
        match c.peek() {
            None => {}
            Some(b'Z') | Some(b'z') => {
                c.i += 1;
                offset = Some(0);
            }
            Some(sign @ (b'+' | b'-')) => {
                c.i += 1;
                let oh = c.digits(2).ok_or_else(bad)?;
                let _ = c.eat(b':');
                let om = if c.done() { 0 } else { c.digits(2).ok_or_else(bad)? };
                if oh > 18 || om > 59 {
                    return Err(Error::new(ErrorKind::DatetimeOverflow, format!("time zone offset in {} is out of range", show(t))));
                }
                let secs = (oh * 3600 + om * 60) as i32;
                offset = Some(if sign == b'-' { -secs } else { secs });
            }
            Some(_) => {
                let rest = t[c.i..].trim();
                if rest.eq_ignore_ascii_case("UTC") || rest.eq_ignore_ascii_case("GMT") {
                    c.i = t.len();
                    offset = Some(0);
                } else {
                    return Err(bad());
                }
            }
        }
        if !c.done() {
            return Err(bad());
        }
    }
    let overflow = || {
        Error::new(ErrorKind::DatetimeOverflow, format!("{} is not a real date or time", show(t)))
            .hint("check the month (1-12), the day of that month, hours 0-23, minutes and seconds 0-59")
    };
    if year == 0 {
        return Err(overflow());
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(overflow)?;
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or_else(overflow)?;
    let naive = NaiveDateTime::new(date, time);
    match offset {
        Some(off) => {
            let utc = naive - chrono::Duration::seconds(i64::from(off));
            let d = Utc.from_utc_datetime(&utc);
            if in_range(&d) {
                Ok(d)
            } else {
                Err(out_of_range(t))
            }
        }
        None => local_to_utc(naive, local, t),
    }
}

/// Wall-clock time in a zone to UTC. In the repeated hour of a DST change the first occurrence
/// is taken; a time in the skipped hour does not exist and is an error.
pub fn local_to_utc(naive: NaiveDateTime, zone: Tz, shown: &str) -> Result<DateTime<Utc>> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(d) => Ok(d.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(Error::new(
            ErrorKind::DatetimeOverflow,
            format!("local time {} does not exist in time zone {} (skipped by a daylight-saving change)", show(shown), zone.name()),
        )
        .hint("send the time with its UTC offset, or check the store's time zone")),
    }
}

/// The canonical text form: RFC 3339 in UTC with a `Z`, microseconds only when non-zero.
pub fn format_utc(d: &DateTime<Utc>) -> String {
    use chrono::Timelike;
    if d.nanosecond() == 0 {
        d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// 2000-01-01 UTC (PostgreSQL's epoch) in microseconds since the Unix epoch.
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Microseconds since 2000-01-01 UTC, PostgreSQL's timestamptz representation.
pub fn to_pg_micros(d: &DateTime<Utc>) -> i64 {
    d.timestamp_micros() - PG_EPOCH_UNIX_MICROS
}

/// The inverse of `to_pg_micros` (PostgreSQL's ±infinity map to the representable extremes).
pub fn from_pg_micros(pg: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(pg.saturating_add(PG_EPOCH_UNIX_MICROS)).unwrap_or(if pg < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any PostgreSQL timestamptz (the whole i64 range, ±infinity at the ends) converts and is
    /// judged without panicking; exactly the finite times from 1970 to now + skew pass.
    #[test]
    fn activity_bounds_over_the_whole_range() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1970);
        let now = parse("2026-11-26T11:47:00Z", Tz::UTC, EpochUnit::Auto).unwrap();
        let epoch_pg = -PG_EPOCH_UNIX_MICROS;
        let latest_pg = to_pg_micros(&now) + MAX_FUTURE_SECONDS * 1_000_000;
        let mut cases: Vec<i64> = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, 0, epoch_pg - 1, epoch_pg, latest_pg, latest_pg + 1];
        cases.extend((0..20_000).map(|_| rng.random::<i64>()));
        cases.extend((0..20_000).map(|_| rng.random_range(epoch_pg - 1_000_000_000..latest_pg + 1_000_000_000)));
        for pg in cases {
            let d = from_pg_micros(pg);
            let ok = check_activity(&d, &now, "occurred_at").is_ok();
            let in_range = (epoch_pg..=latest_pg).contains(&pg);
            assert_eq!(ok, in_range, "{pg}");
            if ok {
                assert_eq!(to_pg_micros(&d), pg);
            }
        }
    }

    #[test]
    fn activity_bounds() {
        let now = parse("2026-11-26T11:47:00Z", Tz::UTC, EpochUnit::Auto).unwrap();
        let ok = |s: &str| check_activity(&parse(s, Tz::UTC, EpochUnit::Auto).unwrap(), &now, "occurred_at");
        assert!(ok("2026-11-26T11:50:00Z").is_ok());
        assert!(ok("1970-01-01T00:00:00Z").is_ok());
        let e = ok("1969-12-31T23:59:59Z").unwrap_err();
        assert_eq!((e.kind, e.path.as_deref()), (ErrorKind::DatetimeOverflow, Some("occurred_at")));
        assert!(e.message.contains("1969-12-31T23:59:59"), "{}", e.message);
        assert_eq!(ok("2099-01-01T00:00:00Z").unwrap_err().kind, ErrorKind::DatetimeOverflow);
        assert!(check_activity(&from_pg_micros(i64::MAX), &now, "occurred_at").unwrap_err().message.contains("infinity"));
        assert!(check_activity(&from_pg_micros(i64::MIN), &now, "occurred_at").unwrap_err().message.contains("-infinity"));
    }

    fn utc(s: &str) -> String {
        format_utc(&parse(s, Tz::UTC, EpochUnit::Auto).unwrap())
    }

    #[test]
    fn iso_forms() {
        assert_eq!(utc("2024-03-01T14:05:00Z"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2024-03-01T15:05:00+01:00"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2008-01-10T11:00:00-05:00"), "2008-01-10T16:00:00Z");
        assert_eq!(utc("2024-03-01T15:05:00+0100"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2024-03-01T15:05:00+01"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2024-03-01 14:05:00"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2024-03-01 14:05"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("2024-03-01"), "2024-03-01T00:00:00Z");
        assert_eq!(utc("20240301T140500Z"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("20240301"), "2024-03-01T00:00:00Z");
        assert_eq!(utc("2024-03-01T14:05:00.123456789Z"), "2024-03-01T14:05:00.123456Z");
        assert_eq!(utc("2024-03-01T14:05:00,5Z"), "2024-03-01T14:05:00.500000Z");
        assert_eq!(utc("2024-03-01 14:05:00 UTC"), "2024-03-01T14:05:00Z");
    }

    #[test]
    fn epochs() {
        assert_eq!(utc("1709301900"), "2024-03-01T14:05:00Z");
        assert_eq!(utc("1709301900123"), "2024-03-01T14:05:00.123000Z");
        assert_eq!(utc("1709301900.5"), "2024-03-01T14:05:00.500000Z");
        assert_eq!(format_utc(&from_epoch_text("1709301900", EpochUnit::Millis).unwrap()), "1970-01-20T18:48:21.900000Z");
        assert_eq!(format_utc(&from_epoch_millis(0).unwrap()), "1970-01-01T00:00:00Z");
        assert_eq!(from_epoch_text("99999999999999999999", EpochUnit::Auto).unwrap_err().kind, ErrorKind::DatetimeOverflow);
    }

    #[test]
    fn local_zones_and_dst() {
        let berlin = zone("Europe/Berlin").unwrap();
        let p = |s| format_utc(&parse(s, berlin, EpochUnit::Auto).unwrap());
        assert_eq!(p("2024-01-15 12:00:00"), "2024-01-15T11:00:00Z"); // CET +1
        assert_eq!(p("2024-07-15 12:00:00"), "2024-07-15T10:00:00Z"); // CEST +2
        assert_eq!(p("2024-10-27 02:30:00"), "2024-10-27T00:30:00Z"); // repeated hour: first
        let gap = parse("2024-03-31 02:30:00", berlin, EpochUnit::Auto).unwrap_err();
        assert_eq!(gap.kind, ErrorKind::DatetimeOverflow);
        // an explicit offset ignores the local zone
        assert_eq!(p("2024-07-15T12:00:00Z"), "2024-07-15T12:00:00Z");
        assert_eq!(zone("Mars/Olympus").unwrap_err().kind, ErrorKind::UndefinedObject);
        assert_eq!(zone("utc").unwrap(), Tz::UTC);
    }

    #[test]
    fn impossible_and_malformed() {
        let e = |s| parse(s, Tz::UTC, EpochUnit::Auto).unwrap_err().kind;
        assert_eq!(e("2024-02-30T00:00:00Z"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("2023-02-29"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("2024-13-01"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("2024-01-01T25:00:00Z"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("2024-01-01T12:00:00+19:00"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("0000-01-01"), ErrorKind::DatetimeOverflow);
        assert_eq!(e("yesterday"), ErrorKind::InvalidDatetime);
        assert_eq!(e("2024-03-01T"), ErrorKind::InvalidDatetime);
        assert_eq!(e("2024-03-01T14:05:00Zjunk"), ErrorKind::InvalidDatetime);
        assert_eq!(e("01/03/2024"), ErrorKind::InvalidDatetime);
        assert_eq!(e(""), ErrorKind::InvalidDatetime);
        let t = parse("2000-01-01T00:00:01Z", Tz::UTC, EpochUnit::Auto).unwrap();
        assert_eq!(to_pg_micros(&t), 1_000_000);
        assert_eq!(from_pg_micros(1_000_000), t);
    }
}
