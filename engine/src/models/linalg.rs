//! Small dense kernels for f32 vectors. Written with independent accumulators so the compiler
//! vectorizes them (a plain `iter().sum()` of products keeps one serial chain).

/// Where parallel work runs: a caller-owned rayon pool, or rayon's global one. Only the work
/// inside `run` goes to the pool; callbacks (progress) stay on the calling thread, which is
/// what a PostgreSQL backend needs (its API may only be called from its own thread).
#[derive(Clone, Copy, Default)]
pub struct Exec<'a>(pub Option<&'a rayon::ThreadPool>);

impl Exec<'_> {
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.0 {
            Some(p) => p.install(f),
            None => f(),
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

/// Gram matrix `Y^T Y` (f × f, row-major) of `rows` vectors of length f stored row-major.
pub fn gram(y: &[f32], f: usize) -> Vec<f32> {
    let mut g = vec![0f64; f * f];
    for row in y.chunks_exact(f) {
        for a in 0..f {
            let ra = f64::from(row[a]);
            if ra == 0.0 {
                continue;
            }
            for b in a..f {
                g[a * f + b] += ra * f64::from(row[b]);
            }
        }
    }
    let mut out = vec![0f32; f * f];
    for a in 0..f {
        for b in a..f {
            out[a * f + b] = g[a * f + b] as f32;
            out[b * f + a] = g[a * f + b] as f32;
        }
    }
    out
}

/// out = M v for a square row-major matrix M.
#[inline]
pub fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    for (o, row) in out.iter_mut().zip(m.chunks_exact(f)) {
        *o = dot(row, v);
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
        let mut out = [0.0; 3];
        matvec(&g, &[1.0, 0.0, 1.0], &mut out);
        assert_eq!(out, [4.0, 8.0, 12.0]);
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_relative_eq!(v[0], 0.6);
    }
}
