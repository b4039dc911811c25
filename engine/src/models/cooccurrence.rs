//! Item-to-item co-occurrence from baskets (orders) or sessions: the "frequently bought
//! together" model. For items i and j over N baskets, with c(i) the baskets holding i and
//! c(i, j) those holding both:
//!
//! | measure | formula |
//! |---|---|
//! | support | c(i, j) |
//! | confidence(i → j) | c(i, j) / c(i) |
//! | lift | c(i, j) · N / (c(i) · c(j)) |
//!
//! Each item keeps its `top_k` neighbours with support ≥ `min_support` and lift > 1, ranked by
//! confidence × ln(lift), which prefers pairs that are both frequent given i and far above chance
//! (raw lift alone favours rare items). Pairs across categories are flagged: the complements a
//! cart needs.
use super::linalg::Exec;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub min_support: u32,
    pub top_k: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { min_support: 2, top_k: 20 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Neighbor {
    pub item: u32,
    pub support: u32,
    pub confidence: f32,
    pub lift: f32,
    pub score: f32,
    pub cross_category: bool,
}

// SAFETY: numbers and a bool (written as 0 or 1), no pointers; images are read by the build that
// wrote them
unsafe impl crate::serve::flat::Plain for Neighbor {}

/// Trains the model. `baskets` hold item indexes below `category.len()` (duplicates within a
/// basket count once); `category[i]` is item i's category. Returns each item's neighbours.
pub fn train(baskets: &[Vec<u32>], category: &[u32], params: Params) -> Vec<Vec<Neighbor>> {
    let n_items = category.len();
    let mut count = vec![0u32; n_items];
    let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
    let mut n = 0u64;
    let mut b: Vec<u32> = Vec::new();
    for basket in baskets {
        b.clear();
        b.extend(basket.iter().copied().filter(|&i| (i as usize) < n_items));
        b.sort_unstable();
        b.dedup();
        if b.is_empty() {
            continue;
        }
        n += 1;
        for &i in &b {
            count[i as usize] += 1;
        }
        // a basket of hundreds of items (a bulk order) would add a quadratic number of pairs
        // that say little about taste: cap it
        let m = b.len().min(50);
        for x in 0..m {
            for y in x + 1..m {
                *pairs.entry((b[x], b[y])).or_insert(0) += 1;
            }
        }
    }
    let mut out: Vec<Vec<Neighbor>> = vec![Vec::new(); n_items];
    for (&(i, j), &c) in &pairs {
        if c < params.min_support {
            continue;
        }
        let lift = (f64::from(c) * n as f64 / (f64::from(count[i as usize]) * f64::from(count[j as usize]))) as f32;
        if lift <= 1.0 {
            continue;
        }
        let cross = category[i as usize] != category[j as usize];
        for (a, z) in [(i, j), (j, i)] {
            let confidence = c as f32 / count[a as usize] as f32;
            out[a as usize].push(Neighbor { item: z, support: c, confidence, lift, score: confidence * lift.ln(), cross_category: cross });
        }
    }
    for list in &mut out {
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.support.cmp(&a.support)).then(a.item.cmp(&b.item)));
        list.truncate(params.top_k);
    }
    out
}

/// How many of a customer's items [`train_histories`] counts (the last ones): a history of
/// thousands of items would add a quadratic number of pairs that say little about taste.
pub const MAX_HISTORY: usize = 200;

/// Item-to-item neighbours over whole histories — customers who liked i also liked j — for
/// catalogues whose signal is not baskets (ratings, one item per order): the cosine of the two
/// items' customer sets, shrunk for pairs few customers share,
/// `c(i, j) / sqrt(c(i) · c(j)) · c(i, j) / (c(i, j) + shrinkage)` (item-kNN with shrinkage,
/// Sarwar et al. 2001; Koren 2008). Each item keeps its `top_k` neighbours with support ≥
/// `min_support`. `histories` hold each customer's liked items, oldest first; one pass per item
/// over its customers' histories (no pair table), in parallel on `exec`'s pool, stopping early
/// when `exec` is cancelled (the result is then unusable, as every cancelled computation).
pub fn train_histories(histories: &[Vec<u32>], category: &[u32], params: Params, shrinkage: f32, exec: Exec) -> Vec<Vec<Neighbor>> {
    use rayon::prelude::*;
    let n_items = category.len();
    let users: Vec<Vec<u32>> = histories
        .iter()
        .map(|h| {
            let mut v: Vec<u32> = h[h.len().saturating_sub(MAX_HISTORY)..].iter().copied().filter(|&i| (i as usize) < n_items).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .filter(|v| v.len() > 1)
        .collect();
    let mut item_users: Vec<Vec<u32>> = vec![Vec::new(); n_items];
    for (u, items) in users.iter().enumerate() {
        for &i in items {
            item_users[i as usize].push(u as u32);
        }
    }
    let n = users.len() as f64;
    exec.run(|| {
        (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n_items], Vec::<u32>::new()),
                |(count, touched), i| {
                    if item_users[i].is_empty() || exec.cancelled() {
                        return Vec::new();
                    }
                    for &u in &item_users[i] {
                        for &j in &users[u as usize] {
                            if j as usize != i {
                                if count[j as usize] == 0 {
                                    touched.push(j);
                                }
                                count[j as usize] += 1;
                            }
                        }
                    }
                    let ci = item_users[i].len() as f32;
                    let mut list: Vec<Neighbor> = touched
                        .iter()
                        .filter(|&&j| count[j as usize] >= params.min_support)
                        .map(|&j| {
                            let (c, cj) = (count[j as usize] as f32, item_users[j as usize].len() as f32);
                            Neighbor {
                                item: j,
                                support: count[j as usize],
                                confidence: c / ci,
                                lift: (f64::from(c) * n / (f64::from(ci) * f64::from(cj))) as f32,
                                score: c / (ci * cj).sqrt() * c / (c + shrinkage.max(0.0)),
                                cross_category: category[i] != category[j as usize],
                            }
                        })
                        .collect();
                    for &j in touched.iter() {
                        count[j as usize] = 0;
                    }
                    touched.clear();
                    list.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.support.cmp(&a.support)).then(a.item.cmp(&b.item)));
                    list.truncate(params.top_k);
                    list
                },
            )
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn hand_computed_measures() {
        // 4 baskets: {0,1}, {0,1}, {0,2}, {3}; items 0,1 in category 0, item 2 in category 1
        let baskets = vec![vec![0, 1], vec![1, 0, 0], vec![0, 2], vec![3]];
        let m = train(&baskets, &[0, 0, 1, 1], Params { min_support: 1, top_k: 10 });
        let n01 = m[0].iter().find(|x| x.item == 1).unwrap();
        assert_eq!(n01.support, 2);
        assert_relative_eq!(n01.confidence, 2.0 / 3.0);
        assert_relative_eq!(n01.lift, 2.0 * 4.0 / (3.0 * 2.0)); // c(0,1) N / (c(0) c(1))
        assert!(!n01.cross_category);
        let n10 = m[1].iter().find(|x| x.item == 0).unwrap();
        assert_relative_eq!(n10.confidence, 1.0);
        let n02 = m[0].iter().find(|x| x.item == 2).unwrap();
        assert!(n02.cross_category);
        assert_relative_eq!(n02.lift, 4.0 / 3.0);
        assert!(m[3].is_empty());
        // min support drops the single co-occurrence
        let m = train(&baskets, &[0, 0, 1, 1], Params { min_support: 2, top_k: 10 });
        assert!(m[0].iter().all(|x| x.item == 1));
    }

    #[test]
    fn pairs_at_or_below_chance_are_not_neighbours() {
        // every basket holds both: lift exactly 1
        let baskets = vec![vec![0, 1]; 5];
        assert!(train(&baskets, &[0, 1], Params::default()).iter().all(Vec::is_empty));
    }

    #[test]
    fn recovers_the_planted_complements_of_the_demo_data() {
        use crate::demo;
        let d = demo::generate(demo::scale("small").unwrap(), 42, 1_735_689_600_000);
        let index: HashMap<&str, u32> = d.items.iter().enumerate().map(|(i, it)| (it.item_id.as_str(), i as u32)).collect();
        let cats: Vec<&str> = demo::CATEGORIES.iter().map(|(c, _)| *c).collect();
        let category: Vec<u32> = d.items.iter().map(|it| cats.iter().position(|c| *c == it.category).unwrap() as u32).collect();
        let baskets: Vec<Vec<u32>> =
            d.orders.iter().map(|o| o["cart"]["items"].as_array().unwrap().iter().map(|l| index[l["sku"].as_str().unwrap()]).collect()).collect();
        let model = train(&baskets, &category, Params { min_support: 1, top_k: 5 });
        // for each planted pair, the share of the first category's cross-category neighbours
        // (top 5) that are in the second category
        for (a, b) in demo::COMPLEMENTS {
            let (ca, cb) = (cats.iter().position(|c| *c == a).unwrap() as u32, cats.iter().position(|c| *c == b).unwrap() as u32);
            let neigh: Vec<&Neighbor> = (0..d.items.len()).filter(|&i| category[i] == ca).flat_map(|i| model[i].iter().filter(|n| n.cross_category)).collect();
            let hits = neigh.iter().filter(|n| category[n.item as usize] == cb).count();
            let recall = hits as f64 / neigh.len().max(1) as f64;
            assert!(neigh.len() >= 20, "{a}: only {} cross-category neighbours", neigh.len());
            assert!(recall > 0.6, "{a} -> {b}: {hits} of {} cross-category neighbours", neigh.len());
        }
    }

    #[test]
    fn history_neighbours_are_shrunk_cosines_of_the_customer_sets() {
        // items 0 and 1 share 3 customers of 3 and 4; item 2 shares 1 with each
        let h = vec![vec![0, 1], vec![0, 1, 2], vec![1, 0], vec![1, 3], vec![2, 3]];
        let m = train_histories(&h, &[0, 0, 1, 1], Params { min_support: 1, top_k: 10 }, 0.0, Exec::default());
        let n01 = m[0].iter().find(|x| x.item == 1).unwrap();
        assert_eq!(n01.support, 3);
        assert_relative_eq!(n01.score, 3.0 / (3.0f32 * 4.0).sqrt());
        assert_eq!(m[0][0].item, 1, "the strongest neighbour first");
        assert!(m[0].iter().any(|x| x.item == 2 && x.cross_category));
        // shrinkage lowers the rare pair more than the common one
        let s = train_histories(&h, &[0, 0, 1, 1], Params { min_support: 1, top_k: 10 }, 10.0, Exec::default());
        let ratio = |m: &Vec<Vec<Neighbor>>, j: u32| m[0].iter().find(|x| x.item == j).unwrap().score;
        assert!(ratio(&s, 1) / ratio(&m, 1) > ratio(&s, 2) / ratio(&m, 2));
        // min support and one-item histories
        let s = train_histories(&h, &[0, 0, 1, 1], Params { min_support: 2, top_k: 10 }, 0.0, Exec::default());
        assert!(s[0].iter().all(|x| x.item == 1));
        assert!(train_histories(&[vec![0]], &[0, 0], Params::default(), 0.0, Exec::default()).iter().all(Vec::is_empty));
    }
}
