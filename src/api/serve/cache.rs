//! The per-backend model cache: the deployed model read into memory by a backend's first call
//! (seven tables, one pass each) and read again when another model is deployed; while an
//! experiment runs, the models its arms name are held beside it. A backend that never recommends
//! holds nothing. `reco.cache_max_memory` caps what one backend holds.
use super::shared;
use crate::error::{raise, OrRaise};
use crate::{gucs, vector};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::models::cooccurrence::Neighbor;
use reco_engine::models::popularity::Popularity;
use reco_engine::prefs::fit::ItemFacts;
use reco_engine::serve::{Als, Knn, Model, Stats};
use reco_engine::standardize::money;
use reco_engine::{Error, ErrorKind};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

/// One model a backend holds.
struct Held {
    model: Rc<Model>,
    /// read in place from shared memory (`bytes` is then the model's size there, not this
    /// backend's)
    shared: bool,
    bytes: usize,
    load_ms: f64,
    /// when it last served (the cache's own call counter), for least-recently-used eviction
    used: u64,
}

/// What a backend holds: the deployed model and, while experiments run, the models their arms
/// name, so customers of different arms are served without a reload per switch.
#[derive(Default)]
struct Cache {
    held: Vec<Held>,
    /// models read from the tables, and models attached from shared memory
    loads: u64,
    attaches: u64,
    calls: u64,
    /// the model of the latest call (what cache_info's top-level keys describe)
    last: Option<i64>,
}

impl Cache {
    /// The size of the models held (a shared one counts whole: the backend maps it, and keeps
    /// its segment alive while it does).
    fn bytes(&self) -> usize {
        self.held.iter().map(|h| h.bytes).sum()
    }

    /// Lets the least recently used model go; false when none is held.
    fn evict_oldest(&mut self) -> bool {
        let Some(at) = self.held.iter().enumerate().min_by_key(|(_, h)| h.used).map(|(i, _)| i) else { return false };
        self.held.swap_remove(at);
        true
    }
}

thread_local! {
    /// never dropped: at a backend's exit PostgreSQL has already detached the shared segments its
    /// models read, so dropping them then would detach twice
    static CACHE: std::mem::ManuallyDrop<RefCell<Cache>> = std::mem::ManuallyDrop::new(RefCell::new(Cache::default()));
    /// how this backend's recommendations were scored (reported by reco.cache_info())
    static SCORING: RefCell<Stats> = RefCell::new(Stats::default());
}

/// Adds one request's scoring counts to this backend's.
pub fn count(s: Stats) {
    SCORING.with(|t| *t.borrow_mut() += s);
}

/// One space's item vectors, row-major over the catalogue, and which rows were stored.
struct ItemRows {
    v: Vec<f32>,
    set: Vec<bool>,
    dims: usize,
}

impl ItemRows {
    /// Puts item `i`'s vector; the first vector sets the width, others of another width are skipped.
    fn put(slot: &mut Option<ItemRows>, n: usize, i: usize, v: &[f32]) {
        let dims = v.len();
        let rows = slot.get_or_insert_with(|| ItemRows { v: vec![0.0; n * dims], set: vec![false; n], dims });
        if dims == rows.dims {
            rows.v[i * dims..(i + 1) * dims].copy_from_slice(v);
            rows.set[i] = true;
        }
    }
}

/// Reads model `model_id` into memory.
fn load(model_id: i64) -> Model {
    let mut m = Model { model_id, ..Default::default() };
    Spi::connect(|c| {
        let r = c
            .select(
                "SELECT blend, params, (extract(epoch FROM data_to) * 1000)::int8, n_items FROM reco.models WHERE model_id = $1",
                None,
                &[DatumWithOid::from(model_id)],
            )
            .or_raise()
            .first();
        let blend: Value = r.get::<pgrx::JsonB>(1).or_raise().map(|j| j.0).unwrap_or(Value::Null);
        let params: Value = r.get::<pgrx::JsonB>(2).or_raise().map(|j| j.0).unwrap_or(Value::Null);
        m.data_to_ms = r.get::<i64>(3).or_raise().unwrap_or(0);
        // training numbers the model's items 0..n_items (reco.item_knn.item_no)
        let model_items = r.get::<i64>(4).or_raise().unwrap_or(0);
        for (i, name) in reco_engine::models::hybrid::MEMBERS.iter().enumerate() {
            m.weights[i] = blend.get(name).and_then(Value::as_f64).unwrap_or(0.0) as f32;
        }
        m.items_until_ms = c
            .select("SELECT (extract(epoch FROM max(created_at)) * 1000)::int8 FROM reco.items", None, &[])
            .or_raise()
            .first()
            .get::<i64>(1)
            .or_raise()
            .unwrap_or(0);
        let mut groups = HashMap::new();
        crate::api::scan(
            c,
            "SELECT item_id, title, category, group_id, attributes->>'size', attributes->>'color', brand, price::text, currency::text FROM reco.items",
            &[],
            10_000,
            |r| {
                let category: Option<String> = r.get(3).or_raise();
                let group: Option<String> = r.get(4).or_raise();
                let currency: Option<String> = r.get(9).or_raise();
                let facts = ItemFacts {
                    item_id: String::new(),
                    size: r.get(5).or_raise(),
                    color: r.get(6).or_raise(),
                    brand: r.get(7).or_raise(),
                    price_minor: money::minor_units(r.get::<String>(8).or_raise().as_deref(), currency.as_deref()),
                    currency,
                };
                m.cat.push(r.get(1).or_raise().unwrap_or_default(), r.get(2).or_raise(), category.as_deref(), group.as_deref(), facts, &mut groups);
            },
        );
        let n = m.cat.len();
        let (mut als, mut content): (Option<ItemRows>, Option<ItemRows>) = (None, None);
        let index = &m.cat.index;
        crate::api::scan(c, "SELECT space = 'als', item_id, v FROM reco.item_vectors WHERE model_id = $1", &[DatumWithOid::from(model_id)], 10_000, |r| {
            let Some(&i) = index.get(&r.get::<String>(2).or_raise().unwrap_or_default()) else { return };
            let Some(vector::Vector(v)) = r.get(3).or_raise() else { return };
            let space = if r.get::<bool>(1).or_raise().unwrap_or(false) { &mut als } else { &mut content };
            ItemRows::put(space, n, i as usize, &v);
        });
        let num = |k: &str, d: f64| params.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
        m.als = als.map(|a| Als::new(a.dims, a.v, a.set, num("regularization", 0.05), num("alpha", 2.0)));
        m.content = content.map(|c| (c.v.into(), c.dims));
        // per source (reco.item_neighbors.source): basket, session, history
        let mut lists: [Vec<Vec<Neighbor>>; 3] = std::array::from_fn(|_| vec![Vec::new(); n]);
        let mut any = false;
        let index = &m.cat.index;
        crate::api::scan(
            c,
            "SELECT array_position(ARRAY['basket', 'session', 'history'], source::text), item_id, neighbor_id, support, confidence, lift, score, cross_category
               FROM reco.item_neighbors WHERE model_id = $1 ORDER BY item_id, source, rank",
            &[DatumWithOid::from(model_id)],
            20_000,
            |r| {
                any = true;
                let item = |col: usize| r.get::<String>(col).or_raise().and_then(|id| index.get(&id).copied());
                let (Some(i), Some(j)) = (item(2), item(3)) else { return };
                let nb = Neighbor {
                    item: j,
                    support: r.get::<i32>(4).or_raise().unwrap_or(0).max(0) as u32,
                    confidence: r.get(5).or_raise().unwrap_or(0.0),
                    lift: r.get(6).or_raise().unwrap_or(0.0),
                    score: r.get(7).or_raise().unwrap_or(0.0),
                    cross_category: r.get(8).or_raise().unwrap_or(false),
                };
                // (the table's CHECK allows only the three sources)
                let at = r.get::<i32>(1).or_raise().and_then(|s| usize::try_from(s).ok()?.checked_sub(1));
                let Some(source) = at.and_then(|s| lists.get_mut(s)) else { return };
                source[i as usize].push(nb);
            },
        );
        if any {
            let [basket, session, history] = lists;
            m.neighbors = Some(reco_engine::models::pipeline::merge(&basket, &session, &history, n).into());
            m.basket = Some(basket.into());
        }
        let rows = c
            .select("SELECT item_id, score, by_hour, by_weekday FROM reco.item_popularity WHERE model_id = $1", None, &[DatumWithOid::from(model_id)])
            .or_raise();
        if !rows.is_empty() {
            let mut p = Popularity { score: vec![0.0; n].into(), by_hour: vec![[0.0; 24]; n].into(), by_weekday: vec![[0.0; 7]; n].into() };
            for r in rows {
                let Some(&i) = m.cat.index.get(&r.get::<String>(1).or_raise().unwrap_or_default()) else { continue };
                let i = i as usize;
                p.score[i] = r.get(2).or_raise().unwrap_or(0.0);
                let h: Vec<f32> = r.get(3).or_raise().unwrap_or_default();
                let d: Vec<f32> = r.get(4).or_raise().unwrap_or_default();
                p.by_hour[i].iter_mut().zip(h).for_each(|(a, b)| *a = b);
                p.by_weekday[i].iter_mut().zip(d).for_each(|(a, b)| *a = b);
            }
            m.popularity = Some(p);
        }
        // the demand forecast (models trained before 0.2.0 have none; SQL from before it has no table)
        let rows = if crate::api::has_demand() {
            Some(c.select("SELECT item_id, by_weekday FROM reco.item_demand WHERE model_id = $1", None, &[DatumWithOid::from(model_id)]).or_raise())
        } else {
            None
        };
        if let Some(rows) = rows.filter(|r| !r.is_empty()) {
            let mut forecast = Vec::with_capacity(rows.len());
            for r in rows {
                let Some(&i) = m.cat.index.get(&r.get::<String>(1).or_raise().unwrap_or_default()) else { continue };
                let mut f = [0.0f32; 7];
                f.iter_mut().zip(r.get::<Vec<Option<f32>>>(2).or_raise().unwrap_or_default()).for_each(|(a, b)| *a = b.unwrap_or(0.0));
                forecast.push((i, f));
            }
            m.demand = Some(reco_engine::serve::Demand::from_rows(n, forecast));
        }
        let rows = c
            .select(
                "SELECT segment, item_id, score FROM reco.segment_popularity WHERE model_id = $1 ORDER BY segment, rank",
                None,
                &[DatumWithOid::from(model_id)],
            )
            .or_raise();
        let mut segments: HashMap<String, Vec<(u32, f32)>> = HashMap::new();
        for r in rows {
            let Some(&i) = m.cat.index.get(&r.get::<String>(2).or_raise().unwrap_or_default()) else { continue };
            let seg: String = r.get(1).or_raise().unwrap_or_default();
            segments.entry(seg).or_default().push((i, r.get(3).or_raise().unwrap_or(0.0)));
        }
        m.segments = segments.into();
        // nearest-item lists (large catalogues): the model's item numbers to catalogue indexes
        let mut lists: Vec<(bool, u32, Vec<i32>)> = Vec::new();
        // (an item_no outside the model's numbering, e.g. a row edited by hand, is skipped: the
        // table sizes nothing here; the model's items are in the catalogue, so n bounds them)
        let mut by_no: Vec<u32> = vec![u32::MAX; model_items.clamp(0, n as i64) as usize];
        crate::api::scan(
            c,
            "SELECT space = 'als', item_id, item_no, neighbors FROM reco.item_knn WHERE model_id = $1",
            &[DatumWithOid::from(model_id)],
            10_000,
            |r| {
                let Some(&i) = r.get::<String>(2).or_raise().and_then(|id| m.cat.index.get(&id)) else { return };
                let Some(slot) = r.get::<i32>(3).or_raise().and_then(|no| usize::try_from(no).ok()).and_then(|no| by_no.get_mut(no)) else { return };
                *slot = i;
                lists.push((r.get::<bool>(1).or_raise().unwrap_or(false), i, r.get::<Vec<i32>>(4).or_raise().unwrap_or_default()));
            },
        );
        let knn = |als: bool| {
            let map = |l: &[i32]| l.iter().filter_map(|&x| by_no.get(x as usize).copied()).filter(|&x| x != u32::MAX).collect::<Vec<u32>>();
            lists.iter().any(|l| l.0 == als).then(|| Knn::from_lists(n, lists.iter().filter(|l| l.0 == als).map(|l| (l.1, map(&l.2)))))
        };
        m.als_knn = knn(true);
        m.content_knn = knn(false);
    });
    m.quantize();
    m
}

/// A lower bound of what model `model_id` takes in the cache, from its registry row: per item
/// its ALS factors (f32 and i8) and content vector (f32 and i8) when its kind has them,
/// popularity by hour and weekday, and a nearest-item list per vector space when the catalogue is
/// index-backed.
fn estimated_bytes(model_id: i64) -> usize {
    let row = Spi::get_three_with_args::<i64, i32, i32>(
        "SELECT n_items,
                CASE WHEN kind IN ('als', 'hybrid') THEN coalesce((params->>'factors')::int4, 0) ELSE 0 END,
                CASE WHEN kind IN ('content', 'hybrid') THEN coalesce((params->>'content_dims')::int4, 0) ELSE 0 END
           FROM reco.models WHERE model_id = $1",
        &[DatumWithOid::from(model_id)],
    )
    .or_raise();
    let (n, f, d) = (row.0.unwrap_or(0).max(0) as usize, row.1.unwrap_or(0).max(0) as usize, row.2.unwrap_or(0).max(0) as usize);
    let spaces = usize::from(f > 0) + usize::from(d > 0);
    let knn = if gucs::index_backed(n) { spaces * 30 * 4 } else { 0 };
    n.saturating_mul(5 * f + 5 * d + 32 * 4 + knn)
}

/// The models a backend may keep: the deployed one and those named by the arms of experiments
/// that have not stopped. Read on a miss only (never on a call the cache answers).
fn in_use() -> Vec<i64> {
    let sql = if super::super::experiments::enabled() {
        "SELECT array_agg(DISTINCT m) FROM (SELECT model_id FROM reco.models WHERE status = 'deployed'
           UNION ALL SELECT (a ->> 'model_id')::int8 FROM reco.experiments e, jsonb_array_elements(e.arms) a
            WHERE a ? 'model_id' AND (e.stops_at IS NULL OR e.stops_at > now())) x(m)"
    } else {
        "SELECT array_agg(model_id) FROM reco.models WHERE status = 'deployed'"
    };
    Spi::get_one::<Vec<Option<i64>>>(sql).or_raise().unwrap_or_default().into_iter().flatten().collect()
}

/// The cached model `model_id`, loading it when the cache does not hold it. A load first lets go
/// of the models no longer in use (neither deployed nor named by a running experiment's arm),
/// then of the least recently used ones while the models held and the new one's estimate would
/// exceed `reco.cache_max_memory`.
pub fn cached(model_id: i64) -> Rc<Model> {
    let hit = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.calls += 1;
        let calls = c.calls;
        let h = c.held.iter_mut().find(|h| h.model.model_id == model_id)?;
        h.used = calls;
        let m = h.model.clone();
        c.last = Some(model_id);
        Some(m)
    });
    if let Some(m) = hit {
        return m;
    }
    // let the models no longer in use go before the new one is read
    let keep = in_use();
    CACHE.with(|c| c.borrow_mut().held.retain(|h| keep.contains(&h.model.model_id)));
    let cap = gucs::CACHE_MAX_KB.get().max(1) as usize * 1024;
    // refuse before reading anything when even the model's lower-bound size is over the cap
    let estimate = estimated_bytes(model_id);
    if estimate > cap {
        raise(
            Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "model {model_id} needs at least {} kB in this backend's cache (estimated from its registry row), more than reco.cache_max_memory = {} kB",
                    estimate / 1024 + 1,
                    cap / 1024
                ),
            )
            .hint("a superuser raises reco.cache_max_memory (ALTER SYSTEM or ALTER ROLE ... SET), or train with fewer factors or content_dims"),
        );
    }
    let started = Instant::now();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        while c.bytes() + estimate > cap && c.evict_oldest() {}
    });
    if shared::available() && gucs::SHARED_CACHE.get() {
        let load = || {
            let m = load(model_id);
            check_fits(model_id, m.bytes(), cap);
            (m.image(), started.elapsed().as_secs_f64() * 1000.0)
        };
        let (key, keep, databases) = shared_keys(model_id, &keep);
        match shared::get(key, &keep, &databases, cap as u64, estimate as u64, load) {
            shared::Got::Model(m, loaded) => {
                let (m, load_ms) = (Rc::new(*m), loaded.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1000.0));
                return hold(m, true, load_ms, loaded.is_some());
            }
            shared::Got::OverCap(used) => raise(
                Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "model {model_id} needs at least {} kB of shared memory beside the {} kB the models in use take, more than reco.cache_max_memory = {} kB",
                        estimate / 1024 + 1,
                        used / 1024,
                        cap / 1024
                    ),
                )
                .hint("stop the experiments whose arms name other models, or raise reco.cache_max_memory (ALTER SYSTEM)"),
            ),
            // every slot holds a model in use: this backend keeps its own copy
            shared::Got::Full => {}
        }
    }
    let m = load(model_id);
    check_fits(model_id, m.bytes(), cap);
    hold(Rc::new(m), false, started.elapsed().as_secs_f64() * 1000.0, true)
}

/// Raises 54000 when a model of `bytes` is over `cap` (reco.cache_max_memory) on its own.
fn check_fits(model_id: i64, bytes: usize, cap: usize) {
    if bytes > cap {
        raise(
            Error::new(
                ErrorKind::LimitExceeded,
                format!("model {model_id} needs {} kB in the model cache, more than reco.cache_max_memory = {} kB", bytes / 1024 + 1, cap / 1024),
            )
            .hint("raise reco.cache_max_memory (ALTER SYSTEM or ALTER ROLE ... SET), or train with fewer factors or content_dims"),
        );
    }
}

/// Loads `model_id` into the shared model cache ahead of its deployment: `reco.deploy` calls it
/// before the switch, so when the switch commits the serving backends attach to the model
/// instead of waiting for one of them to load it (every call of every backend waited for that
/// load, hundreds of milliseconds at the medium size). It does not enter this backend's own
/// cache. Nothing happens without the shared cache (not preloaded, or `reco.shared_cache` off)
/// or when the model does not fit beside the models in use (a serving backend then decides, as
/// before); a model larger than `reco.cache_max_memory` alone is 54000, as serving it would be.
/// Returns whether the model is in shared memory.
pub fn preload(model_id: i64) -> bool {
    if !(shared::available() && gucs::SHARED_CACHE.get()) {
        return false;
    }
    let cap = gucs::CACHE_MAX_KB.get().max(1) as usize * 1024;
    let estimate = estimated_bytes(model_id);
    if estimate > cap {
        return false;
    }
    let mut keep = in_use();
    keep.push(model_id);
    let (key, keep, databases) = shared_keys(model_id, &keep);
    let started = Instant::now();
    let load = || {
        let m = load(model_id);
        check_fits(model_id, m.bytes(), cap);
        (m.image(), started.elapsed().as_secs_f64() * 1000.0)
    };
    matches!(shared::get(key, &keep, &databases, cap as u64, estimate as u64, load), shared::Got::Model(..))
}

/// The shared registry's key of `model_id` and of the models in use, and the server's databases.
fn shared_keys(model_id: i64, in_use: &[i64]) -> (shared::Key, Vec<shared::Key>, Vec<u32>) {
    let db = shared::this_database();
    let mut ids = in_use.to_vec();
    ids.push(model_id);
    let keys: Vec<shared::Key> = Spi::connect(|c| {
        c.select(
            "SELECT model_id, (extract(epoch FROM created_at) * 1000000)::int8 FROM reco.models WHERE model_id = ANY($1)",
            None,
            &[DatumWithOid::from(ids)],
        )
        .or_raise()
        .map(|r| shared::Key { db, model_id: r.get::<i64>(1).or_raise().unwrap_or(0), created_us: r.get::<i64>(2).or_raise().unwrap_or(0) })
        .collect()
    });
    let key = keys.iter().find(|k| k.model_id == model_id).copied().unwrap_or(shared::Key { db, model_id, created_us: 0 });
    let databases = Spi::get_one::<Vec<Option<pg_sys::Oid>>>("SELECT array_agg(oid) FROM pg_catalog.pg_database")
        .or_raise()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|o| o.to_u32())
        .collect();
    (key, keys, databases)
}

/// Keeps a model in this backend's cache (evicting the least recently used while over the cap).
fn hold(m: Rc<Model>, shared: bool, load_ms: f64, loaded: bool) -> Rc<Model> {
    let cap = gucs::CACHE_MAX_KB.get().max(1) as usize * 1024;
    let bytes = m.bytes();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        while c.bytes() + bytes > cap && c.evict_oldest() {}
        let used = c.calls;
        c.held.push(Held { model: m.clone(), shared, bytes, load_ms, used });
        if loaded {
            c.loads += 1;
        } else {
            c.attaches += 1;
        }
        c.last = Some(m.model_id);
    });
    m
}

pub fn info_json() -> Value {
    let sc = SCORING.with(|s| *s.borrow());
    let scoring = json!({"dense": sc.dense, "candidates": sc.candidates, "hnsw_searches": sc.hnsw_searches, "widened": sc.widened, "knn_lists": sc.knn_lists});
    let mut v = CACHE.with(|c| {
        let c = c.borrow();
        let ms = |x: f64| (x * 10.0).round() / 10.0;
        let models: Vec<Value> = c
            .held
            .iter()
            .map(|h| json!({"model_id": h.model.model_id, "items": h.model.cat.len(), "bytes": h.bytes, "own_bytes": h.model.own_bytes(), "shared": h.shared, "load_ms": ms(h.load_ms)}))
            .collect();
        match c.held.iter().find(|h| Some(h.model.model_id) == c.last) {
            Some(h) => {
                let m = &h.model;
                json!({"model_id": m.model_id, "items": m.cat.len(), "bytes": h.bytes, "shared": h.shared, "load_ms": ms(h.load_ms), "loads": c.loads, "attaches": c.attaches, "held_bytes": c.bytes(), "models": models,
                       "members": reco_engine::models::hybrid::MEMBERS.iter().zip(m.present()).filter(|x| x.1).map(|x| *x.0).collect::<Vec<_>>()})
            }
            None => json!({"model_id": null, "items": 0, "bytes": 0, "loads": c.loads, "attaches": c.attaches, "held_bytes": c.bytes(), "models": models}),
        }
    });
    v["scoring"] = scoring;
    v["shared_cache"] = shared::info();
    v
}
