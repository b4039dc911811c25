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
    let o = Payload::object_arg(params, "params", r#"{"factors": 64, "iterations": 15}"#);
    let p = Params::from_json(&o).or_raise();
    let effective = p.to_json();
    (p, effective)
}

/// Trains a model of `kind` with `params` (see docs/reference.md for every key) and returns its
/// id. The model is `ready`, not deployed: compare it with `reco.models.metrics`, then
/// `reco.deploy`. Progress comes as NOTICEs.
#[pg_extern(volatile)]
fn train(kind: default!(Option<&str>, "'hybrid'"), params: default!(Option<Payload>, "'{}'")) -> i64 {
    crate::api::citus_one_connection_per_node();
    let kind =
        Kind::parse(crate::api::required(kind, "kind", "pass a value: hybrid, als, cooccurrence, content, popularity")).map_err(|e| e.at("kind")).or_raise();
    let (p, effective) = parse_params(params);
    // refused before anything is recorded when it would not fit
    let estimate = crate::api::budget::check(&format!("reco.train('{}')", kind.as_str()), &budget::training(shape(p.window_days), kind, &p, threads()));
    let started = Instant::now();
    crate::api::registry::reap_orphans();
    let model_id: i64 = Spi::get_one("SELECT nextval('reco.models_model_id_seq')").or_raise().unwrap_or(0);
    crate::api::registry::lock(model_id);
    let own_row = crate::api::registry::open(model_id, kind.as_str(), &effective.to_string());
    let label = format!("train {} model {model_id}", kind.as_str());
    let result = in_subtransaction(|| {
        let (rss0, _) = memory(true);
        let mut progress = notices(&label, started);
        progress(&estimate);
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
        let metrics = metrics_json(kind, &t, &p);
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
