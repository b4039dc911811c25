//! A pg_dump of a database using pg_reco restores with its data: the extension's tables are
//! registered with pg_extension_config_dump, or a backup would hold none of the orders.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, dsn, fixture, fresh_db, pg_args, pg_bin};
use std::process::Command;

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn pg_dump_and_restore_keeps_orders_events_preferences_and_mappings() {
    let src = fresh_db("it_backup_src");
    let mut c = connect(&src);
    c.query_one("SELECT reco.ingest_order('web', $1::text::jsonb)", &[&fixture("web").to_string()]).unwrap();
    c.batch_execute(
        "SELECT reco.record_event('c42', 'A', 'view', 3);
         SELECT reco.capture_preference('c42', 'size_tops', 'M', 'checkout');
         INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('kiosk', 'external_id', '$.id');
         INSERT INTO reco.preference_categories (name, value_type, allowed_values) VALUES ('gift_wrap', 'enum', '{yes,no}');
         UPDATE reco.event_weights SET weight = 3 WHERE kind = 'view';
         SELECT reco.deploy(reco.train('als', '{\"evaluate\": false, \"factors\": 4, \"iterations\": 2}'));",
    )
    .unwrap();
    // an experiment's logged lists and the events carrying their rec_ids: its report comes from
    // tallies that are not dumped, and restoring the events and lists (events first) fills them
    c.batch_execute(
        "INSERT INTO reco.experiments (name, surface, arms, salt, starts_at) VALUES ('split', 'checkout',
             '[{\"name\": \"control\", \"weight\": 1}, {\"name\": \"b\", \"weight\": 1}]', 's', '2026-01-01');
         INSERT INTO reco.recommendations (customer_id, placement, items, scores, context)
         SELECT 'u' || i, 'checkout', '{A}', '{1}', jsonb_build_object('experiment', 'split', 'arm', reco.experiment_arm('split', 'u' || i))
         FROM generate_series(1, 300) i;
         INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
         SELECT customer_id, 'A', k, now(), jsonb_build_object('rec_id', rec_id) FROM reco.recommendations, unnest('{click,cart_add}'::text[]) k
         WHERE rec_id % 7 < CASE k WHEN 'click' THEN 2 ELSE 1 END;",
    )
    .unwrap();
    let report = "SELECT string_agg(format('%s %s %s %s %s', metric, arm, units, trials, successes), '; ' ORDER BY metric, arm)
                  FROM reco.experiment_report('split')";
    let before: String = c.query_one(report, &[]).unwrap().get(0);
    let experiment_events = count(&mut c, "SELECT count(*) FROM reco.events WHERE context ? 'rec_id'");
    let vectors = count(&mut c, "SELECT count(*) FROM reco.item_vectors");
    let weights = count(&mut c, "SELECT count(*) FROM reco.event_weights");
    assert!(vectors >= 2);
    let dump = std::env::temp_dir().join("pg_reco_backup_test.sql");
    let st = Command::new(pg_bin("pg_dump")).args(pg_args(&src)).arg("-f").arg(&dump).status().unwrap();
    assert!(st.success());
    let mut admin = connect(&dsn("postgres"));
    admin.batch_execute("DROP DATABASE IF EXISTS it_backup_dst WITH (FORCE)").unwrap();
    admin.batch_execute("CREATE DATABASE it_backup_dst").unwrap();
    let dst = dsn("it_backup_dst");
    let st = Command::new("psql").args(pg_args(&dst)).args(["-q", "-v", "ON_ERROR_STOP=1", "-f"]).arg(&dump).status().unwrap();
    assert!(st.success(), "restore failed");
    let mut r = connect(&dst);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.orders"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.order_lines"), 2);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.events"), 3 + experiment_events);
    let after: String = r.query_one(report, &[]).unwrap().get(0);
    assert_eq!(after, before, "the experiment report after the restore");
    assert!(before.contains("click b") && !before.contains(" 0 0"), "{before}");
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.preferences"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.channel_mappings"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.preference_categories WHERE name = 'gift_wrap'"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.preference_categories"), 10, "built-in categories once, not twice");
    // the deployed model, its vectors, and the weight override come back (built-in weights once)
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.models WHERE status = 'deployed' AND kind = 'als'"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.item_vectors"), vectors);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.deployments"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.event_weights WHERE kind = 'view' AND weight = 3"), 1);
    assert_eq!(count(&mut r, "SELECT count(*) FROM reco.event_weights"), weights, "built-in weights once, not twice");
    let next: i64 = r.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
    assert!(next > 1, "model ids continue after the restored ones");
    // identities continue after the restored rows
    let id: i64 = r.query_one("SELECT reco.record_event('c42', 'B', 'view')", &[]).unwrap().get(0);
    assert!(id > 3 + experiment_events, "event_id {id} collides with restored rows");
    let _ = std::fs::remove_file(dump);
}
