//! Where one Shopify order's normalization spends its time, stage by stage.
//!   cargo run --release -p reco-engine --example normalize_profile
// a command-line tool: bad arguments or a failed step stop it with the panic's message
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::normalize::normalize_order;
use std::time::Instant;

fn main() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/shopify.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // three lines, like the benchmark's average order
    let l = v["line_items"][1].clone();
    v["line_items"].as_array_mut().unwrap().push(l);
    let text = v.to_string();
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(reco_engine::json::parse(&text).unwrap());
    }
    let parse = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    let mut o = None;
    for _ in 0..n {
        o = Some(std::hint::black_box(normalize_order("shopify", &v, None).unwrap()));
    }
    let norm = t.elapsed().as_secs_f64() / n as f64;
    let o = o.unwrap();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_value(&o).unwrap().to_string());
    }
    let out = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_string(&o).unwrap());
    }
    let direct = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "per order: parse {:.2} µs, normalize {:.2} µs, to_json+to_string {:.2} µs, to_string direct {:.2} µs",
        parse * 1e6,
        norm * 1e6,
        out * 1e6,
        direct * 1e6
    );
}
