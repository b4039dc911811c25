//! Candidates from the deployed model's pgvector HNSW indexes (reco.hnsw_min_items): for a large
//! catalogue, an index search instead of a pass over every cached item vector.
//!
//! Training builds one partial index per model and space (`item_vectors_<model>_<space>_hnsw`
//! on `v::vector(dims)`, see train.rs); the query names the model and the dimensions as
//! literals so that the planner can match the partial index, and is prepared once per backend
//! and model. A search returns `hnsw.ef_search` candidates (pgvector's knob; 40 by default).
use crate::error::OrRaise;
use crate::vector;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::PgOid;
use reco_engine::serve::{Model, Space};
use std::cell::RefCell;
use std::collections::HashMap;

/// What this backend knows of a model's indexes: per space, a prepared search (None: no index).
struct Indexes {
    model_id: i64,
    vector_oid: pg_sys::Oid,
    /// per space and limit (a literal in the statement: with `LIMIT $n` the plan cache keeps
    /// choosing a custom plan, i.e. plans on every call)
    plans: HashMap<(&'static str, usize), Option<OwnedPreparedStatement>>,
}

thread_local! {
    static INDEXES: RefCell<Option<Indexes>> = const { RefCell::new(None) };
}

/// The operator that ranks a space as its index does: ALS scores are inner products, content
/// vectors are compared by cosine.
pub fn operator(space: &str) -> &'static str {
    if space == "als" {
        "<#>"
    } else {
        "<=>"
    }
}

/// How many candidates a search returns: pgvector's own `hnsw.ef_search` (its default, 40, when
/// the setting is not there), the DBA's usual knob for HNSW recall against speed.
pub fn ef_search() -> usize {
    crate::gucs::setting(c"hnsw.ef_search").and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// The `limit` items of space `space` nearest to `q` by the model's HNSW index, best first,
/// as catalogue indexes; None when the model has no index for the space (trained with
/// `"hnsw": false`). The index is on `vector(q.len())`: the engine asks only with vectors of
/// the space's width.
pub fn candidates(c: &SpiClient<'_>, m: &Model, space: Space, q: &[f32], limit: usize) -> Option<Vec<u32>> {
    if limit == 0 {
        return None;
    }
    let (space, dims) = (space.name(), q.len());
    let plan = INDEXES.with(|x| {
        let mut x = x.borrow_mut();
        if x.as_ref().is_none_or(|i| i.model_id != m.model_id) {
            *x = Some(Indexes { model_id: m.model_id, vector_oid: vector::vector_type().oid, plans: HashMap::new() });
        }
        let idx = x.as_mut()?;
        let oid = idx.vector_oid;
        let model_id = m.model_id;
        // a plan is taken out while it runs (and put back after), so an error on the way only
        // costs a new prepare
        let plan = match idx.plans.remove(&(space, limit)) {
            Some(kept) => kept,
            None => {
                let exists: bool = c
                    .select("SELECT to_regclass($1) IS NOT NULL", None, &[DatumWithOid::from(format!("reco.item_vectors_{model_id}_{space}_hnsw").as_str())])
                    .or_raise()
                    .first()
                    .get::<bool>(1)
                    .or_raise()
                    .unwrap_or(false);
                exists.then(|| {
                    let vs = vector::schema();
                    let sql = format!(
                        "SELECT item_id FROM reco.item_vectors WHERE model_id = {model_id} AND space = '{space}'
                          ORDER BY v::{vs}.vector({dims}) OPERATOR({vs}.{}) $1 LIMIT {limit}",
                        operator(space)
                    );
                    c.prepare(sql.as_str(), &[PgOid::from(oid)]).or_raise().keep()
                })
            }
        };
        if plan.is_none() {
            idx.plans.insert((space, limit), None);
        }
        plan.map(|p| (p, oid))
    });
    let (plan, oid) = plan?;
    // SAFETY: a palloc'd `vector` varlena and the type's oid
    let q_arg = unsafe { DatumWithOid::new(vector::to_datum(q), oid) };
    let out: Vec<u32> =
        c.select(&plan, None, &[q_arg]).or_raise().filter_map(|r| r.get::<String>(1).or_raise()).filter_map(|id| m.cat.index.get(&id).copied()).collect();
    INDEXES.with(|x| {
        if let Some(i) = x.borrow_mut().as_mut().filter(|i| i.model_id == m.model_id) {
            i.plans.insert((space, limit), Some(plan));
        }
    });
    Some(out)
}
