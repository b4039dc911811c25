//! reco.recommend, reco.complements, reco.similar_items, reco.popular: the calls the OMS makes
//! during a session. Each checks its arguments, reads the deployed model's id and the live
//! inputs in the call's snapshot (`live`), takes the model from this backend's cache (`cache`)
//! and returns what `reco_engine::serve::policy` decides.
use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use crate::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::serve::context::{check_id, Context};
use reco_engine::serve::policy::{self, Ask, Subject};
use reco_engine::serve::{Customer, Scores, Served, Stats};
use reco_engine::{Error, ErrorKind};
use serde_json::Value;
use std::cell::RefCell;

mod cache;
pub(crate) mod live;
mod shared;

/// Reserves the shared model registry when the library is preloaded (from `_PG_init`).
pub fn shared_init() {
    shared::init();
}

use live::SpiLive;

thread_local! {
    /// catalogue-sized score buffers, reused by the next request
    static SCRATCH: RefCell<Scores> = RefCell::new(Scores::default());
}

fn check_k(k: Option<i32>) -> usize {
    let hint = "k is how many items to return: 1 to 1000";
    let k = super::required(k, "k", hint);
    if !(1..=1000).contains(&k) {
        raise(Error::invalid(format!("k = {k} is out of range")).at("k").hint(hint));
    }
    k as usize
}

fn now_ms(ctx: &Context) -> i64 {
    ctx.now.unwrap_or_else(super::transaction_start).timestamp_millis()
}

fn notice_no_model(what: &str) {
    pgrx::notice!("pg_reco: no model is deployed; {what} falls back to popularity. Train and deploy one: SELECT reco.deploy(reco.train());");
}

fn rows(list: Vec<Served>) -> impl Iterator<Item = (String, f64, String)> {
    list.into_iter().map(|s| (s.item_id, s.score, s.reason))
}

/// The recommendation list, before logging.
fn recommend_list(customer_id: Option<&str>, k: usize, ctx: &Context) -> (Option<i64>, Vec<Served>, Option<super::experiments::Arm>) {
    let now = now_ms(ctx);
    let tuning = live::tuning();
    Spi::connect(|c| {
        // an experiment on this placement: the unit's arm may name other weights or a model
        let at = super::timestamptz(reco_engine::standardize::time::to_pg_micros(&ctx.now.unwrap_or_else(super::transaction_start)));
        let arm = super::experiments::arm_for(c, &ctx.placement, customer_id.or(ctx.session_id.as_deref()), at);
        let weights_of = arm.as_ref().and_then(|a| a.placement.as_deref()).unwrap_or(&ctx.placement);
        // the settings weigh and filter a history: without a customer or session there is none
        let (deployed_id, placement, settings) = live::deployed(c, weights_of, customer_id.is_some() || ctx.session_id.is_some());
        let model_id = arm.as_ref().and_then(|a| a.model_id).or(deployed_id);
        let m = model_id.map(cache::cached);
        let (profile, history) = live::customer(c, customer_id, ctx.session_id.as_deref(), model_id, now);
        let mut live = SpiLive { c };
        let cust = Customer::new(profile, history, m.as_deref(), &settings, &mut live);
        if m.is_none() {
            notice_no_model("reco.recommend");
        }
        let ask = Ask { customer_id, k, ctx, now_ms: now, placement, settings: &settings, tuning: &tuning };
        let mut stats = Stats::default();
        let mut scores = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let list = policy::recommend(m.as_deref(), &ask, &cust, &mut live, &mut scores, &mut stats);
        SCRATCH.with(|s| *s.borrow_mut() = scores);
        cache::count(stats);
        (model_id, list, arm)
    })
}

/// Recommendations for a customer: `k` buyable items, best first, each with a reason.
#[pg_extern(volatile, parallel_unsafe)]
fn recommend(
    customer_id: Option<&str>,
    k: default!(Option<i32>, 10),
    context: default!(Option<Payload>, "'{}'"),
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(reason, String), name!(rec_id, Option<i64>))> {
    let k = check_k(k);
    if let Some(id) = customer_id {
        check_id(id, "customer_id").or_raise();
    }
    let mapped = customer_id.map(super::privacy::customer_id);
    let customer_id = mapped.as_deref();
    let raw = Payload::object_arg(context, "context", r#"{"cart": ["SKU-1"], "placement": "checkout"}"#);
    let ctx = Context::parse(&raw).or_raise();
    let (model_id, list, arm) = recommend_list(customer_id, k, &ctx);
    let rec_id = if ctx.log {
        let items: Vec<&str> = list.iter().map(|p| p.item_id.as_str()).collect();
        let scores: Vec<f32> = list.iter().map(|p| p.score as f32).collect();
        let mut logged = raw.clone();
        logged.remove("log");
        logged.remove("experiment");
        logged.remove("arm");
        if let Some(a) = &arm {
            logged.insert("experiment".into(), Value::from(a.experiment.as_str()));
            logged.insert("arm".into(), Value::from(a.arm.as_str()));
        }
        Spi::connect_mut(|c| {
            let r = plans::update(
                c,
                if crate::api::has_shard_key() {
                    "INSERT INTO reco.recommendations (customer_id, session_id, placement, model_id, items, scores, context, shard_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, coalesce($1, 's:' || $2, '')) RETURNING rec_id"
                } else {
                    "INSERT INTO reco.recommendations (customer_id, session_id, placement, model_id, items, scores, context)
                     VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) RETURNING rec_id"
                },
                &[
                    DatumWithOid::from(customer_id),
                    DatumWithOid::from(ctx.session_id.as_deref()),
                    DatumWithOid::from(ctx.placement.as_str()),
                    DatumWithOid::from(model_id),
                    DatumWithOid::from(items),
                    DatumWithOid::from(scores),
                    DatumWithOid::from(Value::Object(logged).to_string()),
                ],
            )
            .or_raise();
            r.first().get::<i64>(1).or_raise()
        })
    } else {
        None
    };
    TableIterator::new(rows(list).map(move |(item, score, reason)| (item, score, reason, rec_id)))
}

fn ids_arg(ids: &[Option<String>], what: &str) -> Vec<String> {
    ids.iter()
        .enumerate()
        .map(|(n, x)| {
            let Some(s) = x else { raise(Error::invalid(format!("{what}[{}] is NULL", n + 1)).at(what).hint("pass item ids, without NULLs")) };
            check_id(s, &format!("{what}[{}]", n + 1)).or_raise();
            s.clone()
        })
        .collect()
}

/// Items from other categories that go with the given items (a cart, or a just-placed order):
/// bought-together strength summed over the inputs; personalized by the customer's vector when
/// `customer_id` is given. Filled with best sellers of other categories when the neighbours run out.
#[pg_extern(stable, parallel_safe)]
fn complements(
    item_ids: Option<Vec<Option<String>>>,
    k: default!(Option<i32>, 10),
    customer_id: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(reason, String))> {
    let k = check_k(k);
    let item_ids = super::required(item_ids, "item_ids", "pass the cart or order items, e.g. ARRAY['PHONE-X']");
    let inputs = ids_arg(&item_ids, "item_ids");
    if let Some(id) = customer_id {
        check_id(id, "customer_id").or_raise();
    }
    let mapped = customer_id.map(super::privacy::customer_id);
    let customer_id = mapped.as_deref();
    let now = super::transaction_start().timestamp_millis();
    let tuning = live::tuning();
    let out = Spi::connect(|c| {
        let (model_id, _, settings) = live::deployed_or_neutral(c, "checkout", customer_id.is_some());
        let m = model_id.map(cache::cached);
        let (profile, history) = live::customer(c, customer_id, None, model_id, now);
        let mut live = SpiLive { c };
        let cust = Customer::new(profile, history, m.as_deref(), &settings, &mut live);
        if m.is_none() {
            notice_no_model("reco.complements");
        }
        policy::complements(m.as_deref(), &inputs, k, customer_id, &cust, &settings, &tuning, now, &mut live)
    });
    TableIterator::new(rows(out))
}

/// Items most like `item_id` (ALS factors and content, averaged), its own variants left out.
/// An item the deployed model has not seen gets its content neighbours.
#[pg_extern(stable, parallel_safe)]
fn similar_items(item_id: &str, k: default!(i32, 10)) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(reason, String))> {
    let k = check_k(Some(k));
    check_id(item_id, "item_id").or_raise();
    let now = super::transaction_start().timestamp_millis();
    let out = Spi::connect(|c| {
        let found = plans::select(
            c,
            concat!("SELECT ", crate::api::items::feature_columns!(), ", i.group_id IS NOT NULL FROM reco.items i WHERE i.item_id = $1"),
            &[DatumWithOid::from(item_id)],
        )
        .or_raise();
        let Some(r) = found.into_iter().next() else {
            raise(
                Error::new(ErrorKind::UndefinedObject, format!("item {} does not exist", reco_engine::error::show(item_id)))
                    .at("item_id")
                    .hint("pass an item_id of reco.items"),
            );
        };
        let features = crate::api::items::features(&r, 1);
        let has_group = r.get::<bool>(8).or_raise().unwrap_or(false);
        let (model_id, _, _) = live::deployed_or_neutral(c, "home", false);
        let m = model_id.map(cache::cached);
        if m.is_none() {
            notice_no_model("reco.similar_items");
        }
        let subject = Subject { item_id, features: &features, has_group };
        policy::similar_items(m.as_deref(), &subject, k, now, &mut SpiLive { c })
    });
    TableIterator::new(rows(out))
}

/// Best sellers right now: the deployed model's decayed popularity weighted toward this hour
/// and weekday; only buyable items; optionally one category. `context` takes recommend's keys
/// (`now` and `exclude` apply).
#[pg_extern(stable, parallel_safe)]
fn popular(
    k: default!(Option<i32>, 10),
    category: default!(Option<&str>, "NULL"),
    context: default!(Option<Payload>, "'{}'"),
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(reason, String))> {
    let k = check_k(k);
    let raw = Payload::object_arg(context, "context", r#"{"now": "2025-01-01T19:00:00Z"}"#);
    let mut ctx = Context::parse(&raw).or_raise();
    if category.is_some() {
        ctx.category = category.map(str::to_string);
    }
    let now = now_ms(&ctx);
    let out = Spi::connect(|c| {
        let (model_id, _, _) = live::deployed(c, &ctx.placement, false);
        let m = model_id.map(cache::cached);
        if m.is_none() {
            notice_no_model("reco.popular");
        }
        policy::popular(m.as_deref(), &ctx, k, now, &mut SpiLive { c })
    });
    TableIterator::new(rows(out))
}

/// What this backend's model cache holds (model_id, items, bytes, load_ms, loads) and how its
/// recommendations were scored (dense, candidates, hnsw_searches, knn_lists, widened).
#[pg_extern(volatile, parallel_safe)]
fn cache_info() -> JsonbText {
    JsonbText::of(&cache::info_json())
}

/// Loads model `model_id` into the shared model cache before `reco.deploy` switches to it (see
/// cache::preload); returns whether it is there. Internal: reco._deploy calls it.
#[pg_extern(volatile, parallel_unsafe, name = "_preload_model")]
pub fn preload_model(model_id: i64) -> bool {
    cache::preload(model_id)
}

/// Loads the deployed model into this backend's cache now (e.g. from a pool's connect query),
/// so the first recommendation does not pay for it. Returns cache_info().
#[pg_extern(volatile, parallel_unsafe)]
fn warm_cache() -> JsonbText {
    let model_id = Spi::connect(|c| live::deployed_or_neutral(c, "home", false).0);
    match model_id {
        Some(id) => {
            cache::cached(id);
        }
        None => notice_no_model("reco.warm_cache"),
    }
    JsonbText::of(&cache::info_json())
}
