//! Folding experiment successes into the tallies (reco.fold_attribution) while events are being
//! written: an event id is taken inside its transaction, so a smaller id can commit after a
//! larger one, and a fold must never move its watermark past an event it could not see.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fresh_db, still_waiting};
use postgres::Client;
use std::thread;

/// An experiment on the checkout placement with `lists` logged lists, rec_ids 1..=lists, for
/// customers c0..c(lists/3) (several lists each).
fn experiment_with_lists(c: &mut Client, lists: i64) {
    c.batch_execute(&format!(
        "INSERT INTO reco.experiments (name, surface, arms, salt, starts_at)
         VALUES ('fold', 'checkout', '[{{\"name\": \"control\", \"weight\": 1}}, {{\"name\": \"b\", \"weight\": 1}}]', 'fold', '2026-01-01');
         INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
         SELECT 'c' || (g / 3), 'checkout', '{{i1}}', '{{1}}',
                jsonb_build_object('experiment', 'fold', 'arm', reco.experiment_arm('fold', 'c' || (g / 3))), '2026-02-01'
         FROM generate_series(0, {lists} - 1) g;"
    ))
    .unwrap();
}

fn click_sql(rec_id: i64, kind: &str) -> String {
    format!(
        "INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
         VALUES ('c{}', 'i1', '{kind}', '2026-02-01 10:00+00', '{{\"rec_id\": {rec_id}}}')",
        (rec_id - 1) / 3
    )
}

/// The report's rows as text, the same query whatever reads them.
fn report(c: &mut Client) -> Vec<String> {
    c.query("SELECT r::text FROM reco.experiment_report('fold') r", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

/// The report read from every list and event (as on Citus), in a transaction rolled back.
fn report_from_the_lists(c: &mut Client) -> Vec<String> {
    c.batch_execute("BEGIN; DROP TRIGGER recommendations_experiment_tally ON reco.recommendations").unwrap();
    let r = report(c);
    c.batch_execute("ROLLBACK").unwrap();
    r
}

fn clicks(report: &[String]) -> String {
    report.iter().find(|r| r.starts_with("(click,b,")).cloned().unwrap_or_default()
}

#[test]
fn a_fold_waits_for_an_earlier_event_still_being_written() {
    let dsn = fresh_db("it_fold_commit_order");
    let mut c = connect(&dsn);
    experiment_with_lists(&mut c, 30);
    // A takes the smaller event id and has not committed; B takes the next one and commits
    let mut a = connect(&dsn);
    a.batch_execute(&format!("BEGIN; {}", click_sql(1, "click"))).unwrap();
    c.batch_execute(&click_sql(2, "click")).unwrap();
    // a fold that may wait 200 ms gives up: the watermark stays
    let row = c.query_one("SELECT events, successes, watermark FROM reco.fold_attribution(wait => '200 ms')", &[]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (0, 0, 0), "gave up, nothing folded");
    // one that may wait longer folds both once A commits
    let d = dsn.clone();
    let fold = thread::spawn(move || {
        let r = connect(&d).query_one("SELECT events, successes, behind FROM reco.fold_attribution(wait => '30 s')", &[]).unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2))
    });
    assert!(still_waiting(&fold, 300), "the fold waits for the writer in flight");
    a.batch_execute("COMMIT").unwrap();
    assert_eq!(fold.join().unwrap(), (2, 2, 0), "both events, both successes, nothing behind");
    let folded = report(&mut c);
    assert_eq!(folded, report_from_the_lists(&mut c));
    // a second fold finds nothing new; a repeat click on list 1 is no new success
    c.batch_execute(&click_sql(1, "click")).unwrap();
    let row = c.query_one("SELECT events, successes FROM reco.fold_attribution()", &[]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 0));
    assert_eq!(report(&mut c), folded);
}

#[test]
fn folds_during_concurrent_ingest_count_every_success_once() {
    let dsn = fresh_db("it_fold_concurrent");
    let mut c = connect(&dsn);
    let lists = 600;
    experiment_with_lists(&mut c, lists);
    // four writers, 40 transactions of 10 events each (some repeat a list and kind), while a
    // folder folds again and again
    let writers: Vec<_> = (0..4i64)
        .map(|w| {
            let d = dsn.clone();
            thread::spawn(move || {
                let mut c = connect(&d);
                for t in 0..40i64 {
                    let mut tx = c.transaction().unwrap();
                    for e in 0..10i64 {
                        let k = (w * 7919 + t * 104_729 + e * 1_299_709) % (lists * 2);
                        let kind = if k % 5 == 0 { "cart_add" } else { "click" };
                        tx.batch_execute(&click_sql(k % lists + 1, kind)).unwrap();
                        // (a transaction open a while: later ids commit before it)
                        tx.batch_execute("SELECT pg_sleep(0.001)").unwrap();
                    }
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    let d = dsn.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let folder = thread::spawn(move || {
        let mut c = connect(&d);
        let mut rounds = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            c.query_one("SELECT events FROM reco.fold_attribution(max_events => 50, wait => '5 s')", &[]).unwrap();
            rounds += 1;
        }
        rounds
    });
    // the report is exact while the folds run
    let mut mid = Vec::new();
    for h in writers {
        mid.push(report(&mut c));
        h.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = folder.join().unwrap();
    assert!(rounds > 1, "the folder ran while the writers wrote ({rounds} rounds)");
    assert!(mid.iter().all(|r| !clicks(r).is_empty()));
    let before_the_last_fold = report(&mut c);
    c.query_one("SELECT behind FROM reco.fold_attribution()", &[]).unwrap();
    let row = c.query_one("SELECT events, successes FROM reco.fold_attribution()", &[]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 0), "everything was folded");
    // every distinct list and kind counted once, in the tallies and in the units
    let expected: i64 = c.query_one("SELECT count(DISTINCT (context ->> 'rec_id', kind)) FROM reco.events WHERE context ? 'rec_id'", &[]).unwrap().get(0);
    let tallied: i64 = c.query_one("SELECT sum(n)::int8 FROM reco.experiment_tallies WHERE metric <> 'trials'", &[]).unwrap().get(0);
    let per_unit: i64 = c.query_one("SELECT sum(click + cart_add)::int8 FROM reco.experiment_units", &[]).unwrap().get(0);
    assert_eq!((tallied, per_unit), (expected, expected));
    let folded = report(&mut c);
    assert_eq!(folded, before_the_last_fold, "the report read the unfolded events itself");
    assert_eq!(folded, report_from_the_lists(&mut c));
}
