//! Turning normalized orders into the column arrays one `INSERT ... SELECT FROM unnest(...)`
//! writes, so a batch costs a handful of statements whatever its size.
use super::{Order, Status};
use crate::standardize::{money, time};
use std::collections::{HashMap, HashSet};

/// FNV-1a of the canonical JSON: stable across releases and platforms, unlike std's hasher.
pub fn canonical_hash(o: &Order) -> i64 {
    crate::hash::fnv1a64(serde_json::to_string(o).unwrap_or_default().as_bytes()) as i64
}

/// Keeps the last payload of each order (a later webhook supersedes an earlier one in the same
/// batch), sorted by order id so concurrent batches lock rows in the same order.
/// Returns the kept orders and how many were superseded.
pub fn dedupe_last(orders: Vec<Order>) -> (Vec<Order>, usize) {
    let n = orders.len();
    let mut last: HashMap<String, Order> = HashMap::with_capacity(n);
    for o in orders {
        last.insert(o.order_id.clone(), o);
    }
    let mut kept: Vec<Order> = last.into_values().collect();
    kept.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    let superseded = n - kept.len();
    (kept, superseded)
}

#[derive(Default)]
pub struct OrderColumns {
    pub order_id: Vec<String>,
    pub channel: Vec<String>,
    pub external_id: Vec<String>,
    pub customer_id: Vec<String>,
    pub placed_at: Vec<i64>,
    pub currency: Vec<String>,
    pub subtotal: Vec<i64>,
    pub discount: Vec<i64>,
    pub shipping: Vec<i64>,
    pub tax: Vec<i64>,
    pub total: Vec<i64>,
    pub status: Vec<String>,
    pub country: Vec<Option<String>>,
    pub email: Vec<Option<String>>,
    pub delivery_speed: Vec<Option<String>>,
    pub hash: Vec<i64>,
}

pub fn order_columns(orders: &[Order]) -> OrderColumns {
    let mut c = OrderColumns::default();
    for o in orders {
        c.order_id.push(o.order_id.clone());
        c.channel.push(o.channel.clone());
        c.external_id.push(o.external_id.clone());
        c.customer_id.push(o.customer_id.clone());
        c.placed_at.push(time::to_pg_micros(&o.placed_at));
        c.currency.push(o.currency.clone());
        c.subtotal.push(o.subtotal_minor);
        c.discount.push(o.discount_minor);
        c.shipping.push(o.shipping_minor);
        c.tax.push(o.tax_minor);
        c.total.push(o.total_minor);
        c.status.push(o.status.as_str().to_string());
        c.country.push(o.country.clone());
        c.email.push(o.email.clone());
        c.delivery_speed.push(o.delivery_speed.clone());
        c.hash.push(canonical_hash(o));
    }
    c
}

/// Customers of the batch with the earliest order time each (their `created_at` if new).
pub fn customer_columns(orders: &[Order]) -> (Vec<String>, Vec<i64>) {
    let mut first: HashMap<&str, i64> = HashMap::new();
    for o in orders {
        let t = time::to_pg_micros(&o.placed_at);
        first.entry(o.customer_id.as_str()).and_modify(|x| *x = (*x).min(t)).or_insert(t);
    }
    let mut v: Vec<(&str, i64)> = first.into_iter().collect();
    v.sort();
    v.into_iter().map(|(c, t)| (c.to_string(), t)).unzip()
}

#[derive(Default)]
pub struct ItemColumns {
    pub item_id: Vec<String>,
    pub group_id: Vec<Option<String>>,
    pub title: Vec<Option<String>>,
    /// exact decimal text of the unit price in major units
    pub price: Vec<String>,
    pub currency: Vec<String>,
    pub attributes: Vec<String>,
}

impl ItemColumns {
    /// Keeps the rows whose item is not in `known` (the catalogue's ids among this batch's).
    pub fn retain_unknown(&mut self, known: &std::collections::HashSet<String>) {
        let keep: Vec<bool> = self.item_id.iter().map(|i| !known.contains(i)).collect();
        fn pick<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut k = keep.iter();
            v.retain(|_| *k.next().unwrap_or(&true));
        }
        pick(&mut self.item_id, &keep);
        pick(&mut self.group_id, &keep);
        pick(&mut self.title, &keep);
        pick(&mut self.price, &keep);
        pick(&mut self.currency, &keep);
        pick(&mut self.attributes, &keep);
    }
}

/// Items referenced by the lines, for placeholders of items the catalog has not synced yet.
/// Sorted by item id: concurrent batches that create the same new items must take their locks
/// in one order, or they deadlock (customers are sorted too, and orders by `dedupe_last`).
pub fn item_columns(orders: &[Order]) -> ItemColumns {
    let mut first: std::collections::BTreeMap<&str, (&Order, &super::Line)> = std::collections::BTreeMap::new();
    for o in orders {
        for l in &o.lines {
            first.entry(l.item_id.as_str()).or_insert((o, l));
        }
    }
    let mut c = ItemColumns::default();
    for (o, l) in first.into_values() {
        let exp = money::currency(&o.currency).map(|c| c.exponent).unwrap_or(2);
        {
            c.item_id.push(l.item_id.clone());
            c.group_id.push(l.group_id.clone());
            c.title.push(l.title.clone());
            c.price.push(money::format_minor(l.unit_price_minor, exp));
            c.currency.push(o.currency.clone());
            let mut attrs = serde_json::Map::new();
            if let Some(s) = &l.size {
                attrs.insert("size".into(), s.clone().into());
            }
            if let Some(col) = &l.color {
                attrs.insert("color".into(), col.clone().into());
            }
            c.attributes.push(serde_json::Value::Object(attrs).to_string());
        }
    }
    c
}

#[derive(Default)]
pub struct LineColumns {
    pub order_id: Vec<String>,
    pub line_no: Vec<i32>,
    pub item_id: Vec<String>,
    pub qty: Vec<i32>,
    pub unit_price: Vec<i64>,
    pub discount: Vec<i64>,
    pub size: Vec<Option<String>>,
    pub color: Vec<Option<String>>,
}

/// Lines of the orders in `changed`.
pub fn line_columns(orders: &[Order], changed: &HashSet<String>) -> LineColumns {
    let mut c = LineColumns::default();
    for o in orders.iter().filter(|o| changed.contains(&o.order_id)) {
        for l in &o.lines {
            c.order_id.push(o.order_id.clone());
            c.line_no.push(l.line_no);
            c.item_id.push(l.item_id.clone());
            c.qty.push(l.qty);
            c.unit_price.push(l.unit_price_minor);
            c.discount.push(l.discount_minor);
            c.size.push(l.size.clone());
            c.color.push(l.color.clone());
        }
    }
    c
}

#[derive(Default)]
pub struct PurchaseColumns {
    pub kind: Vec<String>,
    pub customer_id: Vec<String>,
    pub item_id: Vec<String>,
    pub qty: Vec<f64>,
    pub channel: Vec<String>,
    pub occurred_at: Vec<i64>,
    pub order_id: Vec<String>,
}

/// Events an order implies: `purchase` per line unless cancelled, and `return` per line too
/// when refunded (so training can cancel the purchase).
pub fn purchase_columns(orders: &[Order], changed: &HashSet<String>) -> PurchaseColumns {
    let mut c = PurchaseColumns::default();
    for o in orders.iter().filter(|o| changed.contains(&o.order_id) && o.is_purchase()) {
        let t = time::to_pg_micros(&o.placed_at);
        let kinds: &[&str] = if o.status == Status::Refunded { &["purchase", "return"] } else { &["purchase"] };
        for (kind, l) in kinds.iter().flat_map(|k| o.lines.iter().map(move |l| (k, l))) {
            c.kind.push((*kind).to_string());
            c.customer_id.push(o.customer_id.clone());
            c.item_id.push(l.item_id.clone());
            c.qty.push(f64::from(l.qty));
            c.channel.push(o.channel.clone());
            c.occurred_at.push(t);
            c.order_id.push(o.order_id.clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize_order;
    use serde_json::json;

    fn order(id: &str, total: &str) -> Order {
        normalize_order(
            "web",
            &json!({"id": id, "customer_id": "c1", "created_ms": 1_700_000_000_000i64, "currency": "USD",
            "cart": {"items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}], "totals": {"total": total}}}),
            None,
        )
        .unwrap()
    }

    #[test]
    fn retain_unknown_keeps_every_column_of_the_new_items_in_step() {
        let mut c = ItemColumns {
            item_id: vec!["A".into(), "B".into(), "C".into()],
            group_id: vec![Some("g".into()), None, Some("h".into())],
            title: vec![None, Some("b".into()), Some("c".into())],
            price: vec!["1".into(), "2".into(), "3".into()],
            currency: vec!["USD".into(), "EUR".into(), "GBP".into()],
            attributes: vec!["{}".into(), "{\"x\":1}".into(), "{}".into()],
        };
        c.retain_unknown(&["B".to_string()].into());
        assert_eq!(c.item_id, ["A", "C"]);
        assert_eq!(c.group_id, [Some("g".to_string()), Some("h".to_string())]);
        assert_eq!(c.title, [None, Some("c".to_string())]);
        assert_eq!(
            (c.price, c.currency, c.attributes),
            (vec!["1".to_string(), "3".into()], vec!["USD".to_string(), "GBP".into()], vec!["{}".to_string(), "{}".into()])
        );
        c = ItemColumns {
            item_id: vec!["A".into()],
            price: vec!["1".into()],
            currency: vec!["USD".into()],
            attributes: vec!["{}".into()],
            group_id: vec![None],
            title: vec![None],
        };
        c.retain_unknown(&["A".to_string()].into());
        assert!(c.item_id.is_empty() && c.price.is_empty() && c.group_id.is_empty());
    }

    #[test]
    fn dedupe_keeps_the_last_and_sorts() {
        let (kept, superseded) = dedupe_last(vec![order("2", "1.00"), order("1", "1.00"), order("2", "9.00")]);
        assert_eq!(superseded, 1);
        assert_eq!(kept.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>(), ["web:1", "web:2"]);
        assert_eq!(kept[1].total_minor, 900);
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        assert_eq!(canonical_hash(&order("1", "1.00")), canonical_hash(&order("1", "1.00")));
        assert_ne!(canonical_hash(&order("1", "1.00")), canonical_hash(&order("1", "2.00")));
        // the hash is of the canonical form, so how a payload spells an amount does not matter
        assert_eq!(canonical_hash(&order("1", "1.00")), canonical_hash(&order("1", "1.0")));
    }

    #[test]
    fn columns_of_changed_orders_only() {
        let orders = vec![order("1", "1.00"), order("2", "1.00")];
        let changed: HashSet<String> = ["web:2".to_string()].into();
        assert_eq!(line_columns(&orders, &changed).order_id, ["web:2"]);
        assert_eq!(purchase_columns(&orders, &changed).qty, [1.0]);
        let mut refunded = order("3", "1.00");
        refunded.status = Status::Refunded;
        let all: HashSet<String> = ["web:3".to_string()].into();
        assert_eq!(purchase_columns(&[refunded], &all).kind, ["purchase", "return"]);
        assert_eq!(item_columns(&orders).price, ["1.00"]);
        let mut two = order("4", "1.00");
        two.lines.insert(0, two.lines[0].clone());
        two.lines[0].item_id = "Z".into();
        assert_eq!(item_columns(&[two]).item_id, ["A", "Z"], "sorted, so concurrent batches lock in one order");
        assert_eq!(customer_columns(&orders).0, ["c1"]);
    }
}
