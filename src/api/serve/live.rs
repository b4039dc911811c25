//! What serving reads in the call's snapshot, with SPI: the deployed model's id and the
//! placement's row, the customer and their history, and the engine's [`Live`] questions (stock,
//! current categories, back in stock, new items, best sellers without a model, index searches).
//! Nothing here decides what a customer sees; `reco_engine::serve::policy` does.
use crate::error::{raise, OrRaise};
use crate::{gucs, plans, vector};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use reco_engine::serve::{History, Live, Model, Past, Placement, Profile, Settings, Space, Tuning};
use reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS;
use reco_engine::Error;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub fn ms_to_tz(ms: i64) -> TimestampWithTimeZone {
    super::super::timestamptz(ms * 1000 - PG_EPOCH_UNIX_MICROS)
}

/// The last microsecond of millisecond `ms`: the bound for "events up to now". A call's now is
/// in milliseconds, while an event recorded earlier in the same transaction carries the
/// transaction's start to the microsecond; bounding by the truncated now would hide it.
fn upto(ms: i64) -> TimestampWithTimeZone {
    super::super::timestamptz(ms * 1000 + 999 - PG_EPOCH_UNIX_MICROS)
}

/// The serving settings, from the `reco.*` GUCs (and pgvector's `hnsw.ef_search`).
pub fn tuning() -> Tuning {
    Tuning {
        max_per_category: gucs::MAX_PER_CATEGORY.get().max(0) as usize,
        diversity_penalty: gucs::DIVERSITY_PENALTY.get() as f32,
        seen_last: gucs::SEEN_LAST.get(),
        candidates: gucs::CANDIDATES.get().max(1) as usize,
        history_half_life_days: gucs::HISTORY_HALF_LIFE_DAYS.get(),
        preference_penalty: gucs::PREFERENCE_PENALTY.get() as f32,
        back_in_stock_days: gucs::BACK_IN_STOCK_DAYS.get(),
        hnsw_min_items: gucs::HNSW_MIN_ITEMS.get().max(0) as usize,
        item_knn: gucs::ITEM_KNN.get(),
        ef_search: crate::api::hnsw::ef_search(),
        demand_lead_days: gucs::DEMAND_LEAD_DAYS.get(),
    }
}

/// The deployed model (None when nothing is deployed), the placement's row and, with
/// `settings`, the event weights and repeatable categories: one statement. A placement with no
/// row is an error (22023): the caller asked for it by name.
pub fn deployed(c: &SpiClient<'_>, placement: &str, settings: bool) -> (Option<i64>, Placement, Settings) {
    let (model_id, row, out) = read(c, placement, settings);
    let Some(row) = row else {
        raise(
            Error::invalid(format!("placement {} is not known", reco_engine::error::show(placement)))
                .at("context.placement")
                .hint("placements: home, cart, checkout, post_purchase, email, or a row you add to reco.placement_weights"),
        )
    };
    (model_id, row, out)
}

/// [`deployed`] for the calls that name a built-in placement themselves (training's served
/// evaluation, complements, similar items, the cache warm-up): a row a DBA deleted counts as
/// the neutral placement instead of failing them.
pub fn deployed_or_neutral(c: &SpiClient<'_>, placement: &str, settings: bool) -> (Option<i64>, Placement, Settings) {
    let (model_id, row, out) = read(c, placement, settings);
    (model_id, row.unwrap_or_default(), out)
}

/// The statement behind [`deployed`]: the placement's row, or None when there is none.
fn read(c: &SpiClient<'_>, placement: &str, settings: bool) -> (Option<i64>, Option<Placement>, Settings) {
    // the placement's row; with `settings`, the weights, the repeatable categories and the
    // categories' limits per list too
    // (`demand`: the column, or 0 on SQL from before it, ahead of ALTER EXTENSION UPDATE)
    macro_rules! deployed_sql {
        ($demand:literal, $columns:literal, $from:literal) => {
            concat!(
                "SELECT (SELECT model_id FROM reco.models WHERE status = 'deployed'), p.popularity, p.cooccurrence, p.content, p.als,
                        p.session_boost, p.placement IS NOT NULL, p.complements_first, p.alternatives, ",
                $demand,
                $columns,
                " FROM (SELECT $1::text AS placement) x LEFT JOIN reco.placement_weights p ON p.placement = x.placement",
                $from
            )
        };
    }
    macro_rules! with_settings {
        ($demand:literal) => {
            deployed_sql!(
                $demand,
                ", w.kinds, w.weights, cs.repeatable, cs.limited, cs.limits",
                ", (SELECT array_agg(kind) AS kinds, array_agg(weight) AS weights FROM reco.event_weights) w,
                   (SELECT array_agg(category ORDER BY category) FILTER (WHERE repeatable) AS repeatable,
                           array_agg(category ORDER BY category) FILTER (WHERE max_per_list IS NOT NULL) AS limited,
                           array_agg(max_per_list ORDER BY category) FILTER (WHERE max_per_list IS NOT NULL) AS limits
                    FROM reco.category_settings) cs"
            )
        };
    }
    let sql = match (settings, crate::api::has_demand()) {
        (true, true) => with_settings!("p.demand"),
        (true, false) => with_settings!("0::real"),
        (false, true) => deployed_sql!("p.demand", "", ""),
        (false, false) => deployed_sql!("0::real", "", ""),
    };
    let rows = plans::select(c, sql, &[DatumWithOid::from(placement)]).or_raise();
    let r = rows.first();
    let known = r.get::<bool>(7).or_raise().unwrap_or(false);
    // a NULL multiplier (the columns are NOT NULL; a row edited by hand) counts as 1
    let f = |i: usize| r.get::<f32>(i).or_raise().unwrap_or(1.0);
    let mut out = Settings::default();
    if settings {
        let kinds: Vec<Option<String>> = r.get(11).or_raise().unwrap_or_default();
        let weights: Vec<Option<f64>> = r.get(12).or_raise().unwrap_or_default();
        out.weights = kinds.into_iter().zip(weights).filter_map(|(k, w)| Some((k?, w.unwrap_or(0.0)))).collect();
        out.repeatable = r.get::<Vec<Option<String>>>(13).or_raise().unwrap_or_default().into_iter().flatten().collect();
        let limited: Vec<Option<String>> = r.get(14).or_raise().unwrap_or_default();
        let limits: Vec<Option<i32>> = r.get(15).or_raise().unwrap_or_default();
        out.max_per_list = limited.into_iter().zip(limits).filter_map(|(c, n)| Some((c?, usize::try_from(n?).ok()?))).collect();
    }
    let placement = known.then(|| Placement {
        multipliers: [f(2), f(3), f(4), f(5)],
        session_boost: r.get::<f32>(6).or_raise().unwrap_or(1.0) as f64,
        complements_first: r.get::<bool>(8).or_raise().unwrap_or(false),
        alternatives: r.get::<bool>(9).or_raise().unwrap_or(false),
        demand: r.get::<f32>(10).or_raise().unwrap_or(0.0),
    });
    (r.get::<i64>(1).or_raise(), placement, out)
}

/// The customer's profile and history up to `now_ms` (and this session's events).
pub fn customer(c: &SpiClient<'_>, customer_id: Option<&str>, session_id: Option<&str>, model_id: Option<i64>, now_ms: i64) -> (Profile, History) {
    let mut profile = Profile::default();
    let mut history = History::default();
    let now = upto(now_ms);
    // on Citus the events statements name the customer's shard (docs/citus.md)
    let citus = crate::api::distributed();
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
        profile.timezone = r.get(1).or_raise();
        profile.segment = r.get(2).or_raise();
        profile.stored = r.get::<vector::Vector>(3).or_raise().map(|v| v.0);
    }
    // The customer's latest events (and this session's). When they are all of the customer's
    // events up to now, their purchases and returns are all of them too, and need no statement
    // of their own.
    let limit = i64::from(gucs::HISTORY_EVENTS.get());
    let mut complete = false;
    if limit > 0 && (customer_id.is_some() || session_id.is_some()) {
        // without a session, one index scan; with one, the union of the two. On Citus the
        // statements also name the rows' shard (events are distributed by shard_key: the
        // customer id, or 's:' || session_id for an anonymous session's events, docs/citus.md),
        // so each reads the customer's own shard, on this worker, instead of every shard.
        macro_rules! history_sql {
            ($mine:literal, $session:literal) => {
                concat!(
                    "SELECT e.item_id, e.kind, e.value, (extract(epoch FROM e.occurred_at) * 1000)::int8, e.session_id = $3,
                            e.customer_id IS NOT DISTINCT FROM $1
                       FROM (SELECT * FROM (SELECT event_id, customer_id, item_id, kind, value, occurred_at, session_id FROM reco.events
                                             WHERE customer_id = $1 AND item_id IS NOT NULL AND occurred_at <= $4",
                    $mine,
                    "
                                             ORDER BY occurred_at DESC LIMIT $2) a
                             UNION
                             SELECT * FROM (SELECT event_id, customer_id, item_id, kind, value, occurred_at, session_id FROM reco.events
                                             WHERE session_id = $3 AND item_id IS NOT NULL AND occurred_at <= $4",
                    $session,
                    "
                                             ORDER BY occurred_at DESC LIMIT $2) b) e"
                )
            };
        }
        macro_rules! own_history_sql {
            ($shard:literal) => {
                concat!(
                    "SELECT item_id, kind, value, (extract(epoch FROM occurred_at) * 1000)::int8, false, true
                       FROM reco.events
                      WHERE customer_id = $1",
                    $shard,
                    " AND item_id IS NOT NULL AND occurred_at <= $4
                      ORDER BY occurred_at DESC LIMIT $2"
                )
            };
        }
        let sql = match (session_id.is_none(), citus) {
            (true, false) => own_history_sql!(""),
            (true, true) => own_history_sql!(" AND shard_key = $1"),
            (false, false) => history_sql!("", ""),
            // a session's events are in its customer's shard once the customer is known
            (false, true) => history_sql!(" AND shard_key = $1", " AND shard_key IN ($1, 's:' || $3)"),
        };
        let args = [DatumWithOid::from(customer_id), DatumWithOid::from(limit), DatumWithOid::from(session_id), DatumWithOid::from(now)];
        for r in plans::select(c, sql, &args).or_raise() {
            // item_id and kind are NOT NULL (the filter and the table's constraint)
            history.events.push(Past {
                item: r.get(1).or_raise().unwrap_or_default(),
                kind: r.get(2).or_raise().unwrap_or_default(),
                value: r.get(3).or_raise(),
                at_ms: r.get(4).or_raise().unwrap_or(0),
                in_session: r.get(5).or_raise().unwrap_or(false),
                mine: customer_id.is_some() && r.get::<bool>(6).or_raise().unwrap_or(false),
            });
        }
        complete = (history.events.iter().filter(|p| p.mine).count() as i64) < limit;
    }
    if let (Some(id), false) = (customer_id, complete) {
        // more events than the history reads: every item the customer has (bought or rated,
        // reco_engine::serve::request::OWNING_KINDS) and the returns, on their own (the
        // categories read now, so nothing to re-check)
        let mut all = HashMap::new();
        macro_rules! owned_sql {
            ($shard:literal) => {
                concat!(
                    "SELECT e.item_id, bool_or(e.kind = 'return'), bool_or(coalesce(cs.repeatable, false))
                       FROM reco.events e LEFT JOIN reco.items i ON i.item_id = e.item_id
                       LEFT JOIN reco.category_settings cs ON cs.category = i.category
                      WHERE e.customer_id = $1 AND e.kind IN ('purchase', 'rating', 'return') AND e.item_id IS NOT NULL AND e.occurred_at <= $2",
                    $shard,
                    "
                      GROUP BY e.item_id"
                )
            };
        }
        // on Citus, the customer's own shard (as the history above)
        let sql = if citus { owned_sql!(" AND e.shard_key = $1") } else { owned_sql!("") };
        for r in plans::select(c, sql, &[DatumWithOid::from(id), DatumWithOid::from(now)]).or_raise() {
            let item: String = r.get(1).or_raise().unwrap_or_default();
            all.insert(item, (r.get(2).or_raise().unwrap_or(false), r.get(3).or_raise().unwrap_or(false)));
        }
        history.purchases = Some(all);
    }
    (profile, history)
}

/// The engine's live questions, answered with SPI in the call's snapshot.
pub struct SpiLive<'a, 'c> {
    pub c: &'a SpiClient<'c>,
}

/// The first column of every row, as text (a NULL is an error: these columns are NOT NULL).
fn ids(rows: pgrx::spi::SpiTupleTable<'_>) -> Vec<String> {
    rows.map(|r| r.get::<String>(1).or_raise().unwrap_or_default()).collect()
}

impl Live for SpiLive<'_, '_> {
    fn buyable(&mut self, ids_in: &[&str]) -> Vec<bool> {
        self.available(ids_in).into_iter().map(|n| n > 0.0).collect()
    }

    fn available(&mut self, ids_in: &[&str]) -> Vec<f64> {
        // every stock row has its item (a foreign key); asking for no inactive item probes the
        // small partial index of inactive items instead of the catalogue's primary key
        let rows = plans::select(
            self.c,
            "SELECT s.item_id, s.available FROM reco.stock s
              WHERE s.item_id = ANY($1) AND s.available > 0 AND NOT s.backordered
                AND NOT EXISTS (SELECT 1 FROM reco.items i WHERE i.item_id = s.item_id AND NOT i.active)",
            &[DatumWithOid::from(ids_in.to_vec())],
        )
        .or_raise();
        let mut units: HashMap<String, f64> = HashMap::new();
        for r in rows {
            if let (Some(id), Some(n)) = (r.get::<String>(1).or_raise(), r.get::<i32>(2).or_raise()) {
                units.insert(id, f64::from(n));
            }
        }
        ids_in.iter().map(|id| units.get(*id).copied().unwrap_or(0.0)).collect()
    }

    fn in_categories(&mut self, ids_in: &[&str], categories: &[String]) -> HashSet<String> {
        ids(plans::select(
            self.c,
            "SELECT item_id FROM reco.items WHERE item_id = ANY($1) AND category = ANY($2)",
            &[DatumWithOid::from(ids_in.to_vec()), DatumWithOid::from(categories.to_vec())],
        )
        .or_raise())
        .into_iter()
        .collect()
    }

    fn back_in_stock(&mut self, ids_in: &[&str], since_ms: i64, now_ms: i64) -> HashSet<String> {
        ids(plans::select(
            self.c,
            // a call's now is in milliseconds
            "SELECT item_id FROM reco.stock
              WHERE item_id = ANY($1) AND back_in_stock_at > $2 AND date_trunc('milliseconds', back_in_stock_at) <= $3",
            &[DatumWithOid::from(ids_in.to_vec()), DatumWithOid::from(ms_to_tz(since_ms)), DatumWithOid::from(ms_to_tz(now_ms))],
        )
        .or_raise())
        .into_iter()
        .collect()
    }

    fn new_items(&mut self, after_ms: i64, skip: &[String], category: Option<&str>, not_categories: &[String], n: usize) -> Vec<(String, Option<String>)> {
        plans::select(
            self.c,
            "SELECT i.item_id, i.category
               FROM reco.items i JOIN reco.stock s ON s.item_id = i.item_id
              WHERE i.created_at > $1 AND i.active AND s.available > 0 AND NOT s.backordered AND i.item_id <> ALL ($2)
                AND ($3::text IS NULL OR i.category = $3) AND coalesce(i.category, '') <> ALL ($4)
              ORDER BY i.created_at DESC, i.item_id LIMIT $5",
            &[
                DatumWithOid::from(ms_to_tz(after_ms)),
                DatumWithOid::from(skip.to_vec()),
                DatumWithOid::from(category),
                DatumWithOid::from(not_categories.to_vec()),
                DatumWithOid::from(n as i64),
            ],
        )
        .or_raise()
        .map(|r| (r.get::<String>(1).or_raise().unwrap_or_default(), r.get::<String>(2).or_raise()))
        .collect()
    }

    fn recent_best_sellers(&mut self, skip: &[String], category: Option<&str>, n: usize, now_ms: i64) -> Vec<(String, f64)> {
        plans::select(
            self.c,
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
        .map(|r| (r.get::<String>(1).or_raise().unwrap_or_default(), r.get::<f64>(2).or_raise().unwrap_or(0.0)))
        .collect()
    }

    fn nearest(&mut self, m: &Model, space: Space, q: &[f32], limit: usize) -> Option<Vec<u32>> {
        crate::api::hnsw::candidates(self.c, m, space, q, limit)
    }

    fn preferences(&mut self, customer_id: &str) -> Map<String, Value> {
        crate::api::prefs::resolved(customer_id, &Map::new(), None)
    }
}
