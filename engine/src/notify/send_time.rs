//! When a message may go out: quiet hours in the customer's time zone.
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::error::{show, Error, ErrorKind, Result};

/// A customer's IANA time zone (`Europe/Berlin`); `fallback` when it is unset.
pub fn zone(name: Option<&str>, fallback: &str) -> Result<Tz> {
    let n = name.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(fallback);
    n.parse::<Tz>().map_err(|_| {
        Error::new(ErrorKind::InvalidParameter, format!("time zone {} is not an IANA time zone name", show(n)))
            .hint("use names like Europe/Berlin, America/New_York or UTC (pg_timezone_names lists them)")
    })
}

/// Checks quiet hours `[start, end)` in local hours 0–23; `start == end` means none.
pub fn check_quiet(start: i32, end: i32) -> Result<(u32, u32)> {
    let ok = |h: i32| (0..24).contains(&h);
    if !ok(start) || !ok(end) {
        return Err(Error::invalid(format!("quiet hours {start}–{end} are not hours of the day"))
            .hint("quiet_start and quiet_end are local hours 0–23; 21 and 8 keep 21:00–08:00 quiet; equal values mean no quiet hours"));
    }
    Ok((start as u32, end as u32))
}

fn quiet(hour: u32, (start, end): (u32, u32)) -> bool {
    if start == end {
        false
    } else if start < end {
        hour >= start && hour < end
    } else {
        hour >= start || hour < end
    }
}

/// A local wall-clock time as an instant: the earlier one when it is ambiguous (clocks going
/// back), the first valid one after it when it does not exist (clocks going forward).
fn instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    for _ in 0..4 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(30),
        }
    }
    tz.from_utc_datetime(&local).with_timezone(&Utc)
}

/// The first instant at or after `at` that is outside the quiet hours in `tz`.
pub fn outside_quiet(at: DateTime<Utc>, tz: Tz, hours: (u32, u32)) -> DateTime<Utc> {
    // far outside any send date, chrono's arithmetic could overflow: leave such instants be
    if !(1..=9999).contains(&at.year()) {
        return at;
    }
    let local = at.with_timezone(&tz).naive_local();
    if !quiet(local.hour(), hours) {
        return at;
    }
    // the next local `end` o'clock: today when still ahead, else tomorrow
    let Some(today_end) = local.date().and_hms_opt(hours.1, 0, 0) else { return at };
    let next = if today_end > local { today_end } else { today_end + Duration::days(1) };
    instant(tz, next).max(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_hour_of_a_day_lands_outside_quiet_hours() {
        let tz = zone(Some("Europe/Berlin"), "UTC").unwrap();
        for day in ["2026-01-15", "2026-07-15"] {
            for h in 0..24 {
                for m in [0, 59] {
                    let at = utc(&format!("{day}T{h:02}:{m:02}:00Z"));
                    let out = outside_quiet(at, tz, (21, 8));
                    let local = out.with_timezone(&tz);
                    assert!(!quiet(local.hour(), (21, 8)), "{at} -> {out}");
                    assert!(out >= at);
                    assert!(out - at < Duration::hours(12));
                    if !quiet(at.with_timezone(&tz).hour(), (21, 8)) {
                        assert_eq!(out, at);
                    } else {
                        assert_eq!((local.hour(), local.minute()), (8, 0), "{at} -> {out}");
                    }
                }
            }
        }
    }

    #[test]
    fn quiet_windows_within_a_day_and_none() {
        let tz = zone(None, "UTC").unwrap();
        assert_eq!(outside_quiet(utc("2026-03-02T13:30:00Z"), tz, (12, 14)), utc("2026-03-02T14:00:00Z"));
        assert_eq!(outside_quiet(utc("2026-03-02T11:59:00Z"), tz, (12, 14)), utc("2026-03-02T11:59:00Z"));
        assert_eq!(outside_quiet(utc("2026-03-02T03:00:00Z"), tz, (5, 5)), utc("2026-03-02T03:00:00Z"));
    }

    #[test]
    fn daylight_saving_gaps_and_bad_input() {
        // America/New_York springs forward at 02:00 on 2026-03-08: quiet until 02:00 → 03:00 EDT
        let tz = zone(Some("America/New_York"), "UTC").unwrap();
        let out = outside_quiet(utc("2026-03-08T05:30:00Z"), tz, (22, 2));
        assert_eq!(out, utc("2026-03-08T07:00:00Z"));
        assert_eq!(zone(Some("Mars/Olympus"), "UTC").unwrap_err().kind, ErrorKind::InvalidParameter);
        // the ends of time do not overflow
        for at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert_eq!(outside_quiet(at, tz, (0, 23)), at);
        }
        let late = utc("9999-12-31T23:30:00Z");
        assert!(outside_quiet(late, zone(Some("Pacific/Kiritimati"), "UTC").unwrap(), (0, 23)) >= late);
        assert!(check_quiet(21, 24).is_err());
        assert_eq!(check_quiet(21, 8).unwrap(), (21, 8));
    }
}
