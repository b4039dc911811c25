//! Implicit-feedback matrix factorization: confidence-weighted ALS (Hu, Koren & Volinsky 2008),
//! each least-squares step solved approximately with a few conjugate-gradient steps from the
//! previous solution (Takács et al. 2011), as the `implicit` library does on CPU.
//!
//! For customer u with interactions r_ui > 0, preference p_ui = 1 and confidence
//! c_ui = 1 + alpha · r_ui; every other item has p = 0, c = 1. The loss is
//! Σ_u Σ_i c_ui (p_ui − x_u·y_i)² + λ (Σ |x_u|² + Σ |y_i|²). With Y fixed, x_u solves
//! (YᵀY + λI + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ) x_u = Σ_{i∈u} c_ui y_i; YᵀY is computed once per
//! half-step, so a customer costs O(f² + n_u f) per CG step. Customers and items are solved in
//! parallel on a rayon pool the caller sizes.
use super::linalg::kernels::{self, Fused, Madd, Plain};
use super::linalg::{dot, gram_on, Exec};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

/// A sparse matrix in compressed sparse row form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from (row, col, value) triplets; duplicates are summed.
    pub fn from_triplets(rows: usize, cols: usize, mut t: Vec<(u32, u32, f32)>) -> Csr {
        t.retain(|&(r, c, _)| (r as usize) < rows && (c as usize) < cols);
        t.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut m = Csr { rows, cols, indptr: vec![0; rows + 1], indices: Vec::with_capacity(t.len()), values: Vec::with_capacity(t.len()) };
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in t {
            if last == Some((r, c)) {
                if let Some(x) = m.values.last_mut() {
                    *x += v;
                }
                continue;
            }
            last = Some((r, c));
            m.indices.push(c);
            m.values.push(v);
            m.indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            m.indptr[r + 1] += m.indptr[r];
        }
        m
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows {
            let (cs, vs) = self.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr { rows: self.cols, cols: self.rows, indptr, indices, values }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub factors: usize,
    pub regularization: f32,
    pub alpha: f32,
    pub iterations: usize,
    pub cg_steps: usize,
    pub seed: u64,
    /// compute the loss after each iteration (about a sixth of an iteration's work)
    pub report_loss: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params { factors: 64, regularization: 0.05, alpha: 2.0, iterations: 15, cg_steps: 3, seed: 42, report_loss: true }
    }
}

/// Factors, row-major: customer u is `user[u*f..(u+1)*f]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub factors: usize,
    pub user: Vec<f32>,
    pub item: Vec<f32>,
}

impl Model {
    pub fn user_vec(&self, u: usize) -> &[f32] {
        &self.user[u * self.factors..(u + 1) * self.factors]
    }
    pub fn item_vec(&self, i: usize) -> &[f32] {
        &self.item[i * self.factors..(i + 1) * self.factors]
    }
}

/// After each iteration: its number (1-based) and the loss when asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub iteration: usize,
    pub loss: Option<f64>,
}

/// Trains on `user_items` (values r_ui > 0; others are ignored). `progress` runs on the
/// calling thread between iterations; an `Err` from it stops training and is returned.
/// The solves run on `exec`.
pub fn train<E>(user_items: &Csr, params: &Params, exec: Exec, mut progress: impl FnMut(Progress) -> Result<(), E>) -> Result<Model, E> {
    let f = params.factors.max(1);
    let conf = |m: &Csr| Csr { values: m.values.iter().map(|&r| if r > 0.0 { 1.0 + params.alpha * r } else { 0.0 }).collect(), ..m.clone() };
    let cui = conf(user_items);
    let ciu = cui.transpose();
    let mut rng = StdRng::seed_from_u64(params.seed);
    // small values of both signs: an all-positive start leaves every factor pointing one way
    // and slows the separation of tastes
    let scale = 0.1 / (f as f32).sqrt();
    let mut init = |n: usize| (0..n * f).map(|_| (rng.random::<f32>() - 0.5) * scale).collect::<Vec<f32>>();
    let mut m = Model { factors: f, user: init(cui.rows), item: init(cui.cols) };
    for it in 1..=params.iterations {
        exec.run(|| solve(&cui, &mut m.user, &m.item, f, params.regularization, params.cg_steps, &exec));
        exec.run(|| solve(&ciu, &mut m.item, &m.user, f, params.regularization, params.cg_steps, &exec));
        let loss = (params.report_loss && !exec.cancelled()).then(|| exec.run(|| loss_unless(&cui, &m, params.regularization, &exec)));
        progress(Progress { iteration: it, loss })?;
    }
    Ok(m)
}

/// One half-step: every row of `x` from `y` fixed. Rows left when `exec` is cancelled are
/// skipped. On a CPU with AVX2 and FMA the rows are solved with those (see [`kernels`]).
fn solve(c: &Csr, x: &mut [f32], y: &[f32], f: usize, reg: f32, cg_steps: usize, exec: &Exec) {
    let mut yty = gram_on(y, f, exec);
    for d in 0..f {
        yty[d * f + d] += reg;
    }
    let fused = Fused::detect();
    x.par_chunks_mut(f).enumerate().for_each_init(
        || Scratch::new(f),
        |scratch, (u, xu)| {
            if exec.cancelled() {
                return;
            }
            match fused {
                // SAFETY: `fused` is Some only on a CPU with AVX2 and FMA
                Some(k) => unsafe { cg_row_fused(k, &yty, y, c.row(u), xu, scratch, cg_steps) },
                None => cg_row(Plain, &yty, y, c.row(u), xu, scratch, cg_steps),
            }
        },
    );
}

/// A row solve's work vectors (residual, direction, A·direction), one set per thread.
struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(f: usize) -> Scratch {
        Scratch { r: vec![0f32; f], p: vec![0f32; f], ap: vec![0f32; f] }
    }
}

/// [`cg_row`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (a [`Fused`] token says so).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn cg_row_fused(k: Fused, yty: &[f32], y: &[f32], row: (&[u32], &[f32]), x: &mut [f32], s: &mut Scratch, steps: usize) {
    cg_row(k, yty, y, row, x, s, steps)
}

/// A few conjugate-gradient steps on one row's system (f = `x.len()`; `row`: its items and
/// confidences), from its current value `x`.
#[inline(always)]
fn cg_row<M: Madd>(k: M, yty: &[f32], y: &[f32], (items, confs): (&[u32], &[f32]), x: &mut [f32], s: &mut Scratch, steps: usize) {
    let f = x.len();
    let (r, p, ap) = (&mut s.r[..], &mut s.p[..], &mut s.ap[..]);
    use kernels::axpy;
    let row = |i: u32| &y[i as usize * f..(i as usize + 1) * f];
    // the item rows are scattered over the matrix: ask for them now, and read them after the
    // product with YᵀY, which hides most of the wait
    for &i in items {
        k.prefetch(row(i));
    }
    // r = b - A x, with A x = YtY x + Σ (c - 1)(y·x) y and b = Σ c y
    k.symv(yty, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &c) in items.iter().zip(confs) {
        let yi = row(i);
        axpy::<M>(c - (c - 1.0) * k.dot(yi, x), yi, r);
    }
    p.copy_from_slice(r);
    let mut rsold = k.dot(r, r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        k.symv(yty, p, ap);
        for (&i, &c) in items.iter().zip(confs) {
            let yi = row(i);
            axpy::<M>((c - 1.0) * k.dot(yi, p), yi, ap);
        }
        let pap = k.dot(p, ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let alpha = rsold / pap;
        axpy::<M>(alpha, p, x);
        axpy::<M>(-alpha, ap, r);
        let rsnew = k.dot(r, r);
        if rsnew < 1e-20 {
            break;
        }
        let beta = rsnew / rsold;
        for (pv, rv) in p.iter_mut().zip(r.iter()) {
            *pv = M::madd(beta, *pv, *rv);
        }
        rsold = rsnew;
    }
}

/// The loss per unit of confidence: Σ c (p − x·y)² + λ(|X|² + |Y|²), over all customer-item
/// pairs, divided by Σ c over all pairs.
pub fn loss(cui: &Csr, m: &Model, reg: f32) -> f64 {
    loss_unless(cui, m, reg, &Exec::default())
}

fn loss_unless(cui: &Csr, m: &Model, reg: f32, exec: &Exec) -> f64 {
    let f = m.factors;
    let yty = gram_on(&m.item, f, exec);
    let fused = Fused::detect();
    let (sum, conf, unorm): (f64, f64, f64) = (0..cui.rows)
        .into_par_iter()
        .map_init(
            || vec![0f32; f],
            |tmp, u| {
                if exec.cancelled() {
                    return (0.0, 0.0, 0.0);
                }
                match fused {
                    // SAFETY: `fused` is Some only on a CPU with AVX2 and FMA
                    Some(k) => unsafe { loss_row_fused(k, cui, m, &yty, u, tmp) },
                    None => loss_row(Plain, cui, m, &yty, u, tmp),
                }
            },
        )
        .reduce(|| (0.0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let inorm: f64 = m.item.chunks_exact(f).map(|y| f64::from(dot(y, y))).sum();
    let total = conf + (cui.rows * cui.cols) as f64 - cui.nnz() as f64;
    (sum + f64::from(reg) * (unorm + inorm)) / total.max(1.0)
}

/// [`loss_row`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (a [`Fused`] token says so).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn loss_row_fused(k: Fused, cui: &Csr, m: &Model, yty: &[f32], u: usize, tmp: &mut [f32]) -> (f64, f64, f64) {
    loss_row(k, cui, m, yty, u, tmp)
}

/// Customer u's share of the loss: (its loss terms, its Σ c, |x_u|²).
#[inline(always)]
fn loss_row<M: Madd>(k: M, cui: &Csr, m: &Model, yty: &[f32], u: usize, tmp: &mut [f32]) -> (f64, f64, f64) {
    let xu = m.user_vec(u);
    k.symv(yty, xu, tmp);
    let mut l = f64::from(k.dot(tmp, xu));
    let mut c_sum = 0f64;
    let (items, confs) = cui.row(u);
    for (&i, &c) in items.iter().zip(confs) {
        let s = f64::from(k.dot(m.item_vec(i as usize), xu));
        let c = f64::from(c);
        l += (c - 1.0) * s * s - 2.0 * c * s + c;
        c_sum += c;
    }
    (l, c_sum, f64::from(k.dot(xu, xu)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Csr {
        // two taste groups: users 0..20 like items 0..10, users 20..40 like items 10..20;
        // each user misses a few of their group's items
        let mut t = Vec::new();
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 10 };
            for k in 0..10u32 {
                if (u + k) % 4 != 0 {
                    t.push((u, base + k, 1.0));
                }
            }
        }
        Csr::from_triplets(40, 20, t)
    }

    #[test]
    fn csr_sums_duplicates_and_transposes() {
        let m = Csr::from_triplets(2, 3, vec![(1, 2, 1.0), (0, 1, 2.0), (1, 2, 0.5), (5, 0, 1.0)]);
        assert_eq!(m.indptr, vec![0, 1, 2]);
        assert_eq!(m.row(1), (&[2u32][..], &[1.5f32][..]));
        let t = m.transpose();
        assert_eq!((t.rows, t.cols), (3, 2));
        assert_eq!(t.row(2), (&[1u32][..], &[1.5f32][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn loss_falls_and_held_out_items_of_the_own_group_rank_first() {
        let data = blocks();
        let mut losses = Vec::new();
        let p = Params { factors: 8, iterations: 10, ..Params::default() };
        let m = train(&data, &p, Exec::default(), |pr| {
            losses.push(pr.loss.unwrap());
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(losses.len(), 10);
        assert!(losses.windows(2).all(|w| w[1] <= w[0] * 1.001), "{losses:?}");
        for u in 0..40usize {
            let base = if u < 20 { 0 } else { 10 };
            let seen: Vec<u32> = data.row(u).0.to_vec();
            let mut unseen: Vec<(usize, f32)> = (0..20).filter(|i| !seen.contains(&(*i as u32))).map(|i| (i, dot(m.user_vec(u), m.item_vec(i)))).collect();
            unseen.sort_by(|a, b| b.1.total_cmp(&a.1));
            let own = unseen.iter().filter(|(i, _)| (base..base + 10).contains(i)).count();
            assert!(unseen[..own].iter().all(|(i, _)| (base..base + 10).contains(i)), "user {u}: {unseen:?}");
        }
    }

    #[test]
    fn cg_matches_an_exact_solve_on_a_tiny_system() {
        // f = 2, 3 items; exact solution by Cramer's rule
        let y = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
        let (items, confs) = ([0u32, 2], [3.0f32, 2.0]);
        let reg = 0.1;
        let mut yty = crate::models::linalg::gram(&y, 2);
        yty[0] += reg;
        yty[3] += reg;
        // A = YtY + λI + Σ (c-1) y yᵀ; b = Σ c y
        let mut a = yty.clone();
        for (&i, &c) in items.iter().zip(&confs) {
            let yi = &y[i as usize * 2..i as usize * 2 + 2];
            for r in 0..2 {
                for s in 0..2 {
                    a[r * 2 + s] += (c - 1.0) * yi[r] * yi[s];
                }
            }
        }
        let b = [3.0 * 1.0 + 2.0 * 1.0, 2.0 * 1.0];
        let det = a[0] * a[3] - a[1] * a[2];
        let exact = [(b[0] * a[3] - a[1] * b[1]) / det, (a[0] * b[1] - a[2] * b[0]) / det];
        let mut x = [0.0f32; 2];
        let mut scratch = Scratch::new(2);
        cg_row(Plain, &yty, &y, (&items, &confs), &mut x, &mut scratch, 2);
        approx::assert_relative_eq!(x[0], exact[0], epsilon = 1e-4);
        approx::assert_relative_eq!(x[1], exact[1], epsilon = 1e-4);
        if let Some(k) = Fused::detect() {
            let mut x = [0.0f32; 2];
            // SAFETY: `k` exists only on a CPU with AVX2 and FMA
            unsafe { cg_row_fused(k, &yty, &y, (&items, &confs), &mut x, &mut scratch, 2) };
            approx::assert_relative_eq!(x[0], exact[0], epsilon = 1e-4);
            approx::assert_relative_eq!(x[1], exact[1], epsilon = 1e-4);
        }
    }

    #[test]
    fn the_parallel_gram_matches_the_sequential_one() {
        // 50 000 rows: 32 ranges of several blocks of 512, the last ones partial, and remainders of
        // 4-row groups; the same bits on a pool of 1 and of 3 threads
        for f in [3usize, 8, 64] {
            let y: Vec<f32> = (0..50_003 * f).map(|i| ((i as f32) * 0.731).sin()).collect();
            let want = crate::models::linalg::gram(&y, f);
            let got = gram_on(&y, f, &Exec::default());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "f {f}: {a} vs {b}");
            }
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let exec = Exec { pool: Some(&pool), cancel: None };
                assert_eq!(exec.run(|| gram_on(&y, f, &exec)), got, "{threads} threads");
            }
        }
    }

    #[test]
    fn a_cancelled_run_skips_its_work() {
        let p = Params { factors: 8, iterations: 0, ..Params::default() };
        let start = train(&blocks(), &p, Exec::default(), |_| Ok::<(), ()>(())).unwrap();
        let always = || true;
        let exec = Exec { pool: None, cancel: Some(&always) };
        let mut seen = 0;
        let cancelled = train(&blocks(), &Params { iterations: 3, ..p }, exec, |_| {
            seen += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        // every row of every solve was skipped: the factors are still the random start
        assert_eq!((cancelled.user, cancelled.item), (start.user.clone(), start.item.clone()));
        assert_eq!(seen, 3, "progress (where the backend raises its cancel error) still runs");
        let never = || false;
        let ran = train(&blocks(), &Params { iterations: 1, ..p }, Exec { pool: None, cancel: Some(&never) }, |_| Ok::<(), ()>(())).unwrap();
        assert_ne!(ran.user, start.user);
    }

    #[test]
    fn an_error_from_progress_stops_training() {
        let mut n = 0;
        let r = train(&blocks(), &Params { factors: 4, ..Params::default() }, Exec::default(), |_| {
            n += 1;
            if n == 2 {
                Err("cancelled")
            } else {
                Ok(())
            }
        });
        assert_eq!(r.unwrap_err(), "cancelled");
        assert_eq!(n, 2);
    }
}
