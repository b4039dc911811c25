//! pg_reco's engine: everything that is not PostgreSQL glue. No pgrx here.
pub mod budget;
pub mod demand;
pub mod demo;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod hash;
pub mod json;
pub mod models;
pub mod rank;
pub mod standardize;
pub mod token;

pub use error::{Error, ErrorKind, Result};
pub mod normalize;
pub mod notify;
pub mod prefs;
pub mod pseudonym;
pub mod serve;

/// "None" for a dense index (no item, no product group, no basket or session, no anchor).
pub const NONE: u32 = u32::MAX;
