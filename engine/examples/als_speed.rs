//! The ALS fit alone, timed, on the training side of a demo holdout; also writes that matrix
//! (with confidences 1 + alpha·r) so `bench/als_speed.py` can time `implicit` on exactly the
//! same input in the same sitting (bench/als_speed.sh runs both).
//!
//!   cargo run --release -p reco-engine --example als_speed -- [small|medium|large] [threads] [factors] [iterations] [out-dir]
// a command-line tool: bad arguments or a failed step stop it with the panic's message
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::demo;
use reco_engine::models::als;
use reco_engine::models::linalg::Exec;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale = args.get(1).map(String::as_str).unwrap_or("medium");
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let factors: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let iterations: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(15);
    let out = args.get(5).cloned();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let d = demo::generate(demo::scale(scale).unwrap(), 42, 1_767_225_600_000);
    let (ds, _, _) = demo::training_data(&d);
    let h = ds.holdout(0.2);
    let m = ds.matrix(Some(&h.train));
    let p = als::Params { factors, iterations, report_loss: false, ..Default::default() };
    println!("{scale}: {} customers x {} items, {} interactions; {factors} factors, {iterations} iterations, {threads} threads", m.rows, m.cols, m.nnz());
    if let Some(dir) = out {
        let write = |name: &str, bytes: &[u8]| std::fs::File::create(format!("{dir}/{name}")).unwrap().write_all(bytes).unwrap();
        let indptr: Vec<u8> = m.indptr.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
        let indices: Vec<u8> = m.indices.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect();
        let conf: Vec<u8> = m.values.iter().flat_map(|&r| (1.0 + p.alpha * r).to_le_bytes()).collect();
        write("indptr.i64", &indptr);
        write("indices.i32", &indices);
        write("conf.f32", &conf);
        write("shape.txt", format!("{} {}\n", m.rows, m.cols).as_bytes());
    }
    let exec = Exec { pool: Some(&pool), cancel: None };
    // the loss wants confidences c = 1 + alpha·r (printed to show both builds reach the same fit)
    let cui = als::Csr { values: m.values.iter().map(|&r| 1.0 + p.alpha * r).collect(), ..m.clone() };
    let mut best = f64::MAX;
    let mut last = None;
    for run in 1..=3 {
        let t = std::time::Instant::now();
        let model = als::train(&m, &p, exec, |_| Ok::<(), ()>(())).unwrap();
        let s = t.elapsed().as_secs_f64();
        best = best.min(s);
        println!("pg_reco ALS fit, run {run}: {s:.2}s (loss {:.5})", als::loss(&cui, &model, p.regularization));
        last = Some(model);
    }
    println!("pg_reco ALS fit, best of 3: {best:.2}s");
    // what training stores next for a large catalogue: each item's 30 nearest items, exactly
    let model = last.unwrap();
    let learned: Vec<bool> = (0..m.cols).map(|i| model.item_vec(i).iter().any(|x| *x != 0.0)).collect();
    let t = std::time::Instant::now();
    let lists = reco_engine::models::linalg::nearest::nearest(&model.item, factors, 30, &learned, &learned, &exec);
    println!("pg_reco nearest items (exact, 30 per item, {} items): {:.2}s", lists.iter().filter(|l| !l.is_empty()).count(), t.elapsed().as_secs_f64());
}
