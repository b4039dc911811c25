//! reco.load_demo: a realistic OMS with planted structure (engine/src/demo.rs), loaded through
//! the same normalization and ingestion as real orders.
use crate::error::{internal, raise, OrRaise};
use crate::jsonb::JsonbText;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::demo;
use reco_engine::normalize::{self, batch, event};
use reco_engine::standardize::{money, time};
use reco_engine::{Error, ErrorKind};

/// Customers generated and written per step, to bound memory at every scale.
const CHUNK: usize = 10_000;

/// Loads demo data: `small` (1k customers, ~600 items, ~3k orders, ~20k events), `medium`
/// (100k customers), `large` (1M). Deterministic for a seed; timestamps end at the
/// transaction's start. Item, customer and order ids start with `demo-`. Refuses to load twice.
/// Returns counts per table.
#[pg_extern(volatile)]
fn load_demo(scale: default!(&str, "'small'"), seed: default!(i32, 42)) -> JsonbText {
    let sc = demo::scale(scale).map_err(|e| e.at("scale")).or_raise();
    // the estimate's line is for a progress NOTICE; load_demo reports its counts instead
    let _ = crate::api::budget::check(&format!("reco.load_demo('{scale}')"), &reco_engine::models::budget::demo(sc.products, sc.customers, CHUNK));
    let loaded: Option<bool> = Spi::get_one("SELECT EXISTS (SELECT 1 FROM reco.items WHERE item_id LIKE 'demo-%')").or_raise();
    if loaded == Some(true) {
        raise(
            Error::new(ErrorKind::NotInPrerequisiteState, "demo data is already loaded")
                .hint("load it into a fresh database, or delete the rows whose ids start with demo- first"),
        );
    }
    let started = std::time::Instant::now();
    let end_ms = super::transaction_start().timestamp_millis();
    let seed = seed as u64;
    let items = demo::catalog(sc, seed);
    Spi::connect_mut(|c| {
        crate::plans::update(
            c,
            "INSERT INTO reco.items (item_id, group_id, title, category, brand, price, currency, attributes)
             SELECT i, g, t, cat, b, p::numeric, 'EUR', a::jsonb
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                  AS u(i, g, t, cat, b, p, a)",
            &[
                DatumWithOid::from(items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.group_id.clone()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.title.clone()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.category.to_string()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.brand.to_string()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| money::format_minor(i.price_minor, 2)).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| serde_json::json!({"size": i.size, "color": i.color}).to_string()).collect::<Vec<_>>()),
            ],
        )
        .or_raise();
        // consumables are bought again: recommend them again too
        crate::plans::update(
            c,
            "INSERT INTO reco.category_settings (category, repeatable) SELECT unnest($1::text[]), true
             ON CONFLICT (category) DO UPDATE SET repeatable = true, updated_at = now()",
            &[DatumWithOid::from(demo::REPEATABLE.to_vec())],
        )
        .or_raise();
        crate::plans::update(
            c,
            "INSERT INTO reco.stock (item_id, available, backordered)
             SELECT * FROM unnest($1::text[], $2::int[], $3::bool[])",
            &[
                DatumWithOid::from(items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.available).collect::<Vec<_>>()),
                DatumWithOid::from(items.iter().map(|i| i.backordered).collect::<Vec<_>>()),
            ],
        )
        .or_raise();
    });
    // A second thread generates and normalizes the next chunk (pure engine code, no PostgreSQL
    // calls) while this one writes the current chunk, so the two cores both work.
    let (mut n_customers, mut n_orders, mut n_lines, mut n_events) = (0i64, 0i64, 0i64, 0i64);
    let chunks: Vec<std::ops::Range<usize>> = (0..sc.customers).step_by(CHUNK).map(|lo| lo..(lo + CHUNK).min(sc.customers)).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<reco_engine::Result<Chunk>>(1);
        let items = &items;
        let ranges = chunks.clone();
        scope.spawn(move || {
            for range in ranges {
                // the receiver is gone when the writer stopped (an error): stop too
                if tx.send(prepare(sc, seed, end_ms, items, range)).is_err() {
                    return;
                }
            }
        });
        for range in chunks {
            // a cancel or statement_timeout stops the load between chunks (dropping the
            // receiver then stops the generator thread too)
            pg_sys::check_for_interrupts!();
            // recv fails only if the generator thread panicked (a bug): report it as one
            let mut chunk = rx.recv().unwrap_or_else(|_| internal("pg_reco: the demo generator thread stopped".into())).or_raise();
            n_lines += chunk.lines;
            Spi::connect_mut(|c| {
                crate::plans::update(
                    c,
                    "INSERT INTO reco.customers (customer_id, attributes)
                     SELECT id, jsonb_build_object('segment', seg) FROM unnest($1::text[], $2::text[]) AS u(id, seg)",
                    &[
                        DatumWithOid::from(chunk.customers.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()),
                        DatumWithOid::from(chunk.customers.iter().map(|(_, s)| s.to_string()).collect::<Vec<_>>()),
                    ],
                )
                .or_raise();
                n_orders += super::ingest::write_orders(c, &mut chunk.orders).inserted;
                n_events += super::events::append_events(c, &chunk.events) as i64;
            });
            n_customers += range.len() as i64;
            if sc.customers > CHUNK {
                pgrx::notice!("load_demo: {} of {} customers", range.end, sc.customers);
            }
        }
    });
    JsonbText(
        serde_json::json!({
            "customers": n_customers, "items": items.len(), "orders": n_orders, "order_lines": n_lines,
            "events": n_events, "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0
        })
        .to_string(),
    )
}

/// One chunk of customers, ready to write.
struct Chunk {
    customers: Vec<(String, &'static str)>,
    orders: Vec<normalize::Order>,
    lines: i64,
    events: Vec<event::Event>,
}

/// Generates the customers of `range` with their orders (normalized as the `web` channel's
/// payloads) and clickstream. Pure engine code: safe off the backend's main thread.
fn prepare(sc: demo::Scale, seed: u64, end_ms: i64, items: &[demo::Item], range: std::ops::Range<usize>) -> reco_engine::Result<Chunk> {
    let d = demo::customers(sc, seed, end_ms, items, range);
    let orders: Vec<normalize::Order> = d.orders.iter().map(|o| normalize::normalize_order("web", o, None)).collect::<reco_engine::Result<_>>()?;
    let lines = orders.iter().map(|o| o.lines.len() as i64).sum::<i64>();
    let (orders, _) = batch::dedupe_last(orders);
    let events = d
        .events
        .iter()
        .map(|e| event::Event {
            kind: event::Kind::parse(e.kind).unwrap_or(event::Kind::View),
            value: e.value,
            device: None,
            channel: "web".into(),
            context: e.reason.map(|r| serde_json::Map::from_iter([("reason".to_string(), serde_json::json!(r))])).unwrap_or_default(),
            item_id: Some(e.item_id.clone()),
            session_id: Some(e.session_id.clone()),
            customer_id: Some(e.customer_id.clone()),
            occurred_at: time::from_epoch_millis(e.at_ms).unwrap_or_default(),
        })
        .collect();
    Ok(Chunk { customers: d.customers, orders, lines, events })
}
