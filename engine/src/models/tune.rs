//! Hyper-parameter search on the temporal holdout, within a time budget.
//!
//! A coordinate search per member, from the given parameters: for each knob in turn, every
//! candidate value is fitted on the holdout's training side and scored (the member's own
//! ranking, NDCG@k on the evaluated customers); a value that scores better is kept before the
//! next knob is tried. ALS: factors, regularization, alpha, iterations; co-occurrence: the
//! history neighbours' shrinkage and the neighbours kept; popularity: its half-life. The blend
//! is then chosen on the served lists as in any training ([`super::pipeline`]). A trial starts
//! only while the time spent plus the member's last fit fits in the budget.
use super::als;
use super::als::Csr;
use super::dataset::{Dataset, Holdout};
use super::hybrid::{self, EvalSet, Members};
use super::linalg::Exec;
use super::pipeline::{Kind, Params, TrainingItems};
use serde_json::{json, Value};
use std::time::Instant;

/// One fit and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub member: &'static str,
    /// the knob and value tried (`{"factors": 32}`), or the starting point (`{}`)
    pub change: Value,
    pub ndcg: f64,
    pub seconds: f64,
}

/// What a search tried, and what it kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub tried: Vec<Trial>,
    pub seconds: f64,
    pub budget_s: f64,
    /// trials left out because the budget was spent
    pub skipped: usize,
}

impl Report {
    pub fn to_json(&self, chosen: &Params) -> Value {
        let tried: Vec<Value> = self
            .tried
            .iter()
            .map(|t| json!({"member": t.member, "change": t.change, "ndcg": (t.ndcg * 1e6).round() / 1e6, "seconds": (t.seconds * 100.0).round() / 100.0}))
            .collect();
        json!({
            "budget_s": self.budget_s, "seconds": (self.seconds * 10.0).round() / 10.0, "skipped": self.skipped, "tried": tried,
            "chosen": {
                "factors": chosen.als.factors, "regularization": chosen.als.regularization, "alpha": chosen.als.alpha,
                "iterations": chosen.als.iterations, "history_shrinkage": chosen.history_shrinkage, "neighbors": chosen.cooccurrence.top_k,
                "popularity_half_life_days": chosen.popularity_half_life_days,
            },
        })
    }
}

/// A knob: its name, its candidate values, and how to read and set it.
struct Knob {
    name: &'static str,
    values: &'static [f64],
    get: fn(&Params) -> f64,
    set: fn(&mut Params, f64),
}

/// The largest value a search tries for the knob `name` (memory estimates plan for it), if a
/// search tries that knob.
pub(crate) fn largest_tried(name: &str) -> Option<f64> {
    ALS_KNOBS.iter().chain(&COOCCURRENCE_KNOBS).chain(&POPULARITY_KNOBS).find(|k| k.name == name).map(|k| k.values.iter().copied().fold(f64::MIN, f64::max))
}

const ALS_KNOBS: [Knob; 4] = [
    Knob { name: "factors", values: &[32.0, 64.0, 128.0], get: |p| p.als.factors as f64, set: |p, v| p.als.factors = v as usize },
    Knob { name: "regularization", values: &[0.01, 0.05, 0.1, 0.5], get: |p| f64::from(p.als.regularization), set: |p, v| p.als.regularization = v as f32 },
    Knob { name: "alpha", values: &[1.0, 2.0, 5.0, 10.0], get: |p| f64::from(p.als.alpha), set: |p, v| p.als.alpha = v as f32 },
    Knob { name: "iterations", values: &[10.0, 15.0, 25.0], get: |p| p.als.iterations as f64, set: |p, v| p.als.iterations = v as usize },
];
const COOCCURRENCE_KNOBS: [Knob; 2] = [
    Knob { name: "history_shrinkage", values: &[0.0, 10.0, 50.0, 200.0], get: |p| f64::from(p.history_shrinkage), set: |p, v| p.history_shrinkage = v as f32 },
    Knob { name: "neighbors", values: &[20.0, 50.0, 100.0], get: |p| p.cooccurrence.top_k as f64, set: |p, v| p.cooccurrence.top_k = v as usize },
];
const POPULARITY_KNOBS: [Knob; 1] = [Knob {
    name: "popularity_half_life_days",
    values: &[7.0, 30.0, 90.0, 365.0],
    get: |p| p.popularity_half_life_days,
    set: |p, v| p.popularity_half_life_days = v,
}];

/// The caller's parameters (`caller`, a `reco.train` params object) with the values an earlier
/// search chose (`searched`: the stored params of the model it trained) for each knob of `kind`'s
/// members the caller left unset. Every knob is then given, so a training from the result
/// searches nothing ([`planned`] is 0) and fits what the search found; the caller's own values
/// and every other key are kept as they are.
pub fn reuse(kind: Kind, caller: &serde_json::Map<String, Value>, searched: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let m = kind.members();
    let mut out = caller.clone();
    for (on, knobs) in [(m[3], &ALS_KNOBS[..]), (m[1], &COOCCURRENCE_KNOBS[..]), (m[0], &POPULARITY_KNOBS[..])] {
        for k in knobs.iter().filter(|_| on) {
            if let (false, Some(v)) = (out.contains_key(k.name), searched.get(k.name)) {
                out.insert(k.name.to_string(), v.clone());
            }
        }
    }
    out
}

/// The holdout a search scores on.
pub struct Split<'a> {
    pub ds: &'a Dataset,
    pub h: &'a Holdout,
    pub train: &'a Csr,
    pub set: &'a EvalSet,
    pub items: &'a TrainingItems,
    pub end_us: i64,
}

/// Fits member `mi` with `p` on the holdout's training side, as training does
/// ([`super::pipeline::fit`] with that member's kind), and returns its NDCG@k.
fn score(on: &Split, mi: usize, p: &Params, exec: Exec) -> f64 {
    let kind = [Kind::Popularity, Kind::Cooccurrence, Kind::Content, Kind::Als][mi];
    let q = Params { als: als::Params { report_loss: false, ..p.als }, ..p.clone() };
    let Ok(t) = super::pipeline::fit(on.ds, Some(&on.h.train), on.train, on.items, on.end_us, kind, &q, "tuning", exec, &mut |_| Ok::<_, ()>(())) else {
        return 0.0;
    };
    let merged = t.merged_neighbors(on.ds.n_items);
    let m = Members { popularity: t.popularity.as_ref().map(|x| &x.score[..]), cooccurrence: merged.as_deref(), content: None, als: t.als.as_ref() };
    let r = hybrid::evaluate(on.train, on.set, &m, p.k, exec);
    r.members[mi].map_or(0.0, |s| s.ndcg)
}

/// Searches the members of `kind` from `start` within `budget_s` seconds, leaving the knobs the
/// caller set (`start.given`) as they are; `progress` hears of each trial (and may stop the
/// search with an error).
pub fn search<E>(
    on: &Split,
    kind: Kind,
    start: &Params,
    budget_s: f64,
    exec: Exec,
    mut progress: impl FnMut(&Trial, bool) -> Result<(), E>,
) -> Result<(Params, Report), E> {
    let began = Instant::now();
    let mut p = start.clone();
    let mut report = Report { budget_s, ..Default::default() };
    let members = kind.members();
    // ALS first (it gains most), then co-occurrence, then popularity
    let plan: [(usize, &'static str, &[Knob]); 3] = [(3, "als", &ALS_KNOBS), (1, "cooccurrence", &COOCCURRENCE_KNOBS), (0, "popularity", &POPULARITY_KNOBS)];
    for (mi, member, knobs) in plan {
        let free: Vec<&Knob> = knobs.iter().filter(|k| !start.given.iter().any(|g| g == k.name)).collect();
        // a member whose every knob the caller set has nothing to search
        if !members[mi] || free.is_empty() || exec.cancelled() {
            continue;
        }
        let mut last = 0.0;
        let mut trial = |p: &Params, change: Value, report: &mut Report| -> Option<Trial> {
            if began.elapsed().as_secs_f64() + last > budget_s {
                report.skipped += 1;
                return None;
            }
            let t0 = Instant::now();
            let ndcg = score(on, mi, p, exec);
            last = t0.elapsed().as_secs_f64();
            Some(Trial { member, change, ndcg, seconds: last })
        };
        let Some(base) = trial(&p, json!({}), &mut report) else { continue };
        let mut best = base.ndcg;
        progress(&base, true)?;
        report.tried.push(base);
        for knob in free {
            let now = (knob.get)(&p);
            let mut keep = now;
            for &v in knob.values.iter().filter(|v| (**v - now).abs() > 1e-9) {
                let mut q = p.clone();
                (knob.set)(&mut q, v);
                let Some(t) = trial(&q, json!({ knob.name: v }), &mut report) else { continue };
                let better = t.ndcg > best + 1e-9;
                if better {
                    best = t.ndcg;
                    keep = v;
                }
                progress(&t, better)?;
                report.tried.push(t);
            }
            (knob.set)(&mut p, keep);
        }
    }
    report.seconds = began.elapsed().as_secs_f64();
    Ok((p, report))
}

/// How many trials a full search of `kind` makes (the starting points included), leaving the
/// knobs in `given` as they are.
pub fn planned(kind: Kind, given: &[String]) -> usize {
    let m = kind.members();
    let count = |knobs: &[Knob]| {
        let free: Vec<&Knob> = knobs.iter().filter(|k| !given.iter().any(|g| g == k.name)).collect();
        if free.is_empty() {
            0
        } else {
            1 + free.iter().map(|k| k.values.len() - 1).sum::<usize>()
        }
    };
    usize::from(m[3]) * count(&ALS_KNOBS) + usize::from(m[1]) * count(&COOCCURRENCE_KNOBS) + usize::from(m[0]) * count(&POPULARITY_KNOBS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_search_fills_the_unset_knobs_of_the_kinds_members_and_leaves_nothing_to_search() {
        let searched = Params { als: als::Params { factors: 32, alpha: 5.0, ..als::Params::default() }, history_shrinkage: 50.0, ..Params::default() };
        let searched = searched.to_json().as_object().unwrap().clone();
        let caller = json!({"factors": 128, "window_days": 90}).as_object().unwrap().clone();
        let r = reuse(Kind::Hybrid, &caller, &searched);
        assert_eq!(r["factors"], json!(128), "the caller's value is kept");
        assert_eq!((r["alpha"].as_f64(), r["history_shrinkage"].as_f64()), (Some(5.0), Some(50.0)), "the search's values fill the rest");
        assert_eq!(r["window_days"], json!(90));
        assert!(!r.contains_key("seed") && !r.contains_key("holdout"), "only the searched knobs are taken: {r:?}");
        let p = Params::from_json(&r).unwrap();
        assert_eq!(planned(Kind::Hybrid, &p.given), 0, "nothing left to search");
        assert!(!p.tune.runs(Kind::Hybrid, &p.given, 1, 60.0));
        assert_eq!((p.als.factors, p.als.alpha, p.history_shrinkage), (128, 5.0, 50.0));
        // an ALS model takes only ALS's knobs; a search that stored nothing leaves the caller's
        let r = reuse(Kind::Als, &serde_json::Map::new(), &searched);
        assert_eq!(r.keys().cloned().collect::<Vec<_>>(), ["alpha", "factors", "iterations", "regularization"]);
        assert_eq!(reuse(Kind::Hybrid, &caller, &serde_json::Map::new()), caller);
        assert!(planned(Kind::Hybrid, &Params::from_json(&reuse(Kind::Hybrid, &caller, &serde_json::Map::new())).unwrap().given) > 0);
    }

    #[test]
    fn every_knob_reads_back_what_it_sets() {
        for k in ALS_KNOBS.iter().chain(&COOCCURRENCE_KNOBS).chain(&POPULARITY_KNOBS) {
            for &v in k.values {
                let mut p = Params::default();
                (k.set)(&mut p, v);
                assert!(((k.get)(&p) - v).abs() < 1e-6, "{}: set {v}, read {}", k.name, (k.get)(&p));
            }
        }
        assert_eq!(largest_tried("factors"), Some(128.0));
        assert_eq!(largest_tried("neighbors"), Some(100.0));
        assert_eq!(largest_tried("content_dims"), None);
    }
    use crate::standardize::time::PG_EPOCH_UNIX_MICROS;

    fn small() -> (Dataset, TrainingItems) {
        let end_ms = 1_767_225_600_000;
        let d = crate::demo::generate(crate::demo::scale("small").unwrap(), 5, end_ms);
        let (ds, items, _) = crate::demo::training_data(&d);
        (ds, items)
    }

    #[test]
    fn the_search_keeps_only_what_scores_better_and_stays_in_its_budget() {
        let (ds, items) = small();
        let end_us = 1_767_225_600_000 * 1000 - PG_EPOCH_UNIX_MICROS;
        let h = ds.holdout(0.2);
        let train = ds.matrix(Some(&h.train));
        let set = hybrid::eval_set(&train, &ds.matrix(Some(&h.test)), 300, 1);
        let split = Split { ds: &ds, h: &h, train: &train, set: &set, items: &items, end_us };
        let start = Params { als: als::Params { iterations: 5, ..Default::default() }, ..Default::default() };
        let mut heard = 0;
        let (p, r) = search(&split, Kind::Hybrid, &start, 600.0, Exec::default(), |_, _| {
            heard += 1;
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(r.tried.len(), planned(Kind::Hybrid, &[]) + 1, "every trial ran (iterations 5 is not a candidate value: one more try)");
        assert_eq!(heard, r.tried.len());
        for member in ["als", "cooccurrence", "popularity"] {
            let mine: Vec<&Trial> = r.tried.iter().filter(|t| t.member == member).collect();
            let base = mine[0].ndcg;
            let best = mine.iter().map(|t| t.ndcg).fold(base, f64::max);
            assert!(best >= base, "{member}");
        }
        // what was kept scores as the best ALS trial did
        let als_best = r.tried.iter().filter(|t| t.member == "als").map(|t| t.ndcg).fold(0.0, f64::max);
        assert!((score(&split, 3, &p, Exec::default()) - als_best).abs() < 1e-9, "{p:?}");
        assert!(r.tried.iter().filter(|t| t.member == "als").any(|t| t.ndcg > r.tried[0].ndcg), "5 iterations can be beaten: {r:?}");
        // a spent budget skips the rest
        let (_, r) = search(&split, Kind::Als, &start, 1e-6, Exec::default(), |_, _| Ok::<_, ()>(())).unwrap();
        assert!(r.tried.len() <= 1 && r.skipped > 0, "{r:?}");
        // the knobs the caller set stay as set
        let given = Params { given: vec!["factors".into(), "alpha".into()], als: als::Params { factors: 8, ..start.als }, ..start.clone() };
        let (q, r) = search(&split, Kind::Als, &given, 600.0, Exec::default(), |_, _| Ok::<_, ()>(())).unwrap();
        assert_eq!((q.als.factors, q.als.alpha), (8, 2.0), "{r:?}");
        assert!(r.tried.iter().all(|t| t.change.get("factors").is_none() && t.change.get("alpha").is_none()));
    }
}
