//! Ingestion under concurrency and against bad input, on a real server.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fixture, fresh_db, shopify_order, still_waiting};
use std::thread;

#[test]
fn concurrent_replays_of_the_same_orders_store_each_once() {
    let dsn = fresh_db("it_concurrent_replays");
    let batch: Vec<serde_json::Value> = (0..200).map(|i| shopify_order(i, 3)).collect();
    let batch = serde_json::Value::Array(batch).to_string();
    // 8 clients send the same 200 orders at once, each twice, in different orders
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let dsn = dsn.clone();
            let mut payloads: Vec<serde_json::Value> = serde_json::from_str(&batch).unwrap();
            if t % 2 == 1 {
                payloads.reverse();
            }
            let body = serde_json::Value::Array(payloads).to_string();
            thread::spawn(move || {
                let mut c = connect(&dsn);
                let mut inserted = 0i64;
                for _ in 0..2 {
                    let row = c.query_one("SELECT inserted, failed FROM reco.ingest_orders('shopify', $1::text::jsonb)", &[&body]).unwrap();
                    inserted += row.get::<_, i64>(0);
                    assert_eq!(row.get::<_, i64>(1), 0);
                }
                inserted
            })
        })
        .collect();
    let inserted: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut c = connect(&dsn);
    let count = |c: &mut postgres::Client, sql: &str| c.query_one(sql, &[]).unwrap().get::<_, i64>(0);
    assert_eq!(inserted, 200, "each order is inserted by exactly one client");
    assert_eq!(count(&mut c, "SELECT count(*) FROM reco.orders"), 200);
    assert_eq!(count(&mut c, "SELECT count(*) FROM reco.order_lines"), 600);
    assert_eq!(count(&mut c, "SELECT count(*) FROM reco.events WHERE kind = 'purchase'"), 600);
}

#[test]
fn concurrent_single_ingests_and_updates_do_not_deadlock_or_duplicate() {
    let dsn = fresh_db("it_concurrent_single");
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let dsn = dsn.clone();
            thread::spawn(move || {
                let mut c = connect(&dsn);
                for i in 0..60u64 {
                    let mut o = shopify_order(i, 2);
                    // half the clients send an update (a status change) for the same orders
                    if t % 2 == 1 {
                        o["fulfillment_status"] = serde_json::json!("fulfilled");
                    }
                    let id: String = c.query_one("SELECT reco.ingest_order('shopify', $1::text::jsonb)", &[&o.to_string()]).unwrap().get(0);
                    assert_eq!(id, format!("shopify:{}", 1_000_000 + i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = connect(&dsn);
    let n: i64 = c.query_one("SELECT count(*) FROM reco.orders", &[]).unwrap().get(0);
    let lines: i64 = c.query_one("SELECT count(*) FROM reco.order_lines", &[]).unwrap().get(0);
    let purchases: i64 = c.query_one("SELECT count(*) FROM reco.events WHERE kind = 'purchase'", &[]).unwrap().get(0);
    assert_eq!((n, lines, purchases), (60, 120, 120));
}

#[test]
fn bad_input_never_kills_the_backend() {
    let dsn = fresh_db("it_bad_input");
    let mut c = connect(&dsn);
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let big = "x".repeat(5 << 20);
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let cases: Vec<(String, &str)> = vec![
        (r#"{"id": 1}"#.to_string(), "22023"),
        ("[1,2,3]".to_string(), "22023"),
        (deep, "54000"),
        (serde_json::json!({"id": 1, "customer_id": big, "created_ms": 1, "currency": "USD", "cart": {"items": []}}).to_string(), "22023"),
        (serde_json::json!({"id": 1, "customer_id": "c", "created_ms": "soon", "currency": "USD"}).to_string(), "22007"),
        (
            serde_json::json!({"id": 1, "customer_id": "c", "created_ms": 1, "currency": "USD",
            "cart": {"items": [{"sku": "A", "quantity": 1, "unit_price": "1e400"}]}})
            .to_string(),
            "22003",
        ),
    ];
    for (payload, state) in cases {
        let err = c.query_one("SELECT reco.ingest_order('web', $1::text::jsonb)", &[&payload]).unwrap_err();
        let db = err.as_db_error().expect("a database error, not a lost connection");
        assert_eq!(db.code().code(), state, "{}", db.message());
        assert!(db.message().starts_with("web order") || db.message().contains("payload"), "{}", db.message());
    }
    // same backend, still serving, and nothing was written
    let pid2: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_eq!(pid, pid2);
    let n: i64 = c.query_one("SELECT count(*) FROM reco.orders", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    // the web fixture still goes in after all that
    let id: String = c.query_one("SELECT reco.ingest_order('web', $1::text::jsonb)", &[&fixture("web").to_string()]).unwrap().get(0);
    assert_eq!(id, "web:W-10001");
}

#[test]
fn a_batch_with_bad_rows_loses_nothing() {
    let dsn = fresh_db("it_dead_letters");
    let mut c = connect(&dsn);
    let mut payloads: Vec<serde_json::Value> = (0..500).map(|i| shopify_order(i, 2)).collect();
    for i in (0..500).step_by(50) {
        payloads[i]["line_items"][0]["price"] = serde_json::json!("1.999"); // 10 bad ones
    }
    let body = serde_json::Value::Array(payloads).to_string();
    let row = c.query_one("SELECT received, inserted, failed FROM reco.ingest_orders('shopify', $1::text::jsonb)", &[&body]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (500, 490, 10));
    let dead: i64 = c.query_one("SELECT count(*) FROM reco.ingest_errors WHERE json_path = '$.line_items[0].price' AND payload ? 'id'", &[]).unwrap().get(0);
    assert_eq!(dead, 10);
}

#[test]
fn concurrent_batches_creating_the_same_new_items_do_not_deadlock() {
    let dsn = fresh_db("it_item_lock_order");
    // at each step all clients create the same 60 new SKUs, half of them in reverse order
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let dsn = dsn.clone();
            thread::spawn(move || {
                let mut c = connect(&dsn);
                for b in 0..25u64 {
                    let mut batch: Vec<serde_json::Value> = (0..20).map(|j| shopify_order(t * 10_000 + b * 20 + j, 3)).collect();
                    for (j, o) in batch.iter_mut().enumerate() {
                        for (k, l) in o["line_items"].as_array_mut().unwrap().iter_mut().enumerate() {
                            let idx = (j * 3 + k) as u64;
                            let idx = if t % 2 == 0 { idx } else { 59 - idx };
                            l["sku"] = serde_json::json!(format!("NEW-{b}-{idx}"));
                        }
                    }
                    let body = serde_json::Value::Array(batch).to_string();
                    c.query_one("SELECT inserted FROM reco.ingest_orders('shopify', $1::text::jsonb)", &[&body])
                        .unwrap_or_else(|e| panic!("client {t} batch {b}: {e:?}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = connect(&dsn);
    let n: i64 = c.query_one("SELECT count(*) FROM reco.orders", &[]).unwrap().get(0);
    let items: i64 = c.query_one("SELECT count(*) FROM reco.items WHERE item_id LIKE 'NEW-%'", &[]).unwrap().get(0);
    assert_eq!((n, items), (2000, 1500));
}

#[test]
fn deleting_an_item_waits_for_order_lines_being_written_and_then_refuses() {
    let dsn = fresh_db("it_item_delete_race");
    let mut writer = connect(&dsn);
    let sku = "RACE-SKU".to_string();
    writer.execute("INSERT INTO reco.items (item_id, title) VALUES ($1, 'in the catalogue, never sold yet')", &[&sku]).unwrap();
    let mut order = shopify_order(1, 3);
    order["line_items"][0]["sku"] = serde_json::json!(sku);
    let body = order.to_string();
    writer.batch_execute("BEGIN").unwrap();
    writer.query_one("SELECT reco.ingest_order('shopify', $1::text::jsonb)", &[&body]).unwrap();
    // the writer's lines are not committed yet: the delete must wait for them, not miss them
    let deleter = {
        let dsn = dsn.clone();
        let sku = sku.clone();
        thread::spawn(move || {
            let mut c = connect(&dsn);
            c.execute("DELETE FROM reco.items WHERE item_id = $1", &[&sku])
        })
    };
    thread::sleep(std::time::Duration::from_millis(500));
    assert!(!deleter.is_finished(), "the delete did not wait for the uncommitted order lines");
    writer.batch_execute("COMMIT").unwrap();
    let err = deleter.join().unwrap().expect_err("deleting an item that order lines name must fail");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "23503", "{db:?}");
    assert!(db.message().contains(&sku), "{}", db.message());
    let n: i64 = writer.query_one("SELECT count(*) FROM reco.items WHERE item_id = $1", &[&sku]).unwrap().get(0);
    assert_eq!(n, 1);
}

#[test]
fn forget_waits_for_an_ingest_in_flight_and_deletes_what_it_wrote() {
    let dsn = fresh_db("it_forget_after_ingest");
    let mut writer = connect(&dsn);
    writer.batch_execute("BEGIN; SELECT reco.record_event('cz', 'A1', 'view'); SELECT reco.record_event('cz', 'A2', 'cart_add');").unwrap();
    let d = dsn.clone();
    let forget = thread::spawn(move || connect(&d).query_one("SELECT reco.forget_customer('cz')::text", &[]).map(|r| r.get::<_, String>(0)));
    assert!(still_waiting(&forget, 300), "forget waits for the transaction that holds the customer");
    writer.batch_execute("COMMIT").unwrap();
    let removed = forget.join().unwrap().unwrap();
    assert!(removed.contains("\"events\": 2"), "{removed}");
    let mut c = connect(&dsn);
    let n: i64 = c
        .query_one("SELECT (SELECT count(*) FROM reco.events WHERE customer_id = 'cz') + (SELECT count(*) FROM reco.customers WHERE customer_id = 'cz')", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no orphan event, no customer row");
}

#[test]
fn an_ingest_during_a_forget_waits_and_stores_nothing_for_the_customer() {
    let dsn = fresh_db("it_ingest_during_forget");
    let mut c = connect(&dsn);
    c.batch_execute("SELECT reco.record_event('cy', 'A1', 'view')").unwrap();
    c.batch_execute("BEGIN; SELECT reco.forget_customer('cy');").unwrap();
    let d = dsn.clone();
    let late = thread::spawn(move || {
        let mut w = connect(&d);
        let id: Option<i64> = w.query_one("SELECT reco.record_event('cy', 'A2', 'view')", &[]).unwrap().get(0);
        let batch =
            w.query_one("SELECT forgotten FROM reco.ingest_events('web', '[{\"event\": \"view\", \"user_id\": \"cy\", \"sku\": \"A3\"}]')", &[]).unwrap();
        (id, batch.get::<_, i64>(0))
    });
    assert!(still_waiting(&late, 300), "the ingest waits for the forget");
    c.batch_execute("COMMIT").unwrap();
    let (id, forgotten) = late.join().unwrap();
    assert_eq!((id, forgotten), (None, 1), "the late events are not stored (record_event returns NULL)");
    let n: i64 = c
        .query_one("SELECT (SELECT count(*) FROM reco.events WHERE customer_id = 'cy') + (SELECT count(*) FROM reco.customers WHERE customer_id = 'cy')", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the customer is not created again");
}
