//! Prepared SPI plans kept for the life of the backend, so hot statements are parsed and
//! planned once instead of on every call (planning was a third of a preference capture).
//! A plan is taken out of the cache while it runs, so a re-entrant call simply prepares its
//! own; PostgreSQL's plan cache re-validates kept plans after schema changes.
use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

fn take(sql: &'static str) -> Option<OwnedPreparedStatement> {
    PLANS.with(|p| p.borrow_mut().remove(sql))
}

fn put(sql: &'static str, plan: OwnedPreparedStatement) {
    PLANS.with(|p| {
        p.borrow_mut().insert(sql, plan);
    });
}

fn types(args: &[DatumWithOid]) -> Vec<PgOid> {
    args.iter().map(|a| PgOid::from(a.oid())).collect()
}

/// The kept plan of `sql`, or a new one made by `prepare`; give it back with `put`.
fn checkout(sql: &'static str, prepare: impl FnOnce() -> SpiResult<OwnedPreparedStatement>) -> SpiResult<OwnedPreparedStatement> {
    match take(sql) {
        Some(p) => Ok(p),
        None => prepare(),
    }
}

/// Runs a read-only statement with a kept plan.
pub fn select<'c>(client: &SpiClient<'c>, sql: &'static str, args: &[DatumWithOid]) -> SpiResult<SpiTupleTable<'c>> {
    let plan = checkout(sql, || Ok(client.prepare(sql, &types(args))?.keep()))?;
    let out = client.select(&plan, None, args);
    put(sql, plan);
    out
}

/// Runs a writing statement with a kept plan.
pub fn update<'c>(client: &mut SpiClient<'c>, sql: &'static str, args: &[DatumWithOid]) -> SpiResult<SpiTupleTable<'c>> {
    let plan = checkout(sql, || Ok(client.prepare_mut(sql, &types(args))?.keep()))?;
    let out = client.update(&plan, None, args);
    put(sql, plan);
    out
}

/// Runs a read-only statement with a kept plan, always its generic plan. PostgreSQL plans a kept
/// statement afresh for its parameters on every run while those custom plans look cheaper than
/// the generic one, which for a statement over `unnest($1)` or a short key lookup is every run:
/// for statements run once per row of a batch (a render per candidate), whose best plan does not
/// depend on the values, that planning was a quarter of the time. The session's
/// `plan_cache_mode` is back as it was when this returns or unwinds.
pub fn select_generic<'c>(client: &SpiClient<'c>, sql: &'static str, args: &[DatumWithOid]) -> SpiResult<SpiTupleTable<'c>> {
    struct Restore(std::ffi::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: a backend's own GUC variable, written on its only thread
            unsafe { pgrx::pg_sys::plan_cache_mode = self.0 };
        }
    }
    // SAFETY: as above; PostgreSQL reads it when it picks the plan (GetCachedPlan), within the
    // call below, and nothing else runs in between
    let _restore = Restore(unsafe { pgrx::pg_sys::plan_cache_mode });
    // SAFETY: the same variable, on the same thread; restored by `_restore` on return or unwind
    unsafe { pgrx::pg_sys::plan_cache_mode = pgrx::pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as std::ffi::c_int };
    select(client, sql, args)
}
