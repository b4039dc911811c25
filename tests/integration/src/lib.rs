//! Helpers for the integration tests: they talk to a real cluster (scripts/cluster) with the
//! pg_reco extension installed, over the `postgres` client crate.
// test helpers: a setup that fails should stop the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use postgres::{Client, NoTls};

/// The connection string of the test cluster (`RECO_TEST_DSN`, set by `make test-integration`).
pub fn dsn(db: &str) -> String {
    let base = std::env::var("RECO_TEST_DSN").unwrap_or_else(|_| "host=127.0.0.1 port=28815 user=postgres".into());
    let base: String = base.split_whitespace().filter(|kv| !kv.starts_with("dbname=")).collect::<Vec<_>>().join(" ");
    format!("{base} dbname={db}")
}

/// A fresh database with the extension, named after the test.
pub fn fresh_db(name: &str) -> String {
    let mut admin = Client::connect(&dsn("postgres"), NoTls).expect("is the test cluster running? (scripts/cluster start)");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let mut c = Client::connect(&dsn(name), NoTls).unwrap();
    c.batch_execute("CREATE EXTENSION pg_reco CASCADE").unwrap();
    dsn(name)
}

/// A PostgreSQL client program of the test cluster's major version (`PG_MAJOR`, default 15).
pub fn pg_bin(tool: &str) -> std::path::PathBuf {
    let major = std::env::var("PG_MAJOR").unwrap_or_else(|_| "15".into());
    std::path::PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{tool}"))
}

/// `dsn` as the -h/-p/-U/-d arguments of psql, pg_dump and the other client programs.
pub fn pg_args(dsn: &str) -> Vec<String> {
    let mut args = Vec::new();
    for kv in dsn.split_whitespace() {
        let Some((k, v)) = kv.split_once('=') else { continue };
        let flag = match k {
            "host" => "-h",
            "port" => "-p",
            "user" => "-U",
            "dbname" => "-d",
            _ => continue,
        };
        args.extend([flag.to_string(), v.to_string()]);
    }
    args
}

pub fn connect(dsn: &str) -> Client {
    Client::connect(dsn, NoTls).unwrap()
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../engine/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A Shopify-shaped order `i` with `lines` lines (the benchmark's generator uses the same shape).
pub fn shopify_order(i: u64, lines: u64) -> serde_json::Value {
    let mut o = fixture("shopify");
    o["id"] = serde_json::json!(1_000_000 + i);
    o["customer"]["id"] = serde_json::json!(i % 997);
    let items: Vec<serde_json::Value> = (0..lines)
        .map(|k| {
            serde_json::json!({"id": i * 10 + k, "product_id": (i + k) % 50, "sku": format!("SKU-{}", (i * 7 + k) % 300),
                "title": "Item", "variant_title": "M / Navy", "quantity": 1 + k % 3, "price": "19.99"})
        })
        .collect();
    o["line_items"] = serde_json::Value::Array(items);
    o["subtotal_price"] = serde_json::Value::Null;
    o["total_price"] = serde_json::Value::Null;
    o
}

/// `dsn` with another login role, e.g. a non-superuser member of reco_admin.
pub fn as_user(dsn: &str, user: &str) -> String {
    dsn.split_whitespace().map(|kv| if kv.starts_with("user=") { format!("user={user}") } else { kv.to_string() }).collect::<Vec<_>>().join(" ")
}

/// A login role that is a member of `group` only (created once per cluster).
pub fn login_role(name: &str, group: &str) {
    let mut admin = Client::connect(&dsn("postgres"), NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN CREATE ROLE {name} LOGIN; END IF; END $$;
             GRANT {group} TO {name};"
        ))
        .unwrap();
}

/// Whether a thread's statement is still waiting after `ms` milliseconds.
pub fn still_waiting<T>(h: &std::thread::JoinHandle<T>, ms: u64) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    !h.is_finished()
}

/// A fresh database `name` with the small demo data and a popularity model trained and
/// deployed; its dsn and the model's id.
pub fn demo_deployed(name: &str) -> (String, i64) {
    let db = fresh_db(name);
    let mut c = connect(&db);
    c.batch_execute("SELECT reco.load_demo('small')").unwrap();
    let first: i64 = c.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
    // deployed without the deploy's preload (reco.shared_cache off for that call), so the first
    // serving call loads the model: the shared-cache tests start from a model no backend has
    c.batch_execute("SET reco.shared_cache = off").unwrap();
    c.query_one("SELECT reco.deploy($1::bigint)", &[&first]).unwrap();
    c.batch_execute("RESET reco.shared_cache").unwrap();
    (db, first)
}
