//! Notifications: what e-mail, push and in-app messages show. Templates ([`template`]), the
//! price and availability lines resolved at render time, and the send-time rules.
pub mod bound;
pub mod consent;
pub mod send_time;
pub mod template;

use crate::standardize::money::{currency, format_minor};

/// The availability line of an item at render time.
/// `low` is the count at or below which "Only N left" is shown.
pub fn availability(available: i64, backordered: bool, back_in_stock: bool, low: i64) -> String {
    if available <= 0 || backordered {
        "Out of stock".into()
    } else if back_in_stock {
        "Back in stock".into()
    } else if available <= low {
        format!("Only {available} left")
    } else {
        "In stock".into()
    }
}

/// A price in minor units as `amount` ("19.99", "1500") and display text ("19.99 EUR").
/// `None` when the currency is unknown or has no minor unit.
pub fn price_text(minor: i64, code: &str) -> Option<(String, String)> {
    let cur = currency(code).ok()?;
    let amount = format_minor(minor, cur.exponent);
    Some((amount.clone(), format!("{amount} {}", cur.code)))
}

/// `base` with `rec_id` (and the item, when given) as query parameters, so a click is
/// attributed to the message it came from.
pub fn link(base: &str, item: Option<&str>, rec_id: i64) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let path = match item {
        Some(i) => format!("{base}{}", enc(i)),
        None => base.to_string(),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}rec_id={rec_id}")
}

/// An item as the live tables have it at render time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveItem {
    pub id: String,
    /// `None` when the item is no longer in the catalogue.
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// The stored price as decimal text (`items.price::text`).
    pub price: Option<String>,
    pub currency: Option<String>,
    pub available: i64,
    pub backordered: bool,
    pub active: bool,
    /// Available again within `reco.back_in_stock_days`.
    pub back_in_stock: bool,
}

impl LiveItem {
    pub fn buyable(&self) -> bool {
        self.title.is_some() && self.active && self.available > 0 && !self.backordered
    }
}

/// The items a message shows: the first `k` buyable ones in the candidate's order (an item out
/// of stock since selection is replaced by the next spare), with live price and availability.
/// Returns them and how many items were left out (not buyable any more), or why the message is
/// dropped.
pub fn message_items(
    live: &[LiveItem],
    reasons: &[String],
    k: usize,
    low_stock: i64,
    link_base: &str,
    rec_id: i64,
) -> std::result::Result<(Vec<template::Item>, usize), String> {
    let mut out = Vec::with_capacity(k);
    let mut skipped = 0;
    for (i, it) in live.iter().enumerate() {
        if out.len() == k {
            break;
        }
        if !it.buyable() {
            skipped += 1;
            continue;
        }
        let minor = crate::standardize::money::minor_units(it.price.as_deref(), it.currency.as_deref());
        let (amount, text) = match (minor, it.currency.as_deref()) {
            (Some(m), Some(c)) => price_text(m, c).unwrap_or_default(),
            _ => (String::new(), String::new()),
        };
        out.push(template::Item {
            id: it.id.clone(),
            title: it.title.clone().unwrap_or_default(),
            brand: it.brand.clone().unwrap_or_default(),
            category: it.category.clone().unwrap_or_default(),
            price: text,
            price_amount: amount,
            price_minor: minor,
            currency: it.currency.clone().unwrap_or_default(),
            available: it.available,
            in_stock: true,
            availability: availability(it.available, it.backordered, it.back_in_stock, low_stock),
            link: link(link_base, Some(&it.id), rec_id),
            reason: reasons.get(i).cloned().unwrap_or_default(),
        });
    }
    if out.is_empty() {
        return Err(if live.is_empty() { "no items to show".into() } else { "every item is out of stock or gone".into() });
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_stock_items_are_replaced_by_spares_or_the_message_dropped() {
        let it = |id: &str, available: i64| LiveItem {
            id: id.into(),
            title: Some(format!("T {id}")),
            price: Some("10.5".into()),
            currency: Some("EUR".into()),
            available,
            active: true,
            ..Default::default()
        };
        let reasons: Vec<String> = ["r1", "r2", "r3", "r4"].iter().map(|s| s.to_string()).collect();
        let live = vec![it("a", 4), it("b", 0), it("c", 20), it("d", 1)];
        let (items, skipped) = message_items(&live, &reasons, 2, 5, "https://s/i/", 9).unwrap();
        assert_eq!(items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(skipped, 1);
        assert_eq!(items[0].availability, "Only 4 left");
        assert_eq!(items[0].price, "10.50 EUR");
        assert_eq!(items[0].price_minor, Some(1050));
        assert_eq!(items[1].reason, "r3");
        assert_eq!(items[1].link, "https://s/i/c?rec_id=9");
        let gone = LiveItem { id: "x".into(), ..Default::default() };
        assert_eq!(message_items(&[it("b", 0), gone], &reasons, 2, 5, "https://s/", 1).unwrap_err(), "every item is out of stock or gone");
        assert_eq!(message_items(&[], &reasons, 2, 5, "https://s/", 1).unwrap_err(), "no items to show");
    }

    #[test]
    fn availability_lines() {
        assert_eq!(availability(0, false, false, 5), "Out of stock");
        assert_eq!(availability(10, true, false, 5), "Out of stock");
        assert_eq!(availability(3, false, true, 5), "Back in stock");
        assert_eq!(availability(5, false, false, 5), "Only 5 left");
        assert_eq!(availability(6, false, false, 5), "In stock");
    }

    #[test]
    fn prices_from_minor_units() {
        assert_eq!(price_text(1999, "eur"), Some(("19.99".into(), "19.99 EUR".into())));
        assert_eq!(price_text(1500, "JPY"), Some(("1500".into(), "1500 JPY".into())));
        assert_eq!(price_text(12345, "KWD"), Some(("12.345".into(), "12.345 KWD".into())));
        assert_eq!(price_text(5, "USD"), Some(("0.05".into(), "0.05 USD".into())));
        assert_eq!(price_text(5, "XXQ"), None);
    }

    #[test]
    fn links_carry_the_rec_id() {
        assert_eq!(link("https://s.example/item/", Some("SKU 1/a"), 42), "https://s.example/item/SKU%201%2Fa?rec_id=42");
        assert_eq!(link("https://s.example/?utm=x", None, 7), "https://s.example/?utm=x&rec_id=7");
    }
}
