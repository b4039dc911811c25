//! Running a training in the backend: progress NOTICEs, the thread pool, memory figures,
//! cancellation, and the subtransaction a failed training is recorded from.
use super::*;

/// A progress reporter: a NOTICE with the elapsed time, and a chance to be cancelled.
pub(super) fn notices(label: &str, started: Instant) -> impl FnMut(&str) + '_ {
    move |what| {
        pg_sys::check_for_interrupts!();
        pgrx::notice!("{label}: {what} ({:.1}s)", started.elapsed().as_secs_f64());
    }
}

/// The training threads: reco.training_threads, or one per core (at most two per core).
pub(super) fn threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match crate::gucs::TRAINING_THREADS.get() {
        0 => cores,
        n => (n as usize).min(2 * cores),
    }
}

/// `reco.training_nice` at this value puts the training threads in the idle scheduling class.
const IDLE_CLASS: i32 = 20;

/// A rayon pool of `reco.training_threads` threads that never take PostgreSQL's signals (the
/// handlers must run on the backend's own thread), each at the nice value `reco.training_nice`
/// (or the backend's own, when that is higher: a thread's priority can only be lowered), or in
/// the idle scheduling class (SCHED_IDLE) at 20: any other runnable thread takes the CPU from
/// them at once, where a nice value only shares it out.
pub(super) fn pool() -> rayon::ThreadPool {
    let n = threads();
    let nice = crate::gucs::TRAINING_NICE.get();
    // SAFETY: getpriority and setpriority of one thread (who 0: the calling one; a thread id:
    // that thread, on Linux) read or lower a number and touch no memory of ours. A failure reads
    // as -1 (then the pool threads are lowered to `nice`) or leaves a thread at the backend's
    // priority; neither is harmful.
    let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let lower = move |_| {
        if nice >= IDLE_CLASS {
            // sched_setscheduler of the calling thread (pid 0) into SCHED_IDLE, which an
            // unprivileged thread may always enter; a failure leaves it at the nice value below
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: the parameter is a live local, read during the call and never kept
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
                return;
            }
        }
        if nice > own {
            // SAFETY: as above
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice.min(19)) };
        }
        if nice > 0 {
            crate::api::sched::set_slice(crate::api::sched::LONGEST_NS);
        }
    };
    let p = crate::api::signals_blocked(|| {
        rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("pg_reco train {i}")).start_handler(lower).build()
    });
    p.unwrap_or_else(|e| raise(Error::new(ErrorKind::LimitExceeded, format!("could not start {n} training threads: {e}")).hint("lower reco.training_threads")))
}

/// The backend's resident memory now and at its peak (bytes), from /proc; the peak is reset
/// first when `reset`.
pub(super) fn memory(reset: bool) -> (i64, i64) {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// Runs the pipeline on a private pool, with NOTICEs and cancellation between steps.
pub(super) fn run(l: &Loaded, kind: Kind, p: &Params, started: Instant, label: &str) -> Trained {
    let end = l.data_to.unwrap_or(0);
    // the holdout is served as `reco.recommend` serves a home page now: this session's serving
    // settings, the event weights, the repeatable categories and the `home` placement
    let (placement, settings) = if p.evaluate {
        let (_, placement, settings) = Spi::connect(|c| crate::api::serve::live::deployed_or_neutral(c, "home", true));
        (placement, settings)
    } else {
        Default::default()
    };
    let tuning = crate::api::serve::live::tuning();
    let setup =
        Setup { item_ids: &l.items.ids, settings: &settings, tuning: &tuning, placement, history_events: crate::gucs::HISTORY_EVENTS.get().max(1) as usize };
    // cancellation leaves through check_for_interrupts!, so the callback never fails; a run
    // cut short after its last callback is caught by on_training_pool
    let r = on_training_pool(|exec| {
        pipeline::train(&l.ds, &l.features, end, kind, p, p.evaluate.then_some(&setup), exec, |step| -> Result<(), std::convert::Infallible> {
            pg_sys::check_for_interrupts!();
            let secs = started.elapsed().as_secs_f64();
            match step {
                Step::Phase(name) => pgrx::notice!("{label}: {name} ({secs:.1}s)"),
                Step::Trial { trial, best } => pgrx::notice!(
                    "{label}: tuning {} {}: ndcg@{} {:.4}{} ({secs:.1}s)",
                    trial.member,
                    if trial.change.as_object().is_some_and(|o| o.is_empty()) { "as given".to_string() } else { trial.change.to_string() },
                    p.k,
                    trial.ndcg,
                    if best { ", best so far" } else { "" }
                ),
                Step::Iteration { phase, iteration, of, loss } => match loss {
                    Some(loss) => pgrx::notice!("{label}: {phase} iteration {iteration}/{of}, loss {loss:.6} ({secs:.1}s)"),
                    None => pgrx::notice!("{label}: {phase} iteration {iteration}/{of} ({secs:.1}s)"),
                },
            }
            Ok(())
        })
    });
    match r {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// Runs `f` on a training pool whose work stops when PostgreSQL is asked to cancel; a run cut
/// short raises the cancel (57014) instead of returning what it computed.
pub(super) fn on_training_pool<R>(f: impl FnOnce(Exec) -> R) -> R {
    let pool = pool();
    let cancel = cancel_requested;
    let r = f(Exec { pool: Some(&pool), cancel: Some(&cancel) });
    leave_if_cancelled();
    r
}

/// Whether PostgreSQL was asked to cancel this statement or end this backend
/// (statement_timeout, pg_cancel_backend, pg_terminate_backend). Its signal handlers set these
/// flags while the backend's thread waits for the training pool; the pool's threads read them
/// (Exec::cancelled) and skip the rest of their work.
pub(super) fn cancel_requested() -> bool {
    // SAFETY: reads of two sig_atomic_t globals that signal handlers write; volatile, as in C
    unsafe { std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0 || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0 }
}

/// Raises the pending cancel (or termination) if there is one. When interrupts are held off
/// (rare here) PostgreSQL would not raise it yet, but the work was already skipped: raise
/// 57014 ourselves rather than return a result computed from skipped work.
pub(super) fn leave_if_cancelled() {
    pg_sys::check_for_interrupts!();
    if cancel_requested() {
        raise(
            Error::new(ErrorKind::QueryCanceled, "canceling statement: pg_reco stopped its training threads")
                .hint("the statement was cancelled or hit statement_timeout"),
        );
    }
}

/// Runs `f` in a subtransaction: on error, the subtransaction is rolled back (so the session is
/// clean again) and the error handed back to be recorded and re-thrown.
pub(super) fn in_subtransaction<R>(f: impl FnOnce() -> R) -> Result<R, Box<CaughtError>> {
    // SAFETY: PostgreSQL's internal-subtransaction protocol as PL/pgSQL's exception blocks use
    // it: begin, run under a catch, release or roll back, then restore the caller's memory
    // context and resource owner
    unsafe {
        let ctx = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(ctx);
        let r = PgTryBuilder::new(std::panic::AssertUnwindSafe(move || Ok(f())))
            .catch_others(|e| Err(Box::new(e)))
            .catch_rust_panic(|e| Err(Box::new(e)))
            .execute();
        match r {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(ctx);
        pg_sys::CurrentResourceOwner = owner;
        r
    }
}

pub(super) fn error_text(e: &CaughtError) -> String {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => {
            // the five-character SQLSTATE, unpacked from PostgreSQL's 6-bit encoding
            let code = r.sql_error_code() as i32;
            let state: String = (0..5).map(|i| char::from(b'0' + ((code >> (6 * i)) & 0x3F) as u8)).collect();
            format!("{state}: {}", r.message())
        }
    }
}
