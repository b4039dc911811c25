//! pg_reco: the PostgreSQL extension. Thin glue over `reco_engine`: each SQL function reads its
//! inputs, calls the engine, and writes the result. See docs/reference.md for the SQL surface.
use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

/// Rust-side allocations (serde values while normalizing, score buffers, training) go to
/// mimalloc: glibc malloc's free-list work was ~17% of normalize_order. PostgreSQL's own
/// memory stays in palloc. Wrapped so that work run under a memory budget (rendering a
/// template: reco_engine::budget) stops at it instead of aborting the backend; elsewhere the
/// wrapper costs one thread-local read per allocation.
#[global_allocator]
static GLOBAL: reco_engine::budget::Budgeted<mimalloc::MiMalloc> = reco_engine::budget::Budgeted(mimalloc::MiMalloc);

mod api;
mod error;
mod gucs;
mod jsonb;
mod plans;
mod vector;

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/prefs.sql", name = "prefs", requires = ["schema"]);
extension_sql_file!("../sql/models.sql", name = "models", requires = ["schema"]);
extension_sql_file!("../sql/event_weights.sql", name = "event_weights", requires = ["models"]);
extension_sql_file!("../sql/deploy.sql", name = "deploy", requires = ["models"]);
extension_sql_file!("../sql/deploy_switch.sql", name = "deploy_switch", requires = ["deploy", api::serve::preload_model]);
extension_sql_file!("../sql/serve.sql", name = "serve", requires = ["models"]);
extension_sql_file!(
    "../sql/notify.sql",
    name = "notify",
    requires = [
        "serve",
        api::notify::render,
        api::notify::render_batch,
        api::notify::_check_template,
        api::notify::_send_after,
        api::notify::best_send_time,
        api::serve::recommend,
        api::scope::customer_key,
        api::scope::customer_scope
    ]
);
extension_sql_file!("../sql/privacy.sql", name = "privacy", requires = ["notify", api::privacy::pseudonym]);
extension_sql_file!(
    "../sql/experiments.sql",
    name = "experiments",
    requires = ["privacy", api::experiments::assign, api::experiments::experiment_stats, api::experiments::experiment_report_page, api::privacy::pseudonym]
);
extension_sql_file!("../sql/citus.sql", name = "citus", requires = ["experiments"]);
extension_sql_file!("../sql/kpis.sql", name = "kpis", requires = ["experiments", api::prefs::resolve::resolve_preferences_at]);
extension_sql_file!("../sql/demand.sql", name = "demand", requires = ["kpis", "citus", api::demand::demand_backtest]);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[cfg(any(test, feature = "pg_test"))]
mod tests;

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    api::serve::shared_init();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["timezone = 'UTC'"]
    }
}
