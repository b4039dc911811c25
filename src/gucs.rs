//! Every GUC pg_reco defines, with its description. Registered in `_PG_init`.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
// serving's defaults are the engine's (reco_engine::serve::Tuning), written once
use reco_engine::serve::policy::DEFAULT_TUNING as D;

/// Threads a training uses (0 = one per CPU core).
pub static TRAINING_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);
/// The most threads reco.training_threads may ask for.
pub const MAX_TRAINING_THREADS: i32 = 64;
/// The nice value of the training threads (0–19): above 0, the server's other work comes first.
pub static TRAINING_NICE: GucSetting<i32> = GucSetting::<i32>::new(10);
/// Training: up to this many items, each item's nearest-item lists are computed exactly; above,
/// found with the HNSW indexes (0 = always the indexes).
pub static EXACT_KNN_MAX_ITEMS: GucSetting<i32> = GucSetting::<i32>::new(reco_engine::models::linalg::nearest::EXACT_MAX_ROWS as i32);

/// Serving: at most this many items of one category in a list (0 = no cap).
pub static MAX_PER_CATEGORY: GucSetting<i32> = GucSetting::<i32>::new(D.max_per_category as i32);
/// Serving: each item of a category already in a list moves the next of that category this
/// many places down the ranking (0 = none).
pub static DIVERSITY_PENALTY: GucSetting<f64> = GucSetting::<f64>::new(D.diversity_penalty as f64);
/// Serving: items the customer viewed or carted and does not own come after every other item.
pub static SEEN_LAST: GucSetting<bool> = GucSetting::<bool>::new(D.seen_last);
/// Serving: per blend member, how many top items become candidates (and set the normalization).
pub static CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(D.candidates as i32);
/// Serving: how many of the customer's latest events a request reads.
pub static HISTORY_EVENTS: GucSetting<i32> = GucSetting::<i32>::new(200);
/// Serving: the half-life (days) of a past event's weight in a request's context.
pub static HISTORY_HALF_LIFE_DAYS: GucSetting<f64> = GucSetting::<f64>::new(D.history_half_life_days);
/// Serving: blended-score penalty for items that do not fit the customer's resolved preferences.
pub static PREFERENCE_PENALTY: GucSetting<f64> = GucSetting::<f64>::new(D.preference_penalty as f64);
/// Serving: days after an item is available again that recommendations call it back in stock.
pub static BACK_IN_STOCK_DAYS: GucSetting<f64> = GucSetting::<f64>::new(D.back_in_stock_days);
/// Serving: the days from an order to its delivery, over which a placement's `demand` weight
/// asks whether an item will sell out.
pub static DEMAND_LEAD_DAYS: GucSetting<f64> = GucSetting::<f64>::new(D.demand_lead_days);
/// Serving: catalogues with at least this many items take ALS and content candidates from the
/// model's pgvector HNSW indexes instead of a pass over the cached vectors (0 = never).
pub static HNSW_MIN_ITEMS: GucSetting<i32> = GucSetting::<i32>::new(HNSW_DEFAULT);
/// The measured crossover (docs/benchmarks.md, "Exact pass or HNSW").
pub const HNSW_DEFAULT: i32 = D.hnsw_min_items as i32;
/// Whether a catalogue of `n` items is served from the model's HNSW indexes (and so has its
/// nearest-item lists found at training): at least `reco.hnsw_min_items` items, 0 = never.
pub fn index_backed(n: usize) -> bool {
    reco_engine::serve::Tuning { hnsw_min_items: HNSW_MIN_ITEMS.get().max(0) as usize, ..D }.index_backed(n)
}
/// Serving: above reco.hnsw_min_items, ALS and content candidates from the nearest-item lists
/// training stored (reco.item_knn) instead of an index search per call.
pub static ITEM_KNN: GucSetting<bool> = GucSetting::<bool>::new(D.item_knn);
/// Serving: keep one copy of each model in shared memory (needs pg_reco in shared_preload_libraries).
pub static SHARED_CACHE: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Serving: the most memory (kB) the per-backend model cache may take.
pub static CACHE_MAX_KB: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);
/// The most memory a training, an evaluation or a demo load may be estimated to take, kB
/// (-1 = half of the server's memory, 0 = no limit).
pub static TRAINING_MEMORY_LIMIT_KB: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// The customer a customer-facing session acts for: set only by reco.enter_customer_scope
/// (superuser-level context, so a plain SET by any other role fails).
pub static CUSTOMER_SCOPE: GucSetting<Option<std::ffi::CString>> = GucSetting::<Option<std::ffi::CString>>::new(None);

pub fn init() {
    GucRegistry::define_string_guc(
        c"reco.customer_scope",
        c"The customer this session acts for, set by reco.enter_customer_scope(token); read-only for SQL.",
        c"Row-level security on the preference ledger and the preference functions confine a reco_customer session to this customer. Only reco.enter_customer_scope can set it (it checks a token signed with the extension's key); SET fails for every role but a superuser, and RESET ALL or DISCARD ALL clears it.",
        &CUSTOMER_SCOPE,
        GucContext::Suset,
        GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
    GucRegistry::define_int_guc(
        c"reco.hnsw_min_items",
        c"Catalogues with at least this many items take ALS and content candidates from pgvector HNSW indexes (0 = never).",
        c"Below it, recommend scores the customer's vector against every cached item vector (an i8 pass, its top rescored exactly); from it on, candidates come from each item's nearest items that training stored (the reco.item_knn table, exact or found with the model's HNSW indexes; the reco.item_knn setting turns them off), or from an index search (item_vectors_<model>_<space>_hnsw), hnsw.ef_search items per space (pgvector's setting, 40 by default). Training stores the nearest-item lists when the catalogue has at least this many items. Either way the stock filter applies afterwards and the list widens until k buyable items are found. The default is the crossover measured in docs/benchmarks.md.",
        &HNSW_MIN_ITEMS,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"reco.item_knn",
        c"Above reco.hnsw_min_items, take ALS and content candidates from the nearest-item lists training stored instead of searching the HNSW indexes on every call.",
        c"When the catalogue has at least reco.hnsw_min_items items, training stores each item's 30 nearest items per space (reco.item_knn, computed exactly up to reco.exact_knn_max_items items, else found with the model's HNSW indexes) and every backend keeps them with the model. A request then scores the lists of its 8 strongest anchors, and of the 4 best items found there, against the customer's vector or content profile. Off, or for a model without lists or a request without anchors, the request searches the index (hnsw.ef_search items per space).",
        &ITEM_KNN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.exact_knn_max_items",
        c"Training computes each item's nearest items (reco.item_knn) exactly up to this many items, and with the HNSW indexes above (0 = always the indexes).",
        c"The exact pass scores every pair of items on the training threads (under a second for 30 000 items of 64 dimensions on two cores, growing with the square of the catalogue); an index search per item grows more slowly but misses some neighbours. Only catalogues that reach reco.hnsw_min_items get lists at all.",
        &EXACT_KNN_MAX_ITEMS,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.training_threads",
        c"Threads reco.train and reco.evaluate use (0 = one per CPU core).",
        c"Training runs its numeric work (ALS, evaluation) on this many threads inside the backend that called it. Superuser-only (ALTER SYSTEM, ALTER ROLE ... SET by a superuser): each thread takes memory and a core. At most 64, and never more than twice the CPU cores.",
        &TRAINING_THREADS,
        0,
        MAX_TRAINING_THREADS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.training_nice",
        c"The nice value of the training threads (0 = the backend's own priority, 19 = the lowest, 20 = the idle scheduling class).",
        c"Training's numeric work runs on its own threads at this nice value, so serving and other queries take the CPU first and a training only uses what they leave; on an idle server it runs as fast as at 0. The backend's own thread (reading the tables, writing the model) keeps its priority. Above 0, the threads and the backend also ask Linux (6.12 on) for its longest time slice while the training runs, so a query that wakes takes the CPU from them at once instead of waiting out their slice, and the HNSW indexes are built without parallel workers (processes at full priority). A thread's priority can only be lowered: a value below the backend's own nice value has no effect. 20 puts the threads in Linux's idle scheduling class (SCHED_IDLE): any query that wakes takes the CPU from them at once, and a training on a busy server may take much longer. Superuser-only, as reco.training_threads.",
        &TRAINING_NICE,
        0,
        20,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.max_per_category",
        c"At most this many items of one category in a recommendation list (0 = no cap, the default).",
        c"A hard cap beside the soft reco.diversity_penalty; relaxed when the list could not be filled otherwise. A request's context key max_per_category overrides it.",
        &MAX_PER_CATEGORY,
        0,
        1000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"reco.diversity_penalty",
        c"Places a category's next item moves down a recommendation list per item of that category already in it (0 = none).",
        c"Soft diversity: the list is picked greedily by place in the ranking plus this penalty times the items of the same category already picked, so a category's third item must rank 2 x penalty places above another category's first. A request's context key diversity_penalty overrides it.",
        &DIVERSITY_PENALTY,
        0.0,
        1000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"reco.seen_last",
        c"Items the customer viewed, clicked or put in a cart, and does not own, come after every other item of a recommendation list.",
        c"They fill the list only when nothing new is left. A request's context key seen_last overrides it.",
        &SEEN_LAST,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.candidates",
        c"Per blend member, how many top items become candidates of a recommendation.",
        c"Each member's scores are min-max normalized over the union of the members' top candidates, as in training's evaluation; keep it equal to what the model was evaluated with (100).",
        &CANDIDATES,
        10,
        10000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.history_events",
        c"How many of the customer's latest events a recommendation reads.",
        c"They anchor co-occurrence and content scores and give the folded-in customer vector.",
        &HISTORY_EVENTS,
        0,
        100000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"reco.history_half_life_days",
        c"Half-life in days of a past event's weight in a recommendation's context.",
        c"This session's events also get the placement's session_boost (reco.placement_weights).",
        &HISTORY_HALF_LIFE_DAYS,
        0.001,
        100000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"reco.preference_penalty",
        c"Blended-score penalty for items that do not fit the customer's resolved size, color, brand or price range.",
        c"Blended scores lie between 0 and 1; 0 turns preference fit off, 1 puts non-fitting items after every fitting one.",
        &PREFERENCE_PENALTY,
        0.0,
        10.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"reco.back_in_stock_days",
        c"Days after an item is available again during which a recommendation of it, in the customer's size, says \"back in stock in your size\".",
        c"reco.stock.back_in_stock_at is set by a trigger when an update makes the item available again; 0 turns the reason off.",
        &BACK_IN_STOCK_DAYS,
        0.0,
        365.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"reco.demand_lead_days",
        c"Days from an order to its delivery: with a placement's demand weight, items with fewer days of cover than this go down the list.",
        c"Days of cover are the units available divided by the deployed model's demand forecast for the weekdays of the lead time (reco.item_demand); an item with at most this many days of cover gets the full penalty, from twice as many on none.",
        &DEMAND_LEAD_DAYS,
        0.0,
        60.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.cache_max_memory",
        c"The most memory the per-backend model cache may take (the deployed model and those named by running experiments' arms).",
        c"The cache is loaded by a backend's first recommendation call and reloaded when another model is deployed; while experiments run it also holds the models their arms name, letting the least recently used go when the total would exceed this. A model whose estimated size (from its registry row) is larger than this is refused before anything is loaded, with an error naming its size. Superuser-only: it protects the server's memory.",
        &CACHE_MAX_KB,
        64,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_bool_guc(
        c"reco.shared_cache",
        c"Serve from one copy of each model per server, in dynamic shared memory, instead of a copy per backend (needs pg_reco in shared_preload_libraries).",
        c"The first backend that serves a model reads it and writes it to a shared segment; the others attach it and read it in place, so the model's memory does not grow with the number of connections and a new connection's first call does not read the tables. Off, or without the preload, each backend keeps its own copy. reco.cache_max_memory then caps the models in shared memory together. Superuser-only: a private copy costs the server memory.",
        &SHARED_CACHE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"reco.training_memory_limit",
        c"reco.train, reco.evaluate and reco.load_demo refuse to start when their memory, estimated from the data's shape, is above this (-1, the default: half of the server's memory; 0: no limit).",
        c"A backend that runs out of memory is killed by the kernel, and PostgreSQL then restarts every connection of the cluster; refusing first (SQLSTATE 54000, with the parameter to lower in the hint) keeps the server up. The server's memory is the smaller of the machine's (/proc/meminfo) and its control group's limit. Superuser-only: it protects the server.",
        &TRAINING_MEMORY_LIMIT_KB,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
}

/// The current value of any setting by name (ours, PostgreSQL's or another extension's), as
/// `SHOW` prints it; None when no such setting exists (e.g. pgvector's `hnsw.*` before the
/// library is loaded). Read in the backend, without a statement.
pub fn setting(name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: a NUL-terminated name; with missing_ok, GetConfigOption returns NULL for an unknown
    // setting instead of raising, and otherwise a string that stays valid until the next change
    // of the setting, copied out at once
    unsafe {
        let v = pgrx::pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!v.is_null()).then(|| std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}
