//! Small dense kernels for f32 vectors. Written with independent accumulators so the compiler
//! vectorizes them (a plain `iter().sum()` of products keeps one serial chain). Fold-in (a
//! customer vector against fixed ALS item factors) and its Cholesky solve are in [`fold_in`].
pub mod fold_in;
pub mod kernels;
pub mod nearest;
pub use fold_in::{Als, Explainer};

/// Where parallel work runs: a caller-owned rayon pool, or rayon's global one. Only the work
/// inside `run` goes to the pool; callbacks (progress) stay on the calling thread, which is
/// what a PostgreSQL backend needs (its API may only be called from its own thread).
///
/// `cancel`, when given, says whether the caller wants the work stopped. The long loops (ALS
/// solves and loss, the Gram matrix, evaluation) ask it once per row or user and skip the rest
/// of their work when it says yes, so a cancelled run ends within a fraction of a second; what
/// such a run computed is garbage, and the caller must not use it (the extension raises its
/// cancel error right after). The extension's answer reads PostgreSQL's own cancel and
/// terminate flags, which the backend's signal handlers set (statement_timeout,
/// pg_cancel_backend, pg_terminate_backend) while its thread waits for the pool.
#[derive(Clone, Copy, Default)]
pub struct Exec<'a> {
    pub pool: Option<&'a rayon::ThreadPool>,
    pub cancel: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl Exec<'_> {
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// Whether the caller asked to stop (cheap: called once per row of a loop).
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c())
    }
}

/// `out[r] = q · rows[r]` for each row of `rows` (row-major, `dims` wide). A wider SIMD kernel
/// did not help here: a full-catalogue pass waits on memory, which [`QuantRows`] cuts instead.
pub fn dots(q: &[f32], rows: &[f32], dims: usize, out: &mut [f32]) {
    for (o, r) in out.iter_mut().zip(rows.chunks_exact(dims.max(1))) {
        *o = dot(q, r);
    }
}

/// Rows quantized to i8 with one scale per row (`x ≈ scale · q`): a quarter of the bytes of
/// f32, for the first pass over a large catalogue, whose cost is memory bandwidth. The top of
/// that pass is then rescored exactly.
#[derive(Debug, Clone, Default)]
pub struct QuantRows {
    pub dims: usize,
    pub data: crate::serve::flat::Slab<i8>,
    pub scale: crate::serve::flat::Slab<f32>,
}

impl QuantRows {
    pub fn new(rows: &[f32], dims: usize) -> QuantRows {
        let dims = dims.max(1);
        let mut data = Vec::with_capacity(rows.len());
        let mut scale = Vec::with_capacity(rows.len() / dims);
        for r in rows.chunks_exact(dims) {
            let max = r.iter().fold(0f32, |m, x| m.max(x.abs()));
            let s = if max > 0.0 && max.is_finite() { max / 127.0 } else { 1.0 };
            scale.push(s);
            data.extend(r.iter().map(|x| (x / s).round().clamp(-127.0, 127.0) as i8));
        }
        QuantRows { dims, data: data.into(), scale: scale.into() }
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + self.scale.len() * 4
    }

    /// `out[r] ≈ q · row r`.
    pub fn dots(&self, q: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA (checked just above)
                unsafe { self.dots_avx2(q, out) };
                return;
            }
        }
        let n = q.len().min(self.dims);
        for ((o, r), s) in out.iter_mut().zip(self.data.chunks_exact(self.dims)).zip(&self.scale) {
            let mut acc = [0f32; 8];
            for (k, (x, y)) in q[..n].iter().zip(&r[..n]).enumerate() {
                acc[k % 8] += x * f32::from(*y);
            }
            *o = s * acc.iter().sum::<f32>();
        }
    }

    #[cfg(target_arch = "x86_64")]
    /// # Safety
    /// The CPU must have AVX2 and FMA (checked at run time by the caller).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dots_avx2(&self, q: &[f32], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let n = q.len().min(self.dims);
        for ((o, r), s) in out.iter_mut().zip(self.data.chunks_exact(self.dims)).zip(&self.scale) {
            let (a, b) = (q.as_ptr(), r.as_ptr());
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            // SAFETY: each step reads 8 floats of q and 8 bytes of r at offsets below n, and both
            // slices are at least n long; the loads are unaligned (loadu, loadl), and the caller
            // checked that the CPU has AVX2 and FMA
            unsafe {
                while i + 16 <= n {
                    let y0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(i) as *const __m128i)));
                    let y1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(i + 8) as *const __m128i)));
                    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), y0, acc0);
                    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i + 8)), y1, acc1);
                    i += 16;
                }
                if i + 8 <= n {
                    let y0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(b.add(i) as *const __m128i)));
                    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), y0, acc0);
                    i += 8;
                }
            }
            let mut x = kernels::hsum_avx(_mm256_add_ps(acc0, acc1));
            while i < n {
                x += q[i] * f32::from(r[i]);
                i += 1;
            }
            *o = s * x;
        }
    }
}

/// a · b
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for k in chunks * 8..n {
        s += a[k] * b[k];
    }
    s
}

/// y += alpha · x
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Scales `v` to unit length; leaves a zero vector alone.
pub fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Gram matrix `Y^T Y` (f × f, row-major) of the rows of `y` (f wide), on the calling thread
/// (fold-in's, once per model load): the same sums as [`gram_on`], in the same order, so the
/// same bits.
pub fn gram(y: &[f32], f: usize) -> Vec<f32> {
    let parts: Vec<Vec<f64>> = gram_ranges(y, f).map(|range| range_gram(range, f, &Exec::default())).collect();
    sum_parts(&parts, f)
}

/// [`gram`] in parallel on `exec`'s pool (training). The rows are cut into a fixed number of
/// ranges, whatever the pool's size or timing, each summed in blocks of rows in f32 and the
/// blocks in f64, and the ranges added in order: the same input gives the same bits every
/// time. Asks `exec` once per block; a cancelled pass returns a partial sum, which the caller
/// discards.
pub fn gram_on(y: &[f32], f: usize, exec: &Exec) -> Vec<f32> {
    use rayon::prelude::*;
    let per = gram_ranges(y, f).next().map_or(1, <[f32]>::len);
    let parts: Vec<Vec<f64>> = y.par_chunks(per).map(|range| range_gram(range, f, exec)).collect();
    sum_parts(&parts, f)
}

/// The row ranges a Gram matrix is summed over: 32 of them (fewer for few rows).
fn gram_ranges(y: &[f32], f: usize) -> std::slice::Chunks<'_, f32> {
    const RANGES: usize = 32;
    let n = y.len() / f.max(1);
    y.chunks(n.div_ceil(RANGES).max(1) * f.max(1))
}

/// One range's upper-triangle Gram in f64, from blocks of rows summed in f32.
fn range_gram(range: &[f32], f: usize, exec: &Exec) -> Vec<f64> {
    const BLOCK: usize = 512;
    let fused = kernels::Fused::detect();
    let (mut sum, mut part) = (vec![0f64; f * f], vec![0f32; f * f]);
    for rows in range.chunks(BLOCK * f.max(1)) {
        if exec.cancelled() {
            break;
        }
        part.iter_mut().for_each(|v| *v = 0.0);
        match fused {
            // SAFETY: `fused` is Some only on a CPU with AVX2 and FMA
            Some(k) => unsafe { syrk_fused(k, rows, f, &mut part) },
            None => kernels::syrk_upper::<kernels::Plain>(rows, f, &mut part),
        }
        sum.iter_mut().zip(&part).for_each(|(s, p)| *s += f64::from(*p));
    }
    sum
}

/// The ranges' sums added in order, as a full symmetric matrix.
fn sum_parts(parts: &[Vec<f64>], f: usize) -> Vec<f32> {
    let mut g = vec![0f64; f * f];
    for part in parts {
        g.iter_mut().zip(part).for_each(|(x, p)| *x += p);
    }
    symmetric(&g, f)
}

/// [`kernels::syrk_upper`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (a [`kernels::Fused`] token says so).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn syrk_fused(_: kernels::Fused, y: &[f32], f: usize, g: &mut [f32]) {
    kernels::syrk_upper::<kernels::Fused>(y, f, g)
}

/// The full f × f matrix (f32, row-major) whose upper triangle is that of `upper`.
pub fn symmetric(upper: &[f64], f: usize) -> Vec<f32> {
    let mut out = vec![0f32; f * f];
    for a in 0..f {
        for b in a..f {
            out[a * f + b] = upper[a * f + b] as f32;
            out[b * f + a] = upper[a * f + b] as f32;
        }
    }
    out
}

#[cfg(test)]
mod dots_tests {
    use super::*;

    #[test]
    fn quantized_dots_are_close_and_keep_the_order() {
        for dims in [1usize, 7, 8, 16, 24, 64] {
            let q: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
            let rows: Vec<f32> = (0..dims * 50).map(|i| (i as f32 * 0.11).cos() * (1.0 + (i % 7) as f32)).collect();
            let qr = QuantRows::new(&rows, dims);
            assert_eq!(qr.bytes(), rows.len() + 50 * 4);
            let mut out = vec![0f32; 50];
            qr.dots(&q, &mut out);
            for (r, o) in rows.chunks_exact(dims).zip(&out) {
                let want = dot(&q, r);
                let norm = dot(r, r).sqrt() * dot(&q, &q).sqrt();
                assert!((o - want).abs() <= 0.01 * norm + 1e-6, "dims {dims}: {o} vs {want}");
            }
        }
        let zero = QuantRows::new(&[0.0, 0.0], 2);
        let mut out = [1f32];
        zero.dots(&[1.0, 1.0], &mut out);
        assert_eq!(out, [0.0]);
    }

    #[test]
    fn dots_match_dot_for_every_width() {
        for dims in [1usize, 3, 8, 15, 16, 17, 64, 100] {
            let q: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.37).sin()).collect();
            let rows: Vec<f32> = (0..dims * 5).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut out = vec![0f32; 5];
            dots(&q, &rows, dims, &mut out);
            for (r, o) in rows.chunks_exact(dims).zip(&out) {
                let want = dot(&q, r);
                assert!((o - want).abs() <= 1e-5 * (1.0 + want.abs()), "dims {dims}: {o} vs {want}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn kernels_match_naive_loops() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32).sin()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_relative_eq!(dot(&a, &b), naive, epsilon = 1e-4);
        let mut y = b.clone();
        axpy(2.0, &a, &mut y);
        assert_relative_eq!(y[3], b[3] + 2.0 * a[3]);
        // 2 rows of length 3: [1 2 3], [0 1 0]
        let g = gram(&[1.0, 2.0, 3.0, 0.0, 1.0, 0.0], 3);
        assert_eq!(g, vec![1.0, 2.0, 3.0, 2.0, 5.0, 6.0, 3.0, 6.0, 9.0]);
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_relative_eq!(v[0], 0.6);
    }
}
