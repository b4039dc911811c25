//! reco.train and reco.evaluate: read the canonical model in one snapshot, train in
//! `reco_engine::models`, store what the model needs for scoring. NOTICEs report progress.
//! One file per phase: `read`, `run`, `store`; the SQL functions are here.
mod read;
mod run;
mod store;

use read::*;
use run::*;
use store::*;

use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use crate::vector;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use reco_engine::eval::Summary;
use reco_engine::models::budget::{self, Shape};
use reco_engine::models::content::ItemFeatures;
use reco_engine::models::dataset::{contribution, Dataset, Event, Interner, NONE};
use reco_engine::models::hybrid::MEMBERS;
use reco_engine::models::linalg::Exec;
use reco_engine::models::pipeline::{self, Kind, Params, Step, Trained, TrainingItems};
use reco_engine::serve::offline::Setup;
use reco_engine::{Error, ErrorKind};
use serde_json::{json, Map, Value};
use std::time::Instant;

fn summary_json(s: &Summary) -> Value {
    let r = |x: f64| (x * 1e6).round() / 1e6;
    let mut j = json!({"ndcg": r(s.ndcg), "recall": r(s.recall), "hit_rate": r(s.hit_rate), "map": r(s.map), "coverage": r(s.coverage), "users": s.users});
    // served lists only: the mean distinct categories of a list's top k
    if s.categories > 0.0 {
        j["categories_per_list"] = json!(r(s.categories));
    }
    j
}

/// The metrics of a run: its own kind's served list at top level (what `reco.recommend` would
/// have returned on the holdout), the raw ranking under `raw`, and for a hybrid each member's,
/// served and raw, under `members`.
fn metrics_json(kind: Kind, t: &Trained, p: &Params) -> Option<Value> {
    let rep = t.report.as_ref()?;
    let raw = if kind == Kind::Hybrid { rep.hybrid } else { rep.members.iter().flatten().next().copied().unwrap_or_default() };
    let mut m = match &t.served {
        Some(s) => summary_json(&s.model),
        None => summary_json(&raw),
    };
    let o = m.as_object_mut()?;
    o.insert("raw".into(), summary_json(&raw));
    o.insert("k".into(), json!(p.k));
    o.insert("holdout".into(), json!(p.holdout));
    o.insert("train_events".into(), json!(t.n_train));
    o.insert("test_events".into(), json!(t.n_test));
    if let Some((r, chosen)) = &t.tuning {
        o.insert("tuning".into(), r.to_json(chosen));
    }
    if kind == Kind::Hybrid {
        o.insert("members".into(), Value::Object(members_json(rep, t.served.as_ref())));
        if let Some(s) = &t.served {
            let tried: Vec<Value> = s
                .tried
                .iter()
                .enumerate()
                .map(|(n, (w, ndcg))| json!({"blend": blend_json(w), "ndcg": (ndcg * 1e6).round() / 1e6, "step": n >= s.climb_from}))
                .collect();
            o.insert("blends_tried".into(), Value::Array(tried));
        }
    }
    Some(m)
}

/// Each member's metrics: served (when evaluated so) with the raw ranking under `raw`.
fn members_json(rep: &reco_engine::models::hybrid::Report, served: Option<&pipeline::ServedReport>) -> Map<String, Value> {
    MEMBERS
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let raw = rep.members[i].as_ref()?;
            let mut v = match served.and_then(|s| s.members[i].as_ref()) {
                Some(s) => summary_json(s),
                None => summary_json(raw),
            };
            v["raw"] = summary_json(raw);
            Some((n.to_string(), v))
        })
        .collect()
}

fn blend_json(w: &[f32; 4]) -> Value {
    Value::Object(MEMBERS.iter().zip(w).map(|(n, w)| (n.to_string(), json!((f64::from(*w) * 1000.0).round() / 1000.0))).collect())
}

fn parse_params(params: Option<Payload>) -> (Params, Value) {
    let (p, _) = parse_object(params);
    let effective = p.to_json();
    (p, effective)
}

fn parse_object(params: Option<Payload>) -> (Params, Map<String, Value>) {
    let o = Payload::object_arg(params, "params", r#"{"factors": 64, "iterations": 15}"#);
    (Params::from_json(&o).or_raise(), o)
}

/// A search reused: the deployed model that ran it (or reused it in turn), when it ran, and how
/// many hours before this training.
struct Reused {
    from: i64,
    searched_at: String,
    age_hours: f64,
}

/// With `tune` "auto", the search of the deployed model of `kind` when it ran at most
/// `retune_hours` ago (reco_engine::models::pipeline::reuses_search): `p` again with that
/// model's values for the knobs `caller` left unset, and its blend. A scheduled retrain then
/// fits what the last search found instead of searching and choosing the blend again.
fn reuse_search(kind: Kind, caller: &Map<String, Value>, p: Params) -> (Params, Option<Reused>) {
    if !pipeline::reuses_search(&p, Some(0.0)) {
        return (p, None);
    }
    // the search ran in the training of the model that reports it (its finished_at, written by
    // the training backend on the clock now() reads here), or that model reused an earlier one
    // (searched_at); read as text and parsed here, so that a value someone wrote by hand that is
    // no timestamp means a search, not a failed training
    let row = Spi::connect(|c| {
        let r = c
            .select(
                "SELECT model_id, params, blend, metrics->'tuning'->>'searched_at', to_jsonb(finished_at) #>> '{}', to_jsonb(now()) #>> '{}'
                   FROM reco.models WHERE status = 'deployed' AND kind = $1 AND metrics ? 'tuning'",
                None,
                &[DatumWithOid::from(kind.as_str())],
            )
            .or_raise();
        r.into_iter()
            .map(|r| {
                (
                    r.get::<i64>(1).or_raise().unwrap_or(0),
                    r.get::<pgrx::JsonB>(2).or_raise().map(|j| j.0),
                    r.get::<pgrx::JsonB>(3).or_raise().map(|j| j.0),
                    r.get::<String>(4).or_raise().or(r.get::<String>(5).or_raise()),
                    r.get::<String>(6).or_raise().unwrap_or_default(),
                )
            })
            .next()
    });
    let Some((from, Some(Value::Object(searched)), blend, searched_at, now)) = row else { return (p, None) };
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    let (Some(then), Some(now)) = (searched_at.as_deref().and_then(at), at(&now)) else {
        pgrx::warning!(
            "the deployed {} model's search time {} is not a timestamp: searching again",
            kind.as_str(),
            searched_at.as_deref().map_or("(none)".into(), |s| format!("'{s}'"))
        );
        return (p, None);
    };
    let age_hours = (now - then).num_milliseconds() as f64 / 3_600_000.0;
    if !pipeline::reuses_search(&p, Some(age_hours)) {
        return (p, None);
    }
    let mut q = match Params::from_json(&reco_engine::models::tune::reuse(kind, caller, &searched)) {
        Ok(q) => q,
        Err(e) => {
            pgrx::warning!("the deployed {} model's parameters (model {from}) cannot be reused ({e}): searching again", kind.as_str());
            return (p, None);
        }
    };
    if kind == Kind::Hybrid {
        let w = |m: &str| blend.as_ref().and_then(|b| b.get(m)).and_then(Value::as_f64).map(|x| x as f32);
        q.blend = MEMBERS.iter().map(|m| w(m)).collect::<Option<Vec<f32>>>().and_then(|v| <[f32; 4]>::try_from(v).ok());
    }
    (q, Some(Reused { from, searched_at: searched_at.unwrap_or_default(), age_hours }))
}

/// Trains a model of `kind` with `params` (see docs/reference.md for every key) and returns its
/// id. The model is `ready`, not deployed: compare it with `reco.models.metrics`, then
/// `reco.deploy`. Progress comes as NOTICEs.
#[pg_extern(volatile)]
fn train(kind: default!(Option<&str>, "'hybrid'"), params: default!(Option<Payload>, "'{}'")) -> i64 {
    crate::api::citus_one_connection_per_node();
    let kind =
        Kind::parse(crate::api::required(kind, "kind", "pass a value: hybrid, als, cooccurrence, content, popularity")).map_err(|e| e.at("kind")).or_raise();
    let (p, caller) = parse_object(params);
    let (p, reused) = reuse_search(kind, &caller, p);
    let effective = p.to_json();
    // refused before anything is recorded when it would not fit
    let estimate = crate::api::budget::check(&format!("reco.train('{}')", kind.as_str()), &budget::training(shape(p.window_days), kind, &p, threads()));
    let started = Instant::now();
    // while it yields, the backend's own thread too asks for the longest slice (src/api/sched.rs)
    let _slice = crate::api::sched::LongSlice::new(crate::gucs::TRAINING_NICE.get() > 0);
    crate::api::registry::reap_orphans();
    let model_id: i64 = Spi::get_one("SELECT nextval('reco.models_model_id_seq')").or_raise().unwrap_or(0);
    crate::api::registry::lock(model_id);
    let own_row = crate::api::registry::open(model_id, kind.as_str(), &effective.to_string());
    let label = format!("train {} model {model_id}", kind.as_str());
    let result = in_subtransaction(|| {
        let (rss0, _) = memory(true);
        let mut progress = notices(&label, started);
        progress(&estimate);
        if let Some(r) = &reused {
            progress(&format!(
                "reusing the hyper-parameters and blend of model {} (searched {:.1} h ago; a search runs again after retune_hours, {})",
                r.from, r.age_hours, p.retune_hours
            ));
        }
        let l = load(p.window_days, &mut progress);
        if l.ds.events.is_empty() {
            raise(
                Error::new(ErrorKind::NotInPrerequisiteState, "there are no events to train on")
                    .hint("ingest orders and events first (reco.ingest_orders, reco.record_event), or reco.load_demo() to try pg_reco"),
            );
        }
        let t = run(&l, kind, &p, started, &label);
        // what trained: the search's choice when one ran
        let p = t.tuning.as_ref().map_or(p.clone(), |x| x.1.clone());
        let effective = p.to_json();
        store(model_id, &l, &t, &p, &mut progress);
        // (not on SQL from before the forecast, ahead of ALTER EXTENSION UPDATE)
        if crate::api::has_demand() {
            progress("forecasting demand");
            let forecast = crate::api::demand::store(model_id);
            progress(&format!("demand forecast for {forecast} items"));
        }
        let (_, peak) = memory(false);
        let mut metrics = metrics_json(kind, &t, &p);
        if let (Some(r), Some(Value::Object(o))) = (&reused, metrics.as_mut()) {
            let values = reco_engine::models::tune::reuse(kind, &Map::new(), p.to_json().as_object().unwrap_or(&Map::new()));
            o.insert("tuning".into(), json!({"reused_from": r.from, "searched_at": r.searched_at, "chosen": values}));
        }
        Spi::run_with_args(
            "UPDATE reco.models SET status = 'ready', params = $2, data_from = $3, data_to = $4, n_customers = $5, n_items = $6,
                    n_events = $7, n_interactions = $8, train_seconds = $9, peak_memory_bytes = $10, metrics = $11, blend = $12,
                    finished_at = $13
              WHERE model_id = $1",
            &[
                DatumWithOid::from(model_id),
                DatumWithOid::from(pgrx::JsonB(effective.clone())),
                DatumWithOid::from(l.data_from.map(crate::api::timestamptz)),
                DatumWithOid::from(l.data_to.map(crate::api::timestamptz)),
                DatumWithOid::from(l.ds.n_users as i64),
                DatumWithOid::from(l.ds.n_items as i64),
                DatumWithOid::from(l.ds.events.len() as i64),
                DatumWithOid::from(t.nnz as i64),
                DatumWithOid::from(started.elapsed().as_secs_f64()),
                DatumWithOid::from((peak - rss0).max(0)),
                DatumWithOid::from(metrics.clone().map(pgrx::JsonB)),
                DatumWithOid::from(pgrx::JsonB(blend_json(&t.weights))),
                // a value, not clock_timestamp() in the statement: Citus refuses volatile
                // functions in an UPDATE of a reference table
                DatumWithOid::from(Spi::get_one::<pgrx::datum::TimestampWithTimeZone>("SELECT pg_catalog.clock_timestamp()").or_raise()),
            ],
        )
        .or_raise();
        if let Some(m) = metrics {
            pgrx::notice!(
                "{label}: ready in {:.1}s; holdout ndcg@{} {} served ({} raw), recall@{} {} served",
                started.elapsed().as_secs_f64(),
                p.k,
                m["ndcg"],
                m["raw"]["ndcg"],
                p.k,
                m["recall"]
            );
        }
    });
    match result {
        Ok(()) => model_id,
        Err(e) => {
            if own_row {
                crate::api::registry::fail(model_id, &error_text(&e));
            }
            (*e).rethrow()
        }
    }
}

/// Compares every model kind on a temporal holdout without storing anything: popularity,
/// cooccurrence, content, als and their hybrid blend, with NDCG@k, recall@k, hit rate@k, MAP@k
/// and coverage. Takes the same params as `reco.train`.
#[pg_extern(stable)]
fn evaluate(params: default!(Option<Payload>, "'{}'")) -> JsonbText {
    let (mut p, effective) = parse_params(params);
    p.evaluate = true;
    p.refit = false;
    let estimate = crate::api::budget::check("reco.evaluate()", &budget::training(shape(p.window_days), Kind::Hybrid, &p, threads()));
    let started = Instant::now();
    // while it yields, the backend's own thread too asks for the longest slice (src/api/sched.rs)
    let _slice = crate::api::sched::LongSlice::new(crate::gucs::TRAINING_NICE.get() > 0);
    let mut progress = notices("evaluate", started);
    progress(&estimate);
    let l = load(p.window_days, &mut progress);
    if l.ds.events.is_empty() {
        raise(Error::new(ErrorKind::NotInPrerequisiteState, "there are no events to evaluate on").hint("ingest orders and events first"));
    }
    let t = run(&l, Kind::Hybrid, &p, started, "evaluate");
    let mut kinds = Map::new();
    if let Some(r) = &t.report {
        kinds = members_json(r, t.served.as_ref());
        let mut h = match &t.served {
            Some(s) => summary_json(&s.model),
            None => summary_json(&r.hybrid),
        };
        h["raw"] = summary_json(&r.hybrid);
        h["weights"] = blend_json(&t.weights);
        kinds.insert("hybrid".into(), h);
    }
    JsonbText::of(&json!({
        "k": p.k, "holdout": p.holdout, "customers": l.ds.n_users, "items": l.ds.n_items, "events": l.ds.events.len(),
        "train_events": t.n_train, "test_events": t.n_test, "kinds": kinds, "params": effective,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    }))
}
