//! The soak of issue #19 (part 5): a day of mixed load compressed into MINUTES, run by
//! bench/soak.sh on the demo data with a deployed hybrid and the request table bench_req
//! (customer, cart of three buyable items) it builds:
//! - 6 clients calling `recommend` (with the cart; 4 calls in 6), `complements` and
//!   `resolve_preferences`, each `SERVE_RATE` calls a second (default 100);
//! - 2 clients ingesting orders (`ingest_order`, Shopify-shaped) and batches of 20 web events,
//!   each `INGEST_RATE` calls a second (default 10, orders and batches in turn);
//! - a training and deploy every `RETRAIN` seconds (default 300); the second training's backend is
//!   killed with SIGKILL a few seconds in (PostgreSQL then restarts every backend: each client
//!   reconnects, and what failed in the two minutes after the SIGKILL is counted apart); a
//!   training that takes longer than `RETRAIN` is followed by the next at once, and one still
//!   running when the soak ends is cancelled (noted in the window it started in), so the next
//!   run does not start beside it;
//! - a `forget_customer` every `FORGET` seconds (default 60), of a customer outside bench_req.
//!
//! The clients keep a schedule, as an OMS's requests arrive whether or not the last one has been
//! answered: a call's latency counts from when it was due, so a call that waited behind a slow
//! one pays for the wait. A client more than 2 s behind (the server restarting) drops the calls it
//! missed and counts them. `SERVE_RATE=0` runs the serving clients flat out, one call after
//! another (the first soak's load).
//!
//! First the 6 serving clients run alone for `QUIET` seconds (the quiet figures). Then, per
//! window of `WINDOW` seconds (default 300): calls and their p50 / p99 per kind, errors by
//! SQLSTATE, short lists (fewer than 10 items), dropped calls, trainings, forgets, and the
//! server's memory over its processes, read from /proc: the largest PSS in the window; the
//! private (anonymous) part of it, largest and least (the least is the floor between
//! trainings: a leak raises it window after window); and the shared-memory part (shared buffers
//! and the shared model cache's segments).
//!
//! Usage: soak DBNAME MINUTES (environment: RECO_TEST_DSN, RETRAIN, FORGET, WINDOW, QUIET,
//! SERVE_RATE, INGEST_RATE, SAMPLE: seconds between memory samples, 0 for none; KILL_ROUND: the
//! training killed, default 2, 0 for none; TRAIN_SETUP: SQL the training session runs first,
//! e.g. `SET reco.training_threads = 1`, to compare settings).
// a harness: a setup step that fails should stop it where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{dsn, shopify_order};
use postgres::{Client, NoTls};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Window {
    /// per kind of call, the latencies in microseconds of the calls that succeeded
    lat: BTreeMap<&'static str, Vec<u64>>,
    /// per SQLSTATE (or "connection"), the failed calls outside the crash restart
    errors: BTreeMap<String, u64>,
    /// failed calls while the server restarted after the SIGKILL (and the killed call)
    restart_errors: BTreeMap<String, u64>,
    short: u64,
    /// calls a client skipped because it was more than 2 s behind its schedule
    dropped: u64,
    trainings: Vec<String>,
    forgets: u64,
    pss_kb: u64,
    anon_max_kb: u64,
    /// the least private memory seen in the window (None: not sampled yet)
    anon_min_kb: Option<u64>,
    shmem_kb: u64,
}

/// A client's schedule: a call every `every`, or one after another when `every` is zero.
struct Pace {
    every: Duration,
    next: Instant,
}

impl Pace {
    fn new(rate: f64) -> Self {
        Pace { every: if rate > 0.0 { Duration::from_secs_f64(1.0 / rate) } else { Duration::ZERO }, next: Instant::now() }
    }
    /// Waits for the next call and returns when it was due; None when the soak is over. Calls
    /// missed by more than 2 s are dropped (and counted in the window).
    fn due(&mut self, s: &Soak) -> Option<Instant> {
        if self.every.is_zero() {
            return s.running().then(Instant::now);
        }
        let now = Instant::now();
        if now > self.next + Duration::from_secs(2) {
            let missed = (now - self.next).as_secs_f64() / self.every.as_secs_f64();
            s.at(|w| w.dropped += missed as u64);
            self.next = now;
        }
        while s.running() && Instant::now() < self.next {
            thread::sleep((self.next - Instant::now()).min(Duration::from_millis(100)));
        }
        let due = self.next;
        self.next += self.every;
        s.running().then_some(due)
    }
}

struct Soak {
    start: Instant,
    window: Duration,
    stop: AtomicBool,
    /// milliseconds since start when the SIGKILL was sent (0: not yet)
    killed_at_ms: AtomicU64,
    /// the backend of the training running now (0: none), cancelled when the soak ends
    training_pid: AtomicI32,
    windows: Mutex<BTreeMap<u64, Window>>,
    dsn: String,
}

impl Soak {
    fn at<R>(&self, f: impl FnOnce(&mut Window) -> R) -> R {
        self.at_time(Instant::now(), f)
    }
    /// The window that holds `t`.
    fn at_time<R>(&self, t: Instant, f: impl FnOnce(&mut Window) -> R) -> R {
        let w = t.saturating_duration_since(self.start).as_secs() / self.window.as_secs().max(1);
        f(self.windows.lock().unwrap().entry(w).or_default())
    }
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
    /// Whether now is within the restart that follows the SIGKILL: its first two minutes (the
    /// first soak used 30 s and counted one connection error outside them).
    fn in_restart(&self) -> bool {
        let k = self.killed_at_ms.load(Ordering::Relaxed);
        k > 0 && (self.start.elapsed().as_millis() as u64) < k + 120_000
    }
    fn error(&self, e: &postgres::Error) {
        let state = e.code().map_or_else(|| "connection".to_string(), |c| c.code().to_string());
        let restart = self.in_restart();
        self.at(|w| *(if restart { &mut w.restart_errors } else { &mut w.errors }).entry(state).or_default() += 1);
    }
    /// A connection, retried every 200 ms while the server restarts.
    fn connect(&self) -> Option<Client> {
        while self.running() {
            match Client::connect(&self.dsn, NoTls) {
                Ok(c) => return Some(c),
                Err(e) => {
                    self.error(&e);
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        None
    }
    /// Runs one call that was due at `due`, timing it from then (or from the reconnection, when
    /// the connection had to be replaced first) under `kind`.
    fn call(&self, c: &mut Option<Client>, kind: &'static str, due: Instant, f: impl FnOnce(&mut Client) -> Result<bool, postgres::Error>) {
        let mut t0 = due;
        if c.as_ref().is_none_or(Client::is_closed) {
            *c = self.connect();
            t0 = Instant::now();
        }
        let Some(client) = c.as_mut() else { return };
        match f(client) {
            Ok(full) => {
                let us = t0.elapsed().as_micros() as u64;
                self.at(|w| {
                    w.lat.entry(kind).or_default().push(us);
                    if !full {
                        w.short += 1;
                    }
                });
            }
            Err(e) => {
                self.error(&e);
                if client.is_closed() {
                    *c = None;
                }
            }
        }
    }
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

/// The server's memory (kB) summed over the processes named postgres.
#[derive(Default)]
struct Memory {
    pss: u64,
    /// PSS of private (anonymous) memory: the backends' own heaps, model copies and trainings
    anon: u64,
    /// PSS of shared memory: shared buffers and dynamic shared memory segments
    shmem: u64,
}

fn server_memory() -> Memory {
    let mut m = Memory::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = entry.path();
        if !std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
            continue;
        }
        for line in std::fs::read_to_string(p.join("smaps_rollup")).unwrap_or_default().lines() {
            let kb = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if line.starts_with("Pss:") {
                m.pss += kb(line);
            } else if line.starts_with("Pss_Anon:") {
                m.anon += kb(line);
            } else if line.starts_with("Pss_Shmem:") {
                m.shmem += kb(line);
            }
        }
    }
    m
}

fn serve(s: &Soak, reqs: &[(String, Vec<String>)], seed: usize, rate: f64) {
    let mut c = s.connect();
    let mut i = seed;
    let mut pace = Pace::new(rate);
    while let Some(due) = pace.due(s) {
        i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let (customer, cart) = &reqs[(i >> 33) % reqs.len()];
        match (i >> 20) % 6 {
            0..=3 => s.call(&mut c, "recommend", due, |c| {
                let n: i64 = c.query_one("SELECT count(*) FROM reco.recommend($1, 10, jsonb_build_object('cart', $2::text[]))", &[customer, cart])?.get(0);
                Ok(n == 10)
            }),
            4 => s.call(&mut c, "complements", due, |c| {
                let n: i64 = c.query_one("SELECT count(*) FROM reco.complements($1::text[], 10, $2)", &[cart, customer])?.get(0);
                Ok(n == 10)
            }),
            _ => s.call(&mut c, "resolve_preferences", due, |c| {
                c.query_one("SELECT reco.resolve_preferences($1)::text", &[customer])?;
                Ok(true)
            }),
        }
    }
}

fn ingest(s: &Soak, reqs: &[(String, Vec<String>)], client_no: u64, nonce: u64, rate: f64) {
    let mut c = s.connect();
    let mut k: u64 = 0;
    let mut pace = Pace::new(rate);
    while let Some(due) = pace.due(s) {
        k += 1;
        if k.is_multiple_of(2) {
            // an order: unique per run, client and call
            let order = shopify_order(nonce * 10_000_000 + client_no * 1_000_000 + k, 1 + k % 3).to_string();
            s.call(&mut c, "ingest_order", due, |c| c.query_one("SELECT reco.ingest_order('shopify', $1::text::jsonb)", &[&order]).map(|_| true));
        } else {
            // 20 web events of bench_req's customers: views and cart adds of their cart items
            let events: Vec<serde_json::Value> = (0..20u64)
                .map(|e| {
                    let (customer, cart) = &reqs[((k * 20 + e) as usize * 7919 + client_no as usize) % reqs.len()];
                    serde_json::json!({"event": if e % 5 == 0 { "add_to_cart" } else { "view_item" }, "user_id": customer,
                                       "sku": cart[(e as usize) % cart.len()]})
                })
                .collect();
            let batch = serde_json::Value::Array(events).to_string();
            s.call(&mut c, "ingest_events", due, |c| {
                let failed: i64 = c.query_one("SELECT failed FROM reco.ingest_events('web', $1::text::jsonb)", &[&batch])?.get(0);
                Ok(failed == 0)
            });
        }
    }
}

fn train(s: &Arc<Soak>, every: Duration) {
    let kill_round: u64 = std::env::var("KILL_ROUND").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let setup = std::env::var("TRAIN_SETUP").unwrap_or_default();
    let mut round = 0;
    let mut next = s.start + every;
    while s.running() {
        if Instant::now() < next {
            thread::sleep(Duration::from_millis(200));
            continue;
        }
        next += every;
        round += 1;
        let Some(mut c) = s.connect() else { return };
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        // a harness stopped mid-training (Ctrl-C, a panic) must not leave its training running
        // in the server: the backend checks its client every second and stops when it is gone
        c.batch_execute("SET client_connection_check_interval = '1s'").unwrap();
        if !setup.is_empty() {
            c.batch_execute(&setup).unwrap();
        }
        // the second training is killed a few seconds in
        let killer = (round == kill_round).then(|| {
            let s = s.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_secs(4));
                s.killed_at_ms.store(s.start.elapsed().as_millis() as u64, Ordering::Relaxed);
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            })
        });
        let t0 = Instant::now();
        s.training_pid.store(pid, Ordering::Relaxed);
        let r = c.query_one("SELECT reco.deploy(reco.train('hybrid'))", &[]);
        s.training_pid.store(0, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        // a training still running when the soak ends is cancelled (below, in main): it is
        // neither an error nor part of the figures, and the next run starts on a quiet server
        if !s.running() && matches!(&r, Err(e) if e.code().map(|c| c.code()) == Some("57014")) {
            // (noted in the window it started in: the soak's last windows are the ones printed)
            s.at_time(t0, |w| w.trainings.push(format!("started here, cancelled at the end of the soak after {secs:.0} s")));
            break;
        }
        if let Some(h) = killer {
            h.join().unwrap();
        }
        let note = match &r {
            Ok(_) => format!("trained and deployed in {secs:.0} s"),
            Err(e) if round == kill_round => format!("killed (SIGKILL) after {secs:.0} s: {}", e.code().map_or("connection lost", |c| c.code())),
            Err(e) => format!("FAILED after {secs:.0} s: {e}"),
        };
        if let (Err(e), false) = (&r, round == kill_round) {
            s.error(e);
        }
        s.at(|w| w.trainings.push(note));
    }
}

fn forget(s: &Soak, every: Duration) {
    let mut next = s.start + every;
    let mut c = s.connect();
    while s.running() {
        if Instant::now() < next {
            thread::sleep(Duration::from_millis(200));
            continue;
        }
        next += every;
        s.call(&mut c, "forget_customer", Instant::now(), |c| {
            c.query_one(
                "SELECT reco.forget_customer(x.customer_id)::text FROM (SELECT customer_id FROM reco.customers c
                  WHERE NOT EXISTS (SELECT 1 FROM bench_req b WHERE b.customer_id = c.customer_id) ORDER BY random() LIMIT 1) x",
                &[],
            )?;
            Ok(true)
        });
        s.at(|w| w.forgets += 1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = args.get(1).cloned().unwrap_or_else(|| "reco_bench_soak_medium".into());
    let minutes: u64 = args.get(2).and_then(|m| m.parse().ok()).unwrap_or(30);
    let (retrain, forget_every, window, quiet) = (env_secs("RETRAIN", 300), env_secs("FORGET", 60), env_secs("WINDOW", 300), env_secs("QUIET", 60));
    let rate = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (serve_rate, ingest_rate) = (rate("SERVE_RATE", 100.0), rate("INGEST_RATE", 10.0));
    let dsn = dsn(&db);
    let mut c = Client::connect(&dsn, NoTls).expect("is the project cluster running, with the soak database? (bench/soak.sh)");
    let reqs: Arc<Vec<(String, Vec<String>)>> =
        Arc::new(c.query("SELECT customer_id, cart FROM bench_req ORDER BY n", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect());
    assert!(!reqs.is_empty(), "bench_req is empty");
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 100_000;
    drop(c);

    // quiet: the serving clients alone
    let quiet_soak = Arc::new(Soak {
        start: Instant::now(),
        // (one window: the calls that end after the stop belong to it too)
        window: quiet * 1000,
        stop: AtomicBool::new(false),
        killed_at_ms: AtomicU64::new(0),
        training_pid: AtomicI32::new(0),
        windows: Mutex::new(BTreeMap::new()),
        dsn: dsn.clone(),
    });
    let hs: Vec<_> = (0..6)
        .map(|i| {
            let (s, r) = (quiet_soak.clone(), reqs.clone());
            thread::spawn(move || serve(&s, &r, i * 7 + 1, serve_rate))
        })
        .collect();
    thread::sleep(quiet);
    quiet_soak.stop.store(true, Ordering::Relaxed);
    hs.into_iter().for_each(|h| h.join().unwrap());
    let mut quiet_p99 = BTreeMap::new();
    for w in quiet_soak.windows.lock().unwrap().values_mut() {
        for (k, v) in &mut w.lat {
            println!(
                "quiet ({} s, 6 serving clients alone, {serve_rate} calls/s each): {k} {} calls, p50 {:.2} ms, p99 {:.2} ms",
                quiet.as_secs(),
                v.len(),
                pct(v, 0.5),
                pct(v, 0.99)
            );
            quiet_p99.insert(*k, pct(v, 0.99));
        }
    }

    let s = Arc::new(Soak {
        start: Instant::now(),
        window,
        stop: AtomicBool::new(false),
        killed_at_ms: AtomicU64::new(0),
        training_pid: AtomicI32::new(0),
        windows: Mutex::new(BTreeMap::new()),
        dsn,
    });
    let mut hs = Vec::new();
    for i in 0..6 {
        let (s, r) = (s.clone(), reqs.clone());
        hs.push(thread::spawn(move || serve(&s, &r, i * 13 + 5, serve_rate)));
    }
    for i in 0..2 {
        let (s, r) = (s.clone(), reqs.clone());
        hs.push(thread::spawn(move || ingest(&s, &r, i, nonce, ingest_rate)));
    }
    {
        let s = s.clone();
        hs.push(thread::spawn(move || train(&s, retrain)));
    }
    {
        let s = s.clone();
        hs.push(thread::spawn(move || forget(&s, forget_every)));
    }
    // the memory sampler reads /proc/PID/smaps_rollup of every server process (SAMPLE seconds
    // apart; 0: never, to see what the reading itself costs the serving calls)
    let sample = env_secs("SAMPLE", 5);
    if !sample.is_zero() {
        let s = s.clone();
        hs.push(thread::spawn(move || {
            while s.running() {
                let m = server_memory();
                s.at(|w| {
                    w.pss_kb = w.pss_kb.max(m.pss);
                    w.anon_max_kb = w.anon_max_kb.max(m.anon);
                    w.anon_min_kb = Some(w.anon_min_kb.map_or(m.anon, |a| a.min(m.anon)));
                    w.shmem_kb = w.shmem_kb.max(m.shmem);
                });
                thread::sleep(sample);
            }
        }));
    }
    thread::sleep(Duration::from_secs(minutes * 60));
    s.stop.store(true, Ordering::Relaxed);
    // a training that outlasts the soak (one starts as soon as the last ends when they take
    // longer than RETRAIN) is cancelled rather than waited for
    let pid = s.training_pid.load(Ordering::Relaxed);
    if pid != 0 {
        if let Ok(mut c) = Client::connect(&s.dsn, NoTls) {
            let _ = c.query_one("SELECT pg_cancel_backend($1)", &[&pid]);
        }
    }
    hs.into_iter().for_each(|h| h.join().unwrap());

    let (mut errors, mut short, mut dropped, mut worst) = (0u64, 0u64, 0u64, 0f64);
    let mut floors = Vec::new();
    // (the windows inside the soak: the calls that ended after the stop are left out)
    let windows = (minutes * 60).div_ceil(window.as_secs().max(1));
    for (n, w) in s.windows.lock().unwrap().iter_mut().filter(|(n, _)| **n < windows) {
        let from = n * window.as_secs();
        println!("window {}–{} min:", from / 60, (from + window.as_secs()) / 60);
        for (k, v) in &mut w.lat {
            let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
            let ratio = quiet_p99.get(k).map(|q| p99 / q);
            if let Some(r) = ratio {
                worst = worst.max(r);
            }
            println!(
                "  {k:<20} {:>8} calls {:>8.1}/s  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms{}",
                v.len(),
                v.len() as f64 / window.as_secs_f64(),
                ratio.map_or(String::new(), |r| format!("  ({r:.2}x quiet p99)"))
            );
        }
        println!("  errors: {:?}; in the restart after the SIGKILL: {:?}; short lists: {}; dropped calls: {}", w.errors, w.restart_errors, w.short, w.dropped);
        println!("  trainings: {:?}; forgets: {}", w.trainings, w.forgets);
        let floor = w.anon_min_kb.unwrap_or(0) / 1024;
        println!("  server memory: PSS {} MB at most; private {floor}–{} MB; shared {} MB at most", w.pss_kb / 1024, w.anon_max_kb / 1024, w.shmem_kb / 1024);
        errors += w.errors.values().sum::<u64>();
        short += w.short;
        dropped += w.dropped;
        floors.push(floor);
    }
    println!(
        "summary: {errors} errors outside the restart, {short} short lists, {dropped} dropped calls, serving p99 at most {worst:.2}x the quiet p99, \
         the server's private memory at its least per window (MB) {floors:?}"
    );
}
