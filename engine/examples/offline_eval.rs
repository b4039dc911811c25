//! Offline evaluation of every model kind on generated demo data, without a server: the same
//! pipeline `reco.train` runs, on the same planted-structure data `reco.load_demo` loads.
//!
//!   cargo run --release -p reco-engine --example offline_eval -- [small|medium] [threads] [params-json]
//!
//! For each kind: the holdout's served lists (what `reco.recommend` would return, with the
//! demo's settings and the default GUCs; RECO_TUNING='{"max_per_category": 0}' changes a GUC)
//! beside the raw ranking; RECO_TRIED=1 lists the blends the hybrid tried; RECO_KINDS=hybrid,als
//! evaluates only those kinds; RECO_PHASES=1 prints when each phase starts; RECO_GROUPS=1 counts, over a sample of 5 000 customers' served
//! lists, the held-out items listed and those whose product was listed in another variant (size
//! or colour): what a better choice of variant could gain at most.
// a command-line tool: bad arguments or a failed step stop it with the panic's message
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::demo;
use reco_engine::models::dataset::DEFAULT_WEIGHTS;
use reco_engine::models::pipeline::{self, Kind, Params};
use reco_engine::serve::offline::Setup;
use reco_engine::serve::policy::{Placement, Settings, Tuning, DEFAULT_TUNING};

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
    let (ds, catalog, items) = demo::training_data(&d);
    println!("{scale}: {} customers, {} items, {} events; generated in {:.1}s", ds.n_users, ds.n_items, ds.events.len(), t0.elapsed().as_secs_f64());
    // serving as the demo database has it: default weights, the demo's repeatable categories,
    // the default GUCs, the home placement
    let settings = Settings {
        weights: DEFAULT_WEIGHTS.iter().map(|(k, w, _)| (k.to_string(), *w)).collect(),
        repeatable: demo::REPEATABLE.iter().map(|c| c.to_string()).collect(),
        ..Settings::default()
    };
    let tuning = match std::env::var("RECO_TUNING") {
        Ok(json) => tuning_from(&DEFAULT_TUNING, &serde_json::from_str(&json).expect("RECO_TUNING json")),
        Err(_) => DEFAULT_TUNING,
    };
    let setup = Setup { item_ids: &items, settings: &settings, tuning: &tuning, placement: Placement::default(), history_events: 200 };
    let kinds = std::env::var("RECO_KINDS").unwrap_or_else(|_| "popularity,cooccurrence,content,als,hybrid".into());
    for kind in kinds.split(',') {
        let t = std::time::Instant::now();
        let kind = Kind::parse(kind).unwrap();
        let r = pipeline::train(
            &ds,
            &catalog,
            end_ms * 1000 - PG_EPOCH_UNIX_MICROS,
            kind,
            &Params { refit: false, ..p.clone() },
            Some(&setup),
            Default::default(),
            |step| {
                // RECO_PHASES=1: each phase's start, in seconds from the kind's start
                if let (Ok(_), reco_engine::models::pipeline::Step::Phase(name)) = (std::env::var("RECO_PHASES"), &step) {
                    println!("  {:>6.2}s {name}", t.elapsed().as_secs_f64());
                }
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        if std::env::var("RECO_GROUPS").is_ok() {
            use reco_engine::serve::offline;
            let h = ds.holdout(p.holdout);
            let train_m = ds.matrix(Some(&h.train));
            let set = reco_engine::models::hybrid::eval_set(&train_m, &ds.matrix(Some(&h.test)), 5000, 1);
            let m = offline::model(&r, &catalog, &items, &p, r.weights, h.train.iter().map(|&i| ds.events[i].at).max().unwrap());
            let stored = |u: u32| r.als.as_ref().filter(|_| r.has_user[u as usize]).map(|a| a.user_vec(u as usize).to_vec());
            let lists = offline::served_lists(&m, &ds, &h, &set, &stored, &setup, 10, Default::default());
            let g = |i: u32| catalog.group.get(i as usize).copied().unwrap_or(u32::MAX);
            let (mut item_hits, mut group_hits, mut truths, mut sized) = (0usize, 0usize, 0usize, 0usize);
            for (list, truth) in lists.iter().zip(&set.truth) {
                truths += truth.len();
                for t in truth {
                    if list.contains(t) {
                        item_hits += 1;
                    } else if g(*t) != u32::MAX && list.iter().any(|&i| g(i) == g(*t)) {
                        group_hits += 1;
                        if catalog.features.get(*t as usize).is_some_and(|f| f.size.is_some()) {
                            sized += 1;
                        }
                    }
                }
            }
            println!(
                "{}: held-out items {truths}: listed {item_hits}; another variant of the same product listed instead {group_hits} (of them sized {sized})",
                kind.as_str()
            );
        }
        let rep = r.report.unwrap();
        let raw = if kind == Kind::Hybrid { rep.hybrid } else { rep.members.iter().flatten().next().copied().unwrap() };
        let served = r.served.unwrap();
        let s = served.model;
        if kind == Kind::Hybrid && std::env::var("RECO_TRIED").is_ok() {
            for (w, ndcg) in &served.tried {
                println!("  blend {w:?}: served ndcg@10 {ndcg:.4}");
            }
            for (w, ndcg) in &rep.best {
                println!("  raw grid {w:?}: ndcg@10 {ndcg:.4}");
            }
        }
        println!(
            "{:<13} served ndcg@10 {:.4}  recall@10 {:.4}  hit@10 {:.4}  coverage {:.3}  categories/list {:.2} | raw ndcg@10 {:.4}  coverage {:.3}  users {}  {:.1}s{}",
            kind.as_str(),
            s.ndcg,
            s.recall,
            s.hit_rate,
            s.coverage,
            s.categories,
            raw.ndcg,
            raw.coverage,
            s.users,
            t.elapsed().as_secs_f64(),
            if kind == Kind::Hybrid { format!("  weights served {:?} raw {:?}", r.weights, rep.weights) } else { String::new() }
        );
    }
}

/// The default serving settings with some changed: {"max_per_category": 0, ...}.
fn tuning_from(base: &Tuning, v: &serde_json::Value) -> Tuning {
    let mut t = base.clone();
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    if let Some(x) = n("max_per_category") {
        t.max_per_category = x as usize;
    }
    if let Some(x) = n("diversity_penalty") {
        t.diversity_penalty = x as f32;
    }
    if let Some(x) = v.get("seen_last").and_then(serde_json::Value::as_bool) {
        t.seen_last = x;
    }
    if let Some(x) = n("candidates") {
        t.candidates = x as usize;
    }
    if let Some(x) = n("history_half_life_days") {
        t.history_half_life_days = x;
    }
    t
}
