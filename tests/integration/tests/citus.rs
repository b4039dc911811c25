//! pg_reco on a real Citus cluster (`make test-citus`: scripts/citus builds Citus from
//! ../shared/citus and starts a coordinator and two workers; RECO_CITUS_DSN names the
//! coordinator). Beside it, the single-node test cluster (RECO_TEST_DSN) gets the same data,
//! so the coordinator's answers can be compared with one node's.
//!
//! Built only with the `citus` feature: `make test-integration` has no Citus cluster.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fresh_db, shopify_order};
use postgres::Client;
use std::sync::OnceLock;

/// The coordinator's connection string, then a worker's (`n` = 1, 2: the next ports).
fn citus_dsn(worker: u16) -> String {
    let base = std::env::var("RECO_CITUS_DSN").expect("RECO_CITUS_DSN: run this through make test-citus");
    base.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some(("port", p)) => format!("port={}", p.parse::<u16>().unwrap() + worker),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tables load_demo writes, copied from one node to the coordinator.
const DEMO_TABLES: [&str; 7] = ["items", "stock", "category_settings", "customers", "orders", "order_lines", "events"];
/// The call's pinned instant: serving's clock (time of day, recency) is the same on both.
const NOW: &str = "2026-11-26T14:30:00Z";

struct Setup {
    single: String,
    coordinator: String,
}

/// Once per run: the extension on the coordinator, reco.distribute(), then the demo data of a
/// fresh single-node database copied in through the coordinator, and on both a training and a
/// deployment with the same parameters.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let single = fresh_db("it_citus_parity");
        let coordinator = citus_dsn(0);
        let mut one = connect(&single);
        one.batch_execute("SELECT reco.load_demo('small')").unwrap();
        let mut co = connect(&coordinator);
        co.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_reco CASCADE").unwrap();
        let placed: Vec<(String, String)> =
            co.query("SELECT table_name::text, placement FROM reco.distribute()", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
        assert!(placed.contains(&("reco.events".into(), "distributed".into())), "{placed:?}");
        assert!(placed.contains(&("reco.items".into(), "reference".into())), "{placed:?}");
        for t in DEMO_TABLES {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut one.copy_out(&format!("COPY reco.{t} TO STDOUT")).unwrap(), &mut out).unwrap();
            let mut w = co.copy_in(&format!("COPY reco.{t} FROM STDIN")).unwrap();
            std::io::Write::write_all(&mut w, &out).unwrap();
            w.finish().unwrap();
        }
        // COPY wrote the events' ids as they were: the coordinator's sequence goes past them (as
        // after a pg_dump restore), so events ingested through it later get new ids
        co.batch_execute("SELECT setval(pg_get_serial_sequence('reco.events', 'event_id'), (SELECT max(event_id) FROM reco.events))").unwrap();
        for c in [&mut one, &mut co] {
            let id: i64 = c.query_one("SELECT reco.train('hybrid')", &[]).unwrap().get(0);
            c.query_one(&format!("SELECT reco.deploy({id}::bigint)"), &[]).unwrap();
        }
        Setup { single, coordinator }
    })
}

/// One recommendation list as rows of text.
fn list(c: &mut Client, customer: &str, context: &serde_json::Value) -> Vec<String> {
    c.query(
        "SELECT item_id, round(score::numeric, 5)::text, coalesce(reason, '') FROM reco.recommend($1, 10, $2::text::jsonb)",
        &[&customer, &context.to_string()],
    )
    .unwrap()
    .iter()
    .map(|r| format!("{} {} {}", r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
    .collect()
}

/// The port of the worker that holds the customer's shard.
fn port_of(c: &mut Client, customer: &str) -> String {
    c.query_one(
        "SELECT nodeport::text FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
          WHERE p.shardid = get_shard_id_for_distribution_column('reco.customers', $1::text)",
        &[&customer],
    )
    .unwrap()
    .get(0)
}

fn count(c: &mut Client, sql: &str, customer: &str) -> i64 {
    c.query_one(sql, &[&customer]).unwrap().get(0)
}

#[test]
fn distribute_places_every_table_and_a_second_run_changes_nothing() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    let again: Vec<(String, String, i64)> = co
        .query("SELECT table_name::text, placement, rows_moved FROM reco.distribute()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(again.iter().all(|r| r.2 == 0), "nothing moves the second time: {again:?}");
    // every table of the extension is placed, and the customer tables share one colocation group
    let unplaced: i64 = co
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'reco' AND c.relkind = 'r' AND c.relname <> 'ingest_errors'
                AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unplaced, 0);
    let groups: i64 = co
        .query_one(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition
              WHERE logicalrelid IN ('reco.customers'::regclass, 'reco.events'::regclass, 'reco.preferences'::regclass, 'reco.recommendations'::regclass)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(groups, 1);
    // nothing is left in the coordinator's local tables (Citus's "local data" warning)
    let local: i64 = co.query_one("SELECT count(*) FROM ONLY reco.events", &[]).unwrap().get(0);
    let all: i64 = co.query_one("SELECT count(*) FROM reco.events", &[]).unwrap().get(0);
    assert!(all > 10_000 && local == all, "{local} {all}");
}

/// (Named to run before the tests that add data: the test runner goes in name order, one at a
/// time; the stock test before it puts the stock back.)
#[test]
fn answers_on_the_coordinator_match_one_node() {
    let s = setup();
    let (mut one, mut co) = (connect(&s.single), connect(&s.coordinator));
    let customers: Vec<String> =
        one.query("SELECT customer_id FROM reco.customers ORDER BY customer_id LIMIT 40", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let cart: Vec<String> = one.query("SELECT item_id FROM reco.items ORDER BY item_id LIMIT 2", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let contexts = [
        serde_json::json!({"now": NOW}),
        serde_json::json!({"now": NOW, "placement": "checkout", "cart": cart}),
        serde_json::json!({"now": NOW, "session_id": "s-parity"}),
    ];
    let mut compared = 0;
    for c in &customers {
        for ctx in &contexts {
            let a = list(&mut one, c, ctx);
            assert!(!a.is_empty(), "{c} {ctx}");
            assert_eq!(a, list(&mut co, c, ctx), "customer {c}, context {ctx}");
            compared += 1;
        }
    }
    assert_eq!(compared, 120);
}

#[test]
fn recommend_is_pushed_down_to_the_worker_that_holds_the_customer() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    for customer in ["demo-c0000001", "demo-c0000002", "demo-c0000003", "demo-c0000004"] {
        let plan: Vec<String> =
            co.query(&format!("EXPLAIN (COSTS OFF) SELECT * FROM reco.recommend('{customer}', 10)"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
        let plan = plan.join("\n");
        // one task, on the worker of the customer's shard, running the function there
        let worker = port_of(&mut co, customer);
        assert!(plan.contains("Task Count: 1"), "{plan}");
        assert!(plan.contains(&format!("port={worker} ")), "runs on the customer's worker ({worker}): {plan}");
        assert!(plan.contains("Function Scan on recommend"), "{plan}");
    }
}

#[test]
fn a_stock_change_on_the_coordinator_is_honoured_by_the_next_call_on_any_worker() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    let customer = "demo-c0000007";
    let ctx = serde_json::json!({"now": NOW});
    let top = list(&mut co, customer, &ctx)[0].split(' ').next().unwrap().to_string();
    co.execute("UPDATE reco.stock SET available = 0 WHERE item_id = $1", &[&top]).unwrap();
    // through the coordinator (delegated to the customer's worker) and on each worker itself
    for dsn in [citus_dsn(0), citus_dsn(1), citus_dsn(2)] {
        let mut c = connect(&dsn);
        let items: Vec<String> = list(&mut c, customer, &ctx).iter().map(|l| l.split(' ').next().unwrap().to_string()).collect();
        assert!(!items.contains(&top), "{dsn}: {top} is out of stock but served: {items:?}");
        assert_eq!(items.len(), 10);
    }
    co.execute("UPDATE reco.stock SET available = 5 WHERE item_id = $1", &[&top]).unwrap();
    assert_eq!(list(&mut co, customer, &ctx)[0].split(' ').next().unwrap(), top);
}

#[test]
fn forget_customer_removes_the_customer_on_every_node() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    let c = "demo-c0000911";
    // something in every per-customer table first: a logged list (written on the worker), a
    // preference, an event
    co.execute("SELECT count(*) FROM reco.recommend($1, 5, '{\"log\": true}')", &[&c]).unwrap();
    co.execute("SELECT reco.capture_preference($1, 'color', 'red', 'profile')", &[&c]).unwrap();
    co.execute("SELECT reco.record_event($1, 'demo-p1-red', 'view')", &[&c]).unwrap();
    let tables = ["customers", "events", "preferences", "recommendations", "customer_vectors"];
    for t in tables {
        assert!(count(&mut co, &format!("SELECT count(*) FROM reco.{t} WHERE customer_id = $1"), c) > 0, "{t} before");
    }
    co.execute("SELECT reco.forget_customer($1)", &[&c]).unwrap();
    for t in tables {
        assert_eq!(count(&mut co, &format!("SELECT count(*) FROM reco.{t} WHERE customer_id = $1"), c), 0, "{t} after");
    }
    assert_eq!(count(&mut co, "SELECT count(*) FROM reco.orders WHERE customer_id = $1", c), 0);
    // the tombstone is on every node: an event ingested through a worker is not stored
    for w in [1, 2] {
        let mut wc = connect(&citus_dsn(w));
        assert_eq!(count(&mut wc, "SELECT count(*) FROM reco.forgotten_customers WHERE customer_key = reco.customer_key($1)", c), 1);
    }
    co.execute("SELECT reco.record_event($1, 'demo-p1-red', 'view')", &[&c]).unwrap();
    assert_eq!(count(&mut co, "SELECT count(*) FROM reco.events WHERE customer_id = $1", c), 0);
}

#[test]
fn ingest_through_the_coordinator_replayed_and_concurrent_loses_nothing() {
    let s = setup();
    let batch = serde_json::Value::Array((0..120).map(|i| shopify_order(50_000 + i, 3)).collect()).to_string();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (dsn, body) = (s.coordinator.clone(), batch.clone());
            std::thread::spawn(move || {
                let mut c = connect(&dsn);
                let mut inserted = 0i64;
                for _ in 0..2 {
                    let r = c.query_one("SELECT inserted, failed FROM reco.ingest_orders('shopify', $1::text::jsonb)", &[&body]).unwrap();
                    assert_eq!(r.get::<_, i64>(1), 0);
                    inserted += r.get::<_, i64>(0);
                }
                inserted
            })
        })
        .collect();
    let inserted: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(inserted, 120, "each order is inserted by exactly one client");
    let mut co = connect(&s.coordinator);
    let n = |c: &mut Client, sql: &str| c.query_one(sql, &[]).unwrap().get::<_, i64>(0);
    assert_eq!(n(&mut co, "SELECT count(*) FROM reco.orders WHERE channel = 'shopify' AND external_id::bigint >= 1050000"), 120);
    assert_eq!(
        n(
            &mut co,
            "SELECT count(*) FROM reco.order_lines l JOIN reco.orders o USING (order_id) WHERE o.channel = 'shopify' AND o.external_id::bigint >= 1050000"
        ),
        360
    );
    assert_eq!(n(&mut co, "SELECT count(*) FROM reco.events WHERE kind = 'purchase' AND order_id LIKE 'shopify:1050___'"), 360);
    // events too: the same batch twice stores it twice (events are facts, not upserts), each once per call
    let ev = serde_json::json!([{"customer_id": "demo-c0000920", "item_id": "demo-p1-red", "kind": "view", "occurred_at": "2026-11-20T10:00:00Z"},
                                {"session_id": "s-anon", "item_id": "demo-p1-red", "kind": "view", "occurred_at": "2026-11-20T10:01:00Z"}]);
    let before =
        n(&mut co, "SELECT count(*) FROM reco.events WHERE item_id = 'demo-p1-red' AND occurred_at BETWEEN '2026-11-20T10:00:00Z' AND '2026-11-20T10:01:00Z'");
    let r = co.query_one("SELECT inserted, failed FROM reco.ingest_events('web', $1::text::jsonb)", &[&ev.to_string()]).unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (2, 0));
    let after =
        n(&mut co, "SELECT count(*) FROM reco.events WHERE item_id = 'demo-p1-red' AND occurred_at BETWEEN '2026-11-20T10:00:00Z' AND '2026-11-20T10:01:00Z'");
    assert_eq!(after, before + 2);
    // the anonymous one is placed by its session
    assert_eq!(n(&mut co, "SELECT count(*) FROM reco.events WHERE shard_key = 's:s-anon'"), 1);
}

/// The deployed model on one node, as its own copy of the reference table says.
fn deployed_on(c: &mut Client) -> (i64, i64) {
    let r = c.query_one("SELECT (SELECT model_id FROM reco.models WHERE status = 'deployed'), (SELECT count(*) FROM reco.deployments)", &[]).unwrap();
    (r.get(0), r.get(1))
}

/// Which model served a call, from the backend's own cache (the call loads it when it differs).
fn served_by(c: &mut Client, customer: &str) -> i64 {
    c.execute("SELECT count(*) FROM reco.recommend($1, 5, '{\"now\": \"2026-11-26T14:30:00Z\"}')", &[&customer]).unwrap();
    let info: String = c.query_one("SELECT reco.cache_info()::text", &[]).unwrap().get(0);
    serde_json::from_str::<serde_json::Value>(&info).unwrap()["model_id"].as_i64().unwrap_or_else(|| panic!("{info}"))
}

#[test]
fn deploy_and_rollback_are_one_transaction_on_every_node_and_every_workers_cache_follows() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    let live = deployed_on(&mut co).0;
    // a backend on each worker that has served (and so cached) the live model before the deploy
    let mut workers: Vec<Client> = (1..=2).map(|w| connect(&citus_dsn(w))).collect();
    let on_worker = |w: u16| -> String {
        let port = citus_dsn(w).split_whitespace().find_map(|kv| kv.strip_prefix("port=").map(str::to_string)).unwrap();
        let mut c = connect(&citus_dsn(0));
        (1..=50).map(|i| format!("demo-c{i:07}")).find(|id| port_of(&mut c, id) == port).unwrap()
    };
    let customers = [on_worker(1), on_worker(2)];
    for (w, c) in workers.iter_mut().zip(&customers) {
        assert_eq!(served_by(w, c), live);
    }
    let second: i64 = co.query_one("SELECT reco.train('popularity')", &[]).unwrap().get(0);
    // a deploy that is rolled back leaves every node as it was
    co.batch_execute(&format!("BEGIN; SELECT reco.deploy({second}::bigint); ROLLBACK")).unwrap();
    let before = deployed_on(&mut co);
    for w in workers.iter_mut() {
        assert_eq!(deployed_on(w), before);
    }
    co.query_one(&format!("SELECT reco.deploy({second}::bigint)"), &[]).unwrap();
    let after = deployed_on(&mut co);
    assert_eq!(after, (second, before.1 + 1));
    for (w, c) in workers.iter_mut().zip(&customers) {
        assert_eq!(deployed_on(w), after, "the worker's copy of the registry is the coordinator's");
        assert_eq!(served_by(w, c), second, "the worker's backend reloads its cache for {c}");
    }
    // through the coordinator: the call delegated to the customer's worker serves the new model
    for c in &customers {
        let rec_id: i64 =
            co.query_one("SELECT rec_id FROM reco.recommend($1, 5, '{\"log\": true, \"now\": \"2026-11-26T14:30:00Z\"}') LIMIT 1", &[c]).unwrap().get(0);
        let model: i64 = co.query_one("SELECT model_id FROM reco.recommendations WHERE rec_id = $1", &[&rec_id]).unwrap().get(0);
        assert_eq!(model, second, "{c}");
    }
    // rollback puts the first model back, everywhere
    let back: i64 = co.query_one("SELECT reco.deploy('rollback')", &[]).unwrap().get(0);
    assert_eq!(back, live);
    for (w, c) in workers.iter_mut().zip(&customers) {
        assert_eq!(deployed_on(w).0, live);
        assert_eq!(served_by(w, c), live);
    }
}

/// A connection to a node whose notices (and LOG messages sent to the client) are collected.
fn connect_listening(dsn: &str) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = heard.clone();
    let mut config: postgres::Config = dsn.parse().unwrap();
    config.notice_callback(move |n| h.lock().unwrap().push(n.message().to_string()));
    (config.connect(postgres::NoTls).unwrap(), heard)
}

#[test]
fn a_call_reads_only_its_customers_shard_on_its_worker() {
    let s = setup();
    let mut co = connect(&s.coordinator);
    let customer = "demo-c0000005";
    let port = port_of(&mut co, customer);
    let w = if citus_dsn(1).contains(&format!("port={port}")) { 1 } else { 2 };
    let (mut c, heard) = connect_listening(&citus_dsn(w));
    let cart: Vec<String> = c.query("SELECT item_id FROM reco.items ORDER BY item_id LIMIT 2", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let contexts = [
        serde_json::json!({"now": NOW}),
        serde_json::json!({"now": NOW, "placement": "checkout", "cart": cart}),
        serde_json::json!({"now": NOW, "session_id": "s-shard"}),
    ];
    for ctx in &contexts {
        list(&mut c, customer, ctx); // loads the model into this backend first
        c.batch_execute("SET citus.log_remote_commands = on; SET citus.log_local_commands = on; SET client_min_messages = log").unwrap();
        heard.lock().unwrap().clear();
        assert_eq!(list(&mut c, customer, ctx).len(), 10);
        c.batch_execute("RESET client_min_messages; RESET citus.log_remote_commands; RESET citus.log_local_commands").unwrap();
        let said = heard.lock().unwrap().clone();
        let events = said.iter().flat_map(|m| m.match_indices("reco.events_").map(|(i, _)| &m[i..i + 18])).collect::<std::collections::BTreeSet<_>>();
        if ctx.get("session_id").is_none() {
            // every statement of the call ran here, on this worker's shards, the events from the
            // customer's one shard, each statement once
            assert!(said.iter().all(|m| !m.starts_with("issuing")), "{ctx}: a statement went to another node: {said:#?}");
            assert_eq!(events.len(), 1, "{ctx}: the events shards read: {events:?}");
            assert!(said.len() <= 8, "{ctx}: {} statements: {said:#?}", said.len());
        } else {
            // with a session, its anonymous events are placed by the session id, maybe on the
            // other worker: that read (in its own remote transaction) is the only one elsewhere
            let remote: Vec<&String> = said.iter().filter(|m| m.starts_with("issuing")).collect();
            assert!(
                remote.iter().all(|m| m.contains("reco.events_") || m.starts_with("issuing BEGIN") || m.starts_with("issuing COMMIT")),
                "{ctx}: {remote:#?}"
            );
            assert!(!events.is_empty() && events.len() <= 2, "{ctx}: the events shards read: {events:?}");
        }
    }
}

#[test]
fn best_send_time_through_the_coordinator_matches_one_node() {
    let s = setup();
    let (mut one, mut co) = (connect(&s.single), connect(&s.coordinator));
    for c in ["demo-c0000011", "demo-c0000012", "demo-c0000013"] {
        let sql = "SELECT reco.best_send_time($1, '2026-11-26T14:30:00Z', explore => 0)::text";
        let a: String = one.query_one(sql, &[&c]).unwrap().get(0);
        assert_eq!(a, co.query_one(sql, &[&c]).unwrap().get::<_, String>(0), "{c}");
    }
}
