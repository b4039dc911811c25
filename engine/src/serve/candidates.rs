//! Candidate mode: the blend over the union of the members' top candidates only.
//!
//! The dense blend ([`Scores::compute_into`]) scores every catalogue item with every member and
//! normalizes each member over the union of the members' top candidates. Its top of the list
//! comes out of that union in practice, so for a large catalogue only the union is scored: the
//! members' candidates are found (popularity: the hour's kept ranking; co-occurrence: the anchors'
//! neighbours; ALS and content: an i8 pass rescored exactly, or a list the caller found in an
//! HNSW index), then every member scores exactly those items, with the dense blend's
//! normalization. What the union does not hold is not ranked: a caller that runs out of buyable
//! candidates falls back to the dense blend.
use super::*;
use crate::hash::IntMap;
use crate::models::linalg::{dot, dots, QuantRows};
use crate::NONE;

/// In candidate mode each member brings this many times `Request::candidates` items: the dense
/// blend's top can be an item that is good in several members without leading any of them
/// (with four independent random members, 1× left up to 8 of the dense top-10 out; 4× none).
pub const WIDTH: usize = 4;

/// Top candidates the caller found for a member (e.g. in a pgvector HNSW index); `None`: the
/// engine finds them with a pass over the catalogue.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub als: Option<Vec<u32>>,
    pub content: Option<Vec<u32>>,
}

/// The starter-pack terms on popularity (cold start), shared by the dense and candidate modes:
/// what the customer browses now comes first (+top); without browsing, the segment's best
/// sellers come first (+top to +2 top, in the segment's order); with browsing, the segment only
/// breaks ties.
pub(super) struct Starter {
    pub top: f32,
    pub base: f32,
    pub scale: f32,
    pub seg_top: f32,
}

impl Starter {
    pub fn new(req: &Request, top: f32) -> Starter {
        let top = top.max(1e-6);
        let (base, scale) = if req.browsed.is_empty() { (top, top) } else { (0.0, 0.1 * top) };
        Starter { top, base, scale, seg_top: req.segment.first().map_or(1.0, |x| x.1).max(1e-6) }
    }

    pub fn browsed(&self) -> f32 {
        self.top
    }

    pub fn segment(&self, x: f32) -> f32 {
        self.base + self.scale * x / self.seg_top
    }
}

/// The `want` best items of `q · row` (rows of `dims` floats, `quant` their i8 copy), `excluded`
/// skipped: the i8 pass picks twice as many, which are rescored exactly.
fn top_rows(q: &[f32], rows: &[f32], dims: usize, quant: Option<&QuantRows>, excluded: &[bool], want: usize, scratch: &mut Vec<f32>) -> Vec<u32> {
    let n = excluded.len();
    let d = dims.max(1);
    scratch.resize(n, 0.0);
    let skip = |i: usize| excluded[i];
    match quant {
        Some(qr) => {
            qr.dots(q, scratch);
            let mut v: Vec<(u32, f32)> = top_n(scratch, 2 * want, skip).into_iter().map(|i| (i, dot(q, &rows[i as usize * d..(i as usize + 1) * d]))).collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.into_iter().take(want).map(|x| x.0).collect()
        }
        None => {
            dots(q, rows, dims, scratch);
            top_n(scratch, want, skip)
        }
    }
}

/// How many of a request's strongest anchors bring their nearest-item lists.
pub const KNN_ANCHORS: usize = 8;
/// How many of the best items found so far bring their own lists too (one hop further).
pub const KNN_HOP: usize = 4;

/// The `want` items with the highest `score` among the nearest items (`knn`) of the strongest
/// anchors (`anchors`, strongest first) and, one hop further, of the best items found that
/// way; best first, `keep`'s rejects left out (they still lead to their neighbours). This is
/// how a request finds ALS and content candidates in a large catalogue without searching an
/// index: what scores high against a customer's vector or content profile lies near the items
/// that vector was folded in from.
pub fn knn_nearest(knn: &Knn, anchors: &[u32], score: impl Fn(u32) -> f32, want: usize, keep: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut found: Vec<u32> = anchors.iter().take(KNN_ANCHORS).flat_map(|&a| knn.of(a).iter().copied()).collect();
    found.sort_unstable();
    found.dedup();
    let mut scored: Vec<(u32, f32)> = found.iter().map(|&i| (i, score(i))).collect();
    let best = |v: &mut Vec<(u32, f32)>| v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    best(&mut scored);
    let mut hop: Vec<u32> = scored.iter().take(KNN_HOP).flat_map(|x| knn.of(x.0).iter().copied()).filter(|i| found.binary_search(i).is_err()).collect();
    hop.sort_unstable();
    hop.dedup();
    scored.extend(hop.into_iter().map(|i| (i, score(i))));
    best(&mut scored);
    scored.into_iter().filter(|x| keep(x.0)).take(want).map(|x| x.0).collect()
}

impl Scores {
    /// Scores the union of the members' top `req.candidates` (see the module's doc); `excluded`
    /// items are never candidates. [`Scores::next`] then walks only these items.
    pub fn compute_candidates(&mut self, m: &Model, req: &Request, excluded: &[bool], given: &Given) {
        let n = m.cat.len();
        let c = req.candidates.max(1) * WIDTH;
        let s = self;
        let (profile, w) = Scores::plan(m, req);
        s.w = w;
        s.sparse = true;
        let ok = |i: u32| (i as usize) < n && !excluded[i as usize];
        let mut union: Vec<u32> = Vec::new();
        // popularity: the hour's ranking, the browsed categories' rankings, the segment's best sellers
        let pop_top = if s.w[POPULARITY] > 0.0 {
            m.with_popularity(req.now_ms, |p| {
                union.extend(p.order.iter().copied().filter(|&i| ok(i)).take(c));
                for &cat in req.browsed {
                    union.extend(p.by_category.get(cat as usize).map(Vec::as_slice).unwrap_or(&[]).iter().copied().filter(|&i| ok(i)).take(c));
                }
                union.extend(req.segment.iter().map(|x| x.0).filter(|&i| ok(i)));
                p.order.first().map_or(0.0, |&i| p.score[i as usize])
            })
        } else {
            0.0
        };
        // co-occurrence: the anchors' neighbours, summed, strongest `c`
        let cooc = if s.w[COOCCURRENCE] > 0.0 { cooccurrence(m, req, ok) } else { IntMap::default() };
        let mut v: Vec<(u32, f32)> = cooc.iter().filter(|x| x.1 .0 > 0.0).map(|(i, x)| (*i, x.0)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        union.extend(v.into_iter().take(c).map(|x| x.0));
        // content and ALS: the caller's lists, or a pass
        if let (true, Some((vecs, dims)), Some(p)) = (s.w[CONTENT] > 0.0, &m.content, &profile) {
            match &given.content {
                Some(v) => union.extend(v.iter().copied().filter(|&i| ok(i)).take(c)),
                None => union.extend(top_rows(p, vecs, *dims, m.content_q.as_ref(), excluded, c, &mut s.scratch)),
            }
        }
        if let (true, Some(a), Some(u)) = (s.w[ALS] > 0.0, &m.als, req.user) {
            match &given.als {
                Some(v) => union.extend(v.iter().copied().filter(|&i| ok(i)).take(c)),
                None => union.extend(top_rows(u, &a.item, a.factors, m.als_q.as_ref(), excluded, c, &mut s.scratch)),
            }
        }
        union.sort_unstable();
        union.dedup();
        // every member scores every candidate exactly
        let starter = Starter::new(req, pop_top);
        let segment: IntMap<u32, f32> = req.segment.iter().copied().collect();
        let u = union.len();
        for mi in 0..4 {
            let out = &mut s.member[mi];
            out.clear();
            if s.w[mi] <= 0.0 {
                continue;
            }
            match mi {
                POPULARITY => m.with_popularity(req.now_ms, |p| {
                    out.extend(union.iter().map(|&i| {
                        let mut x = p.score[i as usize];
                        if req.browsed.contains(&m.cat.category[i as usize]) {
                            x += starter.browsed();
                        }
                        if let Some(&v) = segment.get(&i) {
                            x += starter.segment(v);
                        }
                        x
                    }))
                }),
                COOCCURRENCE => out.extend(union.iter().map(|i| cooc.get(i).map_or(0.0, |x| x.0))),
                CONTENT => {
                    if let (Some((vecs, d)), Some(p)) = (&m.content, &profile) {
                        out.extend(union.iter().map(|&i| dot(p, &vecs[i as usize * d..(i as usize + 1) * d])));
                    }
                }
                _ => {
                    if let (Some(a), Some(user)) = (&m.als, req.user) {
                        out.extend(union.iter().map(|&i| dot(user, a.vec(i))));
                    }
                }
            }
            out.resize(u, 0.0);
        }
        s.via.clear();
        s.via.extend(union.iter().map(|i| cooc.get(i).map_or(NONE, |x| x.1)));
        s.items = union;
        s.normalize_and_blend(u, |member| min_max(member.iter().copied()));
    }

    /// Sets each member's normalization from `range(member scores)` = (lo, hi) over the
    /// candidates, and writes the first `len` blended scores (dense and candidate mode alike).
    pub(super) fn normalize_and_blend(&mut self, len: usize, range: impl Fn(&[f32]) -> (f32, f32)) {
        let mut base = 0f32;
        for mi in 0..4 {
            self.lo[mi] = 0.0;
            self.span[mi] = 1.0;
            if self.w[mi] <= 0.0 {
                continue;
            }
            let (lo, hi) = range(&self.member[mi]);
            self.lo[mi] = if lo <= hi { lo } else { 0.0 };
            self.span[mi] = if hi > lo { hi - lo } else { 1.0 };
            base -= self.w[mi] / self.span[mi] * self.lo[mi];
        }
        self.blended.clear();
        self.blended.resize(len, base);
        for mi in 0..4 {
            if self.w[mi] > 0.0 {
                let scale = self.w[mi] / self.span[mi];
                for (b, x) in self.blended.iter_mut().zip(&self.member[mi]) {
                    *b += scale * x;
                }
            }
        }
    }
}

/// (min, max) of some scores; (f32::MAX, f32::MIN) when there are none.
pub(super) fn min_max(xs: impl IntoIterator<Item = f32>) -> (f32, f32) {
    xs.into_iter().fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

/// Co-occurrence with the request's anchors, for the neighbour items `keep` accepts: the strength
/// summed over the anchors (each weighted relative to the strongest anchor), and the anchor (index
/// into `Request::anchors`) that gave the most.
pub(super) fn cooccurrence(m: &Model, req: &Request, keep: impl Fn(u32) -> bool) -> IntMap<u32, (f32, u32)> {
    let top_weight = req.anchors.iter().map(|a| a.weight).fold(0f32, f32::max).max(1e-6);
    let nb = m.neighbors.as_ref();
    let mut acc: IntMap<u32, (f32, f32, u32)> = IntMap::default();
    for (ai, a) in req.anchors.iter().enumerate() {
        for x in nb.and_then(|l| l.get(a.item as usize)).unwrap_or(&[]) {
            if keep(x.item) {
                let v = a.weight / top_weight * x.score;
                let e = acc.entry(x.item).or_insert((0.0, 0.0, NONE));
                e.0 += v;
                if v > e.1 {
                    e.1 = v;
                    e.2 = ai as u32;
                }
            }
        }
    }
    acc.into_iter().map(|(i, (sum, _, via))| (i, (sum, via))).collect()
}
