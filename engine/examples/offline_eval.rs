//! Offline evaluation of every model kind on generated demo data, without a server: the same
//! pipeline `reco.train` runs, on the same planted-structure data `reco.load_demo` loads.
//!
//!   cargo run --release -p reco-engine --example offline_eval -- [small|medium] [threads] [params-json]
// a command-line tool: bad arguments or a failed step stop it with the panic's message
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::demo;
use reco_engine::models::content::ItemFeatures;
use reco_engine::models::dataset::{contribution, Dataset, Event, Interner, DEFAULT_WEIGHTS, NONE};
use reco_engine::models::pipeline::{self, Kind, Params, TrainingItems};
use std::collections::HashMap;

use reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale = args.get(1).map(String::as_str).unwrap_or("small");
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let params: serde_json::Value = args.get(3).map(|s| serde_json::from_str(s).expect("params json")).unwrap_or(serde_json::json!({}));
    let p = Params::from_json(params.as_object().expect("an object")).expect("params");
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    let end_ms = 1_767_225_600_000; // 2026-01-01
    let t0 = std::time::Instant::now();
    let sc = demo::scale(scale).unwrap();
    let d = demo::generate(sc, 42, end_ms);
    let weights: HashMap<&str, f64> = DEFAULT_WEIGHTS.iter().map(|(k, w, _)| (*k, *w)).collect();
    let mut items = Interner::default();
    let mut cats = Interner::default();
    let mut catalog = TrainingItems::default();
    for it in &d.items {
        items.get_or_insert(&it.item_id);
        catalog.category.push(cats.get_or_insert(it.category));
        catalog.features.push(ItemFeatures {
            category: Some(it.category.into()),
            brand: Some(it.brand.into()),
            price: Some(it.price_minor as f64 / 100.0),
            title: Some(it.title.clone()),
            tags: vec![],
            color: it.color.map(Into::into),
            size: it.size.map(Into::into),
        });
    }
    let (mut users, mut sessions) = (Interner::default(), Interner::default());
    let mut ds = Dataset { n_items: items.len(), ..Default::default() };
    let us = |ms: i64| ms * 1000 - PG_EPOCH_UNIX_MICROS;
    for e in &d.events {
        let w = contribution(e.kind, e.value, weights[e.kind]);
        ds.events.push(Event {
            user: users.get_or_insert(&e.customer_id),
            item: items.get(&e.item_id).unwrap(),
            weight: w as f32,
            at: us(e.at_ms),
            basket: NONE,
            session: sessions.get_or_insert(&e.session_id),
        });
    }
    for (bi, o) in d.orders.iter().enumerate() {
        let user = users.get_or_insert(o["customer_id"].as_str().unwrap());
        let at = us(o["created_ms"].as_i64().unwrap());
        for l in o["cart"]["items"].as_array().unwrap() {
            ds.events.push(Event {
                user,
                item: items.get(l["sku"].as_str().unwrap()).unwrap(),
                weight: weights["purchase"] as f32,
                at,
                basket: bi as u32,
                session: NONE,
            });
        }
    }
    ds.n_users = users.len();
    println!("{scale}: {} customers, {} items, {} events; generated in {:.1}s", ds.n_users, ds.n_items, ds.events.len(), t0.elapsed().as_secs_f64());
    for kind in ["popularity", "cooccurrence", "content", "als", "hybrid"] {
        let t = std::time::Instant::now();
        let kind = Kind::parse(kind).unwrap();
        let r = pipeline::train(&ds, &catalog, us(end_ms), kind, &Params { refit: false, ..p.clone() }, Default::default(), |_| Ok::<_, ()>(())).unwrap();
        let rep = r.report.unwrap();
        let s = if kind == Kind::Hybrid { rep.hybrid } else { rep.members.iter().flatten().next().copied().unwrap() };
        println!(
            "{:<13} ndcg@10 {:.4}  recall@10 {:.4}  hit@10 {:.4}  map@10 {:.4}  coverage {:.3}  users {}  {:.1}s{}",
            kind.as_str(),
            s.ndcg,
            s.recall,
            s.hit_rate,
            s.map,
            s.coverage,
            s.users,
            t.elapsed().as_secs_f64(),
            if kind == Kind::Hybrid { format!("  weights {:?}", rep.weights) } else { String::new() }
        );
    }
}
