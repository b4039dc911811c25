//! Pick and diversity: the first `k` buyable items of a ranking, at most so many per category
//! and one variant per product group, checking as few items against stock as it can.
use super::Catalogue;
use crate::NONE;

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
