//! Blend and scores: every member scores the catalogue (or, in candidate mode, the union of
//! the members' candidates; see `candidates`), each member is min–max normalized over the union
//! of the members' top candidates, and the blend weights are the model's times the placement's.
use super::{candidates, Model, Request, ALS, CONTENT, COOCCURRENCE, POPULARITY};
use crate::models::linalg::{dot, dots, QuantRows};
use crate::prefs::fit::fits;
use crate::rank::top_n;
use crate::NONE;
use serde_json::{Map, Value};

/// At a placement `demand` weight of 1, the most an item's demand adjustment moves its score,
/// as a share of the largest score the blend can give.
pub const DEMAND_SCALE: f32 = 0.5;

/// Above this many items, a full-catalogue pass reads the i8 copy (a quarter of the memory
/// traffic, which is what the pass costs) and rescores its top this many items exactly.
pub const RESCORE: usize = 1024;

/// `out[i] = q · row i`: exact for small catalogues; over [`RESCORE`] items, from the i8 copy
/// with the top [`RESCORE`] rescored exactly.
pub(super) fn score_rows(q: &[f32], rows: &[f32], dims: usize, quant: Option<&QuantRows>, out: &mut [f32]) {
    match quant {
        Some(qr) if out.len() > RESCORE => {
            qr.dots(q, out);
            let d = dims.max(1);
            let t = rescore_threshold(out);
            for (i, o) in out.iter_mut().enumerate() {
                if *o >= t {
                    *o = dot(q, &rows[i * d..(i + 1) * d]);
                }
            }
        }
        _ => dots(q, rows, dims, out),
    }
}

/// A score that about 2 × [`RESCORE`] items reach, from a strided sample of 4 096: rescoring
/// every item at or above it covers the top [`RESCORE`] without sorting the catalogue.
pub(super) fn rescore_threshold(scores: &[f32]) -> f32 {
    let n = scores.len();
    let mut sample: Vec<f32> = scores.iter().step_by((n / 4096).max(1)).copied().filter(|x| !x.is_nan()).collect();
    if sample.is_empty() {
        return f32::NEG_INFINITY;
    }
    let want = (2 * RESCORE * sample.len()).div_ceil(n).clamp(1, sample.len());
    *sample.select_nth_unstable_by(want - 1, |a, b| b.total_cmp(a)).1
}

/// A request's scores: each member's over the catalogue, and the blend. Reuse one value
/// across requests ([`Scores::compute_into`]) so its catalogue-sized buffers are not allocated
/// (and page-faulted) per call.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub member: [Vec<f32>; 4],
    pub lo: [f32; 4],
    pub span: [f32; 4],
    pub w: [f32; 4],
    pub blended: Vec<f32>,
    /// per item, the anchor (index into `Request::anchors`) that gave it the most co-occurrence
    pub via: Vec<u32>,
    /// candidate mode ([`Scores::compute_candidates`]): only these items are scored, and
    /// `member`, `blended` and `via` are indexed by their position here (ascending item order,
    /// so a position is a binary search away)
    pub items: Vec<u32>,
    pub sparse: bool,
    /// a catalogue-sized buffer for full passes in candidate mode
    pub(super) scratch: Vec<f32>,
}

impl Scores {
    /// Scores every item. `excluded[i]` items get −∞ (they never rank and do not set the
    /// normalization). Members without input (no anchors, no customer vector) drop out of the
    /// blend, and only members with weight are computed.
    pub fn compute(m: &Model, req: &Request, excluded: &[bool]) -> Scores {
        let mut s = Scores::default();
        s.compute_into(m, req, excluded);
        s
    }

    /// The content profile of the request's anchors and the members' blend weights: members
    /// without input (no anchors, no customer vector) drop out, and when nothing the blend trusts
    /// has input, whatever has input scores alone (popularity first).
    pub fn plan(m: &Model, req: &Request) -> (Option<Vec<f32>>, [f32; 4]) {
        let present = m.present();
        let profile: Option<Vec<f32>> = m.content.as_ref().filter(|_| present[CONTENT]).map(|(vecs, dims)| {
            let items: Vec<u32> = req.anchors.iter().map(|a| a.item).collect();
            let weights: Vec<f32> = req.anchors.iter().map(|a| a.weight).collect();
            crate::models::content::profile(vecs, *dims, &items, &weights)
        });
        let active = [
            present[POPULARITY],
            present[COOCCURRENCE] && !req.anchors.is_empty(),
            profile.as_ref().is_some_and(|p| p.iter().any(|x| *x != 0.0)),
            present[ALS] && req.user.is_some(),
        ];
        let mut w: [f32; 4] = std::array::from_fn(|mi| if active[mi] { m.weights[mi] * req.multipliers[mi] } else { 0.0 });
        if w.iter().all(|w| *w <= 0.0) {
            if let Some(mi) = [POPULARITY, COOCCURRENCE, CONTENT, ALS].into_iter().find(|&mi| active[mi]) {
                w[mi] = 1.0;
            }
        }
        (profile, w)
    }

    /// [`Scores::compute`] into this value's buffers.
    pub fn compute_into(&mut self, m: &Model, req: &Request, excluded: &[bool]) {
        let n = m.cat.len();
        let s = self;
        s.sparse = false;
        s.items.clear();
        s.via.clear();
        s.via.resize(n, NONE);
        let (profile, w) = Scores::plan(m, req);
        s.w = w;
        for mi in 0..4 {
            let out = &mut s.member[mi];
            if s.w[mi] <= 0.0 {
                out.clear();
                continue;
            }
            out.resize(n, 0.0);
            match mi {
                POPULARITY => {
                    m.popularity_now(req.now_ms, out);
                    if !req.browsed.is_empty() || !req.segment.is_empty() {
                        let st = candidates::Starter::new(req, out.iter().copied().fold(0f32, f32::max));
                        if !req.browsed.is_empty() {
                            for (i, o) in out.iter_mut().enumerate() {
                                if req.browsed.contains(&m.cat.category[i]) {
                                    *o += st.browsed();
                                }
                            }
                        }
                        for &(i, x) in req.segment {
                            if let Some(o) = out.get_mut(i as usize) {
                                *o += st.segment(x);
                            }
                        }
                    }
                }
                COOCCURRENCE => {
                    out.iter_mut().for_each(|x| *x = 0.0);
                    for (j, (x, via)) in candidates::cooccurrence(m, req, |j| (j as usize) < n) {
                        out[j as usize] = x;
                        s.via[j as usize] = via;
                    }
                }
                CONTENT => {
                    if let (Some((vecs, dims)), Some(p)) = (&m.content, &profile) {
                        score_rows(p, vecs, *dims, m.content_q.as_ref(), out);
                    }
                }
                _ => {
                    if let (Some(u), Some(a)) = (req.user, &m.als) {
                        score_rows(u, &a.item, a.factors, m.als_q.as_ref(), out);
                    }
                }
            }
            for (o, x) in out.iter_mut().zip(excluded) {
                if *x {
                    *o = f32::NEG_INFINITY;
                }
            }
        }
        let mut union: Vec<u32> = Vec::new();
        for mi in 0..4 {
            if s.w[mi] > 0.0 {
                union.extend(top_n(&s.member[mi], req.candidates.max(1), |_| false));
            }
        }
        union.sort_unstable();
        union.dedup();
        s.normalize_and_blend(n, |member| candidates::min_max(union.iter().map(|&i| member[i as usize])));
        for (b, x) in s.blended.iter_mut().zip(excluded) {
            if *x {
                *b = f32::NEG_INFINITY;
            }
        }
    }

    /// Where item `i`'s scores are: its index in dense mode, its slot in candidate mode
    /// (None when it is not a candidate).
    pub(super) fn at(&self, i: u32) -> Option<usize> {
        if self.sparse {
            self.items.binary_search(&i).ok()
        } else {
            Some(i as usize).filter(|&i| i < self.blended.len())
        }
    }

    /// Item `i`'s blended score (−∞ when it was not scored).
    pub fn score(&self, i: u32) -> f32 {
        self.at(i).map_or(f32::NEG_INFINITY, |x| self.blended[x])
    }

    /// The anchor that gave item `i` the most co-occurrence ([`NONE`] if none).
    pub fn via_of(&self, i: u32) -> u32 {
        self.at(i).and_then(|x| self.via.get(x).copied()).unwrap_or(NONE)
    }

    /// Member `mi`'s weighted, normalized part of item `i`'s blended score.
    pub fn part(&self, mi: usize, i: u32) -> f32 {
        match self.at(i) {
            Some(x) if self.w[mi] > 0.0 => self.w[mi] * (self.member[mi][x] - self.lo[mi]) / self.span[mi],
            _ => 0.0,
        }
    }

    /// The member that contributes most to item `i`.
    pub fn dominant(&self, i: u32) -> usize {
        (0..4).max_by(|&a, &b| self.part(a, i).total_cmp(&self.part(b, i)).then(b.cmp(&a))).unwrap_or(POPULARITY)
    }

    /// The best `n` items not yet in `taken`, best first; fewer when the scored items run out
    /// (in candidate mode: the candidates).
    pub fn next(&self, n: usize, taken: &[bool]) -> Vec<u32> {
        let taken = |i: u32| taken.get(i as usize).copied().unwrap_or(false);
        if self.sparse {
            top_n(&self.blended, n, |x| taken(self.items[x])).into_iter().map(|x| self.items[x as usize]).collect()
        } else {
            top_n(&self.blended, n, |i| taken(i as u32))
        }
    }

    /// Lowers the blended score of items that do not fit the customer's resolved preferences
    /// (size, color, brand, price range) by `penalty`; only `items` are looked at.
    /// Adds the demand adjustment to `items` (`crate::demand::adjustment` of their forecast over
    /// the lead time and `available`, in order), times `weight` and [`DEMAND_SCALE`] of the
    /// blend's total weight (the largest score a blend can give).
    pub fn apply_demand(&mut self, d: &super::model::Demand, weight: f32, now_ms: i64, lead_days: f64, items: &[u32], available: &[f64]) {
        let total: f32 = self.w.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        let scale = f64::from(weight.max(0.0) * DEMAND_SCALE * if total > 0.0 { total } else { 1.0 });
        for (&i, &a) in items.iter().zip(available) {
            if let Some(x) = self.at(i) {
                let adj = crate::demand::adjustment(d.per_day(i, now_ms, lead_days), a, lead_days, d.typical);
                self.blended[x] += (scale * adj) as f32;
            }
        }
    }

    pub fn apply_preferences(&mut self, m: &Model, resolved: &Map<String, Value>, penalty: f32, items: &[u32]) {
        for &i in items {
            if let Some(x) = self.at(i).filter(|_| m.cat.facts.get(i as usize).is_some_and(|f| !fits(resolved, &f))) {
                self.blended[x] -= penalty;
            }
        }
    }
}
