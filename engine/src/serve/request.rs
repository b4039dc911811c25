//! The request: the anchors (the cart and the customer's recent events, each with a weight and
//! a verb for the reason) and the per-request inputs of the blend.
use super::{Live, Model, Settings};
use crate::models::linalg::Explainer;
use std::collections::{HashMap, HashSet};

/// What an anchor item is to the customer; words for the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Viewed,
    Carted,
    Bought,
    Rated,
    InCart,
}

/// An item the request is anchored on: in the cart, or in the customer's recent events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub item: u32,
    pub weight: f32,
    pub verb: Verb,
}

/// Per-request inputs.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub anchors: &'a [Anchor],
    /// the customer's CF vector: stored, or folded in from recent events
    pub user: Option<&'a [f32]>,
    pub now_ms: i64,
    /// placement multipliers on the blend weights
    pub multipliers: [f32; 4],
    /// per member, how many top items become blend candidates
    pub candidates: usize,
    /// starter pack: categories browsed so far get this bonus on popularity (cold start)
    pub browsed: &'a [u32],
    /// starter pack: the best sellers of the new customer's segment (cold start)
    pub segment: &'a [(u32, f32)],
    /// what explains the folded-in ALS scores (reasons name the history item that contributes
    /// most); without it, the anchor most like the item by cosine
    pub explain: Option<&'a Explainer>,
}

/// What an event says about liking its item in a request's context: training's contribution,
/// halved every `half_life_days`, times `session_boost` for this session's events.
pub fn anchor_weight(kind: &str, value: Option<f64>, weight: f64, age_ms: i64, half_life_days: f64, in_session: bool, session_boost: f64) -> f32 {
    let c = crate::models::dataset::contribution(kind, value, weight);
    let decay = 0.5f64.powf(age_ms.max(0) as f64 / (half_life_days.max(1e-3) * 86_400_000.0));
    (c * decay * if in_session { session_boost } else { 1.0 }) as f32
}

/// The verb for an anchor from the strongest kind of event the customer had with the item.
pub fn verb_of(kind: &str) -> Verb {
    match kind {
        "purchase" => Verb::Bought,
        "cart_add" => Verb::Carted,
        "rating" => Verb::Rated,
        _ => Verb::Viewed,
    }
}

/// What the caller read about the customer: `reco.customers` and the model's stored vector.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub timezone: Option<String>,
    /// reco.customers.attributes->>'segment'
    pub segment: Option<String>,
    /// the customer's ALS vector as the deployed model learned it
    pub stored: Option<Vec<f32>>,
}

/// One of the customer's (or this session's) recent events.
#[derive(Debug, Clone, Default)]
pub struct Past {
    pub item: String,
    pub kind: String,
    pub value: Option<f64>,
    pub at_ms: i64,
    /// one of this session's events
    pub in_session: bool,
    /// one of the customer's own events (a session's events may be anonymous)
    pub mine: bool,
}

/// What the caller read of the history, up to the request's now.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// the customer's latest events (at most `reco.history_events`) and this session's
    pub events: Vec<Past>,
    /// `None` when `events` holds all of the customer's events (so all purchases and returns);
    /// else every purchased item: item → (returned, in a repeatable category now)
    pub purchases: Option<HashMap<String, (bool, bool)>>,
}

/// Event kinds that say the customer has the item, so it is not offered again unless its
/// category is repeatable: a purchase, and a rating (in a shop a rating follows owning the
/// item). A return of the item keeps it out for good.
pub const OWNING_KINDS: [&str; 2] = ["purchase", "rating"];

/// What a request knows about the customer, settled against the model.
#[derive(Debug, Clone, Default)]
pub struct Customer {
    pub profile: Profile,
    pub history: Vec<Past>,
    /// items the customer has (bought or rated, [`OWNING_KINDS`]) → (returned, repeatable)
    pub bought: HashMap<String, (bool, bool)>,
    /// bought items offered again only if their current category is still repeatable
    /// (catalogue indexes; asked of [`Live::in_categories`] only when the pick reaches them)
    pub recheck: HashSet<u32>,
}

impl Customer {
    /// Settles which bought items may be offered again. With a model, an item whose cached
    /// category is not repeatable is settled at once (an item moved into a repeatable category
    /// since the cache was loaded stays excluded until the next load — the safe side), and one
    /// whose cached category is repeatable goes to `recheck`. Without a model, the items'
    /// current categories are asked of `live` at once.
    pub fn new(profile: Profile, history: History, m: Option<&Model>, settings: &Settings, live: &mut dyn Live) -> Customer {
        let mut out = Customer { profile, ..Default::default() };
        match history.purchases {
            Some(all) => out.bought = all,
            None => {
                let mut bought: HashMap<String, bool> = HashMap::new();
                for p in history.events.iter().filter(|p| p.mine) {
                    match p.kind.as_str() {
                        k if OWNING_KINDS.contains(&k) => {
                            bought.entry(p.item.clone()).or_insert(false);
                        }
                        "return" => *bought.entry(p.item.clone()).or_insert(false) = true,
                        _ => {}
                    }
                }
                let now_repeatable: HashSet<String> = match m {
                    None if !settings.repeatable.is_empty() => {
                        let open: Vec<&str> = bought.iter().filter(|(_, returned)| !**returned).map(|(id, _)| id.as_str()).collect();
                        if open.is_empty() {
                            HashSet::new()
                        } else {
                            live.in_categories(&open, &settings.repeatable)
                        }
                    }
                    _ => HashSet::new(),
                };
                for (id, returned) in bought {
                    let repeatable = !returned
                        && match m {
                            Some(m) => {
                                let i = m.cat.index.get(&id).copied().filter(|&i| settings.repeatable.iter().any(|c| c == m.cat.category_name(i)));
                                out.recheck.extend(i);
                                i.is_some()
                            }
                            None => now_repeatable.contains(&id),
                        };
                    out.bought.insert(id, (returned, repeatable));
                }
            }
        }
        out.history = history.events;
        out
    }

    /// Items never to offer again: returned, or bought outside a repeatable category.
    pub fn never_again(&self) -> impl Iterator<Item = String> + '_ {
        self.bought.iter().filter(|(_, (returned, repeatable))| *returned || !*repeatable).map(|(id, _)| id.clone())
    }

    /// A new customer: no learned vector and nothing older than a day.
    pub fn is_new(&self, now_ms: i64) -> bool {
        let day_ago = now_ms - 86_400_000;
        self.profile.stored.is_none() && self.history.iter().all(|p| p.at_ms >= day_ago)
    }
}

/// How much more a cart item weighs than one `contribution` of history, before the placement's
/// session boost: the cart is what the customer is about to buy.
pub const CART_WEIGHT: f64 = 4.0;

/// Anchors from the history and the cart, one per item, weights summed, strongest first: each
/// event weighs its kind's weight (`weights`), halved every `half_life_days`, times
/// `session_boost` in this session; a cart item weighs [`CART_WEIGHT`] × `session_boost` more.
pub fn anchors(
    m: &Model,
    cust: &Customer,
    cart: &[String],
    now_ms: i64,
    session_boost: f64,
    half_life_days: f64,
    weights: &HashMap<String, f64>,
) -> Vec<Anchor> {
    let mut by_item: HashMap<u32, (f32, f32, Verb)> = HashMap::new();
    for p in &cust.history {
        let Some(&i) = m.cat.index.get(&p.item) else { continue };
        let weight = weights.get(&p.kind).copied().unwrap_or(0.0);
        let w = anchor_weight(&p.kind, p.value, weight, now_ms - p.at_ms, half_life_days, p.in_session, session_boost);
        let e = by_item.entry(i).or_insert((0.0, f32::MIN, Verb::Viewed));
        e.0 += w;
        if w > e.1 {
            e.1 = w;
            e.2 = verb_of(&p.kind);
        }
    }
    let cart_weight = (CART_WEIGHT * session_boost) as f32;
    for id in cart {
        if let Some(&i) = m.cat.index.get(id) {
            let e = by_item.entry(i).or_insert((0.0, f32::MIN, Verb::InCart));
            e.0 = e.0.max(0.0) + cart_weight;
            e.2 = Verb::InCart;
        }
    }
    let mut v: Vec<Anchor> = by_item.into_iter().filter(|(_, e)| e.0 > 0.0).map(|(item, e)| Anchor { item, weight: e.0, verb: e.2 }).collect();
    v.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
    v
}
