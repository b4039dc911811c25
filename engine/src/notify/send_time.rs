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
    let next = outside_quiet_local(local, hours);
    if next == local {
        at
    } else {
        instant(tz, next).max(at)
    }
}

/// Hours in a week: a profile's slots, Monday 00:00–00:59 local first.
pub const SLOTS: usize = 168;
/// What a click weighs against an open in an engagement profile.
pub const CLICK_WEIGHT: f64 = 3.0;
/// How many events' worth of the population's profile a customer's own is shrunk toward.
pub const PRIOR_EVENTS: f64 = 8.0;
/// A week of hourly engagement weights.
pub type Profile = [f64; SLOTS];

/// The slot of a local time: Monday 00:00 is 0, Sunday 23:00 is 167.
pub fn slot(local: NaiveDateTime) -> usize {
    local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize
}

/// Engagement per slot from (slot, clicked) pairs: an open weighs 1, a click [`CLICK_WEIGHT`].
/// Machine opens (a mail client fetching images for privacy) are left out by the caller.
pub fn counts(events: impl IntoIterator<Item = (usize, bool)>) -> Profile {
    let mut p = [0.0; SLOTS];
    for (s, clicked) in events {
        if s < SLOTS {
            p[s] += if clicked { CLICK_WEIGHT } else { 1.0 };
        }
    }
    p
}

/// How many times a customer's own events their hour-of-day profile weighs in each hour of the
/// week (see [`shrunk`]).
pub const DAY_POOL: f64 = 1.0;

/// A customer's profile as shares of the week, shrunk in two steps, so that a customer with
/// three opens is not ruled by them and one open at an odd hour on one weekday does not outweigh
/// a habit seen on the other days:
/// - the customer's hour of day (their events pooled over the seven days) toward the
///   population's: `q_h = (d_h + k·P_h) / (Σd + k)`, with `P` the population's shares per hour of
///   day (uniform when it has no data);
/// - each hour of the week toward that, spread over the days as the population spreads the hour:
///   slot `s` (hour `h`) gets `(c_s + m·q_h·w_s) / (Σc + m)` with `w_s` the population's share of
///   hour `h` that falls on the slot's day (1/7 without data) and `m = DAY_POOL·Σc + k`;
///
/// then smoothed over the neighbouring hours (¼, ½, ¼, around the week), since a habit at 19:00
/// says something about 18:00 and 20:00. The shares sum to one.
pub fn shrunk(customer: &Profile, population: &Profile, k: f64) -> Profile {
    let ptotal: f64 = population.iter().sum();
    let ctotal: f64 = customer.iter().sum();
    let pshare = |s: usize| if ptotal > 0.0 { population[s] / ptotal } else { 1.0 / SLOTS as f64 };
    let (mut pday, mut cday) = ([0.0; 24], [0.0; 24]);
    for s in 0..SLOTS {
        pday[s % 24] += pshare(s);
        cday[s % 24] += customer[s];
    }
    // the customer's hour of day, shrunk toward the population's
    let q: [f64; 24] = std::array::from_fn(|h| (cday[h] + k * pday[h]) / (ctotal + k).max(f64::MIN_POSITIVE));
    let m = DAY_POOL * ctotal + k;
    let mut raw = [0.0; SLOTS];
    for s in 0..SLOTS {
        let h = s % 24;
        let w = if pday[h] > 0.0 { pshare(s) / pday[h] } else { 1.0 / 7.0 };
        raw[s] = (customer[s] + m * q[h] * w) / (ctotal + m).max(f64::MIN_POSITIVE);
    }
    let mut out = [0.0; SLOTS];
    for s in 0..SLOTS {
        out[s] = 0.25 * raw[(s + SLOTS - 1) % SLOTS] + 0.5 * raw[s] + 0.25 * raw[(s + 1) % SLOTS];
    }
    out
}

/// The best time at or after `after` (local) within the next `horizon` hours (1 to 168): the
/// slot with the highest score outside the quiet hours (ties: the earliest), at the start of its
/// hour or at `after` when that is the current hour. With probability `explore` (decided by `draw` in [0, 1), a
/// deterministic hash of customer and day), an allowed slot at random instead, so the profile
/// keeps learning about hours it would never try.
pub fn best_local(after: NaiveDateTime, scores: &Profile, quiet_hours: (u32, u32), horizon: u32, explore: f64, draw: f64) -> NaiveDateTime {
    let Some(hour_start) = after.date().and_hms_opt(after.hour(), 0, 0) else { return after };
    let allowed: Vec<NaiveDateTime> =
        (0..i64::from(horizon.clamp(1, SLOTS as u32))).map(|h| hour_start + Duration::hours(h)).filter(|t| !quiet(t.hour(), quiet_hours)).collect();
    if allowed.is_empty() {
        // every hour of the horizon is quiet: the first one after the quiet hours
        return outside_quiet_local(after, quiet_hours);
    }
    let pick = if explore > 0.0 && draw < explore {
        allowed[((draw / explore) * allowed.len() as f64) as usize % allowed.len()]
    } else {
        let mut best = allowed[0];
        for &t in &allowed[1..] {
            if scores[slot(t)] > scores[slot(best)] + 1e-12 {
                best = t;
            }
        }
        best
    };
    pick.max(after)
}

fn outside_quiet_local(local: NaiveDateTime, hours: (u32, u32)) -> NaiveDateTime {
    if !quiet(local.hour(), hours) {
        return local;
    }
    let Some(end) = local.date().and_hms_opt(hours.1, 0, 0) else { return local };
    if end > local {
        end
    } else {
        end + Duration::days(1)
    }
}

/// A deterministic draw in [0, 1) for a customer on a day (the exploration decision): FNV-1a of
/// the two, then SplitMix64's finalizer, since FNV alone leaves its high bits nearly unchanged
/// when only the last characters (the day) differ.
pub fn draw(customer_id: &str, day: chrono::NaiveDate) -> f64 {
    let mut z = crate::hash::fnv1a64(format!("{customer_id}\u{1f}{day}").as_bytes());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// [`best_local`] for an instant in a time zone, back as an instant.
pub fn best_time(after: DateTime<Utc>, tz: Tz, scores: &Profile, quiet_hours: (u32, u32), horizon: u32, explore: f64, draw: f64) -> DateTime<Utc> {
    if !(1..=9999).contains(&after.year()) {
        return after;
    }
    let local = after.with_timezone(&tz).naive_local();
    let best = best_local(local, scores, quiet_hours, horizon, explore, draw);
    if best == local {
        return after;
    }
    instant(tz, best).max(after)
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

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_habit_of_other_days_outweighs_one_odd_hour_and_a_weekend_habit_still_shows() {
        // the population at 09:00 on weekdays
        let population = counts((0..5).flat_map(|d| std::iter::repeat_n((d * 24 + 9, false), 50)));
        let quiet = (22, 7);
        // 20:00 on Mondays, Tuesdays, Thursdays and Fridays for eight weeks, and once, on a
        // Wednesday, an open at 15:00: a Wednesday's slot is 20:00 (counted by the hour of the
        // week alone, it was 15:00)
        let mut events: Vec<(usize, bool)> = (0..8).flat_map(|_| [0, 1, 3, 4].map(|d| (d * 24 + 20, false))).collect();
        events.push((2 * 24 + 15, false));
        let wednesday = local("2026-03-04 07:00");
        assert_eq!(best_local(wednesday, &shrunk(&counts(events), &population, PRIOR_EVENTS), quiet, 24, 0.0, 0.5), local("2026-03-04 20:00"));
        // weekdays at 20:00 and Saturdays at 10:00, every week for eight weeks: a Saturday's
        // slot is 10:00, a Monday's 20:00
        let habit = counts((0..8).flat_map(|_| (0..5).map(|d| (d * 24 + 20, false)).chain([(5 * 24 + 10, false)])));
        let scores = shrunk(&habit, &population, PRIOR_EVENTS);
        assert_eq!(best_local(local("2026-03-07 07:00"), &scores, quiet, 15, 0.0, 0.5), local("2026-03-07 10:00"));
        assert_eq!(best_local(local("2026-03-02 07:00"), &scores, quiet, 15, 0.0, 0.5), local("2026-03-02 20:00"));
    }

    #[test]
    fn a_habit_wins_over_the_population_once_it_has_evidence() {
        // the population opens at 09:00 on weekdays; this customer at 20:00 every day
        let population = counts((0..5).flat_map(|d| std::iter::repeat_n((d * 24 + 9, false), 50)));
        let few = counts([(20, false)]); // one open, Monday 20:00
        let many = counts((0..7).flat_map(|d| std::iter::repeat_n((d * 24 + 20, true), 3)));
        let after = local("2026-03-02 06:30"); // a Monday
        let quiet = (22, 7);
        // one open is not enough to override the population
        assert_eq!(best_local(after, &shrunk(&few, &population, PRIOR_EVENTS), quiet, 168, 0.0, 0.5), local("2026-03-02 09:00"));
        // twenty-one clicks are
        assert_eq!(best_local(after, &shrunk(&many, &population, PRIOR_EVENTS), quiet, 168, 0.0, 0.5), local("2026-03-02 20:00"));
        // no data at all: uniform, so the first allowed moment
        assert_eq!(best_local(after, &shrunk(&[0.0; SLOTS], &[0.0; SLOTS], PRIOR_EVENTS), quiet, 168, 0.0, 0.5), local("2026-03-02 07:00"));
        // the current hour is used from `after` on
        let at = local("2026-03-02 20:10");
        assert_eq!(best_local(at, &shrunk(&many, &population, PRIOR_EVENTS), quiet, 168, 0.0, 0.5), at);
        // within a horizon: the best of the next 8 hours (12:00 to 19:00) is 19:00, next to the habit
        assert_eq!(best_local(local("2026-03-02 12:00"), &shrunk(&many, &population, PRIOR_EVENTS), quiet, 8, 0.0, 0.5), local("2026-03-02 19:00"));
        // a horizon inside the quiet hours: the end of them
        assert_eq!(best_local(local("2026-03-02 22:30"), &shrunk(&many, &population, PRIOR_EVENTS), quiet, 3, 0.0, 0.5), local("2026-03-03 07:00"));
    }

    #[test]
    fn exploration_picks_allowed_slots_and_shares_sum_to_one() {
        let p = shrunk(&counts([(3, true), (50, false)]), &counts([(9, false)]), PRIOR_EVENTS);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let after = local("2026-03-04 12:00");
        for i in 0..100 {
            let draw = i as f64 / 1000.0; // below explore = 0.1: explores
            let t = best_local(after, &p, (21, 8), 168, 0.1, draw);
            assert!(!quiet(t.hour(), (21, 8)) && t >= after && t < after + Duration::days(7), "{t}");
        }
        // the draw explores on about a tenth of days, for one customer and across customers
        let days = (0..2000).map(|d| chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(d));
        let share = days.filter(|&d| draw("c42", d) < 0.1).count() as f64 / 2000.0;
        assert!((0.08..0.12).contains(&share), "{share}");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let share = (0..2000).filter(|i| draw(&format!("c{i}"), day) < 0.1).count() as f64 / 2000.0;
        assert!((0.08..0.12).contains(&share), "{share}");
        assert_eq!(draw("c42", day), draw("c42", day));
        assert_eq!(slot(local("2026-03-08 23:59")), 167); // a Sunday
        assert_eq!(slot(local("2026-03-09 00:00")), 0);
    }

    /// Planted habits: each customer opens around their own hour of the day (a morning, lunch or
    /// evening person, ±1 h; one open in five at any hour); 1 to 12 past opens each. The next open lands within ±1 h of the
    /// chosen slot far more often with the shrunk profile than with the population's best hour
    /// or a fixed 10:00. The figures: engine/examples/send_time_eval.rs.
    #[test]
    fn the_shrunk_profile_beats_the_population_hour_and_a_fixed_hour_on_planted_habits() {
        let r = evaluate_planted(2000, 7);
        assert!(r.profile > r.population + 0.15, "{r:?}");
        assert!(r.population >= r.fixed, "{r:?}");
    }
}

/// Offline evaluation of send-time choice on planted habits (see the test of the same name).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendTimeEval {
    pub customers: usize,
    /// Share of next opens within ±1 hour (time of day) of the slot chosen by each strategy.
    pub profile: f64,
    pub population: f64,
    pub fixed: f64,
}

/// Plants `customers` habits (seeded), learns from their past opens, and scores the three
/// strategies against each customer's next open.
pub fn evaluate_planted(customers: usize, seed: u64) -> SendTimeEval {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let habits = [(8u32, 0.3), (12, 0.2), (20, 0.5)];
    let mut people = Vec::with_capacity(customers);
    let mut population = [0.0; SLOTS];
    for _ in 0..customers {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut hour = habits[0].0;
        for (h, share) in habits {
            acc += share;
            if u < acc {
                hour = h;
                break;
            }
        }
        // each person's own hour within their group, then opens at it ±1 h
        let own = (hour as i64 + rng.random_range(-2..=2)).rem_euclid(24) as u32;
        let open = |rng: &mut rand::rngs::StdRng| -> (usize, bool) {
            let day = rng.random_range(0..7usize);
            // one open in five at any hour: habits are not clockwork
            let h = if rng.random::<f64>() < 0.2 { rng.random_range(0..24usize) } else { (own as i64 + rng.random_range(-1..=1)).rem_euclid(24) as usize };
            (day * 24 + h, rng.random::<f64>() < 0.2)
        };
        let n = rng.random_range(1..=12);
        let past: Vec<(usize, bool)> = (0..n).map(|_| open(&mut rng)).collect();
        for &(s, c) in &past {
            population[s] += if c { CLICK_WEIGHT } else { 1.0 };
        }
        let next = open(&mut rng).0 % 24;
        people.push((counts(past), next as i64));
    }
    let after = NaiveDateTime::parse_from_str("2026-03-02 06:00", "%Y-%m-%d %H:%M").unwrap_or_default();
    let none = (0, 0);
    let near = |t: NaiveDateTime, next: i64| {
        let d = (t.hour() as i64 - next).rem_euclid(24);
        d <= 1 || d >= 23
    };
    let (mut a, mut b, mut c) = (0usize, 0usize, 0usize);
    let pop_scores = shrunk(&[0.0; SLOTS], &population, PRIOR_EVENTS);
    for (past, next) in &people {
        a += near(best_local(after, &shrunk(past, &population, PRIOR_EVENTS), none, 168, 0.0, 0.5), *next) as usize;
        b += near(best_local(after, &pop_scores, none, 168, 0.0, 0.5), *next) as usize;
        c += near(after.date().and_hms_opt(10, 0, 0).unwrap_or(after), *next) as usize;
    }
    let share = |x: usize| x as f64 / customers.max(1) as f64;
    SendTimeEval { customers, profile: share(a), population: share(b), fixed: share(c) }
}
