//! Reasons: the words shown beside each recommended item, from the member that contributes
//! most to its score and the anchor behind it; and the local hour they speak of.
use super::{Anchor, Model, Request, Scores, Verb, ALS, CONTENT, COOCCURRENCE};
use crate::models::linalg::dot;

/// "morning", "afternoon", "evening" or "night" for a local hour.
pub fn part_of_day(hour: u32) -> &'static str {
    match hour {
        5..=11 => "morning",
        12..=16 => "afternoon",
        17..=21 => "evening",
        _ => "night",
    }
}

/// "popular in <category> this <part of day>" (without a category: "popular this ...").
pub fn popular_reason(category: &str, local_hour: u32) -> String {
    if category.is_empty() {
        format!("popular this {}", part_of_day(local_hour))
    } else {
        format!("popular in {category} this {}", part_of_day(local_hour))
    }
}

/// Whether anchor `a` can explain item `i` to a customer: the same category, or bought
/// together (either is in the other's basket neighbours). A reason that names an anchor with
/// neither ("because you bought running shoes" beside a phone case) reads as a mistake,
/// whatever the model's arithmetic says; a link only from browsing sessions (two items viewed
/// in one visit) is too weak to name.
pub fn linked(m: &Model, a: u32, i: u32) -> bool {
    let cat = |j: u32| m.cat.category.get(j as usize).copied();
    cat(a).is_some() && cat(a) == cat(i) || basket_link(m, a, i)
}

/// Whether `a` and `i` are in each other's basket neighbours (either way).
fn basket_link(m: &Model, a: u32, i: u32) -> bool {
    let listed = |from: u32, to: u32| m.basket.as_ref().and_then(|n| n.get(from as usize)).is_some_and(|l| l.iter().any(|x| x.item == to));
    listed(a, i) || listed(i, a)
}

/// Words for why item `i` is recommended: from the member that contributes most, and the
/// anchor behind it. A reason names an anchor only when the two are [`linked`]; otherwise it
/// is a generic one ("picked for you ...", "popular in ..."). An item that is a co-occurrence
/// neighbour of an anchor says so even when popularity contributes more: "bought together with
/// the phone in your cart" is the better reason for a popular phone case, at every hour.
pub fn reason(m: &Model, s: &Scores, req: &Request, i: u32, local_hour: u32) -> String {
    let title = |j: u32| m.cat.title.get(j as usize).unwrap_or("");
    let popular = || popular_reason(m.cat.category_name(i), local_hour);
    let because = |a: &Anchor| match a.verb {
        Verb::InCart => format!("goes with {} in your cart", title(a.item)),
        Verb::Viewed => format!("because you viewed {}", title(a.item)),
        Verb::Carted => format!("because you added {} to your cart", title(a.item)),
        Verb::Bought => format!("because you bought {}", title(a.item)),
        Verb::Rated => format!("because you rated {} highly", title(a.item)),
    };
    // "bought together" only for a basket link from what is in the cart or was bought
    let together = |a: &Anchor| {
        if (a.verb == Verb::InCart || a.verb == Verb::Bought) && basket_link(m, a.item, i) {
            format!("bought together with {}", title(a.item))
        } else {
            format!("often viewed with {}", title(a.item))
        }
    };
    // the anchor that gave the item the most co-occurrence, when the two are linked
    let via = req.anchors.get(s.via_of(i) as usize).filter(|a| s.part(COOCCURRENCE, i) > 0.0 && linked(m, a.item, i));
    match s.dominant(i) {
        COOCCURRENCE => via.map_or_else(popular, together),
        CONTENT => {
            let best = m.content.as_ref().and_then(|(v, d)| {
                let row = |j: u32| &v[j as usize * d..(j as usize + 1) * d];
                req.anchors.iter().filter(|a| linked(m, a.item, i)).max_by(|a, b| dot(row(a.item), row(i)).total_cmp(&dot(row(b.item), row(i))))
            });
            match best {
                Some(a) => format!("similar to {}", title(a.item)),
                None => via.map_or_else(popular, together),
            }
        }
        ALS => {
            // the linked anchor with the largest share of the folded-in score; without an
            // explanation, the linked anchor most like the item by cosine (a raw dot product
            // favours anchors with long vectors, popular items, whatever they are)
            let best = m.als.as_ref().and_then(|al| match req.explain {
                Some(e) => e.top(al, i, |j| linked(m, j, i)).and_then(|j| req.anchors.iter().find(|a| a.item == j)),
                None => {
                    let y = al.vec(i);
                    let cos = |a: &Anchor| dot(al.vec(a.item), y) / al.norm[a.item as usize].max(1e-12);
                    req.anchors.iter().filter(|a| al.learned[a.item as usize] && linked(m, a.item, i)).max_by(|a, b| cos(a).total_cmp(&cos(b)))
                }
            });
            match (best, via) {
                (Some(a), _) => because(a),
                (None, Some(a)) => together(a),
                (None, None) => "picked for you from your order history".to_string(),
            }
        }
        _ if via.is_some() => via.map_or_else(popular, together),
        _ if !req.browsed.is_empty() && req.browsed.contains(&m.cat.category[i as usize]) => {
            format!("best seller in {} (you are browsing it)", m.cat.category_name(i))
        }
        _ if req.segment.iter().any(|x| x.0 == i) => "best seller with customers like you".to_string(),
        _ => popular(),
    }
}

/// The local hour at `now_ms` in the customer's time zone (UTC when unknown or invalid).
pub fn local_hour(now_ms: i64, zone: Option<&str>) -> u32 {
    use chrono::Timelike;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    match zone.and_then(|z| crate::standardize::time::zone(z).ok()) {
        Some(tz) => t.with_timezone(&tz).hour(),
        None => t.hour(),
    }
}
