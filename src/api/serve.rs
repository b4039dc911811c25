//! reco.recommend, reco.complements, reco.similar_items, reco.popular: the calls the OMS makes
//! during a session. Each reads the deployed model's id (one indexed row) and the live inputs
//! in the call's snapshot — the customer's recent events, stock, preferences — and scores with
//! `reco_engine::serve` against the model cached in this backend. The cache is loaded by a
//! backend's first call and reloaded when the deployed model changes; a backend that never
//! recommends holds nothing.
use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use crate::{gucs, plans, vector};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use reco_engine::models::cooccurrence::Neighbor;
use reco_engine::models::linalg::dot;
use reco_engine::models::popularity::Popularity;
use reco_engine::prefs::fit::{in_your_size, ItemFacts};
use reco_engine::serve::context::{check_id, Context};
use reco_engine::serve::{self, candidates, Als, Anchor, Knn, Model, Request, Scores, Verb, POPULARITY};
use reco_engine::standardize::money;
use reco_engine::{Error, ErrorKind};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, Default)]
struct CacheInfo {
    bytes: usize,
    load_ms: f64,
    loads: u64,
}

/// How this backend's recommendations were scored (reported by reco.cache_info()).
#[derive(Debug, Clone, Copy, Default)]
struct Scoring {
    /// every item scored by every member
    dense: u64,
    /// only the members' candidates scored
    candidates: u64,
    /// HNSW index searches made for candidates
    hnsw_searches: u64,
    /// candidate lists that ran out of buyable items, so the whole catalogue was ranked
    widened: u64,
    /// ALS or content candidates taken from the anchors' nearest-item lists (reco.item_knn)
    /// instead of an index search
    knn_lists: u64,
}

thread_local! {
    static CACHE: RefCell<(Option<Rc<Model>>, CacheInfo)> = RefCell::new((None, CacheInfo::default()));
    /// catalogue-sized score buffers, reused by the next request
    static SCRATCH: RefCell<Scores> = RefCell::new(Scores::default());
    static SCORING: RefCell<Scoring> = RefCell::new(Scoring::default());
}

fn invalid(msg: String, at: &str, hint: &str) -> ! {
    raise(Error::invalid(msg).at(at.to_string()).hint(hint.to_string()))
}

fn check_k(k: Option<i32>) -> usize {
    let k = super::required(k, "k", "k is how many items to return: 1 to 1000");
    if !(1..=1000).contains(&k) {
        invalid(format!("k = {k} is out of range"), "k", "k is how many items to return: 1 to 1000");
    }
    k as usize
}

fn now_ms(ctx: &Context) -> i64 {
    let t = ctx.now.unwrap_or_else(super::transaction_start);
    t.timestamp_millis()
}

fn ms_to_tz(ms: i64) -> TimestampWithTimeZone {
    super::timestamptz(ms * 1000 - reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS)
}

/// The last microsecond of millisecond `ms`: the bound for "events up to now". A call's now is
/// in milliseconds, while an event recorded earlier in the same transaction carries the
/// transaction's start to the microsecond; bounding by the truncated now would hide it.
fn upto(ms: i64) -> TimestampWithTimeZone {
    super::timestamptz(ms * 1000 + 999 - reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS)
}

/// The placement's multipliers and session boost.
#[derive(Debug, Clone, Copy)]
struct Placement {
    multipliers: [f32; 4],
    session_boost: f64,
}

/// What a request about a customer reads besides the model: each event kind's weight
/// (`reco.event_weights`) and the repeatable categories (`reco.category_settings`).
#[derive(Debug, Default)]
struct Settings {
    weights: HashMap<String, f64>,
    repeatable: HashSet<String>,
}

/// The deployed model (None when nothing is deployed) and the placement's row, in one statement.
fn deployed(c: &SpiClient<'_>, placement: &str) -> (Option<i64>, Placement) {
    let (m, p, _) = deployed_with(c, placement, false);
    (m, p)
}

/// [`deployed`], and with `settings` the [`Settings`] too, in the same statement.
fn deployed_with(c: &SpiClient<'_>, placement: &str, settings: bool) -> (Option<i64>, Placement, Settings) {
    // the placement's row; with `settings`, the weights and repeatable categories too
    macro_rules! deployed_sql {
        ($columns:literal, $from:literal) => {
            concat!(
                "SELECT (SELECT model_id FROM reco.models WHERE status = 'deployed'), p.popularity, p.cooccurrence, p.content, p.als,
                        p.session_boost, p.placement IS NOT NULL",
                $columns,
                " FROM (SELECT $1::text AS placement) x LEFT JOIN reco.placement_weights p ON p.placement = x.placement",
                $from
            )
        };
    }
    let rows = plans::select(
        c,
        if settings {
            deployed_sql!(
                ", w.kinds, w.weights, (SELECT array_agg(category) FROM reco.category_settings WHERE repeatable)",
                ", (SELECT array_agg(kind) AS kinds, array_agg(weight) AS weights FROM reco.event_weights) w"
            )
        } else {
            deployed_sql!("", "")
        },
        &[DatumWithOid::from(placement)],
    )
    .or_raise();
    let r = rows.first();
    if !r.get::<bool>(7).or_raise().unwrap_or(false) {
        invalid(
            format!("placement {} is not known", reco_engine::error::show(placement)),
            "context.placement",
            "placements: home, cart, checkout, post_purchase, email, or a row you add to reco.placement_weights",
        );
    }
    let f = |i: usize| r.get::<f32>(i).or_raise().unwrap_or(1.0);
    let mut out = Settings::default();
    if settings {
        let kinds: Vec<Option<String>> = r.get(8).or_raise().unwrap_or_default();
        let weights: Vec<Option<f64>> = r.get(9).or_raise().unwrap_or_default();
        out.weights = kinds.into_iter().zip(weights).filter_map(|(k, w)| Some((k?, w.unwrap_or(0.0)))).collect();
        out.repeatable = r.get::<Vec<Option<String>>>(10).or_raise().unwrap_or_default().into_iter().flatten().collect();
    }
    (r.get::<i64>(1).or_raise(), Placement { multipliers: [f(2), f(3), f(4), f(5)], session_boost: r.get::<f32>(6).or_raise().unwrap_or(1.0) as f64 }, out)
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
        super::scan(
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
        super::scan(c, "SELECT space = 'als', item_id, v FROM reco.item_vectors WHERE model_id = $1", &[DatumWithOid::from(model_id)], 10_000, |r| {
            let Some(&i) = index.get(&r.get::<String>(2).or_raise().unwrap_or_default()) else { return };
            let Some(vector::Vector(v)) = r.get(3).or_raise() else { return };
            let space = if r.get::<bool>(1).or_raise().unwrap_or(false) { &mut als } else { &mut content };
            ItemRows::put(space, n, i as usize, &v);
        });
        let num = |k: &str, d: f64| params.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
        m.als = als.map(|a| Als::new(a.dims, a.v, a.set, num("regularization", 0.05), num("alpha", 2.0)));
        m.content = content.map(|c| (c.v, c.dims));
        let (mut basket, mut session): (Vec<Vec<Neighbor>>, Vec<Vec<Neighbor>>) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        let mut any = false;
        let index = &m.cat.index;
        super::scan(
            c,
            "SELECT source = 'basket', item_id, neighbor_id, support, confidence, lift, score, cross_category
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
                let lists = if r.get::<bool>(1).or_raise().unwrap_or(true) { &mut basket } else { &mut session };
                lists[i as usize].push(nb);
            },
        );
        if any {
            m.neighbors = Some(reco_engine::models::pipeline::merge(&basket, &session, n));
            m.basket = Some(basket);
        }
        let rows = c
            .select("SELECT item_id, score, by_hour, by_weekday FROM reco.item_popularity WHERE model_id = $1", None, &[DatumWithOid::from(model_id)])
            .or_raise();
        if !rows.is_empty() {
            let mut p = Popularity { score: vec![0.0; n], by_hour: vec![[0.0; 24]; n], by_weekday: vec![[0.0; 7]; n] };
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
        let rows = c
            .select(
                "SELECT segment, item_id, score FROM reco.segment_popularity WHERE model_id = $1 ORDER BY segment, rank",
                None,
                &[DatumWithOid::from(model_id)],
            )
            .or_raise();
        for r in rows {
            let Some(&i) = m.cat.index.get(&r.get::<String>(2).or_raise().unwrap_or_default()) else { continue };
            let seg: String = r.get(1).or_raise().unwrap_or_default();
            m.segments.entry(seg).or_default().push((i, r.get(3).or_raise().unwrap_or(0.0)));
        }
        // nearest-item lists (large catalogues): the model's item numbers to catalogue indexes
        let mut lists: Vec<(bool, u32, Vec<i32>)> = Vec::new();
        // (an item_no outside the model's numbering, e.g. a row edited by hand, is skipped: the
        // table sizes nothing here; the model's items are in the catalogue, so n bounds them)
        let mut by_no: Vec<u32> = vec![u32::MAX; model_items.clamp(0, n as i64) as usize];
        super::scan(
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
/// its ALS factors (f32 and i8), content vector (f32 and i8), popularity by hour and weekday,
/// and two nearest-item lists when the catalogue is index-backed.
fn estimated_bytes(model_id: i64) -> usize {
    let row = Spi::get_three_with_args::<i64, i32, i32>(
        "SELECT n_items, coalesce((params->>'factors')::int4, 0), coalesce((params->>'content_dims')::int4, 0) FROM reco.models WHERE model_id = $1",
        &[DatumWithOid::from(model_id)],
    )
    .or_raise();
    let (n, f, d) = (row.0.unwrap_or(0).max(0) as usize, row.1.unwrap_or(0).max(0) as usize, row.2.unwrap_or(0).max(0) as usize);
    let knn = if gucs::index_backed(n) { 2 * 30 * 4 } else { 0 };
    n.saturating_mul(5 * f + 5 * d + 32 * 4 + knn)
}

/// The cached model `model_id`, loading it when the cache holds another one (or none).
fn cached(model_id: i64) -> Rc<Model> {
    if let Some(m) = CACHE.with(|c| c.borrow().0.clone().filter(|m| m.model_id == model_id)) {
        return m;
    }
    // let the old model go before the new one is read
    CACHE.with(|c| c.borrow_mut().0 = None);
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
    let m = load(model_id);
    let bytes = m.bytes();
    if bytes > cap {
        raise(
            Error::new(
                ErrorKind::LimitExceeded,
                format!("model {model_id} needs {} kB in this backend's cache, more than reco.cache_max_memory = {} kB", bytes / 1024 + 1, cap / 1024),
            )
            .hint("raise reco.cache_max_memory (per session, per role or in postgresql.conf), or train with fewer factors or content_dims"),
        );
    }
    let m = Rc::new(m);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.1 = CacheInfo { bytes, load_ms: started.elapsed().as_secs_f64() * 1000.0, loads: c.1.loads + 1 };
        c.0 = Some(m.clone());
    });
    m
}

/// One of the customer's (or this session's) recent events.
struct Past {
    item: String,
    kind: String,
    value: Option<f64>,
    at_ms: i64,
    in_session: bool,
    weight: f64,
}

/// What a request knows about the customer.
#[derive(Default)]
struct Customer {
    timezone: Option<String>,
    /// reco.customers.attributes->>'segment'
    segment: Option<String>,
    stored: Option<Vec<f32>>,
    history: Vec<Past>,
    /// item -> (returned, repeatable)
    bought: HashMap<String, (bool, bool)>,
    /// bought items offered again only if their current category is still repeatable (catalogue
    /// indexes; see [`settle_repeatable`])
    recheck: HashSet<u32>,
}

impl Customer {
    /// Items never to offer again: returned, or bought outside a repeatable category.
    fn never_again(&self) -> impl Iterator<Item = String> + '_ {
        self.bought.iter().filter(|(_, (returned, repeatable))| *returned || !*repeatable).map(|(id, _)| id.clone())
    }
}

/// Whether each of the `bought` items (id → returned) is in a repeatable category, into
/// `cust.bought`. With a cached model, an item whose cached category is not repeatable is
/// settled at once (an item moved into a repeatable category since the cache was loaded stays
/// excluded until the next load — the safe side), and one whose cached category is repeatable
/// goes to `cust.recheck`: offered only after its current category says so too
/// ([`still_repeatable`], asked only when the pick reaches it). Without a model, the items'
/// current categories are read in one statement.
fn settle_repeatable(c: &SpiClient<'_>, m: Option<&Model>, bought: HashMap<String, bool>, settings: &Settings, cust: &mut Customer) {
    let now_repeatable = match m {
        None if !settings.repeatable.is_empty() => {
            let open: Vec<String> = bought.iter().filter(|(_, returned)| !**returned).map(|(id, _)| id.clone()).collect();
            if open.is_empty() {
                HashSet::new()
            } else {
                still_repeatable(c, &open, settings)
            }
        }
        _ => HashSet::new(),
    };
    for (id, returned) in bought {
        let repeatable = !returned
            && match m {
                Some(m) => {
                    let i = m.cat.index.get(&id).copied().filter(|&i| settings.repeatable.contains(m.cat.category_name(i)));
                    cust.recheck.extend(i);
                    i.is_some()
                }
                None => now_repeatable.contains(&id),
            };
        cust.bought.insert(id, (returned, repeatable));
    }
}

/// Which of `ids` are in a repeatable category now (the settings were read in this snapshot).
fn still_repeatable(c: &SpiClient<'_>, ids: &[String], settings: &Settings) -> HashSet<String> {
    let repeatable: Vec<&str> = settings.repeatable.iter().map(String::as_str).collect();
    plans::select(
        c,
        "SELECT item_id FROM reco.items WHERE item_id = ANY($1) AND category = ANY($2)",
        &[DatumWithOid::from(ids.to_vec()), DatumWithOid::from(repeatable)],
    )
    .or_raise()
    .filter_map(|r| r.get::<String>(1).ok().flatten())
    .collect()
}

/// Per catalogue item: is it one of `ids`.
fn mask(m: &Model, ids: &[String]) -> Vec<bool> {
    let mut out = vec![false; m.cat.len()];
    for id in ids {
        if let Some(&i) = m.cat.index.get(id) {
            out[i as usize] = true;
        }
    }
    out
}

fn read_customer(c: &SpiClient<'_>, customer_id: Option<&str>, session_id: Option<&str>, m: Option<&Model>, now_ms: i64, settings: &Settings) -> Customer {
    let mut out = Customer::default();
    let model_id = m.map(|m| m.model_id);
    let now = upto(now_ms);
    if let Some(id) = customer_id {
        let r = plans::select(
            c,
            "SELECT x.timezone, x.attributes->>'segment',
                    (SELECT v FROM reco.customer_vectors WHERE model_id = $2 AND space = 'als' AND customer_id = $1)
               FROM (SELECT 1) one LEFT JOIN reco.customers x ON x.customer_id = $1",
            &[DatumWithOid::from(id), DatumWithOid::from(model_id)],
        )
        .or_raise()
        .first();
        out.timezone = r.get(1).or_raise();
        out.segment = r.get(2).or_raise();
        out.stored = r.get::<vector::Vector>(3).or_raise().map(|v| v.0);
    }
    // The customer's latest events (and this session's). When they are all of the customer's
    // events up to now, their purchases and returns are all of them too, and need no statement
    // of their own.
    let limit = i64::from(gucs::HISTORY_EVENTS.get());
    let mut complete = false;
    if limit > 0 && (customer_id.is_some() || session_id.is_some()) {
        // without a session, one index scan; with one, the union of the two
        let sql = if session_id.is_none() {
            "SELECT item_id, kind, value, (extract(epoch FROM occurred_at) * 1000)::int8, false, true
               FROM reco.events
              WHERE customer_id = $1 AND item_id IS NOT NULL AND occurred_at <= $4
              ORDER BY occurred_at DESC LIMIT $2"
        } else {
            "SELECT e.item_id, e.kind, e.value, (extract(epoch FROM e.occurred_at) * 1000)::int8, e.session_id = $3,
                    e.customer_id IS NOT DISTINCT FROM $1
               FROM (SELECT * FROM (SELECT event_id, customer_id, item_id, kind, value, occurred_at, session_id FROM reco.events
                                     WHERE customer_id = $1 AND item_id IS NOT NULL AND occurred_at <= $4
                                     ORDER BY occurred_at DESC LIMIT $2) a
                     UNION
                     SELECT * FROM (SELECT event_id, customer_id, item_id, kind, value, occurred_at, session_id FROM reco.events
                                     WHERE session_id = $3 AND item_id IS NOT NULL AND occurred_at <= $4
                                     ORDER BY occurred_at DESC LIMIT $2) b) e"
        };
        let mut mine = 0i64;
        let mut bought: HashMap<String, bool> = HashMap::new();
        for r in plans::select(c, sql, &[DatumWithOid::from(customer_id), DatumWithOid::from(limit), DatumWithOid::from(session_id), DatumWithOid::from(now)])
            .or_raise()
        {
            let kind: String = r.get(2).or_raise().unwrap_or_default();
            let p = Past {
                item: r.get(1).or_raise().unwrap_or_default(),
                weight: settings.weights.get(&kind).copied().unwrap_or(0.0),
                kind,
                value: r.get(3).or_raise(),
                at_ms: r.get(4).or_raise().unwrap_or(0),
                in_session: r.get(5).or_raise().unwrap_or(false),
            };
            if customer_id.is_some() && r.get::<bool>(6).or_raise().unwrap_or(false) {
                mine += 1;
                match p.kind.as_str() {
                    "purchase" => {
                        bought.entry(p.item.clone()).or_insert(false);
                    }
                    "return" => *bought.entry(p.item.clone()).or_insert(false) = true,
                    _ => {}
                }
            }
            out.history.push(p);
        }
        complete = mine < limit;
        if complete {
            settle_repeatable(c, m, bought, settings, &mut out);
        }
    }
    if let (Some(id), false) = (customer_id, complete) {
        // more events than the history reads: all purchases and returns, on their own (the
        // categories read now, so nothing to re-check)
        for r in plans::select(
            c,
            "SELECT e.item_id, bool_or(e.kind = 'return'), bool_or(coalesce(cs.repeatable, false))
               FROM reco.events e LEFT JOIN reco.items i ON i.item_id = e.item_id
               LEFT JOIN reco.category_settings cs ON cs.category = i.category
              WHERE e.customer_id = $1 AND e.kind IN ('purchase', 'return') AND e.item_id IS NOT NULL AND e.occurred_at <= $2
              GROUP BY e.item_id",
            &[DatumWithOid::from(id), DatumWithOid::from(now)],
        )
        .or_raise()
        {
            let item: String = r.get(1).or_raise().unwrap_or_default();
            out.bought.insert(item, (r.get(2).or_raise().unwrap_or(false), r.get(3).or_raise().unwrap_or(false)));
        }
    }
    out
}

/// Anchors from the history and the cart, one per item, weights summed, strongest first.
fn anchors(m: &Model, cust: &Customer, cart: &[String], now_ms: i64, session_boost: f64) -> Vec<Anchor> {
    let half_life = gucs::HISTORY_HALF_LIFE_DAYS.get();
    let mut by_item: HashMap<u32, (f32, f32, Verb)> = HashMap::new();
    for p in &cust.history {
        let Some(&i) = m.cat.index.get(&p.item) else { continue };
        let w = serve::anchor_weight(&p.kind, p.value, p.weight, now_ms - p.at_ms, half_life, p.in_session, session_boost);
        let e = by_item.entry(i).or_insert((0.0, f32::MIN, Verb::Viewed));
        e.0 += w;
        if w > e.1 {
            e.1 = w;
            e.2 = serve::verb_of(&p.kind);
        }
    }
    let cart_weight = (4.0 * session_boost) as f32;
    for id in cart {
        if let Some(&i) = m.cat.index.get(id) {
            let e = by_item.entry(i).or_insert((0.0, f32::MIN, Verb::InCart));
            e.0 = e.0.max(0.0) + cart_weight;
            e.2 = Verb::InCart;
        }
    }
    let mut v: Vec<Anchor> = by_item.into_iter().filter(|(_, e)| e.0 > 0.0).map(|(item, e)| Anchor { item, weight: e.0, verb: e.2 }).collect();
    v.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
    v
}

/// Which of `ids` are buyable right now: active, available > 0, not backordered. (Every stock
/// row has its item, a foreign key; asking for no inactive item probes the small partial index
/// of inactive items instead of the catalogue's primary key.)
fn buyable(c: &SpiClient<'_>, ids: &[&str]) -> HashSet<String> {
    plans::select(
        c,
        "SELECT s.item_id FROM reco.stock s
          WHERE s.item_id = ANY($1) AND s.available > 0 AND NOT s.backordered
            AND NOT EXISTS (SELECT 1 FROM reco.items i WHERE i.item_id = s.item_id AND NOT i.active)",
        &[DatumWithOid::from(ids.to_vec())],
    )
    .or_raise()
    .filter_map(|r| r.get::<String>(1).ok().flatten())
    .collect()
}

/// Which of `items` are in the customer's resolved size and came back in stock within
/// `reco.back_in_stock_days` (reco.stock.back_in_stock_at, set by a trigger).
fn back_in_stock_in_size(c: &SpiClient<'_>, m: &Model, resolved: &Map<String, Value>, items: &[u32], now_ms: i64) -> HashSet<u32> {
    let days = gucs::BACK_IN_STOCK_DAYS.get();
    let sized: Vec<&str> =
        items.iter().filter(|&&i| m.cat.facts.get(i as usize).is_some_and(|f| in_your_size(resolved, f))).map(|&i| m.cat.ids[i as usize].as_str()).collect();
    if days <= 0.0 || sized.is_empty() {
        return HashSet::new();
    }
    plans::select(
        c,
        "SELECT item_id FROM reco.stock
          WHERE item_id = ANY($1) AND back_in_stock_at > $2 AND date_trunc('milliseconds', back_in_stock_at) <= $3", // a call's now is in ms
        &[DatumWithOid::from(sized), DatumWithOid::from(ms_to_tz(now_ms - (days * 86_400_000.0) as i64)), DatumWithOid::from(ms_to_tz(now_ms))],
    )
    .or_raise()
    .filter_map(|r| r.get::<String>(1).ok().flatten())
    .filter_map(|id| m.cat.index.get(&id).copied())
    .collect()
}

/// A list row: item, score, reason.
type Row = (String, f64, String);

/// Without a deployed model (or one without popularity): buyable best sellers of the last 30 days.
fn recent_best_sellers(c: &SpiClient<'_>, skip: &[String], category: Option<&str>, n: usize, now_ms: i64) -> Vec<Row> {
    plans::select(
        c,
        "SELECT i.item_id, coalesce(p.n, 0)::float8
           FROM reco.items i JOIN reco.stock s ON s.item_id = i.item_id
           LEFT JOIN (SELECT item_id, count(*) AS n FROM reco.events
                       WHERE kind = 'purchase' AND occurred_at > $4 - interval '30 days' AND occurred_at <= $4
                       GROUP BY item_id) p ON p.item_id = i.item_id
          WHERE i.active AND s.available > 0 AND NOT s.backordered AND i.item_id <> ALL ($1)
            AND ($2::text IS NULL OR i.category = $2)
          ORDER BY p.n DESC NULLS LAST, i.item_id LIMIT $3",
        &[DatumWithOid::from(skip.to_vec()), DatumWithOid::from(category), DatumWithOid::from(n as i64), DatumWithOid::from(upto(now_ms))],
    )
    .or_raise()
    .map(|r| {
        (
            r.get::<String>(1).ok().flatten().unwrap_or_default(),
            r.get::<f64>(2).ok().flatten().unwrap_or(0.0),
            "popular in the last 30 days (no model deployed yet)".to_string(),
        )
    })
    .collect()
}

/// Buyable items created after the cached model's catalogue was read (the model cannot rank
/// them), newest first.
fn new_items(c: &SpiClient<'_>, m: &Model, skip: &[String], category: Option<&str>, not_categories: &[String], n: usize) -> Vec<Row> {
    plans::select(
        c,
        "SELECT i.item_id, i.category
           FROM reco.items i JOIN reco.stock s ON s.item_id = i.item_id
          WHERE i.created_at > $1 AND i.active AND s.available > 0 AND NOT s.backordered AND i.item_id <> ALL ($2)
            AND ($3::text IS NULL OR i.category = $3) AND coalesce(i.category, '') <> ALL ($4)
          ORDER BY i.created_at DESC, i.item_id LIMIT $5",
        &[
            DatumWithOid::from(ms_to_tz(m.items_until_ms)),
            DatumWithOid::from(skip.to_vec()),
            DatumWithOid::from(category),
            DatumWithOid::from(not_categories.to_vec()),
            DatumWithOid::from(n as i64),
        ],
    )
    .or_raise()
    .map(|r| {
        let cat = r.get::<String>(2).ok().flatten().unwrap_or_else(|| "the shop".into());
        (r.get::<String>(1).ok().flatten().unwrap_or_default(), 0.0, format!("new in {cat}"))
    })
    .collect()
}

/// Fills `out` up to `k` with the model's buyable best sellers right now (then new items),
/// leaving out `skip`, what `out` holds, `not_categories`, other categories than `category`,
/// and items `keep` refuses.
#[allow(clippy::too_many_arguments)]
fn fill_popular(
    c: &SpiClient<'_>,
    m: &Model,
    k: usize,
    now: i64,
    skip: &[String],
    category: Option<&str>,
    not_categories: &[String],
    out: &mut Vec<Row>,
    recheck: Recheck<'_>,
    keep: impl Fn(u32) -> bool,
) {
    if out.len() >= k {
        return;
    }
    let mut skip: Vec<String> = skip.to_vec();
    skip.extend(out.iter().map(|x| x.0.clone()));
    if m.popularity.is_some() {
        let hour = serve::local_hour(now, None);
        let skipped: HashSet<u32> = skip.iter().filter_map(|id| m.cat.index.get(id).copied()).collect();
        let refused: Vec<u32> = not_categories.iter().filter_map(|cat| m.cat.category_index.get(cat).copied()).collect();
        let ok = |i: u32| !skipped.contains(&i) && !refused.contains(&m.cat.category[i as usize]) && keep(i);
        // walk the hour's ranking kept with the model (the category's, when one is asked for),
        // a window at a time: only what the stock check consumes is looked at
        let wanted = category.map(|cat| m.cat.category_index.get(cat).copied());
        let mut pos = 0;
        let picked = collect_diverse(c, m, k - out.len(), 0, recheck, |w, _| {
            m.with_popularity(now, |p| {
                let source: &[u32] = match wanted {
                    Some(Some(cat)) => p.by_category.get(cat as usize).map(Vec::as_slice).unwrap_or(&[]),
                    Some(None) => &[],
                    None => &p.order,
                };
                let mut v = Vec::with_capacity(w);
                while v.len() < w && pos < source.len() {
                    if ok(source[pos]) {
                        v.push(source[pos]);
                    }
                    pos += 1;
                }
                v
            })
        });
        for i in picked {
            let score = m.with_popularity(now, |p| p.score[i as usize]);
            out.push((m.cat.ids[i as usize].clone(), f64::from(score), serve::popular_reason(m.cat.category_name(i), hour)));
            skip.push(m.cat.ids[i as usize].clone());
        }
    }
    if out.len() < k {
        out.extend(new_items(c, m, &skip, category, not_categories, k - out.len()));
    }
}

/// Bought items the customer may be offered again only if their category is still repeatable
/// (`Customer::recheck`), and the settings read for the request.
type Recheck<'a> = Option<(&'a HashSet<u32>, &'a Settings)>;

/// The first `k` buyable items of the ranking `next(window, taken)` gives a window at a time,
/// diversified (`cap` per category, one variant per product group; see
/// `serve::pick_buyable`): only the items the pick reaches are checked against stock (and, for
/// the `recheck` items among them, against their current category).
fn collect_diverse(c: &SpiClient<'_>, m: &Model, k: usize, cap: usize, recheck: Recheck<'_>, next: impl FnMut(usize, &[bool]) -> Vec<u32>) -> Vec<u32> {
    serve::pick_buyable(&m.cat, k, cap, next, |items| {
        let ids: Vec<&str> = items.iter().map(|&i| m.cat.ids[i as usize].as_str()).collect();
        let ok = buyable(c, &ids);
        let mut out: Vec<bool> = ids.iter().map(|id| ok.contains(*id)).collect();
        if let Some((set, settings)) = recheck {
            let ask: Vec<String> = items.iter().zip(&ids).zip(&out).filter(|((i, _), b)| **b && set.contains(i)).map(|((_, id), _)| id.to_string()).collect();
            if !ask.is_empty() {
                let yes = still_repeatable(c, &ask, settings);
                for ((i, id), b) in items.iter().zip(&ids).zip(out.iter_mut()) {
                    *b &= !set.contains(i) || yes.contains(*id);
                }
            }
        }
        out
    })
}

/// The first `k` buyable items by `scores` (best first, −∞ and `skip` never), one variant per product group.
fn walk_scores(c: &SpiClient<'_>, m: &Model, k: usize, scores: &[f32], skip: impl Fn(usize) -> bool) -> Vec<u32> {
    collect_diverse(c, m, k, 0, None, |w, taken| serve::top_n(scores, w, |i| taken[i] || skip(i)))
}

/// The first `k` buyable items of a fixed order, one variant per product group.
fn walk(c: &SpiClient<'_>, m: &Model, k: usize, order: &[u32], recheck: Recheck<'_>) -> Vec<u32> {
    let mut pos = 0;
    collect_diverse(c, m, k, 0, recheck, |w, _| {
        let v: Vec<u32> = order.iter().skip(pos).take(w).copied().collect();
        pos += v.len();
        v
    })
}

/// Diversity cap: the context's, else the GUC.
fn cap(ctx: &Context) -> usize {
    if ctx.category.is_some() {
        return 0;
    }
    ctx.max_per_category.unwrap_or(gucs::MAX_PER_CATEGORY.get().max(0) as usize)
}

fn notice_no_model(what: &str) {
    pgrx::notice!("pg_reco: no model is deployed; {what} falls back to popularity. Train and deploy one: SELECT reco.deploy(reco.train());");
}

fn count(f: impl FnOnce(&mut Scoring)) {
    SCORING.with(|s| f(&mut s.borrow_mut()));
}

/// Scores a request: densely for small catalogues (and a category filter, which leaves most
/// candidates out), else only the members' candidates — ALS and content ones from the model's
/// HNSW indexes from `reco.hnsw_min_items` on.
fn score(c: &SpiClient<'_>, m: &Model, req: &Request, excluded: &[bool], dense: bool, scores: &mut Scores) {
    let hnsw = gucs::index_backed(m.cat.len());
    if dense || (m.cat.len() <= serve::RESCORE && !hnsw) {
        scores.compute_into(m, req, excluded);
        count(|s| s.dense += 1);
        return;
    }
    let (mut searches, mut from_knn) = (0u64, 0u64);
    let given = if hnsw {
        let (profile, w) = Scores::plan(m, req);
        let limit = super::hnsw::ef_search();
        let use_knn = gucs::ITEM_KNN.get() && !req.anchors.is_empty();
        let anchors: Vec<u32> = req.anchors.iter().map(|a| a.item).collect();
        let keep = |i: u32| !excluded[i as usize];
        // the anchors' lists, else (no lists, or anchors the model has none for: items newer
        // than the model) an index search
        let mut find = |space: &'static str, knn: Option<&Knn>, q: &[f32], score: &dyn Fn(u32) -> f32, dims: usize| {
            if let Some(k) = knn.filter(|_| use_knn) {
                let v = candidates::knn_nearest(k, &anchors, score, limit, keep);
                if !v.is_empty() {
                    from_knn += 1;
                    return Some(v);
                }
            }
            let v = super::hnsw::candidates(c, m, space, dims, q, limit);
            searches += u64::from(v.is_some());
            v
        };
        candidates::Given {
            als: match (&m.als, req.user) {
                (Some(a), Some(u)) if w[serve::ALS] > 0.0 => find("als", m.als_knn.as_ref(), u, &|i| dot(u, a.vec(i)), a.factors),
                _ => None,
            },
            content: match (&m.content, &profile) {
                (Some((vecs, d)), Some(p)) if w[serve::CONTENT] > 0.0 => {
                    find("content", m.content_knn.as_ref(), p, &|i| dot(p, &vecs[i as usize * d..(i as usize + 1) * d]), *d)
                }
                _ => None,
            },
        }
    } else {
        candidates::Given::default()
    };
    scores.compute_candidates(m, req, excluded, &given);
    count(|s| {
        s.candidates += 1;
        s.hnsw_searches += searches;
        s.knn_lists += from_knn;
    });
}

/// The recommendation list, before logging.
fn recommend_list(customer_id: Option<&str>, k: usize, ctx: &Context) -> (Option<i64>, Vec<Row>) {
    let now = now_ms(ctx);
    Spi::connect(|c| {
        // the settings weigh and filter a history: without a customer or session there is none
        let (model_id, placement, settings) = deployed_with(c, &ctx.placement, customer_id.is_some() || ctx.session_id.is_some());
        let m = model_id.map(cached);
        let cust = read_customer(c, customer_id, ctx.session_id.as_deref(), m.as_deref(), now, &settings);
        let local_hour = serve::local_hour(now, cust.timezone.as_deref());
        let mut skip: Vec<String> = ctx.cart.iter().chain(&ctx.exclude).cloned().chain(cust.never_again()).collect();
        let (Some(model_id), Some(m)) = (model_id, m) else {
            notice_no_model("reco.recommend");
            return (None, recent_best_sellers(c, &skip, ctx.category.as_deref(), k, now));
        };
        let mut excluded = mask(&m, &skip);
        if let Some(cat) = &ctx.category {
            let wanted = m.cat.category_index.get(cat).copied();
            for (x, c) in excluded.iter_mut().zip(&m.cat.category) {
                *x |= Some(*c) != wanted;
            }
        }
        let anchors = anchors(&m, &cust, &ctx.cart, now, placement.session_boost);
        // new customer: nothing older than a day and no learned vector
        let day_ago = now - 86_400_000;
        let cold = cust.stored.is_none() && cust.history.iter().all(|p| p.at_ms >= day_ago);
        let newer = cust.history.iter().any(|p| p.at_ms > m.data_to_ms) || !ctx.cart.is_empty();
        let history: Vec<(u32, f32)> = anchors.iter().map(|x| (x.item, x.weight)).collect();
        let mut explainer = None;
        let folded = match (&m.als, &cust.stored) {
            (Some(a), Some(v)) if !newer && v.len() == a.factors => Some(v.clone()),
            (Some(a), _) => match a.fold_in_explained(&history) {
                Some((x, e)) => {
                    explainer = Some(e);
                    Some(x)
                }
                None => cust.stored.clone().filter(|v| v.len() == a.factors),
            },
            _ => None,
        };
        let browsed: Vec<u32> = if cold {
            let mut b: Vec<u32> = anchors.iter().map(|a| m.cat.category[a.item as usize]).collect();
            b.sort_unstable();
            b.dedup();
            b
        } else {
            Vec::new()
        };
        let mut multipliers = placement.multipliers;
        if cold {
            multipliers[POPULARITY] *= 4.0;
        }
        let req = Request {
            anchors: &anchors,
            user: folded.as_deref(),
            now_ms: now,
            multipliers,
            candidates: gucs::CANDIDATES.get().max(1) as usize,
            browsed: &browsed,
            segment: match (&cust.segment, cold) {
                (Some(seg), true) => m.segments.get(seg).map(Vec::as_slice).unwrap_or(&[]),
                _ => &[],
            },
            explain: explainer.as_ref(),
        };
        let mut scores = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        score(c, &m, &req, &excluded, ctx.category.is_some(), &mut scores);
        let resolved = match customer_id {
            Some(id) if gucs::PREFERENCE_PENALTY.get() > 0.0 || gucs::BACK_IN_STOCK_DAYS.get() > 0.0 => super::prefs::resolved(id, &Map::new(), None),
            _ => Map::new(),
        };
        let penalty = gucs::PREFERENCE_PENALTY.get() as f32;
        let chosen = collect_diverse(c, &m, k, cap(ctx), Some((&cust.recheck, &settings)), |w, taken| {
            let mut v = scores.next(w, taken);
            if v.is_empty() && scores.sparse {
                // the candidates ran out of buyable items: rank the whole catalogue
                scores.compute_into(&m, &req, &excluded);
                count(|s| s.widened += 1);
                v = scores.next(w, taken);
            }
            if !resolved.is_empty() && penalty > 0.0 {
                scores.apply_preferences(&m, &resolved, penalty, &v);
                v.sort_by(|a, b| scores.score(*b).total_cmp(&scores.score(*a)).then(a.cmp(b)));
            }
            v
        });
        let back = back_in_stock_in_size(c, &m, &resolved, &chosen, now);
        // reasons for ALS picks name the history item with the largest share of the score; a
        // stored (not folded-in) vector gets its explanation only when an ALS pick needs one
        let late = match &m.als {
            Some(a) if req.explain.is_none() && chosen.iter().any(|&i| scores.dominant(i) == serve::ALS) => a.fold_in_explained(&history).map(|x| x.1),
            _ => None,
        };
        let req = Request { explain: req.explain.or(late.as_ref()), ..req.clone() };
        let mut out: Vec<Row> = chosen
            .iter()
            .map(|&i| {
                let reason = if back.contains(&i) { "back in stock in your size".to_string() } else { serve::reason(&m, &scores, &req, i, local_hour) };
                (m.cat.ids[i as usize].clone(), f64::from(scores.score(i)), reason)
            })
            .collect();
        if out.len() < k {
            // every item the model knows has been ranked: what is left is new
            skip.extend(out.iter().map(|p| p.0.clone()));
            out.extend(new_items(c, &m, &skip, ctx.category.as_deref(), &[], k - out.len()));
        }
        SCRATCH.with(|s| *s.borrow_mut() = scores);
        (Some(model_id), out)
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
    let raw = Payload::object_arg(context, "context", r#"{"cart": ["SKU-1"], "placement": "checkout"}"#);
    let ctx = Context::parse(&raw).or_raise();
    let (model_id, list) = recommend_list(customer_id, k, &ctx);
    let rec_id = if ctx.log {
        let items: Vec<&str> = list.iter().map(|p| p.0.as_str()).collect();
        let scores: Vec<f32> = list.iter().map(|p| p.1 as f32).collect();
        let mut logged = raw.clone();
        logged.remove("log");
        Spi::connect_mut(|c| {
            let r = plans::update(
                c,
                "INSERT INTO reco.recommendations (customer_id, session_id, placement, model_id, items, scores, context)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb) RETURNING rec_id",
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
    TableIterator::new(list.into_iter().map(move |(item, score, reason)| (item, score, reason, rec_id)))
}

fn ids_arg(ids: &[Option<String>], what: &str) -> Vec<String> {
    ids.iter()
        .enumerate()
        .map(|(n, x)| {
            let Some(s) = x else { invalid(format!("{what}[{}] is NULL", n + 1), what, "pass item ids, without NULLs") };
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
    let now = super::transaction_start().timestamp_millis();
    let out: Vec<Row> = Spi::connect(|c| {
        let (model_id, _, settings) = deployed_with(c, "checkout", customer_id.is_some());
        let m = model_id.map(cached);
        let cust = read_customer(c, customer_id, None, m.as_deref(), now, &settings);
        let skip: Vec<String> = inputs.iter().cloned().chain(cust.never_again()).collect();
        let Some(m) = m else {
            notice_no_model("reco.complements");
            return recent_best_sellers(c, &skip, None, k, now);
        };
        let excluded = mask(&m, &skip);
        let idx: Vec<u32> = inputs.iter().filter_map(|id| m.cat.index.get(id).copied()).collect();
        let mut list = serve::complements(&m, &idx, &excluded);
        if let (Some(a), Some(_)) = (&m.als, customer_id) {
            let anchors = anchors(&m, &cust, &inputs, now, 1.0);
            let user =
                cust.stored.clone().filter(|v| v.len() == a.factors).or_else(|| a.fold_in(&anchors.iter().map(|x| (x.item, x.weight)).collect::<Vec<_>>()));
            if let Some(u) = user {
                let top = list.iter().map(|x| x.1).fold(0f32, f32::max).max(1e-6);
                let cf: Vec<f32> = list.iter().map(|x| reco_engine::models::linalg::dot(&u, a.vec(x.0))).collect();
                let (lo, hi) = cf.iter().fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                let span = if hi > lo { hi - lo } else { 1.0 };
                for (x, s) in list.iter_mut().zip(cf) {
                    x.1 = x.1 / top + 0.3 * (s - lo) / span;
                }
                list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            }
        }
        let order: Vec<u32> = list.iter().map(|x| x.0).collect();
        let by_item: HashMap<u32, (f32, u32)> = list.iter().map(|x| (x.0, (x.1, x.2))).collect();
        let ranked = walk(c, &m, k, &order, Some((&cust.recheck, &settings)));
        let mut out: Vec<Row> = ranked
            .iter()
            .map(|&j| {
                let (s, via) = by_item.get(&j).copied().unwrap_or((0.0, j));
                (m.cat.ids[j as usize].clone(), f64::from(s), format!("bought together with {}", m.cat.title[via as usize]))
            })
            .collect();
        let in_cats: Vec<String> = idx.iter().map(|&i| m.cat.category_name(i).to_string()).collect();
        fill_popular(c, &m, k, now, &skip, None, &in_cats, &mut out, Some((&cust.recheck, &settings)), |_| true);
        out
    });
    TableIterator::new(out)
}

/// Items most like `item_id` (ALS factors and content, averaged), its own variants left out.
/// An item the deployed model has not seen gets its content neighbours.
#[pg_extern(stable, parallel_safe)]
fn similar_items(item_id: &str, k: default!(i32, 10)) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(reason, String))> {
    let k = check_k(Some(k));
    check_id(item_id, "item_id").or_raise();
    let now = super::transaction_start().timestamp_millis();
    let out: Vec<Row> = Spi::connect(|c| {
        let rows = plans::select(
            c,
            concat!("SELECT ", super::train::feature_columns!(), ", i.group_id FROM reco.items i WHERE i.item_id = $1"),
            &[DatumWithOid::from(item_id)],
        )
        .or_raise();
        let Some(r) = rows.into_iter().next() else {
            raise(
                Error::new(ErrorKind::UndefinedObject, format!("item {} does not exist", reco_engine::error::show(item_id)))
                    .at("item_id")
                    .hint("pass an item_id of reco.items"),
            );
        };
        let features = super::train::features(&r, 1);
        let group: Option<String> = r.get(8).or_raise();
        let title = features.title.clone().unwrap_or_else(|| item_id.to_string());
        let (model_id, _) = deployed(c, "home");
        let Some(model_id) = model_id else {
            notice_no_model("reco.similar_items");
            return recent_best_sellers(c, &[item_id.to_string()], features.category.as_deref(), k, now);
        };
        let m = cached(model_id);
        let known = m.cat.index.get(item_id).copied();
        // an item the model has no content vector for (created after the training, and in the
        // catalogue since the cache was loaded) gets one from its attributes now
        let stored = |i: u32| m.content.as_ref().is_some_and(|(v, d)| v[i as usize * d..(i as usize + 1) * d].iter().any(|x| *x != 0.0));
        let own: Option<Vec<f32>> = match (known, &m.content) {
            (k, Some((_, d))) if !k.is_some_and(stored) => Some(reco_engine::models::content::vector(&features, *d)),
            _ => None,
        };
        // its own variants are the same product
        let own_group = known.map(|i| m.cat.group[i as usize]).filter(|g| *g != serve::NONE && group.is_some());
        let excluded: Vec<bool> = m.cat.group.iter().map(|g| Some(*g) == own_group).collect();
        let sim = serve::similar(&m, known, own.as_deref(), &excluded);
        let ranked = walk_scores(c, &m, k, &sim, |_| false);
        let mut out: Vec<Row> = ranked.iter().map(|&j| (m.cat.ids[j as usize].clone(), f64::from(sim[j as usize]), format!("similar to {title}"))).collect();
        fill_popular(c, &m, k, now, &[item_id.to_string()], None, &[], &mut out, None, |i| Some(m.cat.group[i as usize]) != own_group);
        out
    });
    TableIterator::new(out)
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
    let out: Vec<Row> = Spi::connect(|c| {
        let (model_id, _) = deployed(c, &ctx.placement);
        let skip: Vec<String> = ctx.exclude.iter().chain(&ctx.cart).cloned().collect();
        let model = model_id.map(cached);
        let Some(m) = model.filter(|m| m.popularity.is_some()) else {
            if model_id.is_none() {
                notice_no_model("reco.popular");
            }
            return recent_best_sellers(c, &skip, ctx.category.as_deref(), k, now);
        };
        let mut out = Vec::new();
        fill_popular(c, &m, k, now, &skip, ctx.category.as_deref(), &[], &mut out, None, |_| true);
        out
    });
    TableIterator::new(out)
}

fn info_json() -> Value {
    let sc = SCORING.with(|s| *s.borrow());
    let scoring = json!({"dense": sc.dense, "candidates": sc.candidates, "hnsw_searches": sc.hnsw_searches, "widened": sc.widened, "knn_lists": sc.knn_lists});
    let mut v = CACHE.with(|c| {
        let c = c.borrow();
        match &c.0 {
            Some(m) => json!({"model_id": m.model_id, "items": m.cat.len(), "bytes": c.1.bytes, "load_ms": (c.1.load_ms * 10.0).round() / 10.0,
                              "loads": c.1.loads, "members": reco_engine::models::hybrid::MEMBERS.iter().zip(m.present()).filter(|x| x.1).map(|x| *x.0).collect::<Vec<_>>()}),
            None => json!({"model_id": null, "items": 0, "bytes": 0, "loads": c.1.loads}),
        }
    });
    v["scoring"] = scoring;
    v
}

/// What this backend's model cache holds (model_id, items, bytes, load_ms, loads) and how its
/// recommendations were scored (dense, candidates, hnsw_searches, knn_lists, widened).
#[pg_extern(volatile, parallel_safe)]
fn cache_info() -> JsonbText {
    JsonbText::of(&info_json())
}

/// Loads the deployed model into this backend's cache now (e.g. from a pool's connect query),
/// so the first recommendation does not pay for it. Returns cache_info().
#[pg_extern(volatile, parallel_unsafe)]
fn warm_cache() -> JsonbText {
    let model_id = Spi::connect(|c| deployed(c, "home").0);
    match model_id {
        Some(id) => {
            cached(id);
        }
        None => notice_no_model("reco.warm_cache"),
    }
    JsonbText::of(&info_json())
}
