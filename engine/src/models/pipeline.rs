//! One training run: parameters, the members a kind needs, the holdout evaluation and the
//! refit on all data. The SQL glue reads the data, calls [`train`], and stores what it returns.
use super::als::Csr;
use super::cooccurrence::{self, Neighbor};
use super::dataset::Dataset;
use super::hybrid::{self, Members, Report};
use super::linalg::Exec;
use super::{als, content, popularity};
use crate::error::{show, Error, Result};
use crate::eval::Summary;
use crate::serve::offline::{self, Setup};
use crate::standardize::time::PG_EPOCH_UNIX_MICROS as PG_EPOCH_US;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Als,
    Cooccurrence,
    Content,
    Popularity,
    Hybrid,
}

/// Every model kind and its name: the one list (`reco.models.kind`'s CHECK and `reco.train`'s
/// check in sql/ are compared with it by a test in src/tests.rs).
pub const KINDS: [(Kind, &str); 5] =
    [(Kind::Hybrid, "hybrid"), (Kind::Als, "als"), (Kind::Cooccurrence, "cooccurrence"), (Kind::Content, "content"), (Kind::Popularity, "popularity")];

impl Kind {
    pub fn parse(s: &str) -> Result<Kind> {
        KINDS.iter().find(|k| k.1 == s).map(|k| k.0).ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|k| k.1).collect();
            Error::invalid(format!("model kind {} is not known", show(s))).hint(format!("kinds: {}", names.join(", ")))
        })
    }

    pub fn as_str(self) -> &'static str {
        KINDS.iter().find(|k| k.0 == self).map_or("hybrid", |k| k.1)
    }

    /// Blend weights of a single-member kind: 1 for its member. A hybrid trained without
    /// evaluation gets fixed weights that favour the collaborative members.
    pub fn weights(self) -> [f32; 4] {
        match self {
            Kind::Hybrid => [0.1, 0.3, 0.1, 0.5],
            k => k.members().map(|m| if m { 1.0 } else { 0.0 }),
        }
    }

    /// Which members (in [`hybrid::MEMBERS`] order) the kind trains.
    pub fn members(self) -> [bool; 4] {
        match self {
            Kind::Popularity => [true, false, false, false],
            Kind::Cooccurrence => [false, true, false, false],
            Kind::Content => [false, false, true, false],
            Kind::Als => [false, false, false, true],
            Kind::Hybrid => [true; 4],
        }
    }
}

/// Training parameters; `from_json` documents each key and its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub als: als::Params,
    pub cooccurrence: cooccurrence::Params,
    pub content_dims: usize,
    /// event weights decay with this half-life (days); 0 = no decay
    pub half_life_days: f64,
    /// popularity's own half-life (days)
    pub popularity_half_life_days: f64,
    /// evaluate on a temporal holdout before the final fit
    pub evaluate: bool,
    pub holdout: f64,
    pub eval_users: usize,
    pub k: usize,
    /// after evaluating, train again on all data (otherwise keep the holdout-trained model)
    pub refit: bool,
    pub seed: u64,
    /// train on the last this many days of events; 0 = all (read by the SQL glue)
    pub window_days: f64,
    /// build HNSW indexes on the stored item vectors (SQL glue)
    pub hnsw: bool,
    /// the co-occurrence member also learns from each customer's whole history
    pub history_neighbors: bool,
    /// shrinkage of the history neighbours' cosine (customers a pair needs to count fully)
    pub history_shrinkage: f32,
    /// search the members' hyper-parameters on the holdout ([`super::tune`])
    pub tune: Tune,
    /// the search's time budget, seconds
    pub tune_budget_s: f64,
    /// a hybrid's blend: at most this many more blends served on the holdout, each a step (a
    /// tenth of the weight moved) from the best so far ([`evaluate_served`])
    pub blend_steps: usize,
    /// with `tune` auto, a search that ran this many hours ago or less is reused instead of run
    /// again (read by the SQL glue, [`reuses_search`]); 0 = search at every training
    pub retune_hours: f64,
    /// a hybrid's blend chosen before (the reused search's): served on the holdout as it is,
    /// instead of being chosen there. Set by the SQL glue, never a JSON key.
    pub blend: Option<[f32; 4]>,
    /// the keys the caller set (a search keeps them as given)
    pub given: Vec<String>,
}

/// Whether a training searches hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tune {
    Off,
    /// as much of the search as fits in the budget
    On,
    /// the whole search when the data is small enough for the budget ([`Tune::runs`]), else none
    Auto,
}

/// Whether a training with `p` reuses the search of the deployed model of its kind instead of
/// searching (the SQL glue then passes that model's values and blend, [`super::tune::reuse`] and
/// [`Params::blend`]): with `tune` "auto" only (`true` always searches, `false` never does),
/// with evaluation, and when that search ran `age_hours` ago, at most `retune_hours` (0: never).
/// `None`: no model of the kind is deployed, or none of its trainings searched.
pub fn reuses_search(p: &Params, age_hours: Option<f64>) -> bool {
    p.tune == Tune::Auto && p.evaluate && p.retune_hours > 0.0 && age_hours.is_some_and(|a| (0.0..=p.retune_hours).contains(&a))
}

/// Interactions × trials a search is assumed to get through per second of budget. Measured
/// before the ALS kernels of 2a67adc (an ALS fit and evaluation of the demo `medium` holdout,
/// 1.2 M interactions, took about 3 s on 2 threads; about 1 s since): a conservative figure, kept
/// so that `auto` decides as before (the decision depends on the data only, never on the machine).
pub const TUNE_RATE: f64 = 350_000.0;

impl Tune {
    /// Whether a search of `kind` over `interactions` customer–item pairs runs with this setting
    /// and budget: always when on; when auto, if interactions × the trials planned is at most
    /// [`TUNE_RATE`] × the budget (deterministic: the same data decides the same way on any
    /// machine). Never when the caller set every knob of `kind`'s members (`given`).
    pub fn runs(self, kind: Kind, given: &[String], interactions: usize, budget_s: f64) -> bool {
        let planned = super::tune::planned(kind, given);
        planned > 0
            && match self {
                Tune::On => true,
                Tune::Off => false,
                Tune::Auto => (interactions * planned) as f64 <= TUNE_RATE * budget_s,
            }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            als: als::Params::default(),
            cooccurrence: cooccurrence::Params::default(),
            content_dims: 64,
            half_life_days: 0.0,
            popularity_half_life_days: 30.0,
            evaluate: true,
            holdout: 0.2,
            eval_users: 5000,
            k: 10,
            refit: true,
            seed: 42,
            window_days: 0.0,
            hnsw: true,
            history_neighbors: true,
            history_shrinkage: 10.0,
            tune: Tune::Auto,
            tune_budget_s: 60.0,
            blend_steps: 8,
            retune_hours: 24.0,
            blend: None,
            given: Vec::new(),
        }
    }
}

/// Every accepted key: (name, what it is).
pub const PARAM_KEYS: [(&str, &str); 25] = [
    ("factors", "ALS latent factors (1..1024, default 64)"),
    ("regularization", "ALS L2 regularization (>= 0, default 0.05)"),
    ("alpha", "ALS confidence slope: c = 1 + alpha * weight (> 0, default 2)"),
    ("iterations", "ALS iterations (1..200, default 15)"),
    ("cg_steps", "conjugate-gradient steps per solve (1..20, default 3)"),
    ("min_support", "co-occurrence: baskets a pair needs (>= 1, default 2)"),
    ("neighbors", "co-occurrence: neighbours kept per item (1..1000, default 20)"),
    ("content_dims", "content: hashed feature dimensions (8..2000, default 64)"),
    ("half_life_days", "event weight half-life in days (>= 0, 0 = no decay; default 0)"),
    ("popularity_half_life_days", "popularity half-life in days (> 0, default 30)"),
    ("evaluate", "evaluate on a temporal holdout (default true; hybrid needs it to set its blend)"),
    ("holdout", "fraction of each customer's latest interactions held out (0.05..0.5, default 0.2)"),
    ("eval_users", "customers sampled for evaluation (100..1000000, default 5000)"),
    ("k", "evaluation cut-off (1..1000, default 10)"),
    ("refit", "train again on all data after evaluating (default true)"),
    ("seed", "random seed (default 42)"),
    ("report_loss", "compute the ALS loss each iteration for the progress NOTICEs (default true)"),
    ("window_days", "train on the last this many days of events (> 0), or 0 for all (default 0)"),
    ("hnsw", "build HNSW indexes on the stored item vectors (default true)"),
    ("history_neighbors", "co-occurrence: also learn from each customer's whole history, item-kNN (default true)"),
    ("history_shrinkage", "history neighbours: cosine shrinkage, customers a pair needs to count fully (>= 0, default 10)"),
    ("tune", "search hyper-parameters on the holdout: true, false, or \"auto\" (the default: when the whole search fits in tune_budget_s)"),
    ("tune_budget_s", "the search's time budget in seconds (1..86400, default 60)"),
    ("blend_steps", "hybrid: more blends served on the holdout, each a step from the best so far (0..100, default 8)"),
    (
        "retune_hours",
        "with tune \"auto\": reuse the deployed model's searched hyper-parameters and blend when its search ran at most this many hours ago (0..87600, default 24; 0 = search every time)",
    ),
];

fn num(v: &Value, key: &str, lo: f64, hi: f64) -> Result<f64> {
    let x = v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
        Error::invalid(format!("training parameter {key} must be a number, not {v}"))
            .at(format!("$.{key}"))
            .hint(format!("{key} takes a number between {lo} and {hi}"))
    })?;
    if !(lo..=hi).contains(&x) {
        return Err(Error::invalid(format!("training parameter {key} = {x} is out of range"))
            .at(format!("$.{key}"))
            .hint(format!("{key} must be between {lo} and {hi}")));
    }
    Ok(x)
}

fn int(v: &Value, key: &str, lo: f64, hi: f64) -> Result<usize> {
    let x = num(v, key, lo, hi)?;
    if x.fract() != 0.0 {
        return Err(Error::invalid(format!("training parameter {key} = {x} must be a whole number"))
            .at(format!("$.{key}"))
            .hint(format!("{key} takes a whole number between {lo} and {hi}")));
    }
    Ok(x as usize)
}

fn boolean(v: &Value, key: &str) -> Result<bool> {
    v.as_bool().ok_or_else(|| {
        Error::invalid(format!("training parameter {key} must be true or false, not {v}"))
            .at(format!("$.{key}"))
            .hint(format!("write {key} as a JSON boolean: true or false"))
    })
}

impl Params {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Params> {
        let mut p = Params { given: obj.keys().cloned().collect(), ..Params::default() };
        for (key, v) in obj {
            match key.as_str() {
                "factors" => p.als.factors = int(v, key, 1.0, 1024.0)?,
                "regularization" => p.als.regularization = num(v, key, 0.0, 1e6)? as f32,
                "alpha" => p.als.alpha = num(v, key, 1e-6, 1e6)? as f32,
                "iterations" => p.als.iterations = int(v, key, 1.0, 200.0)?,
                "cg_steps" => p.als.cg_steps = int(v, key, 1.0, 20.0)?,
                "min_support" => p.cooccurrence.min_support = int(v, key, 1.0, 1e9)? as u32,
                "neighbors" => p.cooccurrence.top_k = int(v, key, 1.0, 1000.0)?,
                "content_dims" => p.content_dims = int(v, key, 8.0, 2000.0)?,
                "half_life_days" => p.half_life_days = num(v, key, 0.0, 1e6)?,
                "popularity_half_life_days" => p.popularity_half_life_days = num(v, key, 1e-3, 1e6)?,
                "evaluate" => p.evaluate = boolean(v, key)?,
                "holdout" => p.holdout = num(v, key, 0.05, 0.5)?,
                "eval_users" => p.eval_users = int(v, key, 100.0, 1e6)?,
                "k" => p.k = int(v, key, 1.0, 1000.0)?,
                "refit" => p.refit = boolean(v, key)?,
                "seed" => {
                    p.seed = int(v, key, 0.0, 9.007e15)? as u64;
                    p.als.seed = p.seed;
                }
                "report_loss" => p.als.report_loss = boolean(v, key)?,
                "window_days" => p.window_days = num(v, key, 0.0, 1e6)?,
                "hnsw" => p.hnsw = boolean(v, key)?,
                "history_neighbors" => p.history_neighbors = boolean(v, key)?,
                "history_shrinkage" => p.history_shrinkage = num(v, key, 0.0, 1e6)? as f32,
                "tune" => {
                    p.tune = match v {
                        Value::Bool(true) => Tune::On,
                        Value::Bool(false) => Tune::Off,
                        Value::String(s) if s == "auto" => Tune::Auto,
                        other => {
                            return Err(Error::invalid(format!("training parameter tune must be true, false or \"auto\", not {other}"))
                                .at("$.tune")
                                .hint("write tune as a JSON boolean, or \"auto\""))
                        }
                    }
                }
                "tune_budget_s" => p.tune_budget_s = num(v, key, 1.0, 86_400.0)?,
                "blend_steps" => p.blend_steps = int(v, key, 0.0, 100.0)?,
                "retune_hours" => p.retune_hours = num(v, key, 0.0, 87_600.0)?,
                other => {
                    return Err(Error::invalid(format!("training parameter {} is not known", show(other)))
                        .at(format!("$.{other}"))
                        .hint(format!("parameters: {}", PARAM_KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", "))))
                }
            }
        }
        Ok(p)
    }

    /// The effective parameters, every key spelled out (stored with the model).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "factors": self.als.factors, "regularization": self.als.regularization, "alpha": self.als.alpha,
            "iterations": self.als.iterations, "cg_steps": self.als.cg_steps,
            "min_support": self.cooccurrence.min_support, "neighbors": self.cooccurrence.top_k,
            "content_dims": self.content_dims, "half_life_days": self.half_life_days,
            "popularity_half_life_days": self.popularity_half_life_days, "evaluate": self.evaluate,
            "holdout": self.holdout, "eval_users": self.eval_users, "k": self.k, "refit": self.refit,
            "seed": self.seed, "report_loss": self.als.report_loss, "window_days": self.window_days, "hnsw": self.hnsw,
            "history_neighbors": self.history_neighbors, "history_shrinkage": self.history_shrinkage,
            "tune": match self.tune { Tune::On => Value::Bool(true), Tune::Off => Value::Bool(false), Tune::Auto => Value::String("auto".into()) },
            "tune_budget_s": self.tune_budget_s, "blend_steps": self.blend_steps, "retune_hours": self.retune_hours,
        })
    }
}

/// The input beside the events: per item, its content features, a category index and a
/// product group index (variants share one; `NONE` for none).
#[derive(Debug, Clone, Default)]
pub struct TrainingItems {
    pub features: Vec<content::ItemFeatures>,
    pub category: Vec<u32>,
    pub group: Vec<u32>,
}

/// What a run produced. Neighbour lists: `basket` from orders, `session` from browsing.
#[derive(Debug, Clone, Default)]
pub struct Trained {
    pub als: Option<als::Model>,
    pub basket: Option<Vec<Vec<Neighbor>>>,
    pub session: Option<Vec<Vec<Neighbor>>>,
    /// item-to-item neighbours over each customer's whole history
    pub history: Option<Vec<Vec<Neighbor>>>,
    pub content: Option<Vec<f32>>,
    pub popularity: Option<popularity::Popularity>,
    pub weights: [f32; 4],
    /// the holdout's raw rankings (each member and the blend over the whole catalogue)
    pub report: Option<Report>,
    /// the holdout's served lists, when evaluated with a serving setup
    pub served: Option<ServedReport>,
    /// the hyper-parameter search, when one ran, and the parameters it chose (the ones trained)
    pub tuning: Option<(super::tune::Report, Params)>,
    pub n_train: usize,
    pub n_test: usize,
    pub nnz: usize,
    /// customers and items with a positive pair in the matrix the members were fitted on
    /// (the others have no learned vector)
    pub has_user: Vec<bool>,
    pub has_item: Vec<bool>,
}

impl Trained {
    /// The co-occurrence member's lists: basket, session and history neighbours merged ([`merge`]).
    pub fn merged_neighbors(&self, n_items: usize) -> Option<Vec<Vec<Neighbor>>> {
        let (b, s) = (self.basket.as_ref()?, self.session.as_ref()?);
        Some(merge(b, s, self.history.as_deref().unwrap_or(&[]), n_items))
    }
}

/// How much a neighbour counts in the co-occurrence member, by where it comes from: a session
/// pair (viewed in one visit) half a basket pair; a history pair (liked by the same customers,
/// a shrunk cosine in 0..1) as much as `HISTORY_WEIGHT` basket pairs.
pub const SESSION_WEIGHT: f32 = 0.5;
pub const HISTORY_WEIGHT: f32 = 1.0;

/// Basket, session and history neighbours merged, scores summed with [`SESSION_WEIGHT`] and
/// [`HISTORY_WEIGHT`]; each list stays in the basket list's order, then new items.
pub fn merge(b: &[Vec<Neighbor>], s: &[Vec<Neighbor>], h: &[Vec<Neighbor>], n_items: usize) -> Vec<Vec<Neighbor>> {
    (0..n_items)
        .map(|i| {
            let mut v: Vec<Neighbor> = b.get(i).cloned().unwrap_or_default();
            for (lists, w) in [(s, SESSION_WEIGHT), (h, HISTORY_WEIGHT)] {
                for n in lists.get(i).map(Vec::as_slice).unwrap_or(&[]) {
                    match v.iter_mut().find(|x| x.item == n.item) {
                        Some(x) => x.score += w * n.score,
                        None => v.push(Neighbor { score: w * n.score, ..*n }),
                    }
                }
            }
            v
        })
        .collect()
}

/// What `reco.recommend` would have served on the holdout (see [`offline`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedReport {
    /// per member (in [`hybrid::MEMBERS`] order) served alone, when trained (none when the blend
    /// was given, [`Params::blend`])
    pub members: [Option<Summary>; 4],
    /// the model's own served list: the chosen blend, for a hybrid
    pub model: Summary,
    /// every blend tried on the served list, with its NDCG@k, in the order tried
    pub tried: Vec<([f32; 4], f64)>,
    /// where in `tried` the climb's steps begin (the members alone and the raw grid's best
    /// blends come before)
    pub climb_from: usize,
}

/// Which members `t` holds, in [`hybrid::MEMBERS`] order.
fn trained_members(t: &Trained) -> [bool; 4] {
    [t.popularity.is_some(), t.basket.is_some(), t.content.is_some(), t.als.is_some()]
}

/// Serves the holdout's customers from the model `t` trained on its training side: each member
/// alone, and for a hybrid the grid's best blends (`raw.best`); the blend with the best served
/// NDCG@k wins (ties: the better raw one), and since each member alone is among those tried, the
/// hybrid served is never below its best member served.
#[allow(clippy::too_many_arguments)]
fn evaluate_served(
    ds: &Dataset,
    h: &super::dataset::Holdout,
    set: &hybrid::EvalSet,
    t: &Trained,
    items: &TrainingItems,
    kind: Kind,
    raw: &Report,
    p: &Params,
    setup: &Setup,
    exec: Exec,
) -> ([f32; 4], ServedReport) {
    let end = h.train.iter().map(|&i| ds.events[i].at).max().unwrap_or(0);
    let mut m = offline::model(t, items, setup.item_ids, p, kind.weights(), end);
    let stored = |u: u32| t.als.as_ref().filter(|_| t.has_user.get(u as usize) == Some(&true)).map(|a| a.user_vec(u as usize).to_vec());
    let mut tried: Vec<([f32; 4], f64)> = Vec::new();
    let truth: Vec<std::collections::HashSet<u32>> = set.truth.iter().map(|t| t.iter().copied().collect()).collect();
    // a blend served: its summary, and each evaluated customer's NDCG@k (for paired comparisons)
    let mut served = |w: [f32; 4], tried: &mut Vec<([f32; 4], f64)>| -> (Summary, Vec<f64>) {
        m.weights = w;
        let lists = offline::served_lists(&m, ds, h, set, &stored, setup, p.k, exec);
        let s = offline::summarize(&lists, set, p.k, ds.n_items, &items.category);
        let each = lists.iter().zip(&truth).filter_map(|(l, t)| crate::eval::score(l, t, p.k)).map(|x| x.ndcg).collect();
        tried.push((w, s.ndcg));
        (s, each)
    };
    let present = trained_members(t);
    // a blend chosen before (a reused search's): served as it is, the one evaluation of the run,
    // when every member it weighs was trained
    if let Some(w) = p.blend.filter(|w| kind == Kind::Hybrid && (0..4).all(|i| w[i] == 0.0 || present[i])) {
        let (model, _) = served(w, &mut tried);
        return (w, ServedReport { members: [None; 4], model, tried, climb_from: 1 });
    }
    let alone: [Option<(Summary, Vec<f64>)>; 4] =
        std::array::from_fn(|mi| present[mi].then(|| served(std::array::from_fn(|j| if j == mi { 1.0 } else { 0.0 }), &mut tried)));
    let members: [Option<Summary>; 4] = std::array::from_fn(|mi| alone[mi].as_ref().map(|x| x.0));
    if kind != Kind::Hybrid {
        let own = members.iter().flatten().next().copied().unwrap_or_default();
        let climb_from = tried.len();
        return (kind.weights(), ServedReport { members, model: own, tried, climb_from });
    }
    let mut results: Vec<([f32; 4], Summary, Vec<f64>)> = Vec::new();
    for (w, _) in &raw.best {
        if !tried.iter().any(|(x, _)| x == w) {
            let (s, each) = served(*w, &mut tried);
            results.push((*w, s, each));
        }
    }
    // the members alone after the blends: a tie goes to the blend the raw grid preferred
    for (mi, a) in alone.into_iter().enumerate() {
        if let Some((s, each)) = a {
            results.push((std::array::from_fn(|j| if j == mi { 1.0 } else { 0.0 }), s, each));
        }
    }
    let mut best = 0;
    for (i, r) in results.iter().enumerate() {
        if r.1.ndcg > results[best].1.ndcg + 1e-12 {
            best = i;
        }
    }
    // The raw grid ranks blends by what serving changes (seen items, variants, diversity), so
    // the served optimum can lie next to its best few: climb from the best served so far, one
    // step at a time, taking the first step that serves clearly better (by CLIMB_Z standard
    // errors of the customers' paired gains: a step that wins by noise would not carry over to
    // customers outside the sample), for at most blend_steps blends.
    let served_alone: [f64; 4] = std::array::from_fn(|mi| members[mi].map_or(f64::NEG_INFINITY, |s| s.ndcg));
    let climb_from = tried.len();
    let mut left = p.blend_steps;
    while left > 0 && !results.is_empty() && !exec.cancelled() {
        let mut moved = false;
        for w in steps_from(results[best].0, &served_alone) {
            if tried.iter().any(|(x, _)| *x == w) {
                continue;
            }
            if left == 0 || exec.cancelled() {
                break;
            }
            left -= 1;
            let (s, each) = served(w, &mut tried);
            let gain = clear_gain(&each, &results[best].2);
            results.push((w, s, each));
            if gain {
                best = results.len() - 1;
                moved = true;
                break;
            }
        }
        if !moved {
            break;
        }
    }
    let (w, model) = results.get(best).map_or((raw.weights, raw.hybrid), |r| (r.0, r.1));
    (w, ServedReport { members, model, tried, climb_from })
}

/// How many standard errors of the mean a climbing step's gain per customer must reach: one-sided
/// 95%. Measured: the step taken on the demo `medium` (tuned) reached 2.04; the MovieLens 100K
/// step that served 0.1650 against 0.1649 on training's holdout, 0.098, and it served 0.1722
/// against 0.1756 on the customers' later ratings (docs/benchmarks.md).
pub const CLIMB_Z: f64 = 1.64;

/// Whether `new` (each customer's NDCG@k) beats `best` (the same customers') by a mean gain of
/// at least [`CLIMB_Z`] standard errors of the paired differences (and by more than nothing).
fn clear_gain(new: &[f64], best: &[f64]) -> bool {
    let n = new.len().min(best.len());
    if n < 2 {
        return false;
    }
    let d: Vec<f64> = new.iter().zip(best).map(|(a, b)| a - b).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    let z = mean / (var / n as f64).sqrt().max(1e-12);
    mean > 1e-12 && z >= CLIMB_Z
}

/// The blends one step from `w`: a tenth of the weight (the step of [`hybrid::grid`], whose
/// values these are exactly) moved from one member to another (members with a score served
/// alone in `served_alone`; the others are absent). In the order a search tries them: towards
/// the member that serves best alone first, and from the one that serves worst.
fn steps_from(w: [f32; 4], served_alone: &[f64; 4]) -> Vec<[f32; 4]> {
    let mut by_score: Vec<usize> = (0..4).filter(|&m| served_alone[m].is_finite()).collect();
    by_score.sort_by(|&a, &b| served_alone[b].total_cmp(&served_alone[a]).then(a.cmp(&b)));
    let tenths = w.map(|x| (x * 10.0).round() as i32);
    let mut out = Vec::new();
    for &to in &by_score {
        for &from in by_score.iter().rev() {
            if from != to && tenths[from] >= 1 {
                let mut t = tenths;
                t[from] -= 1;
                t[to] += 1;
                out.push(t.map(|x| x as f32 / 10.0));
            }
        }
    }
    out
}

/// `ds` with each event's weight halved every `half_life_days` of age at `end_us`
/// (microseconds); `ds` itself (no copy) when the half-life is 0.
pub fn decayed(ds: &Dataset, end_us: i64, half_life_days: f64) -> std::borrow::Cow<'_, Dataset> {
    if half_life_days <= 0.0 || !half_life_days.is_finite() {
        return std::borrow::Cow::Borrowed(ds);
    }
    let mut d = ds.clone();
    d.decay(end_us, half_life_days * 86_400_000_000.0);
    std::borrow::Cow::Owned(d)
}

/// Progress reports, on the calling thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Phase(&'static str),
    Iteration {
        phase: &'static str,
        iteration: usize,
        of: usize,
        loss: Option<f64>,
    },
    /// a hyper-parameter trial, and whether it is the best so far
    Trial {
        trial: super::tune::Trial,
        best: bool,
    },
}

#[allow(clippy::too_many_arguments)]
/// Fits the members of `kind` on the events `idx` (all when None), whose matrix is `m`.
pub(super) fn fit<E>(
    ds: &Dataset,
    idx: Option<&[usize]>,
    m: &Csr,
    items: &TrainingItems,
    end_us: i64,
    kind: Kind,
    p: &Params,
    phase: &'static str,
    exec: Exec,
    progress: &mut impl FnMut(Step) -> std::result::Result<(), E>,
) -> std::result::Result<Trained, E> {
    let want = kind.members();
    let mut t = Trained { nnz: m.nnz(), has_user: (0..m.rows).map(|u| m.indptr[u + 1] > m.indptr[u]).collect(), ..Default::default() };
    t.has_item = vec![false; m.cols];
    for &i in &m.indices {
        t.has_item[i as usize] = true;
    }
    if want[0] {
        progress(Step::Phase("popularity"))?;
        let mut all = Vec::new();
        let idx = ds.chosen(idx, &mut all);
        let xs: Vec<popularity::Interaction> = idx
            .iter()
            .map(|&i| ds.events[i])
            .filter(|e| e.weight > 0.0)
            .map(|e| popularity::Interaction { item: e.item, weight: e.weight, at_ms: (e.at + PG_EPOCH_US) / 1000 })
            .collect();
        t.popularity = Some(popularity::train(&xs, ds.n_items, (end_us + PG_EPOCH_US) / 1000, p.popularity_half_life_days));
    }
    if want[1] {
        progress(Step::Phase("cooccurrence"))?;
        t.basket = Some(cooccurrence::train(&ds.groups(idx, |e| e.basket), &items.category, p.cooccurrence));
        t.session = Some(cooccurrence::train(&ds.groups(idx, |e| e.session), &items.category, p.cooccurrence));
        if p.history_neighbors {
            t.history = Some(cooccurrence::train_histories(&ds.groups(idx, |e| e.user), &items.category, p.cooccurrence, p.history_shrinkage, exec));
        }
    }
    if want[2] {
        progress(Step::Phase("content"))?;
        t.content = Some(content::vectors(&items.features, p.content_dims));
    }
    if want[3] {
        progress(Step::Phase(phase))?;
        let n = p.als.iterations;
        t.als = Some(als::train(m, &p.als, exec, |pr| progress(Step::Iteration { phase, iteration: pr.iteration, of: n, loss: pr.loss }))?);
    }
    Ok(t)
}

/// Trains `kind` on `ds`. With `p.evaluate`, members are first trained on the temporal
/// holdout's training side and evaluated: their raw rankings, and with a serving `setup` the
/// lists `reco.recommend` would serve ([`evaluate_served`]), on which the hybrid's blend is then
/// chosen (else on the raw rankings). With `p.refit`, they are then trained again on
/// everything. `end_us` is the data's end (PostgreSQL microseconds), the reference for decay.
#[allow(clippy::too_many_arguments)]
pub fn train<E>(
    ds: &Dataset,
    items: &TrainingItems,
    end_us: i64,
    kind: Kind,
    p: &Params,
    setup: Option<&Setup>,
    exec: Exec,
    mut progress: impl FnMut(Step) -> std::result::Result<(), E>,
) -> std::result::Result<Trained, E> {
    let decayed = decayed(ds, end_us, p.half_life_days);
    let ds: &Dataset = &decayed;
    let mut tuning = None;
    let (weights, report, served, n_train, n_test) = if p.evaluate {
        progress(Step::Phase("holdout split"))?;
        let h = ds.holdout(p.holdout);
        let train_m = ds.matrix(Some(&h.train));
        let test_m = ds.matrix(Some(&h.test));
        let set = hybrid::eval_set(&train_m, &test_m, p.eval_users, p.seed);
        if p.tune.runs(kind, &p.given, train_m.nnz(), p.tune_budget_s) {
            progress(Step::Phase("tuning"))?;
            let split = super::tune::Split { ds, h: &h, train: &train_m, set: &set, items, end_us };
            let (q, r) = super::tune::search(&split, kind, p, p.tune_budget_s, exec, |t, best| progress(Step::Trial { trial: t.clone(), best }))?;
            tuning = Some((r, q));
        }
        let p = tuning.as_ref().map_or(p, |t| &t.1);
        let on_split = fit(ds, Some(&h.train), &train_m, items, end_us, kind, p, "als (holdout)", exec, &mut progress)?;
        progress(Step::Phase("evaluation"))?;
        let merged = on_split.merged_neighbors(ds.n_items);
        let members = Members {
            popularity: on_split.popularity.as_ref().map(|x| &x.score[..]),
            cooccurrence: merged.as_deref(),
            content: on_split.content.as_deref().map(|v| (v, p.content_dims)),
            als: on_split.als.as_ref(),
        };
        let r = hybrid::evaluate(&train_m, &set, &members, p.k, exec);
        let (w, served) = match setup {
            Some(setup) => {
                progress(Step::Phase("evaluation of the served lists"))?;
                let (w, s) = evaluate_served(ds, &h, &set, &on_split, items, kind, &r, p, setup, exec);
                (w, Some(s))
            }
            None => (if kind == Kind::Hybrid { p.blend.unwrap_or(r.weights) } else { kind.weights() }, None),
        };
        if !p.refit {
            return Ok(Trained { weights: w, report: Some(r), served, tuning, n_train: h.train.len(), n_test: h.test.len(), ..on_split });
        }
        (w, Some(r), served, h.train.len(), h.test.len())
    } else {
        (kind.weights(), None, None, ds.events.len(), 0)
    };
    let p = tuning.as_ref().map_or(p, |t| &t.1);
    let mut t = fit(ds, None, &ds.matrix(None), items, end_us, kind, p, "als", exec, &mut progress)?;
    t.tuning = tuning;
    t.weights = weights;
    t.report = report;
    t.served = served;
    t.n_train = n_train;
    t.n_test = n_test;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NONE;
    use serde_json::json;

    #[test]
    fn a_blend_step_moves_a_tenth_towards_the_best_member_first_and_never_to_an_absent_one() {
        let alone = [0.04, 0.066, f64::NEG_INFINITY, 0.038];
        let steps = steps_from([0.3, 0.4, 0.0, 0.3], &alone);
        // towards co-occurrence (best alone) first, from ALS (worst with weight) first
        assert_eq!(steps[0], [0.3, 0.5, 0.0, 0.2]);
        assert_eq!(steps[1], [0.2, 0.5, 0.0, 0.3]);
        assert_eq!(steps.len(), 6, "3 members present, each to each: {steps:?}");
        assert!(steps.iter().all(|w| w[2] == 0.0 && (w.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        let grid = crate::models::hybrid::grid([true, true, false, true]);
        assert!(steps.iter().all(|w| grid.contains(w)), "on the grid: {steps:?}");
        // a member at 0 gives nothing; a member alone only gives
        assert_eq!(steps_from([0.0, 1.0, 0.0, 0.0], &alone), vec![[0.1, 0.9, 0.0, 0.0], [0.0, 0.9, 0.0, 0.1]]);
    }

    #[test]
    fn a_step_is_taken_on_a_clear_paired_gain_only() {
        let best: Vec<f64> = (0..1000).map(|u| if u % 7 == 0 { 1.0 } else { 0.0 }).collect();
        assert!(!clear_gain(&best, &best), "no gain");
        let all_up: Vec<f64> = best.iter().map(|x| x + 0.01).collect();
        assert!(clear_gain(&all_up, &best), "every customer a little better");
        // one customer more found, among a thousand: a mean gain of 0.001, one standard error
        let mut one = best.clone();
        one[1] = 1.0;
        assert!(!clear_gain(&one, &best), "a single customer is noise");
        // thirty more found and ten lost: +0.02 on average, about 3 standard errors
        let mut many = best.clone();
        (1..=30).for_each(|u| many[u * 7 + 1] = 1.0);
        (1..=10).for_each(|u| many[u * 7] = 0.0);
        assert!(clear_gain(&many, &best));
        assert!(!clear_gain(&best, &many), "and not the other way round");
        assert!(!clear_gain(&[1.0], &[0.0]), "one customer decides nothing");
    }

    #[test]
    fn a_search_is_reused_with_tune_auto_within_retune_hours_only() {
        let auto = Params::default();
        assert!(reuses_search(&auto, Some(0.0)) && reuses_search(&auto, Some(23.9)) && reuses_search(&auto, Some(24.0)));
        assert!(!reuses_search(&auto, Some(24.1)), "older than retune_hours: search again");
        assert!(!reuses_search(&auto, None), "nothing deployed, or it searched nothing");
        assert!(!reuses_search(&auto, Some(-1.0)), "a search from the future (a clock set back) is not trusted");
        assert!(!reuses_search(&Params { tune: Tune::On, ..auto.clone() }, Some(1.0)), "true always searches");
        assert!(!reuses_search(&Params { tune: Tune::Off, ..auto.clone() }, Some(1.0)), "false never does, nor reuses");
        assert!(!reuses_search(&Params { evaluate: false, ..auto.clone() }, Some(1.0)), "no holdout, no blend to keep");
        assert!(!reuses_search(&Params { retune_hours: 0.0, ..auto.clone() }, Some(0.0)), "0: search every time");
        let p = Params::from_json(json!({"retune_hours": 168}).as_object().unwrap()).unwrap();
        assert!(reuses_search(&p, Some(100.0)));
        assert!(Params::from_json(json!({"retune_hours": -1}).as_object().unwrap()).unwrap_err().message.contains("retune_hours"));
        assert!(Params::from_json(json!({"retune_hours": "1 day"}).as_object().unwrap()).is_err());
    }

    #[test]
    fn the_event_half_life_halves_old_events() {
        let ev = |at: i64| crate::models::dataset::Event { user: 0, item: 0, weight: 8.0, at, basket: NONE, session: NONE, kind: 0, value: f32::NAN };
        let day = 86_400_000_000i64;
        let ds = Dataset { n_users: 1, n_items: 1, events: vec![ev(0), ev(30 * day)], kinds: vec!["purchase".into()] };
        let d = decayed(&ds, 30 * day, 30.0);
        assert_eq!((d.events[0].weight, d.events[1].weight), (4.0, 8.0), "a 30-day-old event counts half");
        assert!(matches!(decayed(&ds, 30 * day, 0.0), std::borrow::Cow::Borrowed(_)), "no half-life: no copy");
    }

    #[test]
    fn params_parse_with_errors_that_name_the_key() {
        let p = Params::from_json(json!({"factors": 32, "alpha": 4, "evaluate": false}).as_object().unwrap()).unwrap();
        assert_eq!((p.als.factors, p.als.alpha, p.evaluate), (32, 4.0, false));
        let e = Params::from_json(json!({"factor": 32}).as_object().unwrap()).unwrap_err();
        assert!(e.message.contains("factor") && e.hint.unwrap().contains("factors"));
        let e = Params::from_json(json!({"factors": 0}).as_object().unwrap()).unwrap_err();
        assert!(e.message.contains("factors = 0"), "{}", e.message);
        assert!(Params::from_json(json!({"factors": 1.5}).as_object().unwrap()).is_err());
        assert!(Params::from_json(json!({"refit": "yes"}).as_object().unwrap()).is_err());
        let mut q = Params::from_json(Params::default().to_json().as_object().unwrap()).unwrap();
        assert_eq!(q.given.len(), PARAM_KEYS.len(), "every key is spelled out, and recorded as given");
        q.given.clear();
        assert_eq!(q, Params::default());
        assert!(Tune::Auto.runs(Kind::Hybrid, &[], 15_000, 60.0) && !Tune::Auto.runs(Kind::Hybrid, &[], 1_200_000, 60.0));
        assert!(Tune::On.runs(Kind::Hybrid, &[], 1_200_000, 1.0) && !Tune::Off.runs(Kind::Als, &[], 10, 60.0));
        // with every ALS knob set there is nothing to search: auto does not start one
        let all: Vec<String> = ["factors", "regularization", "alpha", "iterations"].map(String::from).to_vec();
        assert_eq!(super::super::tune::planned(Kind::Als, &all), 0);
        assert!(Tune::Auto.runs(Kind::Als, &all[1..], 1_000, 60.0) && !Tune::Auto.runs(Kind::Als, &all, 1_000, 60.0));
        let p = Params::from_json(json!({"tune": true, "tune_budget_s": 30}).as_object().unwrap()).unwrap();
        assert_eq!((p.tune, p.tune_budget_s), (Tune::On, 30.0));
        assert_eq!(Params::from_json(json!({"tune": "auto"}).as_object().unwrap()).unwrap().tune, Tune::Auto);
        assert!(Params::from_json(json!({"tune": "yes"}).as_object().unwrap()).unwrap_err().hint.unwrap().contains("auto"));
        assert!(Params::from_json(json!({"tune_budget_s": 0}).as_object().unwrap()).is_err());
        assert!(Kind::parse("svd").unwrap_err().hint.unwrap().contains("hybrid"));
    }
}
