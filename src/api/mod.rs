//! SQL functions by area.
pub mod demo;
pub mod events;
mod hnsw;
pub mod ingest;
mod items;
pub mod prefs;
pub mod registry;
pub mod scope;
pub mod serve;
pub mod standardize;
pub mod train;

use pgrx::prelude::*;

/// Runs a read-only statement through a cursor, `batch` rows at a time, calling `f` on each
/// row, so a large result is never held in memory whole.
pub fn scan(c: &pgrx::spi::SpiClient<'_>, sql: &str, args: &[pgrx::datum::DatumWithOid], batch: i64, mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData)) {
    use crate::error::OrRaise;
    let mut cur = c.open_cursor(sql, args);
    loop {
        let rows = cur.fetch(batch as _).or_raise();
        if rows.is_empty() {
            return;
        }
        for r in rows {
            f(&r);
        }
    }
}

/// The one id an insert of one row returned.
pub fn single_id(ids: Vec<i64>) -> i64 {
    ids.first().copied().unwrap_or_else(|| {
        crate::error::raise(
            reco_engine::Error::new(reco_engine::ErrorKind::NotInPrerequisiteState, "the insert returned no row")
                .hint("a row-level security policy or a trigger may have discarded it"),
        )
    })
}

/// The transaction's start time (`now()`), as the engine's UTC time.
pub fn transaction_start() -> chrono::DateTime<chrono::Utc> {
    // SAFETY: reads the current transaction's start, which every SQL function runs inside
    reco_engine::standardize::time::from_pg_micros(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() })
}

/// Engine timestamps are microseconds since 2000-01-01, PostgreSQL's own representation.
pub fn timestamptz(pg_micros: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(pg_micros).unwrap_or_else(|_| {
        crate::error::raise(
            reco_engine::Error::new(reco_engine::ErrorKind::DatetimeOverflow, "timestamp out of range")
                .hint("timestamps must fall between 4713 BC and 294276 AD"),
        )
    })
}

/// A required argument: its value, or 22004 naming it, with `hint` (for functions that are not
/// STRICT because some of their arguments may be NULL).
pub fn required<T>(v: Option<T>, name: &str, hint: &str) -> T {
    v.unwrap_or_else(|| crate::error::raise(reco_engine::Error::new(reco_engine::ErrorKind::NullValue, format!("{name} is NULL")).at(name).hint(hint)))
}
