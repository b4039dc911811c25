//! Popularity with time-decay and time-of-day awareness, for cold start and fallbacks.
//!
//! Each interaction weighs `weight × 0.5^(age / half_life)`. An item's popularity is the sum.
//! Its hour-of-day affinity a(h) = 24 · (w(h) + 1) / (w + 24) and weekday affinity
//! d(wd) = 7 · (w(wd) + 1) / (w + 7) compare its weight in that hour (weekday) with an even spread
//! (Laplace smoothing keeps rarely bought items near 1). The score for a time is
//! popularity · √a(h) · √d(wd): a steady best seller stays on top, but between items of similar
//! popularity the one bought at this hour wins.

use crate::serve::flat::Slab;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub item: u32,
    pub weight: f32,
    /// epoch milliseconds (UTC; pass local hours by shifting)
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    pub score: Slab<f32>,
    pub by_hour: Slab<[f32; 24]>,
    pub by_weekday: Slab<[f32; 7]>,
}

impl Interaction {
    /// The weight halved every `half_life_days` of age at `now_ms`.
    fn decayed(&self, now_ms: i64, half_life_days: f64) -> f32 {
        let age = now_ms.saturating_sub(self.at_ms).max(0) as f64;
        (f64::from(self.weight) * 0.5f64.powf(age / (half_life_days.max(1e-6) * 86_400_000.0))) as f32
    }
}

/// The UTC hour of epoch milliseconds `ms`, 0..24, for any i64 (times before 1970 included).
pub fn hour_of(ms: i64) -> usize {
    ms.div_euclid(3_600_000).rem_euclid(24) as usize
}

pub fn weekday_of(ms: i64) -> usize {
    // 0 = Monday; 1970-01-01 was a Thursday
    // rem_euclid: a day before 1970 must not give a negative index
    (ms.div_euclid(86_400_000) + 3).rem_euclid(7) as usize
}

/// The UTC hour of the week of `ms`, 0..168 (Monday 00:00 is 0): what time-aware popularity
/// varies with, and the key a model keeps one hour's popularity under.
pub fn hour_of_week(ms: i64) -> u32 {
    (hour_of(ms) + 24 * weekday_of(ms)) as u32
}

pub fn train(interactions: &[Interaction], n_items: usize, now_ms: i64, half_life_days: f64) -> Popularity {
    let mut p = Popularity { score: vec![0.0; n_items].into(), by_hour: vec![[0.0; 24]; n_items].into(), by_weekday: vec![[0.0; 7]; n_items].into() };
    for x in interactions {
        let i = x.item as usize;
        if i >= n_items || !x.weight.is_finite() {
            continue;
        }
        let w = x.decayed(now_ms, half_life_days);
        p.score[i] += w;
        p.by_hour[i][hour_of(x.at_ms)] += w;
        p.by_weekday[i][weekday_of(x.at_ms)] += w;
    }
    p
}

/// Decayed popularity within groups of customers (segments): for each group, its `top` items,
/// best first, as (item, score). `groups` pairs each interaction with its customer's group.
/// Ties go to the lower item index.
pub fn top_by_group(
    interactions: &[(u32, Interaction)],
    n_groups: usize,
    n_items: usize,
    now_ms: i64,
    half_life_days: f64,
    top: usize,
) -> Vec<Vec<(u32, f32)>> {
    let mut acc: Vec<std::collections::HashMap<u32, f32>> = vec![Default::default(); n_groups];
    for (g, x) in interactions {
        if (*g as usize) >= n_groups || (x.item as usize) >= n_items || !x.weight.is_finite() || x.weight <= 0.0 {
            continue;
        }
        *acc[*g as usize].entry(x.item).or_insert(0.0) += x.decayed(now_ms, half_life_days);
    }
    acc.into_iter()
        .map(|m| {
            let mut v: Vec<(u32, f32)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(top);
            v
        })
        .collect()
}

impl Popularity {
    /// The time-aware score of item `i` at `at_ms`.
    pub fn score_at(&self, i: usize, at_ms: i64) -> f32 {
        let total = self.score[i];
        let a = 24.0 * (self.by_hour[i][hour_of(at_ms)] + 1.0) / (total + 24.0);
        let d = 7.0 * (self.by_weekday[i][weekday_of(at_ms)] + 1.0) / (total + 7.0);
        total * a.sqrt() * d.sqrt()
    }

    /// The top `k` items at `at_ms` among those `keep` accepts (e.g. a category, in stock).
    pub fn top(&self, k: usize, at_ms: i64, keep: impl Fn(usize) -> bool) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = (0..self.score.len()).filter(|&i| self.score[i] > 0.0 && keep(i)).map(|i| (i as u32, self.score_at(i, at_ms))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const DAY: i64 = 86_400_000;

    /// Hour, weekday, training and scoring take any i64 time without panicking: random times
    /// over the whole range (seeded) and the extremes, before and after 1970.
    #[test]
    fn any_time_is_an_index() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let mut times: Vec<i64> = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, -DAY, -3_600_000 - 1, i64::MAX - 1, i64::MAX];
        times.extend((0..20_000).map(|_| rng.random::<i64>()));
        for &t in &times {
            assert!(hour_of(t) < 24, "{t}");
            assert!(weekday_of(t) < 7, "{t}");
        }
        // 1969-12-31T23:00Z is hour 23 of a Wednesday
        assert_eq!((hour_of(-3_600_000), weekday_of(-3_600_000)), (23, 2));
        let xs: Vec<Interaction> = times.iter().map(|&at_ms| Interaction { item: 0, weight: 1.0, at_ms }).collect();
        for &now in &times[..9] {
            let p = train(&xs, 1, now, 30.0);
            let _ = p.score_at(0, now);
            let _ = top_by_group(&xs.iter().map(|x| (0, *x)).collect::<Vec<_>>(), 1, 1, now, 30.0, 3);
        }
    }
    const NOW: i64 = 1_735_689_600_000; // 2025-01-01 00:00 UTC, a Wednesday

    #[test]
    fn groups_rank_their_own_best_sellers() {
        let x = |item: u32, weight: f32, days: i64| Interaction { item, weight, at_ms: NOW - days * DAY };
        let xs = [(0, x(1, 1.0, 0)), (0, x(1, 1.0, 0)), (0, x(2, 3.0, 14)), (1, x(2, 1.0, 0)), (1, x(3, -1.0, 0)), (7, x(4, 9.0, 0))];
        let g = top_by_group(&xs, 2, 5, NOW, 14.0, 10);
        // group 0: item 1 = 2.0; item 2 = 3.0 halved = 1.5. Negative weights and unknown groups count nothing.
        assert_eq!(g[0].iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_relative_eq!(g[0][1].1, 1.5, epsilon = 1e-6);
        assert_eq!(g[1], vec![(2, 1.0)]);
        assert_eq!(top_by_group(&xs, 2, 5, NOW, 14.0, 1)[0].len(), 1);
    }

    #[test]
    fn decay_halves_at_the_half_life() {
        let p = train(&[Interaction { item: 0, weight: 2.0, at_ms: NOW - 14 * DAY }, Interaction { item: 1, weight: 1.0, at_ms: NOW }], 2, NOW, 14.0);
        assert_relative_eq!(p.score[0], 1.0, epsilon = 1e-6);
        assert_relative_eq!(p.score[1], 1.0, epsilon = 1e-6);
        assert_eq!(weekday_of(NOW), 2); // Wednesday
        assert_eq!(hour_of(NOW + 20 * 3_600_000), 20);
    }

    #[test]
    fn evening_items_win_in_the_evening_and_best_sellers_stay_on_top() {
        // items 0 and 1 equally popular: 0 bought at 20:00, 1 at 08:00; item 2 sells 5x more,
        // spread over the day
        let mut xs = Vec::new();
        for d in 1..=10 {
            xs.push(Interaction { item: 0, weight: 1.0, at_ms: NOW - d * DAY + 20 * 3_600_000 });
            xs.push(Interaction { item: 1, weight: 1.0, at_ms: NOW - d * DAY + 8 * 3_600_000 });
            for j in 0..5 {
                xs.push(Interaction { item: 2, weight: 1.0, at_ms: NOW - d * DAY + ((d * 5 + j) % 24) * 3_600_000 });
            }
        }
        let p = train(&xs, 4, NOW, 3650.0);
        let evening = NOW + 20 * 3_600_000;
        let morning = NOW + 8 * 3_600_000;
        let top = |at| p.top(3, at, |_| true).iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(top(evening)[1..], [0, 1]);
        assert_eq!(top(morning)[1..], [1, 0]);
        assert_eq!(top(evening)[0], 2, "a steady best seller stays first");
        assert_eq!(p.top(3, evening, |i| i != 2).len(), 2, "filters apply; never-seen items are left out");
        // an item sold only at noon loses the evening to an equally popular evening item
        let noon: Vec<Interaction> = (1..=10).map(|d| Interaction { item: 3, weight: 1.0, at_ms: NOW - d * DAY + 12 * 3_600_000 }).collect();
        let q = train(&[xs, noon].concat(), 4, NOW, 3650.0);
        assert!(q.score_at(0, evening) > q.score_at(3, evening));
    }
}
