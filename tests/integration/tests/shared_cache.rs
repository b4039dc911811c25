//! One copy of the serving model per server (pg_reco preloaded; scripts/cluster does so): the
//! first backend loads it into shared memory, the others attach it, a deploy switches it, and a
//! load that fails or is cancelled or whose backend is terminated leaves nothing half-built.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, demo_deployed, still_waiting};
use postgres::Client;
use serde_json::Value;
use std::thread;

fn info(c: &mut Client) -> Value {
    c.query_one("SELECT reco.cache_info()::text", &[]).map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap()).unwrap()
}

/// The registry's models of this test's database: (model_id, state).
fn registry(c: &mut Client) -> Vec<(i64, String)> {
    let db: u32 = c.query_one("SELECT oid::int8 FROM pg_database WHERE datname = current_database()", &[]).unwrap().get::<_, i64>(0) as u32;
    let v = info(c);
    let mut out: Vec<(i64, String)> = v["shared_cache"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["database_oid"].as_u64() == Some(u64::from(db)))
        .map(|m| (m["model_id"].as_i64().unwrap(), m["state"].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

fn serve(c: &mut Client) -> Vec<String> {
    c.query("SELECT item_id FROM reco.recommend('1', 5)", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

/// `serve` at an hour of the data's last day (the hour's best sellers fill a cold customer's list).
fn serve_at(c: &mut Client, hour: i32) -> Vec<String> {
    c.query(
        "SELECT item_id FROM reco.recommend('1', 5, jsonb_build_object('now',
           (SELECT date_trunc('day', max(occurred_at)) FROM reco.events) + make_interval(hours => $1)))",
        &[&hour],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn backends_share_one_copy_and_a_deploy_switches_it() {
    let (dsn, first) = demo_deployed("it_shared_cache");
    let mut a = connect(&dsn);
    let mut b = connect(&dsn);
    let (la, lb) = (serve(&mut a), serve(&mut b));
    assert_eq!(la, lb, "the same model serves both");
    let (ia, ib) = (info(&mut a), info(&mut b));
    assert_eq!(ia["shared_cache"]["enabled"], true, "scripts/cluster preloads pg_reco: {ia}");
    assert_eq!((ia["loads"].as_i64(), ia["attaches"].as_i64()), (Some(1), Some(0)), "the first backend loads: {ia}");
    assert_eq!((ib["loads"].as_i64(), ib["attaches"].as_i64()), (Some(0), Some(1)), "the second attaches: {ib}");
    assert_eq!(ib["shared"], true);
    assert!(ib["models"][0]["own_bytes"].as_i64().unwrap() < 1 << 20, "an attached model costs the backend next to nothing: {ib}");
    assert!(ib["bytes"].as_i64().unwrap() > 0);
    assert_eq!(registry(&mut a), vec![(first, "ready".to_string())]);
    // a connection that never serves holds nothing
    let mut idle = connect(&dsn);
    let v = info(&mut idle);
    assert_eq!((v["loads"].as_i64(), v["attaches"].as_i64(), v["held_bytes"].as_i64()), (Some(0), Some(0), Some(0)), "{v}");
    // a deploy loads the new model into shared memory before it switches: the serving backends
    // attach to it, none loads it, and the old one's segment is let go
    let second: i64 = a.query_one("SELECT reco.train('popularity', '{\"evaluate\": false, \"half_life_days\": 3}')", &[]).unwrap().get(0);
    a.query_one("SELECT reco.deploy($1::bigint)", &[&second]).unwrap();
    assert!(registry(&mut a).contains(&(second, "ready".to_string())), "the deploy preloaded the model: {:?}", registry(&mut a));
    serve(&mut b);
    serve(&mut a);
    assert_eq!(registry(&mut a), vec![(second, "ready".to_string())], "only the deployed model stays");
    let (ia, ib) = (info(&mut a), info(&mut b));
    assert_eq!((ib["model_id"].as_i64(), ia["model_id"].as_i64()), (Some(second), Some(second)));
    assert_eq!(ia["loads"].as_i64().unwrap() + ib["loads"].as_i64().unwrap(), 1, "the first model's load only: {ia} {ib}");
    assert_eq!(ib["attaches"].as_i64(), Some(2), "b attached both models: {ib}");
    // with the shared cache off for the deploying session, the deploy loads nothing
    let third: i64 = a.query_one("SELECT reco.train('popularity', '{\"evaluate\": false, \"half_life_days\": 5}')", &[]).unwrap().get(0);
    a.batch_execute("SET reco.shared_cache = off").unwrap();
    let preloaded: bool = a.query_one("SELECT reco._preload_model($1)", &[&third]).unwrap().get(0);
    assert!(!preloaded);
    a.batch_execute("RESET reco.shared_cache").unwrap();
    assert!(!registry(&mut a).iter().any(|(m, _)| *m == third));
    // rolled back to the first model: loaded again (its segment was freed), still one copy
    a.query_one("SELECT reco.deploy($1::bigint)", &[&first]).unwrap();
    assert_eq!(serve(&mut b), la);
    assert_eq!(registry(&mut a), vec![(first, "ready".to_string())]);
    // off: this backend keeps its own copy
    a.batch_execute("SET reco.shared_cache = off").unwrap();
    let mut c = connect(&dsn);
    c.batch_execute("SET reco.shared_cache = off").unwrap();
    assert_eq!(serve(&mut c), la);
    let v = info(&mut c);
    assert_eq!((v["shared"].as_bool(), v["loads"].as_i64()), (Some(false), Some(1)), "{v}");
    assert!(v["held_bytes"].as_i64().unwrap() > 0);
}

#[test]
fn another_database_with_the_same_model_id_gets_its_own_model() {
    let (d1, m1) = demo_deployed("it_shared_cache_db1");
    let (d2, m2) = demo_deployed("it_shared_cache_db2");
    assert_eq!(m1, m2, "both databases number their first model 1");
    let mut a = connect(&d1);
    let mut b = connect(&d2);
    // make the second shop's best sellers differ
    b.batch_execute("DELETE FROM reco.item_popularity WHERE item_id IN (SELECT item_id FROM reco.item_popularity ORDER BY score DESC LIMIT 3)").unwrap();
    // (a cold customer's list is the best sellers of the hour: at some hours the three removed
    // were not among its five, so the lists are compared at four hours of the data's last day)
    for hour in [3, 9, 15, 21] {
        let (ha, hb) = (serve_at(&mut a, hour), serve_at(&mut b, hour));
        assert_ne!(ha, hb, "each database serves its own model 1, at {hour}:00");
    }
    let la = serve(&mut a);
    assert_eq!(registry(&mut a).len(), 1);
    assert_eq!(registry(&mut b).len(), 1);
    // the extension dropped and created again numbers its models from 1: not the old segment
    b.batch_execute("DROP EXTENSION pg_reco CASCADE; CREATE EXTENSION pg_reco CASCADE; SELECT reco.load_demo('small')").unwrap();
    let id: i64 = b.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
    b.query_one("SELECT reco.deploy($1::bigint)", &[&id]).unwrap();
    let mut b2 = connect(&d2);
    assert_eq!(serve(&mut b2), la, "the new model 1 serves its own (unedited) data");
}

/// Holds the model's popularity table locked from another session, so a load waits inside it.
fn block_loads(dsn: &str) -> Client {
    let mut lock = connect(dsn);
    lock.batch_execute("BEGIN; LOCK TABLE reco.item_popularity IN ACCESS EXCLUSIVE MODE").unwrap();
    lock
}

#[test]
fn a_load_cancelled_or_terminated_midway_leaves_nothing_and_a_waiter_takes_over() {
    let (dsn, mut id) = demo_deployed("it_shared_cache_crash");
    let mut c = connect(&dsn);
    for how in ["pg_cancel_backend", "pg_terminate_backend"] {
        let mut lock = block_loads(&dsn);
        // A starts loading the deployed model (no backend has it) and waits on the lock
        let mut a = connect(&dsn);
        let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        let ta = thread::spawn(move || a.query("SELECT * FROM reco.recommend('1', 5)", &[]).map(|r| r.len()));
        for _ in 0..250 {
            if registry(&mut c) == vec![(id, "loading".to_string())] {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(registry(&mut c), vec![(id, "loading".to_string())], "{how}: A is loading");
        // B asks for the same model and waits for A instead of loading a second copy
        let mut b = connect(&dsn);
        let tb = thread::spawn(move || b.query("SELECT * FROM reco.recommend('1', 5)", &[]).map(|r| (r.len(), info(&mut b))));
        assert!(still_waiting(&tb, 300), "{how}: B waits");
        assert!(c.query_one(&format!("SELECT {how}($1)"), &[&pid_a]).unwrap().get::<_, bool>(0));
        assert!(ta.join().unwrap().is_err(), "{how}: A's call fails");
        // nothing half-built is visible: B takes the load over, behind the lock until it goes
        assert!(still_waiting(&tb, 300), "{how}: B loads, behind the lock");
        lock.batch_execute("COMMIT").unwrap();
        let (n, v) = tb.join().unwrap().unwrap();
        assert_eq!(n, 5, "{how}");
        assert_eq!((v["loads"].as_i64(), v["shared"].as_bool()), (Some(1), Some(true)), "{how}: B loaded it: {v}");
        assert_eq!(registry(&mut c), vec![(id, "ready".to_string())], "{how}");
        // the next round loads a new model that no backend has yet (deployed without the preload)
        id = c.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
        c.batch_execute("SET reco.shared_cache = off").unwrap();
        c.query_one("SELECT reco.deploy($1::bigint)", &[&id]).unwrap();
        c.batch_execute("RESET reco.shared_cache").unwrap();
    }
}
