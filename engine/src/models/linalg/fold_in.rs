//! Fold-in: the customer vector ALS's own user step would give a history, against fixed item
//! factors, solved with a Cholesky factorization; and the exact per-item shares of a folded-in
//! score (what the reasons name).
use super::{dot, gram};
use crate::serve::flat::Slab;

/// ALS item factors with what fold-in needs.
#[derive(Debug, Clone, Default)]
pub struct Als {
    pub factors: usize,
    /// row-major, one row per catalogue item (zero for items the model did not learn)
    pub item: Slab<f32>,
    pub learned: Slab<bool>,
    /// YᵀY over the learned items, f × f row-major
    pub yty: Slab<f32>,
    /// per item, the length of its factor vector (for cosine similarity)
    pub norm: Slab<f32>,
    pub regularization: f32,
    pub alpha: f32,
}

impl Als {
    pub fn new(factors: usize, item: Vec<f32>, learned: Vec<bool>, regularization: f32, alpha: f32) -> Als {
        let yty = gram(&item, factors.max(1)).into();
        let norm = item.chunks_exact(factors.max(1)).map(|y| dot(y, y).sqrt()).collect();
        Als { factors, item: item.into(), learned: learned.into(), yty, norm, regularization, alpha }
    }

    pub fn vec(&self, i: u32) -> &[f32] {
        let f = self.factors;
        &self.item[i as usize * f..(i as usize + 1) * f]
    }

    /// The customer vector that ALS's own user step would give this history (item, weight),
    /// against the fixed item factors: x = (YᵀY + Σ (c−1) y yᵀ + λI)⁻¹ Σ c y, c = 1 + α·w.
    /// Items with a non-positive weight or no learned vector are skipped; `None` when none is left.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Option<Vec<f32>> {
        let (x, _) = self.fold_in_explained(history)?;
        Some(x)
    }

    /// [`Als::fold_in`], and what explains its scores ([`Explainer`]).
    pub fn fold_in_explained(&self, history: &[(u32, f32)]) -> Option<(Vec<f32>, Explainer)> {
        let f = self.factors;
        let mut a: Vec<f64> = self.yty.iter().map(|x| f64::from(*x)).collect();
        let mut b = vec![0f64; f];
        let mut used: Vec<(usize, f64)> = Vec::new();
        for (k, &(i, w)) in history.iter().enumerate() {
            if w <= 0.0 || !self.learned.get(i as usize).copied().unwrap_or(false) {
                continue;
            }
            let y = self.vec(i);
            let c = 1.0 + f64::from(self.alpha) * f64::from(w);
            used.push((k, c));
            // the lower triangle only: all that the Cholesky factorization reads
            for r in 0..f {
                let yr = f64::from(y[r]);
                b[r] += c * yr;
                let k = (c - 1.0) * yr;
                for (x, ys) in a[r * f..r * f + r + 1].iter_mut().zip(y) {
                    *x += k * f64::from(*ys);
                }
            }
        }
        if used.is_empty() {
            return None;
        }
        for r in 0..f {
            a[r * f + r] += f64::from(self.regularization).max(1e-6);
        }
        if !cholesky(&mut a, f) {
            return None;
        }
        cholesky_apply(&a, &mut b, f);
        let items = used.iter().map(|&(k, _)| history[k].0).collect();
        let confidence = used.iter().map(|&(_, c)| c).collect();
        Some((b.iter().map(|x| *x as f32).collect(), Explainer { factor: a, items, confidence }))
    }
}

/// Why a folded-in ALS score is what it is (Hu, Koren & Volinsky, section 5): the score of item
/// i is Σ_j c_j · y_jᵀ W y_i over the history, W = (YᵀCY + λI)⁻¹, so each history item's share
/// is known exactly.
#[derive(Debug, Clone, Default)]
pub struct Explainer {
    /// the Cholesky factor of YᵀCY + λI
    factor: Vec<f64>,
    /// the history items that counted, and their confidences
    items: Vec<u32>,
    confidence: Vec<f64>,
}

impl Explainer {
    /// Each history item's share of item `i`'s score (they sum to the score).
    pub fn shares(&self, als: &Als, i: u32) -> Vec<(u32, f64)> {
        let mut z: Vec<f64> = als.vec(i).iter().map(|x| f64::from(*x)).collect();
        cholesky_apply(&self.factor, &mut z, als.factors);
        let share = |j: u32, c: f64| c * als.vec(j).iter().zip(&z).map(|(y, z)| f64::from(*y) * z).sum::<f64>();
        self.items.iter().zip(&self.confidence).map(|(&j, &c)| (j, share(j, c))).collect()
    }

    /// The history item among those `keep` accepts that contributes most to item `i`'s score
    /// (None if none adds to it; ties: the lower item).
    pub fn top(&self, als: &Als, i: u32, keep: impl Fn(u32) -> bool) -> Option<u32> {
        self.shares(als, i).into_iter().filter(|&(j, share)| share > 0.0 && keep(j)).max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).map(|x| x.0)
    }
}

/// Factors a symmetric positive definite A (row-major n × n) in place into L (lower triangle);
/// false when A is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let d = a[j * n + j] - dot_f64(&a[j * n..j * n + j], &a[j * n..j * n + j]);
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - dot_f64(&a[i * n..i * n + j], &a[j * n..j * n + j]);
            a[i * n + j] = s / d;
        }
    }
    true
}

/// Σ a·b with four independent sums (a plain f64 sum is one dependency chain: the compiler may
/// not reorder it, so it neither pipelines nor vectorizes).
fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solves L Lᵀ x = b in place with the factor from [`cholesky`].
fn cholesky_apply(l: &[f64], b: &mut [f64], n: usize) {
    for i in 0..n {
        let s = b[i] - dot_f64(&l[i * n..i * n + i], &b[..i]);
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn cholesky_solves_a_spd_system() {
        // A = [[4, 2], [2, 3]], b = [2, 5] -> x = [-0.5, 2]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 5.0];
        assert!(cholesky(&mut a, 2));
        cholesky_apply(&a, &mut b, 2);
        assert_relative_eq!(b[0], -0.5, epsilon = 1e-12);
        assert_relative_eq!(b[1], 2.0, epsilon = 1e-12);
        assert!(!cholesky(&mut [0.0, 0.0, 0.0, 0.0], 2), "not positive definite");
    }
}
