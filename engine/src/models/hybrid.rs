//! The hybrid: scores of the member models blended with weights chosen on a temporal holdout.
//!
//! For each evaluated customer every member scores the whole catalogue (items seen in training
//! excluded); the candidates are the union of each member's top [`CANDIDATES`]. Each member's
//! scores are min–max normalized over those candidates and blended as Σ w_m · s_m. The weights
//! are searched on a grid over the simplex (step 0.1) that includes every single member at
//! weight 1, and the best NDCG@k wins, so on the holdout the blend is never worse than its best
//! member (a single member at weight 1 reproduces that member's own top k).
use super::als;
use super::cooccurrence::Neighbor;
use super::linalg::nearest::Packed;
use super::linalg::Exec;
use crate::eval::{score, Summary};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use rayon::prelude::*;
use std::collections::HashSet;

pub const MEMBERS: [&str; 4] = ["popularity", "cooccurrence", "content", "als"];
/// Per member, how many top items become blend candidates.
pub const CANDIDATES: usize = 100;

/// Trained members; `None` for one that is not part of the model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Members<'a> {
    /// per item, the (decayed) popularity
    pub popularity: Option<&'a [f32]>,
    /// per item, its neighbours (baskets and sessions)
    pub cooccurrence: Option<&'a [Vec<Neighbor>]>,
    /// item vectors, row-major, and their width
    pub content: Option<(&'a [f32], usize)>,
    pub als: Option<&'a als::Model>,
}

impl Members<'_> {
    pub fn present(&self) -> [bool; 4] {
        [self.popularity.is_some(), self.cooccurrence.is_some(), self.content.is_some(), self.als.is_some()]
    }

    /// The vector a vector member (content: 2, ALS: 3) scores the catalogue with for a customer
    /// (`user` row of the training matrix and their history there): zeros when it has none.
    pub fn query(&self, m: usize, user: usize, (items, weights): (&[u32], &[f32])) -> Vec<f32> {
        match (m, self.content, self.als) {
            (2, Some((vecs, dims)), _) => super::content::profile(vecs, dims, items, weights),
            (3, _, Some(a)) if (user + 1) * a.factors <= a.user.len() => a.user_vec(user).to_vec(),
            (3, _, Some(a)) => vec![0.0; a.factors],
            _ => Vec::new(),
        }
    }

    /// Member `m`'s score of every item for a customer with this history (items and weights
    /// of their row of the training matrix), into `out` (catalogue-sized), for the members
    /// scored from the history itself: popularity (0) and co-occurrence (1). The vector members
    /// (content, ALS) are scored four customers at a time from [`Members::query`].
    pub fn scores(&self, m: usize, items: &[u32], weights: &[f32], out: &mut [f32]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        match (m, self.popularity, self.cooccurrence) {
            (0, Some(p), _) => out.iter_mut().zip(p).for_each(|(o, p)| *o = *p),
            (1, _, Some(nb)) => {
                let top = weights.iter().copied().fold(0f32, f32::max).max(1e-6);
                for (&j, &w) in items.iter().zip(weights) {
                    for n in nb.get(j as usize).map(Vec::as_slice).unwrap_or(&[]) {
                        if let Some(o) = out.get_mut(n.item as usize) {
                            *o += w / top * n.score;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Customers to evaluate and their held-out items (not seen in training).
#[derive(Debug, Clone, Default)]
pub struct EvalSet {
    pub users: Vec<u32>,
    pub truth: Vec<Vec<u32>>,
}

/// Up to `max_users` customers (a seeded sample) with held-out items that training did not see.
pub fn eval_set(train: &als::Csr, test: &als::Csr, max_users: usize, seed: u64) -> EvalSet {
    let mut s = EvalSet::default();
    for u in 0..test.rows.min(train.rows) {
        let seen: HashSet<u32> = train.row(u).0.iter().copied().collect();
        let t: Vec<u32> = test.row(u).0.iter().copied().filter(|i| !seen.contains(i)).collect();
        if !t.is_empty() {
            s.users.push(u as u32);
            s.truth.push(t);
        }
    }
    if s.users.len() > max_users {
        let mut idx: Vec<usize> = (0..s.users.len()).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        idx.truncate(max_users);
        idx.sort_unstable();
        s = EvalSet { users: idx.iter().map(|&i| s.users[i]).collect(), truth: idx.iter().map(|&i| s.truth[i].clone()).collect() };
    }
    s
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// per member (in [`MEMBERS`] order), its metrics when present
    pub members: [Option<Summary>; 4],
    /// the chosen blend weights
    pub weights: [f32; 4],
    pub hybrid: Summary,
    /// the grid's best blends, best first: (weights, NDCG@k), at most [`RUNNERS_UP`]
    pub best: Vec<([f32; 4], f64)>,
}

/// How many of the grid's best blends the report keeps (for a choice on the served list).
pub const RUNNERS_UP: usize = 6;

#[derive(Clone)]
struct UserCands {
    truth: HashSet<u32>,
    cands: Vec<(u32, [f32; 4])>,
    member_top: [Vec<u32>; 4],
}

/// The `n` best items by score; items scored −∞ (seen) or NaN are left out.
fn top_n(scores: &[f32], n: usize) -> Vec<u32> {
    crate::rank::top_n(scores, n, |_| false)
}

fn summarize(rows: &[(Vec<u32>, &HashSet<u32>)], k: usize, n_items: usize) -> Summary {
    crate::eval::summarize(rows.iter().map(|(r, t)| (r.as_slice(), *t)), k, n_items)
}

fn blend_top(c: &UserCands, w: &[f32; 4], k: usize) -> Vec<u32> {
    let mut v: Vec<(u32, f32)> = c.cands.iter().map(|(i, s)| (*i, s.iter().zip(w).map(|(a, b)| a * b).sum())).collect();
    // the best k by (score, then item): a total order, so selecting them first and sorting only
    // those gives the same list as sorting every candidate (286 blends × every customer)
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k && k > 0 {
        v.select_nth_unstable_by(k - 1, order);
    }
    v.truncate(k);
    v.sort_by(order);
    v.into_iter().map(|x| x.0).collect()
}

/// The weight grid: all (w0..w3) in steps of 0.1 summing to 1, restricted to present members.
pub fn grid(present: [bool; 4]) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for a in 0..=10 {
        for b in 0..=10 - a {
            for c in 0..=10 - a - b {
                let d = 10 - a - b - c;
                let w = [a, b, c, d].map(|x| x as f32 / 10.0);
                if w.iter().zip(present).all(|(w, p)| p || *w == 0.0) {
                    out.push(w);
                }
            }
        }
    }
    out
}

/// Evaluates every present member and the blend at cut-off `k` on `set`; `train` is the
/// matrix the members were trained on (its rows are the customers' histories).
pub fn evaluate(train: &als::Csr, set: &EvalSet, m: &Members, k: usize, exec: Exec) -> Report {
    exec.run(|| evaluate_here(train, set, m, k, &exec))
}

/// A cancelled evaluation (`exec`) skips the users left and returns a meaningless report.
fn evaluate_here(train: &als::Csr, set: &EvalSet, m: &Members, k: usize, exec: &Exec) -> Report {
    let n_items = train.cols;
    let present = m.present();
    // the vector members (content, ALS) score four customers at once against packed item
    // vectors: a full-catalogue pass per customer, one dot product per item, was most of the time
    let packed: [Option<Packed>; 4] = [None, None, m.content.map(|(v, d)| Packed::all(v, d)), m.als.map(|a| Packed::all(&a.item, a.factors))];
    const Q: usize = Packed::QUERIES;
    let empty = UserCands { truth: HashSet::new(), cands: Vec::new(), member_top: Default::default() };
    let per_user: Vec<UserCands> = set
        .users
        .par_chunks(Q)
        .zip(set.truth.par_chunks(Q))
        .map_init(
            // customer q of the chunk, member mi: buf[q * 4 + mi]
            || vec![vec![0f32; n_items]; 4 * Q],
            |buf, (users, truths)| {
                if exec.cancelled() {
                    return users.iter().map(|_| empty.clone()).collect::<Vec<_>>();
                }
                for (mi, p) in packed.iter().enumerate() {
                    let Some(p) = p.as_ref().filter(|_| present[mi]) else { continue };
                    let qs: Vec<Vec<f32>> = users.iter().map(|&u| m.query(mi, u as usize, train.row(u as usize))).collect();
                    let refs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
                    let mut outs: Vec<&mut [f32]> = buf.iter_mut().skip(mi).step_by(4).take(users.len()).map(|b| b.as_mut_slice()).collect();
                    p.scores(&refs, &mut outs);
                    // (items past the member's rows score 0, as Members::scores leaves them)
                    outs.iter_mut().for_each(|o| o[p.rows().min(n_items)..].fill(0.0));
                }
                users
                    .iter()
                    .zip(truths)
                    .zip(buf.chunks_mut(4))
                    .map(|((&u, truth), bufs)| {
                        let (items, weights) = train.row(u as usize);
                        let mut member_top: [Vec<u32>; 4] = Default::default();
                        let mut union: Vec<u32> = Vec::new();
                        for mi in 0..4 {
                            if !present[mi] {
                                continue;
                            }
                            let b = &mut bufs[mi];
                            if packed[mi].is_none() {
                                m.scores(mi, items, weights, b);
                            }
                            for &i in items {
                                b[i as usize] = f32::NEG_INFINITY;
                            }
                            let top = top_n(b, CANDIDATES.max(k));
                            union.extend(&top);
                            member_top[mi] = top;
                        }
                        union.sort_unstable();
                        union.dedup();
                        let mut cands: Vec<(u32, [f32; 4])> = union.iter().map(|&i| (i, [0.0; 4])).collect();
                        for mi in 0..4 {
                            if !present[mi] {
                                continue;
                            }
                            let b = &bufs[mi];
                            let (lo, hi) = union.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &i| (lo.min(b[i as usize]), hi.max(b[i as usize])));
                            let span = if hi > lo { hi - lo } else { 1.0 };
                            for c in &mut cands {
                                c.1[mi] = (b[c.0 as usize] - lo) / span;
                            }
                        }
                        UserCands { truth: truth.iter().copied().collect(), cands, member_top }
                    })
                    .collect::<Vec<_>>()
            },
        )
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    let mut members: [Option<Summary>; 4] = [None; 4];
    for mi in 0..4 {
        if present[mi] {
            let rows: Vec<(Vec<u32>, &HashSet<u32>)> = per_user.iter().map(|c| (c.member_top[mi].clone(), &c.truth)).collect();
            members[mi] = Some(summarize(&rows, k, n_items));
        }
    }
    let candidates = grid(present);
    let ndcgs: Vec<f64> = candidates
        .par_iter()
        .map(|w| {
            if exec.cancelled() {
                return 0.0;
            }
            let total: f64 = per_user.iter().map(|c| score(&blend_top(c, w, k), &c.truth, k).map(|s| s.ndcg).unwrap_or(0.0)).sum();
            total
        })
        .collect();
    let mut best = 0;
    for (i, n) in ndcgs.iter().enumerate() {
        if *n > ndcgs[best] + 1e-12 {
            best = i;
        }
    }
    let weights = candidates.get(best).copied().unwrap_or([0.0, 0.0, 0.0, 1.0]);
    let rows: Vec<(Vec<u32>, &HashSet<u32>)> = per_user.iter().map(|c| (blend_top(c, &weights, k), &c.truth)).collect();
    let users = per_user.len().max(1) as f64;
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| ndcgs[b].total_cmp(&ndcgs[a]).then(a.cmp(&b)));
    let best = order.into_iter().take(RUNNERS_UP).map(|i| (candidates[i], ndcgs[i] / users)).collect();
    Report { members, weights, hybrid: summarize(&rows, k, n_items), best }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cooccurrence::Neighbor;

    #[test]
    fn a_blends_top_k_is_the_head_of_all_candidates_sorted() {
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(3);
        for n in [0usize, 1, 5, 10, 11, 40, 300] {
            // scores on a coarse grid, so that ties (broken by the lower item) are common
            let cands: Vec<(u32, [f32; 4])> = (0..n as u32).map(|i| (i * 7 % 1000, std::array::from_fn(|_| rng.random_range(0..5) as f32 / 4.0))).collect();
            let c = UserCands { truth: HashSet::new(), cands, member_top: Default::default() };
            for w in [[0.25f32; 4], [0.0, 0.0, 0.0, 1.0], [0.3, 0.4, 0.0, 0.3]] {
                for k in [1usize, 10, 400] {
                    let mut all: Vec<(u32, f32)> = c.cands.iter().map(|(i, s)| (*i, s.iter().zip(&w).map(|(a, b)| a * b).sum())).collect();
                    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    let want: Vec<u32> = all.into_iter().take(k).map(|x| x.0).collect();
                    assert_eq!(blend_top(&c, &w, k), want, "n {n} k {k} w {w:?}");
                }
            }
        }
    }

    #[test]
    fn grid_covers_single_members_and_respects_absent_ones() {
        let g = grid([true; 4]);
        assert_eq!(g.len(), 286);
        assert!(g.contains(&[0.0, 0.0, 0.0, 1.0]) && g.contains(&[1.0, 0.0, 0.0, 0.0]));
        let g = grid([true, false, false, true]);
        assert_eq!(g.len(), 11);
        assert!(g.iter().all(|w| w[1] == 0.0 && w[2] == 0.0));
    }

    #[test]
    fn the_blend_is_never_worse_than_its_best_member() {
        // 6 items; popularity prefers 1, then 0; co-occurrence says 2 goes with 5. Customers
        // who bought 5 come back for 2; the others for 1.
        let pop = [9.0, 10.0, 2.0, 1.0, 1.0, 1.0];
        let nb: Vec<Vec<Neighbor>> = (0..6)
            .map(|i| if i == 5 { vec![Neighbor { item: 2, support: 3, confidence: 0.5, lift: 3.0, score: 0.55, cross_category: true }] } else { vec![] })
            .collect();
        let mut t = Vec::new();
        let mut truth = Vec::new();
        for u in 0..10u32 {
            if u % 2 == 0 {
                t.push((u, 5, 8.0));
                truth.push(vec![2]);
            } else {
                t.push((u, 3, 1.0));
                truth.push(vec![1]);
            }
        }
        let train = als::Csr::from_triplets(10, 6, t);
        let set = EvalSet { users: (0..10).collect(), truth };
        let m = Members { popularity: Some(&pop), cooccurrence: Some(&nb), ..Default::default() };
        let r = evaluate(&train, &set, &m, 1, Exec::default());
        let (p, c) = (r.members[0].unwrap(), r.members[1].unwrap());
        assert_eq!(p.hit_rate, 0.5); // item 1 for everyone: right for the odd half
        assert_eq!(c.hit_rate, 0.5); // item 2 scores for the even half; the rest tie, and item 0 comes first
        assert_eq!(r.hybrid.hit_rate, 1.0, "{r:?}");
        assert!(r.hybrid.ndcg >= p.ndcg.max(c.ndcg));
        assert!(r.weights[1] > 0.0 && r.weights[0] > 0.0);
    }

    #[test]
    fn eval_set_drops_seen_items_and_samples() {
        let train = als::Csr::from_triplets(3, 3, vec![(0, 0, 1.0), (1, 1, 1.0)]);
        let test = als::Csr::from_triplets(3, 3, vec![(0, 0, 1.0), (1, 2, 1.0), (2, 1, 1.0)]);
        let s = eval_set(&train, &test, 10, 1);
        assert_eq!(s.users, vec![1, 2]);
        assert_eq!(s.truth, vec![vec![2], vec![1]]);
        assert_eq!(eval_set(&train, &test, 1, 1).users.len(), 1);
    }
}
