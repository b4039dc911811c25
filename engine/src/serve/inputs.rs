//! What a request is served with besides the model: the [`Live`] reads the caller makes in
//! its snapshot, the placement's row, the settings read with it, the serving settings
//! ([`Tuning`], the extension's GUCs), and what comes back ([`Served`], [`Stats`]).
use super::Model;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// A vector space of the model, for an index search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Als,
    Content,
}

impl Space {
    /// The name in `reco.item_vectors.space`.
    pub fn name(self) -> &'static str {
        match self {
            Space::Als => "als",
            Space::Content => "content",
        }
    }
}

/// What the policy reads in the caller's snapshot beside the model.
pub trait Live {
    /// Which of `ids` are buyable now (active, available, not backordered), in order.
    fn buyable(&mut self, ids: &[&str]) -> Vec<bool>;
    /// The units available now of each of `ids`, in order: 0 for an item that is not buyable,
    /// infinite where stock is not known (an offline evaluation). Asked only for a placement
    /// with a `demand` weight.
    fn available(&mut self, ids: &[&str]) -> Vec<f64>;
    /// Which of `ids` are in one of `categories` now.
    fn in_categories(&mut self, ids: &[&str], categories: &[String]) -> HashSet<String>;
    /// Which of `ids` came back in stock after `since_ms` and at or before `now_ms`.
    fn back_in_stock(&mut self, ids: &[&str], since_ms: i64, now_ms: i64) -> HashSet<String>;
    /// Buyable items created after `after_ms` (newer than the model's catalogue), newest first,
    /// leaving out `skip` and `not_categories`, only `category` when given: (item, category).
    fn new_items(&mut self, after_ms: i64, skip: &[String], category: Option<&str>, not_categories: &[String], n: usize) -> Vec<(String, Option<String>)>;
    /// Without a model: buyable items by purchases in the 30 days up to `now_ms`: (item, purchases).
    fn recent_best_sellers(&mut self, skip: &[String], category: Option<&str>, n: usize, now_ms: i64) -> Vec<(String, f64)>;
    /// The `limit` items nearest to `q` in the model's index of `space`, best first; `None`
    /// when the model has no such index.
    fn nearest(&mut self, m: &Model, space: Space, q: &[f32], limit: usize) -> Option<Vec<u32>>;
    /// The customer's resolved preferences (`reco.preferences`).
    fn preferences(&mut self, customer_id: &str) -> Map<String, Value>;
}

/// A placement's row of `reco.placement_weights`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// on the blend weights, in member order
    pub multipliers: [f32; 4],
    /// on this session's events and the cart
    pub session_boost: f64,
    /// what goes with the cart (other categories) before more of the cart's own categories
    pub complements_first: bool,
    /// items of a cart item's own category are offered as alternatives to it ("an alternative
    /// to X in your cart"): the cart page of an abandoned cart
    pub alternatives: bool,
    /// demand-aware ranking: how much a high demand forecast with healthy cover lifts an item
    /// and a sell-out before delivery lowers it (0 = off; `crate::demand::adjustment`)
    pub demand: f32,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement { multipliers: [1.0; 4], session_boost: 1.0, complements_first: false, alternatives: false, demand: 0.0 }
    }
}

/// What a request about a customer reads besides the model: each event kind's weight
/// (`reco.event_weights`), the repeatable categories and the categories' own limits per list
/// (`reco.category_settings`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub weights: HashMap<String, f64>,
    /// a few names: a list, passed as it is to [`Live::in_categories`]
    pub repeatable: Vec<String>,
    /// (category, `max_per_list`): at most this many of the category in a list, beside the
    /// diversity rule of the request (relaxed, like its cap, only to fill the list)
    pub max_per_list: Vec<(String, usize)>,
}

/// The serving settings (the extension's `reco.*` GUCs).
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// `reco.max_per_category`: the diversity cap when the context sets none (0 = no cap)
    pub max_per_category: usize,
    /// `reco.diversity_penalty`: each item of a category already in the list moves the next of
    /// that category this many places down (0 = none), when the context sets none
    pub diversity_penalty: f32,
    /// `reco.seen_last`: items the customer viewed, clicked or put in a cart (and does not own)
    /// come after every other item, only to fill the list
    pub seen_last: bool,
    /// `reco.candidates`: per member, how many top items become blend candidates
    pub candidates: usize,
    /// `reco.history_half_life_days`
    pub history_half_life_days: f64,
    /// `reco.preference_penalty`: subtracted from items that do not fit the preferences
    pub preference_penalty: f32,
    /// `reco.back_in_stock_days`: a pick back in stock in the customer's size this recently says so
    pub back_in_stock_days: f64,
    /// `reco.hnsw_min_items`: from this many items on, ALS and content candidates come from the
    /// model's nearest-item lists or HNSW indexes (0 = never)
    pub hnsw_min_items: usize,
    /// `reco.item_knn`: the anchors' nearest-item lists before an index search
    pub item_knn: bool,
    /// pgvector's `hnsw.ef_search`: how many candidates an index search returns
    pub ef_search: usize,
    /// `reco.demand_lead_days`: the days from an order to its delivery, over which a placement's
    /// `demand` weight asks whether an item will sell out
    pub demand_lead_days: f64,
}

/// The settings' defaults: the extension's GUCs take theirs from here.
pub const DEFAULT_TUNING: Tuning = Tuning {
    max_per_category: 0,
    diversity_penalty: 2.0,
    seen_last: true,
    // what training's holdout evaluation blends over, so serving blends as the model was chosen
    candidates: crate::models::hybrid::CANDIDATES,
    history_half_life_days: 30.0,
    preference_penalty: 0.25,
    back_in_stock_days: 7.0,
    // the measured crossover (docs/benchmarks.md, "Exact pass, HNSW search, or stored lists")
    hnsw_min_items: 10_000,
    item_knn: true,
    // pgvector's own default
    ef_search: 40,
    demand_lead_days: 3.0,
};

impl Default for Tuning {
    fn default() -> Tuning {
        DEFAULT_TUNING
    }
}

impl Tuning {
    /// Whether a catalogue of `n` items is served from the model's HNSW indexes.
    pub fn index_backed(&self, n: usize) -> bool {
        self.hnsw_min_items > 0 && n >= self.hnsw_min_items
    }
}

/// How a backend's requests were scored (`reco.cache_info()`'s `scoring`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// every item scored by every member
    pub dense: u64,
    /// only the members' candidates scored
    pub candidates: u64,
    /// HNSW index searches made for candidates
    pub hnsw_searches: u64,
    /// candidate lists that ran out of buyable items, so the whole catalogue was ranked
    pub widened: u64,
    /// ALS or content candidates taken from the anchors' nearest-item lists instead of a search
    pub knn_lists: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, s: Stats) {
        self.dense += s.dense;
        self.candidates += s.candidates;
        self.hnsw_searches += s.hnsw_searches;
        self.widened += s.widened;
        self.knn_lists += s.knn_lists;
    }
}

/// One row of a served list.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub item_id: String,
    pub score: f64,
    pub reason: String,
}

impl Served {
    pub fn new(item_id: impl Into<String>, score: f64, reason: impl Into<String>) -> Served {
        Served { item_id: item_id.into(), score, reason: reason.into() }
    }
}
