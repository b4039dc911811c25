//! `ALTER EXTENSION pg_reco UPDATE` from every earlier release keeps the data and the deployed
//! model, and leaves the same schema as a fresh install.
//!
//! Each earlier release's install script is kept in `sql/releases/pg_reco--<version>.sql` (so
//! the test needs no network); the test copies it beside this build's scripts, creates the
//! extension at that version against this build's library (which is what a DBA has between
//! installing a new package and running the update), loads the demo, trains, deploys and serves,
//! updates along the `pg_reco--A--B.sql` scripts, and then checks:
//! - every row of every table that existed before is still there, unchanged;
//! - the deployed model serves the same lists (in the same backend and in a new one), and a
//!   new model trains;
//! - `pg_dump --schema-only --binary-upgrade` (which, unlike a plain dump, writes out the
//!   extension's own objects) of the updated database equals that of a fresh install, once
//!   normalized (OIDs, transaction ids, sequence positions and the per-model HNSW indexes, which
//!   are data, removed), and so do the tables registered for dumping.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, dsn, pg_args, pg_bin};
use postgres::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The releases whose install scripts are kept, oldest first.
fn releases() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(Vec<u32>, String, PathBuf)> = std::fs::read_dir(repo().join("sql/releases"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix("pg_reco--")?.strip_suffix(".sql")?.to_string();
            let key = version.split('.').map(|p| p.parse().unwrap()).collect();
            Some((key, version, e.path()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, v, p)| (v, p)).collect()
}

fn fresh(admin: &mut Client, db: &str) -> Client {
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    connect(&dsn(db))
}

/// Every table of the extension's schema: its columns, row count and a digest of its rows.
type Snapshot = BTreeMap<String, (Vec<String>, i64, String)>;

fn snapshot(c: &mut Client, columns: Option<&Snapshot>) -> Snapshot {
    let tables: Vec<String> = c
        .query("SELECT relname::text FROM pg_class WHERE relnamespace = 'reco'::regnamespace AND relkind = 'r' ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Snapshot::new();
    for t in tables {
        // the columns the table had before, if it existed: a column the update adds is new data
        let cols: Vec<String> = match columns.and_then(|s| s.get(&t)) {
            Some((cols, _, _)) => cols.clone(),
            None => c
                .query(
                    "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = ('reco.' || quote_ident($1))::regclass
                       AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    &[&t],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        let row = format!("ROW({})::text", cols.join(", "));
        let q = format!("SELECT count(*), coalesce(md5(string_agg({row}, E'\\n' ORDER BY {row})), '') FROM reco.{t}");
        let r = c.query_one(&q, &[]).unwrap();
        out.insert(t, (cols, r.get(0), r.get(1)));
    }
    out
}

/// What the deployed model serves to a few customers at a fixed instant: items and reasons.
fn served(c: &mut Client) -> Vec<(String, Vec<(String, String)>)> {
    let customers: Vec<String> = c
        .query("SELECT customer_id FROM (SELECT DISTINCT customer_id FROM reco.orders) o ORDER BY customer_id LIMIT 25", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ctx = "jsonb_build_object('now', date_trunc('day', (SELECT max(occurred_at) FROM reco.events)) + interval '12 hours', 'log', false)";
    let q = format!("SELECT item_id, reason FROM reco.recommend($1, 10, {ctx})");
    let mut out = Vec::new();
    for cust in customers {
        let rows = c.query(&q, &[&cust]).unwrap();
        assert_eq!(rows.len(), 10, "{cust} gets a full list");
        out.push((cust, rows.iter().map(|r| (r.get(0), r.get(1))).collect()));
    }
    let cart = "jsonb_build_object('now', date_trunc('day', (SELECT max(occurred_at) FROM reco.events)) + interval '12 hours', 'log', false,
                'placement', 'checkout', 'cart', (SELECT jsonb_agg(item_id) FROM (SELECT item_id FROM reco.items ORDER BY item_id LIMIT 2) i))";
    let rows = c.query(&format!("SELECT item_id, reason FROM reco.recommend(NULL, 10, {cart})"), &[]).unwrap();
    out.push(("(checkout, no customer)".into(), rows.iter().map(|r| (r.get(0), r.get(1))).collect()));
    out
}

/// `pg_dump --schema-only --binary-upgrade`, without what differs between any two databases
/// with the same schema: OIDs, frozen transaction ids, sequence positions, the dump's
/// \restrict key, comments and blank lines, the HNSW indexes training builds per model, and
/// the order of each object's grants.
fn schema(db: &str) -> String {
    let mut args: Vec<String> = vec!["--schema-only".into(), "--binary-upgrade".into()];
    args.extend(pg_args(&dsn(db)));
    let out = Command::new(pg_bin("pg_dump")).args(&args).output().unwrap();
    assert!(out.status.success(), "pg_dump {db}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let per_model_index =
        |l: &str| l.split("item_vectors_").skip(1).any(|rest| rest.split('_').next().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
    let lines = text
        .lines()
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("--")
                || l.starts_with("\\restrict")
                || l.starts_with("\\unrestrict")
                || l.contains("binary_upgrade_set_next_")
                || l.starts_with("SET relfrozenxid")
                || l.starts_with("WHERE oid = '")
                || l.contains("pg_catalog.setval(")
                || per_model_index(l))
        })
        .map(|l| match l.find("binary_upgrade_create_empty_extension(") {
            // the member OIDs and config conditions follow the version: compared separately
            Some(at) => l[..at].to_string() + l[at..].split(", '{").next().unwrap(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>();
    // an object's ACL lists its grants in the order they were made, which means nothing: a
    // role added by an update is granted last there and first in a fresh install
    let mut lines = lines;
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| l.starts_with("GRANT ")).count();
        lines[i..i + run].sort();
        i += run.max(1);
    }
    lines.join("\n")
}

/// The tables registered with pg_extension_config_dump, with their conditions.
fn config_dump(c: &mut Client) -> Vec<(String, String)> {
    c.query(
        "SELECT t.oid::regclass::text, coalesce(t.cond, '') FROM pg_extension e, unnest(e.extconfig, e.extcondition) t(oid, cond)
          WHERE e.extname = 'pg_reco' ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let around = |v: &[&str]| v[at.saturating_sub(3)..(at + 4).min(v.len())].join("\n");
    format!("line {at} of {} vs {}:\n--- updated\n{}\n--- fresh\n{}", a.len(), b.len(), around(&a), around(&b))
}

#[test]
fn every_kept_release_updates_in_place_keeping_rows_the_deployed_model_and_the_schema() {
    let current = env!("CARGO_PKG_VERSION");
    let sharedir = Command::new(pg_bin("pg_config")).arg("--sharedir").output().unwrap();
    let extdir = PathBuf::from(String::from_utf8(sharedir.stdout).unwrap().trim()).join("extension");
    assert!(extdir.join(format!("pg_reco--{current}.sql")).exists(), "this build ({current}) is installed (make install)");
    let kept = releases();
    assert!(!kept.is_empty(), "sql/releases keeps the previous release's install script");
    let mut admin = connect(&dsn("postgres"));
    let mut fresh_db = fresh(&mut admin, "it_upgrade_fresh");
    fresh_db.batch_execute("CREATE EXTENSION pg_reco CASCADE").unwrap();
    let fresh_schema = schema("it_upgrade_fresh");
    assert!(
        fresh_schema.contains("CREATE TABLE reco.orders") && fresh_schema.contains("FUNCTION reco.recommend("),
        "the dump holds the extension's own objects"
    );
    let fresh_config = config_dump(&mut fresh_db);
    for (version, script) in kept {
        assert_ne!(version, current, "sql/releases holds released versions only; this build is {current}");
        let dest = extdir.join(format!("pg_reco--{version}.sql"));
        std::fs::copy(&script, &dest).unwrap_or_else(|e| panic!("{}: {e} (run as the user who ran make install)", dest.display()));
        let db = format!("it_upgrade_from_{}", version.replace('.', "_"));
        let mut c = fresh(&mut admin, &db);
        c.batch_execute(&format!("CREATE EXTENSION pg_reco VERSION '{version}' CASCADE")).unwrap();
        c.batch_execute(
            "SELECT reco.load_demo('small', 7);
             UPDATE reco.customers SET email_opt_in = true WHERE customer_id <= 'demo-c0000003';
             SELECT reco.capture_preference('demo-c0000001', 'size_tops', 'M', 'checkout');
             SELECT count(*) FROM reco.recommend('demo-c0000001', 5, '{\"log\": true}');
             SELECT reco.deploy(reco.train('hybrid', '{\"evaluate\": false}'));",
        )
        .unwrap();
        let before = served(&mut c);
        let rows = snapshot(&mut c, None);
        assert!(rows["orders"].1 > 0 && rows["item_vectors"].1 > 0 && rows["preferences"].1 > 0);

        c.batch_execute("ALTER EXTENSION pg_reco UPDATE").unwrap();
        let now: String = c.query_one("SELECT extversion FROM pg_extension WHERE extname = 'pg_reco'", &[]).unwrap().get(0);
        assert_eq!(now, current, "from {version}: the update scripts reach this build's version");
        let after = snapshot(&mut c, Some(&rows));
        for (table, (_, n, digest)) in &rows {
            let (_, n2, digest2) = after.get(table).unwrap_or_else(|| panic!("from {version}: table reco.{table} is gone"));
            assert_eq!((n, digest), (n2, digest2), "from {version}: the rows of reco.{table} changed");
        }
        // the opt-ins the release kept in customers.email_opt_in are consents in force, with provenance
        let (opted, backfilled): (i64, i64) = {
            let r = c
                .query_one(
                    "SELECT (SELECT count(*) FROM reco.customers WHERE email_opt_in),
                            (SELECT count(*) FROM reco.consents k JOIN reco.consent_log l USING (consent_id)
                              WHERE k.channel = 'email' AND k.granted AND k.source = 'pg_reco_update' AND l.granted)",
                    &[],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert!(opted >= 3 && backfilled == opted, "from {version}: {backfilled} of {opted} e-mail opt-ins became consents");
        assert_eq!(served(&mut c), before, "from {version}: the same backend serves the same lists after the update");
        let mut other = connect(&dsn(&db));
        assert_eq!(served(&mut other), before, "from {version}: a new backend serves the same lists");
        let model: i64 = other.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
        assert!(model > 1, "from {version}: a model trains after the update");

        let updated = schema(&db);
        assert!(updated == fresh_schema, "from {version}: the updated schema differs from a fresh install at {}", first_difference(&updated, &fresh_schema));
        assert_eq!(config_dump(&mut other), fresh_config, "from {version}: the tables registered for pg_dump");
        drop((c, other));
        admin.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).unwrap();
    }
    drop(fresh_db);
    admin.batch_execute("DROP DATABASE it_upgrade_fresh WITH (FORCE)").unwrap();
}
