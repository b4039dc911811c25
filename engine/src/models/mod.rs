//! Recommendation models (training issue). Pure functions over dense item indexes.
pub mod als;
pub mod budget;
pub mod content;
pub mod cooccurrence;
pub mod dataset;
pub mod hybrid;
pub mod linalg;
pub mod pipeline;
pub mod popularity;
pub mod tune;
