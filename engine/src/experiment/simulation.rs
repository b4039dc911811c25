//! Statistical honesty of the report, by simulation. Each run is an experiment as the report
//! sees it: units with the demo generator's customer ids (`demo-c0000042`) go to arms by the real
//! assignment hash under a salt of their own; each unit is shown one list and clicks with the
//! arm's true probability (a seeded generator, so the figures below are the same on every
//! machine); the report's own functions judge the result.
//!
//! * A/A (both arms 10%), 200 runs: the z-test rejects at α = 0.05 in about 5% of them.
//! * +20% planted (10% → 12%), 200 runs: the rejection rate is the power the report's MDE
//!   predicts for that size.
//! * a 50/50 experiment whose logging records a fifth of b's units under control (60/40
//!   arrives) is flagged by the sample-ratio test every time, while correct splits almost never
//!   are.
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RUNS: usize = 200;

/// One run: (clicks, lists) per arm, and the units per arm as logged.
fn run(salt: &str, units: usize, rates: [f64; 2], misroute_b: f64, rng: &mut StdRng) -> ([u64; 2], [u64; 2], [u64; 2]) {
    let (mut x, mut n, mut logged) = ([0u64; 2], [0u64; 2], [0u64; 2]);
    for u in 0..units {
        let id = format!("demo-c{u:07}");
        let Some(arm) = assign(salt, &id, &[1.0, 1.0]) else { unreachable!("positive weights") };
        // the click depends on the arm served; a broken logger may record it under control
        let clicked = rng.random::<f64>() < rates[arm];
        let shown = if arm == 1 && rng.random::<f64>() < misroute_b { 0 } else { arm };
        n[shown] += 1;
        x[shown] += u64::from(clicked);
        logged[shown] += 1;
    }
    (x, n, logged)
}

/// Power of the two-sided z-test for a true difference `delta` at these sizes (normal
/// approximation, the one `min_detectable_effect` inverts).
fn predicted_power(p0: f64, p1: f64, n0: u64, n1: u64, alpha: f64) -> f64 {
    let se = (p0 * (1.0 - p0) / n0 as f64 + p1 * (1.0 - p1) / n1 as f64).sqrt();
    normal_cdf((p1 - p0).abs() / se - normal_quantile(1.0 - alpha / 2.0))
}

#[test]
fn a_a_experiments_reject_about_five_percent_of_the_time() {
    let mut rng = StdRng::seed_from_u64(2026);
    let (mut rejected, mut srm_flags) = (0, 0);
    for r in 0..RUNS {
        let (x, n, logged) = run(&format!("aa-{r}"), 4000, [0.10, 0.10], 0.0, &mut rng);
        let c = compare(x[1], n[1], x[0], n[0], 0.05).expect("both arms have lists");
        rejected += usize::from(c.p_value < 0.05);
        let (_, p) = sample_ratio_mismatch(&logged, &[1.0, 1.0]).expect("units");
        srm_flags += usize::from(p < 0.001);
    }
    let rate = rejected as f64 / RUNS as f64;
    eprintln!("A/A: {rejected} of {RUNS} runs rejected at 0.05 ({rate}); {srm_flags} flagged as SRM");
    // 5% ± 2.5 binomial standard deviations (1.5 points at 200 runs)
    assert!((0.015..=0.09).contains(&rate), "A/A false-positive rate {rate}");
    assert!(srm_flags <= 2, "{srm_flags} of {RUNS} correct splits flagged");
}

#[test]
fn a_planted_twenty_percent_lift_is_found_at_the_predicted_power() {
    let mut rng = StdRng::seed_from_u64(7);
    let (p0, p1, units) = (0.10, 0.12, 7000);
    let (mut detected, mut predicted, mut mde) = (0, 0.0, 0.0);
    for r in 0..RUNS {
        let (x, n, _) = run(&format!("lift-{r}"), units, [p0, p1], 0.0, &mut rng);
        let c = compare(x[1], n[1], x[0], n[0], 0.05).expect("lists");
        detected += usize::from(c.p_value < 0.05 && c.diff > 0.0);
        predicted += predicted_power(p0, p1, n[0], n[1], 0.05);
        mde += min_detectable_effect(x[0] as f64 / n[0] as f64, n[1], n[0], 0.05, 0.8).expect("mde");
    }
    let (power, predicted, mde) = (detected as f64 / RUNS as f64, predicted / RUNS as f64, mde / RUNS as f64);
    eprintln!("+20%: detected in {detected} of {RUNS} runs ({power}); predicted power {predicted:.3}; mean MDE {mde:.4}");
    // 3 500 lists per arm: the report's MDE at 80% power is about the planted 2 points
    assert!((0.017..=0.023).contains(&mde), "mde {mde}");
    // the observed power agrees with the prediction within 2.5 binomial standard deviations
    let sd = (predicted * (1.0 - predicted) / RUNS as f64).sqrt();
    assert!((power - predicted).abs() <= 2.5 * sd + 0.01, "detected {power}, predicted {predicted}");
    assert!((0.65..=0.9).contains(&predicted), "predicted {predicted}");
}

#[test]
fn a_broken_split_is_flagged_as_a_sample_ratio_mismatch() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut flagged = 0;
    for r in 0..RUNS {
        // 20% of b's units logged as control: 60/40 arrives for a 50/50 experiment
        let (_, _, logged) = run(&format!("srm-{r}"), 4000, [0.10, 0.10], 0.2, &mut rng);
        let share = logged[0] as f64 / (logged[0] + logged[1]) as f64;
        assert!((0.57..=0.63).contains(&share), "{logged:?}");
        let (_, p) = sample_ratio_mismatch(&logged, &[1.0, 1.0]).expect("units");
        flagged += usize::from(p < 0.001);
    }
    eprintln!("60/40: {flagged} of {RUNS} runs flagged as SRM");
    assert_eq!(flagged, RUNS, "a 60/40 split of 4 000 units must always be flagged");
}

/// Reads the report after every `every` units up to `units`; for each run, whether any look
/// rejected at 0.05 (in favour of b), by the z-test and by the always-valid p-value.
fn peeking(salt: &str, units: usize, every: usize, rates: [f64; 2], rng: &mut StdRng) -> (bool, bool) {
    let (mut x, mut n) = ([0u64; 2], [0u64; 2]);
    let (mut z_rejected, mut seq_rejected) = (false, false);
    for u in 0..units {
        let Some(arm) = assign(salt, &format!("demo-c{u:07}"), &[1.0, 1.0]) else { unreachable!("positive weights") };
        n[arm] += 1;
        x[arm] += u64::from(rng.random::<f64>() < rates[arm]);
        if (u + 1) % every == 0 {
            if let Some(c) = compare(x[1], n[1], x[0], n[0], 0.05) {
                z_rejected |= c.p_value < 0.05;
            }
            seq_rejected |= always_valid_p(x[1], n[1], x[0], n[0]).is_some_and(|p| p < 0.05);
        }
    }
    (z_rejected, seq_rejected)
}

#[test]
fn the_always_valid_p_value_stays_honest_when_the_report_is_read_every_day() {
    // 20 looks (every 500 units up to 10 000), 200 A/A runs
    let mut rng = StdRng::seed_from_u64(31);
    let (mut z, mut seq) = (0, 0);
    for r in 0..RUNS {
        let (a, b) = peeking(&format!("peek-{r}"), 10_000, 500, [0.10, 0.10], &mut rng);
        z += usize::from(a);
        seq += usize::from(b);
    }
    eprintln!("A/A read 20 times: the z-test rejected at some look in {z} of {RUNS} runs, the always-valid p-value in {seq}");
    // the z-test read 20 times is far above its 5%; the always-valid one is not
    assert!(z as f64 / RUNS as f64 > 0.12, "z-test with peeking rejected only {z}");
    assert!(seq as f64 / RUNS as f64 <= 0.06, "always-valid p rejected {seq} of {RUNS}");
    // and it still finds a planted +20% lift by the end of most runs
    let mut found = 0;
    for r in 0..RUNS {
        found += usize::from(peeking(&format!("peek-lift-{r}"), 20_000, 500, [0.10, 0.12], &mut rng).1);
    }
    eprintln!("+20% read 40 times: the always-valid p-value found it in {found} of {RUNS} runs");
    assert!(found as f64 / RUNS as f64 >= 0.5, "found {found}");
}

/// One A/A run where each unit sees several lists (1 to 8) and has its own click propensity (a
/// Beta-like spread around 10%): per arm the lists, the lists clicked, the units and the per-unit
/// moments the report keeps.
fn clustered(salt: &str, units: usize, rng: &mut StdRng) -> ([u64; 2], [u64; 2], [u64; 2], [UnitMoments; 2]) {
    let (mut x, mut n, mut u_n) = ([0u64; 2], [0u64; 2], [0u64; 2]);
    let mut m = [UnitMoments::default(); 2];
    for u in 0..units {
        let id = format!("demo-c{u:07}");
        let Some(arm) = assign(salt, &id, &[1.0, 1.0]) else { unreachable!("positive weights") };
        // most units rarely click, a few click most lists: mean 10%
        let p: f64 = if rng.random::<f64>() < 0.1 { 0.55 } else { 0.05 };
        let lists = rng.random_range(1..=8u64);
        let clicked = (0..lists).filter(|_| rng.random::<f64>() < p).count() as u64;
        n[arm] += lists;
        x[arm] += clicked;
        u_n[arm] += 1;
        m[arm].add(lists as f64, clicked as f64);
    }
    (x, n, u_n, m)
}

/// Customers who see several lists: a z-test that takes every list as independent rejects a true
/// A/A far more often than 5%; with the design effect from the per-unit moments it is back near
/// 5%. One list per unit gives a design effect of exactly 1.
#[test]
fn several_lists_per_customer_keep_the_false_positive_rate_near_five_percent() {
    let mut rng = StdRng::seed_from_u64(7);
    let (mut naive, mut adjusted) = (0, 0);
    let mut effects = Vec::new();
    for r in 0..RUNS {
        let (x, n, units, m) = clustered(&format!("cl-{r}"), 3000, &mut rng);
        let c = compare(x[1], n[1], x[0], n[0], 0.05).expect("lists");
        naive += usize::from(c.p_value < 0.05);
        let d = [0, 1].map(|a| design_effect(&m[a]));
        assert_eq!((m[0].n + m[1].n) as u64, units[0] + units[1]);
        effects.push(d[0]);
        let c = compare_clustered(x[1], n[1], x[0], n[0], 0.05, [d[1], d[0]]).expect("lists");
        adjusted += usize::from(c.p_value < 0.05);
    }
    effects.sort_by(f64::total_cmp);
    let (naive_rate, adjusted_rate) = (naive as f64 / RUNS as f64, adjusted as f64 / RUNS as f64);
    eprintln!(
        "clustered A/A: lists as independent {naive} of {RUNS}, with the design effect {adjusted} of {RUNS}; median design effect {:.2}",
        effects[RUNS / 2]
    );
    assert!(naive_rate > 0.12, "the naive test should over-reject here: {naive_rate}");
    assert!((0.015..=0.09).contains(&adjusted_rate), "adjusted false-positive rate {adjusted_rate}");
    // one list per unit: the moments give exactly the binomial variance
    let mut one = UnitMoments::default();
    (0..100).for_each(|u| one.add(1.0, f64::from(u8::from(u % 10 == 0))));
    assert_eq!(design_effect(&one), 1.0);
    assert_eq!(design_effect(&UnitMoments::default()), 1.0);
    // every unit's lists all clicked or none: as many independent trials as units
    let mut all_or_none = UnitMoments::default();
    (0..100).for_each(|u| all_or_none.add(4.0, if u % 10 == 0 { 4.0 } else { 0.0 }));
    assert!((design_effect(&all_or_none) - 4.0 * 100.0 / 99.0).abs() < 1e-9, "{}", design_effect(&all_or_none));
    assert_eq!(effective(10, 100, 1.0), (10, 100));
    assert_eq!(effective(10, 100, 2.0), (5, 50));
}
