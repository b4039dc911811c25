//! Serving: one request against the deployed model, in memory.
//!
//! The glue loads a [`Model`] once per backend (and again when another model is deployed),
//! reads the request's live inputs (the customer's recent events, cart, stock) and calls this
//! module to score, rank, diversify and explain. Scoring follows training's hybrid exactly:
//! every member scores the catalogue, each member's scores are min–max normalized over the
//! union of the members' top candidates, and the blend weights are the ones the model chose on
//! its holdout — times the placement's multipliers. Only what changes per request is computed
//! here; YᵀY, item norms and merged neighbour lists are precomputed when the model is loaded.
use crate::models::cooccurrence::Neighbor;
use crate::models::linalg::{dot, dots, gram, normalize, QuantRows};
use crate::models::popularity::Popularity;
use crate::prefs::fit::{fits, ItemFacts};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub mod candidates;
pub mod context;

/// No group / no anchor.
pub const NONE: u32 = u32::MAX;

/// Members in training's order (see `models::hybrid::MEMBERS`).
pub const POPULARITY: usize = 0;
pub const COOCCURRENCE: usize = 1;
pub const CONTENT: usize = 2;
pub const ALS: usize = 3;

/// ALS item factors with what fold-in needs.
#[derive(Debug, Clone, Default)]
pub struct Als {
    pub factors: usize,
    /// row-major, one row per catalogue item (zero for items the model did not learn)
    pub item: Vec<f32>,
    pub learned: Vec<bool>,
    /// YᵀY over the learned items, f × f row-major
    pub yty: Vec<f32>,
    /// per item, the length of its factor vector (for cosine similarity)
    pub norm: Vec<f32>,
    pub regularization: f32,
    pub alpha: f32,
}

impl Als {
    pub fn new(factors: usize, item: Vec<f32>, learned: Vec<bool>, regularization: f32, alpha: f32) -> Als {
        let yty = gram(&item, factors.max(1));
        let norm = item.chunks_exact(factors.max(1)).map(|y| dot(y, y).sqrt()).collect();
        Als { factors, item, learned, yty, norm, regularization, alpha }
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

    /// The history item that contributes most to item `i`'s score (None if none adds to it).
    pub fn top(&self, als: &Als, i: u32) -> Option<u32> {
        self.shares(als, i).into_iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).filter(|x| x.1 > 0.0).map(|x| x.0)
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

/// The catalogue as the model knows it (items that exist when the model is loaded).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub ids: Vec<String>,
    pub index: HashMap<String, u32>,
    pub title: Vec<String>,
    pub category: Vec<u32>,
    pub categories: Vec<String>,
    pub category_index: HashMap<String, u32>,
    pub group: Vec<u32>,
    pub facts: Vec<ItemFacts>,
}

impl Catalogue {
    /// Adds an item; `group` is a product group key (variants share it).
    pub fn push(
        &mut self,
        id: String,
        title: Option<String>,
        category: Option<&str>,
        group: Option<&str>,
        facts: ItemFacts,
        groups: &mut HashMap<String, u32>,
    ) {
        let i = self.ids.len() as u32;
        let cat = category.unwrap_or("");
        let c = match self.category_index.get(cat) {
            Some(&c) => c,
            None => {
                self.categories.push(cat.to_string());
                self.category_index.insert(cat.to_string(), self.categories.len() as u32 - 1);
                self.categories.len() as u32 - 1
            }
        };
        let g = match group {
            Some(g) => {
                let n = groups.len() as u32;
                *groups.entry(g.to_string()).or_insert(n)
            }
            None => NONE,
        };
        self.index.insert(id.clone(), i);
        self.title.push(title.unwrap_or_else(|| id.clone()));
        self.ids.push(id);
        self.category.push(c);
        self.group.push(g);
        self.facts.push(facts);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn category_name(&self, i: u32) -> &str {
        self.categories.get(self.category[i as usize] as usize).map(String::as_str).unwrap_or("")
    }
}

/// A deployed model, ready to serve.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub model_id: i64,
    pub cat: Catalogue,
    pub als: Option<Als>,
    /// unit content vectors, row-major, and their width (zero rows for items without one)
    pub content: Option<(Vec<f32>, usize)>,
    /// basket and session neighbours merged as training did (a session pair counts half)
    pub neighbors: Option<Vec<Vec<Neighbor>>>,
    /// basket neighbours only: "bought together", for complements
    pub basket: Option<Vec<Vec<Neighbor>>>,
    pub popularity: Option<Popularity>,
    /// per customer segment, its best sellers (item, score), best first
    pub segments: HashMap<String, Vec<(u32, f32)>>,
    /// i8 copies of the ALS item factors and the content vectors, for catalogues over
    /// [`RESCORE`] items ([`Model::quantize`])
    pub als_q: Option<QuantRows>,
    pub content_q: Option<QuantRows>,
    /// each item's nearest items by ALS and by content (training's reco.item_knn; large
    /// catalogues only): candidates without an index search
    pub als_knn: Option<Knn>,
    pub content_knn: Option<Knn>,
    /// blend weights, in member order
    pub weights: [f32; 4],
    /// the end of the model's training data (epoch ms); later events are folded in
    pub data_to_ms: i64,
    /// items created after this (epoch ms) are not in `cat`: the glue finds them in SQL
    pub items_until_ms: i64,
    /// time-aware popularity for the last hour of the week asked for
    pub popularity_cache: std::cell::RefCell<Option<PopularNow>>,
}

/// Each item's nearest items in one space, nearest first (compressed rows).
#[derive(Debug, Clone, Default)]
pub struct Knn {
    /// item i's list is `items[start[i]..start[i + 1]]`
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Knn {
    /// From per-item lists: `lists` gives (item, its nearest items); items out of `0..n` are
    /// dropped, items without a list get an empty one.
    pub fn from_lists(n: usize, lists: impl IntoIterator<Item = (u32, Vec<u32>)>) -> Knn {
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, l) in lists {
            if let Some(slot) = per.get_mut(i as usize) {
                *slot = l.into_iter().filter(|&j| (j as usize) < n && j != i).collect();
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut items = Vec::with_capacity(per.iter().map(Vec::len).sum());
        start.push(0);
        for l in per {
            items.extend(l);
            start.push(items.len() as u32);
        }
        Knn { start, items }
    }

    /// Item `i`'s nearest items, nearest first (empty for an item without a list).
    pub fn of(&self, i: u32) -> &[u32] {
        match (self.start.get(i as usize), self.start.get(i as usize + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }

    pub fn bytes(&self) -> usize {
        (self.start.len() + self.items.len()) * 4
    }
}

/// Time-aware popularity for one hour of the week, kept until the hour changes.
#[derive(Debug, Clone, Default)]
pub struct PopularNow {
    /// hour + 24 × weekday
    pub key: u32,
    pub score: Vec<f32>,
    /// items with a positive score, best first (ties: lower index first)
    pub order: Vec<u32>,
    /// `order` split by category (index into `Catalogue::categories`)
    pub by_category: Vec<Vec<u32>>,
}

/// Above this many items, a full-catalogue pass reads the i8 copy (a quarter of the memory
/// traffic, which is what the pass costs) and rescores its top this many items exactly.
pub const RESCORE: usize = 1024;

/// `out[i] = q · row i`: exact for small catalogues; over [`RESCORE`] items, from the i8 copy
/// with the top [`RESCORE`] rescored exactly.
fn score_rows(q: &[f32], rows: &[f32], dims: usize, quant: Option<&QuantRows>, out: &mut [f32]) {
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
fn rescore_threshold(scores: &[f32]) -> f32 {
    let n = scores.len();
    let mut sample: Vec<f32> = scores.iter().step_by((n / 4096).max(1)).copied().filter(|x| !x.is_nan()).collect();
    if sample.is_empty() {
        return f32::NEG_INFINITY;
    }
    let want = (2 * RESCORE * sample.len()).div_ceil(n).clamp(1, sample.len());
    *sample.select_nth_unstable_by(want - 1, |a, b| b.total_cmp(a)).1
}

impl Model {
    /// Builds the i8 copies the first pass of a large catalogue reads (no-op for small ones).
    pub fn quantize(&mut self) {
        if self.cat.len() <= RESCORE {
            return;
        }
        self.als_q = self.als.as_ref().map(|a| QuantRows::new(&a.item, a.factors));
        self.content_q = self.content.as_ref().map(|(v, d)| QuantRows::new(v, *d));
    }

    pub fn present(&self) -> [bool; 4] {
        [self.popularity.is_some(), self.neighbors.is_some(), self.content.is_some(), self.als.is_some()]
    }

    /// Bytes the model holds (what the per-backend cache costs).
    pub fn bytes(&self) -> usize {
        let c = &self.cat;
        let strings: usize = c.ids.iter().chain(&c.title).map(|s| s.len() + 24).sum::<usize>() * 2
            + c.facts
                .iter()
                .map(|f| 5 * 24 + f.size.as_ref().map_or(0, String::len) + f.color.as_ref().map_or(0, String::len) + f.brand.as_ref().map_or(0, String::len))
                .sum::<usize>();
        let nb = |n: &Option<Vec<Vec<Neighbor>>>| n.as_ref().map_or(0, |v| v.iter().map(|l| 24 + l.capacity() * std::mem::size_of::<Neighbor>()).sum());
        strings
            + c.len() * 8
            + self.als.as_ref().map_or(0, |a| (a.item.len() + a.yty.len() + a.norm.len()) * 4 + a.learned.len())
            + self.content.as_ref().map_or(0, |(v, _)| v.len() * 4)
            + nb(&self.neighbors)
            + nb(&self.basket)
            + self.popularity.as_ref().map_or(0, |p| p.score.len() * 4 * 32)
            + self.segments.iter().map(|(k, v)| k.len() + 48 + v.capacity() * 8).sum::<usize>()
            + self.als_q.as_ref().map_or(0, QuantRows::bytes)
            + self.content_q.as_ref().map_or(0, QuantRows::bytes)
            + self.als_knn.as_ref().map_or(0, Knn::bytes)
            + self.content_knn.as_ref().map_or(0, Knn::bytes)
    }

    /// The time-aware popularity of every item at `now_ms` into `out`.
    fn popularity_at(&self, now_ms: i64, out: &mut [f32]) {
        if let Some(p) = &self.popularity {
            for (i, o) in out.iter_mut().enumerate() {
                *o = if i < p.score.len() { p.score_at(i, now_ms) } else { 0.0 };
            }
        }
    }
}

/// What an anchor item is to the customer; words for the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Viewed,
    Carted,
    Bought,
    Rated,
    InCart,
}

/// An item the request is anchored on: in the cart, or in the customer's recent events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub item: u32,
    pub weight: f32,
    pub verb: Verb,
}

/// Per-request inputs.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub anchors: &'a [Anchor],
    /// the customer's CF vector: stored, or folded in from recent events
    pub user: Option<&'a [f32]>,
    pub now_ms: i64,
    /// placement multipliers on the blend weights
    pub multipliers: [f32; 4],
    /// per member, how many top items become blend candidates
    pub candidates: usize,
    /// starter pack: categories browsed so far get this bonus on popularity (cold start)
    pub browsed: &'a [u32],
    /// starter pack: the best sellers of the new customer's segment (cold start)
    pub segment: &'a [(u32, f32)],
    /// what explains the folded-in ALS scores (reasons name the history item that contributes
    /// most); without it, the anchor most like the item by cosine
    pub explain: Option<&'a Explainer>,
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
    scratch: Vec<f32>,
}

/// f32 → i32 with the order of `f32::total_cmp`.
#[inline]
fn order_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// The `n` best items by score (ties: lower index first), best first, skipping −∞ and `skip`.
/// A bounded min-heap: one pass, no catalogue-sized allocation.
pub fn top_n(scores: &[f32], n: usize, skip: impl Fn(usize) -> bool) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if n == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Reverse<(i32, Reverse<u32>)>> = BinaryHeap::with_capacity(n + 1);
    let mut floor = i32::MIN;
    let neg_inf = order_key(f32::NEG_INFINITY);
    for (i, &x) in scores.iter().enumerate() {
        let k = order_key(x);
        if k <= neg_inf || (heap.len() == n && k <= floor) || skip(i) {
            continue;
        }
        heap.push(Reverse((k, Reverse(i as u32))));
        if heap.len() > n {
            heap.pop();
        }
        if heap.len() == n {
            floor = heap.peek().map(|r| r.0 .0).unwrap_or(i32::MIN);
        }
    }
    let mut v: Vec<(i32, u32)> = heap.into_iter().map(|Reverse((k, Reverse(i)))| (k, i)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|x| x.1).collect()
}

impl Model {
    /// Time-aware popularity of every item at `now_ms`, computed once per hour of the week and kept.
    pub fn popularity_now(&self, now_ms: i64, out: &mut [f32]) {
        self.with_popularity(now_ms, |p| out.copy_from_slice(&p.score[..out.len()]));
    }

    /// Runs `f` on the popularity of the hour of the week of `now_ms` (computed once per hour and kept).
    pub fn with_popularity<R>(&self, now_ms: i64, f: impl FnOnce(&PopularNow) -> R) -> R {
        use crate::models::popularity::{hour_of, weekday_of};
        let key = (hour_of(now_ms) + 24 * weekday_of(now_ms)) as u32;
        let n = self.cat.len();
        let mut cache = self.popularity_cache.borrow_mut();
        if let Some(p) = cache.as_ref().filter(|p| p.key == key && p.score.len() == n) {
            return f(p);
        }
        {
            let mut score = vec![0f32; n];
            self.popularity_at(now_ms, &mut score);
            let mut order: Vec<u32> = (0..n as u32).filter(|&i| score[i as usize] > 0.0).collect();
            order.sort_by(|&a, &b| score[b as usize].total_cmp(&score[a as usize]).then(a.cmp(&b)));
            let mut by_category = vec![Vec::new(); self.cat.categories.len()];
            for &i in &order {
                if let Some(v) = by_category.get_mut(self.cat.category[i as usize] as usize) {
                    v.push(i);
                }
            }
            f(cache.insert(PopularNow { key, score, order, by_category }))
        }
    }
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
    fn at(&self, i: u32) -> Option<usize> {
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
    pub fn apply_preferences(&mut self, m: &Model, resolved: &Map<String, Value>, penalty: f32, items: &[u32]) {
        for &i in items {
            if let Some(x) = self.at(i).filter(|_| m.cat.facts.get(i as usize).is_some_and(|f| !fits(resolved, f))) {
                self.blended[x] -= penalty;
            }
        }
    }
}

/// Picks up to `k` items from `ranked` (best first, all eligible) with at most `max_per_category`
/// per category (0 = no cap) and one variant per product group. When the caps leave the list
/// short, they are relaxed — first the category cap, then the group rule — so the list is full
/// whenever enough eligible items exist.
pub fn diversify(cat: &Catalogue, ranked: &[u32], k: usize, max_per_category: usize) -> Vec<u32> {
    pick(cat, ranked, k, max_per_category, true)
}

/// [`diversify`]; without `relax`, the first pass only (the caps hold, the list may be short).
fn pick(cat: &Catalogue, ranked: &[u32], k: usize, max_per_category: usize, relax: bool) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(k);
    let mut per_cat: crate::hash::IntMap<u32, usize> = Default::default();
    let mut groups: crate::hash::IntSet<u32> = Default::default();
    for pass in 0..if relax { 3 } else { 1 } {
        for &i in ranked {
            if out.len() >= k {
                return out;
            }
            if out.contains(&i) {
                continue;
            }
            let c = cat.category[i as usize];
            let g = cat.group[i as usize];
            if pass == 0 && max_per_category > 0 && per_cat.get(&c).copied().unwrap_or(0) >= max_per_category {
                continue;
            }
            if pass <= 1 && g != NONE && groups.contains(&g) {
                continue;
            }
            *per_cat.entry(c).or_insert(0) += 1;
            if g != NONE {
                groups.insert(g);
            }
            out.push(i);
        }
    }
    out
}

/// [`diversify`] over the buyable items of a ranking, asking `check` about as few items as it
/// can. The pick is made as if every item not yet checked were buyable, and only the items it
/// picks are checked, with a margin of `k / 4 + 2` for the ones that turn out not to be; those
/// make way for the next in line (often another variant of the same product), checked in the
/// next round. While fewer than `k` buyable items have been found, a round also checks the
/// ranking's next unchecked items in order, as many as the share found buyable so far says it
/// takes (so a catalogue that is 95% out of stock takes a few rounds, not dozens). The ranking
/// comes from `fetch(window, taken)` — the best `window` items not yet `taken`, best first;
/// empty once it runs out — a window at a time, each four times the last; the caps are relaxed
/// only once it has run out. The result is what [`diversify`] picks from all the ranking's
/// buyable items, without checking the variants and over-the-cap items the pick never reaches
/// (a ranking often holds several variants of one product).
pub fn pick_buyable(
    cat: &Catalogue,
    k: usize,
    max_per_category: usize,
    mut fetch: impl FnMut(usize, &[bool]) -> Vec<u32>,
    mut check: impl FnMut(&[u32]) -> Vec<bool>,
) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut taken = vec![false; cat.len()];
    let mut ranked: Vec<u32> = Vec::new();
    // true: buyable; false: not; absent: not checked
    let mut checked: crate::hash::IntMap<u32, bool> = crate::hash::IntMap::default();
    let mut exhausted = false;
    let mut window = 4 * k + 8;
    let target = k + k / 4 + 2;
    // how many unchecked items of the ranking, in order, the next round checks besides the pick
    let mut depth = 0;
    let mut yes = 0;
    loop {
        let live: Vec<u32> = ranked.iter().copied().filter(|i| checked.get(i) != Some(&false)).collect();
        let sim = pick(cat, &live, target, max_per_category, exhausted);
        let head = &sim[..sim.len().min(k)];
        if (head.len() == k || exhausted) && head.iter().all(|i| checked.get(i) == Some(&true)) {
            return head.to_vec();
        }
        let unchecked = || live.iter().copied().filter(|i| !checked.contains_key(i));
        if !exhausted && (sim.len() < target || unchecked().count() < depth) {
            let batch = fetch(window, &taken);
            window = window.saturating_mul(4);
            exhausted = batch.is_empty();
            for &i in &batch {
                if let Some(t) = taken.get_mut(i as usize) {
                    *t = true;
                }
            }
            ranked.extend(batch);
            continue;
        }
        let mut ask: Vec<u32> = sim.iter().copied().filter(|i| !checked.contains_key(i)).collect();
        ask.extend(unchecked().take(depth).filter(|i| !sim.contains(i)));
        let ok = check(&ask);
        for (n, &i) in ask.iter().enumerate() {
            let b = ok.get(n).copied().unwrap_or(false);
            yes += usize::from(b);
            checked.insert(i, b);
        }
        let need = k.saturating_sub(yes);
        if need > 0 {
            let rate = (yes as f64 + 1.0) / (checked.len() as f64 + 2.0);
            depth = depth.max((1.3 * need as f64 / rate).ceil() as usize);
        }
    }
}

/// "morning", "afternoon", "evening" or "night" for a local hour.
pub fn part_of_day(hour: u32) -> &'static str {
    match hour {
        5..=11 => "morning",
        12..=16 => "afternoon",
        17..=21 => "evening",
        _ => "night",
    }
}

/// "popular in <category> this <part of day>" (without a category: "popular this ...").
pub fn popular_reason(category: &str, local_hour: u32) -> String {
    if category.is_empty() {
        format!("popular this {}", part_of_day(local_hour))
    } else {
        format!("popular in {category} this {}", part_of_day(local_hour))
    }
}

/// Words for why item `i` is recommended: from the member that contributes most, and the
/// anchor behind it.
pub fn reason(m: &Model, s: &Scores, req: &Request, i: u32, local_hour: u32) -> String {
    let title = |j: u32| m.cat.title.get(j as usize).map(String::as_str).unwrap_or("");
    let popular = || popular_reason(m.cat.category_name(i), local_hour);
    let because = |a: &Anchor| match a.verb {
        Verb::InCart => format!("goes with {} in your cart", title(a.item)),
        Verb::Viewed => format!("because you viewed {}", title(a.item)),
        Verb::Carted => format!("because you added {} to your cart", title(a.item)),
        Verb::Bought => format!("because you bought {}", title(a.item)),
        Verb::Rated => format!("because you rated {} highly", title(a.item)),
    };
    match s.dominant(i) {
        COOCCURRENCE => match req.anchors.get(s.via_of(i) as usize) {
            Some(a) if a.verb == Verb::InCart || a.verb == Verb::Bought => format!("bought together with {}", title(a.item)),
            Some(a) => format!("often viewed with {}", title(a.item)),
            None => popular(),
        },
        CONTENT => {
            let best = m.content.as_ref().and_then(|(v, d)| {
                let row = |j: u32| &v[j as usize * d..(j as usize + 1) * d];
                req.anchors.iter().max_by(|a, b| dot(row(a.item), row(i)).total_cmp(&dot(row(b.item), row(i))))
            });
            match best {
                Some(a) => format!("similar to {}", title(a.item)),
                None => popular(),
            }
        }
        ALS => {
            let explained = match (&m.als, req.explain) {
                (Some(al), Some(e)) => e.top(al, i).and_then(|j| req.anchors.iter().find(|a| a.item == j)),
                _ => None,
            };
            let best = explained.or_else(|| {
                m.als.as_ref().and_then(|al| {
                    let y = al.vec(i);
                    // the anchor most like the item by cosine: a raw dot product favours anchors with
                    // long vectors (popular items), whatever they are
                    let cos = |a: &Anchor| dot(al.vec(a.item), y) / al.norm[a.item as usize].max(1e-12);
                    req.anchors.iter().filter(|a| al.learned[a.item as usize]).max_by(|a, b| cos(a).total_cmp(&cos(b)))
                })
            });
            match best {
                Some(a) => because(a),
                None => "picked for you from your order history".to_string(),
            }
        }
        _ if !req.browsed.is_empty() && req.browsed.contains(&m.cat.category[i as usize]) => {
            format!("best seller in {} (you are browsing it)", m.cat.category_name(i))
        }
        _ if req.segment.iter().any(|x| x.0 == i) => "best seller with customers like you".to_string(),
        _ => popular(),
    }
}

/// Items that go with `inputs`: their basket neighbours from other categories, strength summed
/// over the inputs. Returns (item, score, the input it goes with best).
pub fn complements(m: &Model, inputs: &[u32], excluded: &[bool]) -> Vec<(u32, f32, u32)> {
    let Some(nb) = m.basket.as_ref().or(m.neighbors.as_ref()) else { return Vec::new() };
    let in_cats: Vec<u32> = inputs.iter().map(|&i| m.cat.category[i as usize]).collect();
    let mut acc: HashMap<u32, (f32, f32, u32)> = HashMap::new();
    for &i in inputs {
        for x in nb.get(i as usize).map(Vec::as_slice).unwrap_or(&[]) {
            let j = x.item;
            if (j as usize) >= m.cat.len() || excluded.get(j as usize).copied().unwrap_or(false) || in_cats.contains(&m.cat.category[j as usize]) {
                continue;
            }
            let e = acc.entry(j).or_insert((0.0, 0.0, i));
            e.0 += x.score;
            if x.score > e.1 {
                e.1 = x.score;
                e.2 = i;
            }
        }
    }
    let mut v: Vec<(u32, f32, u32)> = acc.into_iter().map(|(j, (s, _, via))| (j, s, via)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// How much every item is like item `i`: cosine of ALS factors and of content vectors, averaged
/// over the spaces the model has (`content` overrides the item's stored content vector, for an
/// item the model has not seen). Item `i` and `excluded` items get −∞; empty when no space applies.
/// Rank with [`top_n`].
pub fn similar(m: &Model, i: Option<u32>, content: Option<&[f32]>, excluded: &[bool]) -> Vec<f32> {
    let n = m.cat.len();
    let mut out = vec![0f32; n];
    let mut spaces = 0f32;
    if let (Some(a), Some(i)) = (&m.als, i) {
        if a.learned[i as usize] {
            let mut y = a.vec(i).to_vec();
            normalize(&mut y);
            let mut d = vec![0f32; out.len()];
            score_rows(&y, &a.item, a.factors, m.als_q.as_ref(), &mut d);
            for (j, (o, x)) in out.iter_mut().zip(d).enumerate() {
                if a.learned[j] && a.norm[j] > 0.0 {
                    *o += x / a.norm[j];
                }
            }
            spaces += 1.0;
        }
    }
    if let Some((vecs, d)) = &m.content {
        let q: Option<Vec<f32>> = content.map(<[f32]>::to_vec).or_else(|| i.map(|i| vecs[i as usize * d..(i as usize + 1) * d].to_vec()));
        if let Some(q) = q.filter(|q| q.iter().any(|x| *x != 0.0)) {
            let mut x = vec![0f32; out.len()];
            score_rows(&q, vecs, *d, m.content_q.as_ref(), &mut x);
            out.iter_mut().zip(x).for_each(|(o, x)| *o += x);
            spaces += 1.0;
        }
    }
    if spaces == 0.0 {
        return Vec::new();
    }
    for (j, o) in out.iter_mut().enumerate() {
        *o = if Some(j as u32) == i || excluded.get(j).copied().unwrap_or(false) { f32::NEG_INFINITY } else { *o / spaces };
    }
    out
}

/// The local hour at `now_ms` in the customer's time zone (UTC when unknown or invalid).
pub fn local_hour(now_ms: i64, zone: Option<&str>) -> u32 {
    use chrono::Timelike;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    match zone.and_then(|z| crate::standardize::time::zone(z).ok()) {
        Some(tz) => t.with_timezone(&tz).hour(),
        None => t.hour(),
    }
}

/// What an event says about liking its item in a request's context: training's contribution,
/// halved every `half_life_days`, times `session_boost` for this session's events.
pub fn anchor_weight(kind: &str, value: Option<f64>, weight: f64, age_ms: i64, half_life_days: f64, in_session: bool, session_boost: f64) -> f32 {
    let c = crate::models::dataset::contribution(kind, value, weight);
    let decay = 0.5f64.powf(age_ms.max(0) as f64 / (half_life_days.max(1e-3) * 86_400_000.0));
    (c * decay * if in_session { session_boost } else { 1.0 }) as f32
}

/// The verb for an anchor from the strongest kind of event the customer had with the item.
pub fn verb_of(kind: &str) -> Verb {
    match kind {
        "purchase" => Verb::Bought,
        "cart_add" => Verb::Carted,
        "rating" => Verb::Rated,
        _ => Verb::Viewed,
    }
}

#[cfg(test)]
mod tests;
