//! SQL functions by area.
mod budget;
pub mod demand;
pub mod demo;
pub mod events;
pub mod experiments;
mod hnsw;
pub mod ingest;
mod items;
pub mod notify;
pub mod prefs;
pub mod privacy;
pub mod registry;
pub mod sched;
pub mod scope;
pub mod serve;
pub mod standardize;
pub mod train;

use pgrx::prelude::*;

/// Runs a read-only statement through a cursor, `batch` rows at a time, calling `f` on each
/// row, so a large result is never held in memory whole: each batch's tuple table is freed once
/// its rows were seen (pgrx leaves them to the end of the SPI connection). `f` must not keep
/// anything borrowed from a row.
pub fn scan(c: &pgrx::spi::SpiClient<'_>, sql: &str, args: &[pgrx::datum::DatumWithOid], batch: i64, mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData)) {
    use crate::error::OrRaise;
    let mut cur = c.open_cursor(sql, args);
    loop {
        let rows = cur.fetch(batch as _).or_raise();
        if rows.is_empty() {
            return;
        }
        // SAFETY: `fetch` left the batch's table in SPI_tuptable (pgrx reads it from there)
        let table = unsafe { pg_sys::SPI_tuptable };
        for r in rows {
            f(&r);
        }
        free_batch(table);
    }
}

/// Frees a fetched batch's tuple table after every row of it was dropped.
fn free_batch(table: *mut pg_sys::SPITupleTable) {
    if !table.is_null() {
        // SAFETY: `table` is the batch SPI just returned in this connection, not freed before,
        // and no row or value borrowed from it outlives this call (the callers' contract)
        unsafe { pg_sys::SPI_freetuptable(table) };
    }
}

/// One fetched row, deformed once: a column's raw value by number (1-based), read without a
/// call into PostgreSQL per column. For the hot loops that read millions of rows (training).
pub struct RawRow<'a> {
    values: &'a [pg_sys::Datum],
    nulls: &'a [bool],
}

impl<'a> RawRow<'a> {
    fn datum(&self, col: usize) -> Option<pg_sys::Datum> {
        let i = col.checked_sub(1)?;
        (!self.nulls.get(i).copied().unwrap_or(true)).then(|| self.values[i])
    }

    /// A `text` column, borrowed from the batch (valid until the callback returns).
    pub fn text(&self, col: usize) -> Option<&'a str> {
        let d = self.datum(col)?;
        let p = d.cast_mut_ptr::<pg_sys::varlena>();
        // SAFETY: a non-null datum of a text column points at a varlena in the batch's tuple
        let bytes = unsafe {
            if pgrx::varlena::varatt_is_1b_e(p) || pgrx::varlena::varatt_is_4b_c(p) {
                // stored out of line or compressed: pgrx detoasts it (in the current context)
                return <&str as pgrx::datum::FromDatum>::from_datum(d, false);
            }
            pgrx::varlena::varlena_to_byte_slice(p)
        };
        match std::str::from_utf8(bytes) {
            Ok(s) => Some(s),
            Err(_) => crate::error::raise(
                reco_engine::Error::new(reco_engine::ErrorKind::InvalidText, "a text value read for training is not valid UTF-8")
                    .hint("pg_reco needs a UTF8 database"),
            ),
        }
    }

    /// A by-value column (float8, int4, timestamptz as its microseconds, ...).
    pub fn value<T: pgrx::datum::FromDatum>(&self, col: usize) -> Option<T> {
        let d = self.datum(col)?;
        // SAFETY: the caller names the column's type; by-value types read the datum itself, and
        // by-reference ones (arrays) point into the batch's tuple, alive during the callback
        unsafe { T::from_datum(d, false) }
    }
}

/// [`scan`] for hot loops: each row is deformed once (`heap_deform_tuple`) and handed over as a
/// [`RawRow`], instead of pgrx's per-column calls. `f` must not keep anything borrowed.
pub fn scan_raw(c: &pgrx::spi::SpiClient<'_>, sql: &str, args: &[pgrx::datum::DatumWithOid], batch: i64, mut f: impl FnMut(&RawRow)) {
    use crate::error::OrRaise;
    let mut cur = c.open_cursor(sql, args);
    let (mut values, mut nulls) = (Vec::new(), Vec::new());
    loop {
        let rows = cur.fetch(batch as _).or_raise();
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        // SAFETY: `fetch` left the batch's table in SPI_tuptable (pgrx reads it from there)
        let table = unsafe { pg_sys::SPI_tuptable };
        if table.is_null() {
            return;
        }
        // SAFETY: the table holds `n` tuples of its descriptor's width; each is deformed into
        // buffers of that width, and `f` sees them before the next tuple overwrites them
        unsafe {
            let desc = (*table).tupdesc;
            let natts = (*desc).natts as usize;
            values.resize(natts, pg_sys::Datum::from(0));
            nulls.resize(natts, true);
            for &tuple in std::slice::from_raw_parts((*table).vals, n) {
                pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
                f(&RawRow { values: &values, nulls: &nulls });
            }
        }
        // (`rows` only borrows the table; it is not read again)
        free_batch(table);
    }
}

/// Runs `f` (which starts threads) with every signal blocked on the backend's thread, so the
/// threads it starts inherit a full mask and never take PostgreSQL's signals: their handlers
/// must run on the backend's own thread. The mask is restored right after.
pub fn signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the mask saved below, on the same thread
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: sigset_t is plain data (zeroed, then filled by sigfillset); pthread_sigmask changes
    // only this thread's mask, and the old one is put back when `_restore` drops (also on unwind)
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        Restore(old)
    };
    f()
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

/// Whether `reco.<table>` exists in this database. A library newer than the installed SQL
/// (before ALTER EXTENSION pg_reco UPDATE) keeps the old behaviour where a newer table is
/// missing; once found, `seen` remembers it for the backend (a catalog lookup otherwise).
pub fn has_table(table: &std::ffi::CStr, seen: &'static std::thread::LocalKey<std::cell::Cell<bool>>) -> bool {
    if seen.get() {
        return true;
    }
    // SAFETY: catalog lookups by name on the backend's thread; missing_ok
    let ok = unsafe {
        let ns = pg_sys::get_namespace_oid(c"reco".as_ptr(), true);
        ns != pg_sys::InvalidOid && pg_sys::get_relname_relid(table.as_ptr(), ns) != pg_sys::InvalidOid
    };
    seen.set(ok);
    ok
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

/// Whether the installed SQL has `shard_key` on reco.events and reco.recommendations (0.2.0;
/// both come in the same update). A 0.2.0 library on 0.1.0 SQL, before ALTER EXTENSION
/// pg_reco UPDATE, writes rows without it. Remembered for the backend once true.
pub fn has_shard_key() -> bool {
    thread_local! { static SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    remembered(&SEEN, || catalog_has(c"events", Some(c"shard_key")))
}

/// Whether the installed SQL has the demand forecast (reco.item_demand and
/// reco.placement_weights.demand, 0.2.0; both come in the same update). A 0.2.0 library on
/// 0.1.0 SQL, before ALTER EXTENSION pg_reco UPDATE, trains and serves without it. Remembered
/// for the backend once true.
pub fn has_demand() -> bool {
    thread_local! { static SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    remembered(&SEEN, || catalog_has(c"item_demand", None))
}

/// `check()`, remembered in `seen` once true (what an update adds does not go away).
fn remembered(seen: &'static std::thread::LocalKey<std::cell::Cell<bool>>, check: impl FnOnce() -> bool) -> bool {
    if seen.get() {
        return true;
    }
    let ok = check();
    seen.set(ok);
    ok
}

/// Whether schema reco has relation `rel` (with column `column`, when given).
fn catalog_has(rel: &std::ffi::CStr, column: Option<&std::ffi::CStr>) -> bool {
    // SAFETY: catalog lookups by name on the backend's thread; missing relations give InvalidOid
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"reco".as_ptr(), true);
        let oid = if ns == pg_sys::InvalidOid { pg_sys::InvalidOid } else { pg_sys::get_relname_relid(rel.as_ptr(), ns) };
        oid != pg_sys::InvalidOid && column.is_none_or(|c| pg_sys::get_attnum(oid, c.as_ptr()) != pg_sys::InvalidAttrNumber as i16)
    }
}

/// Whether pg_reco's tables are distributed on a Citus cluster (reco.distribute() ran,
/// docs/citus.md). Remembered for the backend once true.
pub fn distributed() -> bool {
    thread_local! { static SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    use crate::error::OrRaise;
    if SEEN.get() {
        return true;
    }
    // Citus loaded, its catalog in this database (CREATE EXTENSION citus), reco.models in it
    let yes = crate::gucs::setting(c"citus.multi_shard_modify_mode").is_some()
        && Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL").or_raise() == Some(true)
        && Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = 'reco.models'::pg_catalog.regclass)")
            .or_raise()
            == Some(true);
    SEEN.set(yes);
    yes
}

/// On a Citus cluster (docs/citus.md), makes the rest of this transaction reach each worker
/// over one connection: Citus refuses to write a reference table (models, items) after the
/// transaction read or wrote distributed tables over several connections per node, as a
/// training and an order ingest do. Without Citus loaded, nothing.
pub fn citus_one_connection_per_node() {
    use crate::error::OrRaise;
    if crate::gucs::setting(c"citus.multi_shard_modify_mode").is_some() {
        Spi::run("SELECT pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true)").or_raise();
    }
}

/// The ids among `ids` that `sql` (one `text[]` parameter, one text column) finds: on Citus,
/// ingest leaves known customers and items out of its inserts (docs/citus.md).
pub fn known_ids(client: &pgrx::spi::SpiClient<'_>, sql: &'static str, ids: &[String]) -> std::collections::HashSet<String> {
    use crate::error::OrRaise;
    crate::plans::select(client, sql, &[pgrx::datum::DatumWithOid::from(ids.to_vec())]).or_raise().filter_map(|r| r.get::<String>(1).or_raise()).collect()
}
