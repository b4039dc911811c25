//! reco.train and reco.evaluate: read the canonical model in one snapshot, train in
//! `reco_engine::models`, store what the model needs for scoring. NOTICEs report progress.
use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use crate::vector;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use reco_engine::eval::Summary;
use reco_engine::models::content::ItemFeatures;
use reco_engine::models::dataset::{contribution, Dataset, Event, Interner, NONE};
use reco_engine::models::hybrid::MEMBERS;
use reco_engine::models::linalg::Exec;
use reco_engine::models::pipeline::{self, Catalog, Kind, Params, Step, Trained};
use reco_engine::{Error, ErrorKind};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// Everything training reads, from one statement (one snapshot).
struct Loaded {
    ds: Dataset,
    catalog: Catalog,
    items: Interner,
    users: Interner,
    categories: Interner,
    data_from: Option<i64>,
    data_to: Option<i64>,
}

const READ_SQL: &str = concat!(
    "SELECT 0, i.item_id, NULL::text, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::timestamptz, ",
    super::items::feature_columns!(),
    "
  FROM reco.items i
UNION ALL
SELECT 1, e.item_id, e.customer_id, e.session_id, e.order_id, w.weight, e.value, e.occurred_at,
       e.kind, NULL, NULL, NULL, NULL, NULL, NULL
  FROM reco.events e JOIN reco.event_weights w ON w.kind = e.kind
 WHERE e.customer_id IS NOT NULL AND e.item_id IS NOT NULL AND w.weight <> 0
   AND ($1 = 0 OR e.occurred_at >= now() - make_interval(secs => $1 * 86400))"
);

fn item_index(l: &mut Loaded, id: &str) -> u32 {
    let i = l.items.get_or_insert(id);
    if i as usize == l.catalog.features.len() {
        l.catalog.features.push(ItemFeatures::default());
        l.catalog.category.push(l.categories.get_or_insert(""));
    }
    i
}

fn load(window_days: f64, progress: &mut dyn FnMut(&str)) -> Loaded {
    let mut l = Loaded {
        ds: Dataset::default(),
        catalog: Catalog::default(),
        items: Interner::default(),
        users: Interner::default(),
        categories: Interner::default(),
        data_from: None,
        data_to: None,
    };
    let (mut baskets, mut sessions) = (Interner::default(), Interner::default());
    Spi::connect(|c| {
        super::scan(c, READ_SQL, &[DatumWithOid::from(window_days)], 20_000, |r| {
            let src: i32 = r.get(1).or_raise().unwrap_or(1);
            let item_id: String = r.get(2).or_raise().unwrap_or_default();
            if src == 0 {
                let i = item_index(&mut l, &item_id) as usize;
                let f = super::items::features(r, 9);
                l.catalog.category[i] = l.categories.get_or_insert(f.category.as_deref().unwrap_or(""));
                l.catalog.features[i] = f;
                return;
            }
            let customer: String = r.get(3).or_raise().unwrap_or_default();
            let session: Option<String> = r.get(4).or_raise();
            let order: Option<String> = r.get(5).or_raise();
            let weight: f64 = r.get(6).or_raise().unwrap_or(0.0);
            let value: Option<f64> = r.get(7).or_raise();
            let at: i64 = r.get::<TimestampWithTimeZone>(8).or_raise().map(pg_sys::TimestampTz::from).unwrap_or(0);
            let kind: String = r.get(9).or_raise().unwrap_or_default();
            let w = contribution(&kind, value, weight) as f32;
            let basket = match (&order, kind.as_str()) {
                (Some(o), "purchase") => baskets.get_or_insert(o),
                _ => NONE,
            };
            let session = match (&session, kind.as_str()) {
                (Some(s), "view" | "click" | "cart_add") => sessions.get_or_insert(s),
                _ => NONE,
            };
            let ev = Event { user: l.users.get_or_insert(&customer), item: item_index(&mut l, &item_id), weight: w, at, basket, session };
            l.data_from = Some(l.data_from.map_or(at, |x| x.min(at)));
            l.data_to = Some(l.data_to.map_or(at, |x| x.max(at)));
            l.ds.events.push(ev);
            if l.ds.events.len().is_multiple_of(100_000) {
                progress(&format!("read {} events", l.ds.events.len()));
            }
        });
    });
    progress(&format!("read {} events", l.ds.events.len()));
    l.ds.n_users = l.users.len();
    l.ds.n_items = l.items.len();
    l
}

/// A progress reporter: a NOTICE with the elapsed time, and a chance to be cancelled.
fn notices(label: &str, started: Instant) -> impl FnMut(&str) + '_ {
    move |what| {
        pg_sys::check_for_interrupts!();
        pgrx::notice!("{label}: {what} ({:.1}s)", started.elapsed().as_secs_f64());
    }
}

/// A rayon pool of `reco.training_threads` threads that never take PostgreSQL's signals (the
/// handlers must run on the backend's own thread).
fn pool() -> rayon::ThreadPool {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let n = match crate::gucs::TRAINING_THREADS.get() {
        0 => cores,
        n => (n as usize).min(2 * cores),
    };
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let p = rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("pg_reco train {i}")).build();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        p.unwrap_or_else(|e| {
            raise(Error::new(ErrorKind::LimitExceeded, format!("could not start {n} training threads: {e}")).hint("lower reco.training_threads"))
        })
    }
}

/// The backend's resident memory now and at its peak (bytes), from /proc; the peak is reset
/// first when `reset`.
fn memory(reset: bool) -> (i64, i64) {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn summary_json(s: &Summary) -> Value {
    let r = |x: f64| (x * 1e6).round() / 1e6;
    json!({"ndcg": r(s.ndcg), "recall": r(s.recall), "hit_rate": r(s.hit_rate), "map": r(s.map), "coverage": r(s.coverage), "users": s.users})
}

/// The metrics of a run: its own kind's at top level, members' below.
fn metrics_json(kind: Kind, t: &Trained, p: &Params) -> Option<Value> {
    let rep = t.report.as_ref()?;
    let own = if kind == Kind::Hybrid { rep.hybrid } else { rep.members.iter().flatten().next().copied().unwrap_or_default() };
    let mut m = summary_json(&own);
    let o = m.as_object_mut()?;
    o.insert("k".into(), json!(p.k));
    o.insert("holdout".into(), json!(p.holdout));
    o.insert("train_events".into(), json!(t.n_train));
    o.insert("test_events".into(), json!(t.n_test));
    if kind == Kind::Hybrid {
        let members: Map<String, Value> = MEMBERS.iter().zip(&rep.members).filter_map(|(n, s)| Some((n.to_string(), summary_json(s.as_ref()?)))).collect();
        o.insert("members".into(), Value::Object(members));
    }
    Some(m)
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

/// Runs the pipeline on a private pool, with NOTICEs and cancellation between steps.
fn run(l: &Loaded, kind: Kind, p: &Params, started: Instant, label: &str) -> Trained {
    let end = l.data_to.unwrap_or(0);
    let pool = pool();
    let r = {
        let cancel = cancel_requested;
        let exec = Exec { pool: Some(&pool), cancel: Some(&cancel) };
        pipeline::train(&l.ds, &l.catalog, end, kind, p, exec, |step| -> Result<(), std::convert::Infallible> {
            pg_sys::check_for_interrupts!();
            let secs = started.elapsed().as_secs_f64();
            match step {
                Step::Phase(name) => pgrx::notice!("{label}: {name} ({secs:.1}s)"),
                Step::Iteration { phase, iteration, of, loss } => match loss {
                    Some(loss) => pgrx::notice!("{label}: {phase} iteration {iteration}/{of}, loss {loss:.6} ({secs:.1}s)"),
                    None => pgrx::notice!("{label}: {phase} iteration {iteration}/{of} ({secs:.1}s)"),
                },
            }
            Ok(())
        })
    };
    // cancellation leaves through check_for_interrupts!, so the callback never fails; a run
    // cut short after its last callback is caught here
    leave_if_cancelled();
    match r {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// Whether PostgreSQL was asked to cancel this statement or end this backend
/// (statement_timeout, pg_cancel_backend, pg_terminate_backend). Its signal handlers set these
/// flags while the backend's thread waits for the training pool; the pool's threads read them
/// (Exec::cancelled) and skip the rest of their work.
pub(crate) fn cancel_requested() -> bool {
    // SAFETY: reads of two sig_atomic_t globals that signal handlers write; volatile, as in C
    unsafe { std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0 || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0 }
}

/// Raises the pending cancel (or termination) if there is one. When interrupts are held off
/// (rare here) PostgreSQL would not raise it yet, but the work was already skipped: raise
/// 57014 ourselves rather than return a result computed from skipped work.
pub(crate) fn leave_if_cancelled() {
    pg_sys::check_for_interrupts!();
    if cancel_requested() {
        raise(
            Error::new(ErrorKind::QueryCanceled, "canceling statement: pg_reco stopped its training threads")
                .hint("the statement was cancelled or hit statement_timeout"),
        );
    }
}

const ITEM_VECTORS_SQL: &str = "INSERT INTO reco.item_vectors (model_id, space, item_id, v) SELECT $3, $4, unnest($1::text[]), unnest($2)";
const CUSTOMER_VECTORS_SQL: &str = "INSERT INTO reco.customer_vectors (model_id, space, customer_id, v) SELECT $3, $4, unnest($1::text[]), unnest($2)";

/// The model's HNSW index on a space, built by reco._index_item_vectors (owned by the owner of
/// reco.item_vectors, so that reco_admin can train without owning the table).
fn hnsw(model_id: i64, space: &str, dims: usize) {
    Spi::run_with_args(
        "SELECT reco._index_item_vectors($1, $2, $3)",
        &[DatumWithOid::from(model_id), DatumWithOid::from(space), DatumWithOid::from(dims as i32)],
    )
    .or_raise();
}

/// A space's HNSW index (ALS by inner product, content by cosine) and, for a catalogue served
/// from the indexes (`reco.hnsw_min_items`), each item's nearest items found with it.
fn index_space(model_id: i64, space: &str, dims: usize, l: &Loaded, progress: &mut dyn FnMut(&str)) {
    let name = if space == "als" { "ALS" } else { "content" };
    progress(&format!("indexing {name} item vectors (HNSW)"));
    hnsw(model_id, space, dims);
    if crate::gucs::index_backed(l.ds.n_items) {
        progress(&format!("finding each item's nearest items by {name} (HNSW)"));
        knn(model_id, space, dims, &l.items);
    }
}

/// How many nearest items training keeps per item and space (reco.item_knn).
pub const KNN: usize = 30;

/// Each item's `KNN` nearest items in `space`, found with the model's HNSW index for the space
/// (one search per item, `hnsw.ef_search` deep; ALS by inner product, content by cosine, items
/// without content features skipped), stored as the model's item numbers so that a backend
/// loads them without a lookup per neighbour.
fn knn(model_id: i64, space: &str, dims: usize, items: &Interner) {
    let op = super::hnsw::operator(space);
    let vs = vector::schema();
    let skip_zero = if space == "als" { String::new() } else { format!("AND {vs}.vector_norm(a.v::{vs}.vector({dims})) > 0") };
    let sql = format!(
        "SELECT a.item_id, ARRAY(SELECT b.item_id FROM reco.item_vectors b WHERE b.model_id = {model_id} AND b.space = '{space}'
                                  ORDER BY b.v::{vs}.vector({dims}) OPERATOR({vs}.{op}) a.v::{vs}.vector({dims}) LIMIT {})
           FROM reco.item_vectors a WHERE a.model_id = {model_id} AND a.space = '{space}' {skip_zero}",
        KNN + 1
    );
    let (mut ids, mut nos, mut ends, mut flat): (Vec<String>, Vec<i32>, Vec<i32>, Vec<i32>) = Default::default();
    // the vectors were written by this transaction, after the statistics: without enable_sort
    // off the planner sorts every item's whole space instead of searching the index
    // (quadratic); and a search returns at most hnsw.ef_search items
    let setting = |name: &str| Spi::get_one_with_args::<String>("SELECT current_setting($1, true)", &[DatumWithOid::from(name)]).or_raise();
    let restore = [("enable_sort", setting("enable_sort")), ("hnsw.ef_search", setting("hnsw.ef_search"))];
    Spi::run("SELECT set_config('enable_sort', 'off', true)").or_raise();
    if super::hnsw::ef_search() <= KNN {
        Spi::run(&format!("SELECT set_config('hnsw.ef_search', '{}', true)", KNN + 1)).or_raise();
    }
    Spi::connect(|c| {
        super::scan(c, &sql, &[], 10_000, |r| {
            let Some(id) = r.get::<String>(1).or_raise() else { return };
            let Some(no) = items.get(&id) else { return };
            let list: Vec<Option<String>> = r.get(2).or_raise().unwrap_or_default();
            flat.extend(list.iter().flatten().filter_map(|n| items.get(n)).filter(|&n| n != no).take(KNN).map(|n| n as i32));
            ends.push(flat.len() as i32);
            nos.push(no as i32);
            ids.push(id);
        });
    });
    for (name, value) in &restore {
        if let Some(v) = value {
            Spi::run_with_args("SELECT set_config($1, $2, true)", &[DatumWithOid::from(*name), DatumWithOid::from(v.as_str())]).or_raise();
        }
    }
    const BATCH: usize = 20_000;
    let mut start = 0usize;
    while start < ids.len() {
        let end = (start + BATCH).min(ids.len());
        let base = if start == 0 { 0 } else { ends[start - 1] as usize };
        let offsets: Vec<i32> = ends[start..end].iter().map(|e| *e - base as i32).collect();
        let slice: Vec<i32> = flat[base..ends[end - 1] as usize].to_vec();
        Spi::connect_mut(|c| {
            crate::plans::update(
                c,
                "INSERT INTO reco.item_knn (model_id, space, item_id, item_no, neighbors)
                 SELECT $1, $2, $3[i], $4[i], $6[coalesce($5[i - 1], 0) + 1 : $5[i]]
                   FROM generate_subscripts($3::text[], 1) i",
                &[
                    DatumWithOid::from(model_id),
                    DatumWithOid::from(space),
                    DatumWithOid::from(ids[start..end].to_vec()),
                    DatumWithOid::from(nos[start..end].to_vec()),
                    DatumWithOid::from(offsets),
                    DatumWithOid::from(slice),
                ],
            )
            .or_raise();
        });
        start = end;
    }
}

/// Writes what the model needs for scoring.
fn store(model_id: i64, l: &Loaded, t: &Trained, p: &Params, progress: &mut dyn FnMut(&str)) {
    let vt = vector::vector_type();
    if let Some(a) = &t.als {
        progress("storing ALS vectors");
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_items).filter(|&i| t.has_item[i]).map(|i| (l.items.ids[i].as_str(), a.item_vec(i))).unzip();
        vector::insert_batched(vt, ITEM_VECTORS_SQL, model_id, "als", &keys, &vecs);
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_users).filter(|&u| t.has_user[u]).map(|u| (l.users.ids[u].as_str(), a.user_vec(u))).unzip();
        vector::insert_batched(vt, CUSTOMER_VECTORS_SQL, model_id, "als", &keys, &vecs);
        if p.hnsw {
            index_space(model_id, "als", a.factors, l, progress);
        }
    }
    if let Some(c) = &t.content {
        progress("storing content vectors");
        let dims = p.content_dims;
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_items).map(|i| (l.items.ids[i].as_str(), &c[i * dims..(i + 1) * dims])).unzip();
        vector::insert_batched(vt, ITEM_VECTORS_SQL, model_id, "content", &keys, &vecs);
        if p.hnsw {
            index_space(model_id, "content", dims, l, progress);
        }
    }
    for (source, lists) in [("basket", &t.basket), ("session", &t.session)] {
        let Some(lists) = lists else { continue };
        progress(&format!("storing {source} neighbours"));
        let mut cols: NeighbourColumns = Default::default();
        for (i, list) in lists.iter().enumerate() {
            for (rank, n) in list.iter().enumerate() {
                cols.0.push(&l.items.ids[i]);
                cols.1.push(rank as i32 + 1);
                cols.2.push(&l.items.ids[n.item as usize]);
                cols.3.push(n.support as i32);
                cols.4.push(n.confidence);
                cols.5.push(n.lift);
                cols.6.push(n.score);
                cols.7.push(n.cross_category);
            }
        }
        Spi::connect_mut(|c| {
            crate::plans::update(
                c,
                "INSERT INTO reco.item_neighbors (model_id, source, item_id, rank, neighbor_id, support, confidence, lift, score, cross_category)
                 SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::int[], $7::real[], $8::real[], $9::real[], $10::bool[])",
                &[
                    DatumWithOid::from(model_id),
                    DatumWithOid::from(source),
                    DatumWithOid::from(cols.0),
                    DatumWithOid::from(cols.1),
                    DatumWithOid::from(cols.2),
                    DatumWithOid::from(cols.3),
                    DatumWithOid::from(cols.4),
                    DatumWithOid::from(cols.5),
                    DatumWithOid::from(cols.6),
                    DatumWithOid::from(cols.7),
                ],
            )
            .or_raise();
        });
    }
    if let Some(pop) = &t.popularity {
        progress("storing popularity");
        store_segments(model_id, l, p);
        let idx: Vec<usize> = (0..l.ds.n_items).filter(|&i| pop.score[i] > 0.0).collect();
        for chunk in idx.chunks(10_000) {
            let ids: Vec<&str> = chunk.iter().map(|&i| l.items.ids[i].as_str()).collect();
            let cats: Vec<Option<&str>> = chunk.iter().map(|&i| l.catalog.features[i].category.as_deref()).collect();
            let score: Vec<f32> = chunk.iter().map(|&i| pop.score[i]).collect();
            let hours: Vec<f32> = chunk.iter().flat_map(|&i| pop.by_hour[i]).collect();
            let days: Vec<f32> = chunk.iter().flat_map(|&i| pop.by_weekday[i]).collect();
            Spi::connect_mut(|c| {
                crate::plans::update(
                    c,
                    "INSERT INTO reco.item_popularity (model_id, item_id, category, score, by_hour, by_weekday)
                     SELECT $1, i, c, s, $5[(n - 1) * 24 + 1 : n * 24], $6[(n - 1) * 7 + 1 : n * 7]
                       FROM unnest($2::text[], $3::text[], $4::real[]) WITH ORDINALITY AS u(i, c, s, n)",
                    &[
                        DatumWithOid::from(model_id),
                        DatumWithOid::from(ids),
                        DatumWithOid::from(cats),
                        DatumWithOid::from(score),
                        DatumWithOid::from(hours),
                        DatumWithOid::from(days),
                    ],
                )
                .or_raise();
            });
        }
    }
}

/// Best sellers per customer segment (`reco.customers.attributes->>'segment'`), decayed like
/// the popularity member, top [`SEGMENT_TOP`] each: the starter packs of new customers.
fn store_segments(model_id: i64, l: &Loaded, p: &Params) {
    use reco_engine::models::popularity::{top_by_group, Interaction};
    use reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS;
    let mut names = Interner::default();
    let mut group: Vec<Option<u32>> = vec![None; l.ds.n_users];
    Spi::connect(|c| {
        super::scan(c, "SELECT customer_id, attributes->>'segment' FROM reco.customers WHERE attributes ? 'segment'", &[], 20_000, |r| {
            let (Some(id), Some(seg)) = (r.get::<String>(1).or_raise(), r.get::<String>(2).or_raise()) else { return };
            if let Some(u) = l.users.get(&id) {
                group[u as usize] = Some(names.get_or_insert(&seg));
            }
        });
    });
    if names.is_empty() {
        return;
    }
    let xs: Vec<(u32, Interaction)> =
        l.ds.events
            .iter()
            .filter_map(|e| {
                let g = group.get(e.user as usize).copied().flatten()?;
                Some((g, Interaction { item: e.item, weight: e.weight, at_ms: (e.at + PG_EPOCH_UNIX_MICROS) / 1000 }))
            })
            .collect();
    let now_ms = (l.data_to.unwrap_or(0) + PG_EPOCH_UNIX_MICROS) / 1000;
    let tops = top_by_group(&xs, names.len(), l.ds.n_items, now_ms, p.popularity_half_life_days, SEGMENT_TOP);
    let (mut seg, mut rank, mut item, mut score) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (g, top) in tops.iter().enumerate() {
        for (r, (i, s)) in top.iter().enumerate() {
            seg.push(names.ids[g].as_str());
            rank.push(r as i32 + 1);
            item.push(l.items.ids[*i as usize].as_str());
            score.push(*s);
        }
    }
    Spi::connect_mut(|c| {
        crate::plans::update(
            c,
            "INSERT INTO reco.segment_popularity (model_id, segment, rank, item_id, score)
             SELECT $1, s, r, i, x FROM unnest($2::text[], $3::int[], $4::text[], $5::real[]) AS u(s, r, i, x)",
            &[DatumWithOid::from(model_id), DatumWithOid::from(seg), DatumWithOid::from(rank), DatumWithOid::from(item), DatumWithOid::from(score)],
        )
        .or_raise();
    });
}

/// Neighbour rows by column (item, rank, neighbour, support, confidence, lift, score,
/// cross-category), bound as arrays in one INSERT.
type NeighbourColumns<'a> = (Vec<&'a str>, Vec<i32>, Vec<&'a str>, Vec<i32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>);

/// Items kept per segment in reco.segment_popularity.
const SEGMENT_TOP: usize = 100;

/// Runs `f` in a subtransaction: on error, the subtransaction is rolled back (so the session is
/// clean again) and the error handed back to be recorded and re-thrown.
fn in_subtransaction<R>(f: impl FnOnce() -> R) -> Result<R, Box<CaughtError>> {
    unsafe {
        let ctx = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(ctx);
        let r = PgTryBuilder::new(std::panic::AssertUnwindSafe(move || Ok(f())))
            .catch_others(|e| Err(Box::new(e)))
            .catch_rust_panic(|e| Err(Box::new(e)))
            .execute();
        match r {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(ctx);
        pg_sys::CurrentResourceOwner = owner;
        r
    }
}

fn error_text(e: &CaughtError) -> String {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => {
            // the five-character SQLSTATE, unpacked from PostgreSQL's 6-bit encoding
            let code = r.sql_error_code() as i32;
            let state: String = (0..5).map(|i| char::from(b'0' + ((code >> (6 * i)) & 0x3F) as u8)).collect();
            format!("{state}: {}", r.message())
        }
    }
}

/// Trains a model of `kind` with `params` (see docs/reference.md for every key) and returns its
/// id. The model is `ready`, not deployed: compare it with `reco.models.metrics`, then
/// `reco.deploy`. Progress comes as NOTICEs.
#[pg_extern(volatile)]
fn train(kind: default!(Option<&str>, "'hybrid'"), params: default!(Option<Payload>, "'{}'")) -> i64 {
    let kind = Kind::parse(super::required(kind, "kind", "pass a value: hybrid, als, cooccurrence, content, popularity")).map_err(|e| e.at("kind")).or_raise();
    let (p, effective) = parse_params(params);
    let started = Instant::now();
    super::registry::reap_orphans();
    let model_id: i64 = Spi::get_one("SELECT nextval('reco.models_model_id_seq')").or_raise().unwrap_or(0);
    super::registry::lock(model_id);
    let own_row = super::registry::open(model_id, kind.as_str(), &effective.to_string());
    let label = format!("train {} model {model_id}", kind.as_str());
    let result = in_subtransaction(|| {
        let (rss0, _) = memory(true);
        let mut progress = notices(&label, started);
        let l = load(p.window_days, &mut progress);
        if l.ds.events.is_empty() {
            raise(
                Error::new(ErrorKind::NotInPrerequisiteState, "there are no events to train on")
                    .hint("ingest orders and events first (reco.ingest_orders, reco.record_event), or reco.load_demo() to try pg_reco"),
            );
        }
        let t = run(&l, kind, &p, started, &label);
        store(model_id, &l, &t, &p, &mut progress);
        let (_, peak) = memory(false);
        let metrics = metrics_json(kind, &t, &p);
        Spi::run_with_args(
            "UPDATE reco.models SET status = 'ready', params = $2, data_from = $3, data_to = $4, n_customers = $5, n_items = $6,
                    n_events = $7, n_interactions = $8, train_seconds = $9, peak_memory_bytes = $10, metrics = $11, blend = $12,
                    finished_at = clock_timestamp()
              WHERE model_id = $1",
            &[
                DatumWithOid::from(model_id),
                DatumWithOid::from(pgrx::JsonB(effective.clone())),
                DatumWithOid::from(l.data_from.map(super::timestamptz)),
                DatumWithOid::from(l.data_to.map(super::timestamptz)),
                DatumWithOid::from(l.ds.n_users as i64),
                DatumWithOid::from(l.ds.n_items as i64),
                DatumWithOid::from(l.ds.events.len() as i64),
                DatumWithOid::from(t.nnz as i64),
                DatumWithOid::from(started.elapsed().as_secs_f64()),
                DatumWithOid::from((peak - rss0).max(0)),
                DatumWithOid::from(metrics.clone().map(pgrx::JsonB)),
                DatumWithOid::from(pgrx::JsonB(blend_json(&t.weights))),
            ],
        )
        .or_raise();
        if let Some(m) = metrics {
            pgrx::notice!("{label}: ready in {:.1}s; holdout ndcg@{} {}, recall@{} {}", started.elapsed().as_secs_f64(), p.k, m["ndcg"], p.k, m["recall"]);
        }
    });
    match result {
        Ok(()) => model_id,
        Err(e) => {
            if own_row {
                super::registry::fail(model_id, &error_text(&e));
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
    let started = Instant::now();
    let l = load(p.window_days, &mut notices("evaluate", started));
    if l.ds.events.is_empty() {
        raise(Error::new(ErrorKind::NotInPrerequisiteState, "there are no events to evaluate on").hint("ingest orders and events first"));
    }
    let t = run(&l, Kind::Hybrid, &p, started, "evaluate");
    let mut kinds = Map::new();
    if let Some(r) = &t.report {
        for (n, s) in MEMBERS.iter().zip(&r.members) {
            if let Some(s) = s {
                kinds.insert(n.to_string(), summary_json(s));
            }
        }
        let mut h = summary_json(&r.hybrid);
        h["weights"] = blend_json(&r.weights);
        kinds.insert("hybrid".into(), h);
    }
    JsonbText::of(&json!({
        "k": p.k, "holdout": p.holdout, "customers": l.ds.n_users, "items": l.ds.n_items, "events": l.ds.events.len(),
        "train_events": t.n_train, "test_events": t.n_test, "kinds": kinds, "params": effective,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    }))
}
