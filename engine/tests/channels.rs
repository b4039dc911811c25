//! Each built-in channel against a realistic payload, and the error cases of the issue.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::normalize::{self, mapping::Mapping, Status};
use reco_engine::ErrorKind;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn norm(channel: &str, p: &Value) -> normalize::Order {
    normalize::normalize_order(channel, p, None).unwrap_or_else(|e| panic!("{channel}: {e}"))
}

fn err(channel: &str, p: &Value) -> reco_engine::Error {
    normalize::normalize_order(channel, p, None).expect_err("should be rejected")
}

#[test]
fn shopify() {
    let o = norm("shopify", &fixture("shopify"));
    assert_eq!(o.order_id, "shopify:450789469");
    assert_eq!(o.customer_id, "207119551");
    assert_eq!(reco_engine::standardize::time::format_utc(&o.placed_at), "2008-01-10T16:00:00Z");
    assert_eq!(
        (o.currency.as_str(), o.total_minor, o.subtotal_minor, o.tax_minor, o.shipping_minor, o.discount_minor),
        ("USD", 60894, 59700, 1194, 1000, 1000)
    );
    assert_eq!(o.status, Status::Paid);
    assert_eq!(o.country.as_deref(), Some("US"));
    assert_eq!(o.email.as_deref(), Some("bob.norman@mail.example.com"));
    assert_eq!(o.lines.len(), 2);
    assert_eq!((o.lines[0].item_id.as_str(), o.lines[0].unit_price_minor, o.lines[0].color.as_deref()), ("IPOD2008GREEN", 19900, Some("green")));
    assert_eq!((o.lines[1].qty, o.lines[1].size.as_deref(), o.lines[1].color.as_deref()), (2, Some("M"), Some("navy")));
    assert_eq!(o.lines[1].line_no, 2);
    assert_eq!(o.delivery_speed.as_deref(), Some("express"));
}

#[test]
fn woocommerce() {
    let o = norm("woocommerce", &fixture("woocommerce"));
    assert_eq!((o.order_id.as_str(), o.customer_id.as_str(), o.currency.as_str()), ("woocommerce:727", "26", "EUR"));
    assert_eq!(reco_engine::standardize::time::format_utc(&o.placed_at), "2024-03-22T15:28:02Z");
    assert_eq!((o.total_minor, o.subtotal_minor, o.shipping_minor), (2935, 1800, 1000));
    assert_eq!(o.lines[0].unit_price_minor, 300);
    assert_eq!(o.lines[0].size.as_deref(), Some("S"));
    assert_eq!(o.lines[1].item_id, "23"); // empty sku falls back to the variation id
    assert_eq!(o.lines[1].color.as_deref(), Some("black"));
    assert_eq!(o.delivery_speed.as_deref(), Some("standard")); // flat_rate
    let mut guest = fixture("woocommerce");
    guest["customer_id"] = json!(0);
    assert!(err("woocommerce", &guest).message.contains("guest"));
}

#[test]
fn amazon_jpy_has_no_decimals() {
    let o = norm("amazon", &fixture("amazon"));
    assert_eq!((o.currency.as_str(), o.total_minor, o.shipping_minor), ("JPY", 4980, 1000));
    assert_eq!((o.lines[0].unit_price_minor, o.lines[0].qty), (1990, 2));
    assert_eq!((o.lines[0].size.as_deref(), o.lines[0].color.as_deref()), (Some("L"), Some("grey")));
    assert_eq!(o.delivery_speed.as_deref(), Some("express")); // Expedited
                                                              // the same order as getOrder + getOrderItems responses, wrapped
    let f = fixture("amazon");
    let mut order = f.clone();
    order.as_object_mut().unwrap().remove("OrderItems");
    let wrapped = json!({"order": {"payload": order}, "items": {"payload": {"AmazonOrderId": f["AmazonOrderId"], "OrderItems": f["OrderItems"]}}});
    assert_eq!(norm("amazon", &wrapped), o);
    let mut p = fixture("amazon");
    p["OrderItems"][0]["ItemPrice"]["Amount"] = json!("3980.5");
    let e = err("amazon", &p);
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.message.contains("has 1 decimal but JPY allows 0"), "{}", e.message);
    assert_eq!(e.path.as_deref(), Some("$.OrderItems[0].ItemPrice.Amount"));
}

#[test]
fn pos_local_time() {
    let o = norm("pos", &fixture("pos"));
    assert_eq!(o.external_id, "BER-01:R-000123");
    assert_eq!(reco_engine::standardize::time::format_utc(&o.placed_at), "2024-07-15T16:30:05Z"); // CEST
    assert_eq!((o.total_minor, o.discount_minor, o.status), (8497, 500, Status::Delivered));
    assert_eq!((o.lines[0].size.as_deref(), o.lines[0].color.as_deref()), (Some("EU42"), Some("black")));
    let mut p = fixture("pos");
    p["store"]["timezone"] = json!("Europe/Atlantis");
    assert_eq!(err("pos", &p).kind, ErrorKind::UndefinedObject);
}

#[test]
fn web_and_mobile() {
    let w = norm("web", &fixture("web"));
    assert_eq!(reco_engine::standardize::time::format_utc(&w.placed_at), "2024-03-01T14:05:00.123000Z");
    assert_eq!((w.total_minor, w.lines[1].unit_price_minor, w.lines[1].color.as_deref()), (88451, 1999, Some("grey")));
    assert_eq!(w.country.as_deref(), Some("US"));
    let m = norm("mobile", &fixture("mobile"));
    assert_eq!((m.currency.as_str(), m.total_minor, m.status), ("GBP", 6295, Status::Paid));
    assert_eq!((m.lines[0].size.as_deref(), m.lines[0].color.as_deref()), (Some("W32L34"), Some("navy")));
    assert_eq!((w.delivery_speed.as_deref(), m.delivery_speed.as_deref()), (Some("standard"), Some("same_day")));
    assert_eq!(normalize::delivery_speed("Local pickup"), Some("pickup"));
    assert_eq!(normalize::delivery_speed("NextDay"), Some("express"));
    assert_eq!(normalize::delivery_speed("carrier pigeon"), None);
}

#[test]
fn bad_input_names_channel_and_path() {
    let e = err("nosuch", &json!({}));
    assert_eq!(e.kind, ErrorKind::UndefinedObject);
    assert!(e.message.contains("nosuch") && e.hint.as_deref().unwrap().contains("shopify"));

    let mut p = fixture("shopify");
    p["customer"] = Value::Null;
    let e = err("shopify", &p);
    assert!(e.message.starts_with("shopify order: missing customer id"), "{}", e.message);
    assert_eq!(e.path.as_deref(), Some("$.customer.id"));

    let mut p = fixture("shopify");
    p["line_items"][1]["quantity"] = json!(-2);
    let e = err("shopify", &p);
    assert_eq!((e.kind, e.path.as_deref()), (ErrorKind::InvalidParameter, Some("$.line_items[1].quantity")));

    let mut p = fixture("shopify");
    p["total_price"] = json!("608.945");
    assert!(err("shopify", &p).message.contains("3 decimals but USD allows 2"));

    let mut p = fixture("shopify");
    p["created_at"] = json!("2008-02-30T11:00:00-05:00");
    p["processed_at"] = Value::Null;
    assert_eq!(err("shopify", &p).kind, ErrorKind::DatetimeOverflow);

    let mut p = fixture("shopify");
    p["line_items"] = json!({"not": "an array"});
    let e = err("shopify", &p);
    assert!(e.message.contains("expected a JSON array, found an object"));
    assert_eq!(e.path.as_deref(), Some("$.line_items"));

    let mut p = fixture("shopify");
    p["line_items"] = json!([]);
    assert!(err("shopify", &p).message.contains("no lines"));

    let mut p = fixture("shopify");
    p["currency"] = json!("DOLLARS");
    assert_eq!(err("shopify", &p).path.as_deref(), Some("$.currency"));

    assert!(err("web", &json!("just a string")).message.contains("expected a JSON object"));
    assert_eq!(err("Bad Channel!", &json!({})).kind, ErrorKind::InvalidParameter);
}

#[test]
fn big_payloads_are_fine_or_cleanly_refused() {
    // 5 MB of unrelated data: normalized, the note is ignored
    let mut p = fixture("web");
    p["note"] = json!("x".repeat(5 * 1024 * 1024));
    assert_eq!(norm("web", &p).lines.len(), 2);
    // an id of 1 MB is refused with its size, not echoed whole
    let mut p = fixture("web");
    p["customer_id"] = json!("c".repeat(1 << 20));
    let e = err("web", &p);
    assert!(e.message.len() < 300, "{}", e.message.len());
    // too many lines
    let mut p = fixture("web");
    let line = p["cart"]["items"][0].clone();
    p["cart"]["items"] = Value::Array(vec![line; normalize::MAX_LINES + 1]);
    assert_eq!(err("web", &p).kind, ErrorKind::LimitExceeded);
}

#[test]
fn custom_channel_from_mapping() {
    let m = Mapping::from_json(&json!({
        "external_id": {"path": "$.ref"}, "customer_id": {"path": "$.buyer.code", "transform": "upper"},
        "placed_at": {"path": "$.at", "transform": "epoch_s"}, "currency": {"value": "KWD"},
        "status": {"path": "$.state"}, "total": {"path": "$.sum", "transform": "minor"},
        "lines": {"path": "$.rows"}, "line.item_id": {"path": "$.code"}, "line.qty": {"path": "$.n"},
        "line.line_total": {"path": "$.amount"}, "line.size": {"path": "$.opts[0]"}
    }))
    .unwrap();
    let p = json!({"ref": 77, "buyer": {"code": "ab12"}, "at": 1709301900, "state": "shipped", "sum": 1500,
        "rows": [{"code": "K1", "n": 2, "amount": "1.500", "opts": ["XL"]}]});
    let o = normalize::normalize_order("marketplace_kw", &p, Some(&m)).unwrap();
    assert_eq!((o.order_id.as_str(), o.customer_id.as_str(), o.currency.as_str()), ("marketplace_kw:77", "AB12", "KWD"));
    assert_eq!((o.total_minor, o.lines[0].unit_price_minor, o.lines[0].size.as_deref(), o.status), (1500, 750, Some("XL"), Status::Shipped));
    let bad = json!({"ref": 77, "buyer": {"code": "ab12"}, "at": 1709301900, "rows": [{"code": "K1", "n": 2, "amount": "1.5005"}]});
    let e = normalize::normalize_order("marketplace_kw", &bad, Some(&m)).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("$.rows[0].amount"));
    assert!(e.message.starts_with("marketplace_kw order:"));
    // a partial mapping of an unknown channel says what is missing
    let partial = Mapping::from_json(&json!({"external_id": {"path": "$.ref"}})).unwrap();
    assert!(normalize::normalize_order("x", &p, Some(&partial)).unwrap_err().message.contains("has no customer_id"));
}

#[test]
fn mapping_overrides_a_builtin_field() {
    let m = Mapping::from_json(&json!({"customer_id": {"path": "$.email", "transform": "lower"},
        "line.item_id": {"path": "$.variant_id"}}))
    .unwrap();
    let o = normalize::normalize_order("shopify", &fixture("shopify"), Some(&m)).unwrap();
    assert_eq!(o.customer_id, "bob.norman@mail.example.com");
    assert_eq!(o.lines[0].item_id, "39072856");
    assert_eq!(o.total_minor, 60894); // the rest is the built-in result
}

#[test]
fn canonical_json_shape() {
    let j = serde_json::to_value(norm("pos", &fixture("pos"))).unwrap();
    assert_eq!(j["placed_at"], json!("2024-07-15T16:30:05Z"));
    assert_eq!(j["status"], json!("delivered"));
    assert_eq!(j["lines"][0]["size"], json!("EU42"));
    assert!(j["lines"][1]["size"].is_null());
}
