//! Recommendation models (training issue). Pure functions over dense item indexes.
pub mod cooccurrence;
pub mod popularity;
