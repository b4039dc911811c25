//! Property test: random JSON (and random mutations of real payloads) never panics the
//! normalizers; each input gives an order or a typed error.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reco_engine::normalize::{self, event};
use serde_json::{json, Map, Value};

const KEYS: [&str; 24] = [
    "id",
    "customer",
    "customer_id",
    "line_items",
    "quantity",
    "price",
    "currency",
    "created_at",
    "sku",
    "lines",
    "qty",
    "cart",
    "items",
    "store",
    "timezone",
    "local_time",
    "OrderItems",
    "ItemPrice",
    "Amount",
    "event",
    "user_id",
    "ts",
    "totals",
    "variant_title",
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 4 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random_range(-1_000_000_000_000i64..1_000_000_000_000_000)),
        3 => serde_json::from_str(&format!("{}.{}", rng.random_range(-999..99999), rng.random_range(0..99999))).unwrap(),
        4 => {
            let pool = [
                "",
                "USD",
                "JPY",
                "KWD",
                "2024-02-30",
                "2024-03-01T10:00:00Z",
                "EU 42",
                "navy",
                "-1",
                "1e999",
                "Europe/Berlin",
                "\u{202e}",
                "0.001",
                "99999999999999999999",
                "XL",
                " ",
                "ÿ",
            ];
            Value::String(pool[rng.random_range(0..pool.len())].to_string())
        }
        5 => Value::String((0..rng.random_range(0..20)).map(|_| rng.random::<char>()).collect()),
        6 => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..6) {
                m.insert(KEYS[rng.random_range(0..KEYS.len())].to_string(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn mutate(rng: &mut StdRng, v: &mut Value) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.random_range(0..keys.len())];
            if rng.random_bool(0.5) {
                m.insert(k.clone(), random_value(rng, 3));
            } else if let Some(child) = m.get_mut(k) {
                mutate(rng, child);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.random_range(0..a.len());
            mutate(rng, &mut a[i]);
        }
        _ => *v = random_value(rng, 3),
    }
}

#[test]
fn random_json_never_panics() {
    let mut rng = StdRng::seed_from_u64(7);
    let now = chrono::Utc::now();
    let fixtures: Vec<(String, Value)> = ["shopify", "woocommerce", "amazon", "pos", "web", "mobile"]
        .iter()
        .map(|c| {
            let t = std::fs::read_to_string(format!("{}/tests/fixtures/{c}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
            (c.to_string(), serde_json::from_str(&t).unwrap())
        })
        .collect();
    let mut ok = 0;
    for i in 0..20_000 {
        let (channel, base) = &fixtures[i % fixtures.len()];
        let payload = if i % 3 == 0 {
            random_value(&mut rng, 0)
        } else {
            let mut p = base.clone();
            for _ in 0..rng.random_range(1..4) {
                mutate(&mut rng, &mut p);
            }
            p
        };
        match normalize::normalize_order(channel, &payload, None) {
            Ok(o) => {
                ok += 1;
                assert!(!o.lines.is_empty() && o.lines.iter().all(|l| l.qty > 0 && l.unit_price_minor >= 0));
            }
            Err(e) => assert!(!e.message.is_empty() && e.sqlstate().len() == 5),
        }
        let _ = event::normalize_event(channel, &payload, now);
    }
    // the mutations leave a fair share of payloads valid, so both paths are exercised
    assert!(ok > 1000, "only {ok} valid payloads");
}

#[test]
fn deep_nesting_is_refused_by_the_parser() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let e = reco_engine::json::parse(&deep).unwrap_err();
    assert_eq!(e.kind, reco_engine::ErrorKind::LimitExceeded);
    assert!(reco_engine::json::parse("{\"a\": ").is_err());
}
