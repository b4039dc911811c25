//! Channel payloads to the canonical order and event model.
//!
//! Built-in channels (`shopify`, `woocommerce`, `amazon`, `pos`, `web`, `mobile`) are code in
//! `channels.rs`; any other channel, and per-field overrides of a built-in one, come from a
//! mapping (`mapping.rs`), which the extension reads from `reco.channel_mappings`.
pub mod batch;
pub mod channels;
pub mod event;
pub mod mapping;

use crate::error::{show, Error, ErrorKind, Result};
use crate::json::Node;
use crate::standardize::{color, money, size, time};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Most lines one order may carry.
pub const MAX_LINES: usize = 10_000;
/// Largest quantity on one line.
pub const MAX_QTY: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

pub const STATUS_HINT: &str = "accepted statuses: pending, paid, shipped, delivered, cancelled, refunded \
(and synonyms such as processing, completed, fulfilled, canceled, voided, returned)";

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    /// The generic status vocabulary shared by own storefronts and mapped channels.
    pub fn parse(raw: &str) -> Result<Status> {
        let s = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Ok(match s.as_str() {
            "pending" | "created" | "new" | "open" | "authorized" | "on_hold" | "awaiting_payment" | "draft" => Status::Pending,
            "paid" | "processing" | "confirmed" | "unshipped" | "partially_paid" | "placed" => Status::Paid,
            "shipped" | "fulfilled" | "in_transit" | "partially_shipped" | "dispatched" | "completed" | "complete" => Status::Shipped,
            "delivered" | "picked_up" | "collected" => Status::Delivered,
            "cancelled" | "canceled" | "voided" | "void" | "failed" | "rejected" | "declined" => Status::Cancelled,
            "refunded" | "returned" | "partially_refunded" => Status::Refunded,
            _ => return Err(Error::invalid(format!("order status {} is not recognized", show(raw))).hint(STATUS_HINT)),
        })
    }
}

// Fields are declared in jsonb's key order (shorter keys first, then bytewise), so jsonb_in
// finds each object already sorted and its sort is linear. The order is invisible in SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub qty: i32,
    pub size: Option<String>,
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub item_id: String,
    pub line_no: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub discount_minor: i64,
    pub unit_price_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub email: Option<String>,
    pub lines: Vec<Line>,
    pub status: Status,
    pub channel: String,
    pub country: Option<String>,
    pub currency: String,
    pub order_id: String,
    #[serde(serialize_with = "ser_ts")]
    pub placed_at: DateTime<Utc>,
    pub tax_minor: i64,
    pub customer_id: String,
    pub external_id: String,
    pub total_minor: i64,
    /// standard, express, same_day or pickup, when the channel says how the order ships
    pub delivery_speed: Option<String>,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub subtotal_minor: i64,
}

pub fn ser_ts<S: Serializer>(d: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&time::format_utc(d))
}

impl Order {
    /// Whether the order counts as a purchase (emits `purchase` events).
    pub fn is_purchase(&self) -> bool {
        self.status != Status::Cancelled
    }
}

/// The channels normalized by code.
pub const BUILTIN_CHANNELS: [&str; 6] = ["shopify", "woocommerce", "amazon", "pos", "web", "mobile"];

/// Checks a channel name: lower-case letters, digits and `_`, 1 to 63 characters.
pub fn channel_name(raw: &str) -> Result<String> {
    let c = raw.trim();
    let ok = !c.is_empty() && c.len() <= 63 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(c.to_string())
    } else {
        Err(Error::invalid(format!("channel name {} is not valid", show(raw))).hint("channel names are 1 to 63 lower-case letters, digits or underscores"))
    }
}

/// Normalizes an order of a built-in channel, then applies `overrides` (a mapping, possibly
/// empty). A channel that is not built in needs a complete mapping.
pub fn normalize_order(channel: &str, payload: &Value, overrides: Option<&mapping::Mapping>) -> Result<Order> {
    let channel = channel_name(channel)?;
    let root = Node::root(payload);
    root.as_object().map_err(|e| e.context(format!("{channel} order")))?;
    let builtin = channels::builtin(&channel, &root);
    let result = match (builtin, overrides) {
        (Some(base), Some(m)) if !m.is_empty() => base.and_then(|o| m.apply(&channel, &root, Some(o))),
        (Some(base), _) => base,
        (None, Some(m)) if !m.is_empty() => m.apply(&channel, &root, None),
        (None, _) => Err(Error::new(ErrorKind::UndefinedObject, format!("channel {} is not known", show(&channel)))
            .hint(format!("built-in channels are {}; add a channel with rows in reco.channel_mappings", BUILTIN_CHANNELS.join(", ")))),
    };
    result.and_then(finish).map_err(|e| e.context(format!("{channel} order")))
}

// ---- helpers shared by channels and mappings ----------------------------------------------

/// Amount in major units (decimal text or JSON number) → minor units.
pub(crate) fn amount(n: &Node, cur: &money::Currency) -> Result<Option<i64>> {
    match n.value {
        Value::Object(_) => {
            // {"amount": "1.00", "currency_code": "USD"} (Shopify *_set, Amazon Money)
            let a = n.get_any(&["amount", "Amount"]);
            let code = n.get_any(&["currency_code", "CurrencyCode", "currency"]);
            if let Some(c) = code.text()? {
                if !c.trim().eq_ignore_ascii_case(&cur.code) {
                    return Err(code
                        .err(ErrorKind::InvalidParameter, format!("amount is in {} but the order is in {}", show(c), cur.code))
                        .hint("one order carries one currency"));
                }
            }
            amount(&a, cur)
        }
        _ => match n.text()? {
            None => Ok(None),
            Some(t) if t.trim().is_empty() => Ok(None),
            Some(t) => money::parse_minor(t, cur).map(Some).map_err(|e| e.at(n.path())),
        },
    }
}

/// Amount already in minor units (an integer such as cents).
pub(crate) fn minor_units(n: &Node) -> Result<Option<i64>> {
    n.integer()
}

pub(crate) fn timestamp(n: &Node, zone: chrono_tz::Tz, unit: time::EpochUnit) -> Result<Option<DateTime<Utc>>> {
    match n.text()? {
        None => Ok(None),
        Some(t) => time::parse(t, zone, unit).map(Some).map_err(|e| e.at(n.path())),
    }
}

pub(crate) fn required<T>(v: Option<T>, n: &Node, what: &str) -> Result<T> {
    v.ok_or_else(|| n.err(ErrorKind::InvalidParameter, format!("missing {what}")).hint(crate::json::MISSING_HINT))
}

pub(crate) fn currency(n: &Node) -> Result<money::Currency> {
    let code = required(n.text()?, n, "currency")?;
    money::currency(code).map_err(|e| e.at(n.path()))
}

pub(crate) fn quantity(n: &Node) -> Result<i32> {
    let q = required(n.integer()?, n, "quantity")?;
    if q <= 0 {
        return Err(n
            .err(ErrorKind::InvalidParameter, format!("quantity {q} is not positive"))
            .hint("a line's quantity is a whole number of at least 1; send returns as return events"));
    }
    if q > MAX_QTY {
        return Err(n.err(ErrorKind::InvalidParameter, format!("quantity {q} is larger than {MAX_QTY}")));
    }
    Ok(q as i32)
}

pub(crate) fn country(n: &Node) -> Result<Option<String>> {
    match n.text()? {
        Some(t) if !t.trim().is_empty() => crate::standardize::geo::country(t).map(Some).map_err(|e| e.at(n.path())),
        _ => Ok(None),
    }
}

pub(crate) fn email(n: &Node) -> Result<Option<String>> {
    Ok(n.id()?.map(|e| e.to_lowercase()).filter(|e| e.contains('@')))
}

/// Size and color of a line from free-form option values: the first value that standardizes as
/// a size is the size, the first that standardizes as a color is the color. Values that are
/// neither are ignored (option values such as "Default Title" or "Cotton").
pub(crate) fn options<'s>(values: impl IntoIterator<Item = &'s str>) -> (Option<String>, Option<String>) {
    let (mut sz, mut col) = (None, None);
    for v in values {
        if sz.is_none() {
            if let Ok(s) = size::standardize(v, size::Family::Any) {
                sz = Some(s);
                continue;
            }
        }
        if col.is_none() {
            if let Ok(c) = color::standardize(v) {
                col = Some(c);
            }
        }
    }
    (sz, col)
}

/// A size written as a line attribute: standardized when recognized, otherwise dropped.
pub(crate) fn lenient_size(n: &Node) -> Result<Option<String>> {
    Ok(n.text()?.and_then(|t| size::standardize(t, size::Family::Any).ok()))
}

pub(crate) fn lenient_color(n: &Node) -> Result<Option<String>> {
    Ok(n.text()?.and_then(|t| color::standardize(t).ok()))
}

/// Checks and completes an order: lines present, totals filled in where the channel left them out.
fn finish(mut o: Order) -> Result<Order> {
    if o.lines.is_empty() {
        return Err(Error::invalid("order has no lines").hint("an order needs at least one line with an item and a quantity"));
    }
    if o.lines.len() > MAX_LINES {
        return Err(Error::new(ErrorKind::LimitExceeded, format!("order has {} lines, more than {MAX_LINES}", o.lines.len()))
            .hint("split the order, or send its lines as separate orders of the same external id prefix"));
    }
    for (i, l) in o.lines.iter_mut().enumerate() {
        l.line_no = i as i32 + 1;
        if l.unit_price_minor < 0 {
            return Err(Error::invalid(format!("line {} has a negative unit price {}", i + 1, l.unit_price_minor))
                .hint("discounts go in the discount fields, not in negative prices"));
        }
    }
    let overflow = || {
        Error::new(ErrorKind::OutOfRange, "order amounts overflow a 64-bit count of minor units")
            .hint("check the quantities and unit prices; amounts are counted in minor units (cents)")
    };
    if o.subtotal_minor == i64::MIN {
        let mut sum: i64 = 0;
        for l in &o.lines {
            sum = l.unit_price_minor.checked_mul(i64::from(l.qty)).and_then(|x| sum.checked_add(x)).ok_or_else(overflow)?;
        }
        o.subtotal_minor = sum;
    }
    if o.total_minor == i64::MIN {
        o.total_minor = o
            .subtotal_minor
            .checked_sub(o.discount_minor)
            .and_then(|x| x.checked_add(o.shipping_minor))
            .and_then(|x| x.checked_add(o.tax_minor))
            .ok_or_else(overflow)?;
    }
    Ok(o)
}

/// A fresh order with totals marked "not given" (filled in by `finish`).
pub(crate) fn blank(channel: &str, external_id: String, customer_id: String, placed_at: DateTime<Utc>, cur: &money::Currency) -> Order {
    Order {
        order_id: format!("{channel}:{external_id}"),
        channel: channel.to_string(),
        external_id,
        customer_id,
        placed_at,
        currency: cur.code.clone(),
        status: Status::Paid,
        subtotal_minor: i64::MIN,
        discount_minor: 0,
        shipping_minor: 0,
        tax_minor: 0,
        total_minor: i64::MIN,
        country: None,
        email: None,
        delivery_speed: None,
        lines: Vec::new(),
    }
}

/// A shipping method or service level in any channel's words → standard, express, same_day or
/// pickup; None when it says none of these (the order then has no delivery speed).
pub fn delivery_speed(raw: &str) -> Option<&'static str> {
    let s = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    let has = |k: &[&str]| k.iter().any(|w| s.contains(w));
    if has(&["same_day", "sameday"]) {
        Some("same_day")
    } else if has(&["pickup", "pick_up", "collect", "in_store"]) {
        Some("pickup")
    } else if has(&["express", "expedited", "next_day", "nextday", "overnight", "priority", "second_day", "2day", "two_day"]) {
        Some("express")
    } else if has(&["standard", "ground", "economy", "free", "flat_rate", "regular", "scheduled"]) {
        Some("standard")
    } else {
        None
    }
}

pub(crate) fn delivery(n: &Node) -> Result<Option<String>> {
    Ok(n.text()?.and_then(delivery_speed).map(str::to_string))
}
