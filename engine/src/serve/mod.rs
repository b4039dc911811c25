//! Serving: one request against the deployed model, in memory.
//!
//! The glue loads a [`Model`] once per backend (and again when another model is deployed),
//! reads the request's live inputs (the customer's recent events, cart, stock) and calls this
//! module to score, rank, diversify and explain. Scoring follows training's hybrid exactly:
//! every member scores the catalogue, each member's scores are min–max normalized over the
//! union of the members' top candidates, and the blend weights are the ones the model chose on
//! its holdout — times the placement's multipliers. Only what changes per request is computed
//! here; YᵀY, item norms and merged neighbour lists are precomputed when the model is loaded.
//!
//! The modules follow a request through its phases:
//! - [`model`]: the deployed model in memory (catalogue, members' item data, nearest-item lists);
//! - [`context`] and [`request`]: the arguments, the customer's history and the anchors;
//! - [`blend`] and [`candidates`]: every member's scores and the blend;
//! - [`pick`]: the first `k` buyable items, diversified;
//! - [`reasons`]: the words beside each item;
//! - [`related`]: item-to-item scores (complements, similar items);
//! - [`inputs`]: what a request is served with besides the model (the [`Live`] reads, settings);
//! - [`policy`]: the four calls (`recommend`, `complements`, `similar_items`, `popular`) that put
//!   these together, over the [`Live`] reads the caller makes in its snapshot.
pub mod blend;
pub mod candidates;
pub mod context;
pub mod flat;
pub mod inputs;
pub mod model;
pub mod offline;
pub mod pick;
pub mod policy;
pub mod reasons;
pub mod related;
pub mod request;

pub use crate::models::linalg::{Als, Explainer};
pub use crate::rank::top_n;
pub use blend::{Scores, RESCORE};
pub use model::{Catalogue, Demand, Knn, Model, PopularNow};
pub use pick::{diversify, diversify_placed, pick_buyable, Diversity};
pub use policy::{complements, popular, recommend, similar_items, Live, Placement, Served, Settings, Space, Stats, Tuning};
pub use reasons::{local_hour, part_of_day, popular_reason, reason};
pub use request::{anchor_weight, verb_of, Anchor, Customer, History, Past, Profile, Request, Verb};

/// Members in training's order (see `models::hybrid::MEMBERS`).
pub const POPULARITY: usize = 0;
pub const COOCCURRENCE: usize = 1;
pub const CONTENT: usize = 2;
pub const ALS: usize = 3;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
