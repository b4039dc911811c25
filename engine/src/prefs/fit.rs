//! Using resolved preferences on items: which SKUs fit, and which variants to offer instead.
use crate::standardize::size;
use serde_json::{Map, Value};

/// What an item offers, as read from reco.items.
#[derive(Debug, Clone, Default)]
pub struct ItemFacts {
    pub item_id: String,
    pub size: Option<String>,
    pub color: Option<String>,
    pub brand: Option<String>,
    /// price in minor units of `currency`
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
}

fn pref<'a>(resolved: &'a Map<String, Value>, category: &str) -> Option<&'a Value> {
    resolved.get(category).and_then(|r| r.get("value"))
}

fn size_category(code: &str) -> Option<&'static str> {
    match size::family_of(code)? {
        size::Family::Tops => Some("size_tops"),
        size::Family::Bottoms => Some("size_bottoms"),
        size::Family::Shoes => Some("size_shoes"),
        size::Family::Any => None,
    }
}

/// The customer's resolved size in the family of size `code` (tops, bottoms, shoes).
fn wanted_size<'a>(resolved: &'a Map<String, Value>, code: &str) -> Option<&'a str> {
    size_category(code).and_then(|c| pref(resolved, c)).and_then(Value::as_str)
}

/// The item has a size (not one-size) and it is the customer's resolved size for its family.
pub fn in_your_size(resolved: &Map<String, Value>, item: &ItemFacts) -> bool {
    item.size.as_deref().is_some_and(|code| code != "OS" && wanted_size(resolved, code) == Some(code))
}

/// Whether an item matches the resolved size, color, brand and price range. A category without
/// a preference, or an item without that attribute, does not filter.
pub fn fits(resolved: &Map<String, Value>, item: &ItemFacts) -> bool {
    if let Some(code) = &item.size {
        if wanted_size(resolved, code).is_some_and(|want| want != code && code != "OS") {
            return false;
        }
    }
    if let (Some(c), Some(want)) = (&item.color, pref(resolved, "color").and_then(Value::as_str)) {
        if c != want {
            return false;
        }
    }
    if let (Some(b), Some(want)) = (&item.brand, pref(resolved, "brand").and_then(Value::as_str)) {
        if !b.eq_ignore_ascii_case(want) {
            return false;
        }
    }
    if let (Some(p), Some(cur), Some(range)) = (item.price_minor, &item.currency, pref(resolved, "price_range")) {
        if range.get("currency").and_then(Value::as_str) == Some(cur.as_str()) {
            let min = range.get("min_minor").and_then(Value::as_i64);
            let max = range.get("max_minor").and_then(Value::as_i64);
            if min.is_some_and(|m| p < m) || max.is_some_and(|m| p > m) {
                return false;
            }
        }
    }
    true
}

/// Orders buyable variants of a product for a customer: their size and color first, then their
/// size, then their color, then the nearest size (to their size, or the asked-for item's).
/// Returns (item_id, reason), best first.
pub fn rank_alternatives(resolved: &Map<String, Value>, base: &ItemFacts, variants: &[ItemFacts]) -> Vec<(String, String)> {
    let pref_size: Option<String> = base.size.as_deref().and_then(size_category).and_then(|c| pref(resolved, c)).and_then(Value::as_str).map(str::to_string);
    let pref_color: Option<String> = pref(resolved, "color").and_then(Value::as_str).map(str::to_string);
    // "your" when it is the customer's preference, "same" when it is the asked-for item's
    let (size_word, color_word) = (if pref_size.is_some() { "your" } else { "same" }, if pref_color.is_some() { "your" } else { "same" });
    let want_size = pref_size.or_else(|| base.size.clone());
    let want_color = pref_color.or_else(|| base.color.clone());
    let target = want_size.as_deref().and_then(size::rank);
    let mut scored: Vec<(u8, f64, &ItemFacts)> = variants
        .iter()
        .filter(|v| v.item_id != base.item_id)
        .map(|v| {
            let size_ok = want_size.is_some() && v.size == want_size;
            let color_ok = want_color.is_some() && v.color == want_color;
            let tier = match (size_ok, color_ok) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            let dist = match (target, v.size.as_deref().and_then(size::rank)) {
                (Some(t), Some(r)) => (t - r).abs(),
                _ => f64::MAX,
            };
            (tier, dist, v)
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.item_id.cmp(&b.2.item_id)));
    scored
        .into_iter()
        .map(|(tier, dist, v)| {
            let reason = match tier {
                0 if size_word == color_word => format!("{size_word} size and color"),
                0 => format!("{size_word} size, {color_word} color"),
                1 => format!("{size_word} size"),
                2 if dist < f64::MAX => format!("{color_word} color, nearest size {}", v.size.as_deref().unwrap_or("")),
                2 => format!("{color_word} color"),
                _ if dist < f64::MAX => format!("nearest size in stock: {}", v.size.as_deref().unwrap_or("")),
                _ => "another variant in stock".to_string(),
            };
            (v.item_id.clone(), reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolved(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().iter().map(|(k, x)| (k.clone(), json!({"value": x}))).collect()
    }

    fn item(id: &str, size: &str, color: &str) -> ItemFacts {
        ItemFacts { item_id: id.into(), size: Some(size.into()), color: Some(color.into()), ..Default::default() }
    }

    #[test]
    fn fit_by_each_category() {
        let r = resolved(json!({"size_tops": "M", "color": "navy", "price_range": {"min_minor": 1000, "max_minor": 5000, "currency": "EUR"}}));
        assert!(fits(&r, &item("a", "M", "navy")));
        assert!(!fits(&r, &item("b", "L", "navy")));
        assert!(!fits(&r, &item("c", "M", "red")));
        assert!(fits(&r, &item("d", "EU42", "navy")), "no shoe size preference: shoes are not filtered by size");
        assert!(fits(&r, &item("e", "OS", "navy")));
        let priced = |p: i64, cur: &str| ItemFacts { price_minor: Some(p), currency: Some(cur.into()), ..item("p", "M", "navy") };
        assert!(fits(&r, &priced(3000, "EUR")));
        assert!(!fits(&r, &priced(6000, "EUR")));
        assert!(fits(&r, &priced(6000, "USD")), "a range in another currency does not filter");
        assert!(fits(&Map::new(), &item("x", "XL", "red")));
    }

    #[test]
    fn alternatives_rank_size_and_color_then_nearest() {
        let r = resolved(json!({"size_tops": "M", "color": "navy"}));
        let base = item("tee-l-red", "L", "red");
        let variants = vec![
            item("tee-l-red", "L", "red"),
            item("tee-s-red", "S", "red"),
            item("tee-m-black", "M", "black"),
            item("tee-m-navy", "M", "navy"),
            item("tee-xl-navy", "XL", "navy"),
        ];
        let got = rank_alternatives(&r, &base, &variants);
        assert_eq!(got[0], ("tee-m-navy".to_string(), "your size and color".to_string()));
        assert_eq!(got[1].0, "tee-m-black");
        assert_eq!(got[2], ("tee-xl-navy".to_string(), "your color, nearest size XL".to_string()));
        assert_eq!(got[3], ("tee-s-red".to_string(), "nearest size in stock: S".to_string()));
        assert_eq!(got.len(), 4, "never the item itself");
        // no preferences: the asked-for item's own size and color lead
        let got = rank_alternatives(&Map::new(), &base, &[item("a", "XXL", "red"), item("b", "M", "red"), item("c", "L", "navy")]);
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["c", "b", "a"]); // size L first, then M (1 away) before XXL (2)
        assert_eq!(got[0].1, "same size");
        assert_eq!(got[1].1, "same color, nearest size M");
    }
}
