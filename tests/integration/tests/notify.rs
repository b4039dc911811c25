//! The notification queue under failure: four workers drain the e-mail queue that
//! reco.send_due filled while one of them is killed (`kill -9` of its backend, which makes
//! PostgreSQL restart every connection) holding messages. Nothing is lost, and no message is
//! delivered twice within its visibility window. Two senders at once keep a customer's caps.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fresh_db};
use postgres::{Client, NoTls};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MESSAGES: i64 = 400;
const VISIBILITY_SECONDS: i32 = 4;

/// Connects, retrying while the server restarts after the kill.
fn reconnect(dsn: &str) -> Client {
    let start = Instant::now();
    loop {
        match Client::connect(dsn, NoTls) {
            Ok(c) => return c,
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("could not reconnect within a minute: {e}"),
        }
    }
}

/// Whether an error is the crash restart (the connection went), not a bug.
fn disconnected(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(c))
        || e.as_db_error().is_none()
}

/// One worker: read a few messages with a visibility timeout, render each, record the
/// delivery, archive it. Reconnects after the crash restart. Stops when the queue stays empty.
fn worker(dsn: String, id: i32, done: Arc<AtomicBool>) {
    let mut c = reconnect(&dsn);
    let mut idle_since: Option<Instant> = None;
    while !done.load(Ordering::Relaxed) {
        let rows = match c.query("SELECT msg_id, (message->>'candidate_id')::int8, vt FROM pgmq.read('reco_email', $1, 5)", &[&VISIBILITY_SECONDS]) {
            Ok(r) => r,
            Err(e) if disconnected(&e) => {
                c = reconnect(&dsn);
                continue;
            }
            Err(e) => panic!("worker {id}: read failed: {e}"),
        };
        if rows.is_empty() {
            let since = *idle_since.get_or_insert_with(Instant::now);
            // the killed worker's messages come back after the visibility timeout
            if since.elapsed() > Duration::from_secs(3 * VISIBILITY_SECONDS as u64) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        idle_since = None;
        for r in rows {
            let msg_id: i64 = r.get(0);
            let candidate: i64 = r.get(1);
            // the time this read hides the message until
            let vt: std::time::SystemTime = r.get(2);
            let step = c
                .query_one("SELECT dropped_reason IS NULL AND text_body <> '' FROM reco.render($1)", &[&candidate])
                .and_then(|r| {
                    assert!(r.get::<_, bool>(0), "candidate {candidate} did not render");
                    c.execute("INSERT INTO delivered (msg_id, worker, vt) VALUES ($1, $2, $3)", &[&msg_id, &id, &vt])
                })
                .and_then(|_| c.query_one("SELECT pgmq.archive('reco_email', $1::int8)", &[&msg_id]));
            match step {
                Ok(_) => {}
                Err(e) if disconnected(&e) => {
                    c = reconnect(&dsn);
                    break;
                }
                Err(e) => panic!("worker {id}: delivering message {msg_id} failed: {e}"),
            }
        }
    }
}

#[test]
fn four_workers_and_a_killed_one_deliver_every_message_once_per_visibility_window() {
    let db = fresh_db("it_notify_queue");
    let mut c = connect(&db);
    c.batch_execute(&format!(
        "CREATE EXTENSION pgmq;
         SELECT reco.setup_queues();
         CREATE TABLE delivered (msg_id bigint NOT NULL, worker int NOT NULL, vt timestamptz NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
         INSERT INTO reco.items (item_id, title, price, currency) SELECT 'i' || n, 'Item ' || n, n, 'EUR' FROM generate_series(1, 5) n;
         INSERT INTO reco.stock (item_id, available) SELECT 'i' || n, 100 FROM generate_series(1, 5) n;
         INSERT INTO reco.customers (customer_id, email_opt_in, timezone) SELECT 'c' || n, true, 'UTC' FROM generate_series(1, {MESSAGES}) n;
         UPDATE reco.notification_channels SET quiet_start = 0, quiet_end = 0;
         INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('t', 'Hi', '{{{{ items[0].title }}}} {{{{ items[0].price }}}}');
         INSERT INTO reco.triggers (name, kind, template) VALUES ('cart', 'abandoned_cart', 't');
         INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
         SELECT 'c' || n, 'cart', 'cart', ARRAY['i1', 'i2'], ARRAY['', ''], now(), now() FROM generate_series(1, {MESSAGES}) n;"
    ))
    .unwrap();
    let queued: i64 = c.query_one("SELECT count(*) FROM reco.send_due() WHERE outcome = 'queued'", &[]).unwrap().get(0);
    assert_eq!(queued, MESSAGES);
    // a replay queues nothing
    let again: i64 = c.query_one("SELECT count(*) FROM reco.send_due()", &[]).unwrap().get(0);
    assert_eq!(again, 0);

    // the victim takes messages and holds them; its backend is killed with SIGKILL
    let mut victim = connect(&db);
    let held: Vec<i64> = victim.query("SELECT msg_id FROM pgmq.read('reco_email', $1, 7)", &[&VISIBILITY_SECONDS]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(held.len(), 7);
    let pid: i32 = victim.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);

    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (1..=4)
        .map(|id| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || worker(db, id, done))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let st = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(st.success(), "kill -9 {pid} failed");
    drop(victim);
    let deadline = Instant::now() + Duration::from_secs(120);
    for w in workers {
        while !w.is_finished() {
            assert!(Instant::now() < deadline, "the workers did not drain the queue within two minutes");
            std::thread::sleep(Duration::from_millis(100));
        }
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);

    let mut c = reconnect(&db);
    // nothing lost: every queued message was delivered, and the queue is empty
    let (distinct, left): (i64, i64) = {
        let r = c.query_one("SELECT (SELECT count(DISTINCT msg_id) FROM delivered), (SELECT count(*) FROM pgmq.q_reco_email)", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(distinct, MESSAGES, "messages lost");
    assert_eq!(left, 0);
    // the victim's messages were delivered by others, after their visibility timeout
    let by: HashMap<i64, i64> =
        c.query("SELECT msg_id, count(*) FROM delivered WHERE msg_id = ANY ($1) GROUP BY 1", &[&held]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(by.len(), held.len(), "a held message was never delivered: {by:?}");
    // at most once per visibility window: a message delivered twice (its worker died between
    // delivering and archiving) was read again only after the first read's window closed
    let early: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT vt - make_interval(secs => $1) AS read_at, lag(vt) OVER (PARTITION BY msg_id ORDER BY vt) AS hidden_until
                                   FROM delivered) d
             WHERE read_at < hidden_until",
            &[&(VISIBILITY_SECONDS as f64)],
        )
        .unwrap()
        .get(0);
    let twice: i64 = c.query_one("SELECT count(*) - count(DISTINCT msg_id) FROM delivered", &[]).unwrap().get(0);
    eprintln!("{MESSAGES} messages, {} held by the killed worker, {twice} delivered again after a worker died before archiving", held.len());
    assert_eq!(early, 0, "a message was delivered twice within its visibility window");
}

/// Late events under concurrency: a view committed after the run that covered its time is
/// found by a later run, whether its writer commits while a run waits for it (the run then sees
/// it) or holds its transaction past the run's one-second wait (that run skips late events and
/// keeps its watermark, and the next one finds it). Ids are taken in order but need not commit
/// in order: a run must never move its watermark past an id it could not see.
#[test]
fn a_view_committed_after_the_run_that_covered_its_time_still_fires_its_trigger() {
    let db = fresh_db("it_notify_late");
    let mut c = connect(&db);
    c.batch_execute(
        "INSERT INTO reco.items (item_id, title, price, currency) SELECT 'i' || n, 'Item ' || n, n, 'EUR' FROM generate_series(1, 3) n;
         INSERT INTO reco.stock (item_id, available) SELECT 'i' || n, 100 FROM generate_series(1, 3) n;
         INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('early', true), ('slow', true), ('other', true);
         INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('t', 'Hi', '{% for i in items %}{{ i.title }}{% endfor %}');
         INSERT INTO reco.triggers (name, kind, template, params)
         VALUES ('look', 'long_view', 't', '{\"min_seconds\": 180, \"wait_minutes\": 60, \"lookback_hours\": 24}');
         SELECT * FROM reco.run_triggers(now => '2026-05-01 12:00+00');",
    )
    .unwrap();
    let view =
        |who: &str| format!("SELECT reco.record_event('{who}', 'i1', 'view', value => 300, session_id => '{who}', occurred_at => '2026-05-01 09:00+00')");
    let run = |c: &mut Client, at: &str| -> (i32, Duration) {
        let t = Instant::now();
        let n: i32 = c.query_one(&format!("SELECT candidates FROM reco.run_triggers(now => '{at}', only_trigger => 'look')"), &[]).unwrap().get(0);
        (n, t.elapsed())
    };
    let watermark = |c: &mut Client| -> i64 { c.query_one("SELECT coalesce(last_event_id, -1) FROM reco.triggers WHERE name = 'look'", &[]).unwrap().get(0) };

    // 1. the writer takes its id, then a run starts and waits for it; the writer commits 300 ms in
    let mut early = connect(&db);
    early.batch_execute(&format!("BEGIN; {};", view("early"))).unwrap();
    let committer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        early.batch_execute("COMMIT").unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    let (n, took) = run(&mut c, "2026-05-01 13:00+00");
    committer.join().unwrap();
    assert_eq!(n, 1, "the run waited for the writer in flight and found its late view");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "the run waited for the writer ({took:?})");
    let after_first = watermark(&mut c);

    // 2. a writer holds its transaction past the run's wait: the run skips late events this
    //    round (and keeps its watermark), other customers' late views wait for the next run
    let mut slow = connect(&db);
    slow.batch_execute(&format!("BEGIN; {};", view("slow"))).unwrap();
    c.batch_execute(&view("other")).unwrap();
    let (n, took) = run(&mut c, "2026-05-01 14:00+00");
    assert_eq!(n, 0, "nothing late is read while a writer is in flight past the wait");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "the run waited about a second ({took:?})");
    assert_eq!(watermark(&mut c), after_first, "the watermark did not move past an id it could not see");
    slow.batch_execute("COMMIT").unwrap();
    let (n, _) = run(&mut c, "2026-05-01 15:00+00");
    assert_eq!(n, 2, "the next run found both late views");
    let who: Vec<String> = c.query("SELECT customer_id FROM reco.notification_candidates ORDER BY 1", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(who, ["early", "other", "slow"]);
    assert_eq!(run(&mut c, "2026-05-01 16:00+00").0, 0, "each late view fired once");
}

/// The render worker (the thread named "pg_reco render") of a backend, by its voluntary context
/// switches: it blocks for its next job after each one, so each job handed to it adds at least one.
/// Read once the worker is asleep (waiting for a job): right after a job it may not have blocked
/// yet, and its count would still move. (Gives up waiting after 2 s and reads what is there.)
fn render_worker_switches(pid: i32) -> Vec<u64> {
    let read = || -> Vec<(bool, u64)> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "pg_reco render"))
            .filter_map(|t| {
                let status = std::fs::read_to_string(t.path().join("status")).ok()?;
                let asleep = status.lines().any(|l| l.starts_with("State:") && l.contains("(sleeping)"));
                let n = status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok())?;
                Some((asleep, n))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let w = read();
        if w.iter().all(|(asleep, _)| *asleep) || Instant::now() > deadline {
            return w.into_iter().map(|(_, n)| n).collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_template_bounded_by_its_text_renders_on_the_backend_and_a_growing_one_on_the_worker() {
    let db = fresh_db("it_notify_inline");
    let mut c = connect(&db);
    c.batch_execute(
        "INSERT INTO reco.items (item_id, title, price, currency) VALUES ('i1', 'Kettle <b>', 19.99, 'EUR'), ('i2', 'Mug', 5, 'EUR');
         INSERT INTO reco.stock (item_id, available) VALUES ('i1', 3), ('i2', 100);
         INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('c1', true), ('c2', true);
         INSERT INTO reco.email_templates (name, subject, html_body, text_body) VALUES
           ('plain', 'Hi {{ customer.id }}', '{% for i in items %}<p>{{ i.title }}</p>{% endfor %}',
            '{% for i in items %}{{ i.title|upper }} {{ i.price }} {{ i.availability }};{% endfor %}'),
           ('grows', 'Hi', NULL, '{% set t = items[0].title ~ items[0].title %}{{ t|length }} {{ t }}');
         INSERT INTO reco.triggers (name, kind, template) VALUES ('p', 'abandoned_cart', 'plain'), ('g', 'abandoned_cart', 'grows');
         INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
         VALUES ('c1', 'p', 's', ARRAY['i1', 'i2'], ARRAY['', ''], now(), now()), ('c2', 'g', 's', ARRAY['i1'], ARRAY[''], now(), now());",
    )
    .unwrap();
    let mut r = connect(&db);
    let pid: i32 = r.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let render = |r: &mut Client, trigger: &str| -> (String, Option<String>, String) {
        let row = r
            .query_one(
                "SELECT subject, html_body, text_body FROM reco.render((SELECT candidate_id FROM reco.notification_candidates WHERE trigger_name = $1))",
                &[&trigger],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    // the first render compiles the template, on the worker (compiling folds constants, which
    // may be large); the render itself reads only its context and runs on the backend
    let (subject, html, text) = render(&mut r, "p");
    assert_eq!(subject, "Hi c1");
    assert_eq!(html.as_deref(), Some("<p>Kettle &lt;b&gt;</p><p>Mug</p>"), "the HTML body is escaped as before");
    assert_eq!(text, "KETTLE <B> 19.99 EUR Only 3 left;MUG 5.00 EUR In stock;");
    let before = render_worker_switches(pid);
    assert_eq!(before.len(), 1, "the compile started one worker");
    for _ in 0..20 {
        assert_eq!(render(&mut r, "p").0, "Hi c1");
    }
    assert_eq!(render_worker_switches(pid), before, "20 renders of a bounded template handed nothing to the worker");
    // `set` may grow a value without bound: its compile and each render go to the worker
    let (_, html, text) = render(&mut r, "g");
    assert_eq!((html, text.as_str()), (None, "20 Kettle <b>Kettle <b>"));
    let after_compile = render_worker_switches(pid);
    assert_eq!(render(&mut r, "g").2, "20 Kettle <b>Kettle <b>");
    let after = render_worker_switches(pid);
    assert_eq!(after.len(), 1, "the same worker");
    assert!(after[0] > after_compile[0], "a render of a growing template ran on the worker: {after_compile:?} then {after:?}");
}

/// Two reco.send_due calls at once: the second waits for the first to commit and then counts
/// its sends, so a customer with a candidate in each sender's batch still gets one e-mail a day
/// (before the senders were serialized, SKIP LOCKED handed each sender one of the two, and each
/// saw room for it).
/// A database for the senders' tests: pgmq and its queues, CUSTOMERS customers opted in (UTC,
/// no quiet hours, one e-mail a day), and two candidates each, from triggers `cart` (priority
/// 10, due a minute ago) and `look` (priority 20, due at now() + `look_due`).
fn senders_db(name: &str, customers: i64, look_due: &str) -> String {
    let db = fresh_db(name);
    connect(&db)
        .batch_execute(&format!(
            "CREATE EXTENSION pgmq;
             SELECT reco.setup_queues();
             INSERT INTO reco.items (item_id, title, price, currency) SELECT 'i' || n, 'Item ' || n, n, 'EUR' FROM generate_series(1, 3) n;
             INSERT INTO reco.stock (item_id, available) SELECT 'i' || n, 100 FROM generate_series(1, 3) n;
             INSERT INTO reco.customers (customer_id, email_opt_in, timezone) SELECT 'c' || n, true, 'UTC' FROM generate_series(1, {customers}) n;
             UPDATE reco.notification_channels SET quiet_start = 0, quiet_end = 0, max_per_day = 1, max_per_week = 7;
             INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('t', 'Hi', '{{{{ items[0].title }}}}');
             INSERT INTO reco.triggers (name, kind, template, priority) VALUES ('cart', 'abandoned_cart', 't', 10), ('look', 'long_view', 't', 20);
             INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
             SELECT 'c' || n, t, 'i1', ARRAY['i1', 'i2'], ARRAY['', ''],
                    now() + CASE t WHEN 'look' THEN interval '{look_due}' ELSE interval '-1 minute' END, now() - interval '1 minute'
             FROM generate_series(1, {customers}) n, unnest(ARRAY['cart', 'look']) t;"
        ))
        .unwrap();
    db
}

/// Waits until one session of this database waits on an advisory lock in `send_due`; fails when
/// `sender` finishes first (it did not wait) or after 20 s.
fn wait_for_senders_lock<T>(c: &mut Client, sender: &std::thread::JoinHandle<T>, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = c
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory' AND query LIKE '%send_due%'", &[])
            .unwrap()
            .get(0);
        if waiting == 1 {
            return;
        }
        assert!(!sender.is_finished(), "{who} finished while the first sender had not committed");
        assert!(Instant::now() < deadline, "{who} did not wait on the senders' lock within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_senders_at_once_keep_each_customers_day_cap() {
    const CUSTOMERS: i64 = 20;
    let db = senders_db("it_notify_senders", CUSTOMERS, "-1 minute");
    let mut c = connect(&db);
    // the first sender takes the priority-first half (every customer's cart candidate) and holds
    // its transaction open
    let mut first = connect(&db);
    let mut tx = first.transaction().unwrap();
    let queued: i64 = tx.query_one(&format!("SELECT count(*) FROM reco.send_due(max_messages => {CUSTOMERS}) WHERE outcome = 'queued'"), &[]).unwrap().get(0);
    assert_eq!(queued, CUSTOMERS);
    // the second sender, meanwhile, on its own connection
    let second = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = connect(&db);
            let rows = c.query("SELECT outcome, count(*) FROM reco.send_due() GROUP BY outcome ORDER BY 1", &[]).unwrap();
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect::<Vec<_>>()
        })
    };
    // it waits on the senders' lock (not on a row: the other half is not locked by anyone)
    wait_for_senders_lock(&mut c, &second, "the second sender");
    tx.commit().unwrap();
    let outcomes = second.join().unwrap();
    assert_eq!(outcomes, vec![("skipped: frequency cap".to_string(), CUSTOMERS)], "the second sender saw the first one's sends");
    let per_customer: Vec<i64> = c.query("SELECT count(*) FROM reco.notification_sends GROUP BY customer_id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(per_customer, vec![1; CUSTOMERS as usize], "one send per customer today");
    let messages: i64 = c.query_one("SELECT count(*) FROM pgmq.q_reco_email", &[]).unwrap().get(0);
    assert_eq!(messages, CUSTOMERS);
    // the capped half waits for tomorrow, pending
    let pending: i64 = c.query_one("SELECT count(*) FROM reco.notification_candidates WHERE status = 'pending' AND trigger_name = 'look'", &[]).unwrap().get(0);
    assert_eq!(pending, CUSTOMERS);
}

/// A run decides the cooldown (and consent) for all of a trigger's subjects in one statement.
/// Checked subject by subject, the cooldown's cached plan was the one made while the candidates
/// table was empty (as after a clean-up and vacuum): a scan of every candidate the run had
/// recorded so far, for each subject (quadratic: 51 of a run's 72 s in bench/notify.sh). Counted
/// in rows read, not time: the table's rows read in the run's transaction stay within a few
/// passes over what it holds, however many subjects there are. A long view of one item in two
/// sessions is one subject, one candidate.
#[test]
fn a_run_reads_the_candidates_once_for_all_its_subjects_and_records_one_per_subject() {
    const CUSTOMERS: i64 = 300;
    let db = fresh_db("it_notify_cooldown");
    let mut c = connect(&db);
    c.batch_execute(&format!(
        "INSERT INTO reco.items (item_id, title, price, currency) SELECT 'i' || n, 'Item ' || n, n, 'EUR' FROM generate_series(1, 3) n;
         INSERT INTO reco.stock (item_id, available) SELECT 'i' || n, 100 FROM generate_series(1, 3) n;
         INSERT INTO reco.customers (customer_id, email_opt_in) SELECT 'c' || n, true FROM generate_series(1, {CUSTOMERS}) n;
         INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('twice', true), ('buyer', false), ('silent', false);
         INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('t', 'Hi', '{{% for i in items %}}{{{{ i.title }}}}{{% endfor %}}');
         INSERT INTO reco.triggers (name, kind, template, params, priority) VALUES
           ('cart', 'abandoned_cart', 't', '{{\"wait_hours\": 4, \"show\": \"cart\", \"lookback_hours\": 24}}', 10),
           ('look', 'long_view', 't', '{{\"min_seconds\": 180, \"wait_minutes\": 60, \"lookback_hours\": 24}}', 20);
         SELECT count(reco.record_event('c' || n, 'i1', 'cart_add', occurred_at => '2026-05-01 08:00+00')) FROM generate_series(1, {CUSTOMERS}) n;
         SELECT count(reco.record_event('silent', 'i1', 'cart_add', occurred_at => '2026-05-01 08:00+00'));
         SELECT count(reco.record_event('twice', 'i2', 'view', value => 300, session_id => s, occurred_at => t))
         FROM (VALUES ('a', '2026-05-01 09:00+00'::timestamptz), ('b', '2026-05-01 10:00+00')) v(s, t);
         SELECT count(reco.record_event('buyer', 'i3', 'purchase', occurred_at => '2026-04-30 10:00+00'));"
    ))
    .unwrap();
    c.batch_execute("VACUUM ANALYZE reco.notification_candidates").unwrap();
    let mut tx = c.transaction().unwrap();
    let made: Vec<(String, i32)> = tx
        .query("SELECT trigger_name, candidates FROM reco.run_triggers(now => '2026-05-01 14:00+00')", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let read: i64 = tx
        .query_one(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE relid = 'reco.notification_candidates'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    assert_eq!(
        made,
        [("cart".to_string(), CUSTOMERS as i32), ("look".to_string(), 1)],
        "one candidate per consenting customer's cart, one for the two sessions' view"
    );
    assert!(read <= 4 * (CUSTOMERS + 1), "the run read {read} candidate rows for {} subjects: a scan per subject", CUSTOMERS + 1);
    // a second run within the cooldown records nothing (the candidates are there, and checked)
    let again: i64 = c.query_one("SELECT coalesce(sum(candidates), 0) FROM reco.run_triggers(now => '2026-05-01 15:00+00')", &[]).unwrap().get(0);
    assert_eq!(again, 0);
}

/// A call of `send_due` reads about what it takes: each trigger's earliest `max_messages` due
/// candidates from the due index, not every due candidate (which it had sorted on every call:
/// the default batch of 1 000 under a backlog re-read the whole backlog each time). Counted in
/// rows read in the call's transaction, not time. The priority order holds across triggers.
#[test]
fn a_send_due_call_reads_what_it_takes_not_the_whole_backlog() {
    const DUE: i64 = 3000;
    let db = fresh_db("it_notify_backlog");
    let mut c = connect(&db);
    c.batch_execute(&format!(
        "CREATE EXTENSION pgmq;
         SELECT reco.setup_queues();
         INSERT INTO reco.items (item_id, title, price, currency) VALUES ('i1', 'Item', 1, 'EUR');
         INSERT INTO reco.stock (item_id, available) VALUES ('i1', 100);
         INSERT INTO reco.customers (customer_id, email_opt_in, timezone) SELECT 'c' || n, true, 'UTC' FROM generate_series(1, {DUE}) n;
         UPDATE reco.notification_channels SET quiet_start = 0, quiet_end = 0, max_per_day = 10, max_per_week = 70;
         INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('t', 'Hi', '{{{{ items[0].title }}}}');
         INSERT INTO reco.triggers (name, kind, template, priority) VALUES ('late', 'abandoned_cart', 't', 20), ('first', 'long_view', 't', 10);
         INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
         SELECT 'c' || n, CASE WHEN n % 3 = 0 THEN 'first' ELSE 'late' END, 'i1', ARRAY['i1'], ARRAY[''],
                now() - make_interval(secs => n), now() - interval '1 hour'
         FROM generate_series(1, {DUE}) n;"
    ))
    .unwrap();
    c.batch_execute("VACUUM ANALYZE reco.notification_candidates").unwrap();
    let mut tx = c.transaction().unwrap();
    let sent: Vec<String> = tx
        .query(
            "SELECT n.trigger_name FROM reco.send_due(max_messages => 10) s JOIN reco.notification_candidates n USING (candidate_id)
             WHERE s.outcome = 'queued' ORDER BY n.candidate_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let read: i64 = tx
        .query_one(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE relid = 'reco.notification_candidates'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    assert_eq!(sent, vec!["first"; 10], "the higher-priority trigger's candidates go first");
    assert!(read <= 100, "a call taking 10 of {DUE} due candidates read {read} candidate rows");
}

/// Senders of different shards (`shard` i of `shards` n: the customers whose
/// `hashtext(customer_id) & 63` is i modulo n) run at once, and still keep each customer's cap;
/// a sender whose customers overlap one running (here a sender of every customer) waits for it.
#[test]
fn senders_of_two_shards_run_at_once_and_one_of_every_customer_waits_for_them() {
    const CUSTOMERS: i64 = 40;
    let db = senders_db("it_notify_shards", CUSTOMERS, "1 minute");
    let mut c = connect(&db);
    let shard_of: HashMap<String, i32> =
        c.query("SELECT customer_id, (hashtext(customer_id) & 63) % 2 FROM reco.customers", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(shard_of.values().any(|s| *s == 0) && shard_of.values().any(|s| *s == 1), "both shards have customers");
    // shard 0 of 2 queues its customers' cart candidates and holds its transaction open
    let mut first = connect(&db);
    let mut tx = first.transaction().unwrap();
    let mine: Vec<String> = tx
        .query(
            "SELECT n.customer_id FROM reco.send_due(shard => 0, shards => 2) s JOIN reco.notification_candidates n USING (candidate_id) WHERE s.outcome = 'queued'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!mine.is_empty() && mine.iter().all(|cu| shard_of[cu] == 0), "shard 0 took only its own customers: {mine:?}");
    // shard 1 of 2 does not wait for it
    let mut second = connect(&db);
    second.batch_execute("SET lock_timeout = '5s'").unwrap();
    let theirs: Vec<String> = second
        .query(
            "SELECT n.customer_id FROM reco.send_due(shard => 1, shards => 2) s JOIN reco.notification_candidates n USING (candidate_id) WHERE s.outcome = 'queued'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!theirs.is_empty() && theirs.iter().all(|cu| shard_of[cu] == 1), "shard 1 took only its own customers: {theirs:?}");
    assert_eq!(mine.len() + theirs.len(), CUSTOMERS as usize, "each customer's cart candidate, once");
    // a sender of every customer (and of the later candidates, due two minutes on) overlaps
    // shard 0, still open: it waits, then sees its sends
    let all = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut c = connect(&db);
            let rows = c.query("SELECT outcome, count(*) FROM reco.send_due(now => now() + interval '2 minutes') GROUP BY outcome ORDER BY 1", &[]).unwrap();
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect::<Vec<_>>()
        })
    };
    wait_for_senders_lock(&mut c, &all, "the sender of every customer");
    tx.commit().unwrap();
    assert_eq!(all.join().unwrap(), vec![("skipped: frequency cap".to_string(), CUSTOMERS)], "every customer had had today's message");
    let per_customer: Vec<i64> = c.query("SELECT count(*) FROM reco.notification_sends GROUP BY customer_id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(per_customer, vec![1; CUSTOMERS as usize], "one send per customer today");
}
