//! The serving policy: what `reco.recommend`, `reco.complements`, `reco.similar_items` and
//! `reco.popular` return, read top to bottom. Every rule that decides what a customer sees is
//! here: the anchors and their weights, cold start, fold-in, the placement's multipliers,
//! diversity, preferences, the fallbacks and the reasons. What has to be read live in the
//! caller's snapshot (stock, current categories, back-in-stock, items newer than the model, an
//! index search) is asked of a [`Live`], which the extension implements with SPI and the tests
//! with fixed answers.
use super::context::Context;
use super::pick::Diversity;
use super::request::{anchors, Customer};
use super::{candidates, local_hour, pick_buyable, popular_reason, reason, related, top_n, Knn, Model, Request, Scores, ALS, CONTENT, POPULARITY};
use crate::models::content::ItemFeatures;
use crate::models::linalg::dot;
use crate::prefs::fit::in_your_size;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub use super::inputs::{Live, Placement, Served, Settings, Space, Stats, Tuning, DEFAULT_TUNING};

/// The reason of a fallback list when no model is deployed.
pub const NO_MODEL_REASON: &str = "popular in the last 30 days (no model deployed yet)";

/// Per catalogue item: is it one of `ids`.
fn mask(m: &Model, ids: &[String]) -> Vec<bool> {
    let mut out = vec![false; m.cat.len()];
    for id in ids {
        if let Some(&i) = m.cat.index.get(id) {
            out[i as usize] = true;
        }
    }
    out
}

fn best_sellers_without_model(live: &mut dyn Live, skip: &[String], category: Option<&str>, k: usize, now_ms: i64) -> Vec<Served> {
    live.recent_best_sellers(skip, category, k, now_ms).into_iter().map(|(id, n)| Served::new(id, n, NO_MODEL_REASON)).collect()
}

/// The request's diversity: none within one category, else the context's cap and penalty,
/// else the settings', with the `limits` of categories that have their own ([`limits`]).
pub fn diversity<'a>(ctx: &Context, tuning: &Tuning, limits: &'a [(u32, usize)]) -> Diversity<'a> {
    if ctx.category.is_some() {
        return Diversity::default();
    }
    Diversity { cap: ctx.max_per_category.unwrap_or(tuning.max_per_category), penalty: ctx.diversity_penalty.unwrap_or(tuning.diversity_penalty), limits }
}

/// The model's categories with a limit of their own (`Settings::max_per_list`), by index;
/// names the model does not know are left out.
pub fn limits(m: &Model, settings: &Settings) -> Vec<(u32, usize)> {
    settings.max_per_list.iter().filter(|(_, n)| *n > 0).filter_map(|(name, n)| m.cat.category_index.get(name).map(|&c| (c, *n))).collect()
}

/// Bought items the customer may be offered again only if their category is still repeatable,
/// and the settings that say which categories are.
type Recheck<'a> = Option<(&'a HashSet<u32>, &'a Settings)>;

/// The first `k` buyable items of the ranking `next(window, taken)` gives a window at a time,
/// diversified ([`pick_buyable`]): only the items the pick reaches are checked against stock
/// (and, for the `recheck` items among them, against their current category).
fn collect_diverse(
    live: &mut dyn Live,
    m: &Model,
    k: usize,
    rule: Diversity<'_>,
    recheck: Recheck<'_>,
    next: impl FnMut(usize, &[bool]) -> Vec<u32>,
) -> Vec<u32> {
    let mut next = next;
    collect_diverse_live(live, m, k, rule, recheck, |_, w, taken| next(w, taken))
}

/// [`collect_diverse`] whose ranking may ask the [`Live`] too (the demand weight's stock levels).
fn collect_diverse_live(
    live: &mut dyn Live,
    m: &Model,
    k: usize,
    rule: Diversity<'_>,
    recheck: Recheck<'_>,
    mut next: impl FnMut(&mut dyn Live, usize, &[bool]) -> Vec<u32>,
) -> Vec<u32> {
    // the ranking and the stock check take turns with the one Live
    let live = std::cell::RefCell::new(live);
    pick_buyable(
        &m.cat,
        k,
        rule,
        |w, taken| next(&mut **live.borrow_mut(), w, taken),
        |items| {
            let mut live = live.borrow_mut();
            let ids: Vec<&str> = items.iter().map(|&i| &m.cat.ids[i as usize]).collect();
            let mut out = live.buyable(&ids);
            out.resize(ids.len(), false);
            if let Some((set, settings)) = recheck {
                let ask: Vec<&str> = items.iter().zip(&ids).zip(&out).filter(|((i, _), b)| **b && set.contains(i)).map(|((_, id), _)| *id).collect();
                if !ask.is_empty() {
                    let yes = live.in_categories(&ask, &settings.repeatable);
                    for ((i, id), b) in items.iter().zip(&ids).zip(out.iter_mut()) {
                        *b &= !set.contains(i) || yes.contains(*id);
                    }
                }
            }
            out
        },
    )
}

/// The first `k` buyable items of a fixed order, one variant per product group.
fn walk(live: &mut dyn Live, m: &Model, k: usize, order: &[u32], recheck: Recheck<'_>) -> Vec<u32> {
    let mut pos = 0;
    collect_diverse(live, m, k, Diversity::default(), recheck, |w, _| {
        let v: Vec<u32> = order.iter().skip(pos).take(w).copied().collect();
        pos += v.len();
        v
    })
}

/// Buyable items newer than the model, as rows ("new in <category>").
fn new_items(live: &mut dyn Live, m: &Model, skip: &[String], category: Option<&str>, not_categories: &[String], n: usize) -> Vec<Served> {
    live.new_items(m.items_until_ms, skip, category, not_categories, n)
        .into_iter()
        .map(|(id, cat)| {
            let reason = format!("new in {}", cat.as_deref().unwrap_or("the shop"));
            Served::new(id, 0.0, reason)
        })
        .collect()
}

/// Fills `out` up to `k` with the model's buyable best sellers at `now` (then new items),
/// leaving out `skip`, what `out` holds, `not_categories`, other categories than `category`,
/// and items `keep` refuses.
#[allow(clippy::too_many_arguments)]
fn fill_popular(
    live: &mut dyn Live,
    m: &Model,
    k: usize,
    now: i64,
    skip: &[String],
    category: Option<&str>,
    not_categories: &[String],
    out: &mut Vec<Served>,
    recheck: Recheck<'_>,
    keep: impl Fn(u32) -> bool,
) {
    if out.len() >= k {
        return;
    }
    let mut skip: Vec<String> = skip.to_vec();
    skip.extend(out.iter().map(|x| x.item_id.clone()));
    if m.popularity.is_some() {
        let hour = local_hour(now, None);
        let skipped: HashSet<u32> = skip.iter().filter_map(|id| m.cat.index.get(id).copied()).collect();
        let refused: Vec<u32> = not_categories.iter().filter_map(|cat| m.cat.category_index.get(cat).copied()).collect();
        let ok = |i: u32| !skipped.contains(&i) && !refused.contains(&m.cat.category[i as usize]) && keep(i);
        // walk the hour's ranking kept with the model (the category's, when one is asked for),
        // a window at a time: only what the stock check consumes is looked at
        let wanted = category.map(|cat| m.cat.category_index.get(cat).copied());
        let mut pos = 0;
        let picked = collect_diverse(live, m, k - out.len(), Diversity::default(), recheck, |w, _| {
            m.with_popularity(now, |p| {
                let source: &[u32] = match wanted {
                    Some(Some(cat)) => p.by_category.get(cat as usize).map(Vec::as_slice).unwrap_or(&[]),
                    Some(None) => &[],
                    None => &p.order,
                };
                let mut v = Vec::with_capacity(w);
                while v.len() < w && pos < source.len() {
                    if ok(source[pos]) {
                        v.push(source[pos]);
                    }
                    pos += 1;
                }
                v
            })
        });
        for i in picked {
            let score = m.with_popularity(now, |p| p.score[i as usize]);
            out.push(Served::new(m.cat.ids[i as usize].to_string(), f64::from(score), popular_reason(m.cat.category_name(i), hour)));
            skip.push(m.cat.ids[i as usize].to_string());
        }
    }
    if out.len() < k {
        let more = new_items(live, m, &skip, category, not_categories, k - out.len());
        out.extend(more);
    }
}

/// Scores a request: densely for small catalogues (and a category filter, which leaves most
/// candidates out), else only the members' candidates — ALS and content ones from the anchors'
/// nearest-item lists or the model's HNSW indexes from `Tuning::hnsw_min_items` on.
#[allow(clippy::too_many_arguments)]
fn score(live: &mut dyn Live, m: &Model, req: &Request, excluded: &[bool], dense: bool, tuning: &Tuning, scores: &mut Scores, stats: &mut Stats) {
    let hnsw = tuning.index_backed(m.cat.len());
    if dense || (m.cat.len() <= super::RESCORE && !hnsw) {
        scores.compute_into(m, req, excluded);
        stats.dense += 1;
        return;
    }
    let given = if hnsw {
        let (profile, w) = Scores::plan(m, req);
        let limit = tuning.ef_search;
        let use_knn = tuning.item_knn && !req.anchors.is_empty();
        let anchors: Vec<u32> = req.anchors.iter().map(|a| a.item).collect();
        let keep = |i: u32| !excluded[i as usize];
        // the anchors' lists, else (no lists, or anchors the model has none for: items newer
        // than the model) an index search
        let mut find = |space: Space, knn: Option<&Knn>, q: &[f32], score: &dyn Fn(u32) -> f32, dims: usize| {
            if let Some(k) = knn.filter(|_| use_knn) {
                let v = candidates::knn_nearest(k, &anchors, score, limit, keep);
                if !v.is_empty() {
                    stats.knn_lists += 1;
                    return Some(v);
                }
            }
            if q.len() != dims || limit == 0 {
                return None;
            }
            let v = live.nearest(m, space, q, limit);
            stats.hnsw_searches += u64::from(v.is_some());
            v
        };
        candidates::Given {
            als: match (&m.als, req.user) {
                (Some(a), Some(u)) if w[ALS] > 0.0 => find(Space::Als, m.als_knn.as_ref(), u, &|i| dot(u, a.vec(i)), a.factors),
                _ => None,
            },
            content: match (&m.content, &profile) {
                (Some((vecs, d)), Some(p)) if w[CONTENT] > 0.0 => {
                    find(Space::Content, m.content_knn.as_ref(), p, &|i| dot(p, &vecs[i as usize * d..(i as usize + 1) * d]), *d)
                }
                _ => None,
            },
        }
    } else {
        candidates::Given::default()
    };
    scores.compute_candidates(m, req, excluded, &given);
    stats.candidates += 1;
}

/// One `reco.recommend` request: who asks, what for, and the settings it is served under.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub customer_id: Option<&'a str>,
    pub k: usize,
    pub ctx: &'a Context,
    /// the request's now (the context's `now`, else the transaction's start), epoch ms
    pub now_ms: i64,
    pub placement: Placement,
    pub settings: &'a Settings,
    pub tuning: &'a Tuning,
}

/// `reco.recommend`: `k` buyable items for the customer, best first, each with a reason.
///
/// 1. Never offered: the cart, the context's exclusions, items returned or bought outside a
///    repeatable category, other categories than the context's `category`.
/// 2. Anchors: the cart and the recent history ([`anchors`]).
/// 3. Cold start: a customer with no learned vector, nothing older than a day and an empty cart
///    gets popularity ×4, the categories browsed so far and the segment's best sellers first.
/// 4. The customer's ALS vector: the stored one while nothing happened since training, else
///    folded in from the anchors (with what explains its scores).
/// 5. Blend and pick: the members' scores blended with the model's weights times the
///    placement's, diversified (a per-category penalty or cap, one variant per product group),
///    items that do not fit the customer's preferences lowered, only buyable items taken.
/// 6. Placements that sell add-ons (`complements_first`: checkout, cart, post_purchase) with a
///    cart: other categories than the cart's first, the cart's own categories only to fill.
///    With `alternatives` (the cart page), those of the cart's own categories are offered as
///    alternatives to the cart item of their category, and say so. With `seen_last` (the
///    default), items the customer viewed or carted and does not own come after everything new
///    to them, only to fill.
/// 7. Reasons; then, when the model's catalogue runs out, items newer than the model.
pub fn recommend(m: Option<&Model>, ask: &Ask, cust: &Customer, live: &mut dyn Live, scores: &mut Scores, stats: &mut Stats) -> Vec<Served> {
    let (ctx, k, now, tuning) = (ask.ctx, ask.k, ask.now_ms, ask.tuning);
    let local_hour = local_hour(now, cust.profile.timezone.as_deref());
    let mut skip: Vec<String> = ctx.cart.iter().chain(&ctx.exclude).cloned().chain(cust.never_again()).collect();
    let Some(m) = m else {
        return best_sellers_without_model(live, &skip, ctx.category.as_deref(), k, now);
    };
    let mut excluded = mask(m, &skip);
    if let Some(cat) = &ctx.category {
        let wanted = m.cat.category_index.get(cat).copied();
        for (x, c) in excluded.iter_mut().zip(&m.cat.category) {
            *x |= Some(*c) != wanted;
        }
    }
    let anchors = anchors(m, cust, &ctx.cart, now, ask.placement.session_boost, tuning.history_half_life_days, &ask.settings.weights);
    // a new customer with nothing in the cart: we know nothing of them yet (a cart is what
    // they are buying, not a category they browse)
    let cold = cust.is_new(now) && ctx.cart.is_empty();
    // anything since the model's training data ends (or a cart) makes the stored vector stale
    let newer = cust.history.iter().any(|p| p.at_ms > m.data_to_ms) || !ctx.cart.is_empty();
    let history: Vec<(u32, f32)> = anchors.iter().map(|x| (x.item, x.weight)).collect();
    let stored = cust.profile.stored.as_ref();
    let mut explainer = None;
    let user = match (&m.als, stored) {
        (Some(a), Some(v)) if !newer && v.len() == a.factors => Some(v.clone()),
        (Some(a), _) => match a.fold_in_explained(&history) {
            Some((x, e)) => {
                explainer = Some(e);
                Some(x)
            }
            None => stored.filter(|v| v.len() == a.factors).cloned(),
        },
        _ => None,
    };
    // (cold means an empty cart: every anchor is something they browsed)
    let browsed: Vec<u32> = if cold {
        let mut b: Vec<u32> = anchors.iter().map(|a| m.cat.category[a.item as usize]).collect();
        b.sort_unstable();
        b.dedup();
        b
    } else {
        Vec::new()
    };
    let mut multipliers = ask.placement.multipliers;
    if cold {
        multipliers[POPULARITY] *= 4.0;
    }
    let req = Request {
        anchors: &anchors,
        user: user.as_deref(),
        now_ms: now,
        multipliers,
        candidates: tuning.candidates.max(1),
        browsed: &browsed,
        segment: match (&cust.profile.segment, cold) {
            (Some(seg), true) => m.segments.get(seg).unwrap_or(&[]),
            _ => &[],
        },
        explain: explainer.as_ref(),
    };
    let resolved = match ask.customer_id {
        Some(id) if tuning.preference_penalty > 0.0 || tuning.back_in_stock_days > 0.0 => live.preferences(id),
        _ => Map::new(),
    };
    let pass = Pass { ask, cust, req: &req, history: &history, resolved: &resolved, local_hour };
    // placements that sell add-ons (checkout, cart, after the order): what goes with the cart
    // (other categories) first; more of the cart's own categories only if those run out
    let cart_categories: Vec<u32> = ctx.cart.iter().filter_map(|id| m.cat.index.get(id)).map(|&i| m.cat.category[i as usize]).collect();
    let complements_first = ask.placement.complements_first && !cart_categories.is_empty() && ctx.category.is_none();
    // what the customer viewed, clicked or carted and does not own comes after everything new
    // to them
    let seen: Vec<u32> = if ctx.seen_last.unwrap_or(tuning.seen_last) { seen_items(m, cust) } else { Vec::new() };
    // the passes, strictest first, each only when the ones before left the list short: (other
    // categories than the cart's only, nothing seen)
    let mut out: Vec<Served> = Vec::new();
    for (cf, sl) in [(true, true), (true, false), (false, true), (false, false)] {
        if out.len() >= k || (cf && !complements_first) || (sl && seen.is_empty()) {
            continue;
        }
        let mut tier = excluded.clone();
        if cf {
            for (x, c) in tier.iter_mut().zip(&m.cat.category) {
                *x |= cart_categories.contains(c);
            }
        }
        let listed = out.iter().filter_map(|s| m.cat.index.get(&s.item_id).copied());
        for i in listed.chain(if sl { seen.iter().copied() } else { [].iter().copied() }) {
            tier[i as usize] = true;
        }
        let mut more = pass.run(live, m, &tier, k - out.len(), scores, stats);
        if ask.placement.alternatives && !cf {
            alternatives(m, &ctx.cart, &mut more);
        }
        out.extend(more);
    }
    if out.len() < k {
        // every item the model knows has been ranked: what is left is new
        skip.extend(out.iter().map(|p| p.item_id.clone()));
        let more = new_items(live, m, &skip, ctx.category.as_deref(), &[], k - out.len());
        out.extend(more);
    }
    out
}

/// Says of each item of a cart item's own category that it is an alternative to that cart item
/// (the first in the cart of that category).
fn alternatives(m: &Model, cart: &[String], list: &mut [Served]) {
    for s in list {
        let Some(&i) = m.cat.index.get(&s.item_id) else { continue };
        let same = cart.iter().filter_map(|id| m.cat.index.get(id).copied()).find(|&c| m.cat.category[c as usize] == m.cat.category[i as usize]);
        if let Some(c) = same {
            s.reason = format!("an alternative to {} in your cart", &m.cat.title[c as usize]);
        }
    }
}

/// The items the customer viewed, clicked or carted (in their history or this session) and
/// does not own. What they own is never offered again, or, in a repeatable category, offered as
/// anything else is.
fn seen_items(m: &Model, cust: &Customer) -> Vec<u32> {
    let mut out: Vec<u32> = cust.history.iter().filter(|p| !cust.bought.contains_key(&p.item)).filter_map(|p| m.cat.index.get(&p.item).copied()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One ranking of a `recommend` request: score, pick, explain.
struct Pass<'a> {
    ask: &'a Ask<'a>,
    cust: &'a Customer,
    req: &'a Request<'a>,
    /// the anchors as (item, weight), for the late explanation of a stored vector
    history: &'a [(u32, f32)],
    resolved: &'a Map<String, Value>,
    local_hour: u32,
}

impl Pass<'_> {
    /// The first `k` buyable items by the blend over the items `excluded` leaves, diversified,
    /// with the preference penalty, each with its reason.
    fn run(&self, live: &mut dyn Live, m: &Model, excluded: &[bool], k: usize, scores: &mut Scores, stats: &mut Stats) -> Vec<Served> {
        let (ctx, tuning, req) = (self.ask.ctx, self.ask.tuning, self.req);
        score(live, m, req, excluded, ctx.category.is_some(), tuning, scores, stats);
        let (resolved, penalty) = (self.resolved, tuning.preference_penalty);
        let chosen = {
            let scores = &mut *scores;
            let widened = &mut stats.widened;
            let demand = m.demand.as_ref().filter(|_| self.ask.placement.demand > 0.0 && self.ask.placement.demand.is_finite());
            let limits = limits(m, self.ask.settings);
            collect_diverse_live(live, m, k, diversity(ctx, tuning, &limits), Some((&self.cust.recheck, self.ask.settings)), |live, w, taken| {
                let mut v = scores.next(w, taken);
                if v.is_empty() && scores.sparse {
                    // the candidates ran out of buyable items: rank the whole catalogue
                    scores.compute_into(m, req, excluded);
                    *widened += 1;
                    v = scores.next(w, taken);
                }
                let prefer = !resolved.is_empty() && penalty > 0.0;
                if prefer {
                    scores.apply_preferences(m, resolved, penalty, &v);
                }
                // demand-aware ranking: the window's stock levels, read once per window
                if let Some(d) = demand.filter(|_| !v.is_empty()) {
                    let ids: Vec<&str> = v.iter().map(|&i| &m.cat.ids[i as usize]).collect();
                    let available = live.available(&ids);
                    scores.apply_demand(d, self.ask.placement.demand, req.now_ms, tuning.demand_lead_days, &v, &available);
                }
                if prefer || demand.is_some() {
                    v.sort_by(|a, b| scores.score(*b).total_cmp(&scores.score(*a)).then(a.cmp(b)));
                }
                v
            })
        };
        let back = back_in_stock_in_size(live, m, resolved, &chosen, req.now_ms, tuning.back_in_stock_days);
        // reasons for ALS picks name the history item with the largest share of the score; a
        // stored (not folded-in) vector gets its explanation only when an ALS pick needs one
        let late = match &m.als {
            Some(a) if req.explain.is_none() && chosen.iter().any(|&i| scores.dominant(i) == ALS) => a.fold_in_explained(self.history).map(|x| x.1),
            _ => None,
        };
        let req = Request { explain: req.explain.or(late.as_ref()), ..req.clone() };
        chosen
            .iter()
            .map(|&i| {
                let why = if back.contains(&i) { "back in stock in your size".to_string() } else { reason(m, scores, &req, i, self.local_hour) };
                Served::new(m.cat.ids[i as usize].to_string(), f64::from(scores.score(i)), why)
            })
            .collect()
    }
}

/// Which of `items` are in the customer's resolved size and came back in stock within `days`.
fn back_in_stock_in_size(live: &mut dyn Live, m: &Model, resolved: &Map<String, Value>, items: &[u32], now_ms: i64, days: f64) -> HashSet<u32> {
    let sized: Vec<&str> =
        items.iter().filter(|&&i| m.cat.facts.get(i as usize).is_some_and(|f| in_your_size(resolved, &f))).map(|&i| &m.cat.ids[i as usize]).collect();
    if days <= 0.0 || sized.is_empty() {
        return HashSet::new();
    }
    live.back_in_stock(&sized, now_ms - (days * 86_400_000.0) as i64, now_ms).into_iter().filter_map(|id| m.cat.index.get(&id).copied()).collect()
}

/// How much the customer's ALS affinity counts beside bought-together strength in
/// personalized complements (both normalized to 0..1).
pub const COMPLEMENT_AFFINITY: f32 = 0.3;

/// `reco.complements`: items from other categories that go with `inputs` (a cart, an order):
/// bought-together strength summed over the inputs, blended with the customer's ALS affinity
/// when a customer is given, then best sellers of other categories, then new items. Never the
/// inputs, nor what the customer may not be offered again.
#[allow(clippy::too_many_arguments)]
pub fn complements(
    m: Option<&Model>,
    inputs: &[String],
    k: usize,
    customer_id: Option<&str>,
    cust: &Customer,
    settings: &Settings,
    tuning: &Tuning,
    now_ms: i64,
    live: &mut dyn Live,
) -> Vec<Served> {
    let skip: Vec<String> = inputs.iter().cloned().chain(cust.never_again()).collect();
    let Some(m) = m else {
        return best_sellers_without_model(live, &skip, None, k, now_ms);
    };
    let excluded = mask(m, &skip);
    let idx: Vec<u32> = inputs.iter().filter_map(|id| m.cat.index.get(id).copied()).collect();
    let mut list = related::bought_together(m, &idx, &excluded);
    if let (Some(a), Some(_)) = (&m.als, customer_id) {
        let anchors = anchors(m, cust, inputs, now_ms, 1.0, tuning.history_half_life_days, &settings.weights);
        let user =
            cust.profile.stored.clone().filter(|v| v.len() == a.factors).or_else(|| a.fold_in(&anchors.iter().map(|x| (x.item, x.weight)).collect::<Vec<_>>()));
        if let Some(u) = user {
            let top = list.iter().map(|x| x.1).fold(0f32, f32::max).max(1e-6);
            let cf: Vec<f32> = list.iter().map(|x| dot(&u, a.vec(x.0))).collect();
            let (lo, hi) = cf.iter().fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            for (x, s) in list.iter_mut().zip(cf) {
                x.1 = x.1 / top + COMPLEMENT_AFFINITY * (s - lo) / span;
            }
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
    }
    let order: Vec<u32> = list.iter().map(|x| x.0).collect();
    let by_item: HashMap<u32, (f32, u32)> = list.iter().map(|x| (x.0, (x.1, x.2))).collect();
    let ranked = walk(live, m, k, &order, Some((&cust.recheck, settings)));
    let mut out: Vec<Served> = ranked
        .iter()
        .map(|&j| {
            let (s, via) = by_item.get(&j).copied().unwrap_or((0.0, j));
            Served::new(m.cat.ids[j as usize].to_string(), f64::from(s), format!("bought together with {}", &m.cat.title[via as usize]))
        })
        .collect();
    let in_cats: Vec<String> = idx.iter().map(|&i| m.cat.category_name(i).to_string()).collect();
    fill_popular(live, m, k, now_ms, &skip, None, &in_cats, &mut out, Some((&cust.recheck, settings)), |_| true);
    out
}

/// The item `reco.similar_items` is asked about, as the caller read it.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub item_id: &'a str,
    /// its attributes now
    pub features: &'a ItemFeatures,
    /// whether it belongs to a product group (its variants are left out)
    pub has_group: bool,
}

/// `reco.similar_items`: the items most like `item` (ALS and content cosine, averaged), its
/// own variants left out; then best sellers, then new items. An item the model has no content
/// vector for (created after the training) is compared by its attributes now.
pub fn similar_items(m: Option<&Model>, item: &Subject, k: usize, now_ms: i64, live: &mut dyn Live) -> Vec<Served> {
    let Some(m) = m else {
        return best_sellers_without_model(live, &[item.item_id.to_string()], item.features.category.as_deref(), k, now_ms);
    };
    let title = item.features.title.as_deref().unwrap_or(item.item_id);
    let known = m.cat.index.get(item.item_id).copied();
    let stored = |i: u32| m.content.as_ref().is_some_and(|(v, d)| v[i as usize * d..(i as usize + 1) * d].iter().any(|x| *x != 0.0));
    let own: Option<Vec<f32>> = match (known, &m.content) {
        (Some(i), _) if stored(i) => None,
        (_, Some((_, d))) => Some(crate::models::content::vector(item.features, *d)),
        _ => None,
    };
    // its own variants are the same product
    let own_group = known.map(|i| m.cat.group[i as usize]).filter(|g| *g != crate::NONE && item.has_group);
    let excluded: Vec<bool> = m.cat.group.iter().map(|g| Some(*g) == own_group).collect();
    let sim = related::likeness(m, known, own.as_deref(), &excluded);
    let ranked = collect_diverse(live, m, k, Diversity::default(), None, |w, taken| top_n(&sim, w, |i| taken[i]));
    let mut out: Vec<Served> =
        ranked.iter().map(|&j| Served::new(m.cat.ids[j as usize].to_string(), f64::from(sim[j as usize]), format!("similar to {title}"))).collect();
    fill_popular(live, m, k, now_ms, &[item.item_id.to_string()], None, &[], &mut out, None, |i| Some(m.cat.group[i as usize]) != own_group);
    out
}

/// `reco.popular`: the model's best sellers at `now` (its decayed popularity weighted toward the
/// hour and weekday), only buyable items, optionally one category, leaving out the context's
/// cart and exclusions; then new items. Without a model with popularity: recent best sellers.
pub fn popular(m: Option<&Model>, ctx: &Context, k: usize, now_ms: i64, live: &mut dyn Live) -> Vec<Served> {
    let skip: Vec<String> = ctx.exclude.iter().chain(&ctx.cart).cloned().collect();
    let Some(m) = m.filter(|m| m.popularity.is_some()) else {
        return best_sellers_without_model(live, &skip, ctx.category.as_deref(), k, now_ms);
    };
    let mut out = Vec::new();
    fill_popular(live, m, k, now_ms, &skip, ctx.category.as_deref(), &[], &mut out, None, |_| true);
    out
}
