//! One copy of each serving model per server, in dynamic shared memory.
//!
//! With `pg_reco` in `shared_preload_libraries`, the server reserves a small registry at start-up
//! (a few slots of model id, segment handle, size and state, under one LWLock). The first backend
//! that serves a model reads it from the tables, writes its image ([`reco_engine::serve::flat`])
//! into a new DSM segment, pins the segment and only then marks the slot ready: a backend that
//! fails or is cancelled while loading leaves its slot empty again, and one killed outright takes
//! the whole server through crash recovery, which starts with an empty registry. Either way no
//! half-written model is ever visible. Other backends attach the segment and read the model in
//! place; a backend that asks while another loads waits for it (interruptibly) instead of
//! loading a second copy.
//!
//! When a model is no longer in use (neither deployed nor named by a running experiment), the
//! next backend that loads a model unpins its segment; each backend detaches it when it next
//! serves, and PostgreSQL frees the segment once the last one has. Without the preload, or with
//! `reco.shared_cache = off`, each backend keeps its own copy as before ([`super::cache`]).
use pgrx::lwlock::PgLwLock;
use pgrx::pg_sys;
use pgrx::shmem::PGRXSharedMemory;
use reco_engine::serve::flat::Reader;
use reco_engine::serve::Model;
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// Models the registry holds at once (the deployed one, experiment arms, and one being replaced).
pub const SLOTS: usize = 8;

const EMPTY: u32 = 0;
const LOADING: u32 = 1;
const READY: u32 = 2;

/// A model across the server: its database, id and creation time (ids start again at 1 in
/// another database, or after the extension is dropped and created again).
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
#[repr(C)]
pub struct Key {
    pub db: u32,
    pub model_id: i64,
    /// reco.models.created_at, microseconds since the epoch
    pub created_us: i64,
}

#[derive(Copy, Clone, Default)]
#[repr(C)]
pub struct Slot {
    key: Key,
    state: u32,
    handle: pg_sys::dsm_handle,
    /// the loading backend's pid
    loader: i32,
    bytes: u64,
    /// milliseconds the load took
    load_ms: f64,
    /// the registry's load count when it was published (the oldest goes first over the cap)
    seq: u64,
}

#[derive(Copy, Clone, Default)]
#[repr(C)]
pub struct Registry {
    slots: [Slot; SLOTS],
    /// models written to shared memory since the server started
    loads: u64,
}

// SAFETY: plain numbers only (no pointers): the same bytes mean the same in every backend
unsafe impl PGRXSharedMemory for Registry {}

// SAFETY: initialized by pg_shmem_init! in _PG_init while shared_preload_libraries loads, before
// any backend runs; used only when SHARED says so
static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"pg_reco model registry") };

/// Set in the postmaster's shared-memory start-up hook (and so in every backend it forks): the
/// registry exists. A copy of the library loaded later (not preloaded, or replaced on disk while
/// the server ran) sees false and serves from per-backend copies.
static SHARED: AtomicBool = AtomicBool::new(false);

/// Reserves the registry; call from `_PG_init`.
// (pg_shmem_init! tests the features of other PostgreSQL versions, which this crate does not have)
#[allow(unexpected_cfgs)]
pub fn init() {
    use pgrx::pg_guard;
    // SAFETY: read in _PG_init, on the postmaster's (or a backend's) only thread
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pgrx::pg_shmem_init!(
            REGISTRY = {
                SHARED.store(true, Ordering::Relaxed);
                Registry::default()
            }
        );
    }
}

/// True when this backend can use the shared registry.
pub fn available() -> bool {
    SHARED.load(Ordering::Relaxed)
}

/// A segment this backend has mapped; detached when the last model reading it is dropped.
struct Mapping {
    seg: *mut pg_sys::dsm_segment,
    handle: pg_sys::dsm_handle,
}

// SAFETY: a backend has one thread; the pointer is only used by it (Send + Sync are what the
// engine's `Keep` asks of a guard, not a use across threads)
unsafe impl Send for Mapping {}
// SAFETY: as above
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // at exit PostgreSQL has already detached every segment (and the thread locals may be gone)
        // SAFETY: a flag PostgreSQL sets once, read on the backend's only thread
        if unsafe { pg_sys::proc_exit_inprogress } {
            return;
        }
        let _ = MAPPED.try_with(|m| m.borrow_mut().remove(&self.handle));
        // SAFETY: seg is a mapping this backend attached or created and has not detached
        unsafe { pg_sys::dsm_detach(self.seg) };
    }
}

thread_local! {
    /// the segments this backend maps, so one is never attached twice (never dropped: a
    /// backend's exit detaches everything itself)
    static MAPPED: ManuallyDrop<RefCell<HashMap<pg_sys::dsm_handle, Weak<Mapping>>>> = ManuallyDrop::new(RefCell::new(HashMap::new()));
}

/// The model over a mapped segment.
fn read(map: Arc<Mapping>) -> Result<Model, reco_engine::Error> {
    // SAFETY: the segment is mapped while `map` lives; its first bytes are the image's length
    // (u64), then the image, which the loader wrote completely before marking the slot ready and
    // which nothing writes again; DSM mappings are page-aligned
    unsafe {
        let base = pg_sys::dsm_segment_address(map.seg) as *const u8;
        let len = std::ptr::read(base as *const u64) as usize;
        Reader::new(base.add(8), len, map).and_then(|mut r| Model::read(&mut r))
    }
}

/// Attaches segment `handle` (or reuses this backend's mapping of it); `None` when the segment
/// is gone (unpinned and detached by everyone since the slot was read).
fn attach(handle: pg_sys::dsm_handle) -> Option<Arc<Mapping>> {
    if let Some(m) = MAPPED.with(|m| m.borrow().get(&handle).and_then(Weak::upgrade)) {
        return Some(m);
    }
    // SAFETY: plain calls into PostgreSQL's DSM API from a backend
    let seg = unsafe {
        let seg = pg_sys::dsm_find_mapping(handle);
        let seg = if seg.is_null() { pg_sys::dsm_attach(handle) } else { seg };
        if seg.is_null() {
            return None;
        }
        // keep the mapping past this transaction (it is detached by Mapping's drop)
        pg_sys::dsm_pin_mapping(seg);
        seg
    };
    let m = Arc::new(Mapping { seg, handle });
    MAPPED.with(|x| x.borrow_mut().insert(handle, Arc::downgrade(&m)));
    Some(m)
}

/// Frees the slot this backend claimed for loading unless the load finished (dropped on every
/// way out of a load, an error's unwinding included).
struct Claim {
    key: Key,
    done: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut reg = REGISTRY.exclusive();
        let me = my_pid();
        if let Some(s) = reg.slots.iter_mut().find(|s| s.key == self.key && s.state == LOADING && s.loader == me) {
            *s = Slot::default();
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: looks the pid up in the proc array (under ProcArrayLock, taken inside)
    !unsafe { pg_sys::BackendPidGetProc(pid) }.is_null()
}

/// What [`get`] found.
pub enum Got {
    /// read from shared memory; the load's time when this backend loaded it
    Model(Box<Model>, Option<f64>),
    /// the registry is full of models in use: serve from a private copy
    Full,
    /// the models in shared memory (bytes) and this one's estimate would exceed the cap
    OverCap(u64),
}

/// The model `key` from shared memory, loading it there with `load` when no backend has.
/// `keep` lists this database's models still in use and `databases` the server's databases: the
/// other models' segments are unpinned first. A model whose image fails to read back is an error
/// (XX001), never a partial model.
pub fn get(key: Key, keep: &[Key], databases: &[u32], cap: u64, estimate: u64, load: impl FnOnce() -> (reco_engine::serve::flat::Writer, f64)) -> Got {
    let me = my_pid();
    let mut load = Some(load);
    loop {
        pgrx::check_for_interrupts!();
        let action = {
            let mut reg = REGISTRY.exclusive();
            // let go of the models no longer in use
            let gone = |s: &Slot| if s.key.db == key.db { !keep.contains(&s.key) } else { !databases.contains(&s.key.db) };
            reg.slots.iter_mut().filter(|s| s.state == READY && s.key != key && gone(s)).for_each(release);
            match reg.slots.iter().position(|s| s.key == key && s.state != EMPTY) {
                Some(i) if reg.slots[i].state == READY => Step::Attach(reg.slots[i].handle, i),
                Some(i) if reg.slots[i].loader != me && alive(reg.slots[i].loader) => Step::Wait,
                Some(i) => {
                    // its loader is gone (terminated without unwinding): take the load over
                    reg.slots[i].loader = me;
                    Step::Load
                }
                None => {
                    if !make_room(&mut reg, key, cap.saturating_sub(estimate)) {
                        Step::OverCap(used(&reg))
                    } else if let Some(i) = reg.slots.iter().position(|s| s.state == EMPTY) {
                        reg.slots[i] = Slot { key, state: LOADING, loader: me, ..Slot::default() };
                        Step::Load
                    } else {
                        Step::Full
                    }
                }
            }
        };
        match action {
            Step::Full => return Got::Full,
            Step::OverCap(used) => return Got::OverCap(used),
            Step::Wait => {
                // SAFETY: a plain sleep; interrupts are checked at the top of the loop
                unsafe { pg_sys::pg_usleep(10_000) };
            }
            Step::Attach(handle, i) => match attach(handle) {
                Some(map) => return Got::Model(Box::new(read(map).unwrap_or_else(|e| crate::error::raise(e))), None),
                None => {
                    // unpinned and freed since: clear the slot if it still names that segment
                    let mut reg = REGISTRY.exclusive();
                    if reg.slots[i].handle == handle && reg.slots[i].key == key {
                        reg.slots[i] = Slot::default();
                    }
                }
            },
            Step::Load => {
                let mut claim = Claim { key, done: false };
                let Some(load) = load.take() else { return Got::Full };
                let (image, load_ms) = load();
                let len = image.len();
                // SAFETY: a new segment of 8 + len bytes, written whole before it is published:
                // its length, then the image
                let (seg, handle) = unsafe {
                    let seg = pg_sys::dsm_create(8 + len, 0);
                    let base = pg_sys::dsm_segment_address(seg) as *mut u8;
                    std::ptr::write(base as *mut u64, len as u64);
                    image.copy_to(base.add(8));
                    pg_sys::dsm_pin_mapping(seg);
                    (seg, pg_sys::dsm_segment_handle(seg))
                };
                drop(image);
                // the private model and its image are freed: hand the allocator's free pages
                // back, so the loading backend does not keep the load's peak for its whole life
                // SAFETY: mimalloc (the global allocator) frees only memory no longer in use
                unsafe { libmimalloc_sys::mi_collect(true) };
                let map = Arc::new(Mapping { seg, handle });
                MAPPED.with(|x| x.borrow_mut().insert(handle, Arc::downgrade(&map)));
                let model = read(map).unwrap_or_else(|e| crate::error::raise(e));
                {
                    let mut reg = REGISTRY.exclusive();
                    let seq = reg.loads + 1;
                    // now that its size is known (the estimate is a lower bound), the oldest
                    // other models go while the total would pass the cap (this one alone fits:
                    // a larger one was refused before it was written)
                    make_room(&mut reg, key, cap.saturating_sub((8 + len) as u64));
                    if let Some(s) = reg.slots.iter_mut().find(|s| s.key == key && s.state == LOADING && s.loader == me) {
                        // SAFETY: the segment outlives this backend's mapping until unpinned
                        unsafe { pg_sys::dsm_pin_segment(seg) };
                        *s = Slot { key, state: READY, handle, loader: me, bytes: (8 + len) as u64, load_ms, seq };
                        reg.loads = seq;
                    }
                    // (a slot lost to a waiter that found this backend gone cannot happen while
                    // it runs; if it did, the model still serves this backend from its mapping)
                }
                claim.done = true;
                return Got::Model(Box::new(model), Some(load_ms));
            }
        }
    }
}

/// Unpins a ready slot's segment and empties the slot (PostgreSQL frees the segment once the
/// last backend mapping it detaches).
fn release(s: &mut Slot) {
    // SAFETY: a ready slot's segment was pinned once by its loader, and is unpinned once here
    // (the slot is emptied with it, under the registry's exclusive lock)
    unsafe { pg_sys::dsm_unpin_segment(s.handle) };
    *s = Slot::default();
}

fn my_pid() -> i32 {
    // SAFETY: MyProcPid is this backend's pid, set at start
    unsafe { pg_sys::MyProcPid }
}

/// This backend's database (the registry's keys are per database).
pub fn this_database() -> u32 {
    // SAFETY: MyDatabaseId is set when the backend connects and never changes
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

fn used(reg: &Registry) -> u64 {
    reg.slots.iter().filter(|s| s.state == READY).map(|s| s.bytes).sum()
}

/// Unpins the oldest ready models (other than `key`) until the ready ones take at most `room`
/// bytes, as the per-backend cache lets its least recently used go; false when that cannot be
/// done. The backends that map an unpinned model keep it until they next switch.
fn make_room(reg: &mut Registry, key: Key, room: u64) -> bool {
    while used(reg) > room {
        let Some(s) = reg.slots.iter_mut().filter(|s| s.state == READY && s.key != key).min_by_key(|s| s.seq) else { return false };
        release(s);
    }
    true
}

enum Step {
    OverCap(u64),
    Attach(pg_sys::dsm_handle, usize),
    Wait,
    Load,
    Full,
}

/// The registry's slots of this database (others' are counted, not shown), for `reco.cache_info()`.
pub fn info() -> serde_json::Value {
    if !available() {
        return serde_json::json!({"enabled": false});
    }
    let reg = *REGISTRY.share();
    let db = this_database();
    let state = |s: u32| match s {
        LOADING => "loading",
        READY => "ready",
        _ => "empty",
    };
    let models: Vec<_> = reg
        .slots
        .iter()
        .filter(|s| s.state != EMPTY && s.key.db == db)
        .map(|s| serde_json::json!({"database_oid": s.key.db, "model_id": s.key.model_id, "state": state(s.state), "bytes": s.bytes, "load_ms": (s.load_ms * 10.0).round() / 10.0, "loader_pid": s.loader}))
        .collect();
    let bytes: u64 = reg.slots.iter().filter(|s| s.state == READY).map(|s| s.bytes).sum();
    let used = reg.slots.iter().filter(|s| s.state != EMPTY).count();
    serde_json::json!({"enabled": true, "models": models, "bytes": bytes, "loads": reg.loads, "slots": SLOTS, "slots_used": used})
}
