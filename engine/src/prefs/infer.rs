//! Implicit preferences from behaviour: what a customer keeps buying, returns and browses.
//!
//! | category | evidence | rule |
//! |---|---|---|
//! | `size_tops`, `size_bottoms`, `size_shoes` | sizes of purchased lines (family from the size code) | the size kept most often; a return "too small" votes for the next size up, "too large" for the next size down; other returns take the vote back. At least 2 votes |
//! | `color`, `brand` | kept purchases (source `inferred_orders`), and viewed / carted items (`inferred_browsing`) | the most frequent value when it has at least 30% of the evidence and 2 occurrences |
//! | `price_range` | paid unit prices of kept purchases, in the most used currency | the interquartile range (25th to 75th percentile, nearest rank); at least 4 purchases |
//! | `channel` | orders | the most used channel (web, mobile, store, marketplace) with at least 40% of 2 or more orders |
//! | `delivery_speed` | orders with a delivery speed | the most used speed with at least 40% of 2 or more orders |
//!
//! Confidence is the winning share damped by the amount of evidence, share × n / (n + 2), so two
//! agreeing purchases give 0.5 and ten give 0.83. `observed_at` is the newest evidence used.
use crate::standardize::size;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnReason {
    TooSmall,
    TooLarge,
    Other,
}

impl ReturnReason {
    /// From a return event's free-text reason ("too small", "runs large", "wrong color" ...).
    pub fn parse(reason: Option<&str>) -> ReturnReason {
        let r = reason.unwrap_or("").to_lowercase();
        if r.contains("small") || r.contains("tight") || r.contains("short") {
            ReturnReason::TooSmall
        } else if r.contains("large") || r.contains("big") || r.contains("loose") || r.contains("long") {
            ReturnReason::TooLarge
        } else {
            ReturnReason::Other
        }
    }
}

/// One purchased line with what became of it.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub size: Option<String>,
    pub color: Option<String>,
    pub brand: Option<String>,
    pub unit_price_minor: i64,
    pub currency: String,
    pub channel: String,
    pub delivery_speed: Option<String>,
    pub at: DateTime<Utc>,
    pub returned: Option<ReturnReason>,
}

/// A viewed (long enough) or carted item.
#[derive(Debug, Clone)]
pub struct Browse {
    pub color: Option<String>,
    pub brand: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub category: String,
    pub source: &'static str,
    pub value: Value,
    pub confidence: f64,
    pub evidence: i32,
    pub observed_at: DateTime<Utc>,
}

fn damp(share: f64, n: usize) -> f64 {
    let c = share * n as f64 / (n as f64 + 2.0);
    (c * 1000.0).round() / 1000.0
}

/// A winning key, its weight, the total weight, and the newest evidence time.
type Tally<K> = (K, f64, f64, DateTime<Utc>);
/// A vote for a key with its weight and time.
type Vote<K> = (K, f64, DateTime<Utc>);

/// The most frequent key with its count and the total; ties go to the newest, then the smaller key.
fn mode<K: Clone + Ord + std::hash::Hash>(votes: &[Vote<K>]) -> Option<Tally<K>> {
    let mut tally: HashMap<K, (f64, DateTime<Utc>)> = HashMap::new();
    let mut total = 0.0;
    for (k, w, at) in votes {
        total += w;
        let e = tally.entry(k.clone()).or_insert((0.0, *at));
        e.0 += w;
        if *at > e.1 {
            e.1 = *at;
        }
    }
    let mut v: Vec<(K, (f64, DateTime<Utc>))> = tally.into_iter().filter(|(_, (w, _))| *w > 0.0).collect();
    v.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(b.1 .1.cmp(&a.1 .1)).then(a.0.cmp(&b.0)));
    let newest = votes.iter().map(|x| x.2).max()?;
    v.into_iter().next().map(|(k, (w, _))| (k, w, total, newest))
}

fn favourite(category: &str, source: &'static str, items: impl Iterator<Item = (String, DateTime<Utc>)>, min_share: f64, out: &mut Vec<Inferred>) {
    let votes: Vec<(String, f64, DateTime<Utc>)> = items.map(|(k, at)| (k, 1.0, at)).collect();
    let n = votes.len();
    if let Some((k, w, total, newest)) = mode(&votes) {
        let share = w / total;
        if w >= 2.0 && share >= min_share {
            out.push(Inferred { category: category.into(), source, value: json!(k), confidence: damp(share, n), evidence: n as i32, observed_at: newest });
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The channel a shopping channel name stands for, in the `channel` category's vocabulary.
pub fn channel_class(channel: &str) -> Option<&'static str> {
    Some(match channel {
        "web" | "shopify" | "woocommerce" => "web",
        "mobile" => "mobile",
        "pos" => "store",
        "amazon" => "marketplace",
        _ => return None,
    })
}

/// Infers implicit preferences from one customer's purchases and browsing.
pub fn infer(purchases: &[Purchase], browsing: &[Browse]) -> Vec<Inferred> {
    let mut out = Vec::new();
    // sizes per family: kept sizes vote for themselves, sized returns for the neighbour
    let mut by_family: HashMap<&'static str, Vec<Vote<String>>> = HashMap::new();
    for p in purchases {
        let Some(code) = &p.size else { continue };
        let Some(fam) = size::family_of(code) else { continue };
        let cat = match fam {
            size::Family::Tops => "size_tops",
            size::Family::Bottoms => "size_bottoms",
            size::Family::Shoes => "size_shoes",
            size::Family::Any => continue,
        };
        let vote = match p.returned {
            None => Some(code.clone()),
            Some(ReturnReason::TooSmall) => size::neighbor(code, 1),
            Some(ReturnReason::TooLarge) => size::neighbor(code, -1),
            Some(ReturnReason::Other) => None,
        };
        if let Some(v) = vote {
            by_family.entry(cat).or_default().push((v, 1.0, p.at));
        }
    }
    let mut cats: Vec<_> = by_family.into_iter().collect();
    cats.sort_by_key(|(c, _)| *c);
    for (cat, votes) in cats {
        if let Some((k, w, total, newest)) = mode(&votes) {
            if total >= 2.0 {
                out.push(Inferred {
                    category: cat.into(),
                    source: "inferred_orders",
                    value: json!(k),
                    confidence: damp(w / total, votes.len()),
                    evidence: votes.len() as i32,
                    observed_at: newest,
                });
            }
        }
    }
    let kept: Vec<&Purchase> = purchases.iter().filter(|p| p.returned.is_none()).collect();
    favourite("color", "inferred_orders", kept.iter().filter_map(|p| Some((p.color.clone()?, p.at))), 0.3, &mut out);
    favourite("brand", "inferred_orders", kept.iter().filter_map(|p| Some((p.brand.clone()?, p.at))), 0.3, &mut out);
    favourite("color", "inferred_browsing", browsing.iter().filter_map(|b| Some((b.color.clone()?, b.at))), 0.3, &mut out);
    favourite("brand", "inferred_browsing", browsing.iter().filter_map(|b| Some((b.brand.clone()?, b.at))), 0.3, &mut out);
    // price range: interquartile range in the most used currency
    let cur_votes: Vec<(String, f64, DateTime<Utc>)> = kept.iter().map(|p| (p.currency.clone(), 1.0, p.at)).collect();
    if let Some((cur, _, _, _)) = mode(&cur_votes) {
        let mut prices: Vec<i64> = kept.iter().filter(|p| p.currency == cur).map(|p| p.unit_price_minor).collect();
        if prices.len() >= 4 {
            prices.sort_unstable();
            let newest = kept.iter().filter(|p| p.currency == cur).map(|p| p.at).max().unwrap_or_default();
            out.push(Inferred {
                category: "price_range".into(),
                source: "inferred_orders",
                value: json!({"min_minor": percentile(&prices, 0.25), "max_minor": percentile(&prices, 0.75), "currency": cur}),
                confidence: damp(1.0, prices.len()),
                evidence: prices.len() as i32,
                observed_at: newest,
            });
        }
    }
    // channel: per order, not per line (the caller passes one purchase per line; dedupe by time+channel)
    let mut orders: Vec<(String, DateTime<Utc>)> = purchases.iter().filter_map(|p| Some((channel_class(&p.channel)?.to_string(), p.at))).collect();
    orders.sort();
    orders.dedup();
    favourite("channel", "inferred_orders", orders.into_iter(), 0.4, &mut out);
    let mut speeds: Vec<(String, DateTime<Utc>)> = purchases.iter().filter_map(|p| Some((p.delivery_speed.clone()?, p.at))).collect();
    speeds.sort();
    speeds.dedup();
    favourite("delivery_speed", "inferred_orders", speeds.into_iter(), 0.4, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standardize::time;

    fn at(d: &str) -> DateTime<Utc> {
        time::parse(d, chrono_tz::Tz::UTC, time::EpochUnit::Auto).unwrap()
    }

    fn buy(size: &str, color: &str, brand: &str, price: i64, d: &str, returned: Option<ReturnReason>) -> Purchase {
        Purchase {
            size: Some(size.into()).filter(|s: &String| !s.is_empty()),
            color: Some(color.into()),
            brand: Some(brand.into()),
            unit_price_minor: price,
            currency: "EUR".into(),
            channel: "web".into(),
            delivery_speed: Some("express".into()).filter(|_| price > 1000),
            at: at(d),
            returned,
        }
    }

    fn get<'a>(v: &'a [Inferred], cat: &str, source: &str) -> Option<&'a Inferred> {
        v.iter().find(|i| i.category == cat && i.source == source)
    }

    #[test]
    fn kept_size_and_returns_move_it() {
        let p = vec![
            buy("M", "navy", "Acme", 2000, "2024-01-01", Some(ReturnReason::TooSmall)),
            buy("L", "navy", "Acme", 2500, "2024-02-01", None),
            buy("L", "black", "Zeta", 3000, "2024-03-01", None),
            buy("EU42", "black", "Run", 8000, "2024-03-05", None),
        ];
        let v = infer(&p, &[]);
        let s = get(&v, "size_tops", "inferred_orders").unwrap();
        assert_eq!((s.value.clone(), s.evidence, s.confidence), (json!("L"), 3, 0.6)); // 3/3 × 3/5
        assert_eq!(s.observed_at, at("2024-03-01"));
        assert!(get(&v, "size_shoes", "inferred_orders").is_none(), "one shoe purchase is not enough");
        // a "too large" return of L votes for M
        let p2 = vec![buy("L", "navy", "A", 1, "2024-01-01", Some(ReturnReason::TooLarge)), buy("M", "navy", "A", 1, "2024-02-01", None)];
        assert_eq!(get(&infer(&p2, &[]), "size_tops", "inferred_orders").unwrap().value, json!("M"));
    }

    #[test]
    fn favourites_need_support_and_share() {
        let p = vec![
            buy("", "navy", "Acme", 1000, "2024-01-01", None),
            buy("", "navy", "Acme", 2000, "2024-01-02", None),
            buy("", "red", "Zeta", 3000, "2024-01-03", None),
            buy("", "green", "Omni", 4000, "2024-01-04", Some(ReturnReason::Other)),
        ];
        let v = infer(&p, &[]);
        let c = get(&v, "color", "inferred_orders").unwrap();
        assert_eq!((c.value.clone(), c.evidence), (json!("navy"), 3)); // the returned green does not count
        assert_eq!(get(&v, "brand", "inferred_orders").unwrap().value, json!("Acme"));
        let one = infer(&p[..1], &[]);
        assert!(get(&one, "color", "inferred_orders").is_none());
        let browse = vec![Browse { color: Some("red".into()), brand: None, at: at("2024-05-01") }; 3];
        assert_eq!(get(&infer(&[], &browse), "color", "inferred_browsing").unwrap().value, json!("red"));
    }

    #[test]
    fn price_range_is_the_interquartile_range() {
        let p: Vec<Purchase> = [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
            .iter()
            .enumerate()
            .map(|(i, x)| buy("", "navy", "A", *x, &format!("2024-01-0{}", i + 1), None))
            .collect();
        let v = infer(&p, &[]);
        let r = get(&v, "price_range", "inferred_orders").unwrap();
        assert_eq!(r.value, json!({"min_minor": 2000, "max_minor": 6000, "currency": "EUR"}));
        assert_eq!(r.evidence, 8);
        assert!(get(&infer(&p[..3], &[]), "price_range", "inferred_orders").is_none());
    }

    #[test]
    fn usual_channel_counts_orders_not_lines() {
        let mut p = vec![buy("", "navy", "A", 1, "2024-01-01", None), buy("", "navy", "A", 1, "2024-01-01", None)];
        p.push(Purchase { channel: "pos".into(), ..buy("", "navy", "A", 1, "2024-02-01", None) });
        p.push(Purchase { channel: "pos".into(), ..buy("", "navy", "A", 1, "2024-03-01", None) });
        let v = infer(&p, &[]);
        let c = get(&v, "channel", "inferred_orders").unwrap();
        assert_eq!((c.value.clone(), c.evidence), (json!("store"), 3));
        assert!(get(&v, "delivery_speed", "inferred_orders").is_none(), "no order had a delivery speed");
        let fast: Vec<Purchase> = (1..=3).map(|i| buy("", "navy", "A", 2000, &format!("2024-01-0{i}"), None)).collect();
        let d = infer(&fast, &[]);
        assert_eq!(get(&d, "delivery_speed", "inferred_orders").unwrap().value, json!("express"));
    }

    #[test]
    fn return_reasons() {
        assert_eq!(ReturnReason::parse(Some("Too small")), ReturnReason::TooSmall);
        assert_eq!(ReturnReason::parse(Some("runs large")), ReturnReason::TooLarge);
        assert_eq!(ReturnReason::parse(Some("wrong color")), ReturnReason::Other);
        assert_eq!(ReturnReason::parse(None), ReturnReason::Other);
    }
}
