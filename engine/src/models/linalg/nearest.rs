//! Each item's nearest items, exactly: the `k` rows with the largest inner product with each
//! row (cosine when the caller normalized the rows), every pair scored. The candidates are
//! packed eight to a block, one dimension after another, so that four query rows score a
//! block with eight-wide multiply-adds and no horizontal sums; on a CPU with AVX2 and FMA the
//! loop is compiled for them ([`kernels`]). It costs rows² × dims multiply-adds, which at
//! 30 000 rows of 64 dimensions is under a second on two cores; training uses it up to
//! [`EXACT_MAX_ROWS`] rows and an HNSW index above.
use super::kernels::{Fused, Madd, Plain};
use super::Exec;
use rayon::prelude::*;

/// Above this many rows, an exact pass (quadratic) costs more than searching an index.
pub const EXACT_MAX_ROWS: usize = 200_000;

const LANES: usize = 8;
const QUERIES: usize = 4;

/// For each row of `rows` (`dims` wide, row-major) that `query[r]` selects, the indexes of the
/// `k` other rows with the largest inner product, best first (ties: the lower index first);
/// rows that `candidate[r]` does not select are never returned. Rows not queried get an empty
/// list. Runs on `exec`'s pool; a cancelled run returns what it has, which the caller discards.
pub fn nearest(rows: &[f32], dims: usize, k: usize, query: &[bool], candidate: &[bool], exec: &Exec) -> Vec<Vec<u32>> {
    let dims = dims.max(1);
    let n = rows.len() / dims;
    let cands: Vec<u32> = (0..n as u32).filter(|&r| candidate.get(r as usize).copied().unwrap_or(false)).collect();
    let packed = Packed::new(rows, dims, &cands).data;
    let queries: Vec<u32> = (0..n as u32).filter(|&r| query.get(r as usize).copied().unwrap_or(false)).collect();
    let fused = Fused::detect();
    let found: Vec<(u32, Vec<u32>)> = exec.run(|| {
        queries
            .par_chunks(QUERIES)
            .flat_map_iter(|qs| {
                if exec.cancelled() {
                    return Vec::new();
                }
                let mut tops: Vec<Top> = qs.iter().map(|&q| Top::new(k, q)).collect();
                match fused {
                    // SAFETY: `fused` is Some only on a CPU with AVX2 and FMA
                    Some(f) => unsafe { score_fused(f, rows, dims, qs, &packed, &cands, &mut tops) },
                    None => score(Plain, rows, dims, qs, &packed, &cands, &mut tops),
                }
                qs.iter().zip(tops).map(|(&q, t)| (q, t.sorted())).collect()
            })
            .collect()
    });
    let mut out = vec![Vec::new(); n];
    for (q, list) in found {
        out[q as usize] = list;
    }
    out
}

/// Rows packed for scoring by many queries: eight to a block, one dimension after another
/// (block b, dimension d, lane l at `[(b · dims + d) · 8 + l]`; a last block's empty lanes are
/// zero). Four queries score a block with eight-wide multiply-adds and no horizontal sums.
#[derive(Debug, Clone, Default)]
pub struct Packed {
    dims: usize,
    rows: usize,
    data: Vec<f32>,
}

impl Packed {
    /// The rows `picked` of `rows` (`dims` wide, row-major), in that order.
    pub fn new(rows: &[f32], dims: usize, picked: &[u32]) -> Packed {
        let dims = dims.max(1);
        let mut data = vec![0f32; picked.len().div_ceil(LANES) * dims * LANES];
        for (j, &c) in picked.iter().enumerate() {
            let (b, l) = (j / LANES, j % LANES);
            for (d, &x) in rows[c as usize * dims..(c as usize + 1) * dims].iter().enumerate() {
                data[(b * dims + d) * LANES + l] = x;
            }
        }
        Packed { dims, rows: picked.len(), data }
    }

    /// Every row of `rows`.
    pub fn all(rows: &[f32], dims: usize) -> Packed {
        Packed::new(rows, dims, &(0..(rows.len() / dims.max(1)) as u32).collect::<Vec<_>>())
    }

    /// How many rows are packed.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// How many queries [`Packed::scores`] takes at once.
    pub const QUERIES: usize = QUERIES;

    /// `out[q][j]` = `qs[q]` · packed row `j`, for the first [`Packed::QUERIES`] queries at
    /// most (`dims` wide; a shorter one counts as padded with zeros) and the rows each `out[q]`
    /// has room for (like a zip: nothing is written past either end).
    pub fn scores(&self, qs: &[&[f32]], out: &mut [&mut [f32]]) {
        let qs = &qs[..qs.len().min(QUERIES).min(out.len())];
        match Fused::detect() {
            // SAFETY: `Some` only on a CPU with AVX2 and FMA
            Some(f) => unsafe { scores_fused(f, self, qs, out) },
            None => scores_into(Plain, self, qs, out),
        }
    }
}

/// [`scores_into`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (a [`Fused`] token says so).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn scores_fused(f: Fused, p: &Packed, qs: &[&[f32]], out: &mut [&mut [f32]]) {
    scores_into(f, p, qs, out)
}

#[inline(always)]
fn scores_into<M: Madd>(_: M, p: &Packed, qs: &[&[f32]], out: &mut [&mut [f32]]) {
    by_blocks::<M>(&p.data, p.dims, qs.iter().copied(), |acc, first| {
        for (j, ab) in acc.iter().enumerate() {
            let base = (first + j) * LANES;
            for (o, a) in out.iter_mut().zip(ab).take(qs.len()) {
                let lanes = p.rows.min(o.len()).saturating_sub(base).min(LANES);
                if lanes > 0 {
                    o[base..base + lanes].copy_from_slice(&a[..lanes]);
                }
            }
        }
    });
}

/// Scores up to four queries (`dims` wide; missing ones are zero, their scores unused) against
/// every block of `packed`, two blocks per pass over the queries' dimensions (each broadcast
/// query value serves 16 rows, so the loop waits on multiply-adds rather than on loads), and
/// hands each pass's scores to `f` with the number of its first block.
#[inline(always)]
fn by_blocks<'q, M: Madd>(packed: &[f32], dims: usize, qs: impl Iterator<Item = &'q [f32]>, mut f: impl FnMut(&[[[f32; LANES]; QUERIES]], usize)) {
    // the queries, one dimension after another
    let mut x = vec![[0f32; QUERIES]; dims];
    for (i, q) in qs.take(QUERIES).enumerate() {
        for (d, &v) in q.iter().take(dims).enumerate() {
            x[d][i] = v;
        }
    }
    let blocks: Vec<&[f32]> = packed.chunks_exact(dims * LANES).collect();
    let mut b = 0;
    while b < blocks.len() {
        if b + 1 < blocks.len() {
            f(&block_scores::<M, 2>([blocks[b], blocks[b + 1]], &x), b);
            b += 2;
        } else {
            f(&block_scores::<M, 1>([blocks[b]], &x), b);
            b += 1;
        }
    }
}

/// [`nearest`] by cosine: the rows are scaled to unit length first, and rows of zero length
/// neither ask nor answer.
pub fn nearest_by_cosine(rows: &[f32], dims: usize, k: usize, usable: &[bool], exec: &Exec) -> Vec<Vec<u32>> {
    let dims = dims.max(1);
    let mut unit = rows.to_vec();
    let mut ok = usable.to_vec();
    ok.resize(rows.len() / dims, false);
    for (r, ok) in unit.chunks_exact_mut(dims).zip(ok.iter_mut()) {
        super::normalize(r);
        *ok &= r.iter().any(|x| *x != 0.0);
    }
    nearest(&unit, dims, k, &ok, &ok, exec)
}

/// The best `k` (score, candidate) of one query, excluding the query itself.
struct Top {
    k: usize,
    own: u32,
    items: Vec<(f32, u32)>,
    /// the smallest kept score once `k` are kept (else −∞)
    floor: f32,
}

impl Top {
    fn new(k: usize, own: u32) -> Top {
        Top { k, own, items: Vec::with_capacity(k + 1), floor: f32::NEG_INFINITY }
    }

    #[inline]
    fn offer(&mut self, score: f32, c: u32) {
        if c == self.own || c == u32::MAX || self.k == 0 || !score.is_finite() {
            return;
        }
        if self.items.len() < self.k {
            self.items.push((score, c));
            if self.items.len() == self.k {
                self.floor = self.items.iter().map(|x| x.0).fold(f32::INFINITY, f32::min);
            }
            return;
        }
        // a tie with the floor keeps the lower index (candidates arrive in increasing order)
        if score <= self.floor {
            return;
        }
        let worst = self.worst();
        self.items[worst] = (score, c);
        self.floor = self.items.iter().map(|x| x.0).fold(f32::INFINITY, f32::min);
    }

    /// The kept entry to drop: the lowest score, of those the highest index.
    fn worst(&self) -> usize {
        let mut w = 0;
        for (i, x) in self.items.iter().enumerate() {
            let y = self.items[w];
            if x.0 < y.0 || (x.0 == y.0 && x.1 > y.1) {
                w = i;
            }
        }
        w
    }

    fn sorted(mut self) -> Vec<u32> {
        self.items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.items.into_iter().map(|x| x.1).collect()
    }
}

/// [`score`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (a [`Fused`] token says so).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn score_fused(f: Fused, rows: &[f32], dims: usize, qs: &[u32], packed: &[f32], cands: &[u32], tops: &mut [Top]) {
    score(f, rows, dims, qs, packed, cands, tops)
}

/// Scores up to four queries against every packed block and offers each score to its query.
#[inline(always)]
fn score<M: Madd>(_: M, rows: &[f32], dims: usize, qs: &[u32], packed: &[f32], cands: &[u32], tops: &mut [Top]) {
    let queries = qs.iter().map(|&r| &rows[r as usize * dims..(r as usize + 1) * dims]);
    by_blocks::<M>(packed, dims, queries, |acc, first| offer(tops, acc, first, cands));
}

/// The scores of up to four queries (`x`, by dimension) against `B` packed blocks.
#[inline(always)]
fn block_scores<M: Madd, const B: usize>(blocks: [&[f32]; B], x: &[[f32; QUERIES]]) -> [[[f32; LANES]; QUERIES]; B] {
    let mut acc = [[[0f32; LANES]; QUERIES]; B];
    for (d, xd) in x.iter().enumerate() {
        for (ab, block) in acc.iter_mut().zip(&blocks) {
            let col = &block[d * LANES..d * LANES + LANES];
            for (a, &xq) in ab.iter_mut().zip(xd) {
                for l in 0..LANES {
                    a[l] = M::madd(xq, col[l], a[l]);
                }
            }
        }
    }
    acc
}

/// Offers the scores of blocks `first`, `first + 1`, ... to the queries' tops.
#[inline(always)]
fn offer(tops: &mut [Top], acc: &[[[f32; LANES]; QUERIES]], first: usize, cands: &[u32]) {
    for (j, ab) in acc.iter().enumerate() {
        for (t, a) in tops.iter_mut().zip(ab) {
            for (l, &s) in a.iter().enumerate() {
                if s > t.floor {
                    t.offer(s, cands.get((first + j) * LANES + l).copied().unwrap_or(u32::MAX));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(rows: &[f32], dims: usize, k: usize, query: &[bool], candidate: &[bool]) -> Vec<Vec<u32>> {
        let n = rows.len() / dims;
        (0..n)
            .map(|q| {
                if !query[q] {
                    return Vec::new();
                }
                let mut s: Vec<(f32, u32)> = (0..n)
                    .filter(|&c| c != q && candidate[c])
                    .map(|c| (super::super::dot(&rows[q * dims..(q + 1) * dims], &rows[c * dims..(c + 1) * dims]), c as u32))
                    .collect();
                s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                s.into_iter().take(k).map(|x| x.1).collect()
            })
            .collect()
    }

    #[test]
    fn exact_lists_match_a_brute_force_sort() {
        for (n, dims, k) in [(1usize, 4usize, 3usize), (9, 3, 4), (37, 8, 5), (100, 64, 30), (23, 300, 7)] {
            let rows: Vec<f32> = (0..n * dims).map(|i| ((i * 7919 % 1009) as f32 * 0.013).sin()).collect();
            let query: Vec<bool> = (0..n).map(|i| i % 5 != 1).collect();
            let candidate: Vec<bool> = (0..n).map(|i| i % 7 != 2).collect();
            let got = nearest(&rows, dims, k, &query, &candidate, &Exec::default());
            let want = brute(&rows, dims, k, &query, &candidate);
            assert_eq!(got.len(), n);
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                // scores may differ in the last bit between the two orders of summation: compare
                // the scores of the lists, not the exact order among near-ties
                assert_eq!(g.len(), w.len(), "n {n} dims {dims} query {q}");
                for (a, b) in g.iter().zip(w) {
                    let sa = super::super::dot(&rows[q * dims..(q + 1) * dims], &rows[*a as usize * dims..(*a as usize + 1) * dims]);
                    let sb = super::super::dot(&rows[q * dims..(q + 1) * dims], &rows[*b as usize * dims..(*b as usize + 1) * dims]);
                    assert!((sa - sb).abs() <= 1e-4 * (1.0 + sb.abs()), "n {n} dims {dims} query {q}: {a} vs {b}");
                }
                assert!(!g.contains(&(q as u32)), "never the query itself");
                assert!(g.iter().all(|&c| candidate[c as usize]), "only candidates");
            }
        }
    }

    #[test]
    fn cosine_lists_ignore_length_and_skip_zero_rows() {
        // row 1 is row 0 scaled (cosine 1), row 2 points elsewhere, row 3 is zero
        let rows = [1.0f32, 0.0, 10.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let got = nearest_by_cosine(&rows, 2, 2, &[true; 4], &Exec::default());
        assert_eq!(got[0], vec![1, 2]);
        assert!(got[3].is_empty() && !got.iter().any(|l| l.contains(&3)), "a zero row neither asks nor answers: {got:?}");
    }

    #[test]
    fn packed_scores_match_dot_products() {
        for (n, dims, nq) in [(1usize, 3usize, 1usize), (8, 8, 4), (17, 5, 3), (100, 64, 4), (23, 300, 2)] {
            let rows: Vec<f32> = (0..n * dims).map(|i| ((i * 7919 % 1009) as f32 * 0.013).sin()).collect();
            let qs: Vec<Vec<f32>> = (0..nq).map(|q| (0..dims).map(|d| ((q * 31 + d * 17) as f32 * 0.07).cos()).collect()).collect();
            let p = Packed::all(&rows, dims);
            // one extra slot per output: it must stay untouched
            let mut outs: Vec<Vec<f32>> = vec![vec![f32::NAN; n + 1]; nq];
            let mut views: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
            let refs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
            p.scores(&refs, &mut views);
            for (q, o) in outs.iter().enumerate() {
                for r in 0..n {
                    let want = super::super::dot(&qs[q], &rows[r * dims..(r + 1) * dims]);
                    assert!((o[r] - want).abs() <= 1e-4 * (1.0 + want.abs()), "n {n} dims {dims} query {q} row {r}: {} vs {want}", o[r]);
                }
                assert!(o[n].is_nan(), "nothing written past the rows");
            }
            // an output shorter than the rows gets what it has room for
            let mut short = vec![f32::NAN; n / 2];
            p.scores(&refs[..1], &mut [short.as_mut_slice()]);
            for (r, &x) in short.iter().enumerate() {
                let want = super::super::dot(&qs[0], &rows[r * dims..(r + 1) * dims]);
                assert!((x - want).abs() <= 1e-4 * (1.0 + want.abs()), "short output, row {r}");
            }
        }
    }

    #[test]
    fn ties_keep_the_lower_index_and_k_zero_gives_nothing() {
        let rows = vec![1.0f32; 6 * 2];
        let all = vec![true; 6];
        let got = nearest(&rows, 2, 3, &all, &all, &Exec::default());
        assert_eq!(got[0], vec![1, 2, 3]);
        assert_eq!(got[4], vec![0, 1, 2]);
        assert!(nearest(&rows, 2, 0, &all, &all, &Exec::default()).iter().all(Vec::is_empty));
    }
}
