//! The ALS solver's inner kernels, in two builds: portable ([`Plain`]) and, on x86-64 CPUs
//! that have them, AVX2 with fused multiply-add ([`Fused`]), chosen at run time. The code is
//! written once, generic over [`Madd`]; a caller compiles its hot loop for AVX2 by calling it
//! from a `#[target_feature(enable = "avx2,fma")]` function with a [`Fused`] token, which can
//! only be obtained on a CPU that has both (the same pattern as `QuantRows::dots`).
//!
//! The two builds round differently (a fused multiply-add rounds once), so their results agree
//! to float precision, not bit for bit; on one machine a run is deterministic.

/// How a multiply-add is done, and the symmetric matrix-vector product built on it.
pub trait Madd: Copy + Send + Sync {
    /// a · b + c
    fn madd(a: f32, b: f32, c: f32) -> f32;

    /// a · b
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        dot::<Self>(a, b)
    }

    /// A hint that `v` will be read soon (nothing on the portable build).
    #[inline(always)]
    fn prefetch(self, _v: &[f32]) {}

    /// out = M v for a symmetric f × f row-major matrix M (f = v.len()).
    #[inline(always)]
    fn symv(self, m: &[f32], v: &[f32], out: &mut [f32]) {
        let f = v.len();
        for (o, row) in out.iter_mut().zip(m.chunks_exact(f)) {
            *o = dot::<Self>(row, v);
        }
    }
}

/// Portable: a multiply and an add, which the compiler vectorizes for the build's baseline.
#[derive(Clone, Copy, Debug)]
pub struct Plain;

impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// AVX2 and FMA: proof that the CPU has both ([`Fused::detect`] is the only way to get one).
#[derive(Clone, Copy, Debug)]
pub struct Fused(());

impl Fused {
    /// `Some` when this CPU has AVX2 and FMA (the answer is cached by the standard library).
    #[inline]
    pub fn detect() -> Option<Fused> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Some(Fused(()));
            }
        }
        None
    }
}

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    #[inline(always)]
    #[cfg(target_arch = "x86_64")]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: a `Fused` exists only on a CPU with AVX2 and FMA
        unsafe { dot_avx2(a, b) }
    }

    #[inline(always)]
    fn prefetch(self, v: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // one hint per 64-byte line; a prefetch never faults, and the addresses are in `v`
            for line in v.chunks(16) {
                // SAFETY: the pointer is inside `v`
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
            }
        }
    }

    #[inline(always)]
    fn symv(self, m: &[f32], v: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if v.len().is_multiple_of(8) && m.len() >= v.len() * v.len() && out.len() >= v.len() {
                // SAFETY: a `Fused` exists only on a CPU with AVX2 and FMA; the lengths are
                // checked just above
                unsafe { symv_avx2(m, v, out) };
                return;
            }
        }
        let f = v.len();
        for (o, row) in out.iter_mut().zip(m.chunks_exact(f)) {
            *o = dot::<Self>(row, v);
        }
    }
}

/// a · b, eight independent accumulators.
#[inline(always)]
pub fn dot<M: Madd>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] = M::madd(x[k], y[k], acc[k]);
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        s = M::madd(*x, *y, s);
    }
    s
}

/// y += alpha · x
#[inline(always)]
pub fn axpy<M: Madd>(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = M::madd(alpha, *xi, *yi);
    }
}

/// g += Σ_r row_r row_rᵀ over the rows of `y` (f wide), upper triangle only (row-major f × f).
/// Four rows at a time, so each row of `g` is loaded and stored once per four.
#[inline(always)]
pub fn syrk_upper<M: Madd>(y: &[f32], f: usize, g: &mut [f32]) {
    let quads = y.chunks_exact(4 * f);
    let rest = quads.remainder();
    for q in quads {
        let (r0, r1, r2, r3) = (&q[..f], &q[f..2 * f], &q[2 * f..3 * f], &q[3 * f..]);
        for a in 0..f {
            let (c0, c1, c2, c3) = (r0[a], r1[a], r2[a], r3[a]);
            let ga = &mut g[a * f + a..a * f + f];
            for ((((gb, x0), x1), x2), x3) in ga.iter_mut().zip(&r0[a..]).zip(&r1[a..]).zip(&r2[a..]).zip(&r3[a..]) {
                *gb = M::madd(c3, *x3, M::madd(c2, *x2, M::madd(c1, *x1, M::madd(c0, *x0, *gb))));
            }
        }
    }
    for row in rest.chunks_exact(f) {
        for (a, &ra) in row.iter().enumerate() {
            axpy::<M>(ra, &row[a..], &mut g[a * f + a..a * f + f]);
        }
    }
}

/// The sum of a register's eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(super) fn hsum_avx(acc: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)))
}

/// a · b with two 8-wide fused accumulators.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets below n ≤ both lengths
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
    }
    let mut s = hsum_avx(_mm256_add_ps(acc0, acc1));
    while i < n {
        s = a[i].mul_add(b[i], s);
        i += 1;
    }
    s
}

/// out = M v for a symmetric f × f matrix, f a multiple of 8: out = Σ_j v_j · row_j (a row
/// is a column), with up to 64 outputs held in eight registers across the whole pass.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `v.len()` is a multiple of 8, `m.len() ≥ f²`,
/// `out.len() ≥ f`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn symv_avx2(m: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    let mut o = 0;
    while o < f {
        let lanes = ((f - o) / 8).min(8);
        // SAFETY: the caller's contract (AVX2, FMA, lengths); each block reads columns o..o+8·W of
        // every row and writes the same outputs, all below f
        unsafe {
            match lanes {
                8 => symv_block::<8>(m, v, out, o),
                7 => symv_block::<7>(m, v, out, o),
                6 => symv_block::<6>(m, v, out, o),
                5 => symv_block::<5>(m, v, out, o),
                4 => symv_block::<4>(m, v, out, o),
                3 => symv_block::<3>(m, v, out, o),
                2 => symv_block::<2>(m, v, out, o),
                _ => symv_block::<1>(m, v, out, o),
            }
        }
        o += lanes * 8;
    }
}

/// Outputs o..o+8W of [`symv_avx2`].
///
/// # Safety
/// As [`symv_avx2`], and o + 8W ≤ f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn symv_block<const W: usize>(m: &[f32], v: &[f32], out: &mut [f32], o: usize) {
    use std::arch::x86_64::*;
    let f = v.len();
    let mut acc = [_mm256_setzero_ps(); W];
    for (j, &vj) in v.iter().enumerate() {
        let b = _mm256_set1_ps(vj);
        // SAFETY: row j starts at j·f < f² ≤ m.len() and the block reads o..o+8W ≤ f of it
        unsafe {
            let row = m.as_ptr().add(j * f + o);
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8 * k)), b, *a);
            }
        }
    }
    for (k, a) in acc.iter().enumerate() {
        // SAFETY: o + 8W ≤ f ≤ out.len()
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(o + 8 * k), *a) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(f: usize) -> Vec<f32> {
        let mut m = vec![0f32; f * f];
        for a in 0..f {
            for b in a..f {
                let x = ((a * 31 + b * 7) as f32 * 0.013).sin();
                m[a * f + b] = x;
                m[b * f + a] = x;
            }
        }
        m
    }

    fn check<M: Madd>(k: M) {
        for f in [1usize, 3, 8, 16, 24, 40, 64, 72, 100, 128, 200] {
            let m = sym(f);
            let v: Vec<f32> = (0..f).map(|i| (i as f32 * 0.37).cos()).collect();
            let mut out = vec![0f32; f];
            k.symv(&m, &v, &mut out);
            for (o, row) in out.iter().zip(m.chunks_exact(f)) {
                let want: f64 = row.iter().zip(&v).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                assert!((f64::from(*o) - want).abs() < 1e-4 * (1.0 + want.abs()), "f {f}: {o} vs {want}");
            }
            let d = k.dot(&m[..f], &v);
            assert!((d - out[0]).abs() < 1e-4 * (1.0 + d.abs()));
            let mut g = vec![0f32; f * f];
            syrk_upper::<M>(&m, f, &mut g);
            for a in 0..f {
                for b in a..f {
                    let want: f32 = (0..f).map(|r| m[r * f + a] * m[r * f + b]).sum();
                    assert!((g[a * f + b] - want).abs() < 1e-3 * (1.0 + want.abs()), "f {f} ({a},{b})");
                }
            }
        }
    }

    #[test]
    fn both_builds_match_a_naive_product() {
        check(Plain);
        if let Some(k) = Fused::detect() {
            check(k);
        }
    }
}
