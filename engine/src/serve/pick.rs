//! Pick and diversity: the first `k` buyable items of a ranking, spread over categories (a
//! soft per-category penalty, or a hard cap) and one variant per product group, checking as few
//! items against stock as it can.
use super::Catalogue;
use crate::NONE;

/// How a list is spread over categories.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Diversity<'a> {
    /// at most this many items of one category (0 = no cap); relaxed when the list could not
    /// be filled otherwise
    pub cap: usize,
    /// each item of a category already in the list moves the next of that category this many
    /// places down the ranking (0 = none): a decaying per-category penalty that never leaves
    /// the list short
    pub penalty: f32,
    /// (category, at most this many of it) for the categories with a limit of their own
    /// (`reco.category_settings.max_per_list`), beside `cap` and the penalty: the smaller of
    /// the two caps holds; relaxed like `cap`
    pub limits: &'a [(u32, usize)],
}

impl Diversity<'_> {
    pub fn cap(cap: usize) -> Diversity<'static> {
        Diversity { cap, penalty: 0.0, limits: &[] }
    }

    /// The most items of `category` a list holds before the caps are relaxed (0 = no cap).
    pub fn limit(&self, category: u32) -> usize {
        match (self.cap, self.limits.iter().find(|(c, _)| *c == category).map(|&(_, n)| n)) {
            (cap, None) => cap,
            (0, Some(own)) => own,
            (cap, Some(own)) => cap.min(own),
        }
    }
}

/// Picks up to `k` items from `ranked` (best first, all eligible), one variant per product
/// group, spread over categories by `rule`: greedily, the item with the lowest place in the
/// ranking plus `rule.penalty` × the items of its category already picked, under `rule.cap`.
/// When the cap leaves the list short it is relaxed — first the category cap, then the group
/// rule — so the list is full whenever enough eligible items exist.
pub fn diversify(cat: &Catalogue, ranked: &[u32], k: usize, rule: Diversity<'_>) -> Vec<u32> {
    let placed: Vec<(u32, u32)> = ranked.iter().enumerate().map(|(p, &i)| (i, p as u32)).collect();
    diversify_placed(cat, &placed, k, rule)
}

/// [`diversify`] over (item, place in the ranking) pairs, places ascending: a ranking some of
/// whose items are left out (not buyable) without moving the others up.
pub fn diversify_placed(cat: &Catalogue, ranked: &[(u32, u32)], k: usize, rule: Diversity<'_>) -> Vec<u32> {
    pick(cat, ranked, k, rule, true).0
}

/// [`diversify`]; without `relax`, the first pass only (the caps hold, the list may be short).
/// Also returns the penalized place of each item of the first pass (they never go down): an
/// item ranked beyond one could not have been picked before it.
fn pick(cat: &Catalogue, ranked: &[(u32, u32)], k: usize, rule: Diversity<'_>, relax: bool) -> (Vec<u32>, Vec<f32>) {
    let mut out: Vec<u32> = Vec::with_capacity(k);
    let mut per_cat: crate::hash::IntMap<u32, usize> = Default::default();
    let mut groups: crate::hash::IntSet<u32> = Default::default();
    let mut places: Vec<f32> = Vec::with_capacity(k);
    let mut taken = vec![false; ranked.len()];
    let penalty = if rule.penalty.is_finite() { rule.penalty.max(0.0) } else { 0.0 };
    // the first pass: the lowest penalized place, under the cap and the group rule
    while out.len() < k {
        let mut best: Option<(f32, usize)> = None;
        for (p, &(i, place)) in ranked.iter().enumerate() {
            if best.is_some_and(|(v, _)| place as f32 >= v) {
                break;
            }
            if taken[p] {
                continue;
            }
            let c = cat.category[i as usize];
            let g = cat.group[i as usize];
            let n = per_cat.get(&c).copied().unwrap_or(0);
            let cap = if rule.limits.is_empty() { rule.cap } else { rule.limit(c) };
            if (cap > 0 && n >= cap) || (g != NONE && groups.contains(&g)) || out.contains(&i) {
                continue;
            }
            let v = place as f32 + penalty * n as f32;
            if best.is_none_or(|(b, _)| v < b) {
                best = Some((v, p));
            }
        }
        let Some((v, p)) = best else { break };
        let i = ranked[p].0;
        taken[p] = true;
        places.push(v);
        *per_cat.entry(cat.category[i as usize]).or_insert(0) += 1;
        let g = cat.group[i as usize];
        if g != NONE {
            groups.insert(g);
        }
        out.push(i);
    }
    if !relax {
        return (out, places);
    }
    // relaxed: the category cap, then the group rule, in ranking order
    for pass in 1..3 {
        for &(i, _) in ranked {
            if out.len() >= k {
                return (out, places);
            }
            let g = cat.group[i as usize];
            if out.contains(&i) || (pass == 1 && g != NONE && groups.contains(&g)) {
                continue;
            }
            if g != NONE {
                groups.insert(g);
            }
            out.push(i);
        }
    }
    (out, places)
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
/// only once it has run out. The result is what [`diversify_placed`] picks from all the
/// ranking's buyable items at their places in the ranking, without checking the variants and
/// over-the-cap items the pick never reaches (a ranking often holds several variants of one
/// product).
pub fn pick_buyable(
    cat: &Catalogue,
    k: usize,
    rule: Diversity<'_>,
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
        // places in the ranking as fetched: an item that is not buyable moves nothing up
        let placed: Vec<(u32, u32)> = ranked.iter().enumerate().filter(|(_, i)| checked.get(*i) != Some(&false)).map(|(p, &i)| (i, p as u32)).collect();
        let live: Vec<u32> = placed.iter().map(|x| x.0).collect();
        let (sim, places) = pick(cat, &placed, target, rule, exhausted);
        let head = &sim[..sim.len().min(k)];
        // with a penalty, an item not fetched yet (placed after the whole ranking fetched so
        // far) could still come before a pick whose penalized place is beyond it
        let settled = exhausted || places.get(head.len().saturating_sub(1)).is_none_or(|&p| p < ranked.len() as f32);
        if (head.len() == k || exhausted) && settled && head.iter().all(|i| checked.get(i) == Some(&true)) {
            return head.to_vec();
        }
        let unchecked = || live.iter().copied().filter(|i| !checked.contains_key(i));
        if !exhausted && (sim.len() < target || unchecked().count() < depth || !settled) {
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
