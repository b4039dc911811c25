//! Clickstream events: views (with dwell seconds), clicks, cart adds and removes, purchases,
//! ratings, returns, impressions, email opens and clicks.
//!
//! Every channel's event payload is read with the same vocabulary: field names as the common
//! analytics formats spell them (`event`/`type`/`name`, `user_id`/`customerId`, `sku`/`item_id`,
//! `timestamp`/`ts`, GA4's `items[0].item_id`, Shopify web pixels' `data.productVariant.sku`).
use crate::error::{show, Error, ErrorKind, Result};
use crate::json::Node;
use crate::standardize::time::{self, EpochUnit};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    View,
    Click,
    CartAdd,
    CartRemove,
    Purchase,
    Rating,
    Return,
    Impression,
    EmailOpen,
    EmailClick,
    EmailDelivered,
    EmailBounce,
    Unsubscribe,
}

pub const KINDS: [Kind; 13] = [
    Kind::View,
    Kind::Click,
    Kind::CartAdd,
    Kind::CartRemove,
    Kind::Purchase,
    Kind::Rating,
    Kind::Return,
    Kind::Impression,
    Kind::EmailOpen,
    Kind::EmailClick,
    Kind::EmailDelivered,
    Kind::EmailBounce,
    Kind::Unsubscribe,
];

/// Largest serialized `context` kept with an event.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Click => "click",
            Kind::CartAdd => "cart_add",
            Kind::CartRemove => "cart_remove",
            Kind::Purchase => "purchase",
            Kind::Rating => "rating",
            Kind::Return => "return",
            Kind::Impression => "impression",
            Kind::EmailOpen => "email_open",
            Kind::EmailClick => "email_click",
            Kind::EmailDelivered => "email_delivered",
            Kind::EmailBounce => "email_bounce",
            Kind::Unsubscribe => "unsubscribe",
        }
    }

    pub fn parse(raw: &str) -> Result<Kind> {
        let k = raw.trim().to_ascii_lowercase().replace([' ', '-', ':'], "_");
        Ok(match k.as_str() {
            "view" | "product_view" | "product_viewed" | "view_item" | "detail" | "pdp_view" | "item_view" => Kind::View,
            "click" | "select_item" | "product_click" | "product_clicked" | "item_click" => Kind::Click,
            "cart_add" | "add_to_cart" | "added_to_cart" | "product_added_to_cart" | "addtocart" => Kind::CartAdd,
            "cart_remove" | "remove_from_cart" | "removed_from_cart" | "product_removed_from_cart" => Kind::CartRemove,
            "purchase" | "order" | "checkout_completed" | "transaction" => Kind::Purchase,
            "rating" | "rate" | "review" => Kind::Rating,
            "return" | "returned" | "refund" => Kind::Return,
            "impression" | "view_item_list" | "product_impression" | "rec_impression" => Kind::Impression,
            "email_open" | "email_opened" | "open" => Kind::EmailOpen,
            "email_click" | "email_clicked" => Kind::EmailClick,
            "email_delivered" | "delivered" | "delivery" => Kind::EmailDelivered,
            "email_bounce" | "email_bounced" | "bounce" | "bounced" => Kind::EmailBounce,
            "unsubscribe" | "unsubscribed" | "opt_out" => Kind::Unsubscribe,
            _ => {
                return Err(Error::invalid(format!("event kind {} is not known", show(raw))).hint(format!(
                    "event kinds: {} (synonyms such as add_to_cart, view_item, product_viewed are accepted)",
                    KINDS.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                )))
            }
        })
    }

    /// Kinds that are about one item and need its id.
    pub fn needs_item(self) -> bool {
        !matches!(self, Kind::Impression | Kind::EmailOpen | Kind::EmailClick | Kind::EmailDelivered | Kind::EmailBounce | Kind::Unsubscribe)
    }
}

/// Fields in jsonb's key order (see `Order`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: Kind,
    /// view: dwell seconds; cart_add / cart_remove / purchase / return: quantity; rating: 1-5.
    pub value: Option<f64>,
    pub device: Option<String>,
    pub channel: String,
    pub context: Map<String, Value>,
    pub item_id: Option<String>,
    pub session_id: Option<String>,
    pub customer_id: Option<String>,
    #[serde(serialize_with = "super::ser_ts")]
    pub occurred_at: DateTime<Utc>,
}

/// Device classes: desktop, mobile, tablet, kiosk, other.
pub fn device(raw: &str) -> String {
    let d = raw.trim().to_ascii_lowercase();
    let class = if ["ipad", "tablet"].iter().any(|k| d.contains(k)) {
        "tablet"
    } else if ["iphone", "android", "ios", "mobile", "phone", "app"].iter().any(|k| d.contains(k)) {
        "mobile"
    } else if ["kiosk", "pos", "store"].iter().any(|k| d.contains(k)) {
        "kiosk"
    } else if ["desktop", "pc", "mac", "windows", "linux", "web", "browser"].iter().any(|k| d.contains(k)) {
        "desktop"
    } else {
        "other"
    };
    class.to_string()
}

/// Checks an event's fields and fills the defaults: the rule set shared by `normalize_event`
/// and `record_event`.
pub fn check(mut e: Event, now: DateTime<Utc>) -> Result<Event> {
    crate::standardize::time::check_activity(&e.occurred_at, &now, "occurred_at")?;
    if e.customer_id.is_none() && e.session_id.is_none() {
        return Err(Error::invalid("event has neither a customer id nor a session id")
            .hint("anonymous events need a session_id so they can be joined to the customer later"));
    }
    if e.kind.needs_item() && e.item_id.is_none() {
        return Err(Error::invalid(format!("a {} event needs an item id", e.kind.as_str())).hint("send item_id (or sku, product_id, items[0].item_id)"));
    }
    if let Some(v) = e.value {
        if !v.is_finite() {
            return Err(Error::invalid(format!("event value {v} is not a finite number")).hint("send a number, or leave value out"));
        }
    }
    match e.kind {
        Kind::Rating => match e.value {
            Some(v) if (0.0..=5.0).contains(&v) => {}
            Some(v) => {
                return Err(Error::invalid(format!("rating {v} is outside 0 to 5"))
                    .hint("send ratings on a 1-5 scale, or give the scale (\"scale\": 10) in the payload"))
            }
            None => return Err(Error::invalid("a rating event needs a value").hint("send rating (or value) on a 1-5 scale")),
        },
        Kind::View if e.value.is_some_and(|v| v < 0.0) => {
            return Err(Error::invalid(format!("dwell time {} seconds is negative", e.value.unwrap_or_default()))
                .hint("dwell is the seconds spent on the item, 0 or more"));
        }
        Kind::CartAdd | Kind::CartRemove | Kind::Purchase | Kind::Return => match e.value {
            None => e.value = Some(1.0),
            Some(v) if v <= 0.0 => {
                return Err(Error::invalid(format!("quantity {v} of a {} event is not positive", e.kind.as_str()))
                    .hint("send a quantity of at least 1, or leave it out for 1"))
            }
            _ => {}
        },
        _ => {}
    }
    let size = serde_json::to_string(&e.context).map(|s| s.len()).unwrap_or(0);
    if size > MAX_CONTEXT_BYTES {
        return Err(Error::new(ErrorKind::LimitExceeded, format!("event context is {size} bytes, more than {MAX_CONTEXT_BYTES}"))
            .hint("keep ids and short labels in context, not documents"));
    }
    Ok(e)
}

/// Context keys copied from the top level of an event payload.
const CONTEXT_KEYS: [&str; 12] = ["rec_id", "position", "placement", "campaign", "email_id", "reason", "query", "order_id", "page", "list", "referrer", "cart"];

fn number(n: &Node) -> Result<Option<f64>> {
    match n.text()? {
        None => Ok(None),
        Some(t) => t.trim().parse::<f64>().map(Some).map_err(|_| n.err(ErrorKind::InvalidText, format!("{} is not a number", show(t)))),
    }
}

/// Normalizes one event payload of `channel`.
pub fn normalize_event(channel: &str, payload: &Value, now: DateTime<Utc>) -> Result<Event> {
    let channel = super::channel_name(channel)?;
    let r = Node::root(payload);
    let inner = || -> Result<Event> {
        r.as_object()?;
        let kind_node = r.get_any(&["kind", "event", "type", "event_type", "name", "eventName"]);
        let kind_text = kind_node.text()?.ok_or_else(|| kind_node.err(ErrorKind::InvalidParameter, "missing event kind"))?;
        let kind = Kind::parse(kind_text).map_err(|e| e.at(kind_node.path()))?;
        let data = r.get("data");
        let variant = data.get("productVariant");
        let cart_line = data.get("cartLine");
        let merch = cart_line.get("merchandise");
        let items = r.get("items");
        let first = items.index(0);
        let item_id = match r.get_any(&["item_id", "itemId", "sku", "product_id", "productId"]).id()? {
            Some(i) => Some(i),
            None => match first.get_any(&["item_id", "sku", "item_variant"]).id()? {
                Some(i) => Some(i),
                None => variant.get("sku").id()?.or(merch.get("sku").id()?),
            },
        };
        let customer = r.get("customer");
        let customer_id = match r.get_any(&["customer_id", "customerId", "user_id", "userId", "uid"]).id()? {
            Some(c) => Some(c),
            None => customer.get("id").id()?,
        };
        let session_id = r.get_any(&["session_id", "sessionId", "session", "clientId", "client_id"]).id()?;
        let ts = r.get_any(&["occurred_at", "timestamp", "ts", "time", "event_time", "eventTime", "created_at"]);
        let unit = if r.get("ts").is_null() { EpochUnit::Auto } else { EpochUnit::Millis };
        let occurred_at = match ts.text()? {
            Some(t) => time::parse(t, Tz::UTC, unit).map_err(|e| e.at(ts.path()))?,
            None => now,
        };
        let dev = r.get_any(&["device", "device_type", "deviceType", "platform"]);
        let device = match dev.value {
            Value::Object(_) => {
                let t = dev.get_any(&["type", "os", "platform"]);
                t.text()?.map(device)
            }
            _ => dev.text()?.map(device),
        };
        let value = match kind {
            Kind::View => match number(&r.get_any(&["dwell_seconds", "dwellSeconds", "dwell"]))? {
                Some(s) => Some(s),
                None => number(&r.get_any(&["dwell_ms", "dwellMs"]))?.map(|ms| ms / 1000.0),
            },
            Kind::Rating => {
                let v = number(&r.get_any(&["rating", "value", "stars", "score"]))?;
                let scale = number(&r.get("scale"))?.unwrap_or(5.0);
                if scale <= 0.0 || !scale.is_finite() {
                    return Err(r.get("scale").err(ErrorKind::InvalidParameter, format!("rating scale {scale} is not positive")));
                }
                v.map(|x| x * 5.0 / scale)
            }
            Kind::CartAdd | Kind::CartRemove | Kind::Purchase | Kind::Return => number(&r.get_any(&["quantity", "qty", "value"]))?,
            Kind::Impression => number(&r.get("position"))?,
            _ => number(&r.get("value"))?,
        };
        let mut context = match r.get("context").value {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => return Err(r.get("context").err(ErrorKind::InvalidParameter, "context must be a JSON object")),
        };
        for k in CONTEXT_KEYS {
            if let Some(v) = r.value.get(k) {
                if !v.is_null() {
                    context.insert(k.to_string(), v.clone());
                }
            }
        }
        if kind == Kind::Impression && !items.is_null() {
            // impressions of a list: keep the item ids shown
            let ids: Vec<Value> = items.elements()?.filter_map(|it| it.get_any(&["item_id", "sku"]).id().ok().flatten().map(Value::String)).collect();
            context.insert("items".into(), Value::Array(ids));
        }
        check(Event { customer_id, session_id, item_id, kind, value, channel: channel.clone(), device, occurred_at, context }, now)
    };
    inner().map_err(|e| e.context(format!("{channel} event")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        time::parse("2024-03-01T15:00:00Z", Tz::UTC, EpochUnit::Auto).unwrap()
    }

    #[test]
    fn web_view_with_dwell() {
        let e = normalize_event(
            "web",
            &json!({"event": "product_viewed", "user_id": "c1", "sku": "A1",
            "ts": 1709301900000i64, "dwell_ms": 12500, "device": "iPhone 15", "rec_id": "r9"}),
            now(),
        )
        .unwrap();
        assert_eq!(e.kind, Kind::View);
        assert_eq!(e.value, Some(12.5));
        assert_eq!(e.device.as_deref(), Some("mobile"));
        assert_eq!(time::format_utc(&e.occurred_at), "2024-03-01T14:05:00Z");
        assert_eq!(e.context["rec_id"], json!("r9"));
    }

    #[test]
    fn ga4_and_pixel_shapes() {
        let e = normalize_event(
            "web",
            &json!({"name": "add_to_cart", "client_id": "s1", "items": [{"item_id": "B2", "quantity": 2}],
            "timestamp": "2024-03-01T10:00:00Z"}),
            now(),
        )
        .unwrap();
        assert_eq!((e.kind, e.item_id.as_deref(), e.session_id.as_deref()), (Kind::CartAdd, Some("B2"), Some("s1")));
        assert_eq!(e.value, Some(1.0));
        let p = normalize_event(
            "shopify",
            &json!({"name": "product_viewed", "clientId": "x",
            "data": {"productVariant": {"sku": "C3"}}}),
            now(),
        )
        .unwrap();
        assert_eq!(p.item_id.as_deref(), Some("C3"));
        assert_eq!(p.occurred_at, now());
    }

    #[test]
    fn ratings_scale_and_bounds() {
        let r = normalize_event("mobile", &json!({"type": "rating", "userId": "u", "itemId": "I", "rating": 8, "scale": 10}), now()).unwrap();
        assert_eq!(r.value, Some(4.0));
        assert!(normalize_event("mobile", &json!({"type": "rating", "userId": "u", "itemId": "I", "rating": 7}), now()).is_err());
    }

    #[test]
    fn rejects() {
        let e = |p: Value| normalize_event("web", &p, now()).unwrap_err();
        assert!(e(json!({"event": "teleport", "user_id": "c"})).hint.unwrap().contains("cart_add"));
        assert!(e(json!({"event": "view", "sku": "A"})).message.contains("neither a customer"));
        assert!(e(json!({"event": "view", "user_id": "c"})).message.contains("needs an item"));
        assert_eq!(e(json!({"event": "view", "user_id": "c", "sku": "A", "ts": "yesterday"})).kind, ErrorKind::InvalidDatetime);
        assert_eq!(e(json!([1, 2])).kind, ErrorKind::InvalidParameter);
        assert!(e(json!({"event": "cart_add", "user_id": "c", "sku": "A", "qty": -1})).message.contains("not positive"));
        let ok = normalize_event("web", &json!({"event": "email_open", "user_id": "c", "campaign": "spring"}), now()).unwrap();
        assert_eq!(ok.context["campaign"], json!("spring"));
    }
}
