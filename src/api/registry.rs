//! The model registry's own transactions. A training runs in its caller's transaction, so its
//! `reco.models` row would appear only when it commits and vanish if it failed. Instead a short
//! background worker inserts the row (status `training`) and commits it before training starts,
//! and another marks it `failed` with the error if training errors or is cancelled; the
//! caller's transaction sets it `ready` on success. Other sessions thus see a training while
//! it runs, and a failure after it ended.
//!
//! Without a free worker slot (max_worker_processes), or under REPEATABLE READ/SERIALIZABLE
//! (the caller could not see the worker's row), the row is written in the caller's
//! transaction instead, with a NOTICE that a failure will not be recorded. So is it on a Citus
//! cluster (docs/citus.md), where the worker would wait on the caller's reference-table lock.
use crate::error::OrRaise;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// Room for text in a worker's `bgw_extra` (128 bytes with its terminator).
const EXTRA: usize = 120;

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn run_worker(model_id: i64, extra: String) -> bool {
    // SAFETY: backend globals, set before any SQL function runs; read on the backend's thread
    let (db, user) = unsafe { (pg_sys::MyDatabaseId, pg_sys::GetUserId()) };
    let extra = format!("{} {} {}", u32::from(db), u32::from(user), extra);
    let w = BackgroundWorkerBuilder::new("pg_reco model registry")
        .set_library("pg_reco")
        .set_function("pg_reco_registry_worker")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_argument(Some(pg_sys::Datum::from(model_id)))
        .set_extra(cut(&extra, EXTRA))
        // SAFETY: a backend global, read on the backend's thread
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic();
    // a cancel while waiting would leave the row half-recorded: hold interrupts for the few
    // milliseconds the worker takes (the caller checks for them right after)
    // SAFETY: the backend's own counter, on its thread; decremented below on every path
    unsafe { pg_sys::InterruptHoldoffCount += 1 };
    let ok = match w {
        Ok(h) => h.wait_for_shutdown().is_ok(),
        Err(_) => false,
    };
    // SAFETY: undoes the increment above
    unsafe { pg_sys::InterruptHoldoffCount -= 1 };
    ok
}

fn read_committed() -> bool {
    crate::gucs::setting(c"transaction_isolation").as_deref() == Some("read committed")
}

/// Creates model `model_id`'s row with status `training`; returns whether it was committed
/// on its own (so a failure can be recorded).
pub fn open(model_id: i64, kind: &str, params: &str) -> bool {
    // On Citus, reco.models is a reference table, whose writes take a cluster-wide lock until
    // commit: a worker's insert would wait for this transaction, which waits for the worker.
    let own = read_committed() && !crate::api::distributed() && {
        let p = if params.len() + kind.len() + 30 < EXTRA { params } else { "{}" };
        run_worker(model_id, format!("open {kind} {p}"))
    };
    let exists: bool =
        Spi::get_one_with_args("SELECT EXISTS (SELECT 1 FROM reco.models WHERE model_id = $1)", &[DatumWithOid::from(model_id)]).or_raise().unwrap_or(false);
    if exists {
        return true;
    }
    if !own {
        pgrx::notice!(
            "pg_reco: model {model_id} is registered in this transaction, so if training fails its row will not remain \
             (a free background worker slot and READ COMMITTED let pg_reco record failures)"
        );
    }
    Spi::run_with_args(
        "INSERT INTO reco.models (model_id, kind, params, backend_pid) SELECT $1, $2, $3::jsonb, pg_backend_pid()",
        &[DatumWithOid::from(model_id), DatumWithOid::from(kind), DatumWithOid::from(params)],
    )
    .unwrap_or_else(|e| {
        crate::error::raise(
            reco_engine::Error::new(reco_engine::ErrorKind::NotInPrerequisiteState, format!("could not register model {model_id}: {e}"))
                .hint("the role training needs INSERT on reco.models (reco_admin has it)"),
        )
    });
    false
}

/// Marks model `model_id` failed with `message`, in a transaction of its own.
pub fn fail(model_id: i64, message: &str) {
    run_worker(model_id, format!("fail {message}"));
}

/// Takes model `model_id`'s training lock for the rest of this transaction (reco._lock_training).
/// Taken before the row is written, so no reaper can see the row without the lock.
pub fn lock(model_id: i64) {
    Spi::run_with_args("SELECT reco._lock_training($1)", &[DatumWithOid::from(model_id)]).or_raise();
}

/// Marks trainings that ended without finishing as failed (reco._reap_trainings): their
/// backend exited or their transaction rolled back, so nobody holds their lock any more.
pub fn reap_orphans() {
    Spi::run("SELECT reco._reap_trainings()").or_raise();
}

/// The registry worker: `extra` is "<db oid> <user oid> open <kind> <params>" or
/// "<db oid> <user oid> fail <message>"; the argument is the model id.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_reco_registry_worker(arg: pg_sys::Datum) {
    let model_id = arg.value() as i64;
    let extra = BackgroundWorker::get_extra().to_string();
    let mut parts = extra.splitn(4, ' ');
    let db: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let user: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let op = parts.next().unwrap_or("").to_string();
    let rest = parts.next().unwrap_or("").to_string();
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), Some(pg_sys::Oid::from(user)));
    // SAFETY: a background worker's MyBgworkerEntry is set before its main function runs
    let notify = unsafe { (*pg_sys::MyBgworkerEntry).bgw_notify_pid };
    BackgroundWorker::transaction(|| {
        let r = match op.as_str() {
            "open" => {
                let (kind, params) = rest.split_once(' ').unwrap_or((rest.as_str(), "{}"));
                Spi::run_with_args(
                    "INSERT INTO reco.models (model_id, kind, params, backend_pid) SELECT $1, $2, $3::jsonb, $4",
                    &[DatumWithOid::from(model_id), DatumWithOid::from(kind), DatumWithOid::from(params), DatumWithOid::from(notify)],
                )
            }
            "fail" => Spi::run_with_args(
                "UPDATE reco.models SET status = 'failed', error = $2, finished_at = clock_timestamp()
                  WHERE model_id = $1 AND status = 'training'",
                &[DatumWithOid::from(model_id), DatumWithOid::from(rest.as_str())],
            ),
            _ => Ok(()),
        };
        if let Err(e) = r {
            pgrx::log!("pg_reco registry worker: {op} of model {model_id} failed: {e}");
        }
    });
}
