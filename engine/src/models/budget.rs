//! How much memory a training (or `reco.evaluate`, or `reco.load_demo`) will take, estimated
//! from the data's shape before it reads anything, so that one too large for the server is
//! refused with a hint instead of being killed by the kernel (which restarts the whole cluster).
//!
//! The figures are an upper bound of the backend's private memory, calibrated on the demo data
//! by `bench/train_memory.sh` (peak RssAnon above the backend's level before the call): at
//! `medium` every estimate is between 1.0× and 2× of what was measured, 2.3× for a tuned hybrid,
//! planned at the largest values its search tries (at `small` the fixed cost of the training
//! threads, 80 MB, dominates; docs/benchmarks.md, "Training memory").
use super::pipeline::{Kind, Params, Tune};

/// What a training will read, counted before it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// events that carry weight in the training window
    pub events: usize,
    /// customers (an upper bound: the customers table)
    pub customers: usize,
    /// the catalogue
    pub items: usize,
}

/// One part of an estimate: what it is for, its bytes, and the knob that makes it smaller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: &'static str,
    pub bytes: u64,
    /// none for a fixed cost
    pub lower: Option<&'static str>,
}

/// An estimate: its parts, largest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub parts: Vec<Part>,
}

impl Estimate {
    pub fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// The largest part that a knob makes smaller: the knob that helps most.
    pub fn largest(&self) -> Option<&Part> {
        self.parts.iter().find(|p| p.lower.is_some())
    }

    fn of(mut parts: Vec<Part>) -> Estimate {
        parts.retain(|p| p.bytes > 0);
        parts.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(b.name)));
        Estimate { parts }
    }
}

const MIB: u64 = 1 << 20;
/// The backend's fixed cost of a training: the pool's threads and their allocator arenas.
const BASE: u64 = 64 * MIB;
const PER_THREAD: u64 = 8 * MIB;
/// Evaluation: per thread and item, 16 scores of 4 bytes (four customers, four members).
const EVAL_PER_ITEM_THREAD: u64 = 64;
/// Reading: the event (40 bytes) in a vector that may double while it grows, the holdout's
/// index lists, the interned baskets and sessions, the confidences.
const PER_EVENT: u64 = 150;
const PER_CUSTOMER: u64 = 300;
/// The item's features and interned ids, popularity, nearest-item lists, evaluation buffers.
const PER_ITEM: u64 = 1_500;
/// ALS: the interaction matrix both ways (index and confidence)
const ALS_PER_EVENT: u64 = 16;
/// co-occurrence: pair counts per basket, session and history, and each item's lists
const COOCCURRENCE_PER_EVENT: u64 = 24;
const COOCCURRENCE_PER_ITEM: u64 = 256;
/// content: the TF-IDF rows besides the vectors
const CONTENT_PER_ITEM: u64 = 1_024;
/// co-occurrence: each item's neighbour lists (basket, session, history), 24 bytes a neighbour
const NEIGHBOR_BYTES: u64 = 3 * 24;

/// The estimate of `reco.train(kind, p)` (and of `reco.evaluate`, a hybrid without the refit)
/// on data of `shape`, with `threads` training threads.
pub fn training(shape: Shape, kind: Kind, p: &Params, threads: usize) -> Estimate {
    let (events, customers, items) = (shape.events as u64, shape.customers as u64, shape.items as u64);
    let uses = |k: Kind| kind == k || kind == Kind::Hybrid;
    let mut parts = vec![
        Part { name: "reading the events", bytes: events * PER_EVENT + customers * PER_CUSTOMER, lower: Some("window_days (train on fewer days of events)") },
        Part { name: "the catalogue", bytes: items * PER_ITEM, lower: None },
        Part { name: "the backend's fixed cost", bytes: BASE, lower: None },
        Part {
            name: "training threads",
            // and, when evaluating, each thread's score buffers: four customers' scores of every
            // item by each of four members (hybrid::evaluate)
            bytes: threads.max(1) as u64 * (PER_THREAD + if p.evaluate { EVAL_PER_ITEM_THREAD * items } else { 0 }),
            lower: Some("reco.training_threads"),
        },
    ];
    // a search may try larger values than the parameters hold, unless the caller gave them
    let searched = |knob: &str| (p.tune != Tune::Off && !p.given.iter().any(|g| g == knob)).then(|| super::tune::largest_tried(knob)).flatten();
    if uses(Kind::Als) {
        // the holdout model and the refit both live
        let factors = searched("factors").map_or(p.als.factors, |m| p.als.factors.max(m as usize)) as u64;
        let searched = searched("factors").is_some();
        let copies = if p.evaluate && p.refit { 2 } else { 1 };
        // (evaluating also packs a copy of the item factors, for scoring four customers at once)
        let packed = if p.evaluate { 4 * factors * items } else { 0 };
        parts.push(Part {
            name: "ALS factors",
            bytes: copies * 4 * factors * (customers + items) + packed + events * ALS_PER_EVENT,
            lower: Some(if searched { "factors (give it, and the search keeps it)" } else { "factors" }),
        });
    }
    if uses(Kind::Cooccurrence) {
        let neighbors = searched("neighbors").map_or(p.cooccurrence.top_k, |m| p.cooccurrence.top_k.max(m as usize)) as u64;
        parts.push(Part {
            name: "co-occurrence counts",
            bytes: events * COOCCURRENCE_PER_EVENT + items * (COOCCURRENCE_PER_ITEM + neighbors * NEIGHBOR_BYTES),
            lower: Some("window_days, or history_neighbors => false"),
        });
    }
    if uses(Kind::Content) {
        parts.push(Part { name: "content vectors", bytes: items * (2 * 4 * p.content_dims as u64 + CONTENT_PER_ITEM), lower: Some("content_dims") });
    }
    Estimate::of(parts)
}

/// The estimate of `reco.load_demo`: the catalogue, and two chunks of `chunk` customers (one
/// being generated while the other is written) with their orders and events, normalized, and
/// the arrays that write them: about 28 kB per customer in flight (bench/train_memory.sh: the
/// private memory of a `medium` load stays between 380 and 650 MB from its first chunk to its
/// last, so it is the chunks, not the scale, that count).
pub fn demo(products: usize, customers: usize, chunk: usize) -> Estimate {
    // each product comes in up to 6 variants (demo.rs); a customer has about 20 events and 3 orders
    let items = 6 * products as u64;
    let in_flight = 2 * customers.min(chunk) as u64;
    Estimate::of(vec![
        Part { name: "the demo catalogue", bytes: items * 2_048, lower: Some("scale") },
        Part { name: "demo customers in flight", bytes: in_flight * 28 * 1024, lower: Some("scale") },
        Part { name: "the backend's fixed cost", bytes: BASE, lower: None },
    ])
}

/// `bytes` for a message: "1.4 GB", "380 MB", "12 kB" (PostgreSQL's units: powers of 1024).
pub fn show(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GB", b / (1u64 << 30) as f64)
    } else if b >= MIB as f64 {
        format!("{:.0} MB", b / MIB as f64)
    } else {
        format!("{:.0} kB", (b / 1024.0).ceil())
    }
}

/// The limit a setting in kB means: `> 0` that many kB; `-1` half of the memory this server
/// may use (`total`, the smaller of the machine's and the control group's); `0` none.
pub fn limit(setting_kb: i64, total: Option<u64>) -> Option<u64> {
    match setting_kb {
        0 => None,
        n if n > 0 => Some(n as u64 * 1024),
        _ => total.map(|t| t / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEDIUM: Shape = Shape { events: 1_796_354, customers: 100_000, items: 30_604 };
    const SMALL: Shape = Shape { events: 18_312, customers: 1_000, items: 759 };

    fn mb(e: &Estimate) -> u64 {
        e.bytes() / MIB
    }

    #[test]
    fn estimates_bound_what_bench_train_memory_measured() {
        // peak private MB measured by bench/train_memory.sh (docs/benchmarks.md), tune off
        let off = Params { tune: Tune::Off, ..Params::default() };
        for (shape, kind, measured) in [
            (MEDIUM, Kind::Popularity, 300),
            (MEDIUM, Kind::Cooccurrence, 370),
            (MEDIUM, Kind::Content, 244),
            (MEDIUM, Kind::Als, 268),
            (MEDIUM, Kind::Hybrid, 411),
            (SMALL, Kind::Popularity, 24),
            (SMALL, Kind::Hybrid, 55),
        ] {
            let e = mb(&training(shape, kind, &off, 2));
            assert!(e >= measured && e as f64 <= 2.0 * measured as f64 + 64.0, "{kind:?} at {shape:?}: estimate {e} MB, measured {measured} MB");
        }
        // a search (the default) is planned at the largest values it tries (128 factors, 100
        // neighbours per list), which its trials do not all reach at once: up to 2.5x
        let tuned = mb(&training(MEDIUM, Kind::Hybrid, &Params::default(), 2));
        assert!((386..=5 * 386 / 2).contains(&tuned), "hybrid, tune auto: estimate {tuned} MB, measured 386 MB");
        assert!(mb(&demo(150, 1_000, 10_000)) >= 73);
        let medium_demo = mb(&demo(6_000, 100_000, 10_000));
        assert!((645..=2 * 645).contains(&medium_demo), "load_demo('medium'): estimate {medium_demo} MB, measured 645 MB");
        // a small training is mostly the fixed cost, which no knob lowers: the hint names the
        // largest part that one does
        let small = training(SMALL, Kind::Hybrid, &off, 2);
        assert_eq!(small.parts[0].lower, None);
        assert!(small.largest().is_some_and(|p| p.lower.is_some()));
    }

    #[test]
    fn more_data_or_bigger_models_never_estimate_less() {
        let p = Params::default();
        let base = training(MEDIUM, Kind::Hybrid, &p, 2).bytes();
        assert!(training(Shape { events: MEDIUM.events * 2, ..MEDIUM }, Kind::Hybrid, &p, 2).bytes() > base);
        assert!(training(Shape { customers: MEDIUM.customers * 2, ..MEDIUM }, Kind::Hybrid, &p, 2).bytes() > base);
        assert!(training(Shape { items: MEDIUM.items * 2, ..MEDIUM }, Kind::Hybrid, &p, 2).bytes() > base);
        assert!(training(MEDIUM, Kind::Hybrid, &Params { content_dims: 256, ..p.clone() }, 2).bytes() > base);
        assert!(training(MEDIUM, Kind::Hybrid, &p, 8).bytes() > base);
        // every member costs something on top of popularity
        let pop = training(MEDIUM, Kind::Popularity, &p, 2).bytes();
        for k in [Kind::Als, Kind::Cooccurrence, Kind::Content] {
            assert!(training(MEDIUM, k, &p, 2).bytes() > pop, "{k:?}");
            assert!(training(MEDIUM, k, &p, 2).bytes() < base, "{k:?} is part of the hybrid");
        }
    }

    #[test]
    fn a_search_is_estimated_at_its_largest_factors_unless_factors_are_given() {
        let searched = Params { tune: Tune::Auto, ..Params::default() };
        let given = Params { tune: Tune::Auto, given: vec!["factors".into()], ..Params::default() };
        let off = Params { tune: Tune::Off, ..Params::default() };
        let als = |p: &Params| training(MEDIUM, Kind::Als, p, 2).parts.into_iter().find(|x| x.name == "ALS factors").map(|x| x.bytes);
        assert!(als(&searched) > als(&given));
        assert_eq!(als(&given), als(&off));
        assert!(training(MEDIUM, Kind::Als, &searched, 2).parts.iter().any(|x| x.lower.is_some_and(|l| l.starts_with("factors (give it"))));
    }

    #[test]
    fn the_largest_part_names_the_knob_to_lower() {
        let huge_factors = Params { tune: Tune::Off, als: super::super::als::Params { factors: 4096, ..Default::default() }, ..Params::default() };
        assert_eq!(training(MEDIUM, Kind::Als, &huge_factors, 2).largest().map(|p| p.lower), Some(Some("factors")));
        let many_events = Shape { events: 500_000_000, ..MEDIUM };
        assert_eq!(training(many_events, Kind::Popularity, &Params::default(), 2).largest().map(|p| p.name), Some("reading the events"));
        let wide = Params { content_dims: 8192, ..Params::default() };
        assert_eq!(training(MEDIUM, Kind::Content, &wide, 2).largest().map(|p| p.lower), Some(Some("content_dims")));
    }

    #[test]
    fn the_limit_setting_reads_as_postgresql_units() {
        assert_eq!(limit(0, Some(1 << 34)), None);
        assert_eq!(limit(1024, Some(1 << 34)), Some(1 << 20));
        assert_eq!(limit(-1, Some(24 << 30)), Some(12 << 30));
        assert_eq!(limit(-1, None), None);
        assert_eq!(show(1_500_000_000), "1.4 GB");
        assert_eq!(show(400 * MIB), "400 MB");
        assert_eq!(show(1000), "1 kB");
    }
}
