//! The notification queue end to end as it runs in a shop: a sender calling `reco.send_due`
//! (pg_cron's job) while 4 workers read and archive, at the same time. bench/notify.sh runs it
//! after its one-stage-after-the-other figures, on the candidates its triggers left.
//!
//! - Each of SENDERS senders calls `reco.send_due(now => NOW, max_messages => BATCH, shard => i,
//!   shards => SENDERS)` until a call finds nothing due; each call commits, so the workers take
//!   its messages while it prepares the next.
//! - Each worker repeats, until the sender is done and the queue is empty:
//!   `SELECT count(*) FROM pgmq.archive(QUEUE, ARRAY(SELECT msg_id FROM
//!   pgmq.read_with_poll(QUEUE, 30, READ, 1, POLL)))` (pgmq waits up to a second, polling every
//!   POLL ms, for messages); with `RENDER=1` it renders the read's messages with
//!   `reco.render_batch` before archiving them.
//! - Printed: messages queued, taken, the time from the sender's first call to the last archive,
//!   and messages per second over it; the sender's calls and their time.
//!
//! Usage: notify_pipeline DBNAME NOW (environment: RECO_TEST_DSN, BATCH default 1000, SENDERS
//! default 1, WORKERS default 4, READ default 10, POLL default 10 (pgmq's own is 100), QUEUE
//! default reco_email, RENDER default 0).
// a harness: a setup step that fails should stop it where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::dsn;
use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(db), Some(now)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: notify_pipeline DBNAME NOW   (environment: RECO_TEST_DSN, BATCH, SENDERS, WORKERS, READ, POLL, QUEUE, RENDER)");
        std::process::exit(2);
    };
    let batch: i32 = env_or("BATCH", 1000);
    let workers: usize = env_or("WORKERS", 4);
    let read: i32 = env_or("READ", 10);
    let poll: i32 = env_or("POLL", 10);
    let queue: String = env_or("QUEUE", "reco_email".to_string());
    let render = env_or("RENDER", 0) == 1;
    let n_senders: usize = env_or("SENDERS", 1);
    if ![1, 2, 4, 8].contains(&n_senders) {
        eprintln!("notify_pipeline: SENDERS is {n_senders}, not 1, 2, 4 or 8");
        std::process::exit(2);
    }
    let url = dsn(db);

    // connect everybody first: a connection's start is not the queue's time
    let mut senders: Vec<Client> = (0..n_senders).map(|_| Client::connect(&url, NoTls).unwrap()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let mut clients: Vec<Client> = (0..workers).map(|_| Client::connect(&url, NoTls).unwrap()).collect();
    let take = if render {
        format!(
            "WITH m AS MATERIALIZED (SELECT msg_id, message FROM pgmq.read_with_poll('{queue}', 30, {read}, 1, {poll})),
                  r AS MATERIALIZED (SELECT count(*) AS n FROM reco.render_batch(ARRAY(SELECT (message->>'candidate_id')::int8 FROM m ORDER BY msg_id),
                                                                                  now => '{now}') WHERE dropped_reason IS NULL)
             SELECT (SELECT count(*) FROM pgmq.archive('{queue}', ARRAY(SELECT msg_id FROM m))) + 0 * (SELECT n FROM r)"
        )
    } else {
        format!("SELECT count(*) FROM pgmq.archive('{queue}', ARRAY(SELECT msg_id FROM pgmq.read_with_poll('{queue}', 30, {read}, 1, {poll})))")
    };

    let t0 = Instant::now();
    let handles: Vec<_> = clients
        .drain(..)
        .map(|mut c| {
            let (done, take) = (done.clone(), take.clone());
            thread::spawn(move || {
                let stmt = c.prepare(&take).unwrap();
                let (mut taken, mut last) = (0i64, Duration::ZERO);
                loop {
                    // read whether the sender had finished before reading: an empty read after
                    // that means nothing is left
                    let finished = done.load(Ordering::Acquire);
                    let n: i64 = c.query_one(&stmt, &[]).unwrap().get(0);
                    if n > 0 {
                        taken += n;
                        last = t0.elapsed();
                    } else if finished {
                        return (taken, last);
                    }
                }
            })
        })
        .collect();

    // each sender its shard of the customers (send_due's shard i of SENDERS)
    let shards = n_senders as i32;
    let send = |mut sender: Client, shard: i32| -> (i64, i32) {
        let (mut queued, mut calls) = (0i64, 0);
        loop {
            let row = sender
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE outcome = 'queued')
                     FROM reco.send_due(now => $1::text::timestamptz, max_messages => $2, shard => $3, shards => $4)",
                    &[&now.as_str(), &batch, &shard, &shards],
                )
                .unwrap();
            calls += 1;
            let (rows, q): (i64, i64) = (row.get(0), row.get(1));
            queued += q;
            if rows == 0 {
                return (queued, calls);
            }
        }
    };
    let (mut queued, mut calls) = (0i64, 0);
    thread::scope(|scope| {
        let running: Vec<_> = senders.drain(..).enumerate().map(|(i, c)| scope.spawn(move || send(c, i as i32))).collect();
        for r in running {
            let (q, n) = r.join().unwrap();
            queued += q;
            calls += n;
        }
    });
    let sent = t0.elapsed();
    done.store(true, Ordering::Release);
    let (mut taken, mut end) = (0i64, Duration::ZERO);
    for h in handles {
        let (n, last) = h.join().unwrap();
        taken += n;
        end = end.max(last);
    }
    let end = end.max(sent);
    println!(
        "pipeline: {queued} messages queued by {calls} calls of send_due (max_messages {batch}, {n_senders} sender(s)) in {:.2} s while {workers} workers took {taken}{} ({read} a read, polling every {poll} ms): {:.2} s from the first call to the last archive = {:.0} messages/s",
        sent.as_secs_f64(),
        if render { ", rendering each read with render_batch" } else { "" },
        end.as_secs_f64(),
        taken as f64 / end.as_secs_f64()
    );
    if taken != queued {
        eprintln!("notify_pipeline: {queued} queued but {taken} taken");
        std::process::exit(1);
    }
}
