//! Experiments: deterministic assignment of customers (or sessions) to arms, and the statistics
//! of an honest report.
//!
//! **Assignment.** A unit (customer id, or session id for anonymous traffic) goes to the arm
//! whose share of the cumulative weights holds `u = top 53 bits of SplitMix64(FNV-1a-64(salt ‖
//! 0x00 ‖ unit)) / 2^53`, a number in [0, 1). Stable across calls, sessions, restarts and
//! releases (both hashes are fixed here); experiments with different salts split independently.
//!
//! **Statistics** (all two-sided, α = 0.05 unless given):
//! * Wilson score interval of a rate;
//! * difference of two rates with its Wald interval (unpooled), relative difference, and the
//!   two-proportion z-test p-value (pooled);
//! * sample-ratio mismatch: χ² goodness of fit of the units per arm against the weights;
//! * minimum detectable effect at the current sample sizes (power 0.8);
//! * Holm's step-down correction of several p-values.
use crate::hash::fnv1a64;

pub mod html;
#[cfg(test)]
mod simulation;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where `unit` falls in [0, 1) for an experiment salted `salt`.
pub fn position(salt: &str, unit: &str) -> f64 {
    let mut bytes = Vec::with_capacity(salt.len() + 1 + unit.len());
    bytes.extend_from_slice(salt.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(unit.as_bytes());
    (splitmix64(fnv1a64(&bytes)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm (index into `weights`) of `unit`; None when no weight is positive.
pub fn assign(salt: &str, unit: &str, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let target = position(salt, unit) * total;
    let mut acc = 0.0;
    let mut last = None;
    for (i, &w) in weights.iter().enumerate() {
        if !(w.is_finite() && w > 0.0) {
            continue;
        }
        acc += w;
        last = Some(i);
        if target < acc {
            return Some(i);
        }
    }
    last
}

/// The standard normal distribution function Φ(x) (erfc by W. J. Cody's rational
/// approximations through `libm`-free code: absolute error below 1e-14 over the real line).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the continued fraction for large |x| and the series
/// of erf for small |x| (relative error below 1e-13; checked against tabled values).
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        loop {
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() <= 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
            n += 1.0;
            term *= -x * x / n;
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz)
        let tiny = 1e-300;
        let mut f = x;
        let mut c = x;
        let mut d = 0.0;
        for i in 1..300 {
            let a = i as f64 / 2.0;
            d = x + a * d;
            d = if d.abs() < tiny { tiny } else { d };
            c = x + a / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    }
}

/// The standard normal quantile Φ⁻¹(p) (Acklam's approximation refined by one Halley step:
/// relative error below 1e-12). p outside (0, 1) gives ±∞.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] =
        [-3.969_683_028_665_376e1, 2.209_460_984_245_205e2, -2.759_285_104_469_687e2, 1.383_577_518_672_69e2, -3.066_479_806_614_716e1, 2.506_628_277_459_239];
    const B: [f64; 5] = [-5.447_609_879_822_406e1, 1.615_858_368_580_409e2, -1.556_989_798_598_866e2, 6.680_131_188_771_972e1, -1.328_068_155_288_572e1];
    const C: [f64; 6] =
        [-7.784_894_002_430_293e-3, -3.223_964_580_411_365e-1, -2.400_758_277_161_838, -2.549_732_539_343_734, 4.374_664_141_464_968, 2.938_163_982_698_783];
    const D: [f64; 4] = [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let lo = 0.024_25;
    let x = if p < lo {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - lo {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // one Halley step on Φ(x) - p
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Per arm and metric, sums over the arm's units (customers, or sessions): with `t` a unit's
/// lists and `s` those of them with a success, the number of units `n`, Σt, Σs, Σt², Σs² and Σst.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UnitMoments {
    pub n: f64,
    pub t: f64,
    pub s: f64,
    pub tt: f64,
    pub ss: f64,
    pub st: f64,
}

impl UnitMoments {
    /// One unit's counts added.
    pub fn add(&mut self, t: f64, s: f64) {
        self.n += 1.0;
        self.t += t;
        self.s += s;
        self.tt += t * t;
        self.ss += s * s;
        self.st += s * t;
    }
}

/// The design effect of a rate over units that saw several lists each: the variance of Σs ÷ Σt
/// over units (the delta method for a ratio of per-unit sums, the unit being what is randomized)
/// ÷ the binomial variance that takes every list as independent. The lists of one customer are
/// clicked together (one who clicks one list tends to click the next), so the binomial variance
/// is too small when units see several lists and a z-test on lists rejects too often. 1 when every
/// unit saw one list (the two variances agree), when there is too little to tell (fewer than two
/// units, a rate of 0 or 1); never below 1 (a negative correlation between a unit's lists is not
/// assumed to help).
pub fn design_effect(m: &UnitMoments) -> f64 {
    let (n, t, s) = (m.n, m.t, m.s.min(m.t));
    if n.is_nan() || t.is_nan() || n < 2.0 || t <= n {
        return 1.0;
    }
    let r = s / t;
    if r <= 0.0 || r >= 1.0 {
        return 1.0;
    }
    // Σ (s_u − r t_u)², with the small-sample factor n ÷ (n − 1)
    let resid = (m.ss - 2.0 * r * m.st + r * r * m.tt).max(0.0) * n / (n - 1.0);
    let var_units = resid / (t * t);
    let var_binomial = r * (1.0 - r) / t;
    let d = var_units / var_binomial;
    if d.is_finite() {
        d.max(1.0)
    } else {
        1.0
    }
}

/// Counts shrunk by a design effect `d`: the binomial figures (Wilson interval, z-test, MDE,
/// always-valid p) computed on `x ÷ d` of `n ÷ d` have the variance of the clustered rate.
pub fn effective(x: u64, n: u64, d: f64) -> (u64, u64) {
    if d.is_nan() || d <= 1.0 || !d.is_finite() {
        return (x, n);
    }
    let ne = (n as f64 / d).round().max(1.0);
    let xe = (x.min(n) as f64 / d).round().min(ne);
    (xe as u64, ne as u64)
}

/// The Wilson score interval of `successes` out of `n` at confidence 1 − α; None for n = 0.
pub fn wilson(successes: u64, n: u64, alpha: f64) -> Option<(f64, f64)> {
    wilson_clustered(successes, n, alpha, 1.0)
}

/// [`wilson`] for a rate whose variance is `d` times the binomial one ([`design_effect`]): the
/// interval of `n ÷ d` independent trials about the rate as counted.
pub fn wilson_clustered(successes: u64, n: u64, alpha: f64, d: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = normal_quantile(1.0 - alpha / 2.0);
    let p = successes.min(n) as f64 / n as f64;
    let n = n as f64 / if d.is_finite() { d.max(1.0) } else { 1.0 };
    let den = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / den;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// An arm against control: rates, difference (arm − control) with its interval, relative
/// difference, and the two-proportion z-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub diff: f64,
    pub diff_low: f64,
    pub diff_high: f64,
    /// diff / control rate (None when the control rate is 0)
    pub relative: Option<f64>,
    pub z: f64,
    pub p_value: f64,
}

/// Compares `x1` of `n1` (the arm) with `x0` of `n0` (control); None when either n is 0.
pub fn compare(x1: u64, n1: u64, x0: u64, n0: u64, alpha: f64) -> Option<Comparison> {
    compare_clustered(x1, n1, x0, n0, alpha, [1.0, 1.0])
}

/// [`compare`] for rates whose variances are `d[0]` (the arm) and `d[1]` (control) times the
/// binomial ones ([`design_effect`]).
pub fn compare_clustered(x1: u64, n1: u64, x0: u64, n0: u64, alpha: f64, d: [f64; 2]) -> Option<Comparison> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (p1, p0) = (x1.min(n1) as f64 / n1 as f64, x0.min(n0) as f64 / n0 as f64);
    let d = d.map(|d| if d.is_finite() { d.max(1.0) } else { 1.0 });
    let (a, b) = (n1 as f64 / d[0], n0 as f64 / d[1]);
    let diff = p1 - p0;
    let z_crit = normal_quantile(1.0 - alpha / 2.0);
    let se = (p1 * (1.0 - p1) / a + p0 * (1.0 - p0) / b).sqrt();
    let pooled = (x1.min(n1) + x0.min(n0)) as f64 / (n1 + n0) as f64;
    let se0 = (pooled * (1.0 - pooled) * (1.0 / a + 1.0 / b)).sqrt();
    let z = if se0 > 0.0 { diff / se0 } else { 0.0 };
    Some(Comparison {
        diff,
        diff_low: diff - z_crit * se,
        diff_high: diff + z_crit * se,
        relative: (p0 > 0.0).then(|| diff / p0),
        z,
        p_value: (2.0 * normal_cdf(-z.abs())).min(1.0),
    })
}

/// The smallest absolute difference from a control rate `p0` that a two-sided test at `alpha`
/// detects with probability `power`, with `n1` and `n0` units.
pub fn min_detectable_effect(p0: f64, n1: u64, n0: u64, alpha: f64, power: f64) -> Option<f64> {
    if n1 == 0 || n0 == 0 || !(0.0..=1.0).contains(&p0) {
        return None;
    }
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    Some(z * (p0 * (1.0 - p0) * (1.0 / n1 as f64 + 1.0 / n0 as f64)).sqrt())
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: relative error below 1e-14).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(s, x) (series for x < s + 1, continued
/// fraction otherwise).
fn gamma_q(s: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_pre = s * x.ln() - x - ln_gamma(s);
    if x < s + 1.0 {
        let (mut sum, mut term, mut a) = (1.0 / s, 1.0 / s, s);
        for _ in 0..10_000 {
            a += 1.0;
            term *= x / a;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * ln_pre.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - s;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - s);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < tiny { tiny } else { d };
            c = b + an / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (ln_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ²_df > x).
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// Sample-ratio mismatch: the χ² statistic of `counts` against the shares of `weights`, and its
/// p-value (df = arms − 1). None with fewer than two arms or no units.
pub fn sample_ratio_mismatch(counts: &[u64], weights: &[f64]) -> Option<(f64, f64)> {
    let total_w: f64 = weights.iter().sum();
    let n: u64 = counts.iter().sum();
    if counts.len() < 2 || counts.len() != weights.len() || n == 0 || total_w <= 0.0 {
        return None;
    }
    let stat: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&c, &w)| {
            let e = n as f64 * w / total_w;
            if e > 0.0 {
                (c as f64 - e).powi(2) / e
            } else {
                0.0
            }
        })
        .sum();
    Some((stat, chi_square_sf(stat, (counts.len() - 1) as f64)))
}

/// The relative effect the always-valid test is tuned to find soonest: its mixture's scale is
/// this share of the pooled rate.
pub const SEQUENTIAL_RELATIVE_EFFECT: f64 = 0.1;

/// The always-valid p-value of an arm (`x1` of `n1`) against control (`x0` of `n0`): the
/// mixture sequential probability ratio test of Johari, Pekelis and Walsh ("Always valid
/// inference", 2017) on the difference of the rates, under the normal approximation, with a
/// normal mixture over the difference of scale τ = [`SEQUENTIAL_RELATIVE_EFFECT`] × the pooled
/// rate. With V the variance of the difference under no effect,
/// Λ = √(V ∕ (V + τ²)) · exp(τ² d² ∕ (2 V (V + τ²))) and p = min(1, 1 ∕ Λ). Λ is a
/// nonnegative martingale under no effect, so by Ville's inequality p stays valid however often
/// the report is read and whenever the experiment is stopped; the z-test's p-value does not (it
/// is valid at one look, planned in advance). The price is power: at a fixed size it needs a
/// larger effect. None when either arm has no trials; 1 when no trial succeeded or all did.
pub fn always_valid_p(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<f64> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (x1, x0) = (x1.min(n1), x0.min(n0));
    let (a, b) = (n1 as f64, n0 as f64);
    let pooled = (x1 + x0) as f64 / (a + b);
    let v = pooled * (1.0 - pooled) * (1.0 / a + 1.0 / b);
    if v <= 0.0 {
        return Some(1.0);
    }
    let d = x1 as f64 / a - x0 as f64 / b;
    let tau2 = (SEQUENTIAL_RELATIVE_EFFECT * pooled).powi(2);
    let log_lambda = 0.5 * (v / (v + tau2)).ln() + tau2 * d * d / (2.0 * v * (v + tau2));
    Some((-log_lambda).exp().min(1.0))
}

/// Holm's step-down adjustment: each p-value multiplied by the number of hypotheses not yet
/// rejected, made monotone, capped at 1; in the input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn the_always_valid_p_value_matches_a_hand_computation() {
        // 12% of 5 000 against 10% of 5 000: V = 0.11 · 0.89 · (2 ∕ 5 000), τ = 0.011
        assert!(close(always_valid_p(600, 5000, 500, 5000).unwrap(), 0.042671, 1e-5));
        // no effect observed: Λ < 1, p = 1; more data at the same difference: smaller p
        assert_eq!(always_valid_p(500, 5000, 500, 5000), Some(1.0));
        assert!(always_valid_p(1200, 10_000, 1000, 10_000).unwrap() < 0.042671 / 10.0);
        assert_eq!(always_valid_p(0, 100, 0, 100), Some(1.0));
        assert_eq!(always_valid_p(1, 0, 1, 10), None);
        // the z-test at the same counts is smaller: the price of reading at any time
        assert!(compare(600, 5000, 500, 5000, 0.05).unwrap().p_value < 0.042671);
    }

    #[test]
    fn assignment_is_stable_independent_between_salts_and_follows_the_weights() {
        assert_eq!(assign("s1", "c42", &[1.0, 1.0]), assign("s1", "c42", &[1.0, 1.0]));
        let n = 100_000;
        let mut counts = [0u64; 3];
        let mut both = [[0u64; 2]; 2];
        for i in 0..n {
            let id = format!("c{i}");
            counts[assign("exp-a", &id, &[50.0, 30.0, 20.0]).unwrap()] += 1;
            let a = assign("salt-1", &id, &[1.0, 1.0]).unwrap();
            let b = assign("salt-2", &id, &[1.0, 1.0]).unwrap();
            both[a][b] += 1;
        }
        let (_, p) = sample_ratio_mismatch(&counts, &[50.0, 30.0, 20.0]).unwrap();
        assert!(p > 0.001, "{counts:?} p {p}");
        // independence: each quarter holds about a quarter
        for row in both {
            for c in row {
                assert!((c as f64 / n as f64 - 0.25).abs() < 0.01, "{both:?}");
            }
        }
        assert_eq!(assign("x", "y", &[0.0, -1.0, f64::NAN]), None);
        assert_eq!(assign("x", "y", &[0.0, 2.0]), Some(1));
        // a documented constant: changing the hash would move every customer to another arm
        assert!(close(position("salt", "c42"), position("salt", "c42"), 0.0));
    }

    #[test]
    fn the_normal_distribution_matches_tabled_values() {
        for (x, p) in [(0.0, 0.5), (1.0, 0.841_344_746_068_543), (-1.959_963_984_540_054, 0.025), (3.0, 0.998_650_101_968_37), (-6.0, 9.865_876_450_376_98e-10)]
        {
            assert!(close(normal_cdf(x), p, 1e-12 + p * 1e-10), "Φ({x}) = {} not {p}", normal_cdf(x));
        }
        for p in [1e-9, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999_999] {
            assert!(close(normal_cdf(normal_quantile(p)), p, 1e-12), "{p}");
        }
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-9));
    }

    #[test]
    fn wilson_and_the_z_test_match_textbook_examples() {
        // 8 of 10 (Newcombe 1998 example): 0.4902 to 0.9433
        let (lo, hi) = wilson(8, 10, 0.05).unwrap();
        assert!(close(lo, 0.4902, 1e-4) && close(hi, 0.9433, 1e-4), "{lo} {hi}");
        assert_eq!(wilson(0, 0, 0.05), None);
        let (lo, hi) = wilson(0, 50, 0.05).unwrap();
        assert!(lo == 0.0 && close(hi, 0.0714, 1e-4), "{hi}");
        // 120/1000 vs 100/1000: z = 1.4286, p = 0.1531
        let c = compare(120, 1000, 100, 1000, 0.05).unwrap();
        assert!(close(c.z, 1.4286, 1e-3) && close(c.p_value, 0.1531, 1e-3), "{c:?}");
        assert!(close(c.diff, 0.02, 1e-12) && close(c.relative.unwrap(), 0.2, 1e-12));
        assert!(c.diff_low < 0.0 && c.diff_high > 0.0);
        assert_eq!(compare(1, 0, 1, 10, 0.05), None);
    }

    #[test]
    fn chi_square_srm_mde_and_holm() {
        assert!(close(chi_square_sf(3.841_458_820_694_124, 1.0), 0.05, 1e-9));
        assert!(close(chi_square_sf(5.991_464_547_107_979, 2.0), 0.05, 1e-9));
        assert!(close(chi_square_sf(30.0, 10.0), 8.566_412_107_753_01e-4, 1e-12), "{}", chi_square_sf(30.0, 10.0));
        assert!(close(chi_square_sf(0.5, 3.0), 0.918_891_411_654_676, 1e-12), "{}", chi_square_sf(0.5, 3.0));
        // a broken 60/40 split of a 50/50 experiment is flagged
        let (_, p) = sample_ratio_mismatch(&[6000, 4000], &[1.0, 1.0]).unwrap();
        assert!(p < 1e-6);
        let (_, p) = sample_ratio_mismatch(&[5030, 4970], &[1.0, 1.0]).unwrap();
        assert!(p > 0.5);
        // 10% baseline, 10 000 per arm: MDE = 2.8016 · sqrt(0.09 · 2e-4) = 0.01189
        assert!(close(min_detectable_effect(0.1, 10_000, 10_000, 0.05, 0.8).unwrap(), 0.011_886, 1e-5));
        assert_eq!(holm(&[0.01, 0.04, 0.03]), vec![0.03, 0.06, 0.06]);
        assert_eq!(holm(&[0.5]), vec![0.5]);
    }
}
