//! The EEVDF time slice a backend's threads ask Linux for (6.12 on: a fair task's
//! `sched_runtime`; older kernels ignore it). A task that wakes with a shorter slice than the one
//! running takes the CPU from it at once; the slice changes when a task runs, never how much CPU
//! it gets (that is its nice value's weight). A training asks for the longest while it yields
//! (`reco.training_nice` above 0), so serving backends, at the default slice, come first.

/// The longest slice the kernel grants (100 ms).
pub const LONGEST_NS: u64 = 100_000_000;

/// The kernel's `struct sched_attr` (its first version, 56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// The calling thread's scheduling attributes.
fn sched_attr() -> Option<SchedAttr> {
    let mut a = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as libc::c_uint;
    // SAFETY: sched_getattr of the calling thread (pid 0) writes at most `size` bytes into `a`, a
    // live local of that size
    (unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut a, size, 0) } == 0).then_some(a)
}

/// Asks for a slice of `ns` (0: the kernel's default) for the calling thread, keeping its policy
/// and nice value; only the fair policies (SCHED_OTHER, SCHED_BATCH) have a slice. Returns the
/// slice it had when the kernel took the new one.
pub fn set_slice(ns: u64) -> Option<u64> {
    let mut a = sched_attr()?;
    if !matches!(a.policy as i32, libc::SCHED_OTHER | libc::SCHED_BATCH) || a.runtime == ns {
        return None;
    }
    let before = a.runtime;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    a.runtime = ns;
    // SAFETY: sched_setattr of the calling thread reads `a`, a live local, during the call; a
    // fair task may always ask for another slice
    (unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const a, 0) } == 0).then_some(before)
}

/// The calling thread at the longest slice until dropped, then back to the slice it had (also
/// when an error unwinds through the frame that holds it).
pub struct LongSlice(Option<u64>);

impl LongSlice {
    /// At the longest slice when `on`, else nothing changes.
    pub fn new(on: bool) -> Self {
        LongSlice(if on { set_slice(LONGEST_NS) } else { None })
    }
}

impl Drop for LongSlice {
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            set_slice(before);
        }
    }
}
