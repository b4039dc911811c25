//! Every GUC pg_reco defines, with its description. Registered in `_PG_init`.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Threads a training uses (0 = one per CPU core).
pub static TRAINING_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);

pub fn init() {
    GucRegistry::define_int_guc(
        c"reco.training_threads",
        c"Threads reco.train and reco.evaluate use (0 = one per CPU core).",
        c"Training runs its numeric work (ALS, evaluation) on this many threads inside the backend that called it.",
        &TRAINING_THREADS,
        0,
        256,
        GucContext::Userset,
        GucFlags::default(),
    );
}
