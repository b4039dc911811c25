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

/// Words for why item `i` is recommended: from the member that contributes most, and the
/// anchor behind it.
pub fn reason(m: &Model, s: &Scores, req: &Request, i: u32, local_hour: u32) -> String {
    let title = |j: u32| m.cat.title.get(j as usize).map(String::as_str).unwrap_or("");
    let popular = || popular_reason(m.cat.category_name(i), local_hour);
    let because = |a: &Anchor| match a.verb {
        Verb::InCart => format!("goes with {} in your cart", title(a.item)),
        Verb::Viewed => format!("because you viewed {}", title(a.item)),
        Verb::Carted => format!("because you added {} to your cart", title(a.item)),
        Verb::Bought => format!("because you bought {}", title(a.item)),
        Verb::Rated => format!("because you rated {} highly", title(a.item)),
    };
    match s.dominant(i) {
        COOCCURRENCE => match req.anchors.get(s.via_of(i) as usize) {
            Some(a) if a.verb == Verb::InCart || a.verb == Verb::Bought => format!("bought together with {}", title(a.item)),
            Some(a) => format!("often viewed with {}", title(a.item)),
            None => popular(),
        },
        CONTENT => {
            let best = m.content.as_ref().and_then(|(v, d)| {
                let row = |j: u32| &v[j as usize * d..(j as usize + 1) * d];
                req.anchors.iter().max_by(|a, b| dot(row(a.item), row(i)).total_cmp(&dot(row(b.item), row(i))))
            });
            match best {
                Some(a) => format!("similar to {}", title(a.item)),
                None => popular(),
            }
        }
        ALS => {
            let explained = match (&m.als, req.explain) {
                (Some(al), Some(e)) => e.top(al, i).and_then(|j| req.anchors.iter().find(|a| a.item == j)),
                _ => None,
            };
            let best = explained.or_else(|| {
                m.als.as_ref().and_then(|al| {
                    let y = al.vec(i);
                    // the anchor most like the item by cosine: a raw dot product favours anchors with
                    // long vectors (popular items), whatever they are
                    let cos = |a: &Anchor| dot(al.vec(a.item), y) / al.norm[a.item as usize].max(1e-12);
                    req.anchors.iter().filter(|a| al.learned[a.item as usize]).max_by(|a, b| cos(a).total_cmp(&cos(b)))
                })
            });
            match best {
                Some(a) => because(a),
                None => "picked for you from your order history".to_string(),
            }
        }
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
