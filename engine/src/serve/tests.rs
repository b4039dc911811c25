use super::*;
use crate::models::als::{self, Csr};
use crate::models::cooccurrence::Neighbor;
use crate::models::linalg::Exec;
use crate::models::linalg::{dot, normalize};
use crate::models::popularity::Popularity;
use crate::prefs::fit::ItemFacts;
use approx::assert_relative_eq;
use blend::rescore_threshold;
use std::collections::HashMap;

fn catalogue(cats: &[&str], groups: &[Option<&str>]) -> Catalogue {
    let mut c = Catalogue::default();
    let mut g = HashMap::new();
    for (i, cat) in cats.iter().enumerate() {
        c.push(format!("i{i}"), Some(format!("Item {i}")), Some(cat), groups.get(i).copied().flatten(), ItemFacts::default(), &mut g);
    }
    c
}

fn nb(item: u32, score: f32) -> Neighbor {
    Neighbor { item, support: 5, confidence: 0.5, lift: 2.0, score, cross_category: true }
}

fn request<'a>(anchors: &'a [Anchor], user: Option<&'a [f32]>) -> Request<'a> {
    Request { anchors, user, now_ms: 1_735_689_600_000, multipliers: [1.0; 4], candidates: 100, browsed: &[], segment: &[], explain: None }
}

#[test]
fn fold_in_reproduces_the_trained_customer_vector() {
    // two tastes over 12 items; customer rows drawn from one side
    let mut t = Vec::new();
    for u in 0..60u32 {
        let base = if u % 2 == 0 { 0 } else { 6 };
        for j in 0..4 {
            t.push((u, base + (u + j) % 6, 1.0 + (j % 2) as f32));
        }
    }
    let m = Csr::from_triplets(60, 12, t.clone());
    let p = als::Params { factors: 4, iterations: 25, cg_steps: 4, regularization: 0.05, alpha: 2.0, ..Default::default() };
    let model = als::train(&m, &p, Exec::default(), |_| Ok::<(), ()>(())).unwrap();
    let a = Als::new(4, model.item.clone(), vec![true; 12], 0.05, 2.0);
    let (items, weights) = m.row(7);
    let hist: Vec<(u32, f32)> = items.iter().copied().zip(weights.iter().copied()).collect();
    let x = a.fold_in(&hist).unwrap();
    let trained = model.user_vec(7);
    let cos = dot(&x, trained) / (dot(&x, &x).sqrt() * dot(trained, trained).sqrt());
    assert!(cos > 0.99, "fold-in vs trained vector: cosine {cos}");
    // and it ranks the customer's side of the catalogue first
    let scores: Vec<f32> = (0..12).map(|i| dot(&x, a.vec(i))).collect();
    let best = (0..12).max_by(|&i, &j| scores[i].total_cmp(&scores[j])).unwrap();
    assert!(best >= 6, "customer 7 is on the 6..12 side, best item {best}");
    assert_eq!(a.fold_in(&[(3, -1.0)]), None, "nothing positive: no vector");
    // the explanation: each history item's share of a score, summing to the score exactly
    let (x2, why) = a.fold_in_explained(&hist).unwrap();
    assert_eq!(x2, x);
    for i in 0..12u32 {
        let shares = why.shares(&a, i);
        assert_eq!(shares.len(), hist.iter().filter(|h| h.1 > 0.0).count());
        assert_relative_eq!(shares.iter().map(|s| s.1).sum::<f64>(), f64::from(dot(&x, a.vec(i))), epsilon = 1e-3, max_relative = 1e-3);
        let top = shares.iter().max_by(|p, q| p.1.total_cmp(&q.1)).unwrap();
        assert_eq!(why.top(&a, i, |_| true), Some(top.0).filter(|_| top.1 > 0.0));
    }
    let unlearned = Als::new(4, model.item, vec![false; 12], 0.05, 2.0);
    assert_eq!(unlearned.fold_in(&hist), None, "items without a learned vector are skipped");
}

#[test]
fn blend_follows_the_weights_and_exclusions() {
    let cat = catalogue(&["a", "a", "b", "b"], &[]);
    let pop = Popularity { score: vec![1.0, 4.0, 3.0, 2.0].into(), by_hour: vec![[0.0; 24]; 4].into(), by_weekday: vec![[0.0; 7]; 4].into() };
    let neighbors = vec![vec![nb(3, 1.0)], vec![], vec![], vec![]];
    let m = Model {
        cat,
        popularity: Some(pop),
        basket: Some(neighbors.clone().into()),
        neighbors: Some(neighbors.into()),
        weights: [0.4, 0.6, 0.0, 0.0],
        ..Default::default()
    };
    let anchors = [Anchor { item: 0, weight: 4.0, verb: Verb::InCart }];
    let mut excluded = vec![false; 4];
    excluded[0] = true;
    let s = Scores::compute(&m, &request(&anchors, None), &excluded);
    let order = s.next(10, &[]);
    assert_eq!(order[0], 3, "co-occurrence with the cart wins: {:?}", s.blended);
    assert!(!order.contains(&0), "excluded items never rank");
    assert_eq!(s.dominant(3), COOCCURRENCE);
    assert_eq!(reason(&m, &s, &request(&anchors, None), 3, 20), "bought together with Item 0");
    assert_eq!(s.dominant(1), POPULARITY);
    assert_eq!(reason(&m, &s, &request(&anchors, None), 1, 20), "popular in a this evening");
    // no anchors: co-occurrence has no input and drops out, popularity alone orders
    let s = Scores::compute(&m, &request(&[], None), &[false; 4]);
    assert_eq!(s.next(10, &[]), vec![1, 2, 3, 0]);
    let mut taken = vec![false; 4];
    taken[1] = true;
    assert_eq!(s.next(2, &taken), vec![2, 3], "next() skips what was already taken");
}

#[test]
fn an_als_only_model_serves_a_new_customer_by_what_has_input() {
    let cat = catalogue(&["a", "b"], &[]);
    let a = Als::new(2, vec![1.0, 0.0, 0.0, 1.0], vec![true, true], 0.1, 1.0);
    let m = Model { cat, als: Some(a), weights: [0.0, 0.0, 0.0, 1.0], ..Default::default() };
    let s = Scores::compute(&m, &request(&[], None), &[false, false]);
    assert!(s.w.iter().all(|w| *w == 0.0), "no input at all: nothing to blend");
    let u = [0.0, 2.0];
    let s = Scores::compute(&m, &request(&[], Some(&u)), &[false, false]);
    assert_eq!(s.next(2, &[]), vec![1, 0]);
    assert_eq!(reason(&m, &s, &request(&[], Some(&u)), 1, 9), "picked for you from your order history");
    let anchors = [Anchor { item: 1, weight: 1.0, verb: Verb::Viewed }];
    assert_eq!(reason(&m, &s, &request(&anchors, Some(&u)), 1, 9), "because you viewed Item 1");
}

#[test]
fn diversify_caps_categories_and_variants_then_relaxes_to_fill() {
    let cat = catalogue(&["a", "a", "a", "b", "a"], &[Some("g1"), Some("g1"), None, None, None]);
    // ranked: 0 (g1), 1 (g1, same product), 2 (a), 4 (a), 3 (b)
    let ranked = [0, 1, 2, 4, 3];
    assert_eq!(diversify(&cat, &ranked, 3, Diversity::cap(2)), vec![0, 2, 3], "one variant of g1, at most 2 of category a");
    assert_eq!(diversify(&cat, &ranked, 5, Diversity::cap(2)), vec![0, 2, 3, 4, 1], "relaxed: the category cap, then the variant rule");
    assert_eq!(diversify(&cat, &ranked, 10, Diversity::cap(0)).len(), 5, "never more than were given");
    assert_eq!(diversify(&cat, &ranked, 4, Diversity::cap(0)), vec![0, 2, 4, 3], "no category cap, still one variant first");
}

#[test]
fn the_penalty_moves_a_category_down_per_item_of_it_already_listed() {
    // categories by rank: a a a a b b c
    let cat = catalogue(&["a", "a", "a", "a", "b", "b", "c"], &[None; 7]);
    let ranked = [0, 1, 2, 3, 4, 5, 6];
    let soft = |penalty: f32, k: usize| diversify(&cat, &ranked, k, Diversity { cap: 0, penalty, limits: &[] });
    assert_eq!(soft(0.0, 7), ranked.to_vec(), "no penalty: the ranking");
    // penalty 2: places a0 0, a1 1+2, b4 4, a2 2+4, b5 5+2, c6 6, a3 3+6
    assert_eq!(soft(2.0, 7), vec![0, 1, 4, 2, 6, 5, 3]);
    // a big penalty takes one of each category first, then the second of each, in rank order
    assert_eq!(soft(100.0, 7), vec![0, 4, 6, 1, 5, 2, 3]);
    assert_eq!(soft(2.0, 3), vec![0, 1, 4], "a short list is the head of the long one");
    // never short: a penalty is not a cap
    let one = catalogue(&["a", "a", "a"], &[None; 3]);
    assert_eq!(diversify(&one, &[2, 0, 1], 3, Diversity { cap: 0, penalty: 50.0, limits: &[] }), vec![2, 0, 1]);
    // with a cap too: the cap holds first, then relaxes to fill
    assert_eq!(diversify(&cat, &ranked, 7, Diversity { cap: 1, penalty: 2.0, limits: &[] }), vec![0, 4, 6, 1, 2, 3, 5]);
}

#[test]
fn a_category_limit_caps_its_category_beside_the_rule_and_gives_way_only_to_fill() {
    // categories by rank: a a a b b c (a is category 0, b 1, c 2)
    let cat = catalogue(&["a", "a", "a", "b", "b", "c"], &[None; 6]);
    let ranked = [0, 1, 2, 3, 4, 5];
    let a_once = [(0u32, 1usize)];
    let rule = |cap: usize, penalty: f32| Diversity { cap, penalty, limits: &a_once };
    assert_eq!(rule(0, 0.0).limit(0), 1);
    assert_eq!((rule(0, 0.0).limit(1), rule(3, 0.0).limit(1), rule(3, 0.0).limit(0)), (0, 3, 1), "the smaller cap holds");
    // no rule of the request's own: only a's limit
    assert_eq!(diversify(&cat, &ranked, 4, rule(0, 0.0)), vec![0, 3, 4, 5]);
    // with the soft penalty (the default rule): the penalty orders, the limit caps
    assert_eq!(diversify(&cat, &ranked, 4, rule(0, 2.0)), vec![0, 3, 5, 4]);
    // with a cap of the request's: both hold
    assert_eq!(diversify(&cat, &ranked, 3, rule(1, 0.0)), vec![0, 3, 5]);
    // never short: the limit gives way in ranking order when nothing else is left
    assert_eq!(diversify(&cat, &ranked, 6, rule(0, 0.0)), vec![0, 3, 4, 5, 1, 2]);
    // a limit of a category the ranking does not hold changes nothing
    let other = [(7u32, 1usize)];
    assert_eq!(diversify(&cat, &ranked, 4, Diversity { cap: 0, penalty: 0.0, limits: &other }), vec![0, 1, 2, 3]);
}

/// Runs `pick_buyable` over a fixed ranking; returns the pick, the items checked, the rounds.
fn pick_over(cat: &Catalogue, ranking: &[u32], buyable: &[bool], k: usize, rule: Diversity<'_>) -> (Vec<u32>, Vec<u32>, usize) {
    let mut pos = 0;
    let mut asked = Vec::new();
    let mut rounds = 0;
    let out = pick_buyable(
        cat,
        k,
        rule,
        |w, taken| {
            let v: Vec<u32> = ranking[pos..].iter().take(w).copied().collect();
            pos += v.len();
            assert!(v.iter().all(|&i| !taken[i as usize]), "a window never repeats an item");
            v
        },
        |items| {
            rounds += 1;
            assert!(items.iter().all(|i| !asked.contains(i)), "an item is checked once");
            asked.extend_from_slice(items);
            items.iter().map(|&i| buyable[i as usize]).collect()
        },
    );
    (out, asked, rounds)
}

#[test]
fn the_buyable_pick_is_the_diversified_pick_of_the_buyable_items_and_checks_few() {
    // variants: groups of 1..4 items; 12 categories; random buyability at several rates
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for case in 0..300 {
        let n = 20 + rnd(400) as usize;
        let cats: Vec<String> = (0..n).map(|_| format!("c{}", rnd(12))).collect();
        let mut groups: Vec<Option<String>> = Vec::new();
        while groups.len() < n {
            let g = groups.len();
            for _ in 0..1 + rnd(4) {
                groups.push(if rnd(5) == 0 { None } else { Some(format!("g{g}")) });
            }
        }
        groups.truncate(n);
        let cat_refs: Vec<&str> = cats.iter().map(String::as_str).collect();
        let group_refs: Vec<Option<&str>> = groups.iter().map(Option::as_deref).collect();
        let cat = catalogue(&cat_refs, &group_refs);
        let rate = [100, 85, 50, 5, 0][case % 5];
        let buyable: Vec<bool> = (0..n).map(|_| rnd(100) < rate).collect();
        let mut ranking: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            ranking.swap(i, rnd(i as u64 + 1) as usize);
        }
        let k = 1 + rnd(20) as usize;
        let rule = [
            Diversity::cap(0),
            Diversity::cap(3),
            Diversity::cap(1),
            Diversity { cap: 0, penalty: 2.0, limits: &[] },
            Diversity { cap: 2, penalty: 3.0, limits: &[] },
            Diversity { cap: 0, penalty: 40.0, limits: &[] },
            Diversity { cap: 0, penalty: 0.5, limits: &[] },
            Diversity { cap: 0, penalty: 2.0, limits: &[(0, 1), (3, 2)] },
            Diversity { cap: 2, penalty: 0.0, limits: &[(1, 1), (2, 4)] },
        ][case % 9];
        // the buyable items at their places in the whole ranking
        let ok: Vec<(u32, u32)> = ranking.iter().enumerate().filter(|(_, &i)| buyable[i as usize]).map(|(p, &i)| (i, p as u32)).collect();
        let (got, asked, _) = pick_over(&cat, &ranking, &buyable, k, rule);
        assert_eq!(got, diversify_placed(&cat, &ok, k, rule), "case {case}: n {n}, k {k}, {rule:?}, {rate}% buyable");
        assert!(got.iter().all(|i| asked.contains(i)), "case {case}: nothing is returned unchecked");
    }
    // the usual case: most items buyable, the ranking full of variants of a few products
    let cats: Vec<&str> = (0..200).map(|i| ["a", "b", "c", "d", "e", "f"][i % 6]).collect();
    let names: Vec<String> = (0..200).map(|i| format!("p{}", i / 4)).collect();
    let groups: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    let cat = catalogue(&cats, &groups);
    let ranking: Vec<u32> = (0..200).collect();
    let buyable: Vec<bool> = (0..200).map(|i| i % 7 != 3).collect();
    let (got, asked, rounds) = pick_over(&cat, &ranking, &buyable, 10, Diversity::cap(3));
    let ok: Vec<u32> = ranking.iter().copied().filter(|&i| buyable[i as usize]).collect();
    assert_eq!(got, diversify(&cat, &ok, 10, Diversity::cap(3)));
    // 10 wanted + a margin of 4, then the replacements of the 2 that were not buyable (the next
    // variants) and the item that moves up into the margin: 17 checked, not the 45 ranked items
    // a window holds
    assert_eq!((asked.len(), rounds), (17, 2), "{asked:?}");
    // 95% not buyable: still full, in a few rounds, without checking the whole ranking
    let cats: Vec<&str> = (0..2000).map(|i| ["a", "b", "c", "d", "e", "f"][i % 6]).collect();
    let names: Vec<String> = (0..2000).map(|i| format!("p{}", i / 4)).collect();
    let big = catalogue(&cats, &names.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>());
    let ranking: Vec<u32> = (0..2000).collect();
    let buyable: Vec<bool> = (0..2000).map(|i| i % 20 == 9).collect();
    let (got, asked, rounds) = pick_over(&big, &ranking, &buyable, 10, Diversity::cap(0));
    assert_eq!(got, (0..10).map(|n| 20 * n + 9).collect::<Vec<u32>>());
    // (the answer lies 190 items deep: 2 rounds, 222 checked)
    assert!(rounds <= 3 && asked.len() < 300, "{rounds} rounds, {} checked", asked.len());
    // nothing buyable: empty, every item checked once
    let (got, asked, _) = pick_over(&cat, &(0..200).collect::<Vec<u32>>(), &[false; 200], 10, Diversity::cap(3));
    assert!(got.is_empty());
    assert_eq!(asked.len(), 200);
}

#[test]
fn complements_come_from_other_categories_and_sum_over_the_inputs() {
    let cat = catalogue(&["phones", "phones", "cases", "cases", "chargers"], &[]);
    let basket = vec![vec![nb(1, 0.9), nb(2, 0.5), nb(4, 0.4)], vec![nb(3, 0.3), nb(4, 0.3)], vec![], vec![], vec![]];
    let m = Model { cat, basket: Some(basket.into()), ..Default::default() };
    let v = related::bought_together(&m, &[0, 1], &[false; 5]);
    let items: Vec<u32> = v.iter().map(|x| x.0).collect();
    assert_eq!(items, vec![4, 2, 3], "same-category neighbour 1 left out; 4 sums 0.4 + 0.3");
    assert_eq!(v[0].2, 0, "item 4 goes best with input 0");
    let mut excluded = [false; 5];
    excluded[4] = true;
    assert_eq!(related::bought_together(&m, &[0, 1], &excluded).len(), 2);
}

#[test]
fn similar_items_use_both_spaces_and_content_for_new_items() {
    let cat = catalogue(&["a", "a", "b"], &[]);
    let a = Als::new(2, vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0], vec![true, true, true], 0.1, 1.0);
    let content = vec![1.0, 0.0, 0.8, 0.6, 0.0, 1.0];
    let m = Model { cat, als: Some(a), content: Some((content.into(), 2)), ..Default::default() };
    let v = related::likeness(&m, Some(0), None, &[false; 3]);
    assert_eq!(top_n(&v, 3, |_| false), vec![1, 2], "not itself");
    // an item the model has never seen: its own content vector
    let v = related::likeness(&m, None, Some(&[0.0, 1.0]), &[false; 3]);
    assert_eq!(top_n(&v, 1, |_| false), vec![2]);
    assert_relative_eq!(v[2], 1.0);
}

#[test]
fn top_n_matches_a_full_sort() {
    let mut x: u64 = 7;
    let scores: Vec<f32> = (0..5000)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if i % 97 == 0 {
                f32::NEG_INFINITY
            } else {
                ((x >> 40) % 1000) as f32 / 10.0 - 50.0
            }
        })
        .collect();
    let mut all: Vec<u32> = (0..5000u32).filter(|&i| scores[i as usize] > f32::NEG_INFINITY && i % 5 != 0).collect();
    all.sort_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b)));
    for n in [1, 10, 100, 4000, 10_000] {
        let want: Vec<u32> = all.iter().copied().take(n).collect();
        assert_eq!(top_n(&scores, n, |i| i % 5 == 0), want, "n = {n}");
    }
    assert!(top_n(&scores, 0, |_| false).is_empty());
}

#[test]
fn parts_of_day() {
    assert_eq!(part_of_day(7), "morning");
    assert_eq!(part_of_day(13), "afternoon");
    assert_eq!(part_of_day(19), "evening");
    assert_eq!(part_of_day(23), "night");
    assert_eq!(part_of_day(3), "night");
}

#[test]
fn a_new_customer_of_a_known_segment_gets_its_best_sellers_first() {
    // popularity favours items 0 and 1 overall; the segment buys 3, then 2
    let cat = catalogue(&["a", "a", "b", "b"], &[]);
    let n = cat.len();
    let mut p = Popularity { score: vec![9.0, 8.0, 1.0, 2.0].into(), by_hour: vec![[0.0; 24]; n].into(), by_weekday: vec![[0.0; 7]; n].into() };
    p.by_hour.iter_mut().zip(&p.score).for_each(|(h, s)| h.iter_mut().for_each(|x| *x = s / 24.0));
    p.by_weekday.iter_mut().zip(&p.score).for_each(|(d, s)| d.iter_mut().for_each(|x| *x = s / 7.0));
    let m = Model { cat, popularity: Some(p), weights: [1.0, 0.0, 0.0, 0.0], ..Default::default() };
    let plain = request(&[], None);
    let s = Scores::compute(&m, &plain, &[false; 4]);
    assert_eq!(top_n(&s.blended, 4, |_| false), vec![0, 1, 3, 2]);
    let seg = [(3u32, 5.0f32), (2, 4.0)];
    let req = Request { segment: &seg, ..request(&[], None) };
    let s = Scores::compute(&m, &req, &[false; 4]);
    assert_eq!(top_n(&s.blended, 4, |_| false), vec![3, 2, 0, 1]);
    assert_eq!(reason(&m, &s, &req, 3, 12), "best seller with customers like you");
    assert!(reason(&m, &s, &req, 0, 12).starts_with("popular in a"), "{}", reason(&m, &s, &req, 0, 12));
}

#[test]
fn a_large_catalogue_scores_from_the_i8_copy_with_an_exact_top() {
    // 3000 items in 4 categories, random-ish 16-dim factors
    let n = 3000usize;
    let cats: Vec<&str> = (0..n).map(|i| ["a", "b", "c", "d"][i % 4]).collect();
    let f = 16;
    let item: Vec<f32> = (0..n * f).map(|k| ((k * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (k % 3) as f32)).collect();
    let mut m = Model {
        cat: catalogue(&cats, &[]),
        als: Some(Als::new(f, item.clone(), vec![true; n], 0.1, 1.0)),
        weights: [0.0, 0.0, 0.0, 1.0],
        ..Default::default()
    };
    let user: Vec<f32> = (0..f).map(|k| (k as f32 * 0.7).sin()).collect();
    let exact = Scores::compute(&m, &request(&[], Some(&user)), &vec![false; n]);
    let before = m.bytes();
    m.quantize();
    assert!(m.als_q.is_some() && m.bytes() > before, "large catalogues get an i8 copy");
    let fast = Scores::compute(&m, &request(&[], Some(&user)), &vec![false; n]);
    // the top of the ranking is exactly the same items, with exactly the same member scores
    assert_eq!(top_n(&fast.blended, 100, |_| false), top_n(&exact.blended, 100, |_| false));
    for i in top_n(&exact.member[ALS], RESCORE / 2, |_| false) {
        assert_eq!(fast.member[ALS][i as usize], dot(&user, &item[i as usize * f..(i as usize + 1) * f]));
    }
    // small catalogues stay on the exact path
    let mut small = Model { cat: catalogue(&["a"; 10], &[]), als: Some(Als::new(f, item[..10 * f].to_vec(), vec![true; 10], 0.1, 1.0)), ..Default::default() };
    small.quantize();
    assert!(small.als_q.is_none());
}

#[test]
fn the_rescore_threshold_covers_the_top_without_taking_everything() {
    for n in [1_500usize, 30_000, 152_000] {
        let scores: Vec<f32> = (0..n).map(|i| ((i * 7919 % n) as f32 / n as f32).powi(3)).collect();
        let t = rescore_threshold(&scores);
        let above = scores.iter().filter(|x| **x >= t).count();
        assert!(above >= RESCORE && above <= 4 * RESCORE.max(n / 100), "n {n}: {above} items at or above the threshold");
    }
    assert_eq!(rescore_threshold(&[]), f32::NEG_INFINITY);
}

/// A model of `n` items in 20 categories with every member: 16-dim ALS and content vectors,
/// popularity, and 10 neighbours per item, all from a seeded generator.
fn full_model(n: usize, seed: u64) -> Model {
    use rand::{Rng, SeedableRng};
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let names: Vec<String> = (0..20).map(|c| format!("c{c}")).collect();
    let cats: Vec<&str> = (0..n).map(|i| names[i % 20].as_str()).collect();
    let f = 16;
    let item: Vec<f32> = (0..n * f).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let mut content: Vec<f32> = (0..n * f).map(|_| r.random_range(-1.0f32..1.0)).collect();
    content.chunks_exact_mut(f).for_each(normalize);
    let score: Vec<f32> = (0..n).map(|_| r.random_range(0.0f32..1.0).powi(4) * 100.0).collect();
    let by_hour = score.iter().map(|s| std::array::from_fn(|h| s / 24.0 * (1.0 + (h % 3) as f32) / 2.0)).collect();
    let by_weekday = score.iter().map(|s| [s / 7.0; 7]).collect();
    let neighbors = (0..n).map(|_| (0..10).map(|_| nb(r.random_range(0..n as u32), r.random_range(0.0f32..1.0))).collect()).collect::<Vec<Vec<_>>>().into();
    let mut m = Model {
        cat: catalogue(&cats, &[]),
        als: Some(Als::new(f, item, vec![true; n], 0.1, 1.0)),
        content: Some((content.into(), f)),
        neighbors: Some(neighbors),
        popularity: Some(Popularity { score: score.into(), by_hour, by_weekday }),
        weights: [0.3, 0.3, 0.1, 0.3],
        ..Default::default()
    };
    m.quantize();
    m
}

#[test]
fn candidate_mode_ranks_the_top_as_the_dense_blend_does() {
    use rand::{Rng, SeedableRng};
    let n = 20_000;
    let m = full_model(n, 7);
    let mut r = rand::rngs::StdRng::seed_from_u64(11);
    let (mut same, mut total) = (0usize, 0usize);
    let mut sparse = Scores::default();
    for _ in 0..40 {
        let anchors: Vec<Anchor> = (0..3).map(|k| Anchor { item: r.random_range(0..n as u32), weight: 4.0 - k as f32, verb: Verb::Viewed }).collect();
        let user: Vec<f32> = (0..16).map(|_| r.random_range(-1.0f32..1.0)).collect();
        let mut excluded = vec![false; n];
        (0..n).step_by(3).for_each(|i| excluded[i] = true); // a third out of stock
        let req = request(&anchors, Some(&user));
        let dense = Scores::compute(&m, &req, &excluded);
        sparse.compute_candidates(&m, &req, &excluded, &candidates::Given::default());
        let (a, b) = (dense.next(10, &[]), sparse.next(10, &[]));
        assert!(b.iter().all(|&i| !excluded[i as usize]), "excluded items are never candidates");
        assert!(sparse.items.len() <= 4 * candidates::WIDTH * req.candidates, "the union is at most one top per member");
        same += b.iter().filter(|i| a.contains(i)).count();
        assert!(a.iter().all(|i| sparse.items.contains(i)), "the dense top-10 is among the candidates");
        total += 10;
        // members score the candidates exactly (the dense blend keeps the i8 estimate of items
        // outside its rescored top, hence the tolerance on content); the blend differs only by
        // the normalization range (the dense union also holds arbitrary zero-score items)
        for &i in &b {
            let x = sparse.at(i).unwrap();
            let close = |a: f32, b: f32, tol: f32| assert!((a - b).abs() <= tol * b.abs().max(1.0), "item {i}: {a} vs {b}");
            close(sparse.member[POPULARITY][x], dense.member[POPULARITY][i as usize], 1e-6);
            close(sparse.member[COOCCURRENCE][x], dense.member[COOCCURRENCE][i as usize], 1e-6);
            close(sparse.member[CONTENT][x], dense.member[CONTENT][i as usize], 1e-2);
            close(sparse.member[ALS][x], dot(&user, m.als.as_ref().unwrap().vec(i)), 1e-6);
        }
        assert_eq!(sparse.score(u32::MAX), f32::NEG_INFINITY, "an item that is not a candidate has no score");
    }
    // the rest of the difference is the normalization range
    assert!(same * 100 >= total * 95, "top-10 agreement {same}/{total}");
    // a caller's HNSW lists stand in for the passes: the exact ALS top gives the same list
    let user: Vec<f32> = (0..16).map(|k| (k as f32 * 0.3).cos()).collect();
    let req = request(&[], Some(&user));
    let excluded = vec![false; n];
    sparse.compute_candidates(&m, &req, &excluded, &candidates::Given::default());
    let from_pass = sparse.next(10, &[]);
    let dense = Scores::compute(&m, &req, &excluded);
    let given = candidates::Given { als: Some(top_n(&dense.member[ALS], candidates::WIDTH * req.candidates, |_| false)), content: None };
    sparse.compute_candidates(&m, &req, &excluded, &given);
    assert_eq!(sparse.next(10, &[]), from_pass);
    // walking past the candidates runs out instead of inventing scores
    let mut taken = vec![false; n];
    let all = sparse.next(n, &taken);
    assert_eq!(all.len(), sparse.items.len());
    all.iter().for_each(|&i| taken[i as usize] = true);
    assert!(sparse.next(10, &taken).is_empty());
}

#[test]
fn candidate_mode_keeps_the_starter_pack_of_a_new_customer() {
    let m = full_model(5_000, 3);
    let anchors = [Anchor { item: 7, weight: 1.0, verb: Verb::Viewed }];
    let browsed = [m.cat.category[7]];
    let seg = [(100u32, 5.0f32), (200, 4.0)];
    let mut req = Request { browsed: &browsed, segment: &seg, ..request(&anchors, None) };
    req.multipliers[POPULARITY] = 4.0;
    let excluded = vec![false; 5_000];
    let dense = Scores::compute(&m, &req, &excluded);
    let mut sparse = Scores::default();
    sparse.compute_candidates(&m, &req, &excluded, &candidates::Given::default());
    let (a, b) = (dense.next(10, &[]), sparse.next(10, &[]));
    assert!(b.iter().filter(|i| a.contains(i)).count() >= 9, "{a:?} vs {b:?}");
    assert!(b.iter().all(|&i| m.cat.category[i as usize] == browsed[0]), "the browsed category comes first");
    let req = Request { browsed: &[], segment: &seg, ..request(&[], None) };
    let dense = Scores::compute(&m, &req, &excluded);
    sparse.compute_candidates(&m, &req, &excluded, &candidates::Given::default());
    assert_eq!(&sparse.next(2, &[]), &[100, 200], "without browsing, the segment's best sellers lead");
    let (a, b) = (dense.next(10, &[]), sparse.next(10, &[]));
    assert!(b.iter().filter(|i| a.contains(i)).count() >= 9, "{a:?} vs {b:?}");
}

#[test]
fn the_als_reason_names_the_anchor_most_like_the_item_not_the_longest_vector() {
    // item 2 points like item 1 (a short vector); item 0 is long but at 60 degrees
    let cat = catalogue(&["phones", "cases", "cases"], &[]);
    let item = vec![10.0, 10.0 * 3f32.sqrt(), 0.5, 0.0, 1.0, 0.0];
    let m = Model { cat, als: Some(Als::new(2, item, vec![true; 3], 0.1, 1.0)), weights: [0.0, 0.0, 0.0, 1.0], ..Default::default() };
    let anchors = [Anchor { item: 0, weight: 1.0, verb: Verb::Bought }, Anchor { item: 1, weight: 1.0, verb: Verb::Viewed }];
    let user = [1.0f32, 0.0];
    let req = request(&anchors, Some(&user));
    let s = Scores::compute(&m, &req, &[false; 3]);
    assert_eq!(s.dominant(2), ALS);
    assert_eq!(reason(&m, &s, &req, 2, 10), "because you viewed Item 1");
}

#[test]
fn the_anchors_nearest_items_hold_the_items_nearest_to_their_profile() {
    use rand::{Rng, SeedableRng};
    // 100 clusters of 40 items (a category/brand family each), 16 dims, unit vectors
    let (k, per, d) = (100usize, 40usize, 16usize);
    let n = k * per;
    let mut r = rand::rngs::StdRng::seed_from_u64(5);
    let centres: Vec<Vec<f32>> = (0..k).map(|_| (0..d).map(|_| r.random_range(-1.0f32..1.0)).collect()).collect();
    let mut vecs = Vec::with_capacity(n * d);
    for i in 0..n {
        let mut v: Vec<f32> = centres[i / per].iter().map(|c| c + r.random_range(-0.3f32..0.3)).collect();
        normalize(&mut v);
        vecs.extend(v);
    }
    let row = |i: usize| &vecs[i * d..(i + 1) * d];
    let nearest = |q: &[f32], want: usize, skip: usize| -> Vec<u32> {
        let mut s: Vec<(u32, f32)> = (0..n).filter(|&j| j != skip).map(|j| (j as u32, dot(q, row(j)))).collect();
        s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        s.into_iter().take(want).map(|x| x.0).collect()
    };
    // each item's 30 nearest, as training stores them
    let knn = Knn::from_lists(n, (0..n).map(|i| (i as u32, nearest(row(i), 30, i))));
    assert_eq!(knn.of(7).len(), 30);
    assert!(knn.of(n as u32).is_empty(), "an item without a list has none");
    let (mut found, mut total) = (0, 0);
    for t in 0..30 {
        let anchors: Vec<u32> = (0..3).map(|_| r.random_range(0..n as u32)).collect();
        let p = crate::models::content::profile(&vecs, d, &anchors, &[3.0, 2.0, 1.0]);
        let keep = |i: u32| !anchors.contains(&i) && (i % 2 == 1 || t % 2 == 0);
        let got = candidates::knn_nearest(&knn, &anchors, |i| dot(&p, row(i as usize)), 40, keep);
        // ranked exactly, best first, without repeats or rejects
        assert!(got.windows(2).all(|w| dot(&p, row(w[0] as usize)) >= dot(&p, row(w[1] as usize))));
        assert!(got.iter().all(|&i| keep(i)));
        let mut u = got.clone();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), got.len());
        let exact: Vec<u32> = nearest(&p, n, usize::MAX).into_iter().filter(|&i| keep(i)).take(10).collect();
        found += exact.iter().filter(|i| got.contains(i)).count();
        total += 10;
    }
    // a mean of three far-apart anchors leans to items between them, which their own lists do
    // not all hold; the hop from the best items found covers most of it (283/300 here; 186/300
    // without the hop at 50 items a cluster), the blend's other members the rest
    assert!(found * 100 >= total * 85, "the profile's top-10 found: {found}/{total}");
    // one anchor: its own list is the exact top
    let a = 1234u32;
    let p = crate::models::content::profile(&vecs, d, &[a], &[1.0]);
    let got = candidates::knn_nearest(&knn, &[a], |i| dot(&p, row(i as usize)), 10, |i| i != a);
    assert_eq!(got, nearest(&p, 11, a as usize)[..10].to_vec());
}
