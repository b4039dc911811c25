//! Random JSON through the SQL functions over a real connection: this exercises the jsonb
//! binary reader (PostgreSQL's JsonbIterator, via FFI) that the engine's property test cannot.
//! Every input must give a result or an SQL error with a data-exception, undefined-object or
//! limit SQLSTATE, and the backend must survive all of it.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fixture, fresh_db};
use serde_json::{json, Map, Value};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: [&str; 16] = [
    "id",
    "customer",
    "customer_id",
    "line_items",
    "quantity",
    "price",
    "currency",
    "created_at",
    "sku",
    "cart",
    "items",
    "created_ms",
    "unit_price",
    "total_price",
    "store",
    "event",
];

fn value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 4 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 0),
        2 => json!(r.next() as i64 / 1000),
        3 => serde_json::from_str(&format!("{}.{}", r.below(100_000), r.below(1_000_000))).unwrap(),
        4 => {
            let pool = [
                "",
                "USD",
                "JPY",
                "2024-02-30",
                "2024-03-01T10:00:00Z",
                "EU 42",
                "navy",
                "-1",
                "1e999",
                "\u{0}",
                "ü€𝄞",
                "99999999999999999999",
                "0.001",
                " ",
                "\"quoted\"",
                "\\",
            ];
            json!(pool[r.below(pool.len() as u64) as usize])
        }
        5 => Value::String((0..r.below(12)).map(|_| char::from_u32(r.below(0x2FFF) as u32 + 1).unwrap_or('x')).collect()),
        6 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(6) {
                m.insert(KEYS[r.below(KEYS.len() as u64) as usize].to_string(), value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn mutate(r: &mut Rng, v: &mut Value) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = keys[r.below(keys.len() as u64) as usize].clone();
            if r.below(2) == 0 {
                m.insert(k, value(r, 3));
            } else if let Some(c) = m.get_mut(&k) {
                mutate(r, c);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = r.below(a.len() as u64) as usize;
            mutate(r, &mut a[i]);
        }
        _ => *v = value(r, 3),
    }
}

fn acceptable(code: &str) -> bool {
    code.starts_with("22") || code == "42704" || code == "54000"
}

#[test]
fn random_payloads_through_sql_never_crash_the_backend() {
    let dsn = fresh_db("it_fuzz");
    let mut c = connect(&dsn);
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let channels = ["shopify", "woocommerce", "amazon", "pos", "web", "mobile"];
    let bases: Vec<Value> = channels.iter().map(|ch| fixture(ch)).collect();
    let (mut ok, mut errors) = (0, 0);
    let mut batch = Vec::new();
    for i in 0..3000 {
        let k = i % channels.len();
        let payload = if i % 3 == 0 {
            value(&mut r, 0)
        } else {
            let mut p = bases[k].clone();
            for _ in 0..=r.below(3) {
                mutate(&mut r, &mut p);
            }
            p
        };
        let text = payload.to_string();
        // jsonb itself refuses \u0000 (22P05) before pg_reco sees the document
        let mut castable = true;
        match c.query_one("SELECT reco.normalize_order($1, $2::text::jsonb)::text", &[&channels[k], &text]) {
            Ok(_) => ok += 1,
            Err(e) => {
                let db = e.as_db_error().unwrap_or_else(|| panic!("connection lost on input {i}: {text}"));
                assert!(acceptable(db.code().code()), "input {i}: {} {} for {text}", db.code().code(), db.message());
                castable = db.code().code() != "22P05";
                errors += 1;
            }
        }
        if let Err(e) = c.query_one("SELECT reco.normalize_event($1, $2::text::jsonb)::text", &[&channels[k], &text]) {
            let db = e.as_db_error().unwrap_or_else(|| panic!("connection lost on event input {i}: {text}"));
            assert!(acceptable(db.code().code()), "event input {i}: {} {}", db.code().code(), db.message());
        }
        if k == 0 && castable {
            batch.push(payload);
        }
    }
    // the shopify ones again as one batch: every payload is accounted for
    let body = Value::Array(batch).to_string();
    let row = c.query_one("SELECT received, inserted + updated + unchanged, failed FROM reco.ingest_orders('shopify', $1::text::jsonb)", &[&body]).unwrap();
    let (received, stored, failed): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(received, stored + failed);
    let dead: i64 = c.query_one("SELECT count(*) FROM reco.ingest_errors", &[]).unwrap().get(0);
    assert_eq!(dead, failed);
    let pid2: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(pid, pid2, "same backend throughout");
    assert!(ok > 300 && errors > 300, "both paths exercised: {ok} ok, {errors} errors");
}
