//! A memory budget for work that cannot bound its own allocations (rendering a template).
//!
//! minijinja's fuel counts instructions, not bytes: a template that doubles a string on each of a
//! few dozen lines asks for terabytes within its fuel, and an allocation Rust cannot satisfy
//! aborts the process (a PostgreSQL backend: every connection of the server restarts). Stable
//! Rust offers no way to make a failed allocation an error, so the budget is enforced one step
//! earlier, by the global allocator:
//!
//! - [`Budgeted`] wraps the process's allocator. On a thread running [`Budget::enter`]ed work it
//!   counts the bytes that thread holds; everywhere else it adds one thread-local read per
//!   allocation.
//! - An allocation that would take the thread past its budget is never made. The budget is marked
//!   exceeded and the thread sleeps forever, inside the allocator, holding only what it had.
//! - So the work runs on a thread of its own ([`run`]: a worker per calling thread, reused job
//!   after job), and whoever waits for it watches [`Budget::exceeded`] and gives up on a stopped
//!   worker (never joined; it ends with the process). What it holds stays bounded by the budget.
//!
//! Work on a budgeted thread must not take a lock anybody else will wait for, since it may stop
//! for good while holding it. Rendering a template takes none of its own; a panic's hook takes
//! the process's, so a panicking thread is never stopped (engine/tests/budget.rs).
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;

/// The bytes a thread may hold, what it holds, and whether it asked for more.
#[derive(Debug)]
pub struct Budget {
    limit: isize,
    held: AtomicIsize,
    peak: AtomicIsize,
    exceeded: AtomicBool,
    /// the thread waiting for the work: woken when it ends or stops (a wait with a timeout
    /// alone would hang under a pinned clock, libfaketime's, where its deadline never comes)
    waiter: std::thread::Thread,
}

thread_local! {
    // the budget of the work running on this thread (null: none). A raw pointer in a const
    // initialised Cell: reading it never allocates and it registers no destructor, so the
    // allocator may read it at any time, even while the thread starts or ends
    static CURRENT: Cell<*const Budget> = const { Cell::new(std::ptr::null()) };
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit: isize::try_from(limit).unwrap_or(isize::MAX),
            held: AtomicIsize::new(0),
            peak: AtomicIsize::new(0),
            exceeded: AtomicBool::new(false),
            waiter: std::thread::current(),
        })
    }

    /// Runs `f` on this thread under the budget. If `f` asks for more, this never returns: the
    /// thread sleeps inside the allocator and [`Budget::exceeded`] turns true.
    pub fn enter<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        // the Arc is kept alive by this frame for as long as the pointer is set; a thread that
        // stops inside keeps the frame, and so the budget, for good
        let keep = self.clone();
        let before = CURRENT.with(|c| c.replace(Arc::as_ptr(&keep)));
        struct Restore(*const Budget);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(before);
        f()
    }

    /// Whether the work asked for more than the budget (and so stopped for good).
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }

    /// The most bytes the work held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed).max(0) as usize
    }

    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Accounts `grow` more bytes, or stops the thread for good when they would pass the limit.
    /// A panicking thread is never stopped: the panic hook takes process-wide locks (the
    /// backtrace's, standard error's) that a stopped thread would hold for good, and it may
    /// symbolize a backtrace (tens of MB); the panic then ends the work anyway.
    fn take(&self, grow: usize) {
        let grow = grow as isize;
        let held = self.held.load(Ordering::Relaxed);
        if held.saturating_add(grow) > self.limit && !std::thread::panicking() {
            self.exceeded.store(true, Ordering::Release);
            // (unpark allocates nothing)
            self.waiter.unpark();
            // never returns: nothing here allocates (nanosleep), and the work's memory stays as
            // it was, within the budget
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let now = self.held.fetch_add(grow, Ordering::Relaxed) + grow;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn give(&self, shrink: usize) {
        self.held.fetch_sub(shrink as isize, Ordering::Relaxed);
    }
}

/// How budgeted work ended.
#[derive(Debug)]
pub enum Outcome<R> {
    Done(R),
    /// It asked for more than its budget; its thread is left stopped.
    Exceeded,
    /// It panicked (the message).
    Panicked(String),
}

/// A panic's message, from what `catch_unwind` caught ("" when it is neither kind of string).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}

/// Work handed to a worker thread.
pub type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    // the calling thread's worker: where its budgeted jobs run, one after another (starting a
    // thread per job, tens of microseconds, would be a large share of a render of about 150 µs;
    // estimated, not measured). Never dropped: at a backend's exit there is nothing to tidy,
    // and the worker ends with the process
    static WORKER: std::mem::ManuallyDrop<std::cell::RefCell<Option<std::sync::mpsc::Sender<Job>>>> =
        const { std::mem::ManuallyDrop::new(std::cell::RefCell::new(None)) };
}

/// How long `run` spins for the job's result before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(100);

/// Runs `f` under a budget of `limit` bytes on this thread's worker, a thread `spawn` starts the
/// first time (the caller decides how: a PostgreSQL backend blocks its signals first), and waits
/// for it, calling `wait` about every 10 ms (a backend checks for interrupts there; if `wait`
/// unwinds, the job is left to finish alone and the next call starts a new worker). A job that
/// asks for more than its budget stops its worker for good; the next call starts another. The
/// worker runs these jobs and nothing else of the caller's. Returns how it ended and the most
/// bytes the job held at once.
pub fn run<R: Send + 'static>(
    limit: usize,
    f: impl FnOnce() -> R + Send + 'static,
    spawn: impl FnOnce(Job) -> std::io::Result<()>,
    mut wait: impl FnMut(),
) -> std::io::Result<(Outcome<R>, usize)> {
    use std::sync::mpsc;
    let budget = Budget::new(limit);
    let (tx, rx) = mpsc::sync_channel(1);
    let b = budget.clone();
    let job: Job = Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.enter(f)));
        // (the waiter may be gone: cancelled)
        let _ = tx.send(r.map_err(|p| panic_message(p.as_ref())));
        b.waiter.unpark();
    });
    // to the worker; a new one when there is none or it is gone
    let unsent = WORKER.with(|w| match w.borrow().as_ref() {
        Some(jobs) => jobs.send(job).err().map(|e| e.0),
        None => Some(job),
    });
    if let Some(job) = unsent {
        let (jobs, queue) = mpsc::channel::<Job>();
        let _ = jobs.send(job);
        spawn(Box::new(move || {
            while let Ok(job) = queue.recv() {
                job();
            }
        }))?;
        WORKER.with(|w| *w.borrow_mut() = Some(jobs));
    }
    // leaving without the job's result (an error unwinding out of `wait`, or the job over its
    // budget) forgets the worker: it may still be busy, or stopped for good
    struct Forget(bool);
    impl Drop for Forget {
        fn drop(&mut self) {
            if self.0 {
                WORKER.with(|w| *w.borrow_mut() = None);
            }
        }
    }
    let mut forget = Forget(true);
    // A render takes tens of microseconds: the waiter spins that long before it sleeps, so the
    // usual job costs one wake-up (the worker's) instead of two.
    let spin_until = std::time::Instant::now() + SPIN;
    loop {
        // woken by the job's end or stop (Budget::waiter), else about every 10 ms
        let outcome = match rx.try_recv() {
            Ok(Ok(r)) => Outcome::Done(r),
            Ok(Err(msg)) => Outcome::Panicked(msg),
            Err(mpsc::TryRecvError::Disconnected) => Outcome::Panicked("the worker ended without a result".into()),
            Err(mpsc::TryRecvError::Empty) if budget.exceeded() => Outcome::Exceeded,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < spin_until => {
                std::hint::spin_loop();
                continue;
            }
            Err(mpsc::TryRecvError::Empty) => {
                wait();
                std::thread::park_timeout(std::time::Duration::from_millis(10));
                continue;
            }
        };
        forget.0 = matches!(outcome, Outcome::Exceeded);
        return Ok((outcome, budget.peak()));
    }
}

fn current() -> Option<&'static Budget> {
    // SAFETY: the pointer is set only by Budget::enter, whose frame holds an Arc of the budget
    // until it resets the pointer; try_with fails only while the thread's locals are torn down,
    // when no budgeted work runs
    CURRENT.try_with(Cell::get).ok().and_then(|p| unsafe { p.as_ref() })
}

/// The global allocator `A`, counting the bytes of budgeted threads.
pub struct Budgeted<A>(pub A);

// SAFETY: every call is passed to `A` unchanged; the budget only counts and, before an
// allocation is made, may stop the calling thread
unsafe impl<A: GlobalAlloc> GlobalAlloc for Budgeted<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(b) = current() {
            b.take(layout.size());
        }
        // SAFETY: the caller's contract, passed on
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(b) = current() {
            b.take(layout.size());
        }
        // SAFETY: as above
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(b) = current() {
            b.give(layout.size());
        }
        // SAFETY: as above
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Some(b) = current() {
            if new_size > layout.size() {
                b.take(new_size - layout.size());
            } else {
                b.give(layout.size() - new_size);
            }
        }
        // SAFETY: as above
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_what_its_thread_holds() {
        // (the unit tests run on the system allocator, unwrapped: only the bookkeeping is
        // checked here; engine/tests/budget.rs runs the allocator itself)
        let b = Budget::new(1000);
        b.enter(|| {
            b.take(600);
            b.give(200);
            b.take(500);
        });
        assert!(!b.exceeded());
        assert_eq!(b.peak(), 900);
        assert_eq!(b.limit(), 1000);
        assert!(current().is_none(), "the thread's budget is restored on leaving");
    }
}
