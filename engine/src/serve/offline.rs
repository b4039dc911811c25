//! What is served, offline: the list [`policy::recommend`] would have returned to each
//! evaluated customer of a temporal holdout, at the time of their first held-out event.
//!
//! The model is the one trained on the holdout's training side, built as serving loads a
//! deployed one ([`model`]); the customer is their training-side history, read as serving reads
//! it (the latest `history_events`, owned items never offered again); the request is the
//! default context at the placement given, so the blend, the hour's popularity, diversity,
//! exclusions and the placement's rules are all the policy's own. What cannot be known of the
//! past is left out: every item counts as buyable, no item is newer than the model, and no
//! preference is resolved.
use super::context::Context;
use super::policy::{self, Ask};
use super::{Catalogue, Customer, History, Live, Model, Past, Placement, Profile, Scores, Settings, Space, Stats, Tuning};
use crate::eval::Summary;
use crate::models::dataset::{Dataset, Holdout};
use crate::models::hybrid::EvalSet;
use crate::models::linalg::{Als, Exec};
use crate::models::pipeline::{Params, Trained, TrainingItems};
use crate::models::popularity::hour_of_week;
use crate::prefs::fit::ItemFacts;
use crate::standardize::time::PG_EPOCH_UNIX_MICROS;
use crate::NONE;
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// What serving reads beside the model, for an offline evaluation.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// the item ids, by the dataset's item index
    pub item_ids: &'a [String],
    /// event kinds' weights and the repeatable categories
    pub settings: &'a Settings,
    pub tuning: &'a Tuning,
    pub placement: Placement,
    /// how many of the customer's latest events a request reads (`reco.history_events`)
    pub history_events: usize,
}

/// A PostgreSQL timestamp (microseconds since 2000-01-01) as epoch milliseconds.
fn epoch_ms(pg_us: i64) -> i64 {
    (pg_us + PG_EPOCH_UNIX_MICROS).div_euclid(1000)
}

/// The serving model of a training run, as the cache would load it once stored: the members'
/// item data, the merged and basket neighbours, popularity, the blend `weights`; `data_to_us` is
/// the end of the data it was trained on (PostgreSQL microseconds).
pub fn model(t: &Trained, items: &TrainingItems, ids: &[String], p: &Params, weights: [f32; 4], data_to_us: i64) -> Model {
    let mut cat = Catalogue::default();
    let mut groups = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let f = items.features.get(i);
        let group = items.group.get(i).copied().filter(|g| *g != NONE).map(|g| g.to_string());
        cat.push(id.clone(), f.and_then(|f| f.title.clone()), f.and_then(|f| f.category.as_deref()), group.as_deref(), ItemFacts::default(), &mut groups);
    }
    let n = cat.len();
    let als = t.als.as_ref().map(|a| {
        let learned: Vec<bool> = (0..n).map(|i| t.has_item.get(i).copied().unwrap_or(false)).collect();
        let mut item = a.item.clone();
        // serving has no vector for an item the fit never saw
        for (i, l) in learned.iter().enumerate() {
            if !l {
                item[i * a.factors..(i + 1) * a.factors].iter_mut().for_each(|x| *x = 0.0);
            }
        }
        Als::new(a.factors, item, learned, p.als.regularization, p.als.alpha)
    });
    let mut m = Model {
        cat,
        als,
        content: t.content.clone().map(|v| (v.into(), p.content_dims)),
        neighbors: t.merged_neighbors(n).map(Into::into),
        basket: t.basket.as_deref().map(Into::into),
        popularity: t.popularity.clone(),
        weights,
        data_to_ms: epoch_ms(data_to_us),
        items_until_ms: i64::MAX,
        ..Default::default()
    };
    m.quantize();
    m
}

/// The past as an evaluation sees it: every item buyable, nothing newer than the model, no
/// index (every request is scored exactly), no resolved preferences.
struct Then<'a> {
    m: &'a Model,
}

impl Live for Then<'_> {
    fn buyable(&mut self, ids: &[&str]) -> Vec<bool> {
        vec![true; ids.len()]
    }
    /// Past stock levels are not kept: no item is at risk of selling out.
    fn available(&mut self, ids: &[&str]) -> Vec<f64> {
        vec![f64::INFINITY; ids.len()]
    }
    fn in_categories(&mut self, ids: &[&str], categories: &[String]) -> HashSet<String> {
        let m = self.m;
        ids.iter()
            .filter(|id| m.cat.index.get(**id).is_some_and(|&i| categories.iter().any(|c| c == m.cat.category_name(i))))
            .map(|id| id.to_string())
            .collect()
    }
    fn back_in_stock(&mut self, _: &[&str], _: i64, _: i64) -> HashSet<String> {
        HashSet::new()
    }
    fn new_items(&mut self, _: i64, _: &[String], _: Option<&str>, _: &[String], _: usize) -> Vec<(String, Option<String>)> {
        Vec::new()
    }
    fn recent_best_sellers(&mut self, _: &[String], _: Option<&str>, _: usize, _: i64) -> Vec<(String, f64)> {
        Vec::new()
    }
    fn nearest(&mut self, _: &Model, _: Space, _: &[f32], _: usize) -> Option<Vec<u32>> {
        None
    }
    fn preferences(&mut self, _: &str) -> Map<String, Value> {
        Map::new()
    }
}

/// One evaluated customer: their training-side history (latest first, as serving reads it),
/// whether it holds all of their events, the time they are asked at, and their stored vector.
struct Case {
    user: u32,
    history: Vec<usize>,
    complete: bool,
    now_ms: i64,
}

/// The customers of `set` as serving would see them at their first held-out event.
fn cases(ds: &Dataset, h: &Holdout, set: &EvalSet, history_events: usize) -> Vec<Case> {
    let mut at: HashMap<u32, usize> = HashMap::with_capacity(set.users.len());
    let mut out: Vec<Case> = set
        .users
        .iter()
        .enumerate()
        .map(|(n, &u)| {
            at.insert(u, n);
            Case { user: u, history: Vec::new(), complete: true, now_ms: i64::MAX }
        })
        .collect();
    for &i in &h.test {
        let e = &ds.events[i];
        if let Some(&n) = at.get(&e.user) {
            out[n].now_ms = out[n].now_ms.min(epoch_ms(e.at));
        }
    }
    for &i in &h.train {
        if let Some(&n) = at.get(&ds.events[i].user) {
            out[n].history.push(i);
        }
    }
    for c in &mut out {
        c.history.sort_by_key(|&i| std::cmp::Reverse((ds.events[i].at, i)));
        c.complete = c.history.len() < history_events;
        c.history.truncate(history_events);
    }
    out
}

/// The past event `i` as serving reads it.
fn past(ds: &Dataset, ids: &[String], i: usize) -> Past {
    let e = &ds.events[i];
    Past {
        item: ids.get(e.item as usize).cloned().unwrap_or_default(),
        kind: ds.kinds.get(usize::from(e.kind)).cloned().unwrap_or_default(),
        value: (!e.value.is_nan()).then_some(f64::from(e.value)),
        at_ms: epoch_ms(e.at),
        in_session: false,
        mine: true,
    }
}

/// Every item the customer owns (bought or rated) or returned → (returned, repeatable), from all
/// of their training-side events: what serving reads when the history it reads is not all of
/// them.
fn owned(ds: &Dataset, m: &Model, ids: &[String], all: &[usize], settings: &Settings) -> HashMap<String, (bool, bool)> {
    let mut out: HashMap<String, (bool, bool)> = HashMap::new();
    for &i in all {
        let e = &ds.events[i];
        let kind = ds.kinds.get(usize::from(e.kind)).map(String::as_str).unwrap_or("");
        if kind != "return" && !super::request::OWNING_KINDS.contains(&kind) {
            continue;
        }
        let Some(id) = ids.get(e.item as usize) else { continue };
        let repeatable = settings.repeatable.iter().any(|c| c == m.cat.category_name(e.item));
        out.entry(id.clone()).or_insert((false, repeatable)).0 |= kind == "return";
    }
    out
}

#[allow(clippy::too_many_arguments)]
/// The served lists of `set`'s customers (catalogue indexes, best first, `k` long at most),
/// in `set` order; `stored` gives a customer's ALS vector when the model learned one.
pub fn served_lists(
    m: &Model,
    ds: &Dataset,
    h: &Holdout,
    set: &EvalSet,
    stored: &(dyn Fn(u32) -> Option<Vec<f32>> + Sync),
    setup: &Setup,
    k: usize,
    exec: Exec,
) -> Vec<Vec<u32>> {
    let cases = cases(ds, h, set, setup.history_events.max(1));
    // all training-side events per customer, for what they own when the history is cut short
    let mut all: HashMap<u32, Vec<usize>> = HashMap::new();
    if cases.iter().any(|c| !c.complete) {
        let wanted: HashSet<u32> = cases.iter().filter(|c| !c.complete).map(|c| c.user).collect();
        for &i in &h.train {
            if wanted.contains(&ds.events[i].user) {
                all.entry(ds.events[i].user).or_default().push(i);
            }
        }
    }
    let ctx = Context::default();
    let threads = exec.pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads()).max(1);
    // served in order of the hour of the week they are asked at: the model keeps one hour's
    // popularity (every item scored and sorted), which in `set` order (each customer at their
    // own time) was computed again for nearly every customer
    let mut cases: Vec<(usize, Case)> = cases.into_iter().enumerate().collect();
    cases.sort_by_key(|(n, c)| (hour_of_week(c.now_ms), *n));
    let chunk = cases.len().div_ceil(threads).max(1);
    // a copy per thread: the model keeps the hour's popularity in a RefCell
    let parts: Vec<(Model, &[(usize, Case)])> = cases.chunks(chunk).map(|part| (m.clone(), part)).collect();
    let lists: Vec<Vec<u32>> = exec.run(|| {
        parts
            .into_par_iter()
            .flat_map_iter(|(m, part)| {
                let mut scores = Scores::default();
                let mut stats = Stats::default();
                part.iter()
                    .map(|(_, c)| {
                        if exec.cancelled() {
                            return Vec::new();
                        }
                        let mut live = Then { m: &m };
                        let events: Vec<Past> = c.history.iter().map(|&i| past(ds, setup.item_ids, i)).collect();
                        let purchases =
                            (!c.complete).then(|| owned(ds, &m, setup.item_ids, all.get(&c.user).map(Vec::as_slice).unwrap_or(&[]), setup.settings));
                        let profile = Profile { stored: stored(c.user), ..Default::default() };
                        let cust = Customer::new(profile, History { events, purchases }, Some(&m), setup.settings, &mut live);
                        let ask = Ask {
                            customer_id: None,
                            k,
                            ctx: &ctx,
                            now_ms: c.now_ms,
                            placement: setup.placement,
                            settings: setup.settings,
                            tuning: setup.tuning,
                        };
                        policy::recommend(Some(&m), &ask, &cust, &mut live, &mut scores, &mut stats)
                            .into_iter()
                            .filter_map(|s| m.cat.index.get(&s.item_id).copied())
                            .collect()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    // back in `set` order
    let mut out = vec![Vec::new(); lists.len()];
    for ((n, _), list) in cases.iter().zip(lists) {
        out[*n] = list;
    }
    out
}

/// The metrics of served lists against `set`'s held-out items, with the mean number of
/// distinct categories (`category`, by catalogue index) in a list's top `k`.
pub fn summarize(lists: &[Vec<u32>], set: &EvalSet, k: usize, n_items: usize, category: &[u32]) -> Summary {
    let truth: Vec<HashSet<u32>> = set.truth.iter().map(|t| t.iter().copied().collect()).collect();
    let mut s = crate::eval::summarize(lists.iter().zip(&truth).map(|(l, t)| (l.as_slice(), t)), k, n_items);
    let counted: Vec<usize> = lists
        .iter()
        .zip(&truth)
        .filter(|(_, t)| !t.is_empty())
        .map(|(l, _)| l.iter().take(k).filter_map(|&i| category.get(i as usize)).collect::<HashSet<_>>().len())
        .collect();
    s.categories = if counted.is_empty() { 0.0 } else { counted.iter().sum::<usize>() as f64 / counted.len() as f64 };
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pipeline::{self, Kind};
    use crate::serve::policy::DEFAULT_TUNING;

    /// 2026-01-01, the end of the generated data.
    const END_MS: i64 = 1_767_225_600_000;

    /// The small demo (seed 7) as training reads it, and the default event weights.
    fn small_demo() -> (Dataset, TrainingItems, Vec<String>, Settings) {
        let d = crate::demo::generate(crate::demo::scale("small").unwrap(), 7, END_MS);
        let (ds, items, ids) = crate::demo::training_data(&d);
        let settings =
            Settings { weights: crate::models::dataset::DEFAULT_WEIGHTS.iter().map(|(k, w, _)| (k.to_string(), *w)).collect(), ..Settings::default() };
        (ds, items, ids, settings)
    }

    #[test]
    fn the_served_hybrid_is_never_below_its_best_member_served_and_never_lists_what_was_bought() {
        let (ds, items, ids, settings) = small_demo();
        let setup = Setup { item_ids: &ids, settings: &settings, tuning: &DEFAULT_TUNING, placement: Placement::default(), history_events: 200 };
        let p = Params { refit: false, eval_users: 300, ..Params::default() };
        let end = END_MS * 1000 - PG_EPOCH_UNIX_MICROS;
        let t = pipeline::train(&ds, &items, end, Kind::Hybrid, &p, Some(&setup), Exec::default(), |_| Ok::<_, ()>(())).unwrap();
        let s = t.served.clone().unwrap();
        let best_member = s.members.iter().flatten().map(|m| m.ndcg).fold(0.0, f64::max);
        assert!(s.model.ndcg >= best_member, "{s:?}");
        assert!(s.members.iter().all(Option::is_some), "every member served alone: {s:?}");
        assert!(s.tried.iter().any(|(w, n)| *w == t.weights && (*n - s.model.ndcg).abs() < 1e-12), "the chosen blend was tried: {s:?}");
        assert!(s.model.ndcg > 0.0 && s.model.users == t.report.as_ref().unwrap().hybrid.users);
        // the lists themselves: k long, nothing the customer bought before (no repeatable categories)
        let h = ds.holdout(p.holdout);
        let train_m = ds.matrix(Some(&h.train));
        let set = crate::models::hybrid::eval_set(&train_m, &ds.matrix(Some(&h.test)), 100, 1);
        let m = model(&t, &items, &ids, &p, t.weights, h.train.iter().map(|&i| ds.events[i].at).max().unwrap());
        let stored = |u: u32| t.als.as_ref().filter(|_| t.has_user[u as usize]).map(|a| a.user_vec(u as usize).to_vec());
        let lists = served_lists(&m, &ds, &h, &set, &stored, &setup, 10, Exec::default());
        assert_eq!(lists.len(), set.users.len());
        let purchase = ds.kinds.iter().position(|k| k == "purchase").unwrap() as u16;
        for (u, list) in set.users.iter().zip(&lists) {
            assert_eq!(list.len(), 10, "customer {u}");
            let bought: HashSet<u32> = h.train.iter().map(|&i| ds.events[i]).filter(|e| e.user == *u && e.kind == purchase).map(|e| e.item).collect();
            assert!(list.iter().all(|i| !bought.contains(i)), "customer {u}: {list:?} holds a bought item");
        }
        // each list is its own customer's, whatever order they are served in (they are served
        // by hour of the week, then put back in `set` order): the set reversed, and one alone
        let rev = EvalSet { users: set.users.iter().rev().copied().collect(), truth: set.truth.iter().rev().cloned().collect() };
        let back: Vec<Vec<u32>> = served_lists(&m, &ds, &h, &rev, &stored, &setup, 10, Exec::default()).into_iter().rev().collect();
        assert_eq!(back, lists, "the same lists, set reversed");
        for n in [0, set.users.len() / 2, set.users.len() - 1] {
            let one = EvalSet { users: vec![set.users[n]], truth: vec![set.truth[n].clone()] };
            assert_eq!(served_lists(&m, &ds, &h, &one, &stored, &setup, 10, Exec::default()), vec![lists[n].clone()], "customer {} alone", set.users[n]);
        }
        let s = summarize(&lists, &set, 10, ds.n_items, &items.category);
        assert_eq!(s.users, set.users.len());
        // what the diversity penalty keeps: several categories per list (the small demo has 12)
        assert!(s.categories > 3.0 && s.categories <= 10.0, "{s:?}");
    }

    #[test]
    fn a_blend_chosen_before_is_served_as_it_is_and_is_the_runs_only_served_evaluation() {
        let (ds, items, ids, settings) = small_demo();
        let setup = Setup { item_ids: &ids, settings: &settings, tuning: &DEFAULT_TUNING, placement: Placement::default(), history_events: 200 };
        let end = END_MS * 1000 - PG_EPOCH_UNIX_MICROS;
        let run = |blend: Option<[f32; 4]>| {
            let p = Params { refit: false, eval_users: 300, blend, ..Params::default() };
            pipeline::train(&ds, &items, end, Kind::Hybrid, &p, Some(&setup), Exec::default(), |_| Ok::<_, ()>(())).unwrap()
        };
        let chosen = run(None);
        let s = chosen.served.clone().unwrap();
        assert!(s.tried.len() > 1, "a choice serves several blends: {s:?}");
        // the blend that choice made, passed back: served once, the same lists, the same figure
        let again = run(Some(chosen.weights));
        let r = again.served.unwrap();
        assert_eq!(again.weights, chosen.weights);
        assert_eq!(r.tried, vec![(chosen.weights, s.model.ndcg)], "one blend served, as the choice served it");
        assert_eq!((r.model, r.climb_from), (s.model, 1));
        assert!(r.members.iter().all(Option::is_none), "no member served alone");
        // any other blend is served as given, even one the choice would not make
        let other = [0.0, 0.0, 0.0, 1.0];
        let t = run(Some(other));
        assert_eq!((t.weights, t.served.unwrap().tried.len()), (other, 1));
    }

    #[test]
    fn the_served_blend_search_climbs_one_step_at_a_time_and_keeps_only_what_serves_better() {
        let (ds, items, ids, settings) = small_demo();
        let setup = Setup { item_ids: &ids, settings: &settings, tuning: &DEFAULT_TUNING, placement: Placement::default(), history_events: 200 };
        let end = END_MS * 1000 - PG_EPOCH_UNIX_MICROS;
        let served = |steps: usize| {
            let p = Params { refit: false, eval_users: 300, blend_steps: steps, ..Params::default() };
            let t = pipeline::train(&ds, &items, end, Kind::Hybrid, &p, Some(&setup), Exec::default(), |_| Ok::<_, ()>(())).unwrap();
            (t.weights, t.served.unwrap())
        };
        let (w0, s0) = served(0);
        let (w, s) = served(12);
        let start = s0.tried.len();
        assert!(start <= 4 + crate::models::hybrid::RUNNERS_UP, "no climb with blend_steps 0: {s0:?}");
        assert_eq!((s0.climb_from, s.climb_from), (start, start), "the climb's steps are told apart");
        assert_eq!(s.tried[..start], s0.tried[..], "the same start");
        assert!(s.tried.len() > start && s.tried.len() <= start + 12, "at most blend_steps more: {} tried", s.tried.len());
        assert!(s.model.ndcg >= s0.model.ndcg);
        assert!(w == w0 || s.model.ndcg > s0.model.ndcg + 1e-12, "a blend that serves no better is not taken: {w:?} {w0:?}");
        let chosen = s.tried.iter().find(|(x, _)| *x == w).unwrap();
        assert!((chosen.1 - s.model.ndcg).abs() < 1e-12, "the chosen blend was served");
        assert!(s.tried[..start].iter().all(|(_, n)| *n <= s.model.ndcg + 1e-12), "never below what was served before the climb");
        // each blend the climb tried is one step (0.1 moved between two members) from where it
        // stood, on the grid, and none is tried twice; it moves on only to a step that served
        // better, and what it chose is where it stood last
        let step = |x: &[f32; 4], from: &[f32; 4]| {
            let moved: Vec<i32> = (0..4).map(|m| ((x[m] - from[m]) * 10.0).round() as i32).collect();
            (moved.iter().filter(|&&d| d == 1).count(), moved.iter().filter(|&&d| d == -1).count(), moved.iter().filter(|&&d| d == 0).count()) == (1, 1, 2)
        };
        let mut at = (w0, s0.model.ndcg);
        for (i, (x, _)) in s.tried.iter().enumerate().skip(start) {
            if !step(x, &at.0) {
                let (prev, n) = s.tried[i - 1];
                assert!(i > start && prev != at.0 && step(x, &prev) && n > at.1, "{x:?}: not a step from {at:?} nor from a better {prev:?}");
                at = (prev, n);
            }
            assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-5 && x.iter().all(|v| *v >= 0.0));
            assert!(!s.tried[..i].iter().any(|(y, _)| y == x), "{x:?} tried twice");
        }
        assert!(w == at.0 || w == s.tried.last().unwrap().0, "chosen {w:?}, stood at {at:?}");
    }
}
