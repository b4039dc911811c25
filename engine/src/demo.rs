//! Demo data with planted structure, deterministic by seed, for the demo, tests and model
//! evaluation: customers in segments with category affinities, products with size and color
//! variants, complementary category pairs bought together, a preferred size and color per
//! customer, daily and hourly seasonality (evening peak, weekend lift), returns with reasons,
//! and stock states (some items out of stock, some backordered).
//!
//! Orders are produced as `web` channel payloads, so loading them goes through the same
//! normalization and ingestion as real orders.
use crate::error::{show, Error, Result};
use crate::models::content::ItemFeatures;
use crate::models::dataset::{contribution, Dataset, Event as TrainingEvent, Interner, DEFAULT_WEIGHTS, NONE};
use crate::models::pipeline::TrainingItems;
use crate::standardize::time::PG_EPOCH_UNIX_MICROS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub customers: usize,
    pub products: usize,
    pub days: i64,
    pub orders_per_customer: f64,
}

pub fn scale(name: &str) -> Result<Scale> {
    Ok(match name {
        "small" => Scale { customers: 1_000, products: 150, days: 120, orders_per_customer: 3.0 },
        "medium" => Scale { customers: 100_000, products: 6_000, days: 365, orders_per_customer: 3.0 },
        "large" => Scale { customers: 1_000_000, products: 30_000, days: 365, orders_per_customer: 3.0 },
        other => return Err(Error::invalid(format!("demo scale {} is not known", show(other))).hint("scales: small (1k customers), medium (100k), large (1M)")),
    })
}

/// Categories, and whether their products come in sizes and colors.
pub const CATEGORIES: [(&str, Sizing); 12] = [
    ("phones", Sizing::None),
    ("phone_cases", Sizing::Colors),
    ("shoes", Sizing::Shoes),
    ("socks", Sizing::Letters),
    ("laptops", Sizing::None),
    ("laptop_bags", Sizing::Colors),
    ("tees", Sizing::Letters),
    ("jeans", Sizing::Bottoms),
    ("coffee", Sizing::None),
    ("mugs", Sizing::Colors),
    ("dresses", Sizing::Letters),
    ("belts", Sizing::Colors),
];

/// Planted complements: an order with the first often also holds the second.
pub const COMPLEMENTS: [(&str, &str); 5] = [("phones", "phone_cases"), ("shoes", "socks"), ("laptops", "laptop_bags"), ("coffee", "mugs"), ("jeans", "belts")];

/// Segments and their category weights (the planted affinities).
pub const SEGMENTS: [(&str, [f64; 12]); 5] = [
    ("tech", [5.0, 2.0, 0.5, 0.2, 4.0, 1.0, 0.5, 0.3, 0.5, 0.3, 0.1, 0.1]),
    ("runners", [0.3, 0.2, 6.0, 3.0, 0.1, 0.1, 3.0, 0.5, 0.5, 0.2, 0.2, 0.2]),
    ("fashion", [0.3, 0.5, 1.5, 0.5, 0.1, 0.2, 3.0, 4.0, 0.3, 0.3, 4.0, 2.0]),
    ("coffee", [0.3, 0.2, 0.3, 0.2, 0.2, 0.1, 0.5, 0.3, 6.0, 3.0, 0.2, 0.1]),
    ("mixed", [1.0; 12]),
];

/// Consumables are bought again (a category marked repeatable).
pub const REPEATABLE: [&str; 2] = ["coffee", "socks"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    None,
    Colors,
    Letters,
    Bottoms,
    Shoes,
}

const COLORS: [&str; 6] = ["black", "navy", "grey", "red", "white", "green"];
const LETTERS: [&str; 5] = ["S", "M", "L", "XL", "XXL"];
const BOTTOMS: [&str; 4] = ["W30L32", "W32L32", "W34L32", "W36L32"];
const SHOES: [&str; 6] = ["EU40", "EU41", "EU42", "EU43", "EU44", "EU45"];
const BRANDS: [&str; 8] = ["Acme", "Northwind", "Fleet", "Orbit", "Kettle", "Loom", "Strato", "Pico"];

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub item_id: String,
    pub group_id: String,
    pub title: String,
    pub category: &'static str,
    pub brand: &'static str,
    pub price_minor: i64,
    pub size: Option<&'static str>,
    pub color: Option<&'static str>,
    pub available: i32,
    pub backordered: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub customer_id: String,
    pub session_id: String,
    pub item_id: String,
    pub kind: &'static str,
    pub value: Option<f64>,
    /// epoch milliseconds
    pub at_ms: i64,
    pub reason: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct DemoData {
    pub items: Vec<Item>,
    pub customers: Vec<(String, &'static str)>,
    pub orders: Vec<Value>,
    pub events: Vec<Event>,
}

fn pick_weighted(rng: &mut StdRng, w: &[f64]) -> usize {
    let total: f64 = w.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, v) in w.iter().enumerate() {
        if x < *v {
            return i;
        }
        x -= v;
    }
    w.len() - 1
}

/// Zipf-like rank: small ranks much more likely.
fn zipf(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((n as f64).powf(u) - 1.0).floor().clamp(0.0, (n - 1) as f64) as usize
}

/// Cumulative day weights for [start, start + days): weekends weigh a third more.
fn day_weights(start_ms: i64, days: i64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..days)
        .map(|day| {
            let weekday = (start_ms / 86_400_000 + day + 4) % 7; // 1970-01-01 was a Thursday
            acc += if weekday >= 5 { 4.0 / 3.0 } else { 1.0 };
            acc
        })
        .collect()
}

const HOURS: [f64; 24] = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2, 1.0, 1.0, 1.1, 1.4, 1.8, 2.2, 2.4, 2.0, 1.2, 0.6];

/// A time with an evening peak and a weekend lift (epoch ms). Always three draws, so the rest
/// of the data does not depend on the calendar.
fn when(rng: &mut StdRng, start_ms: i64, cum_days: &[f64]) -> i64 {
    let total = cum_days.last().copied().unwrap_or(1.0);
    let x = rng.random::<f64>() * total;
    let day = cum_days.partition_point(|c| *c <= x).min(cum_days.len().saturating_sub(1)) as i64;
    let hour = pick_weighted(rng, &HOURS) as i64;
    start_ms + day * 86_400_000 + hour * 3_600_000 + rng.random_range(0..3_600_000)
}

/// The catalogue of a scale and seed.
pub fn catalog(scale: Scale, seed: u64) -> Vec<Item> {
    let mut rng = StdRng::seed_from_u64(seed);
    // catalogue: products spread over categories, variants by sizing
    let mut items = Vec::new();
    for p in 0..scale.products {
        let c = p % CATEGORIES.len();
        let (cat, sizing) = CATEGORIES[c];
        let brand = BRANDS[rng.random_range(0..BRANDS.len())];
        let base = match cat {
            "phones" => 39_900,
            "laptops" => 99_900,
            "shoes" => 8_900,
            "jeans" | "dresses" => 5_900,
            "laptop_bags" => 4_900,
            "coffee" => 1_290,
            _ => 1_990,
        };
        let price = base + rng.random_range(0..base / 2) / 10 * 10;
        let group = format!("demo-p{p}");
        let colors: Vec<&'static str> = match sizing {
            Sizing::None => vec![],
            _ => {
                let n = rng.random_range(1..=3);
                let first = rng.random_range(0..COLORS.len());
                (0..n).map(|k| COLORS[(first + k * 2) % COLORS.len()]).collect()
            }
        };
        let sizes: &[&'static str] = match sizing {
            Sizing::Letters => &LETTERS,
            Sizing::Bottoms => &BOTTOMS,
            Sizing::Shoes => &SHOES,
            _ => &[],
        };
        let color_opts: Vec<Option<&'static str>> = if colors.is_empty() { vec![None] } else { colors.iter().map(|c| Some(*c)).collect() };
        let size_opts: Vec<Option<&'static str>> = if sizes.is_empty() { vec![None] } else { sizes.iter().map(|s| Some(*s)).collect() };
        for col in &color_opts {
            for sz in &size_opts {
                let mut id = group.clone();
                if let Some(s) = sz {
                    id.push('-');
                    id.push_str(s);
                }
                if let Some(c) = col {
                    id.push('-');
                    id.push_str(c);
                }
                let r: f64 = rng.random();
                let (available, backordered) = if r < 0.10 {
                    (0, false)
                } else if r < 0.15 {
                    (0, true)
                } else {
                    (rng.random_range(1..50), false)
                };
                items.push(Item {
                    item_id: id,
                    group_id: group.clone(),
                    title: format!("{brand} {} {p}", cat.replace('_', " ")),
                    category: cat,
                    brand,
                    price_minor: price,
                    size: *sz,
                    color: *col,
                    available,
                    backordered,
                });
            }
        }
    }
    items
}

/// Products by category (category index -> product -> item indexes), from a catalogue.
fn products_by_category(items: &[Item]) -> Vec<Vec<Vec<usize>>> {
    let mut by_category: Vec<Vec<Vec<usize>>> = vec![Vec::new(); CATEGORIES.len()];
    let mut last_group: Option<&str> = None;
    for (i, it) in items.iter().enumerate() {
        let c = CATEGORIES.iter().position(|(n, _)| *n == it.category).unwrap_or(0);
        if last_group != Some(it.group_id.as_str()) {
            by_category[c].push(Vec::new());
            last_group = Some(it.group_id.as_str());
        }
        if let Some(p) = by_category[c].last_mut() {
            p.push(i);
        }
    }
    by_category
}

/// Customers `range` of a scale and seed, with their orders and events. Each customer has its
/// own random stream, so any split into ranges gives the same data.
pub fn customers(scale: Scale, seed: u64, end_ms: i64, items: &[Item], range: std::ops::Range<usize>) -> DemoData {
    // whole UTC days ending at the last midnight, so hours of the day mean what they say
    let start_ms = end_ms.div_euclid(86_400_000) * 86_400_000 - scale.days * 86_400_000;
    let cum_days = day_weights(start_ms, scale.days);
    let by_category = products_by_category(items);
    let cat_index = |name: &str| CATEGORIES.iter().position(|(c, _)| *c == name).unwrap_or(0);
    // customers: a segment, a size per system, a favourite color
    let mut customers = Vec::with_capacity(range.len());
    let mut orders = Vec::new();
    let mut events = Vec::new();
    for u in range {
        let mut rng = StdRng::seed_from_u64(seed ^ (u as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let seg = pick_weighted(&mut rng, &[1.0, 1.0, 1.0, 1.0, 1.5]);
        let (seg_name, weights) = SEGMENTS[seg];
        let cid = format!("demo-c{u:07}"); // zero-padded: ids ascend with u, so index inserts append
        customers.push((cid.clone(), seg_name));
        let my_letter = LETTERS[pick_weighted(&mut rng, &[1.0, 2.0, 2.0, 1.0, 0.5])];
        let my_bottom = BOTTOMS[rng.random_range(0..BOTTOMS.len())];
        let my_shoe = SHOES[pick_weighted(&mut rng, &[0.5, 1.0, 2.0, 2.0, 1.0, 0.5])];
        let my_color = COLORS[rng.random_range(0..COLORS.len())];
        // orders: 1 + Poisson-ish count
        let n_orders = 1 + (rng.random::<f64>() * 2.0 * (scale.orders_per_customer - 1.0)).round() as usize;
        for o in 0..n_orders {
            let at = when(&mut rng, start_ms, &cum_days);
            let session = format!("demo-s{u:07}-{o:02}");
            let mut lines: Vec<usize> = Vec::new();
            let c = pick_weighted(&mut rng, &weights);
            let choose = |rng: &mut StdRng, c: usize| -> Option<usize> {
                let products = &by_category[c];
                if products.is_empty() {
                    return None;
                }
                let variants = &products[zipf(rng, products.len())];
                // the customer's size and, often, favourite color
                let fits: Vec<usize> =
                    variants.iter().copied().filter(|&i| items[i].size.is_none_or(|s| s == my_letter || s == my_bottom || s == my_shoe)).collect();
                let pool = if fits.is_empty() { variants.clone() } else { fits };
                let colored: Vec<usize> = pool.iter().copied().filter(|&i| items[i].color == Some(my_color)).collect();
                let pool = if !colored.is_empty() && rng.random::<f64>() < 0.6 { colored } else { pool };
                Some(pool[rng.random_range(0..pool.len())])
            };
            if let Some(i) = choose(&mut rng, c) {
                lines.push(i);
            }
            // the planted complement
            if let Some((_, comp)) = COMPLEMENTS.iter().find(|(a, _)| *a == CATEGORIES[c].0) {
                if rng.random::<f64>() < 0.55 {
                    if let Some(i) = choose(&mut rng, cat_index(comp)) {
                        lines.push(i);
                    }
                }
            }
            if rng.random::<f64>() < 0.2 {
                let c2 = pick_weighted(&mut rng, &weights);
                if let Some(i) = choose(&mut rng, c2) {
                    lines.push(i);
                }
            }
            lines.dedup();
            // browsing before the order: views of the bought items and of a category neighbour
            for (k, &i) in lines.iter().enumerate() {
                let t = at - 60_000 * (10 + 5 * k as i64);
                events.push(Event {
                    customer_id: cid.clone(),
                    session_id: session.clone(),
                    item_id: items[i].item_id.clone(),
                    kind: "view",
                    value: Some(rng.random_range(5..120) as f64),
                    at_ms: t,
                    reason: None,
                });
                if let Some(j) = choose(&mut rng, cat_index(items[i].category)) {
                    events.push(Event {
                        customer_id: cid.clone(),
                        session_id: session.clone(),
                        item_id: items[j].item_id.clone(),
                        kind: "view",
                        value: Some(rng.random_range(2..40) as f64),
                        at_ms: t - 90_000,
                        reason: None,
                    });
                }
                events.push(Event {
                    customer_id: cid.clone(),
                    session_id: session.clone(),
                    item_id: items[i].item_id.clone(),
                    kind: "cart_add",
                    value: Some(1.0),
                    at_ms: at - 120_000,
                    reason: None,
                });
            }
            // a few returns, mostly of sized items a size off
            for &i in &lines {
                if items[i].size.is_some() && rng.random::<f64>() < 0.06 {
                    let reason = if rng.random::<bool>() { "too small" } else { "too large" };
                    // five days later, but never after the data's end (the last midnight, at
                    // or before `end_ms`): nothing is dated in the future, and the data is the
                    // same at every hour and on every date
                    let returned_at = (at + 5 * 86_400_000).min(start_ms + scale.days * 86_400_000 - 1);
                    events.push(Event {
                        customer_id: cid.clone(),
                        session_id: session.clone(),
                        item_id: items[i].item_id.clone(),
                        kind: "return",
                        value: Some(1.0),
                        at_ms: returned_at,
                        reason: Some(reason),
                    });
                }
            }
            let payload_lines: Vec<Value> = lines
                .iter()
                .map(|&i| {
                    let it = &items[i];
                    json!({"sku": it.item_id, "product_id": it.group_id, "title": it.title, "quantity": 1,
                           "unit_price": crate::standardize::money::format_minor(it.price_minor, 2),
                           "options": {"size": it.size, "color": it.color}})
                })
                .collect();
            if payload_lines.is_empty() {
                continue;
            }
            let speed = if rng.random::<f64>() < 0.3 { "express" } else { "standard" };
            orders.push(json!({"id": format!("demo-o{u:07}-{o:02}"), "customer_id": cid, "created_ms": at, "currency": "EUR",
                "status": "delivered", "shipping": {"method": speed}, "cart": {"items": payload_lines}}));
        }
    }
    DemoData { items: Vec::new(), customers, orders, events }
}

/// Everything for a scale and seed at once (small scales and tests).
pub fn generate(scale: Scale, seed: u64, end_ms: i64) -> DemoData {
    let items = catalog(scale, seed);
    let mut d = customers(scale, seed, end_ms, &items, 0..scale.customers);
    d.items = items;
    d
}

/// The demo data as training reads it from the database: each event with its kind's default
/// weight (`dataset::DEFAULT_WEIGHTS`), each order line a purchase in its order's basket, the
/// items with their features, categories and product groups. Returns the dataset, the items
/// and the item ids by index.
pub fn training_data(d: &DemoData) -> (Dataset, TrainingItems, Vec<String>) {
    let weight = |kind: &str| DEFAULT_WEIGHTS.iter().find(|w| w.0 == kind).map_or(0.0, |w| w.1);
    let mut items = Interner::default();
    let mut cats = Interner::default();
    let mut groups = Interner::default();
    let mut catalog = TrainingItems::default();
    for it in &d.items {
        items.get_or_insert(&it.item_id);
        catalog.category.push(cats.get_or_insert(it.category));
        catalog.group.push(groups.get_or_insert(&it.group_id));
        catalog.features.push(ItemFeatures {
            category: Some(it.category.into()),
            brand: Some(it.brand.into()),
            price: Some(it.price_minor as f64 / 100.0),
            title: Some(it.title.clone()),
            tags: vec![],
            color: it.color.map(Into::into),
            size: it.size.map(Into::into),
        });
    }
    let (mut users, mut sessions) = (Interner::default(), Interner::default());
    let mut ds = Dataset { n_items: items.len(), ..Default::default() };
    let us = |ms: i64| ms * 1000 - PG_EPOCH_UNIX_MICROS;
    for e in &d.events {
        let Some(item) = items.get(&e.item_id) else { continue };
        let kind = ds.kind(e.kind);
        ds.events.push(TrainingEvent {
            user: users.get_or_insert(&e.customer_id),
            item,
            weight: contribution(e.kind, e.value, weight(e.kind)) as f32,
            at: us(e.at_ms),
            basket: NONE,
            session: sessions.get_or_insert(&e.session_id),
            kind,
            value: e.value.map_or(f32::NAN, |v| v as f32),
        });
    }
    let purchase = ds.kind("purchase");
    for (bi, o) in d.orders.iter().enumerate() {
        let user = users.get_or_insert(o["customer_id"].as_str().unwrap_or(""));
        let at = us(o["created_ms"].as_i64().unwrap_or(0));
        for l in o["cart"]["items"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let Some(item) = l["sku"].as_str().and_then(|id| items.get(id)) else { continue };
            ds.events.push(TrainingEvent {
                user,
                item,
                weight: weight("purchase") as f32,
                at,
                basket: bi as u32,
                session: NONE,
                kind: purchase,
                value: f32::NAN,
            });
        }
    }
    ds.n_users = users.len();
    (ds, catalog, items.ids)
}

/// Daily unit sales of `items` items over `days` days, the first being day number `first_day`
/// (since 1970-01-01), with planted demand: each item's base rate spread over three orders of
/// magnitude (from a sale every few weeks to dozens a day), a third of the items trending up
/// (to three times their rate), a third fading (to a third), the shop's weekend lift (a third
/// more on Saturdays and Sundays) and, for one item in five, a weekday pattern of its own
/// (office goods: half as much at weekends), with Poisson noise. Deterministic by seed: the
/// data `demand::backtest` is checked on.
pub fn planted_demand(seed: u64, items: usize, days: usize, first_day: i64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..items)
        .map(|_| {
            let base = 10f64.powf(rng.random_range(-1.5..1.5));
            let trend: f64 = match rng.random_range(0..3) {
                0 => 3.0,
                1 => 1.0 / 3.0,
                _ => 1.0,
            };
            let office = rng.random::<f64>() < 0.2;
            (0..days)
                .map(|t| {
                    let wd = crate::demand::weekday(first_day + t as i64);
                    let weekend = wd >= 5;
                    let season = match (office, weekend) {
                        (true, true) => 0.5,
                        (false, true) => 4.0 / 3.0,
                        _ => 1.0,
                    };
                    let progress = t as f64 / days.max(1) as f64;
                    poisson(&mut rng, base * trend.powf(progress) * season)
                })
                .collect()
        })
        .collect()
}

/// A Poisson draw: Knuth's product of uniforms for small means, a rounded normal (Box–Muller)
/// for large ones.
fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0.0;
        let mut p: f64 = rng.random();
        while p > limit {
            k += 1.0;
            p *= rng.random::<f64>();
        }
        return k;
    }
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (mean + z * mean.sqrt()).round().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const END: i64 = 1_735_689_600_000; // 2025-01-01

    #[test]
    fn nothing_in_the_future() {
        // at any hour of the end day
        for h in [0, 7, 11, 23] {
            let end = END + h * 3_600_000 + 1_234;
            let d = generate(scale("small").unwrap(), 42, end);
            let latest = d.events.iter().map(|e| e.at_ms).max().unwrap();
            assert!(latest <= end, "an event at {latest} is after the end {end}");
            assert!(d.events.iter().any(|e| e.kind == "return"));
        }
    }

    #[test]
    fn deterministic_by_seed() {
        let a = generate(scale("small").unwrap(), 42, END);
        let b = generate(scale("small").unwrap(), 42, END);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.items, b.items);
        let c = generate(scale("small").unwrap(), 7, END);
        assert_ne!(a.orders, c.orders);
        // another end date moves the times but not the amounts
        let later = generate(scale("small").unwrap(), 42, END + 3 * 86_400_000);
        // (returns are dated five days after the order, so those of the last days wait for later)
        let kept = |d: &DemoData| d.events.iter().filter(|e| e.kind != "return").count();
        assert_eq!((later.orders.len(), kept(&later)), (a.orders.len(), kept(&a)));
        assert!(scale("huge").is_err());
        // generated in two ranges, the same customers
        let sc = scale("small").unwrap();
        let items = catalog(sc, 42);
        let mut first = customers(sc, 42, END, &items, 0..400);
        let second = customers(sc, 42, END, &items, 400..1000);
        first.orders.extend(second.orders);
        assert_eq!(first.orders, a.orders);
    }

    #[test]
    fn small_scale_has_the_advertised_size() {
        let d = generate(scale("small").unwrap(), 42, END);
        assert_eq!(d.customers.len(), 1_000);
        assert!((400..=800).contains(&d.items.len()), "{} items", d.items.len());
        assert!((2_000..=4_500).contains(&d.orders.len()), "{} orders", d.orders.len());
        assert!((10_000..=30_000).contains(&d.events.len()), "{} events", d.events.len());
        let out = d.items.iter().filter(|i| i.available == 0 && !i.backordered).count() as f64 / d.items.len() as f64;
        let back = d.items.iter().filter(|i| i.backordered).count() as f64 / d.items.len() as f64;
        assert!((0.05..0.15).contains(&out) && (0.02..0.09).contains(&back), "{out} {back}");
        // every order normalizes through the web channel
        for o in d.orders.iter().take(200) {
            crate::normalize::normalize_order("web", o, None).unwrap();
        }
    }

    #[test]
    fn planted_complements_co_occur_far_above_chance() {
        // the end date changes the draws (seasonality), so check several
        for end in [END, END + 3 * 86_400_000, END + 5 * 86_400_000] {
            complements_at(end);
        }
    }

    fn complements_at(end: i64) {
        let d = generate(scale("small").unwrap(), 42, end);
        let cat: HashMap<&str, &str> = d.items.iter().map(|i| (i.item_id.as_str(), i.category)).collect();
        let baskets: Vec<Vec<&str>> =
            d.orders.iter().map(|o| o["cart"]["items"].as_array().unwrap().iter().map(|l| cat[l["sku"].as_str().unwrap()]).collect()).collect();
        let n = baskets.len() as f64;
        let p = |c: &str| baskets.iter().filter(|b| b.contains(&c)).count() as f64 / n;
        for (a, b) in COMPLEMENTS {
            let both = baskets.iter().filter(|x| x.contains(&a) && x.contains(&b)).count() as f64 / n;
            let lift = both / (p(a) * p(b));
            assert!(lift > 2.0, "{a}+{b}: lift {lift:.2}");
        }
        // a non-complement pair stays near chance
        let both = baskets.iter().filter(|x| x.contains(&"phones") && x.contains(&"socks")).count() as f64 / n;
        assert!(both / (p("phones") * p("socks")) < 1.5);
    }

    #[test]
    fn segments_prefer_their_categories() {
        let d = generate(scale("small").unwrap(), 42, END);
        let seg: HashMap<&str, &str> = d.customers.iter().map(|(c, s)| (c.as_str(), *s)).collect();
        let cat: HashMap<&str, &str> = d.items.iter().map(|i| (i.item_id.as_str(), i.category)).collect();
        let share = |segment: &str, category: &str| {
            let lines: Vec<&str> = d
                .orders
                .iter()
                .filter(|o| seg[o["customer_id"].as_str().unwrap()] == segment)
                .flat_map(|o| o["cart"]["items"].as_array().unwrap().iter().map(|l| cat[l["sku"].as_str().unwrap()]))
                .collect();
            lines.iter().filter(|c| **c == category).count() as f64 / lines.len() as f64
        };
        assert!(share("runners", "shoes") > 3.0 * share("tech", "shoes"));
        assert!(share("tech", "laptops") > 3.0 * share("coffee", "laptops"));
    }
}
