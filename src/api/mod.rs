//! SQL functions by area.
pub mod demo;
pub mod events;
pub mod ingest;
pub mod prefs;
pub mod standardize;

use pgrx::prelude::*;

/// Engine timestamps are microseconds since 2000-01-01, PostgreSQL's own representation.
pub fn timestamptz(pg_micros: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(pg_micros).unwrap_or_else(|_| {
        crate::error::raise(reco_engine::Error::new(reco_engine::ErrorKind::DatetimeOverflow, "timestamp out of range"))
    })
}
